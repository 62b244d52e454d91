/* smtp_response.c, the client's reply parser: a table of byte streams (one or more
 * replies, or garbage) with the replies expected and whether the stream ends in an
 * error; each fed whole, one byte at a time and in pseudo-random chunks, so a line split
 * anywhere, even between CR and LF, gives the same result.  The limits at max and max+1,
 * and EHLO keyword extraction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "smtp/smtp_response.h"
#include "unit.h"

struct want {
	unsigned code;
	const char *enh;          /* "" for none */
	size_t nlines;
	const char *first, *last; /* text of the first and last line */
};

struct rcase {
	const char *in;
	struct want w[3];
	size_t nw;
	bool error;               /* the stream ends in a protocol error */
};

static const struct rcase cases[] = {
	{ "220 mail.example ESMTP\r\n", { { 220, "", 1, "mail.example ESMTP", "mail.example ESMTP" } }, 1, false },
	{ "250 2.1.0 Ok\r\n", { { 250, "2.1.0", 1, "2.1.0 Ok", "2.1.0 Ok" } }, 1, false },
	{ "250-mail.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
	  { { 250, "", 3, "mail.example", "8BITMIME" } }, 1, false },
	{ "550-5.1.1 No such\r\n550 5.1.1 user\r\n",
	  { { 550, "5.1.1", 2, "5.1.1 No such", "5.1.1 user" } }, 1, false },
	/* pipelined replies in one stream */
	{ "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n",
	  { { 250, "2.1.0", 1, "2.1.0 Ok", "2.1.0 Ok" }, { 250, "2.1.5", 1, "2.1.5 Ok", "2.1.5 Ok" },
	    { 354, "", 1, "Go ahead", "Go ahead" } }, 3, false },
	/* code only, with and without SP; "-" with no text */
	{ "250\r\n", { { 250, "", 1, "", "" } }, 1, false },
	{ "250 \r\n", { { 250, "", 1, "", "" } }, 1, false },
	{ "250-\r\n250 x\r\n", { { 250, "", 2, "", "x" } }, 1, false },
	/* tolerated: bare LF */
	{ "250-a\n250 b\n", { { 250, "", 2, "a", "b" } }, 1, false },
	/* an enhanced code of the wrong class, or malformed, is text */
	{ "250 5.1.1 odd\r\n", { { 250, "", 1, "5.1.1 odd", "5.1.1 odd" } }, 1, false },
	{ "550 5.1.1x\r\n", { { 550, "", 1, "5.1.1x", "5.1.1x" } }, 1, false },
	{ "550 5.1000.1 x\r\n", { { 550, "", 1, "5.1000.1 x", "5.1000.1 x" } }, 1, false },
	{ "550 5.1.1\r\n", { { 550, "5.1.1", 1, "5.1.1", "5.1.1" } }, 1, false },
	{ "451 4.999.999 x\r\n", { { 451, "4.999.999", 1, "4.999.999 x", "4.999.999 x" } }, 1, false },
	/* UTF-8 and HTAB in the text */
	{ "550 5.1.1 j\xc3\xb6rg\tunknown\r\n",
	  { { 550, "5.1.1", 1, "5.1.1 j\xc3\xb6rg\tunknown", "5.1.1 j\xc3\xb6rg\tunknown" } }, 1, false },
	/* errors */
	{ "250-a\r\n251 b\r\n", { { 0 } }, 0, true },
	{ "250-a\r\n550 b\r\n", { { 0 } }, 0, true },
	{ "25 short\r\n", { { 0 } }, 0, true },
	{ "2500 x\r\n", { { 0 } }, 0, true },
	{ "250x\r\n", { { 0 } }, 0, true },
	{ "160 x\r\n", { { 0 } }, 0, true },
	{ "610 x\r\n", { { 0 } }, 0, true },
	{ "260 x\r\n", { { 0 } }, 0, true },
	{ "2a0 x\r\n", { { 0 } }, 0, true },
	{ "\r\n", { { 0 } }, 0, true },
	{ "250 a\rb\r\n", { { 0 } }, 0, true },
	{ "250 a\x01\r\n", { { 0 } }, 0, true },
	{ "HTTP/1.1 400 Bad Request\r\n", { { 0 } }, 0, true },
	/* a good reply, then garbage: the first is returned */
	{ "250 ok\r\nxyz\r\n", { { 250, "", 1, "ok", "ok" } }, 1, true },
};

/* Feed in[0..len) (seed 0: whole, 1: byte by byte, else random chunks); record the
 * replies; *error_r: ended in an error. */
