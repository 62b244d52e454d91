/* FETCH ENVELOPE (RFC 3501 section 7.4.2, RFC 9051 section 7.5.2) from a message's
 * envelope fields (mime.h struct mail_envelope_fields: the unfolded values of Date,
 * Subject, From, Sender, Reply-To, To, Cc, Bcc, In-Reply-To, Message-ID).  No I/O.
 *
 * - Date, Subject, In-Reply-To, Message-ID: the value as it is in the header (RFC 2047
 *   words not decoded: the client decodes), NIL if the field is absent, "" if empty.
 * - Address lists (address.h): "(" 1*address ")", NIL if absent or without any entry.
 *   An address is (name adl mailbox host); adl is the obs-route ("@a,@b") or NIL; a
 *   group is (NIL NIL "name" NIL) ... (NIL NIL NIL NIL).
 * - Sender and Reply-To: absent or empty (no entry) -> the From list, as both RFC 3501
 *   and RFC 9051 say (9051 changed nothing there).
 * - Strings: quoted when safe, a literal otherwise (8-bit bytes unless IMAP_WRITE_UTF8 and
 *   valid UTF-8, CR, LF, control bytes); a NUL in a header value becomes a space (a
 *   literal cannot carry NUL), so no raw CR/LF/NUL ever stands in a quoted string. */
#ifndef POSTERN_IMAP_ENVELOPE_H
#define POSTERN_IMAP_ENVELOPE_H
#include "imap/imap_write.h"
#include "mail/address.h"
#include "mail/mime.h"

/* Write "(date subject from sender reply-to to cc bcc in-reply-to message-id)" to b.
 * env NULL: every member NIL.  flags: IMAP_WRITE_UTF8 (UTF8=ACCEPT / IMAP4rev2).
 * 0, or -1 when b overflowed (what was written of it is then incomplete). */
int imap_envelope_write(struct imap_buf *b, const struct mail_envelope_fields *env,
			unsigned flags);
/* One address list as ENVELOPE has it (NIL for an empty list). */
int imap_envelope_write_addresses(struct imap_buf *b, const struct address_list *list,
				  unsigned flags);

#endif
