"""smtp-submit on 587 (-m submission, STARTTLS) and 465 (-m smtps, implicit TLS): AUTH
only under TLS (or from plaintext_auth_from), MAIL before AUTH refused, the sender
checks of MAIL FROM and the header From: (553 5.7.1; own address and an own alias
accepted), the per-user rate limits shared across connections (4.7.x, logged), the
size limit (552), and the STARTTLS command-injection attack.  Clients: Python's smtplib,
swaks and the raw client of helpers.py."""

import smtplib
import ssl

import pytest

import helpers as h

UNTRUSTED = "192.0.2.1/32"     # plaintext_auth_from that names no address of ours


def submission(d, ctx, user=None):
    """A raw client on 587 after EHLO, STARTTLS, EHLO and (with user) AUTH PLAIN."""
    c = h.Smtp(d.port)
    assert c.greeting.code == 220, c.greeting
    c.ehlo()
    c.starttls(ctx)
    c.ehlo()
    if user is not None:
        r = c.auth_plain(user.name, user.password)
        assert (r.code, r.enh) == (235, "2.7.0"), r
    return c


def smtplib_587(d, ctx, user):
    s = smtplib.SMTP("127.0.0.1", d.port, local_hostname="client.example.net", timeout=60)
    s.starttls(context=ctx)
    s.login(user.name, user.password)
    return s


def smtplib_465(d, ctx, user):
    s = smtplib.SMTP_SSL("127.0.0.1", d.tls_port, local_hostname="client.example.net",
                         context=ctx, timeout=60)
    s.login(user.name, user.password)
    return s


# --- AUTH and TLS


def test_auth_before_tls_refused_from_untrusted(smtpd, ctx, make_user):
    """plaintext_auth_from names no address of ours: before STARTTLS, EHLO offers no
    AUTH, AUTH is refused (538 5.7.11, RFC 4954 section 6) and logs nobody in, MAIL is
    530 5.7.0; after STARTTLS, AUTH is offered and works."""
    smtpd.configure(plaintext_auth_from=UNTRUSTED)
    u = make_user("maildir")
    c = h.Smtp(smtpd.port)
    kw = h.Smtp.keywords(c.ehlo())
    assert "STARTTLS" in kw, kw
    assert "AUTH" not in kw, kw
    for attempt in (lambda: c.auth_plain(u.name, u.password),
                    lambda: c.auth_login(u.name, u.password)):
        r = attempt()
        assert (r.code, r.enh) == (538, "5.7.11"), r
    r = c.cmd("MAIL FROM:<%s>" % h.address(u))
    assert (r.code, r.enh) == (530, "5.7.0"), r
    assert smtpd.log.events("login") == []
    c.starttls(ctx)
    kw = h.Smtp.keywords(c.ehlo())
    assert "STARTTLS" not in kw, kw
    assert set(kw["AUTH"].upper().split()) >= {"PLAIN", "LOGIN"}, kw
    r = c.auth_login(u.name, u.password)
    assert (r.code, r.enh) == (235, "2.7.0"), r
    ev = smtpd.log.wait("login", user=u.name)
    assert "LOGIN" in ev.get("method", "").upper(), ev
    assert c.quit().code == 221


def test_smtplib_starttls_auth_send(smtpd, ctx, make_user):
    """smtplib on 587: STARTTLS, AUTH (PLAIN), one message to oneself: queued, logged with
    the queue id and sasl_username, delivered."""
    smtpd.configure(plaintext_auth_from=UNTRUSTED)
    u = make_user("maildir")
    s = smtplib_587(smtpd, ctx, u)
    msg = h.smtp_message("smtplib 587", sender=h.address(u), to=h.address(u))
    refused = s.sendmail(h.address(u), [h.address(u)], h.to_wire(msg))
    assert refused == {}
    code, text = s.noop()
    assert code == 250
    s.quit()
    got = h.wait_stored(u, 1)
    assert b"smtplib 587" in got[0]
    smtpd.wait_queue_empty()
    qid = None
    for line in smtpd.log.text().splitlines():
        m = h.QUEUE_ID_LINE_RE.search(line)
        if m and "sasl_username=%s" % u.name in m.group(3):
            qid = m.group(2)
    assert qid, "no 'ID: from=..., sasl_username=%s' line:\n%s" % (u.name, smtpd.log.tail())
    ev = smtpd.queue_lines(qid)[0]
    assert ev["from"] == h.address(u) and ev["nrcpt"] == "1", ev
    assert int(ev["size"]) >= len(msg), ev
    smtpd.wait_queue_line(qid, status="sent", to=h.address(u))


