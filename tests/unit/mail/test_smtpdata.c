/* smtpdata.c, the strict SMTP DATA reader: a table of inputs with the message, the bytes
 * left after the end and the problems found, each fed whole, one byte at a time and in
 * pseudo-random chunks; the 2023 SMTP-smuggling byte sequences; line and size limits
 * reported without losing the end; every string over a small alphabet; and the reader
 * over a real socket through conn (the bytes after the end stay for the next command). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "base/conn.h"
#include "base/plimits.h"
#include "base/util.h"
#include "mail/smtpdata.h"
#include "unit.h"

struct result {
	char *msg;
	size_t msg_len;
	size_t used;            /* input bytes taken */
	int done;
	unsigned flags;
	uint64_t lines, size, first_bad;
};

/* Feed in[0..len) in chunks (seed 0: whole, 1: one byte at a time, else random). */
static void feed(const char *in, size_t len, size_t line_max, uint64_t size_max,
		 unsigned seed, struct result *r)
{
	struct smtpdata d;
	uint32_t x = seed * 2654435761u + 7;
	size_t i = 0;

	memset(r, 0, sizeof(*r));
	r->msg = malloc(len + 2);
	smtpdata_init(&d, line_max, size_max);
	while (i < len && !d.done) {
		size_t n = seed == 0 ? len - i : seed == 1 ? 1 : 1 + ((x = x * 1103515245u + 12345u) >> 16) % 9;
		if (n > len - i)
			n = len - i;
		char *out = malloc(n + 1);
		size_t olen, used;
		int rc = smtpdata_parse(&d, in + i, n, out, &olen, &used);
		CHECK(olen <= n + 1);
		CHECK(used <= n);
		CHECK(rc == (d.done ? 1 : 0));
		if (rc == 0)
			CHECK(used == n); /* short of the end, everything is taken */
		memcpy(r->msg + r->msg_len, out, olen);
		r->msg_len += olen;
		i += used;
		free(out);
	}
	r->used = i;
	r->done = d.done;
	r->flags = d.flags;
	r->lines = d.lines;
	r->size = d.size;
	r->first_bad = d.first_bad_line;
}

struct data_case {
	const char *in;
	const char *msg;        /* the message as the reader gives it */
	int done;
	const char *rest;       /* bytes after the end (not taken) */
	unsigned flags;
};

#define BL SMTPDATA_BARE_LF
#define CR SMTPDATA_LONE_CR
static const struct data_case cases[] = {
	/* the end and dot-unstuffing */
	{ ".\r\n", "", 1, "", 0 },                                  /* empty message */
	{ "a\r\n.\r\n", "a\r\n", 1, "", 0 },
	{ "\r\n.\r\n", "\r\n", 1, "", 0 },
	{ "S: x\r\n\r\nhi\r\n.\r\nQUIT\r\n", "S: x\r\n\r\nhi\r\n", 1, "QUIT\r\n", 0 },
	{ "a\r\n..\r\n.\r\n", "a\r\n.\r\n", 1, "", 0 },
	{ "a\r\n..b\r\n.\r\n", "a\r\n.b\r\n", 1, "", 0 },
	{ "a\r\n.b\r\n.\r\n", "a\r\nb\r\n", 1, "", 0 },
	{ "a\r\n...\r\n.\r\n", "a\r\n..\r\n", 1, "", 0 },
	{ "..\r\n.\r\n", ".\r\n", 1, "", 0 },
	{ "a\r\n. \r\n.\r\n", "a\r\n \r\n", 1, "", 0 },
	{ "a\r\n.\r\n.\r\n", "a\r\n", 1, ".\r\n", 0 },              /* first end wins */
	{ "a.\r\n.\r\n", "a.\r\n", 1, "", 0 },
	/* not the end */
	{ "a\r\n.", "a\r\n", 0, "", 0 },
	{ "a\r\n.\r", "a\r\n", 0, "", 0 },
	{ "a\r\n", "a\r\n", 0, "", 0 },
	{ "a\r", "a", 0, "", 0 },
	/* bare LF and lone CR never end or split a line */
	{ "\n.\n", "\n.\n", 0, "", BL },
	{ "\r.\r", "\r.", 0, "", CR },                              /* last CR held back */
	{ "\n.\r\n", "\n.\r\n", 0, "", BL },
	{ "a\r\n.\n", "a\r\n\n", 0, "", BL },                       /* ".\n": the dot is stuffing */
	{ "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", 1, "", BL },
	{ "a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", 1, "", CR },
	{ "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", 1, "", BL },
	{ "a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", 1, "", BL },
	{ "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", 1, "", CR },
	{ "a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", 1, "", CR },
	{ "a\r\r\n.\r\n", "a\r\r\n", 1, "", CR },
	{ "a\n\r\n.\r\n", "a\n\r\n", 1, "", BL },
	{ "a\r\n\n.\r\n.\r\n", "a\r\n\n.\r\n", 1, "", BL },         /* "\n." is no line start */
	{ "a\r\n\r.\r\n.\r\n", "a\r\n\r.\r\n", 1, "", CR },
	{ "\r\r\r\n.\r\n", "\r\r\r\n", 1, "", CR },
	{ "\n\n\n.\r\n", "\n\n\n.\r\n", 0, "", BL },
};

