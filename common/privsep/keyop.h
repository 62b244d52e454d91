/* The worker's side of the TLS private key: a key object that holds only the public half
 * and sends every private operation to the monitor (root) over the ctl socket, which does
 * it with the real key and checks each request first (tls.c, tls_key_answer()).  The real
 * key is never in the worker's memory (docs/architecture.md, "TLS"). */
#ifndef POSTERN_KEYOP_H
#define POSTERN_KEYOP_H
#include <openssl/evp.h>
#include "privsep/msg.h"

/* MSG_KEY_OP_KIND: exactly the operations a TLS 1.2/1.3 server handshake needs. */
enum keyop_kind {
	KEYOP_ECDSA_SIGN = 1,   /* ARG digest NID, DATA the digest; reply: DER ECDSA-Sig-Value */
	KEYOP_RSA_PKCS1_SIGN,   /* ARG digest NID, DATA the digest; reply: the signature
				 * (TLS 1.2 rsa_pkcs1_*) */
	KEYOP_RSA_PSS_BLOCK,    /* DATA an EMSA-PSS encoded block of the modulus' length
				 * (RFC 8017 9.1.1), which the monitor checks is one, reply:
				 * its raw RSA signature (rsa_pss_rsae_*, TLS 1.3 and 1.2) */
};

/* Root, before the fork: a key with pub's public half (from the certificate) whose
 * private operations go to the monitor.  NULL with *error_r if pub is neither RSA nor EC
 * or OpenSSL refuses. */
EVP_PKEY *keyop_remote_key(EVP_PKEY *pub, const char **error_r);
/* Worker: the socket the requests go to (ctl). */
void keyop_set_channel(int fd);
/* Worker: send m without waiting (nothing is answered); dropped if the socket is full.
 * 0 or -1. */
int keyop_send(const struct msg *m);
/* Worker: send req and wait, at most TLS_MONITOR_TIMEOUT_MS, for one message of
 * reply_type.  0 or -1 (no channel, send failed, timeout, another type). */
int keyop_call(const struct msg *req, enum msg_type reply_type, struct msg *reply);

#endif
