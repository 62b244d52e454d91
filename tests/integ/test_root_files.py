"""Files root opens or obeys (issue 5, "root's file handling"):

- the `log` file is opened without blocking, without following a link, and must be a
  regular file of root's that nobody else can write: a FIFO there does not hang a
  connection (lines go to syslog, with the reason);
- the config file, and hosts.allow / hosts.deny (whose spawn and twist run commands as
  root), must belong to root and be writable by nobody else, and so must every directory
  above them (like sshd's StrictModes; a root-owned sticky directory such as /tmp is
  accepted): otherwise the connection is refused with a logged reason and `-t` says so.

Lines that go to syslog are caught by a /dev/log socket of the test's own when the
machine has none (a build host or container); with a real syslog daemon those particular
assertions are skipped and the rest still runs.
"""

import os
import socket
import threading
import time
from pathlib import Path

import pytest

import helpers as h

CONFIG_ERROR = b"-ERR [SYS/TEMP] Server configuration error, try again later.\r\n"


class Syslog:
    """Reads /dev/log in a thread for as long as it exists: a socket nobody drains would
    block every syslog() on the machine once its queue is full (pam_unix logs too)."""

    def __init__(self, sock):
        self.sock = sock
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.lines.append(data.decode(errors="replace"))

    def wait(self, needle, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                for line in self.lines:
                    if needle in line:
                        return line
                seen = list(self.lines)
            if time.monotonic() > deadline:
                raise AssertionError("no syslog line with %r; got:\n%s"
                                     % (needle, "\n".join(seen[-40:])))
            time.sleep(0.05)

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def syslog():
    """A /dev/log of our own if there is none; None (skip syslog checks) otherwise."""
    path = "/dev/log"
    if os.path.lexists(path):
        yield None
        return
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind(path)
    except OSError:
        s.close()
        yield None
        return
    os.chmod(path, 0o666)
    log = Syslog(s)
    try:
        yield log
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        log.close()


def test_fifo_as_log_does_not_hang(daemon, user, syslog):
    fifo = daemon.workdir / "log.fifo"
    os.mkfifo(fifo, 0o600)
    daemon.configure(log=fifo)
    daemon.start()
    # Nobody reads the FIFO: a blocking open() would wait forever, before the greeting.
    with h.Pop3(daemon.port, timeout=15) as c:
        assert c.greeting == h.GREETING
        assert c.login(user.name, user.password) == h.LOGGED_IN
        assert c.stat()[0] == 3
        c.quit()
    if syslog is not None:
        line = syslog.wait("log-file: file=%s" % fifo)
        assert "error=" in line
    # With a reader the open succeeds, and the type check refuses it: nothing is
    # written into the FIFO.
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with h.Pop3(daemon.port, timeout=15) as c:
            assert c.login(user.name, user.password) == h.LOGGED_IN
            c.quit()
        if syslog is not None:
            syslog.wait("not a regular file")
        time.sleep(0.2)
        try:
            data = os.read(rfd, 65536)
        except BlockingIOError:
            data = b""
        assert data == b"", "lines were written into the FIFO: %r" % data[:200]
    finally:
        os.close(rfd)
    # -t does not hang on it either, and says what is wrong
    rc, out = daemon.check(timeout=30)
    assert rc != 0 and "error: log file %s" % fifo in out, out


def _refused(port):
    with h.Pop3(port, read_greeting=False) as c:
        first = c.rawline()
        assert c.wait_closed()
        return first


def test_group_writable_config_is_refused(daemon, user, syslog):
    daemon.start()
    os.chmod(daemon.config_path, 0o620)
    assert _refused(daemon.port) == CONFIG_ERROR
    # nothing of the unsafe file is used: not even its log file
    assert not daemon.log.events("login")
    if syslog is not None:
        line = syslog.wait("config-error: file=%s" % daemon.config_path)
        assert "unsafe: %s: writable by group or others" % daemon.config_path in line
    rc, out = daemon.check()
    assert rc != 0
    assert "config %s is unsafe: %s: writable by group or others" % (
        daemon.config_path, daemon.config_path) in out, out
    # fixed: the next connection works, no restart needed
    os.chmod(daemon.config_path, 0o600)
    with h.Pop3(daemon.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()


def test_config_in_group_writable_directory_is_refused(daemon, user, syslog):
    d = daemon.workdir / "conf.d"
    d.mkdir()
    os.chmod(d, 0o775)
    conf = d / "postern.conf"
    conf.write_text(daemon.config_text())
    os.chmod(conf, 0o600)
    port = h.free_port()
    daemon.launchers.append(h.socket_activate(daemon.binary, ["-c", str(conf)], port,
                                              daemon.workdir / "ssa-gw.out"))
    assert _refused(port) == CONFIG_ERROR
    if syslog is not None:
        line = syslog.wait("config-error: file=%s" % conf)
        assert "unsafe: %s: directory writable by group or others" % d in line
    rc, out = daemon.check(config=conf)
    assert rc != 0 and "directory writable by group or others" in out, out


def test_world_writable_hosts_allow_is_refused(pop3d, user):
    os.chmod(pop3d.hosts_allow, 0o646)
    assert _refused(pop3d.port) == CONFIG_ERROR
    ev = pop3d.log.wait("refused", reason="unsafe-file")
    assert ev["file"] == str(pop3d.hosts_allow)
    assert "writable by group or others" in ev["_line"]
    assert not pop3d.log.events("login")
    rc, out = pop3d.check()
    assert rc != 0 and "libwrap table %s is unsafe" % pop3d.hosts_allow in out, out
    os.chmod(pop3d.hosts_allow, 0o644)
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
