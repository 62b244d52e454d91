/* Delivery status notifications: who gets one, and the message itself (dsn.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/charset.h"
#include "mail/date.h"
#include "spool/dsn.h"

/* The longest field name we write ("Original-Envelope-Id", "Diagnostic-Code") plus ": ",
 * the longest type prefix ("smtp; ") and a value of DSN_TEXT_MAX stay under 998. */
_Static_assert(20 + 2 + 8 + DSN_TEXT_MAX < DSN_LINE_MAX, "a DSN field fits on one line");
_Static_assert(SMTP_MAX_PATH + 40 < DSN_TEXT_MAX, "an address is never cut");

static const char *const action_names[] = {
	"failed", "delayed", "delivered", "relayed", "expanded",
};
static const char *const action_status[] = { "5.0.0", "4.0.0", "2.0.0", "2.0.0", "2.0.0" };

static bool action_ok(enum dsn_action a)
{
	return (unsigned)a <= DSN_EXPANDED;
}

const char *dsn_action_name(enum dsn_action a)
{
	return action_ok(a) ? action_names[a] : "failed";
}

const char *dsn_action_status(enum dsn_action a)
{
	return action_ok(a) ? action_status[a] : "5.0.0";
}

bool dsn_status_valid(const char *s)
{
	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		size_t n = 0;
		while (s[n] >= '0' && s[n] <= '9')
			n++;
		if (n == 0 || n > 3)
			return false;
		s += n;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

/* A status agrees with its action: failed 4.x.x (a message that expired after temporary
 * errors) or 5.x.x, delayed 4.x.x, the others 2.x.x. */
static bool status_fits(const char *s, enum dsn_action a)
{
	if (!dsn_status_valid(s))
		return false;
	switch (a) {
	case DSN_FAILED: return s[0] == '4' || s[0] == '5';
	case DSN_DELAYED: return s[0] == '4';
	default: return s[0] == '2';
	}
}

bool dsn_should_notify(const struct envelope *env, size_t idx, enum dsn_action action)
{
	if (env == NULL || env->sender == NULL || env->sender[0] == '\0' ||
	    idx >= env->rcpt_count || !action_ok(action))
		return false;
	unsigned n = env->rcpts[idx].notify;
	if (n & ENVELOPE_NOTIFY_NEVER)
		return false;
	if (n == 0)     /* RFC 3461 4.1: as FAILURE,DELAY; 5.2.3 (c): no success DSN */
		n = ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY;
	switch (action) {
	case DSN_FAILED: return (n & ENVELOPE_NOTIFY_FAILURE) != 0;
	case DSN_DELAYED: return (n & ENVELOPE_NOTIFY_DELAY) != 0;
	default: return (n & ENVELOPE_NOTIFY_SUCCESS) != 0;
	}
}

/* ---- output: buffered, counting, sticky failure ---- */

struct out {
	dsn_write_fn *write;
	void *ctx;
	bool failed;
	bool eightbit;
	uint64_t bytes;
	size_t len;
	char buf[8192];
};

static void out_flush(struct out *o)
{
	if (!o->failed && o->len > 0 && o->write(o->ctx, o->buf, o->len) == -1)
		o->failed = true;
	o->len = 0;
}

static void out_put(struct out *o, const void *data, size_t n)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < n; i++)
		if (p[i] >= 0x80)
			o->eightbit = true;
	o->bytes += n;
	while (n > 0) {
		if (o->len == sizeof(o->buf))
			out_flush(o);
		size_t k = sizeof(o->buf) - o->len;    /* BOUNDS: room left in buf */
		if (k > n)
			k = n;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p += k;
		n -= k;
	}
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* ---- values from outside ---- */

/* The sanitised form of s[0..len) (dsn.h): collapsed white space, no control bytes, no
 * 8-bit bytes except valid UTF-8 when utf8, trimmed, cut at DSN_TEXT_MAX with "...".
 * dst holds DSN_TEXT_MAX + 1 bytes.  Returns the length (0: nothing left). */
