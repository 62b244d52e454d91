"""imapd: QRESYNC (RFC 7162 3.2) with real sessions, on Maildir and on mbox: ENABLE
QRESYNC, a resync by SELECT (QRESYNC ...) after another session expunged and changed
flags (VANISHED (EARLIER), then FETCH of the changed flags), known UIDs narrowing it,
sequence match data, the fallback when the client's MODSEQ is older than what the
index remembers, UID FETCH ... (CHANGEDSINCE m VANISHED), VANISHED instead of EXPUNGE
after ENABLE QRESYNC (NOOP, IDLE, EXPUNGE with [HIGHESTMODSEQ], UID EXPUNGE, MOVE; none at
CLOSE), [CLOSED] when a SELECT replaces the selected folder, and the BAD answers the RFC
asks for."""

import imaplib
import re
import threading
import time

import pytest

import helpers as h


def login(d, ctx, user, timeout=30):
    c = imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=timeout)
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    return c


def raw(c, line):
    """Send one command; return (untagged lines, tagged line), all raw bytes."""
    tag = c._new_tag()
    c.send(tag + b" " + line.encode() + b"\r\n")
    lines = []
    while True:
        ln = c.readline()
        assert ln, "the connection ended"
        ln = ln.rstrip(b"\r\n")
        if ln.startswith(tag + b" "):
            return lines, ln[len(tag) + 1:]
        lines.append(ln)


def uidset(text):
    """'1:3,7' -> {1, 2, 3, 7}"""
    out = set()
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        lo, hi = int(lo), int(hi or lo)
        out.update(range(min(lo, hi), max(lo, hi) + 1))
    return out


def vanished(lines, earlier):
    prefix = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    out = set()
    for ln in lines:
        if ln.startswith(prefix) and (earlier or not ln.startswith(b"* VANISHED (")):
            out |= uidset(ln[len(prefix):].decode())
    return out


def fetches(lines):
    """{uid: (seq, flags text, modseq)} of the untagged FETCH lines."""
    out = {}
    for ln in lines:
        m = re.match(rb"\* (\d+) FETCH \((.*)\)$", ln)
        if not m:
            continue
        body = m.group(2)
        uid = int(re.search(rb"UID (\d+)", body).group(1))
        fl = re.search(rb"FLAGS \(([^)]*)\)", body)
        ms = re.search(rb"MODSEQ \((\d+)\)", body)
        out[uid] = (int(m.group(1)), fl.group(1).decode() if fl else None,
                    int(ms.group(1)) if ms else None)
    return out


def code(lines, name):
    for ln in lines:
        m = re.match(rb"\* OK \[" + name.encode() + rb" (\d+)\]", ln)
        if m:
            return int(m.group(1))
    return None


def enable(c):
    lines, tagged = raw(c, "ENABLE QRESYNC")
    assert tagged.startswith(b"OK") and b"* ENABLED QRESYNC" in lines, lines
    return lines


def select(c, args="INBOX"):
    lines, tagged = raw(c, "SELECT " + args)
    assert tagged.startswith(b"OK"), (lines, tagged)
    c.state = "SELECTED"
    return lines


@pytest.fixture(params=["maildir", "mbox"])
def user8(request, make_user):
    """Each store in turn: a user with eight messages (UIDs 1..8)."""
    u = make_user(request.param)
    u.deliver([h.make_message(i) for i in range(1, 9)])
    return u


