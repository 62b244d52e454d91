/* index.c: records, two processes sharing one index, change reporting, compaction,
 * crash safety (a writer kill -9'd at every step of a commit leaves the old or the new
 * state, never reuses a UID, never loses a committed record), bad files rebuilt. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/util.h"
#include "base/plimits.h"
#include "index/index.h"
#include "unit.h"

static char tmpdir[64];

static int opendir_fd(const char *sub)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", tmpdir, sub);
	mkdir(p, 0700);
	return open(p, O_RDONLY | O_DIRECTORY);
}

static int add(struct index *ix, const char *key, uint32_t *uid_r)
{
	const char *err;
	struct index_rec r = { .key = (char *)key, .key_len = (uint32_t)strlen(key),
			       .size = 100, .raw = 98, .date = 1700000000 };
	if (index_append(ix, &r, &err) == -1)
		return -1;
	if (uid_r != NULL)
		*uid_r = r.uid;
	return 0;
}

static void test_basic(void)
{
	int dfd = opendir_fd("basic");
	struct index *a, *b;
	struct index_changes ch;
	const char *err = NULL;
	uint32_t u1, u2, u3;

	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_open(dfd, "idx", &b, &err) == 0);
	CHECK(index_count(a) == 0);
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(add(a, "one", &u1) == 0 && add(a, "two", &u2) == 0 && add(a, "three", &u3) == 0);
	CHECK(u1 == 1 && u2 == 2 && u3 == 3);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	uint32_t uv = index_hdr(a)->uidvalidity;
	CHECK(uv != 0);

	/* b sees a's messages */
	CHECK(index_refresh(b, &ch, &err) == 0);
	CHECK(ch.n_added == 3 && ch.added[0] == 1 && ch.added[2] == 3);
	CHECK(ch.n_expunged == 0 && ch.n_changed == 0);
	index_changes_free(&ch);
	CHECK(index_count(b) == 3);
	CHECK_STR(index_get(b, 1)->key, "two");
	CHECK(index_hdr(b)->uidvalidity == uv && index_hdr(b)->uidnext == 4);

	/* a flag change and an expunge in b, seen by a */
	CHECK(index_lock(b, NULL, &err) == 0);
	struct index_rec r = *index_find(b, 2, NULL);
	r.flags |= INDEX_FLAG_SEEN;
	uint64_t ms = index_hdr(b)->highestmodseq;
	CHECK(index_update(b, &r, &err) == 0);
	CHECK(r.modseq == ms + 1);
	CHECK(index_expunge(b, 1, &err) == 0);
	CHECK(index_commit(b, &err) == 0);
	index_unlock(b);
	CHECK(index_refresh(a, &ch, &err) == 0);
	CHECK(ch.n_changed == 1 && ch.changed[0] == 2);
	CHECK(ch.n_expunged == 1 && ch.expunged[0] == 1);
	CHECK(ch.n_added == 0);
	index_changes_free(&ch);
	CHECK(index_count(a) == 2);
	CHECK(index_find(a, 1, NULL) == NULL);
	CHECK((index_find(a, 2, NULL)->flags & INDEX_FLAG_SEEN) != 0);
	CHECK(index_hdr(a)->highestmodseq == index_hdr(b)->highestmodseq);

	/* an uncommitted change is dropped at unlock, in memory too */
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(add(a, "lost", NULL) == 0);
	index_unlock(a);
	CHECK(index_refresh(a, NULL, &err) == 0);
	CHECK(index_count(a) == 2);
	/* ...and its UID was never visible, so it may be handed out: the next is 4 */
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(add(a, "four", &u1) == 0 && u1 == 4);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	/* writes need the lock */
	CHECK(add(a, "x", NULL) == -1);
	index_close(&a);
	index_close(&b);

	/* a new process reads it all back */
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_count(a) == 3 && index_hdr(a)->uidvalidity == uv);
	CHECK_STR(index_get(a, 2)->key, "four");
	index_close(&a);
	close(dfd);
}

/* Many commits: the log is folded into a new snapshot; another reader follows. */
static void test_compaction(void)
{
	int dfd = opendir_fd("compact");
	struct index *a, *b;
	struct index_changes ch;
	const char *err;
	char key[300];

	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_open(dfd, "idx", &b, &err) == 0);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	for (int i = 0; i < 1200; i++) {
		CHECK(index_lock(a, NULL, &err) == 0);
		snprintf(key, 16, "%08d", i);
		key[8] = 'k';
		CHECK(add(a, key, NULL) == 0);
		CHECK(index_commit(a, &err) == 0);
		index_unlock(a);
		if (i == 600)
			CHECK(index_refresh(b, NULL, &err) == 0);
	}
	CHECK(index_stats(a)->compactions >= 1);
	CHECK(index_refresh(b, &ch, &err) == 0);
	CHECK(ch.n_added == 1200 - 601 && ch.n_expunged == 0);
	index_changes_free(&ch);
	CHECK(index_count(b) == 1200 && index_get(b, 1199)->uid == 1200);
	index_close(&a);
	index_close(&b);
	close(dfd);
}

/* ---- crash safety ---- */

static int kill_step, kill_at, hook_calls;
#define BAD() do { bad++; fprintf(stderr, "crash: bad state, line %d, step %d, at %d\n", \
				 __LINE__, kill_step, kill_at); } while (0)

static void killer(int step)
{
	if ((step == kill_step || kill_step == 0) && ++hook_calls >= kill_at)
		kill(getpid(), SIGKILL);
}

/* The child commits transactions of two appends and one flag change, reporting every
 * committed UID on fd; it is killed at the kill_at-th call of the hook at kill_step. */
