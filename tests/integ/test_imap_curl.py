"""curl imaps:// against imapd (CA-verified TLS, a real PAM account), on Maildir and mbox:
LIST of the folders, a message fetched by UID (whole and one section), SEARCH, a
message uploaded (APPEND) and read back.  test_imap_mailbox.py has the first UID fetch."""

import re

import pytest

import helpers as h
import imaptest as it

pytestmark = pytest.mark.skipif(not h.which("curl"), reason="curl is not installed")


def curl(d, certs, u, path, *extra, input=None):
    url = "imaps://localhost:%d/%s" % (d.tls_port, path)
    r = h.run(["curl", "-sS", "--max-time", "60", "--cacert", str(certs.ca), "--resolve",
               "localhost:%d:127.0.0.1" % d.tls_port, "-u",
               "%s:%s" % (u.name, u.password)] + list(extra) + [url],
              timeout=90, input=input)
    return r.stdout


def test_curl_list_fetch_search_upload(imapd, certs, store_user, tmp_path):
    u = store_user
    c = it.login(imapd, u)
    assert c.create("Work")[0] == "OK"
    c.logout()
    # LIST (curl sends LIST "" * for a URL without a mailbox)
    out = curl(imapd, certs, u, "")
    names = re.findall(r'^\* LIST \([^)]*\) "/" "?([^"\r\n]+)"?\r?$', out, re.M)
    assert "INBOX" in names and "Work" in names, out
    # a message by UID, whole and its TEXT section
    out = curl(imapd, certs, u, "INBOX/;UID=4")
    assert "Subject: test message 4" in out and "Body line 2 of message 4." in out
    out = curl(imapd, certs, u, "INBOX/;UID=3/;SECTION=TEXT")
    assert "Body line 0 of message 3." in out and "Subject:" not in out, out
    # SEARCH (curl: URL query)
    out = curl(imapd, certs, u, "INBOX?SUBJECT%20%22message%205%22")
    assert re.search(r"^\* SEARCH 5\r?$", out, re.M), out
    # upload: curl APPENDs the file to the folder of the URL
    msg = h.to_wire(h.make_message(42, subject="uploaded by curl"))
    f = tmp_path / "upload.eml"
    f.write_bytes(msg)
    curl(imapd, certs, u, "Work", "-T", str(f))
    c = it.login(imapd, u)
    rows = it.folder_map(c, "Work")
    assert [(r[0], r[1]) for r in rows] == [(1, "uploaded by curl")]
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == msg
    c.logout()
    out = curl(imapd, certs, u, "Work/;UID=1")
    assert out.replace("\r\n", "\n") == msg.decode().replace("\r\n", "\n")
