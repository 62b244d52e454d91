/* imap_search.c: a table of SEARCH commands through the real command parser (every key,
 * RETURN, CHARSET, syntax errors, depth and count limits); evaluation over small
 * synthetic messages given as bytes (plain, multipart with a base64 GB2312 part,
 * quoted-printable UTF-8, RFC 2047 GB2312 and Big5 subjects, ISO-8859-1 upper case,
 * a needle across a base64 line break and across every read-chunk boundary); cheap keys
 * first (an accessor that counts body reads); dates at midnight in other zones; MODSEQ;
 * SEARCH and ESEARCH formatting; SAVE and "$". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "imap/imap_parser.h"
#include "imap/imap_search.h"
#include "mail/charset.h"
#include "mail/date.h"
#include "mail/mime.h"
#include "unit.h"

static struct imap_parser *parser;

/* Parse "t SEARCH <line>" (a literal {n} in it: lit follows, then rest), compile. */
static int compile3(const char *line, const char *lit, size_t litlen, const char *rest,
		    const struct imap_search_settings *set, struct imap_search **s_r,
		    struct imap_search_error *err)
{
	char buf[IMAP_MAX_LINE];
	int n = snprintf(buf, sizeof(buf), "t %sSEARCH %s", set->uid ? "UID " : "", line);
	imap_parser_begin(parser);
	int r = imap_parser_feed_line(parser, buf, (size_t)n);
	if (r == IMAP_PARSE_LITERAL && lit != NULL) {
		imap_parser_feed_literal(parser, lit, litlen);
		r = imap_parser_feed_line(parser, rest, strlen(rest));
	}
	if (r != IMAP_PARSE_DONE) {
		err->text = "parser";
		return -2;
	}
	const struct imap_command *c = imap_parser_command(parser);
	return imap_search_compile(c->args, c->count, set, s_r, err);
}

static int compile(const char *line, const struct imap_search_settings *set,
		   struct imap_search **s_r, struct imap_search_error *err)
{
	return compile3(line, NULL, 0, NULL, set, s_r, err);
}

/* ---- parse table ---- */

struct pcase {
	const char *line;
	int ok;                 /* 1 compiles, 0 BAD, 2 NO [BADCHARSET], -2 parser BAD */
};

static const struct pcase pcases[] = {
	{ "ALL", 1 }, { "all", 1 }, { "ANSWERED", 1 }, { "BCC x", 1 },
	{ "BEFORE 1-Feb-2020", 1 }, { "BEFORE \"01-Feb-2020\"", 1 }, { "BODY hello", 1 },
	{ "CC \"a b\"", 1 }, { "DELETED", 1 }, { "DRAFT", 1 }, { "FLAGGED", 1 },
	{ "FROM joe", 1 }, { "HEADER X-Spam yes", 1 }, { "HEADER \"List-Id\" \"\"", 1 },
	{ "KEYWORD $Forwarded", 1 }, { "KEYWORD \\Seen", 1 }, { "LARGER 100", 1 },
	{ "NEW", 1 }, { "NOT SEEN", 1 }, { "OLD", 1 }, { "ON 7-Nov-2026", 1 },
	{ "OR SEEN FLAGGED", 1 }, { "RECENT", 1 }, { "SEEN", 1 },
	{ "SENTBEFORE 1-Jan-2000", 1 }, { "SENTON 1-Jan-2000", 1 },
	{ "SENTSINCE 1-Jan-2000", 1 }, { "SINCE 1-Jan-2000", 1 }, { "SMALLER 5", 1 },
	{ "SUBJECT hi", 1 }, { "TEXT hi", 1 }, { "TO x", 1 }, { "UID 1:*", 1 },
	{ "UID $", 1 }, { "UNANSWERED", 1 }, { "UNDELETED", 1 }, { "UNDRAFT", 1 },
	{ "UNFLAGGED", 1 }, { "UNKEYWORD foo", 1 }, { "UNSEEN", 1 }, { "1:3,5", 1 },
	{ "*", 1 }, { "$", 1 }, { "(SEEN FLAGGED)", 1 }, { "((SEEN) (NOT DELETED))", 1 },
	{ "MODSEQ 5", 1 }, { "MODSEQ \"/flags/\\\\draft\" all 620162338", 1 },
	{ "MODSEQ \"/flags/$x\" priv 0", 1 }, { "LARGER 18446744073709551615", 0 },
	{ "LARGER 9223372036854775807", 1 },
	{ "RETURN (MIN MAX COUNT ALL SAVE) SEEN", 1 }, { "RETURN () ALL", 1 },
	{ "CHARSET UTF-8 TEXT x", 1 }, { "CHARSET GB2312 TEXT x", 1 },
	{ "CHARSET big5 SUBJECT x", 1 }, { "RETURN (COUNT) CHARSET UTF-8 ALL", 1 },
	{ "SEEN UNSEEN FLAGGED 1:2 UID 3", 1 },
	/* bad */
	{ "", -2 }, { "FOO", 0 }, { "SEEN FOO", 0 }, { "BEFORE", 0 }, { "BEFORE x", 0 },
	{ "BEFORE 32-Jan-2020", 0 }, { "NOT", 0 }, { "OR SEEN", 0 }, { "HEADER X", 0 },
	{ "HEADER \"\" x", 0 }, { "LARGER x", 0 }, { "LARGER -1", 0 }, { "UID x", 0 },
	{ "UID 0", 0 }, { "0", 0 }, { "1:", 0 }, { "KEYWORD", 0 }, { "KEYWORD (a)", 0 },
	{ "()", 0 }, { "(SEEN) ()", 0 }, { "MODSEQ", 0 }, { "MODSEQ x", 0 },
	{ "MODSEQ \"/flags/x\" bogus 5", 0 }, { "MODSEQ \"/other\" all 5", 0 },
	{ "MODSEQ \"/flags/x\" all", 0 }, { "RETURN (FOO) ALL", 0 }, { "RETURN ALL", 0 },
	{ "RETURN (MIN)", 0 }, { "CHARSET", 0 }, { "CHARSET UTF-8", 0 },
	{ "CHARSET x-no-such-charset TEXT x", 2 }, { "ALL CHARSET UTF-8", 0 },
	{ "CHARSET UTF-8 RETURN (ALL) ALL", 0 }, { "SUBJECT", 0 }, { "NIL", 0 },
	{ "\"SEEN\"", 0 }, { "SEEN NIL", 0 },
};

