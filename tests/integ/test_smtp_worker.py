"""smtp-submit's worker and its privilege separation, with the real binary under
systemd-socket-activate --inetd: the greeting, EHLO in each mode, the pre-greet drop on
port 25, STARTTLS with injected commands discarded, AUTH refused before TLS, AUTH over
TLS with a PAM account, and the hand-over to the session, which runs as spool_user with
the worker's HELO and TLS facts (port 25: at the first MAIL, which reaches the session
with whatever was pipelined behind it).  The whole SMTP protocol is test_smtp_*.py's."""

import base64
import os
import pwd
import re
import shutil
import socket
import ssl
import time
from pathlib import Path

import pytest

import helpers as h

NAME = "mx.worker-test.example"


def smtp_binary():
    p = Path(os.environ.get("POSTERN_SMTP_SUBMIT", "smtp-submit/smtp-submit"))
    return p if p.is_absolute() else h.REPO / p


class Smtp:
    """A raw SMTP client: exact bytes, STARTTLS by hand."""

    def __init__(self, port, tls=None, timeout=20.0, greeting=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.greeting = self.reply() if greeting else None

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed; pending %r" % self.buf)
            self.buf += data
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        assert out.endswith(b"\r\n"), out
        return out[:-2].decode()

    def reply(self):
        """One reply, all its lines."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def starttls(self, ctx):
        assert self.buf == b""
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def closed(self):
        """True when the server closed the connection (nothing more to read)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def b64(s):
    return base64.b64encode(s.encode()).decode()


@pytest.fixture
def smtpd(certs, suite_env, make_user, request):
    """smtp-submit's config of this test's own, and a launcher per mode: start(mode)."""
    binary = smtp_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail("no executable %s: build it first (make all)" % binary)
    pam = Path("/etc/pam.d/smtp")
    if not pam.exists():
        shutil.copyfile(h.REPO / "pam.d" / "smtp", pam)
        os.chmod(pam, 0o644)
    workdir = suite_env.root / ("w-" + request.node.name.replace("/", "_")[:80])
    if workdir.exists():
        shutil.rmtree(workdir)
    d = h.Daemon(binary, workdir, certs.dir, inetd_env_keep=h.is_sanitizer_build(binary),
                 name="smtp-submit")
    spool = make_user(None)
    spool_dir = workdir / "spool"
    for sub in (spool_dir, spool_dir / "tmp", spool_dir / "queue"):
        sub.mkdir(mode=0o700)
        os.chown(sub, spool.uid, spool.gid)
    d.spool = spool
    d.configure(pam_service="smtp", spool_user=spool.name, spool_dir=spool_dir,
                hostname=NAME, local_domains="localhost", greet_pause_ms=0, plaintext_auth_from="192.0.2.0/24")

    def start(mode):
        port = h.free_port()
        d.launchers.append(h.socket_activate(binary, ["-m", mode, "-c", str(d.config_path)],
                                             port, workdir / ("ssa-%s.out" % mode)))
        return port

    d.start_mode = start
    before = set(p for p in Path(suite_env.san).iterdir() if p.is_file())
    yield d
    reports = d.stop()
    new = [p for p in Path(suite_env.san).iterdir() if p.is_file() and p not in before]
    reports += ["== %s\n%s" % (p.name, p.read_text(errors="replace")[:20000]) for p in new]
    for p in new:
        p.rename(p.with_name("seen-" + p.name))
    if reports:
        pytest.fail("sanitizer reports during this test:\n" + "\n".join(reports),
                    pytrace=False)


def ehlo_keywords(lines):
    assert lines[0] == "250-" + NAME or lines == ["250 " + NAME], lines
    return [l[4:] for l in lines[1:]]


def test_greeting_and_ehlo_each_mode(smtpd, ctx):
    mx = smtpd.start_mode("mx")
    sub = smtpd.start_mode("submission")
    smtps = smtpd.start_mode("smtps")
    base = ["PIPELINING", "SIZE 52428800"]
    tail = ["ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"]

    c = Smtp(mx)
    assert c.greeting == ["220 %s ESMTP postern" % NAME]
    assert ehlo_keywords(c.cmd("EHLO client.example")) == base + ["STARTTLS"] + tail
    # never AUTH on 25, not even after TLS
    assert c.cmd("AUTH PLAIN " + b64("\0a\0b"))[0].startswith("503 5.5.1 ")
    assert c.cmd("HELO client.example") == ["250 " + NAME]
    assert c.cmd("VRFY root") [0].startswith("252 2.5.2 ")
    assert c.cmd("HELP")[0].startswith("214 2.0.0 ")
    assert c.cmd("NOOP") == ["250 2.0.0 Ok"]
    assert c.cmd("RSET") == ["250 2.0.0 Ok"]
    assert c.cmd("RCPT TO:<a@b.example>")[0].startswith("503 5.5.1 ")
    assert c.cmd("QUIT") == ["221 2.0.0 Bye"]
    assert c.closed()
    c.close()

    # 587 from an address outside plaintext_auth_from: no AUTH before TLS
    c = Smtp(sub)
    assert ehlo_keywords(c.cmd("EHLO client.example")) == base + ["STARTTLS"] + tail
    assert c.cmd("STARTTLS") == ["220 2.0.0 Ready to start TLS"]
    c.starttls(ctx)
    assert ehlo_keywords(c.cmd("EHLO client.example")) == base + ["AUTH PLAIN LOGIN"] + tail
    assert c.cmd("STARTTLS")[0].startswith("503 5.5.1 ")
    assert c.cmd("QUIT") == ["221 2.0.0 Bye"]
    c.close()

    # 465: TLS from the first byte, AUTH offered, no STARTTLS
    c = Smtp(smtps, tls=ctx)
    assert c.greeting == ["220 %s ESMTP postern" % NAME]
    assert ehlo_keywords(c.cmd("EHLO client.example")) == base + ["AUTH PLAIN LOGIN"] + tail
    c.close()


def test_auth_refused_before_tls(smtpd, make_user):
    """plaintext_auth_from names another network: on 587 a password may not travel before STARTTLS, and
    nothing but AUTH leads to the session."""
    u = make_user("maildir")
    port = smtpd.start_mode("submission")
    c = Smtp(port)
    c.cmd("EHLO client.example")
    r = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (u.name, u.password)))
    assert r[0].startswith("538 5.7.11 "), r
    assert c.cmd("AUTH LOGIN")[0].startswith("538 5.7.11 ")
    assert c.cmd("MAIL FROM:<%s@localhost>" % u.name) == ["530 5.7.0 Authentication required"]
    assert c.cmd("QUIT") == ["221 2.0.0 Bye"]
    c.close()
    # the password never reached PAM
    assert "auth-failed" not in smtpd.log.text() and "login:" not in smtpd.log.text()


