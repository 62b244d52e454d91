/* Maildir delivery without the index: see deliver_int.h and docs/architecture.md
 * "Exactly-once local delivery".
 *
 * Runs in the per-user delivery process, as the user.  A standard Maildir MDA: the
 * message is written into tmp/ under a unique name, fsync'd, renamed into new/, and new/
 * is fsync'd.  No index, no lock, no rescan: imapd and ipop3d add the files of new/ to
 * their index at their next scan (common/storage/maildir.c md_scan()), as they do for
 * any other MDA's.  The name has the form maildir.c's own saves get (a second-stamp
 * first, then ",S=<size>,W=<size with CRLF>"), so readers learn the sizes from it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/crlf.h"
#include "spool/envelope.h"
#include "deliver_int.h"

/* "what: strerror(e)" in w's buffer, as common/storage words its errors. */
static const char *md_err(struct deliver_md *w, const char *what, int e)
{
	snprintf(w->errbuf, sizeof(w->errbuf), "%s: %s", what, strerror(e));
	return w->errbuf;
}

int deliver_md_begin(struct deliver_md *w, const char *maildir, int *err_r,
		     const char **error_r)
{
	static unsigned counter;
	struct timespec now;
	char host[64];

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->dfd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dfd == -1) {
		*err_r = errno;
		*error_r = errno == ENOENT ? "no such folder" : md_err(w, "cannot open the Maildir", errno);
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
	if (util_snprintf(w->base, sizeof(w->base), "%lld.M%06ldP%ldQ%010u.%s",
			  (long long)now.tv_sec, now.tv_nsec / 1000, (long)getpid(),
			  ++counter, host) < 0 ||
	    util_snprintf(w->tmpname, sizeof(w->tmpname), "tmp/%s", w->base) < 0) {
		*err_r = ENAMETOOLONG;
		*error_r = "message name too long";
		deliver_md_abort(w);
		return -1;
	}
	w->fd = openat(w->dfd, w->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		       O_CLOEXEC, 0600);
	if (w->fd == -1) {
		*err_r = errno;
		*error_r = md_err(w, "create message in tmp/", errno);
		w->tmpname[0] = '\0';
		deliver_md_abort(w);
		return -1;
	}
	return 0;
}

int deliver_md_write(struct deliver_md *w, const void *buf, size_t n, int *err_r,
		     const char **error_r)
{
	if (util_write_all(w->fd, buf, n) == -1) {
		*err_r = errno;
		*error_r = md_err(w, "write message", errno);
		return -1;
	}
	w->raw += n;
	w->crlf += crlf_size(buf, n, &w->cr);
	return 0;
}

