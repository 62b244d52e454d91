/* Charset conversion to UTF-8 and SEARCH folding (charset.h).
 *
 * A converter is an iconv_t (or none, for UTF-8 in) and a few pending bytes: an
 * incomplete sequence at the end of a chunk (iconv's EINVAL) waits there for the next
 * chunk.  iconv's EILSEQ becomes U+FFFD and one skipped byte; so does an incomplete
 * sequence at the end of all input.  iconv converts to UCS-4 and we write the UTF-8:
 * glibc lets code points past U+10FFFF through (from UCS-4, or a name it takes for
 * UTF-8 such as "utf&8"), and those become U+FFFD, so the output is always valid. */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/charset.h"

/* Longest incomplete sequence kept between chunks: GB18030's 4 bytes, ISO-2022's escapes
 * with a character (7); more than that is taken for junk. */
#define PENDING_MAX 16
#define REPLACEMENT "\xef\xbf\xbd"

struct charset_conv {
	iconv_t cd;   /* (iconv_t)-1: UTF-8 in, validated by us */
	unsigned char pending[PENDING_MAX];
	size_t pending_len;
};

static const struct {
	const char *alias, *name;
} aliases[] = {
	{ "gb2312", "GB18030" }, { "gbk", "GB18030" }, { "euc-cn", "GB18030" },
	{ "cp936", "GB18030" }, { "x-gbk", "GB18030" }, { "csgb2312", "GB18030" },
	{ "big5", "BIG5-HKSCS" }, { "cp950", "BIG5-HKSCS" }, { "x-x-big5", "BIG5-HKSCS" },
	{ "big5-hkscs", "BIG5-HKSCS" }, { "csbig5", "BIG5-HKSCS" },
	{ "us-ascii", "UTF-8" }, { "ascii", "UTF-8" }, { "utf8", "UTF-8" },
	{ "utf-8", "UTF-8" }, { "ansi_x3.4-1968", "UTF-8" },
	{ "iso-8859-1", "WINDOWS-1252" }, { "iso8859-1", "WINDOWS-1252" },
	{ "latin1", "WINDOWS-1252" }, { "iso_8859-1", "WINDOWS-1252" },
	{ "ks_c_5601-1987", "CP949" },
};

static const char *canonical(const char *name)
{
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcasecmp(name, aliases[i].alias) == 0)
			return aliases[i].name;
	return name;
}

