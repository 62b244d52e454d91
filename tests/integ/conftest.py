"""Fixtures of the ipop3d integration tests.

Runs as root: it makes throwaway system accounts (pt + digits), installs
/etc/pam.d/pop3 from pam.d/pop3 if absent, runs tests/mkuser.sh if the user postern is
missing, and starts ipop3d under systemd-socket-activate and openbsd-inetd on free
127.0.0.1 ports.  Everything it adds is removed at the end, also after a failure, and a
leftover of an aborted run is removed at the start.

POSTERN_IPOP3D: the binary under test (default ipop3d/ipop3d; build/san/ipop3d/ipop3d for
the ASan/UBSan build); POSTERN_IMAPD the same for imapd (tests/integ/test_imap_*.py),
POSTERN_SMTP_SUBMIT for smtp-submit (tests/integ/test_smtp_*.py; they also make the spool
user postern-spool if it is missing).  Sanitizer reports go to a directory of this run; a test during
which one appears fails with the report.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import helpers as h
import netns
from netns import lab, make_lab, netns_bins, _two_domains_module  # noqa: F401 fixtures

PAM_FILE = Path("/etc/pam.d/pop3")
PAM_FILES = (PAM_FILE, Path("/etc/pam.d/imap"), Path("/etc/pam.d/smtp"))


def _fail_setup(msg):
    pytest.exit("integration setup: " + msg, returncode=1)


@pytest.fixture(scope="session")
def binary():
    b = h.binary_path()
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail("no executable %s: build it first (make all, or make SAN=1 ...)" % b)
    return b


@pytest.fixture(scope="session")
def sanitizer_build(binary):
    return h.is_sanitizer_build(binary)


@pytest.fixture(scope="session", autouse=True)
def suite_env():
    """Root check, leftovers of an aborted run, PAM service, the postern user, temp root,
    sanitizer log directory; undone at the end."""
    if os.geteuid() != 0:
        pytest.skip("the integration tests run as root (accounts, PAM, launchers)")
    h.set_child_subreaper()

    # Leftovers of an aborted run: processes, accounts, temporary directories.
    h.end_processes(h.stale_processes())
    for name in h.stale_users():
        h.remove_user(name)
    for d in h.stale_tmpdirs():
        shutil.rmtree(d, ignore_errors=True)
    netns.sweep_stale()     # network namespaces of the issue-8 tests (tests/integ/netns.py)

    created = []
    for pam in PAM_FILES:
        if pam.exists():
            continue
        src = h.REPO / "pam.d" / pam.name
        if not src.is_file():
            _fail_setup("%s is missing and so is %s" % (pam, src))
        shutil.copyfile(src, pam)
        os.chmod(pam, 0o644)
        created.append(("file", pam))
    try:
        pwd.getpwnam("postern")
    except KeyError:
        state = Path("/var/lib/postern")
        if not state.exists():
            created.append(("dir", state))
        script = h.REPO / "tests" / "mkuser.sh"
        if not script.is_file():
            _fail_setup("the user postern is missing and so is tests/mkuser.sh")
        r = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=60)
        try:
            pwd.getpwnam("postern")
        except KeyError:
            _fail_setup("sh tests/mkuser.sh did not make the user postern: %s%s"
                        % (r.stdout, r.stderr))
        created.append(("user", "postern"))

    root = Path(tempfile.mkdtemp(prefix="%s%d-" % (h.TMP_PREFIX, os.getpid())))
    os.chmod(root, 0o755)
    san = root / "san"
    san.mkdir()
    os.chmod(san, 0o1777)
    old_env = {k: os.environ.get(k) for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")}
    asan = os.environ.get("ASAN_OPTIONS", "")
    ubsan = os.environ.get("UBSAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = ":".join(x for x in (asan, "log_path=%s/asan" % san) if x)
    os.environ["UBSAN_OPTIONS"] = ":".join(
        x for x in (ubsan, "print_stacktrace=1", "log_path=%s/ubsan" % san) if x)

    yield SimpleNamespace(root=root, san=san)

    h.end_processes(h.orphans())
    for k, v in old_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if h.other_live_runs():
        created = []    # another run still uses them: leave these prerequisites in place
    for kind, what in reversed(created):
        if kind == "file":
            try:
                Path(what).unlink()
            except FileNotFoundError:
                pass
        elif kind == "user":
            subprocess.run(["userdel", what], capture_output=True)
        elif kind == "dir":
            shutil.rmtree(what, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def certs(suite_env):
    """mkcert.sh -d DIR localhost 127.0.0.1 ::1, once ECDSA (default) and once RSA."""
    out = {}
    for kind in ("ecdsa", "rsa"):
        d = suite_env.root / ("tls-" + kind)
        argv = ["sh", str(h.REPO / "mkcert.sh"), "-d", str(d)]
        if kind == "rsa":
            argv += ["-t", "rsa"]
        h.run(argv + ["localhost", "127.0.0.1", "::1"], timeout=120)
        for f in ("ca.crt", "postern.crt", "postern.key"):
            assert (d / f).is_file(), "mkcert.sh made no %s" % (d / f)
        out[kind] = d
    return SimpleNamespace(dir=out["ecdsa"], ca=out["ecdsa"] / "ca.crt",
                           rsa_dir=out["rsa"], rsa_ca=out["rsa"] / "ca.crt")


@pytest.fixture
def ctx(certs):
    """A verifying client TLS context for the ECDSA certificate."""
    return h.client_context(certs.ca)


@pytest.fixture
def make_user():
    """make_user(store="maildir"|"mbox"|None, uid=None) -> helpers.MailUser; removed at
    teardown (userdel -r and /var/mail/NAME) whatever happened."""
    made = []

    def make(store="maildir", uid=None):
        u = h.MailUser(store=store, uid=uid)
        made.append(u)
        return u

    yield make
    for u in made:
        u.remove()


@pytest.fixture
def user(make_user):
    """A Maildir user with three messages."""
    u = make_user("maildir")
    u.deliver([h.make_message(i) for i in range(1, 4)])
    return u


@pytest.fixture(params=["maildir", "mbox"])
def store_user(request, make_user):
    """Each store in turn: a user with five messages."""
    u = make_user(request.param)
    u.deliver([h.make_message(i) for i in range(1, 6)])
    return u


def _san_reports(san_dir):
    return sorted(p for p in Path(san_dir).iterdir() if p.is_file())


@pytest.fixture
def daemon(binary, certs, suite_env, sanitizer_build, request):
    """A config of this test's own (log file, state dir, hosts tables); no launcher yet."""
    before = set(_san_reports(suite_env.san))
    workdir = suite_env.root / ("t-" + request.node.name.replace("/", "_")[:80])
    if workdir.exists():
        shutil.rmtree(workdir)
    d = h.Daemon(binary, workdir, certs.dir, inetd_env_keep=sanitizer_build)
    yield d
    reports = d.stop()
    new = [p for p in _san_reports(suite_env.san) if p not in before]
    reports += ["== %s\n%s" % (p.name, p.read_text(errors="replace")[:20000]) for p in new]
    for p in new:
        p.rename(p.with_name("seen-" + p.name))
    if reports:
        pytest.fail("sanitizer reports during this test:\n" + "\n".join(reports),
                    pytrace=False)


