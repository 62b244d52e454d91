/* -t, the DNS part: does the world see this host as the mail server of its domains?
 * For the host name: its A/AAAA records, and a PTR of each address naming it again
 * (forward-confirmed reverse DNS, which receivers check).  For each local domain: an MX
 * naming this host (or one of its addresses), an SPF record that lets this host send, the
 * DKIM record of each configured key matching the key, a DMARC record.  Each gap is
 * printed with the exact record to add.  The answers are hostile input: they are parsed
 * by common/dns (bounded) and, for SPF, by submit_spf_check() below (bounded, fuzzed).
 *
 * Names under the special-use TLDs of RFC 6761/2606 (.test, .example, .invalid,
 * .localhost, .local) have no public DNS: they are checked only when dns_servers names
 * the servers to ask (a lab, the tests' own DNS).  A lookup that times out or fails is a
 * note, not a problem: -t's verdict is about the setup, not about today's network. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <openssl/evp.h>
#include "base/plimits.h"
#include "base/util.h"
#include "dns/resolver.h"
#include "mail/dkim.h"
#include "submit.h"

/* Lookups of -t end sooner than a delivery's: the admin is waiting. */
#define DNSCHECK_DEADLINE_MS 5000

struct dcheck {
	const struct config *cfg;
	FILE *out;
	int problems;
	struct dns_resolver *res;
	const char *host;
	struct dns_addr_result *haddr;  /* the host name's addresses */
	char suggest4[INET6_ADDRSTRLEN]; /* an address of this machine, for the records */
	char suggest6[INET6_ADDRSTRLEN];
};

static void dc_fail(struct dcheck *c, const char *what, const char *fix)
{
	fprintf(c->out, "error: %s\n  fix: %s\n", what, fix);
	c->problems++;
}

static void dc_note(struct dcheck *c, const char *what)
{
	fprintf(c->out, "note: %s\n", what);
}

static void dc_ok(struct dcheck *c, const char *what)
{
	fprintf(c->out, "ok: %s\n", what);
}

bool submit_dns_special(const char *name)
{
	static const char *const tlds[] = { "test", "example", "invalid", "localhost",
					    "local" };
	size_t len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	const char *last = name;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '.')
			last = name + i + 1;
	size_t llen = len - (size_t)(last - name);
	for (size_t i = 0; i < sizeof(tlds) / sizeof(tlds[0]); i++)
		if (strlen(tlds[i]) == llen && strncasecmp(last, tlds[i], llen) == 0)
			return true;
	return false;
}

static void addr_text(const struct dns_addr *a, char *buf, size_t size)
{
	if (inet_ntop(a->family, a->addr, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
}

/* A global address of this machine per family, to write into suggested records. */
static void local_addresses(struct dcheck *c)
{
	struct ifaddrs *ifa = NULL;
	snprintf(c->suggest4, sizeof(c->suggest4), "192.0.2.1");
	snprintf(c->suggest6, sizeof(c->suggest6), "2001:db8::1");
	if (getifaddrs(&ifa) == -1)
		return;
	bool got4 = false, got6 = false;
	for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET && !got4) {
			const struct in_addr *a = &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
			if ((ntohl(a->s_addr) >> 24) == 127)
				continue;
			got4 = inet_ntop(AF_INET, a, c->suggest4, sizeof(c->suggest4)) != NULL;
		} else if (i->ifa_addr->sa_family == AF_INET6 && !got6) {
			const struct in6_addr *a =
				&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
			if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a))
				continue;
			got6 = inet_ntop(AF_INET6, a, c->suggest6, sizeof(c->suggest6)) != NULL;
		}
	}
	freeifaddrs(ifa);
}

static bool tempfail(struct dcheck *c, const char *what, const struct dns_meta *m)
{
	if (m->status != DNS_TEMPFAIL && m->status != DNS_BOGUS)
		return false;
	char msg[600];
	snprintf(msg, sizeof(msg), "cannot check %s: DNS %s%s%s", what,
		 dns_status_name(m->status), m->why[0] != '\0' ? ": " : "", m->why);
	dc_note(c, msg);
	return true;
}

/* ---- SPF: a bounded look at the common forms ---- */