static void test_parse_table(void)
{
	struct imap_search_settings set = { .messages = 10, .uid_max = 100 };
	for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		struct imap_search *s = NULL;
		struct imap_search_error err = { 0 };
		int r = compile(pcases[i].line, &set, &s, &err);
		int got = r == 0 ? 1 : r == -2 ? -2 : err.badcharset ? 2 : 0;
		if (got != pcases[i].ok)
			fprintf(stderr, "case \"%s\": got %d want %d (%s)\n", pcases[i].line,
				got, pcases[i].ok, err.text ? err.text : "");
		CHECK(got == pcases[i].ok);
		CHECK((r == 0) == (s != NULL));
		if (r == -1)
			CHECK(err.text != NULL && strncmp(err.text, "SEARCH: ", 8) == 0);
		imap_search_free(&s);
	}
}

static void test_limits(void)
{
	struct imap_search_settings set = { .messages = 10, .uid_max = 100 };
	struct imap_search *s = NULL;
	struct imap_search_error err;
	char line[8192];
	/* NOT chains: the limit and one past it */
	for (int depth = IMAP_SEARCH_MAX_DEPTH - 1; depth <= IMAP_SEARCH_MAX_DEPTH; depth++) {
		line[0] = '\0';
		for (int i = 0; i < depth; i++)
			strcat(line, "NOT ");
		strcat(line, "SEEN");
		int r = compile(line, &set, &s, &err);
		CHECK(r == (depth < IMAP_SEARCH_MAX_DEPTH ? 0 : -1));
		if (r < 0)
			CHECK_STR(err.text, "SEARCH: keys nested too deeply");
		imap_search_free(&s);
	}
	/* OR chains the same */
	line[0] = '\0';
	for (int i = 0; i < IMAP_SEARCH_MAX_DEPTH + 1; i++)
		strcat(line, "OR SEEN ");
	strcat(line, "SEEN");
	CHECK(compile(line, &set, &s, &err) == -1);
	CHECK_STR(err.text, "SEARCH: keys nested too deeply");
	/* BODY/TEXT keys: the limit and one past it */
	for (int k = IMAP_SEARCH_MAX_TEXT_KEYS; k <= IMAP_SEARCH_MAX_TEXT_KEYS + 1; k++) {
		line[0] = '\0';
		for (int i = 0; i < k; i++)
			strcat(line, i % 2 ? "TEXT a " : "BODY b ");
		strcat(line, "ALL");
		int r = compile(line, &set, &s, &err);
		CHECK(r == (k <= IMAP_SEARCH_MAX_TEXT_KEYS ? 0 : -1));
		imap_search_free(&s);
	}
	line[0] = '\0';
	for (int i = 0; i <= IMAP_SEARCH_MAX_HEADER_KEYS; i++)
		strcat(line, "FROM a ");
	strcat(line, "ALL");
	CHECK(compile(line, &set, &s, &err) == -1);
	CHECK_STR(err.text, "SEARCH: too many header keys");
	/* every charset the BADCHARSET code offers is one that works */
	char list[256];
	const char *code = IMAP_SEARCH_BADCHARSET;
	CHECK(strncmp(code, "BADCHARSET (", 12) == 0 && code[strlen(code) - 1] == ')');
	snprintf(list, sizeof(list), "%.*s", (int)(strlen(code) - 13), code + 12);
	for (char *sv = NULL, *c = strtok_r(list, " ", &sv); c; c = strtok_r(NULL, " ", &sv)) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "CHARSET %s TEXT x", c);
		CHECK(compile(cmd, &set, &s, &err) == 0);
		imap_search_free(&s);
	}
	/* BADCHARSET after RETURN (SAVE): the daemon must empty "$" */
	CHECK(compile("RETURN (SAVE) CHARSET x-nonesuch TEXT x", &set, &s, &err) == -1);
	CHECK(err.badcharset && err.save);
	CHECK(compile("CHARSET x-nonesuch TEXT x", &set, &s, &err) == -1);
	CHECK(err.badcharset && !err.save);
	/* UTF8=ACCEPT: CHARSET other than UTF-8 is BAD (RFC 6855 section 3) */
	set.utf8_accept = true;
	CHECK(compile("CHARSET GB2312 TEXT x", &set, &s, &err) == -1 && !err.badcharset);
	CHECK(compile("CHARSET UTF-8 TEXT x", &set, &s, &err) == 0);
	imap_search_free(&s);
}

/* ---- messages ---- */

struct tmsg {
	const char *data;
	size_t len;
	size_t chunk;           /* read() gives at most this much (0: all) */
	unsigned reads, body_reads;
	uint64_t body_from;     /* reads at or past this offset count as body reads */
};

static int tmsg_read(void *ctx, uint64_t off, void *buf, size_t len, size_t *got_r)
{
	struct tmsg *t = ctx;
	t->reads++;
	if (off >= t->body_from)
		t->body_reads++;
	if (off >= t->len) {
		*got_r = 0;
		return 0;
	}
	size_t n = t->len - (size_t)off;
	if (n > len)
		n = len;
	if (t->chunk != 0 && n > t->chunk)
		n = t->chunk;
	memcpy(buf, t->data + off, n);
	*got_r = n;
	return 0;
}

