/* fuzz_netaddr: netaddr_parse and netlist_parse on arbitrary text.  What parses prints
 * back to text that parses to the same value; matching and subnets never crash. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/netaddr.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *s = xstrndup((const char *)data, size); /* stops at a NUL, as a C string does */
	struct netaddr a, b;
	struct netlist l, l2;
	const char *error = NULL;

	if (netaddr_parse(s, &a) == 0) {
		if (a.family != AF_INET && a.family != AF_INET6)
			abort();
		const char *txt = netaddr_str(&a, buf, sizeof(buf));
		if (netaddr_parse(txt, &b) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
			abort();
		const char *net = netaddr_subnet_str(&a, buf, sizeof(buf));
		if (strchr(net, '/') == NULL)
			abort();
	} else if (a.family != 0) {
		abort();
	}

	if (netlist_parse(s, &l, &error) == 0) {
		if (l.count > NETLIST_MAX)
			abort();
		/* print the list and parse it again */
		char text[NETLIST_MAX * (INET6_ADDRSTRLEN + 6) + 1];
		size_t len = 0;
		text[0] = '\0';
		for (size_t i = 0; i < l.count; i++) {
			int n = util_snprintf(text + len, sizeof(text) - len, "%s%s/%u",
					      i % 2 ? ", " : " ",
					      netaddr_str(&l.r[i].net, buf, sizeof(buf)),
					      l.r[i].prefix);
			if (n < 0)
				abort();
			len += (size_t)n;
		}
		if (netlist_parse(text, &l2, &error) != 0 || l2.count != l.count)
			abort();
		for (size_t i = 0; i < l.count; i++) {
			if (l.r[i].prefix != l2.r[i].prefix ||
			    memcmp(&l.r[i].net, &l2.r[i].net, sizeof(l.r[i].net)) != 0)
				abort();
			/* a network matches its own address */
			if (!netlist_match(&l, &l.r[i].net))
				abort();
		}
		netaddr_parse("192.0.2.7", &b);
		(void)netlist_match(&l, &b);
		netaddr_parse("2001:db8::7", &b);
		(void)netlist_match(&l, &b);
	} else if (error == NULL) {
		abort();
	}
	free(s);
	return 0;
}
