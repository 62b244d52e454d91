/* mbox.c: the splitter (table of valid and invalid inputs, fed whole, byte by byte and
 * in random chunks), the limit, UIDLs, locking (dotlock, fcntl held by a child), commit
 * (only marked messages, mail appended after the snapshot kept, a changed file refused),
 * 10,000 messages and a 50 MB message read with bounded memory. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "mail/crlf.h"
#include "storage/mbox.h"
#include "storage/mstore.h"
#include "base/util.h"
#include "unit.h"

static char tmpdir[64];

/* ---- helpers ---- */

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1);
	CHECK(util_write_all(fd, data, len) == 0);
	close(fd);
}

static void append_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	CHECK(fd != -1);
	CHECK(util_write_all(fd, data, strlen(data)) == 0);
	close(fd);
}

static char *read_file(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd == -1 || fstat(fd, &st) == -1) {
		*len = 0;
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	*len = (size_t)st.st_size;
	CHECK(util_read_full(fd, buf, *len) != -1);
	buf[*len] = '\0';
	close(fd);
	return buf;
}

static bool file_is(const char *path, const char *expect)
{
	size_t len;
	char *b = read_file(path, &len);
	bool ok = b != NULL && len == strlen(expect) && memcmp(b, expect, len) == 0;
	if (!ok)
		fprintf(stderr, "file %s: got [%s] want [%s]\n", path, b ? b : "(none)", expect);
	free(b);
	return ok;
}

static void quick_opts(struct mbox_opts *o)
{
	mbox_opts_default(o);
	o->dotlock_retries = 0;
	o->lock_timeout_ms = 300;
}

/* Message i's bytes via the mstore reader path (pread). */
static char *msg_text(struct mbox *mb, size_t i, size_t *len)
{
	int fd;
	uint64_t off, n;
	const char *err;
	if (mbox_msg_range(mb, i, &fd, &off, &n, &err) == -1)
		return NULL;
	char *b = malloc(n + 1);
	CHECK(pread(fd, b, n, (off_t)off) == (ssize_t)n);
	b[n] = '\0';
	*len = n;
	return b;
}

/* ---- the splitter ---- */

struct split_case {
	const char *in;
	size_t in_len;              /* 0: strlen */
	int count;                  /* -1: not an mbox */
	const char *content[3];     /* expected content of each message */
	size_t clen[3];             /* 0: strlen (use for NULs) */
};

static const struct split_case valid[] = {
	{ "", 0, 0, { NULL }, { 0 } },
	{ "From a\nH: 1\n\nbody\n\n", 0, 1, { "H: 1\n\nbody\n" }, { 0 } },
	{ "From a\nH: 1\n\nbody\n\nFrom b\nH: 2\n\nx\n\n", 0, 2,
	  { "H: 1\n\nbody\n", "H: 2\n\nx\n" }, { 0 } },
	{ "From a\nX\n", 0, 1, { "X\n" }, { 0 } },                 /* no final blank line */
	{ "From a\nX\nFrom b\n", 0, 1, { "X\nFrom b\n" }, { 0 } }, /* no blank before */
	{ "From a\nX\n\n>From b\n", 0, 1, { "X\n\n>From b\n" }, { 0 } },
	{ "From a\nX\n\nfrom b\n", 0, 1, { "X\n\nfrom b\n" }, { 0 } },
	{ "From a\r\nX\r\n\r\nFrom b\r\nY\r\n\r\n", 0, 2, { "X\r\n", "Y\r\n" }, { 0 } },
	{ "From a\nX\n\r\nFrom b\n", 0, 2, { "X\n", "" }, { 0 } },
	{ "From a", 0, 1, { "" }, { 0 } },
	{ "From a\n", 0, 1, { "" }, { 0 } },
	{ "From a\n\n", 0, 1, { "" }, { 0 } },
	{ "From a\n\n\n", 0, 1, { "\n" }, { 0 } },
	{ "From a\n\nFrom b\n", 0, 2, { "", "" }, { 0 } },
	{ "From a\n\n\nFrom b\n\n", 0, 2, { "\n", "" }, { 0 } },
	{ "From a\nX\n\nFrom", 0, 1, { "X\n\nFrom" }, { 0 } },    /* cut "From" at EOF */
	{ "From a\nX\n\nFro\n", 0, 1, { "X\n\nFro\n" }, { 0 } },
	{ "From a\nX\n\nFrom \n", 0, 2, { "X\n", "" }, { 0 } },
	{ "From a\nX\n\nFrom b", 0, 2, { "X\n", "" }, { 0 } },
	{ "From a\n\0\r\rX\n\n", 13, 1, { "\0\r\rX\n" }, { 5 } }, /* garbage is fine */
	{ "From a\nH\n\nb\n\n\nFrom c\nd\n\nFrom e\n\n\n", 0, 3, { "H\n\nb\n\n", "d\n", "\n" },
	  { 0 } },
	{ "From a\nX\n\n \nFrom b\n", 0, 1, { "X\n\n \nFrom b\n" }, { 0 } },
};

