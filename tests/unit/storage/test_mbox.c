/* mbox.c: the splitter (table of valid and invalid inputs, fed whole, byte by byte and
 * in random chunks), the limit, digests; locking with other programs (a dotlock, an
 * fcntl lock held by a child); the journalled compaction killed at every step, and bad
 * or stale journals.  Scanning, reading, expunging and saving are tested through the
 * storage API (test_storage.c). */
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
#include "storage/storage.h"
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

/* ---- locks, through the storage API ---- */

static const char *M1 = "From a@x Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody one\n\n";
static const char *M2 = "From b@x Mon Jan  1 00:00:01 2024\nSubject: two\n\nbody two\n>From x\n\n";

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

static struct mail_storage *store(const char *path)
{
	char loc[200], home[160];
	struct mail_storage *st = NULL;
	const char *err;
	CHECK(util_snprintf(loc, sizeof(loc), "mbox:%s", path) > 0);
	CHECK(util_snprintf(home, sizeof(home), "%s.home", path) > 0);
	mkdir(home, 0700);
	CHECK(storage_locate(loc, "ned", home, &st, &err) == 0);
	return st;
}

/* A dotlock held by someone else (an MTA, mutt) is respected: a sync that must read
 * the changed file and an expunge fail (after short retries) rather than ignore it, and
 * nothing is deleted. */
static void test_dotlock(void)
{
	char path[128], lock[140];
	struct mailbox *box;
	const char *err = NULL;
	const char *parts[] = { M1, M2 };

	path_of(path, sizeof(path), "dotlocked");
	CHECK(util_snprintf(lock, sizeof(lock), "%s.lock", path) > 0);
	build(path, parts, 2);
	char pid[32];
	CHECK(util_snprintf(pid, sizeof(pid), "%ld\n", (long)getpid()) > 0);
	write_file(lock, pid, strlen(pid)); /* a live process: not stale */
	struct mail_storage *st = store(path);
	CHECK(mailbox_open(st, "INBOX", &box, &err) == -1);
	CHECK(err != NULL && strstr(err, "dotlock") != NULL);
	CHECK(access(lock, F_OK) == 0); /* not removed by us */
	unlink(lock);
	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	CHECK(access(lock, F_OK) == -1); /* ours is gone after the scan */
	CHECK(mailbox_count(box) == 2);
	write_file(lock, pid, strlen(pid));
	uint32_t uid = mailbox_get(box, 0)->uid;
	CHECK(mailbox_expunge(box, &uid, 1, &err) == -1);
	CHECK(access(lock, F_OK) == 0);
	unlink(lock);
	char *both = cat(parts, 2);
	CHECK(file_is(path, both));
	free(both);
	CHECK(mailbox_expunge(box, &uid, 1, &err) == 0);
	mailbox_close(&box);
	CHECK(file_is(path, M2));
	storage_free(&st);
}

/* A child holding an fcntl write lock (mutt, an MTA) makes a reader wait, then fail
 * (short timeout), or read once the child lets go. */
static void test_fcntl_lock(void)
{
	char path[128];
	struct mailbox *box;
	const char *err = NULL;
	const char *parts[] = { M1, M2 };

	path_of(path, sizeof(path), "fcntl");
	build(path, parts, 2);
	struct mail_storage *st = store(path);
	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	uint32_t uid = mailbox_get(box, 1)->uid;
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
		struct mail_reader *r;
		char buf[256];
		uint64_t t0 = util_now_ms();
		if (round == 0) {
			mbox_test_lock_timeout_ms = 300;
			CHECK(mailbox_msg_open(box, uid, &r, &err) == -1);
			CHECK(err != NULL && strstr(err, "fcntl") != NULL);
			CHECK(util_now_ms() - t0 >= 250);
			CHECK(write(go[1], "x", 1) == 1);
		} else {
			mbox_test_lock_timeout_ms = 5000;
			CHECK(mailbox_msg_open(box, uid, &r, &err) == 0);
			CHECK(util_now_ms() - t0 >= 250);
			ssize_t n = mail_reader_read(r, buf, sizeof(buf), &err);
			CHECK(n == (ssize_t)strlen("Subject: two\n\nbody two\n>From x\n"));
			mail_reader_close(&r);
		}
		int status;
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
		close(ready[0]);
		close(ready[1]);
		close(go[0]);
		close(go[1]);
	}
	mbox_test_lock_timeout_ms = 0;
	mailbox_close(&box);
	storage_free(&st);
}

