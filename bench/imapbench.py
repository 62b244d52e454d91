#!/usr/bin/python3
"""bench/imapbench.py: imapd against Dovecot 2.3 (imap), side by side, in one run.

Run by bench/run.sh (`make bench`) as root after bench.py (the POP3 bench); writes the
section "imapd vs Dovecot" at the end of bench/RESULTS.md (replacing the one of an
earlier run), raw numbers in build/bench/imap-results.json.  Reuses bench.py's accounts
(the same throwaway PAM accounts, Debian's default yescrypt hash, checked through PAM by
both servers), certificates, cgroup CPU accounting and Dovecot configuration (with imap
in place of pop3).  Figures:
  - server CPU per IMAPS login (connect, TLS, LOGIN, LOGOUT), sequential and from 2
    concurrent clients; also for a third server, imapd with login_cache_ttl on, whose
    measured logins are all repeat logins served by the login cache;
  - login + SELECT + UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE) on a
    BIG-message mailbox, the first session after the mailbox was made (cold: the server
    builds its index and cache) and warm, Maildir and mbox;
  - UID SEARCH BODY on a 10,000-message folder (cold and warm);
  - UID FETCH 1:* BODY.PEEK[] of that folder over TLS: MB/s;
  - PSS of an idle logged-in session (all its processes, /proc/PID/smaps_rollup).
Server CPU: utime+stime of all the server's processes (a cgroup per server, as bench.py).

Knobs: QUICK=1 (10,000 and 2,000 messages, fewer logins), IMAP_BIG (100000),
IMAP_SMALL (10000), IMAP_LOGINS (200), IMAP_MBOX (1: also mbox), IMAP_PERF (a directory:
perf record -g the imapd operations into it), BENCH_OUT (bench/RESULTS.md),
IMAP_ONLY (comma list of: login,fetch,mbox,search,body,pss), IMAP_IMAPD (the imapd
binary, default imapd/imapd).
"""
import datetime
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402
import corpus  # noqa: E402
import pop3bench as pb  # noqa: E402

REPO = B.REPO
IMAPD = Path(os.environ.get("IMAP_IMAPD", str(REPO / "imapd" / "imapd")))
QUICK = os.environ.get("QUICK", "") not in ("", "0")
N_BIG = int(os.environ.get("IMAP_BIG", "10000" if QUICK else "100000"))
N_SMALL = int(os.environ.get("IMAP_SMALL", "2000" if QUICK else "10000"))
N_LOGIN = int(os.environ.get("IMAP_LOGINS", "40" if QUICK else "200"))
DO_MBOX = os.environ.get("IMAP_MBOX", "1") != "0"
ONLY = set(x for x in os.environ.get("IMAP_ONLY", "").split(",") if x)
PERF_DIR = os.environ.get("IMAP_PERF")
# the label of the imapd with login_cache_ttl on (login figures only)
IMAPD_CACHE = "imapd-cache"
WARM_RUNS = 3
PSS_SESSIONS = 10
FETCH_ITEMS = b"(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)"
SMALL_FOLDER = "bench10k"
MARK = "<!-- imap bench: written by bench/imapbench.py -->"
log = B.log


def want(x):
    return not ONLY or x in ONLY


# ---------------------------------------------------------------------------------------
# the client: a minimal IMAPS client that reads literals by their counts


class ImapError(Exception):
    pass


