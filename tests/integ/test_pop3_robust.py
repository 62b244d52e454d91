"""Hostile and broken input: over-long lines, NULs and random bytes, too many errors,
timeouts.  After each, the server must still serve the next connection."""

import random

import pytest

import helpers as h


def _still_healthy(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        assert c.greeting == h.GREETING
        assert c.login(user.name, user.password) == h.LOGGED_IN
        assert c.stat()[0] == 3
        c.quit()


def _replies_until_close(c, timeout=30):
    """Every line the server sends until it closes (fails if it does not close)."""
    out = []
    c.sock.settimeout(timeout)
    while True:
        raw = c.rawline()
        if not raw:
            return out
        out.append(raw)


@pytest.mark.parametrize("size", [600, 5000, 100000])
def test_line_too_long_before_login(pop3d, user, size):
    with h.Pop3(pop3d.port) as c:
        c.send(b"USER " + b"a" * size + b"\r\n")
        assert c.line() == h.LINE_TOO_LONG
        assert c.wait_closed(10)
    _still_healthy(pop3d, user)


def test_line_too_long_without_newline(pop3d, user, ctx):
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        try:
            c.send(b"x" * 200000)
        except OSError:
            pass
        assert c.line() == h.LINE_TOO_LONG
        assert c.wait_closed(10)
    _still_healthy(pop3d, user)


def test_line_too_long_after_login(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.send(b"RETR " + b"1" * 5000 + b"\r\n")
        assert c.line() == h.LINE_TOO_LONG
        assert c.wait_closed(10)
    pop3d.log.wait("logout", user=user.name)
    _still_healthy(pop3d, user)


def test_longest_normal_line_is_accepted(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        # 255 octets: the longest command line RFC 2449 promises to accept
        r = c.cmd("USER " + "b" * 248)
        assert r != h.LINE_TOO_LONG
        assert c.cmd("CAPA").startswith("+OK")
        c.multi()
        assert c.login(user.name, user.password) == h.LOGGED_IN


def test_nul_in_command(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        assert c.cmd(b"USER " + user.name.encode() + b"\0root").startswith("-ERR")
        assert c.cmd(b"\0\0\0").startswith("-ERR")
        # the connection goes on, and the NUL did not smuggle a user name through
        assert c.login(user.name, user.password) == h.LOGGED_IN
        assert c.cmd(b"RETR 1\0").startswith("-ERR")
        assert c.stat()[0] == 3
        c.quit()


@pytest.mark.parametrize("when", ["before-login", "after-login"])
def test_random_garbage(pop3d, user, when):
    rnd = random.Random(20261121)
    with h.Pop3(pop3d.port) as c:
        if when == "after-login":
            assert c.login(user.name, user.password) == h.LOGGED_IN
        lines = [bytes(b for b in rnd.randbytes(rnd.randrange(1, 200)) if b != 10) + b"\n"
                 for _ in range(60)]
        try:
            c.send(b"".join(lines))
        except OSError:
            pass
        replies = _replies_until_close(c)
    # every reply (if the reset after the close left us any) is an error line
    for r in replies:
        assert r.startswith(b"-ERR") and r.endswith(b"\r\n"), r
    assert len(replies) <= len(lines)
    assert pop3d.wait_idle(15)
    _still_healthy(pop3d, user)


def test_too_many_errors_closes(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        c.send(b"XYZZY\r\n" * 20)
        replies = []
        c.sock.settimeout(5)
        try:
            while True:
                raw = c.rawline()
                if not raw:
                    break
                replies.append(raw)
        except (TimeoutError, OSError):
            # not closed after 20: one more bad command must do it
            c.send(b"XYZZY\r\n")
            replies += _replies_until_close(c)
    assert all(r.startswith(b"-ERR") for r in replies), replies
    assert 20 <= len(replies) <= 21, len(replies)
    _still_healthy(pop3d, user)


def test_lone_cr_is_not_a_line_end(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        c.send(b"NOOP\rCAPA\r\n")
        assert c.line().startswith("-ERR")
        assert c.cmd("CAPA").startswith("+OK")
        c.multi()


def test_bare_lf_commands_accepted(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        c.send(("USER %s\nPASS %s\n" % (user.name, user.password)).encode())
        assert c.line().startswith("+OK")
        assert c.line() == h.LOGGED_IN
        c.send(b"STAT\n")
        assert c.line().startswith("+OK 3 ")


def test_login_timeout(pop3d, user):
    pop3d.configure(login_timeout=2)
    with h.Pop3(pop3d.port) as c:
        replies = _replies_until_close(c, timeout=30)
    assert all(r.startswith(b"-ERR") for r in replies), replies
    assert pop3d.wait_idle(15)


def test_idle_timeout(pop3d, user):
    pop3d.configure(idle_timeout=2)
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        assert c.cmd("DELE 1").startswith("+OK")
        replies = _replies_until_close(c, timeout=30)
    assert all(r.startswith(b"-ERR") for r in replies), replies
    ev = pop3d.log.wait("logout", user=user.name)
    assert ev["reason"] == "timeout"
    # a timeout is not a QUIT: nothing deleted
    assert len(user.stored()) == 3


def test_many_connections_in_a_row(pop3d, user, ctx):
    for i in range(20):
        with h.Pop3(pop3d.tls_port if i % 2 else pop3d.port, tls=ctx if i % 2 else None) as c:
            assert c.greeting == h.GREETING
            if i % 5 == 0:
                assert c.login(user.name, user.password) == h.LOGGED_IN
            c.quit()
    assert pop3d.wait_idle(15)


@pytest.mark.parametrize("reason", ["line-too-long", "bad-bytes", "too-many-errors"])
@pytest.mark.parametrize("when", ["before-login", "after-login"])
def test_bad_input_logged(pop3d, user, reason, when):
    """bad-input: reason=..., rip=... (what fail2ban and a reader look for)."""
    with h.Pop3(pop3d.port) as c:
        if when == "after-login":
            assert c.login(user.name, user.password) == h.LOGGED_IN
        data = {"line-too-long": b"NOOP " + b"x" * 2000 + b"\r\n",
                "bad-bytes": b"NOOP\0\xff\r\n",
                "too-many-errors": b"XYZZY\r\n" * 21}[reason]
        try:
            c.send(data)
        except OSError:
            pass
        ev = pop3d.log.wait("bad-input", reason=reason)
    assert ev["rip"] == "127.0.0.1"
