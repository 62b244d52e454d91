/* The index's records in memory (internal to common/index/): the snapshot's records read
 * in place, plus an overlay of what the log changed since.
 *
 * Base: the snapshot's fixed-size records (sorted by UID) and its key area, in an image
 * that is mapped read-only (or, for a process that must not map, or a fuzz input, a heap
 * copy).  Nothing per record is copied out of it: a lookup decodes one record into a
 * buffer of the caller.  Overlay, in the heap, only for what changed since the snapshot:
 *   chg   base records replaced or expunged (TOMB) since, found by UID in a hash table;
 *   dead  base positions expunged and swept (sorted), so that positions skip them;
 *   add   records appended since (their UIDs are above every base UID), sorted.
 * Positions: the base records not dead, in order, then the appended ones.  A position
 * i < live base count is found by a binary search on dead[] (dead[j] - j grows), a UID by
 * a binary search of the base; both O(log n), no per-record memory.
 *
 * The image is untrusted: recset_load() checks it whole (CRC, UIDs ascending, bounds),
 * and every access checks again what it reads (a key's offset and its NUL), so bytes
 * changed in place afterwards give wrong records, never a read out of bounds. */
#ifndef POSTERN_INDEX_RECSET_H
#define POSTERN_INDEX_RECSET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "index/index.h"

#define RECSET_TOMB 0x80000000u
/* A base record in the snapshot: u32 uid, flags, keywords, key_len, u64 modseq, size,
 * raw, date, off, aux, key_off (into the key area, where the key ends in a NUL). */
#define RECSET_REC_SIZE 72

struct recset_chg {
	struct index_rec rec;   /* flags has RECSET_TOMB: expunged, key NULL */
	uint32_t bpos;          /* its base position */
};

struct recset {
	unsigned char *img;     /* the snapshot image (NULL: none) */
	size_t img_len;
	bool mapped;            /* munmap, not free */
	const unsigned char *base, *keys;
	size_t nbase, keys_len;
	uint32_t base_max;      /* highest base UID, 0 if none */
	struct recset_chg *chg;
	size_t nchg, chg_alloc;
	uint32_t *hash;         /* UID -> 1 + index into chg; 0 empty */
	size_t hash_cap;
	uint32_t *dead;
	size_t ndead, dead_alloc;
	struct index_rec *add;
	size_t nadd, add_alloc;
	bool tombs;             /* chg or add hold RECSET_TOMB entries */
};

/* Take the image (owned from now on) whose records start at base and keys at keys: the
 * caller checked that the areas lie inside it.  Checks the records (UIDs ascending and
 * non-zero, flags, bounded key lengths and offsets); releases the pages it read if
 * mapped.  0, or -1 (the image is freed). */
int recset_load(struct recset *rs, unsigned char *img, size_t img_len, bool mapped,
		size_t base_off, size_t nbase, size_t keys_off, size_t keys_len);
void recset_free(struct recset *rs);
/* Let a mapped image's pages [from, to) go (they are read again from the page cache when
 * touched), so that checking a large snapshot does not keep it resident. */
void recset_release(const unsigned char *img, bool mapped, size_t from, size_t to);

size_t recset_count(const struct recset *rs);
/* Records include tombstones (flags & RECSET_TOMB): the caller decides.  buf is where a
 * base record is decoded; the result is buf or an overlay record, NULL past the end. */
const struct index_rec *recset_get(const struct recset *rs, size_t i,
				   struct index_rec *buf);
const struct index_rec *recset_find(const struct recset *rs, uint32_t uid, size_t *pos_r,
				    struct index_rec *buf);
uint32_t recset_max_uid(const struct recset *rs);

/* Add (UID above every record) or replace; the key is copied.  *added_r tells which.
 * 0, or -1 (no such record to replace, a tombstone, too many records). */
int recset_put(struct recset *rs, const struct index_rec *r, bool *added_r);
/* Mark expunged until recset_sweep(); false if there was no such live record. */
bool recset_expunge(struct recset *rs, uint32_t uid);
void recset_sweep(struct recset *rs);
/* Heap bytes the overlay holds (not the image unless it is a heap copy). */
size_t recset_heap_bytes(const struct recset *rs);

#endif
