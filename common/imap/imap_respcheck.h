/* Checking server output (tests, fuzz targets, the daemon's self-checks): is a FETCH
 * data item well-formed response syntax?  imap_respcheck_value() reads one value (list,
 * quoted, literal, literal8, atom) strictly: balanced parentheses, no CR, LF or NUL
 * outside literals, quoted strings with only \\ and \" escapes and (without utf8) no
 * 8-bit byte, literal sizes that hold.  Response lists may put lists side by side
 * ("((a)(b))", RFC 9051's address and body lists); the command parser's generic syntax
 * wants a space there, so the check also makes a copy with one added, and
 * imap_respcheck_reparse() feeds such a copy to imap_parser as a command argument: it
 * must come back as one list.  No I/O. */
#ifndef POSTERN_IMAP_RESPCHECK_H
#define POSTERN_IMAP_RESPCHECK_H
#include <stdbool.h>
#include <stddef.h>

/* One value filling s[0..len) exactly.  *respaced_r (malloc'd; NULL if not well-formed
 * or respaced_r is NULL) gets the copy for imap_respcheck_reparse(); *depth_r the
 * deepest list nesting. */
bool imap_respcheck_value(const char *s, size_t len, bool utf8, char **respaced_r,
			  size_t *respaced_len_r, unsigned *depth_r);
/* Feed "A X <value>" to the command parser (logged in, utf8 as given): true if it is
 * one argument, a list.  A value holding a literal8 is not read back (the command
 * parser takes ~{n} only in APPEND). */
bool imap_respcheck_reparse(const char *v, size_t vlen, bool utf8);

#endif
