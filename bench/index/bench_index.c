/* Index format benchmark (docs/architecture.md, "The index"): an own record format
 * (fixed-size records in a snapshot file + an append-only log with checksums) against
 * SQLite and LMDB, at N messages: open an unchanged folder and load its UID list,
 * append M messages one transaction each, and change the flags of M messages one
 * transaction each.  Every transaction is durable (fsync / synchronous=FULL / LMDB's
 * default sync).  Build and run: sh bench/index/run.sh */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <endian.h>

#define N 100000
#define M 1000

struct rec {
	uint32_t uid, flags;
	uint64_t modseq, size, date;
	char name[32];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *w) { perror(w); exit(1); }

static void mkrec(struct rec *r, uint32_t uid)
{
	memset(r, 0, sizeof(*r));
	r->uid = uid;
	r->modseq = uid;
	r->size = 1000 + uid % 5000;
	r->date = 1700000000 + uid;
	snprintf(r->name, sizeof(r->name), "%u.M%uP1.host", 1700000000 + uid, uid);
}

/* ---- own format ---- */
static void own(const char *dir)
{
	char snap[256], logp[256];
	snprintf(snap, sizeof(snap), "%s/own.snap", dir);
	snprintf(logp, sizeof(logp), "%s/own.log", dir);
	int fd = open(snap, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct rec *all = calloc(N, sizeof(*all));
	for (uint32_t i = 0; i < N; i++)
		mkrec(&all[i], i + 1);
	if (write(fd, all, N * sizeof(*all)) != (ssize_t)(N * sizeof(*all))) die("write");
	fsync(fd);
	close(fd);
	free(all);
	int lfd = open(logp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
	close(lfd);

	double t = now();
	for (int k = 0; k < 10; k++) {
		fd = open(snap, O_RDONLY);
		struct stat st;
		fstat(fd, &st);
		const struct rec *r = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		uint32_t *uids = malloc(N * 4);
		size_t n = st.st_size / sizeof(*r);
		for (size_t i = 0; i < n; i++)
			uids[i] = r[i].uid;
		lfd = open(logp, O_RDONLY);
		fstat(lfd, &st);
		close(lfd);
		munmap((void *)r, n * sizeof(*r));
		free(uids);
		close(fd);
	}
	printf("own     open-unchanged+uids %8.2f ms\n", (now() - t) * 100);

	lfd = open(logp, O_RDWR | O_APPEND);
	t = now();
	for (uint32_t i = 0; i < M; i++) {
		struct rec r;
		mkrec(&r, N + 1 + i);
		if (write(lfd, &r, sizeof(r)) != sizeof(r)) die("write");
		fdatasync(lfd);
	}
	printf("own     append x%d          %8.2f ms\n", M, (now() - t) * 1000);
	t = now();
	for (uint32_t i = 0; i < M; i++) {
		struct { uint32_t type, uid, flags, pad; uint64_t modseq; } f = { 2, (i * 7919) % N + 1, 1, 0, N + M + i };
		if (write(lfd, &f, sizeof(f)) != sizeof(f)) die("write");
		fdatasync(lfd);
	}
	printf("own     flag-update x%d     %8.2f ms\n", M, (now() - t) * 1000);
	close(lfd);
}

/* ---- SQLite ---- */
static void sq(const char *dir)
{
	char path[256];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/idx.sqlite", dir);
	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK) die("sqlite3_open");
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		     "CREATE TABLE m(uid INTEGER PRIMARY KEY, flags INT, modseq INT, size INT, date INT, name TEXT);"
		     "BEGIN", 0, 0, 0);
	sqlite3_stmt *ins;
	sqlite3_prepare_v2(db, "INSERT INTO m VALUES(?,?,?,?,?,?)", -1, &ins, 0);
	for (uint32_t i = 0; i < N; i++) {
		struct rec r;
		mkrec(&r, i + 1);
		sqlite3_bind_int64(ins, 1, r.uid); sqlite3_bind_int64(ins, 2, r.flags);
		sqlite3_bind_int64(ins, 3, r.modseq); sqlite3_bind_int64(ins, 4, r.size);
		sqlite3_bind_int64(ins, 5, r.date); sqlite3_bind_text(ins, 6, r.name, -1, SQLITE_STATIC);
		sqlite3_step(ins); sqlite3_reset(ins);
	}
	sqlite3_exec(db, "COMMIT", 0, 0, 0);
	sqlite3_finalize(ins);
	sqlite3_close(db);

	double t = now();
	for (int k = 0; k < 10; k++) {
		sqlite3_open(path, &db);
		sqlite3_stmt *s;
		sqlite3_prepare_v2(db, "SELECT uid FROM m ORDER BY uid", -1, &s, 0);
		uint32_t *uids = malloc(N * 4);
		size_t n = 0;
		while (sqlite3_step(s) == SQLITE_ROW && n < N)
			uids[n++] = (uint32_t)sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
		free(uids);
		sqlite3_close(db);
	}
	printf("sqlite  open-unchanged+uids %8.2f ms\n", (now() - t) * 100);
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA synchronous=FULL", 0, 0, 0);
	sqlite3_prepare_v2(db, "INSERT INTO m VALUES(?,?,?,?,?,?)", -1, &ins, 0);
	t = now();
	for (uint32_t i = 0; i < M; i++) {
		struct rec r;
		mkrec(&r, N + 1 + i);
		sqlite3_bind_int64(ins, 1, r.uid); sqlite3_bind_int64(ins, 2, r.flags);
		sqlite3_bind_int64(ins, 3, r.modseq); sqlite3_bind_int64(ins, 4, r.size);
		sqlite3_bind_int64(ins, 5, r.date); sqlite3_bind_text(ins, 6, r.name, -1, SQLITE_STATIC);
		sqlite3_step(ins); sqlite3_reset(ins);
	}
	printf("sqlite  append x%d          %8.2f ms\n", M, (now() - t) * 1000);
	sqlite3_finalize(ins);
	sqlite3_stmt *up;
	sqlite3_prepare_v2(db, "UPDATE m SET flags=?, modseq=? WHERE uid=?", -1, &up, 0);
	t = now();
	for (uint32_t i = 0; i < M; i++) {
		sqlite3_bind_int64(up, 1, 1); sqlite3_bind_int64(up, 2, N + M + i);
		sqlite3_bind_int64(up, 3, (i * 7919) % N + 1);
		sqlite3_step(up); sqlite3_reset(up);
	}
	printf("sqlite  flag-update x%d     %8.2f ms\n", M, (now() - t) * 1000);
	sqlite3_finalize(up);
	sqlite3_close(db);
}

