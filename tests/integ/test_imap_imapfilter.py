"""imapfilter (Debian package imapfilter) against imapd: a real client that filters mail
with server-side SEARCH (subject, body text, header field, size, flags) and then moves,
flags and deletes the matches.  Its Lua configuration is what an administrator would
write; the result is checked on the server with imaplib and in the store itself, on
Maildir and on mbox.  The certificate is verified against the mkcert.sh CA."""

import os
import subprocess

import helpers as h
import imaptest as it






CONFIG = """
options.timeout = 30
options.certificates = false
options.create = true
options.expunge = true
acct = IMAP {
    server = '127.0.0.1',
    port = %(port)d,
    username = '%(user)s',
    password = '%(password)s',
    ssl = 'auto',
}
-- subject: two messages to Archive
moved = acct.INBOX:contain_subject('test message 2') + acct.INBOX:contain_subject('test message 4')
moved:move_messages(acct['Archive'])
-- body text: flag it
acct.INBOX:contain_body('Body line 2 of message 5.'):mark_flagged()
-- a header field and a size: delete it (expunged on logout by options.expunge)
junk = acct.INBOX:contain_field('X-Filter-Me', 'yes') * acct.INBOX:is_larger(10)
junk:delete_messages()
-- flags: the flagged one is copied to a new folder, created by the filter
acct.INBOX:is_flagged():copy_messages(acct['Important'])
"""


def test_imapfilter_moves_flags_deletes(imapd, ctx, store_user, tmp_path):
    u = store_user
    u.deliver([h.make_message(6, subject="filtered").replace(
        b"Subject:", b"X-Filter-Me: yes\nSubject:", 1)])
    cfg = tmp_path / "config.lua"
    cfg.write_text(CONFIG % {"port": imapd.tls_port, "user": u.name,
                             "password": u.password})
    os.chmod(cfg, 0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run(["imapfilter", "-c", str(cfg), "-t", str(imapd.certdir / "ca.crt"),
                        "-v"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert it.folder_state(imapd, ctx, u, "INBOX") == {
        "test message 1": [], "test message 3": [], "test message 5": ["\\Flagged"]}
    assert it.folder_state(imapd, ctx, u, "Archive") == {"test message 2": [], "test message 4": []}
    assert it.folder_state(imapd, ctx, u, "Important") == {"test message 5": ["\\Flagged"]}
    # the store: INBOX holds exactly three messages, the deleted one is gone
    assert sorted(h.subject_of(m) for m in u.stored()) == [
        "test message 1", "test message 3", "test message 5"]
    # a second run finds nothing more to move or delete and changes nothing
    r = subprocess.run(["imapfilter", "-c", str(cfg), "-t", str(imapd.certdir / "ca.crt")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert it.folder_state(imapd, ctx, u, "Archive") == {"test message 2": [], "test message 4": []}
    assert it.folder_state(imapd, ctx, u, "Important") == {"test message 5": ["\\Flagged"]}
    assert len(u.stored()) == 3
