/* Quoted-printable decoding (RFC 2045 section 6.7), streaming.  No I/O.
 * - "=XX" (hex, either case) is the byte; "=" at the end of a line (CRLF or bare LF,
 *   whitespace allowed between) is a soft line break: nothing.
 * - A bad escape ("=G1", "=4", a lone "=") is passed on literally, as section 6.7 note
 *   (2) suggests, and counted in bad.
 * - Whitespace at the end of a line, or of the data, is deleted (rule 3); line breaks
 *   are passed on as they came (CRLF or LF); a CR not before LF is data.
 * Decided byte by byte: any chunking of the input gives the same output. */
#ifndef POSTERN_QP_H
#define POSTERN_QP_H
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"

struct qp_decoder {
	unsigned state;
	char hex1;                      /* first hex digit of "=X" */
	unsigned char ws[QP_MAX_PENDING_WS];
	unsigned nws;                   /* whitespace held, not yet known to be trailing */
	uint64_t bad;                   /* bad escapes passed on literally */
};

/* Output room each call must offer so that one byte can always be decoded. */
#define QP_MIN_OUT (QP_MAX_PENDING_WS + 8)

void qp_decode_init(struct qp_decoder *d);
/* Decode in[0..len) into out (out_size >= QP_MIN_OUT); returns the bytes written and
 * sets *consumed_r (all of len unless out filled up: call again with the rest). */
size_t qp_decode_update(struct qp_decoder *d, const char *in, size_t len, char *out,
			size_t out_size, size_t *consumed_r);
/* After the last chunk: an unfinished escape, literally (out: QP_MIN_OUT bytes). */
size_t qp_decode_finish(struct qp_decoder *d, char *out);

#endif