static const struct split_case invalid[] = {
	{ "Hello\n", 0, -1, { NULL }, { 0 } },
	{ "\nFrom a\n", 0, -1, { NULL }, { 0 } },
	{ "Fro", 0, -1, { NULL }, { 0 } },
	{ "F", 0, -1, { NULL }, { 0 } },
	{ " From a\n", 0, -1, { NULL }, { 0 } },
	{ "from a\n", 0, -1, { NULL }, { 0 } },
	{ "From\n", 0, -1, { NULL }, { 0 } },
	{ ">From a\n", 0, -1, { NULL }, { 0 } },
	{ "\0From a\n", 8, -1, { NULL }, { 0 } },
};

/* Parse with a chunking (seed 0: whole, 1: one byte, else random 1..9). */
static struct mbox_parser *parse(const char *in, size_t len, unsigned seed, size_t max,
				 int *ret)
{
	struct mbox_parser *p = mbox_parser_new(0, max, false);
	uint32_t x = seed * 2654435761u + 7;
	size_t i = 0;
	int r = 0;
	while (i < len && r == 0) {
		size_t n = seed == 0 ? len : seed == 1 ? 1 : 0;
		if (n == 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 9;
		}
		if (n > len - i)
			n = len - i;
		r = mbox_parser_feed(p, in + i, n);
		i += n;
	}
	if (r != -1)
		r = mbox_parser_finish(p);
	*ret = r;
	return p;
}

static void test_split_table(void)
{
	for (size_t t = 0; t < sizeof(valid) / sizeof(valid[0]); t++) {
		const struct split_case *c = &valid[t];
		size_t len = c->in_len ? c->in_len : strlen(c->in);
		struct mbox_msginfo ref[3];
		for (unsigned seed = 0; seed < 16; seed++) {
			int r;
			struct mbox_parser *p = parse(c->in, len, seed, 100, &r);
			size_t n;
			const struct mbox_msginfo *m = mbox_parser_msgs(p, &n);
			CHECK(r == 0);
			CHECK(n == (size_t)c->count);
			if (n != (size_t)c->count)
				fprintf(stderr, "valid case %zu seed %u: %zu messages\n", t, seed, n);
			for (size_t k = 0; k < n && k < 3; k++) {
				size_t cl = c->clen[k] ? c->clen[k] : strlen(c->content[k]);
				bool ok = m[k].raw_len == cl && m[k].body_off + cl <= len &&
					memcmp(c->in + m[k].body_off, c->content[k], cl) == 0;
				if (!ok)
					fprintf(stderr, "valid case %zu msg %zu: off %llu len %llu\n",
						t, k, (unsigned long long)m[k].body_off,
						(unsigned long long)m[k].raw_len);
				CHECK(ok);
				CHECK(m[k].size == crlf_size(c->content[k], cl, NULL));
				CHECK(memcmp(c->in + m[k].from_off, "From ", 5) == 0);
				if (seed == 0)
					ref[k] = m[k];
				else
					CHECK(memcmp(&ref[k], &m[k], sizeof(ref[k])) == 0);
			}
			CHECK(mbox_parser_end(p) == (n > 0 ? len : 0));
			mbox_parser_free(&p);
		}
	}
	for (size_t t = 0; t < sizeof(invalid) / sizeof(invalid[0]); t++) {
		const struct split_case *c = &invalid[t];
		size_t len = c->in_len ? c->in_len : strlen(c->in);
		for (unsigned seed = 0; seed < 4; seed++) {
			int r;
			struct mbox_parser *p = parse(c->in, len, seed, 100, &r);
			CHECK(r == -1);
			mbox_parser_free(&p);
		}
	}
}

/* max_messages: at the limit all are indexed; past it, the rest is left unindexed and
 * the end is the first unindexed From line. */
