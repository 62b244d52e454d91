"""fail2ban/postern.conf: the filter matches every failure line of ipop3d, imapd and
smtp-submit, in syslog form and in the daemons' own log-file form, with the right address,
and nothing else.  fail2ban/postern.jail.sample passes fail2ban's configuration test.

Uses the real fail2ban-regex and fail2ban-client (Debian package fail2ban).  The lines
below are in the exact forms the monitor writes (common/privsep/monitor.c); lines the real
daemons write are matched too: test_imap_login.py (imapd) and test_smtp_launchers.py
(test_fail2ban_matches_the_daemons_auth_failures: smtp-submit's AUTH on 587 and 465)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILTER = ROOT / "fail2ban" / "postern.conf"
JAIL = ROOT / "fail2ban" / "postern.jail.sample"

pytestmark = pytest.mark.skipif(shutil.which("fail2ban-regex") is None,
                                reason="fail2ban is not installed (tests/install-deps.sh)")

# (line, address fail2ban must ban, user it reports)
MATCH = [
    ("Nov 22 10:00:00 mx ipop3d[123]: auth-failed: user=<ned>, method=PLAIN, reason=password, rip=192.0.2.7",
     "192.0.2.7", "ned"),
    ("Nov 22 10:00:01 mx ipop3d[123]: auth-failed: user=<?>, method=USER, reason=unknown-user, rip=192.0.2.8",
     "192.0.2.8", "?"),
    ("Nov 22 10:00:02 mx ipop3d[123]: auth-throttled: user=<ned>, rip=192.0.2.9",
     "192.0.2.9", "ned"),
    ("Nov 22 10:00:03 mx imapd[124]: auth-failed: user=<ned>, method=LOGIN, reason=password, rip=2001:db8::7",
     "2001:db8::7", "ned"),
    ("Nov 22 10:00:04 mx imapd[124]: auth-throttled: user=<ned>, rip=2001:db8:0:1::2",
     "2001:db8:0:1::2", "ned"),
    ("Nov 22 10:00:05 mx smtp-submit[125]: auth-failed: user=<ned>, method=PLAIN, reason=password, rip=192.0.2.10",
     "192.0.2.10", "ned"),
    ("Nov 22 10:00:06 mx smtp-submit[125]: auth-throttled: user=<ned>, rip=192.0.2.11",
     "192.0.2.11", "ned"),
    # the daemons' own log file (log = /path in postern.conf)
    ("2026-11-22T10:00:07 ipop3d[126]: auth-failed: user=<ned>, method=PLAIN, reason=password, rip=192.0.2.12",
     "192.0.2.12", "ned"),
    ("2026-11-22T10:00:08 ipop3d[126]: auth-failed: user=<?>, method=USER, reason=unknown-user, rip=2001:db8::8",
     "2001:db8::8", "?"),
    ("2026-11-22T10:00:09 imapd[127]: auth-throttled: user=<ned>, rip=192.0.2.13",
     "192.0.2.13", "ned"),
    ("2026-11-22T10:00:10 smtp-submit[128]: auth-failed: user=<ned>, method=LOGIN, reason=password, rip=::1",
     "::1", "ned"),
    # rsyslog's precise time stamp, a v4-mapped address, no user, more fields after rip
    ("2026-11-22T10:00:11.123456+01:00 mx ipop3d[129]: auth-failed: user=<ned>, method=PLAIN, reason=password, rip=::ffff:192.0.2.14",
     "192.0.2.14", "ned"),
    ("Nov 22 10:00:12 mx imapd[130]: auth-failed: method=PLAIN, reason=pam-error, rip=192.0.2.15, tls=TLSv1.3",
     "192.0.2.15", ""),
    # a user name cannot forge the address: the daemons turn '=' ',' '<' '>' into '?'
    ("Nov 22 10:00:13 mx ipop3d[131]: auth-failed: user=<x? rip?198.51.100.1>, method=USER, reason=unknown-user, rip=192.0.2.16",
     "192.0.2.16", "x? rip?198.51.100.1"),
    # smtp-submit's AUTH on 587 and 465: the shared monitor's lines (monitor.c), in the
    # forms it writes them today: auth-throttled with method=, bad-username, unknown-user
    ("Nov 22 10:00:14 mx smtp-submit[132]: auth-failed: user=<?>, method=LOGIN, reason=unknown-user, rip=192.0.2.17",
     "192.0.2.17", "?"),
    ("Nov 22 10:00:15 mx smtp-submit[132]: auth-failed: user=<?>, method=PLAIN, reason=bad-username, rip=2001:db8::17",
     "2001:db8::17", "?"),
    ("Nov 22 10:00:16 mx smtp-submit[133]: auth-throttled: user=<ned>, method=PLAIN, rip=192.0.2.18",
     "192.0.2.18", "ned"),
    ("2026-11-22T10:00:17 smtp-submit[134]: auth-throttled: user=<test>, method=LOGIN, rip=192.0.2.19",
     "192.0.2.19", "test"),
]

NO_MATCH = [
    "Nov 22 10:01:00 mx ipop3d[123]: login: user=<ned>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, tls=TLSv1.3",
    "2026-11-22T10:01:01 imapd[124]: login: user=<ned>, method=PLAIN, rip=2001:db8::7, lip=2001:db8::1, tls=TLSv1.3",
    "Nov 22 10:01:02 mx ipop3d[123]: connect: rip=192.0.2.7, port=995, tls=TLSv1.3",
    "Nov 22 10:01:03 mx ipop3d[123]: refused: reason=hosts-deny, rip=192.0.2.7",
    "Nov 22 10:01:04 mx imapd[77]: logout: user=<ned>, reason=client, in=512, out=88234",
    "Nov 22 10:01:05 mx smtp-submit[901]: submit: sasl_method=PLAIN, sasl_username=<ned>, size=2048, rcpts=3",
    # smtp-submit's message lines carry the queue id first, and client-chosen addresses
    # inside <>: a sender cannot make one of them look like a failure
    "Nov 22 10:01:09 mx smtp-submit[902]: 0PZ4K8M2T7Q3: from=<auth-failed:?user?ned?rip?198.51.100.2>, size=2048, nrcpt=1, sasl_username=ned",
    "Nov 22 10:01:10 mx smtp-submit[903]: 0PZ4K8M2T7Q3: to=<ned@example.org>, relay=local, status=sent (delivered to maildir)",
    "2026-11-22T10:01:11 smtp-submit[904]: connect: rip=192.0.2.7, lip=192.0.2.1, port=25, tls=no",
    "Nov 22 10:01:12 mx smtp-submit[905]: pregreet: rip=192.0.2.7",
    # a temporary failure (PAM down) is not the client's doing
    "Nov 22 10:01:13 mx smtp-submit[906]: auth-tempfail: user=<ned>, method=PLAIN, reason=pam-error, rip=192.0.2.7",
    # Debian's exim4 and Postfix lines are not ours either
    "Nov 22 10:01:14 mx postfix/smtpd[907]: warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
    # another program writing the same words is not ours
    "Nov 22 10:01:06 mx sshd[123]: auth-failed: user=<ned>, method=PLAIN, reason=password, rip=192.0.2.7",
    "2026-11-22T10:01:07 popa3d[126]: auth-failed: user=<ned>, method=PLAIN, reason=password, rip=192.0.2.7",
    "Nov 22 10:01:08 mx ipop3d[123]: debug: auth-failed: user=<ned>, rip=192.0.2.7",
]


def regex(log, out):
    p = subprocess.run(["fail2ban-regex", "-o", out, str(log), str(FILTER)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return [ln for ln in p.stdout.splitlines() if ln.strip() != ""]


def test_failure_lines_match(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text("".join(line + "\n" for line, _, _ in MATCH))
    got = regex(log, "<ip>|<F-USER>")
    assert got == [f"{ip}|{user}" for _, ip, user in MATCH]


def test_other_lines_do_not_match(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text("".join(line + "\n" for line in NO_MATCH))
    assert regex(log, "<ip>") == []


def test_mixed_log(tmp_path):
    """Failures among other lines: exactly the failures, in order."""
    log = tmp_path / "mail.log"
    lines = []
    for i, (line, _, _) in enumerate(MATCH):
        lines.append(line)
        lines.append(NO_MATCH[i % len(NO_MATCH)])
    log.write_text("\n".join(lines) + "\n")
    assert regex(log, "<ip>") == [ip for _, ip, _ in MATCH]


def test_single_line_argument():
    """fail2ban-regex given the line itself, as an administrator tries it."""
    line, ip, _ = MATCH[3]
    p = subprocess.run(["fail2ban-regex", line, str(FILTER)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0
    assert "1 matched" in p.stdout, p.stdout


@pytest.mark.skipif(not Path("/etc/fail2ban/jail.conf").exists(), reason="no /etc/fail2ban")
@pytest.mark.parametrize("backend", ["systemd", "file"])
def test_jail_sample_config(tmp_path, backend):
    """The jail sample, dropped into a copy of Debian's /etc/fail2ban, passes
    `fail2ban-client -t`, with the journal backend and with a log file."""
    conf = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", conf)
    for f in (conf / "jail.d").glob("*"):
        f.unlink()
    shutil.copy(FILTER, conf / "filter.d" / "postern.conf")
    jail = JAIL.read_text()
    if backend == "file":
        log = tmp_path / "postern.log"
        log.write_text(MATCH[0][0] + "\n")
        jail = jail.replace("backend  = systemd", f"backend = auto\nlogpath = {log}")
    (conf / "jail.d" / "postern.local").write_text(jail)
    p = subprocess.run(["fail2ban-client", "-c", str(conf), "-t"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    d = subprocess.run(["fail2ban-client", "-c", str(conf), "-d"], capture_output=True,
                       text=True, timeout=120)
    assert "'add', 'postern'" in d.stdout, d.stdout + d.stderr
