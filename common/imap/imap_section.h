/* FETCH BODY[section]<partial> and BINARY[section]: which bytes of the stored message a
 * section means, and the streaming converters that produce exactly the octets IMAP sends.
 * No I/O: the daemon reads the raw bytes (mail_reader) and feeds them in; output goes to
 * a caller-supplied sink.
 *
 * Resolution (imap_section_resolve(), RFC 9051 section 6.4.5, RFC 3501 section 6.4.5):
 * - part numbers: a multipart's n-th part; on a message that is not multipart, 1 is
 *   its body (also the message enclosed in a message/rfc822 part: "3.1" is that
 *   message's only part when it is not multipart); a leaf has no parts below it; a
 *   multipart without parts has one, its body (imap_bodystructure.h's made-up part).
 * - HEADER, HEADER.FIELDS(.NOT), TEXT: of the message itself, or with part numbers of
 *   the message enclosed in the message/rfc822 (message/global) part they name.
 * - MIME: the part's own MIME header (its header block, empty line included).
 * - empty (after part numbers or none): the part's body, or the whole message.
 * - A part that does not exist, or HEADER/TEXT after a part that is not a message: not
 *   found; the daemon sends an empty string ("" / {0}), as Dovecot does (the RFC names no
 *   error for it).
 * Every result but HEADER.FIELDS(.NOT) is one contiguous range of the raw message whose
 * CRLF-form size the part tree knows; HEADER.FIELDS(.NOT) is the header's range run
 * through imap_hdrfilter (imap_hdrfilter.h), whose output size is known once it has
 * run (run it twice, count then send, or keep its output; the header is the part's
 * hdr_offset/hdr_size range).
 *
 * Output: whatever is sent goes through an imap_window (imap_window.h): skip the
 * partial's origin octets of the CRLF form, emit at most its count, and pad with spaces
 * to exactly the size that was announced in the literal if the data came out short (a
 * message changed under us):
 * the size in {n} always equals what is sent, so the protocol stays in step. */
#ifndef POSTERN_IMAP_SECTION_H
#define POSTERN_IMAP_SECTION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "imap/imap_fetchatt.h"
#include "imap/imap_hdrfilter.h"
#include "imap/imap_window.h"
#include "imap/imap_write.h"
#include "mail/mime.h"

struct imap_section_plan {
	bool found;                    /* false: send an empty string */
	bool filter;                   /* HEADER.FIELDS(.NOT): feed the range to imap_hdrfilter */
	uint64_t offset, size;         /* the raw bytes to read */
	uint64_t size_crlf;            /* their CRLF-form size (not for filter) */
	const struct mime_part *part;  /* the part named (BINARY decodes its body) */
};

/* Resolve sec against the message's tree.  0; -1 with *error_r for a section this does
 * not serve: BINARY with HEADER/TEXT/MIME (RFC 3516's grammar has only part numbers;
 * imap_fetch_section_parse() refuses them already). */
int imap_section_resolve(const struct imap_fetch_section *sec, const struct mime_part *root,
			 struct imap_section_plan *r, const char **error_r);

/* The literal's size for a full size: all of it without a partial, else
 * min(count, full - origin), 0 when origin is at or past the end. */
uint64_t imap_section_partial_size(const struct imap_fetch_section *sec, uint64_t full);

/* The item name of the response: "BODY[1.HEADER.FIELDS (From)]<0>" (.PEEK dropped,
 * the partial as <origin> only, RFC 9051 section 7.5.2), "BINARY[1]", "BINARY.SIZE[1]".
 * Names of HEADER.FIELDS as astrings. */
int imap_section_write_name(struct imap_buf *b, const struct imap_fetch_section *sec);

#endif
