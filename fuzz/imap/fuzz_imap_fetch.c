/* libFuzzer: imap_bodystructure.c and imap_envelope.c.  The input is a message; byte 0
 * picks the flags (UTF8=ACCEPT, message/global).  It is parsed into its part tree
 * (mime.h, in chunks) and BODY, BODYSTRUCTURE and ENVELOPE are formatted; each output
 * must be one well-formed response value (balanced lists, no CR/LF/NUL outside literals,
 * literal sizes right: imap_resp_check.h), and the command parser must read it back as
 * one list when it is within the parser's limits.  The tree read back from its cache form
 * (mimeser) must give the same BODYSTRUCTURE. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "imap/imap_respcheck.h"
#include "base/plimits.h"

static void check(const struct imap_buf *b, bool utf8)
{
	char *sp;
	size_t splen;
	unsigned depth;
	if (!imap_respcheck_value(b->data, b->len, utf8, &sp, &splen, &depth))
		abort();
	if (splen < 16384 && depth < IMAP_MAX_LIST_DEPTH && !imap_respcheck_reparse(sp, splen, utf8))
		abort();
	free(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned sel = data[0];
	data++;
	size--;
	unsigned flags = ((sel & 1) ? IMAP_WRITE_UTF8 : 0) | ((sel & 2) ? IMAP_BS_GLOBAL : 0);
	size_t chunk = (sel >> 2) + 1;
	struct mime_parser *p = mime_parser_new();
	for (size_t i = 0; i < size; i += chunk)
		mime_parser_feed(p, data + i, size - i < chunk ? size - i : chunk);
	struct mime_part *root;
	struct mail_envelope_fields *env;
	mime_parser_finish(&p, &root, &env);

	struct imap_buf b;
	imap_buf_init(&b, 16 * 1024 * 1024);
	if (imap_envelope_write(&b, env, flags) == 0)
		check(&b, (flags & IMAP_WRITE_UTF8) != 0);
	imap_buf_reset(&b);
	if (imap_bodystructure_write(&b, root, flags) == 0)
		check(&b, (flags & IMAP_WRITE_UTF8) != 0);
	imap_buf_reset(&b);
	if (imap_bodystructure_write(&b, root, flags | IMAP_BS_EXTENDED) == 0) {
		check(&b, (flags & IMAP_WRITE_UTF8) != 0);
		/* the cached form gives the same answer */
		size_t len;
		unsigned char *ser = mimeser_parts_write(root, &len);
		struct mime_part *back;
		const char *error;
		if (mimeser_parts_read(ser, len, &back, &error) != 0)
			abort();
		struct imap_buf b2;
		imap_buf_init(&b2, 16 * 1024 * 1024);
		if (imap_bodystructure_write(&b2, back, flags | IMAP_BS_EXTENDED) != 0 ||
		    b2.len != b.len || memcmp(b2.data, b.data, b.len) != 0)
			abort();
		imap_buf_free(&b2);
		mime_part_free(&back);
		free(ser);
	}
	imap_buf_free(&b);
	mime_envelope_free(&env);
	mime_part_free(&root);
	return 0;
}
