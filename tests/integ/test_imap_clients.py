"""Real IMAP clients against imapd (issue 6), on Maildir and on mbox: fetchmail over IMAPS
and over STARTTLS, keeping and deleting; mbsync (isync) syncing both ways with a local
Maildir: flags and deletions up, new mail and flag changes down; mutt in tmux reading a
message and saving it to another folder.  Each client verifies the server certificate
against the mkcert.sh CA; the outcome is checked on the server with imaplib and in the
client's local files."""

import os
import subprocess
import time

import helpers as h
import imaptest as it






# --- fetchmail ---------------------------------------------------------------------

def _fetchmail(tmp, port, user, cafile, opts, out):
    """One fetchmail run with its own FETCHMAILHOME and pid file (fetchmail run as root
    otherwise shares one lock with every other run on the machine)."""
    home = tmp / "fmhome"
    home.mkdir(exist_ok=True)
    rc = home / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        "poll 127.0.0.1 with proto IMAP port %d timeout 60\n"
        "  user \"%s\" there with password \"%s\" is root here\n"
        "  sslcertck sslcertfile \"%s\" sslcommonname localhost\n"
        "  mda \"/bin/sh -c 'cat > %s/msg.$$.$(date +%%s%%N)'\"\n"
        "%s" % (port, user.name, user.password, cafile, out, opts))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    return subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog",
                           "--pidfile", str(home / "fetchmail.pid")],
                          capture_output=True, text=True, timeout=120, env=env)


def _bodies(msgs):
    """Bodies with LF line ends (fetchmail's MDA gets LF; its header gains Received:)."""
    return sorted(m.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1] for m in msgs)


def test_fetchmail_imaps_fetches_and_deletes(imapd, ctx, store_user, tmp_path):
    u = store_user
    want = u.stored()
    assert want
    out = tmp_path / "out"
    out.mkdir()
    r = _fetchmail(tmp_path, imapd.tls_port, u, imapd.certdir / "ca.crt", "  ssl\n", out)
    assert r.returncode == 0, r.stdout + r.stderr
    got = [p.read_bytes() for p in sorted(out.iterdir())]
    assert len(got) == len(want)
    assert _bodies(got) == _bodies(want)
    # no keep: fetchmail set \Deleted and expunged; the store and a new session agree
    assert u.stored() == []
    assert it.folder_state(imapd, ctx, u) == {}
    logins = imapd.log.events("login", user=u.name)
    assert logins and all(e["tls"] == "TLSv1.3" for e in logins)


