/* Writing IMAP responses into a bounded growable buffer (the daemon sends the buffer):
 * strings in the form that carries them safely (atom, quoted string or literal, NIL), and
 * status responses ("* OK [CODE ...] text", "tag NO text", "+ text", "* BYE ...") in
 * which every value that is not a constant of the daemon is sanitised: no CR, LF or other
 * control byte from a mailbox name, a message or a client's tag can end a response line
 * early and inject another (RFC 9051 section 9: text = 1*TEXT-CHAR, no CR or LF).
 * No I/O. */
#ifndef POSTERN_IMAP_WRITE_H
#define POSTERN_IMAP_WRITE_H
#include <stdbool.h>
#include <stddef.h>

struct imap_buf {
	char *data;             /* NUL-terminated */
	size_t len, cap;
	size_t max;             /* the buffer never holds more than this */
	bool overflow;          /* something did not fit (and was not written) */
};

/* A quoted string longer than this is written as a literal. */
#define IMAP_WRITE_QUOTED_MAX 1024

/* Flags for the string writers. */
#define IMAP_WRITE_UTF8 1       /* UTF8=ACCEPT or IMAP4rev2: UTF-8 may go in a quoted
				 * string and in response text */
#define IMAP_WRITE_LITERAL8 2   /* a string with NUL may go as ~{n} (BINARY) */

void imap_buf_init(struct imap_buf *b, size_t max);
void imap_buf_free(struct imap_buf *b);
void imap_buf_reset(struct imap_buf *b);   /* empty; overflow cleared */
/* Append bytes as they are (constants and already-formed data).  All or nothing: -1 and
 * b->overflow when it would pass b->max. */
int imap_buf_append(struct imap_buf *b, const void *data, size_t len);
int imap_buf_puts(struct imap_buf *b, const char *s);
int imap_buf_printf(struct imap_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* string: quoted when it is short and holds no CR, LF, NUL, control or (without
 * IMAP_WRITE_UTF8, or when not valid UTF-8) 8-bit byte; a literal {n}\r\n... otherwise.  A
 * string with NUL is refused (-1, nothing written) unless IMAP_WRITE_LITERAL8. */
int imap_write_string(struct imap_buf *b, const char *s, size_t len, unsigned flags);
/* astring: an atom when every byte is an ASTRING-CHAR and it is not empty or "NIL";
 * else as imap_write_string(). */
int imap_write_astring(struct imap_buf *b, const char *s, size_t len, unsigned flags);
/* nstring: NIL for s == NULL, else as imap_write_string(). */
int imap_write_nstring(struct imap_buf *b, const char *s, size_t len, unsigned flags);

/* Response lines, each ending in CRLF.  tag: the client's (written as "*" if it is not a
 * valid tag); status: "OK", "NO", "BAD", "BYE", "PREAUTH" (constant); code: a response
 * code and its arguments without brackets ("UIDNEXT 5", "TOOBIG"), or NULL; text: free
 * text, sanitised (a control byte becomes '?', 8-bit too without IMAP_WRITE_UTF8 or when
 * not valid UTF-8; a leading '[' without a code becomes '('; empty becomes "Completed"). */
int imap_write_tagged(struct imap_buf *b, const char *tag, const char *status,
		      const char *code, const char *text, unsigned flags);
int imap_write_untagged(struct imap_buf *b, const char *status, const char *code,
			const char *text, unsigned flags);
/* "+ text" (a continuation request; text sanitised as above, empty allowed: "+ "). */
int imap_write_continue(struct imap_buf *b, const char *text, unsigned flags);
/* Free text sanitised into a response (as in the status lines). */
int imap_write_text(struct imap_buf *b, const char *text, size_t len, unsigned flags);

#endif
