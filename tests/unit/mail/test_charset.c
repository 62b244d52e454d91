/* charset.c: a table of (charset, input bytes, expected UTF-8); each case converted
 * whole, then split at every point into two chunks and fed one byte at a time with the
 * smallest output buffer; the aliases (gb2312/gbk -> GB18030, big5 -> BIG5-HKSCS),
 * unknown names, UTF-8 validation and the SEARCH fold. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/charset.h"
#include "unit.h"

struct ccase {
	const char *charset;
	const char *in;
	size_t in_len; /* 0: strlen */
	const char *out;
};

#define FFFD "\xef\xbf\xbd"
static const struct ccase cases[] = {
	{ "utf-8", "abc", 0, "abc" },
	{ "UTF-8", "J\xc3\xbcrgen", 0, "J\xc3\xbcrgen" },
	{ "utf-8", "a\xffz", 0, "a" FFFD "z" },
	{ "utf-8", "a\xc3", 0, "a" FFFD },                       /* cut at the end */
	{ "utf-8", "\xc0\xaf", 0, FFFD FFFD },                   /* overlong */
	{ "utf-8", "\xed\xa0\x80", 0, FFFD FFFD FFFD },          /* surrogate */
	{ "utf-8", "\xf4\x90\x80\x80", 0, FFFD FFFD FFFD FFFD }, /* > U+10FFFF */
	{ "utf-8", "\xf0\x9f\x98\x80", 0, "\xf0\x9f\x98\x80" },
	{ "utf-8", "a\0b", 3, "a\0b" },
	/* ASCII runs (copied as a run) between multi-byte and invalid bytes */
	{ "utf-8", "Hello, w\xc3\xb6rld and more ASCII\xe2\x82\xac tail\xff" "end.",
	  0, "Hello, w\xc3\xb6rld and more ASCII\xe2\x82\xac tail" FFFD "end." },
	{ "us-ascii", "caf\xc3\xa9", 0, "caf\xc3\xa9" },          /* us-ascii: as UTF-8 */
	{ "iso-8859-1", "caf\xe9 \x80", 0, "caf\xc3\xa9 \xe2\x82\xac" }, /* as cp1252 */
	{ "ISO-8859-2", "\xa3\xf3" "d\xbc", 0, "\xc5\x81\xc3\xb3" "d\xc5\xba" },
	{ "koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", 0,
	  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
	{ "gb2312", "\x81\x47", 0, "\xe4\xb8\x9f" },              /* GBK-only, labeled gb2312 */
	{ "GBK", "\xe9\x46", 0, "\xe9\x95\x95" },
	{ "gb18030", "\x94\x39\xfc\x36", 0, "\xf0\x9f\x98\x80" },  /* 4-byte form */
	{ "big5", "\x92\x77", 0, "\xe3\x90\xb5" },                /* HKSCS-only, labeled big5 */
	{ "iso-2022-jp", "\x1b$B$3$s$K$A$O\x1b(B", 0,
	  "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf" },
	{ "gb18030", "a\x81", 0, "a" FFFD },                      /* cut at the end */
	{ "shift_jis", "\x82\xa0x\xff", 0, "\xe3\x81\x82x" FFFD },
	{ "utf-16le", "a\0b\0", 4, "ab" },
	/* glibc lets code points past U+10FFFF through iconv: they become U+FFFD */
	{ "ucs-4be", "\0\x11\0\0\0\0\0a", 8, FFFD "a" },
	{ "utf&8", "\xf4\xbe\xbc\x8d!", 0, FFFD "!" },       /* iconv's UTF-8 (fuzz) */
	{ "cp1255", "\xe0", 0, "\xd7\x90" },
	{ "ks_c_5601-1987", "\xc7\xd1", 0, "\xed\x95\x9c" },                /* as CP949 */                   /* held back until the end */
};

static char *convert(const char *cs, const char *in, size_t len, size_t split, size_t step,
		     size_t out_size, size_t *len_r)
{
	struct charset_conv *conv;
	const char *err;
	char *out = xmalloc(len * 4 + 256);
	char *tmp = xmalloc(out_size);
	size_t o = 0, i = 0;

	if (charset_to_utf8_begin(cs, &conv, &err) < 0)
		return NULL;
	while (i < len) {
		size_t n = len - i;
		if (i < split && n > split - i)
			n = split - i;
		if (step > 0 && n > step)
			n = step;
		size_t used;
		size_t w = charset_to_utf8_convert(conv, in + i, n, tmp, out_size, &used);
		memcpy(out + o, tmp, w);
		o += w;
		i += used;
	}
	size_t w = charset_to_utf8_end(&conv, tmp, out_size);
	memcpy(out + o, tmp, w);
	o += w;
	free(tmp);
	*len_r = o;
	return out;
}

static void cases_run(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ccase *c = &cases[i];
		size_t len = c->in_len ? c->in_len : strlen(c->in);
		size_t olen = c->in_len && strcmp(c->charset, "utf-8") == 0 ? len : strlen(c->out);
		size_t n;
		const char *err;
		char *s = charset_to_utf8_str(c->charset, c->in, len, &n, &err);
		if (s == NULL || n != olen || memcmp(s, c->out, n) != 0)
			fprintf(stderr, "case %zu (%s) got <%s>\n", i, c->charset, s ? s : "NULL");
		CHECK(s != NULL && n == olen && memcmp(s, c->out, n) == 0);
		free(s);
		for (size_t split = 0; split <= len; split++) {
			s = convert(c->charset, c->in, len, split, 0, CHARSET_MIN_OUT, &n);
			CHECK(s != NULL && n == olen && memcmp(s, c->out, n) == 0);
			free(s);
		}
		s = convert(c->charset, c->in, len, 0, 1, CHARSET_MIN_OUT, &n);
		CHECK(s != NULL && n == olen && memcmp(s, c->out, n) == 0);
		free(s);
	}
}

