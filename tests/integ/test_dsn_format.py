"""The DSN writer (common/spool/dsn.c) read by another implementation: Python's email
package parses what tests/integ/dsntool/dsntool.c writes from a real envelope file and
message, and the tests check the multipart/report structure, the report-type, the
message/delivery-status field groups (RFC 3464), the returned original (RFC 3461 RET),
and that hostile reply text (CR, LF, a header injection, a fake boundary) stays inside
its field.  Not a daemon test: no accounts, no network."""
import email
import email.policy
import subprocess

import pytest

import helpers as h

DSNTOOL_SRC = h.REPO / "tests" / "integ" / "dsntool" / "dsntool.c"
ARRIVAL = 1764288000
NOW = ARRIVAL + 3600

ORIGINAL = (b"Received: from client.example.org by mx.example.org\r\n"
            b"From: Ned <ned@example.org>\r\n"
            b"To: bob@example.net\r\n"
            b"Subject: lunch\r\n"
            b"Message-ID: <lunch-1@example.org>\r\n"
            b"\r\n"
            b"See you at noon.\r\n"
            b"BODYMARK\r\n")


@pytest.fixture(scope="module")
def dsntool(tmp_path_factory):
    """dsntool built against this tree's release archives."""
    h.run(["make", "-s", "-C", str(h.REPO), "build/rel/libspool.a", "build/rel/libmail.a",
           "build/rel/libbase.a"], timeout=600)
    out = tmp_path_factory.mktemp("dsntool") / "dsntool"
    libs = subprocess.run(["make", "-s", "-C", str(h.REPO), "print-libs"], check=True,
                          capture_output=True, text=True, timeout=60).stdout.split()
    h.run(["cc", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-iquote",
           str(h.REPO / "common"), "-O1", "-o", str(out), str(DSNTOOL_SRC),
           str(h.REPO / "build/rel/libspool.a"), str(h.REPO / "build/rel/libmail.a"),
           str(h.REPO / "build/rel/libbase.a"), *libs], timeout=120)
    return out


def envelope(sender="ned@example.org", smtputf8=False, ret=None, envid=None, rcpts=None,
             body="8bitmime"):
    lines = ["postern-envelope 1", "id 0PZ4K8M2T7Q3", "nonce 9F86D081884C7D65",
             "arrival %d" % ARRIVAL, "size %d" % len(ORIGINAL), "body %s" % body,
             "smtputf8 %s" % ("yes" if smtputf8 else "no"), "sender <%s>" % sender]
    if ret:
        lines.append("ret %s" % ret)
    if envid:
        lines.append("envid %s" % envid)
    lines.append("client-name client.example.org")
    for addr, notify, orcpt in rcpts or [("bob@example.net", None, None)]:
        lines += ["rcpt <%s>" % addr, "kind remote"]
        if notify:
            lines.append("notify %s" % notify)
        if orcpt:
            lines.append("orcpt %s" % orcpt)
        lines += ["state failed", "attempts 1"]
    lines.append("end")
    return ("\n".join(lines) + "\n").encode()


def run_tool(dsntool, tmp_path, env, reports, original=ORIGINAL, check=True):
    (tmp_path / "env").write_bytes(env)
    orig = "-"
    if original is not None:
        (tmp_path / "orig").write_bytes(original)
        orig = str(tmp_path / "orig")
    argv = [str(dsntool), str(tmp_path / "env"), orig, "mx.example.org", str(NOW)]
    for r in reports:
        argv += [str(x) for x in r]
    p = subprocess.run(argv, capture_output=True, timeout=30)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def check_form(raw):
    """CRLF only, every line under 998, no NUL."""
    assert b"\0" not in raw
    assert raw.endswith(b"\r\n")
    body = raw.replace(b"\r\n", b"\n")
    assert b"\r" not in body, "a lone CR"
    for line in body.split(b"\n"):
        assert len(line) <= 998


def parse(raw):
    check_form(raw)
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert not msg.defects, msg.defects
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    return msg


