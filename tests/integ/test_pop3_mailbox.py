"""The TRANSACTION and UPDATE states on both stores (Maildir, mbox): the commands, stable
UIDLs, CRLF and dot-stuffing, nothing lost on a drop, exactly the deleted messages gone
on QUIT, mail delivered during a session kept, one session per mailbox."""

import threading
import time

import pytest

import helpers as h


def _by_subject(c):
    """{subject: (number, wire bytes)} of every message of the open session."""
    out = {}
    count, _ = c.stat()
    for n in range(1, count + 1):
        w = c.retr(n)
        out[h.subject_of(w)] = (n, w)
    return out


def _subjects(messages):
    return sorted(h.subject_of(h.to_wire(m)) for m in messages)


def _session(port, user, **kw):
    c = h.Pop3(port, **kw)
    r = c.login(user.name, user.password)
    assert r == h.LOGGED_IN, r
    return c


def test_transaction_commands(pop3d, store_user):
    u = store_user
    stored = {h.subject_of(h.to_wire(m)): h.to_wire(m) for m in u.stored()}
    with _session(pop3d.port, u) as c:
        count, total = c.stat()
        assert count == 5
        assert total == sum(len(w) for w in stored.values())
        sizes = c.list()
        assert sorted(sizes) == [1, 2, 3, 4, 5]
        got = _by_subject(c)
        assert {s: w for s, (n, w) in got.items()} == stored
        for s, (n, w) in got.items():
            assert sizes[n] == len(w), "LIST size is not the CRLF size of message %d" % n
            assert c.cmd("LIST %d" % n) == "+OK %d %d" % (n, len(w))
        uidl = c.uidl()
        assert sorted(uidl) == [1, 2, 3, 4, 5] and len(set(uidl.values())) == 5
        for n, uid in uidl.items():
            assert 1 <= len(uid) <= 70 and all(0x21 <= ord(ch) <= 0x7e for ch in uid)
            assert c.cmd("UIDL %d" % n) == "+OK %d %s" % (n, uid)
        # TOP: the header, the blank line, then n body lines
        w = got["test message 1"][1]
        n1 = got["test message 1"][0]
        head, body = w.split(b"\r\n\r\n", 1)
        assert c.cmd("TOP %d 0" % n1).startswith("+OK")
        assert b"".join(l + b"\r\n" for l in c.multi()) == head + b"\r\n\r\n"
        assert c.cmd("TOP %d 1" % n1).startswith("+OK")
        assert b"".join(l + b"\r\n" for l in c.multi()) == \
            head + b"\r\n\r\n" + body.split(b"\r\n")[0] + b"\r\n"
        assert c.cmd("TOP %d 1000" % n1).startswith("+OK")
        assert b"".join(l + b"\r\n" for l in c.multi()) == w
        assert c.cmd("NOOP").startswith("+OK")
        # DELE, and what a deleted message no longer answers
        assert c.cmd("DELE %d" % n1).startswith("+OK")
        assert c.cmd("DELE %d" % n1).startswith("-ERR")
        assert c.cmd("RETR %d" % n1).startswith("-ERR")
        assert c.cmd("TOP %d 0" % n1).startswith("-ERR")
        assert c.cmd("LIST %d" % n1).startswith("-ERR")
        assert c.cmd("UIDL %d" % n1).startswith("-ERR")
        assert c.stat() == (4, total - len(w))
        assert n1 not in c.list() and n1 not in c.uidl()
        # RSET undeletes
        assert c.cmd("RSET").startswith("+OK")
        assert c.stat() == (5, total)
        # bad arguments
        for bad in ("RETR 0", "RETR 6", "RETR x", "RETR", "LIST 4294967297", "DELE -1",
                    "TOP 1", "TOP 1 -1", "UIDL 99", "RETR 1 junk",
                    "FOO", "USER %s" % u.name):
            assert c.cmd(bad).startswith("-ERR"), bad
        assert c.cmd("QUIT").startswith("+OK")
        assert c.wait_closed()
    assert _subjects(u.stored()) == sorted(stored)


