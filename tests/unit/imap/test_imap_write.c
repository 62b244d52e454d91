/* imap_write.c and imap_match.c: tables of strings with the form each is written in; the
 * injection attempts (CR/LF in a mailbox name, a tag, a code, a text) that must stay on
 * one line; the buffer's bound at max and max+1; LIST patterns against names. */
#include <stdlib.h>
#include <string.h>
#include "imap/imap_match.h"
#include "imap/imap_write.h"
#include "unit.h"

enum kind { STRING, ASTRING, NSTRING };

struct wcase {
	enum kind kind;
	const char *in;         /* NULL: nstring NIL */
	size_t len;             /* 0: strlen */
	unsigned flags;
	const char *out;        /* NULL: refused */
	size_t out_len;         /* 0: strlen */
};

static const struct wcase wcases[] = {
	{ ASTRING, "INBOX", 0, 0, "INBOX", 0 },
	{ ASTRING, "a]b", 0, 0, "a]b", 0 },
	{ ASTRING, "a[b", 0, 0, "\"a[b\"", 0 },
	{ ASTRING, "", 0, 0, "\"\"", 0 },
	{ ASTRING, "NIL", 0, 0, "\"NIL\"", 0 },
	{ ASTRING, "nil", 0, 0, "\"nil\"", 0 },
	{ ASTRING, "a b", 0, 0, "\"a b\"", 0 },
	{ ASTRING, "a*", 0, 0, "\"a*\"", 0 },
	{ ASTRING, "a%", 0, 0, "\"a%\"", 0 },
	{ ASTRING, "(x)", 0, 0, "\"(x)\"", 0 },
	{ ASTRING, "{5}", 0, 0, "\"{5}\"", 0 },
	{ ASTRING, "a\"b\\c", 0, 0, "\"a\\\"b\\\\c\"", 0 },
	{ ASTRING, "Entw&APw-rfe", 0, 0, "Entw&APw-rfe", 0 },
	{ ASTRING, "a\r\nb", 0, 0, "{4}\r\na\r\nb", 0 },              /* CR LF: a literal */
	/* TAB and the other CHARs but NUL CR LF are QUOTED-CHARs (RFC 9051 section 9) */
	{ ASTRING, "a\tb", 0, 0, "\"a\tb\"", 0 },
	{ STRING, "\x01\x1f\x7f", 0, 0, "\"\x01\x1f\x7f\"", 0 },
	{ STRING, "a\rb", 0, 0, "{3}\r\na\rb", 0 },
	{ STRING, "a\nb", 0, 0, "{3}\r\na\nb", 0 },
	{ STRING, "a\x80", 0, IMAP_WRITE_UTF8, "{2}\r\na\x80", 0 },
	{ ASTRING, "\xc3\xa4", 0, 0, "{2}\r\n\xc3\xa4", 0 },           /* 8-bit without UTF-8 */
	{ ASTRING, "\xc3\xa4", 0, IMAP_WRITE_UTF8, "\"\xc3\xa4\"", 0 },
	{ ASTRING, "\xc3", 0, IMAP_WRITE_UTF8, "{1}\r\n\xc3", 0 },     /* not UTF-8 */
	{ STRING, "abc", 0, 0, "\"abc\"", 0 },
	{ STRING, "", 0, 0, "\"\"", 0 },
	{ STRING, "a\0b", 3, 0, NULL, 0 },
	{ STRING, "a\0b", 3, IMAP_WRITE_LITERAL8, "~{3}\r\na\0b", 9 },
	{ NSTRING, NULL, 0, 0, "NIL", 0 },
	{ NSTRING, "NIL", 0, 0, "\"NIL\"", 0 },
};

