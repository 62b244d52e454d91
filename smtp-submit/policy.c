/* smtp-submit's policy: see policy.h; docs/architecture.md "smtp-submit: policy" has the
 * decisions and their reasons.  In short:
 * - local_domains: the config key, or (unset) our name (hostname key, else the FQDN of
 *   gethostname() by getaddrinfo(AI_CANONNAME)), its parent when the name has three
 *   labels or more ("mail.example.org" -> "example.org", never a bare TLD), and
 *   "localhost".  ASCII case-insensitive, one trailing dot ignored, UTF-8 compared as is.
 * - Relay tricks ('%', '!', '@' in a quoted local part, source routes) and address
 *   literals are refused whatever the domain: 554 5.7.1 on port 25, 553 5.7.1 on
 *   submission (an address literal even when it is our own address: nobody needs one to
 *   reach a user here, and "[our IP]" is the classic way around a domain check).
 * - Local parts are lower-cased (ASCII) before the user and alias lookups, as Postfix's
 *   local delivery does: Unix user names are lower-case.
 * - A recipient user: getpwnam(), uid >= min_uid, not uid 0, not in deny_users; an alias
 *   counts when it reaches at least one user that exists (any uid: the admin wrote it).
 *   "postmaster" (and "<Postmaster>") is always accepted (RFC 5321 section 4.5.1).
 * - Port 25 accepts any sender, ours included (as Postfix does by default).
 * - Submission: the sender must be login@<local domain> or an alias @<local domain> that
 *   expands to the login alone; "<>" is refused; 553 5.7.1 otherwise.  The header From:
 *   passes the same test for every mailbox, and must parse (553 5.7.1).
 * - Rate limits (policy_rate.c): spool_dir/rate/<user>, 60 one-minute buckets (a
 *   sliding hour).  The DNSBL check: policy_dnsbl.c. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <idn2.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "spool/aliases.h"
#include "policy.h"
#include "policy_int.h"

/* ---- names ---- */

static int ascii_casecmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

/* A domain as we keep it: lower-case ASCII, no trailing dot.  -1 if unusable. */
/* A domain as it is compared: without its trailing dot, lower case, and an
 * internationalized name (UTF-8, RFC 6531) as its A-labels ("bücher.example" ->
 * "xn--bcher-kva.example"), through libidn2 with the UTS #46 mapping (which folds case
 * and normalizes to NFC, as browsers and MTAs do), so that local_domains may be written
 * either way and a recipient matches in either form.  -1: not a name. */
static int domain_normalize(const char *in, size_t len, char *out, size_t out_size)
{
	bool utf8 = false;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len >= out_size || len > SMTP_MAX_DOMAIN)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)in[i] <= 0x20 || in[i] == 0x7F || in[i] == '@' ||
		    in[i] == ',' || in[i] == '[' || in[i] == ']')
			return -1;
		utf8 = utf8 || (unsigned char)in[i] >= 0x80;
	}
	memcpy(out, in, len);
	out[len] = '\0';
	if (utf8) {
		char *alabels = NULL;
		if (idn2_to_ascii_8z(out, &alabels, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) !=
		    IDN2_OK) {
			idn2_free(alabels);
			return -1;
		}
		size_t alen = strlen(alabels);
		if (alen == 0 || alen >= out_size || alen > SMTP_MAX_DOMAIN) {
			idn2_free(alabels);
			return -1;
		}
		memcpy(out, alabels, alen + 1);
		idn2_free(alabels);
	}
	policy_lower_ascii(out);
	return 0;
}

static void add_domain(struct policy *p, const char *d)
{
	for (size_t i = 0; i < p->ndomains; i++)
		if (strcmp(p->domains[i], d) == 0)
			return;
	p->domains = xrealloc(p->domains, (p->ndomains + 1) * sizeof(*p->domains));
	p->domains[p->ndomains++] = xstrdup(d);
}

