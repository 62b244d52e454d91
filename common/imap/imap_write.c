/* IMAP response writing (imap_write.h). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "imap/imap_write.h"

void imap_buf_init(struct imap_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void imap_buf_free(struct imap_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void imap_buf_reset(struct imap_buf *b)
{
	b->len = 0;
	b->overflow = false;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Room for n more bytes and the NUL; -1 (overflow) past max. */
static int reserve(struct imap_buf *b, size_t n)
{
	if (n > b->max || b->len > b->max - n) {
		b->overflow = true;
		return -1;
	}
	if (b->len + n + 1 <= b->cap)   /* BOUNDS: len + n <= max, checked above */
		return 0;
	size_t cap = b->cap == 0 ? 256 : b->cap;
	while (cap < b->len + n + 1)
		cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int imap_buf_append(struct imap_buf *b, const void *data, size_t len)
{
	if (reserve(b, len) < 0)
		return -1;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int imap_buf_puts(struct imap_buf *b, const char *s)
{
	return imap_buf_append(b, s, strlen(s));
}

int imap_buf_printf(struct imap_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);   /* BOUNDS: reserved n + 1 */
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/* Length of the well-formed UTF-8 character at s[i] (RFC 3629), 0 if it is not one. */
static size_t utf8_char(const unsigned char *s, size_t len, size_t i)
{
	unsigned char c = s[i];
	if (c < 0x80)
		return 1;
	size_t want = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
	if (c < 0xc2 || c > 0xf4 || len - i <= want)
		return 0;
	uint32_t cp = c & (0x3f >> want);
	for (size_t k = 1; k <= want; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i + k] & 0x3f);
	}
	if ((want == 2 && cp < 0x800) || (want == 3 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return want + 1;
}

/* May s go in a quoted string? */
static bool quotable(const char *s, size_t len, unsigned flags)
{
	const unsigned char *u = (const unsigned char *)s;
	if (len > IMAP_WRITE_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; ) {
		/* QUOTED-CHAR is any TEXT-CHAR (CHAR but NUL, CR, LF) but quoted-specials,
		 * which are escaped: TAB and the other controls may go quoted */
		if (u[i] == '\0' || u[i] == '\r' || u[i] == '\n')
			return false;
		if (u[i] >= 0x80) {
			size_t n = (flags & IMAP_WRITE_UTF8) ? utf8_char(u, len, i) : 0;
			if (n == 0)
				return false;
			i += n;
			continue;
		}
		i++;
	}
	return true;
}

int imap_write_string(struct imap_buf *b, const char *s, size_t len, unsigned flags)
{
	bool nul = memchr(s, '\0', len) != NULL;
	if (nul && !(flags & IMAP_WRITE_LITERAL8))
		return -1;
	size_t start = b->len;
	if (!nul && quotable(s, len, flags)) {
		size_t q = 0;
		for (size_t i = 0; i < len; i++)
			q += s[i] == '"' || s[i] == '\\';
		/* BOUNDS: q <= len <= IMAP_WRITE_QUOTED_MAX */
		if (reserve(b, len + q + 2) < 0)
			return -1;
		b->data[b->len++] = '"';
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '"' || s[i] == '\\')
				b->data[b->len++] = '\\';
			b->data[b->len++] = s[i];
		}
		b->data[b->len++] = '"';
		b->data[b->len] = '\0';
		return 0;
	}
	if (imap_buf_printf(b, "%s{%zu}\r\n", nul ? "~" : "", len) < 0 ||
	    imap_buf_append(b, s, len) < 0) {
		b->len = start;   /* all or nothing */
		if (b->data != NULL)
			b->data[start] = '\0';
		return -1;
	}
	return 0;
}

int imap_write_astring(struct imap_buf *b, const char *s, size_t len, unsigned flags)
{
	bool atom = len > 0 && !(len == 3 && util_token_eq(s, 3, "NIL"));
	for (size_t i = 0; atom && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* '[' too: the command parser would take "a[b c]" for one section atom */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\[", c) != NULL)
			atom = false;
	}
	if (atom)
		return imap_buf_append(b, s, len);
	return imap_write_string(b, s, len, flags);
}

int imap_write_nstring(struct imap_buf *b, const char *s, size_t len, unsigned flags)
{
	if (s == NULL)
		return imap_buf_append(b, "NIL", 3);
	return imap_write_string(b, s, len, flags);
}

int imap_write_text(struct imap_buf *b, const char *text, size_t len, unsigned flags)
{
	const unsigned char *u = (const unsigned char *)text;
	if (reserve(b, len) < 0)
		return -1;
	for (size_t i = 0; i < len; ) {
		size_t n = 1;
		char c = (char)u[i];
		if (u[i] < 0x20 || u[i] == 0x7f) {
			c = '?';
		} else if (u[i] >= 0x80) {
			n = (flags & IMAP_WRITE_UTF8) ? utf8_char(u, len, i) : 0;
			if (n > 0) {
				memcpy(b->data + b->len, text + i, n);   /* BOUNDS: reserved len */
				b->len += n;
				i += n;
				continue;
			}
			n = 1;
			c = '?';
		}
		b->data[b->len++] = c;
		i += n;
	}
	b->data[b->len] = '\0';
	return 0;
}

/* A tag as the client sent it if it is one (1*<ASTRING-CHAR except "+">), else "*". */
static bool tag_ok(const char *tag)
{
	size_t n = tag != NULL ? strlen(tag) : 0;
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)tag[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\+", c) != NULL)
			return false;
	}
	return true;
}

static int status_line(struct imap_buf *b, const char *tag, const char *status,
		       const char *code, const char *text, unsigned flags)
{
	size_t start = b->len;
	int r = imap_buf_puts(b, tag);
	if (status != NULL) {
		r |= imap_buf_puts(b, " ");
		r |= imap_write_text(b, status, strlen(status), 0);
	}
	r |= imap_buf_puts(b, " ");
	if (code != NULL) {
		/* the code: no ']' (it would end the code early), no CR/LF */
		r |= imap_buf_puts(b, "[");
		size_t at = b->len;
		r |= imap_write_text(b, code, strlen(code), 0);
		for (size_t i = at; r == 0 && i < b->len; i++)
			if (b->data[i] == ']' || b->data[i] == '[')
				b->data[i] = '?';
		r |= imap_buf_puts(b, "] ");
	}
	if (text == NULL || text[0] == '\0') {
		r |= imap_buf_puts(b, status != NULL ? "Completed" : "");
	} else {
		size_t at = b->len;
		r |= imap_write_text(b, text, strlen(text), flags);
		if (r == 0 && code == NULL && b->data[at] == '[')
			b->data[at] = '(';
	}
	r |= imap_buf_puts(b, "\r\n");
	if (r != 0) {
		b->len = start;
		if (b->data != NULL)
			b->data[start] = '\0';
		b->overflow = true;
		return -1;
	}
	return 0;
}

int imap_write_tagged(struct imap_buf *b, const char *tag, const char *status,
		      const char *code, const char *text, unsigned flags)
{
	return status_line(b, tag_ok(tag) ? tag : "*", status, code, text, flags);
}

int imap_write_untagged(struct imap_buf *b, const char *status, const char *code,
			const char *text, unsigned flags)
{
	return status_line(b, "*", status, code, text, flags);
}

int imap_write_continue(struct imap_buf *b, const char *text, unsigned flags)
{
	return status_line(b, "+", NULL, NULL, text, flags);
}
