/* The spool's directories, queue ids, the accept path, queued messages and their locks,
 * listing and cleanup (spool.h; the reasoning is in docs/architecture.md, "The spool").
 *
 * Root may call all of this (local delivery).  So every path is one name relative to a
 * directory descriptor, opened O_NOFOLLOW (directories also O_DIRECTORY, files
 * O_NONBLOCK so a FIFO cannot hang us), and checked with fstat(): directories and files
 * must belong to the spool's owner, files must be regular with one link (a hard link to
 * a file of someone else's would otherwise be read as a message). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/plimits.h"
#include "base/util.h"
#include "spool/spool.h"

#define DEL_SUFFIX ".del"
#define ERRBUF 256

int (*spool_test_hook)(int point);

struct spool {
	int fd, tmpfd, queuefd;
	uid_t owner;
	char error[ERRBUF];
};

struct spool_new {
	struct spool *sp;
	char id[SPOOL_ID_LEN + 1];
	char nonce[ENVELOPE_NONCE_LEN + 1];
	int dirfd, datafd;
	uint64_t size, size_max;
	char *buf;
	size_t buflen;
	int failed;             /* sticky spool_result of a failed write */
	char error[ERRBUF];
};

struct spool_msg {
	struct spool *sp;
	char id[SPOOL_ID_LEN + 1];
	int dirfd, datafd;
	struct envelope *env;
	char error[ERRBUF];
};

struct spool_iter {
	struct spool *sp;
	unsigned flags;
	int64_t now;
	char (*ids)[SPOOL_ID_LEN + 1];
	size_t count, pos;
	bool truncated;
	struct envelope *env;
	char error[ERRBUF];
};

static int hook(int point)
{
	return spool_test_hook != NULL ? spool_test_hook(point) : 0;
}

/* Run the hook; an injected failure becomes errno and -1. */
static int step(int point)
{
	int e = hook(point);

	if (e != 0) {
		errno = e;
		return -1;
	}
	return 0;
}

static bool is_full(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EFBIG;
}

/* Format "what: strerror(err)" into buf; the result for that errno. */
static int sys_fail(char *buf, const char **error_r, const char *what, int err)
{
	if (util_snprintf(buf, ERRBUF, "%s: %s", what, strerror(err)) < 0)
		(void)util_snprintf(buf, ERRBUF, "%s", what);
	*error_r = buf;
	return is_full(err) ? SPOOL_FULL : SPOOL_ERROR;
}

static int fail_text(char *buf, const char **error_r, int result, const char *what,
		     const char *detail)
{
	if (util_snprintf(buf, ERRBUF, "%s%s%s", what, detail != NULL ? ": " : "",
			  detail != NULL ? detail : "") < 0)
		(void)util_snprintf(buf, ERRBUF, "%s", what);
	*error_r = buf;
	return result;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		(void)close(*fd);
	*fd = -1;
}

/* A directory of ours: owned by owner; with strict, no access for group or others. */
static const char *dir_check(int fd, uid_t owner, bool strict)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return "cannot stat";
	if (!S_ISDIR(st.st_mode))
		return "not a directory";
	if (st.st_uid != owner)
		return "not owned by the spool user";
	if (strict && (st.st_mode & 077) != 0)
		return "group or others have access (chmod 0700)";
	return NULL;
}

/* A file of ours: regular, owned by owner, one link. */
static const char *file_check(const struct stat *st, uid_t owner)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_uid != owner)
		return "not owned by the spool user";
	if (st->st_nlink != 1)
		return "more than one link";
	return NULL;
}