static void test_split_limit(void)
{
	const char *in = "From a\nA\n\nFrom b\nB\n\nFrom c\nC\n\n";
	int r;
	size_t n;
	struct mbox_parser *p = parse(in, strlen(in), 0, 3, &r);
	mbox_parser_msgs(p, &n);
	CHECK(r == 0 && n == 3);
	CHECK(mbox_parser_end(p) == strlen(in));
	mbox_parser_free(&p);
	for (unsigned seed = 0; seed < 4; seed++) {
		p = parse(in, strlen(in), seed, 2, &r);
		const struct mbox_msginfo *m = mbox_parser_msgs(p, &n);
		CHECK(r == 0 && n == 2);
		CHECK(mbox_parser_end(p) == 20);
		CHECK(m[1].raw_len == 2);
		mbox_parser_free(&p);
	}
	p = parse(in, strlen(in), 0, 0, &r);
	mbox_parser_msgs(p, &n);
	CHECK(r == 0 && n == 0 && mbox_parser_end(p) == 0);
	mbox_parser_free(&p);
}

/* The digest depends on the From line and header only: not on the offset or the body,
 * and a message hashes the same with or without mail before it. */
static void test_digest(void)
{
	const char *two = "From a\nH: 1\n\nbody\n\nFrom b\nH: 2\n\nx\n\n";
	const char *one = "From b\nH: 2\n\nother body\n";
	const char *hdr = "From b\nH: 3\n\nx\n\n";
	int r;
	size_t n2, n1, n3;
	struct mbox_parser *p2 = parse(two, strlen(two), 0, 10, &r);
	struct mbox_parser *p1 = parse(one, strlen(one), 0, 10, &r);
	struct mbox_parser *p3 = parse(hdr, strlen(hdr), 0, 10, &r);
	const struct mbox_msginfo *m2 = mbox_parser_msgs(p2, &n2);
	const struct mbox_msginfo *m1 = mbox_parser_msgs(p1, &n1);
	const struct mbox_msginfo *m3 = mbox_parser_msgs(p3, &n3);
	CHECK(n2 == 2 && n1 == 1 && n3 == 1);
	CHECK(memcmp(m2[1].digest, m1[0].digest, MBOX_DIGEST_LEN) == 0);
	CHECK(memcmp(m2[0].digest, m1[0].digest, MBOX_DIGEST_LEN) != 0);
	CHECK(memcmp(m3[0].digest, m1[0].digest, MBOX_DIGEST_LEN) != 0);
	mbox_parser_free(&p1);
	mbox_parser_free(&p2);
	mbox_parser_free(&p3);

	/* header_only stops after the header and gives the same digest */
	struct mbox_parser *h = mbox_parser_new(19, 1, true);
	CHECK(mbox_parser_feed(h, two + 19, strlen(two) - 19) == 1);
	CHECK(mbox_parser_finish(h) == 0);
	size_t nh;
	const struct mbox_msginfo *mh = mbox_parser_msgs(h, &nh);
	CHECK(nh == 1 && mh[0].from_off == 19 && mh[0].body_off == 26);
	p1 = parse(one, strlen(one), 0, 10, &r);
	m1 = mbox_parser_msgs(p1, &n1);
	CHECK(memcmp(mh[0].digest, m1[0].digest, MBOX_DIGEST_LEN) == 0);
	mbox_parser_free(&h);
	mbox_parser_free(&p1);
}

/* ---- the mailbox ---- */

static const char *M1 = "From a@x Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody one\n\n";
static const char *M2 = "From b@x Mon Jan  1 00:00:01 2024\nSubject: two\n\nbody two\n>From x\n\n";
static const char *M3 = "From c@x Mon Jan  1 00:00:02 2024\nSubject: three\r\n\r\nthree\r\n\n";
static const char *M4 = "From d@x Mon Jan  1 00:00:03 2024\nSubject: four\n\n.four\n\n";

static void build(const char *path, const char *const *parts, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(parts[i]);
	char *b = malloc(len + 1), *p = b;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, parts[i], strlen(parts[i]));
		p += strlen(parts[i]);
	}
	write_file(path, b, len);
	free(b);
}

static char *cat(const char *const *parts, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(parts[i]);
	char *b = malloc(len);
	b[0] = '\0';
	for (size_t i = 0; i < n; i++)
		strncat(b, parts[i], len - strlen(b) - 1);
	return b;
}

static void path_of(char *buf, size_t size, const char *name)
{
	CHECK(util_snprintf(buf, size, "%s/%s", tmpdir, name) > 0);
}

