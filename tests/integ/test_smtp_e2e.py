"""End to end (issue 7, Tests): a message submitted with swaks on 587 (STARTTLS, AUTH) is
read back over IMAPS (imaplib, imapd) and POP3S (poplib, ipop3d) from the same account;
port-25 mail for a local user and for an alias (a user, a list of users) is delivered,
Maildir and mbox; the delivered message has our Received: field (TLS version and cipher,
ESMTPSA), Return-Path and Delivered-To at the top."""

import imaplib
import poplib
import re

import helpers as h

OTHER = "example.net"


def imaps_fetch_all(imapd, ctx, user):
    """Every message of the user's INBOX over IMAPS, as bytes (BODY.PEEK[])."""
    c = imaplib.IMAP4_SSL("127.0.0.1", imapd.tls_port, ssl_context=ctx, timeout=30)
    try:
        assert c.login(user.name, user.password)[0] == "OK"
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK", data
        out = []
        if int(data[0]):
            typ, data = c.fetch("1:*", "(BODY.PEEK[])")
            assert typ == "OK", data
            out = [x[1] for x in data if isinstance(x, tuple)]
        return out
    finally:
        c.logout()


def pop3s_fetch_all(pop3d, ctx, user):
    p = poplib.POP3_SSL("127.0.0.1", pop3d.tls_port, context=ctx, timeout=30)
    try:
        p.user(user.name)
        p.pass_(user.password)
        n, _ = p.stat()
        out = []
        for i in range(1, n + 1):
            _, lines, _ = p.retr(i)
            out.append(b"\r\n".join(lines) + b"\r\n")
        return out
    finally:
        p.quit()


def top_fields(msg, n=3):
    """The names of the first n header fields."""
    head = msg.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8", "replace")
    fields = re.split(r"\n(?![ \t])", head)
    return [f.split(":", 1)[0] for f in fields[:n]]


def test_swaks_587_read_over_imaps_and_pop3s(smtpd, imapd, pop3d, ctx, make_user):
    smtpd.configure(plaintext_auth_from="192.0.2.1/32")
    u = make_user("maildir")
    friend = make_user("mbox")
    body = "Hello from swaks.\nA line with ümlauts.\n.leading dot\n"
    rc, out = h.swaks(smtpd.port, "--tls", "--auth", "PLAIN", "--auth-user", u.name,
                      "--auth-password", u.password, "--ehlo", "laptop.example.net",
                      "--from", h.address(u), "--to", "%s,%s" % (h.address(u),
                                                                h.address(friend)),
                      "--header", "Subject: end to end", "--header",
                      "From: Ned <%s>" % h.address(u), "--body", body,
                      "--add-header", "MIME-Version: 1.0", "--add-header",
                      "Content-Type: text/plain; charset=utf-8")
    assert rc == 0, out
    qid = h.queued_id(out)
    h.wait_stored(u, 1)
    h.wait_stored(friend, 1)
    smtpd.wait_queue_empty()

    for who in (u, friend):
        via_imap = imaps_fetch_all(imapd, ctx, who)
        via_pop = pop3s_fetch_all(pop3d, ctx, who)
        assert len(via_imap) == 1 and len(via_pop) == 1, (who.name, via_imap, via_pop)
        for msg in (via_imap[0], via_pop[0]):
            assert h.header_fields(msg, "Subject") == ["end to end"]
            assert ".leading dot" in msg.decode("utf-8", "replace")
            assert "ümlauts" in msg.decode("utf-8", "replace")
            assert h.header_fields(msg, "Return-Path") == ["<%s>" % h.address(u)]
            assert h.header_fields(msg, "Delivered-To") == [h.address(who)]
            assert top_fields(msg, 2) == ["Return-Path", "Delivered-To"], top_fields(msg)
            rcvd = h.header_fields(msg, "Received")
            assert len(rcvd) == 1, rcvd
            r = rcvd[0]
            assert "with ESMTPSA" in r, r
            assert re.search(r"using TLSv1\.[23] with cipher [A-Z0-9_-]+", r), r
            assert "by %s" % h.SMTP_HOSTNAME in r and "id %s" % qid in r, r
            assert "laptop.example.net" in r and "[127.0.0.1]" in r, r
        # the same message over both: the bodies agree
        assert via_imap[0].replace(b"\r\n", b"\n") == via_pop[0].replace(b"\r\n", b"\n")
    first = smtpd.queue_lines(qid)[0]
    assert first["from"] == h.address(u) and first["nrcpt"] == "2", first
    assert first.get("sasl_username") == u.name, first
    for who in (u, friend):
        smtpd.wait_queue_line(qid, to=h.address(who), status="sent", relay="local")


def test_465_smtplib_read_over_imaps(smtpd, imapd, ctx, make_user):
    import smtplib
    u = make_user("maildir")
    s = smtplib.SMTP_SSL("127.0.0.1", smtpd.tls_port, context=ctx,
                         local_hostname="phone.example.net", timeout=60)
    s.login(u.name, u.password)
    assert s.sendmail(h.address(u), [h.address(u)],
                      h.to_wire(h.smtp_message("over 465", sender=h.address(u)))) == {}
    s.quit()
    h.wait_stored(u, 1)
    smtpd.wait_queue_empty()
    got = imaps_fetch_all(imapd, ctx, u)
    assert len(got) == 1 and h.header_fields(got[0], "Subject") == ["over 465"]
    r = h.header_fields(got[0], "Received")[0]
    # implicit TLS + AUTH is ESMTPSA as well (RFC 3848; RFC 8314 has no name of its own)
    assert "with ESMTPSA" in r and "TLSv1." in r, r


