/* SMTP reply parsing for the client; see smtp_response.h. */
#include <string.h>
#include "base/util.h"
#include "smtp/smtp_response.h"

void smtp_response_init(struct smtp_response_parser *p)
{
	memset(p, 0, sizeof(*p));
}

static int fail(struct smtp_response_parser *p, const char *msg, const char **error_r)
{
	p->error = msg;
	*error_r = msg;
	return -1;
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

/* d.d{1,3}.d{1,3} at s[0..len) followed by SP or the end: fill r's enh fields */
static void parse_enh(struct smtp_response *r, const char *s, size_t len)
{
	unsigned v[3] = { 0, 0, 0 };
	size_t i = 0;

	for (int part = 0; part < 3; part++) {
		size_t n = 0;
		while (i < len && digit(s[i]) && n < 4) {
			v[part] = v[part] * 10 + (unsigned)(s[i] - '0');
			i++;
			n++;
		}
		if (n == 0 || n > (part == 0 ? 1u : 3u))
			return;
		if (part < 2 && (i == len || s[i++] != '.'))
			return;
	}
	if ((i < len && s[i] != ' ') || v[0] != r->code / 100)
		return;
	r->enh_given = true;
	r->enh_class = v[0];
	r->enh_subject = v[1];
	r->enh_detail = v[2];
	memcpy(r->enh, s, i); /* BOUNDS: i <= 9 < sizeof(enh) */
	r->enh[i] = '\0';
}

/* The line in buf[line_start..used) is complete (its line end removed). 1: the last
 * line of the reply, 0: more lines follow, -1: error. */
static int end_line(struct smtp_response_parser *p, const char **error_r)
{
	struct smtp_response *r = &p->resp;
	char *l = p->buf + p->line_start;
	size_t n = p->used - p->line_start;

	for (size_t i = 0; i < n; i++)
		if (((unsigned char)l[i] < 0x20 && l[i] != '\t') || l[i] == 0x7F)
			return fail(p, "control byte in reply", error_r);
	if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' || !digit(l[2]) ||
	    (n > 3 && l[3] != '-' && l[3] != ' '))
		return fail(p, "malformed reply line", error_r);
	unsigned code = (unsigned)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
	if (r->nlines == 0)
		r->code = code;
	else if (code != r->code)
		return fail(p, "reply code changes between lines", error_r);
	if (r->nlines == SMTP_MAX_REPLY_LINES)
		return fail(p, "too many reply lines", error_r);
	size_t t = n > 3 ? 4 : 3;
	if (r->nlines == 0)
		parse_enh(r, l + t, n - t);
	r->lines[r->nlines] = l + t;
	r->line_len[r->nlines] = n - t;
	r->nlines++;
	p->buf[p->used++] = '\0'; /* BOUNDS: feed keeps one byte free for it */
	p->line_start = p->used;
	return n > 3 && l[3] == '-' ? 0 : 1;
}

int smtp_response_feed(struct smtp_response_parser *p, const char *data, size_t len,
		       size_t *used_r, const char **error_r)
{
	size_t i = 0;

	*used_r = 0;
	if (p->error != NULL) {
		*error_r = p->error;
		return -1;
	}
	if (p->complete) {
		memset(&p->resp, 0, sizeof(p->resp));
		p->used = p->line_start = p->total = 0;
		p->complete = false;
	}
	while (i < len) {
		char c = data[i++];
		p->total++;
		if (p->total > SMTP_MAX_REPLY_SIZE)
			return fail(p, "reply too long", error_r);
		if (c != '\n') {
			/* BOUNDS: used <= total <= SMTP_MAX_REPLY_SIZE (every stored byte was counted
			 * in total; a NUL replaces an LF): buf has room; the line with its CRLF is at
			 * most SMTP_MAX_REPLY_LINE_PEER */
			if (p->used - p->line_start >= SMTP_MAX_REPLY_LINE_PEER - 1)
				return fail(p, "reply line too long", error_r);
			p->buf[p->used++] = c;
			continue;
		}
		if (p->used > p->line_start && p->buf[p->used - 1] == '\r')
			p->used--; /* CRLF; a bare LF is tolerated */
		int r = end_line(p, error_r);
		if (r < 0)
			return -1;
		if (r == 1) {
			p->complete = true;
			*used_r = i;
			return 1;
		}
	}
	*used_r = i;
	return 0;
}

static bool word_is(const char *s, size_t len, const char *w)
{
	return util_token_eq(s, len, w);
}

static void ehlo_auth(struct smtp_ehlo *e, const char *s, size_t len)
{
	size_t i = 0;

	e->exts |= SMTP_EHLO_AUTH;
	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		size_t j = i;
		while (j < len && s[j] != ' ')
			j++;
		if (word_is(s + i, j - i, "PLAIN"))
			e->auth_mechs |= SMTP_EHLO_AUTH_PLAIN;
		else if (word_is(s + i, j - i, "LOGIN"))
			e->auth_mechs |= SMTP_EHLO_AUTH_LOGIN;
		i = j;
	}
}

int smtp_response_ehlo(const struct smtp_response *r, struct smtp_ehlo *e)
{
	static const struct { const char *kw; unsigned bit; } kws[] = {
		{ "STARTTLS", SMTP_EHLO_STARTTLS }, { "PIPELINING", SMTP_EHLO_PIPELINING },
		{ "8BITMIME", SMTP_EHLO_8BITMIME }, { "SMTPUTF8", SMTP_EHLO_SMTPUTF8 },
		{ "CHUNKING", SMTP_EHLO_CHUNKING }, { "BINARYMIME", SMTP_EHLO_BINARYMIME },
		{ "DSN", SMTP_EHLO_DSN }, { "ENHANCEDSTATUSCODES", SMTP_EHLO_ENHANCEDSTATUSCODES },
	};

	memset(e, 0, sizeof(*e));
	if (r->code != 250 || r->nlines == 0)
		return -1;
	for (size_t l = 1; l < r->nlines; l++) {
		const char *s = r->lines[l];
		size_t len = r->line_len[l], k = 0;
		while (k < len && s[k] != ' ' && s[k] != '=')
			k++;
		const char *rest = k < len ? s + k + 1 : s + len;
		size_t rlen = k < len ? len - k - 1 : 0;
		if (word_is(s, k, "SIZE")) {
			uint64_t v;
			e->exts |= SMTP_EHLO_SIZE;
			if (rlen > 0 && util_parse_uint(rest, rlen, UINT64_MAX, &v) == 0)
				e->size_max = v;
		} else if (word_is(s, k, "AUTH")) {
			ehlo_auth(e, rest, rlen);
		} else {
			for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
				if (word_is(s, k, kws[i].kw) && (k == len || s[k] == ' '))
					e->exts |= kws[i].bit;
		}
	}
	return 0;
}
