"""ipop3d and imapd on one mailbox at the same time, with an MTA delivering meanwhile, on
Maildir and mbox: a POP3 DELE + QUIT reaches an IMAP session in IDLE as EXPUNGE; an IMAP
expunge during a POP3 transaction leaves POP3's fixed list consistent and its QUIT loses
and resurrects nothing; UIDs stay what they were; and rounds of concurrent sessions
(threads: IMAP, POP3, MTA) end with every delivered message there exactly once, with its
UID and its flags, and none gone that nobody deleted."""

import random
import re
import threading
import time

import pytest

import helpers as h
import imaptest as it

STORES = ["maildir", "mbox"]


def deliver(u, msg):
    """As an MTA: Maildir tmp/ -> new/, or an mbox append under dotlock + fcntl."""
    if u.store == "mbox":
        u.append_mbox_locked(msg)
    else:
        u.deliver([msg])


def pop3_subjects(c):
    """{POP3 number: Subject} from TOP n 0."""
    out = {}
    for n in sorted(c.list()):
        assert c.cmd("TOP %d 0" % n).startswith("+OK")
        out[n] = h.subject_of(b"\r\n".join(c.multi()))
    return out


@pytest.mark.parametrize("store", STORES)
def test_pop3_quit_reaches_imap_idle(imapd, pop3d, make_user, store):
    u = make_user(store)
    u.deliver([h.make_message(i) for i in range(1, 6)])
    c = it.login(imapd, u)
    before = it.folder_map(c)
    assert [(x[0], x[1]) for x in before] == [(i, "test message %d" % i) for i in range(1, 6)]
    tag = it.idle_start(c)
    # the MTA delivers while the IMAP session idles and a POP3 session is open
    with h.Pop3(pop3d.port) as p:
        assert p.login(u.name, u.password) == h.LOGGED_IN
        assert pop3_subjects(p) == {i: "test message %d" % i for i in range(1, 6)}
        deliver(u, h.make_message(6))
        it.idle_until(c, lambda ln: ln == b"* 6 EXISTS")
        # POP3's list is fixed at login: message 6 is not in it
        assert p.stat()[0] == 5
        assert p.cmd("DELE 2").startswith("+OK")
        assert p.cmd("DELE 4").startswith("+OK")
        assert p.quit().startswith("+OK")
    seen = set()

    def both(ln):
        if re.fullmatch(rb"\* \d+ EXPUNGE", ln):
            seen.add(ln)
        return len(seen) == 2

    lines = it.idle_until(c, both)
    # 2 then 4 (now 3), or 4 then 2, whichever order the storage reports them in
    assert seen in ({b"* 2 EXPUNGE", b"* 3 EXPUNGE"}, {b"* 4 EXPUNGE", b"* 2 EXPUNGE"}), lines
    it.idle_done(c, tag)
    after = it.folder_map(c)
    assert [(x[0], x[1]) for x in after] == [
        (1, "test message 1"), (3, "test message 3"), (5, "test message 5"),
        (6, "test message 6")]
    c.logout()
    # a new session agrees
    c = it.login(imapd, u)
    assert [(x[0], x[1]) for x in it.folder_map(c)] == [(x[0], x[1]) for x in after]
    c.logout()
    assert sorted(h.subject_of(h.to_wire(m)) for m in u.stored()) == [
        "test message 1", "test message 3", "test message 5", "test message 6"]