def test_uidl_stable_across_sessions_and_deletes(pop3d, store_user):
    u = store_user
    maps = []
    for _ in range(2):
        with _session(pop3d.port, u) as c:
            uidl = c.uidl()
            subj = {n: s for s, (n, w) in _by_subject(c).items()}
            maps.append({subj[n]: uid for n, uid in uidl.items()})
            c.quit()
    assert maps[0] == maps[1]
    with _session(pop3d.port, u) as c:
        n = _by_subject(c)["test message 2"][0]
        assert c.cmd("DELE %d" % n).startswith("+OK")
        assert c.quit().startswith("+OK")
    pop3d.log.wait("logout", user=u.name, reason="quit")
    with _session(pop3d.port, u) as c:
        uidl = c.uidl()
        subj = {n: s for s, (n, w) in _by_subject(c).items()}
        after = {subj[n]: uid for n, uid in uidl.items()}
        c.quit()
    expect = dict(maps[0])
    del expect["test message 2"]
    assert after == expect


def test_bare_lf_becomes_crlf_and_dots_are_stuffed(pop3d, store_user):
    u = store_user
    msg = (b"From: a@example.org\nSubject: dots\n\n"
           b".starts with a dot\n..two dots\n.\nmiddle . line\n. space after dot\nend\n")
    u.deliver([msg])
    expect = (b"From: a@example.org\r\nSubject: dots\r\n\r\n"
              b"..starts with a dot\r\n...two dots\r\n..\r\nmiddle . line\r\n"
              b".. space after dot\r\nend\r\n.\r\n")
    with _session(pop3d.port, u) as c:
        n = _by_subject(c)["dots"][0]
        assert c.cmd("RETR %d" % n).startswith("+OK")
        raw = c.multi_raw()
        assert raw == expect
        assert c.cmd("TOP %d 100" % n).startswith("+OK")
        assert c.multi_raw() == expect
        assert c.cmd("LIST %d" % n) == "+OK %d %d" % (n, len(h.to_wire(msg)))
        c.quit()


def test_drop_after_dele_deletes_nothing(pop3d, store_user, ctx):
    u = store_user
    before = _subjects(u.stored())
    for k, kw in enumerate(({}, {"tls": ctx})):
        port = pop3d.tls_port if kw else pop3d.port
        with _session(port, u, **kw) as c:
            for n in (1, 2, 5):
                assert c.cmd("DELE %d" % n).startswith("+OK")
            c.drop()
        for _ in range(300):
            evs = pop3d.log.events("logout", user=u.name)
            if len(evs) > k:
                break
            time.sleep(0.05)
        assert len(evs) == k + 1, pop3d.log.tail()
        assert evs[-1]["reason"] in ("eof", "error"), evs[-1]["_line"]
        assert pop3d.wait_idle(15)
        assert _subjects(u.stored()) == before
    with _session(pop3d.port, u) as c:
        assert c.stat()[0] == 5
        c.quit()


def test_quit_after_dele_deletes_exactly_those(pop3d, store_user):
    u = store_user
    with _session(pop3d.port, u) as c:
        got = _by_subject(c)
        for s in ("test message 2", "test message 4"):
            assert c.cmd("DELE %d" % got[s][0]).startswith("+OK")
        assert c.cmd("QUIT").startswith("+OK")
        assert c.wait_closed()
    ev = pop3d.log.wait("logout", user=u.name, reason="quit")
    assert ev["del"] == "2"
    assert _subjects(u.stored()) == ["test message 1", "test message 3", "test message 5"]
    with _session(pop3d.port, u) as c:
        got2 = _by_subject(c)
        assert sorted(got2) == ["test message 1", "test message 3", "test message 5"]
        for s in got2:
            assert got2[s][1] == got[s][1]
        c.quit()


