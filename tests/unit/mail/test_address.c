/* address.c, address_path.c: a table of header values with the ENVELOPE-style rendering
 * expected ("(name adl mailbox host)" per entry, NIL for NULL); each value is parsed from
 * an exact-size heap copy (ASan sees any over-read), folded at every space (same result),
 * and cut at every length (no crash, groups balanced).  Then the SMTP path table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "mail/address.h"
#include "unit.h"

static void put(char *out, size_t size, const char *s)
{
	size_t o = strlen(out);
	snprintf(out + o, size - o, s ? "\"%s\"" : "NIL", s);
}

static void render(const struct address_list *l, char *out, size_t size)
{
	out[0] = '\0';
	for (size_t i = 0; i < l->count; i++) {
		const struct address *a = &l->addrs[i];
		size_t o = strlen(out);
		snprintf(out + o, size - o, "(");
		put(out, size, a->name);
		strncat(out, " ", size - strlen(out) - 1);
		put(out, size, a->route);
		strncat(out, " ", size - strlen(out) - 1);
		put(out, size, a->kind == ADDRESS_GROUP_START ? a->name : a->mailbox);
		strncat(out, " ", size - strlen(out) - 1);
		put(out, size, a->domain);
		strncat(out, ")", size - strlen(out) - 1);
		if (a->kind == ADDRESS_GROUP_START) {
			/* ENVELOPE puts the group name in the mailbox field: render the
			 * name field as NIL like IMAP would */
			char *p = out + o + 1;
			if (a->name != NULL) {
				size_t nl = strlen(a->name) + 2;
				memmove(p + 3, p + nl, strlen(p + nl) + 1);
				memcpy(p, "NIL", 3);
			}
		}
	}
}

struct acase {
	const char *in;
	const char *out;
	int invalid; /* list->invalid expected */
};

