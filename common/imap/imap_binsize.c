/* The BINARY.SIZE cache entry (imap_binsize.h). */
#include <string.h>
#include "imap/imap_binsize.h"

void imap_binsize_init(struct imap_binsize *t)
{
	t->n = 0;
	memset(t->e, 0, sizeof(t->e));
}

int imap_binsize_decode(struct imap_binsize *t, const void *data, size_t len,
			const char **error_r)
{
	const unsigned char *p = data;
	imap_binsize_init(t);
	if (len == 0)
		return 0;
	if (len < 3 || p[0] != IMAP_BINSIZE_VERSION) {
		*error_r = "Unknown BINARY cache version";
		return -1;
	}
	size_t n = (size_t)p[1] | (size_t)p[2] << 8;
	if (n == 0 || n > IMAP_BINSIZE_MAX_PARTS || len != 3 + 9 * n) {
		*error_r = "Invalid BINARY cache length";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *q = p + 3 + 9 * i;   /* BOUNDS: len == 3 + 9n, checked */
		uint64_t size = 0;
		for (int k = 7; k >= 0; k--)
			size = size << 8 | q[1 + k];
		if (q[0] > 2 || size > INT64_MAX || (q[0] == 0 && size != 0) ||
		    (q[0] == 0 && i == n - 1)) {
			imap_binsize_init(t);
			*error_r = "Invalid BINARY cache entry";
			return -1;
		}
		t->e[i].known = q[0] != 0;
		t->e[i].has_nul = q[0] == 2;
		t->e[i].size = size;
	}
	t->n = n;
	return 0;
}

size_t imap_binsize_encode(const struct imap_binsize *t, unsigned char *out)
{
	size_t n = t->n;
	while (n > 0 && !t->e[n - 1].known)
		n--;
	if (n == 0)
		return 0;
	out[0] = IMAP_BINSIZE_VERSION;
	out[1] = (unsigned char)(n & 0xff);
	out[2] = (unsigned char)(n >> 8);
	for (size_t i = 0; i < n; i++) {
		unsigned char *q = out + 3 + 9 * i;   /* BOUNDS: n <= IMAP_BINSIZE_MAX_PARTS */
		const struct imap_binsize_entry *e = &t->e[i];
		uint64_t size = e->known ? e->size : 0;
		q[0] = !e->known ? 0 : e->has_nul ? 2 : 1;
		for (int k = 0; k < 8; k++)
			q[1 + k] = (unsigned char)(size >> (8 * k));
	}
	return 3 + 9 * n;
}

int imap_binsize_set(struct imap_binsize *t, size_t index, uint64_t size, bool has_nul)
{
	if (index >= IMAP_BINSIZE_MAX_PARTS || size > INT64_MAX)
		return -1;
	t->e[index].known = true;
	t->e[index].has_nul = has_nul;
	t->e[index].size = size;
	if (index >= t->n)
		t->n = index + 1;
	return 0;
}

const struct imap_binsize_entry *imap_binsize_get(const struct imap_binsize *t,
						  size_t index)
{
	if (index >= t->n || !t->e[index].known)
		return NULL;
	return &t->e[index];
}

int imap_binsize_part_index(const struct mime_part *root, const struct mime_part *part,
			    size_t *index_r)
{
	/* pre-order without recursion: down to the first child, else on to the next
	 * sibling of the nearest ancestor (below root) that has one */
	size_t i = 0;
	for (const struct mime_part *p = root; p != NULL && i < IMAP_BINSIZE_MAX_PARTS; i++) {
		if (p == part) {
			*index_r = i;
			return 0;
		}
		if (p->children != NULL) {
			p = p->children;
			continue;
		}
		while (p != root && p->next == NULL)
			p = p->parent;
		p = p == root ? NULL : p->next;
	}
	return -1;
}
