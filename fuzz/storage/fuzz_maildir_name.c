/* libFuzzer: Maildir file names (base, ",S=", ",W=", ":2," flags) and the UIDL made from
 * the base.  When byte 0 is '#', the rest is instead the folder's index file
 * ("postern-index"), opened through the storage API on a small Maildir: whatever it
 * says, the folder has its one message, readable, and nothing crashes. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "storage/maildir.h"
#include "storage/storage.h"
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

static void fuzz_index(const uint8_t *data, size_t size)
{
	char p[128], loc[96];
	if (dir[0] == '\0')
		setup();
	static const char *const junk[] = { "postern-index.log", "postern-index.log.tmp",
					    "postern-index.tmp" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, junk[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/postern-index", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || util_write_all(fd, data, size) == -1)
		abort();
	close(fd);
	struct mail_storage *st;
	struct mailbox *box;
	const char *err;
	snprintf(loc, sizeof(loc), "maildir:%s", dir);
	if (storage_locate(loc, "fuzz", "/", &st, &err) == -1 ||
	    mailbox_open(st, "INBOX", &box, &err) == -1)
		abort();
	if (mailbox_count(box) != 1)
		abort();
	struct mail_reader *r;
	char buf[16];
	if (mailbox_msg_open(box, mailbox_get(box, 0)->uid, &r, &err) == -1 ||
	    mail_reader_read(r, buf, sizeof(buf), &err) != 4)
		abort();
	mail_reader_close(&r);
	mailbox_close(&box);
	storage_free(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == '#') {
		fuzz_index(data + 1, size - 1);
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
