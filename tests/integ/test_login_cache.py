"""The cache of verified logins (login_cache_ttl, issue 6): a repeat login skips
pam_authenticate, never pam_acct_mgmt, and is bound to the account's current shadow hash.

The PAM service of these tests records each stack that runs (pam_exec in the auth and the
account stack, before pam_unix), so a cache hit is proved by what PAM did, not by timing:
the auth stack did not run and the account stack did.  The monitor's debug line
`login-cache: result=hit|miss|...` says the same from the daemon's side.
"""

import os
import stat
import time
from pathlib import Path

import pytest

import helpers as h

AUTH_FAILED_RAW = (h.AUTH_FAILED + "\r\n").encode()


@pytest.fixture
def cached(daemon):
    """The daemon with login_cache_ttl and log_debug on, and a PAM service that records
    its stacks: returns (daemon, records()) where records() lists "auth USER" /
    "account USER" lines in order."""
    record = daemon.workdir / "pam-record.log"
    script = daemon.workdir / "pam-record.sh"
    script.write_text('#!/bin/sh\necho "$PAM_TYPE $PAM_USER" >> %s\n' % record)
    os.chmod(script, 0o755)
    name = "postern-test-cache-%d-%d" % (os.getpid(), time.monotonic_ns() % 10 ** 9)
    pam = Path("/etc/pam.d") / name
    pam.write_text("# postern integration test %d\n" % os.getpid() + "\n".join([
        "auth optional pam_exec.so quiet %s" % script,
        "auth required pam_unix.so",
        "account optional pam_exec.so quiet %s" % script,
        "account required pam_unix.so",
        "session required pam_unix.so",
    ]) + "\n")
    os.chmod(pam, 0o644)
    daemon.configure(pam_service=name, login_cache_ttl=600, log_debug="yes")
    daemon.start()

    def records():
        try:
            return record.read_text().splitlines()
        except FileNotFoundError:
            return []

    yield daemon, records
    pam.unlink()


def _login_ok(port, user, password=None):
    with h.Pop3(port) as c:
        r = c.login(user.name, user.password if password is None else password)
        assert r == h.LOGGED_IN, r
        assert c.stat()[0] == len(user.stored())
        c.quit()


def _login_reply(port, name, password):
    with h.Pop3(port) as c:
        c.send("USER %s\r\n" % name)
        assert c.rawline().startswith(b"+OK")
        c.send("PASS %s\r\n" % password)
        return c.rawline()


def _cache_results(daemon, user):
    return [e["result"] for e in daemon.log.events("login-cache", user=user.name)]


