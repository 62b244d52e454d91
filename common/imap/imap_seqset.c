/* Sequence sets (imap_seqset.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "base/util.h"
#include "imap/imap_seqset.h"

void imap_seqset_init(struct imap_seqset *set)
{
	memset(set, 0, sizeof(*set));
}

void imap_seqset_free(struct imap_seqset *set)
{
	free(set->r);
	memset(set, 0, sizeof(*set));
}

void imap_seqset_clear(struct imap_seqset *set)
{
	set->count = 0;
}

/* The first range whose hi + 1 >= n (where a range touching or holding n would be). */
static size_t find(const struct imap_seqset *set, uint64_t n)
{
	size_t a = 0, b = set->count;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if ((uint64_t)set->r[m].hi + 1 < n)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

int imap_seqset_add(struct imap_seqset *set, uint32_t lo, uint32_t hi)
{
	if (lo > hi) {
		uint32_t t = lo;
		lo = hi;
		hi = t;
	}
	if (lo == 0)
		lo = 1;
	if (hi == 0)
		return 0;
	size_t i = find(set, lo);
	/* ranges i..j-1 touch or overlap lo:hi and merge with it */
	size_t j = i;
	while (j < set->count && (uint64_t)set->r[j].lo <= (uint64_t)hi + 1)
		j++;
	if (i == j) {
		if (set->count >= IMAP_MAX_SEQSET_RANGES)
			return -1;
		if (set->count == set->cap) {
			set->cap = set->cap == 0 ? 8 : set->cap * 2;
			/* BOUNDS: cap <= 2 * IMAP_MAX_SEQSET_RANGES */
			set->r = xrealloc(set->r, set->cap * sizeof(*set->r));
		}
		memmove(&set->r[i + 1], &set->r[i], (set->count - i) * sizeof(*set->r));
		set->r[i].lo = lo;
		set->r[i].hi = hi;
		set->count++;
		return 0;
	}
	if (set->r[i].lo < lo)
		lo = set->r[i].lo;
	if (set->r[j - 1].hi > hi)
		hi = set->r[j - 1].hi;
	set->r[i].lo = lo;
	set->r[i].hi = hi;
	memmove(&set->r[i + 1], &set->r[j], (set->count - j) * sizeof(*set->r));
	set->count -= j - i - 1;
	return 0;
}

int imap_seqset_add_set(struct imap_seqset *set, const struct imap_seqset *src)
{
	for (size_t i = 0; i < src->count; i++)
		if (imap_seqset_add(set, src->r[i].lo, src->r[i].hi) < 0)
			return -1;
	return 0;
}

/* seq-number at s[*i]: nz-number (no leading zero, 32 bits) or "*". */
static int seq_number(const char *s, size_t len, size_t *i, uint32_t star, uint32_t *n_r)
{
	if (*i < len && s[*i] == '*') {
		(*i)++;
		*n_r = star;
		return 0;
	}
	size_t b = *i;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9')
		(*i)++;
	uint64_t n;
	if (*i == b || s[b] == '0' || util_parse_uint(s + b, *i - b, UINT32_MAX, &n) < 0)
		return -1;
	*n_r = (uint32_t)n;
	return 0;
}

int imap_seqset_parse(struct imap_seqset *set, const char *s, size_t len, uint32_t star,
		      bool *dollar_r, const char **error_r)
{
	struct imap_seqset tmp;
	size_t i = 0, items = 0;
	bool dollar = false;

	imap_seqset_init(&tmp);
	if (len == 0) {
		*error_r = "Empty sequence set";
		return -1;
	}
	for (;;) {
		if (++items > IMAP_MAX_SEQSET_RANGES) {
			*error_r = "Too many ranges in the sequence set";
			goto fail;
		}
		if (s[i] == '$') {
			if (dollar_r == NULL) {
				*error_r = "$ not allowed here";
				goto fail;
			}
			dollar = true;
			i++;
		} else {
			uint32_t lo, hi;
			bool star_lo = i < len && s[i] == '*';
			if (seq_number(s, len, &i, star, &lo) < 0) {
				*error_r = "Invalid sequence set";
				goto fail;
			}
			hi = lo;
			bool star_hi = star_lo;
			if (i < len && s[i] == ':') {
				i++;
				star_hi = i < len && s[i] == '*';
				if (seq_number(s, len, &i, star, &hi) < 0) {
					*error_r = "Invalid sequence set";
					goto fail;
				}
			}
			/* "*" in an empty mailbox: nothing; "n:*" still n's side, which the
			 * caller intersects with what exists */
			if (!(star == 0 && star_lo && star_hi) &&
			    imap_seqset_add(&tmp, lo, hi) < 0) {
				*error_r = "Too many ranges in the sequence set";
				goto fail;
			}
		}
		if (i == len)
			break;
		if (s[i] != ',' || i + 1 == len) {
			*error_r = "Invalid sequence set";
			goto fail;
		}
		i++;
	}
	if (imap_seqset_add_set(set, &tmp) < 0) {
		*error_r = "Too many ranges in the sequence set";
		goto fail;
	}
	if (dollar_r != NULL)
		*dollar_r = dollar;
	imap_seqset_free(&tmp);
	return 0;
fail:
	imap_seqset_free(&tmp);
	return -1;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	if (n == 0)
		return false;
	size_t i = find(set, (uint64_t)n + 1);   /* first range with hi >= n */
	return i < set->count && set->r[i].lo <= n && n <= set->r[i].hi;
}

uint64_t imap_seqset_members(const struct imap_seqset *set)
{
	uint64_t n = 0;
	for (size_t i = 0; i < set->count; i++)
		n += (uint64_t)set->r[i].hi - set->r[i].lo + 1;   /* BOUNDS: < 2^32 in all */
	return n;
}

uint32_t imap_seqset_max(const struct imap_seqset *set)
{
	return set->count == 0 ? 0 : set->r[set->count - 1].hi;
}

void imap_seqset_iter_init(struct imap_seqset_iter *it, const struct imap_seqset *set)
{
	it->set = set;
	it->i = 0;
	it->next = set->count > 0 ? set->r[0].lo : 0;
}

bool imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *n_r)
{
	if (it->i >= it->set->count)
		return false;
	*n_r = (uint32_t)it->next;
	if (it->next < it->set->r[it->i].hi) {
		it->next++;
	} else if (++it->i < it->set->count) {
		it->next = it->set->r[it->i].lo;
	}
	return true;
}

size_t imap_seqset_format(const struct imap_seqset *set, char *buf, size_t size)
{
	size_t o = 0;
	char item[32];
	if (size > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < set->count; i++) {
		int n = set->r[i].lo == set->r[i].hi ?
			snprintf(item, sizeof(item), "%s%u", i ? "," : "", set->r[i].lo) :
			snprintf(item, sizeof(item), "%s%u:%u", i ? "," : "", set->r[i].lo,
				 set->r[i].hi);
		/* BOUNDS: n <= 22 < sizeof(item) */
		if (size > 0 && o < size - 1) {
			size_t k = (size_t)n < size - 1 - o ? (size_t)n : size - 1 - o;
			memcpy(buf + o, item, k);
			buf[o + k] = '\0';
		}
		o += (size_t)n;
	}
	return o;
}
