/* imap_section.c: section resolution against RFC 3501 section 6.4.5's example tree
 * (every part number, HEADER/TEXT of enclosed messages, MIME, missing parts), a single
 * part message and a top-level message/rfc822; the HEADER.FIELDS(.NOT) filter (folded
 * fields, case-insensitive names, lines without colon, no empty line) fed whole and byte
 * by byte; partial fetches at every origin and several counts against a brute-force
 * reference (the whole section converted to CRLF, then sliced), on LF, CRLF and mixed
 * messages; the announced size always equals the octets sent; the response item names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_section.h"
#include "unit.h"

/* RFC 3501 section 6.4.5's example structure; each leaf body names its part. */
static const char msg_tree[] =
	"Subject: tree\n"
	"Content-Type: multipart/mixed; boundary=\"o\"\n"
	"\n"
	"--o\n"
	"Content-Type: text/plain\n"
	"\n"
	"P1\n"
	"--o\n"
	"Content-Type: application/octet-stream\n"
	"\n"
	"P2\n"
	"--o\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"Subject: three\n"
	"Content-Type: multipart/mixed; boundary=\"t\"\n"
	"\n"
	"--t\n"
	"\n"
	"P3.1\n"
	"--t\n"
	"Content-Type: application/octet-stream\n"
	"\n"
	"P3.2\n"
	"--t--\n"
	"--o\n"
	"Content-Type: multipart/mixed; boundary=\"f\"\n"
	"\n"
	"--f\n"
	"Content-Type: image/gif\n"
	"\n"
	"P4.1\n"
	"--f\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"Subject: four\n"
	"Content-Type: multipart/mixed; boundary=\"g\"\n"
	"\n"
	"--g\n"
	"\n"
	"P4.2.1\n"
	"--g\n"
	"Content-Type: multipart/alternative; boundary=\"h\"\n"
	"\n"
	"--h\n"
	"\n"
	"P4.2.2.1\n"
	"--h\n"
	"Content-Type: text/richtext\n"
	"\n"
	"P4.2.2.2\n"
	"--h--\n"
	"--g--\n"
	"--f--\n"
	"--o--\n";

static const char msg_single[] = "Subject: s\r\nX-A: 1\r\n\r\nline 1\r\nline 2\n";
static const char msg_noparts[] =
	"Content-Type: multipart/mixed; boundary=o\n\n--o\n\none\n--o\n"
	"Content-Type: multipart/related\n\nraw\n--o--\n";
static const char msg_encap[] =
	"Content-Type: message/rfc822\n\nSubject: in\nX-B: 2\n\ninner body\n";

struct scase {
	const char *msg;
	const char *sec;        /* the fetch-att */
	const char *out;        /* NULL: not found (empty string) */
};

static const struct scase scases[] = {
	{ msg_tree, "BODY[1]", "P1" },
	{ msg_tree, "BODY[2]", "P2" },
	{ msg_tree, "BODY[3.1]", "P3.1" },
	{ msg_tree, "BODY[3.2]", "P3.2" },
	{ msg_tree, "BODY[4.1]", "P4.1" },
	{ msg_tree, "BODY[4.2.1]", "P4.2.1" },
	{ msg_tree, "BODY[4.2.2.1]", "P4.2.2.1" },
	{ msg_tree, "BODY[4.2.2.2]", "P4.2.2.2" },
	{ msg_tree, "BODY[HEADER]", "Subject: tree\r\nContent-Type: multipart/mixed; "
	  "boundary=\"o\"\r\n\r\n" },
	{ msg_tree, "BODY[3.HEADER]", "Subject: three\r\nContent-Type: multipart/mixed; "
	  "boundary=\"t\"\r\n\r\n" },
	{ msg_tree, "BODY[3.TEXT]", "--t\r\n\r\nP3.1\r\n--t\r\nContent-Type: "
	  "application/octet-stream\r\n\r\nP3.2\r\n--t--" },
	{ msg_tree, "BODY[3.MIME]", "Content-Type: message/rfc822\r\n\r\n" },
	{ msg_tree, "BODY[4.1.MIME]", "Content-Type: image/gif\r\n\r\n" },
	{ msg_tree, "BODY[4.2.HEADER.FIELDS (subject)]", "Subject: four\r\n\r\n" },
	{ msg_tree, "BODY[4.2.2.2.MIME]", "Content-Type: text/richtext\r\n\r\n" },
	{ msg_tree, "BODY[4.2.2.1.MIME]", "\r\n" },
	{ msg_tree, "BODY[4.2.2]", "--h\r\n\r\nP4.2.2.1\r\n--h\r\nContent-Type: "
	  "text/richtext\r\n\r\nP4.2.2.2\r\n--h--" },
	/* missing: past the last part, below a leaf, HEADER of a non-message */
	{ msg_tree, "BODY[5]", NULL },
	{ msg_tree, "BODY[1.1]", NULL },
	{ msg_tree, "BODY[3.3]", NULL },
	{ msg_tree, "BODY[1.HEADER]", NULL },
	{ msg_tree, "BODY[4.TEXT]", NULL },
	{ msg_tree, "BODY[4.2.2.3]", NULL },
	/* single part: 1 is the body */
	{ msg_single, "BODY[1]", "line 1\r\nline 2\r\n" },
	{ msg_single, "BODY[TEXT]", "line 1\r\nline 2\r\n" },
	{ msg_single, "BODY[1.MIME]", "Subject: s\r\nX-A: 1\r\n\r\n" },
	{ msg_single, "BODY[2]", NULL },
	{ msg_single, "BODY[1.1]", NULL },
	{ msg_single, "BODY[]", "Subject: s\r\nX-A: 1\r\n\r\nline 1\r\nline 2\r\n" },
	/* a top-level message/rfc822: 1 is the enclosed message; 1.1 its body */
	{ msg_encap, "BODY[1]", "Subject: in\r\nX-B: 2\r\n\r\ninner body\r\n" },
	{ msg_encap, "BODY[1.1]", "inner body\r\n" },
	{ msg_encap, "BODY[1.HEADER]", "Subject: in\r\nX-B: 2\r\n\r\n" },
	{ msg_encap, "BODY[1.TEXT]", "inner body\r\n" },
	{ msg_encap, "BODY[1.HEADER.FIELDS.NOT (SUBJECT)]", "X-B: 2\r\n\r\n" },
	{ msg_encap, "BODY[1.2]", NULL },
	/* a multipart without parts: 1 is its body (BODYSTRUCTURE's made-up part) */
	{ msg_noparts, "BODY[2.1]", "raw" },
	{ msg_noparts, "BODY[2]", "raw" },
	{ msg_noparts, "BODY[2.2]", NULL },
	{ "Content-Type: multipart/mixed\n\nx\n", "BODY[1]", "x\r\n" },
};

