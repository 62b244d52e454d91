/* msgcache.c over both backends: a message's MIME structure and envelope are parsed on
 * first use and cached (both in one pass), a second call, a re-opened mailbox and another
 * process get them from the cache without reading the message; mbox ">From " lines are
 * parsed as the reader gives them; a corrupt entry, or a valid one of another message, is
 * refused and the message parsed again; an index in memory works; a cache write that
 * fails (file size limit: the disk-full case) or an entry too big still returns the
 * result and changes nothing else (UIDVALIDITY kept). */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/util.h"
#include "mail/mime.h"
#include "storage/storage.h"
#include "unit.h"

static char tmpdir[64];

static const char msg1[] =
	"From: Ann <ann@example.org>\n"
	"To: bob@example.org\n"
	"Subject: cached\n"
	"Message-ID: <m1@example.org>\n"
	"Content-Type: multipart/mixed; boundary=\"b1\"\n"
	"\n"
	"--b1\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"\n"
	"From here a line an mbox must quote\n"
	"hello\n"
	"--b1\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"Subject: inner\n"
	"\n"
	"inner body\n"
	"--b1--\n";

static const char msg2[] = "Subject: second\nDate: Tue, 2 Jan 2024 10:00:00 +0100\n\nshort\n";

static struct mail_storage *make_store(const char *kind, const char *name, bool home)
{
	char root[256], loc[300];
	struct mail_storage *st = NULL;
	const char *err;
	snprintf(root, sizeof(root), "%s/%s", tmpdir, name);
	mkdir(root, 0700);
	if (strcmp(kind, "maildir") == 0) {
		static const char *const subs[] = { "", "/new", "/cur", "/tmp" };
		for (int i = 0; i < 4; i++) {
			char p[320];
			snprintf(p, sizeof(p), "%s/Maildir%s", root, subs[i]);
			mkdir(p, 0700);
		}
		snprintf(loc, sizeof(loc), "maildir:%s/Maildir", root);
	} else {
		snprintf(loc, sizeof(loc), "mbox:%s/spool", root);
		char p[320];
		snprintf(p, sizeof(p), "%s/spool", root);
		FILE *f = fopen(p, "w");
		CHECK(f != NULL);
		if (f != NULL)
			fclose(f);
	}
	CHECK(storage_locate(loc, "ned", home ? root : NULL, &st, &err) == 0);
	return st;
}

static uint32_t save(struct mailbox *box, const char *msg)
{
	struct mail_save *s;
	const char *err;
	uint32_t uid = 0;
	CHECK(mailbox_save_begin(box, 0, 0, &s, &err) == 0);
	CHECK(mail_save_write(s, msg, strlen(msg), &err) == 0);
	CHECK(mail_save_finish(&s, &uid, &err) == 0);
	return uid;
}

static struct mime_part *parse_direct(const char *msg)
{
	struct mime_parser *p = mime_parser_new();
	struct mime_part *root;
	mime_parser_feed(p, msg, strlen(msg));
	mime_parser_finish(&p, &root, NULL);
	return root;
}

/* The tree of msg1 as stored in box. */
static void check_msg1(struct mailbox *box, uint32_t uid, const struct mime_part *root,
		       bool mbox)
{
	const struct index_rec *rec = mailbox_find(box, uid, NULL);
	CHECK(rec != NULL && root != NULL);
	if (rec == NULL || root == NULL)
		return;
	CHECK(root->hdr_size + root->body_size == rec->raw);
	CHECK(root->hdr_size_crlf + root->body_size_crlf == rec->size);
	CHECK(strcmp(root->subtype, "mixed") == 0 && root->n_children == 2);
	const struct mime_part *text = root->children;
	CHECK(text->body_lines == 2);
	/* mbox: the body as the reader gives it, with the quoted line */
	CHECK(text->body_size == strlen("From here a line an mbox must quote\nhello") +
	      (mbox ? 1 : 0));
	const struct mime_part *m = text->next;
	CHECK((m->flags & MIME_PART_MESSAGE) != 0 && m->children != NULL &&
	      m->children->envelope != NULL &&
	      strcmp(m->children->envelope->value[ENV_SUBJECT], "inner") == 0);
	struct mail_reader *r;
	const char *err;
	char buf[1024];
	size_t got = 0;
	ssize_t n;
	CHECK(mailbox_msg_open(box, uid, &r, &err) == 0);
	while ((n = mail_reader_read(r, buf + got, sizeof(buf) - got, &err)) > 0)
		got += (size_t)n;
	mail_reader_close(&r);
	CHECK(got == rec->raw);
	CHECK(memcmp(buf + text->body_offset, mbox ? ">From here" : "From here",
		     mbox ? 10 : 9) == 0);
}

