/* Queued messages (open and lock, update, attempt, remove), listing and cleanup
 * (spool.h; docs/architecture.md, "The spool").  The rules of spool.c's top comment
 * hold here too: one name at a time relative to a directory descriptor, O_NOFOLLOW,
 * and fstat() checks of owner, type and links. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/plimits.h"
#include "base/util.h"
#include "spool/spool.h"
#include "spool/spool_int.h"

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
		return spool_sys_fail(errbuf, error_r, "open the envelope", errno);
	}
	if (fstat(fd, &st) == -1) {
		int e = errno;
		(void)close(fd);
		return spool_sys_fail(errbuf, error_r, "stat the envelope", e);
	}
	if ((why = spool_file_check(&st, sp->owner)) != NULL ||
	    (st.st_size > SPOOL_ENV_MAX_BYTES && (why = "envelope too large") != NULL)) {
		(void)close(fd);
		return spool_fail_text(errbuf, error_r, SPOOL_ERROR, "envelope", why);
	}
	/* BOUNDS: st_size <= SPOOL_ENV_MAX_BYTES; one byte more shows a file that grew (an
	 * envelope is replaced by rename, never written in place: only a hostile one grows) */
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		ssize_t k = read(fd, buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			free(buf);
			(void)close(fd);
			return spool_sys_fail(errbuf, error_r, "read the envelope", e);
		}
		if (k == 0)
			break;
		if ((len += (size_t)k) == cap) {
			free(buf);
			(void)close(fd);
			return spool_fail_text(errbuf, error_r, SPOOL_ERROR, "envelope",
					       "changed while read");
		}
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
	char where[128];
	int r = read_env(sp, dirfd, &text, &len, errbuf, error_r);

	*env_r = NULL;
	if (r != SPOOL_OK)
		return r;
	if (envelope_parse(text, len, env_r, &line, error_r) == -1) {
		free(text);
		/* BOUNDS: the parser's errors are short constants; a cut one is still useful */
		(void)snprintf(where, sizeof(where), "line %u: %s", line, *error_r);
		return spool_fail_text(errbuf, error_r, SPOOL_ERROR, "bad envelope",
				       line > 0 ? where : *error_r);
	}
	free(text);
	if (strcmp((*env_r)->id, id) != 0) {
		envelope_free(env_r);
		return spool_fail_text(errbuf, error_r, SPOOL_ERROR, "bad envelope",
				       "id is not its name");
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
		return spool_fail_text(sp->error, error_r, SPOOL_ERROR, "not a queue id", NULL);
	m = spool_msg_alloc(sp, id);
	if ((m->dirfd = spool_open_dir(sp->queuefd, id)) == -1) {
		r = errno == ENOENT ?
			spool_fail_text(sp->error, error_r, SPOOL_GONE, "not in the queue", NULL) :
			spool_sys_fail(sp->error, error_r, "open the message", errno);
		goto fail;
	}
	if ((why = spool_dir_check(m->dirfd, sp->owner, false)) != NULL) {
		r = spool_fail_text(sp->error, error_r, SPOOL_ERROR, "message directory", why);
		goto fail;
	}
	m->datafd = openat(m->dirfd, "data", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (m->datafd == -1) {
		r = errno == ENOENT && !still_queued(sp, id, m->dirfd) ?
			spool_fail_text(sp->error, error_r, SPOOL_GONE, "left the queue", NULL) :
			spool_sys_fail(sp->error, error_r, "open the message file", errno);
		goto fail;
	}
	if (fstat(m->datafd, &st) == -1) {
		r = spool_sys_fail(sp->error, error_r, "stat the message file", errno);
		goto fail;
	}
	if ((why = spool_file_check(&st, sp->owner)) != NULL) {
		r = spool_fail_text(sp->error, error_r, SPOOL_ERROR, "message file", why);
		goto fail;
	}
	if (lock_wait(m->datafd, lock_timeout_ms) == -1) {
		r = errno == EWOULDBLOCK ?
			spool_fail_text(sp->error, error_r, SPOOL_LOCKED, "message in use", NULL) :
			spool_sys_fail(sp->error, error_r, "lock the message", errno);
		goto fail;
	}
	if (!still_queued(sp, id, m->dirfd)) {
		r = spool_fail_text(sp->error, error_r, SPOOL_GONE, "left the queue", NULL);
		goto fail;
	}
	if ((r = load_env(sp, id, m->dirfd, &m->env, sp->error, error_r)) != SPOOL_OK)
		goto fail;
	if (m->env->size != (uint64_t)st.st_size) {
		r = spool_fail_text(sp->error, error_r, SPOOL_ERROR, "bad envelope",
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
		return spool_fail_text(m->error, error_r, SPOOL_ERROR, "invalid envelope",
				       *error_r);
	(void)unlinkat(m->dirfd, "env.new", 0);   /* a crashed update's */
	r = spool_write_file(m->sp, m->dirfd, "env.new", text, len, due > time(NULL) ? due : 0,
			     SPOOL_HOOK_UPDATE_WRITE, SPOOL_HOOK_UPDATE_SYNC, m->error, error_r);
	free(text);
	if (r != SPOOL_OK)
		return r;
	if (spool_step(SPOOL_HOOK_UPDATE_RENAME) == -1 ||
	    renameat(m->dirfd, "env.new", m->dirfd, "env") == -1) {
		r = spool_sys_fail(m->error, error_r, "replace the envelope", errno);
		(void)unlinkat(m->dirfd, "env.new", 0);
		return r;
	}
	if (spool_step(SPOOL_HOOK_UPDATE_DIR_SYNC) == -1 || fsync(m->dirfd) == -1)
		return spool_sys_fail(m->error, error_r, "sync the message directory", errno);
	return SPOOL_OK;
}

int spool_msg_attempt(struct spool_msg *m, const size_t *idx, size_t n, int64_t now,
		      const char **error_r)
{
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= m->env->rcpt_count)
			return spool_fail_text(m->error, error_r, SPOOL_ERROR, "no such recipient",
					       NULL);
	}
	for (size_t i = 0; i < n; i++)
		envelope_rcpt_attempt(&m->env->rcpts[idx[i]], now);
	return spool_msg_update(m, error_r);
}

static int msg_remove(struct spool_msg **mp, bool sync, const char **error_r)
{
	struct spool_msg *m = *mp;
	struct spool *sp = m->sp;
	char del[SPOOL_ID_LEN + sizeof(DEL_SUFFIX)];
	int r = SPOOL_OK;

	*mp = NULL;
	if (!envelope_done(m->env)) {
		r = spool_fail_text(sp->error, error_r, SPOOL_ERROR, "recipients left to deliver",
				    NULL);
		goto out;
	}
	memcpy(del, m->id, SPOOL_ID_LEN);
	memcpy(del + SPOOL_ID_LEN, DEL_SUFFIX, sizeof(DEL_SUFFIX));
	if (spool_step(SPOOL_HOOK_REMOVE_RENAME) == -1 ||
	    renameat(sp->queuefd, m->id, sp->tmpfd, del) == -1) {
		r = spool_sys_fail(sp->error, error_r, "take the message out of the queue", errno);
		goto out;
	}
	/* Out of the queue now; a crash from here leaves only tmp/ID.del for cleanup. */
	if (spool_step(SPOOL_HOOK_REMOVE_SYNC) == -1 || (sync && fsync(sp->queuefd) == -1))
		r = spool_sys_fail(sp->error, error_r, "sync the queue", errno);
	if (spool_step(SPOOL_HOOK_REMOVE_DELETE) == 0) {
		(void)unlinkat(m->dirfd, "env", 0);
		(void)unlinkat(m->dirfd, "env.new", 0);
		(void)unlinkat(m->dirfd, "data", 0);
		(void)unlinkat(sp->tmpfd, del, AT_REMOVEDIR);
	}
out:
	spool_msg_close(&m);
	return r;
}

int spool_msg_remove(struct spool_msg **mp, const char **error_r)
{
	return msg_remove(mp, true, error_r);
}

int spool_msg_remove_unsynced(struct spool_msg **mp, const char **error_r)
{
	return msg_remove(mp, false, error_r);
}

void spool_msg_close(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;

	if (m == NULL)
		return;
	int e = errno;
	spool_close_fd(&m->datafd);   /* releases the lock */
	spool_close_fd(&m->dirfd);
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
	int fd = spool_open_dir(sp->queuefd, ".");
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	*it_r = NULL;
	if (d == NULL) {
		int e = errno;
		if (fd >= 0)
			(void)close(fd);
		return spool_sys_fail(sp->error, error_r, "read the queue", e);
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
		int dfd = spool_open_dir(it->sp->queuefd, id);
		if (dfd == -1) {
			if (errno == ENOENT)
				continue;   /* delivered and removed since the listing */
			*id_r = id;
			*env_r = NULL;
			(void)spool_sys_fail(it->error, error_r, "open the message", errno);
			return 1;
		}
		if ((it->flags & SPOOL_ITER_DUE) &&
		    fstatat(dfd, "env", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (int64_t)st.st_mtime > it->now + SPOOL_MTIME_SLACK_S) {
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
	int dfd = spool_open_dir(sp->tmpfd, name), datafd;
	enum clean_outcome out = CLEAN_REMOVED;

	if (dfd == -1)
		return errno == ENOENT ? CLEAN_GONE : CLEAN_FOREIGN;
	if (spool_dir_check(dfd, sp->owner, false) != NULL || fstat(dfd, &dst) == -1) {
		(void)close(dfd);
		return CLEAN_FOREIGN;
	}
	int64_t newest = (int64_t)dst.st_mtime;
	datafd = openat(dfd, "data", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (datafd >= 0) {
		if (fstat(datafd, &st) == -1 || spool_file_check(&st, sp->owner) != NULL)
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
	int fd = spool_open_dir(sp->tmpfd, ".");
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	memset(st_r, 0, sizeof(*st_r));
	if (d == NULL) {
		int e = errno;
		if (fd >= 0)
			(void)close(fd);
		return spool_sys_fail(sp->error, error_r, "read tmp", e);
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
