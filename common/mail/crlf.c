/* Stored message bytes -> wire form: CRLF line ends, optional dot-stuffing, and the
 * POP3 TOP cut (header, the empty line, then body_limit body lines).
 *
 * Rules (one byte at a time, so any chunking gives the same output):
 * - LF not preceded by CR becomes CRLF; an existing CRLF stays; a lone CR (not followed
 *   by LF) is passed on as it is and does not end a line, or, strict (cr_ends_line),
 *   gets an LF after it and ends its line like any other: a line that follows it may
 *   then be a '.' line, and is dot-stuffed.
 * - A line ends at LF.  An empty line is "\n" or "\r\n"; the first one ends the header.
 * - dotstuff: a line whose first byte is '.' gets one more '.' in front.
 *
 * State note: at_bol && prev_cr means "the current line so far is exactly one CR" (after
 * an LF prev_cr is always false, so the pair is otherwise impossible).  That is what lets
 * us see "\r\n" as an empty line without another field in struct crlf_state. */
#include <string.h>
#include "mail/crlf.h"

void crlf_init(struct crlf_state *st, bool dotstuff)
{
	memset(st, 0, sizeof(*st));
	st->dotstuff = dotstuff;
	st->at_bol = true;
	st->body_limit = UINT64_MAX;
}

/* A complete line just ended; empty says whether it was "\n" or "\r\n". */
static void line_done(struct crlf_state *st, bool empty)
{
	st->lines++;
	if (!st->in_body) {
		if (empty) {
			st->in_body = true;
			if (st->body_limit == 0)
				st->done = true;
		}
		return;
	}
	st->body_lines++;
	if (st->body_lines >= st->body_limit)
		st->done = true;
}

void crlf_init_strict(struct crlf_state *st, bool dotstuff)
{
	crlf_init(st, dotstuff);
	st->cr_ends_line = true;
}

size_t crlf_convert(struct crlf_state *st, const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len && !st->done; i++) {
		char c = in[i];

		if (st->cr_ends_line && st->prev_cr && c != '\n') {
			/* the CR already written was lone: end its line.  BOUNDS: with the CR
			 * that came before, 4 output bytes ("\r\n..") for 2 input bytes; only
			 * the first byte of a call may pair with a CR of the call before
			 * (2 * len + 1) */
			bool empty = st->at_bol; /* the line was that CR alone */
			out[o++] = '\n';
			st->prev_cr = false;
			st->at_bol = true;
			line_done(st, empty);
			if (st->done)
				break;
		}

		if (c == '\n') {
			bool empty = st->at_bol; /* "\n" alone, or "\r\n" (at_bol && prev_cr) */
			if (!st->prev_cr)
				out[o++] = '\r'; /* BOUNDS: at most 2 output bytes per input byte */
			out[o++] = '\n';
			st->prev_cr = false;
			st->at_bol = true;
			line_done(st, empty);
			continue;
		}
		if (st->at_bol && st->prev_cr) {
			/* the line began with a lone CR: it is not empty and not a '.' line */
			st->at_bol = false;
		} else if (st->at_bol) {
			if (c == '\r') {
				/* maybe "\r\n": keep at_bol until we see what follows */
				out[o++] = c;
				st->prev_cr = true;
				continue;
			}
			st->at_bol = false;
			if (c == '.' && st->dotstuff)
				out[o++] = '.'; /* BOUNDS: the second of at most 2 bytes for this input */
		}
		out[o++] = c;
		st->prev_cr = (c == '\r');
	}
	return o;
}

const char *crlf_finish(const struct crlf_state *st)
{
	/* at_bol && prev_cr: the last line is a lone CR, not ended. */
	if (st->done || (st->at_bol && !st->prev_cr))
		return "";
	if (st->cr_ends_line && st->prev_cr)
		return "\n"; /* a final lone CR: its line is ended like the others */
	return "\r\n";
}

uint64_t crlf_size(const char *in, size_t len, bool *prev_cr)
{
	bool cr = prev_cr != NULL ? *prev_cr : false;
	uint64_t n = len;
	const char *p = in, *end = in + len;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL) {
			cr = end[-1] == '\r';
			break;
		}
		bool before_cr = lf > p ? lf[-1] == '\r' : cr;
		if (!before_cr)
			n++;
		cr = false;
		p = lf + 1;
	}
	if (prev_cr != NULL)
		*prev_cr = cr;
	return n;
}
