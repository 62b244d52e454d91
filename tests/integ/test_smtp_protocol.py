"""smtp-submit's SMTP (RFC 5321 and the extensions issue 7 lists), mostly on port 25
(-m mx) with the raw client of helpers.py: every command, the EHLO keywords,
ENHANCEDSTATUSCODES, pipelining (RFC 2920) up to a whole transaction in one write,
dot-stuffing, the SMTP-smuggling sequences, BDAT/CHUNKING, 8BITMIME, SMTPUTF8, DSN
parameters kept in the envelope, the hop limit, the recipient and error limits, NULs and
binary garbage, the pre-greeting talker and the idle timeout.  Each test looks at what
was queued and delivered, not only at the replies."""

import os
import re
import socket

import pytest

import helpers as h

OTHER = "example.net"


def mx(d, name="client.example.net"):
    c = h.Smtp(d.mx_port)
    assert c.greeting.code == 220, c.greeting
    if name:
        c.ehlo(name)
    return c


def only_message(d, user):
    """The user's one delivered message, once the queue is empty again."""
    got = h.wait_stored(user, 1)
    d.wait_queue_empty()
    got = user.stored()
    assert len(got) == 1, "%d messages delivered" % len(got)
    return got[0].replace(b"\r\n", b"\n")


def body_of(stored):
    return stored.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]


# --- commands


def test_greeting_and_ehlo_keywords(smtpd):
    c = mx(smtpd, name=None)
    assert c.greeting.lines[0].startswith(h.SMTP_HOSTNAME + " "), c.greeting
    r = c.ehlo("client.example.net")
    assert r.lines[0].split()[0] == h.SMTP_HOSTNAME, r
    kw = h.Smtp.keywords(r)
    for k in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS",
              "SMTPUTF8", "CHUNKING", "DSN"):
        assert k in kw, "%s not in %s" % (k, sorted(kw))
    assert kw["SIZE"].isdigit() and int(kw["SIZE"]) > 0, kw
    assert "AUTH" not in kw
    # the greeting and EHLO carry no enhanced code (RFC 2034 section 3), the rest do
    assert c.greeting.enh is None and r.enh is None
    for cmd, code in (("NOOP", 250), ("RSET", 250)):
        r = c.cmd(cmd)
        assert r.code == code and r.enh == "2.0.0", (cmd, r)
    r = c.cmd("QUIT")
    assert r.code == 221 and r.enh == "2.0.0", r
    assert c.wait_closed()


def test_helo_then_ehlo_again(smtpd, make_user):
    """HELO is answered with our name; a later EHLO resets the transaction (RFC 5321
    section 4.1.4)."""
    u = make_user("maildir")
    c = mx(smtpd, name=None)
    r = c.cmd("HELO old.example.net")
    assert r.code == 250 and h.SMTP_HOSTNAME in r.lines[0], r
    assert c.cmd("MAIL FROM:<a@%s>" % OTHER).code == 250
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    r = c.cmd("EHLO again.example.net")
    assert r.code == 250 and "PIPELINING" in h.Smtp.keywords(r)
    r = c.cmd("DATA")
    assert r.code == 503 and r.enh == "5.5.1", r
    c.quit()
    assert smtpd.queue_ids() == []


