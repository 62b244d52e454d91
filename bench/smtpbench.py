#!/usr/bin/python3
"""bench/smtpbench.py: smtp-submit against Postfix 3.7 (submission), side by side, in one run.

Run by bench/run.sh (`make bench`, or only this part: `make bench BENCH=smtp`) as root;
writes the section "smtp-submit vs Postfix" at the end of bench/RESULTS.md (replacing the
one of an earlier run), raw numbers in build/bench/smtp-results.json.

Both servers get the same: the throwaway PAM accounts of bench.py (Debian's default
yescrypt hash; both check them through the PAM service `smtp`, i.e. pam_unix), the same
ECDSA P-256 certificate, STARTTLS on a submission port (127.0.0.1, a free high port),
AUTH PLAIN after TLS only, delivery into ~/Maildir of the recipient (tmp, fsync, new).
  - smtp-submit: `smtp-submit -m submission` under `systemd-socket-activate --accept
    --inetd` (one process tree per connection, as inetd or a systemd socket unit runs it);
    the spool in a temporary spool_dir; delivery started right after the 250.
  - Postfix: the Debian package, run from a private config_directory (`postfix -c DIR
    start-fg`) with its own queue_directory, data_directory and log file, a submission
    smtpd on the loopback port (smtpd_tls_security_level=encrypt, smtpd_tls_auth_only,
    permit_sasl_authenticated), local(8) delivery with home_mailbox = Maildir/; nothing on
    port 25, no /etc/postfix/main.cf read or written; stopped at the end.  Its SASL is
    Dovecot's auth (smtpd_sasl_type = dovecot, as Debian documents it), a private Dovecot
    instance (own base_dir, no protocols, only an auth socket) with passdb pam (service
    smtp): the same password check as smtp-submit.  That Dovecot runs in Postfix's cgroup:
    its CPU is Postfix's cost of AUTH.
Figures (16 concurrent senders, each its own process with an authenticated connection
that sends 50 messages one after the other before it opens the next, so that the message
figures are mostly the cost of messages and the login figure is the cost of logins;
SMTP_PER_CONN=1 gives a mail client's one message per connection instead):
  - messages per second for 4 KB and 1 MB messages, measured from the start of the
    senders to the moment the last message's file is in the recipient's Maildir/new
    (polled every 5 ms);
  - server CPU per message (all the server's processes: see below);
  - server CPU per STARTTLS+AUTH login (a connection each: EHLO, STARTTLS, EHLO, AUTH
    PLAIN, QUIT); a message on a connection of its own costs about the sum of the two.
Server CPU: each server runs in a cgroup of its own (cgroup v1 cpuacct.usage, or cgroup v2
cpu.stat usage_usec: bench.Cgroup), so the CPU of every process it starts (launcher,
master, each connection's processes, delivery, queue managers, Dovecot's auth for
Postfix) and none of the client's is counted; CPU that runs after the last file appears
(Postfix's qmgr removing the queue file) is counted too, as the counter is read when the
server is idle again.  The client's own CPU is reported beside it (getrusage of the
sender processes).

Knobs: QUICK=1 (small counts), SMTP_SMALL (4000 4 KB messages), SMTP_BIG (480 1 MB
messages), SMTP_LOGINS (400), SMTP_SENDERS (16), SMTP_PER_CONN (50 messages per
connection, then a new one; 0: no limit), SMTP_ROUNDS (2: each figure is measured
in rounds that take turns between the servers), SMTP_SUBMIT (the smtp-submit binary,
default smtp-submit/smtp-submit), SMTP_SERVERS ("smtp-submit postfix"), SMTP_PERF=0 (no
perf profile), SMTP_STRACE=0 (no strace counts), SMTP_REPORT_ONLY=1 (write the section
again from build/bench/smtp-results.json, e.g. after editing bench/SMTP-PROFILE.md),
BENCH_OUT.
"""
import datetime
import json
import os
import pwd
import re
import resource
import shutil
import signal
import smtplib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from email.utils import formatdate, make_msgid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402
import pop3bench as pb  # noqa: E402

REPO = B.REPO
SUBMIT = Path(os.environ.get("SMTP_SUBMIT", str(REPO / "smtp-submit" / "smtp-submit")))
QUICK = os.environ.get("QUICK", "") not in ("", "0")
SENDERS = int(os.environ.get("SMTP_SENDERS", "16"))
N_SMALL = int(os.environ.get("SMTP_SMALL", "320" if QUICK else "4000"))
N_BIG = int(os.environ.get("SMTP_BIG", "64" if QUICK else "480"))
N_LOGIN = int(os.environ.get("SMTP_LOGINS", "160" if QUICK else "400"))
ROUNDS = int(os.environ.get("SMTP_ROUNDS", "2"))
SERVERS = os.environ.get("SMTP_SERVERS", "smtp-submit postfix").split()
# smtp-submit's monitor starts deliveries for at most DELIVER_MAX_PER_CONN (100) messages
# of one connection and leaves the rest to the queue runner (-q, from a timer): 50 per
# connection keeps every message on the immediate path, for both servers.
PER_CONN = int(os.environ.get("SMTP_PER_CONN", "50"))
STRACE = os.environ.get("SMTP_STRACE", "1") != "0"
PERF = os.environ.get("SMTP_PERF", "1") != "0"
N_PERF = int(os.environ.get("SMTP_PERF_N", "320" if QUICK else "1600"))
SMALL, BIG = 4096, 1048576
DOMAIN = "localhost"
DELIVERY_TIMEOUT = 600
STALL_S = 60
MARK = "<!-- smtp bench: written by bench/smtpbench.py -->"
log = B.log


# ---------------------------------------------------------------------------------------
# messages and the client


def make_message(sender, rcpt, size, serial):
    """A plain text message of exactly size bytes (CRLF lines), From: the sender (the
    logged-in user: smtp-submit checks the header From: on submission)."""
    hdr = ("From: Bench Sender <{s}>\r\nTo: <{r}>\r\nSubject: smtp bench {n}\r\n"
           "Date: {d}\r\nMessage-ID: {m}\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\n\r\n").format(
               s=sender, r=rcpt, n=serial, d=formatdate(localtime=False),
               m=make_msgid(domain="bench.invalid"))
    line = ("The quick brown fox jumps over the lazy dog %06d. " % serial) * 2
    line = line[:74] + "\r\n"
    body = []
    left = size - len(hdr)
    while left > len(line):
        body.append(line)
        left -= len(line)
    body.append("x" * max(0, left - 2) + "\r\n")
    data = (hdr + "".join(body)).encode()
    return data[:size] if len(data) > size else data


