/* Received: header writing and counting; see smtp_received.h. */
#include <string.h>
#include "base/plimits.h"
#include "mail/date.h"
#include "mail/header.h"
#include "smtp/smtp_received.h"

/* RFC 5322 section 2.1.1: SHOULD 78, MUST 998 characters per line, CRLF excluded */
#define FOLD_AT 78
#define LINE_MAX_CHARS 998

struct out {
	char *buf;
	size_t size, len;
	size_t col;                /* characters on the current line */
	bool failed;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->failed || n > o->size - o->len) {
		o->failed = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/* One clause: on this line after a space if it fits in FOLD_AT, else on a new line
 * ("\r\n\t" + clause: the fold). */
static void clause(struct out *o, const char *s, size_t n)
{
	if (n + 1 > LINE_MAX_CHARS) {
		o->failed = true; /* cannot happen with the inputs' bounds; never write it */
		return;
	}
	if (o->col + 1 + n > FOLD_AT) {
		put(o, "\r\n\t", 3);
		o->col = 1;
	} else {
		put(o, " ", 1);
		o->col++;
	}
	put(o, s, n);
	o->col += n;
}

/* A clause built from pieces into tmp (bounded by its size) */
struct piece {
	char s[SMTP_MAX_DOMAIN * 2 + 64];
	size_t n;
	bool over;
};

static void emit(struct out *o, const struct piece *p)
{
	if (p->over)
		o->failed = true;
	else
		clause(o, p->s, p->n);
}

static void pc(struct piece *p, const char *s)
{
	size_t n = strlen(s);
	if (n > sizeof(p->s) - p->n) {
		p->over = true;
		return;
	}
	memcpy(p->s + p->n, s, n);
	p->n += n;
}

/* A copy of s usable inside a comment: ctext and quoted-pair-free (RFC 5322 3.2.2),
 * bytes that could end or escape it become '?', at most max bytes. */
static void pc_ctext(struct piece *p, const char *s, size_t max)
{
	for (size_t i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		char ch = (c <= ' ' || c == '(' || c == ')' || c == '\\' || c >= 0x7F) ? '?' : (char)c;
		if (p->n == sizeof(p->s)) {
			p->over = true;
			return;
		}
		p->s[p->n++] = ch;
	}
}

static bool host_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > SMTP_MAX_DOMAIN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

/* "[192.0.2.7]" or "[IPv6:2001:db8::7]" (RFC 5321 section 4.1.3) */
static bool addr_literal(const char *a, char *out, size_t size)
{
	size_t n = a != NULL ? strlen(a) : 0;
	bool v6 = a != NULL && strchr(a, ':') != NULL;

	if (n == 0 || n > 45 || n + 8 > size) /* BOUNDS: "[IPv6:" addr "]" NUL */
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = a[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
		      c == '.' || c == ':'))
			return false;
	}
	size_t o = 0;
	out[o++] = '[';
	if (v6) {
		memcpy(out + o, "IPv6:", 5);
		o += 5;
	}
	memcpy(out + o, a, n);
	o += n;
	out[o++] = ']';
	out[o] = '\0';
	return true;
}

/* a token made of [A-Za-z0-9._-] (TLS version and cipher names), else '?' */
static void pc_token(struct piece *p, const char *s)
{
	char tmp[65];
	size_t i;

	for (i = 0; s[i] != '\0' && i < sizeof(tmp) - 1; i++) {
		char c = s[i];
		tmp[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '.' || c == '_') ? c : '?';
	}
	tmp[i] = '\0';
	pc(p, tmp);
}

static const char *protocol(const struct smtp_received *r)
{
	bool tls = r->tls_version != NULL;

	if (r->utf8)
		return tls ? (r->auth ? "UTF8SMTPSA" : "UTF8SMTPS") : (r->auth ? "UTF8SMTPA" : "UTF8SMTP");
	if (!r->esmtp && !tls && !r->auth)
		return "SMTP";
	return tls ? (r->auth ? "ESMTPSA" : "ESMTPS") : (r->auth ? "ESMTPA" : "ESMTP");
}

static bool rcpt_ok(const char *s, bool utf8)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > SMTP_MAX_PATH - 2)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8))
			return false;
	}
	return true;
}