/* Does the CIDR "addr[/len]" (text from a TXT record) cover a? */
static bool cidr_covers(const char *spec, size_t slen, const struct dns_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 8];
	unsigned char net[16];
	if (slen == 0 || slen >= sizeof(buf))
		return false;
	memcpy(buf, spec, slen);
	buf[slen] = '\0';
	unsigned max = a->family == AF_INET ? 32 : 128, bits = max;
	char *slash = strchr(buf, '/');
	if (slash != NULL) {
		*slash = '\0';
		char *end;
		unsigned long v = strtoul(slash + 1, &end, 10);
		if (end == slash + 1 || *end != '\0' || v > max)
			return false;
		bits = (unsigned)v;
	}
	if (inet_pton(a->family, buf, net) != 1)
		return false;
	for (unsigned i = 0; i < bits; i++) {
		unsigned byte = i / 8, bit = 7 - i % 8;
		if (((net[byte] >> bit) & 1) != ((a->addr[byte] >> bit) & 1))
			return false;
	}
	return true;
}

enum spf_verdict submit_spf_check(const char *rec, size_t len, const struct dns_addr *a,
				  bool mx_is_us, bool a_is_us)
{
	/* BOUNDS: one pass over len bytes; terms are compared in place */
	if (len < 6 || strncasecmp(rec, "v=spf1", 6) != 0 || (len > 6 && rec[6] != ' '))
		return SPF_NOT_SPF;
	bool unknown = false;
	size_t i = 6;
	while (i < len) {
		while (i < len && rec[i] == ' ')
			i++;
		size_t b = i;
		while (i < len && rec[i] != ' ')
			i++;
		if (i == b)
			break;
		const char *t = rec + b;
		size_t tl = i - b;
		char q = '+';
		if (t[0] == '+' || t[0] == '-' || t[0] == '~' || t[0] == '?') {
			q = t[0];
			t++;
			tl--;
		}
		bool match = false;
		if (tl >= 4 && strncasecmp(t, "ip4:", 4) == 0)
			match = a->family == AF_INET && cidr_covers(t + 4, tl - 4, a);
		else if (tl >= 4 && strncasecmp(t, "ip6:", 4) == 0)
			match = a->family == AF_INET6 && cidr_covers(t + 4, tl - 4, a);
		else if (tl == 2 && strncasecmp(t, "mx", 2) == 0)
			match = mx_is_us;
		else if (tl == 1 && (t[0] == 'a' || t[0] == 'A'))
			match = a_is_us;
		else if (tl == 3 && strncasecmp(t, "all", 3) == 0)
			return q == '+' ? SPF_ALLOWS : (unknown ? SPF_UNKNOWN : SPF_REFUSES);
		else if (memchr(t, '=', tl) != NULL && !(tl >= 9 && strncasecmp(t, "redirect=", 9) == 0))
			continue;       /* a modifier (exp=...): no verdict */
		else
			unknown = true; /* include:, redirect=, a:name, mx:name, exists:, ptr */
		if (match)
			return q == '+' ? SPF_ALLOWS : SPF_REFUSES;
	}
	/* no "all": the default result is neutral (RFC 7208 section 4.7) */
	return unknown ? SPF_UNKNOWN : SPF_REFUSES;
}

/* ---- the checks ---- */

static bool addr_is_host(const struct dcheck *c, const struct dns_addr *a)
{
	for (size_t i = 0; i < c->haddr->n; i++)
		if (c->haddr->addr[i].family == a->family &&
		    memcmp(c->haddr->addr[i].addr, a->addr, a->family == AF_INET ? 4 : 16) == 0)
			return true;
	return false;
}

/* Any address of name is one of the host's? */
static bool name_is_host(struct dcheck *c, const char *name)
{
	if (dns_name_equal(name, c->host))
		return true;
	struct dns_addr_result *r = xmalloc(sizeof(*r));
	dns_lookup_addr(c->res, name, r);
	bool yes = false;
	for (size_t i = 0; r->m.status == DNS_OK && i < r->n && !yes; i++)
		yes = addr_is_host(c, &r->addr[i]);
	free(r);
	return yes;
}