def test_port25_local_user_and_aliases(smtpd, ctx, make_user):
    """Port 25: to a Maildir user, an mbox user, an alias of one user and a list alias
    (of both, and of the first again): each mailbox gets each message once, with its own
    Delivered-To."""
    a = make_user("maildir")
    b = make_user("mbox")
    smtpd.set_aliases("# test aliases\nsupport: %s\nstaff: %s,\n  %s, support\n"
                      % (a.name, a.name, b.name))
    c = h.Smtp(smtpd.mx_port)
    c.ehlo("mta.example.net")
    for rcpt, subject in ((h.address(a), "to a"), (h.address(b), "to b"),
                          ("support@%s" % h.LOCAL_DOMAIN, "to support"),
                          ("Staff@%s" % h.LOCAL_DOMAIN2, "to staff")):
        m, rr, final = c.send_mail("news@%s" % OTHER, [rcpt], h.smtp_message(subject))
        assert final is not None and final.code == 250, (rcpt, m, rr, final)
    c.quit()
    h.wait_stored(a, 3)
    h.wait_stored(b, 2)
    smtpd.wait_queue_empty()
    sa = sorted(h.header_fields(m, "Subject")[0] for m in a.stored())
    sb = sorted(h.header_fields(m, "Subject")[0] for m in b.stored())
    assert sa == ["to a", "to staff", "to support"], sa
    assert sb == ["to b", "to staff"], sb
    for user, msgs in ((a, a.stored()), (b, b.stored())):
        for m in msgs:
            assert h.header_fields(m, "Return-Path") == ["<news@%s>" % OTHER]
            assert len(h.header_fields(m, "Delivered-To")) == 1
            assert top_fields(m, 2) == ["Return-Path", "Delivered-To"], top_fields(m)
            r = h.header_fields(m, "Received")[0]
            assert "with ESMTP " in r + " " and "ESMTPS" not in r, r


def test_port25_starttls_received_esmtps(smtpd, ctx, make_user):
    """Port 25 with STARTTLS: Received: says ESMTPS (no A: no AUTH) with the cipher."""
    u = make_user("maildir")
    c = h.Smtp(smtpd.mx_port)
    c.ehlo("tlsmta.example.net")
    c.starttls(ctx)
    c.ehlo("tlsmta.example.net")
    m, rr, final = c.send_mail("tls@%s" % OTHER, [h.address(u)],
                               h.smtp_message("mx over tls"))
    assert final.code == 250, final
    c.quit()
    got = h.wait_stored(u, 1)
    smtpd.wait_queue_empty()
    r = h.header_fields(got[0], "Received")[0]
    assert "with ESMTPS" in r and "ESMTPSA" not in r, r
    assert re.search(r"using TLSv1\.[23] with cipher ", r), r


def test_mbox_delivery_quotes_from_lines(smtpd, make_user):
    """mbox: a body line 'From ' is quoted ('>From ') as Debian's MTAs do, so the
    message stays one message for ipop3d and imapd; the mailbox is locked as they lock."""
    u = make_user("mbox")
    u.deliver([h.make_message(1)])       # an existing message stays intact
    c = h.Smtp(smtpd.mx_port)
    c.ehlo()
    body = b"first\n\nFrom the start of a line, after a blank line\nlast\n"
    m, rr, final = c.send_mail("q@%s" % OTHER, [h.address(u)],
                               h.smtp_message("from quoting", body=body))
    assert final.code == 250
    c.quit()
    got = h.wait_stored(u, 2)
    smtpd.wait_queue_empty()
    assert len(got) == 2, got
    assert b"test message 1" in got[0]
    assert b"from quoting" in got[1]
    assert not (u.mbox.parent / (u.name + ".lock")).exists()
    raw = u.mbox.read_bytes()
    assert raw.count(b"\nFrom ") + raw.startswith(b"From ") == 2, raw
    assert b"\n>From the start of a line" in raw, raw


def test_many_messages_in_one_connection_each_delivered_once(smtpd, make_user):
    """130 messages in one port-25 connection (more than the monitor keeps waiting for a
    delivery slot, DELIVER_MAX_WAITING = 100): each is delivered exactly once, at once or
    by the queue run, and no delivery child ever gets anything but a queued id (the
    monitor's queue once ran past its array here and forked children with garbage)."""
    u = make_user("maildir")
    n = 130
    c = h.Smtp(smtpd.mx_port)
    c.ehlo("mta.example.net")
    for i in range(n):
        m, rr, final = c.send_mail("news@%s" % OTHER, [h.address(u)],
                                   h.smtp_message("bulk %03d" % i))
        assert final is not None and final.code == 250, (i, m, rr, final)
    c.quit()
    # whatever waited past the ring is in the spool for -q
    h.wait_stored(u, 1)
    smtpd.queue_run()
    smtpd.wait_queue_empty(timeout=120)
    got = sorted(h.header_fields(m, "Subject")[0] for m in u.stored())
    assert got == ["bulk %03d" % i for i in range(n)], (len(got), got[:5])
    log = smtpd.log.text()
    assert "not a queue id" not in log
    assert "delivery failed" not in log
