/* smtp-submit's policy: what policy.c, policy_dnsbl.c and policy_rate.c share.  Not for
 * the rest of the daemon: use policy.h. */
#ifndef POSTERN_POLICY_INT_H
#define POSTERN_POLICY_INT_H
#include <netinet/in.h>
#include <string.h>
#include "base/log.h"
#include "policy.h"

struct policy {
	enum submit_mode mode;
	char hostname[SMTP_MAX_DOMAIN + 1];
	char **domains;
	size_t ndomains;
	struct aliases *aliases;
	unsigned min_uid;
	char *deny_users;
	char *spool_dir;
	unsigned rate_messages, rate_rcpts;
	char *dnsbl;
	char rip[64];
	policy_clock_fn *clock;
	void *clock_ctx;
	policy_user_fn *user_lookup;
	void *user_ctx;
	policy_dns_fn *dns;
	void *dns_ctx;
	struct sockaddr_in nameserver; /* sin_family 0: resolv.conf's */
};

/* ASCII letters to lower case, in place (UTF-8 is left as it is). */
void policy_lower_ascii(char *s);
/* Fill a reply; the text's control bytes become '?'. */
void policy_reply_set(struct policy_reply *r, unsigned code, const char *status,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A client-supplied string for a reply or a log line: log_sanitize()'s form. */
#define POLICY_SAN(s, buf) log_sanitize((s), strlen(s), (buf))
/* The default resolver (ctx: the policy). */
int policy_dns_default(void *ctx, const char *name, int type, unsigned char *answer,
		       int anslen);

#endif
