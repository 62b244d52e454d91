"""Who may connect and send a password: hosts.allow/hosts.deny (libwrap, our own
tables), plaintext_auth_from, and the shared login throttle across connections."""


import helpers as h


def _refused(port, source):
    with h.Pop3(port, source=source, read_greeting=False) as c:
        first = c.rawline()
        closed = c.wait_closed(10)
    return first, closed


def test_hosts_deny(pop3d, user):
    pop3d.hosts_deny.write_text("ipop3d: 127.0.0.3\n")
    first, closed = _refused(pop3d.port, "127.0.0.3")
    assert first == (h.ACCESS_DENIED + "\r\n").encode()
    assert closed, "connection left open after the refusal"
    ev = pop3d.log.wait("refused", rip="127.0.0.3")
    assert ev["reason"] == "hosts-deny"
    assert not pop3d.log.events("tls", rip="127.0.0.3")
    # the others still get in
    with h.Pop3(pop3d.port) as c:
        assert c.greeting == h.GREETING
        assert c.login(user.name, user.password) == h.LOGGED_IN


def test_hosts_deny_implicit_tls(pop3d, ctx):
    pop3d.hosts_deny.write_text("ipop3d: 127.0.0.3\n")
    # the refusal is said inside TLS (by the unprivileged worker, after the handshake)
    with h.Pop3(pop3d.tls_port, source="127.0.0.3", tls=ctx, read_greeting=False) as c:
        first = c.rawline()
    assert first == (h.ACCESS_DENIED + "\r\n").encode(), first
    pop3d.log.wait("refused", rip="127.0.0.3", reason="hosts-deny")
    assert not pop3d.log.events("login")


def test_hosts_allow_overrides_deny_all(pop3d, user):
    pop3d.hosts_allow.write_text("ipop3d: 127.0.0.1 127.0.0.4\n")
    pop3d.hosts_deny.write_text("ALL: ALL\n")
    first, _ = _refused(pop3d.port, "127.0.0.5")
    assert first == (h.ACCESS_DENIED + "\r\n").encode()
    with h.Pop3(pop3d.port, source="127.0.0.4") as c:
        assert c.greeting == h.GREETING
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN


def test_plaintext_refused_from_untrusted_address(pop3d, user, ctx):
    with h.Pop3(pop3d.port, source="127.0.0.2") as c:
        caps = c.capa()
        assert "STLS" in caps
        assert "USER" not in caps
        assert not [l for l in caps if l.startswith("SASL")], caps
        assert c.cmd("USER " + user.name).startswith(h.PLAINTEXT_DISALLOWED)
        assert c.cmd("PASS " + user.password).startswith(h.PLAINTEXT_DISALLOWED)
        assert c.auth_plain(user.name, user.password).startswith(h.PLAINTEXT_DISALLOWED)
        assert c.cmd("AUTH LOGIN").startswith(h.PLAINTEXT_DISALLOWED)
        # after STLS the same things work
        c.stls(ctx)
        caps = c.capa()
        assert "USER" in caps and "STLS" not in caps
        sasl = [l for l in caps if l.startswith("SASL ")]
        assert sasl and "PLAIN" in sasl[0].split()
        assert c.login(user.name, user.password) == h.LOGGED_IN
        assert c.stat()[0] == 3
        c.quit()
    ev = pop3d.log.wait("login", user=user.name)
    assert (ev["rip"], ev["tls"]) == ("127.0.0.2", "TLSv1.3")
    assert not pop3d.log.events("auth-failed")


def test_plaintext_allowed_from_trusted_address(pop3d, user):
    with h.Pop3(pop3d.port) as c:
        caps = c.capa()
        assert "USER" in caps and "STLS" in caps
        sasl = [l for l in caps if l.startswith("SASL ")]
        assert sasl and "PLAIN" in sasl[0].split()
        assert c.auth_plain(user.name, user.password) == h.LOGGED_IN
        c.quit()
    ev = pop3d.log.wait("login", user=user.name)
    assert (ev["method"], ev["rip"]) == ("PLAIN", "127.0.0.1")


def test_plaintext_auth_from_is_read(pop3d, user):
    pop3d.configure(plaintext_auth_from="127.0.0.0/8")
    with h.Pop3(pop3d.port, source="127.0.0.2") as c:
        assert "USER" in c.capa()
        assert c.login(user.name, user.password) == h.LOGGED_IN