def test_rset_noop_vrfy_help_unknown(smtpd, make_user):
    u = make_user("maildir")
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<a@%s>" % OTHER).code == 250
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    r = c.cmd("RSET")
    assert (r.code, r.enh) == (250, "2.0.0"), r
    r = c.cmd("RCPT TO:<%s>" % h.address(u))
    assert (r.code, r.enh) == (503, "5.5.1"), r
    r = c.cmd("NOOP")
    assert (r.code, r.enh) == (250, "2.0.0"), r
    r = c.cmd("NOOP some argument")   # RFC 5321 section 4.1.1.9: a parameter is ignored
    assert r.code == 250, r
    for arg in (u.name, h.address(u), "nosuchuser"):
        r = c.cmd("VRFY " + arg)
        assert r.code == 252 and r.enh.startswith("2."), (arg, r)
    r = c.cmd("HELP")
    assert r.code == 214 and r.enh.startswith("2."), r
    r = c.cmd("EXPN staff")
    assert r.code in (252, 502, 550) and r.enh, r
    r = c.cmd("XYZZY")
    assert (r.code, r.enh) == (500, "5.5.2"), r
    r = c.cmd("MAIL FROM:<broken")
    assert r.code == 501 and r.enh.startswith("5."), r
    r = c.cmd("MAIL FROM:<a@%s> FOO=BAR" % OTHER)
    assert r.code == 555 and r.enh == "5.5.4", r
    r = c.cmd("DATA")
    assert r.code == 503, r
    assert c.quit().code == 221


def test_mail_sequence_errors(smtpd, make_user):
    u = make_user("maildir")
    c = mx(smtpd)
    r = c.cmd("RCPT TO:<%s>" % h.address(u))
    assert (r.code, r.enh) == (503, "5.5.1"), r
    assert c.cmd("MAIL FROM:<a@%s>" % OTHER).code == 250
    r = c.cmd("MAIL FROM:<b@%s>" % OTHER)
    assert (r.code, r.enh) == (503, "5.5.1"), r
    r = c.cmd("DATA")
    assert r.code in (503, 554), r
    c.quit()


def test_pipelining_rfc2920(smtpd, make_user):
    """MAIL, three RCPTs (one unknown) and DATA in one write, then the message and QUIT in
    another: the replies come in order, one each."""
    a = make_user("maildir")
    b = make_user("mbox")
    c = mx(smtpd)
    c.send(("MAIL FROM:<pipe@%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<nosuch@%s>\r\n"
            "RCPT TO:<%s>\r\nDATA\r\n" % (OTHER, h.address(a), h.LOCAL_DOMAIN,
                                           h.address(b))).encode())
    codes = [c.reply().code for _ in range(5)]
    assert codes == [250, 250, 550, 250, 354], codes
    c.send(h.smtp_data_bytes(h.smtp_message("pipelined")) + b"QUIT\r\n")
    r = c.reply()
    assert r.code == 250, r
    qid = h.queued_id(r)
    assert c.reply().code == 221
    for u in (a, b):
        assert b"pipelined" in h.wait_stored(u, 1)[0]
    smtpd.wait_queue_empty()
    ev = smtpd.queue_lines(qid)[0]
    assert ev["from"] == "pipe@%s" % OTHER and ev["nrcpt"] == "2", ev


def test_whole_transaction_in_one_write(smtpd, make_user):
    """EHLO, MAIL, RCPT, DATA, the message, a second transaction and QUIT in a single
    write (what the MAIL handoff from the worker to the session must carry whole)."""
    u = make_user("maildir")
    c = mx(smtpd, name=None)
    data = (b"EHLO burst.example.net\r\n"
            + b"MAIL FROM:<burst@example.net>\r\nRCPT TO:<%s>\r\nDATA\r\n" % h.address(u).encode()
            + h.smtp_data_bytes(h.smtp_message("burst one"))
            + b"MAIL FROM:<burst@example.net>\r\nRCPT TO:<%s>\r\nDATA\r\n" % h.address(u).encode()
            + h.smtp_data_bytes(h.smtp_message("burst two"))
            + b"QUIT\r\n")
    c.send(data)
    codes = [c.reply().code for _ in range(10)]
    assert codes == [250, 250, 250, 354, 250, 250, 250, 354, 250, 221], codes
    assert c.wait_closed()
    got = h.wait_stored(u, 2)
    smtpd.wait_queue_empty()
    subjects = sorted(h.header_fields(g, "Subject")[0] for g in got)
    assert subjects == ["burst one", "burst two"]