static int open_dir_at(int dfd, const char *name)
{
	return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* ---- the spool ---- */

static int open_sub(int fd, const char *name, uid_t owner, unsigned flags,
		    const char **error_r)
{
	if ((flags & SPOOL_OPEN_CREATE) && mkdirat(fd, name, 0700) == -1 && errno != EEXIST) {
		*error_r = "cannot create a spool subdirectory";
		return -1;
	}
	int sub = open_dir_at(fd, name);
	if (sub == -1) {
		*error_r = "cannot open a spool subdirectory (tmp or queue)";
		return -1;
	}
	const char *why = dir_check(sub, owner, true);
	if (why != NULL) {
		int e = errno;
		(void)close(sub);
		errno = e;
		*error_r = why;
		return -1;
	}
	return sub;
}

int spool_open(const char *path, uid_t owner, unsigned flags, struct spool **sp_r,
	       const char **error_r)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));
	const char *why;

	*sp_r = NULL;
	sp->tmpfd = sp->queuefd = -1;
	sp->owner = owner;
	sp->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->fd == -1) {
		*error_r = "cannot open spool_dir";
		goto fail;
	}
	if ((why = dir_check(sp->fd, owner, true)) != NULL) {
		*error_r = why;
		goto fail;
	}
	if ((sp->tmpfd = open_sub(sp->fd, "tmp", owner, flags, error_r)) == -1 ||
	    (sp->queuefd = open_sub(sp->fd, "queue", owner, flags, error_r)) == -1)
		goto fail;
	*sp_r = sp;
	return 0;
fail:
	spool_close(&sp);
	return -1;
}

void spool_close(struct spool **spp)
{
	struct spool *sp = *spp;

	if (sp == NULL)
		return;
	int e = errno;
	close_fd(&sp->fd);
	close_fd(&sp->tmpfd);
	close_fd(&sp->queuefd);
	free(sp);
	*spp = NULL;
	errno = e;
}

/* ---- queue ids ---- */

static void make_id(uint64_t us, unsigned seq, char out[SPOOL_ID_LEN + 1])
{
	static const char alphabet[] = ENVELOPE_ID_ALPHABET;

	/* 11 characters of 5 bits: microseconds until the year 3111 */
	for (int i = SPOOL_ID_LEN - 2; i >= 0; i--) {
		out[i] = alphabet[us & 31];
		us >>= 5;
	}
	out[SPOOL_ID_LEN - 1] = alphabet[seq & 31];
	out[SPOOL_ID_LEN] = '\0';
}

static uint64_t now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Reserve an id: tmp/ID made by us (mkdir is exclusive) while no queue/ID exists.  An id
 * in the queue was in tmp/ until its rename, so no two live messages share one. */
