/* The SASL server (RFC 4422) with PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login-00), and strict base64 (RFC 4648 section 4).
 *
 * A mechanism is a row of sasl_mechs[]: a name, whether the secret travels in clear, and a
 * step function that is fed one decoded client response at a time (NULL when the exchange
 * starts without an initial response).  It answers SASL_CONTINUE after it set the next
 * challenge, SASL_DONE after it filled the creds, or an error.  Everything the client sent
 * is in struct sasl_server, which is wiped when it is freed, and a decoded response is
 * wiped as soon as its step has run (it may be a password).
 *
 * The base64 decoder is written out rather than taken from OpenSSL's EVP_DecodeBlock,
 * which skips leading and trailing whitespace and would leave the padding checks to us
 * anyway.  It accepts only the canonical encoding: length a multiple of 4, padding only
 * at the end, no whitespace, and the unused bits of the last quantum zero. */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "sasl/sasl.h"
#include "base/util.h"

/* Base64 of a challenge of SASL_MAX_CHALLENGE octets, and its NUL. */
#define SASL_CHALLENGE_B64 ((SASL_MAX_CHALLENGE + 2) / 3 * 4 + 1)

enum sasl_phase { PHASE_NEW, PHASE_RUNNING, PHASE_DONE, PHASE_FAILED };

struct sasl_server {
	const struct sasl_mech *mech;
	enum sasl_phase phase;
	unsigned stage;                 /* the mechanism's own step counter */
	const char *error;              /* static text, for the log */
	struct sasl_creds creds;
	char challenge[SASL_CHALLENGE_B64];
	unsigned char buf[SASL_MAX_DECODED];  /* the decoded response being stepped */
};

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63, or -1 for anything else ('=' included). */
static int b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

long sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t out_size)
{
	size_t o = 0;

	/* RFC 4954 section 4 / RFC 5034 section 4: "=" is an empty initial response */
	if (len == 1 && in[0] == '=')
		return 0;
	if (len % 4 != 0 || len / 4 > (size_t)LONG_MAX / 3)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		const unsigned char *q = (const unsigned char *)in + i;
		int v[4];
		size_t nout = 3;
		bool last = i + 4 == len; /* BOUNDS: i + 4 <= len, len % 4 == 0 */

		for (int k = 0; k < 4; k++)
			v[k] = b64_value(q[k]);
		if (v[0] < 0 || v[1] < 0)
			goto bad;
		if (q[2] == '=' && q[3] == '=' && last) {
			if ((v[1] & 0x0f) != 0)
				goto bad; /* non-canonical: unused bits set */
			nout = 1;
		} else if (v[2] >= 0 && q[3] == '=' && last) {
			if ((v[2] & 0x03) != 0)
				goto bad;
			nout = 2;
		} else if (v[2] < 0 || v[3] < 0) {
			goto bad; /* bad character, or padding before the end */
		}
		if (out_size - o < nout) /* BOUNDS: o <= out_size always */
			goto bad;
		unsigned long bits = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
			((unsigned long)(v[2] < 0 ? 0 : v[2]) << 6) | (unsigned long)(v[3] < 0 ? 0 : v[3]);
		out[o++] = (unsigned char)(bits >> 16);
		if (nout > 1)
			out[o++] = (unsigned char)(bits >> 8);
		if (nout > 2)
			out[o++] = (unsigned char)bits;
	}
	return (long)o;
bad:
	if (o > 0)
		util_wipe(out, o); /* the part decoded may be a password */
	return -1;
}

long sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t out_size)
{
	if (len > ((size_t)LONG_MAX / 4 - 1) / 4 * 3)
		return -1;
	size_t need = (len + 2) / 3 * 4; /* BOUNDS: len bounded just above */
	if (out_size < need + 1)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		size_t left = len - i;
		unsigned long bits = (unsigned long)in[i] << 16;
		if (left > 1)
			bits |= (unsigned long)in[i + 1] << 8;
		if (left > 2)
			bits |= in[i + 2];
		out[o++] = b64_alphabet[(bits >> 18) & 0x3f];
		out[o++] = b64_alphabet[(bits >> 12) & 0x3f];
		out[o++] = left > 1 ? b64_alphabet[(bits >> 6) & 0x3f] : '=';
		out[o++] = left > 2 ? b64_alphabet[bits & 0x3f] : '=';
	}
	out[o] = '\0';
	return (long)o;
}


