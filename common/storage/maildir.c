/* Maildir++ backend: folders are the Maildir (INBOX) and its ".NAME" subdirectories; a
 * message is a regular file in new/ or cur/ whose name does not start with '.'.  Its
 * base name (before the first ':') is its identity; the info part ":2,FLAGS" holds its
 * flags (D F R S T: Draft, Flagged, Answered, Seen, Deleted; a-z: keywords 0-25; other
 * letters are kept as they are).
 *
 * The index ("postern-index" in the folder) keeps each message's current name
 * ("cur/BASE:2,FLAGS") as its key, and as the folder's stamp the mtimes and inodes of
 * new/ and cur/.  A sync whose stamp still matches lists nothing and opens nothing; a
 * stamp younger than STORAGE_MTIME_SLACK_NS is not kept (a change in the same timestamp
 * tick would not move it).  Otherwise both directories are listed (no stat for entries
 * whose type readdir gives) and matched by base name: new files get UIDs in delivery
 * order, vanished ones are expunged, renamed ones (flags, new/ -> cur/) are updated.
 * Only a new message's file is read, and only if its name has no ",W=" size.
 *
 * Everything goes through one directory fd for the folder (it may be a symlink an
 * administrator made); new/, cur/ and messages are opened O_NOFOLLOW and fstat'ed. */
#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "mail/crlf.h"
#include "base/log.h"
#include "storage/maildir.h"
#include "storage/storage_int.h"
#include "base/util.h"

#define INDEX_NAME "postern-index"

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

/* ---- flags in names ---- */

static const struct {
	char letter;
	uint32_t flag;
} md_flags[] = {
	{ 'D', INDEX_FLAG_DRAFT }, { 'F', INDEX_FLAG_FLAGGED }, { 'R', INDEX_FLAG_ANSWERED },
	{ 'S', INDEX_FLAG_SEEN }, { 'T', INDEX_FLAG_DELETED },
};

static void flags_of_info(const char *letters, size_t len, uint32_t *flags_r,
			  uint32_t *kw_r)
{
	*flags_r = 0;
	*kw_r = 0;
	for (size_t i = 0; i < len; i++) {
		char c = letters[i];
		if (c >= 'a' && c <= 'z')
			*kw_r |= 1u << (c - 'a');
		for (size_t k = 0; k < sizeof(md_flags) / sizeof(md_flags[0]); k++)
			if (md_flags[k].letter == c)
				*flags_r |= md_flags[k].flag;
	}
}

/* "cur/BASE:2,LETTERS": ours from flags and keywords, and the letters of the old name
 * that we do not manage (P, and any other), all in ASCII order.  0 or -1 (too long). */
static int name_with_flags(const char *key, size_t base_len, uint32_t flags, uint32_t kw,
			   char *out, size_t size)
{
	bool on[128] = { false };
	const char *info = memchr(key + 4, ':', strlen(key + 4));
	if (info != NULL && info[1] == '2' && info[2] == ',')
		for (const char *p = info + 3; *p != '\0'; p++)
			if ((unsigned char)*p < 128 && *p > ' ')
				on[(unsigned char)*p] = true;
	for (size_t k = 0; k < sizeof(md_flags) / sizeof(md_flags[0]); k++)
		on[(unsigned char)md_flags[k].letter] = (flags & md_flags[k].flag) != 0;
	for (int c = 'a'; c <= 'z'; c++)
		on[c] = (kw & (1u << (c - 'a'))) != 0;
	if (base_len + 8 + 128 > size)
		return -1;
	size_t o = 0;
	memcpy(out, "cur/", 4);
	memcpy(out + 4, key + 4, base_len);
	o = 4 + base_len;
	memcpy(out + o, ":2,", 3);
	o += 3;
	for (int c = 33; c < 127; c++)
		if (on[c] && c != '/')
			out[o++] = (char)c; /* BOUNDS: at most 94 letters, checked above */
	out[o] = '\0';
	return 0;
}

/* ---- listing ---- */

struct ent {
	char *name;        /* "new/..." or "cur/..." */
	size_t base_len;   /* base starts at name + 4 */
	bool in_cur;
	uint32_t flags, kw;
	bool has_w;
	uint64_t w;
};

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int cmp_ent_bytes(const void *x, const void *y)
{
	const struct ent *a = x, *b = y;
	int c = cmp_bytes(a->name + 4, a->base_len, b->name + 4, b->base_len);
	if (c != 0)
		return c;
	return (int)b->in_cur - (int)a->in_cur; /* cur/ first among equal bases */
}