class Sender:
    """A client connection: EHLO, STARTTLS, EHLO, AUTH PLAIN (initial response); then
    messages on it (MAIL, RCPT, DATA each), up to PER_CONN (0: no limit) before a new
    connection; QUIT at the end."""

    def __init__(self, port, ctx):
        self.port, self.ctx = port, ctx
        self.s = None
        self.user = None
        self.count = 0

    def connect(self, user, password):
        s = smtplib.SMTP("127.0.0.1", self.port, local_hostname="bench.client.invalid",
                         timeout=120)
        try:
            s.starttls(context=self.ctx)
            s.login(user, password)
        except BaseException:
            s.close()
            raise
        self.s, self.user, self.count = s, user, 0

    def close(self, polite=True):
        if self.s is None:
            return
        try:
            if polite:
                self.s.quit()
        except (OSError, smtplib.SMTPException, ssl.SSLError):
            pass
        finally:
            self.s.close()
            self.s = None

    def login_once(self, user, password):
        self.connect(user, password)
        self.close()

    def send(self, user, password, msg, sender, rcpt):
        if self.s is None or self.user != user or (PER_CONN and self.count >= PER_CONN):
            self.close()
            self.connect(user, password)
        try:
            self.s.sendmail(sender, [rcpt], msg)
        except BaseException:
            self.close(polite=False)
            raise
        self.count += 1


def _child(port, cafile, jobs, go_r, out_w):
    """A sender process: waits for the start signal, then runs its jobs one after the
    other (a job without a message: one login, a connection of its own); writes its
    latencies (per message: MAIL to the 250 after DATA, plus the login when it opened a
    connection; per login: connect to QUIT), errors and own CPU to out_w as JSON."""
    lat, errs = [], []
    try:
        ctx = pb.make_context(cafile)
        c = Sender(port, ctx)
        os.read(go_r, 1)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for job in jobs:
            t0 = time.perf_counter()
            try:
                if len(job) == 2:
                    c.login_once(*job)
                else:
                    c.send(*job)
            except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
                errs.append("%s: %s" % (type(e).__name__, str(e)[:200]))
            lat.append(time.perf_counter() - t0)
        c.close()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        data = json.dumps({"lat": lat, "errors": errs, "cpu": cpu}).encode()
        with os.fdopen(out_w, "wb") as f:
            f.write(data)
        os._exit(0)
    except BaseException:
        os._exit(1)


class Load:
    """SENDERS forked processes, each with its share of the jobs, started together."""

    def __init__(self, port, cafile, jobs):
        self.kids = []
        go_r, go_w = os.pipe()
        for k in range(SENDERS):
            mine = jobs[k::SENDERS]
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                os.close(go_w)
                _child(port, cafile, mine, go_r, w)
            os.close(w)
            self.kids.append((pid, r))
        os.close(go_r)
        self.go_w = go_w

    def start(self):
        os.write(self.go_w, b"x" * SENDERS)
        os.close(self.go_w)

    def collect(self):
        lat, errs, cpu = [], [], 0.0
        for pid, r in self.kids:
            with os.fdopen(r, "rb") as f:
                data = f.read()
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            if data:
                d = json.loads(data)
                lat += d["lat"]
                errs += d["errors"]
                cpu += d["cpu"]
            else:
                errs.append("a sender process failed")
        return lat, errs, cpu


# ---------------------------------------------------------------------------------------
# Maildirs


def maildir_prepare(users):
    """An empty ~/Maildir (cur, new, tmp) for each user, owned by the user."""
    for u in users:
        pw = pwd.getpwnam(u)
        md = Path(pw.pw_dir) / "Maildir"
        if md.exists():
            shutil.rmtree(md)
        for d in (md, md / "cur", md / "new", md / "tmp"):
            d.mkdir(mode=0o700)
            os.chown(d, pw.pw_uid, pw.pw_gid)


def maildir_new(users):
    return [Path(pwd.getpwnam(u).pw_dir) / "Maildir" / "new" for u in users]


def count_new(dirs):
    n = 0
    for d in dirs:
        try:
            n += len(os.listdir(d))
        except FileNotFoundError:
            pass
    return n


def maildir_check(dirs, size):
    """(files, files of at least size bytes) in the new/ dirs.  size: the message with
    LF line ends (both servers store it so, and add Return-Path, Received, ...)."""
    n = ok = 0
    for d in dirs:
        for e in os.scandir(d):
            n += 1
            if e.stat().st_size >= size:
                ok += 1
    return n, ok


def maildir_empty(dirs):
    for d in dirs:
        for sub in ("new", "cur", "tmp"):
            p = d.parent / sub
            for e in os.scandir(p):
                os.unlink(e.path)


# ---------------------------------------------------------------------------------------
# servers


class Submit(B.Server):
    kind = "smtp-submit"
    conn_names = ("smtp-submit",)

    def __init__(self, label, cg, port, conf, logpath):
        super().__init__(label, cg, port)
        self.conf, self.logpath = conf, logpath

    def start(self):
        self._spawn(["systemd-socket-activate", "--accept", "--inetd",
                     "-l", "127.0.0.1:%d" % self.port, str(SUBMIT), "-m", "submission",
                     "-c", str(self.conf)], self.logpath.with_suffix(".launcher.log"))


POSTFIX_MAIN = """\
# Written by postern's bench/smtpbench.py for one benchmark run; not the system's Postfix.
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {dir}
maillog_file = {dir}/postfix.log
myhostname = {domain}
mydomain = {domain}
myorigin = {domain}
mydestination = {domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
home_mailbox = Maildir/
biff = no
append_dot_mydomain = no
message_size_limit = 52428800
mailbox_size_limit = 0
smtpd_banner = $myhostname ESMTP
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_protocols = >=TLSv1.2
smtpd_sasl_type = dovecot
smtpd_sasl_path = {sasl}
smtpd_sasl_auth_enable = no
"""

