"""smtp-submit's queue commands with the real binary, as root: -bp lists the spool (an
empty one, messages with each recipient's state and last reply, an unreadable envelope
reported and left alone), -q delivers the due local recipients into a Maildir and an mbox
as their users (Return-Path, Delivered-To and the delivery token on top, one copy, the
log lines), through an alias to two users, fails an unknown user (5.1.1) and leaves
remote recipients pending, and -t names a broken spool with the command that fixes it.
Messages are put into the spool as the session would leave them (data + envelope, the
spool user's files), so these tests do not depend on the SMTP session."""

import os
import re
import secrets
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

import helpers as h

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def smtp_binary():
    p = Path(os.environ.get("POSTERN_SMTP_SUBMIT", "smtp-submit/smtp-submit"))
    return p if p.is_absolute() else h.REPO / p


def queue_id():
    """A queue id as spool.c makes them: 11 base32 digits of the microseconds, 1 more."""
    us = time.time_ns() // 1000
    digits = "".join(ALPHABET[(us >> (5 * (10 - i))) & 31] for i in range(11))
    return digits + ALPHABET[secrets.randbelow(32)]


class Spool:
    def __init__(self, path, owner):
        self.path = Path(path)
        self.owner = owner
        for d in (self.path, self.path / "tmp", self.path / "queue"):
            d.mkdir(mode=0o700, exist_ok=True)
            os.chown(d, owner.uid, owner.gid)
            os.chmod(d, 0o700)

    def _file(self, p, data):
        with open(p, "wb") as f:
            f.write(data)
        os.chown(p, self.owner.uid, self.owner.gid)
        os.chmod(p, 0o600)

    def add(self, data, rcpts, sender="ned@example.org", env_text=None):
        """Queue data (bytes, CRLF) for rcpts [(address, "local"|"remote")]: its id."""
        qid = queue_id()
        tmp = self.path / "tmp" / qid
        tmp.mkdir(mode=0o700)
        os.chown(tmp, self.owner.uid, self.owner.gid)
        self._file(tmp / "data", data)
        if env_text is None:
            lines = ["postern-envelope 1", "id " + qid,
                     "nonce " + secrets.token_hex(8).upper(),
                     "arrival %d" % int(time.time()), "size %d" % len(data),
                     "body 8bitmime", "smtputf8 no", "sender <%s>" % sender]
            for addr, kind in rcpts:
                lines += ["rcpt <%s>" % addr, "kind " + kind, "state pending", "attempts 0"]
            env_text = "\n".join(lines + ["end"]) + "\n"
        self._file(tmp / "env", env_text.encode())
        os.rename(tmp, self.path / "queue" / qid)
        return qid

    def ids(self):
        return sorted(p.name for p in (self.path / "queue").iterdir())


