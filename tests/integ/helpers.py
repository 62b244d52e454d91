"""Helpers of the ipop3d integration tests: launchers, accounts, mail stores, clients,
the daemon's log file and /proc inspection.  Everything here talks only to 127.0.0.0/8
and ::1, and everything it starts or creates it also stops and removes."""

import base64
import contextlib
import ctypes
import errno
import fcntl
import os
import pwd
import random
import re
import secrets
import select
import shutil
import signal
import socket
import ssl
import string
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Accounts the suite makes: "pt" + digits, with this GECOS so that a leftover of an
# aborted run can be told from a real account.  The pid of the run that made it follows.
USER_PREFIX = "pt"
USER_MARK = "postern integ test"
# Temporary directories: /tmp/postern-integ-<pid of the pytest run>-XXXX
TMP_PREFIX = "postern-integ-"

GREETING = "+OK postern POP3 server ready"
AUTH_FAILED = "-ERR [AUTH] Authentication failed."
THROTTLED = "-ERR [SYS/TEMP] Too many failed logins, try again later."
ACCESS_DENIED = "-ERR [SYS/PERM] Access denied."
PLAINTEXT_DISALLOWED = "-ERR [AUTH] Plaintext authentication disallowed"
LOGGED_IN = "+OK Logged in."
LINE_TOO_LONG = "-ERR Line too long."


def binary_path(daemon="ipop3d"):
    """The binary under test: POSTERN_IPOP3D / POSTERN_IMAPD / POSTERN_SMTP_SUBMIT, else
    the release build (ipop3d/ipop3d, imapd/imapd, smtp-submit/smtp-submit)."""
    env = {"ipop3d": "POSTERN_IPOP3D", "imapd": "POSTERN_IMAPD",
           "smtp-submit": "POSTERN_SMTP_SUBMIT"}[daemon]
    p = Path(os.environ.get(env, "%s/%s" % (daemon, daemon)))
    if not p.is_absolute():
        p = REPO / p
    return p


def is_sanitizer_build(path):
    """True for the ASan/UBSan build (POSTERN_SAN=1, or the binary links libasan)."""
    if os.environ.get("POSTERN_SAN") == "1":
        return True
    try:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "libasan" in out or "libubsan" in out


def run(argv, check=True, input=None, timeout=60, **kw):
    """subprocess.run with text output captured; raises with the output on failure."""
    r = subprocess.run(argv, input=input, capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d\nstdout: %s\nstderr: %s"
                           % (" ".join(map(str, argv)), r.returncode, r.stdout, r.stderr))
    return r


# ---------------------------------------------------------------------------------------
# Processes


def set_child_subreaper():
    """Orphans of our launchers (a worker whose monitor exited, ...) are re-parented to
    this process rather than to init, so the suite can always find and end them."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def proc_stat(pid):
    """(ppid, starttime, state) of pid, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[19]), rest[0]


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children_map():
    m = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            m.setdefault(st[0], []).append(pid)
    return m


def descendants(pid):
    """[(pid, starttime)] of every living descendant of pid."""
    m = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in m.get(p, []):
            st = proc_stat(c)
            if st:
                out.append((c, st[1]))
                todo.append(c)
    return out