static bool id_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= 'a' && s[i] <= 'z')))
			return false;
	return true;
}

int smtp_received_format(const struct smtp_received *r, char *buf, size_t size,
			 size_t *len_r)
{
	struct out o = { buf, size, 0, 0, false };
	struct piece p;
	char lit[64], date[DATE_RFC5322_SIZE];

	if (!host_ok(r->by) || !addr_literal(r->addr, lit, sizeof(lit)) || !id_ok(r->queue_id) ||
	    date_format_rfc5322(r->time, r->tz_min, date) < 0)
		return -1;
	put(&o, "Received:", 9);
	o.col = 9;
	/* helo_valid comes from smtp_cmd; the alphabet is checked again all the same, so
	 * that nothing but a domain or literal can ever stand outside a comment */
	bool helo = r->helo != NULL && r->helo_valid && strlen(r->helo) <= SMTP_MAX_DOMAIN &&
		    strspn(r->helo, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789-._[]:") == strlen(r->helo);
	/* From-domain: the HELO name when it is one, else the address literal */
	memset(&p, 0, sizeof(p));
	pc(&p, "from ");
	pc(&p, helo ? r->helo : lit);
	emit(&o, &p);
	/* TCP-info: the rDNS name and the address literal */
	memset(&p, 0, sizeof(p));
	pc(&p, "(");
	if (host_ok(r->rdns)) {
		pc(&p, r->rdns);
		pc(&p, " ");
	}
	pc(&p, lit);
	pc(&p, ")");
	emit(&o, &p);
	if (!helo && r->helo != NULL) {
		memset(&p, 0, sizeof(p));
		pc(&p, "(helo=");
		pc_ctext(&p, r->helo, SMTP_MAX_DOMAIN);
		pc(&p, ")");
		emit(&o, &p);
	}
	memset(&p, 0, sizeof(p));
	pc(&p, "by ");
	pc(&p, r->by);
	emit(&o, &p);
	memset(&p, 0, sizeof(p));
	pc(&p, "with ");
	pc(&p, protocol(r));
	emit(&o, &p);
	if (r->tls_version != NULL) {
		memset(&p, 0, sizeof(p));
		pc(&p, "(using ");
		pc_token(&p, r->tls_version);
		if (r->tls_cipher != NULL) {
			pc(&p, " with cipher ");
			pc_token(&p, r->tls_cipher);
		}
		pc(&p, ")");
		emit(&o, &p);
	}
	bool one_rcpt = rcpt_ok(r->rcpt, r->utf8);
	memset(&p, 0, sizeof(p));
	pc(&p, "id ");
	pc(&p, r->queue_id);
	if (!one_rcpt)
		pc(&p, ";");
	emit(&o, &p);
	if (one_rcpt) {
		memset(&p, 0, sizeof(p));
		pc(&p, "for <");
		pc(&p, r->rcpt);
		pc(&p, ">;");
		emit(&o, &p);
	}
	clause(&o, date, strlen(date));
	put(&o, "\r\n", 2);
	if (o.failed || o.len >= size) /* room for the NUL too */
		return -1;
	buf[o.len] = '\0';
	*len_r = o.len;
	return 0;
}

static void count_cb(void *ctx, const struct header_field *f)
{
	struct smtp_received_counter *c = ctx;

	if (header_field_is(f, "Received"))
		c->count++;
}

void smtp_received_counter_init(struct smtp_received_counter *c)
{
	c->hp = header_parser_new(0);
	c->count = 0;
}

size_t smtp_received_counter_feed(struct smtp_received_counter *c, const char *data,
				  size_t len)
{
	if (c->hp == NULL || header_parser_done(c->hp))
		return 0;
	return header_parser_feed(c->hp, data, len, count_cb, c);
}

unsigned smtp_received_counter_finish(struct smtp_received_counter *c)
{
	if (c->hp != NULL) {
		header_parser_finish(c->hp, count_cb, c);
		header_parser_free(&c->hp);
	}
	return c->count;
}

unsigned smtp_received_count(const char *data, size_t len)
{
	struct smtp_received_counter c;

	smtp_received_counter_init(&c);
	smtp_received_counter_feed(&c, data, len);
	return smtp_received_counter_finish(&c);
}
