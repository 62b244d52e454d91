/* Mail storage: find the user's store, and run storage.h over the backend's table
 * (storage_int.h).  What every backend shares lives here: the sync step (index lock,
 * backend scan, commit), chunked reads, saving through a temporary file, copy and move,
 * and the change-notification descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "base/util.h"
#include "mail/crlf.h"
#include "storage/storage_int.h"

const char *storage_errf(char *buf, size_t size, const char *what, int err)
{
	if (util_snprintf(buf, size, "%s: %s", what, strerror(err)) < 0)
		return what;
	return buf;
}

int storage_rename_folder_path(struct mail_storage *st, const char *from, const char *to,
			       const char **error_r)
{
	struct stat sb;

	if (lstat(to, &sb) == 0) {
		*error_r = "folder exists";
		return -1;
	}
	if (rename(from, to) == -1) {
		*error_r = storage_errf(st->err, sizeof(st->err), "rename folder", errno);
		return -1;
	}
	return 0;
}

/* ---- locating ---- */

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

int storage_locate(const char *mail_location, const char *user, const char *home,
		   struct mail_storage **r, const char **error_r)
{
	struct mail_storage *st = xcalloc(1, sizeof(*st));
	bool home_ok = home != NULL && home[0] == '/';

	if (!user_ok(user)) {
		*error_r = "invalid user name for a mailbox path";
		goto fail;
	}
	if (mail_location == NULL || mail_location[0] == '\0') {
		struct stat s;
		if (home_ok &&
		    util_snprintf(st->inbox, sizeof(st->inbox), "%s/Maildir", home) >= 0 &&
		    stat(st->inbox, &s) == 0 && S_ISDIR(s.st_mode)) {
			st->v = &maildir_storage;
		} else {
			st->v = &mbox_storage;
			if (util_snprintf(st->inbox, sizeof(st->inbox), "/var/mail/%s", user) < 0) {
				*error_r = "mailbox path too long";
				goto fail;
			}
		}
	} else {
		const char *spec;
		if (strncmp(mail_location, "maildir:", 8) == 0) {
			st->v = &maildir_storage;
			spec = mail_location + 8;
		} else if (strncmp(mail_location, "mbox:", 5) == 0) {
			st->v = &mbox_storage;
			spec = mail_location + 5;
		} else {
			*error_r = "mail_location must start with maildir: or mbox:";
			goto fail;
		}
		if (expand(spec, user, home, st->inbox, sizeof(st->inbox), error_r) == -1)
			goto fail;
	}
	if (st->v == &maildir_storage) {
		memcpy(st->folders, st->inbox, sizeof(st->folders));
	} else if (home_ok) {
		/* mbox folders in ~/mail; their indexes (UIDs, flags) in ~/mail/.postern */
		if (util_snprintf(st->folders, sizeof(st->folders), "%s/mail", home) < 0 ||
		    util_snprintf(st->index_dir, sizeof(st->index_dir), "%s/mail/.postern",
				  home) < 0) {
			*error_r = "mailbox path too long";
			goto fail;
		}
	}
	*r = st;
	return 0;
fail:
	free(st);
	return -1;
}

const char *storage_kind(const struct mail_storage *st)
{
	return st->v->kind;
}

const char *storage_inbox_path(const struct mail_storage *st)
{
	return st->inbox;
}

void storage_free(struct mail_storage **stp)
{
	free(*stp);
	*stp = NULL;
}

/* ---- mailboxes ---- */

/* ---- what changed: the pending report ---- */

/* l minus sub (both sorted, unique), in place. */
static void ul_minus(uint32_t *l, size_t *n, const uint32_t *sub, size_t nsub)
{
	size_t k = 0, j = 0;
	for (size_t i = 0; i < *n; i++) {
		while (j < nsub && sub[j] < l[i])
			j++;
		if (j < nsub && sub[j] == l[i])
			continue;
		l[k++] = l[i];
	}
	*n = k;
}

static int ul_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* l plus src, sorted, without duplicates. */
static void ul_union(uint32_t **l, size_t *n, const uint32_t *src, size_t nsrc)
{
	if (nsrc == 0)
		return;
	*l = xrealloc(*l, (*n + nsrc) * sizeof(**l)); /* BOUNDS: both bounded by UIDs seen */
	memcpy(*l + *n, src, nsrc * sizeof(*src));
	*n += nsrc;
	qsort(*l, *n, sizeof(**l), ul_cmp);
	size_t k = 1;
	for (size_t i = 1; i < *n; i++)
		if ((*l)[i] != (*l)[k - 1])
			(*l)[k++] = (*l)[i];
	*n = k;
}

