/* The I/O-free half of the dns library: what a lookup's answer means.  The resolver
 * (dns/resolver.c, libunbound) hands each RRset here as a struct dns_raw -- the rcode,
 * the validation flags and the records' rdata exactly as ub_result carries them
 * (uncompressed wire format) -- and gets back a typed result.  Every byte of rdata is
 * the network's: each parser checks every length against the record's own length,
 * refuses compression pointers (a compression pointer has no meaning inside ub_result's
 * rdata) and names with bytes other than letters, digits, '-' and '_', and a malformed
 * record is skipped, never half-used. */
#ifndef POSTERN_DNS_ANSWER_H
#define POSTERN_DNS_ANSWER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"

/* The outcome of one lookup.  NOT_FOUND: the name does not exist (NXDOMAIN); NODATA:
 * the name exists without records of that type; TEMPFAIL: no usable answer now (server
 * failure, timeout, only malformed records): try again later; BOGUS: DNSSEC validation
 * failed -- an answer was forged or broken: never use it, treat it as TEMPFAIL for
 * retrying and log it. */
enum dns_status {
	DNS_OK = 0,
	DNS_NOT_FOUND,
	DNS_NODATA,
	DNS_TEMPFAIL,
	DNS_BOGUS,
};
const char *dns_status_name(enum dns_status status);

#define DNS_TYPE_A 1
#define DNS_TYPE_PTR 12
#define DNS_TYPE_MX 15
#define DNS_TYPE_TXT 16
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_TLSA 52

/* One RRset as the resolver returned it (pointers borrowed from ub_result). */
struct dns_raw {
	int rcode;                      /* 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ... */
	bool havedata;
	bool nxdomain;
	bool secure;                    /* validated by DNSSEC */
	bool bogus;                     /* validation failed */
	size_t count;                   /* records in data/len */
	char *const *data;              /* rdata of each record */
	const int *len;                 /* length of each */
	const char *why_bogus;          /* NULL or the validator's reason */
};

/* Every result starts with these. */
struct dns_meta {
	enum dns_status status;
	bool secure;                    /* every answer behind the result was validated */
	char why[DNS_WHY_MAX];          /* TEMPFAIL/BOGUS: a printable reason, else "" */
};

struct dns_mx {
	unsigned pref;
	char host[DNS_NAME_MAX + 1];    /* lower case, no trailing dot; "" is the root */
};
struct dns_mx_result {
	struct dns_meta m;
	bool implicit;                  /* no MX: mx[0] is the domain itself (RFC 5321 5.1) */
	bool null_mx;                   /* RFC 7505 "MX 0 .": the domain accepts no mail;
	                                   n == 0, a permanent failure */
	bool self;                      /* after dropping this host's own names (and every
	                                   host at their preference or worse) none is left:
	                                   "MX points at self", an error to report */
	size_t n;
	struct dns_mx mx[DNS_MAX_MX];   /* in the order to try */
};

struct dns_addr {
	int family;                     /* AF_INET or AF_INET6 */
	unsigned char addr[16];         /* 4 or 16 bytes, network order */
};
struct dns_addr_result {
	struct dns_meta m;
	char canon[DNS_NAME_MAX + 1];   /* the name after CNAMEs (or the name asked) */
	bool canon_secure;              /* that CNAME expansion was validated */
	size_t n;
	struct dns_addr addr[DNS_MAX_ADDRS];   /* in the order to try */
};

struct dns_tlsa {
	uint8_t usage, selector, mtype;
	size_t len;
	unsigned char data[DNS_TLSA_MAX_DATA];
};
struct dns_tlsa_result {
	struct dns_meta m;
	char base[DNS_NAME_MAX + 1];    /* the TLSA base domain the records came from */
	size_t n;
	struct dns_tlsa tlsa[DNS_MAX_TLSA];
};

struct dns_txt {
	size_t len;                     /* the record's strings concatenated; may hold NUL */
	char text[DNS_TXT_MAX + 1];     /* NUL-terminated too */
};
struct dns_txt_result {
	struct dns_meta m;
	size_t n;
	struct dns_txt txt[DNS_MAX_TXT];
};