static const char *kw_set[] = { "$Forwarded", "work" };
static bool has_kw(void *ctx, const char *k)
{
	(void)ctx;
	for (size_t i = 0; i < 2; i++)
		if (strcasecmp(k, kw_set[i]) == 0)
			return true;
	return false;
}

static void msg_init(struct imap_search_msg *m, struct tmsg *t, const char *data)
{
	memset(m, 0, sizeof(*m));
	memset(t, 0, sizeof(*t));
	t->data = data;
	t->len = strlen(data);
	t->body_from = UINT64_MAX;
	m->ctx = t;
	m->read = tmsg_read;
	m->seq = 1;
	m->uid = 1;
	m->size = t->len;
}

/* Does the one-message search "line" match m? */
static int match1(const char *line, const struct imap_search_msg *m)
{
	struct imap_search_settings set = { .messages = 10, .uid_max = 100 };
	struct imap_search *s = NULL;
	struct imap_search_error err;
	const char *e = NULL;
	if (compile(line, &set, &s, &err) != 0) {
		fprintf(stderr, "compile \"%s\": %s\n", line, err.text);
		return -2;
	}
	int r = imap_search_match(s, m, &e);
	imap_search_free(&s);
	return r;
}

static int match_lit(const char *line, const char *lit, const struct imap_search_msg *m)
{
	struct imap_search_settings set = { .messages = 10, .uid_max = 100 };
	struct imap_search *s = NULL;
	struct imap_search_error err;
	const char *e = NULL;
	if (compile3(line, lit, strlen(lit), "", &set, &s, &err) != 0) {
		fprintf(stderr, "compile \"%s\": %s\n", line, err.text);
		return -2;
	}
	int r = imap_search_match(s, m, &e);
	imap_search_free(&s);
	return r;
}

static int fake_headers(void *ctx, imap_search_header_cb *cb, void *cbctx)
{
	(void)ctx;
	static const char *f[][2] = {
		{ "subject", "  From the index" },
		{ "FROM", "=?utf-8?B?5Lit5paH?= <x@y>" },
	};
	for (size_t i = 0; i < 2; i++)
		if (cb(cbctx, f[i][0], strlen(f[i][0]), f[i][1], strlen(f[i][1])))
			break;
	return 0;
}

static int fake_sent_date(void *ctx, time_t *t_r, int *tz_r)
{
	(void)ctx;
	/* 2-Jan-2000 00:30 +0100: 1-Jan 23:30 UTC, the 2nd in its own zone */
	return date_parse_rfc5322("Sun, 2 Jan 2000 00:30:00 +0100", 30, t_r, tz_r);
}

static const char plain_msg[] =
	"From: \"Joe Q. Public\" <john.q.public@example.com>\r\n"
	"To: Mary Smith <mary@x.test>, jdoe@example.org\r\n"
	"Cc: boss@example.net\r\n"
	"Subject: Quarterly report\r\n"
	"Date: Fri, 21 Nov 1997 23:30:00 -0600\r\n"
	"X-Spam: no\r\n"
	"\r\n"
	"Hello Mary,\r\nthe numbers are in.\r\n";

static void test_flags_and_cheap(void)
{
	struct imap_search_msg m;
	struct tmsg t;
	msg_init(&m, &t, plain_msg);
	m.seq = 3;
	m.uid = 42;
	m.flags = IMAP_SEARCH_SEEN | IMAP_SEARCH_FLAGGED;
	m.has_keyword = has_kw;
	m.modseq = 700;
	CHECK(match1("ALL", &m) == 1);
	CHECK(match1("SEEN", &m) == 1);
	CHECK(match1("UNSEEN", &m) == 0);
	CHECK(match1("FLAGGED", &m) == 1);
	CHECK(match1("UNFLAGGED", &m) == 0);
	CHECK(match1("ANSWERED", &m) == 0);
	CHECK(match1("UNANSWERED", &m) == 1);
	CHECK(match1("DELETED", &m) == 0);
	CHECK(match1("UNDELETED", &m) == 1);
	CHECK(match1("DRAFT", &m) == 0);
	CHECK(match1("UNDRAFT", &m) == 1);
	CHECK(match1("RECENT", &m) == 0);
	CHECK(match1("OLD", &m) == 1);
	CHECK(match1("NEW", &m) == 0);
	m.flags = IMAP_SEARCH_RECENT;
	CHECK(match1("NEW", &m) == 1);
	CHECK(match1("OLD", &m) == 0);
	m.flags = IMAP_SEARCH_SEEN;
	CHECK(match1("KEYWORD $forwarded", &m) == 1);
	CHECK(match1("KEYWORD WORK", &m) == 1);
	CHECK(match1("KEYWORD home", &m) == 0);
	CHECK(match1("UNKEYWORD home", &m) == 1);
	CHECK(match1("UNKEYWORD work", &m) == 0);
	CHECK(match1("KEYWORD \\seen", &m) == 1);
	CHECK(match1("KEYWORD \\Bogus", &m) == 0);
	CHECK(match1("UNKEYWORD \\Bogus", &m) == 1);
	CHECK(match1("3", &m) == 1);
	CHECK(match1("1:2,4:*", &m) == 0);
	CHECK(match1("*", &m) == 0);             /* "*" is message 10 */
	CHECK(match1("UID 42", &m) == 1);
	CHECK(match1("UID 1:41,43:*", &m) == 0);
	CHECK(match1("UID 50:*", &m) == 0);       /* 50:100 */
	char sz[64];
	snprintf(sz, sizeof(sz), "LARGER %zu", t.len - 1);
	CHECK(match1(sz, &m) == 1);
	snprintf(sz, sizeof(sz), "LARGER %zu", t.len);
	CHECK(match1(sz, &m) == 0);
	snprintf(sz, sizeof(sz), "SMALLER %zu", t.len + 1);
	CHECK(match1(sz, &m) == 1);
	snprintf(sz, sizeof(sz), "SMALLER %zu", t.len);
	CHECK(match1(sz, &m) == 0);
	CHECK(match1("MODSEQ 700", &m) == 1);
	{
		struct imap_search_settings st = { .messages = 1 };
		struct imap_search *q;
		struct imap_search_error qe;
		CHECK(compile("OR SEEN NOT MODSEQ 5", &st, &q, &qe) == 0);
		CHECK(imap_search_uses_modseq(q) && !imap_search_needs_body(q) &&
		      !imap_search_needs_headers(q));
		imap_search_free(&q);
		CHECK(compile("TEXT x", &st, &q, &qe) == 0);
		CHECK(!imap_search_uses_modseq(q) && imap_search_needs_body(q) &&
		      imap_search_needs_headers(q));
		imap_search_free(&q);
	}
	CHECK(match1("MODSEQ 701", &m) == 0);
	CHECK(match1("MODSEQ \"/flags/\\\\seen\" all 1", &m) == 1);
	CHECK(match1("NOT SEEN", &m) == 0);
	CHECK(match1("NOT NOT SEEN", &m) == 1);
	CHECK(match1("OR DELETED SEEN", &m) == 1);
	CHECK(match1("OR DELETED FLAGGED", &m) == 0);
	CHECK(match1("OR (DELETED) (SEEN UID 42)", &m) == 1);
	CHECK(match1("OR (DELETED) (SEEN UID 43)", &m) == 0);
	CHECK(match1("NOT OR DELETED (NOT SEEN)", &m) == 1);
	CHECK(match1("SEEN NOT (OR FLAGGED OR DRAFT UID 43)", &m) == 1);
	CHECK(match1("OR OR OR DELETED DRAFT FLAGGED NOT SEEN", &m) == 0);
	CHECK(t.reads == 0);                      /* none of this read the message */
}