static size_t sanitize(char *dst, const char *s, size_t len, bool utf8)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t n = 0, cut = 0;
	bool space = false, truncated = false;

	while (p < end) {
		unsigned char c = *p;
		size_t seq = 1;
		char one = (char)c;
		const char *src = &one;
		if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
			space = true;
			p++;
			continue;
		}
		if (c >= 0x80 && utf8 && (seq = charset_utf8_seqlen(p, end)) > 0) {
			src = (const char *)p;
		} else {
			seq = 1;
			if (c < 0x20 || c >= 0x7F)
				one = '?';
		}
		size_t need = seq + (space && n > 0 ? 1 : 0);
		if (n + need > DSN_TEXT_MAX) {          /* BOUNDS: dst has DSN_TEXT_MAX + 1 */
			truncated = true;
			break;
		}
		if (space && n > 0)
			dst[n++] = ' ';
		space = false;
		memcpy(dst + n, src, seq);
		n += seq;
		if (n <= DSN_TEXT_MAX - 3)
			cut = n;
		p += seq;
	}
	if (truncated) {
		n = cut;
		while (n > 0 && dst[n - 1] == ' ')
			n--;
		memcpy(dst + n, "...", 3);              /* BOUNDS: cut <= DSN_TEXT_MAX - 3 */
		n += 3;
	}
	dst[n] = '\0';
	return n;
}

static bool is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* Write prefix, then the (sanitised) words of text, breaking before a word that would
 * pass DSN_FOLD_COLUMN with CRLF and indent (" " in a header: a fold), then CRLF. */
static void put_wrapped(struct out *o, const char *prefix, const char *text, const char *indent)
{
	size_t col = strlen(prefix);
	bool first = true;

	out_str(o, prefix);
	while (*text != '\0') {
		const char *sp = strchr(text, ' ');
		size_t w = sp != NULL ? (size_t)(sp - text) : strlen(text);
		if (!first && col + 1 + w > DSN_FOLD_COLUMN) {
			out_str(o, "\r\n");
			out_str(o, indent);
			col = strlen(indent);
		} else if (!first) {
			out_str(o, " ");
			col++;
		}
		first = false;
		out_put(o, text, w);
		col += w;
		text += w;
		if (*text == ' ')
			text++;
	}
	out_str(o, "\r\n");
}

/* A header or delivery-status field "Name: TYPE; VALUE" with VALUE sanitised; nothing
 * when the value is NULL or sanitises to nothing. */
static void put_field(struct out *o, const char *name, const char *type, const char *value,
		      size_t len, bool utf8)
{
	char v[DSN_TEXT_MAX + 1], prefix[64];

	if (value == NULL || sanitize(v, value, len, utf8) == 0)
		return;
	snprintf(prefix, sizeof(prefix), "%s: %s", name, type != NULL ? type : "");
	put_wrapped(o, prefix, v, " ");
}

static void put_date(struct out *o, const char *name, int64_t t)
{
	char d[DATE_RFC5322_SIZE], line[DATE_RFC5322_SIZE + 64];

	if (t <= 0 || t > SPOOL_TIME_MAX || date_format_rfc5322((time_t)t, 0, d) == -1)
		return;
	snprintf(line, sizeof(line), "%s: %s\r\n", name, d);
	out_str(o, line);
}

/* A DNS name as RFC 1035 letters-digits-hyphens labels: our own configured name. */
static bool hostname_ok(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > SMTP_MAX_DOMAIN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c == '-' && label > 0)) || ++label > 63)
			return false;
	}
	return s[n - 1] != '-';
}

static bool id_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_' ||
		      s[i] == '='))
			return false;
	return true;
}

/* ---- the returned original ---- */

/* Copy the original: CRLF line ends, NUL as '?', lines broken at DSN_LINE_MAX (a fold
 * inside the header); with headers_only stop at the empty line ending the header (not
 * written) or after DSN_RETURN_HDRS_MAX bytes, else after max bytes.  The copy ends with
 * a line end.  -1 if the reader failed. */
static int copy_original(struct out *o, const struct dsn_params *p, bool headers_only,
			 uint64_t max)
{
	char buf[8192];
	uint64_t total = 0;
	size_t col = 0;
	bool in_header = true, pending_cr = false, done = false;

	while (!done && total < max) {
		size_t want = sizeof(buf);
		if (want > max - total)
			want = (size_t)(max - total);
		ssize_t got = p->read(p->read_ctx, buf, want);
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		if ((size_t)got > want)
			got = (ssize_t)want;
		total += (uint64_t)got;
		for (ssize_t i = 0; i < got && !done; i++) {
			char c = buf[i];
			if (pending_cr) {
				pending_cr = false;
				bool lf = c == '\n';
				if (in_header && col == 0) {
					in_header = false;
					if (headers_only) {
						done = true;
						break;
					}
				}
				out_put(o, "\r\n", 2);
				col = 0;
				if (lf)
					continue;
			}
			if (c == '\r') {
				pending_cr = true;
				continue;
			}
			if (c == '\n') {
				if (in_header && col == 0) {
					in_header = false;
					if (headers_only) {
						done = true;
						break;
					}
				}
				out_put(o, "\r\n", 2);
				col = 0;
				continue;
			}
			if (col >= DSN_LINE_MAX) {
				out_put(o, in_header ? "\r\n " : "\r\n", in_header ? 3 : 2);
				col = in_header ? 1 : 0;
			}
			if (c == '\0')
				c = '?';
			out_put(o, &c, 1);
			col++;
		}
	}
	if (!done && (pending_cr || col > 0))
		out_put(o, "\r\n", 2);
	return 0;
}

