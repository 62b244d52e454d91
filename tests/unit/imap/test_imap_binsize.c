/* imap_binsize.c: the BINARY.SIZE cache entry.  Real sizes from a decoding pass over a
 * real message (base64 with and without NUL, qp, a part inside a message/rfc822) go in,
 * are encoded, decoded again and give the same answers; the pre-order part index of every
 * part of the tree; hostile bytes (every truncation, bad version, count, state, size, a
 * trailing unknown entry, every single-byte change of a valid entry) are refused and leave
 * an empty table, never a wrong size. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_binary.h"
#include "imap/imap_binsize.h"
#include "unit.h"

static const char msg[] =
	"Content-Type: multipart/mixed; boundary=b\n"
	"\n"
	"--b\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"SGVsbG8s\n"
	"--b\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"Content-Type: multipart/alternative; boundary=c\n"
	"\n"
	"--c\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"YQBi\n"
	"--c\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"x=3Dy\n"
	"--c--\n"
	"--b--\n";

/* The decoded size and NUL of part p, from a counting pass as imapd does it. */
static void measure(const char *m, const struct mime_part *p, uint64_t *size, bool *nul)
{
	struct imap_window w;
	struct imap_binary d;
	imap_window_init(&w, 0, UINT64_MAX, NULL, NULL);
	CHECK(imap_binary_init(&d, p->encoding, &w) == 0);
	CHECK(imap_binary_feed(&d, m + p->body_offset, (size_t)p->body_size) == 0);
	CHECK(imap_binary_finish(&d) == 0);
	*size = d.size;
	*nul = d.has_nul;
}

static void run_tree(void)
{
	struct mime_parser *mp = mime_parser_new();
	mime_parser_feed(mp, msg, sizeof(msg) - 1);
	struct mime_part *root;
	mime_parser_finish(&mp, &root, NULL);
	/* pre-order: 0 root, 1 part 1, 2 part 2 (message/rfc822), 3 its message,
	 * 4 part 2.1, 5 part 2.2 */
	const struct mime_part *p1 = root->children, *p2 = p1->next, *m2 = p2->children;
	const struct mime_part *p21 = m2->children, *p22 = p21->next;
	const struct mime_part *order[] = { root, p1, p2, m2, p21, p22 };
	for (size_t i = 0; i < 6; i++) {
		size_t ix = 99;
		CHECK(imap_binsize_part_index(root, order[i], &ix) == 0 && ix == i);
	}
	struct mime_part other;
	size_t ix;
	CHECK(imap_binsize_part_index(root, &other, &ix) == -1);

	static struct imap_binsize t, back;
	imap_binsize_init(&t);
	const struct mime_part *leaves[] = { p1, p21, p22 };
	for (size_t i = 0; i < 3; i++) {
		uint64_t size;
		bool nul;
		measure(msg, leaves[i], &size, &nul);
		CHECK(imap_binsize_part_index(root, leaves[i], &ix) == 0);
		CHECK(imap_binsize_set(&t, ix, size, nul) == 0);
	}
	unsigned char buf[IMAP_BINSIZE_ENCODED_MAX];
	size_t len = imap_binsize_encode(&t, buf);
	CHECK(len == 3 + 9 * 6);
	const char *err = NULL;
	CHECK(imap_binsize_decode(&back, buf, len, &err) == 0);
	/* what the cache gives is what the decoding pass gave: "Hello,", a NUL b, x=y */
	const struct imap_binsize_entry *e;
	CHECK((e = imap_binsize_get(&back, 1)) != NULL && e->size == 6 && !e->has_nul);
	CHECK((e = imap_binsize_get(&back, 4)) != NULL && e->size == 3 && e->has_nul);
	CHECK((e = imap_binsize_get(&back, 5)) != NULL && e->size == 3 && !e->has_nul);
	CHECK(imap_binsize_get(&back, 0) == NULL && imap_binsize_get(&back, 3) == NULL);
	CHECK(imap_binsize_get(&back, 6) == NULL && imap_binsize_get(&back, 100000) == NULL);
	/* canonical: encoding the decoded table gives the same bytes */
	unsigned char again[IMAP_BINSIZE_ENCODED_MAX];
	CHECK(imap_binsize_encode(&back, again) == len && memcmp(again, buf, len) == 0);
	mime_part_free(&root);
}

