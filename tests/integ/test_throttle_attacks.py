"""The login throttle and the pre-login connection cap against the attacks that beat the
old throttle, each made again on the real daemon: /64 keying for IPv6, a stuck lock and
a full state_dir (no longer "no throttle"), ten wrong passwords from ten addresses (no
longer a lockout of the owner), a success that wiped another user's failures, parallel
correct logins from one address (no longer refused), and a slowloris holding
connections before login.

A flood of hundreds of IPv6 sources from one /48 (which evicted the old table's counts)
cannot be made over loopback; tests/unit/privsep/test_throttle.c drives the same table
through its API for that (test_flood_eviction, test_v6_keys), and for parallel guesses
from several processes (test_parallel_processes).  Parallel guesses on the real daemon:
test_pop3_access.py::test_throttle_holds_against_parallel_connections.

No time is asserted: delays are proved by the log lines that announce them."""

import fcntl
import os
import random
import subprocess
import threading

import pytest

import helpers as h

TOO_MANY = "-ERR [SYS/TEMP] Too many connections from your address, try again later."
IN_USE = "-ERR [IN-USE] Mailbox is in use by another POP3 session."


def _login(port, user, password, source=None, host="127.0.0.1"):
    with h.Pop3(port, source=source, host=host) as c:
        r = c.login(user, password)
        if r == h.LOGGED_IN:
            c.quit()
        return r


# ---- IPv6 /64 ------------------------------------------------------------------------