/* ---- the pipeline as the daemon runs it ---- */

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
	s->data[s->len] = '\0';
	return 0;
}

/* Feed raw[off..off+size) in chunks of step. */
static void run_filter(const struct imap_fetch_section *sec, const char *raw, uint64_t off,
		       uint64_t size, size_t step, struct imap_window *w)
{
	struct imap_hdrfilter f;
	imap_hdrfilter_init(&f, sec->fields, sec->nfields,
			    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT, w);
	for (uint64_t i = 0; i < size; i += step)
		CHECK(imap_hdrfilter_feed(&f, raw + off + i, size - i < step ? size - i : step) == 0);
	CHECK(imap_hdrfilter_finish(&f) == 0);
}

/* Fetch a section of msg; returns the octets sent (and *announced_r, the literal's
 * size).  *found_r: the section exists. */
static struct sbuf fetch(const char *msg, size_t len, const struct imap_fetch_section *sec,
			 size_t step, uint64_t *announced_r, bool *found_r)
{
	struct mime_parser *p = mime_parser_new();
	mime_parser_feed(p, msg, len);
	struct mime_part *root;
	mime_parser_finish(&p, &root, NULL);
	struct imap_section_plan plan;
	const char *error;
	struct sbuf out = { NULL, 0 };
	CHECK(imap_section_resolve(sec, root, &plan, &error) == 0);
	*found_r = plan.found;
	*announced_r = 0;
	if (plan.found) {
		uint64_t full = plan.size_crlf;
		if (plan.filter) {
			struct imap_window count;
			imap_window_init(&count, 0, UINT64_MAX, NULL, NULL);
			run_filter(sec, msg, plan.offset, plan.size, 1, &count);
			full = count.total;
		}
		uint64_t announced = imap_section_partial_size(sec, full);
		struct imap_window w;
		imap_window_init(&w, sec->partial ? sec->offset : 0, announced, sink, &out);
		if (plan.filter) {
			run_filter(sec, msg, plan.offset, plan.size, step, &w);
		} else {
			struct imap_window_crlf o;
			imap_window_crlf_init(&o, &w);
			for (uint64_t i = 0; i < plan.size; i += step)
				CHECK(imap_window_crlf_feed(&o, msg + plan.offset + i,
							 plan.size - i < step ? plan.size - i : step) == 0);
			CHECK(w.total == full);  /* the tree's CRLF size is the real one */
		}
		CHECK(w.left == 0);              /* no padding was needed */
		CHECK(imap_window_pad(&w) == 0);
		*announced_r = announced;
	}
	mime_part_free(&root);
	if (out.data == NULL)
		out.data = calloc(1, 1);
	return out;
}

