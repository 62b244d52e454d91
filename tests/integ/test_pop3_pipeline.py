"""The relay after login and the pre-login deadlines:
- commands pipelined right behind PASS, of any size, all answered (the relay once kept
  them in a 16 KiB buffer and dropped the session when more came);
- a client that half-closes (shutdown(SHUT_WR)) after asking for a big message still
  gets every byte of it (the relay once ended at the client's EOF);
- slowloris: a ClientHello dribbled a byte at a time is cut off at the handshake
  deadline, and a client that keeps talking without logging in at login_deadline,
  although each byte comes well within the idle timeout."""

import select
import socket
import ssl
import time

import pytest

import helpers as h

HANDSHAKE_DEADLINE_S = 10   # TLS_HANDSHAKE_DEADLINE_MS in common/base/plimits.h


def _pump(sock, data, want_lines, timeout=60):
    """Write data (in one go as far as the socket takes it) while reading the replies,
    in one thread (an SSL socket may not be used from two), as a pipelining client must
    (RFC 2920 section 3.5 says the same for SMTP).  Returns what was read once it holds
    want_lines lines, or at EOF."""
    sock.setblocking(False)
    off, got = 0, bytearray()
    end = time.monotonic() + timeout
    while got.count(b"\n") < want_lines:
        left = end - time.monotonic()
        assert left > 0, "no complete answer: %d lines" % got.count(b"\n")
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        r, w, _ = select.select([sock], [sock] if off < len(data) else [], [],
                               0 if pending else left)
        if w:
            try:
                off += sock.send(data[off:off + 65536])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                pass
        if r or pending:
            try:
                d = sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                continue
            if not d:
                break
            got += d
    sock.setblocking(True)
    return bytes(got)


@pytest.mark.parametrize("size", [24 * 1024, 200 * 1024])
@pytest.mark.parametrize("tls", [False, True])
def test_pipelined_after_pass(pop3d, user, ctx, size, tls):
    n = size // len(b"NOOP\r\n")
    login = ("USER %s\r\nPASS %s\r\n" % (user.name, user.password)).encode()
    with h.Pop3(pop3d.tls_port if tls else pop3d.port, tls=ctx if tls else None) as c:
        out = _pump(c.sock, login + b"NOOP\r\n" * n + b"STAT\r\nQUIT\r\n", n + 4)
        lines = (c.buf + out).split(b"\r\n")
        assert lines[0].startswith(b"+OK")
        assert lines[1] == h.LOGGED_IN.encode(), lines[1]
        for i in range(n):
            assert lines[2 + i].startswith(b"+OK"), "NOOP %d of %d: %r" % (i + 1, n,
                                                                        lines[2 + i])
        assert lines[n + 2].startswith(b"+OK 3 ")
        assert lines[n + 3].startswith(b"+OK")   # QUIT
        assert c.wait_closed(10)
    ev = pop3d.log.wait("logout", user=user.name)
    assert ev["reason"] == "quit"


def _read_all(sock, timeout=30):
    sock.settimeout(timeout)
    out = []
    while True:
        d = sock.recv(65536)
        if not d:
            return b"".join(out)
        out.append(d)


@pytest.mark.parametrize("pipelined", [False, True])
def test_half_close_after_big_retr(pop3d, make_user, pipelined):
    u = make_user("maildir")
    big = h.make_message(1, body_lines=60000)    # about 2 MB
    u.deliver([big])
    wire = h.to_wire(big)
    with h.Pop3(pop3d.port, read_greeting=False) as c:
        if pipelined:
            # everything in one write, then EOF: the relay gets RETR with the login
            c.send(("USER %s\r\nPASS %s\r\nRETR 1\r\n" % (u.name, u.password)).encode())
        else:
            assert c.line() == h.GREETING
            assert c.login(u.name, u.password) == h.LOGGED_IN
            c.send(b"RETR 1\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        data = c.buf + _read_all(c.sock)
    if pipelined:
        head = (h.GREETING + "\r\n+OK").encode()
        assert data.startswith(head), data[:200]
        data = data[data.index(b"\r\n" + h.LOGGED_IN.encode() + b"\r\n") +
                    len(h.LOGGED_IN) + 4:]
    first, rest = data.split(b"\r\n", 1)
    assert first.startswith(b"+OK"), first
    assert rest.endswith(b"\r\n.\r\n"), rest[-100:]
    assert rest[:-3] == wire, (len(rest), len(wire))
    # EOF without QUIT: nothing deleted
    pop3d.log.wait("logout", user=u.name)
    assert len(u.stored()) == 1


def _client_hello():
    """The bytes of a real TLS ClientHello (Python's own, never sent by it)."""
    c = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = c.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    assert len(hello) > 100 and hello[0] == 0x16
    return hello


def _dribble(sock, data, every, got=None):
    """Send data one byte each `every` seconds until the server closes.  Returns the
    seconds from the first byte to the close (None: never closed), and how many bytes
    went out; what the server said is appended to the list got."""
    got = [] if got is None else got
    t0 = time.monotonic()
    for i in range(len(data)):
        try:
            sock.send(data[i:i + 1])
        except OSError:
            return time.monotonic() - t0, i
        end = time.monotonic() + every
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([sock], [], [], left)
            if r:
                try:
                    d = sock.recv(65536)
                except OSError:
                    d = b""
                if not d:
                    return time.monotonic() - t0, i + 1
                got.append(d)
    return None, len(data)


def test_slow_client_hello_cut_at_handshake_deadline(pop3d):
    # the idle timeout alone would let a byte every 2 s go on for ever
    pop3d.configure(login_timeout=30, login_deadline=600)
    hello = _client_hello()
    s = socket.create_connection(("127.0.0.1", pop3d.tls_port), timeout=30)
    try:
        took, sent = _dribble(s, hello, 2.0)
    finally:
        s.close()
    assert took is not None, "still open after the whole ClientHello"
    assert sent < len(hello)
    # cut at the deadline (10 s from the first byte), with generous slack; the whole
    # hello would take over 1000 s at this pace
    assert took < HANDSHAKE_DEADLINE_S + 12, took
    ev = pop3d.log.wait("tls-failed")
    assert ev["reason"] == "timeout"
    assert pop3d.wait_idle(15)


def test_slow_stls_handshake_cut_at_handshake_deadline(pop3d):
    pop3d.configure(login_timeout=30, login_deadline=600)
    hello = _client_hello()
    with h.Pop3(pop3d.port) as c:
        assert c.cmd("STLS").startswith("+OK")
        took, sent = _dribble(c.sock, hello, 2.0)
    assert took is not None and sent < len(hello)
    assert took < HANDSHAKE_DEADLINE_S + 12, took
    assert pop3d.log.wait("tls-failed")["reason"] == "timeout"


def test_busy_client_cut_at_login_deadline(pop3d):
    deadline = 6
    pop3d.configure(login_timeout=30, login_deadline=deadline)
    with h.Pop3(pop3d.port) as c:
        # a valid command a byte at a time, two bytes a second, for ever: every byte is
        # well within the 30 s idle timeout
        got = []
        took, sent = _dribble(c.sock, b"CAPA\r\n" * 1000, 0.5, got)
        replies = b"".join(got)
    assert took is not None, "never cut off"
    assert b"+OK" in replies                   # the client was served meanwhile
    assert took < deadline + 15, took
    assert pop3d.wait_idle(15)


def test_login_deadline_does_not_reach_the_session(pop3d, user):
    pop3d.configure(login_deadline=2)
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        time.sleep(3)
        assert c.stat()[0] == 3
        c.quit()
