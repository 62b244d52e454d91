/* libFuzzer: the MIME base64 decoder and the line encoder.  Byte 0 seeds the chunking
 * and the output room; the rest is the text.  Checks: chunked input with any room >= 3
 * decodes to what the whole input does; the output is at most 3/4 of the input; and the
 * decoded bytes, encoded with lines in chunks, decode back to themselves. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/base64.h"

static char *decode(const char *in, size_t len, unsigned seed, size_t *len_r, int *clean_r)
{
	struct base64_decoder d;
	uint32_t x = seed * 2654435761u + 1;
	char *out = malloc(len + 8);
	char tmp[16];
	size_t o = 0, i = 0, w;

	base64_decode_init(&d);
	while (i < len) {
		size_t n = len - i, room = sizeof(tmp), used;
		if (seed != 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 13;
			if (n > len - i)
				n = len - i;
			room = 3 + (x >> 8) % 8;
		}
		w = base64_decode_update(&d, in + i, n, tmp, room, &used);
		if (w > room || used > n || (used == 0 && n > 0))
			abort();
		memcpy(out + o, tmp, w);
		o += w;
		i += used;
	}
	*clean_r = base64_decode_finish(&d, out + o, &w);
	*len_r = o + w;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *in = (const char *)data + 1;
	size_t len = size - 1, la, lb;
	int ca, cb;
	char *a = decode(in, len, 0, &la, &ca);
	char *b = decode(in, len, data[0] | 1, &lb, &cb);
	if (la != lb || memcmp(a, b, la) != 0 || ca != cb || la > len / 4 * 3 + 2)
		abort();

	struct base64_encoder e;
	char *enc = malloc(BASE64_ENCODE_MAX(la) + BASE64_FINISH_MAX);
	size_t o = 0;
	base64_encode_init(&e);
	for (size_t i = 0; i < la;) {
		size_t n = 1 + (i * 7 + data[0]) % 11;
		if (n > la - i)
			n = la - i;
		o += base64_encode_update(&e, a + i, n, enc + o);
		i += n;
	}
	o += base64_encode_finish(&e, enc + o);
	if (o > BASE64_ENCODE_MAX(la) + BASE64_FINISH_MAX)
		abort();
	size_t lc;
	int cc;
	char *c = decode(enc, o, data[0], &lc, &cc);
	if (lc != la || memcmp(c, a, la) != 0 || !cc)
		abort();
	free(a);
	free(b);
	free(c);
	free(enc);
	return 0;
}
