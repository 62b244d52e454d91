/* The per-folder index: UIDs, flags, MODSEQs and cached sizes of one folder's messages,
 * shared by every process that has the folder open, crash-safe.  Used by the storage
 * backends (common/storage/); it knows nothing of Maildir or mbox beyond an opaque key
 * per message and an opaque "stamp" per folder.
 *
 * On disk, in the directory given to index_open(), three files named after NAME:
 *   NAME        snapshot: header, keyword names, every record (fixed size, sorted by UID)
 *               and a key area, the cache (a directory sorted by UID and field, and
 *               its data), CRC-32 of all that; replaced by rename, never changed or
 *               truncated in place
 *   NAME.log    transactions appended since the snapshot; each has its own length and
 *               CRC-32 and is applied whole or not at all; the header names the
 *               snapshot generation it continues
 *   NAME.lock   the writers' fcntl lock (never replaced, so the lock outlives renames)
 * A reader needs no lock: it reads the snapshot, then the log up to the first entry that
 * is incomplete or fails its check.  A writer, under the lock, cuts such a torn tail
 * before it appends, and folds the log into a new snapshot when the log grows past
 * INDEX_LOG_COMPACT.  kill -9 at any instant leaves the old or the new state; UIDNEXT is
 * in every transaction, so no UID is handed out twice.  Every byte read is untrusted:
 * lengths and counts are bounded (plimits.h), a bad file is rebuilt, never trusted; so is
 * a file of format 1 (magic PSTIDX1, no keyword names): rebuilt under a new UIDVALIDITY.
 * Format 3 (PSTIDX3/PSTLOG3) adds the expunges remembered (below); format 2 is read (no
 * expunge remembered: its expunges count as forgotten) and the next commit writes it
 * again as format 3, under the same UIDVALIDITY.
 *
 * Memory: the snapshot is mapped read-only; its records and cache are read in place
 * (recset.h); the heap holds only what the log changed since the snapshot, so an open
 * index does not grow with the folder.  index_get()/index_find() decode a record into a
 * small ring of buffers (INDEX_REC_SLOTS, below).  A process keeps the mapping of a
 * snapshot another process replaced until its next refresh.  Only a snapshot owned by the effective UID is
 * mapped, never as root (index.c's top comment: why a file cut short is not a concern).
 *
 * Keyword names: the folder's table of IMAP keywords (bit i of index_rec.keywords is name
 * i), in the snapshot and extended by the log in the same transaction as its first use. */
#ifndef POSTERN_INDEX_H
#define POSTERN_INDEX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* System flags (RFC 9051 2.3.2). */
#define INDEX_FLAG_SEEN     0x01
#define INDEX_FLAG_ANSWERED 0x02
#define INDEX_FLAG_FLAGGED  0x04
#define INDEX_FLAG_DELETED  0x08
#define INDEX_FLAG_DRAFT    0x10
#define INDEX_FLAG_RECENT   0x20
#define INDEX_FLAG_MASK     0x3f

#define INDEX_SIZE_UNKNOWN UINT64_MAX

struct index_rec {
	uint32_t uid;
	uint32_t flags;      /* INDEX_FLAG_* */
	uint32_t keywords;   /* bit i: keyword i of the folder's keyword names */
	uint32_t key_len;
	uint64_t modseq;
	uint64_t size;       /* octets in CRLF form, or INDEX_SIZE_UNKNOWN */
	uint64_t raw;        /* bytes on disk */
	int64_t date;        /* internal date (seconds since the epoch) */
	uint64_t off, aux;   /* backend data (mbox: body offset, From-line offset) */
	char *key;           /* backend identity, key_len bytes + NUL (owned by the index) */
};

#define INDEX_STAMP_WORDS 4

struct index_hdr {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint64_t stamp[INDEX_STAMP_WORDS]; /* backend: what the folder looked like when last
	                                      synced (Maildir: directory mtimes) */
};