static void parse_sec(const char *s, struct imap_fetch_section *sec)
{
	const char *error;
	int r = imap_fetch_section_parse(s, strlen(s), sec, &error);
	CHECK(r == 0);
	if (r < 0)
		fprintf(stderr, "cannot parse %s: %s\n", s, error);
}

static void run_cases(void)
{
	for (size_t i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		const struct scase *c = &scases[i];
		struct imap_fetch_section sec;
		parse_sec(c->sec, &sec);
		for (size_t step = 1; step <= 4096; step *= 64) {
			uint64_t announced;
			bool found;
			struct sbuf out = fetch(c->msg, strlen(c->msg), &sec, step, &announced,
						&found);
			if (c->out == NULL) {
				CHECK(!found);
				CHECK(out.len == 0);
			} else {
				CHECK(found);
				CHECK_STR(out.data, c->out);
				CHECK(announced == out.len);
			}
			free(out.data);
		}
	}
}

/* ---- HEADER.FIELDS filter ---- */

struct fcase {
	const char *hdr;
	const char *sec;
	const char *out;
};

static const char hdr1[] =
	"From: a@b\n"
	"subject: one\n"
	"\tfolded\n"
	" twice\n"
	"To: c@d\r\n"
	"Subject : spaced\n"
	"X-Long-Name-Here: v\n"
	"no colon line\n"
	"FROM: again\n"
	"\n"
	"Subject: in the body\n";

static const struct fcase fcases[] = {
	{ hdr1, "BODY[HEADER.FIELDS (SUBJECT)]",
	  "subject: one\r\n\tfolded\r\n twice\r\nSubject : spaced\r\n\r\n" },
	{ hdr1, "BODY[HEADER.FIELDS (from to)]",
	  "From: a@b\r\nTo: c@d\r\nFROM: again\r\n\r\n" },
	{ hdr1, "BODY[HEADER.FIELDS (x-long-name-here)]", "X-Long-Name-Here: v\r\n\r\n" },
	{ hdr1, "BODY[HEADER.FIELDS.NOT (Subject From)]",
	  "To: c@d\r\nX-Long-Name-Here: v\r\nno colon line\r\n\r\n" },
	{ hdr1, "BODY[HEADER.FIELDS (Nothing)]", "\r\n" },
	{ hdr1, "BODY[HEADER.FIELDS (Subj)]", "\r\n" },  /* a prefix is no match */
	/* no empty line: the header is all there is; a last line without line end */
	{ "A: 1\nB: 2", "BODY[HEADER.FIELDS (B)]", "B: 2\r\n\r\n" },
	{ "A: 1\nB", "BODY[HEADER.FIELDS.NOT (A)]", "B\r\n\r\n" },
	/* a lone CR inside a value is passed on as it is */
	{ "A: x\ry\r\n\r\n", "BODY[HEADER.FIELDS (A)]", "A: x\ry\r\n\r\n" },
	/* a first line that starts with white space belongs to no field */
	{ " lead\nA: 1\n\n", "BODY[HEADER.FIELDS (A)]", "A: 1\r\n\r\n" },
	{ " lead\nA: 1\n\n", "BODY[HEADER.FIELDS.NOT (A)]", " lead\r\n\r\n" },
};

static void run_filters(void)
{
	for (size_t i = 0; i < sizeof(fcases) / sizeof(fcases[0]); i++) {
		const struct fcase *c = &fcases[i];
		struct imap_fetch_section sec;
		parse_sec(c->sec, &sec);
		for (size_t step = 1; step <= 4096; step *= 4) {
			uint64_t announced;
			bool found;
			struct sbuf out = fetch(c->hdr, strlen(c->hdr), &sec, step, &announced,
						&found);
			CHECK(found);
			CHECK_STR(out.data, c->out);
			CHECK(announced == out.len);
			free(out.data);
		}
	}
	/* a name longer than the filter's buffer matches nothing, is kept by .NOT */
	char big[1200];
	memset(big, 'N', 600);
	memcpy(big + 600, ": v\nA: 1\n\n", 11);
	struct imap_window w;
	struct sbuf out = { NULL, 0 };
	imap_window_init(&w, 0, UINT64_MAX, sink, &out);
	static const char *const names[] = { "A" };
	struct imap_hdrfilter f;
	imap_hdrfilter_init(&f, names, 1, true, &w);
	CHECK(imap_hdrfilter_feed(&f, big, strlen(big)) == 0);
	CHECK(imap_hdrfilter_finish(&f) == 0);
	CHECK(out.len == 600 + 5 + 2 && memcmp(out.data + 600, ": v\r\n\r\n", 7) == 0);
	free(out.data);
}

/* ---- partials against the brute-force reference ---- */

static char *ref_crlf(const char *s, size_t len, size_t *out_len)
{
	char *r = malloc(2 * len + 1);
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			r[k++] = '\r';
		r[k++] = s[i];
	}
	*out_len = k;
	return r;
}

