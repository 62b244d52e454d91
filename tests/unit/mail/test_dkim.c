/* dkim.c, dkim_key.c: relaxed canonicalization tables (RFC 6376 section 3.4.6's example,
 * white space, folding, the empty body, trailing empty lines, a last line without CRLF);
 * signatures with RSA and Ed25519 verified here with OpenSSL against the public key by a
 * verifier written from RFC 6376 section 3.7 (the integration test verifies with dkimpy
 * and opendkim); the same signature fed whole, byte by byte and in odd chunks; a changed
 * body or signed field fails; the limits (a field past HEADER_FIELD_MAX, the signed bytes
 * past DKIM_MAX_SIGNED_BYTES, no From); the key files (0600, never overwritten, RSA under
 * 1024 bits refused) and the TXT record cut into 255-byte strings. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/base64.h"
#include "mail/dkim.h"
#include "unit.h"

static const struct { const char *in, *out; } body_cases[] = {
	/* RFC 6376 section 3.4.6 */
	{ " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n" },
	{ "", "" },                                  /* the empty body */
	{ "\r\n", "" },                              /* only empty lines: empty */
	{ "\r\n\r\n\r\n", "" },
	{ "  \t \r\n \r\n", "" },                    /* lines of white space are empty */
	{ "a", "a\r\n" },                            /* no final CRLF: one is added */
	{ "a  ", "a\r\n" },
	{ "a\r\n", "a\r\n" },
	{ "a \t b\t\r\n", "a b\r\n" },
	{ "\ta\r\n", " a\r\n" },                     /* leading WSP: one SP */
	{ "a\r\n\r\n\r\nb\r\n\r\n", "a\r\n\r\n\r\nb\r\n" }, /* inner empty lines stay */
	{ "a\r\n  \r\nb", "a\r\n\r\nb\r\n" },
	{ "a\rb\r\n", "a\rb\r\n" },                  /* a lone CR is a byte */
	{ "a\r", "a\r\r\n" },
	{ "a\nb\n\n", "a\r\nb\r\n" },                /* a bare LF ends a line */
	{ ".\r\n..\r\n", ".\r\n..\r\n" },
};

static const struct { const char *in, *out; } header_cases[] = {
	/* RFC 6376 section 3.4.6 */
	{ "A: X", "a:X\r\n" },
	{ "B : Y\t\r\n\tZ  ", "b:Y Z\r\n" },
	{ "Subject:   hello   world  ", "subject:hello world\r\n" },
	{ "To: a@x.test,\r\n  b@y.test", "to:a@x.test, b@y.test\r\n" },
	{ "X:", "x:\r\n" },
	{ "X: \r\n \r\n ", "x:\r\n" },
	{ "From:a\nb", "from:ab\r\n" },
	{ "DKIM-Signature: v=1;\r\n\tb=", "dkim-signature:v=1; b=\r\n" },
};

static void test_canon(void)
{
	size_t len;

	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		char *c = dkim_canon_body(body_cases[i].in, strlen(body_cases[i].in), &len);
		CHECK(len == strlen(body_cases[i].out));
		CHECK_STR(c, body_cases[i].out);
		free(c);
	}
	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		char *c = dkim_canon_header(header_cases[i].in, strlen(header_cases[i].in), &len);
		CHECK_STR(c, header_cases[i].out);
		free(c);
	}
}

/* ---- a verifier from RFC 6376 section 3.7, for these tests ---- */

/* The value of tag t in the DKIM-Signature field sig, white space removed. */
static char *tag(const char *sig, const char *t)
{
	const char *p = strchr(sig, ':') + 1;
	size_t tl = strlen(t);

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		const char *end = strchr(p, ';');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (strncmp(p, t, tl) == 0 && p[tl] == '=') {
			char *v = xmalloc(n + 1);
			size_t o = 0;
			for (size_t i = tl + 1; i < n; i++)
				if (!strchr(" \t\r\n", p[i]))
					v[o++] = p[i];
			v[o] = '\0';
			return v;
		}
		p += n;
		if (*p == ';')
			p++;
	}
	return NULL;
}

