/* netaddr: address parsing (IPv4, IPv6, IPv4-mapped), lists, matching, throttle subnets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include "base/netaddr.h"
#include "unit.h"

static const struct { const char *in; int family; const char *out; } addr_valid[] = {
	{ "192.0.2.7", AF_INET, "192.0.2.7" },
	{ "0.0.0.0", AF_INET, "0.0.0.0" },
	{ "255.255.255.255", AF_INET, "255.255.255.255" },
	{ "127.0.0.1", AF_INET, "127.0.0.1" },
	{ "::1", AF_INET6, "::1" },
	{ "::", AF_INET6, "::" },
	{ "2001:DB8::1", AF_INET6, "2001:db8::1" },
	{ "2001:0db8:0000:0000:0000:0000:0000:0001", AF_INET6, "2001:db8::1" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", AF_INET6,
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	/* IPv4-mapped: stored and printed as IPv4 */
	{ "::ffff:1.2.3.4", AF_INET, "1.2.3.4" },
	{ "::FFFF:127.0.0.1", AF_INET, "127.0.0.1" },
	{ "0:0:0:0:0:ffff:7f00:1", AF_INET, "127.0.0.1" },
	/* IPv4-compatible (deprecated) and NAT64 are not mapped: stay IPv6 */
	{ "::1.2.3.4", AF_INET6, "::1.2.3.4" },
	{ "64:ff9b::1.2.3.4", AF_INET6, "64:ff9b::102:304" },
};

static const char *const addr_invalid[] = {
	"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", " 1.2.3.4", "1.2.3.4 ",
	"1.2.3.4/32", "::1%lo", "[::1]", "localhost", "1.2.3.4\n", ":::", "1::2::3",
	"12345::", "0x7f.0.0.1", "127.1", "::ffff:1.2.3.256", "g::1",
};

static void test_addr(void)
{
	char buf[INET6_ADDRSTRLEN];
	struct netaddr a;

	for (size_t i = 0; i < sizeof(addr_valid) / sizeof(addr_valid[0]); i++) {
		CHECK(netaddr_parse(addr_valid[i].in, &a) == 0);
		CHECK(a.family == addr_valid[i].family);
		CHECK_STR(netaddr_str(&a, buf, sizeof(buf)), addr_valid[i].out);
		/* the printed form parses back to the same address */
		struct netaddr b;
		CHECK(netaddr_parse(buf, &b) == 0);
		CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	}
	for (size_t i = 0; i < sizeof(addr_invalid) / sizeof(addr_invalid[0]); i++) {
		memset(&a, 0x55, sizeof(a));
		CHECK(netaddr_parse(addr_invalid[i], &a) == -1);
		CHECK(a.family == 0);
	}
	/* the mapped form and the plain form are the same address, byte for byte */
	struct netaddr m;
	CHECK(netaddr_parse("::ffff:10.9.8.7", &m) == 0);
	CHECK(netaddr_parse("10.9.8.7", &a) == 0);
	CHECK(memcmp(&a, &m, sizeof(a)) == 0);

	/* unknown and too-small buffers */
	memset(&a, 0, sizeof(a));
	CHECK_STR(netaddr_str(&a, buf, sizeof(buf)), "unknown");
	CHECK_STR(netaddr_subnet_str(&a, buf, sizeof(buf)), "unknown");
	CHECK(netaddr_parse("192.0.2.7", &a) == 0);
	char small[9];
	CHECK_STR(netaddr_str(&a, small, sizeof(small)), "?");
	CHECK_STR(netaddr_str(&a, small, 0), "?");
	CHECK(netaddr_parse("192.0.2.7", &a) == 0);
	char fits[10];
	CHECK_STR(netaddr_str(&a, fits, sizeof(fits)), "192.0.2.7");
}

static void test_sockaddr(void)
{
	char buf[INET6_ADDRSTRLEN];
	struct netaddr a;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "198.51.100.3", &sin.sin_addr);
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&sin, sizeof(sin), &a) == 0);
	CHECK(a.family == AF_INET);
	CHECK_STR(netaddr_str(&a, buf, sizeof(buf)), "198.51.100.3");
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&sin, sizeof(sin) - 1, &a) == -1);
	CHECK(a.family == 0);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::42", &sin6.sin6_addr);
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&sin6, sizeof(sin6), &a) == 0);
	CHECK(a.family == AF_INET6);
	CHECK_STR(netaddr_str(&a, buf, sizeof(buf)), "2001:db8::42");
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&sin6, sizeof(sin6) - 1, &a) == -1);

	/* a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d */
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&sin6, sizeof(sin6), &a) == 0);
	CHECK(a.family == AF_INET);
	CHECK_STR(netaddr_str(&a, buf, sizeof(buf)), "127.0.0.1");
	struct netlist l;
	const char *error = NULL;
	CHECK(netlist_parse("127.0.0.0/8 ::1", &l, &error) == 0);
	CHECK(netlist_match(&l, &a));

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&sun, sizeof(sun), &a) == -1);
	CHECK(a.family == 0);
	CHECK(netaddr_from_sockaddr(NULL, 0, &a) == -1);
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&sin, 1, &a) == -1);
}