/* ---- compaction killed at every step ---- */

static int kill_at = -1, hook_calls;

static void killer(int step)
{
	(void)step;
	if (hook_calls++ == kill_at)
		raise(SIGKILL);
}

/* Fork a child that expunges uids and is killed at the nth compaction step (or
 * finishes).  true: it was killed. */
static bool crash_at(const char *path, int n, const uint32_t *uids, size_t nuid)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct mail_storage *cst = store(path);
		struct mailbox *cbox;
		const char *err;
		kill_at = n;
		hook_calls = 0;
		if (mailbox_open(cst, "INBOX", &cbox, &err) == -1)
			_exit(2);
		mbox_test_hook = killer;
		_exit(mailbox_expunge(cbox, uids, nuid, &err) == 0 ? 0 : 3);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	if (WIFEXITED(status)) {
		CHECK(WEXITSTATUS(status) == 0);
		return false;
	}
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	return true;
}

struct kept {
	uint32_t uid;
	char key[POP3_UIDL_MAX + 1];
};

/* Messages of many sizes (some over a compaction chunk, one tiny), every third one and
 * a run of two deleted.  The child expunges them and is killed at the Nth step of the
 * compaction (journal written, each chunk's slot and copy, the marker, the cut, the
 * journal's removal), for every N until it finishes; in half of the runs an "MTA"
 * appends a message after the kill.  Then a new open: the file is the original one (the
 * kill came before the journal) or exactly the compacted one (each kept message once,
 * then the appended one), every kept message has its UID, and no journal is left. */