static const char msg_mixed[] =
	"Subject: mixed\r\nContent-Type: multipart/mixed; boundary=b\n\n"
	"--b\r\n\r\nA\nB\r\nC\rD\n\n--b\nContent-Type: text/plain\r\n\r\n\r\nx\n--b--\r\nend";

static void run_partials(void)
{
	static const char *const msgs[] = { msg_tree, msg_single, msg_encap, msg_mixed };
	static const char *const secs[] = {
		"BODY[]", "BODY[HEADER]", "BODY[TEXT]", "BODY[1]", "BODY[2]", "BODY[1.MIME]",
		"BODY[3.TEXT]", "BODY[HEADER.FIELDS (Subject Content-Type)]",
	};
	static const uint64_t counts[] = { 1, 2, 3, 7, 100, UINT64_MAX / 2 };
	for (size_t m = 0; m < sizeof(msgs) / sizeof(msgs[0]); m++) {
		for (size_t s = 0; s < sizeof(secs) / sizeof(secs[0]); s++) {
			struct imap_fetch_section sec;
			parse_sec(secs[s], &sec);
			uint64_t ann;
			bool found;
			/* the whole section: compared with the reference where it is a range */
			struct sbuf whole = fetch(msgs[m], strlen(msgs[m]), &sec, 4096, &ann, &found);
			if (strcmp(secs[s], "BODY[]") == 0) {
				size_t rl;
				char *ref = ref_crlf(msgs[m], strlen(msgs[m]), &rl);
				CHECK(whole.len == rl && memcmp(whole.data, ref, rl) == 0);
				free(ref);
			}
			for (uint64_t origin = 0; origin <= whole.len + 2; origin++) {
				for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
					struct imap_fetch_section ps = sec;
					ps.partial = true;
					ps.offset = origin;
					ps.length = counts[k];
					struct sbuf part = fetch(msgs[m], strlen(msgs[m]), &ps,
								 origin % 5 + 1, &ann, &found);
					uint64_t want = origin >= whole.len ? 0 :
						whole.len - origin < counts[k] ? whole.len - origin :
						counts[k];
					CHECK(part.len == want && ann == want);
					CHECK(want == 0 || memcmp(part.data, whole.data + origin,
								  (size_t)want) == 0);
					free(part.data);
				}
			}
			free(whole.data);
		}
	}
}

/* ---- names, window ---- */

static void run_names(void)
{
	static const struct { const char *in, *out; } n[] = {
		{ "BODY.PEEK[1.HEADER.FIELDS (From X-Y)]<0.10>",
		  "BODY[1.HEADER.FIELDS (From X-Y)]<0>" },
		{ "BODY[]", "BODY[]" },
		{ "BODY[]<5.10>", "BODY[]<5>" },
		{ "BODY[4.2.2.MIME]", "BODY[4.2.2.MIME]" },
		{ "BODY[TEXT]", "BODY[TEXT]" },
		{ "BINARY.PEEK[1.2]<3.4>", "BINARY[1.2]<3>" },
		{ "BINARY.SIZE[1]", "BINARY.SIZE[1]" },
		{ "BODY[HEADER.FIELDS.NOT (A)]", "BODY[HEADER.FIELDS.NOT (A)]" },
	};
	for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
		struct imap_fetch_section sec;
		parse_sec(n[i].in, &sec);
		struct imap_buf b;
		imap_buf_init(&b, 1024);
		CHECK(imap_section_write_name(&b, &sec) == 0);
		CHECK_STR(b.data, n[i].out);
		imap_buf_free(&b);
	}
	/* the window pads a short source with spaces to the announced size */
	struct sbuf out = { NULL, 0 };
	struct imap_window w;
	imap_window_init(&w, 2, 6, sink, &out);
	CHECK(imap_window_put(&w, "abcd", 4) == 0);
	CHECK(w.left == 4 && w.total == 4);
	CHECK(imap_window_pad(&w) == 0);
	CHECK(out.len == 6 && memcmp(out.data, "cd    ", 6) == 0);
	free(out.data);
	/* BINARY with a HEADER section is refused by the resolver too */
	struct imap_fetch_section sec;
	memset(&sec, 0, sizeof(sec));
	sec.kind = IMAP_FETCH_BINARY;
	sec.text = IMAP_SECTION_TEXT;
	struct mime_part *root;
	struct mime_parser *p = mime_parser_new();
	mime_parser_finish(&p, &root, NULL);
	struct imap_section_plan plan;
	const char *error = NULL;
	CHECK(imap_section_resolve(&sec, root, &plan, &error) == -1 && error != NULL);
	mime_part_free(&root);
}

int main(void)
{
	run_cases();
	run_filters();
	run_partials();
	run_names();
	return unit_done("test_imap_section");
}
