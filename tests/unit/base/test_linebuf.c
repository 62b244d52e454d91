/* linebuf: tables of valid and invalid input, each fed whole, one byte at a time and in
 * chunks of 3; every limit at max and max + 1; pipelining, pending bytes, reset. */
#include <stdlib.h>
#include <string.h>
#include "base/linebuf.h"
#include "base/util.h"
#include "unit.h"

#define S(lit) lit, sizeof(lit) - 1

struct lb_case {
	const char *in;
	size_t len;
	size_t max;
	/* what linebuf_next() gave: each line followed by '\n', "!B\n" for LINEBUF_BAD_BYTE,
	 * "!T\n" for LINEBUF_TOO_LONG (after which the reader stays broken) */
	const char *out;
	const char *pending;    /* NULL: not checked (after "!T") */
};

static const struct lb_case valid[] = {
	{ S("abc\r\n"), 512, "abc\n", "" },
	{ S("abc\n"), 512, "abc\n", "" },
	{ S("\r\n"), 512, "\n", "" },
	{ S("\n"), 512, "\n", "" },
	{ S("\n\n\r\n"), 512, "\n\n\n", "" },
	{ S("USER ned\r\nPASS x y\r\nSTAT\r\n"), 512, "USER ned\nPASS x y\nSTAT\n", "" },
	{ S("a\r\nb\nc"), 512, "a\nb\n", "c" },
	{ S("abc"), 512, "", "abc" },
	{ S("abc\r"), 512, "", "abc\r" },
	{ S("x\r\nabc\r"), 512, "x\n", "abc\r" },
	{ S("\xff\xfe\t \x7f\r\n"), 512, "\xff\xfe\t \x7f\n", "" },
	/* max = 10 includes the CRLF: 8 bytes + CRLF, or 9 bytes + bare LF */
	{ S("12345678\r\n"), 10, "12345678\n", "" },
	{ S("123456789\n"), 10, "123456789\n", "" },
	{ S("12345678\r\n12345678\r\n"), 10, "12345678\n12345678\n", "" },
	{ S("123456789"), 10, "", "123456789" },
	{ S("12345678\r"), 10, "", "12345678\r" },
	/* the smallest max */
	{ S("a\r\n\r\n"), 3, "a\n\n", "" },
	{ S("ab\n"), 3, "ab\n", "" },
};

static const struct lb_case invalid[] = {
	{ S("a\0b\r\n"), 512, "!B\n", "" },
	{ S("\0\n"), 512, "!B\n", "" },
	{ S("a\rb\r\n"), 512, "!B\n", "" },
	{ S("a\r\r\n"), 512, "!B\n", "" },
	{ S("\r\rx\n"), 512, "!B\n", "" },
	{ S("\rx\n"), 512, "!B\n", "" },
	/* a bad line is consumed; the next one is fine */
	{ S("a\0\nNOOP\r\n"), 512, "!B\nNOOP\n", "" },
	{ S("NOOP\r\nx\ry\nQUIT\r\nLI"), 512, "NOOP\n!B\nQUIT\n", "LI" },
	/* max + 1 */
	{ S("123456789\r\n"), 10, "!T\n", NULL },
	{ S("1234567890\n"), 10, "!T\n", NULL },
	{ S("1234567890"), 10, "!T\n", NULL },
	{ S("123456789\r"), 10, "!T\n", NULL },
	{ S("ok\r\n1234567890123456789012345\r\nNOOP\r\n"), 10, "ok\n!T\n", NULL },
	{ S("abc\r\n"), 3, "!T\n", NULL },
	/* a NUL in a line that is also too long: too long wins (no resync) */
	{ S("12\0" "4567890\n"), 10, "!T\n", NULL },
};

/* Take every line linebuf_next() has now; false once the reader is broken. */
static bool drain(struct linebuf *lb, char *out, size_t size, size_t *olen)
{
	for (;;) {
		const char *line;
		size_t len;
		int r = linebuf_next(lb, &line, &len);
		if (r == 0)
			return true;
		const char *add = r == LINEBUF_TOO_LONG ? "!T\n" : r == LINEBUF_BAD_BYTE ? "!B\n" : NULL;
		size_t alen = add != NULL ? 3 : len + 1;
		if (*olen + alen >= size)
			return false;
		if (add != NULL) {
			memcpy(out + *olen, add, 3);
		} else {
			CHECK(line[len] == '\0');
			memcpy(out + *olen, line, len);
			out[*olen + len] = '\n';
		}
		*olen += alen;
		out[*olen] = '\0';
		if (r == LINEBUF_TOO_LONG) {
			/* sticky */
			CHECK(linebuf_next(lb, &line, &len) == LINEBUF_TOO_LONG);
			CHECK(linebuf_has_line(lb));
			return false;
		}
	}
}

