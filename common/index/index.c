/* The per-folder index: formats and rules in index.h.
 *
 * Encoding (little-endian):
 *   snapshot: "PSTIDX3\n", u64 generation, u32 uidvalidity, u32 uidnext,
 *             u64 highestmodseq, u64 stamp[4], u64 count,
 *             u32 keyword count, each keyword: u8 length, bytes (bit i = the i-th),
 *             the expunges remembered (index.h): u64 floor, u32 n, n times u32 uid,
 *             u64 modseq (in modseq order, each above the floor),
 *             u64 key area length,
 *             count fixed-size records (recset.h: RECSET_REC_SIZE, sorted by UID, each
 *             with the offset of its key in the key area),
 *             the key area (every key followed by a NUL),
 *             u64 cache count, the cache directory: that many entries of u32 uid,
 *             u32 field, u32 length, u64 offset, in (uid, field) order; u64 cache data
 *             length, the data (each entry's bytes at its offset),
 *             u32 CRC-32
 *   log record: u32 uid, flags, keywords, key_len, u64 modseq, size, raw, date, off,
 *             aux, key_len bytes of key
 *   log:      "PSTLOG3\n", u64 generation, then entries: u32 length, u32 CRC-32 of the
 *             payload, payload = operations, the last one always 'H':
 *             'P' record (add, or replace the record with that UID)
 *             'X' u32 uid, u64 modseq (expunge, remembered with its MODSEQ)
 *             'C' u32 uid, u32 field, u32 length, bytes (a cache entry, replaced whole)
 *             'K' u8 length, bytes (a new keyword name: the next bit)
 *             'R' (drop every record: a new UIDVALIDITY follows in 'H'; the keyword
 *                 names stay, since Maildir file names carry keyword bits as letters)
 *             'H' u32 uidvalidity, u32 uidnext, u64 highestmodseq, u64 stamp[4]
 * In memory (recset.h) the snapshot is mapped read-only and read in place; the heap holds
 * only what the log changed since (an overlay), so memory does not grow with the folder.
 * An expunge leaves a tombstone that the next commit or refresh sweeps out.
 *
 * Mapping, and a file cut short under us: postern never truncates or rewrites a snapshot
 * in place (a new one is written under a temporary name and renamed over; ftruncate()
 * touches only the log, which is read with pread(), never mapped), so a mapping of a
 * snapshot's inode never shrinks, and a process keeps its mapping of a replaced
 * snapshot until its next refresh.  Only a process of the same user acting against us
 * could cut it (SIGBUS in that user's own session; such a process can change the user's
 * mail anyway).  So we map only a snapshot owned by our effective UID, and never as
 * root; otherwise the snapshot is read into the heap (index_test_map_as_root lets the
 * tests, which run as root, take the mapped path).
 * Format 1 ("PSTIDX1", no keyword names) is not read: such an index counts as bad and is
 * rebuilt under a new UIDVALIDITY (docs/architecture.md).  Format 2 ("PSTIDX2"/"PSTLOG2")
 * is format 3 without the expunges remembered and with 'X' u32 uid only: it is read, its
 * expunges count as forgotten (the floor is its HIGHESTMODSEQ), and the next commit
 * writes a format 3 snapshot (compact()), so the UIDs stay valid across the upgrade. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "index/index.h"
#include "index/recset.h"

#define SNAP_MAGIC "PSTIDX3\n"
#define LOG_MAGIC "PSTLOG3\n"
#define SNAP_MAGIC2 "PSTIDX2\n"
#define LOG_MAGIC2 "PSTLOG2\n"
#define EXP_ENT 12
#define MAGIC_LEN 8
#define SNAP_HDR_LEN (8 + 8 + 4 + 4 + 8 + 8 * INDEX_STAMP_WORDS + 8)
#define LOG_HDR_LEN 16
#define REC_FIXED 64
_Static_assert(REC_FIXED + 8 == RECSET_REC_SIZE, "snapshot record: the log's + key offset");
#define OP_HDR_LEN (1 + 4 + 4 + 8 + 8 * INDEX_STAMP_WORDS)
#define TOMB RECSET_TOMB
/* Records given out by index_get()/index_find() from the snapshot are decoded into a
 * ring of this many buffers (index.h: how long one stays valid). */
#define REC_SLOTS INDEX_REC_SLOTS

void (*index_test_hook)(int step);
bool index_test_map_as_root;

struct rec_ring {
	unsigned next;
	struct index_rec slot[REC_SLOTS];
};

struct cache_ent {
	uint32_t uid;
	uint32_t field;
	uint32_t len;
	unsigned char *data;
};

struct index {
	int dfd;                 /* -1: memory only */
	char name[64];
	struct recset rs;        /* the records */
	struct rec_ring *ring;   /* heap: written through a const index */
	bool remap;              /* we wrote a new snapshot: map it at the next refresh */
	struct index_stats *stats_out;
	struct cache_ent *cache;  /* changed since the snapshot, sorted by (uid, field) */
	size_t ncache, cache_alloc;
	uint64_t cache_bytes;
	const unsigned char *cdir, *cdata; /* the snapshot's cache, in its image: an entry */
	size_t ncdir;                      /* there counts if its message is still there */
	uint64_t cdata_len;                /* and no entry above replaces it */
	struct index_hdr hdr;
	char kw[INDEX_MAX_KEYWORDS][INDEX_KEYWORD_MAX + 1]; /* the folder's keyword names */
	unsigned nkw;
	uint64_t gen, log_gen;
	bool have_snap, have_log;
	dev_t snap_dev, log_dev;
	ino_t snap_ino, log_ino;
	uint64_t snap_size;
	int log_fd;
	uint64_t log_off;        /* end of the last valid log entry */
	int lock_fd;
	bool locked, bad;
	unsigned char *tx;       /* the open transaction's operations */
	size_t tx_len, tx_alloc;
	bool dirty;              /* something to commit (the header at least) */
	bool durable;            /* the transaction holds more than cache entries */
	bool need_snap;          /* reset: the next commit writes a whole snapshot */
	struct index_changes *ch;      /* where apply_* report (NULL: nowhere) */
	struct index_changes *collect; /* the lock holder's changes */
	uint32_t collect_next;         /* UIDNEXT before the lock */
	struct index_stats stats;
	struct index_expunge *exp; /* expunges remembered (index.h), in modseq order */
	size_t nexp, exp_alloc;
	uint64_t exp_floor;
	int fmt;                   /* the format read (2 or 3): 2 is written again as 3 */
	char err[160];
};

/* ---- bytes ---- */

/* CRC-32 (IEEE), "slicing by 8": crc_table[0] is the classic byte table, crc_table[k]
 * advances a byte's contribution by k more zero bytes, so that eight input bytes cost
 * eight table look-ups and no loop-carried shift chain.  Every snapshot load checks the
 * CRC of the whole image (tens of MB for a 100,000-message folder with its cache), so
 * this is on the path of each SELECT.  Byte-order independent (bytes are read one by one). */