static size_t run(const char *in, size_t len, unsigned seed, struct want *got, size_t max,
		  bool *error_r)
{
	static struct smtp_response_parser p;
	uint32_t x = seed * 2654435761u + 7;
	size_t i = 0, n = 0;

	smtp_response_init(&p);
	*error_r = false;
	while (i < len) {
		size_t c = seed == 0 ? len - i : seed == 1 ? 1 : 1 + ((x = x * 1103515245u + 12345u) >> 16) % 7;
		if (c > len - i)
			c = len - i;
		size_t off = 0;
		while (off < c) {
			size_t used;
			const char *err;
			int r = smtp_response_feed(&p, in + i + off, c - off, &used, &err);
			if (r < 0) {
				*error_r = true;
				CHECK(err != NULL && p.error == err);
				/* final: feeding again fails too */
				CHECK(smtp_response_feed(&p, "250 ok\r\n", 8, &used, &err) == -1);
				return n;
			}
			CHECK(used <= c - off);
			off += used;
			if (r == 1 && n < max) {
				got[n].code = p.resp.code;
				got[n].enh = p.resp.enh_given ? strdup(p.resp.enh) : strdup("");
				got[n].nlines = p.resp.nlines;
				got[n].first = strdup(p.resp.lines[0]);
				got[n].last = strdup(p.resp.lines[p.resp.nlines - 1]);
				CHECK(strlen(got[n].last) == p.resp.line_len[p.resp.nlines - 1]);
				n++;
			}
			if (r == 0)
				CHECK(off == c); /* short of a reply, everything is taken */
		}
		i += c;
	}
	return n;
}

static void test_table(void)
{
	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		for (unsigned seed = 0; seed < 8; seed++) {
			struct want got[4];
			bool err;
			size_t n = run(cases[t].in, strlen(cases[t].in), seed, got, 4, &err);
			if (n != cases[t].nw || err != cases[t].error)
				fprintf(stderr, "case %zu seed %u: %zu replies, error %d\n", t, seed, n, err);
			CHECK(n == cases[t].nw);
			CHECK(err == cases[t].error);
			for (size_t k = 0; k < n && k < cases[t].nw; k++) {
				const struct want *w = &cases[t].w[k];
				CHECK(got[k].code == w->code);
				CHECK_STR(got[k].enh, w->enh);
				CHECK(got[k].nlines == w->nlines);
				CHECK_STR(got[k].first, w->first);
				CHECK_STR(got[k].last, w->last);
			}
			for (size_t k = 0; k < n; k++) {
				free((char *)got[k].enh);
				free((char *)got[k].first);
				free((char *)got[k].last);
			}
		}
	}
	/* a NUL in a line */
	struct want got[1];
	bool err;
	CHECK(run("250 a\0b\r\n", 9, 0, got, 1, &err) == 0 && err);
	CHECK(run("250 a\0b\r\n", 9, 1, got, 1, &err) == 0 && err);
}

static void test_limits(void)
{
	size_t cap = SMTP_MAX_REPLY_SIZE * 2;
	char *s = malloc(cap);
	struct want got[1];
	bool err;
	size_t n;

	/* one line of SMTP_MAX_REPLY_LINE_PEER bytes with CRLF, and one byte more */
	memcpy(s, "250 ", 4);
	memset(s + 4, 'x', SMTP_MAX_REPLY_LINE_PEER - 6);
	memcpy(s + SMTP_MAX_REPLY_LINE_PEER - 2, "\r\n", 2);
	for (unsigned seed = 0; seed < 3; seed++) {
		n = run(s, SMTP_MAX_REPLY_LINE_PEER, seed, got, 1, &err);
		CHECK(n == 1 && !err);
		if (n == 1) {
			CHECK(strlen(got[0].last) == SMTP_MAX_REPLY_LINE_PEER - 6);
			free((char *)got[0].enh);
			free((char *)got[0].first);
			free((char *)got[0].last);
		}
	}
	memcpy(s, "250 ", 4);
	memset(s + 4, 'x', SMTP_MAX_REPLY_LINE_PEER - 5);
	memcpy(s + SMTP_MAX_REPLY_LINE_PEER - 1, "\r\n", 2);
	for (unsigned seed = 0; seed < 3; seed++)
		CHECK(run(s, SMTP_MAX_REPLY_LINE_PEER + 1, seed, got, 1, &err) == 0 && err);
	/* SMTP_MAX_REPLY_LINES lines, and one more */
	size_t o = 0;
	for (int i = 0; i < SMTP_MAX_REPLY_LINES; i++) {
		memcpy(s + o, i + 1 < SMTP_MAX_REPLY_LINES ? "250-x\r\n" : "250 x\r\n", 7);
		o += 7;
	}
	n = run(s, o, 1, got, 1, &err);
	CHECK(n == 1 && !err && got[0].nlines == SMTP_MAX_REPLY_LINES);
	if (n == 1) {
		free((char *)got[0].enh);
		free((char *)got[0].first);
		free((char *)got[0].last);
	}
	memcpy(s + o - 7, "250-x\r\n250 x\r\n", 14);
	CHECK(run(s, o + 7, 0, got, 1, &err) == 0 && err);
	/* the total: lines of 2000 bytes, a reply past SMTP_MAX_REPLY_SIZE */
	o = 0;
	while (o < SMTP_MAX_REPLY_SIZE + 2000) {
		memcpy(s + o, "250-", 4);
		memset(s + o + 4, 'y', 1994);
		memcpy(s + o + 1998, "\r\n", 2);
		o += 2000;
	}
	CHECK(run(s, o, 0, got, 1, &err) == 0 && err);
	/* exactly SMTP_MAX_REPLY_SIZE bytes: accepted */
	o = 0;
	size_t left = SMTP_MAX_REPLY_SIZE;
	while (left > 0) {
		size_t l = left > 2000 + 6 ? 2000 : left;
		memcpy(s + o, l == left ? "250 " : "250-", 4);
		memset(s + o + 4, 'z', l - 6);
		memcpy(s + o + l - 2, "\r\n", 2);
		o += l;
		left -= l;
	}
	n = run(s, o, 0, got, 1, &err);
	CHECK(n == 1 && !err);
	if (n == 1) {
		free((char *)got[0].enh);
		free((char *)got[0].first);
		free((char *)got[0].last);
	}
	free(s);
}

