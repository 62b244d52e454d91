/* smtp-submit's policy: who may send what to whom.  Runs in the SMTP session (the spool
 * user); decides, never talks to the client: every refusal comes back as a reply for the
 * session to send (and log).
 *
 * Port 25: only recipients in local_domains that exist as a user (uid >= min_uid) or in
 * the aliases file; 550 5.1.1 for an unknown one, 554 5.7.1 for any other domain and for
 * every relay trick (the path flags of address_path_parse(): '%', '!', quoted '@',
 * source routes, address literals), whatever the case or a trailing dot.
 * Submission (587/465, after AUTH): MAIL FROM and the header From: must be the user's
 * own: login@each local domain, or an alias that expands to that user alone (553 5.7.1);
 * any recipient (local ones must exist; remote ones are queued for the queue runner);
 * per-user messages and recipients per hour, shared by every connection (451 4.7.1 at
 * MAIL for messages, 452 4.7.1 at RCPT for recipients).  Every decision and its reason:
 * the comment at the top of policy.c and docs/architecture.md "smtp-submit: policy". */
#ifndef POSTERN_POLICY_H
#define POSTERN_POLICY_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include "base/config.h"
#include "mail/address.h"
#include "submit.h"

/* One reply: code, RFC 3463 status, text (no CR/LF: smtp_reply_format() checks). */
struct policy_reply {
	unsigned code;
	char status[12];
	char text[256];
};

struct policy;

/* In the session, before the first command.  -1 and *error_r if local_domains or the
 * aliases file are unusable (the session answers 421 4.3.0 and logs it). */
int policy_open(const struct config *cfg, enum submit_mode mode, struct policy **p_r,
		const char **error_r);
void policy_free(struct policy **p);

/* Our name: hostname, or the host's FQDN. */
const char *policy_hostname(const struct policy *p);
/* Is `domain` (any case, a trailing dot allowed) one of ours? */
bool policy_domain_is_local(const struct policy *p, const char *domain);

/* At connect, in every mode: remembers rip for the log lines (rate-limited: ... rip=);
 * on port 25 the DNSBL check (when dnsbl is set).  0: go on; -1: refuse with *r (554
 * 5.7.1 with the list's text). */
int policy_client(struct policy *p, const char *rip, struct policy_reply *r);

/* MAIL FROM.  login: the SASL user, NULL on port 25.  path as parsed (null sender:
 * path->flags & ADDRESS_PATH_F_NULL).  0 or -1 with *r. */
int policy_sender(struct policy *p, const char *login, const struct address_path *path,
		  struct policy_reply *r);

enum policy_rcpt_kind {
	POLICY_RCPT_LOCAL,     /* delivered here (the envelope's "kind local") */
	POLICY_RCPT_REMOTE,    /* queued for another domain (submission only) */
};

/* RCPT TO.  0 and *kind_r, or -1 with *r. */
int policy_recipient(struct policy *p, const char *login, const struct address_path *path,
		     enum policy_rcpt_kind *kind_r, struct policy_reply *r);

/* Submission: the header's From: field, its value as received (unfolded or not, the
 * raw bytes between "From:" and the end of the field).  0 or -1 with *r (553 5.7.1). */
int policy_header_from(struct policy *p, const char *login, const char *value, size_t len,
		       struct policy_reply *r);

/* Submission: may `login` send one more message with `nrcpt` recipients this hour?
 * 0, or -1 with *r (4.7.x) after logging the event.  policy_rate_check() only looks (MAIL,
 * RCPT: early answers); policy_rate_take() decides and counts the message in one locked
 * step, right before the spool commit, so that a user's concurrent connections cannot
 * together pass the limit.  A taken message whose commit then fails stays counted (the
 * limit errs on the side of sending less).  policy_rate_record() counts without a check
 * (tests). */
int policy_rate_check(struct policy *p, const char *login, unsigned nrcpt,
		      struct policy_reply *r);
int policy_rate_take(struct policy *p, const char *login, unsigned nrcpt,
		     struct policy_reply *r);
void policy_rate_record(struct policy *p, const char *login, unsigned nrcpt);

/* ---- additions for the tests and for smtp-submit -t ---- */
struct aliases;
/* The local domains in use. */
size_t policy_local_domains(const struct policy *p, const char *const **domains_r);
/* Time source of the rate limits (default time()). */
typedef time_t policy_clock_fn(void *ctx);
void policy_set_clock(struct policy *p, policy_clock_fn *fn, void *ctx);
/* User lookup (default getpwnam()): 1 and *uid_r if the user exists, 0 if not, -1 if
 * the lookup failed (the policy answers 451 4.3.0). */
typedef int policy_user_fn(void *ctx, const char *name, uid_t *uid_r);
void policy_set_user_lookup(struct policy *p, policy_user_fn *fn, void *ctx);
/* Tests only: when set, every policy_open() uses it (with a NULL ctx). */
extern policy_user_fn *policy_test_user_lookup;
/* DNS query (default res_nquery() with bounded timeouts): res_query()'s contract. */
typedef int policy_dns_fn(void *ctx, const char *name, int type, unsigned char *answer,
			  int anslen);
void policy_set_resolver(struct policy *p, policy_dns_fn *fn, void *ctx);
/* The default resolver asks this server only (tests: a local dnsmasq); NULL: back to
 * resolv.conf's. */
struct sockaddr_in;
void policy_set_nameserver(struct policy *p, const struct sockaddr_in *sa);
/* Replace the aliases table (the policy owns al from now on). */
void policy_set_aliases(struct policy *p, struct aliases *al);
/* The DNSBL query name of rip (IPv4, IPv6 nibbles, IPv4-mapped IPv6 as IPv4) in zone.
 * 0, or -1 for an address that does not parse or a name too long. */
int policy_dnsbl_name(const char *rip, const char *zone, char *out, size_t size);
/* Walk the answer records of `type` in a DNS message (hostile: bounded, compression
 * pointers skipped, never followed).  cb returns nonzero to stop.  0, or -1 for a
 * malformed message or an error answer. */
typedef int policy_dns_rr_cb(void *ctx, const unsigned char *rdata, size_t len);
int policy_dns_answers(const unsigned char *msg, size_t len, int type,
		       policy_dns_rr_cb *cb, void *ctx);
/* May this login name be a rate-limit file name? ([A-Za-z0-9._@+-], 1..64 bytes, not
 * starting with '.' or '-') */
bool policy_rate_name_ok(const char *login);

#endif
