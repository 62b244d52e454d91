/* dsn.c: who is notified (NOTIFY, its default, the null sender) as a table; every
 * action; RET=HDRS/FULL/none with the size limit and BINARYMIME; ENVID and ORCPT
 * round-trip; hostile diagnostic text (CR, LF, NUL, 8-bit, a header injection, 10,000
 * bytes); SMTPUTF8 -> message/global-delivery-status; the returned original normalised
 * (bare LF, lone CR, NUL, over-long lines); the reader fed whole and byte by byte gives
 * the same DSN; reader and writer failures; the DSN's own envelope.  Every DSN written
 * is checked for form (CRLF only, lines <= 998, no NUL) and parsed back with the repo's
 * own header.c and mime.c: the top header's fields, the multipart/report structure, and
 * the delivery-status field groups. */
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/header.h"
#include "mail/mime.h"
#include "spool/dsn.h"
#include "unit.h"

/* ---- memory reader and writer ---- */

struct mem_reader {
	const char *data;
	size_t len, pos, chunk;
	bool fail;
};

static ssize_t mem_read(void *ctx, void *buf, size_t size)
{
	struct mem_reader *m = ctx;
	if (m->fail)
		return -1;
	size_t n = m->len - m->pos;
	if (n > size)
		n = size;
	if (m->chunk != 0 && n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

struct mem_writer {
	char *buf;
	size_t len, alloc;
	bool fail;
};

static int mem_write(void *ctx, const void *data, size_t len)
{
	struct mem_writer *w = ctx;
	if (w->fail)
		return -1;
	if (w->len + len + 1 > w->alloc) {
		w->alloc = (w->len + len + 1) * 2;
		w->buf = xrealloc(w->buf, w->alloc);
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	w->buf[w->len] = '\0';
	return 0;
}

/* ---- the parsed DSN ---- */

#define MAXF 64
struct fields {
	unsigned n;
	char name[MAXF][40];
	char value[MAXF][1100];
	size_t value_len[MAXF];
	bool no_colon;
};

static void field_cb(void *ctx, const struct header_field *f)
{
	struct fields *fs = ctx;
	if (f->no_colon)
		fs->no_colon = true;
	if (fs->n >= MAXF)
		return;
	snprintf(fs->name[fs->n], sizeof(fs->name[0]), "%s", f->name);
	snprintf(fs->value[fs->n], sizeof(fs->value[0]), "%s", f->value);
	fs->value_len[fs->n] = f->value_len;
	fs->n++;
}

static const char *fget(const struct fields *fs, const char *name)
{
	for (unsigned i = 0; i < fs->n; i++)
		if (strcasecmp(fs->name[i], name) == 0)
			return fs->value[i];
	return NULL;
}

static unsigned fcount(const struct fields *fs, const char *name)
{
	unsigned c = 0;
	for (unsigned i = 0; i < fs->n; i++)
		c += strcasecmp(fs->name[i], name) == 0;
	return c;
}

/* Parse a header block at data[0..len); returns bytes consumed. */
static size_t parse_fields(const char *data, size_t len, struct fields *fs)
{
	struct header_parser *hp = header_parser_new(0);
	memset(fs, 0, sizeof(*fs));
	size_t used = header_parser_feed(hp, data, len, field_cb, fs);
	header_parser_finish(hp, field_cb, fs);
	header_parser_free(&hp);
	return used;
}

struct dsn_parsed {
	struct fields top;
	char type[3][64];              /* the parts' types "text/plain" */
	unsigned n_parts;
	char report_type[32];
	struct fields msg;             /* per-message fields */
	struct fields rcpt[8];         /* per-recipient groups */
	unsigned n_rcpt;
	char *returned;                /* the third part's body */
	size_t returned_len;
	char *text;                    /* the first part's body */
};

static void parsed_free(struct dsn_parsed *d)
{
	free(d->returned);
	free(d->text);
}

/* Check form and structure; false (with a message) if anything is off. */
static bool parse_dsn(const char *buf, size_t len, struct dsn_parsed *d)
{
	memset(d, 0, sizeof(*d));
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\0') {
			fprintf(stderr, "NUL at %zu\n", i);
			return false;
		}
		if (buf[i] == '\r') {
			if (i + 1 >= len || buf[i + 1] != '\n') {
				fprintf(stderr, "lone CR at %zu\n", i);
				return false;
			}
			i++;
			col = 0;
			continue;
		}
		if (buf[i] == '\n') {
			fprintf(stderr, "bare LF at %zu\n", i);
			return false;
		}
		if (++col > DSN_LINE_MAX) {
			fprintf(stderr, "line over 998 at %zu\n", i);
			return false;
		}
	}
	if (len < 2 || buf[len - 2] != '\r' || buf[len - 1] != '\n')
		return false;
	parse_fields(buf, len, &d->top);
	if (d->top.no_colon)
		return false;

	struct mime_parser *mp = mime_parser_new();
	struct mime_part *root;
	mime_parser_feed(mp, buf, len);
	mime_parser_finish(&mp, &root, NULL);
	bool ok = strcmp(root->type, "multipart") == 0 && strcmp(root->subtype, "report") == 0;
	const char *rt = mimeparam_get(root->type_params, root->n_type_params, "report-type");
	snprintf(d->report_type, sizeof(d->report_type), "%s", rt != NULL ? rt : "");
	unsigned i = 0;
	for (struct mime_part *c = root->children; c != NULL && i < 3; c = c->next, i++) {
		snprintf(d->type[i], sizeof(d->type[i]), "%s/%s", c->type, c->subtype);
		const char *body = buf + c->body_offset;
		size_t blen = (size_t)c->body_size;
		if (i == 0) {
			d->text = xmalloc(blen + 1);
			memcpy(d->text, body, blen);
			d->text[blen] = '\0';
		} else if (i == 1) {
			size_t used = parse_fields(body, blen, &d->msg);
			while (used < blen && d->n_rcpt < 8) {
				size_t u = parse_fields(body + used, blen - used, &d->rcpt[d->n_rcpt]);
				if (u == 0)
					break;
				if (d->rcpt[d->n_rcpt].n > 0)
					d->n_rcpt++;
				used += u;
			}
		} else {
			d->returned = xmalloc(blen + 1);
			memcpy(d->returned, body, blen);
			d->returned[blen] = '\0';
			d->returned_len = blen;
		}
	}
	d->n_parts = i;
	if (root->n_children != i)
		ok = false;
	mime_part_free(&root);
	return ok;
}

/* ---- fixtures ---- */

static const char original[] =
	"Received: from client.example.org by mx.example.net\r\n"
	"From: Ned <ned@example.org>\r\n"
	"To: bob@example.net\r\n"
	"Subject: lunch\r\n"
	"Message-ID: <abc@example.org>\r\n"
	"\r\n"
	"See you at noon.\r\n"
	"BODYMARK\r\n";

static struct envelope *make_env(const char *sender, unsigned notify)
{
	struct envelope *e = envelope_new();
	const char *err;
	memcpy(e->id, "0PZ4K8M2T7Q3", ENVELOPE_ID_LEN + 1);
	memcpy(e->nonce, "9F86D081884C7D65", ENVELOPE_NONCE_LEN + 1);
	e->arrival = 1764288000;
	e->size = sizeof(original) - 1;
	if (envelope_set_sender(e, sender, &err) == -1)
		abort();
	if (envelope_add_rcpt(e, "bob@example.net", ENVELOPE_REMOTE, notify, NULL, &err) == -1)
		abort();
	return e;
}

struct run {
	struct mem_writer w;
	struct dsn_result res;
	struct dsn_parsed d;
	int rc;
	const char *err;
};

static void run_dsn(struct run *r, const struct envelope *env, const struct dsn_rcpt *rc,
		    size_t n, const char *orig, size_t orig_len, size_t chunk)
{
	struct mem_reader m = { orig, orig_len, 0, chunk, false };
	struct dsn_params p = {
		.env = env, .rcpts = rc, .n_rcpts = n, .reporting_mta = "mx.example.org",
		.message_id_left = "0Q00000000001", .now = 1764300000,
		.read = orig != NULL ? mem_read : NULL, .read_ctx = &m,
		.write = mem_write, .write_ctx = &r->w, .boundary = "=_test_boundary",
	};
	memset(r, 0, sizeof(*r));
	r->rc = dsn_write(&p, &r->res, &r->err);
	if (r->rc == 0 && !parse_dsn(r->w.buf, r->w.len, &r->d)) {
		fprintf(stderr, "malformed DSN:\n%s\n", r->w.buf);
		r->rc = -2;
	}
}

static void run_free(struct run *r)
{
	free(r->w.buf);
	parsed_free(&r->d);
}

/* ---- tests ---- */

static void test_should_notify(void)
{
	static const struct {
		unsigned notify;
		bool failed, delayed, success;
	} t[] = {
		{ 0, true, true, false },              /* RFC 3461 4.1, 5.2.3 (c) */
		{ ENVELOPE_NOTIFY_NEVER, false, false, false },
		{ ENVELOPE_NOTIFY_SUCCESS, false, false, true },
		{ ENVELOPE_NOTIFY_FAILURE, true, false, false },
		{ ENVELOPE_NOTIFY_DELAY, false, true, false },
		{ ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE, true, false, true },
		{ ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY, true, true, false },
		{ ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_DELAY, false, true, true },
		{ ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY,
		  true, true, true },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct envelope *e = make_env("ned@example.org", t[i].notify);
		CHECK(dsn_should_notify(e, 0, DSN_FAILED) == t[i].failed);
		CHECK(dsn_should_notify(e, 0, DSN_DELAYED) == t[i].delayed);
		CHECK(dsn_should_notify(e, 0, DSN_DELIVERED) == t[i].success);
		CHECK(dsn_should_notify(e, 0, DSN_RELAYED) == t[i].success);
		CHECK(dsn_should_notify(e, 0, DSN_EXPANDED) == t[i].success);
		CHECK(!dsn_should_notify(e, 1, DSN_FAILED));          /* out of range */
		CHECK(!dsn_should_notify(e, 0, (enum dsn_action)7));
		envelope_free(&e);
		/* the null sender: never, whatever was asked (a bounce is not bounced) */
		e = make_env("", t[i].notify);
		CHECK(!dsn_should_notify(e, 0, DSN_FAILED));
		CHECK(!dsn_should_notify(e, 0, DSN_DELAYED));
		CHECK(!dsn_should_notify(e, 0, DSN_DELIVERED));
		envelope_free(&e);
	}
	CHECK(!dsn_should_notify(NULL, 0, DSN_FAILED));
}

static void test_actions(void)
{
	static const struct {
		enum dsn_action a;
		const char *status;      /* given */
		const char *expect;      /* written */
		const char *subject;
	} t[] = {
		{ DSN_FAILED, "5.1.1", "5.1.1", "Undelivered Mail Returned to Sender" },
		{ DSN_FAILED, "4.4.7", "4.4.7", "Undelivered Mail Returned to Sender" },
		{ DSN_FAILED, NULL, "5.0.0", "Undelivered Mail Returned to Sender" },
		{ DSN_FAILED, "2.0.0", "5.0.0", "Undelivered Mail Returned to Sender" },
		{ DSN_FAILED, "5.1.1\r\nX: y", "5.0.0", "Undelivered Mail Returned to Sender" },
		{ DSN_DELAYED, "4.4.1", "4.4.1", "Delayed Mail (still being retried)" },
		{ DSN_DELAYED, "5.1.1", "4.0.0", "Delayed Mail (still being retried)" },
		{ DSN_DELIVERED, NULL, "2.0.0", "Successful Mail Delivery Report" },
		{ DSN_RELAYED, "2.1.5", "2.1.5", "Successful Mail Delivery Report" },
		{ DSN_EXPANDED, "2.0.0", "2.0.0", "Successful Mail Delivery Report" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct envelope *e = make_env("ned@example.org", ENVELOPE_NOTIFY_SUCCESS |
					      ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY);
		struct dsn_rcpt rc = { .idx = 0, .action = t[i].a, .status = t[i].status,
				       .remote_mta = "mx.example.net",
				       .diagnostic = "550 5.1.1 <bob@example.net>: no such user",
				       .last_attempt = 1764290000, .retry_until = 1764720000 };
		struct run r;
		run_dsn(&r, e, &rc, 1, original, sizeof(original) - 1, 0);
		CHECK(r.rc == 0);
		if (r.rc != 0) {
			envelope_free(&e);
			run_free(&r);
			continue;
		}
		struct dsn_parsed *d = &r.d;
		CHECK_STR(fget(&d->top, "Subject"), t[i].subject);
		CHECK_STR(fget(&d->top, "From"), "Mail Delivery System <MAILER-DAEMON@mx.example.org>");
		CHECK_STR(fget(&d->top, "To"), "<ned@example.org>");
		CHECK_STR(fget(&d->top, "Auto-Submitted"), "auto-replied");
		CHECK_STR(fget(&d->top, "Message-ID"), "<0Q00000000001@mx.example.org>");
		CHECK_STR(fget(&d->top, "Date"), "Fri, 28 Nov 2025 03:20:00 +0000");
		CHECK_STR(fget(&d->top, "MIME-Version"), "1.0");
		CHECK_STR(d->report_type, "delivery-status");
		CHECK(d->n_parts == 3);
		CHECK_STR(d->type[0], "text/plain");
		CHECK_STR(d->type[1], "message/delivery-status");
		CHECK_STR(d->type[2], "text/rfc822-headers");
		CHECK_STR(fget(&d->msg, "Reporting-MTA"), "dns; mx.example.org");
		CHECK_STR(fget(&d->msg, "Arrival-Date"), "Fri, 28 Nov 2025 00:00:00 +0000");
		CHECK(fget(&d->msg, "Original-Envelope-Id") == NULL);
		CHECK(d->n_rcpt == 1);
		CHECK_STR(fget(&d->rcpt[0], "Final-Recipient"), "rfc822; bob@example.net");
		CHECK(fget(&d->rcpt[0], "Original-Recipient") == NULL);
		CHECK_STR(fget(&d->rcpt[0], "Action"), dsn_action_name(t[i].a));
		CHECK_STR(fget(&d->rcpt[0], "Status"), t[i].expect);
		CHECK_STR(fget(&d->rcpt[0], "Remote-MTA"), "dns; mx.example.net");
		CHECK_STR(fget(&d->rcpt[0], "Diagnostic-Code"),
			  "smtp; 550 5.1.1 <bob@example.net>: no such user");
		CHECK_STR(fget(&d->rcpt[0], "Last-Attempt-Date"), "Fri, 28 Nov 2025 00:33:20 +0000");
		if (t[i].a == DSN_DELAYED)
			CHECK_STR(fget(&d->rcpt[0], "Will-Retry-Until"),
				  "Wed, 03 Dec 2025 00:00:00 +0000");
		else
			CHECK(fget(&d->rcpt[0], "Will-Retry-Until") == NULL);
		CHECK(strstr(d->text, "bob@example.net") != NULL);
		CHECK(r.res.reported == 1 && r.res.any_failed == (t[i].a == DSN_FAILED));
		CHECK(r.res.bytes == r.w.len && !r.res.eightbit && !r.res.smtputf8);
		envelope_free(&e);
		run_free(&r);
	}
}

static void test_ret(void)
{
	static const struct {
		enum envelope_ret ret;
		enum envelope_body body;
		enum dsn_action action;
		uint64_t size;           /* 0: the real one */
		bool reader;
		enum dsn_returned expect;
		const char *type;
	} t[] = {
		{ ENVELOPE_RET_HDRS, ENVELOPE_BODY_7BIT, DSN_FAILED, 0, true,
		  DSN_RETURNED_HEADERS, "text/rfc822-headers" },
		{ ENVELOPE_RET_NONE, ENVELOPE_BODY_7BIT, DSN_FAILED, 0, true,
		  DSN_RETURNED_HEADERS, "text/rfc822-headers" },
		{ ENVELOPE_RET_FULL, ENVELOPE_BODY_7BIT, DSN_FAILED, 0, true,
		  DSN_RETURNED_FULL, "message/rfc822" },
		{ ENVELOPE_RET_FULL, ENVELOPE_BODY_8BITMIME, DSN_FAILED, DSN_RETURN_FULL_MAX, true,
		  DSN_RETURNED_FULL, "message/rfc822" },
		/* past the limit: the header only */
		{ ENVELOPE_RET_FULL, ENVELOPE_BODY_7BIT, DSN_FAILED, DSN_RETURN_FULL_MAX + 1, true,
		  DSN_RETURNED_HEADERS, "text/rfc822-headers" },
		/* binary cannot travel in message/rfc822 */
		{ ENVELOPE_RET_FULL, ENVELOPE_BODY_BINARYMIME, DSN_FAILED, 0, true,
		  DSN_RETURNED_HEADERS, "text/rfc822-headers" },
		/* no failure reported: the header only (RFC 3461 6.2) */
		{ ENVELOPE_RET_FULL, ENVELOPE_BODY_7BIT, DSN_DELAYED, 0, true,
		  DSN_RETURNED_HEADERS, "text/rfc822-headers" },
		{ ENVELOPE_RET_FULL, ENVELOPE_BODY_7BIT, DSN_DELIVERED, 0, true,
		  DSN_RETURNED_HEADERS, "text/rfc822-headers" },
		{ ENVELOPE_RET_FULL, ENVELOPE_BODY_7BIT, DSN_FAILED, 0, false,
		  DSN_RETURNED_NONE, NULL },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct envelope *e = make_env("ned@example.org", ENVELOPE_NOTIFY_SUCCESS |
					      ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY);
		e->ret = t[i].ret;
		e->body = t[i].body;
		if (t[i].size != 0)
			e->size = t[i].size;
		struct dsn_rcpt rc = { .idx = 0, .action = t[i].action };
		struct run r;
		run_dsn(&r, e, &rc, 1, t[i].reader ? original : NULL, sizeof(original) - 1, 0);
		CHECK(r.rc == 0);
		CHECK(r.res.returned == t[i].expect);
		if (r.rc == 0 && t[i].type != NULL) {
			CHECK(r.d.n_parts == 3);
			CHECK_STR(r.d.type[2], t[i].type);
			CHECK(r.d.returned != NULL && strstr(r.d.returned, "Subject: lunch\r\n") != NULL);
			bool body = r.d.returned != NULL && strstr(r.d.returned, "BODYMARK") != NULL;
			CHECK(body == (t[i].expect == DSN_RETURNED_FULL));
			if (t[i].expect == DSN_RETURNED_FULL)      /* whole, byte for byte */
				CHECK(r.d.returned_len == sizeof(original) - 1 &&
				      memcmp(r.d.returned, original, sizeof(original) - 1) == 0);
		} else if (r.rc == 0) {
			CHECK(r.d.n_parts == 2);
		}
		envelope_free(&e);
		run_free(&r);
	}
}

static void test_envid_orcpt(void)
{
	struct envelope *e = make_env("ned@example.org", 0);
	const char *err;
	CHECK(envelope_set_text(e, "envid", "QQ314159", &err) == 0);
	CHECK(envelope_add_rcpt(e, "ann@example.net", ENVELOPE_REMOTE, 0,
				"rfc822;Ann@Example.NET", &err) == 1);
	CHECK(envelope_add_rcpt(e, "cy@example.net", ENVELOPE_REMOTE, ENVELOPE_NOTIFY_NEVER,
				NULL, &err) == 2);
	struct dsn_rcpt rc[3] = {
		{ .idx = 0, .action = DSN_FAILED, .status = "5.1.1" },
		{ .idx = 1, .action = DSN_FAILED, .status = "5.2.2" },
		{ .idx = 2, .action = DSN_FAILED, .status = "5.1.1" },    /* NEVER: left out */
	};
	struct run r;
	run_dsn(&r, e, rc, 3, original, sizeof(original) - 1, 0);
	CHECK(r.rc == 0);
	CHECK(r.res.reported == 2);
	CHECK_STR(fget(&r.d.msg, "Original-Envelope-Id"), "QQ314159");
	CHECK(r.d.n_rcpt == 2);
	CHECK(fget(&r.d.rcpt[0], "Original-Recipient") == NULL);
	CHECK_STR(fget(&r.d.rcpt[1], "Original-Recipient"), "rfc822;Ann@Example.NET");
	CHECK_STR(fget(&r.d.rcpt[1], "Final-Recipient"), "rfc822; ann@example.net");
	CHECK(r.w.buf != NULL && strstr(r.w.buf, "cy@example.net") == NULL);
	run_free(&r);
	/* only the NEVER recipient: nothing to write */
	run_dsn(&r, e, &rc[2], 1, original, sizeof(original) - 1, 0);
	CHECK(r.rc == -1 && r.w.len == 0);
	run_free(&r);
	envelope_free(&e);
}

static void test_hostile_text(void)
{
	static const char diag[] = "550 5.1.1 bad\r\nSubject: injected\r\n\r\nbody\0\x01\xff\xfe\x7f"
				   "\r\n--=_test_boundary--\r\n";
	struct envelope *e = make_env("ned@example.org", 0);
	struct dsn_rcpt rc = { .idx = 0, .action = DSN_FAILED, .status = "5.1.1",
			       .remote_mta = "mx.example.net\r\nBcc: victim@example.com",
			       .diagnostic = diag, .diagnostic_len = sizeof(diag) - 1 };
	struct run r;
	run_dsn(&r, e, &rc, 1, original, sizeof(original) - 1, 0);
	CHECK(r.rc == 0);
	CHECK(fcount(&r.d.top, "Subject") == 1 && fget(&r.d.top, "Bcc") == NULL);
	CHECK(r.d.n_parts == 3 && r.d.n_rcpt == 1);
	CHECK(fget(&r.d.rcpt[0], "Subject") == NULL && fget(&r.d.rcpt[0], "Bcc") == NULL);
	CHECK_STR(fget(&r.d.rcpt[0], "Diagnostic-Code"),
		  "smtp; 550 5.1.1 bad Subject: injected body????? --=_test_boundary--");
	CHECK_STR(fget(&r.d.rcpt[0], "Remote-MTA"), "dns; mx.example.net Bcc: victim@example.com");
	CHECK(r.w.buf != NULL && strstr(r.w.buf, "\r\nSubject: injected") == NULL);
	CHECK(r.w.buf != NULL && strstr(r.w.buf, "\r\nBcc:") == NULL);
	CHECK(!r.res.eightbit);
	run_free(&r);

	/* 10,000 bytes: cut with "...", folded, no line near 998 */
	char *big = xmalloc(10001);
	for (size_t i = 0; i < 10000; i++)
		big[i] = (i % 9 == 8) ? ' ' : 'a' + (char)(i % 26);
	big[10000] = '\0';
	rc.diagnostic = big;
	rc.diagnostic_len = 0;
	rc.remote_mta = NULL;
	run_dsn(&r, e, &rc, 1, original, sizeof(original) - 1, 0);
	CHECK(r.rc == 0);
	const char *dc = r.rc == 0 ? fget(&r.d.rcpt[0], "Diagnostic-Code") : NULL;
	CHECK(dc != NULL && strlen(dc) <= 6 + DSN_TEXT_MAX && strlen(dc) > 6 + DSN_TEXT_MAX - 12);
	CHECK(dc != NULL && strcmp(dc + strlen(dc) - 3, "...") == 0);
	/* the fields' lines are folded at 78 */
	const char *s = r.w.buf != NULL ? strstr(r.w.buf, "Diagnostic-Code:") : NULL;
	bool short_lines = s != NULL;
	for (const char *l = s; l != NULL && (l == s || *l == ' '); ) {
		const char *nl = strstr(l, "\r\n");
		if (nl == NULL || nl - l > DSN_FOLD_COLUMN)
			short_lines = false;
		l = nl != NULL ? nl + 2 : NULL;
	}
	CHECK(short_lines);
	run_free(&r);
	/* one 10,000-byte word: cut, and still under 998 (parse_dsn checks) */
	memset(big, 'x', 10000);
	run_dsn(&r, e, &rc, 1, original, sizeof(original) - 1, 0);
	CHECK(r.rc == 0);
	dc = r.rc == 0 ? fget(&r.d.rcpt[0], "Diagnostic-Code") : NULL;
	CHECK(dc != NULL && strlen(dc) == 6 + DSN_TEXT_MAX);
	run_free(&r);
	/* found by fuzz_dsn: a 10,000-byte remote MTA name before a 10,000-byte word made
	 * one line of the text part pass 998 (parse_dsn checks every line) */
	char *big2 = xstrdup(big);
	rc.remote_mta = big2;
	run_dsn(&r, e, &rc, 1, original, sizeof(original) - 1, 0);
	CHECK(r.rc == 0);
	run_free(&r);
	free(big2);
	free(big);
	envelope_free(&e);
}

static void test_smtputf8(void)
{
	struct envelope *e = envelope_new();
	const char *err;
	e->smtputf8 = true;
	e->arrival = 1764288000;
	e->size = sizeof(original) - 1;
	CHECK(envelope_set_sender(e, "n\xc3\xa9""d@example.org", &err) == 0);
	CHECK(envelope_add_rcpt(e, "\xe7\x94\xa8\xe6\x88\xb7@example.net", ENVELOPE_REMOTE, 0,
				NULL, &err) == 0);
	struct dsn_rcpt rc = { .idx = 0, .action = DSN_FAILED, .status = "5.1.1",
			       .diagnostic = "550 5.1.1 \xe7\x94\xa8\xe6\x88\xb7 unknown \xff" };
	struct run r;
	run_dsn(&r, e, &rc, 1, original, sizeof(original) - 1, 0);
	CHECK(r.rc == 0);
	CHECK_STR(r.d.type[1], "message/global-delivery-status");
	CHECK_STR(r.d.type[2], "message/global-headers");
	CHECK_STR(fget(&r.d.top, "To"), "<n\xc3\xa9""d@example.org>");
	CHECK_STR(fget(&r.d.rcpt[0], "Final-Recipient"), "utf-8; \xe7\x94\xa8\xe6\x88\xb7@example.net");
	CHECK_STR(fget(&r.d.rcpt[0], "Diagnostic-Code"),
		  "smtp; 550 5.1.1 \xe7\x94\xa8\xe6\x88\xb7 unknown ?");
	CHECK(r.res.smtputf8 && r.res.eightbit);
	struct envelope *b;
	CHECK(dsn_envelope(e, ENVELOPE_REMOTE, &r.res, &b, &err) == 0);
	CHECK(b != NULL && b->smtputf8 && b->body == ENVELOPE_BODY_8BITMIME);
	envelope_free(&b);
	run_free(&r);
	/* the same 8-bit diagnostic in an ASCII DSN: '?' */
	e->smtputf8 = false;
	free(e->sender);
	e->sender = xstrdup("ned@example.org");
	run_dsn(&r, e, &rc, 1, original, sizeof(original) - 1, 0);
	CHECK(r.rc == 0);
	CHECK_STR(r.d.type[1], "message/delivery-status");
	CHECK_STR(fget(&r.d.rcpt[0], "Diagnostic-Code"), "smtp; 550 5.1.1 ?????? unknown ?");
	CHECK(!r.res.smtputf8 && !r.res.eightbit);
	run_free(&r);
	envelope_free(&e);
}

static void test_original_normalised(void)
{
	/* bare LF, lone CR, NUL, a 3000-byte header line and body line */
	size_t n = 0;
	char *m = xmalloc(8000);
	n += (size_t)snprintf(m + n, 8000 - n, "Subject: a\nX-Long: ");
	memset(m + n, 'h', 3000);
	n += 3000;
	n += (size_t)snprintf(m + n, 8000 - n, "\rX-Nul: a");
	m[n++] = '\0';
	n += (size_t)snprintf(m + n, 8000 - n, "b\n\nbody\r");
	memset(m + n, 'b', 3000);
	n += 3000;
	n += (size_t)snprintf(m + n, 8000 - n, "\nlast");
	struct envelope *e = make_env("ned@example.org", 0);
	e->ret = ENVELOPE_RET_FULL;
	e->size = n;
	struct dsn_rcpt rc = { .idx = 0, .action = DSN_FAILED };
	struct run r, r1;
	run_dsn(&r, e, &rc, 1, m, n, 0);
	CHECK(r.rc == 0);           /* parse_dsn: CRLF only, no NUL, lines <= 998 */
	CHECK(r.res.returned == DSN_RETURNED_FULL);
	CHECK(r.d.returned != NULL && strstr(r.d.returned, "X-Nul: a?b\r\n") != NULL);
	CHECK(r.d.returned != NULL && strstr(r.d.returned, "\r\nlast\r\n") != NULL);
	/* the long header line became folds: one field X-Long, its 3000 h's broken every
	 * 998 bytes by CRLF SP (unfolded: a space each) */
	struct fields f;
	if (r.d.returned != NULL) {
		parse_fields(r.d.returned, r.d.returned_len, &f);
		CHECK(fcount(&f, "X-Long") == 1 && fcount(&f, "X-Nul") == 1 && !f.no_colon);
		for (unsigned i = 0; i < f.n; i++)
			if (strcmp(f.name[i], "X-Long") == 0)
				CHECK(f.value_len[i] == 3003);  /* 990 + 997 + 997 + 16, 3 folds */
	}
	/* byte by byte gives the same bytes */
	run_dsn(&r1, e, &rc, 1, m, n, 1);
	CHECK(r1.rc == 0 && r1.w.len == r.w.len && memcmp(r1.w.buf, r.w.buf, r.w.len) == 0);
	run_free(&r1);
	run_free(&r);
	/* headers only: stops at the empty line, which a lone CR may make too */
	e->ret = ENVELOPE_RET_HDRS;
	run_dsn(&r, e, &rc, 1, "A: 1\r\rbody", 10, 0);
	CHECK(r.rc == 0 && r.d.returned != NULL && strcmp(r.d.returned, "A: 1\r\n") == 0);
	run_free(&r);
	free(m);
	envelope_free(&e);
}

static void test_errors(void)
{
	struct envelope *e = make_env("ned@example.org", 0);
	struct dsn_rcpt rc = { .idx = 0, .action = DSN_FAILED };
	struct mem_reader m = { original, sizeof(original) - 1, 0, 0, true };
	struct mem_writer w = { 0 };
	struct dsn_result res;
	const char *err = NULL;
	struct dsn_params p = {
		.env = e, .rcpts = &rc, .n_rcpts = 1, .reporting_mta = "mx.example.org",
		.message_id_left = "X1", .now = 1764300000, .read = mem_read, .read_ctx = &m,
		.write = mem_write, .write_ctx = &w,
	};
	CHECK(dsn_write(&p, &res, &err) == -1 && err != NULL);          /* reader fails */
	m.fail = false;
	w.fail = true;
	CHECK(dsn_write(&p, &res, &err) == -1);                          /* writer fails */
	w.fail = false;
	p.reporting_mta = "mx.example.org>\r\nBcc: x";
	CHECK(dsn_write(&p, &res, &err) == -1);
	p.reporting_mta = "mx.example.org";
	p.message_id_left = "a@b";
	CHECK(dsn_write(&p, &res, &err) == -1);
	p.message_id_left = "X1";
	rc.idx = 5;
	CHECK(dsn_write(&p, &res, &err) == -1);
	rc.idx = 0;
	p.boundary = "bad boundary\"";
	CHECK(dsn_write(&p, &res, &err) == -1);
	p.boundary = NULL;
	free(w.buf);
	w.buf = NULL;
	w.len = w.alloc = 0;
	/* random boundaries: two DSNs differ in it, both parse */
	m.pos = 0;
	CHECK(dsn_write(&p, &res, &err) == 0);
	char *first = xstrdup(w.buf);
	struct dsn_parsed d;
	CHECK(parse_dsn(w.buf, w.len, &d) && d.n_parts == 3);
	parsed_free(&d);
	w.len = 0;
	m.pos = 0;
	CHECK(dsn_write(&p, &res, &err) == 0);
	const char *b1 = strstr(first, "boundary=\""), *b2 = strstr(w.buf, "boundary=\"");
	CHECK(b1 != NULL && b2 != NULL && strncmp(b1, b2, 10 + 6 + 32) != 0);
	free(first);
	free(w.buf);
	/* the null sender: no DSN, no envelope for one */
	free(e->sender);
	e->sender = xstrdup("");
	w = (struct mem_writer){ 0 };
	m.pos = 0;
	CHECK(dsn_write(&p, &res, &err) == -1 && w.len == 0);
	struct envelope *b = NULL;
	res = (struct dsn_result){ 0 };
	CHECK(dsn_envelope(e, ENVELOPE_REMOTE, &res, &b, &err) == -1 && b == NULL);
	envelope_free(&e);
}

static void test_envelope(void)
{
	struct envelope *e = make_env("ned@example.org", ENVELOPE_NOTIFY_FAILURE), *b;
	struct dsn_result res = { .reported = 1, .eightbit = false };
	const char *err;
	CHECK(dsn_envelope(e, ENVELOPE_LOCAL, &res, &b, &err) == 0);
	CHECK(b != NULL && b->sender[0] == '\0' && b->rcpt_count == 1);
	CHECK_STR(b->rcpts[0].addr, "ned@example.org");
	CHECK(b->rcpts[0].kind == ENVELOPE_LOCAL && b->rcpts[0].notify == ENVELOPE_NOTIFY_NEVER);
	CHECK(b->rcpts[0].orcpt == NULL && b->envid == NULL && b->ret == ENVELOPE_RET_NONE);
	CHECK(b->body == ENVELOPE_BODY_7BIT && !b->smtputf8);
	/* a bounce of the bounce is never owed */
	CHECK(!dsn_should_notify(b, 0, DSN_FAILED));
	/* it is a valid envelope once it has an id */
	memcpy(b->id, "0PZ4K8M2T7Q4", ENVELOPE_ID_LEN + 1);
	memcpy(b->nonce, "9F86D081884C7D65", ENVELOPE_NONCE_LEN + 1);
	b->arrival = 1764300000;
	char *buf;
	size_t len;
	CHECK(envelope_write(b, &buf, &len, &err) == 0);
	if (buf != NULL)
		CHECK(strstr(buf, "sender <>\n") != NULL && strstr(buf, "notify never\n") != NULL);
	free(buf);
	envelope_free(&b);
	res.eightbit = true;
	CHECK(dsn_envelope(e, ENVELOPE_REMOTE, &res, &b, &err) == 0);
	CHECK(b != NULL && b->body == ENVELOPE_BODY_8BITMIME);
	envelope_free(&b);
	envelope_free(&e);
}

static void test_status_valid(void)
{
	static const char *const good[] = { "2.0.0", "5.1.1", "4.4.7", "5.999.999", "4.10.3" };
	static const char *const bad[] = { "", "5", "5.1", "5.1.", "1.0.0", "3.0.0", "6.0.0",
					   "5.1000.1", "5.1.1000", "5.1.1 ", " 5.1.1", "5.a.1",
					   "5..1", "5.1.1.1", "55.1.1" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(dsn_status_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!dsn_status_valid(bad[i]));
	CHECK(!dsn_status_valid(NULL));
}

int main(void)
{
	test_should_notify();
	test_actions();
	test_ret();
	test_envid_orcpt();
	test_hostile_text();
	test_smtputf8();
	test_original_normalised();
	test_errors();
	test_envelope();
	test_status_valid();
	return unit_done("test_dsn");
}
