/* spool.c: the accept path (commit, abort, size limit), a full disk three ways (an
 * injected ENOSPC at every step, RLIMIT_FSIZE, a real small tmpfs when root), a crash at
 * every numbered step of commit, update and remove (a child _exit()s there) followed by
 * recovery, concurrent lockers and runners (each message delivered once), listing and
 * the due iteration, files a hostile spool user could plant for root, cleanup, and the
 * exactly-once local delivery protocol with delivery tokens after a crash. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "base/plimits.h"
#include "base/util.h"
#include "spool/spool.h"
#include "unit.h"

static char root[256];      /* the test's temporary directory */
static char spool_path[300];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static void rm_rf(const char *p)
{
	(void)nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh spool at root/name. */
static struct spool *fresh(const char *name)
{
	struct spool *sp;
	const char *err;

	snprintf(spool_path, sizeof(spool_path), "%s/%s", root, name);
	rm_rf(spool_path);
	if (mkdir(spool_path, 0700) == -1)
		return NULL;
	if (spool_open(spool_path, geteuid(), SPOOL_OPEN_CREATE, &sp, &err) == -1) {
		fprintf(stderr, "spool_open: %s\n", err);
		return NULL;
	}
	return sp;
}

/* Entries of spool_path/sub (not . and ..). */
static int count_dir(const char *sub)
{
	char p[400];
	int n = 0;
	struct dirent *de;

	snprintf(p, sizeof(p), "%s/%s", spool_path, sub);
	DIR *d = opendir(p);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static struct envelope *make_env(int nrcpt)
{
	struct envelope *e = envelope_new();
	const char *err;
	char a[64];

	(void)envelope_set_sender(e, "ned@example.org", &err);
	(void)envelope_set_text(e, "auth", "ned", &err);
	(void)envelope_set_text(e, "client-addr", "192.0.2.7", &err);
	for (int i = 0; i < nrcpt; i++) {
		snprintf(a, sizeof(a), "user%d@example.%s", i, i % 2 ? "net" : "org");
		(void)envelope_add_rcpt(e, a, i % 2 ? ENVELOPE_REMOTE : ENVELOPE_LOCAL, 0, NULL,
					&err);
	}
	return e;
}

/* The message bytes of test message number k, len bytes. */
static void fill(char *buf, size_t len, unsigned k)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (i % 77 == 76) ? '\n' : (char)('a' + (i * 7 + k) % 26);
}

/* Accept one message of len bytes written in chunks of chunk: its id, or "" */
static int accept_msg(struct spool *sp, size_t len, size_t chunk, int nrcpt, char *id_r,
		      struct spool_msg **msg_r)
{
	struct spool_new *n;
	const char *err;
	char *buf = malloc(len + 1);
	int r;

	fill(buf, len, (unsigned)len);
	if ((r = spool_new_begin(sp, 0, &n, &err)) != SPOOL_OK) {
		free(buf);
		return r;
	}
	strcpy(id_r, spool_new_id(n));
	for (size_t i = 0; i < len; i += chunk) {
		size_t k = len - i < chunk ? len - i : chunk;
		if ((r = spool_new_write(n, buf + i, k, &err)) != SPOOL_OK) {
			spool_new_abort(&n);
			free(buf);
			return r;
		}
	}
	struct envelope *e = make_env(nrcpt);
	r = spool_new_commit(&n, e, msg_r, &err);
	envelope_free(&e);
	free(buf);
	return r;
}

/* Whether queue/id holds exactly test message len (data and a matching envelope). */
static bool complete(struct spool *sp, const char *id, size_t len, int nrcpt)
{
	struct spool_msg *m;
	const char *err;
	char *want = malloc(len + 1), *got = malloc(len + 1);
	bool ok = false;

	fill(want, len, (unsigned)len);
	if (spool_msg_open(sp, id, 0, &m, &err) == SPOOL_OK) {
		const struct envelope *e = spool_msg_env(m);
		ok = e->size == len && (int)e->rcpt_count == nrcpt &&
			strcmp(e->sender, "ned@example.org") == 0 &&
			pread(spool_msg_data_fd(m), got, len + 1, 0) == (ssize_t)len &&
			memcmp(got, want, len) == 0;
		spool_msg_close(&m);
	} else {
		fprintf(stderr, "complete %s: %s\n", id, err);
	}
	free(want);
	free(got);
	return ok;
}

static void test_open(void)
{
	struct spool *sp;
	const char *err;

	CHECK((sp = fresh("open")) != NULL);
	spool_close(&sp);
	CHECK(sp == NULL);
	/* another owner, group access, not a directory: refused */
	CHECK(spool_open(spool_path, geteuid() + 1, 0, &sp, &err) == -1 && sp == NULL);
	CHECK(chmod(spool_path, 0750) == 0);
	CHECK(spool_open(spool_path, geteuid(), 0, &sp, &err) == -1);
	CHECK(chmod(spool_path, 0700) == 0);
	char p[400];
	snprintf(p, sizeof(p), "%s/queue", spool_path);
	CHECK(chmod(p, 0755) == 0);
	CHECK(spool_open(spool_path, geteuid(), 0, &sp, &err) == -1);
	CHECK(chmod(p, 0700) == 0);
	CHECK(spool_open(spool_path, geteuid(), 0, &sp, &err) == 0);
	spool_close(&sp);
	snprintf(p, sizeof(p), "%s/nosuch", root);
	CHECK(spool_open(p, geteuid(), SPOOL_OPEN_CREATE, &sp, &err) == -1);
}

/* A child that waits for a byte on a pipe and then runs spool_msg_open() with timeout;
 * its exit status is the result's negation.  It closes every descriptor it inherited
 * and opens the spool again: a forked copy of a locked descriptor shares its lock. */
struct waiter { pid_t pid; int go; };

static struct waiter waiter_start(const char *id, unsigned timeout)
{
	struct waiter w = { -1, -1 };
	int fds[2];

	if (pipe(fds) == -1)
		return w;
	w.pid = fork();
	if (w.pid == 0) {
		struct spool *sp;
		struct spool_msg *o;
		const char *err;
		char c;
		if (dup2(fds[0], 3) == -1 || close_range(4, ~0U, 0) == -1 ||
		    spool_open(spool_path, geteuid(), 0, &sp, &err) == -1)
			_exit(98);
		if (read(3, &c, 1) != 1)
			_exit(99);
		int r = spool_msg_open(sp, id, timeout, &o, &err);
		spool_msg_close(&o);
		_exit(-r);
	}
	close(fds[0]);
	w.go = fds[1];
	return w;
}

/* Let it try; wait for its result (a SPOOL_* value). */
static int waiter_result(struct waiter *w, bool release_first, struct spool_msg **held)
{
	int st;

	if (write(w->go, "x", 1) != 1)
		return 99;
	if (release_first) {
		util_sleep_ms(50);   /* it is (most likely) waiting now; either way it must get it */
		spool_msg_close(held);
	}
	close(w->go);
	if (waitpid(w->pid, &st, 0) != w->pid || !WIFEXITED(st))
		return 99;
	return -WEXITSTATUS(st);
}

static void test_accept(void)
{
	struct spool *sp = fresh("accept");
	struct spool_new *n;
	struct spool_msg *m;
	const char *err;
	char ids[5][SPOOL_ID_LEN + 1];

	if (sp == NULL)
		return;
	/* various sizes and chunkings, one byte to over the write buffer */
	size_t sizes[5] = { 0, 1, 1000, SPOOL_WRITE_BUF, 3 * SPOOL_WRITE_BUF + 17 };
	size_t chunks[5] = { 1, 1, 7, SPOOL_WRITE_BUF, 4096 };
	for (int i = 0; i < 5; i++) {
		CHECK(accept_msg(sp, sizes[i], chunks[i], 1 + i, ids[i], NULL) == SPOOL_OK);
		CHECK(envelope_id_valid(ids[i], strlen(ids[i])));
		CHECK(complete(sp, ids[i], sizes[i], 1 + i));
		if (i > 0)
			CHECK(strcmp(ids[i - 1], ids[i]) < 0);   /* sorted by arrival */
	}
	CHECK(count_dir("queue") == 5 && count_dir("tmp") == 0);

	/* abort removes everything */
	CHECK(spool_new_begin(sp, 0, &n, &err) == SPOOL_OK);
	CHECK(count_dir("tmp") == 1);
	CHECK(spool_new_write(n, "abc", 3, &err) == SPOOL_OK && spool_new_size(n) == 3);
	spool_new_abort(&n);
	CHECK(n == NULL && count_dir("tmp") == 0 && count_dir("queue") == 5);

	/* the size limit: at the limit fine, one more byte refused, nothing left */
	CHECK(spool_new_begin(sp, 10, &n, &err) == SPOOL_OK);
	CHECK(spool_new_write(n, "0123456789", 10, &err) == SPOOL_OK);
	CHECK(spool_new_write(n, "x", 1, &err) == SPOOL_TOOBIG);
	CHECK(spool_new_write(n, "", 0, &err) == SPOOL_TOOBIG);   /* sticky */
	struct envelope *e = make_env(1);
	CHECK(spool_new_commit(&n, e, NULL, &err) == SPOOL_TOOBIG && n == NULL);
	CHECK(count_dir("tmp") == 0 && count_dir("queue") == 5);

	/* an envelope without recipients is refused at commit, nothing left */
	struct envelope *none = make_env(0);
	CHECK(spool_new_begin(sp, 0, &n, &err) == SPOOL_OK);
	CHECK(spool_new_commit(&n, none, NULL, &err) == SPOOL_ERROR);
	CHECK(count_dir("tmp") == 0 && count_dir("queue") == 5);
	envelope_free(&none);

	/* commit with msg_r: the message comes back locked */
	char id[SPOOL_ID_LEN + 1];
	CHECK(accept_msg(sp, 100, 100, 2, id, &m) == SPOOL_OK && m != NULL);
	if (m != NULL) {
		CHECK(strcmp(spool_msg_id(m), id) == 0);
		CHECK(spool_msg_env(m)->size == 100);
		struct waiter w = waiter_start(id, 0);
		CHECK(waiter_result(&w, false, NULL) == SPOOL_LOCKED);
		spool_msg_close(&m);
		w = waiter_start(id, 0);
		CHECK(waiter_result(&w, false, NULL) == SPOOL_OK);
	}
	CHECK(complete(sp, id, 100, 2));
	/* not a queue id, not queued */
	CHECK(spool_msg_open(sp, "../../etc", 0, &m, &err) == SPOOL_ERROR);
	CHECK(spool_msg_open(sp, "0000000000AB", 0, &m, &err) == SPOOL_GONE);
	envelope_free(&e);
	spool_close(&sp);
}

/* ---- a full disk ---- */

static int inject_point, inject_errno, inject_calls, inject_at;

static int injector(int point)
{
	if (point == inject_point && ++inject_calls >= inject_at)
		return inject_errno;
	return 0;
}

static void test_full_injected(void)
{
	struct spool *sp = fresh("full");
	char id[SPOOL_ID_LEN + 1];

	if (sp == NULL)
		return;
	for (int p = SPOOL_HOOK_BEGIN_DIR; p <= SPOOL_HOOK_COMMIT_DONE; p++) {
		inject_point = p;
		inject_errno = ENOSPC;
		inject_calls = 0;
		inject_at = p == SPOOL_HOOK_WRITE ? 2 : 1;   /* a write in the middle */
		spool_test_hook = injector;
		int r = accept_msg(sp, 3 * SPOOL_WRITE_BUF, 1000, 2, id, NULL);
		spool_test_hook = NULL;
		CHECK(r == SPOOL_FULL);
		if (r != SPOOL_FULL)
			fprintf(stderr, "full at point %d: %d\n", p, r);
		CHECK(count_dir("queue") == 0 && count_dir("tmp") == 0);
	}
	/* another errno is an error, not "full" */
	inject_point = SPOOL_HOOK_COMMIT_RENAME;
	inject_errno = EIO;
	inject_calls = 0;
	inject_at = 1;
	spool_test_hook = injector;
	CHECK(accept_msg(sp, 10, 10, 1, id, NULL) == SPOOL_ERROR);
	spool_test_hook = NULL;
	CHECK(count_dir("queue") == 0 && count_dir("tmp") == 0);
	/* and after all that the spool still takes mail */
	CHECK(accept_msg(sp, 10, 10, 1, id, NULL) == SPOOL_OK && complete(sp, id, 10, 1));
	spool_close(&sp);
}

/* RLIMIT_FSIZE: write(2) fails with EFBIG, as on a full disk; in a child. */
static void test_full_fsize(void)
{
	struct spool *sp = fresh("fsize");
	char id[SPOOL_ID_LEN + 1];

	if (sp == NULL)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit rl = { 100000, 100000 };
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
			_exit(9);
		int r = accept_msg(sp, 300000, 4096, 1, id, NULL);
		_exit(r == SPOOL_FULL ? 0 : 1);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(count_dir("queue") == 0 && count_dir("tmp") == 0);
	spool_close(&sp);
}

/* A real full file system: a 256 KiB tmpfs in a mount namespace of a child (root only). */
static void test_full_tmpfs(void)
{
	if (geteuid() != 0) {
		printf("test_spool: not root, tmpfs full-disk test skipped\n");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		char mnt[300], id[SPOOL_ID_LEN + 1];
		struct spool *sp;
		const char *err;
		snprintf(mnt, sizeof(mnt), "%s/tmpfs", root);
		if (mkdir(mnt, 0700) == -1 || unshare(CLONE_NEWNS) == -1 ||
		    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
		    mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700") == -1)
			_exit(10);   /* no mount namespace here: skipped */
		snprintf(spool_path, sizeof(spool_path), "%s", mnt);
		if (spool_open(mnt, 0, SPOOL_OPEN_CREATE, &sp, &err) == -1)
			_exit(2);
		int r = accept_msg(sp, 512 * 1024, 8192, 1, id, NULL);
		if (r != SPOOL_FULL || count_dir("queue") != 0 || count_dir("tmp") != 0)
			_exit(3);
		/* the space came back: a small message goes in */
		if (accept_msg(sp, 1000, 100, 1, id, NULL) != SPOOL_OK || !complete(sp, id, 1000, 1))
			_exit(4);
		/* fill it to the last block with messages: each is whole or absent */
		int ok = 0;
		for (int i = 0; i < 200; i++) {
			r = accept_msg(sp, 20000, 4096, 1, id, NULL);
			if (r == SPOOL_OK)
				ok++;
			else if (r != SPOOL_FULL)
				_exit(5);
		}
		if (count_dir("queue") != ok + 1 || count_dir("tmp") != 0)
			_exit(6);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 10)
		printf("test_spool: no mount namespace, tmpfs full-disk test skipped\n");
	else
		CHECK(WEXITSTATUS(st) == 0);
	if (WEXITSTATUS(st) != 0)
		fprintf(stderr, "tmpfs child: %d\n", WEXITSTATUS(st));
}

/* ---- crashes ---- */

static int crash_point, crash_calls, crash_at;

static int crasher(int point)
{
	if (point == crash_point && ++crash_calls >= crash_at)
		_exit(77);
	return 0;
}

/* Run fn in a child that dies at point; true if it died there. */
static bool crash_child(int point, int at, void (*fn)(struct spool *, void *), struct spool *sp,
			void *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		crash_point = point;
		crash_calls = 0;
		crash_at = at;
		spool_test_hook = crasher;
		fn(sp, arg);
		_exit(0);
	}
	int st;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 77;
}

static void do_accept(struct spool *sp, void *arg)
{
	(void)accept_msg(sp, 3 * SPOOL_WRITE_BUF + 5, 5000, 3, arg, NULL);
}

static void test_crash_commit(void)
{
	struct spool *sp = fresh("crash");
	const char *err;

	if (sp == NULL)
		return;
	for (int p = SPOOL_HOOK_BEGIN_DIR; p <= SPOOL_HOOK_COMMIT_DONE; p++) {
		char id[SPOOL_ID_LEN + 1] = "";
		struct spool_cleanup_stats cs;
		CHECK(crash_child(p, p == SPOOL_HOOK_WRITE ? 3 : 1, do_accept, sp, id));
		int q = count_dir("queue");
		/* up to the rename nothing is queued; after it the whole message */
		if (p <= SPOOL_HOOK_COMMIT_RENAME) {
			CHECK(q == 0);
			CHECK(count_dir("tmp") == 1);
		} else {
			CHECK(q == 1);
			CHECK(count_dir("tmp") == 0);
			struct spool_iter *it;
			const char *qid;
			const struct envelope *e;
			CHECK(spool_iter_begin(sp, 0, time(NULL), &it, &err) == SPOOL_OK);
			CHECK(spool_iter_next(it, &qid, &e, &err) == 1 && e != NULL);
			CHECK(complete(sp, qid, 3 * SPOOL_WRITE_BUF + 5, 3));
			spool_iter_end(&it);
		}
		/* a later run cleans tmp/ (its writer is dead: nothing holds the lock) */
		CHECK(spool_cleanup(sp, time(NULL) + 10, 5, &cs, &err) == SPOOL_OK);
		CHECK(cs.removed == (p <= SPOOL_HOOK_COMMIT_RENAME ? 1u : 0u) && cs.locked == 0);
		CHECK(count_dir("tmp") == 0);
		/* start the next round with an empty queue */
		rm_rf(spool_path);
		spool_close(&sp);
		if ((sp = fresh("crash")) == NULL)
			return;
	}
	spool_close(&sp);
}

/* Update: rcpt 0 delivered, rcpt 1 deferred, rcpt 2 failed. */
static void do_update(struct spool *sp, void *arg)
{
	struct spool_msg *m;
	const char *err;

	if (spool_msg_open(sp, arg, 1000, &m, &err) != SPOOL_OK)
		_exit(5);
	struct envelope *e = spool_msg_env(m);
	envelope_rcpt_delivered(&e->rcpts[0], "250 ok", NULL);
	envelope_rcpt_defer(&e->rcpts[1], time(NULL) + 600, "451 later", "mx.example.net");
	envelope_rcpt_fail(&e->rcpts[2], "550 no", NULL);
	(void)spool_msg_update(m, &err);
	spool_msg_close(&m);
}

static void do_remove(struct spool *sp, void *arg)
{
	struct spool_msg *m;
	const char *err;

	if (spool_msg_open(sp, arg, 1000, &m, &err) != SPOOL_OK)
		_exit(5);
	struct envelope *e = spool_msg_env(m);
	for (size_t i = 0; i < e->rcpt_count; i++)
		envelope_rcpt_delivered(&e->rcpts[i], NULL, NULL);
	(void)spool_msg_remove(&m, &err);
}

static void test_crash_update(void)
{
	struct spool *sp = fresh("crashupd");
	char id[SPOOL_ID_LEN + 1];
	const char *err;
	struct spool_msg *m;

	if (sp == NULL || accept_msg(sp, 500, 500, 3, id, NULL) != SPOOL_OK)
		return;
	for (int p = SPOOL_HOOK_UPDATE_WRITE; p <= SPOOL_HOOK_UPDATE_DIR_SYNC; p++) {
		CHECK(crash_child(p, 1, do_update, sp, id));
		/* the old envelope or the new one, never a torn one, every recipient there */
		CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_OK);
		if (m == NULL)
			continue;
		const struct envelope *e = spool_msg_env(m);
		CHECK(e->rcpt_count == 3);
		bool old = e->rcpts[0].state == ENVELOPE_PENDING &&
			e->rcpts[1].state == ENVELOPE_PENDING && e->rcpts[2].state == ENVELOPE_PENDING;
		bool new = e->rcpts[0].state == ENVELOPE_DELIVERED &&
			e->rcpts[1].state == ENVELOPE_DEFERRED && e->rcpts[2].state == ENVELOPE_FAILED;
		CHECK(p <= SPOOL_HOOK_UPDATE_RENAME ? old : new);
		/* put it back to the old state for the next round (also clears env.new) */
		for (size_t i = 0; i < 3; i++) {
			struct envelope_rcpt *r = &spool_msg_env(m)->rcpts[i];
			r->state = ENVELOPE_PENDING;
			r->next_try = 0;
		}
		CHECK(spool_msg_update(m, &err) == SPOOL_OK);
		spool_msg_close(&m);
		CHECK(count_dir("queue/") == 1);
	}
	char p2[400];
	snprintf(p2, sizeof(p2), "queue/%s", id);
	CHECK(count_dir(p2) == 2);   /* data and env: no env.new left */

	/* remove: before the rename it is still queued (all done: due, removed next run);
	 * after it, gone from the queue and tmp/ID.del left for cleanup */
	for (int p = SPOOL_HOOK_REMOVE_RENAME; p <= SPOOL_HOOK_REMOVE_DELETE; p++) {
		struct spool_cleanup_stats cs;
		if (p > SPOOL_HOOK_REMOVE_RENAME &&
		    accept_msg(sp, 500, 500, 3, id, NULL) != SPOOL_OK)
			return;
		CHECK(crash_child(p, 1, do_remove, sp, id));
		if (p == SPOOL_HOOK_REMOVE_RENAME) {
			/* still queued, as last written (remove writes no envelope) */
			CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_OK);
			if (m != NULL) {
				struct envelope *e = spool_msg_env(m);
				CHECK(!envelope_done(e) && e->rcpt_count == 3);
				for (size_t i = 0; i < e->rcpt_count; i++)
					envelope_rcpt_delivered(&e->rcpts[i], NULL, NULL);
				/* local delivery's removal (no queue/ fsync): gone the same */
				CHECK(spool_msg_remove_unsynced(&m, &err) == SPOOL_OK);
				CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_GONE);
			}
		} else {
			CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_GONE);
			CHECK(count_dir("tmp") == 1);
			CHECK(spool_cleanup(sp, time(NULL), SPOOL_TMP_STALE_S, &cs, &err) == SPOOL_OK);
			CHECK(cs.removed == 1);   /* .del: any age */
		}
		CHECK(count_dir("queue") == 0 && count_dir("tmp") == 0);
	}
	spool_close(&sp);
}