/* Merge in (sorted lists, as index_lock and index_unlock give them) into box->pending,
 * so that pending always says how to go from what the caller last heard (the UIDs it
 * was told of, all below known_next) to the index as it is now:
 *   expunged: UIDs the caller knows that are gone (a UID added and expunged before the
 *             caller heard of it is in neither list);
 *   added:    UIDs at or above known_next that are here now;
 *   changed:  UIDs the caller knows whose record changed (not those in added).
 * A known UID that reappears (a failed commit read back from disk) counts as changed. */
static void pending_merge(struct mailbox *box, struct index_changes *in)
{
	struct index_changes *p = &box->pending;
	uint32_t next = box->known_next;

	ul_minus(p->changed, &p->n_changed, in->expunged, in->n_expunged);
	ul_minus(p->added, &p->n_added, in->expunged, in->n_expunged);
	/* p->added holds only UIDs >= next: one gone before the caller heard of it is in
	 * neither list */
	size_t k = 0;
	for (size_t i = 0; i < in->n_expunged; i++)
		if (in->expunged[i] < next)
			in->expunged[k++] = in->expunged[i];
	in->n_expunged = k;
	ul_union(&p->expunged, &p->n_expunged, in->expunged, in->n_expunged);

	size_t lo = 0;
	while (lo < in->n_added && in->added[lo] < next)
		lo++;
	ul_minus(p->expunged, &p->n_expunged, in->added, lo);
	ul_union(&p->changed, &p->n_changed, in->added, lo);
	ul_union(&p->added, &p->n_added, in->added + lo, in->n_added - lo);

	k = 0;
	for (size_t i = 0; i < in->n_changed; i++)
		if (in->changed[i] < next) /* not one of added */
			in->changed[k++] = in->changed[i];
	in->n_changed = k;
	ul_union(&p->changed, &p->n_changed, in->changed, in->n_changed);
	p->new_keywords |= in->new_keywords;
	index_changes_free(in);
}

int box_lock(struct mailbox *box, const char **error_r)
{
	if (index_lock(box->ix, &box->lockch, error_r) == -1) {
		index_changes_free(&box->lockch);
		return -1;
	}
	/* what the refresh learnt is kept now: a failed commit drops only the holder's own
	 * changes (index_unlock) */
	pending_merge(box, &box->lockch);
	return 0;
}

void box_unlock(struct mailbox *box)
{
	index_unlock(box->ix);
	pending_merge(box, &box->lockch);
}

/* The caller hears now: what it knows is the index as it is. */
static void pending_take(struct mailbox *box, struct index_changes *ch)
{
	const struct index_hdr *h = index_hdr(box->ix);
	if (h->uidvalidity != box->known_uidvalidity) /* every UID means something else */
		index_changes_free(&box->pending);
	if (ch != NULL)
		*ch = box->pending;
	else
		index_changes_free(&box->pending);
	memset(&box->pending, 0, sizeof(box->pending));
	box->known_next = h->uidnext;
	box->known_uidvalidity = h->uidvalidity;
}

/* Lock the index, let the backend scan, commit. */
static int sync_locked_begin(struct mailbox *box, bool force, const char **error_r)
{
	if (box_lock(box, error_r) == -1)
		return -1;
	if (box->v->scan(box, force, error_r) == -1) {
		box_unlock(box);
		return -1;
	}
	return 0;
}

/* The index cannot be written (a full disk, a read-only folder): go on with an index in
 * memory for this session, under a UIDVALIDITY of its own (so that no UID it hands out
 * can be mistaken for one of the index on disk), built by a full scan. */
static int fallback_memory(struct mailbox *box, const char *why, const char **error_r)
{
	char name[LOG_MAX_FIELD + 1], err[LOG_MAX_FIELD + 1];
	log_warn("index-failed: folder=<%s>, error=<%s>, index kept in memory",
		 log_sanitize(box->name, strlen(box->name), name),
		 log_sanitize(why, strlen(why), err));
	/* the keyword names go along: Maildir file names carry their bits */
	char kw[INDEX_MAX_KEYWORDS][INDEX_KEYWORD_MAX + 1];
	unsigned nkw = index_keyword_count(box->ix);
	for (unsigned i = 0; i < nkw; i++)
		memcpy(kw[i], index_keyword_name(box->ix, i), INDEX_KEYWORD_MAX + 1);
	index_close(&box->ix);
	box->ix = index_new_memory();
	if (box_lock(box, error_r) == -1)
		return -1;
	unsigned bit;
	for (unsigned i = 0; i < nkw; i++)
		(void)index_keyword_add(box->ix, kw[i], strlen(kw[i]), &bit, error_r);
	int ret = box->v->scan(box, true, error_r);
	if (ret == 0)
		ret = index_commit(box->ix, error_r);
	box_unlock(box);
	return ret;
}