int deliver_md_finish(struct deliver_md *w, int *err_r, const char **error_r,
		      int (*hook)(int point))
{
	char key[NAME_MAX + 5];

	if (util_snprintf(key, sizeof(key), "new/%s,S=%llu,W=%llu", w->base,
			  (unsigned long long)w->raw, (unsigned long long)w->crlf) < 0) {
		*err_r = ENAMETOOLONG;
		*error_r = "message name too long";
		return -1;
	}
	if (fsync(w->fd) == -1) {
		*err_r = errno;
		*error_r = md_err(w, "fsync message", errno);
		return -1;
	}
	close(w->fd);
	w->fd = -1;
	if (renameat(w->dfd, w->tmpname, w->dfd, key) == -1) {
		*err_r = errno;
		*error_r = md_err(w, "rename message into new/", errno);
		return -1;
	}
	w->tmpname[0] = '\0';
	/* visible now, not yet durable: a crash from here on leaves an uncertain outcome,
	 * which the caller reports as such (the next attempt searches) */
	if (hook != NULL)
		(void)hook(DELIVER_HOOK_CHILD_LINKED);
	int nfd = openat(w->dfd, "new", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (nfd == -1 || fsync(nfd) == -1) {
		*err_r = errno;
		*error_r = md_err(w, "fsync new/", errno);
		if (nfd != -1)
			close(nfd);
		return -2;
	}
	close(nfd);
	close(w->dfd);
	w->dfd = -1;
	return 0;
}

void deliver_md_abort(struct deliver_md *w)
{
	if (w->fd != -1)
		close(w->fd);
	if (w->dfd != -1 && w->tmpname[0] != '\0')
		(void)unlinkat(w->dfd, w->tmpname, 0);
	if (w->dfd != -1)
		close(w->dfd);
	w->fd = w->dfd = -1;
	w->tmpname[0] = '\0';
}

struct md_ent {
	int64_t mtime;
	char *name;
};

static int ent_newest_first(const void *a, const void *b)
{
	const struct md_ent *x = a, *y = b;
	return x->mtime < y->mtime ? 1 : x->mtime > y->mtime ? -1 : 0;
}

/* One subdirectory: its regular files dated since `since`, newest first, at most
 * DELIVER_TOKEN_SCAN_MAX; the first DELIVER_TOKEN_READ_MAX bytes of each looked at.
 * *vanished: a file listed could not be opened (renamed or moved meanwhile). */
static enum deliver_md_found search_sub(int dfd, const char *sub, const char *token,
					int64_t since, bool *vanished, const char **error_r)
{
	int sfd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd == -1) {
		if (errno == ENOENT)
			return DELIVER_MD_NOTFOUND;
		*error_r = "cannot open the Maildir's new/ or cur/";
		return DELIVER_MD_ERROR;
	}
	DIR *d = fdopendir(sfd);
	if (d == NULL) {
		close(sfd);
		*error_r = "cannot read the Maildir";
		return DELIVER_MD_ERROR;
	}
	struct md_ent *e = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	enum deliver_md_found ret = DELIVER_MD_NOTFOUND;
	errno = 0;
	while (n < DELIVER_TOKEN_SCAN_MAX && (de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.' ||
		    fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode) || (int64_t)st.st_mtime < since) {
			errno = 0;
			continue;
		}
		if (n == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			e = xrealloc(e, alloc * sizeof(*e));   /* BOUNDS: n < SCAN_MAX */
		}
		e[n].mtime = (int64_t)st.st_mtime;
		e[n].name = xstrdup(de->d_name);
		n++;
		errno = 0;
	}
	if (n < DELIVER_TOKEN_SCAN_MAX && errno != 0) {
		*error_r = "reading the Maildir failed";
		ret = DELIVER_MD_ERROR;
	}
	if (n > 0)
		qsort(e, n, sizeof(*e), ent_newest_first);
	char *buf = xmalloc(DELIVER_TOKEN_READ_MAX);
	for (size_t i = 0; i < n && ret == DELIVER_MD_NOTFOUND; i++) {
		int fd = openat(sfd, e[i].name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd == -1) {
			if (errno == ENOENT)
				*vanished = true;
			continue;
		}
		size_t len = 0;
		ssize_t got = 1;
		while (len < DELIVER_TOKEN_READ_MAX &&
		       (got = read(fd, buf + len, DELIVER_TOKEN_READ_MAX - len)) != 0) {
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				break;
			len += (size_t)got;
		}
		close(fd);
		if (got < 0) {
			*error_r = "reading the mailbox failed";
			ret = DELIVER_MD_ERROR;
		} else if (envelope_token_find(buf, len, token)) {
			ret = DELIVER_MD_FOUND;
		}
	}
	free(buf);
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
	closedir(d);
	return ret;
}

enum deliver_md_found deliver_md_search(const char *maildir, const char *token, int64_t since,
					const char **error_r)
{
	int dfd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1) {
		if (errno == ENOENT)
			return DELIVER_MD_NOTFOUND;   /* no Maildir: no copy in it */
		*error_r = "cannot open the Maildir";
		return DELIVER_MD_ERROR;
	}
	/* new/ before cur/: a reader moves files from new/ to cur/, never back, so a copy
	 * moved while new/ is read is in cur/ when cur/ is read.  A file of cur/ renamed
	 * (its flags changed) while cur/ is listed may be missed by the listing: cur/ is read
	 * once more when a listed file had gone. */
	static const char *const subs[] = { "new", "cur", "cur" };
	enum deliver_md_found ret = DELIVER_MD_NOTFOUND;
	bool vanished = false;
	for (size_t s = 0; s < 3 && ret == DELIVER_MD_NOTFOUND; s++) {
		if (s == 2 && !vanished)
			break;
		ret = search_sub(dfd, subs[s], token, since, &vanished, error_r);
	}
	close(dfd);
	return ret;
}
