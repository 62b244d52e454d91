"""The pre-login worker holds no TLS secret that outlives its own connection: neither the
private key (its operations are done for it by the monitor's key process,
common/privsep/keyop.c, tls.c, monitor.c) nor a session-ticket key (there is none: TLS 1.3
sessions are kept by the monitor, and TLS 1.2 gets no ticket).  Nor does the monitor, or
the session it becomes after login.

The attack reproduced: somebody who runs code in a worker reads its memory.  As root we
read a live worker's whole address space (/proc/PID/maps + /proc/PID/mem) while it waits
for a command before login, and search it for the private key's secret numbers (the EC
scalar; RSA p, q, d), big- and little-endian (OpenSSL keeps BIGNUMs as little-endian
words).  The same search over the key process, which holds the key, must find them: that
is what shows the search works and the test is not vacuous."""

import re
import subprocess

import time

import pytest

import helpers as h

# Regions larger than this are not read: a sanitizer build reserves terabytes of shadow
# memory (sparse, never key material).
MAX_REGION = 1 << 30
CHUNK = 1 << 20


def _forms(n, length):
    """The number n as it may sit in memory: big-endian (DER, PEM decoded) and
    little-endian (BIGNUM words), without zero padding."""
    be = n.to_bytes(length, "big").lstrip(b"\0")
    le = n.to_bytes(length, "little").rstrip(b"\0")
    assert len(be) >= 24 and len(le) >= 24
    return [be, le]