static void crash_child(int dfd, int wfd)
{
	struct index *ix;
	const char *err;
	index_test_hook = killer;
	if (index_open(dfd, "idx", &ix, &err) == -1)
		_exit(2);
	for (int i = 0; i < 400; i++) {
		char key[32];
		uint32_t u1, u2;
		if (index_lock(ix, NULL, &err) == -1)
			_exit(3);
		snprintf(key, sizeof(key), "m%d", 2 * i);
		if (add(ix, key, &u1) == -1)
			_exit(4);
		/* the first 32 transactions each name a keyword and give the second
		 * record its bit: name and record are committed together or not at all */
		unsigned bit = 0;
		if (i < INDEX_MAX_KEYWORDS) {
			char kw[16];
			snprintf(kw, sizeof(kw), "kw%d", i);
			if (index_keyword_add(ix, kw, strlen(kw), &bit, &err) == -1 ||
			    bit != (unsigned)i)
				_exit(8);
		}
		snprintf(key, sizeof(key), "m%d", 2 * i + 1);
		struct index_rec r2 = { .key = key, .key_len = (uint32_t)strlen(key),
					.keywords = i < INDEX_MAX_KEYWORDS ? 1u << bit : 0 };
		if (index_append(ix, &r2, &err) == -1)
			_exit(4);
		u2 = r2.uid;
		if (index_count(ix) > 2) {
			struct index_rec r = *index_get(ix, 0);
			r.flags ^= INDEX_FLAG_SEEN;
			if (index_update(ix, &r, &err) == -1)
				_exit(5);
		}
		if (index_commit(ix, &err) == -1)
			_exit(6);
		index_unlock(ix);
		uint32_t both[2] = { u1, u2 };
		if (write(wfd, both, sizeof(both)) != sizeof(both))
			_exit(7);
	}
	_exit(0);
}

static void test_crash(void)
{
	static const int steps[] = { 1, 2, 3, 4, 10, 11, 0 };
	int dfd = opendir_fd("crash");
	int runs = 0, bad = 0;
	uint32_t max_committed = 0, max_seen_next = 0;

	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		for (int at = 1; at <= 60; at += 7) {
			int pfd[2];
			if (pipe(pfd) == -1)
				return;
			kill_step = steps[s];
			kill_at = at;
			hook_calls = 0;
			pid_t pid = fork();
			if (pid == 0) {
				close(pfd[0]);
				crash_child(dfd, pfd[1]);
			}
			close(pfd[1]);
			uint32_t both[2];
			while (read(pfd[0], both, sizeof(both)) == sizeof(both))
				if (both[1] > max_committed)
					max_committed = both[1];
			close(pfd[0]);
			int st;
			waitpid(pid, &st, 0);
			runs++;
			if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) &&
			    !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
				BAD();

			/* old or new state: keys in pairs, UIDs ascending, every committed UID
			 * present (none was expunged), UIDNEXT never going back */
			struct index *ix;
			const char *err;
			if (index_open(dfd, "idx", &ix, &err) == -1) {
				BAD();
				continue;
			}
			size_t n = index_count(ix);
			const struct index_hdr *h = index_hdr(ix);
			if (n % 2 != 0 || h->uidnext <= max_committed || h->uidnext < max_seen_next)
				BAD();
			if (n > 0 && index_get(ix, n - 1)->uid < max_committed)
				BAD();
			for (size_t i = 0; i < n; i++) {
				const struct index_rec *r = index_get(ix, i);
				char want[32];
				/* keys restart at m0 in every run; the pair is what matters */
				snprintf(want, sizeof(want), "m%u", (unsigned)(i % 2));
				if (r->uid != i + 1 || (strcmp(r->key, want) != 0 &&
							(r->key[0] != 'm')))
					BAD();
				if (i % 2 == 1) {
					int k0 = atoi(index_get(ix, i - 1)->key + 1);
					int k1 = atoi(r->key + 1);
					if (k1 != k0 + 1 || k0 % 2 != 0)
						BAD();
				}
			}
			unsigned nkw = index_keyword_count(ix);
			for (unsigned k = 0; k < nkw; k++) {
				char want[16];
				snprintf(want, sizeof(want), "kw%u", k);
				if (strcmp(index_keyword_name(ix, k), want) != 0)
					BAD();
			}
			for (size_t i = 1; i < n; i += 2) {
				const struct index_rec *r = index_get(ix, i);
				unsigned t = (unsigned)atoi(r->key + 1) / 2;
				if (t < INDEX_MAX_KEYWORDS ?
				    (r->keywords != 1u << t || t >= nkw) : r->keywords != 0)
					BAD();
			}
			max_seen_next = h->uidnext;
			index_close(&ix);
		}
	}
	CHECK(runs == 63);
	CHECK(bad == 0);
	CHECK(max_committed > 0);
	close(dfd);
}

/* A torn entry at the end of the log is ignored by readers and cut by the next writer;
 * a bad snapshot is rebuilt under a new UIDVALIDITY. */
static void test_bad_files(void)
{
	int dfd = opendir_fd("bad");
	struct index *a;
	const char *err;
	char p[160];

	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(add(a, "a", NULL) == 0);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(add(a, "b", NULL) == 0);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	uint32_t uv = index_hdr(a)->uidvalidity;
	index_close(&a);

	snprintf(p, sizeof(p), "%s/bad/idx.log", tmpdir);
	int fd = open(p, O_WRONLY | O_APPEND);
	CHECK(write(fd, "\x40\0\0\0garbage", 11) == 11);
	close(fd);
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_count(a) == 2);
	CHECK(index_lock(a, NULL, &err) == 0);
	uint32_t u;
	CHECK(add(a, "c", &u) == 0 && u == 3);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	index_close(&a);
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_count(a) == 3);
	index_close(&a);

	/* a flipped byte in the snapshot */
	snprintf(p, sizeof(p), "%s/bad/idx", tmpdir);
	fd = open(p, O_RDWR);
	CHECK(pwrite(fd, "X", 1, 20) == 1);
	close(fd);
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_count(a) == 0);
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(index_hdr(a)->uidvalidity != 0);
	CHECK(add(a, "z", &u) == 0 && u == 1);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	uint32_t uv2 = index_hdr(a)->uidvalidity;
	index_close(&a);
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_count(a) == 1 && index_hdr(a)->uidvalidity == uv2);
	index_close(&a);
	(void)uv;
	close(dfd);
}

/* The cache: set under the lock, seen by another process, kept across a compaction and
 * a reopen, dropped with its message, bounded. */
