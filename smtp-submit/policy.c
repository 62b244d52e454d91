/* smtp-submit's policy: see policy.h.  STUB until the policy branch lands: our name is
 * the host name, every domain but "localhost" is remote, every recipient local ...
 * accepted.  NOT FOR USE: port 25 would relay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "base/util.h"
#include "policy.h"

struct policy {
	enum submit_mode mode;
	char hostname[256];
};

int policy_open(const struct config *cfg, enum submit_mode mode, struct policy **p_r,
		const char **error_r)
{
	struct policy *p = xcalloc(1, sizeof(*p));

	(void)error_r;
	p->mode = mode;
	if (cfg->hostname != NULL)
		snprintf(p->hostname, sizeof(p->hostname), "%s", cfg->hostname);
	else if (gethostname(p->hostname, sizeof(p->hostname) - 1) == -1)
		snprintf(p->hostname, sizeof(p->hostname), "localhost");
	*p_r = p;
	return 0;
}

void policy_free(struct policy **p)
{
	free(*p);
	*p = NULL;
}

const char *policy_hostname(const struct policy *p)
{
	return p->hostname;
}

bool policy_domain_is_local(const struct policy *p, const char *domain)
{
	(void)p;
	return strcasecmp(domain, "localhost") == 0;
}

int policy_client(struct policy *p, const char *rip, struct policy_reply *r)
{
	(void)p;
	(void)rip;
	(void)r;
	return 0;
}

int policy_sender(struct policy *p, const char *login, const struct address_path *path,
		  struct policy_reply *r)
{
	(void)p;
	(void)login;
	(void)path;
	(void)r;
	return 0;
}

int policy_recipient(struct policy *p, const char *login, const struct address_path *path,
		     enum policy_rcpt_kind *kind_r, struct policy_reply *r)
{
	(void)login;
	(void)r;
	*kind_r = policy_domain_is_local(p, path->domain) ? POLICY_RCPT_LOCAL :
		  POLICY_RCPT_REMOTE;
	return 0;
}

int policy_header_from(struct policy *p, const char *login, const char *value, size_t len,
		       struct policy_reply *r)
{
	(void)p;
	(void)login;
	(void)value;
	(void)len;
	(void)r;
	return 0;
}

int policy_rate_check(struct policy *p, const char *login, unsigned nrcpt,
		      struct policy_reply *r)
{
	(void)p;
	(void)login;
	(void)nrcpt;
	(void)r;
	return 0;
}

void policy_rate_record(struct policy *p, const char *login, unsigned nrcpt)
{
	(void)p;
	(void)login;
	(void)nrcpt;
}
