/* The envelope of a spooled message: who sent it, to whom, and how far delivery got.
 *
 * It is a small text file of its own, beside the message, because root (local delivery
 * must start processes as the recipients) and per-user delivery code read it, and must
 * read nothing else the spool user could have written: the parser takes it as hostile
 * input.  The format (docs/architecture.md, "The spool"):
 *
 *   postern-envelope 1           magic and version: the first line
 *   id 0PZ4K8M2T7Q3              the queue id (the directory's name)
 *   nonce 9F86D081884C7D65       random, secret: delivery tokens are derived from it
 *   arrival 1764288000           Unix time of acceptance
 *   size 518                     bytes of the message file
 *   body 8bitmime                7bit | 8bitmime | binarymime (MAIL BODY=, RFC 6152/3030)
 *   smtputf8 no                  yes | no (MAIL SMTPUTF8, RFC 6531)
 *   sender <ned@example.org>     the reverse-path, "<>" for the null sender
 *   auth ned                     optional: the authenticated user
 *   ret hdrs                     optional: RET=FULL|HDRS (RFC 3461), as full | hdrs
 *   envid QQ314159               optional: ENVID, xtext-decoded
 *   client-addr 192.0.2.7        optional: the client, its rDNS name, its HELO, the
 *   client-name mail.example.org           protocol (RFC 3848) and the TLS summary,
 *   helo mail.example.org                  for the log, -bp and DSNs (the Received:
 *   proto ESMTPSA                          header itself is in the message)
 *   tls TLSv1.3 TLS_AES_256_GCM_SHA384
 *   rcpt <bob@example.org>       a recipient; the lines up to the next rcpt are its own:
 *   kind local                     local | remote
 *   notify success,failure         optional: NOTIFY= (never, or some of success,failure,
 *                                  delay in that order)
 *   orcpt rfc822;bob@example.org   optional: ORCPT=, addr-type ";" xtext-decoded address
 *   state deferred                 pending | deferred | delivered | failed | bounced
 *   attempts 2                     delivery attempts begun
 *   next-try 1764291600            deferred only (and required there): the next attempt
 *   inflight 1764290000            optional: an attempt began then and its outcome was
 *                                  never recorded (a crash): see envelope_token()
 *   warned 1764302400              optional: the delay DSN was sent then
 *   reply 451 4.2.0 Mailbox busy   optional: the last reply, and who gave it
 *   reply-mta mx.example.net
 *   end                          the last line: a file without it is refused
 *
 * Lines end in LF; a key and its value are separated by one space; values are never
 * empty.  The parser refuses: another first line, a version it does not know, an unknown
 * or repeated key, a header key after the first rcpt, a missing required key, an empty
 * or over-long line (SPOOL_ENV_LINE_MAX), a control byte or invalid UTF-8 anywhere,
 * UTF-8 where the key allows none (only addresses, and only with smtputf8 yes, and the
 * auth name), a value over its limit, a number with a sign, leading zero or overflow,
 * more than SPOOL_MAX_RCPTS recipients or none, anything after "end", and a file over
 * SPOOL_ENV_MAX_BYTES.  Addresses go through mail/address.h's strict RFC 5321 path
 * parser (no source routes).  The writer writes exactly what the parser reads back (it
 * checks by parsing its own output), in one canonical order.
 *
 * States: pending (not tried yet), deferred (a temporary failure: retried at next-try),
 * delivered, failed (a permanent failure: a bounce is owed), bounced (a permanent
 * failure whose bounce was queued, or is not owed: null sender, NOTIFY without FAILURE).
 * A recipient is done when delivered or bounced; a message is removed when every
 * recipient is done. */
#ifndef POSTERN_ENVELOPE_H
#define POSTERN_ENVELOPE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"

/* Queue ids: 12 characters of Crockford's base32 (0-9 and A-Z without I, L, O, U), the
 * first 11 the microseconds since 1970 at creation (so they sort by arrival, as strings
 * too), the last a tie-breaker within one microsecond. */
#define ENVELOPE_ID_LEN 12
#define ENVELOPE_ID_ALPHABET "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
/* The envelope's nonce: 64 random bits as 16 upper-case hex digits. */
#define ENVELOPE_NONCE_LEN 16
/* A delivery token: "QUEUEID-NNN-HHHHHHHHHHHHHHHH", NNN the recipient's index in three
 * digits (SPOOL_MAX_RCPTS is 1000). */
#define ENVELOPE_TOKEN_LEN (ENVELOPE_ID_LEN + 1 + 3 + 1 + 16)
/* The header field a local delivery writes the token into (see envelope_token()). */
#define ENVELOPE_TOKEN_FIELD "X-Postern-Delivery"

enum envelope_body { ENVELOPE_BODY_7BIT, ENVELOPE_BODY_8BITMIME, ENVELOPE_BODY_BINARYMIME };
enum envelope_ret { ENVELOPE_RET_NONE, ENVELOPE_RET_FULL, ENVELOPE_RET_HDRS };
enum envelope_kind { ENVELOPE_LOCAL, ENVELOPE_REMOTE };
enum envelope_state {
	ENVELOPE_PENDING,
	ENVELOPE_DEFERRED,
	ENVELOPE_DELIVERED,
	ENVELOPE_FAILED,
	ENVELOPE_BOUNCED,
};
/* NOTIFY= (RFC 3461 section 4.1); 0 when the client gave none (the default applies). */
#define ENVELOPE_NOTIFY_NEVER   0x1u
#define ENVELOPE_NOTIFY_SUCCESS 0x2u
#define ENVELOPE_NOTIFY_FAILURE 0x4u
#define ENVELOPE_NOTIFY_DELAY   0x8u