class Imap:
    def __init__(self, port, ctx, timeout=600.0):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self.buf = bytearray()
        self.pos = 0
        self.n = 0
        self.wire = 0

    def _fill(self):
        if self.pos > 1 << 20:
            del self.buf[:self.pos]
            self.pos = 0
        d = self.s.recv(1 << 18)
        if not d:
            raise EOFError("server closed the connection")
        self.wire += len(d)
        self.buf += d

    def line(self):
        while True:
            k = self.buf.find(b"\r\n", self.pos)
            if k >= 0:
                ln = bytes(self.buf[self.pos:k])
                self.pos = k + 2
                return ln
            self._fill()

    def take(self, n):
        while len(self.buf) - self.pos < n:
            self._fill()
        self.pos += n

    def greeting(self):
        ln = self.line()
        if not ln.startswith(b"* OK"):
            raise ImapError("greeting: %r" % ln[:200])

    def cmd(self, text, on_line=None):
        """Send a command; read to its tagged reply.  Returns the number of untagged
        responses (a literal's continuation counts with its line)."""
        self.n += 1
        tag = b"a%d" % self.n
        self.s.sendall(tag + b" " + text + b"\r\n")
        count = 0
        while True:
            ln = self.line()
            whole = ln
            while ln.endswith(b"}"):
                m = re.search(rb"\{(\d+)\}$", ln)
                if not m:
                    break
                self.take(int(m.group(1)))
                ln = self.line()
                whole += b"..." + ln
            if whole.startswith(tag + b" "):
                if not whole.startswith(tag + b" OK"):
                    raise ImapError("%s: %r" % (text.split(b" ")[0].decode(), whole[:300]))
                return count
            if whole.startswith(b"*"):
                count += 1
                if on_line:
                    on_line(whole)

    def login(self, user, password):
        self.cmd(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))

    def logout(self):
        self.cmd(b"LOGOUT")
        try:                       # until the server closes
            while True:
                self._fill()
        except (EOFError, OSError, ssl.SSLError):
            pass

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def login_once(port, ctx, user, password):
    t0 = time.perf_counter()
    c = None
    try:
        c = Imap(port, ctx, timeout=60)
        c.greeting()
        c.login(user, password)
        c.logout()
        return time.perf_counter() - t0, None
    except (OSError, ssl.SSLError, ImapError, EOFError) as e:
        return time.perf_counter() - t0, "%s: %s" % (type(e).__name__, e)
    finally:
        if c:
            c.close()


def login_loop(port, ctx, user, password, n):
    lat, errs = [], []
    for _ in range(n):
        dt, e = login_once(port, ctx, user, password)
        lat.append(dt)
        if e:
            errs.append(e)
    return lat, errs


def login_concurrent(port, cafile, creds, n_each):
    kids = []
    for user, password in creds:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(r)
                lat, errs = login_loop(port, pb.make_context(cafile), user, password, n_each)
                with os.fdopen(w, "wb") as f:
                    f.write(json.dumps({"lat": lat, "errors": errs}).encode())
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


def session(port, ctx, user, password, folder, command, hook=None):
    """login, SELECT folder, one command (timed), LOGOUT.  Returns a dict."""
    c = Imap(port, ctx)
    try:
        c.greeting()
        c.login(user, password)
        t0 = time.perf_counter()
        c.cmd(b"SELECT " + folder.encode())
        t1 = time.perf_counter()
        w0 = c.wire
        lines = []
        n = c.cmd(command, on_line=lines.append if b"SEARCH" in command else None)
        t2 = time.perf_counter()
        wire = c.wire - w0
        if hook:
            hook()
        c.logout()
    finally:
        c.close()
    hits = None
    for ln in lines:
        if ln.startswith(b"* SEARCH"):
            hits = len(ln.split()) - 2
    return {"select_s": t1 - t0, "cmd_s": t2 - t1, "s": t2 - t0, "responses": n,
            "wire": wire, "hits": hits}


# ---------------------------------------------------------------------------------------
# servers


class Imapd(B.Server):
    kind = "imapd"
    conn_names = ("imapd",)

    def __init__(self, label, cg, port, conf, logpath):
        super().__init__(label, cg, port)
        self.conf, self.logpath = conf, logpath

    def start(self):
        self._spawn(["systemd-socket-activate", "--accept", "--inetd",
                     "-l", "127.0.0.1:%d" % self.port, str(IMAPD), "-c", str(self.conf),
                     "-s"], self.logpath.with_suffix(".launcher.log"))


DOVECOT_IMAP_CONF = B.DOVECOT_CONF.replace("protocols = pop3", "protocols = imap") \
    .replace("service pop3-login", "service imap-login") \
    .replace("inet_listener pop3s", "inet_listener imaps") \
    .replace("inet_listener pop3 ", "inet_listener imap ") \
    .replace("mail_location = maildir:~/Maildir", "mail_location = {mail_location}")


class DovecotImap(B.Server):
    kind = "dovecot"
    conn_names = ("imap", "imap-login")

    def __init__(self, label, cg, port, tmp, tag, certdir, mail_location):
        super().__init__(label, cg, port)
        self.dir = tmp / ("dovecot-" + tag)
        self.dir.mkdir(mode=0o755)
        (self.dir / "state").mkdir(mode=0o755)
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(DOVECOT_IMAP_CONF.format(
            dir=self.dir, tag=tag, cert=certdir / "postern.crt",
            key=certdir / "postern.key", port=port, login_mode=B.LOGIN_DEFAULT,
            mail_location=mail_location))
        self.logpath = self.dir / "dovecot.log"

    def start(self):
        self._spawn(["dovecot", "-F", "-c", str(self.conf)], self.dir / "master.out")


