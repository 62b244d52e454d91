/* imap_seqset.c: a table of sets with "*" values and the normalised form they give, one of
 * invalid sets; membership, iteration and counting against a brute-force model; the
 * range limit at max and max+1; 32-bit edges. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "imap/imap_seqset.h"
#include "unit.h"

struct scase {
	const char *in;
	uint32_t star;
	const char *out;        /* formatted, or NULL: refused */
};

static const struct scase cases[] = {
	{ "1", 10, "1" },
	{ "1:3", 10, "1:3" },
	{ "3:1", 10, "1:3" },
	{ "1,2,3,5,6,9", 10, "1:3,5:6,9" },
	{ "9,1,5,2,6,3", 10, "1:3,5:6,9" },
	{ "1:*", 10, "1:10" },
	{ "*", 10, "10" },
	{ "*:4", 10, "4:10" },
	{ "559:*", 10, "10:559" },          /* n:* always holds the last one */
	{ "*", 0, "" },                     /* empty mailbox */
	{ "1:*", 0, "1" },
	{ "5:7,6:9,1,2:4,10", 100, "1:10" },
	{ "4294967295", 1, "4294967295" },
	{ "1:4294967295", 1, "1:4294967295" },
	{ "4294967294:4294967295,1", 1, "1,4294967294:4294967295" },
	{ "2,4,6,3,5", 10, "2:6" },
	{ "10:20,1:30", 100, "1:30" },
	{ "10:20,21:30,5:9", 100, "5:30" },
	{ "", 10, NULL },
	{ "0", 10, NULL },
	{ "0:5", 10, NULL },
	{ "01", 10, NULL },
	{ "4294967296", 10, NULL },
	{ "1,", 10, NULL },
	{ ",1", 10, NULL },
	{ "1,,2", 10, NULL },
	{ "1:", 10, NULL },
	{ ":1", 10, NULL },
	{ "1:2:3", 10, NULL },
	{ "-1", 10, NULL },
	{ "+1", 10, NULL },
	{ "1 ", 10, NULL },
	{ "a", 10, NULL },
	{ "**", 10, NULL },
	{ "$:1", 10, NULL },
	{ "1$", 10, NULL },
};

static void run_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_seqset set;
		const char *err = NULL;
		bool dollar = false;
		imap_seqset_init(&set);
		int r = imap_seqset_parse(&set, cases[i].in, strlen(cases[i].in), cases[i].star,
					  &dollar, &err);
		if (cases[i].out == NULL) {
			CHECK(r == -1 && err != NULL && set.count == 0);
			if (r == 0)
				fprintf(stderr, "seqset \"%s\": accepted\n", cases[i].in);
		} else {
			char buf[256];
			CHECK(r == 0 && !dollar);
			imap_seqset_format(&set, buf, sizeof(buf));
			CHECK_STR(buf, cases[i].out);
		}
		imap_seqset_free(&set);
	}
}

static void run_dollar(void)
{
	struct imap_seqset set, saved;
	const char *err;
	bool dollar = false;
	char buf[64];
	imap_seqset_init(&set);
	imap_seqset_init(&saved);
	CHECK(imap_seqset_parse(&set, "$", 1, 10, NULL, &err) == -1);
	CHECK(imap_seqset_parse(&set, "$", 1, 10, &dollar, &err) == 0 && dollar && set.count == 0);
	CHECK(imap_seqset_parse(&saved, "2:4", 3, 10, NULL, &err) == 0);
	CHECK(imap_seqset_parse(&set, "1,$", 3, 10, &dollar, &err) == 0 && dollar);
	CHECK(imap_seqset_add_set(&set, &saved) == 0);
	imap_seqset_format(&set, buf, sizeof(buf));
	CHECK_STR(buf, "1:4");
	/* a parse adds to what the set has; a failed one leaves it as it was */
	CHECK(imap_seqset_parse(&set, "9", 1, 10, NULL, &err) == 0);
	CHECK(imap_seqset_parse(&set, "7,x", 3, 10, NULL, &err) == -1);
	imap_seqset_format(&set, buf, sizeof(buf));
	CHECK_STR(buf, "1:4,9");
	imap_seqset_free(&set);
	imap_seqset_free(&saved);
}