/* kill -9 at an arbitrary moment, many times: a child accepts messages (and updates and
 * removes some) in a loop and is killed after a few milliseconds; every message in the
 * queue is then whole, and cleanup leaves tmp/ empty. */
static void accept_loop(struct spool *sp, void *arg)
{
	char id[SPOOL_ID_LEN + 1];
	struct spool_msg *m;
	const char *err;

	(void)arg;
	for (unsigned i = 0;; i++) {
		if (accept_msg(sp, 100000, 8192, 2, id, &m) != SPOOL_OK)
			_exit(1);
		struct envelope *e = spool_msg_env(m);
		envelope_rcpt_delivered(&e->rcpts[0], "250 ok", NULL);
		if (i % 2 == 0) {
			envelope_rcpt_delivered(&e->rcpts[1], "250 ok", NULL);
			(void)spool_msg_remove(&m, &err);
		} else {
			(void)spool_msg_update(m, &err);
			spool_msg_close(&m);
		}
	}
}

static void test_kill9(void)
{
	struct spool *sp = fresh("kill9");
	struct spool_iter *it;
	struct spool_cleanup_stats cs;
	const char *err, *qid;
	const struct envelope *e;
	uint32_t x = 12345;

	if (sp == NULL)
		return;
	for (int round = 0; round < 30; round++) {
		pid_t pid = fork();
		if (pid == 0)
			accept_loop(sp, NULL);
		x = x * 1103515245u + 12345u;
		util_sleep_ms(1 + (x >> 16) % 25);
		kill(pid, SIGKILL);
		int st;
		CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st));
	}
	int n = 0, bad = 0;
	CHECK(spool_iter_begin(sp, 0, time(NULL), &it, &err) == SPOOL_OK);
	while (spool_iter_next(it, &qid, &e, &err) == 1) {
		n++;
		if (e == NULL || !complete(sp, qid, 100000, 2) ||
		    (e->rcpts[0].state != ENVELOPE_PENDING && e->rcpts[0].state !=
		     ENVELOPE_DELIVERED) || e->rcpts[1].state != ENVELOPE_PENDING)
			bad++;
	}
	spool_iter_end(&it);
	CHECK(bad == 0);
	CHECK(n == count_dir("queue"));
	CHECK(spool_cleanup(sp, time(NULL) + 10, 5, &cs, &err) == SPOOL_OK);
	CHECK(cs.locked == 0 && cs.foreign == 0 && count_dir("tmp") == 0);
	printf("test_spool: kill -9 30 times: %d messages queued, all whole; %u leftovers "
	       "cleaned\n", n, cs.removed);
	spool_close(&sp);
}