static int sync_locked_end(struct mailbox *box, const char **error_r)
{
	const char *why;
	int ret = index_commit(box->ix, &why);
	box_unlock(box);
	if (ret == -1)
		return fallback_memory(box, why, error_r);
	return 0;
}

int mailbox_sync(struct mailbox *box, struct index_changes *ch, const char **error_r)
{
	if (ch != NULL)
		memset(ch, 0, sizeof(*ch));
	if (sync_locked_begin(box, false, error_r) == -1 ||
	    sync_locked_end(box, error_r) == -1)
		return -1;
	pending_take(box, ch);
	return 0;
}

/* A failed open frees the box, and the error may be text it owns (its own or its
 * index's): keep a copy in the storage's. */
static void open_error_keep(struct mailbox *box, const char **error_r)
{
	if (*error_r != NULL && *error_r != box->st->err) {
		snprintf(box->st->err, sizeof(box->st->err), "%s", *error_r);
		*error_r = box->st->err;
	}
}

int mailbox_open(struct mail_storage *st, const char *name, struct mailbox **r,
		 const char **error_r)
{
	struct mailbox *box = xcalloc(1, sizeof(*box));

	box->st = st;
	box->v = st->v->box;
	box->notify_fd = -1;
	bool inbox = strcmp(name, "INBOX") == 0;
	if (!inbox && storage_name_to_disk(st->v == &maildir_storage, name, box->disk,
					   sizeof(box->disk), error_r) == -1) {
		free(box);
		return -1;
	}
	memcpy(box->name, name, strlen(name) + 1); /* BOUNDS: checked <= STORAGE_NAME_MAX */
	if (st->v->folder_path(st, inbox ? NULL : box->disk, box->path,
			       sizeof(box->path)) == -1) {
		*error_r = "folder path too long";
		free(box);
		return -1;
	}
	if (box->v->open(box, error_r) == -1) {
		open_error_keep(box, error_r);
		box->v->close(box);
		free(box);
		return -1;
	}
	if (mailbox_sync(box, NULL, error_r) == -1) {
		open_error_keep(box, error_r);
		mailbox_close(&box);
		return -1;
	}
	/* an index with a key we cannot have written: rescan (bad keys are dropped) */
	for (size_t i = 0; i < index_count(box->ix); i++) {
		if (box->v->key_ok(index_get(box->ix, i)))
			continue;
		if (sync_locked_begin(box, true, error_r) == -1 ||
		    sync_locked_end(box, error_r) == -1) {
			open_error_keep(box, error_r);
			mailbox_close(&box);
			return -1;
		}
		break;
	}
	/* mbox: a MOVE out of here killed between its copies and the expunge */
	const char *mverr;
	if (st->v == &mbox_storage && mbox_move_recover(box, &mverr) == -1) {
		char safe[LOG_MAX_FIELD + 1];
		log_err("storage: cannot finish an interrupted MOVE, folder=<%s>, error=<%s>",
			log_sanitize(box->name, strlen(box->name), safe), mverr);
	}
	pending_take(box, NULL); /* the caller starts from the folder as it is now */
	*r = box;
	return 0;
}

void mailbox_close(struct mailbox **boxp)
{
	struct mailbox *box = *boxp;
	if (box == NULL)
		return;
	const char *error;
	if (box->batch != NULL) {
		(void)box_cache_flush(box, &error);
		box_cache_batch_free(box);
	}
	box->v->close(box);
	index_close(&box->ix);
	index_changes_free(&box->pending);
	index_changes_free(&box->lockch);
	if (box->notify_fd != -1)
		close(box->notify_fd);
	free(box);
	*boxp = NULL;
}

size_t mailbox_count(const struct mailbox *box)
{
	return index_count(box->ix);
}

const struct index_rec *mailbox_get(const struct mailbox *box, size_t i)
{
	return index_get(box->ix, i);
}

const struct index_rec *mailbox_find(const struct mailbox *box, uint32_t uid,
				     size_t *pos_r)
{
	return index_find(box->ix, uid, pos_r);
}

const struct index_hdr *mailbox_hdr(const struct mailbox *box)
{
	return index_hdr(box->ix);
}