def test_dot_stuffing_both_ways(smtpd, make_user):
    """Lines that start with '.' arrive intact (the client's stuffing dot removed, no
    other), and a line of '..' stuffed as '...' too; a lone '.' inside a line is data."""
    u = make_user("maildir")
    body = (b".hidden line\n..two dots\n.\xe2\x80\x8b\n...\n"
            b"middle . dot\n. starts with dot space\n.\n. \nlast\n")
    # body contains a line "." alone: stuffed as ".." by smtp_data_bytes
    c = mx(smtpd)
    m, rr, final = c.send_mail("dots@%s" % OTHER, [h.address(u)],
                               h.smtp_message("dots", body=body),
                               mail_params="BODY=8BITMIME")
    assert final.code == 250, final
    c.quit()
    assert body_of(only_message(smtpd, u)) == body


def test_dot_stuffing_smtplib(smtpd, make_user):
    import smtplib
    u = make_user("mbox")
    body = b".leading\n..double\nplain\n.\nend\n"
    msg = h.smtp_message("smtplib dots", body=body)
    s = smtplib.SMTP("127.0.0.1", smtpd.mx_port, local_hostname="client.example.net",
                     timeout=60)
    assert s.sendmail("dots@%s" % OTHER, [h.address(u)], h.to_wire(msg)) == {}
    s.quit()
    # mbox: a "From " line would be quoted; these are not, they must be byte-exact
    assert body_of(only_message(smtpd, u)) == body


SMUGGLE = [
    (b"\n.\n", "LF.LF"),
    (b"\n.\r\n", "LF.CRLF"),
    (b"\r\n.\n", "CRLF.LF"),
    (b"\r.\r", "CR.CR"),
    (b"\r.\r\n", "CR.CRLF"),
    (b"\r\n.\r", "CRLF.CR"),
    (b"\n.\r", "LF.CR"),
    (b"\r\n\x00.\r\n", "CRLF NUL.CRLF"),
    (b"\r\n.\x00\r\n", "CRLF.NUL CRLF"),
    (b"\r\n .\r\n", "CRLF SP.CRLF"),
    (b"\n\r\n.\r", "LF CRLF.CR"),
]


@pytest.mark.parametrize("seq,name", SMUGGLE, ids=[n for _, n in SMUGGLE])
def test_smtp_smuggling(smtpd, make_user, seq, name):
    """The 2023 SMTP-smuggling attack: a fake end of data followed by a second
    transaction inside the message.  Exactly one message is queued and delivered (or the
    one message refused); the smuggled one never is."""
    u = make_user("maildir")
    victim = make_user("maildir")
    smuggled = (b"MAIL FROM:<ceo@%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                b"From: <ceo@%s>\r\nSubject: SMUGGLED\r\n\r\nsmuggled body\r\n.\r\n"
                % (h.LOCAL_DOMAIN.encode(), h.address(victim).encode(),
                   h.LOCAL_DOMAIN.encode()))
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<attacker@%s>" % OTHER).code == 250
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    assert c.cmd("DATA").code == 354
    # the classic payload: the smuggled transaction's own CRLF.CRLF is the real end
    c.send(b"From: <attacker@example.net>\r\nSubject: carrier\r\n\r\nfirst part" + seq
           + smuggled)
    r = c.reply()
    assert (r.code == 250 or 500 <= r.code < 600) and r.enh, r
    # nothing more was answered: no reply to a smuggled MAIL/RCPT/DATA
    r2 = c.cmd("NOOP")
    assert (r2.code, r2.enh) == (250, "2.0.0") and "queued" not in r2.text, r2
    assert c.quit().code == 221
    smtpd.wait_queue_empty()
    if r.code == 250:
        got = h.wait_stored(u, 1)
        assert len(got) == 1
        stored = got[0]
        assert b"carrier" in stored and b"SMUGGLED" in stored and b"smuggled body" in stored
    # a smuggled message, had one been queued, is delivered before the queue is empty
    smtpd.wait_queue_empty()
    assert victim.stored() == [], "a smuggled message was delivered"
    qids = [m.group(2) for m in map(h.QUEUE_ID_LINE_RE.search, smtpd.log.text().splitlines())
            if m and "from=" in m.group(3)]
    assert len(qids) <= 1, qids


