/* Response syntax checks (imap_respcheck.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "imap/imap_parser.h"
#include "imap/imap_respcheck.h"

struct resp_ck {
	const char *s;
	size_t len, pos;
	bool utf8;
	unsigned max_depth;
	char *out;       /* the copy with spaces added between adjacent lists */
	size_t olen;
};

static void rc_out(struct resp_ck *c, const char *p, size_t n)
{
	memcpy(c->out + c->olen, p, n);
	c->olen += n;
}

static bool rc_value(struct resp_ck *c, unsigned depth);

static bool rc_list(struct resp_ck *c, unsigned depth)
{
	if (depth + 1 > c->max_depth)
		c->max_depth = depth + 1;
	rc_out(c, "(", 1);
	c->pos++;
	if (c->pos < c->len && c->s[c->pos] == ')') {
		rc_out(c, ")", 1);
		c->pos++;
		return true;
	}
	for (;;) {
		bool was_list = c->pos < c->len && c->s[c->pos] == '(';
		if (!rc_value(c, depth + 1))
			return false;
		if (c->pos >= c->len)
			return false;
		char ch = c->s[c->pos];
		if (ch == ')') {
			rc_out(c, ")", 1);
			c->pos++;
			return true;
		}
		if (ch == ' ') {
			rc_out(c, " ", 1);
			c->pos++;
			if (c->pos >= c->len || c->s[c->pos] == ')' || c->s[c->pos] == ' ')
				return false;
			continue;
		}
		if (ch == '(' && was_list) {
			rc_out(c, " ", 1);
			continue;
		}
		return false;
	}
}

static bool rc_literal(struct resp_ck *c)
{
	bool l8 = c->s[c->pos] == '~';
	size_t start = c->pos;
	if (l8)
		c->pos++;
	if (c->pos >= c->len || c->s[c->pos] != '{')
		return false;
	c->pos++;
	uint64_t n = 0;
	size_t digits = 0;
	while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9' && digits < 12) {
		n = n * 10 + (uint64_t)(c->s[c->pos] - '0');
		c->pos++;
		digits++;
	}
	if (digits == 0 || c->len - c->pos < 3 || memcmp(c->s + c->pos, "}\r\n", 3) != 0)
		return false;
	c->pos += 3;
	if (n > c->len - c->pos)
		return false;
	if (!l8 && memchr(c->s + c->pos, '\0', (size_t)n) != NULL)
		return false;
	c->pos += (size_t)n;
	rc_out(c, c->s + start, c->pos - start);
	return true;
}

static bool rc_quoted(struct resp_ck *c)
{
	size_t start = c->pos++;
	while (c->pos < c->len) {
		unsigned char ch = (unsigned char)c->s[c->pos];
		if (ch == '"') {
			c->pos++;
			rc_out(c, c->s + start, c->pos - start);
			return true;
		}
		if (ch == '\r' || ch == '\n' || ch == '\0' || (ch >= 0x80 && !c->utf8))
			return false;
		if (ch == '\\') {
			if (c->pos + 1 >= c->len || (c->s[c->pos + 1] != '"' &&
						     c->s[c->pos + 1] != '\\'))
				return false;
			c->pos++;
		}
		c->pos++;
	}
	return false;
}

static bool rc_value(struct resp_ck *c, unsigned depth)
{
	if (c->pos >= c->len)
		return false;
	char ch = c->s[c->pos];
	if (ch == '(')
		return rc_list(c, depth);
	if (ch == '"')
		return rc_quoted(c);
	if (ch == '{' || ch == '~')
		return rc_literal(c);
	size_t start = c->pos;
	while (c->pos < c->len) {
		unsigned char a = (unsigned char)c->s[c->pos];
		if (a <= 0x20 || a >= 0x7f || strchr("(){\"%*\\]", a) != NULL)
			break;
		c->pos++;
	}
	if (c->pos == start)
		return false;
	rc_out(c, c->s + start, c->pos - start);
	return true;
}

bool imap_respcheck_value(const char *s, size_t len, bool utf8, char **respaced_r,
			  size_t *respaced_len_r, unsigned *depth_r)
{
	struct resp_ck c = { .s = s, .len = len, .utf8 = utf8 };
	c.out = xmalloc(2 * len + 1);   /* BOUNDS: a space per byte at most */
	bool ok = rc_value(&c, 0) && c.pos == len;
	if (depth_r != NULL)
		*depth_r = c.max_depth;
	if (respaced_r != NULL && ok) {
		*respaced_r = c.out;
		*respaced_len_r = c.olen;
	} else {
		free(c.out);
		if (respaced_r != NULL)
			*respaced_r = NULL;
	}
	return ok;
}

bool imap_respcheck_reparse(const char *v, size_t vlen, bool utf8)
{
	struct imap_parser_settings set = { .logged_in = true, .utf8 = utf8 };
	struct imap_parser *p = imap_parser_new(&set);
	imap_parser_begin(p);
	size_t len = vlen + 6;
	char *cmd = xmalloc(len);
	memcpy(cmd, "A X ", 4);
	memcpy(cmd + 4, v, vlen);
	memcpy(cmd + 4 + vlen, "\r\n", 2);
	const char *at = cmd, *end = cmd + len;
	int r = IMAP_PARSE_BAD;
	while (at < end) {
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		if (nl == NULL)
			break;
		r = imap_parser_feed_line(p, at, (size_t)(nl - at));
		at = nl + 1;
		if (r != IMAP_PARSE_LITERAL)
			break;
		uint64_t n = imap_parser_need(p)->size;
		if (n > (uint64_t)(end - at)) {
			r = IMAP_PARSE_BAD;
			break;
		}
		at += imap_parser_feed_literal(p, at, (size_t)n);
	}
	bool ok = r == IMAP_PARSE_DONE && at == end && imap_parser_command(p)->count == 1 &&
		imap_parser_command(p)->args[0].type == IMAP_ARG_LIST;
	free(cmd);
	imap_parser_free(&p);
	return ok;
}

