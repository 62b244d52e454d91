/* FETCH BINARY[section]<partial> and BINARY.SIZE[section] (RFC 3516): a part's body with
 * its Content-Transfer-Encoding undone, as a stream.  No I/O.
 *
 * - base64 (base64.h, tolerant: line breaks and junk skipped) and quoted-printable
 *   (qp.h) are decoded; 7bit, 8bit, binary and none pass as they are.
 * - Line ends: the stored message may have bare LFs; the canonical form the content
 *   stands for has CRLF.  Identity encodings are converted to CRLF (the same octets as
 *   BODY[part]); quoted-printable is converted to CRLF before decoding, so its hard line
 *   breaks come out as CRLF while an encoded =0A stays a lone LF; base64 is not touched
 *   (its line breaks are not content).
 * - Any other encoding: imap_binary_init() fails; the daemon answers
 *   NO [UNKNOWN-CTE] (RFC 3516 section 4.3).
 * - The decoded size and whether a NUL occurs are known only after a decoding pass:
 *   BINARY.SIZE and the literal's {n} need a first pass with a window that only counts
 *   (imap_window_init(..., NULL, NULL)), then the sending pass.  A NUL means the literal
 *   must be literal8 ~{n} (RFC 3516 section 4.2).  The pair (size, has_nul) per part is
 *   worth keeping in the index cache: it never changes for a message.
 * - BINARY[] (no part numbers): the whole message, as BODY[] (no decoding). */
#ifndef POSTERN_IMAP_BINARY_H
#define POSTERN_IMAP_BINARY_H
#include <stdbool.h>
#include <stdint.h>
#include "imap/imap_section.h"
#include "mail/base64.h"
#include "mail/qp.h"

struct imap_binary {
	enum { IMAP_BIN_IDENTITY, IMAP_BIN_BASE64, IMAP_BIN_QP } enc;
	struct crlf_state crlf;
	struct base64_decoder b64;
	struct qp_decoder qp;
	struct imap_window *w;
	uint64_t size;        /* decoded octets so far (all of them, before the window) */
	bool has_nul;
};

/* The encoding to decode for a section: NULL (none) for BINARY[], else the part's. */
const char *imap_binary_encoding(const struct imap_fetch_section *sec,
				 const struct imap_section_plan *plan);
/* encoding lowercase or NULL (mime.h keeps it so).  -1: unknown -> NO [UNKNOWN-CTE]. */
int imap_binary_init(struct imap_binary *d, const char *encoding, struct imap_window *w);
/* The raw body bytes, in any chunks; the decoded octets go to the window. */
int imap_binary_feed(struct imap_binary *d, const void *data, size_t len);
/* After the last chunk: the rest (an unfinished base64 quantum / qp escape). */
int imap_binary_finish(struct imap_binary *d);

#endif
