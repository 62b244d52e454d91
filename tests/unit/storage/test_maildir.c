/* maildir.c: name parsing (valid and invalid tables), UIDLs, listing (dot files,
 * symlinks, directories, FIFOs skipped), sizes (",W=", cache, computed; bare LF vs CRLF),
 * the size cache as untrusted input, renames by another client between snapshot and
 * read or commit, commit, the limit, 10,000 messages (timed) and a 50 MB message. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mail/crlf.h"
#include "storage/maildir.h"
#include "storage/mstore.h"
#include "base/util.h"
#include "unit.h"

static char tmpdir[64];

static void write_at(const char *dir, const char *name, const char *data)
{
	char path[512];
	CHECK(util_snprintf(path, sizeof(path), "%s/%s", dir, name) > 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1);
	CHECK(util_write_all(fd, data, strlen(data)) == 0);
	close(fd);
}

static bool exists(const char *dir, const char *name)
{
	char path[512];
	CHECK(util_snprintf(path, sizeof(path), "%s/%s", dir, name) > 0);
	return access(path, F_OK) == 0;
}

static void ren(const char *dir, const char *from, const char *to)
{
	char a[512], b[512];
	CHECK(util_snprintf(a, sizeof(a), "%s/%s", dir, from) > 0);
	CHECK(util_snprintf(b, sizeof(b), "%s/%s", dir, to) > 0);
	CHECK(rename(a, b) == 0);
}

static void make_maildir(char *dir, size_t size, const char *name)
{
	char p[512];
	CHECK(util_snprintf(dir, size, "%s/%s", tmpdir, name) > 0);
	CHECK(mkdir(dir, 0700) == 0);
	static const char *const subs[] = { "new", "cur", "tmp" };
	for (size_t i = 0; i < 3; i++) {
		CHECK(util_snprintf(p, sizeof(p), "%s/%s", dir, subs[i]) > 0);
		CHECK(mkdir(p, 0700) == 0);
	}
}

static char *read_msg(struct maildir *md, size_t i, size_t *len)
{
	int fd;
	uint64_t n;
	const char *err;
	if (maildir_msg_open(md, i, &fd, &n, &err) == -1)
		return NULL;
	char *b = malloc(n + 1);
	CHECK(util_read_full(fd, b, n) != -1);
	b[n] = '\0';
	close(fd);
	*len = n;
	return b;
}

/* ---- names ---- */

struct name_case {
	const char *name;
	size_t base_len;
	int has_s, has_w;
	uint64_t s, w;
	int has_info;
	const char *flags;
	unsigned mask;
};

