/* imap_binary.c: BINARY of base64, quoted-printable, 7bit and binary parts against
 * their known decoded octets, fed in every chunk size; BINARY.SIZE from a counting pass;
 * NUL detection (literal8); partials of the decoded octets at every origin; an unknown
 * encoding refused (NO [UNKNOWN-CTE]); BINARY[] is the whole message undecoded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_binary.h"
#include "unit.h"

static const char msg[] =
	"Content-Type: multipart/mixed; boundary=b\n"
	"\n"
	"--b\n"
	"Content-Type: application/octet-stream\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"SGVsbG8s\n"
	"IFdvcmxk\r\n"
	"IQ==\n"
	"--b\n"
	"Content-Transfer-Encoding: Quoted-Printable\n"
	"\n"
	"caf=C3=A9 soft=\n"
	"break  \n"
	"x=0Ay=\r\n"
	"=00\n"
	"--b\n"
	"Content-Transfer-Encoding: 7bit\n"
	"\n"
	"a\n"
	"b\r\n"
	"--b\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"YQBi\n"
	"--b\n"
	"Content-Transfer-Encoding: x-uuencode\n"
	"\n"
	"begin 644 x\n"
	"--b\n"
	"Content-Transfer-Encoding: binary\n"
	"\n"
	"\x01\x02\xff\n"
	"--b--\n";

struct bcase {
	const char *sec;
	const char *out;       /* NULL: unknown encoding */
	size_t out_len;
	bool nul;
};

static const struct bcase bcases[] = {
	{ "BINARY[1]", "Hello, World!", 13, false },
	{ "BINARY[2]", "caf\xc3\xa9 softbreak\r\nx\ny\0", 21, true },
	{ "BINARY[3]", "a\r\nb", 4, false },
	{ "BINARY[4]", "a\0b", 3, true },
	{ "BINARY[5]", NULL, 0, false },
	{ "BINARY[6]", "\x01\x02\xff", 3, false },
};

struct sbuf {
	char *data;
	size_t len;
};

static int sink(void *ctx, const void *data, size_t len)
{
	struct sbuf *s = ctx;
	s->data = realloc(s->data, s->len + len + 1);
	memcpy(s->data + s->len, data, len);
	s->len += len;
	return 0;
}

static struct mime_part *tree(void)
{
	struct mime_parser *p = mime_parser_new();
	mime_parser_feed(p, msg, sizeof(msg) - 1);
	struct mime_part *root;
	mime_parser_finish(&p, &root, NULL);
	return root;
}

/* Decode the section's part through a window (skip, max); -1: unknown encoding. */
static int decode(const struct imap_fetch_section *sec, const struct mime_part *root,
		  uint64_t skip, uint64_t max, size_t step, struct sbuf *out,
		  uint64_t *size_r, bool *nul_r)
{
	struct imap_section_plan plan;
	const char *error;
	CHECK(imap_section_resolve(sec, root, &plan, &error) == 0);
	CHECK(plan.found);
	struct imap_window w;
	imap_window_init(&w, skip, max, out != NULL ? sink : NULL, out);
	struct imap_binary d;
	if (imap_binary_init(&d, imap_binary_encoding(sec, &plan), &w) < 0)
		return -1;
	for (uint64_t i = 0; i < plan.size; i += step)
		CHECK(imap_binary_feed(&d, msg + plan.offset + i,
				       plan.size - i < step ? plan.size - i : step) == 0);
	CHECK(imap_binary_finish(&d) == 0);
	CHECK(w.total == d.size);
	*size_r = d.size;
	*nul_r = d.has_nul;
	return 0;
}

int main(void)
{
	struct mime_part *root = tree();
	for (size_t i = 0; i < sizeof(bcases) / sizeof(bcases[0]); i++) {
		const struct bcase *c = &bcases[i];
		struct imap_fetch_section sec;
		const char *error;
		CHECK(imap_fetch_section_parse(c->sec, strlen(c->sec), &sec, &error) == 0);
		for (size_t step = 1; step < 64; step += 5) {
			struct sbuf out = { NULL, 0 };
			uint64_t size;
			bool nul;
			int r = decode(&sec, root, 0, UINT64_MAX, step, &out, &size, &nul);
			if (c->out == NULL) {
				CHECK(r == -1);
				free(out.data);
				continue;
			}
			CHECK(r == 0);
			if (out.len != c->out_len)
				fprintf(stderr, "%s: %zu <%.*s>\n", c->sec, out.len, (int)out.len, out.data);
			CHECK(size == c->out_len && out.len == c->out_len);
			CHECK(out.data != NULL && memcmp(out.data, c->out, c->out_len) == 0);
			CHECK(nul == c->nul);
			free(out.data);
		}
		if (c->out == NULL)
			continue;
		/* BINARY.SIZE: a counting pass */
		uint64_t size;
		bool nul;
		CHECK(decode(&sec, root, 0, UINT64_MAX, 4096, NULL, &size, &nul) == 0);
		CHECK(size == c->out_len);
		/* partials of the decoded octets at every origin */
		for (uint64_t origin = 0; origin <= c->out_len + 1; origin++) {
			for (uint64_t count = 1; count <= c->out_len + 1; count += 3) {
				sec.partial = true;
				sec.offset = origin;
				sec.length = count;
				uint64_t want = imap_section_partial_size(&sec, size);
				struct sbuf out = { NULL, 0 };
				CHECK(decode(&sec, root, origin, want, 3, &out, &size, &nul) == 0);
				CHECK(out.len == want);
				CHECK(want == 0 || memcmp(out.data, c->out + origin, want) == 0);
				CHECK(want == (origin >= c->out_len ? 0 :
					       c->out_len - origin < count ? c->out_len - origin :
					       count));
				free(out.data);
			}
		}
	}
	/* BINARY[]: the whole message, not decoded, CRLF */
	struct imap_fetch_section sec;
	const char *error;
	CHECK(imap_fetch_section_parse("BINARY[]", 8, &sec, &error) == 0);
	struct sbuf out = { NULL, 0 };
	uint64_t size;
	bool nul;
	CHECK(decode(&sec, root, 0, UINT64_MAX, 100, &out, &size, &nul) == 0);
	size_t crlf = sizeof(msg) - 1;
	for (size_t i = 0; i < sizeof(msg) - 1; i++)
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			crlf++;
	CHECK(size == crlf && out.len == crlf && !nul);
	CHECK(out.len > 3 && memcmp(out.data, "Content-Type: multipart/mixed; boundary=b\r\n", 43) == 0);
	free(out.data);
	mime_part_free(&root);
	return unit_done("test_imap_binary");
}