def test_implicit_tls_465(smtpd, ctx, make_user):
    """465 (RFC 8314): TLS first, then AUTH (no STARTTLS offered), a message sent."""
    smtpd.configure(plaintext_auth_from=UNTRUSTED)
    u = make_user("mbox")
    c = h.Smtp(smtpd.tls_port, tls=ctx)
    assert c.greeting.code == 220
    kw = h.Smtp.keywords(c.ehlo())
    assert "STARTTLS" not in kw and "PLAIN" in kw.get("AUTH", "").upper().split(), kw
    r = c.cmd("STARTTLS")
    assert r.code == 503 and r.enh == "5.5.1", r
    c.quit()
    s = smtplib_465(smtpd, ctx, u)
    assert s.sendmail(h.address(u), [h.address(u)],
                      h.to_wire(h.smtp_message("over 465", sender=h.address(u)))) == {}
    s.quit()
    got = h.wait_stored(u, 1)
    assert b"over 465" in got[0]
    smtpd.wait_queue_empty()


def test_plaintext_auth_from_trusted(smtpd, make_user):
    """From a plaintext_auth_from address AUTH works without TLS (a webmail on the same
    host); a wrong password is 535 5.7.8 and MAIL stays refused."""
    smtpd.configure(plaintext_auth_from="127.0.0.0/8")
    u = make_user("maildir")
    c = h.Smtp(smtpd.port)
    kw = h.Smtp.keywords(c.ehlo())
    assert "PLAIN" in kw.get("AUTH", "").upper().split(), kw
    r = c.auth_plain(u.name, u.password + "x")
    assert (r.code, r.enh) == (535, "5.7.8"), r
    r = c.cmd("MAIL FROM:<%s>" % h.address(u))
    assert (r.code, r.enh) == (530, "5.7.0"), r
    r = c.auth_plain(u.name, u.password, initial=False)
    assert (r.code, r.enh) == (235, "2.7.0"), r
    r = c.cmd("AUTH PLAIN")
    assert (r.code, r.enh) == (503, "5.5.1"), r
    m, rr, final = c.send_mail(h.address(u), [h.address(u)],
                               h.smtp_message("plaintext from trusted", sender=h.address(u)))
    assert m.code == 250 and rr[0].code == 250 and final.code == 250, (m, rr, final)
    c.quit()
    assert b"plaintext from trusted" in h.wait_stored(u, 1)[0]


# --- senders


def test_spoofed_mail_from_553(smtpd, ctx, make_user):
    u = make_user("maildir")
    other = make_user("maildir")
    c = submission(smtpd, ctx, u)
    for sender in (h.address(other), "ceo@example.com", "%s@example.com" % u.name,
                   h.address(other, h.LOCAL_DOMAIN2), "postmaster@%s" % h.LOCAL_DOMAIN,
                   "%s%%example.com@%s" % (u.name, h.LOCAL_DOMAIN)):
        r = c.cmd("MAIL FROM:<%s>" % sender)
        assert (r.code, r.enh) == (553, "5.7.1"), "MAIL FROM:<%s>: %r" % (sender, r)
    # own addresses in every local domain, any case of the domain
    for sender in (h.address(u), h.address(u, h.LOCAL_DOMAIN2),
                   "%s@%s" % (u.name, h.LOCAL_DOMAIN.upper())):
        r = c.cmd("MAIL FROM:<%s>" % sender)
        assert r.code == 250, "MAIL FROM:<%s>: %r" % (sender, r)
        assert c.cmd("RSET").code == 250
    c.quit()
    assert smtpd.queue_ids() == []


def test_null_sender_refused_on_submission(smtpd, ctx, make_user):
    """MAIL FROM:<> is a bounce: a user does not send those (553 5.7.1)."""
    u = make_user("maildir")
    c = submission(smtpd, ctx, u)
    r = c.cmd("MAIL FROM:<>")
    assert (r.code, r.enh) == (553, "5.7.1"), r
    c.quit()


