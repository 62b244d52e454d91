"""ipop3d under its real launchers (systemd-socket-activate --inetd, openbsd-inetd) with
real clients: poplib, curl, openssl s_client."""

import os
import poplib
import selectors
import subprocess
import time

import pytest

import helpers as h


def _poplib_session(client, user):
    assert client.getwelcome().decode() == h.GREETING
    assert client.user(user.name).startswith(b"+OK")
    assert client.pass_(user.password).decode() == h.LOGGED_IN
    count, size = client.stat()
    assert count == len(user.stored())
    resp, lines, octets = client.retr(1)
    assert resp.startswith(b"+OK")
    wire = b"".join(l + b"\r\n" for l in lines)
    assert wire in [h.to_wire(m) for m in user.stored()]
    assert client.quit().startswith(b"+OK")


def test_socket_activate_plain_from_loopback(pop3d, user):
    c = poplib.POP3("127.0.0.1", pop3d.port, timeout=30)
    _poplib_session(c, user)
    ev = pop3d.log.wait("login", user=user.name)
    assert ev["method"] == "USER" and ev["rip"] == "127.0.0.1"
    pop3d.log.wait("connect", rip="127.0.0.1")
    pop3d.log.wait("logout", user=user.name, reason="quit")


def test_socket_activate_stls(pop3d, user, ctx):
    c = poplib.POP3("127.0.0.1", pop3d.port, timeout=30)
    caps = c.capa()
    assert "STLS" in caps
    assert c.stls(context=ctx).startswith(b"+OK")
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    _poplib_session(c, user)
    ev = pop3d.log.wait("login", user=user.name)
    assert ev["tls"] == "TLSv1.3"


def test_socket_activate_implicit_tls(pop3d, user, ctx):
    c = poplib.POP3_SSL("127.0.0.1", pop3d.tls_port, context=ctx, timeout=30)
    assert c.sock.version() == "TLSv1.3"
    # no STLS on a connection that already is TLS
    assert "STLS" not in c.capa()
    _poplib_session(c, user)
    ev = pop3d.log.wait("login", user=user.name)
    assert ev["tls"] == "TLSv1.3" and ev["rip"] == "127.0.0.1"
    tls = pop3d.log.wait("tls")
    assert tls["version"] == "TLSv1.3" and tls["resumed"] == "no"


def test_socket_activate_ipv6(daemon, user, ctx):
    try:
        port = daemon.activate(implicit_tls=True, host="::1")
    except (OSError, RuntimeError) as e:
        pytest.skip("no IPv6 loopback here: %s" % e)
    c = poplib.POP3_SSL("::1", port, context=ctx, timeout=30)
    _poplib_session(c, user)
    ev = daemon.log.wait("login", user=user.name)
    assert ev["rip"] == "::1"


def test_rsa_certificate(daemon, user, certs):
    daemon.configure(tls_cert=certs.rsa_dir / "postern.crt",
                     tls_key=certs.rsa_dir / "postern.key")
    daemon.start()
    c = poplib.POP3_SSL("127.0.0.1", daemon.tls_port,
                        context=h.client_context(certs.rsa_ca), timeout=30)
    _poplib_session(c, user)


def test_inetd_sample_lines(daemon, user, ctx):
    sample = h.REPO / "inetd.conf.sample"
    assert sample.is_file(), "inetd.conf.sample is missing"
    ports = daemon.inetd(sample)
    conf = daemon.inetd_conf.read_text()
    assert str(daemon.binary) in conf and "-c\t%s" % daemon.config_path in conf

    # pop3 (plain port, STLS) ...
    c = poplib.POP3("127.0.0.1", ports["pop3"], timeout=30)
    assert c.stls(context=ctx).startswith(b"+OK")
    _poplib_session(c, user)
    # ... and pop3s (implicit TLS: the sample's line passes -s)
    c = poplib.POP3_SSL("127.0.0.1", ports["pop3s"], context=ctx, timeout=30)
    assert c.sock.version() == "TLSv1.3"
    _poplib_session(c, user)
    logins = daemon.log.events("login", user=user.name)
    assert [e["tls"] for e in logins] == ["TLSv1.3", "TLSv1.3"]

    # curl through inetd as well
    r = _curl(["--cacert", str(ctx_cafile(daemon)),
               "pop3s://%s:%s@127.0.0.1:%d/" % (user.name, user.password, ports["pop3s"])])
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(user.stored())