static const struct acase cases[] = {
	{ "", "", 0 },
	{ "   ", "", 0 },
	{ "a@b.c", "(NIL NIL \"a\" \"b.c\")", 0 },
	{ "John Doe <jd@example.com>", "(\"John Doe\" NIL \"jd\" \"example.com\")", 0 },
	{ "\"Doe, John\" <jd@x>", "(\"Doe, John\" NIL \"jd\" \"x\")", 0 },
	{ "\"a\\\"b\\\\c\" <q@x>", "(\"a\"b\\c\" NIL \"q\" \"x\")", 0 },
	{ "a@b, c@d", "(NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")", 0 },
	{ ",,a@b,,", "(NIL NIL \"a\" \"b\")", 0 },
	{ "<a@b>", "(NIL NIL \"a\" \"b\")", 0 },
	{ "\"john doe\"@x", "(NIL NIL \"john doe\" \"x\")", 0 },
	{ "a@[1.2.3.4]", "(NIL NIL \"a\" \"[1.2.3.4]\")", 0 },
	{ "a@[ 1.2.3.4 ]", "(NIL NIL \"a\" \"[1.2.3.4]\")", 0 },
	{ "a@[IPv6:::1]", "(NIL NIL \"a\" \"[IPv6:::1]\")", 0 },
	/* groups */
	{ "undisclosed-recipients:;", "(NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)", 0 },
	{ "Friends: a@b, C <c@d>;, e@f",
	  "(NIL NIL \"Friends\" NIL)(NIL NIL \"a\" \"b\")(\"C\" NIL \"c\" \"d\")(NIL NIL NIL NIL)"
	  "(NIL NIL \"e\" \"f\")", 0 },
	{ "G: a@b", "(NIL NIL \"G\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL)", 0 },
	{ "G:;,H:;", "(NIL NIL \"G\" NIL)(NIL NIL NIL NIL)(NIL NIL \"H\" NIL)(NIL NIL NIL NIL)", 0 },
	{ "G: a@b: c@d;", "(NIL NIL \"G\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL)", 1 },
	/* obsolete syntax, RFC 5322 section 4.4 */
	{ "<@r1,@r2:a@b>", "(NIL \"@r1,@r2\" \"a\" \"b\")", 0 },
	{ "Name <,@r1, ,@r2 : a@b>", "(\"Name\" \"@r1,@r2\" \"a\" \"b\")", 0 },
	{ "a . b @ c . d", "(NIL NIL \"a.b\" \"c.d\")", 0 },
	{ "\"a\".b@c", "(NIL NIL \"a.b\" \"c\")", 0 },
	{ "a(x)@(y)b", "(NIL NIL \"a\" \"b\")", 0 },
	{ "John Q. Public <jq@x>", "(\"John Q. Public\" NIL \"jq\" \"x\")", 0 },
	{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	  "(\"Pete\" NIL \"pete\" \"silly.test\")", 0 },
	{ "a@b (Ann Other)", "(\"Ann Other\" NIL \"a\" \"b\")", 0 },
	{ "a@b ((nested) c)", "(\"(nested) c\" NIL \"a\" \"b\")", 0 },
	{ "<a@b> (Ann)", "(\"Ann\" NIL \"a\" \"b\")", 0 },
	{ "\"\" <a@b>", "(\"\" NIL \"a\" \"b\")", 0 },
	/* folding */
	{ "John\r\n Doe <jd@\r\n\texample.com>", "(\"John Doe\" NIL \"jd\" \"example.com\")", 0 },
	{ "John\n Doe <jd@x>", "(\"John Doe\" NIL \"jd\" \"x\")", 0 },
	{ "\"a\r\n b\" <c@d>", "(\"a b\" NIL \"c\" \"d\")", 0 },
	/* encoded words stay raw */
	{ "=?utf-8?q?J=C3=BCrgen?= <j@x>", "(\"=?utf-8?q?J=C3=BCrgen?=\" NIL \"j\" \"x\")", 0 },
	{ "J\xc3\xbcrgen <j@x>", "(\"J\xc3\xbcrgen\" NIL \"j\" \"x\")", 0 },
	/* broken input: best effort */
	{ "user", "(NIL NIL \"user\" \"MISSING_DOMAIN\")", 1 },
	{ "Name <>", "(\"Name\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")", 1 },
	{ "<a@b", "(NIL NIL \"a\" \"b\")", 1 },
	{ "<a@b, c@d", "(NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")", 1 },
	{ "a@", "(NIL NIL \"a\" \"MISSING_DOMAIN\")", 1 },
	{ "@b", "(NIL NIL \"MISSING_MAILBOX\" \"b\")", 1 },
	{ "<@b>", "(NIL NIL \"MISSING_MAILBOX\" \"b\")", 1 },
	{ "<@a,@b>", "(NIL \"@a,@b\" \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")", 1 },
	{ "a@b>", "(NIL NIL \"a\" \"b\")", 1 },
	{ "> a@b", "(NIL NIL \"a\" \"b\")", 1 },
	{ "\"unterminated <a@b>", "(NIL NIL \"unterminated <a@b>\" \"MISSING_DOMAIN\")", 1 },
	{ "a@b (unterminated", "(\"unterminated\" NIL \"a\" \"b\")", 1 },
	{ "a@[1.2.3.4", "(NIL NIL \"a\" \"[1.2.3.4]\")", 1 },
	{ "G: a@b", "(NIL NIL \"G\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL)", 0 },
	{ "a@b; c@d", "(NIL NIL \"a\" \"b\")", 1 },  /* junk to the next ',' */
	{ "a@b c@d", "(NIL NIL \"a\" \"bc\")", 1 },
	{ "a\x01@b", "(NIL NIL \"a\" \"b\")", 1 },
	{ "Ann <a@b> junk, c@d", "(\"Ann\" NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")", 1 },
	{ "<<a@b>>", "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")", 1 },
	{ "a@b\r", "(NIL NIL \"a\" \"b\")", 1 },
};