@pytest.mark.parametrize("store", ["maildir", "mbox"])
def test_mail_delivered_during_session_is_kept(pop3d, make_user, store):
    u = make_user(store)
    u.deliver([h.make_message(i) for i in range(1, 4)])
    newmsg = h.make_message(99, subject="arrived meanwhile")
    c = _session(pop3d.port, u)
    result = {}
    try:
        got = _by_subject(c)
        assert c.cmd("DELE %d" % got["test message 1"][0]).startswith("+OK")
        if store == "maildir":
            u.deliver([newmsg])
            result["at"] = time.monotonic()
        else:
            # an MTA delivers now, with the locks an MTA takes
            def deliver():
                try:
                    u.append_mbox_locked(newmsg, timeout=60)
                    result["at"] = time.monotonic()
                except Exception as e:  # reported below
                    result["error"] = e

            t = threading.Thread(target=deliver)
            t.start()
            t.join(5)   # the daemon may hold the mailbox lock for the session: then the
            #             delivery happens after QUIT, which is fine too
        quit_at = time.monotonic()
        assert c.cmd("QUIT").startswith("+OK")
        c.wait_closed()
        if store == "mbox":
            t.join(60)
        assert "error" not in result, result.get("error")
    finally:
        c.close()
    pop3d.log.wait("logout", user=u.name, reason="quit")
    print("delivery happened %s QUIT" % ("before" if result["at"] < quit_at else "after"))
    want = ["arrived meanwhile", "test message 2", "test message 3"]
    assert _subjects(u.stored()) == want
    with _session(pop3d.port, u) as c:
        assert sorted(_by_subject(c)) == want
        c.quit()


def test_second_session_gets_in_use(pop3d, store_user, ctx):
    u = store_user
    a = _session(pop3d.port, u)
    try:
        with h.Pop3(pop3d.tls_port, tls=ctx) as b:
            assert b.cmd("USER " + u.name).startswith("+OK")
            r = b.cmd("PASS " + u.password)
            assert r.startswith("-ERR [IN-USE]"), r
        # the first session is unharmed
        assert a.stat()[0] == 5
        assert a.cmd("DELE 1").startswith("+OK")
        assert a.cmd("QUIT").startswith("+OK")
        a.wait_closed()
    finally:
        a.close()
    pop3d.log.wait("logout", user=u.name, reason="quit")
    with _session(pop3d.port, u) as c:
        assert c.stat()[0] == 4
        c.quit()


def test_pipelined_commands_across_login(pop3d, user, ctx):
    """Commands sent in one packet with USER/PASS are answered in order: input buffered
    before login reaches the session."""
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        c.send("USER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nNOOP\r\nQUIT\r\n"
               % (user.name, user.password))
        assert c.line().startswith("+OK")
        assert c.line() == h.LOGGED_IN
        assert c.line().startswith("+OK 3 ")
        assert c.line().startswith("+OK")
        assert len(c.multi()) == 3
        assert c.line().startswith("+OK")
        assert c.line().startswith("+OK")
        assert c.wait_closed()


def test_maildir_new_and_cur_both_seen(pop3d, make_user):
    u = make_user("maildir")
    u.deliver([h.make_message(1)], folder="new")
    u.deliver([h.make_message(2)], folder="cur")
    with _session(pop3d.port, u) as c:
        assert sorted(_by_subject(c)) == ["test message 1", "test message 2"]
        c.quit()
    assert _subjects(u.stored()) == ["test message 1", "test message 2"]


def test_empty_mailboxes(pop3d, make_user):
    for store in ("maildir", "mbox"):
        u = make_user(store)
        with _session(pop3d.port, u) as c:
            assert c.stat() == (0, 0)
            assert c.list() == {}
            assert c.cmd("RETR 1").startswith("-ERR")
            c.quit()
    # no mail spool file and no Maildir at all: an empty mailbox, not an error
    u = make_user(None)
    with _session(pop3d.port, u) as c:
        assert c.stat() == (0, 0)
        c.quit()