const struct index_expunge *mailbox_expunges(const struct mailbox *box, size_t *n_r,
					     uint64_t *floor_r)
{
	return index_expunges(box->ix, n_r, floor_r);
}

const struct storage_stats *mailbox_stats(const struct mailbox *box)
{
	return &box->stats;
}

void mailbox_pop3_uidl(const struct mailbox *box, size_t i,
		       char uidl_r[POP3_UIDL_MAX + 1])
{
	const struct index_rec *rec = index_get(box->ix, i);
	if (rec == NULL) {
		uidl_r[0] = '\0';
		return;
	}
	box->v->pop3_uidl(box, rec, uidl_r);
}

int mailbox_notify_fd(struct mailbox *box)
{
	if (box->notify_fd != -1)
		return box->notify_fd;
	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd == -1)
		return -1;
	if (box->v->watch(box, ifd) == -1) {
		close(ifd);
		return -1;
	}
	box->notify_fd = ifd;
	return ifd;
}

void mailbox_notify_clear(struct mailbox *box)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	if (box->notify_fd == -1)
		return;
	while (read(box->notify_fd, buf, sizeof(buf)) > 0)
		;
}

/* ---- reading ---- */

int mailbox_msg_open(struct mailbox *box, uint32_t uid, struct mail_reader **r,
		     const char **error_r)
{
	const struct index_rec *rec = index_find(box->ix, uid, NULL);
	if (rec == NULL) {
		*error_r = "no such message";
		return -1;
	}
	struct mail_reader *rd = xcalloc(1, sizeof(*rd));
	rd->box = box;
	rd->fd = -1;
	rd->rec = *rec;
	rd->rec.key = NULL;
	if (box->v->msg_open(box, rec, rd, error_r) == -1) {
		mail_reader_close(&rd);
		return -1;
	}
	*r = rd;
	return 0;
}

ssize_t mail_reader_read(struct mail_reader *r, void *buf, size_t n, const char **error_r)
{
	if (r->left == 0)
		return 0;
	if (n > r->left)
		n = (size_t)r->left;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	if (r->box->v->read_check != NULL && r->box->v->read_check(r, error_r) == -1)
		return -1;
	ssize_t got;
	do
		got = pread(r->fd, buf, n, (off_t)r->pos);
	while (got < 0 && errno == EINTR);
	if (r->box->v->read_done != NULL)
		r->box->v->read_done(r);
	if (got <= 0) {
		*error_r = got < 0 ? BOX_ERRF(r->box, "read message", errno) :
			"message was changed by another program";
		return -1;
	}
	r->pos += (uint64_t)got;
	r->left -= (uint64_t)got;
	return got;
}

void mail_reader_close(struct mail_reader **rp)
{
	struct mail_reader *r = *rp;
	if (r == NULL)
		return;
	if (r->own_fd && r->fd != -1)
		close(r->fd);
	free(r);
	*rp = NULL;
}

/* ---- changing ---- */

int mailbox_set_flags_many(struct mailbox *box, struct mailbox_flag_change *ch, size_t n,
			   const char **error_r)
{
	if (n == 0)
		return 0;
	if (sync_locked_begin(box, false, error_r) == -1)
		return -1;
	uint32_t *own = xmalloc(n * sizeof(*own));
	size_t nown = 0;
	for (size_t i = 0; i < n; i++) {
		struct mailbox_flag_change *c = &ch[i];
		c->modified = c->gone = false;
		const struct index_rec *cur = index_find(box->ix, c->uid, NULL);
		if (cur == NULL) {
			c->gone = true;
			continue;
		}
		if (cur->modseq > c->unchangedsince) {
			c->modified = true;
			continue;
		}
		uint32_t want = c->flags & INDEX_FLAG_MASK & ~INDEX_FLAG_RECENT;
		uint32_t f = c->mode == MAILBOX_FLAGS_ADD ? cur->flags | want :
			     c->mode == MAILBOX_FLAGS_REMOVE ? cur->flags & ~want : want;
		uint32_t k = c->mode == MAILBOX_FLAGS_ADD ? cur->keywords | c->keywords :
			     c->mode == MAILBOX_FLAGS_REMOVE ? cur->keywords & ~c->keywords :
			     c->keywords;
		/* \Recent is not a flag the caller sets: the record keeps it until a claim */
		f = (f & ~INDEX_FLAG_RECENT) | (cur->flags & INDEX_FLAG_RECENT);
		if (f == cur->flags && k == cur->keywords)
			continue;
		struct index_rec rec = *cur;
		rec.flags = f;
		rec.keywords = k;
		if (box->v->set_flags(box, &rec, error_r) == -1 ||
		    index_update(box->ix, &rec, error_r) == -1) {
			box_unlock(box);
			free(own);
			return -1;
		}
		own[nown++] = c->uid;   /* BOUNDS: nown <= i < n */
	}
	int ret = sync_locked_end(box, error_r);
	/* the caller's own flag changes: it reports them itself (storage.h) */
	if (ret == 0 && nown > 0) {
		qsort(own, nown, sizeof(*own), ul_cmp);
		ul_minus(box->pending.changed, &box->pending.n_changed, own, nown);
	}
	free(own);
	return ret;
}

