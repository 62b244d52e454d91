"""Shared pieces of the imapd concurrency, fault and scale tests (test_imap_concurrency.py,
test_imap_faults.py, test_imap_scale.py): a logged-in imaplib client, the connection's
session process, IDLE until a line, the whole folder as {UID: Subject}, gdb stopping the
session at a function and killing it there."""

import imaplib
import re
import shutil
import subprocess
import time

import helpers as h

GDB = shutil.which("gdb")


def login(d, user, timeout=60):
    """imaplib on the plain port (LOGIN is allowed from 127.0.0.1: plaintext_auth_from)."""
    c = imaplib.IMAP4("127.0.0.1", d.port, timeout=timeout)
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    return c


def login_tls(d, ctx, user, timeout=30):
    """imaplib over IMAPS (the CA-verifying context ctx), logged in."""
    c = imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=timeout)
    assert c.login(user.name, user.password)[0] == "OK"
    return c


def folder_state(d, ctx, user, folder="INBOX"):
    """{subject: sorted flags} of a folder as a new read-only IMAPS session sees it now,
    without \\Recent (which is per session)."""
    c = login_tls(d, ctx, user)
    try:
        typ, data = c.select('"%s"' % folder, readonly=True)
        assert typ == "OK", data
        out = {}
        if int(data[0]):
            typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert typ == "OK"
            for x in data:
                if isinstance(x, tuple):
                    flags = re.search(rb"FLAGS \(([^)]*)\)", x[0]).group(1).split()
                    out[h.subject_of(x[1])] = sorted(f.decode() for f in flags
                                                     if f != b"\\Recent")
        return out
    finally:
        c.logout()


def session_pids(d, user):
    """The processes of d's connections that run as the user (the sessions)."""
    out = []
    for pid, start in d.children():
        ids = h.proc_uids(pid)
        if ids is not None and user.uid in ids:
            out.append((pid, start))
    return out


def session_pid(d, user, timeout=10.0):
    """The one session process of the user's open connection."""
    deadline = time.monotonic() + timeout
    while True:
        got = session_pids(d, user)
        if len(got) == 1:
            return got[0]
        assert time.monotonic() < deadline, "sessions of %s: %s" % (user.name, got)
        time.sleep(0.05)


def wait_gone(pid, start, timeout=30.0):
    deadline = time.monotonic() + timeout
    while h.alive(pid, start):
        assert time.monotonic() < deadline, "process %d still alive" % pid
        time.sleep(0.05)


def idle_start(c):
    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    ln = c.readline()
    assert ln.startswith(b"+ "), ln
    return tag


def idle_until(c, pred, timeout=60):
    """In IDLE: the untagged lines until pred(line) is true."""
    c.sock.settimeout(timeout)
    lines = []
    while True:
        ln = c.readline()
        assert ln, "the connection ended in IDLE"
        lines.append(ln.strip())
        if pred(ln.strip()):
            return lines


def idle_done(c, tag):
    """DONE; the untagged lines before the tagged OK."""
    c.send(b"DONE\r\n")
    lines = []
    while True:
        ln = c.readline()
        assert ln, "the connection ended after DONE"
        if ln.startswith(tag):
            assert b" OK " in ln, ln
            return lines
        lines.append(ln.strip())


_SUBJ = re.compile(rb"Subject: ([^\r\n]*)", re.I)
_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")


def folder_map(c, box="INBOX"):
    """SELECT box; [(uid, subject, flags)] in sequence order, from
    UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]); flags without \\Recent,
    which belongs to the one session that claimed it."""
    c.untagged_responses.clear()
    typ, data = c.select(box)
    assert typ == "OK", data
    n = int(data[0])
    if n == 0:
        return []
    c.untagged_responses.clear()
    typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    # another session's expunge or delivery reported during the UID FETCH (allowed)
    moved = c.untagged_responses.get("EXPUNGE") or c.untagged_responses.get("EXISTS")
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        m = _SUBJ.search(body)
        uid = _UID.search(meta)
        fl = _FLAGS.search(meta)
        assert uid, meta
        out.append((int(uid.group(1)), m.group(1).decode() if m else None,
                    set(fl.group(1).decode().split()) - {"\\Recent"} if fl else set()))
    assert moved or len(out) == n, "%d messages, %d fetched" % (n, len(out))
    assert len(set(x[0] for x in out)) == len(out), out
    return out


def gdb_kill_at(pid, *chain, timeout=120):
    """gdb attaches to pid and kills it (SIGKILL, gdb's kill) at a point given by chain:
    function names, each optionally "name@N" (its N+1-th call), reached one after the
    other (a breakpoint on the first; when there, on the next; ...).  Returns the running
    gdb once the first breakpoint is in; finish with gdb_wait()."""
    argv = [GDB, "-nx", "-batch", "-iex", "set debuginfod enabled off",
            "-iex", "set confirm off", "-iex", "set pagination off", "-p", str(pid)]
    for k, point in enumerate(chain):
        func, _, skip = point.partition("@")
        if k:
            argv += ["-ex", "delete"]
        argv += ["-ex", "break %s" % func]
        if skip:
            argv += ["-ex", "ignore %d %s" % (k + 1, skip)]
        if k == 0:
            argv += ["-ex", "echo GDB-CONTINUING\\n"]
        argv += ["-ex", "continue"]
    argv += ["-ex", "bt 6", "-ex", "kill"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, text=True)
    out = []
    deadline = time.monotonic() + timeout
    while True:
        ln = p.stdout.readline()
        if not ln:
            p.wait()
            raise AssertionError("gdb ended before continuing:\n" + "".join(out))
        out.append(ln)
        if ln.startswith("GDB-CONTINUING"):
            break
        assert time.monotonic() < deadline, "gdb did not attach:\n" + "".join(out)
    p.out_before = "".join(out)
    p.points = len(chain)
    return p


def gdb_wait(p, timeout=120):
    """gdb's whole output; asserts that the last breakpoint was hit (the kill happened
    there) and that gdb killed the process."""
    try:
        rest, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rest, _ = p.communicate()
        raise AssertionError("gdb timed out:\n" + p.out_before + rest)
    out = p.out_before + rest
    hits = re.findall(r"^Breakpoint (\d+)(?:\.\d+)?, ", out, re.M)
    assert hits and int(hits[-1]) == p.points, "the breakpoint was not reached:\n" + out
    assert re.search(r"^\[Inferior 1 \(process \d+\) killed\]", out, re.M), out
    return out
