/* sasl: strict base64, the mechanism table, and the SASL server: PLAIN and LOGIN fed whole
 * (initial response) and step by step (challenges), cancel, bad base64, over-long
 * responses, NULs in fields, authzid cases, misuse; every limit at max and max + 1. */
#include <stdbool.h>
#include <stdio.h>
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

/* ---- the exchange -------------------------------------------------------------------- */

#define MAXSTEPS 4

/* A whole exchange: mechanism, initial response (base64 text or NULL) and responses (base64
 * text); the challenges seen are appended to chal_r separated by '|'. */
struct run {
	int status;
	char chal[256];
	struct sasl_creds creds;
	const char *error;
};

static void run_exchange(const char *mech, const char *ir, const char *const *resp,
			 size_t nresp, struct run *r)
{
	const struct sasl_mech *m = sasl_mech_find(mech, strlen(mech));
	memset(r, 0, sizeof(*r));
	if (m == NULL) {
		r->status = 99;
		return;
	}
	struct sasl_server *s = sasl_server_new(m);
	CHECK(sasl_server_mech(s) == m);
	CHECK(sasl_server_creds(s) == NULL);
	int st = sasl_server_start(s, ir, ir != NULL ? strlen(ir) : 0);
	size_t i = 0;
	while (st == SASL_CONTINUE) {
		size_t have = strlen(r->chal);
		snprintf(r->chal + have, sizeof(r->chal) - have, "%s|", sasl_server_challenge(s));
		CHECK(sasl_server_creds(s) == NULL);
		if (i == nresp)
			break;
		st = sasl_server_step(s, resp[i], strlen(resp[i]));
		i++;
	}
	r->status = st;
	if (st == SASL_DONE) {
		const struct sasl_creds *c = sasl_server_creds(s);
		CHECK(c != NULL);
		if (c != NULL)
			r->creds = *c;
		/* nothing more may be fed */
		CHECK(sasl_server_step(s, "AAAA", 4) == SASL_E_STATE);
		CHECK(sasl_server_creds(s) != NULL);
	} else if (st < 0) {
		r->error = sasl_server_error(s);
		CHECK(sasl_server_creds(s) == NULL);
		CHECK(sasl_server_step(s, "AAAA", 4) == SASL_E_STATE);
	}
	CHECK(sasl_server_start(s, NULL, 0) == SASL_E_STATE);
	CHECK(i == nresp || st != SASL_CONTINUE);
	sasl_server_free(&s);
	CHECK(s == NULL);
}

/* base64 of a counted message, into a static buffer per slot. */
static const char *b64(int slot, const char *msg, size_t len)
{
	static char out[4][4096];
	CHECK(sasl_b64_encode((const unsigned char *)msg, len, out[slot], sizeof(out[slot])) >= 0);
	return out[slot];
}

struct plain_case {
	const char *msg;
	size_t len;
	int status;
	const char *authzid, *authcid, *secret;   /* SASL_DONE */
	const char *error;                        /* otherwise */
};

