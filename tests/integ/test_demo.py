"""make demo, as README promises it: demo/demo.sh starts ipop3d, imapd and smtp-submit
under systemd-socket-activate with a demo account, and says how to connect.  Each claim
of its closing text is checked here with a real client and the credentials it prints:
the demo user sends on the submission port (STARTTLS + AUTH) and on the submissions port
(implicit TLS), the mail arrives and is read over IMAPS and POP3S, port "25" takes mail
for the demo domain and refuses to relay; then demo/stop.sh removes every trace.

The demo runs in a directory and on ports of its own (POSTERN_DEMO_DIR and the
POSTERN_DEMO_*_PORT variables), with a throwaway user name, so that it neither collides
with a demo an administrator left running nor with the other tests."""

import imaplib
import os
import poplib
import pwd
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import helpers as h

PORT_NAMES = ("POP3", "POP3S", "IMAP", "IMAPS", "SMTP", "SUBMISSION", "SMTPS")
DOMAIN = "postern.test"


def _free_ports(n):
    """n distinct free loopback ports (held open together while chosen)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


@pytest.fixture(scope="module")
def demo():
    """Runs demo/demo.sh; yields what it printed and set up; runs demo/stop.sh after."""
    if shutil.which("systemd-socket-activate") is None or not os.path.exists(h.SWAKS):
        pytest.fail("systemd-socket-activate or swaks missing: tests/install-deps.sh installs them")
    d = Path("/tmp/%s%d-demo-%s" % (h.TMP_PREFIX, os.getpid(), uuid.uuid4().hex[:6]))
    user = "pdemo%d" % (os.getpid() % 100000)
    ports = dict(zip(PORT_NAMES, _free_ports(len(PORT_NAMES))))
    env = dict(os.environ, POSTERN_DEMO_DIR=str(d), POSTERN_DEMO_USER=user,
               POSTERN_DEMO_DOMAIN=DOMAIN,
               POSTERN_IPOP3D=str(h.binary_path("ipop3d")),
               POSTERN_IMAPD=str(h.binary_path("imapd")),
               POSTERN_SMTP_SUBMIT=str(h.binary_path("smtp-submit")))
    for name, port in ports.items():
        env["POSTERN_DEMO_%s_PORT" % name] = str(port)
    info = {"dir": d, "user": user, "ports": ports, "env": env}
    try:
        r = subprocess.run(["sh", str(h.REPO / "demo" / "demo.sh")], env=env,
                           capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        info["rc"], info["out"] = r.returncode, r.stdout + r.stderr
        m = re.search(r"^\s*password:\s*(\S+)\s*$", info["out"], re.M)
        info["password"] = m.group(1) if m else None
        info["ca"] = str(d / "tls" / "ca.crt")
        yield info
    finally:
        s = subprocess.run(["sh", str(h.REPO / "demo" / "stop.sh")], env=env,
                           capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        info["stop_rc"], info["stop_out"] = s.returncode, s.stdout + s.stderr
        # stop.sh is what is under test in test_stop_removes_everything; this is only the
        # safety net when it failed
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)
        try:
            pwd.getpwnam(user)
            h.remove_user(user)
        except KeyError:
            pass


def _ctx(demo):
    return h.client_context(demo["ca"])


def _wait_imap_subject(demo, subject, timeout=30.0):
    """The message number of the INBOX message with this subject, read over IMAPS."""
    end = time.monotonic() + timeout
    while True:
        m = imaplib.IMAP4_SSL("localhost", demo["ports"]["IMAPS"], ssl_context=_ctx(demo))
        try:
            m.login(demo["user"], demo["password"])
            m.select("INBOX", readonly=True)
            typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
            nums = data[0].split()
            if nums:
                typ, msg = m.fetch(nums[-1], "(BODY.PEEK[])")
                return msg[0][1]
        finally:
            m.logout()
        if time.monotonic() > end:
            return None
        time.sleep(0.2)


def test_demo_starts_and_says_how_to_connect(demo):
    out = demo["out"]
    assert demo["rc"] == 0, out
    assert demo["password"] and len(demo["password"]) == 16, out
    for name in ("pop3", "pop3s", "imap", "imaps", "smtp", "submission", "smtps"):
        assert re.search(r"started %s on 127\.0\.0\.1:%d" % (name, demo["ports"][name.upper()]),
                         out), out
    # its own checks, made with curl and swaks, all passed
    assert "checked: a POP3S login as %s works" % demo["user"] in out, out
    assert "checked: an IMAPS login as %s works" % demo["user"] in out, out
    assert "checked: swaks sent a message on %d" % demo["ports"]["SUBMISSION"] in out, out
    assert "checked: it arrived in INBOX, read over IMAPS" in out, out
    assert "warning" not in out, out
    # every daemon's own -t accepted the setup
    assert out.count("-t: the setup checks out") == 3, out


def test_submission_starttls_then_read_over_imaps_and_pop3s(demo):
    """What the closing text tells a user to do, with Python's clients."""
    assert demo["password"], demo["out"]
    subject = "demo-587-%s" % uuid.uuid4().hex[:8]
    with smtplib.SMTP("127.0.0.1", demo["ports"]["SUBMISSION"], timeout=60) as s:
        s.ehlo("client.example")
        # (AUTH is offered here too: plaintext_auth_from's default is loopback)
        s.starttls(context=_ctx(demo))
        s.ehlo("client.example")
        s.login(demo["user"], demo["password"])
        me = "%s@%s" % (demo["user"], DOMAIN)
        s.sendmail(me, [me], ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nhello over 587\r\n"
                              % (me, me, subject)).encode())
    msg = _wait_imap_subject(demo, subject)
    assert msg is not None and b"hello over 587" in msg
    assert re.search(rb"^Received: from client\.example\b.*?with ESMTPSA", msg, re.M | re.S), msg
    p = poplib.POP3_SSL("localhost", demo["ports"]["POP3S"], context=_ctx(demo))
    try:
        p.user(demo["user"])
        p.pass_(demo["password"])
        n = p.stat()[0]
        bodies = [b"\r\n".join(p.retr(i)[1]) for i in range(1, n + 1)]
    finally:
        p.quit()
    assert any(subject.encode() in b for b in bodies)