size_t charset_utf8_seqlen(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Could p[0..n) be the start of a valid sequence that more bytes complete? */
static bool utf8_prefix(const unsigned char *p, size_t n)
{
	unsigned char tmp[4] = { 0 };
	size_t need = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
	if (p[0] < 0xc2 || p[0] > 0xf4 || n >= need)
		return false;
	memcpy(tmp, p, n);
	/* complete it with the smallest continuation bytes that could follow */
	for (size_t i = n; i < need; i++)
		tmp[i] = 0x80;
	if (charset_utf8_seqlen(tmp, tmp + need) == need)
		return true;
	/* E0 needs A0+, F0 needs 90+: try the largest too */
	for (size_t i = n; i < need; i++)
		tmp[i] = 0xbf;
	return charset_utf8_seqlen(tmp, tmp + need) == need;
}

static size_t put_utf8(uint32_t c, char *o);

/* One UCS-4LE code point from iconv, as UTF-8 (U+FFFD if it is no Unicode scalar). */
static void put_cp(const unsigned char *b, char **out, size_t *left)
{
	uint32_t c = b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		c = 0xfffd;
	size_t w = put_utf8(c, *out);
	*out += w;
	*left -= w;
}

/* One step: convert what fits.  Returns input consumed; *incomplete when it stopped at
 * a cut sequence (only when more input may follow). */
static size_t step(struct charset_conv *conv, const unsigned char *in, size_t n, bool more,
		   char **out, size_t *left, bool *incomplete)
{
	size_t i = 0;

	*incomplete = false;
	if (conv->cd == (iconv_t)-1) {
		while (i < n) {
			if (in[i] < 0x80) {
				/* a run of ASCII at once (mail text is mostly ASCII: one
				 * memcpy, not one per byte; SEARCH BODY reads it all) */
				size_t j = i, lim = n - i < *left ? n : i + *left;
				while (j < lim && in[j] < 0x80)
					j++;
				if (j == i)
					break;  /* out is full */
				memcpy(*out, in + i, j - i); /* BOUNDS: j - i <= *left */
				*out += j - i;
				*left -= j - i;
				i = j;
				continue;
			}
			size_t k = charset_utf8_seqlen(in + i, in + n);
			if (k == 0 && more && utf8_prefix(in + i, n - i)) {
				*incomplete = true;
				break;
			}
			const char *src = k ? (const char *)in + i : REPLACEMENT;
			size_t w = k ? k : 3;
			if (*left < w)
				break;
			memcpy(*out, src, w);
			*out += w;
			*left -= w;
			i += k ? k : 1;
		}
		return i;
	}
	while (i < n && *left >= 4) {
		/* iconv writes UCS-4 code points; we encode them, so whatever iconv lets
		 * through (glibc passes code points past U+10FFFF) the output is valid
		 * (1024 at a time: each iconv() call costs ~2 us in glibc's set-up, so 64 made
		 * an 8-bit charset convert at 25 MB/s instead of 400; SEARCH BODY reads all) */
		unsigned char cps[1024 * 4];
		size_t maxcp = *left / 4 < 1024 ? *left / 4 : 1024;
		char *ip = (char *)(uintptr_t)(in + i), *cp = (char *)cps;
		size_t ileft = n - i, cpleft = maxcp * 4;
		size_t r = iconv(conv->cd, &ip, &ileft, &cp, &cpleft);
		int err = errno;
		i = n - ileft;
		size_t ncp = (maxcp * 4 - cpleft) / 4;
		/* BOUNDS: at most 4 bytes per code point, and maxcp <= *left / 4 */
		for (size_t k = 0; k < ncp; k++)
			put_cp(cps + 4 * k, out, left);
		if (r != (size_t)-1)
			break;
		if (err == E2BIG) {
			if (ncp > 0)
				continue;
			break;
		}
		if (err == EINVAL && more) {
			*incomplete = true;
			break;
		}
		/* EILSEQ, or a cut sequence at the very end */
		if (*left < 3)
			break;
		memcpy(*out, REPLACEMENT, 3);
		*out += 3;
		*left -= 3;
		i++;
	}
	return i;
}

int charset_to_utf8_begin(const char *charset, struct charset_conv **conv_r,
			  const char **error_r)
{
	if (strlen(charset) > CHARSET_MAX_NAME) {
		*error_r = "charset name too long";
		return -1;
	}
	const char *name = canonical(charset);
	iconv_t cd = (iconv_t)-1;
	if (strcmp(name, "UTF-8") != 0) {
		/* "//" in a name would pass iconv options (TRANSLIT, IGNORE): not ours */
		if (strchr(name, '/') != NULL || name[0] == '\0' ||
		    (cd = iconv_open("UCS-4LE", name)) == (iconv_t)-1) {
			*error_r = "unknown charset";
			return -1;
		}
	}
	struct charset_conv *conv = xcalloc(1, sizeof(*conv));
	conv->cd = cd;
	*conv_r = conv;
	return 0;
}

size_t charset_to_utf8_convert(struct charset_conv *conv, const char *in, size_t len,
			       char *out, size_t out_size, size_t *consumed_r)
{
	char *o = out;
	size_t left = out_size, i = 0;
	bool inc;

	while (conv->pending_len > 0) {
		unsigned char tmp[PENDING_MAX];
		size_t k = PENDING_MAX - conv->pending_len;
		if (k > len - i)
			k = len - i;
		memcpy(tmp, conv->pending, conv->pending_len);
		memcpy(tmp + conv->pending_len, in + i, k);
		size_t n = conv->pending_len + k;
		size_t c = step(conv, tmp, n, true, &o, &left, &inc);
		if (c == 0) {
			if (inc && n < PENDING_MAX && i + k == len) {
				/* still cut: keep all of it */
				memcpy(conv->pending, tmp, n);
				conv->pending_len = n;
				*consumed_r = len;
				return (size_t)(o - out);
			}
			if (!inc || left < 3) {
				*consumed_r = i;
				return (size_t)(o - out); /* out is full */
			}
			/* PENDING_MAX bytes and still incomplete: junk */
			memcpy(o, REPLACEMENT, 3);
			o += 3;
			left -= 3;
			c = 1;
		}
		if (c >= conv->pending_len) {
			i += c - conv->pending_len;
			conv->pending_len = 0;
		} else {
			memmove(conv->pending, conv->pending + c, conv->pending_len - c);
			conv->pending_len -= c;
		}
	}
	for (;;) {
		i += step(conv, (const unsigned char *)in + i, len - i, true, &o, &left, &inc);
		if (!inc)
			break;
		if (len - i < PENDING_MAX) {
			memcpy(conv->pending, in + i, len - i);
			conv->pending_len = len - i;
			i = len;
			break;
		}
		/* "incomplete" with PENDING_MAX bytes left: junk, one byte of it */
		if (left < 3)
			break;
		memcpy(o, REPLACEMENT, 3);
		o += 3;
		left -= 3;
		i++;
	}
	*consumed_r = i;
	return (size_t)(o - out);
}

size_t charset_to_utf8_end(struct charset_conv **convp, char *out, size_t out_size)
{
	struct charset_conv *conv = *convp;
	char *o = out;
	size_t left = out_size;
	bool inc;

	if (conv == NULL)
		return 0;
	/* BOUNDS: PENDING_MAX bytes give at most 3 * PENDING_MAX < CHARSET_MIN_OUT */
	size_t i = 0;
	while (i < conv->pending_len) {
		size_t c = step(conv, conv->pending + i, conv->pending_len - i, false, &o,
				&left, &inc);
		if (c == 0)
			break;
		i += c;
	}
	if (conv->cd != (iconv_t)-1) {
		/* a converter may hold a character back (CP1255 waits for a combining
		 * mark): the reset writes it */
		unsigned char cps[4 * 4];
		char *cp = (char *)cps;
		size_t cpleft = left / 4 < 4 ? left / 4 * 4 : sizeof(cps);
		iconv(conv->cd, NULL, NULL, &cp, &cpleft);
		for (unsigned char *b = cps; b < (unsigned char *)cp; b += 4)
			put_cp(b, &o, &left);
		iconv_close(conv->cd);
	}
	free(conv);
	*convp = NULL;
	return (size_t)(o - out);
}

bool charset_is_known(const char *charset)
{
	struct charset_conv *conv;
	const char *error;
	char tmp[CHARSET_MIN_OUT];

	if (charset_to_utf8_begin(charset, &conv, &error) < 0)
		return false;
	charset_to_utf8_end(&conv, tmp, sizeof(tmp));
	return true;
}

char *charset_to_utf8_str(const char *charset, const char *in, size_t len, size_t *len_r,
			  const char **error_r)
{
	struct charset_conv *conv;
	size_t cap = len + CHARSET_MIN_OUT + 1, o = 0, i = 0;
	char *buf;

	if (charset_to_utf8_begin(charset, &conv, error_r) < 0)
		return NULL;
	buf = xmalloc(cap);
	for (;;) {
		if (cap - o < CHARSET_MIN_OUT + 1) {
			cap *= 2; /* BOUNDS: output is a small multiple of len */
			buf = xrealloc(buf, cap);
		}
		size_t used;
		o += charset_to_utf8_convert(conv, in + i, len - i, buf + o, cap - o - 1, &used);
		i += used;
		if (i == len)
			break;
	}
	if (cap - o < CHARSET_MIN_OUT + 1) {
		cap += CHARSET_MIN_OUT + 1;
		buf = xrealloc(buf, cap);
	}
	o += charset_to_utf8_end(&conv, buf + o, cap - o - 1);
	buf[o] = '\0';
	*len_r = o;
	return buf;
}

bool charset_utf8_is_valid(const char *in, size_t len)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + len;
	while (p < end) {
		size_t k = charset_utf8_seqlen(p, end);
		if (k == 0)
			return false;
		p += k;
	}
	return true;
}

