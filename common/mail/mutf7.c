/* Modified UTF-7 and UTF-8 mailbox names (mutf7.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "mail/mutf7.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
	const char *p = c != 0 ? strchr(b64, c) : NULL;
	return p != NULL ? (int)(p - b64) : -1;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* One UTF-8 character at s[*i]: its code point, or -1 when it is not well-formed. */
static int utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp_r)
{
	unsigned char c = s[*i];
	if (c < 0x80) {
		*cp_r = c;
		(*i)++;
		return 0;
	}
	size_t want = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
	if (c < 0xc2 || c > 0xf4 || len - *i <= want)
		return -1;
	uint32_t cp = c & (0x3f >> want);
	for (size_t k = 1; k <= want; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[*i + k] & 0x3f);
	}
	if ((want == 2 && cp < 0x800) || (want == 3 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += want + 1;
	*cp_r = cp;
	return 0;
}

int mutf7_utf8_valid(const char *s, size_t len, const char **error_r)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len; ) {
		uint32_t cp;
		if (utf8_next(u, len, &i, &cp) < 0) {
			*error_r = "Mailbox name is not valid UTF-8";
			return -1;
		}
		if (is_control(cp)) {
			*error_r = "Control character in mailbox name";
			return -1;
		}
	}
	return 0;
}

/* Append code point cp as UTF-8 to out[*o]; the caller sized out. */
static void utf8_put(char *out, size_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		out[(*o)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*o)++] = (char)(0xc0 | cp >> 6);
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*o)++] = (char)(0xe0 | cp >> 12);
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*o)++] = (char)(0xf0 | cp >> 18);
		out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* The base64 run in[b..e) (between "&" and "-") as UTF-8 into out. */
static int decode_run(const char *in, size_t b, size_t e, char *out, size_t *o,
		      const char **error_r)
{
	uint32_t bits = 0, nbits = 0, high = 0;
	for (size_t i = b; i < e; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0) {
			*error_r = "Invalid character in modified UTF-7";
			return -1;
		}
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		if (high != 0) {
			if (u < 0xdc00 || u > 0xdfff) {
				*error_r = "Unpaired surrogate in modified UTF-7";
				return -1;
			}
			uint32_t cp = 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00);
			high = 0;
			utf8_put(out, o, cp);
			continue;
		}
		if (u >= 0xd800 && u <= 0xdbff) {
			high = u;
			continue;
		}
		if (u >= 0xdc00 && u <= 0xdfff) {
			*error_r = "Unpaired surrogate in modified UTF-7";
			return -1;
		}
		if (u >= 0x20 && u <= 0x7e) {
			*error_r = "Modified UTF-7 encodes a printable ASCII character";
			return -1;
		}
		utf8_put(out, o, u);
	}
	if (high != 0) {
		*error_r = "Unpaired surrogate in modified UTF-7";
		return -1;
	}
	/* what is left is the padding to a whole base64 character: under 6 bits, all 0 */
	if (nbits >= 6 || bits != 0) {
		*error_r = "Bad bits at the end of modified UTF-7";
		return -1;
	}
	return 0;
}

int mutf7_to_utf8(const char *in, size_t len, char **out_r, size_t *out_len_r,
		      const char **error_r)
{
	/* BOUNDS: 8 base64 characters make at most 3 UTF-16 units, at most 9 UTF-8 bytes;
	 * ASCII is one for one: len * 2 + 1 is enough */
	char *out = xmalloc(len * 2 + 1);
	size_t o = 0, i = 0;
	bool after_shift = false;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x20 || c > 0x7e) {
			*error_r = c >= 0x80 ? "8-bit character in modified UTF-7" :
				"Control character in mailbox name";
			goto fail;
		}
		if (c != '&') {
			out[o++] = (char)c;
			i++;
			after_shift = false;
			continue;
		}
		const char *dash = memchr(in + i + 1, '-', len - i - 1);
		if (dash == NULL) {
			*error_r = "Unterminated modified UTF-7 shift";
			goto fail;
		}
		size_t e = (size_t)(dash - in);
		if (e == i + 1) {
			out[o++] = '&';
			after_shift = false;
		} else {
			if (after_shift) {
				*error_r = "Adjacent modified UTF-7 shifts";
				goto fail;
			}
			if (decode_run(in, i + 1, e, out, &o, error_r) < 0)
				goto fail;
			after_shift = true;
		}
		i = e + 1;
	}
	out[o] = '\0';
	if (mutf7_utf8_valid(out, o, error_r) < 0)
		goto fail;
	*out_r = out;
	*out_len_r = o;
	return 0;
fail:
	free(out);
	return -1;
}

static void b64_flush(char *out, size_t *o, uint32_t *bits, uint32_t *nbits)
{
	while (*nbits >= 6) {
		*nbits -= 6;
		out[(*o)++] = b64[(*bits >> *nbits) & 0x3f];
	}
	*bits &= (1u << *nbits) - 1;
}

int mutf7_from_utf8(const char *in, size_t len, char **out_r, size_t *out_len_r,
		      const char **error_r)
{
	if (mutf7_utf8_valid(in, len, error_r) < 0)
		return -1;
	/* BOUNDS: "&" becomes "&-" (2 for 1); every other character encoded is 2 to 4
	 * UTF-8 bytes (controls are refused above), the worst a 2-byte one alone, "&" + 3
	 * base64 + "-" (5 for 2): len * 3 + 2 covers every case */
	char *out = xmalloc(len * 3 + 2);
	const unsigned char *u = (const unsigned char *)in;
	size_t o = 0, i = 0;
	while (i < len) {
		if (u[i] >= 0x20 && u[i] <= 0x7e) {
			out[o++] = (char)u[i];
			if (u[i] == '&')
				out[o++] = '-';
			i++;
			continue;
		}
		uint32_t bits = 0, nbits = 0;
		out[o++] = '&';
		while (i < len && !(u[i] >= 0x20 && u[i] <= 0x7e)) {
			uint32_t cp;
			(void)utf8_next(u, len, &i, &cp);   /* valid: checked above */
			if (cp >= 0x10000) {
				cp -= 0x10000;
				bits = (bits << 16) | (0xd800 + (cp >> 10));
				nbits += 16;
				b64_flush(out, &o, &bits, &nbits);
				cp = 0xdc00 + (cp & 0x3ff);
			}
			bits = (bits << 16) | cp;
			nbits += 16;
			b64_flush(out, &o, &bits, &nbits);
		}
		if (nbits > 0)
			out[o++] = b64[(bits << (6 - nbits)) & 0x3f];
		out[o++] = '-';
	}
	out[o] = '\0';
	*out_r = out;
	*out_len_r = o;
	return 0;
}
