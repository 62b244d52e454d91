/* sasl: strict base64, PLAIN and LOGIN decoding, mechanism names; every limit at max and
 * max + 1. */
#include <stdlib.h>
#include <string.h>
#include "sasl/sasl.h"
#include "unit.h"

#define S(lit) lit, sizeof(lit) - 1

struct b64_case {
	const char *in;
	const char *out;
	size_t outlen;
};

static const struct b64_case b64_valid[] = {
	{ "", "", 0 },
	{ "=", "", 0 },                 /* RFC 4954 / RFC 5034: empty initial response */
	{ "Zg==", "f", 1 },
	{ "Zm8=", "fo", 2 },
	{ "Zm9v", "foo", 3 },
	{ "Zm9vYg==", "foob", 4 },
	{ "Zm9vYmE=", "fooba", 5 },
	{ "Zm9vYmFy", "foobar", 6 },
	{ "AG5lZABzZWNyZXQ=", "\0ned\0secret", 11 },
	{ "+/+/", "\xfb\xff\xbf", 3 },
	{ "AAAA", "\0\0\0", 3 },
	{ "////", "\xff\xff\xff", 3 },
};

static const char *const b64_invalid[] = {
	"Zg=",          /* length not a multiple of 4 */
	"Zg",
	"Z",
	"Zm9vY",
	"==",
	"===",
	"====",         /* padding only */
	"Z===",
	"Zg==Zg==",     /* padding before the end */
	"Zm9v====",
	"Z=g=",
	"=Zm9",
	"Zm9v\r\n",     /* whitespace */
	" Zm9v",
	"Zm9 v",
	"Zm9v ",
	"Zm9\tv",
	"Zh==",         /* non-canonical: unused bits set */
	"Zm9=",
	"Zm-v",         /* base64url alphabet */
	"Zm_v",
	"Zm9*",
	"Zm9\x80",
	"*",
};

static void test_b64_decode(void)
{
	unsigned char out[64];

	for (size_t i = 0; i < sizeof(b64_valid) / sizeof(b64_valid[0]); i++) {
		const struct b64_case *t = &b64_valid[i];
		long n = sasl_b64_decode(t->in, strlen(t->in), out, sizeof(out));
		if (n != (long)t->outlen || memcmp(out, t->out, t->outlen) != 0) {
			unit_fail++;
			fprintf(stderr, "b64_valid[%zu] \"%s\": got %ld\n", i, t->in, n);
		} else {
			unit_pass++;
		}
		/* output buffer exactly the size, and one byte short */
		CHECK(sasl_b64_decode(t->in, strlen(t->in), out, t->outlen) == (long)t->outlen);
		if (t->outlen > 0)
			CHECK(sasl_b64_decode(t->in, strlen(t->in), out, t->outlen - 1) == -1);
	}
	for (size_t i = 0; i < sizeof(b64_invalid) / sizeof(b64_invalid[0]); i++) {
		long n = sasl_b64_decode(b64_invalid[i], strlen(b64_invalid[i]), out, sizeof(out));
		if (n != -1) {
			unit_fail++;
			fprintf(stderr, "b64_invalid[%zu] \"%s\": got %ld\n", i, b64_invalid[i], n);
		} else {
			unit_pass++;
		}
	}
	/* a NUL inside the counted input */
	CHECK(sasl_b64_decode(S("Zm9\0"), out, sizeof(out)) == -1);
	CHECK(sasl_b64_decode(S("Zg\0\0"), out, sizeof(out)) == -1);
	/* a failure halfway leaves no decoded bytes behind (they may be a password) */
	memset(out, 0x55, sizeof(out));
	CHECK(sasl_b64_decode(S("c2VjcmV0!!!!"), out, sizeof(out)) == -1);
	CHECK(out[0] == 0 && out[5] == 0 && out[6] == 0x55);
	/* "=" is special only alone */
	CHECK(sasl_b64_decode(S("=\0"), out, sizeof(out)) == -1);
}

