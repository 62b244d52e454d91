/* Addresses and networks: "127.0.0.0/8 ::1" lists, matching, and throttle subnets. */
#ifndef POSTERN_NETADDR_H
#define POSTERN_NETADDR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct netaddr {
	int family;            /* AF_INET or AF_INET6; 0 = unknown (no peer) */
	uint8_t addr[16];      /* IPv4 in the first 4 bytes; IPv4-mapped IPv6 is stored as v4 */
};

struct netrange { struct netaddr net; unsigned prefix; };
#define NETLIST_MAX 32
struct netlist { size_t count; struct netrange r[NETLIST_MAX]; };

/* "192.0.2.7", "::1"; 0 or -1. */
int netaddr_parse(const char *s, struct netaddr *r);
/* From a sockaddr (getpeername). */
int netaddr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct netaddr *r);
/* Text form into buf (INET6_ADDRSTRLEN). "unknown" if family is 0. */
const char *netaddr_str(const struct netaddr *a, char *buf, size_t size);
/* "127.0.0.0/8 ::1, 10.0.0.0/8" (space or comma separated).  0 or -1 with error. */
int netlist_parse(const char *s, struct netlist *r, const char **error_r);
bool netlist_match(const struct netlist *l, const struct netaddr *a);
/* The throttle subnet: /24 for IPv4, /56 for IPv6, as text "192.0.2.0/24". */
const char *netaddr_subnet_str(const struct netaddr *a, char *buf, size_t size);

#endif