static int cases_run(void)
{
	char got[4096], got2[4096];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct acase *c = &cases[i];
		size_t len = strlen(c->in);
		char *copy = xmalloc(len ? len : 1);
		memcpy(copy, c->in, len);
		struct address_list *l = address_list_parse(copy, len);
		render(l, got, sizeof(got));
		if (strcmp(got, c->out) != 0)
			fprintf(stderr, "case %zu <%s>\n", i, c->in);
		CHECK_STR(got, c->out);
		if (l->invalid != (c->invalid != 0))
			fprintf(stderr, "case %zu <%s>: invalid %d\n", i, c->in, l->invalid);
		CHECK(l->invalid == (c->invalid != 0));
		CHECK(!l->truncated);
		address_list_free(&l);
		CHECK(l == NULL);

		/* folded at every space: the same entries */
		char *f = xmalloc(len * 3 + 1);
		size_t o = 0;
		bool quoted = false;
		for (size_t k = 0; k < len; k++) {
			if (c->in[k] == '"')
				quoted = !quoted;
			if (c->in[k] == ' ' && !quoted && !c->invalid) {
				f[o++] = '\r';
				f[o++] = '\n';
			}
			f[o++] = c->in[k];
		}
		l = address_list_parse(f, o);
		render(l, got2, sizeof(got2));
		CHECK_STR(got2, c->out);
		address_list_free(&l);
		free(f);

		/* every prefix: no crash, groups balanced */
		for (size_t k = 0; k <= len; k++) {
			l = address_list_parse(copy, k);
			int depth = 0, bad = 0;
			for (size_t j = 0; j < l->count; j++) {
				const struct address *a = &l->addrs[j];
				if (a->kind == ADDRESS_GROUP_START)
					bad |= depth++ != 0;
				else if (a->kind == ADDRESS_GROUP_END)
					bad |= depth-- != 1;
				else
					bad |= a->mailbox == NULL || a->domain == NULL;
			}
			CHECK(depth == 0 && !bad);
			address_list_free(&l);
		}
		free(copy);
	}
	return 0;
}

static void limits(void)
{
	/* ADDRESS_MAX_ENTRIES: exactly max kept, max+1 truncated */
	size_t n = ADDRESS_MAX_ENTRIES + 1;
	char *s = xmalloc(n * 5 + 16);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(s + o, "a@b,", 4);
		o += 4;
	}
	struct address_list *l = address_list_parse(s, o - 4 * 1);
	CHECK(l->count == ADDRESS_MAX_ENTRIES && !l->truncated);
	address_list_free(&l);
	l = address_list_parse(s, o);
	CHECK(l->count == ADDRESS_MAX_ENTRIES && l->truncated);
	address_list_free(&l);
	/* a group that overflows still ends */
	memcpy(s, "G:", 2);
	l = address_list_parse(s, o);
	CHECK(l->truncated && l->count == ADDRESS_MAX_ENTRIES);
	CHECK(l->addrs[0].kind == ADDRESS_GROUP_START);
	CHECK(l->addrs[l->count - 1].kind == ADDRESS_GROUP_END);
	address_list_free(&l);
	free(s);

	/* hostile comment nesting: a million '(' costs one pass, no recursion */
	n = 1000000;
	s = xmalloc(n + 8);
	memcpy(s, "a@b ", 4);
	memset(s + 4, '(', n);
	l = address_list_parse(s, n + 4);
	CHECK(l->count == 1 && l->invalid);
	address_list_free(&l);
	memset(s, '(', n);
	memcpy(s + n, "a@b", 3);
	l = address_list_parse(s, n + 3);
	CHECK(l->count == 0);
	address_list_free(&l);
	/* nested past ADDRESS_MAX_COMMENT_DEPTH: inner parens are text, so only the
	 * outermost close counts after it */
	o = 0;
	for (size_t i = 0; i < ADDRESS_MAX_COMMENT_DEPTH + 5; i++)
		s[o++] = '(';
	for (size_t i = 0; i < ADDRESS_MAX_COMMENT_DEPTH; i++)
		s[o++] = ')';
	memcpy(s + o, "a@b", 3);
	l = address_list_parse(s, o + 3);
	CHECK(l->count == 1 && strcmp(l->addrs[0].mailbox, "a") == 0);
	address_list_free(&l);
	free(s);

	char *d = address_name_decode("=?utf-8?q?J=C3=BCrgen?= Smith");
	CHECK_STR(d, "J\xc3\xbcrgen Smith");
	free(d);
	CHECK(address_name_decode(NULL) == NULL);
}

struct pcase {
	const char *in;
	unsigned opts;
	long consumed;        /* -1: refused */
	unsigned flags;
	const char *local, *unq, *domain, *route;
};