static void test_cache(void)
{
	int dfd = opendir_fd("cache");
	struct index *a, *b;
	const char *err;
	size_t len;
	uint32_t u1, u2;

	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_open(dfd, "idx", &b, &err) == 0);
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(add(a, "one", &u1) == 0 && add(a, "two", &u2) == 0);
	CHECK(index_cache_set(a, u1, INDEX_CACHE_ENVELOPE, "(env 1)", 7, &err) == 0);
	CHECK(index_cache_set(a, u2, INDEX_CACHE_ENVELOPE, "(env 2)", 7, &err) == 0);
	CHECK(index_cache_set(a, u2, INDEX_CACHE_BODYSTRUCTURE, "(bs 2)", 6, &err) == 0);
	CHECK(index_cache_set(a, 99, INDEX_CACHE_ENVELOPE, "x", 1, &err) == -1);
	CHECK(index_cache_set(a, u1, 0, "x", 1, &err) == -1);
	CHECK(index_cache_set(a, u1, INDEX_CACHE_FIELDS, "x", 1, &err) == -1);
	static char big[INDEX_CACHE_ENTRY_MAX + 1];
	CHECK(index_cache_set(a, u1, INDEX_CACHE_HEADERS, big, sizeof(big) - 1, &err) == 0);
	CHECK(index_cache_set(a, u1, INDEX_CACHE_HEADERS, big, sizeof(big), &err) == -1);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	CHECK(index_refresh(b, NULL, &err) == 0);
	const char *v = index_cache_get(b, u2, INDEX_CACHE_BODYSTRUCTURE, &len);
	CHECK(v != NULL && len == 6 && memcmp(v, "(bs 2)", 6) == 0);
	CHECK(index_cache_get(b, u1, INDEX_CACHE_BODYSTRUCTURE, &len) == NULL);

	/* replaced, then expunged with its message */
	CHECK(index_lock(b, NULL, &err) == 0);
	CHECK(index_cache_set(b, u1, INDEX_CACHE_ENVELOPE, "(env 1b)", 8, &err) == 0);
	CHECK(index_expunge(b, u2, &err) == 0);
	CHECK(index_commit(b, &err) == 0);
	index_unlock(b);
	CHECK(index_refresh(a, NULL, &err) == 0);
	v = index_cache_get(a, u1, INDEX_CACHE_ENVELOPE, &len);
	CHECK(v != NULL && len == 8 && memcmp(v, "(env 1b)", 8) == 0);
	CHECK(index_cache_get(a, u2, INDEX_CACHE_ENVELOPE, &len) == NULL);

	/* through compactions (many commits) and a reopen */
	for (int i = 0; i < 600; i++) {
		char key[300];
		memset(key, 'k', sizeof(key));
		snprintf(key, 16, "%08d", i);
		key[8] = 'k';
		key[299] = '\0';
		CHECK(index_lock(a, NULL, &err) == 0);
		CHECK(add(a, key, NULL) == 0);
		CHECK(index_commit(a, &err) == 0);
		index_unlock(a);
	}
	CHECK(index_stats(a)->compactions >= 1);
	index_close(&a);
	index_close(&b);
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	v = index_cache_get(a, u1, INDEX_CACHE_ENVELOPE, &len);
	CHECK(v != NULL && len == 8 && memcmp(v, "(env 1b)", 8) == 0);
	v = index_cache_get(a, u1, INDEX_CACHE_HEADERS, &len);
	CHECK(v != NULL && len == INDEX_CACHE_ENTRY_MAX);
	CHECK(index_stats(a)->maps == 1); /* read in place from the snapshot */

	/* over the snapshot's entries: one replaced, one added, one message expunged */
	uint32_t u3 = index_get(a, 2)->uid;
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(index_cache_set(a, u1, INDEX_CACHE_ENVELOPE, "(env 1c)", 8, &err) == 0);
	CHECK(index_cache_set(a, u3, INDEX_CACHE_SENTDATE, "d3", 2, &err) == 0);
	CHECK(index_expunge(a, u1, &err) == 0);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	CHECK(index_cache_get(a, u1, INDEX_CACHE_ENVELOPE, &len) == NULL);
	CHECK(index_cache_get(a, u1, INDEX_CACHE_HEADERS, &len) == NULL);
	v = index_cache_get(a, u3, INDEX_CACHE_SENTDATE, &len);
	CHECK(v != NULL && len == 2 && memcmp(v, "d3", 2) == 0);
	/* folded into a new snapshot (the merge), and read back */
	for (int i = 0; i < 600 && index_stats(a)->compactions == 0; i++) {
		char key[300];
		memset(key, 'k', sizeof(key));
		key[299] = '\0';
		CHECK(index_lock(a, NULL, &err) == 0);
		CHECK(add(a, key, NULL) == 0);
		CHECK(index_commit(a, &err) == 0);
		index_unlock(a);
	}
	CHECK(index_stats(a)->compactions == 1);
	index_close(&a);
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_cache_get(a, u1, INDEX_CACHE_ENVELOPE, &len) == NULL);
	v = index_cache_get(a, u3, INDEX_CACHE_SENTDATE, &len);
	CHECK(v != NULL && len == 2 && memcmp(v, "d3", 2) == 0);
	CHECK(index_stats(a)->heap_bytes < 16 * 1024);
	index_close(&a);
	close(dfd);
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

static void le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* UIDNEXT so near 2^32 that a full folder could not be numbered (a hostile file, or a
 * folder with billions of deliveries): a writer starts over under a new UIDVALIDITY. */
static void test_uids_used_up(void)
{
	int dfd = opendir_fd("usedup");
	unsigned char b[8 + 8 + 4 + 4 + 8 + 32 + 8 + 4 + 8 + 8 + 8 + 4] = "PSTIDX2\n";
	le(b + 8, 7, 8);                     /* generation */
	le(b + 16, 1234, 4);                 /* uidvalidity */
	le(b + 20, UINT32_MAX - 10, 4);      /* uidnext */
	le(b + 24, 5, 8);                    /* highestmodseq */
	le(b + 64, 0, 8);                    /* no records */
	le(b + 72, 0, 4);                    /* no keyword names */
	le(b + 76, 0, 8);                    /* an empty key area */
	le(b + 84, 0, 8);                    /* no cache entries */
	le(b + 92, 0, 8);                    /* no cache data */
	le(b + 100, crc32_of(b, 100), 4);
	char p[160];
	snprintf(p, sizeof(p), "%s/usedup/idx", tmpdir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1 && write(fd, b, sizeof(b)) == (ssize_t)sizeof(b));
	close(fd);
	struct index *ix;
	const char *err;
	uint32_t u;
	CHECK(index_open(dfd, "idx", &ix, &err) == 0);
	CHECK(index_hdr(ix)->uidvalidity == 1234 && index_hdr(ix)->uidnext == UINT32_MAX - 10);
	CHECK(index_lock(ix, NULL, &err) == 0);
	CHECK(index_hdr(ix)->uidvalidity != 1234 && index_hdr(ix)->uidnext == 1);
	CHECK(add(ix, "a", &u) == 0 && u == 1);
	CHECK(index_commit(ix, &err) == 0);
	index_unlock(ix);
	index_close(&ix);
	close(dfd);
}

