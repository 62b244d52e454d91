"""DKIM (issue 8): keys made by `smtp-submit -k`, records printed by -k and -t, messages
signed by common/mail/dkim.c (through the test tool tests/unit/mail/dkimsign.c) and
VERIFIED by two independent implementations against the published record:

- dkimpy (python3-dkim), with a DNS function that returns the record -k printed;
- opendkim (opendkim-tools: opendkim-testmsg, libopendkim), which asks the DNS itself: it
  runs in a network and mount namespace of its own (unshare) with dnsmasq on its loopback
  serving the records exactly as -k printed them (the RSA one in 255-byte strings) and a
  resolv.conf bind-mounted over /etc/resolv.conf.

Both rsa-sha256 and ed25519-sha256; a changed body, a changed signed field, a From added
on the way and a selector with no record each fail.  And a message submitted on 587 is
signed in its spooled form (the queue's data file) and verifies.  Needs root (the key files are
root's; unshare).
"""
import os
import re
import shutil
import smtplib
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

import helpers as h

DOMAIN = "163.test"
SELECTORS = {"rsa": "rsa2026", "ed25519": "ed2026"}

MESSAGES = {
    "plain": (b"Received: from a by b; Sat, 28 Nov 2026 10:00:00 +0000\r\n"
              b"From: Ned <ned@163.test>\r\n"
              b"To: Sue <sue@sina.test>,\r\n"
              b"\tBob <bob@sina.test>\r\n"
              b"Subject:   Lunch   tomorrow?  \r\n"
              b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
              b"Message-ID: <lunch.1@163.test>\r\n"
              b"MIME-Version: 1.0\r\n"
              b"Content-Type: text/plain; charset=utf-8\r\n"
              b"\r\n"
              b"Hi Sue,  \r\n"
              b"\r\n"
              b"at \t noon?\r\n"
              b" -- Ned\r\n"
              b"\r\n\r\n\r\n"),
    "empty-body": (b"From: ned@163.test\r\nTo: sue@sina.test\r\nSubject: (none)\r\n"
                   b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\n"),
    # (opendkim refuses a message without Date, as RFC 5322 section 3.6 requires one)
    "long": (b"From: ned@163.test\r\nTo: sue@sina.test\r\nSubject: long lines\r\n"
             b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
             b"References: <a@163.test>\r\n <b@163.test>\r\n\t<c@163.test>\r\n\r\n"
             + b"".join(b"line %d %s\r\n" % (i, b"x" * (i % 900)) for i in range(2000))),
}


@pytest.fixture(scope="module")
def dkimsign():
    h.run(["make", "-s", "-C", str(h.REPO), "build/rel/tests/unit/mail/dkimsign"],
          timeout=300)
    return h.REPO / "build/rel/tests/unit/mail/dkimsign"


@pytest.fixture(scope="module")
def keys(smtp_binary):
    """Two keys made by smtp-submit -k; the records it printed, parsed."""
    if os.geteuid() != 0:
        pytest.skip("root: the key files are root's")
    d = Path(tempfile.mkdtemp(prefix="%s%d-" % (h.TMP_PREFIX, os.getpid())))
    try:
        conf = d / "postern.conf"
        conf.write_text("[global]\ndkim_key_dir = %s/dkim\n[smtp-submit]\n"
                        "local_domains = %s\ndkim_selector = %s\n"
                        % (d, DOMAIN, " ".join(SELECTORS.values())))
        out = {}
        for alg, sel in SELECTORS.items():
            r = h.run([str(smtp_binary), "-c", str(conf), "-k", DOMAIN, sel, alg])
            out[alg] = {"record": r.stdout.strip(), "sel": sel,
                        "path": d / "dkim" / ("%s.%s.key" % (DOMAIN, sel))}
        yield {"dir": d, "conf": conf, "keys": out, "bin": smtp_binary}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def parse_record(rec):
    """'SEL._domainkey.DOM. IN TXT "a" "b"' -> (name, [strings])."""
    m = re.fullmatch(r'(\S+) IN TXT((?: "[^"]*")+)', rec)
    assert m, rec
    return m.group(1), re.findall(r'"([^"]*)"', m.group(2))


def sign(dkimsign, key, alg, msg, chunk=None):
    argv = [str(dkimsign), str(key["path"]), DOMAIN, key["sel"]]
    if chunk is not None:
        argv.append(str(chunk))
    r = subprocess.run(argv, input=msg, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"DKIM-Signature: v=1; a=%s-sha256;" % alg.encode())
    assert r.stdout.endswith(msg)
    return r.stdout


def test_keygen_files_and_records(keys):
    rsa, ed = keys["keys"]["rsa"], keys["keys"]["ed25519"]
    for k in (rsa, ed):
        st = os.lstat(k["path"])
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == 0
    assert stat.S_IMODE(os.stat(keys["dir"] / "dkim").st_mode) == 0o700
    name, strings = parse_record(rsa["record"])
    assert name == "rsa2026._domainkey.163.test."
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    assert "".join(strings).startswith("v=DKIM1; k=rsa; p=MII")
    name, strings = parse_record(ed["record"])
    assert name == "ed2026._domainkey.163.test."
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", strings[0])
    # the private key is what openssl sees in the file
    t = h.run(["openssl", "pkey", "-in", str(rsa["path"]), "-noout", "-text"]).stdout
    assert "Private-Key: (2048 bit" in t
    t = h.run(["openssl", "pkey", "-in", str(ed["path"]), "-noout", "-text"]).stdout
    assert "ED25519 Private-Key" in t


def test_keygen_never_overwrites(keys):
    k = keys["keys"]["rsa"]
    before = k["path"].read_bytes()
    r = h.run([str(keys["bin"]), "-c", str(keys["conf"]), "-k", DOMAIN, k["sel"],
               "ed25519"], check=False)
    assert r.returncode == 1 and "exists already" in r.stderr and r.stdout == ""
    assert k["path"].read_bytes() == before
    # names that would leave the directory are refused before anything is written
    for dom, sel in (("../etc", "x"), (DOMAIN, "a/b"), (DOMAIN, "..")):
        r = h.run([str(keys["bin"]), "-c", str(keys["conf"]), "-k", dom, sel], check=False)
        assert r.returncode == 2
    # a missing selector, an unknown key type, extra words: usage errors, nothing written
    for args in ([DOMAIN], [DOMAIN, "s9", "dsa"], [DOMAIN, "s9", "rsa", "more"]):
        r = h.run([str(keys["bin"]), "-c", str(keys["conf"]), "-k"] + args, check=False)
        assert r.returncode == 2 and r.stdout == ""
    assert sorted(p.name for p in (keys["dir"] / "dkim").iterdir()) == \
        sorted(v["path"].name for v in keys["keys"].values())


def test_check_prints_the_records(keys):
    r = h.run([str(keys["bin"]), "-t", "-c", str(keys["conf"])], check=False)
    published = [l.split("publish: ", 1)[1] for l in r.stdout.splitlines()
                 if l.startswith("  publish: ")]
    assert sorted(published) == sorted(k["record"] for k in keys["keys"].values())
    assert "ok: DKIM key: 163.test selector rsa2026, rsa 2048 bits" in r.stdout
    # a key that is readable by others is an error with its fix
    p = keys["keys"]["ed25519"]["path"]
    os.chmod(p, 0o644)
    try:
        r = h.run([str(keys["bin"]), "-t", "-c", str(keys["conf"])], check=False)
        assert r.returncode != 0
        assert "chmod 600 %s" % p in r.stdout
    finally:
        os.chmod(p, 0o600)


def dnsfunc_for(keys, seen):
    table = {}
    for k in keys["keys"].values():
        name, strings = parse_record(k["record"])
        table[name.rstrip(".")] = "".join(strings).encode()

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        seen.append(n)
        return table.get(n.rstrip("."))
    return dnsfunc


def verifies(dkim, msg, dnsfunc):
    """dkimpy's verdict; an exception (a key of the other type, say) is a failure."""
    try:
        return dkim.verify(msg, dnsfunc=dnsfunc) is True
    except Exception:        # dkimpy and PyNaCl raise their own kinds
        return False


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("which", sorted(MESSAGES))
def test_dkimpy_verifies(keys, dkimsign, alg, which):
    dkim = pytest.importorskip("dkim")
    key = keys["keys"][alg]
    msg = MESSAGES[which]
    seen = []
    dnsfunc = dnsfunc_for(keys, seen)
    signed = sign(dkimsign, key, alg, msg)
    assert dkim.verify(signed, dnsfunc=dnsfunc) is True
    assert seen == ["%s._domainkey.%s." % (key["sel"], DOMAIN)]
    # fed byte by byte (chunks of 1 and 7): a signature as good
    for chunk in (1, 7):
        s2 = sign(dkimsign, key, alg, msg, chunk)
        assert dkim.verify(s2, dnsfunc=dnsfunc) is True
    # white space changes survive relaxed canonicalization
    assert dkim.verify(signed.replace(b"Subject: ", b"Subject:\t  "), dnsfunc=dnsfunc)
    # a changed body, a changed signed field, a From added on top: each fails
    sig_end = signed.index(b"\r\n", signed.index(b"b=")) + 2
    while signed[sig_end:sig_end + 1] in (b"\t", b" "):
        sig_end = signed.index(b"\r\n", sig_end) + 2
    head, rest = signed[:sig_end], signed[sig_end:]
    body_at = rest.index(b"\r\n\r\n") + 4
    assert not dkim.verify(head + rest[:body_at] + b"P.S. pay now\r\n" + rest[body_at:],
                           dnsfunc=dnsfunc)
    assert not dkim.verify(head + rest.replace(b"ned@163.test", b"ceo@163.test", 1),
                           dnsfunc=dnsfunc)
    assert not dkim.verify(head + b"From: ceo@163.test\r\n" + rest, dnsfunc=dnsfunc)
    # the record of another key: fails
    other = keys["keys"]["ed25519" if alg == "rsa" else "rsa"]
    wrong = signed.replace(b"s=%s;" % key["sel"].encode(), b"s=%s;" % other["sel"].encode())
    assert not verifies(dkim, wrong, dnsfunc)


OPENDKIM_SCRIPT = r"""
set -e
ip link set lo up
mount --bind "$DIR/resolv.conf" /etc/resolv.conf
"$DNSMASQ" --no-resolv --no-hosts --port=53 --listen-address=127.0.0.1 --bind-interfaces \
  --pid-file="$DIR/dnsmasq.pid" --conf-file="$DIR/dnsmasq.conf"
trap 'kill $(cat "$DIR/dnsmasq.pid")' EXIT
set +e
for f in "$DIR"/msg.*; do
  opendkim-testmsg < "$f" 2>"$f.err"
  echo "$(basename "$f") $?"
done
"""


def opendkim_verify(keys, files):
    """Run opendkim-testmsg on each {name: bytes}; {name: exit status}."""
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not shutil.which("opendkim-testmsg", path=os.environ.get("PATH", "") + ":/usr/sbin"):
        pytest.skip("opendkim-tools is not installed (tests/install-deps.sh)")
    d = Path(tempfile.mkdtemp(prefix="%s%d-" % (h.TMP_PREFIX, os.getpid())))
    try:
        (d / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        lines = []
        for k in keys["keys"].values():
            name, strings = parse_record(k["record"])
            # the record as -k printed it: its strings, each quoted
            lines.append("txt-record=%s,%s" % (name.rstrip("."),
                                               ",".join('"%s"' % s for s in strings)))
        (d / "dnsmasq.conf").write_text("\n".join(lines) + "\n")
        for n, data in files.items():
            (d / ("msg." + n)).write_bytes(data)
        env = dict(os.environ, DIR=str(d), DNSMASQ=dnsmasq,
                   PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        r = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", OPENDKIM_SCRIPT],
                           capture_output=True, text=True, env=env, timeout=120)
        res = dict(l.split() for l in r.stdout.splitlines() if l.startswith("msg."))
        assert len(res) == len(files), (r.stdout, r.stderr)
        errs = {n: (d / ("msg.%s.err" % n)).read_text() for n in files}
        return {n[4:]: int(v) for n, v in res.items()}, errs
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_opendkim_verifies(keys, dkimsign, alg):
    key = keys["keys"][alg]
    files = {}
    for which, msg in MESSAGES.items():
        signed = sign(dkimsign, key, alg, msg)
        files["good-" + which] = signed
        files["bytewise-" + which] = sign(dkimsign, key, alg, msg, 1)
        files["tampered-body-" + which] = signed + b"P.S. pay now\r\n"
        files["tampered-subject-" + which] = signed.replace(b"Subject:", b"Subject: RE:", 1)
    files["unknown-selector"] = files["good-plain"].replace(
        b"s=%s;" % key["sel"].encode(), b"s=nosuch;")
    rc, errs = opendkim_verify(keys, files)
    for n, status in rc.items():
        if n.startswith(("good-", "bytewise-")):
            assert status == 0, (n, errs[n])
        else:
            assert status != 0, (n, errs[n])
    assert "Bad signature" in errs["tampered-body-plain"] or \
        "body hash" in errs["tampered-body-plain"].lower()


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_spooled_message_signs_and_verifies(smtpd, ctx, make_user, keys, dkimsign, alg):
    """A message submitted on 587 to another domain stays in the queue (delivery to other
    domains comes later); the signer is fed the spool's data file as it is (the
    session's Received: on top, CRLF) and dkimpy verifies the result."""
    dkim = pytest.importorskip("dkim")
    smtpd.configure(plaintext_auth_from="192.0.2.1/32")
    u = make_user("maildir")
    s = smtplib.SMTP("127.0.0.1", smtpd.port, local_hostname="client.example.net",
                     timeout=60)
    s.starttls(context=ctx)
    s.login(u.name, u.password)
    msg = h.smtp_message("dkim from the spool", sender=h.address(u), to="far@sina.test",
                         body=b"Line one  \nline two\t\n\n\n")
    assert s.sendmail(h.address(u), ["far@sina.test"], h.to_wire(msg)) == {}
    s.quit()
    ids = smtpd.queue_ids()
    assert len(ids) == 1, ids
    data = (smtpd.spool_dir / "queue" / ids[0] / "data").read_bytes()
    assert data.startswith(b"Received: ") and b"dkim from the spool" in data
    signed = sign(dkimsign, keys["keys"][alg], alg, data)
    dnsfunc = dnsfunc_for(keys, [])
    assert dkim.verify(signed, dnsfunc=dnsfunc) is True
    assert not verifies(dkim, signed.replace(b"line two", b"line 2"), dnsfunc)
