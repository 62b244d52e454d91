/* The index's records in memory: a snapshot read in place plus the log's overlay
 * (recset.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "base/plimits.h"
#include "base/util.h"
#include "index/recset.h"

/* Pages of a mapped image checked, then let go, at a time. */
#define RELEASE_CHUNK (1024 * 1024)

static const char empty_key[1] = "";

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

void recset_release(const unsigned char *img, bool mapped, size_t from, size_t to)
{
	if (!mapped || to <= from)
		return;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t a = (from + page - 1) / page * page, b = to / page * page;
	if (b > a)
		(void)madvise((void *)(uintptr_t)(img + a), b - a, MADV_DONTNEED);
}

static uint32_t base_uid(const struct recset *rs, size_t b)
{
	return rd32(rs->base + b * RECSET_REC_SIZE); /* BOUNDS: b < nbase, checked at load */
}

/* Base record b into buf.  A key whose offset or NUL is not where it must be (the image
 * changed in place since it was checked) reads as empty: a backend drops such a record. */
static const struct index_rec *base_decode(const struct recset *rs, size_t b,
					   struct index_rec *buf)
{
	const unsigned char *p = rs->base + b * RECSET_REC_SIZE;
	buf->uid = rd32(p);
	buf->flags = rd32(p + 4) & INDEX_FLAG_MASK;
	buf->keywords = rd32(p + 8);
	buf->key_len = rd32(p + 12);
	buf->modseq = rd64(p + 16);
	buf->size = rd64(p + 24);
	buf->raw = rd64(p + 32);
	buf->date = (int64_t)rd64(p + 40);
	buf->off = rd64(p + 48);
	buf->aux = rd64(p + 56);
	uint64_t koff = rd64(p + 64);
	if (koff >= rs->keys_len || buf->key_len >= rs->keys_len - koff ||
	    rs->keys[koff + buf->key_len] != '\0') {
		buf->key = (char *)empty_key;
		buf->key_len = 0;
	} else {
		buf->key = (char *)(rs->keys + koff); /* read-only: the callers never write */
	}
	return buf;
}

int recset_load(struct recset *rs, unsigned char *img, size_t img_len, bool mapped,
		size_t base_off, size_t nbase, size_t keys_off, size_t keys_len)
{
	recset_free(rs);
	rs->img = img;
	rs->img_len = img_len;
	rs->mapped = mapped;
	rs->base = img + base_off;
	rs->nbase = nbase;
	rs->keys = img + keys_off;
	rs->keys_len = keys_len;
	if (nbase > MSTORE_MAX_MESSAGES || (nbase > 0 && keys_len == 0) ||
	    (keys_len > 0 && rs->keys[keys_len - 1] != '\0'))
		goto bad;
	uint32_t prev = 0;
	size_t done = base_off;
	for (size_t b = 0; b < nbase; b++) {
		const unsigned char *p = rs->base + b * RECSET_REC_SIZE;
		uint32_t uid = rd32(p), key_len = rd32(p + 12);
		uint64_t koff = rd64(p + 64);
		if (uid <= prev || (rd32(p + 4) & ~INDEX_FLAG_MASK) != 0 ||
		    key_len > INDEX_KEY_MAX || koff >= keys_len || key_len >= keys_len - koff)
			goto bad;
		prev = uid;
		size_t at = base_off + (b + 1) * RECSET_REC_SIZE;
		if (at - done >= RELEASE_CHUNK) {
			recset_release(img, mapped, done, at);
			done = at;
		}
	}
	recset_release(img, mapped, done, base_off + nbase * RECSET_REC_SIZE);
	rs->base_max = prev;
	return 0;
bad:
	recset_free(rs);
	return -1;
}

void recset_free(struct recset *rs)
{
	if (rs->img != NULL) {
		if (rs->mapped)
			(void)munmap(rs->img, rs->img_len);
		else
			free(rs->img);
	}
	for (size_t i = 0; i < rs->nchg; i++)
		free(rs->chg[i].rec.key);
	for (size_t i = 0; i < rs->nadd; i++)
		free(rs->add[i].key);
	free(rs->chg);
	free(rs->hash);
	free(rs->dead);
	free(rs->add);
	memset(rs, 0, sizeof(*rs));
}

size_t recset_count(const struct recset *rs)
{
	return rs->nbase - rs->ndead + rs->nadd;
}

uint32_t recset_max_uid(const struct recset *rs)
{
	return rs->nadd > 0 ? rs->add[rs->nadd - 1].uid : rs->base_max;
}

/* ---- the overlay of changed base records: a hash table by UID ---- */

static size_t hash_slot(uint32_t uid, size_t cap)
{
	return (size_t)(uid * 2654435761u) & (cap - 1);
}

