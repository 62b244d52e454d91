/* mbox backend: the splitter (mbox_parser_*), locking, snapshot, reads and the in-place
 * compaction that POP3 UPDATE needs.  The format rules are in mbox.h.
 *
 * Locking, interoperable with Debian's MTAs (exim, postfix, procmail) and mutt:
 * a dotlock PATH.lock made by liblockfile (which runs the setgid-mail dotlockfile helper
 * when /var/mail is not writable by the user), then an fcntl write lock on the whole file
 * (F_SETLK retried for up to lock_timeout_ms: no alarm()).  Dotlock first, fcntl second,
 * as exim and Dovecot take them.  Both are held only while we scan (mbox_open) and while
 * we compact (mbox_commit); reads in between go by offset and check that the message's
 * From line is still in place. */
#include <errno.h>
#include <fcntl.h>
#include <lockfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "base/log.h"
#include "storage/mbox.h"
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

struct mbox {
	char path[4096];
	char lockpath[4096 + 8];
	int fd;                  /* -1: the file did not exist */
	dev_t dev;
	ino_t ino;
	struct mbox_opts opts;
	bool locked, dotlocked, committed;
	struct mstore_msg *msgs;
	struct mbox_msginfo *info;
	size_t count;
	uint64_t end;            /* scanned end: mail after it arrived after the snapshot */
};

static char errbuf[256];

static const char *errf(const char *what, int err)
{
	if (util_snprintf(errbuf, sizeof(errbuf), "%s: %s", what, strerror(err)) < 0)
		return what;
	return errbuf;
}

void mbox_opts_default(struct mbox_opts *o)
{
	o->max_messages = MSTORE_MAX_MESSAGES;
	o->dotlock_retries = MBOX_DOTLOCK_RETRIES;
	o->lock_timeout_ms = MBOX_LOCK_TIMEOUT_MS;
}

size_t mbox_count(const struct mbox *mb)
{
	return mb->count;
}

struct mstore_msg *mbox_msg(struct mbox *mb, size_t i)
{
	return i < mb->count ? &mb->msgs[i] : NULL;
}

static void unlock(struct mbox *mb)
{
	if (mb->locked) {
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
		(void)fcntl(mb->fd, F_SETLK, &fl);
		mb->locked = false;
	}
	if (mb->dotlocked) {
		if (lockfile_remove(mb->lockpath) != 0)
			log_warn("mbox: cannot remove lock file, path=%s, error=%s",
				 mb->lockpath, strerror(errno));
		mb->dotlocked = false;
	}
}

static int lock(struct mbox *mb, const char **error_r)
{
	int r = lockfile_create(mb->lockpath, mb->opts.dotlock_retries, L_PID);
	if (r != L_SUCCESS) {
		*error_r = r == L_MAXTRYS ?
			"mailbox is locked by another program (dotlock)" :
			"cannot create the mailbox lock file";
		return -1;
	}
	mb->dotlocked = true;

	uint64_t start = util_now_ms();
	for (;;) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fcntl(mb->fd, F_SETLK, &fl) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EACCES) {
			*error_r = errf("fcntl lock", errno);
			unlock(mb);
			return -1;
		}
		if (util_now_ms() - start >= mb->opts.lock_timeout_ms) {
			*error_r = "mailbox is locked by another program (fcntl)";
			unlock(mb);
			return -1;
		}
		util_sleep_ms(MBOX_LOCK_POLL_MS);
	}
	mb->locked = true;

	/* Is the path still this file?  Someone may have renamed a new one into place. */
	struct stat st;
	if (lstat(mb->path, &st) == -1 || st.st_dev != mb->dev || st.st_ino != mb->ino) {
		*error_r = "mailbox was replaced by another program";
		unlock(mb);
		return -1;
	}
	return 0;
}

