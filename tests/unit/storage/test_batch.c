/* mail_batch and mailbox_copy_many (storage.h): several messages made visible together
 * or not at all, on both backends.  Committed: consecutive UIDs, the bytes, flags and
 * dates; aborted: nothing, and Maildir's tmp/ empty.  Failures half-way: a write past
 * RLIMIT_FSIZE (EFBIG, what a full disk does to a write) at the third message of a
 * Maildir batch; an mbox commit whose append fails after two messages (the file is cut
 * back to its old bytes); a Maildir commit whose third rename fails (the first two are
 * renamed back); COPY and MOVE of many messages into an mbox that cannot grow: the
 * destination keeps exactly its old messages, the source all of its own. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/util.h"
#include "storage/storage_int.h"
#include "unit.h"

static char tmpdir[64];

static struct mail_storage *locate(const char *kind)
{
	static unsigned homes;
	char home[128], loc[256];
	struct mail_storage *st = NULL;
	const char *err = NULL;

	snprintf(home, sizeof(home), "%s/home%u", tmpdir, ++homes);
	mkdir(home, 0700);
	if (strcmp(kind, "maildir") == 0) {
		snprintf(loc, sizeof(loc), "maildir:%s/Maildir", home);
		static const char *const subs[] = { "", "/new", "/cur", "/tmp" };
		for (int i = 0; i < 4; i++) {
			char p[300];
			snprintf(p, sizeof(p), "%s/Maildir%s", home, subs[i]);
			mkdir(p, 0700);
		}
	} else {
		snprintf(loc, sizeof(loc), "mbox:%s/inbox", home);
	}
	CHECK(storage_locate(loc, "ned", home, &st, &err) == 0);
	return st;
}

static size_t dir_entries(const char *path)
{
	DIR *d = opendir(path);
	size_t n = 0;
	struct dirent *e;

	if (d == NULL)
		return (size_t)-1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static char *read_all(struct mailbox *box, uint32_t uid, size_t *len_r)
{
	struct mail_reader *r;
	const char *err;
	size_t cap = 1024, len = 0;
	char *b = malloc(cap);
	ssize_t n;

	if (mailbox_msg_open(box, uid, &r, &err) == -1) {
		free(b);
		return NULL;
	}
	while ((n = mail_reader_read(r, b + len, cap - len - 1, &err)) > 0) {
		len += (size_t)n;
		if (cap - len < 2)
			b = realloc(b, cap *= 2);
	}
	mail_reader_close(&r);
	b[len] = '\0';
	*len_r = len;
	return b;
}

static void msg_text(char *buf, size_t size, unsigned i, size_t body)
{
	int k = snprintf(buf, size, "Subject: batch %u\n\n", i);
	size_t at = (size_t)k;
	while (at + 2 < size && at < (size_t)k + body) {
		buf[at] = (char)('a' + at % 26);
		at++;
	}
	buf[at++] = '\n';
	buf[at] = '\0';
}

/* Save message i (body bytes) into the batch. */
static int batch_put(struct mail_batch *b, unsigned i, size_t body, uint32_t flags)
{
	static char buf[70000];
	struct mail_save *s;
	const char *err;

	msg_text(buf, sizeof(buf), i, body);
	if (mail_batch_save_begin(b, 1700000000 + (int64_t)i, flags, &s, &err) == -1)
		return -1;
	if (mail_save_write(s, buf, strlen(buf), &err) == -1) {
		mail_save_abort(&s);
		return -1;
	}
	if (mail_batch_add(b, &s, &err) == -1) {
		mail_save_abort(&s);
		return -1;
	}
	return 0;
}

/* The folder holds exactly messages first..last (as batch_put wrote them, body 100). */
static void check_folder(struct mailbox *box, unsigned first, unsigned last)
{
	const char *err;
	CHECK(mailbox_sync(box, NULL, &err) == 0);
	CHECK(mailbox_count(box) == last - first + 1);
	for (size_t i = 0; i < mailbox_count(box); i++) {
		char want[256];
		size_t len;
		msg_text(want, sizeof(want), first + (unsigned)i, 100);
		char *got = read_all(box, mailbox_get(box, i)->uid, &len);
		CHECK(got != NULL && len == strlen(want) && memcmp(got, want, len) == 0);
		free(got);
	}
}

static void set_fsize(rlim_t lim)
{
	struct rlimit rl = { lim, RLIM_INFINITY };
	CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
}