int mailbox_set_flags(struct mailbox *box, uint32_t uid, uint32_t flags,
		      uint32_t keywords, const char **error_r)
{
	struct mailbox_flag_change c = {
		.uid = uid, .mode = MAILBOX_FLAGS_SET, .flags = flags, .keywords = keywords,
		.unchangedsince = UINT64_MAX,
	};
	if (mailbox_set_flags_many(box, &c, 1, error_r) == -1)
		return -1;
	if (c.gone) {
		*error_r = "message was expunged";
		return -1;
	}
	return 0;
}

int mailbox_claim_recent(struct mailbox *box, uint32_t max_uid, uint32_t **uids_r,
			 size_t *n_r, const char **error_r)
{
	*uids_r = NULL;
	*n_r = 0;
	if (sync_locked_begin(box, false, error_r) == -1)
		return -1;
	uint32_t *uids = NULL;
	size_t k = 0, cap = 0, n = index_count(box->ix);
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *cur = index_get(box->ix, i);
		if (cur == NULL || !(cur->flags & INDEX_FLAG_RECENT) || cur->uid > max_uid)
			continue;
		struct index_rec rec = *cur;
		rec.flags &= ~INDEX_FLAG_RECENT;
		if (index_update_quiet(box->ix, &rec, error_r) == -1) {
			box_unlock(box);   /* nothing committed: every claim is dropped */
			free(uids);
			return -1;
		}
		if (k == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			uids = xrealloc(uids, cap * sizeof(*uids)); /* BOUNDS: k <= n records */
		}
		uids[k++] = rec.uid;
	}
	if (sync_locked_end(box, error_r) == -1) {
		free(uids);
		return -1;
	}
	*uids_r = uids;
	*n_r = k;
	return 0;
}

int mailbox_expunge(struct mailbox *box, const uint32_t *uids, size_t n,
		    const char **error_r)
{
	if (n == 0)
		return 0;
	if (sync_locked_begin(box, false, error_r) == -1)
		return -1;
	if (box->v->expunge(box, uids, n, error_r) == -1) {
		/* what was removed is in the index already; commit it */
		const char *e2;
		(void)sync_locked_end(box, &e2);
		return -1;
	}
	return sync_locked_end(box, error_r);
}

int mailbox_keyword_lookup(struct mailbox *box, const char *name, bool create,
			   unsigned *bit_r, const char **error_r)
{
	size_t len = strlen(name);
	int bit = index_keyword_find(box->ix, name, len);
	if (bit != -1) {
		*bit_r = (unsigned)bit;
		return 1;
	}
	if (!create)
		return 0;
	if (box_lock(box, error_r) == -1)
		return -1;
	if (index_keyword_add(box->ix, name, len, bit_r, error_r) == -1) {
		box_unlock(box);
		return -1;
	}
	if (sync_locked_end(box, error_r) == -1)
		return -1;
	/* a fallback to memory keeps the names, so the bit is still right */
	return 1;
}

const char *mailbox_keyword_name(const struct mailbox *box, unsigned bit)
{
	return index_keyword_name(box->ix, bit);
}

unsigned mailbox_keyword_count(const struct mailbox *box)
{
	return index_keyword_count(box->ix);
}

/* ---- saving ---- */

int mailbox_save_begin(struct mailbox *box, int64_t date, uint32_t flags,
		       struct mail_save **r, const char **error_r)
{
	struct mail_save *s = xcalloc(1, sizeof(*s));
	s->box = box;
	s->fd = -1;
	s->date = date > 0 ? date : (int64_t)time(NULL);
	s->flags = flags & INDEX_FLAG_MASK & ~INDEX_FLAG_RECENT;
	if (box->v->save_begin(box, s, error_r) == -1) {
		free(s);
		return -1;
	}
	*r = s;
	return 0;
}

