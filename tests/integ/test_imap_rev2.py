"""imapd: \\Recent claimed by one session (RFC 3501 2.3.2), ENABLE IMAP4rev2 (RFC 9051)
and ENABLE UTF8=ACCEPT (RFC 6855), with imaplib sessions over IMAPS against real
Maildir and mbox stores: what each session is told, and what lands on disk."""

import imaplib
import re


import helpers as h


def login(d, ctx, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=30)
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    return c


def read_reply(c, tag):
    """The untagged lines (literals joined in) and the tagged line of tag."""
    out = []
    while True:
        ln = c.readline()
        assert ln, "the connection ended"
        while True:
            m = re.search(rb"\{(\d+)\}\r\n$", ln)
            if not m:
                break
            ln += c.read(int(m.group(1)))
            more = c.readline()
            assert more, "the connection ended"
            ln += more
        ln = ln.rstrip(b"\r\n")
        if ln.startswith(tag + b" "):
            return ln, out
        out.append(ln)


def cmd(c, line):
    if isinstance(line, str):
        line = line.encode()
    tag = c._new_tag()
    c.send(tag + b" " + line + b"\r\n")
    return read_reply(c, tag)


def ok(c, line):
    tagged, out = cmd(c, line)
    assert b" OK " in tagged, (line, tagged, out)
    return out


def deliver(u, i):
    """A new message, as an MTA would deliver it."""
    if u.store == "maildir":
        u.deliver([h.make_message(i)])
    else:
        u.append_mbox_locked(h.make_message(i))


def recent_of(lines):
    r = [int(x.split()[1]) for x in lines if re.fullmatch(rb"\* \d+ RECENT", x)]
    return r[-1] if r else None


def recent_flags(lines):
    """Sequence numbers whose FETCH FLAGS hold \\Recent."""
    return sorted(int(x.split()[1]) for x in lines
                  if x.startswith(b"* ") and b" FETCH " in x and b"\\Recent" in x)


# ---- \Recent -----------------------------------------------------------------------------

def test_recent_claimed_by_one_session(imapd, ctx, store_user):
    u = store_user
    # EXAMINE and STATUS report the recent messages and claim none
    e = login(imapd, ctx, u)
    out = ok(e, "EXAMINE INBOX")
    assert recent_of(out) == 5
    assert recent_flags(ok(e, "FETCH 1:* FLAGS")) == [1, 2, 3, 4, 5]
    out = ok(e, "STATUS INBOX (RECENT MESSAGES)")
    assert out == [b"* STATUS INBOX (RECENT 5 MESSAGES 5)"]
    e.logout()

    # the first read-write SELECT claims them all; a second session gets none
    a = login(imapd, ctx, u)
    b = login(imapd, ctx, u)
    out = ok(a, "SELECT INBOX")
    assert recent_of(out) == 5
    assert recent_flags(ok(a, "FETCH 1:* FLAGS")) == [1, 2, 3, 4, 5]
    out = ok(b, "SELECT INBOX")
    assert recent_of(out) == 0
    assert recent_flags(ok(b, "FETCH 1:* FLAGS")) == []
    assert ok(b, "SEARCH RECENT") == [b"* SEARCH"]
    assert ok(a, "SEARCH RECENT") == [b"* SEARCH 1 2 3 4 5"]
    # a flag change keeps \Recent in the session that has it
    out = ok(a, "STORE 2 +FLAGS (\\Flagged)")
    assert out == [b"* 2 FETCH (FLAGS (\\Flagged \\Recent))"]
    # another session's flag change is reported without \Recent
    out = ok(b, "NOOP")
    assert out == [b"* 2 FETCH (UID 2 FLAGS (\\Flagged))"], out

    # new mail: the session that sees it first claims it
    deliver(u, 6)
    out = ok(b, "NOOP")
    assert b"* 6 EXISTS" in out and recent_of(out) == 1
    out = ok(a, "NOOP")
    assert b"* 6 EXISTS" in out and recent_of(out) == 5
    assert recent_flags(ok(b, "FETCH 6 FLAGS")) == [6]
    assert recent_flags(ok(a, "FETCH 6 FLAGS")) == []
    # nobody else gets it, and STATUS says so
    c = login(imapd, ctx, u)
    assert ok(c, "STATUS INBOX (RECENT)") == [b"* STATUS INBOX (RECENT 0)"]
    out = ok(c, "SELECT INBOX")
    assert recent_of(out) == 0
    for s in (a, b, c):
        s.logout()