static void test_compact_crash(void)
{
	enum { NMSG = 14 };
	char *msgs[NMSG];
	bool del[NMSG] = { false };
	size_t sizes[NMSG] = { 300, 70000, 40, 150000, 2000, 90000, 10, 5000, 200000, 300,
			       65536, 1000, 80, 70000 };
	for (int i = 0; i < NMSG; i++) {
		size_t body = sizes[i];
		msgs[i] = malloc(body + 128);
		int h = snprintf(msgs[i], 128, "From m%d@x Mon Jan  1 00:00:%02d 2024\n"
				 "Subject: m%d\n\n", i, i, i);
		for (size_t k = 0; k < body; k++)
			msgs[i][h + k] = (k % 61 == 60) ? '\n' : (char)('a' + (i + k) % 26);
		memcpy(msgs[i] + h + body, "\n\n", 3);
		del[i] = i % 3 == 1 || i == 5 || i == 6;
	}
	const char *mta = "From mta@x Tue Jan  2 00:00:00 2024\nSubject: mta\n\nnew\n\n";
	const char *orig[NMSG + 1], *keep[NMSG + 1];
	size_t nkeep = 0;
	for (int i = 0; i < NMSG; i++) {
		orig[i] = msgs[i];
		if (!del[i])
			keep[nkeep++] = msgs[i];
	}
	char *whole = cat(orig, NMSG), *compacted = cat(keep, nkeep);
	orig[NMSG] = keep[nkeep] = mta;
	char *whole_mta = cat(orig, NMSG + 1), *compacted_mta = cat(keep, nkeep + 1);

	int finished = 0, resumed = 0, untouched = 0;
	for (int n = 0; n < 400 && !finished; n++) {
		char path[128], cmd[300], jpath[300];
		path_of(path, sizeof(path), "crash");
		CHECK(util_snprintf(cmd, sizeof(cmd), "rm -rf %s.home", path) > 0);
		CHECK(system(cmd) == 0);
		build(path, orig, NMSG);
		CHECK(util_snprintf(jpath, sizeof(jpath), "%s.home/mail/.postern/INBOX.compact",
				    path) > 0);
		struct mail_storage *st = store(path);
		struct mailbox *box;
		const char *err = NULL;
		CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
		CHECK(mailbox_count(box) == NMSG);
		struct kept before[NMSG];
		uint32_t dels[NMSG];
		size_t ndel = 0;
		for (int i = 0; i < NMSG; i++) {
			const struct index_rec *r = mailbox_get(box, (size_t)i);
			before[i].uid = r->uid;
			snprintf(before[i].key, sizeof(before[i].key), "%s", r->key);
			if (del[i])
				dels[ndel++] = r->uid;
		}
		mailbox_close(&box);
		finished = !crash_at(path, n, dels, ndel);
		bool appended = n % 2 == 1 && !finished;
		if (appended) { /* an MTA delivers before anyone of ours looks */
			int fd = open(path, O_WRONLY | O_APPEND);
			CHECK(fd != -1 && util_write_all(fd, mta, strlen(mta)) == 0);
			close(fd);
		}
		bool had_journal = access(jpath, F_OK) == 0;
		CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
		CHECK(access(jpath, F_OK) == -1);
		size_t len;
		char *now = read_file(path, &len);
		bool is_whole = strcmp(now, appended ? whole_mta : whole) == 0;
		bool is_compact = strcmp(now, appended ? compacted_mta : compacted) == 0;
		CHECK(is_whole || is_compact);
		if (!is_whole && !is_compact)
			fprintf(stderr, "kill at step %d: %zu bytes\n", n, len);
		CHECK(!had_journal || is_compact);
		untouched += is_whole;
		resumed += had_journal;
		free(now);
		size_t want = (is_whole ? NMSG : nkeep) + (appended ? 1 : 0);
		CHECK(mailbox_count(box) == want);
		for (int i = 0; i < NMSG; i++) {
			if (del[i] && !is_whole)
				continue;
			const struct index_rec *r = mailbox_find(box, before[i].uid, NULL);
			CHECK(r != NULL && strcmp(r->key, before[i].key) == 0);
		}
		if (appended) {
			const struct index_rec *r = mailbox_get(box, mailbox_count(box) - 1);
			CHECK(r->uid > before[NMSG - 1].uid);
		}
		mailbox_close(&box);
		storage_free(&st);
	}
	CHECK(finished);
	CHECK(resumed >= 15);    /* many steps: every chunk of the copy was a kill point */
	CHECK(untouched <= 1);   /* only a kill before the journal leaves the file as it was */
	for (int i = 0; i < NMSG; i++)
		free(msgs[i]);
	free(whole);
	free(compacted);
	free(whole_mta);
	free(compacted_mta);
}

/* A gap smaller than a chunk plus the marker: the last chunk's source is overwritten by
 * the marker, so a kill between the marker and the slot that announces it is recovered
 * from the chunk's destination.  Killed at every step, a message deleted before M2:
 * the file is M2 alone afterwards. */
static void compact_crash_small(const char *first)
{
	char path[128], jpath[300], cmd[300];
	const char *parts[] = { first, M2 };
	bool finished = false;
	path_of(path, sizeof(path), "small");
	CHECK(util_snprintf(jpath, sizeof(jpath), "%s.home/mail/.postern/INBOX.compact",
			    path) > 0);
	CHECK(util_snprintf(cmd, sizeof(cmd), "rm -rf %s.home", path) > 0);
	for (int n = 0; n < 200 && !finished; n++) {
		CHECK(system(cmd) == 0);
		build(path, parts, 2);
		struct mail_storage *st = store(path);
		struct mailbox *box;
		const char *err = NULL;
		CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
		uint32_t uid = mailbox_get(box, 0)->uid, uid2 = mailbox_get(box, 1)->uid;
		mailbox_close(&box);
		finished = !crash_at(path, n, &uid, 1);
		CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
		CHECK(access(jpath, F_OK) == -1);
		CHECK(file_is(path, M2));
		CHECK(mailbox_count(box) == 1 && mailbox_get(box, 0)->uid == uid2);
		mailbox_close(&box);
		storage_free(&st);
	}
	CHECK(finished);
}

