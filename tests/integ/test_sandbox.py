"""The pre-login worker's sandbox (common/privsep/sandbox.c), proved from inside a live
worker.  gdb attaches to a worker that waits for the client's first command and makes it
call socket(), connect(), kill(), open(), ...; the system calls gdb makes the worker run
go through the worker's own seccomp filter, exactly as an attacker's code would.  Each
attack is first shown to work from an ordinary process of the same user (the control),
so that its failure in the worker is the sandbox's doing.

Where this host refuses a feature (a kernel without namespaces, a container), the worker
logs `sandbox: ...=unavailable (ERRNO)` and these tests say what they could not prove
(pytest skip with the reason) after checking that the log and /proc agree.  The fallback
itself is proved with the daemon started without CAP_SYS_ADMIN (setpriv), where every
namespace is refused.

Uses gdb (tests/install-deps.sh), setpriv (util-linux) and fail2ban-regex."""

import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

import helpers as h

GDB = shutil.which("gdb")
SETPRIV = shutil.which("setpriv")
FILTER = h.REPO / "fail2ban" / "postern.conf"
FORGED_RIP = "203.0.113.9"
SIGSTOP = 19
# glibc declares connect() with a transparent union, which gdb would pass wrongly: call it
# through a plain prototype.
CONNECT = "((int (*)(int, void *, unsigned int))connect)"

pytestmark = pytest.mark.skipif(GDB is None, reason="gdb is not installed "
                                "(tests/install-deps.sh): cannot act from inside a worker")


# ---------------------------------------------------------------------------------------
# A live worker