static void hostname_find(const struct config *cfg, char *out, size_t size)
{
	char host[SMTP_MAX_DOMAIN + 1] = "";
	struct addrinfo hints, *ai = NULL;

	if (cfg->hostname != NULL && domain_normalize(cfg->hostname, strlen(cfg->hostname),
						      out, size) == 0)
		return;
	if (gethostname(host, sizeof(host) - 1) == -1 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_CANONNAME;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (strchr(host, '.') == NULL && getaddrinfo(host, NULL, &hints, &ai) == 0 &&
	    ai != NULL && ai->ai_canonname != NULL && strchr(ai->ai_canonname, '.') != NULL &&
	    domain_normalize(ai->ai_canonname, strlen(ai->ai_canonname), out, size) == 0) {
		freeaddrinfo(ai);
		return;
	}
	if (ai != NULL)
		freeaddrinfo(ai);
	if (domain_normalize(host, strlen(host), out, size) == -1)
		snprintf(out, size, "localhost");
}

static int domains_from_config(struct policy *p, const char *list, const char **error_r)
{
	const char *s = list;

	while (*s != '\0') {
		char d[SMTP_MAX_DOMAIN + 1];
		s += strspn(s, " ,\t");
		size_t n = strcspn(s, " ,\t");
		if (n == 0)
			break;
		if (domain_normalize(s, n, d, sizeof(d)) == -1) {
			*error_r = "local_domains: a domain is empty, too long or has a bad byte";
			return -1;
		}
		if (p->ndomains == POLICY_MAX_DOMAINS) {
			*error_r = "local_domains: too many domains";
			return -1;
		}
		add_domain(p, d);
		s += n;
	}
	if (p->ndomains == 0) {
		*error_r = "local_domains is empty";
		return -1;
	}
	return 0;
}

/* hostname, its parent if it has three labels or more, localhost */
static void domains_default(struct policy *p)
{
	const char *dot = strchr(p->hostname, '.');

	add_domain(p, p->hostname);
	if (dot != NULL && strchr(dot + 1, '.') != NULL)
		add_domain(p, dot + 1);
	add_domain(p, "localhost");
}

bool policy_domain_is_local(const struct policy *p, const char *domain)
{
	size_t len = strlen(domain);
	char norm[SMTP_MAX_DOMAIN + 1];

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0)
		return false;
	/* an 8-bit (SMTPUTF8) name is compared as its A-labels; one that is no valid IDN
	 * is no local domain */
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)domain[i] >= 0x80) {
			if (domain_normalize(domain, strlen(domain), norm, sizeof(norm)) == -1)
				return false;
			domain = norm;
			len = strlen(norm);
			break;
		}
	}
	for (size_t i = 0; i < p->ndomains; i++)
		if (strlen(p->domains[i]) == len && ascii_casecmp(p->domains[i], domain, len) == 0)
			return true;
	return false;
}

static bool aliases_domain_local(void *ctx, const char *domain)
{
	return policy_domain_is_local(ctx, domain);
}

size_t policy_local_domains(const struct policy *p, const char *const **domains_r)
{
	*domains_r = (const char *const *)p->domains;
	return p->ndomains;
}

/* ---- users ---- */

static int user_lookup_pw(void *ctx, const char *name, uid_t *uid_r)
{
	struct passwd *pw;

	(void)ctx;
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL)
		return errno == 0 || errno == ENOENT || errno == ESRCH ? 0 : -1;
	*uid_r = pw->pw_uid;
	return 1;
}

/* Tests of the code above the policy (the session) that need users which do not exist
 * on the machine: every policy_open() installs this lookup when it is set. */
policy_user_fn *policy_test_user_lookup;

static bool in_list(const char *list, const char *user)
{
	size_t ulen = strlen(user);

	if (list == NULL)
		return false;
	while (*list != '\0') {
		list += strspn(list, " ,\t");
		size_t n = strcspn(list, " ,\t");
		if (n == ulen && n > 0 && memcmp(list, user, n) == 0)
			return true;
		list += n;
	}
	return false;
}

