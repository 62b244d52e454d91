/* -t's DNS checks: the SPF look (submit_spf_check) and the special-use names.  The
 * lookups themselves are proved against a real DNS server in
 * tests/integ/test_smtp_dnscheck.py. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include "submit.h"
#include "unit.h"

static struct dns_addr addr(const char *text)
{
	struct dns_addr a;
	memset(&a, 0, sizeof(a));
	a.family = strchr(text, ':') != NULL ? AF_INET6 : AF_INET;
	CHECK(inet_pton(a.family, text, a.addr) == 1);
	return a;
}

static const struct {
	const char *rec, *addr;
	bool mx, a;
	enum spf_verdict want;
} spf[] = {
	{ "v=spf1 ip4:192.0.2.1 -all", "192.0.2.1", false, false, SPF_ALLOWS },
	{ "v=spf1 ip4:192.0.2.0/24 -all", "192.0.2.77", false, false, SPF_ALLOWS },
	{ "v=spf1 ip4:192.0.2.0/25 -all", "192.0.2.200", false, false, SPF_REFUSES },
	{ "v=spf1 ip4:198.51.100.0/24 ~all", "192.0.2.1", false, false, SPF_REFUSES },
	{ "V=SPF1 IP4:192.0.2.1 -ALL", "192.0.2.1", false, false, SPF_ALLOWS },
	{ "v=spf1 ip6:2001:db8::/32 -all", "2001:db8::25", false, false, SPF_ALLOWS },
	{ "v=spf1 ip6:2001:db8::/32 -all", "192.0.2.1", false, false, SPF_REFUSES },
	{ "v=spf1 ip4:192.0.2.1 -all", "2001:db8::1", false, false, SPF_REFUSES },
	{ "v=spf1 mx -all", "192.0.2.1", true, false, SPF_ALLOWS },
	{ "v=spf1 mx -all", "192.0.2.1", false, false, SPF_REFUSES },
	{ "v=spf1 a -all", "192.0.2.1", false, true, SPF_ALLOWS },
	{ "v=spf1 -mx +all", "192.0.2.1", true, false, SPF_REFUSES },  /* first match wins */
	{ "v=spf1 +all", "192.0.2.1", false, false, SPF_ALLOWS },
	{ "v=spf1 include:_spf.example.org -all", "192.0.2.1", false, false, SPF_UNKNOWN },
	{ "v=spf1 ip4:192.0.2.1 include:x.example -all", "192.0.2.1", false, false, SPF_ALLOWS },
	{ "v=spf1 redirect=_spf.example.org", "192.0.2.1", false, false, SPF_UNKNOWN },
	{ "v=spf1 exp=explain.example ip4:192.0.2.1 -all", "192.0.2.1", false, false, SPF_ALLOWS },
	{ "v=spf1", "192.0.2.1", false, false, SPF_REFUSES },
	{ "v=spf1 ip4:192.0.2.1/33 -all", "192.0.2.1", false, false, SPF_REFUSES },
	{ "v=spf1 ip4:192.0.2.1/ -all", "192.0.2.1", false, false, SPF_REFUSES },
	{ "v=spf1 ip4:garbage -all", "192.0.2.1", false, false, SPF_REFUSES },
	{ "v=spf10 ip4:192.0.2.1", "192.0.2.1", false, false, SPF_NOT_SPF },
	{ "v=DMARC1; p=none", "192.0.2.1", false, false, SPF_NOT_SPF },
	{ "google-site-verification=abc", "192.0.2.1", false, false, SPF_NOT_SPF },
	{ "", "192.0.2.1", false, false, SPF_NOT_SPF },
};

static void test_spf(void)
{
	for (size_t i = 0; i < sizeof(spf) / sizeof(spf[0]); i++) {
		struct dns_addr a = addr(spf[i].addr);
		enum spf_verdict v = submit_spf_check(spf[i].rec, strlen(spf[i].rec), &a, spf[i].mx,
						      spf[i].a);
		if (v != spf[i].want)
			fprintf(stderr, "spf case %zu: got %d want %d\n", i, (int)v, (int)spf[i].want);
		CHECK(v == spf[i].want);
	}
	/* the length bounds the look: the "-all" past len is not seen */
	struct dns_addr a = addr("192.0.2.1");
	const char *r = "v=spf1 ip4:192.0.2.9 +all";
	CHECK(submit_spf_check(r, 20, &a, false, false) == SPF_REFUSES);
}

static void test_special(void)
{
	CHECK(submit_dns_special("postern.test"));
	CHECK(submit_dns_special("mx.163.TEST."));
	CHECK(submit_dns_special("localhost"));
	CHECK(submit_dns_special("printer.local"));
	CHECK(submit_dns_special("www.example"));
	CHECK(!submit_dns_special("example.com"));
	CHECK(!submit_dns_special("test.org"));
	CHECK(!submit_dns_special("latest"));
	CHECK(!submit_dns_special("mail.contest"));
}

int main(void)
{
	test_spf();
	test_special();
	return unit_done("dnscheck");
}