char *charset_utf8_sanitize(const char *in, size_t len, size_t *len_r)
{
	const char *error;
	char *s = charset_to_utf8_str("UTF-8", in, len, len_r, &error);
	return s; /* UTF-8 is always known */
}

/* Simple case folding of one code point (charset.h lists the ranges). */
static uint32_t fold(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c >= 0xc0 && c <= 0xde && c != 0xd7)
		return c + 32;
	if (c >= 0x100 && c <= 0x17f) {
		if (c == 0x130)
			return 'i';
		if (c == 0x178)
			return 0xff;
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
			return c & 1 ? c + 1 : c;
		if (c == 0x138 || c == 0x149 || c == 0x17f)
			return c == 0x17f ? 's' : c;
		return c & 1 ? c : c + 1;
	}
	if (c >= 0x370 && c <= 0x3ff) {
		if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2)
			return c + 32;
		if (c == 0x386)
			return 0x3ac;
		if (c >= 0x388 && c <= 0x38a)
			return c + 37;
		if (c == 0x38c)
			return 0x3cc;
		if (c == 0x38e || c == 0x38f)
			return c + 63;
		if (c == 0x3c2)
			return 0x3c3;
		return c;
	}
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	if (c >= 0x410 && c <= 0x42f)
		return c + 32;
	if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf))
		return c & 1 ? c : c + 1;
	return c;
}

static size_t put_utf8(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

char *charset_search_fold(const char *in, size_t len, size_t *len_r)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + len;
	/* BOUNDS: one byte becomes at most 3 (U+FFFD); a sequence never grows */
	char *out = xmalloc(len * 3 + 1);
	size_t o = 0;

	while (p < end) {
		if (*p < 0x80) {        /* ASCII: folded in place, no decoding */
			out[o++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			p++;
			continue;
		}
		size_t k = charset_utf8_seqlen(p, end);
		if (k == 0) {
			memcpy(out + o, REPLACEMENT, 3);
			o += 3;
			p++;
			continue;
		}
		uint32_t c = p[0];
		if (k == 2)
			c = ((c & 0x1fu) << 6) | (p[1] & 0x3fu);
		if (k >= 3) {
			/* outside the folded ranges: copied as it is */
			memcpy(out + o, p, k);
			o += k;
			p += k;
			continue;
		}
		o += put_utf8(fold(c), out + o);
		p += k;
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}