static void test_open_read(void)
{
	char path[128];
	struct mbox_opts o;
	struct mbox *mb;
	const char *err = NULL;
	const char *parts[] = { M1, M2, M3, M4 };

	quick_opts(&o);
	path_of(path, sizeof(path), "basic");
	build(path, parts, 4);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == 4);
	const char *expect[] = {
		"Subject: one\n\nbody one\n", "Subject: two\n\nbody two\n>From x\n",
		"Subject: three\r\n\r\nthree\r\n", "Subject: four\n\n.four\n",
	};
	char uids[4][POP3_UIDL_MAX + 1];
	for (size_t i = 0; i < 4; i++) {
		size_t len;
		char *t = msg_text(mb, i, &len);
		CHECK(t != NULL && strcmp(t, expect[i]) == 0);
		free(t);
		struct mstore_msg *m = mbox_msg(mb, i);
		CHECK(m->size == crlf_size(expect[i], strlen(expect[i]), NULL));
		CHECK(m->raw_len == strlen(expect[i]));
		CHECK(strlen(m->uid) == 32);
		CHECK(m->name == NULL);
		memcpy(uids[i], m->uid, sizeof(uids[i]));
	}
	CHECK(mbox_msg(mb, 4) == NULL);
	/* sizes: bare LF counts 2, CRLF 2 */
	CHECK(mbox_msg(mb, 0)->size == 26);
	CHECK(mbox_msg(mb, 2)->size == 25);
	mbox_close(&mb);
	CHECK(mb == NULL);
	/* stable across sessions */
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	for (size_t i = 0; i < 4; i++)
		CHECK_STR(mbox_msg(mb, i)->uid, uids[i]);
	/* commit without deletions touches nothing */
	struct stat st0, st1;
	CHECK(stat(path, &st0) == 0);
	CHECK(mbox_commit(mb, &err) == 0);
	CHECK(stat(path, &st1) == 0);
	CHECK(st0.st_mtim.tv_nsec == st1.st_mtim.tv_nsec && st0.st_size == st1.st_size);
	mbox_close(&mb);
}

static void test_commit(void)
{
	char path[128];
	struct mbox_opts o;
	struct mbox *mb;
	const char *err = NULL;
	const char *parts[] = { M1, M2, M3, M4 };

	quick_opts(&o);
	path_of(path, sizeof(path), "commit");
	build(path, parts, 4);
	CHECK(chmod(path, 0660) == 0);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	char uid2[POP3_UIDL_MAX + 1], uid4[POP3_UIDL_MAX + 1];
	memcpy(uid2, mbox_msg(mb, 1)->uid, sizeof(uid2));
	memcpy(uid4, mbox_msg(mb, 3)->uid, sizeof(uid4));
	mbox_msg(mb, 0)->deleted = true;
	mbox_msg(mb, 2)->deleted = true;
	CHECK(mbox_commit(mb, &err) == 0);
	mbox_close(&mb);
	struct stat st; /* before reading it: a read sets atime */
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0660);
	CHECK(st.st_atim.tv_sec == st.st_mtim.tv_sec &&
	      st.st_atim.tv_nsec == st.st_mtim.tv_nsec); /* no new mail left */
	const char *left[] = { M2, M4 };
	char *want = cat(left, 2);
	CHECK(file_is(path, want));
	free(want);
	/* UIDs stable after deleting others */
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == 2);
	CHECK_STR(mbox_msg(mb, 0)->uid, uid2);
	CHECK_STR(mbox_msg(mb, 1)->uid, uid4);
	/* delete the last one */
	mbox_msg(mb, 1)->deleted = true;
	CHECK(mbox_commit(mb, &err) == 0);
	mbox_close(&mb);
	CHECK(file_is(path, M2));
	/* delete everything: an empty file stays */
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	mbox_msg(mb, 0)->deleted = true;
	CHECK(mbox_commit(mb, &err) == 0);
	mbox_close(&mb);
	CHECK(file_is(path, ""));
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == 0);
	mbox_close(&mb);
}