def ctx_cafile(daemon):
    return daemon.certdir / "ca.crt"


def _curl(args, timeout=60):
    return subprocess.run(["curl", "-sS", "--max-time", "50"] + args, capture_output=True,
                          timeout=timeout)


def _listing(user):
    return sorted(len(h.to_wire(m)) for m in user.stored())


def test_curl_pop3s_list_and_retr(pop3d, store_user):
    u = store_user
    base = "pop3s://%s:%s@127.0.0.1:%d/" % (u.name, u.password, pop3d.tls_port)
    ca = str(ctx_cafile(pop3d))
    r = _curl(["--cacert", ca, base])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    sizes = sorted(int(l.split()[1]) for l in lines)
    assert sizes == _listing(u)
    r = _curl(["--cacert", ca, base + "1"])
    assert r.returncode == 0, r.stderr
    assert r.stdout in [h.to_wire(m) for m in u.stored()]
    # a wrong password: curl reports the login failure (67: login denied)
    r = _curl(["--cacert", ca, "pop3s://%s:wrong@127.0.0.1:%d/" % (u.name, pop3d.tls_port)])
    assert r.returncode == 67, (r.returncode, r.stderr)


def test_curl_pop3_stls(pop3d, user):
    ca = str(ctx_cafile(pop3d))
    url = "pop3://%s:%s@127.0.0.1:%d/" % (user.name, user.password, pop3d.port)
    r = _curl(["--ssl-reqd", "--cacert", ca, url])
    assert r.returncode == 0, r.stderr
    assert sorted(int(l.split()[1]) for l in r.stdout.decode().splitlines()) == \
        _listing(user)
    ev = pop3d.log.wait("login", user=user.name)
    assert ev["tls"] in ("TLSv1.2", "TLSv1.3")


class _Interactive:
    """A line-oriented subprocess conversation with timeouts."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.seen = b""

    def expect(self, prefix, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.rstrip(b"\r").decode(errors="replace")
                if line.startswith(("+OK", "-ERR")):
                    assert line.startswith(prefix), "expected %s, got %s" % (prefix, line)
                    return line
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                raise AssertionError("no %s from s_client; output:\n%s"
                                     % (prefix, self.seen.decode(errors="replace")))
            d = os.read(self.p.stdout.fileno(), 65536)
            if not d:
                raise AssertionError("s_client ended; output:\n%s"
                                     % self.seen.decode(errors="replace"))
            self.buf += d
            self.seen += d

    def send(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def test_openssl_s_client_starttls(pop3d, user):
    ca = ctx_cafile(pop3d)
    s = _Interactive(["openssl", "s_client", "-starttls", "pop3", "-connect",
                      "127.0.0.1:%d" % pop3d.port, "-CAfile", str(ca), "-verify_return_error",
                      "-verify_hostname", "localhost", "-crlf", "-quiet"])
    try:
        s.send("USER " + user.name)
        s.expect("+OK")
        s.send("PASS " + user.password)
        assert s.expect("+OK") == h.LOGGED_IN
        s.send("STAT")
        assert s.expect("+OK").split()[1] == str(len(user.stored()))
        s.send("QUIT")
        s.expect("+OK")
    finally:
        s.close()
    assert s.p.returncode == 0
    ev = pop3d.log.wait("login", user=user.name)
    assert ev["tls"] == "TLSv1.3"


def test_connection_processes_exit_after_quit_and_drop(pop3d, user, ctx):
    """No process of a connection outlives it (QUIT, EOF before and after login)."""
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        assert c.quit().startswith("+OK")
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.drop()
    with h.Pop3(pop3d.port) as c:
        c.drop()
    assert pop3d.wait_idle(15), "processes left: %r" % pop3d.children()