def test_throttle_per_address_across_connections(pop3d, user, ctx):
    pop3d.configure(throttle_ip_max=3, throttle_user_max=100, throttle_net_max=100,
                    login_fail_delay_ms=0, login_fail_delay_max_ms=0,
                    plaintext_auth_from="127.0.0.0/8")
    for i in range(3):
        with h.Pop3(pop3d.port) as c:
            assert c.login(user.name, "wrong-%d" % i) == h.AUTH_FAILED
            c.quit()
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.THROTTLED
    ev = pop3d.log.wait("auth-throttled", user=user.name)
    assert ev["rip"] == "127.0.0.1"
    assert not pop3d.log.events("login", user=user.name)
    # over TLS too: the throttle is per address, not per connection kind
    with h.Pop3(pop3d.tls_port, tls=ctx) as c:
        assert c.auth_plain(user.name, user.password) == h.THROTTLED
    # another address is not affected
    with h.Pop3(pop3d.port, source="127.0.0.5") as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN


def test_throttle_holds_against_parallel_connections(pop3d, user):
    """Many connections guessing at the same moment get no more tries than one after
    the other: the check and the count are one locked step."""
    pop3d.configure(throttle_ip_max=3, throttle_user_max=100, throttle_net_max=100,
                    login_fail_delay_ms=300, login_fail_delay_max_ms=300,
                    plaintext_auth_from="127.0.0.0/8")
    conns = [h.Pop3(pop3d.port) for _ in range(8)]
    try:
        for i, c in enumerate(conns):
            assert c.cmd("USER " + user.name).startswith("+OK")
        for i, c in enumerate(conns):          # all the passwords go out at once
            c.send(("PASS wrong-%d\r\n" % i).encode())
        replies = [c.line() for c in conns]
    finally:
        for c in conns:
            c.close()
    assert replies.count(h.AUTH_FAILED) == 3, replies
    assert replies.count(h.THROTTLED) == 5, replies
    assert len(pop3d.log.events("auth-failed")) == 3
    # another address of the same /24 is still let in (net_max is 100)
    with h.Pop3(pop3d.port, source="127.0.0.6") as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN


def test_good_login_exempts_address_from_user_lockout(pop3d, user):
    """Past throttle_user_max failures for a name, every answer for it is slowed to the
    maximum delay (never refused: test_throttle_attacks.py), except from the /24 of a
    recent good login."""
    pop3d.configure(throttle_ip_max=100, throttle_net_max=100, throttle_user_max=3,
                    throttle_trust_days=30, login_fail_delay_ms=1,
                    login_fail_delay_max_ms=20, plaintext_auth_from="127.0.0.0/8")
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    # someone at 127.0.1.9 guesses the password
    for i in range(3):
        with h.Pop3(pop3d.port, source="127.0.1.9") as c:
            assert c.login(user.name, "guess-%d" % i) == h.AUTH_FAILED
            c.quit()
    # the user is now slowed down from addresses without a good login ...
    with h.Pop3(pop3d.port, source="127.0.1.9") as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    ev = pop3d.log.wait("throttle-slow", rip="127.0.1.9")
    assert ev["reason"] == "user-limit"
    # ... but not from the address the user really uses
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    assert not pop3d.log.events("throttle-slow", rip="127.0.0.1")
    assert not pop3d.log.events("auth-throttled")


def test_broken_config_is_a_temporary_error(pop3d, user):
    """A bad value in the config: the client is told to come back later, the log says
    which line is wrong, and nobody logs in with half a configuration."""
    text = pop3d.config_text().replace("min_uid = 1000", "min_uid = 1000x")
    assert text != pop3d.config_text()
    pop3d.config_path.write_text(text)
    with h.Pop3(pop3d.port, read_greeting=False) as c:
        first = c.rawline()
        assert first == b"-ERR [SYS/TEMP] Server configuration error, try again later.\r\n"
        assert c.wait_closed()
    ev = pop3d.log.wait("config-error")
    assert "min_uid" in ev["_line"] and "line " in ev["_line"]
    assert not pop3d.log.events("login")
    # fixed: the next connection works, no restart needed
    pop3d.write_config()
    with h.Pop3(pop3d.port) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
