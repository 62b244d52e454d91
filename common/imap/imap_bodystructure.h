/* FETCH BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2, RFC 9051 section 7.5.2) from a
 * message's MIME part tree (mime.h).  No I/O.
 *
 * Shapes: basic "(type subtype params id desc enc octets [ext])", text adds lines,
 * message/rfc822 adds envelope, body and lines; multipart "(body body ... subtype [ext])".
 * Extension data only in BODYSTRUCTURE: single part md5, disposition, language, location;
 * multipart params, disposition, language, location (always all four: clients index
 * them by position).
 *
 * Decisions:
 * - type, subtype, parameter names and the encoding come lowercase, as the part tree
 *   keeps them (clients compare them case-insensitively; Dovecot also sends them as the
 *   header has them, not upper-cased as the RFC's examples are).
 * - octets: the body's size in CRLF form (every bare LF counts as CRLF); lines: its
 *   line count.  Both are 32-bit numbers in RFC 9051's grammar: a larger value is sent
 *   as 4294967295.
 * - encoding: "7bit" when the part has no Content-Transfer-Encoding.
 * - Parameters are RFC 2231-decoded (continuations merged).  A value of printable ASCII
 *   goes out as it is ("name" "value": what clients display).  A value that came with a
 *   charset (name*=utf-8''...) and holds other bytes goes out re-encoded in RFC 2231's
 *   form, "name*" "charset'lang'%XX...": 7-bit, lossless, and the form clients (Thunderbird,
 *   Apple Mail, and Dovecot-served ones) already decode; a bare 8-bit value without a
 *   charset ("filename=Grüße.pdf" in raw UTF-8) goes out as the header had it, a literal
 *   unless UTF8=ACCEPT allows it quoted.
 * - A multipart without parts (no boundary, the boundary never occurs, past the nesting
 *   limit) gets one made-up part, as Dovecot does (the grammar wants at least one body);
 *   unlike Dovecot's empty one, it is its body as text/plain, ("text" "plain" ("charset"
 *   "us-ascii") NIL NIL "7bit" octets lines), which is what BODY[...1] of it serves
 *   (imap_section.h): the client can show the text and the sizes agree.
 * - message/rfc822 whose enclosed message was not parsed (a non-identity encoding, past
 *   a limit) still has the message shape (clients expect it for that type): envelope all
 *   NIL, the made-up empty body, its lines.
 * - message/global (RFC 6532) has the message shape only with IMAP_BS_GLOBAL (RFC 9051's
 *   media-message; IMAP4rev2 or UTF8=ACCEPT sessions); otherwise it is a basic part, as
 *   RFC 3501's grammar reads it. */
#ifndef POSTERN_IMAP_BODYSTRUCTURE_H
#define POSTERN_IMAP_BODYSTRUCTURE_H
#include <stdbool.h>
#include "imap/imap_write.h"
#include "mail/mime.h"

/* flags: IMAP_WRITE_UTF8 (strings), and: */
#define IMAP_BS_EXTENDED 0x100   /* BODYSTRUCTURE (with extension data); else BODY */
#define IMAP_BS_GLOBAL   0x200   /* message/global in the message shape (RFC 9051) */

/* Write the structure of root (the message's top part) to b.  0, or -1 when b overflowed
 * (discard what was written). */
int imap_bodystructure_write(struct imap_buf *b, const struct mime_part *root,
			     unsigned flags);

#endif
