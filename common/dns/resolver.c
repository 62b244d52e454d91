/* The dns library's resolver on libunbound (see resolver.h).  Queries run through
 * ub_resolve_async() with libunbound's worker thread (ub_ctx_async(ctx, 1): no fork
 * behind the caller's back); the caller's thread waits on ub_fd() with poll() until the
 * lookup's absolute deadline, then cancels what is left.  The answers go to answer.c. */
#include "dns/resolver.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <unbound.h>

struct dns_resolver {
	struct ub_ctx *ctx;
	bool validates;
	unsigned deadline_ms;
	char **self;                    /* copies of the self names */
	size_t nself;
};

/* One query of a lookup. */
struct dns_query {
	const char *name;
	int type;
	int id;
	bool pending, done;
	int err;
	struct ub_result *result;
};

static uint32_t rand_uniform(void *ctx, uint32_t bound)
{
	(void)ctx;
	return bound == 0 ? 0 : arc4random_uniform(bound);
}

/* Errors are static text: the resolver they would belong to is not made. */
static int fail(struct dns_resolver *res, const char **error_r, const char *what,
		const char *detail)
{
	(void)res;
	(void)detail;
	*error_r = what;
	return -1;
}

static int add_servers(struct dns_resolver *res, const char *servers, const char **error_r)
{
	size_t count = 0;
	const char *p = servers;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		size_t n = strcspn(p, " \t");
		char addr[80];
		if (n >= sizeof(addr))
			return fail(res, error_r, "dns_servers: an address is too long", NULL);
		if (++count > DNS_MAX_SERVERS)
			return fail(res, error_r, "dns_servers: more than DNS_MAX_SERVERS addresses", NULL);
		memcpy(addr, p, n);
		addr[n] = '\0';
		int rc = ub_ctx_set_fwd(res->ctx, addr);
		if (rc != 0)
			return fail(res, error_r, "dns_servers: not an address (addr or addr@port)", addr);
		p += n;
	}
	if (count == 0)
		return fail(res, error_r, "dns_servers: no address", NULL);
	return 0;
}

static const char *const forwarded_zones[] = {
	"test. transparent",
	"2.0.192.in-addr.arpa. transparent",
	"100.51.198.in-addr.arpa. transparent",
	"113.0.203.in-addr.arpa. transparent",
	"8.b.d.0.1.0.0.2.ip6.arpa. transparent",
};

