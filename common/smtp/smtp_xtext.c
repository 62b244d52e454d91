/* xtext and RFC 6533 utf-8 address decoding; see smtp_xtext.h. */
#include <string.h>
#include "smtp/smtp_xtext.h"

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case is not upper-case hex (RFC 3461, RFC 6533 HEXDIG) */
}

int smtp_xtext_decode(const char *in, size_t len, char *out, size_t out_size,
		      size_t *len_r)
{
	size_t o = 0;

	if (out_size == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;
		if (c == '+') {
			int h, l;
			if (len - i < 3 || (h = hexval((unsigned char)in[i + 1])) < 0 ||
			    (l = hexval((unsigned char)in[i + 2])) < 0)
				return -1;
			v = h * 16 + l;
			if (v == 0)
				return -1;
			i += 2;
		} else if (c >= 33 && c <= 126 && c != '=') {
			v = c;
		} else {
			return -1;
		}
		if (o + 1 >= out_size) /* BOUNDS: one byte and the NUL */
			return -1;
		out[o++] = (char)v;
	}
	out[o] = '\0';
	*len_r = o;
	return 0;
}

int smtp_xtext_encode(const char *in, size_t len, char *out, size_t out_size,
		      size_t *len_r)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 33 && c <= 126 && c != '+' && c != '=') {
			if (o + 1 >= out_size) /* BOUNDS: one byte and the NUL */
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= out_size) /* BOUNDS: "+XX" and the NUL */
				return -1;
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= out_size)
		return -1;
	out[o] = '\0';
	*len_r = o;
	return 0;
}

/* Length of the UTF-8 character at in[0..len), 0 if malformed (RFC 3629 section 4). */
static size_t utf8_char(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (len < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

bool smtp_xtext_utf8_valid(const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_char(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static bool qchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7E && c != '+' && c != '=' && c != '\\';
}

/* The code point of "\x{HEX}" at in[0..len) (the caller saw "\x"); *n_r the bytes. */
static long embedded(const char *in, size_t len, size_t *n_r)
{
	size_t i = 2, digits = 0;
	long v = 0;

	if (len < 3 || in[2] != '{')
		return -1;
	for (i = 3; i < len && in[i] != '}'; i++) {
		int h = hexval((unsigned char)in[i]);
		if (h < 0 || ++digits > 6)
			return -1;
		v = v * 16 + h;
	}
	if (i == len || digits < 2)
		return -1;
	/* the fewest digits: 2 below 0x100 (with a leading 0 only there), then minimal */
	size_t want = v < 0x100 ? 2 : v < 0x1000 ? 3 : v < 0x10000 ? 4 : v < 0x100000 ? 5 : 6;
	if (digits != want || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || v == 0)
		return -1;
	/* only what may not appear as a QCHAR is escaped */
	if (v < 0x80 && !(v <= 0x20 || v == '+' || v == '=' || v == '\\' || v == 0x7F))
		return -1;
	*n_r = i + 1;
	return v;
}

static size_t put_utf8(long v, char *o)
{
	if (v < 0x80) {
		o[0] = (char)v;
		return 1;
	}
	if (v < 0x800) {
		o[0] = (char)(0xC0 | (v >> 6));
		o[1] = (char)(0x80 | (v & 0x3F));
		return 2;
	}
	if (v < 0x10000) {
		o[0] = (char)(0xE0 | (v >> 12));
		o[1] = (char)(0x80 | ((v >> 6) & 0x3F));
		o[2] = (char)(0x80 | (v & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (v >> 18));
	o[1] = (char)(0x80 | ((v >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((v >> 6) & 0x3F));
	o[3] = (char)(0x80 | (v & 0x3F));
	return 4;
}

int smtp_xtext_decode_utf8addr(const char *in, size_t len, bool utf8, char *out,
			       size_t out_size, size_t *len_r)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0, i = 0;

	if (len == 0 || out_size == 0)
		return -1;
	while (i < len) {
		char tmp[4];
		size_t n, w;
		if (qchar(s[i])) {
			tmp[0] = (char)s[i];
			n = w = 1;
		} else if (s[i] == '\\' && len - i >= 2 && s[i + 1] == 'x') {
			long v = embedded(in + i, len - i, &n);
			if (v < 0)
				return -1;
			w = put_utf8(v, tmp);
		} else if (utf8 && s[i] >= 0x80 && (n = utf8_char(s + i, len - i)) > 0) {
			memcpy(tmp, s + i, n);
			w = n;
		} else {
			return -1;
		}
		if (o + w >= out_size) /* BOUNDS: the character and the NUL */
			return -1;
		memcpy(out + o, tmp, w);
		o += w;
		i += n;
	}
	out[o] = '\0';
	*len_r = o;
	return 0;
}
