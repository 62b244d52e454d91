/* libFuzzer: imap_seqset_parse().  Bytes 0-3: the value of "*"; the rest is the set.
 * Checks: an accepted set is sorted, disjoint and not adjacent, has no 0, at most
 * IMAP_MAX_SEQSET_RANGES ranges; its formatted text parses back to the same ranges;
 * membership agrees with the ranges at every range's edges; a refused set is empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "imap/imap_seqset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	uint32_t star = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
		(uint32_t)data[3] << 24;
	const char *s = (const char *)data + 4;
	size_t len = size - 4;
	struct imap_seqset set, again;
	const char *err = NULL;
	bool dollar;
	imap_seqset_init(&set);
	imap_seqset_init(&again);
	if (imap_seqset_parse(&set, s, len, star, &dollar, &err) < 0) {
		if (set.count != 0 || err == NULL)
			abort();
		goto out;
	}
	if (set.count > IMAP_MAX_SEQSET_RANGES)
		abort();
	for (size_t i = 0; i < set.count; i++) {
		const struct imap_seqrange *r = &set.r[i];
		if (r->lo == 0 || r->lo > r->hi)
			abort();
		if (i > 0 && (uint64_t)r->lo <= (uint64_t)set.r[i - 1].hi + 1)
			abort();
		if (!imap_seqset_contains(&set, r->lo) || !imap_seqset_contains(&set, r->hi))
			abort();
		if (imap_seqset_contains(&set, r->lo - 1) && r->lo > 1)
			abort();
		if (r->hi < UINT32_MAX && imap_seqset_contains(&set, r->hi + 1))
			abort();
	}
	size_t need = imap_seqset_format(&set, NULL, 0);
	char *buf = malloc(need + 1);
	if (imap_seqset_format(&set, buf, need + 1) != need || strlen(buf) != need)
		abort();
	if (need > 0) {
		if (imap_seqset_parse(&again, buf, need, 1, NULL, &err) < 0)
			abort();
		if (again.count != set.count ||
		    memcmp(again.r, set.r, set.count * sizeof(*set.r)) != 0)
			abort();
	}
	free(buf);
out:
	imap_seqset_free(&set);
	imap_seqset_free(&again);
	return 0;
}
