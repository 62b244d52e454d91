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
 * through imap_hdrfilter, whose output size is known once it has run (run it twice:
 * count, then send, or keep its output; the header is one range, MIME_PART's hdr_size).
 *
 * Output: whatever is sent goes through an imap_window: skip the partial's origin octets
 * of the CRLF form, emit at most its count, and pad with spaces to exactly the size that
 * was announced in the literal if the data came out short (a message changed under us):
 * the size in {n} always equals what is sent, so the protocol stays in step. */
#ifndef POSTERN_IMAP_SECTION_H
#define POSTERN_IMAP_SECTION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "imap/imap_fetchatt.h"
#include "imap/imap_write.h"
#include "mail/crlf.h"
#include "mail/mime.h"

/* A sink for output: 0, or -1 to stop (the error is the caller's). */
typedef int imap_sink_fn(void *ctx, const void *data, size_t len);

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

/* ---- output window: skip, limit, exact size ---- */
struct imap_window {
	uint64_t skip;        /* octets still to drop */
	uint64_t left;        /* octets still to send */
	uint64_t total;       /* octets seen (before skipping): the full size so far */
	imap_sink_fn *sink;
	void *ctx;
};
/* sink may be NULL: only count (total). */
void imap_window_init(struct imap_window *w, uint64_t skip, uint64_t max,
		      imap_sink_fn *sink, void *ctx);
int imap_window_put(struct imap_window *w, const void *data, size_t len);
/* Send spaces for whatever of max was not sent (normally nothing). */
int imap_window_pad(struct imap_window *w);

/* ---- LF -> CRLF on the way to a window (crlf.h's converter, no dot-stuffing) ---- */
struct imap_crlf_out {
	struct crlf_state st;
	struct imap_window *w;
};
void imap_crlf_out_init(struct imap_crlf_out *o, struct imap_window *w);
int imap_crlf_out_feed(struct imap_crlf_out *o, const void *data, size_t len);

/* ---- HEADER.FIELDS filter ----
 * Fed a header block's raw bytes (LF or CRLF), it passes on the fields whose name is (or,
 * with .NOT, is not) among names, case-insensitively, with their folded lines, in CRLF
 * form; after the header's empty line (or at finish if there was none) the empty line
 * "\r\n" that RFC 9051 wants after the subset.  A line without a colon is a field named
 * by the line (trailing white space cut); a name over IMAP_HDRFILTER_NAME_MAX matches no
 * requested name.  Bytes after the empty line are ignored. */
#define IMAP_HDRFILTER_NAME_MAX 256   /* BOUNDS: longer than any field name clients ask */
struct imap_hdrfilter {
	const char *const *names;
	size_t nnames;
	bool not;
	enum { HF_BOL, HF_NAME, HF_LINE, HF_DONE } state;
	bool keep;                    /* the current field is passed on */
	bool prev_cr;
	char name[IMAP_HDRFILTER_NAME_MAX];
	size_t nlen;
	bool name_long;
	struct imap_window *w;
};
void imap_hdrfilter_init(struct imap_hdrfilter *f, const char *const *names, size_t n,
			 bool not, struct imap_window *w);
int imap_hdrfilter_feed(struct imap_hdrfilter *f, const void *data, size_t len);
int imap_hdrfilter_finish(struct imap_hdrfilter *f);

#endif