static void misc(void)
{
	struct charset_conv *conv;
	const char *err = NULL;
	size_t n;

	CHECK(charset_to_utf8_begin("x-no-such-charset", &conv, &err) == -1 && err != NULL);
	CHECK(charset_to_utf8_str("x-no-such", "a", 1, &n, &err) == NULL);
	CHECK(!charset_is_known("x-no-such"));
	CHECK(!charset_is_known("UTF-8//TRANSLIT"));
	CHECK(!charset_is_known("utf-7/"));
	CHECK(!charset_is_known(""));
	char longname[CHARSET_MAX_NAME + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(!charset_is_known(longname));
	CHECK(charset_is_known("gb2312") && charset_is_known("BIG5") && charset_is_known("Utf-8"));
	CHECK(charset_is_known("windows-1251"));

	/* a long input through a small buffer: output fills, conversion resumes */
	size_t len = 100000;
	char *big = xmalloc(len);
	for (size_t i = 0; i < len; i += 2) {
		big[i] = '\xb0';
		big[i + 1] = '\xa1'; /* GB2312 "啊" -> e5 95 8a */
	}
	char *s = convert("gb2312", big, len, 0, 0, CHARSET_MIN_OUT, &n);
	CHECK(s != NULL && n == len / 2 * 3 && memcmp(s, "\xe5\x95\x8a", 3) == 0 &&
	      memcmp(s + n - 3, "\xe5\x95\x8a", 3) == 0);
	free(s);
	/* hostile: all invalid bytes give U+FFFD each (3x), never an error */
	memset(big, 0xff, len);
	s = charset_to_utf8_str("gbk", big, len, &n, &err);
	CHECK(s != NULL && n == len * 3);
	free(s);
	free(big);

	CHECK(charset_utf8_is_valid("J\xc3\xbcrgen", 7));
	CHECK(!charset_utf8_is_valid("J\xc3", 2));
	CHECK(!charset_utf8_is_valid("\xed\xbf\xbf", 3));
	s = charset_utf8_sanitize("a\x80" "b", 3, &n);
	CHECK_STR(s, "a" FFFD "b");
	free(s);
}

static void fold(void)
{
	static const char *const pairs[][2] = {
		{ "Hello WORLD", "hello world" },
		{ "J\xc3\x9c" "RGEN", "j\xc3\xbc" "rgen" },                 /* Ü */
		{ "\xc3\x97\xc3\x9f", "\xc3\x97\xc3\x9f" },                  /* × ß unchanged */
		{ "\xc5\x81\xc3\x93" "D\xc5\xb9", "\xc5\x82\xc3\xb3" "d\xc5\xba" }, /* ŁÓDŹ */
		{ "\xc5\xb8", "\xc3\xbf" },                                  /* Ÿ -> ÿ */
		{ "\xc4\xb0", "i" },                                         /* İ -> i */
		{ "\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91",               /* ΣΟΦΙΑ */
		  "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1" },
		{ "\xcf\x82", "\xcf\x83" },                                  /* ς -> σ */
		{ "\xce\x86", "\xce\xac" },                                  /* Ά -> ά */
		{ "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2",       /* ПРИВЕТ */
		  "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
		{ "\xd0\x81", "\xd1\x91" },                                  /* Ё -> ё */
		{ "\xe5\x95\x8a", "\xe5\x95\x8a" },                          /* CJK unchanged */
		{ "a\xff", "a" FFFD },
		{ "Mixed ASCII \xc3\x9c" "BER [x] AND \xce\xa3 Z@", "mixed ascii \xc3\xbc" "ber [x] and \xcf\x83 z@" },
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		size_t n, n2;
		char *s = charset_search_fold(pairs[i][0], strlen(pairs[i][0]), &n);
		CHECK_STR(s, pairs[i][1]);
		char *s2 = charset_search_fold(s, n, &n2);  /* idempotent */
		CHECK(n2 == n && memcmp(s, s2, n) == 0);
		free(s);
		free(s2);
	}
}

int main(void)
{
	cases_run();
	misc();
	fold();
	return unit_done("test_charset");
}
