"""A real MTA delivering to smtp-submit's port 25: Postfix (Debian's package, a private
instance of its own: config, queue and log under the test's directory, listening only on
a loopback port) relays every message to `smtp-submit -m mx` as its relayhost, with
mandatory TLS verified against the test CA.  Postfix speaks ESMTP as it does to any MX on
the Internet: EHLO, STARTTLS, PIPELINING, SIZE, 8BITMIME, DSN; what it logs is its own
verdict on our replies.

tests/install-deps.sh installs postfix (without main.cf and without starting it) unless
another MTA package owns the system; Postfix is also the peer of the delivery-to-other-
domains tests."""

import os
import shutil
import smtplib
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import helpers as h

POSTFIX_HOST = "peer.example.net"

MAIN_CF = """\
# a private Postfix instance of postern's tests/integ/test_smtp_interop.py
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {dir}
maillog_file = {dir}/postfix.log
myhostname = {host}
mydomain = example.net
myorigin = $myhostname
mydestination = $myhostname
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{mx_port}
smtp_tls_security_level = encrypt
smtp_tls_CAfile = {ca}
smtp_tls_loglevel = 1
smtp_tls_session_cache_database =
biff = no
append_dot_mydomain = no
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
"""

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
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
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixPeer:
    def __init__(self, workdir, mx_port, ca):
        self.dir = workdir
        self.etc = workdir / "etc"
        for d in (self.dir, self.etc, self.dir / "queue", self.dir / "data"):
            d.mkdir(mode=0o755, parents=True, exist_ok=True)
        shutil.chown(self.dir / "data", "postfix", "postfix")
        self.port = h.free_port()
        (self.etc / "main.cf").write_text(MAIN_CF.format(dir=self.dir, host=POSTFIX_HOST,
                                                         mx_port=mx_port, ca=ca))
        (self.etc / "master.cf").write_text(MASTER_CF.format(port=self.port))
        self.logpath = self.dir / "postfix.log"
        self.proc = None

    def postfix(self, *args, check=True):
        return h.run(["postfix", "-c", str(self.etc)] + list(args), check=check,
                     timeout=60)

    def start(self):
        self.postfix("check")
        out = open(self.dir / "master.out", "ab")
        self.proc = subprocess.Popen(["postfix", "-c", str(self.etc), "start-fg"],
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        # (master is a child of the postfix command, which holds no socket itself)
        h.wait_listening(self.port, timeout=30)
        return self

    def stop(self):
        if self.proc is None:
            return
        self.postfix("stop", check=False)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(5)
        self.proc = None

    def log(self):
        try:
            return self.logpath.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout=60.0):
        """The log's lines once one contains needle (asserts within timeout); Postfix is
        asked to flush its queue meanwhile."""
        deadline = time.monotonic() + timeout
        flushed = time.monotonic()
        while True:
            lines = [l for l in self.log().splitlines() if needle in l]
            if lines:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError("Postfix never logged %r; its log:\n%s"
                                     % (needle, self.log()[-6000:]))
            if time.monotonic() - flushed > 5:
                self.postfix("flush", check=False)
                flushed = time.monotonic()
            time.sleep(0.1)

    def send(self, sender, rcpts, data, **kw):
        """Into Postfix by SMTP on its loopback port; Postfix's own queue id."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as s:
            s.ehlo("client.example.net")
            s.mail(sender, kw.get("mail_options", []))
            for r in rcpts:
                code, text = s.rcpt(r, kw.get("rcpt_options", []))
                assert code == 250, (r, code, text)
            code, text = s.data(data)
            assert code == 250, text
        return text.decode().rsplit(" ", 1)[-1]


@pytest.fixture
def postfix(smtpd, certs, suite_env, request):
    if shutil.which("postfix") is None:
        pytest.fail("postfix is not installed: tests/install-deps.sh installs it unless "
                    "another MTA package is installed")
    workdir = suite_env.root / ("pf-" + uuid.uuid4().hex[:8])
    p = PostfixPeer(workdir, smtpd.mx_port, certs.ca)
    try:
        yield p.start()
    finally:
        p.stop()


def test_postfix_delivers_to_port_25_over_verified_tls(smtpd, postfix, make_user):
    """Two recipients in one transaction, 8-bit text, a line of one dot and lines that
    start with dots: Postfix hands it over with STARTTLS (our certificate verified
    against the CA), pipelined, and both users get the exact body."""
    a, b = make_user("maildir"), make_user("mbox")
    subject = "interop-%s" % uuid.uuid4().hex[:8]
    body = ("Grüße aus Postfix\r\n.\r\n..two dots\r\n.leading dot\r\nend\r\n")
    data = ("From: Someone <someone@%s>\r\nTo: %s, %s\r\nSubject: %s\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n%s"
            % (POSTFIX_HOST, h.address(a), h.address(b), subject, body)).encode()
    qid = postfix.send("someone@%s" % POSTFIX_HOST, [h.address(a), h.address(b)], data,
                       mail_options=["BODY=8BITMIME"])
    sent = postfix.wait_log("status=sent")
    ours = [l for l in sent if qid in l]
    assert len(ours) == 2, postfix.log()[-4000:]
    for l in ours:
        assert "relay=127.0.0.1[127.0.0.1]:%d" % smtpd.mx_port in l, l
        assert "250 2.0.0 Ok: queued as" in l, l
    assert "Trusted TLS connection established to 127.0.0.1[127.0.0.1]:%d" % smtpd.mx_port \
        in postfix.log(), postfix.log()[-4000:]
    for u in (a, b):
        got = h.wait_stored(u, 1)
        assert len(got) == 1
        msg = got[0].replace(b"\r\n", b"\n")
        assert body.replace("\r\n", "\n").encode() in msg, msg
        assert ("Subject: %s" % subject).encode() in msg
        # our Received: names Postfix's EHLO and the TLS it negotiated
        assert b"from " + POSTFIX_HOST.encode() in msg and b"with ESMTPS" in msg, msg[:800]
    # the queue id our 250 named is in our log with Postfix's sender
    our_id = ours[0].split("queued as ", 1)[1].split(")")[0].strip()
    ev = smtpd.queue_lines(our_id)
    assert ev and ev[0]["from"] == "someone@%s" % POSTFIX_HOST, ev
    smtpd.wait_queue_empty()


def test_postfix_bounces_on_our_550_and_554(smtpd, postfix, make_user):
    """An unknown local user and a relay attempt: our 5xx makes Postfix bounce at once
    (status=bounced with our text), never retry; the known recipient of the same
    message is delivered."""
    u = make_user("maildir")
    data = ("From: someone@%s\r\nSubject: bounce-%s\r\n\r\nhi\r\n"
            % (POSTFIX_HOST, uuid.uuid4().hex[:8])).encode()
    nobody = "nobody-%s@%s" % (uuid.uuid4().hex[:6], h.LOCAL_DOMAIN)
    qid = postfix.send("someone@%s" % POSTFIX_HOST, [nobody, "victim@example.com",
                                                     h.address(u)], data)
    bounced = postfix.wait_log("status=bounced")
    deadline = time.monotonic() + 60
    while len([l for l in postfix.log().splitlines()
               if qid in l and "status=bounced" in l]) < 2:
        assert time.monotonic() < deadline, postfix.log()[-4000:]
        time.sleep(0.1)
    lines = [l for l in postfix.log().splitlines() if qid in l and "status=" in l]
    by_rcpt = {l.split("to=<", 1)[1].split(">", 1)[0]: l for l in lines}
    assert "550 5.1.1" in by_rcpt[nobody] and "status=bounced" in by_rcpt[nobody], lines
    assert "554 5.7.1" in by_rcpt["victim@example.com"], lines
    assert "status=bounced" in by_rcpt["victim@example.com"], lines
    assert "status=sent" in by_rcpt[h.address(u)], lines
    assert len(h.wait_stored(u, 1)) == 1
    assert bounced


def test_postfix_dsn_parameters_reach_our_envelope(smtpd, postfix, make_user):
    """Postfix passes RFC 3461 parameters on (we offer DSN): ENVID and RET on MAIL,
    NOTIFY and ORCPT on RCPT.  The user's Maildir is unwritable at first, so the message
    stays in our spool and its envelope can be read: the parameters are there; once the
    Maildir is fixed, -q delivers it."""
    u = make_user("maildir")
    os.chmod(u.maildir, 0o000)
    try:
        data = ("From: someone@%s\r\nSubject: dsn-%s\r\n\r\nhi\r\n"
                % (POSTFIX_HOST, uuid.uuid4().hex[:8])).encode()
        qid = postfix.send("someone@%s" % POSTFIX_HOST, [h.address(u)], data,
                           mail_options=["RET=HDRS", "ENVID=interop-42"],
                           rcpt_options=["NOTIFY=FAILURE,DELAY"])
        line = [l for l in postfix.wait_log("status=sent") if qid in l]
        assert line, postfix.log()[-4000:]
        our_id = line[0].split("queued as ", 1)[1].split(")")[0].strip()
        env = smtpd.wait_envelope(our_id, "\nstate deferred\n")
        assert "\nnotify failure,delay\n" in env, env
        assert "\nret hdrs\n" in env, env
        assert "\nenvid interop-42\n" in env, env
        assert "\norcpt rfc822;%s\n" % h.address(u) in env, env
        assert u.stored() == []
    finally:
        os.chmod(u.maildir, 0o700)
    smtpd.make_due(our_id)
    smtpd.queue_run()
    assert len(h.wait_stored(u, 1)) == 1
    smtpd.wait_queue_empty()
