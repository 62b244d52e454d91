/* The index file parsers: the input is a snapshot image, or (first byte odd) a log
 * image, fed to a memory index; then the records and keyword names are walked and a write
 * transaction (a keyword name too) is made on top, as a backend would; the expunges
 * remembered (QRESYNC) are checked: ordered, above their floor, bounded. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "base/plimits.h"
#include "index/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct index *ix = index_new_memory();
	const char *err;
	size_t valid;

	int parsed;
	if (size > 0 && (data[0] & 1) != 0)
		parsed = index_parse_log(ix, data + 1, size - 1, &valid);
	else
		parsed = index_parse_snapshot(ix, data, size);
	uint64_t sum = 0;
	for (size_t i = 0; i < index_count(ix); i++) {
		const struct index_rec *r = index_get(ix, i);
		if (r != NULL) {
			size_t pos = SIZE_MAX;
			sum += r->uid + strlen(r->key);
			/* the same record by UID, at the same position */
			if (index_find(ix, r->uid, &pos) == NULL || pos != i)
				__builtin_trap();
		}
	}
	for (unsigned i = 0; i <= index_keyword_count(ix); i++) {
		const char *k = index_keyword_name(ix, i);
		if (k != NULL)
			sum += (uint64_t)index_keyword_find(ix, k, strlen(k));
	}
	/* the expunges remembered: in MODSEQ order, above the floor, at most the bound
	 * (after a log that failed, the state is partly applied: the index reloads then) */
	size_t nexp;
	uint64_t floor;
	const struct index_expunge *e = index_expunges(ix, &nexp, &floor);
	if (nexp > INDEX_EXPUNGES_MAX)
		__builtin_trap();
	for (size_t i = 0; parsed == 0 && i < nexp; i++)
		if (e[i].modseq <= floor || (i > 0 && e[i].modseq <= e[i - 1].modseq) ||
		    e[i].modseq > index_hdr(ix)->highestmodseq)
			__builtin_trap();
	(void)sum;
	if (index_lock(ix, NULL, &err) == 0) {
		unsigned bit;
		(void)index_keyword_add(ix, "$Fuzz", 5, &bit, &err);
		struct index_rec r = { .key = "k", .key_len = 1 };
		(void)index_append(ix, &r, &err);
		if (index_count(ix) > 0) {
			r = *index_get(ix, 0);
			(void)index_update(ix, &r, &err);
			(void)index_cache_set(ix, r.uid, INDEX_CACHE_ENVELOPE, "e", 1, &err);
			size_t clen;
			(void)index_cache_get(ix, r.uid, INDEX_CACHE_ENVELOPE, &clen);
			(void)index_expunge(ix, r.uid, &err);
		}
		(void)index_commit(ix, &err);
		index_unlock(ix);
	}
	index_close(&ix);
	return 0;
}
