"""smtp-submit's crash safety (issue 7, "kill -9 at any point loses no message and
delivers none twice") and the full spool disk (452 4.3.1, nothing left), with real
processes: SIGKILL of the session during DATA; gdb stopping the session right after its
250 (before it asks for delivery) and killing it there; gdb running `smtp-submit -q` and
killing it before and after the mailbox write; a spool_dir on a small tmpfs."""

import os
import signal
import subprocess
import time

import pytest

import helpers as h
import imaptest as it

OTHER = "example.net"

needs_gdb = pytest.mark.skipif(it.GDB is None, reason="gdb is not installed")


def mx(d):
    c = h.Smtp(d.mx_port)
    assert c.greeting.code == 220, c.greeting
    c.ehlo("client.example.net")
    return c


def assert_once(user, subject):
    got = [m for m in user.stored() if subject.encode() in m]
    assert len(got) == 1, "%s has %d copies of %r" % (user.name, len(got), subject)
    return got[0]


def test_kill9_session_during_data(smtpd, make_user):
    """SIGKILL of the session (the spool user's process) in the middle of DATA: the
    client never gets a 250, nothing is queued (nor delivered by a queue run), and a
    resend works."""
    u = make_user("maildir")
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<crash@%s>" % OTHER).code == 250
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: killed in data\r\n\r\n" + b"half a message\r\n" * 2000)
    # the session has the partial message in tmp/ by now, or will have
    pid, start = smtpd.wait_spool_session()
    assert h.signal_if_same(pid, start, signal.SIGKILL)
    it.wait_gone(pid, start)
    try:
        c.send(b"more\r\n.\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = c.reply_or_eof()
    assert r is None or r.code >= 400, "the client was told %r" % r
    c.close()
    assert smtpd.queue_ids() == []
    smtpd.queue_run()
    assert smtpd.queue_ids() == [] and u.stored() == []
    # the client sends again: one copy
    c = mx(smtpd)
    m, rr, final = c.send_mail("crash@%s" % OTHER, [h.address(u)],
                               h.smtp_message("killed in data"))
    assert final.code == 250, final
    c.quit()
    h.wait_stored(u, 1)
    smtpd.wait_queue_empty()
    assert_once(u, "killed in data")


def gdb_skip_delivery_request(pid, timeout=60):
    """gdb attaches to the session and, when it reaches session_request_delivery(), makes
    that return 0 at once (as if the monitor had been asked) and lets the session go on:
    the state of a session killed right after its 250, before any delivery started.
    Returns the running gdb once the breakpoint is in."""
    argv = [it.GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off",
            "-iex", "set confirm off", "-iex", "set pagination off", "-p", str(pid),
            "-ex", "break session_request_delivery", "-ex", "echo GDB-CONTINUING\\n",
            "-ex", "continue", "-ex", "return 0", "-ex", "echo GDB-RETURNED\\n",
            "-ex", "delete", "-ex", "continue"]
    g = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, text=True)
    out = []
    deadline = time.monotonic() + timeout
    while True:
        ln = g.stdout.readline()
        if not ln:
            g.wait()
            raise AssertionError("gdb ended before continuing:\n" + "".join(out))
        out.append(ln)
        if ln.startswith("GDB-CONTINUING"):
            break
        assert time.monotonic() < deadline, "gdb did not attach:\n" + "".join(out)
    g.out_before = "".join(out)
    return g


def queue_with_session_killed_after_250(d, user, subject):
    users = user if isinstance(user, list) else [user]
    """Send one message on 25; the session's delivery request is suppressed (gdb) and the
    session is SIGKILLed as soon as the client has its 250: the message is queued, the
    client was told so, and no delivery was started.  Returns the queue id."""
    c = mx(d)
    assert c.cmd("MAIL FROM:<afterok@%s>" % OTHER).code == 250
    pid, start = d.wait_spool_session()
    g = gdb_skip_delivery_request(pid)
    for u in users:
        assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    try:
        r = c.data(h.smtp_message(subject))
    except EOFError:
        g.kill()
        raise AssertionError("no reply to the data:\n%s\nlog:\n%s"
                             % (g.out_before + g.communicate()[0], d.log.tail()))
    assert r.code == 250, r
    qid = h.queued_id(r)
    assert h.signal_if_same(pid, start, signal.SIGKILL)
    out = g.out_before + g.communicate(timeout=60)[0]
    assert "GDB-RETURNED" in out, out
    it.wait_gone(pid, start)
    c.close()
    return qid


@needs_gdb
def test_kill9_after_commit_before_reply(smtpd, make_user):
    """SIGKILL of the session between the spool commit and its 250 (gdb kills it at
    session_request_delivery(), which the session calls before flushing the 250): the
    client got no reply and will send again (a duplicate is RFC 5321's price, section
    6.1), but the committed message is never lost: -q delivers it exactly once."""
    u = make_user("maildir")
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<commit@%s>" % OTHER).code == 250
    pid, start = smtpd.wait_spool_session()
    g = it.gdb_kill_at(pid, "session_request_delivery")
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    c.send(h.smtp_data_bytes(h.smtp_message("committed, no reply")) if
           c.cmd("DATA").code == 354 else b"")
    r = c.reply_or_eof()
    it.gdb_wait(g)
    assert r is None or r.code != 250, "the client was told %r" % r
    c.close()
    ids = smtpd.queue_ids()
    assert len(ids) == 1, ids
    assert u.stored() == []
    smtpd.queue_run()
    assert smtpd.queue_ids() == []
    assert_once(u, "committed, no reply")
    smtpd.queue_run()
    assert_once(u, "committed, no reply")


