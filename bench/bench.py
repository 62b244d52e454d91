#!/usr/bin/python3
"""bench.py: ipop3d against Dovecot, side by side, on this machine; writes bench/RESULTS.md.

Run by bench/run.sh (`make bench`) as root, after run.sh has installed the packages.  It
  - makes two throwaway accounts (useradd + chpasswd: Debian's default yescrypt hash),
    used by both servers through PAM, and their ~/Maildir;
  - makes the `postern` user (tests/mkuser.sh) and /etc/pam.d/pop3 if they are missing;
  - makes an ECDSA P-256 and an RSA 3072 certificate (mkcert.sh) used by both servers;
  - starts ipop3d under systemd-socket-activate and Dovecot (`dovecot -F`, a config of
    its own in a temporary base_dir), each on its own 127.0.0.1 port and each in a
    cpuacct cgroup of its own, so that all the CPU of a server (launcher, master, every
    process of a connection, orphans included) and none of the client's is counted;
  - runs the measurements with bench/pop3bench.py, the same client for both;
  - stops everything it started and removes everything it made, also when interrupted.
Only 127.0.0.1 is ever contacted.

Knobs (environment): BENCH_LOGINS (200), BENCH_LOGINS_RSA (100), BENCH_SERVERS
("ipop3d dovecot"), BENCH_OUT (bench/RESULTS.md), BENCH_CGROUP=v2 (use the cgroup v2
hierarchy even where cgroup v1 cpuacct is mounted).
"""

import ctypes
import datetime
import json
import os
import platform
import pwd
import re
import secrets
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pop3bench as pb  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
IPOP3D = REPO / "ipop3d" / "ipop3d"
OUT = Path(os.environ.get("BENCH_OUT", str(REPO / "bench" / "RESULTS.md")))
ARTIFACTS = REPO / "build" / "bench"

USERS = ["pbench1", "pbench2"]
USER_MARK = "postern bench (throwaway)"
CG_PREFIX = "postern-bench-"

N_LOGIN = int(os.environ.get("BENCH_LOGINS", "200"))
N_LOGIN_RSA = int(os.environ.get("BENCH_LOGINS_RSA", "100"))
SERVERS = os.environ.get("BENCH_SERVERS", "ipop3d dovecot").split()
WARMUP = 5
LOGIN_ROUNDS = 5
LOGIN_MSGS, LOGIN_MSG_SIZE = 10, 4096
UIDL_MSGS, UIDL_MSG_SIZE, UIDL_RUNS = 10000, 2048, 5
BIG_SIZE, BIG_RUNS = 50 * 1048576, 3
BATCH_MSGS, BATCH_SIZE, BATCH_RUNS = 1000, 10 * 1024, 3
PROBE_N = 50
PROFILE_N = 40
DEADLINE_S = 20 * 60          # the whole run stops itself after this
MiB = 1048576.0


T0 = time.monotonic()


def log(msg):
    print("bench: [%5.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def run(argv, check=True, timeout=120, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s%s" % (" ".join(map(str, argv)), r.returncode,
                                                  r.stdout[-2000:], r.stderr[-2000:]))
    return r


class Cleanup:
    """Undo stack: everything made or started is registered here at once."""

    def __init__(self):
        self.fns = []

    def push(self, desc, fn):
        self.fns.append((desc, fn))

    def run(self):
        while self.fns:
            desc, fn = self.fns.pop()
            try:
                fn()
            except Exception as e:  # keep undoing the rest
                log("cleanup: %s: %s" % (desc, e))


CLEANUP = Cleanup()
NOTES = []      # remarks for the report found while measuring


def _on_signal(signum, frame):
    raise SystemExit("bench: stopped by signal %d" % signum)


# ---------------------------------------------------------------------------------------
# cgroups: cgroup v1 cpuacct (cpuacct.usage, ns) or, on a cgroup v2 host, cpu.stat