static void test_b64_encode(void)
{
	char enc[160];
	unsigned char dec[96], all[96];

	for (size_t i = 0; i < sizeof(b64_valid) / sizeof(b64_valid[0]); i++) {
		const struct b64_case *t = &b64_valid[i];
		if (strcmp(t->in, "=") == 0)
			continue;
		long n = sasl_b64_encode((const unsigned char *)t->out, t->outlen, enc, sizeof(enc));
		CHECK(n == (long)strlen(t->in));
		CHECK_STR(enc, t->in);
		/* room for exactly the output and its NUL, and one byte less */
		CHECK(sasl_b64_encode((const unsigned char *)t->out, t->outlen, enc,
				      strlen(t->in) + 1) == (long)strlen(t->in));
		CHECK(sasl_b64_encode((const unsigned char *)t->out, t->outlen, enc,
				      strlen(t->in)) == -1);
	}
	/* every byte value and length round-trips */
	for (size_t i = 0; i < sizeof(all); i++)
		all[i] = (unsigned char)(i * 37 + 11);
	int bad = 0;
	for (size_t len = 0; len <= sizeof(all); len++) {
		long n = sasl_b64_encode(all, len, enc, sizeof(enc));
		long m = n < 0 ? -1 : sasl_b64_decode(enc, (size_t)n, dec, sizeof(dec));
		if (m != (long)len || memcmp(dec, all, len) != 0)
			bad++;
	}
	CHECK(bad == 0);
}

struct plain_case {
	const char *msg;
	size_t len;
	const char *user;       /* valid: expected user */
	const char *pass;       /* valid: expected password; invalid: expected error */
};

static const struct plain_case plain_valid[] = {
	{ S("\0ned\0secret"), "ned", "secret" },
	{ S("ned\0ned\0secret"), "ned", "secret" },
	{ S("\0ned\0pass with spaces"), "ned", "pass with spaces" },
	{ S("\0n\0p"), "n", "p" },
	{ S("\0j\xc3\xbcrgen\0p\xc3\xa4ss"), "j\xc3\xbcrgen", "p\xc3\xa4ss" },
	{ S("\0ned@example.org\0s\x01\x7f"), "ned@example.org", "s\x01\x7f" },
};

static const struct plain_case plain_invalid[] = {
	{ S(""), NULL, "malformed PLAIN message: no NUL" },
	{ S("nedsecret"), NULL, "malformed PLAIN message: no NUL" },
	{ S("ned\0secret"), NULL, "malformed PLAIN message: one NUL" },
	{ S("\0"), NULL, "malformed PLAIN message: one NUL" },
	{ S("\0ned\0sec\0ret"), NULL, "malformed PLAIN message: more than two NULs" },
	{ S("\0\0\0"), NULL, "malformed PLAIN message: more than two NULs" },
	{ S("\0ned\0secret\0"), NULL, "malformed PLAIN message: more than two NULs" },
	{ S("\0\0secret"), NULL, "empty user name" },
	{ S("ned\0\0secret"), NULL, "empty user name" },
	{ S("\0ned\0"), NULL, "empty password" },
	{ S("\0\0"), NULL, "empty user name" },
	{ S("bob\0ned\0secret"), NULL, "proxy authorization not supported" },
	{ S("ne\0ned\0secret"), NULL, "proxy authorization not supported" },
	{ S("nedx\0ned\0secret"), NULL, "proxy authorization not supported" },
	{ S("NED\0ned\0secret"), NULL, "proxy authorization not supported" },
};

static void test_plain(void)
{
	struct sasl_creds cr;
	const char *error;

	for (size_t i = 0; i < sizeof(plain_valid) / sizeof(plain_valid[0]); i++) {
		const struct plain_case *t = &plain_valid[i];
		error = NULL;
		CHECK(sasl_plain_parse((const unsigned char *)t->msg, t->len, &cr, &error) == 0);
		CHECK_STR(cr.user, t->user);
		CHECK_STR(cr.pass, t->pass);
		sasl_creds_wipe(&cr);
		CHECK(cr.user[0] == '\0' && cr.pass[0] == '\0');
	}
	for (size_t i = 0; i < sizeof(plain_invalid) / sizeof(plain_invalid[0]); i++) {
		const struct plain_case *t = &plain_invalid[i];
		error = NULL;
		memset(&cr, 'x', sizeof(cr));
		int r = sasl_plain_parse((const unsigned char *)t->msg, t->len, &cr, &error);
		CHECK(r == -1);
		if (r == -1)
			CHECK_STR(error, t->pass);
		CHECK(cr.user[0] == '\0' && cr.pass[0] == '\0');
	}
}

/* "\0" user "\0" pass with lengths ulen and plen. */
static size_t plain_make(unsigned char *buf, size_t zlen, size_t ulen, size_t plen)
{
	size_t n = 0;
	memset(buf + n, 'u', zlen);
	n += zlen;
	buf[n++] = '\0';
	memset(buf + n, 'u', ulen);
	n += ulen;
	buf[n++] = '\0';
	memset(buf + n, 'p', plen);
	n += plen;
	return n;
}

