"""The dns library (common/dns/, libunbound) against a real DNS server: unbound serving a
DNSSEC-signed test. zone (signed here with ldns-signzone) and an unsigned reverse zone on
loopback.  The library is driven through tests/unit/dns/dnsq (a test tool, never
installed), configured like the daemons will be: dns_servers = the local server,
dnssec_trust_anchor = the test zone's key."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import REPO, TMP_PREFIX, Unbound, free_port

KEYGEN = "/usr/bin/ldns-keygen"
SIGNZONE = "/usr/bin/ldns-signzone"

ZONE = """$ORIGIN test.
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ IN NS ns.test.
ns IN A 127.0.0.1
; 163.test: three MX, two at preference 10; SPF in two strings
163 IN MX 10 mx1.163.test.
163 IN MX 5 mx0.163.test.
163 IN MX 10 mx2.163.test.
163 IN MX 20 mx3.163.test.
163 IN TXT "v=spf1 " "ip4:192.0.2.1 -all"
mx0.163 IN A 192.0.2.10
mx1.163 IN A 192.0.2.11
mx1.163 IN AAAA 2001:db8::11
; sina.test: no MX (implicit MX), an address
sina IN A 192.0.2.20
; null.test: RFC 7505 null MX
null IN MX 0 .
_25._tcp.mx0.163 IN TLSA 3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20
; alias.test is a CNAME of mx0.163.test: its TLSA base domain is the target's
alias IN CNAME mx0.163.test.
; bad.test: its TLSA record is changed after signing
bad IN A 192.0.2.30
_25._tcp.bad IN TLSA 3 1 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
"""

REV_ZONE = """$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ IN NS ns.test.
10 IN PTR mx0.163.test.
"""


def dnsq_path():
    p = os.environ.get("POSTERN_DNSQ")
    if p:
        return Path(p) if Path(p).is_absolute() else REPO / p
    p = REPO / "build/rel/tests/unit/dns/dnsq"
    subprocess.run(["make", "-s", "-C", str(REPO), "build/rel/tests/unit/dns/dnsq"],
                   check=True, timeout=300)
    return p


class Dns:
    def __init__(self, workdir, port, anchor):
        self.workdir, self.port, self.anchor = workdir, port, anchor
        self.dnsq = dnsq_path()

    def query(self, qtype, name, *opts, anchor=True, servers=None):
        argv = [str(self.dnsq), "-s", servers or "127.0.0.1@%d" % self.port, "-d", "10000"]
        argv += ["-a", self.anchor] if anchor else ["-n"]
        argv += list(opts) + [qtype, name]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        head = dict(f.split("=", 1) for f in lines[0].split())
        self.why = out.stderr
        return head, [ln.split(" ", 1)[1] for ln in lines[1:]]


@pytest.fixture
def dns():
    for tool in (KEYGEN, SIGNZONE):
        if not os.access(tool, os.X_OK):
            pytest.fail("%s missing (make deps)" % tool)
    workdir = tempfile.mkdtemp(prefix="%s%d-" % (TMP_PREFIX, os.getpid()))
    proc = None
    try:
        wd = Path(workdir)
        (wd / "test.zone").write_text(ZONE)
        (wd / "rev.zone").write_text(REV_ZONE)
        key = subprocess.run([KEYGEN, "-a", "ECDSAP256SHA256", "-k", "test"], cwd=workdir,
                             capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run([SIGNZONE, "test.zone", key], cwd=workdir, check=True)
        signed = (wd / "test.zone.signed").read_text()
        bad = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        assert bad in signed
        # the attack: the TLSA data changed on the way, its signature left as it was
        (wd / "test.zone.signed").write_text(signed.replace(bad, "bb" * 32))
        proc = Unbound(wd, {"test.": wd / "test.zone.signed",
                            "2.0.192.in-addr.arpa.": wd / "rev.zone"})
        port = proc.port
        yield Dns(workdir, port, str(wd / (key + ".key")))
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_mx_ordering_by_preference_equal_ones_random(dns):
    seen = set()
    for _ in range(20):
        head, mx = dns.query("mx", "163.test")
        assert head["status"] == "ok" and head["secure"] == "1"
        assert head["implicit"] == "0" and head["null_mx"] == "0"
        assert mx[0] == "5 mx0.163.test"
        assert sorted(mx[1:3]) == ["10 mx1.163.test", "10 mx2.163.test"]
        assert mx[3] == "20 mx3.163.test"
        seen.add(tuple(mx[1:3]))
    # RFC 5321 5.1: equal preferences in random order, so both orders turn up
    assert len(seen) == 2


def test_mx_implicit_null_nxdomain(dns):
    head, mx = dns.query("mx", "sina.test")
    assert head["status"] == "ok" and head["implicit"] == "1" and mx == ["0 sina.test"]
    head, mx = dns.query("mx", "null.test")
    assert head["status"] == "ok" and head["null_mx"] == "1" and mx == []
    head, mx = dns.query("mx", "nx.test")
    assert head["status"] == "not-found" and mx == []
    # NXDOMAIN is proved by the signed zone's NSEC records
    assert head["secure"] == "1"


def test_mx_self(dns):
    # this host is mx1 (preference 10): it, mx2 (10) and mx3 (20) are dropped
    head, mx = dns.query("mx", "163.test", "-m", "MX1.163.test.")
    assert head["status"] == "ok" and head["self"] == "0" and mx == ["5 mx0.163.test"]
    # this host is the best MX: nothing is left, "MX points at self"
    head, mx = dns.query("mx", "163.test", "-m", "mx0.163.test")
    assert head["self"] == "1" and mx == []


def test_txt_ptr_addr(dns):
    head, txt = dns.query("txt", "163.test")
    assert head["status"] == "ok" and txt == ["v=spf1 ip4:192.0.2.1 -all"]
    head, txt = dns.query("txt", "sina.test")
    assert head["status"] == "nodata" and txt == []
    head, ptr = dns.query("ptr", "192.0.2.10")
    # the reverse zone is not signed and no anchor covers it: an answer, not secure
    assert head["status"] == "ok" and head["secure"] == "0" and ptr == ["mx0.163.test"]
    head, ptr = dns.query("ptr", "192.0.2.99")
    assert head["status"] == "not-found"
    head, addr = dns.query("addr", "mx1.163.test")
    assert head["status"] == "ok" and head["secure"] == "1"
    assert addr == ["2001:db8::11", "192.0.2.11"]


def test_tlsa_secure_cname_and_bogus(dns):
    head, tlsa = dns.query("tlsa", "mx0.163.test")
    assert head["status"] == "ok" and head["secure"] == "1"
    assert tlsa == ["3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"]
    # RFC 7672 2.2.2: a validated CNAME: the TLSA records of its target
    head, tlsa = dns.query("tlsa", "alias.test")
    assert head["status"] == "ok" and head["secure"] == "1" and head["base"] == "mx0.163.test"
    assert len(tlsa) == 1
    # no TLSA at all: a validated denial
    head, tlsa = dns.query("tlsa", "sina.test")
    assert head["status"] in ("not-found", "nodata") and head["secure"] == "1" and tlsa == []
    # the tampered record: bogus, and no record handed out
    head, tlsa = dns.query("tlsa", "bad.test")
    assert head["status"] == "bogus" and head["secure"] == "0" and tlsa == []
    assert "validation failure" in dns.why   # the validator's reason, for the log
    # without validation the forged record would have been taken
    head, tlsa = dns.query("tlsa", "bad.test", anchor=False)
    assert head["status"] == "ok" and head["secure"] == "0"
    assert tlsa == ["3 1 1 " + "bb" * 32]


def test_dead_server_is_tempfail(dns):
    # a port nobody answers on: the lookup ends at its deadline with TEMPFAIL
    port = free_port()
    head, mx = dns.query("mx", "163.test", "-d", "1500", servers="127.0.0.1@%d" % port)
    assert head["status"] == "tempfail" and mx == []