/* Keyword names: added under the lock, found without regard to case, seen by another
 * process, kept through compactions and a reopen, bounded in length, syntax and number. */
static void test_keywords(void)
{
	int dfd = opendir_fd("keywords");
	struct index *a, *b;
	struct index_changes ch;
	const char *err;
	unsigned bit;

	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_open(dfd, "idx", &b, &err) == 0);
	CHECK(index_keyword_add(a, "$Junk", 5, &bit, &err) == -1); /* not locked */
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(index_keyword_add(a, "$Forwarded", 10, &bit, &err) == 0 && bit == 0);
	CHECK(index_keyword_add(a, "$Junk", 5, &bit, &err) == 0 && bit == 1);
	CHECK(index_keyword_add(a, "$junk", 5, &bit, &err) == 0 && bit == 1);
	CHECK(index_keyword_count(a) == 2);
	/* not atoms, system flags, too long */
	static const char *const bad[] = { "", "a b", "\\Seen", "a]", "x(", "a*", "%",
					   "q\"", "a\\b", "tab\t", "\x7f", "{3}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(index_keyword_add(a, bad[i], strlen(bad[i]), &bit, &err) == -1);
	char longname[INDEX_KEYWORD_MAX + 2];
	memset(longname, 'L', sizeof(longname));
	CHECK(index_keyword_add(a, longname, INDEX_KEYWORD_MAX + 1, &bit, &err) == -1);
	CHECK(index_keyword_add(a, longname, INDEX_KEYWORD_MAX, &bit, &err) == 0 && bit == 2);
	uint32_t u;
	struct index_rec r = { .key = "m", .key_len = 1, .keywords = 1u << 1 };
	CHECK(index_append(a, &r, &err) == 0);
	u = r.uid;
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);

	/* b: names after its refresh, and the change reported */
	CHECK(index_keyword_count(b) == 0 && index_keyword_find(b, "$JUNK", 5) == -1);
	CHECK(index_refresh(b, &ch, &err) == 0);
	CHECK(ch.new_keywords && ch.n_added == 1);
	index_changes_free(&ch);
	CHECK(index_keyword_count(b) == 3);
	CHECK(index_keyword_find(b, "$JUNK", 5) == 1);
	CHECK(index_keyword_find(b, "$Jun", 4) == -1);
	CHECK_STR(index_keyword_name(b, 0), "$Forwarded");
	CHECK(index_keyword_name(b, 3) == NULL);
	CHECK(index_find(b, u, NULL)->keywords == 1u << 1);
	CHECK(index_refresh(b, &ch, &err) == 0 && !ch.new_keywords);
	index_changes_free(&ch);

	/* an uncommitted name is dropped at unlock */
	CHECK(index_lock(b, NULL, &err) == 0);
	CHECK(index_keyword_add(b, "lost", 4, &bit, &err) == 0 && bit == 3);
	index_unlock(b);
	CHECK(index_refresh(b, NULL, &err) == 0);
	CHECK(index_keyword_count(b) == 3 && index_keyword_find(b, "lost", 4) == -1);

	/* fill the table: the next new name is refused, known ones are still found */
	CHECK(index_lock(b, NULL, &err) == 0);
	for (unsigned i = 3; i < INDEX_MAX_KEYWORDS; i++) {
		char kw[16];
		snprintf(kw, sizeof(kw), "k%u", i);
		CHECK(index_keyword_add(b, kw, strlen(kw), &bit, &err) == 0 && bit == i);
	}
	CHECK(index_keyword_add(b, "onemore", 7, &bit, &err) == -1);
	CHECK(strcmp(err, INDEX_KEYWORDS_FULL) == 0);
	CHECK(index_keyword_add(b, "K5", 2, &bit, &err) == 0 && bit == 5);
	CHECK(index_commit(b, &err) == 0);
	index_unlock(b);

	/* through compactions and a reopen */
	for (int i = 0; i < 500; i++) {
		char key[300];
		memset(key, 'k', sizeof(key));
		key[299] = '\0';
		CHECK(index_lock(a, NULL, &err) == 0);
		CHECK(add(a, key, NULL) == 0);
		CHECK(index_commit(a, &err) == 0);
		index_unlock(a);
	}
	CHECK(index_stats(a)->compactions >= 1);
	CHECK(index_keyword_count(a) == INDEX_MAX_KEYWORDS);
	index_close(&a);
	index_close(&b);
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_keyword_count(a) == INDEX_MAX_KEYWORDS);
	CHECK_STR(index_keyword_name(a, 1), "$Junk");
	CHECK(strlen(index_keyword_name(a, 2)) == INDEX_KEYWORD_MAX);
	CHECK_STR(index_keyword_name(a, INDEX_MAX_KEYWORDS - 1), "k31");
	/* a new UIDVALIDITY keeps the names (Maildir file names carry the bits) */
	CHECK(index_lock(a, NULL, &err) == 0);
	index_reset(a, 77);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	index_close(&a);
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_hdr(a)->uidvalidity == 77 && index_count(a) == 0);
	CHECK(index_keyword_count(a) == INDEX_MAX_KEYWORDS);
	index_close(&a);
	close(dfd);
}

/* An index of format 1 (before keyword names) is not read: it is rebuilt under a new
 * UIDVALIDITY (the backend scans the folder again). */
