"""imapd FETCH of the MIME structure with imaplib over IMAPS, on Maildir and on mbox:
ENVELOPE and BODYSTRUCTURE of a multipart message with an attachment and a nested
message/rfc822, BODY.PEEK[1.MIME], BODY[HEADER.FIELDS (...)], partials, BINARY of a
base64 part, BINARY.SIZE, the macros, and \\Seen set by BODY[] but not BODY.PEEK[]."""

import base64
import imaplib
import re


ATTACH = bytes(range(256)) * 3 + b"\x00end"

NESTED = (b"From: Inner Sender <inner@example.org>\r\n"
          b"To: someone@example.net\r\n"
          b"Subject: inner message\r\n"
          b"Message-ID: <inner@example.org>\r\n"
          b"\r\n"
          b"Inner body.\r\n")


def multipart_message():
    b64 = base64.encodebytes(ATTACH).replace(b"\n", b"\r\n")
    return (b"From: Alice Example <alice@example.org>\r\n"
            b"To: Bob <bob@example.net>, carol@example.net\r\n"
            b"Cc: Dave <dave@example.com>\r\n"
            b"Subject: multipart test\r\n"
            b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
            b"Message-ID: <outer@example.org>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n"
            b"\r\n"
            b"preamble\r\n"
            b"--XYZ\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n"
            b"Content-Language: en\r\n"
            b"\r\n"
            b"Hello Bob, this is the text part.\r\n"
            b"--XYZ\r\n"
            b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
            b"\r\n" + b64 +
            b"--XYZ\r\n"
            b"Content-Type: message/rfc822\r\n"
            b"\r\n" + NESTED +
            b"--XYZ--\r\n")


def login(d, ctx, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=30)
    assert c.login(user.name, user.password)[0] == "OK"
    return c


def joined(data):
    return b"".join(x[0] + b"{" + x[1] + b"}" if isinstance(x, tuple) else x
                    for x in data)


def test_fetch_structure_sections_binary(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    msg = multipart_message()
    assert c.append("INBOX", None, None, msg)[0] == "OK"
    typ, data = c.select("INBOX")
    n = int(data[0])
    seq = str(n)
    # ENVELOPE: fields raw, address lists as (name adl mailbox host)
    typ, data = c.fetch(seq, "(ENVELOPE)")
    env = data[0]
    assert typ == "OK"
    assert b'"Fri, 27 Nov 2026 10:00:00 +0000" "multipart test"' in env, env
    assert b'(("Alice Example" NIL "alice" "example.org"))' in env
    assert b'(("Bob" NIL "bob" "example.net")(NIL NIL "carol" "example.net"))' in env
    assert b'(("Dave" NIL "dave" "example.com"))' in env
    assert b'"<outer@example.org>"' in env
    # BODYSTRUCTURE: three parts, the attachment with its disposition, the nested
    # message with its own envelope and body
    typ, data = c.fetch(seq, "(BODYSTRUCTURE)")
    bs = joined(data)
    assert b'"mixed" ("boundary" "XYZ")' in bs, bs
    assert b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 33 1' in bs, bs
    assert b'"application" "octet-stream" ("name" "data.bin") NIL NIL "base64"' in bs
    assert b'("attachment" ("filename" "data.bin"))' in bs
    assert re.search(rb'"message" "rfc822" NIL NIL NIL "7bit" %d \((?:NIL|"[^"]*") "inner message"'
                     % (len(NESTED) - 2), bs), bs
    assert b'"inner" "example.org"' in bs
    # BODY (no extension data) and the FULL macro
    typ, data = c.fetch(seq, "FULL")
    full = joined(data)
    assert b"ENVELOPE (" in full and b"BODY (" in full and b"RFC822.SIZE" in full
    assert b"FLAGS" in full and b"INTERNALDATE" in full and b"attachment" not in full
    typ, data = c.fetch(seq, "ALL")
    assert b"ENVELOPE (" in joined(data) and b"BODY (" not in joined(data)
    # sections
    typ, data = c.fetch(seq, "(BODY.PEEK[1.MIME])")
    assert data[0][1] == (b"Content-Type: text/plain; charset=us-ascii\r\n"
                          b"Content-Language: en\r\n\r\n"), data
    assert b"BODY[1.MIME]" in data[0][0]
    typ, data = c.fetch(seq, "(BODY.PEEK[1])")
    assert data[0][1] == b"Hello Bob, this is the text part."
    typ, data = c.fetch(seq, "(BODY.PEEK[HEADER.FIELDS (From Subject)])")
    assert data[0][1] == (b"From: Alice Example <alice@example.org>\r\n"
                          b"Subject: multipart test\r\n\r\n"), data
    assert b"BODY[HEADER.FIELDS (From Subject)]" in data[0][0]
    typ, data = c.fetch(seq, "(BODY.PEEK[HEADER.FIELDS.NOT (From Subject To Cc Date "
                             "Message-ID MIME-Version)])")
    assert data[0][1].startswith(b"Content-Type: multipart/mixed")
    typ, data = c.fetch(seq, "(BODY.PEEK[3.HEADER])")
    assert data[0][1] == NESTED.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    typ, data = c.fetch(seq, "(BODY.PEEK[3.TEXT])")
    assert data[0][1] == b"Inner body."   # the CRLF before the boundary is its own
    # partial <0.10>: the first ten octets, labelled with the origin only
    typ, data = c.fetch(seq, "(BODY.PEEK[1]<0.10>)")
    assert data[0][1] == b"Hello Bob," and b"BODY[1]<0>" in data[0][0]
    typ, data = c.fetch(seq, "(BODY.PEEK[]<0.10>)")
    assert data[0][1] == msg[:10]
    # BINARY: the decoded bytes (with a NUL: a literal8), BINARY.SIZE its length
    typ, data = c.fetch(seq, "(BINARY.PEEK[2])")
    assert data[0][1] == ATTACH, data[0][0]
    assert b"BINARY[2] ~{%d}" % len(ATTACH) in data[0][0]
    typ, data = c.fetch(seq, "(BINARY.SIZE[2])")
    assert b"BINARY.SIZE[2] %d" % len(ATTACH) in data[0], data
    typ, data = c.fetch(seq, "(BINARY.PEEK[2]<256.4>)")
    assert data[0][1] == bytes([0, 1, 2, 3])
    # a part that does not exist: an empty string
    typ, data = c.fetch(seq, "(BODY.PEEK[9])")
    assert typ == "OK" and data[0][1] == b"" if isinstance(data[0], tuple) \
        else b'BODY[9] ""' in data[0]
    # none of the PEEKs set \Seen; BODY[1] does, with FLAGS in the same response
    typ, data = c.fetch(seq, "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = c.fetch(seq, "(BODY[1])")
    assert data[0][1] == b"Hello Bob, this is the text part."
    assert b"\\Seen" in joined(data), data
    c.logout()


def test_seen_after_body_not_after_peek(imapd, ctx, user):
    c = login(imapd, ctx, user)
    c.select("INBOX")
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] and b"\\Seen" not in joined(data)
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = c.fetch("1", "(BODY[])")
    assert b"FLAGS (\\Seen" in joined(data), data
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]
    # BINARY[] too; BINARY.SIZE leaves \Seen alone
    typ, data = c.fetch("2", "(BINARY.SIZE[] FLAGS)")
    assert b"\\Seen" not in joined(data)
    typ, data = c.fetch("2", "(BINARY[])")
    assert b"\\Seen" in joined(data)
    c.logout()
