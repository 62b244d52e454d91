/* SASL PLAIN (RFC 4616) and LOGIN decoding, and strict base64 (RFC 4648 section 4).
 *
 * The base64 decoder is written out rather than taken from OpenSSL's EVP_DecodeBlock,
 * which skips leading and trailing whitespace and would leave the padding checks to us
 * anyway.  It accepts only the canonical encoding: length a multiple of 4, padding only
 * at the end, no whitespace, and the unused bits of the last quantum zero. */
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include "sasl/sasl.h"
#include "base/util.h"

enum sasl_mech sasl_mech_parse(const char *name, size_t len)
{
	if (util_token_eq(name, len, "PLAIN"))
		return SASL_PLAIN;
	if (util_token_eq(name, len, "LOGIN"))
		return SASL_LOGIN;
	return SASL_NONE;
}

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

int sasl_plain_parse(const unsigned char *msg, size_t len, struct sasl_creds *r,
		     const char **error_r)
{
	const unsigned char *nul1, *nul2;
	size_t zlen, ulen, plen;

	memset(r, 0, sizeof(*r));
	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL) {
		*error_r = "malformed PLAIN message: no NUL";
		return -1;
	}
	zlen = (size_t)(nul1 - msg);
	nul2 = memchr(nul1 + 1, '\0', len - zlen - 1);
	if (nul2 == NULL) {
		*error_r = "malformed PLAIN message: one NUL";
		return -1;
	}
	ulen = (size_t)(nul2 - nul1) - 1;
	plen = len - zlen - ulen - 2; /* BOUNDS: two NULs found inside msg[0..len) */
	if (memchr(nul2 + 1, '\0', plen) != NULL) {
		*error_r = "malformed PLAIN message: more than two NULs";
		return -1;
	}
	if (ulen == 0) {
		*error_r = "empty user name";
		return -1;
	}
	if (ulen > AUTH_MAX_USER) {
		*error_r = "user name too long";
		return -1;
	}
	if (plen == 0) {
		*error_r = "empty password";
		return -1;
	}
	if (plen > AUTH_MAX_PASS) {
		*error_r = "password too long";
		return -1;
	}
	if (zlen != 0 && (zlen != ulen || memcmp(msg, nul1 + 1, ulen) != 0)) {
		*error_r = "proxy authorization not supported";
		return -1;
	}
	memcpy(r->user, nul1 + 1, ulen);
	r->user[ulen] = '\0';
	memcpy(r->pass, nul2 + 1, plen);
	r->pass[plen] = '\0';
	return 0;
}

int sasl_login_value(const unsigned char *msg, size_t len, char *out, size_t out_size)
{
	if (out_size == 0)
		return -1;
	out[0] = '\0';
	if (len == 0 || len >= out_size || memchr(msg, '\0', len) != NULL)
		return -1;
	memcpy(out, msg, len);
	out[len] = '\0';
	return 0;
}

void sasl_creds_wipe(struct sasl_creds *c)
{
	util_wipe(c, sizeof(*c));
}