/* ---- the DSN ---- */

static const char *subject_for(bool any_failed, bool any_delayed)
{
	if (any_failed)
		return "Undelivered Mail Returned to Sender";
	if (any_delayed)
		return "Delayed Mail (still being retried)";
	return "Successful Mail Delivery Report";
}

static void put_text_part(struct out *o, const struct dsn_params *p, const bool *take,
			  bool utf8, bool any_failed, bool any_delayed, enum dsn_returned ret)
{
	const struct envelope *env = p->env;
	char v[DSN_TEXT_MAX + 1], line[SMTP_MAX_DOMAIN + 128];

	snprintf(line, sizeof(line), "This is the mail system at host %s.", p->reporting_mta);
	put_wrapped(o, "", line, "");
	out_str(o, "\r\n");
	if (any_failed)
		put_wrapped(o, "", "Your message could not be delivered to one or more of its "
			    "recipients. This is a permanent error: the mail system has given up. "
			    "The reasons are given below.", "");
	if (any_delayed)
		put_wrapped(o, "", "Your message has not been delivered yet to one or more of its "
			    "recipients. The mail system is still trying; you need not send it "
			    "again. You will be told if it gives up.", "");
	if (!any_failed && !any_delayed)
		put_wrapped(o, "", "Your message was delivered to the recipients below, as you "
			    "asked.", "");
	out_str(o, "\r\n");
	for (size_t i = 0; i < p->n_rcpts; i++) {
		const struct dsn_rcpt *r = &p->rcpts[i];
		if (!take[i])
			continue;
		const char *addr = env->rcpts[r->idx].addr;
		const char *status = status_fits(r->status, r->action) ? r->status :
				     dsn_action_status(r->action);
		char prefix[DSN_TEXT_MAX + 64];     /* one line: under 998 */
		sanitize(v, addr, strlen(addr), utf8);
		snprintf(prefix, sizeof(prefix), "<%s>: %s (%s)", v, dsn_action_name(r->action),
			 status);
		put_wrapped(o, prefix, "", "");
		if (r->diagnostic != NULL) {
			/* "    MTA said: TEXT" wrapped: each word is at most DSN_TEXT_MAX, so
			 * no line passes 4 + DSN_TEXT_MAX bytes */
			size_t len = r->diagnostic_len != 0 ? r->diagnostic_len : strlen(r->diagnostic);
			char mta[DSN_TEXT_MAX + 1], said[2 * DSN_TEXT_MAX + 32];
			if (sanitize(v, r->diagnostic, len, utf8) > 0) {
				if (r->remote_mta != NULL &&
				    sanitize(mta, r->remote_mta, strlen(r->remote_mta), utf8) > 0)
					snprintf(said, sizeof(said), "%s said: %s", mta, v);
				else
					snprintf(said, sizeof(said), "The reply was: %s", v);
				put_wrapped(o, "    ", said, "    ");
			}
		}
		if (r->action == DSN_DELAYED) {
			char d[DATE_RFC5322_SIZE];
			if (r->retry_until > 0 && r->retry_until <= SPOOL_TIME_MAX &&
			    date_format_rfc5322((time_t)r->retry_until, 0, d) == 0) {
				snprintf(line, sizeof(line), "    Still trying until %s.", d);
				put_wrapped(o, line, "", "");
			}
		}
	}
	out_str(o, "\r\n");
	if (ret == DSN_RETURNED_FULL)
		put_wrapped(o, "", "Your message is attached.", "");
	else if (ret == DSN_RETURNED_HEADERS)
		put_wrapped(o, "", "The header of your message is attached.", "");
}