static void run_strings(void)
{
	for (size_t i = 0; i < sizeof(wcases) / sizeof(wcases[0]); i++) {
		const struct wcase *c = &wcases[i];
		struct imap_buf b;
		imap_buf_init(&b, 4096);
		size_t len = c->len ? c->len : c->in ? strlen(c->in) : 0;
		int r = c->kind == STRING ? imap_write_string(&b, c->in, len, c->flags) :
			c->kind == ASTRING ? imap_write_astring(&b, c->in, len, c->flags) :
			imap_write_nstring(&b, c->in, len, c->flags);
		if (c->out == NULL) {
			CHECK(r == -1 && b.len == 0);
		} else {
			size_t ol = c->out_len ? c->out_len : strlen(c->out);
			CHECK(r == 0 && b.len == ol && memcmp(b.data, c->out, ol) == 0);
			if (r != 0 || b.len != ol || memcmp(b.data, c->out, ol) != 0)
				fprintf(stderr, "write case %zu: got \"%s\"\n", i, b.data ? b.data : "");
		}
		imap_buf_free(&b);
	}
	/* long strings are literals; IMAP_WRITE_QUOTED_MAX is still quoted */
	char *s = malloc(IMAP_WRITE_QUOTED_MAX + 1);
	memset(s, 'a', IMAP_WRITE_QUOTED_MAX + 1);
	s[0] = ' ';
	struct imap_buf b;
	imap_buf_init(&b, 1 << 20);
	CHECK(imap_write_astring(&b, s, IMAP_WRITE_QUOTED_MAX, 0) == 0 && b.data[0] == '"');
	imap_buf_reset(&b);
	CHECK(imap_write_astring(&b, s, IMAP_WRITE_QUOTED_MAX + 1, 0) == 0 &&
	      strncmp(b.data, "{1025}\r\n ", 9) == 0);
	imap_buf_free(&b);
	free(s);
}

struct scase {
	const char *tag, *status, *code, *text;
	unsigned flags;
	const char *out;
};

static const struct scase scases[] = {
	{ "a1", "OK", NULL, "LOGIN completed", 0, "a1 OK LOGIN completed\r\n" },
	{ "a1", "NO", "TOOBIG", "Too big", 0, "a1 NO [TOOBIG] Too big\r\n" },
	{ NULL, "OK", "UIDNEXT 5", "Predicted next UID", 0, "* OK [UIDNEXT 5] Predicted next UID\r\n" },
	{ "a", "OK", NULL, "", 0, "a OK Completed\r\n" },
	{ "a", "OK", NULL, NULL, 0, "a OK Completed\r\n" },
	/* injection: a mailbox name with CRLF in the text */
	{ "a", "NO", NULL, "Mailbox x\r\n* OK [ALERT] pwned", 0, "a NO Mailbox x??* OK [ALERT] pwned\r\n" },
	{ "a", "NO", "NONEXISTENT", "No x\r\na OK y", 0, "a NO [NONEXISTENT] No x??a OK y\r\n" },
	/* a text that starts with '[' is not taken for a code */
	{ "a", "NO", NULL, "[ALERT] fake", 0, "a NO (ALERT] fake\r\n" },
	/* a code with ']' or CRLF cannot close early */
	{ "a", "OK", "X ]\r\n", "t", 0, "a OK [X ???] t\r\n" },
	/* a bad tag is not echoed */
	{ "a\r\n* BYE", "BAD", NULL, "t", 0, "* BAD t\r\n" },
	{ "a b", "BAD", NULL, "t", 0, "* BAD t\r\n" },
	{ "", "BAD", NULL, "t", 0, "* BAD t\r\n" },
	{ "+", "BAD", NULL, "t", 0, "* BAD t\r\n" },
	/* 8-bit text: UTF-8 only when enabled and valid */
	{ "a", "NO", NULL, "\xe4\xb8\xad", 0, "a NO ???\r\n" },
	{ "a", "NO", NULL, "\xe4\xb8\xad", IMAP_WRITE_UTF8, "a NO \xe4\xb8\xad\r\n" },
	{ "a", "NO", NULL, "\xe4\xb8", IMAP_WRITE_UTF8, "a NO ??\r\n" },
	{ "a", "NO", NULL, "x\x7f\x01", 0, "a NO x??\r\n" },
};

