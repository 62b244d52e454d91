/* The server side of a SASL exchange (RFC 4422), I/O-free, shared by POP3 AUTH
 * (RFC 5034), IMAP AUTHENTICATE (RFC 3501 section 6.2.2) and SMTP AUTH (RFC 4954).
 *
 * The daemon hands over each client line exactly as it came (base64 text, "=" for an
 * empty initial response, "*" to cancel) and writes the challenge text it gets back in
 * its own framing ("+ " for POP3 and IMAP, "334 " for SMTP).  Base64 both ways, bounds,
 * and wiping of secrets are done here:
 *
 *	const struct sasl_mech *m = sasl_mech_find(name, len);     NULL: not offered
 *	struct sasl_server *s = sasl_server_new(m);
 *	int st = sasl_server_start(s, ir, ir_len);        ir NULL: no initial response
 *	while (st == SASL_CONTINUE) {
 *		send sasl_server_challenge(s), read a line;
 *		st = sasl_server_step(s, line, len);
 *	}
 *	SASL_DONE: sasl_server_creds(s);  < 0: sasl_server_error(s) says why (log only)
 *	sasl_server_free(&s);                              wipes everything
 *
 * Mechanisms are rows of a table (sasl.c) with a step function and private state, so a
 * multi-step mechanism with server state (SCRAM-SHA-256, RFC 7677) is one more row: its
 * step function keeps the nonces in the state union and answers SASL_CONTINUE until the
 * client's proof; it will need the stored key from the monitor, which is a callback to
 * add to sasl_server_new() when that mechanism is written. */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H
#include <stdbool.h>
#include <stddef.h>
#include "base/plimits.h"

struct sasl_server;

/* Results of sasl_server_start() and sasl_server_step(). */
enum sasl_status {
	SASL_DONE = 1,          /* credentials ready: sasl_server_creds() */
	SASL_CONTINUE = 0,      /* send sasl_server_challenge(), feed the next response */
	SASL_E_CANCEL = -1,     /* the client answered "*" (RFC 4954, 5034, 3501) */
	SASL_E_BASE64 = -2,     /* the response is not strict base64 */
	SASL_E_TOO_LONG = -3,   /* longer than SASL_MAX_RESPONSE */
	SASL_E_MALFORMED = -4,  /* decoded, but not what the mechanism allows (error says) */
	SASL_E_STATE = -5,      /* fed after the exchange ended: the caller's bug */
};

struct sasl_mech {
	const char *name;       /* as in CAPA / AUTH, upper case */
	bool plaintext;         /* the secret travels as it is: TLS or a trusted network only */
	/* private to sasl.c: one step; in is the decoded response, NULL when the exchange
	 * starts without an initial response */
	int (*step)(struct sasl_server *s, const unsigned char *in, size_t len);
};

/* What a finished exchange proved the client knows (all NUL-terminated, no NULs inside):
 * the authorization identity as sent ("" or equal to authcid: acting as somebody else is
 * refused), the authentication identity and the password. */
struct sasl_creds {
	char authzid[AUTH_MAX_USER + 1];
	char authcid[AUTH_MAX_USER + 1];
	char secret[AUTH_MAX_PASS + 1];
};

/* The mechanism named by a counted, case-insensitive token, or NULL. */
const struct sasl_mech *sasl_mech_find(const char *name, size_t len);
/* The i-th mechanism of the table (i from 0), NULL past the end: for CAPA and lists. */
const struct sasl_mech *sasl_mech_at(size_t i);

struct sasl_server *sasl_server_new(const struct sasl_mech *mech);
/* Wipes and frees; *s becomes NULL. */
void sasl_server_free(struct sasl_server **s);
/* Begin, with the initial response's text (NULL: none was sent). */
int sasl_server_start(struct sasl_server *s, const char *ir, size_t len);
/* One client response line (without CRLF). */
int sasl_server_step(struct sasl_server *s, const char *resp, size_t len);
/* After SASL_CONTINUE: the challenge, base64, NUL-terminated ("" for an empty one). */
const char *sasl_server_challenge(const struct sasl_server *s);
/* After SASL_DONE; NULL before. */
const struct sasl_creds *sasl_server_creds(const struct sasl_server *s);
/* After a negative status: why, for the log (never the client's secret). */
const char *sasl_server_error(const struct sasl_server *s);
const struct sasl_mech *sasl_server_mech(const struct sasl_server *s);

/* Strict base64 (RFC 4648, padding required, no whitespace).  "=" alone is the empty
 * string (RFC 4954 / RFC 5034 initial response).  Returns decoded length or -1 (and
 * wipes what it had decoded). */
long sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t out_size);
/* Encode; returns output length (NUL-terminated) or -1 if out is too small. */
long sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t out_size);

#endif