int mail_save_write(struct mail_save *s, const void *buf, size_t n, const char **error_r)
{
	if (util_write_all(s->fd, buf, n) == -1) {
		*error_r = BOX_ERRF(s->box, "write message", errno);
		return -1;
	}
	s->raw += n;
	s->crlf += crlf_size(buf, n, &s->cr);
	return 0;
}

int mail_save_finish(struct mail_save **sp, uint32_t *uid_r, const char **error_r)
{
	struct mail_save *s = *sp;
	struct mailbox *box = s->box;
	int ret = -1;

	*sp = NULL;
	if (fsync(s->fd) == -1) {
		*error_r = BOX_ERRF(box, "fsync message", errno);
		goto out;
	}
	if (box_lock(box, error_r) == -1)
		goto out;
	if (box->v->save_finish(box, s, error_r) == -1) {
		box_unlock(box);
		goto out;
	}
	if (sync_locked_end(box, error_r) == -1)
		goto out;
	if (uid_r != NULL)
		*uid_r = s->uid;
	ret = 0;
out:
	if (ret == -1)
		box->v->save_abort(box, s);
	if (s->fd != -1 && !s->fd_shared)
		close(s->fd);
	free(s);
	return ret;
}

void mail_save_abort(struct mail_save **sp)
{
	struct mail_save *s = *sp;
	if (s == NULL)
		return;
	s->box->v->save_abort(s->box, s);
	if (s->fd != -1 && !s->fd_shared)
		close(s->fd);
	free(s);
	*sp = NULL;
}

int mailbox_copy(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *uid_r,
		 const char **error_r)
{
	const struct index_rec *rec = index_find(src->ix, uid, NULL);
	if (rec == NULL) {
		*error_r = "no such message";
		return -1;
	}
	struct mail_reader *r;
	struct mail_save *s;
	if (mailbox_save_begin(dst, rec->date, rec->flags, &s, error_r) == -1)
		return -1;
	if (mailbox_msg_open(src, uid, &r, error_r) == -1) {
		mail_save_abort(&s);
		return -1;
	}
	char *buf = xmalloc(IO_CHUNK);
	ssize_t n;
	while ((n = mail_reader_read(r, buf, IO_CHUNK, error_r)) > 0)
		if (mail_save_write(s, buf, (size_t)n, error_r) == -1) {
			n = -1;
			break;
		}
	free(buf);
	mail_reader_close(&r);
	if (n < 0) {
		mail_save_abort(&s);
		return -1;
	}
	return mail_save_finish(&s, uid_r, error_r);
}

/* A backend that can move in one atomic step (Maildir: a rename) does: a crash leaves
 * the message in one folder, never both.  Else (mbox, the same folder, a name taken in
 * dst) copy + expunge: a crash between the two leaves it in both (RFC 6851 allows that,
 * never a loss).  1: not done here. */
static int move_atomic(struct mailbox *src, uint32_t uid, struct mailbox *dst,
		       uint32_t *uid_r, const char **error_r)
{
	char key[STORAGE_PATH_MAX];

	if (src->v->move_out == NULL || src->v != dst->v || strcmp(src->path, dst->path) == 0)
		return 1;
	if (sync_locked_begin(src, false, error_r) == -1)
		return -1;
	const struct index_rec *rec = index_find(src->ix, uid, NULL);
	if (rec == NULL) {
		box_unlock(src);
		*error_r = "message was expunged";
		return -1;
	}
	int r = src->v->move_out(src, rec, dst, key, sizeof(key), error_r);
	if (r != 0) {
		box_unlock(src);
		return r;
	}
	if (sync_locked_end(src, error_r) == -1)
		return -1;
	uint32_t nuid = 0;
	if (box_lock(dst, error_r) == -1)
		return -1;
	if (dst->v->move_in(dst, key, &nuid, error_r) == -1) {
		box_unlock(dst);
		return -1;
	}
	if (sync_locked_end(dst, error_r) == -1)
		return -1;
	if (uid_r != NULL)
		*uid_r = nuid;
	return 0;
}

int mailbox_move(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *uid_r,
		 const char **error_r)
{
	int r = move_atomic(src, uid, dst, uid_r, error_r);
	if (r != 1)
		return r;
	if (mailbox_copy(src, uid, dst, uid_r, error_r) == -1)
		return -1;
	return mailbox_expunge(src, &uid, 1, error_r);
}

/* ---- batches (storage.h) ---- */

struct mail_batch *mailbox_batch_begin(struct mailbox *box)
{
	struct mail_batch *b = xcalloc(1, sizeof(*b));
	b->box = box;
	b->fd = -1;
	return b;
}