/* ---- concurrency ---- */

static void test_locking(void)
{
	struct spool *sp = fresh("lock");
	char id[SPOOL_ID_LEN + 1];
	struct spool_msg *m;
	const char *err;

	if (sp == NULL || accept_msg(sp, 200, 200, 1, id, NULL) != SPOOL_OK)
		return;
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_OK);
	struct waiter a = waiter_start(id, 0), b = waiter_start(id, 100);
	struct waiter c = waiter_start(id, 60000), d = waiter_start(id, 60000);
	struct waiter e = waiter_start(id, 0);
	/* held: another process gets SPOOL_LOCKED at once, and after a bounded wait */
	CHECK(waiter_result(&a, false, NULL) == SPOOL_LOCKED);
	CHECK(waiter_result(&b, false, NULL) == SPOOL_LOCKED);
	/* a waiter gets it when the holder lets go */
	CHECK(waiter_result(&c, true, &m) == SPOOL_OK && m == NULL);
	/* nobody holds it: at once */
	CHECK(waiter_result(&e, false, NULL) == SPOOL_OK);
	/* a waiter whose message is removed meanwhile gets SPOOL_GONE */
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_OK);
	if (m != NULL) {
		int st;
		CHECK(write(d.go, "x", 1) == 1);
		util_sleep_ms(50);
		envelope_rcpt_delivered(&spool_msg_env(m)->rcpts[0], NULL, NULL);
		CHECK(spool_msg_remove(&m, &err) == SPOOL_OK && m == NULL);
		close(d.go);
		CHECK(waitpid(d.pid, &st, 0) == d.pid && WIFEXITED(st) &&
		      -WEXITSTATUS(st) == SPOOL_GONE);
	}
	/* removing with recipients left is refused (and unlocks) */
	CHECK(accept_msg(sp, 10, 10, 1, id, NULL) == SPOOL_OK);
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_OK);
	CHECK(spool_msg_remove(&m, &err) == SPOOL_ERROR && m == NULL);
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_OK);
	spool_msg_close(&m);
	spool_close(&sp);
}

