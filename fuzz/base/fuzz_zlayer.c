/* libFuzzer: the COMPRESS input path (zlayer_inflate(), what conn.c feeds a client's
 * bytes to).  The first two bytes choose a feed chunk and an output buffer size; the rest
 * is the client's "compressed" stream.  Checked: no call writes past its output buffer or
 * takes more input than given; once it fails or ends it stays so; the same input fed
 * whole and in chunks gives the same bytes and the same end; and what came out survives
 * a round trip through zlayer_deflate() and a fresh inflater. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/zlayer.h"

#define OUT_CAP (1u << 20)   /* a bomb stops here: the fuzzer's memory stays small */

struct result {
	char *out;
	size_t len;
	int end;                 /* 0 input used up, 1 stream end, -1 corrupt */
};

static void run(const uint8_t *data, size_t size, size_t feed, size_t out_size,
		struct result *res)
{
	const char *error;
	struct zlayer *z = zlayer_new(&error);
	char buf[4096];
	size_t off = 0;

	if (z == NULL)
		abort();
	res->out = malloc(OUT_CAP);
	res->len = 0;
	res->end = 0;
	while (off < size && res->end == 0 && res->len < OUT_CAP) {
		size_t chunk = feed == 0 || feed > size - off ? size - off : feed;
		const char *p = (const char *)data + off;
		size_t left = chunk;
		while ((left > 0 || zlayer_inflate_more(z)) && res->len < OUT_CAP) {
			size_t n, before = left;
			size_t room = out_size < OUT_CAP - res->len ? out_size : OUT_CAP - res->len;
			int r = zlayer_inflate(z, &p, &left, buf, room, &n, &error);
			if (n > room || left > before || p != (const char *)data + off + chunk - left)
				__builtin_trap();
			memcpy(res->out + res->len, buf, n);
			res->len += n;
			if (r != 0) {
				res->end = r;
				const char *q = "x";
				size_t one = 1;
				if (zlayer_inflate(z, &q, &one, buf, sizeof(buf), &n, &error) != -1 ||
				    n != 0)
					__builtin_trap(); /* a broken or ended stream stays so */
				break;
			}
			if (n == 0 && left == before && before > 0)
				__builtin_trap(); /* no progress with input and room */
			if (n == 0 && before == 0)
				break;
		}
		off += chunk - left;
		if (left > 0)
			break;
	}
	zlayer_free(&z);
}

/* deflate then inflate must give back the bytes. */
static void roundtrip(const char *data, size_t len)
{
	const char *error;
	struct zlayer *tx = zlayer_new(&error), *rx = zlayer_new(&error);
	char wire[8192], back[8192];
	const char *p = data;
	size_t left = len, got = 0;

	for (;;) {
		size_t n;
		int more = zlayer_deflate(tx, &p, &left, wire,
					     ZLAYER_OUT_MIN + len % (sizeof(wire) - ZLAYER_OUT_MIN),
					     &n, true);
		const char *w = wire;
		size_t wl = n;
		while (wl > 0) {
			size_t m;
			if (zlayer_inflate(rx, &w, &wl, back, sizeof(back), &m, &error) != 0)
				__builtin_trap();
			if (got + m > len || memcmp(data + got, back, m) != 0)
				__builtin_trap();
			got += m;
		}
		if (!more)
			break;
	}
	if (got != len || zlayer_dirty(tx))
		__builtin_trap();
	zlayer_free(&tx);
	zlayer_free(&rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t feed = data[0] % 33;            /* 0: whole */
	size_t out_size = 1 + data[1] % 64 * 64;
	struct result whole, pieces;

	run(data + 2, size - 2, 0, 4096, &whole);
	run(data + 2, size - 2, feed, out_size, &pieces);
	/* the same bytes up to where either stopped (the cap may cut one short) */
	size_t common = whole.len < pieces.len ? whole.len : pieces.len;
	if (memcmp(whole.out, pieces.out, common) != 0)
		__builtin_trap();
	if (whole.len < OUT_CAP && pieces.len < OUT_CAP &&
	    (whole.len != pieces.len || whole.end != pieces.end))
		__builtin_trap();
	roundtrip(whole.out, whole.len < 65536 ? whole.len : 65536);
	free(whole.out);
	free(pieces.out);
	return 0;
}
