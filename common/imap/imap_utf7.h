/* Mailbox names on the wire: modified UTF-7 (RFC 3501 section 5.1.3, kept by RFC 9051
 * section 5.1.3 for clients that have not enabled UTF-8) to and from UTF-8, and the check
 * of a UTF-8 mailbox name (RFC 6855 section 3, RFC 9051 section 5.1).  The codec lives in
 * the mail library (mail/mutf7.h: its rules), since the storage keeps folder names on
 * disk in the same form; these are its names for the IMAP side.  No I/O. */
#ifndef POSTERN_IMAP_UTF7_H
#define POSTERN_IMAP_UTF7_H
#include <stddef.h>
#include "mail/mutf7.h"

/* Modified UTF-7 to UTF-8: 0 with a new NUL-terminated string in *out_r (free() it), or
 * -1 with *error_r (constant text). */
static inline int imap_utf7_to_utf8(const char *in, size_t len, char **out_r,
				    size_t *out_len_r, const char **error_r)
{
	return mutf7_to_utf8(in, len, out_r, out_len_r, error_r);
}
/* UTF-8 to modified UTF-7 (the canonical form): 0 with a new string, or -1 when the input
 * is not a valid mailbox name. */
static inline int imap_utf8_to_utf7(const char *in, size_t len, char **out_r,
				    size_t *out_len_r, const char **error_r)
{
	return mutf7_from_utf8(in, len, out_r, out_len_r, error_r);
}
/* Is this a valid UTF-8 mailbox name?  0 or -1 with *error_r. */
static inline int imap_utf8_mailbox_valid(const char *s, size_t len, const char **error_r)
{
	return mutf7_utf8_valid(s, len, error_r);
}

#endif