static const struct plain_case plain_cases[] = {
	{ S("\0ned\0secret"), SASL_DONE, "", "ned", "secret", NULL },
	{ S("ned\0ned\0secret"), SASL_DONE, "ned", "ned", "secret", NULL },
	{ S("\0ned\0pass with spaces"), SASL_DONE, "", "ned", "pass with spaces", NULL },
	{ S("\0n\0p"), SASL_DONE, "", "n", "p", NULL },
	{ S("\0j\xc3\xbcrgen\0p\xc3\xa4ss"), SASL_DONE, "", "j\xc3\xbcrgen", "p\xc3\xa4ss", NULL },
	{ S("\0ned@example.org\0s\x01\x7f"), SASL_DONE, "", "ned@example.org", "s\x01\x7f", NULL },
	{ S("\0ned%x\0secret"), SASL_DONE, "", "ned%x", "secret", NULL }, /* names: not here */
	{ S(""), SASL_E_MALFORMED, NULL, NULL, NULL, "malformed PLAIN message: no NUL" },
	{ S("nedsecret"), SASL_E_MALFORMED, NULL, NULL, NULL, "malformed PLAIN message: no NUL" },
	{ S("ned\0secret"), SASL_E_MALFORMED, NULL, NULL, NULL, "malformed PLAIN message: one NUL" },
	{ S("\0"), SASL_E_MALFORMED, NULL, NULL, NULL, "malformed PLAIN message: one NUL" },
	{ S("\0ned\0sec\0ret"), SASL_E_MALFORMED, NULL, NULL, NULL,
	  "malformed PLAIN message: more than two NULs" },
	{ S("\0\0\0"), SASL_E_MALFORMED, NULL, NULL, NULL,
	  "malformed PLAIN message: more than two NULs" },
	{ S("\0ned\0secret\0"), SASL_E_MALFORMED, NULL, NULL, NULL,
	  "malformed PLAIN message: more than two NULs" },
	{ S("\0\0secret"), SASL_E_MALFORMED, NULL, NULL, NULL, "empty user name" },
	{ S("ned\0\0secret"), SASL_E_MALFORMED, NULL, NULL, NULL, "empty user name" },
	{ S("\0ned\0"), SASL_E_MALFORMED, NULL, NULL, NULL, "empty password" },
	{ S("\0\0"), SASL_E_MALFORMED, NULL, NULL, NULL, "empty user name" },
	/* authzid: only the authcid itself, byte for byte */
	{ S("bob\0ned\0secret"), SASL_E_MALFORMED, NULL, NULL, NULL,
	  "proxy authorization not supported" },
	{ S("ne\0ned\0secret"), SASL_E_MALFORMED, NULL, NULL, NULL,
	  "proxy authorization not supported" },
	{ S("nedx\0ned\0secret"), SASL_E_MALFORMED, NULL, NULL, NULL,
	  "proxy authorization not supported" },
	{ S("NED\0ned\0secret"), SASL_E_MALFORMED, NULL, NULL, NULL,
	  "proxy authorization not supported" },
	{ S("root\0ned\0secret"), SASL_E_MALFORMED, NULL, NULL, NULL,
	  "proxy authorization not supported" },
};

static void check_run(const struct run *r, int status, const char *authzid,
		      const char *authcid, const char *secret, const char *error, const char *what)
{
	CHECK(r->status == status);
	if (r->status != status)
		fprintf(stderr, "  %s: status %d, want %d (%s)\n", what, r->status, status,
			r->error != NULL ? r->error : "");
	if (status == SASL_DONE && r->status == SASL_DONE) {
		CHECK_STR(r->creds.authzid, authzid);
		CHECK_STR(r->creds.authcid, authcid);
		CHECK_STR(r->creds.secret, secret);
	}
	if (status < 0 && error != NULL)
		CHECK_STR(r->error, error);
}

static void test_plain(void)
{
	struct run r;

	for (size_t i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
		const struct plain_case *t = &plain_cases[i];
		const char *enc = b64(0, t->msg, t->len);
		/* whole: the initial response ("=" for an empty one, RFC 4954) */
		run_exchange("PLAIN", t->len == 0 ? "=" : enc, NULL, 0, &r);
		check_run(&r, t->status, t->authzid, t->authcid, t->secret, t->error, "whole");
		CHECK_STR(r.chal, "");
		/* step by step: an empty challenge, then the message */
		const char *resp[1] = { enc };
		run_exchange("plain", NULL, resp, 1, &r);
		check_run(&r, t->status, t->authzid, t->authcid, t->secret, t->error, "step");
		CHECK_STR(r.chal, "|");
	}
	/* "=" as a response is the empty one too */
	const char *eq[1] = { "=" };
	run_exchange("PLAIN", NULL, eq, 1, &r);
	check_run(&r, SASL_E_MALFORMED, NULL, NULL, NULL, "malformed PLAIN message: no NUL", "=");
}

