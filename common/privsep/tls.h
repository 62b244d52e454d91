/* OpenSSL server context: TLS 1.2+, modern ciphers, RSA or ECDSA key, optional chain
 * file.  The private key and the resumable sessions stay with the monitor (root): the
 * worker's context has a remote key (keyop.h) and asks the monitor for sessions. */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H
#include <stdbool.h>
#include <time.h>
#include <openssl/ssl.h>
#include "base/config.h"
#include "privsep/msg.h"

/* Build a server context from cfg: certificate and chain read now (called for every
 * connection, so a renewed certificate needs no restart), the private key NOT read: its
 * operations are sent to the monitor.  Runs as root before the fork.
 * NULL on error with *error_r set. */
SSL_CTX *tls_ctx_new(const struct config *cfg, const char **error_r);
void tls_ctx_free(SSL_CTX **ctx);

/* The key process (monitor.c), after the fork: read the private key and check that it
 * matches ctx's certificate.  NULL with *error_r set. */
EVP_PKEY *tls_key_load(const struct config *cfg, SSL_CTX *ctx, const char **error_r);
void tls_key_free(EVP_PKEY **key);
/* Monitor, before it passes a MSG_KEY_OP on to the key process: is it an operation TLS
 * needs, that fits pub (the certificate's key; NULL: the fields alone)?  0, or -1 with
 * *error_r: the worker is hostile. */
int tls_key_check(EVP_PKEY *pub, const struct msg *req, const char **error_r);
/* Key process: answer one MSG_KEY_OP with key (NULL: answer "failed"), checked again.
 * 0 and the answer in *reply; -1 with *error_r: the request breaks the rules (an
 * operation TLS does not need, a digest of the wrong length, a block that is no PSS
 * encoding): the worker is hostile. */
int tls_key_answer(EVP_PKEY *key, const struct msg *req, struct msg *reply,
		   const char **error_r);
/* Monitor: MSG_TLS_SESS_PUT (keep the session; trouble is logged) and MSG_TLS_SESS_GET
 * (the answer in *reply, with the session if there was one, taken out of the store).
 * 0, or -1 for a malformed request. */
int tls_sess_put(const struct config *cfg, const struct msg *req, time_t now);
int tls_sess_get(const struct config *cfg, const struct msg *req, time_t now,
		 struct msg *reply);

/* For `-t`: facts about the certificate and key. */
struct tls_cert_info {
	bool key_matches;
	long days_left;          /* negative: expired */
	char subject[256];
	char key_type[32];       /* "ECDSA P-256", "RSA 3072" */
};
int tls_cert_check(const struct config *cfg, struct tls_cert_info *info, const char **error_r);

#endif
