/* The outbound SMTP client engine; see smtp_client.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "mail/base64.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_xtext.h"

enum cstate {
	ST_GREETING, ST_EHLO, ST_HELO, ST_STARTTLS, ST_TLS, ST_AUTH, ST_IDLE, ST_TXN,
	ST_BODY, ST_BDAT, ST_DOT, ST_RSET, ST_QUIT, ST_DONE,
};

struct smtp_client {
	enum cstate st;
	char *helo_name, *auth_user, *auth_pass;
	bool want_tls, require_tls;
	bool tls_active, starttls_tried, esmtp, authed;
	unsigned auth_step;           /* AUTH LOGIN: 0 sent AUTH, 1 sent user, 2 sent pass */
	bool auth_login;
	struct smtp_ehlo ehlo;
	struct smtp_response_parser *rp;
	struct smtp_client_reply greeting;
	struct smtp_client_error err;
	bool err_set;
	char *out;
	size_t olen, ocap;
	/* the message in flight */
	struct smtp_client_msg *msg;
	bool *accepted;               /* per recipient: RCPT got a 2xx */
	size_t naccepted;
	bool pipelining;
	bool mail_ok, mail_failed;
	bool dot_ignored;             /* an empty message after a 354 nobody wanted */
	size_t nsent, nreplied;       /* commands of the group: MAIL, RCPT..., DATA */
	bool body_cr, body_bol;       /* the body encoder: a CR pending; at a line start */
	/* CHUNKING (RFC 3030): the body goes in BDAT chunks instead of DATA */
	bool bdat;
	size_t bdat_pending;          /* pipelined BDAT chunks whose reply has not come */
	bool bdat_failed;             /* a chunk was refused: bdat_fail holds its reply */
	struct smtp_client_reply bdat_fail;
};

static void out_add(struct smtp_client *c, const char *s, size_t len)
{
	if (c->olen + len > c->ocap) {
		/* BOUNDS: the caller empties the buffer after each call; a call adds at most
		 * a group of commands or 2 * len of body */
		size_t cap = (c->olen + len) * 2 + 256;
		/* not realloc(): the old buffer may hold AUTH's base64, wipe it */
		char *n = xmalloc(cap);
		if (c->out != NULL) {
			memcpy(n, c->out, c->olen);
			util_wipe(c->out, c->ocap);
			free(c->out);
		}
		c->out = n;
		c->ocap = cap;
	}
	memcpy(c->out + c->olen, s, len);
	c->olen += len;
}

static void out_str(struct smtp_client *c, const char *s)
{
	out_add(c, s, strlen(s));
}

struct smtp_client *smtp_client_new(const struct smtp_client_params *params)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));

	c->helo_name = xstrdup(params->helo_name != NULL ? params->helo_name : "localhost");
	c->want_tls = params->tls;
	c->require_tls = params->require_tls;
	if (params->auth_user != NULL) {
		c->auth_user = xstrdup(params->auth_user);
		c->auth_pass = xstrdup(params->auth_pass != NULL ? params->auth_pass : "");
	}
	c->rp = xmalloc(sizeof(*c->rp));
	smtp_response_init(c->rp);
	c->st = ST_GREETING;
	return c;
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		util_wipe(s, strlen(s));
		free(s);
	}
}

void smtp_client_free(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;

	if (c == NULL)
		return;
	free(c->helo_name);
	wipe_free(c->auth_user);
	wipe_free(c->auth_pass);
	if (c->out != NULL)
		util_wipe(c->out, c->ocap); /* AUTH's base64 may be in it */
	free(c->out);
	free(c->rp);
	free(c->accepted);
	free(c);
	*cp = NULL;
}

enum smtp_client_want smtp_client_want(const struct smtp_client *c)
{
	switch (c->st) {
	case ST_TLS: return SMTP_CLIENT_TLS;
	case ST_IDLE: return SMTP_CLIENT_IDLE;
	case ST_BODY: return SMTP_CLIENT_BODY;
	case ST_DONE: return SMTP_CLIENT_DONE;
	default: return SMTP_CLIENT_READ;
	}
}

size_t smtp_client_output(struct smtp_client *c, const char **data_r)
{
	size_t n = c->olen;

	*data_r = c->out != NULL ? c->out : "";
	c->olen = 0; /* the bytes stay valid until the next call adds some */
	return n;
}

