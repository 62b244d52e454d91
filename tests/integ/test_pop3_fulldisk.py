"""A full disk loses no mail: the store lives on a small tmpfs filled to the last byte,
and a POP3 session that reads, deletes and quits leaves exactly the undeleted messages,
intact.  (Deleting needs no space: Maildir unlinks, mbox is compacted in place.)"""

import os
import subprocess

import pytest

import helpers as h


@pytest.fixture
def full_fs(pop3d):
    with h.small_tmpfs(pop3d.workdir) as mnt:
        yield mnt


def _fill(path):
    """Take every free byte of the filesystem holding path."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0")
        except OSError:
            pass
    st = os.statvfs(os.path.dirname(path))
    assert st.f_bavail == 0


def _session(port, user, delete, log):
    with h.Pop3(port) as c:
        reply = c.login(user.name, user.password)
        assert reply == h.LOGGED_IN, (reply, log.tail())
        count, _ = c.stat()
        got = [c.retr(i) for i in range(1, count + 1)]
        for n in delete:
            assert c.cmd("DELE %d" % n).startswith("+OK")
        assert c.quit().startswith("+OK")
    return got


def test_maildir_on_full_disk(pop3d, make_user, full_fs):
    u = make_user("maildir")
    msgs = [h.make_message(i, body_lines=20) for i in range(1, 6)]
    home = full_fs / u.name
    md = home / "Maildir"
    for sub in ("", "new", "cur", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(msgs):
        (md / "new" / ("%d.M%d.fulltest" % (1763719200 + i, i))).write_bytes(m)
    subprocess.run(["chown", "-R", "%d:%d" % (u.uid, u.gid), str(home)], check=True)
    pop3d.configure(mail_location="maildir:%s" % md)
    _fill(str(full_fs / "filler"))
    got = _session(pop3d.port, u, delete=[2, 4], log=pop3d.log)
    assert got == [h.to_wire(m) for m in msgs]
    left = sorted(p.read_bytes() for p in (md / "new").iterdir())
    assert left == sorted([msgs[0], msgs[2], msgs[4]])
    # the next session sees the same three with the same UIDLs
    with h.Pop3(pop3d.port) as c:
        assert c.login(u.name, u.password) == h.LOGGED_IN
        assert c.stat()[0] == 3


def test_mbox_on_full_disk(pop3d, make_user, full_fs):
    """mbox: the dotlock (liblockfile writes its pid into it) needs one free block.  On a
    completely full disk the session is refused for now ([SYS/TEMP]) and the mbox is not
    touched; with one block free again it works, and deleting frees space."""
    u = make_user(None)
    msgs = [h.make_message(i, body_lines=20) for i in range(1, 6)]
    box = full_fs / u.name
    data = b"".join(h.MailUser.mbox_entry(m) for m in msgs)
    box.write_bytes(data)
    os.chown(box, u.uid, u.gid)
    os.chmod(box, 0o600)
    os.chmod(full_fs, 0o1777)     # room for the dotlock, as /var/mail gives the MTA
    pop3d.configure(mail_location="mbox:%s" % box)
    filler = full_fs / "filler"
    _fill(str(filler))
    with h.Pop3(pop3d.port) as c:
        assert c.login(u.name, u.password) == \
            "-ERR [SYS/TEMP] Cannot open the mailbox, try again later."
    assert box.read_bytes() == data
    assert pop3d.log.wait("mailbox-failed", user=u.name)
    # one page free: enough for the lock, not for any copy of the mail
    with open(filler, "r+b") as f:
        f.truncate(os.path.getsize(filler) - 4096)
    got = _session(pop3d.port, u, delete=[1, 3], log=pop3d.log)
    assert got == [h.to_wire(m) for m in msgs]
    assert h.parse_mbox(box.read_bytes()) == [msgs[1], msgs[3], msgs[4]]
    ev = pop3d.log.wait("logout", user=u.name)
    assert ev["reason"] == "quit" and ev["del"] == "2"
