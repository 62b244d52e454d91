"""imapd COPY/MOVE and MULTIAPPEND are all or nothing (RFC 3501 6.4.7: a failed COPY
restores the destination; RFC 3502: MULTIAPPEND appends all or none).  A tmpfs of 2 MB
fills half-way through a COPY of many messages and a MULTIAPPEND, on Maildir and mbox:
the answer is NO [OVERQUOTA], the destination has exactly its old messages (bytes and
UIDs, UIDNEXT unchanged: the index never saw them), the source keeps its own, nothing is
left in tmp/.  A MOVE on Maildir renames each message and needs no room: it succeeds,
each message in exactly one folder.  A session killed with SIGKILL in the middle of a COPY
leaves no message of it visible, whole or half."""

import imaplib
import os
import re
import signal
import subprocess
import time

import pytest

import helpers as h


def login(d, ctx, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=60)
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    return c


@pytest.fixture
def small_fs(imap_daemon):
    with h.small_tmpfs(imap_daemon.workdir) as mnt:
        yield mnt


def leave_free(mnt, nbytes):
    """Fill the file system but about nbytes."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    with open(mnt / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - nbytes))


def bodies(c, box):
    typ, _ = c.select(box)
    assert typ == "OK"
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
    out = {}
    for x in data:
        if isinstance(x, tuple):
            uid = int(re.search(rb"UID (\d+)", x[0]).group(1))
            out[uid] = x[1]
    return out


def uidnext(c, box):
    typ, data = c.status(box, "(UIDNEXT MESSAGES)")
    assert typ == "OK"
    return data[0]


def make_maildir_on(mnt, u):
    md = mnt / u.name / "Maildir"
    for sub in ("", "new", "cur", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    return md


def chown(u, path):
    subprocess.run(["chown", "-R", "%d:%d" % (u.uid, u.gid), str(path)], check=True)


def multiappend(c, box, msgs):
    """MULTIAPPEND with non-synchronizing literals (LITERAL+); the tagged answer."""
    tag = c._new_tag()
    cmd = tag + b" APPEND " + box.encode()
    for m in msgs:
        cmd += b" (\\Seen) {%d+}\r\n" % len(m) + m
    c.send(cmd + b"\r\n")
    while True:
        ln = c.readline()
        assert ln, "the connection ended"
        if ln.startswith(tag + b" "):
            return ln


@pytest.mark.parametrize("cmd", ["COPY", "MOVE"])
def test_copy_on_full_disk_maildir(imap_daemon, make_user, small_fs, ctx, cmd):
    d = imap_daemon
    u = make_user("maildir")
    md = make_maildir_on(small_fs, u)
    chown(u, small_fs / u.name)
    d.configure(mail_location="maildir:%s" % md)
    d.start()
    c = login(d, ctx, u)
    assert c.create("Dest")[0] == "OK"
    old = [h.to_wire(h.make_message(i)) for i in (1, 2)]
    for m in old:
        assert c.append("Dest", None, None, m)[0] == "OK"
    src = [h.to_wire(h.make_message(10 + i, body_lines=1500)) for i in range(12)]
    for m in src:
        assert c.append("INBOX", None, None, m)[0] == "OK"
    before = bodies(c, "Dest")
    next_before = uidnext(c, "Dest")
    src_before = bodies(c, "INBOX")
    assert sorted(src_before.values()) == sorted(src)
    # room for a few of the twelve copies, not all
    leave_free(small_fs, 5 * len(src[0]))
    typ, data = c.uid(cmd, "1:*", "Dest")
    if cmd == "MOVE":
        # Maildir moves by rename: no room needed, each message in exactly one folder
        assert typ == "OK", (typ, data, d.log.tail())
        assert sorted(bodies(c, "Dest").values()) == sorted(old + src)
        assert bodies(c, "INBOX") == {}
        assert not list((md / ".Dest" / "tmp").iterdir())
        c.logout()
        return
    assert bodies(c, "Dest") == before
    assert uidnext(c, "Dest") == next_before
    assert bodies(c, "INBOX") == src_before
    assert not list((md / ".Dest" / "tmp").iterdir())
    assert not list((md / "tmp").iterdir())
    # another session sees the same: the index on disk is consistent
    c2 = login(d, ctx, u)
    assert bodies(c2, "Dest") == before
    c2.logout()
    # with room again, the same command copies everything
    os.unlink(small_fs / "filler")
    typ, data = c.uid(cmd, "1:*", "Dest")
    assert typ == "OK", data
    after = bodies(c, "Dest")
    assert sorted(after.values()) == sorted(old + src)
    c.logout()


def test_copy_on_full_disk_mbox(imap_daemon, make_user, small_fs, ctx):
    """mbox: INBOX (the spool file) on the small disk is the destination; the source
    folder lives in ~/mail: the append runs out of room half-way and is cut back."""
    d = imap_daemon
    u = make_user("mbox")
    spool = small_fs / u.name / "inbox"
    spool.parent.mkdir()
    old = [h.make_message(i) for i in (1, 2)]
    spool.write_bytes(b"".join(h.MailUser.mbox_entry(m) for m in old))
    chown(u, small_fs / u.name)
    d.configure(mail_location="mbox:%s" % spool)
    d.start()
    c = login(d, ctx, u)
    assert c.create("Src")[0] == "OK"
    src = [h.to_wire(h.make_message(10 + i, body_lines=1500)) for i in range(12)]
    for m in src:
        assert c.append("Src", None, None, m)[0] == "OK"
    before = bodies(c, "INBOX")
    assert len(before) == 2
    next_before = uidnext(c, "INBOX")
    size_before = spool.stat().st_size
    raw_before = spool.read_bytes()
    leave_free(small_fs, 5 * len(src[0]))
    c.select("Src")
    typ, data = c.copy("1:*", "INBOX")
    assert typ == "NO" and b"[OVERQUOTA]" in data[-1], (typ, data, d.log.tail())
    assert spool.stat().st_size == size_before
    assert spool.read_bytes() == raw_before
    assert bodies(c, "INBOX") == before
    assert uidnext(c, "INBOX") == next_before
    # MULTIAPPEND into the same full INBOX: none of the messages
    ln = multiappend(c, "INBOX", src[:8])
    assert b" NO [OVERQUOTA]" in ln, ln
    assert spool.read_bytes() == raw_before
    assert bodies(c, "INBOX") == before
    c.logout()


def test_multiappend_on_full_disk_maildir(imap_daemon, make_user, small_fs, ctx):
    d = imap_daemon
    u = make_user("maildir")
    md = make_maildir_on(small_fs, u)
    chown(u, small_fs / u.name)
    d.configure(mail_location="maildir:%s" % md)
    d.start()
    c = login(d, ctx, u)
    old = [h.to_wire(h.make_message(i)) for i in (1, 2, 3)]
    for m in old:
        assert c.append("INBOX", None, None, m)[0] == "OK"
    before = bodies(c, "INBOX")
    next_before = uidnext(c, "INBOX")
    msgs = [h.to_wire(h.make_message(20 + i, body_lines=1500)) for i in range(10)]
    leave_free(small_fs, 4 * len(msgs[0]))
    ln = multiappend(c, "INBOX", msgs)
    assert b" NO [OVERQUOTA]" in ln, ln
    assert bodies(c, "INBOX") == before
    assert uidnext(c, "INBOX") == next_before
    assert not list((md / "tmp").iterdir())
    # a MULTIAPPEND that fits: all of them, with consecutive UIDs in APPENDUID
    os.unlink(small_fs / "filler")
    ln = multiappend(c, "INBOX", msgs[:3])
    m = re.search(rb"\[APPENDUID \d+ (\d+):(\d+)\]", ln)
    assert m and int(m.group(2)) - int(m.group(1)) == 2, ln
    assert sorted(bodies(c, "INBOX").values()) == sorted(old + msgs[:3])
    c.logout()


def session_pids(u):
    return [p for p in h.all_pids() if h.proc_uids(p) == (u.uid, u.uid)]


@pytest.mark.parametrize("store", ["maildir", "mbox"])
def test_kill_during_copy(imapd, ctx, make_user, store):
    u = make_user(store)
    big = [h.big_message(1024 * 1024, seed=i) for i in range(40)]
    u.deliver(big)
    c = login(imapd, ctx, u)
    assert c.create("Dest")[0] == "OK"
    assert c.append("Dest", None, None, h.to_wire(h.make_message(1)))[0] == "OK"
    before = bodies(c, "Dest")
    c.select("INBOX")
    pids = session_pids(u)
    assert pids
    tag = c._new_tag()
    c.send(tag + b" COPY 1:* Dest\r\n")
    # kill it as soon as it writes its first copy (Maildir: .Dest/tmp/; mbox: an unnamed
    # temporary file), long before the last of the forty
    mark = "/.Dest/tmp/" if store == "maildir" else "/#"   # O_TMPFILE: "dir/#123 (deleted)"
    deadline = time.monotonic() + 20
    seen = False
    while not seen and time.monotonic() < deadline:
        for p in pids:
            try:
                links = [os.readlink("/proc/%d/fd/%s" % (p, f))
                         for f in os.listdir("/proc/%d/fd" % p)]
            except OSError:
                links = []
            if any(mark in ln for ln in links):
                seen = True
        if not seen:
            time.sleep(0.002)
    for p in session_pids(u):
        os.kill(p, signal.SIGKILL)
    assert seen, "the COPY was never seen writing"
    c2 = login(imapd, ctx, u)
    after = bodies(c2, "Dest")
    wires = {h.to_wire(m) for m in big}
    for uid, body in after.items():
        # each visible message is one of before, or a whole copy: never a part
        assert before.get(uid) == body or body in wires, (uid, len(body))
    assert set(before.items()) <= set(after.items())
    # the killed COPY was still writing: none of its copies became visible
    # (Maildir: in tmp/ only; mbox: the temporary file is unnamed)
    assert after == before
    c2.logout()