def test_fetchmail_starttls_keep(imapd, ctx, store_user, tmp_path):
    u = store_user
    n = len(u.stored())
    out = tmp_path / "out"
    out.mkdir()
    opts = "  sslproto tls1.2+ keep\n"
    r = _fetchmail(tmp_path, imapd.port, u, imapd.certdir / "ca.crt", opts, out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(list(out.iterdir())) == n
    # keep: all still there, now \Seen, so a second run finds nothing new
    state = it.folder_state(imapd, ctx, u)
    assert len(state) == n and all("\\Seen" in f for f in state.values()), state
    assert len(u.stored()) == n
    r = _fetchmail(tmp_path, imapd.port, u, imapd.certdir / "ca.crt", opts, out)
    assert r.returncode == 1, r.stdout + r.stderr      # 1: no new mail
    assert len(list(out.iterdir())) == n
    # a delivery: only that one is fetched
    u.deliver([h.make_message(99)])
    r = _fetchmail(tmp_path, imapd.port, u, imapd.certdir / "ca.crt", opts, out)
    assert r.returncode == 0, r.stdout + r.stderr
    got = [p.read_bytes() for p in sorted(out.iterdir())]
    assert len(got) == n + 1
    assert sum(b"Subject: test message 99" in m for m in got) == 1
    assert len(u.stored()) == n + 1
    logins = imapd.log.events("login", user=u.name)
    assert logins and all(e["tls"] == "TLSv1.3" for e in logins)


# --- mbsync (isync) ----------------------------------------------------------------

def _mbsync(tmp, d, user):
    cfg = tmp / "mbsyncrc"
    near = tmp / "near"
    near.mkdir(exist_ok=True)
    cfg.write_text(
        "IMAPAccount srv\n"
        "Host localhost\n"          # isync matches DNS names only, not IP SANs
        "Port %d\n"
        "User %s\n"
        "Pass %s\n"
        "SSLType IMAPS\n"
        "SystemCertificates no\n"
        "CertificateFile %s\n"
        "\n"
        "IMAPStore far\n"
        "Account srv\n"
        "\n"
        "MaildirStore near\n"
        "Path %s/\n"
        "Inbox %s/INBOX\n"
        "\n"
        "Channel ch\n"
        "Far :far:INBOX\n"
        "Near :near:INBOX\n"
        "Sync All\n"
        "Create Near\n"
        "Expunge Both\n"
        "SyncState *\n"
        % (d.tls_port, user.name, user.password, d.certdir / "ca.crt", near, near))
    os.chmod(cfg, 0o600)
    env = dict(os.environ, HOME=str(tmp))
    r = subprocess.run(["mbsync", "-c", str(cfg), "ch"], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return near / "INBOX"


def _local(box):
    """{subject: (path, maildir flags)} of the local Maildir."""
    out = {}
    for sub in ("new", "cur"):
        for p in (box / sub).iterdir():
            flags = p.name.split(":2,", 1)[1] if ":2," in p.name else ""
            out[h.subject_of(p.read_bytes())] = (p, flags)
    return out


def test_mbsync_two_way(imapd, ctx, store_user, tmp_path):
    u = store_user
    # initial pull: all five, none flagged
    box = _mbsync(tmp_path, imapd, u)
    local = _local(box)
    assert sorted(local) == ["test message %d" % i for i in range(1, 6)]
    assert all(f == "" for _, f in local.values()), local
    # locally: flag message 2, delete message 3 (T, then expunged by the sync)
    p, _ = local["test message 2"]
    os.rename(p, box / "cur" / (p.name.split(":2,")[0] + ":2,F"))
    p, _ = local["test message 3"]
    os.rename(p, box / "cur" / (p.name.split(":2,")[0] + ":2,T"))
    _mbsync(tmp_path, imapd, u)
    state = it.folder_state(imapd, ctx, u)
    assert sorted(state) == ["test message %d" % i for i in (1, 2, 4, 5)], state
    assert state["test message 2"] == ["\\Flagged"]
    assert all(state[s] == [] for s in ("test message 1", "test message 4",
                                        "test message 5")), state
    assert len(u.stored()) == 4
    assert "test message 3" not in _local(box)
    # on the server: answer message 4, unflag message 2, a new delivery
    c = it.login_tls(imapd, ctx, u)
    assert c.select("INBOX")[0] == "OK"
    typ, data = c.search(None, "SUBJECT", '"test message 4"')
    assert typ == "OK" and len(data[0].split()) == 1, data
    assert c.store(data[0].decode(), "+FLAGS", "(\\Answered)")[0] == "OK"
    typ, data = c.search(None, "SUBJECT", '"test message 2"')
    assert typ == "OK" and len(data[0].split()) == 1, data
    assert c.store(data[0].decode(), "-FLAGS", "(\\Flagged)")[0] == "OK"
    c.logout()
    u.deliver([h.make_message(6)])
    _mbsync(tmp_path, imapd, u)
    local = _local(box)
    assert sorted(local) == ["test message %d" % i for i in (1, 2, 4, 5, 6)], local
    assert local["test message 4"][1] == "R"
    assert local["test message 2"][1] == ""
    assert local["test message 6"][1] == ""
    assert b"Body line 2 of message 6." in local["test message 6"][0].read_bytes()
    # and nothing changed back on the server
    state = it.folder_state(imapd, ctx, u)
    assert state == {"test message 1": [], "test message 2": [],
                     "test message 4": ["\\Answered"], "test message 5": [],
                     "test message 6": []}, state


# --- mutt in tmux ------------------------------------------------------------------

class Tmux:
    """A tmux server of this test's own (its own socket), one window running argv."""

    def __init__(self, tmp, argv, env):
        self.sock = str(tmp / "tmux.sock")
        self.env = env
        subprocess.run(["tmux", "-S", self.sock, "new-session", "-d", "-s", "t",
                        "-x", "160", "-y", "40"] + argv,
                       check=True, env=env, timeout=30)

    def screen(self):
        r = subprocess.run(["tmux", "-S", self.sock, "capture-pane", "-p", "-t", "t"],
                           capture_output=True, text=True, env=self.env, timeout=30)
        return r.stdout if r.returncode == 0 else None

    def wait_for(self, text, timeout=30.0):
        """Polls the screen until text shows; fails with the screen if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if s is not None and text in s:
                return s
            if time.monotonic() > deadline:
                raise AssertionError("%r never showed; screen:\n%s" % (text, s))
            time.sleep(0.1)

    def keys(self, *keys):
        subprocess.run(["tmux", "-S", self.sock, "send-keys", "-t", "t"] + list(keys),
                       check=True, env=self.env, timeout=30)

    def wait_gone(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while subprocess.run(["tmux", "-S", self.sock, "has-session", "-t", "t"],
                             capture_output=True, env=self.env, timeout=30).returncode == 0:
            if time.monotonic() > deadline:
                raise AssertionError("mutt did not quit; screen:\n%s" % self.screen())
            time.sleep(0.1)

    def kill(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True,
                       env=self.env, timeout=30)


def test_mutt_reads_and_saves(imapd, ctx, store_user, tmp_path):
    u = store_user
    assert it.folder_state(imapd, ctx, u, "Archive") == {}    # imapd makes it at login
    rc = tmp_path / "muttrc"
    rc.write_text(
        'set folder="imaps://%s@localhost:%d/"\n'
        'set spoolfile="+INBOX"\n'
        'set imap_pass="%s"\n'
        'set ssl_force_tls=yes\n'
        'set ssl_ca_certificates_file="%s"\n'
        'set certificate_file="%s/certificates"\n'
        'set header_cache="" message_cachedir=""\n'
        'set sort=subject\n'
        'set delete=yes quit=yes move=no mark_old=no confirmappend=no wait_key=no\n'
        'set save_name=no\n'
        'set mbox_type=Maildir\n'
        % (u.name, imapd.tls_port, u.password, imapd.certdir / "ca.crt", tmp_path))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(tmp_path), TERM="screen", LANG="C.UTF-8")
    env.pop("TMUX", None)
    t = Tmux(tmp_path, ["mutt", "-n", "-F", str(rc)], env)
    try:
        t.wait_for("test message 5")
        # open the first message: its text shows in the pager
        t.keys("Enter")
        t.wait_for("Body line 2 of message 1.")
        # save it to =Archive (the prompt may offer a default: clear it first)
        t.keys("s")
        t.wait_for("Save to mailbox")
        t.keys("C-u", "=Archive", "Enter")
        # saved and marked deleted, the pager moves on to the next message
        t.wait_for("Body line 2 of message 2.")
        t.keys("q")
        t.wait_for("test message 5")
        t.keys("q")
        t.wait_gone()
    finally:
        t.kill()
    inbox = it.folder_state(imapd, ctx, u)
    assert sorted(inbox) == ["test message %d" % i for i in (2, 3, 4, 5)], inbox
    archive = it.folder_state(imapd, ctx, u, "Archive")
    assert list(archive) == ["test message 1"], archive
    assert "\\Seen" in archive["test message 1"]