static void test_old_format(void)
{
	int dfd = opendir_fd("oldformat");
	unsigned char b[8 + 8 + 4 + 4 + 8 + 32 + 8 + 8 + 4] = "PSTIDX1\n";
	le(b + 8, 7, 8);
	le(b + 16, 1234, 4);
	le(b + 20, 10, 4);
	le(b + 24, 5, 8);
	le(b + 64, 0, 8);
	le(b + 72, 0, 8);
	le(b + 80, crc32_of(b, 80), 4);
	char p[160];
	snprintf(p, sizeof(p), "%s/oldformat/idx", tmpdir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1 && write(fd, b, sizeof(b)) == (ssize_t)sizeof(b));
	close(fd);
	struct index *ix;
	const char *err;
	uint32_t u;
	CHECK(index_open(dfd, "idx", &ix, &err) == 0);
	CHECK(index_hdr(ix)->uidvalidity == 0 && index_count(ix) == 0);
	CHECK(index_lock(ix, NULL, &err) == 0);
	CHECK(index_hdr(ix)->uidvalidity != 0 && index_hdr(ix)->uidvalidity != 1234);
	CHECK(add(ix, "a", &u) == 0 && u == 1);
	CHECK(index_commit(ix, &err) == 0);
	index_unlock(ix);
	index_close(&ix);
	CHECK(index_open(dfd, "idx", &ix, &err) == 0);
	CHECK(index_count(ix) == 1);
	index_close(&ix);
	close(dfd);
}

/* The expunges remembered for QRESYNC: each with the MODSEQ it took, seen by another
 * process through the log, kept by a compaction and a reopen; bounded: past
 * INDEX_EXPUNGES_MAX the oldest are forgotten and the floor rises past them. */
static bool same_expunges(const struct index *x, const struct index *y)
{
	size_t nx, ny;
	uint64_t fx, fy;
	const struct index_expunge *ex = index_expunges(x, &nx, &fx);
	const struct index_expunge *ey = index_expunges(y, &ny, &fy);
	if (nx != ny || fx != fy)
		return false;
	for (size_t i = 0; i < nx; i++)
		if (ex[i].uid != ey[i].uid || ex[i].modseq != ey[i].modseq)
			return false;
	return true;
}

static void test_expunges(void)
{
	int dfd = opendir_fd("expunges");
	struct index *a, *b, *c;
	const char *err;
	char key[32];
	size_t n;
	uint64_t floor;

	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_open(dfd, "idx", &b, &err) == 0);
	CHECK(index_lock(a, NULL, &err) == 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "k%05d", i);
		CHECK(add(a, key, NULL) == 0);
	}
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	uint64_t m0 = index_hdr(a)->highestmodseq;
	CHECK(index_expunges(a, &n, &floor) != NULL || n == 0);
	CHECK(n == 0 && floor == 0);

	/* an update that leaves flags and keywords alone (an mbox rewrite moving a
	 * message) keeps the MODSEQ; a flag change takes the next one */
	CHECK(index_lock(a, NULL, &err) == 0);
	struct index_rec r = *index_find(a, 7, NULL);
	uint64_t r_modseq = r.modseq;
	r.off += 100;
	CHECK(index_update(a, &r, &err) == 0 && index_find(a, 7, NULL)->modseq == r_modseq &&
	      index_hdr(a)->highestmodseq == m0);
	r = *index_find(a, 7, NULL);
	r.flags |= INDEX_FLAG_SEEN;
	CHECK(index_update(a, &r, &err) == 0 && index_find(a, 7, NULL)->modseq == m0 + 1 &&
	      index_hdr(a)->highestmodseq == m0 + 1);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	m0++;

	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(index_expunge(a, 4, &err) == 0 && index_expunge(a, 2, &err) == 0);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	const struct index_expunge *e = index_expunges(a, &n, &floor);
	CHECK(n == 2 && floor == 0);
	CHECK(n == 2 && e[0].uid == 4 && e[0].modseq == m0 + 1 && e[1].uid == 2 &&
	      e[1].modseq == m0 + 2 && index_hdr(a)->highestmodseq == m0 + 2);
	CHECK(index_refresh(b, NULL, &err) == 0 && same_expunges(a, b));

	/* more than are remembered, in one transaction */
	uint64_t compactions = index_stats(a)->compactions;
	CHECK(index_lock(a, NULL, &err) == 0);
	for (uint32_t uid = 10; uid < 10 + INDEX_EXPUNGES_MAX + 52; uid++)
		CHECK(index_expunge(a, uid, &err) == 0);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	/* a transaction past the compaction size: the list goes into the snapshot */
	CHECK(index_lock(a, NULL, &err) == 0);
	char big[320];
	for (int i = 0; i < 1200; i++) {
		snprintf(big, sizeof(big), "%0300d", i);
		CHECK(add(a, big, NULL) == 0);
	}
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	CHECK(index_stats(a)->compactions > compactions);
	e = index_expunges(a, &n, &floor);
	CHECK(n == INDEX_EXPUNGES_MAX + 54 - INDEX_EXPUNGES_MAX / 4);
	CHECK(floor == m0 + 2 + INDEX_EXPUNGES_MAX / 4 - 2);
	bool ordered = n > 0 && e[0].modseq > floor &&
		       e[n - 1].modseq == index_hdr(a)->highestmodseq - 1200;
	for (size_t i = 1; i < n; i++)
		ordered = ordered && e[i].modseq > e[i - 1].modseq;
	CHECK(ordered);
	CHECK(index_refresh(b, NULL, &err) == 0 && same_expunges(a, b));
	CHECK(index_open(dfd, "idx", &c, &err) == 0 && same_expunges(a, c));
	index_close(&c);
	/* a reset (new UIDVALIDITY) forgets them: those UIDs mean nothing any more */
	CHECK(index_lock(a, NULL, &err) == 0);
	index_reset(a, 4242);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	CHECK(index_expunges(a, &n, &floor) == NULL || n == 0);
	CHECK(n == 0 && floor == 0);
	CHECK(index_refresh(b, NULL, &err) == 0 && same_expunges(a, b));
	index_close(&a);
	index_close(&b);
	close(dfd);
}

/* Format 2 (before the expunges remembered) is read, not rebuilt: same UIDVALIDITY and
 * records, its log applied (an expunge without a MODSEQ: forgotten, the floor is the
 * HIGHESTMODSEQ); the next commit writes format 3. */