static void test_dates(void)
{
	struct imap_search_msg m;
	struct tmsg t;
	msg_init(&m, &t, plain_msg);
	/* INTERNALDATE 27-Nov-2026 00:30 +0200 is 26-Nov 22:30 UTC; its own date is the
	 * 27th ("disregarding time and timezone": the date as the value shows it) */
	time_t it;
	int tz;
	CHECK(date_parse_imap_datetime("27-Nov-2026 00:30:00 +0200", 26, &it, &tz) == 0);
	m.internal_date = it;
	m.internal_tz = tz;
	CHECK(match1("ON 27-Nov-2026", &m) == 1);
	CHECK(match1("ON 26-Nov-2026", &m) == 0);
	CHECK(match1("SINCE 27-Nov-2026", &m) == 1);
	CHECK(match1("SINCE 28-Nov-2026", &m) == 0);
	CHECK(match1("BEFORE 27-Nov-2026", &m) == 0);
	CHECK(match1("BEFORE 28-Nov-2026", &m) == 1);
	/* 23:59:59 -0800 is the next day in UTC, still the 26th in its zone */
	CHECK(date_parse_imap_datetime("26-Nov-2026 23:59:59 -0800", 26, &it, &tz) == 0);
	m.internal_date = it;
	m.internal_tz = tz;
	CHECK(match1("ON 26-Nov-2026", &m) == 1);
	CHECK(match1("BEFORE 27-Nov-2026", &m) == 1);
	CHECK(match1("SINCE 27-Nov-2026", &m) == 0);
	/* before 1970 */
	CHECK(date_parse_imap_datetime("31-Dec-1969 23:00:00 +0000", 26, &it, &tz) == 0);
	m.internal_date = it;
	m.internal_tz = tz;
	CHECK(match1("ON 31-Dec-1969", &m) == 1);
	CHECK(match1("BEFORE 1-Jan-1970", &m) == 1);
	/* Date: Fri, 21 Nov 1997 23:30:00 -0600 is 22 Nov in UTC; SENT* use its own zone */
	CHECK(match1("SENTON 21-Nov-1997", &m) == 1);
	CHECK(match1("SENTON 22-Nov-1997", &m) == 0);
	CHECK(match1("SENTBEFORE 22-Nov-1997", &m) == 1);
	CHECK(match1("SENTBEFORE 21-Nov-1997", &m) == 0);
	CHECK(match1("SENTSINCE 21-Nov-1997", &m) == 1);
	CHECK(match1("SENTSINCE 22-Nov-1997", &m) == 0);
	/* no Date field: no SENT* key matches */
	struct imap_search_msg m2;
	struct tmsg t2;
	msg_init(&m2, &t2, "Subject: x\r\n\r\nbody\r\n");
	CHECK(match1("SENTBEFORE 1-Jan-2100", &m2) == 0);
	CHECK(match1("SENTSINCE 1-Jan-1900", &m2) == 0);
	CHECK(match1("NOT SENTON 1-Jan-2000", &m2) == 1);
}