/* Mail delivered after the snapshot is kept, after the kept messages. */
static void test_commit_appended(void)
{
	char path[128];
	struct mbox_opts o;
	struct mbox *mb;
	const char *err = NULL;
	const char *parts[] = { M1, M2, M3 };

	quick_opts(&o);
	path_of(path, sizeof(path), "appended");
	build(path, parts, 3);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	append_file(path, M4);
	mbox_msg(mb, 0)->deleted = true;
	mbox_msg(mb, 2)->deleted = true;
	CHECK(mbox_commit(mb, &err) == 0);
	mbox_close(&mb);
	struct stat st;
	CHECK(stat(path, &st) == 0);
	CHECK(st.st_mtim.tv_sec > st.st_atim.tv_sec ||
	      (st.st_mtim.tv_sec == st.st_atim.tv_sec &&
	       st.st_mtim.tv_nsec > st.st_atim.tv_nsec)); /* new mail still shows */
	const char *left[] = { M2, M4 };
	char *want = cat(left, 2);
	CHECK(file_is(path, want));
	free(want);

	/* all deleted, new mail kept */
	build(path, parts, 2);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	append_file(path, M3);
	mbox_msg(mb, 0)->deleted = true;
	mbox_msg(mb, 1)->deleted = true;
	CHECK(mbox_commit(mb, &err) == 0);
	mbox_close(&mb);
	CHECK(file_is(path, M3));

	/* the limit: messages past max_messages are not indexed and are kept */
	const char *five[] = { M1, M2, M3, M4, M1 };
	build(path, five, 5);
	o.max_messages = 3;
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == 3);
	mbox_msg(mb, 1)->deleted = true;
	CHECK(mbox_commit(mb, &err) == 0);
	mbox_close(&mb);
	const char *rest[] = { M1, M3, M4, M1 };
	want = cat(rest, 4);
	CHECK(file_is(path, want));
	free(want);
	o.max_messages = 4;
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == 4);
	/* identical messages: the second gets "-2" */
	CHECK(strncmp(mbox_msg(mb, 3)->uid, mbox_msg(mb, 0)->uid, 32) == 0);
	CHECK(strcmp(mbox_msg(mb, 3)->uid + 32, "-2") == 0);
	CHECK(strlen(mbox_msg(mb, 0)->uid) == 32);
	mbox_close(&mb);
}

/* A file changed by another program since the snapshot: commit refuses, deletes nothing. */
static void test_commit_changed(void)
{
	char path[128];
	struct mbox_opts o;
	struct mbox *mb;
	const char *err = NULL;
	const char *parts[] = { M1, M2, M3 };

	quick_opts(&o);
	path_of(path, sizeof(path), "changed");
	char *orig = cat(parts, 3);

	/* header changed, same size */
	build(path, parts, 3);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	char *mod = strdup(orig);
	char *s = strstr(mod, "Subject: two");
	s[9] = 'T';
	write_file(path, mod, strlen(mod));
	mbox_msg(mb, 0)->deleted = true;
	err = NULL;
	CHECK(mbox_commit(mb, &err) == -1);
	CHECK(err != NULL && strstr(err, "changed") != NULL);
	mbox_close(&mb);
	CHECK(file_is(path, mod));
	free(mod);

	/* shrunk */
	build(path, parts, 3);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(truncate(path, (off_t)strlen(orig) - 1) == 0);
	mbox_msg(mb, 1)->deleted = true;
	CHECK(mbox_commit(mb, &err) == -1);
	mbox_close(&mb);

	/* a message grew (the others moved) */
	build(path, parts, 3);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	const char *grown[] = { "From a@x Mon Jan  1 00:00:00 2024\nSubject: one\nStatus: RO\n\n"
				"body one\n\n", M2, M3 };
	build(path, grown, 3);
	char *g = cat(grown, 3);
	mbox_msg(mb, 2)->deleted = true;
	CHECK(mbox_commit(mb, &err) == -1);
	mbox_close(&mb);
	CHECK(file_is(path, g));
	free(g);

	/* bytes after the scanned end that are not a new message */
	build(path, parts, 3);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	append_file(path, "junk\n");
	mbox_msg(mb, 0)->deleted = true;
	CHECK(mbox_commit(mb, &err) == -1);
	mbox_close(&mb);

	/* replaced by another file (rename) */
	build(path, parts, 3);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	char other[140];
	CHECK(util_snprintf(other, sizeof(other), "%s.new", path) > 0);
	build(other, parts, 3);
	CHECK(rename(other, path) == 0);
	mbox_msg(mb, 0)->deleted = true;
	CHECK(mbox_commit(mb, &err) == -1);
	CHECK(err != NULL && strstr(err, "replaced") != NULL);
	mbox_close(&mb);
	CHECK(file_is(path, orig));
	free(orig);
}