/* 1: may receive mail directly by this name; 0: no; -1: the lookup failed */
static int user_is_recipient(struct policy *p, const char *name)
{
	uid_t uid;
	int r = p->user_lookup(p->user_ctx, name, &uid);

	if (r != 1)
		return r;
	if (uid == 0 || uid < p->min_uid || in_list(p->deny_users, name))
		return 0;
	return 1;
}

/* ---- open/free ---- */

static time_t clock_default(void *ctx)
{
	(void)ctx;
	return time(NULL);
}

int policy_open(const struct config *cfg, enum submit_mode mode, struct policy **p_r,
		const char **error_r)
{
	struct policy *p = xcalloc(1, sizeof(*p));

	*p_r = NULL;
	p->mode = mode;
	p->min_uid = cfg->min_uid;
	p->deny_users = cfg->deny_users != NULL ? xstrdup(cfg->deny_users) : NULL;
	p->spool_dir = xstrdup(cfg->spool_dir != NULL ? cfg->spool_dir : "/var/spool/postern");
	p->rate_messages = cfg->submit_rate_messages;
	p->rate_rcpts = cfg->submit_rate_recipients;
	p->dnsbl = cfg->dnsbl != NULL ? xstrdup(cfg->dnsbl) : NULL;
	p->clock = clock_default;
	p->user_lookup = policy_test_user_lookup != NULL ? policy_test_user_lookup :
			 user_lookup_pw;
	p->dns = policy_dns_default;
	p->dns_ctx = p;
	snprintf(p->rip, sizeof(p->rip), "unknown");
	hostname_find(cfg, p->hostname, sizeof(p->hostname));
	if (cfg->local_domains != NULL) {
		if (domains_from_config(p, cfg->local_domains, error_r) == -1) {
			policy_free(&p);
			return -1;
		}
	} else {
		domains_default(p);
	}
	if (cfg->aliases != NULL && cfg->aliases[0] != '\0') {
		if (aliases_open(cfg->aliases, &p->aliases, error_r) == -1) {
			policy_free(&p);
			return -1;
		}
	} else if (aliases_parse("", 0, &p->aliases, error_r) == -1) {
		policy_free(&p);
		return -1;
	}
	aliases_set_local(p->aliases, aliases_domain_local, p);
	*p_r = p;
	return 0;
}

void policy_free(struct policy **pp)
{
	struct policy *p = *pp;

	if (p == NULL)
		return;
	for (size_t i = 0; i < p->ndomains; i++)
		free(p->domains[i]);
	free(p->domains);
	aliases_free(&p->aliases);
	free(p->deny_users);
	free(p->spool_dir);
	free(p->dnsbl);
	free(p);
	*pp = NULL;
}

const char *policy_hostname(const struct policy *p)
{
	return p->hostname;
}

void policy_set_clock(struct policy *p, policy_clock_fn *fn, void *ctx)
{
	p->clock = fn;
	p->clock_ctx = ctx;
}

void policy_set_user_lookup(struct policy *p, policy_user_fn *fn, void *ctx)
{
	p->user_lookup = fn;
	p->user_ctx = ctx;
}

void policy_set_resolver(struct policy *p, policy_dns_fn *fn, void *ctx)
{
	p->dns = fn != NULL ? fn : policy_dns_default;
	p->dns_ctx = fn != NULL ? ctx : p;
}

void policy_set_nameserver(struct policy *p, const struct sockaddr_in *sa)
{
	if (sa != NULL)
		p->nameserver = *sa;
	else
		memset(&p->nameserver, 0, sizeof(p->nameserver));
}

void policy_set_aliases(struct policy *p, struct aliases *al)
{
	aliases_free(&p->aliases);
	p->aliases = al;
	aliases_set_local(p->aliases, aliases_domain_local, p);
}

/* ---- recipients and senders ---- */

