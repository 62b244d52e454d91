/* mime.c, mimeparam.c, mimeser.c: the part tree of the RFC 2046 examples, nested
 * multiparts, message/rfc822 inside a multipart and inside a digest, a missing close
 * delimiter, an outer boundary ending inner parts, boundary-like lines, a header cut by
 * a boundary, the limits at and past their maximum; every message fed whole, byte by
 * byte and in chunks with identical trees; its CRLF form giving the same CRLF sizes;
 * Content-Type / -Disposition / RFC 2231 parameters; serialisation round trips and
 * hostile serialised bytes refused. */
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/mime.h"
#include "unit.h"

struct ep {
	int depth;
	const char *type;    /* "type/subtype" */
	const char *hdr;     /* the header's bytes */
	const char *body;    /* the body's bytes */
	int lines;
};

struct mcase {
	const char *name;
	const char *in;
	struct ep parts[10];
};

static const struct mcase cases[] = {
	{ "simple", "Subject: hi\n\nbody\n", {
		{ 0, "text/plain", "Subject: hi\n\n", "body\n", 1 } } },
	{ "no body", "Subject: hi\n", {
		{ 0, "text/plain", "Subject: hi\n", "", 0 } } },
	{ "no header", "\nbody", {
		{ 0, "text/plain", "\n", "body", 1 } } },
	{ "empty", "", { { 0, "text/plain", "", "", 0 } } },
	{ "rfc2046 5.1.1",
	  "From: Nathaniel Borenstein <nsb@bellcore.com>\n"
	  "To: Ned Freed <ned@innosoft.com>\n"
	  "Date: Sun, 21 Mar 1993 23:56:48 -0800 (PST)\n"
	  "Subject: Sample message\n"
	  "MIME-Version: 1.0\n"
	  "Content-type: multipart/mixed; boundary=\"simple boundary\"\n"
	  "\n"
	  "This is the preamble.  It is to be ignored, though it\n"
	  "is a handy place for composition agents to include an\n"
	  "explanatory note to non-MIME conformant readers.\n"
	  "\n"
	  "--simple boundary\n"
	  "\n"
	  "This is implicitly typed plain US-ASCII text.\n"
	  "It does NOT end with a linebreak.\n"
	  "--simple boundary\n"
	  "Content-type: text/plain; charset=us-ascii\n"
	  "\n"
	  "This is explicitly typed plain US-ASCII text.\n"
	  "It DOES end with a linebreak.\n"
	  "\n"
	  "--simple boundary--\n"
	  "\n"
	  "This is the epilogue.  It is also to be ignored.\n", {
		{ 0, "multipart/mixed", NULL, NULL, -1 },
		{ 1, "text/plain", "\n", "This is implicitly typed plain US-ASCII text.\n"
		  "It does NOT end with a linebreak.", 2 },
		{ 1, "text/plain", "Content-type: text/plain; charset=us-ascii\n\n",
		  "This is explicitly typed plain US-ASCII text.\n"
		  "It DOES end with a linebreak.\n", 2 } } },
	{ "nested and message/rfc822",
	  "Content-Type: multipart/mixed; boundary=outer\n"
	  "\n"
	  "--outer\n"
	  "Content-Type: multipart/alternative; boundary=inner\n"
	  "\n"
	  "--inner\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "plain\n"
	  "--inner\n"
	  "Content-Type: text/html\n"
	  "\n"
	  "<p>html</p>\n"
	  "--inner--\n"
	  "--outer\n"
	  "Content-Type: message/rfc822\n"
	  "\n"
	  "Subject: inside\n"
	  "Content-Type: multipart/mixed; boundary=x\n"
	  "\n"
	  "--x\n"
	  "\n"
	  "a\n"
	  "--x--\n"
	  "--outer--\n", {
		{ 0, "multipart/mixed", NULL, NULL, -1 },
		{ 1, "multipart/alternative", "Content-Type: multipart/alternative; "
		  "boundary=inner\n\n", "--inner\nContent-Type: text/plain\n\nplain\n"
		  "--inner\nContent-Type: text/html\n\n<p>html</p>\n--inner--", 9 },
		{ 2, "text/plain", "Content-Type: text/plain\n\n", "plain", 1 },
		{ 2, "text/html", "Content-Type: text/html\n\n", "<p>html</p>", 1 },
		{ 1, "message/rfc822", "Content-Type: message/rfc822\n\n",
		  "Subject: inside\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\n"
		  "a\n--x--", 7 },
		{ 2, "multipart/mixed", "Subject: inside\nContent-Type: multipart/mixed; "
		  "boundary=x\n\n", "--x\n\na\n--x--", 4 },
		{ 3, "text/plain", "\n", "a", 1 } } },
	{ "outer boundary ends inner parts",
	  "Content-Type: multipart/mixed; boundary=outer\n\n"
	  "--outer\n"
	  "Content-Type: multipart/mixed; boundary=inner\n\n"
	  "--inner\n\nx\n"
	  "--outer\n\ny\n"
	  "--outer--\n", {
		{ 0, "multipart/mixed", NULL, NULL, -1 },
		{ 1, "multipart/mixed", "Content-Type: multipart/mixed; boundary=inner\n\n",
		  "--inner\n\nx", 3 },
		{ 2, "text/plain", "\n", "x", 1 },
		{ 1, "text/plain", "\n", "y", 1 } } },
	{ "no close delimiter at the end",
	  "Content-Type: multipart/mixed; boundary=b\n\npre\n--b\n\nlast\n", {
		{ 0, "multipart/mixed", NULL, "pre\n--b\n\nlast\n", 4 },
		{ 1, "text/plain", "\n", "last\n", 1 } } },
	{ "boundary-like lines",
	  "Content-Type: multipart/mixed; boundary=ab\n\n"
	  "--ab\n"
	  "Content-Type: multipart/mixed; boundary=abcd\n\n"
	  "--abcd\n\nin1\n--abcd--\n"
	  "--ab\n\nx --ab\n--a\n-ab\n- -ab\n"
	  "--ab--\n", {
		{ 0, "multipart/mixed", NULL, NULL, -1 },
		{ 1, "multipart/mixed", "Content-Type: multipart/mixed; boundary=abcd\n\n",
		  "--abcd\n\nin1\n--abcd--", 4 },
		{ 2, "text/plain", "\n", "in1", 1 },
		{ 1, "text/plain", "\n", "x --ab\n--a\n-ab\n- -ab", 4 } } },
	{ "digest",
	  "Content-Type: multipart/digest; boundary=d\n\n"
	  "--d\n\nSubject: one\n\nbody1\n"
	  "--d\nContent-Type: text/plain\n\nnot a message\n"
	  "--d--\n", {
		{ 0, "multipart/digest", NULL, NULL, -1 },
		{ 1, "message/rfc822", "\n", "Subject: one\n\nbody1", 3 },
		{ 2, "text/plain", "Subject: one\n\n", "body1", 1 },
		{ 1, "text/plain", "Content-Type: text/plain\n\n", "not a message", 1 } } },
	{ "transport padding, header cut by a boundary",
	  "Content-Type: multipart/mixed; boundary=b\n\n"
	  "--b  \t\nContent-Type: text/html\n"
	  "--b\n\nz\n"
	  "--b-- \nepilogue\n", {
		{ 0, "multipart/mixed", NULL, NULL, -1 },
		{ 1, "text/html", "Content-Type: text/html", "", 0 },
		{ 1, "text/plain", "\n", "z", 1 } } },
	{ "empty parts, back to back boundaries",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\n\n--b--", {
		{ 0, "multipart/mixed", NULL, "--b\n--b\n\n\n--b--", 5 },
		{ 1, "text/plain", "", "", 0 },
		{ 1, "text/plain", "\n", "", 0 } } },
	{ "empty part before an outer boundary",
	  "Content-Type: multipart/mixed; boundary=o\n\n"
	  "--o\nContent-Type: multipart/mixed; boundary=i\n\n--i\n--o--\n", {
		{ 0, "multipart/mixed", NULL, NULL, -1 },
		{ 1, "multipart/mixed", "Content-Type: multipart/mixed; boundary=i\n\n",
		  "--i\n", 1 },
		{ 2, "text/plain", "", "", 0 } } },
	{ "base64 message/rfc822 is a leaf",
	  "Content-Type: message/rfc822\nContent-Transfer-Encoding: BASE64\n\nU3ViamVjdDogeA==\n", {
		{ 0, "message/rfc822", NULL, "U3ViamVjdDogeA==\n", 1 } } },
	{ "multipart without boundary is a leaf",
	  "Content-Type: multipart/mixed\n\n--x\n\ny\n", {
		{ 0, "multipart/mixed", NULL, "--x\n\ny\n", 3 } } },
	{ "boundary at the very start, message ends in a boundary line",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nq\n--b", {
		{ 0, "multipart/mixed", NULL, "--b\n\nq\n--b", 4 },
		{ 1, "text/plain", "\n", "q", 1 } } },
};