def test_bdat_chunks(smtpd, make_user):
    """CHUNKING (RFC 3030): three chunks, the last one LAST; '\\r\\n.\\r\\n' inside a chunk
    is data, not an end; the bytes arrive exactly."""
    u = make_user("maildir")
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<chunks@%s> BODY=8BITMIME" % OTHER).code == 250
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    parts = [b"From: <chunks@example.net>\r\nSubject: chunked\r\n\r\n",
             b"line one\r\n.\r\nMAIL FROM:<x@example.net>\r\n..dots\r\n\xc3\xa4\xc3\xb6\r\n",
             b"last line\r\n"]
    for i, p in enumerate(parts):
        last = " LAST" if i == len(parts) - 1 else ""
        c.send(b"BDAT %d%s\r\n" % (len(p), last.encode()) + p)
        r = c.reply()
        assert r.code == 250, (i, r)
    qid = h.queued_id(r)
    c.quit()
    stored = only_message(smtpd, u)
    assert body_of(stored) == (b"line one\n.\nMAIL FROM:<x@example.net>\n..dots\n"
                               b"\xc3\xa4\xc3\xb6\nlast line\n")
    smtpd.wait_queue_line(qid, status="sent")


def test_bdat_pipelined_and_zero_last(smtpd, make_user):
    """BDAT chunks pipelined in one write with MAIL and RCPT, then 'BDAT 0 LAST'; DATA
    after BDAT is 503 (RFC 3030 section 3: the state is then indeterminate, a RSET is
    required), and that transaction is not queued."""
    u = make_user("maildir")
    c = mx(smtpd)
    head = b"Subject: bdat zero\r\n\r\n"
    c.send(b"MAIL FROM:<z@example.net>\r\nRCPT TO:<%s>\r\nBDAT %d\r\n%sBDAT 5\r\nabc\r\n"
           % (h.address(u).encode(), len(head), head))
    codes = [c.reply().code for _ in range(4)]
    assert codes == [250, 250, 250, 250], codes
    r = c.cmd("BDAT 0 LAST")
    assert r.code == 250, r
    qid = h.queued_id(r)
    # DATA after BDAT
    assert c.cmd("MAIL FROM:<z@example.net>").code == 250
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    c.send(b"BDAT 8\r\nno, DATA")
    assert c.reply().code == 250
    r = c.cmd("DATA")
    assert r.code == 503 and r.enh == "5.5.1", r
    assert c.cmd("RSET").code == 250
    c.quit()
    assert body_of(only_message(smtpd, u)) == b"abc\n"
    smtpd.wait_queue_line(qid, status="sent")


def test_bdat_binary_chunk(smtpd, make_user):
    """A chunk with every byte value but NUL (CR and LF alone included): the session
    neither hangs on the byte count nor loses step; the message is queued whole or
    refused with a clear 5xx, and the next command is answered."""
    u = make_user("maildir")
    raw = bytes(b for b in range(1, 256)) * 8
    chunk = b"Subject: binary\r\n\r\n" + raw + b"\r\n"
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<bin@%s> BODY=8BITMIME" % OTHER).code == 250
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    r = c.reply()
    assert r.code == 250 or (500 <= r.code < 600 and r.enh), r
    assert c.cmd("NOOP").code == 250
    c.quit()
    smtpd.wait_queue_empty()
    if r.code == 250:
        got = h.wait_stored(u, 1)
        assert b"Subject: binary" in got[0] and raw[200:250] in got[0]


