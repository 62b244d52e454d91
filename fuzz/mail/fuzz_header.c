/* libFuzzer: header_parser.  Byte 0 seeds the chunking; the rest is a message.  Checks:
 * any chunking gives the same fields (names, values, offsets, sizes) and sizes; fields
 * lie inside the header and follow each other; crlf >= raw; the bytes consumed are the
 * header size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/header.h"

struct acc {
	uint64_t hash, n, next_off;
	bool order_bad;
};

static void cb(void *ctx, const struct header_field *f)
{
	struct acc *a = ctx;
	uint64_t h = a->hash;
	for (size_t i = 0; i < f->name_len; i++)
		h = (h ^ (unsigned char)f->name[i]) * 1099511628211ULL;
	h = (h ^ 0x3a) * 1099511628211ULL;
	for (size_t i = 0; i < f->value_len; i++)
		h = (h ^ (unsigned char)f->value[i]) * 1099511628211ULL;
	for (size_t i = 0; i < f->raw_len; i++)
		h = (h ^ (unsigned char)f->raw[i]) * 1099511628211ULL;
	h = (h ^ f->offset ^ (f->size << 20) ^ f->no_colon ^ ((uint64_t)f->truncated << 1)) *
		1099511628211ULL;
	a->hash = h;
	if (f->offset < a->next_off || f->name[f->name_len] != '\0' ||
	    f->value[f->value_len] != '\0' || f->raw[f->raw_len] != '\0')
		a->order_bad = true;
	a->next_off = f->offset + f->size;
	a->n++;
}

static size_t run(const uint8_t *in, size_t len, unsigned seed, struct acc *a,
		  struct header_size *sz)
{
	struct header_parser *hp = header_parser_new(7);
	uint32_t x = seed * 2654435761u + 1;
	size_t i = 0, used = 0;
	memset(a, 0, sizeof(*a));
	a->next_off = 7;
	while (i < len && !header_parser_done(hp)) {
		size_t n = len - i;
		if (seed != 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 17;
			if (n > len - i)
				n = len - i;
		}
		size_t u = header_parser_feed(hp, (const char *)in + i, n, cb, a);
		used += u;
		i += n;
		if (u < n)
			break;
	}
	header_parser_finish(hp, cb, a);
	header_parser_size(hp, sz);
	header_parser_free(&hp);
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct acc a, b;
	struct header_size sa, sb;
	size_t ua = run(data + 1, size - 1, 0, &a, &sa);
	size_t ub = run(data + 1, size - 1, data[0] | 1u, &b, &sb);
	if (ua != ub || a.hash != b.hash || a.n != b.n || sa.raw != sb.raw ||
	    sa.crlf != sb.crlf || sa.lines != sb.lines || sa.ended != sb.ended ||
	    sa.fields != sb.fields)
		abort();
	if (a.order_bad || ua != sa.raw || sa.crlf < sa.raw || sa.crlf > 2 * sa.raw ||
	    (a.n > 0 && a.next_off > 7 + sa.raw))
		abort();
	return 0;
}
