/* smtp_received.c: the Received: field byte-exact for each protocol name (RFC 3848,
 * RFC 6531), with and without TLS, rDNS, HELO and a single recipient; folding under 78
 * columns and never over 998 with the longest inputs; hostile HELO and recipient text
 * that must not break out of the field; and the Received: counter fed whole, byte by
 * byte and in chunks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "smtp/smtp_received.h"
#include "unit.h"

/* 2026-11-27 20:43:57 UTC */
#define T0 1795812237

static const struct smtp_received base = {
	.helo = "client.example", .helo_valid = true, .rdns = "rdns.example",
	.addr = "192.0.2.7", .by = "mail.example", .esmtp = true, .queue_id = "4F2A1C",
	.time = T0, .tz_min = 0,
};

/* every line of buf[0..len) ends in CRLF, is <= max characters, continuation lines
 * start with HTAB, and no CR or LF appears elsewhere */
static bool lines_ok(const char *buf, size_t len, size_t max)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\r') {
			if (i + 1 >= len || buf[i + 1] != '\n' || i - start > max)
				return false;
			start = i + 2;
			if (start < len && buf[start] != '\t')
				return false;
			i++;
		} else if (buf[i] == '\n' || buf[i] == '\0') {
			return false;
		}
	}
	return start == len;
}

static void check(const struct smtp_received *r, const char *want)
{
	char buf[SMTP_MAX_RECEIVED];
	size_t len;

	CHECK(smtp_received_format(r, buf, sizeof(buf), &len) == 0);
	CHECK_STR(buf, want);
	CHECK(len == strlen(want));
	CHECK(lines_ok(buf, len, 78));
	/* one byte short: refused */
	CHECK(smtp_received_format(r, buf, len, &len) == -1);
}

static void test_format(void)
{
	struct smtp_received r = base;

	check(&r, "Received: from client.example (rdns.example [192.0.2.7]) by mail.example\r\n"
		  "\twith ESMTP id 4F2A1C; Fri, 27 Nov 2026 20:43:57 +0000\r\n");
	r.esmtp = false;
	check(&r, "Received: from client.example (rdns.example [192.0.2.7]) by mail.example\r\n"
		  "\twith SMTP id 4F2A1C; Fri, 27 Nov 2026 20:43:57 +0000\r\n");
	r = base;
	r.auth = true;
	r.rcpt = "ned@example.org";
	r.rdns = NULL;
	r.tz_min = 60;
	check(&r, "Received: from client.example ([192.0.2.7]) by mail.example with ESMTPA\r\n"
		  "\tid 4F2A1C for <ned@example.org>; Fri, 27 Nov 2026 21:43:57 +0100\r\n");
	r = base;
	r.tls_version = "TLSv1.3";
	r.tls_cipher = "TLS_AES_256_GCM_SHA384";
	check(&r, "Received: from client.example (rdns.example [192.0.2.7]) by mail.example\r\n"
		  "\twith ESMTPS (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384) id 4F2A1C;\r\n"
		  "\tFri, 27 Nov 2026 20:43:57 +0000\r\n");
	r.auth = true;
	r.addr = "2001:db8::7";
	check(&r, "Received: from client.example (rdns.example [IPv6:2001:db8::7])\r\n"
		  "\tby mail.example with ESMTPSA\r\n"
		  "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384) id 4F2A1C;\r\n"
		  "\tFri, 27 Nov 2026 20:43:57 +0000\r\n");
	/* implicit TLS (465) after HELO is still ESMTPS: RFC 3848 has no SMTPS */
	r.esmtp = false;
	r.auth = false;
	r.addr = "192.0.2.7";
	r.tls_cipher = NULL;
	check(&r, "Received: from client.example (rdns.example [192.0.2.7]) by mail.example\r\n"
		  "\twith ESMTPS (using TLSv1.3) id 4F2A1C; Fri, 27 Nov 2026 20:43:57 +0000\r\n");
	/* SMTPUTF8 (RFC 6531 section 3.7.3), a UTF-8 recipient */
	static const char *utf8[4] = { "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" };
	for (int i = 0; i < 4; i++) {
		char buf[SMTP_MAX_RECEIVED];
		size_t len;
		r = base;
		r.utf8 = true;
		r.auth = (i & 1) != 0;
		r.tls_version = (i & 2) ? "TLSv1.2" : NULL;
		r.rcpt = "j\xc3\xb6rg@example.org";
		CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == 0);
		char want[32];
		snprintf(want, sizeof(want), " with %s ", utf8[i]);
		CHECK(strstr(buf, want) != NULL || strstr(buf, want + 1) != NULL);
		CHECK(strstr(buf, "for <j\xc3\xb6rg@example.org>;") != NULL);
	}
	/* a UTF-8 recipient without SMTPUTF8 (cannot happen after smtp_cmd) is left out */
	r = base;
	r.rcpt = "j\xc3\xb6rg@example.org";
	check(&r, "Received: from client.example (rdns.example [192.0.2.7]) by mail.example\r\n"
		  "\twith ESMTP id 4F2A1C; Fri, 27 Nov 2026 20:43:57 +0000\r\n");
}