def test_8bitmime(smtpd, make_user):
    u = make_user("maildir")
    body = "Grüße aus Köln, ½ €\n".encode()
    msg = ("Subject: 8bit\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
           "Content-Transfer-Encoding: 8bit\n\n").encode() + body
    c = mx(smtpd)
    m, rr, final = c.send_mail("eight@%s" % OTHER, [h.address(u)], msg,
                               mail_params="BODY=8BITMIME")
    assert final.code == 250, final
    c.quit()
    assert body_of(only_message(smtpd, u)) == body


def test_smtputf8_address(smtpd, make_user):
    """An SMTPUTF8 transaction from a UTF-8 sender; without the SMTPUTF8 parameter the
    same path is 550 5.6.7 (RFC 6531 section 3.5)."""
    u = make_user("maildir")
    sender = "jörg@bücher.example"
    c = mx(smtpd)
    r = c.cmd("MAIL FROM:<%s>" % sender)
    assert (r.code, r.enh) == (550, "5.6.7"), r
    r = c.cmd("MAIL FROM:<%s> SMTPUTF8" % sender)
    assert r.code == 250, r
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    msg = ("From: Jörg <%s>\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\n\nhallo\n"
           % sender).encode()
    r = c.data(msg)
    assert r.code == 250, r
    qid = h.queued_id(r)
    c.quit()
    stored = only_message(smtpd, u)
    assert ("Return-Path: <%s>" % sender).encode() in stored, stored[:400]
    assert "Jörg".encode() in stored
    ev = smtpd.queue_lines(qid)[0]
    # the log keeps well-formed UTF-8 (log_sanitize()); the protocol is RFC 6531's
    assert ev["from"] == sender, ev
    assert ev.get("proto") == "UTF8SMTP", ev


def test_idn_domain_both_forms(smtpd, make_user):
    """An internationalized local domain (a Chinese one, written in UTF-8 in the config):
    mail to the user at its U-label form (SMTPUTF8) and at its A-label form is delivered;
    a look-alike is refused as relaying."""
    smtpd.configure(local_domains="%s 例子.测试" % h.LOCAL_DOMAIN)
    u = make_user("maildir")
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<sender@example.net> SMTPUTF8").code == 250
    assert c.cmd("RCPT TO:<%s@例子.测试>" % u.name).code == 250
    assert c.cmd("RCPT TO:<%s@XN--FSQU00A.xn--0zwm56d>" % u.name).code == 250
    r = c.cmd("RCPT TO:<%s@例子.测试.example>" % u.name)
    assert (r.code, r.enh) == (554, "5.7.1"), r
    r = c.data(b"From: sender@example.net\nSubject: idn\n\nto both forms\n")
    assert r.code == 250, r
    c.quit()
    # two envelope addresses of one user: one copy each, as for two aliases of one user
    h.wait_stored(u, 2)
    smtpd.wait_queue_empty()
    got = u.stored()
    assert len(got) == 2 and all(b"to both forms" in g for g in got), got
    dto = sorted(g.split(b"Delivered-To: ", 1)[1].split(b"\r\n", 1)[0].split(b"\n", 1)[0]
                 for g in got)
    assert dto == sorted([("%s@例子.测试" % u.name).encode(),
                          ("%s@XN--FSQU00A.xn--0zwm56d" % u.name).encode()]), dto