static void check_host(struct dcheck *c)
{
	char msg[1200], fix[1200], ab[INET6_ADDRSTRLEN];
	dns_lookup_addr(c->res, c->host, c->haddr);
	if (tempfail(c, "the host name's addresses", &c->haddr->m))
		return;
	if (c->haddr->m.status != DNS_OK || c->haddr->n == 0) {
		snprintf(msg, sizeof(msg), "DNS: the host name %s has no A or AAAA record", c->host);
		snprintf(fix, sizeof(fix), "add to its zone: %s. IN A %s  (and %s. IN AAAA %s if "
			 "the host has IPv6)", c->host, c->suggest4, c->host, c->suggest6);
		dc_fail(c, msg, fix);
		return;
	}
	for (size_t i = 0; i < c->haddr->n; i++) {
		struct dns_ptr_result *p = xmalloc(sizeof(*p));
		char rev[DNS_NAME_MAX + 1];
		addr_text(&c->haddr->addr[i], ab, sizeof(ab));
		dns_lookup_ptr(c->res, ab, p);
		bool named = false;
		for (size_t k = 0; p->m.status == DNS_OK && k < p->n; k++)
			named = named || dns_name_equal(p->name[k], c->host);
		if (!tempfail(c, "the reverse DNS", &p->m)) {
			if (named) {
				snprintf(msg, sizeof(msg), "DNS: %s has address %s, whose PTR names "
					 "it again (forward-confirmed reverse DNS)", c->host, ab);
				dc_ok(c, msg);
			} else {
				snprintf(msg, sizeof(msg), "DNS: the PTR of %s (an address of %s) is "
					 "%s: receivers distrust a host whose reverse DNS does not "
					 "name it", ab, c->host,
					 p->m.status == DNS_OK && p->n > 0 ? p->name[0] : "missing");
				if (dns_reverse_name(ab, rev) == -1)
					snprintf(rev, sizeof(rev), "?");
				snprintf(fix, sizeof(fix), "ask whoever owns %s (your provider) for: "
					 "%s. IN PTR %s.", ab, rev, c->host);
				dc_fail(c, msg, fix);
			}
		}
		free(p);
	}
}

static void check_mx(struct dcheck *c, const char *dom, bool *mx_is_us)
{
	char msg[1200], fix[1200];
	struct dns_mx_result *r = xmalloc(sizeof(*r));
	dns_lookup_mx(c->res, dom, r);
	*mx_is_us = false;
	if (!tempfail(c, "the MX", &r->m)) {
		for (size_t i = 0; r->m.status == DNS_OK && i < r->n && !*mx_is_us; i++)
			*mx_is_us = name_is_host(c, r->mx[i].host);
		if (*mx_is_us) {
			snprintf(msg, sizeof(msg), "DNS: %s's MX is this host%s", dom,
				 r->implicit ? " (no MX record: its own address, the implicit MX)"
					     : "");
			dc_ok(c, msg);
		} else {
			snprintf(msg, sizeof(msg), "DNS: %s has %s: mail for it does not come here",
				 dom, r->null_mx ? "a null MX (RFC 7505: it takes no mail)" :
				 r->m.status != DNS_OK ? "no MX and no address" :
				 "MX records that name other hosts");
			snprintf(fix, sizeof(fix), "%s. IN MX 10 %s.", dom, c->host);
			dc_fail(c, msg, fix);
		}
	}
	free(r);
}