/* LOGIN: user name and password, counted (NULs inside allowed in the table). */
struct login_case {
	const char *user;
	size_t ulen;
	const char *pass;
	size_t plen;
	int status;
	const char *error;
};

static const struct login_case login_cases[] = {
	{ S("ned"), S("secret"), SASL_DONE, NULL },
	{ S("ned@example.org"), S("two words "), SASL_DONE, NULL },
	{ S("j\xc3\xbcrgen"), S("p\xc3\xa4ss"), SASL_DONE, NULL },
	{ S(""), S("secret"), SASL_E_MALFORMED, "empty user name" },
	{ S("ned"), S(""), SASL_E_MALFORMED, "empty password" },
	{ S("n\0d"), S("secret"), SASL_E_MALFORMED, "NUL in user name" },
	{ S("ned\0"), S("secret"), SASL_E_MALFORMED, "NUL in user name" },
	{ S("ned"), S("sec\0ret"), SASL_E_MALFORMED, "NUL in password" },
	{ S("ned"), S("\0"), SASL_E_MALFORMED, "NUL in password" },
};

static void test_login(void)
{
	struct run r;

	for (size_t i = 0; i < sizeof(login_cases) / sizeof(login_cases[0]); i++) {
		const struct login_case *t = &login_cases[i];
		const char *u = b64(0, t->user, t->ulen), *pw = b64(1, t->pass, t->plen);
		bool user_bad = t->status < 0 && strstr(t->error, "user") != NULL;
		/* whole: the user name as initial response, then the password */
		const char *resp1[1] = { pw };
		run_exchange("LOGIN", t->ulen == 0 ? "=" : u, resp1, 1, &r);
		check_run(&r, t->status, "", t->user, t->pass, t->error, "login whole");
		CHECK_STR(r.chal, user_bad ? "" : "UGFzc3dvcmQ6|");
		/* step by step: "Username:", "Password:" */
		const char *resp2[2] = { u, pw };
		run_exchange("login", NULL, resp2, 2, &r);
		check_run(&r, t->status, "", t->user, t->pass, t->error, "login step");
		CHECK_STR(r.chal, user_bad ? "VXNlcm5hbWU6|" : "VXNlcm5hbWU6|UGFzc3dvcmQ6|");
	}
}

