/* libFuzzer: the SASL server (common/sasl).
 *
 * The input is tried as base64 (strict: whatever is accepted must be the canonical
 * encoding of what it decodes to), then as a whole exchange: the first byte picks the
 * mechanism (bit 0: PLAIN or LOGIN) and whether the first line is an initial response
 * (bit 1); the rest, split at LF, are the client's lines.  A finished exchange must give
 * a non-empty authcid and secret within their limits and an authzid that is empty or the
 * authcid; a failed one no credentials; every challenge must be base64 of at most
 * SASL_MAX_CHALLENGE octets. */
#include <stdint.h>
#include <string.h>
#include "sasl/sasl.h"

static void check_challenge(const struct sasl_server *s)
{
	static unsigned char dec[SASL_MAX_CHALLENGE + 3];
	const char *c = sasl_server_challenge(s);

	if (sasl_b64_decode(c, strlen(c), dec, sizeof(dec)) < 0 && c[0] != '\0')
		__builtin_trap();
}

static void check_done(const struct sasl_server *s)
{
	const struct sasl_creds *cr = sasl_server_creds(s);

	if (cr == NULL)
		__builtin_trap();
	size_t zl = strlen(cr->authzid), ul = strlen(cr->authcid), pl = strlen(cr->secret);
	if (ul == 0 || ul > AUTH_MAX_USER || pl == 0 || pl > AUTH_MAX_PASS)
		__builtin_trap();
	if (zl != 0 && strcmp(cr->authzid, cr->authcid) != 0)
		__builtin_trap();
}

static void exchange(const uint8_t *data, size_t size)
{
	const struct sasl_mech *m = sasl_mech_at(data[0] & 1);
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	struct sasl_server *s = sasl_server_new(m);
	int st;

	if ((data[0] & 2) != 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl != NULL ? nl : end;
		st = sasl_server_start(s, p, (size_t)(e - p));
		p = nl != NULL ? nl + 1 : end;
	} else {
		st = sasl_server_start(s, NULL, 0);
	}
	while (st == SASL_CONTINUE && p < end) {
		check_challenge(s);
		if (sasl_server_creds(s) != NULL)
			__builtin_trap();
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl != NULL ? nl : end;
		st = sasl_server_step(s, p, (size_t)(e - p));
		p = nl != NULL ? nl + 1 : end;
	}
	if (st == SASL_DONE)
		check_done(s);
	else if (st < 0 && (sasl_server_creds(s) != NULL || sasl_server_error(s) == NULL))
		__builtin_trap();
	if (st != SASL_CONTINUE && sasl_server_step(s, "AAAA", 4) != SASL_E_STATE)
		__builtin_trap();
	sasl_server_free(&s);
	if (s != NULL)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char dec[SASL_MAX_LINE];
	static char enc[SASL_MAX_LINE * 2];

	if (size > 4 * SASL_MAX_LINE)
		return 0;
	(void)sasl_mech_find((const char *)data, size);
	long n = size <= SASL_MAX_LINE ? sasl_b64_decode((const char *)data, size, dec,
							  sizeof(dec)) : -1;
	if (n >= 0) {
		long e = sasl_b64_encode(dec, (size_t)n, enc, sizeof(enc));
		int is_eq = size == 1 && data[0] == '=';
		if (e < 0 || (!is_eq && ((size_t)e != size || memcmp(enc, data, size) != 0)) ||
		    (is_eq && n != 0))
			__builtin_trap();
	}
	if (size > 0)
		exchange(data, size);
	return 0;
}
