/* libFuzzer: the folder-name mapping (storage.h).  Byte 0 picks the backend (bit 0:
 * Maildir++) and the direction (bit 1: the rest is a disk name, as a hostile directory
 * entry could be; else a client's UTF-8 name).  Whatever maps must map back to the same
 * bytes, and a disk name that is accepted must be the canonical disk form of its name
 * (so two directories never show as one folder); nothing crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4 * STORAGE_NAME_MAX)
		return 0;
	bool maildir = (data[0] & 1) != 0, from_disk = (data[0] & 2) != 0;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	char name[STORAGE_NAME_MAX + 1], disk[STORAGE_NAME_MAX * 2 + 2];
	const char *err;
	if (from_disk) {
		if (storage_name_from_disk(maildir, in, len, name, sizeof(name), &err) == -1)
			return 0;
		if (storage_name_to_disk(maildir, name, disk, sizeof(disk), &err) == -1 ||
		    strlen(disk) != len || memcmp(disk, in, len) != 0)
			abort();
		return 0;
	}
	char *z = malloc(len + 1);
	if (z == NULL)
		return 0;
	memcpy(z, in, len);
	z[len] = '\0';
	if (strlen(z) == len &&
	    storage_name_to_disk(maildir, z, disk, sizeof(disk), &err) == 0) {
		if (storage_name_check(maildir, z, &err) == -1 ||
		    storage_name_from_disk(maildir, disk, strlen(disk), name, sizeof(name),
					   &err) == -1 ||
		    strcmp(name, z) != 0)
			abort();
		if (maildir && (disk[0] != '.' || strchr(disk, '/') != NULL))
			abort();
		/* no level is "." or ".." or hidden, none is empty */
		if (!maildir && (disk[0] == '/' || disk[0] == '.' || strstr(disk, "/.") != NULL ||
				 strstr(disk, "//") != NULL || disk[strlen(disk) - 1] == '/'))
			abort();
		if (maildir && (strstr(disk, "..") != NULL || disk[strlen(disk) - 1] == '.'))
			abort();
	}
	free(z);
	return 0;
}