static void test_hostile(void)
{
	struct smtp_received r = base;
	char buf[SMTP_MAX_RECEIVED];
	size_t len;

	/* a HELO that is no domain goes into a comment, defused */
	r.helo = "evil) by trusted.example with ESMTPSA; (x\\";
	r.helo_valid = false;
	check(&r, "Received: from [192.0.2.7] (rdns.example [192.0.2.7])\r\n"
		  "\t(helo=evil??by?trusted.example?with?ESMTPSA;??x?) by mail.example with ESMTP\r\n"
		  "\tid 4F2A1C; Fri, 27 Nov 2026 20:43:57 +0000\r\n");
	/* helo_valid set (the caller's bug) on a HELO with CR LF: still a comment */
	r = base;
	r.helo = "x\r\nX-Injected: 1";
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == 0);
	CHECK(strstr(buf, "\nX-Injected") == NULL && strstr(buf, "(helo=x??X-Injected:?1)") != NULL &&
	      lines_ok(buf, len, 78));
	/* no HELO at all: the address literal */
	r = base;
	r.helo = NULL;
	check(&r, "Received: from [192.0.2.7] (rdns.example [192.0.2.7]) by mail.example\r\n"
		  "\twith ESMTP id 4F2A1C; Fri, 27 Nov 2026 20:43:57 +0000\r\n");
	/* an rDNS name with odd bytes is left out */
	r = base;
	r.rdns = "a\r\nX-Injected: 1";
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == 0);
	CHECK(strstr(buf, "X-Injected") == NULL && lines_ok(buf, len, 78));
	/* a recipient with a control byte is left out */
	r = base;
	r.rcpt = "a\r\nX-Injected: 1@example.org";
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == 0);
	CHECK(strstr(buf, "X-Injected") == NULL && strstr(buf, " for ") == NULL);
	/* TLS names are reduced to a safe alphabet */
	r = base;
	r.tls_version = "TLS)v1";
	r.tls_cipher = "A\r\nB";
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == 0);
	CHECK(strstr(buf, "(using TLS?v1 with cipher A??B)") != NULL && lines_ok(buf, len, 78));
	/* the caller's values must be right */
	r = base;
	r.by = "bad host";
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == -1);
	r = base;
	r.addr = "192.0.2.7]";
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == -1);
	r = base;
	r.queue_id = "4F;2";
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == -1);
	r = base;
	r.time = (time_t)253402300800LL; /* year 10000 */
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == -1);
}

