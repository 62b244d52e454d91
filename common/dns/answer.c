/* The I/O-free answer handling of the dns library (see answer.h). */
#include "dns/answer.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

const char *dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_OK: return "ok";
	case DNS_NOT_FOUND: return "not-found";
	case DNS_NODATA: return "nodata";
	case DNS_TEMPFAIL: return "tempfail";
	case DNS_BOGUS: return "bogus";
	}
	return "unknown";
}

static bool name_byte_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int dns_name_decode(const unsigned char *p, size_t len, size_t *used_r,
		    char name_r[DNS_NAME_MAX + 1])
{
	size_t i = 0, o = 0;

	for (;;) {
		if (i >= len)
			return -1;              /* BOUNDS: truncated before the root label */
		unsigned lab = p[i++];
		if (lab == 0)
			break;
		if (lab > 63)
			return -1;              /* 0xC0 compression pointer, 0x40/0x80 reserved */
		if (lab > len - i)
			return -1;              /* BOUNDS: label runs past the rdata */
		/* BOUNDS: the dot (when not first) plus the label must fit DNS_NAME_MAX */
		if (o + (o > 0) + lab > DNS_NAME_MAX)
			return -1;
		if (o > 0)
			name_r[o++] = '.';
		for (unsigned k = 0; k < lab; k++) {
			unsigned char c = p[i + k];
			if (!name_byte_ok(c))
				return -1;
			name_r[o++] = lower((char)c);
		}
		i += lab;
	}
	name_r[o] = '\0';
	*used_r = i;
	return 0;
}

bool dns_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX)
		return false;
	size_t lab = 0;
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '.') {
			if (lab == 0)
				return false;
			lab = 0;
			continue;
		}
		if (!name_byte_ok((unsigned char)name[i]) || ++lab > 63)
			return false;
	}
	return lab > 0;
}

bool dns_name_equal(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	if (na > 0 && a[na - 1] == '.')
		na--;
	if (nb > 0 && b[nb - 1] == '.')
		nb--;
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

int dns_rdata_mx(const unsigned char *rd, size_t len, struct dns_mx *mx_r)
{
	size_t used;
	if (len < 3)
		return -1;
	mx_r->pref = (unsigned)rd[0] << 8 | rd[1];
	if (dns_name_decode(rd + 2, len - 2, &used, mx_r->host) < 0 || used != len - 2)
		return -1;                      /* trailing bytes: not an MX record */
	return 0;
}

int dns_rdata_tlsa(const unsigned char *rd, size_t len, struct dns_tlsa *tlsa_r)
{
	/* BOUNDS: 3 fixed bytes, then 1..DNS_TLSA_MAX_DATA bytes of association data */
	if (len < 4 || len - 3 > DNS_TLSA_MAX_DATA)
		return -1;
	tlsa_r->usage = rd[0];
	tlsa_r->selector = rd[1];
	tlsa_r->mtype = rd[2];
	tlsa_r->len = len - 3;
	memcpy(tlsa_r->data, rd + 3, len - 3);
	return 0;
}

int dns_rdata_txt(const unsigned char *rd, size_t len, struct dns_txt *txt_r)
{
	size_t i = 0, o = 0;
	if (len == 0)
		return -1;                      /* a TXT record has at least one string */
	while (i < len) {
		size_t n = rd[i++];
		if (n > len - i)
			return -1;              /* BOUNDS: string runs past the rdata */
		if (n > DNS_TXT_MAX - o)
			return -1;              /* BOUNDS: longer than we keep: refused whole */
		memcpy(txt_r->text + o, rd + i, n);
		o += n;
		i += n;
	}
	txt_r->text[o] = '\0';
	txt_r->len = o;
	return 0;
}

int dns_rdata_ptr(const unsigned char *rd, size_t len, char name_r[DNS_NAME_MAX + 1])
{
	size_t used;
	if (dns_name_decode(rd, len, &used, name_r) < 0 || used != len || name_r[0] == '\0')
		return -1;
	return 0;
}

int dns_rdata_addr(const unsigned char *rd, size_t len, int family, struct dns_addr *addr_r)
{
	size_t want = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
	if (want == 0 || len != want)
		return -1;
	memset(addr_r, 0, sizeof(*addr_r));
	addr_r->family = family;
	memcpy(addr_r->addr, rd, want);
	return 0;
}

/* Copy s into m->why, printable ASCII only. */
static void set_why(struct dns_meta *m, const char *s)
{
	size_t o = 0;
	for (; s != NULL && *s != '\0' && o + 1 < sizeof(m->why); s++)
		m->why[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	m->why[o] = '\0';
}

enum dns_status dns_raw_status(const struct dns_raw *raw, struct dns_meta *meta_r)
{
	meta_r->why[0] = '\0';
	meta_r->secure = raw->secure && !raw->bogus;
	if (raw->bogus) {
		meta_r->status = DNS_BOGUS;
		set_why(meta_r, raw->why_bogus != NULL ? raw->why_bogus : "DNSSEC validation failed");
	} else if (raw->nxdomain || raw->rcode == 3) {
		meta_r->status = DNS_NOT_FOUND;
	} else if (raw->rcode != 0) {
		meta_r->status = DNS_TEMPFAIL;
		char buf[40];
		snprintf(buf, sizeof(buf), "server answered rcode %d", raw->rcode);
		set_why(meta_r, buf);
	} else if (!raw->havedata || raw->count == 0) {
		meta_r->status = DNS_NODATA;
	} else {
		meta_r->status = DNS_OK;
	}
	return meta_r->status;
}

/* Records were there but none could be read: no usable answer. */
static void all_malformed(struct dns_meta *m)
{
	m->status = DNS_TEMPFAIL;
	set_why(m, "malformed records in the answer");
}

static size_t raw_len(const struct dns_raw *raw, size_t i)
{
	return raw->len[i] < 0 ? 0 : (size_t)raw->len[i];
}

static void shuffle_mx(struct dns_mx *mx, size_t n, dns_rand_fn *rnd, void *ctx)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd(ctx, (uint32_t)i);
		if (j >= i)
			j = i - 1;
		struct dns_mx t = mx[i - 1];
		mx[i - 1] = mx[j];
		mx[j] = t;
	}
}

