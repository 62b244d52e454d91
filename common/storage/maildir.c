/* Maildir backend: list new/ and cur/, sizes (from ",W=", the size cache, or by reading),
 * UIDLs from base names, reads that follow renames, and deletion by unlink.
 *
 * Everything is done relative to one directory fd for the Maildir, opened once (the
 * Maildir itself may be a symlink an administrator made; new/, cur/, the messages and
 * the cache are opened O_NOFOLLOW, and every file we read is fstat'ed as regular).
 *
 * Size cache "postern-sizes" in the Maildir: a first line "postern-sizes 1", then one
 * line per message "BASE CRLFSIZE RAWSIZE MTIME".  An entry is used only if the file
 * still has that raw size and mtime.  It is untrusted input: bad lines are skipped, the
 * file is read up to MAILDIR_CACHE_MAX_FILE.  It is rewritten (temporary file, then
 * rename) only when an open computed a size or found entries for messages that are
 * gone; a failure to write it is not an error.  Messages with ",W=" are not cached. */
#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "mail/crlf.h"
#include "base/log.h"
#include "storage/maildir.h"
#include "base/util.h"

#define CACHE_NAME "postern-sizes"
#define CACHE_MAGIC "postern-sizes 1"

/* ---- names ---- */

int maildir_parse_name(const char *name, size_t len, struct maildir_name *r)
{
	memset(r, 0, sizeof(*r));
	if (len == 0 || name[0] == '.' || memchr(name, '/', len) != NULL ||
	    memchr(name, '\0', len) != NULL)
		return -1;
	const char *colon = memchr(name, ':', len);
	r->base_len = colon != NULL ? (size_t)(colon - name) : len;
	if (r->base_len == 0)
		return -1;

	/* ",S=n" / ",W=n" fields of the base; the first of each counts. */
	const char *p = name, *end = name + r->base_len;
	while ((p = memchr(p, ',', (size_t)(end - p))) != NULL) {
		p++;
		const char *f = p;
		const char *next = memchr(f, ',', (size_t)(end - f));
		size_t flen = next != NULL ? (size_t)(next - f) : (size_t)(end - f);
		if (flen >= 2 && f[1] == '=') {
			uint64_t v;
			if (f[0] == 'S' && !r->has_s &&
			    util_parse_uint(f + 2, flen - 2, UINT64_MAX, &v) == 0) {
				r->has_s = true;
				r->s = v;
			} else if (f[0] == 'W' && !r->has_w &&
				   util_parse_uint(f + 2, flen - 2, UINT64_MAX, &v) == 0) {
				r->has_w = true;
				r->w = v;
			}
		}
	}

	if (colon != NULL) {
		size_t ilen = len - r->base_len - 1; /* BOUNDS: colon is inside name */
		const char *info = colon + 1;
		if (ilen >= 2 && info[0] == '2' && info[1] == ',') {
			r->has_info = true;
			r->flags = info + 2;
			r->flags_len = ilen - 2;
			for (size_t i = 0; i < r->flags_len; i++) {
				switch (r->flags[i]) {
				case 'D': r->flagmask |= MAILDIR_FLAG_DRAFT; break;
				case 'F': r->flagmask |= MAILDIR_FLAG_FLAGGED; break;
				case 'P': r->flagmask |= MAILDIR_FLAG_PASSED; break;
				case 'R': r->flagmask |= MAILDIR_FLAG_REPLIED; break;
				case 'S': r->flagmask |= MAILDIR_FLAG_SEEN; break;
				case 'T': r->flagmask |= MAILDIR_FLAG_TRASHED; break;
				default: break;
				}
			}
		}
	}
	return 0;
}

static bool printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