@needs_gdb
def test_kill9_right_after_250_delivered_once_by_q(smtpd, make_user):
    """The 250 was sent, then the session died before delivery was started: the message
    is in queue/ (never lost), not delivered yet; -q delivers it exactly once, and a
    second -q does nothing."""
    u = make_user("maildir")
    qid = queue_with_session_killed_after_250(smtpd, u, "after the 250")
    assert smtpd.queue_ids() == [qid]
    assert qid in smtpd.queue_list()
    assert u.stored() == []
    smtpd.queue_run()
    assert smtpd.queue_ids() == []
    assert_once(u, "after the 250")
    smtpd.queue_run()
    assert_once(u, "after the 250")
    sent = smtpd.wait_queue_line(qid, status="sent")
    assert sent["to"] == h.address(u), sent


def queue_run_under_gdb(d, point):
    """smtp-submit -q started under gdb and killed (SIGKILL) when it reaches `point`.
    Returns gdb's output."""
    argv = [it.GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off",
            "-iex", "set confirm off", "-iex", "set pagination off",
            "-ex", "set follow-fork-mode parent", "-ex", "set detach-on-fork on",
            "-ex", "break %s" % point, "-ex", "run", "-ex", "bt 8", "-ex", "kill",
            "--args", str(d.binary), "-c", str(d.config_path), "-q"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=180,
                       stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert "Breakpoint 1, " in out, "-q did not reach %s:\n%s" % (point, out)
    assert "[Inferior 1 (process" in out and "killed]" in out, out
    return out


@needs_gdb
@pytest.mark.parametrize("store", ["maildir", "mbox"])
@pytest.mark.parametrize("point", ["spool_msg_update", "spool_msg_remove_unsynced"])
def test_kill9_during_delivery_exactly_once(smtpd, make_user, store, point):
    """-q killed during delivery: at the update that records the attempt (nothing
    written yet: deliver.c makes the attempt durable with spool_msg_update() before any
    byte reaches a mailbox), and after the write into the mailbox but before the outcome
    is recorded (spool_msg_remove_unsynced(), delivery's removal: the message is there,
    the queue still has it, marked inflight).  The next -q leaves
    exactly one copy (it finds the delivery token instead of delivering again) and
    empties the queue."""
    u = make_user(store)
    subject = "killed in delivery %s" % point
    qid = queue_with_session_killed_after_250(smtpd, u, subject)
    assert u.stored() == []
    out = queue_run_under_gdb(smtpd, point)
    assert smtpd.queue_ids() == [qid], out
    n = len([m for m in u.stored() if subject.encode() in m])
    if point == "spool_msg_update":
        assert n == 0
    else:
        assert n == 1, "the write before %s left %d copies" % (point, n)
        assert "inflight" in smtpd.envelope(qid)
    smtpd.queue_run()
    assert smtpd.queue_ids() == []
    msg = assert_once(u, subject)
    assert len(h.header_fields(msg, "X-Postern-Delivery")) == 1
    assert h.header_fields(msg, "X-Postern-Delivery")[0].startswith(qid + "-")
    smtpd.queue_run()
    assert_once(u, subject)


@needs_gdb
def test_kill9_delivery_two_recipients(smtpd, make_user):
    """Two local recipients (Maildir and mbox), -q killed after both were written (at the
    final remove): the next -q delivers neither again."""
    a = make_user("maildir")
    b = make_user("mbox")
    qid = queue_with_session_killed_after_250(smtpd, [a, b], "two killed")
    assert smtpd.queue_ids() == [qid]
    queue_run_under_gdb(smtpd, "spool_msg_remove_unsynced")
    assert smtpd.queue_ids() == [qid]
    assert_once(a, "two killed")
    assert_once(b, "two killed")
    smtpd.queue_run()
    assert smtpd.queue_ids() == []
    assert_once(a, "two killed")
    assert_once(b, "two killed")


def test_kill9_at_each_step_of_data(smtpd, make_user):
    """Nine messages cut at a different point of the data (nothing sent to all but the
    final dot), each session SIGKILLed there; then three whole messages whose session is
    killed as soon as the client has its 250.  After a queue run: none of the nine is
    delivered (no client was told 250), each of the three exactly once."""
    u = make_user("maildir")
    for i in range(9):
        c = mx(smtpd)
        assert c.cmd("MAIL FROM:<rk@%s>" % OTHER).code == 250
        assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
        assert c.cmd("DATA").code == 354
        wire = h.smtp_data_bytes(h.smtp_message("cut %d" % i, body_lines=500))
        cut = (len(wire) - 3) * i // 8      # up to the CRLF before the final ".CRLF"
        c.send(wire[:cut])
        for pid, start in smtpd.spool_sessions():
            h.signal_if_same(pid, start, signal.SIGKILL)
        r = c.reply_or_eof()
        assert r is None or r.code >= 400, "cut %d: the client was told %r" % (i, r)
        c.close()
    for i in range(3):
        c = mx(smtpd)
        m, rr, final = c.send_mail("rk@%s" % OTHER, [h.address(u)],
                                   h.smtp_message("whole %d" % i))
        assert final.code == 250, final
        for pid, start in smtpd.spool_sessions():
            h.signal_if_same(pid, start, signal.SIGKILL)
        c.close()
    assert smtpd.wait_idle(30), smtpd.children()
    smtpd.queue_run()
    smtpd.wait_queue_empty()
    subjects = sorted(h.header_fields(g, "Subject")[0] for g in u.stored())
    assert subjects == ["whole 0", "whole 1", "whole 2"], subjects


@pytest.mark.parametrize("size", ["1m"])
def test_full_spool_disk_452(smtp_daemon, make_user, size):
    """spool_dir on a 1 MB tmpfs that is almost full: a message that does not fit is
    452 4.3.1 (after the whole message was read: the session stays in step), nothing is
    left in tmp/ or queue/; once there is room again the same message is accepted."""
    u = make_user("maildir")
    with h.small_tmpfs(smtp_daemon.workdir, size=size) as mnt:
        spool = h.make_spool(mnt / "spool")
        smtp_daemon.spool_dir = spool
        smtp_daemon.configure(spool_dir=spool)
        smtp_daemon.start()
        filler = mnt / "filler"
        # leave about 100 KB
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free - 100 * 1024))
        body = b"".join(b"%06d %s\n" % (i, b"z" * 70) for i in range(4000))   # ~310 KB
        msg = h.smtp_message("does not fit", body=body)
        c = mx(smtp_daemon)
        m, rr, final = c.send_mail("big@%s" % OTHER, [h.address(u)], msg)
        assert m.code == 250 and rr[0].code == 250, (m, rr)
        assert (final.code, final.enh) == (452, "4.3.1"), final
        assert c.cmd("NOOP").code == 250
        c.quit()
        assert smtp_daemon.queue_ids() == []
        assert smtp_daemon.wait_tmp_empty() == []
        assert u.stored() == []
        # the disk has room again: the client's retry is accepted and delivered
        filler.unlink()
        c = mx(smtp_daemon)
        m, rr, final = c.send_mail("big@%s" % OTHER, [h.address(u)], msg)
        assert final.code == 250, final
        c.quit()
        h.wait_stored(u, 1)
        smtp_daemon.wait_queue_empty()
        assert_once(u, "does not fit")
        smtp_daemon.stop()


