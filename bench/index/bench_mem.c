/* Memory of postern's own index (common/index/) at N messages: a fresh process opens an
 * unchanged folder's index and walks every record (UID, key, size), as a session does.
 * Reports, after the open and after the walk: peak RSS (VmHWM), anonymous and file-backed
 * RSS, heap in use (mallinfo2).  Build and run: sh bench/index/run.sh (it builds this
 * against the tree's libindex.a).  Usage: bench_mem DIR N (creates DIR/idx if missing,
 * then runs itself again to measure). */
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "index/index.h"

static long status_kb(const char *field)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, strlen(field)) == 0)
			v = strtol(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	return v;
}

static void report(const char *when, size_t n)
{
	struct mallinfo2 mi = mallinfo2();
	printf("N=%-8zu %-6s VmHWM %7ld kB  RssAnon %7ld kB  RssFile %7ld kB  heap %9zu B\n",
	       n, when, status_kb("VmHWM:"), status_kb("RssAnon:"), status_kb("RssFile:"),
	       mi.uordblks + mi.hblkhd);
}

static int build(int dfd, size_t n)
{
	struct index *ix;
	const char *err;
	char key[80];
	if (index_open(dfd, "idx", &ix, &err) == -1 || index_lock(ix, NULL, &err) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		/* a Maildir key as the backend stores it */
		snprintf(key, sizeof(key), "cur/%zu.M%zuP%zu.mail.example.org,S=%zu:2,S",
			 1700000000 + i, i, 1000 + i % 30000, 1000 + i % 5000);
		struct index_rec r = { .key = key, .key_len = (uint32_t)strlen(key),
				       .size = 1000 + i % 5000, .raw = 980 + i % 5000,
				       .date = (int64_t)(1700000000 + i), .flags = INDEX_FLAG_SEEN };
		if (index_append(ix, &r, &err) == -1)
			return -1;
	}
	if (index_commit(ix, &err) == -1)
		return -1;
	index_unlock(ix);
	index_close(&ix);
	return 0;
}

static int measure(int dfd, size_t n)
{
	struct index *ix;
	const char *err;
#ifdef INDEX_REC_SLOTS
	index_test_map_as_root = true; /* as a user's session: this may run as root */
#endif
	report("start", n);
	if (index_open(dfd, "idx", &ix, &err) == -1) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	report("open", n);
	uint64_t sum = 0;
	for (size_t i = 0; i < index_count(ix); i++) {
		const struct index_rec *r = index_get(ix, i);
		sum += r->uid + r->size + strlen(r->key);
	}
	report("walk", n);
	if (index_count(ix) != n || sum == 0)
		return 1;
	index_close(&ix);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	size_t n = strtoul(argv[2], NULL, 10);
	mkdir(argv[1], 0700);
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dfd == -1)
		return 2;
	if (argc > 3)
		return measure(dfd, n);
	struct stat st;
	if (fstatat(dfd, "idx", &st, 0) == -1 && build(dfd, n) == -1) {
		fprintf(stderr, "build failed\n");
		return 1;
	}
	/* measure in a fresh process: nothing of the build in its peak */
	execl("/proc/self/exe", argv[0], argv[1], argv[2], "measure", (char *)NULL);
	return 2;
}