static void test_format2(void)
{
	int dfd = opendir_fd("format2");
	unsigned char b[252] = "PSTIDX2\n";
	le(b + 8, 9, 8);                     /* generation */
	le(b + 16, 777, 4);                  /* uidvalidity */
	le(b + 20, 3, 4);                    /* uidnext */
	le(b + 24, 5, 8);                    /* highestmodseq */
	le(b + 64, 2, 8);                    /* two records */
	le(b + 72, 0, 4);                    /* no keyword names */
	le(b + 76, 4, 8);                    /* key area: "a\0b\0" */
	for (int i = 0; i < 2; i++) {
		unsigned char *r = b + 84 + 72 * i;
		le(r, (uint64_t)i + 1, 4);         /* uid */
		le(r + 12, 1, 4);                  /* key length */
		le(r + 16, (uint64_t)i + 3, 8);    /* modseq */
		le(r + 24, 100, 8);                /* size */
		le(r + 64, (uint64_t)i * 2, 8);    /* key offset */
	}
	memcpy(b + 228, "a\0b\0", 4);
	le(b + 232, 0, 8);                   /* no cache entries */
	le(b + 240, 0, 8);                   /* no cache data */
	le(b + 248, crc32_of(b, 248), 4);
	unsigned char l[16 + 8 + 54] = "PSTLOG2\n";
	le(l + 8, 9, 8);
	l[24] = 'X';
	le(l + 25, 1, 4);
	l[29] = 'H';
	le(l + 30, 777, 4);
	le(l + 34, 3, 4);
	le(l + 38, 6, 8);
	le(l + 16, 54, 4);
	le(l + 20, crc32_of(l + 24, 54), 4);
	char p[160];
	snprintf(p, sizeof(p), "%s/format2/idx", tmpdir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1 && write(fd, b, sizeof(b)) == (ssize_t)sizeof(b));
	close(fd);
	snprintf(p, sizeof(p), "%s/format2/idx.log", tmpdir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1 && write(fd, l, sizeof(l)) == (ssize_t)sizeof(l));
	close(fd);

	struct index *ix;
	const char *err;
	size_t n;
	uint64_t floor;
	CHECK(index_open(dfd, "idx", &ix, &err) == 0);
	CHECK(index_hdr(ix)->uidvalidity == 777 && index_hdr(ix)->highestmodseq == 6);
	CHECK(index_find(ix, 1, NULL) == NULL && index_find(ix, 2, NULL) != NULL);
	index_expunges(ix, &n, &floor);
	CHECK(n == 0 && floor == 6);
	CHECK(index_lock(ix, NULL, &err) == 0);
	CHECK(index_hdr(ix)->uidvalidity == 777);
	struct index_rec r = *index_find(ix, 2, NULL);
	r.flags = INDEX_FLAG_SEEN;
	CHECK(index_update(ix, &r, &err) == 0);
	CHECK(index_expunge(ix, 2, &err) == 0);
	CHECK(index_commit(ix, &err) == 0);
	index_unlock(ix);
	index_close(&ix);
	unsigned char magic[8] = { 0 };
	snprintf(p, sizeof(p), "%s/format2/idx", tmpdir);
	fd = open(p, O_RDONLY);
	CHECK(fd != -1 && read(fd, magic, 8) == 8 && memcmp(magic, "PSTIDX3\n", 8) == 0);
	close(fd);
	CHECK(index_open(dfd, "idx", &ix, &err) == 0);
	CHECK(index_hdr(ix)->uidvalidity == 777 && index_count(ix) == 0);
	const struct index_expunge *e = index_expunges(ix, &n, &floor);
	CHECK(n == 1 && floor == 6 && e[0].uid == 2 && e[0].modseq == 8);
	index_close(&ix);
	close(dfd);
}

/* Memory: a reopened index reads the snapshot in place; what it holds in the heap does not
 * depend on the number of records, before and after walking them all. */
static size_t heap_after_open(const char *sub, size_t n, size_t *walked_r)
{
	int dfd = opendir_fd(sub);
	struct index *ix;
	const char *err;
	char key[64];
	CHECK(index_open(dfd, "idx", &ix, &err) == 0);
	CHECK(index_lock(ix, NULL, &err) == 0);
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		snprintf(key, sizeof(key), "cur/%zu.M%zuP1.host,S=100:2,S", 1700000000 + i, i);
		CHECK(add(ix, key, &u) == 0);
		snprintf(key, sizeof(key), "(envelope %zu)", i);
		CHECK(index_cache_set(ix, u, INDEX_CACHE_ENVELOPE, key, strlen(key), &err) == 0);
	}
	CHECK(index_commit(ix, &err) == 0); /* the first commit writes a snapshot */
	index_unlock(ix);
	index_close(&ix);

	CHECK(index_open(dfd, "idx", &ix, &err) == 0);
	CHECK(index_count(ix) == n);
	CHECK(index_stats(ix)->maps == 1 && index_stats(ix)->mapped_bytes > 64 * n);
	size_t heap = (size_t)index_stats(ix)->heap_bytes;
	size_t ok = 0;
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *r = index_get(ix, i);
		snprintf(key, sizeof(key), "cur/%zu.M%zuP1.host,S=100:2,S", 1700000000 + i, i);
		ok += r != NULL && r->uid == i + 1 && strcmp(r->key, key) == 0 &&
			r->key_len == strlen(key) && r->size == 100;
		size_t clen;
		const char *c = index_cache_get(ix, (uint32_t)i + 1, INDEX_CACHE_ENVELOPE, &clen);
		snprintf(key, sizeof(key), "(envelope %zu)", i);
		ok -= c == NULL || clen != strlen(key) || memcmp(c, key, clen) != 0;
	}
	CHECK(ok == n);
	CHECK(index_stats(ix)->heap_bytes == heap); /* walking allocates nothing */
	*walked_r = ok;
	index_close(&ix);
	close(dfd);
	return heap;
}

static void test_memory(void)
{
	size_t w1, w2;
	size_t small = heap_after_open("mem1", 1000, &w1);
	size_t big = heap_after_open("mem2", 50000, &w2);
	CHECK(w1 == 1000 && w2 == 50000);
	CHECK(small == big);           /* nothing per record */
	CHECK(big < 16 * 1024);        /* the index object, its ring of buffers */

	/* root (the tests' user) does not map unless told: the snapshot goes to the heap */
	int dfd = opendir_fd("mem1");
	struct index *ix;
	const char *err;
	index_test_map_as_root = false;
	CHECK(index_open(dfd, "idx", &ix, &err) == 0);
	CHECK(index_stats(ix)->maps == 0 && index_stats(ix)->mapped_bytes == 0);
	CHECK(index_stats(ix)->heap_bytes > 64 * 1000 && index_count(ix) == 1000);
	index_close(&ix);
	index_test_map_as_root = true;
	close(dfd);
}

