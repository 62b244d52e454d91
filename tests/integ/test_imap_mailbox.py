"""imapd after login, with imaplib over IMAPS against real accounts, on Maildir and on
mbox: SELECT, FETCH, STORE, EXPUNGE, COPY, MOVE, APPEND, folders, STATUS, SEARCH, two
sessions on one folder, IDLE seeing a delivery, curl imaps://."""

import imaplib
import os
import re
import threading
import time

import pytest

import helpers as h


def login(d, ctx, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=30)
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    return c


def uids(c, crit="ALL"):
    typ, data = c.uid("SEARCH", None, crit)
    assert typ == "OK"
    return [int(x) for x in data[0].split()]


def test_select_fetch_store_expunge(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"5"]
    assert c.untagged_responses.get("UIDVALIDITY")
    # whole messages, in CRLF form, as stored
    stored = u.stored()
    typ, data = c.fetch("1:5", "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])")
    assert typ == "OK"
    bodies = [x[1] for x in data if isinstance(x, tuple)]
    assert len(bodies) == 5
    for i, b in enumerate(bodies, 1):
        assert h.subject_of(b) == "test message %d" % i
        assert b"\r\n" in b and b"\n" not in b.replace(b"\r\n", b"")
        m = re.search(rb"RFC822.SIZE (\d+)", data[2 * (i - 1)][0])
        assert int(m.group(1)) == len(b)
    assert len(stored) == 5
    # PEEK left \Seen alone; BODY[] sets it
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = c.fetch("2", "(BODY[])")
    assert b"\\Seen" in b"".join(x[0] if isinstance(x, tuple) else x for x in data)
    assert uids(c, "SEEN") == [uids(c)[1]]
    # header and text
    typ, data = c.fetch("3", "(BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
    parts = [x[1] for x in data if isinstance(x, tuple)]
    assert parts[0].endswith(b"\r\n\r\n") and b"Subject: test message 3" in parts[0]
    assert parts[1].startswith(b"Body line 0 of message 3.")
    typ, data = c.fetch("4", "(BODY.PEEK[]<0.10>)")
    assert data[0][1] == bodies[3][:10]
    # store and expunge
    typ, data = c.store("1,3", "+FLAGS", "(\\Deleted \\Flagged)")
    assert typ == "OK" and len(data) == 2 and b"\\Deleted" in data[0]
    typ, data = c.store("3", "-FLAGS", "(\\Flagged)")
    assert b"\\Flagged" not in data[0]
    typ, data = c.expunge()
    assert typ == "OK" and data == [b"3", b"1"]
    typ, data = c.select("INBOX")
    assert data == [b"3"]
    c.logout()
    left = sorted(h.subject_of(m) for m in u.stored())
    assert left == ["test message 2", "test message 4", "test message 5"]


def test_copy_move_append_folders(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    # the special-use folders exist from the first login, subscribed
    typ, data = c.list()
    for use in ("Drafts", "Sent", "Trash", "Junk", "Archive"):
        assert any(x.endswith(b'"/" ' + use.encode()) and (b"\\" + use.encode()) in x
                   for x in data), data
    typ, data = c.lsub()
    assert b'() "/" Sent' in data and b'() "/" INBOX' in data
    assert c.create("Sent")[0] == "NO"
    assert c.create("Projects/2026")[0] == "OK"
    # Maildir++: any folder holds mail and sub-folders; mbox: "Projects" is a directory
    # now (\Noselect), mail goes into a folder without children
    if u.store == "maildir":
        assert c.create("Projects")[0] == "OK"
        box = "Projects"
    else:
        assert c.create("Projects")[0] == "NO"
        assert c.create("Flat")[0] == "OK"
        box = "Flat"
    typ, data = c.list()
    names = [re.search(rb'"/" (.*)$', x).group(1).strip(b'"') for x in data]
    assert b"INBOX" in names and b"Projects" in names and b"Projects/2026" in names
    assert any(b"\\HasChildren" in x and x.endswith(b"Projects") for x in data)
    typ, data = c.list('""', "%")
    assert not any(x.endswith(b"Projects/2026") for x in data)
    # a folder whose parent does not exist: the parent is a \Noselect level
    assert c.create("Far/Away")[0] == "OK"
    typ, data = c.list('""', "%")
    assert b'(\\Noselect \\HasChildren) "/" Far' in data, data
    typ, data = c.list('""', '""')
    assert data[0].startswith(b"(\\Noselect) \"/\"")
    c.select("INBOX")
    all_uids = uids(c)
    # (imaplib's uid() drops the tagged response's text: the command by hand)
    typ, data = c._simple_command("UID", "COPY", "%d:%d" % (all_uids[0], all_uids[1]),
                                  box)
    assert typ == "OK" and re.match(rb"\[COPYUID \d+ %d:%d 1:2\]" % (all_uids[0], all_uids[1]),
                                    data[0]), data
    typ, data = c.uid("MOVE", str(all_uids[2]), "Projects/2026")
    assert typ == "OK"
    assert len(uids(c)) == 4
    # APPEND with flags, date: APPENDUID
    msg = h.to_wire(h.make_message(42))
    typ, data = c.append(box, "(\\Seen \\Flagged)",
                         imaplib.Time2Internaldate(time.time()), msg)
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = c.status(box, "(MESSAGES UIDNEXT UNSEEN SIZE)")
    assert typ == "OK" and b"MESSAGES 3" in data[0] and b"UNSEEN 2" in data[0]
    c.select(box)
    typ, data = c.fetch("3", "(FLAGS BODY.PEEK[])")
    assert b"\\Flagged" in data[0][0] and data[0][1] == msg
    c.select("Projects/2026")
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER])")
    assert b"Subject: test message 3" in data[0][1]
    # nonexistent mailboxes
    typ, data = c.select("Nope")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    c.select("INBOX")
    typ, data = c.copy("1", "Nope")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    # rename and delete
    assert c.rename("Projects", "Old")[0] == "OK"
    typ, data = c.list()
    names = b" ".join(data)
    assert b"Old/2026" in names and b"Projects" not in names
    assert c.delete("Old/2026")[0] == "OK"
    assert c.delete("INBOX")[0] == "NO"
    # subscriptions
    assert c.subscribe("Old")[0] == "OK"
    typ, data = c.lsub()
    assert b'() "/" Old' in data
    assert c.unsubscribe("Old")[0] == "OK"
    assert b'() "/" Old' not in c.lsub()[1]
    c.logout()