def key_secrets(path):
    """{name: [byte strings]} of the private key file's secret numbers, read with
    `openssl pkey -text` (EC: priv; RSA: privateExponent, prime1, prime2)."""
    text = subprocess.run(["openssl", "pkey", "-in", str(path), "-text", "-noout"],
                          capture_output=True, text=True, check=True).stdout
    fields, name = {}, None
    for line in text.splitlines():
        if line.startswith(" ") and name is not None:
            fields[name] += line.strip().replace(":", "")
        else:
            name = line.split(":")[0].strip() if line.rstrip().endswith(":") else None
            if name is not None:
                fields[name] = ""
    wanted = {"priv": "ec-scalar", "privateExponent": "rsa-d", "prime1": "rsa-p",
              "prime2": "rsa-q"}
    out = {}
    for field, label in wanted.items():
        if field in fields:
            v = int(fields[field], 16)
            out[label] = _forms(v, (v.bit_length() + 7) // 8)
    assert set(out) in ({"ec-scalar"}, {"rsa-d", "rsa-p", "rsa-q"}), text[:200]
    return out


def read_memory(pid):
    """Every readable mapping of pid, as (name, bytes) chunks that overlap by 4 KiB so
    that a needle across a chunk boundary is still found."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            start, end, perms = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
            if perms[0] != "r" or end - start > MAX_REGION or line.endswith("[vvar]"):
                continue
            pos = start
            while pos < end:
                n = min(CHUNK + 4096, end - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(n)
                except OSError:
                    break
                yield line, data
                pos += CHUNK


def search(pid, needles):
    """{name: True} for each needle (name -> [byte strings]) found in pid's memory."""
    found = {}
    for _, data in read_memory(pid):
        for name, forms in needles.items():
            if name not in found and any(f in data for f in forms):
                found[name] = True
    return found


def _worker_and_monitor(c):
    """(worker pid, monitor pid, key process pid or None) of connection c: the worker
    holds the client socket as postern; the monitor is its parent, root; the key process
    is the monitor's other child, root."""
    inode = h.server_socket_inode(c.server_port, c.client_port)
    assert inode
    import pwd
    postern = pwd.getpwnam("postern").pw_uid
    workers = [p for p in h.socket_holders(inode) if h.proc_uids(p) == (postern, postern)]
    assert len(workers) == 1, workers
    worker = workers[0]
    monitor = h.proc_stat(worker)[0]
    assert h.proc_uids(monitor) == (0, 0), "the worker's parent is not the root monitor"
    keyproc = [p for p in h.children_map().get(monitor, [])
               if p != worker and h.proc_uids(p) == (0, 0)]
    assert len(keyproc) <= 1, keyproc
    return worker, monitor, (keyproc[0] if keyproc else None)


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_worker_memory_holds_no_private_key(daemon, certs, kind):
    d = certs.dir if kind == "ecdsa" else certs.rsa_dir
    ca = certs.ca if kind == "ecdsa" else certs.rsa_ca
    daemon.configure(tls_cert=d / "postern.crt", tls_key=d / "postern.key")
    daemon.start()
    secrets = key_secrets(d / "postern.key")
    ctx = h.client_context(ca)

    # implicit TLS, and STLS: in both the worker has done its handshake (one signature,
    # by the monitor) and waits for the next command before login
    for how in ("implicit", "stls"):
        if how == "implicit":
            c = h.Pop3(daemon.tls_port, tls=ctx)
        else:
            c = h.Pop3(daemon.port)
            c.stls(ctx)
        with c:
            assert c.greeting == h.GREETING
            assert c.capa()
            worker, monitor, keyproc = _worker_and_monitor(c)
            in_worker = search(worker, secrets)
            assert not in_worker, "%s: the worker's memory holds %s" % (how, sorted(in_worker))
            in_monitor = search(monitor, secrets)
            assert not in_monitor, "%s: the monitor's memory holds %s" % (how, sorted(in_monitor))
            assert keyproc, "no key process after a full handshake"
            in_keyproc = search(keyproc, secrets)
            assert in_keyproc, ("%s: the search found no key number in the key process "
                                "either: it proves nothing" % how)
            assert c.cmd("QUIT").startswith("+OK")
    tls = daemon.log.events("tls")
    assert len(tls) == 2 and {e["resumed"] for e in tls} == {"no"}
    assert not daemon.log.events("tls-config")


def _store_sessions(path):
    """[(id, session bytes)] kept in state_dir/tls-sessions (layout in tlscache.c)."""
    data = path.read_bytes()
    slot = 1664
    out = []
    for off in range(0, len(data), slot):
        s = data[off:off + slot]
        if s[0] == 0:
            continue
        idlen = s[0]
        n = int.from_bytes(s[41:43], "big")
        out.append((s[1:1 + idlen], s[43:43 + n]))
    return out


def _der_items(b):
    """The elements of a DER SEQUENCE: [(tag, value)]."""
    def length(b, i):
        n = b[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(b[i + 1:i + 1 + k], "big"), i + 1 + k

    assert b[0] == 0x30
    total, i = length(b, 1)
    end = i + total
    items = []
    while i < end:
        tag = b[i]
        n, j = length(b, i + 1)
        items.append((tag, b[j:j + n]))
        i = j + n
    return items


def test_worker_memory_holds_no_other_session(daemon, user, certs):
    """No ticket key, and no other connection's resumption secret: a worker holds only
    the sessions of its own client."""
    daemon.start()
    ctx = h.client_context(certs.ca, h.ssl.TLSVersion.TLSv1_3)
    with h.Pop3(daemon.tls_port, tls=ctx) as c:
        assert c.login(user.name, user.password) == h.LOGGED_IN
        c.quit()
    assert not (daemon.state_dir / "tls-ticket.keys").exists()
    kept = _store_sessions(daemon.state_dir / "tls-sessions")
    assert len(kept) == 1
    # SSL_SESSION_ASN1: version, ssl_version, cipher, session_id, master_key, ...
    items = _der_items(kept[0][1])
    assert items[3] == (0x04, kept[0][0])
    secret = items[4][1]
    assert items[4][0] == 0x04 and len(secret) in (32, 48)

    with h.Pop3(daemon.tls_port, tls=ctx) as c:          # another client, no resumption
        assert not c.sock.session_reused
        assert c.capa()
        worker, monitor, _ = _worker_and_monitor(c)
        assert not search(worker, {"resumption-secret": [secret]})
        c.quit()


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_session_memory_holds_no_private_key(daemon, user, certs, kind):
    """After login the monitor forks the session, as the mail user: neither ever read the
    key (the key process did, and is gone), so a user who took over their own session
    finds no key either, nor does anyone who reads the monitor's memory."""
    d = certs.dir if kind == "ecdsa" else certs.rsa_dir
    ca = certs.ca if kind == "ecdsa" else certs.rsa_ca
    daemon.configure(tls_cert=d / "postern.crt", tls_key=d / "postern.key")
    daemon.start()
    secrets = key_secrets(d / "postern.key")
    with h.Pop3(daemon.tls_port, tls=h.client_context(ca)) as c:
        worker, monitor, keyproc = _worker_and_monitor(c)
        assert keyproc, "no key process after a full handshake"
        assert search(keyproc, secrets), "the key process holds no key number: proves nothing"
        assert c.login(user.name, user.password) == h.LOGGED_IN
        assert c.stat()[0] == 3
        sessions = []
        for _ in range(100):
            sessions = [p for p in h.children_map().get(monitor, [])
                        if h.proc_uids(p) == (user.uid, user.uid)]
            if sessions:
                break
            time.sleep(0.05)
        assert len(sessions) == 1, "no session process under the monitor"
        in_session = search(sessions[0], secrets)
        assert not in_session, "the session's memory holds %s" % sorted(in_session)
        in_monitor = search(monitor, secrets)
        assert not in_monitor, "the monitor's memory holds %s" % sorted(in_monitor)
        assert not search(worker, secrets)
        assert keyproc not in h.children_map().get(monitor, []), "the key process lives on"
        c.quit()