/* What changed in a refresh: UIDs (each list sorted). */
struct index_changes {
	uint32_t *added, *expunged, *changed;
	size_t n_added, n_expunged, n_changed;
	bool new_keywords;   /* keyword names were added (IMAP: send FLAGS again) */
};
void index_changes_free(struct index_changes *ch);

struct index_stats {
	uint64_t full_loads;     /* snapshot reads */
	uint64_t log_bytes_read;
	uint64_t compactions;
	uint64_t log_syncs;      /* commits appended with fdatasync */
	uint64_t log_unsynced;   /* commits of cache entries only: no fdatasync (index.c) */
	uint64_t maps;           /* snapshots mapped (not read into the heap) */
	uint64_t heap_bytes;     /* now: what the index holds in the heap (records changed
	                            since the snapshot, the cache, buffers) */
	uint64_t mapped_bytes;   /* now: the snapshot mapped (page cache, shared) */
};

struct index;
/* Open (and create if missing) the index NAME in the directory dfd (dfd is kept, not
 * owned).  0 or -1. */
int index_open(int dfd, const char *name, struct index **r, const char **error_r);
/* An index that lives only in memory (the folder's directory is not writable). */
struct index *index_new_memory(void);
void index_close(struct index **ix);

/* Read what other processes committed.  ch (may be NULL) gets what changed since the last
 * refresh.  0 or -1. */
int index_refresh(struct index *ix, struct index_changes *ch, const char **error_r);

/* After index_expunge() a position may hold a removed record (index_get() gives NULL)
 * until the commit; index_sweep() drops them at once (O(count)). */
void index_sweep(struct index *ix);
size_t index_count(const struct index *ix);
/* A record: valid until the next change of the index (lock, refresh, commit, unlock,
 * update, expunge...) and, for one read from the snapshot, until INDEX_REC_SLOTS more
 * calls of index_get()/index_find() (records are decoded into a small ring of buffers:
 * the index holds no memory per record).  Its key stays valid until the next change
 * whatever the number of calls; it is read-only (it may be in a read-only mapping). */
#define INDEX_REC_SLOTS 32
const struct index_rec *index_get(const struct index *ix, size_t i);
/* The record of uid, with its position; NULL if none. */
const struct index_rec *index_find(const struct index *ix, uint32_t uid, size_t *pos_r);
const struct index_hdr *index_hdr(const struct index *ix);
const struct index_stats *index_stats(const struct index *ix);

/* Writing: lock (waits at most INDEX_LOCK_TIMEOUT_MS; refreshes, reporting into ch, and
 * ch goes on collecting the holder's own changes until unlock),
 * change, commit (one transaction: written, fdatasync'd; visible to others only then;
 * a transaction of cache entries only is written without fdatasync: a crash may lose
 * it, never anything else), unlock.  Changes not committed are lost at unlock. */
int index_lock(struct index *ix, struct index_changes *ch, const char **error_r);
/* rec->uid is set to UIDNEXT, which advances; modseq = ++HIGHESTMODSEQ. */
int index_append(struct index *ix, struct index_rec *rec, const char **error_r);
/* Replace the record with rec->uid (flags, key, size...); modseq = ++HIGHESTMODSEQ if
 * the flags or keywords change, else the record keeps its modseq.
 * Both: rec->key is copied, and set to NULL (it may have been the replaced key). */
int index_update(struct index *ix, struct index_rec *rec, const char **error_r);
/* The same without a new MODSEQ (the record keeps its modseq, HIGHESTMODSEQ stays): for
 * state that is not IMAP metadata (the storage's \Recent claim, storage.h).  Another
 * process's refresh may still list the UID as changed; its modseq says nothing did. */
int index_update_quiet(struct index *ix, struct index_rec *rec, const char **error_r);
int index_expunge(struct index *ix, uint32_t uid, const char **error_r);
void index_set_stamp(struct index *ix, const uint64_t stamp[INDEX_STAMP_WORDS]);
/* A new UIDVALIDITY: every record is dropped (the backend lost track of its UIDs). */
void index_reset(struct index *ix, uint32_t uidvalidity);
int index_commit(struct index *ix, const char **error_r);
void index_unlock(struct index *ix);