def test_dsn_parameters_kept(smtpd, ctx, make_user):
    """RFC 3461 parameters are accepted and kept for the delivery issue: a submission to
    another domain stays queued (remote delivery is issue 8), and its envelope and -bp
    show RET, ENVID, NOTIFY and ORCPT."""
    u = make_user("maildir")
    c = h.Smtp(smtpd.port)
    c.ehlo()
    c.starttls(ctx)
    kw = h.Smtp.keywords(c.ehlo())
    assert "DSN" in kw
    assert c.auth_plain(u.name, u.password).code == 235
    r = c.cmd("MAIL FROM:<%s> RET=HDRS ENVID=QQ314159+2Bx" % h.address(u))
    assert r.code == 250, r
    r = c.cmd("RCPT TO:<friend@%s> NOTIFY=SUCCESS,FAILURE "
              "ORCPT=rfc822;friend+2Bdsn@%s" % (OTHER, OTHER))
    assert r.code == 250, r
    r = c.cmd("RCPT TO:<%s> NOTIFY=NEVER" % h.address(u))
    assert r.code == 250, r
    r = c.data(h.smtp_message("dsn kept", sender=h.address(u)))
    assert r.code == 250, r
    qid = h.queued_id(r)
    c.quit()
    h.wait_stored(u, 1)
    # the local recipient is done, the remote one waits for issue 8's runner
    env = smtpd.wait_envelope(qid, "\nstate delivered\n")
    assert "\nret hdrs\n" in env, env
    assert "\nenvid QQ314159+x\n" in env, env
    assert "\nauth %s\n" % u.name in env, env
    assert "\nnotify success,failure\n" in env, env
    assert "\norcpt rfc822;friend+dsn@%s\n" % OTHER in env, env
    assert "\nnotify never\n" in env, env
    assert "kind remote" in env
    listing = smtpd.queue_list()
    assert qid in listing and "friend@%s" % OTHER in listing, listing
    assert smtpd.queue_ids() == [qid]


def test_hop_count_loop_554(smtpd, make_user):
    """101 Received: fields: a mail loop (RFC 5321 section 6.3): 554, nothing queued; 30
    are fine."""
    u = make_user("maildir")
    def with_hops(n, subject):
        rcvd = "".join("Received: from hop%d.example.net by hop%d.example.net; "
                       "Sat, 28 Nov 2026 10:00:00 +0000\n" % (i, i + 1) for i in range(n))
        return (rcvd + "Subject: %s\n\nloop?\n" % subject).encode()
    c = mx(smtpd)
    m, rr, final = c.send_mail("loop@%s" % OTHER, [h.address(u)], with_hops(101, "looping"))
    assert final.code == 554 and final.enh and final.enh.startswith("5.4."), final
    m, rr, final = c.send_mail("loop@%s" % OTHER, [h.address(u)], with_hops(30, "thirty"))
    assert final.code == 250, final
    c.quit()
    stored = only_message(smtpd, u)
    assert b"thirty" in stored
    assert len(h.header_fields(stored, "Received")) == 31


def test_too_many_recipients(smtpd, make_user):
    smtpd.configure(max_recipients=2)
    a = make_user("maildir")
    b = make_user("maildir")
    c = make_user("maildir")
    s = mx(smtpd)
    assert s.cmd("MAIL FROM:<many@%s>" % OTHER).code == 250
    assert s.cmd("RCPT TO:<%s>" % h.address(a)).code == 250
    assert s.cmd("RCPT TO:<%s>" % h.address(b)).code == 250
    r = s.cmd("RCPT TO:<%s>" % h.address(c))
    assert r.code in (452, 552) and r.enh and r.enh.endswith(".5.3"), r
    r = s.data(h.smtp_message("two of three"))
    assert r.code == 250, r
    s.quit()
    for x in (a, b):
        assert b"two of three" in h.wait_stored(x, 1)[0]
    smtpd.wait_queue_empty()
    assert c.stored() == []


def test_too_many_errors_dropped(smtpd):
    smtpd.configure(max_errors=3)
    c = mx(smtpd)
    replies = []
    for i in range(10):
        try:
            c.send(b"BOGUS%d\r\n" % i)
        except (BrokenPipeError, ConnectionResetError):
            break
        r = c.reply_or_eof()
        if r is None:
            break
        replies.append(r)
        if r.code == 421:
            break
    assert replies and replies[-1].code == 421 and replies[-1].enh.startswith("4."), replies
    assert all(r.code == 500 for r in replies[:-1]), replies
    assert len(replies) <= 4, replies
    assert c.wait_closed()
    # a fresh connection is served
    c2 = mx(smtpd)
    assert c2.quit().code == 221