static uint32_t crc_table[8][256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t v = i;
		for (int k = 0; k < 8; k++)
			v = v & 1 ? 0xedb88320u ^ (v >> 1) : v >> 1;
		crc_table[0][i] = v;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* c: 0xffffffff at the start; the CRC-32 is the result XOR 0xffffffff. */
static uint32_t crc32_update(uint32_t c, const unsigned char *p, size_t n)
{
	if (crc_table[0][1] == 0)
		crc_init();
	for (; n >= 8; n -= 8, p += 8) { /* BOUNDS: p[0..7] within the n >= 8 left */
		c ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		     (uint32_t)p[3] << 24;
		c = crc_table[7][c & 0xff] ^ crc_table[6][(c >> 8) & 0xff] ^
		    crc_table[5][(c >> 16) & 0xff] ^ crc_table[4][c >> 24] ^
		    crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
		    crc_table[0][p[7]];
	}
	for (size_t i = 0; i < n; i++)
		c = crc_table[0][(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c;
}

static uint32_t crc32_buf(const unsigned char *p, size_t n)
{
	uint32_t c = crc32_update(0xffffffffu, p, n);
	return c ^ 0xffffffffu;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static const char *ixerr(struct index *ix, const char *what, int err)
{
	if (util_snprintf(ix->err, sizeof(ix->err), "index %s: %s: %s", ix->name, what,
			  strerror(err)) < 0)
		return what;
	return ix->err;
}

/* ---- changes ---- */

static void ulist_add(uint32_t **l, size_t *n, uint32_t uid)
{
	if ((*n & (*n + 1)) == 0 || *n == 0) /* grow at 0, 1, 3, 7, ... */
		*l = xrealloc(*l, (*n * 2 + 2) * sizeof(**l)); /* BOUNDS: n <= ops applied */
	(*l)[(*n)++] = uid;
}

void index_changes_free(struct index_changes *ch)
{
	if (ch == NULL)
		return;
	free(ch->added);
	free(ch->expunged);
	free(ch->changed);
	memset(ch, 0, sizeof(*ch));
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Sort and drop duplicates. */
static void ulist_norm(uint32_t *l, size_t *n)
{
	if (*n == 0)
		return;
	qsort(l, *n, sizeof(*l), cmp_u32);
	size_t k = 1;
	for (size_t i = 1; i < *n; i++)
		if (l[i] != l[k - 1])
			l[k++] = l[i];
	*n = k;
}

/* ---- records in memory ---- */

static struct index_rec *ring_slot(const struct index *ix)
{
	struct rec_ring *r = ix->ring;
	return &r->slot[r->next++ % REC_SLOTS];
}

static void recs_clear(struct index *ix)
{
	recset_free(&ix->rs);
	for (size_t i = 0; i < ix->ncache; i++)
		free(ix->cache[i].data);
	ix->ncache = 0;
	ix->cache_bytes = 0;
	ix->cdir = ix->cdata = NULL;
	ix->ncdir = 0;
	ix->cdata_len = 0;
}

#define CDIR_ENT 20

/* The data of the snapshot's directory entry e, or NULL if its offset is out of bounds. */
static const unsigned char *cache_base_data(const struct index *ix, const unsigned char *e,
					    uint32_t *len_r)
{
	uint32_t len = get32(e + 8);
	uint64_t off = get64(e + 12);
	if (off > ix->cdata_len || len > ix->cdata_len - off)
		return NULL;
	*len_r = len;
	return ix->cdata + off;
}

/* The snapshot's entry (uid, field): its data, or NULL.  Offsets checked again here: the
 * image could have changed in place since it was checked. */
static const unsigned char *cache_base(const struct index *ix, uint32_t uid, uint32_t field,
				       uint32_t *len_r)
{
	size_t lo = 0, hi = ix->ncdir;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const unsigned char *e = ix->cdir + mid * CDIR_ENT;
		uint32_t u = get32(e), f = get32(e + 4);
		if (u < uid || (u == uid && f < field))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == ix->ncdir || get32(ix->cdir + lo * CDIR_ENT) != uid ||
	    get32(ix->cdir + lo * CDIR_ENT + 4) != field)
		return NULL;
	return cache_base_data(ix, ix->cdir + lo * CDIR_ENT, len_r);
}

/* ---- the cache: (uid, field) -> bytes ---- */

static size_t cache_pos(const struct index *ix, uint32_t uid, uint32_t field, bool *found_r)
{
	size_t lo = 0, hi = ix->ncache;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct cache_ent *c = &ix->cache[mid];
		if (c->uid < uid || (c->uid == uid && c->field < field))
			lo = mid + 1;
		else
			hi = mid;
	}
	*found_r = lo < ix->ncache && ix->cache[lo].uid == uid && ix->cache[lo].field == field;
	return lo;
}

/* For a record that exists; bounded per entry and in all.  0, or -1 bad. */
static int apply_cache(struct index *ix, uint32_t uid, uint32_t field, const void *data,
		       uint32_t len)
{
	bool found;
	if (field == 0 || field >= INDEX_CACHE_FIELDS || len > INDEX_CACHE_ENTRY_MAX)
		return -1;
	if (index_find(ix, uid, NULL) == NULL)
		return 0; /* expunged meanwhile: nothing to keep */
	size_t pos = cache_pos(ix, uid, field, &found);
	if (found) {
		ix->cache_bytes -= ix->cache[pos].len;
		free(ix->cache[pos].data);
	} else {
		if (ix->ncache >= 2 * (size_t)INDEX_CACHE_FIELDS * MSTORE_MAX_MESSAGES)
			return -1;
		if (ix->ncache == ix->cache_alloc) {
			ix->cache_alloc = ix->cache_alloc == 0 ? 64 : ix->cache_alloc * 2;
			ix->cache = xrealloc(ix->cache, ix->cache_alloc * sizeof(*ix->cache));
		}
		memmove(&ix->cache[pos + 1], &ix->cache[pos],
			(ix->ncache - pos) * sizeof(*ix->cache)); /* BOUNDS: pos <= ncache */
		ix->ncache++;
	}
	ix->cache[pos] = (struct cache_ent){ uid, field, len, xmalloc(len + 1) };
	memcpy(ix->cache[pos].data, data, len);
	ix->cache_bytes += len;
	return 0;
}

static void cache_drop_uid(struct index *ix, uint32_t uid)
{
	bool found;
	size_t a = cache_pos(ix, uid, 0, &found), b = a;
	while (b < ix->ncache && ix->cache[b].uid == uid) {
		ix->cache_bytes -= ix->cache[b].len;
		free(ix->cache[b].data);
		b++;
	}
	if (b > a) {
		memmove(&ix->cache[a], &ix->cache[b], (ix->ncache - b) * sizeof(*ix->cache));
		ix->ncache -= b - a;
	}
}

static void sweep(struct index *ix)
{
	recset_sweep(&ix->rs);
}

/* Add (uid above every record) or replace.  The key is copied.  0, or -1 bad. */
static int apply_put(struct index *ix, const struct index_rec *r)
{
	bool added;
	if (r->uid == 0 || r->key_len > INDEX_KEY_MAX || (r->flags & ~INDEX_FLAG_MASK) != 0)
		return -1;
	if (recset_put(&ix->rs, r, &added) == -1)
		return -1;
	if (ix->ch != NULL) {
		if (added)
			ulist_add(&ix->ch->added, &ix->ch->n_added, r->uid);
		else
			ulist_add(&ix->ch->changed, &ix->ch->n_changed, r->uid);
	}
	return 0;
}

/* ---- the expunges remembered ---- */

static void exp_clear(struct index *ix, uint64_t floor)
{
	ix->nexp = 0;
	ix->exp_floor = floor;
}

/* One more, above every one remembered; the oldest quarter is forgotten when full.  0, or
 * -1 bad (out of order). */
static int exp_add(struct index *ix, uint32_t uid, uint64_t modseq)
{
	if (uid == 0 || modseq <= ix->exp_floor ||
	    (ix->nexp > 0 && modseq <= ix->exp[ix->nexp - 1].modseq))
		return -1;
	if (ix->nexp == INDEX_EXPUNGES_MAX) {
		size_t drop = INDEX_EXPUNGES_MAX / 4;
		ix->exp_floor = ix->exp[drop - 1].modseq;
		memmove(ix->exp, ix->exp + drop, (ix->nexp - drop) * sizeof(*ix->exp));
		ix->nexp -= drop;
	}
	if (ix->nexp == ix->exp_alloc) {
		ix->exp_alloc = ix->exp_alloc == 0 ? 64 : ix->exp_alloc * 2;
		if (ix->exp_alloc > INDEX_EXPUNGES_MAX)
			ix->exp_alloc = INDEX_EXPUNGES_MAX;
		ix->exp = xrealloc(ix->exp, ix->exp_alloc * sizeof(*ix->exp));
	}
	/* BOUNDS: nexp < exp_alloc <= INDEX_EXPUNGES_MAX */
	ix->exp[ix->nexp++] = (struct index_expunge){ uid, modseq };
	return 0;
}

/* modseq 0: not known (format 2); nothing is remembered.  0, or -1 bad. */
static int apply_expunge(struct index *ix, uint32_t uid, uint64_t modseq)
{
	if (!recset_expunge(&ix->rs, uid))
		return 0;
	cache_drop_uid(ix, uid);
	if (ix->ch != NULL)
		ulist_add(&ix->ch->expunged, &ix->ch->n_expunged, uid);
	return modseq == 0 ? 0 : exp_add(ix, uid, modseq);
}

/* The header must agree with the records: UIDNEXT above every UID. */
static int apply_hdr(struct index *ix, const struct index_hdr *h)
{
	if (h->uidnext == 0 || recset_max_uid(&ix->rs) >= h->uidnext ||
	    h->uidnext < ix->hdr.uidnext || h->highestmodseq < ix->hdr.highestmodseq ||
	    ix->exp_floor > h->highestmodseq ||
	    (ix->nexp > 0 && (ix->exp[ix->nexp - 1].modseq > h->highestmodseq ||
			      ix->exp[ix->nexp - 1].uid >= h->uidnext)))
		return -1;
	ix->hdr = *h;
	return 0;
}

/* ---- keyword names ---- */

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

bool index_keyword_valid(const char *name, size_t len)
{
	if (len == 0 || len > INDEX_KEYWORD_MAX || name[0] == '\\')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		/* atom-char: CHAR except atom-specials (RFC 9051 9: "(" ")" "{" SP CTL
		 * list-wildcards quoted-specials resp-specials) */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static int kw_find(const struct index *ix, const char *name, size_t len)
{
	for (unsigned i = 0; i < ix->nkw; i++) {
		const char *k = ix->kw[i];
		size_t j = 0;
		while (j < len && k[j] != '\0' &&
		       ascii_lower((unsigned char)k[j]) == ascii_lower((unsigned char)name[j]))
			j++;
		if (j == len && k[j] == '\0')
			return (int)i;
	}
	return -1;
}

/* A new name (valid, not there yet, room left).  0, or -1 bad. */
static int apply_keyword(struct index *ix, const char *name, size_t len)
{
	if (ix->nkw >= INDEX_MAX_KEYWORDS || !index_keyword_valid(name, len) ||
	    kw_find(ix, name, len) != -1)
		return -1;
	memcpy(ix->kw[ix->nkw], name, len); /* BOUNDS: len <= INDEX_KEYWORD_MAX */
	ix->kw[ix->nkw][len] = '\0';
	ix->nkw++;
	if (ix->ch != NULL)
		ix->ch->new_keywords = true;
	return 0;
}

/* ---- encoding ---- */

static size_t rec_encode(unsigned char *p, const struct index_rec *r)
{
	put32(p, r->uid);
	put32(p + 4, r->flags);
	put32(p + 8, r->keywords);
	put32(p + 12, r->key_len);
	put64(p + 16, r->modseq);
	put64(p + 24, r->size);
	put64(p + 32, r->raw);
	put64(p + 40, (uint64_t)r->date);
	put64(p + 48, r->off);
	put64(p + 56, r->aux);
	memcpy(p + REC_FIXED, r->key, r->key_len);
	return REC_FIXED + r->key_len;
}

/* A record at p (len bytes left).  Its key points into p.  Bytes used, or 0 if bad. */
static size_t rec_decode(const unsigned char *p, size_t len, struct index_rec *r)
{
	if (len < REC_FIXED)
		return 0;
	r->uid = get32(p);
	r->flags = get32(p + 4);
	r->keywords = get32(p + 8);
	r->key_len = get32(p + 12);
	r->modseq = get64(p + 16);
	r->size = get64(p + 24);
	r->raw = get64(p + 32);
	r->date = (int64_t)get64(p + 40);
	r->off = get64(p + 48);
	r->aux = get64(p + 56);
	if (r->key_len > INDEX_KEY_MAX || len - REC_FIXED < r->key_len)
		return 0;
	r->key = (char *)(p + REC_FIXED);
	return REC_FIXED + r->key_len;
}

static void hdr_encode(unsigned char *p, const struct index_hdr *h)
{
	put32(p, h->uidvalidity);
	put32(p + 4, h->uidnext);
	put64(p + 8, h->highestmodseq);
	for (int i = 0; i < INDEX_STAMP_WORDS; i++)
		put64(p + 16 + 8 * i, h->stamp[i]);
}

static void hdr_decode(const unsigned char *p, struct index_hdr *h)
{
	h->uidvalidity = get32(p);
	h->uidnext = get32(p + 4);
	h->highestmodseq = get64(p + 8);
	for (int i = 0; i < INDEX_STAMP_WORDS; i++)
		h->stamp[i] = get64(p + 16 + 8 * i);
}

/* ---- parsing ---- */

static void image_free(unsigned char *img, size_t len, bool mapped)
{
	if (mapped)
		(void)munmap(img, len);
	else
		free(img);
}

/* The CRC of a snapshot image, its pages let go as they are read (recset_release). */
static uint32_t image_crc(const unsigned char *img, size_t len, bool mapped)
{
	uint32_t c = 0xffffffffu;
	for (size_t off = 0; off < len;) {
		size_t n = len - off < 1024 * 1024 ? len - off : 1024 * 1024;
		c = crc32_update(c, img + off, n);
		recset_release(img, mapped, off, off + n);
		off += n;
	}
	return c ^ 0xffffffffu;
}

/* A snapshot image, owned from now on (kept by the records, or freed).  0, or -1. */
static int parse_image(struct index *ix, unsigned char *buf, size_t len, bool mapped)
{
	recs_clear(ix);
	memset(&ix->hdr, 0, sizeof(ix->hdr));
	ix->nkw = 0;
	exp_clear(ix, 0);
	ix->fmt = len >= MAGIC_LEN && memcmp(buf, SNAP_MAGIC2, MAGIC_LEN) == 0 ? 2 : 3;
	if (len < SNAP_HDR_LEN + 4 ||
	    memcmp(buf, ix->fmt == 2 ? SNAP_MAGIC2 : SNAP_MAGIC, MAGIC_LEN) != 0 ||
	    image_crc(buf, len - 4, mapped) != get32(buf + len - 4)) {
		image_free(buf, len, mapped);
		return -1;
	}
	struct index_hdr h;
	ix->gen = get64(buf + 8);
	hdr_decode(buf + 16, &h);
	uint64_t count = get64(buf + SNAP_HDR_LEN - 8);
	size_t off = SNAP_HDR_LEN, end = len - 4;
	if (count > MSTORE_MAX_MESSAGES || end - off < 4 || get32(buf + off) > INDEX_MAX_KEYWORDS)
		goto bad_img;
	uint32_t nkw = get32(buf + off);
	off += 4;
	for (uint32_t i = 0; i < nkw; i++) {
		if (end - off < 1 || buf[off] > end - off - 1 ||
		    apply_keyword(ix, (const char *)buf + off + 1, buf[off]) == -1)
			goto bad_img;
		off += 1 + (size_t)buf[off];
	}
	if (ix->fmt == 3) {
		/* the expunges remembered: checked against the header by apply_hdr() */
		if (end - off < 12 || get32(buf + off + 8) > INDEX_EXPUNGES_MAX ||
		    (size_t)get32(buf + off + 8) * EXP_ENT > end - off - 12)
			goto bad_img;
		exp_clear(ix, get64(buf + off));
		uint32_t nexp = get32(buf + off + 8);
		off += 12;
		for (uint32_t i = 0; i < nexp; i++, off += EXP_ENT)
			if (exp_add(ix, get32(buf + off), get64(buf + off + 4)) == -1)
				goto bad_img;
	}
	if (end - off < 8)
		goto bad_img;
	uint64_t keys_len = get64(buf + off);
	off += 8;
	size_t recs_len = (size_t)count * RECSET_REC_SIZE; /* BOUNDS: count <= MAX_MESSAGES */
	if (recs_len > end - off || keys_len > end - off - recs_len)
		goto bad_img;
	if (recset_load(&ix->rs, buf, len, mapped, off, (size_t)count, off + recs_len,
			(size_t)keys_len) == -1)
		goto bad; /* freed the image */
	off += recs_len + (size_t)keys_len;
	if (apply_hdr(ix, &h) == -1 || end - off < 8)
		goto bad;
	if (ix->fmt == 2)
		exp_clear(ix, h.highestmodseq); /* format 2 remembers none */
	for (size_t i = 0; i < ix->nexp; i++)
		if (ix->exp[i].uid >= h.uidnext)
			goto bad;
	/* the cache directory, checked in place like the records */
	uint64_t ncache = get64(buf + off);
	off += 8;
	if (ncache > 2 * (uint64_t)INDEX_CACHE_FIELDS * MSTORE_MAX_MESSAGES ||
	    ncache * CDIR_ENT > end - off || end - off - ncache * CDIR_ENT < 8)
		goto bad;
	ix->cdir = buf + off;
	ix->ncdir = (size_t)ncache;
	off += (size_t)ncache * CDIR_ENT;
	ix->cdata_len = get64(buf + off);
	off += 8;
	if (ix->cdata_len != end - off)
		goto bad;
	ix->cdata = buf + off;
	size_t done = (size_t)(ix->cdir - buf);
	for (size_t i = 0; i < ix->ncdir; i++) {
		const unsigned char *e = ix->cdir + i * CDIR_ENT;
		uint32_t uid = get32(e), field = get32(e + 4), clen = get32(e + 8);
		uint64_t coff = get64(e + 12);
		if (uid == 0 || field == 0 || field >= INDEX_CACHE_FIELDS ||
		    clen > INDEX_CACHE_ENTRY_MAX || coff > ix->cdata_len ||
		    clen > ix->cdata_len - coff ||
		    (i > 0 && (get32(e - CDIR_ENT) > uid ||
			       (get32(e - CDIR_ENT) == uid && get32(e - CDIR_ENT + 4) >= field))))
			goto bad;
		size_t at = (size_t)(e + CDIR_ENT - buf);
		if (at - done >= 1024 * 1024) {
			recset_release(buf, mapped, done, at);
			done = at;
		}
	}
	recset_release(buf, mapped, done, (size_t)(ix->cdata - buf));
	return 0;
bad_img:
	image_free(buf, len, mapped);
bad:
	recs_clear(ix);
	memset(&ix->hdr, 0, sizeof(ix->hdr));
	ix->nkw = 0;
	exp_clear(ix, 0);
	return -1;
}

/* For the fuzz target and the tests: a heap copy of the image is parsed. */
int index_parse_snapshot(struct index *ix, const unsigned char *buf, size_t len)
{
	unsigned char *img = xmalloc(len + 1); /* BOUNDS: the caller's buffer */
	memcpy(img, buf, len);
	return parse_image(ix, img, len, false);
}

/* The operations of one entry, already checked by its CRC.  -1: bad operations (the
 * entry was applied in part: the caller reloads). */
static int apply_ops(struct index *ix, const unsigned char *p, size_t len)
{
	size_t off = 0;
	bool ended = false;
	while (off < len) {
		if (ended)
			return -1; /* 'H' must be last */
		unsigned char op = p[off++];
		struct index_rec r;
		size_t used;
		switch (op) {
		case 'P':
			used = rec_decode(p + off, len - off, &r);
			if (used == 0 || apply_put(ix, &r) == -1)
				return -1;
			off += used;
			break;
		case 'X': {
			size_t xlen = ix->fmt == 2 ? 4 : 12;
			if (len - off < xlen ||
			    apply_expunge(ix, get32(p + off),
					  ix->fmt == 2 ? 0 : get64(p + off + 4)) == -1)
				return -1;
			off += xlen;
			break;
		}
		case 'C': {
			if (len - off < 12)
				return -1;
			uint32_t uid = get32(p + off), field = get32(p + off + 4),
				clen = get32(p + off + 8);
			off += 12;
			if (clen > len - off || apply_cache(ix, uid, field, p + off, clen) == -1)
				return -1;
			off += clen;
			break;
		}
		case 'K':
			if (len - off < 1 || p[off] > len - off - 1 ||
			    apply_keyword(ix, (const char *)p + off + 1, p[off]) == -1)
				return -1;
			off += 1 + (size_t)p[off];
			break;
		case 'R':
			for (size_t i = 0; ix->ch != NULL && i < recset_count(&ix->rs); i++) {
				struct index_rec buf;
				const struct index_rec *o = recset_get(&ix->rs, i, &buf);
				if ((o->flags & TOMB) == 0)
					ulist_add(&ix->ch->expunged, &ix->ch->n_expunged,
						  o->uid);
			}
			recs_clear(ix);
			memset(&ix->hdr, 0, sizeof(ix->hdr));
			exp_clear(ix, 0);
			break;
		case 'H': {
			struct index_hdr h;
			if (len - off < OP_HDR_LEN - 1)
				return -1;
			hdr_decode(p + off, &h);
			sweep(ix);
			if (apply_hdr(ix, &h) == -1)
				return -1;
			if (ix->fmt == 2)
				exp_clear(ix, h.highestmodseq); /* its expunges: forgotten */
			off += OP_HDR_LEN - 1;
			ended = true;
			break;
		}
		default:
			return -1;
		}
	}
	return ended ? 0 : -1;
}

int index_parse_log(struct index *ix, const unsigned char *buf, size_t len,
		    size_t *valid_r)
{
	size_t off = 0;
	*valid_r = 0;
	while (len - off >= 8) {
		uint32_t elen = get32(buf + off), crc = get32(buf + off + 4);
		if (elen == 0 || elen > len - off - 8 || crc32_buf(buf + off + 8, elen) != crc)
			break; /* torn or foreign: the valid log ends here */
		if (apply_ops(ix, buf + off + 8, elen) == -1)
			return -1;
		off += 8 + (size_t)elen;
		*valid_r = off;
	}
	return 0;
}

/* ---- files ---- */

static int read_file(int fd, unsigned char **buf_r, size_t *len_r, uint64_t from)
{
	struct stat st;
	if (fstat(fd, &st) == -1)
		return -1;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > INDEX_MAX_FILE) {
		errno = EFBIG;
		return -1;
	}
	size_t size = (uint64_t)st.st_size > from ? (size_t)((uint64_t)st.st_size - from) : 0;
	unsigned char *buf = xmalloc(size + 1); /* BOUNDS: size <= INDEX_MAX_FILE */
	size_t got = 0;
	while (got < size) {
		ssize_t r = pread(fd, buf + got, size - got, (off_t)(from + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*buf_r = buf;
	*len_r = got;
	return 0;
}

static int open_in(struct index *ix, const char *suffix, int flags)
{
	char path[96];
	if (util_snprintf(path, sizeof(path), "%s%s", ix->name, suffix) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return openat(ix->dfd, path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
}

/* Every value in the line sanitized: the name comes from a folder name, the error may
 * carry one. */
static void log_bad(const struct index *ix, const char *what)
{
	char name[LOG_MAX_FIELD + 1], w[LOG_MAX_FIELD + 1];
	log_warn("index: name=<%s>, error=<%s>", log_sanitize(ix->name, strlen(ix->name), name),
		 log_sanitize(what, strlen(what), w));
}

static void close_log(struct index *ix)
{
	if (ix->log_fd != -1)
		close(ix->log_fd);
	ix->log_fd = -1;
	ix->have_log = false;
}

/* Read the snapshot and the log from scratch.  A bad snapshot is an empty index
 * (uidvalidity 0: the next writer starts over); a bad log ends at its bad entry. */
static int load(struct index *ix, const char **error_r)
{
	struct stat st;
	unsigned char *buf;
	size_t len;

	ix->stats.full_loads++;
	recs_clear(ix);
	memset(&ix->hdr, 0, sizeof(ix->hdr));
	ix->nkw = 0;
	exp_clear(ix, 0);
	ix->fmt = 3;
	ix->gen = 0;
	ix->have_snap = false;
	ix->bad = false;
	ix->remap = false;
	close_log(ix);
	int fd = open_in(ix, "", O_RDONLY);
	if (fd == -1 && errno != ENOENT) {
		*error_r = ixerr(ix, "open", errno);
		return -1;
	}
	if (fd != -1) {
		bool mapped = false;
		if (fstat(fd, &st) == -1) {
			*error_r = ixerr(ix, "stat", errno);
			close(fd);
			return -1;
		}
		/* mapped only if ours and we are not root (index.c's top comment) */
		if (S_ISREG(st.st_mode) && st.st_size > 0 &&
		    (uint64_t)st.st_size <= INDEX_MAX_FILE && st.st_uid == geteuid() &&
		    (geteuid() != 0 || index_test_map_as_root)) {
			void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (m != MAP_FAILED) {
				buf = m;
				len = (size_t)st.st_size;
				mapped = true;
				ix->stats.maps++;
			}
		}
		if (!mapped && read_file(fd, &buf, &len, 0) == -1) {
			*error_r = ixerr(ix, "read", errno);
			close(fd);
			return -1;
		}
		close(fd);
		ix->have_snap = true;
		ix->snap_dev = st.st_dev;
		ix->snap_ino = st.st_ino;
		ix->snap_size = len;
		if (parse_image(ix, buf, len, mapped) == -1) {
			log_bad(ix, "bad snapshot, rebuilding");
			ix->bad = true;
		}
	}
	ix->log_fd = open_in(ix, ".log", O_RDWR);
	if (ix->log_fd == -1) {
		if (errno == ENOENT)
			return 0;
		*error_r = ixerr(ix, "open log", errno);
		return -1;
	}
	if (fstat(ix->log_fd, &st) == -1 || read_file(ix->log_fd, &buf, &len, 0) == -1) {
		*error_r = ixerr(ix, "read log", errno);
		close_log(ix);
		return -1;
	}
	ix->have_log = true;
	ix->log_dev = st.st_dev;
	ix->log_ino = st.st_ino;
	ix->log_off = len;
	ix->log_gen = UINT64_MAX;
	/* a log continues a snapshot of its own format */
	if (len >= LOG_HDR_LEN &&
	    memcmp(buf, ix->fmt == 2 ? LOG_MAGIC2 : LOG_MAGIC, MAGIC_LEN) == 0)
		ix->log_gen = get64(buf + 8);
	if (ix->log_gen == ix->gen && !ix->bad) {
		size_t valid;
		ix->stats.log_bytes_read += len;
		if (index_parse_log(ix, buf + LOG_HDR_LEN, len - LOG_HDR_LEN, &valid) == -1) {
			log_bad(ix, "bad log, rebuilding");
			ix->bad = true;
			recs_clear(ix);
			memset(&ix->hdr, 0, sizeof(ix->hdr));
			ix->nkw = 0;
			exp_clear(ix, 0);
		}
		ix->log_off = LOG_HDR_LEN + valid;
		sweep(ix);
	}
	free(buf);
	return 0;
}

/* Changes between two states (both sorted by UID). */
static void diff(const struct recset *old, const struct recset *cur, struct index_changes *ch)
{
	size_t i = 0, j = 0, na = recset_count(old), nb = recset_count(cur);
	struct index_rec abuf, bbuf;
	const struct index_rec *a = recset_get(old, 0, &abuf), *b = recset_get(cur, 0, &bbuf);
	while (i < na || j < nb) {
		if (j == nb || (i < na && a->uid < b->uid)) {
			ulist_add(&ch->expunged, &ch->n_expunged, a->uid);
			a = recset_get(old, ++i, &abuf);
		} else if (i == na || b->uid < a->uid) {
			ulist_add(&ch->added, &ch->n_added, b->uid);
			b = recset_get(cur, ++j, &bbuf);
		} else {
			if (a->modseq != b->modseq)
				ulist_add(&ch->changed, &ch->n_changed, a->uid);
			a = recset_get(old, ++i, &abuf);
			b = recset_get(cur, ++j, &bbuf);
		}
	}
}

static bool same_file(int dfd, const char *name, dev_t dev, ino_t ino, bool have)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return !have && errno == ENOENT;
	return have && st.st_dev == dev && st.st_ino == ino;
}

/* Keep what a holder of the old state can use: expunged UIDs it could know, added UIDs
 * still present, changed UIDs it knew and still present. */
static void changes_final(struct index *ix, struct index_changes *c, uint32_t old_next)
{
	size_t k = 0;
	for (size_t i = 0; i < c->n_expunged; i++)
		if (c->expunged[i] < old_next)
			c->expunged[k++] = c->expunged[i];
	c->n_expunged = k;
	k = 0;
	for (size_t i = 0; i < c->n_added; i++)
		if (index_find(ix, c->added[i], NULL) != NULL)
			c->added[k++] = c->added[i];
	c->n_added = k;
	k = 0;
	for (size_t i = 0; i < c->n_changed; i++)
		if (c->changed[i] < old_next && index_find(ix, c->changed[i], NULL) != NULL)
			c->changed[k++] = c->changed[i];
	c->n_changed = k;
	ulist_norm(c->added, &c->n_added);
	ulist_norm(c->expunged, &c->n_expunged);
	ulist_norm(c->changed, &c->n_changed);
}

static int refresh(struct index *ix, struct index_changes *ch, const char **error_r)
{
	struct index_changes local = { 0 };
	uint32_t old_next = ix->hdr.uidnext;
	char logname[96];
	int ret = 0;

	if (ix->dfd == -1)
		return 0;
	if (util_snprintf(logname, sizeof(logname), "%s.log", ix->name) < 0) {
		*error_r = "index name too long";
		return -1;
	}
	if (ix->bad || ix->remap ||
	    !same_file(ix->dfd, ix->name, ix->snap_dev, ix->snap_ino, ix->have_snap) ||
	    !same_file(ix->dfd, logname, ix->log_dev, ix->log_ino, ix->have_log)) {
		/* replaced (by another process, or by our own compaction: the mapping of the
		 * old snapshot was kept until now): read all again and compare */
		struct recset old = ix->rs;
		unsigned old_nkw = ix->nkw;
		memset(&ix->rs, 0, sizeof(ix->rs));
		ret = load(ix, error_r);
		diff(&old, &ix->rs, &local);
		local.new_keywords = ix->nkw != old_nkw;
		recset_free(&old);
	} else if (ix->have_log && ix->log_gen == ix->gen) {
		unsigned char *buf;
		size_t len, valid;
		if (read_file(ix->log_fd, &buf, &len, ix->log_off) == -1) {
			*error_r = ixerr(ix, "read log", errno);
			return -1;
		}
		ix->stats.log_bytes_read += len;
		ix->ch = &local;
		if (index_parse_log(ix, buf, len, &valid) == -1) {
			ix->ch = NULL;
			free(buf);
			ix->bad = true;
			index_changes_free(&local);
			return refresh(ix, ch, error_r);
		}
		ix->ch = NULL;
		ix->log_off += valid;
		free(buf);
		sweep(ix);
	}
	if (ch != NULL) {
		changes_final(ix, &local, old_next);
		*ch = local;
	} else {
		index_changes_free(&local);
	}
	return ret;
}

/* ---- public ---- */

int index_open(int dfd, const char *name, struct index **r, const char **error_r)
{
	struct index *ix = index_new_memory();
	ix->dfd = dfd;
	if (util_snprintf(ix->name, sizeof(ix->name), "%s", name) < 0 ||
	    strchr(name, '/') != NULL || name[0] == '\0') {
		*error_r = "bad index name";
		ix->dfd = -1;
		index_close(&ix);
		return -1;
	}
	if (load(ix, error_r) == -1) {
		index_close(&ix);
		return -1;
	}
	*r = ix;
	return 0;
}

struct index *index_new_memory(void)
{
	struct index *ix = xcalloc(1, sizeof(*ix));
	ix->dfd = -1;
	ix->log_fd = -1;
	ix->lock_fd = -1;
	ix->fmt = 3;
	ix->ring = xcalloc(1, sizeof(*ix->ring));
	ix->stats_out = xcalloc(1, sizeof(*ix->stats_out));
	memcpy(ix->name, "memory", 7);
	return ix;
}

void index_close(struct index **ixp)
{
	struct index *ix = *ixp;
	if (ix == NULL)
		return;
	index_unlock(ix);
	recs_clear(ix);
	free(ix->ring);
	free(ix->stats_out);
	free(ix->cache);
	free(ix->exp);
	free(ix->tx);
	close_log(ix);
	if (ix->lock_fd != -1)
		close(ix->lock_fd);
	free(ix);
	*ixp = NULL;
}

int index_refresh(struct index *ix, struct index_changes *ch, const char **error_r)
{
	if (ch != NULL)
		memset(ch, 0, sizeof(*ch));
	return refresh(ix, ch, error_r);
}

void index_sweep(struct index *ix)
{
	sweep(ix);
}

size_t index_count(const struct index *ix)
{
	return recset_count(&ix->rs);
}

const struct index_rec *index_get(const struct index *ix, size_t i)
{
	const struct index_rec *r = recset_get(&ix->rs, i, ring_slot(ix));
	return r != NULL && (r->flags & TOMB) == 0 ? r : NULL;
}

const struct index_rec *index_find(const struct index *ix, uint32_t uid, size_t *pos_r)
{
	size_t pos;
	const struct index_rec *r = recset_find(&ix->rs, uid, &pos, ring_slot(ix));
	if (r == NULL || (r->flags & TOMB) != 0)
		return NULL;
	if (pos_r != NULL)
		*pos_r = pos;
	return r;
}

const struct index_hdr *index_hdr(const struct index *ix)
{
	return &ix->hdr;
}

const struct index_expunge *index_expunges(const struct index *ix, size_t *n_r,
					   uint64_t *floor_r)
{
	*n_r = ix->nexp;
	*floor_r = ix->exp_floor;
	return ix->exp;
}

const struct index_stats *index_stats(const struct index *ix)
{
	struct index_stats *st = ix->stats_out;
	*st = ix->stats;
	st->heap_bytes = sizeof(*ix) + sizeof(*ix->ring) + sizeof(*st) +
		recset_heap_bytes(&ix->rs) + ix->cache_alloc * sizeof(*ix->cache) +
		ix->cache_bytes + ix->ncache + ix->tx_alloc + ix->exp_alloc * sizeof(*ix->exp);
	st->mapped_bytes = ix->rs.img != NULL && ix->rs.mapped ? ix->rs.img_len : 0;
	return st;
}

int index_lock(struct index *ix, struct index_changes *ch, const char **error_r)
{
	if (ch != NULL)
		memset(ch, 0, sizeof(*ch));
	if (ix->locked) {
		*error_r = "index already locked";
		return -1;
	}
	if (ix->dfd != -1) {
		if (ix->lock_fd == -1) {
			ix->lock_fd = open_in(ix, ".lock", O_RDWR | O_CREAT);
			if (ix->lock_fd == -1) {
				*error_r = ixerr(ix, "open lock", errno);
				return -1;
			}
		}
		uint64_t start = util_now_ms();
		for (;;) {
			struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
			if (fcntl(ix->lock_fd, F_SETLK, &fl) == 0)
				break;
			if (errno == EINTR)
				continue;
			if ((errno != EAGAIN && errno != EACCES) ||
			    util_now_ms() - start >= INDEX_LOCK_TIMEOUT_MS) {
				*error_r = errno == EAGAIN || errno == EACCES ?
					"index is locked by another process" :
					ixerr(ix, "lock", errno);
				return -1;
			}
			util_sleep_ms(INDEX_LOCK_POLL_MS);
		}
	}
	ix->locked = true;
	ix->tx_len = 0;
	ix->durable = false;
	uint32_t old_next = ix->hdr.uidnext;
	if (refresh(ix, ch, error_r) == -1) {
		index_unlock(ix);
		return -1;
	}
	ix->collect = ch;
	ix->collect_next = old_next;
	/* new or rebuilt; or so near the end of the UIDs that a full folder of new mail
	 * could not be numbered: start over under a new UIDVALIDITY (RFC 9051 2.3.1.1) */
	if (ix->hdr.uidnext == 0 ||
	    ix->hdr.uidnext > UINT32_MAX - (uint32_t)MSTORE_MAX_MESSAGES ||
	    ix->hdr.highestmodseq > UINT64_MAX / 2) {
		uint32_t v = (uint32_t)time(NULL);
		if (ix->hdr.uidnext != 0)
			log_bad(ix, "UIDs used up, new UIDVALIDITY");
		if (v == ix->hdr.uidvalidity || v == 0)
			v = ix->hdr.uidvalidity + 1 != 0 ? ix->hdr.uidvalidity + 1 : 1;
		index_reset(ix, v);
	}
	return 0;
}

static unsigned char *tx_grow(struct index *ix, size_t n)
{
	if (ix->tx_alloc - ix->tx_len < n) {
		size_t want = ix->tx_alloc == 0 ? 4096 : ix->tx_alloc;
		while (want - ix->tx_len < n)
			want *= 2; /* BOUNDS: n <= REC_FIXED + INDEX_KEY_MAX + 1 */
		ix->tx = xrealloc(ix->tx, want);
		ix->tx_alloc = want;
	}
	unsigned char *p = ix->tx + ix->tx_len;
	ix->tx_len += n;
	ix->dirty = true;
	ix->durable = true; /* index_cache_set and the commit's header undo this */
	return p;
}

/* keep: the MODSEQ to keep (an update that leaves flags and keywords alone), or 0: the
 * next one. */
static int put_rec(struct index *ix, struct index_rec *rec, uint64_t keep,
		   const char **error_r)
{
	if (!ix->locked) {
		*error_r = "index not locked";
		return -1;
	}
	if (rec->key_len > INDEX_KEY_MAX || ix->hdr.highestmodseq == UINT64_MAX) {
		*error_r = "index record too large";
		return -1;
	}
	rec->flags &= INDEX_FLAG_MASK;
	rec->modseq = keep != 0 ? keep : ix->hdr.highestmodseq + 1;
	/* encoded before it is applied: rec->key may point to the key being replaced */
	size_t len = 1 + REC_FIXED + rec->key_len;
	unsigned char *p = tx_grow(ix, len);
	p[0] = 'P';
	rec_encode(p + 1, rec);
	ix->ch = ix->collect;
	int r = apply_put(ix, rec);
	ix->ch = NULL;
	if (r == -1) {
		ix->tx_len -= len;
		*error_r = "index: no such record";
		return -1;
	}
	rec->key = NULL; /* it may be freed: the caller must not use it */
	if (keep == 0)
		ix->hdr.highestmodseq++;
	return 0;
}

int index_append(struct index *ix, struct index_rec *rec, const char **error_r)
{
	if (ix->hdr.uidnext == UINT32_MAX || index_count(ix) >= MSTORE_MAX_MESSAGES) {
		*error_r = "folder is full (no UID left)";
		return -1;
	}
	rec->uid = ix->hdr.uidnext;
	if (put_rec(ix, rec, 0, error_r) == -1)
		return -1;
	ix->hdr.uidnext++;
	return 0;
}

int index_update(struct index *ix, struct index_rec *rec, const char **error_r)
{
	const struct index_rec *old = index_find(ix, rec->uid, NULL);
	if (old == NULL) {
		*error_r = "index: no such message";
		return -1;
	}
	/* RFC 7162 3.1: the MODSEQ moves with the flags, not with the backend's data (an
	 * mbox rewrite moves every later message; Maildir renames a file) */
	bool same = old->flags == (rec->flags & INDEX_FLAG_MASK) &&
		    old->keywords == rec->keywords;
	return put_rec(ix, rec, same ? old->modseq : 0, error_r);
}

int index_update_quiet(struct index *ix, struct index_rec *rec, const char **error_r)
{
	const struct index_rec *cur = index_find(ix, rec->uid, NULL);
	if (cur == NULL) {
		*error_r = "index: no such message";
		return -1;
	}
	return put_rec(ix, rec, cur->modseq, error_r);
}

int index_expunge(struct index *ix, uint32_t uid, const char **error_r)
{
	if (!ix->locked) {
		*error_r = "index not locked";
		return -1;
	}
	uint64_t modseq = ix->hdr.highestmodseq + 1;
	ix->ch = ix->collect;
	(void)apply_expunge(ix, uid, modseq); /* above every MODSEQ so far: in order */
	ix->ch = NULL;
	ix->hdr.highestmodseq = modseq;
	unsigned char *p = tx_grow(ix, 13);
	p[0] = 'X';
	put32(p + 1, uid);
	put64(p + 5, modseq);
	return 0;
}

int index_cache_set(struct index *ix, uint32_t uid, uint32_t field, const void *data,
		    size_t len, const char **error_r)
{
	if (!ix->locked) {
		*error_r = "index not locked";
		return -1;
	}
	if (index_find(ix, uid, NULL) == NULL) {
		*error_r = "index: no such message";
		return -1;
	}
	if (len > INDEX_CACHE_ENTRY_MAX ||
	    apply_cache(ix, uid, field, data, (uint32_t)len) == -1) {
		*error_r = "index: cache entry refused";
		return -1;
	}
	bool durable = ix->durable;
	unsigned char *p = tx_grow(ix, 13 + len);
	ix->durable = durable;
	p[0] = 'C';
	put32(p + 1, uid);
	put32(p + 5, field);
	put32(p + 9, (uint32_t)len);
	memcpy(p + 13, data, len);
	return 0;
}

const void *index_cache_get(const struct index *ix, uint32_t uid, uint32_t field,
			    size_t *len_r)
{
	bool found;
	size_t pos = cache_pos(ix, uid, field, &found);
	if (found) {
		*len_r = ix->cache[pos].len;
		return ix->cache[pos].data;
	}
	uint32_t len;
	const unsigned char *d;
	if (ix->ncdir == 0 || index_find(ix, uid, NULL) == NULL ||
	    (d = cache_base(ix, uid, field, &len)) == NULL)
		return NULL;
	*len_r = len;
	return d;
}

int index_keyword_find(const struct index *ix, const char *name, size_t len)
{
	return kw_find(ix, name, len);
}

int index_keyword_add(struct index *ix, const char *name, size_t len, unsigned *bit_r,
		      const char **error_r)
{
	if (!ix->locked) {
		*error_r = "index not locked";
		return -1;
	}
	int bit = kw_find(ix, name, len);
	if (bit != -1) {
		*bit_r = (unsigned)bit;
		return 0;
	}
	if (!index_keyword_valid(name, len)) {
		*error_r = "invalid keyword";
		return -1;
	}
	if (ix->nkw >= INDEX_MAX_KEYWORDS) {
		*error_r = INDEX_KEYWORDS_FULL;
		return -1;
	}
	unsigned char *p = tx_grow(ix, 2 + len);
	p[0] = 'K';
	p[1] = (unsigned char)len;
	memcpy(p + 2, name, len);
	ix->ch = ix->collect;
	(void)apply_keyword(ix, name, len); /* checked above */
	ix->ch = NULL;
	*bit_r = ix->nkw - 1;
	return 0;
}

const char *index_keyword_name(const struct index *ix, unsigned bit)
{
	return bit < ix->nkw ? ix->kw[bit] : NULL;
}

unsigned index_keyword_count(const struct index *ix)
{
	return ix->nkw;
}

void index_set_stamp(struct index *ix, const uint64_t stamp[INDEX_STAMP_WORDS])
{
	memcpy(ix->hdr.stamp, stamp, sizeof(ix->hdr.stamp));
	if (ix->locked)
		ix->dirty = ix->durable = true; /* the header goes with the next commit */
}

void index_reset(struct index *ix, uint32_t uidvalidity)
{
	recs_clear(ix);
	memset(&ix->hdr, 0, sizeof(ix->hdr));
	ix->hdr.uidvalidity = uidvalidity;
	ix->hdr.uidnext = 1;
	ix->hdr.highestmodseq = 1;
	exp_clear(ix, 0);
	ix->bad = false;
	if (ix->locked) {
		unsigned char *p = tx_grow(ix, 1);
		p[0] = 'R';
		ix->need_snap = true;
	}
}

static void hook(int step)
{
	if (index_test_hook != NULL)
		index_test_hook(step);
}

static int fsync_dir(struct index *ix)
{
	return fsync(ix->dfd);
}

/* A file written under a temporary name (then tmp_finish() renames it to NAME+suffix),
 * through a buffer, with the CRC-32 of what went in. */
struct wstream {
	int fd;
	bool failed;
	uint32_t crc;
	size_t len;
	uint64_t total;
	char tmp[96], dst[96];
	unsigned char buf[65536];
};

static struct wstream *tmp_create(struct index *ix, const char *suffix, const char **error_r)
{
	struct wstream *w = xcalloc(1, sizeof(*w));
	w->crc = 0xffffffffu;
	if (util_snprintf(w->tmp, sizeof(w->tmp), "%s%s.tmp", ix->name, suffix) < 0 ||
	    util_snprintf(w->dst, sizeof(w->dst), "%s%s", ix->name, suffix) < 0) {
		*error_r = "index name too long";
		free(w);
		return NULL;
	}
	(void)unlinkat(ix->dfd, w->tmp, 0); /* left by a writer that died: we hold the lock */
	w->fd = openat(ix->dfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       0600);
	if (w->fd == -1) {
		*error_r = ixerr(ix, "create", errno);
		free(w);
		return NULL;
	}
	return w;
}

static void ws_put(struct wstream *w, const void *data, size_t n)
{
	const unsigned char *p = data;
	w->crc = crc32_update(w->crc, p, n);
	w->total += n;
	while (n > 0 && !w->failed) {
		size_t k = sizeof(w->buf) - w->len < n ? sizeof(w->buf) - w->len : n;
		memcpy(w->buf + w->len, p, k); /* BOUNDS: k <= room left */
		w->len += k;
		p += k;
		n -= k;
		if (w->len == sizeof(w->buf)) {
			if (util_write_all(w->fd, w->buf, w->len) == -1)
				w->failed = true;
			w->len = 0;
		}
	}
}

/* Flush, fsync, rename over NAME+suffix; w is freed.  0 or -1. */
static int tmp_finish(struct index *ix, struct wstream *w, const char **error_r)
{
	int ret = -1;
	if (w->failed || util_write_all(w->fd, w->buf, w->len) == -1 || fsync(w->fd) == -1) {
		*error_r = ixerr(ix, "write", errno ? errno : EIO);
		close(w->fd);
		goto out;
	}
	close(w->fd);
	hook(10);
	if (renameat(ix->dfd, w->tmp, ix->dfd, w->dst) == -1) {
		*error_r = ixerr(ix, "rename", errno);
		goto out;
	}
	ret = 0;
out:
	if (ret == -1)
		(void)unlinkat(ix->dfd, w->tmp, 0);
	free(w);
	return ret;
}

static int new_log(struct index *ix, const char **error_r)
{
	unsigned char h[LOG_HDR_LEN];
	memcpy(h, LOG_MAGIC, MAGIC_LEN);
	put64(h + 8, ix->gen);
	struct wstream *w = tmp_create(ix, ".log", error_r);
	if (w == NULL)
		return -1;
	ws_put(w, h, sizeof(h));
	if (tmp_finish(ix, w, error_r) == -1)
		return -1;
	close_log(ix);
	struct stat st;
	ix->log_fd = open_in(ix, ".log", O_RDWR);
	if (ix->log_fd == -1 || fstat(ix->log_fd, &st) == -1) {
		*error_r = ixerr(ix, "open log", errno);
		close_log(ix);
		return -1;
	}
	ix->have_log = true;
	ix->log_dev = st.st_dev;
	ix->log_ino = st.st_ino;
	ix->log_gen = ix->gen;
	ix->log_off = LOG_HDR_LEN;
	return 0;
}

struct cache_merge {
	size_t i, j; /* next snapshot entry, next newer entry */
};

static void cache_merge_start(const struct index *ix, struct cache_merge *m)
{
	(void)ix;
	m->i = m->j = 0;
}

/* The next entry of the cache as it is now, in (uid, field) order; false at the end. */
static bool cache_merge_next(const struct index *ix, struct cache_merge *m,
			     struct cache_ent *out)
{
	for (;;) {
		const unsigned char *e = m->i < ix->ncdir ? ix->cdir + m->i * CDIR_ENT : NULL;
		const struct cache_ent *c = m->j < ix->ncache ? &ix->cache[m->j] : NULL;
		if (e == NULL && c == NULL)
			return false;
		uint32_t eu = e != NULL ? get32(e) : 0, ef = e != NULL ? get32(e + 4) : 0;
		if (e == NULL || (c != NULL && (c->uid < eu || (c->uid == eu && c->field <= ef)))) {
			if (e != NULL && c->uid == eu && c->field == ef)
				m->i++; /* replaced */
			*out = *c;
			m->j++;
			return true;
		}
		m->i++;
		uint32_t len;
		const unsigned char *d = cache_base_data(ix, e, &len);
		if (d == NULL || index_find(ix, eu, NULL) == NULL)
			continue; /* its message is gone */
		*out = (struct cache_ent){ eu, ef, len, (unsigned char *)(uintptr_t)d };
		return true;
	}
}

/* Fold everything into a new snapshot (generation + 1), then start a new log.  Written
 * through a small buffer, record by record: memory does not grow with the folder.  Our
 * records stay where they are (the old snapshot's mapping and the overlay) until the next
 * refresh maps the new one. */
static int compact(struct index *ix, const char **error_r)
{
	struct index_rec rb;
	const struct index_rec *r;
	size_t n = recset_count(&ix->rs), count = 0;
	uint64_t keys_len = 0;
	unsigned char b[REC_FIXED + 8 > CDIR_ENT ? REC_FIXED + 8 : CDIR_ENT];
	_Static_assert(REC_FIXED + 8 >= EXP_ENT, "b holds an expunge entry");
	for (size_t i = 0; i < n; i++) {
		r = recset_get(&ix->rs, i, &rb);
		if ((r->flags & TOMB) == 0) {
			keys_len += (uint64_t)r->key_len + 1;
			count++;
		}
	}
	struct wstream *w = tmp_create(ix, "", error_r);
	if (w == NULL)
		return -1;
	unsigned char h[SNAP_HDR_LEN];
	memcpy(h, SNAP_MAGIC, MAGIC_LEN);
	put64(h + 8, ix->gen + 1);
	hdr_encode(h + 16, &ix->hdr);
	put64(h + SNAP_HDR_LEN - 8, count);
	ws_put(w, h, SNAP_HDR_LEN);
	put32(b, ix->nkw);
	ws_put(w, b, 4);
	for (unsigned i = 0; i < ix->nkw; i++) {
		b[0] = (unsigned char)strlen(ix->kw[i]);
		ws_put(w, b, 1);
		ws_put(w, ix->kw[i], b[0]);
	}
	put64(b, ix->exp_floor);
	put32(b + 8, (uint32_t)ix->nexp);
	ws_put(w, b, 12);
	for (size_t i = 0; i < ix->nexp; i++) {
		put32(b, ix->exp[i].uid);
		put64(b + 4, ix->exp[i].modseq);
		ws_put(w, b, EXP_ENT);
	}
	put64(b, keys_len);
	ws_put(w, b, 8);
	uint64_t koff = 0;
	for (size_t i = 0; i < n; i++) {
		r = recset_get(&ix->rs, i, &rb);
		if ((r->flags & TOMB) != 0)
			continue;
		struct index_rec f = *r;
		f.key_len = 0; /* the fixed part only */
		rec_encode(b, &f);
		put32(b + 12, r->key_len);
		put64(b + REC_FIXED, koff);
		ws_put(w, b, RECSET_REC_SIZE);
		koff += (uint64_t)r->key_len + 1;
	}
	for (size_t i = 0; i < n; i++) {
		r = recset_get(&ix->rs, i, &rb);
		if ((r->flags & TOMB) != 0)
			continue;
		ws_put(w, r->key, r->key_len);
		ws_put(w, "", 1);
	}
	/* the cache: the snapshot's entries of messages still there that no newer entry
	 * replaces, merged with the newer ones; directory, then data */
	struct cache_merge cm;
	struct cache_ent ce;
	uint64_t nc = 0, clen = 0;
	for (cache_merge_start(ix, &cm); cache_merge_next(ix, &cm, &ce);) {
		nc++;
		clen += ce.len;
	}
	put64(b, nc);
	ws_put(w, b, 8);
	uint64_t coff = 0;
	for (cache_merge_start(ix, &cm); cache_merge_next(ix, &cm, &ce);) {
		put32(b, ce.uid);
		put32(b + 4, ce.field);
		put32(b + 8, ce.len);
		put64(b + 12, coff);
		ws_put(w, b, CDIR_ENT);
		coff += ce.len;
	}
	put64(b, clen);
	ws_put(w, b, 8);
	for (cache_merge_start(ix, &cm); cache_merge_next(ix, &cm, &ce);)
		ws_put(w, ce.data, ce.len);
	put32(b, w->crc ^ 0xffffffffu);
	ws_put(w, b, 4);
	uint64_t len = w->total;
	if (tmp_finish(ix, w, error_r) == -1)
		return -1;
	hook(11);
	struct stat st;
	ix->gen++;
	ix->remap = true;
	if (fstatat(ix->dfd, ix->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		ix->have_snap = true;
		ix->snap_dev = st.st_dev;
		ix->snap_ino = st.st_ino;
		ix->snap_size = len;
	}
	ix->stats.compactions++;
	ix->fmt = 3;
	if (new_log(ix, error_r) == -1)
		return -1;
	(void)fsync_dir(ix);
	return 0;
}

int index_commit(struct index *ix, const char **error_r)
{
	if (!ix->locked) {
		*error_r = "index not locked";
		return -1;
	}
	sweep(ix);
	if (!ix->dirty)
		return 0; /* nothing changed */
	bool durable = ix->durable;
	unsigned char *p = tx_grow(ix, OP_HDR_LEN);
	ix->durable = durable;
	p[0] = 'H';
	hdr_encode(p + 1, &ix->hdr);
	int ret = -1;
	if (ix->dfd == -1) {
		ret = 0;
		goto out;
	}
	if (!ix->have_snap || ix->need_snap || ix->fmt == 2) {
		/* the first commit writes a snapshot; so does the first after format 2 */
		ret = compact(ix, error_r);
		if (ret == 0)
			ix->need_snap = false;
		goto out;
	}
	if ((!ix->have_log || ix->log_gen != ix->gen) && new_log(ix, error_r) == -1)
		goto out;
	/* a torn entry left by a writer that died is cut before we append */
	if (ftruncate(ix->log_fd, (off_t)ix->log_off) == -1) {
		*error_r = ixerr(ix, "truncate log", errno);
		goto out;
	}
	hook(1);
	size_t elen = ix->tx_len;
	unsigned char h[8];
	put32(h, (uint32_t)elen);
	put32(h + 4, crc32_buf(ix->tx, elen));
	if (pwrite(ix->log_fd, h, 8, (off_t)ix->log_off) != 8) {
		*error_r = ixerr(ix, "write log", errno ? errno : EIO);
		goto out;
	}
	hook(2);
	size_t done = 0;
	while (done < elen) {
		size_t n = elen - done > 65536 ? 65536 : elen - done;
		ssize_t w = pwrite(ix->log_fd, ix->tx + done, n, (off_t)(ix->log_off + 8 + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*error_r = ixerr(ix, "write log", w < 0 ? errno : EIO);
			goto out;
		}
		done += (size_t)w;
		hook(3);
	}
	/* A transaction of cache entries only is not synced: a crash may lose it (a cache:
	 * the entries are computed again) or tear it (its CRC fails: the tail is cut at the
	 * next commit, and the cut cannot reach an earlier transaction, which was synced).
	 * The next synced transaction's fdatasync covers its bytes too, so whatever
	 * follows it on disk is never there without it. */
	if (ix->durable) {
		if (fdatasync(ix->log_fd) == -1) {
			*error_r = ixerr(ix, "fdatasync log", errno);
			goto out;
		}
		ix->stats.log_syncs++;
	} else {
		ix->stats.log_unsynced++;
	}
	hook(4);
	ix->log_off += 8 + elen;
	ret = 0;
	if (ix->log_off > INDEX_LOG_COMPACT && ix->log_off > ix->snap_size / 4 &&
	    compact(ix, error_r) == -1)
		log_bad(ix, *error_r);
out:
	if (ret == -1) {
		/* what we applied in memory is not on disk: read the disk state again */
		ix->bad = true;
	}
	free(ix->tx);
	ix->tx = NULL;
	ix->tx_len = ix->tx_alloc = 0;
	ix->dirty = ix->durable = false;
	return ret;
}

void index_unlock(struct index *ix)
{
	if (!ix->locked)
		return;
	if (ix->dirty) { /* uncommitted changes are dropped */
		free(ix->tx);
		ix->tx = NULL;
		ix->tx_len = ix->tx_alloc = 0;
		ix->dirty = false;
		if (ix->dfd != -1)
			ix->bad = true;
	}
	if (ix->collect != NULL) {
		if (ix->bad) /* what we did is not on disk: nobody saw it */
			index_changes_free(ix->collect);
		else
			changes_final(ix, ix->collect, ix->collect_next);
		ix->collect = NULL;
	}
	if (ix->lock_fd != -1) {
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
		(void)fcntl(ix->lock_fd, F_SETLK, &fl);
	}
	ix->locked = false;
}
