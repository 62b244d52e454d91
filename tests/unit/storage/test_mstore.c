/* mstore.c: mstore_locate (valid and invalid tables, the path length at max and max+1),
 * detection (~/Maildir or the spool), and the API over both backends: reader chunking,
 * commit, errors. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "storage/mstore.h"
#include "base/util.h"
#include "unit.h"

static char tmpdir[64];

struct loc_case {
	const char *loc, *user, *home;
	enum mstore_kind kind;
	const char *path;
};

static const struct loc_case loc_ok[] = {
	{ "maildir:~/Maildir", "ned", "/home/ned", MSTORE_MAILDIR, "/home/ned/Maildir" },
	{ "maildir:~", "ned", "/home/ned", MSTORE_MAILDIR, "/home/ned" },
	{ "mbox:/var/mail/%u", "ned", "/home/ned", MSTORE_MBOX, "/var/mail/ned" },
	{ "mbox:/var/mail/%u", "ned", NULL, MSTORE_MBOX, "/var/mail/ned" },
	{ "mbox:~/mail/%u-%%", "ned", "/home/ned", MSTORE_MBOX, "/home/ned/mail/ned-%" },
	{ "maildir:/srv/mail/%u/%u", "a.b", "/x", MSTORE_MAILDIR, "/srv/mail/a.b/a.b" },
	{ "maildir:/m/~/x", "ned", NULL, MSTORE_MAILDIR, "/m/~/x" }, /* ~ only at the start */
};

static const struct loc_case loc_bad[] = {
	{ "maildir:~/Maildir", "a/b", "/home/x", 0, "user" },
	{ "maildir:~/Maildir", ".ned", "/home/x", 0, "user" },
	{ "maildir:~/Maildir", "", "/home/x", 0, "user" },
	{ NULL, "..", "/home/x", 0, "user" },
	{ "maildir:relative", "ned", "/home/ned", 0, "absolute" },
	{ "maildir:", "ned", "/home/ned", 0, "absolute" },
	{ "mbox:%u", "ned", "/home/ned", 0, "absolute" },
	{ "maildir:~/x", "ned", NULL, 0, "home" },
	{ "maildir:~/x", "ned", "rel/home", 0, "home" },
	{ "mbox:~ned/x", "ned", "/home/ned", 0, "absolute" },
	{ "imap:/x", "ned", "/home/ned", 0, "maildir: or mbox:" },
	{ "Maildir:/x", "ned", "/home/ned", 0, "maildir: or mbox:" },
	{ "mbox:/x/%d", "ned", "/home/ned", 0, "%" },
	{ "mbox:/x/%", "ned", "/home/ned", 0, "%" },
};

static void test_locate(void)
{
	struct mstore_loc loc;
	const char *err;

	for (size_t i = 0; i < sizeof(loc_ok) / sizeof(loc_ok[0]); i++) {
		const struct loc_case *c = &loc_ok[i];
		err = NULL;
		CHECK(mstore_locate(c->loc, c->user, c->home, &loc, &err) == 0);
		CHECK(loc.kind == c->kind);
		CHECK_STR(loc.path, c->path);
	}
	for (size_t i = 0; i < sizeof(loc_bad) / sizeof(loc_bad[0]); i++) {
		const struct loc_case *c = &loc_bad[i];
		err = NULL;
		CHECK(mstore_locate(c->loc, c->user, c->home, &loc, &err) == -1);
		CHECK(err != NULL && strstr(err, c->path) != NULL);
	}
	/* the path: 4095 bytes fit (max), 4096 do not (max+1) */
	char spec[4200] = "mbox:/";
	memset(spec + 6, 'a', 4094);
	spec[6 + 4094] = '\0';
	CHECK(mstore_locate(spec, "ned", NULL, &loc, &err) == 0);
	CHECK(strlen(loc.path) == 4095);
	spec[6 + 4094] = 'a';
	spec[6 + 4095] = '\0';
	CHECK(mstore_locate(spec, "ned", NULL, &loc, &err) == -1);
	CHECK(err != NULL && strstr(err, "too long") != NULL);
	/* expansion past the limit through %u */
	char user[300];
	memset(user, 'u', 256);
	user[256] = '\0';
	memcpy(spec, "mbox:/", 6);
	for (size_t i = 0; i < 20; i++)
		memcpy(spec + 6 + 2 * i, "%u", 2);
	spec[46] = '\0';
	CHECK(mstore_locate(spec, user, NULL, &loc, &err) == -1);
	/* a user name longer than AUTH_MAX_USER */
	memset(user, 'u', 257);
	user[257] = '\0';
	CHECK(mstore_locate("mbox:/var/mail/%u", user, NULL, &loc, &err) == -1);

	/* detection: ~/Maildir if it is a directory, else the spool */
	char home[128], md[160];
	CHECK(util_snprintf(home, sizeof(home), "%s/home", tmpdir) > 0);
	CHECK(mkdir(home, 0700) == 0);
	CHECK(mstore_locate(NULL, "ned", home, &loc, &err) == 0);
	CHECK(loc.kind == MSTORE_MBOX);
	CHECK_STR(loc.path, "/var/mail/ned");
	CHECK(mstore_locate("", "ned", NULL, &loc, &err) == 0);
	CHECK(loc.kind == MSTORE_MBOX);
	CHECK(util_snprintf(md, sizeof(md), "%s/Maildir", home) > 0);
	int fd = open(md, O_WRONLY | O_CREAT, 0600); /* a file is not a Maildir */
	close(fd);
	CHECK(mstore_locate(NULL, "ned", home, &loc, &err) == 0);
	CHECK(loc.kind == MSTORE_MBOX);
	unlink(md);
	CHECK(mkdir(md, 0700) == 0);
	CHECK(mstore_locate(NULL, "ned", home, &loc, &err) == 0);
	CHECK(loc.kind == MSTORE_MAILDIR);
	CHECK_STR(loc.path, md);
}

