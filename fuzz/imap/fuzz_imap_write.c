/* libFuzzer: imap_write.c and imap_match.c.  Byte 0: flags and the delimiter; then the
 * input splits at the first 0xff into a (pattern, name) or (string, text).  Checks: an
 * astring/nstring written and read back by the command parser is the same bytes (the
 * writer's choice of atom/quoted/literal is always one the parser takes); a status line
 * is exactly one line whatever the text, code and tag; the LIST matcher agrees with a
 * plain recursive matcher on short inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_match.h"
#include "imap/imap_parser.h"
#include "imap/imap_write.h"

static char up(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

/* The definition, directly (exponential, so only for short inputs). */
static bool slow(const char *p, size_t pl, const char *n, size_t nl, size_t at, char d,
		 size_t ci)
{
	if (pl == 0)
		return nl == 0;
	if (p[0] == '*' || p[0] == '%') {
		for (size_t k = 0; k <= nl; k++) {
			if (slow(p + 1, pl - 1, n + k, nl - k, at + k, d, ci))
				return true;
			if (k < nl && p[0] == '%' && d != '\0' && n[k] == d)
				return false;
		}
		return false;
	}
	if (nl == 0)
		return false;
	if (!(p[0] == n[0] || (at < ci && up(p[0]) == up(n[0]))))
		return false;
	return slow(p + 1, pl - 1, n + 1, nl - 1, at + 1, d, ci);
}

static void check_roundtrip(const char *s, size_t len, unsigned flags, bool astring)
{
	struct imap_buf b;
	imap_buf_init(&b, 1 << 20);
	if (imap_buf_puts(&b, "a X ") < 0)
		abort();
	int r = astring ? imap_write_astring(&b, s, len, flags) :
		imap_write_nstring(&b, s, len, flags);
	bool nul = memchr(s, '\0', len) != NULL;
	if (r < 0) {
		if (!nul)
			abort();
		imap_buf_free(&b);
		return;
	}
	if (nul)        /* literal8 is for APPEND only on the way in: not parsed back */
		goto out;
	struct imap_parser_settings set = { .logged_in = true,
		.utf8 = (flags & IMAP_WRITE_UTF8) != 0 };
	struct imap_parser *p = imap_parser_new(&set);
	const char *at = b.data, *end = b.data + b.len;
	int pr;
	for (;;) {
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		size_t ll = nl != NULL ? (size_t)(nl - at) : (size_t)(end - at);
		pr = imap_parser_feed_line(p, at, ll);
		at += nl != NULL ? ll + 1 : ll;
		if (pr != IMAP_PARSE_LITERAL)
			break;
		uint64_t n = imap_parser_literal_left(p);
		if (n > (uint64_t)(end - at))
			abort();
		imap_parser_feed_literal(p, at, (size_t)n);
		at += n;
	}
	if (pr != IMAP_PARSE_DONE)
		abort();
	const struct imap_command *c = imap_parser_command(p);
	const char *v;
	size_t vl;
	if (c->count != 1)
		abort();
	if (astring) {
		if (imap_arg_astring(&c->args[0], &v, &vl) < 0 || vl != len ||
		    memcmp(v, s, len) != 0)
			abort();
	} else if (imap_arg_nstring(&c->args[0], &v, &vl) < 0 || v == NULL || vl != len ||
		   memcmp(v, s, len) != 0) {
		abort();
	}
	imap_parser_free(&p);
out:
	imap_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	unsigned flags = data[0] & 3;
	char delim = (data[0] & 4) ? '/' : (data[0] & 8) ? '.' : '\0';
	const char *a = (const char *)data + 1;
	size_t alen = size - 1;
	const char *sep = memchr(a, 0xff, alen);
	const char *b = sep != NULL ? sep + 1 : "";
	size_t blen = sep != NULL ? alen - (size_t)(sep - a) - 1 : 0;
	if (sep != NULL)
		alen = (size_t)(sep - a);

	/* the command parser limits a collected literal to IMAP_MAX_LITERAL */
	if (alen <= 60000) {
		check_roundtrip(a, alen, flags, true);
		check_roundtrip(a, alen, flags, false);
	}

	/* one line whatever goes in */
	struct imap_buf out;
	imap_buf_init(&out, 1 << 16);
	char *text = strndup(a, alen), *code = strndup(b, blen);
	if (imap_write_tagged(&out, code, "NO", (data[0] & 16) ? code : NULL, text, flags) < 0)
		abort();
	if (memchr(out.data, '\n', out.len) != out.data + out.len - 1 ||
	    memchr(out.data, '\r', out.len) != out.data + out.len - 2)
		abort();
	free(text);
	free(code);
	imap_buf_free(&out);

	if (alen <= 12 && blen <= 16) {
		size_t ci = blen >= 5 && strncasecmp(b, "INBOX", 5) == 0 &&
			(blen == 5 || (delim != '\0' && b[5] == delim)) ? 5 : 0;
		if (imap_match_mailbox(a, alen, b, blen, delim) !=
		    slow(a, alen, b, blen, 0, delim, ci))
			abort();
	} else {
		(void)imap_match_mailbox(a, alen, b, blen, delim);
	}
	return 0;
}