def test_starttls_discards_injected_commands(smtpd, ctx):
    """RFC 3207 section 5: commands pipelined behind STARTTLS in plaintext (a man in the
    middle's injection) are not executed, and the HELO from before TLS is forgotten."""
    port = smtpd.start_mode("mx")
    c = Smtp(port)
    c.cmd("EHLO client.example")
    # if the injected EHLO and MAIL ran, the MAIL would reach the session
    c.send("STARTTLS\r\nEHLO evil.example\r\nMAIL FROM:<evil@evil.example>\r\n")
    assert c.reply() == ["220 2.0.0 Ready to start TLS"]
    c.starttls(ctx)
    r = c.cmd("MAIL FROM:<a@client.example>")
    assert r[0].startswith("503 5.5.1 "), r   # EHLO again first: the state was reset
    assert c.cmd("NOOP") == ["250 2.0.0 Ok"]
    c.cmd("EHLO client.example")
    # now the session takes it, with the HELO said under TLS
    r = c.cmd("MAIL FROM:<a@client.example>")
    assert "evil" not in " ".join(r), r
    c.close()


def _session_facts(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def test_auth_over_tls_hands_over_to_spool_user(smtpd, ctx, make_user):
    u = make_user("maildir")
    sub = smtpd.start_mode("submission")
    smtps = smtpd.start_mode("smtps")

    c = Smtp(sub)
    c.cmd("EHLO client.example")
    c.cmd("STARTTLS")
    c.starttls(ctx)
    c.cmd("EHLO client.example")
    # a wrong password first: 535, counted by the monitor's throttle and logged for
    # fail2ban; then the right one
    r = c.cmd("AUTH PLAIN " + b64("\0%s\0wrong" % u.name))
    assert r == ["535 5.7.8 Authentication credentials invalid"], r
    assert c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (u.name, u.password))) == \
        ["235 2.7.0 Authentication successful"]
    r = c.cmd("NOOP")
    _check_session(smtpd, r, u.name, "client.example", tls=True, mech="PLAIN")
    c.close()

    c = Smtp(smtps, tls=ctx)
    c.cmd("EHLO other.example")
    c.send("AUTH LOGIN %s\r\n" % b64(u.name))
    assert c.reply() == ["334 UGFzc3dvcmQ6"]
    assert c.cmd(b64(u.password)) == ["235 2.7.0 Authentication successful"]
    r = c.cmd("NOOP")
    _check_session(smtpd, r, u.name, "other.example", tls=True, mech="LOGIN")
    c.close()
    log = smtpd.log.text()
    assert re.search(r"smtp-submit\[\d+\]: auth-failed: user=<%s>, method=PLAIN" % u.name, log)
    assert re.search(r"smtp-submit\[\d+\]: login: user=<%s>, method=LOGIN" % u.name, log)


def _session_uids(smtpd):
    """(real, effective) uids of the daemon's processes that run neither as root nor as
    the worker's account: the sessions."""
    postern = pwd.getpwnam("postern").pw_uid
    out = set()
    for launcher in smtpd.launchers:
        for pid, _ in launcher.children():
            u = h.proc_uids(pid)
            if u is not None and u != (0, 0) and postern not in u:
                out.add(u)
    return out