/* In a child process: open the folder, get the parts; exit 0 if they came from the
 * cache. */
static int other_session(const char *kind, const char *name)
{
	char root[256], loc[300];
	struct mail_storage *st;
	struct mailbox *box;
	struct mime_part *parts;
	const char *err;
	snprintf(root, sizeof(root), "%s/%s", tmpdir, name);
	if (strcmp(kind, "maildir") == 0)
		snprintf(loc, sizeof(loc), "maildir:%s/Maildir", root);
	else
		snprintf(loc, sizeof(loc), "mbox:%s/spool", root);
	if (storage_locate(loc, "ned", root, &st, &err) == -1 ||
	    mailbox_open(st, "INBOX", &box, &err) == -1 || mailbox_count(box) < 1 ||
	    mailbox_msg_parts(box, mailbox_get(box, 0)->uid, &parts, &err) == -1)
		return 2;
	int ret = mailbox_stats(box)->msgs_parsed == 0 && mailbox_stats(box)->cache_hits == 1 &&
		parts->n_children == 2 ? 0 : 1;
	mime_part_free(&parts);
	mailbox_close(&box);
	storage_free(&st);
	return ret;
}

static void test_fill_and_hit(const char *kind)
{
	bool mbox = strcmp(kind, "mbox") == 0;
	struct mail_storage *st = make_store(kind, mbox ? "fill-mbox" : "fill-md", true);
	struct mailbox *box;
	struct mime_part *a = NULL, *b = NULL;
	struct mail_envelope_fields *env = NULL;
	const char *err;
	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	uint32_t uid = save(box, msg1);
	CHECK(mailbox_msg_parts(box, uid, &a, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == 1 && mailbox_stats(box)->cache_fills == 1);
	check_msg1(box, uid, a, mbox);
	CHECK(mailbox_msg_parts(box, uid, &b, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == 1 && mailbox_stats(box)->cache_hits == 1);
	CHECK(mimeser_parts_equal(a, b));
	/* the envelope was cached in the same pass */
	CHECK(mailbox_msg_envelope(box, uid, &env, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == 1 && mailbox_stats(box)->cache_hits == 2);
	CHECK(env != NULL && strcmp(env->value[ENV_SUBJECT], "cached") == 0 &&
	      strcmp(env->value[ENV_MESSAGE_ID], "<m1@example.org>") == 0 &&
	      env->value[ENV_CC] == NULL);
	mime_envelope_free(&env);
	mime_part_free(&b);

	/* another process */
	pid_t pid = fork();
	if (pid == 0)
		_exit(other_session(kind, mbox ? "fill-mbox" : "fill-md"));
	int status = -1;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* the mailbox opened again */
	mailbox_close(&box);
	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	CHECK(mailbox_msg_parts(box, uid, &b, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == 0 && mailbox_stats(box)->cache_hits == 1);
	CHECK(mimeser_parts_equal(a, b));
	mime_part_free(&b);

	/* envelope first on a new message: the parts come from the same pass */
	uint32_t uid2 = save(box, msg2);
	CHECK(mailbox_msg_envelope(box, uid2, &env, &err) == 0);
	CHECK(env != NULL && strcmp(env->value[ENV_SUBJECT], "second") == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == 1);
	CHECK(mailbox_msg_parts(box, uid2, &b, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == 1);
	CHECK(b != NULL && b->body_lines == 1);
	mime_part_free(&b);
	mime_envelope_free(&env);

	/* corrupt entries are not trusted */
	uint64_t parsed = mailbox_stats(box)->msgs_parsed;
	CHECK(mailbox_cache_set(box, uid, INDEX_CACHE_BODYSTRUCTURE, "\x01junk", 5, &err) == 0);
	CHECK(mailbox_msg_parts(box, uid, &b, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == parsed + 1 && mailbox_stats(box)->cache_bad == 1);
	CHECK(mimeser_parts_equal(a, b));
	mime_part_free(&b);
	CHECK(mailbox_msg_parts(box, uid, &b, &err) == 0); /* replaced: a hit again */
	CHECK(mailbox_stats(box)->msgs_parsed == parsed + 1);
	mime_part_free(&b);
	/* a well-formed tree, but of another message */
	struct mime_part *other = parse_direct(msg2);
	size_t len;
	unsigned char *ser = mimeser_parts_write(other, &len);
	CHECK(mailbox_cache_set(box, uid, INDEX_CACHE_BODYSTRUCTURE, ser, len, &err) == 0);
	free(ser);
	mime_part_free(&other);
	CHECK(mailbox_msg_parts(box, uid, &b, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == parsed + 2 && mailbox_stats(box)->cache_bad == 2);
	CHECK(mimeser_parts_equal(a, b));
	mime_part_free(&b);
	CHECK(mailbox_cache_set(box, uid, INDEX_CACHE_ENVELOPE, "\x01\xff\xff", 3, &err) == 0);
	CHECK(mailbox_msg_envelope(box, uid, &env, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == parsed + 3 && mailbox_stats(box)->cache_bad == 3);
	CHECK(env != NULL && strcmp(env->value[ENV_SUBJECT], "cached") == 0);
	mime_envelope_free(&env);

	CHECK(mailbox_msg_parts(box, 999999, &b, &err) == -1);
	mime_part_free(&a);
	mailbox_close(&box);
	storage_free(&st);
}

/* An mbox without a home keeps its index in memory: the cache works for the session. */
static void test_memory_index(void)
{
	struct mail_storage *st = make_store("mbox", "memory", false);
	struct mailbox *box;
	struct mime_part *a = NULL;
	const char *err;
	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	uint32_t uid = save(box, msg1);
	CHECK(mailbox_msg_parts(box, uid, &a, &err) == 0);
	mime_part_free(&a);
	CHECK(mailbox_msg_parts(box, uid, &a, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == 1 && mailbox_stats(box)->cache_hits == 1);
	check_msg1(box, uid, a, true);
	mime_part_free(&a);
	mailbox_close(&box);
	storage_free(&st);
}

/* The cache write fails (no file may grow: what a full disk does to the index): the
 * result is returned, UIDVALIDITY stays.  Run in a child (the limit is per process). */
static int failing_write(void)
{
	struct mail_storage *st = make_store("maildir", "fsize", true);
	struct mailbox *box;
	struct mime_part *a = NULL, *b = NULL;
	const char *err;
	if (mailbox_open(st, "INBOX", &box, &err) == -1)
		return 10;
	uint32_t uid = save(box, msg1);
	uint32_t uidv = mailbox_hdr(box)->uidvalidity;
	struct rlimit rl = { 0, 0 };
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		return 11;
	if (mailbox_msg_parts(box, uid, &a, &err) == -1 || a->n_children != 2)
		return 12;
	if (mailbox_stats(box)->cache_fills != 0 || mailbox_stats(box)->msgs_parsed != 1)
		return 13;
	if (mailbox_msg_parts(box, uid, &b, &err) == -1 || !mimeser_parts_equal(a, b))
		return 14;
	/* (the entry the failed commit applied may still serve this process) */
	if (mailbox_stats(box)->cache_fills != 0 || mailbox_hdr(box)->uidvalidity != uidv ||
	    mailbox_find(box, uid, NULL) == NULL)
		return 15;
	mime_part_free(&a);
	mime_part_free(&b);
	mailbox_close(&box);
	storage_free(&st);
	return 0;
}

/* A tree whose binary form is over INDEX_CACHE_ENTRY_MAX is returned, not cached. */
static void test_too_big(void)
{
	struct mail_storage *st = make_store("maildir", "big", true);
	struct mailbox *box;
	struct mime_part *a = NULL;
	const char *err;
	size_t size = 400 * 300 + 100, o = 0;
	char *msg = xmalloc(size);
	o += (size_t)snprintf(msg, size, "Content-Type: multipart/mixed; boundary=b\n\n");
	char desc[201];
	memset(desc, 'd', 200);
	desc[200] = '\0';
	for (int i = 0; i < 400; i++)
		o += (size_t)snprintf(msg + o, size - o, "--b\nContent-Description: %s\n\nx\n",
				      desc);
	CHECK(o < size);
	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	uint32_t uid = save(box, msg);
	CHECK(mailbox_msg_parts(box, uid, &a, &err) == 0);
	CHECK(a != NULL && a->n_children == 400);
	mime_part_free(&a);
	CHECK(mailbox_stats(box)->cache_fills == 0);
	CHECK(mailbox_msg_parts(box, uid, &a, &err) == 0);
	CHECK(mailbox_stats(box)->msgs_parsed == 2);
	mime_part_free(&a);
	mailbox_close(&box);
	storage_free(&st);
	free(msg);
}

/* A batch: N fills, one transaction (storage_stats.cache_commits), entries seen by the
 * same session before they are written and by another process after. */
static void test_batch(const char *kind)
{
	char name[32];
	const char *err;
	snprintf(name, sizeof(name), "batch-%s", kind);
	struct mail_storage *st = make_store(kind, name, true);
	struct mailbox *box;
	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	enum { N = 40 };
	uint32_t uids[N];
	for (int i = 0; i < N; i++)
		uids[i] = save(box, i % 2 ? msg2 : msg1);
	uint64_t commits = mailbox_stats(box)->cache_commits;
	uint64_t fills = mailbox_stats(box)->cache_fills;
	mailbox_cache_batch_begin(box);
	mailbox_cache_batch_begin(box); /* nested: the outer end writes */
	for (int i = 0; i < N; i++) {
		struct mime_part *parts = NULL;
		CHECK(mailbox_msg_parts(box, uids[i], &parts, &err) == 0 && parts != NULL);
		mime_part_free(&parts);
	}
	CHECK(mailbox_stats(box)->msgs_parsed == N);
	/* again in the same batch: from the batch, not parsed again */
	struct mail_envelope_fields *env = NULL;
	CHECK(mailbox_msg_envelope(box, uids[0], &env, &err) == 0 && env != NULL);
	mime_envelope_free(&env);
	CHECK(mailbox_stats(box)->msgs_parsed == N);
	CHECK(mailbox_cache_set(box, uids[1], INDEX_CACHE_HEADERS, "hdr", 3, &err) == 0);
	size_t len = 0;
	const char *hv = mailbox_cache_get(box, uids[1], INDEX_CACHE_HEADERS, &len);
	CHECK(hv != NULL && len == 3 && memcmp(hv, "hdr", 3) == 0);
	CHECK(mailbox_cache_batch_end(box, &err) == 0);
	CHECK(mailbox_stats(box)->cache_commits == commits); /* nested: nothing yet */
	CHECK(mailbox_cache_batch_end(box, &err) == 0);
	/* one transaction (a second only if the batch outlived STORAGE_CACHE_BATCH_MS) */
	uint64_t took = mailbox_stats(box)->cache_commits - commits;
	CHECK(took >= 1 && took <= 2);
	CHECK(mailbox_stats(box)->cache_fills == fills + N + 1);
	CHECK(mailbox_cache_batch_end(box, &err) == 0); /* unbalanced end: harmless */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(other_session(kind, name));
	int status = -1;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0);
	/* a batch left open is written at close */
	mailbox_cache_batch_begin(box);
	CHECK(mailbox_cache_set(box, uids[2], INDEX_CACHE_HEADERS, "late", 4, &err) == 0);
	mailbox_close(&box);
	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	hv = mailbox_cache_get(box, uids[2], INDEX_CACHE_HEADERS, &len);
	CHECK(hv != NULL && len == 4 && memcmp(hv, "late", 4) == 0);
	mailbox_close(&box);
	storage_free(&st);
}

/* index.c: a transaction of cache entries only is committed without fdatasync; any
 * other with it; both read back. */
static void test_cache_nosync(void)
{
	char dir[128];
	const char *err;
	snprintf(dir, sizeof(dir), "%s/nosync", tmpdir);
	mkdir(dir, 0700);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct index *ix = NULL, *iy = NULL;
	CHECK(index_open(dfd, "ix", &ix, &err) == 0);
	CHECK(index_lock(ix, NULL, &err) == 0);
	struct index_rec rec = { .flags = 0, .size = 10, .raw = 10, .key = (char *)"k",
				 .key_len = 1 };
	CHECK(index_append(ix, &rec, &err) == 0);
	CHECK(index_commit(ix, &err) == 0); /* the first writes a snapshot */
	index_unlock(ix);
	CHECK(index_lock(ix, NULL, &err) == 0);
	rec = (struct index_rec){ .uid = 0, .size = 11, .raw = 11, .key = (char *)"k2",
				  .key_len = 2 };
	CHECK(index_append(ix, &rec, &err) == 0);
	CHECK(index_commit(ix, &err) == 0);
	index_unlock(ix);
	uint64_t syncs = index_stats(ix)->log_syncs;
	CHECK(syncs >= 1 && index_stats(ix)->log_unsynced == 0);
	CHECK(index_lock(ix, NULL, &err) == 0);
	CHECK(index_cache_set(ix, 1, INDEX_CACHE_ENVELOPE, "env", 3, &err) == 0);
	CHECK(index_cache_set(ix, 2, INDEX_CACHE_ENVELOPE, "env2", 4, &err) == 0);
	CHECK(index_commit(ix, &err) == 0);
	index_unlock(ix);
	CHECK(index_stats(ix)->log_syncs == syncs && index_stats(ix)->log_unsynced == 1);
	CHECK(index_lock(ix, NULL, &err) == 0);
	CHECK(index_cache_set(ix, 1, INDEX_CACHE_HEADERS, "h", 1, &err) == 0);
	CHECK(index_expunge(ix, 2, &err) == 0); /* a record change: synced */
	CHECK(index_commit(ix, &err) == 0);
	index_unlock(ix);
	CHECK(index_stats(ix)->log_syncs == syncs + 1 && index_stats(ix)->log_unsynced == 1);
	CHECK(index_open(dfd, "ix", &iy, &err) == 0);
	size_t len = 0;
	const char *v = index_cache_get(iy, 1, INDEX_CACHE_ENVELOPE, &len);
	CHECK(v != NULL && len == 3 && memcmp(v, "env", 3) == 0);
	CHECK(index_find(iy, 2, NULL) == NULL && index_count(iy) == 1);
	index_close(&iy);
	index_close(&ix);
	close(dfd);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/var/tmp/test_msgcache.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	test_fill_and_hit("maildir");
	test_fill_and_hit("mbox");
	test_memory_index();
	pid_t pid = fork();
	if (pid == 0)
		_exit(failing_write());
	int status = -1;
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "failing_write: status %d\n", status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	test_too_big();
	test_batch("maildir");
	test_batch("mbox");
	test_cache_nosync();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return unit_done("test_msgcache");
}