#define U ADDRESS_PATH_UTF8
#define N ADDRESS_PATH_ALLOW_NULL
#define P ADDRESS_PATH_ALLOW_POSTMASTER
static const struct pcase paths[] = {
	{ "<a@b.c>", 0, 7, 0, "a", "a", "b.c", "" },
	{ "<a@b.c> SIZE=10", 0, 7, 0, "a", "a", "b.c", "" },
	{ "<first.last@ex-ample.com>", 0, 25, 0, "first.last", "first.last", "ex-ample.com", "" },
	{ "<>", N, 2, ADDRESS_PATH_F_NULL, "", "", "", "" },
	{ "<>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<Postmaster>", P, 12, ADDRESS_PATH_F_POSTMASTER, "Postmaster", "Postmaster", "", "" },
	{ "<POSTMASTER>", P, 12, ADDRESS_PATH_F_POSTMASTER, "POSTMASTER", "POSTMASTER", "", "" },
	{ "<Postmaster>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<\"a b\"@c>", 0, 9, ADDRESS_PATH_F_QUOTED, "\"a b\"", "a b", "c", "" },
	{ "<\"a\\\"b\"@c>", 0, 10, ADDRESS_PATH_F_QUOTED, "\"a\\\"b\"", "a\"b", "c", "" },
	{ "<\"a@b\"@c>", 0, 9, ADDRESS_PATH_F_QUOTED | ADDRESS_PATH_F_LOCAL_AT, "\"a@b\"", "a@b", "c", "" },
	{ "<a%b@c>", 0, 7, ADDRESS_PATH_F_PERCENT, "a%b", "a%b", "c", "" },
	{ "<b!a@c>", 0, 7, ADDRESS_PATH_F_BANG, "b!a", "b!a", "c", "" },
	{ "<@r1,@r2.x:a@b>", 0, 15, ADDRESS_PATH_F_ROUTE, "a", "a", "b", "@r1,@r2.x" },
	{ "<a@[1.2.3.4]>", 0, 13, ADDRESS_PATH_F_LITERAL_V4, "a", "a", "[1.2.3.4]", "" },
	{ "<a@[255.0.0.1]>", 0, 15, ADDRESS_PATH_F_LITERAL_V4, "a", "a", "[255.0.0.1]", "" },
	{ "<a@[IPv6:2001:db8::1]>", 0, 22, ADDRESS_PATH_F_LITERAL_V6, "a", "a", "[IPv6:2001:db8::1]", "" },
	{ "<a@[IPv6:::ffff:1.2.3.4]>", 0, 25, ADDRESS_PATH_F_LITERAL_V6, "a", "a", "[IPv6:::ffff:1.2.3.4]", "" },
	{ "<a@[x-tag:stuff]>", 0, 17, ADDRESS_PATH_F_LITERAL_GEN, "a", "a", "[x-tag:stuff]", "" },
	{ "<j\xc3\xbcrgen@b\xc3\xbc.de>", U, 16, ADDRESS_PATH_F_UTF8, "j\xc3\xbcrgen", "j\xc3\xbcrgen", "b\xc3\xbc.de", "" },
	{ "<\"j\xc3\xbc\"@b>", U, 9, ADDRESS_PATH_F_UTF8 | ADDRESS_PATH_F_QUOTED, "\"j\xc3\xbc\"", "j\xc3\xbc", "b", "" },
	/* refused */
	{ "<j\xc3\xbcrgen@b>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<j\xc3rgen@b>", U, -1, 0, NULL, NULL, NULL, NULL },       /* bad UTF-8 */
	{ "<j\xc0\xafx@b>", U, -1, 0, NULL, NULL, NULL, NULL },      /* overlong */
	{ "a@b", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@b", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@b >", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "< a@b>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<@b>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a..b@c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<.a@c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a.@c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@b..c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@-b.c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@b-.c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@b_c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@b.>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a(c)@b>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@b@c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<\"a\"b@c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<\"a\tb\"@c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<\"a\\\tb\"@c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<\"ab@c>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[1.2.3.256]>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[1.2.3]>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[1.2.3.4.5]>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[1234.2.3.4]>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[IPv6:1:2]>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[IPv6:fe80::1%eth0]>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[:x]>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[tag:]>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[tag:a b]>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a@[1.2.3.4>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<@r1:@r2:a@b>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<@r1a@b>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<@r1,a@b>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<a\0@b>", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "", 0, -1, 0, NULL, NULL, NULL, NULL },
	{ "<", 0, -1, 0, NULL, NULL, NULL, NULL },
};

