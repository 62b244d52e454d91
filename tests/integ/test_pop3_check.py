"""ipop3d -t: checks the setup, exit 0 when fine; otherwise names each problem and its
fix, and exits non-zero."""

import re


def _fix_given(out):
    """-t names a fix for each problem (a "fix:" line, or at least the word)."""
    return re.search(r"\bfix\b", out, re.I) is not None


def test_good_config(daemon):
    rc, out = daemon.check()
    assert rc == 0, out
    assert not re.search(r"^\s*error", out, re.M | re.I), out


def test_missing_pam_service(daemon):
    daemon.configure(pam_service="ptnosuchservice")
    rc, out = daemon.check()
    assert rc != 0, out
    assert "ptnosuchservice" in out
    assert _fix_given(out), out


def test_missing_certificate(daemon):
    daemon.configure(tls_cert=daemon.workdir / "no-such.crt")
    rc, out = daemon.check()
    assert rc != 0, out
    assert "no-such.crt" in out
    assert "mkcert" in out, "no fix (mkcert.sh / postern-mkcert) suggested:\n" + out
    assert _fix_given(out), out


def test_missing_key(daemon):
    daemon.configure(tls_key=daemon.workdir / "no-such.key")
    rc, out = daemon.check()
    assert rc != 0, out
    assert "no-such.key" in out
    assert _fix_given(out), out


def test_key_does_not_match_certificate(daemon, certs):
    daemon.configure(tls_key=certs.rsa_dir / "postern.key")
    rc, out = daemon.check()
    assert rc != 0, out
    assert re.search(r"match", out, re.I), out
    assert "mkcert" in out or "postern.key" in out, out
    assert _fix_given(out), out


def test_no_such_unpriv_user(daemon):
    daemon.configure(unpriv_user="ptnosuchuser")
    rc, out = daemon.check()
    assert rc != 0, out
    assert "ptnosuchuser" in out
    assert re.search(r"useradd|adduser|mkuser", out), "no fix suggested:\n" + out
    assert _fix_given(out), out


def test_bad_config_value(daemon):
    daemon.configure(min_uid="lots")
    rc, out = daemon.check()
    assert rc != 0, out
    assert "min_uid" in out


def test_unknown_config_key(daemon):
    daemon.configure(no_such_key="1")
    rc, out = daemon.check()
    assert rc != 0, out
    assert "no_such_key" in out


def test_missing_config_file(daemon):
    rc, out = daemon.check(config=daemon.workdir / "absent.conf")
    assert rc != 0, out
    assert "absent.conf" in out