def test_submissions_implicit_tls_to_an_alias(demo):
    assert demo["password"], demo["out"]
    subject = "demo-465-%s" % uuid.uuid4().hex[:8]
    with smtplib.SMTP_SSL("localhost", demo["ports"]["SMTPS"], context=_ctx(demo),
                          timeout=60) as s:
        s.login(demo["user"], demo["password"])
        me = "%s@%s" % (demo["user"], DOMAIN)
        s.sendmail(me, ["postmaster@" + DOMAIN],
                   ("From: %s\r\nTo: postmaster@%s\r\nSubject: %s\r\n\r\nvia the alias\r\n"
                    % (me, DOMAIN, subject)).encode())
    msg = _wait_imap_subject(demo, subject)
    assert msg is not None and b"via the alias" in msg


def test_port_25_takes_local_mail_and_refuses_relay(demo):
    assert demo["password"], demo["out"]
    subject = "demo-25-%s" % uuid.uuid4().hex[:8]
    with smtplib.SMTP("127.0.0.1", demo["ports"]["SMTP"], timeout=60) as s:
        s.ehlo("mx.example.org")
        assert not s.has_extn("auth")
        code, _ = s.mail("someone@example.org")
        assert code == 250
        code, text = s.rcpt("victim@example.com")
        assert code == 554 and text.startswith(b"5.7.1"), text
        code, _ = s.rcpt("%s@%s" % (demo["user"], DOMAIN))
        assert code == 250
        code, text = s.data(("From: someone@example.org\r\nSubject: %s\r\n\r\nfrom outside\r\n"
                             % subject).encode())
        assert code == 250, text
    msg = _wait_imap_subject(demo, subject)
    assert msg is not None and b"from outside" in msg


def test_demo_runs_again_without_harm(demo):
    """demo.sh says it is safe to run again: the listeners and the password stay."""
    assert demo["password"], demo["out"]
    r = subprocess.run(["sh", str(h.REPO / "demo" / "demo.sh")], env=demo["env"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "imaps already running on 127.0.0.1:%d" % demo["ports"]["IMAPS"] in out, out
    assert re.search(r"^\s*password:\s*%s\s*$" % re.escape(demo["password"]), out, re.M), out


def test_stop_removes_everything(demo):
    """Last in this file (pytest keeps file order): stop.sh, then nothing is left."""
    assert demo["password"], demo["out"]
    r = subprocess.run(["sh", str(h.REPO / "demo" / "stop.sh")], env=demo["env"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "removed the user %s" % demo["user"] in out, out
    with pytest.raises(KeyError):
        pwd.getpwnam(demo["user"])
    assert not demo["dir"].exists()
    for port in demo["ports"].values():
        assert not h.is_listening(port), port
    conf = str(demo["dir"] / "postern.conf")
    left = [pid for pid in h.all_pids() if conf.encode() in _cmdline(pid)]
    assert left == []


def _cmdline(pid):
    try:
        return Path("/proc/%d/cmdline" % pid).read_bytes()
    except OSError:
        return b""
