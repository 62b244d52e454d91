/* DKIM signing, relaxed/relaxed (RFC 6376 sections 3.4.2, 3.4.4, 3.7, 5), with
 * rsa-sha256 or ed25519-sha256 (RFC 8463).  See dkim.h; the key files are in dkim_key.c.
 *
 * The signed fields (dkim_sign_names): the ones a reader sees and that say who wrote
 * what to whom (From, Reply-To, Subject, Date, To, Cc), the thread (Message-ID,
 * In-Reply-To, References) and how the body is read (MIME-Version, Content-Type,
 * Content-Transfer-Encoding): changing any of them changes what the recipient sees.
 * Each occurs at most once in a message (RFC 5322 section 3.6, RFC 2045), so every one is
 * over-signed: h= names it once more than it is present (and once when absent), and a
 * field of that name added on the way (a second From or Subject shown instead of ours)
 * breaks the signature (RFC 6376 section 8.15).  Not signed: trace fields (Received,
 * Return-Path) and others that hops add or rewrite by design. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/base64.h"
#include "mail/dkim.h"
#include "mail/header.h"

static const char *const dkim_sign_names[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to",
	"references", "mime-version", "content-type", "content-transfer-encoding",
};
#define DKIM_NAMES (sizeof(dkim_sign_names) / sizeof(dkim_sign_names[0]))

/* Body canonicalization state (3.4.4): runs of WSP become one SP, WSP at a line's end
 * goes, empty lines at the end go (counted here and written only when a line with
 * content follows), a last line without line end gets one. */
struct body_canon {
	uint64_t empty_lines;    /* empty lines held back */
	bool in_line;            /* the current line has content written */
	bool wsp;                /* WSP seen and not yet written */
	bool cr;                 /* a CR seen, the next byte decides */
	void (*out)(void *ctx, const char *p, size_t n);
	void *ctx;
	size_t used;
	char buf[4096];
};

struct kept_field {
	unsigned name;           /* index in dkim_sign_names */
	size_t off, len;         /* canonical "name:value\r\n" in dkim_signer.kept */
};

struct dkim_signer {
	EVP_PKEY *key;
	enum dkim_alg alg;
	char *domain, *selector;
	time_t t;
	struct header_parser *hp;
	bool in_body;
	const char *error;       /* the first reason the message cannot be signed */
	char *kept;              /* canonical signed fields, in order */
	size_t kept_len, kept_size;
	struct kept_field *fields;
	size_t nfields, fields_size;
	EVP_MD_CTX *body_md;
	struct body_canon body;
};

static void body_flush(struct body_canon *b)
{
	if (b->used > 0)
		b->out(b->ctx, b->buf, b->used);
	b->used = 0;
}

static void body_put(struct body_canon *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b->used == sizeof(b->buf))
			body_flush(b);
		b->buf[b->used++] = p[i];
	}
}

static void body_content(struct body_canon *b, char ch)
{
	if (!b->in_line) {
		for (; b->empty_lines > 0; b->empty_lines--)
			body_put(b, "\r\n", 2);
		b->in_line = true;
	}
	if (b->wsp)
		body_put(b, " ", 1);
	b->wsp = false;
	body_put(b, &ch, 1);
}

static void body_line_end(struct body_canon *b)
{
	b->wsp = false;
	if (b->in_line)
		body_put(b, "\r\n", 2);
	else
		b->empty_lines++;
	b->in_line = false;
}

static void body_feed(struct body_canon *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (b->cr) {
			b->cr = false;
			if (ch == '\n') {
				body_line_end(b);
				continue;
			}
			body_content(b, '\r');     /* a lone CR is an ordinary byte */
		}
		if (ch == '\r')
			b->cr = true;
		else if (ch == '\n')
			body_line_end(b);          /* a bare LF: a line end (dkim.h) */
		else if (ch == ' ' || ch == '\t')
			b->wsp = true;
		else
			body_content(b, ch);
	}
}

static void body_finish(struct body_canon *b)
{
	if (b->cr)
		body_content(b, '\r');
	b->cr = false;
	if (b->in_line)
		body_line_end(b);          /* a CRLF is added to a last line without one */
	body_flush(b);                     /* trailing empty lines are never written */
}

