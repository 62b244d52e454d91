"""The outbound SMTP client pieces of issue 8 end to end, through the test-only driver
tests/unit/smtp/smtpc.c (the engine common/smtp/smtp_client.c + conn.c's client TLS and
DANE), before the queue runner uses them:
- to our own smtp-submit -m mx on loopback: STARTTLS (opportunistic, WebPKI verify with
  the test CA, DANE-EE matching and not matching the server's key), two messages on one
  connection to two users and an unknown one: per-recipient results, both stored twice,
  a leading-dot line intact (dot-stuffed on the wire, unstuffed by the server);
- to a scripted sink on loopback (a plain socket server here) that answers nothing until
  MAIL, every RCPT and DATA have arrived: it proves pipelining (a client waiting for the
  MAIL reply would hang), the exact dot-stuffed, CRLF-normalised bytes on the wire, the
  per-recipient 250/550/450 results, and a connection cut after the final dot reported
  as maybe_twice;
- to aiosmtpd (python3-aiosmtpd), an independent server without PIPELINING: STARTTLS,
  commands one at a time, SMTPUTF8 and BODY=8BITMIME, the content it received."""

import re
import socket
import subprocess
import threading

import pytest

import helpers as h

SMTPC = h.REPO / "build" / ("san" if h.is_sanitizer_build(h.binary_path("smtp-submit"))
                            else "rel") / "tests" / "unit" / "smtp" / "smtpc"


@pytest.fixture(scope="module")
def smtpc():
    san = ["SAN=1"] if "san" in SMTPC.parts else []
    r = subprocess.run(["make", "-s", "-C", str(h.REPO)] + san +
                       [str(SMTPC.relative_to(h.REPO))], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return SMTPC


def run_smtpc(binary, port, args, message, timeout=60):
    r = subprocess.run([str(binary)] + args + ["127.0.0.1", str(port)], input=message,
                       capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace") + r.stderr.decode(
        "utf-8", "replace")


def lines_of(out, kind):
    return [l for l in out.splitlines() if l.startswith(kind + ": ")]


def spki_sha256(cert):
    pub = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         check=True, capture_output=True).stdout
    import hashlib
    return hashlib.sha256(der).hexdigest()


MESSAGE = (b"From: sender@example.net\nTo: whoever\nSubject: smtpc %s\n\n"
           b"first line\n.leading dot\n..two dots\n.\nlast\n")


def test_smtpc_to_our_mx(smtpd, make_user, certs, smtpc):
    a = make_user("maildir")
    b = make_user("mbox")
    unknown = "nobody-%s@%s" % (a.name, h.LOCAL_DOMAIN)
    args = ["-H", "mta.example.net", "-f", "sender@example.net", "-n", "2",
            "-r", h.address(a), "-r", unknown, "-r", h.address(b),
            "-m", "verify", "-C", str(certs.ca), "-S", "localhost"]
    rc, out = run_smtpc(smtpc, smtpd.mx_port, args, MESSAGE % b"verify")
    assert rc == 1, out          # one recipient refused
    tls = lines_of(out, "tls")
    assert len(tls) == 1 and "ok=yes" in tls[0] and "verified=yes" in tls[0], out
    assert "version=TLSv1." in tls[0], out
    rcpts = lines_of(out, "rcpt")
    assert len(rcpts) == 6, out  # three recipients, two messages
    for i in (0, 3):
        assert "status=ok, code=250" in rcpts[i] and h.address(a) in rcpts[i], out
        assert "status=permfail, code=550" in rcpts[i + 1] and unknown in rcpts[i + 1], out
        assert "status=ok, code=250" in rcpts[i + 2], out
    assert lines_of(out, "message") == ["message: n=1, delivered=2, maybe_twice=no",
                                        "message: n=2, delivered=2, maybe_twice=no"], out
    assert not lines_of(out, "error"), out
    # our server offers CHUNKING and PIPELINING: the body went in BDAT chunks
    assert lines_of(out, "server")[0].startswith(
        "server: esmtp=yes, pipelining=yes, chunking=yes"), out
    h.wait_stored(a, 2)
    h.wait_stored(b, 2)
    for user in (a, b):
        for m in user.stored():
            body = m.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]
            assert body == b"first line\n.leading dot\n..two dots\n.\nlast\n", body
            r = h.header_fields(m, "Received")[0]
            assert "ESMTPS" in r, r