# ---------------------------------------------------------------------------------------
# mail stores


def _own(p, pw, mode):
    os.chown(p, pw.pw_uid, pw.pw_gid)
    os.chmod(p, mode)


def make_maildir_folder(user, count, folder=None):
    """count corpus messages in ~/Maildir (folder None: INBOX) or ~/Maildir/.folder,
    in cur/ and already seen, so that no server renames files while reading."""
    pw = pwd.getpwnam(user)
    root = Path(pw.pw_dir) / "Maildir"
    md = root if folder is None else root / ("." + folder)
    if md.exists():
        shutil.rmtree(md)
    for d in ([root] if folder is None else []) + [md, md / "cur", md / "new", md / "tmp"]:
        d.mkdir(mode=0o700, exist_ok=True)
        _own(d, pw, 0o700)
    if folder is not None:
        (md / "maildirfolder").write_bytes(b"")
        _own(md / "maildirfolder", pw, 0o600)
    total = 0
    t_start = time.monotonic()
    for i in range(1, count + 1):
        data, t = corpus.message(i)
        p = md / "cur" / ("%d.M%06dP4242Q1.postern-bench,S=%d:2,S" % (t, i, len(data)))
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fchown(fd, pw.pw_uid, pw.pw_gid)
        finally:
            os.close(fd)
        os.utime(p, (t, t))
        total += len(data)
    log("  made %s: %d messages, %.0f MB, in %.0f s"
        % (md, count, total / 1e6, time.monotonic() - t_start))
    return md, total


def make_mbox(paths, user, count):
    """The same count corpus messages as an mbox (mboxo: body lines "From " quoted),
    written once and copied to each of paths (each server its own file: Dovecot may
    write its X-UID/X-IMAPbase headers into the file)."""
    pw = pwd.getpwnam(user)
    first = Path(paths[0])
    first.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    total = 0
    with open(first, "wb") as f:
        for i in range(1, count + 1):
            data, t = corpus.message(i)
            data = data.replace(b"\nFrom ", b"\n>From ")
            f.write(corpus.mbox_from_line(i, t) + data + b"\n")
            total += len(data)
    _own(first, pw, 0o600)
    for p in paths[1:]:
        Path(p).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(first, p)
        _own(p, pw, 0o600)
    for p in paths:
        d = Path(p).parent
        while str(d).startswith(pw.pw_dir) and d != Path(pw.pw_dir):
            _own(d, pw, 0o700)
            d = d.parent
    log("  made mbox %s: %d messages, %.0f MB" % (", ".join(map(str, paths)), count,
                                                   total / 1e6))
    return total


# ---------------------------------------------------------------------------------------
# measurements


def pss_of(pids):
    tot = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for ln in f:
                    if ln.startswith("Pss:"):
                        tot += int(ln.split()[1])
        except OSError:
            pass
    return tot


def conn_pids(srv):
    out = []
    for pid in srv.cg.pids():
        if pid in srv.base_pids:
            continue
        st = B.proc_status(pid)
        if st and st.get("Name") in srv.conn_names:
            out.append(pid)
    return out


class PerfA:
    """perf record -a -g around one operation (system-wide: the servers change uid
    before they exec; only the server's process names are reported)."""

    def __init__(self, path):
        self.path = path
        self.p = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "999", "-q", "-o",
                                   str(path)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(1.0)

    def watch(self, srv):
        """Note the server's pids while the operation runs (other imapd processes on
        the machine are not ours: the report keeps only these pids)."""
        self.pids = set()
        self.done = threading.Event()

        def loop():
            while not self.done.is_set():
                self.pids.update(srv.cg.pids())
                time.sleep(0.02)
        self.t = threading.Thread(target=loop, daemon=True)
        self.t.start()

    def stop(self):
        if getattr(self, "t", None):
            self.done.set()
            self.t.join()
            self.path.with_suffix(".pids").write_text(
                ",".join(str(p) for p in sorted(self.pids)) + "\n")
        self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(120)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def measured_session(srv, ctx, creds, folder, command, perf_name=None):
    perf = PerfA(Path(PERF_DIR) / (perf_name + ".perf.data")) \
        if PERF_DIR and perf_name and srv.kind == "imapd" else None
    if perf:
        perf.watch(srv)
    try:
        r, wall, cpu = B.measure(srv, lambda: session(srv.port, ctx, creds[0], creds[1],
                                                      folder, command))
    finally:
        if perf:
            perf.stop()
    r["cpu_s"] = cpu
    r["wall_s"] = wall
    return r