static void test_open_errors(void)
{
	char path[128], link[140];
	struct mbox_opts o;
	struct mbox *mb = NULL;
	const char *err = NULL;

	quick_opts(&o);
	/* missing file: empty */
	path_of(path, sizeof(path), "missing");
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == 0);
	CHECK(mbox_commit(mb, &err) == 0);
	mbox_close(&mb);
	struct stat st;
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
	/* empty file: empty */
	path_of(path, sizeof(path), "empty");
	write_file(path, "", 0);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == 0);
	mbox_close(&mb);
	/* not an mbox: error, untouched */
	path_of(path, sizeof(path), "notmbox");
	write_file(path, "Subject: hi\n\nFrom a\n", 20);
	CHECK(stat(path, &st) == 0);
	CHECK(mbox_open(path, &o, &mb, &err) == -1);
	CHECK(err != NULL && strstr(err, "not an mbox") != NULL);
	CHECK(file_is(path, "Subject: hi\n\nFrom a\n"));
	char lock[140];
	CHECK(util_snprintf(lock, sizeof(lock), "%s.lock", path) > 0);
	CHECK(access(lock, F_OK) == -1); /* lock released */
	/* a symlink */
	path_of(path, sizeof(path), "basic");
	path_of(link, sizeof(link), "link");
	CHECK(symlink(path, link) == 0);
	CHECK(mbox_open(link, &o, &mb, &err) == -1);
	CHECK(err != NULL && strstr(err, "symbolic") != NULL);
	/* a directory, a FIFO */
	path_of(path, sizeof(path), "dir");
	CHECK(mkdir(path, 0700) == 0);
	CHECK(mbox_open(path, &o, &mb, &err) == -1);
	path_of(path, sizeof(path), "fifo");
	CHECK(mkfifo(path, 0600) == 0);
	CHECK(mbox_open(path, &o, &mb, &err) == -1);
	CHECK(err != NULL && strstr(err, "regular") != NULL);
	/* not owned by the user (needs root to make such a file) */
	if (geteuid() == 0) {
		path_of(path, sizeof(path), "other");
		write_file(path, M1, strlen(M1));
		CHECK(chown(path, 65534, 65534) == 0);
		CHECK(mbox_open(path, &o, &mb, &err) == -1);
		CHECK(err != NULL && strstr(err, "owned") != NULL);
	}
	/* path too long for the lock file name */
	char longp[4100];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	CHECK(mbox_open(longp, &o, &mb, &err) == -1);
}

/* A dotlock held by someone else is respected: open and commit fail (short retries)
 * rather than ignore it, and nothing is deleted. */
static void test_dotlock(void)
{
	char path[128], lock[140];
	struct mbox_opts o;
	struct mbox *mb;
	const char *err = NULL;
	const char *parts[] = { M1, M2 };

	quick_opts(&o);
	path_of(path, sizeof(path), "dotlocked");
	CHECK(util_snprintf(lock, sizeof(lock), "%s.lock", path) > 0);
	build(path, parts, 2);
	char pid[32];
	CHECK(util_snprintf(pid, sizeof(pid), "%ld\n", (long)getpid()) > 0);
	write_file(lock, pid, strlen(pid)); /* a live process: not stale */
	CHECK(mbox_open(path, &o, &mb, &err) == -1);
	CHECK(err != NULL && strstr(err, "dotlock") != NULL);
	CHECK(access(lock, F_OK) == 0); /* not removed by us */
	unlink(lock);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(access(lock, F_OK) == -1); /* ours is gone after the scan */
	write_file(lock, pid, strlen(pid));
	mbox_msg(mb, 0)->deleted = true;
	CHECK(mbox_commit(mb, &err) == -1);
	CHECK(access(lock, F_OK) == 0);
	unlink(lock);
	char *both = cat(parts, 2);
	CHECK(file_is(path, both));
	free(both);
	CHECK(mbox_commit(mb, &err) == 0);
	mbox_close(&mb);
	CHECK(file_is(path, M2));
}

/* A child holding an fcntl write lock makes open wait, then fail (short timeout) or
 * succeed once the child lets go. */
