/* libFuzzer: Maildir file names (base, ",S=", ",W=", ":2," flags) and the UIDL made from
 * the base.  When byte 0 is '#', the rest is instead a "postern-sizes" cache file, read
 * by maildir_open() on a small Maildir whose true sizes are known: a hostile cache may
 * only be believed for a file of the same raw size and mtime, and never crash us. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "storage/maildir.h"
#include "base/util.h"

static char dir[64];

static void cleanup(void)
{
	char cmd[96];
	if (dir[0] != '\0' && snprintf(cmd, sizeof(cmd), "rm -rf %s", dir) < (int)sizeof(cmd))
		(void)!system(cmd);
}

static void setup(void)
{
	char p[128];
	snprintf(dir, sizeof(dir), "/tmp/fuzz_maildir.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(p, sizeof(p), "%s/cur", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/cur/100.a:2,S", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, "a\nb\n", 4) != 4)
		abort();
	close(fd);
	/* an old mtime a fuzzer can guess: 1 */
	struct timespec ts[2] = { { 1, 0 }, { 1, 0 } };
	utimensat(AT_FDCWD, p, ts, 0);
	atexit(cleanup);
}

static void fuzz_cache(const uint8_t *data, size_t size)
{
	char p[128];
	if (dir[0] == '\0')
		setup();
	snprintf(p, sizeof(p), "%s/postern-sizes", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || util_write_all(fd, data, size) == -1)
		abort();
	close(fd);
	struct maildir *md;
	const char *err;
	if (maildir_open(dir, NULL, &md, &err) == -1)
		abort();
	if (maildir_count(md) != 1)
		abort();
	uint64_t s = maildir_msg(md, 0)->size;
	if (s < 4 || s > 8) /* a cached size must be within [raw, 2*raw] */
		abort();
	maildir_close(&md);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == '#') {
		fuzz_cache(data + 1, size - 1);
		return 0;
	}
	const char *name = (const char *)data;
	struct maildir_name mn;
	if (maildir_parse_name(name, size, &mn) == -1)
		return 0;
	if (mn.base_len == 0 || mn.base_len > size || name[0] == '.' ||
	    memchr(name, '/', size) != NULL || memchr(name, ':', mn.base_len) != NULL)
		abort();
	if (mn.has_info) {
		if (mn.flags < name + mn.base_len + 3 || mn.flags + mn.flags_len != name + size)
			abort();
	}
	char uid[POP3_UIDL_MAX + 1];
	maildir_uid(name, mn.base_len, uid);
	size_t ul = strlen(uid);
	if (ul < 1 || ul > POP3_UIDL_MAX)
		abort();
	for (size_t i = 0; i < ul; i++)
		if ((unsigned char)uid[i] < 0x21 || (unsigned char)uid[i] > 0x7e)
			abort();
	return 0;
}
