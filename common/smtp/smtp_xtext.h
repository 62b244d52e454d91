/* xtext (RFC 3461 section 4: the ENVID, ORCPT and AUTH= values of ESMTP) and the
 * "utf-8" address type of ORCPT (RFC 6533 section 3: utf-8-addr-xtext and, when the
 * transaction has SMTPUTF8, utf-8-addr-unitext).  No I/O. */
#ifndef POSTERN_SMTP_XTEXT_H
#define POSTERN_SMTP_XTEXT_H
#include <stdbool.h>
#include <stddef.h>

/* Decode xtext in[0..len) into out (room out_size, NUL-terminated).  Strict: every
 * byte is an xchar (33..126 but "+" and "=") or "+" and two UPPER case hex digits
 * (RFC 3461 says "upper case"; a lower-case "+2b" is refused).  Returns 0 with *len_r,
 * or -1 (bad syntax, or the decoded value does not fit).  The decoded bytes may be any
 * octet but NUL (refused: nothing downstream wants one). */
int smtp_xtext_decode(const char *in, size_t len, char *out, size_t out_size,
		      size_t *len_r);
/* Encode in[0..len) as xtext into out (room out_size, NUL-terminated).  0, or -1 if it
 * does not fit.  For the outbound client's ENVID= and ORCPT=. */
int smtp_xtext_encode(const char *in, size_t len, char *out, size_t out_size,
		      size_t *len_r);
/* Decode an RFC 6533 utf-8-addr-xtext (utf8 false) or utf-8-addr-unitext (utf8 true:
 * UTF-8 characters may also appear as themselves, and must be well-formed): QCHARs,
 * and "\x{HEX}" for the code points that must be escaped (controls, SP, "+", "=", "\",
 * DEL, and everything over 0x7F), written with the fewest upper-case hex digits and
 * never a surrogate.  Output: UTF-8, NUL-terminated.  0 or -1. */
int smtp_xtext_decode_utf8addr(const char *in, size_t len, bool utf8, char *out,
			       size_t out_size, size_t *len_r);
/* Is in[0..len) well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
bool smtp_xtext_utf8_valid(const char *in, size_t len);

#endif
