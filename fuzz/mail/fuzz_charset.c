/* libFuzzer: charset conversion and the SEARCH fold.  Byte 0 picks a charset from the
 * list and seeds the chunking; the rest is the text.  Checks: the output is valid UTF-8,
 * the same for any chunking and any output room >= CHARSET_MIN_OUT, at most 4 bytes per
 * input byte (+ the pending flush); the fold is valid UTF-8, idempotent, <= 3x. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/charset.h"

static const char *const names[] = {
	"utf-8", "us-ascii", "iso-8859-1", "iso-8859-2", "koi8-r", "gb2312", "gbk",
	"gb18030", "big5", "shift_jis", "euc-jp", "iso-2022-jp", "utf-16", "utf-7",
	"windows-1251", "euc-kr",
};

static char *convert(const char *cs, const uint8_t *in, size_t len, unsigned seed,
		     size_t *len_r)
{
	struct charset_conv *conv;
	const char *err;
	uint32_t x = seed * 2654435761u + 1;
	char *out = malloc(len * 4 + 4 * CHARSET_MIN_OUT);
	size_t o = 0, i = 0;

	if (charset_to_utf8_begin(cs, &conv, &err) < 0)
		abort();
	while (i < len) {
		size_t n = len - i, room = CHARSET_MIN_OUT, used;
		if (seed != 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 9;
			if (n > len - i)
				n = len - i;
			room += (x >> 8) % 7;
		} else {
			room = len * 4 + 2 * CHARSET_MIN_OUT;
		}
		if (room > len * 4 + 4 * CHARSET_MIN_OUT - o)
			abort();
		o += charset_to_utf8_convert(conv, (const char *)in + i, n, out + o, room, &used);
		i += used;
	}
	o += charset_to_utf8_end(&conv, out + o, CHARSET_MIN_OUT);
	*len_r = o;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *cs = names[data[0] % (sizeof(names) / sizeof(names[0]))];
	unsigned seed = (data[0] >> 4) | 1;
	size_t la, lb, lf, lf2;
	char *a = convert(cs, data + 1, size - 1, 0, &la);
	char *b = convert(cs, data + 1, size - 1, seed, &lb);
	if (la != lb || memcmp(a, b, la) != 0 || !charset_utf8_is_valid(a, la) ||
	    la > (size - 1) * 4 + 3 * 16)
		abort();
	char *f = charset_search_fold((const char *)data + 1, size - 1, &lf);
	char *f2 = charset_search_fold(f, lf, &lf2);
	if (!charset_utf8_is_valid(f, lf) || lf > (size - 1) * 3 || lf2 != lf ||
	    memcmp(f, f2, lf) != 0)
		abort();
	free(a);
	free(b);
	free(f);
	free(f2);
	return 0;
}
