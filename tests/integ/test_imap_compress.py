"""imapd COMPRESS=DEFLATE (RFC 4978) with a real client: imaplib has no COMPRESS, so
ZIMAP below wraps its socket I/O in raw deflate (zlib, wbits -15) after the tagged OK,
over IMAPS (the compressed stream is what TLS encrypts).  Commands after COMPRESS, an
8 MB FETCH, APPEND with a literal, IDLE seeing a delivery, LOGOUT; a second COMPRESS;
a decompression bomb (1 GB of zeros as one command line) ends with BYE while the session
stays small; a corrupt stream gets BYE and no crash (the ASan run shows none either)."""

import imaplib
import threading
import time
import zlib

import pytest

import helpers as h

imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))


class ZIMAP(imaplib.IMAP4_SSL):
    """imaplib over IMAPS, deflating both ways once COMPRESS DEFLATE got its OK."""
    z = False

    def compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ == "OK" and not self.z:
            self.z = True
            self.co = zlib.compressobj(wbits=-15)
            self.do = zlib.decompressobj(wbits=-15)
            self.zbuf = bytearray()
            self.raw_in = 0
        return typ, data

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, data):
        if not self.z:
            return super().send(data)
        self.sock.sendall(self.co.compress(data) + self.co.flush(zlib.Z_SYNC_FLUSH))

    def _zfill(self):
        raw = self.sock.recv(65536)
        if not raw:
            raise imaplib.IMAP4.abort("EOF from the server")
        self.raw_in += len(raw)
        self.zbuf += self.do.decompress(raw)

    def read(self, size):
        if not self.z:
            return super().read(size)
        while len(self.zbuf) < size:
            self._zfill()
        out = bytes(self.zbuf[:size])
        del self.zbuf[:size]
        return out

    def readline(self):
        if not self.z:
            return super().readline()
        while True:
            i = self.zbuf.find(b"\n")
            if i >= 0:
                out = bytes(self.zbuf[:i + 1])
                del self.zbuf[:i + 1]
                return out
            self._zfill()


def zlogin(d, ctx, user):
    c = ZIMAP("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=60)
    typ, data = c.login(user.name, user.password)
    assert typ == "OK" and b"COMPRESS=DEFLATE" in data[0], data
    return c


def caps(c):
    typ, data = c.capability()
    assert typ == "OK"
    return data[0].split()


@pytest.mark.parametrize("store", ["maildir", "mbox"])
def test_commands_after_compress(imapd, ctx, make_user, store):
    store_user = make_user(store)
    msgs = [h.make_message(i) for i in range(1, 6)]
    store_user.deliver(msgs)
    c = zlogin(imapd, ctx, store_user)
    assert b"COMPRESS=DEFLATE" in caps(c)
    typ, data = c.compress()
    assert typ == "OK", data
    # everything from here on is deflated both ways
    assert b"COMPRESS=DEFLATE" not in caps(c)
    assert b"IDLE" in caps(c)
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"5"]
    typ, data = c.fetch("1:*", "(BODY.PEEK[])")
    bodies = [x[1] for x in data if isinstance(x, tuple)]
    assert bodies == [h.to_wire(m) for m in msgs]
    typ, data = c.compress()
    assert typ == "NO" and b"[COMPRESSIONACTIVE]" in data[0], data
    typ, data = c.store("2", "+FLAGS", "(\\Flagged)")
    assert typ == "OK" and b"\\Flagged" in data[0]
    typ, data = c.logout()
    assert typ == "BYE"
    assert c.raw_in > 0
    ev = imapd.log.wait("logout", user=store_user.name)
    assert ev["reason"] == "logout"


def test_compress_bad_usage(imapd, ctx, user):
    c = zlogin(imapd, ctx, user)
    for args in (("GZIP",), ()):
        with pytest.raises(imaplib.IMAP4.error, match="COMPRESS command error: BAD"):
            c._simple_command("COMPRESS", *args)
    # no compression was turned on: plain imaplib still talks to it
    assert c.noop()[0] == "OK"
    c.logout()


