"""imapd SEARCH through the imap_search library, with imaplib over IMAPS on Maildir and
mbox: a GB2312 RFC 2047 subject found with CHARSET UTF-8, BODY inside a base64 part,
OR/NOT, SINCE (INTERNALDATE), UID SEARCH RETURN (MIN MAX COUNT) as ESEARCH, RETURN
(SAVE) and FETCH $."""

import base64
import imaplib



def login(d, ctx, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=30)
    assert c.login(user.name, user.password)[0] == "OK"
    return c


def gb_message():
    subj = base64.b64encode("中文邮件测试".encode("gb2312")).decode()
    return ("From: li@example.cn\r\nTo: wang@example.cn\r\n"
            "Subject: =?GB2312?B?%s?=\r\n"
            "Date: Fri, 27 Nov 2026 10:00:00 +0800\r\n\r\n"
            "Plain body.\r\n" % subj).encode()


def b64_message():
    text = base64.encodebytes(b"The needle is xylophonic in this part.\n" * 3)
    return (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: encoded body\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
            b"--B\r\nContent-Type: text/plain\r\n\r\nnothing here\r\n"
            b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" +
            text.replace(b"\n", b"\r\n") + b"--B--\r\n")


def search(c, *crit):
    typ, data = c.uid("SEARCH", *crit)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_search_library(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    old = imaplib.Time2Internaldate(1577880000)     # 1-Jan-2020
    assert c.append("INBOX", None, old, gb_message())[0] == "OK"
    assert c.append("INBOX", None, None, b64_message())[0] == "OK"
    c.select("INBOX")
    all_uids = search(c, "ALL")
    assert len(all_uids) == 7
    gb_uid, b64_uid = all_uids[-2], all_uids[-1]
    # the RFC 2047 GB2312 subject, searched in UTF-8
    c.literal = "邮件".encode()
    typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")
    assert typ == "OK" and [int(x) for x in data[0].split()] == [gb_uid], data
    # the same as a quoted string (UTF-8 in quoted strings, as clients send them)
    tag = c._new_tag()
    c.send(tag + b' UID SEARCH CHARSET UTF-8 SUBJECT "\xe9\x82\xae\xe4\xbb\xb6"\r\n')
    typ, data = c._command_complete("SEARCH", tag)
    assert typ == "OK", data
    assert [int(x) for x in c.untagged_responses.pop("SEARCH")[0].split()] == [gb_uid]
    c.literal = "没有".encode()
    typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")
    assert typ == "OK" and data[0].split() == []
    typ, data = c.uid("SEARCH", "CHARSET", "NO-SUCH-CHARSET", "SUBJECT", "x")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    # BODY finds words inside a base64 text part, not in the raw encoded bytes
    assert search(c, "BODY", "xylophonic") == [b64_uid]
    assert search(c, "BODY", "eHlsb3Bob25") == []
    # OR / NOT
    assert search(c, "OR", "SUBJECT", '"test message 1"', "SUBJECT", '"encoded body"') == \
        [all_uids[0], b64_uid]
    assert search(c, "NOT", "BODY", "xylophonic") == all_uids[:-1]
    # SINCE: INTERNALDATE; the message appended with a 2020 date is not found
    since = search(c, "SINCE", "1-Jan-2025")
    assert gb_uid not in since and b64_uid in since
    assert search(c, "BEFORE", "1-Jan-2021") == [gb_uid]
    # UID SEARCH RETURN (MIN MAX COUNT): one ESEARCH response
    typ, data = c._simple_command("UID", "SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
    assert typ == "OK"
    typ, es = c._untagged_response(typ, data, "ESEARCH")
    assert es[0].endswith(b"UID MIN %d MAX %d COUNT 7" % (all_uids[0], all_uids[-1])), es
    # SEARCH RETURN (SAVE), then FETCH $ names exactly those messages
    typ, data = c._simple_command("SEARCH", "RETURN", "(SAVE)", "OR", "BODY",
                                  "xylophonic", "BEFORE", "1-Jan-2021")
    assert typ == "OK"
    assert "ESEARCH" not in c.untagged_responses
    typ, data = c.fetch("$", "(UID)")
    assert typ == "OK"
    got = sorted(int(x.split(b"UID ")[1].rstrip(b")")) for x in data)
    assert got == [gb_uid, b64_uid], data
    typ, data = c.uid("FETCH", "$", "(FLAGS)")
    assert typ == "OK" and len(data) == 2
    # a BADCHARSET NO with SAVE empties "$" (RFC 5182 2.1) ...
    typ, data = c._simple_command("SEARCH", "RETURN", "(SAVE)", "CHARSET", "NO-SUCH",
                                  "SUBJECT", "x")
    assert typ == "NO"
    typ, data = c.uid("FETCH", "$", "(UID)")
    assert typ == "OK" and data == [None]
    # ... and selecting a folder again starts with an empty "$"
    c._simple_command("SEARCH", "RETURN", "(SAVE)", "ALL")
    assert len(c.uid("FETCH", "$", "(UID)")[1]) == 7
    c.select("INBOX")
    typ, data = c.uid("FETCH", "$", "(UID)")
    assert typ == "OK" and data == [None]
    # the CAPABILITY names both extensions
    typ, data = c.capability()
    assert b"ESEARCH" in data[0] and b"SEARCHRES" in data[0]
    c.logout()