static int reserve_id(struct spool *sp, char id[SPOOL_ID_LEN + 1], const char **error_r)
{
	uint64_t last = 0;

	for (unsigned tries = 0; tries < SPOOL_ID_TRIES; ) {
		uint64_t us = now_us();
		if (us == last) {
			util_sleep_ms(1);
			tries++;
			continue;
		}
		last = us;
		for (unsigned seq = 0; seq < 32 && tries < SPOOL_ID_TRIES; seq++, tries++) {
			struct stat st;
			make_id(us, seq, id);
			if (mkdirat(sp->tmpfd, id, 0700) == -1) {
				if (errno == EEXIST)
					continue;
				return sys_fail(sp->error, error_r, "create a message in tmp", errno);
			}
			if (fstatat(sp->queuefd, id, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				(void)unlinkat(sp->tmpfd, id, AT_REMOVEDIR);
				continue;   /* the clock went back to an id still queued */
			}
			return SPOOL_OK;
		}
	}
	return fail_text(sp->error, error_r, SPOOL_ERROR, "no free queue id", NULL);
}

/* ---- the accept path ---- */

static void new_free(struct spool_new *n, bool remove)
{
	if (remove) {
		(void)unlinkat(n->dirfd, "env", 0);
		(void)unlinkat(n->dirfd, "data", 0);
		(void)unlinkat(n->sp->tmpfd, n->id, AT_REMOVEDIR);
	}
	close_fd(&n->datafd);
	close_fd(&n->dirfd);
	free(n->buf);
	free(n);
}

int spool_new_begin(struct spool *sp, uint64_t size_max, struct spool_new **new_r,
		    const char **error_r)
{
	struct spool_new *n = xcalloc(1, sizeof(*n));
	unsigned char rnd[ENVELOPE_NONCE_LEN / 2];
	int r;

	*new_r = NULL;
	n->sp = sp;
	n->dirfd = n->datafd = -1;
	n->size_max = size_max;
	if ((r = reserve_id(sp, n->id, error_r)) != SPOOL_OK) {
		free(n);
		return r;
	}
	if ((n->dirfd = open_dir_at(sp->tmpfd, n->id)) == -1) {
		r = sys_fail(sp->error, error_r, "open a message in tmp", errno);
		goto fail;
	}
	if (step(SPOOL_HOOK_BEGIN_DIR) == -1 ||
	    (n->datafd = openat(n->dirfd, "data", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
				O_CLOEXEC, 0600)) == -1) {
		r = sys_fail(sp->error, error_r, "create a message file", errno);
		goto fail;
	}
	if (flock(n->datafd, LOCK_EX | LOCK_NB) == -1 || step(SPOOL_HOOK_BEGIN_DATA) == -1) {
		r = sys_fail(sp->error, error_r, "lock a new message", errno);
		goto fail;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		r = sys_fail(sp->error, error_r, "getrandom", errno);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		(void)snprintf(n->nonce + 2 * i, 3, "%02X", rnd[i]);   /* BOUNDS: 2 digits + NUL */
	n->buf = xmalloc(SPOOL_WRITE_BUF);
	*new_r = n;
	return SPOOL_OK;
fail:
	new_free(n, true);
	return r;
}

const char *spool_new_id(const struct spool_new *n)
{
	return n->id;
}

uint64_t spool_new_size(const struct spool_new *n)
{
	return n->size;
}

static int new_flush(struct spool_new *n, const char **error_r)
{
	if (n->buflen == 0)
		return SPOOL_OK;
	if (step(SPOOL_HOOK_WRITE) == -1 || util_write_all(n->datafd, n->buf, n->buflen) == -1) {
		n->failed = sys_fail(n->error, error_r, "write the message", errno);
		return n->failed;
	}
	n->buflen = 0;
	return SPOOL_OK;
}

int spool_new_write(struct spool_new *n, const void *buf, size_t len, const char **error_r)
{
	const char *p = buf;

	if (n->failed != SPOOL_OK) {
		*error_r = n->error;
		return n->failed;
	}
	if (n->size_max != 0 && (len > n->size_max || n->size > n->size_max - len)) {
		n->failed = fail_text(n->error, error_r, SPOOL_TOOBIG,
				      "message larger than the size limit", NULL);
		return n->failed;
	}
	n->size += len;
	while (len > 0) {
		size_t room = SPOOL_WRITE_BUF - n->buflen;
		size_t k = len < room ? len : room;
		memcpy(n->buf + n->buflen, p, k);
		n->buflen += k;
		p += k;
		len -= k;
		if (n->buflen == SPOOL_WRITE_BUF && new_flush(n, error_r) != SPOOL_OK)
			return n->failed;
	}
	return SPOOL_OK;
}

void spool_new_abort(struct spool_new **np)
{
	if (*np == NULL)
		return;
	new_free(*np, true);
	*np = NULL;
}

/* Write a whole small file (an envelope) at dfd/name, created exclusively, owned by the
 * spool's owner, fdatasync'd; mtime set to mtime if nonzero.  A SPOOL_* result. */
static int write_file(struct spool *sp, int dfd, const char *name, const char *text,
		      size_t len, int64_t mtime, int hook_write, int hook_sync, char *errbuf,
		      const char **error_r)
{
	int fd = -1, r = SPOOL_OK;

	if (step(hook_write) == -1 ||
	    (fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			 0600)) == -1)
		return sys_fail(errbuf, error_r, "create the envelope", errno);
	/* root writing for the spool user: the file must be the spool user's like the rest */
	if (geteuid() != sp->owner && fchown(fd, sp->owner, (gid_t)-1) == -1)
		r = sys_fail(errbuf, error_r, "chown the envelope", errno);
	else if (util_write_all(fd, text, len) == -1)
		r = sys_fail(errbuf, error_r, "write the envelope", errno);
	else if (mtime != 0) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = (time_t)mtime } };
		(void)futimens(fd, ts);   /* only a hint for queue runs (spool_iter) */
	}
	if (r == SPOOL_OK && (step(hook_sync) == -1 || fdatasync(fd) == -1))
		r = sys_fail(errbuf, error_r, "sync the envelope", errno);
	if (close(fd) == -1 && r == SPOOL_OK)
		r = sys_fail(errbuf, error_r, "close the envelope", errno);
	if (r != SPOOL_OK)
		(void)unlinkat(dfd, name, 0);
	return r;
}

