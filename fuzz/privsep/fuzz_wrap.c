/* libFuzzer: wrap.c's scan of hosts.allow / hosts.deny for rules (wrap_text_has_rules),
 * which decides whether libwrap is loaded at all.  Invariants: no crash; the answer
 * equals a second, plainer reading of the same rules (a line is split, then judged); and
 * "no rules" is kept by removing a line. */
#include <stdint.h>
#include <string.h>
#include "base/plimits.h"
#include "privsep/wrap.h"

static int ref_line(const uint8_t *p, size_t n, int last)
{
	if (n >= WRAP_SCAN_LINE_MAX)
		return 1;
	if (n == 0)
		return 0;
	if (last)
		return 1;
	if (p[0] == '#')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 1;
	return 0;
}

static int ref(const uint8_t *d, size_t size)
{
	size_t start = 0;
	for (size_t i = 0; i <= size; i++) {
		if (i == size || d[i] == '\n') {
			if (ref_line(d + start, i - start, i == size))
				return 1;
			start = i + 1;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool got = wrap_text_has_rules((const char *)data, size);

	if (got != (ref(data, size) == 1))
		__builtin_trap();
	if (!got) {
		/* without its first line the text still has no rule */
		const uint8_t *nl = memchr(data, '\n', size);
		if (nl != NULL && wrap_text_has_rules((const char *)nl + 1,
						      size - (size_t)(nl + 1 - data)))
			__builtin_trap();
	}
	return 0;
}
