"""Logins through real PAM against real (throwaway) accounts: USER/PASS, AUTH PLAIN,
AUTH LOGIN, and every way a login must fail with the one same reply."""

import time

import pytest

import helpers as h

AUTH_FAILED_RAW = (h.AUTH_FAILED + "\r\n").encode()


def _login_ok(port, user, **kw):
    with h.Pop3(port, **kw) as c:
        assert c.greeting == h.GREETING
        r = c.login(user.name, user.password)
        assert r == h.LOGGED_IN, r
        assert c.stat()[0] == len(user.stored())
        assert c.quit().startswith("+OK")


def _login_fails(port, name, password, **kw):
    """USER/PASS; returns the exact bytes of the PASS reply."""
    with h.Pop3(port, **kw) as c:
        c.send("USER %s\r\n" % name)
        user_reply = c.rawline()
        assert user_reply.startswith(b"+OK"), user_reply
        c.send("PASS %s\r\n" % password)
        return user_reply, c.rawline()


def test_user_pass_tls(pop3d, user, ctx):
    _login_ok(pop3d.tls_port, user, tls=ctx)
    ev = pop3d.log.wait("login", user=user.name)
    assert (ev["method"], ev["rip"], ev["tls"]) == ("USER", "127.0.0.1", "TLSv1.3")


def test_capa_over_tls_offers_sasl(pop3d, ctx):
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        caps = c.capa()
    assert "USER" in caps
    sasl = [l for l in caps if l.startswith("SASL ")]
    assert sasl and {"PLAIN", "LOGIN"} <= set(sasl[0].split()[1:])
    assert "UIDL" in caps and "TOP" in caps and "RESP-CODES" in caps


@pytest.mark.parametrize("initial", [True, False], ids=["initial-response", "continuation"])
def test_auth_plain_tls(pop3d, user, ctx, initial):
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.auth_plain(user.name, user.password, initial=initial) == h.LOGGED_IN
        assert c.stat()[0] == 3
        c.quit()
    ev = pop3d.log.wait("login", user=user.name)
    assert (ev["method"], ev["tls"]) == ("PLAIN", "TLSv1.3")


def test_auth_login_tls(pop3d, user, ctx):
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.auth_login(user.name, user.password) == h.LOGGED_IN
        assert c.stat()[0] == 3
        c.quit()
    ev = pop3d.log.wait("login", user=user.name)
    assert (ev["method"], ev["tls"]) == ("LOGIN", "TLSv1.3")


def test_auth_cancel_and_bad_base64(pop3d, user, ctx):
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.cmd("AUTH PLAIN").startswith("+")
        assert c.cmd("*").startswith("-ERR")
        assert c.cmd("AUTH PLAIN !!!notbase64!!!").startswith("-ERR")
        assert c.cmd("AUTH CRAM-MD5").startswith("-ERR")
        # still usable afterwards
        assert c.auth_plain(user.name, user.password) == h.LOGGED_IN


def test_wrong_password(pop3d, user, ctx):
    _, reply = _login_fails(pop3d.tls_port, user.name, user.password + "x", tls=ctx)
    assert reply == AUTH_FAILED_RAW
    ev = pop3d.log.wait("auth-failed", user=user.name)
    assert ev["reason"] == "password" and ev["rip"] == "127.0.0.1"
    assert ev["method"] == "USER"
    assert user.password not in pop3d.log.text()


def test_unknown_user_reply_identical_to_wrong_password(pop3d, user, ctx):
    ghost = "ptnosuch%d" % (user.uid + 7)
    a = _login_fails(pop3d.tls_port, user.name, "wrong-password-1", tls=ctx)
    b = _login_fails(pop3d.tls_port, ghost, "wrong-password-1", tls=ctx)
    assert a == b, "USER/PASS replies differ: %r vs %r" % (a, b)
    assert a[1] == AUTH_FAILED_RAW
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        ra = c.auth_plain(user.name, "wrong-password-2")
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        rb = c.auth_plain(ghost, "wrong-password-2")
    assert ra == rb == h.AUTH_FAILED
    assert len(pop3d.log.events("auth-failed")) == 4
    # the unknown name is not logged (it is often a mistyped password)
    assert ghost not in pop3d.log.text()