static int rename_noreplace(int ofd, const char *oname, int nfd, const char *nname)
{
	if (renameat2(ofd, oname, nfd, nname, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	/* a file system without RENAME_NOREPLACE: the id was reserved against queue/ */
	return renameat(ofd, oname, nfd, nname);
}

static struct spool_msg *msg_alloc(struct spool *sp, const char *id)
{
	struct spool_msg *m = xcalloc(1, sizeof(*m));

	m->sp = sp;
	memcpy(m->id, id, SPOOL_ID_LEN + 1);
	m->dirfd = m->datafd = -1;
	return m;
}

int spool_new_commit(struct spool_new **np, struct envelope *env, struct spool_msg **msg_r,
		     const char **error_r)
{
	struct spool_new *n = *np;
	struct spool *sp = n->sp;
	char *text = NULL;
	size_t len;
	int r;
	bool renamed = false;

	*np = NULL;
	if (msg_r != NULL)
		*msg_r = NULL;
	if (n->failed != SPOOL_OK) {
		r = fail_text(sp->error, error_r, n->failed, n->error, NULL);
		goto fail;
	}
	if (new_flush(n, error_r) != SPOOL_OK) {
		r = fail_text(sp->error, error_r, n->failed, n->error, NULL);
		goto fail;
	}
	if (step(SPOOL_HOOK_COMMIT_DATA_SYNC) == -1 || fdatasync(n->datafd) == -1) {
		r = sys_fail(sp->error, error_r, "sync the message", errno);
		goto fail;
	}
	memcpy(env->id, n->id, sizeof(env->id));
	memcpy(env->nonce, n->nonce, sizeof(env->nonce));
	env->size = n->size;
	if (env->arrival == 0)
		env->arrival = (int64_t)time(NULL);
	if (envelope_write(env, &text, &len, error_r) == -1) {
		r = fail_text(sp->error, error_r, SPOOL_ERROR, "invalid envelope", *error_r);
		goto fail;
	}
	r = write_file(sp, n->dirfd, "env", text, len, 0, SPOOL_HOOK_COMMIT_ENV_WRITE,
		       SPOOL_HOOK_COMMIT_ENV_SYNC, sp->error, error_r);
	if (r != SPOOL_OK)
		goto fail;
	if (step(SPOOL_HOOK_COMMIT_DIR_SYNC) == -1 || fsync(n->dirfd) == -1) {
		r = sys_fail(sp->error, error_r, "sync the message directory", errno);
		goto fail;
	}
	if (step(SPOOL_HOOK_COMMIT_RENAME) == -1 ||
	    rename_noreplace(sp->tmpfd, n->id, sp->queuefd, n->id) == -1) {
		r = sys_fail(sp->error, error_r, "move the message into the queue", errno);
		goto fail;
	}
	renamed = true;
	if (step(SPOOL_HOOK_COMMIT_QUEUE_SYNC) == -1 || fsync(sp->queuefd) == -1 ||
	    step(SPOOL_HOOK_COMMIT_DONE) == -1) {
		r = sys_fail(sp->error, error_r, "sync the queue", errno);
		goto fail;
	}
	if (msg_r != NULL) {
		struct spool_msg *m = msg_alloc(sp, n->id);
		if (envelope_parse(text, len, &m->env, NULL, error_r) == -1) {
			/* cannot happen: envelope_write() parsed it; leave it queued */
			free(m);
		} else {
			m->dirfd = n->dirfd;
			m->datafd = n->datafd;   /* keeps the lock */
			n->dirfd = n->datafd = -1;
			*msg_r = m;
		}
	}
	free(text);
	new_free(n, false);
	return SPOOL_OK;
fail:
	/* Not answered with 250: take it back out, so it is never delivered.  If even that
	 * fails it stays queued, and is delivered though the client was told 4xx (and will
	 * send it again): a duplicate, never a loss. */
	if (renamed && renameat(sp->queuefd, n->id, sp->tmpfd, n->id) == 0)
		renamed = false;
	free(text);
	new_free(n, !renamed);
	return r;
}

/* ---- queued messages ---- */

/* Whether queue/id is still the directory open at dirfd. */
static bool still_queued(const struct spool *sp, const char *id, int dirfd)
{
	struct stat a, b;

	return fstat(dirfd, &a) == 0 &&
		fstatat(sp->queuefd, id, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Read dirfd/env whole (checked as described at the top).  A SPOOL_* result; ENOENT
 * gives SPOOL_GONE. */
static int read_env(const struct spool *sp, int dirfd, char **text_r, size_t *len_r,
		    char *errbuf, const char **error_r)
{
	struct stat st;
	const char *why;
	int fd = openat(dirfd, "env", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	*text_r = NULL;
	if (fd == -1) {
		if (errno == ENOENT) {
			*error_r = "no envelope";
			return SPOOL_GONE;
		}
		return sys_fail(errbuf, error_r, "open the envelope", errno);
	}
	if (fstat(fd, &st) == -1) {
		int e = errno;
		(void)close(fd);
		return sys_fail(errbuf, error_r, "stat the envelope", e);
	}
	if ((why = file_check(&st, sp->owner)) != NULL ||
	    (st.st_size > SPOOL_ENV_MAX_BYTES && (why = "envelope too large") != NULL)) {
		(void)close(fd);
		return fail_text(errbuf, error_r, SPOOL_ERROR, "envelope", why);
	}
	/* BOUNDS: at most SPOOL_ENV_MAX_BYTES + 1, to see a file that grew past it */
	char *buf = xmalloc(SPOOL_ENV_MAX_BYTES + 1);
	size_t len = 0;
	for (;;) {
		ssize_t k = read(fd, buf + len, SPOOL_ENV_MAX_BYTES + 1 - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			free(buf);
			(void)close(fd);
			return sys_fail(errbuf, error_r, "read the envelope", e);
		}
		if (k == 0 || (len += (size_t)k) > SPOOL_ENV_MAX_BYTES)
			break;
	}
	(void)close(fd);
	*text_r = buf;
	*len_r = len;
	return SPOOL_OK;
}

/* Read and parse the envelope of the message open at dirfd. */
static int load_env(const struct spool *sp, const char *id, int dirfd, struct envelope **env_r,
		    char *errbuf, const char **error_r)
{
	char *text;
	size_t len = 0;
	unsigned line;
	char where[32];
	int r = read_env(sp, dirfd, &text, &len, errbuf, error_r);

	*env_r = NULL;
	if (r != SPOOL_OK)
		return r;
	if (envelope_parse(text, len, env_r, &line, error_r) == -1) {
		free(text);
		(void)util_snprintf(where, sizeof(where), "line %u", line);
		return fail_text(errbuf, error_r, SPOOL_ERROR, "bad envelope",
				 line > 0 ? where : *error_r);
	}
	free(text);
	if (strcmp((*env_r)->id, id) != 0) {
		envelope_free(env_r);
		return fail_text(errbuf, error_r, SPOOL_ERROR, "bad envelope", "id is not its name");
	}
	return SPOOL_OK;
}

static int lock_wait(int fd, unsigned timeout_ms)
{
	uint64_t deadline = util_now_ms() + timeout_ms;

	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK || util_now_ms() >= deadline)
			return -1;
		util_sleep_ms(SPOOL_LOCK_POLL_MS);
	}
}

int spool_msg_open(struct spool *sp, const char *id, unsigned lock_timeout_ms,
		   struct spool_msg **msg_r, const char **error_r)
{
	struct spool_msg *m;
	struct stat st;
	const char *why;
	int r;

	*msg_r = NULL;
	if (!envelope_id_valid(id, strlen(id)))
		return fail_text(sp->error, error_r, SPOOL_ERROR, "not a queue id", NULL);
	m = msg_alloc(sp, id);
	if ((m->dirfd = open_dir_at(sp->queuefd, id)) == -1) {
		r = errno == ENOENT ? fail_text(sp->error, error_r, SPOOL_GONE, "not in the queue",
						NULL) :
			sys_fail(sp->error, error_r, "open the message", errno);
		goto fail;
	}
	if ((why = dir_check(m->dirfd, sp->owner, false)) != NULL) {
		r = fail_text(sp->error, error_r, SPOOL_ERROR, "message directory", why);
		goto fail;
	}
	m->datafd = openat(m->dirfd, "data", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (m->datafd == -1) {
		r = errno == ENOENT && !still_queued(sp, id, m->dirfd) ?
			fail_text(sp->error, error_r, SPOOL_GONE, "left the queue", NULL) :
			sys_fail(sp->error, error_r, "open the message file", errno);
		goto fail;
	}
	if (fstat(m->datafd, &st) == -1) {
		r = sys_fail(sp->error, error_r, "stat the message file", errno);
		goto fail;
	}
	if ((why = file_check(&st, sp->owner)) != NULL) {
		r = fail_text(sp->error, error_r, SPOOL_ERROR, "message file", why);
		goto fail;
	}
	if (lock_wait(m->datafd, lock_timeout_ms) == -1) {
		r = errno == EWOULDBLOCK ?
			fail_text(sp->error, error_r, SPOOL_LOCKED, "message in use", NULL) :
			sys_fail(sp->error, error_r, "lock the message", errno);
		goto fail;
	}
	if (!still_queued(sp, id, m->dirfd)) {
		r = fail_text(sp->error, error_r, SPOOL_GONE, "left the queue", NULL);
		goto fail;
	}
	if ((r = load_env(sp, id, m->dirfd, &m->env, sp->error, error_r)) != SPOOL_OK)
		goto fail;
	if (m->env->size != (uint64_t)st.st_size) {
		r = fail_text(sp->error, error_r, SPOOL_ERROR, "bad envelope",
			      "size is not the message file's");
		goto fail;
	}
	*msg_r = m;
	return SPOOL_OK;
fail:
	spool_msg_close(&m);
	return r;
}

const char *spool_msg_id(const struct spool_msg *m)
{
	return m->id;
}

struct envelope *spool_msg_env(struct spool_msg *m)
{
	return m->env;
}

int spool_msg_data_fd(const struct spool_msg *m)
{
	return m->datafd;
}

int spool_msg_update(struct spool_msg *m, const char **error_r)
{
	char *text;
	size_t len;
	int64_t due = envelope_next_due(m->env);
	int r;

	if (envelope_write(m->env, &text, &len, error_r) == -1)
		return fail_text(m->error, error_r, SPOOL_ERROR, "invalid envelope", *error_r);
	(void)unlinkat(m->dirfd, "env.new", 0);   /* a crashed update's */
	r = write_file(m->sp, m->dirfd, "env.new", text, len, due > time(NULL) ? due : 0,
		       SPOOL_HOOK_UPDATE_WRITE, SPOOL_HOOK_UPDATE_SYNC, m->error, error_r);
	free(text);
	if (r != SPOOL_OK)
		return r;
	if (step(SPOOL_HOOK_UPDATE_RENAME) == -1 ||
	    renameat(m->dirfd, "env.new", m->dirfd, "env") == -1) {
		r = sys_fail(m->error, error_r, "replace the envelope", errno);
		(void)unlinkat(m->dirfd, "env.new", 0);
		return r;
	}
	if (step(SPOOL_HOOK_UPDATE_DIR_SYNC) == -1 || fsync(m->dirfd) == -1)
		return sys_fail(m->error, error_r, "sync the message directory", errno);
	return SPOOL_OK;
}

int spool_msg_attempt(struct spool_msg *m, const size_t *idx, size_t n, int64_t now,
		      const char **error_r)
{
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= m->env->rcpt_count)
			return fail_text(m->error, error_r, SPOOL_ERROR, "no such recipient", NULL);
	}
	for (size_t i = 0; i < n; i++)
		envelope_rcpt_attempt(&m->env->rcpts[idx[i]], now);
	return spool_msg_update(m, error_r);
}

int spool_msg_remove(struct spool_msg **mp, const char **error_r)
{
	struct spool_msg *m = *mp;
	struct spool *sp = m->sp;
	char del[SPOOL_ID_LEN + sizeof(DEL_SUFFIX)];
	int r = SPOOL_OK;

	*mp = NULL;
	if (!envelope_done(m->env)) {
		r = fail_text(sp->error, error_r, SPOOL_ERROR, "recipients left to deliver", NULL);
		goto out;
	}
	memcpy(del, m->id, SPOOL_ID_LEN);
	memcpy(del + SPOOL_ID_LEN, DEL_SUFFIX, sizeof(DEL_SUFFIX));
	if (step(SPOOL_HOOK_REMOVE_RENAME) == -1 ||
	    renameat(sp->queuefd, m->id, sp->tmpfd, del) == -1) {
		r = sys_fail(sp->error, error_r, "take the message out of the queue", errno);
		goto out;
	}
	/* Out of the queue now; a crash from here leaves only tmp/ID.del for cleanup. */
	if (step(SPOOL_HOOK_REMOVE_SYNC) == -1 || fsync(sp->queuefd) == -1)
		r = sys_fail(sp->error, error_r, "sync the queue", errno);
	if (step(SPOOL_HOOK_REMOVE_DELETE) == 0) {
		(void)unlinkat(m->dirfd, "env", 0);
		(void)unlinkat(m->dirfd, "env.new", 0);
		(void)unlinkat(m->dirfd, "data", 0);
		(void)unlinkat(sp->tmpfd, del, AT_REMOVEDIR);
	}
out:
	spool_msg_close(&m);
	return r;
}

void spool_msg_close(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;

	if (m == NULL)
		return;
	int e = errno;
	close_fd(&m->datafd);   /* releases the lock */
	close_fd(&m->dirfd);
	envelope_free(&m->env);
	free(m);
	*mp = NULL;
	errno = e;
}

/* ---- listing ---- */

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, SPOOL_ID_LEN);
}