def _wait_results(daemon, user, n):
    deadline = time.monotonic() + 10
    while len(_cache_results(daemon, user)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return _cache_results(daemon, user)


def test_repeat_login_skips_auth_not_account(cached, user):
    daemon, records = cached
    _login_ok(daemon.port, user)
    assert records() == ["auth %s" % user.name, "account %s" % user.name]
    _login_ok(daemon.port, user)
    _login_ok(daemon.port, user)
    # the auth stack ran once; the account stack on every login
    assert records() == ["auth %s" % user.name] + ["account %s" % user.name] * 3
    assert _wait_results(daemon, user, 3) == ["miss", "hit", "hit"]
    assert len(daemon.log.events("login", user=user.name)) == 3


def test_cache_files_private_to_root(cached, user):
    daemon, _ = cached
    _login_ok(daemon.port, user)
    d = daemon.state_dir / "login-cache"
    st = os.lstat(d)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700
    files = sorted(os.listdir(d))
    assert "key" in files and len(files) == 2, files
    for f in files:
        st = os.lstat(d / f)
        assert stat.S_ISREG(st.st_mode) and st.st_uid == 0
        assert stat.S_IMODE(st.st_mode) == 0o600, (f, oct(st.st_mode))
        assert user.name not in f
    entry = [f for f in files if f != "key"][0]
    data = (d / entry).read_bytes()
    assert user.password.encode() not in data and user.name.encode() not in data


def test_cache_off_by_default(daemon, user):
    daemon.configure(log_debug="yes")
    daemon.start()
    _login_ok(daemon.port, user)
    _login_ok(daemon.port, user)
    daemon.log.wait("login", user=user.name)
    assert _cache_results(daemon, user) == []
    assert not (daemon.state_dir / "login-cache").exists()


def test_password_change_invalidates_at_once(cached, user):
    daemon, records = cached
    _login_ok(daemon.port, user)
    _login_ok(daemon.port, user)
    assert _wait_results(daemon, user, 2) == ["miss", "hit"]
    old = user.password
    user.password = old[::-1] + "N3w"
    h.run(["chpasswd"], input="%s:%s\n" % (user.name, user.password))
    # the old password: refused at once, by the full stack (the entry no longer matches)
    assert _login_reply(daemon.port, user.name, old) == AUTH_FAILED_RAW
    ev = daemon.log.wait("auth-failed", user=user.name)
    assert ev["reason"] == "password"
    assert records().count("auth %s" % user.name) == 2
    _login_ok(daemon.port, user)
    _login_ok(daemon.port, user)
    assert _wait_results(daemon, user, 5) == ["miss", "hit", "miss", "miss", "hit"]


def test_expired_account_refused_on_a_cache_hit(cached, make_user):
    daemon, records = cached
    u = make_user("maildir")
    _login_ok(daemon.port, u)
    h.run(["chage", "-E", "0", u.name])
    # the hash did not change: the entry matches, and pam_acct_mgmt refuses all the same
    assert _login_reply(daemon.port, u.name, u.password) == AUTH_FAILED_RAW
    ev = daemon.log.wait("auth-failed", user=u.name)
    assert ev["reason"] == "account"
    assert _wait_results(daemon, u, 2) == ["miss", "hit"]
    assert records().count("account %s" % u.name) == 2


def test_locked_account_refused_with_a_cached_entry(cached, make_user):
    daemon, _ = cached
    u = make_user("maildir")
    _login_ok(daemon.port, u)
    _login_ok(daemon.port, u)
    assert _wait_results(daemon, u, 2) == ["miss", "hit"]
    h.run(["usermod", "-L", u.name])
    assert _login_reply(daemon.port, u.name, u.password) == AUTH_FAILED_RAW
    daemon.log.wait("auth-failed", user=u.name)
    # "!$y$...": no crypt hash, so the cache is not even consulted
    assert _wait_results(daemon, u, 3)[2] == "skip"
    h.run(["usermod", "-U", u.name])
    _login_ok(daemon.port, u)


def test_wrong_password_never_matches_an_entry(cached, user):
    daemon, records = cached
    _login_ok(daemon.port, user)
    wrong = [user.password + "x", user.password[:-1], user.password.upper(),
             user.password[1:] + user.password[0], "x"]
    for i, pw in enumerate(wrong):
        assert _login_reply(daemon.port, user.name, pw) == AUTH_FAILED_RAW, pw
    fails = [e for e in daemon.log.events("auth-failed", user=user.name)]
    assert len(fails) == len(wrong)
    assert all(e["reason"] == "password" for e in fails)
    # each wrong password went through the full auth stack
    assert records().count("auth %s" % user.name) == 1 + len(wrong)
    # a failure removed the entry: the right password is checked in full again, then cached
    _login_ok(daemon.port, user)
    _login_ok(daemon.port, user)
    assert _wait_results(daemon, user, 2 + len(wrong) + 1)[-2:] == ["miss", "hit"]


def test_throttle_counts_wrong_passwords_against_a_cached_user(cached, user):
    """Failures count as before: past throttle_ip_max wrong passwords the address is
    refused, even for the right password that has a cached entry."""
    daemon, _ = cached
    _login_ok(daemon.port, user)
    _login_ok(daemon.port, user)      # cached now (and a trusted device)
    daemon.configure(throttle_ip_max=2)
    for _ in range(2):
        assert _login_reply(daemon.port, user.name, "wrong") == AUTH_FAILED_RAW
    r = _login_reply(daemon.port, user.name, user.password)
    assert r == (h.THROTTLED + "\r\n").encode(), r


def test_ttl_expires_entries(cached, user):
    daemon, records = cached
    daemon.configure(login_cache_ttl=2)
    _login_ok(daemon.port, user)
    _login_ok(daemon.port, user)
    time.sleep(2.5)
    _login_ok(daemon.port, user)
    assert _wait_results(daemon, user, 3) == ["miss", "hit", "miss"]
    assert records().count("auth %s" % user.name) == 2


def test_unsafe_cache_dir_is_not_used(cached, user):
    daemon, records = cached
    _login_ok(daemon.port, user)
    d = daemon.state_dir / "login-cache"
    os.chmod(d, 0o755)
    _login_ok(daemon.port, user)
    assert _wait_results(daemon, user, 2) == ["miss", "error"]
    assert records().count("auth %s" % user.name) == 2
    # a planted entry owned by another user is not believed either
    os.chmod(d, 0o700)
    for f in os.listdir(d):
        if f != "key":
            os.chown(d / f, 1, 1)
    _login_ok(daemon.port, user)
    assert _wait_results(daemon, user, 3)[2] == "miss"
    assert records().count("auth %s" % user.name) == 3


def test_imapd_repeat_login_is_cached_per_service(imap_daemon, user, ctx):
    """imapd (pam_service imap) with the cache: a repeat IMAPS login is a hit; the entry
    is imap's own (an ipop3d entry would be another file)."""
    import imaplib
    imap_daemon.configure(login_cache_ttl=600, log_debug="yes")
    imap_daemon.start()
    for _ in range(2):
        c = imaplib.IMAP4_SSL("127.0.0.1", imap_daemon.tls_port, ssl_context=ctx,
                              timeout=30)
        assert c.login(user.name, user.password)[0] == "OK"
        assert c.select("INBOX")[0] == "OK"
        c.logout()
    assert _wait_results(imap_daemon, user, 2) == ["miss", "hit"]
    c = imaplib.IMAP4_SSL("127.0.0.1", imap_daemon.tls_port, ssl_context=ctx, timeout=30)
    with pytest.raises(imaplib.IMAP4.error):
        c.login(user.name, user.password + "x")
    c.logout()
    imap_daemon.log.wait("auth-failed", user=user.name)
    assert _wait_results(imap_daemon, user, 3)[2] == "miss"