def test_own_alias_as_sender(smtpd, ctx, make_user):
    """An alias that points only to the user is his; one shared with another user, or
    pointing to another user, is not."""
    u = make_user("maildir")
    other = make_user("maildir")
    smtpd.set_aliases({"info": [u.name], "team": [u.name, other.name],
                       "boss": [other.name], "me2": ["info"]})
    c = submission(smtpd, ctx, u)
    for alias, ok in (("info", True), ("me2", True), ("team", False), ("boss", False)):
        r = c.cmd("MAIL FROM:<%s@%s>" % (alias, h.LOCAL_DOMAIN))
        if ok:
            assert r.code == 250, (alias, r)
            assert c.cmd("RSET").code == 250
        else:
            assert (r.code, r.enh) == (553, "5.7.1"), (alias, r)
    m, rr, final = c.send_mail("info@%s" % h.LOCAL_DOMAIN, [h.address(other)],
                               h.smtp_message("from my alias",
                                              sender="info@%s" % h.LOCAL_DOMAIN))
    assert final is not None and final.code == 250, (m, rr, final)
    c.quit()
    got = h.wait_stored(other, 1)
    assert b"from my alias" in got[0]


@pytest.mark.parametrize("header_from", [
    "Big Boss <boss@example.com>",
    "<%(other)s@postern.test>",
    "%(user)s@postern.test, ceo@example.com",       # one of two is not his
    "\"%(user)s@postern.test\" <ceo@example.com>",   # his address only as a display name
    "=?utf-8?q?x?= <ceo@example.com>",
])
def test_spoofed_header_from_553(smtpd, ctx, make_user, header_from):
    u = make_user("maildir")
    other = make_user("maildir")
    value = header_from % {"user": u.name, "other": other.name}
    msg = ("From: %s\nTo: <%s>\nSubject: spoofed header\n\nbody\n"
           % (value, h.address(other))).encode()
    c = submission(smtpd, ctx, u)
    m, rr, final = c.send_mail(h.address(u), [h.address(other)], msg)
    assert m.code == 250 and rr[0].code == 250, (m, rr)
    assert (final.code, final.enh) == (553, "5.7.1"), final
    # the session is still usable, and an honest message goes through
    m, rr, final = c.send_mail(h.address(u), [h.address(other)],
                               h.smtp_message("honest", sender=h.address(u)))
    assert final.code == 250, final
    c.quit()
    got = h.wait_stored(other, 1)
    smtpd.wait_queue_empty()
    assert len(got) == 1 and b"honest" in got[0] and b"spoofed header" not in got[0]


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["CRLF", "bare-LF"])
def test_second_header_from_is_checked(smtpd, ctx, make_user, eol):
    """Two From: fields, the first his own and the second someone else's (a reader may
    show either; RFC 5322 allows one): 553 5.7.1, with CRLF or with bare LF line ends
    (which a mailbox reader takes as line ends too)."""
    u = make_user("maildir")
    other = make_user("maildir")
    lines = [b"From: <%s>" % h.address(u).encode(), b"From: <ceo@example.com>",
             b"To: <%s>" % h.address(other).encode(), b"Subject: two froms", b"",
             b"body"]
    c = submission(smtpd, ctx, u)
    assert c.cmd("MAIL FROM:<%s>" % h.address(u)).code == 250
    assert c.cmd("RCPT TO:<%s>" % h.address(other)).code == 250
    assert c.cmd("DATA").code == 354
    c.send(eol.join(lines) + b"\r\n.\r\n")
    r = c.reply()
    assert (r.code, r.enh) == (553, "5.7.1"), r
    c.quit()
    smtpd.wait_queue_empty()
    assert other.stored() == []


def test_header_from_own_with_display_name_ok(smtpd, ctx, make_user):
    u = make_user("maildir")
    msg = ("From: =?utf-8?q?J=C3=B6rg?= <%s@%s>\nTo: <%s>\nSubject: display name\n\nok\n"
           % (u.name, h.LOCAL_DOMAIN2.upper(), h.address(u))).encode()
    c = submission(smtpd, ctx, u)
    m, rr, final = c.send_mail(h.address(u), [h.address(u)], msg)
    assert final.code == 250, final
    c.quit()
    assert b"display name" in h.wait_stored(u, 1)[0]


