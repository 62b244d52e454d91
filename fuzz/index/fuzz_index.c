/* The index file parsers: the input is a snapshot image, or (first byte odd) a log
 * image, fed to a memory index; then the records and keyword names are walked and a write
 * transaction (a keyword name too) is made on top, as a backend would. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "index/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct index *ix = index_new_memory();
	const char *err;
	size_t valid;

	if (size > 0 && (data[0] & 1) != 0)
		(void)index_parse_log(ix, data + 1, size - 1, &valid);
	else
		(void)index_parse_snapshot(ix, data, size);
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
