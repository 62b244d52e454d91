"""imapd: more behaviour with real parts: IDLE reporting another session's flag change
and an mbox delivery, a folder named in Chinese (modified UTF-7 on the wire), RENAME of
INBOX, APPENDLIMIT, an APPEND on a full disk, pipelined commands."""

import imaplib
import socket
import subprocess
import threading
import time

import pytest

import helpers as h


def login(d, ctx, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=30)
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    return c


def idle_until(c, pred, timeout=10):
    """IDLE; the untagged lines until pred(line) is true; then DONE."""
    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    assert c.readline().startswith(b"+ ")
    c.sock.settimeout(timeout)
    lines = []
    while True:
        ln = c.readline()
        assert ln, "the connection ended in IDLE"
        lines.append(ln.strip())
        if pred(ln.strip()):
            break
    c.send(b"DONE\r\n")
    while True:
        ln = c.readline()
        if ln.startswith(tag):
            assert b" OK " in ln
            return lines


def test_idle_sees_other_sessions_flags_and_expunge(imapd, ctx, user):
    a = login(imapd, ctx, user)
    b = login(imapd, ctx, user)
    a.select("INBOX")
    b.select("INBOX")

    def change():
        time.sleep(0.3)
        b.store("2", "+FLAGS", "(\\Flagged)")
        b.store("3", "+FLAGS", "(\\Deleted)")
        b.expunge()

    t = threading.Thread(target=change)
    t.start()
    seen = set()

    def both(ln):
        if ln == b"* 3 EXPUNGE":
            seen.add("expunge")
        if ln.startswith(b"* 2 FETCH") and b"\\Flagged" in ln:
            seen.add("flags")
        return len(seen) == 2

    idle_until(a, both)
    t.join()
    assert seen == {"expunge", "flags"}
    a.logout()
    b.logout()


def test_idle_sees_mbox_delivery(imapd, ctx, make_user):
    u = make_user("mbox")
    u.deliver([h.make_message(i) for i in range(1, 3)])
    c = login(imapd, ctx, u)
    c.select("INBOX")

    def deliver():
        time.sleep(0.3)
        u.append_mbox_locked(h.make_message(3))

    t = threading.Thread(target=deliver)
    t.start()
    lines = idle_until(c, lambda ln: ln == b"* 3 EXISTS")
    t.join()
    typ, data = c.fetch("3", "(BODY.PEEK[HEADER])")
    assert b"Subject: test message 3" in data[0][1]
    c.logout()


def test_chinese_folder_name(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    name = "&ZeVnLIqe-"          # U+65E5 U+672C U+8A9E in modified UTF-7
    assert c.create(name)[0] == "OK"
    typ, data = c.list()
    assert any(x.endswith(b" " + name.encode()) for x in data), data
    c.select("INBOX")
    assert c.copy("1", name)[0] == "OK"
    typ, data = c.select(name)
    assert typ == "OK" and data == [b"1"]
    # an invalid modified UTF-7 spelling of a name is refused, not stored
    typ, data = c.create("&AGE-")
    assert typ == "NO"
    c.logout()


def test_rename_inbox(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    typ, _ = c.rename("INBOX", "Old")
    assert typ == "OK"
    assert c.status("INBOX", "(MESSAGES)")[1][0].endswith(b"(MESSAGES 0)")
    assert c.status("Old", "(MESSAGES)")[1][0].endswith(b"(MESSAGES 5)")
    c.logout()


def test_append_over_appendlimit(imapd, ctx, user):
    c = login(imapd, ctx, user)
    caps = c.capability()[1][0].decode().split()
    limit = [int(x.split("=")[1]) for x in caps if x.startswith("APPENDLIMIT=")]
    assert limit
    tag = c._new_tag()
    c.send(tag + b" APPEND INBOX {%d}\r\n" % (limit[0] + 1))
    ln = c.readline()
    assert ln.startswith(tag + b" NO [TOOBIG]"), ln
    typ, _ = c.noop()
    assert typ == "OK"
    c.logout()


def test_pipelined_commands(imapd, ctx, user):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", imapd.tls_port), timeout=30),
                        server_hostname="localhost")
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\nc FETCH 1:* (UID FLAGS)\r\n"
              b"d STORE 1:* +FLAGS.SILENT (\\Seen)\r\ne SEARCH SEEN\r\nf LOGOUT\r\n"
              % (user.name.encode(), user.password.encode()))
    out = b""
    while True:
        ln = f.readline()
        if not ln:
            break
        out += ln
    for tag in b"abcdef":
        assert (b"\r\n%c OK " % tag) in b"\r\n" + out, out
    assert b"* SEARCH 1 2 3\r\n" in out
    s.close()


@pytest.fixture
def full_fs(imap_daemon):
    with h.small_tmpfs(imap_daemon.workdir) as mnt:
        yield mnt