static void test_headers(void)
{
	struct imap_search_msg m;
	struct tmsg t;
	msg_init(&m, &t, plain_msg);
	CHECK(match1("FROM joe", &m) == 1);
	CHECK(match1("FROM JOHN.Q.PUBLIC@EXAMPLE", &m) == 1);
	CHECK(match1("FROM mary", &m) == 0);
	CHECK(match1("TO mary", &m) == 1);
	CHECK(match1("TO jdoe@example.org", &m) == 1);
	CHECK(match1("CC boss", &m) == 1);
	CHECK(match1("BCC boss", &m) == 0);
	CHECK(match1("BCC \"\"", &m) == 0);       /* no Bcc field */
	CHECK(match1("CC \"\"", &m) == 1);
	CHECK(match1("SUBJECT \"quarterly REPORT\"", &m) == 1);
	CHECK(match1("SUBJECT annual", &m) == 0);
	CHECK(match1("HEADER x-spam NO", &m) == 1);
	CHECK(match1("HEADER X-Spam yes", &m) == 0);
	CHECK(match1("HEADER X-Other \"\"", &m) == 0);
	CHECK(match1("HEADER X-SPAM \"\"", &m) == 1);
	CHECK(match1("HEADER Subject report", &m) == 1);
	CHECK(match1("TEXT \"x-spam: no\"", &m) == 1);   /* TEXT sees header fields */
	CHECK(match1("TEXT numbers", &m) == 1);
	CHECK(match1("BODY numbers", &m) == 1);
	CHECK(match1("BODY quarterly", &m) == 0);  /* BODY is not the header */
	CHECK(match1("TEXT nowhere", &m) == 0);

	/* address keys match the envelope's addresses too (RFC 3501 6.4.4): comments,
	 * CFWS and quoting gone, names from comments, groups and their members */
	struct imap_search_msg ma;
	struct tmsg ta;
	msg_init(&ma, &ta,
		 "From: <ann-a (c1)@ (c2) example.org>\r\n"
		 "To: team: m1@example.org, \"M. Two\" <m2@example.org>;,\r\n"
		 "  other: m3@example.org;\r\n"
		 "Cc: cc-user@example.org (Carol Name)\r\n"
		 "Bcc: =?utf-8?Q?Ren=C3=A9?= <r@example.org>\r\n"
		 "\r\nbody\r\n");
	CHECK(match1("FROM ann-a@example.org", &ma) == 1);     /* not in the raw text */
	CHECK(match1("FROM c1", &ma) == 1);                    /* the raw text still counts */
	CHECK(match1("TO m2@example.org", &ma) == 1);
	CHECK(match1("TO \"m. two <m2@\"", &ma) == 1);         /* quotes gone */
	CHECK(match1("TO \"team: <m1@example.org>\"", &ma) == 1);
	CHECK(match1("TO m3", &ma) == 1);
	CHECK(match1("TO m4", &ma) == 0);
	CHECK(match1("CC \"carol name <cc-user@\"", &ma) == 1); /* the name from the comment */
	CHECK(match_lit("BCC {5}", "Ren\xc3\xa9", &ma) == 1);     /* decoded name */
	CHECK(match1("BCC MISSING_DOMAIN", &ma) == 0);
	CHECK(match1("SUBJECT ann", &ma) == 0);
	struct imap_search_msg mb;
	struct tmsg tb;
	msg_init(&mb, &tb, "From: localonly\r\n\r\n");
	CHECK(match1("FROM localonly", &mb) == 1);
	CHECK(match1("FROM MISSING_DOMAIN", &mb) == 0);         /* a placeholder, not text */

	/* RFC 2047: GB2312 and Big5 encoded words, searched with CHARSET and UTF-8 */
	struct imap_search_msg m2;
	struct tmsg t2;
	msg_init(&m2, &t2,
		 "From: =?GB2312?B?1tDOxA==?= <zh@example.cn>\r\n"
		 "Subject: =?gb2312?B?u+HS6c2o1qo=?=\r\n"
		 "X-Tw: =?big5?B?t3zEs7Nxqr4=?=\r\n"
		 "\r\nbody\r\n");
	CHECK(match_lit("CHARSET GB2312 SUBJECT {4}", "\xbb\xe1\xd2\xe9", &m2) == 1);
	CHECK(match_lit("CHARSET UTF-8 SUBJECT {6}", "\xe4\xbc\x9a\xe8\xae\xae", &m2) == 1);
	CHECK(match_lit("SUBJECT {6}", "\xe9\x80\x9a\xe7\x9f\xa5", &m2) == 1);   /* 通知 */
	CHECK(match_lit("CHARSET GB2312 SUBJECT {4}", "\xd6\xd0\xce\xc4", &m2) == 0);
	CHECK(match_lit("CHARSET GB2312 FROM {4}", "\xd6\xd0\xce\xc4", &m2) == 1);
	CHECK(match_lit("CHARSET BIG5 HEADER X-Tw {4}", "\xb7\x7c\xc4\xb3", &m2) == 1);
	CHECK(match_lit("CHARSET GB18030 HEADER X-Tw {4}", "\xbb\xe1\xd2\xe9", &m2) == 0);
	CHECK(match_lit("CHARSET GBK HEADER X-Tw {4}", "\xcd\xa8\xd6\xaa", &m2) == 1); /* 通知 */
	/* ISO-8859-1 encoded word, upper case searched in lower case */
	struct imap_search_msg m3;
	struct tmsg t3;
	msg_init(&m3, &t3, "Subject: =?ISO-8859-1?Q?=C9COLE_=C0_PARIS?=\r\n\r\n");
	CHECK(match_lit("CHARSET ISO-8859-1 SUBJECT {7}", "\xe9" "cole \xe0", &m3) == 1);
	CHECK(match_lit("SUBJECT {6}", "\xc3\xa9" "cole", &m3) == 1);
	CHECK(match_lit("SUBJECT {6}", "\xc3\xa8" "cole", &m3) == 0);
	CHECK(t.reads > 0);
	/* headers() and sent_date() from the daemon instead of the bytes: never read */
	struct imap_search_msg m4;
	struct tmsg t4;
	msg_init(&m4, &t4, plain_msg);
	m4.headers = fake_headers;
	m4.sent_date = fake_sent_date;
	CHECK(match1("SUBJECT \"from the index\"", &m4) == 1);
	CHECK(match1("SUBJECT quarterly", &m4) == 0);
	CHECK(match_lit("FROM {6}", "\xe4\xb8\xad\xe6\x96\x87", &m4) == 1);
	CHECK(match1("HEADER X-Spam \"\"", &m4) == 0);
	CHECK(match1("SENTON 2-Jan-2000", &m4) == 1);
	CHECK(match1("SENTON 1-Jan-2000", &m4) == 0);
	CHECK(t4.reads == 0);
}