static void test_compact_crash_small(void)
{
	compact_crash_small(M1);
	compact_crash_small("From t@x Mon Jan  1 00:00:00 2024\n\n\n"); /* 37 bytes */
	compact_crash_small("From t\n\n");                               /* 8 bytes */
}

/* The journal is untrusted input and may be stale: a flipped byte anywhere in it, a cut
 * one, one for a file since replaced, one whose chunk another program changed since:
 * each is dropped and the mailbox left as it is (never a write from a journal that does
 * not match). */
static void test_compact_journal_bad(void)
{
	char path[128], jpath[300], cmd[300];
	const char *parts[] = { M1, M2 };
	char *both = cat(parts, 2);
	path_of(path, sizeof(path), "badjournal");
	CHECK(util_snprintf(jpath, sizeof(jpath), "%s.home/mail/.postern/INBOX.compact",
			    path) > 0);
	CHECK(util_snprintf(cmd, sizeof(cmd), "rm -rf %s.home", path) > 0);
	size_t jlen = 0;
	char *jgood = NULL;
	for (int round = 0; ; round++) {
		CHECK(system(cmd) == 0);
		build(path, parts, 2);
		struct mail_storage *st = store(path);
		struct mailbox *box;
		const char *err = NULL;
		CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
		uint32_t uid = mailbox_get(box, 0)->uid;
		mailbox_close(&box);
		/* killed after the journal, before its first copy */
		CHECK(crash_at(path, 0, &uid, 1));
		CHECK(file_is(path, both));
		if (jgood == NULL) {
			jgood = read_file(jpath, &jlen);
			CHECK(jgood != NULL && jlen > MBOX_CJ_HDR);
			struct mbox_cjournal pj;
			CHECK(mbox_cjournal_parse((unsigned char *)jgood, jlen, 10, &pj) == 0);
			CHECK(pj.phase == 1 && pj.ndel == 1 && pj.w == 0 &&
			      pj.r == strlen(M1) && pj.n == strlen(M1)); /* n <= the gap */
		}
		const char *want = both;
		if (round < (int)jlen) {
			/* every byte matters */
			char *bad = malloc(jlen);
			memcpy(bad, jgood, jlen);
			bad[round] ^= 0x10;
			struct mbox_cjournal pj;
			CHECK(mbox_cjournal_parse((unsigned char *)bad, jlen, 10, &pj) == -1);
			write_file(jpath, bad, jlen);
			free(bad);
		} else if (round == (int)jlen) {
			write_file(jpath, jgood, jlen - 1);
		} else if (round == (int)jlen + 1) {
			/* the mbox replaced by another file (mutt writes a new one) */
			char tmp[160];
			CHECK(util_snprintf(tmp, sizeof(tmp), "%s.new", path) > 0);
			build(tmp, parts, 2);
			CHECK(rename(tmp, path) == 0);
		} else {
			/* another program changed the chunk in flight (same size) */
			int fd = open(path, O_WRONLY);
			CHECK(fd != -1 && pwrite(fd, "X", 1, (off_t)strlen(M1) + 40) == 1);
			close(fd);
			char *changed = strdup(both);
			changed[strlen(M1) + 40] = 'X';
			CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
			CHECK(access(jpath, F_OK) == -1);
			CHECK(file_is(path, changed));
			CHECK(mailbox_count(box) == 2);
			mailbox_close(&box);
			free(changed);
			storage_free(&st);
			break;
		}
		CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
		CHECK(access(jpath, F_OK) == -1);
		CHECK(file_is(path, want));
		CHECK(mailbox_count(box) == 2);
		mailbox_close(&box);
		storage_free(&st);
	}
	free(jgood);
	free(both);
}

/* How often s occurs in the file. */
static int occurs(const char *path, const char *s)
{
	size_t len;
	char *b = read_file(path, &len);
	int n = 0;
	for (char *p = b; p != NULL && (p = strstr(p, s)) != NULL; p += strlen(s))
		n++;
	free(b);
	return n;
}

/* MOVE of three messages out of an mbox INBOX, killed at every step (the intent, each
 * copy appended, the copies committed, each step of the originals' compaction): the
 * next open of INBOX finishes it, so each message is in exactly one folder, whole, and
 * what stayed in INBOX has its UID (RFC 6851 3.3). */
