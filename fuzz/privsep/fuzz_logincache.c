/* libFuzzer: logincache.c's reading of an entry file (logincache_parse), the only bytes
 * of the login cache read back from disk.  Invariants: no crash; only a record of exactly
 * LOGINCACHE_RECORD bytes with the magic is accepted; what is accepted formats back to
 * the same bytes; freshness never holds for a time past now + the allowed skew. */
#include <stdint.h>
#include <string.h>
#include "base/plimits.h"
#include "privsep/logincache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logincache_entry e;
	unsigned char out[LOGINCACHE_RECORD];

	if (logincache_parse(data, size, &e) != 0)
		return 0;
	if (size != LOGINCACHE_RECORD || memcmp(data, LOGINCACHE_MAGIC, 4) != 0 ||
	    e.created < 0)
		__builtin_trap();
	logincache_format(&e, out);
	if (memcmp(out, data, LOGINCACHE_RECORD) != 0)
		__builtin_trap();
	if (e.created < INT64_MAX - LOGINCACHE_CLOCK_SKEW_S - 1 &&
	    logincache_fresh(e.created + LOGINCACHE_CLOCK_SKEW_S + 1, e.created, 604800))
		__builtin_trap();
	return 0;
}
