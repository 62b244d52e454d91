/* Parsing the replies of an SMTP server, for the outbound client (RFC 5321 section 4.2,
 * 4.5.3.1.5): fed the connection's bytes in chunks of any size (a line may be split
 * anywhere), it returns each complete reply: its code, its RFC 3463 enhanced status
 * code (RFC 2034) when the first line has one, and its text lines.  No I/O.
 *
 * Strict: every line starts with the same three-digit code (first digit 2-5, second
 * 0-5), then "-" (more lines follow), SP or the line end; a line with NUL, a lone CR or
 * another control byte but HTAB is an error; limits SMTP_MAX_REPLY_LINE_PEER per line,
 * SMTP_MAX_REPLY_LINES lines and SMTP_MAX_REPLY_SIZE bytes per reply.  An error is final:
 * the connection can no longer be trusted to be in step, the client must close it.
 * Tolerated: a bare LF as line end (RFC 5321 section 4.1.1.4 asks servers for CRLF,
 * but a reply cannot be smuggled into a message, and some appliances send LF); lines up
 * to SMTP_MAX_REPLY_LINE_PEER, over RFC 5321's 512 (long AUTH lists, long rejection
 * texts); an enhanced code only on some lines (only the first line's counts); UTF-8 in
 * the text (RFC 6531 section 3.7.4). */
#ifndef POSTERN_SMTP_RESPONSE_H
#define POSTERN_SMTP_RESPONSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"

struct smtp_response {
	unsigned code;                 /* 200..559 */
	bool enh_given;                /* the first line has an RFC 3463 status code */
	unsigned enh_class, enh_subject, enh_detail;
	char enh[12];                  /* "5.1.1", or "" */
	size_t nlines;
	/* each line's text after "NNN-" / "NNN ", the enhanced code kept, NUL-terminated
	 * (valid until the next smtp_response_feed()) */
	const char *lines[SMTP_MAX_REPLY_LINES];
	size_t line_len[SMTP_MAX_REPLY_LINES];
};

struct smtp_response_parser {
	struct smtp_response resp;
	char buf[SMTP_MAX_REPLY_SIZE + 1];
	size_t used;                   /* bytes of buf in use (the lines so far) */
	size_t line_start;             /* where the current line starts in buf */
	size_t total;                  /* the reply's bytes on the wire, line ends too */
	bool complete;                 /* resp holds a complete reply; the next feed resets */
	const char *error;             /* set once: every later feed fails */
};

void smtp_response_init(struct smtp_response_parser *p);
/* Feed data[0..len).  Returns 1: a reply is complete in p->resp and *used_r bytes were
 * taken (the rest belongs to the next reply: feed it again); 0: all taken, more needed;
 * -1: a protocol error (p->error says what; *error_r too). */
int smtp_response_feed(struct smtp_response_parser *p, const char *data, size_t len,
		       size_t *used_r, const char **error_r);

/* EHLO keywords we use (RFC 5321 section 4.1.1.1 and the extensions) */
#define SMTP_EHLO_SIZE         0x001
#define SMTP_EHLO_STARTTLS     0x002
#define SMTP_EHLO_PIPELINING   0x004
#define SMTP_EHLO_8BITMIME     0x008
#define SMTP_EHLO_SMTPUTF8     0x010
#define SMTP_EHLO_AUTH         0x020
#define SMTP_EHLO_CHUNKING     0x040
#define SMTP_EHLO_BINARYMIME   0x080
#define SMTP_EHLO_DSN          0x100
#define SMTP_EHLO_ENHANCEDSTATUSCODES 0x200
/* AUTH mechanisms */
#define SMTP_EHLO_AUTH_PLAIN   0x1
#define SMTP_EHLO_AUTH_LOGIN   0x2

struct smtp_ehlo {
	unsigned exts;
	uint64_t size_max;             /* SIZE n; 0: no number (no limit announced) */
	unsigned auth_mechs;
};

/* The extensions of a 250 EHLO reply (line 0 is the greeting; each later line a keyword
 * and its parameters, any case).  "AUTH=PLAIN LOGIN" (pre-RFC 4954 servers) counts as
 * AUTH.  Unknown keywords and malformed SIZE numbers are ignored.  0, or -1 if the
 * reply is not a 250. */
int smtp_response_ehlo(const struct smtp_response *r, struct smtp_ehlo *e);

#endif