def test_multiappend_and_synchronizing_literal(imapd, ctx, user):
    import socket
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", imapd.tls_port), timeout=30),
                        server_hostname="localhost")
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a LOGIN %s %s\r\n" % (user.name.encode(), user.password.encode()))
    assert f.readline().startswith(b"a OK")
    m1 = h.to_wire(h.make_message(7))
    m2 = h.to_wire(h.make_message(8))
    s.sendall(b"b APPEND INBOX (\\Seen) {%d}\r\n" % len(m1))
    assert f.readline().startswith(b"+ ")
    s.sendall(m1 + b" {%d+}\r\n" % len(m2) + m2 + b"\r\n")
    ln = f.readline()
    while ln.startswith(b"* "):
        ln = f.readline()
    assert ln.startswith(b"b OK [APPENDUID ") and b":" in ln
    s.sendall(b"c STATUS INBOX (MESSAGES)\r\n")
    assert b"MESSAGES 5" in f.readline()
    s.close()


def test_two_sessions_see_each_other(imapd, ctx, store_user):
    u = store_user
    a = login(imapd, ctx, u)
    b = login(imapd, ctx, u)
    a.select("INBOX")
    b.select("INBOX")
    a.store("2", "+FLAGS", "(\\Flagged)")
    a.store("1", "+FLAGS", "(\\Deleted)")
    a.expunge()
    b.untagged_responses.clear()
    typ, data = b.noop()
    assert typ == "OK"
    assert b.untagged_responses.get("EXPUNGE") == [b"1"]
    fetches = b.untagged_responses.get("FETCH", [])
    assert any(b"\\Flagged" in x for x in fetches)
    # a new message from another session shows as EXISTS
    a.append("INBOX", None, None, h.to_wire(h.make_message(9)))
    b.untagged_responses.clear()
    b.noop()
    assert b.untagged_responses.get("EXISTS") == [b"5"]
    a.logout()
    b.logout()


def test_idle_sees_delivery(imapd, ctx, user):
    c = login(imapd, ctx, user)
    c.select("INBOX")
    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    assert c.readline().startswith(b"+ ")

    def deliver():
        time.sleep(0.3)
        user.deliver([h.make_message(10)])

    t = threading.Thread(target=deliver)
    t.start()
    c.sock.settimeout(10)
    line = c.readline()
    t.join()
    assert line.strip() == b"* 4 EXISTS"
    c.send(b"DONE\r\n")
    while True:
        ln = c.readline()
        if ln.startswith(tag):
            break
    assert b"OK" in ln
    c.logout()


def test_bad_after_login_and_unknown_fetch_item(imapd, ctx, user):
    c = login(imapd, ctx, user)
    c.select("INBOX")
    with pytest.raises(imaplib.IMAP4.error):
        c.fetch("1", "(FROBNICATE)")
    with pytest.raises(imaplib.IMAP4.error):
        c.fetch("99", "(FLAGS)")
    typ, _ = c.noop()
    assert typ == "OK"
    c.logout()