/* ---- mechanisms -------------------------------------------------------------------- */

static int set_challenge(struct sasl_server *s, const void *raw, size_t len)
{
	if (len > SASL_MAX_CHALLENGE ||
	    sasl_b64_encode(raw, len, s->challenge, sizeof(s->challenge)) < 0) {
		s->error = "challenge too long";
		return SASL_E_STATE;
	}
	return SASL_CONTINUE;
}

static int fail(struct sasl_server *s, int status, const char *error)
{
	s->error = error;
	return status;
}

/* A counted field into a NUL-terminated buffer of max + 1 bytes: non-empty, no NUL. */
static int copy_field(char *out, size_t max, const unsigned char *in, size_t len)
{
	if (len == 0 || len > max || memchr(in, '\0', len) != NULL)
		return -1;
	memcpy(out, in, len);
	out[len] = '\0';
	return 0;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd, each non-empty but the authzid, no NUL
 * inside.  An authzid is accepted only if it names the authcid itself: nobody may act
 * as somebody else (no proxy authorization). */
static int plain_step(struct sasl_server *s, const unsigned char *msg, size_t len)
{
	const unsigned char *nul1, *nul2;
	size_t zlen, ulen, plen;

	if (msg == NULL) {
		/* no initial response: an empty challenge asks for the message */
		s->stage = 1;
		return set_challenge(s, "", 0);
	}
	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return fail(s, SASL_E_MALFORMED, "malformed PLAIN message: no NUL");
	zlen = (size_t)(nul1 - msg);
	nul2 = memchr(nul1 + 1, '\0', len - zlen - 1);
	if (nul2 == NULL)
		return fail(s, SASL_E_MALFORMED, "malformed PLAIN message: one NUL");
	ulen = (size_t)(nul2 - nul1) - 1;
	plen = len - zlen - ulen - 2; /* BOUNDS: two NULs found inside msg[0..len) */
	if (memchr(nul2 + 1, '\0', plen) != NULL)
		return fail(s, SASL_E_MALFORMED, "malformed PLAIN message: more than two NULs");
	if (ulen == 0)
		return fail(s, SASL_E_MALFORMED, "empty user name");
	if (ulen > AUTH_MAX_USER)
		return fail(s, SASL_E_MALFORMED, "user name too long");
	if (plen == 0)
		return fail(s, SASL_E_MALFORMED, "empty password");
	if (plen > AUTH_MAX_PASS)
		return fail(s, SASL_E_MALFORMED, "password too long");
	if (zlen != 0 && (zlen != ulen || memcmp(msg, nul1 + 1, ulen) != 0))
		return fail(s, SASL_E_MALFORMED, "proxy authorization not supported");
	memcpy(s->creds.authzid, msg, zlen);
	s->creds.authzid[zlen] = '\0';
	memcpy(s->creds.authcid, nul1 + 1, ulen);
	s->creds.authcid[ulen] = '\0';
	memcpy(s->creds.secret, nul2 + 1, plen);
	s->creds.secret[plen] = '\0';
	return SASL_DONE;
}

/* LOGIN: the server asks "Username:" and "Password:", the client answers each.  An
 * initial response is the user name (what clients that send one mean by it). */
static int login_step(struct sasl_server *s, const unsigned char *in, size_t len)
{
	static const char ask_user[] = "Username:", ask_pass[] = "Password:";

	if (s->stage == 0 && in == NULL) {
		s->stage = 1;
		return set_challenge(s, ask_user, sizeof(ask_user) - 1);
	}
	if (s->stage <= 1) {
		if (copy_field(s->creds.authcid, AUTH_MAX_USER, in, len) < 0)
			return fail(s, SASL_E_MALFORMED, len == 0 ? "empty user name" :
				    len > AUTH_MAX_USER ? "user name too long" : "NUL in user name");
		s->stage = 2;
		return set_challenge(s, ask_pass, sizeof(ask_pass) - 1);
	}
	if (copy_field(s->creds.secret, AUTH_MAX_PASS, in, len) < 0)
		return fail(s, SASL_E_MALFORMED, len == 0 ? "empty password" :
			    len > AUTH_MAX_PASS ? "password too long" : "NUL in password");
	return SASL_DONE;
}

/* Offered in this order (CAPA "SASL PLAIN LOGIN"). */
static const struct sasl_mech sasl_mechs[] = {
	{ "PLAIN", true, plain_step },
	{ "LOGIN", true, login_step },
};

const struct sasl_mech *sasl_mech_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(sasl_mechs) / sizeof(sasl_mechs[0]); i++)
		if (util_token_eq(name, len, sasl_mechs[i].name))
			return &sasl_mechs[i];
	return NULL;
}

