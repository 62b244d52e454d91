"""smtp-submit on port 25 (-m mx) is never an open relay (issue 7, Policy): every
open-relay form a relay tester tries is refused with a 5xx at RCPT, nothing is queued and
nothing is delivered; an unknown local user gets 550 5.1.1; AUTH is neither offered nor
accepted on 25.  Real clients: the raw SMTP client of helpers.py and swaks."""

import pytest

import helpers as h

OTHER = "example.net"      # a domain that is not ours


def mx(d):
    c = h.Smtp(d.mx_port)
    assert c.greeting.code == 220, c.greeting
    c.ehlo("relaytest.example.net")
    return c


def assert_nothing_queued(d):
    assert d.queue_ids() == [], d.queue_list()
    assert d.wait_tmp_empty() == []


def relay_forms(local_user):
    """(name, RCPT path) of every relay form issue 7 lists and more, as relay testers
    (e.g. the classic 19-test suites) send them.  u is a real local user, so that a
    daemon that strips the trick would deliver or relay."""
    u = local_user
    L = h.LOCAL_DOMAIN
    return [
        ("other domain", "victim@%s" % OTHER),
        ("other domain upper case", "victim@EXAMPLE.NET"),
        ("other domain trailing dot", "victim@%s." % OTHER),
        ("percent hack", "victim%%%s@%s" % (OTHER, L)),
        ("percent hack upper case", "victim%%%s@%s" % (OTHER.upper(), L.upper())),
        ("percent hack of a local user", "%s%%%s@%s" % (u, OTHER, L)),
        ("double percent", "victim%%%s%%%s@%s" % (OTHER, L, L)),
        ("source route via us", "@%s:victim@%s" % (L, OTHER)),
        ("source route two hops", "@%s,@%s:victim@%s" % (L, L, OTHER)),
        ("source route to us via other", "@%s:%s@%s" % (OTHER, u, L)),
        ("quoted local part with @", '"victim@%s"@%s' % (OTHER, L)),
        ("quoted local part with %", '"victim%%%s"@%s' % (OTHER, L)),
        ("bang path", "%s!victim@%s" % (OTHER, L)),
        ("bang path two hops", "%s!%s!victim@%s" % (L, OTHER, L)),
        ("bang path and percent", "%s!victim%%%s@%s" % (OTHER, OTHER, L)),
        ("address literal of the host", "victim@[127.0.0.1]"),
        ("address literal of a local user", "%s@[127.0.0.1]" % u),
        ("address literal other", "victim@[192.0.2.1]"),
        ("IPv6 address literal", "%s@[IPv6:::1]" % u),
        ("general address literal", "%s@[x-tag:abc]" % u),
        ("percent to literal", "victim%%[192.0.2.1]@%s" % L),
        ("subdomain of ours not listed", "%s@sub.%s" % (u, L)),
        ("ours as a suffix", "victim@evil%s" % L),
        ("ours as a prefix", "victim@%s.%s" % (L, OTHER)),
        ("local domain with trailing dot", "victim%%%s@%s." % (OTHER, L)),
    ]


def test_relay_tester_loop_refuses_every_form(smtpd, make_user):
    """A relay tester's loop: each form in a fresh transaction (MAIL from outside, RCPT
    the form, DATA); each RCPT gets a 5xx, DATA has no valid recipient, nothing is
    queued or delivered.  Refusals count as errors (max_errors, default 10): when the
    daemon drops the tester (421), the tester connects again, as real ones do."""
    u = make_user("maildir")
    c = mx(smtpd)
    refused, drops = [], 0
    for name, path in relay_forms(u.name):
        r = c.cmd("MAIL FROM:<spammer@%s>" % OTHER)
        if r.code == 421:
            assert r.enh == "4.7.0", r
            c.wait_closed()
            drops += 1
            c = mx(smtpd)
            r = c.cmd("MAIL FROM:<spammer@%s>" % OTHER)
        assert r.code == 250, (name, r)
        r = c.cmd("RCPT TO:<%s>" % path)
        assert 500 <= r.code < 600, "%s: RCPT TO:<%s> was answered %r" % (name, path, r)
        assert r.enh and r.enh.startswith("5."), (name, r)
        refused.append((name, r.code, r.enh))
        r = c.cmd("DATA")
        assert r.code in (503, 554, 421), "%s: DATA after a refused RCPT: %r" % (name, r)
        if r.code != 421:
            r = c.cmd("RSET")
        assert r.code in (250, 421), r
        if r.code == 421:
            c.wait_closed()
            drops += 1
            c = mx(smtpd)
    # the error limit did its job (25 forms, two errors each), and the tester's last
    # connection is still usable for a local user
    assert drops >= 2, drops
    r = c.cmd("MAIL FROM:<sender@%s>" % OTHER)
    assert r.code == 250
    r = c.cmd("RCPT TO:<%s>" % h.address(u))
    assert r.code == 250 and r.enh.startswith("2."), r
    r = c.data(h.smtp_message("after the relay loop", to=h.address(u)))
    assert r.code == 250, r
    qid = h.queued_id(r)
    assert c.quit().code == 221
    smtpd.wait_queue_empty()
    got = h.wait_stored(u, 1)
    assert len(got) == 1 and b"after the relay loop" in got[0]
    assert_nothing_queued(smtpd)
    smtpd.wait_queue_line(qid, status="sent")
    # every form, by name, got its refusal: none was silently dropped from the loop
    assert len(refused) == len(relay_forms(u.name))


