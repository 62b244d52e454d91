"""Big mailboxes and big messages: 10,000 messages, one 50 MB message retrieved intact
with the session's memory well under the message size.  No time is asserted; the socket
timeouts are only there so that a hang fails instead of blocking the suite."""

import hashlib
import time

import pytest

import helpers as h

MANY = 10000
BIG = 50 * 1024 * 1024


@pytest.mark.parametrize("store", ["maildir", "mbox"])
def test_ten_thousand_messages(pop3d, make_user, store):
    u = make_user(store)
    msgs = [h.make_message(i, body_lines=1) for i in range(MANY)]
    u.deliver(msgs)
    with h.Pop3(pop3d.port, timeout=300) as c:
        assert c.login(u.name, u.password) == h.LOGGED_IN
        count, total = c.stat()
        assert count == MANY
        assert total == sum(len(h.to_wire(m)) for m in msgs)
        uidl = c.uidl()
        assert len(uidl) == MANY and sorted(uidl) == list(range(1, MANY + 1))
        assert len(set(uidl.values())) == MANY
        sizes = c.list()
        assert len(sizes) == MANY and sum(sizes.values()) == total
        # the last one is reachable and right
        w = c.retr(MANY)
        assert w in {h.to_wire(m) for m in msgs}
        assert c.cmd("DELE %d" % MANY).startswith("+OK")
        assert c.cmd("QUIT").startswith("+OK")
        assert c.wait_closed(120)
    pop3d.log.wait("logout", user=u.name, reason="quit", timeout=120)
    assert len(u.stored()) == MANY - 1


def _retr_streaming_sha256(c, n):
    """RETR n, unstuffing and turning CRLF into LF on the fly; (sha256, wire octets)."""
    assert c.cmd("RETR %d" % n).startswith("+OK")
    sha = hashlib.sha256()
    octets = 0
    pending = b""
    while True:
        if not c.buf:
            if not c._fill():
                raise EOFError("connection closed during RETR")
        pending += c.buf
        c.buf = b""
        lines = pending.split(b"\r\n")
        pending = lines.pop()
        for i, line in enumerate(lines):
            assert b"\n" not in line and b"\r" not in line, "bare LF/CR in the output"
            if line == b".":
                rest = b"\r\n".join(lines[i + 1:])
                c.buf = (rest + b"\r\n" if i + 1 < len(lines) else b"") + pending
                return sha.hexdigest(), octets
            if line.startswith(b"."):
                line = line[1:]
            sha.update(line + b"\n")
            octets += len(line) + 2


def _vmhwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _peaks_by_uid(pop3d):
    """{uid: highest VmHWM in kB} over the processes of the open connection."""
    out = {}
    for pid, _ in pop3d.children():
        kb, uids = _vmhwm_kb(pid), h.proc_uids(pid)
        if kb is not None and uids is not None:
            out[uids[0]] = max(out.get(uids[0], 0), kb)
    return out


# The message is 50 MB; a process that loads it grows by that much.  A process's peak
# includes what it used before (yescrypt in PAM alone takes ~16 MB in the root monitor,
# which becomes the session), so growth is measured against a session that retrieved a
# small message, and the absolute peak must stay well under the message size.
GROWTH_LIMIT_KB = 10 * 1024
ABS_LIMIT_KB = 40 * 1024


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_fifty_megabyte_message(pop3d, make_user, sanitizer_build, ctx, tls):
    u = make_user("maildir")
    u.deliver([h.make_message(0, subject="small")])
    msg = h.big_message(BIG)
    u.deliver([msg])
    want = hashlib.sha256(msg).hexdigest()
    wire_size = len(msg) + msg.count(b"\n")
    del msg
    port, kw = (pop3d.tls_port, {"tls": ctx}) if tls else (pop3d.port, {})
    peaks, rss = [], []
    for which in ("small", "big"):
        with h.Pop3(port, timeout=300, **kw) as c:
            assert c.login(u.name, u.password) == h.LOGGED_IN
            sizes = c.list()
            n = [k for k, v in sizes.items() if v == wire_size]
            assert n, "no message of %d octets in LIST: %s" % (wire_size, sizes)
            if which == "small":
                small = [k for k in sizes if k != n[0]][0]
                assert h.subject_of(c.retr(small)) == "small"
            else:
                got, octets = _retr_streaming_sha256(c, n[0])
                assert octets == wire_size
                assert got == want, "the message came out changed"
            peaks.append(_peaks_by_uid(pop3d))
            assert c.cmd("QUIT").startswith("+OK")
            assert c.wait_closed(60)
        deadline = time.monotonic() + 60
        while len(pop3d.log.events("logout", user=u.name)) < len(peaks):
            assert time.monotonic() < deadline, "no logout line: " + pop3d.log.tail()
            time.sleep(0.05)
        rss.append(pop3d.log.events("logout", user=u.name)[len(peaks) - 1].get("maxrss_kb"))
    base, big = peaks
    assert set(big) >= {u.uid}, "no process of the session seen: %s" % big
    for uid, kb in big.items():
        grew = kb - base.get(uid, 0)
        assert grew < GROWTH_LIMIT_KB, "uid %d: peak %d kB after the big RETR, %d kB " \
            "after a small one" % (uid, kb, base.get(uid, 0))
        if not sanitizer_build:
            assert kb < ABS_LIMIT_KB, "uid %d peaked at %d kB" % (uid, kb)
    assert rss[1] is not None, "no maxrss_kb in the logout line"
    assert int(rss[1]) - int(rss[0]) < GROWTH_LIMIT_KB, rss
    if not sanitizer_build:
        assert int(rss[1]) < ABS_LIMIT_KB, rss


def test_logout_line_counts(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.retr(1)
        c.retr(2)
        assert c.cmd("TOP 3 0").startswith("+OK")
        c.multi()
        assert c.cmd("DELE 3").startswith("+OK")
        c.quit()
    ev = pop3d.log.wait("logout", user=user.name)
    assert (ev["reason"], ev["top"], ev["retr"], ev["del"]) == ("quit", "1", "2", "1"), \
        ev["_line"]
    assert int(ev.get("maxrss_kb", "0")) > 0, "no maxrss_kb: " + ev["_line"]
