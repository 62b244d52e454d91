/* libFuzzer: the quoted-printable decoder.  Byte 0 seeds the chunking and the output
 * room; the rest is the encoded text.  Checks: the output of chunked input, with any
 * room >= QP_MIN_OUT, equals that of the whole input; it is never longer than the input
 * (the decoder only removes or keeps bytes); bad escapes count the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/qp.h"

static char *decode(const uint8_t *in, size_t len, unsigned seed, size_t *len_r,
		    uint64_t *bad_r)
{
	struct qp_decoder d;
	uint32_t x = seed * 2654435761u + 1;
	char *out = malloc(len + 2 * QP_MIN_OUT);
	char tmp[QP_MIN_OUT + 16];
	size_t o = 0, i = 0;

	qp_decode_init(&d);
	while (i < len) {
		size_t n = len - i, room = sizeof(tmp), used;
		if (seed != 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 13;
			if (n > len - i)
				n = len - i;
			room = QP_MIN_OUT + (x >> 8) % 16;
		}
		size_t w = qp_decode_update(&d, (const char *)in + i, n, tmp, room, &used);
		if (w > room || used > n || (used == 0 && n > 0))
			abort();
		memcpy(out + o, tmp, w);
		o += w;
		i += used;
	}
	o += qp_decode_finish(&d, out + o);
	*len_r = o;
	*bad_r = d.bad;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t la, lb;
	uint64_t ba, bb;
	char *a = decode(data + 1, size - 1, 0, &la, &ba);
	char *b = decode(data + 1, size - 1, data[0] | 1, &lb, &bb);
	if (la != lb || memcmp(a, b, la) != 0 || ba != bb || la > size - 1)
		abort();
	free(a);
	free(b);
	return 0;
}