static struct mime_part *parse(const char *in, size_t len, size_t step,
			       struct mail_envelope_fields **env_r)
{
	struct mime_parser *p = mime_parser_new();
	struct mime_part *root;
	for (size_t i = 0; i < len;) {
		size_t n = step == 0 ? len - i : step + i % 5 * (step > 1);
		if (n > len - i)
			n = len - i;
		mime_parser_feed(p, in + i, n);
		i += n;
	}
	mime_parser_finish(&p, &root, env_r);
	return root;
}

static bool bytes_eq(const char *in, uint64_t off, uint64_t size, const char *want)
{
	return want == NULL || (strlen(want) == size && memcmp(in + off, want, size) == 0);
}

/* Compare the tree with the expected parts (preorder). */
static void check_tree(const struct mcase *t, const struct mime_part *part, int depth,
		       unsigned *i)
{
	for (; part != NULL; part = part->next) {
		const struct ep *e = &t->parts[*i];
		char type[128];
		snprintf(type, sizeof(type), "%s/%s", part->type, part->subtype);
		bool ok = e->type != NULL && e->depth == depth && strcmp(e->type, type) == 0 &&
			bytes_eq(t->in, part->hdr_offset, part->hdr_size, e->hdr) &&
			bytes_eq(t->in, part->body_offset, part->body_size, e->body) &&
			(e->lines < 0 || (uint64_t)e->lines == part->body_lines) &&
			part->body_offset == part->hdr_offset + part->hdr_size;
		if (!ok)
			fprintf(stderr, "%s: part %u (%s depth %d) differs: hdr %llu+%llu "
				"body %llu+%llu lines %llu\n", t->name, *i, type, depth,
				(unsigned long long)part->hdr_offset,
				(unsigned long long)part->hdr_size,
				(unsigned long long)part->body_offset,
				(unsigned long long)part->body_size,
				(unsigned long long)part->body_lines);
		CHECK(ok);
		(*i)++;
		if (*i >= 10)
			return;
		check_tree(t, part->children, depth + 1, i);
	}
}

