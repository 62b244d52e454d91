/* Maildir names (private to common/storage/: maildir.c, tests and fuzz targets).
 *
 * A message's base name is the part before the first ':' (the info part ":2,FLAGS"
 * changes when flags change; the base does not, nor does it when the file moves new/ ->
 * cur/).  The base may carry ",S=<size>" (size on disk) and ",W=<size>" (size in CRLF
 * form). */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"

/* Standard flags of the ":2," info part. */
#define MAILDIR_FLAG_DRAFT   0x01 /* D */
#define MAILDIR_FLAG_FLAGGED 0x02 /* F */
#define MAILDIR_FLAG_PASSED  0x04 /* P */
#define MAILDIR_FLAG_REPLIED 0x08 /* R */
#define MAILDIR_FLAG_SEEN    0x10 /* S */
#define MAILDIR_FLAG_TRASHED 0x20 /* T */

struct maildir_name {
	size_t base_len;      /* bytes before the first ':' (or the whole name) */
	bool has_s, has_w;
	uint64_t s, w;        /* ",S=" and ",W=" values, when present and well formed */
	bool has_info;        /* ":2," present */
	const char *flags;    /* after ":2,": flag letters (points into the name) */
	size_t flags_len;
	unsigned flagmask;    /* MAILDIR_FLAG_* */
};

/* Parse a file name (not a path).  0, or -1 if it cannot be a message name (empty,
 * starts with '.', contains '/' or NUL, or an empty base). */
int maildir_parse_name(const char *name, size_t len, struct maildir_name *r);
/* POP3 UIDL of a base name: the base itself if it is 1..70 bytes of 0x21..0x7E, else the
 * first 32 hex digits of its SHA-256.  (Unchanged since the first release: clients that
 * leave mail on the server depend on it.) */
void maildir_uid(const char *base, size_t len, char out[POP3_UIDL_MAX + 1]);

#endif