void dns_answer_mx(const struct dns_raw *raw, const char *domain,
		   const char *const *self_names, size_t nself,
		   dns_rand_fn *rnd, void *rnd_ctx, struct dns_mx_result *result_r)
{
	result_r->implicit = result_r->null_mx = result_r->self = false;
	result_r->n = 0;
	enum dns_status st = dns_raw_status(raw, &result_r->m);
	if (st == DNS_NODATA) {
		/* RFC 5321 5.1: no MX: the domain is its own implicit MX, preference 0 */
		size_t used = strlen(domain);
		if (used > 0 && domain[used - 1] == '.')
			used--;
		if (!dns_name_ok(domain)) {
			result_r->m.status = DNS_NOT_FOUND;
			return;
		}
		for (size_t i = 0; i < used; i++)
			result_r->mx[0].host[i] = lower(domain[i]);
		result_r->mx[0].host[used] = '\0';
		result_r->mx[0].pref = 0;
		result_r->n = 1;
		result_r->implicit = true;
		result_r->m.status = DNS_OK;
	} else if (st != DNS_OK) {
		return;
	} else {
		size_t roots = 0, seen = 0;
		for (size_t i = 0; i < raw->count && result_r->n < DNS_MAX_MX; i++) {
			struct dns_mx *mx = &result_r->mx[result_r->n];
			if (dns_rdata_mx((const unsigned char *)raw->data[i], raw_len(raw, i), mx) < 0)
				continue;
			seen++;
			if (mx->host[0] == '\0') {
				roots++;        /* "." target: never a host to connect to */
				continue;
			}
			result_r->n++;
		}
		if (seen == 0) {
			all_malformed(&result_r->m);
			return;
		}
		if (result_r->n == 0 && roots > 0) {
			/* RFC 7505: the domain says it accepts no mail at all */
			result_r->null_mx = true;
			return;
		}
		/* equal preferences in random order: shuffle, then a stable sort */
		shuffle_mx(result_r->mx, result_r->n, rnd, rnd_ctx);
		for (size_t i = 1; i < result_r->n; i++) {
			struct dns_mx t = result_r->mx[i];
			size_t j = i;
			for (; j > 0 && result_r->mx[j - 1].pref > t.pref; j--)
				result_r->mx[j] = result_r->mx[j - 1];
			result_r->mx[j] = t;
		}
	}
	/* RFC 5321 5.1: this host in the list: drop it and every host at its preference
	 * or worse (they would hand the mail back or to a worse route) */
	for (size_t i = 0; i < result_r->n; i++) {
		bool me = false;
		for (size_t k = 0; k < nself && !me; k++)
			me = self_names[k] != NULL && dns_name_equal(result_r->mx[i].host, self_names[k]);
		if (me) {
			unsigned pref = result_r->mx[i].pref;
			size_t keep = 0;
			while (keep < result_r->n && result_r->mx[keep].pref < pref)
				keep++;
			result_r->n = keep;
			result_r->self = keep == 0;
			break;
		}
	}
}

