/* rfc2047.c: a table of header texts with the expected UTF-8, each decoded from an
 * exact-size copy and cut at every length (no crash, valid UTF-8, within the bound);
 * the encoder round trips through the decoder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/charset.h"
#include "mail/rfc2047.h"
#include "unit.h"

#define FFFD "\xef\xbf\xbd"
static const char *const cases[][2] = {
	{ "", "" },
	{ "plain text", "plain text" },
	{ "=?utf-8?q?J=C3=BCrgen?=", "J\xc3\xbcrgen" },
	{ "=?UTF-8?Q?J=c3=bcrgen?=", "J\xc3\xbcrgen" },                  /* lowercase hex */
	{ "=?utf-8?b?SsO8cmdlbg==?=", "J\xc3\xbcrgen" },
	{ "=?utf-8?B?SsO8cmdlbg?=", "J\xc3\xbcrgen" },                   /* no padding */
	{ "=?iso-8859-1?q?caf=E9?= au lait", "caf\xc3\xa9 au lait" },
	{ "=?ISO-8859-1?Q?a_b?=", "a b" },                               /* _ is space */
	{ "=?utf-8?q?a?= =?utf-8?q?b?=", "ab" },                         /* joined */
	{ "=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab" },                     /* folded */
	{ "=?utf-8?q?a?=  \t =?iso-8859-1?q?=E9?=", "a\xc3\xa9" },
	{ "=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c" },
	{ "=?utf-8?q?=C3?= =?utf-8?q?=BC?=", "\xc3\xbc" },               /* split character */
	{ "=?utf-8?b?w?= =?utf-8?b?vA==?=", FFFD },                      /* 6 bits: dropped */
	{ "=?gb2312?b?gUc=?=", "\xe4\xb8\x9f" },                          /* GBK in "gb2312" */
	{ "=?utf-8*en?q?hi?=", "hi" },                                   /* RFC 2231 language */
	{ "=?x-unknown?q?hi?=", "=?x-unknown?q?hi?=" },                  /* left as is */
	{ "=?utf-8?x?hi?=", "=?utf-8?x?hi?=" },
	{ "=?utf-8?q?hi", "=?utf-8?q?hi" },
	{ "=?utf-8?q?h i?=", "=?utf-8?q?h i?=" },
	{ "=??q?hi?=", "=??q?hi?=" },
	{ "=?utf-8?q?a=?= x", "a= x" },                                   /* bad escape kept */
	{ "=?utf-8?q?a=4?=", "a=4" },
	{ "x=?utf-8?q?a?=y", "xay" },                                    /* inside a word */
	{ "a\r\n b", "a b" },                                            /* unfolded */
	{ "caf\xe9", "caf" FFFD },                                       /* raw 8-bit */
	{ "=?utf-8?q?=FF?=", FFFD },
	{ "=?utf-8?q?a?= ", "a " },
	{ "=?=?utf-8?q?a?=", "=?a" },
	{ "=?utf&8?q?=F4=BE=BC=8D?=", FFFD },                             /* fuzz */
	{ "=?utf-8?q?=00?=", "" }, /* NUL: see main */
};

static void check_utf8_bound(const char *s, size_t n, size_t len)
{
	CHECK(charset_utf8_is_valid(s, n));
	CHECK(n <= len * 4 + 16);
	CHECK(s[n] == '\0');
}

int main(void)
{
	size_t n;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i][0]);
		char *copy = xmalloc(len ? len : 1);
		memcpy(copy, cases[i][0], len);
		char *s = rfc2047_decode(copy, len, &n);
		if (i == sizeof(cases) / sizeof(cases[0]) - 1) {
			CHECK(n == 1 && s[0] == '\0'); /* the NUL byte is kept, counted */
		} else {
			if (strcmp(s, cases[i][1]) != 0)
				fprintf(stderr, "case %zu <%s>\n", i, cases[i][0]);
			CHECK_STR(s, cases[i][1]);
			CHECK(n == strlen(cases[i][1]));
		}
		free(s);
		for (size_t k = 0; k <= len; k++) {
			s = rfc2047_decode(copy, k, &n);
			check_utf8_bound(s, n, k);
			free(s);
		}
		free(copy);
	}

	/* hostile: very many tiny words, an over-long word */
	size_t len = 200000;
	char *big = xmalloc(len + 1);
	for (size_t i = 0; i + 17 <= len; i += 17)
		memcpy(big + i, "=?utf-8?b?w7w?= ", 16), big[i + 16] = ' ';
	len = len / 17 * 17;
	char *s = rfc2047_decode(big, len, &n);
	CHECK(n == len / 17 * 2 + 2); /* the last two spaces stay */
	check_utf8_bound(s, n, len);
	free(s);
	memcpy(big, "=?utf-8?q?", 10);
	memset(big + 10, 'a', 2000);
	memcpy(big + 2010, "?=", 2);
	s = rfc2047_decode(big, 2012, &n);
	CHECK(n == 2012 && memcmp(s, big, 2012) == 0); /* over RFC2047_MAX_WORD: as is */
	free(s);
	/* exactly RFC2047_MAX_WORD bytes of encoded text: decoded; one more: as is */
	memcpy(big + 10 + RFC2047_MAX_WORD, "?=", 2);
	s = rfc2047_decode(big, 12 + RFC2047_MAX_WORD, &n);
	CHECK(n == RFC2047_MAX_WORD && s[0] == 'a');
	free(s);
	big[10 + RFC2047_MAX_WORD] = 'a';
	memcpy(big + 11 + RFC2047_MAX_WORD, "?=", 2);
	s = rfc2047_decode(big, 13 + RFC2047_MAX_WORD, &n);
	CHECK(n == 13 + RFC2047_MAX_WORD && s[0] == '=');
	free(s);
	free(big);

	/* encoder */
	static const char *const enc[] = {
		"plain", "", "J\xc3\xbcrgen M\xc3\xbcller",
		"\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a"
		"\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a"
		"\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a\xe5\x95\x8a",
		"looks =?like?= a word", "tab\there",
	};
	for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		char *e = rfc2047_encode(enc[i], strlen(enc[i]));
		/* no line longer than 76, only printable ASCII besides the folding */
		size_t col = 0, maxcol = 0;
		int bad = 0;
		for (const char *p = e; *p; p++) {
			if (*p == '\r' || *p == '\n')
				col = 0;
			else if (++col > maxcol)
				maxcol = col;
			if ((unsigned char)*p > 0x7e || ((unsigned char)*p < 0x20 &&
			    *p != '\r' && *p != '\n' && *p != '\t'))
				bad = 1;
		}
		CHECK(maxcol <= 76 && !bad);
		char *d = rfc2047_decode(e, strlen(e), &n);
		CHECK_STR(d, enc[i]);
		free(d);
		free(e);
	}
	char *e = rfc2047_encode("plain", 5);
	CHECK_STR(e, "plain");
	free(e);
	e = rfc2047_encode("\xc3\xbc", 2);
	CHECK_STR(e, "=?UTF-8?B?w7w=?=");
	free(e);
	return unit_done("test_rfc2047");
}