static const struct name_case names_ok[] = {
	{ "1700000000.M1P2.host", 20, 0, 0, 0, 0, 0, NULL, 0 },
	{ "1700000000.M1P2.host,S=123,W=130:2,RS", 32, 1, 1, 123, 130, 1, "RS",
	  MAILDIR_FLAG_REPLIED | MAILDIR_FLAG_SEEN },
	{ "a,W=5,S=4", 9, 1, 1, 4, 5, 0, NULL, 0 },
	{ "a:2,", 1, 0, 0, 0, 0, 1, "", 0 },
	{ "a:2,DFPRSTabc", 1, 0, 0, 0, 0, 1, "DFPRSTabc", 0x3f },
	{ "a:1,foo", 1, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a:", 1, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a:2,S:2,T", 1, 0, 0, 0, 0, 1, "S:2,T", MAILDIR_FLAG_SEEN | MAILDIR_FLAG_TRASHED },
	{ "a,S=12x", 7, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a,W=", 4, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a,S=,W=7", 8, 0, 1, 0, 7, 0, NULL, 0 },
	{ "a,S=1,S=2", 9, 1, 0, 1, 0, 0, NULL, 0 },           /* the first counts */
	{ "a,S=+1", 6, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a,S=18446744073709551615", 24, 1, 0, UINT64_MAX, 0, 0, NULL, 0 }, /* max */
	{ "a,S=18446744073709551616", 24, 0, 0, 0, 0, 0, NULL, 0 },          /* max+1 */
	{ ",S=5", 4, 1, 0, 5, 0, 0, NULL, 0 },
	{ "a b\tc", 5, 0, 0, 0, 0, 0, NULL, 0 },
	{ "x,s=5,w=6", 9, 0, 0, 0, 0, 0, NULL, 0 },           /* case matters */
};

static const char *const names_bad[] = { "", ".hidden", ".", "..", ":2,S", "a/b" };

static void test_names(void)
{
	for (size_t t = 0; t < sizeof(names_ok) / sizeof(names_ok[0]); t++) {
		const struct name_case *c = &names_ok[t];
		struct maildir_name mn;
		CHECK(maildir_parse_name(c->name, strlen(c->name), &mn) == 0);
		CHECK(mn.base_len == c->base_len);
		CHECK(mn.has_s == (bool)c->has_s && (!c->has_s || mn.s == c->s));
		CHECK(mn.has_w == (bool)c->has_w && (!c->has_w || mn.w == c->w));
		CHECK(mn.has_info == (bool)c->has_info);
		if (c->flags != NULL)
			CHECK(mn.flags_len == strlen(c->flags) &&
			      memcmp(mn.flags, c->flags, mn.flags_len) == 0);
		CHECK(mn.flagmask == c->mask);
	}
	for (size_t t = 0; t < sizeof(names_bad) / sizeof(names_bad[0]); t++) {
		struct maildir_name mn;
		CHECK(maildir_parse_name(names_bad[t], strlen(names_bad[t]), &mn) == -1);
	}
	struct maildir_name mn;
	CHECK(maildir_parse_name("a\0b", 3, &mn) == -1);
}

static void test_uid(void)
{
	char u[POP3_UIDL_MAX + 1], v[POP3_UIDL_MAX + 1];
	char name[100];

	maildir_uid("1700000000.M1P2.host", 20, u);
	CHECK_STR(u, "1700000000.M1P2.host");
	/* 70 printable: itself (max); 71: digest (max+1) */
	memset(name, 'x', sizeof(name));
	maildir_uid(name, 70, u);
	CHECK(strlen(u) == 70 && memcmp(u, name, 70) == 0);
	maildir_uid(name, 71, u);
	CHECK(strlen(u) == 32);
	for (size_t i = 0; i < 32; i++)
		CHECK((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'));
	maildir_uid(name, 71, v);
	CHECK_STR(u, v); /* stable */
	maildir_uid(name, 72, v);
	CHECK(strcmp(u, v) != 0);
	/* not printable: space, DEL, 8-bit */
	maildir_uid("a b", 3, u);
	CHECK(strlen(u) == 32);
	maildir_uid("a\x7f", 2, u);
	CHECK(strlen(u) == 32);
	maildir_uid("caf\xc3\xa9", 5, u);
	CHECK(strlen(u) == 32);
	maildir_uid("!~", 2, u);
	CHECK_STR(u, "!~");
}

/* ---- listing, sizes, reading ---- */

static void test_list(void)
{
	char md_path[256], p[512];
	struct maildir *md;
	struct maildir_opts o;
	const char *err = NULL;

	maildir_opts_default(&o);
	make_maildir(md_path, sizeof(md_path), "list");
	write_at(md_path, "new/1700000001.a.host", "Subject: a\n\nbare LF\n");
	write_at(md_path, "cur/1700000002.b.host:2,S", "Subject: b\r\n\r\nCRLF\r\n");
	write_at(md_path, "cur/1700000003.c.host,W=999:2,", "X: c\n\nwrong W\n");
	write_at(md_path, "cur/1700000004.d.host,S=9,W=10:2,RS", "X: d\n\nw\n");
	write_at(md_path, "cur/.hidden", "X\n");
	write_at(md_path, "tmp/1700000005.e.host", "X\n");
	write_at(md_path, "new/999999999.z.host", "Z\n"); /* older: 9 digits */
	CHECK(util_snprintf(p, sizeof(p), "%s/new/1700000001.a.host", md_path) > 0);
	char l[512];
	CHECK(util_snprintf(l, sizeof(l), "%s/cur/1700000006.link", md_path) > 0);
	CHECK(symlink(p, l) == 0);
	CHECK(util_snprintf(l, sizeof(l), "%s/cur/1700000007.dir", md_path) > 0);
	CHECK(mkdir(l, 0700) == 0);
	CHECK(util_snprintf(l, sizeof(l), "%s/cur/1700000008.fifo", md_path) > 0);
	CHECK(mkfifo(l, 0600) == 0);

	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 5);
	const char *names[] = { "new/999999999.z.host", "new/1700000001.a.host",
				"cur/1700000002.b.host:2,S", "cur/1700000003.c.host,W=999:2,",
				"cur/1700000004.d.host,S=9,W=10:2,RS" };
	const uint64_t sizes[] = { 3, 23, 20, 17, 10 };
	const char *uids[] = { "999999999.z.host", "1700000001.a.host", "1700000002.b.host",
			       "1700000003.c.host,W=999", "1700000004.d.host,S=9,W=10" };
	for (size_t i = 0; i < 5; i++) {
		struct mstore_msg *m = maildir_msg(md, i);
		CHECK_STR(m->name, names[i]);
		CHECK(m->size == sizes[i]);
		CHECK_STR(m->uid, uids[i]);
	}
	CHECK(maildir_msg(md, 5) == NULL);
	size_t len;
	char *t = read_msg(md, 2, &len);
	CHECK(t != NULL && strcmp(t, "Subject: b\r\n\r\nCRLF\r\n") == 0);
	CHECK(maildir_msg(md, 2)->raw_len == len);
	free(t);
	maildir_close(&md);
	CHECK(md == NULL);
	CHECK(exists(md_path, "postern-sizes"));
	CHECK(exists(md_path, "cur/.hidden") && exists(md_path, "tmp/1700000005.e.host"));

	/* missing Maildir, missing new/ and cur/: empty */
	CHECK(util_snprintf(p, sizeof(p), "%s/nonexistent", tmpdir) > 0);
	CHECK(maildir_open(p, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 0);
	CHECK(maildir_commit(md, &err) == 0);
	maildir_close(&md);
	CHECK(util_snprintf(p, sizeof(p), "%s/bare", tmpdir) > 0);
	CHECK(mkdir(p, 0700) == 0);
	CHECK(maildir_open(p, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 0);
	maildir_close(&md);
	/* new/ a symlink: refused (O_NOFOLLOW) */
	CHECK(util_snprintf(l, sizeof(l), "%s/bare/new", tmpdir) > 0);
	CHECK(util_snprintf(p, sizeof(p), "%s/new", md_path) > 0);
	CHECK(symlink(p, l) == 0);
	CHECK(util_snprintf(p, sizeof(p), "%s/bare", tmpdir) > 0);
	CHECK(maildir_open(p, &o, &md, &err) == -1);
	/* the Maildir is a file */
	CHECK(util_snprintf(p, sizeof(p), "%s/new/1700000001.a.host", md_path) > 0);
	CHECK(maildir_open(p, &o, &md, &err) == -1);
}

/* The cache is used when the file's size and mtime match, and treated as untrusted. */
static void test_cache(void)
{
	char md_path[256];
	struct maildir *md;
	struct maildir_opts o;
	const char *err = NULL;
	struct stat st;
	char p[512], line[1024];

	maildir_opts_default(&o);
	make_maildir(md_path, sizeof(md_path), "cache");
	write_at(md_path, "cur/100.a:2,S", "a\nb\n");
	write_at(md_path, "cur/200.b:2,S", "c\r\nd\n");
	CHECK(util_snprintf(p, sizeof(p), "%s/cur/100.a:2,S", md_path) > 0);
	CHECK(stat(p, &st) == 0);
	/* a (false) cached size is believed when size and mtime match: proves it is used */
	CHECK(util_snprintf(line, sizeof(line),
			    "postern-sizes 1\n100.a 7 4 %lld\n"
			    "garbage line\n200.b 1 5 0\n200.b x 5 1\n\n \n"
			    "200.b 99999999999999999999 5 1\n200.b 5 5\n200.b 11 5 1 2\n"
			    "200.b 6 5 -1\n%s 7 4 1\n300.c 7 4 1", (long long)st.st_mtim.tv_sec,
			    "100.a") > 0);
	write_at(md_path, "postern-sizes", line);
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 2);
	CHECK(maildir_msg(md, 0)->size == 7);  /* from the cache */
	CHECK(maildir_msg(md, 1)->size == 6);  /* computed: c CRLF d LF */
	maildir_close(&md);
	/* the rewritten cache has only good entries */
	CHECK(util_snprintf(p, sizeof(p), "%s/postern-sizes", md_path) > 0);
	int fd = open(p, O_RDONLY);
	char buf[1024];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	buf[n > 0 ? n : 0] = '\0';
	CHECK(strncmp(buf, "postern-sizes 1\n100.a 7 4 ", 26) == 0);
	CHECK(strstr(buf, "\n200.b 6 5 ") != NULL);
	CHECK(strstr(buf, "garbage") == NULL && strstr(buf, "300.c") == NULL);

	/* the file changes (size): recomputed */
	write_at(md_path, "cur/100.a:2,S", "a\nb\nc\n");
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_msg(md, 0)->size == 9);
	maildir_close(&md);
	/* a bad magic line: the whole cache is ignored */
	write_at(md_path, "postern-sizes", "postern-sizes 2\n100.a 1 6 1\n");
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_msg(md, 0)->size == 9);
	maildir_close(&md);
	/* the cache a symlink: not followed (sizes still right) */
	CHECK(unlink(p) == 0);
	CHECK(symlink("/etc/passwd", p) == 0);
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_msg(md, 0)->size == 9 && maildir_msg(md, 1)->size == 6);
	maildir_close(&md);
	/* use_cache off: no cache file read or written */
	CHECK(unlink(p) == 0);
	o.use_cache = false;
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_msg(md, 0)->size == 9);
	maildir_close(&md);
	CHECK(!exists(md_path, "postern-sizes"));
}

