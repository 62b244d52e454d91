/* qp.c: a table of quoted-printable inputs with the decoded bytes; each fed whole, one
 * byte at a time, and split at every point, always with the smallest output room. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "mail/qp.h"
#include "unit.h"

struct qcase {
	const char *in, *out;
	unsigned bad;
};

static const struct qcase cases[] = {
	{ "", "", 0 },
	{ "abc", "abc", 0 },
	{ "caf=E9", "caf\xe9", 0 },
	{ "caf=e9", "caf\xe9", 0 },                         /* lowercase tolerated */
	{ "a=3D=3d", "a==", 0 },
	{ "soft=\r\nbreak", "softbreak", 0 },
	{ "soft=\nbreak", "softbreak", 0 },
	{ "soft= \t\r\nbreak", "softbreak", 0 },           /* padding after "=" */
	{ "soft=  \nbreak", "softbreak", 0 },
	{ "line  \r\nnext\t\n", "line\r\nnext\n", 0 },      /* trailing whitespace deleted */
	{ "a b\r\n", "a b\r\n", 0 },
	{ "end  ", "end", 0 },                              /* at the end of the data too */
	{ "=G1", "=G1", 1 },                                /* bad escapes literally */
	{ "=4", "=4", 1 },
	{ "=4x", "=4x", 1 },
	{ "=", "=", 1 },
	{ "a= b", "a= b", 1 },
	{ "a=\rb", "a=\rb", 1 },
	{ "a=\r", "a=\r", 1 },
	{ "a\rb", "a\rb", 0 },                               /* lone CR is data */
	{ "a \rb", "a \rb", 0 },
	{ "a\r", "a\r", 0 },
	{ "==41", "=A", 1 },
	{ "=\r\n=\r\n=41", "A", 0 },
	{ "x\0y", "x\0y", 0 }, /* (strlen cuts it: 'x') */
};

static char *decode(const char *in, size_t len, size_t split, size_t step, size_t *len_r,
		    unsigned *bad_r)
{
	struct qp_decoder d;
	char *out = xmalloc(len * 2 + QP_MIN_OUT * 2);
	char tmp[QP_MIN_OUT];
	size_t o = 0, i = 0;

	qp_decode_init(&d);
	while (i < len) {
		size_t n = len - i, used;
		if (i < split && n > split - i)
			n = split - i;
		if (step && n > step)
			n = step;
		size_t w = qp_decode_update(&d, in + i, n, tmp, sizeof(tmp), &used);
		memcpy(out + o, tmp, w);
		o += w;
		i += used;
	}
	o += qp_decode_finish(&d, out + o);
	*len_r = o;
	*bad_r = (unsigned)d.bad;
	return out;
}

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct qcase *c = &cases[i];
		size_t len = strlen(c->in), olen = strlen(c->out), n;
		unsigned bad;
		char *s = decode(c->in, len, 0, 0, &n, &bad);
		if (n != olen || memcmp(s, c->out, n) != 0)
			fprintf(stderr, "case %zu <%s> got <%.*s>\n", i, c->in, (int)n, s);
		CHECK(n == olen && memcmp(s, c->out, n) == 0 && bad == c->bad);
		free(s);
		s = decode(c->in, len, 0, 1, &n, &bad);
		CHECK(n == olen && memcmp(s, c->out, n) == 0 && bad == c->bad);
		free(s);
		for (size_t k = 0; k <= len; k++) {
			s = decode(c->in, len, k, 0, &n, &bad);
			CHECK(n == olen && memcmp(s, c->out, n) == 0);
			free(s);
		}
	}
	/* a whitespace run longer than QP_MAX_PENDING_WS: passed on as it comes, and the
	 * part still held at the line end is deleted */
	char in[QP_MAX_PENDING_WS * 3 + 4];
	memset(in, ' ', sizeof(in));
	in[0] = 'a';
	memcpy(in + sizeof(in) - 3, "b\r\n", 3);
	size_t n;
	unsigned bad;
	char *s = decode(in, sizeof(in), 0, 0, &n, &bad);
	CHECK(n == sizeof(in) && memcmp(s, in, n) == 0);
	free(s);
	in[sizeof(in) - 3] = ' ';
	s = decode(in, sizeof(in), 0, 0, &n, &bad);
	CHECK(n < sizeof(in) && s[0] == 'a' && n >= 3 && memcmp(s + n - 2, "\r\n", 2) == 0);
	free(s);
	/* room: a call with less than QP_MIN_OUT consumes nothing */
	struct qp_decoder d;
	char tmp[QP_MIN_OUT];
	size_t used = 99;
	qp_decode_init(&d);
	CHECK(qp_decode_update(&d, "abc", 3, tmp, QP_MAX_PENDING_WS + 3, &used) == 0 && used == 0);
	CHECK(qp_decode_update(&d, "abc", 3, tmp, QP_MIN_OUT, &used) == 3 && used == 3);
	return unit_done("test_qp");
}
