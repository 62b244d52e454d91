/* The output side of FETCH literals: a window over a stream of octets that drops the
 * first `skip` (a partial's origin), passes at most `max` (its count, or the announced
 * size) to a sink, counts everything it saw (the full size, for a counting pass), and
 * pads with spaces to exactly the announced size if the source came out short (a message
 * changed under us), so a literal's {n} is always what is sent.  And an LF -> CRLF
 * converter in front of it.  No I/O. */
#ifndef POSTERN_IMAP_WINDOW_H
#define POSTERN_IMAP_WINDOW_H
#include <stddef.h>
#include <stdint.h>
#include "mail/crlf.h"

/* A sink for output: 0, or -1 to stop (the error is the caller's). */
typedef int imap_sink_fn(void *ctx, const void *data, size_t len);

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

/* LF -> CRLF on the way to a window (crlf.h's converter, no dot-stuffing). */
struct imap_window_crlf {
	struct crlf_state st;
	struct imap_window *w;
};
void imap_window_crlf_init(struct imap_window_crlf *o, struct imap_window *w);
int imap_window_crlf_feed(struct imap_window_crlf *o, const void *data, size_t len);

#endif