def status_groups(part):
    """message/delivery-status: the email package gives one Message per field group."""
    groups = part.get_payload()
    assert isinstance(groups, list) and len(groups) >= 2
    return groups[0], groups[1:]


FAIL = (0, "failed", "5.1.1", "mx.example.net", "550 5.1.1 <bob@example.net>: no such user",
        ARRIVAL + 60, 0)


def test_failed_headers_by_default(dsntool, tmp_path):
    """A failure without RET: the three parts, the per-message and per-recipient fields,
    and the original's header (not its body) as text/rfc822-headers."""
    p = run_tool(dsntool, tmp_path, envelope(envid="QQ314159"), [FAIL])
    msg = parse(p.stdout)
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
    assert msg["To"] == "<ned@example.org>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Message-ID"] == "<0Q0000DSNTST1@mx.example.org>"
    assert email.utils.parsedate_to_datetime(msg["Date"]).timestamp() == NOW
    parts = msg.get_payload()
    assert [x.get_content_type() for x in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert "bob@example.net" in parts[0].get_payload()
    per_msg, per_rcpt = status_groups(parts[1])
    assert per_msg["Reporting-MTA"] == "dns; mx.example.org"
    assert per_msg["Original-Envelope-Id"] == "QQ314159"
    assert per_msg["Received-From-MTA"] == "dns; client.example.org"
    assert email.utils.parsedate_to_datetime(per_msg["Arrival-Date"]).timestamp() == ARRIVAL
    assert len(per_rcpt) == 1
    r = per_rcpt[0]
    assert r["Final-Recipient"] == "rfc822; bob@example.net"
    assert r["Original-Recipient"] is None
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert r["Remote-MTA"] == "dns; mx.example.net"
    assert r["Diagnostic-Code"] == "smtp; 550 5.1.1 <bob@example.net>: no such user"
    assert email.utils.parsedate_to_datetime(r["Last-Attempt-Date"]).timestamp() == ARRIVAL + 60
    headers = email.message_from_string(parts[2].get_payload())
    assert headers["Subject"] == "lunch"
    assert headers["Message-ID"] == "<lunch-1@example.org>"
    assert "BODYMARK" not in parts[2].get_payload()
    # the DSN's own envelope: MAIL FROM:<>, to the sender, NOTIFY=NEVER
    err = p.stderr.decode()
    assert "reported=1 returned=headers" in err
    assert "\nsender <>\n" in err and "\nrcpt <ned@example.org>\n" in err
    assert "\nnotify never\n" in err


def test_ret_full_returns_the_message(dsntool, tmp_path):
    p = run_tool(dsntool, tmp_path, envelope(ret="full"), [FAIL])
    msg = parse(p.stdout)
    parts = msg.get_payload()
    assert parts[2].get_content_type() == "message/rfc822"
    inner = parts[2].get_payload()[0]
    assert inner["Subject"] == "lunch"
    assert "BODYMARK" in inner.get_payload()
    assert b"returned=full" in p.stderr


def test_ret_hdrs_and_orcpt(dsntool, tmp_path):
    """RET=HDRS; ORCPT round-trips into Original-Recipient; a recipient with NOTIFY=NEVER
    is left out of the report (RFC 3461 5.2.8)."""
    env = envelope(ret="hdrs", rcpts=[("bob@example.net", None, "rfc822;Bob@Example.NET"),
                                      ("cy@example.net", "never", None)])
    cy = (1, "failed", "5.1.1", "mx.example.net", "550 no", ARRIVAL, 0)
    p = run_tool(dsntool, tmp_path, env, [FAIL, cy])
    msg = parse(p.stdout)
    parts = msg.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"
    _, per_rcpt = status_groups(parts[1])
    assert len(per_rcpt) == 1
    assert per_rcpt[0]["Original-Recipient"] == "rfc822;Bob@Example.NET"
    assert b"cy@example.net" not in p.stdout


def test_delayed(dsntool, tmp_path):
    until = ARRIVAL + 5 * 86400
    d = (0, "delayed", "4.4.1", "mx.example.net", "451 4.4.1 try again later",
         ARRIVAL + 4 * 3600, until)
    p = run_tool(dsntool, tmp_path, envelope(ret="full"), [d])
    msg = parse(p.stdout)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    parts = msg.get_payload()
    # no failure reported: the header only, even with RET=FULL (RFC 3461 6.2)
    assert parts[2].get_content_type() == "text/rfc822-headers"
    _, per_rcpt = status_groups(parts[1])
    assert per_rcpt[0]["Action"] == "delayed"
    assert per_rcpt[0]["Status"] == "4.4.1"
    assert email.utils.parsedate_to_datetime(per_rcpt[0]["Will-Retry-Until"]).timestamp() == until


def test_success_only_when_asked(dsntool, tmp_path):
    ok = (0, "delivered", "2.0.0", "-", "-", ARRIVAL, 0)
    p = run_tool(dsntool, tmp_path, envelope(), [ok], check=False)
    assert p.returncode == 3 and p.stdout == b""        # no NOTIFY: never on success
    env = envelope(rcpts=[("bob@example.net", "success", None)])
    p = run_tool(dsntool, tmp_path, env, [ok])
    msg = parse(p.stdout)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    _, per_rcpt = status_groups(msg.get_payload()[1])
    assert per_rcpt[0]["Action"] == "delivered"


def test_never_to_the_null_sender(dsntool, tmp_path):
    p = run_tool(dsntool, tmp_path, envelope(sender=""), [FAIL], check=False)
    assert p.returncode == 3 and p.stdout == b""
    assert b"null sender" in p.stderr


def test_hostile_diagnostic_stays_in_its_field(dsntool, tmp_path):
    """A remote server's reply with CR/LF, a header, an empty line and our boundary's
    shape: it stays one Diagnostic-Code value; the report keeps its parts."""
    evil = ("550 5.1.1 no\r\nBcc: victim@example.com\r\n\r\n--=_dsn_0\r\n"
            "Content-Type: text/html\r\n\r\n<b>x</b>" + " word" * 400)
    bad = (0, "failed", "5.1.1", "mx.example.net\r\nX-Injected: 1", evil, ARRIVAL, 0)
    p = run_tool(dsntool, tmp_path, envelope(), [bad])
    msg = parse(p.stdout)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    parts = msg.get_payload()
    assert len(parts) == 3
    _, per_rcpt = status_groups(parts[1])
    r = per_rcpt[0]
    assert set(k.lower() for k in r.keys()) <= {
        "final-recipient", "action", "status", "remote-mta", "diagnostic-code",
        "last-attempt-date"}
    diag = " ".join(r["Diagnostic-Code"].split())     # unfolded
    assert diag.startswith("smtp; 550 5.1.1 no Bcc: victim@example.com --=_dsn_0")
    assert diag.endswith("...")
    assert r["Remote-MTA"] == "dns; mx.example.net X-Injected: 1"
    assert b"\r\nBcc:" not in p.stdout and b"\r\nX-Injected:" not in p.stdout


def test_smtputf8_global_types(dsntool, tmp_path):
    """An SMTPUTF8 message: message/global-delivery-status, message/global-headers, the
    UTF-8 addresses kept (RFC 6533), and the DSN itself flagged SMTPUTF8."""
    env = envelope(sender="n\u00e9d@example.org", smtputf8=True,
                   rcpts=[("\u7528\u6237@example.net", None, None)])
    p = run_tool(dsntool, tmp_path, env, [FAIL])
    check_form(p.stdout)
    msg = email.message_from_bytes(p.stdout, policy=email.policy.SMTPUTF8)
    assert msg.get_content_type() == "multipart/report"
    assert "\r\nTo: <n\u00e9d@example.org>\r\n".encode() in p.stdout
    parts = msg.get_payload()
    assert [x.get_content_type() for x in parts] == [
        "text/plain", "message/global-delivery-status", "message/global-headers"]
    assert "\r\nFinal-Recipient: utf-8; \u7528\u6237@example.net\r\n".encode() in p.stdout
    assert b"smtputf8=1" in p.stderr
    assert "\nsmtputf8 yes\n" in p.stderr.decode("utf-8")
