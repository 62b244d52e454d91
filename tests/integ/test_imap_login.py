"""imapd before and at login, with Python's imaplib (a real client) over IMAPS and
STARTTLS, real PAM and throwaway accounts: capabilities before and after TLS and login,
LOGINDISABLED and [PRIVACYREQUIRED] in plaintext, [AUTHENTICATIONFAILED], AUTHENTICATE
PLAIN with SASL-IR, bad commands, the pre-login literal limit."""

import base64
import imaplib
import socket

import pytest

import helpers as h


def imaps(d, ctx):
    return imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=30)


def caps_of(conn):
    typ, data = conn.capability()
    assert typ == "OK"
    return set(data[0].decode().upper().split())


class Raw:
    """A line-level IMAP client for what imaplib will not send."""

    def __init__(self, port, ctx=None):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.s = ctx.wrap_socket(s, server_hostname="localhost") if ctx else s
        self.f = self.s.makefile("rb")

    def line(self):
        return self.f.readline().decode("utf-8", "replace").rstrip("\r\n")

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def until_tag(self, tag):
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln == "" or ln.startswith(tag + " "):
                return lines

    def close(self):
        self.s.close()


def test_greeting_and_capability_over_imaps(imapd, ctx, user):
    c = imaps(imapd, ctx)
    assert c.welcome.startswith(b"* OK [CAPABILITY ")
    caps = caps_of(c)
    assert "IMAP4REV1" in caps and "AUTH=PLAIN" in caps and "SASL-IR" in caps
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    typ, data = c.login(user.name, user.password)
    assert typ == "OK" and b"[CAPABILITY " in data[0]
    after = caps_of(c)
    assert "UIDPLUS" in after and "MOVE" in after and "IDLE" in after
    assert not any(x.startswith("AUTH=") for x in after)
    c.logout()
    ev = imapd.log.wait("login", user=user.name)
    assert ev["method"] == "LOGIN"
    out = imapd.log.wait("logout", user=user.name)
    assert out["reason"] == "logout"


def test_plaintext_refused_then_starttls(imapd, ctx, user):
    # a non-trusted source: plaintext_auth_from names nobody
    imapd.configure(plaintext_auth_from="192.0.2.0/24")
    c = imaplib.IMAP4("127.0.0.1", imapd.port, timeout=30)
    caps = caps_of(c)
    assert "LOGINDISABLED" in caps and "STARTTLS" in caps
    assert not any(x.startswith("AUTH=") for x in caps)
    with pytest.raises(imaplib.IMAP4.error) as e:
        c.login(user.name, user.password)
    assert "PRIVACYREQUIRED" in str(e.value)
    c.starttls(ssl_context=ctx)
    caps = caps_of(c)
    assert "LOGINDISABLED" not in caps and "STARTTLS" not in caps and "AUTH=PLAIN" in caps
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    c.logout()


def test_starttls_discards_pipelined_plaintext(imapd, ctx, user):
    imapd.configure(plaintext_auth_from="192.0.2.0/24")
    r = Raw(imapd.port)
    assert r.line().startswith("* OK")
    # an injected command after STARTTLS in the same packet must not run after TLS
    r.send("a STARTTLS\r\nb CAPABILITY\r\n")
    assert r.line().startswith("a OK")
    r.s = ctx.wrap_socket(r.s, server_hostname="localhost")
    r.f = r.s.makefile("rb")
    r.send("c NOOP\r\n")
    lines = r.until_tag("c")
    assert lines[-1].startswith("c OK")
    assert not any(ln.startswith("b ") for ln in lines)
    r.close()


def test_wrong_password(imapd, ctx, user):
    c = imaps(imapd, ctx)
    with pytest.raises(imaplib.IMAP4.error) as e:
        c.login(user.name, "not-" + user.password)
    assert "AUTHENTICATIONFAILED" in str(e.value)
    ev = imapd.log.wait("auth-failed", user=user.name)
    assert ev["rip"] == "127.0.0.1"
    c.logout()


def test_authenticate_plain_sasl_ir(imapd, ctx, user):
    r = Raw(imapd.tls_port, ctx)
    assert r.line().startswith("* OK")
    ir = base64.b64encode(b"\0" + user.name.encode() + b"\0" + user.password.encode())
    r.send(b"a AUTHENTICATE PLAIN " + ir + b"\r\n")
    lines = r.until_tag("a")
    assert lines[-1].startswith("a OK [CAPABILITY ")
    r.send("b SELECT INBOX\r\n")
    lines = r.until_tag("b")
    assert "* 3 EXISTS" in lines and lines[-1].startswith("b OK [READ-WRITE]")
    ev = imapd.log.wait("login", user=user.name)
    assert ev["method"] == "PLAIN"
    r.close()


def test_authenticate_plain_with_continuation(imapd, ctx, user):
    c = imaps(imapd, ctx)
    typ, _ = c.authenticate("PLAIN", lambda _: b"\0" + user.name.encode() + b"\0"
                            + user.password.encode())
    assert typ == "OK"
    c.logout()


def test_bad_commands_then_bye(imapd, ctx):
    r = Raw(imapd.tls_port, ctx)
    assert r.line().startswith("* OK")
    r.send("a FROB\r\n")
    assert r.line().startswith("a BAD")
    r.send("b SELECT INBOX\r\n")   # not before login
    assert r.line().startswith("b BAD")
    r.send("".join("x%d BLAH\r\n" % i for i in range(30)))
    lines = []
    while True:
        ln = r.line()
        if ln == "":
            break
        lines.append(ln)
    assert any(ln.startswith("* BYE") for ln in lines)
    assert sum(1 for ln in lines if " BAD " in ln) < 25
    imapd.log.wait("bad-input", reason="too-many-errors")
    r.close()


def test_prelogin_literal_over_limit(imapd, ctx):
    r = Raw(imapd.tls_port, ctx)
    assert r.line().startswith("* OK")
    r.send("a LOGIN {100000}\r\n")
    ln = r.line()
    assert ln.startswith("a BAD") or ln.startswith("* BYE")
    assert not ln.startswith("+")
    r.close()


def test_id_and_logout_before_login(imapd, ctx):
    r = Raw(imapd.tls_port, ctx)
    assert r.line().startswith("* OK")
    r.send('a ID ("name" "imaplib")\r\n')
    lines = r.until_tag("a")
    assert "* ID NIL" in lines and lines[-1].startswith("a OK")
    r.send("b LOGOUT\r\n")
    lines = r.until_tag("b")
    assert lines[0].startswith("* BYE") and lines[-1].startswith("b OK")
    r.close()


@pytest.mark.skipif(h.which("fail2ban-regex") is None, reason="fail2ban is not installed")
def test_fail2ban_matches_real_imapd_failures(imapd, ctx, user):
    """The failure lines a real imapd writes are what fail2ban/postern.conf bans on."""
    for _ in range(2):
        c = imaps(imapd, ctx)
        with pytest.raises(imaplib.IMAP4.error):
            c.login(user.name, "wrong")
        c.logout()
    imapd.log.wait("auth-failed", user=user.name)
    p = h.run(["fail2ban-regex", "-o", "ip", str(imapd.log.path),
               str(h.REPO / "fail2ban" / "postern.conf")], timeout=120)
    ips = [ln for ln in p.stdout.split() if ln == "127.0.0.1"]
    assert len(ips) == 2, p.stdout