static const char mp_msg[] =
	"From: a@b.c\r\n"
	"Subject: mixed\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n"
	"\r\n"
	"preamble words\r\n"
	"--XYZ\r\n"
	"Content-Type: text/plain; charset=GB2312\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"xOO6w6OsysC956Gj1eLK\r\n"
	"x9K7uPay4srU08q8/qOs\r\n"
	"udjT2rvh0umwssXFoaM=\r\n"
	"--XYZ\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"<p>Gr=C3=BC=C3=9Fe aus M=C3=BCnchen, caf=C3=A9 =C3=BCber=\r\n"
	" alles</p>\r\n"
	"--XYZ\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"\r\n"
	"\xc9" "COLE \xc0 PARIS\r\n"
	"--XYZ\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"c2VjcmV0d29yZA==\r\n"
	"--XYZ\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: inner\r\n"
	"\r\n"
	"inner body needle\r\n"
	"--XYZ--\r\n";

static void test_body(void)
{
	struct imap_search_msg m;
	struct tmsg t;
	msg_init(&m, &t, mp_msg);
	/* base64 GB2312: 会议安排 spans the line break between x9K7... and udjT... */
	CHECK(match_lit("CHARSET GB2312 BODY {8}", "\xbb\xe1\xd2\xe9\xb0\xb2\xc5\xc5", &m) == 1);
	CHECK(match_lit("BODY {12}", "\xe4\xbc\x9a\xe8\xae\xae\xe5\xae\x89\xe6\x8e\x92", &m) == 1);
	/* 关于 crosses the base64 line break ("...8/qOs" / "udjT...") */
	CHECK(match_lit("BODY {6}", "\xe5\x85\xb3\xe4\xba\x8e", &m) == 1);
	CHECK(match_lit("CHARSET GB2312 BODY {4}", "\xd6\xd0\xce\xc4", &m) == 0);
	/* quoted-printable UTF-8 with a soft line break inside the needle */
	CHECK(match_lit("BODY {18}", "m\xc3\xbc" "nchen, caf\xc3\xa9 \xc3\xbc", &m) == 1);
	CHECK(match1("BODY \"ber alles\"", &m) == 1);
	CHECK(match1("BODY \"=C3\"", &m) == 0);            /* decoded, not raw */
	/* ISO-8859-1 upper case, matched case-insensitively */
	CHECK(match_lit("CHARSET ISO-8859-1 BODY {8}", "\xe9" "cole \xe0 ", &m) == 1);
	CHECK(match_lit("BODY {6}", "\xc3\xa9" "COLE", &m) == 1);
	/* not text: not searched */
	CHECK(match1("BODY secretword", &m) == 0);
	/* a message/rfc822 part's text is searched */
	CHECK(match1("BODY \"INNER BODY\"", &m) == 1);
	/* the boundary lines and the preamble are not body text of any part */
	CHECK(match1("BODY XYZ", &m) == 0);
	CHECK(match1("BODY preamble", &m) == 0);
	/* every read size gives the same answers (a needle across each chunk boundary) */
	for (size_t c = 1; c <= 40; c++) {
		t.chunk = c;
		CHECK(match_lit("BODY {6}", "\xe5\x85\xb3\xe4\xba\x8e", &m) == 1);
		CHECK(match_lit("BODY {18}", "m\xc3\xbc" "nchen, caf\xc3\xa9 \xc3\xbc", &m) == 1);
		CHECK(match1("BODY \"inner body needle\"", &m) == 1);
		CHECK(match1("BODY \"needle  \"", &m) == 0);
	}
	/* the body matcher directly, with the daemon's tree and small chunks */
	struct mime_parser *mp = mime_parser_new();
	struct mime_part *root;
	mime_parser_feed(mp, mp_msg, strlen(mp_msg));
	mime_parser_finish(&mp, &root, NULL);
	m.parts = root;
	t.chunk = 0;
	for (size_t c = 1; c <= 64; c++) {
		const char *nd = "\xe5\x85\xb3\xe4\xba\x8e";
		CHECK(imap_search_body_contains(&m, nd, 6, c) == 1);
		CHECK(imap_search_body_contains(&m, "xyz", 3, c) == 0);
	}
	/* whole bytes instead of read() */
	struct imap_search_msg w = m;
	w.read = NULL;
	w.data = mp_msg;
	w.data_len = strlen(mp_msg);
	CHECK(imap_search_body_contains(&w, "inner body", 10, 0) == 1);
	CHECK(match1("SUBJECT mixed", &w) == 1);
	mime_part_free(&root);
}

static int failing_read(void *ctx, uint64_t off, void *buf, size_t len, size_t *got_r)
{
	(void)ctx; (void)off; (void)buf; (void)len;
	*got_r = 0;
	return -1;
}