static char *to_crlf(const char *in, size_t len, size_t *len_r)
{
	char *out = xmalloc(2 * len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
	}
	*len_r = o;
	return out;
}

/* The LF form's CRLF sizes are the CRLF form's sizes; shape and lines are the same. */
static bool crlf_same(const struct mime_part *lf, const struct mime_part *cr)
{
	for (; lf != NULL && cr != NULL; lf = lf->next, cr = cr->next) {
		if (lf->hdr_size_crlf != cr->hdr_size || cr->hdr_size_crlf != cr->hdr_size ||
		    lf->body_size_crlf != cr->body_size ||
		    cr->body_size_crlf != cr->body_size || lf->body_lines != cr->body_lines ||
		    strcmp(lf->type, cr->type) != 0 || lf->flags != cr->flags ||
		    !crlf_same(lf->children, cr->children))
			return false;
	}
	return lf == NULL && cr == NULL;
}

static void roundtrip(const struct mime_part *root)
{
	size_t len;
	unsigned char *ser = mimeser_parts_write(root, &len);
	struct mime_part *back = NULL;
	const char *error = NULL;
	CHECK(mimeser_parts_read(ser, len, &back, &error) == 0);
	CHECK(back != NULL && mimeser_parts_equal(root, back));
	/* every truncation is refused (of a large form, about 1000 of them) */
	for (size_t n = 0; n < len; n += len > 1000 ? len / 1000 : 1) {
		struct mime_part *t = NULL;
		if (mimeser_parts_read(ser, n, &t, &error) == 0) {
			CHECK(0);
			mime_part_free(&t);
		}
	}
	mime_part_free(&back);
	free(ser);
}