@pytest.mark.parametrize("junk", [
    b"NOOP\x00\r\n",
    b"\x00\x00\x00\x00\r\n",
    b"MAIL FROM:<a\x00b@example.net>\r\n",
    b"\xff\xfe\xfd\x80garbage\r\n",
    b"EHLO " + b"A" * 5000 + b"\r\n",
    os.urandom(4096).replace(b"\n", b"") + b"\r\n",
], ids=["NOOP-NUL", "NULs", "NUL-in-path", "8bit", "overlong-EHLO", "random-4k"])
def test_nul_and_binary_garbage(smtpd, make_user, junk):
    """NULs, 8-bit garbage, an overlong line: a clear 5xx reply (or a 421 and the end),
    never a crash, and the next connection works."""
    u = make_user("maildir")
    c = mx(smtpd)
    c.send(junk)
    r = c.reply_or_eof()
    assert r is not None, "connection closed without a reply"
    assert (500 <= r.code < 600 or r.code == 421) and r.enh, r
    if r.code != 421:
        r = c.cmd("NOOP")
        assert r.code in (250, 421), r
    c.close()
    c = mx(smtpd)
    m, rr, final = c.send_mail("ok@%s" % OTHER, [h.address(u)], h.smtp_message("after junk"))
    assert final.code == 250
    c.quit()
    assert b"after junk" in only_message(smtpd, u)