static void put_status_part(struct out *o, const struct dsn_params *p, const bool *take,
			    bool utf8)
{
	const struct envelope *env = p->env;

	put_field(o, "Reporting-MTA", "dns; ", p->reporting_mta, strlen(p->reporting_mta),
		  false);
	if (env->envid != NULL)
		put_field(o, "Original-Envelope-Id", NULL, env->envid, strlen(env->envid), utf8);
	if (env->client_name != NULL)
		put_field(o, "Received-From-MTA", "dns; ", env->client_name,
			  strlen(env->client_name), false);
	put_date(o, "Arrival-Date", env->arrival);
	for (size_t i = 0; i < p->n_rcpts; i++) {
		const struct dsn_rcpt *r = &p->rcpts[i];
		const struct envelope_rcpt *er;
		if (!take[i])
			continue;
		er = &env->rcpts[r->idx];
		out_str(o, "\r\n");
		if (er->orcpt != NULL)
			put_field(o, "Original-Recipient", NULL, er->orcpt, strlen(er->orcpt), utf8);
		put_field(o, "Final-Recipient", utf8 && !is_ascii(er->addr) ? "utf-8; " : "rfc822; ",
			  er->addr, strlen(er->addr), utf8);
		put_field(o, "Action", NULL, dsn_action_name(r->action), strlen(dsn_action_name(
			  r->action)), false);
		const char *status = status_fits(r->status, r->action) ? r->status :
				     dsn_action_status(r->action);
		put_field(o, "Status", NULL, status, strlen(status), false);
		if (r->remote_mta != NULL)
			put_field(o, "Remote-MTA", "dns; ", r->remote_mta, strlen(r->remote_mta), utf8);
		if (r->diagnostic != NULL)
			put_field(o, "Diagnostic-Code", "smtp; ", r->diagnostic,
				  r->diagnostic_len != 0 ? r->diagnostic_len : strlen(r->diagnostic),
				  utf8);
		put_date(o, "Last-Attempt-Date", r->last_attempt);
		if (r->action == DSN_DELAYED)
			put_date(o, "Will-Retry-Until", r->retry_until);
	}
}