POSTFIX_MASTER = """\
# Written by postern's bench/smtpbench.py: Postfix's default services, chroot off
# (upstream's default), and only one listener: submission on the loopback port.
127.0.0.1:{port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

DOVECOT_AUTH = """\
# Written by postern's bench/smtpbench.py: Dovecot as Postfix's SASL server only.
protocols =
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = postern-bench-postfix-auth
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1000
passdb {{
  driver = pam
  args = smtp
}}
userdb {{
  driver = passwd
}}
service auth {{
  unix_listener {sasl} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""


class Postfix(B.Server):
    kind = "postfix"
    conn_names = ()     # its daemons stay: nothing to wait for between runs

    def __init__(self, label, cg, port, tmp, certdir):
        super().__init__(label, cg, port)
        self.dir = tmp / "postfix"
        for d in ("", "etc", "queue", "dovecot", "dovecot/state"):
            (self.dir / d).mkdir(mode=0o755, exist_ok=True)
        self.etc = self.dir / "etc"
        sasl = self.dir / "dovecot" / "auth-postfix"
        (self.etc / "main.cf").write_text(POSTFIX_MAIN.format(
            dir=self.dir, domain=DOMAIN, cert=certdir / "postern.crt",
            key=certdir / "postern.key", sasl=sasl))
        (self.etc / "master.cf").write_text(POSTFIX_MASTER.format(port=port))
        self.dconf = self.dir / "dovecot" / "dovecot.conf"
        self.dconf.write_text(DOVECOT_AUTH.format(dir=self.dir / "dovecot", sasl=sasl))
        self.sasl = sasl
        self.logpath = self.dir / "postfix.log"
        self.auth = None

    def start(self):
        # Dovecot's auth first (in the same cgroup), then Postfix's master in the
        # foreground (postfix-script start-fg: master -s, a child of this process).
        logf = open(self.dir / "dovecot" / "master.out", "ab")
        self.auth = subprocess.Popen(["dovecot", "-F", "-c", str(self.dconf)],
                                     stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, preexec_fn=self.cg.enter,
                                     start_new_session=True)
        logf.close()
        B.CLEANUP.push("stop Dovecot auth", self.stop_auth)
        deadline = time.monotonic() + 15
        while not self.sasl.exists():
            if self.auth.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Dovecot auth for Postfix did not start; see %s"
                                   % (self.dir / "dovecot"))
            time.sleep(0.05)
        B.run(["postfix", "-c", str(self.etc), "check"])
        self._spawn(["postfix", "-c", str(self.etc), "start-fg"], self.dir / "master.out")

    def stop_auth(self):
        if self.auth and self.auth.poll() is None:
            self.auth.terminate()
            try:
                self.auth.wait(10)
            except subprocess.TimeoutExpired:
                self.auth.kill()
                self.auth.wait(5)
        self.auth = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            B.run(["postfix", "-c", str(self.etc), "stop"], check=False)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        self.stop_auth()
        super().stop()

    def queue_empty(self):
        for sub in ("incoming", "active", "deferred", "maildrop"):
            for _, _, files in os.walk(self.dir / "queue" / sub):
                if files:
                    return False
        return True


# ---------------------------------------------------------------------------------------
# measurements


def settle_server(srv):
    """Wait until the server is idle again: a connection's processes gone (smtp-submit),
    the queue empty (Postfix: qmgr removes the queue file after local(8) reports)."""
    srv.settle(timeout=30)
    if isinstance(srv, Postfix):
        deadline = time.monotonic() + 30
        while not srv.queue_empty() and time.monotonic() < deadline:
            time.sleep(0.01)
    time.sleep(0.2)


def run_load(srv, cafile, jobs, dirs, expect_files):
    """Submit jobs from SENDERS processes; wait until expect_files (None: no delivery)
    files are in dirs.  Returns a dict of figures."""
    load = Load(srv.port, cafile, jobs)
    settle_server(srv)
    base = count_new(dirs) if dirs else 0
    u0 = srv.cg.usage_ns()
    t0 = time.perf_counter()
    load.start()
    t_deliv = None
    if expect_files:
        # give up past DELIVERY_TIMEOUT, or after STALL_S without a new file
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        last, last_t = -1, time.monotonic()
        while True:
            k = count_new(dirs) - base
            if k >= expect_files:
                t_deliv = time.perf_counter()
                break
            now = time.monotonic()
            if k != last:
                last, last_t = k, now
            if now > deadline or now - last_t > STALL_S:
                break
            time.sleep(0.005)
    lat, errs, client_cpu = load.collect()
    t_sent = time.perf_counter()
    settle_server(srv)
    cpu = (srv.cg.usage_ns() - u0) / 1e9
    n = len(jobs)
    end = t_deliv if expect_files else t_sent
    return {"n": n, "failed": len(errs), "errors": sorted(set(errs))[:3],
            "wall": (end - t0) if end else None, "sent_wall": t_sent - t0,
            "cpu": cpu, "client_cpu": client_cpu, "lat": lat,
            "delivered": count_new(dirs) - base if dirs else None,
            "complete": t_deliv is not None if expect_files else True}


def bench_messages(servers, cafile, creds, size, n, name):
    """n messages of size bytes per server, in ROUNDS rounds taking turns."""
    users = [u for u, _ in creds]
    dirs = maildir_new(users)
    msgs = {}
    jobs = []
    for i in range(n):
        su, sp = creds[i % len(creds)]
        ru = users[(i + 1) % len(users)]
        sender, rcpt = "%s@%s" % (su, DOMAIN), "%s@%s" % (ru, DOMAIN)
        key = (sender, rcpt)
        if key not in msgs:     # one body per (sender, rcpt): memory stays small at 1 MB
            msgs[key] = make_message(sender, rcpt, size, i)
        jobs.append((su, sp, msgs[key], sender, rcpt))
    lf_size = min(len(m.replace(b"\r\n", b"\n")) for m in msgs.values())
    per = n // ROUNDS
    tot = {s.label: {"n": 0, "failed": 0, "errors": [], "wall": 0.0, "cpu": 0.0,
                     "client_cpu": 0.0, "lat": [], "delivered": 0, "complete": True,
                     "ok_size": 0}
           for s in servers}
    for k in range(ROUNDS):
        for srv in servers:
            maildir_empty(dirs)
            r = run_load(srv, cafile, jobs[k * per:(k + 1) * per], dirs, per)
            files, ok = maildir_check(dirs, lf_size)
            t = tot[srv.label]
            for f in ("n", "failed", "cpu", "client_cpu", "delivered"):
                t[f] += r[f]
            t["wall"] += r["wall"] or 0.0
            t["lat"] += r["lat"]
            t["errors"] = sorted(set(t["errors"] + r["errors"]))[:3]
            t["complete"] = t["complete"] and r["complete"]
            t["ok_size"] += ok
            log("  %-12s %s round %d: %d msgs, %s, %.2f s server CPU, %d failed, "
                "%d delivered" % (srv.label, name, k + 1, r["n"],
                                  ("%.2f s to the last delivery" % r["wall"])
                                  if r["complete"] else "NOT ALL DELIVERED",
                                  r["cpu"], r["failed"], r["delivered"]))
    res = {}
    for srv in servers:
        t = tot[srv.label]
        ok = t["complete"] and not t["failed"]
        res[srv.label] = {
            "n": t["n"], "failed": t["failed"], "errors": t["errors"],
            "delivered": t["delivered"], "complete": t["complete"], "ok_size": t["ok_size"],
            "rate": t["n"] / t["wall"] if ok and t["wall"] else None,
            "cpu_ms": t["cpu"] * 1000 / max(1, t["delivered"]),
            "client_cpu_ms": t["client_cpu"] * 1000 / max(1, t["n"]),
            "lat_med_ms": statistics.median(t["lat"]) * 1000 if t["lat"] else None,
            "lat_p95_ms": B.pct(t["lat"], 0.95) * 1000 if t["lat"] else None}
        x = res[srv.label]
        log("  %-12s %s: %s msg/s, %.2f ms server CPU per message, %d failed%s"
            % (srv.label, name, "%.1f" % x["rate"] if x["rate"] else "-", x["cpu_ms"],
               x["failed"], "" if t["complete"] else ", NOT ALL DELIVERED"))
    return res


def bench_logins(servers, cafile, creds, n):
    jobs = [(creds[i % len(creds)][0], creds[i % len(creds)][1]) for i in range(n)]
    per = n // ROUNDS
    tot = {s.label: {"n": 0, "failed": 0, "errors": [], "wall": 0.0, "cpu": 0.0,
                     "client_cpu": 0.0} for s in servers}
    for k in range(ROUNDS):
        for srv in servers:
            r = run_load(srv, cafile, jobs[k * per:(k + 1) * per], None, None)
            t = tot[srv.label]
            for f in ("n", "failed", "cpu", "client_cpu"):
                t[f] += r[f]
            t["wall"] += r["sent_wall"]
            t["errors"] = sorted(set(t["errors"] + r["errors"]))[:3]
    res = {}
    for srv in servers:
        t = tot[srv.label]
        res[srv.label] = {"n": t["n"], "failed": t["failed"], "errors": t["errors"],
                          "cpu_ms": t["cpu"] * 1000 / max(1, t["n"]),
                          "rate": (t["n"] - t["failed"]) / t["wall"],
                          "client_cpu_ms": t["client_cpu"] * 1000 / max(1, t["n"])}
        x = res[srv.label]
        log("  %-12s login: %.2f ms server CPU per STARTTLS+AUTH, %.1f/s, %d failed"
            % (srv.label, x["cpu_ms"], x["rate"], x["failed"]))
    return res


STRACE_KEYS = (("fsync", ("fsync", "fdatasync", "sync_file_range")),
               ("processes created", ("fork", "vfork", "clone", "clone3")),
               ("execve", ("execve", "execveat")),
               ("rename/link", ("rename", "renameat", "renameat2", "link", "linkat")),
               ("open", ("open", "openat", "openat2")),
               ("read", ("read", "recvfrom", "recvmsg", "readv")),
               ("write", ("write", "sendto", "sendmsg", "writev")))


def strace_one(srv, cafile, creds, out, message=True):
    """strace -f -c of every process of the server while one 4 KB message is submitted
    on a connection of its own (login included) and delivered (message False: only the
    login, EHLO STARTTLS EHLO AUTH QUIT).  Counts only: the times
    strace shows are its own overhead's.  {syscall: calls} or None without strace."""
    if not shutil.which("strace"):
        return None
    users = [u for u, _ in creds]
    dirs = maildir_new(users)
    maildir_empty(dirs)
    settle_server(srv)
    # -C: the summary (counts) and every call with its paths (-y), for the syncs' list
    argv = ["strace", "-f", "-C", "-y", "-S", "calls", "-o", str(out)]
    for pid in srv.cg.pids():
        argv += ["-p", str(pid)]
    st = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
    B.CLEANUP.push("stop strace", lambda: st.poll() is None and st.kill())
    time.sleep(1.5)
    su, sp = creds[0]
    sender, rcpt = "%s@%s" % (su, DOMAIN), "%s@%s" % (users[1], DOMAIN)
    c = Sender(srv.port, pb.make_context(cafile))
    try:
        if message:
            c.send(su, sp, make_message(sender, rcpt, SMALL, 1), sender, rcpt)
        else:
            c.login_once(su, sp)
    finally:
        c.close()
    deadline = time.monotonic() + 30
    while message and count_new(dirs) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    settle_server(srv)
    time.sleep(0.5)
    st.send_signal(signal.SIGINT)
    try:
        st.wait(30)
    except subprocess.TimeoutExpired:
        st.kill()
        st.wait()
    calls = {}
    syncs = []
    for ln in out.read_text(errors="replace").splitlines():
        # the summary: % time, seconds, usecs/call, calls, [errors], syscall
        m = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$",
                     ln)
        if m:
            if m.group(2) != "total":
                calls[m.group(2)] = int(m.group(1))
            continue
        m = re.match(r"^\d+\s+(fsync|fdatasync)\(\d+<([^>]*)>", ln)
        if m:       # which file or directory: the spool's names, the Maildir's
            path = m.group(2)
            tmpd = str(out.parent)
            syncs.append("%s %s" % (m.group(1), re.sub(r"^/tmp/postern-smtpbench\.[^/]+/",
                                                       "", path).replace(tmpd, "")))
    total = sum(calls.values())
    res = {"total": total, "delivered": count_new(dirs) >= 1, "syncs": syncs}
    for name, names in STRACE_KEYS:
        res[name] = sum(calls.get(n, 0) for n in names)
    log("  %-12s strace of one %s: %s" % (srv.label, "submission" if message else "login",
                                          ", ".join(
        "%s %d" % (k, v) for k, v in res.items() if k not in ("delivered", "syncs"))))
    maildir_empty(dirs)
    return res