static void run_status(void)
{
	for (size_t i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		const struct scase *c = &scases[i];
		struct imap_buf b;
		imap_buf_init(&b, 4096);
		int r = c->tag != NULL ?
			imap_write_tagged(&b, c->tag, c->status, c->code, c->text, c->flags) :
			imap_write_untagged(&b, c->status, c->code, c->text, c->flags);
		CHECK(r == 0);
		CHECK_STR(b.data, c->out);
		/* exactly one line */
		CHECK(memchr(b.data, '\n', b.len) == b.data + b.len - 1);
		CHECK(memchr(b.data, '\r', b.len) == b.data + b.len - 2);
		imap_buf_free(&b);
	}
	struct imap_buf b;
	imap_buf_init(&b, 64);
	CHECK(imap_write_continue(&b, "", 0) == 0);
	CHECK_STR(b.data, "+ \r\n");
	imap_buf_reset(&b);
	CHECK(imap_write_continue(&b, "Ready\r\n", 0) == 0);
	CHECK_STR(b.data, "+ Ready??\r\n");
	imap_buf_free(&b);
}

static void run_bounds(void)
{
	struct imap_buf b;
	imap_buf_init(&b, 10);
	CHECK(imap_buf_append(&b, "0123456789", 10) == 0 && b.len == 10 && !b.overflow);
	CHECK(imap_buf_append(&b, "x", 1) == -1 && b.len == 10 && b.overflow);
	imap_buf_reset(&b);
	CHECK(b.len == 0 && !b.overflow);
	/* a literal that does not fit leaves nothing half-written */
	CHECK(imap_buf_append(&b, "ab", 2) == 0);
	CHECK(imap_write_string(&b, "1\r\n2345", 7, 0) == -1 && b.len == 2 &&
	      strcmp(b.data, "ab") == 0);
	/* a status line that does not fit: nothing */
	CHECK(imap_write_tagged(&b, "a", "OK", NULL, "long text", 0) == -1 && b.len == 2);
	CHECK(imap_buf_printf(&b, "%d", 12345678) == 0 && b.len == 10);
	CHECK(imap_buf_printf(&b, "%d", 1) == -1 && b.len == 10);
	imap_buf_free(&b);
}

struct mcase {
	const char *pattern, *name;
	char delim;
	bool match;
};

static const struct mcase mcases[] = {
	{ "*", "INBOX", '/', true },
	{ "%", "INBOX", '/', true },
	{ "*", "a/b/c", '/', true },
	{ "%", "a/b", '/', false },
	{ "%/%", "a/b", '/', true },
	{ "%/%", "a/b/c", '/', false },
	{ "a/*", "a/b/c", '/', true },
	{ "a/%", "a/b/c", '/', false },
	{ "a/%", "a/b", '/', true },
	{ "a%", "a", '/', true },
	{ "a*", "a", '/', true },
	{ "a*c", "abc", '/', true },
	{ "a*c", "ab/c", '/', true },
	{ "a%c", "ab/c", '/', false },
	{ "a%c", "abc", '/', true },
	{ "a%%c", "abbc", '/', true },
	{ "a*%c", "ab/c", '/', true },                  /* "*%" is "*" */
	{ "Sent", "Sent", '/', true },
	{ "sent", "Sent", '/', false },                 /* case-sensitive */
	{ "inbox", "INBOX", '/', true },                /* but INBOX is not */
	{ "InBoX/%", "INBOX/x", '/', true },
	{ "inbox/X", "INBOX/x", '/', false },           /* only the INBOX part */
	{ "inbox*", "INBOXES", '/', false },            /* INBOXES is not INBOX */
	{ "INBOX*", "INBOXES", '/', true },
	{ "inbox", "INBOX", '\0', true },
	{ "%", "a.b", '.', false },
	{ "%", "a/b", '.', true },
	{ "%", "a/b", '\0', true },
	{ "", "", '/', true },
	{ "", "a", '/', false },
	{ "a", "", '/', false },
	{ "abc", "ab", '/', false },
	{ "*a*a*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", '/', false },
	{ "%a%a%a%a%a%a%a%a%a%a%a%a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", '/', true },
	{ "&ZeVnLIqe-/*", "&ZeVnLIqe-/x", '/', true },
};

static void run_match(void)
{
	for (size_t i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++) {
		const struct mcase *c = &mcases[i];
		bool r = imap_match_mailbox(c->pattern, strlen(c->pattern), c->name,
					    strlen(c->name), c->delim);
		CHECK(r == c->match);
		if (r != c->match)
			fprintf(stderr, "match \"%s\" \"%s\": %d\n", c->pattern, c->name, r);
	}
}

int main(void)
{
	run_strings();
	run_status();
	run_bounds();
	run_match();
	return unit_done("test_imap_write");
}
