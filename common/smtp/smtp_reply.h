/* Writing SMTP replies (RFC 5321 section 4.2) into the caller's buffer: one or more
 * lines "code-text" ... "code SP text", each with the same code and, when given, the
 * same RFC 3463 enhanced status code after it.  RFC 2034 section 3: with
 * ENHANCEDSTATUSCODES every 2xx, 4xx and 5xx reply carries one, except the greeting
 * and the reply to HELO/EHLO: the caller passes enh NULL exactly there
 * (smtp_reply_ehlo() writes none).  No I/O.  Bounded: every line (CRLF included) at
 * most SMTP_MAX_REPLY_LINE, checked, never cut; text with CR, LF, NUL or another
 * control byte is refused, so client-supplied bytes can never inject a reply line. */
#ifndef POSTERN_SMTP_REPLY_H
#define POSTERN_SMTP_REPLY_H
#include <stdbool.h>
#include <stddef.h>

/* Is enh a valid RFC 3463 status-code "class.subject.detail" (class 2, 4 or 5,
 * subject and detail 1-3 digits without leading zeros) of the same class as code? */
bool smtp_reply_enh_valid(unsigned code, const char *enh);

/* Write code (200..599), enh (or NULL) and lines[0..n) (n >= 1; a line may be "") to
 * buf[0..size).  Returns 0 with *len_r (no NUL is written past it unless room), or -1
 * (bad code or enh, a bad byte in a line, a line too long, or buf too small). */
int smtp_reply_format(char *buf, size_t size, unsigned code, const char *enh,
		      const char *const *lines, size_t n, size_t *len_r);
/* The same for one line of text. */
int smtp_reply_format1(char *buf, size_t size, unsigned code, const char *enh,
		       const char *text, size_t *len_r);

/* The EHLO reply (RFC 5321 section 4.1.1.1): "250-domain greeting", then one line per
 * keyword ("SIZE 10485760", "AUTH PLAIN LOGIN", ...), the last with "250 ".  A keyword
 * line must start with an ehlo-keyword (ALPHA / DIGIT, then those and "-") and hold
 * only printable US-ASCII.  greeting may be NULL or "".  0 or -1, as above. */
int smtp_reply_ehlo(char *buf, size_t size, const char *domain, const char *greeting,
		    const char *const *keywords, size_t n, size_t *len_r);

#endif