static void test_move_crash(void)
{
	enum { NMSG = 5 };
	char msgs[NMSG][200], path[128], dest[300], cmd[300], ipath[300];
	const char *parts[NMSG];
	for (int i = 0; i < NMSG; i++) {
		snprintf(msgs[i], sizeof(msgs[i]), "From m%d@x Mon Jan  1 00:00:0%d 2024\n"
			 "Subject: move%d\n\nbody %d\n%s\n", i, i, i, i,
			 i == 2 ? "From quoted\n" : "");
		parts[i] = msgs[i];
	}
	path_of(path, sizeof(path), "move");
	CHECK(util_snprintf(dest, sizeof(dest), "%s.home/mail/Dest", path) > 0);
	CHECK(util_snprintf(ipath, sizeof(ipath), "%s.home/mail/.postern/INBOX.move",
			    path) > 0);
	CHECK(util_snprintf(cmd, sizeof(cmd), "rm -rf %s.home", path) > 0);
	bool finished = false;
	int moved_all = 0, moved_none = 0;
	for (int n = 0; n < 200 && !finished; n++) {
		CHECK(system(cmd) == 0);
		build(path, parts, NMSG);
		struct mail_storage *st = store(path);
		struct mailbox *box, *dbox;
		const char *err = NULL;
		CHECK(storage_folder_create(st, "Dest", &err) == 0);
		CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
		uint32_t uids[NMSG];
		for (int i = 0; i < NMSG; i++)
			uids[i] = mailbox_get(box, (size_t)i)->uid;
		mailbox_close(&box);
		pid_t pid = fork();
		if (pid == 0) {
			struct mail_storage *cst = store(path);
			struct mailbox *s, *d;
			uint32_t got[3];
			if (mailbox_open(cst, "INBOX", &s, &err) == -1 ||
			    mailbox_open(cst, "Dest", &d, &err) == -1)
				_exit(2);
			kill_at = n;
			hook_calls = 0;
			mbox_test_hook = killer;
			_exit(mailbox_copy_many(s, uids + 1, 3, d, true, got, &err) == 0 ? 0 : 3);
		}
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		if (WIFEXITED(status)) {
			CHECK(WEXITSTATUS(status) == 0);
			finished = true;
		} else {
			CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		}
		CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
		CHECK(access(ipath, F_OK) == -1);
		CHECK(mailbox_open(st, "Dest", &dbox, &err) == 0);
		CHECK(mailbox_count(box) + mailbox_count(dbox) == NMSG);
		int in_dest = 0;
		for (int i = 0; i < NMSG; i++) {
			char subj[32];
			snprintf(subj, sizeof(subj), "Subject: move%d\n", i);
			int a = occurs(path, subj), b = occurs(dest, subj);
			CHECK(a + b == 1);
			if (a == 1) /* still in INBOX: with its UID */
				CHECK(mailbox_find(box, uids[i], NULL) != NULL);
			in_dest += b;
			if (i == 0 || i == 4)
				CHECK(a == 1);
		}
		CHECK(occurs(dest, "\n>From quoted\n") == (occurs(dest, "Subject: move2\n") ? 1 : 0));
		CHECK((size_t)in_dest == mailbox_count(dbox));
		moved_all += in_dest == 3;
		moved_none += in_dest == 0;
		mailbox_close(&dbox);
		mailbox_close(&box);
		storage_free(&st);
	}
	CHECK(finished);
	CHECK(moved_all > 3 && moved_none >= 1);
}

int main(void)
{
	CHECK(util_snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_mbox.XXXXXX") > 0);
	CHECK(mkdtemp(tmpdir) != NULL);
	mbox_test_dotlock_retries = 0;
	test_split_table();
	test_split_limit();
	test_digest();
	test_dotlock();
	test_fcntl_lock();
	test_compact_crash();
	test_compact_crash_small();
	test_compact_journal_bad();
	test_move_crash();
	char cmd[128];
	if (util_snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir) > 0)
		(void)!system(cmd);
	return unit_done("mbox");
}
