"""fetchmail, the classic POP3 fetcher, against ipop3d: over implicit TLS and over STLS,
verifying the server certificate against the mkcert.sh CA; it downloads every message,
deletes them (DELE + QUIT), and with `keep` + UIDL fetches only what is new."""

import os
import subprocess

import helpers as h


def _fetchmail(tmp, port, user, cafile, extra, out):
    rc = tmp / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        "poll 127.0.0.1 with proto POP3 port %d timeout 60 %s\n"
        "  user \"%s\" there with password \"%s\" is root here\n"
        "  sslcertck sslcertfile \"%s\" sslcommonname localhost\n"
        "  mda \"/bin/sh -c 'cat > %s/msg.$$.$(date +%%s%%N)'\"\n"
        % (port, extra["poll"], user.name, user.password, cafile, out) + extra["user"])
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(tmp), FETCHMAILHOME=str(tmp))
    return subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog",
                           "-i", str(tmp / "fetchids")],
                          capture_output=True, text=True, timeout=120, env=env)


def _fetched(out):
    """What the MDA got: LF line ends, with a Received: header of fetchmail's own."""
    return [p.read_bytes() for p in sorted(out.iterdir())]


def _body_lines(msg):
    """The body, which fetchmail passes on unchanged (its header gains Received:)."""
    return msg.split(b"\n\n", 1)[1]


def test_fetchmail_pop3s_downloads_and_deletes(pop3d, store_user, tmp_path):
    u = store_user
    want = u.stored()
    out = tmp_path / "out"
    out.mkdir()
    r = _fetchmail(tmp_path, pop3d.tls_port, u, pop3d.certdir / "ca.crt",
                   {"poll": "", "user": "  ssl\n"}, out)
    assert r.returncode == 0, r.stdout + r.stderr
    got = _fetched(out)
    assert len(got) == len(want)
    assert sorted(_body_lines(m) for m in got) == sorted(_body_lines(m) for m in want)
    # fetchmail deletes what it delivered: DELE, then QUIT, so the mailbox is empty now
    assert u.stored() == []
    ev = pop3d.log.wait("logout", user=u.name, reason="quit")
    assert ev["del"] == str(len(want))
    assert pop3d.log.wait("login", user=u.name)["tls"] == "TLSv1.3"


def test_fetchmail_stls_keep_uidl(pop3d, user, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    opts = {"poll": "uidl", "user": "  sslproto tls1.2+ keep\n"}
    r = _fetchmail(tmp_path, pop3d.port, user, pop3d.certdir / "ca.crt", opts, out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(_fetched(out)) == 3
    assert len(user.stored()) == 3          # keep: nothing deleted
    # a second run fetches nothing: the UIDLs are the same as last time
    r = _fetchmail(tmp_path, pop3d.port, user, pop3d.certdir / "ca.crt", opts, out)
    assert r.returncode == 1, r.stdout + r.stderr     # 1: no new mail
    assert len(_fetched(out)) == 3
    # new mail arrives: only that one is fetched
    user.deliver([h.make_message(99)])
    r = _fetchmail(tmp_path, pop3d.port, user, pop3d.certdir / "ca.crt", opts, out)
    assert r.returncode == 0, r.stdout + r.stderr
    got = _fetched(out)
    assert len(got) == 4
    logins = pop3d.log.events("login", user=user.name)
    assert len(logins) == 3 and all(e["tls"] == "TLSv1.3" for e in logins)


def test_fetchmail_wrong_password(pop3d, user, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    user.password = "not-" + user.password
    r = _fetchmail(tmp_path, pop3d.tls_port, user, pop3d.certdir / "ca.crt",
                   {"poll": "", "user": "  ssl\n"}, out)
    assert r.returncode == 3, r.stdout + r.stderr      # 3: authentication failed
    assert list(out.iterdir()) == []
    assert pop3d.log.wait("auth-failed")["reason"] == "password"
