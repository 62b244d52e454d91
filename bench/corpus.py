#!/usr/bin/python3
"""bench/corpus.py: a deterministic corpus of realistic mail messages for the IMAP bench.

message(i) always returns the same bytes for the same i (and SEED): varied headers
(Received chains, display names, Cc, encoded-word subjects, In-Reply-To/References,
List-Id, X-Mailer), and bodies of four shapes: text/plain (some quoted-printable),
multipart/alternative (text + HTML), multipart/mixed with a base64 attachment, and
multipart/mixed with an alternative part inside.  Sizes are spread log-uniformly over
2-50 KB.  Every message whose number is a multiple of NEEDLE_EVERY has the word NEEDLE
in its text part (and no other does), so a SEARCH BODY has a known answer.
LF line ends (as stored on disk in Maildir and mbox).
  python3 bench/corpus.py N DIR     writes N messages as DIR/1.eml ... (for a look)
"""
import base64
import math
import random
import sys

SEED = 20261127
NEEDLE = "zanzibarquux"
NEEDLE_EVERY = 97
MIN_SIZE, MAX_SIZE = 2048, 50 * 1024

_WORDS = ("the of and to in is that for it as with was on be by at this are from or "
          "have an they which one you had not but what all were when we there can "
          "been has more if will would their so about into than them could its only "
          "other new some time these two may then first any like now over such our "
          "meeting report budget quarter server release schedule invoice contract "
          "project review draft agenda minutes proposal customer shipment order "
          "network storage backup migration kernel patch deadline travel conference "
          "lunch thanks regards please attached below above question answer issue "
          "ticket update status plan team office holiday weekend morning evening "
          "monday tuesday wednesday thursday friday numbers figures totals estimate").split()
_FIRST = ("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia "
          "Peggy Rupert Sybil Trent Victor Walter Yvonne Zoe").split()
_LAST = ("Smith Jones Müller García Rossi Novák Dubois Kowalski Nakamura Okafor "
         "Andersson Silva Cohen Petrov O'Brien").split()
_DOMAINS = ("example.org example.com example.net mail.example.de lists.example.org "
            "corp.example.co.uk").split()
_MAILERS = ("Mozilla Thunderbird 115.4", "Microsoft Outlook 16.0", "Apple Mail (2.3731)",
            "Roundcube Webmail/1.6.5", "mutt 2.2.9", "K-9 Mail 6.7")
_TZ = ("+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec").split()


def _pool():
    """Paragraphs made once: messages pick from them (cheap and deterministic)."""
    rng = random.Random(SEED)
    paras = []
    for _ in range(600):
        lines = []
        for _ in range(rng.randint(2, 8)):
            n = rng.randint(8, 13)
            ws = [rng.choice(_WORDS) for _ in range(n)]
            lines.append(" ".join(ws).capitalize() + rng.choice(".,;:!?"))
        paras.append("\n".join(lines) + "\n")
    blob = bytes(rng.getrandbits(8) for _ in range(96 * 1024))
    return paras, blob


_PARAS, _BLOB = _pool()


def _addr(rng):
    f, l = rng.choice(_FIRST), rng.choice(_LAST)
    a = "%s.%s@%s" % (f.lower(), l.lower().replace("'", "").replace("ü", "u")
                      .replace("á", "a"), rng.choice(_DOMAINS))
    if rng.random() < 0.2:
        return a
    name = "%s %s" % (f, l)
    if any(ord(c) > 127 for c in name):
        name = "=?UTF-8?B?%s?=" % base64.b64encode(name.encode()).decode()
    elif "'" in name:
        name = '"%s"' % name
    return "%s <%s>" % (name, a)


def _date(rng, i):
    t = 1672531200 + i * 613 + rng.randint(0, 600)     # 2023-01-01 onwards
    d, s = divmod(t, 86400)
    # civil-from-days (Howard Hinnant), enough for a Date: header
    z = d + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    mon = mp + 3 if mp < 10 else mp - 9
    y += mon <= 2
    return "%s, %d %s %d %02d:%02d:%02d %s" % (
        _DAYS[(d + 3) % 7], day, _MONTHS[mon - 1], y, s // 3600, s // 60 % 60, s % 60,
        rng.choice(_TZ)), t


def _text(rng, size, needle):
    out, n = [], 0
    if needle:
        out.append("About %s: see below.\n\n" % NEEDLE)
    while n < size:
        p = _PARAS[rng.randrange(len(_PARAS))]
        if rng.random() < 0.1:
            p = "".join("> " + ln + "\n" for ln in p.splitlines())
        out.append(p + "\n")
        n += len(p) + 1
    return "".join(out)


def _qp(text):
    # a light quoted-printable: these paragraphs are ASCII; break long lines softly
    out = []
    for ln in text.split("\n"):
        while len(ln) > 72:
            out.append(ln[:72] + "=")
            ln = ln[72:]
        out.append(ln)
    return "\n".join(out)


def _b64(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[k:k + 76] for k in range(0, len(s), 76)) + "\n"