static void test_table(void)
{
	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		const struct data_case *c = &cases[t];
		size_t len = strlen(c->in), mlen = strlen(c->msg), rlen = strlen(c->rest);
		for (unsigned seed = 0; seed < 10; seed++) {
			struct result r;
			feed(c->in, len, 0, 0, seed, &r);
			bool ok = r.done == c->done && r.msg_len == mlen &&
				memcmp(r.msg, c->msg, mlen) == 0 && r.used == len - rlen &&
				r.flags == c->flags;
			if (!ok)
				fprintf(stderr, "case %zu seed %u: done %d len %zu used %zu flags %x\n",
					t, seed, r.done, r.msg_len, r.used, r.flags);
			CHECK(ok);
			free(r.msg);
		}
	}
}

/* The byte sequences of the SMTP-smuggling research (SEC Consult, December 2023, and
 * the follow-ups against Postfix, Sendmail, Exim, Cisco): a fake end of data followed by a
 * second, smuggled transaction.  None may end the message: the reader ends only at the
 * real CRLF.CRLF, and the smuggled commands stay message text. */
static void test_smuggling(void)
{
	static const char *const fake_ends[] = {
		"\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r.\r\n", "\r\n.\r", "\n.\r",
		"\r.\n", ".\n", "\r\n\x00.\r\n", "\r\n.\x00\r\n", "\n\n.\n\n", "\r\r.\r\r",
		"\r\n.\r\r\n",
	};
	static const char smuggled[] = "MAIL FROM:<admin@example.org>\r\n"
		"RCPT TO:<victim@example.net>\r\nDATA\r\nFrom: admin@example.org\r\n\r\n"
		"smuggled\r\n";
	for (size_t k = 0; k < sizeof(fake_ends) / sizeof(fake_ends[0]); k++) {
		char in[512];
		size_t fl = k == 9 || k == 10 ? 6 : strlen(fake_ends[k]);
		size_t n = 0;
		memcpy(in, "Subject: hi\r\n\r\nhello", 20);
		n = 20;
		memcpy(in + n, fake_ends[k], fl);
		n += fl;
		memcpy(in + n, smuggled, sizeof(smuggled) - 1);
		n += sizeof(smuggled) - 1;
		memcpy(in + n, ".\r\nQUIT\r\n", 9);
		n += 9;
		for (unsigned seed = 0; seed < 6; seed++) {
			struct result r;
			feed(in, n, SMTP_MAX_TEXT_LINE, 0, seed, &r);
			CHECK(r.done == 1);
			CHECK(r.used == n - 6);                 /* ends right before QUIT */
			/* the smuggled transaction is inside the message, as text */
			bool inside = false;
			for (size_t i = 0; i + 9 <= r.msg_len; i++)
				if (memcmp(r.msg + i, "MAIL FROM", 9) == 0)
					inside = true;
			CHECK(inside);
			CHECK(r.msg_len >= 2 && memcmp(r.msg + r.msg_len - 2, "\r\n", 2) == 0);
			CHECK((r.flags & (SMTPDATA_BARE_LF | SMTPDATA_LONE_CR | SMTPDATA_NUL)) != 0);
			free(r.msg);
		}
	}
}