int mail_batch_save_begin(struct mail_batch *b, int64_t date, uint32_t flags,
			  struct mail_save **r, const char **error_r)
{
	struct mail_save *s = xcalloc(1, sizeof(*s));
	s->box = b->box;
	s->batch = b;
	s->fd = -1;
	s->date = date > 0 ? date : (int64_t)time(NULL);
	s->flags = flags & INDEX_FLAG_MASK & ~INDEX_FLAG_RECENT;
	if (b->box->v->save_begin(b->box, s, error_r) == -1) {
		free(s);
		return -1;
	}
	*r = s;
	return 0;
}

int mail_batch_add(struct mail_batch *b, struct mail_save **sp, const char **error_r)
{
	struct mail_save *s = *sp;

	if (!s->fd_shared) {
		/* written and synced now; the commit only renames it */
		if (fsync(s->fd) == -1) {
			*error_r = BOX_ERRF(b->box, "fsync message", errno);
			return -1;   /* still the caller's: mail_save_abort() */
		}
		close(s->fd);
		s->fd = -1;
	}
	if (b->n == b->cap) {
		b->cap = b->cap == 0 ? 16 : b->cap * 2;   /* BOUNDS: n messages the caller read */
		b->saves = xrealloc(b->saves, b->cap * sizeof(*b->saves));
	}
	b->saves[b->n++] = s;
	*sp = NULL;
	return 0;
}

size_t mail_batch_count(const struct mail_batch *b)
{
	return b->n;
}

void mail_batch_abort(struct mail_batch **bp)
{
	struct mail_batch *b = *bp;

	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		mail_save_abort(&b->saves[i]);
	if (b->fd != -1)
		close(b->fd);
	free(b->saves);
	free(b);
	*bp = NULL;
}

int mail_batch_commit(struct mail_batch **bp, uint32_t *uids_r, const char **error_r)
{
	struct mail_batch *b = *bp;
	struct mailbox *box = b->box;
	int ret = -1;

	*bp = NULL;
	if (b->n == 0) {
		ret = 0;
		goto out;
	}
	if (b->fd != -1 && fsync(b->fd) == -1) {
		*error_r = BOX_ERRF(box, "fsync message", errno);
		goto out;
	}
	if (box_lock(box, error_r) == -1)
		goto out;
	if (box->v->save_commit(box, b->saves, b->n, error_r) == -1) {
		box_unlock(box);   /* the index changes of a failed commit are dropped */
		goto out;
	}
	/* RFC 3501 6.3.11 and 6.4.7: an appended or copied message is \Recent, whatever its
	 * flags (Maildir's scan makes only new/ recent; one with flags went to cur/).  A
	 * quiet update: it is part of the message's arrival, not a change of its flags. */
	for (size_t i = 0; i < b->n; i++) {
		const struct index_rec *cur = index_find(box->ix, b->saves[i]->uid, NULL);
		if (cur == NULL || (cur->flags & INDEX_FLAG_RECENT))
			continue;
		struct index_rec rec = *cur;
		rec.flags |= INDEX_FLAG_RECENT;
		const char *why;
		if (index_update_quiet(box->ix, &rec, &why) == -1)
			break;   /* not worth failing a save that is on disk */
	}
	/* the messages are in the folder: an index that cannot be written now falls back
	 * to memory (sync_locked_end), the save stands */
	if (sync_locked_end(box, error_r) == -1)
		goto out;
	for (size_t i = 0; i < b->n; i++)
		uids_r[i] = b->saves[i]->uid;
	ret = 0;
out:
	mail_batch_abort(&b);   /* committed saves have nothing left to remove */
	return ret;
}

/* One message of src into the batch. */
static int copy_one(struct mailbox *src, uint32_t uid, struct mail_batch *b, char *buf,
		    const char **error_r)
{
	const struct index_rec *rec = index_find(src->ix, uid, NULL);
	struct mail_reader *r;
	struct mail_save *s;

	if (rec == NULL) {
		*error_r = "no such message";
		return -1;
	}
	if (mail_batch_save_begin(b, rec->date, rec->flags, &s, error_r) == -1)
		return -1;
	if (mailbox_msg_open(src, uid, &r, error_r) == -1) {
		mail_save_abort(&s);
		return -1;
	}
	ssize_t n;
	while ((n = mail_reader_read(r, buf, IO_CHUNK, error_r)) > 0)
		if (mail_save_write(s, buf, (size_t)n, error_r) == -1) {
			n = -1;
			break;
		}
	mail_reader_close(&r);
	if (n < 0 || mail_batch_add(b, &s, error_r) == -1) {
		mail_save_abort(&s);
		return -1;
	}
	return 0;
}

