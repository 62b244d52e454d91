/* libFuzzer: imap_binsize_decode() of hostile cache bytes.  Checks: a refused input leaves
 * an empty table and an error; an accepted one has 1..IMAP_BINSIZE_MAX_PARTS entries, the
 * last known, every size <= INT64_MAX, and encodes back to exactly the input bytes (the
 * form is canonical); setting one more entry keeps it decodable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_binsize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct imap_binsize t, u;
	static unsigned char out[IMAP_BINSIZE_ENCODED_MAX];
	const char *err = NULL;
	if (imap_binsize_decode(&t, data, size, &err) < 0) {
		if (t.n != 0 || err == NULL)
			abort();
		return 0;
	}
	if (size == 0) {
		if (t.n != 0)
			abort();
		return 0;
	}
	if (t.n == 0 || t.n > IMAP_BINSIZE_MAX_PARTS || imap_binsize_get(&t, t.n - 1) == NULL)
		abort();
	for (size_t i = 0; i < t.n; i++) {
		const struct imap_binsize_entry *e = imap_binsize_get(&t, i);
		if (e != NULL && e->size > INT64_MAX)
			abort();
	}
	size_t len = imap_binsize_encode(&t, out);
	if (len != size || memcmp(out, data, size) != 0)
		abort();
	size_t ix = data[size - 1] % IMAP_BINSIZE_MAX_PARTS;
	if (imap_binsize_set(&t, ix, size, data[0] & 1) < 0)
		abort();
	len = imap_binsize_encode(&t, out);
	if (imap_binsize_decode(&u, out, len, &err) < 0 || u.n != t.n)
		abort();
	const struct imap_binsize_entry *e = imap_binsize_get(&u, ix);
	if (e == NULL || e->size != size || e->has_nul != (data[0] & 1))
		abort();
	return 0;
}