static void test_limits(void)
{
	char in[4096];
	struct result r;

	/* 998 bytes + CRLF = 1000: fits; 999 + CRLF: too long, reported, end still found */
	for (int extra = 0; extra < 2; extra++) {
		size_t n = 0;
		memcpy(in, "a\r\n", 3);
		n = 3;
		memset(in + n, 'x', 998 + (size_t)extra);
		n += 998 + (size_t)extra;
		memcpy(in + n, "\r\nb\r\n.\r\nQUIT\r\n", 14);
		n += 14;
		for (unsigned seed = 0; seed < 4; seed++) {
			feed(in, n, SMTP_MAX_TEXT_LINE, 0, seed, &r);
			CHECK(r.done == 1 && r.used == n - 6);
			CHECK(r.flags == (extra ? SMTPDATA_LONG_LINE : 0u));
			CHECK(r.first_bad == (extra ? 2u : 0u));
			CHECK(r.lines == 3);
			free(r.msg);
		}
	}
	/* the stuffed dot does not count: "." + 998 + CRLF is a 1000-octet line */
	in[0] = '.';
	memset(in + 1, 'y', 998);
	memcpy(in + 999, "\r\n.\r\n", 5);
	feed(in, 1004, SMTP_MAX_TEXT_LINE, 0, 1, &r);
	CHECK(r.done == 1 && r.flags == 0 && r.msg_len == 1000);
	free(r.msg);

	/* size: 10 bytes allowed; the rest is counted, not given, and the end is found */
	static const char big[] = "0123456789abc\r\n.\r\nQUIT\r\n";
	for (unsigned seed = 0; seed < 4; seed++) {
		feed(big, sizeof(big) - 1, 0, 10, seed, &r);
		CHECK(r.done == 1);
		CHECK(r.used == sizeof(big) - 1 - 6);
		CHECK(r.flags == SMTPDATA_TOO_BIG);
		CHECK(r.msg_len == 10 && memcmp(r.msg, "0123456789", 10) == 0);
		CHECK(r.size == 15);
		free(r.msg);
	}
	/* exactly at the limit: fine */
	feed("0123456789\r\n.\r\n", 15, 0, 12, 0, &r);
	CHECK(r.done == 1 && r.flags == 0 && r.msg_len == 12);
	free(r.msg);
	feed("0123456789\r\n.\r\n", 15, 0, 11, 0, &r);
	CHECK(r.done == 1 && r.flags == SMTPDATA_TOO_BIG && r.msg_len == 11);
	free(r.msg);

	struct smtpdata d;
	smtpdata_init(&d, 0, 0);
	CHECK(smtpdata_error(&d) == NULL);
	d.flags = SMTPDATA_BARE_LF | SMTPDATA_TOO_BIG;
	CHECK_STR(smtpdata_error(&d), "message too big");
}

/* Every string over {a, CR, LF, '.'} up to 8 bytes, followed by the real end: chunking
 * never matters; the end found is always a CRLF "." CRLF that starts at the input's
 * start or after a CRLF; a message without bare LF or lone CR, stuffed again and
 * read again, comes back the same. */
