/* imap_parser.c: tables of wire input (one or more commands) with the parse each gives,
 * driven as imapd would drive it: lines whole (as conn_read_line() gives them), literal
 * bytes whole and then one byte at a time; continuation requests counted.  Also every
 * limit at max and max+1, the accessors, and imap_fetchatt.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "imap/imap_fetchatt.h"
#include "imap/imap_parser.h"
#include "unit.h"

struct out {
	char s[8192];
	size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (n > sizeof(o->s) - 1 - o->len)
		n = sizeof(o->s) - 1 - o->len;
	memcpy(o->s + o->len, s, n);
	o->len += n;
	o->s[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* atom: as is; quoted: "x"; literal: {x}; literal8: ~{x}; NIL; (...); streamed: <n> */
static void dump(struct out *o, const struct imap_arg *a, size_t n)
{
	char buf[32];
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			puts_(o, " ");
		switch (a[i].type) {
		case IMAP_ARG_ATOM: put(o, a[i].str, a[i].len); break;
		case IMAP_ARG_NIL: puts_(o, "NIL"); break;
		case IMAP_ARG_QUOTED: puts_(o, "\""); put(o, a[i].str, a[i].len); puts_(o, "\""); break;
		case IMAP_ARG_LITERAL: puts_(o, "{"); put(o, a[i].str, a[i].len); puts_(o, "}"); break;
		case IMAP_ARG_LITERAL8: puts_(o, "~{"); put(o, a[i].str, a[i].len); puts_(o, "}"); break;
		case IMAP_ARG_STREAMED:
			snprintf(buf, sizeof(buf), "<%s%llu>", a[i].literal8 ? "~" : "",
				 (unsigned long long)a[i].size);
			puts_(o, buf);
			break;
		case IMAP_ARG_LIST: puts_(o, "("); dump(o, a[i].list, a[i].count); puts_(o, ")"); break;
		}
	}
}

struct drive_opts {
	struct imap_parser_settings set;
	bool bytewise;
};

/* Run the input through the parser as the daemon would; describe each command's end
 * ("tag NAME args", "BAD tag msg", "NO ...", "CLOSE msg"), joined by " | ", "+" for every
 * continuation request, "[stream n@k]" for each streamed literal. */
static void drive(const char *in, size_t inlen, const struct drive_opts *d, struct out *o)
{
	struct imap_parser *p = imap_parser_new(&d->set);
	size_t pos = 0;
	bool first = true;
	o->len = 0;
	o->s[0] = '\0';
	while (pos < inlen) {
		imap_parser_begin(p);
		if (!first)
			puts_(o, " | ");
		first = false;
		int r;
		for (;;) {
			const char *nl = memchr(in + pos, '\n', inlen - pos);
			size_t ll = nl != NULL ? (size_t)(nl - (in + pos)) : inlen - pos;
			r = imap_parser_feed_line(p, in + pos, ll);
			pos += nl != NULL ? ll + 1 : ll;
			for (;;) {
				const struct imap_parser_need *need = imap_parser_need(p);
				if (r == IMAP_PARSE_LITERAL || r == IMAP_PARSE_SKIP) {
					if (need->sync)
						puts_(o, "+");
					if (r == IMAP_PARSE_SKIP)
						puts_(o, "[skip]");
					while (imap_parser_literal_left(p) > 0 && pos < inlen) {
						size_t n = d->bytewise ? 1 : inlen - pos;
						pos += imap_parser_feed_literal(p, in + pos, n);
					}
					break;
				}
				if (r == IMAP_PARSE_STREAM) {
					char buf[64];
					const struct imap_command *c = imap_parser_command(p);
					if (need->sync)
						puts_(o, "+");
					snprintf(buf, sizeof(buf), "[stream %llu@%zu/%zu%s]",
						 (unsigned long long)need->size, need->arg, c->count,
						 need->in_list ? "(" : "");
					puts_(o, buf);
					uint64_t n = need->size;
					pos += n < inlen - pos ? n : inlen - pos;
					imap_parser_streamed(p);
				}
				break;
			}
			if (r <= IMAP_PARSE_DONE)
				break;
			if (pos >= inlen && imap_parser_literal_left(p) > 0)
				break;
		}
		if (r == IMAP_PARSE_DONE) {
			const struct imap_command *c = imap_parser_command(p);
			puts_(o, c->tag);
			puts_(o, c->uid ? " UID " : " ");
			puts_(o, c->name);
			if (c->count > 0) {
				puts_(o, " ");
				dump(o, c->args, c->count);
			}
		} else if (r == IMAP_PARSE_BAD) {
			const char *code;
			bool no;
			const char *msg = imap_parser_error(p, &code, &no);
			const char *tag = imap_parser_tag(p);
			puts_(o, no ? "NO " : "BAD ");
			puts_(o, tag != NULL ? tag : "*");
			if (code != NULL) {
				puts_(o, " [");
				puts_(o, code);
				puts_(o, "]");
			}
			puts_(o, " ");
			puts_(o, msg);
		} else if (r == IMAP_PARSE_CLOSE) {
			puts_(o, "CLOSE ");
			puts_(o, imap_parser_error(p, NULL, NULL));
		} else {
			puts_(o, "INCOMPLETE");
			break;
		}
	}
	imap_parser_free(&p);
}

