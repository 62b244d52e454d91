/* libFuzzer: the SMTP DATA reader (smtpdata.c).  Byte 0 picks a line limit and a size
 * limit, byte 1 seeds the chunking; the rest is what a client sends after 354.  Fed whole
 * and in chunks, the results must be the same.  Checks on every call: output within
 * len + 1, everything taken short of the end.  At the end: the input taken ends with
 * ".\r\n" that starts the data or follows "\r\n"; the message never holds more than
 * size_max bytes and ends with CRLF; without problems found, the message stuffed again
 * and read again comes back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/smtpdata.h"

struct run {
	char *msg;
	size_t msg_len, used;
	struct smtpdata d;
};

static void parse(const char *in, size_t len, size_t line_max, uint64_t size_max,
		  unsigned seed, struct run *r)
{
	uint32_t x = seed * 2654435761u + 3;
	size_t i = 0;

	r->msg = malloc(len + 2);
	r->msg_len = 0;
	smtpdata_init(&r->d, line_max, size_max);
	while (i < len && !r->d.done) {
		size_t n = len - i;
		if (seed != 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 11;
			if (n > len - i)
				n = len - i;
		}
		size_t olen, used;
		int rc = smtpdata_parse(&r->d, in + i, n, r->msg + r->msg_len, &olen, &used);
		if (olen > n + 1 || used > n || (rc == 0 && used != n) || rc != r->d.done)
			abort();
		r->msg_len += olen;
		i += used;
	}
	r->used = i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t line_max = (data[0] & 0x0f) == 0 ? 0 : 2 + (data[0] & 0x0f);
	uint64_t size_max = (data[0] >> 4) == 0 ? 0 : (uint64_t)(data[0] >> 4) * 3;
	const char *in = (const char *)data + 2;
	size_t len = size - 2;
	struct run a, b;

	parse(in, len, line_max, size_max, 0, &a);
	parse(in, len, line_max, size_max, data[1] | 1u, &b);
	if (a.used != b.used || a.msg_len != b.msg_len ||
	    memcmp(a.msg, b.msg, a.msg_len) != 0 || a.d.flags != b.d.flags ||
	    a.d.done != b.d.done || a.d.lines != b.d.lines || a.d.size != b.d.size ||
	    a.d.first_bad_line != b.d.first_bad_line)
		abort();
	if (size_max != 0 && a.msg_len > size_max)
		abort();
	if (a.d.done) {
		size_t e = a.used;
		if (e < 3 || memcmp(in + e - 3, ".\r\n", 3) != 0 ||
		    (e > 3 && (e < 5 || memcmp(in + e - 5, "\r\n", 2) != 0)))
			abort();
		if ((a.d.flags & SMTPDATA_TOO_BIG) == 0 && a.msg_len > 0 &&
		    (a.msg_len < 2 || memcmp(a.msg + a.msg_len - 2, "\r\n", 2) != 0))
			abort();
		if (a.d.flags == 0) {
			char *again = malloc(2 * a.msg_len + 3);
			size_t n = 0;
			for (size_t i = 0; i < a.msg_len; i++) {
				if (a.msg[i] == '.' && (i == 0 || a.msg[i - 1] == '\n'))
					again[n++] = '.';
				again[n++] = a.msg[i];
			}
			memcpy(again + n, ".\r\n", 3);
			n += 3;
			struct run c;
			parse(again, n, 0, 0, 0, &c);
			if (!c.d.done || c.used != n || c.msg_len != a.msg_len ||
			    memcmp(c.msg, a.msg, a.msg_len) != 0)
				abort();
			free(c.msg);
			free(again);
		}
	}
	free(a.msg);
	free(b.msg);
	return 0;
}