def message(i):
    """Message number i (1-based): bytes with LF line ends."""
    rng = random.Random(SEED * 1000003 + i)
    size = int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))
    needle = i % NEEDLE_EVERY == 0
    date, t = _date(rng, i)
    frm = _addr(rng)
    to = ", ".join(_addr(rng) for _ in range(rng.choice((1, 1, 1, 2, 3))))
    subj = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 9))).capitalize()
    if rng.random() < 0.3:
        subj = "Re: " + subj
    if rng.random() < 0.1:
        subj = "=?UTF-8?Q?%s_=C3=BCber?=" % subj.replace(" ", "_")
    mid = "<%08x.%d@%s>" % (rng.getrandbits(32), i, rng.choice(_DOMAINS))
    h = []
    for hop in range(rng.randint(1, 4)):
        h.append("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby mail.example.org "
                 "(Postfix) with ESMTPS id %X\n\tfor <user@example.org>; %s"
                 % (hop, rng.choice(_DOMAINS), hop, rng.choice(_DOMAINS),
                    rng.randint(1, 254), rng.getrandbits(40), date))
    h += ["Return-Path: <bounce-%d@%s>" % (i, rng.choice(_DOMAINS)),
          "From: " + frm, "To: " + to]
    if rng.random() < 0.3:
        h.append("Cc: " + ", ".join(_addr(rng) for _ in range(rng.randint(1, 4))))
    if rng.random() < 0.1:
        h.append("Reply-To: " + _addr(rng))
    h += ["Subject: " + subj, "Date: " + date, "Message-ID: " + mid]
    if subj.startswith("Re:") or rng.random() < 0.1:
        ref = "<%08x.%d@%s>" % (rng.getrandbits(32), max(1, i - rng.randint(1, 50)),
                                rng.choice(_DOMAINS))
        h += ["In-Reply-To: " + ref, "References: " + ref]
    if rng.random() < 0.25:
        h.append("List-Id: Team discussion <team.%s>" % rng.choice(_DOMAINS))
    h += ["X-Mailer: " + rng.choice(_MAILERS), "MIME-Version: 1.0"]
    shape = rng.random()
    hdr_len = sum(len(x) + 1 for x in h) + 200
    room = max(512, size - hdr_len)
    if shape < 0.45:
        if rng.random() < 0.3:
            h += ["Content-Type: text/plain; charset=utf-8; format=flowed",
                  "Content-Transfer-Encoding: quoted-printable"]
            body = _qp(_text(rng, room, needle))
        else:
            h += ["Content-Type: text/plain; charset=us-ascii",
                  "Content-Transfer-Encoding: 7bit"]
            body = _text(rng, room, needle)
    else:
        b = "=_bench_%d_%08x" % (i, rng.getrandbits(32))
        if shape < 0.7:
            text = _text(rng, room // 2, needle)
            html = "<html><body>\n%s</body></html>\n" % "".join(
                "<p>%s</p>\n" % p for p in _text(rng, room // 2 - 40, False).split("\n\n"))
            h.append('Content-Type: multipart/alternative; boundary="%s"' % b)
            body = ("This is a multi-part message in MIME format.\n\n"
                    "--%s\nContent-Type: text/plain; charset=us-ascii\n\n%s\n"
                    "--%s\nContent-Type: text/html; charset=us-ascii\n\n%s\n--%s--\n"
                    % (b, text, b, html, b))
        else:
            text_n = rng.randint(300, max(400, room // 4))
            att_n = max(256, (room - text_n) * 3 // 4)
            off = rng.randrange(len(_BLOB) - att_n) if att_n < len(_BLOB) else 0
            att = _BLOB[off:off + att_n]
            kind, name = rng.choice((("application/pdf", "report.pdf"),
                                     ("image/png", "photo.png"),
                                     ("application/zip", "files.zip")))
            text = _text(rng, text_n, needle)
            if shape < 0.9:
                inner = "text/plain; charset=us-ascii\n\n" + text
                inner = "Content-Type: " + inner
            else:
                b2 = b + "_alt"
                inner = ('Content-Type: multipart/alternative; boundary="%s"\n\n'
                         "--%s\nContent-Type: text/plain; charset=us-ascii\n\n%s\n"
                         "--%s\nContent-Type: text/html; charset=us-ascii\n\n"
                         "<html><body><pre>\n%s</pre></body></html>\n--%s--\n"
                         % (b2, b2, text, b2, text[:400], b2))
            h.append('Content-Type: multipart/mixed; boundary="%s"' % b)
            body = ("--%s\n%s\n--%s\nContent-Type: %s; name=\"%s\"\n"
                    "Content-Disposition: attachment; filename=\"%s\"\n"
                    "Content-Transfer-Encoding: base64\n\n%s--%s--\n"
                    % (b, inner, b, kind, name, name, _b64(att), b))
    return ("\n".join(h) + "\n\n" + body).encode("utf-8"), t


def mbox_from_line(i, t):
    return b"From bounce-%d@example.org  Mon Jan  1 00:00:00 2024\n" % i


def main():
    import os
    n, d = int(sys.argv[1]), sys.argv[2]
    os.makedirs(d, exist_ok=True)
    for i in range(1, n + 1):
        with open(os.path.join(d, "%d.eml" % i), "wb") as f:
            f.write(message(i)[0])


if __name__ == "__main__":
    main()