PERF_COMMS = {
    "smtp-submit": ["smtp-submit", "systemd-socket-"],
    # Postfix's daemons and the Dovecot instance that is its SASL server
    "postfix": ["master", "smtpd", "cleanup", "qmgr", "local", "trivial-rewrite",
                "proxymap", "postlogd", "tlsmgr", "anvil", "pickup", "dovecot", "auth",
                "auth-worker", "postfix-script"],
}


# What a sample's function is doing, for the kernel's samples (first match wins); the
# user-space samples go by library.
PERF_KERNEL_CATS = [
    ("disk flushes (virtio: fsync, fdatasync)", r"iowrite16|virtqueue|vring|^blk_|bio_|"
     r"submit_bio|flush"),
    ("file system: ext4 inodes, directories, blocks (create, rename, unlink, lookup)",
     r"ext4|jbd2|find_get_block|recently_deleted|find_inode_bit|__getblk|dentry|d_alloc|"
     r"d_lookup|__d_|path_|link_path|lookup|namei|inode|filemap_get|mark_buffer|"
     r"do_filp_open|dput|getname|strncpy_from_user|crc32c"),
    ("processes: fork, exec, exit, page faults, memory maps",
     r"page_range|copy_page|exc_page_fault|handle_mm_fault|clear_page|release_pages|"
     r"free_pages|free_pcp|unmap|mmap|vma|pte|pmd|zap|folio|lru|do_wp_page|"
     r"filemap_map_pages|next_uptodate|tlb|^mm_|anon|^exit_|copy_process|dup_|load_elf|"
     r"execve|set_pte|rmap|alloc_pages|get_page_from_freelist|memcg|__mod_|lruvec|"
     r"slab|kmem_cache"),
    ("network: loopback TCP", r"tcp|skb|^ip_|sock|^net_|loopback|__dev_queue|inet"),
    ("scheduler, wake-ups, where interrupts are re-enabled",
     r"finish_task_switch|_raw_spin_unlock|schedule|wake|softirq|irq|rcu"),
]