struct field { const char *p; size_t len; bool used; };

/* msg: the signature field first, then the message. 1 verified, 0 not. */
static int verify(EVP_PKEY *key, const char *sig, const char *msg)
{
	struct field f[64];
	size_t nf = 0;
	const char *p = msg;
	int ok = 0;

	/* the header's fields, each without its last CRLF */
	while (*p != '\0' && !(p[0] == '\r' && p[1] == '\n')) {
		const char *e = p;
		for (;;) {
			e = strstr(e, "\r\n");
			if (e == NULL || (e[2] != ' ' && e[2] != '\t'))
				break;
			e += 2;
		}
		if (e == NULL || nf == 64)
			return 0;
		f[nf++] = (struct field){ p, (size_t)(e - p), false };
		p = e + 2;
	}
	const char *body = p[0] == '\r' ? p + 2 : p;
	size_t cl;
	char *cb = dkim_canon_body(body, strlen(body), &cl);
	unsigned char h[32];
	char h64[64];
	EVP_Digest(cb, cl, h, NULL, EVP_sha256(), NULL);
	free(cb);
	base64_encode(h, 32, h64);
	char *bh = tag(sig, "bh"), *hl = tag(sig, "h"), *b = tag(sig, "b"), *a = tag(sig, "a");
	if (bh == NULL || hl == NULL || b == NULL || a == NULL || strcmp(bh, h64) != 0)
		goto out;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (char *name = strtok(hl, ":"); name != NULL; name = strtok(NULL, ":")) {
		for (size_t i = nf; i > 0; i--) {
			struct field *x = &f[i - 1];
			if (!x->used && strncasecmp(x->p, name, strlen(name)) == 0 &&
			    strchr(": \t", x->p[strlen(name)]) != NULL) {
				char *c = dkim_canon_header(x->p, x->len, &cl);
				EVP_DigestUpdate(md, c, cl);
				free(c);
				x->used = true;
				break;
			}
		}
	}
	/* the signature field with b='s value removed, no final CRLF */
	const char *bpos = strstr(sig, "b=");
	while (bpos != NULL && bpos[-1] == 'b')       /* skip "bh=" */
		bpos = strstr(bpos + 1, "b=");
	char *s0 = xstrdup(sig);
	size_t cut = (size_t)(bpos - sig) + 2;
	const char *semi = strchr(sig + cut, ';');
	if (semi != NULL)
		memmove(s0 + cut, s0 + (semi - sig), strlen(semi) + 1);
	else
		s0[cut] = '\0';
	size_t sl = strlen(s0);
	while (sl > 0 && (s0[sl - 1] == '\n' || s0[sl - 1] == '\r'))
		s0[--sl] = '\0';
	char *c = dkim_canon_header(s0, sl, &cl);
	EVP_DigestUpdate(md, c, cl - 2);
	free(c);
	free(s0);
	unsigned char dig[32], raw[1024];
	EVP_DigestFinal_ex(md, dig, NULL);
	EVP_MD_CTX_free(md);
	struct base64_decoder d;
	size_t used, rl;
	base64_decode_init(&d);
	rl = base64_decode_update(&d, b, strlen(b), (char *)raw, sizeof(raw), &used);
	EVP_MD_CTX *vc = EVP_MD_CTX_new();
	if (strcmp(a, "rsa-sha256") == 0) {
		/* RSASSA-PKCS1-v1_5 with SHA-256 over the data: verify the digest */
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key, NULL);
		ok = EVP_PKEY_verify_init(pc) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		     EVP_PKEY_verify(pc, raw, rl, dig, 32) == 1;
		EVP_PKEY_CTX_free(pc);
	} else if (strcmp(a, "ed25519-sha256") == 0) {
		ok = EVP_DigestVerifyInit(vc, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestVerify(vc, raw, rl, dig, 32) == 1;
	}
	EVP_MD_CTX_free(vc);
out:
	free(bh);
	free(hl);
	free(b);
	free(a);
	return ok;
}