static void put(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1 && util_write_all(fd, data, strlen(data)) == 0);
	close(fd);
}

/* Read message i with a given chunk size. */
static char *slurp(struct mstore *s, size_t i, size_t chunk)
{
	struct mstore_reader *r;
	const char *err;
	if (mstore_reader_open(s, i, &r, &err) == -1)
		return NULL;
	size_t cap = 1024, len = 0;
	char *out = malloc(cap);
	ssize_t n;
	while ((n = mstore_reader_read(r, out + len, chunk)) > 0) {
		len += (size_t)n;
		if (cap - len < chunk + 1) {
			cap *= 2;
			out = realloc(out, cap);
		}
	}
	CHECK(n == 0);
	CHECK(mstore_reader_read(r, out + len, chunk) == 0); /* stays at the end */
	out[len] = '\0';
	mstore_reader_close(&r);
	return out;
}

static void test_api(const struct mstore_loc *loc, const char *const *expect, size_t n)
{
	struct mstore *s;
	const char *err = NULL;

	CHECK(mstore_open(loc, &s, &err) == 0);
	CHECK(mstore_count(s) == n);
	for (size_t i = 0; i < n; i++) {
		static const size_t chunks[] = { 1, 2, 3, 7, IO_CHUNK };
		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			char *t = slurp(s, i, chunks[c]);
			CHECK(t != NULL && strcmp(t, expect[i]) == 0);
			free(t);
		}
		struct mstore_msg *m = mstore_get(s, i);
		CHECK(m != NULL && m->raw_len == strlen(expect[i]));
		CHECK(strlen(m->uid) >= 1 && strlen(m->uid) <= POP3_UIDL_MAX);
	}
	CHECK(mstore_get(s, n) == NULL);
	struct mstore_reader *r = NULL;
	CHECK(mstore_reader_open(s, n, &r, &err) == -1 && r == NULL);
	char uid_last[POP3_UIDL_MAX + 1];
	memcpy(uid_last, mstore_get(s, n - 1)->uid, sizeof(uid_last));
	mstore_get(s, 0)->deleted = true;
	CHECK(mstore_commit(s, &err) == 0);
	mstore_close(&s);
	CHECK(s == NULL);
	mstore_close(&s); /* NULL is fine */
	CHECK(mstore_open(loc, &s, &err) == 0);
	CHECK(mstore_count(s) == n - 1);
	CHECK_STR(mstore_get(s, n - 2)->uid, uid_last);
	char *t = slurp(s, 0, 5);
	CHECK(t != NULL && strcmp(t, expect[1]) == 0);
	free(t);
	mstore_close(&s);
}

static void test_backends(void)
{
	struct mstore_loc loc;
	const char *err;
	char p[256];

	/* Maildir */
	CHECK(util_snprintf(p, sizeof(p), "maildir:%s/Maildir", tmpdir) > 0);
	CHECK(mstore_locate(p, "ned", "/home/ned", &loc, &err) == 0);
	CHECK(mkdir(loc.path, 0700) == 0);
	CHECK(util_snprintf(p, sizeof(p), "%s/new", loc.path) > 0);
	CHECK(mkdir(p, 0700) == 0);
	CHECK(util_snprintf(p, sizeof(p), "%s/cur", loc.path) > 0);
	CHECK(mkdir(p, 0700) == 0);
	const char *md_msgs[] = { "Subject: 1\n\none\n", "Subject: 2\r\n\r\ntwo\r\n",
				  "Subject: 3\n\nthree" };
	CHECK(util_snprintf(p, sizeof(p), "%s/new/1.a", loc.path) > 0);
	put(p, md_msgs[0]);
	CHECK(util_snprintf(p, sizeof(p), "%s/cur/2.b:2,S", loc.path) > 0);
	put(p, md_msgs[1]);
	CHECK(util_snprintf(p, sizeof(p), "%s/cur/3.c:2,", loc.path) > 0);
	put(p, md_msgs[2]);
	test_api(&loc, md_msgs, 3);

	/* mbox */
	CHECK(util_snprintf(p, sizeof(p), "mbox:%s/%%u", tmpdir) > 0);
	CHECK(mstore_locate(p, "spool", NULL, &loc, &err) == 0);
	put(loc.path, "From a\nSubject: 1\n\none\n\nFrom b\nSubject: 2\n\ntwo\n\n"
	    "From c\nSubject: 3\n\nthree\n\n");
	const char *mb_msgs[] = { "Subject: 1\n\none\n", "Subject: 2\n\ntwo\n",
				  "Subject: 3\n\nthree\n" };
	test_api(&loc, mb_msgs, 3);

	/* open errors come through */
	struct mstore *s = NULL;
	put(loc.path, "not an mbox\n");
	err = NULL;
	CHECK(mstore_open(&loc, &s, &err) == -1 && s == NULL && err != NULL);
	loc.kind = MSTORE_MAILDIR; /* a file where a Maildir should be */
	CHECK(mstore_open(&loc, &s, &err) == -1 && s == NULL);
}

int main(void)
{
	CHECK(util_snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_mstore.XXXXXX") > 0);
	CHECK(mkdtemp(tmpdir) != NULL);
	test_locate();
	test_backends();
	char cmd[128];
	if (util_snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir) > 0)
		(void)!system(cmd);
	return unit_done("mstore");
}
