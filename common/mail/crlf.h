/* Convert stored message bytes (bare LF or CRLF) to the wire form: CRLF line ends, and
 * optionally dot-stuffing (POP3 RFC 1939 section 3, SMTP RFC 5321 section 4.5.2).
 * A parser-style converter: no I/O, any chunking of the input gives the same output. */
#ifndef POSTERN_CRLF_H
#define POSTERN_CRLF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crlf_state {
	bool dotstuff;
	bool cr_ends_line;   /* a lone CR ends its line: it becomes CRLF (crlf_init_strict) */
	bool at_bol;         /* next byte starts a line */
	bool prev_cr;        /* last byte seen was CR */
	uint64_t lines;      /* complete lines passed so far */
	bool in_body;        /* the empty line ending the header has been passed */
	uint64_t body_lines; /* complete body lines passed */
	uint64_t body_limit; /* POP3 TOP: stop after this many body lines (UINT64_MAX: all) */
	bool done;           /* body_limit reached: further input produces no output */
};

void crlf_init(struct crlf_state *st, bool dotstuff); /* body_limit = UINT64_MAX */
/* The same, and a lone CR (not followed by LF) becomes CRLF and ends its line, so the
 * output holds no CR or LF outside CRLF at all and every reader, whatever it takes for a
 * line end, sees the same lines and the same terminator: what a message sent on by SMTP
 * needs (the 2023 SMTP-smuggling class: a stored "\r.\r" must not reach the next hop
 * as it is).  crlf_size() does not count the added LFs: sizes are those of crlf_init(). */
void crlf_init_strict(struct crlf_state *st, bool dotstuff);
/* Convert in[0..len) into out; out must hold 2*len + 1 bytes.  Returns bytes written. */
size_t crlf_convert(struct crlf_state *st, const char *in, size_t len, char *out);
/* After the last chunk: if the data did not end with a line end, the CRLF to add
 * ("", "\r\n", or "\n" after a final lone CR in strict mode), so that a multi-line
 * terminator "." starts a line. */
const char *crlf_finish(const struct crlf_state *st);
/* Size in CRLF form (no stuffing) of a whole buffer, for sizes: bytes + bare LFs. */
uint64_t crlf_size(const char *in, size_t len, bool *prev_cr);

#endif
