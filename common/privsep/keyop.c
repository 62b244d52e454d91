/* A "remote" private key for the worker's SSL_CTX: the public half from the certificate,
 * and callbacks that send each private operation to the monitor (keyop.h).
 *
 * DEPRECATED API, HERE ONLY.  OpenSSL 3.0 offers two ways to hook a key's private
 * operations: a provider (keymgmt + signature, several hundred lines, and the key must
 * still export its public half to libssl's checks), or the legacy RSA_METHOD and
 * EC_KEY_METHOD, deprecated in 3.0 but supported for its whole life (engines and
 * OpenSMTPD's privsep use them).  libssl sends a key whose method is not the default one
 * down the legacy EVP_PKEY_METHOD path, which calls:
 *   ECDSA:          EC_KEY_METHOD sign(digest NID, digest)          -> KEYOP_ECDSA_SIGN
 *   RSA PKCS#1 1.5: RSA_METHOD rsa_sign(digest NID, digest)         -> KEYOP_RSA_PKCS1_SIGN
 *   RSA-PSS:        the PSS encoding is done here (public), then
 *                   RSA_METHOD rsa_priv_enc(block, RSA_NO_PADDING) -> KEYOP_RSA_PSS_BLOCK
 * Everything else (decryption, other paddings, ECDSA_do_sign) fails here and is refused
 * by the monitor anyway.  OPENSSL_SUPPRESS_DEPRECATED is defined in this file and no
 * other; nothing in it holds or touches private key material. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <string.h>
#include <sys/socket.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include "base/plimits.h"
#include "base/util.h"
#include "privsep/keyop.h"

static int keyop_fd = -1;
static RSA_METHOD *keyop_rsa_meth;
static EC_KEY_METHOD *keyop_ec_meth;

void keyop_set_channel(int fd)
{
	keyop_fd = fd;
}

int keyop_send(const struct msg *m)
{
	return keyop_fd == -1 ? -1 : msg_send_flags(keyop_fd, m, MSG_DONTWAIT);
}

int keyop_call(const struct msg *req, enum msg_type reply_type, struct msg *reply)
{
	const char *err;

	if (keyop_fd == -1 || msg_send(keyop_fd, req) == -1)
		return -1;
	if (msg_recv(keyop_fd, reply, TLS_MONITOR_TIMEOUT_MS, &err) != 1 ||
	    reply->type != reply_type)
		return -1;
	return 0;
}

/* One key operation: 0 and the result in out (at most size bytes), or -1. */
static int keyop_ask(enum keyop_kind kind, int nid, const unsigned char *data, size_t len,
		     unsigned char *out, size_t size, size_t *len_r)
{
	struct msg req, rep;
	uint8_t status;
	int rc = -1;

	msg_init(&req, MSG_KEY_OP);
	if (msg_add_u8(&req, MSG_KEY_OP_KIND, (uint8_t)kind) == -1 ||
	    (nid != 0 && msg_add_u32(&req, MSG_KEY_OP_ARG, (uint32_t)nid) == -1) ||
	    msg_add(&req, MSG_KEY_OP_DATA, data, len) == -1)
		return -1;
	if (keyop_call(&req, MSG_KEY_OP_REPLY, &rep) == 0 &&
	    msg_get_u8(&rep, MSG_KEY_OP_REPLY_STATUS, &status) == 0 && status == 0) {
		const struct msg_field *f = msg_get(&rep, MSG_KEY_OP_REPLY_DATA);
		if (f != NULL && f->len > 0 && f->len <= size) {
			memcpy(out, f->data, f->len);   /* BOUNDS: f->len <= size */
			*len_r = f->len;
			rc = 0;
		}
	}
	msg_wipe(&rep);
	return rc;
}

static int keyop_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
			      RSA *rsa, int padding)
{
	size_t k = (size_t)RSA_size(rsa), got;

	/* only a PSS-encoded block, which is exactly as long as the modulus */
	if (padding != RSA_NO_PADDING || flen <= 0 || (size_t)flen != k ||
	    keyop_ask(KEYOP_RSA_PSS_BLOCK, 0, from, (size_t)flen, to, k, &got) == -1 ||
	    got != k)
		return -1;
	return (int)got;
}