def bench_login(servers, cafile, creds, n):
    ctx = pb.make_context(cafile)
    res = {}
    for srv in servers:
        login_loop(srv.port, ctx, creds[0][0], creds[0][1], 5)
        login_concurrent(srv.port, cafile, creds[:2], 2)
        srv.baseline()
        res[srv.label] = {}
    rounds = 5
    for mode in ("seq", "conc"):
        per = max(1, n // rounds)
        tot = {s.label: {"n": 0, "cpu": 0.0, "wall": 0.0, "lat": [], "errs": []}
               for s in servers}
        for _ in range(rounds):
            for srv in servers:
                if mode == "seq":
                    fn = (lambda s=srv: login_loop(s.port, ctx, creds[0][0], creds[0][1],
                                                   per))
                    k = per
                else:
                    fn = (lambda s=srv: login_concurrent(s.port, cafile, creds[:2],
                                                         per // 2))
                    k = 2 * (per // 2)
                (lat, errs), wall, cpu = B.measure(srv, fn)
                t = tot[srv.label]
                t["n"] += k
                t["cpu"] += cpu
                t["wall"] += wall
                t["lat"] += lat
                t["errs"] += errs
        for srv in servers:
            t = tot[srv.label]
            r = {"n": t["n"], "failed": len(t["errs"]), "errors": sorted(set(t["errs"]))[:3],
                 "cpu_ms": t["cpu"] * 1000 / max(1, t["n"]),
                 "rate": (t["n"] - len(t["errs"])) / t["wall"],
                 "lat_med_ms": statistics.median(t["lat"]) * 1000}
            res[srv.label][mode] = r
            log("  %-18s login %-4s %6.2f ms CPU/login, %5.1f/s, %d failed"
                % (srv.label, mode, r["cpu_ms"], r["rate"], r["failed"]))
    return res


def bench_cold_warm(servers, ctx, creds, folder, command, name, check):
    """The first session on a fresh mailbox (cold), then WARM_RUNS more (warm)."""
    res = {}
    for srv in servers:
        srv.settle()
        r = measured_session(srv, ctx, creds, folder, command, name + "-cold")
        res[srv.label] = {"cold": r, "warm": []}
        log("  %-18s %s cold: %.2f s, %.2f s CPU, %d responses"
            % (srv.label, name, r["s"], r["cpu_s"], r["responses"]))
    for k in range(WARM_RUNS):
        for srv in servers:
            res[srv.label]["warm"].append(measured_session(
                srv, ctx, creds, folder, command, name + "-warm" if k == 0 else None))
    for srv in servers:
        x = res[srv.label]
        x["warm_s"] = statistics.median(r["s"] for r in x["warm"])
        x["warm_cpu_s"] = statistics.median(r["cpu_s"] for r in x["warm"])
        x["ok"] = all(check(r) for r in x["warm"] + [x["cold"]])
        log("  %-18s %s warm: %.2f s, %.2f s CPU%s" % (srv.label, name, x["warm_s"],
                                                      x["warm_cpu_s"],
                                                      "" if x["ok"] else "  [WRONG ANSWER]"))
    return res


def bench_body(servers, ctx, creds, folder, total_bytes):
    res = {}
    cmd = b"UID FETCH 1:* BODY.PEEK[]"
    for srv in servers:     # warm-up (index and sizes known)
        session(srv.port, ctx, creds[0], creds[1], folder, b"NOOP")
    for k in range(WARM_RUNS):
        for srv in servers:
            r = measured_session(srv, ctx, creds, folder, cmd,
                                 "body" if k == 0 else None)
            res.setdefault(srv.label, {"runs": []})["runs"].append(r)
    for srv in servers:
        x = res[srv.label]
        med = sorted(x["runs"], key=lambda r: r["cmd_s"])[len(x["runs"]) // 2]
        x["mb_s"] = total_bytes / 1e6 / med["cmd_s"]
        x["wire_mb"] = med["wire"] / 1e6
        x["cpu_s"] = statistics.median(r["cpu_s"] for r in x["runs"])
        x["cpu_ms_per_mb"] = x["cpu_s"] * 1000 / (total_bytes / 1e6)
        x["ok"] = all(r["wire"] >= total_bytes for r in x["runs"])
        log("  %-18s BODY[]: %.1f MB/s, %.1f ms CPU per MB%s"
            % (srv.label, x["mb_s"], x["cpu_ms_per_mb"], "" if x["ok"] else " [SHORT]"))
    return res


def bench_pss(servers, ctx, creds, folder):
    res = {}
    for srv in servers:
        srv.settle()
        srv.baseline()
        conns = []
        try:
            out = {}
            for k in range(PSS_SESSIONS):
                c = Imap(srv.port, ctx)
                conns.append(c)
                c.greeting()
                c.login(creds[0], creds[1])
                c.cmd(b"SELECT " + folder.encode())
                if k == 0:
                    time.sleep(0.5)
                    pids = conn_pids(srv)
                    out["one_kb"] = pss_of(pids)
                    out["one_detail"] = []
                    for pid in pids:
                        st = B.proc_status(pid) or {}
                        out["one_detail"].append(
                            {"name": st.get("Name"), "uid": st.get("Uid", "?").split()[0],
                             "pss_kb": pss_of([pid]), "rss_kb": B.kb(st.get("VmRSS"))})
                    out["one_procs"] = len(pids)
            time.sleep(0.5)
            pids = conn_pids(srv)
            out["ten_kb"] = pss_of(pids) / PSS_SESSIONS
            out["ten_procs"] = len(pids) / PSS_SESSIONS
        finally:
            for c in conns:
                try:
                    c.logout()
                except Exception:
                    pass
                c.close()
        res[srv.label] = out
        log("  %-18s PSS: 1 session %d kB (%s), of %d sessions %.0f kB each"
            % (srv.label, out["one_kb"], ", ".join(
                "%s uid %s %d kB" % (x["name"], x["uid"], x["pss_kb"])
                for x in out["one_detail"]), PSS_SESSIONS, out["ten_kb"]))
    return res


# ---------------------------------------------------------------------------------------
# report


def r2(a, b):
    return B.ratio(a, b)


def write_section(R, path):
    L = [MARK, ""]
    w = L.append
    ip, dc = "imapd", "dovecot"
    w("# imapd vs Dovecot (IMAP): benchmark results")
    w("")
    w("Written by `make bench` (bench/imapbench.py, message corpus bench/corpus.py) on %s, "
      "in %.0f s%s. imapd %s, Dovecot %s (Debian package dovecot-imapd). Same machine, "
      "accounts, password hash, PAM, certificate (ECDSA P-256) and cgroup CPU accounting "
      "as the POP3 bench above; Dovecot in its default mode (`service_count = 1`), the "
      "configuration of the POP3 bench with `protocols = imap`. Load average %.2f at the "
      "start, %.2f at the end (a shared machine: read ratios, with some %% of noise)."
      % (R["date"], R["seconds"], " (QUICK=1)" if QUICK else "", R["imapd_rev"],
         R["dovecot"], R["load_start"], R["load_end"]))
    w("")
    w("**ratio** = imapd / Dovecot: above 1 means imapd uses more CPU, time or memory "
      "(for MB/s: is faster). Server CPU = utime+stime of all the server's processes "
      "(its cgroup), login included where a figure is per session.")
    w("")
    w("| figure | imapd | Dovecot | ratio |")
    w("|---|---:|---:|---:|")

    def row(name, a, b, fmt="%.2f"):
        if a is None or b is None:
            return
        w("| %s | %s | %s | %s |" % (name, fmt % a, fmt % b, r2(a, b)))
    lg = R.get("login")
    if lg:
        for mode, nm in (("seq", "sequential"), ("conc", "2 concurrent clients")):
            row("IMAPS login (TLS, LOGIN, LOGOUT), %s: server CPU per login, ms" % nm,
                lg[ip][mode]["cpu_ms"], lg[dc][mode]["cpu_ms"])
            row("  logins per second, %s" % nm, lg[ip][mode]["rate"], lg[dc][mode]["rate"],
                "%.1f")
            if IMAPD_CACHE in lg:
                row("IMAPS repeat login, cache on (`login_cache_ttl`), %s: server CPU per "
                    "login, ms" % nm, lg[IMAPD_CACHE][mode]["cpu_ms"], lg[dc][mode]["cpu_ms"])
                row("  logins per second, repeat login, cache on, %s" % nm,
                    lg[IMAPD_CACHE][mode]["rate"], lg[dc][mode]["rate"], "%.1f")
    for key, store in (("fetch", "Maildir"), ("fetch_mbox", "mbox")):
        f = R.get(key)
        if not f:
            continue
        n = R["n_big"]
        for phase in ("cold", "warm"):
            a = f[ip]["cold"] if phase == "cold" else None
            b = f[dc]["cold"] if phase == "cold" else None
            if phase == "cold":
                row("SELECT + UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE), "
                    "%s, %d msgs, cold: server CPU, s" % (store, n), a["cpu_s"], b["cpu_s"])
                row("  ... cold: time, s", a["s"], b["s"])
            else:
                row("  ... warm (median of %d): server CPU, s" % WARM_RUNS,
                    f[ip]["warm_cpu_s"], f[dc]["warm_cpu_s"])
                row("  ... warm: time, s", f[ip]["warm_s"], f[dc]["warm_s"])
    s = R.get("search")
    if s:
        row("UID SEARCH BODY on %d msgs, cold (first session): server CPU, s"
            % R["n_small"], s[ip]["cold"]["cpu_s"], s[dc]["cold"]["cpu_s"])
        row("  ... warm (median of %d): server CPU, s" % WARM_RUNS, s[ip]["warm_cpu_s"],
            s[dc]["warm_cpu_s"])
        row("  ... warm: time, s", s[ip]["warm_s"], s[dc]["warm_s"])
    b = R.get("body")
    if b:
        row("UID FETCH 1:* BODY.PEEK[] of %d msgs (%.0f MB) over TLS: MB/s"
            % (R["n_small"], R["small_bytes"] / 1e6), b[ip]["mb_s"], b[dc]["mb_s"], "%.1f")
        row("  server CPU per MB, ms", b[ip]["cpu_ms_per_mb"], b[dc]["cpu_ms_per_mb"])
    p = R.get("pss")
    if p:
        row("PSS of one idle logged-in session (folder of %d selected), kB" % R["n_small"],
            p[ip]["one_kb"], p[dc]["one_kb"], "%.0f")
        row("  PSS per session with %d idle sessions open, kB" % PSS_SESSIONS,
            p[ip]["ten_kb"], p[dc]["ten_kb"], "%.0f")
        row("  processes per session", p[ip]["one_procs"], p[dc]["one_procs"], "%.0f")
        for lab, nm in ((ip, "imapd"), (dc, "Dovecot")):
            R["checks"].append("PSS of one session, %s: %s" % (nm, ", ".join(
                "%s (uid %s) %d kB" % (x["name"], x["uid"], x["pss_kb"])
                for x in p[lab].get("one_detail", []))))
    w("")
    w("Checks and details: %s." % "; ".join(R["checks"]))
    w("")
    w("Method:")
    w("")
    w("- Corpus (bench/corpus.py, deterministic): sizes log-uniform over 2-50 KB "
      "(mean %.1f KB); Received chains, display names (some RFC 2047), Cc, "
      "In-Reply-To/References, List-Id; 45%% text/plain (some quoted-printable), 25%% "
      "multipart/alternative, 30%% multipart/mixed with a base64 attachment (some with "
      "an alternative part inside). Maildir: INBOX (%d messages) and the folder %s (%d) "
      "in cur/, already \\Seen, so no server renames a file; mbox: the same %d messages, "
      "each server its own copy of the file." % (R.get("mean_kb", 0), R["n_big"],
                                                  SMALL_FOLDER, R["n_small"], R["n_big"]))
    w("- Cold = the first session after the mailbox was written: each server builds its "
      "index (imapd: postern-index*, Dovecot: dovecot.index*, dovecot-uidlist) and reads "
      "every message's header; the files are in the page cache (just written) for both. "
      "Warm = the median of the next %d sessions. Each session: a new IMAPS connection, "
      "LOGIN, SELECT, the command, LOGOUT; the time is from SELECT to the tagged OK of "
      "the command." % WARM_RUNS)
    w("- SEARCH: `UID SEARCH BODY %s` (the word is in every %dth message's text part; "
      "both servers must find the same count). Dovecot has no full-text index here "
      "(none is configured by default)." % (corpus.NEEDLE, corpus.NEEDLE_EVERY))
    w("- BODY[]: `UID FETCH 1:* BODY.PEEK[]` of the %s folder, one command; MB/s = "
      "message bytes (as on disk) / time from the command to its OK, median of %d."
      % (SMALL_FOLDER, WARM_RUNS))
    w("- PSS: the sum of Pss in /proc/PID/smaps_rollup over the processes that serve the "
      "connection (imapd: its monitor, TLS worker and session; Dovecot: its imap-login, "
      "which relays TLS, and imap), measured after LOGIN + SELECT, the session idle.")
    w("")
    prof = REPO / "bench" / "IMAP-PROFILE.md"
    if prof.exists():    # the analysis of the profiles, written by hand (see there)
        w(prof.read_text().rstrip("\n"))
        w("")
    text = "\n".join(L) + "\n"
    old = path.read_text() if path.exists() else ""
    k = old.find(MARK)
    if k >= 0:
        old = old[:k]
    path.write_text(old.rstrip("\n") + ("\n\n" if old else "") + text)


def main():
    if os.geteuid() != 0:
        print("imapbench: run as root (make bench)", file=sys.stderr)
        return 1
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, B._on_signal)
    signal.alarm(30 * 60)
    if not os.access(IMAPD, os.X_OK):
        raise RuntimeError("%s is missing: run `make all` first" % IMAPD)
    t_start = time.monotonic()
    R = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M").strip(),
         "load_start": os.getloadavg()[0], "n_big": N_BIG, "n_small": N_SMALL,
         "checks": [], "dovecot": B.cmd_out(["dovecot", "--version"]),
         "imapd_rev": B.machine_info()["ipop3d"]}
    tmp = Path(tempfile.mkdtemp(prefix="postern-imapbench."))
    B.CLEANUP.push("remove " + str(tmp), lambda: shutil.rmtree(tmp, ignore_errors=True))
    os.chmod(tmp, 0o755)
    B.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if PERF_DIR:
        Path(PERF_DIR).mkdir(parents=True, exist_ok=True)
    try:
        try:
            pwd.getpwnam("postern")
        except KeyError:
            env = dict(os.environ, POSTERN_STATE_DIR=str(tmp / "mkuser-state"))
            B.run(["sh", str(REPO / "tests" / "mkuser.sh")], env=env)

            def rm_postern():
                B.run(["userdel", "postern"], check=False)
                B.run(["groupdel", "postern"], check=False)
            B.CLEANUP.push("remove user postern", rm_postern)
        pam = Path("/etc/pam.d/imap")
        if not pam.exists():
            shutil.copyfile(REPO / "pam.d" / "imap", pam)
            os.chmod(pam, 0o644)
            B.CLEANUP.push("remove /etc/pam.d/imap", lambda: pam.unlink())
        creds = []
        for u in B.USERS:
            pw_, h, how = B.make_user(u)
            creds.append((u, pw_))
        d = tmp / "tls"
        B.run(["sh", str(REPO / "mkcert.sh"), "-d", str(d), "-t", "ecdsa", "localhost",
               "127.0.0.1"])
        os.chmod(d, 0o755)
        cafile = str(d / "ca.crt")
        ctx = pb.make_context(cafile)
        empty = tmp / "hosts.empty"
        empty.write_text("")
        os.chmod(empty, 0o644)

        def imapd_conf(name, location, extra=""):
            conf = tmp / (name + ".conf")
            conf.write_text(
                "[global]\ntls_cert = {d}/postern.crt\ntls_key = {d}/postern.key\n"
                "log = {t}/{n}.log\nstate_dir = {t}/{n}-state\nhosts_allow = {e}\n"
                "hosts_deny = {e}\nmin_uid = 1000\nlogin_fail_delay_ms = 0\n"
                "throttle_ip_max = 0\nthrottle_net_max = 0\nthrottle_user_max = 0\n"
                "mail_location = {loc}\n{x}".format(d=d, t=tmp, e=empty, n=name, loc=location,
                                                   x=extra))
            return conf

        def cg(label):
            return B.Cgroup("%s-%d" % (label, os.getpid()))

        def pair(tag, imapd_loc, dovecot_loc):
            a = Imapd("imapd", cg("imapd-" + tag), B.free_port(),
                      imapd_conf("imapd-" + tag, imapd_loc), tmp / ("imapd-%s.log" % tag))
            b = DovecotImap("dovecot", cg("dovecot-" + tag), B.free_port(), tmp,
                            "imap-" + tag, d, dovecot_loc)
            for s in (a, b):
                s.start()
            return [a, b]

        # --- Maildir: logins (on a small INBOX), then the big INBOX, the 10k folder
        for u in B.USERS:
            make_maildir_folder(u, 10)
        servers = pair("maildir", "maildir:~/Maildir", "maildir:~/Maildir")
        for s in servers:
            B.measure(s, lambda s=s: login_once(s.port, ctx, *creds[0]))
            s.baseline()
        if want("login"):
            # a third server for the login figures only: imapd with the login cache on
            # (login_cache_ttl), warmed up like the others, so every measured login is a
            # repeat login that the cache serves (pam_acct_mgmt still runs)
            cached = Imapd(IMAPD_CACHE, cg("imapd-cache"), B.free_port(),
                           imapd_conf("imapd-cache", "maildir:~/Maildir",
                                      "login_cache_ttl = 3600\n"),
                           tmp / "imapd-cache.log")
            cached.start()
            B.measure(cached, lambda: login_once(cached.port, ctx, *creds[0]))
            cached.baseline()
            R["login"] = bench_login(servers + [cached], cafile, creds, N_LOGIN)
            cached.stop()
        if want("search") or want("body") or want("pss"):
            _, R["small_bytes"] = make_maildir_folder(creds[0][0], N_SMALL, SMALL_FOLDER)
        if want("search"):
            expect = N_SMALL // corpus.NEEDLE_EVERY
            R["search"] = bench_cold_warm(
                servers, ctx, creds[0], SMALL_FOLDER,
                b"UID SEARCH BODY " + corpus.NEEDLE.encode(), "search",
                lambda r: r["hits"] == expect)
            R["checks"].append("SEARCH found %d of %d expected (imapd), %d (Dovecot)" % (
                R["search"]["imapd"]["cold"]["hits"] or 0, expect,
                R["search"]["dovecot"]["cold"]["hits"] or 0))
        if want("body"):
            R["body"] = bench_body(servers, ctx, creds[0], SMALL_FOLDER, R["small_bytes"])
        if want("pss"):
            R["pss"] = bench_pss(servers, ctx, creds[0], SMALL_FOLDER)
        if want("fetch"):
            _, big = make_maildir_folder(creds[0][0], N_BIG)
            R["mean_kb"] = big / N_BIG / 1024
            R["fetch"] = bench_cold_warm(servers, ctx, creds[0], "INBOX",
                                         b"UID FETCH 1:* " + FETCH_ITEMS, "fetch",
                                         lambda r: r["responses"] >= N_BIG)
            R["checks"].append("UID FETCH returned %d responses for %d messages (imapd), "
                               "%d (Dovecot)" % (R["fetch"]["imapd"]["cold"]["responses"],
                                                 N_BIG,
                                                 R["fetch"]["dovecot"]["cold"]["responses"]))
        for s in servers:
            s.stop()
        if DO_MBOX and want("mbox"):
            home = Path(pwd.getpwnam(creds[0][0]).pw_dir)
            make_mbox([home / "imbox" / "inbox", home / "dcmail" / "inbox"], creds[0][0],
                      N_BIG)
            servers = pair("mbox", "mbox:~/imbox/inbox", "mbox:~/dcmail:INBOX=~/dcmail/inbox")
            for s in servers:
                s.baseline()
            R["fetch_mbox"] = bench_cold_warm(servers, ctx, creds[0], "INBOX",
                                              b"UID FETCH 1:* " + FETCH_ITEMS, "fetch-mbox",
                                              lambda r: r["responses"] >= N_BIG)
            for s in servers:
                s.stop()
        R["seconds"] = time.monotonic() - t_start
        R["load_end"] = os.getloadavg()[0]
        (B.ARTIFACTS / "imap-results.json").write_text(json.dumps(R, indent=1, default=str))
        write_section(R, B.OUT)
        log("wrote %s" % B.OUT)
    finally:
        for f in tmp.glob("*.log"):
            try:
                shutil.copyfile(f, B.ARTIFACTS / f.name)
            except OSError:
                pass
        B.CLEANUP.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