/* Keyword names (IMAP flag-keyword, RFC 9051 2.3.2): the folder's table, bit i of
 * index_rec.keywords = name i.  Names are atoms of 1..INDEX_KEYWORD_MAX bytes, not
 * starting with '\\', compared without regard to ASCII case; at most INDEX_MAX_KEYWORDS
 * per folder, never removed or renumbered (a bit keeps its name for good).  A name added
 * is committed with the transaction; other processes see it after a refresh. */
bool index_keyword_valid(const char *name, size_t len);
/* The bit of name, or -1 if the folder has no such keyword. */
int index_keyword_find(const struct index *ix, const char *name, size_t len);
/* Under the lock: the bit of name, added if new.  0, or -1: invalid name, or the table is
 * full (*error_r == INDEX_KEYWORDS_FULL: IMAP answers NO, and PERMANENTFLAGS no longer
 * lists \*). */
#define INDEX_KEYWORDS_FULL "too many keywords in this folder"
int index_keyword_add(struct index *ix, const char *name, size_t len, unsigned *bit_r,
		      const char **error_r);
/* The name of bit (NUL-terminated, valid until the next refresh), or NULL. */
const char *index_keyword_name(const struct index *ix, unsigned bit);
unsigned index_keyword_count(const struct index *ix);

/* The cache of what IMAP FETCH and SEARCH need, filled when first needed: bytes per
 * (message, field), kept with the index (so shared, and crash-safe like the rest), dropped
 * with the message.  The storage layer does not interpret them. */
enum index_cache_field {
	INDEX_CACHE_ENVELOPE = 1,
	INDEX_CACHE_BODYSTRUCTURE = 2,
	INDEX_CACHE_HEADERS = 3,     /* chosen header fields */
	INDEX_CACHE_SENTDATE = 4,
	INDEX_CACHE_BINARY = 5,      /* BINARY.SIZE: decoded size, has NUL per part
	                                (imap/imap_binsize.h's bytes) */
	INDEX_CACHE_FIELDS           /* one past the last */
};
/* Under the lock; replaces an entry whole.  len <= INDEX_CACHE_ENTRY_MAX. */
int index_cache_set(struct index *ix, uint32_t uid, uint32_t field, const void *data,
		    size_t len, const char **error_r);
/* The entry, valid until the next change of the index; NULL if none. */
const void *index_cache_get(const struct index *ix, uint32_t uid, uint32_t field,
			    size_t *len_r);

/* Parsers, exposed for the fuzz targets: a snapshot image and a log image.  0 or -1. */
int index_parse_snapshot(struct index *ix, const unsigned char *buf, size_t len);
int index_parse_log(struct index *ix, const unsigned char *buf, size_t len,
		    size_t *valid_r);

/* Expunges remembered (IMAP QRESYNC, RFC 7162 3.2.5.1): each expunge's UID and the
 * MODSEQ it took (index_expunge() advances HIGHESTMODSEQ), in MODSEQ order, in the
 * snapshot and the log like the rest.  At most INDEX_EXPUNGES_MAX (plimits.h): when full,
 * the oldest quarter is forgotten and *floor_r rises to the last MODSEQ forgotten.  Every
 * expunge with a MODSEQ above *floor_r is in the list; of older ones nothing is known. */
struct index_expunge {
	uint32_t uid;
	uint64_t modseq;
};
const struct index_expunge *index_expunges(const struct index *ix, size_t *n_r,
					   uint64_t *floor_r);

/* Tests run as root, and root never maps an index (index.c): true lets them. */
extern bool index_test_map_as_root;

/* Test hook: crash points.  When set, index_commit() calls it between its steps with a
 * step number; a test kills itself there. */
extern void (*index_test_hook)(int step);

#endif