def test_relay_tester_one_connection(smtpd, make_user):
    """The same forms in one connection, with max_errors high enough for all of them:
    every RCPT is refused, nothing queued."""
    smtpd.configure(max_errors=200)
    u = make_user("maildir")
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<spammer@%s>" % OTHER).code == 250
    for name, path in relay_forms(u.name):
        r = c.cmd("RCPT TO:<%s>" % path)
        assert 500 <= r.code < 600 and r.enh.startswith("5."), (name, path, r)
    r = c.cmd("DATA")
    assert (r.code, r.enh) == (554, "5.5.1"), r
    c.quit()
    assert_nothing_queued(smtpd)
    assert u.stored() == []


@pytest.mark.parametrize("form", [
    "other domain", "percent hack", "source route via us", "quoted local part with @",
    "bang path", "address literal of the host", "IPv6 address literal",
    "other domain upper case", "percent hack upper case"])
def test_relay_trick_is_554_5_7_1(smtpd, make_user, form):
    """Issue 7: 554 5.7.1 for every other domain, tricks included (not a syntax error, not
    a 'user unknown' that would tell a tester the trick got through to the user table)."""
    u = make_user("maildir")
    path = dict(relay_forms(u.name))[form]
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<spammer@%s>" % OTHER).code == 250
    r = c.cmd("RCPT TO:<%s>" % path)
    assert (r.code, r.enh) == (554, "5.7.1"), "RCPT TO:<%s>: %r" % (path, r)
    c.quit()
    assert_nothing_queued(smtpd)
    assert u.stored() == []


def test_unknown_local_user_550_5_1_1(smtpd, make_user):
    u = make_user("maildir")
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<someone@%s>" % OTHER).code == 250
    for path in ("nosuchuser%d@%s" % (u.uid, h.LOCAL_DOMAIN),
                 "nosuchuser@%s" % h.LOCAL_DOMAIN2,
                 "postern-spool@%s" % h.LOCAL_DOMAIN,   # a system user (uid < min_uid)
                 "root@%s" % h.LOCAL_DOMAIN):
        r = c.cmd("RCPT TO:<%s>" % path)
        assert (r.code, r.enh) == (550, "5.1.1"), "RCPT TO:<%s>: %r" % (path, r)
    # the real user in either local domain, any case
    for path in (h.address(u), h.address(u, h.LOCAL_DOMAIN2),
                 "%s@%s" % (u.name, h.LOCAL_DOMAIN.upper())):
        r = c.cmd("RCPT TO:<%s>" % path)
        assert r.code == 250, "RCPT TO:<%s>: %r" % (path, r)
    r = c.data(h.smtp_message("three ways to one user", to=h.address(u)))
    assert r.code == 250, r
    c.quit()
    smtpd.wait_queue_empty()
    got = h.wait_stored(u, 1)
    # three recipient addresses of one mailbox: one copy each, or one in all; never lost
    assert 1 <= len(got) <= 3 and all(b"three ways to one user" in m for m in got)


