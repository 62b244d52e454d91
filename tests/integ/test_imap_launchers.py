"""imapd under its real launchers and with the deployment files: the inetd.conf.sample
lines (imap, imaps) under openbsd-inetd, the systemd units, `imapd -t`, and the
pre-login worker's sandbox (the ipop3d sandbox test's idea, on imapd)."""

import imaplib
import os
import re
import time


import helpers as h


def _session(c, user):
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    typ, data = c.select("INBOX")
    assert typ == "OK" and int(data[0]) == len(user.stored())
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] in [h.to_wire(m) for m in user.stored()]
    c.logout()


def test_inetd_sample_lines(imap_daemon, user, ctx):
    d = imap_daemon
    ports = d.inetd(h.REPO / "inetd.conf.sample")
    conf = d.inetd_conf.read_text()
    assert str(d.binary) in conf and "-c\t%s" % d.config_path in conf
    c = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=30)
    c.starttls(ssl_context=ctx)
    _session(c, user)
    c = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"], ssl_context=ctx, timeout=30)
    assert c.sock.version() == "TLSv1.3"
    _session(c, user)
    logins = d.log.events("login", user=user.name)
    assert [e["tls"] for e in logins] == ["TLSv1.3", "TLSv1.3"]


def test_systemd_units_match_the_pop3_ones():
    sd = h.REPO / "systemd"
    for pop, imap, port in (("pop3", "imap", "143"), ("pop3s", "imaps", "993")):
        sock = (sd / ("postern-%s.socket" % imap)).read_text()
        assert "ListenStream=%s\n" % port in sock and "Accept=yes" in sock
        svc = (sd / ("postern-%s@.service" % imap)).read_text()
        want = "ExecStart=/usr/local/sbin/imapd" + (" -s" if imap == "imaps" else "") + "\n"
        assert want in svc and "SyslogIdentifier=imapd" in svc
        # the same hardening as ipop3d's unit, line for line
        pop = (sd / ("postern-%s@.service" % pop)).read_text()
        keys = lambda t: sorted(l for l in t.splitlines() if re.match(r"^[A-Z]\w+=", l)
                                and not l.startswith(("ExecStart", "SyslogIdentifier",
                                                      "Description")))
        assert keys(svc) == keys(pop)


def test_imapd_t_checks_the_config(imap_daemon):
    rc, out = imap_daemon.check()
    assert rc == 0 and "imapd: configuration OK" in out, out


def test_worker_is_sandboxed(imapd, ctx):
    """Before login the connection is served by the worker: not root, in its own empty
    root, with no_new_privs and a seccomp filter (what test_sandbox.py proves for
    ipop3d, looked at here through /proc on imapd's worker)."""
    c = imaplib.IMAP4_SSL("127.0.0.1", imapd.tls_port, ssl_context=ctx, timeout=30)
    c.capability()
    worker = None
    deadline = time.monotonic() + 10
    while worker is None and time.monotonic() < deadline:
        postern = h.pwd.getpwnam("postern").pw_uid
        for pid, _ in imapd.children():
            if h.proc_uids(pid) == (postern, postern):
                worker = pid
        time.sleep(0.05)
    assert worker is not None, "no unprivileged worker among %r" % imapd.children()
    status = open("/proc/%d/status" % worker).read()
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
    assert re.search(r"^Seccomp:\s+2$", status, re.M)
    assert os.readlink("/proc/%d/root" % worker) != "/"
    c.logout()