unsigned smtp_client_timeout_s(const struct smtp_client *c)
{
	switch (c->st) {
	case ST_GREETING: return SMTP_CLIENT_TIMEOUT_GREETING_S;
	case ST_TXN:
		if (c->nreplied == 0)
			return SMTP_CLIENT_TIMEOUT_MAIL_S;
		return c->nreplied <= c->msg->nrcpts ? SMTP_CLIENT_TIMEOUT_RCPT_S :
			SMTP_CLIENT_TIMEOUT_DATA_S;
	case ST_BODY: case ST_BDAT: return SMTP_CLIENT_TIMEOUT_BLOCK_S;
	case ST_DOT: return SMTP_CLIENT_TIMEOUT_DOT_S;
	default: return SMTP_CLIENT_TIMEOUT_OTHER_S;
	}
}

const struct smtp_client_error *smtp_client_error(const struct smtp_client *c)
{
	return c->err_set ? &c->err : NULL;
}

const struct smtp_ehlo *smtp_client_ehlo(const struct smtp_client *c)
{
	return &c->ehlo;
}

bool smtp_client_esmtp(const struct smtp_client *c)
{
	return c->esmtp;
}

bool smtp_client_authenticated(const struct smtp_client *c)
{
	return c->authed;
}

const struct smtp_client_reply *smtp_client_greeting(const struct smtp_client *c)
{
	return &c->greeting;
}

/* ---- replies and results ---- */

static void reply_copy(const struct smtp_client *c, const struct smtp_response *r,
		       struct smtp_client_reply *out)
{
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	out->code = r->code;
	if ((c->ehlo.exts & SMTP_EHLO_ENHANCEDSTATUSCODES) && r->enh_given)
		memcpy(out->enh, r->enh, sizeof(out->enh));
	for (size_t i = 0; i < r->nlines && n < SMTP_CLIENT_MAX_REPLY_TEXT; i++) {
		if (i > 0)
			out->text[n++] = ' ';
		size_t len = r->line_len[i];
		/* BOUNDS: n < SMTP_CLIENT_MAX_REPLY_TEXT; copy what fits of the line */
		if (len > SMTP_CLIENT_MAX_REPLY_TEXT - n)
			len = SMTP_CLIENT_MAX_REPLY_TEXT - n;
		memcpy(out->text + n, r->lines[i], len);
		n += len;
	}
	out->text[n] = '\0';
}

static void reply_synth(struct smtp_client_reply *out, unsigned code, const char *enh,
			const char *text)
{
	memset(out, 0, sizeof(*out));
	out->code = code;
	(void)util_snprintf(out->enh, sizeof(out->enh), "%s", enh);
	(void)util_snprintf(out->text, sizeof(out->text), "%s", text); /* fixed, short */
}

static enum smtp_client_status status_of(unsigned code)
{
	return code / 100 == 2 ? SMTP_CLIENT_OK : code / 100 == 5 ? SMTP_CLIENT_PERMFAIL :
		SMTP_CLIENT_TEMPFAIL;
}

static void msg_finish(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;

	m->delivered = 0;
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].status == SMTP_CLIENT_OK)
			m->delivered++;
	c->msg = NULL;
	free(c->accepted);
	c->accepted = NULL;
}

/* Every recipient without a result gets this one (accepted ones too when all). */
static void msg_fail_rest(struct smtp_client *c, enum smtp_client_status st,
			  const struct smtp_client_reply *r, bool accepted_too)
{
	struct smtp_client_msg *m = c->msg;

	for (size_t i = 0; i < m->nrcpts; i++) {
		struct smtp_client_rcpt *rc = &m->rcpts[i];
		if (rc->status != SMTP_CLIENT_PENDING && !(accepted_too && c->accepted[i]))
			continue;
		rc->status = st;
		rc->reply = *r;
	}
}

static const char *stage_name(const struct smtp_client *c)
{
	switch (c->st) {
	case ST_GREETING: return "greeting";
	case ST_EHLO: case ST_HELO: return "ehlo";
	case ST_STARTTLS: case ST_TLS: return "starttls";
	case ST_AUTH: return "auth";
	case ST_TXN:
		return c->nreplied == 0 ? "mail" : c->nreplied <= c->msg->nrcpts ? "rcpt" : "data";
	case ST_BODY: case ST_BDAT: return "data";
	case ST_DOT: return "dot";
	case ST_RSET: return "rset";
	case ST_QUIT: return "quit";
	default: return "connect";
	}
}