def _check_session(smtpd, r, user, helo, tls, mech):
    """The session's answer to its first command.  A stand-in session (before the
    session branch) says who it runs as and what it was told; the real one answers the
    command, and its process runs as spool_user."""
    if "stub session" in r[0]:
        f = _session_facts(r[0])
        assert int(f["uid"]) == smtpd.spool.uid and int(f["euid"]) == smtpd.spool.uid, r
        assert f["user"] == "<%s>" % user and f["helo"] == helo and f["esmtp"] == "1", r
        assert (f["tls"] != "-") == tls and f["mech"] == mech, r
    else:
        assert r == ["250 2.0.0 Ok"], r
        assert _session_uids(smtpd) == {(smtpd.spool.uid, smtpd.spool.uid)}


def test_mx_hands_over_at_mail_with_pipelined_bytes(smtpd):
    """Port 25: no login; the first MAIL starts the session as spool_user, which reads the
    MAIL line itself first, then what was pipelined behind it."""
    port = smtpd.start_mode("mx")
    c = Smtp(port)
    c.cmd("EHLO client.example")
    c.send("MAIL FROM:<a@client.example>\r\nNOOP\r\n")
    first, second = c.reply(), c.reply()
    if "stub session" in first[0]:
        f = _session_facts(first[0])
        assert int(f["uid"]) == smtpd.spool.uid and f["user"] == "<>", first
        assert f["helo"] == "client.example" and f["esmtp"] == "1" and f["tls"] == "-"
        assert "stub session" in second[0]
    else:
        assert first[0].startswith("250 2.1.0"), first
        assert second == ["250 2.0.0 Ok"], second
        assert _session_uids(smtpd) == {(smtpd.spool.uid, smtpd.spool.uid)}
    c.close()


def test_mx_end_to_end_message_is_queued_by_the_session(smtpd, make_user):
    """Port 25 after the hand-over: MAIL, RCPT, DATA in the session (spool_user), the
    message committed to the spool before the 250, its log line with the queue id and
    the client's HELO in its Received: field; then the monitor's delivery child runs
    (whose result is the delivery's tests')."""
    u = make_user("maildir")
    port = smtpd.start_mode("mx")
    c = Smtp(port)
    c.cmd("EHLO client.example")
    c.send("MAIL FROM:<sender@client.example>\r\nRCPT TO:<%s@localhost>\r\nDATA\r\n"
           % u.name)
    assert c.reply()[0].startswith("250 2.1.0")
    assert c.reply()[0].startswith("250 2.1.5")
    assert c.reply()[0].startswith("354 ")
    c.send("Subject: worker test\r\n\r\nhello\r\n.\r\n")
    r = c.reply()
    m = re.fullmatch(r"250 2\.0\.0 Ok: queued as ([0-9A-Z]{12})", r[0])
    assert m, r
    qid = m.group(1)
    assert c.cmd("QUIT") == ["221 2.0.0 Bye"]
    c.close()
    deadline = time.monotonic() + 10
    while not re.search(r"smtp-submit\[\d+\]: %s: from=<sender@client.example>" % qid,
                        smtpd.log.text()):
        assert time.monotonic() < deadline, smtpd.log.text()
        time.sleep(0.05)
    # the monitor's root child delivers it (as the user) right away; with the stand-in
    # delivery of before the delivery branch it stays in the spool
    real = "STUB until" not in (h.REPO / "smtp-submit" / "deliver.c").read_text()
    deadline = time.monotonic() + 10
    while real and not list((u.maildir / "new").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    delivered = list((u.maildir / "new").iterdir())
    assert bool(delivered) == real, smtpd.log.text()
    if delivered:
        # its log line may follow the file by a moment
        sent = r"%s: to=<%s@localhost>.*status=sent" % (qid, u.name)
        deadline = time.monotonic() + 10
        while not re.search(sent, smtpd.log.text()):
            assert time.monotonic() < deadline, smtpd.log.text()
            time.sleep(0.05)
        assert all(p.stat().st_uid == u.uid for p in delivered)
    spooled = [p for p in (smtpd.workdir / "spool").rglob("*") if p.is_file()]
    texts = [p.read_bytes() for p in spooled + delivered]
    # our Received: field names the HELO the worker passed on
    assert any(b"from client.example" in t and b"hello" in t for t in texts), texts


def test_pregreet_client_is_dropped(smtpd):
    """Port 25 with greet_pause_ms: a client that talks first gets 554 and is dropped; a
    patient one gets the greeting."""
    smtpd.configure(greet_pause_ms=1500)
    port = smtpd.start_mode("mx")
    c = Smtp(port, greeting=False)
    c.send("EHLO bot.example\r\n")
    assert c.reply() == ["554 5.5.1 Protocol error: talked before the greeting"]
    assert c.closed()
    c.close()
    # the worker's line goes through the monitor, maybe just after the close
    deadline = time.monotonic() + 10
    while not re.search(r"smtp-submit\[\d+\]: pregreet: rip=127.0.0.1", smtpd.log.text()):
        assert time.monotonic() < deadline, smtpd.log.text()
        time.sleep(0.05)
    smtpd.configure(greet_pause_ms=200)
    c = Smtp(port)
    assert c.greeting == ["220 %s ESMTP postern" % NAME]
    c.close()