#define PATH_TRICKS (ADDRESS_PATH_F_PERCENT | ADDRESS_PATH_F_BANG | ADDRESS_PATH_F_LOCAL_AT | \
		     ADDRESS_PATH_F_ROUTE)
#define PATH_LITERALS (ADDRESS_PATH_F_LITERAL_V4 | ADDRESS_PATH_F_LITERAL_V6 | \
		       ADDRESS_PATH_F_LITERAL_GEN)

static const char *trick_name(unsigned flags)
{
	if (flags & ADDRESS_PATH_F_ROUTE)
		return "source routes are not accepted";
	if (flags & ADDRESS_PATH_F_PERCENT)
		return "'%' in the local part is not accepted";
	if (flags & ADDRESS_PATH_F_BANG)
		return "'!' in the local part is not accepted";
	if (flags & ADDRESS_PATH_F_LOCAL_AT)
		return "'@' in the local part is not accepted";
	return "address literals are not accepted, use the domain name";
}

struct alias_users {
	struct policy *p;
	unsigned existing;  /* users that exist */
	const char *only;   /* sender check: the one user allowed */
	bool other;         /* sender check: a user but `only` was reached */
	unsigned count;
	bool failed;        /* a lookup failed */
};

static int alias_user_cb(void *ctx, const char *user)
{
	struct alias_users *au = ctx;
	uid_t uid;

	au->count++;
	if (au->only != NULL) {
		if (strcmp(user, au->only) != 0) {
			au->other = true;
			return 1;
		}
		return 0;
	}
	int r = au->p->user_lookup(au->p->user_ctx, user, &uid);
	if (r == -1)
		au->failed = true;
	if (r == 1) {
		au->existing++;
		return 1; /* one is enough */
	}
	return 0;
}

int policy_recipient(struct policy *p, const char *login, const struct address_path *path,
		     enum policy_rcpt_kind *kind_r, struct policy_reply *r)
{
	bool mx = login == NULL;
	char local[SMTP_MAX_LOCAL_PART + 1], san[LOG_MAX_FIELD + 1];
	struct alias_users au;
	const char *err;
	unsigned skipped;
	int res;

	*kind_r = POLICY_RCPT_LOCAL;
	if (path->flags & ADDRESS_PATH_F_POSTMASTER)
		return 0;
	if (path->flags & ADDRESS_PATH_F_NULL) {
		policy_reply_set(r, 501, "5.1.3", "Bad recipient address syntax");
		return -1;
	}
	if (path->flags & (PATH_TRICKS | PATH_LITERALS)) {
		if (mx)
			policy_reply_set(r, 554, "5.7.1", "Relay access denied: %s",
				  trick_name(path->flags));
		else
			policy_reply_set(r, 553, "5.7.1", "Recipient address rejected: %s",
				  trick_name(path->flags));
		return -1;
	}
	if (!policy_domain_is_local(p, path->domain)) {
		if (mx) {
			policy_reply_set(r, 554, "5.7.1", "Relay access denied");
			return -1;
		}
		*kind_r = POLICY_RCPT_REMOTE;
		return 0;
	}
	snprintf(local, sizeof(local), "%s", path->local_unquoted);
	policy_lower_ascii(local);
	if (strcmp(local, "postmaster") == 0)
		return 0;
	memset(&au, 0, sizeof(au));
	au.p = p;
	res = aliases_expand(p->aliases, local, alias_user_cb, &au, &skipped, &err);
	if (res == -1) {
		log_warn("alias-error: alias=<%s>, error=%s", POLICY_SAN(local, san), err);
		policy_reply_set(r, 451, "4.3.0", "Alias expansion failed, try again later");
		return -1;
	}
	if (res == 1) {
		if (au.existing > 0)
			return 0;
		if (au.failed)
			goto tempfail;
		policy_reply_set(r, 550, "5.1.1", "User unknown");
		return -1;
	}
	switch (user_is_recipient(p, local)) {
	case 1:
		return 0;
	case -1:
		goto tempfail;
	default:
		policy_reply_set(r, 550, "5.1.1", "User unknown");
		return -1;
	}
tempfail:
	policy_reply_set(r, 451, "4.3.0", "User lookup failed, try again later");
	return -1;
}

