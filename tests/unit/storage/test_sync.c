/* What mailbox_sync() reports (storage.h): session B (another handle, or another
 * process) expunges, flags and adds; session A does a write of its own (a flag change on
 * another message, a cache fill, a save) whose index lock reads B's changes; A's next
 * sync must still report every one of them.  A keeps its own UID list the way imapd
 * does, applies each report to it, and checks it against the index.  Both backends. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/util.h"
#include "mail/mime.h"
#include "storage/storage.h"
#include "unit.h"

static char tmpdir[64];

static void put_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1);
	CHECK(util_write_all(fd, data, strlen(data)) == 0);
	close(fd);
}

/* The daemon's view: its UIDs in order (sequence number = index + 1). */
struct view {
	uint32_t uid[64];
	size_t n;
};

static void view_init(struct view *v, struct mailbox *box)
{
	v->n = mailbox_count(box);
	for (size_t i = 0; i < v->n; i++)
		v->uid[i] = mailbox_get(box, i)->uid;
}

/* Apply a report as imapd would: EXPUNGE each, then EXISTS for the new ones. */
static void view_apply(struct view *v, const struct index_changes *ch)
{
	for (size_t e = 0; e < ch->n_expunged; e++) {
		size_t i = 0;
		while (i < v->n && v->uid[i] != ch->expunged[e])
			i++;
		CHECK(i < v->n); /* only a UID the caller was told of */
		if (i == v->n)
			continue;
		memmove(&v->uid[i], &v->uid[i + 1], (v->n - i - 1) * sizeof(v->uid[0]));
		v->n--;
	}
	for (size_t a = 0; a < ch->n_added; a++) {
		CHECK(v->n == 0 || ch->added[a] > v->uid[v->n - 1]);
		if (v->n < 64)
			v->uid[v->n++] = ch->added[a];
	}
	for (size_t c = 0; c < ch->n_changed; c++) {
		bool known = false;
		for (size_t i = 0; i < v->n; i++)
			known |= v->uid[i] == ch->changed[c];
		CHECK(known);
	}
}

static bool view_matches(const struct view *v, struct mailbox *box)
{
	if (v->n != mailbox_count(box))
		return false;
	for (size_t i = 0; i < v->n; i++)
		if (mailbox_get(box, i)->uid != v->uid[i])
			return false;
	return true;
}

static bool list_is(const uint32_t *l, size_t n, const uint32_t *want, size_t nwant)
{
	return n == nwant && (n == 0 || memcmp(l, want, n * sizeof(*l)) == 0);
}
#define LIST_IS(l, n, ...) list_is((l), (n), (const uint32_t[]){ __VA_ARGS__ }, \
	sizeof((const uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))

/* changed: exactly these for Maildir; mbox may add UIDs whose flags did not change (an
 * expunge rewrites the file and moves the messages after it: storage.h) but never
 * leaves one out */
static bool changed_is(const char *kind, const uint32_t *l, size_t n, const uint32_t *want,
		       size_t nwant)
{
	if (strcmp(kind, "maildir") == 0)
		return list_is(l, n, want, nwant);
	for (size_t i = 0; i < nwant; i++) {
		bool found = false;
		for (size_t j = 0; j < n; j++)
			found |= l[j] == want[i];
		if (!found)
			return false;
	}
	return true;
}
#define CHANGED_IS(l, n, ...) changed_is(kind, (l), (n), (const uint32_t[]){ __VA_ARGS__ }, \
	sizeof((const uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))
#define CHANGED_NONE(l, n) (strcmp(kind, "maildir") != 0 || (n) == 0)

static uint32_t save(struct mailbox *box, const char *text)
{
	struct mail_save *s;
	const char *err;
	uint32_t uid = 0;
	CHECK(mailbox_save_begin(box, 0, 0, &s, &err) == 0);
	CHECK(mail_save_write(s, text, strlen(text), &err) == 0);
	CHECK(mail_save_finish(&s, &uid, &err) == 0);
	return uid;
}

