"""kill -9 of imapd's session process at the worst moments, on Maildir and mbox: in the
middle of an APPEND literal, after the literal but before the reply (gdb stops the
session where the index commit starts, the message already in the store), in an
EXPUNGE (between two deletions, and before the index learns of them), in a MOVE (between
the copy and the expunge) and in an index write (at the fdatasync of a flag change's log
entry).  Afterwards a new session sees every message exactly once with its UID, the
UIDs handed out are never handed out again, and the index is consistent (a second
session agrees, and changes go on working).

gdb (tests/install-deps.sh) attaches to the session process, puts a breakpoint on a
function, and kills the process there (imaptest.gdb_kill_at); the test checks that the
breakpoint was reached, so the kill happened at that point and not elsewhere."""

import re
import socket
import time

import pytest

import helpers as h
import imaptest as it

pytestmark = pytest.mark.skipif(it.GDB is None, reason="gdb is not installed "
                                "(tests/install-deps.sh)")

STORES = ["maildir", "mbox"]


def originals(u, n):
    msgs = [h.make_message(i) for i in range(1, n + 1)]
    u.deliver(msgs)
    return [(i, "test message %d" % i) for i in range(1, n + 1)]


def uidnext(c, box="INBOX"):
    typ, data = c.status(box, "(UIDNEXT)")
    assert typ == "OK", data
    return int(re.search(rb"UIDNEXT (\d+)", data[0]).group(1))


def appenduid(data):
    m = re.search(rb"APPENDUID \d+ (\d+)", data[0])
    assert m, data
    return int(m.group(1))


def check_after(d, u, want, maybe=(), uidnext_before=None, box="INBOX", known_dup=None):
    """A new session: the messages of `want` [(uid, subject)] are there exactly once with
    those UIDs; a subject of `maybe` at most once, with a UID of its own; nothing else.
    Another session agrees, and an APPEND then gets a UID above every UID seen and above
    uidnext_before (no UID handed out twice).  Returns the rows.  known_dup: a known
    limit; a second copy (under a UID of its own) is reported as an expected failure
    (xfail) after every other check passed."""
    c = it.login(d, u)
    rows = it.folder_map(c, box)
    subjects = [s for _, s, _ in rows]
    dups = []
    for uid, subj in want:
        assert subjects.count(subj) >= 1, "%s lost: %s" % (subj, rows)
        assert (uid, subj) in [(r[0], r[1]) for r in rows], "%s lost UID %d: %s" % (
            subj, uid, rows)
        if subjects.count(subj) > 1:
            dups.append(subj)
    for subj in maybe:
        if subjects.count(subj) > 1:
            dups.append(subj)
    assert not dups or known_dup, "more than once: %s in %s" % (dups, rows)
    extra = set(subjects) - {s for _, s in want} - set(maybe)
    assert not extra, "unexpected messages: %s" % rows
    uids = [r[0] for r in rows]
    assert uids == sorted(uids) and len(set(uids)) == len(uids), rows
    c2 = it.login(d, u)
    assert it.folder_map(c2, box) == rows, "two sessions disagree"
    c2.logout()
    typ, data = c.append(box, None, None, h.to_wire(h.make_message(99, subject="after")))
    assert typ == "OK", data
    new = appenduid(data)
    assert new > max(uids, default=0), (new, rows)
    if uidnext_before is not None:
        assert new >= uidnext_before, (new, uidnext_before)
    c.logout()
    if dups:
        pytest.xfail("%s: %s" % (known_dup, dups))
    return rows