static void test_cancel_and_base64(void)
{
	struct run r;
	const char *star[1] = { "*" };

	/* "*" answers a challenge: cancelled, at every step */
	run_exchange("PLAIN", NULL, star, 1, &r);
	check_run(&r, SASL_E_CANCEL, NULL, NULL, NULL, "cancelled", "plain *");
	run_exchange("LOGIN", NULL, star, 1, &r);
	check_run(&r, SASL_E_CANCEL, NULL, NULL, NULL, "cancelled", "login * user");
	const char *star2[2] = { "bmVk", "*" };
	run_exchange("LOGIN", NULL, star2, 2, &r);
	check_run(&r, SASL_E_CANCEL, NULL, NULL, NULL, "cancelled", "login * pass");
	run_exchange("LOGIN", "bmVk", star, 1, &r);
	check_run(&r, SASL_E_CANCEL, NULL, NULL, NULL, "cancelled", "login ir *");
	/* as an initial response no challenge was sent: "*" is no base64 */
	run_exchange("PLAIN", "*", NULL, 0, &r);
	check_run(&r, SASL_E_BASE64, NULL, NULL, NULL, "invalid base64", "ir *");
	/* "**" or "* " is no cancel either */
	const char *star3[1] = { "**" };
	run_exchange("PLAIN", NULL, star3, 1, &r);
	check_run(&r, SASL_E_BASE64, NULL, NULL, NULL, "invalid base64", "**");

	/* bad base64, initial and later */
	static const char *const bad[] = { "AG5lZABzZWNyZXQ", "AG5lZABzZWNyZXQ=x", "!!!!",
					   "AG5lZABz ZWNyZXQ=", "Zh==", "AG5lZABzZWNyZXQ=\r" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_exchange("PLAIN", bad[i], NULL, 0, &r);
		check_run(&r, SASL_E_BASE64, NULL, NULL, NULL, "invalid base64", bad[i]);
		const char *resp[1] = { bad[i] };
		run_exchange("PLAIN", NULL, resp, 1, &r);
		check_run(&r, SASL_E_BASE64, NULL, NULL, NULL, "invalid base64", bad[i]);
		const char *resp2[2] = { "bmVk", bad[i] };
		run_exchange("LOGIN", NULL, resp2, 2, &r);
		check_run(&r, SASL_E_BASE64, NULL, NULL, NULL, "invalid base64", bad[i]);
	}
	/* an empty line answers with an empty response */
	const char *empty[1] = { "" };
	run_exchange("LOGIN", NULL, empty, 1, &r);
	check_run(&r, SASL_E_MALFORMED, NULL, NULL, NULL, "empty user name", "empty line");

	/* the API's misuse is reported, never a crash */
	struct sasl_server *s = sasl_server_new(sasl_mech_find("PLAIN", 5));
	CHECK(sasl_server_step(s, "AAAA", 4) == SASL_E_STATE);
	CHECK_STR(sasl_server_error(s), "no exchange in progress");
	CHECK(sasl_server_start(s, NULL, 0) == SASL_CONTINUE);
	CHECK(sasl_server_start(s, NULL, 0) == SASL_E_STATE);
	sasl_server_free(&s);
	sasl_server_free(&s);   /* twice: s is NULL */
	CHECK(s == NULL);
}

/* "\0" user "\0" pass with lengths ulen and plen (authzid zlen, same letter). */
static size_t plain_make(char *buf, size_t zlen, size_t ulen, size_t plen)
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

