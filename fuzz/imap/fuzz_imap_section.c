/* libFuzzer: imap_section.c and imap_binary.c.  Input: byte 0 a chunk size, then a
 * fetch-att ("BODY[1.HEADER.FIELDS (A)]<3.9>", "BINARY[2]<0.5>") up to the first LF,
 * then a message.  The section is resolved against the message's tree and produced as
 * the daemon would, fed in chunks; checks: a range's CRLF size from the tree is the real
 * size of the range converted (the literal's {n} is right), the partial output equals a
 * slice of the brute-force reference (the whole range converted to CRLF), the announced
 * size equals what is sent without padding; HEADER.FIELDS output is the same fed whole
 * or in chunks, has no bare LF and ends in CRLF; BINARY's partial is a slice of its full
 * decoding, and its size and NUL flag do not depend on chunking. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_binary.h"
#include "imap/imap_section.h"

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

static void check_slice(const struct sbuf *got, const char *full, size_t full_len,
			const struct imap_fetch_section *sec)
{
	uint64_t want = imap_section_partial_size(sec, full_len);
	uint64_t origin = sec->partial ? sec->offset : 0;
	if (got->len != want)
		abort();
	if (want > 0 && memcmp(got->data, full + origin, (size_t)want) != 0)
		abort();
}

static void filter(const struct imap_fetch_section *sec, const char *raw, size_t len,
		   size_t step, struct imap_window *w)
{
	struct imap_hdrfilter f;
	imap_hdrfilter_init(&f, sec->fields, sec->nfields,
			    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT, w);
	for (size_t i = 0; i < len; i += step)
		(void)imap_hdrfilter_feed(&f, raw + i, len - i < step ? len - i : step);
	(void)imap_hdrfilter_finish(&f);
}

static int binary(const char *enc, const char *raw, size_t len, size_t step,
		  struct imap_window *w, uint64_t *size_r, bool *nul_r)
{
	struct imap_binary d;
	if (imap_binary_init(&d, enc, w) < 0)
		return -1;
	for (size_t i = 0; i < len; i += step)
		(void)imap_binary_feed(&d, raw + i, len - i < step ? len - i : step);
	(void)imap_binary_finish(&d);
	*size_r = d.size;
	*nul_r = d.has_nul;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t step = data[0] % 64 + 1;
	const char *s = (const char *)data + 1;
	size--;
	const char *nl = memchr(s, '\n', size);
	if (nl == NULL)
		return 0;
	struct imap_fetch_section sec;
	const char *error;
	if (imap_fetch_section_parse(s, (size_t)(nl - s), &sec, &error) < 0)
		return 0;
	const char *msg = nl + 1;
	size_t mlen = size - (size_t)(nl + 1 - s);

	struct mime_parser *p = mime_parser_new();
	mime_parser_feed(p, msg, mlen);
	struct mime_part *root;
	mime_parser_finish(&p, &root, NULL);
	struct imap_section_plan plan;
	if (imap_section_resolve(&sec, root, &plan, &error) < 0 || !plan.found) {
		mime_part_free(&root);
		return 0;
	}
	if (plan.offset > mlen || plan.size > mlen - plan.offset)
		abort();
	const char *raw = msg + plan.offset;
	size_t rlen = (size_t)plan.size;
	struct sbuf out = { NULL, 0 };
	struct imap_window w;

	if (sec.kind == IMAP_FETCH_BODY && plan.filter) {
		struct sbuf whole = { NULL, 0 };
		imap_window_init(&w, 0, UINT64_MAX, sink, &whole);
		filter(&sec, raw, rlen, rlen + 1, &w);
		if (whole.len < 2 || memcmp(whole.data + whole.len - 2, "\r\n", 2) != 0)
			abort();
		for (size_t i = 0; i < whole.len; i++)
			if (whole.data[i] == '\n' && (i == 0 || whole.data[i - 1] != '\r'))
				abort();
		imap_window_init(&w, sec.partial ? sec.offset : 0,
				 imap_section_partial_size(&sec, whole.len), sink, &out);
		filter(&sec, raw, rlen, step, &w);
		if (w.left != 0 || w.total != whole.len)
			abort();
		check_slice(&out, whole.data, whole.len, &sec);
		free(whole.data);
	} else if (sec.kind == IMAP_FETCH_BODY) {
		/* the reference: the range converted to CRLF as a whole */
		char *ref = malloc(2 * rlen + 1);
		size_t k = 0;
		for (size_t i = 0; i < rlen; i++) {
			if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
				ref[k++] = '\r';
			ref[k++] = raw[i];
		}
		if (plan.size_crlf != k)
			abort();
		imap_window_init(&w, sec.partial ? sec.offset : 0,
				 imap_section_partial_size(&sec, plan.size_crlf), sink, &out);
		struct imap_window_crlf o;
		imap_window_crlf_init(&o, &w);
		for (size_t i = 0; i < rlen; i += step)
			(void)imap_window_crlf_feed(&o, raw + i, rlen - i < step ? rlen - i : step);
		if (w.left != 0)
			abort();
		check_slice(&out, ref, k, &sec);
		free(ref);
	} else {
		const char *enc = imap_binary_encoding(&sec, &plan);
		struct sbuf whole = { NULL, 0 };
		uint64_t size1, size2;
		bool nul1, nul2;
		imap_window_init(&w, 0, UINT64_MAX, sink, &whole);
		if (binary(enc, raw, rlen, rlen + 1, &w, &size1, &nul1) == 0) {
			if (size1 != whole.len ||
			    nul1 != (whole.len > 0 && memchr(whole.data, '\0', whole.len) != NULL))
				abort();
			imap_window_init(&w, sec.partial ? sec.offset : 0,
					 imap_section_partial_size(&sec, size1), sink, &out);
			if (binary(enc, raw, rlen, step, &w, &size2, &nul2) < 0 ||
			    size2 != size1 || nul2 != nul1 || w.left != 0)
				abort();
			check_slice(&out, whole.data, whole.len, &sec);
		}
		free(whole.data);
	}
	free(out.data);
	mime_part_free(&root);
	return 0;
}