/* A copy gets its original's keywords, by name (each folder numbers its own, and a name
 * new to dst is added to it).  After the commit: the message is there; a keyword that
 * cannot be set (dst's table full, a write error) is logged, the copy stands. */
static void keywords_to(struct mailbox *src, uint32_t kws, uint32_t flags,
			struct mailbox *dst, uint32_t dst_uid)
{
	uint32_t mask = 0;
	const char *error = NULL;
	for (unsigned bit = 0; bit < 32 && kws != 0; bit++) {
		const char *name = (kws & (1u << bit)) ? mailbox_keyword_name(src, bit) : NULL;
		unsigned kw;
		if (name != NULL && mailbox_keyword_lookup(dst, name, true, &kw, &error) > 0 &&
		    kw < 32)
			mask |= 1u << kw;
	}
	if (mask != 0 && dst_uid != 0 &&
	    mailbox_set_flags(dst, dst_uid, flags & ~INDEX_FLAG_RECENT, mask, &error) == -1)
		error = error != NULL ? error : "set flags";
	if (error != NULL) {
		char safe[LOG_MAX_FIELD + 1], safe2[LOG_MAX_FIELD + 1];
		log_warn("storage: a copy lost its keywords, folder=<%s>, error=<%s>",
			 log_sanitize(dst->name, strlen(dst->name), safe),
			 log_sanitize(error, strlen(error), safe2));
	}
}

/* MOVE where the backend moves a message in one step (Maildir: a rename): message by
 * message, each moved or left alone, never in both folders (RFC 6851 3.3), and no room
 * needed on a full disk; else (mbox) each is copied, then expunged.  Stops at the first
 * failure with the ones before it moved (uids_r[i] = 0 for the rest). */
static int move_each(struct mailbox *src, const uint32_t *uids, size_t n,
		     struct mailbox *dst, uint32_t *uids_r, const char **error_r)
{
	for (size_t i = 0; i < n; i++)
		uids_r[i] = 0;
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *rec = index_find(src->ix, uids[i], NULL);
		if (rec == NULL) {
			*error_r = "no such message";
			return -1;
		}
		uint32_t kws = rec->keywords, flags = rec->flags;
		if (mailbox_move(src, uids[i], dst, &uids_r[i], error_r) == -1)
			return -1;
		if (kws != 0)
			keywords_to(src, kws, flags, dst, uids_r[i]);
	}
	return 0;
}

int mailbox_copy_many(struct mailbox *src, const uint32_t *uids, size_t n,
		      struct mailbox *dst, bool move, uint32_t *uids_r, const char **error_r)
{
	if (move && src->v->move_out != NULL && dst->v->move_in != NULL && src != dst)
		return move_each(src, uids, n, dst, uids_r, error_r);
	struct mail_batch *b = mailbox_batch_begin(dst);
	char *buf = xmalloc(IO_CHUNK);
	int ret = 0;

	if (move && src != dst) { /* mbox: an intent, so that a kill leaves one copy */
		b->move_src = src;
		b->move_uids = uids;
	}

	for (size_t i = 0; i < n && ret == 0; i++)
		ret = copy_one(src, uids[i], b, buf, error_r);
	free(buf);
	if (ret == -1) {
		mail_batch_abort(&b);
		return -1;
	}
	if (mail_batch_commit(&b, uids_r, error_r) == -1) {
		/* the copies were cut back, or stand with the index failing: the intent
		 * stays, and the next open of src expunges the originals of those there */
		mbox_move_done(src, false);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *rec = index_find(src->ix, uids[i], NULL);
		if (rec != NULL && rec->keywords != 0)
			keywords_to(src, rec->keywords, rec->flags, dst, uids_r[i]);
	}
	if (!move || n == 0 || mailbox_expunge(src, uids, n, error_r) == 0) {
		if (move)
			mbox_move_done(src, true);
		return 0;
	}
	/* the originals stay: take the copies back, so that the MOVE did nothing */
	const char *error2;
	if (mailbox_expunge(dst, uids_r, n, &error2) == -1) {
		char safe[LOG_MAX_FIELD + 1];
		log_err("storage: a failed MOVE left its copies, folder=<%s>, error=<%s>",
			log_sanitize(dst->name, strlen(dst->name), safe), error2);
		mbox_move_done(src, false); /* the next open of src expunges the originals */
	} else {
		mbox_move_done(src, true);
	}
	return -1;
}
