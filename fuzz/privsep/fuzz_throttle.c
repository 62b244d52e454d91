/* fuzz_throttle: the shared throttle table as hostile bytes.  The input is laid over the
 * start of each region of a table (behind a valid header), then sanitized; every
 * operation then runs on it, driven by the input's first bytes, and must leave a table
 * that needs no more sanitizing, with the bookkeeping it promised (a flight or
 * connection slot owned by the caller, freed again at the end). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "base/netaddr.h"
#include "privsep/throttle.h"
#include "base/util.h"

static bool odd_alive(pid_t pid) { return (pid & 1) != 0; }

static void lay(void *region, size_t region_size, const uint8_t *data, size_t size)
{
	memcpy(region, data, size < region_size ? size : region_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct throttle_table *t;
	static const uint8_t secret[THROTTLE_SECRET] = { 7 };

	if (t == NULL)
		t = xmalloc(sizeof(*t));
	throttle_table_init(t, secret);
	lay(t->count, sizeof(t->count), data, size);
	lay(t->trust, sizeof(t->trust), data, size);
	lay(t->flight, sizeof(t->flight), data, size);
	lay(t->conn, sizeof(t->conn), data, size);
	throttle_table_sanitize(t);
	if (throttle_table_sanitize(t) != 0 || !throttle_table_valid(t))
		abort();

	uint8_t k0 = size > 0 ? data[0] : 0, k1 = size > 1 ? data[1] : 0;
	struct throttle_policy p = {
		.window = 600, .ip_max = k0 % 8, .net_max = k1 % 32, .user_max = 3,
		.trust_days = 30, .delay_ms = 100, .delay_max_ms = 1000, .conn_max = k0 % 5,
	};
	/* a time near the slots' own, so that windows are hit and missed */
	time_t now = 1700000000;
	if (t->count[0].kind != THR_FREE)
		now = (time_t)(t->count[0].last > INT32_MAX * 4LL ? INT32_MAX :
			       t->count[0].last < 0 ? 0 : t->count[0].last);
	struct throttle_clock c = { now, 1001, odd_alive };
	struct netaddr addrs[3];
	netaddr_parse("192.0.2.7", &addrs[0]);
	netaddr_parse("2001:db8::7", &addrs[1]);
	memset(&addrs[2], 0, sizeof(addrs[2]));          /* unknown peer */
	static const char *const users[] = { "ned", "root", NULL };

	for (size_t i = 0; i < 12; i++) {
		uint8_t op = size > i + 2 ? data[i + 2] : (uint8_t)i;
		const struct netaddr *a = &addrs[op % 3];
		const char *user = users[(op >> 2) % 3];
		const char *reason = NULL;
		struct throttle_ticket tk;

		(void)throttle_table_peek(t, &p, a, user, now, &reason);
		enum throttle_verdict v = throttle_table_begin(t, &p, a, user, &c, &tk, &reason);
		if (v == THROTTLE_ALLOW) {
			if (tk.flight < 0 || tk.flight >= THROTTLE_FLIGHT_SLOTS ||
			    t->flight[tk.flight].pid != c.self)
				abort();
			enum throttle_outcome o = (enum throttle_outcome)((op >> 4) % 3);
			unsigned d = throttle_table_end(t, &p, a, user, &c, &tk, o);
			if (d < tk.hold_ms || d > 1000 ||
			    (o == THROTTLE_FAIL && d < p.delay_ms))
				abort();
			if (t->flight[tk.flight].pid == c.self)
				abort();
		} else if (reason == NULL) {
			abort();
		}
		int slot;
		if (throttle_table_conn_enter(t, &p, a, &c, &slot) == THROTTLE_ALLOW && slot >= 0) {
			if (slot >= THROTTLE_CONN_SLOTS || t->conn[slot].pid != c.self)
				abort();
			if (op & 0x40) {
				throttle_table_conn_leave(t, slot, c.self);
				if (t->conn[slot].pid != 0)
					abort();
			}
		}
		c.now += op & 0x80 ? 700 : 1;
		c.self += 2;                                    /* odd: alive */
	}
	if (throttle_table_sanitize(t) != 0)
		abort();
	return 0;
}