static int cmp_ent_delivery(const void *x, const void *y)
{
	const struct ent *a = *(struct ent *const *)x, *b = *(struct ent *const *)y;
	return cmp_base(a->name + 4, a->base_len, b->name + 4, b->base_len);
}

static void free_ents(struct ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

struct md {
	int dfd;                 /* the folder; -1: a missing INBOX (empty) */
	char newname[STORAGE_PATH_MAX]; /* set_flags: until the index copies it */
};

/* Append the messages of one subdirectory. */
static int list_sub(struct mailbox *box, int dfd, const char *sub, struct ent **e,
		    size_t *n, size_t *alloc, const char **error_r)
{
	int sfd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd == -1) {
		if (errno == ENOENT)
			return 0;
		*error_r = BOX_ERRF(box, sub, errno);
		return -1;
	}
	DIR *d = fdopendir(sfd);
	if (d == NULL) {
		*error_r = BOX_ERRF(box, sub, errno);
		close(sfd);
		return -1;
	}
	box->stats.dir_scans++;
	struct dirent *de = NULL;
	struct maildir_name mn;
	while (*n < 2 * (size_t)MSTORE_MAX_MESSAGES && (errno = 0, de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		box->stats.entries_seen++;
		if (maildir_parse_name(de->d_name, len, &mn) == -1)
			continue;
		if (de->d_type != DT_REG) {
			struct stat st;
			if (de->d_type != DT_UNKNOWN ||
			    fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
			    !S_ISREG(st.st_mode))
				continue;
		}
		if (*n == *alloc) {
			*alloc = *alloc == 0 ? 256 : *alloc * 2; /* BOUNDS: n < 2 * MAX */
			*e = xrealloc(*e, *alloc * sizeof(**e));
		}
		struct ent *x = &(*e)[(*n)++];
		x->name = xmalloc(len + 5); /* BOUNDS: "new/" + name + NUL */
		memcpy(x->name, sub, 3);
		x->name[3] = '/';
		memcpy(x->name + 4, de->d_name, len + 1);
		x->base_len = mn.base_len;
		x->in_cur = sub[0] == 'c';
		flags_of_info(mn.flags, mn.flags_len, &x->flags, &x->kw);
		x->has_w = mn.has_w;
		x->w = mn.w;
	}
	int ret = 0;
	if (de == NULL && errno != 0) {
		*error_r = BOX_ERRF(box, sub, errno);
		ret = -1;
	}
	closedir(d);
	return ret;
}

/* new/ first, then cur/: a file that another client moves new/ -> cur/ while we list is
 * seen at least once.  Sorted by base name bytes, duplicates dropped (cur/ kept). */
static int list_maildir(struct mailbox *box, int dfd, struct ent **r, size_t *count_r,
			const char **error_r)
{
	struct ent *e = NULL;
	size_t n = 0, alloc = 0;

	if (list_sub(box, dfd, "new", &e, &n, &alloc, error_r) == -1 ||
	    list_sub(box, dfd, "cur", &e, &n, &alloc, error_r) == -1) {
		free_ents(e, n);
		return -1;
	}
	if (n > 0)
		qsort(e, n, sizeof(*e), cmp_ent_bytes);
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

/* Size in CRLF form by reading the file.  0, or -1 with errno. */
static int compute_size(int dfd, const char *name, uint64_t *crlf_r, struct stat *st)
{
	int fd = open_msg_file(dfd, name, st);
	if (fd == -1)
		return -1;
	char *buf = xmalloc(IO_CHUNK);
	uint64_t crlf = 0;
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
	}
	int saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	*crlf_r = crlf;
	return ret;
}

static void log_name(const char *event, const char *name, const char *error)
{
	char safe[LOG_MAX_FIELD + 1];
	log_sanitize(name, strlen(name), safe);
	log_warn("%s: file=<%s>, error=%s", event, safe, error);
}

/* "new/NAME" or "cur/NAME", NAME a message file name */
static bool md_key_ok(const struct index_rec *rec)
{
	struct maildir_name mn;
	return rec->key_len > 4 && (memcmp(rec->key, "new/", 4) == 0 ||
				    memcmp(rec->key, "cur/", 4) == 0) &&
		strlen(rec->key) == rec->key_len &&
		maildir_parse_name(rec->key + 4, rec->key_len - 4, &mn) == 0;
}

static size_t key_base_len(const char *key)
{
	const char *colon = strchr(key + 4, ':');
	return colon != NULL ? (size_t)(colon - (key + 4)) : strlen(key + 4);
}

struct rec_ref {
	const char *base;
	size_t len;
	uint32_t uid;
};

static int cmp_ref(const void *x, const void *y)
{
	const struct rec_ref *a = x, *b = y;
	return cmp_bytes(a->base, a->len, b->base, b->len);
}

static uint64_t ts_ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000ULL + (uint64_t)t->tv_nsec;
}

