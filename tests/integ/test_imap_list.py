"""imapd's LIST family with imaplib over IMAPS, on Maildir and on mbox: LIST-EXTENDED
(RFC 5258 / RFC 9051 6.3.9: selection SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE;
return SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS of LIST-STATUS RFC 5819; pattern lists;
\\NonExistent, \\Subscribed, CHILDINFO, \\Noinferiors), the IMAP4rev2 form of the basic
LIST, patterns with * and %, Chinese names in modified UTF-7, CREATE-SPECIAL-USE (RFC
6154 3) and CREATE "name/" (RFC 3501 6.3.3)."""

import imaplib
import re
import time

import helpers as h

CN = "&ZTZO9nux-"                  # 收件箱
CN_SUB = "&ZTZO9nux-/&XeVPXA-"     # 收件箱/工作


def login(d, ctx, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", d.tls_port, ssl_context=ctx, timeout=60)
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    return c


def cmd(c, name, *args):
    """A command by hand: (status, its untagged LIST lines, its STATUS lines, tagged
    text)."""
    for k in ("LIST", "STATUS"):
        c.untagged_responses.pop(k, None)
    try:
        typ, data = c._simple_command(name, *args)
    except c.error as e:   # BAD
        return "BAD", [], [], str(e).encode()
    lists = [x for x in c.untagged_responses.pop("LIST", []) if x is not None]
    status = [x for x in c.untagged_responses.pop("STATUS", []) if x is not None]
    return typ, lists, status, data[0] if data else b""


def by_name(lines):
    """{name: (attributes, extended data)} of LIST lines; a name twice fails."""
    out = {}
    for x in lines:
        m = re.match(rb'\(([^)]*)\) "/" ("[^"]*"|[^ ]+)(?: (.*))?$', x)
        assert m, x
        name = m.group(2).strip(b'"').decode()
        assert name not in out, ("listed twice", name, lines)
        out[name] = (set(m.group(1).decode().split()), m.group(3) or b"")
    return out


def setup_tree(c, store):
    for n in ("Fruit/Apple", "Fruit/Banana", "Vegetable/Corn"):
        assert c.create(n)[0] == "OK", n
    # Maildir++: "Vegetable" can be a folder too; mbox: it is the directory of Corn
    assert c.create("Vegetable")[0] == ("OK" if store == "maildir" else "NO")
    for n in ("Fruit/Banana", "Fruit/Peach", "Vegetable"):
        assert c.subscribe(n)[0] == "OK"


def test_capabilities(imapd, ctx, user):
    c = login(imapd, ctx, user)
    typ, data = c.capability()
    caps = data[0].split()
    for cap in (b"LIST-EXTENDED", b"LIST-STATUS", b"SPECIAL-USE", b"CREATE-SPECIAL-USE"):
        assert cap in caps, data
    c.logout()


def test_selection_and_return_options(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    setup_tree(c, u.store)

    # LIST (SUBSCRIBED): subscribed names only, existing or not, with \Subscribed
    typ, lines, _, _ = cmd(c, "LIST", "(SUBSCRIBED)", '""', "*")
    assert typ == "OK"
    got = by_name(lines)
    assert "Fruit/Apple" not in got and "Fruit" not in got
    assert {"\\Subscribed"} <= got["Fruit/Banana"][0]
    assert {"\\Subscribed", "\\NonExistent"} <= got["Fruit/Peach"][0]
    assert "\\Subscribed" in got["Vegetable"][0]
    assert "\\Subscribed" in got["INBOX"][0]          # subscribed at the first login
    assert "\\Sent" in got["Sent"][0]

    # RETURN (SUBSCRIBED): every folder, subscription state computed
    typ, lines, _, _ = cmd(c, "LIST", '""', "*", "RETURN", "(SUBSCRIBED)")
    got = by_name(lines)
    assert "\\Subscribed" not in got["Fruit/Apple"][0]
    assert "\\Subscribed" in got["Fruit/Banana"][0]
    assert "Fruit/Peach" not in got                   # not a folder, not selected

    # RECURSIVEMATCH: "Fruit" is not subscribed but has a subscribed child that "%"
    # does not match: returned with CHILDINFO, without \Subscribed
    typ, lines, _, _ = cmd(c, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
    got = by_name(lines)
    assert got["Fruit"][1] == b'("CHILDINFO" ("SUBSCRIBED"))', got["Fruit"]
    assert "\\Subscribed" not in got["Fruit"][0]
    assert "\\Subscribed" in got["Vegetable"][0] and got["Vegetable"][1] == b""
    assert "Fruit/Banana" not in got
    # with "*" the children are returned themselves: no CHILDINFO for them
    typ, lines, _, _ = cmd(c, "LIST", "(RECURSIVEMATCH SUBSCRIBED)", '""', "*")
    got = by_name(lines)
    assert "Fruit" not in got and "Fruit/Banana" in got
    # RECURSIVEMATCH alone, unknown options: BAD
    assert cmd(c, "LIST", "(RECURSIVEMATCH)", '""', "*")[0] == "BAD"
    assert cmd(c, "LIST", "(REMOTE RECURSIVEMATCH)", '""', "*")[0] == "BAD"
    assert cmd(c, "LIST", "(BOGUS)", '""', "*")[0] == "BAD"
    assert cmd(c, "LIST", '""', "*", "RETURN", "(BOGUS)")[0] == "BAD"
    assert cmd(c, "LIST", '""', "*", "RETURN")[0] == "BAD"

    # REMOTE: accepted, no remote folders here; CHILDREN
    typ, lines, _, _ = cmd(c, "LIST", "(REMOTE)", '""', "%", "RETURN", "(CHILDREN)")
    got = by_name(lines)
    assert "\\HasChildren" in got["Fruit"][0]
    assert "\\HasChildren" in got["Vegetable"][0]
    assert "\\HasNoChildren" in got["Sent"][0]
    assert "Fruit/Apple" not in got

    # SPECIAL-USE: exactly the five, with their attribute
    typ, lines, _, _ = cmd(c, "LIST", "(SPECIAL-USE)", '""', "*")
    got = by_name(lines)
    assert sorted(got) == ["Archive", "Drafts", "Junk", "Sent", "Trash"], got
    for n, (attrs, _) in got.items():
        assert "\\" + n in attrs
    typ, lines, _, _ = cmd(c, "LIST", '""', "*", "RETURN", "(SPECIAL-USE)")
    got = by_name(lines)
    assert "\\Trash" in got["Trash"][0] and not ({"\\Trash", "\\Sent"} & got["Fruit/Apple"][0])
    # SPECIAL-USE and SUBSCRIBED together, with RECURSIVEMATCH: Archive/2026 subscribed
    # but not special: Archive still meets both
    typ, lines, _, _ = cmd(c, "LIST", "(SPECIAL-USE SUBSCRIBED)", '""', "%")
    assert sorted(by_name(lines)) == ["Archive", "Drafts", "Junk", "Sent", "Trash"]

    # several patterns: each name once
    typ, lines, _, _ = cmd(c, "LIST", '""', '("Fruit/*" "Veg%" "Fruit/A*")')
    assert typ == "OK"
    assert sorted(by_name(lines)) == ["Fruit/Apple", "Fruit/Banana", "Vegetable"]
    typ, lines, _, _ = cmd(c, "LIST", "()", '""', '("Fruit/%")')
    assert sorted(by_name(lines)) == ["Fruit/Apple", "Fruit/Banana"]
    # the reference is a prefix of every pattern
    typ, lines, _, _ = cmd(c, "LIST", "()", "Fruit/", '("A*" "B*")')
    assert sorted(by_name(lines)) == ["Fruit/Apple", "Fruit/Banana"]

    # the delimiter: basic LIST "" "" only; in the extended syntax "" matches nothing
    typ, lines, _, _ = cmd(c, "LIST", '""', '""')
    assert lines == [b'(\\Noselect) "/" ""']
    typ, lines, _, _ = cmd(c, "LIST", "()", '""', '""')
    assert typ == "OK" and lines == []
    typ, lines, _, _ = cmd(c, "LIST", "()", "Fruit", '("" "/Apple")')
    assert sorted(by_name(lines)) == ["Fruit/Apple"]
    c.logout()


def test_patterns_hierarchy_and_rev2(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    setup_tree(c, u.store)
    assert c.create("Fruit/Apple/Green")[0] == ("OK" if u.store == "maildir" else "NO")

    def names(*args):
        typ, lines, _, _ = cmd(c, "LIST", *args)
        assert typ == "OK"
        return sorted(by_name(lines))

    assert names('""', "Fr*") == (["Fruit", "Fruit/Apple", "Fruit/Apple/Green", "Fruit/Banana"]
                                  if u.store == "maildir" else
                                  ["Fruit", "Fruit/Apple", "Fruit/Banana"])
    assert names('""', "Fr%") == ["Fruit"]
    assert names('""', "%/%") == ["Fruit/Apple", "Fruit/Banana", "Vegetable/Corn"]
    assert names('""', "*an*") == ["Fruit/Banana"]
    assert names('""', "inbox") == ["INBOX"]            # INBOX in any case
    assert names('""', "%") == ["Archive", "Drafts", "Fruit", "INBOX", "Junk", "Sent",
                                "Trash", "Vegetable"]
    # the parent made by CREATE Fruit/Apple: Maildir++ has no such folder (an implied
    # level), mbox has a directory that holds no mail
    typ, data = c.list('""', "Fruit")
    ext = by_name(cmd(c, "LIST", "()", '""', "Fruit")[1])["Fruit"][0]
    if u.store == "maildir":
        assert data == [b'(\\Noselect \\HasChildren) "/" Fruit'], data
        assert ext == {"\\NonExistent", "\\HasChildren"}
    else:
        assert data == [b'(\\Noselect \\HasChildren) "/" Fruit'], data
        assert ext == {"\\Noselect", "\\HasChildren"}
        # an mbox file holds mail and cannot have children; neither can INBOX
        got = by_name(c.list('""', "*")[1])
        assert "\\Noinferiors" in got["Fruit/Apple"][0]
        assert "\\Noinferiors" in got["INBOX"][0]
    # IMAP4rev2: \NonExistent in the basic LIST too
    typ, data = c._simple_command("ENABLE", "IMAP4rev2")
    assert typ == "OK"
    typ, data = c.list('""', "Fruit")
    if u.store == "maildir":
        assert data == [b'(\\NonExistent \\HasChildren) "/" Fruit'], data
    else:
        assert data == [b'(\\Noselect \\HasChildren) "/" Fruit'], data
    typ, lines, _, _ = cmd(c, "LIST", "(SUBSCRIBED)", '""', "Fruit/%")
    got = by_name(lines)
    assert {"\\Subscribed", "\\NonExistent"} <= got["Fruit/Peach"][0]
    c.logout()


def test_list_status(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    assert c.create("Work")[0] == "OK"
    assert c.create("Deep/Box")[0] == "OK"
    for i in range(3):
        assert c.append("Work", "(\\Seen)" if i == 0 else None, None,
                        h.to_wire(h.make_message(10 + i)))[0] == "OK"
    typ, lines, status, _ = cmd(c, "LIST", '""', "*", "RETURN",
                                "(STATUS (MESSAGES UNSEEN UIDNEXT SIZE))")
    assert typ == "OK"
    got = by_name(lines)
    st = {}
    for x in status:
        m = re.match(rb'("[^"]*"|[^ ]+) \((.*)\)$', x)
        st[m.group(1).strip(b'"').decode()] = dict(
            zip(m.group(2).split()[::2], (int(v) for v in m.group(2).split()[1::2])))
    assert st["Work"][b"MESSAGES"] == 3 and st["Work"][b"UNSEEN"] == 2
    assert st["Work"][b"UIDNEXT"] == 4 and st["Work"][b"SIZE"] > 0
    assert st["INBOX"][b"MESSAGES"] == 5
    assert st["Deep/Box"][b"MESSAGES"] == 0
    # every selectable listed folder has its STATUS; a \Noselect one has none
    selectable = {n for n, (a, _) in got.items()
                  if not ({"\\Noselect", "\\NonExistent"} & a)}
    assert set(st) == selectable
    assert "Deep" in got and "Deep" not in st
    # the same as STATUS says
    typ, data = c.status("Work", "(MESSAGES UNSEEN UIDNEXT)")
    assert b"MESSAGES 3" in data[0] and b"UNSEEN 2" in data[0]
    # with a selection, and a bad item
    typ, lines, status, _ = cmd(c, "LIST", "(SPECIAL-USE)", '""', "*", "RETURN",
                                "(STATUS (MESSAGES))")
    assert len(lines) == 5 and len(status) == 5
    assert cmd(c, "LIST", '""', "*", "RETURN", "(STATUS (BOGUS))")[0] == "BAD"
    assert cmd(c, "LIST", '""', "*", "RETURN", "(STATUS)")[0] == "BAD"
    c.logout()


def test_chinese_names(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    assert c.create('"%s"' % CN_SUB)[0] == "OK"
    assert c.subscribe('"%s"' % CN_SUB)[0] == "OK"
    assert c.append('"%s"' % CN_SUB, None, None, h.to_wire(h.make_message(3)))[0] == "OK"
    typ, lines, status, _ = cmd(c, "LIST", "(SUBSCRIBED)", '""', '"%s/%%"' % CN,
                                "RETURN", "(STATUS (MESSAGES) CHILDREN)")
    got = by_name(lines)
    assert list(got) == [CN_SUB], lines
    assert {"\\Subscribed", "\\HasNoChildren"} <= got[CN_SUB][0]
    assert status == [b'%s (MESSAGES 1)' % CN_SUB.encode()], status
    # the parent, by "%", with CHILDINFO
    typ, lines, _, _ = cmd(c, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
    got = by_name(lines)
    assert got[CN][1] == b'("CHILDINFO" ("SUBSCRIBED"))', got
    # a pattern part in modified UTF-7 matches; UTF-8 bytes are no pattern here
    typ, lines, _, _ = cmd(c, "LIST", '""', '"*&XeVPXA-"')
    assert list(by_name(lines)) == [CN_SUB]
    c.logout()


def test_create_special_use(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    # Drafts has the use (made at the first login): a second one is refused, unknown
    # uses too, and nothing is created
    typ, _, _, text = cmd(c, "CREATE", "Entwurf", "(USE (\\Drafts))")
    assert typ == "NO" and b"[USEATTR]" in text, text
    typ, _, _, text = cmd(c, "CREATE", "Alles", "(USE (\\All))")
    assert typ == "NO" and b"[USEATTR]" in text, text
    typ, _, _, text = cmd(c, "CREATE", "Both", "(USE (\\Junk \\Trash))")
    assert typ == "NO" and b"[USEATTR]" in text, text
    assert cmd(c, "CREATE", "X", "(USE \\Drafts)")[0] == "BAD"
    assert cmd(c, "CREATE", "X", "(FOO (\\Drafts))")[0] == "BAD"
    names = by_name(c.list('""', "*")[1])
    assert not ({"Entwurf", "Alles", "Both", "X"} & set(names))
    # an empty USE list is a plain CREATE
    assert cmd(c, "CREATE", "Plain", "(USE ())")[0] == "OK"
    # with Drafts gone, a Chinese-named folder takes the use
    assert c.delete("Drafts")[0] == "OK"
    typ, _, _, text = cmd(c, "CREATE", '"%s"' % CN, "(USE (\\Drafts))")
    assert typ == "OK", text
    typ, lines, _, _ = cmd(c, "LIST", "(SPECIAL-USE)", '""', "*")
    got = by_name(lines)
    assert "\\Drafts" in got[CN][0] and "Drafts" not in got
    # a new "Drafts" does not take it back; the use follows a rename
    assert c.create("Drafts")[0] == "OK"
    assert c.rename('"%s"' % CN, "Mine")[0] == "OK"
    got = by_name(cmd(c, "LIST", "(SPECIAL-USE)", '""', "*")[1])
    assert "\\Drafts" in got["Mine"][0] and "Drafts" not in got, got
    # other sessions see it
    c2 = login(imapd, ctx, u)
    got = by_name(c2.list('""', "*")[1])
    assert "\\Drafts" in got["Mine"][0] and "\\Drafts" not in got["Drafts"][0]
    c2.logout()
    # deleting it gives the use back to the folder named Drafts
    assert c.delete("Mine")[0] == "OK"
    got = by_name(c.list('""', "*")[1])
    assert "\\Drafts" in got["Drafts"][0]
    c.logout()
    rec = (u.maildir / "postern-special-use" if u.store == "maildir"
           else u.home / "mail" / ".postern-special-use")
    assert rec.read_bytes().startswith(b"V1\n")


def test_create_trailing_delimiter(imapd, ctx, store_user):
    u = store_user
    c = login(imapd, ctx, u)
    typ, data = c.create("Projects/")
    assert typ == "OK", data
    got = by_name(c.list('""', "Projects")[1])
    if u.store == "maildir":
        # Maildir++ needs no declaration: an ordinary folder
        assert got["Projects"][0] == {"\\HasNoChildren"}
        assert (u.maildir / ".Projects" / "cur").is_dir()
        assert c.select("Projects")[0] == "OK"
    else:
        # mbox: a directory, which holds sub-folders and no mail
        assert got["Projects"][0] == {"\\Noselect", "\\HasNoChildren"}
        assert (u.home / "mail" / "Projects").is_dir()
        assert c.select("Projects")[0] == "NO"
    assert c.create("Projects/")[0] == "NO"
    assert c.create("Projects/2026")[0] == "OK"
    got = by_name(c.list('""', "Projects*")[1])
    assert "\\HasChildren" in got["Projects"][0] and "Projects/2026" in got
    # several levels at once, and Chinese
    assert c.create('"%s/"' % CN_SUB)[0] == "OK"
    assert CN_SUB in by_name(c.list('""', "*")[1])
    assert c.create("INBOX/")[0] == "NO"
    assert c.create("/")[0] == "NO"
    # a level cannot carry a special use
    typ, _, _, text = cmd(c, "CREATE", "Level/", "(USE (\\Archive))")
    assert typ == "NO" and b"USEATTR" in text
    c.logout()


def test_list_status_200_folders(imapd, ctx, make_user):
    """LIST-STATUS over 200 folders: one response pair each; the time is printed (the
    measurement, not a test of it)."""
    for store in ("maildir", "mbox"):
        u = make_user(store)
        c = login(imapd, ctx, u)
        for i in range(200):
            assert c.create("F%03d" % i)[0] == "OK"
        for i in (0, 99, 199):
            assert c.append("F%03d" % i, None, None, h.to_wire(h.make_message(i)))[0] == "OK"
        for rnd in range(2):
            t = time.monotonic()
            typ, lines, status, _ = cmd(c, "LIST", '""', "F*", "RETURN",
                                        "(STATUS (MESSAGES UNSEEN UIDNEXT))")
            took = time.monotonic() - t
            assert typ == "OK" and len(lines) == 200 and len(status) == 200
            print("LIST-STATUS %s, 200 folders, round %d: %.3f s" % (store, rnd, took))
        assert sum(b"MESSAGES 1 " in x for x in status) == 3
        c.logout()