def raw_session(d, u):
    """A plain connection, logged in, for commands whose reply never comes."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a LOGIN %s %s\r\n" % (u.name.encode(), u.password.encode()))
    while True:
        ln = f.readline()
        assert ln, "closed at login"
        if ln.startswith(b"a "):
            assert ln.startswith(b"a OK"), ln
            break
    return s, f


def read_until_closed(f, timeout=60):
    """Lines until the server closes; the connection must end (the session is dead)."""
    out = []
    while True:
        ln = f.readline()
        if not ln:
            return out
        out.append(ln)


@pytest.mark.parametrize("store", STORES)
def test_kill_in_append_literal(imapd, make_user, store):
    u = make_user(store)
    want = originals(u, 3)
    c = it.login(imapd, u)
    before = uidnext(c)
    c.logout()
    s, f = raw_session(imapd, u)
    pid, start = it.session_pid(imapd, u)
    body = h.to_wire(h.big_message(400000, seed=3))
    s.sendall(b"b APPEND INBOX {%d}\r\n" % len(body))
    assert f.readline().startswith(b"+ ")
    s.sendall(body[:len(body) // 2])
    # the session has taken the half (its socket buffer is empty): kill it mid-literal
    time.sleep(0.5)
    h.signal_if_same(pid, start, 9)
    it.wait_gone(pid, start)
    assert not any(ln.startswith(b"b OK") for ln in read_until_closed(f))
    s.close()
    check_after(imapd, u, want, uidnext_before=before)
    if store == "maildir":     # the half message is not in new/ or cur/
        assert len(list((u.maildir / "new").iterdir())) + \
            len(list((u.maildir / "cur").iterdir())) == 4     # 3 + "after"


@pytest.mark.parametrize("store", STORES)
def test_kill_after_append_literal_before_reply(imapd, make_user, store):
    u = make_user(store)
    want = originals(u, 3)
    c = it.login(imapd, u)
    before = uidnext(c)
    c.logout()
    s, f = raw_session(imapd, u)
    pid, start = it.session_pid(imapd, u)
    g = it.gdb_kill_at(pid, "mail_batch_commit", "index_commit")
    msg = h.to_wire(h.make_message(4, subject="appended"))
    s.sendall(b"b APPEND INBOX (\\Flagged) {%d+}\r\n%s\r\n" % (len(msg), msg))
    out = it.gdb_wait(g)
    assert "mail_batch_commit" in out, "not in the save's commit: " + out
    it.wait_gone(pid, start)
    assert not any(ln.startswith(b"b ") for ln in read_until_closed(f))
    s.close()
    # the message is in the store (renamed into new/, appended to the mbox) before the
    # index commit: a new session finds it, once, under a UID not handed out before
    rows = check_after(imapd, u, want, maybe=["appended"], uidnext_before=before)
    got = [r for r in rows if r[1] == "appended"]
    assert len(got) == 1, rows
    assert got[0][0] >= before




# mbox compacts in place, front to back, journalled (mbox.c "Compaction"): killed at the
# journal's first write, after its first chunk copy, at the third write (a later slot),
# at the cut and at the journal's removal; the next session finishes the compaction.
MBOX_POINTS = ["pwrite64@0", "pwrite64@1", "pwrite64@3", "ftruncate", "unlinkat"]


@pytest.mark.parametrize("store,where", [(s, w) for s in STORES
                                         for w in ["second-removal", "index-commit"]] +
                         [("mbox", p) for p in MBOX_POINTS])
def test_kill_in_expunge(imapd, make_user, store, where):
    """Killed in an EXPUNGE: every message kept is there once with its UID; the ones
    being expunged are there once (still \\Deleted) or gone, never twice."""
    u = make_user(store)
    want = originals(u, 6)
    c = it.login(imapd, u)
    c.select("INBOX")
    assert c.store("2,3,5", "+FLAGS", "(\\Deleted)")[0] == "OK"
    c.logout()
    s, f = raw_session(imapd, u)
    s.sendall(b"b SELECT INBOX\r\n")
    while not f.readline().startswith(b"b OK"):
        pass
    pid, start = it.session_pid(imapd, u)
    if where == "index-commit":
        g = it.gdb_kill_at(pid, "mailbox_expunge", "index_commit")
    elif store == "maildir":
        g = it.gdb_kill_at(pid, "mailbox_expunge", "unlinkat@1")
    elif where == "second-removal":
        g = it.gdb_kill_at(pid, "mailbox_expunge", "pwrite64@1")
    else:
        g = it.gdb_kill_at(pid, "mailbox_expunge", where)
    s.sendall(b"c EXPUNGE\r\n")
    it.gdb_wait(g)
    it.wait_gone(pid, start)
    read_until_closed(f)
    s.close()
    keep = [x for x in want if x[0] not in (2, 3, 5)]
    gone = [x[1] for x in want if x[0] in (2, 3, 5)]
    rows = check_after(imapd, u, keep, maybe=gone)
    if store == "mbox":
        # killed before the journal was written: nothing moved; after: the next
        # session finished the compaction
        left = [r[1] for r in rows if r[1] in gone]
        assert left == (gone if where == "pwrite64@0" else []), rows
    for uid, subj, flags in rows:
        if subj in gone:
            # still there: with its own UID and still \Deleted
            assert (uid, subj) in want and "\\Deleted" in flags, rows
    # a new EXPUNGE finishes the job
    c = it.login(imapd, u)
    c.select("INBOX")
    assert c.expunge()[0] == "OK"
    final = [(r[0], r[1]) for r in it.folder_map(c)]
    assert [x for x in final if x[1] != "after"] == keep
    assert len(final) == len(keep) + 1 and final[-1][1] == "after", final
    c.logout()


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("commit", [0, 1], ids=["first-commit", "second-commit"])
def test_kill_in_move(imapd, make_user, store, commit):
    """Maildir moves message by message (a rename, then src's index, then dst's): killed
    at the first or second index commit of the second message's move, before src's or
    dst's index learns of it.  mbox moves as one batch (copy all, commit, then expunge
    the originals): killed at the copy's index commit (the copies appended to dst's file)
    or at the expunge's: either way the next session finds each message in one folder."""
    u = make_user(store)
    want = originals(u, 5)
    c = it.login(imapd, u)
    assert c.create("Dest")[0] == "OK"
    c.logout()
    s, f = raw_session(imapd, u)
    s.sendall(b"b SELECT INBOX\r\n")
    while not f.readline().startswith(b"b OK"):
        pass
    pid, start = it.session_pid(imapd, u)
    # in the second message's move: the first is done
    if store == "maildir":
        g = it.gdb_kill_at(pid, "mailbox_move", "mailbox_move", "index_commit@%d" % commit)
    else:
        g = it.gdb_kill_at(pid, "mailbox_copy_many", "index_commit@%d" % commit)
    s.sendall(b"c UID MOVE 2:4 Dest\r\n")
    it.gdb_wait(g)
    it.wait_gone(pid, start)
    read_until_closed(f)
    s.close()
    c = it.login(imapd, u)
    inbox = [(r[0], r[1]) for r in it.folder_map(c, "INBOX")]
    dest = [(r[0], r[1]) for r in it.folder_map(c, "Dest")]
    c.logout()
    names = [x[1] for x in inbox + dest]
    # no message lost (RFC 6851: MUST be in at least one of the two) ...
    for _, subj in want:
        assert subj in names, "%s lost: %s %s" % (subj, inbox, dest)
    # what stayed in INBOX kept its UID; message 2 moved, 5 and 1 did not
    for uid, subj in inbox:
        assert (uid, subj) in want
    assert (1, "test message 1") in inbox
    if store == "maildir":     # the first message's move was done
        assert (2, "test message 2") not in inbox
    assert ("test message 5") not in [x[1] for x in dest]
    assert len(set(x[0] for x in dest)) == len(dest)
    check_after(imapd, u, inbox)
    check_after(imapd, u, dest, box="Dest")
    # ... and none in both (RFC 6851 3.3: SHOULD NOT), none twice in one folder
    # (mbox: the copies' intent in INBOX's index directory, completed by the next open
    # of INBOX, mbox.c "MOVE's intent")
    both = [subj for _, subj in want if names.count(subj) > 1]
    assert not both, "in both: INBOX %s, Dest %s" % (inbox, dest)