void dns_answer_addr(const struct dns_raw *a, const struct dns_raw *aaaa,
		     dns_rand_fn *rnd, void *rnd_ctx, struct dns_addr_result *result_r)
{
	struct dns_addr v4[DNS_MAX_ADDRS], v6[DNS_MAX_ADDRS];
	size_t n4 = 0, n6 = 0;
	struct dns_meta m4 = { .status = DNS_NODATA, .secure = true },
			m6 = { .status = DNS_NODATA, .secure = true };
	bool bad4 = false, bad6 = false;

	result_r->n = 0;
	if (a != NULL && dns_raw_status(a, &m4) == DNS_OK) {
		for (size_t i = 0; i < a->count && n4 < DNS_MAX_ADDRS; i++)
			if (dns_rdata_addr((const unsigned char *)a->data[i], raw_len(a, i),
					   AF_INET, &v4[n4]) == 0)
				n4++;
		bad4 = n4 == 0;
	}
	if (aaaa != NULL && dns_raw_status(aaaa, &m6) == DNS_OK) {
		for (size_t i = 0; i < aaaa->count && n6 < DNS_MAX_ADDRS; i++)
			if (dns_rdata_addr((const unsigned char *)aaaa->data[i], raw_len(aaaa, i),
					   AF_INET6, &v6[n6]) == 0)
				n6++;
		bad6 = n6 == 0;
	}
	/* within a family: random order */
	for (size_t i = n4; i > 1; i--) {
		size_t j = rnd(rnd_ctx, (uint32_t)i) % i;
		struct dns_addr t = v4[i - 1]; v4[i - 1] = v4[j]; v4[j] = t;
	}
	for (size_t i = n6; i > 1; i--) {
		size_t j = rnd(rnd_ctx, (uint32_t)i) % i;
		struct dns_addr t = v6[i - 1]; v6[i - 1] = v6[j]; v6[j] = t;
	}
	/* interleave, IPv6 first; n4 + n6 may exceed DNS_MAX_ADDRS: stop there */
	for (size_t i = 0; (i < n4 || i < n6) && result_r->n < DNS_MAX_ADDRS; i++) {
		if (i < n6)
			result_r->addr[result_r->n++] = v6[i];
		if (i < n4 && result_r->n < DNS_MAX_ADDRS)
			result_r->addr[result_r->n++] = v4[i];
	}
	result_r->m.secure = m4.secure && m6.secure;
	result_r->m.why[0] = '\0';
	/* A bogus family taints the whole answer: someone is forging this name. */
	if (m4.status == DNS_BOGUS || m6.status == DNS_BOGUS) {
		result_r->n = 0;
		result_r->m = m4.status == DNS_BOGUS ? m4 : m6;
		return;
	}
	if (result_r->n > 0) {
		result_r->m.status = DNS_OK;
		return;
	}
	result_r->m.secure = false;
	if (m4.status == DNS_TEMPFAIL || m6.status == DNS_TEMPFAIL) {
		result_r->m = m4.status == DNS_TEMPFAIL ? m4 : m6;
	} else if (bad4 || bad6) {
		all_malformed(&result_r->m);
	} else if ((a == NULL || m4.status == DNS_NOT_FOUND) &&
		   (aaaa == NULL || m6.status == DNS_NOT_FOUND)) {
		result_r->m.status = DNS_NOT_FOUND;
	} else {
		result_r->m.status = DNS_NODATA;
	}
}

void dns_answer_tlsa(const struct dns_raw *raw, struct dns_tlsa_result *result_r)
{
	result_r->n = 0;
	if (dns_raw_status(raw, &result_r->m) != DNS_OK)
		return;
	size_t seen = 0;
	for (size_t i = 0; i < raw->count && result_r->n < DNS_MAX_TLSA; i++) {
		if (dns_rdata_tlsa((const unsigned char *)raw->data[i], raw_len(raw, i),
				   &result_r->tlsa[result_r->n]) == 0)
			result_r->n++;
		seen++;
	}
	if (result_r->n == 0 && seen > 0)
		all_malformed(&result_r->m);
}

void dns_answer_txt(const struct dns_raw *raw, struct dns_txt_result *result_r)
{
	result_r->n = 0;
	if (dns_raw_status(raw, &result_r->m) != DNS_OK)
		return;
	for (size_t i = 0; i < raw->count && result_r->n < DNS_MAX_TXT; i++)
		if (dns_rdata_txt((const unsigned char *)raw->data[i], raw_len(raw, i),
				  &result_r->txt[result_r->n]) == 0)
			result_r->n++;
	if (result_r->n == 0)
		all_malformed(&result_r->m);
}

void dns_answer_ptr(const struct dns_raw *raw, struct dns_ptr_result *result_r)
{
	result_r->n = 0;
	if (dns_raw_status(raw, &result_r->m) != DNS_OK)
		return;
	for (size_t i = 0; i < raw->count && result_r->n < DNS_MAX_PTR; i++)
		if (dns_rdata_ptr((const unsigned char *)raw->data[i], raw_len(raw, i),
				  result_r->name[result_r->n]) == 0)
			result_r->n++;
	if (result_r->n == 0)
		all_malformed(&result_r->m);
}

int dns_reverse_name(const char *addr, char name_r[DNS_NAME_MAX + 1])
{
	unsigned char b[16];
	static const char hex[] = "0123456789abcdef";

	if (inet_pton(AF_INET, addr, b) == 1) {
		snprintf(name_r, DNS_NAME_MAX + 1, "%u.%u.%u.%u.in-addr.arpa",
			 b[3], b[2], b[1], b[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, b) == 1) {
		size_t o = 0;               /* BOUNDS: 32 nibbles * 2 + 8 = 72 < DNS_NAME_MAX */
		for (int i = 15; i >= 0; i--) {
			name_r[o++] = hex[b[i] & 15];
			name_r[o++] = '.';
			name_r[o++] = hex[b[i] >> 4];
			name_r[o++] = '.';
		}
		memcpy(name_r + o, "ip6.arpa", sizeof("ip6.arpa"));
		return 0;
	}
	return -1;
}