struct envelope_rcpt {
	char *addr;             /* the forward-path without "<>": "bob@example.org" */
	enum envelope_kind kind;
	unsigned notify;        /* ENVELOPE_NOTIFY_*: NEVER alone, or some of the others */
	char *orcpt;            /* "rfc822;bob@example.org" (decoded) or NULL */
	enum envelope_state state;
	uint32_t attempts;
	int64_t next_try;       /* deferred: when to try again; otherwise 0 */
	int64_t inflight;       /* when an unfinished attempt began; 0: none */
	int64_t warned;         /* when the delay DSN was sent; 0: not yet */
	char *reply;            /* the last reply (sanitized), or NULL */
	char *reply_mta;        /* who gave it, or NULL */
};

struct envelope {
	char id[ENVELOPE_ID_LEN + 1];
	char nonce[ENVELOPE_NONCE_LEN + 1];
	int64_t arrival;
	uint64_t size;
	enum envelope_body body;
	bool smtputf8;
	char *sender;           /* the reverse-path without "<>"; "" for the null sender */
	char *auth;             /* authenticated user, or NULL */
	enum envelope_ret ret;
	char *envid;            /* decoded ENVID, or NULL */
	char *client_addr, *client_name, *helo, *proto, *tls;   /* each may be NULL */
	struct envelope_rcpt *rcpts;
	size_t rcpt_count;
	size_t rcpt_alloc_;     /* private */
};

/* An empty envelope (no id, no recipients; sender ""), to fill in and write. */
struct envelope *envelope_new(void);
void envelope_free(struct envelope **env);

/* Parse a whole envelope file.  0 and *env_r, or -1 with *error_r (a constant) and, if
 * line_r is not NULL, the 1-based line it is about (0: the file as a whole). */
int envelope_parse(const char *buf, size_t len, struct envelope **env_r, unsigned *line_r,
		   const char **error_r);
/* Write env in the canonical form into a new buffer (free() it).  -1 with *error_r when
 * env holds something the parser would refuse (nothing is written then). */
int envelope_write(const struct envelope *env, char **buf_r, size_t *len_r,
		   const char **error_r);

/* Setters.  The strings are copied; -1 with *error_r if a value is invalid for its key
 * (the envelope is unchanged then).  envelope_set_text() sets one of the optional text
 * fields by its key name ("auth", "envid", "client-addr", "client-name", "helo",
 * "proto", "tls"); NULL clears it. */
int envelope_set_sender(struct envelope *env, const char *addr, const char **error_r);
int envelope_set_text(struct envelope *env, const char *key, const char *value,
		      const char **error_r);
/* Add a recipient (state pending, no attempts): its index, or -1 (invalid address,
 * SPOOL_MAX_RCPTS reached).  orcpt may be NULL. */
int envelope_add_rcpt(struct envelope *env, const char *addr, enum envelope_kind kind,
		      unsigned notify, const char *orcpt, const char **error_r);
/* Copy text[0..len) into dst (dst_size > 0) as a valid envelope value: control bytes,
 * DEL and bytes >= 0x80 become '?' (CR and LF a space), cut at max bytes and at dst_size
 * - 1; "?" if nothing is left.  For HELO arguments and replies from the network. */
void envelope_sanitize(char *dst, size_t dst_size, const char *text, size_t len,
		       size_t max);

/* Outcomes of one recipient; each ends an attempt (clears inflight).  reply and mta may
 * be NULL (keep what was there) and are sanitized. */
void envelope_rcpt_delivered(struct envelope_rcpt *r, const char *reply, const char *mta);
void envelope_rcpt_defer(struct envelope_rcpt *r, int64_t next_try, const char *reply,
			 const char *mta);
void envelope_rcpt_fail(struct envelope_rcpt *r, const char *reply, const char *mta);
void envelope_rcpt_bounced(struct envelope_rcpt *r);
/* Begin an attempt: attempts + 1 (up to SPOOL_MAX_ATTEMPTS), inflight = now. */
void envelope_rcpt_attempt(struct envelope_rcpt *r, int64_t now);

bool envelope_rcpt_done(const struct envelope_rcpt *r);
/* Every recipient is done: the message may be removed. */
bool envelope_done(const struct envelope *env);
/* When the message next needs a queue runner: 0 for "now" (a recipient pending, failed
 * with its bounce owed, or with an unfinished attempt; or all done, to be removed),
 * else the earliest next-try of its deferred recipients. */
int64_t envelope_next_due(const struct envelope *env);

const char *envelope_state_name(enum envelope_state s);
const char *envelope_kind_name(enum envelope_kind k);

/* The delivery token of recipient idx: ENVELOPE_TOKEN_LEN characters (buf holds at least
 * ENVELOPE_TOKEN_LEN + 1), the queue id, the index and 64 bits of SHA-256 over the
 * envelope's secret nonce, id and index: unique per message and recipient, not
 * guessable by a recipient for any other recipient or message, safe in a file name and
 * in a header.  A local delivery writes it in a header field ENVELOPE_TOKEN_FIELD of the
 * delivered copy; when it finds the recipient inflight (a crash cut the last attempt),
 * it looks for the token in the mailbox's messages added since the inflight time
 * (envelope_token_find() over the first bytes of each) before delivering again.
 * 0, or -1 for an index out of range or an envelope without id or nonce. */
int envelope_token(const struct envelope *env, size_t idx, char *buf, size_t size);
/* Whether a message header (hdr[0..len): its first bytes; LF or CRLF lines; the search
 * stops at the empty line ending the header) has a field ENVELOPE_TOKEN_FIELD (any case)
 * whose value is token (surrounding blanks ignored).  No I/O, bounded by len. */
bool envelope_token_find(const char *hdr, size_t len, const char *token);

/* Whether s[0..len) is a queue id as described above. */
bool envelope_id_valid(const char *s, size_t len);

#endif