@pytest.fixture(scope="session")
def imap_binary():
    b = h.binary_path("imapd")
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail("no executable %s: build it first (make all, or make SAN=1 ...)" % b)
    return b


@pytest.fixture
def imap_daemon(imap_binary, certs, suite_env, request):
    """imapd's config of this test's own (as daemon above); no launcher yet."""
    san = h.is_sanitizer_build(imap_binary)
    before = set(_san_reports(suite_env.san))
    workdir = suite_env.root / ("i-" + request.node.name.replace("/", "_")[:80])
    if workdir.exists():
        shutil.rmtree(workdir)
    d = h.Daemon(imap_binary, workdir, certs.dir, inetd_env_keep=san, name="imapd")
    yield d
    reports = d.stop()
    new = [p for p in _san_reports(suite_env.san) if p not in before]
    reports += ["== %s\n%s" % (p.name, p.read_text(errors="replace")[:20000]) for p in new]
    for p in new:
        p.rename(p.with_name("seen-" + p.name))
    if reports:
        pytest.fail("sanitizer reports during this test:\n" + "\n".join(reports),
                    pytrace=False)


@pytest.fixture
def imapd(imap_daemon):
    """imapd under systemd-socket-activate: .port (plain, STARTTLS), .tls_port (-s)."""
    return imap_daemon.start()


@pytest.fixture
def pop3d(daemon):
    """The daemon under systemd-socket-activate: .port (plain, STLS) and .tls_port (-s)."""
    return daemon.start()


@pytest.fixture(scope="session")
def smtp_binary():
    b = h.binary_path("smtp-submit")
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail("no executable %s: build it first (make all, or make SAN=1 ...)" % b)
    return b


@pytest.fixture(scope="session")
def spool_user(suite_env):
    """The spool user postern-spool (made as tests/mkuser.sh makes postern if missing;
    removed at the end if made here and no other run of the suite is live)."""
    made = h.ensure_spool_user()
    yield h.SPOOL_USER
    if made and not h.other_live_runs():
        subprocess.run(["userdel", h.SPOOL_USER], capture_output=True)


@pytest.fixture
def smtp_daemon(smtp_binary, spool_user, certs, suite_env, request):
    """smtp-submit's config and spool of this test's own (helpers.SmtpDaemon); no
    launcher yet.  Sanitizer reports during the test (also of -q, -bp) fail it."""
    san = h.is_sanitizer_build(smtp_binary)
    before = set(_san_reports(suite_env.san))
    workdir = suite_env.root / ("s-" + request.node.name.replace("/", "_")[:80])
    if workdir.exists():
        shutil.rmtree(workdir)
    d = h.SmtpDaemon(smtp_binary, workdir, certs.dir, inetd_env_keep=san)
    yield d
    reports = d.stop()
    new = [p for p in _san_reports(suite_env.san) if p not in before]
    reports += ["== %s\n%s" % (p.name, p.read_text(errors="replace")[:20000]) for p in new]
    for p in new:
        p.rename(p.with_name("seen-" + p.name))
    if reports:
        pytest.fail("sanitizer reports during this test:\n" + "\n".join(reports),
                    pytrace=False)


@pytest.fixture
def smtpd(smtp_daemon):
    """smtp-submit under systemd-socket-activate: .mx_port (-m mx), .port (-m submission)
    and .tls_port (-m smtps)."""
    return smtp_daemon.start()