def perf_report(path, comms):
    """Shares of the samples of the process names comms in a `perf record` file: by
    library (dso), by process name, by what the time is spent on (user space by library,
    the kernel by PERF_KERNEL_CATS) and by function."""
    r = B.run(["perf", "report", "-i", str(path), "--stdio", "-q", "--no-children",
               "-F", "sample,comm,dso,sym", "--comms", ",".join(comms)], check=False,
              timeout=600)
    by = {"dso": {}, "comm": {}, "sym": {}, "what": {}}
    total = 0
    for ln in r.stdout.splitlines():
        m = re.match(r"\s*(\d+)\s+(\S+)\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$", ln)
        if not m:
            continue
        n, comm, dso, kind, sym = (int(m.group(1)), m.group(2), m.group(3), m.group(4),
                                   m.group(5))
        if sym.startswith("0x"):
            sym = "(no symbols)"
        if kind == "k":
            what = "kernel: other"
            for name, rx in PERF_KERNEL_CATS:
                if re.search(rx, sym):
                    what = "kernel: " + name
                    break
        elif "libcrypt" in dso:
            what = "libcrypt: yescrypt (PAM's password check)"
        elif "libcrypto" in dso or "libssl" in dso:
            what = "OpenSSL (TLS)"
        elif "ld-linux" in dso:
            what = "ld.so: loading and relocating libraries (exec)"
        else:
            what = dso
        total += n
        for k, v in (("comm", comm), ("dso", dso), ("sym", "%s %s" % (dso, sym)),
                     ("what", what)):
            by[k][v] = by[k].get(v, 0) + n
    out = {k: sorted(((100.0 * c / total, name) for name, c in v.items()), reverse=True)
           for k, v in by.items()} if total else {k: [] for k in by}
    out["samples"] = total
    return out