/* The overlay over the mapped snapshot against a plain model: random appends, updates
 * and expunges in random UID order, commits, compactions, reopens and a second process
 * following; positions, UIDs, keys and flags must agree at every check. */
struct model_rec {
	uint32_t uid, flags;
	char key[200]; /* long keys: the log passes INDEX_LOG_COMPACT, snapshots follow */
};

static int model_check(struct index *ix, const struct model_rec *m, size_t n)
{
	if (index_count(ix) != n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *r = index_get(ix, i);
		size_t pos;
		if (r == NULL || r->uid != m[i].uid || r->flags != m[i].flags ||
		    strcmp(r->key, m[i].key) != 0)
			return -1;
		r = index_find(ix, m[i].uid, &pos);
		if (r == NULL || pos != i || r->uid != m[i].uid)
			return -1;
		if (index_find(ix, m[i].uid + 1, &pos) != NULL &&
		    (i + 1 == n || m[i + 1].uid != m[i].uid + 1))
			return -1; /* an expunged or never used UID */
	}
	return 0;
}

static void test_overlay_model(void)
{
	int dfd = opendir_fd("model");
	struct index *a, *b;
	const char *err;
	static struct model_rec m[3000];
	size_t n = 0;
	unsigned seed = 12345;
	int bad = 0;
	uint64_t compactions = 0;

	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_open(dfd, "idx", &b, &err) == 0);
	for (int round = 0; round < 120; round++) {
		CHECK(index_lock(a, NULL, &err) == 0);
		int ops = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 60;
		for (int k = 0; k < ops; k++) {
			seed = seed * 1103515245u + 12345u;
			unsigned what = (seed >> 16) % 10;
			if (what < 4 && n < sizeof(m) / sizeof(m[0])) {
				uint32_t u;
				char key[200];
				memset(key, 'k', sizeof(key));
				snprintf(key, 16, "k%u", (seed >> 8) & 0xffff);
				key[strlen(key)] = '.';
				key[sizeof(key) - 1] = '\0';
				if (add(a, key, &u) == -1)
					bad++;
				m[n].uid = u;
				m[n].flags = 0;
				memcpy(m[n].key, key, sizeof(key));
				n++;
			} else if (what < 8 && n > 0) {
				size_t i = ((seed >> 4) & 0xffffff) % n;
				struct index_rec r = *index_find(a, m[i].uid, NULL);
				char key[200];
				memset(key, 'u', sizeof(key));
				snprintf(key, 16, "u%u", seed & 0xffff);
				key[strlen(key)] = '.';
				key[sizeof(key) - 1] = '\0';
				r.flags = (seed >> 20) & (INDEX_FLAG_MASK & ~INDEX_FLAG_RECENT);
				r.key = key;
				r.key_len = (uint32_t)strlen(key);
				if (index_update(a, &r, &err) == -1)
					bad++;
				m[i].flags = r.flags;
				memcpy(m[i].key, key, sizeof(key));
			} else if (n > 0) {
				size_t i = ((seed >> 4) & 0xffffff) % n;
				if (index_expunge(a, m[i].uid, &err) == -1)
					bad++;
				memmove(&m[i], &m[i + 1], (n - i - 1) * sizeof(m[0]));
				n--;
				index_sweep(a);
			}
		}
		CHECK(index_commit(a, &err) == 0);
		index_unlock(a);
		if (model_check(a, m, n) == -1)
			bad++;
		if (round % 7 == 0) {
			struct index_changes ch;
			CHECK(index_refresh(b, &ch, &err) == 0);
			index_changes_free(&ch);
			if (model_check(b, m, n) == -1)
				bad++;
		}
		if (round % 25 == 24) {
			compactions += index_stats(a)->compactions;
			index_close(&a);
			CHECK(index_open(dfd, "idx", &a, &err) == 0);
			if (model_check(a, m, n) == -1)
				bad++;
		}
	}
	CHECK(bad == 0);
	compactions += index_stats(a)->compactions;
	CHECK(compactions >= 2);
	index_close(&a);
	index_close(&b);
	close(dfd);
}

/* Another process compacts while we hold the old snapshot's mapping: what we read stays
 * valid until our refresh, which then maps the new snapshot.  A snapshot changed in place
 * under our mapping (only a process of the same user could) gives wrong records, never a
 * read out of bounds. */
static void test_mapping_replaced(void)
{
	int dfd = opendir_fd("remap");
	struct index *a, *b;
	const char *err;
	char key[480];
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_lock(a, NULL, &err) == 0);
	CHECK(add(a, "first", NULL) == 0 && add(a, "second", NULL) == 0);
	CHECK(index_commit(a, &err) == 0);
	index_unlock(a);
	index_close(&a);
	CHECK(index_open(dfd, "idx", &a, &err) == 0);
	CHECK(index_stats(a)->maps == 1);
	const char *k1 = index_get(a, 1)->key;
	CHECK_STR(k1, "second");

	CHECK(index_open(dfd, "idx", &b, &err) == 0);
	memset(key, 'k', sizeof(key));
	key[sizeof(key) - 1] = '\0';
	for (int i = 0; i < 3000 && index_stats(b)->compactions < 2; i++) {
		CHECK(index_lock(b, NULL, &err) == 0);
		CHECK(add(b, key, NULL) == 0);
		if (i == 0)
			CHECK(index_expunge(b, 1, &err) == 0);
		CHECK(index_commit(b, &err) == 0);
		index_unlock(b);
	}
	CHECK(index_stats(b)->compactions >= 2);
	/* a's snapshot was replaced twice: its mapping and records are still the old ones */
	CHECK_STR(k1, "second");
	CHECK(index_count(a) == 2 && strcmp(index_get(a, 0)->key, "first") == 0);
	struct index_changes ch;
	CHECK(index_refresh(a, &ch, &err) == 0);
	CHECK(ch.n_expunged == 1 && ch.expunged[0] == 1 && ch.n_added == index_count(b) - 1);
	index_changes_free(&ch);
	CHECK(index_count(a) == index_count(b) && index_stats(a)->maps == 2);
	CHECK(strcmp(index_get(a, 0)->key, "second") == 0);
	index_close(&b);

	/* bytes changed in place: a key offset past the key area, a key without its NUL */
	char p[160];
	snprintf(p, sizeof(p), "%s/remap/idx", tmpdir);
	int fd = open(p, O_RDWR);
	CHECK(fd != -1);
	unsigned char hdr[8];
	CHECK(pread(fd, hdr, 4, 72) == 4);       /* keyword count: 0 */
	size_t nexp;
	uint64_t floor;
	index_expunges(a, &nexp, &floor);
	/* header, keyword count, expunges remembered, key area length */
	size_t recs = 72 + 4 + 12 + 12 * nexp + 8;
	unsigned char junk[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f };
	CHECK(pwrite(fd, junk, 8, (off_t)(recs + 64)) == 8);            /* record 0 */
	CHECK(pwrite(fd, "\1\0\0\0\0\0\0\0", 8, (off_t)(recs + 72 + 64)) == 8); /* 1 */
	CHECK(pwrite(fd, "\xff\xff\xff\x7f", 4, (off_t)(recs + 2 * 72 + 12)) == 4); /* 2 */
	close(fd);
	const struct index_rec *r = index_get(a, 0);
	CHECK(r != NULL && r->key_len == 0 && r->key[0] == '\0');
	r = index_get(a, 1);
	CHECK(r != NULL && r->key_len == 0 && r->key[0] == '\0');
	r = index_get(a, 2);
	CHECK(r != NULL && r->key_len == 0 && r->key[0] == '\0');
	(void)hdr;
	index_close(&a);
	close(dfd);
}

