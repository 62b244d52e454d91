/* smtp-submit -k DOMAIN SELECTOR [rsa|ed25519]: make a DKIM key (common/mail/dkim.h). */
#ifndef POSTERN_SUBMIT_DKIM_H
#define POSTERN_SUBMIT_DKIM_H
#include <stdio.h>
#include "base/config.h"

/* Write a new key to dkim_key_dir/DOMAIN.SELECTOR.key (0600, never over an existing
 * one; the directory is made 0700 if missing) and print the TXT record to publish on
 * out.  alg: "rsa" (2048 bits), "ed25519", NULL for rsa.  Messages go to err.  Returns
 * the exit status: 0, 1 on failure, 2 on bad arguments. */
int submit_dkim_keygen(const struct config *cfg, const char *domain, const char *selector,
		       const char *alg, FILE *out, FILE *err);

#endif