@pytest.fixture
def queue(certs, suite_env, make_user, request):
    binary = smtp_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail("no executable %s: build it first (make all)" % binary)
    workdir = suite_env.root / ("q-" + request.node.name.replace("/", "_")[:80])
    if workdir.exists():
        shutil.rmtree(workdir)
    d = h.Daemon(binary, workdir, certs.dir, name="smtp-submit")
    spool_user = make_user(None)
    d.spool = Spool(workdir / "spool", spool_user)
    d.aliases = workdir / "aliases"
    d.aliases.write_text("")
    d.configure(pam_service="smtp", spool_user=spool_user.name, spool_dir=d.spool.path,
                hostname="mail.example.org", local_domains="example.org",
                aliases=d.aliases)

    def run(*args, check=True):
        r = subprocess.run([str(binary), "-c", str(d.config_path)] + list(args),
                           capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, "%s: %d\n%s%s" % (args, r.returncode, r.stdout,
                                                        r.stderr)
        return r

    d.run = run
    yield d


RUN = secrets.token_hex(4).encode()
# helpers.LOG_RE knows ipop3d and imapd event names; ours start with the queue id
SUBMIT_LOG_RE = re.compile(r"smtp-submit\[(\d+)\]: ([A-Za-z0-9][A-Za-z0-9-]*): (.*)$")


def logged(d, event, **match):
    """The log lines (their fields) of event (a queue id, "queue-run") that match."""
    out = []
    for line in d.log.text().splitlines():
        m = SUBMIT_LOG_RE.search(line)
        if not m or m.group(2) != event:
            continue
        ev = h.parse_fields(m.group(3))
        if all(ev.get(k) == v for k, v in match.items()):
            out.append(ev)
    return out


def message(n):
    return (b"From: Ned <ned@example.org>\r\nSubject: queue test %d\r\n"
            b"Message-ID: <%d.%s@example.org>\r\n\r\nBody of message %d.\r\n"
            b"From here on, a line that mbox quotes.\r\n.\r\n" % (n, n, RUN, n))


def stored_one(user, n, rcpt, qid):
    """The user's copies of message n: exactly one, with our fields on top."""
    mine = [m for m in user.stored() if b"Subject: queue test %d\n" % n in m]
    assert len(mine) == 1, "%d copies of message %d for %s" % (len(mine), n, user.name)
    m = mine[0]
    head = m.split(b"\n", 3)
    assert head[0] == b"Return-Path: <ned@example.org>"
    assert head[1] == b"Delivered-To: " + rcpt.encode()
    assert re.fullmatch(rb"X-Postern-Delivery: " + qid.encode() + rb"-\d{3}-[0-9A-F]{16}",
                        head[2]), head[2]
    body = message(n).replace(b"\r\n", b"\n")
    if user.store == "mbox":
        body = body.replace(b"\nFrom here", b"\n>From here")
    assert head[3] == body
    return m


def test_bp_empty(queue):
    r = queue.run("-bp")
    assert r.stdout == "Mail queue is empty\n"


def test_q_delivers_and_bp_lists(queue, make_user):
    md = make_user("maildir")
    mb = make_user("mbox")
    a, b = "%s@example.org" % md.name, "%s@Example.ORG" % mb.name.upper()
    qid = queue.spool.add(message(1), [(a, "local"), (b, "local"),
                                       ("far@remote.example", "remote")])
    out = queue.run("-bp").stdout
    assert qid in out and "<ned@example.org>" in out
    assert "<%s> local pending, attempts 0" % a in out
    assert "-- 1 Kbytes in 1 Request." in out
    queue.run("-q")
    stored_one(md, 1, a, qid)
    stored_one(mb, 1, b, qid)
    # the remote recipient waits for the delivery to other domains (issue 8)
    out = queue.run("-bp").stdout
    assert "<%s> local delivered, attempts 1" % a in out
    assert "(250 2.0.0 delivered to maildir)" in out
    assert "(250 2.0.0 delivered to mbox)" in out
    assert "<far@remote.example> remote pending, attempts 0" in out
    ev = logged(queue, qid, to=a)
    assert len(ev) == 1, queue.log.tail()
    assert ev[0]["relay"] == "local" and ev[0]["status"] == "sent (delivered to maildir)"
    assert float(ev[0]["delay"]) >= 0
    assert len(logged(queue, qid, to=b, status="sent (delivered to mbox)")) == 1
    assert logged(queue, "queue-run", due="1", handled="1"), queue.log.tail()
    # a second run delivers nothing twice
    queue.run("-q")
    stored_one(md, 1, a, qid)
    stored_one(mb, 1, b, qid)
    assert queue.spool.ids() == [qid]


def test_q_local_only_leaves_queue(queue, make_user):
    md = make_user("maildir")
    a = "%s@example.org" % md.name
    qid = queue.spool.add(message(2), [(a, "local")])
    queue.run("-q")
    stored_one(md, 2, a, qid)
    assert queue.spool.ids() == []
    assert queue.run("-bp").stdout == "Mail queue is empty\n"


def test_q_unknown_user_fails(queue, make_user):
    md = make_user("maildir")
    a = "%s@example.org" % md.name
    qid = queue.spool.add(message(3), [("nosuchuser-q@example.org", "local"), (a, "local")])
    queue.run("-q")
    stored_one(md, 3, a, qid)
    out = queue.run("-bp").stdout
    assert "<nosuchuser-q@example.org> local failed, attempts 0" in out
    assert "(550 5.1.1 no such user)" in out
    assert logged(queue, qid, to="nosuchuser-q@example.org",
                  status="bounced (550 5.1.1 no such user)"), queue.log.tail()


def test_q_alias_two_users(queue, make_user):
    md = make_user("maildir")
    mb = make_user("mbox")
    queue.aliases.write_text("# test\nteam: %s,\n  %s, %s@example.org\n"
                             % (md.name, mb.name, md.name))
    qid = queue.spool.add(message(4), [("team@example.org", "local")])
    queue.run("-q")
    stored_one(md, 4, "team@example.org", qid)
    stored_one(mb, 4, "team@example.org", qid)
    assert queue.spool.ids() == []
    assert logged(queue, qid, to="%s@example.org" % md.name, orig_to="team@example.org",
                  status="sent (delivered to maildir)"), queue.log.tail()


def test_q_broken_mailbox_deferred(queue, make_user):
    """A Maildir without new/: deferred (4.x), kept; fixed, a later run delivers."""
    md = make_user("maildir")
    a = "%s@example.org" % md.name
    shutil.rmtree(md.maildir / "new")
    qid = queue.spool.add(message(5), [(a, "local")])
    queue.run("-q")
    out = queue.run("-bp").stdout
    assert "<%s> local deferred, attempts 1, next try" % a in out
    assert re.search(r"\(45\d 4\.\d\.\d ", out), out
    ev = logged(queue, qid, to=a, relay="local")
    assert ev and ev[0]["status"].startswith("deferred ("), queue.log.tail()
    (md.maildir / "new").mkdir(mode=0o700)
    os.chown(md.maildir / "new", md.uid, md.gid)
    # not due yet: -q leaves it
    queue.run("-q")
    assert queue.spool.ids() == [qid]
    # make it due (as time passing would), then it goes
    env = queue.spool.path / "queue" / qid / "env"
    text = re.sub(r"next-try \d+", "next-try 1", env.read_text())
    env.write_text(text)
    queue.run("-q")
    stored_one(md, 5, a, qid)
    assert queue.spool.ids() == []


def test_bad_envelope_listed_never_deleted(queue):
    qid = queue.spool.add(b"x\r\n", [], env_text="postern-envelope 1\nid torn\n")
    out = queue.run("-bp").stdout
    assert qid in out and "unreadable envelope" in out
    queue.run("-q")
    assert queue.spool.ids() == [qid]
    assert (queue.spool.path / "queue" / qid / "env").exists()


def test_t_spool(queue):
    r = queue.run("-t", check=False)
    assert "ok: spool: %s" % queue.spool.path in r.stdout, r.stdout
    assert "ok: spool user" in r.stdout
    os.chmod(queue.spool.path / "queue", 0o750)
    r = queue.run("-t", check=False)
    assert r.returncode != 0
    assert "fix: chmod 700 %s/queue" % queue.spool.path in r.stdout, r.stdout
    os.chmod(queue.spool.path / "queue", 0o700)
    missing = queue.workdir / "nospool"
    queue.configure(spool_dir=missing)
    r = queue.run("-t", check=False)
    assert r.returncode != 0
    assert "fix: install -d -m 700 -o %s" % queue.spool.owner.name in r.stdout, r.stdout
    # the fix works
    m = re.search(r"fix: (install -d -m 700 .*)", r.stdout)
    subprocess.run(m.group(1), shell=True, check=True)
    r = queue.run("-t", check=False)
    assert "ok: spool: %s" % missing in r.stdout, r.stdout


@pytest.mark.parametrize("caps,works", [
    ("+setuid,+setgid,+kill", True),
    ("+setgid,+kill", False),
])
def test_q_capabilities(queue, make_user, caps, works):
    """-q needs only CAP_SETUID, CAP_SETGID and CAP_KILL (postern-queue.service's set):
    root works on the spool as the spool user, so neither CAP_DAC_OVERRIDE nor CAP_CHOWN.
    With less the mail stays queued, nothing is written, and a later run delivers it."""
    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv")
    md = make_user("maildir")
    a = "%s@example.org" % md.name
    qid = queue.spool.add(message(6), [(a, "local")])
    r = subprocess.run(["setpriv", "--bounding-set=-all," + caps, str(smtp_binary()), "-c",
                        str(queue.config_path), "-q"], capture_output=True, text=True,
                       timeout=120)
    if works:
        assert r.returncode == 0, r.stdout + r.stderr + queue.log.tail()
        stored_one(md, 6, a, qid)
        assert queue.spool.ids() == []
    else:
        assert queue.spool.ids() == [qid]
        assert not [m for m in md.stored() if b"queue test 6" in m]
        queue.run("-q")        # all capabilities: it goes, once
        stored_one(md, 6, a, qid)


def test_q_env_files_stay_the_spool_users(queue, make_user):
    """Outcomes written by -q (as root) are files of the spool user, never root's."""
    md = make_user("maildir")
    a = "%s@example.org" % md.name
    qid = queue.spool.add(message(7), [(a, "local"), ("far@remote.example", "remote")])
    queue.run("-q")
    stored_one(md, 7, a, qid)
    d = queue.spool.path / "queue" / qid
    for p in [d] + list(d.iterdir()):
        st = p.stat()
        assert st.st_uid == queue.spool.owner.uid, p
        assert stat.S_IMODE(st.st_mode) & 0o077 == 0, p