/* chunk 0: whole */
static void run_case(const struct lb_case *t, size_t chunk, size_t idx, const char *table)
{
	struct linebuf *lb = linebuf_new(t->max);
	char out[1024];
	size_t olen = 0, off = 0;
	bool alive = true;

	out[0] = '\0';
	while (alive && off < t->len) {
		size_t n = chunk == 0 ? t->len - off : chunk;
		if (n > t->len - off)
			n = t->len - off;
		size_t took = linebuf_feed(lb, t->in + off, n);
		off += took;
		alive = drain(lb, out, sizeof(out), &olen);
		if (took == 0 && alive) {
			CHECK(!"linebuf_feed took nothing while a line can complete");
			break;
		}
	}
	if (strcmp(out, t->out) != 0) {
		unit_fail++;
		fprintf(stderr, "%s[%zu] chunk %zu: got \"%s\", want \"%s\"\n", table, idx, chunk,
			out, t->out);
	} else {
		unit_pass++;
	}
	if (t->pending != NULL) {
		const char *p;
		size_t n = linebuf_pending(lb, &p);
		CHECK(n == strlen(t->pending) && memcmp(p, t->pending, n) == 0);
		CHECK(!linebuf_has_line(lb));
	}
	linebuf_free(&lb);
	CHECK(lb == NULL);
}

static void run_tables(void)
{
	static const size_t chunks[] = { 0, 1, 3 };
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
			run_case(&valid[i], chunks[c], i, "valid");
		for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
			run_case(&invalid[i], chunks[c], i, "invalid");
	}
}

/* The fill pointer API as conn.c uses it; room is never 0 while a line can complete. */
static void test_fill_api(void)
{
	struct linebuf *lb = linebuf_new(16);
	const char *line;
	size_t len, room;
	char *p;

	/* fill up to 2 * max with lines: room shrinks, the lines come out, room comes back */
	for (int i = 0; i < 8; i++) {
		p = linebuf_fill_ptr(lb, &room);
		CHECK(room >= 4);
		memcpy(p, "abc\n", 4);
		linebuf_filled(lb, 4);
	}
	p = linebuf_fill_ptr(lb, &room);
	CHECK(room == 0); /* 32 bytes of complete lines: take them first */
	CHECK(linebuf_has_line(lb));
	for (int i = 0; i < 8; i++) {
		CHECK(linebuf_next(lb, &line, &len) == 1);
		CHECK_STR(line, "abc");
	}
	CHECK(linebuf_next(lb, &line, &len) == 0);
	p = linebuf_fill_ptr(lb, &room);
	CHECK(room == 32);

	/* a partial line at the end of the buffer gets moved to the front */
	for (int i = 0; i < 7; i++)
		CHECK(linebuf_feed(lb, "abc\n", 4) == 4);
	CHECK(linebuf_feed(lb, "0123", 4) == 4); /* buffer full: 28 + 4 */
	for (int i = 0; i < 7; i++)
		CHECK(linebuf_next(lb, &line, &len) == 1);
	CHECK(linebuf_next(lb, &line, &len) == 0);
	p = linebuf_fill_ptr(lb, &room);
	CHECK(room == 28);
	memcpy(p, "456789abcde\r\n", 13); /* 4 + 13 = 17 > 16 */
	linebuf_filled(lb, 13);
	CHECK(linebuf_next(lb, &line, &len) == LINEBUF_TOO_LONG);
	linebuf_reset(lb);
	CHECK(linebuf_next(lb, &line, &len) == 0);
	CHECK(linebuf_feed(lb, "0123456789abcd\r\n", 16) == 16); /* exactly max */
	CHECK(linebuf_next(lb, &line, &len) == 1);
	CHECK(len == 14);
	CHECK_STR(line, "0123456789abcd");

	/* filled() past the room is clamped */
	p = linebuf_fill_ptr(lb, &room);
	linebuf_filled(lb, room + 100);
	p = linebuf_fill_ptr(lb, &room);
	CHECK(room == 0);
	linebuf_free(&lb);
	linebuf_free(&lb); /* NULL is fine */
}

/* Pending bytes: what a raw reader or the session gets after the login line. */
static void test_pending(void)
{
	struct linebuf *lb = linebuf_new(512);
	const char *line, *data;
	size_t len;

	CHECK(linebuf_pending(lb, &data) == 0);
	CHECK(!linebuf_has_line(lb));
	linebuf_feed(lb, S("PASS secret\r\nSTAT\r\nLIST\r\nRE"));
	CHECK(linebuf_has_line(lb));
	CHECK(linebuf_next(lb, &line, &len) == 1);
	CHECK_STR(line, "PASS secret");
	CHECK(linebuf_pending(lb, &data) == 14);
	CHECK(memcmp(data, "STAT\r\nLIST\r\nRE", 14) == 0);
	/* a raw read takes part of it */
	linebuf_consume(lb, 6);
	CHECK(linebuf_pending(lb, &data) == 8);
	CHECK(memcmp(data, "LIST\r\nRE", 8) == 0);
	CHECK(linebuf_next(lb, &line, &len) == 1);
	CHECK_STR(line, "LIST");
	CHECK(!linebuf_has_line(lb));
	/* consume in the middle of a line the scanner already looked at */
	linebuf_feed(lb, S("TR 1"));
	CHECK(linebuf_next(lb, &line, &len) == 0);
	linebuf_consume(lb, 3);
	CHECK(linebuf_pending(lb, &data) == 3);
	CHECK(memcmp(data, "R 1", 3) == 0);
	linebuf_feed(lb, S("\r\n"));
	CHECK(linebuf_next(lb, &line, &len) == 1);
	CHECK_STR(line, "R 1");
	linebuf_consume(lb, 100); /* more than pending: all */
	CHECK(linebuf_pending(lb, &data) == 0);
	/* reset drops everything (STLS) */
	linebuf_feed(lb, S("USER injected\r\nPA"));
	linebuf_reset(lb);
	CHECK(linebuf_pending(lb, &data) == 0);
	CHECK(linebuf_next(lb, &line, &len) == 0);
	linebuf_free(&lb);
}