/* The connection is over: a failed stage.  What is in flight fails temporarily. */
static void conn_fail(struct smtp_client *c, bool temporary, const char *stage,
		      const char *reason, const struct smtp_client_reply *reply)
{
	if (!c->err_set) {
		c->err_set = true;
		c->err.temporary = temporary;
		c->err.stage = stage;
		c->err.reason = reason;
		if (reply != NULL)
			c->err.reply = *reply;
	}
	if (c->msg != NULL) {
		struct smtp_client_reply r;
		if (reply != NULL)
			r = *reply;
		else
			reply_synth(&r, 0, "", reason);
		/* ST_DOT: the dot went out and no reply came: SMTP cannot tell (RFC 1047) */
		if (c->st == ST_DOT && !c->dot_ignored && !c->bdat_failed)
			c->msg->maybe_twice = true;
		msg_fail_rest(c, SMTP_CLIENT_TEMPFAIL, &r, true);
		msg_finish(c);
	}
	c->st = ST_DONE;
}

/* ---- commands ---- */

static void send_ehlo(struct smtp_client *c, bool helo)
{
	out_str(c, helo ? "HELO " : "EHLO ");
	out_str(c, c->helo_name);
	out_str(c, "\r\n");
	c->st = helo ? ST_HELO : ST_EHLO;
}

static void send_b64(struct smtp_client *c, const char *prefix, const void *data, size_t len)
{
	/* BOUNDS: user and password are bounded by the caller's config; the buffer is sized
	 * from len */
	char *b = xmalloc(BASE64_ENCODED_LEN(len) + 1);
	size_t n = base64_encode(data, len, b);
	out_str(c, prefix);
	out_add(c, b, n);
	out_str(c, "\r\n");
	util_wipe(b, n);
	free(b);
}

static void start_auth(struct smtp_client *c)
{
	if (!(c->ehlo.exts & SMTP_EHLO_AUTH)) {
		conn_fail(c, true, "auth", "AUTH not offered", NULL);
		return;
	}
	c->st = ST_AUTH;
	c->auth_step = 0;
	if (c->ehlo.auth_mechs & SMTP_EHLO_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd, as the initial response */
		size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass);
		char *b = xmalloc(ul + pl + 2);
		b[0] = '\0';
		memcpy(b + 1, c->auth_user, ul);
		b[1 + ul] = '\0';
		memcpy(b + 2 + ul, c->auth_pass, pl);
		send_b64(c, "AUTH PLAIN ", b, ul + pl + 2);
		util_wipe(b, ul + pl + 2);
		free(b);
		c->auth_login = false;
	} else if (c->ehlo.auth_mechs & SMTP_EHLO_AUTH_LOGIN) {
		out_str(c, "AUTH LOGIN\r\n");
		c->auth_login = true;
	} else {
		conn_fail(c, true, "auth", "no AUTH mechanism in common", NULL);
	}
}

/* EHLO or HELO answered: STARTTLS, AUTH, or ready. */
static void after_hello(struct smtp_client *c)
{
	if (!c->tls_active && !c->starttls_tried && c->want_tls &&
	    (c->ehlo.exts & SMTP_EHLO_STARTTLS)) {
		c->starttls_tried = true;
		out_str(c, "STARTTLS\r\n");
		c->st = ST_STARTTLS;
		return;
	}
	if (!c->tls_active && c->require_tls) {
		conn_fail(c, true, "starttls", c->starttls_tried ? "STARTTLS refused" :
			  "STARTTLS not offered", NULL);
		return;
	}
	if (c->auth_user != NULL && !c->authed) {
		if (!c->tls_active) {
			/* never a password in clear */
			conn_fail(c, true, "auth", "AUTH needs TLS", NULL);
			return;
		}
		start_auth(c);
		return;
	}
	c->st = ST_IDLE;
}