@pytest.mark.parametrize("store", STORES)
def test_imap_expunge_during_pop3_transaction(imapd, pop3d, make_user, store):
    u = make_user(store)
    u.deliver([h.make_message(i) for i in range(1, 6)])
    c = it.login(imapd, u)
    it.folder_map(c)
    with h.Pop3(pop3d.port) as p:
        assert p.login(u.name, u.password) == h.LOGGED_IN
        uidl = p.uidl()
        sizes = p.list()
        assert len(uidl) == 5
        # IMAP deletes message 3 (UID 3) and the MTA delivers meanwhile
        assert c.uid("STORE", "3", "+FLAGS", "(\\Deleted)")[0] == "OK"
        deliver(u, h.make_message(6))
        typ, data = c.expunge()
        assert typ == "OK" and data == [b"3"], data
        # POP3's list stays the one of its login: same numbers, sizes, UIDLs
        assert p.uidl() == uidl
        assert p.list() == sizes
        assert p.stat()[0] == 5
        # messages after the expunged one keep their POP3 numbers (no shift)
        assert h.subject_of(p.retr(4)) == "test message 4"
        assert h.subject_of(p.retr(5)) == "test message 5"
        assert h.subject_of(p.retr(2)) == "test message 2"
        # the expunged one: an error or its old bytes, never another message
        r = p.cmd("RETR 3")
        if r.startswith("+OK"):
            assert h.subject_of(b"\r\n".join(p.multi())) == "test message 3"
        else:
            assert r.startswith("-ERR"), r
        assert p.cmd("DELE 1").startswith("+OK")
        assert p.cmd("DELE 3").startswith(("+OK", "-ERR"))
        assert p.quit().startswith("+OK")
    pop3d.log.wait("logout", user=u.name, reason="quit")
    typ, _ = c.noop()
    got = it.folder_map(c)
    want = [(2, "test message 2"), (4, "test message 4"), (5, "test message 5"),
            (6, "test message 6")]
    assert [(x[0], x[1]) for x in got] == want
    c.logout()
    c = it.login(imapd, u)
    assert [(x[0], x[1]) for x in it.folder_map(c)] == want
    c.logout()
    assert sorted(h.subject_of(h.to_wire(m)) for m in u.stored()) == [x[1] for x in want]


# --- rounds of concurrent clients --------------------------------------------------------

