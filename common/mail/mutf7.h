/* Mailbox names, on the IMAP wire (imap/imap_utf7.h wraps these) and on disk (the
 * storage keeps folder names in this form, as Dovecot and Courier do): modified UTF-7
 * (RFC 3501 section 5.1.3, kept by RFC 9051 section 5.1.3 for clients that have not
 * enabled UTF-8) to and from UTF-8, and the check of a UTF-8 mailbox name (RFC 6855
 * section 3, RFC 9051 section 5.1: valid UTF-8, no control characters, Net-Unicode of
 * RFC 5198).
 *
 * Decoding is strict, so that one name has one spelling and two names that look alike
 * cannot both exist: refused are characters that must be written as themselves ("&AGE-"
 * for "a"), "&" not written "&-", a shift that never ends, adjacent shifts ("&AOQ-&AOQ-"
 * is "&AOQA5A-"), base64 with padding or leftover bits, lone or reversed surrogates,
 * 8-bit and control bytes, and a name whose UTF-8 would fail mutf7_utf8_valid().
 * No I/O. */
#ifndef POSTERN_MAIL_MUTF7_H
#define POSTERN_MAIL_MUTF7_H
#include <stddef.h>

/* Modified UTF-7 to UTF-8: 0 with a new NUL-terminated string in *out_r (free() it), or
 * -1 with *error_r (constant text). */
int mutf7_to_utf8(const char *in, size_t len, char **out_r, size_t *out_len_r,
		      const char **error_r);
/* UTF-8 to modified UTF-7 (the canonical form): 0 with a new string, or -1 when the input
 * is not a valid mailbox name. */
int mutf7_from_utf8(const char *in, size_t len, char **out_r, size_t *out_len_r,
		      const char **error_r);
/* Is this a valid UTF-8 mailbox name (RFC 3629 UTF-8: no overlong forms, surrogates or
 * code points past U+10FFFF; no C0 or C1 control, no DEL)?  0 or -1 with *error_r. */
int mutf7_utf8_valid(const char *s, size_t len, const char **error_r);

#endif