static void test_commit_abort(const char *kind)
{
	struct mail_storage *st = locate(kind);
	struct mailbox *box;
	const char *err;
	uint32_t uids[4];

	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	struct mail_batch *b = mailbox_batch_begin(box);
	for (unsigned i = 1; i <= 3; i++)
		CHECK(batch_put(b, i, 100, i == 2 ? INDEX_FLAG_SEEN : 0) == 0);
	CHECK(mail_batch_count(b) == 3);
	/* not visible before the commit, to this session or another */
	struct mailbox *other;
	CHECK(mailbox_open(st, "INBOX", &other, &err) == 0);
	CHECK(mailbox_count(other) == 0);
	CHECK(mail_batch_commit(&b, uids, &err) == 0 && b == NULL);
	CHECK(uids[1] == uids[0] + 1 && uids[2] == uids[1] + 1);
	check_folder(box, 1, 3);
	const struct index_rec *rec = mailbox_find(box, uids[1], NULL);
	CHECK(rec != NULL && (rec->flags & INDEX_FLAG_SEEN) && rec->date == 1700000002);
	check_folder(other, 1, 3);
	/* aborted: nothing */
	b = mailbox_batch_begin(box);
	CHECK(batch_put(b, 4, 100, 0) == 0 && batch_put(b, 5, 100, 0) == 0);
	mail_batch_abort(&b);
	CHECK(b == NULL);
	check_folder(box, 1, 3);
	/* an empty batch commits nothing */
	b = mailbox_batch_begin(box);
	CHECK(mail_batch_commit(&b, uids, &err) == 0);
	check_folder(box, 1, 3);
	if (strcmp(kind, "maildir") == 0) {
		char p[STORAGE_PATH_MAX + 8];
		snprintf(p, sizeof(p), "%s/tmp", storage_inbox_path(st));
		CHECK(dir_entries(p) == 0);
	}
	mailbox_close(&other);
	mailbox_close(&box);
	storage_free(&st);
}

/* Maildir: the third message cannot be written (EFBIG): nothing is added. */
static void test_maildir_write_fails(void)
{
	struct mail_storage *st = locate("maildir");
	struct mailbox *box;
	const char *err;
	uint32_t uids[4];

	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	struct mail_batch *b = mailbox_batch_begin(box);
	CHECK(batch_put(b, 1, 100, 0) == 0);
	CHECK(mail_batch_commit(&b, uids, &err) == 0);
	b = mailbox_batch_begin(box);
	CHECK(batch_put(b, 2, 100, 0) == 0 && batch_put(b, 3, 100, 0) == 0);
	set_fsize(4096);
	CHECK(batch_put(b, 4, 60000, 0) == -1);
	set_fsize(RLIM_INFINITY);
	mail_batch_abort(&b);
	check_folder(box, 1, 1);
	char p[STORAGE_PATH_MAX + 8];
	snprintf(p, sizeof(p), "%s/tmp", storage_inbox_path(st));
	CHECK(dir_entries(p) == 0);
	mailbox_close(&box);
	storage_free(&st);
}

/* Maildir: the third rename fails at the commit: the first two go back. */
static void test_maildir_rename_fails(void)
{
	struct mail_storage *st = locate("maildir");
	struct mailbox *box;
	const char *err;
	uint32_t uids[4];
	char p[STORAGE_PATH_MAX * 2 + 8];

	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	struct mail_batch *b = mailbox_batch_begin(box);
	CHECK(batch_put(b, 1, 100, 0) == 0);
	CHECK(mail_batch_commit(&b, uids, &err) == 0);
	b = mailbox_batch_begin(box);
	for (unsigned i = 2; i <= 4; i++)
		CHECK(batch_put(b, i, 100, 0) == 0);
	snprintf(p, sizeof(p), "%s/%s", storage_inbox_path(st), b->saves[2]->tmpname);
	CHECK(unlink(p) == 0);
	err = NULL;
	CHECK(mail_batch_commit(&b, uids, &err) == -1 && err != NULL);
	check_folder(box, 1, 1);
	snprintf(p, sizeof(p), "%s/tmp", storage_inbox_path(st));
	CHECK(dir_entries(p) == 0);
	snprintf(p, sizeof(p), "%s/new", storage_inbox_path(st));
	CHECK(dir_entries(p) == 1);
	mailbox_close(&box);
	storage_free(&st);
}