def test_local_domain_case_delivers_locally(smtpd, make_user):
    """LOCAL.DOMAIN in upper case is ours: delivered to the user, not relayed, not
    refused; with a trailing dot it is refused (5xx), never relayed."""
    u = make_user("maildir")
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<sender@%s>" % OTHER).code == 250
    r = c.cmd("RCPT TO:<%s>" % ("%s@%s." % (u.name, h.LOCAL_DOMAIN.upper())))
    assert 500 <= r.code < 600, r
    r = c.cmd("RCPT TO:<%s@%s>" % (u.name.upper(), h.LOCAL_DOMAIN.upper()))
    # a local part is case-sensitive (RFC 5321); user names here are lower case: the
    # daemon may accept it for the user or say 550 5.1.1, never relay it
    assert r.code in (250, 550), r
    r = c.cmd("RCPT TO:<%s@%s>" % (u.name, h.LOCAL_DOMAIN.upper()))
    assert r.code == 250, r
    r = c.data(h.smtp_message("upper case domain", to=h.address(u)))
    assert r.code == 250, r
    qid = h.queued_id(r)
    c.quit()
    got = h.wait_stored(u, 1)
    smtpd.wait_queue_empty()
    assert b"upper case domain" in got[0]
    ev = smtpd.wait_queue_line(qid, status="sent")
    assert ev.get("relay") == "local", ev


def test_auth_not_offered_nor_accepted_on_25(smtpd, make_user, ctx):
    """AUTH is never offered on 25, in plaintext or after STARTTLS, and AUTH attempted
    anyway (with a valid password) is refused and logs nobody in."""
    u = make_user("maildir")
    c = h.Smtp(smtpd.mx_port)
    kw = h.Smtp.keywords(c.ehlo())
    assert "AUTH" not in kw and not any(k.startswith("AUTH=") for k in kw), kw
    assert "STARTTLS" in kw
    r = c.auth_plain(u.name, u.password)
    assert r.code in (502, 503) and r.enh == "5.5.1", r
    r = c.auth_login(u.name, u.password)
    assert r.code in (502, 503) and r.enh == "5.5.1", r
    c.starttls(ctx)
    kw = h.Smtp.keywords(c.ehlo())
    assert "AUTH" not in kw and "STARTTLS" not in kw, kw
    r = c.auth_plain(u.name, u.password)
    assert r.code in (502, 503) and r.enh == "5.5.1", r
    # and AUTH gave nothing: relaying is still refused
    assert c.cmd("MAIL FROM:<someone@example.org>").code == 250
    r = c.cmd("RCPT TO:<victim@%s>" % OTHER)
    assert (r.code, r.enh) == (554, "5.7.1"), r
    c.quit()
    assert smtpd.log.events("login") == [], smtpd.log.tail()
    assert_nothing_queued(smtpd)


def test_swaks_relay_attempts(smtpd, make_user):
    """swaks, as an admin's relay check would run it: each relay form ends in a 5xx at
    RCPT (swaks exit 24: RCPT refused) and nothing is queued."""
    u = make_user("maildir")
    for name, path in relay_forms(u.name)[:12]:
        rc, out = h.swaks(smtpd.mx_port, "--from", "spammer@%s" % OTHER, "--to", path,
                          "--ehlo", "relaytest.example.net")
        assert rc == 24, "%s: swaks exit %d\n%s" % (name, rc, out)
        assert "<** 5" in out, out
    assert_nothing_queued(smtpd)
    assert u.stored() == []
    # the control: swaks to the local user works (exit 0) and is delivered
    rc, out = h.swaks(smtpd.mx_port, "--from", "friend@%s" % OTHER, "--to", h.address(u),
                      "--ehlo", "friend.example.net", "--header", "Subject: swaks control")
    assert rc == 0, out
    h.queued_id(out)
    assert b"swaks control" in h.wait_stored(u, 1)[0]
    smtpd.wait_queue_empty()


def test_null_sender_and_postmaster(smtpd):
    """A bounce (MAIL FROM:<>) to a relay target is refused like any other; RCPT
    TO:<Postmaster> (RFC 5321 section 4.5.1) is accepted (local delivery via aliases)
    only when postmaster resolves to a user: here it does not, so 550 5.1.1."""
    c = mx(smtpd)
    assert c.cmd("MAIL FROM:<>").code == 250
    r = c.cmd("RCPT TO:<victim@%s>" % OTHER)
    assert (r.code, r.enh) == (554, "5.7.1"), r
    r = c.cmd("RCPT TO:<Postmaster>")
    assert r.code in (250, 550), r
    c.quit()
    assert_nothing_queued(smtpd)
