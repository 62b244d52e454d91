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
#include "spool/spool_int.h"

int (*spool_test_hook)(int point);

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

static int hook(int point)
{
	return spool_test_hook != NULL ? spool_test_hook(point) : 0;
}

/* Run the hook; an injected failure becomes errno and -1. */
int spool_step(int point)
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
int spool_sys_fail(char *buf, const char **error_r, const char *what, int err)
{
	if (util_snprintf(buf, ERRBUF, "%s: %s", what, strerror(err)) < 0)
		(void)util_snprintf(buf, ERRBUF, "%s", what);
	*error_r = buf;
	return is_full(err) ? SPOOL_FULL : SPOOL_ERROR;
}

int spool_fail_text(char *buf, const char **error_r, int result, const char *what,
		    const char *detail)
{
	if (util_snprintf(buf, ERRBUF, "%s%s%s", what, detail != NULL ? ": " : "",
			  detail != NULL ? detail : "") < 0)
		(void)util_snprintf(buf, ERRBUF, "%s", what);
	*error_r = buf;
	return result;
}

void spool_close_fd(int *fd)
{
	if (*fd >= 0)
		(void)close(*fd);
	*fd = -1;
}

/* A directory of ours: owned by owner; with strict, no access for group or others. */
const char *spool_dir_check(int fd, uid_t owner, bool strict)
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
const char *spool_file_check(const struct stat *st, uid_t owner)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_uid != owner)
		return "not owned by the spool user";
	if (st->st_nlink != 1)
		return "more than one link";
	return NULL;
}

int spool_open_dir(int dfd, const char *name)
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
	int sub = spool_open_dir(fd, name);
	if (sub == -1) {
		*error_r = "cannot open a spool subdirectory (tmp or queue)";
		return -1;
	}
	const char *why = spool_dir_check(sub, owner, true);
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
	if ((why = spool_dir_check(sp->fd, owner, true)) != NULL) {
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
	spool_close_fd(&sp->fd);
	spool_close_fd(&sp->tmpfd);
	spool_close_fd(&sp->queuefd);
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
				return spool_sys_fail(sp->error, error_r, "create a message in tmp",
						      errno);
			}
			if (fstatat(sp->queuefd, id, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				(void)unlinkat(sp->tmpfd, id, AT_REMOVEDIR);
				continue;   /* the clock went back to an id still queued */
			}
			return SPOOL_OK;
		}
	}
	return spool_fail_text(sp->error, error_r, SPOOL_ERROR, "no free queue id", NULL);
}

/* ---- the accept path ---- */