/* sign msg fed in chunks of `step` (0: whole) */
static char *sign(EVP_PKEY *key, const char *msg, size_t len, size_t step, const char **err)
{
	struct dkim_signer *s;
	char *h = NULL;

	if (dkim_signer_new(key, "163.test", "sel1", 1700000000, &s, err) == -1)
		return NULL;
	if (step == 0)
		step = len;
	for (size_t i = 0; i < len; i += step)
		dkim_signer_feed(s, msg + i, len - i < step ? len - i : step);
	if (dkim_signer_finish(s, &h, err) == -1)
		h = NULL;
	dkim_signer_free(&s);
	return h;
}

static const char *msg1 =
	"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"From: Ned <ned@163.test>\r\n"
	"To:  sue@sina.test,\r\n"
	"\tbob@sina.test\r\n"
	"Subject:  Hello   there \r\n"
	"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"Message-ID: <1@163.test>\r\n"
	"X-Other: not signed\r\n"
	"\r\n"
	"Hi  Sue,\r\n"
	" \r\n"
	"bye \r\n"
	"\r\n"
	"\r\n";

static char *concat(const char *a, const char *b)
{
	char *r = xmalloc(strlen(a) + strlen(b) + 1);
	strcpy(r, a);
	strcat(r, b);
	return r;
}

static void test_sign(EVP_PKEY *key, const char *alg)
{
	const char *err = NULL;
	size_t len = strlen(msg1);
	char *h = sign(key, msg1, len, 0, &err);

	CHECK(h != NULL);
	if (h == NULL)
		return;
	char *a = tag(h, "a"), *hl = tag(h, "h"), *c = tag(h, "c"), *bh = tag(h, "bh");
	CHECK_STR(a, alg);
	CHECK_STR(c, "relaxed/relaxed");
	/* present fields signed and over-signed, absent ones over-signed */
	CHECK(hl != NULL && strncmp(hl, "from:from:reply-to:subject:subject:date:date:to:to:",
				    51) == 0);
	CHECK(hl != NULL && strstr(hl, "received") == NULL && strstr(hl, "x-other") == NULL);
	CHECK(strncmp(h, "DKIM-Signature: v=1; ", 21) == 0);
	CHECK(strlen(h) > 2 && strcmp(h + strlen(h) - 2, "\r\n") == 0);
	/* folded: no line past 78 */
	for (const char *p = h; *p != '\0';) {
		const char *e = strstr(p, "\r\n");
		CHECK(e != NULL && e - p <= 78);
		p = e != NULL ? e + 2 : p + strlen(p);
	}
	/* the body hash of the canonical body " Hi Sue,\r\n\r\nbye\r\n" */
	char *canon;
	size_t cl;
	const char *body = strstr(msg1, "\r\n\r\n") + 4;
	canon = dkim_canon_body(body, strlen(body), &cl);
	CHECK_STR(canon, "Hi Sue,\r\n\r\nbye\r\n");
	free(canon);

	char *whole = concat(h, msg1);
	CHECK(verify(key, h, whole) == 1);
	/* any chunking: the same signature */
	size_t steps[] = { 1, 2, 3, 7, 64 };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char *h2 = sign(key, msg1, len, steps[i], &err);
		CHECK_STR(h2, h);
		free(h2);
	}
	/* relaxed tolerates white space changes, not others */
	char *m2 = xstrdup(whole);
	char *p = strstr(m2, "Hi  Sue");
	memcpy(p, "Hi\t Sue", 7);
	CHECK(verify(key, h, m2) == 1);
	p = strstr(m2, "bye");
	p[0] = 'B';
	CHECK(verify(key, h, m2) == 0);
	free(m2);
	m2 = xstrdup(whole);
	p = strstr(m2, "Hello");
	p[0] = 'J';
	CHECK(verify(key, h, m2) == 0);            /* a signed field changed */
	free(m2);
	m2 = xstrdup(whole);
	p = strstr(m2, "X-Other: not");
	memcpy(p + 9, "NOT", 3);
	CHECK(verify(key, h, m2) == 1);            /* an unsigned field may change */
	free(m2);
	/* a second Subject added above ours: the over-signed h= breaks */
	char *before = xstrdup(whole);
	p = strstr(before, "Received:");
	*p = '\0';
	char *tmp = concat(before, "Subject: Pay now\r\n");
	char *m3 = concat(tmp, strstr(whole, "Received:"));
	CHECK(verify(key, h, m3) == 0);
	free(m3);
	free(tmp);
	free(before);
	free(whole);
	free(a);
	free(hl);
	free(c);
	free(bh);
	free(h);
}