/* Cheap keys first: a body read never happens when flags decide. */
static void test_cost_order(void)
{
	struct imap_search_msg m;
	struct tmsg t;
	msg_init(&m, &t, mp_msg);
	m.flags = IMAP_SEARCH_SEEN;
	CHECK(match1("BODY inner SUBJECT mixed UNSEEN", &m) == 0);
	CHECK(t.reads == 0);
	CHECK(match1("TEXT inner (FROM a OR DELETED DRAFT)", &m) == 0);
	CHECK(t.reads == 0);
	CHECK(match1("OR BODY inner SEEN", &m) == 1);
	CHECK(t.reads == 0);
	CHECK(match1("NOT (BODY inner SEEN)", &m) == 0);   /* the body had to be read */
	CHECK(t.reads > 0);
	/* header before body: the subject decides, the body is not read (the daemon's
	 * tree says where the header ends) */
	struct mime_parser *mp = mime_parser_new();
	struct mime_part *root;
	mime_parser_feed(mp, mp_msg, strlen(mp_msg));
	mime_parser_finish(&mp, &root, NULL);
	m.parts = root;
	t.reads = 0;
	t.body_from = root->body_offset;
	CHECK(match1("BODY inner SUBJECT nomatch", &m) == 0);
	CHECK(t.reads > 0 && t.body_reads == 0);
	CHECK(match1("BODY inner SUBJECT mixed", &m) == 1);
	CHECK(t.body_reads > 0);
	t.body_reads = 0;
	CHECK(match1("SENTON 1-Jan-2000 BODY inner", &m) == 0);   /* no Date: decided */
	CHECK(t.body_reads == 0);
	/* a read error is -1 with a message, only when the bytes are needed */
	m.read = failing_read;
	CHECK(match1("SEEN", &m) == 1);
	CHECK(match1("BODY x", &m) == -1);
	CHECK(match1("SUBJECT x", &m) == -1);
	CHECK(match1("SENTON 1-Jan-2000", &m) == -1);
	mime_part_free(&root);
}

/* ---- results ---- */

struct mbox {
	struct imap_search_msg m[6];
	struct tmsg t[6];
};

static void mbox_init(struct mbox *b)
{
	static const char *bodies[6] = {
		"Subject: one\r\n\r\napple\r\n", "Subject: two\r\n\r\nbanana\r\n",
		"Subject: three\r\n\r\napple pie\r\n", "Subject: four\r\n\r\ncherry\r\n",
		"Subject: five\r\n\r\napple\r\n", "Subject: six\r\n\r\napple\r\n",
	};
	for (int i = 0; i < 6; i++) {
		msg_init(&b->m[i], &b->t[i], bodies[i]);
		b->m[i].seq = (uint32_t)i + 1;
		b->m[i].uid = (uint32_t)(i + 1) * 10;
		b->m[i].modseq = 100 + (uint64_t)i * ((i % 2) ? 7 : 1);
	}
}

static char *run(struct mbox *b, const char *line, bool uid, bool rev2,
		 const uint32_t *saved, size_t nsaved, uint32_t **save_r, size_t *nsave_r)
{
	struct imap_search_settings set = { .uid = uid, .rev2 = rev2, .messages = 6,
		.uid_max = 60, .saved_uids = saved, .saved_count = nsaved };
	struct imap_search *s = NULL;
	struct imap_search_error err;
	if (compile(line, &set, &s, &err) != 0)
		return strdup(err.text);
	for (int i = 0; i < 6; i++) {
		const char *e;
		if (imap_search_match(s, &b->m[i], &e) < 0) {
			imap_search_free(&s);
			return strdup("read error");
		}
	}
	struct imap_buf buf;
	imap_buf_init(&buf, 65536);
	CHECK(imap_search_format(s, "A1", &buf) == 0);
	if (save_r != NULL) {
		*save_r = NULL;
		*nsave_r = 0;
		if (imap_search_saving(s)) {
			size_t n;
			const uint32_t *v = imap_search_saved_uids(s, &n);
			*save_r = malloc(sizeof(uint32_t) * (n + 1));
			if (n > 0)
				memcpy(*save_r, v, n * sizeof(uint32_t));
			*nsave_r = n;
		}
	}
	imap_search_free(&s);
	char *r = strdup(buf.data != NULL ? buf.data : "");
	imap_buf_free(&buf);
	return r;
}

#define RUN_IS(line, uid, rev2, want) do { char *r_ = run(&b, line, uid, rev2, NULL, 0, \
	NULL, NULL); CHECK_STR(r_, want); free(r_); } while (0)