static void test_cases(void)
{
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct mcase *t = &cases[c];
		size_t len = strlen(t->in);
		struct mail_envelope_fields *env;
		struct mime_part *root = parse(t->in, len, 0, &env);
		unsigned i = 0;
		check_tree(t, root, 0, &i);
		CHECK(i < 10 && t->parts[i].type == NULL);
		CHECK(root->hdr_size + root->body_size == len);
		static const size_t steps[] = { 1, 2, 7 };
		for (size_t s = 0; s < 3; s++) {
			struct mail_envelope_fields *env2;
			struct mime_part *r2 = parse(t->in, len, steps[s], &env2);
			CHECK(mimeser_parts_equal(root, r2));
			CHECK(mimeser_envelope_equal(env, env2));
			mime_part_free(&r2);
			mime_envelope_free(&env2);
		}
		size_t clen;
		char *crlf = to_crlf(t->in, len, &clen);
		struct mime_part *rc = parse(crlf, clen, 0, NULL);
		CHECK(crlf_same(root, rc));
		CHECK(root->hdr_size_crlf + root->body_size_crlf == clen);
		struct mime_part *rc1 = parse(crlf, clen, 1, NULL);
		CHECK(mimeser_parts_equal(rc, rc1));
		mime_part_free(&rc1);
		mime_part_free(&rc);
		free(crlf);
		roundtrip(root);
		mime_part_free(&root);
		mime_envelope_free(&env);
	}
}