static const struct { const char *in; const char *out; } subnet_valid[] = {
	{ "192.0.2.77", "192.0.2.0/24" },
	{ "192.0.2.0", "192.0.2.0/24" },
	{ "255.255.255.255", "255.255.255.0/24" },
	{ "::ffff:10.1.2.3", "10.1.2.0/24" },
	{ "2001:db8:1:2ff:abcd::1", "2001:db8:1:200::/56" },
	{ "2001:db8:0:ff::9", "2001:db8::/56" },
	{ "2001:db8:0:100::1", "2001:db8:0:100::/56" },
	{ "::1", "::/56" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ff00::/56" },
};

static void test_subnet(void)
{
	char buf[INET6_ADDRSTRLEN + 4];
	struct netaddr a;

	for (size_t i = 0; i < sizeof(subnet_valid) / sizeof(subnet_valid[0]); i++) {
		CHECK(netaddr_parse(subnet_valid[i].in, &a) == 0);
		CHECK_STR(netaddr_subnet_str(&a, buf, sizeof(buf)), subnet_valid[i].out);
	}
	CHECK(netaddr_parse("192.0.2.77", &a) == 0);
	char small[12]; /* "192.0.2.0/24" needs 13 */
	CHECK_STR(netaddr_subnet_str(&a, small, sizeof(small)), "?");
}

/* A list, addresses it must match, addresses it must not. */
static const struct {
	const char *list;
	size_t count;
	const char *yes[6];
	const char *no[6];
} list_valid[] = {
	{ "127.0.0.0/8 ::1", 2,
	  { "127.0.0.1", "127.255.255.255", "::ffff:127.0.0.1", "::1", NULL },
	  { "128.0.0.1", "126.255.255.255", "::2", "10.0.0.1", "::ffff:128.0.0.1", NULL } },
	{ "10.0.0.0/8,192.168.0.0/16", 2,
	  { "10.1.2.3", "192.168.255.1", NULL },
	  { "11.0.0.0", "192.169.0.0", "::ffff:a00:1:0", NULL } },
	{ " , 10.0.0.0/8 ,,\t::1 ,", 2, { "10.0.0.0", "::1", NULL }, { "::", NULL } },
	{ "0.0.0.0/0", 1, { "0.0.0.0", "255.255.255.255", "::ffff:1.1.1.1", NULL },
	  { "::1", "2001:db8::1", NULL } },
	{ "::/0", 1, { "::1", "2001:db8::1", NULL }, { "1.2.3.4", "::ffff:1.2.3.4", NULL } },
	{ "192.0.2.7", 1, { "192.0.2.7", "::ffff:192.0.2.7", NULL },
	  { "192.0.2.8", "192.0.2.6", NULL } },
	{ "2001:db8::1", 1, { "2001:db8::1", NULL }, { "2001:db8::2", NULL } },
	{ "192.168.4.0/22", 1, { "192.168.4.0", "192.168.7.255", NULL },
	  { "192.168.8.0", "192.168.3.255", NULL } },
	{ "2001:db8::/33", 1, { "2001:db8:7fff::1", NULL }, { "2001:db8:8000::", NULL } },
	{ "::ffff:10.0.0.0/104", 1, { "10.255.0.1", "::ffff:10.0.0.1", NULL },
	  { "11.0.0.1", NULL } },
	{ "::ffff:0.0.0.0/96", 1, { "1.2.3.4", NULL }, { "::1", NULL } },
	{ "1.2.3.4/32 ::1/128 1.2.3.0/032", 3, { "1.2.3.4", "::1", NULL },
	  { "1.2.3.5", NULL } },
	{ "", 0, { NULL }, { "127.0.0.1", "::1", NULL } },
	{ " ,, ", 0, { NULL }, { "127.0.0.1", NULL } },
};

static const struct { const char *list; const char *error; } list_invalid[] = {
	{ "10.0.0.0/33", "bad prefix length (a number 0-32)" },
	{ "::/129", "bad prefix length (a number 0-128)" },
	{ "10.0.0.0/", "bad prefix length (a number 0-32)" },
	{ "10.0.0.0/+8", "bad prefix length (a number 0-32)" },
	{ "10.0.0.0/-1", "bad prefix length (a number 0-32)" },
	{ "10.0.0.0/8x", "bad prefix length (a number 0-32)" },
	{ "10.0.0.0/8/8", "bad prefix length (a number 0-32)" },
	{ "10.0.0.0/0x8", "bad prefix length (a number 0-32)" },
	{ "10.0.0.0/99999999999999999999999", "bad prefix length (a number 0-32)" },
	{ "10.0.0.0/18446744073709551624", "bad prefix length (a number 0-32)" },
	{ "10.0.0.0/ 8", "bad prefix length (a number 0-32)" },
	{ "10.0.0.1/8", "address has bits set past the prefix length (write the network, "
			"e.g. 10.0.0.0/8)" },
	{ "2001:db8::1/64", "address has bits set past the prefix length (write the network, "
			    "e.g. 10.0.0.0/8)" },
	{ "::ffff:10.0.0.0/95", "prefix of an IPv4-mapped network must be at least 96" },
	{ "::ffff:10.0.0.0/129", "bad prefix length (a number 0-128)" },
	{ "bogus", "not an IPv4 or IPv6 address" },
	{ "127.0.0.0/8 bogus", "not an IPv4 or IPv6 address" },
	{ "127.0.0.0/8;::1", "bad prefix length (a number 0-32)" },
	{ "::1;127.0.0.1", "not an IPv4 or IPv6 address" },
	{ "/8", "not an IPv4 or IPv6 address" },
	{ "1.2.3.4.5/8", "not an IPv4 or IPv6 address" },
	{ "[::1]/128", "not an IPv4 or IPv6 address" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2550/8", "address too long" },
	{ "10.0.0.0/8\n", "bad prefix length (a number 0-32)" },
};

static void test_list(void)
{
	struct netlist l;
	struct netaddr a;
	const char *error;

	for (size_t i = 0; i < sizeof(list_valid) / sizeof(list_valid[0]); i++) {
		error = NULL;
		CHECK(netlist_parse(list_valid[i].list, &l, &error) == 0);
		CHECK(error == NULL);
		CHECK(l.count == list_valid[i].count);
		for (size_t j = 0; j < 6 && list_valid[i].yes[j] != NULL; j++) {
			CHECK(netaddr_parse(list_valid[i].yes[j], &a) == 0);
			if (!netlist_match(&l, &a))
				fprintf(stderr, "  %s should match %s\n", list_valid[i].yes[j],
					list_valid[i].list);
			CHECK(netlist_match(&l, &a));
		}
		for (size_t j = 0; j < 6 && list_valid[i].no[j] != NULL; j++) {
			CHECK(netaddr_parse(list_valid[i].no[j], &a) == 0);
			if (netlist_match(&l, &a))
				fprintf(stderr, "  %s should not match %s\n", list_valid[i].no[j],
					list_valid[i].list);
			CHECK(!netlist_match(&l, &a));
		}
		/* an unknown peer matches nothing */
		memset(&a, 0, sizeof(a));
		CHECK(!netlist_match(&l, &a));
	}
	for (size_t i = 0; i < sizeof(list_invalid) / sizeof(list_invalid[0]); i++) {
		/* a failed parse leaves the old list alone */
		CHECK(netlist_parse("192.0.2.0/24", &l, &error) == 0);
		error = NULL;
		CHECK(netlist_parse(list_invalid[i].list, &l, &error) == -1);
		CHECK_STR(error, list_invalid[i].error);
		CHECK(l.count == 1);
	}
}

/* NETLIST_MAX entries parse; one more is a clear error. */
static void test_list_limit(void)
{
	char text[NETLIST_MAX * 20 + 32];
	size_t len = 0;
	struct netlist l;
	const char *error = NULL;

	for (int i = 0; i < NETLIST_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s10.%d.0.0/16",
					i % 2 ? "," : " ", i);
	CHECK(netlist_parse(text, &l, &error) == 0);
	CHECK(l.count == NETLIST_MAX);
	struct netaddr a;
	CHECK(netaddr_parse("10.31.200.1", &a) == 0);
	CHECK(netlist_match(&l, &a));
	CHECK(netaddr_parse("10.32.0.1", &a) == 0);
	CHECK(!netlist_match(&l, &a));
	/* trailing separators do not count as entries */
	snprintf(text + len, sizeof(text) - len, " ,, ");
	CHECK(netlist_parse(text, &l, &error) == 0);
	CHECK(l.count == NETLIST_MAX);
	snprintf(text + len, sizeof(text) - len, " ::1");
	error = NULL;
	CHECK(netlist_parse(text, &l, &error) == -1);
	CHECK_STR(error, "too many networks in the list (at most 32)");
}

/* Every cut of a valid list parses or fails cleanly (ASan watches the reads). */
static void test_list_truncated(void)
{
	const char *full = "127.0.0.0/8, ::1 2001:db8::/32,::ffff:10.0.0.0/104 192.0.2.7";
	size_t n = strlen(full);
	for (size_t i = 0; i <= n; i++) {
		char *cut = strndup(full, i);
		struct netlist l;
		const char *error = NULL;
		int r = netlist_parse(cut, &l, &error);
		CHECK(r == 0 || (r == -1 && error != NULL));
		if (r == 0)
			CHECK(l.count <= 5);
		free(cut);
	}
}

int main(void)
{
	test_addr();
	test_sockaddr();
	test_subnet();
	test_list();
	test_list_limit();
	test_list_truncated();
	return unit_done("netaddr");
}
