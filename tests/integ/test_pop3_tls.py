"""TLS: versions, session resumption across connections (each one a new process), and
handshakes that go wrong."""

import os
import random
import socket
import ssl
import warnings

import pytest

import helpers as h


def test_session_resumption(pop3d, user, certs):
    """TLS 1.3 resumes across connections (each one a new process): the session is kept
    by the monitor, not in a ticket (common/privsep/tls.c)."""
    version = ssl.TLSVersion.TLSv1_3
    ctx = h.client_context(certs.ca, version)
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.sock.version() == c_version(version)
        assert not c.sock.session_reused
        assert c.login(user.name, user.password) == h.LOGGED_IN
        assert c.cmd("QUIT").startswith("+OK")
        c.wait_closed()
        session = c.sock.session
    assert session is not None and session.has_ticket
    with h.Pop3(pop3d.tls_port, tls=ctx, session=session) as c:
        assert c.sock.session_reused, "the second handshake did not resume the session"
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    evs = pop3d.log.events("tls")
    assert [e["resumed"] for e in evs] == ["no", "yes"]
    assert {e["version"] for e in evs} == {c_version(version)}
    # a ticket is good once: the server keeps each session for one resumption
    with h.Pop3(pop3d.tls_port, tls=ctx, session=session) as c:
        assert not c.sock.session_reused
        assert c.capa()


def test_tls12_gets_no_ticket(pop3d, user, certs):
    """No TLS 1.2 session tickets (their key would let a recorder of the traffic decrypt
    resumed sessions, PASS included), and no TLS 1.2 resumption at all."""
    ctx = h.client_context(certs.ca, ssl.TLSVersion.TLSv1_2)
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.sock.version() == "TLSv1.2"
        assert c.login(user.name, user.password) == h.LOGGED_IN
        assert c.cmd("QUIT").startswith("+OK")
        c.wait_closed()
        session = c.sock.session
    assert session is not None
    assert not session.has_ticket, "the server sent a TLS 1.2 session ticket"
    with h.Pop3(pop3d.tls_port, tls=ctx, session=session) as c:
        assert not c.sock.session_reused, "a TLS 1.2 session was resumed"
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    evs = pop3d.log.events("tls")
    assert [(e["version"], e["resumed"]) for e in evs] == [("TLSv1.2", "no")] * 2
    assert not (pop3d.state_dir / "tls-ticket.keys").exists()


def c_version(version):
    return {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


def test_session_resumption_after_stls(pop3d, user, certs):
    ctx = h.client_context(certs.ca, ssl.TLSVersion.TLSv1_3)
    with h.Pop3(pop3d.port) as c:
        c.stls(ctx)
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
        session = c.sock.session
    with h.Pop3(pop3d.port) as c:
        assert c.cmd("STLS").startswith("+OK")
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost", session=session)
        assert c.sock.session_reused
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    assert [e["resumed"] for e in pop3d.log.events("tls")] == ["no", "yes"]


def _tls11_context(cafile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(cafile))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.options &= ~ssl.OP_NO_TLSv1_1
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def test_tls11_refused(pop3d, certs, ctx):
    for port, stls in ((pop3d.tls_port, False), (pop3d.port, True)):
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            if stls:
                f = raw.makefile("rb")
                assert f.readline().startswith(b"+OK")
                raw.sendall(b"STLS\r\n")
                assert f.readline().startswith(b"+OK")
            with pytest.raises((ssl.SSLError, ConnectionError)) as ei:
                s = _tls11_context(certs.ca).wrap_socket(raw, server_hostname="localhost")
                s.recv(100)     # in case the refusal comes after the handshake
                pytest.fail("a TLS 1.1 handshake succeeded: %s" % s.version())
            # the refusal came from the server, not from our own client library
            assert "NO_PROTOCOLS_AVAILABLE" not in str(ei.value)
        finally:
            raw.close()
    pop3d.log.wait("tls-failed", rip="127.0.0.1")
    # the server is fine afterwards
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.greeting == h.GREETING


@pytest.mark.parametrize("junk", ["random", "plaintext-pop3", "bad-record", "truncated-hello"])
def test_garbage_tls_handshake(pop3d, user, ctx, junk):
    data = {
        "random": random.Random(7).randbytes(3000),
        "plaintext-pop3": b"USER someone\r\nPASS secret\r\n",
        "bad-record": b"\x16\x03\x01\xff\xff" + b"\x01" * 200,
        "truncated-hello": b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + b"\x00" * 20,
    }[junk]
    s = socket.create_connection(("127.0.0.1", pop3d.tls_port), timeout=30)
    try:
        try:
            s.sendall(data)
            if junk == "truncated-hello":
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        got = b""
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except ConnectionResetError:
            pass
        assert b"+OK" not in got
    finally:
        s.close()
    ev = pop3d.log.wait("tls-failed", rip="127.0.0.1")
    assert ev.get("reason")
    assert not pop3d.log.events("connect", tls="TLSv1.3")
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()


def test_stls_command_injection_is_discarded(pop3d, user, ctx):
    """Plaintext sent after STLS in the same packet must not be run inside TLS."""
    s = socket.create_connection(("127.0.0.1", pop3d.port), timeout=30)
    try:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(b"STLS\r\nCAPA\r\n")
        assert f.readline().startswith(b"+OK")
        try:
            t = ctx.wrap_socket(s, server_hostname="localhost")
        except (ssl.SSLError, ConnectionError):
            return      # refusing the connection is a fine answer too
        t.sendall(b"NOOP\r\n")
        first = b""
        while not first.endswith(b"\n"):
            d = t.recv(1)
            if not d:
                return
            first += d
        # the reply to our NOOP (AUTHORIZATION state: -ERR), not the injected CAPA's +OK
        assert first.startswith(b"-ERR"), first
    finally:
        s.close()


def test_certificate_read_per_connection(daemon, user, certs):
    """A renewed certificate is used by the next connection without any restart."""
    live = daemon.workdir / "tls"
    live.mkdir()
    for f in ("postern.crt", "postern.key"):
        (live / f).write_bytes((certs.dir / f).read_bytes())
        os.chmod(live / f, 0o600)
    daemon.configure(tls_cert=live / "postern.crt", tls_key=live / "postern.key")
    daemon.start()
    with h.Pop3(daemon.tls_port, tls=h.client_context(certs.ca)) as c:
        assert c.greeting == h.GREETING
    for f in ("postern.key", "postern.crt"):
        (live / f).write_bytes((certs.rsa_dir / f).read_bytes())
    with h.Pop3(daemon.tls_port, tls=h.client_context(certs.rsa_ca)) as c:
        assert c.greeting == h.GREETING
        assert c.login(user.name, user.password) == h.LOGGED_IN


def test_untrusted_client_sees_no_plaintext(pop3d):
    """The server certificate is the one of mkcert.sh: a client with another CA refuses."""
    ctx = ssl.create_default_context()   # system CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        h.Pop3(pop3d.tls_port, tls=ctx)
