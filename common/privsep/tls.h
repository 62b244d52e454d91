/* OpenSSL server context: TLS 1.2+, modern ciphers, RSA or ECDSA key, optional chain
 * file, session tickets whose keys are shared through a 0600 file in state_dir by all the
 * per-connection processes and rotated. */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H
#include <stdbool.h>
#include <time.h>
#include <openssl/ssl.h>
#include "base/config.h"

/* Build a server context from cfg (reads cert, key and chain now: called for every
 * connection, so a renewed certificate needs no restart).  Runs as root.  ticket keys come
 * from <state_dir>/tls-ticket.keys, made or rotated here under a lock.
 * NULL on error with *error_r set. */
SSL_CTX *tls_ctx_new(const struct config *cfg, const char **error_r);
void tls_ctx_free(SSL_CTX **ctx);

/* For `-t`: facts about the certificate and key. */
struct tls_cert_info {
	bool key_matches;
	long days_left;          /* negative: expired */
	char subject[256];
	char key_type[32];       /* "ECDSA P-256", "RSA 3072" */
};
int tls_cert_check(const struct config *cfg, struct tls_cert_info *info, const char **error_r);

/* Ticket key file handling, exposed for tests: 1 key set = 80 bytes
 * (16 name, 32 HMAC, 32 AES); the file holds the current set then the previous one. */
#define TLS_TICKET_KEYLEN 80
int tls_ticket_keys_load(const char *path, unsigned rotate_s, time_t now,
			 unsigned char keys_r[2][TLS_TICKET_KEYLEN], const char **error_r);

#endif