class Cgroup:
    def __init__(self, name):
        v1 = Path("/sys/fs/cgroup/cpuacct")
        if (v1 / "cpuacct.usage").exists() and os.environ.get("BENCH_CGROUP") != "v2":
            self.path, self.v = v1 / (CG_PREFIX + name), 1
        else:
            base = Path("/sys/fs/cgroup")
            if not (base / "cgroup.controllers").exists():
                base = Path("/sys/fs/cgroup/unified")
            if not (base / "cgroup.procs").exists():
                raise RuntimeError("no cgroup v1 cpuacct nor cgroup v2 hierarchy found")
            self.path, self.v = base / (CG_PREFIX + name), 2
        if self.path.exists():
            self._empty()
            self.path.rmdir()
        self.path.mkdir()
        CLEANUP.push("cgroup " + str(self.path), self.remove)

    def enter(self):
        """preexec_fn: put the calling (child) process in the group before it execs."""
        with open(self.path / "cgroup.procs", "w") as f:
            f.write(str(os.getpid()))

    def usage_ns(self):
        if self.v == 1:
            return int((self.path / "cpuacct.usage").read_text())
        for ln in (self.path / "cpu.stat").read_text().splitlines():
            if ln.startswith("usage_usec "):
                return int(ln.split()[1]) * 1000
        raise RuntimeError("no usage_usec in cpu.stat")

    def pids(self):
        try:
            return [int(x) for x in (self.path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def settle(self, count, timeout=5.0):
        """Wait until no more than count processes are left (a connection's processes
        have all exited), so that their CPU time is all in the counter."""
        deadline = time.monotonic() + timeout
        while len(self.pids()) > count and time.monotonic() < deadline:
            time.sleep(0.01)

    def _empty(self):
        # Only processes this run (or an aborted earlier run) put in the group are here.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.05)

    def remove(self):
        if not self.path.exists():
            return
        self._empty()
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        self.path.rmdir()


def measure(srv, fn):
    """Run fn(); return (its result, wall seconds, server CPU seconds)."""
    srv.settle()
    u0 = srv.cg.usage_ns()
    t0 = time.perf_counter()
    r = fn()
    wall = time.perf_counter() - t0
    srv.settle()
    cpu = (srv.cg.usage_ns() - u0) / 1e9
    return r, wall, cpu


# ---------------------------------------------------------------------------------------
# processes


def proc_status(pid):
    d = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                k, _, v = ln.partition(":")
                d[k] = v.strip()
    except OSError:
        return None
    return d


def kb(v):
    return int(v.split()[0]) if v else 0


def listening(port):
    """True once something listens on 127.0.0.1:port (read from /proc: connecting to
    the socket-activation launcher would start a daemon)."""
    want = ":%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            for ln in f.readlines()[1:]:
                parts = ln.split()
                if parts[1].endswith(want) and parts[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    kind = "?"

    def __init__(self, label, cg, port):
        self.label, self.cg, self.port = label, cg, port
        self.proc = None
        self.base_pids = set()
        self.perf = None      # a Perf: run the server under `perf record`

    def _spawn(self, argv, logpath):
        if self.perf:
            argv = self.perf.prefix() + argv
        logf = open(logpath, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, preexec_fn=self.cg.enter,
                                     start_new_session=True)
        logf.close()
        CLEANUP.push("stop " + self.label, self.stop)
        deadline = time.monotonic() + 15
        while not listening(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (exit %s); see %s"
                                   % (self.label, self.proc.returncode, logpath))
            if time.monotonic() > deadline:
                raise RuntimeError("%s does not listen on port %d" % (self.label, self.port))
            time.sleep(0.05)

    def baseline(self):
        """The processes that are there between connections."""
        time.sleep(0.3)
        self.base_pids = set(self.cg.pids())

    def busy(self):
        """Processes of a connection still there (other processes a server starts on
        demand and keeps, such as Dovecot's auth workers, are not waited for)."""
        n = 0
        for pid in self.cg.pids():
            if pid in self.base_pids:
                continue
            st = proc_status(pid)
            if st and st.get("Name") in self.conn_names:
                n += 1
        return n

    def settle(self, timeout=5.0):
        """Wait until the connections' processes have exited, so that all their CPU
        time is in the counter."""
        deadline = time.monotonic() + timeout
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self):
        if self.proc is None:
            return
        if self.perf and self.proc.poll() is None:
            # perf's child is the server: stop it, and perf ends with it
            for pid in self.cg.pids():
                st = proc_status(pid)
                if st and int(st.get("PPid", "0")) == self.proc.pid:
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        self.cg.settle(0, timeout=5)
        self.cg._empty()


class Ipop3d(Server):
    kind = "ipop3d"
    conn_names = ("ipop3d",)

    def __init__(self, label, cg, port, conf, logpath):
        super().__init__(label, cg, port)
        self.conf, self.logpath = conf, logpath

    def start(self):
        self._spawn(["systemd-socket-activate", "--accept", "--inetd",
                     "-l", "127.0.0.1:%d" % self.port, str(IPOP3D), "-c", str(self.conf),
                     "-s"], self.logpath.with_suffix(".launcher.log"))


class Perf:
    """`perf record` (cpu-clock samples) around a server, started disabled and switched
    on only while the logins to profile run (perf's --control FIFOs)."""

    def __init__(self, d, name, comms=None):
        # comms: sample the whole system and keep these process names.  For Dovecot:
        # the kernel drops inherited perf events at an exec after a change of uid,
        # which is how Dovecot's master starts its login and pop3 processes.
        self.comms = comms
        self.out = d / (name + ".perf.data")
        self.ctl, self.ack = d / (name + ".perf.ctl"), d / (name + ".perf.ack")
        os.mkfifo(self.ctl, 0o600)
        os.mkfifo(self.ack, 0o600)
        self.wfd = self.rfd = None

    def prefix(self):
        return ["perf", "record", "-e", "cpu-clock", "-F", "1999", "-q", "-D", "-1"] + \
            (["-a"] if self.comms else []) + \
            ["--control", "fifo:%s,%s" % (self.ctl, self.ack), "-o", str(self.out), "--"]

    def command(self, word):
        if self.wfd is None:
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.wfd = os.open(self.ctl, os.O_WRONLY | os.O_NONBLOCK)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("perf does not read its control FIFO")
                    time.sleep(0.05)
            self.rfd = os.open(self.ack, os.O_RDONLY | os.O_NONBLOCK)
        os.write(self.wfd, word.encode() + b"\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.rfd], [], [], 0.5)
            if r and os.read(self.rfd, 64).startswith(b"ack"):
                return
        raise RuntimeError("perf did not acknowledge %r" % word)

    def close(self):
        for fd in (self.wfd, self.rfd):
            if fd is not None:
                os.close(fd)
        self.wfd = self.rfd = None

    def report(self):
        """{"dso": [(percent, dso)], "comm": [...], "sym": [...], "samples": n}: shares
        of the samples, counted here from perf's per-(comm, dso, symbol) sample counts
        (perf's own --sort dso mixes up processes under --comms)."""
        filt = ["--comms", ",".join(self.comms)] if self.comms else []
        r = run(["perf", "report", "-i", str(self.out), "--stdio", "-q",
                 "-F", "sample,comm,dso,sym"] + filt, check=False, timeout=300)
        by = {"dso": {}, "comm": {}, "sym": {}}
        total = 0
        for ln in r.stdout.splitlines():
            m = re.match(r"\s*(\d+)\s+(\S+)\s+(\S+)\s+\[.\]\s+(.+?)\s*$", ln)
            if m:
                n = int(m.group(1))
                comm, dso, sym = m.group(2), m.group(3), m.group(4)
                if sym.startswith("0x"):
                    sym = "(no symbols)"
                sym = "%s %s" % (dso, sym)
                total += n
                for k, v in (("comm", comm), ("dso", dso), ("sym", sym)):
                    by[k][v] = by[k].get(v, 0) + n
        out = {k: sorted(((100.0 * c / total, name) for name, c in v.items()), reverse=True)
               for k, v in by.items()} if total else {"dso": [], "comm": [], "sym": []}
        out["samples"] = total
        return out


DOVECOT_CONF = """\
# Written by postern's bench/bench.py for one benchmark run; not the system's Dovecot.
protocols = pop3
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = postern-bench-{tag}
log_path = {dir}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 1000
passdb {{
  driver = pam
}}
userdb {{
  driver = passwd
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = {port}
    ssl = yes
  }}
{login_mode}}}
"""
LOGIN_DEFAULT = "  service_count = 1\n"
LOGIN_HP = "  service_count = 0\n  process_min_avail = {n}\n  vsz_limit = 1G\n"


class Dovecot(Server):
    kind = "dovecot"
    conn_names = ("pop3", "pop3-login")

    def __init__(self, label, cg, port, tmp, tag, certdir, hp):
        super().__init__(label, cg, port)
        self.dir = tmp / ("dovecot-" + tag)
        self.dir.mkdir(mode=0o755)
        (self.dir / "state").mkdir(mode=0o755)
        self.conf = self.dir / "dovecot.conf"
        mode = LOGIN_HP.format(n=os.cpu_count() or 2) if hp else LOGIN_DEFAULT
        self.conf.write_text(DOVECOT_CONF.format(
            dir=self.dir, tag=tag, cert=certdir / "postern.crt", key=certdir / "postern.key",
            port=port, login_mode=mode))
        self.logpath = self.dir / "dovecot.log"

    def start(self):
        self._spawn(["dovecot", "-F", "-c", str(self.conf)], self.dir / "master.out")


# ---------------------------------------------------------------------------------------
# accounts, mail stores, certificates


def shadow_hash(user):
    with open("/etc/shadow") as f:
        for ln in f:
            p = ln.split(":")
            if p[0] == user:
                return p[1]
    return None


def libcrypt():
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                  ctypes.c_int]
    return lib


def remove_user(user):
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return
    if pw.pw_gecos != USER_MARK:
        raise RuntimeError("user %s exists and is not ours: not removing it" % user)
    # its processes: only ever our servers' sessions, already stopped
    r = run(["userdel", "-r", user], check=False)
    try:
        pwd.getpwnam(user)
    except KeyError:
        return
    raise RuntimeError("userdel %s failed: %s" % (user, r.stderr.strip()))


def make_user(user):
    try:
        pwd.getpwnam(user)
        log("removing leftover account %s of an earlier run" % user)
        remove_user(user)
    except KeyError:
        pass
    run(["useradd", "--create-home", "--shell", "/usr/sbin/nologin", "--comment",
         USER_MARK, user])
    CLEANUP.push("remove user " + user, lambda: remove_user(user))
    password = secrets.token_urlsafe(18)
    run(["chpasswd"], input="%s:%s\n" % (user, password))
    h = shadow_hash(user) or ""
    how = "chpasswd"
    if not h.startswith("$y$"):
        # chpasswd followed login.defs' ENCRYPT_METHOD: set libcrypt's default yescrypt
        lib = libcrypt()
        setting = lib.crypt_gensalt(b"$y$", 0, None, 0)
        h2 = lib.crypt(password.encode(), setting).decode()
        run(["chpasswd", "-e"], input="%s:%s\n" % (user, h2))
        h = shadow_hash(user)
        how = "chpasswd -e (libcrypt default yescrypt)"
    if not h.startswith("$y$"):
        raise RuntimeError("could not give %s a yescrypt hash" % user)
    return password, h, how


def message(i, size, user):
    hdr = ("Return-Path: <sender@example.org>\n"
           "Delivered-To: %s@localhost\n"
           "From: Bench Sender <sender@example.org>\n"
           "To: %s@localhost\n"
           "Subject: benchmark message %d\n"
           "Date: Mon, 01 Jan 2024 00:00:00 +0000\n"
           "Message-ID: <bench.%d@example.org>\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=us-ascii\n\n" % (user, user, i, i)).encode()
    line = b"The quick brown fox jumps over the lazy dog; 0123456789 ABCDEFGHIJKLMNOPQRS\n"
    n = max(0, size - len(hdr))
    body = line * (n // len(line))
    rest = n - len(body)
    if rest:
        body += b"x" * (rest - 1) + b"\n" if rest > 1 else b"\n"
    return hdr + body


def make_maildir(user, count, size):
    """~/Maildir with count messages of size bytes in cur/, already seen (":2,S"), so
    that neither server renames files while reading: every run sees the same store.
    Any earlier Maildir, with whatever index or cache files a server left, goes first."""
    pw = pwd.getpwnam(user)
    md = Path(pw.pw_dir) / "Maildir"
    if md.exists():
        shutil.rmtree(md)
    for d in ("", "cur", "new", "tmp"):
        (md / d).mkdir(mode=0o700)
        os.chown(md / d, pw.pw_uid, pw.pw_gid)
    t = 1704067200
    for i in range(count):
        name = "%d.M%06dP4242Q1.postern-bench:2,S" % (t + i, i)
        p = md / "cur" / name
        data = message(i + 1, size, user)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.chown(p, pw.pw_uid, pw.pw_gid)
    if count > 100:
        log("  made %s: %d messages of %d bytes" % (md, count, size))
    return md


# ---------------------------------------------------------------------------------------
# measurements


def pct(xs, q):
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))
    return s[k]


def login_concurrent(port, cafile, creds, n_each):
    """One forked client process per account, n_each logins each, at the same time."""
    kids = []
    for user, password in creds:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(r)
                ctx = pb.make_context(cafile)
                lat, errs = pb.login_loop(port, ctx, user, password, n_each)
                data = json.dumps({"lat": lat, "errors": errs}).encode()
                with os.fdopen(w, "wb") as f:
                    f.write(data)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        kids.append((pid, r))
    lat, errs = [], []
    for pid, r in kids:
        with os.fdopen(r, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        if data:
            d = json.loads(data)
            lat += d["lat"]
            errs += d["errors"]
        else:
            errs.append("a client process failed")
    return lat, errs


def bench_logins(servers, cafile, creds, n, concurrent=True, rounds=LOGIN_ROUNDS):
    """n logins per server, sequential (and then from 2 concurrent clients), in rounds
    that take turns between the servers, so that a change in the machine's load (it may
    be shared) falls on all of them alike."""
    ctx = pb.make_context(cafile)
    (u1, p1) = creds[0]
    acc = {}
    for srv in servers:
        pb.login_loop(srv.port, ctx, u1, p1, WARMUP)
        if concurrent:
            login_concurrent(srv.port, cafile, creds[:2], 2)
        srv.baseline()
        acc[srv.label] = {"tls": pb.tls_info(srv.port, ctx, u1, p1)}
    modes = ["seq", "conc"] if concurrent else ["seq"]
    for mode in modes:
        per = max(1, n // rounds)
        if mode == "conc":
            per = max(1, per // 2)
        tot = {srv.label: {"n": 0, "lat": [], "errs": [], "wall": 0.0, "cpu": 0.0,
                           "phases": []} for srv in servers}
        for _ in range(rounds):
            for srv in servers:
                if mode == "seq":
                    fn = (lambda s=srv: pb.login_loop(s.port, ctx, u1, p1, per,
                                                      tot[s.label]["phases"]))
                    k = per
                else:
                    fn = (lambda s=srv: login_concurrent(s.port, cafile, creds[:2], per))
                    k = 2 * per
                (lat, errs), wall, cpu = measure(srv, fn)
                t = tot[srv.label]
                t["n"] += k
                t["lat"] += lat
                t["errs"] += errs
                t["wall"] += wall
                t["cpu"] += cpu
        for srv in servers:
            t = tot[srv.label]
            r = summarize_logins(t["n"], t["lat"], t["errs"], t["wall"], t["cpu"])
            if t["phases"]:
                r["phases_ms"] = {name: statistics.median(x[i] for x in t["phases"]) * 1000
                                  for i, name in enumerate(pb.PHASES)}
            acc[srv.label][mode] = r
            log("  %-24s %-10s %6.1f logins/s, %6.2f ms CPU/login, %d failed"
                % (srv.label, "sequential" if mode == "seq" else "2 clients", r["rate"],
                   r["cpu_ms"], r["failed"]))
    return acc


def summarize_logins(n, lat, errs, wall, cpu):
    ok = n - len(errs)
    return {"n": n, "ok": ok, "failed": len(errs), "errors": sorted(set(errs))[:5],
            "wall_s": wall, "rate": ok / wall if wall > 0 else 0.0,
            "lat_med_ms": statistics.median(lat) * 1000 if lat else float("nan"),
            "lat_p95_ms": pct(lat, 0.95) * 1000,
            "cpu_s": cpu, "cpu_ms": cpu * 1000 / max(1, n)}


def bench_uidl(servers, cafile, user, password):
    """A fresh 10,000-message Maildir; the first login + UIDL + QUIT of each server
    (which builds its index or cache), then UIDL_RUNS more."""
    make_maildir(user, UIDL_MSGS, UIDL_MSG_SIZE)
    ctx = pb.make_context(cafile)
    res = {}
    for srv in servers:
        (dt, lines), wall, cpu = measure(srv,
                                         lambda: pb.uidl_once(srv.port, ctx, user, password))
        res[srv.label] = {"cold": {"s": dt, "cpu_s": cpu, "lines": lines}, "warm": []}
    for _ in range(UIDL_RUNS):
        for srv in servers:
            (dt, lines), wall, cpu = measure(
                srv, lambda: pb.uidl_once(srv.port, ctx, user, password))
            res[srv.label]["warm"].append({"s": dt, "cpu_s": cpu, "lines": lines})
    for srv in servers:
        r = res[srv.label]
        r["warm_s"] = statistics.median(x["s"] for x in r["warm"])
        r["warm_cpu_s"] = statistics.median(x["cpu_s"] for x in r["warm"])
        r["lines_ok"] = all(x["lines"] == UIDL_MSGS for x in r["warm"] + [r["cold"]])
        log("  %-26s UIDL 10k: cold %.3f s (%.3f s CPU), warm %.3f s (%.3f s CPU)%s"
            % (srv.label, r["cold"]["s"], r["cold"]["cpu_s"], r["warm_s"], r["warm_cpu_s"],
               "" if r["lines_ok"] else "  [WRONG LINE COUNT]"))
    return res


def conn_processes(srv, uid_names):
    """Peak and current RSS of the server's processes that serve the open connection
    (not those it has between connections)."""
    rows = []
    for pid in srv.cg.pids():
        st = proc_status(pid)
        if st is None:
            continue
        uid = int(st.get("Uid", "0").split()[0])
        role = st.get("Name", "?")
        if srv.kind == "ipop3d":
            role = "monitor (root)" if uid == 0 else uid_names.get(uid, "uid %d" % uid)
            if st.get("Name", "").startswith("systemd-socket"):
                role = "launcher"
        rows.append({"pid": pid, "name": st.get("Name", "?"), "role": role,
                     "hwm_kb": kb(st.get("VmHWM")), "rss_kb": kb(st.get("VmRSS")),
                     "connection": pid not in srv.base_pids
                     and st.get("Name") in srv.conn_names})
    return rows


def ipop3d_maxrss(logpath, since):
    try:
        with open(logpath, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [int(m) for m in re.findall(r"maxrss_kb=(\d+)", text)]


def bench_retr(servers, cafile, user, password, label, count, size, runs, uid_names,
               mem=False):
    make_maildir(user, count, size)
    ctx = pb.make_context(cafile)
    res = {}
    for srv in servers:  # warm-up: sizes computed, indexes/caches built
        pb.retr_session(srv.port, ctx, user, password, msgs=0)
        res[srv.label] = {"runs": []}
    for _ in range(runs):
        for srv in servers:
            since = srv.logpath.stat().st_size if srv.logpath.exists() else 0
            sampler = (lambda s=srv: conn_processes(s, uid_names)) if mem else None
            r, wall, cpu = measure(
                srv,
                lambda: pb.retr_session(srv.port, ctx, user, password, before_quit=sampler))
            r["cpu_s"] = cpu
            r["session_wall_s"] = wall
            if srv.kind == "ipop3d":
                r["log_maxrss_kb"] = ipop3d_maxrss(srv.logpath, since)
            res[srv.label]["runs"].append(r)
    for srv in servers:
        rr = res[srv.label]["runs"]
        med = sorted(rr, key=lambda x: x["seconds"])[len(rr) // 2]   # the median run
        mib = med["wire_bytes"] / MiB
        res[srv.label].update({
            "mib": mib, "messages": med["messages"], "seconds": med["seconds"],
            "mib_s": mib / med["seconds"], "msg_s": med["messages"] / med["seconds"],
            "cpu_s": statistics.median(x["cpu_s"] for x in rr),
            "wire_ok": all(x["wire_bytes"] >= x["stat_size"] for x in rr),
            "stat_size": med["stat_size"],
            "mem": med.get("extra"), "log_maxrss_kb": med.get("log_maxrss_kb")})
        if not res[srv.label]["wire_ok"]:
            NOTES.append("%s, RETR %s: fewer bytes came back than STAT announced"
                         % (srv.label, label))
        res[srv.label]["cpu_ms_per_mib"] = res[srv.label]["cpu_s"] * 1000 / mib
        log("  %-26s %s: %.1f MiB/s, %.0f msg/s, %.1f ms CPU/MiB"
            % (srv.label, label, res[srv.label]["mib_s"], res[srv.label]["msg_s"],
               res[srv.label]["cpu_ms_per_mib"]))
    return res


def perf_usable():
    if not shutil.which("perf"):
        return False
    try:
        return run(["perf", "stat", "-e", "cpu-clock", "true"], check=False,
                   timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def bench_profile(servers, cafile, creds, n):
    """Sequential logins to servers running under `perf record`: where their CPU goes,
    by library (dso) and by process name (comm).  Only the logins are sampled."""
    ctx = pb.make_context(cafile)
    out = {}
    for srv in servers:
        pb.login_loop(srv.port, ctx, creds[0][0], creds[0][1], WARMUP)
        srv.baseline()
        srv.settle()
        srv.perf.command("enable")
        lat, errs = pb.login_loop(srv.port, ctx, creds[0][0], creds[0][1], n)
        srv.settle()
        srv.perf.command("disable")
        srv.perf.close()
        srv.stop()
        if srv.perf.out.exists():
            shutil.copyfile(srv.perf.out, ARTIFACTS / srv.perf.out.name)
        out[srv.label] = {"n": n, "failed": len(errs)}
        out[srv.label].update(srv.perf.report())
        top = ", ".join("%s %.0f%%" % (d, p) for p, d in out[srv.label]["dso"][:4])
        log("  %-24s profile of %d logins: %s" % (srv.label, n, top))
    return out


def probe_exec(cg, argv, n):
    """CPU per run of argv, n times, each run in the probe cgroup from before exec."""
    r = run(argv, check=False, preexec_fn=cg.enter)
    u0 = cg.usage_ns()
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, preexec_fn=cg.enter, timeout=30)
    wall = time.perf_counter() - t0
    cg.settle(0)
    return {"cpu_ms": (cg.usage_ns() - u0) / 1e6 / n, "wall_ms": wall * 1000 / n,
            "exit": r.returncode, "out": (r.stdout + r.stderr)[-1500:]}


def probe_handshake(cg, certdir, seconds=3):
    """Server CPU of one full TLS handshake: openssl s_server in the probe cgroup,
    openssl s_time -new as the client (outside it)."""
    port = free_port()
    p = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
                          "-cert", str(certdir / "postern.crt"),
                          "-key", str(certdir / "postern.key"), "-www", "-quiet"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, preexec_fn=cg.enter,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("openssl s_server did not start")
            time.sleep(0.05)
        u0 = cg.usage_ns()
        r = run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
                 "-time", str(seconds)], check=False, timeout=seconds + 30)
        cpu = (cg.usage_ns() - u0) / 1e9
    finally:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    m = re.search(r"(\d+) connections in ([\d.]+)s", r.stdout) or \
        re.search(r"(\d+) connections in ([\d.]+) real", r.stdout)
    if not m:
        raise RuntimeError("s_time: cannot parse: " + r.stdout[-500:])
    n = int(m.group(1))
    return {"n": n, "cpu_ms": cpu * 1000 / max(1, n)}


def probe_yescrypt(user, password, n=20):
    lib = libcrypt()
    h = shadow_hash(user).encode()
    times = []
    for _ in range(n):
        t0 = time.process_time()
        ok = lib.crypt(password.encode(), h) == h
        times.append(time.process_time() - t0)
        if not ok:
            raise RuntimeError("yescrypt verification failed")
    return {"ms": statistics.median(times) * 1000, "setting": h.decode().rsplit("$", 1)[0]}


# ---------------------------------------------------------------------------------------
# the report


def f1(x):
    return "%.1f" % x


def f2(x):
    return "%.2f" % x


def ratio(a, b):
    try:
        return "%.2f" % (a / b) if b else "n/a"
    except TypeError:
        return "n/a"


def cmd_out(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info():
    model = ""
    with open("/proc/cpuinfo") as f:
        for ln in f:
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    mem = ""
    with open("/proc/meminfo") as f:
        for ln in f:
            if ln.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(ln.split()[1]) / 1048576)
    deb = Path("/etc/debian_version").read_text().strip() if Path(
        "/etc/debian_version").exists() else "?"
    virt = cmd_out(["systemd-detect-virt"]) or "?"
    rev = cmd_out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = cmd_out(["git", "-C", str(REPO), "status", "--porcelain", "--", "common",
                     "ipop3d"])
    return {
        "nproc": os.cpu_count(), "cpu": model, "mem": mem, "kernel": platform.release(),
        "debian": deb, "virt": virt,
        "dovecot": cmd_out(["dovecot", "--version"]),
        "openssl": cmd_out(["openssl", "version"]),
        "python": platform.python_version(),
        "systemd": cmd_out(["systemd-socket-activate", "--version"]).splitlines()[0:1],
        "libpam": cmd_out(["dpkg-query", "-W", "-f", "${Version}", "libpam0g"]),
        "libcrypt": cmd_out(["dpkg-query", "-W", "-f", "${Version}", "libcrypt1"]),
        "ipop3d": (rev + (" + uncommitted changes" if dirty else "")) if rev else "?",
    }


DSO_MEANING = [
    (r"^\[kernel", "the kernel: fork, exec, mmap, page faults, sockets, files"),
    (r"^libcrypt\.so", "libcrypt: yescrypt"),
    (r"^libcrypto\.so", "OpenSSL libcrypto: handshake crypto, init, key load"),
    (r"^libssl\.so", "OpenSSL libssl"),
    (r"^ld-linux", "dynamic loader: loading and relocating libraries"),
    (r"^libc\.so", "libc"),
    (r"^ipop3d$", "ipop3d's own code"),
    (r"^libdovecot", "Dovecot's libraries"),
    (r"^pam_", "a PAM module"),
    (r"^libpam", "libpam"),
]


def dso_meaning(d):
    for rx, m in DSO_MEANING:
        if re.search(rx, d):
            return m
    return ""


def write_profile(w, PR, lg):
    ip = next((v for k, v in PR.items() if k.startswith("ipop3d")), None)
    dc = next((v for k, v in PR.items() if k.startswith("dovecot")), None)
    cpu_ip = lg.get("ipop3d-ecdsa", {}).get("seq", {}).get("cpu_ms")
    cpu_dc = lg.get("dovecot-default-ecdsa", {}).get("seq", {}).get("cpu_ms")
    n = (ip or dc)["n"]
    w("### CPU profile of the logins, by library")
    w("")
    w("`perf record -e cpu-clock` around each server (all its processes, sampling "
      "switched on only during %d sequential ECDSA logins). The share of samples is turned "
      "into ms per login with the server CPU per login of section 1." % n)
    w("")
    w("| library (dso) | what it is | ipop3d, ms | ipop3d, % | Dovecot default, ms | "
      "Dovecot, % |")
    w("|---|---|---:|---:|---:|---:|")
    di = {d: p for p, d in (ip["dso"] if ip else [])}
    dd = {d: p for p, d in (dc["dso"] if dc else [])}
    names = sorted(set(di) | set(dd), key=lambda d: -(di.get(d, 0) + dd.get(d, 0)))
    shown = [d for d in names if di.get(d, 0) >= 1.0 or dd.get(d, 0) >= 1.0][:14]
    for d in shown + ["(all others)"]:
        if d == "(all others)":
            a = sum(v for k, v in di.items() if k not in shown)
            b = sum(v for k, v in dd.items() if k not in shown)
        else:
            a, b = di.get(d, 0.0), dd.get(d, 0.0)

        def ms(p, cpu):
            return "%.2f" % (p / 100 * cpu) if cpu else "-"
        w("| %s | %s | %s | %.1f | %s | %.1f |" % (d, dso_meaning(d), ms(a, cpu_ip), a,
                                                    ms(b, cpu_dc), b))
    w("")
    for lab, x in (("ipop3d", ip), ("Dovecot", dc)):
        if x:
            w("- %s, by process name: %s." % (lab, ", ".join(
                "%s %.0f%%" % (c, p) for p, c in x["comm"] if p >= 0.5)))
    w("")
    w("The functions with the most samples (library, function: % of the server's "
      "samples; libcrypt has no symbols, its samples are yescrypt):")
    w("")
    for lab, x in (("ipop3d", ip), ("Dovecot default", dc)):
        if x and x.get("sym"):
            w("- %s: %s." % (lab, "; ".join("%s %.1f%%" % (sy.replace("[kernel.kallsyms]",
                                                                        "kernel"), p)
                                         for p, sy in x["sym"][:10])))
    w("")


def write_report(R, path):
    M = R["machine"]
    L = []
    w = L.append
    w("# ipop3d vs Dovecot: benchmark results")
    w("")
    w("Written by `make bench` (bench/run.sh, bench/bench.py, client bench/pop3bench.py) "
      "on %s, in %.0f s. Numbers from one run on a small shared VM: read them as ratios "
      "with a few percent of noise, not as absolute capacity." % (R["date"], R["elapsed_s"]))
    w("")
    w("**Ratio** columns are ipop3d / Dovecot: above 1 means ipop3d does more logins or "
      "bytes per second, or uses more CPU or memory.")
    w("")
    w("## Machine and versions")
    w("")
    w("| | |")
    w("|---|---|")
    w("| CPU | %s, nproc = %s |" % (M["cpu"], M["nproc"]))
    w("| memory | %s |" % M["mem"])
    w("| load average (1 min) | %.2f at the start, %.2f at the end: other work on the "
      "machine shares its CPUs with the bench |" % (R["load"][0], R["load"][1]))
    w("| system | Debian %s, Linux %s, virtualization: %s |" % (M["debian"], M["kernel"],
                                                                M["virt"]))
    w("| ipop3d | postern %s, `make` release build |" % M["ipop3d"])
    w("| Dovecot | %s (Debian package dovecot-pop3d) |" % M["dovecot"])
    w("| OpenSSL | %s |" % M["openssl"])
    w("| PAM / libcrypt | libpam0g %s, libcrypt1 %s |" % (M["libpam"], M["libcrypt"]))
    w("| launcher (ipop3d) | %s |" % (" ".join(M["systemd"]) or "?"))
    w("| client | Python %s (`ssl` module), one process per concurrent client |"
      % M["python"])
    w("")
    w("## Setup, the same for both servers")
    w("")
    S = R["setup"]
    w("- Accounts: throwaway users %s made with `useradd` + `%s`; password hash `%s...` "
      "(yescrypt, Debian's default cost). Both servers check it through PAM: ipop3d with "
      "/etc/pam.d/pop3 (common-auth, common-account, common-session-noninteractive), "
      "Dovecot with `passdb pam` (/etc/pam.d/dovecot: auth and account; Dovecot opens "
      "no PAM session by default) and `userdb passwd`." % (
          ", ".join(USERS), S["chpasswd"], S["hash_setting"]))
    w("- Certificate: the same ECDSA P-256 key and certificate (`mkcert.sh`) for both; a "
      "second run of the login test with RSA 3072. TLS negotiated: ipop3d %s, Dovecot %s."
      % (" / ".join(S.get("tls_ipop3d", ["?"])), " / ".join(S.get("tls_dovecot", ["?"]))))
    w("- ipop3d: `systemd-socket-activate --accept --inetd -l 127.0.0.1:PORT ipop3d -c "
      "CONF -s`, one process tree per connection (root monitor, unprivileged TLS worker, "
      "session as the user); login throttling and the failure delay off, empty "
      "hosts.allow/deny, log to a file.")
    w("- Dovecot: `dovecot -F` with the config in the appendix, only pop3, `ssl = required`, "
      "in two modes: *default* (a pop3-login process per connection, `service_count = 1`) "
      "and *high-performance* (`service_count = 0`, `process_min_avail = %s`: long-lived "
      "login processes that serve many connections). A pop3 process per session in both."
      % M["nproc"])
    w("- Server CPU: each server's launcher or master and all its descendants run in a "
      "cgroup of their own (%s); the counter is read when all the "
      "connection's processes have exited. The client's CPU is not counted; the client "
      "runs on the same %s CPUs." % (S.get("cgroup", "?"), M["nproc"]))
    w("- Client: a new TCP connection and full TLS handshake (no session resumption), "
      "USER/PASS, STAT, QUIT, then it waits until the server closes the connection; "
      "latency is that whole exchange. Mail store: ~/Maildir, messages in cur/ already "
      "marked seen (`:2,S`) so that no run renames files; every index or cache file a "
      "server writes stays between runs (both are measured cold and warm for UIDL).")
    w("")

    lg = R.get("logins", {})
    ip, dd, dh = lg.get("ipop3d-ecdsa"), lg.get("dovecot-default-ecdsa"), \
        lg.get("dovecot-hp-ecdsa")
    w("## 1. POP3S logins (connect, TLS, USER/PASS, STAT, QUIT), ECDSA P-256")
    w("")
    for key, title in (("seq", "%d sequential logins, one client" % N_LOGIN),
                       ("conc", "2 concurrent clients (one account each), %d logins in all"
                        % (2 * (N_LOGIN // 2)))):
        w("### " + title)
        w("")
        w("| | ipop3d | Dovecot default | ratio | Dovecot high-perf. | ratio |")
        w("|---|---:|---:|---:|---:|---:|")
        rows = (("logins per second", "rate", f1), ("server CPU per login, ms", "cpu_ms", f2),
                ("median latency, ms", "lat_med_ms", f1), ("95th pct. latency, ms",
                                                           "lat_p95_ms", f1),
                ("failed logins", "failed", str))
        for name, k, fmt in rows:
            def g(x):
                return x[key][k] if x and key in x else None
            a, b, c = g(ip), g(dd), g(dh)
            w("| %s | %s | %s | %s | %s | %s |" % (
                name, fmt(a) if a is not None else "-", fmt(b) if b is not None else "-",
                ratio(a, b) if k != "failed" else "", fmt(c) if c is not None else "-",
                ratio(a, c) if k != "failed" else ""))
        w("")
    for x, nm in ((ip, "ipop3d"), (dd, "Dovecot default"), (dh, "Dovecot high-perf.")):
        for key in ("seq", "conc"):
            if x and key in x and x[key]["errors"]:
                w("- %s failures (%s): %s" % (nm, key, "; ".join(x[key]["errors"])))
    if any(x and "phases_ms" in x.get("seq", {}) for x in (ip, dd, dh)):
        w("### Where a sequential login's latency goes (client side, median ms)")
        w("")
        w("| step | ipop3d | Dovecot default | Dovecot high-perf. |")
        w("|---|---:|---:|---:|")
        for name in pb.PHASES:
            cells = []
            for x in (ip, dd, dh):
                ph = x.get("seq", {}).get("phases_ms") if x else None
                cells.append(f1(ph[name]) if ph else "-")
            w("| %s | %s |" % ({"greeting": "greeting (after the handshake)",
                                "close": "server closes after QUIT"}.get(name, name),
                               " | ".join(cells)))
        w("")
        gi = ip.get("seq", {}).get("phases_ms", {}).get("greeting") if ip else None
        gd = dd.get("seq", {}).get("phases_ms", {}).get("greeting") if dd else None
        if gi is not None and gd is not None and gi > 20 and gd < 5:
            w("ipop3d's greeting reaches the client %.0f ms after the TLS handshake, "
              "Dovecot's after %.1f ms, while ipop3d spends no CPU in between: this is "
              "the stall of Nagle's algorithm against the client's delayed ACK (40 ms on "
              "Linux). The worker writes the greeting (after the TLS 1.3 session tickets) "
              "as a second small segment while the first is unacknowledged; TCP_NODELAY "
              "on the connection (or one write for both) removes the wait. The stall is in "
              "ipop3d's latencies, its sequential logins per second and its UIDL times, "
              "not in its CPU figures nor in the RETR throughput."
              % (gi, gd))
            w("")
    ir, dr = lg.get("ipop3d-rsa"), lg.get("dovecot-default-rsa")
    w("### RSA 3072 certificate, %d sequential logins" % N_LOGIN_RSA)
    w("")
    w("| | ipop3d | Dovecot default | ratio |")
    w("|---|---:|---:|---:|")
    for name, k, fmt in (("logins per second", "rate", f1),
                         ("server CPU per login, ms", "cpu_ms", f2),
                         ("median latency, ms", "lat_med_ms", f1),
                         ("failed logins", "failed", str)):
        a = ir["seq"][k] if ir else None
        b = dr["seq"][k] if dr else None
        w("| %s | %s | %s | %s |" % (name, fmt(a) if a is not None else "-",
                                     fmt(b) if b is not None else "-",
                                     ratio(a, b) if k != "failed" else ""))
    w("")

    U = R.get("uidl", {})
    ui, ud = U.get("ipop3d-ecdsa"), U.get("dovecot-default-ecdsa")
    w("## 2. UIDL on a 10,000-message Maildir (login + UIDL + QUIT)")
    w("")
    w("%d messages of %d bytes. *Cold*: the first session after the Maildir was made "
      "(Dovecot builds dovecot.index and dovecot-uidlist, ipop3d its size cache); *warm*: "
      "median of the next %d sessions." % (UIDL_MSGS, UIDL_MSG_SIZE, UIDL_RUNS))
    w("")
    w("| | ipop3d | Dovecot | ratio |")
    w("|---|---:|---:|---:|")
    for name, fn in (("cold: time, ms", lambda x: x["cold"]["s"] * 1000),
                     ("cold: server CPU, ms", lambda x: x["cold"]["cpu_s"] * 1000),
                     ("warm: time, ms", lambda x: x["warm_s"] * 1000),
                     ("warm: server CPU, ms", lambda x: x["warm_cpu_s"] * 1000)):
        a = fn(ui) if ui else None
        b = fn(ud) if ud else None
        w("| %s | %s | %s | %s |" % (name, f1(a) if a is not None else "-",
                                     f1(b) if b is not None else "-", ratio(a, b)))
    for x, nm in ((ui, "ipop3d"), (ud, "Dovecot")):
        if x and not x["lines_ok"]:
            w("\n- %s: the UIDL listing did not have %d lines in every run." % (nm, UIDL_MSGS))
    w("")

    w("## 3. RETR throughput over TLS")
    w("")
    w("One session: login, STAT, RETR of each message in turn (no pipelining), QUIT. "
      "Throughput is the bytes of the RETR responses (the messages in CRLF form, as "
      "sent) over the time from the first RETR to the end of the last; "
      "server CPU is that of the whole session, login included. Median of %d runs after "
      "one warm-up session." % BIG_RUNS)
    w("")
    w("| | ipop3d | Dovecot | ratio |")
    w("|---|---:|---:|---:|")
    for tag, desc in (("big", "1 x 50 MiB"), ("batch", "1000 x 10 KiB")):
        T = R.get("retr_" + tag, {})
        a, b = T.get("ipop3d-ecdsa"), T.get("dovecot-default-ecdsa")
        rows = [("%s: MiB/s" % desc, "mib_s", f1)]
        if tag == "batch":
            rows.append(("%s: messages/s" % desc, "msg_s", f1))
        rows += [("%s: server CPU per MiB, ms" % desc, "cpu_ms_per_mib", f2),
                 ("%s: server CPU of the session, ms" % desc, "cpu_s",
                  lambda v: f1(v * 1000))]
        for name, k, fmt in rows:
            va = a[k] if a else None
            vb = b[k] if b else None
            w("| %s | %s | %s | %s |" % (name, fmt(va) if va is not None else "-",
                                         fmt(vb) if vb is not None else "-", ratio(va, vb)))
    w("")

    w("## 4. Memory during the 50 MiB RETR")
    w("")
    w("Peak resident set (VmHWM from /proc, read after the RETR and before QUIT) of each "
      "process serving the connection, and the resident set of the processes the server "
      "keeps between connections.")
    w("")
    T = R.get("retr_big", {})
    w("| server | process | peak RSS, KiB |")
    w("|---|---|---:|")
    sums = {}
    for lab, nm in (("ipop3d-ecdsa", "ipop3d"), ("dovecot-default-ecdsa", "Dovecot")):
        x = T.get(lab)
        if not x or not x.get("mem"):
            w("| %s | (not measured) | |" % nm)
            continue
        conn = [p for p in x["mem"] if p["connection"]]
        base = [p for p in x["mem"] if not p["connection"]]
        for p in sorted(conn, key=lambda p: p["pid"]):
            w("| %s | %s (%s) | %d |" % (nm, p["role"], p["name"], p["hwm_kb"]))
        tot = sum(p["hwm_kb"] for p in conn)
        sums[nm] = tot
        w("| %s | **sum for the connection** | **%d** |" % (nm, tot))
        w("| %s | between connections: %s (current RSS) | %d |" % (
            nm, ", ".join(sorted(set(p["name"] for p in base))) or "-",
            sum(p["rss_kb"] for p in base)))
        if nm == "ipop3d" and x.get("log_maxrss_kb"):
            w("| %s | maxrss_kb in its logout log line | %s |"
              % (nm, ", ".join(map(str, x["log_maxrss_kb"]))))
    if R.get("ipop3d_login_maxrss_kb"):
        w("")
        w("For scale: ipop3d's logout line reports maxrss_kb = %d (median) for the "
          "sessions of section 1, which fetch nothing. The session is a fresh child of "
          "the monitor; PAM (and yescrypt's 16 MiB work area at Debian's cost, N = 4096, "
          "r = 32) ran in a short-lived child that has exited. The monitor (root) stays "
          "for the whole session: it holds the PAM session and, until login, the TLS "
          "context. Before the hand-off rework the session was the monitor after PAM "
          "(maxrss ~25 MB). "
          "Dovecot verifies in its long-lived auth worker, outside the connection's "
          "processes."
          % R["ipop3d_login_maxrss_kb"])
    if "ipop3d" in sums and "Dovecot" in sums:
        w("")
        w("Ratio of the sums for one connection, ipop3d / Dovecot: %s (a sum of peak RSS "
          "counts shared library pages once per process, for both servers alike)."
          % ratio(sums["ipop3d"], sums["Dovecot"]))
    w("")

    P = R.get("probes", {})
    w("## Where the time goes in an ipop3d login")
    w("")
    seq = ip["seq"] if ip else None
    if seq and P:
        tot = seq["cpu_ms"]
        ex = P["ipop3d_t"]["cpu_ms"]
        hs = P["handshake_ecdsa"]["cpu_ms"]
        yc = P["yescrypt"]["ms"]
        rest = tot - ex - hs - yc
        w("Server CPU of one sequential login, ECDSA P-256, split with separate "
          "measurements on this machine:")
        w("")
        w("| part | CPU, ms | share |")
        w("|---|---:|---:|")
        for name, v in (
                ("exec + dynamic linking + OpenSSL init + config + certificate/key load "
                 "(`ipop3d -t -c CONF`, mean of %d runs; `/bin/true` alone: %.2f ms)"
                 % (PROBE_N, P["true"]["cpu_ms"]), ex),
                ("one full TLS handshake, server side (`openssl s_server` under "
                 "`openssl s_time -new`, %d handshakes)" % P["handshake_ecdsa"]["n"], hs),
                ("one yescrypt verification of the account's hash (`%s`, crypt(3) in a "
                 "loop, median of 20)" % P["yescrypt"]["setting"], yc),
                ("the rest: the launcher's fork, the worker and session forks and their "
                 "page faults, privilege changes, loading the PAM modules, the session's "
                 "Maildir scan, POP3, logging; also yescrypt's extra cost in a fresh "
                 "process (its 16 MiB are faulted in anew each time)", rest)):
            w("| %s | %.2f | %.0f%% |" % (name, v, 100 * v / tot if tot else 0))
        w("| **total, measured** (section 1) | **%.2f** | 100%% |" % tot)
        w("")
        if dd:
            dt = dd["seq"]["cpu_ms"]
            w("For comparison, Dovecot (default mode) spends %.2f ms per login; the same "
              "handshake and yescrypt costs leave %.2f ms for its own work (master, login "
              "and pop3 processes, auth and auth-worker), against %.2f ms for ipop3d's "
              "exec, process tree and the rest." % (dt, dt - hs - yc, ex + rest))
            w("")
        if "handshake_rsa" in P:
            w("With RSA 3072 the server's handshake costs %.2f ms (ECDSA P-256: %.2f ms)."
              % (P["handshake_rsa"]["cpu_ms"], hs))
            w("")
    else:
        w("(not measured: ipop3d did not run)")
        w("")
    PR = R.get("profile")
    if PR:
        write_profile(w, PR, lg)
    if R.get("notes"):
        w("## Notes")
        w("")
        for n in R["notes"]:
            w("- " + n)
        w("")
    w("## Appendix: the configurations")
    w("")
    w("ipop3d (`-c CONF`):")
    w("")
    w("```ini")
    w(R.get("ipop3d_conf", "").rstrip())
    w("```")
    w("")
    w("Dovecot (default mode; high-performance mode replaces the last block's "
      "`service_count = 1` with `service_count = 0`, `process_min_avail = %s`, "
      "`vsz_limit = 1G`):" % M["nproc"])
    w("")
    w("```")
    w(R.get("dovecot_conf", "").rstrip())
    w("```")
    w("")
    text = "\n".join(L) + "\n"
    if R.get("tmp"):
        text = text.replace(R["tmp"], "$TMP")
    path.write_text(text)


# ---------------------------------------------------------------------------------------


def main():
    if os.geteuid() != 0:
        print("bench: run as root (make bench)", file=sys.stderr)
        return 1
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, _on_signal)
    signal.alarm(DEADLINE_S)
    t_start = time.monotonic()
    R = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip(),
         "machine": machine_info(), "setup": {}, "notes": [], "logins": {},
         "load_start": os.getloadavg()[0]}
    do_ipop3d = "ipop3d" in SERVERS
    if do_ipop3d and not os.access(IPOP3D, os.X_OK):
        raise RuntimeError("%s is missing: run `make all` first" % IPOP3D)

    tmp = Path(tempfile.mkdtemp(prefix="postern-bench."))
    CLEANUP.push("remove " + str(tmp), lambda: shutil.rmtree(tmp, ignore_errors=True))
    os.chmod(tmp, 0o755)
    R["tmp"] = str(tmp)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # --- accounts and system files ---
    if do_ipop3d:
        try:
            pwd.getpwnam("postern")
        except KeyError:
            log("making the postern user (tests/mkuser.sh)")
            env = dict(os.environ, POSTERN_STATE_DIR=str(tmp / "mkuser-state"))
            run(["sh", str(REPO / "tests" / "mkuser.sh")], env=env)

            def rm_postern():
                run(["userdel", "postern"], check=False)
                run(["groupdel", "postern"], check=False)
            CLEANUP.push("remove user postern", rm_postern)
        pam = Path("/etc/pam.d/pop3")
        if not pam.exists():
            log("installing pam.d/pop3 as /etc/pam.d/pop3")
            shutil.copyfile(REPO / "pam.d" / "pop3", pam)
            os.chmod(pam, 0o644)
            CLEANUP.push("remove /etc/pam.d/pop3", lambda: pam.unlink())
    creds = []
    for u in USERS:
        pw_, h, how = make_user(u)
        creds.append((u, pw_))
        R["setup"]["chpasswd"] = how
        R["setup"]["hash_setting"] = h.rsplit("$", 1)[0]
    uid_names = {pwd.getpwnam("postern").pw_uid: "worker (postern)"} if do_ipop3d else {}
    for u in USERS:
        uid_names[pwd.getpwnam(u).pw_uid] = "session (%s)" % u
    log("accounts %s ready (%s)" % (", ".join(USERS), R["setup"]["hash_setting"]))

    # --- certificates ---
    certs = {}
    for kt in ("ecdsa", "rsa"):
        d = tmp / ("tls-" + kt)
        run(["sh", str(REPO / "mkcert.sh"), "-d", str(d), "-t", kt, "localhost", "127.0.0.1"])
        os.chmod(d, 0o755)
        certs[kt] = d
    cafile = {kt: str(certs[kt] / "ca.crt") for kt in certs}

    # --- servers: each in a cgroup of its own ---
    def cg(label):
        return Cgroup("%s-%d" % (label, os.getpid()))
    cg_probe = cg("probe")
    R["setup"]["cgroup"] = ("cgroup v1 cpuacct, cpuacct.usage" if cg_probe.v == 1 else
                            "cgroup v2, usage_usec of cpu.stat")
    empty = tmp / "hosts.empty"
    empty.write_text("")
    os.chmod(empty, 0o644)

    def ipop3d_conf(kt):
        conf = tmp / ("ipop3d-%s.conf" % kt)
        text = ("[global]\n"
                "tls_cert = {d}/postern.crt\n"
                "tls_key = {d}/postern.key\n"
                "log = {t}/ipop3d.log\n"
                "state_dir = {t}/ipop3d-state\n"
                "hosts_allow = {e}\n"
                "hosts_deny = {e}\n"
                "min_uid = 1000\n"
                "login_fail_delay_ms = 0\n"
                "throttle_ip_max = 0\n"
                "throttle_net_max = 0\n"
                "throttle_user_max = 0\n").format(d=certs[kt], t=tmp, e=empty)
        conf.write_text(text)
        return conf, text

    if do_ipop3d:
        conf_ec, R["ipop3d_conf"] = ipop3d_conf("ecdsa")
        conf_rsa, _ = ipop3d_conf("rsa")
    make_maildir(USERS[0], LOGIN_MSGS, LOGIN_MSG_SIZE)
    make_maildir(USERS[1], LOGIN_MSGS, LOGIN_MSG_SIZE)

    def new_ipop3d(label, conf):
        return Ipop3d(label, cg(label), free_port(), conf, tmp / "ipop3d.log")

    def new_dovecot(label, kt, hp):
        return Dovecot(label, cg(label), free_port(), tmp, label.split("-", 1)[1],
                       certs[kt], hp)

    def start_all(servers, kt):
        for s in servers:
            s.start()
        ctx = pb.make_context(cafile[kt])
        for s in servers:
            try:
                R["setup"]["tls_" + s.kind] = list(pb.tls_info(s.port, ctx, *creds[0]))
            except Exception as e:
                raise RuntimeError("%s: a first login failed: %s (logs in %s)"
                                   % (s.label, e, ARTIFACTS))
        log("up: " + ", ".join("%s on 127.0.0.1:%d" % (s.label, s.port) for s in servers))

    main_servers = []
    if do_ipop3d:
        main_servers.append(new_ipop3d("ipop3d-ecdsa", conf_ec))
    dc = new_dovecot("dovecot-default-ecdsa", "ecdsa", hp=False)
    dh = new_dovecot("dovecot-hp-ecdsa", "ecdsa", hp=True)
    R["dovecot_conf"] = dc.conf.read_text()
    main_servers.append(dc)
    start_all(main_servers + [dh], "ecdsa")

    # 1. logins, ECDSA: ipop3d, Dovecot default and high-performance, taking turns
    log("1. logins (ECDSA P-256)")
    R["logins"].update(bench_logins(main_servers + [dh], cafile["ecdsa"], creds, N_LOGIN))
    dh.stop()
    if do_ipop3d:
        rss = ipop3d_maxrss(tmp / "ipop3d.log", 0)
        if rss:
            R["ipop3d_login_maxrss_kb"] = statistics.median(rss)
    # 2. UIDL
    log("2. UIDL on %d messages" % UIDL_MSGS)
    R["uidl"] = bench_uidl(main_servers, cafile["ecdsa"], *creds[0])
    # 3. RETR
    log("3. RETR 50 MiB and 1000 x 10 KiB")
    R["retr_big"] = bench_retr(main_servers, cafile["ecdsa"], *creds[0], "50 MiB",
                               1, BIG_SIZE, BIG_RUNS, uid_names, mem=True)
    R["retr_batch"] = bench_retr(main_servers, cafile["ecdsa"], *creds[0],
                                 "1000 x 10 KiB", BATCH_MSGS, BATCH_SIZE, BATCH_RUNS,
                                 uid_names)
    make_maildir(USERS[0], LOGIN_MSGS, LOGIN_MSG_SIZE)
    for s in main_servers:
        s.stop()

    # 1c. RSA
    log("1c. logins with RSA 3072")
    rsa_servers = []
    if do_ipop3d:
        rsa_servers.append(new_ipop3d("ipop3d-rsa", conf_rsa))
    rsa_servers.append(new_dovecot("dovecot-default-rsa", "rsa", hp=False))
    start_all(rsa_servers, "rsa")
    R["logins"].update(bench_logins(rsa_servers, cafile["rsa"], creds, N_LOGIN_RSA,
                                    concurrent=False))
    for s in rsa_servers:
        s.stop()

    # profiles of the logins (perf), when perf works here
    if perf_usable():
        log("profiles of %d logins under perf" % PROFILE_N)
        prof = []
        if do_ipop3d:
            p = new_ipop3d("ipop3d-prof", conf_ec)
            p.perf = Perf(tmp, "ipop3d")
            prof.append(p)
        p = new_dovecot("dovecot-default-prof", "ecdsa", hp=False)
        p.perf = Perf(tmp, "dovecot", comms=["dovecot", "pop3-login", "pop3", "auth",
                                             "anvil", "log", "config", "stats"])
        prof.append(p)
        start_all(prof, "ecdsa")
        try:
            R["profile"] = bench_profile(prof, cafile["ecdsa"], creds, PROFILE_N)
        except Exception as e:
            R["notes"].append("the perf profile failed: %s" % e)
            for p in prof:
                p.stop()
    else:
        R["notes"].append("perf is not usable here: no CPU profile of the logins")

    # where the time goes
    log("probes: exec + init, TLS handshake, yescrypt")
    P = {}
    if do_ipop3d:
        P["ipop3d_t"] = probe_exec(cg_probe, [str(IPOP3D), "-t", "-c", str(conf_ec)],
                                   PROBE_N)
        if P["ipop3d_t"]["exit"] != 0:
            R["notes"].append("`ipop3d -t` exited %d (its timing still counts the work "
                              "up to that point): %s" % (
                                  P["ipop3d_t"]["exit"],
                                  P["ipop3d_t"]["out"].strip().replace("\n", " / ")[:300]))
    P["true"] = probe_exec(cg_probe, ["/bin/true"], PROBE_N)
    P["handshake_ecdsa"] = probe_handshake(cg_probe, certs["ecdsa"])
    P["handshake_rsa"] = probe_handshake(cg_probe, certs["rsa"])
    P["yescrypt"] = probe_yescrypt(*creds[0])
    R["probes"] = P
    log("  ipop3d -t %.2f ms, /bin/true %.2f ms, handshake %.2f ms (RSA %.2f ms), "
        "yescrypt %.2f ms" % (P.get("ipop3d_t", {}).get("cpu_ms", float("nan")),
                              P["true"]["cpu_ms"], P["handshake_ecdsa"]["cpu_ms"],
                              P["handshake_rsa"]["cpu_ms"], P["yescrypt"]["ms"]))

    # keep the logs for a reader, then the report
    for src in [tmp / "ipop3d.log", tmp / "ipop3d.launcher.log"] + \
            [p for p in tmp.glob("dovecot-*/dovecot.log")]:
        if src.exists():
            name = src.name if src.parent == tmp else src.parent.name + ".log"
            shutil.copyfile(src, ARTIFACTS / name)
    R["notes"] += NOTES
    R["elapsed_s"] = time.monotonic() - t_start
    R["load"] = [R["load_start"], os.getloadavg()[0]]
    (ARTIFACTS / "results.json").write_text(json.dumps(R, indent=1, default=str))
    write_report(R, OUT)
    log("wrote %s (raw numbers and logs in %s)" % (OUT, ARTIFACTS))
    return 0


if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    except SystemExit as e:
        print(e, file=sys.stderr)
    except Exception as e:
        print("bench: error: %s" % e, file=sys.stderr)
        import traceback
        traceback.print_exc()
    finally:
        signal.alarm(0)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        CLEANUP.run()
    sys.exit(rc)