struct dns_ptr_result {
	struct dns_meta m;
	size_t n;
	char name[DNS_MAX_PTR][DNS_NAME_MAX + 1];
};

/* A source of randomness for the ordering: a value in [0, bound).  The resolver uses
 * arc4random_uniform(); the tests pass their own to prove the rules. */
typedef uint32_t dns_rand_fn(void *ctx, uint32_t bound);

/* Decode the wire-format name at p (at most len bytes) into name_r (dotted, lower case,
 * no trailing dot; the root is "").  *used_r: bytes the name took.  -1: truncated,
 * compression pointer, a label over 63 bytes, a name over DNS_NAME_MAX, or a byte that
 * is not a letter, digit, '-' or '_'. */
int dns_name_decode(const unsigned char *p, size_t len, size_t *used_r,
		    char name_r[DNS_NAME_MAX + 1]);
/* Is name syntactically a host or domain name we ask about (LDH and '_' labels of
 * 1..63 bytes, at most DNS_NAME_MAX, one optional trailing dot)? */
bool dns_name_ok(const char *name);
/* Compare two names ignoring case and one trailing dot. */
bool dns_name_equal(const char *a, const char *b);

/* One record's rdata; -1 when malformed (the record is then skipped). */
int dns_rdata_mx(const unsigned char *rd, size_t len, struct dns_mx *mx_r);
int dns_rdata_tlsa(const unsigned char *rd, size_t len, struct dns_tlsa *tlsa_r);
int dns_rdata_txt(const unsigned char *rd, size_t len, struct dns_txt *txt_r);
int dns_rdata_ptr(const unsigned char *rd, size_t len, char name_r[DNS_NAME_MAX + 1]);
int dns_rdata_addr(const unsigned char *rd, size_t len, int family,
		   struct dns_addr *addr_r);

/* The status of a raw answer (before its records are read): BOGUS, NOT_FOUND, TEMPFAIL
 * (rcode other than NOERROR/NXDOMAIN), NODATA, or OK when it has records.  Fills meta_r. */
enum dns_status dns_raw_status(const struct dns_raw *raw, struct dns_meta *meta_r);

/* The MX answer for domain -> result_r, by RFC 5321 section 5.1 and RFC 7505: NODATA gives
 * the implicit MX (domain itself, preference 0); a lone "." target is null MX; records
 * are sorted by preference, equal preferences in random order; if one of self_names
 * (this host's names) is an MX, it and every host at its preference or worse are
 * dropped and, when none is left, result_r->self is set. */
void dns_answer_mx(const struct dns_raw *raw, const char *domain,
		   const char *const *self_names, size_t nself,
		   dns_rand_fn *rnd, void *rnd_ctx, struct dns_mx_result *result_r);
/* A and AAAA answers for one host -> result_r (either may be NULL: not asked).  Order: IPv6
 * and IPv4 interleaved, IPv6 first (RFC 6724 rule 6/10 default policy prefers IPv6 and
 * RFC 8305 section 4 interleaves the families so one broken family costs one attempt,
 * not all of them); within a family in random order (RFC 5321 section 5.1: "randomize"
 * equal-preference addresses). */
void dns_answer_addr(const struct dns_raw *a, const struct dns_raw *aaaa,
		     dns_rand_fn *rnd, void *rnd_ctx, struct dns_addr_result *result_r);
void dns_answer_tlsa(const struct dns_raw *raw, struct dns_tlsa_result *result_r);
void dns_answer_txt(const struct dns_raw *raw, struct dns_txt_result *result_r);
void dns_answer_ptr(const struct dns_raw *raw, struct dns_ptr_result *result_r);

/* The reverse-lookup name of an IPv4 or IPv6 address in text ("192.0.2.1" ->
 * "1.2.0.192.in-addr.arpa").  -1: not an address. */
int dns_reverse_name(const char *addr, char name_r[DNS_NAME_MAX + 1]);

#endif
