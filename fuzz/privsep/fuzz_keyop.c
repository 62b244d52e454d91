/* libFuzzer: the root monitor's answer to a worker's private-key request
 * (tls_key_answer in privsep/tls.c), with a real EC and RSA key.  First byte:
 *   even: the rest is a frame body, parsed as the monitor parses it (msg.c), answered
 *         with the EC key (bit 1 clear) or the RSA key;
 *   odd:  a well-formed request built from the rest (kind, digest), for the RSA-PSS kind
 *         a genuine PSS block with fuzzer-chosen bytes changed, so the structure check
 *         of a block is fuzzed close to the valid ones.
 * Invariants: no crash or leak; a signature the monitor hands out verifies (ECDSA and
 * PKCS#1) or opens to exactly the block it was asked to sign (PSS). */
#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include "privsep/keyop.h"
#include "privsep/msg.h"
#include "privsep/tls.h"

static EVP_PKEY *ec_key, *rsa_key;

static const EVP_MD *md_of(int i)
{
	const EVP_MD *mds[] = { EVP_sha256(), EVP_sha384(), EVP_sha512(), EVP_sha1() };
	return mds[i & 3];
}

static void check_reply(EVP_PKEY *key, const struct msg *req, const struct msg *rep)
{
	uint8_t kind, st;
	uint32_t nid = 0;
	const struct msg_field *d = msg_get(req, MSG_KEY_OP_DATA);
	const struct msg_field *sig = msg_get(rep, MSG_KEY_OP_REPLY_DATA);

	if (msg_get_u8(rep, MSG_KEY_OP_REPLY_STATUS, &st) != 0 || msg_get_u8(req, MSG_KEY_OP_KIND, &kind) != 0)
		__builtin_trap();
	if (st != 0)
		return;
	if (sig == NULL || d == NULL)
		__builtin_trap();
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	int ok;
	if (kind == KEYOP_RSA_PSS_BLOCK) {
		unsigned char out[1024];
		size_t olen = sizeof(out);
		ok = EVP_PKEY_verify_recover_init(c) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING) == 1 &&
		     EVP_PKEY_verify_recover(c, out, &olen, sig->data, sig->len) == 1 &&
		     olen == d->len && memcmp(out, d->data, olen) == 0;
	} else {
		(void)msg_get_u32(req, MSG_KEY_OP_ARG, &nid);
		ok = EVP_PKEY_verify_init(c) == 1 &&
		     (kind != KEYOP_RSA_PKCS1_SIGN ||
		      EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1) &&
		     EVP_PKEY_CTX_set_signature_md(c, EVP_get_digestbynid((int)nid)) == 1 &&
		     EVP_PKEY_verify(c, sig->data, sig->len, d->data, d->len) == 1;
	}
	EVP_PKEY_CTX_free(c);
	if (!ok)
		__builtin_trap();
}

static void answer(EVP_PKEY *key, const struct msg *req)
{
	static struct msg rep;
	const char *err;

	if (tls_key_answer(key, req, &rep, &err) == 0)
		check_reply(key, req, &rep);
}

/* A genuine PSS block for digest dg under md, as libssl makes before asking the key. */
static size_t pss_block(const EVP_MD *md, const unsigned char *dg, unsigned char *block)
{
	unsigned char sig[256];
	size_t slen = sizeof(sig), blen = 256;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, rsa_key, NULL);
	int ok = EVP_PKEY_sign_init(c) == 1 &&
		 EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1 &&
		 EVP_PKEY_CTX_set_rsa_pss_saltlen(c, -1) == 1 &&
		 EVP_PKEY_CTX_set_signature_md(c, md) == 1 &&
		 EVP_PKEY_sign(c, sig, &slen, dg, (size_t)EVP_MD_get_size(md)) == 1;
	EVP_PKEY_CTX_free(c);
	c = EVP_PKEY_CTX_new_from_pkey(NULL, rsa_key, NULL);
	ok = ok && EVP_PKEY_verify_recover_init(c) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING) == 1 &&
	     EVP_PKEY_verify_recover(c, block, &blen, sig, slen) == 1;
	EVP_PKEY_CTX_free(c);
	return ok ? blen : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct msg m;
	const char *err;

	if (ec_key == NULL) {
		ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		if (ec_key == NULL || rsa_key == NULL)
			__builtin_trap();
	}
	if (size < 2)
		return 0;
	if ((data[0] & 1) == 0) {
		if (msg_parse(&m, data + 1, size - 1, &err) == 0 && m.type == MSG_KEY_OP)
			answer((data[0] & 2) ? rsa_key : ec_key, &m);
		return 0;
	}
	/* structured: data[1] kind (low 2 bits) and digest (next 2 bits); 64 bytes digest;
	 * then (position, xor) pairs applied to the data */
	int kind = 1 + (data[1] & 3) % 3;
	const EVP_MD *md = md_of(data[1] >> 2);
	unsigned char dg[64] = { 0 }, buf[256];
	size_t dlen = (size_t)EVP_MD_get_size(md), n = 0;
	size_t take = size - 2 < sizeof(dg) ? size - 2 : sizeof(dg);
	memcpy(dg, data + 2, take);
	const uint8_t *mut = data + 2 + take;
	size_t nmut = size - 2 - take;
	if (kind == KEYOP_RSA_PSS_BLOCK) {
		if (EVP_MD_get_size(md) < 32 || (n = pss_block(md, dg, buf)) == 0)
			return 0;
	} else {
		memcpy(buf, dg, dlen);
		n = dlen;
	}
	for (size_t i = 0; i + 1 < nmut; i += 2)
		buf[mut[i] % n] ^= mut[i + 1];
	msg_init(&m, MSG_KEY_OP);
	(void)msg_add_u8(&m, MSG_KEY_OP_KIND, (uint8_t)kind);
	if (kind != KEYOP_RSA_PSS_BLOCK)
		(void)msg_add_u32(&m, MSG_KEY_OP_ARG, (uint32_t)EVP_MD_get_type(md));
	(void)msg_add(&m, MSG_KEY_OP_DATA, buf, n);
	answer(kind == KEYOP_ECDSA_SIGN ? ec_key : rsa_key, &m);
	return 0;
}