def test_enable_and_capability(imapd, ctx, user8):
    c = login(imapd, ctx, user8)
    caps = c.capability()[1][0].decode().split()
    assert "QRESYNC" in caps and "CONDSTORE" in caps and "ENABLE" in caps
    # QRESYNC in SELECT and VANISHED in UID FETCH before ENABLE QRESYNC: BAD
    _, tagged = raw(c, "SELECT INBOX (QRESYNC (1 1))")
    assert tagged.startswith(b"BAD")
    lines, tagged = raw(c, "ENABLE QRESYNC")
    # ENABLE QRESYNC implies CONDSTORE, reported as QRESYNC only (RFC 7162 3.2.3)
    assert lines == [b"* ENABLED QRESYNC"] and tagged.startswith(b"OK")
    lines, _ = raw(c, "ENABLE QRESYNC CONDSTORE")
    assert lines == [b"* ENABLED"]          # nothing new
    lines = select(c)
    assert code(lines, "HIGHESTMODSEQ") is not None
    # CONDSTORE is on: an untagged FETCH carries UID and MODSEQ (3.2.4)
    lines, _ = raw(c, "STORE 2 +FLAGS (\\Flagged)")
    f = fetches(lines)
    assert 2 in f and f[2][0] == 2 and "\\Flagged" in f[2][1] and f[2][2] is not None
    # the VANISHED modifier: only in UID FETCH, only with CHANGEDSINCE
    _, tagged = raw(c, "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert tagged.startswith(b"BAD")
    _, tagged = raw(c, "UID FETCH 1:* (FLAGS) (VANISHED)")
    assert tagged.startswith(b"BAD")
    # bad QRESYNC parameters: BAD, nothing opened
    for bad in ["(QRESYNC (0 1))", "(QRESYNC (1 1 1:*))", "(QRESYNC (1 1 1:3 (1:3)))",
                "(QRESYNC)", "(FOO)"]:
        _, tagged = raw(c, "EXAMINE INBOX " + bad)
        assert tagged.startswith(b"BAD"), bad
    c.logout()


def test_resync_after_other_session(imapd, ctx, user8):
    """The client was in sync at MODSEQ m; another session expunged 3 and 5, flagged 2
    and marked 7 seen; the resync tells exactly that."""
    a = login(imapd, ctx, user8)
    enable(a)
    lines = select(a)
    uv = code(lines, "UIDVALIDITY")
    m = code(lines, "HIGHESTMODSEQ")
    assert uv and m
    a.logout()

    b = login(imapd, ctx, user8)
    b.select("INBOX")
    b.store("3,5", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.store("2", "+FLAGS", "(\\Flagged)")      # numbers after the expunge: UIDs 2
    b.store("5", "+FLAGS", "(\\Seen)")         # and 7
    b.logout()

    a = login(imapd, ctx, user8)
    enable(a)
    lines = select(a, "INBOX (QRESYNC (%d %d 1:8))" % (uv, m))
    assert code(lines, "HIGHESTMODSEQ") > m
    assert b"* 6 EXISTS" in lines
    assert vanished(lines, True) == {3, 5}
    assert vanished(lines, False) == set()
    f = fetches(lines)
    assert set(f) == {2, 7}, lines
    assert f[2][0] == 2 and "\\Flagged" in f[2][1] and f[2][2] > m
    assert f[7][0] == 5 and "\\Seen" in f[7][1]
    # VANISHED (EARLIER) before the FETCHes, all before the tagged OK
    iv = [i for i, ln in enumerate(lines) if ln.startswith(b"* VANISHED")]
    ifetch = [i for i, ln in enumerate(lines) if b" FETCH " in ln]
    assert max(iv) < min(ifetch)
    m2 = code(lines, "HIGHESTMODSEQ")

    # known UIDs narrow both: only 1:4 asked about
    lines = select(a, "INBOX (QRESYNC (%d %d 1:4))" % (uv, m))
    assert vanished(lines, True) == {3}
    assert set(fetches(lines)) == {2}
    assert any(ln.startswith(b"* OK [CLOSED]") for ln in lines)
    # nothing changed since m2: nothing to say
    lines = select(a, "INBOX (QRESYNC (%d %d))" % (uv, m2))
    assert vanished(lines, True) == set() and fetches(lines) == {}
    # another UIDVALIDITY: the parameters are ignored (3.2.5)
    lines = select(a, "INBOX (QRESYNC (%d %d 1:8))" % (uv + 1, m))
    assert vanished(lines, True) == set() and fetches(lines) == {}
    # UID FETCH ... (CHANGEDSINCE m VANISHED): the same two answers for the set asked
    lines = select(a, "INBOX")
    lines, tagged = raw(a, "UID FETCH 1:8 (FLAGS) (CHANGEDSINCE %d VANISHED)" % m)
    assert tagged.startswith(b"OK")
    assert vanished(lines, True) == {3, 5}
    assert set(fetches(lines)) == {2, 7}
    assert lines[0].startswith(b"* VANISHED (EARLIER) ")
    lines, _ = raw(a, "UID FETCH 4:8 (FLAGS) (CHANGEDSINCE %d VANISHED)" % m)
    assert vanished(lines, True) == {5} and set(fetches(lines)) == {7}
    a.logout()


def test_seq_match(imapd, ctx, user8):
    """The sequence match data (RFC 7162 3.2.5.2): up to the last pair (number, UID)
    that still holds, the client knows every expunge; VANISHED starts above it."""
    b = login(imapd, ctx, user8)
    b.select("INBOX")
    b.store("2,6", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.logout()
    # the folder now: UIDs 1 3 4 5 7 8 (numbers 1..6)
    a = login(imapd, ctx, user8)
    enable(a)
    uv = code(select(a), "UIDVALIDITY")
    lines = select(a, "INBOX (QRESYNC (%d 1 1:8))" % uv)
    assert vanished(lines, True) == {2, 6}
    # the client knew 1:10 (9 and 10 were never given out): nothing past UIDNEXT - 1
    lines = select(a, "INBOX (QRESYNC (%d 1 1:10))" % uv)
    assert vanished(lines, True) == {2, 6}
    # 1 -> 1 still holds, 3 -> 3 no longer (it is 4 now): from UID 2 up
    lines = select(a, "INBOX (QRESYNC (%d 1 1:8 (1,3 1,3)))" % uv)
    assert vanished(lines, True) == {2, 6}
    # the client's view was taken after 2 went (1 -> 1, 2 -> 3, 4 -> 5 hold): only
    # UIDs above 5 can have gone unseen
    lines = select(a, "INBOX (QRESYNC (%d 1 1:8 (1:2,4 1,3,5)))" % uv)
    assert vanished(lines, True) == {6}
    a.logout()


@pytest.mark.parametrize("store", ["maildir", "mbox"])
def test_forgotten_expunges_fall_back(imapd, ctx, make_user, store):
    """More expunges than the index remembers (INDEX_EXPUNGES_MAX, 2048): a client
    whose MODSEQ is older than the oldest remembered is told every UID of its set that no
    message has (RFC 7162 3.2.5.1 allows it), in a few lines; sequence match data still
    narrows it; a MODSEQ after the forgotten ones is answered exactly."""
    n = 2100
    u = make_user(store)
    u.deliver([h.make_message(i, body_lines=1) for i in range(1, n + 5)])
    # a STORE of 2000 flag changes is 2000 index commits: slow under ASan
    a = login(imapd, ctx, u, timeout=600)
    enable(a)
    lines = select(a)
    uv, m0 = code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")
    raw(a, "STORE 1:%d +FLAGS.SILENT (\\Deleted)" % (n - 100))
    raw(a, "EXPUNGE")
    lines, _ = raw(a, "NOOP")
    m1 = code(select(a), "HIGHESTMODSEQ")
    raw(a, "STORE 1:100 +FLAGS.SILENT (\\Deleted)")
    _, tagged = raw(a, "EXPUNGE")
    assert b"[HIGHESTMODSEQ " in tagged
    c = login(imapd, ctx, u)
    enable(c)
    # from before everything: forgotten, so every UID of 1:n+4 that no message has
    lines = select(c, "INBOX (QRESYNC (%d %d 1:%d))" % (uv, m0, n + 4))
    assert b"* 4 EXISTS" in lines
    assert vanished(lines, True) == set(range(1, n + 1))
    # without known UIDs: 1:UIDNEXT-1
    lines = select(c, "INBOX (QRESYNC (%d %d))" % (uv, m0))
    assert vanished(lines, True) == set(range(1, n + 1))
    # sequence match data: message 1 is UID n+1, as the client says: every expunge
    # below it is known to the client, nothing to report
    lines = select(c, "INBOX (QRESYNC (%d %d 1:%d (1 %d)))" % (uv, m0, n + 4, n + 1))
    assert vanished(lines, True) == set()
    # a pair that no longer holds (message 1 was UID n-99 after the first expunge)
    lines = select(c, "INBOX (QRESYNC (%d %d 1:%d (1 %d)))" % (uv, m0, n + 4, n - 99))
    assert vanished(lines, True) == set(range(1, n + 1))
    # after the first EXPUNGE: remembered, exact
    lines = select(c, "INBOX (QRESYNC (%d %d))" % (uv, m1))
    assert vanished(lines, True) == set(range(n - 99, n + 1))
    lines, _ = raw(c, "UID FETCH 1:%d (FLAGS) (CHANGEDSINCE %d VANISHED)" % (n + 4, m0))
    assert vanished(lines, True) == set(range(1, n + 1))
    a.logout()
    c.logout()


def test_vanished_instead_of_expunge(imapd, ctx, user8):
    """After ENABLE QRESYNC every expunge is reported as VANISHED: another session's at
    NOOP and in IDLE, our own EXPUNGE (with [HIGHESTMODSEQ]), UID EXPUNGE and MOVE; CLOSE
    says nothing."""
    a = login(imapd, ctx, user8)
    enable(a)
    select(a)
    b = login(imapd, ctx, user8)
    b.select("INBOX")
    b.store("1", "+FLAGS", "(\\Deleted)")
    b.expunge()
    lines, _ = raw(a, "NOOP")
    assert vanished(lines, False) == {1}
    assert not any(ln.endswith(b" EXPUNGE") for ln in lines)
    assert not any(b"(EARLIER)" in ln for ln in lines)

    # IDLE: another session's expunge arrives as VANISHED
    def change():
        time.sleep(0.3)
        b.store("1", "+FLAGS", "(\\Deleted)")     # UID 2
        b.expunge()

    t = threading.Thread(target=change)
    t.start()
    tag = a._new_tag()
    a.send(tag + b" IDLE\r\n")
    assert a.readline().startswith(b"+ ")
    seen = []
    while True:
        ln = a.readline().rstrip(b"\r\n")
        assert ln
        seen.append(ln)
        if ln.startswith(b"* VANISHED"):
            break
    a.send(b"DONE\r\n")
    while not a.readline().startswith(tag):
        pass
    t.join()
    assert vanished(seen, False) == {2}
    b.logout()

    # our own EXPUNGE: VANISHED, and the new HIGHESTMODSEQ in the tagged OK (3.2.7)
    raw(a, "STORE 1,3 +FLAGS.SILENT (\\Deleted)")   # UIDs 3 and 5
    lines, tagged = raw(a, "EXPUNGE")
    assert vanished(lines, False) == {3, 5}
    assert re.match(rb"OK \[HIGHESTMODSEQ \d+\]", tagged), tagged
    # UID EXPUNGE (3.2.9)
    raw(a, "UID STORE 4,6 +FLAGS.SILENT (\\Deleted)")
    lines, tagged = raw(a, "UID EXPUNGE 4")
    assert vanished(lines, False) == {4} and b"[HIGHESTMODSEQ " in tagged
    # MOVE
    lines, tagged = raw(a, "UID MOVE 7 Trash")
    assert tagged.startswith(b"OK") and vanished(lines, False) == {7}
    assert not any(ln.endswith(b" EXPUNGE") for ln in lines)
    # CLOSE expunges 6 and says nothing (3.2.8)
    lines, tagged = raw(a, "CLOSE")
    assert lines == [] and tagged.startswith(b"OK") and b"HIGHESTMODSEQ" not in tagged
    lines = select(a)
    assert b"* 1 EXISTS" in lines           # only UID 8 left
    a.logout()


def test_closed_response_code(imapd, ctx, user8):
    """[CLOSED] (RFC 7162 3.2.11) between the old folder's responses and the new one's,
    with or without QRESYNC; not at CLOSE/UNSELECT."""
    a = login(imapd, ctx, user8)
    lines = select(a)
    assert not any(b"[CLOSED]" in ln for ln in lines)
    lines = select(a, "Trash")
    i = [k for k, ln in enumerate(lines) if ln.startswith(b"* OK [CLOSED]")]
    assert len(i) == 1 and i[0] < [k for k, ln in enumerate(lines) if b" EXISTS" in ln][0]
    enable_lines, tagged = raw(a, "ENABLE QRESYNC")   # selected state: not allowed here
    assert tagged.startswith(b"BAD")
    lines, _ = raw(a, "UNSELECT")
    assert lines == []
    a.logout()


def test_expunges_remembered_across_sessions_and_reopen(imapd, ctx, user8):
    """What the index remembers survives the session that expunged: a later session's
    resync from each intermediate MODSEQ gets exactly the expunges after it."""
    a = login(imapd, ctx, user8)
    enable(a)
    lines = select(a)
    uv = code(lines, "UIDVALIDITY")
    marks = [code(lines, "HIGHESTMODSEQ")]
    for seq in ("1", "1", "1"):                 # UIDs 1, 2, 3 in turn
        raw(a, "STORE %s +FLAGS.SILENT (\\Deleted)" % seq)
        _, tagged = raw(a, "EXPUNGE")
        marks.append(int(re.search(rb"HIGHESTMODSEQ (\d+)", tagged).group(1)))
    a.logout()
    c = login(imapd, ctx, user8)
    enable(c)
    for k, mark in enumerate(marks):
        lines = select(c, "INBOX (QRESYNC (%d %d))" % (uv, mark))
        assert vanished(lines, True) == set(range(k + 1, 4)), (k, lines)
    c.logout()


def test_condstore_enabling_command_in_selected_state(imapd, ctx, user8):
    """The first CONDSTORE enabling command with a folder selected says HIGHESTMODSEQ
    (RFC 7162 3.1); later ones do not; from then on untagged FETCH carries MODSEQ."""
    a = login(imapd, ctx, user8)
    lines = select(a)
    hms = code(lines, "HIGHESTMODSEQ")
    lines, tagged = raw(a, "FETCH 1 (MODSEQ)")
    assert tagged.startswith(b"OK") and code(lines, "HIGHESTMODSEQ") == hms
    lines, _ = raw(a, "FETCH 1 (MODSEQ)")
    assert code(lines, "HIGHESTMODSEQ") is None
    lines, _ = raw(a, "STORE 1 +FLAGS (\\Seen)")
    f = fetches(lines)
    assert f[1][2] is not None and f[1][2] > hms
    # STATUS HIGHESTMODSEQ enables it too (a new session)
    b = login(imapd, ctx, user8)
    select(b)
    lines, _ = raw(b, "STATUS Trash (HIGHESTMODSEQ)")
    assert code(lines, "HIGHESTMODSEQ") is not None
    lines, _ = raw(b, "STORE 2 +FLAGS (\\Seen)")
    assert fetches(lines)[2][2] is not None
    a.logout()
    b.logout()
