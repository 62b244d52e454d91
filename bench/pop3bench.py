#!/usr/bin/python3
"""pop3bench: the POP3S client of the benchmark (bench/run.sh, bench/bench.py).

It is the same code, with the same settings, for every server: Python's ssl module
(OpenSSL) over a TCP socket to 127.0.0.1, a new full TLS handshake per connection (no
session resumption), USER/PASS, and a minimal reader that does not parse message bodies
(it only looks for the terminating CRLF.CRLF and counts bytes and lines), so that the
client stays cheap.  A connection ends when the server closes it after QUIT, so that a
measurement includes all the work the server does for the connection.

Used as a module by bench.py; also runnable by hand, e.g.
    pop3bench.py login -p 9950 -u USER -w PASSFILE --cafile ca.crt -n 20
    pop3bench.py retr  -p 9950 -u USER -w PASSFILE --cafile ca.crt
Only loopback addresses are accepted.
"""

import argparse
import ipaddress
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"
TIMEOUT = 60.0


class Pop3Error(Exception):
    pass


def make_context(cafile):
    """The client TLS context: verifies the server certificate against cafile for the
    name "localhost"; the TLS version and cipher are what OpenSSL's defaults negotiate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=cafile)
    ctx.check_hostname = True
    return ctx


def _check_loopback(host):
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError("pop3bench talks to loopback addresses only, not %s" % host)


class Pop3:
    """One POP3S connection (implicit TLS)."""

    def __init__(self, port, ctx, host=HOST, timeout=TIMEOUT):
        _check_loopback(host)
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self.buf = bytearray()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def _fill(self):
        d = self.s.recv(262144)
        if not d:
            raise Pop3Error("connection closed by the server")
        self.buf += d

    def line(self):
        start = 0
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                ln = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return ln
            start = max(0, len(self.buf) - 1)
            self._fill()

    def send(self, cmd):
        self.s.sendall(cmd + b"\r\n")

    def ok(self):
        ln = self.line()
        if not ln.startswith(b"+OK"):
            raise Pop3Error(ln.decode("ascii", "replace")[:200])
        return ln

    def cmd(self, cmd):
        self.send(cmd)
        return self.ok()

    def greeting(self):
        return self.ok()

    def login(self, user, password):
        self.cmd(b"USER " + user.encode())
        self.cmd(b"PASS " + password.encode())

    def multiline(self):
        """Read a multi-line response body after its +OK line up to and including the
        terminating ".CRLF".  Returns (bytes on the wire, lines).  No dot-unstuffing: the
        body is counted, not kept."""
        total = 0
        lines = 0
        # The status line's CRLF precedes the body: an empty body is ".\r\n" at once.
        tail = b"\r\n"
        data = bytes(self.buf)
        self.buf = bytearray()
        while True:
            if data:
                probe = tail + data[:8]
                i = probe.find(b"\r\n.\r\n")
                if i >= 0:
                    end = i + 5 - len(tail)
                else:
                    j = data.find(b"\r\n.\r\n")
                    end = j + 5 if j >= 0 else -1
                if end >= 0:
                    total += end
                    lines += data.count(b"\n", 0, end)
                    self.buf += data[end:]
                    return total, lines - 1   # the "." line is not a message line
                total += len(data)
                lines += data.count(b"\n")
                tail = (tail + data)[-4:]
            data = self.s.recv(262144)
            if not data:
                raise Pop3Error("connection closed inside a multi-line response")

    def quit(self):
        """QUIT, then wait until the server closes the connection."""
        self.cmd(b"QUIT")
        self.quit_wait()

    def quit_wait(self):
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                if not self.s.recv(65536):
                    break
        except (OSError, ssl.SSLError):
            pass
        self.close()


PHASES = ("connect+TLS", "greeting", "USER", "PASS", "STAT", "QUIT", "close")


def login_once(port, ctx, user, password, phases=None):
    """connect + TLS handshake, USER/PASS, STAT, QUIT (and the server's close).
    Returns (seconds, None) or (seconds, error string).  phases: a list to which the
    seconds of each step (PHASES) are appended, as one tuple, when the login succeeds."""
    t0 = time.perf_counter()
    p = None
    marks = [t0]
    try:
        p = Pop3(port, ctx)
        marks.append(time.perf_counter())
        p.greeting()
        marks.append(time.perf_counter())
        p.cmd(b"USER " + user.encode())
        marks.append(time.perf_counter())
        p.cmd(b"PASS " + password.encode())
        marks.append(time.perf_counter())
        p.cmd(b"STAT")
        marks.append(time.perf_counter())
        p.cmd(b"QUIT")
        marks.append(time.perf_counter())
        p.quit_wait()
        marks.append(time.perf_counter())
        if phases is not None:
            phases.append(tuple(b - a for a, b in zip(marks, marks[1:])))
        return marks[-1] - t0, None
    except (OSError, ssl.SSLError, Pop3Error, EOFError) as e:
        if p is not None:
            p.close()
        return time.perf_counter() - t0, "%s: %s" % (type(e).__name__, e)


def tls_info(port, ctx, user, password):
    """Protocol version and cipher that a login negotiates (for the report)."""
    p = Pop3(port, ctx)
    try:
        info = (p.s.version(), p.s.cipher()[0])
        p.greeting()
        p.login(user, password)
        p.quit()
    finally:
        p.close()
    return info


def login_loop(port, ctx, user, password, n, phases=None):
    lat = []
    errors = []
    for _ in range(n):
        dt, err = login_once(port, ctx, user, password, phases)
        lat.append(dt)
        if err:
            errors.append(err)
    return lat, errors


def uidl_once(port, ctx, user, password):
    """login + UIDL + QUIT.  Returns (seconds, number of UIDL lines)."""
    t0 = time.perf_counter()
    p = Pop3(port, ctx)
    try:
        p.greeting()
        p.login(user, password)
        p.cmd(b"UIDL")
        _, lines = p.multiline()
        p.quit()
    finally:
        p.close()
    return time.perf_counter() - t0, lines


def retr_session(port, ctx, user, password, msgs=None, before_quit=None):
    """login, STAT, RETR 1..n (one command at a time, no pipelining), QUIT.
    msgs: how many to fetch (default all).  before_quit(): called after the last RETR,
    while the session is still open (memory sampling).  Returns a dict: seconds of the
    RETR phase, bytes received for it (wire form), message count and the STAT size."""
    p = Pop3(port, ctx)
    try:
        p.greeting()
        p.login(user, password)
        st = p.cmd(b"STAT").split()
        count, size = int(st[1]), int(st[2])
        n = count if msgs is None else min(msgs, count)
        wire = 0
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            p.cmd(b"RETR %d" % i)
            b, _ = p.multiline()
            wire += b
        dt = time.perf_counter() - t0
        extra = before_quit() if before_quit else None
        p.quit()
    finally:
        p.close()
    return {"seconds": dt, "wire_bytes": wire, "messages": n, "stat_size": size,
            "extra": extra}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["login", "uidl", "retr"])
    ap.add_argument("-p", "--port", type=int, required=True)
    ap.add_argument("-u", "--user", required=True)
    ap.add_argument("-w", "--password-file", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("-n", type=int, default=10, help="logins (login mode)")
    a = ap.parse_args()
    with open(a.password_file) as f:
        password = f.read().strip()
    ctx = make_context(a.cafile)
    if a.mode == "login":
        t0 = time.perf_counter()
        lat, errors = login_loop(a.port, ctx, a.user, password, a.n)
        wall = time.perf_counter() - t0
        print("%d logins in %.3f s: %.1f/s, %d failed" % (a.n, wall, a.n / wall, len(errors)))
        for e in errors[:5]:
            print("  " + e)
    elif a.mode == "uidl":
        dt, lines = uidl_once(a.port, ctx, a.user, password)
        print("login+UIDL+QUIT: %.3f s, %d lines" % (dt, lines))
    else:
        r = retr_session(a.port, ctx, a.user, password)
        mib = r["stat_size"] / 1048576
        print("RETR %d messages, %.1f MiB in %.3f s: %.1f MiB/s"
              % (r["messages"], mib, r["seconds"], mib / r["seconds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
