/* crlf.c: table of inputs with the expected wire form, each fed whole, one byte at a
 * time and in pseudo-random chunks; crlf_size() likewise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/crlf.h"
#include "unit.h"

struct crlf_case {
	const char *in;
	size_t in_len;          /* 0: strlen(in) */
	bool dotstuff;
	uint64_t limit;         /* body_limit */
	const char *out;        /* conversion output followed by crlf_finish() */
	size_t out_len;         /* 0: strlen(out) */
	uint64_t lines, body_lines;
	bool strict;            /* crlf_init_strict(): a lone CR ends its line */
};

#define ALL UINT64_MAX
static const struct crlf_case cases[] = {
	{ "", 0, false, ALL, "", 0, 0, 0, false },
	{ "a\nb\n", 0, false, ALL, "a\r\nb\r\n", 0, 2, 0, false },
	{ "a\r\nb\r\n", 0, false, ALL, "a\r\nb\r\n", 0, 2, 0, false },
	{ "a\rb\n", 0, false, ALL, "a\rb\r\n", 0, 1, 0, false },          /* lone CR stays */
	{ "abc", 0, false, ALL, "abc\r\n", 0, 0, 0, false },              /* finish adds CRLF */
	{ "a\r", 0, false, ALL, "a\r\r\n", 0, 0, 0, false },
	{ "\r", 0, false, ALL, "\r\r\n", 0, 0, 0, false },
	{ "\r\r\n", 0, false, ALL, "\r\r\n", 0, 1, 0, false },
	{ ".x\n..y\n", 0, true, ALL, "..x\r\n...y\r\n", 0, 2, 0, false },
	{ ".x\n..y\n", 0, false, ALL, ".x\r\n..y\r\n", 0, 2, 0, false },
	{ ".\n", 0, true, ALL, "..\r\n", 0, 1, 0, false },
	{ ".", 0, true, ALL, "..\r\n", 0, 0, 0, false },
	{ "\r.x\n", 0, true, ALL, "\r.x\r\n", 0, 1, 0, false },            /* line starts with CR */
	{ "a.\n.\r\n", 0, true, ALL, "a.\r\n..\r\n", 0, 2, 0, false },
	{ "a\0b\n", 4, false, ALL, "a\0b\r\n", 5, 1, 0, false },           /* NUL passes */
	{ "H: 1\n\nb1\nb2\nb3\n", 0, false, ALL,
	  "H: 1\r\n\r\nb1\r\nb2\r\nb3\r\n", 0, 5, 3, false },
	/* TOP */
	{ "H: 1\n\nb1\nb2\nb3\n", 0, false, 2, "H: 1\r\n\r\nb1\r\nb2\r\n", 0, 4, 2, false },
	{ "H: 1\n\nb1\nb2\nb3\n", 0, false, 0, "H: 1\r\n\r\n", 0, 2, 0, false },
	{ "H: 1\r\n\r\nb1\r\nb2\r\n", 0, false, 1, "H: 1\r\n\r\nb1\r\n", 0, 3, 1, false },
	{ "H: 1\nH: 2\n", 0, false, 0, "H: 1\r\nH: 2\r\n", 0, 2, 0, false }, /* all header */
	{ "H: 1\nH: 2", 0, false, 0, "H: 1\r\nH: 2\r\n", 0, 1, 0, false },
	{ "H\n\r\r\nb\n", 0, false, 0, "H\r\n\r\r\nb\r\n", 0, 3, 0, false }, /* "\r\r\n" not empty */
	{ "H\n\nb1", 0, false, 5, "H\r\n\r\nb1\r\n", 0, 2, 0, false },
	{ "H\n\n.b1\n.b2\n", 0, true, 1, "H\r\n\r\n..b1\r\n", 0, 3, 1, false },
	{ "\n\nb\n", 0, false, 0, "\r\n", 0, 1, 0, false },                 /* empty header */
	{ "\r\n\r\nb\r\n", 0, false, 1, "\r\n\r\n", 0, 2, 1, false },        /* body line "" */
	{ "H\n\n\n\n", 0, false, 1, "H\r\n\r\n\r\n", 0, 3, 1, false },
	/* strict: a lone CR ends its line, and the line after it is dot-stuffed */
	{ "a\rb\n", 0, false, ALL, "a\r\nb\r\n", 0, 2, 0, true },
	{ "a\r.\rb", 0, true, ALL, "a\r\n..\r\nb\r\n", 0, 2, 0, true },
	{ "a\r.\r", 0, true, ALL, "a\r\n..\r\n", 0, 1, 0, true },  /* final CR ended */
	{ "\r", 0, false, ALL, "\r\n", 0, 0, 0, true },
	{ "\r\r\n", 0, false, ALL, "\r\n\r\n", 0, 2, 1, true },
	{ "x\r\n.\r\n", 0, true, ALL, "x\r\n..\r\n", 0, 2, 0, true },
	{ "x\n.\n", 0, true, ALL, "x\r\n..\r\n", 0, 2, 0, true },
	{ "x\r.\r\n", 0, true, ALL, "x\r\n..\r\n", 0, 2, 0, true },
	/* the 2023 smuggling bytes in a stored message cannot end a DATA sent on */
	{ "a\n.\r\nMAIL FROM:<x>\r\n", 0, true, ALL,
	  "a\r\n..\r\nMAIL FROM:<x>\r\n", 0, 3, 0, true },
	{ "a\r\n.\rMAIL\r\n", 0, true, ALL, "a\r\n..\r\nMAIL\r\n", 0, 3, 0, true },
	/* TOP: "H\r\r" is a header line, then an empty line (the lone CR alone) */
	{ "H\r\rb1\rb2\r", 0, false, 1, "H\r\n\r\nb1\r\n", 0, 3, 1, true },
};