static void run_hostile(void)
{
	static struct imap_binsize t;
	const char *err = NULL;
	unsigned char buf[IMAP_BINSIZE_ENCODED_MAX];
	imap_binsize_init(&t);
	CHECK(imap_binsize_encode(&t, buf) == 0);          /* empty: nothing to store */
	CHECK(imap_binsize_decode(&t, buf, 0, &err) == 0 && t.n == 0);
	CHECK(imap_binsize_set(&t, IMAP_BINSIZE_MAX_PARTS, 1, false) == -1);
	CHECK(imap_binsize_set(&t, 0, (uint64_t)INT64_MAX + 1, false) == -1);
	CHECK(imap_binsize_set(&t, 2, 0x0102030405060708ULL, true) == 0);
	CHECK(imap_binsize_set(&t, IMAP_BINSIZE_MAX_PARTS - 1, 7, false) == 0);
	size_t len = imap_binsize_encode(&t, buf);
	CHECK(len == IMAP_BINSIZE_ENCODED_MAX);
	CHECK(imap_binsize_decode(&t, buf, len, &err) == 0 && t.n == IMAP_BINSIZE_MAX_PARTS);
	/* every truncation is refused */
	for (size_t l = 1; l < len; l++) {
		err = NULL;
		CHECK(imap_binsize_decode(&t, buf, l, &err) == -1 && err != NULL && t.n == 0);
	}
	/* a small valid entry, then every single-byte change of it */
	imap_binsize_init(&t);
	CHECK(imap_binsize_set(&t, 1, 300, false) == 0);
	unsigned char v[3 + 18];
	CHECK(imap_binsize_encode(&t, v) == sizeof(v));
	static const unsigned char want[] = { 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					      1, 0x2c, 1, 0, 0, 0, 0, 0, 0 };
	CHECK(memcmp(v, want, sizeof(v)) == 0);
	for (size_t i = 0; i < sizeof(v); i++) {
		for (unsigned x = 1; x < 256; x++) {
			unsigned char h[sizeof(v)];
			memcpy(h, v, sizeof(v));
			h[i] ^= (unsigned char)x;
			int r = imap_binsize_decode(&t, h, sizeof(h), &err);
			/* only a change of the known size or of its NUL state is still a table
			 * (it is what the bytes say); nothing else is accepted */
			bool ok = (i >= 13 && i <= 20 && !(h[20] & 0x80)) ||
				(i == 12 && h[12] == 2) || (i == 3 && (h[3] == 1 || h[3] == 2));
			CHECK(r == (ok ? 0 : -1));
			if (r == 0)
				CHECK(t.n == 2 && (imap_binsize_get(&t, 0) != NULL) == (i == 3) &&
				      imap_binsize_get(&t, 1) != NULL);
			else
				CHECK(t.n == 0);
		}
	}
	/* named cases */
	static const struct { const char *what; unsigned char b[12]; size_t len; } bad[] = {
		{ "version 0", { 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, 12 },
		{ "version 2", { 2, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, 12 },
		{ "count 0", { 1, 0, 0 }, 3 },
		{ "count past max", { 1, 0xe9, 0x03 }, 3 },
		{ "trailing unknown", { 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 12 },
		{ "state 3", { 1, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0 }, 12 },
		{ "size past INT64_MAX", { 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x80 }, 12 },
		{ "junk after", { 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, 13 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char b[13] = { 0 };
		memcpy(b, bad[i].b, 12);
		int r = imap_binsize_decode(&t, b, bad[i].len, &err);
		CHECK(r == -1 && t.n == 0);
		if (r == 0)
			fprintf(stderr, "binsize accepted: %s\n", bad[i].what);
	}
}

int main(void)
{
	run_tree();
	run_hostile();
	return unit_done("test_imap_binsize");
}