class Ledger:
    """What the clients asked for, shared by the threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.delivered = set()     # subjects
        self.deleted = set()       # subjects someone asked to delete
        self.flagged = set()       # subjects someone set \Flagged on (never removed)
        self.uid_of = {}           # subject -> UID as first seen by an IMAP session
        self.pop3_gone = []        # (UIDL, reply): POP3 could not read it
        self.errors = []

    def saw(self, uid, subj):
        if subj is None:
            # expunged by another client while this FETCH read it: empty header
            # fields (RFC 2180 4.1.3); the final check, with no one else, sees it all
            return
        with self.lock:
            old = self.uid_of.setdefault(subj, uid)
            if old != uid:
                self.errors.append("%s had UID %d, now %d" % (subj, old, uid))


def _imap_worker(d, u, ledger, me, rounds, rnd):
    c = it.login(d, u)
    try:
        for _ in range(rounds):
            rows = it.folder_map(c)
            for uid, subj, _ in rows:
                ledger.saw(uid, subj)
            mine = [(uid, s) for uid, s, _ in rows if s and s.startswith("%s " % me)]
            rnd.shuffle(mine)
            for uid, subj in mine[:2]:
                with ledger.lock:
                    ledger.flagged.add(subj)
                assert c.uid("STORE", str(uid), "+FLAGS", "(\\Flagged $Seen%s)" % me)[0] \
                    == "OK"
            for uid, subj in mine[2:3]:
                with ledger.lock:
                    ledger.deleted.add(subj)
                assert c.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")[0] == "OK"
                assert c.uid("EXPUNGE", str(uid))[0] == "OK"
            assert c.noop()[0] == "OK"
    finally:
        c.logout()


def _pop3_worker(d, u, ledger, rounds, rnd):
    for _ in range(rounds):
        with h.Pop3(d.port, timeout=120) as p:
            r = p.login(u.name, u.password)
            if r != h.LOGGED_IN:       # another POP3 session (none here) would be refused
                raise AssertionError(r)
            uidl = p.uidl()
            subjects = {}
            for n in sorted(uidl):
                r = p.cmd("TOP %d 0" % n)
                if r.startswith("+OK"):
                    subjects[n] = h.subject_of(b"\r\n".join(p.multi()))
                else:
                    # expunged by IMAP since this session's login: checked at the end
                    assert r.startswith("-ERR"), r
                    with ledger.lock:
                        ledger.pop3_gone.append((uidl[n], r))
            mine = [n for n, s in subjects.items() if s and s.startswith("pop ")]
            rnd.shuffle(mine)
            for n in mine[:2]:
                with ledger.lock:
                    ledger.deleted.add(subjects[n])
                assert p.cmd("DELE %d" % n).startswith("+OK")
            assert p.quit().startswith("+OK")


def _mta_worker(u, ledger, owners, count, rnd):
    for k in range(count):
        subj = "%s new %d" % (rnd.choice(owners), k)
        with ledger.lock:
            ledger.delivered.add(subj)
        deliver(u, h.make_message(1000 + k, subject=subj))
        time.sleep(rnd.random() * 0.05)


def _run(target, *args):
    def wrapped(errors):
        try:
            target(*args)
        except BaseException as e:       # the test fails with it below
            errors.append("%s: %r" % (target.__name__, e))
    return wrapped


@pytest.mark.parametrize("store", STORES)
def test_concurrent_rounds_keep_every_message_once(imapd, pop3d, make_user, store,
                                                    sanitizer_build):
    rounds = 3 if sanitizer_build else 6
    u = make_user(store)
    ledger = Ledger()
    owners = ["a", "b", "c", "pop"]
    first = []
    for i in range(24):
        subj = "%s old %d" % (owners[i % 4], i)
        first.append(h.make_message(i, subject=subj))
        ledger.delivered.add(subj)
    u.deliver(first)
    # UIDs as the first session sees them: delivery order
    c = it.login(imapd, u)
    for uid, subj, _ in it.folder_map(c):
        ledger.saw(uid, subj)
    c.logout()
    rnd = random.Random(6)
    errors = []
    threads = [threading.Thread(target=_run(_imap_worker, imapd, u, ledger, me, rounds,
                                            random.Random(rnd.random())), args=(errors,))
               for me in ("a", "b", "c")]
    threads.append(threading.Thread(target=_run(_pop3_worker, pop3d, u, ledger, rounds,
                                                random.Random(rnd.random())),
                                    args=(errors,)))
    threads.append(threading.Thread(target=_run(_mta_worker, u, ledger, owners, 12,
                                                random.Random(rnd.random())),
                                    args=(errors,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
        assert not t.is_alive(), "a client thread hangs"
    assert not errors, errors
    assert not ledger.errors, ledger.errors
    # the rounds did something: deletions by IMAP and POP3, flags, deliveries
    assert any(s.startswith("pop ") for s in ledger.deleted), ledger.deleted
    assert any(not s.startswith("pop ") for s in ledger.deleted), ledger.deleted
    assert ledger.flagged and len(ledger.delivered) == 36
    imapd.wait_idle(30)
    pop3d.wait_idle(30)

    c = it.login(imapd, u)
    rows = it.folder_map(c)
    c.logout()
    subjects = [s for _, s, _ in rows]
    want = ledger.delivered - ledger.deleted
    dup = sorted(s for s in set(subjects) if subjects.count(s) > 1)
    assert not dup, "more than once: %s" % dup
    assert set(subjects) == want, "missing %s, extra %s" % (
        sorted(want - set(subjects)), sorted(set(subjects) - want))
    uids = [uid for uid, _, _ in rows]
    assert uids == sorted(uids) and len(set(uids)) == len(uids)
    for uid, subj, flags in rows:
        if subj in ledger.uid_of:
            assert ledger.uid_of[subj] == uid, "%s: UID %d, was %d" % (
                subj, uid, ledger.uid_of[subj])
        if subj in ledger.flagged:
            assert "\\Flagged" in flags, "%s lost \\Flagged: %s" % (subj, flags)
    # UIDs are never handed out twice: everything delivered got a UID of its own
    assert len(set(ledger.uid_of.values())) == len(ledger.uid_of)
    # a message POP3 could not read was really gone (expunged by IMAP meanwhile)
    with h.Pop3(pop3d.port, timeout=120) as p:
        assert p.login(u.name, u.password) == h.LOGGED_IN
        now = set(p.uidl().values())
        assert p.quit().startswith("+OK")
    assert not [g for g in ledger.pop3_gone if g[0] in now], ledger.pop3_gone
    # the store agrees with IMAP
    assert sorted(h.subject_of(h.to_wire(m)) for m in u.stored()) == sorted(want)