static struct mail_storage *make_store(const char *kind, char *loc, size_t size)
{
	char root[256], p[512];
	const char *err;
	struct mail_storage *st = NULL;
	snprintf(root, sizeof(root), "%s/%s", tmpdir, kind);
	mkdir(root, 0700);
	if (strcmp(kind, "maildir") == 0) {
		snprintf(p, sizeof(p), "%s/Maildir", root);
		mkdir(p, 0700);
		static const char *const subs[] = { "new", "cur", "tmp" };
		for (int i = 0; i < 3; i++) {
			snprintf(p, sizeof(p), "%s/Maildir/%s", root, subs[i]);
			mkdir(p, 0700);
		}
		for (int i = 1; i <= 5; i++) {
			char body[64];
			snprintf(p, sizeof(p), "%s/Maildir/cur/170000000%d.M%dP1.host:2,", root, i,
				 i);
			snprintf(body, sizeof(body), "Subject: m%d\n\nbody %d\n", i, i);
			put_file(p, body);
		}
		snprintf(loc, size, "maildir:%s/Maildir", root);
	} else {
		char spool[2048] = "";
		for (int i = 1; i <= 5; i++) {
			char m[128];
			snprintf(m, sizeof(m), "From a@b Mon Jan  1 00:00:0%d 2024\nSubject: m%d\n\n"
				 "body %d\n\n", i, i, i);
			strcat(spool, m);
		}
		snprintf(p, sizeof(p), "%s/spool", root);
		put_file(p, spool);
		snprintf(loc, size, "mbox:%s/spool", root);
	}
	CHECK(storage_locate(loc, "ned", root, &st, &err) == 0);
	return st;
}