/* An address for MAIL or RCPT: printable, no "<", ">" or space; UTF-8 only with utf8. */
static bool addr_ok(const char *a, bool utf8, bool empty_ok)
{
	size_t n = strlen(a);

	if ((n == 0 && !empty_ok) || n > SMTP_MAX_PATH - 2)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)a[i];
		if (ch <= 0x20 || ch == 0x7F || ch == '<' || ch == '>' || (ch > 0x7F && !utf8))
			return false;
	}
	return !utf8 || smtp_xtext_utf8_valid(a, n);
}

/* Append " fmt..." to line[0..*n) when it fits; a parameter that does not is left out
 * (only optional ones are appended: the command itself always fits). */
static void __attribute__((format(printf, 4, 5)))
add_param(char *line, size_t size, size_t *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(line + *n, size - *n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= size - *n)
		line[*n] = '\0';
	else
		*n += (size_t)r; /* BOUNDS: r < size - *n */
}

/* RFC 6533 section 3: utf-8-addr-xtext of the UTF-8 address a: QCHARs as they are,
 * every other code point as "\x{HEX}" (upper case, no leading zeros).  0, or -1 if it
 * does not fit out_size or a is not valid UTF-8. */
static int orcpt_utf8_encode(const char *a, char *out, size_t out_size)
{
	size_t n = 0, len = strlen(a);

	if (!smtp_xtext_utf8_valid(a, len))
		return -1;
	for (size_t i = 0; i < len;) {
		unsigned char b = (unsigned char)a[i];
		uint32_t cp;
		size_t k = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
		cp = k == 1 ? b : k == 2 ? b & 0x1Fu : k == 3 ? b & 0x0Fu : b & 0x07u;
		for (size_t j = 1; j < k; j++)
			cp = cp << 6 | ((unsigned char)a[i + j] & 0x3Fu);
		i += k;
		if (cp > 0x20 && cp < 0x7F && cp != '+' && cp != '=' && cp != '\\') {
			if (n + 1 >= out_size)
				return -1;
			out[n++] = (char)cp;
			continue;
		}
		int r = snprintf(out + n, out_size - n, "\\x{%X}", (unsigned)cp);
		if (r < 0 || (size_t)r >= out_size - n)
			return -1;
		n += (size_t)r; /* BOUNDS: r < out_size - n */
	}
	out[n] = '\0';
	return 0;
}

/* " ORCPT=type;value" for rc's ORCPT ("rfc822;a@b" or "utf-8;...", decoded; any byte
 * but NUL, all escaped as needed), or "" (left out: another type, empty, not UTF-8).  An rfc822 address with UTF-8 goes as utf-8 (RFC
 * 6533 section 3). */
static void orcpt_param(const struct smtp_client_rcpt *rc, char *line, size_t size, size_t *n)
{
	char x[SMTP_MAX_ORCPT + 1];
	size_t xl;
	const char *v = strchr(rc->orcpt, ';');

	if (v == NULL)
		return;
	v++;
	bool rfc822 = strncasecmp(rc->orcpt, "rfc822;", 7) == 0;
	bool utf8 = strncasecmp(rc->orcpt, "utf-8;", 6) == 0;
	bool ascii = true;
	for (const char *q = v; *q != '\0'; q++)
		ascii &= (unsigned char)*q < 0x80;
	if ((!rfc822 && !utf8) || v[0] == '\0')
		return;
	if (rfc822 && ascii) {
		if (smtp_xtext_encode(v, strlen(v), x, sizeof(x), &xl) == 0 &&
		    xl + 7 <= SMTP_MAX_ORCPT)
			add_param(line, size, n, " ORCPT=rfc822;%s", x);
		return;
	}
	/* RFC 3461 section 4.2: the parameter's value is at most 500 characters */
	if (orcpt_utf8_encode(v, x, sizeof(x) - 6) == 0)
		add_param(line, size, n, " ORCPT=utf-8;%s", x);
}