struct dns_resolver *dns_resolver_new(const struct dns_options *opt, const char **error_r)
{
	struct dns_resolver *res = calloc(1, sizeof(*res));
	static const char nomem[] = "dns: out of memory";
	if (res == NULL) {
		*error_r = nomem;
		return NULL;
	}
	res->deadline_ms = opt->deadline_ms != 0 ? opt->deadline_ms : DNS_DEADLINE_MS;
	res->ctx = ub_ctx_create();
	if (res->ctx == NULL) {
		free(res);
		*error_r = nomem;
		return NULL;
	}
	int rc = ub_ctx_async(res->ctx, 1);
	if (rc == 0)
		rc = ub_ctx_set_option(res->ctx, "do-not-query-localhost:", "no");
	/* libunbound answers some names itself (RFC 6761/6303 "locally served zones") and
	 * never asks the servers.  The servers we forward to are the site's: let them
	 * answer the private and documentation reverse zones and .test (the tests' domains)
	 * too; localhost, .invalid and .onion stay local. */
	if (rc == 0)
		rc = ub_ctx_set_option(res->ctx, "unblock-lan-zones:", "yes");
	for (size_t i = 0; rc == 0 && i < sizeof(forwarded_zones) / sizeof(forwarded_zones[0]); i++)
		rc = ub_ctx_set_option(res->ctx, "local-zone:", forwarded_zones[i]);
	if (rc != 0) {
		fail(res, error_r, "dns: libunbound set-up failed", ub_strerror(rc));
		goto err;
	}
	if (opt->servers != NULL && opt->servers[0] != '\0') {
		if (add_servers(res, opt->servers, error_r) < 0)
			goto err;
	} else {
		const char *rc_path = opt->resolv_conf != NULL ? opt->resolv_conf : "/etc/resolv.conf";
		rc = ub_ctx_resolvconf(res->ctx, rc_path);
		if (rc != 0) {
			fail(res, error_r, "dns: cannot read the nameservers of resolv.conf", rc_path);
			goto err;
		}
	}
	const char *ta = opt->trust_anchor;
	if (ta == NULL)
		ta = access(DNS_DEFAULT_TRUST_ANCHOR, R_OK) == 0 ? DNS_DEFAULT_TRUST_ANCHOR : "";
	if (ta[0] != '\0') {
		/* libunbound reads the file only at the first query: check it now */
		int fd = open(ta, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fail(res, error_r, "dnssec_trust_anchor: cannot open the file", ta);
			goto err;
		}
		close(fd);
		rc = ub_ctx_add_ta_file(res->ctx, ta);
		if (rc != 0) {
			fail(res, error_r, "dnssec_trust_anchor: libunbound refused it", NULL);
			goto err;
		}
		res->validates = true;
	}
	if (opt->nself > 0) {
		res->self = calloc(opt->nself, sizeof(char *));
		if (res->self == NULL) {
			*error_r = nomem;
			goto err;
		}
		for (size_t i = 0; i < opt->nself; i++) {
			if (opt->self_names[i] == NULL)
				continue;
			res->self[res->nself] = strdup(opt->self_names[i]);
			if (res->self[res->nself] == NULL) {
				*error_r = nomem;
				goto err;
			}
			res->nself++;
		}
	}
	return res;
err:
	dns_resolver_free(res);
	return NULL;
}

void dns_resolver_free(struct dns_resolver *res)
{
	if (res == NULL)
		return;
	if (res->ctx != NULL)
		ub_ctx_delete(res->ctx);
	for (size_t i = 0; i < res->nself; i++)
		free(res->self[i]);
	free(res->self);
	free(res);
}

bool dns_resolver_validates(const struct dns_resolver *res)
{
	return res->validates;
}

static void query_done(void *arg, int err, struct ub_result *result)
{
	struct dns_query *q = arg;
	q->done = true;
	q->pending = false;
	q->err = err;
	q->result = result;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run queries q[0..n) at once until all are answered or the deadline passes; the
 * unanswered ones are cancelled (done stays false). */
static void run_queries(struct dns_resolver *res, struct dns_query *q, size_t n,
			long long deadline)
{
	size_t left = 0;
	for (size_t i = 0; i < n; i++) {
		q[i].pending = q[i].done = false;
		q[i].result = NULL;
		q[i].err = 0;
		int rc = ub_resolve_async(res->ctx, q[i].name, q[i].type, 1 /* IN */,
					  &q[i], query_done, &q[i].id);
		if (rc != 0) {
			q[i].done = true;
			q[i].err = rc;
			continue;
		}
		q[i].pending = true;
		left++;
	}
	while (left > 0) {
		long long wait = deadline - now_ms();
		if (wait <= 0)
			break;
		struct pollfd pfd = { .fd = ub_fd(res->ctx), .events = POLLIN };
		int pr = poll(&pfd, 1, wait > 1000 ? 1000 : (int)wait);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr > 0 && ub_process(res->ctx) != 0)
			break;
		left = 0;
		for (size_t i = 0; i < n; i++)
			left += q[i].pending;
	}
	for (size_t i = 0; i < n; i++) {
		if (q[i].pending) {
			ub_cancel(res->ctx, q[i].id);
			q[i].pending = false;
		}
	}
}