void maildir_uid(const char *base, size_t len, char out[POP3_UIDL_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (len >= 1 && len <= POP3_UIDL_MAX && printable(base, len)) {
		memcpy(out, base, len);
		out[len] = '\0';
		return;
	}
	if (EVP_Digest(base, len, d, &dlen, EVP_sha256(), NULL) != 1 || dlen < 16)
		fatal("EVP_Digest failed");
	for (size_t i = 0; i < 16; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[32] = '\0';
}

/* Base names in delivery order: a leading run of digits (the time) compares as a
 * number, then the rest byte by byte. */
static int cmp_base(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t da = 0, db = 0;
	while (da < alen && a[da] >= '0' && a[da] <= '9')
		da++;
	while (db < blen && b[db] >= '0' && b[db] <= '9')
		db++;
	if (da != db && da > 0 && db > 0)
		return da < db ? -1 : 1;
	size_t n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* ---- listing ---- */

struct ent {
	char *name;        /* "new/..." or "cur/..." */
	size_t base_len;   /* base starts at name + 4 */
	bool in_cur;
	uint64_t raw;
	int64_t mtime;
	bool has_w;
	uint64_t w;
};

static int cmp_ent(const void *x, const void *y)
{
	const struct ent *a = x, *b = y;
	int c = cmp_base(a->name + 4, a->base_len, b->name + 4, b->base_len);
	if (c != 0)
		return c;
	return (int)b->in_cur - (int)a->in_cur; /* cur/ first among equal bases */
}

static void free_ents(struct ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

static char errbuf[256];

static const char *errf(const char *what, int err)
{
	if (util_snprintf(errbuf, sizeof(errbuf), "%s: %s", what, strerror(err)) < 0)
		return what;
	return errbuf;
}

/* Append the messages of one subdirectory. */
static int list_sub(int dfd, const char *sub, struct ent **e, size_t *n, size_t *alloc,
		    size_t cap, const char **error_r)
{
	int sfd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd == -1) {
		if (errno == ENOENT)
			return 0;
		*error_r = errf(sub, errno);
		return -1;
	}
	DIR *d = fdopendir(sfd);
	if (d == NULL) {
		*error_r = errf(sub, errno);
		close(sfd);
		return -1;
	}
	struct dirent *de = NULL;
	struct maildir_name mn;
	while (*n < cap && (errno = 0, de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (maildir_parse_name(de->d_name, len, &mn) == -1)
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		struct stat st;
		if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (*n == *alloc) {
			*alloc = *alloc == 0 ? 256 : *alloc * 2; /* BOUNDS: *n < cap */
			*e = xrealloc(*e, *alloc * sizeof(**e));
		}
		struct ent *x = &(*e)[(*n)++];
		x->name = xmalloc(len + 5); /* BOUNDS: "new/" + name + NUL */
		memcpy(x->name, sub, 3);
		x->name[3] = '/';
		memcpy(x->name + 4, de->d_name, len + 1);
		x->base_len = mn.base_len;
		x->in_cur = sub[0] == 'c';
		x->raw = (uint64_t)st.st_size;
		x->mtime = (int64_t)st.st_mtim.tv_sec;
		x->has_w = mn.has_w;
		x->w = mn.w;
	}
	int ret = 0;
	if (de == NULL && errno != 0) {
		*error_r = errf(sub, errno);
		ret = -1;
	}
	closedir(d);
	return ret;
}

/* new/ first, then cur/: a file that another client moves new/ -> cur/ while we list is
 * seen at least once.  Sorted by base name, duplicates dropped (cur/ kept). */
static int list_maildir(int dfd, size_t cap, struct ent **r, size_t *count_r,
			const char **error_r)
{
	struct ent *e = NULL;
	size_t n = 0, alloc = 0;

	if (list_sub(dfd, "new", &e, &n, &alloc, cap, error_r) == -1 ||
	    list_sub(dfd, "cur", &e, &n, &alloc, cap, error_r) == -1) {
		free_ents(e, n);
		return -1;
	}
	if (n > 0)
		qsort(e, n, sizeof(*e), cmp_ent);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && e[k - 1].base_len == e[i].base_len &&
		    memcmp(e[k - 1].name + 4, e[i].name + 4, e[i].base_len) == 0) {
			free(e[i].name);
			continue;
		}
		e[k++] = e[i];
	}
	*r = e;
	*count_r = k;
	return 0;
}

/* ---- the size cache ---- */

struct cache_ent {
	const char *base;
	size_t len;
	uint64_t crlf, raw, mtime;
	bool used;
};

struct cache {
	char *buf;
	struct cache_ent *e;
	size_t n;
};

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int cmp_cache(const void *x, const void *y)
{
	const struct cache_ent *a = x, *b = y;
	return cmp_bytes(a->base, a->len, b->base, b->len);
}

static bool cacheable(const char *base, size_t len)
{
	return len >= 1 && len <= MAILDIR_CACHE_NAME_MAX && printable(base, len);
}

/* One line "BASE CRLF RAW MTIME" (no LF). */
static bool cache_parse_line(const char *s, size_t len, struct cache_ent *r)
{
	const char *f[4];
	size_t flen[4];
	size_t k = 0;
	const char *p = s, *end = s + len;

	while (k < 4) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		f[k] = p;
		flen[k] = sp != NULL ? (size_t)(sp - p) : (size_t)(end - p);
		k++;
		if (sp == NULL)
			break;
		p = sp + 1;
	}
	if (k != 4 || f[3] + flen[3] != end || !cacheable(f[0], flen[0]))
		return false;
	if (util_parse_uint(f[1], flen[1], UINT64_MAX, &r->crlf) == -1 ||
	    util_parse_uint(f[2], flen[2], UINT64_MAX, &r->raw) == -1 ||
	    util_parse_uint(f[3], flen[3], UINT64_MAX, &r->mtime) == -1)
		return false;
	if (r->crlf < r->raw || r->crlf - r->raw > r->raw)
		return false;
	r->base = f[0];
	r->len = flen[0];
	r->used = false;
	return true;
}

static void cache_load(int dfd, size_t max_entries, struct cache *c)
{
	memset(c, 0, sizeof(*c));
	int fd = openat(dfd, CACHE_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
			O_NOCTTY);
	if (fd == -1)
		return;
	struct stat st;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		close(fd);
		return;
	}
	size_t size = (uint64_t)st.st_size > MAILDIR_CACHE_MAX_FILE ?
		MAILDIR_CACHE_MAX_FILE : (size_t)st.st_size;
	c->buf = xmalloc(size + 1); /* BOUNDS: size <= MAILDIR_CACHE_MAX_FILE */
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, c->buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);

	const char *p = c->buf, *end = c->buf + got;
	size_t alloc = 0;
	bool first = true;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL)
			break; /* a last line without LF may be cut: ignore it */
		size_t len = (size_t)(lf - p);
		if (first) {
			first = false;
			if (len != strlen(CACHE_MAGIC) || memcmp(p, CACHE_MAGIC, len) != 0)
				break;
		} else if (len <= MAILDIR_CACHE_LINE_MAX && c->n < max_entries) {
			struct cache_ent ce;
			if (cache_parse_line(p, len, &ce)) {
				if (c->n == alloc) {
					alloc = alloc == 0 ? 256 : alloc * 2; /* BOUNDS: n < max */
					c->e = xrealloc(c->e, alloc * sizeof(*c->e));
				}
				c->e[c->n++] = ce;
			}
		}
		p = lf + 1;
	}
	if (c->n > 0)
		qsort(c->e, c->n, sizeof(*c->e), cmp_cache);
}