def proc_uids(pid):
    """(real, effective) uid of pid, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    u = line.split()
                    return int(u[1]), int(u[2])
    except OSError:
        return None
    return None


def signal_if_same(pid, start, sig):
    """Signal pid only if it is still the process we saw (same start time)."""
    st = proc_stat(pid)
    if st is None or st[1] != start:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def alive(pid, start):
    st = proc_stat(pid)
    return st is not None and st[1] == start and st[2] != "Z"


def end_processes(procs, grace=3.0):
    """SIGTERM, then SIGKILL after grace, the (pid, starttime) pairs given."""
    procs = [p for p in procs if alive(*p)]
    for p in procs:
        signal_if_same(p[0], p[1], signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(*p) for p in procs):
        time.sleep(0.05)
    for p in procs:
        if alive(*p):
            signal_if_same(p[0], p[1], signal.SIGKILL)
    reap_orphans()


_managed = set()   # pids of Popen objects we wait for ourselves


def reap_orphans():
    """Collect orphans re-parented to us (we are a subreaper), not our Popen children."""
    me = os.getpid()
    for pid in children_map().get(me, []):
        if pid in _managed:
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def orphans():
    """Living processes re-parented to this (subreaper) process that we did not start
    with Popen, and their descendants."""
    me = os.getpid()
    out = []
    for pid in children_map().get(me, []):
        if pid in _managed:
            continue
        st = proc_stat(pid)
        if st and st[2] != "Z":
            out.append((pid, st[1]))
            out.extend(descendants(pid))
    return out


# ---------------------------------------------------------------------------------------
# Sockets and ports


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _proc_net_entries():
    for name, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fld = line.split()
            laddr, lport = fld[1].split(":")
            raddr, rport = fld[2].split(":")
            yield {"v6": v6, "laddr": laddr, "lport": int(lport, 16), "raddr": raddr,
                   "rport": int(rport, 16), "state": fld[3], "inode": int(fld[9])}


def listening_inodes(port):
    return [e["inode"] for e in _proc_net_entries() if e["lport"] == port and e["state"] == "0A"]


def is_listening(port):
    return bool(listening_inodes(port))


def wait_listening(port, timeout=10.0, proc=None):
    """Wait until port is listened on (by proc's own socket, if proc is given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for inode in listening_inodes(port):
            if proc is None or proc.pid in socket_holders(inode):
                return
        if proc is not None and proc.poll() is not None:
            raise PortError("launcher exited with %s before listening on %d"
                            % (proc.returncode, port))
        time.sleep(0.05)
    raise PortError("nothing of ours listens on port %d after %.0fs" % (port, timeout))


class PortError(RuntimeError):
    pass


def server_socket_inode(server_port, client_port):
    """Inode of the server side of the TCP connection client_port -> server_port."""
    for e in _proc_net_entries():
        if e["lport"] == server_port and e["rport"] == client_port and e["state"] != "0A" \
                and e["inode"] != 0:
            return e["inode"]
    return None


def socket_holders(inode):
    """pids of every process with socket:[inode] open."""
    target = "socket:[%d]" % inode
    out = set()
    for pid in all_pids():
        fddir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fddir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("%s/%s" % (fddir, fd)) == target:
                    out.add(pid)
                    break
            except OSError:
                continue
    return out


# ---------------------------------------------------------------------------------------
# TLS contexts


def client_context(cafile, version=None):
    """A verifying client context (the CA of mkcert.sh); version pins min and max."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


# ---------------------------------------------------------------------------------------
# A raw POP3 client: exact bytes, source addresses, STLS, abrupt drops.


class Pop3:
    def __init__(self, port, host="127.0.0.1", source=None, tls=None, timeout=30.0,
                 server_hostname="localhost", read_greeting=True, session=None):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=src)
        self.client_port = self.sock.getsockname()[1]
        self.server_port = port
        self.buf = b""
        self.greeting = None
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname,
                                        session=session)
        if read_greeting:
            self.greeting = self.line()

    # --- I/O
    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            return False
        self.buf += data
        return True

    def rawline(self):
        """The next line with its terminator; b'' at EOF (partial data: returned as is)."""
        while b"\n" not in self.buf:
            if not self._fill():
                out, self.buf = self.buf, b""
                return out
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def line(self):
        raw = self.rawline()
        if not raw:
            raise EOFError("connection closed by the server")
        assert raw.endswith(b"\r\n"), "reply line not ended by CRLF: %r" % raw[:200]
        return raw[:-2].decode("utf-8", "replace")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, text):
        self.send(text.encode() + b"\r\n" if isinstance(text, str) else text + b"\r\n")
        return self.line()

    def multi(self):
        """Lines of a multi-line response (after its +OK), dot-unstuffed, as bytes
        without CRLF."""
        out = []
        while True:
            raw = self.rawline()
            if not raw:
                raise EOFError("connection closed inside a multi-line response")
            assert raw.endswith(b"\r\n"), "line not ended by CRLF: %r" % raw[:200]
            body = raw[:-2]
            if body == b".":
                return out
            if body.startswith(b"."):
                body = body[1:]
            out.append(body)

    def multi_raw(self):
        """The exact bytes of a multi-line response body including the final '.CRLF'."""
        out = []
        while True:
            raw = self.rawline()
            if not raw:
                raise EOFError("connection closed inside a multi-line response")
            out.append(raw)
            if raw == b".\r\n":
                return b"".join(out)

    # --- commands
    def login(self, user, password):
        r = self.cmd("USER " + user)
        if not r.startswith("+OK"):
            return r
        return self.cmd("PASS " + password)

    def capa(self):
        r = self.cmd("CAPA")
        assert r.startswith("+OK"), r
        return [l.decode() for l in self.multi()]

    def stls(self, ctx, server_hostname="localhost"):
        r = self.cmd("STLS")
        assert r.startswith("+OK"), "STLS: " + r
        assert self.buf == b"", "data after the STLS reply: %r" % self.buf
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        return r

    def auth_plain(self, user, password, initial=True):
        blob = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        if initial:
            return self.cmd("AUTH PLAIN " + blob)
        r = self.cmd("AUTH PLAIN")
        if not r.startswith("+"):
            return r
        return self.cmd(blob)

    def auth_login(self, user, password):
        r = self.cmd("AUTH LOGIN")
        if not r.startswith("+ "):
            return r
        r = self.cmd(base64.b64encode(user.encode()).decode())
        if not r.startswith("+ "):
            return r
        return self.cmd(base64.b64encode(password.encode()).decode())

    def retr(self, n):
        r = self.cmd("RETR %d" % n)
        assert r.startswith("+OK"), "RETR %d: %s" % (n, r)
        return b"".join(l + b"\r\n" for l in self.multi())

    def uidl(self):
        r = self.cmd("UIDL")
        assert r.startswith("+OK"), r
        out = {}
        for l in self.multi():
            n, u = l.decode().split(" ", 1)
            out[int(n)] = u
        return out

    def list(self):
        r = self.cmd("LIST")
        assert r.startswith("+OK"), r
        out = {}
        for l in self.multi():
            n, s = l.decode().split()[:2]
            out[int(n)] = int(s)
        return out

    def stat(self):
        r = self.cmd("STAT")
        assert r.startswith("+OK "), r
        f = r.split()
        return int(f[1]), int(f[2])

    def quit(self):
        r = self.cmd("QUIT")
        self.wait_closed()
        return r

    def wait_closed(self, timeout=10.0):
        """True if the server closes the connection within timeout (data is discarded)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (socket.timeout, TimeoutError):
            return False
        except ssl.SSLError:
            return True
        return False

    def drop(self):
        """Abrupt close: RST, no QUIT."""
        try:
            raw = self.sock
            if isinstance(raw, ssl.SSLSocket):
                raw = socket.socket(fileno=os.dup(raw.fileno()))
                self.sock.close()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            raw.close()
        except OSError:
            pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ---------------------------------------------------------------------------------------
# The daemon's log file


LOG_RE = re.compile(r"(?:ipop3d|imapd|smtp-submit)\[(\d+)\]: ([a-z][a-z0-9-]*): ?(.*)$")


def parse_fields(text):
    out = {}
    for part in text.split(", "):
        if "=" in part:
            k, v = part.split("=", 1)
            v = v.strip()
            if v.startswith("<") and v.endswith(">"):
                v = v[1:-1]
            out[k.strip()] = v
    return out


class DaemonLog:
    def __init__(self, path):
        self.path = Path(path)

    def text(self):
        try:
            return self.path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def events(self, event=None, **match):
        out = []
        for line in self.text().splitlines():
            m = LOG_RE.search(line)
            if not m:
                continue
            ev = parse_fields(m.group(3))
            ev["_event"] = m.group(2)
            ev["_pid"] = int(m.group(1))
            ev["_line"] = line
            if event is not None and ev["_event"] != event:
                continue
            if all(ev.get(k) == str(v) for k, v in match.items()):
                out.append(ev)
        return out

    def wait(self, event, timeout=10.0, **match):
        deadline = time.monotonic() + timeout
        while True:
            evs = self.events(event, **match)
            if evs:
                return evs[-1]
            if time.monotonic() > deadline:
                raise AssertionError("no '%s' line with %r in the log after %.0fs; log:\n%s"
                                     % (event, match, timeout, self.tail()))
            time.sleep(0.05)

    def tail(self, n=40):
        return "\n".join(self.text().splitlines()[-n:])


# ---------------------------------------------------------------------------------------
# Mail


def make_message(i, body_lines=3, extra_body=b"", subject=None):
    """A small RFC 5322 message with LF line ends, identified by its number."""
    subject = subject or "test message %d" % i
    head = ("From: Sender <sender@example.org>\n"
            "To: someone@localhost\n"
            "Subject: %s\n"
            "Message-ID: <%d.%s@postern.test>\n"
            "Date: Sat, 21 Nov 2026 10:00:00 +0000\n"
            "\n" % (subject, i, secrets.token_hex(6))).encode()
    body = b"".join(b"Body line %d of message %d.\n" % (k, i) for k in range(body_lines))
    return head + body + extra_body


def to_wire(msg):
    """LF-stored message as POP3 delivers it (CRLF, before dot-stuffing)."""
    return msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def subject_of(wire):
    m = re.search(rb"^Subject: (.*?)\r?$", wire, re.M)
    return m.group(1).decode() if m else None


class MailUser:
    """A throwaway system account (useradd -m, chpasswd), deleted by remove()."""

    def __init__(self, store="maildir", uid=None):
        self.name = "%s%06d" % (USER_PREFIX, random.SystemRandom().randrange(10 ** 6))
        while _user_exists(self.name):
            self.name = "%s%06d" % (USER_PREFIX, random.SystemRandom().randrange(10 ** 6))
        alphabet = string.ascii_letters + string.digits
        self.password = "".join(secrets.choice(alphabet) for _ in range(20))
        argv = ["useradd", "-m", "-s", "/bin/sh", "-c", "%s %d" % (USER_MARK, os.getpid())]
        if uid is not None:
            argv += ["-u", str(uid)]
        run(argv + [self.name])
        try:
            run(["chpasswd"], input="%s:%s\n" % (self.name, self.password))
            pw = pwd.getpwnam(self.name)
            self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, Path(pw.pw_dir)
            if uid is None and self.uid < 1000:
                raise RuntimeError("useradd gave %s uid %d < 1000" % (self.name, self.uid))
            self.maildir = self.home / "Maildir"
            self.mbox = Path("/var/mail") / self.name
            self.store = store
            if store == "maildir":
                for sub in ("", "new", "cur", "tmp"):
                    d = self.maildir / sub
                    d.mkdir(mode=0o700, exist_ok=True)
                    os.chown(d, self.uid, self.gid)
            elif store == "mbox":
                self._write_mbox(b"")
        except Exception:
            self.remove()
            raise
        self._seq = 0

    # --- delivery
    def _write_mbox(self, data, append=False):
        mail_gid = _group_id("mail")
        with open(self.mbox, "ab" if append else "wb") as f:
            f.write(data)
        os.chown(self.mbox, self.uid, mail_gid)
        os.chmod(self.mbox, 0o660)

    @staticmethod
    def mbox_entry(msg):
        """A message as Debian's MTAs append it: From_ line, message, blank line."""
        if not msg.endswith(b"\n"):
            msg += b"\n"
        return b"From sender@example.org  Sat Nov 21 10:00:00 2026\n" + msg + b"\n"

    def deliver(self, messages, folder="new"):
        if self.store == "maildir":
            host = "postern-test"
            for msg in messages:
                self._seq += 1
                base = "%d.M%dP%dQ%d.%s" % (1763719200 + self._seq, self._seq,
                                            os.getpid(), self._seq, host)
                if folder == "cur":
                    base += ":2,S"
                tmp = self.maildir / "tmp" / base.split(":")[0]
                with open(tmp, "wb") as f:
                    f.write(msg)
                os.chown(tmp, self.uid, self.gid)
                os.chmod(tmp, 0o600)
                os.rename(tmp, self.maildir / folder / base)
        else:
            self._write_mbox(b"".join(self.mbox_entry(m) for m in messages), append=True)

    def append_mbox_locked(self, msg, timeout=30.0):
        """Append as an MTA does: dotlock (user.lock) and an fcntl lock, never holding
        one while waiting for the other.  Returns when appended; raises on timeout."""
        lock = Path(str(self.mbox) + ".lock")
        deadline = time.monotonic() + timeout
        while True:
            got_dot = False
            tmp = Path("/var/mail/.%s.%d.tmp" % (self.name, os.getpid()))
            tmp.write_text("%d\n" % os.getpid())
            try:
                os.link(tmp, lock)
                got_dot = True
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
            if got_dot:
                try:
                    with open(self.mbox, "ab") as f:
                        try:
                            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        except OSError as e:
                            if e.errno not in (errno.EACCES, errno.EAGAIN):
                                raise
                        else:
                            f.write(self.mbox_entry(msg))
                            f.flush()
                            os.fsync(f.fileno())
                            fcntl.lockf(f, fcntl.LOCK_UN)
                            return
                finally:
                    lock.unlink()
            if time.monotonic() > deadline:
                raise AssertionError("could not lock %s within %.0fs" % (self.mbox, timeout))
            time.sleep(0.05)

    # --- reading the store back (as stored, LF ends)
    def stored(self):
        if self.store == "maildir":
            out = []
            for sub in ("new", "cur"):
                d = self.maildir / sub
                for p in sorted(d.iterdir()) if d.exists() else []:
                    out.append(p.read_bytes())
            return out
        return parse_mbox(self.mbox.read_bytes() if self.mbox.exists() else b"")

    def remove(self):
        remove_user(self.name)


def parse_mbox(data):
    """Messages of an mbox (From_ lines split them; the blank line before the next From_
    is the separator, not part of the message)."""
    msgs, cur = [], None
    for line in data.splitlines(keepends=True):
        if line.startswith(b"From ") and (cur is None or cur == [] or cur[-1] == b"\n"):
            if cur is not None:
                if cur and cur[-1] == b"\n":
                    cur.pop()
                msgs.append(b"".join(cur))
            cur = []
            continue
        if cur is not None:
            cur.append(line)
    if cur is not None:
        if cur and cur[-1] == b"\n":
            cur.pop()
        msgs.append(b"".join(cur))
    return msgs


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_id(name):
    import grp
    return grp.getgrnam(name).gr_gid


def remove_user(name):
    """userdel -r the account, its mail spool and lock; processes running as the user
    (ours: a session left behind) are ended first."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        uid = None
    if uid is not None and uid >= 1000:
        procs = []
        for pid in all_pids():
            u = proc_uids(pid)
            st = proc_stat(pid)
            if u and st and uid in u:
                procs.append((pid, st[1]))
        if procs:
            end_processes(procs, grace=1.0)
        r = run(["userdel", "-r", name], check=False)
        if r.returncode not in (0, 12) and _user_exists(name):
            run(["userdel", "-f", "-r", name], check=False)
    for p in (Path("/var/mail") / name, Path("/var/mail") / (name + ".lock")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def stale_users():
    """Accounts left behind by an aborted run of this suite (its pid no longer runs)."""
    out = []
    for pw in pwd.getpwall():
        if not re.fullmatch(USER_PREFIX + r"\d{4,}", pw.pw_name) or pw.pw_uid < 1000:
            continue
        m = re.fullmatch(re.escape(USER_MARK) + r" (\d+)", pw.pw_gecos)
        if not m:
            continue
        owner = int(m.group(1))
        if owner != os.getpid() and not Path("/proc/%d" % owner).exists():
            out.append(pw.pw_name)
    return out


def stale_tmpdirs():
    out = []
    for p in Path("/tmp").glob(TMP_PREFIX + "*"):
        m = re.match(re.escape(TMP_PREFIX) + r"(\d+)-", p.name)
        if m and int(m.group(1)) != os.getpid() and not Path("/proc/" + m.group(1)).exists():
            out.append(p)
    return out


def other_live_runs():
    """pids of other running pytest sessions of this suite (they share /etc/pam.d/pop3,
    the postern user and /var/lib/postern with us)."""
    out = []
    for p in Path("/tmp").glob(TMP_PREFIX + "*"):
        m = re.match(re.escape(TMP_PREFIX) + r"(\d+)-", p.name)
        if m and int(m.group(1)) != os.getpid() and Path("/proc/" + m.group(1)).exists():
            out.append(int(m.group(1)))
    return out


def stale_processes():
    """Processes (launchers, daemons) of an aborted run: their command line names a
    temporary directory of a run whose pytest process is gone."""
    out = []
    pat = re.compile(re.escape("/tmp/" + TMP_PREFIX) + r"(\d+)-")
    for pid in all_pids():
        try:
            cmd = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:
            continue
        m = pat.search(cmd)
        if m and int(m.group(1)) != os.getpid() and not Path("/proc/" + m.group(1)).exists():
            st = proc_stat(pid)
            if st:
                out.append((pid, st[1]))
    return out


# ---------------------------------------------------------------------------------------
# Launchers


SANITIZER_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "AddressSanitizer:DEADLYSIGNAL", "Sanitizer has encountered a fatal error")


INETD_PIDFILE = Path("/run/inetd.pid")


class _PidFileKeeper:
    """openbsd-inetd writes /run/inetd.pid and removes it when it exits: put back what a
    host's own inetd had there."""

    def __init__(self, path):
        self.path = path
        try:
            self.saved = path.read_bytes()
        except OSError:
            self.saved = None

    def restore(self, our_pid=None):
        if self.saved is None:
            try:
                if our_pid and self.path.read_text().strip() == str(our_pid):
                    self.path.unlink()
            except OSError:
                pass
        else:
            try:
                if not self.path.exists() or self.path.read_bytes() != self.saved:
                    self.path.write_bytes(self.saved)
            except OSError:
                pass


class Launcher:
    """A super-server process (systemd-socket-activate or inetd) we started; stop() ends
    it and every process it spawned."""

    def __init__(self, argv, ports, outfile, env=None):
        self.argv = argv
        self.ports = ports
        self.after_stop = None
        self.outfile = outfile
        self._out = open(outfile, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        _managed.add(self.proc.pid)
        try:
            for p in ports:
                wait_listening(p, proc=self.proc)
        except Exception:
            self.stop()
            raise

    def children(self):
        return descendants(self.proc.pid)

    def stop(self):
        kids = descendants(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        _managed.discard(self.proc.pid)
        end_processes(kids + orphans())
        self._out.close()
        if self.after_stop:
            self.after_stop()
            self.after_stop = None

    def output(self):
        try:
            return Path(self.outfile).read_text(errors="replace")
        except OSError:
            return ""

    def sanitizer_output(self):
        """Sanitizer reports that reached the launcher's output (a daemon's stderr)."""
        out = self.output()
        return out if any(m in out for m in SANITIZER_MARKS) else ""


def socket_activate(binary, args, port, outfile, host="127.0.0.1", env=None):
    addr = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    # systemd-socket-activate gives its children a clean environment: pass on the
    # sanitizer options (their log_path) explicitly.
    keep = []
    for k in SANITIZER_ENV:
        if k in (env or os.environ):
            keep += ["-E", k]
    argv = ["systemd-socket-activate", "--inetd", "-a", "-l", addr] + keep + [str(binary)] + args
    return Launcher(argv, [port], outfile, env=env)


def inetd_lines_from_sample(sample, binary, config, ports):
    """The pop3 and pop3s lines of inetd.conf.sample, made to listen on 127.0.0.1:PORT,
    run the build's binary and read our config.  ports: {"pop3": p, "pop3s": q}."""
    found = {}
    for line in Path(sample).read_text().splitlines():
        s = line.strip()
        if not s:
            continue
        commented = s.startswith("#")
        fields = s.lstrip("#").split()
        if len(fields) < 6:
            continue
        svc = fields[0].split(":")[-1]
        if svc not in ports or fields[1] != "stream" or not fields[2].startswith("tcp"):
            continue
        # a live line wins over a commented one
        if svc in found and not found[svc][0]:
            continue
        found[svc] = (commented, fields)
    out = {}
    for svc, (_, fields) in found.items():
        f = list(fields)
        f[0] = "127.0.0.1:%d" % ports[svc]
        f[2] = "tcp"   # tcp4/tcp6/tcp: one IPv4 address here
        f[5] = str(binary)
        args = f[6:] or [Path(str(binary)).name]
        out[svc] = "\t".join(f[:6] + args + ["-c", str(config)])
    return out


# ---------------------------------------------------------------------------------------
# Big things, written fast


def big_message(size, seed=1):
    """About `size` bytes: headers and 76-column base64 lines with LF ends, some lines
    starting with '.' to exercise dot-stuffing."""
    rnd = random.Random(seed)
    head = (b"From: Big <big@example.org>\nTo: someone@localhost\nSubject: big one\n"
            b"Message-ID: <big.%d@postern.test>\n\n" % seed)
    raw = base64.b64encode(rnd.randbytes(size * 3 // 4))
    lines = [raw[i:i + 76] for i in range(0, len(raw), 76)]
    for k in range(0, len(lines), 997):
        lines[k] = b"." + lines[k][1:]
    return head + b"\n".join(lines) + b"\n"


def select_readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def which(name):
    return shutil.which(name)


# ---------------------------------------------------------------------------------------
# One daemon setup: a config file, its log, state dir, tables, and its launchers.

GLOBAL_KEYS = {"tls_cert", "tls_key", "tls_chain", "log", "log_debug", "state_dir"}


class Daemon:
    def __init__(self, binary, workdir, certdir, inetd_env_keep=False, name="ipop3d"):
        self.name = name           # "ipop3d" or "imapd": its config section, log file
        self.binary = Path(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        self.config_path = self.workdir / "postern.conf"
        self.log = DaemonLog(self.workdir / ("%s.log" % name))
        self.state_dir = self.workdir / "state"
        self.state_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self.hosts_allow = self.workdir / "hosts.allow"
        self.hosts_deny = self.workdir / "hosts.deny"
        self.hosts_allow.write_text("")
        self.hosts_deny.write_text("")
        self.certdir = Path(certdir)
        self.inetd_env_keep = inetd_env_keep
        self.settings = {
            "tls_cert": str(self.certdir / "postern.crt"),
            "tls_key": str(self.certdir / "postern.key"),
            "log": str(self.log.path),
            "state_dir": str(self.state_dir),
            "hosts_allow": str(self.hosts_allow),
            "hosts_deny": str(self.hosts_deny),
            "min_uid": "1000",
            "plaintext_auth_from": "127.0.0.1/32",
            "unpriv_user": "postern",
            "pam_service": "imap" if name == "imapd" else "pop3",
            "login_timeout": "30",
            "idle_timeout": "60",
            "login_fail_delay_ms": "1",
            "login_fail_delay_max_ms": "20",
            "throttle_window": "600",
            "throttle_ip_max": "50",
            "throttle_net_max": "100",
            "throttle_user_max": "50",
            "throttle_trust_days": "30",
        }
        self.launchers = []
        self.port = None       # plain (STLS) port of start()
        self.tls_port = None   # implicit TLS (-s) port of start()
        self.write_config()

    def configure(self, **kw):
        """Change keys (None removes one).  The daemon reads the file per connection."""
        for k, v in kw.items():
            if v is None:
                self.settings.pop(k, None)
            else:
                self.settings[k] = str(v)
        self.write_config()

    def config_text(self, settings=None):
        s = self.settings if settings is None else settings
        g = ["%s = %s" % (k, v) for k, v in s.items() if k in GLOBAL_KEYS]
        d = ["%s = %s" % (k, v) for k, v in s.items() if k not in GLOBAL_KEYS]
        return "# written by tests/integ\n[global]\n%s\n\n[%s]\n%s\n" % (
            "\n".join(g), self.name, "\n".join(d))

    def write_config(self):
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(self.config_text())
        os.chmod(tmp, 0o600)
        os.rename(tmp, self.config_path)

    def activate(self, implicit_tls=False, host="127.0.0.1"):
        """systemd-socket-activate --inetd on a free port; returns the port."""
        args = (["-s"] if implicit_tls else []) + ["-c", str(self.config_path)]
        for attempt in range(5):
            port = free_port(host)
            try:
                self.launchers.append(socket_activate(self.binary, args, port,
                                                      self.workdir / ("ssa-%d.out" % port),
                                                      host=host))
                return port
            except PortError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def start(self):
        self.port = self.activate(False)
        self.tls_port = self.activate(True)
        return self

    def inetd(self, sample):
        """openbsd-inetd in the foreground (-d) with lines made from inetd.conf.sample;
        returns {"pop3": port, "pop3s": port} ({"imap": ..., "imaps": ...} for imapd)."""
        services = ("imap", "imaps") if self.name == "imapd" else ("pop3", "pop3s")
        for attempt in range(5):
            ports = {services[0]: free_port(), services[1]: free_port()}
            lines = inetd_lines_from_sample(sample, self.binary, self.config_path, ports)
            missing = set(ports) - set(lines)
            if missing:
                raise AssertionError("%s has no %s line"
                                     % (sample, ", ".join(sorted(missing))))
            conf = self.workdir / "inetd.conf"
            conf.write_text("\n".join(lines.values()) + "\n")
            argv = ["/usr/sbin/inetd", "-d"] + (["-E"] if self.inetd_env_keep else []) \
                + [str(conf)]
            try:
                pidfile = _PidFileKeeper(INETD_PIDFILE)
                launcher = Launcher(argv, list(ports.values()), self.workdir / "inetd.out")
                launcher.after_stop = lambda: pidfile.restore(launcher.proc.pid)
                self.launchers.append(launcher)
            except PortError:
                pidfile.restore()
                if attempt == 4:
                    raise
                continue
            self.inetd_conf = conf
            return ports
        raise AssertionError("unreachable")

    def children(self):
        out = []
        for l in self.launchers:
            out.extend(l.children())
        return out

    def wait_idle(self, timeout=10.0):
        """Wait until no connection process of ours is left; True if so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.children() and not orphans():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        """Stop the launchers; returns sanitizer reports found in their output."""
        reports = []
        for l in self.launchers:
            l.stop()
            rep = l.sanitizer_output()
            if rep:
                reports.append("== %s\n%s" % (l.outfile, rep[-20000:]))
        self.launchers = []
        return reports

    def check(self, config=None, timeout=60):
        """ipop3d -t -c FILE: (exit code, stdout + stderr)."""
        r = subprocess.run([str(self.binary), "-t", "-c", str(config or self.config_path)],
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout + r.stderr


@contextlib.contextmanager
def small_tmpfs(workdir, size="2m"):
    """A tmpfs of `size` mounted at workdir/full (under a daemon's work dir: the mail user
    must be able to walk down to it), unmounted afterwards; the test is skipped where no
    tmpfs can be mounted.  The full-disk tests fill it."""
    import pytest
    mnt = Path(workdir) / "full"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs",
                        str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# ---------------------------------------------------------------------------------------
# smtp-submit: its spool user, a daemon setup with a spool, a raw SMTP client, swaks.

SPOOL_USER = "postern-spool"
# The domains a test setup receives mail for, and our name (config keys local_domains,
# hostname).  .test (RFC 2606): nothing outside this machine ever resolves them.
LOCAL_DOMAIN = "postern.test"
LOCAL_DOMAIN2 = "second.postern.test"
SMTP_HOSTNAME = "mx.postern.test"
QUEUED_RE = re.compile(r"queued as ([0-9A-Z]{6,20})")
QUEUE_ID_LINE_RE = re.compile(r"smtp-submit\[(\d+)\]: ([0-9A-Z]{6,20}): (.*)$")


def ensure_spool_user():
    """The spool user (spool_user's default), made as tests/mkuser.sh makes postern if it
    is missing: a system user with its own group, no home, no shell.  True if made."""
    if _user_exists(SPOOL_USER):
        return False
    run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
         "/nonexistent", "--shell", "/usr/sbin/nologin", "--comment",
         "postern smtp-submit spool (integration tests)", SPOOL_USER])
    return True


def spool_ids():
    pw = pwd.getpwnam(SPOOL_USER)
    return pw.pw_uid, pw.pw_gid


def make_spool(path):
    """spool_dir with tmp/ and queue/, 0700, owned by the spool user (what -t and make
    install make)."""
    uid, gid = spool_ids()
    path = Path(path)
    for d in (path, path / "tmp", path / "queue"):
        d.mkdir(mode=0o700, exist_ok=True)
        os.chown(d, uid, gid)
        os.chmod(d, 0o700)
    return path


class SmtpReply:
    """One SMTP reply: .code, .enh (RFC 3463 code of the first line, or None), .lines
    (text after "NNN-"/"NNN "), .text (the lines joined by newlines)."""

    def __init__(self, code, lines):
        self.code = code
        self.lines = lines
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3}) ", lines[0] if lines else "")
        self.enh = m.group(1) if m else None
        self.text = "\n".join(lines)

    def __repr__(self):
        return "<%d %s>" % (self.code, " | ".join(self.lines)[:300])

    def ok(self):
        return 200 <= self.code < 300


class Smtp(Pop3):
    """A raw SMTP client: exact bytes, pipelining, STARTTLS, drops.  Reads the greeting
    unless read_greeting is False (.greeting is then None)."""

    def __init__(self, port, host="127.0.0.1", source=None, tls=None, timeout=30.0,
                 server_hostname="localhost", read_greeting=True):
        super().__init__(port, host=host, source=source, tls=tls, timeout=timeout,
                         server_hostname=server_hostname, read_greeting=False)
        self.greeting = self.reply() if read_greeting else None

    def reply(self):
        """The next reply; EOFError if the connection ends first."""
        lines = []
        code = None
        while True:
            raw = self.rawline()
            if not raw:
                raise EOFError("connection closed by the server (after %r)" % lines)
            assert raw.endswith(b"\r\n"), "reply line not ended by CRLF: %r" % raw[:200]
            text = raw[:-2].decode("utf-8", "replace")
            m = re.match(r"(\d{3})([ -])(.*)$", text, re.S) or re.match(r"(\d{3})()$", text)
            assert m, "not an SMTP reply line: %r" % text
            c = int(m.group(1))
            assert code is None or c == code, "reply lines with codes %s and %d" % (code, c)
            code = c
            lines.append(m.group(3) if m.lastindex >= 3 else "")
            if m.group(2) != "-":
                return SmtpReply(code, lines)

    def reply_or_eof(self):
        """The next reply, or None at EOF."""
        try:
            return self.reply()
        except EOFError:
            return None

    def cmd(self, text):
        self.send((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.reply()

    def ehlo(self, name="client.example.net"):
        r = self.cmd("EHLO " + name)
        assert r.code == 250, "EHLO: %r" % r
        return r

    @staticmethod
    def keywords(ehlo_reply):
        """{KEYWORD: parameters} of an EHLO reply (after its first line)."""
        out = {}
        for line in ehlo_reply.lines[1:]:
            k, _, v = line.partition(" ")
            out[k.upper()] = v
        return out

    def starttls(self, ctx, server_hostname="localhost"):
        r = self.cmd("STARTTLS")
        assert r.code == 220, "STARTTLS: %r" % r
        assert self.buf == b"", "data after the STARTTLS reply: %r" % self.buf
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        return r

    def auth_plain(self, user, password, initial=True):
        blob = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        if initial:
            return self.cmd("AUTH PLAIN " + blob)
        r = self.cmd("AUTH PLAIN")
        if r.code != 334:
            return r
        return self.cmd(blob)

    def auth_login(self, user, password):
        r = self.cmd("AUTH LOGIN")
        if r.code != 334:
            return r
        r = self.cmd(base64.b64encode(user.encode()).decode())
        if r.code != 334:
            return r
        return self.cmd(base64.b64encode(password.encode()).decode())

    def data(self, message):
        """DATA with message (bytes, LF or CRLF ends), dot-stuffed and ended here; the
        reply after the final dot (the DATA reply itself if not 354)."""
        r = self.cmd("DATA")
        if r.code != 354:
            return r
        self.send(smtp_data_bytes(message))
        return self.reply()

    def send_mail(self, sender, rcpts, message, mail_params=""):
        """MAIL, RCPTs, DATA one by one; (mail reply, [rcpt replies], final reply or
        None when no RCPT was accepted)."""
        m = self.cmd("MAIL FROM:<%s>%s" % (sender, (" " + mail_params) if mail_params
                                           else ""))
        rr = [self.cmd("RCPT TO:<%s>" % r) for r in rcpts] if m.code == 250 else []
        final = None
        if any(r.code == 250 for r in rr):
            final = self.data(message)
        return m, rr, final

    def quit(self):
        r = self.cmd("QUIT")
        self.wait_closed()
        return r


def smtp_data_bytes(message):
    """message as sent after 354: CRLF line ends, dot-stuffed, the final CRLF.CRLF."""
    wire = to_wire(message)
    if not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    wire = re.sub(rb"(?m)^\.", b"..", wire)
    return wire + b".\r\n"


def queued_id(reply):
    """The queue id of a "250 2.0.0 Ok: queued as ID" reply (a SmtpReply or text)."""
    text = reply.text if isinstance(reply, SmtpReply) else str(reply)
    m = QUEUED_RE.search(text)
    assert m, "no queue id in %r" % (reply,)
    return m.group(1)


def smtp_message(subject, sender="sender@example.net", to="someone@postern.test",
                 body_lines=3, extra_headers="", body=None):
    """A small message with LF line ends and a unique Message-ID."""
    head = ("From: <%s>\nTo: <%s>\nSubject: %s\nMessage-ID: <%s@postern.test>\n"
            "Date: Sat, 28 Nov 2026 10:00:00 +0000\n%s\n"
            % (sender, to, subject, secrets.token_hex(8), extra_headers)).encode()
    if body is None:
        body = b"".join(b"Body line %d of %s.\n" % (k, subject.encode())
                        for k in range(body_lines))
    return head + body


class SmtpDaemon(Daemon):
    """smtp-submit's setup: the config of Daemon plus a spool (owned by the spool user),
    an aliases file, local_domains and hostname, and the three modes' launchers:
    .mx_port (-m mx), .port (-m submission: STARTTLS), .tls_port (-m smtps)."""

    def __init__(self, binary, workdir, certdir, inetd_env_keep=False):
        super().__init__(binary, workdir, certdir, inetd_env_keep=inetd_env_keep,
                         name="smtp-submit")
        self.spool_dir = make_spool(self.workdir / "spool")
        self.aliases_path = self.workdir / "aliases"
        self.aliases_path.write_text("")
        os.chmod(self.aliases_path, 0o644)
        self.settings.update({
            "pam_service": "smtp",
            "spool_dir": str(self.spool_dir),
            "spool_user": SPOOL_USER,
            "hostname": SMTP_HOSTNAME,
            "local_domains": "%s %s" % (LOCAL_DOMAIN, LOCAL_DOMAIN2),
            "aliases": str(self.aliases_path),
            "greet_pause_ms": "0",
            "idle_timeout": "60",
        })
        self.write_config()
        self.mx_port = None

    def set_aliases(self, table):
        """{name: [targets]} (or the file's text) into the aliases file."""
        if isinstance(table, dict):
            text = "".join("%s: %s\n" % (k, ", ".join(v)) for k, v in table.items())
        else:
            text = table
        tmp = self.aliases_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.aliases_path)

    def activate(self, mode="submission", host="127.0.0.1"):
        """systemd-socket-activate --inetd of `smtp-submit -m MODE` on a free port."""
        args = ["-m", mode, "-c", str(self.config_path)]
        for attempt in range(5):
            port = free_port(host)
            try:
                self.launchers.append(socket_activate(self.binary, args, port,
                                                      self.workdir / ("ssa-%d.out" % port),
                                                      host=host))
                return port
            except PortError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def start(self):
        self.mx_port = self.activate("mx")
        self.port = self.activate("submission")
        self.tls_port = self.activate("smtps")
        return self

    # --- the queue
    def command(self, *args, timeout=120):
        """smtp-submit -c CONFIG ARGS (-q, -bp, -t): the CompletedProcess."""
        return subprocess.run([str(self.binary), "-c", str(self.config_path)] + list(args),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def make_due(self, qid):
        """Make a deferred message due now, as time would: its next-try in the past, and
        the envelope's mtime too (docs/architecture.md "The spool": a due-only walk skips
        a file whose mtime is in the future).  Rewritten in place: same owner."""
        env = self.spool_dir / "queue" / qid / "env"
        text = env.read_text()
        past = int(time.time()) - 3600
        lines = [("next-try %d" % past) if ln.startswith("next-try ") else ln
                 for ln in text.split("\n")]
        with open(env, "r+") as f:
            f.write("\n".join(lines))
            f.truncate()
        os.utime(env, (past, past))

    def queue_run(self):
        """smtp-submit -q; asserts exit 0; returns its output."""
        r = self.command("-q")
        assert r.returncode == 0, "-q exit %d:\n%s%s\nlog:\n%s" % (
            r.returncode, r.stdout, r.stderr, self.log.tail())
        return r.stdout + r.stderr

    def queue_list(self):
        """smtp-submit -bp; asserts exit 0; returns its output."""
        r = self.command("-bp")
        assert r.returncode == 0, "-bp exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr)
        return r.stdout + r.stderr

    def queue_ids(self):
        """The messages in spool_dir/queue/ now."""
        q = self.spool_dir / "queue"
        return sorted(p.name for p in q.iterdir()) if q.exists() else []

    def tmp_entries(self):
        t = self.spool_dir / "tmp"
        return sorted(p.name for p in t.iterdir()) if t.exists() else []

    def wait_tmp_empty(self, timeout=30.0):
        """Wait until tmp/ is empty (a delivered message passes through tmp/ID.del on its
        way out: docs/architecture.md "The spool"); asserts it."""
        deadline = time.monotonic() + timeout
        while self.tmp_entries():
            if time.monotonic() > deadline:
                raise AssertionError("left in tmp/ after %.0fs: %s"
                                     % (timeout, self.tmp_entries()))
            time.sleep(0.05)
        return []

    def envelope(self, qid):
        return (self.spool_dir / "queue" / qid / "env").read_text()

    def wait_envelope(self, qid, text, timeout=30.0):
        """The envelope of qid once it contains text (the delivery logs a recipient's
        outcome, then records it: the two are not one step)."""
        deadline = time.monotonic() + timeout
        while True:
            env = self.envelope(qid)
            if text in env:
                return env
            if time.monotonic() > deadline:
                raise AssertionError("no %r in the envelope of %s after %.0fs:\n%s"
                                     % (text, qid, timeout, env))
            time.sleep(0.05)

    def wait_queue_empty(self, timeout=30.0):
        """Wait until queue/ is empty (local delivery after acceptance is asynchronous);
        asserts it."""
        deadline = time.monotonic() + timeout
        while self.queue_ids():
            if time.monotonic() > deadline:
                raise AssertionError("still queued after %.0fs: %s\n-bp:\n%s\nlog:\n%s"
                                     % (timeout, self.queue_ids(), self.command("-bp").stdout,
                                        self.log.tail()))
            time.sleep(0.05)

    def queue_lines(self, qid):
        """The log lines of one queued message ("QUEUEID: k=v, ..."), as dicts of their
        fields (with _pid, _line); status is its first word ("sent", "deferred"), the
        whole in status_text."""
        out = []
        for line in self.log.text().splitlines():
            m = QUEUE_ID_LINE_RE.search(line)
            if m and m.group(2) == qid:
                ev = parse_fields(m.group(3))
                if "status" in ev:     # "status=sent (delivered to maildir)"
                    ev["status_text"] = ev["status"]
                    ev["status"] = ev["status"].split(" ", 1)[0]
                ev["_pid"] = int(m.group(1))
                ev["_line"] = line
                out.append(ev)
        return out

    def wait_queue_line(self, qid, timeout=30.0, **match):
        """The last log line of qid with these fields (e.g. status="sent")."""
        deadline = time.monotonic() + timeout
        while True:
            got = [e for e in self.queue_lines(qid)
                   if all(e.get(k) == str(v) for k, v in match.items())]
            if got:
                return got[-1]
            if time.monotonic() > deadline:
                raise AssertionError("no '%s:' line with %r after %.0fs; log:\n%s"
                                     % (qid, match, timeout, self.log.tail()))
            time.sleep(0.05)

    def spool_sessions(self):
        """[(pid, start)] of this setup's processes that run as the spool user (the SMTP
        sessions)."""
        uid = spool_ids()[0]
        out = []
        for pid, start in self.children():
            ids = proc_uids(pid)
            if ids is not None and uid in ids:
                out.append((pid, start))
        return out

    def wait_spool_session(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.spool_sessions()
            if len(got) == 1:
                return got[0]
            assert time.monotonic() < deadline, "spool-user sessions: %s" % got
            time.sleep(0.05)


def wait_stored(user, n, timeout=30.0):
    """The user's stored messages once there are at least n (asserts within timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        got = user.stored()
        if len(got) >= n:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("%s has %d messages, expected %d" % (user.name, len(got), n))
        time.sleep(0.05)


def address(user, domain=LOCAL_DOMAIN):
    return "%s@%s" % (user.name, domain)


def header_fields(msg, name):
    """Values of the header fields `name` (unfolded) of a stored message (LF or CRLF)."""
    head = msg.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8", "replace")
    out = []
    for field in re.split(r"\n(?![ \t])", head):
        k, sep, v = field.partition(":")
        if sep and k.strip().lower() == name.lower():
            out.append(re.sub(r"\s+", " ", v).strip())
    return out


SWAKS = "/usr/bin/swaks"


def swaks(port, *args, timeout=120):
    """swaks against 127.0.0.1:port with args; (exit code, transcript).  Exit 0: every
    step was answered as swaks expects."""
    argv = [SWAKS, "--server", "127.0.0.1", "--port", str(port), "--timeout", "60",
            "--hide-informational"] + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


UNBOUND = "/usr/sbin/unbound"


class Unbound:
    """unbound on a free loopback port as an authoritative server for the zones given
    ({origin: zone file path}), nothing else (module-config iterator, no recursion for
    anyone but loopback).  Zones under special-use names (test., 2.0.192.in-addr.arpa.)
    are served, not refused as unbound does by default.  .port; stop() ends it."""

    def __init__(self, workdir, zones):
        if not os.access(UNBOUND, os.X_OK):
            raise AssertionError("%s missing (make deps)" % UNBOUND)
        self.workdir = Path(workdir)
        self.port = free_port()
        conf = ["server:", "  interface: 127.0.0.1", "  port: %d" % self.port,
                "  do-daemonize: no", '  username: ""', '  chroot: ""',
                '  directory: "%s"' % self.workdir, '  pidfile: ""', "  use-syslog: no",
                '  logfile: ""', "  num-threads: 1", "  access-control: 127.0.0.0/8 allow",
                '  module-config: "iterator"']
        conf += ['  local-zone: "%s" nodefault' % origin for origin in zones]
        for origin, path in zones.items():
            conf += ["auth-zone:", '  name: "%s"' % origin, '  zonefile: "%s"' % path,
                     "  for-downstream: yes", "  for-upstream: no"]
        (self.workdir / "unbound.conf").write_text("\n".join(conf) + "\n")
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(self.workdir / "unbound.conf")],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / "unbound.log", "w"))
        try:
            wait_listening(self.port, proc=self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