/* A query's answer as a struct dns_raw; false (and m filled) when there is none. */
static bool query_raw(const struct dns_query *q, struct dns_raw *raw, struct dns_meta *m)
{
	memset(raw, 0, sizeof(*raw));
	m->secure = false;
	if (!q->done) {
		m->status = DNS_TEMPFAIL;
		snprintf(m->why, sizeof(m->why), "no answer for %s before the deadline", q->name);
		return false;
	}
	if (q->err != 0 || q->result == NULL) {
		m->status = DNS_TEMPFAIL;
		snprintf(m->why, sizeof(m->why), "resolver: %s", ub_strerror(q->err));
		return false;
	}
	const struct ub_result *u = q->result;
	raw->rcode = u->rcode;
	raw->havedata = u->havedata != 0;
	raw->nxdomain = u->nxdomain != 0;
	raw->secure = u->secure != 0;
	raw->bogus = u->bogus != 0;
	raw->why_bogus = u->why_bogus;
	raw->data = u->data;
	raw->len = u->len;
	size_t count = 0;
	while (u->data != NULL && u->data[count] != NULL && count < 1024)
		count++;                    /* BOUNDS: the answers above are capped lower */
	raw->count = count;
	return true;
}

static void free_queries(struct dns_query *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (q[i].result != NULL)
			ub_resolve_free(q[i].result);
}

static bool name_usable(const char *name, struct dns_meta *m)
{
	m->secure = false;
	m->why[0] = '\0';
	if (name == NULL || !dns_name_ok(name)) {
		m->status = DNS_NOT_FOUND;
		snprintf(m->why, sizeof(m->why), "not a valid domain name");
		return false;
	}
	return true;
}

void dns_lookup_mx(struct dns_resolver *res, const char *domain,
		   struct dns_mx_result *result_r)
{
	result_r->n = 0;
	result_r->implicit = result_r->null_mx = result_r->self = false;
	if (!name_usable(domain, &result_r->m))
		return;
	struct dns_query q = { .name = domain, .type = DNS_TYPE_MX };
	struct dns_raw raw;
	run_queries(res, &q, 1, now_ms() + res->deadline_ms);
	if (query_raw(&q, &raw, &result_r->m))
		dns_answer_mx(&raw, domain, (const char *const *)res->self, res->nself,
			      rand_uniform, NULL, result_r);
	free_queries(&q, 1);
}

static void canon_of(const struct dns_query *q, const char *name, char out[DNS_NAME_MAX + 1])
{
	const char *c = q->done && q->result != NULL && q->result->canonname != NULL &&
			dns_name_ok(q->result->canonname) ? q->result->canonname : name;
	size_t n = strlen(c);
	if (n > 0 && c[n - 1] == '.')
		n--;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(c[i] >= 'A' && c[i] <= 'Z' ? c[i] - 'A' + 'a' : c[i]);
	out[n] = '\0';
}

void dns_lookup_addr(struct dns_resolver *res, const char *host,
		     struct dns_addr_result *result_r)
{
	result_r->n = 0;
	result_r->canon[0] = '\0';
	result_r->canon_secure = false;
	if (!name_usable(host, &result_r->m))
		return;
	struct dns_query q[2] = {
		{ .name = host, .type = DNS_TYPE_AAAA },
		{ .name = host, .type = DNS_TYPE_A },
	};
	struct dns_raw raw6, raw4;
	struct dns_meta m6, m4;
	run_queries(res, q, 2, now_ms() + res->deadline_ms);
	bool have6 = query_raw(&q[0], &raw6, &m6), have4 = query_raw(&q[1], &raw4, &m4);
	if (have6 || have4) {
		dns_answer_addr(have4 ? &raw4 : NULL, have6 ? &raw6 : NULL, rand_uniform, NULL, result_r);
		/* a family that got no answer at all: TEMPFAIL unless the other gave addresses */
		if (result_r->n == 0 && result_r->m.status != DNS_BOGUS && (!have6 || !have4))
			result_r->m = have6 ? m4 : m6;
		canon_of(&q[have4 ? 1 : 0], host, result_r->canon);
		result_r->canon_secure = have4 ? raw4.secure && !raw4.bogus : raw6.secure && !raw6.bogus;
	} else {
		result_r->m = m4;
	}
	free_queries(q, 2);
}