/* ---- LMDB ---- */
static void lm(const char *dir)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/lmdb", dir);
	mkdir(path, 0700);
	MDB_env *env; MDB_dbi dbi; MDB_txn *txn;
	mdb_env_create(&env);
	mdb_env_set_mapsize(env, 1ull << 30);
	if (mdb_env_open(env, path, 0, 0600) != 0) die("mdb_env_open");
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	for (uint32_t i = 0; i < N; i++) {
		struct rec r;
		mkrec(&r, i + 1);
		uint32_t be = htobe32(r.uid);
		MDB_val k = { 4, &be }, v = { sizeof(r), &r };
		mdb_put(txn, dbi, &k, &v, MDB_APPEND);
	}
	mdb_txn_commit(txn);
	mdb_env_close(env);

	double t = now();
	for (int k = 0; k < 10; k++) {
		mdb_env_create(&env);
		mdb_env_set_mapsize(env, 1ull << 30);
		mdb_env_open(env, path, 0, 0600);
		mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
		mdb_dbi_open(txn, NULL, 0, &dbi);
		MDB_cursor *c; MDB_val kk, vv;
		mdb_cursor_open(txn, dbi, &c);
		uint32_t *uids = malloc(N * 4);
		size_t n = 0;
		while (mdb_cursor_get(c, &kk, &vv, MDB_NEXT) == 0 && n < N)
			{ uint32_t be; memcpy(&be, kk.mv_data, 4); uids[n++] = be32toh(be); }
		mdb_cursor_close(c);
		mdb_txn_abort(txn);
		free(uids);
		mdb_env_close(env);
	}
	printf("lmdb    open-unchanged+uids %8.2f ms\n", (now() - t) * 100);
	mdb_env_create(&env);
	mdb_env_set_mapsize(env, 1ull << 30);
	mdb_env_open(env, path, 0, 0600);
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	mdb_txn_commit(txn);
	t = now();
	for (uint32_t i = 0; i < M; i++) {
		struct rec r;
		mkrec(&r, N + 1 + i);
		mdb_txn_begin(env, NULL, 0, &txn);
		uint32_t be = htobe32(r.uid);
		MDB_val k = { 4, &be }, v = { sizeof(r), &r };
		mdb_put(txn, dbi, &k, &v, 0);
		mdb_txn_commit(txn);
	}
	printf("lmdb    append x%d          %8.2f ms\n", M, (now() - t) * 1000);
	t = now();
	for (uint32_t i = 0; i < M; i++) {
		uint32_t uid = htobe32((i * 7919) % N + 1);
		mdb_txn_begin(env, NULL, 0, &txn);
		MDB_val k = { 4, &uid }, v;
		if (mdb_get(txn, dbi, &k, &v) == 0) {
			struct rec r;
			memcpy(&r, v.mv_data, sizeof(r));
			r.flags = 1; r.modseq = N + M + i;
			v.mv_data = &r; v.mv_size = sizeof(r);
			mdb_put(txn, dbi, &k, &v, 0);
		}
		mdb_txn_commit(txn);
	}
	printf("lmdb    flag-update x%d     %8.2f ms\n", M, (now() - t) * 1000);
	mdb_env_close(env);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *dir = argc > 1 ? argv[1] : ".";
	printf("N=%d messages, M=%d transactions, dir=%s\n", N, M, dir);
	own(dir);
	sq(dir);
	lm(dir);
	return 0;
}