/* Convert in with chunk sizes from a tiny PRNG (seed 0: whole, 1: bytes). */
static char *run(const struct crlf_case *c, const char *in, size_t len, unsigned seed,
		 size_t *out_len, struct crlf_state *st)
{
	char *out = malloc(2 * len + 3);
	size_t o = 0, i = 0;
	uint32_t x = seed * 2654435761u + 1;

	if (c->strict)
		crlf_init_strict(st, c->dotstuff);
	else
		crlf_init(st, c->dotstuff);
	st->body_limit = c->limit;
	while (i < len) {
		size_t n;
		if (seed == 0)
			n = len - i;
		else if (seed == 1)
			n = 1;
		else {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 7;
		}
		if (n > len - i)
			n = len - i;
		char *tmp = malloc(2 * n + 1);
		size_t k = crlf_convert(st, in + i, n, tmp);
		CHECK(k <= 2 * n + (c->strict ? 1 : 0));
		memcpy(out + o, tmp, k);
		o += k;
		free(tmp);
		i += n;
	}
	const char *fin = crlf_finish(st);
	memcpy(out + o, fin, strlen(fin));
	o += strlen(fin);
	*out_len = o;
	return out;
}

static void test_table(void)
{
	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		const struct crlf_case *c = &cases[t];
		size_t len = c->in_len ? c->in_len : strlen(c->in);
		size_t elen = c->out_len ? c->out_len : strlen(c->out);
		for (unsigned seed = 0; seed < 12; seed++) {
			struct crlf_state st;
			size_t olen;
			char *out = run(c, c->in, len, seed, &olen, &st);
			bool ok = olen == elen && memcmp(out, c->out, elen) == 0;
			if (!ok)
				fprintf(stderr, "case %zu seed %u: got %zu bytes\n", t, seed, olen);
			CHECK(ok);
			CHECK(st.lines == c->lines);
			CHECK(st.body_lines == c->body_lines);
			free(out);
		}
	}
}

/* Strict output: every CR is followed by LF and every LF preceded by CR, the output
 * ends with CRLF when not empty, and (dot-stuffed) no line is "." alone. */
