/* mbox backend: the splitter (mbox_parser_*), locking, scanning into the index, checked
 * reads, saving, and the in-place compaction that an expunge needs.  The format rules
 * are in mbox.h.
 *
 * UIDs and flags are kept beside the mbox, in the folder's index (~/mail/.postern/INBOX
 * for the spool file, ~/mail/.postern/f-NAME for ~/mail/NAME): a flag change never
 * rewrites the mbox, and several sessions share one mbox read-write.  A message's key in
 * the index is its POP3 UIDL (32 hex digits of the SHA-256 of its From line and header,
 * "-N" for the Nth identical one in the file); a rescan matches messages to records by
 * that digest, in file order within equal digests.  The folder's stamp is the file's
 * size, mtime and inode: a sync that finds them unchanged reads nothing.
 *
 * Locking, interoperable with Debian's MTAs (exim, postfix, procmail) and mutt:
 * a dotlock PATH.lock made by liblockfile (which runs the setgid-mail dotlockfile helper
 * when /var/mail is not writable by the user), then an fcntl write lock on the whole file
 * (F_SETLK retried for up to lock_timeout_ms: no alarm()).  Dotlock first, fcntl second,
 * as exim and Dovecot take them.  Both are held while we scan, append and compact.
 * Message bytes are read in chunks, each under an fcntl read lock (which mutt's and the
 * MTA's write lock excludes) after checking that the file is unchanged, or, if it
 * changed, that the message's From line, header and end are still where the index says:
 * a rewrite by mutt gives an error, never wrong bytes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lockfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "base/log.h"
#include "storage/mbox.h"
#include "storage/storage_int.h"
#include "base/util.h"

/* ---- the splitter ---- */

enum mp_state { MP_FROM, MP_HEADER, MP_BODY };

struct mbox_parser {
	uint64_t off;            /* offset of the next byte */
	size_t max;
	bool header_only;
	bool stopped, bad;
	/* line state */
	uint64_t line_len;       /* bytes of the current line so far (no LF) */
	bool prev_cr;            /* last byte was CR */
	bool prev_empty;         /* the last complete line was empty */
	unsigned prev_empty_len; /* its length with the LF: 1 or 2 */
	int match;               /* candidate line: bytes of "From " matched; -1 none */
	/* current message */
	bool in_msg;
	enum mp_state st;
	bool hashing;
	struct mbox_msginfo cur;
	EVP_MD_CTX *md;
	/* results */
	struct mbox_msginfo *msgs;
	size_t count, alloc;
	uint64_t end;
};

static const char from_word[] = "From ";
#define FROM_LEN 5

struct mbox_parser *mbox_parser_new(uint64_t start_off, size_t max_messages,
				    bool header_only)
{
	struct mbox_parser *p = xcalloc(1, sizeof(*p));
	p->off = start_off;
	p->end = start_off;
	p->max = max_messages;
	p->header_only = header_only;
	p->match = 0; /* offset 0 of the data counts as "after an empty line" */
	p->md = EVP_MD_CTX_new();
	if (p->md == NULL)
		fatal("out of memory: EVP_MD_CTX_new");
	return p;
}

void mbox_parser_free(struct mbox_parser **pp)
{
	struct mbox_parser *p = *pp;
	if (p == NULL)
		return;
	EVP_MD_CTX_free(p->md);
	free(p->msgs);
	free(p);
	*pp = NULL;
}

static void hash(struct mbox_parser *p, const void *buf, size_t len)
{
	if (p->hashing && len > 0 && EVP_DigestUpdate(p->md, buf, len) != 1)
		fatal("EVP_DigestUpdate failed");
}

static void hash_end(struct mbox_parser *p)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (!p->hashing)
		return;
	if (EVP_DigestFinal_ex(p->md, d, &dlen) != 1 || dlen < MBOX_DIGEST_LEN)
		fatal("EVP_DigestFinal_ex failed");
	memcpy(p->cur.digest, d, MBOX_DIGEST_LEN);
	p->hashing = false;
}

static void push(struct mbox_parser *p)
{
	if (p->count == p->alloc) {
		size_t n = p->alloc == 0 ? 64 : p->alloc * 2; /* BOUNDS: count <= max_messages */
		p->msgs = xrealloc(p->msgs, n * sizeof(*p->msgs));
		p->alloc = n;
	}
	p->msgs[p->count++] = p->cur;
}

/* Close the current message; its region ends at region_end.  next_from: a From line
 * starts there, so the empty line before it is the separator. */
static void close_msg(struct mbox_parser *p, uint64_t region_end, bool next_from)
{
	uint64_t content_end = region_end;

	hash_end(p);
	if (p->st == MP_FROM) {
		/* the data ended inside the From line: an empty message */
		p->cur.body_off = region_end;
		p->cur.size = 0;
	} else if ((next_from || (p->line_len == 0 && p->prev_empty)) &&
		   region_end - p->cur.body_off >= p->prev_empty_len) {
		content_end -= p->prev_empty_len;
		p->cur.size -= 2; /* BOUNDS: the separator was counted as 2 (bare LF or CRLF) */
	}
	p->cur.raw_len = content_end - p->cur.body_off;
	push(p);
	p->in_msg = false;
	p->end = region_end;
}

/* "From " matched at a line start after an empty line: a new message begins here. */
static void start_msg(struct mbox_parser *p)
{
	if (p->in_msg)
		close_msg(p, p->off, true);
	if (p->count >= p->max) {
		p->stopped = true;
		return;
	}
	memset(&p->cur, 0, sizeof(p->cur));
	p->cur.from_off = p->off;
	p->in_msg = true;
	p->st = MP_FROM;
	if (EVP_DigestInit_ex(p->md, EVP_sha256(), NULL) != 1)
		fatal("EVP_DigestInit_ex failed");
	p->hashing = true;
	hash(p, from_word, FROM_LEN);
	p->off += FROM_LEN;
	p->line_len = FROM_LEN;
	p->prev_cr = false;
}

/* Bytes of one line, no LF among them. */
static void text(struct mbox_parser *p, const char *buf, size_t n)
{
	if (n == 0)
		return;
	if (p->st != MP_BODY)
		hash(p, buf, n);
	if (p->st != MP_FROM)
		p->cur.size += n;
	p->line_len += n;
	p->prev_cr = buf[n - 1] == '\r';
	p->off += n;
}

static void newline(struct mbox_parser *p)
{
	bool empty = p->line_len == 0 || (p->line_len == 1 && p->prev_cr);

	if (p->in_msg) {
		if (p->st != MP_BODY)
			hash(p, "\n", 1);
		if (p->st == MP_FROM) {
			p->st = MP_HEADER;
			p->cur.body_off = p->off + 1;
		} else {
			p->cur.size += p->prev_cr ? 1 : 2;
			if (p->st == MP_HEADER && empty) {
				p->st = MP_BODY;
				hash_end(p);
				if (p->header_only) {
					push(p);
					p->stopped = true;
				}
			}
		}
	}
	p->prev_empty = empty;
	p->prev_empty_len = empty ? (unsigned)p->line_len + 1 : 0;
	p->line_len = 0;
	p->prev_cr = false;
	p->off++;
	p->match = empty ? 0 : -1;
}

int mbox_parser_feed(struct mbox_parser *p, const void *data, size_t len)
{
	const char *buf = data;
	size_t i = 0;

	while (i < len && !p->stopped && !p->bad) {
		if (p->match >= 0) {
			if (buf[i] == from_word[p->match]) {
				i++;
				if (++p->match == FROM_LEN) {
					p->match = -1;
					start_msg(p);
				}
				continue;
			}
			/* not a From line: the bytes held back are ordinary text */
			int k = p->match;
			p->match = -1;
			if (!p->in_msg) {
				p->bad = true; /* the data does not start with "From " */
				break;
			}
			text(p, from_word, (size_t)k);
			continue; /* buf[i] again, as ordinary text */
		}
		const char *lf = memchr(buf + i, '\n', len - i);
		size_t seg = lf != NULL ? (size_t)(lf - (buf + i)) : len - i;
		text(p, buf + i, seg);
		i += seg;
		if (lf != NULL) {
			newline(p);
			i++;
		}
	}
	if (p->bad)
		return -1;
	return p->stopped ? 1 : 0;
}

int mbox_parser_finish(struct mbox_parser *p)
{
	if (p->bad)
		return -1;
	if (p->stopped)
		return 0;
	if (p->match > 0) {
		if (!p->in_msg) {
			p->bad = true;
			return -1;
		}
		text(p, from_word, (size_t)p->match);
	}
	p->match = -1;
	if (p->in_msg)
		close_msg(p, p->off, false);
	p->stopped = true;
	return 0;
}

const struct mbox_msginfo *mbox_parser_msgs(const struct mbox_parser *p, size_t *count_r)
{
	*count_r = p->count;
	return p->msgs;
}

uint64_t mbox_parser_end(const struct mbox_parser *p)
{
	return p->end;
}

/* ---- the mailbox ---- */

struct mbx {
	char lockpath[STORAGE_PATH_MAX + 8];
	int fd;                  /* -1: the file does not exist (yet) */
	dev_t dev;
	ino_t ino;
	struct mbox_opts opts;
	bool locked, dotlocked;
	uint64_t end;            /* end of the last message at the last full parse */
	int idx_dfd;             /* the index's directory (0: none) */
	char jname[72];          /* the compaction journal there: NAME.compact ("": none) */
	bool jchecked;           /* looked for a journal since the open */
	char mvname[72];         /* MOVE's intent there: NAME.move ("": none) */
	int mvfd;                /* our intent while a MOVE out of here runs, locked */
};

int mbox_test_dotlock_retries = -1;
unsigned mbox_test_lock_timeout_ms;

void mbox_opts_default(struct mbox_opts *o)
{
	o->max_messages = MSTORE_MAX_MESSAGES;
	o->dotlock_retries = mbox_test_dotlock_retries >= 0 ? mbox_test_dotlock_retries :
		MBOX_DOTLOCK_RETRIES;
	o->lock_timeout_ms = mbox_test_lock_timeout_ms > 0 ? mbox_test_lock_timeout_ms :
		MBOX_LOCK_TIMEOUT_MS;
}

static void unlock(struct mailbox *box)
{
	struct mbx *mb = box->be;
	if (mb->locked) {
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
		(void)fcntl(mb->fd, F_SETLK, &fl);
		mb->locked = false;
	}
	if (mb->dotlocked) {
		if (lockfile_remove(mb->lockpath) != 0) {
			char safe[LOG_MAX_FIELD + 1];
			log_sanitize(mb->lockpath, strlen(mb->lockpath), safe);
			log_warn("mbox: cannot remove lock file, path=<%s>, error=%s", safe,
				 strerror(errno));
		}
		mb->dotlocked = false;
	}
}

/* fcntl lock of type (F_RDLCK, F_WRLCK) on the whole file, waited for at most
 * lock_timeout_ms.  0 or -1. */