static void test_limits(void)
{
	static char msg[2 * AUTH_MAX_USER + AUTH_MAX_PASS + 8];
	static char line[SASL_MAX_RESPONSE + 8];
	struct run r;
	size_t n;

	/* PLAIN: every field at its limit, and one past it */
	n = plain_make(msg, 0, AUTH_MAX_USER, AUTH_MAX_PASS);
	run_exchange("PLAIN", b64(0, msg, n), NULL, 0, &r);
	CHECK(r.status == SASL_DONE && strlen(r.creds.authcid) == AUTH_MAX_USER &&
	      strlen(r.creds.secret) == AUTH_MAX_PASS);
	n = plain_make(msg, AUTH_MAX_USER, AUTH_MAX_USER, AUTH_MAX_PASS);
	run_exchange("PLAIN", b64(0, msg, n), NULL, 0, &r);
	CHECK(r.status == SASL_DONE && strlen(r.creds.authzid) == AUTH_MAX_USER);
	n = plain_make(msg, 0, AUTH_MAX_USER + 1, 1);
	run_exchange("PLAIN", b64(0, msg, n), NULL, 0, &r);
	check_run(&r, SASL_E_MALFORMED, NULL, NULL, NULL, "user name too long", "user max+1");
	n = plain_make(msg, AUTH_MAX_USER + 1, AUTH_MAX_USER + 1, 1);
	run_exchange("PLAIN", b64(0, msg, n), NULL, 0, &r);
	check_run(&r, SASL_E_MALFORMED, NULL, NULL, NULL, "user name too long", "authzid max+1");
	n = plain_make(msg, 0, 1, AUTH_MAX_PASS + 1);
	run_exchange("PLAIN", b64(0, msg, n), NULL, 0, &r);
	check_run(&r, SASL_E_MALFORMED, NULL, NULL, NULL, "password too long", "pass max+1");

	/* LOGIN: the same limits */
	memset(msg, 'v', sizeof(msg));
	const char *resp[1] = { b64(1, msg, AUTH_MAX_PASS) };
	run_exchange("LOGIN", b64(0, msg, AUTH_MAX_USER), resp, 1, &r);
	CHECK(r.status == SASL_DONE && strlen(r.creds.authcid) == AUTH_MAX_USER &&
	      strlen(r.creds.secret) == AUTH_MAX_PASS);
	run_exchange("LOGIN", b64(0, msg, AUTH_MAX_USER + 1), resp, 1, &r);
	check_run(&r, SASL_E_MALFORMED, NULL, NULL, NULL, "user name too long", "login user+1");
	resp[0] = b64(1, msg, AUTH_MAX_PASS + 1);
	run_exchange("LOGIN", b64(0, msg, AUTH_MAX_USER), resp, 1, &r);
	check_run(&r, SASL_E_MALFORMED, NULL, NULL, NULL, "password too long", "login pass+1");

	/* a response of SASL_MAX_RESPONSE octets is decoded (valid base64 needs a multiple
	 * of 4: 12284 octets, 9213 NULs); one octet more is refused before decoding */
	memset(line, 'A', sizeof(line));
	size_t max4 = SASL_MAX_RESPONSE / 4 * 4;
	line[max4] = '\0';
	run_exchange("PLAIN", line, NULL, 0, &r);
	check_run(&r, SASL_E_MALFORMED, NULL, NULL, NULL,
		  "malformed PLAIN message: more than two NULs", "max");
	memset(line, 'A', sizeof(line));
	line[SASL_MAX_RESPONSE] = '\0';
	run_exchange("PLAIN", line, NULL, 0, &r);
	check_run(&r, SASL_E_BASE64, NULL, NULL, NULL, "invalid base64", "max, not 4n");
	line[SASL_MAX_RESPONSE] = 'A';
	line[SASL_MAX_RESPONSE + 1] = '\0';
	run_exchange("PLAIN", line, NULL, 0, &r);
	check_run(&r, SASL_E_TOO_LONG, NULL, NULL, NULL, "response too long", "max+1");
	const char *big[1] = { line };
	run_exchange("LOGIN", NULL, big, 1, &r);
	check_run(&r, SASL_E_TOO_LONG, NULL, NULL, NULL, "response too long", "login max+1");
}

static void test_mech(void)
{
	CHECK(sasl_mech_find(S("PLAIN")) == sasl_mech_at(0));
	CHECK(sasl_mech_find(S("plain")) == sasl_mech_at(0));
	CHECK(sasl_mech_find(S("PlAiN")) == sasl_mech_at(0));
	CHECK(sasl_mech_find(S("LOGIN")) == sasl_mech_at(1));
	CHECK(sasl_mech_find(S("login")) == sasl_mech_at(1));
	CHECK(sasl_mech_at(2) == NULL);
	CHECK_STR(sasl_mech_at(0)->name, "PLAIN");
	CHECK_STR(sasl_mech_at(1)->name, "LOGIN");
	CHECK(sasl_mech_at(0)->plaintext && sasl_mech_at(1)->plaintext);
	CHECK(sasl_mech_find(S("PLAIN ")) == NULL);
	CHECK(sasl_mech_find(S("PLAI")) == NULL);
	CHECK(sasl_mech_find(S("PLAINX")) == NULL);
	CHECK(sasl_mech_find(S("CRAM-MD5")) == NULL);
	CHECK(sasl_mech_find(S("SCRAM-SHA-256")) == NULL);
	CHECK(sasl_mech_find(S("")) == NULL);
	CHECK(sasl_mech_find("PLAINTEXT", 5) == sasl_mech_at(0)); /* counted */
	struct run r;
	run_exchange("CRAM-MD5", NULL, NULL, 0, &r);
	CHECK(r.status == 99);
}

int main(void)
{
	test_b64_decode();
	test_b64_encode();
	test_plain();
	test_login();
	test_cancel_and_base64();
	test_limits();
	test_mech();
	return unit_done("test_sasl");
}
