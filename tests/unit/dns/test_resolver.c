/* dns/resolver.c without a DNS server: option errors, names refused before any query,
 * and a server that never answers ends at the deadline as TEMPFAIL (a bound UDP socket
 * on loopback that nobody reads).  tests/integ/test_dns.py has the real-server tests. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "dns/resolver.h"
#include "unit.h"

static void test_options(void)
{
	static const struct { const char *servers, *anchor; bool ok; } t[] = {
		{ "127.0.0.1", "", true },
		{ "127.0.0.1@5353 ::1", "", true },
		{ "not-an-address", "", false },
		{ "   ", "", false },
		{ "127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.7 127.0.0.8 127.0.0.9", "", false },
		{ "127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.7 127.0.0.8", "", true },
		{ "127.0.0.1", "/nonexistent/root.key", false },
		{ "127.0.0.1xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "", false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct dns_options o = { .servers = t[i].servers, .trust_anchor = t[i].anchor };
		const char *error = NULL;
		struct dns_resolver *r = dns_resolver_new(&o, &error);
		CHECK((r != NULL) == t[i].ok);
		if (r == NULL)
			CHECK(error != NULL && error[0] != '\0');
		else
			CHECK(!dns_resolver_validates(r));
		dns_resolver_free(r);
	}
	/* no servers: resolv.conf; a missing one is an error */
	struct dns_options o = { .trust_anchor = "", .resolv_conf = "/nonexistent/resolv.conf" };
	const char *error = NULL;
	CHECK(dns_resolver_new(&o, &error) == NULL && error != NULL);
}

static void test_silent_server(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	      getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
	char servers[64];
	snprintf(servers, sizeof(servers), "127.0.0.1@%u", ntohs(sin.sin_port));
	const char *self[] = { "me.test" };
	struct dns_options o = { .servers = servers, .trust_anchor = "", .deadline_ms = 300,
				 .self_names = self, .nself = 1 };
	const char *error;
	struct dns_resolver *r = dns_resolver_new(&o, &error);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	struct dns_mx_result *mx = calloc(1, sizeof(*mx));
	dns_lookup_mx(r, "163.test", mx);
	CHECK(mx->m.status == DNS_TEMPFAIL && mx->n == 0 && !mx->implicit && mx->m.why[0] != '\0');
	struct dns_addr_result *ad = calloc(1, sizeof(*ad));
	dns_lookup_addr(r, "mx.163.test", ad);
	CHECK(ad->m.status == DNS_TEMPFAIL && ad->n == 0);
	struct dns_tlsa_result *tl = calloc(1, sizeof(*tl));
	dns_lookup_tlsa(r, "mx.163.test", 25, tl);
	CHECK(tl->m.status == DNS_TEMPFAIL && tl->n == 0);

	/* names refused before any query */
	dns_lookup_mx(r, "bad name.test", mx);
	CHECK(mx->m.status == DNS_NOT_FOUND);
	dns_lookup_mx(r, "", mx);
	CHECK(mx->m.status == DNS_NOT_FOUND);
	struct dns_ptr_result *p = calloc(1, sizeof(*p));
	dns_lookup_ptr(r, "not-an-ip", p);
	CHECK(p->m.status == DNS_NOT_FOUND);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	struct dns_txt_result *t = calloc(1, sizeof(*t));
	dns_lookup_txt(r, longname, t);
	CHECK(t->m.status == DNS_NOT_FOUND);
	/* a host whose _25._tcp name would be too long */
	char host[DNS_NAME_MAX + 1];
	memset(host, 'a', sizeof(host) - 1);
	for (size_t i = 60; i < sizeof(host) - 1; i += 61)
		host[i] = '.';
	host[250] = '\0';
	CHECK(dns_name_ok(host));
	dns_lookup_tlsa(r, host, 25, tl);
	CHECK(tl->m.status == DNS_NOT_FOUND && tl->n == 0);
	free(mx);
	free(ad);
	free(tl);
	free(p);
	free(t);
	dns_resolver_free(r);
	close(fd);
}

int main(void)
{
	test_options();
	test_silent_server();
	return unit_done("test_resolver");
}