static void test_plain_limits(void)
{
	unsigned char msg[2 * AUTH_MAX_USER + AUTH_MAX_PASS + 8];
	struct sasl_creds cr;
	const char *error;
	size_t n;

	n = plain_make(msg, 0, AUTH_MAX_USER, AUTH_MAX_PASS);
	CHECK(sasl_plain_parse(msg, n, &cr, &error) == 0);
	CHECK(strlen(cr.user) == AUTH_MAX_USER && strlen(cr.pass) == AUTH_MAX_PASS);
	n = plain_make(msg, AUTH_MAX_USER, AUTH_MAX_USER, AUTH_MAX_PASS);
	CHECK(sasl_plain_parse(msg, n, &cr, &error) == 0);
	n = plain_make(msg, 0, AUTH_MAX_USER + 1, 1);
	CHECK(sasl_plain_parse(msg, n, &cr, &error) == -1);
	CHECK_STR(error, "user name too long");
	n = plain_make(msg, AUTH_MAX_USER + 1, AUTH_MAX_USER + 1, 1);
	CHECK(sasl_plain_parse(msg, n, &cr, &error) == -1);
	CHECK_STR(error, "user name too long");
	n = plain_make(msg, 0, 1, AUTH_MAX_PASS + 1);
	CHECK(sasl_plain_parse(msg, n, &cr, &error) == -1);
	CHECK_STR(error, "password too long");

	/* the whole path: base64 line of the longest message, decoded then parsed */
	char line[SASL_MAX_LINE];
	unsigned char dec[SASL_MAX_LINE];
	n = plain_make(msg, AUTH_MAX_USER, AUTH_MAX_USER, AUTH_MAX_PASS);
	long e = sasl_b64_encode(msg, n, line, sizeof(line));
	CHECK(e > 0);
	long d = sasl_b64_decode(line, (size_t)e, dec, sizeof(dec));
	CHECK(d == (long)n);
	CHECK(d > 0 && sasl_plain_parse(dec, (size_t)d, &cr, &error) == 0);
	sasl_creds_wipe(&cr);
}

static void test_login(void)
{
	char out[8];

	CHECK(sasl_login_value((const unsigned char *)"ned", 3, out, sizeof(out)) == 0);
	CHECK_STR(out, "ned");
	CHECK(sasl_login_value((const unsigned char *)"1234567", 7, out, sizeof(out)) == 0);
	CHECK_STR(out, "1234567");
	CHECK(sasl_login_value((const unsigned char *)"12345678", 8, out, sizeof(out)) == -1);
	CHECK(out[0] == '\0');
	CHECK(sasl_login_value((const unsigned char *)"", 0, out, sizeof(out)) == -1);
	CHECK(sasl_login_value((const unsigned char *)"a\0b", 3, out, sizeof(out)) == -1);
	CHECK(sasl_login_value((const unsigned char *)"ab\0", 3, out, sizeof(out)) == -1);
	CHECK(sasl_login_value((const unsigned char *)"a", 1, out, 0) == -1);

	/* bounded by the creds fields */
	struct sasl_creds cr;
	unsigned char v[AUTH_MAX_PASS + 1];
	memset(v, 'v', sizeof(v));
	CHECK(sasl_login_value(v, AUTH_MAX_USER, cr.user, sizeof(cr.user)) == 0);
	CHECK(sasl_login_value(v, AUTH_MAX_USER + 1, cr.user, sizeof(cr.user)) == -1);
	CHECK(sasl_login_value(v, AUTH_MAX_PASS, cr.pass, sizeof(cr.pass)) == 0);
	CHECK(sasl_login_value(v, AUTH_MAX_PASS + 1, cr.pass, sizeof(cr.pass)) == -1);
}

static void test_mech(void)
{
	CHECK(sasl_mech_parse(S("PLAIN")) == SASL_PLAIN);
	CHECK(sasl_mech_parse(S("plain")) == SASL_PLAIN);
	CHECK(sasl_mech_parse(S("PlAiN")) == SASL_PLAIN);
	CHECK(sasl_mech_parse(S("LOGIN")) == SASL_LOGIN);
	CHECK(sasl_mech_parse(S("login")) == SASL_LOGIN);
	CHECK(sasl_mech_parse(S("PLAIN ")) == SASL_NONE);
	CHECK(sasl_mech_parse(S("PLAI")) == SASL_NONE);
	CHECK(sasl_mech_parse(S("PLAINX")) == SASL_NONE);
	CHECK(sasl_mech_parse(S("CRAM-MD5")) == SASL_NONE);
	CHECK(sasl_mech_parse(S("")) == SASL_NONE);
	CHECK(sasl_mech_parse("PLAINTEXT", 5) == SASL_PLAIN); /* counted, not NUL-terminated */
}

int main(void)
{
	test_b64_decode();
	test_b64_encode();
	test_plain();
	test_plain_limits();
	test_login();
	test_mech();
	return unit_done("test_sasl");
}