def test_smtpc_big_message_in_chunks_to_our_mx(smtpd, make_user, smtpc):
    """A 300 KB message with dot lines, bare LFs and 8-bit text goes to our mx in BDAT
    chunks (smtpc cuts at 8 KiB) and is stored byte for byte (with CRLF)."""
    a = make_user("maildir")
    lines = [b"Subject: big", b""] + [
        (b".dot %d \xc3\xa9" % i) if i % 3 == 0 else (b"line %d " % i) + b"x" * (i % 70)
        for i in range(8000)]
    body = b"\n".join(lines) + b"\n"
    rc, out = run_smtpc(smtpc, smtpd.mx_port, ["-f", "big@example.net", "-r", h.address(a)],
                        body)
    assert rc == 0, out
    assert "chunking=yes" in lines_of(out, "server")[0], out
    h.wait_stored(a, 1)
    stored = a.stored()[0].replace(b"\r\n", b"\n")
    assert stored.endswith(body.split(b"\n\n", 1)[1]), len(stored)


def test_smtpc_tls_modes_against_our_mx(smtpd, make_user, certs, smtpc):
    a = make_user("maildir")
    base = ["-f", "sender@example.net", "-r", h.address(a)]
    # opportunistic: the test CA is not trusted by the system: connected, not verified
    rc, out = run_smtpc(smtpc, smtpd.mx_port, base, MESSAGE % b"opportunistic")
    assert rc == 0, out
    tls = lines_of(out, "tls")[0]
    assert "ok=yes" in tls and "verified=no" in tls and "dane=none" in tls, out
    # DANE-EE 3 1 1 of the server's key: authenticated by the record alone
    good = spki_sha256(certs.dir / "postern.crt")
    rc, out = run_smtpc(smtpc, smtpd.mx_port,
                        base + ["-m", "dane", "-S", "mx.postern.test", "-D", "3 1 1 " + good],
                        MESSAGE % b"dane")
    assert rc == 0, out
    tls = lines_of(out, "tls")[0]
    assert "verified=yes" in tls and "dane=ee" in tls, out
    # a record for another key: the handshake fails, a temporary failure, nothing sent
    bad = "00" * 32
    rc, out = run_smtpc(smtpc, smtpd.mx_port,
                        base + ["-m", "dane", "-S", "mx.postern.test", "-D", "3 1 1 " + bad],
                        MESSAGE % b"dane-bad")
    assert rc == 1, out
    assert "ok=no" in lines_of(out, "tls")[0], out
    err = lines_of(out, "error")
    assert err and "stage=starttls, temporary=yes" in err[0], out
    assert not lines_of(out, "rcpt"), out
    h.wait_stored(a, 2)
    subjects = sorted(h.header_fields(m, "Subject")[0] for m in a.stored())
    assert subjects == ["smtpc dane", "smtpc opportunistic"], subjects