static void test_exhaustive(void)
{
	static const char alpha[] = { 'a', '\r', '\n', '.' };
	char in[16];
	unsigned bad = 0, total = 0;

	for (size_t len = 0; len <= 8; len++) {
		size_t combos = 1;
		for (size_t i = 0; i < len; i++)
			combos *= 4;
		for (size_t k = 0; k < combos; k++) {
			size_t v = k;
			for (size_t i = 0; i < len; i++) {
				in[i] = alpha[v % 4];
				v /= 4;
			}
			memcpy(in + len, "\r\n.\r\n", 5);
			size_t n = len + 5;
			struct result r0, r1, r2;
			feed(in, n, 0, 0, 0, &r0);
			feed(in, n, 0, 0, 1, &r1);
			feed(in, n, 0, 0, 4, &r2);
			if (r0.done != 1 || r0.used != r1.used || r0.used != r2.used ||
			    r0.msg_len != r1.msg_len || r0.msg_len != r2.msg_len ||
			    memcmp(r0.msg, r1.msg, r0.msg_len) != 0 ||
			    memcmp(r0.msg, r2.msg, r0.msg_len) != 0 || r0.flags != r1.flags)
				bad++;
			/* the end: ".\r\n" at used - 3, preceded by CRLF or at the start */
			size_t e = r0.used;
			if (e < 3 || memcmp(in + e - 3, ".\r\n", 3) != 0 ||
			    (e > 3 && (e < 5 || memcmp(in + e - 5, "\r\n", 2) != 0)))
				bad++;
			if (r0.flags == 0) {
				/* re-stuff: a line starting with '.' gets its dot back */
				char again[40];
				size_t a = 0;
				for (size_t i = 0; i < r0.msg_len; i++) {
					if (r0.msg[i] == '.' && (i == 0 || r0.msg[i - 1] == '\n'))
						again[a++] = '.';
					again[a++] = r0.msg[i];
				}
				memcpy(again + a, ".\r\n", 3);
				a += 3;
				/* stuffing what came out and reading it again gives it back
				 * (the input itself may hold needless stuffing: ".a") */
				struct result r3;
				feed(again, a, 0, 0, 0, &r3);
				if (r3.done != 1 || r3.used != a || r3.msg_len != r0.msg_len ||
				    memcmp(r3.msg, r0.msg, r0.msg_len) != 0)
					bad++;
				free(r3.msg);
			}
			total++;
			free(r0.msg);
			free(r1.msg);
			free(r2.msg);
		}
	}
	CHECK(bad == 0);
	CHECK(total > 80000);
}

/* The reader over a socket through conn: raw input, then the next command as a line. */
static void test_conn(void)
{
	int sv[2];
	struct conn c;
	const char *line;
	size_t len;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	conn_init(&c, sv[0], sv[0], SMTP_MAX_CMD_LINE, 5);
	static const char wire[] = "DATA\r\nSubject: x\r\n\r\n..dot\r\nbody\n.\nmore\r\n"
		".\r\nQUIT\r\n";
	CHECK(util_write_all(sv[1], wire, sizeof(wire) - 1) == 0);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "DATA");
	conn_set_line_max(&c, SMTP_MAX_TEXT_LINE);

	struct smtpdata d;
	char out[IO_CHUNK + 1], msg[256];
	size_t mlen = 0;
	smtpdata_init(&d, SMTP_MAX_TEXT_LINE, 1 << 20);
	while (!d.done) {
		const char *p;
		size_t n = conn_pending(&c, &p);
		if (n == 0) {
			if (conn_read_more(&c, true) <= 0)
				break;
			continue;
		}
		if (n > IO_CHUNK)
			n = IO_CHUNK;
		size_t olen, used;
		smtpdata_parse(&d, p, n, out, &olen, &used);
		conn_consume(&c, used);
		if (mlen + olen <= sizeof(msg)) {
			memcpy(msg + mlen, out, olen);
			mlen += olen;
		}
	}
	CHECK(d.done);
	static const char want[] = "Subject: x\r\n\r\n.dot\r\nbody\n.\nmore\r\n";
	CHECK(mlen == sizeof(want) - 1 && memcmp(msg, want, mlen) == 0);
	CHECK(d.flags == SMTPDATA_BARE_LF);
	conn_set_line_max(&c, SMTP_MAX_CMD_LINE);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "QUIT");
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	test_table();
	test_smuggling();
	test_limits();
	test_exhaustive();
	test_conn();
	return unit_done("smtpdata");
}
