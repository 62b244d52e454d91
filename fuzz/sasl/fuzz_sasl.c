/* libFuzzer: SASL decoding.  The input is tried as base64 (strict: whatever is accepted
 * must be the canonical encoding of what it decodes to), then as a decoded PLAIN message
 * and a LOGIN value; accepted credentials must rebuild a message that parses the same. */
#include <stdint.h>
#include <string.h>
#include "sasl/sasl.h"

static void check_plain(const unsigned char *msg, size_t len)
{
	struct sasl_creds cr, again;
	const char *error = NULL;
	unsigned char rebuilt[AUTH_MAX_USER + AUTH_MAX_PASS + 2];

	if (sasl_plain_parse(msg, len, &cr, &error) != 0) {
		if (error == NULL || cr.user[0] != '\0' || cr.pass[0] != '\0')
			__builtin_trap();
		return;
	}
	size_t ul = strlen(cr.user), pl = strlen(cr.pass);
	if (ul == 0 || ul > AUTH_MAX_USER || pl == 0 || pl > AUTH_MAX_PASS)
		__builtin_trap();
	rebuilt[0] = '\0';
	memcpy(rebuilt + 1, cr.user, ul);
	rebuilt[1 + ul] = '\0';
	memcpy(rebuilt + 2 + ul, cr.pass, pl);
	if (sasl_plain_parse(rebuilt, ul + pl + 2, &again, &error) != 0 ||
	    strcmp(again.user, cr.user) != 0 || strcmp(again.pass, cr.pass) != 0)
		__builtin_trap();
	sasl_creds_wipe(&cr);
	sasl_creds_wipe(&again);
}

static void check_login(const unsigned char *msg, size_t len)
{
	char out[AUTH_MAX_PASS + 1];

	if (sasl_login_value(msg, len, out, sizeof(out)) == 0) {
		if (len == 0 || strlen(out) != len || memcmp(out, msg, len) != 0)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char dec[SASL_MAX_LINE];
	static char enc[SASL_MAX_LINE * 2];

	if (size > SASL_MAX_LINE)
		return 0;
	(void)sasl_mech_parse((const char *)data, size);
	long n = sasl_b64_decode((const char *)data, size, dec, sizeof(dec));
	if (n >= 0) {
		long e = sasl_b64_encode(dec, (size_t)n, enc, sizeof(enc));
		int is_eq = size == 1 && data[0] == '=';
		if (e < 0 || (!is_eq && ((size_t)e != size || memcmp(enc, data, size) != 0)) ||
		    (is_eq && n != 0))
			__builtin_trap();
		check_plain(dec, (size_t)n);
		check_login(dec, (size_t)n);
	}
	check_plain(data, size);
	check_login(data, size);
	return 0;
}
