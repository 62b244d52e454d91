/* Recipient states and their changes, sanitizing values from the network, and delivery
 * tokens (envelope.h; envelope.c reads and writes the file). */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "base/plimits.h"
#include "base/util.h"
#include "spool/envelope.h"

/* A token carries the recipient's index in three digits. */
_Static_assert(SPOOL_MAX_RCPTS <= 1000, "delivery tokens hold the index in 3 digits");

static void sanitize(char *dst, size_t dst_size, const char *text, size_t len, size_t max,
		     bool spaces)
{
	size_t n = 0;

	if (max > dst_size - 1)
		max = dst_size - 1;
	for (size_t i = 0; i < len && n < max; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if (c < 0x20 || c >= 0x7F || (c == ' ' && !spaces))
			c = '?';
		dst[n++] = (char)c;
	}
	if (n == 0)
		dst[n++] = '?';
	dst[n] = '\0';
}

void envelope_sanitize(char *dst, size_t dst_size, const char *text, size_t len, size_t max)
{
	sanitize(dst, dst_size, text, len, max, true);
}

static void set_reply(struct envelope_rcpt *r, const char *reply, const char *mta)
{
	char buf[SPOOL_REPLY_MAX + 1];

	if (reply != NULL) {
		sanitize(buf, sizeof(buf), reply, strlen(reply), SPOOL_REPLY_MAX, true);
		free(r->reply);
		r->reply = xstrdup(buf);
	}
	if (mta != NULL) {
		sanitize(buf, sizeof(buf), mta, strlen(mta), SMTP_MAX_DOMAIN, false);
		free(r->reply_mta);
		r->reply_mta = xstrdup(buf);
	}
}

static int64_t clamp_time(int64_t t)
{
	return t < 0 ? 0 : t > SPOOL_TIME_MAX ? SPOOL_TIME_MAX : t;
}

void envelope_rcpt_delivered(struct envelope_rcpt *r, const char *reply, const char *mta)
{
	set_reply(r, reply, mta);
	r->state = ENVELOPE_DELIVERED;
	r->next_try = 0;
	r->inflight = 0;
}

void envelope_rcpt_defer(struct envelope_rcpt *r, int64_t next_try, const char *reply,
			 const char *mta)
{
	set_reply(r, reply, mta);
	r->state = ENVELOPE_DEFERRED;
	r->next_try = clamp_time(next_try);
	r->inflight = 0;
}

void envelope_rcpt_fail(struct envelope_rcpt *r, const char *reply, const char *mta)
{
	set_reply(r, reply, mta);
	r->state = ENVELOPE_FAILED;
	r->next_try = 0;
	r->inflight = 0;
}

void envelope_rcpt_bounced(struct envelope_rcpt *r)
{
	if (r->state == ENVELOPE_DELIVERED)
		return;   /* a delivered recipient stays delivered */
	r->state = ENVELOPE_BOUNCED;
	r->next_try = 0;
	r->inflight = 0;
}

void envelope_rcpt_attempt(struct envelope_rcpt *r, int64_t now)
{
	if (r->attempts < SPOOL_MAX_ATTEMPTS)
		r->attempts++;
	now = clamp_time(now);
	r->inflight = now > 0 ? now : 1;
}

bool envelope_rcpt_done(const struct envelope_rcpt *r)
{
	return r->state == ENVELOPE_DELIVERED || r->state == ENVELOPE_BOUNCED;
}

bool envelope_done(const struct envelope *e)
{
	for (size_t i = 0; i < e->rcpt_count; i++)
		if (!envelope_rcpt_done(&e->rcpts[i]))
			return false;
	return true;
}

int64_t envelope_next_due(const struct envelope *e)
{
	int64_t due = INT64_MAX;

	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct envelope_rcpt *r = &e->rcpts[i];
		if (envelope_rcpt_done(r))
			continue;
		if (r->state != ENVELOPE_DEFERRED || r->inflight != 0)
			return 0;
		if (r->next_try < due)
			due = r->next_try;
	}
	return due == INT64_MAX ? 0 : due;
}

/* ---- delivery tokens ---- */

int envelope_token(const struct envelope *e, size_t idx, char *buf, size_t size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char in[64];
	int n;

	if (idx >= e->rcpt_count || idx >= SPOOL_MAX_RCPTS || size < ENVELOPE_TOKEN_LEN + 1 ||
	    !envelope_id_valid(e->id, strlen(e->id)) || strlen(e->nonce) != ENVELOPE_NONCE_LEN ||
	    strspn(e->nonce, "0123456789ABCDEF") != ENVELOPE_NONCE_LEN)
		return -1;
	n = util_snprintf(in, sizeof(in), "postern-token\n%s\n%s\n%zu", e->nonce, e->id, idx);
	if (n < 0 || EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < 8)
		return -1;
	n = util_snprintf(buf, size, "%s-%03zu-%02X%02X%02X%02X%02X%02X%02X%02X", e->id, idx,
			  md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7]);
	return n == ENVELOPE_TOKEN_LEN ? 0 : -1;
}

bool envelope_token_find(const char *hdr, size_t len, const char *token)
{
	const size_t flen = strlen(ENVELOPE_TOKEN_FIELD), tlen = strlen(token);
	size_t pos = 0;

	while (pos < len) {
		const char *line = hdr + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl != NULL ? (size_t)(nl - line) : len - pos;
		pos += llen + (nl != NULL ? 1 : 0);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			break;   /* the end of the header */
		if (llen <= flen || line[flen] != ':' ||
		    !util_token_eq(line, flen, ENVELOPE_TOKEN_FIELD))
			continue;
		size_t a = flen + 1, z = llen;
		while (a < z && (line[a] == ' ' || line[a] == '\t'))
			a++;
		while (z > a && (line[z - 1] == ' ' || line[z - 1] == '\t'))
			z--;
		if (z - a == tlen && memcmp(line + a, token, tlen) == 0)
			return true;
	}
	return false;
}