static void test_bodies(EVP_PKEY *key)
{
	const char *err;
	/* the empty body, no empty line at all, no final CRLF: each verifies, each fed
	 * byte by byte gives the same signature */
	const char *msgs[] = {
		"From: a@163.test\r\n\r\n",
		"From: a@163.test\r\n",
		"From: a@163.test\r\n\r\nno final line end",
		"From: a@163.test\r\n\r\n\r\n\r\n\r\n",
		"From: a@163.test\r\nSubject: x\r\n\r\n \t \r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		char *h = sign(key, msgs[i], strlen(msgs[i]), 0, &err);
		char *h1 = sign(key, msgs[i], strlen(msgs[i]), 1, &err);
		CHECK(h != NULL);
		CHECK_STR(h1, h);
		if (h != NULL && i != 1 && i != 2) {
			char *bh = tag(h, "bh");   /* SHA-256 of nothing */
			CHECK_STR(bh, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
			free(bh);
		}
		if (h != NULL && i != 1) {
			char *w = concat(h, msgs[i]);
			CHECK(verify(key, h, w) == 1);
			free(w);
		}
		free(h);
		free(h1);
	}
}

static void test_limits(EVP_PKEY *key)
{
	const char *err = NULL;
	char *h;

	h = sign(key, "To: a@b.test\r\n\r\nbody\r\n", 22, 0, &err);
	CHECK(h == NULL && err != NULL && strstr(err, "From") != NULL);
	/* a signed field past HEADER_FIELD_MAX: not signed */
	size_t n = HEADER_FIELD_MAX + 100;
	char *big = xmalloc(n + 64);
	strcpy(big, "From: a@163.test\r\nSubject: ");
	size_t o = strlen(big);
	memset(big + o, 'x', n);
	strcpy(big + o + n, "\r\n\r\nbody\r\n");
	err = NULL;
	h = sign(key, big, strlen(big), 0, &err);
	CHECK(h == NULL && err != NULL && strstr(err, "HEADER_FIELD_MAX") != NULL);
	free(big);
	/* an unsigned one that long is no problem */
	big = xmalloc(n + 64);
	strcpy(big, "From: a@163.test\r\nX-Long: ");
	o = strlen(big);
	memset(big + o, 'x', n);
	strcpy(big + o + n, "\r\n\r\nbody\r\n");
	h = sign(key, big, strlen(big), 0, &err);
	CHECK(h != NULL);
	free(h);
	free(big);
	/* signed fields past DKIM_MAX_SIGNED_BYTES in all: 5 To fields of 60 KiB */
	size_t fl = 60 * 1024, total = 0;
	big = xmalloc(6 * (fl + 16) + 64);
	strcpy(big, "From: a@163.test\r\n");
	total = strlen(big);
	for (int i = 0; i < 5; i++) {
		memcpy(big + total, "To: ", 4);
		memset(big + total + 4, 'y', fl);
		memcpy(big + total + 4 + fl, "\r\n", 2);
		total += fl + 6;
	}
	memcpy(big + total, "\r\nb\r\n", 6);
	h = sign(key, big, strlen(big), 0, &err);
	CHECK(h == NULL && err != NULL && strstr(err, "DKIM_MAX_SIGNED_BYTES") != NULL);
	free(big);
	/* many instances: only the last DKIM_MAX_SIGNED_PER_NAME, + 1 over-signed */
	char many[2048] = "";
	for (int i = 0; i < 20; i++)
		strcat(many, "From: a@163.test\r\n");
	strcat(many, "\r\nx\r\n");
	h = sign(key, many, strlen(many), 0, &err);
	CHECK(h != NULL);
	if (h != NULL) {
		char *hl = tag(h, "h");
		unsigned froms = 0;
		for (const char *p = hl; (p = strstr(p, "from")) != NULL; p += 4)
			froms++;
		CHECK(froms == DKIM_MAX_SIGNED_PER_NAME + 1);
		free(hl);
	}
	free(h);
	/* bad names */
	struct dkim_signer *s = NULL;
	CHECK(dkim_signer_new(key, "../etc", "sel", 0, &s, &err) == -1 && s == NULL);
	CHECK(dkim_signer_new(key, "163.test", "a/b", 0, &s, &err) == -1);
}

static void test_names(void)
{
	CHECK(dkim_name_ok("163.test"));
	CHECK(dkim_name_ok("sel-2024"));
	CHECK(dkim_name_ok("a.b.c"));
	CHECK(!dkim_name_ok(""));
	CHECK(!dkim_name_ok(".a"));
	CHECK(!dkim_name_ok("a..b"));
	CHECK(!dkim_name_ok("a."));
	CHECK(!dkim_name_ok("-a"));
	CHECK(!dkim_name_ok("a-"));
	CHECK(!dkim_name_ok("a/b"));
	CHECK(!dkim_name_ok("a_b"));
	CHECK(!dkim_name_ok("a b"));
	char l63[70], l64[70];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'a', 64);
	l64[64] = '\0';
	CHECK(dkim_name_ok(l63));
	CHECK(!dkim_name_ok(l64));
	enum dkim_alg alg;
	CHECK(dkim_alg_parse("rsa", &alg) == 0 && alg == DKIM_ALG_RSA_SHA256);
	CHECK(dkim_alg_parse("ed25519", &alg) == 0 && alg == DKIM_ALG_ED25519_SHA256);
	CHECK(dkim_alg_parse("dsa", &alg) == -1);
	char buf[64];
	CHECK(dkim_key_path("/k", "163.test", "sel", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "/k/163.test.sel.key");
	CHECK(dkim_key_path("/k", "..", "sel", buf, sizeof(buf)) == -1);
	CHECK(dkim_key_path("/k", "163.test", "sel", buf, 10) == -1);
}

static void test_keys(EVP_PKEY *rsa, EVP_PKEY *ed)
{
	char dir[] = "/tmp/test_dkim.XXXXXX", path[256];
	const char *err;
	struct stat st;
	EVP_PKEY *k = NULL;

	CHECK(mkdtemp(dir) != NULL);
	CHECK(dkim_key_path(dir, "163.test", "s1", path, sizeof(path)) == 0);
	CHECK(dkim_key_save(path, rsa, &err) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
	CHECK(dkim_key_save(path, ed, &err) == -1 && strstr(err, "exists") != NULL);
	CHECK(dkim_key_load(path, &k, &err) == 0 && EVP_PKEY_eq(k, rsa) == 1);
	EVP_PKEY_free(k);
	/* a symbolic link is not followed */
	char link[300];
	snprintf(link, sizeof(link), "%s/link.key", dir);
	CHECK(symlink(path, link) == 0);
	CHECK(dkim_key_load(link, &k, &err) == -1 && k == NULL);
	unlink(link);
	unlink(path);
	CHECK(dkim_key_load(path, &k, &err) == -1 && strstr(err, "no such") != NULL);
	/* garbage and a file too long */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	char junk[DKIM_MAX_KEY_FILE + 10];
	memset(junk, 'A', sizeof(junk));
	CHECK(write(fd, junk, 100) == 100);
	close(fd);
	CHECK(dkim_key_load(path, &k, &err) == -1 && strstr(err, "no PEM") != NULL);
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	close(fd);
	CHECK(dkim_key_load(path, &k, &err) == -1 && strstr(err, "longer") != NULL);
	unlink(path);
	/* RSA under 1024 bits (RFC 8301): refused to load and to sign */
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)768);
	CHECK(small != NULL);
	struct dkim_signer *s = NULL;
	CHECK(dkim_signer_new(small, "163.test", "s", 0, &s, &err) == -1 &&
	      strstr(err, "1024") != NULL);
	CHECK(dkim_key_save(path, small, &err) == 0);
	CHECK(dkim_key_load(path, &k, &err) == -1 && strstr(err, "1024") != NULL);
	unlink(path);
	EVP_PKEY_free(small);
	/* Ed25519 round trip */
	CHECK(dkim_key_save(path, ed, &err) == 0);
	CHECK(dkim_key_load(path, &k, &err) == 0 && EVP_PKEY_eq(k, ed) == 1);
	EVP_PKEY_free(k);
	unlink(path);
	rmdir(dir);

	/* TXT records: RSA 2048 is ~410 bytes of text, cut at 255 */
	char *rec = dkim_txt_record(rsa, "163.test", "s1", &err);
	char *txt = dkim_txt_text(rsa, &err);
	CHECK(rec != NULL && txt != NULL);
	CHECK(strncmp(rec, "s1._domainkey.163.test. IN TXT \"v=DKIM1; k=rsa; p=MII", 52) == 0);
	/* the strings joined give the text; each at most 255 */
	char joined[2048] = "";
	unsigned strings = 0;
	for (const char *p = strchr(rec, '"'); p != NULL; ) {
		const char *e = strchr(p + 1, '"');
		CHECK(e != NULL && e - p - 1 <= 255);
		strncat(joined, p + 1, (size_t)(e - p - 1));
		strings++;
		p = strchr(e + 1, '"');
	}
	CHECK(strings == 2);
	CHECK_STR(joined, txt);
	free(rec);
	free(txt);
	rec = dkim_txt_record(ed, "163.test", "s2", &err);
	unsigned char raw[32];
	size_t rl = 32;
	char b64[64], want[200];
	EVP_PKEY_get_raw_public_key(ed, raw, &rl);
	base64_encode(raw, rl, b64);
	snprintf(want, sizeof(want), "s2._domainkey.163.test. IN TXT \"v=DKIM1; k=ed25519; p=%s\"",
		 b64);
	CHECK_STR(rec, want);
	free(rec);
	CHECK(dkim_txt_record(ed, "163.test", "a..b", &err) == NULL);
}

int main(void)
{
	const char *err;
	EVP_PKEY *rsa = NULL, *ed = NULL;

	test_canon();
	test_names();
	CHECK(dkim_key_generate(DKIM_ALG_RSA_SHA256, &rsa, &err) == 0);
	CHECK(dkim_key_generate(DKIM_ALG_ED25519_SHA256, &ed, &err) == 0);
	CHECK(EVP_PKEY_get_bits(rsa) == 2048);
	test_sign(rsa, "rsa-sha256");
	test_sign(ed, "ed25519-sha256");
	test_bodies(rsa);
	test_bodies(ed);
	test_limits(ed);
	test_keys(rsa, ed);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	return unit_done("test_dkim");
}
