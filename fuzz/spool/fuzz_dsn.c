/* libFuzzer: dsn_write() with hostile values everywhere: the envelope's sender, ENVID,
 * ORCPT and recipient address put straight into the struct (past the setters' checks),
 * the remote MTA's name and diagnostic text (with NULs), the status, NOTIFY, RET, BODY,
 * SMTPUTF8, and the original message's bytes, read in chunks of a fuzzed size.  Checks:
 * no crash or leak; a DSN is written exactly when dsn_should_notify() allows one; the
 * DSN is well formed: CRLF line ends only, no NUL, no line over 998 bytes, its header
 * parses with header.c into only the fields we write (an injected field would show),
 * one each of From, To, Subject, Message-ID, Content-Type, and mime.c sees a
 * multipart/report of 2 or 3 parts (with the random boundary the content cannot fake);
 * and with a fixed boundary, reading the original in chunks or byte by byte writes the
 * same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "base/plimits.h"
#include "mail/header.h"
#include "mail/mime.h"
#include "spool/dsn.h"

struct rd {
	const uint8_t *data;
	size_t len, pos, chunk;
};

static ssize_t rd_read(void *ctx, void *buf, size_t size)
{
	struct rd *r = ctx;
	size_t n = r->len - r->pos;
	if (n > size)
		n = size;
	if (n > r->chunk)
		n = r->chunk;
	memcpy(buf, r->data + r->pos, n);
	r->pos += n;
	return (ssize_t)n;
}

struct wr {
	char *buf;
	size_t len, alloc;
};

static int wr_write(void *ctx, const void *data, size_t len)
{
	struct wr *w = ctx;
	if (w->len + len > w->alloc) {
		w->alloc = (w->len + len) * 2;
		w->buf = realloc(w->buf, w->alloc);
		if (w->buf == NULL)
			abort();
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

/* Take a length-prefixed piece (1 byte of length) as a NUL-terminated string. */
static char *take(const uint8_t **p, const uint8_t *end, size_t *len_r)
{
	if (*p >= end)
		return NULL;
	size_t n = **p;
	(*p)++;
	if (n > (size_t)(end - *p))
		n = (size_t)(end - *p);
	char *s = malloc(n + 1);
	if (s == NULL)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n;
	if (len_r != NULL)
		*len_r = n;
	return s;
}

struct hdr_check {
	unsigned from, to, subject, msgid, ctype;
	bool bad;
};

static void hdr_cb(void *ctx, const struct header_field *f)
{
	static const char *const known[] = { "From", "To", "Subject", "Date", "Message-ID",
		"Auto-Submitted", "MIME-Version", "Content-Type", "Content-Transfer-Encoding" };
	struct hdr_check *c = ctx;
	bool ok = false;
	if (f->no_colon || f->truncated)
		c->bad = true;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ok |= header_field_is(f, known[i]);
	if (!ok)
		c->bad = true;
	c->from += header_field_is(f, "From");
	c->to += header_field_is(f, "To");
	c->subject += header_field_is(f, "Subject");
	c->msgid += header_field_is(f, "Message-ID");
	c->ctype += header_field_is(f, "Content-Type");
}