def test_full_spool_disk_bdat(smtp_daemon, make_user):
    """The same with BDAT: 452 4.3.1 for the chunk that does not fit, nothing left."""
    u = make_user("maildir")
    with h.small_tmpfs(smtp_daemon.workdir, size="1m") as mnt:
        spool = h.make_spool(mnt / "spool")
        smtp_daemon.spool_dir = spool
        smtp_daemon.configure(spool_dir=spool)
        smtp_daemon.start()
        st = os.statvfs(mnt)
        with open(mnt / "filler", "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 60 * 1024))
        c = mx(smtp_daemon)
        assert c.cmd("MAIL FROM:<big@%s>" % OTHER).code == 250
        assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
        chunk = b"Subject: bdat full\r\n\r\n" + b"w" * 200000 + b"\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.reply()
        assert (r.code, r.enh) == (452, "4.3.1"), r
        assert c.cmd("NOOP").code == 250
        c.quit()
        assert smtp_daemon.queue_ids() == [] and smtp_daemon.wait_tmp_empty() == []
        smtp_daemon.stop()


def test_broken_mailbox_stays_queued(smtpd, make_user):
    """A mailbox the delivery cannot write (the user's Maildir/new not writable by him):
    the message stays queued (deferred, logged), nothing is lost; once the mailbox is
    repaired and the message is due, -q delivers it once."""
    u = make_user("maildir")
    new = u.maildir / "new"
    tmp = u.maildir / "tmp"
    for d in (new, tmp):
        os.chown(d, 0, 0)
        os.chmod(d, 0o755)
    c = mx(smtpd)
    m, rr, final = c.send_mail("def@%s" % OTHER, [h.address(u)], h.smtp_message("deferred"))
    assert final.code == 250, final
    qid = h.queued_id(final)
    c.quit()
    ev = smtpd.wait_queue_line(qid, status="deferred")
    assert ev["to"] == h.address(u), ev
    smtpd.wait_envelope(qid, "\nstate deferred\n")
    assert smtpd.queue_ids() == [qid]
    for d in (new, tmp):
        os.chown(d, u.uid, u.gid)
        os.chmod(d, 0o700)
    smtpd.make_due(qid)
    smtpd.queue_run()
    assert smtpd.queue_ids() == [], smtpd.queue_list()
    assert_once(u, "deferred")
    smtpd.wait_queue_line(qid, status="sent")