/* mbox: the append fails after the first messages: the file is cut back. */
static void test_mbox_append_fails(void)
{
	struct mail_storage *st = locate("mbox");
	struct mailbox *box;
	const char *err;
	uint32_t uids[8];
	struct stat before, after;

	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	struct mail_batch *b = mailbox_batch_begin(box);
	CHECK(batch_put(b, 1, 100, 0) == 0 && batch_put(b, 2, 100, 0) == 0);
	CHECK(mail_batch_commit(&b, uids, &err) == 0);
	CHECK(stat(storage_inbox_path(st), &before) == 0);
	char *old = NULL;
	size_t oldlen = 0;
	{
		int fd = open(storage_inbox_path(st), O_RDONLY);
		old = malloc((size_t)before.st_size + 1);
		CHECK(read(fd, old, (size_t)before.st_size) == before.st_size);
		oldlen = (size_t)before.st_size;
		close(fd);
	}
	b = mailbox_batch_begin(box);
	for (unsigned i = 3; i <= 6; i++)
		CHECK(batch_put(b, i, 100, 0) == 0);
	/* room for about two of the four */
	set_fsize((rlim_t)before.st_size + 350);
	err = NULL;
	CHECK(mail_batch_commit(&b, uids, &err) == -1 && err != NULL);
	set_fsize(RLIM_INFINITY);
	CHECK(stat(storage_inbox_path(st), &after) == 0);
	CHECK(after.st_size == before.st_size && after.st_ino == before.st_ino);
	int fd = open(storage_inbox_path(st), O_RDONLY);
	char *now = malloc(oldlen + 1);
	CHECK(read(fd, now, oldlen + 1) == (ssize_t)oldlen && memcmp(now, old, oldlen) == 0);
	close(fd);
	free(now);
	free(old);
	check_folder(box, 1, 2);
	/* and the next batch works, with the next UIDs */
	b = mailbox_batch_begin(box);
	CHECK(batch_put(b, 3, 100, 0) == 0);
	CHECK(mail_batch_commit(&b, uids, &err) == 0);
	check_folder(box, 1, 3);
	mailbox_close(&box);
	storage_free(&st);
}

/* COPY/MOVE of ten messages into an mbox that cannot take them all. */
static void test_copy_many(const char *src_kind)
{
	struct mail_storage *st = locate(src_kind), *dst_st = locate("mbox");
	struct mailbox *src, *dst;
	const char *err;
	uint32_t uids[16], nuids[16];

	CHECK(mailbox_open(st, "INBOX", &src, &err) == 0);
	CHECK(mailbox_open(dst_st, "INBOX", &dst, &err) == 0);
	struct mail_batch *b = mailbox_batch_begin(src);
	for (unsigned i = 1; i <= 10; i++)
		CHECK(batch_put(b, i, 100, 0) == 0);
	CHECK(mail_batch_commit(&b, uids, &err) == 0);
	b = mailbox_batch_begin(dst);
	CHECK(batch_put(b, 1, 100, 0) == 0);
	CHECK(mail_batch_commit(&b, nuids, &err) == 0);
	struct stat before;
	CHECK(stat(storage_inbox_path(dst_st), &before) == 0);
	for (int move = 0; move <= 1; move++) {
		set_fsize((rlim_t)before.st_size + 500);
		err = NULL;
		CHECK(mailbox_copy_many(src, uids, 10, dst, move, nuids, &err) == -1);
		set_fsize(RLIM_INFINITY);
		CHECK(err != NULL);
		check_folder(dst, 1, 1);
		check_folder(src, 1, 10);
	}
	/* room enough: all ten, and MOVE takes them out of src */
	CHECK(mailbox_copy_many(src, uids + 5, 5, dst, true, nuids, &err) == 0);
	CHECK(nuids[4] == nuids[0] + 4);
	check_folder(src, 1, 5);
	CHECK(mailbox_count(dst) == 6);
	mailbox_close(&src);
	mailbox_close(&dst);
	storage_free(&st);
	storage_free(&dst_st);
}

int main(void)
{
	signal(SIGXFSZ, SIG_IGN);   /* a write past RLIMIT_FSIZE fails with EFBIG */
	snprintf(tmpdir, sizeof(tmpdir), "/var/tmp/test_batch.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	test_commit_abort("maildir");
	test_commit_abort("mbox");
	test_maildir_write_fails();
	test_maildir_rename_fails();
	test_mbox_append_fails();
	test_copy_many("maildir");
	test_copy_many("mbox");
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return unit_done("batch");
}
