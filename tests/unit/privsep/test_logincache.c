/* logincache.c: the record parser (hostile bytes), freshness, and the cache itself on a
 * real directory: a match needs the same service, user, password and shadow hash within
 * the ttl; files that are not private to root, links, and malformed entries are never
 * believed. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "privsep/logincache.h"
#include "base/plimits.h"
#include "unit.h"

static const char H1[] = "$y$j9T$abcdefghijklmnop$0123456789012345678901234567890123456789ABC";
static const char H2[] = "$y$j9T$abcdefghijklmnop$0123456789012345678901234567890123456789ABD";

static void test_parse(void)
{
	struct logincache_entry e = { .created = 1700000000 }, got;
	unsigned char buf[LOGINCACHE_RECORD + 8];

	for (int i = 0; i < LOGINCACHE_MAC; i++)
		e.mac[i] = (unsigned char)(i * 7 + 1);
	logincache_format(&e, buf);
	CHECK(logincache_parse(buf, LOGINCACHE_RECORD, &got) == 0);
	CHECK(got.created == e.created && memcmp(got.mac, e.mac, LOGINCACHE_MAC) == 0);
	/* every other length is no entry */
	for (size_t n = 0; n < sizeof(buf); n++)
		if (n != LOGINCACHE_RECORD)
			CHECK(logincache_parse(buf, n, &got) == -1);
	buf[0] = 'X';
	CHECK(logincache_parse(buf, LOGINCACHE_RECORD, &got) == -1);
	logincache_format(&e, buf);
	buf[11] = 0x80;             /* a time past INT64_MAX */
	CHECK(logincache_parse(buf, LOGINCACHE_RECORD, &got) == -1);
}

static void test_fresh(void)
{
	CHECK(!logincache_fresh(1000, 1000, 0));          /* ttl 0: off */
	CHECK(logincache_fresh(1000, 1000, 60));
	CHECK(logincache_fresh(1000, 1059, 60));
	CHECK(!logincache_fresh(1000, 1060, 60));         /* expired at the ttl */
	CHECK(logincache_fresh(1000 + LOGINCACHE_CLOCK_SKEW_S, 1000, 60));
	CHECK(!logincache_fresh(1001 + LOGINCACHE_CLOCK_SKEW_S, 1000, 60)); /* future */
	CHECK(!logincache_fresh(-1, 1000, 60));
}

/* The one entry file of dir (not "key"), or "" */
static void entry_path(const char *dir, char *out, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	out[0] = '\0';
	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strcmp(de->d_name, "key") != 0)
			snprintf(out, size, "%s/%s", dir, de->d_name);
	if (d != NULL)
		closedir(d);
}

