/* smtp_reply.c, writing replies: single and multi-line with and without enhanced status
 * codes, byte-exact; bad codes, bad status codes and text that would inject a line are
 * refused; the line limit at max and max+1; a buffer one byte short; the EHLO reply.
 * Every reply written is read back by smtp_response.c's parser. */
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "smtp/smtp_reply.h"
#include "smtp/smtp_response.h"
#include "unit.h"

/* what we write, the client parser reads back with the same code and lines */
static void roundtrip(const char *buf, size_t len, unsigned code, size_t nlines)
{
	static struct smtp_response_parser p;
	size_t used;
	const char *err;

	smtp_response_init(&p);
	CHECK(smtp_response_feed(&p, buf, len, &used, &err) == 1 && used == len);
	CHECK(p.resp.code == code && p.resp.nlines == nlines);
}

static void test_format(void)
{
	static const struct {
		unsigned code;
		const char *enh;
		const char *lines[3];
		size_t n;
		const char *want;
	} cases[] = {
		{ 250, "2.1.0", { "Sender OK" }, 1, "250 2.1.0 Sender OK\r\n" },
		{ 250, NULL, { "Sender OK" }, 1, "250 Sender OK\r\n" },
		{ 220, NULL, { "mail.example ESMTP" }, 1, "220 mail.example ESMTP\r\n" },
		{ 550, "5.1.1", { "No such user", "Try another" }, 2,
		  "550-5.1.1 No such user\r\n550 5.1.1 Try another\r\n" },
		{ 214, "2.0.0", { "a", "", "c" }, 3, "214-2.0.0 a\r\n214-2.0.0 \r\n214 2.0.0 c\r\n" },
		{ 354, NULL, { "End data with <CR><LF>.<CR><LF>" }, 1,
		  "354 End data with <CR><LF>.<CR><LF>\r\n" },
		{ 452, "4.5.3", { "Too many recipients" }, 1, "452 4.5.3 Too many recipients\r\n" },
		{ 250, "2.0.0", { "" }, 1, "250 2.0.0 \r\n" },
		{ 250, NULL, { "" }, 1, "250 \r\n" },
		{ 554, "5.7.1", { "t\xc3\xa9xt" }, 1, "554 5.7.1 t\xc3\xa9xt\r\n" },
		{ 421, "4.4.2", { "Timeout" }, 1, "421 4.4.2 Timeout\r\n" },
		{ 250, "2.999.999", { "x" }, 1, "250 2.999.999 x\r\n" },
	};
	char buf[256];
	size_t len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(smtp_reply_format(buf, sizeof(buf), cases[i].code, cases[i].enh,
					cases[i].lines, cases[i].n, &len) == 0);
		CHECK(len == strlen(cases[i].want) && memcmp(buf, cases[i].want, len) == 0);
		roundtrip(buf, len, cases[i].code, cases[i].n);
		/* one byte short of the reply: refused, not cut */
		CHECK(smtp_reply_format(buf, strlen(cases[i].want) - 1, cases[i].code, cases[i].enh,
					cases[i].lines, cases[i].n, &len) == -1);
	}
	/* exact size (no room for the NUL) is enough */
	CHECK(smtp_reply_format1(buf, 8, 250, NULL, "ok", &len) == 0 && len == 8);

	static const struct {
		unsigned code;
		const char *enh;
		const char *text;
	} bad[] = {
		{ 199, NULL, "x" }, { 600, NULL, "x" }, { 260, NULL, "x" }, { 0, NULL, "x" },
		{ 250, "5.1.1", "class differs" }, { 550, "2.0.0", "class differs" },
		{ 350, "3.0.0", "no class 3" }, { 250, "2.1", "short" }, { 250, "2.1.0.", "long" },
		{ 250, "2.01.0", "leading zero" }, { 250, "2.1000.0", "4 digits" },
		{ 250, "22.1.0", "class 2 digits" }, { 250, "2..0", "empty" }, { 250, "", "empty" },
		{ 250, "2.1.0 ", "trailing space" }, { 250, "2.1.x", "letter" },
		{ 250, NULL, "inject\r\n250 fake" }, { 250, NULL, "lf\nonly" },
		{ 250, NULL, "cr\ronly" }, { 250, NULL, "tab\tx" }, { 250, NULL, "del\x7f" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(smtp_reply_format1(buf, sizeof(buf), bad[i].code, bad[i].enh, bad[i].text,
					 &len) == -1);
	CHECK(smtp_reply_format(buf, sizeof(buf), 250, NULL, NULL, 0, &len) == -1);
	CHECK(smtp_reply_enh_valid(250, "2.0.0") && smtp_reply_enh_valid(451, "4.3.0") &&
	      smtp_reply_enh_valid(554, "5.7.1"));
}

static void test_limit(void)
{
	static char buf[4096];
	char *text = malloc(SMTP_MAX_REPLY_LINE);
	size_t len;

	/* "250 " text CRLF: at most SMTP_MAX_REPLY_LINE */
	memset(text, 'x', SMTP_MAX_REPLY_LINE - 6);
	text[SMTP_MAX_REPLY_LINE - 6] = '\0';
	CHECK(smtp_reply_format1(buf, sizeof(buf), 250, NULL, text, &len) == 0 &&
	      len == SMTP_MAX_REPLY_LINE);
	CHECK(smtp_reply_format1(buf, sizeof(buf), 250, "2.0.0", text, &len) == -1);
	text[SMTP_MAX_REPLY_LINE - 6] = 'x';
	text[SMTP_MAX_REPLY_LINE - 5] = '\0';
	CHECK(smtp_reply_format1(buf, sizeof(buf), 250, NULL, text, &len) == -1);
	/* with the status code and its SP: 10 more bytes */
	text[SMTP_MAX_REPLY_LINE - 12] = '\0';
	CHECK(smtp_reply_format1(buf, sizeof(buf), 250, "2.0.0", text, &len) == 0 &&
	      len == SMTP_MAX_REPLY_LINE);
	text[SMTP_MAX_REPLY_LINE - 12] = 'x';
	text[SMTP_MAX_REPLY_LINE - 11] = '\0';
	CHECK(smtp_reply_format1(buf, sizeof(buf), 250, "2.0.0", text, &len) == -1);
	free(text);
}

static void test_ehlo(void)
{
	static const char *kw[] = { "PIPELINING", "SIZE 10485760", "8BITMIME", "AUTH PLAIN LOGIN",
				    "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "DSN" };
	char buf[512];
	size_t len;

	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "mail.example", "Hello client.example", kw, 8,
			      &len) == 0);
	CHECK_STR(buf, "250-mail.example Hello client.example\r\n250-PIPELINING\r\n"
		       "250-SIZE 10485760\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n"
		       "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250 DSN\r\n");
	roundtrip(buf, len, 250, 9);
	/* and the client extracts the keywords */
	static struct smtp_response_parser p;
	struct smtp_ehlo e;
	size_t used;
	const char *err;
	smtp_response_init(&p);
	CHECK(smtp_response_feed(&p, buf, len, &used, &err) == 1);
	CHECK(smtp_response_ehlo(&p.resp, &e) == 0);
	CHECK(e.exts == (SMTP_EHLO_PIPELINING | SMTP_EHLO_SIZE | SMTP_EHLO_8BITMIME |
			 SMTP_EHLO_AUTH | SMTP_EHLO_ENHANCEDSTATUSCODES | SMTP_EHLO_SMTPUTF8 |
			 SMTP_EHLO_CHUNKING | SMTP_EHLO_DSN));
	CHECK(e.size_max == 10485760);
	CHECK(e.auth_mechs == (SMTP_EHLO_AUTH_PLAIN | SMTP_EHLO_AUTH_LOGIN));

	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "mail.example", NULL, NULL, 0, &len) == 0);
	CHECK_STR(buf, "250 mail.example\r\n");
	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "mail.example", "", kw, 1, &len) == 0);
	CHECK_STR(buf, "250-mail.example\r\n250 PIPELINING\r\n");
	static const char *bad1[] = { "-X" }, *bad2[] = { "" }, *bad3[] = { "A\r\n250 B" },
			  *bad4[] = { "SIZE\t1" }, *bad5[] = { "X=1" };
	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "m", NULL, bad1, 1, &len) == -1);
	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "m", NULL, bad2, 1, &len) == -1);
	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "m", NULL, bad3, 1, &len) == -1);
	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "m", NULL, bad4, 1, &len) == -1);
	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "m", NULL, bad5, 1, &len) == -1);
	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "", NULL, NULL, 0, &len) == -1);
	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "a b", NULL, NULL, 0, &len) == -1);
	CHECK(smtp_reply_ehlo(buf, sizeof(buf), "m\r\n", NULL, NULL, 0, &len) == -1);
	CHECK(smtp_reply_ehlo(buf, 20, "mail.example", NULL, kw, 8, &len) == -1);
}

int main(void)
{
	test_format();
	test_limit();
	test_ehlo();
	return unit_done("test_smtp_reply");
}