/* The extension data BODYSTRUCTURE needs, and the envelope fields. */
static void test_fields(void)
{
	const char *in =
		"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
		"Subject: =?utf-8?q?caf=C3=A9?=\n"
		" folded\n"
		"From: a@example.org\nTo: b@example.org,\n c@example.org\n"
		"Message-ID: <id@x>\nSubject: second subject is ignored\n"
		"MIME-Version: 1.0\n"
		"Content-Type: multipart/mixed; boundary=\"=_b\"\n\n"
		"--=_b\n"
		"Content-Type: TEXT/Plain; CharSet=\"ISO-8859-1\"; format=flowed\n"
		"Content-Transfer-Encoding: Quoted-Printable (comment)\n"
		"Content-ID: <part1@x>\n"
		"Content-Description: the text\n"
		"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
		"Content-Disposition: inline; filename*=utf-8''caf%C3%A9.txt\n"
		"Content-Language: en, de (German)\n"
		"Content-Location: http://example.org/a\n"
		"\nhello=\n"
		"--=_b\n"
		"Content-Type: message/rfc822\n\n"
		"Subject: inner\nFrom: c@d\n\ninner body\n"
		"--=_b--\n";
	struct mail_envelope_fields *env;
	struct mime_part *root = parse(in, strlen(in), 0, &env);
	CHECK(env != NULL);
	CHECK_STR(env->value[ENV_SUBJECT], "=?utf-8?q?caf=C3=A9?= folded");
	CHECK_STR(env->value[ENV_TO], "b@example.org, c@example.org");
	CHECK_STR(env->value[ENV_MESSAGE_ID], "<id@x>");
	CHECK_STR(env->value[ENV_DATE], "Mon, 1 Jan 2024 00:00:00 +0000");
	CHECK(env->value[ENV_CC] == NULL && env->value[ENV_SENDER] == NULL);
	CHECK(root->n_children == 2);
	const struct mime_part *t = root->children;
	CHECK_STR(t->type, "text");
	CHECK_STR(t->subtype, "plain");
	CHECK_STR(mimeparam_get(t->type_params, t->n_type_params, "charset"), "ISO-8859-1");
	CHECK_STR(mimeparam_get(t->type_params, t->n_type_params, "format"), "flowed");
	CHECK_STR(t->encoding, "quoted-printable");
	CHECK_STR(t->id, "<part1@x>");
	CHECK_STR(t->description, "the text");
	CHECK_STR(t->md5, "Q2hlY2sgSW50ZWdyaXR5IQ==");
	CHECK_STR(t->disposition, "inline");
	CHECK(t->n_disp_params == 1);
	CHECK_STR(t->disp_params[0].name, "filename");
	CHECK_STR(t->disp_params[0].value, "caf\xc3\xa9.txt");
	CHECK_STR(t->disp_params[0].charset, "utf-8");
	CHECK(t->disp_params[0].language == NULL);
	CHECK(t->n_languages == 2);
	CHECK_STR(t->languages[0], "en");
	CHECK_STR(t->languages[1], "de");
	CHECK_STR(t->location, "http://example.org/a");
	const struct mime_part *m = t->next;
	CHECK((m->flags & MIME_PART_MESSAGE) != 0 && m->n_children == 1);
	CHECK(m->children->envelope != NULL);
	CHECK_STR(m->children->envelope->value[ENV_SUBJECT], "inner");
	CHECK_STR(m->children->envelope->value[ENV_FROM], "c@d");
	/* the default type of a part without Content-Type */
	CHECK((m->children->flags & MIME_PART_DEFAULT_TYPE) != 0);
	CHECK_STR(mimeparam_get(m->children->type_params, m->children->n_type_params,
				"charset"), "us-ascii");
	roundtrip(root);
	mime_part_free(&root);
	mime_envelope_free(&env);

	/* an invalid Content-Type is the default; the first valid one counts */
	root = parse("Content-Type: garbage\nContent-Type: text/html\n\nx", 48, 0, NULL);
	CHECK_STR(root->type, "text");
	CHECK_STR(root->subtype, "html");
	CHECK((root->flags & MIME_PART_DEFAULT_TYPE) == 0);
	mime_part_free(&root);
	root = parse("Content-Type: garbage\n\nx", 24, 0, NULL);
	CHECK_STR(root->subtype, "plain");
	CHECK((root->flags & MIME_PART_DEFAULT_TYPE) != 0 && root->n_type_params == 1);
	mime_part_free(&root);
	/* a multipart whose boundary never appears has no children (imapd must still give
	 * BODYSTRUCTURE a body: see mime.h) */
	root = parse("Content-Type: multipart/mixed; boundary=q\n\nno parts\n", 52, 0, NULL);
	CHECK((root->flags & MIME_PART_MULTIPART) != 0 && root->n_children == 0);
	CHECK(root->body_size == 9 && root->body_lines == 1);
	roundtrip(root);
	mime_part_free(&root);
}

struct pcase {
	const char *in;
	int ret;
	const char *type;           /* "type/subtype" */
	const char *params;         /* "name=value[charset'lang];..." */
};