struct pcase {
	const char *in;
	const char *out;
	unsigned flags;
};
#define F_PRE 1       /* not logged in */
#define F_MINUS 2     /* LITERAL- */
#define F_UTF8 4

static const struct pcase cases[] = {
	{ "a NOOP\r\n", "a NOOP", 0 },
	{ "a noop\n", "a NOOP", 0 },                                  /* bare LF, lower case */
	{ "a1 LOGIN bob secret\r\n", "a1 LOGIN bob secret", F_PRE },
	{ "a LOGIN \"bob\" \"p\\\"w\\\\\"\r\n", "a LOGIN \"bob\" \"p\"w\\\"", F_PRE },
	{ "a LOGIN {3}\r\nbob {4}\r\npass\r\n", "++a LOGIN {bob} {pass}", F_PRE },
	{ "a LOGIN {3+}\r\nbob {4+}\r\npass\r\n", "a LOGIN {bob} {pass}", F_PRE },
	{ "a LOGIN {0}\r\n {0}\r\n\r\n", "++a LOGIN {} {}", F_PRE },
	{ "a SELECT INBOX\r\nb NOOP\r\n", "a SELECT INBOX | b NOOP", 0 },
	{ "x UID FETCH 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n",
	  "x UID FETCH 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)", 0 },
	/* a quoted header name in a section stays inside the one fetch-att atom */
	{ "x FETCH 1 (BODY[HEADER.FIELDS (From \"X-]Y\")] UID)\r\n",
	  "x FETCH 1 (BODY[HEADER.FIELDS (From \"X-]Y\")] UID)", 0 },
	{ "x FETCH 1 BODY[HEADER.FIELDS (\"X\\\"Y\")]\r\n",
	  "x FETCH 1 BODY[HEADER.FIELDS (\"X\\\"Y\")]", 0 },
	{ "x FETCH 1 BODY[HEADER.FIELDS (\"X-Y)]\r\n",
	  "BAD x Unterminated quoted string in section", 0 },
	{ "x uid store 1 +FLAGS.SILENT (\\Seen \\Deleted $Junk)\r\n",
	  "x UID STORE 1 +FLAGS.SILENT (\\Seen \\Deleted $Junk)", 0 },
	{ "a LIST \"\" %/*\r\n", "a LIST \"\" %/*", 0 },
	{ "a LIST (SUBSCRIBED) \"\" (INBOX Sent) RETURN (CHILDREN STATUS (MESSAGES))\r\n",
	  "a LIST (SUBSCRIBED) \"\" (INBOX Sent) RETURN (CHILDREN STATUS (MESSAGES))", 0 },
	{ "a STATUS nil (UIDNEXT)\r\n", "a STATUS NIL (UIDNEXT)", 0 },
	{ "a SELECT foo] ()\r\n", "a SELECT foo] ()", 0 },
	{ "a SELECT ~peter/mail ~\r\n", "a SELECT ~peter/mail ~", 0 },   /* '~' without '{' */
	{ "a SEARCH ((OR SEEN (DRAFT)))\r\n", "a SEARCH ((OR SEEN (DRAFT)))", 0 },
	{ "a] NOOP\r\n", "a] NOOP", 0 },                               /* ']' in a tag */
	/* APPEND: the message is streamed, mailbox and flags before it are there */
	{ "a APPEND INBOX (\\Seen) {5}\r\nhello\r\n", "+[stream 5@2/2]a APPEND INBOX (\\Seen) <5>", 0 },
	{ "a APPEND INBOX {5+}\r\nhello\r\n", "[stream 5@1/1]a APPEND INBOX <5>", 0 },
	{ "a APPEND {5}\r\nINBOX {2}\r\nhi\r\n", "++[stream 2@1/1]a APPEND {INBOX} <2>", 0 },
	{ "a APPEND INBOX UTF8 (~{2+}\r\nhi)\r\n", "[stream 2@2/2(]a APPEND INBOX UTF8 (<~2>)", 0 },
	/* in a list at another depth too: the daemon refuses what is not "UTF8 (" */
	{ "a APPEND INBOX (\\Seen ~{2+}\r\nhi)\r\n", "[stream 2@1/1(]a APPEND INBOX (\\Seen <~2>)", 0 },
	{ "a APPEND INBOX UTF8 ~{2+}\r\nhi\r\n", "[stream 2@2/2]a APPEND INBOX UTF8 <~2>", 0 },
	{ "a APPEND INBOX {1+}\r\nx (\\Seen) \"1-Jan-2020 00:00:00 +0000\" {1+}\r\ny\r\n",
	  "[stream 1@1/1][stream 1@4/4]a APPEND INBOX <1> (\\Seen) \"1-Jan-2020 00:00:00 +0000\" <1>", 0 },
	{ "a APPEND INBOX {11}\r\n", "NO a [TOOBIG] Message too large (APPENDLIMIT)", 0 },
	/* before login an APPEND literal is an ordinary one, with the small limit */
	{ "a APPEND INBOX {3}\r\nabc\r\n", "+a APPEND INBOX {abc}", F_PRE },
	{ "a SEARCH CHARSET UTF-8 TEXT {4}\r\n\xe4\xb8\xad\xe6\r\n", "+a SEARCH CHARSET UTF-8 TEXT {\xe4\xb8\xad\xe6}", 0 },
	/* UTF-8 in quoted strings: well-formed only, with or without UTF8=ACCEPT */
	{ "a SELECT \"\xe4\xb8\xad\"\r\n", "a SELECT \"\xe4\xb8\xad\"", F_UTF8 },
	{ "a SEARCH CHARSET UTF-8 SUBJECT \"h\xc3\xa9\"\r\n",
	  "a SEARCH CHARSET UTF-8 SUBJECT \"h\xc3\xa9\"", 0 },
	{ "a SELECT \"\xe9t\xe9\"\r\n", "BAD a Invalid UTF-8 in quoted string", 0 },  /* Latin-1 */
	{ "a SELECT \"\xc0\xaf\"\r\n", "BAD a 8-bit character in quoted string", F_UTF8 },  /* overlong */
	{ "a SELECT \"\xed\xa0\x80\"\r\n", "BAD a Invalid UTF-8 in quoted string", 0 }, /* surrogate */
	{ "a SELECT \"\xed\xa0\x80\"\r\n", "BAD a Invalid UTF-8 in quoted string", F_UTF8 }, /* surrogate */
	{ "a SELECT \"\xe4\xb8\"\r\n", "BAD a Invalid UTF-8 in quoted string", F_UTF8 },
	{ "a SELECT \xe4\xb8\xad\r\n", "BAD a 8-bit character in atom", F_UTF8 },
	/* malformed */
	{ "\r\n", "BAD * Empty command", 0 },
	{ "a\r\n", "BAD a Missing command", 0 },
	{ "a \r\n", "BAD a Invalid command name", 0 },
	{ "+ NOOP\r\n", "BAD * Missing tag", 0 },
	{ "a* NOOP\r\n", "BAD * Invalid tag", 0 },
	{ "a UID\r\n", "BAD a Missing command", 0 },
	{ "a NOOP \r\n", "BAD a Unexpected space", 0 },
	{ "a SELECT  x\r\n", "BAD a Unexpected space", 0 },
	{ "a FETCH 1 (FLAGS )\r\n", "BAD a Unexpected space", 0 },
	{ "a FETCH 1 ( FLAGS)\r\n", "BAD a Unexpected space", 0 },
	{ "a FETCH 1 (FLAGS\r\n", "BAD a Missing ')'", 0 },
	{ "a FETCH 1 FLAGS)\r\n", "BAD a Unexpected ')'", 0 },
	{ "a FETCH 1 (FLAGS)x\r\n", "BAD a Missing space between arguments", 0 },
	{ "a SELECT \"x\r\n", "BAD a Unterminated quoted string", 0 },
	{ "a SELECT \"x\\y\"\r\n", "BAD a Invalid escape in quoted string", 0 },
	/* TAB and other controls are QUOTED-CHARs (RFC 9051 section 9) */
	{ "a SELECT \"x\ty\x01\x7f\"\r\n", "a SELECT \"x\ty\x01\x7f\"", 0 },
	{ "a SELECT x\"y\r\n", "BAD a Invalid character in atom", 0 },
	{ "a FETCH 1 BODY[1\r\n", "a FETCH 1 BODY[1", 0 },     /* an atom: the fetch-att parser refuses it */
	{ "a FETCH 1 BODY[1][2]\r\n", "a FETCH 1 BODY[1][2]", 0 },
	{ "a SELECT a[b x]\r\n", "a SELECT a[b x]", 0 },
	{ "a SELECT a[b (x\r\n", "BAD a Missing ')'", 0 },
	{ "a LOGIN {3} x\r\n", "BAD a Invalid literal", F_PRE },
	{ "a LOGIN {x}\r\n", "BAD a Invalid literal", F_PRE },
	{ "a LOGIN {99999999999999999999}\r\n", "BAD a Invalid literal size", F_PRE },
	{ "a LOGIN {99999999999999999999+}\r\n", "CLOSE Invalid literal size", F_PRE },
	{ "a SELECT ~{3}\r\n", "BAD a literal8 is only allowed in APPEND", 0 },
	/* a bad command's non-synchronizing literals are read and dropped, the next command
	 * is one again */
	{ "a SELECT x( {3+}\r\nabc\r\nb NOOP\r\n", "[skip]BAD a Invalid character in atom | b NOOP", 0 },
	{ "a SELECT x) {2+}\r\nxy {3+}\r\nabc\r\nb NOOP\r\n", "[skip][skip]BAD a Unexpected ')' | b NOOP", 0 },
	/* a synchronizing one never comes: the BAD ends the command */
	{ "a SELECT x) {2}\r\nb NOOP\r\n", "BAD a Unexpected ')' | b NOOP", 0 },
	/* LITERAL-: a non-synchronizing literal over 4096 is refused, read and dropped (the
	 * driver has no bytes for it here: the command stays incomplete) */
	{ "a SELECT {4097+}\r\n", "[skip]INCOMPLETE", F_MINUS },
	{ "a SELECT {4097}\r\n", "BAD a [TOOBIG] Literal too large", F_MINUS | F_PRE },
	/* before login: literals up to AUTH_MAX_PASS */
	{ "a LOGIN {1025}\r\n", "BAD a [TOOBIG] Literal too large", F_PRE },
	{ "a LOGIN {300000+}\r\n", "CLOSE Literal too large", F_PRE },
};

