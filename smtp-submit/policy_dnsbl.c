/* smtp-submit's policy: the DNSBL check of port-25 clients (policy.h; decisions in
 * docs/architecture.md "smtp-submit: policy"): the query name, a bounded res_nquery(),
 * our own bounded reader of the answer (hostile: it comes from the network). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "policy_int.h"

/* ---- DNSBL ---- */

int policy_dnsbl_name(const char *rip, const char *zone, char *out, size_t size)
{
	unsigned char a[16];
	size_t zlen = strlen(zone);
	int n;

	if (zlen > 0 && zone[zlen - 1] == '.')
		zlen--;
	if (zlen == 0 || zlen > SMTP_MAX_DOMAIN)
		return -1;
	if (inet_pton(AF_INET, rip, a) == 1) {
		n = snprintf(out, size, "%u.%u.%u.%u.%.*s", a[3], a[2], a[1], a[0], (int)zlen,
			     zone);
	} else if (inet_pton(AF_INET6, rip, a) == 1) {
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a)) {
			n = snprintf(out, size, "%u.%u.%u.%u.%.*s", a[15], a[14], a[13], a[12],
				     (int)zlen, zone);
		} else {
			static const char hex[] = "0123456789abcdef";
			char nib[64];
			for (int i = 0; i < 16; i++) {
				nib[4 * i] = hex[a[15 - i] & 0xF];
				nib[4 * i + 1] = '.';
				nib[4 * i + 2] = hex[a[15 - i] >> 4];
				nib[4 * i + 3] = '.';
			}
			n = snprintf(out, size, "%.64s%.*s", nib, (int)zlen, zone);
		}
	} else {
		return -1;
	}
	if (n < 0 || (size_t)n >= size || (size_t)n > 253)
		return -1;
	return 0;
}

int policy_dns_default(void *ctx, const char *name, int type, unsigned char *answer,
		       int anslen)
{
	const struct policy *p = ctx;
	struct __res_state st;
	int n;

	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) == -1)
		return -1;
	if (p->nameserver.sin_family == AF_INET) {
		st.nsaddr_list[0] = p->nameserver;
		st.nscount = 1;
	}
	/* bounded: DNSBL_TRIES tries of DNSBL_TIMEOUT_S each per server, whatever
	 * resolv.conf says */
	st.retrans = DNSBL_TIMEOUT_S;
	st.retry = DNSBL_TRIES;
	st.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	n = res_nquery(&st, name, ns_c_in, type, answer, anslen);
	res_nclose(&st);
	return n;
}

/* Skip a (possibly compressed) name at msg[*pos].  -1 if it runs off the message. */
static int dns_skip_name(const unsigned char *msg, size_t len, size_t *pos)
{
	size_t p = *pos;

	for (unsigned labels = 0; labels < 128; labels++) {
		if (p >= len)
			return -1;
		unsigned l = msg[p];
		if ((l & 0xC0) == 0xC0) {
			if (p + 2 > len)
				return -1;
			*pos = p + 2;
			return 0;
		}
		if ((l & 0xC0) != 0)
			return -1;
		if (l == 0) {
			*pos = p + 1;
			return 0;
		}
		p += 1 + l; /* BOUNDS: checked against len at the loop's top */
	}
	return -1;
}

static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

int policy_dns_answers(const unsigned char *msg, size_t len, int type,
		       policy_dns_rr_cb *cb, void *ctx)
{
	size_t pos = 12;
	unsigned qd, an;

	if (len < 12 || (msg[2] & 0x80) == 0 || (msg[3] & 0x0F) != 0)
		return -1;
	qd = get16(msg + 4);
	an = get16(msg + 6);
	for (unsigned i = 0; i < qd; i++) {
		if (dns_skip_name(msg, len, &pos) == -1 || pos + 4 > len)
			return -1;
		pos += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned rtype, rdlen;
		if (dns_skip_name(msg, len, &pos) == -1 || pos + 10 > len)
			return -1;
		rtype = get16(msg + pos);
		rdlen = get16(msg + pos + 8);
		pos += 10;
		if (rdlen > len - pos)
			return -1;
		if ((int)rtype == type && cb != NULL && cb(ctx, msg + pos, rdlen) != 0)
			return 0;
		pos += rdlen;
	}
	return 0;
}

