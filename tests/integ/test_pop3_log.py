"""The log file: one "<time> ipop3d[pid]: event: key=value, ..." line per event, with
the fields that fail2ban and a reader rely on, and never a password."""

import base64
import re
import shutil
import subprocess

import pytest

import helpers as h

LINE_RE = re.compile(r"^\S.* ipop3d\[\d+\]: [a-z][a-z-]*: [a-z_]+=[^,]*(, [a-z_]+=[^,]*)*$")


def test_session_log_lines(pop3d, user, ctx):
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.login(user.name, "not-the-password") == h.AUTH_FAILED
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.retr(1)
        assert c.cmd("TOP 2 0").startswith("+OK")
        c.multi()
        assert c.cmd("DELE 3").startswith("+OK")
        c.quit()
    logout = pop3d.log.wait("logout", user=user.name)
    text = pop3d.log.text()
    for line in text.splitlines():
        assert LINE_RE.match(line), "badly formed log line: %r" % line
    assert user.password not in text and "not-the-password" not in text
    connect = pop3d.log.events("connect")
    assert len(connect) == 1 and connect[0]["rip"] == "127.0.0.1"
    tls = pop3d.log.events("tls")
    assert len(tls) == 1 and tls[0]["version"] == "TLSv1.3" and tls[0]["cipher"] \
        and tls[0]["resumed"] == "no"
    failed = pop3d.log.events("auth-failed")
    assert len(failed) == 1
    assert (failed[0]["user"], failed[0]["method"], failed[0]["reason"], failed[0]["rip"]) \
        == (user.name, "USER", "password", "127.0.0.1")
    login = pop3d.log.events("login")
    assert len(login) == 1
    assert (login[0]["user"], login[0]["method"], login[0]["rip"], login[0]["tls"]) == \
        (user.name, "USER", "127.0.0.1", "TLSv1.3")
    assert (logout["reason"], logout["top"], logout["retr"], logout["del"]) == \
        ("quit", "1", "1", "1")
    assert int(logout["size"]) >= 0 and int(logout["maxrss_kb"]) > 0
    # the connect line says how the connection starts: implicit TLS on the -s port
    assert (connect[0]["rip"], connect[0]["port"], connect[0]["tls"]) == \
        ("127.0.0.1", str(pop3d.tls_port), "implicit"), connect[0]["_line"]


def test_client_text_is_sanitized_in_the_log(pop3d, ctx):
    """Whatever a client sends as a user name cannot forge a field or a line."""
    for evil in (b"pt<x>, reason=password, rip=6.6.6.6", b"pt\x1b[31mred",
                 b"pt\xc3\xa9\xff", b"a" * 300):
        with h.Pop3(pop3d.tls_port, tls=ctx) as c:
            c.send(b"USER " + evil + b"\r\n")
            if c.line().startswith("+OK"):
                c.send(b"PASS x\r\n")
                assert c.line() == h.AUTH_FAILED
            b64 = base64.b64encode(b"\0" + evil + b"\0x").decode()
            c.cmd("AUTH PLAIN " + b64)
    text = pop3d.log.text()
    assert "\x1b" not in text and "\xff" not in text
    for line in text.splitlines():
        assert LINE_RE.match(line), "badly formed log line: %r" % line
        assert len(line) < 400, line
    evs = pop3d.log.events()
    assert evs and all(e.get("rip") in (None, "127.0.0.1") for e in evs), text


@pytest.mark.skipif(not shutil.which("fail2ban-regex"), reason="fail2ban not installed")
def test_fail2ban_filter_matches_real_failures(pop3d, user, ctx):
    """The project's fail2ban filter, on the log this daemon really wrote: every failure
    is found with the client's address, and nothing else is."""
    flt = h.REPO / "fail2ban" / "postern.conf"
    assert flt.is_file(), "fail2ban/postern.conf is missing"
    pop3d.configure(throttle_ip_max=2, login_fail_delay_ms=0, login_fail_delay_max_ms=0)
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:            # a good login: not a failure
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    with h.Pop3(pop3d.tls_port, source="127.0.0.2", tls=ctx) as c:
        assert c.login(user.name, "wrong") == h.AUTH_FAILED
    with h.Pop3(pop3d.tls_port, source="127.0.0.2", tls=ctx) as c:
        assert c.login("ptnosuchuser", "wrong") == h.AUTH_FAILED
    with h.Pop3(pop3d.tls_port, source="127.0.0.2", tls=ctx) as c:
        assert c.login(user.name, user.password) == h.THROTTLED
    pop3d.log.wait("auth-throttled", rip="127.0.0.2")
    r = subprocess.run(["fail2ban-regex", "-o", "<ip>", str(pop3d.log.path), str(flt)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    ips = [l.strip() for l in r.stdout.splitlines() if l.strip()]
    assert ips == ["127.0.0.2"] * 3, (ips, pop3d.log.text())