static void run_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		size_t len = strlen(c->in);
		for (int bw = 0; bw < 2; bw++) {
			struct drive_opts d = { .bytewise = bw };
			d.set.logged_in = !(c->flags & F_PRE);
			d.set.literal_minus = (c->flags & F_MINUS) != 0;
			d.set.utf8 = (c->flags & F_UTF8) != 0;
			d.set.append_max = 10;
			struct out o;
			drive(c->in, len, &d, &o);
			if (strcmp(o.s, c->out) != 0) {
				fprintf(stderr, "case %zu (bytewise %d): got \"%s\"\n", i, bw, o.s);
				unit_fail++;
			} else {
				unit_pass++;
			}
		}
	}
}

/* Inputs with NUL bytes, given with their length. */
static void run_nul_cases(void)
{
	static const char in1[] = "a APPEND INBOX ~{3}\r\nh\0i\r\n";
	static const char in2[] = "a SELECT {3}\r\na\0b\r\n";
	static const char in3[] = "a SELECT {3}\r\na\0b {2+}\r\nxy more\r\nb NOOP\r\n";
	static const char in4[] = "a NO\0OP\r\nb NOOP\r\n";
	struct { const char *in; size_t len; const char *out; } t[] = {
		{ in1, sizeof(in1) - 1, "+[stream 3@1/1]a APPEND INBOX <~3>" },
		{ in2, sizeof(in2) - 1, "+BAD a NUL in literal" },
		{ in3, sizeof(in3) - 1, "+[skip]BAD a NUL in literal | b NOOP" },
		{ in4, sizeof(in4) - 1, "BAD * Invalid character in line | b NOOP" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		for (int bw = 0; bw < 2; bw++) {
			struct drive_opts d = { .bytewise = bw };
			d.set.logged_in = true;
			d.set.append_max = 10;
			struct out o;
			drive(t[i].in, t[i].len, &d, &o);
			if (strcmp(o.s, t[i].out) != 0) {
				fprintf(stderr, "nul case %zu: got \"%s\"\n", i, o.s);
				unit_fail++;
			} else {
				unit_pass++;
			}
		}
	}
}

static char *repeat(const char *head, char c, size_t n, const char *tail)
{
	size_t h = strlen(head), t = strlen(tail);
	char *s = malloc(h + n + t + 1);
	memcpy(s, head, h);
	memset(s + h, c, n);
	memcpy(s + h + n, tail, t + 1);
	return s;
}

static int feed1(bool logged_in, bool minus, const char *line, size_t len)
{
	struct imap_parser_settings set = { .logged_in = logged_in, .literal_minus = minus,
					    .append_max = 1000 };
	struct imap_parser *p = imap_parser_new(&set);
	int r = imap_parser_feed_line(p, line, len);
	imap_parser_free(&p);
	return r;
}

static void run_limits(void)
{
	/* line length, before and after login: at max and max+1 */
	char *s = repeat("a SELECT ", 'x', IMAP_MAX_LINE_PRELOGIN - 9, "");
	CHECK(feed1(false, false, s, strlen(s)) == IMAP_PARSE_DONE);
	free(s);
	s = repeat("a SELECT ", 'x', IMAP_MAX_LINE_PRELOGIN - 8, "");
	CHECK(feed1(false, false, s, strlen(s)) == IMAP_PARSE_CLOSE);
	CHECK(feed1(true, false, s, strlen(s)) == IMAP_PARSE_DONE);
	free(s);
	s = repeat("a SELECT ", 'x', IMAP_MAX_LINE - 9, "");
	CHECK(feed1(true, false, s, strlen(s)) == IMAP_PARSE_DONE);
	free(s);
	s = repeat("a SELECT ", 'x', IMAP_MAX_LINE - 8, "");
	CHECK(feed1(true, false, s, strlen(s)) == IMAP_PARSE_CLOSE);
	free(s);

	/* command name (IMAP_MAX_CMD_NAME) and tag (IMAP_MAX_TAG) lengths */
	s = repeat("a ", 'N', IMAP_MAX_CMD_NAME, " x");
	CHECK(feed1(true, false, s, strlen(s)) == IMAP_PARSE_DONE);
	free(s);
	s = repeat("a ", 'N', IMAP_MAX_CMD_NAME + 1, " x");
	CHECK(feed1(true, false, s, strlen(s)) == IMAP_PARSE_BAD);
	free(s);
	s = repeat("a UID ", 'N', IMAP_MAX_CMD_NAME + 1, "");
	CHECK(feed1(true, false, s, strlen(s)) == IMAP_PARSE_BAD);
	free(s);
	s = repeat("", 't', IMAP_MAX_TAG, " NOOP");
	CHECK(feed1(true, false, s, strlen(s)) == IMAP_PARSE_DONE);
	free(s);
	s = repeat("", 't', IMAP_MAX_TAG + 1, " NOOP");
	CHECK(feed1(true, false, s, strlen(s)) == IMAP_PARSE_BAD);
	free(s);

	/* list depth */
	s = repeat("a SEARCH ", '(', IMAP_MAX_LIST_DEPTH, "");
	char *t = repeat(s, ')', IMAP_MAX_LIST_DEPTH, "");
	CHECK(feed1(true, false, t, strlen(t)) == IMAP_PARSE_DONE);
	free(s);
	free(t);
	s = repeat("a SEARCH ", '(', IMAP_MAX_LIST_DEPTH + 1, "");
	t = repeat(s, ')', IMAP_MAX_LIST_DEPTH + 1, "");
	CHECK(feed1(true, false, t, strlen(t)) == IMAP_PARSE_BAD);
	free(s);
	free(t);

	/* argument count: IMAP_MAX_ARGS nodes ("x " each), then one more */
	size_t n = IMAP_MAX_ARGS;
	char *line = malloc(16 + 2 * (n + 1));
	size_t o = (size_t)sprintf(line, "a STORE");
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(line + o, " x");
	CHECK(feed1(true, false, line, o) == IMAP_PARSE_DONE);
	o += (size_t)sprintf(line + o, " x");
	CHECK(feed1(true, false, line, o) == IMAP_PARSE_BAD);
	free(line);

	/* literal size before login: AUTH_MAX_PASS and one more; LITERAL- 4096 and 4097 */
	char buf[64];
	snprintf(buf, sizeof(buf), "a LOGIN {%d}", IMAP_MAX_LITERAL_PRELOGIN);
	CHECK(feed1(false, false, buf, strlen(buf)) == IMAP_PARSE_LITERAL);
	snprintf(buf, sizeof(buf), "a LOGIN {%d}", IMAP_MAX_LITERAL_PRELOGIN + 1);
	CHECK(feed1(false, false, buf, strlen(buf)) == IMAP_PARSE_BAD);
	snprintf(buf, sizeof(buf), "a SELECT {%d}", IMAP_MAX_LITERAL);
	CHECK(feed1(true, false, buf, strlen(buf)) == IMAP_PARSE_LITERAL);
	snprintf(buf, sizeof(buf), "a SELECT {%d}", IMAP_MAX_LITERAL + 1);
	CHECK(feed1(true, false, buf, strlen(buf)) == IMAP_PARSE_BAD);
	snprintf(buf, sizeof(buf), "a SELECT {%d+}", IMAP_LITERAL_MINUS_MAX);
	CHECK(feed1(true, true, buf, strlen(buf)) == IMAP_PARSE_LITERAL);
	CHECK(feed1(true, false, "a SELECT {4097+}", 16) == IMAP_PARSE_LITERAL);
	CHECK(feed1(true, true, "a SELECT {4097+}", 16) == IMAP_PARSE_SKIP);
	/* APPENDLIMIT (1000 here): at max streamed, max+1 NO [TOOBIG] */
	CHECK(feed1(true, false, "a APPEND x {1000}", 17) == IMAP_PARSE_STREAM);
	CHECK(feed1(true, false, "a APPEND x {1001}", 17) == IMAP_PARSE_BAD);
	/* a non-synchronizing upload over APPENDLIMIT: dropped up to IMAP_MAX_DISCARD, then
	 * the connection must close */
	snprintf(buf, sizeof(buf), "a APPEND x {%d+}", IMAP_MAX_DISCARD);
	CHECK(feed1(true, false, buf, strlen(buf)) == IMAP_PARSE_SKIP);
	snprintf(buf, sizeof(buf), "a APPEND x {%d+}", IMAP_MAX_DISCARD + 1);
	CHECK(feed1(true, false, buf, strlen(buf)) == IMAP_PARSE_CLOSE);

	/* a 100 GiB APPEND message: streamed, never buffered (an allocation of that size
	 * would end the test); the command completes with its size */
	{
		struct imap_parser_settings as = { .logged_in = true, .append_max = 1ULL << 40 };
		struct imap_parser *ap = imap_parser_new(&as);
		const char *l = "a APPEND INBOX (\\Seen) {107374182400+}";
		CHECK(imap_parser_feed_line(ap, l, strlen(l)) == IMAP_PARSE_STREAM);
		CHECK(imap_parser_need(ap)->size == 107374182400ULL && !imap_parser_need(ap)->sync);
		CHECK(imap_parser_feed_literal(ap, "x", 1) == 0);   /* not the parser's bytes */
		imap_parser_streamed(ap);
		CHECK(imap_parser_feed_line(ap, "", 0) == IMAP_PARSE_DONE);
		const struct imap_command *c = imap_parser_command(ap);
		CHECK(c->count == 3 && c->args[2].type == IMAP_ARG_STREAMED &&
		      c->args[2].size == 107374182400ULL);
		imap_parser_free(&ap);
	}

	/* total command size: literals of IMAP_MAX_LITERAL_PRELOGIN until the command is
	 * over IMAP_MAX_COMMAND_PRELOGIN: the connection closes, nothing grows further */
	struct imap_parser_settings set = { .logged_in = false };
	struct imap_parser *p = imap_parser_new(&set);
	char lit[IMAP_MAX_LITERAL_PRELOGIN];
	memset(lit, 'x', sizeof(lit));
	snprintf(buf, sizeof(buf), "a ID ({%d+}", IMAP_MAX_LITERAL_PRELOGIN);
	int r = imap_parser_feed_line(p, buf, strlen(buf));
	snprintf(buf, sizeof(buf), " {%d+}", IMAP_MAX_LITERAL_PRELOGIN);
	int rounds = 0;
	while (r == IMAP_PARSE_LITERAL && rounds < 100) {
		imap_parser_feed_literal(p, lit, sizeof(lit));
		r = imap_parser_feed_line(p, buf, strlen(buf));
		rounds++;
	}
	CHECK(r == IMAP_PARSE_BAD || r == IMAP_PARSE_SKIP);
	CHECK(rounds > 5 && rounds <= IMAP_MAX_COMMAND_PRELOGIN / IMAP_MAX_LITERAL_PRELOGIN);
	imap_parser_free(&p);
}

static void run_accessors(void)
{
	struct imap_parser_settings set = { .logged_in = true };
	struct imap_parser *p = imap_parser_new(&set);
	const char *line = "a X 42 4294967295 4294967296 0 007 9223372036854775807 "
		"9223372036854775808 \\Seen \\ $Junk foo] NIL \"q\" %a* x\\y";
	CHECK(imap_parser_feed_line(p, line, strlen(line)) == IMAP_PARSE_DONE);
	const struct imap_command *c = imap_parser_command(p);
	CHECK(c->count == 15);
	if (c->count == 15) {
		const struct imap_arg *a = c->args;
		uint32_t n;
		uint64_t n64;
		const char *s;
		size_t len;
		CHECK(imap_arg_number(&a[0], &n) == 0 && n == 42);
		CHECK(imap_arg_number(&a[1], &n) == 0 && n == 4294967295u);
		CHECK(imap_arg_number(&a[2], &n) == -1);
		CHECK(imap_arg_number64(&a[2], &n64) == 0 && n64 == 4294967296ull);
		CHECK(imap_arg_number(&a[3], &n) == 0 && n == 0);
		CHECK(imap_arg_nz_number(&a[3], &n) == -1);
		CHECK(imap_arg_number(&a[4], &n) == 0 && n == 7);
		CHECK(imap_arg_number64(&a[5], &n64) == 0 && n64 == INT64_MAX);
		CHECK(imap_arg_number64(&a[6], &n64) == -1);
		CHECK(imap_arg_flag(&a[7], &s) == 0 && strcmp(s, "\\Seen") == 0);
		CHECK(imap_arg_atom(&a[7], &s) == -1);
		CHECK(imap_arg_flag(&a[8], &s) == -1);
		CHECK(imap_arg_flag(&a[9], &s) == 0);
		CHECK(imap_arg_atom(&a[10], &s) == -1);            /* ']' not in an atom */
		CHECK(imap_arg_astring(&a[10], &s, &len) == 0 && len == 4);
		CHECK(a[11].type == IMAP_ARG_NIL);
		CHECK(imap_arg_astring(&a[11], &s, &len) == 0 && strcmp(s, "NIL") == 0);
		CHECK(imap_arg_nstring(&a[11], &s, &len) == 0 && s == NULL);
		CHECK(imap_arg_nstring(&a[12], &s, &len) == 0 && strcmp(s, "q") == 0);
		CHECK(imap_arg_atom(&a[12], &s) == -1);
		CHECK(imap_arg_astring(&a[13], &s, &len) == -1);   /* wildcards */
		CHECK(imap_arg_list_mailbox(&a[13], &s, &len) == 0 && len == 3);
		CHECK(imap_arg_flag(&a[14], &s) == -1);
		CHECK(imap_arg_list_mailbox(&a[14], &s, &len) == -1);
		CHECK(imap_arg_number(&a[13], &n) == -1);
		CHECK(imap_arg_is_atom(&a[11], "nil"));
		CHECK(imap_arg_flag(&a[11], &s) == 0 && strcmp(s, "NIL") == 0);
	}
	const char *l2 = "a STORE 1 FLAGS (\\Seen foo) (\\Seen \"x\") (\\Seen \\)";
	imap_parser_begin(p);
	CHECK(imap_parser_feed_line(p, l2, strlen(l2)) == IMAP_PARSE_DONE);
	c = imap_parser_command(p);
	CHECK(c->count == 5 && imap_arg_flag_list(&c->args[2]) == 0 &&
	      imap_arg_flag_list(&c->args[3]) == -1 && imap_arg_flag_list(&c->args[4]) == -1);
	/* a line fed out of sequence is refused, not crashed on */
	CHECK(imap_parser_feed_line(p, "b NOOP", 6) == IMAP_PARSE_CLOSE);
	CHECK(imap_parser_feed_literal(p, "x", 1) == 0);
	imap_parser_free(&p);
}

struct fcase {
	const char *in;
	const char *out;   /* kind peek parts text fields partial, or NULL: refused */
};

static const struct fcase fcases[] = {
	{ "BODY[]", "B 0 - ALL - -" },
	{ "body.peek[]<0.100>", "B 1 - ALL - 0.100" },
	{ "BODY[1.2.3]", "B 0 1.2.3 ALL - -" },
	{ "BODY[HEADER]", "B 0 - HEADER - -" },
	{ "BODY[TEXT]<5.1>", "B 0 - TEXT - 5.1" },
	{ "BODY[2.MIME]", "B 0 2 MIME - -" },
	{ "BODY[2.HEADER]", "B 0 2 HEADER - -" },
	{ "BODY.PEEK[HEADER.FIELDS (FROM TO Subject)]", "B 1 - FIELDS FROM,TO,Subject, -" },
	{ "BODY[1.HEADER.FIELDS.NOT (X-A)]<0.9>", "B 0 1 FIELDSNOT X-A, 0.9" },
	{ "BINARY[]", "N 0 - ALL - -" },
	{ "BINARY.PEEK[1.2]<0.10>", "N 1 1.2 ALL - 0.10" },
	{ "BINARY.SIZE[3]", "S 0 3 ALL - -" },
	{ "BODY[0]", NULL },
	{ "BODY[1.0]", NULL },
	{ "BODY[MIME]", NULL },                 /* MIME only after a part */
	{ "BODY[1.]", NULL },
	{ "BODY[HEADER.FIELDS]", NULL },
	{ "BODY[HEADER.FIELDS ()]", NULL },
	{ "BODY[HEADER.FIELDS (A  B)]", NULL },
	{ "BODY[HEADER.FIELDS (A]", NULL },
	/* header-fld-name is an astring: quoted names, escapes undone */
	{ "BODY[HEADER.FIELDS (From \"X-Y\")]", "B 0 - FIELDS From,X-Y, -" },
	{ "BODY.PEEK[HEADER.FIELDS.NOT (\"A\" \"b\\\\c\" \"d\\\"e\")]<1.2>",
	  "B 1 - FIELDSNOT A,b\\c,d\"e, 1.2" },
	{ "BODY[HEADER.FIELDS (\"a]b\")]", "B 0 - FIELDS a]b, -" },
	{ "BODY[HEADER.FIELDS (\"\")]", NULL },          /* empty name */
	{ "BODY[HEADER.FIELDS (\"a b\")]", NULL },       /* not a field name */
	{ "BODY[HEADER.FIELDS (\"a\tb\")]", NULL },
	{ "BODY[HEADER.FIELDS (\"ab)]", NULL },           /* unterminated */
	{ "BODY[HEADER.FIELDS (\"a\\b\")]", NULL },    /* bad escape */
	{ "BODY[HEADER.FIELDS (\"a\"b)]", NULL },
	{ "BODY[HEADER.FIELDS (\"a\" )]", NULL },
	{ "BODY[TEXT]<0.0>", NULL },
	{ "BODY[TEXT]<0>", NULL },
	{ "BODY[TEXT]<.5>", NULL },
	{ "BODY[TEXT]<0.5>x", NULL },
	{ "BODY[FOO]", NULL },
	{ "BINARY[HEADER]", NULL },
	{ "BINARY.SIZE[1]<0.5>", NULL },
	{ "BODY[4294967296]", NULL },
	{ "BODY", NULL },
	{ "RFC822", NULL },
};

static void run_fetchatt(void)
{
	for (size_t i = 0; i < sizeof(fcases) / sizeof(fcases[0]); i++) {
		struct imap_fetch_section s;
		const char *err = NULL;
		int r = imap_fetch_section_parse(fcases[i].in, strlen(fcases[i].in), &s, &err);
		if (fcases[i].out == NULL) {
			CHECK(r == -1 && err != NULL);
			if (r == 0)
				fprintf(stderr, "fetchatt %s: accepted\n", fcases[i].in);
			continue;
		}
		CHECK(r == 0);
		if (r != 0) {
			fprintf(stderr, "fetchatt %s: %s\n", fcases[i].in, err);
			continue;
		}
		static const char *texts[] = { "ALL", "HEADER", "FIELDS", "FIELDSNOT", "TEXT", "MIME" };
		char got[512], parts[128] = "-", fields[256] = "-", partial[64] = "-";
		size_t o = 0;
		for (size_t k = 0; k < s.nparts; k++)
			o += (size_t)snprintf(parts + o, sizeof(parts) - o, "%s%u", k ? "." : "", s.part[k]);
		o = 0;
		for (size_t k = 0; k < s.nfields; k++)
			o += (size_t)snprintf(fields + o, sizeof(fields) - o, "%s,", s.fields[k]);
		if (s.partial)
			snprintf(partial, sizeof(partial), "%llu.%llu", (unsigned long long)s.offset,
				 (unsigned long long)s.length);
		snprintf(got, sizeof(got), "%c %d %s %s %s %s",
			 s.kind == IMAP_FETCH_BODY ? 'B' : s.kind == IMAP_FETCH_BINARY ? 'N' : 'S',
			 s.peek, parts, texts[s.text], fields, partial);
		CHECK_STR(got, fcases[i].out);
	}
}

int main(void)
{
	run_cases();
	run_nul_cases();
	run_limits();
	run_accessors();
	run_fetchatt();
	return unit_done("test_imap_parser");
}