@pytest.mark.parametrize("store", STORES)
def test_kill_in_index_write(imapd, make_user, store):
    """The flag change's log entry is written, its fdatasync not done: the change is
    there whole or not at all (one transaction), on all three messages alike."""
    u = make_user(store)
    want = originals(u, 4)
    s, f = raw_session(imapd, u)
    s.sendall(b"b SELECT INBOX\r\n")
    while not f.readline().startswith(b"b OK"):
        pass
    pid, start = it.session_pid(imapd, u)
    g = it.gdb_kill_at(pid, "index_commit", "fdatasync")
    s.sendall(b"c STORE 1:3 +FLAGS (\\Flagged $Later)\r\n")
    it.gdb_wait(g)
    it.wait_gone(pid, start)
    read_until_closed(f)
    s.close()
    rows = check_after(imapd, u, want, maybe=["after"])
    flagged = ["\\Flagged" in r[2] for r in rows if r[1] != "after"]
    assert flagged in ([True, True, True, False], [False] * 4), rows
    # the index goes on working: a flag change and a new session seeing it
    c = it.login(imapd, u)
    c.select("INBOX")
    assert c.store("4", "+FLAGS", "(\\Answered)")[0] == "OK"
    c.logout()
    c = it.login(imapd, u)
    rows2 = it.folder_map(c)
    assert "\\Answered" in rows2[3][2], rows2
    assert [r[:2] for r in rows2 if r[1] != "after"] == [r[:2] for r in rows]
    c.logout()