static void path_check(const char *in, size_t len, const struct pcase *c)
{
	struct address_path p;
	const char *err = NULL;
	char *copy = xmalloc(len ? len : 1);
	memcpy(copy, in, len);
	long r = address_path_parse(copy, len, c->opts, &p, &err);
	if (r != c->consumed)
		fprintf(stderr, "path <%s>: %ld\n", in, r);
	CHECK(r == c->consumed);
	if (r < 0) {
		CHECK(err != NULL);
	} else {
		CHECK(p.flags == c->flags);
		CHECK_STR(p.local, c->local);
		CHECK_STR(p.local_unquoted, c->unq);
		CHECK_STR(p.domain, c->domain);
		CHECK_STR(p.route, c->route);
	}
	free(copy);
}

static void paths_run(void)
{
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const struct pcase *c = &paths[i];
		size_t len = strlen(c->in);
		path_check(c->in, len, c);
		/* every proper prefix of an accepted path (to its '>') is refused */
		if (c->consumed > 0) {
			static const struct pcase no = { "", 0, -1, 0, NULL, NULL, NULL, NULL };
			for (long k = 0; k < c->consumed; k++) {
				struct pcase n = no;
				n.opts = c->opts;
				n.in = c->in;
				path_check(c->in, (size_t)k, &n);
			}
		}
	}
	/* embedded NUL (strlen can't express it) */
	struct address_path p;
	const char *err;
	CHECK(address_path_parse("<a\0b@c>", 7, 0, &p, &err) < 0);
	/* fuzz: a NUL inside an IPv6 literal made inet_pton() see only its head */
	CHECK(address_path_parse("<a@[IPv6:::1\0x]>", 17, 0, &p, &err) < 0);

	/* limits: local part 64 ok, 65 not; domain 255 ok, 256 not; path 256 */
	char buf[600];
	const char *e;
	memset(buf, 0, sizeof(buf));
	buf[0] = '<';
	memset(buf + 1, 'l', 64);
	memcpy(buf + 65, "@d>", 3);
	CHECK(address_path_parse(buf, 68, 0, &p, &e) == 68);
	memset(buf + 1, 'l', 65);
	memcpy(buf + 66, "@d>", 3);
	CHECK(address_path_parse(buf, 69, 0, &p, &e) < 0);
	memset(buf, 0, sizeof(buf));
	buf[0] = '<';
	buf[1] = 'l';
	buf[2] = '@';
	/* the path (256 with "<>") bounds the domain first: "<l@" + 252 + ">" fits */
	size_t o = 3, dl = 0;
	while (dl < 252) {
		if (dl > 0) {
			buf[o++] = '.';
			dl++;
		}
		size_t lab = 252 - dl > 63 ? 63 : 252 - dl;
		memset(buf + o, 'd', lab);
		o += lab;
		dl += lab;
	}
	buf[o++] = '>';
	CHECK(o == SMTP_MAX_PATH);
	CHECK(address_path_parse(buf, o, 0, &p, &e) == (long)o && strlen(p.domain) == 252);
	/* one more domain byte: path 257 */
	memmove(buf + 4, buf + 3, o - 3);
	buf[3] = 'd';
	CHECK(address_path_parse(buf, o + 1, 0, &p, &e) < 0);
	/* a long route makes the path too long */
	memset(buf, 0, sizeof(buf));
	buf[0] = '<';
	o = 1;
	while (o < 260) {
		memcpy(buf + o, "@rr,", 4);
		o += 4;
	}
	memcpy(buf + o - 1, ":a@b>", 5);
	CHECK(address_path_parse(buf, o + 4, 0, &p, &e) < 0);
}

int main(void)
{
	cases_run();
	limits();
	paths_run();
	return unit_done("test_address");
}
