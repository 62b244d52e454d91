/* dnsq: a test tool (never installed) that runs one lookup of the dns library and
 * prints the result, for tests/integ/test_dns.py.
 *   dnsq [-s servers] [-a trust-anchor-file | -n] [-d deadline_ms] [-m self-name]
 *        mx|addr|tlsa|txt|ptr NAME
 * Output: "status=S secure=0|1 ..." then one line per record. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "dns/resolver.h"

static void meta(const struct dns_meta *m)
{
	printf("status=%s secure=%d", dns_status_name(m->status), m->secure ? 1 : 0);
	if (m->why[0] != '\0')
		fprintf(stderr, "why: %s\n", m->why);
}

int main(int argc, char **argv)
{
	struct dns_options opt = { 0 };
	const char *self[4];
	int c;
	while ((c = getopt(argc, argv, "s:a:nd:m:")) != -1) {
		switch (c) {
		case 's': opt.servers = optarg; break;
		case 'a': opt.trust_anchor = optarg; break;
		case 'n': opt.trust_anchor = ""; break;
		case 'd': opt.deadline_ms = (unsigned)atoi(optarg); break;
		case 'm':
			if (opt.nself < 4)
				self[opt.nself++] = optarg;
			opt.self_names = self;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: dnsq [-s servers] [-a anchor|-n] [-d ms] [-m self] "
			"mx|addr|tlsa|txt|ptr NAME\n");
		return 2;
	}
	const char *type = argv[optind], *name = argv[optind + 1];
	const char *error;
	struct dns_resolver *res = dns_resolver_new(&opt, &error);
	if (res == NULL) {
		fprintf(stderr, "dnsq: %s\n", error);
		return 1;
	}
	int rc = 0;
	if (strcmp(type, "mx") == 0) {
		struct dns_mx_result *r = calloc(1, sizeof(*r));
		dns_lookup_mx(res, name, r);
		meta(&r->m);
		printf(" implicit=%d null_mx=%d self=%d\n", r->implicit, r->null_mx, r->self);
		for (size_t i = 0; i < r->n; i++)
			printf("mx %u %s\n", r->mx[i].pref, r->mx[i].host);
		free(r);
	} else if (strcmp(type, "addr") == 0) {
		struct dns_addr_result *r = calloc(1, sizeof(*r));
		dns_lookup_addr(res, name, r);
		meta(&r->m);
		printf(" canon=%s\n", r->canon);
		for (size_t i = 0; i < r->n; i++) {
			char buf[INET6_ADDRSTRLEN];
			inet_ntop(r->addr[i].family, r->addr[i].addr, buf, sizeof(buf));
			printf("addr %s\n", buf);
		}
		free(r);
	} else if (strcmp(type, "tlsa") == 0) {
		struct dns_tlsa_result *r = calloc(1, sizeof(*r));
		dns_lookup_tlsa(res, name, 25, r);
		meta(&r->m);
		printf(" base=%s\n", r->base);
		for (size_t i = 0; i < r->n; i++) {
			printf("tlsa %u %u %u ", r->tlsa[i].usage, r->tlsa[i].selector,
			       r->tlsa[i].mtype);
			for (size_t k = 0; k < r->tlsa[i].len; k++)
				printf("%02x", r->tlsa[i].data[k]);
			printf("\n");
		}
		free(r);
	} else if (strcmp(type, "txt") == 0) {
		struct dns_txt_result *r = calloc(1, sizeof(*r));
		dns_lookup_txt(res, name, r);
		meta(&r->m);
		printf("\n");
		for (size_t i = 0; i < r->n; i++)
			printf("txt %s\n", r->txt[i].text);
		free(r);
	} else if (strcmp(type, "ptr") == 0) {
		struct dns_ptr_result *r = calloc(1, sizeof(*r));
		dns_lookup_ptr(res, name, r);
		meta(&r->m);
		printf("\n");
		for (size_t i = 0; i < r->n; i++)
			printf("ptr %s\n", r->name[i]);
		free(r);
	} else {
		fprintf(stderr, "dnsq: unknown type %s\n", type);
		rc = 2;
	}
	dns_resolver_free(res);
	return rc;
}
