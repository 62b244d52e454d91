"""The hand-off from the monitor to the session (issue 5).

- PAM's authentication runs in a short-lived child of the monitor: the session (and the
  monitor) hold no other account's password hash, while that child does (the positive
  control: the test pauses it inside the PAM stack and reads its memory).
- The monitor stays root for the whole session: it opens the PAM session before and
  closes it after (pam_exec records both), and pam_limits applies to the session.
- After PAM the name is the account's pw_name everywhere, even when a PAM module maps the
  typed name onto another account: mailbox, logs, throttle.
- The session holds neither root's log descriptor nor a writable lock file, logs through
  the monitor, and its peak memory is small.
- Every connection has a session id on its connect, login and logout lines.

The tests build a PAM module (tests/integ/pam/pam_ptest.c) into their temp dir and
install a PAM service file of their own, removed at the end.
"""

import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest

import helpers as h

PTEST_SRC = h.REPO / "tests" / "integ" / "pam" / "pam_ptest.c"


@pytest.fixture
def pam_service(daemon):
    """service(lines) -> name: a PAM service file /etc/pam.d/postern-test-XXXX with the
    given lines ({so} is the test module), set as the daemon's pam_service."""
    made = []
    so = daemon.workdir / "pam_ptest.so"
    h.run(["cc", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", str(so),
           str(PTEST_SRC)])

    def make(lines):
        name = "postern-test-%s" % secrets.token_hex(4)
        path = Path("/etc/pam.d") / name
        path.write_text("# postern integration test %d\n" % os.getpid()
                        + "\n".join(lines).format(so=so) + "\n")
        os.chmod(path, 0o644)
        made.append(path)
        daemon.configure(pam_service=name)
        return name

    yield make
    for p in made:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _shadow_hashes():
    """{user: hash} of every account with a real password hash."""
    out = {}
    for line in Path("/etc/shadow").read_text().splitlines():
        f = line.split(":")
        if len(f) > 1 and f[1].startswith("$"):
            out[f[0]] = f[1]
    return out


def _find_in_memory(pid, needles):
    """Which of needles (bytes) occur in pid's readable memory (root reads any process).
    Read in 1 MiB pieces that overlap by the longest needle; mappings over 1 GiB are
    skipped (the sanitizer build's shadow memory: reserved, never written)."""
    found, scanned = set(), 0
    keep = max(len(n) for n in needles)
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            if "r" not in parts[1] or (len(parts) > 5 and parts[5] in ("[vvar]",
                                                                        "[vsyscall]")):
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if hi - lo > 1 << 30:
                continue
            tail = b""
            for off in range(lo, hi, 1 << 20):
                try:
                    mem.seek(off)
                    piece = mem.read(min(1 << 20, hi - off))
                except (OSError, OverflowError, ValueError):
                    break
                scanned += len(piece)
                buf = tail + piece
                found.update(n for n in needles if n in buf)
                tail = buf[-keep:]
    return found, scanned