static const struct pcase pcases[] = {
	{ "text/plain", 0, "text/plain", "" },
	{ "text/plain; charset=\"utf-8\"", 0, "text/plain", "charset=utf-8;" },
	{ " TEXT / Plain ; CHARSET = us-ascii (Plain text)", 0, "text/plain",
	  "charset=us-ascii;" },
	{ "text/plain charset=x", 0, "text/plain", "charset=x;" },
	{ "multipart/mixed; boundary=----=_Part_1_2.3", 0, "multipart/mixed",
	  "boundary=----=_Part_1_2.3;" },
	{ "multipart/mixed; boundary=\"a\\\"b\"", 0, "multipart/mixed", "boundary=a\"b;" },
	{ "application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; "
	  "title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"", 0,
	  "application/x-stuff", "title=This is even more ***fun*** isn't it![us-ascii'en];" },
	{ "application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A", 0,
	  "application/x-stuff", "title=This is ***fun***[us-ascii'en-us];" },
	{ "message/external-body; access-type=URL; URL*0=\"ftp://\"; "
	  "URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"", 0,
	  "message/external-body",
	  "access-type=URL;url=ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar;" },
	{ "a/b; n*1=second; n*0=first", 0, "a/b", "n=firstsecond;" },
	{ "a/b; n*1=orphan", 0, "a/b", "" },
	{ "a/b; n*0=x; n*2=gap", 0, "a/b", "n=x;" },
	{ "a/b; n=1; N=2", 0, "a/b", "n=1;" },
	{ "a/b; x*=bad%zz%4", 0, "a/b", "x=bad%zz%4;" },
	{ "a/b; ;; junk; =v; k=\"unterminated", 0, "a/b", "k=unterminated;" },
	{ "a/b; n*01=odd", 0, "a/b", "n*01=odd;" },
	{ "text", -1, NULL, NULL },
	{ "text/", -1, NULL, NULL },
	{ "/plain", -1, NULL, NULL },
	{ "", -1, NULL, NULL },
	{ "(comment) text/plain", 0, "text/plain", "" },
};

static void test_params(void)
{
	for (size_t c = 0; c < sizeof(pcases) / sizeof(pcases[0]); c++) {
		const struct pcase *t = &pcases[c];
		char *type = NULL, *sub = NULL;
		struct mime_param *ps = NULL;
		unsigned n = 0;
		int ret = mimeparam_parse_type(t->in, strlen(t->in), &type, &sub, &ps, &n);
		CHECK(ret == t->ret);
		if (ret == 0 && t->ret == 0) {
			char got[512] = "", one[256];
			snprintf(one, sizeof(one), "%s/%s", type, sub);
			CHECK_STR(one, t->type);
			for (unsigned i = 0; i < n; i++) {
				if (ps[i].charset != NULL || ps[i].language != NULL)
					snprintf(one, sizeof(one), "%s=%s[%s'%s];", ps[i].name,
						 ps[i].value, ps[i].charset ? ps[i].charset : "",
						 ps[i].language ? ps[i].language : "");
				else
					snprintf(one, sizeof(one), "%s=%s;", ps[i].name, ps[i].value);
				strncat(got, one, sizeof(got) - strlen(got) - 1);
			}
			CHECK_STR(got, t->params);
		}
		free(type);
		free(sub);
		mimeparam_free(&ps, n);
	}
	/* MIME_MAX_PARAMS kept; a value cut at MIME_VALUE_MAX */
	char buf[8192];
	size_t o = (size_t)snprintf(buf, sizeof(buf), "a/b");
	for (int i = 0; i < MIME_MAX_PARAMS + 5; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "; p%d=%d", i, i);
	struct mime_param *ps = NULL;
	unsigned n = 0;
	char *type, *sub;
	CHECK(mimeparam_parse_type(buf, o, &type, &sub, &ps, &n) == 0);
	CHECK(n == MIME_MAX_PARAMS);
	free(type);
	free(sub);
	mimeparam_free(&ps, n);
	o = (size_t)snprintf(buf, sizeof(buf), "attachment; filename=");
	memset(buf + o, 'x', MIME_VALUE_MAX + 100);
	o += MIME_VALUE_MAX + 100;
	char *disp;
	CHECK(mimeparam_parse_disposition(buf, o, &disp, &ps, &n) == 0);
	CHECK_STR(disp, "attachment");
	CHECK(n == 1 && strlen(ps[0].value) == MIME_VALUE_MAX);
	free(disp);
	mimeparam_free(&ps, n);
}

