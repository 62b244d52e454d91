/* fuzz_throttle: the throttle file parser.  Arbitrary bytes -> throttle_parse -> format ->
 * parse again must give the same table and the same text; then the policy functions run
 * on the table (pruning, eviction) and the result must round-trip too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/netaddr.h"
#include "privsep/throttle.h"
#include "base/util.h"

static void same_table(const struct throttle_table *a, const struct throttle_table *b)
{
	if (a->count != b->count)
		abort();
	for (size_t i = 0; i < a->count; i++) {
		const struct throttle_entry *x = &a->e[i], *y = &b->e[i];
		if (x->kind != y->kind || strcmp(x->key, y->key) != 0 || x->count != y->count ||
		    x->last != y->last)
			abort();
	}
}

/* format t, parse the text: nothing skipped, same table, same text again */
static void round_trip(const struct throttle_table *t)
{
	struct throttle_table t2;
	size_t len, len2;
	char *text = throttle_format(t, &len);

	if (throttle_parse(text, len, &t2) != 0)
		abort();
	same_table(t, &t2);
	char *text2 = throttle_format(&t2, &len2);
	if (len != len2 || memcmp(text, text2, len) != 0)
		abort();
	free(text2);
	free(text);
	throttle_table_free(&t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct throttle_table t;
	/* an exact-size copy, so any read past the end is caught */
	char *copy = xmalloc(size);
	if (size > 0)
		memcpy(copy, data, size);
	throttle_parse(copy, size, &t);
	free(copy);
	if (t.count > 4096)
		abort();
	round_trip(&t);

	/* the policy on whatever the file held, at a time taken from the input */
	static const struct throttle_policy p = {
		.window = 600, .ip_max = 5, .net_max = 20, .user_max = 10, .trust_days = 30,
		.delay_ms = 100, .delay_max_ms = 1000,
	};
	time_t now = 1700000000;
	if (t.count > 0)
		now = t.e[t.count / 2].last;
	struct netaddr a4, a6;
	netaddr_parse("192.0.2.7", &a4);
	netaddr_parse("2001:db8::7", &a6);
	(void)throttle_table_check(&t, &p, &a4, "ned", now);
	unsigned d = throttle_table_record(&t, &p, &a4, "ned", false, now);
	if (d < p.delay_ms || d > p.delay_max_ms)
		abort();
	throttle_table_record(&t, &p, &a6, "root", false, now);
	throttle_table_record(&t, &p, &a6, "root", true, now);
	(void)throttle_table_check(&t, &p, &a6, "root", now);
	unsigned fd;
	if (throttle_table_attempt(&t, &p, &a4, "x", now, &fd) == THROTTLE_ALLOW)
		throttle_table_undo(&t, &p, &a4, "x", now);
	if (t.count > 4096)
		abort();
	round_trip(&t);
	throttle_table_free(&t);
	return 0;
}