def _session_pid(daemon, uid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, _ in daemon.children():
            if h.proc_uids(pid) == (uid, uid):
                return pid
        time.sleep(0.05)
    raise AssertionError("no process runs as uid %d" % uid)


def _root_pids(daemon):
    return [pid for pid, _ in daemon.children() if h.proc_uids(pid) == (0, 0)]


def _ppid(pid):
    st = h.proc_stat(pid)
    return st[0] if st else None


def test_canonical_name_everywhere(daemon, make_user, pam_service):
    """A PAM module maps the typed "NED" onto the account: the mailbox opened, the log
    lines and the throttle's good-login memory all use the account's name."""
    user = make_user("mbox")
    user.deliver([h.make_message(i) for i in range(1, 3)])
    typed = "NED"
    # What a daemon that kept the typed name would open instead: /var/mail/NED, with a
    # different number of messages (owned by the user, so it would open fine).
    decoy = Path("/var/mail") / typed
    assert not decoy.exists(), "%s exists on this machine: cannot use it as a decoy" % decoy
    decoy.write_bytes(b"".join(h.MailUser.mbox_entry(h.make_message(i))
                               for i in range(1, 6)))
    os.chown(decoy, user.uid, user.gid)
    try:
        pam_service([
            "auth optional {so} map=%s:%s" % (typed, user.name),
            "auth required pam_unix.so",
            "account required pam_unix.so",
            "session required pam_unix.so",
        ])
        daemon.configure(mail_location="mbox:/var/mail/%u")
        daemon.start()
        with h.Pop3(daemon.port) as c:
            assert c.login(typed, user.password) == h.LOGGED_IN
            assert c.stat()[0] == 2, "opened the typed name's mailbox, not the account's"
            c.quit()
        login = daemon.log.wait("login", user=user.name)
        logout = daemon.log.wait("logout", user=user.name)
        assert login["session"] == logout["session"]
        assert not daemon.log.events("login", user=typed)
        assert not daemon.log.events("logout", user=typed)
        # (the throttle's side of the canonical name, a good login recorded for the
        # account, is in monitor.c; its table is HMAC-keyed with a per-host secret and
        # not read from here)
    finally:
        decoy.unlink()


def test_no_other_hash_in_session_memory(daemon, make_user, pam_service):
    """The session's and the monitor's memory hold no other account's hash; the PAM child
    does (positive control), and it is gone once the login is done."""
    user = make_user("maildir")
    other = make_user("maildir")      # its hash is what must not leak
    user.deliver([h.make_message(1)])
    hashes = _shadow_hashes()
    assert other.name in hashes and user.name in hashes
    pause = daemon.workdir / "pause"
    pause.write_text("")
    pam_service([
        "auth required pam_unix.so",
        "auth optional {so} pause=%s" % pause,
        "account required pam_unix.so",
        "session required pam_unix.so",
    ])
    daemon.start()
    with h.Pop3(daemon.port) as c:
        assert c.cmd("USER %s" % user.name).startswith("+OK")
        c.send(("PASS %s\r\n" % user.password).encode())
        # The PAM child: root, a child of the monitor (root), paused inside the stack
        # after pam_unix read /etc/shadow and checked the password.
        child = None
        deadline = time.monotonic() + 10
        while child is None and time.monotonic() < deadline:
            roots = _root_pids(daemon)
            child = next((p for p in roots if _ppid(p) in roots), None)
            time.sleep(0.05)
        assert child is not None, "no PAM child found"
        time.sleep(0.2)     # pam_unix is done before the pause module runs
        found, _ = _find_in_memory(child, [hashes[other.name].encode()])
        assert found, "positive control: the PAM child should hold /etc/shadow's bytes"
        pause.unlink()
        assert c.line() == h.LOGGED_IN
        spid = _session_pid(daemon, user.uid)
        assert h.proc_stat(child) is None or h.proc_stat(child)[2] == "Z"
        monitor = _ppid(spid)
        assert h.proc_uids(monitor) == (0, 0)
        assert c.stat()[0] == 1
        for pid, what in ((spid, "session"), (monitor, "monitor")):
            found, scanned = _find_in_memory(pid, [hs.encode() for hs in hashes.values()])
            assert scanned > 1 << 20, "could not read the %s's memory" % what
            leaked = [u for u, hs in hashes.items() if hs.encode() in found]
            assert not leaked, "%s memory holds the hashes of %s" % (what, leaked)
        c.quit()


def test_hung_session_module_is_bounded(daemon, user, pam_service):
    """A session module that never returns (a dead LDAP or NFS server) holds the
    connection's processes for AUTH_SESSION_TIMEOUT_S (30 s), not forever: then the
    client gets a temporary failure and every process of the connection is gone."""
    pam_service([
        "auth required pam_unix.so",
        "account required pam_unix.so",
        "session required {so} hang",
    ])
    daemon.start()
    with h.Pop3(daemon.port, timeout=90) as c:
        assert c.cmd("USER %s" % user.name).startswith("+OK")
        c.send(("PASS %s\r\n" % user.password).encode())
        # the monitor is inside pam_open_session now
        time.sleep(1)
        assert daemon.children(), "the connection's processes ended before the bound"
        reply = c.line()
        assert reply.startswith("-ERR [SYS/TEMP]"), reply
    assert not daemon.log.events("login", user=user.name)
    deadline = time.monotonic() + 60
    while daemon.children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not daemon.children(), "processes left: %r" % daemon.children()


def _fdinfo_flags(pid, fd):
    for line in open("/proc/%d/fdinfo/%s" % (pid, fd)):
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    return None


def test_session_fds_limits_pam_session(daemon, user, pam_service):
    """The session holds no log descriptor and no writable lock file; pam_limits of the
    PAM session applies to it; pam_open_session runs before and pam_close_session after
    it; its peak memory is reported and small."""
    limits = daemon.workdir / "limits.conf"
    limits.write_text("%s soft nofile 777\n%s hard nofile 777\n" % (user.name, user.name))
    record = daemon.workdir / "pam-exec.log"
    script = daemon.workdir / "pam-exec.sh"
    script.write_text('#!/bin/sh\necho "$PAM_TYPE $PAM_USER $PAM_RHOST" >> %s\n' % record)
    os.chmod(script, 0o755)
    pam_service([
        "auth required pam_unix.so",
        "account required pam_unix.so",
        "session required pam_limits.so conf=%s" % limits,
        "session optional pam_exec.so %s" % script,
        "session required pam_unix.so",
    ])
    daemon.start()
    with h.Pop3(daemon.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        spid = _session_pid(daemon, user.uid)
        assert c.stat()[0] == 3
        # pam_limits (conf= our file) ran in the monitor before the fork
        lim = open("/proc/%d/limits" % spid).read()
        m = re.search(r"^Max open files\s+(\d+)\s+(\d+)", lim, re.M)
        assert m and m.groups() == ("777", "777"), lim
        assert record.read_text().split("\n")[0] == "open_session %s 127.0.0.1" % user.name
        # descriptors: no log file, no lock file open for writing
        fds = {}
        for fd in os.listdir("/proc/%d/fd" % spid):
            try:
                fds[fd] = os.readlink("/proc/%d/fd/%s" % (spid, fd))
            except FileNotFoundError:
                pass
        assert str(daemon.log.path) not in fds.values(), fds
        lock = str(daemon.state_dir / "lock" / ("ipop3d.%d" % user.uid))
        lock_fds = [fd for fd, target in fds.items() if target == lock]
        assert lock_fds, "the session should keep the (read-only) lock: %s" % fds
        for fd in lock_fds:
            assert _fdinfo_flags(spid, fd) & os.O_ACCMODE == os.O_RDONLY
        for fd, target in fds.items():
            if target.startswith("/") and os.stat(target).st_uid == 0 \
                    and not target.startswith("/dev/"):
                assert _fdinfo_flags(spid, fd) & os.O_ACCMODE == os.O_RDONLY, \
                    "writable root-owned file %s in the session" % target
        assert "close_session" not in record.read_text()
        c.quit()
    logout = daemon.log.wait("logout", user=user.name)
    # the session's line came through the monitor: the monitor's pid is on it
    login = daemon.log.wait("login", user=user.name)
    assert logout["_pid"] == login["_pid"]
    deadline = time.monotonic() + 10
    while "close_session" not in record.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.read_text().splitlines() == [
        "open_session %s 127.0.0.1" % user.name, "close_session %s 127.0.0.1" % user.name]
    rss = int(logout["maxrss_kb"])
    print("session maxrss_kb=%d" % rss)
    assert rss > 0
    if not h.is_sanitizer_build(daemon.binary):
        # before the hand-off the session was the monitor after PAM: ~25 MB
        assert rss < 12000, "session peak RSS %d kB" % rss


def test_session_id_on_connect_login_logout(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    logout = pop3d.log.wait("logout", user=user.name)
    sid = logout["session"]
    assert re.fullmatch(r"[0-9a-f]{12}", sid)
    assert pop3d.log.events("login", user=user.name, session=sid)
    assert pop3d.log.events("connect", session=sid)
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    # The logout line goes through the monitor, which may write it just after the
    # worker has closed the client's connection: wait for it.
    deadline = time.monotonic() + 10
    while (len(pop3d.log.events("logout", user=user.name)) < 2 and
           time.monotonic() < deadline):
        time.sleep(0.02)
    ids = [e["session"] for e in pop3d.log.events("logout", user=user.name)]
    assert len(ids) == 2 and ids[0] != ids[1]


TESTD_SRC = h.REPO / "tests" / "integ" / "testd" / "testd.c"


@pytest.fixture
def testd(daemon):
    """The test-only daemon (tests/integ/testd/testd.c) built against this tree's release
    archives into the test's temp dir."""
    h.run(["make", "-s", "-C", str(h.REPO), "build/rel/libprivsep.a", "build/rel/libbase.a"],
          timeout=600)
    out = daemon.workdir / "testd"
    # the libraries the Makefile links every daemon with (make print-libs)
    libs = subprocess.run(["make", "-s", "-C", str(h.REPO), "print-libs"], check=True,
                          capture_output=True, text=True, timeout=60).stdout.split()
    h.run(["cc", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-iquote",
           str(h.REPO / "common"), "-O1", "-o", str(out), str(TESTD_SRC),
           str(h.REPO / "build/rel/libprivsep.a"), str(h.REPO / "build/rel/libbase.a"),
           *libs], timeout=120)
    return out


def _lines(sock, n, timeout=15.0):
    sock.settimeout(timeout)
    buf = b""
    while buf.count(b"\r\n") < n:
        data = sock.recv(4096)
        if not data:
            break
        buf += data
    return buf.decode(errors="replace").split("\r\n")[:n]


@pytest.mark.parametrize("identity", ["login", "spool", "none"])
def test_identity_policy(daemon, make_user, testd, identity):
    """The three identity policies, on a test-only protocol: the session runs as the login
    user, as spool_user with the login name in its session_info, or as spool_user with no
    login at all (smtp-submit on 25: the pre-login protocol starts it with
    worker_start_session(), and the HELO travels into its session_info)."""
    login = make_user("maildir")
    spool = make_user(None)
    conf = daemon.workdir / "testd.conf"
    conf.write_text(daemon.config_text().replace("[ipop3d]", "[smtp-submit]")
                    + "spool_user = %s\n" % spool.name)
    os.chmod(conf, 0o600)
    port = h.free_port()
    daemon.launchers.append(h.socket_activate(testd, ["-i", identity, "-c", str(conf)], port,
                                              daemon.workdir / "ssa-testd.out"))
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        assert _lines(s, 1) == ["+OK testd"]
        if identity != "none":
            s.sendall(("LOGIN %s %s\r\n" % (login.name, login.password)).encode())
        else:
            s.sendall(b"START client.example\r\n")
        line = _lines(s, 1)[0]
        fields = dict(kv.split("=", 1) for kv in line.split()[2:])
        want = {"login": (login.uid, login.name, "<%s>" % login.name, "PLAIN"),
                "spool": (spool.uid, spool.name, "<%s>" % login.name, "PLAIN"),
                "none": (spool.uid, spool.name, "<>", "-")}[identity]
        assert line.startswith("+OK session "), line
        assert (int(fields["uid"]), fields["pw"], fields["user"], fields["mech"]) == want
        assert int(fields["euid"]) == want[0]
        assert fields["rip"] == "127.0.0.1" and fields["lip"] == "127.0.0.1"
        assert int(fields["rport"]) == s.getsockname()[1]
        assert int(fields["lport"]) == port
        assert re.fullmatch(r"[0-9a-f]{12}", fields["id"])
        assert fields["helo"] == ("client.example" if identity == "none" else "-")
        assert fields["esmtp"] == ("1" if identity == "none" else "0")
        s.sendall(b"bye\r\n")
    text = daemon.log.text()
    assert re.search(r"smtp-submit\[\d+\]: connect: .*session=%s" % fields["id"], text), text
    if identity != "none":
        assert re.search(r"smtp-submit\[\d+\]: login: user=<%s>.*session=%s"
                         % (login.name, fields["id"]), text), text


def test_session_requests_delivery_as_root(daemon, make_user, testd):
    """session_request_delivery(): the session (spool_user) asks, the monitor forks a root
    child that runs server_proto.deliver with the queue id, without waiting for it in its
    message loop.  An id that is not the spool's form (here one made to walk out of a
    directory) is refused by the monitor as hostile: nothing runs, the session ends."""
    spool = make_user(None)
    conf = daemon.workdir / "testd.conf"
    conf.write_text(daemon.config_text().replace("[ipop3d]", "[smtp-submit]")
                    + "spool_user = %s\n" % spool.name)
    os.chmod(conf, 0o600)
    port = h.free_port()
    daemon.launchers.append(h.socket_activate(testd, ["-i", "none", "-c", str(conf)], port,
                                              daemon.workdir / "ssa-testd.out"))
    ids = ["0123456789AB", "0123456789AC"]
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        assert _lines(s, 1) == ["+OK testd"]
        s.sendall(b"START client.example\r\n")
        assert _lines(s, 1)[0].startswith("+OK session uid=%d " % spool.uid)
        for i in ids:
            s.sendall(("DELIVER %s\r\n" % i).encode())
            assert _lines(s, 1) == ["+OK deliver 0"]
        deadline = time.monotonic() + 10
        files = [daemon.state_dir / ("delivered-" + i) for i in ids]
        while not all(f.exists() and f.read_text().endswith("\n") for f in files):
            assert time.monotonic() < deadline, "no delivery ran"
            time.sleep(0.05)
        for f in files:
            assert f.read_text() == "uid=0 euid=0\n"
        # 12 characters, so the session sends it; the monitor must refuse it
        s.sendall(b"DELIVER ../../etc/xy\r\n")
        s.settimeout(15)
        rest = b""
        while True:
            data = s.recv(4096)
            if not data:
                break
            rest += data
    deadline = time.monotonic() + 10
    while "malformed message from session" not in daemon.log.text():
        assert time.monotonic() < deadline, daemon.log.text()
        time.sleep(0.05)
    assert not list(daemon.state_dir.glob("delivered-*x*"))
    assert not (daemon.workdir / "etc").exists()