/* Byte-by-byte input of a long line must stay linear: with a rescan per byte this
 * would take about 2^31 steps. */
static void test_trickle(void)
{
	const size_t max = 65536;
	struct linebuf *lb = linebuf_new(max);
	const char *line;
	size_t len;
	uint64_t t0 = util_now_ms();
	int r = 0;

	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i + 2 < max; i++) {
			if (linebuf_feed(lb, "x", 1) != 1) {
				r = -99;
				break;
			}
			r = linebuf_next(lb, &line, &len);
			if (r != 0)
				break;
		}
		CHECK(r == 0);
		linebuf_feed(lb, S("\r\n"));
		CHECK(linebuf_next(lb, &line, &len) == 1);
		CHECK(len == max - 2);
	}
	uint64_t ms = util_now_ms() - t0;
	CHECK(ms < 3000);
	/* one byte more than max, fed byte by byte */
	for (size_t i = 0; i + 1 < max; i++)
		linebuf_feed(lb, "y", 1);
	CHECK(linebuf_next(lb, &line, &len) == 0);
	linebuf_feed(lb, "\r", 1);
	CHECK(linebuf_next(lb, &line, &len) == LINEBUF_TOO_LONG);
	linebuf_free(&lb);
}

/* linebuf_set_max(): the limit of each protocol state, with input already buffered. */
static void test_set_max(void)
{
	struct linebuf *lb = linebuf_new(16);
	const char *line;
	size_t len;
	char big[200];

	CHECK(linebuf_max(lb) == 16);
	/* "login" line, then a long line already buffered behind it */
	memset(big, 'x', sizeof(big));
	CHECK(linebuf_feed(lb, "LOGIN a b\r\n", 11) == 11);
	CHECK(linebuf_feed(lb, big, 20) == 20);        /* no LF yet: 20 bytes pending */
	CHECK(linebuf_next(lb, &line, &len) == 1);
	CHECK_STR(line, "LOGIN a b");
	/* at 16 the pending 20 bytes would be too long; a bigger limit keeps them */
	linebuf_set_max(lb, 100);
	CHECK(linebuf_max(lb) == 100);
	CHECK(linebuf_next(lb, &line, &len) == 0);
	CHECK(linebuf_feed(lb, big, 60) == 60);
	CHECK(linebuf_feed(lb, "\r\n", 2) == 2);
	CHECK(linebuf_next(lb, &line, &len) == 1);
	CHECK(len == 80);
	/* at the new limit: 98 + CRLF = 100 fits, 99 + CRLF does not */
	CHECK(linebuf_feed(lb, big, 98) == 98);
	CHECK(linebuf_feed(lb, "\r\n", 2) == 2);
	CHECK(linebuf_next(lb, &line, &len) == 1 && len == 98);
	CHECK(linebuf_feed(lb, big, 99) == 99);
	CHECK(linebuf_feed(lb, "\r\n", 2) == 2);
	CHECK(linebuf_next(lb, &line, &len) == LINEBUF_TOO_LONG);
	linebuf_reset(lb);

	/* smaller, with more pending than the new buffer: nothing is dropped */
	CHECK(linebuf_feed(lb, "a\nb\n", 4) == 4);
	CHECK(linebuf_feed(lb, big, 150) == 150);
	linebuf_set_max(lb, 8);
	const char *data;
	CHECK(linebuf_pending(lb, &data) == 154);
	CHECK(linebuf_next(lb, &line, &len) == 1);
	CHECK_STR(line, "a");
	CHECK(linebuf_next(lb, &line, &len) == 1);
	CHECK_STR(line, "b");
	CHECK(linebuf_next(lb, &line, &len) == LINEBUF_TOO_LONG); /* 150 x, no LF */
	linebuf_reset(lb);
	CHECK(linebuf_feed(lb, "1234567\n", 8) == 8);  /* 8 with LF: fits */
	CHECK(linebuf_next(lb, &line, &len) == 1 && len == 7);
	CHECK(linebuf_feed(lb, "12345678\n", 9) == 9);
	CHECK(linebuf_next(lb, &line, &len) == LINEBUF_TOO_LONG);
	linebuf_free(&lb);
	CHECK(lb == NULL);
}

int main(void)
{
	run_tables();
	test_fill_api();
	test_pending();
	test_trickle();
	test_set_max();
	return unit_done("test_linebuf");
}
