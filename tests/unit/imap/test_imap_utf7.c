/* imap_utf7.h (the codec in mail/mutf7.c): a table of modified UTF-7 names with their
 * UTF-8 (both directions), a table
 * of non-canonical or broken ones that must be refused, UTF-8 name checks, and a round
 * trip over every BMP code point and some beyond. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_utf7.h"
#include "unit.h"

struct ucase {
	const char *utf7, *utf8;
};

static const struct ucase good[] = {
	{ "", "" },
	{ "INBOX", "INBOX" },
	{ "&-", "&" },
	{ "a&-b", "a&b" },
	{ "&AOQ-", "\xc3\xa4" },                               /* ä */
	{ "Entw&APw-rfe", "Entw\xc3\xbc" "rfe" },              /* Entwürfe */
	{ "&ZeVnLIqe-", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },   /* 日本語 (RFC 3501) */
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "&AOQA5A-", "\xc3\xa4\xc3\xa4" },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" },                    /* U+1F600: a surrogate pair */
	{ "x&2D3eANg93gA-y", "x\xf0\x9f\x98\x80\xf0\x9f\x98\x80y" },
	{ "&AKA-", "\xc2\xa0" },
	{ "&ThZ1TA-", "\xe4\xb8\x96\xe7\x95\x8c" },            /* 世界 */
	{ "&-&AOQ-&-", "&\xc3\xa4&" },
};

static const char *bad_utf7[] = {
	"&AGE-",            /* 'a' must be plain */
	"&ACY-",            /* '&' must be "&-" */
	"&ACA-",            /* ' ' */
	"&AOQ",             /* unterminated */
	"&",
	"a&",
	"&AOQ-&AOQ-",       /* adjacent shifts: one spelling only */
	"&AOR-",            /* leftover bits not 0 */
	"&AOQA-",           /* 6 leftover bits: a whole base64 character too many */
	"&AOQ=-",           /* padding */
	"&AO/-",            /* '/' is ',' in modified base64 */
	"&2D0-",            /* lone high surrogate */
	"&3gA-",            /* lone low surrogate */
	"&3gDYPQ-",         /* reversed pair */
	"&2D0AOQ-",         /* high then not low */
	"&AAA-",            /* U+0000 */
	"&AAE-",            /* a control character */
	"&AH8-",            /* DEL */
	"&AIU-",            /* C1 control */
	"a\tb",
	"a\xc3\xa4",        /* 8-bit */
	"\x7f",
};

static const char *bad_utf8[] = {
	"\xc3",             /* truncated */
	"\xc0\xaf",         /* overlong */
	"\xe0\x80\xaf",
	"\xed\xa0\x80",     /* surrogate */
	"\xf4\x90\x80\x80", /* past U+10FFFF */
	"\xff",
	"\x80",
	"a\x01",
	"a\x7f",
	"\xc2\x85",         /* C1 control (NEL) */
	"a\nb",
};

int main(void)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *out = NULL;
		size_t len;
		const char *err = NULL;
		CHECK(imap_utf7_to_utf8(good[i].utf7, strlen(good[i].utf7), &out, &len, &err) == 0);
		if (out != NULL) {
			CHECK_STR(out, good[i].utf8);
			CHECK(len == strlen(good[i].utf8));
			free(out);
			out = NULL;
		} else {
			fprintf(stderr, "utf7 %s: %s\n", good[i].utf7, err);
		}
		CHECK(imap_utf8_to_utf7(good[i].utf8, strlen(good[i].utf8), &out, &len, &err) == 0);
		if (out != NULL) {
			CHECK_STR(out, good[i].utf7);
			free(out);
		}
	}
	for (size_t i = 0; i < sizeof(bad_utf7) / sizeof(bad_utf7[0]); i++) {
		char *out = NULL;
		size_t len;
		const char *err = NULL;
		CHECK(imap_utf7_to_utf8(bad_utf7[i], strlen(bad_utf7[i]), &out, &len, &err) == -1 &&
		      err != NULL && out == NULL);
		if (out != NULL) {
			fprintf(stderr, "utf7 \"%s\" accepted as \"%s\"\n", bad_utf7[i], out);
			free(out);
		}
	}
	/* a NUL byte inside the name */
	{
		char *out = NULL;
		size_t len;
		const char *err;
		CHECK(imap_utf7_to_utf8("a\0b", 3, &out, &len, &err) == -1);
		CHECK(imap_utf8_to_utf7("a\0b", 3, &out, &len, &err) == -1);
		CHECK(imap_utf8_mailbox_valid("a\0b", 3, &err) == -1);
	}
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		char *out = NULL;
		size_t len;
		const char *err = NULL;
		CHECK(imap_utf8_mailbox_valid(bad_utf8[i], strlen(bad_utf8[i]), &err) == -1);
		CHECK(imap_utf8_to_utf7(bad_utf8[i], strlen(bad_utf8[i]), &out, &len, &err) == -1 &&
		      out == NULL);
	}
	const char *err;
	CHECK(imap_utf8_mailbox_valid("Sent/\xe5\x8f\x91\xe4\xbb\xb6", 11, &err) == 0);
	CHECK(imap_utf8_mailbox_valid("\xf4\x8f\xbf\xbf", 4, &err) == 0);   /* U+10FFFF */

	/* every code point from U+00A0 (bar surrogates) through U+FFFF and a sample beyond,
	 * alone and between ASCII: UTF-8 -> UTF-7 -> UTF-8 is the identity */
	int bad = 0;
	for (uint32_t cp = 0xa0; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 997) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		char u8[16];
		size_t n = 0;
		u8[n++] = 'x';
		if (cp < 0x800) {
			u8[n++] = (char)(0xc0 | cp >> 6);
		} else if (cp < 0x10000) {
			u8[n++] = (char)(0xe0 | cp >> 12);
			u8[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		} else {
			u8[n++] = (char)(0xf0 | cp >> 18);
			u8[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			u8[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		}
		u8[n++] = (char)(0x80 | (cp & 0x3f));
		u8[n++] = '&';
		char *s7 = NULL, *s8 = NULL;
		size_t l7, l8;
		if (imap_utf8_to_utf7(u8, n, &s7, &l7, &err) < 0 ||
		    imap_utf7_to_utf8(s7, l7, &s8, &l8, &err) < 0 || l8 != n ||
		    memcmp(s8, u8, n) != 0)
			bad++;
		free(s7);
		free(s8);
	}
	CHECK(bad == 0);
	return unit_done("test_imap_utf7");
}
