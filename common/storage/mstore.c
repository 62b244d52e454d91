/* Mail store: find the user's mailbox, and hand the mstore.h API to the Maildir
 * (maildir.c) or mbox (mbox.c) backend.  Reading is shared: both backends give an fd,
 * an offset and a length, read with pread in caller-sized chunks (bounded memory). */
#include <limits.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "storage/maildir.h"
#include "storage/mbox.h"
#include "storage/mstore.h"
#include "base/util.h"

struct mstore {
	enum mstore_kind kind;
	struct maildir *md;
	struct mbox *mb;
};

struct mstore_reader {
	int fd;
	bool own_fd;
	uint64_t pos;
	uint64_t left;
};

static bool user_ok(const char *user)
{
	return user != NULL && user[0] != '\0' && user[0] != '.' &&
		strchr(user, '/') == NULL && strlen(user) <= AUTH_MAX_USER;
}

/* Expand "~" (at the start) and "%u"/"%%" of spec into out.  0 or -1. */
static int expand(const char *spec, const char *user, const char *home, char *out,
		  size_t size, const char **error_r)
{
	size_t o = 0;
	const char *p = spec;

#define PUT(s, n) do { if ((n) >= size - o) goto too_long; \
		memcpy(out + o, (s), (n)); o += (n); } while (0) /* BOUNDS: checked */
	if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
		if (home == NULL || home[0] != '/') {
			*error_r = "mail_location uses ~ but the home directory is not absolute";
			return -1;
		}
		PUT(home, strlen(home));
		p++;
	}
	for (; *p != '\0'; p++) {
		if (*p != '%') {
			PUT(p, 1);
			continue;
		}
		p++;
		if (*p == 'u')
			PUT(user, strlen(user));
		else if (*p == '%')
			PUT("%", 1);
		else {
			*error_r = "mail_location: unknown % sequence (only %u and %%)";
			return -1;
		}
	}
#undef PUT
	out[o] = '\0';
	if (out[0] != '/') {
		*error_r = "mail_location: the path is not absolute";
		return -1;
	}
	return 0;
too_long:
	*error_r = "mail_location: the path is too long";
	return -1;
}

int mstore_locate(const char *mail_location, const char *user, const char *home,
		  struct mstore_loc *r, const char **error_r)
{
	if (!user_ok(user)) {
		*error_r = "invalid user name for a mailbox path";
		return -1;
	}
	if (mail_location == NULL || mail_location[0] == '\0') {
		struct stat st;
		if (home != NULL && home[0] == '/' &&
		    util_snprintf(r->path, sizeof(r->path), "%s/Maildir", home) >= 0 &&
		    stat(r->path, &st) == 0 && S_ISDIR(st.st_mode)) {
			r->kind = MSTORE_MAILDIR;
			return 0;
		}
		r->kind = MSTORE_MBOX;
		if (util_snprintf(r->path, sizeof(r->path), "/var/mail/%s", user) < 0) {
			*error_r = "mailbox path too long";
			return -1;
		}
		return 0;
	}
	const char *spec;
	if (strncmp(mail_location, "maildir:", 8) == 0) {
		r->kind = MSTORE_MAILDIR;
		spec = mail_location + 8;
	} else if (strncmp(mail_location, "mbox:", 5) == 0) {
		r->kind = MSTORE_MBOX;
		spec = mail_location + 5;
	} else {
		*error_r = "mail_location must start with maildir: or mbox:";
		return -1;
	}
	return expand(spec, user, home, r->path, sizeof(r->path), error_r);
}

int mstore_open(const struct mstore_loc *loc, struct mstore **r, const char **error_r)
{
	struct mstore *s = xcalloc(1, sizeof(*s));
	int ret;

	s->kind = loc->kind;
	if (loc->kind == MSTORE_MAILDIR)
		ret = maildir_open(loc->path, NULL, &s->md, error_r);
	else
		ret = mbox_open(loc->path, NULL, &s->mb, error_r);
	if (ret == -1) {
		free(s);
		return -1;
	}
	*r = s;
	return 0;
}

size_t mstore_count(const struct mstore *s)
{
	return s->kind == MSTORE_MAILDIR ? maildir_count(s->md) : mbox_count(s->mb);
}

struct mstore_msg *mstore_get(struct mstore *s, size_t i)
{
	return s->kind == MSTORE_MAILDIR ? maildir_msg(s->md, i) : mbox_msg(s->mb, i);
}

int mstore_reader_open(struct mstore *s, size_t i, struct mstore_reader **r,
		       const char **error_r)
{
	struct mstore_reader *rd = xcalloc(1, sizeof(*rd));
	int ret;

	if (s->kind == MSTORE_MAILDIR) {
		rd->own_fd = true;
		ret = maildir_msg_open(s->md, i, &rd->fd, &rd->left, error_r);
	} else {
		ret = mbox_msg_range(s->mb, i, &rd->fd, &rd->pos, &rd->left, error_r);
	}
	if (ret == -1) {
		free(rd);
		return -1;
	}
	*r = rd;
	return 0;
}

ssize_t mstore_reader_read(struct mstore_reader *r, void *buf, size_t n)
{
	if (r->left == 0)
		return 0;
	if (n > r->left)
		n = (size_t)r->left;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	for (;;) {
		ssize_t got = pread(r->fd, buf, n, (off_t)r->pos);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1; /* an error, or the file shrank under us */
		r->pos += (uint64_t)got;
		r->left -= (uint64_t)got;
		return got;
	}
}

void mstore_reader_close(struct mstore_reader **rp)
{
	struct mstore_reader *r = *rp;
	if (r == NULL)
		return;
	if (r->own_fd)
		close(r->fd);
	free(r);
	*rp = NULL;
}

int mstore_commit(struct mstore *s, const char **error_r)
{
	return s->kind == MSTORE_MAILDIR ? maildir_commit(s->md, error_r) :
		mbox_commit(s->mb, error_r);
}

void mstore_close(struct mstore **sp)
{
	struct mstore *s = *sp;
	if (s == NULL)
		return;
	maildir_close(&s->md);
	mbox_close(&s->mb);
	free(s);
	*sp = NULL;
}
