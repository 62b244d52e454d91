/* header.c: fields, folding, garbage, the end of the header in every form, sizes raw
 * and in CRLF form, the field length and count limits at and past their maximum; each
 * input fed whole, byte by byte and in odd chunks with identical results. */
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/header.h"
#include "unit.h"

struct out {
	char *s;             /* "name=value|" per field, '!' before a no_colon one,
	                        '~' after a truncated one */
	size_t len, size;
	uint64_t offs[8], sizes[8];
	unsigned n;
};

static void out_add(struct out *o, const char *p, size_t n)
{
	if (o->len + n + 1 > o->size) {
		o->size = (o->len + n + 1) * 2;
		o->s = xrealloc(o->s, o->size);
	}
	memcpy(o->s + o->len, p, n);
	o->len += n;
	o->s[o->len] = '\0';
}

static void cb(void *ctx, const struct header_field *f)
{
	struct out *o = ctx;
	if (f->no_colon)
		out_add(o, "!", 1);
	out_add(o, f->name, f->name_len);
	out_add(o, "=", 1);
	out_add(o, f->value, f->value_len);
	if (f->truncated)
		out_add(o, "~", 1);
	out_add(o, "|", 1);
	if (o->n < 8) {
		o->offs[o->n] = f->offset;
		o->sizes[o->n] = f->size;
	}
	o->n++;
}

/* Parse in chunks of step bytes (0: whole; odd steps vary). */
static size_t parse(const char *in, size_t len, size_t step, uint64_t base,
		    struct out *o, struct header_size *sz)
{
	struct header_parser *hp = header_parser_new(base);
	size_t i = 0, used = 0;
	memset(o, 0, sizeof(*o));
	out_add(o, "", 0);
	while (i < len && !header_parser_done(hp)) {
		size_t n = step == 0 ? len - i : step + (i % 3) * (step > 1);
		if (n > len - i)
			n = len - i;
		size_t u = header_parser_feed(hp, in + i, n, cb, o);
		used += u;
		i += n;
		if (u < n)
			break;
	}
	header_parser_finish(hp, cb, o);
	header_parser_size(hp, sz);
	header_parser_free(&hp);
	return used;
}

struct hcase {
	const char *in;
	size_t len;          /* 0: strlen */
	const char *fields;
	uint64_t raw, crlf, lines;
	int ended;
};

static const struct hcase cases[] = {
	{ "A: 1\r\nB: 2\r\n\r\nbody", 0, "A=1|B=2|", 14, 14, 3, 1 },
	{ "A: 1\nB: 2\n\nbody\n", 0, "A=1|B=2|", 11, 14, 3, 1 },
	{ "Subject: a\n b\n\tc\nX: y\n\n", 0, "Subject=a b\tc|X=y|", 23, 28, 5, 1 },
	{ "Subject: a\r\n b\r\n\r\n", 0, "Subject=a b|", 18, 18, 3, 1 },
	{ "garbage line\nA: b\n\n", 0, "!garbage line=|A=b|", 19, 22, 3, 1 },
	{ "Subject : hi\n\n", 0, "Subject=hi|", 14, 16, 2, 1 },
	{ "Subject:hi   \n\n", 0, "Subject=hi|", 15, 17, 2, 1 },
	{ "A: x\0y\n\n", 8, "A=x\0y|", 8, 10, 2, 1 },
	{ "A: \xc3\xa9t\xe9\n\n", 0, "A=\xc3\xa9t\xe9|", 9, 11, 2, 1 },
	{ "A: b", 0, "A=b|", 4, 4, 1, 0 },
	{ "A: b\n", 0, "A=b|", 5, 6, 1, 0 },
	{ "A: b\nC: d\r\n", 0, "A=b|C=d|", 11, 12, 2, 0 },
	{ "\n", 0, "", 1, 2, 1, 1 },
	{ "\r\nbody", 0, "", 2, 2, 1, 1 },
	{ "", 0, "", 0, 0, 0, 0 },
	{ " A: b\n\n", 0, " A=b|", 7, 9, 2, 1 },
	{ "A: b\n\rX: y\n\n", 0, "A=b|\rX=y|", 12, 15, 3, 1 },
	{ "A: b\r", 0, "A=b|", 5, 5, 1, 0 },
	{ "A: b\n\r", 0, "A=b|!=|", 6, 7, 2, 0 },
	{ "A: b\n \n\n", 0, "A=b|", 8, 11, 3, 1 },
	{ "A:\n\n", 0, "A=|", 4, 6, 2, 1 },
	{ ": v\n\n", 0, "=v|", 5, 7, 2, 1 },
	{ "A: b\r\r\n\r\n", 0, "A=b|", 9, 9, 2, 1 },
	{ "Message-ID: <a@b>\n  (c)\n\nx", 0, "Message-ID=<a@b>  (c)|", 25, 28, 3, 1 },
};