static void check_spf(struct dcheck *c, const char *dom, bool mx_is_us)
{
	char msg[1200], fix[1200], ab[INET6_ADDRSTRLEN];
	struct dns_txt_result *t = xmalloc(sizeof(*t));
	dns_lookup_txt(c->res, dom, t);
	if (tempfail(c, "SPF", &t->m)) {
		free(t);
		return;
	}
	const struct dns_txt *spf = NULL;
	size_t nspf = 0;
	for (size_t i = 0; t->m.status == DNS_OK && i < t->n; i++) {
		if (submit_spf_check(t->txt[i].text, t->txt[i].len, &c->haddr->addr[0], false,
				     false) != SPF_NOT_SPF) {
			spf = &t->txt[i];
			nspf++;
		}
	}
	if (nspf == 0) {
		snprintf(msg, sizeof(msg), "DNS: %s has no SPF record", dom);
		snprintf(fix, sizeof(fix), "%s. IN TXT \"v=spf1 %s -all\"", dom,
			 mx_is_us ? "mx" : "a:mail-host");
		if (!mx_is_us && c->haddr->n > 0) {
			addr_text(&c->haddr->addr[0], ab, sizeof(ab));
			snprintf(fix, sizeof(fix), "%s. IN TXT \"v=spf1 %s:%s -all\"", dom,
				 c->haddr->addr[0].family == AF_INET ? "ip4" : "ip6", ab);
		}
		dc_fail(c, msg, fix);
	} else if (nspf > 1) {
		snprintf(msg, sizeof(msg), "DNS: %s has %zu SPF records (RFC 7208 section 4.5: "
			 "that is a permanent error for every receiver)", dom, nspf);
		dc_fail(c, msg, "keep one TXT record starting with v=spf1, merge the others into it");
	} else {
		/* "a": the domain's own addresses */
		bool a_is_us = false;
		struct dns_addr_result *da = xmalloc(sizeof(*da));
		dns_lookup_addr(c->res, dom, da);
		for (size_t i = 0; da->m.status == DNS_OK && i < da->n && !a_is_us; i++)
			a_is_us = addr_is_host(c, &da->addr[i]);
		free(da);
		for (size_t i = 0; i < c->haddr->n; i++) {
			addr_text(&c->haddr->addr[i], ab, sizeof(ab));
			enum spf_verdict v = submit_spf_check(spf->text, spf->len,
							      &c->haddr->addr[i], mx_is_us,
							      a_is_us);
			if (v == SPF_ALLOWS) {
				snprintf(msg, sizeof(msg), "DNS: %s's SPF lets %s send", dom, ab);
				dc_ok(c, msg);
			} else if (v == SPF_UNKNOWN) {
				snprintf(msg, sizeof(msg), "DNS: %s's SPF (\"%.300s\") may let %s send "
					 "through include:, redirect= or other indirect terms -t does "
					 "not follow: check it with an SPF tester", dom, spf->text, ab);
				dc_note(c, msg);
			} else {
				snprintf(msg, sizeof(msg), "DNS: %s's SPF (\"%.300s\") does not let %s "
					 "send: receivers will reject or junk its mail", dom,
					 spf->text, ab);
				snprintf(fix, sizeof(fix), "add %s:%s before the all term of that record",
					 c->haddr->addr[i].family == AF_INET ? "ip4" : "ip6", ab);
				dc_fail(c, msg, fix);
			}
		}
	}
	free(t);
}

/* The published key of SEL._domainkey.DOM against ours: the p= tags must agree. */
static void check_dkim_dns(struct dcheck *c, const char *dom, const char *sel)
{
	char path[1200], name[700], msg[3000], fix[3000];
	EVP_PKEY *key;
	const char *err;
	if (c->cfg->dkim_key_dir == NULL ||
	    dkim_key_path(c->cfg->dkim_key_dir, dom, sel, path, sizeof(path)) == -1 ||
	    dkim_key_load(path, &key, &err) == -1)
		return;         /* the key check (submit_check.c) already said why */
	char *want = dkim_txt_text(key, &err);
	EVP_PKEY_free(key);
	if (want == NULL)
		return;
	if (util_snprintf(name, sizeof(name), "%s._domainkey.%s", sel, dom) == -1)
		return;
	struct dns_txt_result *t = xmalloc(sizeof(*t));
	dns_lookup_txt(c->res, name, t);
	const char *wp = strstr(want, "p=");
	bool match = false;
	for (size_t i = 0; t->m.status == DNS_OK && i < t->n && !match && wp != NULL; i++) {
		/* compare p= values, blanks removed (a record may be split anywhere) */
		const char *hp = strstr(t->txt[i].text, "p=");
		if (hp == NULL)
			continue;
		const char *x = hp + 2, *y = wp + 2;
		for (;;) {
			while (*x == ' ' || *x == '\t')
				x++;
			while (*y == ' ' || *y == '\t')
				y++;
			bool xe = *x == '\0' || *x == ';', ye = *y == '\0' || *y == ';';
			if (xe || ye) {
				match = xe && ye;
				break;
			}
			if (*x != *y)
				break;
			x++;
			y++;
		}
	}
	if (!tempfail(c, "DKIM", &t->m)) {
		if (match) {
			snprintf(msg, sizeof(msg), "DNS: %s publishes the DKIM key of selector %s",
				 dom, sel);
			dc_ok(c, msg);
		} else {
			snprintf(msg, sizeof(msg), "DNS: %s: %s the key of %s", name,
				 t->m.status == DNS_OK ? "the published DKIM record is not" :
				 "no DKIM record for", path);
			snprintf(fix, sizeof(fix), "publish the record smtp-submit -t prints above "
				 "as \"publish:\" (%s. IN TXT \"%.2000s\")", name, want);
			dc_fail(c, msg, fix);
		}
	}
	free(t);
	free(want);
}