int spool_iter_begin(struct spool *sp, unsigned flags, int64_t now, struct spool_iter **it_r,
		     const char **error_r)
{
	struct spool_iter *it;
	struct dirent *de;
	size_t alloc = 0;
	/* a description of its own: readdir's offset is not shared with queuefd */
	int fd = open_dir_at(sp->queuefd, ".");
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	*it_r = NULL;
	if (d == NULL) {
		int e = errno;
		if (fd >= 0)
			(void)close(fd);
		return sys_fail(sp->error, error_r, "read the queue", e);
	}
	it = xcalloc(1, sizeof(*it));
	it->sp = sp;
	it->flags = flags;
	it->now = now;
	while ((de = readdir(d)) != NULL) {
		if (!envelope_id_valid(de->d_name, strlen(de->d_name)))
			continue;   /* ".", "..", or not ours: never touched */
		if (it->count == SPOOL_SCAN_MAX) {
			it->truncated = true;
			break;
		}
		if (it->count == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			/* BOUNDS: alloc <= 2 * SPOOL_SCAN_MAX entries of 13 bytes */
			it->ids = xrealloc(it->ids, alloc * sizeof(*it->ids));
		}
		memcpy(it->ids[it->count++], de->d_name, SPOOL_ID_LEN + 1);
	}
	(void)closedir(d);
	if (it->count > 0)
		qsort(it->ids, it->count, sizeof(*it->ids), cmp_id);
	*it_r = it;
	return SPOOL_OK;
}

