/* RFC 2047 encoded-words (rfc2047.h).
 *
 * One pass: plain bytes gather in `plain` (sanitized as UTF-8 when flushed), the decoded
 * bytes of a run of adjacent encoded-words in one charset in `word` (converted when the
 * run ends), and whitespace after an encoded-word in `ws`, which is dropped if another
 * encoded-word follows and becomes plain text otherwise. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/base64.h"
#include "mail/charset.h"
#include "mail/rfc2047.h"

struct buf {
	char *d;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 64;
		while (n > cap - b->len)
			cap *= 2; /* BOUNDS: every buffer is bounded by a small multiple of len */
		b->d = xrealloc(b->d, cap);
		b->cap = cap;
	}
	memcpy(b->d + b->len, s, n);
	b->len += n;
}

struct dec {
	struct buf out, plain, word, ws;
	char charset[CHARSET_MAX_NAME + 1]; /* of word; "" if none */
	size_t max;                         /* bound of out */
};

/* Append to out, cut at a character boundary at the bound. */
static void out_add(struct dec *d, const char *s, size_t n)
{
	if (n > d->max - d->out.len) {
		n = d->max - d->out.len;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	buf_add(&d->out, s, n);
}

static void flush_plain(struct dec *d)
{
	size_t n;
	char *s;

	if (d->plain.len == 0)
		return;
	s = charset_utf8_sanitize(d->plain.d, d->plain.len, &n);
	out_add(d, s, n);
	free(s);
	d->plain.len = 0;
}

static void flush_word(struct dec *d)
{
	const char *error;
	size_t n;
	char *s;

	if (d->charset[0] == '\0')
		return;
	s = charset_to_utf8_str(d->charset, d->word.d ? d->word.d : "", d->word.len, &n,
				&error);
	if (s != NULL) /* known: it was checked when the word was read */
		out_add(d, s, n);
	free(s);
	d->word.len = 0;
	d->charset[0] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void decode_q(const char *t, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (c == '_') {
			c = ' ';
		} else if (c == '=' && i + 2 < n && hexval(t[i + 1]) >= 0 &&
			   hexval(t[i + 2]) >= 0) {
			c = (char)(hexval(t[i + 1]) * 16 + hexval(t[i + 2]));
			i += 2;
		}
		buf_add(out, &c, 1);
	}
}

static void decode_b(const char *t, size_t n, struct buf *out)
{
	struct base64_decoder b;
	size_t used, w;
	/* BOUNDS: n <= RFC2047_MAX_WORD */
	char tmp[RFC2047_MAX_WORD / 4 * 3 + 3];

	base64_decode_init(&b);
	w = base64_decode_update(&b, t, n, tmp, sizeof(tmp), &used);
	buf_add(out, tmp, w);
	base64_decode_finish(&b, tmp, &w);
	buf_add(out, tmp, w);
}

/* An encoded-word at s[i] ("=?" checked)?  Returns its length and decodes it into
 * d->word (flushing what came before), or 0 if it is not a valid one. */
static size_t try_word(struct dec *d, const char *s, size_t len, size_t i)
{
	size_t p = i + 2, cs = p;
	char charset[CHARSET_MAX_NAME + 1];

	while (p < len && s[p] != '?' && (unsigned char)s[p] > 0x20 && s[p] != 0x7f)
		p++;
	if (p == len || s[p] != '?' || p == cs || p - cs > CHARSET_MAX_NAME)
		return 0;
	memcpy(charset, s + cs, p - cs);
	charset[p - cs] = '\0';
	char *star = strchr(charset, '*'); /* RFC 2231 language: dropped */
	if (star != NULL)
		*star = '\0';
	if (charset[0] == '\0' || p + 2 >= len || s[p + 2] != '?')
		return 0;
	char enc = (char)(s[p + 1] | 0x20);
	if (enc != 'b' && enc != 'q')
		return 0;
	size_t t = p + 3, e = t;
	while (e < len && s[e] != '?' && (unsigned char)s[e] > 0x20 && s[e] != 0x7f)
		e++;
	if (e + 1 >= len || s[e] != '?' || s[e + 1] != '=' || e - t > RFC2047_MAX_WORD)
		return 0;
	bool same = d->charset[0] != '\0' && strcasecmp(charset, d->charset) == 0;
	if (!same && !charset_is_known(charset))
		return 0;
	/* a valid word: what came before it ends */
	flush_plain(d);
	if (!same) {
		flush_word(d);
		memcpy(d->charset, charset, strlen(charset) + 1);
	}
	d->ws.len = 0; /* whitespace between two encoded-words: dropped */
	if (enc == 'b')
		decode_b(s + t, e - t, &d->word);
	else
		decode_q(s + t, e - t, &d->word);
	return e + 2 - i;
}

char *rfc2047_decode(const char *s, size_t len, size_t *len_r)
{
	struct dec d = { .max = len * 4 + 16 };
	bool after_word = false;

	for (size_t i = 0; i < len;) {
		char c = s[i];
		if (c == '=' && i + 1 < len && s[i + 1] == '?') {
			size_t n = try_word(&d, s, len, i);
			if (n > 0) {
				i += n;
				after_word = true;
				continue;
			}
		}
		i++;
		if (c == '\r' || c == '\n')
			continue; /* unfolding */
		if (after_word && (c == ' ' || c == '\t')) {
			buf_add(&d.ws, &c, 1);
			continue;
		}
		if (after_word) {
			flush_word(&d);
			buf_add(&d.plain, d.ws.d, d.ws.len);
			d.ws.len = 0;
			after_word = false;
		}
		buf_add(&d.plain, &c, 1);
	}
	flush_word(&d);
	buf_add(&d.plain, d.ws.d, d.ws.len);
	flush_plain(&d);
	buf_add(&d.out, "", 1);
	free(d.plain.d);
	free(d.word.d);
	free(d.ws.d);
	*len_r = d.out.len - 1;
	return d.out.d;
}

char *rfc2047_encode(const char *utf8, size_t len)
{
	struct buf out = { 0 };
	bool plain = true;
	size_t n;

	for (size_t i = 0; i < len && plain; i++)
		if ((unsigned char)utf8[i] < 0x20 || (unsigned char)utf8[i] > 0x7e ||
		    (utf8[i] == '=' && i + 1 < len && utf8[i + 1] == '?'))
			plain = false;
	if (plain) {
		buf_add(&out, utf8, len);
		buf_add(&out, "", 1);
		return out.d;
	}
	char *s = charset_utf8_sanitize(utf8, len, &n);
	for (size_t i = 0; i < n;) {
		/* "=?UTF-8?B?" + 60 characters + "?=" = 72 <= 75: 45 bytes a word */
		size_t k = n - i < 45 ? n - i : 45;
		while (i + k < n && k > 0 && ((unsigned char)s[i + k] & 0xc0) == 0x80)
			k--;
		char b64[BASE64_ENCODED_LEN(45) + 1];
		size_t w = base64_encode(s + i, k, b64);
		if (i > 0)
			buf_add(&out, "\r\n ", 3);
		buf_add(&out, "=?UTF-8?B?", 10);
		buf_add(&out, b64, w);
		buf_add(&out, "?=", 2);
		i += k;
	}
	buf_add(&out, "", 1);
	free(s);
	return out.d;
}