static int fcntl_lock(struct mailbox *box, short type, const char **error_r)
{
	struct mbx *mb = box->be;
	uint64_t start = util_now_ms();
	for (;;) {
		struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
		if (fcntl(mb->fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EACCES) {
			*error_r = BOX_ERRF(box, "fcntl lock", errno);
			return -1;
		}
		if (util_now_ms() - start >= (mbox_test_lock_timeout_ms > 0 ?
					      mbox_test_lock_timeout_ms : mb->opts.lock_timeout_ms)) {
			*error_r = "mailbox is locked by another program (fcntl)";
			return -1;
		}
		util_sleep_ms(MBOX_LOCK_POLL_MS);
	}
}

static int cj_recover(struct mailbox *box, const char **error_r);

static int lock(struct mailbox *box, const char **error_r)
{
	struct mbx *mb = box->be;
	int r = lockfile_create(mb->lockpath, mb->opts.dotlock_retries, L_PID);
	if (r != L_SUCCESS) {
		*error_r = r == L_MAXTRYS ?
			"mailbox is locked by another program (dotlock)" :
			"cannot create the mailbox lock file";
		return -1;
	}
	mb->dotlocked = true;
	if (fcntl_lock(box, F_WRLCK, error_r) == -1) {
		unlock(box);
		return -1;
	}
	mb->locked = true;

	/* Is the path still this file?  Someone may have renamed a new one into place. */
	struct stat st;
	if (lstat(box->path, &st) == -1 || st.st_dev != mb->dev || st.st_ino != mb->ino) {
		*error_r = "mailbox was replaced by another program";
		unlock(box);
		return -1;
	}
	/* a compaction killed half way is finished before anyone reads the file */
	if (cj_recover(box, error_r) == -1) {
		unlock(box);
		return -1;
	}
	return 0;
}

/* Open the file: not a symlink, a regular file owned by us.  A missing file is fine
 * (fd -1) unless create. */
static int open_file(struct mailbox *box, bool create, const char **error_r)
{
	struct mbx *mb = box->be;
	struct stat st;

	if (mb->fd != -1)
		close(mb->fd);
	mb->fd = open(box->path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC |
		      (create ? O_CREAT : 0), 0600);
	if (mb->fd == -1) {
		if (errno == ENOENT && !create)
			return 0;
		*error_r = errno == ELOOP ? "mailbox is a symbolic link" :
			BOX_ERRF(box, "cannot open the mailbox", errno);
		return -1;
	}
	const char *bad = NULL;
	if (fstat(mb->fd, &st) == -1)
		bad = BOX_ERRF(box, "fstat mailbox", errno);
	else if (!S_ISREG(st.st_mode))
		bad = "mailbox is not a regular file";
	else if (st.st_uid != geteuid())
		bad = "mailbox is not owned by the user";
	int fl = bad == NULL ? fcntl(mb->fd, F_GETFL) : -1;
	if (bad == NULL && (fl == -1 || fcntl(mb->fd, F_SETFL, fl & ~O_NONBLOCK) == -1))
		bad = BOX_ERRF(box, "fcntl mailbox", errno);
	if (bad != NULL) {
		*error_r = bad;
		close(mb->fd);
		mb->fd = -1;
		return -1;
	}
	mb->dev = st.st_dev;
	mb->ino = st.st_ino;
	return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

/* Feed [start, end) of the file (end: UINT64_MAX = to EOF) to the parser. */
static int feed_file(struct mailbox *box, int fd, struct mbox_parser *p, uint64_t start,
		     uint64_t end, const char **error_r)
{
	char *buf = xmalloc(MBOX_SCAN_CHUNK);
	uint64_t off = start;
	int ret = 0;

	while (off < end) {
		size_t want = MBOX_SCAN_CHUNK;
		if (end - off < want)
			want = (size_t)(end - off);
		ssize_t n = pread_full(fd, buf, want, off);
		if (n < 0) {
			*error_r = BOX_ERRF(box, "read mailbox", errno);
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		off += (uint64_t)n;
		if (mbox_parser_feed(p, buf, (size_t)n) != 0)
			break;
	}
	free(buf);
	if (ret == 0 && mbox_parser_finish(p) == -1) {
		*error_r = "not an mbox file (it does not start with \"From \")";
		ret = -1;
	}
	return ret;
}

static void hex_digest(const unsigned char *d, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t j = 0; j < MBOX_DIGEST_LEN; j++) {
		out[2 * j] = hex[d[j] >> 4];
		out[2 * j + 1] = hex[d[j] & 15];
	}
	out[2 * MBOX_DIGEST_LEN] = '\0';
}

#define HEXLEN (2 * MBOX_DIGEST_LEN)

/* 32 lowercase hex digits, then nothing or "-N" (N 2..MSTORE_MAX_MESSAGES) */
static bool mb_key_ok(const struct index_rec *rec)
{
	const char *k = rec->key;
	if (rec->key_len < HEXLEN || rec->key_len > POP3_UIDL_MAX || strlen(k) != rec->key_len)
		return false;
	for (size_t i = 0; i < HEXLEN; i++)
		if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
			return false;
	uint64_t n;
	return rec->key_len == HEXLEN ||
		(k[HEXLEN] == '-' && util_parse_uint(k + HEXLEN + 1, rec->key_len - HEXLEN - 1,
						      MSTORE_MAX_MESSAGES, &n) == 0 && n >= 2);
}


struct scanned {
	const struct mbox_msginfo *m;
	size_t pos;              /* in file order */
	char key[POP3_UIDL_MAX + 1];
};

static int cmp_scanned(const void *x, const void *y)
{
	const struct scanned *a = x, *b = y;
	int c = memcmp(a->key, b->key, HEXLEN);
	if (c != 0)
		return c;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

struct ref {
	char digest[HEXLEN];
	uint32_t uid;
};

static int cmp_ref(const void *x, const void *y)
{
	const struct ref *a = x, *b = y;
	int c = memcmp(a->digest, b->digest, HEXLEN);
	if (c != 0)
		return c;
	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

static int cmp_pos(const void *x, const void *y)
{
	const struct scanned *a = *(struct scanned *const *)x, *b = *(struct scanned *const *)y;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static uint64_t ts_ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000ULL + (uint64_t)t->tv_nsec;
}

static int verify_msg(struct mailbox *box, const struct index_rec *rec, const char *key,
		      const char **error_r);

/* Under the locks: if the file only grew since the last parse (same inode, the last
 * message still verifies where it was, and a new message starts at the old end), parse
 * only what was added.  1 done, 0 not so (parse it all), -1 error. */
static int scan_appended(struct mailbox *box, uint64_t stamp[INDEX_STAMP_WORDS],
			 const struct timespec *now, const char **error_r)
{
	struct mbx *mb = box->be;
	const uint64_t *old = index_hdr(box->ix)->stamp;
	size_t nrec = index_count(box->ix);

	if (old[3] == 0 || old[2] != stamp[2] || nrec == 0 || stamp[0] <= old[3] - 1 ||
	    nrec >= mb->opts.max_messages)
		return 0;
	uint64_t old_end = old[3] - 1;
	/* by position: a record index_get() gives may be a buffer it reuses (index.h) */
	size_t last_pos = 0;
	uint64_t last_aux = 0;
	for (size_t i = 0; i < nrec; i++) {
		const struct index_rec *r = index_get(box->ix, i);
		if (!mb_key_ok(r))
			return 0;
		if (i == 0 || r->aux > last_aux) {
			last_pos = i;
			last_aux = r->aux;
		}
	}
	char head[5];
	const char *e2;
	const struct index_rec *last = index_get(box->ix, last_pos);
	if (verify_msg(box, last, last->key, &e2) == -1 ||
	    pread_full(mb->fd, head, 5, old_end) != 5 || memcmp(head, "From ", 5) != 0)
		return 0;

	struct mbox_parser *p = mbox_parser_new(old_end, mb->opts.max_messages - nrec, false);
	int ret = feed_file(box, mb->fd, p, old_end, UINT64_MAX, error_r);
	size_t n = 0;
	const struct mbox_msginfo *m = ret == 0 ? mbox_parser_msgs(p, &n) : NULL;
	for (size_t i = 0; ret == 0 && i < n; i++) {
		char key[POP3_UIDL_MAX + 1];
		hex_digest(m[i].digest, key);
		size_t dup = 1;
		for (size_t k = 0; k < index_count(box->ix); k++) /* earlier and new ones */
			if (memcmp(index_get(box->ix, k)->key, key, HEXLEN) == 0)
				dup++;
		if (dup > 1 && util_snprintf(key + HEXLEN, sizeof(key) - HEXLEN, "-%zu", dup) < 0)
			fatal("mbox: uid suffix does not fit");
		struct index_rec rec = {
			.flags = INDEX_FLAG_RECENT, .size = m[i].size, .raw = m[i].raw_len,
			.date = (int64_t)now->tv_sec, .off = m[i].body_off, .aux = m[i].from_off,
			.key = key, .key_len = (uint32_t)strlen(key),
		};
		ret = index_append(box->ix, &rec, error_r);
	}
	if (ret == 0) {
		mb->end = mbox_parser_end(p);
		stamp[3] = mb->end + 1;
		if (stamp[1] + STORAGE_MTIME_SLACK_NS > ts_ns(now))
			stamp[1] = 0;
		index_set_stamp(box->ix, stamp);
		box->stats.appends_parsed++;
	}
	mbox_parser_free(&p);
	return ret == 0 ? 1 : -1;
}

/* Bring the index up to date with the file.  have_lock: the mbox locks are held. */
static int scan_impl(struct mailbox *box, bool force, bool have_lock, const char **error_r)
{
	struct mbx *mb = box->be;
	struct stat st, pst;
	uint64_t stamp[INDEX_STAMP_WORDS] = { 0 };
	const uint64_t *old = index_hdr(box->ix)->stamp;

	index_sweep(box->ix);
	/* a file created, or replaced by rename, since we opened it */
	if (!have_lock && (mb->fd == -1 ||
			   (lstat(box->path, &pst) == 0 && pst.st_ino != mb->ino))) {
		if (open_file(box, false, error_r) == -1)
			return -1;
	}
	if (mb->fd == -1) {
		for (size_t i = index_count(box->ix); i-- > 0;)
			if (index_expunge(box->ix, index_get(box->ix, i)->uid, error_r) == -1)
				return -1;
		index_set_stamp(box->ix, stamp);
		return 0;
	}
	if (fstat(mb->fd, &st) == -1) {
		*error_r = BOX_ERRF(box, "fstat mailbox", errno);
		return -1;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	stamp[0] = (uint64_t)st.st_size;
	stamp[1] = ts_ns(&st.st_mtim);
	stamp[2] = (uint64_t)st.st_ino;
	/* the first scan after the open also finishes a compaction left by a process
	 * killed before it changed the file (so its stamp did not move) */
	if (!mb->jchecked) {
		mb->jchecked = true;
		if (mb->idx_dfd > 0 && mb->jname[0] != '\0' &&
		    fstatat(mb->idx_dfd, mb->jname, &pst, AT_SYMLINK_NOFOLLOW) == 0)
			force = true;
	}
	if (!force && old[1] != 0 && memcmp(stamp, old, 3 * sizeof(stamp[0])) == 0)
		return 0; /* unchanged: nothing read */

	if (!have_lock && lock(box, error_r) == -1)
		return -1;
	if (fstat(mb->fd, &st) == -1) {
		*error_r = BOX_ERRF(box, "fstat mailbox", errno);
		if (!have_lock)
			unlock(box);
		return -1;
	}
	stamp[0] = (uint64_t)st.st_size;
	stamp[1] = ts_ns(&st.st_mtim);
	if (!force) {
		int r = scan_appended(box, stamp, &now, error_r);
		if (r != 0) {
			if (!have_lock)
				unlock(box);
			return r < 0 ? -1 : 0;
		}
	}
	box->stats.dir_scans++;
	struct mbox_parser *p = mbox_parser_new(0, mb->opts.max_messages, false);
	int ret = feed_file(box, mb->fd, p, 0, UINT64_MAX, error_r);
	if (!have_lock)
		unlock(box);
	if (ret == -1) {
		mbox_parser_free(&p);
		return -1;
	}
	size_t n, nrec = index_count(box->ix);
	const struct mbox_msginfo *m = mbox_parser_msgs(p, &n);
	mb->end = mbox_parser_end(p);
	stamp[3] = mb->end + 1;

	/* keys: digests in hex, "-N" for the Nth equal one in file order (as ever) */
	struct scanned *sc = xmalloc(n * sizeof(*sc) + 1); /* BOUNDS: n <= max_messages */
	for (size_t i = 0; i < n; i++) {
		sc[i].m = &m[i];
		sc[i].pos = i;
		hex_digest(m[i].digest, sc[i].key);
	}
	qsort(sc, n, sizeof(*sc), cmp_scanned);
	for (size_t i = 1, dup = 1; i < n; i++) {
		dup = memcmp(sc[i].key, sc[i - 1].key, HEXLEN) == 0 ? dup + 1 : 1;
		/* 32 + '-' + at most 7 digits (n <= 1000000) fits POP3_UIDL_MAX */
		if (dup > 1 && util_snprintf(sc[i].key + HEXLEN, sizeof(sc[i].key) - HEXLEN,
					     "-%zu", dup) < 0)
			fatal("mbox: uid suffix does not fit");
	}
	struct ref *refs = xmalloc(nrec * sizeof(*refs) + 1); /* BOUNDS: <= max */
	size_t nref = 0;
	for (size_t i = 0; i < nrec; i++) {
		const struct index_rec *r = index_get(box->ix, i);
		if (!mb_key_ok(r))
			continue; /* not ours: expunged below */
		memcpy(refs[nref].digest, r->key, HEXLEN);
		refs[nref++].uid = r->uid;
	}
	qsort(refs, nref, sizeof(*refs), cmp_ref);

	/* pair equal digests in order; the rest are new or gone */
	struct scanned **fresh = xmalloc(n * sizeof(*fresh) + 1); /* BOUNDS: as sc */
	size_t nfresh = 0, i = 0, j = 0;
	ret = 0;
	while (ret == 0 && (i < n || j < nref)) {
		int c = i == n ? 1 : j == nref ? -1 : memcmp(sc[i].key, refs[j].digest, HEXLEN);
		if (c < 0) {
			fresh[nfresh++] = &sc[i++];
			continue;
		}
		if (c > 0) {
			ret = index_expunge(box->ix, refs[j++].uid, error_r);
			continue;
		}
		const struct index_rec *cur = index_find(box->ix, refs[j].uid, NULL);
		const struct mbox_msginfo *x = sc[i].m;
		if (cur->off != x->body_off || cur->aux != x->from_off || cur->raw != x->raw_len ||
		    cur->size != x->size || strcmp(cur->key, sc[i].key) != 0) {
			struct index_rec rec = *cur;
			rec.off = x->body_off;
			rec.aux = x->from_off;
			rec.raw = x->raw_len;
			rec.size = x->size;
			rec.key = sc[i].key;
			rec.key_len = (uint32_t)strlen(sc[i].key);
			ret = index_update(box->ix, &rec, error_r);
		}
		i++;
		j++;
	}
	/* records without a digest key */
	for (size_t k = index_count(box->ix); ret == 0 && k-- > 0;) {
		const struct index_rec *r = index_get(box->ix, k);
		if (r != NULL && !mb_key_ok(r))
			ret = index_expunge(box->ix, r->uid, error_r);
	}
	if (ret == 0 && nfresh > 0) {
		qsort(fresh, nfresh, sizeof(*fresh), cmp_pos);
		for (size_t k = 0; k < nfresh && ret == 0; k++) {
			const struct mbox_msginfo *x = fresh[k]->m;
			struct index_rec rec = {
				.flags = INDEX_FLAG_RECENT, .size = x->size, .raw = x->raw_len,
				.date = (int64_t)now.tv_sec, .off = x->body_off, .aux = x->from_off,
				.key = fresh[k]->key, .key_len = (uint32_t)strlen(fresh[k]->key),
			};
			ret = index_append(box->ix, &rec, error_r);
		}
	}
	free(fresh);
	free(refs);
	free(sc);
	mbox_parser_free(&p);
	if (ret == 0) {
		if (stamp[1] + STORAGE_MTIME_SLACK_NS > ts_ns(&now))
			stamp[1] = 0; /* too recent to be trusted next time */
		index_set_stamp(box->ix, stamp);
	}
	return ret;
}

static int mb_scan(struct mailbox *box, bool force, const char **error_r)
{
	return scan_impl(box, force, false, error_r);
}

/* Is the message still where rec says?  Its From line and header hash to its key at
 * the same offsets, and its content ends at a separator or at the end of the file. */
static int verify_msg(struct mailbox *box, const struct index_rec *rec, const char *key,
		      const char **error_r)
{
	struct mbx *mb = box->be;
	const char *changed = "mailbox was changed by another program";
	struct mbox_parser *p = mbox_parser_new(rec->aux, 1, true);
	int ret = feed_file(box, mb->fd, p, rec->aux, rec->off + rec->raw, error_r);
	size_t n = 0;
	const struct mbox_msginfo *v = ret == 0 ? mbox_parser_msgs(p, &n) : NULL;
	char hex[HEXLEN + 1];
	if (n == 1)
		hex_digest(v[0].digest, hex);
	bool same = n == 1 && v[0].from_off == rec->aux && v[0].body_off == rec->off &&
		memcmp(hex, key, HEXLEN) == 0;
	mbox_parser_free(&p);
	if (same) {
		char tail[7];
		ssize_t got = pread_full(mb->fd, tail, sizeof(tail), rec->off + rec->raw);
		size_t sep = got >= 1 && tail[0] == '\n' ? 1 :
			got >= 2 && tail[0] == '\r' && tail[1] == '\n' ? 2 : 0;
		same = got == 0 || (sep > 0 && ((size_t)got == sep ||
			((size_t)got >= sep + 5 && memcmp(tail + sep, "From ", 5) == 0)));
	}
	if (!same) {
		if (ret == 0)
			*error_r = changed;
		return -1;
	}
	return 0;
}

static void seen_of(const struct stat *st, uint64_t seen[3])
{
	seen[0] = (uint64_t)st->st_size;
	seen[1] = ts_ns(&st->st_mtim);
	seen[2] = (uint64_t)st->st_ino;
}

/* Under the read lock: unchanged since the last check, or the message verifies. */
static int mb_read_check(struct mail_reader *r, const char **error_r)
{
	struct mailbox *box = r->box;
	struct mbx *mb = box->be;
	struct stat st;
	uint64_t seen[3];

	if (mb->fd == -1 || fcntl_lock(box, F_RDLCK, error_r) == -1)
		return -1;
	if (fstat(mb->fd, &st) == -1) {
		*error_r = BOX_ERRF(box, "fstat mailbox", errno);
		goto fail;
	}
	seen_of(&st, seen);
	if (memcmp(seen, r->seen, sizeof(seen)) == 0)
		return 0;
	const struct index_rec *rec = index_find(box->ix, r->rec.uid, NULL);
	if (rec == NULL || rec->off != r->rec.off || rec->aux != r->rec.aux ||
	    rec->raw != r->rec.raw) {
		*error_r = "mailbox was changed by another program";
		goto fail;
	}
	if (verify_msg(box, rec, rec->key, error_r) == -1)
		goto fail;
	memcpy(r->seen, seen, sizeof(seen));
	return 0;
fail:
	{
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
		(void)fcntl(mb->fd, F_SETLK, &fl);
	}
	return -1;
}

static void mb_read_done(struct mail_reader *r)
{
	struct mbx *mb = r->box->be;
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	if (mb->fd != -1)
		(void)fcntl(mb->fd, F_SETLK, &fl);
}

static int mb_msg_open(struct mailbox *box, const struct index_rec *rec,
		       struct mail_reader *r, const char **error_r)
{
	struct mbx *mb = box->be;
	if (mb->fd == -1) {
		*error_r = "no such message";
		return -1;
	}
	r->fd = mb->fd;
	r->own_fd = false;
	r->pos = rec->off;
	r->left = rec->raw;
	/* Check now, so that a message moved by another program is found again (one
	 * rescan) or reported before any byte is sent. */
	uint32_t uid = rec->uid;
	for (int pass = 0; pass < 2; pass++) {
		memset(r->seen, 0, sizeof(r->seen));
		if (mb_read_check(r, error_r) == 0) {
			mb_read_done(r);
			return 0;
		}
		if (pass == 1)
			break;
		if (box_lock(box, error_r) == -1)
			return -1;
		int ret = scan_impl(box, true, false, error_r);
		if (ret == 0)
			ret = index_commit(box->ix, error_r);
		box_unlock(box);
		if (ret == -1)
			return -1;
		rec = index_find(box->ix, uid, NULL);
		if (rec == NULL) {
			*error_r = "message was deleted by another program";
			return -1;
		}
		r->rec = *rec;
		r->rec.key = NULL;
		r->fd = mb->fd;
		r->pos = rec->off;
		r->left = rec->raw;
	}
	return -1;
}
/* Compaction, in place, front to back, journalled.
 *
 * Every kept region (a kept message with its separator, and at the end everything from
 * the scanned end to EOF: mail that arrived after the snapshot) is copied down to the
 * write position w, which is always below the read position r, in chunks of at most
 * MBOX_SCAN_CHUNK that never overlap their own source (n <= r - w).  So a write lands
 * only on bytes of deleted messages or on bytes already copied lower down.
 *
 * Why in place and not a new file renamed over the old one: /var/mail is root:mail 2775,
 * the user cannot create a file there; and the MTAs (exim, procmail) and mutt lock and
 * append to the file they opened, by inode: a rename would let an MTA that opened the old
 * inode deliver into a file that is no longer the mailbox (lost mail).  A copy in the
 * index directory would double the I/O and need the mailbox's size again in free space.
 *
 * Why a journal: a kill in the middle leaves [compacted | stale bytes | not yet moved],
 * and the stale bytes parse as second copies.  So before the first write, the plan (the
 * deleted ranges, the file's dev/inode) goes to NAME.compact beside the folder's index
 * (the user's ~/mail/.postern, fsync'd), and before each chunk the slot says which chunk
 * is being copied (r, w, n and a hash of the n source bytes).  Every lock of the mbox by
 * any of our processes (imapd, ipop3d, delivery) first finishes a journalled compaction
 * (cj_recover(), from lock()): the chunk in flight is redone (its source is intact: no
 * write ever lands at or above r) or, if its source no longer matches but its
 * destination does, skipped; then the copy goes on to the current EOF, so mail an MTA
 * appended meanwhile (it locks as we do, and appends after the stale bytes) is moved
 * down with the rest.  To cut the file, a marker (a NUL, never the start of an MTA's
 * append, then a nonce) is written at w, then the slot says "cutting to w"; a recovery
 * that finds the marker at w has not cut yet (and copies anything appended after the
 * old end down first), one that does not has cut already (an MTA may have appended at
 * w since).  Nothing matches (the file was rewritten by another program meanwhile): the
 * journal is dropped with a log line and the file is left as it is.  Without a writable
 * index directory (or the journal cannot be written: a full disk) the compaction runs
 * unjournalled as before: a kill can then leave a message twice, never lose one.
 *
 * Power loss (the kernel may write pages back in any order): before a write lands on
 * bytes whose copy is not yet on disk, fdatasync() makes that copy durable, so the data
 * exists at least once on disk; with a small gap that would mean one sync per few KB, so
 * after MBOX_COMPACT_MAX_SYNCS barriers we stop adding them.  The slot is not synced per
 * chunk (that would be one sync per chunk): after a power loss in the middle the journal
 * may be behind or ahead of the data, and a recovery whose chunk does not verify drops
 * it (duplicates possible, as before the journal).  Kill -9 at any instant is exact:
 * the page cache keeps our write order.  tests/unit/storage/test_mbox.c
 * (test_compact_crash) kills at every step. */

void (*mbox_test_hook)(int step);

static void test_hook(int step)
{
	if (mbox_test_hook != NULL)
		mbox_test_hook(step);
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void hash16(const void *buf, size_t n, unsigned char out[MBOX_CJ_HASH])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < MBOX_CJ_HASH)
		fatal("EVP_Digest failed");
	memcpy(out, md, MBOX_CJ_HASH);
}

void mbox_cjournal_range(const struct mbox_cjournal *j, size_t i, uint64_t *start_r,
			 uint64_t *end_r)
{
	*start_r = get64(j->ranges + 16 * i);
	*end_r = get64(j->ranges + 16 * i + 8);
}

int mbox_cjournal_parse(const unsigned char *buf, size_t len, size_t max_ranges,
			struct mbox_cjournal *j)
{
	unsigned char h[MBOX_CJ_HASH];
	const size_t fixed = MBOX_CJ_HDR + MBOX_CJ_HASH + MBOX_CJ_SLOT;

	memset(j, 0, sizeof(*j));
	if (len < fixed || memcmp(buf, MBOX_CJ_MAGIC, 8) != 0)
		return -1;
	uint64_t ndel = get64(buf + 48);
	if (ndel == 0 || ndel > max_ranges || ndel > (len - fixed) / 16 ||
	    len != fixed + (size_t)ndel * 16)
		return -1;
	size_t hl = MBOX_CJ_HDR + (size_t)ndel * 16; /* BOUNDS: checked against len above */
	hash16(buf, hl, h);
	if (memcmp(h, buf + hl, MBOX_CJ_HASH) != 0)
		return -1;
	j->dev = get64(buf + 8);
	j->ino = get64(buf + 16);
	j->size = get64(buf + 24);
	memcpy(j->nonce, buf + 32, MBOX_CJ_MARK);
	j->ndel = (size_t)ndel;
	j->ranges = buf + MBOX_CJ_HDR;
	uint64_t prev = 0, a0 = 0;
	for (size_t i = 0; i < j->ndel; i++) {
		uint64_t a, b;
		mbox_cjournal_range(j, i, &a, &b);
		if (a < prev || b <= a || b > j->size)
			return -1;
		if (i == 0)
			a0 = a;
		prev = b;
	}
	const unsigned char *s = buf + hl + MBOX_CJ_HASH;
	hash16(s, 48, h);
	if (memcmp(h, s + 48, MBOX_CJ_HASH) != 0)
		return -1;
	j->phase = get64(s);
	j->r = get64(s + 8);
	j->w = get64(s + 16);
	j->n = get64(s + 24);
	memcpy(j->chunk, s + 32, MBOX_CJ_HASH);
	j->slot_off = hl + MBOX_CJ_HASH;
	if (j->w < a0 || j->w > j->r || j->n == 0 || j->n > j->r - j->w)
		return -1;
	if (j->phase == 1)
		return j->n <= MBOX_SCAN_CHUNK ? 0 : -1;
	if (j->phase == 2)
		return j->n <= MBOX_CJ_MARK ? 0 : -1;
	return -1;
}

struct compactor {
	struct mailbox *box;
	int jfd;                /* the journal; -1: none (unjournalled) */
	bool planned;           /* the plan is in the journal */
	struct mbox_cjournal j; /* the plan: ranges, nonce, slot_off */
	unsigned char *jbuf;    /* the journal's bytes */
	size_t jlen;
	char *buf;
	uint64_t unsynced_lo;   /* lowest source offset whose copy is not yet synced */
	unsigned syncs;
	uint64_t touched_ms;    /* last dotlock refresh */
};

/* Write the slot (the first time, the whole journal, synced with its directory). */
static int cj_slot(struct compactor *c, uint64_t phase, uint64_t r, uint64_t w, uint64_t n,
		   const unsigned char *chunk, const char **error_r)
{
	struct mbx *mb = c->box->be;
	if (c->jfd == -1)
		return 0;
	unsigned char *s = c->jbuf + c->j.slot_off;
	put64(s, phase);
	put64(s + 8, r);
	put64(s + 16, w);
	put64(s + 24, n);
	memset(s + 32, 0, MBOX_CJ_HASH);
	if (chunk != NULL)
		memcpy(s + 32, chunk, MBOX_CJ_HASH);
	hash16(s, 48, s + 48);
	int ret;
	if (!c->planned) {
		ret = pwrite_full(c->jfd, c->jbuf, c->jlen, 0);
		if (ret == 0)
			ret = fdatasync(c->jfd);
		if (ret == 0)
			ret = fsync(mb->idx_dfd);
		c->planned = ret == 0;
	} else {
		ret = pwrite_full(c->jfd, s, MBOX_CJ_SLOT, c->j.slot_off);
	}
	if (ret == -1)
		*error_r = BOX_ERRF(c->box, "write compaction journal", errno);
	return ret;
}

static void cj_marker(const struct compactor *c, unsigned char mark[MBOX_CJ_MARK])
{
	mark[0] = '\0';
	memcpy(mark + 1, c->j.nonce, MBOX_CJ_MARK - 1);
}

/* Copy every kept byte from r on down to w (ranges of the plan are skipped), to the
 * current EOF; then cut the file at the end of what was copied, and drop the journal. */
static int cj_run(struct compactor *c, uint64_t r, uint64_t w, const char **error_r)
{
	struct mbx *mb = c->box->be;
	struct stat st;
	unsigned char h[MBOX_CJ_HASH];

	if (fstat(mb->fd, &st) == -1) {
		*error_r = BOX_ERRF(c->box, "fstat mailbox", errno);
		return -1;
	}
	uint64_t eof = (uint64_t)st.st_size;
	size_t lo = 0, hi = c->j.ndel;
	while (lo < hi) { /* the first range that ends after r */
		size_t mid = lo + (hi - lo) / 2;
		uint64_t a, b;
		mbox_cjournal_range(&c->j, mid, &a, &b);
		if (b <= r)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t k = lo;
	for (;;) {
		uint64_t a = UINT64_MAX, b = 0;
		if (k < c->j.ndel)
			mbox_cjournal_range(&c->j, k, &a, &b);
		if (r >= a) {
			if (r < b)
				r = b;
			k++;
			continue;
		}
		uint64_t limit = k < c->j.ndel ? a : eof;
		if (r >= limit)
			break;
		uint64_t n = limit - r;
		if (n > MBOX_SCAN_CHUNK)
			n = MBOX_SCAN_CHUNK;
		if (n > r - w)
			n = r - w;
		if (n == 0) { /* nothing deleted before: the bytes are in place */
			r = w = limit;
			continue;
		}
		if (w + n > c->unsynced_lo && c->syncs < MBOX_COMPACT_MAX_SYNCS) {
			if (fdatasync(mb->fd) == -1) {
				*error_r = BOX_ERRF(c->box, "fdatasync mailbox", errno);
				return -1;
			}
			c->syncs++;
			c->unsynced_lo = UINT64_MAX;
		}
		ssize_t got = pread_full(mb->fd, c->buf, (size_t)n, r);
		if (got != (ssize_t)n) {
			*error_r = got < 0 ? BOX_ERRF(c->box, "read mailbox", errno) :
				"mailbox shrank during compaction";
			return -1;
		}
		hash16(c->buf, (size_t)n, h);
		if (cj_slot(c, 1, r, w, n, h, error_r) == -1)
			return -1;
		test_hook(1);
		if (pwrite_full(mb->fd, c->buf, (size_t)n, w) == -1) {
			*error_r = BOX_ERRF(c->box, "write mailbox", errno);
			return -1;
		}
		test_hook(2);
		if (c->unsynced_lo == UINT64_MAX)
			c->unsynced_lo = r;
		r += n;
		w += n;
		uint64_t now = util_now_ms();
		if (now - c->touched_ms >= MBOX_DOTLOCK_TOUCH_MS) {
			(void)lockfile_touch(mb->lockpath);
			c->touched_ms = now;
		}
	}
	if (w < eof && c->jfd != -1) {
		/* the marker says "not cut yet"; the journal must exist before it does */
		unsigned char mark[MBOX_CJ_MARK];
		size_t m = eof - w < MBOX_CJ_MARK ? (size_t)(eof - w) : MBOX_CJ_MARK;
		cj_marker(c, mark);
		bool first = !c->planned;
		if (first && cj_slot(c, 2, eof, w, m, NULL, error_r) == -1)
			return -1;
		test_hook(3);
		if (pwrite_full(mb->fd, mark, m, w) == -1) {
			*error_r = BOX_ERRF(c->box, "write mailbox", errno);
			return -1;
		}
		test_hook(4);
		if (!first && cj_slot(c, 2, eof, w, m, NULL, error_r) == -1)
			return -1;
		test_hook(5);
	}
	if (fsync(mb->fd) == -1 || ftruncate(mb->fd, (off_t)w) == -1 ||
	    fsync(mb->fd) == -1) {
		*error_r = BOX_ERRF(c->box, "truncate mailbox", errno);
		return -1;
	}
	test_hook(6);
	if (c->jfd != -1 && c->planned && unlinkat(mb->idx_dfd, mb->jname, 0) == -1 &&
	    errno != ENOENT) {
		*error_r = BOX_ERRF(c->box, "remove compaction journal", errno);
		return -1;
	}
	test_hook(7);
	return 0;
}

static void cj_drop(struct mailbox *box, const char *why)
{
	struct mbx *mb = box->be;
	char safe[LOG_MAX_FIELD + 1];
	log_sanitize(box->path, strlen(box->path), safe);
	log_err("mbox: compaction journal dropped, path=<%s>, reason=%s", safe, why);
	(void)unlinkat(mb->idx_dfd, mb->jname, 0);
}

/* Under both mbox locks, before anything reads the file: finish a compaction that was
 * interrupted (kill, crash, I/O error).  0, or -1 (the journal is kept for next time). */
static int cj_recover(struct mailbox *box, const char **error_r)
{
	struct mbx *mb = box->be;
	struct stat st, jst;

	if (mb->idx_dfd <= 0 || mb->fd == -1 || mb->jname[0] == '\0')
		return 0;
	int jfd = openat(mb->idx_dfd, mb->jname, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (jfd == -1) {
		if (errno == ENOENT)
			return 0;
		*error_r = BOX_ERRF(box, "open compaction journal", errno);
		return -1;
	}
	uint64_t max = MBOX_CJ_HDR + MBOX_CJ_HASH + MBOX_CJ_SLOT +
		16 * (uint64_t)mb->opts.max_messages;
	struct compactor c = {
		.box = box, .jfd = jfd, .planned = true, .unsynced_lo = UINT64_MAX,
		.touched_ms = util_now_ms(),
	};
	const char *why = NULL;
	int ret = 0;
	if (fstat(jfd, &jst) == -1 || fstat(mb->fd, &st) == -1) {
		*error_r = BOX_ERRF(box, "fstat", errno);
		close(jfd);
		return -1;
	}
	if (!S_ISREG(jst.st_mode) || jst.st_uid != geteuid() || (uint64_t)jst.st_size > max) {
		why = "not a journal";
		goto out;
	}
	c.jlen = (size_t)jst.st_size;
	c.jbuf = xmalloc(c.jlen + 1); /* BOUNDS: <= max, ranges bounded by max_messages */
	if (pread_full(jfd, c.jbuf, c.jlen, 0) != (ssize_t)c.jlen) {
		*error_r = BOX_ERRF(box, "read compaction journal", errno);
		ret = -1;
		goto out;
	}
	if (mbox_cjournal_parse(c.jbuf, c.jlen, mb->opts.max_messages, &c.j) == -1) {
		why = "bad journal";
		goto out;
	}
	if (c.j.dev != (uint64_t)mb->dev || c.j.ino != (uint64_t)mb->ino) {
		why = "another file";
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size, r = c.j.r, w = c.j.w, n = c.j.n;
	c.buf = xmalloc(MBOX_SCAN_CHUNK);
	unsigned char h[MBOX_CJ_HASH];
	if (c.j.phase == 1) {
		if (size < r + n) {
			why = "mailbox shrank";
			goto out;
		}
		bool src = pread_full(mb->fd, c.buf, (size_t)n, r) == (ssize_t)n;
		if (src)
			hash16(c.buf, (size_t)n, h);
		if (!src || memcmp(h, c.j.chunk, MBOX_CJ_HASH) != 0) {
			/* the source was overwritten: by the cut's marker after the last
			 * chunk was done, or by another program */
			bool dst = pread_full(mb->fd, c.buf, (size_t)n, w) == (ssize_t)n;
			if (dst)
				hash16(c.buf, (size_t)n, h);
			if (!dst || memcmp(h, c.j.chunk, MBOX_CJ_HASH) != 0) {
				why = "mailbox changed by another program";
				goto out;
			}
			r += n;
			w += n;
		}
	} else {
		unsigned char mark[MBOX_CJ_MARK], got[MBOX_CJ_MARK];
		cj_marker(&c, mark);
		if (size < w) {
			why = "mailbox shrank";
			goto out;
		}
		if (size - w < n || pread_full(mb->fd, got, (size_t)n, w) != (ssize_t)n ||
		    memcmp(got, mark, (size_t)n) != 0) {
			/* cut already (an MTA may have appended at w since), or, when the
			 * journal was written just before, the marker never written */
			if (unlinkat(mb->idx_dfd, mb->jname, 0) == -1) {
				*error_r = BOX_ERRF(box, "remove compaction journal", errno);
				ret = -1;
			}
			goto out;
		}
		if (size < r) {
			why = "mailbox shrank";
			goto out;
		}
	}
	{
		char safe[LOG_MAX_FIELD + 1];
		log_sanitize(box->path, strlen(box->path), safe);
		log_info("mbox: finishing an interrupted compaction, path=<%s>", safe);
	}
	box->stats.compactions_resumed++;
	ret = cj_run(&c, r, w, error_r);
out:
	if (why != NULL)
		cj_drop(box, why);
	free(c.buf);
	free(c.jbuf);
	close(jfd);
	return ret;
}

struct region {
	uint64_t from_off;
	bool deleted;
};

static int cmp_region(const void *x, const void *y)
{
	const struct region *a = x, *b = y;
	return a->from_off < b->from_off ? -1 : a->from_off > b->from_off;
}

/* Regions sorted by offset; end: where the indexed messages end (mail after it is kept
 * whole). */
static int compact(struct mailbox *box, const struct region *rg, size_t n, uint64_t end,
		   const struct stat *st, const char **error_r)
{
	struct mbx *mb = box->be;
	uint64_t size = (uint64_t)st->st_size;
	size_t first = 0, ndel = 0;

	while (first < n && !rg[first].deleted)
		first++;
	if (first == n)
		return 0;
	for (size_t i = first; i < n; i++)
		if (rg[i].deleted && (i == first || !rg[i - 1].deleted))
			ndel++;
	/* the plan: deleted ranges, adjacent ones merged */
	struct compactor c = {
		.box = box, .jfd = -1, .buf = xmalloc(MBOX_SCAN_CHUNK),
		.unsynced_lo = UINT64_MAX, .touched_ms = util_now_ms(),
	};
	c.jlen = MBOX_CJ_HDR + 16 * ndel + MBOX_CJ_HASH + MBOX_CJ_SLOT; /* BOUNDS: ndel<=n */
	c.jbuf = xcalloc(1, c.jlen);
	memcpy(c.jbuf, MBOX_CJ_MAGIC, 8);
	put64(c.jbuf + 8, (uint64_t)mb->dev);
	put64(c.jbuf + 16, (uint64_t)mb->ino);
	put64(c.jbuf + 24, size);
	{
		unsigned char seed[32];
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		put64(seed, (uint64_t)mb->ino);
		put64(seed + 8, size);
		put64(seed + 16, ts_ns(&ts));
		put64(seed + 24, (uint64_t)getpid());
		hash16(seed, sizeof(seed), c.jbuf + 32);
	}
	put64(c.jbuf + 48, ndel);
	size_t k = 0;
	for (size_t i = first; i < n; i++) {
		if (!rg[i].deleted)
			continue;
		uint64_t re = i + 1 < n ? rg[i + 1].from_off : end;
		if (i > first && rg[i - 1].deleted) {
			put64(c.jbuf + MBOX_CJ_HDR + 16 * (k - 1) + 8, re);
			continue;
		}
		put64(c.jbuf + MBOX_CJ_HDR + 16 * k, rg[i].from_off);
		put64(c.jbuf + MBOX_CJ_HDR + 16 * k + 8, re);
		k++;
	}
	hash16(c.jbuf, MBOX_CJ_HDR + 16 * ndel, c.jbuf + MBOX_CJ_HDR + 16 * ndel);
	c.j.ndel = ndel;
	c.j.ranges = c.jbuf + MBOX_CJ_HDR;
	memcpy(c.j.nonce, c.jbuf + 32, MBOX_CJ_MARK);
	c.j.slot_off = MBOX_CJ_HDR + 16 * ndel + MBOX_CJ_HASH;
	if (mb->idx_dfd > 0 && mb->jname[0] != '\0') {
		c.jfd = openat(mb->idx_dfd, mb->jname, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW |
			       O_CLOEXEC, 0600);
		if (c.jfd == -1)
			log_warn("mbox: compaction without a journal, error=%s", strerror(errno));
	}
	uint64_t a0 = get64(c.j.ranges);
	int ret = cj_run(&c, a0, a0, error_r);
	if (ret == -1 && c.jfd != -1 && !c.planned) {
		/* the journal could not be written (a full disk?): nothing was moved yet,
		 * so compact without it (a kill can then leave a copy twice, never none) */
		log_warn("mbox: compaction without a journal, error=%s", *error_r);
		(void)unlinkat(mb->idx_dfd, mb->jname, 0);
		close(c.jfd);
		c.jfd = -1;
		ret = cj_run(&c, a0, a0, error_r);
	}
	if (c.jfd != -1)
		close(c.jfd);
	free(c.buf);
	free(c.jbuf);
	if (ret == -1)
		return -1;
	/* Times, for mutt's "new mail" test (mtime > atime): mtime stays "now" from our
	 * writes.  If mail arrived after the scan we keep the old atime, so it still shows
	 * as new; otherwise atime = mtime: what is left has been seen. */
	struct stat now_st;
	if (fstat(mb->fd, &now_st) == 0) {
		struct timespec ts[2] = { now_st.st_mtim, { .tv_nsec = UTIME_OMIT } };
		if (size > end)
			ts[0] = st->st_atim;
		(void)futimens(mb->fd, ts);
	}
	return 0;
}

static int cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Under the index lock: take the mbox locks, rescan if the file changed (so the index is
 * exact), compact the deleted messages away, expunge them, rescan (offsets moved). */
static int mb_expunge(struct mailbox *box, const uint32_t *uids, size_t n,
		      const char **error_r)
{
	struct mbx *mb = box->be;
	struct stat st;

	if (mb->fd == -1)
		return 0;
	if (lock(box, error_r) == -1)
		return -1;
	/* under the locks, the index is made exact: offsets and the end of the last message */
	int ret = scan_impl(box, true, true, error_r);
	if (ret == 0) {
		uint64_t end = mb->end;
		uint32_t *del = xmalloc(n * sizeof(*del) + 1); /* BOUNDS: n <= count */
		memcpy(del, uids, n * sizeof(*del));
		qsort(del, n, sizeof(*del), cmp_uid);
		index_sweep(box->ix);
		size_t nrec = index_count(box->ix);
		struct region *rg = xmalloc(nrec * sizeof(*rg) + 1); /* BOUNDS: <= max */
		for (size_t i = 0; i < nrec; i++) {
			const struct index_rec *r = index_get(box->ix, i);
			rg[i].from_off = r->aux;
			rg[i].deleted = bsearch(&r->uid, del, n, sizeof(*del), cmp_uid) != NULL;
		}
		qsort(rg, nrec, sizeof(*rg), cmp_region);
		if (fstat(mb->fd, &st) == -1) {
			*error_r = BOX_ERRF(box, "fstat mailbox", errno);
			ret = -1;
		} else {
			ret = compact(box, rg, nrec, end, &st, error_r);
		}
		for (size_t i = 0; ret == 0 && i < n; i++)
			if (index_find(box->ix, del[i], NULL) != NULL)
				ret = index_expunge(box->ix, del[i], error_r);
		if (ret == 0)
			ret = scan_impl(box, true, true, error_r);
		free(rg);
		free(del);
	}
	unlock(box);
	return ret;
}

/* ---- saving ---- */

static int mb_save_begin(struct mailbox *box, struct mail_save *s, const char **error_r)
{
	if (s->batch != NULL && s->batch->fd != -1) {
		/* the batch's file: this message follows the previous ones */
		off_t at = lseek(s->batch->fd, 0, SEEK_END);
		if (at == (off_t)-1) {
			*error_r = BOX_ERRF(box, "temporary file", errno);
			return -1;
		}
		s->fd = s->batch->fd;
		s->fd_shared = true;
		s->start = (uint64_t)at;
		return 0;
	}
	const char *dir = box->st->index_dir[0] != '\0' ? box->st->index_dir : "/tmp";
	s->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (s->fd == -1 && strcmp(dir, "/tmp") != 0)
		s->fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (s->fd == -1) {
		*error_r = BOX_ERRF(box, "temporary file", errno);
		return -1;
	}
	if (s->batch != NULL) {
		s->batch->fd = s->fd;   /* the batch closes it */
		s->fd_shared = true;
	}
	return 0;
}

/* Copy the saved bytes to the end of the mbox at off, quoting lines that start with
 * "From " (">From "), ending with a line end and the separator.  Bytes written, or -1. */
static int64_t append_quoted(struct mailbox *box, struct mail_save *s, uint64_t off,
			     EVP_MD_CTX *dry, const char **error_r)
{
	struct mbx *mb = box->be;
	char *in = xmalloc(IO_CHUNK);
	char *out = xmalloc(2 * IO_CHUNK + 16); /* BOUNDS: each byte once, plus '>' per line */
	uint64_t pos = s->start, end = s->start + s->raw, wr = off;
	size_t held = 0;        /* bytes of "From " matched at a line start */
	bool bol = true, last_lf = true;
	int64_t ret = -1;

	for (;;) {
		size_t want = end - pos < IO_CHUNK ? (size_t)(end - pos) : IO_CHUNK;
		ssize_t n = want == 0 ? 0 : pread(s->fd, in, want, (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = BOX_ERRF(box, "read temporary file", errno);
			goto out;
		}
		if (n == 0)
			break;
		pos += (uint64_t)n;
		size_t o = 0;
		for (ssize_t i = 0; i < n; i++) {
			char c = in[i];
			if (bol || held > 0) {
				if (c == "From "[held]) {
					if (++held == 5) {
						memcpy(out + o, ">From ", 6);
						o += 6;
						held = 0;
						bol = false;
					}
					continue;
				}
				memcpy(out + o, "From ", held);
				o += held;
				held = 0;
				bol = false;
			}
			out[o++] = c;
			if (c == '\n')
				bol = true;
		}
		if (n > 0)
			last_lf = in[n - 1] == '\n' && held == 0;
		if (dry != NULL) {
			if (EVP_DigestUpdate(dry, out, o) != 1)
				fatal("EVP_DigestUpdate failed");
		} else if (pwrite_full(mb->fd, out, o, wr) == -1) {
			*error_r = BOX_ERRF(box, "write mailbox", errno);
			goto out;
		}
		wr += o;
	}
	size_t o = 0;
	memcpy(out, "From ", held);
	o = held;
	if (held > 0 || !last_lf)
		out[o++] = '\n';
	out[o++] = '\n'; /* the separator */
	if (dry != NULL) {
		if (EVP_DigestUpdate(dry, out, o) != 1)
			fatal("EVP_DigestUpdate failed");
	} else if (pwrite_full(mb->fd, out, o, wr) == -1) {
		*error_r = BOX_ERRF(box, "write mailbox", errno);
		goto out;
	}
	ret = (int64_t)(wr + o - off);
out:
	free(in);
	free(out);
	return ret;
}

/* The padding before a message appended at size (the new From line must follow an
 * empty line). */
static const char *append_pad(struct mailbox *box, uint64_t size)
{
	struct mbx *mb = box->be;
	char tail[2] = { 0, 0 };
	ssize_t got = size >= 2 ? pread_full(mb->fd, tail, 2, size - 2) :
		size == 1 ? pread_full(mb->fd, tail + 1, 1, 0) : 0;
	return size == 0 ? "" :
		got >= 1 && tail[1] == '\n' && (size == 1 || tail[0] == '\n') ? "" :
		tail[1] == '\n' ? "\n" : "\n\n";
}

static int from_line(const struct mail_save *s, char *out, size_t size)
{
	struct tm tm;
	time_t t = (time_t)s->date;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, size, "From MAILER-DAEMON %a %b %e %H:%M:%S %Y\n", &tm) == 0)
		return -1;
	return 0;
}

/* Append one saved message at *off (the end of the file): the padding the previous
 * message needs, a From line, the quoted bytes.  *from_off_r: where its From line is. */
static int append_one(struct mailbox *box, struct mail_save *s, uint64_t *off,
		      uint64_t *from_off_r, const char **error_r)
{
	struct mbx *mb = box->be;
	char from[96];
	uint64_t size = *off;

	const char *pad = append_pad(box, size);
	if (from_line(s, from, sizeof(from)) == -1) {
		*error_r = "bad internal date";
		return -1;
	}
	if (pwrite_full(mb->fd, pad, strlen(pad), size) == -1 ||
	    pwrite_full(mb->fd, from, strlen(from), size + strlen(pad)) == -1) {
		*error_r = BOX_ERRF(box, "write mailbox", errno);
		return -1;
	}
	uint64_t from_off = size + strlen(pad);
	int64_t w = append_quoted(box, s, from_off + strlen(from), NULL, error_r);
	if (w < 0)
		return -1;
	*from_off_r = from_off;
	*off = from_off + strlen(from) + (uint64_t)w;
	return 0;
}

/* ---- MOVE's intent ----
 *
 * mbox has no atomic move: MOVE appends copies to dst, commits them, then expunges the
 * originals from src.  So that a kill between the two leaves each message in one folder
 * (RFC 6851 3.3), the dst commit, under dst's mbox locks and before its first byte,
 * writes SRC.move beside src's index (fsync'd, its fcntl lock held while the MOVE runs):
 * dst's dev/inode and, per message, src's UID and the exact range and SHA-256 the copy
 * will have in dst (computed from the batch's file: From line, quoting, separator).
 * The MOVE removes it when the originals are expunged (or the copies taken back).  An
 * open of src that finds one, not locked by a live MOVE (mbox_move_recover(), from
 * mailbox_open()), expunges each original whose copy is in dst, byte for byte where it
 * was written, and drops the intent: a copy that is not there whole (killed before or
 * during the append) keeps its original.  dst compacted or rewritten in between (a copy
 * no longer where it was written) keeps the original too: in both, never in neither. */
#define MV_MAGIC "PSTMOV1\n"
#define MV_HDR 40
#define MV_ENT 40

void mbox_move_intent_entry(const struct mbox_move_intent *mi, size_t i, uint32_t *uid_r,
			    uint64_t *start_r, uint64_t *end_r,
			    unsigned char hash_r[MBOX_CJ_HASH])
{
	const unsigned char *e = mi->ents + MV_ENT * i;
	*uid_r = (uint32_t)get64(e);
	*start_r = get64(e + 8);
	*end_r = get64(e + 16);
	memcpy(hash_r, e + 24, MBOX_CJ_HASH);
}

int mbox_move_intent_parse(const unsigned char *buf, size_t len, size_t max_entries,
			   struct mbox_move_intent *mi)
{
	unsigned char h[MBOX_CJ_HASH];
	memset(mi, 0, sizeof(*mi));
	if (len < MV_HDR + MBOX_CJ_HASH || memcmp(buf, MV_MAGIC, 8) != 0)
		return -1;
	uint64_t n = get64(buf + 24), dl = get64(buf + 32);
	if (n == 0 || n > max_entries || dl > MBOX_MOVE_DST_MAX ||
	    n > (len - MV_HDR - MBOX_CJ_HASH) / MV_ENT ||
	    len != MV_HDR + (size_t)dl + (size_t)n * MV_ENT + MBOX_CJ_HASH)
		return -1;
	size_t body = len - MBOX_CJ_HASH; /* BOUNDS: len checked exactly above */
	hash16(buf, body, h);
	if (memcmp(h, buf + body, MBOX_CJ_HASH) != 0)
		return -1;
	mi->dev = get64(buf + 8);
	mi->ino = get64(buf + 16);
	mi->n = (size_t)n;
	mi->dst = (const char *)buf + MV_HDR;
	mi->dst_len = (size_t)dl;
	if (memchr(mi->dst, '\0', mi->dst_len) != NULL)
		return -1;
	mi->ents = buf + MV_HDR + dl;
	uint64_t prev = 0;
	for (size_t i = 0; i < mi->n; i++) {
		uint32_t uid;
		uint64_t a, b;
		mbox_move_intent_entry(mi, i, &uid, &a, &b, h);
		if (get64(mi->ents + MV_ENT * i) > UINT32_MAX || uid == 0 || a < prev || b <= a)
			return -1;
		prev = b;
	}
	return 0;
}

/* Under dst's locks, before the batch is appended at size: write src's intent.  No
 * intent (src has no index directory, a write error: logged) is not an error: the MOVE
 * goes on as copy + expunge. */
static void mv_intent_write(struct mailbox *dst, struct mail_save **saves, size_t n,
			    uint64_t size)
{
	struct mbx *mb = dst->be;
	struct mailbox *src = saves[0]->batch->move_src;
	const uint32_t *uids = saves[0]->batch->move_uids;
	if (src->st->v != &mbox_storage) /* a Maildir source (another storage) */
		return;
	struct mbx *smb = src->be;
	if (smb->idx_dfd <= 0 || smb->mvname[0] == '\0' || smb->mvfd != -1)
		return;
	size_t dl = strlen(dst->disk);
	size_t len = MV_HDR + dl + n * MV_ENT + MBOX_CJ_HASH; /* BOUNDS: n saves in memory */
	unsigned char *buf = xcalloc(1, len);
	memcpy(buf, MV_MAGIC, 8);
	put64(buf + 8, (uint64_t)mb->dev);
	put64(buf + 16, (uint64_t)mb->ino);
	put64(buf + 24, n);
	put64(buf + 32, dl);
	memcpy(buf + MV_HDR, dst->disk, dl);
	uint64_t off = size + strlen(append_pad(dst, size));
	const char *error = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL)
		fatal("out of memory: EVP_MD_CTX_new");
	for (size_t i = 0; i < n && error == NULL; i++) {
		char from[96];
		unsigned char d[EVP_MAX_MD_SIZE];
		unsigned dlen = 0;
		unsigned char *e = buf + MV_HDR + dl + MV_ENT * i;
		if (from_line(saves[i], from, sizeof(from)) == -1) {
			error = "bad internal date";
			break;
		}
		if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestUpdate(md, from, strlen(from)) != 1)
			fatal("EVP_Digest failed");
		int64_t w = append_quoted(dst, saves[i], 0, md, &error);
		if (w < 0)
			break;
		if (EVP_DigestFinal_ex(md, d, &dlen) != 1)
			fatal("EVP_DigestFinal_ex failed");
		put64(e, uids[i]);
		put64(e + 8, off);
		off += strlen(from) + (uint64_t)w;
		put64(e + 16, off);
		memcpy(e + 24, d, MBOX_CJ_HASH);
	}
	EVP_MD_CTX_free(md);
	if (error == NULL) {
		hash16(buf, len - MBOX_CJ_HASH, buf + len - MBOX_CJ_HASH);
		int fd = openat(smb->idx_dfd, smb->mvname, O_RDWR | O_CREAT | O_NOFOLLOW |
				O_CLOEXEC, 0600);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fd == -1 || fcntl(fd, F_SETLK, &fl) == -1 || ftruncate(fd, 0) == -1 ||
		    pwrite_full(fd, buf, len, 0) == -1 || fdatasync(fd) == -1 ||
		    fsync(smb->idx_dfd) == -1) {
			error = strerror(errno);
			if (fd != -1) {
				(void)unlinkat(smb->idx_dfd, smb->mvname, 0);
				close(fd);
			}
		} else {
			smb->mvfd = fd; /* locked until mbox_move_done() */
		}
	}
	if (error != NULL)
		log_warn("mbox: MOVE without an intent, error=%s", error);
	free(buf);
}

void mbox_move_done(struct mailbox *src, bool remove)
{
	struct mbx *smb = src->be;
	if (src->st->v != &mbox_storage || smb == NULL || smb->mvfd == -1)
		return;
	if (remove)
		(void)unlinkat(smb->idx_dfd, smb->mvname, 0);
	close(smb->mvfd);
	smb->mvfd = -1;
}

static void mv_drop(struct mailbox *box, const char *why)
{
	struct mbx *mb = box->be;
	if (why != NULL) {
		char safe[LOG_MAX_FIELD + 1];
		log_sanitize(box->path, strlen(box->path), safe);
		log_warn("mbox: MOVE intent dropped, path=<%s>, reason=%s", safe, why);
	}
	(void)unlinkat(mb->idx_dfd, mb->mvname, 0);
}

/* Does dst hold these exact bytes at [start, end)? */
static bool mv_copy_there(int fd, uint64_t start, uint64_t end,
			  const unsigned char want[MBOX_CJ_HASH], char *buf)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		fatal("EVP_DigestInit_ex failed");
	bool ok = true;
	for (uint64_t off = start; ok && off < end;) {
		size_t want_n = end - off < MBOX_SCAN_CHUNK ? (size_t)(end - off) : MBOX_SCAN_CHUNK;
		ssize_t got = pread_full(fd, buf, want_n, off);
		ok = got == (ssize_t)want_n && EVP_DigestUpdate(md, buf, want_n) == 1;
		off += want_n;
	}
	ok = ok && EVP_DigestFinal_ex(md, d, &dlen) == 1 && memcmp(d, want, MBOX_CJ_HASH) == 0;
	EVP_MD_CTX_free(md);
	return ok;
}

static int mb_folder_path(struct mail_storage *st, const char *disk, char *out,
			  size_t size);

int mbox_move_recover(struct mailbox *box, const char **error_r)
{
	struct mbx *mb = box->be;
	struct stat st;
	if (box->st->v != &mbox_storage || mb->idx_dfd <= 0 || mb->mvname[0] == '\0' ||
	    mb->mvfd != -1)
		return 0;
	int fd = openat(mb->idx_dfd, mb->mvname, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return 0;
	/* a live MOVE holds it */
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(fd, F_SETLK, &fl) == -1) {
		close(fd);
		return 0;
	}
	size_t max = MV_HDR + MBOX_MOVE_DST_MAX + MBOX_CJ_HASH +
		MV_ENT * mb->opts.max_messages;
	const char *why = NULL;
	unsigned char *buf = NULL;
	char *chunk = NULL;
	uint32_t *uids = NULL;
	int dfd = -1, ret = 0;
	struct mbox_move_intent mi;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (uint64_t)st.st_size > max) {
		why = "not an intent";
		goto out;
	}
	size_t len = (size_t)st.st_size;
	buf = xmalloc(len + 1); /* BOUNDS: <= max */
	if (pread_full(fd, buf, len, 0) != (ssize_t)len ||
	    mbox_move_intent_parse(buf, len, mb->opts.max_messages, &mi) == -1) {
		why = "bad intent";
		goto out;
	}
	char disk[MBOX_MOVE_DST_MAX + 1], path[STORAGE_PATH_MAX];
	memcpy(disk, mi.dst, mi.dst_len);
	disk[mi.dst_len] = '\0';
	if (mb_folder_path(box->st, mi.dst_len == 0 ? NULL : disk, path, sizeof(path)) == -1 ||
	    (dfd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) == -1 ||
	    fstat(dfd, &st) == -1 || (uint64_t)st.st_dev != mi.dev ||
	    (uint64_t)st.st_ino != mi.ino) {
		why = "the copies' folder is gone or replaced: originals kept";
		goto out;
	}
	chunk = xmalloc(MBOX_SCAN_CHUNK);
	uids = xmalloc(mi.n * sizeof(*uids) + 1); /* BOUNDS: n <= max_messages */
	size_t k = 0;
	for (size_t i = 0; i < mi.n; i++) {
		uint32_t uid;
		uint64_t a, b;
		unsigned char h[MBOX_CJ_HASH];
		mbox_move_intent_entry(&mi, i, &uid, &a, &b, h);
		if (b <= (uint64_t)st.st_size && index_find(box->ix, uid, NULL) != NULL &&
		    mv_copy_there(dfd, a, b, h, chunk))
			uids[k++] = uid;
	}
	if (k > 0 && mailbox_expunge(box, uids, k, error_r) == -1) {
		ret = -1; /* the intent stays for the next open */
		goto out;
	}
	char safe[LOG_MAX_FIELD + 1];
	log_sanitize(box->path, strlen(box->path), safe);
	log_info("mbox: finished an interrupted MOVE, path=<%s>, moved=%zu, kept=%zu", safe,
		 k, mi.n - k);
	mv_drop(box, NULL);
out:
	if (why != NULL)
		mv_drop(box, why);
	if (dfd != -1)
		close(dfd);
	free(uids);
	free(chunk);
	free(buf);
	close(fd);
	return ret;
}

static int off_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The batch (one save is a batch of one): all appended under one hold of the mbox
 * locks, synced, scanned; any failure cuts the file back to its old size, so a full
 * disk leaves neither a half-written message nor the first ones of the batch. */
static int mb_save_commit(struct mailbox *box, struct mail_save **saves, size_t n,
			  const char **error_r)
{
	struct mbx *mb = box->be;
	struct stat st;

	if (mb->fd == -1 && open_file(box, true, error_r) == -1)
		return -1;
	if (lock(box, error_r) == -1)
		return -1;
	int ret = -1;
	uint64_t *offs = xcalloc(n, sizeof(*offs));
	if (fstat(mb->fd, &st) == -1) {
		*error_r = BOX_ERRF(box, "fstat mailbox", errno);
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size, off = size;
	if (saves[0]->batch != NULL && saves[0]->batch->move_src != NULL)
		mv_intent_write(box, saves, n, size);
	test_hook(10);
	for (size_t i = 0; i < n; i++) {
		if (append_one(box, saves[i], &off, &offs[i], error_r) == -1)
			goto undo;
		test_hook(11);
	}
	if (fsync(mb->fd) == -1) {
		*error_r = BOX_ERRF(box, "fsync mailbox", errno);
		goto undo;
	}
	if (scan_impl(box, true, true, error_r) == -1)
		goto undo;
	/* offs ascend: the new records are the last ones, found by their From offsets */
	size_t found = 0;
	for (size_t i = index_count(box->ix); i-- > 0 && found < n;) {
		const struct index_rec *rec = index_get(box->ix, i);
		if (rec == NULL || rec->aux < size)
			continue;
		uint64_t *hit = bsearch(&rec->aux, offs, n, sizeof(*offs), off_cmp);
		if (hit == NULL)
			continue;
		struct mail_save *s = saves[hit - offs];
		s->uid = rec->uid;
		found++;
		/* the APPEND's date too when no flags were given (the scan dated the
		 * record "now") */
		if (s->flags != 0 || rec->date != s->date) {
			struct index_rec r2 = *rec;
			r2.flags = s->flags | (rec->flags & INDEX_FLAG_RECENT);
			r2.date = s->date;
			if (index_update(box->ix, &r2, error_r) == -1)
				goto undo;
		}
	}
	if (found < n) {
		*error_r = "saved messages not found in the index";
		goto undo;
	}
	test_hook(12);
	ret = 0;
	goto out;
undo:
	/* neither a half-written message nor a part of the batch may stay */
	if (ftruncate(mb->fd, (off_t)size) == -1 || fsync(mb->fd) == -1)
		log_err("mbox: cannot cut a failed append, error=%s", strerror(errno));
out:
	free(offs);
	unlock(box);
	return ret;
}

static int mb_save_finish(struct mailbox *box, struct mail_save *s, const char **error_r)
{
	return mb_save_commit(box, &s, 1, error_r);
}

static void mb_save_abort(struct mailbox *box, struct mail_save *s)
{
}

/* ---- the rest of the table ---- */

/* The index name of folder disk (a path below ~/mail): "f-NAME" for a short name at the
 * top (as before folders had levels, so existing indexes are kept), else "h-" and 32 hex
 * digits of the SHA-256 of the disk name (an index name has no "/" and is short). */
#define MB_INDEX_NAME_MAX 52
static void mb_index_name(const char *disk, char out[MB_INDEX_NAME_MAX])
{
	size_t len = strlen(disk);
	if (len <= 48 && strchr(disk, '/') == NULL) {
		memcpy(out, "f-", 2);
		memcpy(out + 2, disk, len + 1); /* BOUNDS: 2 + 48 + 1 <= MB_INDEX_NAME_MAX */
		return;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_Digest(disk, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16)
		fatal("EVP_Digest failed");
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "h-", 2);
	for (size_t i = 0; i < 16; i++) {
		out[2 + 2 * i] = hex[md[i] >> 4];
		out[3 + 2 * i] = hex[md[i] & 15];
	}
	out[34] = '\0';
}

static int mb_open(struct mailbox *box, const char **error_r)
{
	struct mbx *mb = xcalloc(1, sizeof(*mb));
	box->be = mb;
	mb->fd = -1;
	mb->mvfd = -1;
	mbox_opts_default(&mb->opts);
	if (util_snprintf(mb->lockpath, sizeof(mb->lockpath), "%s.lock", box->path) < 0) {
		*error_r = "mailbox path too long";
		return -1;
	}
	if (open_file(box, false, error_r) == -1)
		return -1;
	if (mb->fd == -1 && strcmp(box->name, "INBOX") != 0) {
		*error_r = "no such folder";
		return -1;
	}
	/* the index beside the mbox: ~/mail/.postern/INBOX, f-NAME or h-HASH */
	const char *dir = box->st->index_dir;
	char name[MB_INDEX_NAME_MAX];
	if (strcmp(box->name, "INBOX") == 0)
		memcpy(name, "INBOX", 6);
	else
		mb_index_name(box->disk, name);
	int dfd = -1;
	if (dir[0] != '\0') {
		(void)mkdir(box->st->folders, 0700);
		(void)mkdir(dir, 0700);
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (dfd != -1) {
		struct stat st;
		int lfd = -1;
		char lname[MB_INDEX_NAME_MAX + 16];
		if (fstat(dfd, &st) == 0 && st.st_uid == geteuid() &&
		    util_snprintf(lname, sizeof(lname), "%s.lock", name) >= 0)
			lfd = openat(dfd, lname, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (lfd != -1) {
			close(lfd);
			mb->idx_dfd = dfd;
			/* BOUNDS: MB_INDEX_NAME_MAX + 8 <= sizeof(jname) */
			if (util_snprintf(mb->jname, sizeof(mb->jname), "%s.compact", name) < 0)
				mb->jname[0] = '\0';
			if (util_snprintf(mb->mvname, sizeof(mb->mvname), "%s.move", name) < 0)
				mb->mvname[0] = '\0';
			return index_open(dfd, name, &box->ix, error_r);
		}
		close(dfd);
	}
	log_warn("mbox: index kept in memory (no writable ~/mail/.postern)");
	box->ix = index_new_memory();
	return 0;
}

static void mb_close(struct mailbox *box)
{
	struct mbx *mb = box->be;
	if (mb == NULL)
		return;
	unlock(box);
	if (mb->fd != -1)
		close(mb->fd);
	if (mb->mvfd != -1)
		close(mb->mvfd); /* a MOVE that did not finish: the next open completes it */
	index_close(&box->ix); /* before its directory fd */
	if (mb->idx_dfd > 0)
		close(mb->idx_dfd);
	free(mb);
	box->be = NULL;
}

static int mb_set_flags(struct mailbox *box, struct index_rec *rec, const char **error_r)
{
	return 0; /* flags live in the index only: the mbox is not rewritten */
}

static int mb_watch(struct mailbox *box, int ifd)
{
	uint32_t mask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
		IN_DELETE;
	char dir[STORAGE_PATH_MAX];
	/* the spool directory (the file may be created or replaced) and the index's */
	if (util_snprintf(dir, sizeof(dir), "%s", box->path) < 0)
		return -1;
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir)
		*slash = '\0';
	if (inotify_add_watch(ifd, box->path, mask) == -1 && errno != ENOENT)
		return -1;
	if (inotify_add_watch(ifd, dir, IN_CREATE | IN_MOVED_TO | IN_DELETE) == -1)
		return -1;
	if (box->st->index_dir[0] != '\0' &&
	    inotify_add_watch(ifd, box->st->index_dir, mask | IN_DONT_FOLLOW) == -1)
		return -1;
	return 0;
}

static void mb_pop3_uidl(const struct mailbox *box, const struct index_rec *rec,
			 char uidl_r[POP3_UIDL_MAX + 1])
{
	size_t n = rec->key_len > POP3_UIDL_MAX ? POP3_UIDL_MAX : rec->key_len;
	memcpy(uidl_r, rec->key, n);
	uidl_r[n] = '\0';
}

/* ---- folders: files in ~/mail, a directory per level ---- */

static int mb_folder_path(struct mail_storage *st, const char *disk, char *out, size_t size)
{
	if (disk == NULL)
		return util_snprintf(out, size, "%s", st->inbox) < 0 ? -1 : 0;
	if (st->folders[0] == '\0')
		return -1;
	return util_snprintf(out, size, "%s/%s", st->folders, disk) < 0 ? -1 : 0;
}

/* Walk dir (rel: its path below ~/mail, "" at the top): files are folders, directories
 * are NOSELECT parents; names starting with "." (.postern, .subscriptions, a dotlock's
 * temporary files) and symbolic links are skipped. */
static void mb_walk(int dfd, char *rel, size_t rlen, unsigned depth,
		    void (*add)(void *, const char *, bool), void *ctx, unsigned *budget)
{
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL && *budget > 0) {
		struct stat sb;
		size_t nl = strlen(de->d_name);
		if (de->d_name[0] == '.' || nl > STORAGE_NAME_LEVEL_MAX ||
		    rlen + nl + 2 > STORAGE_NAME_MAX * 2 ||
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		size_t l = rlen;
		if (l > 0)
			rel[l++] = '/';
		memcpy(rel + l, de->d_name, nl + 1); /* BOUNDS: checked above */
		(*budget)--;
		if (S_ISREG(sb.st_mode)) {
			add(ctx, rel, false);
		} else if (S_ISDIR(sb.st_mode)) {
			add(ctx, rel, true);
			int sub = depth + 1 < STORAGE_NAME_DEPTH ?
				openat(dirfd(d), de->d_name,
				       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
			if (sub != -1)
				mb_walk(sub, rel, l + nl, depth + 1, add, ctx, budget);
		}
		rel[rlen] = '\0';
	}
	closedir(d);
}

static int mb_folder_list(struct mail_storage *st,
			  void (*add)(void *, const char *, bool), void *ctx,
			  const char **error_r)
{
	int dfd = st->folders[0] != '\0' ?
		open(st->folders, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (dfd == -1) {
		if (st->folders[0] == '\0' || errno == ENOENT)
			return 0;
		*error_r = storage_errf(st->err, sizeof(st->err), "list folders", errno);
		return -1;
	}
	char rel[STORAGE_NAME_MAX * 2 + 2] = "";
	unsigned budget = STORAGE_FOLDERS_MAX * 2;
	mb_walk(dfd, rel, 0, 0, add, ctx, &budget);
	return 0;
}

/* The directories above disk (a path below ~/mail).  0, or -1 when one of them is an
 * mbox file (it holds mail: it cannot have sub-folders). */
static int mb_parents(struct mail_storage *st, const char *disk, const char **error_r)
{
	char p[STORAGE_PATH_MAX];
	(void)mkdir(st->folders, 0700);
	if (util_snprintf(p, sizeof(p), "%s/%s", st->folders, disk) < 0) {
		*error_r = "folder path too long";
		return -1;
	}
	size_t base = strlen(st->folders) + 1;
	for (char *s = strchr(p + base, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		struct stat sb;
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			*error_r = storage_errf(st->err, sizeof(st->err), "create folder", errno);
			return -1;
		}
		if (lstat(p, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
			*error_r = "a parent folder holds mail: an mbox folder cannot have sub-folders";
			return -1;
		}
		*s = '/';
	}
	return 0;
}

static int mb_folder_create(struct mail_storage *st, const char *disk, const char **error_r)
{
	char p[STORAGE_PATH_MAX];
	if (mb_folder_path(st, disk, p, sizeof(p)) == -1) {
		*error_r = "folder path too long";
		return -1;
	}
	if (mb_parents(st, disk, error_r) == -1)
		return -1;
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		*error_r = errno == EEXIST ? "folder exists" :
			storage_errf(st->err, sizeof(st->err), "create folder", errno);
		return -1;
	}
	close(fd);
	return 0;
}

/* The index files of a folder follow it: NAME, NAME.log, NAME.lock, a compaction
 * journal NAME.compact and a MOVE's intent NAME.move in index_dir. */
static void index_files(struct mail_storage *st, const char *from, const char *to)
{
	static const char *const sfx[] = { "", ".log", ".lock", ".compact", ".move" };
	char fn[MB_INDEX_NAME_MAX], tn[MB_INDEX_NAME_MAX];
	mb_index_name(from, fn);
	if (to != NULL)
		mb_index_name(to, tn);
	for (size_t i = 0; i < 5 && st->index_dir[0] != '\0'; i++) {
		char a[STORAGE_PATH_MAX + 80], b[STORAGE_PATH_MAX + 80];
		if (util_snprintf(a, sizeof(a), "%s/%s%s", st->index_dir, fn, sfx[i]) < 0)
			continue;
		if (to == NULL)
			(void)unlink(a);
		else if (util_snprintf(b, sizeof(b), "%s/%s%s", st->index_dir, tn, sfx[i]) >= 0)
			(void)rename(a, b);
	}
}

struct moved {
	struct mail_storage *st;
	const char *from, *to;
};

/* After a directory moved: each folder in it takes its index along. */
static void index_follow(void *ctx, const char *rel, bool noselect)
{
	struct moved *m = ctx;
	char a[STORAGE_NAME_MAX * 4], b[STORAGE_NAME_MAX * 4];
	if (noselect || util_snprintf(a, sizeof(a), "%s/%s", m->from, rel) < 0 ||
	    util_snprintf(b, sizeof(b), "%s/%s", m->to, rel) < 0)
		return;
	index_files(m->st, a, b);
}

static int mb_folder_rename(struct mail_storage *st, const char *from, const char *to,
			    const char **error_r)
{
	char a[STORAGE_PATH_MAX], b[STORAGE_PATH_MAX];

	if (mb_folder_path(st, from, a, sizeof(a)) == -1 ||
	    mb_folder_path(st, to, b, sizeof(b)) == -1) {
		*error_r = "folder path too long";
		return -1;
	}
	if (mb_parents(st, to, error_r) == -1 ||
	    storage_rename_folder_path(st, a, b, error_r) == -1)
		return -1;
	struct stat sb;
	if (lstat(b, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		int dfd = open(b, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd != -1) {
			struct moved m = { st, from, to };
			char rel[STORAGE_NAME_MAX * 2 + 2] = "";
			unsigned budget = STORAGE_FOLDERS_MAX * 2;
			mb_walk(dfd, rel, 0, 0, index_follow, &m, &budget);
		}
	} else {
		index_files(st, from, to);
	}
	return 0;
}

static int mb_folder_delete(struct mail_storage *st, const char *disk, const char **error_r)
{
	char p[STORAGE_PATH_MAX];
	struct stat sb;
	if (mb_folder_path(st, disk, p, sizeof(p)) == -1) {
		*error_r = "folder path too long";
		return -1;
	}
	if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		if (rmdir(p) == -1) {
			*error_r = errno == ENOTEMPTY || errno == EEXIST ? "folder has sub-folders" :
				storage_errf(st->err, sizeof(st->err), "delete folder", errno);
			return -1;
		}
		return 0;
	}
	if (unlink(p) == -1) {
		*error_r = errno == ENOENT ? "no such folder" :
			storage_errf(st->err, sizeof(st->err), "delete folder", errno);
		return -1;
	}
	index_files(st, disk, NULL);
	return 0;
}

static const struct mailbox_vfuncs mb_box = {
	.open = mb_open,
	.close = mb_close,
	.scan = mb_scan,
	.msg_open = mb_msg_open,
	.read_check = mb_read_check,
	.read_done = mb_read_done,
	.set_flags = mb_set_flags,
	.expunge = mb_expunge,
	.save_begin = mb_save_begin,
	.save_finish = mb_save_finish,
	.save_abort = mb_save_abort,
	.save_commit = mb_save_commit,
	.watch = mb_watch,
	.pop3_uidl = mb_pop3_uidl,
	.key_ok = mb_key_ok,
};

const struct storage_vfuncs mbox_storage = {
	.kind = "mbox",
	.folder_path = mb_folder_path,
	.folder_list = mb_folder_list,
	.folder_create = mb_folder_create,
	.folder_rename = mb_folder_rename,
	.folder_delete = mb_folder_delete,
	.box = &mb_box,
};