/* The unused entry for base with this raw size and mtime (a hostile or stale cache may
 * hold several lines for one base). */
static struct cache_ent *cache_find(struct cache *c, const char *base, size_t len,
				    uint64_t raw, int64_t mtime)
{
	struct cache_ent key = { .base = base, .len = len };
	if (c->n == 0 || mtime < 0)
		return NULL;
	struct cache_ent *e = bsearch(&key, c->e, c->n, sizeof(*c->e), cmp_cache);
	if (e == NULL)
		return NULL;
	while (e > c->e && cmp_cache(e - 1, &key) == 0)
		e--;
	for (; e < c->e + c->n && cmp_cache(e, &key) == 0; e++)
		if (!e->used && e->raw == raw && e->mtime == (uint64_t)mtime)
			return e;
	return NULL;
}

static void cache_free(struct cache *c)
{
	free(c->buf);
	free(c->e);
	memset(c, 0, sizeof(*c));
}

/* ---- the mailbox ---- */

struct maildir {
	int dfd;                 /* -1: no Maildir */
	struct mstore_msg *msgs;
	size_t *base_len;        /* base of msgs[i] is msgs[i].name + 4 */
	size_t count;
	bool use_cache;
	bool committed;
	struct ent *idx;         /* fresh listing used to follow renames (lazy) */
	size_t idx_n;
	unsigned idx_builds;
};