/* Flags change (rename) and new/ -> cur/ between snapshot and read or commit. */
static void test_renames(void)
{
	char md_path[256];
	struct maildir *md;
	struct maildir_opts o;
	const char *err = NULL;

	maildir_opts_default(&o);
	make_maildir(md_path, sizeof(md_path), "renames");
	write_at(md_path, "new/1.a", "A\n");
	write_at(md_path, "new/2.b", "B\n");
	write_at(md_path, "cur/3.c:2,", "C\n");
	write_at(md_path, "cur/4.d:2,", "D\n");
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 4);
	char uids[4][POP3_UIDL_MAX + 1];
	for (size_t i = 0; i < 4; i++)
		memcpy(uids[i], maildir_msg(md, i)->uid, sizeof(uids[i]));
	/* another client moves and flags */
	ren(md_path, "new/1.a", "cur/1.a:2,S");
	ren(md_path, "cur/3.c:2,", "cur/3.c:2,RS");
	size_t len;
	char *t = read_msg(md, 0, &len);
	CHECK(t != NULL && strcmp(t, "A\n") == 0);
	free(t);
	CHECK_STR(maildir_msg(md, 0)->name, "cur/1.a:2,S");
	t = read_msg(md, 2, &len);
	CHECK(t != NULL && strcmp(t, "C\n") == 0);
	free(t);
	/* renamed again after our listing: found again */
	ren(md_path, "cur/3.c:2,RS", "cur/3.c:2,FRS");
	ren(md_path, "new/2.b", "cur/2.b:2,T");
	unlink("/nonexistent"); /* no-op */
	char p[512];
	CHECK(util_snprintf(p, sizeof(p), "%s/cur/4.d:2,", md_path) > 0);
	CHECK(unlink(p) == 0); /* deleted by another client */
	CHECK(read_msg(md, 3, &len) == NULL);
	maildir_msg(md, 1)->deleted = true;
	maildir_msg(md, 2)->deleted = true;
	maildir_msg(md, 3)->deleted = true; /* already gone: fine */
	CHECK(maildir_commit(md, &err) == 0);
	maildir_close(&md);
	CHECK(exists(md_path, "cur/1.a:2,S"));
	CHECK(!exists(md_path, "cur/2.b:2,T"));
	CHECK(!exists(md_path, "cur/3.c:2,FRS"));
	/* UIDs stable across the move and flag changes, and after deleting others */
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 1);
	CHECK_STR(maildir_msg(md, 0)->uid, uids[0]);
	maildir_close(&md);

	/* the same base in new/ and cur/ (a move seen half-way): listed once, cur/ kept */
	write_at(md_path, "new/1.a", "A\n");
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 1);
	CHECK_STR(maildir_msg(md, 0)->name, "cur/1.a:2,S");
	maildir_close(&md);
}