/* Does local@domain belong to login?  login@<local domain>, or an alias @<local domain>
 * that expands to login and to nothing else. */
static bool address_owned(struct policy *p, const char *login, const char *local_in,
			  const char *domain)
{
	char local[SMTP_MAX_LOCAL_PART + 1], user[AUTH_MAX_USER + 1];
	struct alias_users au;
	const char *err;
	unsigned skipped;

	if (strlen(local_in) > SMTP_MAX_LOCAL_PART || strlen(login) > AUTH_MAX_USER)
		return false;
	if (!policy_domain_is_local(p, domain))
		return false;
	snprintf(local, sizeof(local), "%s", local_in);
	policy_lower_ascii(local);
	snprintf(user, sizeof(user), "%s", login);
	policy_lower_ascii(user);
	if (strcmp(local, user) == 0)
		return true;
	memset(&au, 0, sizeof(au));
	au.p = p;
	au.only = user;
	if (aliases_expand(p->aliases, local, alias_user_cb, &au, &skipped, &err) != 1)
		return false;
	return !au.other && au.count == 1 && skipped == 0;
}

int policy_sender(struct policy *p, const char *login, const struct address_path *path,
		  struct policy_reply *r)
{
	char san[LOG_MAX_FIELD + 1];

	if (login == NULL)
		return 0; /* port 25: any syntactically valid sender, "<>" too */
	if (path->flags & ADDRESS_PATH_F_NULL) {
		policy_reply_set(r, 553, "5.7.1", "Null sender not allowed on submission");
		return -1;
	}
	if ((path->flags & (PATH_TRICKS | PATH_LITERALS)) == 0 &&
	    address_owned(p, login, path->local_unquoted, path->domain))
		return 0;
	policy_reply_set(r, 553, "5.7.1", "Sender address not owned by user <%s>", POLICY_SAN(login, san));
	return -1;
}

int policy_header_from(struct policy *p, const char *login, const char *value, size_t len,
		       struct policy_reply *r)
{
	struct address_list *list;
	char san[LOG_MAX_FIELD + 1];
	const char *why = NULL;
	unsigned mailboxes = 0;

	if (login == NULL)
		return 0; /* port 25: From: is the sender's business */
	list = address_list_parse(value, len);
	if (list->invalid || list->truncated)
		why = "unparsable";
	for (size_t i = 0; why == NULL && i < list->count; i++) {
		const struct address *a = &list->addrs[i];
		if (a->kind != ADDRESS_MAILBOX) {
			why = "a group is not allowed in From:";
			break;
		}
		mailboxes++;
		if (a->flags & (ADDRESS_F_MISSING_DOMAIN | ADDRESS_F_MISSING_LOCAL) ||
		    a->route != NULL || a->domain[0] == '[') {
			why = "unparsable";
			break;
		}
		if (!address_owned(p, login, a->mailbox, a->domain)) {
			policy_reply_set(r, 553, "5.7.1",
				  "From: header address not owned by user <%s>",
				  POLICY_SAN(login, san));
			address_list_free(&list);
			return -1;
		}
	}
	if (why == NULL && mailboxes == 0)
		why = "no address";
	address_list_free(&list);
	if (why != NULL) {
		policy_reply_set(r, 553, "5.7.1", "From: header field %s", why);
		return -1;
	}
	return 0;
}

/* ---- shared with policy_dnsbl.c and policy_rate.c (policy_int.h) ---- */

void policy_lower_ascii(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

void policy_reply_set(struct policy_reply *r, unsigned code, const char *status,
		      const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	snprintf(r->status, sizeof(r->status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap); /* truncation is fine: a reply text */
	va_end(ap);
	for (char *c = r->text; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7F)
			*c = '?';
}