/* Nesting: MIME_MAX_DEPTH levels parse; one more is an opaque leaf. */
static void test_depth(void)
{
	for (int extra = 0; extra <= 1; extra++) {
		int levels = MIME_MAX_DEPTH - 1 + extra; /* multiparts; the text leaf below */
		char *in = xmalloc(100 * (size_t)(levels + 2));
		size_t o = 0;
		for (int i = 0; i < levels; i++)
			o += (size_t)sprintf(in + o, "Content-Type: multipart/mixed; boundary=b%d\n"
					     "\n--b%d\n", i, i);
		o += (size_t)sprintf(in + o, "\ntext\n");
		struct mime_part *root = parse(in, o, 0, NULL);
		int depth = 0;
		const struct mime_part *p = root;
		while (p->children != NULL) {
			p = p->children;
			depth++;
		}
		if (extra == 0) {
			CHECK(depth == levels);
			CHECK(strcmp(p->type, "text") == 0 && p->body_size == 5);
		} else {
			CHECK(depth == MIME_MAX_DEPTH - 1);
			CHECK((p->flags & MIME_PART_OPAQUE) != 0);
		}
		roundtrip(root);
		mime_part_free(&root);
		free(in);
	}
}

/* Parts: MIME_MAX_PARTS - 1 parsed ones; the last slot is the rest of the message as
 * one opaque leaf, to the end. */
static void test_part_count(void)
{
	for (int extra = 0; extra <= 1; extra++) {
		int n = MIME_MAX_PARTS - 2 + extra; /* children of the root */
		char *in = xmalloc(16 * (size_t)n + 100);
		size_t o = (size_t)sprintf(in, "Content-Type: multipart/mixed; boundary=b\n\n");
		for (int i = 0; i < n; i++)
			o += (size_t)sprintf(in + o, "--b\n\n%d\n", i % 10);
		o += (size_t)sprintf(in + o, "--b--\n");
		struct mime_part *root = parse(in, o, 0, NULL);
		CHECK(mime_part_count(root) == (unsigned)n + 1);
		const struct mime_part *last = root->children;
		while (last->next != NULL)
			last = last->next;
		if (extra == 0) {
			CHECK(last->body_size == 1 && (last->flags & MIME_PART_OPAQUE) == 0);
		} else {
			CHECK((last->flags & MIME_PART_OPAQUE) != 0);
			CHECK(last->body_offset + last->body_size == o); /* to the end */
		}
		roundtrip(root);
		mime_part_free(&root);
		free(in);
	}
}

/* Serialised bytes are hostile: every single-byte change either reads back as a tree
 * that passes the checks (and serialises to the same bytes) or is refused; a few
 * targeted forgeries are refused. */