def test_binary_garbage_flood(smtpd):
    """Random bytes without line ends, then more with them: each over-long or bad line
    is an error, the error limit ends the connection (421 or a close), no process is
    left behind and no crash."""
    smtpd.configure(max_errors=3)
    c = mx(smtpd)
    replies, closed = [], False
    for _ in range(40):
        try:
            c.send(os.urandom(16384).replace(b"\n", b"x") + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        r = c.reply_or_eof()
        if r is None:
            closed = True
            break
        replies.append(r)
        if r.code == 421:
            break
    assert closed or replies[-1].code == 421, replies
    assert all(r.code in (421, 500) and r.enh for r in replies), replies
    assert c.wait_closed()
    assert smtpd.wait_idle(), smtpd.children()


def test_pregreet_talker_dropped(smtpd, make_user):
    """A client that talks before the 220 (a bot that does not wait) gets 554 5.5.1 and
    is dropped, and logged; a patient client is greeted."""
    smtpd.configure(greet_pause_ms=1500)
    u = make_user("maildir")
    c = h.Smtp(smtpd.mx_port, read_greeting=False)
    c.send(b"EHLO bot.example.net\r\nMAIL FROM:<bot@example.net>\r\n"
           b"RCPT TO:<%s>\r\n" % h.address(u).encode())
    r = c.reply_or_eof()
    assert r is not None and (r.code, r.enh) == (554, "5.5.1"), r
    assert c.wait_closed()
    ev = smtpd.log.wait("pregreet")
    assert ev.get("rip") == "127.0.0.1", ev
    assert smtpd.queue_ids() == []
    c = h.Smtp(smtpd.mx_port)
    assert c.greeting.code == 220
    c.ehlo("patient.example.net")
    m, rr, final = c.send_mail("patient@%s" % OTHER, [h.address(u)],
                               h.smtp_message("patient"))
    assert final.code == 250
    c.quit()
    assert b"patient" in only_message(smtpd, u)


@pytest.mark.parametrize("where", ["before MAIL", "in a transaction"])
def test_idle_timeout(smtpd, make_user, where):
    """A silent client is told 421 4.4.2 and dropped, before MAIL (the worker) and inside
    a transaction (the session); nothing is queued."""
    smtpd.configure(login_timeout=2, idle_timeout=2)
    u = make_user("maildir")
    c = mx(smtpd)
    if where == "in a transaction":
        assert c.cmd("MAIL FROM:<slow@%s>" % OTHER).code == 250
        assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: half\r\n\r\nhalf a message\r\n")
    c.sock.settimeout(60)
    r = c.reply_or_eof()
    assert r is not None and r.code == 421 and r.enh and r.enh.startswith("4."), r
    assert c.wait_closed()
    assert smtpd.queue_ids() == []
    assert smtpd.wait_idle(), smtpd.children()
    assert smtpd.wait_tmp_empty() == []


def test_long_lines(smtpd, make_user):
    """A command line over 512 octets is 500 5.5.2 and the session stays in step; a
    message line over 1000 octets is refused (RFC 5321 section 4.5.3.1.6) without losing
    the end of the data."""
    u = make_user("maildir")
    c = mx(smtpd)
    r = c.cmd("NOOP " + "x" * 600)
    assert (r.code, r.enh) == (500, "5.5.2"), r
    assert c.cmd("NOOP").code == 250
    m, rr, final = c.send_mail("long@%s" % OTHER, [h.address(u)],
                               h.smtp_message("long line", body=b"y" * 5000 + b"\n"))
    assert final.code in (250, 500, 552, 554) and final.enh, final
    assert c.cmd("NOOP").code == 250
    c.quit()
    smtpd.wait_queue_empty()


def test_received_and_queue_id_log(smtpd, make_user):
    """Port 25: our Received: field first (from the HELO and [127.0.0.1], by us, with
    ESMTP, id QUEUEID, for <rcpt>), the log lines from= and to= with the queue id."""
    u = make_user("maildir")
    c = mx(smtpd, name="sender.example.net")
    m, rr, final = c.send_mail("log@%s" % OTHER, [h.address(u)], h.smtp_message("logged"))
    qid = h.queued_id(final)
    c.quit()
    stored = only_message(smtpd, u)
    rcvd = h.header_fields(stored, "Received")[0]
    assert re.search(r"from sender\.example\.net .*\[127\.0\.0\.1\]", rcvd), rcvd
    assert "by %s" % h.SMTP_HOSTNAME in rcvd and "with ESMTP" in rcvd, rcvd
    assert "id %s" % qid in rcvd and "for <%s>" % h.address(u) in rcvd, rcvd
    first = smtpd.queue_lines(qid)[0]
    assert first["from"] == "log@%s" % OTHER and first["nrcpt"] == "1", first
    assert int(first["size"]) > 0
    sent = smtpd.wait_queue_line(qid, status="sent")
    assert sent["to"] == h.address(u) and sent["relay"] == "local", sent


def test_many_connections_in_parallel(smtpd, make_user):
    """Eight clients at once on 25, two messages each: sixteen delivered, each once."""
    import threading
    u = make_user("maildir")
    errors = []

    def client(k):
        try:
            c = mx(smtpd)
            for j in range(2):
                m, rr, final = c.send_mail("par%d@%s" % (k, OTHER), [h.address(u)],
                                           h.smtp_message("par %d %d" % (k, j)))
                assert final.code == 250, final
            c.quit()
        except Exception as e:     # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    got = h.wait_stored(u, 16)
    smtpd.wait_queue_empty()
    subjects = sorted(h.header_fields(g, "Subject")[0] for g in got)
    assert subjects == sorted("par %d %d" % (k, j) for k in range(8) for j in range(2))


def test_ipv6_client(smtp_daemon, make_user):
    """-m mx on ::1: the Received: field has [IPv6:::1]."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        port = smtp_daemon.activate("mx", host="::1")
    except h.PortError:
        pytest.skip("cannot listen on ::1")
    u = make_user("maildir")
    c = h.Smtp(port, host="::1")
    c.ehlo()
    m, rr, final = c.send_mail("six@%s" % OTHER, [h.address(u)], h.smtp_message("v6"))
    assert final.code == 250, final
    c.quit()
    stored = only_message(smtp_daemon, u)
    assert "[IPv6:::1]" in h.header_fields(stored, "Received")[0]
