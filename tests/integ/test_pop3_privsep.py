"""Privilege separation, checked from the outside: before login, every process that holds
the client's socket runs as a non-root user (the worker, `postern`); after login the
session runs as the mail user and root still holds no copy of the socket."""

import pwd
import time

import pytest

import helpers as h


def _holders(c):
    inode = h.server_socket_inode(c.server_port, c.client_port)
    assert inode, "connection %d->%d not in /proc/net/tcp" % (c.client_port, c.server_port)
    return {pid: h.proc_uids(pid) for pid in h.socket_holders(inode)}


def _wait_nonroot_holders(c, timeout=3.0):
    """The holders once the connection settled; fails if root still holds it."""
    deadline = time.monotonic() + timeout
    while True:
        holders = {p: u for p, u in _holders(c).items() if u is not None}
        if holders and all(0 not in u for u in holders.values()):
            return holders
        if time.monotonic() > deadline:
            raise AssertionError("processes holding the client socket: %s"
                                 % {p: (u, _comm(p)) for p, u in holders.items()})
        time.sleep(0.05)


def _comm(pid):
    try:
        return open("/proc/%d/cmdline" % pid).read().replace("\0", " ")
    except OSError:
        return "?"


def _launch(daemon, which):
    if which == "socket-activate":
        return daemon.activate(False), daemon.activate(True)
    ports = daemon.inetd(h.REPO / "inetd.conf.sample")
    return ports["pop3"], ports["pop3s"]


@pytest.mark.parametrize("launcher", ["socket-activate", "inetd"])
def test_worker_unprivileged_before_login(daemon, user, ctx, launcher):
    plain, tls = _launch(daemon, launcher)
    postern = pwd.getpwnam("postern").pw_uid
    for port, kw in ((plain, {}), (tls, {"tls": ctx})):
        with h.Pop3(port, **kw) as c:
            assert c.greeting == h.GREETING
            assert c.capa()
            holders = _wait_nonroot_holders(c)
            assert all(u == (postern, postern) for u in holders.values()), holders
            if not kw:
                c.stls(ctx)
                assert c.capa()
                holders = _wait_nonroot_holders(c)
                assert all(u == (postern, postern) for u in holders.values()), holders
            # after login: the session runs as the mail user, root holds no socket
            assert c.login(user.name, user.password) == h.LOGGED_IN
            assert c.stat()[0] == 3
            holders = _wait_nonroot_holders(c)
            assert set(holders.values()) <= {(postern, postern), (user.uid, user.uid)}
            kids = [pid for pid, _ in daemon.children()]
            uids = {pid: h.proc_uids(pid) for pid in kids}
            assert (user.uid, user.uid) in uids.values(), \
                "no process of the connection runs as %s: %s" % (user.name, uids)
            c.quit()


def test_worker_unprivileged_from_untrusted_address(pop3d, ctx):
    with h.Pop3(pop3d.port, source="127.0.0.2") as c:
        assert c.cmd("USER x").startswith("-ERR")
        _wait_nonroot_holders(c)
