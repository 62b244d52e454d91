/* libFuzzer: the mbox "From " splitter.  Byte 0 seeds the chunking and picks a message
 * limit; the rest is the file.  Checks: the same messages for any chunking; every
 * message starts with "From " at offset 0 or after an empty line, lies inside the data,
 * in order; its size is crlf_size() of its content; re-hashing each message alone (what
 * commit does) gives the same digest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/crlf.h"
#include "storage/mbox.h"

static struct mbox_parser *run(const uint8_t *in, size_t len, unsigned seed, size_t max,
			       int *ret)
{
	struct mbox_parser *p = mbox_parser_new(0, max, false);
	uint32_t x = seed * 2654435761u + 3;
	size_t i = 0;
	int r = 0;
	while (i < len && r == 0) {
		size_t n = len - i;
		if (seed != 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 17;
			if (n > len - i)
				n = len - i;
		}
		r = mbox_parser_feed(p, in + i, n);
		i += n;
	}
	if (r != -1)
		r = mbox_parser_finish(p);
	*ret = r;
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned seed = data[0] | 1;
	size_t max = (data[0] & 0x80) ? (size_t)(data[0] & 7) : MSTORE_MAX_MESSAGES;
	const uint8_t *in = data + 1;
	size_t len = size - 1;
	int ra, rb;
	struct mbox_parser *a = run(in, len, 0, max, &ra);
	struct mbox_parser *b = run(in, len, seed, max, &rb);
	size_t na, nb;
	const struct mbox_msginfo *ma = mbox_parser_msgs(a, &na);
	const struct mbox_msginfo *mb = mbox_parser_msgs(b, &nb);
	if (ra != rb || (ra == 0 && (na != nb || mbox_parser_end(a) != mbox_parser_end(b))))
		abort();
	if (ra == 0) {
		if (na > 0 && memcmp(ma, mb, na * sizeof(*ma)) != 0)
			abort();
		if (na > max || mbox_parser_end(a) > len)
			abort();
		uint64_t prev_end = 0;
		for (size_t i = 0; i < na; i++) {
			const struct mbox_msginfo *m = &ma[i];
			uint64_t region_end = i + 1 < na ? ma[i + 1].from_off : mbox_parser_end(a);
			if (m->from_off != prev_end || m->from_off + 5 > len ||
			    memcmp(in + m->from_off, "From ", 5) != 0)
				abort();
			if (m->from_off == 1)
				abort();
			if (m->from_off > 0 && !(in[m->from_off - 1] == '\n' &&
			    (in[m->from_off - 2] == '\n' ||
			     (m->from_off >= 3 && in[m->from_off - 2] == '\r' &&
			      in[m->from_off - 3] == '\n'))))
				abort();
			if (m->body_off < m->from_off + 5 || m->body_off + m->raw_len > region_end)
				abort();
			if (crlf_size((const char *)in + m->body_off, m->raw_len, NULL) != m->size)
				abort();
			/* the commit check: this message alone hashes the same */
			struct mbox_parser *h = mbox_parser_new(m->from_off, 1, true);
			if (mbox_parser_feed(h, in + m->from_off, region_end - m->from_off) == -1 ||
			    mbox_parser_finish(h) == -1)
				abort();
			size_t nh;
			const struct mbox_msginfo *mh = mbox_parser_msgs(h, &nh);
			if (nh != 1 || mh[0].body_off != m->body_off ||
			    memcmp(mh[0].digest, m->digest, MBOX_DIGEST_LEN) != 0)
				abort();
			mbox_parser_free(&h);
			prev_end = region_end;
		}
		if (len > 0 && na == 0 && max > 0)
			abort(); /* a non-empty mbox has a first message */
	} else if (len >= 5 && memcmp(in, "From ", 5) == 0) {
		abort(); /* starts with "From ": never "not an mbox" */
	}
	mbox_parser_free(&a);
	mbox_parser_free(&b);
	return 0;
}
