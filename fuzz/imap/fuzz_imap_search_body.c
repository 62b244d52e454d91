/* libFuzzer: the body matcher (imap_search_body_contains()) streaming in small reads
 * against the same message read whole.  Byte 0: the read size (1..256); byte 1: the
 * needle's length n; the next n bytes: the needle (folded as SEARCH compiles it); the
 * rest: the message.  Checks: the answer is the same for whole and chunked reads, with
 * the MIME tree parsed by the library or given by the daemon, and never an error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_search.h"
#include "mail/charset.h"
#include "mail/mime.h"

struct rd {
	const char *d;
	size_t len, chunk;
};

static int rd_read(void *ctx, uint64_t off, void *buf, size_t len, size_t *got_r)
{
	struct rd *r = ctx;
	*got_r = 0;
	if (off >= r->len)
		return 0;
	size_t n = r->len - (size_t)off;
	if (n > len)
		n = len;
	if (n > r->chunk)
		n = r->chunk;
	memcpy(buf, r->d + off, n);
	*got_r = n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 65536)
		return 0;
	size_t chunk = (size_t)data[0] + 1, nlen = data[1];
	if (size < 2 + nlen)
		return 0;
	size_t flen;
	char *needle = charset_search_fold((const char *)data + 2, nlen, &flen);
	const char *msg = (const char *)data + 2 + nlen;
	size_t mlen = size - 2 - nlen;

	struct imap_search_msg whole = { .data = msg, .data_len = mlen };
	int a = imap_search_body_contains(&whole, needle, flen, 0);
	struct rd rd = { msg, mlen, chunk };
	struct imap_search_msg part = { .ctx = &rd, .read = rd_read };
	int b = imap_search_body_contains(&part, needle, flen, chunk);
	struct mime_parser *mp = mime_parser_new();
	struct mime_part *root;
	mime_parser_feed(mp, msg, mlen);
	mime_parser_finish(&mp, &root, NULL);
	part.parts = root;
	int c = imap_search_body_contains(&part, needle, flen, chunk);
	int d = imap_search_body_contains(&part, needle, flen, 1);
	mime_part_free(&root);
	free(needle);
	if (a < 0 || a != b || a != c || a != d)
		abort();
	return 0;
}