static void test_cache_root(const char *state)
{
	struct logincache *lc = NULL, *lc2 = NULL;
	const char *err = NULL;
	char dir[256], keyp[300], ent[1024];
	struct stat st;
	const int64_t now = 1800000000;

	snprintf(dir, sizeof(dir), "%s/" LOGINCACHE_DIR, state);
	snprintf(keyp, sizeof(keyp), "%s/key", dir);
	CHECK(logincache_open(state, 0, &lc, &err) == -1 && lc == NULL); /* ttl 0 */
	CHECK(logincache_open(state, 300, &lc, &err) == 0 && lc != NULL);
	if (lc == NULL)
		return;
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700 && st.st_uid == 0);
	CHECK(stat(keyp, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_uid == 0 &&
	      st.st_size == LOGINCACHE_KEY);

	CHECK(!logincache_check(lc, "imap", "alice", "secret", H1, now));
	CHECK(logincache_store(lc, "imap", "alice", "secret", H1, now, &err) == 0);
	entry_path(dir, ent, sizeof(ent));
	CHECK(ent[0] != '\0' && strstr(ent, "alice") == NULL);
	CHECK(stat(ent, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_uid == 0 &&
	      st.st_size == LOGINCACHE_RECORD);
	CHECK(logincache_check(lc, "imap", "alice", "secret", H1, now));
	CHECK(logincache_check(lc, "imap", "alice", "secret", H1, now + 299));
	/* a wrong password, another hash (a password change, usermod -L), another user or
	 * service, an expired or future entry: no match */
	CHECK(!logincache_check(lc, "imap", "alice", "Secret", H1, now));
	CHECK(!logincache_check(lc, "imap", "alice", "secret\n", H1, now));
	CHECK(!logincache_check(lc, "imap", "alice", "", H1, now));
	CHECK(!logincache_check(lc, "imap", "alice", "secret", H2, now));
	CHECK(!logincache_check(lc, "imap", "alice", "secret", "!" "$y$j9T$x", now));
	CHECK(!logincache_check(lc, "imap", "bob", "secret", H1, now));
	CHECK(!logincache_check(lc, "pop3", "alice", "secret", H1, now));
	CHECK(!logincache_check(lc, "imap", "alice", "secret", H1, now + 300));
	CHECK(!logincache_check(lc, "imap", "alice", "secret", H1,
				now - LOGINCACHE_CLOCK_SKEW_S - 1));
	/* length-prefixed parts: moving bytes between user and password changes the MAC */
	CHECK(logincache_store(lc, "imap", "ab", "c", H1, now, &err) == 0);
	CHECK(!logincache_check(lc, "imap", "a", "bc", H1, now));

	/* another process (a second handle) reads the same key */
	CHECK(logincache_open(state, 300, &lc2, &err) == 0);
	if (lc2 != NULL) {
		CHECK(logincache_check(lc2, "imap", "alice", "secret", H1, now));
		logincache_close(&lc2);
		CHECK(lc2 == NULL);
	}

	/* a changed time (without the key) breaks the MAC */
	unsigned char buf[LOGINCACHE_RECORD];
	int fd = open(ent, O_RDWR);
	CHECK(fd != -1 && read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	buf[4] ^= 1;
	CHECK(pwrite(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
	CHECK(!logincache_check(lc, "imap", "alice", "secret", H1, now));
	buf[4] ^= 1;
	CHECK(pwrite(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
	CHECK(logincache_check(lc, "imap", "alice", "secret", H1, now));
	/* a longer file is no entry */
	CHECK(pwrite(fd, "x", 1, sizeof(buf)) == 1);
	CHECK(!logincache_check(lc, "imap", "alice", "secret", H1, now));
	CHECK(ftruncate(fd, sizeof(buf)) == 0);
	CHECK(logincache_check(lc, "imap", "alice", "secret", H1, now));
	/* readable by others: not believed */
	CHECK(fchmod(fd, 0644) == 0);
	CHECK(!logincache_check(lc, "imap", "alice", "secret", H1, now));
	CHECK(fchmod(fd, 0600) == 0);
	CHECK(fchown(fd, 1, 0) == 0);
	CHECK(!logincache_check(lc, "imap", "alice", "secret", H1, now));
	CHECK(fchown(fd, 0, 0) == 0);
	if (fd != -1)
		close(fd);
	/* a symbolic link in place of the entry (to a valid entry elsewhere): not followed */
	char moved[1200];
	snprintf(moved, sizeof(moved), "%s/moved", state);
	CHECK(rename(ent, moved) == 0 && symlink(moved, ent) == 0);
	CHECK(!logincache_check(lc, "imap", "alice", "secret", H1, now));
	CHECK(unlink(ent) == 0 && rename(moved, ent) == 0);
	CHECK(logincache_check(lc, "imap", "alice", "secret", H1, now));

	logincache_remove(lc, "imap", "alice");
	CHECK(access(ent, F_OK) == -1);
	CHECK(!logincache_check(lc, "imap", "alice", "secret", H1, now));
	logincache_close(&lc);

	/* a directory or key that is not private to root: the cache is not used */
	CHECK(chmod(dir, 0755) == 0);
	CHECK(logincache_open(state, 300, &lc, &err) == -1 && lc == NULL);
	CHECK(chmod(dir, 0700) == 0);
	CHECK(chmod(keyp, 0640) == 0);
	CHECK(logincache_open(state, 300, &lc, &err) == -1 && lc == NULL);
	CHECK(chmod(keyp, 0600) == 0);
	CHECK(truncate(keyp, 16) == 0);
	CHECK(logincache_open(state, 300, &lc, &err) == -1 && lc == NULL);
	/* a new key (the old one gone): old entries no longer match */
	CHECK(logincache_open(state, 300, &lc, &err) == -1);
	CHECK(unlink(keyp) == 0);
	CHECK(logincache_open(state, 300, &lc, &err) == 0);
	if (lc != NULL) {
		CHECK(!logincache_check(lc, "imap", "ab", "c", H1, now));
		logincache_close(&lc);
	}
	/* the directory a symbolic link: refused */
	char real[600];
	snprintf(real, sizeof(real), "%s/real", state);
	CHECK(rename(dir, real) == 0 && symlink(real, dir) == 0);
	CHECK(logincache_open(state, 300, &lc, &err) == -1 && lc == NULL);
}

int main(void)
{
	char state[] = "/tmp/test_logincache.XXXXXX";

	test_parse();
	test_fresh();
	if (mkdtemp(state) == NULL) {
		CHECK(0);
		return unit_done("test_logincache");
	}
	if (geteuid() == 0) {
		test_cache_root(state);
	} else {
		/* not root: a directory we own is not root's, so the cache refuses it */
		struct logincache *lc = NULL;
		const char *err = NULL;
		CHECK(logincache_open(state, 300, &lc, &err) == -1 && lc == NULL);
	}
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state);
	CHECK(system(cmd) == 0);
	return unit_done("test_logincache");
}