def test_append_on_full_disk(imap_daemon, make_user, full_fs, ctx):
    d = imap_daemon
    u = make_user("maildir")
    msgs = [h.make_message(i, body_lines=20) for i in range(1, 4)]
    md = full_fs / u.name / "Maildir"
    for sub in ("", "new", "cur", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(msgs):
        (md / "new" / ("%d.M%d.fulltest" % (1763719200 + i, i))).write_bytes(m)
    subprocess.run(["chown", "-R", "%d:%d" % (u.uid, u.gid), str(full_fs / u.name)],
                   check=True)
    d.configure(mail_location="maildir:%s" % md)
    d.start()
    c = login(d, ctx, u)
    c.select("INBOX")            # the index exists before the disk fills
    with open(full_fs / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0")
        except OSError:
            pass
    big = h.to_wire(h.make_message(9, body_lines=2000))
    typ, data = c.append("INBOX", None, None, big)
    assert typ == "NO" and b"[OVERQUOTA]" in data[0] and b"disk is full" in data[0], data
    typ, data = c.fetch("1:*", "(BODY.PEEK[])")
    bodies = [x[1] for x in data if isinstance(x, tuple)]
    assert bodies == [h.to_wire(m) for m in msgs]
    c.logout()
    assert not list((md / "tmp").iterdir())
    d.log.wait("storage-failed", user=u.name)


def test_keywords(imapd, ctx, store_user):
    u = store_user
    a = login(imapd, ctx, u)
    b = login(imapd, ctx, u)
    typ, _ = a.select("INBOX")
    assert any(b"\\*" in x for x in a.untagged_responses.get("OK", []))
    b.select("INBOX")
    typ, data = a.store("1", "+FLAGS", "($Forwarded NonJunk \\Seen)")
    assert typ == "OK"
    assert b"$Forwarded" in data[0] and b"NonJunk" in data[0] and b"\\Seen" in data[0]
    # the other session learns the new names (FLAGS) and the message's flags
    b.untagged_responses.clear()
    b.noop()
    assert any(b"$Forwarded" in x for x in b.untagged_responses.get("FLAGS", []))
    assert any(b"$Forwarded" in x for x in b.untagged_responses.get("FETCH", []))
    typ, data = a.store("1", "-FLAGS", "(NonJunk)")
    assert b"NonJunk" not in data[0] and b"$Forwarded" in data[0]
    # APPEND with a keyword, and the keyword survives a new session
    typ, _ = a.append("INBOX", "($Label1)", None, h.to_wire(h.make_message(6)))
    assert typ == "OK"
    a.logout()
    c = login(imapd, ctx, u)
    c.select("INBOX")
    typ, data = c.fetch("1,6", "(FLAGS)")
    assert b"$Forwarded" in data[0] and b"$Label1" in data[1]
    # an invalid keyword is BAD
    with pytest.raises(imaplib.IMAP4.error):
        c.store("1", "+FLAGS", "(\\Bogus)")
    c.logout()
    b.logout()


def test_condstore(imapd, ctx, store_user):
    """RFC 7162 CONDSTORE: HIGHESTMODSEQ, FETCH MODSEQ and CHANGEDSINCE, STORE
    UNCHANGEDSINCE with [MODIFIED], ENABLE."""
    u = store_user
    a = login(imapd, ctx, u)
    assert "CONDSTORE" in a.capability()[1][0].decode().split()
    typ, data = a._simple_command("ENABLE", "CONDSTORE")
    assert typ == "OK" and a.untagged_responses.pop("ENABLED") == [b"CONDSTORE"]
    typ, _ = a._simple_command("SELECT", "INBOX", "(CONDSTORE)")
    assert typ == "OK"
    a.state = "SELECTED"     # imaplib does not know SELECT with a parameter
    hms = [x for x in a.untagged_responses.get("OK", []) if x.startswith(b"[HIGHESTMODSEQ ")]
    assert hms
    start = int(hms[0].split()[1].rstrip(b"]"))
    typ, data = a.fetch("1:*", "(MODSEQ)")
    mods = [int(x.split(b"MODSEQ (")[1].split(b")")[0]) for x in data]
    assert len(mods) == 5 and max(mods) <= start
    typ, data = a.store("2", "+FLAGS", "(\\Flagged)")
    assert b"MODSEQ (" in data[0]
    new = int(data[0].split(b"MODSEQ (")[1].split(b")")[0])
    assert new > start
    # only what changed since start
    typ, data = a._simple_command("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d)" % start)
    changed = a.untagged_responses.pop("FETCH", [])
    assert len(changed) == 1 and changed[0].startswith(b"2 ")
    # a STORE conditional on an old MODSEQ is refused for the message that changed
    typ, data = a._simple_command("STORE", "1:3", "(UNCHANGEDSINCE %d)" % start,
                                  "+FLAGS.SILENT", "(\\Seen)")
    assert typ == "OK" and data[0].startswith(b"[MODIFIED 2]"), data
    a.untagged_responses.clear()
    typ, data = a.fetch("1:3", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"\\Seen" not in data[1] and b"\\Seen" in data[2]
    a.logout()
