/* The envelope file: a strict parser for hostile input, a canonical writer, the setters
 * (envelope.h has the format; envelope_state.c the recipient states and tokens). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/netaddr.h"
#include "base/plimits.h"
#include "base/util.h"
#include "mail/address.h"
#include "spool/envelope.h"

#define MAGIC "postern-envelope"
#define VERSION 1

/* Header keys, then recipient keys; each has a bit in a "seen" mask. */
enum hkey {
	H_ID, H_NONCE, H_ARRIVAL, H_SIZE, H_BODY, H_SMTPUTF8, H_SENDER, H_AUTH, H_RET,
	H_ENVID, H_CADDR, H_CNAME, H_HELO, H_PROTO, H_TLS, H_COUNT
};
enum rkey {
	R_RCPT, R_KIND, R_NOTIFY, R_ORCPT, R_STATE, R_ATTEMPTS, R_NEXT, R_INFLIGHT,
	R_WARNED, R_REPLY, R_RMTA, R_COUNT
};
static const char *const hkeys[H_COUNT] = {
	"id", "nonce", "arrival", "size", "body", "smtputf8", "sender", "auth", "ret",
	"envid", "client-addr", "client-name", "helo", "proto", "tls",
};
static const char *const rkeys[R_COUNT] = {
	"rcpt", "kind", "notify", "orcpt", "state", "attempts", "next-try", "inflight",
	"warned", "reply", "reply-mta",
};
#define H_REQUIRED ((1u << H_ID) | (1u << H_NONCE) | (1u << H_ARRIVAL) | (1u << H_SIZE) | \
		    (1u << H_BODY) | (1u << H_SMTPUTF8) | (1u << H_SENDER))
#define R_REQUIRED ((1u << R_RCPT) | (1u << R_KIND) | (1u << R_STATE) | (1u << R_ATTEMPTS))

static const char *const body_names[] = { "7bit", "8bitmime", "binarymime" };
static const char *const ret_names[] = { NULL, "full", "hdrs" };
static const char *const kind_names[] = { "local", "remote" };
static const char *const state_names[] = {
	"pending", "deferred", "delivered", "failed", "bounced"
};
/* NOTIFY in the canonical order of the file. */
static const struct { const char *name; unsigned bit; } notify_names[] = {
	{ "success", ENVELOPE_NOTIFY_SUCCESS },
	{ "failure", ENVELOPE_NOTIFY_FAILURE },
	{ "delay", ENVELOPE_NOTIFY_DELAY },
};

static const char id_alphabet[] = ENVELOPE_ID_ALPHABET;


/* ---- small checks ---- */

/* Length of the valid UTF-8 sequence at p (strict: no overlong forms, no surrogates,
 * nothing past U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	size_t n;
	unsigned c = p[0], min;

	if (c < 0xC2 || c > 0xF4)
		return 0;
	n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	if ((size_t)(end - p) < n)
		return 0;
	unsigned cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* Every byte printable (0x20..0x7E, or valid UTF-8 when utf8); spaces only if spaces. */
static bool text_ok(const char *s, size_t len, bool spaces, bool utf8)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		if (*p >= 0x80) {
			size_t n = utf8 ? utf8_seq(p, end) : 0;
			if (n == 0)
				return false;
			p += n;
			continue;
		}
		if (*p < 0x20 || *p == 0x7F || (*p == ' ' && !spaces))
			return false;
		p++;
	}
	return true;
}

/* Strict decimal: util_parse_uint() and no leading zero (one spelling per number). */
static int parse_num(const char *s, size_t len, uint64_t max, uint64_t *r)
{
	if (len > 1 && s[0] == '0')
		return -1;
	return util_parse_uint(s, len, max, r);
}

static int word_index(const char *s, size_t len, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && strlen(names[i]) == len && memcmp(s, names[i], len) == 0)
			return (int)i;
	return -1;
}

bool envelope_id_valid(const char *s, size_t len)
{
	if (len != ENVELOPE_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || strchr(id_alphabet, s[i]) == NULL)
			return false;
	return true;
}