static void check_dsn(const char *b, size_t len)
{
	size_t col = 0;
	if (len < 2 || b[len - 2] != '\r' || b[len - 1] != '\n')
		abort();
	for (size_t i = 0; i < len; i++) {
		if (b[i] == '\0')
			abort();
		if (b[i] == '\r') {
			if (i + 1 >= len || b[i + 1] != '\n')
				abort();
			i++;
			col = 0;
		} else if (b[i] == '\n') {
			abort();
		} else if (++col > DSN_LINE_MAX) {
			abort();
		}
	}
	struct header_parser *hp = header_parser_new(0);
	struct hdr_check c = { 0 };
	header_parser_feed(hp, b, len, hdr_cb, &c);
	header_parser_finish(hp, hdr_cb, &c);
	if (!header_parser_done(hp))
		abort();
	header_parser_free(&hp);
	if (c.bad || c.from != 1 || c.to != 1 || c.subject != 1 || c.msgid != 1 || c.ctype != 1)
		abort();
	struct mime_parser *mp = mime_parser_new();
	struct mime_part *root;
	mime_parser_feed(mp, b, len);
	mime_parser_finish(&mp, &root, NULL);
	if (strcmp(root->type, "multipart") != 0 || strcmp(root->subtype, "report") != 0 ||
	    root->n_children < 2 || root->n_children > 3 ||
	    strcmp(root->children->next->type, "message") != 0)
		abort();
	mime_part_free(&root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 6)
		return 0;
	const uint8_t *p = data + 6, *end = data + size;
	uint8_t flags = data[0];
	enum dsn_action action = (enum dsn_action)(data[1] % 5);
	unsigned notify = data[2] & 0x0f;
	size_t chunk = data[3] != 0 ? data[3] : 4096;

	struct envelope *e = envelope_new();
	e->smtputf8 = (flags & 1) != 0;
	e->ret = (enum envelope_ret)((flags >> 1) % 3);
	e->body = (enum envelope_body)((flags >> 3) % 3);
	e->arrival = (int64_t)data[4] * 10000000;
	free(e->sender);
	e->sender = take(&p, end, NULL);
	if (e->sender == NULL)
		e->sender = strdup("ned@example.org");
	e->envid = take(&p, end, NULL);
	if (e->envid != NULL && (flags & 0x20))
		e->client_name = strdup(e->envid);
	const char *err;
	char *addr = take(&p, end, NULL);
	char *orcpt = take(&p, end, NULL);
	if (envelope_add_rcpt(e, "bob@example.net", ENVELOPE_REMOTE, 0, NULL, &err) == -1)
		abort();
	e->rcpts[0].notify = notify;
	if (addr != NULL && addr[0] != '\0') {
		free(e->rcpts[0].addr);
		e->rcpts[0].addr = addr;
	} else {
		free(addr);
	}
	e->rcpts[0].orcpt = orcpt;
	size_t diag_len = 0;
	char *mta = take(&p, end, NULL);
	char *status = take(&p, end, NULL);
	char *diag = NULL;
	if (p + 2 <= end) {
		size_t n = (size_t)p[0] << 8 | p[1];
		p += 2;
		if (n > (size_t)(end - p))
			n = (size_t)(end - p);
		diag = malloc(n + 1);
		if (diag == NULL)
			abort();
		memcpy(diag, p, n);
		diag[n] = '\0';
		diag_len = n;
		p += n;
	}
	e->size = (uint64_t)(end - p);
	if (flags & 0x40)
		e->size += DSN_RETURN_FULL_MAX;

	struct dsn_rcpt rc = { .idx = 0, .action = action, .status = status,
			       .remote_mta = mta, .diagnostic = diag,
			       .diagnostic_len = diag_len,
			       .last_attempt = (int64_t)data[5] * 10000000,
			       .retry_until = (int64_t)data[5] * 20000000 };
	struct rd r = { p, (size_t)(end - p), 0, chunk };
	struct wr w = { 0 };
	struct dsn_result res;
	struct dsn_params prm = {
		.env = e, .rcpts = &rc, .n_rcpts = 1, .reporting_mta = "mx.example.org",
		.message_id_left = "0Q00000000001", .now = 1764300000,
		.read = (flags & 0x80) ? NULL : rd_read, .read_ctx = &r,
		.write = wr_write, .write_ctx = &w, .boundary = NULL,
	};
	/* a random boundary: the content cannot fake it, so the structure must hold */
	int rc1 = dsn_write(&prm, &res, &err);
	bool owed = dsn_should_notify(e, 0, action);
	if ((rc1 == 0) != owed)
		abort();
	if (rc1 == 0) {
		if (res.bytes != w.len || res.reported != 1)
			abort();
		check_dsn(w.buf, w.len);
		/* a fixed boundary: chunked and byte by byte give the same bytes */
		struct rd r2 = { p, (size_t)(end - p), 0, chunk }, r3 = r2;
		struct wr w2 = { 0 }, w3 = { 0 };
		r3.chunk = 1;
		prm.boundary = "=_fuzz";
		prm.read_ctx = &r2;
		prm.write_ctx = &w2;
		if (dsn_write(&prm, &res, &err) != 0)
			abort();
		prm.read_ctx = &r3;
		prm.write_ctx = &w3;
		if (dsn_write(&prm, &res, &err) != 0 || w2.len != w3.len ||
		    memcmp(w2.buf, w3.buf, w2.len) != 0)
			abort();
		free(w2.buf);
		free(w3.buf);
		struct envelope *b;
		if (dsn_envelope(e, ENVELOPE_REMOTE, &res, &b, &err) == 0)
			envelope_free(&b);
	}
	free(w.buf);
	free(mta);
	free(status);
	free(diag);
	envelope_free(&e);
	return 0;
}