/* Relaxed header canonicalization (3.4.2) of a name and the raw text after its colon,
 * appended to out (which has room for name_len + raw_len + 3). */
static size_t canon_field(const char *name, size_t name_len, const char *raw,
			  size_t raw_len, char *out)
{
	size_t o = 0;
	bool wsp = false;

	for (size_t i = 0; i < name_len; i++) {
		char ch = name[i];
		out[o++] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
	}
	out[o++] = ':';
	size_t start = o;
	for (size_t i = 0; i < raw_len; i++) {
		char ch = raw[i];
		if (ch == '\r' && i + 1 < raw_len && raw[i + 1] == '\n')
			continue;          /* unfold: the CR of a fold's CRLF */
		if (ch == '\n')
			continue;          /* and its LF (or a bare LF fold) */
		if (ch == ' ' || ch == '\t') {
			wsp = true;
			continue;
		}
		if (wsp && o > start)  /* leading WSP goes, inner runs become one SP */
			out[o++] = ' ';
		wsp = false;
		out[o++] = ch;         /* trailing WSP is never written */
	}
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}

static int name_index(const char *name, size_t len)
{
	for (unsigned i = 0; i < DKIM_NAMES; i++)
		if (strlen(dkim_sign_names[i]) == len && strncasecmp(name, dkim_sign_names[i], len) == 0)
			return (int)i;
	return -1;
}

static void signer_field(void *ctx, const struct header_field *f)
{
	struct dkim_signer *s = ctx;
	int idx = f->no_colon ? -1 : name_index(f->name, f->name_len);

	if (idx < 0 || s->error != NULL)
		return;
	if (f->truncated) {
		s->error = "a signed header field is longer than HEADER_FIELD_MAX";
		return;
	}
	size_t need = f->name_len + f->raw_len + 3;   /* BOUNDS: canon_field's output */
	if (need > DKIM_MAX_SIGNED_BYTES - s->kept_len) {
		s->error = "the signed header fields exceed DKIM_MAX_SIGNED_BYTES";
		return;
	}
	if (s->kept_len + need > s->kept_size) {
		s->kept_size = s->kept_len + need > 2 * s->kept_size ? s->kept_len + need :
			       2 * s->kept_size;
		s->kept = xrealloc(s->kept, s->kept_size);
	}
	if (s->nfields == s->fields_size) {
		s->fields_size = s->fields_size == 0 ? 16 : 2 * s->fields_size;
		s->fields = xrealloc(s->fields, s->fields_size * sizeof(*s->fields));
	}
	size_t n = canon_field(f->name, f->name_len, f->raw, f->raw_len, s->kept + s->kept_len);
	s->fields[s->nfields++] = (struct kept_field){ (unsigned)idx, s->kept_len, n };
	s->kept_len += n;
}

static void body_to_md(void *ctx, const char *p, size_t n)
{
	if (EVP_DigestUpdate(ctx, p, n) != 1)
		abort();           /* SHA-256 update on memory cannot fail */
}

int dkim_signer_new(EVP_PKEY *key, const char *domain, const char *selector, time_t t,
		    struct dkim_signer **signer_r, const char **error_r)
{
	enum dkim_alg alg;

