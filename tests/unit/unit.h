/* Minimal unit test harness: CHECK() counts, unit_done() prints "N passed, N failed". */
#ifndef POSTERN_UNIT_H
#define POSTERN_UNIT_H
#include <stdio.h>
#include <string.h>

static int unit_pass, unit_fail;
#define CHECK(cond) do { if (cond) unit_pass++; else { unit_fail++; \
	fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
	if (a_ != NULL && b_ != NULL && strcmp(a_, b_) == 0) unit_pass++; else { unit_fail++; \
	fprintf(stderr, "%s:%d: FAIL: %s == \"%s\", got \"%s\"\n", __FILE__, __LINE__, #a, \
		b_ ? b_ : "(null)", a_ ? a_ : "(null)"); } } while (0)
static inline int unit_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_pass, unit_fail);
	return unit_fail == 0 ? 0 : 1;
}
#endif
