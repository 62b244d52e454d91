"""smtp-submit's deployment files: the inetd.conf.sample lines (smtp, submission,
submissions) under the real openbsd-inetd and the same modes under
systemd-socket-activate --inetd, with the real binary: greeting, EHLO, STARTTLS on 25 and
587, the TLS greeting on 465, AUTH through PAM service smtp; the fail2ban filter on the
daemon's own AUTH failure lines; the systemd units (systemd-analyze verify, the same
hardening as ipop3d's), the queue timer and the cron line; tests/mkuser.sh's spool user
and spool directory; `make install DESTDIR=...` and `make uninstall`.

The tests that start smtp-submit are skipped while smtp-submit/smtp-submit is still the
skeleton's stub (it says "not built yet"); POSTERN_SMTP_SUBMIT names another binary (the
ASan/UBSan build)."""

import os
import pwd
import re
import shutil
import smtplib
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

import helpers as h

SAMPLE = h.REPO / "inetd.conf.sample"
SYSTEMD = h.REPO / "systemd"
CRON = h.REPO / "cron" / "postern-queue"
FILTER = h.REPO / "fail2ban" / "postern.conf"
SPOOL_USER = "postern-spool"

# service name in inetd.conf.sample -> (port, -m mode, implicit TLS, systemd socket name)
MODES = {
    "smtp": (25, "mx", False, "postern-smtp"),
    "submission": (587, "submission", False, "postern-submission"),
    "submissions": (465, "smtps", True, "postern-smtps"),
}


def smtp_binary():
    p = Path(os.environ.get("POSTERN_SMTP_SUBMIT", "smtp-submit/smtp-submit"))
    return p if p.is_absolute() else h.REPO / p