/* Command k of the group: 0 MAIL, 1..n RCPT, n+1 DATA. */
static void send_cmd(struct smtp_client *c, size_t k)
{
	struct smtp_client_msg *m = c->msg;
	char line[SMTP_MAX_MAIL_LINE + SMTP_MAX_RCPT_LINE];
	char x[SMTP_MAX_ENVID * 3 + 1];
	size_t n, xl;
	bool dsn = (c->ehlo.exts & SMTP_EHLO_DSN) != 0;

	/* BOUNDS: the addresses were checked by smtp_client_message(): at most
	 * SMTP_MAX_PATH, so the command fits; each parameter is added only if it fits */
	if (k == 0) {
		n = (size_t)snprintf(line, sizeof(line), "MAIL FROM:<%s>", m->from);
		if (c->ehlo.exts & SMTP_EHLO_SIZE)
			add_param(line, sizeof(line), &n, " SIZE=%llu", (unsigned long long)m->size);
		if (m->eightbit && (c->ehlo.exts & SMTP_EHLO_8BITMIME))
			add_param(line, sizeof(line), &n, " BODY=8BITMIME");
		if (m->smtputf8)
			add_param(line, sizeof(line), &n, " SMTPUTF8");
		if (dsn && m->ret != SMTP_RET_NONE)
			add_param(line, sizeof(line), &n, " RET=%s",
				  m->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
		if (dsn && m->envid != NULL &&
		    smtp_xtext_encode(m->envid, strlen(m->envid), x, sizeof(x), &xl) == 0)
			add_param(line, sizeof(line), &n, " ENVID=%s", x);
	} else if (k <= m->nrcpts) {
		const struct smtp_client_rcpt *rc = &m->rcpts[k - 1];
		unsigned nt = rc->notify;
		n = (size_t)snprintf(line, sizeof(line), "RCPT TO:<%s>", rc->addr);
		if (dsn && (nt & SMTP_NOTIFY_NEVER))
			add_param(line, sizeof(line), &n, " NOTIFY=NEVER");
		else if (dsn && nt != 0)
			add_param(line, sizeof(line), &n, " NOTIFY=%s%s%s%s%s",
				  nt & SMTP_NOTIFY_SUCCESS ? "SUCCESS" : "",
				  (nt & SMTP_NOTIFY_SUCCESS) && (nt & ~SMTP_NOTIFY_SUCCESS) ? "," : "",
				  nt & SMTP_NOTIFY_FAILURE ? "FAILURE" : "",
				  (nt & SMTP_NOTIFY_FAILURE) && (nt & SMTP_NOTIFY_DELAY) ? "," : "",
				  nt & SMTP_NOTIFY_DELAY ? "DELAY" : "");
		if (dsn && rc->orcpt != NULL)
			orcpt_param(rc, line, sizeof(line), &n);
	} else {
		n = (size_t)snprintf(line, sizeof(line), "DATA");
	}
	out_add(c, line, n);
	out_str(c, "\r\n");
	c->nsent++;
}

/* The commands of the group: MAIL, the RCPTs, and DATA unless the body goes by BDAT. */
static size_t group_size(const struct smtp_client *c)
{
	return c->msg->nrcpts + (c->bdat ? 1 : 2);
}

int smtp_client_message(struct smtp_client *c, struct smtp_client_msg *m)
{
	struct smtp_client_reply r;

	if (c->st != ST_IDLE || m->nrcpts == 0 || m->nrcpts > SMTP_CLIENT_MAX_RCPTS)
		return -1;
	c->msg = m;
	c->accepted = xcalloc(m->nrcpts, sizeof(bool));
	c->naccepted = 0;
	m->maybe_twice = false;
	m->delivered = 0;
	for (size_t i = 0; i < m->nrcpts; i++) {
		m->rcpts[i].status = SMTP_CLIENT_PENDING;
		memset(&m->rcpts[i].reply, 0, sizeof(m->rcpts[i].reply));
	}
	bool bad = !addr_ok(m->from, m->smtputf8, true) ||
		(m->envid != NULL && strlen(m->envid) > SMTP_MAX_ENVID);
	for (size_t i = 0; i < m->nrcpts && !bad; i++)
		bad = !addr_ok(m->rcpts[i].addr, m->smtputf8, false) ||
			(m->rcpts[i].orcpt != NULL && strlen(m->rcpts[i].orcpt) > SMTP_MAX_ORCPT);
	if (bad) {
		reply_synth(&r, 553, "5.1.3", "invalid address in the envelope");
	} else if (m->smtputf8 && !(c->ehlo.exts & SMTP_EHLO_SMTPUTF8)) {
		reply_synth(&r, 553, "5.6.7", "the server does not support SMTPUTF8");
	} else if ((c->ehlo.exts & SMTP_EHLO_SIZE) && c->ehlo.size_max != 0 &&
		   m->size > c->ehlo.size_max) {
		reply_synth(&r, 552, "5.3.4", "message larger than the server's SIZE limit");
	} else {
		c->pipelining = (c->ehlo.exts & SMTP_EHLO_PIPELINING) != 0;
		c->mail_ok = c->mail_failed = c->dot_ignored = false;
		c->bdat = (c->ehlo.exts & SMTP_EHLO_CHUNKING) != 0;
		c->bdat_pending = 0;
		c->bdat_failed = false;
		c->nsent = c->nreplied = 0;
		c->st = ST_TXN;
		if (c->pipelining) {
			for (size_t k = 0; k < group_size(c); k++)
				send_cmd(c, k);
		} else {
			send_cmd(c, 0);
		}
		return 0;
	}
	msg_fail_rest(c, SMTP_CLIENT_PERMFAIL, &r, true);
	msg_finish(c);
	return 0;
}

/* CRLF-normalise data to the output; dot-stuff it for DATA. */
static void body_encode(struct smtp_client *c, const char *data, size_t len, bool stuff)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		if (c->body_cr) {
			c->body_cr = false;
			c->body_bol = true;
			out_add(c, data + start, i - start);
			out_add(c, "\r\n", 2);
			start = i + 1;
			if (ch == '\n')
				continue;
			start = i; /* a lone CR: the line ended; this byte starts the next */
		}
		if (ch == '\r' || ch == '\n') {
			out_add(c, data + start, i - start);
			start = i + 1;
			if (ch == '\r') {
				c->body_cr = true;
			} else {
				out_add(c, "\r\n", 2);
				c->body_bol = true;
			}
			continue;
		}
		if (stuff && c->body_bol && ch == '.') {
			out_add(c, data + start, i - start);
			out_add(c, ".", 1); /* RFC 5321 section 4.5.2: one more dot */
			start = i;
		}
		c->body_bol = false;
	}
	out_add(c, data + start, len - start);
}

