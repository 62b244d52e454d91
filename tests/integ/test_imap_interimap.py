"""interimap (Debian package interimap) against imapd: a real client that syncs two IMAP
servers both ways using QRESYNC (RFC 7162), LIST-EXTENDED + LIST-STATUS (RFC 5258, 5819),
UIDPLUS and, on the remote side, COMPRESS=DEFLATE (RFC 4978).  Both sides are imapd over
IMAPS (CA-verified, real PAM accounts): the remote on Maildir or mbox, the local account
on Maildir.
Flags, expunges, new mail and folders (one named in Chinese) must reach the other side,
and a run with nothing to do must change nothing."""

import os
import re
import subprocess

import helpers as h
import imaptest as it






def _section(d, user):
    return ("type = imaps\n"
            "host = 127.0.0.1\n"
            "port = %d\n"
            "username = %s\n"
            "password = %s\n"
            "SSL_CAfile = %s\n"
            "SSL_hostname = localhost\n"
            "compress = YES\n"
            % (d.tls_port, user.name, user.password, d.certdir / "ca.crt"))


def interimap(tmp, d, remote, local, debug_log=None):
    cfg = tmp / "interimap.conf"
    cfg.write_text(
        "database = %s\n"
        "\n[local]\n%s"
        "\n[remote]\n%s"
        % (tmp / "interimap.db", _section(d, local), _section(d, remote)))
    os.chmod(cfg, 0o600)
    argv = ["interimap", "--config=%s" % cfg]
    if debug_log:
        argv += ["--debug"]
    env = dict(os.environ, HOME=str(tmp), XDG_DATA_HOME=str(tmp), XDG_CONFIG_HOME=str(tmp))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    if debug_log is not None:
        debug_log.write_text(r.stdout + r.stderr)
    return r


WORK = "Work"
CHINESE = "工作"                       # "work"
CHINESE_MUTF7 = "&XeVPXA-"


def _find(c, subject):
    typ, data = c.search(None, "SUBJECT", '"%s"' % subject)
    assert typ == "OK" and len(data[0].split()) == 1, (subject, data)
    return data[0].decode()


def test_interimap_two_way(imapd, ctx, store_user, make_user, tmp_path):
    remote = store_user
    local = make_user("maildir")
    # a folder with two messages and one named in Chinese, on the server
    c = it.login_tls(imapd, ctx, remote)
    for name in (WORK, CHINESE_MUTF7):
        assert c.create('"%s"' % name)[0] == "OK"
    for i in (21, 22):
        assert c.append(WORK, None, None, h.to_wire(h.make_message(i)))[0] == "OK"
    assert c.append(CHINESE_MUTF7, "(\\Flagged)", None,
                    h.to_wire(h.make_message(31)))[0] == "OK"
    c.logout()

    # first run: everything reaches the local account
    log = tmp_path / "debug1.log"
    interimap(tmp_path, imapd, remote, local, debug_log=log)
    inbox = {"test message %d" % i: [] for i in range(1, 6)}
    assert it.folder_state(imapd, ctx, local, "INBOX") == inbox
    assert it.folder_state(imapd, ctx, local, WORK) == {"test message 21": [],
                                              "test message 22": []}
    assert it.folder_state(imapd, ctx, local, CHINESE_MUTF7) == {"test message 31": ["\\Flagged"]}
    trace = log.read_text()
    assert re.search(r"SELECT .*QRESYNC|ENABLE QRESYNC", trace), trace[-3000:]
    assert "COMPRESS DEFLATE" in trace, trace[-3000:]

    # changes on both sides
    c = it.login_tls(imapd, ctx, remote)
    assert c.select("INBOX")[0] == "OK"
    assert c.store(_find(c, "test message 2"), "+FLAGS", "(\\Flagged)")[0] == "OK"
    assert c.store(_find(c, "test message 3"), "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    c.logout()
    remote.deliver([h.make_message(6)])                # an MTA delivering meanwhile
    c = it.login_tls(imapd, ctx, local)
    assert c.select("INBOX")[0] == "OK"
    assert c.store(_find(c, "test message 1"), "+FLAGS", "(\\Seen)")[0] == "OK"
    assert c.append("INBOX", "(\\Answered)", None,
                    h.to_wire(h.make_message(7)))[0] == "OK"
    assert c.select(WORK)[0] == "OK"
    assert c.store(_find(c, "test message 21"), "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    c.logout()

    interimap(tmp_path, imapd, remote, local)
    want = {"test message 1": ["\\Seen"], "test message 2": ["\\Flagged"],
            "test message 4": [], "test message 5": [], "test message 6": [],
            "test message 7": ["\\Answered"]}
    for u in (remote, local):
        assert it.folder_state(imapd, ctx, u, "INBOX") == want, u.name
        assert it.folder_state(imapd, ctx, u, WORK) == {"test message 22": []}, u.name
    # the stores themselves agree: six messages in each INBOX, none twice
    for u in (remote, local):
        subjects = sorted(h.subject_of(m) for m in u.stored())
        assert subjects == sorted(want), (u.name, subjects)

    # nothing to do: nothing changes, nothing copied twice
    interimap(tmp_path, imapd, remote, local)
    for u in (remote, local):
        assert it.folder_state(imapd, ctx, u, "INBOX") == want, u.name
        assert it.folder_state(imapd, ctx, u, CHINESE_MUTF7) == {"test message 31": ["\\Flagged"]}
        assert len(u.stored()) == 6
