/* The dns library's resolver: libunbound, validating with DNSSEC when a trust anchor is
 * configured.  One struct dns_resolver per process (or per thread: it is not shared
 * between threads).  Every lookup is synchronous for the caller and bounded by one
 * absolute deadline (dns_options.deadline_ms, default DNS_DEADLINE_MS) covering all the
 * queries it makes; the answers are interpreted by dns/answer.c (the I/O-free half).
 * Nothing here needs root. */
#ifndef POSTERN_DNS_RESOLVER_H
#define POSTERN_DNS_RESOLVER_H
#include "dns/answer.h"

struct dns_options {
	const char *servers;            /* config dns_servers: space-separated addresses
	                                   (addr or addr@port) to forward to; NULL or "":
	                                   the nameservers of /etc/resolv.conf */
	const char *trust_anchor;       /* config dnssec_trust_anchor: NULL: the file
	                                   DNS_DEFAULT_TRUST_ANCHOR if it exists, else no
	                                   validation; "": no validation; else a zone-file
	                                   of DS or DNSKEY records that must be readable */
	const char *resolv_conf;        /* NULL: /etc/resolv.conf (tests) */
	unsigned deadline_ms;           /* 0: DNS_DEADLINE_MS */
	const char *const *self_names;  /* this host's names, for the MX "self" rule */
	size_t nself;
};

#define DNS_DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"

struct dns_resolver;

/* NULL and *error_r (static text naming the option) on a bad option.  The first lookup
 * starts libunbound's worker thread: make the resolver in the process that uses it, not
 * before a fork. */
struct dns_resolver *dns_resolver_new(const struct dns_options *opt, const char **error_r);
void dns_resolver_free(struct dns_resolver *res);
/* Does this resolver validate (a trust anchor is loaded)? */
bool dns_resolver_validates(const struct dns_resolver *res);

/* MX of domain, with the implicit MX, null MX and self rules (answer.h). */
void dns_lookup_mx(struct dns_resolver *res, const char *domain,
		   struct dns_mx_result *result_r);
/* A and AAAA of host, both asked at once; interleaved IPv6 first (answer.h). */
void dns_lookup_addr(struct dns_resolver *res, const char *host,
		     struct dns_addr_result *result_r);
/* TLSA of _PORT._tcp.HOST, with RFC 7672 section 2.2.2's CNAME rule: when host is a
 * CNAME whose expansion is validated, the TLSA records of the expanded name come first,
 * those of host itself next.  result_r->base says which name they came from. */
void dns_lookup_tlsa(struct dns_resolver *res, const char *host, unsigned port,
		     struct dns_tlsa_result *result_r);
/* TXT of name, each record's strings concatenated (SPF, DKIM, DMARC, MTA-STS). */
void dns_lookup_txt(struct dns_resolver *res, const char *name,
		    struct dns_txt_result *result_r);
/* PTR of an IPv4 or IPv6 address in text. */
void dns_lookup_ptr(struct dns_resolver *res, const char *addr,
		    struct dns_ptr_result *result_r);

#endif