static void test_kind(const char *kind)
{
	char loc[512];
	const char *err;
	struct index_changes ch;
	struct mail_storage *st = make_store(kind, loc, sizeof(loc));
	struct mailbox *a, *b;
	struct view v;
	CHECK(mailbox_open(st, "INBOX", &a, &err) == 0);
	CHECK(mailbox_open(st, "INBOX", &b, &err) == 0);
	view_init(&v, a);
	CHECK(v.n == 5 && v.uid[0] == 1 && v.uid[4] == 5);

	/* B expunges 2, flags 3, adds 6; A changes flags of 1 (its lock reads B's work) */
	uint32_t two = 2;
	CHECK(mailbox_expunge(b, &two, 1, &err) == 0);
	CHECK(mailbox_set_flags(b, 3, INDEX_FLAG_FLAGGED, 0, &err) == 0);
	CHECK(save(b, "Subject: six\n\nsix\n") == 6);
	CHECK(mailbox_set_flags(a, 1, INDEX_FLAG_SEEN, 0, &err) == 0);
	/* the index under A moved already; A's view did not */
	CHECK(mailbox_count(a) == 5 && mailbox_find(a, 2, NULL) == NULL);
	CHECK(mailbox_sync(a, &ch, &err) == 0);
	CHECK(LIST_IS(ch.expunged, ch.n_expunged, 2));
	CHECK(CHANGED_IS(ch.changed, ch.n_changed, 3)); /* not 1: A's own change */
	for (size_t i = 0; i < ch.n_changed; i++)
		CHECK(ch.changed[i] != 1);
	CHECK(LIST_IS(ch.added, ch.n_added, 6));
	view_apply(&v, &ch);
	CHECK(view_matches(&v, a));
	index_changes_free(&ch);
	/* reported once */
	CHECK(mailbox_sync(a, &ch, &err) == 0);
	CHECK(ch.n_added == 0 && ch.n_expunged == 0 && ch.n_changed == 0);
	index_changes_free(&ch);

	/* B expunges 4; A fills the cache (a parse, whose write locks) */
	uint32_t four = 4;
	CHECK(mailbox_expunge(b, &four, 1, &err) == 0);
	struct mime_part *parts = NULL;
	uint64_t fills = mailbox_stats(a)->cache_fills;
	CHECK(mailbox_msg_parse(a, 5, &parts, NULL, &err) == 0);
	mime_part_free(&parts);
	CHECK(mailbox_stats(a)->cache_fills == fills + 1);
	CHECK(mailbox_cache_set(a, 1, INDEX_CACHE_HEADERS, "x", 1, &err) == 0);
	CHECK(mailbox_sync(a, &ch, &err) == 0);
	CHECK(LIST_IS(ch.expunged, ch.n_expunged, 4));
	CHECK(ch.n_added == 0 && CHANGED_NONE(ch.changed, ch.n_changed));
	view_apply(&v, &ch);
	CHECK(view_matches(&v, a));
	index_changes_free(&ch);

	/* B adds 7 and expunges it before A heard of it; B flags 5 and 1 (after A flagged 1
	 * itself); A saves (own add: reported, so that the daemon sends EXISTS from one
	 * place); the report says nothing of 7 */
	uint32_t seven = save(b, "Subject: seven\n\nseven\n");
	CHECK(seven == 7);
	CHECK(mailbox_set_flags(b, 5, INDEX_FLAG_ANSWERED, 0, &err) == 0);
	CHECK(mailbox_set_flags(b, 1, INDEX_FLAG_DRAFT, 0, &err) == 0);
	CHECK(mailbox_expunge(b, &seven, 1, &err) == 0);
	uint32_t eight = save(a, "Subject: eight\n\neight\n");
	CHECK(eight == 8);
	CHECK(mailbox_sync(a, &ch, &err) == 0);
	CHECK(LIST_IS(ch.added, ch.n_added, 8));
	CHECK(ch.n_expunged == 0);
	CHECK(CHANGED_IS(ch.changed, ch.n_changed, 1, 5));
	view_apply(&v, &ch);
	CHECK(view_matches(&v, a));
	index_changes_free(&ch);

	/* B flags 3, then A flags 3 too: A's own change is the last one, not reported; A's
	 * own expunge of 5 is reported (imapd sends EXPUNGE from sync reports only) */
	CHECK(mailbox_set_flags(b, 3, INDEX_FLAG_SEEN, 0, &err) == 0);
	CHECK(mailbox_set_flags(a, 3, INDEX_FLAG_DELETED, 0, &err) == 0);
	uint32_t five = 5;
	CHECK(mailbox_expunge(a, &five, 1, &err) == 0);
	CHECK(mailbox_sync(a, &ch, &err) == 0);
	CHECK(ch.n_added == 0 && CHANGED_NONE(ch.changed, ch.n_changed));
	for (size_t i = 0; i < ch.n_changed; i++)
		CHECK(ch.changed[i] != 3);
	CHECK(LIST_IS(ch.expunged, ch.n_expunged, 5));
	view_apply(&v, &ch);
	CHECK(view_matches(&v, a));
	index_changes_free(&ch);
	/* B saw all of it at its own sync, A's changes included */
	CHECK(mailbox_sync(b, &ch, &err) == 0);
	CHECK(mailbox_count(b) == mailbox_count(a));
	index_changes_free(&ch);

	/* another process: it expunges 1, flags 3, adds one; A saves (a write) then syncs */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct mail_storage *st2 = NULL;
		struct mailbox *c = NULL;
		char root[256];
		snprintf(root, sizeof(root), "%s/%s", tmpdir, kind);
		uint32_t one = 1;
		int bad = storage_locate(loc, "ned", root, &st2, &err) == -1 ||
			mailbox_open(st2, "INBOX", &c, &err) == -1 ||
			mailbox_expunge(c, &one, 1, &err) == -1 ||
			mailbox_set_flags(c, 3, INDEX_FLAG_FLAGGED, 0, &err) == -1;
		struct mail_save *s;
		bad |= mailbox_save_begin(c, 0, 0, &s, &err) == -1 ||
			mail_save_write(s, "Subject: n\n\nn\n", 14, &err) == -1 ||
			mail_save_finish(&s, NULL, &err) == -1;
		mailbox_close(&c);
		storage_free(&st2);
		_exit(bad ? 1 : 0);
	}
	int status = -1;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0);
	uint32_t mine = save(a, "Subject: mine\n\nmine\n");
	CHECK(mine == 10);
	if (strcmp(kind, "maildir") == 0) {
		/* an MTA delivers meanwhile; A's flag change scans under its lock */
		char p[600];
		snprintf(p, sizeof(p), "%s/%s/Maildir/new/1800000000.M9P9.host", tmpdir, kind);
		put_file(p, "Subject: mta\n\nmta\n");
		CHECK(mailbox_set_flags(a, 6, INDEX_FLAG_SEEN, 0, &err) == 0);
	}
	CHECK(mailbox_sync(a, &ch, &err) == 0);
	CHECK(LIST_IS(ch.expunged, ch.n_expunged, 1));
	CHECK(CHANGED_IS(ch.changed, ch.n_changed, 3));
	if (strcmp(kind, "maildir") == 0)
		CHECK(LIST_IS(ch.added, ch.n_added, 9, 10, 11));
	else
		CHECK(LIST_IS(ch.added, ch.n_added, 9, 10));
	view_apply(&v, &ch);
	CHECK(view_matches(&v, a));
	index_changes_free(&ch);

	mailbox_close(&b);
	mailbox_close(&a);
	storage_free(&st);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/var/tmp/test_sync.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	index_test_map_as_root = true;
	test_kind("maildir");
	test_kind("mbox");
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return unit_done("sync");
}