def perf_one(srv, cafile, creds, n, out):
    """perf record -a (cpu-clock) while n 4 KB messages are submitted from SENDERS
    connections and delivered; the samples of the server's process names, by library,
    process name and function (bench.Perf.report).  System-wide: Postfix's daemons and
    smtp-submit's sessions change uid, which drops inherited perf events at exec; the
    process names of other servers on the machine would be mixed in (none run here)."""
    users = [u for u, _ in creds]
    dirs = maildir_new(users)
    maildir_empty(dirs)
    jobs = []
    msgs = {}
    for i in range(n):
        su, sp = creds[i % len(creds)]
        sender, rcpt = "%s@%s" % (su, DOMAIN), "%s@%s" % (users[(i + 1) % len(users)], DOMAIN)
        if sender not in msgs:
            msgs[sender] = make_message(sender, rcpt, SMALL, i)
        jobs.append((su, sp, msgs[sender], sender, rcpt))
    pr = subprocess.Popen(["perf", "record", "-a", "-e", "cpu-clock", "-F", "999",
                           "-q", "-o", str(out)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    B.CLEANUP.push("stop perf", lambda: pr.poll() is None and pr.kill())
    time.sleep(1.0)
    try:
        r = run_load(srv, cafile, jobs, dirs, n)
    finally:
        pr.send_signal(signal.SIGINT)
        try:
            pr.wait(120)
        except subprocess.TimeoutExpired:
            pr.kill()
            pr.wait()
    maildir_empty(dirs)
    rep = perf_report(out, PERF_COMMS[srv.kind])
    rep["n"] = n
    rep["cpu_ms"] = r["cpu"] * 1000 / max(1, r["delivered"] or 0)
    log("  %-12s profile of %d messages: %s" % (srv.label, n, ", ".join(
        "%s %.0f%%" % (d, pc) for pc, d in rep["dso"][:5])))
    return rep


def probe_submit(port, cafile, user, password):
    """One message through smtp-submit before measuring: None if it works, else why."""
    try:
        c = Sender(port, pb.make_context(cafile))
        c.send(user, password, make_message("%s@%s" % (user, DOMAIN),
                                         "%s@%s" % (user, DOMAIN), 512, 0),
            "%s@%s" % (user, DOMAIN), "%s@%s" % (user, DOMAIN))
        tls = "%s %s" % (c.s.sock.version(), c.s.sock.cipher()[0])
        c.close()
        return None, tls
    except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
        return "%s: %s" % (type(e).__name__, str(e)[:300]), None


# ---------------------------------------------------------------------------------------
# report


def write_section(R, path):
    L = [MARK, ""]
    w = L.append
    w("# smtp-submit vs Postfix (submission): benchmark results")
    w("")
    w("Written by `make bench` (or `make bench BENCH=smtp`; bench/smtpbench.py) on %s, in "
      "%.0f s%s. smtp-submit %s, Postfix %s (Debian package, private config directory), "
      "its SASL by Dovecot %s's auth. %s, %s CPUs. Load average %.2f at the start, %.2f "
      "at the end (a shared machine: read ratios, with some %% of noise)."
      % (R["date"], R["seconds"], " (QUICK=1)" if QUICK else "", R["rev"], R["postfix"],
         R["dovecot"], R["machine"]["cpu"], R["machine"]["nproc"], R["load_start"],
         R["load_end"]))
    w("")
    sub, pf = "smtp-submit", "postfix"
    if R.get("submit_error"):
        w("**smtp-submit was not measured in full**: %s. Its empty cells stand alone until "
          "smtp-submit delivers; run `make bench BENCH=smtp` again then." % R["submit_error"])
        w("")
    w("**ratio** = smtp-submit / Postfix: for msg/s above 1 means smtp-submit is faster; "
      "for CPU and latency above 1 means smtp-submit uses more. %d concurrent senders, each "
      "a process with %s (EHLO, STARTTLS, EHLO, AUTH PLAIN, then MAIL, RCPT, DATA per "
      "message), %d rounds taking turns between the servers." % (
          SENDERS, "one connection for all its messages of a round" if not PER_CONN else
          "a new connection every %d messages" % PER_CONN, ROUNDS))
    w("")
    w("| figure | smtp-submit | Postfix | ratio |")
    w("|---|---:|---:|---:|")

    def get(d, lab, key):
        x = d.get(lab) if d else None
        return x.get(key) if x else None

    def row(name, key, d, fmt="%.2f"):
        a, b = get(d, sub, key), get(d, pf, key)
        if a is None and b is None:
            return
        w("| %s | %s | %s | %s |" % (name, fmt % a if a is not None else "-",
                                     fmt % b if b is not None else "-",
                                     B.ratio(a, b) if a is not None and b is not None
                                     else "n/a"))
    for key, label in (("small", "4 KB"), ("big", "1 MB")):
        d = R.get(key)
        if not d:
            continue
        n = get(d, pf, "n") or get(d, sub, "n")
        row("%s messages (%d), submitted until in the Maildir: msg/s" % (label, n), "rate",
            d, "%.1f")
        row("  server CPU per message, ms", "cpu_ms", d)
        row("  client latency per message (MAIL to the 250 after DATA), median, ms",
            "lat_med_ms", d, "%.1f")
        row("  ... 95th percentile, ms", "lat_p95_ms", d, "%.1f")
        row("  client CPU per message, ms (not in the server figures)", "client_cpu_ms", d)
    d = R.get("login")
    if d:
        row("STARTTLS+AUTH login (EHLO, STARTTLS, EHLO, AUTH PLAIN, QUIT), %d "
            "concurrent: server CPU per login, ms" % SENDERS, "cpu_ms", d)
        row("  logins per second", "rate", d, "%.1f")
        if R.get("small") and not PER_CONN:
            both = {}
            for lab in (sub, pf):
                a, b = get(R["small"], lab, "cpu_ms"), get(d, lab, "cpu_ms")
                if a is not None and b is not None:
                    both[lab] = {"sum": a + b}
            row("a 4 KB message on a connection of its own (login + message, the sum of "
                "the two figures): server CPU, ms", "sum", both)
    for key, what in (("strace_login", "one STARTTLS+AUTH login (EHLO, STARTTLS, "
                                       "EHLO, AUTH PLAIN, QUIT)"),
                      ("strace", "one 4 KB message on a connection of its own, login "
                                 "and delivery included")):
        d = R.get(key)
        if not d:
            continue
        for k, nm in (("total", "system calls"), ("fsync", "fsync/fdatasync"),
                      ("processes created", "processes created (fork/clone)"),
                      ("execve", "execve"), ("rename/link", "rename/link"),
                      ("open", "open/openat"), ("read", "reads (read/recv*)"),
                      ("write", "writes (write/send*)")):
            row(("strace -f -c of %s, all the server's processes: %s" % (what, nm))
                if k == "total" else "  " + nm, k, d, "%d")
    d = R.get("strace")
    if d:
        w("")
        for lab in (sub, pf):
            if d.get(lab, {}).get("syncs"):
                w("- The syncs of one submission, %s, in order: %s." % (
                    lab, "; ".join("`%s`" % x for x in d[lab]["syncs"])))
    w("")
    pf_ = R.get("perf")
    if pf_:
        w("### Where the server CPU goes: 4 KB messages")
        w("")
        w("`perf record -a -e cpu-clock` while %d 4 KB messages are submitted (%d "
          "senders, their logins included) and delivered; the samples of the server's "
          "processes (by process name), in %% of them and in ms per message (with the server CPU per message "
          "of that run)." % (next(iter(pf_.values()))["n"], SENDERS))
        w("")
        for lab in (sub, pf):
            x = pf_.get(lab)
            if not x or not x.get("samples"):
                continue
            cpu = x["cpu_ms"]
            w("- **%s** (%.2f ms per message, %d samples): by library: %s." % (
                lab, cpu, x["samples"], ", ".join(
                    "%s %.0f%% (%.2f ms)" % (d, p, p / 100 * cpu)
                    for p, d in x["dso"][:8] if p >= 1.0)))
            w("  On what: %s." % ", ".join(
                "%s %.0f%% (%.2f ms)" % (d, p, p / 100 * cpu)
                for p, d in x["what"] if p >= 1.0))
            w("  By process: %s." % ", ".join("%s %.0f%%" % (c, p) for p, c in x["comm"]
                                              if p >= 1.0))
            w("  Functions: %s." % "; ".join(
                "%s %.1f%%" % (sy.replace("[kernel.kallsyms]", "kernel"), p)
                for p, sy in x["sym"][:12]))
        w("")
    w("Issue 7's reference for Postfix 3.7 on this class of machine: 154 msg/s at 4 KB "
      "(7.9 ms server CPU per message), 57.7 msg/s at 1 MB.")
    w("")
    w("Checks: %s." % "; ".join(R["checks"]))
    w("")
    w("Method:")
    w("")
    w("- Same accounts (two throwaway users, yescrypt hash, PAM service `smtp` for both: "
      "smtp-submit's monitor, and Postfix's Dovecot auth with `passdb pam args=smtp`), "
      "same ECDSA P-256 certificate, TLS as OpenSSL negotiates (TLS 1.3), no TLS session "
      "resumption (each connection a full handshake, for both).")
    w("- Each message goes from one bench user to the other (`user@%s`, a local domain "
      "of both), text/plain, exactly 4,096 or 1,048,576 bytes as sent. The time is from "
      "the start of the senders to the moment the count of files in the recipients' "
      "Maildir/new reaches the count sent (polled every 5 ms); msg/s = messages / that "
      "time, summed over the rounds." % DOMAIN)
    w("- Server CPU: each server in a cgroup of its own (%s), read before the senders "
      "start and after the server is idle again (smtp-submit: no connection or delivery "
      "process left; Postfix: the queue empty), so every process the server starts "
      "(launcher, per-connection processes, delivery, queue manager, cleanup, local(8), "
      "Dovecot auth for Postfix) is counted and the client's processes are not (their "
      "own CPU is the client row). Why a cgroup and not /proc/PID/stat: short-lived "
      "children (smtp-submit forks per connection and per delivery; Postfix's local(8) "
      "and smtpd processes come and go) would be missed, and system-wide /proc/stat would "
      "mix in the client and the machine's other load." % R["cgroup"])
    w("- Postfix setup: Debian's package, `postfix -c DIR start-fg` from a private "
      "config_directory with its own queue_directory, data_directory and maillog_file; "
      "only one listener, the submission smtpd on a loopback high port "
      "(`smtpd_tls_security_level=encrypt`, `smtpd_tls_auth_only=yes`, "
      "`smtpd_relay_restrictions=permit_sasl_authenticated,reject`); chroot off "
      "(upstream's default; Debian's package turns it on); `home_mailbox = Maildir/`; "
      "`alias_maps` empty. Its queue and Maildir writes are fsync'd as always.")
    w("- smtp-submit setup: `smtp-submit -m submission` under `systemd-socket-activate "
      "--accept --inetd`, spool_dir in a temporary directory, `submit_rate_messages = 0` "
      "and `submit_rate_recipients = 0` (the per-user hourly limit would stop a "
      "benchmark; its bookkeeping still runs), login throttles off as in the other "
      "benches.")
    w("")
    prof = REPO / "bench" / "SMTP-PROFILE.md"
    if prof.exists():    # the analysis of the profiles, written by hand (see there)
        w(prof.read_text().rstrip("\n"))
        w("")
    text = "\n".join(L) + "\n"
    old = path.read_text() if path.exists() else ""
    k = old.find(MARK)
    if k >= 0:
        old = old[:k]
    path.write_text(old.rstrip("\n") + ("\n\n" if old else "") + text)


# ---------------------------------------------------------------------------------------


def make_spool_user(name):
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    B.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
           "--shell", "/usr/sbin/nologin", "--comment", B.USER_MARK, name])

    def rm():
        if pwd.getpwnam(name).pw_gecos == B.USER_MARK:
            B.run(["userdel", name], check=False)
    B.CLEANUP.push("remove user " + name, rm)


