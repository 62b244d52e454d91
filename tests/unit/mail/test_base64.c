/* base64.c: a table of MIME base64 inputs with the decoded bytes (line breaks, junk,
 * padding in the middle); each fed whole, one byte at a time with 3 bytes of output
 * room, and split at every point; the encoder's lines and round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "mail/base64.h"
#include "unit.h"

struct bcase {
	const char *in, *out;
	int clean;
	unsigned junk;
};

static const struct bcase cases[] = {
	{ "", "", 1, 0 },
	{ "QQ==", "A", 1, 0 },
	{ "QUI=", "AB", 1, 0 },
	{ "QUJD", "ABC", 1, 0 },
	{ "QUJD\r\nREVG\r\n", "ABCDEF", 1, 0 },
	{ "Q U\tJ\nD", "ABC", 1, 0 },
	{ "QU*JD", "ABC", 1, 1 },                   /* junk ignored */
	{ "QU\xffJD", "ABC", 1, 1 },
	{ "QQ==QkM=", "ABC", 1, 0 },                /* padded blocks concatenated */
	{ "QQ", "A", 0, 0 },                        /* no padding: still decoded */
	{ "QUI", "AB", 0, 0 },
	{ "QUJDR", "ABC", 0, 0 },                   /* 6 bits left over: dropped */
	{ "=QUJD", "ABC", 1, 0 },                   /* '=' out of place: skipped */
	{ "Q=Q==", "A", 1, 0 },
	{ "////", "\xff\xff\xff", 1, 0 },
	{ "++++", "\xfb\xef\xbe", 1, 0 },
};

static char *decode(const char *in, size_t len, size_t split, size_t step, size_t *len_r,
		    int *clean_r, unsigned *junk_r)
{
	struct base64_decoder d;
	char *out = xmalloc(len + 8);
	char tmp[3];
	size_t o = 0, i = 0, w;

	base64_decode_init(&d);
	while (i < len) {
		size_t n = len - i, used;
		if (i < split && n > split - i)
			n = split - i;
		if (step && n > step)
			n = step;
		w = base64_decode_update(&d, in + i, n, tmp, sizeof(tmp), &used);
		memcpy(out + o, tmp, w);
		o += w;
		i += used;
	}
	*clean_r = base64_decode_finish(&d, out + o, &w);
	o += w;
	*len_r = o;
	*junk_r = (unsigned)d.junk;
	return out;
}

static void decoding(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bcase *c = &cases[i];
		size_t len = strlen(c->in), olen = strlen(c->out), n;
		int clean;
		unsigned junk;
		char *s = decode(c->in, len, 0, 0, &n, &clean, &junk);
		if (n != olen || memcmp(s, c->out, n) != 0)
			fprintf(stderr, "case %zu <%s>\n", i, c->in);
		CHECK(n == olen && memcmp(s, c->out, n) == 0 && clean == c->clean &&
		      junk == c->junk);
		free(s);
		s = decode(c->in, len, 0, 1, &n, &clean, &junk);
		CHECK(n == olen && memcmp(s, c->out, n) == 0 && clean == c->clean);
		free(s);
		for (size_t k = 0; k <= len; k++) {
			s = decode(c->in, len, k, 0, &n, &clean, &junk);
			CHECK(n == olen && memcmp(s, c->out, n) == 0);
			free(s);
		}
	}
}

static void encoding(void)
{
	char out[64];
	CHECK(base64_encode("", 0, out) == 0 && out[0] == '\0');
	base64_encode("A", 1, out);
	CHECK_STR(out, "QQ==");
	base64_encode("AB", 2, out);
	CHECK_STR(out, "QUI=");
	base64_encode("ABC", 3, out);
	CHECK_STR(out, "QUJD");

	/* streaming with lines: every length 0..300, fed in uneven chunks */
	unsigned char data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 37 + 11);
	int bad = 0;
	for (size_t len = 0; len <= sizeof(data); len++) {
		struct base64_encoder e;
		char *enc = xmalloc(BASE64_ENCODE_MAX(len) + BASE64_FINISH_MAX + 1);
		size_t o = 0;
		base64_encode_init(&e);
		for (size_t i = 0; i < len;) {
			size_t n = (i % 5) + 1;
			if (n > len - i)
				n = len - i;
			o += base64_encode_update(&e, data + i, n, enc + o);
			i += n;
		}
		o += base64_encode_finish(&e, enc + o);
		if (o > BASE64_ENCODE_MAX(len) + BASE64_FINISH_MAX)
			bad++;
		/* lines of 76 characters, CRLF after each, the last one too */
		size_t col = 0;
		for (size_t i = 0; i < o; i++) {
			if (enc[i] == '\r') {
				if (i + 1 >= o || enc[i + 1] != '\n' || (col != 76 && i + 2 != o))
					bad++;
				col = 0;
				i++;
			} else {
				col++;
			}
		}
		if (col != 0 || (len > 0 && (o < 2 || enc[o - 1] != '\n')) || (len == 0 && o != 0))
			bad++;
		size_t n;
		int clean;
		unsigned junk;
		char *dec = decode(enc, o, 0, 0, &n, &clean, &junk);
		if (n != len || memcmp(dec, data, len) != 0 || !clean || junk != 0)
			bad++;
		free(dec);
		free(enc);
	}
	CHECK(bad == 0);
}

int main(void)
{
	decoding();
	encoding();
	return unit_done("test_base64");
}