/* What the folder looks like, cheaply: mtimes and inodes of new/ and cur/. */
static void md_stamp(int dfd, uint64_t stamp[INDEX_STAMP_WORDS], bool *recent_r)
{
	static const char *const subs[] = { "new", "cur" };
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	memset(stamp, 0, INDEX_STAMP_WORDS * sizeof(stamp[0]));
	*recent_r = false;
	for (int i = 0; i < 2; i++) {
		struct stat st;
		if (fstatat(dfd, subs[i], &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		stamp[i] = ts_ns(&st.st_mtim);
		stamp[2 + i] = (uint64_t)st.st_ino;
		if (stamp[i] + STORAGE_MTIME_SLACK_NS > ts_ns(&now))
			*recent_r = true;
	}
}

static int add_new(struct mailbox *box, int dfd, struct ent *x, const char **error_r)
{
	struct stat st;
	struct index_rec rec = { .flags = x->flags, .keywords = x->kw };
	uint64_t crlf;
	int r;

	if (x->has_w) {
		r = fstatat(dfd, x->name, &st, AT_SYMLINK_NOFOLLOW);
		crlf = x->w;
		if (r == 0 && (x->w < (uint64_t)st.st_size ||
			       x->w - (uint64_t)st.st_size > (uint64_t)st.st_size))
			r = 1; /* a ",W=" that cannot be right: read the file */
	} else {
		r = 1;
	}
	if (r == 1) {
		box->stats.files_read++;
		r = compute_size(dfd, x->name, &crlf, &st);
	}
	if (r == -1) {
		if (errno != ENOENT) /* gone since the listing: next sync */
			log_name("maildir-skip", x->name, strerror(errno));
		return 0;
	}
	rec.size = crlf;
	rec.raw = (uint64_t)st.st_size;
	rec.date = (int64_t)st.st_mtim.tv_sec;
	rec.key = x->name;
	rec.key_len = (uint32_t)strlen(x->name);
	if (x->in_cur == false)
		rec.flags |= INDEX_FLAG_RECENT;
	return index_append(box->ix, &rec, error_r);
}

static int md_scan(struct mailbox *box, bool force, const char **error_r)
{
	struct md *md = box->be;
	uint64_t stamp[INDEX_STAMP_WORDS];
	bool recent;

	if (md->dfd == -1)
		return 0;
	index_sweep(box->ix);
	md_stamp(md->dfd, stamp, &recent);
	if (!force && stamp[0] != 0 &&
	    memcmp(stamp, index_hdr(box->ix)->stamp, sizeof(stamp)) == 0)
		return 0; /* unchanged: nothing listed, nothing opened */

	struct ent *e;
	size_t n;
	if (list_maildir(box, md->dfd, &e, &n, error_r) == -1)
		return -1;
	size_t nrec = index_count(box->ix);
	struct rec_ref *refs = xmalloc(nrec * sizeof(*refs) + 1); /* BOUNDS: <= MAX */
	size_t nref = 0;
	int ret = 0;
	for (size_t i = 0; i < nrec; i++) {
		const struct index_rec *r = index_get(box->ix, i);
		if (r == NULL)
			continue;
		if (!md_key_ok(r)) { /* not a name we wrote: drop it, the file comes back new */
			if (ret == 0)
				ret = index_expunge(box->ix, r->uid, error_r);
			continue;
		}
		refs[nref++] = (struct rec_ref){ r->key + 4, key_base_len(r->key), r->uid };
	}
	nrec = nref;
	qsort(refs, nrec, sizeof(*refs), cmp_ref);

	struct ent **fresh = xmalloc(n * sizeof(*fresh) + 1); /* BOUNDS: n <= 2 * MAX */
	size_t nfresh = 0, i = 0, j = 0;
	while (ret == 0 && (i < n || j < nrec)) {
		int c = i == n ? 1 : j == nrec ? -1 :
			cmp_bytes(e[i].name + 4, e[i].base_len, refs[j].base, refs[j].len);
		if (c < 0) {
			fresh[nfresh++] = &e[i++];
		} else if (c > 0) {
			ret = index_expunge(box->ix, refs[j++].uid, error_r);
		} else {
			const struct index_rec *cur = index_find(box->ix, refs[j].uid, NULL);
			if (strcmp(cur->key, e[i].name) != 0) {
				struct index_rec rec = *cur;
				rec.key = e[i].name;
				rec.key_len = (uint32_t)strlen(e[i].name);
				rec.flags = e[i].flags | (cur->flags & INDEX_FLAG_RECENT);
				rec.keywords = e[i].kw;
				ret = index_update(box->ix, &rec, error_r);
				/* refs point into keys the update may free: not used again */
			}
			i++;
			j++;
		}
	}
	free(refs);
	if (ret == 0 && nfresh > 0) {
		qsort(fresh, nfresh, sizeof(*fresh), cmp_ent_delivery);
		for (size_t k = 0; k < nfresh && ret == 0; k++)
			ret = add_new(box, md->dfd, fresh[k], error_r);
	}
	free(fresh);
	free_ents(e, n);
	if (ret == 0) {
		if (recent) /* not to be trusted next time */
			memset(stamp, 0, sizeof(stamp));
		index_set_stamp(box->ix, stamp);
	}
	return ret;
}

/* Rescan under the lock to follow a rename by another client.  The record of uid
 * afterwards, or NULL if it is gone. */
static const struct index_rec *md_relocate(struct mailbox *box, uint32_t uid, bool locked,
					   const char **error_r)
{
	if (!locked) {
		if (box_lock(box, error_r) == -1)
			return NULL;
	}
	int r = md_scan(box, true, error_r);
	if (!locked) {
		if (r == 0)
			r = index_commit(box->ix, error_r);
		box_unlock(box);
	}
	if (r == -1)
		return NULL;
	const struct index_rec *rec = index_find(box->ix, uid, NULL);
	if (rec == NULL)
		*error_r = "message was deleted by another client";
	return rec;
}

/* ---- the backend ---- */

static int md_open(struct mailbox *box, const char **error_r)
{
	struct md *md = xcalloc(1, sizeof(*md));
	box->be = md;
	md->dfd = open(box->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (md->dfd == -1) {
		if (errno == ENOENT && strcmp(box->name, "INBOX") == 0) {
			box->ix = index_new_memory();
			return 0;
		}
		*error_r = errno == ENOENT ? "no such folder" :
			BOX_ERRF(box, "cannot open the Maildir", errno);
		return -1;
	}
	if (index_open(md->dfd, INDEX_NAME, &box->ix, error_r) == -1)
		return -1;
	/* a folder we cannot write to keeps its index in memory */
	int lfd = openat(md->dfd, INDEX_NAME ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			 0600);
	if (lfd == -1) {
		log_warn("maildir: index kept in memory, error=%s", strerror(errno));
		index_close(&box->ix);
		box->ix = index_new_memory();
	} else {
		close(lfd);
	}
	return 0;
}

static void md_close(struct mailbox *box)
{
	struct md *md = box->be;
	if (md == NULL)
		return;
	if (md->dfd != -1)
		close(md->dfd);
	free(md);
	box->be = NULL;
}

static int md_msg_open(struct mailbox *box, const struct index_rec *rec,
		       struct mail_reader *r, const char **error_r)
{
	struct md *md = box->be;
	struct stat st;
	uint32_t uid = rec->uid;

	if (md->dfd == -1 || !md_key_ok(rec)) {
		*error_r = "no such message";
		return -1;
	}
	int fd = open_msg_file(md->dfd, rec->key, &st);
	if (fd == -1 && errno == ENOENT) {
		rec = md_relocate(box, uid, false, error_r);
		if (rec == NULL)
			return -1;
		fd = open_msg_file(md->dfd, rec->key, &st);
	}
	if (fd == -1) {
		*error_r = errno == ENOENT ? "message was deleted by another client" :
			BOX_ERRF(box, "cannot open message", errno);
		return -1;
	}
	r->fd = fd;
	r->own_fd = true;
	r->left = (uint64_t)st.st_size;
	return 0;
}

static int md_set_flags(struct mailbox *box, struct index_rec *rec, const char **error_r)
{
	struct md *md = box->be;
	char *to = md->newname;
	uint32_t flags = rec->flags, kw = rec->keywords;

	if (md->dfd == -1) {
		*error_r = "no such message";
		return -1;
	}
	for (int pass = 0; pass < 2; pass++) {
		if (name_with_flags(rec->key, key_base_len(rec->key), flags, kw, to,
				    sizeof(md->newname)) == -1) {
			*error_r = "message name too long";
			return -1;
		}
		if (strcmp(to, rec->key) == 0 || renameat(md->dfd, rec->key, md->dfd, to) == 0) {
			rec->key = to;
			rec->key_len = (uint32_t)strlen(to);
			rec->flags = flags | (rec->flags & INDEX_FLAG_RECENT);
			return 0;
		}
		if (errno != ENOENT || pass == 1)
			break;
		const struct index_rec *cur = md_relocate(box, rec->uid, true, error_r);
		if (cur == NULL)
			return -1;
		*rec = *cur;
	}
	*error_r = BOX_ERRF(box, "rename message", errno);
	return -1;
}

static void fsync_subs(int dfd)
{
	static const char *const subs[] = { "new", "cur" };
	for (size_t s = 0; s < 2; s++) {
		int sfd = openat(dfd, subs[s], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd != -1) {
			(void)fsync(sfd);
			close(sfd);
		}
	}
}

static int md_expunge(struct mailbox *box, const uint32_t *uids, size_t n,
		      const char **error_r)
{
	struct md *md = box->be;
	size_t failed = 0;

	for (size_t i = 0; i < n; i++) {
		const struct index_rec *rec = index_find(box->ix, uids[i], NULL);
		int err = 0;
		for (int pass = 0; rec != NULL && pass < 2; pass++) {
			if (unlinkat(md->dfd, rec->key, 0) == 0)
				break;
			if (errno != ENOENT || pass == 1) {
				err = errno;
				break;
			}
			/* renamed by another client: find it (a rescan drops it if gone) */
			const char *e2;
			rec = md_relocate(box, uids[i], true, &e2);
			if (rec == NULL && index_find(box->ix, uids[i], NULL) != NULL) {
				err = EIO;
				break;
			}
		}
		if (err != 0 && err != ENOENT) {
			log_name("maildir-delete-failed", rec != NULL ? rec->key : "?",
				 strerror(err));
			failed++;
			continue;
		}
		if (index_find(box->ix, uids[i], NULL) != NULL &&
		    index_expunge(box->ix, uids[i], error_r) == -1)
			return -1;
	}
	if (md->dfd != -1)
		fsync_subs(md->dfd);
	if (failed > 0) {
		*error_r = "some messages could not be deleted";
		return -1;
	}
	return 0;
}

static int md_save_begin(struct mailbox *box, struct mail_save *s, const char **error_r)
{
	struct md *md = box->be;
	static unsigned counter;
	struct timespec now;
	char host[64];

	if (md->dfd == -1) {
		*error_r = "no such folder";
		return -1;
	}
	if (gethostname(host, sizeof(host)) == -1)
		memcpy(host, "localhost", 10);
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p != '\0'; p++)
		if (*p == '/' || *p == ':' || *p == ',' || (unsigned char)*p <= ' ' ||
		    (unsigned char)*p > '~')
			*p = '_';
	clock_gettime(CLOCK_REALTIME, &now);
	/* fixed widths: the scan gives UIDs in name order (cmp_base), so the messages of a
	 * batch (a COPY, a MULTIAPPEND) get theirs in the order they were saved, as COPYUID
	 * and APPENDUID pair them */
	if (util_snprintf(s->tmpname, sizeof(s->tmpname), "tmp/%lld.M%06ldP%ldQ%010u.%s",
			  (long long)now.tv_sec, now.tv_nsec / 1000, (long)getpid(),
			  ++counter, host) < 0) {
		*error_r = "message name too long";
		return -1;
	}
	s->fd = openat(md->dfd, s->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		       O_CLOEXEC, 0600);
	if (s->fd == -1) {
		*error_r = BOX_ERRF(box, "create message in tmp/", errno);
		return -1;
	}
	return 0;
}

/* The name the saved message gets in new/ or cur/ (s->key), and its date. */
static int md_save_key(struct mailbox *box, struct mail_save *s, const char **error_r)
{
	struct md *md = box->be;
	struct timespec ts[2] = { { .tv_sec = s->date }, { .tv_sec = s->date } };
	char base[STORAGE_PATH_MAX];

	/* the internal date is the file's mtime (a batch closed the descriptor) */
	(void)utimensat(md->dfd, s->tmpname, ts, AT_SYMLINK_NOFOLLOW);
	if (util_snprintf(base, sizeof(base), "%s,S=%llu,W=%llu", s->tmpname + 4,
			  (unsigned long long)s->raw, (unsigned long long)s->crlf) < 0) {
		*error_r = "message name too long";
		return -1;
	}
	int r;
	if (s->flags == 0) {
		r = util_snprintf(s->key, sizeof(s->key), "new/%s", base);
	} else {
		char tmp[STORAGE_PATH_MAX];
		r = util_snprintf(tmp, sizeof(tmp), "cur/%s:2,", base);
		if (r >= 0)
			r = name_with_flags(tmp, strlen(base), s->flags, 0, s->key, sizeof(s->key));
	}
	if (r < 0) {
		*error_r = "message name too long";
		return -1;
	}
	return 0;
}

static int md_save_finish(struct mailbox *box, struct mail_save *s, const char **error_r)
{
	struct md *md = box->be;

	if (md_save_key(box, s, error_r) == -1)
		return -1;
	if (renameat(md->dfd, s->tmpname, md->dfd, s->key) == -1) {
		*error_r = BOX_ERRF(box, "rename message into place", errno);
		return -1;
	}
	s->tmpname[0] = '\0';
	fsync_subs(md->dfd);
	if (md_scan(box, false, error_r) == -1)
		return -1;
	for (size_t i = index_count(box->ix); i-- > 0;) {
		const struct index_rec *rec = index_get(box->ix, i);
		if (strcmp(rec->key, s->key) == 0) {
			s->uid = rec->uid;
			break;
		}
	}
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	const struct mail_save *const *x = a, *const *y = b;
	return strcmp((*x)->key, (*y)->key);
}

/* The batch: every message renamed into place, or each renamed back to tmp/ (where
 * save_abort removes it) when one rename or the scan fails. */
static int md_save_commit(struct mailbox *box, struct mail_save **saves, size_t n,
			  const char **error_r)
{
	struct md *md = box->be;
	size_t done = 0;

	for (size_t i = 0; i < n; i++)
		if (md_save_key(box, saves[i], error_r) == -1)
			return -1;
	for (; done < n; done++)
		if (renameat(md->dfd, saves[done]->tmpname, md->dfd, saves[done]->key) == -1) {
			*error_r = BOX_ERRF(box, "rename message into place", errno);
			goto undo;
		}
	fsync_subs(md->dfd);
	uint32_t first = index_hdr(box->ix)->uidnext;
	if (md_scan(box, false, error_r) == -1)
		goto undo;
	/* the new records are the ones from first up: find each by its key */
	struct mail_save **sorted = xcalloc(n, sizeof(*sorted));
	memcpy(sorted, saves, n * sizeof(*sorted));   /* BOUNDS: n entries each */
	qsort(sorted, n, sizeof(*sorted), key_cmp);
	size_t found = 0;
	for (size_t i = index_count(box->ix); i-- > 0 && found < n;) {
		const struct index_rec *rec = index_get(box->ix, i);
		if (rec == NULL)
			continue;
		if (rec->uid < first)
			break;
		struct mail_save probe = { 0 }, *pp = &probe;
		if (util_snprintf(probe.key, sizeof(probe.key), "%s", rec->key) < 0)
			continue;
		struct mail_save **hit = bsearch(&pp, sorted, n, sizeof(*sorted), key_cmp);
		if (hit != NULL && (*hit)->uid == 0) {
			(*hit)->uid = rec->uid;
			found++;
		}
	}
	free(sorted);
	if (found < n) {
		*error_r = "saved messages not found in the index";
		goto undo;
	}
	for (size_t i = 0; i < n; i++)
		saves[i]->tmpname[0] = '\0';
	return 0;
undo:
	while (done-- > 0)
		if (renameat(md->dfd, saves[done]->key, md->dfd, saves[done]->tmpname) == -1)
			(void)unlinkat(md->dfd, saves[done]->key, 0);
	fsync_subs(md->dfd);
	return -1;
}

static void md_save_abort(struct mailbox *box, struct mail_save *s)
{
	struct md *md = box->be;
	if (s->tmpname[0] != '\0' && md->dfd != -1)
		(void)unlinkat(md->dfd, s->tmpname, 0);
	s->tmpname[0] = '\0';
}

/* MOVE within the user's Maildir++: one renameat2(RENAME_NOREPLACE) from src's folder
 * to dst's, the base name kept, so that a crash at any instant leaves the file in
 * exactly one of the two folders (RFC 6851 3.3: no message lost, none in both); an
 * index that did not learn of it (a kill before its commit) learns at its next scan.
 * The flags go along in the name as COPY keeps them (keywords are folder-specific
 * letters: dropped, as COPY drops them). */
static int md_move_out(struct mailbox *src, const struct index_rec *rec,
		       struct mailbox *dst, char *key_r, size_t size, const char **error_r)
{
	struct md *ms = src->be, *mdst = dst->be;
	uint32_t uid = rec->uid;

	if (ms->dfd == -1 || mdst->dfd == -1 || !md_key_ok(rec))
		return 1;
	for (int pass = 0; pass < 2; pass++) {
		size_t base_len = key_base_len(rec->key);
		uint32_t flags = rec->flags & INDEX_FLAG_MASK & ~INDEX_FLAG_RECENT;
		if (flags == 0) {
			if (base_len + 5 > size)
				return 1;
			memcpy(key_r, "new/", 4);
			memcpy(key_r + 4, rec->key + 4, base_len);
			key_r[4 + base_len] = '\0';
		} else if (name_with_flags(rec->key, base_len, flags, 0, key_r, size) == -1) {
			return 1;
		}
		if (renameat2(ms->dfd, rec->key, mdst->dfd, key_r, RENAME_NOREPLACE) == 0)
			break;
		if (errno == EEXIST || errno == EINVAL || errno == ENOSYS || errno == EXDEV)
			return 1;      /* a name taken, or no RENAME_NOREPLACE here: copy */
		if (errno != ENOENT || pass == 1) {
			*error_r = BOX_ERRF(src, "move message", errno);
			return -1;
		}
		/* renamed by another client: find it (a rescan drops it if gone) */
		rec = md_relocate(src, uid, true, error_r);
		if (rec == NULL)
			return -1;
	}
	fsync_subs(mdst->dfd);
	fsync_subs(ms->dfd);
	return index_expunge(src->ix, uid, error_r);
}

static int md_move_in(struct mailbox *dst, const char *key, uint32_t *uid_r,
		      const char **error_r)
{
	if (md_scan(dst, false, error_r) == -1)
		return -1;
	const char *colon = strchr(key + 4, ':');
	size_t base_len = colon != NULL ? (size_t)(colon - key) : strlen(key);
	for (size_t i = index_count(dst->ix); i-- > 0;) {
		const struct index_rec *rec = index_get(dst->ix, i);
		/* by base name: another client may have renamed it meanwhile */
		if (rec->key_len >= base_len && memcmp(rec->key + 4, key + 4, base_len - 4) == 0 &&
		    (rec->key[base_len] == '\0' || rec->key[base_len] == ':')) {
			*uid_r = rec->uid;
			return 0;
		}
	}
	*uid_r = 0;    /* gone already (another client was quicker): moved all the same */
	return 0;
}

static int md_watch(struct mailbox *box, int ifd)
{
	char p[STORAGE_PATH_MAX + 8];
	static const char *const subs[] = { "new", "cur" };
	uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY;

	/* the folder itself: the index log grows or is replaced */
	if (inotify_add_watch(ifd, box->path, mask | IN_DONT_FOLLOW) == -1)
		return -1;
	for (size_t i = 0; i < 2; i++)
		if (util_snprintf(p, sizeof(p), "%s/%s", box->path, subs[i]) < 0 ||
		    inotify_add_watch(ifd, p, mask | IN_DONT_FOLLOW | IN_ONLYDIR) == -1)
			return -1;
	return 0;
}

static void md_pop3_uidl(const struct mailbox *box, const struct index_rec *rec,
			 char uidl_r[POP3_UIDL_MAX + 1])
{
	maildir_uid(rec->key + 4, key_base_len(rec->key), uidl_r);
}

/* ---- folders (Maildir++: ".A.B" directory entries in the Maildir) ---- */

static int md_folder_path(struct mail_storage *st, const char *disk, char *out, size_t size)
{
	if (disk == NULL)
		return util_snprintf(out, size, "%s", st->folders) < 0 ? -1 : 0;
	return util_snprintf(out, size, "%s/%s", st->folders, disk) < 0 ? -1 : 0;
}

static int md_folder_list(struct mail_storage *st,
			  void (*add)(void *, const char *, bool), void *ctx,
			  const char **error_r)
{
	DIR *d = opendir(st->folders);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = storage_errf(st->err, sizeof(st->err), "list folders", errno);
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		char p[STORAGE_PATH_MAX + 300];
		struct stat sb;
		if (util_snprintf(p, sizeof(p), "%s/%s/cur", st->folders, de->d_name) >= 0 &&
		    lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
			add(ctx, de->d_name, false);
	}
	closedir(d);
	return 0;
}

static int md_folder_create(struct mail_storage *st, const char *disk, const char **error_r)
{
	char p[STORAGE_PATH_MAX], q[STORAGE_PATH_MAX + 16];
	static const char *const subs[] = { "tmp", "new", "cur" };

	if (md_folder_path(st, disk, p, sizeof(p)) == -1) {
		*error_r = "folder path too long";
		return -1;
	}
	if (mkdir(p, 0700) == -1) {
		*error_r = errno == EEXIST ? "folder exists" :
			storage_errf(st->err, sizeof(st->err), "create folder", errno);
		return -1;
	}
	for (size_t i = 0; i < 3; i++)
		if (util_snprintf(q, sizeof(q), "%s/%s", p, subs[i]) < 0 || mkdir(q, 0700) == -1) {
			*error_r = storage_errf(st->err, sizeof(st->err), "create folder", errno);
			return -1;
		}
	if (util_snprintf(q, sizeof(q), "%s/maildirfolder", p) >= 0) {
		int fd = open(q, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd != -1)
			close(fd);
	}
	return 0;
}

/* ".From" and every ".From.x" become ".To" and ".To.x". */
static int md_folder_rename(struct mail_storage *st, const char *from, const char *to,
			    const char **error_r)
{
	size_t fl = strlen(from);
	DIR *d = opendir(st->folders);
	if (d == NULL) {
		*error_r = storage_errf(st->err, sizeof(st->err), "rename folder", errno);
		return -1;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < STORAGE_FOLDERS_MAX)
		if (strncmp(de->d_name, from, fl) == 0 &&
		    (de->d_name[fl] == '\0' || de->d_name[fl] == '.')) {
			names = xrealloc(names, (n + 1) * sizeof(*names)); /* BOUNDS: FOLDERS_MAX */
			names[n++] = xstrdup(de->d_name);
		}
	closedir(d);
	int ret = n == 0 ? -1 : 0;
	if (n == 0)
		*error_r = "no such folder";
	for (size_t i = 0; i < n; i++) {
		char a[STORAGE_PATH_MAX], b[STORAGE_PATH_MAX];
		if (ret == 0 &&
		    (util_snprintf(a, sizeof(a), "%s/%s", st->folders, names[i]) < 0 ||
		     util_snprintf(b, sizeof(b), "%s/%s%s", st->folders, to,
				   names[i] + fl) < 0)) {
			*error_r = "folder path too long";
			ret = -1;
		}
		if (ret == 0)
			ret = storage_rename_folder_path(st, a, b, error_r);
		free(names[i]);
	}
	free(names);
	return ret;
}

/* Remove the files of one directory (no recursion: a Maildir folder is flat below its
 * three subdirectories), then the directory. */
static int rm_flat(int pfd, const char *name)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return unlinkat(pfd, name, AT_REMOVEDIR);
}

static int md_folder_delete(struct mail_storage *st, const char *disk, const char **error_r)
{
	char p[STORAGE_PATH_MAX];
	if (md_folder_path(st, disk, p, sizeof(p)) == -1) {
		*error_r = "folder path too long";
		return -1;
	}
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		*error_r = errno == ENOENT ? "no such folder" :
			storage_errf(st->err, sizeof(st->err), "delete folder", errno);
		return -1;
	}
	int ret = 0;
	static const char *const subs[] = { "tmp", "new", "cur" };
	for (size_t i = 0; i < 3 && ret == 0; i++)
		ret = rm_flat(fd, subs[i]);
	if (ret == 0) {
		DIR *d = fdopendir(fd);
		if (d == NULL) {
			close(fd);
			ret = -1;
		} else {
			struct dirent *de;
			while ((de = readdir(d)) != NULL)
				if (de->d_type == DT_REG)
					(void)unlinkat(dirfd(d), de->d_name, 0);
			closedir(d);
		}
	} else {
		close(fd);
	}
	if (ret == -1 || rmdir(p) == -1) {
		*error_r = storage_errf(st->err, sizeof(st->err), "delete folder", errno);
		return -1;
	}
	return 0;
}

static const struct mailbox_vfuncs md_box = {
	.open = md_open,
	.close = md_close,
	.scan = md_scan,
	.msg_open = md_msg_open,
	.set_flags = md_set_flags,
	.expunge = md_expunge,
	.save_begin = md_save_begin,
	.save_finish = md_save_finish,
	.save_abort = md_save_abort,
	.save_commit = md_save_commit,
	.move_out = md_move_out,
	.move_in = md_move_in,
	.watch = md_watch,
	.pop3_uidl = md_pop3_uidl,
	.key_ok = md_key_ok,
};

const struct storage_vfuncs maildir_storage = {
	.kind = "maildir",
	.folder_path = md_folder_path,
	.folder_list = md_folder_list,
	.folder_create = md_folder_create,
	.folder_rename = md_folder_rename,
	.folder_delete = md_folder_delete,
	.box = &md_box,
};