/* The output from start on is a chunk: put "BDAT n[ LAST]" before it (none for an
 * empty chunk that is not the last). */
static void bdat_frame(struct smtp_client *c, size_t start, bool last)
{
	char hdr[48];
	size_t n = c->olen - start;

	if (n == 0 && !last)
		return;
	int hl = snprintf(hdr, sizeof(hdr), "BDAT %zu%s\r\n", n, last ? " LAST" : "");
	/* BOUNDS: "BDAT " + 20 digits + " LAST\r\n" < 48 */
	out_add(c, hdr, (size_t)hl);           /* room at the end, then rotate */
	memmove(c->out + start + hl, c->out + start, n);
	memcpy(c->out + start, hdr, (size_t)hl);
}

void smtp_client_body(struct smtp_client *c, const char *data, size_t len)
{
	if (c->st != ST_BODY)
		return;
	if (!c->bdat) {
		body_encode(c, data, len, true);
		return;
	}
	size_t start = c->olen;
	body_encode(c, data, len, false);
	if (c->olen == start)
		return;
	bdat_frame(c, start, false);
	if (c->pipelining)
		c->bdat_pending++;     /* its reply is read after the last chunk */
	else
		c->st = ST_BDAT;       /* RFC 3030 section 2: wait for its 250 */
}

void smtp_client_body_end(struct smtp_client *c)
{
	if (c->st != ST_BODY)
		return;
	size_t start = c->olen;
	if (c->body_cr || !c->body_bol)
		out_add(c, "\r\n", 2);
	if (c->bdat)
		bdat_frame(c, start, true);
	else
		out_add(c, ".\r\n", 3);
	c->st = ST_DOT;
}

void smtp_client_quit(struct smtp_client *c)
{
	if (c->st != ST_IDLE)
		return;
	out_str(c, "QUIT\r\n");
	c->st = ST_QUIT;
}

void smtp_client_tls_done(struct smtp_client *c, bool ok)
{
	if (c->st != ST_TLS)
		return;
	if (!ok) {
		conn_fail(c, true, "starttls", "TLS handshake failed", NULL);
		return;
	}
	c->tls_active = true;
	/* RFC 3207 section 4.2: forget what the server said before TLS */
	memset(&c->ehlo, 0, sizeof(c->ehlo));
	c->esmtp = false;
	send_ehlo(c, false);
}

