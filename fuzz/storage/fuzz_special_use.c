/* libFuzzer: the special-use records file (storage.h storage_special_parse), which a user
 * can write by hand: byte 0 picks the backend (bit 0: Maildir++), the rest is the file.
 * Every record it gives is a known use and a valid folder name; no use and no name comes
 * twice; at most five; and a prefix of the file never gives more than the whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "storage/storage.h"

struct seen {
	char name[8][STORAGE_NAME_MAX + 1];
	unsigned use[8];
	size_t n;
	bool maildir;
};

static void on_rec(void *ctx, const char *name, unsigned use)
{
	struct seen *s = ctx;
	const char *err;
	if (s->n >= 5 || storage_name_check(s->maildir, name, &err) == -1 ||
	    (use & ~(unsigned)STORAGE_FOLDER_SPECIAL) != 0 || use == 0 ||
	    (use & (use - 1)) != 0)
		abort();
	for (size_t i = 0; i < s->n; i++)
		if (s->use[i] == use || strcmp(s->name[i], name) == 0)
			abort();
	memcpy(s->name[s->n], name, strlen(name) + 1);
	s->use[s->n++] = use;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 2 * STORAGE_SPECIAL_MAX)
		return 0;
	struct seen s = { .n = 0, .maildir = (data[0] & 1) != 0 };
	const char *in = (const char *)data + 1;
	size_t n = storage_special_parse(s.maildir, in, size - 1, on_rec, &s);
	if (n != s.n)
		abort();
	struct seen p = { .n = 0, .maildir = s.maildir };
	if (storage_special_parse(s.maildir, in, (size - 1) / 2, on_rec, &p) > n)
		abort();
	return 0;
}