static int keyop_rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to,
			      RSA *rsa, int padding)
{
	return -1;   /* no RSA key exchange: never needed */
}

static int keyop_rsa_sign(int type, const unsigned char *m, unsigned int m_len,
			  unsigned char *sigret, unsigned int *siglen, const RSA *rsa)
{
	size_t got;

	if (keyop_ask(KEYOP_RSA_PKCS1_SIGN, type, m, m_len, sigret, (size_t)RSA_size(rsa),
		      &got) == -1)
		return 0;
	*siglen = (unsigned)got;
	return 1;
}

static int keyop_ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
			 unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r,
			 EC_KEY *eckey)
{
	size_t got;

	if (dlen <= 0 || kinv != NULL || r != NULL ||
	    keyop_ask(KEYOP_ECDSA_SIGN, type, dgst, (size_t)dlen, sig,
		      (size_t)ECDSA_size(eckey), &got) == -1)
		return 0;
	*siglen = (unsigned)got;
	return 1;
}

static ECDSA_SIG *keyop_ec_sign_sig(const unsigned char *dgst, int dgst_len,
				    const BIGNUM *in_kinv, const BIGNUM *in_r, EC_KEY *eckey)
{
	return NULL;  /* ECDSA_do_sign() without a digest type: libssl does not use it */
}

static int keyop_methods(void)
{
	if (keyop_rsa_meth == NULL) {
		RSA_METHOD *m = RSA_meth_dup(RSA_PKCS1_OpenSSL());
		if (m == NULL || RSA_meth_set1_name(m, "postern-monitor") != 1 ||
		    RSA_meth_set_priv_enc(m, keyop_rsa_priv_enc) != 1 ||
		    RSA_meth_set_priv_dec(m, keyop_rsa_priv_dec) != 1 ||
		    RSA_meth_set_sign(m, keyop_rsa_sign) != 1) {
			RSA_meth_free(m);
			return -1;
		}
		keyop_rsa_meth = m;
	}
	if (keyop_ec_meth == NULL) {
		EC_KEY_METHOD *m = EC_KEY_METHOD_new(EC_KEY_get_default_method());
		if (m == NULL)
			return -1;
		EC_KEY_METHOD_set_sign(m, keyop_ec_sign, NULL, keyop_ec_sign_sig);
		keyop_ec_meth = m;
	}
	return 0;
}

EVP_PKEY *keyop_remote_key(EVP_PKEY *pub, const char **error_r)
{
	EVP_PKEY *pk = NULL;

	if (keyop_methods() == -1) {
		*error_r = "cannot make the key methods";
		return NULL;
	}
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA: {
		RSA *cert_rsa = EVP_PKEY_get1_RSA(pub);
		RSA *rsa = cert_rsa != NULL ? RSAPublicKey_dup(cert_rsa) : NULL;
		RSA_free(cert_rsa);
		pk = EVP_PKEY_new();
		if (rsa == NULL || pk == NULL || RSA_set_method(rsa, keyop_rsa_meth) != 1 ||
		    EVP_PKEY_assign_RSA(pk, rsa) != 1) {
			RSA_free(rsa);
			EVP_PKEY_free(pk);
			pk = NULL;
		}
		break;
	}
	case EVP_PKEY_EC: {
		EC_KEY *cert_ec = EVP_PKEY_get1_EC_KEY(pub);
		EC_KEY *ec = cert_ec != NULL ? EC_KEY_dup(cert_ec) : NULL;
		EC_KEY_free(cert_ec);
		pk = EVP_PKEY_new();
		if (ec == NULL || pk == NULL || EC_KEY_set_method(ec, keyop_ec_meth) != 1 ||
		    EVP_PKEY_assign_EC_KEY(pk, ec) != 1) {
			EC_KEY_free(ec);
			EVP_PKEY_free(pk);
			pk = NULL;
		}
		break;
	}
	default:
		*error_r = "the certificate's key is neither RSA nor ECDSA";
		return NULL;
	}
	if (pk == NULL)
		*error_r = "cannot make the key object";
	return pk;
}