@pytest.fixture
def v6_sources():
    """A few addresses of one /64 and one of another /64, on lo (documentation prefix,
    a random /48 so that concurrent runs do not meet); removed afterwards."""
    site = "2001:db8:%x" % random.randrange(0x1000, 0xffff)
    addrs = ["%s:1::a" % site, "%s:1::b" % site, "%s:1::c" % site, "%s:1::d" % site,
             "%s:2::a" % site]
    added = []
    try:
        for a in addrs:
            r = subprocess.run(["ip", "-6", "addr", "add", a + "/128", "dev", "lo", "nodad"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip("cannot add an IPv6 address to lo: " + r.stderr.strip())
            added.append(a)
        yield addrs
    finally:
        for a in added:
            subprocess.run(["ip", "-6", "addr", "del", a + "/128", "dev", "lo"],
                           capture_output=True)


def test_ipv6_64_is_one_address(daemon, user, v6_sources):
    """The old throttle keyed IPv6 at /128: a host can take a new address of its /64 for
    every guess.  Now failures from any address of a /64 add up."""
    daemon.configure(throttle_ip_max=3, throttle_net_max=100, throttle_user_max=100,
                     login_fail_delay_ms=0, login_fail_delay_max_ms=0,
                     plaintext_auth_from="127.0.0.0/8 ::1 2001:db8::/32")
    port = daemon.activate(host="::1")
    same64 = v6_sources[:4]
    for i, src in enumerate(same64[:3]):
        assert _login(port, user.name, "wrong-%d" % i, source=src, host="::1") == \
            h.AUTH_FAILED
    # a fourth address of the same /64: refused, even with the right password
    assert _login(port, user.name, user.password, source=same64[3], host="::1") == \
        h.THROTTLED
    ev = daemon.log.wait("throttle-refused", rip=same64[3])
    assert ev["reason"] == "ip-limit"
    # the next /64 is another client
    assert _login(port, user.name, user.password, source=v6_sources[4], host="::1") == \
        h.LOGGED_IN


# ---- a stuck lock, a full state_dir -----------------------------------------------------

def test_stuck_lock_does_not_open_the_gate(pop3d, user):
    """The old throttle went on without counting when it could not get its lock within
    3 s (24 of 800 over-limit attempts got through under contention).  Now an address
    over its limit is still refused (the table is read without the lock), and any other
    attempt is slowed to the maximum delay, success or not."""
    pop3d.configure(throttle_ip_max=3, throttle_user_max=100, throttle_net_max=100,
                    login_fail_delay_ms=1, login_fail_delay_max_ms=50,
                    throttle_conn_max=0,      # one lock wait per connection is enough
                    plaintext_auth_from="127.0.0.0/8")
    for i in range(3):
        assert _login(pop3d.port, user.name, "wrong-%d" % i, source="127.0.0.2") == \
            h.AUTH_FAILED
    table = pop3d.state_dir / "throttle.map"
    assert table.is_file()
    fd = os.open(str(table), os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # held, like a stuck process
        assert _login(pop3d.port, user.name, user.password, source="127.0.0.2") == \
            h.THROTTLED
        ev = pop3d.log.wait("throttle-error", action="refuse")
        assert "lock" in ev["error"]
        assert _login(pop3d.port, user.name, "wrong", source="127.0.0.3") == h.AUTH_FAILED
        ev = pop3d.log.wait("throttle-error", action="max-delay")
        assert ev["delay_ms"] == "50"
    finally:
        os.close(fd)
    assert not pop3d.log.events("login", user=user.name)
    # the lock is free again: counting goes on as before
    assert _login(pop3d.port, user.name, user.password, source="127.0.0.2") == h.THROTTLED


@pytest.fixture
def tiny_state_dir(pop3d):
    """state_dir on a 64 KiB tmpfs: the throttle table (768 KiB, preallocated)
    cannot be made."""
    mnt = pop3d.workdir / "tinystate"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs",
                        str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_state_dir_slows_every_attempt(pop3d, user, tiny_state_dir):
    """A full state_dir made the old throttle fail open.  Now every attempt gets the
    maximum delay (logged), and a login still works."""
    pop3d.configure(state_dir=str(tiny_state_dir), throttle_ip_max=3,
                    login_fail_delay_ms=1, login_fail_delay_max_ms=40)
    assert _login(pop3d.port, user.name, "wrong") == h.AUTH_FAILED
    ev = pop3d.log.wait("throttle-error", action="max-delay")
    assert ev["delay_ms"] == "40"
    assert "No space left on device" in ev["error"]
    assert _login(pop3d.port, user.name, user.password) == h.LOGGED_IN
    assert not (tiny_state_dir / "throttle.map").exists() or \
        (tiny_state_dir / "throttle.map").stat().st_size == 0


# ---- users ---------------------------------------------------------------------------

def test_owner_not_locked_out_by_ten_addresses(pop3d, user):
    """Ten wrong passwords from ten addresses locked the owner out, right password or
    not, from anywhere.  Now the user's count slows every answer for the name (success
    too) to the maximum delay, except from the owner's trusted devices, and never
    refuses."""
    pop3d.configure(throttle_ip_max=100, throttle_net_max=100, throttle_user_max=10,
                    login_fail_delay_ms=1, login_fail_delay_max_ms=30,
                    plaintext_auth_from="127.0.0.0/8")
    assert _login(pop3d.port, user.name, user.password) == h.LOGGED_IN  # 127.0.0.1: home
    for i in range(10):
        src = "127.0.%d.9" % (i + 1)
        assert _login(pop3d.port, user.name, "guess-%d" % i, source=src) == h.AUTH_FAILED
    # from somewhere new: slowed, but in
    assert _login(pop3d.port, user.name, user.password, source="127.0.77.1") == \
        h.LOGGED_IN
    ev = pop3d.log.wait("throttle-slow", rip="127.0.77.1")
    assert (ev["reason"], ev["delay_ms"]) == ("user-limit", "30")
    # from home (a trusted device, keyed on its /24): not slowed
    for src in ("127.0.0.1", "127.0.0.44"):
        assert _login(pop3d.port, user.name, user.password, source=src) == h.LOGGED_IN
        assert not pop3d.log.events("throttle-slow", rip=src)
    assert not pop3d.log.events("auth-throttled")


def test_success_does_not_wipe_another_users_failures(pop3d, make_user):
    """A good login used to wipe the address's count: the owner of one account could
    guess another's at full speed by logging in to their own between guesses."""
    pop3d.configure(throttle_ip_max=3, throttle_net_max=100, throttle_user_max=100,
                    login_fail_delay_ms=0, login_fail_delay_max_ms=0,
                    plaintext_auth_from="127.0.0.0/8")
    victim, mallory = make_user(), make_user()
    replies = []
    for i in range(8):
        replies.append(_login(pop3d.port, victim.name, "guess-%d" % i, source="127.0.0.5"))
        _login(pop3d.port, mallory.name, mallory.password, source="127.0.0.5")
    assert replies.count(h.AUTH_FAILED) == 3, replies
    assert replies.count(h.THROTTLED) == 5, replies
    assert len(pop3d.log.events("auth-failed")) == 3


def test_own_success_clears_own_failures(pop3d, user):
    """Mistyping one's own password and then getting it right takes one's own failures
    back, so a user does not lock out the address they share."""
    pop3d.configure(throttle_ip_max=3, throttle_net_max=100, throttle_user_max=100,
                    login_fail_delay_ms=0, login_fail_delay_max_ms=0,
                    plaintext_auth_from="127.0.0.0/8")
    for _ in range(3):
        for i in range(2):
            assert _login(pop3d.port, user.name, "typo-%d" % i, source="127.0.0.8") == \
                h.AUTH_FAILED
        assert _login(pop3d.port, user.name, user.password, source="127.0.0.8") == \
            h.LOGGED_IN


# ---- many correct logins from one address -----------------------------------------------

def test_dozens_of_concurrent_correct_logins_are_never_refused(pop3d, user):
    """An attempt used to count as a failure in advance: more than throttle_ip_max logins
    in flight from one address were refused (161 of ~740 for 32 clients, with no wrong
    password).  A school behind one NAT address at nine o'clock: 32 clients, one account,
    the right password, the default limits."""
    pop3d.configure(throttle_ip_max=10, throttle_net_max=30, throttle_user_max=10,
                    throttle_conn_max=None, login_fail_delay_ms=1000,
                    login_fail_delay_max_ms=15000)
    clients, rounds = 32, 6
    replies = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client():
        start.wait()
        for _ in range(rounds):
            try:
                r = _login(pop3d.port, user.name, user.password)
            except (OSError, EOFError) as e:
                r = "error: %r" % e
            with lock:
                replies.append(r)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(replies) == clients * rounds
    # one POP3 session per mailbox: the others are told it is in use (after the
    # password was checked), never that they failed or are throttled
    bad = [r for r in replies if r not in (h.LOGGED_IN, IN_USE)]
    assert not bad, (bad[:5], [e["_line"] for e in pop3d.log.events("refused")][:5])
    assert replies.count(h.LOGGED_IN) > 0
    assert not pop3d.log.events("auth-throttled")
    assert not pop3d.log.events("throttle-refused")
    assert not pop3d.log.events("refused")
    assert not pop3d.log.events("auth-failed")


# ---- slowloris ---------------------------------------------------------------------------

def _monitor_pid(log, rip):
    """The pid of the first connection from rip (its monitor: the connect line)."""
    evs = log.events("connect", rip=rip)
    assert evs, log.tail()
    return evs[0]["_pid"]


def test_slowloris_capped_per_source(pop3d, user):
    """A few addresses holding connections open before login could take every slot of
    the launcher's MaxConnections.  Now each source has throttle_conn_max at once."""
    pop3d.configure(throttle_conn_max=4, plaintext_auth_from="127.0.0.0/8")
    held = []
    try:
        for _ in range(4):
            held.append(h.Pop3(pop3d.port, source="127.0.0.3"))
        for c in held:
            assert c.greeting.startswith("+OK")
        with h.Pop3(pop3d.port, source="127.0.0.3", read_greeting=False) as c:
            assert c.line() == TOO_MANY
            assert c.wait_closed()
        ev = pop3d.log.wait("refused", rip="127.0.0.3")
        assert ev["reason"] == "too-many-connections"
        # another address is not affected
        assert _login(pop3d.port, user.name, user.password, source="127.0.0.4") == \
            h.LOGGED_IN
        # a login ends "before login": its place is free
        assert held[0].login(user.name, user.password) == h.LOGGED_IN
        nxt = h.Pop3(pop3d.port, source="127.0.0.3")
        held.append(nxt)
        assert nxt.greeting.startswith("+OK")
        with h.Pop3(pop3d.port, source="127.0.0.3", read_greeting=False) as c:
            assert c.line() == TOO_MANY
        assert len(pop3d.log.events("refused", reason="too-many-connections")) == 2
    finally:
        for c in held:
            c.close()


def test_crashed_monitor_place_is_reclaimed(pop3d):
    """A monitor that dies (here: killed) leaves its entry behind; the next connection
    sees that its pid is gone and takes the place."""
    pop3d.configure(throttle_conn_max=2, plaintext_auth_from="127.0.0.0/8")
    a = h.Pop3(pop3d.port, source="127.0.0.6")
    b = h.Pop3(pop3d.port, source="127.0.0.6")
    try:
        assert a.greeting.startswith("+OK") and b.greeting.startswith("+OK")
        with h.Pop3(pop3d.port, source="127.0.0.6", read_greeting=False) as c:
            assert c.line() == TOO_MANY
        pid = _monitor_pid(pop3d.log, "127.0.0.6")
        os.kill(pid, 9)
        with h.Pop3(pop3d.port, source="127.0.0.6") as c:
            assert c.greeting.startswith("+OK")
    finally:
        a.close()
        b.close()