int dsn_write(const struct dsn_params *p, struct dsn_result *res, const char **error_r)
{
	const struct envelope *env = p->env;
	bool any_failed = false, any_delayed = false, utf8;
	char boundary[80], line[SMTP_MAX_DOMAIN + 128];
	bool *take = NULL;

	memset(res, 0, sizeof(*res));
	if (env == NULL || env->sender == NULL || env->sender[0] == '\0') {
		*error_r = "no DSN to the null sender";
		return -1;
	}
	if (p->reporting_mta == NULL || !hostname_ok(p->reporting_mta)) {
		*error_r = "invalid reporting MTA name";
		return -1;
	}
	if (p->message_id_left == NULL || !id_ok(p->message_id_left, 64)) {
		*error_r = "invalid message id";
		return -1;
	}
	if (p->boundary != NULL) {
		if (!id_ok(p->boundary, 70)) {
			*error_r = "invalid boundary";
			return -1;
		}
		snprintf(boundary, sizeof(boundary), "%s", p->boundary);
	} else {
		unsigned char rnd[16];
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			*error_r = "getrandom failed";
			return -1;
		}
		size_t n = (size_t)snprintf(boundary, sizeof(boundary), "=_dsn_");
		for (size_t i = 0; i < sizeof(rnd); i++)       /* BOUNDS: 6 + 32 < 80 */
			n += (size_t)snprintf(boundary + n, sizeof(boundary) - n, "%02x", rnd[i]);
	}
	take = xcalloc(p->n_rcpts > 0 ? p->n_rcpts : 1, sizeof(*take));
	for (size_t i = 0; i < p->n_rcpts; i++) {
		const struct dsn_rcpt *r = &p->rcpts[i];
		if (r->idx >= env->rcpt_count || !action_ok(r->action)) {
			free(take);
			*error_r = "recipient index or action out of range";
			return -1;
		}
		take[i] = dsn_should_notify(env, r->idx, r->action);
		if (!take[i])
			continue;
		res->reported++;
		if (r->action == DSN_FAILED)
			any_failed = true;
		else if (r->action == DSN_DELAYED)
			any_delayed = true;
	}
	if (res->reported == 0) {
		free(take);
		*error_r = "no recipient asked for this notification";
		return -1;
	}
	res->any_failed = any_failed;
	utf8 = env->smtputf8;
	if (p->read == NULL)
		res->returned = DSN_RETURNED_NONE;
	else if (any_failed && env->ret == ENVELOPE_RET_FULL && env->size <= DSN_RETURN_FULL_MAX &&
		 env->body != ENVELOPE_BODY_BINARYMIME)
		res->returned = DSN_RETURNED_FULL;
	else
		res->returned = DSN_RETURNED_HEADERS;

	struct out *o = xcalloc(1, sizeof(*o));
	o->write = p->write;
	o->ctx = p->write_ctx;
	char v[DSN_TEXT_MAX + 1], d[DATE_RFC5322_SIZE];

	snprintf(line, sizeof(line), "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
		 p->reporting_mta);
	out_str(o, line);
	sanitize(v, env->sender, strlen(env->sender), utf8);
	snprintf(line, sizeof(line), "To: <");
	out_str(o, line);
	out_str(o, v);
	out_str(o, ">\r\n");
	snprintf(line, sizeof(line), "Subject: %s\r\n", subject_for(any_failed, any_delayed));
	out_str(o, line);
	if (p->now > 0 && p->now <= SPOOL_TIME_MAX &&
	    date_format_rfc5322((time_t)p->now, 0, d) == 0) {
		snprintf(line, sizeof(line), "Date: %s\r\n", d);
		out_str(o, line);
	}
	snprintf(line, sizeof(line), "Message-ID: <%s@%s>\r\n", p->message_id_left,
		 p->reporting_mta);
	out_str(o, line);
	out_str(o, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	snprintf(line, sizeof(line), "Content-Type: multipart/report; "
		 "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary);
	out_str(o, line);
	bool part8 = utf8 || res->returned != DSN_RETURNED_NONE;
	if (part8)
		out_str(o, "Content-Transfer-Encoding: 8bit\r\n");
	out_str(o, "\r\nThis is a MIME-encapsulated message: a delivery status notification.\r\n");

	/* 1: for people */
	snprintf(line, sizeof(line), "\r\n--%s\r\nContent-Type: text/plain; charset=%s\r\n"
		 "Content-Description: Notification\r\n%s\r\n", boundary,
		 utf8 ? "utf-8" : "us-ascii",
		 utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	out_str(o, line);
	put_text_part(o, p, take, utf8, any_failed, any_delayed, res->returned);

	/* 2: for programs */
	snprintf(line, sizeof(line), "\r\n--%s\r\nContent-Type: message/%sdelivery-status\r\n"
		 "Content-Description: Delivery report\r\n%s\r\n", boundary,
		 utf8 ? "global-" : "", utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	out_str(o, line);
	put_status_part(o, p, take, utf8);
	free(take);

	/* 3: the original */
	if (res->returned != DSN_RETURNED_NONE) {
		bool full = res->returned == DSN_RETURNED_FULL;
		const char *type = full ? (utf8 ? "message/global" : "message/rfc822") :
				   (utf8 ? "message/global-headers" : "text/rfc822-headers");
		snprintf(line, sizeof(line), "\r\n--%s\r\nContent-Type: %s\r\n"
			 "Content-Description: %s\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
			 boundary, type, full ? "Undelivered message" : "Message header");
		out_str(o, line);
		if (copy_original(o, p, !full, full ? DSN_RETURN_FULL_MAX : DSN_RETURN_HDRS_MAX)
		    == -1) {
			free(o);
			*error_r = "reading the original message failed";
			return -1;
		}
	}
	snprintf(line, sizeof(line), "\r\n--%s--\r\n", boundary);
	out_str(o, line);
	out_flush(o);
	bool failed = o->failed;
	res->eightbit = o->eightbit;
	res->bytes = o->bytes;
	res->smtputf8 = utf8 || !is_ascii(env->sender);
	free(o);
	if (failed) {
		*error_r = "writing the DSN failed";
		return -1;
	}
	return 0;
}

int dsn_envelope(const struct envelope *orig, enum envelope_kind kind,
		 const struct dsn_result *res, struct envelope **env_r, const char **error_r)
{
	struct envelope *e;

	*env_r = NULL;
	if (orig->sender == NULL || orig->sender[0] == '\0') {
		*error_r = "no DSN to the null sender";
		return -1;
	}
	e = envelope_new();
	e->smtputf8 = res->smtputf8 || !is_ascii(orig->sender);
	e->body = res->eightbit ? ENVELOPE_BODY_8BITMIME : ENVELOPE_BODY_7BIT;
	/* envelope_new() gives the null sender: MAIL FROM:<> */
	if (envelope_add_rcpt(e, orig->sender, kind, ENVELOPE_NOTIFY_NEVER, NULL, error_r) == -1) {
		envelope_free(&e);
		return -1;
	}
	*env_r = e;
	return 0;
}