static void test_fcntl_lock(void)
{
	char path[128];
	struct mbox_opts o;
	struct mbox *mb;
	const char *err = NULL;
	const char *parts[] = { M1, M2 };

	quick_opts(&o);
	path_of(path, sizeof(path), "fcntl");
	build(path, parts, 2);
	for (int round = 0; round < 2; round++) {
		int ready[2], go[2];
		CHECK(pipe(ready) == 0 && pipe(go) == 0);
		pid_t pid = fork();
		if (pid == 0) {
			int fd = open(path, O_RDWR);
			struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
			if (fd == -1 || fcntl(fd, F_SETLKW, &fl) == -1)
				_exit(1);
			(void)!write(ready[1], "x", 1);
			if (round == 0) {
				char c;
				(void)!read(go[0], &c, 1); /* hold until told */
			} else {
				util_sleep_ms(400); /* hold for a while, then exit */
			}
			_exit(0);
		}
		char c;
		CHECK(read(ready[0], &c, 1) == 1);
		uint64_t t0 = util_now_ms();
		if (round == 0) {
			o.lock_timeout_ms = 300;
			CHECK(mbox_open(path, &o, &mb, &err) == -1);
			CHECK(err != NULL && strstr(err, "fcntl") != NULL);
			CHECK(util_now_ms() - t0 >= 250);
			CHECK(write(go[1], "x", 1) == 1);
		} else {
			o.lock_timeout_ms = 5000;
			CHECK(mbox_open(path, &o, &mb, &err) == 0);
			CHECK(util_now_ms() - t0 >= 250);
			CHECK(mbox_count(mb) == 2);
			mbox_close(&mb);
		}
		int status;
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
		close(ready[0]);
		close(ready[1]);
		close(go[0]);
		close(go[1]);
	}
}

static void test_many(void)
{
	char path[128];
	struct mbox_opts o;
	struct mbox *mb;
	const char *err = NULL;
	const size_t N = 10000;

	quick_opts(&o);
	path_of(path, sizeof(path), "many");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1);
	for (size_t i = 0; i < N; i++) {
		char m[512];
		int n = util_snprintf(m, sizeof(m),
				      "From sender%zu@example.org Mon Jan  1 00:00:00 2024\n"
				      "Message-ID: <%zu@example.org>\nSubject: message %zu\n\n"
				      "Hello %zu.\nFrom here on: a quoted line\n>From there\n\n",
				      i, i, i, i);
		CHECK(n > 0 && util_write_all(fd, m, (size_t)n) == 0);
	}
	close(fd);
	uint64_t t0 = util_now_ms();
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	uint64_t t1 = util_now_ms();
	printf("mbox: open of %zu messages: %llu ms\n", N, (unsigned long long)(t1 - t0));
	CHECK(mbox_count(mb) == N);
	/* UIDs all distinct (sorted check) */
	char (*uids)[POP3_UIDL_MAX + 1] = malloc(N * sizeof(*uids));
	for (size_t i = 0; i < N; i++)
		memcpy(uids[i], mbox_msg(mb, i)->uid, sizeof(uids[i]));
	qsort(uids, N, sizeof(*uids), (int (*)(const void *, const void *))strcmp);
	size_t dups = 0;
	for (size_t i = 1; i < N; i++)
		dups += strcmp(uids[i - 1], uids[i]) == 0;
	CHECK(dups == 0);
	for (size_t i = 0; i < N; i++)
		memcpy(uids[i], mbox_msg(mb, i)->uid, sizeof(uids[i]));
	for (size_t i = 0; i < N; i += 2)
		mbox_msg(mb, i)->deleted = true;
	t0 = util_now_ms();
	CHECK(mbox_commit(mb, &err) == 0);
	printf("mbox: commit deleting %zu of %zu: %llu ms\n", N / 2, N,
	       (unsigned long long)(util_now_ms() - t0));
	mbox_close(&mb);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == N / 2);
	size_t bad = 0;
	for (size_t i = 0; i < N / 2; i++)
		bad += strcmp(mbox_msg(mb, i)->uid, uids[2 * i + 1]) != 0;
	CHECK(bad == 0);
	mbox_close(&mb);
	free(uids);
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* A 50 MB message, a 1 MB From line and a header block with no end: streamed. */
static void test_big(void)
{
	char path[128];
	struct mbox_opts o;
	struct mbox *mb;
	const char *err = NULL;
	const size_t BIG = 50u * 1024 * 1024;

	quick_opts(&o);
	path_of(path, sizeof(path), "big");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char *line = malloc(1024 * 1024 + 1);
	/* 1: 1 MB From line, a small message */
	memset(line, 'f', 1024 * 1024);
	CHECK(util_write_all(fd, "From ", 5) == 0);
	CHECK(util_write_all(fd, line, 1024 * 1024) == 0);
	CHECK(util_write_all(fd, "\nS: 1\n\nx\n\n", 10) == 0);
	/* 2: 50 MB body of 100-byte lines, bare LF */
	const char *h2 = "From b\nSubject: big\n\n";
	CHECK(util_write_all(fd, h2, strlen(h2)) == 0);
	memset(line, 'b', 1024 * 1024);
	for (size_t i = 99; i < 1024 * 1024; i += 100)
		line[i] = '\n';
	line[1024 * 1024 - 1] = '\n';
	for (size_t w = 0; w < BIG; w += 1024 * 1024)
		CHECK(util_write_all(fd, line, 1024 * 1024) == 0);
	CHECK(util_write_all(fd, "\n", 1) == 0);
	/* 3: header without end, 8 MB, then EOF */
	CHECK(util_write_all(fd, "From c\n", 7) == 0);
	memset(line, 'h', 1024 * 1024);
	for (size_t w = 0; w < 8; w++)
		CHECK(util_write_all(fd, line, 1024 * 1024) == 0);
	close(fd);
	free(line);

	long rss0 = maxrss_kb();
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == 3);
	struct mstore_msg *m = mbox_msg(mb, 1);
	CHECK(m->raw_len == BIG + 14); /* + "Subject: big\n\n" */
	size_t nl = 1; /* the last byte of each MB */
	for (size_t i = 99; i < 1024 * 1024; i += 100)
		nl++;
	uint64_t lines = nl * 50;
	CHECK(m->size == BIG + 14 + 2 + lines);
	CHECK(mbox_msg(mb, 2)->raw_len == 8u * 1024 * 1024);
	CHECK(mbox_msg(mb, 0)->raw_len == 8); /* "S: 1\n\nx\n" */
	/* stream message 2 in IO_CHUNK pieces */
	int mfd;
	uint64_t off, len, got = 0, crlf = 0;
	bool cr = false;
	CHECK(mbox_msg_range(mb, 1, &mfd, &off, &len, &err) == 0);
	char buf[IO_CHUNK];
	while (got < len) {
		size_t want = len - got < sizeof(buf) ? (size_t)(len - got) : sizeof(buf);
		ssize_t n = pread(mfd, buf, want, (off_t)(off + got));
		if (n <= 0)
			break;
		crlf += crlf_size(buf, (size_t)n, &cr);
		got += (uint64_t)n;
	}
	CHECK(got == BIG + 14 && crlf == m->size);
	long grew = maxrss_kb() - rss0;
	printf("mbox: 50 MB message: max RSS grew by %ld KB\n", grew);
	CHECK(grew < 16 * 1024);
	/* delete the big one: the compaction streams too */
	m->deleted = true;
	CHECK(mbox_commit(mb, &err) == 0);
	mbox_close(&mb);
	struct stat st;
	CHECK(stat(path, &st) == 0 &&
	      (uint64_t)st.st_size == 5 + 1024 * 1024 + 10 + 7 + 8u * 1024 * 1024);
	CHECK(mbox_open(path, &o, &mb, &err) == 0);
	CHECK(mbox_count(mb) == 2);
	mbox_close(&mb);
	unlink(path);
}

