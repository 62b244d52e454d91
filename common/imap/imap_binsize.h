/* What BINARY.SIZE and the BINARY literal need of a part, kept between sessions: the
 * decoded size and whether a NUL occurs (imap_binary.h computes them with a decoding
 * pass).  They never change for a message, so imapd stores them in the index cache
 * (INDEX_CACHE_BINARY) as the bytes this makes.  No I/O, no allocation.
 *
 * A part is named by its place in the MIME tree in pre-order (root 0, then its first
 * child and that child's parts, then the next child...; the tree from the index cache's
 * stored form is the same every time): imap_binsize_part_index().  Entries are filled as
 * parts are fetched; an entry not known yet is "unknown".
 *
 * Stored form (version 1), all integers little-endian:
 *	u8  version (1)
 *	u16 n                  entries, 1..IMAP_BINSIZE_MAX_PARTS
 *	n x { u8 state; u64 size }   state 0 unknown (size 0), 1 known, 2 known with NUL;
 *	                             size <= INT64_MAX; the last entry is not unknown
 * The form is canonical (one table, one encoding); imap_binsize_decode() refuses anything
 * else (bad version, length, state, size), so a damaged cache entry is just recomputed. */
#ifndef POSTERN_IMAP_BINSIZE_H
#define POSTERN_IMAP_BINSIZE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"
#include "mail/mime.h"

#define IMAP_BINSIZE_VERSION 1
/* BOUNDS: the largest encoding, for a caller's buffer */
#define IMAP_BINSIZE_ENCODED_MAX (3 + 9 * (size_t)IMAP_BINSIZE_MAX_PARTS)

struct imap_binsize_entry {
	bool known;
	bool has_nul;
	uint64_t size;
};
struct imap_binsize {
	size_t n;   /* entries in use: one past the highest index set */
	struct imap_binsize_entry e[IMAP_BINSIZE_MAX_PARTS];
};

void imap_binsize_init(struct imap_binsize *t);
/* The stored bytes into t (which is reset first).  len 0 is an empty table.  0, or -1
 * with *error_r (constant) and t empty. */
int imap_binsize_decode(struct imap_binsize *t, const void *data, size_t len,
			const char **error_r);
/* The stored bytes of t into out (at least IMAP_BINSIZE_ENCODED_MAX bytes); their
 * length, 0 for an empty table (store nothing). */
size_t imap_binsize_encode(const struct imap_binsize *t, unsigned char *out);
/* Record part index's values.  -1 if index >= IMAP_BINSIZE_MAX_PARTS or size > INT64_MAX
 * (then it is not cached). */
int imap_binsize_set(struct imap_binsize *t, size_t index, uint64_t size, bool has_nul);
/* The entry of index, or NULL if it is not known. */
const struct imap_binsize_entry *imap_binsize_get(const struct imap_binsize *t,
						  size_t index);
/* part's pre-order place below root; -1 if it is not in the tree or past
 * IMAP_BINSIZE_MAX_PARTS. */
int imap_binsize_part_index(const struct mime_part *root, const struct mime_part *part,
			    size_t *index_r);

#endif
