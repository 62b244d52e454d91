/* SASL PLAIN (RFC 4616) and LOGIN decoding, shared by POP3 AUTH, IMAP AUTHENTICATE and
 * SMTP AUTH.  Parsers only: base64 in, user and password out. */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H
#include <stddef.h>
#include "base/plimits.h"

enum sasl_mech { SASL_NONE, SASL_PLAIN, SASL_LOGIN };
enum sasl_mech sasl_mech_parse(const char *name, size_t len);

struct sasl_creds {
	char user[AUTH_MAX_USER + 1];
	char pass[AUTH_MAX_PASS + 1];
};

/* Strict base64 (RFC 4648, padding required, no whitespace).  "=" alone is the empty
 * string (RFC 4954 / RFC 5034 initial response).  Returns decoded length or -1. */
long sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t out_size);
/* Encode; returns output length (NUL-terminated) or -1 if out is too small. */
long sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t out_size);
/* PLAIN message "authzid\0authcid\0passwd" (already base64-decoded).  An authzid that
 * differs from authcid is refused (no proxy authorization).  0 or -1 with error. */
int sasl_plain_parse(const unsigned char *msg, size_t len, struct sasl_creds *r,
		     const char **error_r);
/* A LOGIN step: decoded user name or password; no NUL allowed.  0 or -1. */
int sasl_login_value(const unsigned char *msg, size_t len, char *out, size_t out_size);
/* Wipe a creds struct. */
void sasl_creds_wipe(struct sasl_creds *c);

#endif