static bool crlf_strict_ok(const char *o, size_t len, bool ds)
{
	for (size_t i = 0; i < len; i++) {
		if (o[i] == '\r' && (i + 1 == len || o[i + 1] != '\n'))
			return false;
		if (o[i] == '\n' && (i == 0 || o[i - 1] != '\r'))
			return false;
		bool bol = i == 0 || o[i - 1] == '\n';
		if (ds && bol && i + 2 < len && o[i] == '.' && o[i + 1] == '\r')
			return false;
	}
	return len == 0 || (len >= 2 && o[len - 2] == '\r' && o[len - 1] == '\n');
}

/* Every byte string over a small alphabet up to length 6: chunking never matters, and
 * the output is the input with bare LF -> CRLF (checked independently). */
static void test_exhaustive(void)
{
	static const char alpha[] = { 'a', '\r', '\n', '.' };
	char in[6];
	unsigned bad = 0, total = 0;

	for (size_t len = 0; len <= 6; len++) {
		size_t combos = 1;
		for (size_t i = 0; i < len; i++)
			combos *= 4;
		for (size_t k = 0; k < combos; k++) {
			size_t v = k;
			for (size_t i = 0; i < len; i++) {
				in[i] = alpha[v % 4];
				v /= 4;
			}
			for (int mode = 0; mode < 4; mode++) {
				int ds = mode & 1;
				struct crlf_case c = { .dotstuff = ds, .limit = ALL,
						       .strict = mode >= 2 };
				struct crlf_state s0, s1, s2;
				size_t l0, l1, l2;
				char *o0 = run(&c, in, len, 0, &l0, &s0);
				char *o1 = run(&c, in, len, 1, &l1, &s1);
				char *o2 = run(&c, in, len, 5, &l2, &s2);
				if (l0 != l1 || l0 != l2 || memcmp(o0, o1, l0) != 0 ||
				    memcmp(o0, o2, l0) != 0 || s0.lines != s1.lines)
					bad++;
				if (c.strict && !crlf_strict_ok(o0, l0, ds))
					bad++;
				if (!ds && !c.strict) {
					bool cr = false;
					uint64_t sz = crlf_size(in, len, &cr);
					/* output without the finish CRLF has crlf_size bytes */
					size_t fin = strlen(crlf_finish(&s0));
					if (sz != l0 - fin)
						bad++;
				}
				total++;
				free(o0);
				free(o1);
				free(o2);
			}
		}
	}
	CHECK(bad == 0);
	CHECK(total > 10000);
}

static void test_size(void)
{
	static const struct { const char *in; uint64_t size; } t[] = {
		{ "", 0 }, { "a", 1 }, { "\n", 2 }, { "\r\n", 2 }, { "\r", 1 },
		{ "a\nb\n", 6 }, { "a\r\nb\n", 6 }, { "\n\n\n", 6 }, { "\r\r\n", 3 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *in = t[i].in;
		size_t len = strlen(in);
		bool cr = false;
		CHECK(crlf_size(in, len, &cr) == t[i].size);
		CHECK(crlf_size(in, len, NULL) == t[i].size);
		/* one byte at a time */
		uint64_t sum = 0;
		cr = false;
		for (size_t k = 0; k < len; k++)
			sum += crlf_size(in + k, 1, &cr);
		CHECK(sum == t[i].size);
	}
	/* "\r" | "\n" across chunks: the LF is not bare */
	bool cr = false;
	uint64_t a = crlf_size("x\r", 2, &cr);
	CHECK(cr);
	uint64_t b = crlf_size("\n", 1, &cr);
	CHECK(a + b == 3);
	CHECK(!cr);
}

/* After body_limit is reached further input produces nothing. */
static void test_done(void)
{
	struct crlf_state st;
	char out[64];
	crlf_init(&st, true);
	st.body_limit = 1;
	size_t n = crlf_convert(&st, "H\n\nb\n", 5, out);
	CHECK(n == 8);
	CHECK(st.done);
	CHECK(crlf_convert(&st, "more\n", 5, out) == 0);
	CHECK_STR(crlf_finish(&st), "");
	crlf_init(&st, false);
	CHECK(st.body_limit == UINT64_MAX);
	CHECK(st.at_bol && !st.done && !st.in_body);
}

int main(void)
{
	test_table();
	test_exhaustive();
	test_size();
	test_done();
	return unit_done("crlf");
}