void smtp_client_eof(struct smtp_client *c, const char *reason)
{
	if (c->st == ST_DONE)
		return;
	if (c->st == ST_QUIT) {
		c->st = ST_DONE; /* the server closed without its 221: fine */
		return;
	}
	conn_fail(c, true, stage_name(c), reason != NULL ? reason : "connection lost", NULL);
}

/* ---- the transaction's replies ---- */

/* The transaction ended before the dot: RSET if MAIL was accepted, else ready. */
static void txn_end(struct smtp_client *c)
{
	bool open = c->mail_ok;

	msg_finish(c);
	if (open) {
		out_str(c, "RSET\r\n");
		c->st = ST_RSET;
	} else {
		c->st = ST_IDLE;
	}
}

static void bdat_start(struct smtp_client *c)
{
	c->body_bol = true;
	c->body_cr = false;
	c->st = ST_BODY;
}

static void txn_reply(struct smtp_client *c, const struct smtp_response *resp)
{
	struct smtp_client_msg *m = c->msg;
	struct smtp_client_reply r;
	size_t k = c->nreplied++;
	unsigned cls = resp->code / 100;

	reply_copy(c, resp, &r);
	if (k == 0) {
		if (cls == 2) {
			c->mail_ok = true;
		} else {
			c->mail_failed = true;
			msg_fail_rest(c, status_of(resp->code), &r, false);
		}
	} else if (k <= m->nrcpts) {
		if (!c->mail_failed) {
			if (cls == 2) {
				c->accepted[k - 1] = true;
				c->naccepted++;
			} else {
				m->rcpts[k - 1].status = status_of(resp->code);
				m->rcpts[k - 1].reply = r;
			}
		}
	} else if (resp->code == 354 && (c->mail_failed || c->naccepted == 0)) {
		/* RFC 2920 section 3.1: a server that says 354 with no valid recipient (or
		 * after refusing MAIL) gets an empty message, and its reply counts for nothing */
		out_str(c, ".\r\n");
		c->st = ST_DOT;
		c->dot_ignored = true;
		return;
	} else if (!c->mail_failed) {
		/* DATA */
		if (resp->code == 354 && c->naccepted > 0) {
			c->body_bol = true;
			c->body_cr = false;
			c->st = ST_BODY;
			return;
		}
		msg_fail_rest(c, status_of(r.code), &r, true);
	}
	if (c->pipelining) {
		if (c->nreplied < group_size(c))
			return;
		if (c->bdat && !c->mail_failed && c->naccepted > 0)
			bdat_start(c);
		else
			txn_end(c);
		return;
	}
	/* one command at a time: the next, or the end */
	if (c->mail_failed) {
		txn_end(c);
	} else if (c->nreplied <= m->nrcpts) {
		send_cmd(c, c->nreplied);
	} else if (c->nreplied == m->nrcpts + 1 && c->naccepted > 0) {
		if (c->bdat)
			bdat_start(c);
		else
			send_cmd(c, c->nreplied);
	} else {
		txn_end(c);
	}
}

static void dot_reply(struct smtp_client *c, const struct smtp_response *resp)
{
	struct smtp_client_reply r;

	reply_copy(c, resp, &r);
	if (c->bdat_pending > 0) {
		/* the reply to a pipelined chunk before the last one */
		c->bdat_pending--;
		if (resp->code / 100 != 2 && !c->bdat_failed) {
			c->bdat_failed = true;
			c->bdat_fail = r;
		}
		return;
	}
	if (c->bdat_failed) {
		/* RFC 3030 section 2: the transaction failed with the first refused chunk; its
		 * state is indeterminate, RSET */
		msg_fail_rest(c, status_of(c->bdat_fail.code), &c->bdat_fail, true);
		txn_end(c);
		return;
	}
	if (c->dot_ignored) {
		c->mail_ok = true; /* whatever it was, close the transaction with RSET */
		txn_end(c);
		return;
	}
	msg_fail_rest(c, status_of(resp->code), &r, true);
	msg_finish(c);
	c->st = ST_IDLE;
}

/* The reply to a chunk, one at a time (no PIPELINING) */
static void bdat_reply(struct smtp_client *c, const struct smtp_response *resp)
{
	struct smtp_client_reply r;

	if (resp->code / 100 == 2) {
		c->st = ST_BODY;
		return;
	}
	reply_copy(c, resp, &r);
	msg_fail_rest(c, status_of(resp->code), &r, true);
	txn_end(c);     /* RFC 3030 section 2: no more chunks; RSET */
}