static struct recset_chg *chg_find(const struct recset *rs, uint32_t uid)
{
	if (rs->hash_cap == 0)
		return NULL;
	for (size_t s = hash_slot(uid, rs->hash_cap);; s = (s + 1) & (rs->hash_cap - 1)) {
		uint32_t v = rs->hash[s];
		if (v == 0)
			return NULL;
		if (rs->chg[v - 1].rec.uid == uid)
			return &rs->chg[v - 1];
	}
}

static void hash_rebuild(struct recset *rs, size_t cap)
{
	free(rs->hash);
	rs->hash = NULL;
	rs->hash_cap = 0;
	if (rs->nchg == 0)
		return;
	rs->hash = xcalloc(cap, sizeof(*rs->hash)); /* BOUNDS: cap > 2 * nchg */
	rs->hash_cap = cap;
	for (size_t i = 0; i < rs->nchg; i++) {
		size_t s = hash_slot(rs->chg[i].rec.uid, cap);
		while (rs->hash[s] != 0)
			s = (s + 1) & (cap - 1);
		rs->hash[s] = (uint32_t)(i + 1);
	}
}

static struct recset_chg *chg_insert(struct recset *rs, const struct index_rec *r,
				     uint32_t bpos)
{
	if (rs->nchg == rs->chg_alloc) {
		rs->chg_alloc = rs->chg_alloc == 0 ? 16 : rs->chg_alloc * 2;
		rs->chg = xrealloc(rs->chg, rs->chg_alloc * sizeof(*rs->chg)); /* BOUNDS: nbase */
	}
	struct recset_chg *c = &rs->chg[rs->nchg++];
	c->rec = *r;
	c->rec.key = NULL;
	c->bpos = bpos;
	if (2 * rs->nchg >= rs->hash_cap) {
		hash_rebuild(rs, rs->hash_cap == 0 ? 64 : rs->hash_cap * 2);
	} else {
		size_t s = hash_slot(r->uid, rs->hash_cap);
		while (rs->hash[s] != 0)
			s = (s + 1) & (rs->hash_cap - 1);
		rs->hash[s] = (uint32_t)rs->nchg;
	}
	return c;
}

/* ---- positions ---- */