/* Through the mstore API. */
static void test_mstore_api(void)
{
	struct mstore_loc loc = { .kind = MSTORE_MBOX };
	struct mstore *s;
	const char *err = NULL;
	const char *parts[] = { M1, M2 };

	CHECK(util_snprintf(loc.path, sizeof(loc.path), "%s/api", tmpdir) > 0);
	build(loc.path, parts, 2);
	CHECK(mstore_open(&loc, &s, &err) == 0);
	CHECK(mstore_count(s) == 2);
	struct mstore_reader *r;
	CHECK(mstore_reader_open(s, 1, &r, &err) == 0);
	char buf[256];
	size_t len = 0;
	ssize_t n;
	while ((n = mstore_reader_read(r, buf + len, 3)) > 0)
		len += (size_t)n;
	CHECK(n == 0);
	buf[len] = '\0';
	CHECK_STR(buf, "Subject: two\n\nbody two\n>From x\n");
	mstore_reader_close(&r);
	CHECK(r == NULL);
	CHECK(mstore_reader_open(s, 2, &r, &err) == -1);
	mstore_get(s, 1)->deleted = true;
	CHECK(mstore_commit(s, &err) == 0);
	mstore_close(&s);
	CHECK(s == NULL);
	CHECK(file_is(loc.path, M1));
}

int main(void)
{
	CHECK(util_snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_mbox.XXXXXX") > 0);
	CHECK(mkdtemp(tmpdir) != NULL);
	test_split_table();
	test_split_limit();
	test_digest();
	test_open_read();
	test_commit();
	test_commit_appended();
	test_commit_changed();
	test_open_errors();
	test_dotlock();
	test_fcntl_lock();
	test_many();
	test_big();
	test_mstore_api();
	char cmd[128];
	if (util_snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir) > 0)
		(void)!system(cmd);
	return unit_done("mbox");
}