static void test_ehlo(void)
{
	static struct smtp_response_parser p;
	struct smtp_ehlo e;
	size_t used;
	const char *err;
	static const char in[] =
		"250-mx.example Hello\r\n250-size 52428800\r\n250-AUTH=PLAIN LOGIN\r\n"
		"250-AUTH CRAM-MD5 login\r\n250-STARTTLS\r\n250-binarymime\r\n"
		"250-DSNX\r\n250-XCLIENT NAME\r\n250 ENHANCEDSTATUSCODES\r\n";

	smtp_response_init(&p);
	CHECK(smtp_response_feed(&p, in, sizeof(in) - 1, &used, &err) == 1);
	CHECK(smtp_response_ehlo(&p.resp, &e) == 0);
	CHECK(e.exts == (SMTP_EHLO_SIZE | SMTP_EHLO_AUTH | SMTP_EHLO_STARTTLS |
			 SMTP_EHLO_BINARYMIME | SMTP_EHLO_ENHANCEDSTATUSCODES));
	CHECK(e.size_max == 52428800);
	CHECK(e.auth_mechs == (SMTP_EHLO_AUTH_PLAIN | SMTP_EHLO_AUTH_LOGIN));
	/* SIZE without a number, or a bad one: announced, no limit known */
	static const char in2[] = "250-h\r\n250-SIZE\r\n250 SIZE 12x\r\n";
	smtp_response_init(&p);
	CHECK(smtp_response_feed(&p, in2, sizeof(in2) - 1, &used, &err) == 1);
	CHECK(smtp_response_ehlo(&p.resp, &e) == 0 && e.exts == SMTP_EHLO_SIZE && e.size_max == 0);
	/* not a 250 */
	smtp_response_init(&p);
	CHECK(smtp_response_feed(&p, "502 5.5.1 no\r\n", 14, &used, &err) == 1);
	CHECK(smtp_response_ehlo(&p.resp, &e) == -1);
	/* every keyword the client uses, in any case; REQUIRETLS (RFC 8689) and others
	 * that the client does not use are ignored; a prefix is no keyword */
	static const char in3[] =
		"250-h\r\n250-pipelining\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n"
		"250-DSN\r\n250-REQUIRETLS\r\n250-STARTTLSX\r\n250-8BITMIMEX\r\n"
		"250 AUTH SCRAM-SHA-256 XOAUTH2\r\n";
	smtp_response_init(&p);
	CHECK(smtp_response_feed(&p, in3, sizeof(in3) - 1, &used, &err) == 1);
	CHECK(smtp_response_ehlo(&p.resp, &e) == 0);
	CHECK(e.exts == (SMTP_EHLO_PIPELINING | SMTP_EHLO_8BITMIME | SMTP_EHLO_SMTPUTF8 |
			 SMTP_EHLO_CHUNKING | SMTP_EHLO_DSN | SMTP_EHLO_AUTH));
	CHECK(e.auth_mechs == 0);
	/* HELO-style single line: no extensions */
	smtp_response_init(&p);
	CHECK(smtp_response_feed(&p, "250 mx.example\r\n", 16, &used, &err) == 1);
	CHECK(smtp_response_ehlo(&p.resp, &e) == 0 && e.exts == 0);
}

int main(void)
{
	test_table();
	test_limits();
	test_ehlo();
	return unit_done("test_smtp_response");
}