class Worker:
    """One connection whose worker waits in the pre-login state."""

    def __init__(self, daemon, port):
        self.daemon = daemon
        self.conn = h.Pop3(port)
        assert self.conn.greeting == h.GREETING
        inode = h.server_socket_inode(port, self.conn.client_port)
        assert inode, "connection not in /proc/net/tcp"
        postern = pwd.getpwnam("postern").pw_uid
        # Before login only the worker holds the client's socket (the monitor gave up its
        # copy); other runs' workers hold other sockets.
        deadline = time.monotonic() + 10
        while True:
            holders = [p for p in h.socket_holders(inode)
                       if h.proc_uids(p) == (postern, postern)]
            if len(holders) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(holders) == 1, "worker of the connection: %r" % holders
        self.pid = holders[0]
        st = h.proc_stat(self.pid)
        self.start = st[1]
        self.monitor = st[0]
        self.sock_inode = inode

    def status(self):
        out = {}
        for line in Path("/proc/%d/status" % self.pid).read_text().splitlines():
            k, _, v = line.partition(":")
            out[k] = v.strip()
        return out

    def alive(self):
        return h.alive(self.pid, self.start)

    def wait_gone(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.alive()

    def sandbox(self):
        """The worker's `sandbox:` line (log_debug is on): {feature: state}."""
        deadline = time.monotonic() + 10
        while True:
            for ev in self.daemon.log.events("sandbox"):
                if ev["_pid"] == self.monitor:
                    return {k: v for k, v in ev.items() if not k.startswith("_")}
            if time.monotonic() > deadline:
                raise AssertionError("no sandbox line of monitor %d:\n%s"
                                     % (self.monitor, self.daemon.log.tail()))
            time.sleep(0.05)

    def close(self):
        self.conn.close()


def gdb(pid, *commands, timeout=60):
    """gdb attaches to pid, runs the commands (-ex), detaches.  Returns (values, output):
    values are the $N results in order (ints where they are numbers)."""
    argv = [GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off",
            "-iex", "set confirm off", "-p", str(pid)]
    for c in commands:
        argv += ["-ex", c]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    values = []
    for m in re.finditer(r"^\$\d+ = (.*)$", out, re.M):
        v = m.group(1).strip()
        values.append(int(v) if re.fullmatch(r"-?\d+", v) else v)
    return values, out


def killed_by_sigsys(out):
    return "signal SIGSYS" in out


def wait_violations(daemon, n, timeout=10.0):
    """Wait for the monitor's n-th `sandbox-violation` line (a worker killed by SIGSYS)."""
    deadline = time.monotonic() + timeout
    while len(daemon.log.events("sandbox-violation", rip="127.0.0.1")) < n:
        if time.monotonic() > deadline:
            raise AssertionError("%d sandbox-violation lines expected:\n%s"
                                 % (n, daemon.log.tail()))
        time.sleep(0.05)


def sockaddr_in_words(port):
    """struct sockaddr_in for 127.0.0.1:port as two little-endian u64 (x86_64 and arm64
    are little-endian): family 2, port big-endian, address 127.0.0.1."""
    b = struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + bytes([127, 0, 0, 1])
    return struct.unpack("<Q", b)[0], 0


def gdb_sockaddr(port):
    lo, hi = sockaddr_in_words(port)
    return ["set $sa = (unsigned long long *)malloc(16)",
            "set $sa[0] = %d" % lo, "set $sa[1] = %d" % hi]


def as_postern(argv):
    return [SETPRIV, "--reuid=postern", "--regid=postern", "--clear-groups"] + argv


class Listener:
    """A loopback TCP listener; pending() says whether anybody connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def pending(self):
        try:
            c, _ = self.sock.accept()
        except BlockingIOError:
            return False
        c.close()
        return True

    def close(self):
        self.sock.close()


class Proc:
    """A process we start (sleep as postern) and always end."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        h._managed.add(self.p.pid)
        self.pid = self.p.pid
        # wait until setpriv has become the program (uid changed)
        postern = pwd.getpwnam("postern").pw_uid
        deadline = time.monotonic() + 10
        while h.proc_uids(self.pid) != (postern, postern) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert h.proc_uids(self.pid) == (postern, postern)

    def state(self):
        st = h.proc_stat(self.pid)
        return st[2] if st else None

    def end(self):
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.p.kill()
            self.p.wait(10)
        h._managed.discard(self.pid)


@pytest.fixture
def sbx(daemon):
    """The daemon (plain port) with log_debug on, so the worker's sandbox line is logged
    even when every feature is in force."""
    daemon.configure(log_debug="yes")
    port = daemon.activate(False)
    opened = []

    def open_worker():
        w = Worker(daemon, port)
        opened.append(w)
        return w

    yield open_worker
    for w in opened:
        w.close()


@pytest.fixture
def procs():
    made = []

    def make(argv):
        p = Proc(argv)
        made.append(p)
        return p

    yield make
    for p in made:
        p.end()


def require(w, feature):
    """Skip, saying what could not be proved, if this host refused the feature; the log
    line and /proc must agree on it either way."""
    state = w.sandbox().get(feature)
    assert state is not None, "the sandbox line names no %s: %r" % (feature, w.sandbox())
    if state != "yes":
        assert state.startswith("unavailable ("), state
        if feature == "seccomp":
            assert w.status()["Seccomp"] == "0"
        pytest.skip("could not prove %s: this host refused it, %s (the worker logged "
                    "so)" % (feature, state))


def require_setpriv():
    if SETPRIV is None:
        pytest.skip("setpriv (util-linux) is missing: cannot run a process as postern")


# ---------------------------------------------------------------------------------------
# The control: the attacks work from an unsandboxed process of the worker's user


def test_attacks_work_without_the_sandbox(procs):
    """gdb makes an ordinary postern process connect() to a loopback listener and
    kill -STOP another postern process: both succeed.  This is what a compromised worker
    could do before (issue 5), and it shows that gdb's calls are real system calls."""
    require_setpriv()
    victim = procs(as_postern(["sleep", "300"]))
    attacker = procs(as_postern(["sleep", "300"]))
    lst = Listener()
    try:
        vals, out = gdb(attacker.pid, *gdb_sockaddr(lst.port),
                        "set $fd = (int)socket(2, 1, 0)",
                        "print $fd",
                        "call %s($fd, $sa, 16)" % CONNECT,
                        "call (int)kill(%d, %d)" % (victim.pid, SIGSTOP))
        fd, rc_connect, rc_kill = vals[-3:]
        assert fd >= 0 and rc_connect == 0 and rc_kill == 0, out
        assert lst.pending(), "the listener saw no connection"
        deadline = time.monotonic() + 10
        while victim.state() != "T" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert victim.state() == "T", "the victim was not stopped"
    finally:
        lst.close()


# ---------------------------------------------------------------------------------------
# The same attacks from inside a worker


def test_socket_and_connect_kill_the_worker(sbx):
    """socket() in the worker: the filter kills it (SIGSYS) before any socket exists;
    connect() on the socket it already has (fd 0) likewise.  The listener sees nothing."""
    lst = Listener()
    try:
        attacks = (["call (int)socket(2, 1, 0)"],
                   gdb_sockaddr(lst.port) + ["call %s(0, $sa, 16)" % CONNECT])
        for i, attack in enumerate(attacks):
            w = sbx()
            require(w, "seccomp")
            vals, out = gdb(w.pid, *attack)
            assert killed_by_sigsys(out), out
            assert w.wait_gone(), "the worker survived: %s" % out
            assert not lst.pending(), "a connection reached the loopback listener"
            wait_violations(w.daemon, i + 1)
            w.close()
    finally:
        lst.close()


def test_kill_of_another_relay_kills_the_worker(sbx, procs):
    """kill -STOP of another process of the postern user (another connection's relay, in
    the attack of issue 5): the worker dies of SIGSYS, the other process runs on."""
    require_setpriv()
    victim = procs(as_postern(["sleep", "300"]))
    w = sbx()
    require(w, "seccomp")
    vals, out = gdb(w.pid, "call (int)kill(%d, %d)" % (victim.pid, SIGSTOP))
    assert killed_by_sigsys(out), out
    assert w.wait_gone()
    assert victim.state() in ("S", "R"), "victim state %s" % victim.state()
    wait_violations(w.daemon, 1)


def test_open_is_refused(sbx):
    """open() and openat() of the chroot's own root directory, which the chroot alone
    would allow: EACCES, and the worker goes on serving."""
    w = sbx()
    require(w, "seccomp")
    vals, out = gdb(w.pid,
                    "call (int)open(\"/\", 0)",
                    "call (int)*(int *)__errno_location()",
                    "call (int)openat(-100, \".\", 0)",
                    "call (int)*(int *)__errno_location()",
                    "call (int)open(\"/forged\", 0101, 0644)",
                    "call (int)*(int *)__errno_location()")
    assert vals[-6:] == [-1, 13, -1, 13, -1, 13], out      # EACCES
    assert w.alive()
    assert w.conn.cmd("CAPA").startswith("+OK")
    w.conn.multi()


def test_execve_and_ptrace_kill_the_worker(sbx):
    attacks = ("call (int)execve(\"/bin/sh\", 0, 0)",
               "call (long)ptrace(16, %d, 0, 0)" % os.getpid())
    for i, attack in enumerate(attacks):
        w = sbx()
        require(w, "seccomp")
        vals, out = gdb(w.pid, attack)
        assert killed_by_sigsys(out), "%s: %s" % (attack, out)
        assert w.wait_gone()
        wait_violations(w.daemon, i + 1)
        w.close()


def test_forged_log_lines_are_not_logged(sbx):
    """From inside the worker: an auth-failed line through the worker's own log call, one
    hidden behind a newline in an allowed event, and a raw MSG_LOG frame written to the
    ctl socket.  None becomes an auth-failed line, and fail2ban's filter finds only the
    real failure of this test, not the forged address."""
    w = sbx()
    # a real failure, so that the filter is seen to work on this very log
    assert w.conn.login("ptnosuchuser", "wrong") == h.AUTH_FAILED
    w.daemon.log.wait("auth-failed", rip="127.0.0.1")
    line = "auth-failed: user=<x>, method=PLAIN, reason=password, rip=%s" % FORGED_RIP
    body = bytes([1, 3])                                    # version 1, MSG_LOG
    for tag, val in ((1, bytes([2])), (2, b"auth-failed"),
                     (3, line.split(": ", 1)[1].encode())):
        body += struct.pack(">BH", tag, len(val)) + val
    frame = struct.pack(">I", len(body)) + body
    vals, out = gdb(w.pid,
                    "call (void)log_msg(2, \"%s\")" % line,
                    "call (void)log_msg(2, \"tls: x\\nipop3d[1]: %s\")" % line,
                    "set $f = (unsigned char *)malloc(%d)" % len(frame),
                    *["set $f[%d] = %d" % (i, b) for i, b in enumerate(frame)],
                    "call (long)send(3, $f, %d, 0)" % len(frame))
    assert vals and vals[-1] == len(frame), out
    assert w.alive(), out
    # the monitor refused both auth-failed events; the tls line arrived, defanged
    deadline = time.monotonic() + 10
    while len(w.daemon.log.events("monitor")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    refused = [e for e in w.daemon.log.events("monitor")
               if "worker-log-refused" in e["_line"] and "auth-failed" in e["_line"]]
    assert len(refused) == 2, w.daemon.log.tail()
    tls = w.daemon.log.wait("tls")
    assert "\n" not in tls["_line"]
    text = w.daemon.log.text()
    assert FORGED_RIP in text          # it is there, but never as an auth-failed line
    assert not w.daemon.log.events("auth-failed", rip=FORGED_RIP)
    if shutil.which("fail2ban-regex") is None:
        pytest.skip("could not prove it with fail2ban's filter: fail2ban-regex is missing "
                    "(tests/install-deps.sh); the log holds no forged auth-failed line")
    r = subprocess.run(["fail2ban-regex", "-o", "<ip>", str(w.daemon.log.path),
                        str(FILTER)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [l for l in r.stdout.splitlines() if l.strip()] == ["127.0.0.1"], r.stdout


# ---------------------------------------------------------------------------------------
# What /proc shows of a worker


def test_seccomp_and_no_new_privs(sbx):
    w = sbx()
    st = w.status()
    assert st["NoNewPrivs"] == "1"
    require(w, "seccomp")
    assert st["Seccomp"] == "2"           # filter mode


@pytest.mark.parametrize("ns,feature", [("net", "netns"), ("ipc", "ipcns"),
                                        ("pid", "pidns")])
def test_namespaces(sbx, ns, feature):
    """The worker's namespace differs from its monitor's, unless the host refused it, in
    which case both are the same and the log says why."""
    w = sbx()
    mine = os.readlink("/proc/%d/ns/%s" % (w.pid, ns))
    monitor = os.readlink("/proc/%d/ns/%s" % (w.monitor, ns))
    if w.sandbox()[feature] != "yes":
        assert mine == monitor
    require(w, feature)
    assert mine != monitor
    if ns == "pid":
        # the worker is process 1 of its namespace: it sees no other process
        assert w.status()["NSpid"].split() == [str(w.pid), "1"]
    if ns == "net":
        # the client's socket, made outside, still works
        assert w.conn.cmd("CAPA").startswith("+OK")
        w.conn.multi()


def test_pid_namespace_worker_still_ends_on_sigterm(sbx):
    """As init of its namespace the worker would ignore a launcher's SIGTERM without a
    handler; it has one."""
    w = sbx()
    require(w, "pidns")
    os.kill(w.pid, signal.SIGTERM)
    assert w.wait_gone(), "the worker ignored SIGTERM"


def test_limits(sbx, sanitizer_build):
    w = sbx()
    lim = {}
    for line in Path("/proc/%d/limits" % w.pid).read_text().splitlines()[1:]:
        m = re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", line)
        lim[m.group(1).strip()] = (m.group(2), m.group(3))
    assert lim["Max open files"] == ("5", "5")          # 0, 1, 3, 4 (and 2 under ASan)
    assert lim["Max file size"] == ("0", "0")
    assert lim["Max core file size"] == ("0", "0")
    assert lim["Max processes"] == ("0", "0")
    if sanitizer_build:
        # ASan's shadow memory needs terabytes of address space: no RLIMIT_AS
        assert lim["Max address space"] == ("unlimited", "unlimited")
    else:
        assert lim["Max address space"] == (str(48 << 20), str(48 << 20))
        # and the worker lives well within it (the limit is four times the peak)
        peak_kb = int(w.status()["VmPeak"].split()[0])
        assert peak_kb * 1024 * 2 < 48 << 20, "VmPeak %d kB" % peak_kb


def test_descriptors(sbx, sanitizer_build):
    """Only the client socket (0, 1) and the two sockets to the monitor (3, 4); fd 2 only
    in the sanitizer build (its reports); no log file, no syslog socket."""
    w = sbx()
    fddir = Path("/proc/%d/fd" % w.pid)
    fds = {int(f.name): os.readlink(f) for f in fddir.iterdir()}
    want = {0, 1, 3, 4} | ({2} if sanitizer_build else set())
    assert set(fds) == want, fds
    client = "socket:[%d]" % w.sock_inode
    assert fds[0] == client and fds[1] == client
    for fd in (3, 4):
        assert fds[fd].startswith("socket:[") and fds[fd] != client
    assert not any(str(w.daemon.log.path) in t for t in fds.values())


def test_not_dumpable(sbx, procs):
    """Another process of the postern user cannot ptrace the worker (it could an ordinary
    postern process: shown first), and /proc/PID belongs to root."""
    require_setpriv()
    w = sbx()
    assert os.stat("/proc/%d/fd" % w.pid).st_uid == 0
    code = ("import ctypes, sys\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, "
            "ctypes.c_void_p]\n"
            "r = libc.ptrace(0x4206, int(sys.argv[1]), None, None)\n"   # PTRACE_SEIZE
            "print(r, ctypes.get_errno())\n")
    other = procs(as_postern(["sleep", "300"]))
    ctl = h.run(as_postern(["/usr/bin/python3", "-c", code, str(other.pid)]))
    if ctl.stdout.split() != ["0", "0"]:
        pytest.skip("could not prove it: on this host a postern process cannot ptrace "
                    "even an ordinary postern process (%s)" % ctl.stdout.strip())
    r = h.run(as_postern(["/usr/bin/python3", "-c", code, str(w.pid)]))
    assert r.stdout.split() == ["-1", "1"], r.stdout          # EPERM
    assert w.alive()


# ---------------------------------------------------------------------------------------
# Where the host refuses: the fallback, the log line, -t


def _activate_without_sys_admin(daemon, bounding="-sys_admin"):
    """systemd-socket-activate under setpriv without CAP_SYS_ADMIN in the bounding set:
    root that may not make namespaces, as in many containers."""
    port = h.free_port()
    keep = []
    for k in h.SANITIZER_ENV:
        if k in os.environ:
            keep += ["-E", k]
    argv = [SETPRIV, "--bounding-set", bounding, "systemd-socket-activate", "--inetd",
            "-a", "-l", "127.0.0.1:%d" % port] + keep + \
        [str(daemon.binary), "-c", str(daemon.config_path)]
    daemon.launchers.append(h.Launcher(argv, [port], daemon.workdir / "noadmin.out"))
    return port


def test_fallback_without_namespaces(daemon, user):
    """Without CAP_SYS_ADMIN every namespace is refused: the worker says so in the log
    (at warning level, so without log_debug), runs in the monitor's namespaces, keeps the
    rest of its sandbox, and serves the client."""
    require_setpriv()
    port = _activate_without_sys_admin(daemon)
    w = Worker(daemon, port)
    try:
        sb = w.sandbox()
        for f in ("pidns", "netns", "ipcns"):
            assert sb[f] == "unavailable (EPERM)", sb
        for ns in ("net", "ipc", "pid"):
            assert os.readlink("/proc/%d/ns/%s" % (w.pid, ns)) == \
                os.readlink("/proc/%d/ns/%s" % (w.monitor, ns))
        if sb["seccomp"] == "yes":
            assert w.status()["Seccomp"] == "2"
        assert w.conn.login(user.name, user.password) == h.LOGGED_IN
        assert w.conn.stat()[0] == 3
        w.conn.quit()
    finally:
        w.close()


def test_unit_capabilities_suffice(daemon, user):
    """With only the capabilities the systemd units keep (CapabilityBoundingSet=), the
    worker gets its whole sandbox and a login works."""
    require_setpriv()
    host = _host_sandbox(daemon)
    if any(v != "yes" for v in host.values()):
        pytest.skip("could not prove it: this host refuses part of the sandbox even to "
                    "full root (%s)" % host)
    unit = (h.REPO / "systemd" / "postern-pop3@.service").read_text()
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
    bounding = "-all," + ",".join("+" + c[len("CAP_"):].lower() for c in caps)
    daemon.configure(log_debug="yes")
    port = _activate_without_sys_admin(daemon, bounding)
    w = Worker(daemon, port)
    try:
        sb = w.sandbox()
        assert sb == {"pidns": "yes", "netns": "yes", "ipcns": "yes", "seccomp": "yes"}, sb
        assert w.conn.login(user.name, user.password) == h.LOGGED_IN
        assert w.conn.stat()[0] == 3
        w.conn.quit()
    finally:
        w.close()


def _host_sandbox(daemon):
    """What -t says this host allows, {feature: state}."""
    rc, out = daemon.check()
    m = re.search(r"worker sandbox: (.*)$", out, re.M)
    return h.parse_fields(m.group(1))


def test_check_reports_sandbox(daemon):
    """-t says which sandbox features this host allows, and what is missing without
    CAP_SYS_ADMIN; neither is an error."""
    rc, out = daemon.check()
    assert rc == 0, out
    m = re.search(r"^(ok|warning): worker sandbox: (.*)$", out, re.M)
    assert m, out
    for f in ("pidns", "netns", "ipcns", "seccomp"):
        assert re.search(r"\b%s=(yes|unavailable \(E[A-Z]+\))" % f, m.group(2)), out
    if SETPRIV is None:
        return
    r = subprocess.run([SETPRIV, "--bounding-set", "-sys_admin", str(daemon.binary), "-t",
                        "-c", str(daemon.config_path)], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^warning: worker sandbox: pidns=unavailable \(EPERM\), "
                     r"netns=unavailable \(EPERM\), ipcns=unavailable \(EPERM\)",
                     r.stdout, re.M), r.stdout