/* One complete reply, in state c->st. */
static void on_reply(struct smtp_client *c, const struct smtp_response *resp)
{
	struct smtp_client_reply r;
	unsigned cls = resp->code / 100;

	reply_copy(c, resp, &r);
	/* RFC 5321 section 3.8: 421 is the server closing, whatever the command */
	if (resp->code == 421 && c->st != ST_QUIT) {
		const char *stage = stage_name(c);
		if (c->st == ST_DOT)
			c->st = ST_TXN; /* the server answered: no doubt about a double delivery */
		conn_fail(c, true, stage, "server closing", &r);
		return;
	}
	/* an intermediate reply where none can be (only 354 to DATA, 334 to AUTH): the
	 * server is out of step with us */
	if (cls == 3 && !(c->st == ST_AUTH && resp->code == 334) &&
	    !(c->st == ST_TXN && c->nreplied == c->msg->nrcpts + 1 && resp->code == 354)) {
		conn_fail(c, true, stage_name(c), "protocol error: unexpected 3xx reply", &r);
		return;
	}
	switch (c->st) {
	case ST_GREETING:
		c->greeting = r;
		if (resp->code == 220)
			send_ehlo(c, false);
		else
			conn_fail(c, cls != 5, "greeting", "greeting refused", &r);
		return;
	case ST_EHLO:
		if (cls == 2 && smtp_response_ehlo(resp, &c->ehlo) == 0) {
			c->esmtp = true;
			after_hello(c);
		} else if (cls == 5 && !c->tls_active) {
			send_ehlo(c, true); /* RFC 5321 section 3.2: an old server */
		} else {
			conn_fail(c, cls != 5, "ehlo", "EHLO refused", &r);
		}
		return;
	case ST_HELO:
		if (cls == 2) {
			memset(&c->ehlo, 0, sizeof(c->ehlo));
			after_hello(c);
		} else {
			conn_fail(c, cls != 5, "ehlo", "HELO refused", &r);
		}
		return;
	case ST_STARTTLS:
		if (resp->code == 220) {
			c->st = ST_TLS;
		} else if (c->require_tls) {
			conn_fail(c, true, "starttls", "STARTTLS refused", &r);
		} else {
			after_hello(c); /* opportunistic: go on in plaintext */
		}
		return;
	case ST_AUTH:
		if (resp->code == 235) {
			c->authed = true;
			c->st = ST_IDLE;
		} else if (resp->code == 334 && c->auth_login && c->auth_step < 2) {
			const char *v = c->auth_step == 0 ? c->auth_user : c->auth_pass;
			send_b64(c, "", v, strlen(v));
			c->auth_step++;
		} else {
			conn_fail(c, cls != 5, "auth", "authentication failed", &r);
		}
		return;
	case ST_TXN:
		txn_reply(c, resp);
		return;
	case ST_DOT:
		dot_reply(c, resp);
		return;
	case ST_BDAT:
		bdat_reply(c, resp);
		return;
	case ST_RSET:
		if (cls == 2)
			c->st = ST_IDLE;
		else
			conn_fail(c, true, "rset", "RSET refused", &r);
		return;
	case ST_QUIT:
		c->st = ST_DONE;
		return;
	default:
		conn_fail(c, true, "connect", "protocol error: unexpected reply", &r);
		return;
	}
}

int smtp_client_feed(struct smtp_client *c, const char *data, size_t len)
{
	while (len > 0) {
		if (c->st == ST_DONE)
			return -1;
		if (smtp_client_want(c) != SMTP_CLIENT_READ) {
			/* after STARTTLS's 220 this is the injection of RFC 3207 section 5 */
			conn_fail(c, true, stage_name(c),
				  "protocol error: data from the server when no reply was due", NULL);
			return -1;
		}
		size_t used;
		const char *error;
		int r = smtp_response_feed(c->rp, data, len, &used, &error);
		if (r < 0) {
			conn_fail(c, true, stage_name(c), error, NULL);
			return -1;
		}
		data += used;
		len -= used;
		if (r == 1)
			on_reply(c, &c->rp->resp);
	}
	return c->st == ST_DONE && c->err_set ? -1 : 0;
}
