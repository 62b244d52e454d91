/* libFuzzer: crlf_convert.  Byte 0 picks dotstuff and a TOP body_limit, byte 1 seeds the
 * chunking and (bit 7) strict mode; the rest is the message.  Checks: the output is the
 * same for any chunking, has no bare LF, fits 2*len per call (2*len + 1 strict), without
 * stuffing or limit has exactly crlf_size() bytes (before the finish CRLF), and strict
 * has no lone CR either, nor (stuffed) a "." line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/crlf.h"

static size_t convert(const uint8_t *in, size_t len, bool ds, bool strict, uint64_t limit,
		      unsigned seed, char *out, struct crlf_state *st)
{
	size_t o = 0, i = 0;
	uint32_t x = seed * 2654435761u + 1;
	if (strict)
		crlf_init_strict(st, ds);
	else
		crlf_init(st, ds);
	st->body_limit = limit;
	while (i < len) {
		size_t n = len - i;
		if (seed != 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 13;
			if (n > len - i)
				n = len - i;
		}
		size_t k = crlf_convert(st, (const char *)in + i, n, out + o);
		if (k > 2 * n + (strict ? 1 : 0))
			abort();
		o += k;
		i += n;
	}
	const char *fin = crlf_finish(st);
	memcpy(out + o, fin, strlen(fin));
	return o + strlen(fin);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	bool ds = data[0] & 1;
	uint64_t limit = (data[0] & 2) ? (uint64_t)(data[0] >> 2) : UINT64_MAX;
	unsigned seed = data[1] & 0x7f;
	bool strict = (data[1] & 0x80) != 0;
	const uint8_t *in = data + 2;
	size_t len = size - 2;
	char *a = malloc(2 * len + 3), *b = malloc(2 * len + 3);
	struct crlf_state sa, sb;
	size_t la = convert(in, len, ds, strict, limit, 0, a, &sa);
	size_t lb = convert(in, len, ds, strict, limit, seed | 1, b, &sb);
	if (la != lb || memcmp(a, b, la) != 0 || sa.lines != sb.lines ||
	    sa.body_lines != sb.body_lines || sa.in_body != sb.in_body)
		abort();
	for (size_t i = 0; i < la; i++)
		if (a[i] == '\n' && (i == 0 || a[i - 1] != '\r'))
			abort();
	for (size_t i = 0; strict && i < la; i++) {
		if (a[i] == '\r' && (i + 1 == la || a[i + 1] != '\n'))
			abort();
		if (ds && (i == 0 || a[i - 1] == '\n') && i + 2 < la && a[i] == '.' &&
		    a[i + 1] == '\r')
			abort();
	}
	if (!ds && !strict && limit == UINT64_MAX) {
		bool cr = false;
		if (crlf_size((const char *)in, len, &cr) != la - strlen(crlf_finish(&sa)))
			abort();
	}
	if (limit != UINT64_MAX && sa.body_lines > limit)
		abort();
	free(a);
	free(b);
	return 0;
}