/* Four runners over one queue of 40 messages at once: each message is delivered by
 * exactly one of them (its "delivery" appends the id to a shared log). */
static void test_runners(void)
{
	struct spool *sp = fresh("runners");
	char id[SPOOL_ID_LEN + 1], logp[400];
	const char *err;
	enum { NMSG = 40, NRUN = 4 };

	if (sp == NULL)
		return;
	for (int i = 0; i < NMSG; i++)
		if (accept_msg(sp, 100 + (size_t)i, 50, 1, id, NULL) != SPOOL_OK)
			return;
	snprintf(logp, sizeof(logp), "%s/deliveries", root);
	int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	pid_t pids[NRUN];
	for (int r = 0; r < NRUN; r++) {
		if ((pids[r] = fork()) != 0)
			continue;
		struct spool_iter *it;
		const char *qid;
		const struct envelope *e;
		for (int pass = 0; pass < 3; pass++) {
			if (spool_iter_begin(sp, SPOOL_ITER_DUE, time(NULL), &it, &err) != SPOOL_OK)
				_exit(1);
			while (spool_iter_next(it, &qid, &e, &err) == 1) {
				struct spool_msg *m;
				size_t idx = 0;
				if (spool_msg_open(sp, qid, 0, &m, &err) != SPOOL_OK)
					continue;   /* locked by another runner, or gone */
				if (spool_msg_attempt(m, &idx, 1, time(NULL), &err) != SPOOL_OK)
					_exit(2);
				char line[SPOOL_ID_LEN + 2];
				snprintf(line, sizeof(line), "%s\n", qid);
				if (write(logfd, line, SPOOL_ID_LEN + 1) != SPOOL_ID_LEN + 1)
					_exit(3);
				envelope_rcpt_delivered(&spool_msg_env(m)->rcpts[0], "250 ok", NULL);
				if (spool_msg_remove(&m, &err) != SPOOL_OK)
					_exit(4);
			}
			spool_iter_end(&it);
		}
		_exit(0);
	}
	for (int r = 0; r < NRUN; r++) {
		int st;
		CHECK(waitpid(pids[r], &st, 0) == pids[r] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	close(logfd);
	/* every message once: NMSG distinct lines */
	FILE *f = fopen(logp, "r");
	char lines[NMSG + 8][SPOOL_ID_LEN + 2];
	int n = 0;
	while (f != NULL && n < NMSG + 8 && fgets(lines[n], sizeof(lines[n]), f) != NULL)
		n++;
	if (f != NULL)
		fclose(f);
	CHECK(n == NMSG);
	int dups = 0;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (strcmp(lines[i], lines[j]) == 0)
				dups++;
	CHECK(dups == 0);
	CHECK(count_dir("queue") == 0 && count_dir("tmp") == 0);
	spool_close(&sp);
}

/* ---- listing ---- */

static void test_listing(void)
{
	struct spool *sp = fresh("list");
	char a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1], c[SPOOL_ID_LEN + 1];
	char d[SPOOL_ID_LEN + 1], p[400];
	struct spool_msg *m;
	struct spool_iter *it;
	const char *err, *qid;
	const struct envelope *e;
	int64_t now = time(NULL);

	if (sp == NULL)
		return;
	CHECK(accept_msg(sp, 10, 10, 2, a, NULL) == SPOOL_OK);   /* pending: due */
	CHECK(accept_msg(sp, 20, 10, 1, b, &m) == SPOOL_OK);     /* deferred an hour */
	if (m != NULL) {
		envelope_rcpt_defer(&spool_msg_env(m)->rcpts[0], now + 3600, "451 4.2.0 busy", NULL);
		CHECK(spool_msg_update(m, &err) == SPOOL_OK);
		spool_msg_close(&m);
	}
	CHECK(accept_msg(sp, 30, 10, 1, c, &m) == SPOOL_OK);     /* deferred, due */
	if (m != NULL) {
		envelope_rcpt_defer(&spool_msg_env(m)->rcpts[0], now - 10, "451 4.2.0 busy", NULL);
		CHECK(spool_msg_update(m, &err) == SPOOL_OK);
		spool_msg_close(&m);
	}
	CHECK(accept_msg(sp, 40, 10, 1, d, NULL) == SPOOL_OK);   /* its envelope broken */
	snprintf(p, sizeof(p), "%s/queue/%s/env", spool_path, d);
	FILE *f = fopen(p, "a");
	if (f != NULL) {
		fputs("colour blue\n", f);
		fclose(f);
	}
	/* a stray name in queue/ is neither listed nor touched */
	snprintf(p, sizeof(p), "%s/queue/README", spool_path);
	f = fopen(p, "w");
	if (f != NULL)
		fclose(f);

	/* everything, oldest first */
	CHECK(spool_iter_begin(sp, 0, now, &it, &err) == SPOOL_OK);
	CHECK(spool_iter_next(it, &qid, &e, &err) == 1 && strcmp(qid, a) == 0 && e != NULL);
	if (e != NULL) {
		CHECK(e->size == 10 && e->rcpt_count == 2 && e->arrival > 0);
		CHECK_STR(e->sender, "ned@example.org");
		CHECK_STR(e->rcpts[1].addr, "user1@example.net");
		CHECK(e->rcpts[1].state == ENVELOPE_PENDING && e->rcpts[1].kind == ENVELOPE_REMOTE);
	}
	CHECK(spool_iter_next(it, &qid, &e, &err) == 1 && strcmp(qid, b) == 0 && e != NULL);
	if (e != NULL)
		CHECK_STR(e->rcpts[0].reply, "451 4.2.0 busy");
	CHECK(spool_iter_next(it, &qid, &e, &err) == 1 && strcmp(qid, c) == 0);
	CHECK(spool_iter_next(it, &qid, &e, &err) == 1 && strcmp(qid, d) == 0 && e == NULL);
	CHECK(err != NULL && strstr(err, "bad envelope") != NULL &&
	      strstr(err, "data after end") != NULL);
	CHECK(spool_iter_next(it, &qid, &e, &err) == 0);
	CHECK(!spool_iter_truncated(it));
	spool_iter_end(&it);
	CHECK(it == NULL);

	/* due now: a, c and the broken one (to be reported), not b.  "Now" is read again:
	 * the files were written after the first reading, maybe in a later second. */
	CHECK(spool_iter_begin(sp, SPOOL_ITER_DUE, time(NULL), &it, &err) == SPOOL_OK);
	CHECK(spool_iter_next(it, &qid, &e, &err) == 1 && strcmp(qid, a) == 0);
	CHECK(spool_iter_next(it, &qid, &e, &err) == 1 && strcmp(qid, c) == 0);
	CHECK(spool_iter_next(it, &qid, &e, &err) == 1 && strcmp(qid, d) == 0 && e == NULL);
	CHECK(spool_iter_next(it, &qid, &e, &err) == 0);
	spool_iter_end(&it);
	/* b's envelope mtime is its next try: skipped without reading it */
	struct stat st;
	snprintf(p, sizeof(p), "%s/queue/%s/env", spool_path, b);
	CHECK(stat(p, &st) == 0 && st.st_mtime == now + 3600);
	/* two hours on, b is due as well */
	CHECK(spool_iter_begin(sp, SPOOL_ITER_DUE, now + 7200, &it, &err) == SPOOL_OK);
	int n = 0;
	while (spool_iter_next(it, &qid, &e, &err) == 1)
		n++;
	CHECK(n == 4);
	spool_iter_end(&it);
	/* the broken message is never deleted: it is still there */
	CHECK(spool_msg_open(sp, d, 0, &m, &err) == SPOOL_ERROR);
	CHECK(count_dir("queue") == 5);
	spool_close(&sp);
}

/* ---- what a hostile spool user could plant for root ---- */

static void test_hostile(void)
{
	struct spool *sp = fresh("hostile");
	char id[SPOOL_ID_LEN + 1], p[400], q[400], other[300];
	struct spool_msg *m;
	const char *err;

	if (sp == NULL || accept_msg(sp, 10, 10, 1, id, NULL) != SPOOL_OK)
		return;
	snprintf(p, sizeof(p), "%s/queue/%s/env", spool_path, id);
	snprintf(q, sizeof(q), "%s/queue/%s/env.keep", spool_path, id);
	CHECK(rename(p, q) == 0);
	/* a symbolic link instead of the envelope */
	CHECK(symlink("/etc/passwd", p) == 0);
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_ERROR);
	unlink(p);
	/* a FIFO: refused, and the open does not hang */
	CHECK(mkfifo(p, 0600) == 0);
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_ERROR);
	unlink(p);
	/* a second hard link */
	snprintf(other, sizeof(other), "%s/hostile-link", root);
	CHECK(link(q, p) == 0 && link(q, other) == 0);
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_ERROR);
	CHECK(err != NULL && strstr(err, "link") != NULL);
	unlink(other);
	unlink(p);
	CHECK(rename(q, p) == 0);
	if (geteuid() == 0) {
		/* a file of someone else's */
		CHECK(chown(p, 1, 1) == 0);
		CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_ERROR);
		CHECK(chown(p, 0, 0) == 0);
	}
	/* an envelope of another message's id */
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_OK);
	spool_msg_close(&m);
	char id2[SPOOL_ID_LEN + 1];
	CHECK(accept_msg(sp, 10, 10, 1, id2, NULL) == SPOOL_OK);
	snprintf(q, sizeof(q), "%s/queue/%s/env", spool_path, id2);
	CHECK(rename(q, p) == 0);
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_ERROR);
	CHECK(err != NULL && strstr(err, "id") != NULL);
	/* a message directory that is a symbolic link to another */
	snprintf(p, sizeof(p), "%s/queue/%s", spool_path, id);
	rm_rf(p);
	snprintf(q, sizeof(q), "%s/queue/%s", spool_path, id2);
	CHECK(symlink(q, p) == 0);
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_ERROR);
	/* a data file whose size is not the envelope's */
	CHECK(accept_msg(sp, 10, 10, 1, id, NULL) == SPOOL_OK);
	snprintf(p, sizeof(p), "%s/queue/%s/data", spool_path, id);
	FILE *f = fopen(p, "a");
	if (f != NULL) {
		fputs("more", f);
		fclose(f);
	}
	CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_ERROR);
	spool_close(&sp);
}

