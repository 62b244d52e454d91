/* Addresses and networks: parse, print, match lists such as "127.0.0.0/8 ::1", and give
 * the subnet that the login throttle counts (/24 for IPv4, /56 for IPv6).
 *
 * An IPv4-mapped IPv6 address (::ffff:192.0.2.7, what a dual-stack socket reports for
 * an IPv4 client) is stored as the plain IPv4 address everywhere, so that such a client
 * matches "127.0.0.0/8" and is throttled as the same address. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include "base/netaddr.h"
#include "base/util.h"

#define NETADDR_STR2(x) #x
#define NETADDR_STR(x) NETADDR_STR2(x)

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Store a 16-byte IPv6 address, turning an IPv4-mapped one into IPv4. */
static void netaddr_set6(struct netaddr *r, const uint8_t a6[16])
{
	memset(r, 0, sizeof(*r));
	if (memcmp(a6, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		r->family = AF_INET;
		memcpy(r->addr, a6 + 12, 4);
	} else {
		r->family = AF_INET6;
		memcpy(r->addr, a6, 16);
	}
}

static void netaddr_set4(struct netaddr *r, const uint8_t a4[4])
{
	memset(r, 0, sizeof(*r));
	r->family = AF_INET;
	memcpy(r->addr, a4, 4);
}

/* Like netaddr_parse, but also says whether the text was an IPv4-mapped IPv6 form. */
static int netaddr_parse_mapped(const char *s, struct netaddr *r, bool *mapped_r)
{
	uint8_t buf[16];

	*mapped_r = false;
	if (inet_pton(AF_INET, s, buf) == 1) {
		netaddr_set4(r, buf);
		return 0;
	}
	if (inet_pton(AF_INET6, s, buf) == 1) {
		netaddr_set6(r, buf);
		*mapped_r = r->family == AF_INET;
		return 0;
	}
	memset(r, 0, sizeof(*r));
	return -1;
}

int netaddr_parse(const char *s, struct netaddr *r)
{
	bool mapped;
	return netaddr_parse_mapped(s, r, &mapped);
}

int netaddr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct netaddr *r)
{
	memset(r, 0, sizeof(*r));
	if (sa == NULL || len < (socklen_t)sizeof(sa->sa_family))
		return -1;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, sa, sizeof(sin));
		netaddr_set4(r, (const uint8_t *)&sin.sin_addr);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, sa, sizeof(sin6));
		netaddr_set6(r, sin6.sin6_addr.s6_addr);
		return 0;
	}
	return -1;
}

const char *netaddr_str(const struct netaddr *a, char *buf, size_t size)
{
	if (a->family != AF_INET && a->family != AF_INET6) {
		if (util_snprintf(buf, size, "unknown") < 0)
			return "?";
		return buf;
	}
	if (size > (size_t)INT32_MAX)
		size = INT32_MAX;
	if (inet_ntop(a->family, a->addr, buf, (socklen_t)size) == NULL)
		return "?";
	return buf;
}

/* Keep the first `prefix` bits of a, zero the rest. */
static void netaddr_mask(struct netaddr *a, unsigned prefix)
{
	size_t bytes = a->family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < bytes; i++) {
		unsigned bit = (unsigned)i * 8; /* BOUNDS: i < 16 */
		if (bit >= prefix)
			a->addr[i] = 0;
		else if (prefix - bit < 8)
			a->addr[i] &= (uint8_t)(0xff00u >> (prefix - bit));
	}
}

const char *netaddr_subnet_str(const struct netaddr *a, char *buf, size_t size)
{
	char text[INET6_ADDRSTRLEN];
	struct netaddr net = *a;
	unsigned prefix;

	if (a->family == AF_INET)
		prefix = 24;
	else if (a->family == AF_INET6)
		prefix = 56;
	else
		return netaddr_str(a, buf, size);
	netaddr_mask(&net, prefix);
	if (inet_ntop(net.family, net.addr, text, sizeof(text)) == NULL)
		return "?";
	if (util_snprintf(buf, size, "%s/%u", text, prefix) < 0)
		return "?";
	return buf;
}