static void check_dmarc(struct dcheck *c, const char *dom)
{
	char name[400], msg[1200], fix[1200];
	if (util_snprintf(name, sizeof(name), "_dmarc.%s", dom) == -1)
		return;
	struct dns_txt_result *t = xmalloc(sizeof(*t));
	dns_lookup_txt(c->res, name, t);
	bool found = false;
	for (size_t i = 0; t->m.status == DNS_OK && i < t->n && !found; i++)
		found = t->txt[i].len >= 8 && strncasecmp(t->txt[i].text, "v=DMARC1", 8) == 0;
	if (!tempfail(c, "DMARC", &t->m)) {
		if (found) {
			snprintf(msg, sizeof(msg), "DNS: %s has a DMARC record", dom);
			dc_ok(c, msg);
		} else {
			snprintf(msg, sizeof(msg), "DNS: %s has no DMARC record (%s)", dom, name);
			snprintf(fix, sizeof(fix), "%s. IN TXT \"v=DMARC1; p=none; "
				 "rua=mailto:postmaster@%s\"  (p=quarantine once reports look right)",
				 name, dom);
			dc_fail(c, msg, fix);
		}
	}
	free(t);
}

/* The next name of a list, its trailing dot dropped. */
static bool next_name(const char **p, char *buf, size_t size)
{
	if (!submit_next_word(p, buf, size))
		return false;
	size_t n = strlen(buf);
	if (n > 1 && buf[n - 1] == '.')
		buf[n - 1] = '\0';
	return true;
}

int submit_check_dns(const struct config *cfg, FILE *out)
{
	struct dcheck c = { .cfg = cfg, .out = out };
	char dom[300], sel[300];
	const char *err;
	bool lab = cfg->dns_servers != NULL && cfg->dns_servers[0] != '\0';

	c.host = submit_hostname(cfg);
	if (submit_dns_special(c.host) && !lab) {
		fprintf(out, "note: DNS not checked: %s is a special-use name (RFC 6761) with no "
			"public DNS; set dns_servers to check it against your own\n", c.host);
		return 0;
	}
	struct dns_options opt = { .servers = cfg->dns_servers,
				   .trust_anchor = cfg->dnssec_trust_anchor,
				   .deadline_ms = DNSCHECK_DEADLINE_MS };
	c.res = dns_resolver_new(&opt, &err);
	if (c.res == NULL) {
		fprintf(out, "note: DNS not checked: %s\n", err);
		return 0;
	}
	local_addresses(&c);
	c.haddr = xmalloc(sizeof(*c.haddr));
	c.haddr->n = 0;
	check_host(&c);
	char *domains = xstrdup(cfg->local_domains != NULL ? cfg->local_domains :
				(strchr(c.host, '.') != NULL ? strchr(c.host, '.') + 1 : c.host));
	for (const char *d = domains; next_name(&d, dom, sizeof(dom));) {
		if (submit_dns_special(dom) && !lab)
			continue;
		bool mx_is_us = false;
		check_mx(&c, dom, &mx_is_us);
		if (c.haddr->n > 0)
			check_spf(&c, dom, mx_is_us);
		if (cfg->dkim_selector != NULL)
			for (const char *s = cfg->dkim_selector; next_name(&s, sel, sizeof(sel));)
				check_dkim_dns(&c, dom, sel);
		check_dmarc(&c, dom);
	}
	free(domains);
	free(c.haddr);
	dns_resolver_free(c.res);
	return c.problems;
}
