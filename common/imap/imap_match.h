/* LIST/LSUB pattern matching (RFC 3501 section 6.3.8, RFC 9051 section 6.3.9): "*" matches
 * zero or more characters, "%" the same but not the hierarchy delimiter; every other
 * character itself, case-sensitively, except that a name's leading "INBOX" (INBOX itself
 * and the names below it) matches in any case (RFC 9051 section 5.1: INBOX is
 * case-insensitive).  Pattern and name are in the same form (both UTF-8, or both modified
 * UTF-7).  Time O(pattern x name) at worst, no backtracking blow-up. */
#ifndef POSTERN_IMAP_MATCH_H
#define POSTERN_IMAP_MATCH_H
#include <stdbool.h>
#include <stddef.h>

/* delim: the hierarchy delimiter ('/' or '.'), or '\0' for a flat namespace. */
bool imap_match_mailbox(const char *pattern, size_t plen, const char *name, size_t nlen,
			char delim);

#endif