static void test_long(void)
{
	struct smtp_received r = base;
	char helo[SMTP_MAX_DOMAIN + 1], rdns[SMTP_MAX_DOMAIN + 1], rcpt[SMTP_MAX_PATH];
	char junk[SMTP_MAX_CMD_LINE];
	char buf[SMTP_MAX_RECEIVED];
	size_t len;

	/* the longest of everything: lines may pass 78 (a 255-octet name is one word), never
	 * 998, and the whole fits SMTP_MAX_RECEIVED */
	memset(helo, 'h', sizeof(helo) - 1);
	helo[sizeof(helo) - 1] = '\0';
	memset(rdns, 'r', sizeof(rdns) - 1);
	rdns[sizeof(rdns) - 1] = '\0';
	memset(rcpt, 'l', sizeof(rcpt) - 1);
	rcpt[sizeof(rcpt) - 3] = '\0';
	rcpt[64] = '@';
	r.helo = helo;
	r.rdns = rdns;
	r.by = rdns;
	r.rcpt = rcpt;
	r.addr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
	r.tls_version = "TLSv1.3";
	r.tls_cipher = "TLS_CHACHA20_POLY1305_SHA256_AND_SOME_MORE_TEXT_TO_BE_LONG_64";
	r.utf8 = r.auth = true;
	r.queue_id = "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789AB";
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == 0);
	CHECK(lines_ok(buf, len, 998));
	/* an invalid HELO of a whole command line: cut in the comment */
	memset(junk, 'j', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	r.helo = junk;
	r.helo_valid = false;
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == 0);
	CHECK(lines_ok(buf, len, 998));
	/* helo_valid but longer than a domain may be: not used as one */
	r.helo_valid = true;
	CHECK(smtp_received_format(&r, buf, sizeof(buf), &len) == 0);
	CHECK(strstr(buf, "from [IPv6:") != NULL);
}

static void test_count(void)
{
	static const struct {
		const char *in;
		unsigned want;
	} cases[] = {
		{ "Received: a\r\nReceived: b\r\n\r\nReceived: body\r\n", 2 },
		{ "received: a\r\n\tfolded\r\nRECEIVED : b\r\nX-Received: c\r\nSubject: x\r\n\r\n", 2 },
		{ "Subject: x\r\n\r\n", 0 },
		{ "", 0 },
		{ "Received: a\nReceived: b\n\nReceived: c\n", 2 },
		{ "Received: no end of header", 1 },
		{ "Received-SPF: pass\r\nReceivedX: y\r\n\r\n", 0 },
	};

	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		const char *in = cases[t].in;
		size_t len = strlen(in);
		CHECK(smtp_received_count(in, len) == cases[t].want);
		/* byte by byte, and in chunks of 3 */
		for (size_t step = 1; step <= 3; step += 2) {
			struct smtp_received_counter c;
			size_t i = 0;
			smtp_received_counter_init(&c);
			while (i < len) {
				size_t n = len - i < step ? len - i : step;
				size_t used = smtp_received_counter_feed(&c, in + i, n);
				CHECK(used <= n);
				if (used < n)
					break; /* the header ended */
				i += n;
			}
			CHECK(smtp_received_counter_finish(&c) == cases[t].want);
		}
	}
	/* the hop limit: SMTP_MAX_HOPS fields counted, and one more */
	size_t cap = (SMTP_MAX_HOPS + 1) * 14 + 3;
	char *s = malloc(cap);
	size_t o = 0;
	for (int i = 0; i <= SMTP_MAX_HOPS; i++) {
		memcpy(s + o, "Received: x\r\n", 13);
		o += 13;
	}
	memcpy(s + o, "\r\n", 2);
	CHECK(smtp_received_count(s, o + 2) == SMTP_MAX_HOPS + 1);
	CHECK(smtp_received_count(s, o - 13 + 0) == SMTP_MAX_HOPS);
	free(s);
}

int main(void)
{
	test_format();
	test_hostile();
	test_long();
	test_count();
	return unit_done("test_smtp_received");
}
