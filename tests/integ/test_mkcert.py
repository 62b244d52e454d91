"""mkcert.sh: the local CA, the host certificate, and --install of an existing one.

Runs the script with /bin/sh (dash on Debian, so it stays POSIX) against temporary
directories; needs only the openssl command, not root.
"""
import datetime
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MKCERT = ROOT / "mkcert.sh"


def run(*args, check=False, cwd=None):
    p = subprocess.run(args, capture_output=True, text=True, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def mkcert(*args, check=True):
    return run("/bin/sh", str(MKCERT), *[str(a) for a in args], check=check)


def openssl(*args):
    return run("openssl", *[str(a) for a in args], check=True).stdout


def fingerprint(path):
    return openssl("x509", "-in", path, "-noout", "-fingerprint", "-sha256")


def key_text(path):
    return openssl("pkey", "-in", path, "-noout", "-text")


def cert_text(path):
    return openssl("x509", "-in", path, "-noout", "-text")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def parse_date(s):
    return datetime.datetime.strptime(s.strip(), "%b %d %H:%M:%S %Y %Z")


def no_temp_files(d):
    left = [p.name for p in Path(d).iterdir() if p.name.startswith(".")]
    assert left == [], f"temporary files left in {d}: {left}"


def snapshot(d):
    return {p.name: p.read_bytes() for p in Path(d).iterdir()}


@pytest.fixture
def tls(tmp_path):
    d = tmp_path / "tls"
    r = mkcert("-d", d, "localhost", "127.0.0.1", "::1")
    assert "created the local CA" in r.stdout
    assert "issued" in r.stdout
    return d


# --- issue mode --------------------------------------------------------------------------

def test_default_is_ecdsa_p256(tls):
    for key in ("ca.key", "postern.key"):
        t = key_text(tls / key)
        assert "prime256v1" in t or "P-256" in t, t
    assert "id-ecPublicKey" in cert_text(tls / "postern.crt")


def test_rsa_3072(tmp_path):
    d = tmp_path / "tls"
    r = mkcert("-d", d, "-t", "rsa", "mail.example.org")
    assert "RSA 3072" in r.stdout
    for key in ("ca.key", "postern.key"):
        assert re.search(r"Private-Key: \(3072 bit", key_text(d / key))
    assert run("openssl", "verify", "-CAfile", d / "ca.crt", d / "postern.crt").returncode == 0


def test_sans_and_extensions(tls):
    t = cert_text(tls / "postern.crt")
    assert "DNS:localhost" in t
    assert "IP Address:127.0.0.1" in t
    assert "IP Address:0:0:0:0:0:0:0:1" in t
    assert "TLS Web Server Authentication" in t
    assert re.search(r"Basic Constraints: critical\s+CA:FALSE", t)
    assert "Subject: CN = localhost" in t
    ca = cert_text(tls / "ca.crt")
    assert re.search(r"Basic Constraints: critical\s+CA:TRUE", ca)
    # at most 825 days
    start = parse_date(openssl("x509", "-in", tls / "postern.crt", "-noout", "-startdate").split("=", 1)[1])
    end = parse_date(openssl("x509", "-in", tls / "postern.crt", "-noout", "-enddate").split("=", 1)[1])
    assert (end - start).days <= 825


def test_modes(tls):
    assert mode(tls / "ca.key") == 0o600
    assert mode(tls / "postern.key") == 0o600
    assert mode(tls / "ca.crt") == 0o644
    assert mode(tls / "postern.crt") == 0o644
    no_temp_files(tls)


def test_verify_with_ca(tls):
    r = run("openssl", "verify", "-CAfile", tls / "ca.crt", tls / "postern.crt")
    assert r.returncode == 0 and r.stdout.strip().endswith(": OK"), r.stdout + r.stderr
    r = run("openssl", "verify", "-CAfile", tls / "ca.crt", "-purpose", "sslserver",
            "-verify_hostname", "localhost", tls / "postern.crt")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("openssl", "verify", "-CAfile", tls / "ca.crt", "-verify_ip", "::1", tls / "postern.crt")
    assert r.returncode == 0, r.stdout + r.stderr


def test_twice_keeps_ca_and_cert(tls):
    before = snapshot(tls)
    r = mkcert("-d", tls, "localhost", "127.0.0.1", "::1")
    assert "kept the local CA" in r.stdout
    assert "kept" in r.stdout.splitlines()[-1]
    assert len(r.stdout.splitlines()) <= 2
    assert snapshot(tls) == before
    # same names in another order and case: still the same certificate
    mkcert("-d", tls, "::1", "LOCALHOST", "127.0.0.1")
    assert snapshot(tls) == before


def test_new_name_renews(tls):
    ca_fp = fingerprint(tls / "ca.crt")
    host_fp = fingerprint(tls / "postern.crt")
    r = mkcert("-d", tls, "localhost", "127.0.0.1", "::1", "mail.example.org")
    assert "renewed" in r.stdout and "names changed" in r.stdout
    assert fingerprint(tls / "ca.crt") == ca_fp
    assert fingerprint(tls / "postern.crt") != host_fp
    assert "DNS:mail.example.org" in cert_text(tls / "postern.crt")
    assert run("openssl", "verify", "-CAfile", tls / "ca.crt", tls / "postern.crt").returncode == 0
    assert mode(tls / "postern.key") == 0o600
    no_temp_files(tls)


def test_key_type_change_renews(tls):
    r = mkcert("-d", tls, "-t", "rsa", "localhost", "127.0.0.1", "::1")
    assert "renewed" in r.stdout
    assert re.search(r"Private-Key: \(3072 bit", key_text(tls / "postern.key"))
    assert run("openssl", "verify", "-CAfile", tls / "ca.crt", tls / "postern.crt").returncode == 0


@pytest.mark.parametrize("bad", ["a b", "1.2.3", "300.1.1.1", "a..b", "*.*.example", "x/y",
                                 "-a.example", "a_b.example", "", "::1;x"])
def test_bad_names_refused(tmp_path, bad):
    d = tmp_path / "tls"
    r = mkcert("-d", d, "--", bad, check=False)
    assert r.returncode != 0
    assert "error" in r.stderr
    assert not d.exists()


def test_usage_errors(tmp_path):
    assert mkcert(check=False).returncode != 0
    r = mkcert("-d", tmp_path / "x", "-t", "dsa", "localhost", check=False)
    assert r.returncode != 0 and "ecdsa or rsa" in r.stderr
    assert mkcert("-d", tmp_path / "x", "--install", "only-one", check=False).returncode != 0


def test_wildcard_allowed(tmp_path):
    d = tmp_path / "tls"
    mkcert("-d", d, "*.example.org", "example.org")
    assert "DNS:*.example.org" in cert_text(d / "postern.crt")


# --- an existing certificate from elsewhere (what an ACME client gives) ------------------

def ca_cnf(d):
    cnf = d / "ca.cnf"
    cnf.write_text(f"""
[ca]
default_ca = ca_default
[ca_default]
dir = {d}
database = {d}/index.txt
new_certs_dir = {d}
serial = {d}/serial
default_md = sha256
policy = policy_any
copy_extensions = none
unique_subject = no
[policy_any]
commonName = supplied
organizationName = optional
[req]
distinguished_name = dn
[dn]
[v3_root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_inter]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:mail.example.org
authorityKeyIdentifier = keyid:always
""")
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    return cnf


def sign(d, cnf, csr, out, ca_crt, ca_key, ext, start=None, end=None):
    args = ["openssl", "ca", "-batch", "-notext", "-config", cnf, "-in", csr, "-out", out,
            "-cert", ca_crt, "-keyfile", ca_key, "-extensions", ext]
    if start:
        args += ["-startdate", start, "-enddate", end]
    else:
        args += ["-days", "90"]
    run(*args, check=True)


@pytest.fixture
def acme(tmp_path):
    """A public-CA-like chain: root -> intermediate -> leaf for mail.example.org,
    plus an expired leaf and a stray key."""
    d = tmp_path / "acme"
    d.mkdir()
    cnf = ca_cnf(d)
    for k in ("root", "inter", "leaf", "old", "other"):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", d / f"{k}.key")
    openssl("req", "-x509", "-new", "-key", d / "root.key", "-config", cnf, "-extensions",
            "v3_root", "-subj", "/O=Test/CN=Test Root", "-days", "3650", "-out", d / "root.crt")
    openssl("req", "-new", "-key", d / "inter.key", "-config", cnf, "-subj",
            "/O=Test/CN=Test Intermediate", "-out", d / "inter.csr")
    sign(d, cnf, d / "inter.csr", d / "inter.crt", d / "root.crt", d / "root.key", "v3_inter")
    for k in ("leaf", "old"):
        openssl("req", "-new", "-key", d / f"{k}.key", "-config", cnf, "-subj",
                "/CN=mail.example.org", "-out", d / f"{k}.csr")
    sign(d, cnf, d / "leaf.csr", d / "cert.pem", d / "inter.crt", d / "inter.key", "v3_leaf")
    sign(d, cnf, d / "old.csr", d / "old.pem", d / "inter.crt", d / "inter.key", "v3_leaf",
         start="20200101000000Z", end="20200401000000Z")
    (d / "chain.pem").write_text((d / "inter.crt").read_text())
    (d / "fullchain.pem").write_text((d / "cert.pem").read_text() + (d / "inter.crt").read_text())
    return d


def count_certs(path):
    return Path(path).read_text().count("-----BEGIN CERTIFICATE-----")


def check_installed(d, acme):
    assert count_certs(d / "postern.crt") == 2
    assert mode(d / "postern.key") == 0o600
    assert mode(d / "postern.crt") == 0o644
    assert fingerprint(d / "postern.crt") == fingerprint(acme / "cert.pem")
    r = run("openssl", "verify", "-CAfile", acme / "root.crt", "-untrusted", d / "postern.crt",
            d / "postern.crt")
    assert r.returncode == 0, r.stdout + r.stderr
    pub_crt = openssl("x509", "-in", d / "postern.crt", "-noout", "-pubkey")
    pub_key = openssl("pkey", "-in", d / "postern.key", "-pubout")
    assert pub_crt == pub_key
    no_temp_files(d)


def test_install_fullchain(tmp_path, acme):
    d = tmp_path / "tls"
    r = mkcert("-d", d, "--install", acme / "fullchain.pem", acme / "leaf.key")
    assert "installed" in r.stdout and "1 chain" in r.stdout
    check_installed(d, acme)


def test_install_separate_chain_replaces(tls, acme):
    r = mkcert("-d", tls, "--install", acme / "cert.pem", acme / "leaf.key", acme / "chain.pem")
    assert "installed" in r.stdout
    check_installed(tls, acme)
    # the local CA is left alone
    assert (tls / "ca.crt").exists() and (tls / "ca.key").exists()
    # mkcert for the same name keeps the installed certificate; other names need -f
    r = mkcert("-d", tls, "mail.example.org")
    assert "kept" in r.stdout and "not issued by the local CA" in r.stdout
    check_installed(tls, acme)
    r = mkcert("-d", tls, "other.example.org", check=False)
    assert r.returncode != 0 and "-f" in r.stderr
    check_installed(tls, acme)
    r = mkcert("-d", tls, "-f", "other.example.org")
    assert "renewed" in r.stdout
    assert run("openssl", "verify", "-CAfile", tls / "ca.crt", tls / "postern.crt").returncode == 0


def test_install_mismatching_key_refused(tls, acme):
    before = snapshot(tls)
    r = mkcert("-d", tls, "--install", acme / "fullchain.pem", acme / "other.key", check=False)
    assert r.returncode != 0
    assert "does not match" in r.stderr
    assert snapshot(tls) == before


def test_install_expired_refused(tls, acme):
    before = snapshot(tls)
    r = mkcert("-d", tls, "--install", acme / "old.pem", acme / "old.key", check=False)
    assert r.returncode != 0
    assert "expired" in r.stderr
    assert snapshot(tls) == before


def test_install_encrypted_key_refused(tls, acme):
    enc = acme / "enc.key"
    openssl("pkey", "-in", acme / "leaf.key", "-aes256", "-passout", "pass:secret", "-out", enc)
    before = snapshot(tls)
    r = mkcert("-d", tls, "--install", acme / "fullchain.pem", enc, check=False)
    assert r.returncode != 0 and "encrypted" in r.stderr
    assert snapshot(tls) == before


def test_install_not_a_certificate(tls, acme):
    before = snapshot(tls)
    r = mkcert("-d", tls, "--install", acme / "leaf.key", acme / "leaf.key", check=False)
    assert r.returncode != 0
    r = mkcert("-d", tls, "--install", acme / "missing.pem", acme / "leaf.key", check=False)
    assert r.returncode != 0 and "cannot read" in r.stderr
    assert snapshot(tls) == before


def test_install_without_chain_warns(tmp_path, acme):
    d = tmp_path / "tls"
    r = mkcert("-d", d, "--install", acme / "cert.pem", acme / "leaf.key")
    assert "no chain" in r.stderr
    assert count_certs(d / "postern.crt") == 1


def test_new_ca_renews_host_cert(tls):
    """The CA moved away: a new one is made and the host certificate reissued by it."""
    for f in ("ca.crt", "ca.key"):
        (tls / f).unlink()
    r = mkcert("-d", tls, "localhost", "127.0.0.1", "::1")
    assert "created the local CA" in r.stdout and "renewed" in r.stdout
    assert run("openssl", "verify", "-CAfile", tls / "ca.crt", tls / "postern.crt").returncode == 0


def test_ca_without_key_refused(tls):
    (tls / "ca.key").unlink()
    r = mkcert("-d", tls, "localhost", check=False)
    assert r.returncode != 0 and "ca.key" in r.stderr