/* One "address[/prefix]" token of a list. */
static int netlist_parse_one(const char *tok, size_t len, struct netrange *r,
			     const char **error_r)
{
	/* longest form: a full IPv6 text (INET6_ADDRSTRLEN - 1) plus "/128" */
	char text[INET6_ADDRSTRLEN + 4];
	const char *slash = memchr(tok, '/', len);
	size_t alen = slash != NULL ? (size_t)(slash - tok) : len;
	bool mapped;

	if (alen >= INET6_ADDRSTRLEN) {
		*error_r = "address too long";
		return -1;
	}
	memcpy(text, tok, alen); /* BOUNDS: alen < INET6_ADDRSTRLEN < sizeof(text) */
	text[alen] = '\0';
	if (netaddr_parse_mapped(text, &r->net, &mapped) < 0) {
		*error_r = "not an IPv4 or IPv6 address";
		return -1;
	}
	unsigned max = r->net.family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		r->prefix = max;
		return 0;
	}
	uint64_t prefix;
	const char *num = slash + 1;
	size_t nlen = len - alen - 1; /* BOUNDS: alen < len because slash is inside tok */
	if (mapped) {
		/* ::ffff:10.0.0.0/104 is 10.0.0.0/8; a shorter prefix reaches past the
		 * mapped space, where no IPv4 client can be. */
		if (util_parse_uint(num, nlen, 128, &prefix) < 0) {
			*error_r = "bad prefix length (a number 0-128)";
			return -1;
		}
		if (prefix < 96) {
			*error_r = "prefix of an IPv4-mapped network must be at least 96";
			return -1;
		}
		prefix -= 96;
	} else if (util_parse_uint(num, nlen, max, &prefix) < 0) {
		*error_r = max == 32 ? "bad prefix length (a number 0-32)" :
				       "bad prefix length (a number 0-128)";
		return -1;
	}
	r->prefix = (unsigned)prefix;
	struct netaddr masked = r->net;
	netaddr_mask(&masked, r->prefix);
	if (memcmp(masked.addr, r->net.addr, sizeof(masked.addr)) != 0) {
		/* "10.1.2.3/8" is most likely a typo; say so rather than guess */
		*error_r = "address has bits set past the prefix length (write the network, "
			   "e.g. 10.0.0.0/8)";
		return -1;
	}
	return 0;
}

static bool netlist_is_sep(char c)
{
	return c == ' ' || c == ',' || c == '\t';
}

int netlist_parse(const char *s, struct netlist *r, const char **error_r)
{
	struct netlist l;
	size_t i = 0;

	memset(&l, 0, sizeof(l));
	while (s[i] != '\0') {
		if (netlist_is_sep(s[i])) {
			i++;
			continue;
		}
		size_t start = i;
		while (s[i] != '\0' && !netlist_is_sep(s[i]))
			i++;
		if (l.count == NETLIST_MAX) {
			*error_r = "too many networks in the list (at most " NETADDR_STR(NETLIST_MAX) ")";
			return -1;
		}
		if (netlist_parse_one(s + start, i - start, &l.r[l.count], error_r) < 0)
			return -1;
		l.count++;
	}
	*r = l;
	return 0;
}

static bool netrange_match(const struct netrange *n, const struct netaddr *a)
{
	if (a->family != n->net.family || (a->family != AF_INET && a->family != AF_INET6))
		return false;
	struct netaddr masked = *a;
	netaddr_mask(&masked, n->prefix);
	return memcmp(masked.addr, n->net.addr, sizeof(masked.addr)) == 0;
}

bool netlist_match(const struct netlist *l, const struct netaddr *a)
{
	for (size_t i = 0; i < l->count && i < NETLIST_MAX; i++)
		if (netrange_match(&l->r[i], a))
			return true;
	return false;
}
