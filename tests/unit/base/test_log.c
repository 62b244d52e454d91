/* log: log_sanitize(), the only way client text reaches a log line. */
#include <string.h>
#include "base/log.h"
#include "base/plimits.h"
#include "unit.h"

static const struct { const char *in; const char *out; } cases[] = {
	{ "ned", "ned" },
	{ "", "" },
	/* the characters a log parser (fail2ban, the tests) splits on */
	{ "a<b>c,d=e", "a?b?c?d?e" },
	{ "user\r\nrip=1.2.3.4", "user??rip?1.2.3.4" },
	{ "tab\there\x7f", "tab?here?" },
	/* well-formed UTF-8 stays: 2, 3 and 4 bytes */
	{ "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "j\xc3\xb6rg@b\xc3\xbc" "cher.example" },
	{ "\xe5\xbc\xa0\xe4\xb8\x89@163.test", "\xe5\xbc\xa0\xe4\xb8\x89@163.test" },
	{ "\xf0\x9f\x93\xa7", "\xf0\x9f\x93\xa7" },
	/* malformed: lone continuation, truncated, overlong, surrogate, beyond U+10FFFF */
	{ "a\x80z", "a?z" },
	{ "a\xc3", "a?" },
	{ "a\xc3z", "a?z" },
	{ "\xc0\xaf", "??" },
	{ "\xe0\x80\xaf", "???" },
	{ "\xed\xa0\x80", "???" },
	{ "\xf4\x90\x80\x80", "????" },
	{ "\xff\xfe", "??" },
	/* C1 controls and invisible characters that would disguise a line */
	{ "\xc2\x85x", "??x" },
	{ "evil\xe2\x80\xaeoc.exe", "evil???oc.exe" },
	{ "a\xe2\x80\x8b" "b", "a???b" },
	{ "a\xe2\x80\xa8" "b", "a???b" },
	{ "\xef\xbb\xbfx", "???x" },
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[LOG_MAX_FIELD + 1];
		const char *r = log_sanitize(cases[i].in, strlen(cases[i].in), out);
		CHECK(r == out);
		CHECK(strcmp(out, cases[i].out) == 0);
	}
}

static void test_cut(void)
{
	char in[LOG_MAX_FIELD + 10], out[LOG_MAX_FIELD + 1];
	memset(in, 'x', sizeof in);
	CHECK(strlen(log_sanitize(in, sizeof in, out)) == LOG_MAX_FIELD);
	/* a 2-byte sequence across the cut is not half kept */
	in[LOG_MAX_FIELD - 1] = '\xc3';
	in[LOG_MAX_FIELD] = '\xb6';
	log_sanitize(in, sizeof in, out);
	CHECK(strlen(out) == LOG_MAX_FIELD && out[LOG_MAX_FIELD - 1] == '?');
	/* one that ends at the cut is kept */
	in[LOG_MAX_FIELD - 2] = '\xc3';
	in[LOG_MAX_FIELD - 1] = '\xb6';
	log_sanitize(in, sizeof in, out);
	CHECK(memcmp(out + LOG_MAX_FIELD - 2, "\xc3\xb6", 2) == 0 && out[LOG_MAX_FIELD] == '\0');
	/* an embedded NUL is a control byte */
	CHECK(strcmp(log_sanitize("a\0b", 3, out), "a?b") == 0);
}

/* Every byte string of up to 3 bytes: never a delimiter, a control or a C1 byte pair out */
static void test_exhaustive(void)
{
	unsigned char in[3];
	char out[LOG_MAX_FIELD + 1];
	unsigned bad = 0;
	for (unsigned v = 0; v < 1u << 24; v += 7) {
		in[0] = (unsigned char)(v >> 16);
		in[1] = (unsigned char)(v >> 8);
		in[2] = (unsigned char)v;
		log_sanitize((const char *)in, 3, out);
		for (int i = 0; i < 3; i++) {
			unsigned char c = (unsigned char)out[i];
			if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == '=')
				bad++;
			if (c == 0xc2 && i < 2 && (unsigned char)out[i + 1] <= 0x9f)
				bad++;
		}
	}
	CHECK(bad == 0);
}

int main(void)
{
	test_cases();
	test_cut();
	test_exhaustive();
	return unit_done("log");
}