	if (dkim_key_alg(key, &alg, error_r) == -1)
		return -1;
	if (!dkim_name_ok(domain) || !dkim_name_ok(selector)) {
		*error_r = "the DKIM domain or selector is not a domain name";
		return -1;
	}
	struct dkim_signer *s = xmalloc(sizeof(*s));
	memset(s, 0, sizeof(*s));
	s->body_md = EVP_MD_CTX_new();
	if (s->body_md == NULL || EVP_DigestInit_ex(s->body_md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(s->body_md);
		free(s);
		*error_r = "SHA-256 is not available";
		return -1;
	}
	if (EVP_PKEY_up_ref(key) != 1)
		abort();
	s->key = key;
	s->alg = alg;
	s->domain = xstrdup(domain);
	s->selector = xstrdup(selector);
	s->t = t;
	s->hp = header_parser_new(0);
	s->body.out = body_to_md;
	s->body.ctx = s->body_md;
	*signer_r = s;
	return 0;
}

void dkim_signer_feed(struct dkim_signer *s, const void *data, size_t len)
{
	const char *p = data;

	if (!s->in_body) {
		size_t used = header_parser_feed(s->hp, p, len, signer_field, s);
		if (!header_parser_done(s->hp))
			return;
		s->in_body = true;
		p += used;
		len -= used;
	}
	body_feed(&s->body, p, len);
}

/* Append text to a growing string. */
struct sbuf {
	char *p;
	size_t len, size;
};

static void sb_add(struct sbuf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->size) {
		b->size = (b->len + n + 1) * 2;   /* BOUNDS: header text, a few KiB */
		b->p = xrealloc(b->p, b->size);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Line length of the last line of b (for folding). */
static size_t sb_col(const struct sbuf *b)
{
	size_t i = b->len;
	while (i > 0 && b->p[i - 1] != '\n')
		i--;
	return b->len - i;
}

/* The signed fields' hash input, h= order: for each name its instances bottom-up (the
 * last DKIM_MAX_SIGNED_PER_NAME), then the over-signing entry that matches none.  Adds
 * h= to sig. */
static int hash_fields(struct dkim_signer *s, EVP_MD_CTX *md, struct sbuf *sig)
{
	bool first = true, from = false;

	sb_str(sig, "h=");
	for (unsigned n = 0; n < DKIM_NAMES; n++) {
		unsigned count = 0;
		for (size_t i = s->nfields; i > 0 && count < DKIM_MAX_SIGNED_PER_NAME; i--) {
			const struct kept_field *f = &s->fields[i - 1];
			if (f->name != n)
				continue;
			if (EVP_DigestUpdate(md, s->kept + f->off, f->len) != 1)
				return -1;
			count++;
		}
		if (n == 0 && count > 0)
			from = true;
		for (unsigned k = 0; k <= count; k++) {
			if (!first)
				sb_str(sig, ":");
			if (sb_col(sig) + strlen(dkim_sign_names[n]) > 74)
				sb_str(sig, "\r\n\t");
			sb_str(sig, dkim_sign_names[n]);
			first = false;
		}
	}
	sb_str(sig, ";");
	return from ? 0 : -2;
}

static int sign_digest(struct dkim_signer *s, const unsigned char *dig, size_t dig_len,
		       unsigned char **sig_r, size_t *len_r)
{
	size_t len = 0;
	int ok = 0;

	*sig_r = NULL;
	if (s->alg == DKIM_ALG_RSA_SHA256) {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(s->key, NULL);
		if (pc != NULL && EVP_PKEY_sign_init(pc) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(pc, NULL, &len, dig, dig_len) == 1) {
			*sig_r = xmalloc(len);
			ok = EVP_PKEY_sign(pc, *sig_r, &len, dig, dig_len);
		}
		EVP_PKEY_CTX_free(pc);
	} else {
		/* RFC 8463 section 3: PureEdDSA over the SHA-256 hash of the data */
		EVP_MD_CTX *mc = EVP_MD_CTX_new();
		if (mc != NULL && EVP_DigestSignInit(mc, NULL, NULL, NULL, s->key) == 1 &&
		    EVP_DigestSign(mc, NULL, &len, dig, dig_len) == 1) {
			*sig_r = xmalloc(len);
			ok = EVP_DigestSign(mc, *sig_r, &len, dig, dig_len);
		}
		EVP_MD_CTX_free(mc);
	}
	if (ok != 1) {
		free(*sig_r);
		*sig_r = NULL;
		return -1;
	}
	*len_r = len;
	return 0;
}

/* b= folded: the rest of the "b=" line, then lines of 72. */
static void add_b64_folded(struct sbuf *sig, const char *b64, size_t len)
{
	size_t col = sb_col(sig) < 72 ? sb_col(sig) : 72;
	size_t room = 72 - col < len ? 72 - col : len;

	sb_add(sig, b64, room);
	for (size_t i = room; i < len; i += 72) {
		sb_str(sig, "\r\n\t");
		sb_add(sig, b64 + i, len - i < 72 ? len - i : 72);
	}
}

int dkim_signer_finish(struct dkim_signer *s, char **header_r, const char **error_r)
{
	unsigned char bh[EVP_MAX_MD_SIZE], dig[EVP_MAX_MD_SIZE], *sigbin = NULL;
	unsigned bh_len = 0, dig_len = 0;
	size_t sig_len = 0;
	char num[32];
	struct sbuf sig = { NULL, 0, 0 };
	EVP_MD_CTX *md = NULL;

	*header_r = NULL;
	header_parser_finish(s->hp, signer_field, s);
	body_finish(&s->body);
	if (s->error != NULL) {
		*error_r = s->error;
		return -1;
	}
	if (EVP_DigestFinal_ex(s->body_md, bh, &bh_len) != 1)
		goto fail;
	/* BOUNDS: base64 of a SHA-256 hash, 44 + NUL; of a signature (RSA <= 16384 bits) */
	char bh64[BASE64_ENCODED_LEN(EVP_MAX_MD_SIZE) + 1];
	base64_encode(bh, bh_len, bh64);

	sb_str(&sig, "DKIM-Signature: v=1; a=");
	sb_str(&sig, s->alg == DKIM_ALG_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256");
	sb_str(&sig, "; c=relaxed/relaxed;\r\n\td=");
	sb_str(&sig, s->domain);
	sb_str(&sig, "; s=");
	sb_str(&sig, s->selector);
	snprintf(num, sizeof(num), "; t=%lld;\r\n\t", (long long)s->t);
	sb_str(&sig, num);
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto fail;
	int r = hash_fields(s, md, &sig);
	if (r == -2) {
		*error_r = "the message has no From field";
		goto out;
	}
	if (r == -1)
		goto fail;
	sb_str(&sig, "\r\n\tbh=");
	sb_str(&sig, bh64);
	sb_str(&sig, ";\r\n\tb=");
	/* The signature field itself, b= empty, relaxed, without its line end (3.7). */
	size_t colon = strlen("DKIM-Signature:");
	char *canon = xmalloc(sig.len + 3);
	size_t clen = canon_field(sig.p, colon - 1, sig.p + colon, sig.len - colon, canon);
	int ok = EVP_DigestUpdate(md, canon, clen - 2) == 1 &&
		 EVP_DigestFinal_ex(md, dig, &dig_len) == 1;
	free(canon);
	if (!ok || sign_digest(s, dig, dig_len, &sigbin, &sig_len) == -1)
		goto fail;
	char *b64 = xmalloc(BASE64_ENCODED_LEN(sig_len) + 1);
	size_t b64_len = base64_encode(sigbin, sig_len, b64);
	add_b64_folded(&sig, b64, b64_len);
	free(b64);
	free(sigbin);
	sb_str(&sig, "\r\n");
	EVP_MD_CTX_free(md);
	*header_r = sig.p;
	return 0;
fail:
	*error_r = "the DKIM signature could not be computed (OpenSSL)";
out:
	EVP_MD_CTX_free(md);
	free(sig.p);
	return -1;
}

void dkim_signer_free(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	EVP_PKEY_free(s->key);
	EVP_MD_CTX_free(s->body_md);
	header_parser_free(&s->hp);
	free(s->domain);
	free(s->selector);
	free(s->kept);
	free(s->fields);
	free(s);
}

static void body_to_sbuf(void *ctx, const char *p, size_t n)
{
	sb_add(ctx, p, n);
}

char *dkim_canon_body(const void *body, size_t len, size_t *len_r)
{
	struct sbuf out = { NULL, 0, 0 };
	struct body_canon b;

	memset(&b, 0, sizeof(b));
	b.out = body_to_sbuf;
	b.ctx = &out;
	sb_add(&out, "", 0);
	body_feed(&b, body, len);
	body_finish(&b);
	*len_r = out.len;
	return out.p;
}

char *dkim_canon_header(const char *field, size_t len, size_t *len_r)
{
	const char *colon = memchr(field, ':', len);
	size_t name_len = colon != NULL ? (size_t)(colon - field) : len;
	const char *raw = colon != NULL ? colon + 1 : field + len;

	while (name_len > 0 && (field[name_len - 1] == ' ' || field[name_len - 1] == '\t'))
		name_len--;
	char *out = xmalloc(len + 4);      /* BOUNDS: canon_field writes <= len + 3 */
	*len_r = canon_field(field, name_len, raw, (size_t)(field + len - raw), out);
	out[*len_r] = '\0';
	return out;
}