def main():
    if os.environ.get("SMTP_REPORT_ONLY"):
        # the section again from the last run's numbers (after SMTP-PROFILE.md changed)
        R = json.loads((B.ARTIFACTS / "smtp-results.json").read_text())
        write_section(R, B.OUT)
        log("wrote %s from %s" % (B.OUT, B.ARTIFACTS / "smtp-results.json"))
        return 0
    if os.geteuid() != 0:
        print("smtpbench: run as root (make bench)", file=sys.stderr)
        return 1
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, B._on_signal)
    signal.alarm(40 * 60)
    t_start = time.monotonic()
    mi = B.machine_info()
    R = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M").strip(),
         "load_start": os.getloadavg()[0], "checks": [], "machine": mi,
         "postfix": B.cmd_out(["postconf", "-h", "-d", "mail_version"]),
         "dovecot": B.cmd_out(["dovecot", "--version"]).split()[0:1],
         "rev": mi["ipop3d"], "senders": SENDERS}
    R["dovecot"] = R["dovecot"][0] if R["dovecot"] else "?"
    tmp = Path(tempfile.mkdtemp(prefix="postern-smtpbench."))
    B.CLEANUP.push("remove " + str(tmp), lambda: shutil.rmtree(tmp, ignore_errors=True))
    os.chmod(tmp, 0o755)
    B.ARTIFACTS.mkdir(parents=True, exist_ok=True)
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
        make_spool_user("postern-spool")
        pam = Path("/etc/pam.d/smtp")
        if not pam.exists():
            shutil.copyfile(REPO / "pam.d" / "smtp", pam)
            os.chmod(pam, 0o644)
            B.CLEANUP.push("remove /etc/pam.d/smtp", lambda: pam.unlink())
        creds = []
        for u in B.USERS:
            pw_, h, how = B.make_user(u)
            creds.append((u, pw_))
        R["checks"].append("accounts %s: %s hash (%s)" % (", ".join(B.USERS), h[:3], how))
        maildir_prepare(B.USERS)
        d = tmp / "tls"
        B.run(["sh", str(REPO / "mkcert.sh"), "-d", str(d), "-t", "ecdsa", "localhost",
               "127.0.0.1"])
        os.chmod(d, 0o755)
        cafile = str(d / "ca.crt")
        empty = tmp / "hosts.empty"
        empty.write_text("")
        os.chmod(empty, 0o644)
        spool = tmp / "spool"
        sp = pwd.getpwnam("postern-spool")
        for dd in (spool, spool / "tmp", spool / "queue"):    # as `smtp-submit -t` makes it
            dd.mkdir(mode=0o700)
            os.chown(dd, sp.pw_uid, sp.pw_gid)
        conf = tmp / "smtp-submit.conf"
        conf.write_text(
            "[global]\ntls_cert = {d}/postern.crt\ntls_key = {d}/postern.key\n"
            "log = {t}/smtp-submit.log\nstate_dir = {t}/smtp-submit-state\n"
            "hosts_allow = {e}\nhosts_deny = {e}\nmin_uid = 1000\n"
            "login_fail_delay_ms = 0\nthrottle_ip_max = 0\nthrottle_net_max = 0\n"
            "throttle_user_max = 0\nmail_location = maildir:~/Maildir\n"
            "spool_dir = {s}\nspool_user = postern-spool\npam_service = smtp\n"
            "hostname = {dom}\nlocal_domains = {dom}\naliases = {e}\n"
            "submit_rate_messages = 0\nsubmit_rate_recipients = 0\n".format(
                d=d, t=tmp, e=empty, s=spool, dom=DOMAIN))
        R["cgroup"] = None

        servers = []
        for name in SERVERS:
            cg = B.Cgroup("%s-%d" % (name, os.getpid()))
            R["cgroup"] = ("cgroup v1 cpuacct.usage" if cg.v == 1 else
                           "cgroup v2 cpu.stat usage_usec")
            if name == "smtp-submit":
                if not os.access(SUBMIT, os.X_OK):
                    R["submit_error"] = "%s is missing (make all)" % SUBMIT
                    continue
                srv = Submit("smtp-submit", cg, B.free_port(), conf,
                             tmp / "smtp-submit.log")
            elif name == "postfix":
                srv = Postfix("postfix", cg, B.free_port(), tmp, d)
            else:
                raise RuntimeError("SMTP_SERVERS: unknown server %r" % name)
            try:
                srv.start()
            except RuntimeError as e:
                if name != "smtp-submit":
                    raise
                R["submit_error"] = "it did not start: %s" % e
                continue
            servers.append(srv)
        # Each server must log in, and deliver one message, before it is measured for
        # that (smtp-submit is being built: a daemon that cannot is left out of the
        # figures it cannot do, with the reason, not a crash).
        login_servers, msg_servers = [], []
        for srv in servers:
            try:
                c = Sender(srv.port, pb.make_context(cafile))
                c.login_once(*creds[0])
                login_servers.append(srv)
            except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
                why = "%s: %s" % (type(e).__name__, str(e)[:300])
                if srv.kind != "smtp-submit":
                    raise RuntimeError("%s: the probe login failed: %s" % (srv.label, why))
                R["submit_error"] = "the probe login failed: %s" % why
                continue
            maildir_empty(maildir_new(B.USERS))
            why, tls = probe_submit(srv.port, cafile, *creds[0])
            if why is None:
                deadline = time.monotonic() + 30
                while count_new(maildir_new(B.USERS)) < 1 and time.monotonic() < deadline:
                    time.sleep(0.02)
                if count_new(maildir_new(B.USERS)) < 1:
                    why = "a message it accepted was not delivered within 30 s"
            if why:
                if srv.kind != "smtp-submit":
                    raise RuntimeError("%s: the probe message failed: %s" % (srv.label, why))
                R["submit_error"] = "the probe message failed (its login works and is " \
                    "measured): %s" % why
            else:
                R["checks"].append("%s delivered a probe message (%s)" % (srv.label, tls))
                msg_servers.append(srv)
            maildir_empty(maildir_new(B.USERS))
        if R.get("submit_error"):
            log("smtp-submit not measured: %s" % R["submit_error"])
        # warm-up: page cache, Postfix's processes started, the TLS and PAM code paged in
        for srv in login_servers:
            run_load(srv, cafile, [(creds[0][0], creds[0][1])] * SENDERS, None, None)
        R["login"] = bench_logins(login_servers, cafile, creds, N_LOGIN)
        servers_all, servers = servers, msg_servers
        R["small"] = bench_messages(servers, cafile, creds, SMALL, N_SMALL, "4 KB")
        R["big"] = bench_messages(servers, cafile, creds, BIG, N_BIG, "1 MB")
        if PERF and B.perf_usable():
            R["perf"] = {}
            for srv in servers:
                R["perf"][srv.label] = perf_one(
                    srv, cafile, creds, N_PERF,
                    B.ARTIFACTS / ("smtp-%s.perf.data" % srv.label))
        if STRACE:
            R["strace"], R["strace_login"] = {}, {}
            for srv in login_servers:
                r = strace_one(srv, cafile, creds,
                               B.ARTIFACTS / ("smtp-strace-login-%s.txt" % srv.label),
                               message=False)
                if r:
                    R["strace_login"][srv.label] = r
            for srv in servers:
                r = strace_one(srv, cafile, creds,
                               B.ARTIFACTS / ("smtp-strace-%s.txt" % srv.label))
                if r:
                    R["strace"][srv.label] = r
        for key, size in (("small", SMALL), ("big", BIG)):
            for lab, x in R[key].items():
                R["checks"].append("%s %s: %d sent, %d failed, %d files in Maildir/new "
                                   "(%d of at least the message's size with LF line "
                                   "ends)%s"
                                   % (lab, "4 KB" if key == "small" else "1 MB", x["n"],
                                      x["failed"], x["delivered"], x["ok_size"],
                                      "" if not x["errors"] else
                                      " errors: " + " | ".join(x["errors"])))
        for s in servers_all:
            s.stop()
        R["seconds"] = time.monotonic() - t_start
        R["load_end"] = os.getloadavg()[0]
        for k in ("small", "big"):
            for x in R[k].values():
                x.pop("lat", None)
        (B.ARTIFACTS / "smtp-results.json").write_text(json.dumps(R, indent=1, default=str))
        write_section(R, B.OUT)
        log("wrote %s" % B.OUT)
    finally:
        for f in list(tmp.glob("*.log")) + list(tmp.glob("postfix/*.log")):
            try:
                shutil.copyfile(f, B.ARTIFACTS / ("smtp-" + f.name))
            except OSError:
                pass
        B.CLEANUP.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