void maildir_opts_default(struct maildir_opts *o)
{
	o->max_messages = MSTORE_MAX_MESSAGES;
	o->use_cache = true;
}

size_t maildir_count(const struct maildir *md)
{
	return md->count;
}

struct mstore_msg *maildir_msg(struct maildir *md, size_t i)
{
	return i < md->count ? &md->msgs[i] : NULL;
}

/* Open a message file for reading: no symlink, no FIFO, a regular file. */
static int open_msg_file(int dfd, const char *name, struct stat *st)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return -1;
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl != -1)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

/* Where is message i now?  Another client may have renamed it (flags, new/ -> cur/).
 * The listing used for that is made on the first need and made again when it turns out
 * to be older than the rename.  1 found (name updated), 0 gone, -1 error. */
static int relocate(struct maildir *md, size_t i, const char **error_r)
{
	struct mstore_msg *m = &md->msgs[i];
	size_t blen = md->base_len[i];

	for (int pass = 0; pass < 2; pass++) {
		bool fresh = false;
		if (md->idx == NULL || pass == 1) {
			if (md->idx_builds >= MAILDIR_RELIST_MAX) {
				*error_r = "message keeps being renamed by another client";
				return -1;
			}
			free_ents(md->idx, md->idx_n);
			md->idx = NULL;
			md->idx_n = 0;
			md->idx_builds++;
			if (list_maildir(md->dfd, SIZE_MAX, &md->idx, &md->idx_n, error_r) == -1)
				return -1;
			fresh = true;
		}
		struct ent *x = NULL;
		size_t lo = 0, hi = md->idx_n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = cmp_base(md->idx[mid].name + 4, md->idx[mid].base_len,
					 m->name + 4, blen);
			if (c == 0) {
				x = &md->idx[mid];
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (x == NULL) {
			if (fresh)
				return 0; /* not there after the failure: gone */
			continue;
		}
		if (strcmp(x->name, m->name) == 0)
			continue; /* the listing is older than the rename: list again */
		free(m->name);
		m->name = xstrdup(x->name);
		return 1;
	}
	return 0;
}

/* Size in CRLF form by reading the file.  0, or -1 with errno. */
static int compute_size(int dfd, const char *name, uint64_t *crlf_r, uint64_t *raw_r,
			int64_t *mtime_r)
{
	struct stat st;
	int fd = open_msg_file(dfd, name, &st);
	if (fd == -1)
		return -1;
	char *buf = xmalloc(IO_CHUNK);
	uint64_t crlf = 0, raw = 0;
	bool cr = false;
	int ret = 0;
	for (;;) {
		ssize_t n = read(fd, buf, IO_CHUNK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		crlf += crlf_size(buf, (size_t)n, &cr);
		raw += (uint64_t)n;
	}
	int saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	*crlf_r = crlf;
	*raw_r = raw;
	*mtime_r = (int64_t)st.st_mtim.tv_sec;
	return ret;
}

static void cache_write(struct maildir *md, const int64_t *mtimes)
{
	char tmp[64];
	if (util_snprintf(tmp, sizeof(tmp), CACHE_NAME ".%ld.tmp", (long)getpid()) < 0)
		return;
	int fd = openat(md->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			0600);
	if (fd == -1 && errno == EEXIST) {
		(void)unlinkat(md->dfd, tmp, 0); /* left by a crashed process with our pid */
		fd = openat(md->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
	}
	if (fd == -1) {
		log_debug("maildir: cannot write the size cache: %s", strerror(errno));
		return;
	}
	size_t cap = 65536, len = 0;
	char *out = xmalloc(cap);
	bool ok = true;
	len = strlen(CACHE_MAGIC "\n");
	memcpy(out, CACHE_MAGIC "\n", len);
	for (size_t i = 0; i < md->count && ok; i++) {
		const struct mstore_msg *m = &md->msgs[i];
		if (mtimes[i] < 0 || !cacheable(m->name + 4, md->base_len[i]))
			continue;
		char line[MAILDIR_CACHE_NAME_MAX + 80];
		int n = util_snprintf(line, sizeof(line), "%.*s %llu %llu %lld\n",
				      (int)md->base_len[i], m->name + 4,
				      (unsigned long long)m->size,
				      (unsigned long long)m->raw_len, (long long)mtimes[i]);
		if (n < 0)
			continue;
		if (cap - len < (size_t)n) {
			if (util_write_all(fd, out, len) == -1)
				ok = false;
			len = 0;
		}
		memcpy(out + len, line, (size_t)n); /* BOUNDS: n <= cap - len after flush */
		len += (size_t)n;
	}
	if (ok && util_write_all(fd, out, len) == -1)
		ok = false;
	free(out);
	if (close(fd) == -1)
		ok = false;
	if (!ok || renameat(md->dfd, tmp, md->dfd, CACHE_NAME) == -1) {
		log_debug("maildir: cannot write the size cache: %s", strerror(errno));
		(void)unlinkat(md->dfd, tmp, 0);
	}
}

/* Sizes of all messages: ",W=", then the cache, then reading the file.  Messages that
 * vanished (deleted by another client) or cannot be read are dropped from the list. */
static void fill_sizes(struct maildir *md, struct ent *e)
{
	struct cache c = { 0 };
	int64_t *mtimes = xmalloc(md->count * sizeof(*mtimes) + 1); /* BOUNDS: <= max */
	size_t computed = 0, hits = 0, k = 0;

	if (md->use_cache)
		cache_load(md->dfd, md->count, &c);
	for (size_t i = 0; i < md->count; i++) {
		struct mstore_msg *m = &md->msgs[k];
		size_t blen = e[i].base_len;
		*m = (struct mstore_msg){ .name = e[i].name, .raw_len = e[i].raw };
		md->base_len[k] = blen;
		e[i].name = NULL;
		mtimes[k] = -1;
		if (e[i].has_w && e[i].w >= e[i].raw && e[i].w - e[i].raw <= e[i].raw) {
			m->size = e[i].w;
		} else {
			struct cache_ent *ce = md->use_cache ?
				cache_find(&c, m->name + 4, blen, e[i].raw, e[i].mtime) : NULL;
			if (ce != NULL) {
				m->size = ce->crlf;
				ce->used = true;
				hits++;
				mtimes[k] = e[i].mtime;
			} else {
				uint64_t crlf, raw;
				int64_t mt;
				int r = compute_size(md->dfd, m->name, &crlf, &raw, &mt);
				const char *err;
				if (r == -1 && errno == ENOENT && relocate(md, k, &err) == 1)
					r = compute_size(md->dfd, m->name, &crlf, &raw, &mt);
				if (r == -1) {
					log_warn("maildir: message skipped, file=%s, error=%s",
						 m->name, strerror(errno));
					free(m->name);
					continue;
				}
				m->size = crlf;
				m->raw_len = raw;
				mtimes[k] = mt;
				if (cacheable(m->name + 4, blen))
					computed++; /* worth a cache line */
			}
		}
		maildir_uid(m->name + 4, blen, m->uid); /* name may have changed */
		k++;
	}
	md->count = k;
	if (md->use_cache && (computed > 0 || hits != c.n))
		cache_write(md, mtimes);
	free(mtimes);
	cache_free(&c);
}

int maildir_open(const char *path, const struct maildir_opts *o, struct maildir **r,
		 const char **error_r)
{
	struct maildir_opts def;
	if (o == NULL) {
		maildir_opts_default(&def);
		o = &def;
	}
	struct maildir *md = xcalloc(1, sizeof(*md));
	md->use_cache = o->use_cache;
	md->dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (md->dfd == -1) {
		if (errno != ENOENT) {
			*error_r = errf("cannot open the Maildir", errno);
			free(md);
			return -1;
		}
		*r = md;
		return 0;
	}
	struct ent *e;
	size_t n;
	/* A directory with more files than the limit: list at most twice the limit (new/
	 * and cur/ may hold the same message once during a rename), keep the first. */
	size_t cap = o->max_messages > SIZE_MAX / 2 ? SIZE_MAX : o->max_messages * 2;
	if (list_maildir(md->dfd, cap, &e, &n, error_r) == -1) {
		maildir_close(&md);
		return -1;
	}
	md->count = n < o->max_messages ? n : o->max_messages;
	md->msgs = xcalloc(md->count, sizeof(*md->msgs));
	md->base_len = xcalloc(md->count, sizeof(*md->base_len));
	fill_sizes(md, e);
	free_ents(e, n); /* names moved to msgs are NULL */
	*r = md;
	return 0;
}

int maildir_msg_open(struct maildir *md, size_t i, int *fd_r, uint64_t *len_r,
		     const char **error_r)
{
	struct stat st;

	if (i >= md->count || md->committed) {
		*error_r = "no such message";
		return -1;
	}
	int fd = open_msg_file(md->dfd, md->msgs[i].name, &st);
	if (fd == -1 && errno == ENOENT) {
		int r = relocate(md, i, error_r);
		if (r == -1)
			return -1;
		if (r == 1)
			fd = open_msg_file(md->dfd, md->msgs[i].name, &st);
		else
			errno = ENOENT;
	}
	if (fd == -1) {
		*error_r = errno == ENOENT ? "message was deleted by another client" :
			errf("cannot open message", errno);
		return -1;
	}
	*fd_r = fd;
	*len_r = (uint64_t)st.st_size;
	return 0;
}

int maildir_commit(struct maildir *md, const char **error_r)
{
	size_t failed = 0;
	bool any = false;

	for (size_t i = 0; i < md->count; i++) {
		struct mstore_msg *m = &md->msgs[i];
		if (!m->deleted)
			continue;
		any = true;
		for (;;) {
			if (unlinkat(md->dfd, m->name, 0) == 0)
				break;
			if (errno != ENOENT) {
				log_err("maildir: cannot delete, file=%s, error=%s", m->name,
					strerror(errno));
				failed++;
				break;
			}
			const char *err;
			int r = relocate(md, i, &err);
			if (r == 0)
				break; /* already gone: fine */
			if (r == -1) {
				log_err("maildir: cannot delete, file=%s, error=%s", m->name, err);
				failed++;
				break;
			}
		}
	}
	if (any) {
		static const char *const subs[] = { "new", "cur" };
		for (size_t s = 0; s < 2; s++) {
			int sfd = openat(md->dfd, subs[s], O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					 O_CLOEXEC);
			if (sfd != -1) {
				(void)fsync(sfd);
				close(sfd);
			}
		}
	}
	md->committed = true;
	if (failed > 0) {
		*error_r = "some messages could not be deleted";
		return -1;
	}
	return 0;
}

void maildir_close(struct maildir **mdp)
{
	struct maildir *md = *mdp;
	if (md == NULL)
		return;
	if (md->dfd != -1)
		close(md->dfd);
	for (size_t i = 0; i < md->count; i++)
		free(md->msgs[i].name);
	free(md->msgs);
	free(md->base_len);
	free_ents(md->idx, md->idx_n);
	free(md);
	*mdp = NULL;
}