static bool tlsa_name(const char *host, unsigned port, char out[DNS_NAME_MAX + 1])
{
	int n = snprintf(out, DNS_NAME_MAX + 1, "_%u._tcp.%s", port, host);
	return n > 0 && n <= DNS_NAME_MAX && dns_name_ok(out);
}

void dns_lookup_tlsa(struct dns_resolver *res, const char *host, unsigned port,
		     struct dns_tlsa_result *result_r)
{
	char qname[DNS_NAME_MAX + 1], cname_q[DNS_NAME_MAX + 1], canon[DNS_NAME_MAX + 1];
	result_r->n = 0;
	result_r->base[0] = '\0';
	if (!name_usable(host, &result_r->m))
		return;
	if (port == 0 || port > 65535 || !tlsa_name(host, port, qname)) {
		result_r->m.status = DNS_NOT_FOUND;
		snprintf(result_r->m.why, sizeof(result_r->m.why), "TLSA name too long");
		return;
	}
	long long deadline = now_ms() + res->deadline_ms;
	/* the host's A query tells whether it is a CNAME, and whether that is validated */
	struct dns_query q[2] = {
		{ .name = host, .type = DNS_TYPE_A },
		{ .name = qname, .type = DNS_TYPE_TLSA },
	};
	struct dns_raw raw;
	run_queries(res, q, 2, deadline);
	canon_of(&q[0], host, canon);
	bool secure_cname = q[0].done && q[0].result != NULL && q[0].result->secure &&
			    !dns_name_equal(canon, host);
	if (secure_cname && tlsa_name(canon, port, cname_q)) {
		/* RFC 7672 2.2.2: the expanded name's TLSA records first */
		struct dns_query qc = { .name = cname_q, .type = DNS_TYPE_TLSA };
		run_queries(res, &qc, 1, deadline);
		if (query_raw(&qc, &raw, &result_r->m)) {
			dns_answer_tlsa(&raw, result_r);
			if (result_r->m.status != DNS_NOT_FOUND && result_r->m.status != DNS_NODATA) {
				snprintf(result_r->base, sizeof(result_r->base), "%s", canon);
				free_queries(&qc, 1);
				free_queries(q, 2);
				return;
			}
		}
		free_queries(&qc, 1);
	}
	if (query_raw(&q[1], &raw, &result_r->m))
		dns_answer_tlsa(&raw, result_r);
	snprintf(result_r->base, sizeof(result_r->base), "%s", host);
	size_t n = strlen(result_r->base);
	if (n > 0 && result_r->base[n - 1] == '.')
		result_r->base[n - 1] = '\0';
	free_queries(q, 2);
}

void dns_lookup_txt(struct dns_resolver *res, const char *name,
		    struct dns_txt_result *result_r)
{
	result_r->n = 0;
	if (!name_usable(name, &result_r->m))
		return;
	struct dns_query q = { .name = name, .type = DNS_TYPE_TXT };
	struct dns_raw raw;
	run_queries(res, &q, 1, now_ms() + res->deadline_ms);
	if (query_raw(&q, &raw, &result_r->m))
		dns_answer_txt(&raw, result_r);
	free_queries(&q, 1);
}

void dns_lookup_ptr(struct dns_resolver *res, const char *addr,
		    struct dns_ptr_result *result_r)
{
	char name[DNS_NAME_MAX + 1];
	result_r->n = 0;
	result_r->m.secure = false;
	result_r->m.why[0] = '\0';
	if (addr == NULL || dns_reverse_name(addr, name) < 0) {
		result_r->m.status = DNS_NOT_FOUND;
		snprintf(result_r->m.why, sizeof(result_r->m.why), "not an IP address");
		return;
	}
	struct dns_query q = { .name = name, .type = DNS_TYPE_PTR };
	struct dns_raw raw;
	run_queries(res, &q, 1, now_ms() + res->deadline_ms);
	if (query_raw(&q, &raw, &result_r->m))
		dns_answer_ptr(&raw, result_r);
	free_queries(&q, 1);
}