static void test_hostile(void)
{
	const char *in = cases[5].in;
	struct mime_part *root = parse(in, strlen(in), 0, NULL);
	size_t len;
	unsigned char *ser = mimeser_parts_write(root, &len);
	unsigned refused = 0;
	for (size_t i = 0; i < len; i++)
		for (int bit = 0; bit < 8; bit++) {
			unsigned char *b = xmalloc(len);
			memcpy(b, ser, len);
			b[i] ^= (unsigned char)(1 << bit);
			struct mime_part *t = NULL;
			const char *error;
			if (mimeser_parts_read(b, len, &t, &error) == 0) {
				size_t l2;
				unsigned char *s2 = mimeser_parts_write(t, &l2);
				CHECK(l2 == len && memcmp(s2, b, len) == 0);
				free(s2);
				mime_part_free(&t);
			} else {
				refused++;
			}
			free(b);
		}
	CHECK(refused > 0);
	const char *error;
	struct mime_part *t = NULL;
	unsigned char extra[4096];
	memcpy(extra, ser, len);
	extra[len] = 0;
	CHECK(mimeser_parts_read(extra, len + 1, &t, &error) == -1); /* trailing byte */
	static const unsigned char bad_version[] = { 2, 0 };
	CHECK(mimeser_parts_read(bad_version, 2, &t, &error) == -1);
	/* a leaf claiming a child; a huge varint; a string longer than the data */
	static const unsigned char leaf_child[] = { 1, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 1, 'b',
						    0, 0, 0, 0, 1 };
	CHECK(mimeser_parts_read(leaf_child, sizeof(leaf_child), &t, &error) == -1);
	static const unsigned char huge[] = { 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					      0x80, 0x80, 0x80, 0x01 };
	CHECK(mimeser_parts_read(huge, sizeof(huge), &t, &error) == -1);
	static const unsigned char longstr[] = { 1, 0, 0, 0, 0, 0, 0, 0, 100, 'a' };
	CHECK(mimeser_parts_read(longstr, sizeof(longstr), &t, &error) == -1);
	/* a good minimal leaf reads */
	static const unsigned char leaf[] = { 1, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 1, 'b', 0, 0, 0,
					      0, 0 };
	CHECK(mimeser_parts_read(leaf, sizeof(leaf), &t, &error) == 0);
	mime_part_free(&t);
	/* lines more than bytes */
	static const unsigned char lines[] = { 1, 0, 0, 0, 0, 1, 1, 2, 1, 'a', 1, 'b', 0, 0,
					       0, 0, 0 };
	CHECK(mimeser_parts_read(lines, sizeof(lines), &t, &error) == -1);
	free(ser);
	mime_part_free(&root);

	/* envelope */
	struct mail_envelope_fields env = { 0 }, *back = NULL;
	env.value[ENV_SUBJECT] = (char *)"hi\0there";
	env.len[ENV_SUBJECT] = 8;
	unsigned char *es = mimeser_envelope_write(&env, &len);
	CHECK(mimeser_envelope_read(es, len, &back, &error) == 0);
	CHECK(mimeser_envelope_equal(&env, back));
	mime_envelope_free(&back);
	for (size_t n = 0; n < len; n++)
		CHECK(mimeser_envelope_read(es, n, &back, &error) == -1);
	static const unsigned char unknown[] = { 1, 0x80, 0x08 };
	CHECK(mimeser_envelope_read(unknown, sizeof(unknown), &back, &error) == -1);
	free(es);
}

/* A message much larger than any buffer, fed in chunks: sizes right, memory bounded
 * (ASan would see an overflow; the tree holds no body bytes). */
static void test_large(void)
{
	const char *head = "Content-Type: multipart/mixed; boundary=z\n\n--z\n\n";
	struct mime_parser *p = mime_parser_new();
	char chunk[65536];
	memset(chunk, 'x', sizeof(chunk));
	for (size_t i = 63; i < sizeof(chunk); i += 64)
		chunk[i] = '\n';
	mime_parser_feed(p, head, strlen(head));
	for (int i = 0; i < 800; i++)   /* 50 MiB */
		mime_parser_feed(p, chunk, sizeof(chunk));
	mime_parser_feed(p, "--z--\n", 6);
	struct mime_part *root;
	mime_parser_finish(&p, &root, NULL);
	CHECK(root->n_children == 1);
	CHECK(root->children->body_size == 800ULL * 65536 - 1);
	CHECK(root->children->body_lines == 800ULL * 1024);
	CHECK(root->children->body_size_crlf == 800ULL * 65536 - 1 + 800 * 1024 - 1);
	mime_part_free(&root);
}

int main(void)
{
	test_cases();
	test_fields();
	test_params();
	test_depth();
	test_part_count();
	test_hostile();
	test_large();
	return unit_done("test_mime");
}