def test_big_fetch_and_append_literal(imapd, ctx, make_user):
    u = make_user("maildir")
    big = h.big_message(8 * 1024 * 1024)
    u.deliver([h.make_message(1), big])
    c = zlogin(imapd, ctx, u)
    assert c.compress()[0] == "OK"
    c.select("INBOX")
    typ, data = c.fetch("2", "(BODY.PEEK[])")
    assert typ == "OK"
    got = [x[1] for x in data if isinstance(x, tuple)]
    assert got == [h.to_wire(big)]
    # deflate did shrink the base64 on the wire
    assert c.raw_in < len(h.to_wire(big))
    # APPEND: a synchronizing literal ("+" and the bytes, both compressed)
    msg = h.to_wire(h.make_message(77, body_lines=500))
    typ, data = c.append("INBOX", "(\\Seen)", None, msg)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    typ, data = c.fetch("3", "(FLAGS BODY.PEEK[])")
    assert [x[1] for x in data if isinstance(x, tuple)] == [msg]
    assert b"\\Seen" in data[0][0]
    c.logout()


def test_idle_sees_new_message(imapd, ctx, user):
    c = zlogin(imapd, ctx, user)
    assert c.compress()[0] == "OK"
    c.select("INBOX")
    other = imaplib.IMAP4_SSL("127.0.0.1", imapd.tls_port, ssl_context=ctx, timeout=30)
    other.login(user.name, user.password)

    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    assert c.readline().startswith(b"+ ")

    new = h.to_wire(h.make_message(4))

    def deliver():
        time.sleep(0.3)
        other.append("INBOX", None, None, new)

    t = threading.Thread(target=deliver)
    t.start()
    c.sock.settimeout(20)
    line = c.readline()
    t.join()
    assert line.strip() == b"* 4 EXISTS", line
    c.send(b"DONE\r\n")
    while True:
        ln = c.readline()
        if ln.startswith(tag):
            assert b" OK " in ln
            break
    typ, data = c.fetch("4", "(BODY.PEEK[])")
    assert [x[1] for x in data if isinstance(x, tuple)] == [new]
    c.logout()
    other.logout()


def test_deflate_bomb_bounded(imapd, ctx, user):
    c = zlogin(imapd, ctx, user)
    assert c.compress()[0] == "OK"
    co = zlib.compressobj(9, wbits=-15)
    zeros = b"\0" * (1 << 20)
    bomb = bytearray(co.compress(b"a1 NOOP "))
    for _ in range(1024):                    # 1 GiB of zeros, about 1 MB on the wire
        bomb += co.compress(zeros)
    bomb += co.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 2 * 1024 * 1024
    try:
        c.send_raw(bytes(bomb))
    except OSError:
        pass                                 # the server may hang up before it read all
    c.sock.settimeout(30)
    lines = []
    try:
        while True:
            ln = c.readline()
            lines.append(ln)
            if ln.startswith(b"* BYE") or ln.startswith(b"a1 "):
                break
    except (imaplib.IMAP4.abort, OSError):
        pass
    assert any(ln.startswith(b"* BYE") or ln.startswith(b"a1 BAD") for ln in lines), lines
    ev = imapd.log.wait("logout", user=user.name)
    assert ev["reason"] == "line-too-long", ev
    # the session never held more than the line limit and zlib's state: the 1 GiB
    # never existed in its memory (ASan's shadow memory included, far below it)
    assert int(ev["maxrss_kb"]) < 256 * 1024, ev
    c.shutdown()


def test_garbage_stream_bye(imapd, ctx, user):
    c = zlogin(imapd, ctx, user)
    assert c.compress()[0] == "OK"
    c.send_raw(b"\xff" * 64 + b"a1 NOOP\r\n")   # block type 3 does not exist
    c.sock.settimeout(30)
    ln = c.readline()
    assert ln.startswith(b"* BYE") and b"ompressed" in ln, ln
    ev = imapd.log.wait("logout", user=user.name)
    assert ev["reason"] == "compression-error", ev
    c.shutdown()
    # the daemon goes on: a new connection works
    c2 = zlogin(imapd, ctx, user)
    assert c2.compress()[0] == "OK"
    assert c2.noop()[0] == "OK"
    c2.logout()