/* Random adds against a bitmap model. */
static void run_model(void)
{
	enum { N = 300 };
	uint32_t x = 12345;
	for (int round = 0; round < 200; round++) {
		bool model[N + 2] = { false };
		struct imap_seqset set;
		imap_seqset_init(&set);
		int adds = 1 + round % 20;
		for (int k = 0; k < adds; k++) {
			x = x * 1103515245u + 12345u;
			uint32_t a = (x >> 8) % N, b = a + (x >> 20) % 8;
			if (b > N)
				b = N;
			CHECK(imap_seqset_add(&set, round & 1 ? b : a, round & 1 ? a : b) == 0);
			for (uint32_t v = a; v <= b; v++)
				if (v > 0)
					model[v] = true;
		}
		uint64_t count = 0;
		bool ok = true;
		for (uint32_t v = 0; v <= N + 1; v++) {
			if (imap_seqset_contains(&set, v) != model[v])
				ok = false;
			count += model[v];
		}
		CHECK(ok);
		CHECK(imap_seqset_members(&set) == count);
		/* sorted, disjoint, not adjacent */
		for (size_t i = 0; i < set.count; i++) {
			CHECK(set.r[i].lo >= 1 && set.r[i].lo <= set.r[i].hi);
			if (i > 0)
				CHECK(set.r[i].lo > set.r[i - 1].hi + 1);
		}
		/* iteration gives the members in order */
		struct imap_seqset_iter it;
		uint32_t n, prev = 0;
		uint64_t seen = 0;
		for (imap_seqset_iter_init(&it, &set); imap_seqset_iter_next(&it, &n); ) {
			if (!model[n] || n <= prev)
				ok = false;
			prev = n;
			seen++;
		}
		CHECK(ok && seen == count);
		/* format, parse again: the same set */
		char buf[4096];
		size_t need = imap_seqset_format(&set, buf, sizeof(buf));
		struct imap_seqset again;
		const char *err;
		imap_seqset_init(&again);
		if (need > 0) {
			CHECK(imap_seqset_parse(&again, buf, need, 1, NULL, &err) == 0);
			CHECK(again.count == set.count &&
			      memcmp(again.r, set.r, set.count * sizeof(*set.r)) == 0);
		}
		imap_seqset_free(&again);
		imap_seqset_free(&set);
	}
}

static void run_edges(void)
{
	struct imap_seqset set;
	struct imap_seqset_iter it;
	uint32_t n;
	const char *err;
	imap_seqset_init(&set);
	/* the top of the 32-bit range: iteration ends, counting does not wrap */
	CHECK(imap_seqset_parse(&set, "4294967294:*", 12, UINT32_MAX, NULL, &err) == 0);
	int k = 0;
	for (imap_seqset_iter_init(&it, &set); imap_seqset_iter_next(&it, &n) && k < 5; k++)
		;
	CHECK(k == 2);
	CHECK(imap_seqset_contains(&set, UINT32_MAX) && !imap_seqset_contains(&set, 0));
	CHECK(imap_seqset_max(&set) == UINT32_MAX);
	imap_seqset_clear(&set);
	CHECK(imap_seqset_parse(&set, "1:*", 3, UINT32_MAX, NULL, &err) == 0);
	CHECK(imap_seqset_members(&set) == 4294967295ull);
	CHECK(imap_seqset_add(&set, 0, 0) == 0 && set.count == 1);
	/* formatting into a short buffer: cut, NUL-terminated, length needed returned */
	char small[4];
	CHECK(imap_seqset_format(&set, small, sizeof(small)) == strlen("1:4294967295"));
	CHECK_STR(small, "1:4");
	CHECK(imap_seqset_format(&set, NULL, 0) == 12);
	imap_seqset_free(&set);

	/* the range limit: IMAP_MAX_SEQSET_RANGES separate numbers, then one more */
	size_t max = IMAP_MAX_SEQSET_RANGES;
	char *s = malloc(12 * (max + 2));
	size_t o = 0;
	for (size_t i = 0; i < max; i++)
		o += (size_t)sprintf(s + o, "%s%zu", i ? "," : "", 2 * i + 1);
	imap_seqset_init(&set);
	CHECK(imap_seqset_parse(&set, s, o, 1, NULL, &err) == 0 && set.count == max);
	CHECK(imap_seqset_add(&set, 2 * max + 5, 2 * max + 5) == -1);
	CHECK(imap_seqset_add(&set, 2, 2) == 0 && set.count == max - 1);   /* merges */
	imap_seqset_free(&set);
	o += (size_t)sprintf(s + o, ",%zu", 2 * max + 1);
	imap_seqset_init(&set);
	CHECK(imap_seqset_parse(&set, s, o, 1, NULL, &err) == -1 && set.count == 0);
	imap_seqset_free(&set);
	/* many items that merge into one range still count as items */
	o = 0;
	for (size_t i = 0; i <= max; i++)
		o += (size_t)sprintf(s + o, "%s1", i ? "," : "");
	imap_seqset_init(&set);
	CHECK(imap_seqset_parse(&set, s, o, 1, NULL, &err) == -1);
	imap_seqset_free(&set);
	free(s);
}

int main(void)
{
	run_cases();
	run_dollar();
	run_model();
	run_edges();
	return unit_done("test_imap_seqset");
}