def test_recent_of_appended_and_copied_messages(imapd, ctx, store_user):
    u = store_user
    a = login(imapd, ctx, u)
    ok(a, "SELECT INBOX")
    ok(a, "CREATE Work")
    ok(a, "COPY 1:2 Work")
    # a copy is new in its folder: recent for the first session that selects it
    b = login(imapd, ctx, u)
    assert ok(b, "STATUS Work (RECENT MESSAGES)") == [b"* STATUS Work (RECENT 2 MESSAGES 2)"]
    assert recent_of(ok(b, "SELECT Work")) == 2
    assert recent_of(ok(a, "SELECT Work")) == 0
    # an APPEND to the selected folder: this session sees it first
    tagged, out = cmd(b, b"APPEND Work {%d+}\r\n%s" % (len(h.make_message(9)),
                                                       h.make_message(9)))
    assert b" OK " in tagged and b"* 3 EXISTS" in out and recent_of(out) == 3
    out = ok(a, "NOOP")
    assert b"* 3 EXISTS" in out and recent_of(out) == 0
    a.logout()
    b.logout()


# ---- IMAP4rev2 ---------------------------------------------------------------------------

def test_rev2_advertised_and_enabled(imapd, ctx, store_user):
    u = store_user
    c = imaplib.IMAP4_SSL("127.0.0.1", imapd.tls_port, ssl_context=ctx, timeout=30)
    pre = c.capability()[1][0].split()
    assert b"IMAP4rev1" in pre and b"IMAP4rev2" in pre
    c.login(u.name, u.password)
    post = c.capability()[1][0].split()
    assert b"IMAP4rev1" in post and b"IMAP4rev2" in post and b"UTF8=ACCEPT" in post
    # ENABLED lists what this command enabled, once
    assert ok(c, "ENABLE IMAP4rev2 X-UNKNOWN") == [b"* ENABLED IMAP4rev2"]
    assert ok(c, "ENABLE IMAP4rev2") == [b"* ENABLED"]
    out = ok(c, "SELECT INBOX")
    # RFC 9051 6.3.2: a LIST response; no RECENT, no UNSEEN code (appendix E 10-12)
    assert b'* LIST () "/" INBOX' in out
    assert recent_of(out) is None
    assert not any(b"[UNSEEN " in x for x in out)
    assert b"* 5 EXISTS" in out
    assert any(b"[UIDVALIDITY " in x for x in out) and any(b"[UIDNEXT 6]" in x for x in out)
    # FETCH FLAGS: no \Recent; STORE's FETCH responses carry the UID (appendix E 21)
    assert recent_flags(ok(c, "FETCH 1:* FLAGS")) == []
    assert ok(c, "STORE 4 +FLAGS (\\Draft)") == [b"* 4 FETCH (UID 4 FLAGS (\\Draft))"]
    # SEARCH answers with ESEARCH (appendix E 4)
    tag = c._new_tag()
    c.send(tag + b" SEARCH ALL\r\n")
    tagged, out = read_reply(c, tag)
    assert out == [b'* ESEARCH (TAG "%s") ALL 1:5' % tag], out
    tag = c._new_tag()
    c.send(tag + b" UID SEARCH SEEN\r\n")
    tagged, out = read_reply(c, tag)
    assert out == [b'* ESEARCH (TAG "%s") UID' % tag], out
    # STATUS DELETED and SIZE (appendix E 3)
    ok(c, "STORE 1 +FLAGS.SILENT (\\Deleted)")
    out = ok(c, "STATUS INBOX (DELETED MESSAGES SIZE)")
    m = re.fullmatch(rb"\* STATUS INBOX \(DELETED 1 MESSAGES 5 SIZE (\d+)\)", out[0])
    assert m and int(m.group(1)) > 5 * 100, out
    # the rev2 session claimed nothing: a rev1 session's SELECT gets them all
    other = login(imapd, ctx, u)
    assert recent_of(ok(other, "SELECT INBOX")) == 5
    # new mail: EXISTS, no RECENT; another session's flag change comes with its UID
    deliver(u, 6)
    out = ok(other, "STORE 3 +FLAGS (\\Answered)")
    assert b"* 6 EXISTS" in out and recent_of(out) == 6
    out = ok(c, "NOOP")
    assert b"* 6 EXISTS" in out and recent_of(out) is None
    assert b"* 3 FETCH (UID 3 FLAGS (\\Answered))" in out, out
    # NAMESPACE and UNSELECT are there (folded into the base, appendix E 2)
    assert ok(c, "NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL NIL']
    ok(c, "UNSELECT")
    c.logout()
    other.logout()


def test_rev2_select_closed_and_move_copyuid(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    ok(c, "ENABLE IMAP4rev2")
    ok(c, "CREATE Done")
    ok(c, "SELECT INBOX")
    tagged, out = cmd(c, "MOVE 1 Done")
    # RFC 9051 (appendix E 7): COPYUID for MOVE, in an untagged OK before the EXPUNGE
    assert any(x.startswith(b"* OK [COPYUID ") for x in out), out
    assert b"* 1 EXPUNGE" in out and b" OK " in tagged
    # a COPY to a folder that does not exist: TRYCREATE (appendix E 8), nothing created
    tagged, _ = cmd(c, "COPY 1 Nowhere")
    assert tagged.split()[1:3] == [b"NO", b"[TRYCREATE]"]
    tagged, _ = cmd(c, "STATUS Nowhere (MESSAGES)")
    assert b" NO " in tagged
    # SELECT while selected: [CLOSED] first (appendix E 9)
    out = ok(c, "SELECT Done")
    assert out[0].startswith(b"* OK [CLOSED]")
    assert b'* LIST () "/" Done' in out
    c.logout()


# ---- UTF8=ACCEPT -------------------------------------------------------------------------

NAME = "收件箱/工作"
NAME_UTF7 = b"&ZTZO9nux-/&XeVPXA-"


def utf8_message(subject):
    return ("From: Zhāng Sān <z@example.org>\r\nTo: someone@localhost\r\n"
            "Subject: %s\r\n\r\nbody 正文\r\n" % subject).encode()


def append_utf8(c, box, msg):
    """APPEND box UTF8 (~{n}...) with a synchronizing literal8 (RFC 6855 section 4)."""
    tag = c._new_tag()
    c.send(tag + b" APPEND " + box + b" UTF8 (~{%d}\r\n" % len(msg))
    ln = c.readline()
    if not ln.startswith(b"+"):
        return ln.rstrip(b"\r\n"), []
    c.send(msg + b")\r\n")
    return read_reply(c, tag)


def test_utf8_accept_folder_and_append(imapd, ctx, store_user):
    u = store_user
    a = login(imapd, ctx, u)
    b = login(imapd, ctx, u)
    quoted = b'"' + NAME.encode() + b'"'
    # without ENABLE, a UTF-8 name is not a modified UTF-7 one: refused, nothing made
    # (UTF-8 in quoted strings is accepted from every client, for SEARCH CHARSET UTF-8)
    tagged, _ = cmd(a, b"CREATE " + quoted)
    assert b" NO [CANNOT] " in tagged, tagged
    assert not any(NAME.encode() in x or NAME_UTF7 in x for x in ok(b, b'LIST "" *'))
    assert ok(a, "ENABLE UTF8=ACCEPT") == [b"* ENABLED UTF8=ACCEPT"]
    ok(a, b"CREATE " + quoted)
    # malformed UTF-8 (an overlong "/") is BAD, not a folder
    tagged, _ = cmd(a, b'CREATE "\xe4\xb8\xad\xc0\xaf"')
    assert b" BAD " in tagged
    # this session sees the name in UTF-8, the other in modified UTF-7
    out = ok(a, b"LIST \"\" *")
    assert any(x.endswith(b' "/" ' + quoted) for x in out), out
    out = ok(b, b"LIST \"\" *")
    assert any(x.endswith(b' "/" ' + NAME_UTF7) for x in out), out
    # on disk: modified UTF-7 (Maildir++ ".A.B", mbox ~/mail/A/B)
    if u.store == "maildir":
        assert (u.maildir / ".&ZTZO9nux-.&XeVPXA-" / "cur").is_dir()
    else:
        assert (u.home / "mail" / "&ZTZO9nux-" / "&XeVPXA-").is_file()

    # APPEND UTF8 (~{n}) with UTF-8 header fields
    msg = utf8_message("周报 ✓")
    tagged, out = append_utf8(a, quoted, msg)
    assert b" OK [APPENDUID " in tagged, (tagged, out)
    # the other session reads it through the modified UTF-7 name, bytes unchanged
    out = ok(b, b"SELECT " + NAME_UTF7)
    assert b"* 1 EXISTS" in out
    out = ok(b, "FETCH 1 BODY.PEEK[]")
    assert msg in out[0], out
    # the UTF-8 session gets the envelope's subject as UTF-8 in a quoted string
    ok(a, b"SELECT " + quoted)
    out = ok(a, "FETCH 1 ENVELOPE")
    assert "周报 ✓".encode() in out[0], out
    # the grammar is "UTF8 (" literal8 ")": without the parentheses, or a literal inside
    # another list, is BAD before the client is asked for the bytes; nothing is stored
    for bad in (b" UTF8 ~{%d}\r\n", b" (~{%d}\r\n", b" UTF8 ({%d}\r\n"):
        tag = a._new_tag()
        a.send(tag + b" APPEND " + quoted + bad % len(msg))
        ln = a.readline()
        assert ln.startswith(tag + b" BAD "), (bad, ln)
    out = ok(a, b"STATUS " + quoted + b" (MESSAGES)")
    assert out[0].endswith(b"(MESSAGES 1)"), out
    # header fields that are not UTF-8 are refused even in UTF8 (...)
    tagged, _ = append_utf8(a, quoted, b"Subject: \xff\xfe\r\n\r\nx\r\n")
    assert tagged.split()[1:3] == [b"NO", b"[CANNOT]"], tagged
    # RFC 6855 section 3: no SEARCH CHARSET once enabled
    tagged, _ = cmd(a, "SEARCH CHARSET ISO-8859-1 ALL")
    assert b" BAD " in tagged
    assert ok(a, "SEARCH ALL") == [b"* SEARCH 1"]

    # a session without UTF8=ACCEPT: no UTF8 data item, no 8-bit header fields
    tagged, _ = append_utf8(b, NAME_UTF7, msg)
    assert b" BAD " in tagged, tagged
    tag = b._new_tag()
    b.send(tag + b" APPEND " + NAME_UTF7 + b" {%d+}\r\n" % len(msg) + msg + b"\r\n")
    tagged, _ = read_reply(b, tag)
    assert tagged.split()[1:3] == [b"NO", b"[CANNOT]"], tagged
    # an 8-bit body under an ASCII header is fine
    plain = b"Subject: ascii\r\n\r\n\xe6\xad\xa3\xe6\x96\x87\r\n"
    tag = b._new_tag()
    b.send(tag + b" APPEND " + NAME_UTF7 + b" {%d+}\r\n" % len(plain) + plain + b"\r\n")
    tagged, out = read_reply(b, tag)
    assert b" OK [APPENDUID " in tagged, tagged
    assert b"* 2 EXISTS" in out
    a.logout()
    b.logout()


def test_rev2_names_are_utf8(imapd, ctx, store_user):
    """RFC 9051 5.1: after ENABLE IMAP4rev2 mailbox names are UTF-8 on the wire too."""
    u = store_user
    c = login(imapd, ctx, u)
    ok(c, "ENABLE IMAP4rev2")
    ok(c, b'CREATE "' + NAME.encode() + b'"')
    out = ok(c, b'SELECT "' + NAME.encode() + b'"')
    assert b'* LIST () "/" "' + NAME.encode() + b'"' in out, out
    # APPEND UTF8 belongs to UTF8=ACCEPT, which was not enabled
    tagged, _ = append_utf8(c, b'"' + NAME.encode() + b'"', utf8_message("x"))
    assert b" BAD " in tagged
    other = login(imapd, ctx, u)
    out = ok(other, "LIST \"\" *")
    assert any(x.endswith(b' "/" ' + NAME_UTF7) for x in out), out
    c.logout()
    other.logout()