def test_missing_header_from_is_not_a_spoof(smtpd, ctx, make_user):
    """No From: at all: nothing to spoof; accepted (or given one by the server), never
    delivered with someone else's From:."""
    u = make_user("maildir")
    c = submission(smtpd, ctx, u)
    m, rr, final = c.send_mail(h.address(u), [h.address(u)],
                               b"Subject: no from\n\nno from field\n")
    assert final is not None and final.code in (250, 553), final
    c.quit()
    if final.code == 250:
        got = h.wait_stored(u, 1)
        froms = h.header_fields(got[0], "From")
        assert all(u.name in f for f in froms), froms


# --- rate limits


def test_rate_limit_messages_shared_across_connections(smtpd, ctx, make_user):
    """submit_rate_messages = 2: the third message of the hour is refused with 4.7.x,
    whichever connection (587 or 465) it comes on, and the refusal is logged; another
    user is not affected."""
    smtpd.configure(submit_rate_messages=2, submit_rate_recipients=100)
    u = make_user("maildir")
    other = make_user("maildir")
    for i, port_kind in enumerate(("587", "465")):
        s = smtplib_587(smtpd, ctx, u) if port_kind == "587" else smtplib_465(smtpd, ctx, u)
        assert s.sendmail(h.address(u), [h.address(u)],
                          h.to_wire(h.smtp_message("rate %d" % i, sender=h.address(u)))) == {}
        s.quit()
    c = submission(smtpd, ctx, u)
    m, rr, final = c.send_mail(h.address(u), [h.address(u)],
                               h.smtp_message("rate 2", sender=h.address(u)))
    refusal = [r for r in [m] + rr + ([final] if final else []) if r.code != 250]
    assert refusal, "the third message was accepted: %r" % ((m, rr, final),)
    r = refusal[0]
    assert 400 <= r.code < 500 and r.enh.startswith("4.7."), r
    c.quit()
    c = h.Smtp(smtpd.tls_port, tls=ctx)
    c.ehlo()
    assert c.auth_plain(u.name, u.password).code == 235
    m, rr, final = c.send_mail(h.address(u), [h.address(u)],
                               h.smtp_message("rate 3", sender=h.address(u)))
    assert any(400 <= r.code < 500 for r in [m] + rr + ([final] if final else [])), \
        (m, rr, final)
    c.quit()
    got = h.wait_stored(u, 2)
    smtpd.wait_queue_empty()
    assert len(got) == 2 and not any(b"rate 2" in g or b"rate 3" in g for g in got)
    ev = smtpd.log.wait("rate-limited", user=u.name)
    assert ev.get("limit") == "2", ev
    # another user has his own budget
    s = smtplib_587(smtpd, ctx, other)
    assert s.sendmail(h.address(other), [h.address(other)],
                      h.to_wire(h.smtp_message("other user", sender=h.address(other)))) == {}
    s.quit()
    assert b"other user" in h.wait_stored(other, 1)[0]


def test_rate_limit_holds_across_concurrent_connections(smtpd, ctx, make_user):
    """The stolen-password attack with parallel connections: six connections of one user
    each pass MAIL and RCPT before any message is counted, then all send DATA.  With
    submit_rate_messages = 3 exactly three messages are accepted and delivered, the
    others get 451 4.7.1: the final decision and the count are one locked step."""
    smtpd.configure(submit_rate_messages=3, submit_rate_recipients=100)
    u = make_user("maildir")
    conns = [submission(smtpd, ctx, u) for _ in range(6)]
    for c in conns:
        assert c.cmd("MAIL FROM:<%s>" % h.address(u)).code == 250
        assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    finals = []
    for i, c in enumerate(conns):
        finals.append(c.data(h.smtp_message("parallel %d" % i, sender=h.address(u))))
        c.quit()
    accepted = [r for r in finals if r.code == 250]
    refused = [r for r in finals if r.code != 250]
    assert len(accepted) == 3, finals
    assert all((r.code, r.enh) == (451, "4.7.1") for r in refused), refused
    got = h.wait_stored(u, 3)
    smtpd.wait_queue_empty()
    assert len(u.stored()) == 3
    assert smtpd.log.wait("rate-limited", user=u.name).get("limit") == "3"


def test_rate_limited_line_names_the_client(smtpd, ctx, make_user):
    """The rate-limited: line says which address sent (the stolen-password case: the
    admin and fail2ban-like tools need it), as every other line of a connection does."""
    smtpd.configure(submit_rate_messages=1)
    u = make_user("maildir")
    c = submission(smtpd, ctx, u)
    m, rr, final = c.send_mail(h.address(u), [h.address(u)],
                               h.smtp_message("one", sender=h.address(u)))
    assert final.code == 250, final
    r = c.cmd("MAIL FROM:<%s>" % h.address(u))
    assert (r.code, r.enh) == (451, "4.7.1"), r
    c.quit()
    ev = smtpd.log.wait("rate-limited", user=u.name)
    assert ev.get("rip") == "127.0.0.1", ev