/* Base position b of uid, or false. */
static bool base_find(const struct recset *rs, uint32_t uid, size_t *b_r)
{
	size_t lo = 0, hi = rs->nbase;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (base_uid(rs, mid) < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*b_r = lo;
	return lo < rs->nbase && base_uid(rs, lo) == uid;
}

/* Dead base positions below b. */
static size_t dead_below(const struct recset *rs, size_t b)
{
	size_t lo = 0, hi = rs->ndead;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rs->dead[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t add_find(const struct recset *rs, uint32_t uid, bool *found_r)
{
	size_t lo = 0, hi = rs->nadd;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rs->add[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found_r = lo < rs->nadd && rs->add[lo].uid == uid;
	return lo;
}

const struct index_rec *recset_get(const struct recset *rs, size_t i,
				   struct index_rec *buf)
{
	size_t live = rs->nbase - rs->ndead;
	if (i >= live)
		return i - live < rs->nadd ? &rs->add[i - live] : NULL;
	/* the i-th live base position is i + c, c = #{j : dead[j] - j <= i} */
	size_t lo = 0, hi = rs->ndead;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rs->dead[mid] - mid <= i)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t b = i + lo;
	const struct recset_chg *c = chg_find(rs, base_uid(rs, b));
	return c != NULL ? &c->rec : base_decode(rs, b, buf);
}

const struct index_rec *recset_find(const struct recset *rs, uint32_t uid, size_t *pos_r,
				    struct index_rec *buf)
{
	bool found;
	size_t live = rs->nbase - rs->ndead, b;
	if (uid == 0)
		return NULL;
	if (uid > rs->base_max) {
		size_t j = add_find(rs, uid, &found);
		if (!found)
			return NULL;
		*pos_r = live + j;
		return &rs->add[j];
	}
	if (!base_find(rs, uid, &b))
		return NULL;
	size_t d = dead_below(rs, b);
	if (d < rs->ndead && rs->dead[d] == b)
		return NULL;
	*pos_r = b - d;
	const struct recset_chg *c = chg_find(rs, uid);
	return c != NULL ? &c->rec : base_decode(rs, b, buf);
}

/* ---- changes ---- */

int recset_put(struct recset *rs, const struct index_rec *r, bool *added_r)
{
	bool found;
	size_t b;
	*added_r = false;
	if (r->uid > rs->base_max) {
		size_t j = add_find(rs, r->uid, &found);
		if (found) {
			struct index_rec *o = &rs->add[j];
			bool was_tomb = (o->flags & RECSET_TOMB) != 0;
			char *key = xstrndup(r->key != NULL ? r->key : "", r->key_len);
			free(o->key); /* after the copy: r->key may be o->key */
			*o = *r;
			o->key = key;
			return was_tomb ? -1 : 0; /* a tombstone living again: a bad file */
		}
		if (j != rs->nadd || recset_count(rs) >= MSTORE_MAX_MESSAGES)
			return -1; /* UIDs only grow */
		if (rs->nadd == rs->add_alloc) {
			rs->add_alloc = rs->add_alloc == 0 ? 16 : rs->add_alloc * 2;
			rs->add = xrealloc(rs->add, rs->add_alloc * sizeof(*rs->add)); /* BOUNDS: MAX */
		}
		struct index_rec *o = &rs->add[rs->nadd++];
		*o = *r;
		o->key = xstrndup(r->key != NULL ? r->key : "", r->key_len);
		*added_r = true;
		return 0;
	}
	if (!base_find(rs, r->uid, &b))
		return -1;
	size_t d = dead_below(rs, b);
	if (d < rs->ndead && rs->dead[d] == b)
		return -1;
	struct recset_chg *c = chg_find(rs, r->uid);
	char *key = xstrndup(r->key != NULL ? r->key : "", r->key_len);
	if (c == NULL)
		c = chg_insert(rs, r, (uint32_t)b);
	bool was_tomb = (c->rec.flags & RECSET_TOMB) != 0;
	free(c->rec.key); /* after the copy: r->key may be this key */
	c->rec = *r;
	c->rec.key = key;
	return was_tomb ? -1 : 0;
}

bool recset_expunge(struct recset *rs, uint32_t uid)
{
	struct index_rec buf;
	size_t pos;
	const struct index_rec *r = recset_find(rs, uid, &pos, &buf);
	if (r == NULL || (r->flags & RECSET_TOMB) != 0)
		return false;
	if (uid > rs->base_max) {
		struct index_rec *o = &rs->add[pos - (rs->nbase - rs->ndead)];
		free(o->key);
		o->key = NULL;
		o->flags |= RECSET_TOMB;
	} else {
		struct recset_chg *c = chg_find(rs, uid);
		if (c == NULL) {
			size_t b;
			(void)base_find(rs, uid, &b);
			c = chg_insert(rs, r, (uint32_t)b);
		}
		free(c->rec.key);
		c->rec.key = NULL;
		c->rec.flags |= RECSET_TOMB;
	}
	rs->tombs = true;
	return true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void recset_sweep(struct recset *rs)
{
	if (!rs->tombs)
		return;
	size_t k = 0;
	for (size_t i = 0; i < rs->nadd; i++)
		if ((rs->add[i].flags & RECSET_TOMB) == 0)
			rs->add[k++] = rs->add[i];
	rs->nadd = k;
	k = 0;
	size_t before = rs->nchg;
	for (size_t i = 0; i < rs->nchg; i++) {
		if ((rs->chg[i].rec.flags & RECSET_TOMB) == 0) {
			rs->chg[k++] = rs->chg[i];
			continue;
		}
		if (rs->ndead == rs->dead_alloc) {
			rs->dead_alloc = rs->dead_alloc == 0 ? 16 : rs->dead_alloc * 2;
			rs->dead = xrealloc(rs->dead, rs->dead_alloc * sizeof(*rs->dead)); /* BOUNDS: nbase */
		}
		rs->dead[rs->ndead++] = rs->chg[i].bpos;
	}
	rs->nchg = k;
	if (k != before) {
		qsort(rs->dead, rs->ndead, sizeof(*rs->dead), cmp_u32);
		size_t cap = 64;
		while (cap <= 2 * rs->nchg)
			cap *= 2;
		hash_rebuild(rs, cap);
	}
	rs->tombs = false;
}

size_t recset_heap_bytes(const struct recset *rs)
{
	size_t n = rs->chg_alloc * sizeof(*rs->chg) + rs->hash_cap * sizeof(*rs->hash) +
		rs->dead_alloc * sizeof(*rs->dead) + rs->add_alloc * sizeof(*rs->add);
	for (size_t i = 0; i < rs->nchg; i++)
		n += rs->chg[i].rec.key != NULL ? rs->chg[i].rec.key_len + 1 : 0;
	for (size_t i = 0; i < rs->nadd; i++)
		n += rs->add[i].key != NULL ? rs->add[i].key_len + 1 : 0;
	if (rs->img != NULL && !rs->mapped)
		n += rs->img_len;
	return n;
}
