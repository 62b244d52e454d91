/* Addresses: the RFC 5322 section 3.4 address-list of a header field value (From, To,
 * Cc, Reply-To, ...) with the obsolete syntax of section 4.4, and the strict RFC 5321
 * section 4.1.2 path of SMTP's MAIL FROM / RCPT TO.  No I/O.
 *
 * address_list_parse() never fails: a broken header gives a best-effort list, the way
 * IMAP ENVELOPE needs it (RFC 3501 section 7.4.2, RFC 9051 section 7.5.2: name, adl,
 * mailbox, host; a group is (NIL NIL "name" NIL) ... (NIL NIL NIL NIL)).  Decisions:
 * - A mailbox without "@domain" ("user", "<user>", "Name <>") keeps what it has and gets
 *   domain = ADDRESS_MISSING_DOMAIN (and mailbox = ADDRESS_MISSING_MAILBOX if it had no
 *   local part), flagged, as Dovecot does: a NIL host in ENVELOPE would read as a group
 *   marker, so a mailbox entry never has a NULL domain.
 * - No display name but a comment after the addr-spec ("a@b (Ann)"): the comment's text
 *   becomes the name (what RFC 822 mail used for names).
 * - Bytes that fit nowhere (stray ">", "]", ")", control bytes, NUL) are skipped and the
 *   entry flagged ADDRESS_F_INVALID; an unterminated quoted string, comment, domain
 *   literal or "<" runs to the end of the value.  A group missing its ";" is closed.
 * - Folding (CRLF or LF followed by WSP) is removed anywhere; other CR/LF are skipped.
 * Strings are unquoted and unescaped (quoted-pairs resolved) but NOT RFC 2047 decoded:
 * ENVELOPE wants the raw form; address_name_decode() is the separate decoding helper.
 * A phrase's words are joined with one space where CFWS separated them.  No string
 * holds CR, LF or NUL (an escaped one is dropped too). */
#ifndef POSTERN_ADDRESS_H
#define POSTERN_ADDRESS_H
#include <stdbool.h>
#include <stddef.h>
#include "base/plimits.h"

#define ADDRESS_MISSING_DOMAIN "MISSING_DOMAIN"
#define ADDRESS_MISSING_MAILBOX "MISSING_MAILBOX"

enum address_kind {
	ADDRESS_MAILBOX,
	ADDRESS_GROUP_START, /* name = the group's display name; the rest NULL */
	ADDRESS_GROUP_END,   /* every string NULL */
};

/* flags of one entry */
#define ADDRESS_F_INVALID        0x01 /* bytes were skipped or something was missing */
#define ADDRESS_F_MISSING_DOMAIN 0x02 /* domain is ADDRESS_MISSING_DOMAIN */
#define ADDRESS_F_MISSING_LOCAL  0x04 /* mailbox is ADDRESS_MISSING_MAILBOX */
#define ADDRESS_F_NAME_COMMENT   0x08 /* name was taken from a trailing comment */

struct address {
	enum address_kind kind;
	unsigned flags;
	const char *name;    /* display name or group name; NULL if none */
	const char *route;   /* obs-route "@a,@b" (no ":"); NULL if none */
	const char *mailbox; /* local part, unquoted; MAILBOX entries only */
	const char *domain;  /* domain or "[literal]"; MAILBOX entries only */
};

struct address_list {
	struct address *addrs;
	size_t count;
	bool truncated;  /* more than ADDRESS_MAX_ENTRIES entries: the rest is dropped */
	bool invalid;    /* some entry has ADDRESS_F_INVALID */
	char *strings_;  /* private: storage of every string above */
};

/* Parse value[0..len) (a field body: folded or not).  Always returns a list (possibly
 * empty); free it with address_list_free().  Groups are never nested: a ":" inside a
 * group is skipped as invalid.  Every GROUP_START has its GROUP_END, also when the list
 * is truncated. */
struct address_list *address_list_parse(const char *value, size_t len);
void address_list_free(struct address_list **list);

/* RFC 2047-decode a name into UTF-8 (rfc2047_decode() on a phrase): a new string, or
 * NULL for a NULL name.  Free with free(). */
char *address_name_decode(const char *name);

/* ---- SMTP paths (RFC 5321 section 4.1.2) ---- */

/* flags for address_path_parse() */
#define ADDRESS_PATH_ALLOW_NULL       0x01 /* "<>" accepted (MAIL FROM: Reverse-path) */
#define ADDRESS_PATH_ALLOW_POSTMASTER 0x02 /* "<Postmaster>" without domain (RCPT TO,
                                            * section 4.1.1.3), any case */
#define ADDRESS_PATH_UTF8             0x04 /* RFC 6531 SMTPUTF8: UTF-8 in the local part
                                            * and the domain */

/* what a parsed path holds, for policy checks (open relay): reported, never normalised */
#define ADDRESS_PATH_F_NULL        0x001 /* "<>" */
#define ADDRESS_PATH_F_POSTMASTER  0x002 /* "<Postmaster>" (domain empty) */
#define ADDRESS_PATH_F_ROUTE       0x004 /* had a source route "@a,@b:"; in route */
#define ADDRESS_PATH_F_QUOTED      0x008 /* local part was a quoted-string */
#define ADDRESS_PATH_F_PERCENT     0x010 /* "%" in the local part (the % hack) */
#define ADDRESS_PATH_F_BANG        0x020 /* "!" in the local part (UUCP bang path) */
#define ADDRESS_PATH_F_LOCAL_AT    0x040 /* "@" inside the quoted local part */
#define ADDRESS_PATH_F_LITERAL_V4  0x080 /* domain is [1.2.3.4] */
#define ADDRESS_PATH_F_LITERAL_V6  0x100 /* domain is [IPv6:...] */
#define ADDRESS_PATH_F_LITERAL_GEN 0x200 /* domain is [tag:content] (general literal) */
#define ADDRESS_PATH_F_UTF8        0x400 /* a byte >= 0x80 occurs (needs SMTPUTF8) */

struct address_path {
	unsigned flags;
	/* the local part as written (quotes and backslashes kept), and unquoted */
	char local[SMTP_MAX_LOCAL_PART + 1];
	char local_unquoted[SMTP_MAX_LOCAL_PART + 1];
	char domain[SMTP_MAX_DOMAIN + 1];  /* as written; a literal with its brackets */
	char route[SMTP_MAX_PATH + 1];     /* "@a,@b" as written, or "" */
};

/* Parse a Path (or "<>" / "<Postmaster>" when allowed) at the start of s[0..len): s[0]
 * must be '<'.  Strict: no spaces, no comments, nothing RFC 5321 does not allow; the
 * limits of section 4.5.3.1 apply.  Returns the bytes consumed (through '>'; the caller
 * parses any ESMTP parameters after it), or -1 with *error_r set. */
long address_path_parse(const char *s, size_t len, unsigned flags,
			struct address_path *path_r, const char **error_r);

#endif