static void list_dir(const char *dir, char *out, size_t size)
{
	char p[512];
	out[0] = '\0';
	static const char *const subs[] = { "", "/new", "/cur", "/tmp" };
	for (size_t s = 0; s < 4; s++) {
		CHECK(util_snprintf(p, sizeof(p), "%s%s", dir, subs[s]) > 0);
		DIR *d = opendir(p);
		struct dirent *de;
		char names[64][128];
		size_t n = 0;
		while (d != NULL && (de = readdir(d)) != NULL && n < 64)
			if (strcmp(de->d_name, "postern-sizes") != 0)
				CHECK(util_snprintf(names[n++], sizeof(names[0]), "%s/%s\n",
						    subs[s], de->d_name) > 0);
		if (d != NULL)
			closedir(d);
		qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
		for (size_t i = 0; i < n; i++)
			strncat(out, names[i], size - strlen(out) - 1);
	}
}

static void test_commit(void)
{
	char md_path[256];
	struct maildir *md;
	struct maildir_opts o;
	const char *err = NULL;
	char before[4096], after[4096];

	maildir_opts_default(&o);
	make_maildir(md_path, sizeof(md_path), "commit");
	write_at(md_path, "new/1.a", "A\n");
	write_at(md_path, "new/2.b", "B\n");
	write_at(md_path, "cur/3.c:2,S", "C\n");
	list_dir(md_path, before, sizeof(before));
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	list_dir(md_path, after, sizeof(after));
	CHECK_STR(after, before); /* open changes nothing but the cache */
	maildir_msg(md, 1)->deleted = true;
	write_at(md_path, "new/4.d", "D\n"); /* arrives after the snapshot */
	CHECK(maildir_commit(md, &err) == 0);
	CHECK(maildir_msg_open(md, 0, &(int){ 0 }, &(uint64_t){ 0 }, &err) == -1);
	maildir_close(&md);
	CHECK(exists(md_path, "new/1.a") && !exists(md_path, "new/2.b") &&
	      exists(md_path, "cur/3.c:2,S") && exists(md_path, "new/4.d"));

	/* the limit: at max all, past max the first ones in delivery order */
	o.max_messages = 3;
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 3);
	maildir_close(&md);
	o.max_messages = 2;
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 2);
	CHECK_STR(maildir_msg(md, 0)->uid, "1.a");
	CHECK_STR(maildir_msg(md, 1)->uid, "3.c");
	maildir_close(&md);

	/* a file that cannot be deleted: commit reports it, the rest are deleted */
	if (geteuid() != 0) {
		char p[512];
		o.max_messages = 10;
		CHECK(maildir_open(md_path, &o, &md, &err) == 0);
		CHECK(util_snprintf(p, sizeof(p), "%s/cur", md_path) > 0);
		CHECK(chmod(p, 0500) == 0);
		maildir_msg(md, 0)->deleted = true;
		maildir_msg(md, 1)->deleted = true;
		CHECK(maildir_commit(md, &err) == -1);
		CHECK(chmod(p, 0700) == 0);
		maildir_close(&md);
		CHECK(!exists(md_path, "new/1.a") && exists(md_path, "cur/3.c:2,S"));
	}
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void test_many(void)
{
	char md_path[256], p[512];
	struct maildir *md;
	struct maildir_opts o;
	const char *err = NULL;
	const size_t N = 10000;

	maildir_opts_default(&o);
	make_maildir(md_path, sizeof(md_path), "many");
	for (size_t i = 0; i < N; i++) {
		char name[128], body[600];
		CHECK(util_snprintf(name, sizeof(name), "%s/%s/%zu.M%zuP1.host%s", md_path,
				    i % 3 == 0 ? "new" : "cur", 1700000000 + i, i,
				    i % 3 == 0 ? "" : ":2,S") > 0);
		int n = util_snprintf(body, sizeof(body),
				      "Return-Path: <a@example.org>\nMessage-ID: <%zu@x>\n"
				      "Subject: message %zu\n\n%s", i, i,
				      "Some body text that goes on for a while, line one.\n"
				      "Line two of the body.\nLine three.\n");
		int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		CHECK(fd != -1 && util_write_all(fd, body, (size_t)n) == 0);
		close(fd);
	}
	uint64_t t0 = util_now_ms();
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	uint64_t t1 = util_now_ms();
	CHECK(maildir_count(md) == N);
	maildir_close(&md);
	uint64_t t2 = util_now_ms();
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	uint64_t t3 = util_now_ms();
	printf("maildir: open of %zu messages: first %llu ms, second (size cache) %llu ms\n",
	       N, (unsigned long long)(t1 - t0), (unsigned long long)(t3 - t2));
	CHECK(maildir_count(md) == N);
	CHECK(t3 - t2 < 2000);
	size_t bad = 0;
	for (size_t i = 0; i < N; i++) {
		char uid[64];
		CHECK(util_snprintf(uid, sizeof(uid), "%zu.M%zuP1.host", 1700000000 + i, i) > 0);
		bad += strcmp(maildir_msg(md, i)->uid, uid) != 0;
	}
	CHECK(bad == 0);
	for (size_t i = 0; i < N; i += 2)
		maildir_msg(md, i)->deleted = true;
	CHECK(maildir_commit(md, &err) == 0);
	maildir_close(&md);
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == N / 2);
	CHECK(util_snprintf(p, sizeof(p), "%zu.M1P1.host", (size_t)1700000001) > 0);
	CHECK_STR(maildir_msg(md, 0)->uid, p);
	maildir_close(&md);
}