def test_curl_imaps_fetches_a_message(imapd, certs, user):
    if not h.which("curl"):
        pytest.skip("curl is not installed")
    url = "imaps://localhost:%d/INBOX/;UID=2" % imapd.tls_port
    r = h.run(["curl", "-sS", "--cacert", str(certs.ca), "--resolve",
               "localhost:%d:127.0.0.1" % imapd.tls_port, "-u",
               "%s:%s" % (user.name, user.password), url], timeout=60)
    assert "Subject: test message 2" in r.stdout
    assert "Body line 2 of message 2." in r.stdout


def test_large_message_streamed(imapd, ctx, make_user):
    u = make_user("maildir")
    big = h.big_message(8 * 1024 * 1024)
    u.deliver([big])
    c = login(imapd, ctx, u)
    c.select("INBOX")
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == big.replace(b"\n", b"\r\n")
    c.logout()
    ev = imapd.log.wait("logout", user=u.name)
    assert int(ev["maxrss_kb"]) < 40 * 1024


def test_chinese_folder_name_end_to_end(imapd, ctx, store_user):
    """A folder named 收件箱/工作 in modified UTF-7 on the wire: CREATE, LIST, APPEND,
    SELECT; the storage keeps the name in modified UTF-7 on disk (Maildir++ ".A.B", mbox
    a directory per level) and a UTF-8 name never reaches the disk."""
    u = store_user
    c = login(imapd, ctx, u)
    wire = "&ZTZO9nux-/&XeVPXA-"
    assert c.create('"%s"' % wire)[0] == "OK"
    typ, data = c.list('""', "*")
    assert any(x.endswith(b'"/" ' + wire.encode()) and b"\\HasNoChildren" in x
               for x in data), data
    assert any(x.endswith(b'"/" &ZTZO9nux-') and b"\\HasChildren" in x for x in data), data
    msg = h.to_wire(h.make_message(7))
    typ, data = c.append('"%s"' % wire, None, None, msg)
    assert typ == "OK", data
    typ, data = c.select('"%s"' % wire)
    assert typ == "OK" and data == [b"1"]
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == msg
    # an invalid modified UTF-7 spelling is refused, not stored under another name
    assert c.create('"&ZTZO9nux"')[0] == "NO"
    c.logout()
    if u.store == "maildir":
        assert (u.maildir / ".&ZTZO9nux-.&XeVPXA-").is_dir()
        names = os.listdir(u.maildir)
    else:
        assert (u.home / "mail" / "&ZTZO9nux-" / "&XeVPXA-").is_file()
        names = os.listdir(u.home / "mail")
    assert not any("收件箱" in n for n in names), names


def test_copy_keeps_flags_keywords_date_and_is_recent(imapd, ctx, store_user):
    """RFC 3501 6.4.7: the copy keeps flags and INTERNALDATE and is \\Recent; its keywords
    go along by name (the destination numbers its own); a session with the destination
    selected sees the copies arrive as recent, with their flags."""
    u = store_user
    a = login(imapd, ctx, u)
    b = login(imapd, ctx, u)
    assert a.create("Dest")[0] == "OK"
    assert a.select("INBOX")[0] == "OK"
    assert b.select("Dest")[0] == "OK"
    assert a.store("1", "FLAGS", "(\\Seen)")[0] == "OK"
    assert a.store("2", "FLAGS", "(\\Draft \\Flagged)")[0] == "OK"
    assert a.store("3", "FLAGS", "(\\Flagged $Label1 Work)")[0] == "OK"
    typ, data = a.fetch("1:3", "(INTERNALDATE)")
    dates = [re.search(rb'INTERNALDATE "([^"]+)"', x).group(1) for x in data]
    assert a.copy("1:3", "Dest")[0] == "OK"
    typ, data = b.noop()
    assert b.untagged_responses.get("EXISTS", [None])[-1] == b"3"
    assert b.untagged_responses.get("RECENT", [None])[-1] == b"3"
    typ, data = b.fetch("1:3", "(FLAGS INTERNALDATE)")
    assert typ == "OK"
    got = [sorted(re.search(rb"FLAGS \(([^)]*)\)", x).group(1).split()) for x in data]
    assert got == [sorted([b"\\Seen", b"\\Recent"]),
                   sorted([b"\\Draft", b"\\Flagged", b"\\Recent"]),
                   sorted([b"\\Flagged", b"\\Recent", b"$Label1", b"Work"])], got
    assert [re.search(rb'INTERNALDATE "([^"]+)"', x).group(1) for x in data] == dates
    # another session: the keywords are in the store, not only in b's view; no \\Recent
    c = login(imapd, ctx, u)
    assert c.select("Dest", readonly=True)[0] == "OK"
    typ, data = c.fetch("3", "(FLAGS)")
    assert sorted(re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).split()) == \
        sorted([b"\\Flagged", b"$Label1", b"Work"]), data
    for x in (a, b, c):
        x.logout()