def _is_stub(binary):
    r = subprocess.run([str(binary), "-t", "-c", "/nonexistent/postern.conf"],
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    return "not built yet" in r.stdout + r.stderr


@pytest.fixture(scope="module")
def smtp_bin():
    b = smtp_binary()
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail("no executable %s: build it first (make all)" % b)
    if _is_stub(b):
        pytest.skip("%s is the skeleton's stub (not built yet)" % b)
    return b


def _mkuser(state_dir, spool_dir, check=True):
    env = dict(os.environ, POSTERN_STATE_DIR=str(state_dir), POSTERN_SPOOL_DIR=str(spool_dir))
    r = subprocess.run(["sh", str(h.REPO / "tests" / "mkuser.sh")], capture_output=True,
                       text=True, timeout=60, env=env)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def pam_smtp():
    """/etc/pam.d/smtp from pam.d/smtp if absent; removed afterwards if we put it there."""
    pam = Path("/etc/pam.d/smtp")
    made = False
    if not pam.exists():
        shutil.copyfile(h.REPO / "pam.d" / "smtp", pam)
        os.chmod(pam, 0o644)
        made = True
    yield pam
    if made and not h.other_live_runs():
        try:
            pam.unlink()
        except FileNotFoundError:
            pass


class DeploySmtpDaemon(h.Daemon):
    """A config, spool, log and launchers for smtp-submit (helpers.Daemon's, with the
    [smtp-submit] section and its own spool_dir made by tests/mkuser.sh)."""

    def __init__(self, binary, workdir, certdir):
        super().__init__(binary, workdir, certdir, name="smtp-submit",
                         inetd_env_keep=h.is_sanitizer_build(binary))
        self.spool_dir = self.workdir / "spool"
        _mkuser(self.workdir / "mkuser-state", self.spool_dir)
        # an aliases file of our own: the host's /etc/aliases is none of this test's business
        aliases = self.workdir / "aliases"
        aliases.write_text("# no aliases\n")
        os.chmod(aliases, 0o644)
        self.configure(pam_service="smtp", spool_dir=self.spool_dir, spool_user=SPOOL_USER,
                       hostname="mx.postern.test", local_domains="postern.test",
                       aliases=aliases,
                       greet_pause_ms=300,
                       # no plaintext AUTH from loopback: AUTH only after TLS here
                       plaintext_auth_from="192.0.2.0/24")

    def activate_mode(self, mode):
        for attempt in range(5):
            port = h.free_port()
            try:
                self.launchers.append(h.socket_activate(
                    self.binary, ["-m", mode, "-c", str(self.config_path)], port,
                    self.workdir / ("ssa-%d.out" % port)))
                return port
            except h.PortError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def inetd_smtp(self):
        """openbsd-inetd -d with the smtp, submission and submissions lines of
        inetd.conf.sample; returns {service: port}."""
        for attempt in range(5):
            ports = {svc: h.free_port() for svc in MODES}
            lines = h.inetd_lines_from_sample(SAMPLE, self.binary, self.config_path, ports)
            assert set(lines) == set(MODES), lines
            conf = self.workdir / "inetd.conf"
            conf.write_text("\n".join(lines.values()) + "\n")
            argv = ["/usr/sbin/inetd", "-d"] + (["-E"] if self.inetd_env_keep else []) \
                + [str(conf)]
            pidfile = h._PidFileKeeper(h.INETD_PIDFILE)
            try:
                launcher = h.Launcher(argv, list(ports.values()), self.workdir / "inetd.out")
            except h.PortError:
                pidfile.restore()
                if attempt == 4:
                    raise
                continue
            launcher.after_stop = lambda: pidfile.restore(launcher.proc.pid)
            self.launchers.append(launcher)
            self.inetd_conf = conf
            return ports
        raise AssertionError("unreachable")

    def lines(self, event):
        """The log's `smtp-submit[PID]: EVENT: ...` lines."""
        pat = re.compile(r"smtp-submit\[\d+\]: %s: " % re.escape(event))
        return [l for l in self.log.text().splitlines() if pat.search(l)]


@pytest.fixture
def deploy_smtpd(smtp_bin, suite_env, certs, pam_smtp, request):
    d = DeploySmtpDaemon(smtp_bin, suite_env.root / ("smtp-" + request.node.name[:40]),
                         certs.dir)
    yield d
    reports = d.stop()
    assert not reports, "\n".join(reports)


def _connect(port, implicit_tls, ctx):
    """(client, greeting code, greeting text)."""
    if implicit_tls:
        c = smtplib.SMTP_SSL(context=ctx, timeout=30)
    else:
        c = smtplib.SMTP(timeout=30)
    # the name TLS verifies (SMTP_SSL and starttls() take it from _host, which only the
    # constructor sets; connect() is called here to keep the greeting)
    c._host = "localhost"
    code, msg = c.connect("127.0.0.1", port)
    return c, code, msg.decode()


def _check_mode(svc, port, ctx, user=None):
    """Greeting, EHLO, STARTTLS where it belongs, and AUTH on the submission ports."""
    _, mode, implicit, _ = MODES[svc]
    c, code, greeting = _connect(port, implicit, ctx)
    assert code == 220 and greeting.startswith("mx.postern.test"), greeting
    if implicit:
        assert c.sock.version() == "TLSv1.3"
    code, _ = c.ehlo("client.postern.test")
    assert code == 250
    feats = c.esmtp_features
    for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes"):
        assert ext in feats, (svc, feats)
    if not implicit:
        # before TLS: STARTTLS offered, no AUTH (not from plaintext_auth_from)
        assert "starttls" in feats and "auth" not in feats, (svc, feats)
        code, _ = c.starttls(context=ctx)
        assert code == 220 and c.sock.version() == "TLSv1.3"
        code, _ = c.ehlo("client.postern.test")
        assert code == 250
        feats = c.esmtp_features
    assert "starttls" not in feats, (svc, feats)
    if mode == "mx":
        assert "auth" not in feats, feats        # never on port 25
    else:
        assert set(feats["auth"].upper().split()) >= {"PLAIN", "LOGIN"}, feats
        if user is not None:
            code, _ = c.login(user.name, user.password)
            assert code == 235
    code, _ = c.docmd("QUIT")
    assert code == 221
    c.close()


def test_socket_activate_each_mode(deploy_smtpd, ctx, user):
    for svc in MODES:
        port = deploy_smtpd.activate_mode(MODES[svc][1])
        _check_mode(svc, port, ctx, user)
    logins = [h.parse_fields(l.split(": login: ", 1)[1])
              for l in deploy_smtpd.lines("login")]
    assert [e["user"] for e in logins] == [user.name, user.name]


def test_inetd_sample_lines(deploy_smtpd, ctx, user):
    ports = deploy_smtpd.inetd_smtp()
    conf = deploy_smtpd.inetd_conf.read_text()
    for svc, (_, mode, _, _) in MODES.items():
        assert "\t-m\t%s\t-c\t%s" % (mode, deploy_smtpd.config_path) in conf
        _check_mode(svc, ports[svc], ctx, user)
    assert len(deploy_smtpd.lines("login")) == 2


def test_smtp_submit_t(deploy_smtpd):
    """-t accepts the spool tests/mkuser.sh made, and says so."""
    r = subprocess.run([str(deploy_smtpd.binary), "-t", "-c", str(deploy_smtpd.config_path)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: spool: %s" % deploy_smtpd.spool_dir in r.stdout, r.stdout


@pytest.mark.skipif(shutil.which("fail2ban-regex") is None, reason="fail2ban is not installed")
def test_fail2ban_matches_the_daemons_auth_failures(deploy_smtpd, ctx, user):
    """Wrong passwords on 465 and 587 (after STARTTLS): the lines the daemon itself
    writes are what the shipped filter bans, with the client's address; the good login
    after them is not."""
    deploy_smtpd.configure(login_fail_delay_ms=1, login_fail_delay_max_ms=5)
    ports = {m: deploy_smtpd.activate_mode(m) for m in ("submission", "smtps")}
    fails = 0
    for mode, port in ports.items():
        for _ in range(2):
            c, code, _ = _connect(port, mode == "smtps", ctx)
            assert code == 220
            c.ehlo("client.postern.test")
            if mode == "submission":
                c.starttls(context=ctx)
                c.ehlo("client.postern.test")
            # one mechanism per attempt (login() would try the next one after a 535)
            c.user, c.password = user.name, "wrong-" + user.password
            mech = "LOGIN" if mode == "submission" else "PLAIN"
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                c.auth(mech, c.auth_login if mech == "LOGIN" else c.auth_plain)
            assert e.value.smtp_code == 535
            fails += 1
            c.close()
    c, _, _ = _connect(ports["smtps"], True, ctx)
    c.ehlo("client.postern.test")
    assert c.login(user.name, user.password)[0] == 235
    c.quit()
    # each failure is logged before its 535 is sent: all lines are there now
    assert len(deploy_smtpd.lines("auth-failed")) == fails, deploy_smtpd.log.tail()
    p = subprocess.run(["fail2ban-regex", "-o", "<ip>|<F-USER>", str(deploy_smtpd.log.path),
                        str(FILTER)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    got = [l for l in p.stdout.splitlines() if l.strip()]
    assert got == ["127.0.0.1|%s" % user.name] * fails, (got, deploy_smtpd.log.tail())


# ---------------------------------------------------------------------------------------
# The files themselves (no daemon needed)


def test_inetd_sample_has_the_three_modes():
    ports = {svc: 10000 + i for i, svc in enumerate(MODES)}
    lines = h.inetd_lines_from_sample(SAMPLE, "/usr/local/sbin/smtp-submit",
                                      "/etc/postern/postern.conf", ports)
    assert set(lines) == set(MODES)
    live = [l.split() for l in SAMPLE.read_text().splitlines()
            if l.split()[:1] and l.split()[0] in MODES]
    assert sorted(f[0] for f in live) == sorted(MODES)
    for f in live:
        # service stream tcp nowait root /usr/local/sbin/smtp-submit smtp-submit -m MODE
        assert f[1:7] == ["stream", "tcp", "nowait", "root", "/usr/local/sbin/smtp-submit",
                          "smtp-submit"], f
        assert f[7:] == ["-m", MODES[f[0]][1]], f
    # /etc/services knows the three names (openbsd-inetd looks them up)
    services = Path("/etc/services").read_text()
    for svc, (port, _, _, _) in MODES.items():
        assert re.search(r"^%s\s+%d/tcp" % (svc, port), services, re.M), svc


def _keys(text, drop=("ExecStart", "SyslogIdentifier", "Description", "TasksMax")):
    return sorted(l for l in text.splitlines()
                  if re.match(r"^[A-Z]\w+=", l) and not l.startswith(drop))


def test_systemd_units():
    pop = (SYSTEMD / "postern-pop3@.service").read_text()
    pop_sock = (SYSTEMD / "postern-pop3.socket").read_text()
    for svc, (port, mode, _, unit) in MODES.items():
        sock = (SYSTEMD / ("%s.socket" % unit)).read_text()
        assert "ListenStream=%d\n" % port in sock and "Accept=yes\n" in sock
        assert _keys(sock, ("ListenStream", "Description")) == \
            _keys(pop_sock, ("ListenStream", "Description"))
        s = (SYSTEMD / ("%s@.service" % unit)).read_text()
        assert "ExecStart=/usr/local/sbin/smtp-submit -m %s\n" % mode in s
        assert "SyslogIdentifier=smtp-submit\n" in s and "TasksMax=32\n" in s
        # the hardening of ipop3d's unit, line for line (TasksMax: delivery processes)
        assert _keys(s) == _keys(pop), unit
        # /var (spool, /var/mail) and /home stay writable: full, not strict, no ProtectHome
        assert "ProtectSystem=full\n" in s and "ProtectHome" not in s.replace(
            "# No ProtectHome=", "")
        assert "ReadOnlyPaths" not in s and "InaccessiblePaths" not in s
    q = (SYSTEMD / "postern-queue.service").read_text()
    assert "Type=oneshot\n" in q and "ExecStart=/usr/local/sbin/smtp-submit -q\n" in q
    assert "CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_KILL\n" in q
    assert "ProtectSystem=full\n" in q
    t = (SYSTEMD / "postern-queue.timer").read_text()
    assert "OnCalendar=*:0/5\n" in t and "WantedBy=timers.target" in t


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_units_verify(tmp_path):
    """systemd-analyze verify passes every unit (the binary's path pointed at the build,
    since verify checks that ExecStart is executable)."""
    binary = smtp_binary()
    assert binary.is_file()
    names = [p.name for p in SYSTEMD.iterdir()
             if p.name.startswith(("postern-smtp", "postern-submission", "postern-queue"))]
    assert len(names) == 8, names
    for n in names:
        (tmp_path / n).write_text((SYSTEMD / n).read_text().replace(
            "/usr/local/sbin/smtp-submit", str(binary)))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] +
                       [str(tmp_path / n) for n in sorted(names)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_cron_line():
    text = CRON.read_text()
    assert "." not in CRON.name            # cron skips /etc/cron.d files with a dot
    jobs = [l for l in text.splitlines() if l and not l.startswith("#") and "=" not in l]
    assert len(jobs) == 1
    f = jobs[0].split(None, 6)
    assert f[:6] == ["*/5", "*", "*", "*", "*", "root"], f
    assert f[6] == ("[ -x /usr/local/sbin/smtp-submit ] && "
                    "/usr/local/sbin/smtp-submit -q"), f
    # the command as cron's /bin/sh runs it: with no binary there, quietly nothing
    r = subprocess.run(["/bin/sh", "-c", f[6].replace("/usr/local/sbin", "/nonexistent")],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout == "" and r.stderr == ""


def _mode(p):
    st = os.lstat(p)
    return pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)


def test_mkuser_makes_the_spool(tmp_path):
    os.chmod(tmp_path, 0o755)
    spool = tmp_path / "var" / "spool" / "postern"
    _mkuser(tmp_path / "state", spool)
    pwd.getpwnam(SPOOL_USER)
    for d in (spool, spool / "tmp", spool / "queue"):
        assert d.is_dir() and not d.is_symlink()
        assert _mode(d) == (SPOOL_USER, 0o700), d
    assert _mode(tmp_path / "state") == ("root", 0o700)
    # again: nothing changes, and it says so
    r = _mkuser(tmp_path / "state", spool)
    assert "%s is ready" % spool in r.stdout
    # a wrong mode or owner is not adopted (it might be another program's directory)
    os.chmod(spool / "queue", 0o755)
    r = _mkuser(tmp_path / "state", spool, check=False)
    assert r.returncode == 1 and "chmod 0700 %s/queue" % spool in r.stderr
    assert _mode(spool / "queue") == (SPOOL_USER, 0o755)
    os.chmod(spool / "queue", 0o700)
    os.chown(spool / "tmp", 0, 0)
    r = _mkuser(tmp_path / "state", spool, check=False)
    assert r.returncode == 1 and "chown" in r.stderr
    # a symlink in place of the spool is refused, not followed
    os.chown(spool / "tmp", pwd.getpwnam(SPOOL_USER).pw_uid, -1)
    other = tmp_path / "other"
    other.mkdir()
    link = tmp_path / "link-spool"
    link.symlink_to(other)
    r = _mkuser(tmp_path / "state", link, check=False)
    assert r.returncode == 1
    assert list(other.iterdir()) == [] and _mode(other) == ("root", 0o755)


def test_make_install_destdir(tmp_path):
    """make install DESTDIR=... PREFIX=/usr stages smtp-submit with the rest; the units
    and the cron line name the staged binary's path; uninstall removes them and leaves
    the configuration."""
    dest = tmp_path / "stage"
    r = subprocess.run(["make", "-s", "-C", str(h.REPO), "install", "DESTDIR=%s" % dest,
                        "PREFIX=/usr"], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    sbin = dest / "usr" / "sbin" / "smtp-submit"
    assert sbin.is_file() and stat.S_IMODE(sbin.stat().st_mode) == 0o755
    assert sbin.read_bytes() == (h.REPO / "smtp-submit" / "smtp-submit").read_bytes()
    assert (dest / "etc" / "pam.d" / "smtp").read_text() == \
        (h.REPO / "pam.d" / "smtp").read_text()
    units = dest / "usr" / "lib" / "systemd" / "system"
    for svc, (_, mode, _, unit) in MODES.items():
        assert (units / ("%s.socket" % unit)).is_file()
        s = (units / ("%s@.service" % unit)).read_text()
        assert "ExecStart=/usr/sbin/smtp-submit -m %s\n" % mode in s
    assert "ExecStart=/usr/sbin/smtp-submit -q\n" in (units / "postern-queue.service").read_text()
    assert (units / "postern-queue.timer").read_text() == \
        (SYSTEMD / "postern-queue.timer").read_text()
    cron = dest / "usr" / "share" / "postern" / "cron" / "postern-queue"
    assert "/usr/sbin/smtp-submit -q" in cron.read_text()
    assert "/usr/local/sbin" not in cron.read_text()
    for f in [cron] + list(units.iterdir()):
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
    sample = (dest / "usr" / "share" / "postern" / "inetd.conf.sample").read_text()
    assert "smtp-submit -m submission" in sample
    # no spool or user in a staged tree: that is the package's postinst (mkuser.sh)
    assert not (dest / "var").exists()
    assert (dest / "usr" / "share" / "postern" / "mkuser.sh").is_file()

    r = subprocess.run(["make", "-s", "-C", str(h.REPO), "uninstall", "DESTDIR=%s" % dest,
                        "PREFIX=/usr"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    left = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert left == ["etc/pam.d/imap", "etc/pam.d/pop3", "etc/pam.d/smtp",
                    "etc/postern/postern.conf"], left


# ---------------------------------------------------------------------------------------
# The units' capability sets, with the real binary: systemd cannot run here, so the
# bounding set of a unit is applied with setpriv(1), which is what
# CapabilityBoundingSet= does (root keeps only those capabilities across execve).


def _unit_caps(unit):
    text = (SYSTEMD / unit).read_text()
    m = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M)
    assert m, unit
    return m.group(1).split()


def _setpriv(caps):
    """argv prefix: run as root with only `caps` (CAP_X names) in the bounding set."""
    names = ",".join("+" + c[4:].lower() for c in caps)
    return ["setpriv", "--bounding-set=-all" + ("," + names if names else ""),
            "--inh-caps=-all"]


def _submit(port, ctx, user, subject):
    c, code, _ = _connect(port, False, ctx)
    assert code == 220
    c.ehlo("client.postern.test")
    c.starttls(context=ctx)
    c.ehlo("client.postern.test")
    assert c.login(user.name, user.password)[0] == 235
    addr = "%s@postern.test" % user.name
    msg = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nbody\r\n" % (addr, addr, subject)
    c.sendmail(addr, [addr], msg)
    c.quit()


def _copies(user, subject):
    """How many messages with this subject are in the user's Maildir/new."""
    new = Path(pwd.getpwnam(user.name).pw_dir) / "Maildir" / "new"
    want = ("Subject: %s\n" % subject).encode()
    return sum(1 for f in new.iterdir() if want in f.read_bytes().replace(b"\r\n", b"\n"))


def _delivered(user, subject, timeout=15.0):
    """True once a message with this subject is in the user's Maildir/new."""
    deadline = h.time.monotonic() + timeout
    while True:
        if _copies(user, subject):
            return True
        if h.time.monotonic() > deadline:
            return False
        h.time.sleep(0.1)


def _queued(d):
    return sorted(p.name for p in (d.spool_dir / "queue").iterdir())


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="no setpriv (util-linux)")
def test_unit_capabilities_suffice_for_delivery(deploy_smtpd, ctx, user):
    """Under postern-submission@.service's bounding set a submitted message is queued
    and delivered at once, one copy, and leaves the spool; the same set less
    CAP_SYS_CHROOT (which the worker's empty root needs) takes no mail at all, which shows
    that the bounding set is what the daemon runs with.  (postern-queue.service's set for
    -q: test_smtp_queue.py's setpriv test, from the smtp-deliver branch.)"""
    d = deploy_smtpd
    caps = _unit_caps("postern-submission@.service")
    for unit in ("postern-smtp@.service", "postern-smtps@.service"):
        assert _unit_caps(unit) == caps

    def activate(capset):
        port = h.free_port()
        d.launchers.append(h.socket_activate(
            "setpriv", _setpriv(capset)[1:] + [str(d.binary), "-m", "submission", "-c",
                                               str(d.config_path)],
            port, d.workdir / ("ssa-%d.out" % port)))
        return port

    port = activate(caps)
    _submit(port, ctx, user, "with the unit's capabilities")
    assert _delivered(user, "with the unit's capabilities"), d.log.tail()
    assert _copies(user, "with the unit's capabilities") == 1
    deadline = h.time.monotonic() + 10
    while _queued(d) and h.time.monotonic() < deadline:
        h.time.sleep(0.1)
    assert _queued(d) == []

    port = activate([c for c in caps if c != "CAP_SYS_CHROOT"])
    # the worker cannot enter its empty root: the connection ends before a greeting
    with pytest.raises(smtplib.SMTPServerDisconnected):
        _submit(port, ctx, user, "without CAP_SYS_CHROOT")
    assert d.lines("worker")[-1].endswith("cannot drop privileges: Operation not permitted")
    assert _copies(user, "without CAP_SYS_CHROOT") == 0
    assert _queued(d) == []