static void test_big(void)
{
	char md_path[256], p[512];
	struct maildir *md;
	struct maildir_opts o;
	const char *err = NULL;
	const size_t BIG = 50u * 1024 * 1024;

	maildir_opts_default(&o);
	make_maildir(md_path, sizeof(md_path), "big");
	CHECK(util_snprintf(p, sizeof(p), "%s/new/1.big", md_path) > 0);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char *chunk = malloc(1024 * 1024);
	memset(chunk, 'x', 1024 * 1024);
	for (size_t i = 63; i < 1024 * 1024; i += 64)
		chunk[i] = '\n';
	for (size_t w = 0; w < BIG; w += 1024 * 1024)
		CHECK(util_write_all(fd, chunk, 1024 * 1024) == 0);
	close(fd);
	free(chunk);
	long rss0 = maxrss_kb();
	CHECK(maildir_open(md_path, &o, &md, &err) == 0);
	CHECK(maildir_count(md) == 1);
	CHECK(maildir_msg(md, 0)->size == BIG + BIG / 64);
	uint64_t len, got = 0, crlf = 0;
	bool cr = false;
	CHECK(maildir_msg_open(md, 0, &fd, &len, &err) == 0);
	CHECK(len == BIG);
	char buf[IO_CHUNK];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		crlf += crlf_size(buf, (size_t)n, &cr);
		got += (uint64_t)n;
	}
	close(fd);
	CHECK(got == BIG && crlf == BIG + BIG / 64);
	long grew = maxrss_kb() - rss0;
	printf("maildir: 50 MB message: max RSS grew by %ld KB\n", grew);
	CHECK(grew < 16 * 1024);
	maildir_close(&md);
	unlink(p);
}

int main(void)
{
	CHECK(util_snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_maildir.XXXXXX") > 0);
	CHECK(mkdtemp(tmpdir) != NULL);
	test_names();
	test_uid();
	test_list();
	test_cache();
	test_renames();
	test_commit();
	test_many();
	test_big();
	char cmd[128];
	if (util_snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir) > 0)
		(void)!system(cmd);
	return unit_done("maildir");
}