static void test_results(void)
{
	struct mbox b;
	mbox_init(&b);
	RUN_IS("BODY apple", false, false, "* SEARCH 1 3 5 6\r\n");
	RUN_IS("BODY apple", true, false, "* SEARCH 10 30 50 60\r\n");
	RUN_IS("BODY durian", false, false, "* SEARCH\r\n");
	RUN_IS("BODY apple MODSEQ 0", false, false, "* SEARCH 1 3 5 6 (MODSEQ 135)\r\n");
	RUN_IS("BODY durian MODSEQ 0", false, false, "* SEARCH\r\n");
	RUN_IS("RETURN (MIN MAX COUNT ALL) BODY apple", false, false,
	       "* ESEARCH (TAG \"A1\") MIN 1 MAX 6 COUNT 4 ALL 1,3,5:6\r\n");
	RUN_IS("RETURN (ALL COUNT MAX MIN) BODY apple", true, false,
	       "* ESEARCH (TAG \"A1\") UID MIN 10 MAX 60 COUNT 4 ALL 10,30,50,60\r\n");
	RUN_IS("RETURN () 2:4", false, false, "* ESEARCH (TAG \"A1\") ALL 2:4\r\n");
	RUN_IS("RETURN (MIN MAX COUNT ALL) BODY durian", false, false,
	       "* ESEARCH (TAG \"A1\") COUNT 0\r\n");
	RUN_IS("RETURN (MIN MAX) BODY durian", true, false, "* ESEARCH (TAG \"A1\") UID\r\n");
	RUN_IS("RETURN (COUNT) MODSEQ 105", false, false,
	       "* ESEARCH (TAG \"A1\") COUNT 3 MODSEQ 135\r\n");
	RUN_IS("RETURN (MIN) MODSEQ 105", false, false,
	       "* ESEARCH (TAG \"A1\") MIN 2 MODSEQ 107\r\n");
	RUN_IS("RETURN (SAVE) ALL", false, false, "");
	/* IMAP4rev2: always ESEARCH, as RETURN (ALL) */
	RUN_IS("BODY apple", false, true, "* ESEARCH (TAG \"A1\") ALL 1,3,5:6\r\n");
	RUN_IS("UID 20:40", true, true, "* ESEARCH (TAG \"A1\") UID ALL 20,30,40\r\n");
	RUN_IS("BODY durian", false, true, "* ESEARCH (TAG \"A1\")\r\n");
	RUN_IS("1:3 NOT 2", false, false, "* SEARCH 1 3\r\n");
	RUN_IS("UID 25:* SMALLER 1", false, false, "* SEARCH\r\n");

	/* SAVE and "$" (RFC 5182) */
	uint32_t *sv;
	size_t nsv;
	char *r = run(&b, "RETURN (SAVE) BODY apple", false, false, NULL, 0, &sv, &nsv);
	CHECK_STR(r, "");
	free(r);
	CHECK(nsv == 4 && sv[0] == 10 && sv[1] == 30 && sv[2] == 50 && sv[3] == 60);
	r = run(&b, "$ NOT 1", false, false, sv, nsv, NULL, NULL);
	CHECK_STR(r, "* SEARCH 3 5 6\r\n");
	free(r);
	r = run(&b, "UID $", true, false, sv, nsv, NULL, NULL);
	CHECK_STR(r, "* SEARCH 10 30 50 60\r\n");
	free(r);
	r = run(&b, "OR $ 2", false, false, NULL, 0, NULL, NULL);   /* nothing saved */
	CHECK_STR(r, "* SEARCH 2\r\n");
	free(r);
	free(sv);
	r = run(&b, "RETURN (SAVE MIN) BODY apple", false, false, NULL, 0, &sv, &nsv);
	CHECK_STR(r, "* ESEARCH (TAG \"A1\") MIN 1\r\n");
	free(r);
	CHECK(nsv == 1 && sv[0] == 10);
	free(sv);
	r = run(&b, "RETURN (MAX SAVE MIN) BODY apple", false, false, NULL, 0, &sv, &nsv);
	CHECK(nsv == 2 && sv[0] == 10 && sv[1] == 60);
	free(r);
	free(sv);
	r = run(&b, "RETURN (SAVE MIN COUNT) BODY apple", false, false, NULL, 0, &sv, &nsv);
	CHECK_STR(r, "* ESEARCH (TAG \"A1\") MIN 1 COUNT 4\r\n");
	CHECK(nsv == 4);
	free(r);
	free(sv);
	r = run(&b, "RETURN (SAVE MIN MAX) 2", false, false, NULL, 0, &sv, &nsv);
	CHECK(nsv == 1 && sv[0] == 20);
	free(r);
	free(sv);
	r = run(&b, "RETURN (SAVE) BODY durian", false, false, NULL, 0, &sv, &nsv);
	CHECK(nsv == 0);
	free(r);
	free(sv);

	/* a tag that is not an atom is written as a string */
	struct imap_search_settings set = { .rev2 = true, .messages = 6, .uid_max = 60 };
	struct imap_search *s;
	struct imap_search_error err;
	CHECK(compile("ALL", &set, &s, &err) == 0);
	struct imap_buf buf;
	imap_buf_init(&buf, 1024);
	CHECK(imap_search_format(s, "a\"b", &buf) == 0);
	CHECK_STR(buf.data, "* ESEARCH (TAG \"a\\\"b\")\r\n");
	imap_buf_free(&buf);
	/* an overflowing buffer is -1 */
	for (int i = 0; i < 6; i++) {
		const char *e;
		CHECK(imap_search_match(s, &b.m[i], &e) == 1);
	}
	imap_buf_init(&buf, 10);
	CHECK(imap_search_format(s, "A1", &buf) == -1);
	imap_buf_free(&buf);
	imap_search_free(&s);
}

/* The brief's example: UID SEARCH RETURN (MIN COUNT) CHARSET GB2312 SUBJECT {4}. */
static void test_example(void)
{
	struct imap_search_settings set = { .uid = true, .messages = 2, .uid_max = 8 };
	struct imap_search *s = NULL;
	struct imap_search_error err;
	CHECK(compile3("RETURN (MIN COUNT) CHARSET GB2312 SUBJECT {4}", "\xbb\xe1\xd2\xe9",
		       4, "", &set, &s, &err) == 0);
	CHECK(imap_search_needs_headers(s) && !imap_search_needs_body(s));
	CHECK(!imap_search_uses_modseq(s));
	struct imap_search_msg m1, m2;
	struct tmsg t1, t2;
	msg_init(&m1, &t1, "Subject: hello\r\n\r\n");
	msg_init(&m2, &t2, "Subject: =?gb2312?B?u+HS6c2o1qo=?=\r\n\r\n");
	m1.uid = 5;
	m2.seq = 2;
	m2.uid = 8;
	const char *e;
	CHECK(imap_search_match(s, &m1, &e) == 0);
	CHECK(imap_search_match(s, &m2, &e) == 1);
	struct imap_buf buf;
	imap_buf_init(&buf, 1024);
	CHECK(imap_search_format(s, "x", &buf) == 0);
	CHECK_STR(buf.data, "* ESEARCH (TAG \"x\") UID MIN 8 COUNT 1\r\n");
	imap_buf_free(&buf);
	size_t n;
	const uint32_t *v = imap_search_results(s, &n);
	CHECK(n == 1 && v[0] == 8);
	imap_search_free(&s);
}

int main(void)
{
	struct imap_parser_settings ps = { .logged_in = true };
	parser = imap_parser_new(&ps);
	test_parse_table();
	test_limits();
	test_flags_and_cheap();
	test_dates();
	test_headers();
	test_body();
	test_cost_order();
	test_results();
	test_example();
	imap_parser_free(&parser);
	return unit_done("test_imap_search");
}