static bool nonce_ok(const char *s, size_t len)
{
	if (len != ENVELOPE_NONCE_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

/* An address in "<...>": all of s[0..len) must be the path.  *flags_r gets the
 * ADDRESS_PATH_F_* flags; the text between the brackets is s + 1, len - 2. */
static int addr_check(const char *s, size_t len, bool rcpt, unsigned *flags_r,
		      const char **error_r)
{
	struct address_path p;
	unsigned opts = ADDRESS_PATH_UTF8 |
		(rcpt ? ADDRESS_PATH_ALLOW_POSTMASTER : ADDRESS_PATH_ALLOW_NULL);
	const char *err;

	if (len < 2 || s[0] != '<') {
		*error_r = "address not in <>";
		return -1;
	}
	long n = address_path_parse(s, len, opts, &p, &err);
	if (n < 0) {
		*error_r = "invalid address";
		return -1;
	}
	if ((size_t)n != len) {
		*error_r = "junk after the address";
		return -1;
	}
	if (p.flags & ADDRESS_PATH_F_ROUTE) {
		*error_r = "source route in an address";
		return -1;
	}
	*flags_r = p.flags;
	return 0;
}

/* ORCPT: addr-type ";" address, addr-type an atom of letters, digits and '-'. */
static bool orcpt_ok(const char *s, size_t len)
{
	size_t i = 0;

	if (len > SPOOL_ORCPT_MAX || !text_ok(s, len, true, false))
		return false;
	while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			   (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
		i++;
	return i > 0 && i + 1 < len && s[i] == ';';
}

static bool proto_ok(const char *s, size_t len)
{
	if (len > SPOOL_PROTO_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* The optional text keys of the header: their rules. */
static int header_text_check(enum hkey k, const char *s, size_t len, const char **error_r)
{
	bool ok = false;
	char tmp[64];

	switch (k) {
	case H_AUTH:
		ok = len <= AUTH_MAX_USER && text_ok(s, len, false, true);
		break;
	case H_ENVID:
		ok = len <= SPOOL_ENVID_MAX && text_ok(s, len, true, false);
		break;
	case H_CADDR: {
		struct netaddr a;
		ok = len < sizeof(tmp) && text_ok(s, len, false, false);
		if (ok) {
			memcpy(tmp, s, len);
			tmp[len] = '\0';
			ok = netaddr_parse(tmp, &a) == 0;
		}
		break;
	}
	case H_CNAME:
	case H_HELO:
		ok = len <= SMTP_MAX_DOMAIN && text_ok(s, len, false, false);
		break;
	case H_PROTO:
		ok = proto_ok(s, len);
		break;
	case H_TLS:
		ok = len <= SPOOL_TLS_MAX && text_ok(s, len, true, false);
		break;
	default:
		break;
	}
	if (len == 0)
		ok = false;
	if (!ok)
		*error_r = "invalid value";
	return ok ? 0 : -1;
}

static char **header_text_field(struct envelope *e, enum hkey k)
{
	switch (k) {
	case H_AUTH: return &e->auth;
	case H_ENVID: return &e->envid;
	case H_CADDR: return &e->client_addr;
	case H_CNAME: return &e->client_name;
	case H_HELO: return &e->helo;
	case H_PROTO: return &e->proto;
	case H_TLS: return &e->tls;
	default: return NULL;
	}
}

/* ---- the envelope object ---- */

struct envelope *envelope_new(void)
{
	struct envelope *e = xcalloc(1, sizeof(*e));

	e->sender = xstrdup("");
	return e;
}

static void rcpt_clear(struct envelope_rcpt *r)
{
	free(r->addr);
	free(r->orcpt);
	free(r->reply);
	free(r->reply_mta);
	memset(r, 0, sizeof(*r));
}

void envelope_free(struct envelope **envp)
{
	struct envelope *e = *envp;

	if (e == NULL)
		return;
	for (size_t i = 0; i < e->rcpt_count; i++)
		rcpt_clear(&e->rcpts[i]);
	free(e->rcpts);
	free(e->sender);
	for (int k = 0; k < H_COUNT; k++) {
		char **f = header_text_field(e, (enum hkey)k);
		if (f != NULL)
			free(*f);
	}
	free(e);
	*envp = NULL;
}

static struct envelope_rcpt *rcpt_append(struct envelope *e)
{
	if (e->rcpt_count == e->rcpt_alloc_) {
		size_t n = e->rcpt_alloc_ == 0 ? 4 : e->rcpt_alloc_ * 2;
		if (n > SPOOL_MAX_RCPTS)
			n = SPOOL_MAX_RCPTS;
		/* BOUNDS: n <= SPOOL_MAX_RCPTS, so n * sizeof is small */
		e->rcpts = xrealloc(e->rcpts, n * sizeof(*e->rcpts));
		e->rcpt_alloc_ = n;
	}
	struct envelope_rcpt *r = &e->rcpts[e->rcpt_count++];
	memset(r, 0, sizeof(*r));
	return r;
}

/* ---- the parser ---- */

struct parse {
	struct envelope *e;
	unsigned hseen, rseen;
	bool any_utf8_addr;
	const char *error;
};

static int parse_time(const char *v, size_t len, bool nonzero, int64_t *r)
{
	uint64_t n;

	if (parse_num(v, len, (uint64_t)SPOOL_TIME_MAX, &n) == -1 || (nonzero && n == 0))
		return -1;
	*r = (int64_t)n;
	return 0;
}

static int parse_header_line(struct parse *ps, enum hkey k, const char *v, size_t len)
{
	struct envelope *e = ps->e;
	uint64_t n;
	unsigned flags;
	int i;

	ps->error = "invalid value";
	switch (k) {
	case H_ID:
		if (!envelope_id_valid(v, len))
			return -1;
		memcpy(e->id, v, len);
		e->id[len] = '\0';
		return 0;
	case H_NONCE:
		if (!nonce_ok(v, len))
			return -1;
		memcpy(e->nonce, v, len);
		e->nonce[len] = '\0';
		return 0;
	case H_ARRIVAL:
		return parse_time(v, len, false, &e->arrival);
	case H_SIZE:
		if (parse_num(v, len, INT64_MAX, &n) == -1)
			return -1;
		e->size = n;
		return 0;
	case H_BODY:
		if ((i = word_index(v, len, body_names, 3)) < 0)
			return -1;
		e->body = (enum envelope_body)i;
		return 0;
	case H_SMTPUTF8:
		if (len == 3 && memcmp(v, "yes", 3) == 0)
			e->smtputf8 = true;
		else if (len == 2 && memcmp(v, "no", 2) == 0)
			e->smtputf8 = false;
		else
			return -1;
		return 0;
	case H_SENDER:
		if (addr_check(v, len, false, &flags, &ps->error) == -1)
			return -1;
		if (flags & ADDRESS_PATH_F_UTF8)
			ps->any_utf8_addr = true;
		free(e->sender);
		e->sender = xstrndup(v + 1, len - 2);
		return 0;
	case H_RET:
		if ((i = word_index(v, len, ret_names, 3)) < 0)
			return -1;
		e->ret = (enum envelope_ret)i;
		return 0;
	default:
		if (header_text_check(k, v, len, &ps->error) == -1)
			return -1;
		char **f = header_text_field(e, k);
		free(*f);
		*f = xstrndup(v, len);
		return 0;
	}
}

static int parse_notify(const char *v, size_t len, unsigned *r)
{
	size_t i = 0, next = 0;

	if (len == 5 && memcmp(v, "never", 5) == 0) {
		*r = ENVELOPE_NOTIFY_NEVER;
		return 0;
	}
	*r = 0;
	while (i < len) {
		const char *comma = memchr(v + i, ',', len - i);
		size_t wlen = comma != NULL ? (size_t)(comma - (v + i)) : len - i;
		size_t j;
		for (j = next; j < 3; j++)
			if (strlen(notify_names[j].name) == wlen &&
			    memcmp(notify_names[j].name, v + i, wlen) == 0)
				break;
		if (j == 3)
			return -1;   /* unknown, repeated or out of order */
		*r |= notify_names[j].bit;
		next = j + 1;
		i += wlen;
		if (comma != NULL && ++i == len)
			return -1;   /* trailing comma */
	}
	return *r != 0 ? 0 : -1;
}

static int parse_rcpt_line(struct parse *ps, enum rkey k, const char *v, size_t len)
{
	struct envelope_rcpt *r = &ps->e->rcpts[ps->e->rcpt_count - 1];
	uint64_t n;
	unsigned flags;
	int i;

	ps->error = "invalid value";
	switch (k) {
	case R_RCPT:
		if (addr_check(v, len, true, &flags, &ps->error) == -1)
			return -1;
		if (flags & ADDRESS_PATH_F_UTF8)
			ps->any_utf8_addr = true;
		r->addr = xstrndup(v + 1, len - 2);
		return 0;
	case R_KIND:
		if ((i = word_index(v, len, kind_names, 2)) < 0)
			return -1;
		r->kind = (enum envelope_kind)i;
		return 0;
	case R_NOTIFY:
		return parse_notify(v, len, &r->notify);
	case R_ORCPT:
		if (!orcpt_ok(v, len))
			return -1;
		r->orcpt = xstrndup(v, len);
		return 0;
	case R_STATE:
		if ((i = word_index(v, len, state_names, 5)) < 0)
			return -1;
		r->state = (enum envelope_state)i;
		return 0;
	case R_ATTEMPTS:
		if (parse_num(v, len, SPOOL_MAX_ATTEMPTS, &n) == -1)
			return -1;
		r->attempts = (uint32_t)n;
		return 0;
	case R_NEXT:
		return parse_time(v, len, false, &r->next_try);
	case R_INFLIGHT:
		return parse_time(v, len, true, &r->inflight);
	case R_WARNED:
		return parse_time(v, len, true, &r->warned);
	case R_REPLY:
		if (len > SPOOL_REPLY_MAX || !text_ok(v, len, true, false))
			return -1;
		r->reply = xstrndup(v, len);
		return 0;
	case R_RMTA:
		if (len > SMTP_MAX_DOMAIN || !text_ok(v, len, false, false))
			return -1;
		r->reply_mta = xstrndup(v, len);
		return 0;
	default:
		return -1;
	}
}

/* The recipient block just ended: all required keys, and the state's rules. */
static int rcpt_finish(struct parse *ps)
{
	const struct envelope_rcpt *r = &ps->e->rcpts[ps->e->rcpt_count - 1];

	if ((ps->rseen & R_REQUIRED) != R_REQUIRED) {
		ps->error = "recipient without kind, state or attempts";
		return -1;
	}
	if ((r->state == ENVELOPE_DEFERRED) != ((ps->rseen & (1u << R_NEXT)) != 0)) {
		ps->error = "next-try belongs to a deferred recipient, and only there";
		return -1;
	}
	if (r->inflight != 0 && r->state != ENVELOPE_PENDING && r->state != ENVELOPE_DEFERRED) {
		ps->error = "inflight on a finished recipient";
		return -1;
	}
	return 0;
}

static int parse_line(struct parse *ps, const char *line, size_t len)
{
	const char *sp = memchr(line, ' ', len);
	size_t klen = sp != NULL ? (size_t)(sp - line) : len;
	const char *v = sp != NULL ? sp + 1 : line + len;
	size_t vlen = sp != NULL ? len - klen - 1 : 0;
	int k;

	if (sp == NULL || vlen == 0 || klen == 0) {
		ps->error = "a line without key or value";
		return -1;
	}
	if (ps->e->rcpt_count == 0 && (k = word_index(line, klen, hkeys, H_COUNT)) >= 0) {
		if (ps->hseen & (1u << k)) {
			ps->error = "repeated key";
			return -1;
		}
		ps->hseen |= 1u << k;
		return parse_header_line(ps, (enum hkey)k, v, vlen);
	}
	if ((k = word_index(line, klen, rkeys, R_COUNT)) < 0) {
		ps->error = ps->e->rcpt_count > 0 && word_index(line, klen, hkeys, H_COUNT) >= 0 ?
			"header key after the first recipient" : "unknown key";
		return -1;
	}
	if (k == R_RCPT) {
		if (ps->e->rcpt_count > 0 && rcpt_finish(ps) == -1)
			return -1;
		if (ps->e->rcpt_count == SPOOL_MAX_RCPTS) {
			ps->error = "too many recipients";
			return -1;
		}
		rcpt_append(ps->e);
		ps->rseen = 0;
	} else if (ps->e->rcpt_count == 0) {
		ps->error = "recipient key before the first rcpt";
		return -1;
	}
	if (ps->rseen & (1u << k)) {
		ps->error = "repeated key";
		return -1;
	}
	ps->rseen |= 1u << k;
	return parse_rcpt_line(ps, (enum rkey)k, v, vlen);
}

/* The first line: the magic and a version we know. */
static int parse_magic(const char *line, size_t len, const char **error_r)
{
	size_t m = strlen(MAGIC);
	uint64_t v;

	if (len <= m + 1 || memcmp(line, MAGIC " ", m + 1) != 0) {
		*error_r = "not an envelope";
		return -1;
	}
	if (parse_num(line + m + 1, len - m - 1, UINT32_MAX, &v) == -1) {
		*error_r = "bad envelope version";
		return -1;
	}
	if (v != VERSION) {
		*error_r = "unknown envelope version";
		return -1;
	}
	return 0;
}

int envelope_parse(const char *buf, size_t len, struct envelope **env_r, unsigned *line_r,
		   const char **error_r)
{
	struct parse ps = { .e = envelope_new() };
	size_t pos = 0;
	unsigned lineno = 0;
	bool ended = false;

	*env_r = NULL;
	if (line_r != NULL)
		*line_r = 0;
	if (len > SPOOL_ENV_MAX_BYTES) {
		*error_r = "envelope too large";
		goto fail;
	}
	while (pos < len) {
		size_t avail = len - pos;
		/* BOUNDS: a line is at most SPOOL_ENV_LINE_MAX bytes with its LF */
		const char *nl = memchr(buf + pos, '\n', avail < SPOOL_ENV_LINE_MAX ? avail :
					SPOOL_ENV_LINE_MAX);
		const char *line = buf + pos;
		lineno++;
		if (line_r != NULL)
			*line_r = lineno;
		if (nl == NULL) {
			*error_r = avail >= SPOOL_ENV_LINE_MAX ? "line too long" :
				"last line without newline";
			goto fail;
		}
		size_t llen = (size_t)(nl - line);
		pos += llen + 1;
		if (ended) {
			*error_r = "data after end";
			goto fail;
		}
		if (llen == 0) {
			*error_r = "empty line";
			goto fail;
		}
		if (!text_ok(line, llen, true, true)) {
			*error_r = "control character or invalid UTF-8";
			goto fail;
		}
		if (lineno == 1) {
			if (parse_magic(line, llen, error_r) == -1)
				goto fail;
			continue;
		}
		if (llen == 3 && memcmp(line, "end", 3) == 0) {
			ended = true;
			continue;
		}
		/* 8-bit bytes only in addresses and the user name (UTF-8 checked above) */
		if (!text_ok(line, llen, true, false) &&
		    !(llen > 5 && (memcmp(line, "rcpt ", 5) == 0 ||
				   memcmp(line, "auth ", 5) == 0)) &&
		    !(llen > 7 && memcmp(line, "sender ", 7) == 0)) {
			*error_r = "8-bit value";
			goto fail;
		}
		if (parse_line(&ps, line, llen) == -1) {
			*error_r = ps.error;
			goto fail;
		}
	}
	if (line_r != NULL)
		*line_r = 0;
	if (lineno == 0) {
		*error_r = "empty envelope";
		goto fail;
	}
	if (!ended) {
		*error_r = "no end line (truncated)";
		goto fail;
	}
	if ((ps.hseen & H_REQUIRED) != H_REQUIRED) {
		*error_r = "a required header key is missing";
		goto fail;
	}
	if (ps.e->rcpt_count == 0) {
		*error_r = "no recipients";
		goto fail;
	}
	if (rcpt_finish(&ps) == -1) {
		*error_r = ps.error;
		goto fail;
	}
	if (ps.any_utf8_addr && !ps.e->smtputf8) {
		*error_r = "UTF-8 address without smtputf8";
		goto fail;
	}
	*env_r = ps.e;
	return 0;
fail:
	envelope_free(&ps.e);
	return -1;
}

/* ---- the writer ---- */

struct sbuf { char *p; size_t len, cap; };

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap == 0 ? 1024 : b->cap;
		while (cap - b->len < n + 1)
			cap *= 2;   /* BOUNDS: the caller stops past SPOOL_ENV_MAX_BYTES */
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_line(struct sbuf *b, const char *key, const char *pre, const char *value,
		    const char *post)
{
	sb_add(b, key, strlen(key));
	sb_add(b, " ", 1);
	sb_add(b, pre, strlen(pre));
	sb_add(b, value, strlen(value));
	sb_add(b, post, strlen(post));
	sb_add(b, "\n", 1);
}

static void sb_num(struct sbuf *b, const char *key, uint64_t n)
{
	char num[24];

	(void)util_snprintf(num, sizeof(num), "%llu", (unsigned long long)n);
	sb_line(b, key, "", num, "");
}

static void write_notify(struct sbuf *b, unsigned notify)
{
	char v[64] = "";
	size_t len = 0;

	if (notify & ENVELOPE_NOTIFY_NEVER) {
		sb_line(b, "notify", "", "never", "");
		return;
	}
	for (size_t i = 0; i < 3; i++) {
		if (!(notify & notify_names[i].bit))
			continue;
		/* BOUNDS: at most "success,failure,delay" (21 bytes) */
		len += (size_t)snprintf(v + len, sizeof(v) - len, "%s%s", len > 0 ? "," : "",
					notify_names[i].name);
	}
	sb_line(b, "notify", "", v, "");
}

static bool index_ok(int i, size_t n)
{
	return i >= 0 && (size_t)i < n;
}

int envelope_write(const struct envelope *e, char **buf_r, size_t *len_r,
		   const char **error_r)
{
	struct sbuf b = { 0 };
	struct envelope *check;

	*buf_r = NULL;
	*len_r = 0;
	if (!index_ok((int)e->body, 3) || !index_ok((int)e->ret, 3) || e->sender == NULL) {
		*error_r = "invalid envelope";
		return -1;
	}
	sb_add(&b, MAGIC " 1\n", strlen(MAGIC) + 3);
	sb_line(&b, "id", "", e->id, "");
	sb_line(&b, "nonce", "", e->nonce, "");
	sb_num(&b, "arrival", (uint64_t)e->arrival);
	sb_num(&b, "size", e->size);
	sb_line(&b, "body", "", body_names[e->body], "");
	sb_line(&b, "smtputf8", "", e->smtputf8 ? "yes" : "no", "");
	sb_line(&b, "sender", "<", e->sender, ">");
	for (int k = H_AUTH; k < H_COUNT; k++) {
		char **f = header_text_field((struct envelope *)e, (enum hkey)k);
		if (k == H_RET && e->ret != ENVELOPE_RET_NONE)
			sb_line(&b, "ret", "", ret_names[e->ret], "");
		if (f != NULL && *f != NULL)
			sb_line(&b, hkeys[k], "", *f, "");
	}
	for (size_t i = 0; i < e->rcpt_count && b.len <= SPOOL_ENV_MAX_BYTES; i++) {
		const struct envelope_rcpt *r = &e->rcpts[i];
		if (r->addr == NULL || !index_ok((int)r->kind, 2) ||
		    !index_ok((int)r->state, 5)) {
			free(b.p);
			*error_r = "invalid recipient";
			return -1;
		}
		sb_line(&b, "rcpt", "<", r->addr, ">");
		sb_line(&b, "kind", "", kind_names[r->kind], "");
		if (r->notify != 0)
			write_notify(&b, r->notify);
		if (r->orcpt != NULL)
			sb_line(&b, "orcpt", "", r->orcpt, "");
		sb_line(&b, "state", "", state_names[r->state], "");
		sb_num(&b, "attempts", r->attempts);
		if (r->state == ENVELOPE_DEFERRED)
			sb_num(&b, "next-try", (uint64_t)r->next_try);
		if (r->inflight != 0)
			sb_num(&b, "inflight", (uint64_t)r->inflight);
		if (r->warned != 0)
			sb_num(&b, "warned", (uint64_t)r->warned);
		if (r->reply != NULL)
			sb_line(&b, "reply", "", r->reply, "");
		if (r->reply_mta != NULL)
			sb_line(&b, "reply-mta", "", r->reply_mta, "");
	}
	sb_add(&b, "end\n", 4);
	/* What we write must read back: the parser is the one definition of valid. */
	if (envelope_parse(b.p, b.len, &check, NULL, error_r) == -1) {
		free(b.p);
		return -1;
	}
	envelope_free(&check);
	*buf_r = b.p;
	*len_r = b.len;
	return 0;
}

/* ---- setters ---- */

int envelope_set_sender(struct envelope *e, const char *addr, const char **error_r)
{
	char path[SMTP_MAX_PATH + 3];
	unsigned flags;

	if (util_snprintf(path, sizeof(path), "<%s>", addr) < 0) {
		*error_r = "address too long";
		return -1;
	}
	if (addr_check(path, strlen(path), false, &flags, error_r) == -1)
		return -1;
	free(e->sender);
	e->sender = xstrdup(addr);
	return 0;
}

int envelope_set_text(struct envelope *e, const char *key, const char *value,
		      const char **error_r)
{
	int k = word_index(key, strlen(key), hkeys, H_COUNT);
	char **f = k >= 0 ? header_text_field(e, (enum hkey)k) : NULL;

	if (f == NULL) {
		*error_r = "not a text key";
		return -1;
	}
	if (value != NULL && header_text_check((enum hkey)k, value, strlen(value), error_r) == -1)
		return -1;
	free(*f);
	*f = value != NULL ? xstrdup(value) : NULL;
	return 0;
}

int envelope_add_rcpt(struct envelope *e, const char *addr, enum envelope_kind kind,
		      unsigned notify, const char *orcpt, const char **error_r)
{
	char path[SMTP_MAX_PATH + 3];
	unsigned flags;

	if (e->rcpt_count >= SPOOL_MAX_RCPTS) {
		*error_r = "too many recipients";
		return -1;
	}
	if (util_snprintf(path, sizeof(path), "<%s>", addr) < 0) {
		*error_r = "address too long";
		return -1;
	}
	if (addr_check(path, strlen(path), true, &flags, error_r) == -1)
		return -1;
	if (!index_ok((int)kind, 2) ||
	    (notify & ~(ENVELOPE_NOTIFY_NEVER | ENVELOPE_NOTIFY_SUCCESS |
			ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY)) != 0 ||
	    ((notify & ENVELOPE_NOTIFY_NEVER) && notify != ENVELOPE_NOTIFY_NEVER)) {
		*error_r = "invalid kind or NOTIFY";
		return -1;
	}
	if (orcpt != NULL && !orcpt_ok(orcpt, strlen(orcpt))) {
		*error_r = "invalid ORCPT";
		return -1;
	}
	struct envelope_rcpt *r = rcpt_append(e);
	r->addr = xstrdup(addr);
	r->kind = kind;
	r->notify = notify;
	r->orcpt = orcpt != NULL ? xstrdup(orcpt) : NULL;
	r->state = ENVELOPE_PENDING;
	return (int)(e->rcpt_count - 1);
}

const char *envelope_state_name(enum envelope_state s)
{
	return index_ok((int)s, 5) ? state_names[s] : "?";
}

const char *envelope_kind_name(enum envelope_kind k)
{
	return index_ok((int)k, 2) ? kind_names[k] : "?";
}