/* Open the file: not a symlink, a regular file owned by us. */
static int open_file(struct mbox *mb, const char **error_r)
{
	struct stat st;

	mb->fd = open(mb->path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (mb->fd == -1) {
		if (errno == ENOENT)
			return 0;
		*error_r = errno == ELOOP ? "mailbox is a symbolic link" :
			errf("cannot open the mailbox", errno);
		return -1;
	}
	if (fstat(mb->fd, &st) == -1) {
		*error_r = errf("fstat mailbox", errno);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = "mailbox is not a regular file";
		return -1;
	}
	if (st.st_uid != geteuid()) {
		*error_r = "mailbox is not owned by the user";
		return -1;
	}
	int fl = fcntl(mb->fd, F_GETFL);
	if (fl == -1 || fcntl(mb->fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		*error_r = errf("fcntl mailbox", errno);
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
static int feed_file(int fd, struct mbox_parser *p, uint64_t start, uint64_t end,
		     const char **error_r)
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
			*error_r = errf("read mailbox", errno);
			ret = -1;
			break;
		}
		if (n == 0)
			break;
		off += (uint64_t)n;
		int r = mbox_parser_feed(p, buf, (size_t)n);
		if (r != 0)
			break;
	}
	free(buf);
	if (ret == 0 && mbox_parser_finish(p) == -1) {
		*error_r = "not an mbox file (it does not start with \"From \")";
		ret = -1;
	}
	return ret;
}

static int cmp_digest_idx(const void *a, const void *b, void *ctx)
{
	const struct mbox_msginfo *info = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = memcmp(info[x].digest, info[y].digest, MBOX_DIGEST_LEN);
	if (c != 0)
		return c;
	return x < y ? -1 : x > y;
}

/* UIDL: the digest in hex; equal digests (identical From line and header) in file order
 * get "-2", "-3"... */
static void make_uids(struct mbox *mb)
{
	static const char hex[] = "0123456789abcdef";
	size_t *idx = xmalloc(mb->count * sizeof(*idx) + 1); /* BOUNDS: count <= max_messages */

	for (size_t i = 0; i < mb->count; i++) {
		char *u = mb->msgs[i].uid;
		for (size_t j = 0; j < MBOX_DIGEST_LEN; j++) {
			u[2 * j] = hex[mb->info[i].digest[j] >> 4];
			u[2 * j + 1] = hex[mb->info[i].digest[j] & 15];
		}
		u[2 * MBOX_DIGEST_LEN] = '\0';
		idx[i] = i;
	}
	qsort_r(idx, mb->count, sizeof(*idx), cmp_digest_idx, mb->info);
	size_t dup = 1;
	for (size_t k = 1; k < mb->count; k++) {
		if (memcmp(mb->info[idx[k]].digest, mb->info[idx[k - 1]].digest,
			   MBOX_DIGEST_LEN) != 0) {
			dup = 1;
			continue;
		}
		dup++;
		char *u = mb->msgs[idx[k]].uid;
		/* 32 + '-' + at most 7 digits (count <= 1000000) fits POP3_UIDL_MAX */
		if (util_snprintf(u + 2 * MBOX_DIGEST_LEN, sizeof(mb->msgs[0].uid) -
				  2 * MBOX_DIGEST_LEN, "-%zu", dup) < 0)
			fatal("mbox: uid suffix does not fit");
	}
	free(idx);
}

static int scan(struct mbox *mb, const char **error_r)
{
	struct mbox_parser *p = mbox_parser_new(0, mb->opts.max_messages, false);
	int ret = feed_file(mb->fd, p, 0, UINT64_MAX, error_r);

	if (ret == 0) {
		size_t n;
		const struct mbox_msginfo *m = mbox_parser_msgs(p, &n);
		mb->count = n;
		mb->end = mbox_parser_end(p);
		mb->info = xmalloc(n * sizeof(*mb->info) + 1); /* BOUNDS: n <= max_messages */
		if (n > 0)
			memcpy(mb->info, m, n * sizeof(*mb->info));
		mb->msgs = xcalloc(n, sizeof(*mb->msgs));
		for (size_t i = 0; i < n; i++) {
			mb->msgs[i].size = m[i].size;
			mb->msgs[i].offset = m[i].body_off;
			mb->msgs[i].raw_len = m[i].raw_len;
		}
		make_uids(mb);
	}
	mbox_parser_free(&p);
	return ret;
}

int mbox_open(const char *path, const struct mbox_opts *o, struct mbox **r,
	      const char **error_r)
{
	struct mbox *mb = xcalloc(1, sizeof(*mb));

	mb->fd = -1;
	if (o != NULL)
		mb->opts = *o;
	else
		mbox_opts_default(&mb->opts);
	if (util_snprintf(mb->path, sizeof(mb->path), "%s", path) < 0 ||
	    util_snprintf(mb->lockpath, sizeof(mb->lockpath), "%s.lock", path) < 0) {
		*error_r = "mailbox path too long";
		free(mb);
		return -1;
	}
	if (open_file(mb, error_r) == -1)
		goto fail;
	if (mb->fd != -1) {
		if (lock(mb, error_r) == -1)
			goto fail;
		int ret = scan(mb, error_r);
		unlock(mb);
		if (ret == -1)
			goto fail;
	}
	*r = mb;
	return 0;
fail:
	mbox_close(&mb);
	return -1;
}

int mbox_msg_range(struct mbox *mb, size_t i, int *fd_r, uint64_t *off_r, uint64_t *len_r,
		   const char **error_r)
{
	char head[FROM_LEN];
	struct stat st;

	if (i >= mb->count || mb->fd == -1 || mb->committed) {
		*error_r = "no such message";
		return -1;
	}
	const struct mbox_msginfo *m = &mb->info[i];
	if (fstat(mb->fd, &st) == -1) {
		*error_r = errf("fstat mailbox", errno);
		return -1;
	}
	if ((uint64_t)st.st_size < m->body_off + m->raw_len ||
	    pread_full(mb->fd, head, FROM_LEN, m->from_off) != FROM_LEN ||
	    memcmp(head, from_word, FROM_LEN) != 0) {
		*error_r = "mailbox was changed by another program";
		return -1;
	}
	*fd_r = mb->fd;
	*off_r = m->body_off;
	*len_r = m->raw_len;
	return 0;
}

/* Under the lock: is the file still what we scanned?  Every message's From line and
 * header must hash as before at the same offset, the file may only have grown, and
 * anything after the scanned end must start a new message. */
static int verify(struct mbox *mb, uint64_t size, const char **error_r)
{
	const char *changed = "mailbox was changed by another program; nothing deleted";

	if (size < mb->end) {
		*error_r = changed;
		return -1;
	}
	for (size_t i = 0; i < mb->count; i++) {
		const struct mbox_msginfo *m = &mb->info[i];
		uint64_t region_end = i + 1 < mb->count ? mb->info[i + 1].from_off : mb->end;
		struct mbox_parser *p = mbox_parser_new(m->from_off, 1, true);
		const char *err;
		int ret = feed_file(mb->fd, p, m->from_off, region_end, &err);
		size_t n = 0;
		const struct mbox_msginfo *v = ret == 0 ? mbox_parser_msgs(p, &n) : NULL;
		bool same = n == 1 && v[0].from_off == m->from_off &&
			v[0].body_off == m->body_off &&
			memcmp(v[0].digest, m->digest, MBOX_DIGEST_LEN) == 0;
		mbox_parser_free(&p);
		if (!same) {
			*error_r = changed;
			return -1;
		}
	}
	if (size > mb->end) {
		char head[FROM_LEN];
		if (pread_full(mb->fd, head, FROM_LEN, mb->end) != FROM_LEN ||
		    memcmp(head, from_word, FROM_LEN) != 0) {
			*error_r = changed;
			return -1;
		}
	}
	return 0;
}

/* Compaction, in place, front to back.
 *
 * Every kept region (a kept message with its separator, and at the end everything from
 * the scanned end to EOF: mail that arrived after the snapshot) is copied down to the
 * write position, which is always below the read position.  So a write only ever lands
 * on bytes of deleted messages or on bytes that were already copied lower down: at any
 * moment every kept byte exists at least once (at its old or at its new place), and a
 * crash in the middle leaves some data twice but loses none.  No temporary file is
 * needed, so a full disk cannot make us fail half way (we never grow the file).
 *
 * Two details keep that true beyond a process crash (kill, OOM), where the page cache
 * keeps our write order anyway, for a power loss too, where the kernel may write pages
 * back in any order:
 * - one pwrite() never overlaps the bytes it copies (chunk <= gap);
 * - before a write lands on bytes whose copy is not yet on disk, fdatasync() makes that
 *   copy durable.  With a small gap that would mean one sync per few KB, so after
 *   MBOX_COMPACT_MAX_SYNCS barriers we stop adding them (then only a power loss in that
 *   window could cost data; a process crash still cannot).
 * At the end: fsync, then ftruncate (only bytes already copied are cut), then fsync. */
struct compactor {
	struct mbox *mb;
	char *buf;
	uint64_t wr;            /* write position */
	uint64_t unsynced_lo;   /* lowest source offset whose copy is not yet synced */
	unsigned syncs;
	uint64_t touched_ms;    /* last dotlock refresh */
};

static int copy_down(struct compactor *c, uint64_t from, uint64_t to, const char **error_r)
{
	while (from < to) {
		uint64_t gap = from - c->wr; /* > 0: something before was deleted */
		size_t n = MBOX_SCAN_CHUNK;
		if (to - from < n)
			n = (size_t)(to - from);
		if (gap < n)
			n = (size_t)gap;
		if (c->wr + n > c->unsynced_lo && c->syncs < MBOX_COMPACT_MAX_SYNCS) {
			if (fdatasync(c->mb->fd) == -1) {
				*error_r = errf("fdatasync mailbox", errno);
				return -1;
			}
			c->syncs++;
			c->unsynced_lo = UINT64_MAX;
		}
		ssize_t got = pread_full(c->mb->fd, c->buf, n, from);
		if (got != (ssize_t)n) {
			*error_r = got < 0 ? errf("read mailbox", errno) :
				"mailbox shrank during compaction";
			return -1;
		}
		if (pwrite_full(c->mb->fd, c->buf, n, c->wr) == -1) {
			*error_r = errf("write mailbox", errno);
			return -1;
		}
		if (c->unsynced_lo == UINT64_MAX)
			c->unsynced_lo = from;
		from += n;
		c->wr += n;
		uint64_t now = util_now_ms();
		if (now - c->touched_ms >= MBOX_DOTLOCK_TOUCH_MS) {
			(void)lockfile_touch(c->mb->lockpath);
			c->touched_ms = now;
		}
	}
	return 0;
}

static int compact(struct mbox *mb, const struct stat *st, const char **error_r)
{
	uint64_t size = (uint64_t)st->st_size;
	size_t first = 0;

	while (first < mb->count && !mb->msgs[first].deleted)
		first++;
	struct compactor c = {
		.mb = mb, .buf = xmalloc(MBOX_SCAN_CHUNK), .wr = mb->info[first].from_off,
		.unsynced_lo = UINT64_MAX, .touched_ms = util_now_ms(),
	};
	int ret = 0;
	for (size_t i = first; i < mb->count && ret == 0; i++) {
		uint64_t region_end = i + 1 < mb->count ? mb->info[i + 1].from_off : mb->end;
		if (!mb->msgs[i].deleted)
			ret = copy_down(&c, mb->info[i].from_off, region_end, error_r);
	}
	if (ret == 0)
		ret = copy_down(&c, mb->end, size, error_r);
	free(c.buf);
	if (ret == -1)
		return -1;
	if (fsync(mb->fd) == -1 || ftruncate(mb->fd, (off_t)c.wr) == -1 ||
	    fsync(mb->fd) == -1) {
		*error_r = errf("truncate mailbox", errno);
		return -1;
	}
	/* Times, for mutt's "new mail" test (mtime > atime): mtime stays "now" from our
	 * writes.  If mail arrived after the snapshot we keep the old atime, so it still
	 * shows as new; otherwise atime = mtime: what is left has been seen. */
	struct stat now_st;
	if (fstat(mb->fd, &now_st) == 0) {
		struct timespec ts[2] = { now_st.st_mtim, { .tv_nsec = UTIME_OMIT } };
		if (size > mb->end)
			ts[0] = st->st_atim;
		(void)futimens(mb->fd, ts);
	}
	return 0;
}

int mbox_commit(struct mbox *mb, const char **error_r)
{
	size_t ndel = 0;
	struct stat st;

	for (size_t i = 0; i < mb->count; i++)
		if (mb->msgs[i].deleted)
			ndel++;
	if (ndel == 0)
		return 0;
	if (mb->committed) {
		*error_r = "mailbox already committed";
		return -1;
	}
	if (lock(mb, error_r) == -1)
		return -1;
	int ret = -1;
	if (fstat(mb->fd, &st) == -1)
		*error_r = errf("fstat mailbox", errno);
	else if (verify(mb, (uint64_t)st.st_size, error_r) == 0)
		ret = compact(mb, &st, error_r);
	unlock(mb);
	if (ret == 0)
		mb->committed = true;
	return ret;
}

void mbox_close(struct mbox **mbp)
{
	struct mbox *mb = *mbp;
	if (mb == NULL)
		return;
	unlock(mb);
	if (mb->fd != -1)
		close(mb->fd);
	free(mb->msgs);
	free(mb->info);
	free(mb);
	*mbp = NULL;
}
