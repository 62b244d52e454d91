/* libFuzzer: the DKIM signer (dkim.c) with fixed test keys (an Ed25519 key from a fixed
 * seed; an RSA 1024 key made once).  Byte 0: bit 0 picks the key, the rest the chunk
 * size; the rest is a message.  Checks: fed whole and in chunks, the same result (the
 * same signature, or both refused); a signature is well-formed (the field name, a=,
 * bh=, b=, CRLF line ends, folded lines no longer than 78, every continuation starting
 * with a tab); the canonical body has no white space before a line end, no WSP runs or
 * tabs, no empty lines at its end, and ends in CRLF unless empty; a canonical field's
 * value has no tab, no WSP run, no WSP at its ends, no line end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "mail/dkim.h"

static EVP_PKEY *ed, *rsa;

static char *sign(EVP_PKEY *key, const uint8_t *data, size_t size, size_t step)
{
	struct dkim_signer *s;
	const char *err;
	char *h = NULL;

	if (dkim_signer_new(key, "163.test", "fuzz", 1700000000, &s, &err) == -1)
		abort();
	for (size_t i = 0; i < size; i += step)
		dkim_signer_feed(s, data + i, size - i < step ? size - i : step);
	if (dkim_signer_finish(s, &h, &err) == -1) {
		if (err == NULL || h != NULL)
			abort();
		h = NULL;
	}
	dkim_signer_free(&s);
	return h;
}

static void check_sig(const char *h)
{
	size_t len = strlen(h);

	if (strncmp(h, "DKIM-Signature: v=1; a=", 23) != 0 || len < 2 ||
	    strcmp(h + len - 2, "\r\n") != 0 || strstr(h, "\tbh=") == NULL ||
	    strstr(h, "\tb=") == NULL || strstr(h, "\th=from:") == NULL)
		abort();
	for (const char *p = h; *p != '\0';) {
		const char *e = strstr(p, "\r\n");
		if (e == NULL || e - p > 78 || memchr(p, '\n', (size_t)(e - p)) != NULL ||
		    memchr(p, '\r', (size_t)(e - p)) != NULL)
			abort();
		p = e + 2;
		if (*p != '\0' && *p != '\t')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char seed[32] = "postern fuzz key, not a secret!";

	if (ed == NULL) {
		ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
		rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
		if (ed == NULL || rsa == NULL)
			abort();
	}
	if (size < 1)
		return 0;
	EVP_PKEY *key = data[0] & 1 ? rsa : ed;
	size_t step = (data[0] >> 1) + 1;
	data++;
	size--;

	char *whole = sign(key, data, size, size > 0 ? size : 1);
	char *chunked = sign(key, data, size, step);
	if ((whole == NULL) != (chunked == NULL) ||
	    (whole != NULL && strcmp(whole, chunked) != 0))
		abort();
	if (whole != NULL)
		check_sig(whole);
	free(whole);
	free(chunked);

	size_t cl;
	char *c = dkim_canon_body(data, size, &cl);
	if (memmem(c, cl, " \r\n", 3) != NULL || memmem(c, cl, "  ", 2) != NULL ||
	    memchr(c, '\t', cl) != NULL || (cl > 0 && (cl < 2 || memcmp(c + cl - 2, "\r\n", 2) != 0)) ||
	    (cl >= 4 && memcmp(c + cl - 4, "\r\n\r\n", 4) == 0) || (cl == 2))
		abort();
	free(c);
	/* a field: its value (after the first colon) unfolded, WSP runs one SP */
	c = dkim_canon_header((const char *)data, size, &cl);
	if (cl < 3 || memcmp(c + cl - 2, "\r\n", 2) != 0)
		abort();
	if (memchr(data, ':', size) != NULL) {
		const char *v = memchr(c, ':', cl) + 1;
		size_t vl = cl - 2 - (size_t)(v - c);
		if (memchr(v, '\t', vl) != NULL || memmem(v, vl, "  ", 2) != NULL ||
		    (vl > 0 && (v[0] == ' ' || v[vl - 1] == ' ')) ||
		    memmem(v, vl, "\r\n", 2) != NULL)
			abort();
	}
	free(c);
	return 0;
}