def test_rate_limit_recipients(smtpd, ctx, make_user):
    """submit_rate_recipients = 3: a message to 2 is accepted; in the next, the RCPT that
    would pass the budget (the fourth of the hour) is refused with 452 4.7.1 (RFC 5321
    section 4.5.3.1.10: the client sends it again later), the one within it is not."""
    smtpd.configure(submit_rate_messages=100, submit_rate_recipients=3)
    u = make_user("maildir")
    a = make_user("maildir")
    b = make_user("maildir")
    c = submission(smtpd, ctx, u)
    m, rr, final = c.send_mail(h.address(u), [h.address(a), h.address(b)],
                               h.smtp_message("to two", sender=h.address(u)))
    assert final.code == 250, (m, rr, final)
    m, rr, final = c.send_mail(h.address(u), [h.address(a), h.address(b)],
                               h.smtp_message("two more", sender=h.address(u)))
    assert m.code == 250 and rr[0].code == 250, (m, rr)
    assert rr[1].code == 452 and rr[1].enh.startswith("4.7."), rr
    assert final is not None and final.code == 250, final
    # the budget is spent: the next message's first RCPT is refused
    m, rr, final = c.send_mail(h.address(u), [h.address(a)],
                               h.smtp_message("over", sender=h.address(u)))
    replies = [m] + rr + ([final] if final else [])
    assert any(r.code >= 400 and r.enh.startswith("4.7.") for r in replies), replies
    assert final is None, final
    c.quit()
    ev = smtpd.log.wait("rate-limited", user=u.name)
    assert ev.get("limit") == "3", ev
    h.wait_stored(a, 2)
    h.wait_stored(b, 1)
    smtpd.wait_queue_empty()
    assert sorted(h.header_fields(g, "Subject")[0] for g in a.stored()) == \
        ["to two", "two more"]
    assert [h.header_fields(g, "Subject")[0] for g in b.stored()] == ["to two"]


# --- size


def test_size_limit_552(smtpd, ctx, make_user):
    smtpd.configure(message_size_limit=20000)
    u = make_user("maildir")
    c = submission(smtpd, ctx, u)
    kw = h.Smtp.keywords(c.cmd("EHLO client.example.net"))
    assert kw.get("SIZE") == "20000", kw
    r = c.cmd("MAIL FROM:<%s> SIZE=20001" % h.address(u))
    assert (r.code, r.enh) == (552, "5.3.4"), r
    # a client that does not declare it: refused after the whole message was read
    body = b"".join(b"%07d: %s\n" % (i, b"x" * 60) for i in range(400))   # ~27 KB
    m, rr, final = c.send_mail(h.address(u), [h.address(u)],
                               h.smtp_message("too big", sender=h.address(u), body=body))
    assert m.code == 250 and rr[0].code == 250, (m, rr)
    assert (final.code, final.enh) == (552, "5.3.4"), final
    # in step: the next transaction works
    m, rr, final = c.send_mail(h.address(u), [h.address(u)],
                               h.smtp_message("small", sender=h.address(u)),
                               mail_params="SIZE=500")
    assert final.code == 250, final
    c.quit()
    got = h.wait_stored(u, 1)
    smtpd.wait_queue_empty()
    assert len(got) == 1 and b"small" in got[0]
    assert smtpd.wait_tmp_empty() == []


def test_size_limit_bdat(smtpd, ctx, make_user):
    smtpd.configure(message_size_limit=20000)
    u = make_user("maildir")
    c = submission(smtpd, ctx, u)
    assert c.cmd("MAIL FROM:<%s>" % h.address(u)).code == 250
    assert c.cmd("RCPT TO:<%s>" % h.address(u)).code == 250
    chunk = h.to_wire(h.smtp_message("bdat big", sender=h.address(u),
                                     body=b"y" * 70 + b"\n")) + b"z" * 25000
    c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    r = c.reply()
    assert (r.code, r.enh) == (552, "5.3.4"), r
    assert c.cmd("NOOP").code == 250
    c.quit()
    assert smtpd.queue_ids() == [] and smtpd.wait_tmp_empty() == []
    assert u.stored() == []