static void new_free(struct spool_new *n, bool remove)
{
	if (remove) {
		(void)unlinkat(n->dirfd, "env", 0);
		(void)unlinkat(n->dirfd, "data", 0);
		(void)unlinkat(n->sp->tmpfd, n->id, AT_REMOVEDIR);
	}
	spool_close_fd(&n->datafd);
	spool_close_fd(&n->dirfd);
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
	if ((n->dirfd = spool_open_dir(sp->tmpfd, n->id)) == -1) {
		r = spool_sys_fail(sp->error, error_r, "open a message in tmp", errno);
		goto fail;
	}
	if (spool_step(SPOOL_HOOK_BEGIN_DIR) == -1 ||
	    (n->datafd = openat(n->dirfd, "data", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
				O_CLOEXEC, 0600)) == -1) {
		r = spool_sys_fail(sp->error, error_r, "create a message file", errno);
		goto fail;
	}
	if (flock(n->datafd, LOCK_EX | LOCK_NB) == -1 || spool_step(SPOOL_HOOK_BEGIN_DATA) == -1) {
		r = spool_sys_fail(sp->error, error_r, "lock a new message", errno);
		goto fail;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		r = spool_sys_fail(sp->error, error_r, "getrandom", errno);
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
	if (spool_step(SPOOL_HOOK_WRITE) == -1 ||
	    util_write_all(n->datafd, n->buf, n->buflen) == -1) {
		n->failed = spool_sys_fail(n->error, error_r, "write the message", errno);
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
		n->failed = spool_fail_text(n->error, error_r, SPOOL_TOOBIG,
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
int spool_write_file(struct spool *sp, int dfd, const char *name, const char *text,
		     size_t len, int64_t mtime, int hook_write, int hook_sync, char *errbuf,
		     const char **error_r)
{
	int fd = -1, r = SPOOL_OK;

	if (spool_step(hook_write) == -1 ||
	    (fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			 0600)) == -1)
		return spool_sys_fail(errbuf, error_r, "create the envelope", errno);
	/* root writing for the spool user: the file must be the spool user's like the rest */
	if (geteuid() != sp->owner && fchown(fd, sp->owner, (gid_t)-1) == -1)
		r = spool_sys_fail(errbuf, error_r, "chown the envelope", errno);
	else if (util_write_all(fd, text, len) == -1)
		r = spool_sys_fail(errbuf, error_r, "write the envelope", errno);
	else if (mtime != 0) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = (time_t)mtime } };
		(void)futimens(fd, ts);   /* only a hint for queue runs (spool_iter) */
	}
	if (r == SPOOL_OK && (spool_step(hook_sync) == -1 || fdatasync(fd) == -1))
		r = spool_sys_fail(errbuf, error_r, "sync the envelope", errno);
	if (close(fd) == -1 && r == SPOOL_OK)
		r = spool_sys_fail(errbuf, error_r, "close the envelope", errno);
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

struct spool_msg *spool_msg_alloc(struct spool *sp, const char *id)
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
		r = spool_fail_text(sp->error, error_r, n->failed, n->error, NULL);
		goto fail;
	}
	if (new_flush(n, error_r) != SPOOL_OK) {
		r = spool_fail_text(sp->error, error_r, n->failed, n->error, NULL);
		goto fail;
	}
	if (spool_step(SPOOL_HOOK_COMMIT_DATA_SYNC) == -1 || fdatasync(n->datafd) == -1) {
		r = spool_sys_fail(sp->error, error_r, "sync the message", errno);
		goto fail;
	}
	memcpy(env->id, n->id, sizeof(env->id));
	memcpy(env->nonce, n->nonce, sizeof(env->nonce));
	env->size = n->size;
	if (env->arrival == 0)
		env->arrival = (int64_t)time(NULL);
	if (envelope_write(env, &text, &len, error_r) == -1) {
		r = spool_fail_text(sp->error, error_r, SPOOL_ERROR, "invalid envelope", *error_r);
		goto fail;
	}
	r = spool_write_file(sp, n->dirfd, "env", text, len, 0, SPOOL_HOOK_COMMIT_ENV_WRITE,
			     SPOOL_HOOK_COMMIT_ENV_SYNC, sp->error, error_r);
	if (r != SPOOL_OK)
		goto fail;
	if (spool_step(SPOOL_HOOK_COMMIT_DIR_SYNC) == -1 || fsync(n->dirfd) == -1) {
		r = spool_sys_fail(sp->error, error_r, "sync the message directory", errno);
		goto fail;
	}
	if (spool_step(SPOOL_HOOK_COMMIT_RENAME) == -1 ||
	    rename_noreplace(sp->tmpfd, n->id, sp->queuefd, n->id) == -1) {
		r = spool_sys_fail(sp->error, error_r, "move the message into the queue", errno);
		goto fail;
	}
	renamed = true;
	if (spool_step(SPOOL_HOOK_COMMIT_QUEUE_SYNC) == -1 || fsync(sp->queuefd) == -1 ||
	    spool_step(SPOOL_HOOK_COMMIT_DONE) == -1) {
		r = spool_sys_fail(sp->error, error_r, "sync the queue", errno);
		goto fail;
	}
	if (msg_r != NULL) {
		struct spool_msg *m = spool_msg_alloc(sp, n->id);
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