def test_unknown_user_logged_as_such(pop3d, ctx):
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.login("ptnosuchuser", "whatever") == h.AUTH_FAILED
    ev = pop3d.log.wait("auth-failed", rip="127.0.0.1")
    assert ev["reason"] == "unknown-user", ev["_line"]
    assert ev["user"] == "?", ev["_line"]


def test_failure_logged_while_connection_open(pop3d, user, ctx):
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.login(user.name, "bad-1") == h.AUTH_FAILED
        pop3d.log.wait("auth-failed", user=user.name, timeout=5)
        assert c.login(user.name, "bad-2") == h.AUTH_FAILED
        evs = []
        for _ in range(100):
            evs = pop3d.log.events("auth-failed", user=user.name)
            if len(evs) >= 2:
                break
            time.sleep(0.05)
        assert len(evs) == 2, pop3d.log.tail()
        # the connection is still open: the lines were written as the failures happened
        assert c.cmd("CAPA").startswith("+OK")
        c.multi()


def test_too_many_attempts_on_one_connection(pop3d, user, ctx):
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        closed = False
        for i in range(10):
            try:
                r = c.login(user.name, "bad-%d" % i)
            except (EOFError, ConnectionError):
                closed = True
                break
            assert r.startswith("-ERR"), r
        assert closed or c.wait_closed(10), "still open after 10 failed logins"


def test_locked_account(pop3d, make_user, ctx):
    u = make_user("maildir")
    _login_ok(pop3d.tls_port, u, tls=ctx)
    h.run(["usermod", "-L", u.name])
    _, reply = _login_fails(pop3d.tls_port, u.name, u.password, tls=ctx)
    assert reply == AUTH_FAILED_RAW
    ev = pop3d.log.wait("auth-failed", user=u.name)
    assert ev["reason"] in ("password", "account")


def test_expired_account(pop3d, make_user, ctx):
    u = make_user("maildir")
    _login_ok(pop3d.tls_port, u, tls=ctx)
    h.run(["chage", "-E", "0", u.name])
    _, reply = _login_fails(pop3d.tls_port, u.name, u.password, tls=ctx)
    assert reply == AUTH_FAILED_RAW
    ev = pop3d.log.wait("auth-failed", user=u.name)
    assert ev["reason"] == "account"


def test_uid_below_min_uid(pop3d, user, ctx):
    _login_ok(pop3d.tls_port, user, tls=ctx)
    pop3d.configure(min_uid=user.uid + 1)
    _, reply = _login_fails(pop3d.tls_port, user.name, user.password, tls=ctx)
    assert reply == AUTH_FAILED_RAW
    ev = pop3d.log.wait("auth-failed", user=user.name)
    assert ev["reason"] == "policy"


def test_deny_users(pop3d, make_user, ctx):
    a = make_user("maildir")
    b = make_user("maildir")
    pop3d.configure(deny_users="nobody, %s" % a.name)
    _, reply = _login_fails(pop3d.tls_port, a.name, a.password, tls=ctx)
    assert reply == AUTH_FAILED_RAW
    ev = pop3d.log.wait("auth-failed", user=a.name)
    assert ev["reason"] == "policy"
    _login_ok(pop3d.tls_port, b, tls=ctx)


def test_allow_group(pop3d, user, ctx):
    pop3d.configure(allow_group="mail")
    _, reply = _login_fails(pop3d.tls_port, user.name, user.password, tls=ctx)
    assert reply == AUTH_FAILED_RAW
    h.run(["usermod", "-a", "-G", "mail", user.name])
    _login_ok(pop3d.tls_port, user, tls=ctx)


def test_root_never_logs_in(pop3d, ctx):
    # root has uid 0 < min_uid; whatever its password, the reply is the same
    _, reply = _login_fails(pop3d.tls_port, "root", "whatever", tls=ctx)
    assert reply == AUTH_FAILED_RAW