static void test_cases(void)
{
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct hcase *t = &cases[c];
		size_t len = t->len != 0 ? t->len : strlen(t->in);
		size_t flen = t->len != 0 ? 6 : strlen(t->fields);
		static const size_t steps[] = { 0, 1, 2, 5 };
		for (size_t s = 0; s < 4; s++) {
			struct out o;
			struct header_size sz;
			size_t used = parse(t->in, len, steps[s], 0, &o, &sz);
			if (o.len != flen || memcmp(o.s, t->fields, flen) != 0)
				fprintf(stderr, "case %zu step %zu: fields \"%s\"\n", c, steps[s], o.s);
			CHECK(o.len == flen && memcmp(o.s, t->fields, flen) == 0);
			if (sz.raw != t->raw || sz.crlf != t->crlf || sz.lines != t->lines)
				fprintf(stderr, "case %zu: raw %llu crlf %llu lines %llu\n", c, (unsigned long long)sz.raw, (unsigned long long)sz.crlf, (unsigned long long)sz.lines);
			CHECK(sz.raw == t->raw);
			CHECK(sz.crlf == t->crlf);
			CHECK(sz.lines == t->lines);
			CHECK(sz.ended == (t->ended != 0));
			CHECK(used == t->raw);
			free(o.s);
		}
	}
}

/* Offsets and sizes of fields, from a base offset; folded fields included. */
static void test_offsets(void)
{
	const char *in = "A: 1\r\nSub: x\r\n y\r\nC: z\r\n\r\nbody";
	struct out o;
	struct header_size sz;
	parse(in, strlen(in), 1, 1000, &o, &sz);
	CHECK(o.n == 3);
	CHECK(o.offs[0] == 1000 && o.sizes[0] == 6);
	CHECK(o.offs[1] == 1006 && o.sizes[1] == 12);
	CHECK(o.offs[2] == 1018 && o.sizes[2] == 6);
	free(o.s);
}

/* A field of HEADER_FIELD_MAX bytes is whole; one byte more is cut, and the next
 * field's offset and the header's size stay right. */
static void test_long_field(void)
{
	for (int extra = 0; extra <= 1; extra++) {
		size_t flen = HEADER_FIELD_MAX + (size_t)extra; /* bytes incl. "X: " and LF */
		size_t len = flen + 6;
		char *in = xmalloc(len);
		memcpy(in, "X: ", 3);
		memset(in + 3, 'a', flen - 4);
		in[flen - 1] = '\n';
		memcpy(in + flen, "Y: z\n\n", 6);
		struct out o;
		struct header_size sz;
		parse(in, len, 0, 0, &o, &sz);
		CHECK(o.n == 2);
		CHECK(o.offs[1] == flen && o.sizes[0] == flen);
		CHECK((strchr(o.s, '~') != NULL) == (extra == 1));
		CHECK(strstr(o.s, "|Y=z|") != NULL);
		CHECK(sz.raw == len && sz.ended);
		free(o.s);
		free(in);
	}
}

/* HEADER_MAX_FIELDS fields are reported; past that they are counted only. */
static void test_field_count(void)
{
	for (int extra = 0; extra <= 1; extra++) {
		size_t n = HEADER_MAX_FIELDS + (size_t)extra;
		char *in = xmalloc(n * 5 + 1);
		for (size_t i = 0; i < n; i++)
			memcpy(in + i * 5, "A: b\n", 5);
		in[n * 5] = '\n';
		struct out o;
		struct header_size sz;
		parse(in, n * 5 + 1, 0, 0, &o, &sz);
		CHECK(o.n == HEADER_MAX_FIELDS);
		CHECK(sz.fields == n);
		CHECK(sz.raw == n * 5 + 1 && sz.ended);
		free(o.s);
		free(in);
	}
}

int main(void)
{
	test_cases();
	test_offsets();
	test_long_field();
	test_field_count();
	return unit_done("test_header");
}