/* ---- cleanup ---- */

static void test_cleanup(void)
{
	struct spool *sp = fresh("cleanup");
	struct spool_new *n;
	struct spool_cleanup_stats cs;
	const char *err;
	char p[400];

	if (sp == NULL)
		return;
	/* a message being received (locked by us): kept at any age */
	CHECK(spool_new_begin(sp, 0, &n, &err) == SPOOL_OK);
	CHECK(spool_cleanup(sp, time(NULL) + 100000, 0, &cs, &err) == SPOOL_OK);
	CHECK(cs.locked == 1 && cs.removed == 0 && count_dir("tmp") == 1);
	/* its writer crashed (the lock is gone with it): young kept, old removed */
	pid_t pid = fork();
	if (pid == 0) {
		struct spool_new *c;
		_exit(spool_new_begin(sp, 0, &c, &err) == SPOOL_OK ? 0 : 1);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(count_dir("tmp") == 2);
	CHECK(spool_cleanup(sp, time(NULL), SPOOL_TMP_STALE_S, &cs, &err) == SPOOL_OK);
	CHECK(cs.locked == 1 && cs.young == 1 && cs.removed == 0);
	CHECK(spool_cleanup(sp, time(NULL) + SPOOL_TMP_STALE_S + 10, SPOOL_TMP_STALE_S, &cs,
			    &err) == SPOOL_OK);
	CHECK(cs.locked == 1 && cs.removed == 1 && count_dir("tmp") == 1);
	/* names that are not ours are left alone */
	snprintf(p, sizeof(p), "%s/tmp/notes.txt", spool_path);
	FILE *f = fopen(p, "w");
	if (f != NULL)
		fclose(f);
	snprintf(p, sizeof(p), "%s/tmp/0000000000AB", spool_path);
	f = fopen(p, "w");    /* a file where a directory should be */
	if (f != NULL)
		fclose(f);
	CHECK(spool_cleanup(sp, time(NULL) + 100000, 0, &cs, &err) == SPOOL_OK);
	CHECK(cs.foreign == 2 && cs.locked == 1 && count_dir("tmp") == 3);
	spool_new_abort(&n);
	CHECK(count_dir("tmp") == 2);
	spool_close(&sp);
}

/* ---- exactly-once local delivery with tokens ---- */

/* A stand-in for a mailbox: a directory of message files.  deliver() writes the
 * message with the token field at the top, fsync'd, as the local delivery must. */
static char mbox_dir[300];

static void deliver(const struct envelope *e, size_t idx)
{
	char tok[ENVELOPE_TOKEN_LEN + 1], p[400], text[256];
	static unsigned seq;

	if (envelope_token(e, idx, tok, sizeof(tok)) == -1)
		_exit(20);
	snprintf(p, sizeof(p), "%s/%d.%u.%zu", mbox_dir, (int)getpid(), seq++, idx);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	int n = snprintf(text, sizeof(text), "%s: %s\nDelivered-To: %s\n\nbody\n",
			 ENVELOPE_TOKEN_FIELD, tok, e->rcpts[idx].addr);
	if (fd == -1 || write(fd, text, (size_t)n) != n || fsync(fd) == -1)
		_exit(21);
	close(fd);
}

/* Copies in the mailbox that carry recipient idx's token. */
static int copies(const struct envelope *e, size_t idx)
{
	char tok[ENVELOPE_TOKEN_LEN + 1], p[600], buf[4096];
	struct dirent *de;
	int n = 0;

	if (envelope_token(e, idx, tok, sizeof(tok)) == -1)
		return -1;
	DIR *d = opendir(mbox_dir);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", mbox_dir, de->d_name);
		int fd = open(p, O_RDONLY);
		ssize_t k = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
		if (fd >= 0)
			close(fd);
		if (k > 0 && envelope_token_find(buf, (size_t)k, tok))
			n++;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

/* One delivery run as the local delivery code must do it (envelope.h, architecture.md):
 * an inflight recipient is looked for first; then attempt, deliver, record. */
static int run_delivery(struct spool *sp, const char *id)
{
	struct spool_msg *m;
	const char *err;
	size_t todo[SPOOL_MAX_RCPTS], n = 0;

	if (spool_msg_open(sp, id, 1000, &m, &err) != SPOOL_OK)
		return -1;
	struct envelope *e = spool_msg_env(m);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		struct envelope_rcpt *r = &e->rcpts[i];
		if (envelope_rcpt_done(r) || r->kind != ENVELOPE_LOCAL)
			continue;
		if (r->inflight != 0 && copies(e, i) > 0) {
			envelope_rcpt_delivered(r, "found after a crash", NULL);
			continue;
		}
		todo[n++] = i;
	}
	if (n > 0 && spool_msg_attempt(m, todo, n, time(NULL), &err) != SPOOL_OK)
		return -1;
	for (size_t k = 0; k < n; k++) {
		deliver(e, todo[k]);
		if (spool_test_hook != NULL)
			(void)spool_test_hook(1000 + (int)k);   /* a crash after the k-th delivery */
		envelope_rcpt_delivered(&e->rcpts[todo[k]], "250 2.0.0 delivered", NULL);
	}
	int r = spool_msg_update(m, &err);
	spool_msg_close(&m);
	return r;
}

static void do_delivery(struct spool *sp, void *arg)
{
	(void)run_delivery(sp, arg);
}

static void test_exactly_once(void)
{
	struct spool *sp = fresh("once");
	char id[SPOOL_ID_LEN + 1];
	struct spool_msg *m;
	const char *err;
	/* crash points: inside attempt's update, after delivering 1 and 2 of 3, before the
	 * final update's rename, after it */
	const struct { int point, at; } pts[] = {
		{ SPOOL_HOOK_UPDATE_SYNC, 1 }, { 1000, 1 }, { 1001, 1 },
		{ SPOOL_HOOK_UPDATE_RENAME, 2 }, { SPOOL_HOOK_UPDATE_DIR_SYNC, 2 },
	};

	if (sp == NULL)
		return;
	snprintf(mbox_dir, sizeof(mbox_dir), "%s/mailbox", root);
	for (size_t t = 0; t < sizeof(pts) / sizeof(pts[0]); t++) {
		rm_rf(mbox_dir);
		CHECK(mkdir(mbox_dir, 0700) == 0);
		/* 5 recipients: 0, 2, 4 local */
		if (accept_msg(sp, 300, 300, 5, id, NULL) != SPOOL_OK)
			return;
		CHECK(crash_child(pts[t].point, pts[t].at, do_delivery, sp, id));
		CHECK(run_delivery(sp, id) == SPOOL_OK);
		CHECK(spool_msg_open(sp, id, 0, &m, &err) == SPOOL_OK);
		if (m == NULL)
			continue;
		const struct envelope *e = spool_msg_env(m);
		for (size_t i = 0; i < e->rcpt_count; i++) {
			if (e->rcpts[i].kind != ENVELOPE_LOCAL)
				continue;
			CHECK(copies(e, i) == 1);   /* never lost, never twice */
			CHECK(e->rcpts[i].state == ENVELOPE_DELIVERED && e->rcpts[i].inflight == 0);
			if (copies(e, i) != 1)
				fprintf(stderr, "crash point %d: rcpt %zu has %d copies\n",
					pts[t].point, i, copies(e, i));
		}
		spool_msg_close(&m);
	}
	spool_close(&sp);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	signal(SIGPIPE, SIG_IGN);
	snprintf(root, sizeof(root), "%s/test_spool.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	umask(077);
	test_open();
	test_accept();
	test_full_injected();
	test_full_fsize();
	test_full_tmpfs();
	test_crash_commit();
	test_crash_update();
	test_kill9();
	test_locking();
	test_runners();
	test_listing();
	test_hostile();
	test_cleanup();
	test_exactly_once();
	rm_rf(root);
	return unit_done("test_spool");
}
