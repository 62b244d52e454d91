/* FETCH BODY[HEADER.FIELDS (...)] and HEADER.FIELDS.NOT: a streaming filter.  Fed a
 * header block's raw bytes (LF or CRLF), it passes on the fields whose name is (or,
 * with .NOT, is not) among names, case-insensitively, with their folded lines, in CRLF
 * form; after the header's empty line (or at finish if there was none) the empty line
 * "\r\n" that RFC 9051 wants after the subset.  A line without a colon is a field named
 * by the line (trailing white space cut); a name over IMAP_HDRFILTER_NAME_MAX matches no
 * requested name.  Bytes after the empty line are ignored.  No I/O. */
#ifndef POSTERN_IMAP_HDRFILTER_H
#define POSTERN_IMAP_HDRFILTER_H
#include <stdbool.h>
#include <stddef.h>
#include "imap/imap_window.h"

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
