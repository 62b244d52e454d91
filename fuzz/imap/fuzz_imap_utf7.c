/* libFuzzer: modified UTF-7 <-> UTF-8.  Checks: a modified UTF-7 name that decodes is
 * canonical (encoding its UTF-8 gives back the very same bytes: one name, one spelling)
 * and its UTF-8 is a valid mailbox name; a valid UTF-8 name encodes, and decodes back to
 * itself; the encoder refuses exactly what the validity check refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_utf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *err;
	char *a = NULL, *b = NULL;
	size_t la, lb;
	if (imap_utf7_to_utf8(in, size, &a, &la, &err) == 0) {
		if (strlen(a) != la || imap_utf8_mailbox_valid(a, la, &err) < 0)
			abort();
		if (imap_utf8_to_utf7(a, la, &b, &lb, &err) < 0 || lb != size ||
		    memcmp(b, in, size) != 0)
			abort();
		free(a);
		free(b);
		a = b = NULL;
	}
	int valid = imap_utf8_mailbox_valid(in, size, &err);
	int enc = imap_utf8_to_utf7(in, size, &a, &la, &err);
	if (valid != enc)
		abort();
	if (enc == 0) {
		for (size_t i = 0; i < la; i++)
			if ((unsigned char)a[i] < 0x20 || (unsigned char)a[i] > 0x7e)
				abort();
		if (imap_utf7_to_utf8(a, la, &b, &lb, &err) < 0 || lb != size ||
		    memcmp(b, in, size) != 0)
			abort();
	}
	free(a);
	free(b);
	return 0;
}