# --- STARTTLS injection (CVE-2011-0411 class)


@pytest.mark.parametrize("port_kind", ["mx", "submission"])
def test_starttls_injection_not_executed(smtpd, ctx, make_user, port_kind):
    """Commands sent in the same packet as STARTTLS, in plaintext, must be thrown away:
    after the handshake the server answers only what came under TLS (RFC 3207
    section 4.2 / the 2011 injection bugs)."""
    u = make_user("maildir")
    port = smtpd.mx_port if port_kind == "mx" else smtpd.port
    c = h.Smtp(port)
    c.ehlo()
    injected = ("STARTTLS\r\nMAIL FROM:<injected@example.net>\r\nRCPT TO:<%s>\r\n"
                "DATA\r\n" % h.address(u)).encode()
    c.send(injected)
    r = c.reply()
    assert r.code == 220, r
    # nothing more in plaintext: the injected commands got no answer before TLS
    assert c.buf == b"", "plaintext after the 220: %r" % c.buf
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
    r = c.cmd("EHLO client.example.net")
    assert r.code == 250, "the first reply under TLS is not the EHLO's: %r" % r
    # the injected MAIL did not happen: a RCPT now has no transaction
    r = c.cmd("RCPT TO:<%s>" % h.address(u))
    assert r.code == 503 and r.enh == "5.5.1", r
    c.quit()
    assert smtpd.queue_ids() == []
    assert u.stored() == []


def test_swaks_submission_587_and_465(smtpd, make_user):
    """swaks, as a user would test his account: STARTTLS + AUTH LOGIN on 587, implicit
    TLS + AUTH PLAIN on 465; both delivered; a wrong password is swaks exit 28."""
    smtpd.configure(plaintext_auth_from=UNTRUSTED)
    u = make_user("maildir")
    rc, out = h.swaks(smtpd.port, "--tls", "--auth", "LOGIN", "--auth-user", u.name,
                      "--auth-password", u.password, "--from", h.address(u),
                      "--to", h.address(u), "--header", "Subject: swaks 587")
    assert rc == 0, out
    h.queued_id(out)
    rc, out = h.swaks(smtpd.tls_port, "--tls-on-connect", "--auth", "PLAIN", "--auth-user",
                      u.name, "--auth-password", u.password, "--from", h.address(u),
                      "--to", h.address(u), "--header", "Subject: swaks 465")
    assert rc == 0, out
    rc, out = h.swaks(smtpd.port, "--tls", "--auth", "PLAIN", "--auth-user", u.name,
                      "--auth-password", "wrong" + u.password, "--from", h.address(u),
                      "--to", h.address(u))
    assert rc == 28, out
    assert "535 5.7.8" in out, out
    got = h.wait_stored(u, 2)
    subjects = sorted(h.header_fields(g, "Subject")[0] for g in got)
    assert subjects == ["swaks 465", "swaks 587"], subjects
    smtpd.wait_queue_empty()


def test_auth_failures_logged_for_fail2ban(smtpd, ctx, make_user):
    """A failed AUTH is logged with the address and user (what the fail2ban filter
    reads)."""
    u = make_user("maildir")
    c = submission(smtpd, ctx)
    r = c.auth_plain(u.name, "not-the-password")
    assert (r.code, r.enh) == (535, "5.7.8"), r
    c.quit()
    ev = smtpd.log.wait("auth-failed", user=u.name)
    assert ev.get("rip") == "127.0.0.1", ev


def test_tls_versions_pinned(smtpd, certs, make_user):
    """TLS 1.2 and 1.3 both work on 465 (the cipher goes into Received:)."""
    u = make_user("maildir")
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        cx = h.client_context(certs.ca, version=v)
        c = h.Smtp(smtpd.tls_port, tls=cx)
        c.ehlo()
        assert c.auth_plain(u.name, u.password).code == 235
        m, rr, final = c.send_mail(h.address(u), [h.address(u)],
                                   h.smtp_message("tls %s" % v.name, sender=h.address(u)))
        assert final.code == 250, final
        c.quit()
    got = h.wait_stored(u, 2)
    rcvd = " ".join(" ".join(h.header_fields(g, "Received")) for g in got)
    assert "TLSv1.2" in rcvd and "TLSv1.3" in rcvd, rcvd