class Sink:
    """A scripted SMTP server on loopback for one connection: it records every byte the
    client sends.  With PIPELINING it answers the MAIL/RCPT/DATA group only once all of
    it arrived; cut_after_dot closes the connection instead of answering the dot."""

    def __init__(self, rcpt_replies, cut_after_dot=False):
        self.rcpt_replies = rcpt_replies
        self.cut_after_dot = cut_after_dot
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.got = b""
        self.group_in_one_read = None
        self.error = None
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def read_until(self, conn, marker):
        while marker not in self.got[self.pos:]:
            data = conn.recv(65536)
            if not data:
                raise EOFError("client closed")
            self.got += data
        end = self.got.index(marker, self.pos) + len(marker)
        chunk = self.got[self.pos:end]
        self.pos = end
        return chunk

    def serve(self):
        self.pos = 0
        conn, _ = self.srv.accept()
        conn.settimeout(20)
        try:
            conn.sendall(b"220 sink.test ESMTP\r\n")
            self.read_until(conn, b"\r\n")                       # EHLO
            conn.sendall(b"250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                         b"250-ENHANCEDSTATUSCODES\r\n250 SIZE 100000\r\n")
            # nothing is answered before the whole group is here
            group = self.read_until(conn, b"DATA\r\n")
            self.group = group
            conn.sendall(b"250 2.1.0 ok\r\n" + b"".join(self.rcpt_replies) +
                         b"354 go ahead\r\n")
            self.data = self.read_until(conn, b"\r\n.\r\n")
            if self.cut_after_dot:
                conn.close()
                return
            conn.sendall(b"250 2.0.0 queued as S1\r\n")
            self.read_until(conn, b"QUIT\r\n")
            conn.sendall(b"221 2.0.0 bye\r\n")
        except Exception as e:          # reported by the test
            self.error = e
        finally:
            conn.close()
            self.srv.close()

    def join(self):
        self.thread.join(30)
        assert not self.thread.is_alive()


def test_smtpc_pipelining_dotstuffing_results(smtpc):
    sink = Sink([b"250 2.1.5 ok\r\n", b"550 5.1.1 no such user\r\n",
                 b"450 4.2.0 greylisted\r\n"])
    args = ["-t", "-f", "s@a.test", "-r", "ok@sink.test", "-r", "unknown@sink.test",
            "-r", "grey@sink.test", "-w", "20"]
    body = b"Subject: dots\r\n\r\n.one\n..two\r\nlone\rcr\n.\nend"
    rc, out = run_smtpc(smtpc, sink.port, args, body)
    sink.join()
    assert sink.error is None, (sink.error, out)
    assert rc == 1, out
    # one group: MAIL with SIZE of the CRLF form, the RCPTs, DATA
    wire = re.sub(rb"\r\n|\r|\n", b"\r\n", body) + b"\r\n"
    assert sink.group == (b"MAIL FROM:<s@a.test> SIZE=%d\r\n" % len(wire) +
                          b"RCPT TO:<ok@sink.test>\r\nRCPT TO:<unknown@sink.test>\r\n"
                          b"RCPT TO:<grey@sink.test>\r\nDATA\r\n"), sink.group
    assert sink.data == (b"Subject: dots\r\n\r\n..one\r\n...two\r\nlone\r\ncr\r\n..\r\n"
                         b"end\r\n.\r\n"), sink.data
    rcpts = lines_of(out, "rcpt")
    assert "status=ok, code=250, enh=2.0.0" in rcpts[0], out
    assert "status=permfail, code=550, enh=5.1.1" in rcpts[1], out
    assert "status=tempfail, code=450, enh=4.2.0" in rcpts[2], out
    assert lines_of(out, "message") == ["message: n=1, delivered=1, maybe_twice=no"], out


def test_smtpc_connection_cut_after_dot(smtpc):
    sink = Sink([b"250 2.1.5 ok\r\n"], cut_after_dot=True)
    rc, out = run_smtpc(smtpc, sink.port, ["-t", "-f", "s@a.test", "-r", "x@sink.test",
                                           "-w", "20"], b"hello\n")
    sink.join()
    assert sink.error is None, (sink.error, out)
    assert rc == 1, out
    assert lines_of(out, "message") == ["message: n=1, delivered=0, maybe_twice=yes"], out
    assert "status=tempfail" in lines_of(out, "rcpt")[0], out
    assert "stage=dot, temporary=yes" in lines_of(out, "error")[0], out


def test_smtpc_to_aiosmtpd(certs, smtpc):
    """An independent server implementation (Python's aiosmtpd, no PIPELINING): STARTTLS
    (opportunistic), one command at a time, SMTPUTF8 and BODY=8BITMIME sent because it
    offers them, a refused recipient among accepted ones, the content as it received
    it (unstuffed, CRLF)."""
    import ssl
    from aiosmtpd.controller import Controller

    got = {}

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("unknown"):
                return "550 5.1.1 unknown user"
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"

        async def handle_DATA(self, server, session, envelope):
            got.update(mail_from=envelope.mail_from, rcpts=list(envelope.rcpt_tos),
                       mail_options=list(envelope.mail_options),
                       content=envelope.original_content or envelope.content,
                       tls=session.ssl is not None)
            return "250 2.0.0 OK queued"

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(str(certs.dir / "postern.crt"), str(certs.dir / "postern.key"))
    port = h.free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=tls,
                     enable_SMTPUTF8=True, decode_data=False)
    ctl.start()
    try:
        body = "Subject: ünïcode\n\n.dot\nbody ü\n".encode()
        rc, out = run_smtpc(smtpc, port, ["-f", "jörg@a.test", "-u", "-r", "zoë@sink.test",
                                          "-r", "unknown@sink.test", "-r", "b@sink.test",
                                          "-w", "20"], body)
    finally:
        ctl.stop()
    assert rc == 1, out
    assert "ok=yes" in lines_of(out, "tls")[0], out
    assert "pipelining=no, chunking=no" in lines_of(out, "server")[0], out
    rcpts = lines_of(out, "rcpt")
    assert "status=ok, code=250" in rcpts[0], out
    assert "status=permfail, code=550" in rcpts[1], out
    assert "status=ok, code=250" in rcpts[2], out
    assert got["tls"], got
    assert got["mail_from"] == "jörg@a.test", got
    assert got["rcpts"] == ["zoë@sink.test", "b@sink.test"], got
    assert "SMTPUTF8" in got["mail_options"] and "BODY=8BITMIME" in got["mail_options"], got
    assert got["content"] == body.replace(b"\n", b"\r\n"), got["content"]