/* Two processes at once: a writer appends, changes and expunges (compacting several
 * times, so the snapshot is replaced under the reader's mapping) while a reader refreshes
 * and checks its view each time: every record where its UID says, every key its own. */
static int reader_view_ok(struct index *ix)
{
	size_t n = index_count(ix);
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *r = index_get(ix, i);
		size_t pos;
		if (r == NULL || r->key[0] != 'k' || (uint32_t)atoi(r->key + 1) + 1 != r->uid ||
		    index_find(ix, r->uid, &pos) == NULL || pos != i ||
		    (i > 0 && index_get(ix, i - 1)->uid >= r->uid))
			return -1;
	}
	return 0;
}

static void test_concurrent_reader(void)
{
	int dfd = opendir_fd("concurrent");
	const char *err;
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct index *w;
		char key[400];
		close(pfd[0]);
		if (index_open(dfd, "idx", &w, &err) == -1)
			_exit(2);
		memset(key, 'x', sizeof(key));
		key[sizeof(key) - 1] = '\0';
		for (unsigned i = 0; i < 1500 && index_stats(w)->compactions < 3; i++) {
			uint32_t u;
			int l = snprintf(key, 16, "k%u", i);
			key[l] = '.'; /* long keys: compactions come sooner */
			if (index_lock(w, NULL, &err) == -1 || add(w, key, &u) == -1 || u != i + 1)
				_exit(3);
			if (i % 3 == 0 && i > 0 && index_find(w, i, NULL) != NULL) {
				struct index_rec r = *index_find(w, i, NULL);
				r.flags ^= INDEX_FLAG_SEEN;
				if (index_update(w, &r, &err) == -1)
					_exit(4);
			}
			if (i % 5 == 0 && i > 10 && index_expunge(w, i - 10, &err) == -1)
				_exit(5);
			if (index_commit(w, &err) == -1)
				_exit(6);
			index_unlock(w);
		}
		_exit(index_stats(w)->compactions >= 3 ? 0 : 7);
	}
	close(pfd[1]);
	struct index *r;
	int bad = 0, refreshes = 0, st;
	CHECK(index_open(dfd, "idx", &r, &err) == 0);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		struct index_changes ch;
		if (index_refresh(r, &ch, &err) == -1 || reader_view_ok(r) == -1)
			bad++;
		index_changes_free(&ch);
		refreshes++;
		usleep(2000);
	}
	close(pfd[0]);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(index_refresh(r, NULL, &err) == 0 && reader_view_ok(r) == 0);
	CHECK(bad == 0 && refreshes > 1);
	CHECK(index_stats(r)->maps >= 2); /* it followed replaced snapshots */
	struct index *again;
	CHECK(index_open(dfd, "idx", &again, &err) == 0);
	CHECK(index_count(again) == index_count(r));
	CHECK(index_hdr(again)->highestmodseq == index_hdr(r)->highestmodseq);
	index_close(&again);
	index_close(&r);
	close(dfd);
}

/* Hostile images: the parsers refuse them without reading out of bounds. */
static void test_parse(void)
{
	struct index *m = index_new_memory();
	size_t valid;
	unsigned char buf[256];

	memset(buf, 0, sizeof(buf));
	CHECK(index_parse_snapshot(m, buf, 0) == -1);
	CHECK(index_parse_snapshot(m, buf, sizeof(buf)) == -1);
	memcpy(buf, "PSTIDX1\n", 8);
	CHECK(index_parse_snapshot(m, buf, sizeof(buf)) == -1);
	CHECK(index_parse_log(m, buf, 0, &valid) == 0 && valid == 0);
	/* a length past the end */
	buf[0] = 0xff;
	buf[1] = 0xff;
	CHECK(index_parse_log(m, buf, 16, &valid) == 0 && valid == 0);
	CHECK(index_count(m) == 0);
	index_close(&m);

	/* memory index: the same API without files */
	const char *err;
	m = index_new_memory();
	CHECK(index_lock(m, NULL, &err) == 0);
	CHECK(add(m, "x", NULL) == 0);
	CHECK(index_commit(m, &err) == 0);
	index_unlock(m);
	CHECK(index_count(m) == 1);
	index_close(&m);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_index.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	index_test_map_as_root = true; /* the mapped snapshot, as a user's session has it */
	test_basic();
	test_compaction();
	test_crash();
	test_bad_files();
	test_cache();
	test_uids_used_up();
	test_keywords();
	test_old_format();
	test_expunges();
	test_format2();
	test_memory();
	test_overlay_model();
	test_mapping_replaced();
	test_concurrent_reader();
	test_parse();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return unit_done("index");
}
