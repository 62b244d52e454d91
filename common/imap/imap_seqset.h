/* IMAP sequence sets (RFC 9051 section 9: sequence-set, seq-number, seq-range; "$" of
 * SEARCHRES, RFC 5182): parsed into sorted, merged ranges of 32-bit numbers, with a
 * membership test, iteration, counting, and the compact text form ("1:3,5,9:12") for
 * COPYUID/APPENDUID (RFC 4315), ESEARCH ALL (RFC 4731) and VANISHED (RFC 7162).  No I/O.
 *
 * "*" is the largest number in use (the highest UID, or the message count) and is given
 * when parsing; "n:*" always includes it, even when n is larger (RFC 9051 section 9,
 * seq-range).  Number 0 is never a member.  All counting is in 64 bits: 1:4294967295 has
 * 2^32 - 1 members. */
#ifndef POSTERN_IMAP_SEQSET_H
#define POSTERN_IMAP_SEQSET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imap_seqrange {
	uint32_t lo, hi;        /* lo <= hi, lo >= 1 */
};

struct imap_seqset {
	struct imap_seqrange *r;        /* sorted, disjoint, not adjacent */
	size_t count, cap;
};

void imap_seqset_init(struct imap_seqset *set);
void imap_seqset_free(struct imap_seqset *set);
void imap_seqset_clear(struct imap_seqset *set);
/* Parse s (a sequence set as the command parser's atom gives it) and add it to set.
 * star: what "*" stands for (0: an empty mailbox; "*" then adds nothing).  *dollar_r: the
 * set named "$" (the saved SEARCH result, RFC 5182; the caller adds it); NULL: "$" is an
 * error.  0, or -1 with *error_r (constant text); on error the set is unchanged. */
int imap_seqset_parse(struct imap_seqset *set, const char *s, size_t len, uint32_t star,
		      bool *dollar_r, const char **error_r);
/* Add lo:hi (either order; 0 is left out).  -1 when the set would pass
 * IMAP_MAX_SEQSET_RANGES ranges (unchanged then). */
int imap_seqset_add(struct imap_seqset *set, uint32_t lo, uint32_t hi);
/* Add every range of src. */
int imap_seqset_add_set(struct imap_seqset *set, const struct imap_seqset *src);
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
uint64_t imap_seqset_members(const struct imap_seqset *set);
uint32_t imap_seqset_max(const struct imap_seqset *set);   /* 0 if empty */

/* for (imap_seqset_iter_init(&it, set); imap_seqset_iter_next(&it, &n); ) ... */
struct imap_seqset_iter {
	const struct imap_seqset *set;
	size_t i;
	uint64_t next;          /* 64 bits: hi may be UINT32_MAX */
};
void imap_seqset_iter_init(struct imap_seqset_iter *it, const struct imap_seqset *set);
bool imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *n_r);

/* The compact text ("1:3,5"; "" for an empty set) into buf (NUL-terminated when size > 0);
 * returns the length it needs, like snprintf: a result >= size means it was cut. */
size_t imap_seqset_format(const struct imap_seqset *set, char *buf, size_t size);

#endif