const struct sasl_mech *sasl_mech_at(size_t i)
{
	return i < sizeof(sasl_mechs) / sizeof(sasl_mechs[0]) ? &sasl_mechs[i] : NULL;
}

/* ---- the exchange ------------------------------------------------------------------ */

struct sasl_server *sasl_server_new(const struct sasl_mech *mech)
{
	struct sasl_server *s = xcalloc(1, sizeof(*s));

	s->mech = mech;
	s->phase = PHASE_NEW;
	return s;
}

void sasl_server_free(struct sasl_server **s)
{
	if (*s == NULL)
		return;
	util_wipe(*s, sizeof(**s));
	free(*s);
	*s = NULL;
}

/* A step's result moves the phase; a failed exchange keeps no credentials. */
static int finish(struct sasl_server *s, int r)
{
	if (r == SASL_CONTINUE)
		return r;
	s->challenge[0] = '\0';
	if (r == SASL_DONE) {
		s->phase = PHASE_DONE;
		return r;
	}
	s->phase = PHASE_FAILED;
	util_wipe(&s->creds, sizeof(s->creds));
	return r;
}

/* Decode one response and run the mechanism's step on it. */
static int feed(struct sasl_server *s, const char *text, size_t len)
{
	if (len > SASL_MAX_RESPONSE)
		return finish(s, fail(s, SASL_E_TOO_LONG, "response too long"));
	long n = sasl_b64_decode(text, len, s->buf, sizeof(s->buf));
	if (n < 0)
		return finish(s, fail(s, SASL_E_BASE64, "invalid base64"));
	int r = s->mech->step(s, s->buf, (size_t)n);
	util_wipe(s->buf, (size_t)n);
	return finish(s, r);
}

int sasl_server_start(struct sasl_server *s, const char *ir, size_t len)
{
	if (s->phase != PHASE_NEW)
		return fail(s, SASL_E_STATE, "exchange already started");
	s->phase = PHASE_RUNNING;
	/* "*" is no cancel here: it answers a challenge, and none was sent */
	if (ir != NULL)
		return feed(s, ir, len);
	return finish(s, s->mech->step(s, NULL, 0));
}

int sasl_server_step(struct sasl_server *s, const char *resp, size_t len)
{
	if (s->phase != PHASE_RUNNING)
		return fail(s, SASL_E_STATE, "no exchange in progress");
	if (len == 1 && resp[0] == '*')
		return finish(s, fail(s, SASL_E_CANCEL, "cancelled"));
	return feed(s, resp, len);
}

const char *sasl_server_challenge(const struct sasl_server *s)
{
	return s->challenge;
}

const struct sasl_creds *sasl_server_creds(const struct sasl_server *s)
{
	return s->phase == PHASE_DONE ? &s->creds : NULL;
}

const char *sasl_server_error(const struct sasl_server *s)
{
	return s->error != NULL ? s->error : "none";
}

const struct sasl_mech *sasl_server_mech(const struct sasl_server *s)
{
	return s->mech;
}
