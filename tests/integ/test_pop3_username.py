"""username_chars: a login name with a byte outside the allow-list fails exactly like a
wrong password, is logged as reason=bad-username, and never reaches PAM.

PAM is watched with a service of the test's own: pam_exec.so records every PAM_USER it is
asked about before the usual Debian stacks run, so "never reaches PAM" is seen, not
assumed."""

import base64
import os
import secrets
from pathlib import Path

import pytest

import helpers as h

AUTH_FAILED_RAW = (h.AUTH_FAILED + "\r\n").encode()


@pytest.fixture
def pam_recorder(daemon):
    """A PAM service that appends each user name PAM is asked about to a file, then runs
    common-auth/-account/-session as pam.d/pop3 does; removed at teardown."""
    name = "postern-ut-%d-%s" % (os.getpid(), secrets.token_hex(4))
    record = daemon.workdir / "pam-users"
    record.write_bytes(b"")
    script = daemon.workdir / "pam-record.sh"
    script.write_text('#!/bin/sh\nprintf "%%s\\n" "$PAM_USER" >> %s\nexit 0\n' % record)
    os.chmod(script, 0o755)
    service = Path("/etc/pam.d") / name
    service.write_text("auth optional pam_exec.so quiet %s\n"
                       "@include common-auth\n@include common-account\n"
                       "@include common-session-noninteractive\n" % script)
    daemon.configure(pam_service=name)
    try:
        yield record
    finally:
        service.unlink()


def _pass_login(port, name, password, ctx):
    """USER/PASS with raw bytes; the exact bytes of the USER and PASS replies."""
    with h.Pop3(port, tls=ctx) as c:
        c.send(b"USER " + name + b"\r\n")
        user_reply = c.rawline()
        c.send(b"PASS " + password + b"\r\n")
        return user_reply, c.rawline()


def _plain_login(port, name, password, ctx):
    blob = base64.b64encode(b"\0" + name + b"\0" + password)
    with h.Pop3(port, tls=ctx) as c:
        c.send(b"AUTH PLAIN " + blob + b"\r\n")
        return c.rawline()


def _login_login(port, name, password, ctx):
    with h.Pop3(port, tls=ctx) as c:
        assert c.cmd("AUTH LOGIN").startswith("+ ")
        assert c.cmd(base64.b64encode(name)).startswith("+ ")
        c.send(base64.b64encode(password) + b"\r\n")
        return c.rawline()


def _recorded(record):
    return record.read_bytes().splitlines()


BAD_NAMES = [b"ned%x", b"ned\x7f", b"../x", b"ned+tag", b"ned*", b"ned(uid=0)", b"n\xc3\xa9d"]


def test_bad_names_never_reach_pam(pop3d, user, ctx, pam_recorder):
    # the recorder works: a good login and a wrong password are both seen by PAM
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    _, wrong = _pass_login(pop3d.tls_port, user.name.encode(), b"wrong-password", ctx)
    assert wrong == AUTH_FAILED_RAW
    assert _recorded(pam_recorder).count(user.name.encode()) == 2, _recorded(pam_recorder)

    for i, bad in enumerate(BAD_NAMES):
        method = ("USER", "PLAIN", "LOGIN")[i % 3]
        if method == "USER":
            user_reply, reply = _pass_login(pop3d.tls_port, bad, b"wrong-password", ctx)
            assert user_reply == b"+OK\r\n", (bad, user_reply)   # as for any name
        elif method == "PLAIN":
            reply = _plain_login(pop3d.tls_port, bad, b"wrong-password", ctx)
        else:
            reply = _login_login(pop3d.tls_port, bad, b"wrong-password", ctx)
        # byte for byte the answer to a wrong password
        assert reply == wrong, (bad, method, reply)
    evs = pop3d.log.events("auth-failed", reason="bad-username")
    assert len(evs) == len(BAD_NAMES), pop3d.log.tail()
    assert {e["method"] for e in evs} == {"USER", "PLAIN", "LOGIN"}
    assert all(e["user"] == "?" and e["rip"] == "127.0.0.1" for e in evs), evs
    # PAM saw the good name twice and nothing else
    assert _recorded(pam_recorder) == [user.name.encode()] * 2, _recorded(pam_recorder)
    assert "wrong-password" not in pop3d.log.text()


def test_right_password_of_a_name_outside_the_list(pop3d, user, ctx, pam_recorder):
    # a real account whose name has a byte the list lacks (digits, here) cannot log in,
    # even with its password, and PAM is never asked
    pop3d.configure(username_chars="abcdefghijklmnopqrstuvwxyz")
    _, reply = _pass_login(pop3d.tls_port, user.name.encode(), user.password.encode(), ctx)
    assert reply == AUTH_FAILED_RAW
    assert _plain_login(pop3d.tls_port, user.name.encode(), user.password.encode(),
                        ctx) == AUTH_FAILED_RAW
    assert len(pop3d.log.events("auth-failed", reason="bad-username")) == 2
    assert not pop3d.log.events("login")
    assert _recorded(pam_recorder) == []
    # with the digits allowed again it logs in
    pop3d.configure(username_chars="abcdefghijklmnopqrstuvwxyz0123456789")
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.auth_plain(user.name, user.password) == h.LOGGED_IN
        c.quit()
    assert _recorded(pam_recorder) == [user.name.encode()]


def test_bad_names_count_as_failures_on_the_connection(pop3d, ctx):
    # three refused names close the connection, as three wrong passwords do
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        for i in range(3):
            assert c.login("bad/name%d" % i, "whatever") == h.AUTH_FAILED
        assert c.wait_closed(10)
    ev = pop3d.log.wait("disconnect", reason="auth-failures")
    assert ev["auth_failures"] == "3"


def test_username_chars_may_not_hold_spaces(daemon):
    daemon.configure(username_chars="abc\x01def")
    rc, out = daemon.check()
    assert rc != 0 and "username_chars" in out, out