struct dnsbl_a {
	bool listed;
	unsigned char code[4];
	bool error_code;
};

static int dnsbl_a_rr(void *ctx, const unsigned char *rd, size_t len)
{
	struct dnsbl_a *a = ctx;

	if (len != 4 || rd[0] != 127)
		return 0;
	if (rd[1] == 0 && rd[2] == 0) {
		a->listed = true;
		memcpy(a->code, rd, 4);
		return 1;
	}
	/* 127.255.255.x and the like: the list's own error codes (Spamhaus: query refused
	 * through a public resolver), never a listing */
	a->error_code = true;
	memcpy(a->code, rd, 4);
	return 0;
}

struct dnsbl_txt {
	char text[160];
	size_t len;
};

static int dnsbl_txt_rr(void *ctx, const unsigned char *rd, size_t len)
{
	struct dnsbl_txt *t = ctx;
	size_t pos = 0;

	while (pos < len) {
		size_t l = rd[pos++];
		if (l > len - pos)
			l = len - pos;
		for (size_t i = 0; i < l && t->len + 1 < sizeof(t->text); i++) {
			unsigned char c = rd[pos + i];
			t->text[t->len++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
		}
		pos += l;
	}
	t->text[t->len] = '\0';
	return 1; /* the first TXT record is enough */
}

int policy_client(struct policy *p, const char *rip, struct policy_reply *r)
{
	unsigned char ans[4096];
	const char *s;

	snprintf(p->rip, sizeof(p->rip), "%s", rip != NULL ? rip : "unknown");
	if (p->mode != SUBMIT_MODE_MX || p->dnsbl == NULL || rip == NULL)
		return 0;
	s = p->dnsbl;
	for (unsigned nz = 0; *s != '\0' && nz < DNSBL_MAX_ZONES; nz++) {
		char zone[SMTP_MAX_DOMAIN + 1], qname[NS_MAXDNAME];
		struct dnsbl_a a;
		struct dnsbl_txt t;
		int n;

		s += strspn(s, " ,\t");
		size_t zl = strcspn(s, " ,\t");
		if (zl == 0)
			break;
		if (zl >= sizeof(zone)) {
			s += zl;
			continue;
		}
		memcpy(zone, s, zl);
		zone[zl] = '\0';
		s += zl;
		if (policy_dnsbl_name(rip, zone, qname, sizeof(qname)) == -1)
			continue;
		n = p->dns(p->dns_ctx, qname, ns_t_a, ans, (int)sizeof(ans));
		if (n <= 0)
			continue; /* not listed (NXDOMAIN), or the list does not answer */
		memset(&a, 0, sizeof(a));
		if (policy_dns_answers(ans, (size_t)(n > (int)sizeof(ans) ? (int)sizeof(ans) : n),
				       ns_t_a, dnsbl_a_rr, &a) == -1)
			continue;
		if (!a.listed) {
			if (a.error_code)
				log_warn("dnsbl-error: zone=%s, code=%u.%u.%u.%u, rip=%s", zone,
					 a.code[0], a.code[1], a.code[2], a.code[3], p->rip);
			continue;
		}
		memset(&t, 0, sizeof(t));
		n = p->dns(p->dns_ctx, qname, ns_t_txt, ans, (int)sizeof(ans));
		if (n > 0)
			policy_dns_answers(ans, (size_t)(n > (int)sizeof(ans) ? (int)sizeof(ans) : n),
					   ns_t_txt, dnsbl_txt_rr, &t);
		log_info("dnsbl: rip=%s, zone=%s, code=%u.%u.%u.%u", p->rip, zone, a.code[0],
			 a.code[1], a.code[2], a.code[3]);
		policy_reply_set(r, 554, "5.7.1",
			  "Service unavailable; client host [%s] blocked using %s%s%s", p->rip,
			  zone, t.len > 0 ? "; " : "", t.text);
		return -1;
	}
	return 0;
}
