/* libFuzzer: the MIME part-tree parser.  Byte 0 seeds the chunking; the rest is a
 * message.  Checks: any chunking gives the same tree and envelope; the root covers the
 * whole message; the tree serialises, reads back (passing every check of the reader) and
 * is equal; the envelope likewise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/mime.h"

static struct mime_part *run(const uint8_t *in, size_t len, unsigned seed,
			     struct mail_envelope_fields **env_r)
{
	struct mime_parser *p = mime_parser_new();
	uint32_t x = seed * 2654435761u + 1;
	struct mime_part *root;
	for (size_t i = 0; i < len;) {
		size_t n = len - i;
		if (seed != 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 23;
			if (n > len - i)
				n = len - i;
		}
		mime_parser_feed(p, in + i, n);
		i += n;
	}
	mime_parser_finish(&p, &root, env_r);
	return root;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct mail_envelope_fields *ea, *eb, *ec = NULL;
	struct mime_part *a = run(data + 1, size - 1, 0, &ea);
	struct mime_part *b = run(data + 1, size - 1, data[0] | 1u, &eb);
	if (!mimeser_parts_equal(a, b) || !mimeser_envelope_equal(ea, eb))
		abort();
	if (a->hdr_size + a->body_size != size - 1)
		abort();
	size_t len;
	const char *error;
	unsigned char *ser = mimeser_parts_write(a, &len);
	struct mime_part *c = NULL;
	if (mimeser_parts_read(ser, len, &c, &error) != 0 || !mimeser_parts_equal(a, c))
		abort();
	free(ser);
	ser = mimeser_envelope_write(ea, &len);
	if (mimeser_envelope_read(ser, len, &ec, &error) != 0 ||
	    !mimeser_envelope_equal(ea, ec))
		abort();
	free(ser);
	mime_part_free(&a);
	mime_part_free(&b);
	mime_part_free(&c);
	mime_envelope_free(&ea);
	mime_envelope_free(&eb);
	mime_envelope_free(&ec);
	return 0;
}