int spool_iter_next(struct spool_iter *it, const char **id_r, const struct envelope **env_r,
		    const char **error_r)
{
	envelope_free(&it->env);
	while (it->pos < it->count) {
		const char *id = it->ids[it->pos++];
		struct stat st;
		int dfd = open_dir_at(it->sp->queuefd, id);
		if (dfd == -1) {
			if (errno == ENOENT)
				continue;   /* delivered and removed since the listing */
			*id_r = id;
			*env_r = NULL;
			(void)sys_fail(it->error, error_r, "open the message", errno);
			return 1;
		}
		if ((it->flags & SPOOL_ITER_DUE) &&
		    fstatat(dfd, "env", &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mtime > it->now) {
			(void)close(dfd);
			continue;   /* its envelope's mtime says: not before then */
		}
		int r = load_env(it->sp, id, dfd, &it->env, it->error, error_r);
		if (r == SPOOL_GONE && !still_queued(it->sp, id, dfd)) {
			(void)close(dfd);
			continue;
		}
		(void)close(dfd);
		if (r == SPOOL_OK && (it->flags & SPOOL_ITER_DUE) &&
		    envelope_next_due(it->env) > it->now) {
			envelope_free(&it->env);
			continue;
		}
		*id_r = id;
		*env_r = it->env;
		return 1;
	}
	return 0;
}

bool spool_iter_truncated(const struct spool_iter *it)
{
	return it->truncated;
}

void spool_iter_end(struct spool_iter **itp)
{
	struct spool_iter *it = *itp;

	if (it == NULL)
		return;
	envelope_free(&it->env);
	free(it->ids);
	free(it);
	*itp = NULL;
}

/* ---- cleanup ---- */

/* One entry of tmp/: returns which counter it goes to. */
enum clean_outcome { CLEAN_REMOVED, CLEAN_LOCKED, CLEAN_YOUNG, CLEAN_FOREIGN, CLEAN_GONE };

static enum clean_outcome clean_one(struct spool *sp, const char *name, bool del, int64_t now,
				    int64_t min_age_s)
{
	struct stat st, dst;
	int dfd = open_dir_at(sp->tmpfd, name), datafd;
	enum clean_outcome out = CLEAN_REMOVED;

	if (dfd == -1)
		return errno == ENOENT ? CLEAN_GONE : CLEAN_FOREIGN;
	if (dir_check(dfd, sp->owner, false) != NULL || fstat(dfd, &dst) == -1) {
		(void)close(dfd);
		return CLEAN_FOREIGN;
	}
	int64_t newest = (int64_t)dst.st_mtime;
	datafd = openat(dfd, "data", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (datafd >= 0) {
		if (fstat(datafd, &st) == -1 || file_check(&st, sp->owner) != NULL)
			out = CLEAN_FOREIGN;
		else if (flock(datafd, LOCK_EX | LOCK_NB) == -1)
			out = CLEAN_LOCKED;   /* its writer (or remover) is alive */
		else if ((int64_t)st.st_mtime > newest)
			newest = (int64_t)st.st_mtime;
	}
	if (out == CLEAN_REMOVED && !del && now - newest < min_age_s)
		out = CLEAN_YOUNG;
	if (out == CLEAN_REMOVED) {
		(void)unlinkat(dfd, "env", 0);
		(void)unlinkat(dfd, "env.new", 0);
		(void)unlinkat(dfd, "data", 0);
		if (unlinkat(sp->tmpfd, name, AT_REMOVEDIR) == -1)
			out = errno == ENOENT ? CLEAN_GONE : CLEAN_FOREIGN;
	}
	if (datafd >= 0)
		(void)close(datafd);
	(void)close(dfd);
	return out;
}

int spool_cleanup(struct spool *sp, int64_t now, int64_t min_age_s,
		  struct spool_cleanup_stats *st_r, const char **error_r)
{
	struct dirent *de;
	int fd = open_dir_at(sp->tmpfd, ".");
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	memset(st_r, 0, sizeof(*st_r));
	if (d == NULL) {
		int e = errno;
		if (fd >= 0)
			(void)close(fd);
		return sys_fail(sp->error, error_r, "read tmp", e);
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		bool del = len == SPOOL_ID_LEN + strlen(DEL_SUFFIX) &&
			strcmp(de->d_name + SPOOL_ID_LEN, DEL_SUFFIX) == 0;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!envelope_id_valid(de->d_name, del ? SPOOL_ID_LEN : len)) {
			st_r->foreign++;
			continue;
		}
		switch (clean_one(sp, de->d_name, del, now, min_age_s)) {
		case CLEAN_REMOVED: st_r->removed++; break;
		case CLEAN_LOCKED: st_r->locked++; break;
		case CLEAN_YOUNG: st_r->young++; break;
		case CLEAN_FOREIGN: st_r->foreign++; break;
		case CLEAN_GONE: break;
		}
	}
	(void)closedir(d);
	return SPOOL_OK;
}
