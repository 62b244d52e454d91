"""smtp-submit -t checks the DNS (issue 8): against a real DNS server (unbound on loopback,
serving a test. zone and the 192.0.2.0/24 reverse zone this test writes), for a domain set
up right and one set up wrong.  For the right one every check says ok: the host's A and
its PTR agree, the MX is this host, SPF lets it send, the DKIM record is the key that
`-k` made, DMARC is there.  For the wrong one, each gap is an error with the exact record
to add, and the exit status counts them.  Special-use names are not looked up unless
dns_servers is set."""

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

import helpers as h

ZONE = """$ORIGIN test.
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ IN NS ns.test.
ns IN A 127.0.0.1
; good.test: everything right for mx.good.test (192.0.2.1)
mx.good IN A 192.0.2.1
good IN MX 10 mx.good.test.
good IN TXT "v=spf1 mx -all"
_dmarc.good IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@good.test"
{dkim}
; bad.test: mx.bad.test (192.0.2.2) has a PTR naming another host, the MX is elsewhere,
; the SPF names another network, no DMARC, a DKIM record of another key
mx.bad IN A 192.0.2.2
bad IN MX 10 mx.elsewhere.test.
mx.elsewhere IN A 198.51.100.7
bad IN TXT "v=spf1 ip4:198.51.100.0/24 -all"
s1._domainkey.bad IN TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
; nowhere.test: no host address at all
"""

REV_ZONE = """$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@ IN NS ns.test.
1 IN PTR mx.good.test.
2 IN PTR dsl-192-0-2-2.provider.test.
"""


@pytest.fixture
def dnslab(smtp_daemon):
    """smtp_daemon's config with dkim keys for good.test and bad.test, and unbound
    serving the zones (dns_servers points at it); yields the daemon."""
    d = smtp_daemon
    keydir = d.workdir / "dkim"
    d.configure(dkim_key_dir=keydir, dkim_selector="s1", dnssec_trust_anchor="")
    records = {}
    for dom in ("good.test", "bad.test"):
        r = h.run([str(d.binary), "-c", str(d.config_path), "-k", dom, "s1", "ed25519"])
        records[dom] = [l for l in r.stdout.splitlines() if "._domainkey." in l][0]
    workdir = Path(tempfile.mkdtemp(prefix="%s%d-" % (h.TMP_PREFIX, os.getpid())))
    proc = None
    try:
        (workdir / "test.zone").write_text(ZONE.format(dkim=records["good.test"]))
        (workdir / "rev.zone").write_text(REV_ZONE)
        proc = h.Unbound(workdir, {"test.": workdir / "test.zone",
                                   "2.0.192.in-addr.arpa.": workdir / "rev.zone"})
        port = proc.port
        d.configure(dns_servers="127.0.0.1@%d" % port)
        yield d
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def dns_lines(d):
    r = d.command("-t")
    lines = [l for l in (r.stdout + r.stderr).splitlines()]
    out = []
    for i, l in enumerate(lines):
        if "DNS" in l or l.startswith("  fix:") and i > 0 and "DNS" in lines[i - 1]:
            out.append(l)
    return r, "\n".join(out), r.stdout + r.stderr


def test_a_domain_set_up_right_checks_out(dnslab):
    dnslab.configure(hostname="mx.good.test", local_domains="good.test")
    r, dns, full = dns_lines(dnslab)
    assert "error: DNS" not in dns, full
    assert "ok: DNS: mx.good.test has address 192.0.2.1, whose PTR names it again" in dns, full
    assert "ok: DNS: good.test's MX is this host" in dns, full
    assert "ok: DNS: good.test's SPF lets 192.0.2.1 send" in dns, full
    assert "ok: DNS: good.test publishes the DKIM key of selector s1" in dns, full
    assert "ok: DNS: good.test has a DMARC record" in dns, full


def test_each_gap_is_an_error_with_its_record(dnslab):
    dnslab.configure(hostname="mx.bad.test", local_domains="bad.test")
    r, dns, full = dns_lines(dnslab)
    # forward-confirmed reverse DNS
    assert re.search(r"error: DNS: the PTR of 192\.0\.2\.2 .* is dsl-192-0-2-2\.provider\.test",
                     dns), full
    assert "2.2.0.192.in-addr.arpa. IN PTR mx.bad.test." in dns, full
    # the MX
    assert "error: DNS: bad.test has MX records that name other hosts" in dns, full
    assert "fix: bad.test. IN MX 10 mx.bad.test." in dns, full
    # SPF: the record says another network; the fix names our address
    assert re.search(r"error: DNS: bad.test's SPF .* does not let 192\.0\.2\.2 send", dns), full
    assert "add ip4:192.0.2.2 before the all term" in dns, full
    # DKIM: a record of another key
    assert "error: DNS: s1._domainkey.bad.test: the published DKIM record is not" in dns, full
    key_txt = [l for l in full.splitlines() if "publish: s1._domainkey.bad.test." in l]
    assert key_txt, full
    # DMARC
    assert "error: DNS: bad.test has no DMARC record" in dns, full
    assert 'fix: _dmarc.bad.test. IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@bad.test"' \
        in dns, full
    assert r.returncode != 0
    assert re.search(r"^(\d+) smtp-submit problems? found$", full, re.M), full


def test_no_address_and_no_spf(dnslab):
    dnslab.configure(hostname="mx.nowhere.test", local_domains="nowhere.test")
    r, dns, full = dns_lines(dnslab)
    assert "error: DNS: the host name mx.nowhere.test has no A or AAAA record" in dns, full
    assert "mx.nowhere.test. IN A " in dns, full
    assert "error: DNS: nowhere.test has no MX and no address" in dns, full


def test_special_use_names_need_dns_servers(smtp_daemon):
    """Without dns_servers, a .test host is not looked up: a note, no problem."""
    smtp_daemon.configure(hostname="mx.good.test", local_domains="good.test")
    r = smtp_daemon.command("-t")
    out = r.stdout + r.stderr
    assert "note: DNS not checked: mx.good.test is a special-use name" in out, out
    assert "error: DNS" not in out
