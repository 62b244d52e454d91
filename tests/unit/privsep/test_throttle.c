/* throttle: the policy on an in-memory table (each attack the old design lost to, made
 * again), the connection cap, and the shared file from several processes, a stuck lock
 * and an unusable file.  Floods of many addresses are driven through the table API:
 * loopback cannot supply hundreds of IPv6 sources to an integration test. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/plimits.h"
#include "base/log.h"
#include "base/netaddr.h"
#include "privsep/throttle.h"
#include "base/util.h"
#include "unit.h"

static const struct throttle_policy P = {
	.window = 600, .ip_max = 5, .net_max = 20, .user_max = 10, .trust_days = 30,
	.delay_ms = 100, .delay_max_ms = 1000, .conn_max = 4,
};
static const time_t T0 = 1700000000;
static const uint8_t SECRET[THROTTLE_SECRET] = { 1, 2, 3 };

/* Fake processes: pids at or above DEAD_PID are gone. */
#define DEAD_PID 900000
static bool fake_alive(pid_t pid) { return pid < DEAD_PID; }

static struct throttle_clock clk(time_t now, pid_t self)
{
	struct throttle_clock c = { now, self, fake_alive };
	return c;
}

static struct netaddr A(const char *s)
{
	struct netaddr a;
	if (netaddr_parse(s, &a) < 0) {
		fprintf(stderr, "bad test address %s\n", s);
		exit(2);
	}
	return a;
}

static struct throttle_table *new_table(void)
{
	struct throttle_table *t = xmalloc(sizeof(*t));
	throttle_table_init(t, SECRET);
	return t;
}

/* begin; if allowed, end at once with outcome o.  Returns the verdict; *delay_r the
 * delay end gave (0 if not allowed). */
static enum throttle_verdict attempt(struct throttle_table *t, const struct throttle_policy *p,
				     const char *ip, const char *user, time_t now,
				     enum throttle_outcome o, unsigned *delay_r)
{
	struct netaddr a = A(ip);
	struct throttle_clock c = clk(now, 100);
	struct throttle_ticket tk;
	const char *reason;
	unsigned d = 0;

	enum throttle_verdict v = throttle_table_begin(t, p, &a, user, &c, &tk, &reason);
	if (v == THROTTLE_ALLOW)
		d = throttle_table_end(t, p, &a, user, &c, &tk, o);
	if (delay_r != NULL)
		*delay_r = d;
	return v;
}

static enum throttle_verdict fail(struct throttle_table *t, const struct throttle_policy *p,
				  const char *ip, const char *user, time_t now)
{
	return attempt(t, p, ip, user, now, THROTTLE_FAIL, NULL);
}

static unsigned failures(const struct throttle_table *t, const char *ip, const char *user,
			 enum throttle_kind kind, time_t now)
{
	struct netaddr a;
	if (ip != NULL)
		a = A(ip);
	return throttle_table_failures(t, &P, ip != NULL ? &a : NULL, user, kind, now);
}

static unsigned hold_of(struct throttle_table *t, const struct throttle_policy *p,
			const char *ip, const char *user, time_t now)
{
	struct netaddr a = A(ip);
	struct throttle_clock c = clk(now, 100);
	struct throttle_ticket tk;
	const char *reason;

	if (throttle_table_begin(t, p, &a, user, &c, &tk, &reason) != THROTTLE_ALLOW)
		return 99999999;
	unsigned h = tk.hold_ms;
	throttle_table_end(t, p, &a, user, &c, &tk, THROTTLE_TEMP);
	return h;
}

/* ---- limits per source ------------------------------------------------------------ */

static void test_ip_limit(void)
{
	struct throttle_table *t = new_table();
	char user[16];
	unsigned d;

	for (int i = 0; i < 4; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		CHECK(fail(t, &P, "192.0.2.7", user, T0 + i) == THROTTLE_ALLOW);
	}
	CHECK(attempt(t, &P, "192.0.2.7", "u4", T0 + 9, THROTTLE_FAIL, &d) == THROTTLE_ALLOW);
	CHECK(d == 1000);      /* 100 * 2^4 capped at 1000 */
	CHECK(failures(t, "192.0.2.7", NULL, THR_A4, T0 + 9) == 5);
	CHECK(fail(t, &P, "192.0.2.7", "x", T0 + 10) == THROTTLE_REFUSE);
	CHECK(fail(t, &P, "192.0.2.7", NULL, T0 + 10) == THROTTLE_REFUSE);
	/* a refused attempt counts nothing */
	CHECK(failures(t, "192.0.2.7", NULL, THR_A4, T0 + 10) == 5);
	/* the dual-stack form of the same client is the same address */
	CHECK(fail(t, &P, "::ffff:192.0.2.7", "x", T0 + 10) == THROTTLE_REFUSE);
	CHECK(attempt(t, &P, "192.0.2.8", "x", T0 + 10, THROTTLE_TEMP, NULL) == THROTTLE_ALLOW);
	/* the right password from a refused address is refused too (the address, not the
	 * user, is over its limit) */
	CHECK(attempt(t, &P, "192.0.2.7", "u0", T0 + 10, THROTTLE_OK, NULL) == THROTTLE_REFUSE);
	/* the window passes */
	CHECK(fail(t, &P, "192.0.2.7", "x", T0 + 9 + 600) == THROTTLE_ALLOW);
	CHECK(failures(t, "192.0.2.7", NULL, THR_A4, T0 + 9 + 600) == 1);
	struct throttle_policy p = P;
	p.ip_max = 0;
	for (int i = 0; i < 10; i++)
		CHECK(fail(t, &p, "192.0.2.9", NULL, T0 + 700) == THROTTLE_ALLOW);
	free(t);
}

static void test_net_limit(void)
{
	struct throttle_table *t = new_table();
	char ip[64];

	for (int i = 1; i <= 20; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", i);
		CHECK(fail(t, &P, ip, NULL, T0) == THROTTLE_ALLOW);
	}
	CHECK(failures(t, "192.0.2.200", NULL, THR_N24, T0) == 20);
	CHECK(fail(t, &P, "192.0.2.200", NULL, T0) == THROTTLE_REFUSE);
	CHECK(fail(t, &P, "192.0.3.1", NULL, T0) == THROTTLE_ALLOW);
	free(t);
}

/* IPv6 was keyed at /128: one host, free to pick any address of its /64, had 2^64
 * addresses' worth of tries.  Now the /64 is the address, and /56 and /48 count too. */
static void test_v6_keys(void)
{
	struct throttle_table *t = new_table();
	char ip[64];
	int allowed = 0;

	for (int i = 0; i < 50; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:0:1:%x::%x", i * 7, i + 1);
		allowed += fail(t, &P, ip, "ned", T0) == THROTTLE_ALLOW;
	}
	CHECK(allowed == (int)P.ip_max);
	CHECK(fail(t, &P, "2001:db8:0:1::9", NULL, T0) == THROTTLE_REFUSE);
	CHECK(fail(t, &P, "2001:db8:0:2::9", NULL, T0) == THROTTLE_ALLOW);
	free(t);

	/* one /56, many /64s: net_max */
	t = new_table();
	allowed = 0;
	for (int i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:0:%x::1", i);
		allowed += fail(t, &P, ip, NULL, T0) == THROTTLE_ALLOW;
	}
	CHECK(allowed == (int)P.net_max);
	CHECK(fail(t, &P, "2001:db8:0:1ff::1", NULL, T0) == THROTTLE_ALLOW); /* next /56 */
	free(t);

	/* one /48, every /64 in another /56: net_max * THROTTLE_NET48_FACTOR */
	t = new_table();
	allowed = 0;
	for (int i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:7:%x::1", (i % 256) << 8 | (i / 256));
		allowed += fail(t, &P, ip, NULL, T0) == THROTTLE_ALLOW;
	}
	CHECK(allowed == (int)(P.net_max * THROTTLE_NET48_FACTOR));
	CHECK(fail(t, &P, "2001:db8:8::1", NULL, T0) == THROTTLE_ALLOW);
	free(t);
}

/* The attack on the old table: a flood from one IPv6 /48 (every guess from a new
 * address) filled the 4096 entries and evicted the counts, and 370 of 516 guesses at one
 * user got through.  Now live counts are never evicted, a full table refuses new
 * sources, and the /48 counts. */
static void test_flood_eviction(void)
{
	struct throttle_table *t = new_table();
	struct throttle_policy p = P;
	char ip[64];
	int allowed = 0, full = 0;

	p.net_max = 3;                 /* /48: 12 */
	/* a guesser over its limit first (its /24's: net_max 3) */
	for (int i = 0; i < 5; i++)
		fail(t, &p, "198.51.100.66", "ned", T0);
	CHECK(fail(t, &p, "198.51.100.66", "ned", T0) == THROTTLE_REFUSE);
	/* then 516 guesses at ned, each from a new /64 of one /48, each followed by a
	 * flood of failures from fresh IPv4 /24s to push the counts out */
	unsigned flood = 0;
	for (int i = 0; i < 516; i++) {
		/* a new /56 each time (the /56 limit alone would stop them sooner) */
		snprintf(ip, sizeof(ip), "2001:db8:48:%x::1", (i % 256) << 8 | i / 256);
		allowed += fail(t, &p, ip, "ned", T0 + 1) == THROTTLE_ALLOW;
		for (int j = 0; j < 20; j++, flood++) {
			snprintf(ip, sizeof(ip), "10.%u.%u.1", (flood / 256) % 256, flood % 256);
			full += fail(t, &p, ip, NULL, T0 + 1) == THROTTLE_REFUSE;
		}
	}
	CHECK(allowed == (int)(p.net_max * THROTTLE_NET48_FACTOR));
	CHECK(full > 0);               /* the flood did fill the table ... */
	/* ... and the first guesser is still refused: nothing live was evicted */
	CHECK(fail(t, &p, "198.51.100.66", "ned", T0 + 2) == THROTTLE_REFUSE);
	CHECK(failures(t, "198.51.100.66", NULL, THR_A4, T0 + 2) == p.net_max);
	/* a new source while full: refused (fails closed), logged reason table-full */
	struct netaddr fresh = A("203.0.113.200");
	struct throttle_clock c = clk(T0 + 2, 100);
	struct throttle_ticket tk;
	const char *reason = NULL;
	CHECK(throttle_table_begin(t, &p, &fresh, "ned", &c, &tk, &reason) == THROTTLE_REFUSE);
	CHECK(reason != NULL && strcmp(reason, "table-full") == 0);
	/* known sources that are under their limits still work */
	CHECK(attempt(t, &p, "10.0.0.1", NULL, T0 + 2, THROTTLE_TEMP, NULL) == THROTTLE_ALLOW);
	/* once the window has passed, the slots come free again */
	CHECK(attempt(t, &p, "203.0.113.200", "ned", T0 + 1 + 600, THROTTLE_TEMP, NULL) ==
	      THROTTLE_ALLOW);
	free(t);
}

/* ---- attempts in flight ----------------------------------------------------------- */

/* Parallel guesses: ip_max attempts in flight, the next waits; when they fail it is
 * refused, when one succeeds it goes ahead.  Never a refusal that only attempts in
 * flight would justify. */
static void test_in_flight(void)
{
	struct throttle_table *t = new_table();
	struct netaddr a = A("192.0.2.50");
	struct throttle_ticket tk[8];
	const char *reason;

	for (int i = 0; i < 5; i++) {
		struct throttle_clock c = clk(T0, 200 + i);
		CHECK(throttle_table_begin(t, &P, &a, "ned", &c, &tk[i], &reason) ==
		      THROTTLE_ALLOW);
	}
	struct throttle_clock c5 = clk(T0, 205);
	CHECK(throttle_table_begin(t, &P, &a, "ned", &c5, &tk[5], &reason) == THROTTLE_WAIT);
	CHECK(strcmp(reason, "in-flight") == 0);
	/* the same /24 from another address is not held up (net_max 20) */
	struct netaddr b = A("192.0.2.51");
	CHECK(throttle_table_begin(t, &P, &b, "ned", &c5, &tk[6], &reason) == THROTTLE_ALLOW);
	throttle_table_end(t, &P, &b, "ned", &c5, &tk[6], THROTTLE_TEMP);
	/* one succeeds: the waiting one may go */
	struct throttle_clock c0 = clk(T0, 200);
	CHECK(throttle_table_end(t, &P, &a, "ned", &c0, &tk[0], THROTTLE_OK) == 0);
	CHECK(throttle_table_begin(t, &P, &a, "ned", &c5, &tk[5], &reason) == THROTTLE_ALLOW);
	/* all the rest fail: 5 failures, the next is refused */
	for (int i = 1; i <= 5; i++) {
		struct throttle_clock ci = clk(T0, 200 + i);
		throttle_table_end(t, &P, &a, "ned", &ci, &tk[i], THROTTLE_FAIL);
	}
	CHECK(throttle_table_begin(t, &P, &a, "ned", &c5, &tk[7], &reason) == THROTTLE_REFUSE);
	free(t);

	/* many good logins from one address, in waves as wide as the limit allows: every
	 * one gets through, none is refused */
	t = new_table();
	int done = 0, refused = 0, waits = 0;
	struct throttle_ticket w[40];
	bool started[40] = { false };
	while (done < 40) {
		for (int i = 0; i < 40; i++) {
			if (started[i])
				continue;
			struct throttle_clock ci = clk(T0, 300 + i);
			enum throttle_verdict v = throttle_table_begin(t, &P, &a, "ned", &ci,
								       &w[i], &reason);
			refused += v == THROTTLE_REFUSE;
			waits += v == THROTTLE_WAIT;
			started[i] = v == THROTTLE_ALLOW;
		}
		for (int i = 0; i < 40; i++)
			if (started[i] && w[i].flight >= 0) {
				struct throttle_clock ci = clk(T0, 300 + i);
				CHECK(throttle_table_end(t, &P, &a, "ned", &ci, &w[i],
							 THROTTLE_OK) == 0);
				w[i].flight = -1;
				done++;
			}
	}
	CHECK(refused == 0);
	CHECK(waits > 0);
	free(t);
}

/* A monitor that died in flight: its attempt counts as a failure; one whose pid is
 * still there after THROTTLE_FLIGHT_MAX_S is taken for a reused pid. */
static void test_reclaim(void)
{
	struct throttle_table *t = new_table();
	struct netaddr a = A("192.0.2.60");
	struct throttle_ticket tk;
	const char *reason;

	for (int i = 0; i < 5; i++) {
		struct throttle_clock c = clk(T0, DEAD_PID + i);  /* these will be "dead" */
		CHECK(throttle_table_begin(t, &P, &a, "ned", &c, &tk, &reason) == THROTTLE_ALLOW);
	}
	/* each begin reclaims the ones before it: 4 counted, the 5th is still there */
	CHECK(failures(t, "192.0.2.60", NULL, THR_A4, T0) == 4);
	struct throttle_clock c = clk(T0, 400);
	CHECK(throttle_table_begin(t, &P, &a, "ned", &c, &tk, &reason) == THROTTLE_REFUSE);
	CHECK(failures(t, "192.0.2.60", NULL, THR_A4, T0) == 5);
	CHECK(failures(t, NULL, "ned", THR_USER, T0) == 5);
	free(t);

	t = new_table();
	struct throttle_clock live = clk(T0, 401);
	CHECK(throttle_table_begin(t, &P, &a, "ned", &live, &tk, &reason) == THROTTLE_ALLOW);
	CHECK(attempt(t, &P, "198.51.100.1", NULL, T0 + THROTTLE_FLIGHT_MAX_S, THROTTLE_TEMP,
		      NULL) == THROTTLE_ALLOW);
	CHECK(failures(t, "192.0.2.60", NULL, THR_A4, T0 + THROTTLE_FLIGHT_MAX_S) == 0);
	CHECK(attempt(t, &P, "198.51.100.1", NULL, T0 + THROTTLE_FLIGHT_MAX_S + 1,
		      THROTTLE_TEMP, NULL) == THROTTLE_ALLOW);
	CHECK(failures(t, "192.0.2.60", NULL, THR_A4, T0 + THROTTLE_FLIGHT_MAX_S + 1) == 1);
	free(t);

	/* our own attempt whose end was never written: counted at our next begin, and it
	 * does not make us wait for ourselves */
	t = new_table();
	struct throttle_policy p1 = P;
	p1.ip_max = 1;
	struct throttle_clock me = clk(T0, 402);
	CHECK(throttle_table_begin(t, &P, &a, "ned", &me, &tk, &reason) == THROTTLE_ALLOW);
	CHECK(throttle_table_begin(t, &P, &a, "ned", &me, &tk, &reason) == THROTTLE_ALLOW);
	CHECK(failures(t, "192.0.2.60", NULL, THR_A4, T0) == 1);
	throttle_table_end(t, &P, &a, "ned", &me, &tk, THROTTLE_TEMP);
	CHECK(throttle_table_begin(t, &p1, &a, "ned", &me, &tk, &reason) == THROTTLE_REFUSE);
	free(t);
}

/* ---- users ------------------------------------------------------------------------ */

/* The old attack: 10 wrong passwords from 10 addresses locked the owner out, right
 * password or not, from anywhere.  Now the user's count only slows every answer for
 * that name to the maximum delay, and not at all from the owner's trusted devices. */
static void test_user_never_locked_out(void)
{
	struct throttle_table *t = new_table();
	char ip[64];
	unsigned d;

	/* the owner logged in from home before */
	CHECK(attempt(t, &P, "203.0.113.5", "ned", T0, THROTTLE_OK, &d) == THROTTLE_ALLOW);
	CHECK(d == 0);
	CHECK(attempt(t, &P, "2001:db8:5:5::1", "ned", T0, THROTTLE_OK, NULL) == THROTTLE_ALLOW);
	for (int i = 0; i < 10; i++) {
		snprintf(ip, sizeof(ip), "198.51.%d.1", i);
		CHECK(fail(t, &P, ip, "ned", T0 + 10) == THROTTLE_ALLOW);
	}
	CHECK(failures(t, NULL, "ned", THR_USER, T0 + 10) == 10);
	/* from anywhere: allowed, slowed, and the right password logs in */
	CHECK(hold_of(t, &P, "192.0.2.99", "ned", T0 + 11) == P.delay_max_ms);
	CHECK(attempt(t, &P, "192.0.2.99", "ned", T0 + 11, THROTTLE_OK, &d) == THROTTLE_ALLOW);
	CHECK(d == P.delay_max_ms);   /* a success is as slow as a failure: no oracle */
	/* from the trusted devices (their /24, their /64): not slowed */
	CHECK(hold_of(t, &P, "203.0.113.5", "ned", T0 + 11) == 0);
	CHECK(hold_of(t, &P, "203.0.113.77", "ned", T0 + 11) == 0);
	CHECK(hold_of(t, &P, "2001:db8:5:5::abcd", "ned", T0 + 11) == 0);
	CHECK(hold_of(t, &P, "2001:db8:5:6::1", "ned", T0 + 11) == P.delay_max_ms);
	CHECK(hold_of(t, &P, "203.0.114.5", "ned", T0 + 11) == P.delay_max_ms);
	/* other users are not slowed */
	CHECK(hold_of(t, &P, "192.0.2.99", "root", T0 + 11) == 0);
	/* the trust expires */
	CHECK(hold_of(t, &P, "203.0.113.5", "ned", T0 + 30 * 86400 + 1) == 0); /* window gone */
	for (int i = 0; i < 10; i++) {
		snprintf(ip, sizeof(ip), "198.51.%d.1", i);
		fail(t, &P, ip, "ned", T0 + 30 * 86400 + 1);
	}
	CHECK(hold_of(t, &P, "203.0.113.5", "ned", T0 + 30 * 86400 + 1) == P.delay_max_ms);
	free(t);
}

/* The old success wiped the address's count: the owner of one account could guess
 * another's at full speed, logging in to their own between guesses.  Now a success
 * clears only that user's failures from that address. */
static void test_success_clears_own_only(void)
{
	struct throttle_table *t = new_table();

	CHECK(fail(t, &P, "192.0.2.7", "ned", T0) == THROTTLE_ALLOW);
	CHECK(fail(t, &P, "192.0.2.7", "ned", T0) == THROTTLE_ALLOW);
	CHECK(fail(t, &P, "192.0.2.7", "mallory", T0) == THROTTLE_ALLOW);
	CHECK(fail(t, &P, "192.0.2.8", "mallory", T0) == THROTTLE_ALLOW);
	CHECK(failures(t, "192.0.2.7", NULL, THR_A4, T0) == 3);
	/* mallory logs in to her own account: only her one failure from .7 goes */
	CHECK(attempt(t, &P, "192.0.2.7", "mallory", T0, THROTTLE_OK, NULL) == THROTTLE_ALLOW);
	CHECK(failures(t, "192.0.2.7", NULL, THR_A4, T0) == 2);
	CHECK(failures(t, "192.0.2.7", NULL, THR_N24, T0) == 3);
	CHECK(failures(t, NULL, "mallory", THR_USER, T0) == 1);
	CHECK(failures(t, NULL, "ned", THR_USER, T0) == 2);
	/* guess, log in, guess, log in ...: the guesses at ned add up to the limit */
	int allowed = 0;
	for (int i = 0; i < 20; i++) {
		allowed += fail(t, &P, "192.0.2.7", "ned", T0 + 1) == THROTTLE_ALLOW;
		attempt(t, &P, "192.0.2.7", "mallory", T0 + 1, THROTTLE_OK, NULL);
	}
	CHECK(allowed == 3);
	CHECK(fail(t, &P, "192.0.2.7", "ned", T0 + 1) == THROTTLE_REFUSE);
	free(t);

	/* the user's own failures do go */
	t = new_table();
	for (int i = 0; i < 4; i++)
		fail(t, &P, "192.0.2.7", "ned", T0);
	CHECK(attempt(t, &P, "192.0.2.7", "ned", T0, THROTTLE_OK, NULL) == THROTTLE_ALLOW);
	CHECK(failures(t, "192.0.2.7", NULL, THR_A4, T0) == 0);
	CHECK(failures(t, NULL, "ned", THR_USER, T0) == 0);
	CHECK(failures(t, "192.0.2.7", "ned", THR_PAIR, T0) == 0);
	free(t);
}

/* User keys are HMACs under the table's secret: no name in the table, and another
 * host's table (another secret) keys the same name differently. */
static void test_hmac_keys(void)
{
	struct throttle_table *t = new_table();
	uint8_t other[THROTTLE_SECRET] = { 9 };
	struct throttle_table *u = xmalloc(sizeof(*u));

	throttle_table_init(u, other);
	fail(t, &P, "192.0.2.7", "nedflanders", T0);
	fail(u, &P, "192.0.2.7", "nedflanders", T0);
	CHECK(memmem(t, sizeof(*t), "nedflanders", 11) == NULL);
	int ti = -1, ui = -1;
	for (int i = 0; i < THROTTLE_COUNT_SLOTS; i++) {
		if (t->count[i].kind == THR_USER)
			ti = i;
		if (u->count[i].kind == THR_USER)
			ui = i;
	}
	CHECK(ti >= 0 && ui >= 0);
	if (ti >= 0 && ui >= 0)
		CHECK(memcmp(t->count[ti].key, u->count[ui].key, THROTTLE_KEY) != 0);
	CHECK(failures(t, NULL, "nedflanders", THR_USER, T0) == 1);
	CHECK(failures(t, NULL, "Nedflanders", THR_USER, T0) == 0);
	free(u);
	free(t);
}

/* Trusted devices have a region of their own: a flood of failures cannot push them out,
 * and a full trust region keeps the ones it has. */
static void test_trust_protected(void)
{
	struct throttle_table *t = new_table();
	char ip[64];

	struct throttle_policy p = P;
	p.user_max = 1;
	attempt(t, &p, "203.0.113.5", "ned", T0, THROTTLE_OK, NULL);
	/* the trust region fills up with another user's devices: ned's stays */
	for (int i = 0; i < THROTTLE_TRUST_SLOTS + 10; i++) {
		snprintf(ip, sizeof(ip), "100.%d.%d.1", i / 256, i % 256);
		attempt(t, &p, ip, "other", T0, THROTTLE_OK, NULL);
	}
	int used = 0;
	for (int i = 0; i < THROTTLE_TRUST_SLOTS; i++)
		used += t->trust[i].used == 1;
	CHECK(used == THROTTLE_TRUST_SLOTS);
	/* a flood of failures fills the count region */
	int refused = 0;
	for (unsigned i = 0; i < THROTTLE_COUNT_SLOTS / 2 + 10; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.1", i / 256 % 256, i % 256);
		refused += fail(t, &p, ip, NULL, T0) == THROTTLE_REFUSE;
	}
	CHECK(refused > 0);
	/* later, ned is over the user limit: the device is still trusted */
	fail(t, &p, "172.16.0.1", "ned", T0 + 700);
	CHECK(hold_of(t, &p, "203.0.113.5", "ned", T0 + 700) == 0);
	CHECK(hold_of(t, &p, "203.0.114.5", "ned", T0 + 700) == p.delay_max_ms);
	free(t);
}

/* ---- delay, expiry, sanitizing ---------------------------------------------------- */

static void test_delay(void)
{
	struct throttle_table *t = new_table();
	struct throttle_policy p = P;
	static const unsigned expect[] = { 100, 200, 400, 800, 1000, 1000, 1000 };
	unsigned d;

	p.ip_max = 0;
	p.user_max = 0;
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		CHECK(attempt(t, &p, "192.0.2.7", "ned", T0, THROTTLE_FAIL, &d) == THROTTLE_ALLOW);
		CHECK(d == expect[i]);
	}
	/* the delay follows the address */
	attempt(t, &p, "192.0.2.8", "ned", T0, THROTTLE_FAIL, &d);
	CHECK(d == 100);
	/* an unknown peer: the user's count */
	struct netaddr none;
	memset(&none, 0, sizeof(none));
	struct throttle_clock c = clk(T0, 100);
	struct throttle_ticket tk;
	const char *reason;
	CHECK(throttle_table_begin(t, &p, &none, "ned", &c, &tk, &reason) == THROTTLE_ALLOW);
	CHECK(throttle_table_end(t, &p, &none, "ned", &c, &tk, THROTTLE_FAIL) == 1000);
	CHECK(throttle_table_begin(t, &p, NULL, NULL, &c, &tk, &reason) == THROTTLE_ALLOW);
	CHECK(throttle_table_end(t, &p, NULL, NULL, &c, &tk, THROTTLE_FAIL) == 100);
	/* a cap below the base: no doubling; base 0: no delay */
	p.delay_ms = 300;
	p.delay_max_ms = 0;
	attempt(t, &p, "192.0.2.7", NULL, T0, THROTTLE_FAIL, &d);
	CHECK(d == 300);
	p.delay_ms = 0;
	attempt(t, &p, "192.0.2.7", NULL, T0, THROTTLE_FAIL, &d);
	CHECK(d == 0);
	free(t);
}

static void test_sanitize(void)
{
	struct throttle_table *t = new_table();

	CHECK(throttle_table_valid(t));
	CHECK(throttle_table_sanitize(t) == 0);
	t->count[3].kind = 200;
	t->trust[4].used = 7;
	t->flight[5].pid = -3;
	t->flight[6].pid = 77;
	t->flight[6].family = 99;
	t->conn[7].pid = 55;
	t->conn[7].family = 0;
	/* the connection cap's check: the conn region alone */
	CHECK(throttle_table_sanitize_conn(t) == 1);
	CHECK(t->conn[7].pid == 0 && t->count[3].kind == 200 && t->flight[5].pid == -3);
	t->conn[7].pid = 55;
	CHECK(throttle_table_sanitize(t) == 5);
	CHECK(t->count[3].kind == 0 && t->trust[4].used == 0 && t->flight[6].pid == 0);
	CHECK(throttle_table_sanitize(t) == 0);
	CHECK(throttle_table_sanitize_conn(t) == 0);
	/* a count from the far future is not live and may be taken */
	t->count[0].kind = THR_A4;
	t->count[0].count = 99;
	t->count[0].last = INT64_MAX;
	CHECK(failures(t, "0.0.0.0", NULL, THR_A4, T0) == 0);
	t->h.version++;
	CHECK(!throttle_table_valid(t));
	free(t);
}

/* ---- the connection cap ----------------------------------------------------------- */

static void test_conn_cap(void)
{
	struct throttle_table *t = new_table();
	struct netaddr a = A("192.0.2.7"), b = A("192.0.2.8");
	int slot[6];

	for (int i = 0; i < 4; i++) {
		struct throttle_clock c = clk(T0, 500 + i);
		CHECK(throttle_table_conn_enter(t, &P, &a, &c, &slot[i]) == THROTTLE_ALLOW);
		CHECK(slot[i] >= 0);
	}
	struct throttle_clock c = clk(T0, 510);
	CHECK(throttle_table_conn_enter(t, &P, &a, &c, &slot[4]) == THROTTLE_REFUSE);
	CHECK(throttle_table_conn_enter(t, &P, &b, &c, &slot[4]) == THROTTLE_ALLOW);
	/* one logs in (or ends): room again */
	throttle_table_conn_leave(t, slot[0], 500);
	CHECK(throttle_table_conn_enter(t, &P, &a, &c, &slot[5]) == THROTTLE_ALLOW);
	/* a leave by another pid changes nothing */
	throttle_table_conn_leave(t, slot[1], 999);
	struct throttle_clock c2 = clk(T0, 511);
	CHECK(throttle_table_conn_enter(t, &P, &a, &c2, &slot[0]) == THROTTLE_REFUSE);
	/* cap off */
	struct throttle_policy p = P;
	p.conn_max = 0;
	CHECK(throttle_table_conn_enter(t, &p, &a, &c2, &slot[0]) == THROTTLE_ALLOW);
	CHECK(slot[0] == -1);
	free(t);

	/* crashed monitors' entries are reclaimed; IPv6 counts per /64 */
	t = new_table();
	struct netaddr v6 = A("2001:db8::1");
	for (int i = 0; i < 4; i++) {
		char ip[64];
		snprintf(ip, sizeof(ip), "2001:db8::%x", i + 100);
		struct netaddr x = A(ip);
		struct throttle_clock ci = clk(T0, DEAD_PID + i);
		CHECK(throttle_table_conn_enter(t, &P, &x, &ci, &slot[i]) == THROTTLE_ALLOW);
	}
	struct throttle_clock cl = clk(T0, 600);
	CHECK(throttle_table_conn_enter(t, &P, &v6, &cl, &slot[4]) == THROTTLE_ALLOW);
	for (int i = 0; i < 3; i++) {
		struct throttle_clock ci = clk(T0, 601 + i);
		CHECK(throttle_table_conn_enter(t, &P, &v6, &ci, &slot[i]) == THROTTLE_ALLOW);
	}
	struct netaddr v6b = A("2001:db8::ffff:1");
	CHECK(throttle_table_conn_enter(t, &P, &v6b, &cl, &slot[5]) == THROTTLE_REFUSE);
	struct netaddr v6c = A("2001:db8:0:1::1");
	CHECK(throttle_table_conn_enter(t, &P, &v6c, &cl, &slot[5]) == THROTTLE_ALLOW);
	/* a live pid older than THROTTLE_CONN_MAX_S is taken for a reused one */
	struct throttle_clock late = clk(T0 + THROTTLE_CONN_MAX_S + 1, 700);
	CHECK(throttle_table_conn_enter(t, &P, &v6, &late, &slot[0]) == THROTTLE_ALLOW);
	free(t);
}

/* ---- the file --------------------------------------------------------------------- */

static char dir[64], path[128];

static struct throttle_table *map_file(void)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return NULL;
	void *p = mmap(NULL, sizeof(struct throttle_table), PROT_READ | PROT_WRITE,
		       MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static unsigned file_failures(const char *ip, const char *user, enum throttle_kind k)
{
	struct throttle_table *t = map_file();
	if (t == NULL)
		return 0;
	unsigned n = failures(t, ip, user, k, time(NULL));
	munmap(t, sizeof(*t));
	return n;
}

static enum throttle_verdict file_attempt(const struct throttle_policy *p, const char *ip,
					  const char *user, enum throttle_outcome o,
					  unsigned *delay_r)
{
	struct netaddr a = A(ip);
	struct throttle_ticket tk;
	enum throttle_verdict v = throttle_begin(path, p, &a, user, &tk);
	unsigned d = 0;
	if (v == THROTTLE_ALLOW)
		d = throttle_end(path, p, &a, user, &tk, o);
	if (delay_r != NULL)
		*delay_r = d;
	return v;
}

static void test_file(void)
{
	struct stat st;
	unsigned d;

	mode_t old = umask(0);
	for (int i = 0; i < 5; i++)
		CHECK(file_attempt(&P, "192.0.2.7", "ned", THROTTLE_FAIL, &d) == THROTTLE_ALLOW);
	umask(old);
	CHECK(d == 1000);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600);
	CHECK(st.st_uid == geteuid());
	CHECK((size_t)st.st_size == sizeof(struct throttle_table));
	CHECK(st.st_blocks * 512 >= st.st_size);      /* preallocated, no holes */
	CHECK(file_attempt(&P, "192.0.2.7", "ned", THROTTLE_OK, NULL) == THROTTLE_REFUSE);
	CHECK(file_failures("192.0.2.7", NULL, THR_A4) == 5);
	/* the secret stays: the user's count is found again */
	CHECK(file_failures(NULL, "ned", THR_USER) == 5);
	struct throttle_table *t = map_file();
	CHECK(t != NULL && memmem(t, sizeof(*t), "ned", 3) == NULL);
	/* a damaged header: a new table (logged) */
	if (t != NULL) {
		t->h.magic[0] = 'X';
		munmap(t, sizeof(*t));
	}
	CHECK(file_attempt(&P, "192.0.2.7", "ned", THROTTLE_FAIL, NULL) == THROTTLE_ALLOW);
	CHECK(file_failures("192.0.2.7", NULL, THR_A4) == 1);
	/* a wrong size (cut): a new table too */
	CHECK(truncate(path, 4096) == 0);
	CHECK(file_attempt(&P, "192.0.2.7", "ned", THROTTLE_FAIL, NULL) == THROTTLE_ALLOW);
	CHECK(stat(path, &st) == 0 && (size_t)st.st_size == sizeof(struct throttle_table));
	unlink(path);
}

/* The old throttle failed open: a file error or a lock it could not get meant no
 * throttle.  Now the attempt gets the maximum delay, and what the table says is over a
 * limit is refused even without the lock. */
static void test_file_errors(void)
{
	struct throttle_policy p = P;
	struct throttle_ticket tk;
	struct netaddr a = A("192.0.2.7");
	char bad[192];

	snprintf(bad, sizeof(bad), "%s/missing-dir/throttle.map", dir);
	CHECK(throttle_begin(bad, &p, &a, "ned", &tk) == THROTTLE_ALLOW);
	CHECK(tk.hold_ms == p.delay_max_ms);
	CHECK(throttle_end(bad, &p, &a, "ned", &tk, THROTTLE_OK) == p.delay_max_ms);
	CHECK(throttle_end(bad, &p, &a, "ned", &tk, THROTTLE_FAIL) == p.delay_max_ms);
	int slot;
	CHECK(throttle_conn_enter(bad, &p, &a, &slot) == THROTTLE_ALLOW && slot == -1);

	/* a directory in its place */
	snprintf(bad, sizeof(bad), "%s/isdir", dir);
	CHECK(mkdir(bad, 0700) == 0);
	CHECK(throttle_begin(bad, &p, &a, "ned", &tk) == THROTTLE_ALLOW);
	CHECK(tk.hold_ms == p.delay_max_ms);
	rmdir(bad);

	/* a file others may read or write is not ours */
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0 && fchmod(fd, 0644) == 0);
	close(fd);
	CHECK(throttle_begin(path, &p, &a, "ned", &tk) == THROTTLE_ALLOW);
	CHECK(tk.hold_ms == p.delay_max_ms);
	unlink(path);

	/* a symlink is not followed */
	char target[192];
	snprintf(target, sizeof(target), "%s/target", dir);
	fd = open(target, O_WRONLY | O_CREAT, 0600);
	close(fd);
	CHECK(symlink(target, path) == 0);
	CHECK(throttle_begin(path, &p, &a, "ned", &tk) == THROTTLE_ALLOW);
	CHECK(tk.hold_ms == p.delay_max_ms);
	struct stat st;
	CHECK(stat(target, &st) == 0 && st.st_size == 0);
	unlink(path);
	unlink(target);

	/* a base delay above the cap: the maximum is the base */
	p.delay_ms = 2000;
	p.delay_max_ms = 0;
	snprintf(bad, sizeof(bad), "%s/missing-dir/throttle.map", dir);
	CHECK(throttle_begin(bad, &p, &a, "ned", &tk) == THROTTLE_ALLOW);
	CHECK(tk.hold_ms == 2000);
}

/* A process that holds the lock and never lets go does not hang logins, and does not
 * open the gate: an address over its limit is still refused (decided from the table
 * read without the lock), any other attempt gets the maximum delay. */
static void test_stuck_lock(void)
{
	struct throttle_policy p = P;
	struct throttle_ticket tk;
	int sync[2];
	struct netaddr over = A("203.0.113.9"), under = A("203.0.113.10");

	unlink(path);
	for (int i = 0; i < 5; i++)
		file_attempt(&p, "203.0.113.9", "ned", THROTTLE_FAIL, NULL);
	CHECK(pipe(sync) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(path, O_RDWR);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fd == -1 || fcntl(fd, F_SETLK, &fl) == -1)
			_exit(1);
		if (write(sync[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char ch;
	CHECK(read(sync[0], &ch, 1) == 1);
	CHECK(throttle_begin(path, &p, &over, "ned", &tk) == THROTTLE_REFUSE);
	CHECK(throttle_begin(path, &p, &under, "ned", &tk) == THROTTLE_ALLOW);
	CHECK(tk.hold_ms == p.delay_max_ms);
	int slot;
	CHECK(throttle_conn_enter(path, &p, &under, &slot) == THROTTLE_ALLOW && slot == -1);
	/* it returned while the holder still holds the lock */
	CHECK(waitpid(pid, NULL, WNOHANG) == 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(sync[0]);
	close(sync[1]);
	unlink(path);
}

/* Four processes guess in parallel from one address: exactly ip_max guesses in all
 * (the rest wait for those in flight, then are refused).  Then four processes log in
 * with the right password, many times, from one address: never refused. */
static void test_parallel_processes(void)
{
	enum { PROCS = 4, TRIES = 10 };
	struct throttle_policy p = P;
	pid_t pids[PROCS];
	int total = 0;

	p.delay_ms = 0;
	unlink(path);
	for (int k = 0; k < PROCS; k++) {
		pids[k] = fork();
		if (pids[k] == 0) {
			int allowed = 0;
			for (int i = 0; i < TRIES; i++) {
				struct netaddr a = A("192.0.2.77");
				struct throttle_ticket tk;
				if (throttle_begin(path, &p, &a, "ned", &tk) != THROTTLE_ALLOW)
					continue;
				allowed++;
				util_sleep_ms(5);  /* PAM's time: others arrive meanwhile */
				throttle_end(path, &p, &a, "ned", &tk, THROTTLE_FAIL);
			}
			_exit(allowed);
		}
	}
	for (int k = 0; k < PROCS; k++) {
		int status = -1;
		CHECK(waitpid(pids[k], &status, 0) == pids[k] && WIFEXITED(status));
		total += WEXITSTATUS(status);
	}
	CHECK(total == (int)p.ip_max);
	CHECK(file_failures("192.0.2.77", NULL, THR_A4) == p.ip_max);

	p.ip_max = 2;                    /* narrower than the crowd: they must take turns */
	for (int k = 0; k < PROCS; k++) {
		pids[k] = fork();
		if (pids[k] == 0) {
			for (int i = 0; i < 25; i++) {
				struct netaddr a = A("192.0.2.88");
				struct throttle_ticket tk;
				if (throttle_begin(path, &p, &a, "ned", &tk) != THROTTLE_ALLOW)
					_exit(1);
				util_sleep_ms(2);
				throttle_end(path, &p, &a, "ned", &tk, THROTTLE_OK);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < PROCS; k++) {
		int status = -1;
		CHECK(waitpid(pids[k], &status, 0) == pids[k]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	unlink(path);
}

/* Processes hammering the file: every failure is counted exactly once. */
static void test_hammer(void)
{
	enum { PROCS = 4, ROUNDS = 150 };
	struct throttle_policy p = P;
	pid_t pids[PROCS];
	bool lost = false;

	p.window = 1000000;
	p.ip_max = 0;
	p.net_max = 0;
	p.user_max = 0;
	p.delay_ms = 0;
	unlink(path);
	for (int k = 0; k < PROCS; k++) {
		pids[k] = fork();
		if (pids[k] == 0) {
			char own[32];
			int missed = 0;
			snprintf(own, sizeof(own), "198.51.100.%d", k + 1);
			/* With no limit and no base delay, an answer delayed by delay_max_ms is
			 * one whose lock wait ran out (THROTTLE_LOCK_TIMEOUT_MS): not counted,
			 * by design.  On a loaded machine that can happen; say so. */
			for (int i = 0; i < ROUNDS; i++) {
				unsigned d1 = 0, d2 = 0;
				file_attempt(&p, "192.0.2.7", "ned", THROTTLE_FAIL, &d1);
				file_attempt(&p, own, "root", THROTTLE_FAIL, &d2);
				missed += (d1 >= p.delay_max_ms) + (d2 >= p.delay_max_ms);
			}
			_exit(missed > 0 ? 3 : 0);
		}
	}
	for (int k = 0; k < PROCS; k++) {
		int status = -1;
		CHECK(waitpid(pids[k], &status, 0) == pids[k]);
		CHECK(WIFEXITED(status) &&
		      (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3));
		lost |= WIFEXITED(status) && WEXITSTATUS(status) == 3;
	}
	if (!lost) {
		CHECK(file_failures("192.0.2.7", NULL, THR_A4) == PROCS * ROUNDS);
		CHECK(file_failures(NULL, "ned", THR_USER) == PROCS * ROUNDS);
		CHECK(file_failures(NULL, "root", THR_USER) == PROCS * ROUNDS);
		CHECK(file_failures("198.51.100.1", NULL, THR_N24) == PROCS * ROUNDS);
		CHECK(file_failures("198.51.100.3", NULL, THR_A4) == ROUNDS);
	} else {
		/* some lock waits timed out (a starved machine): every record that was
		 * written is still there, none counted twice */
		fprintf(stderr, "throttle: hammer: lock waits ran out under load; "
			"exact counts not checked, upper bounds only\n");
		CHECK(file_failures("192.0.2.7", NULL, THR_A4) <= PROCS * ROUNDS);
		CHECK(file_failures(NULL, "ned", THR_USER) <= PROCS * ROUNDS);
		CHECK(file_failures("198.51.100.3", NULL, THR_A4) <= ROUNDS);
		CHECK(file_failures("198.51.100.3", NULL, THR_A4) > 0);
	}
	unlink(path);
}

/* Connection cap through the file: processes that die without leaving are reclaimed. */
static void test_conn_file(void)
{
	struct throttle_policy p = P;
	struct netaddr a = A("192.0.2.99");
	int slot;

	unlink(path);
	p.conn_max = 2;
	for (int k = 0; k < 2; k++) {
		pid_t pid = fork();
		if (pid == 0) {
			int s;
			_exit(throttle_conn_enter(path, &p, &a, &s) == THROTTLE_ALLOW && s >= 0 ?
			      0 : 1);   /* and never leaves */
		}
		int status = -1;
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
	}
	CHECK(throttle_conn_enter(path, &p, &a, &slot) == THROTTLE_ALLOW && slot >= 0);
	int slot2;
	CHECK(throttle_conn_enter(path, &p, &a, &slot2) == THROTTLE_ALLOW && slot2 >= 0);
	int slot3;
	CHECK(throttle_conn_enter(path, &p, &a, &slot3) == THROTTLE_REFUSE);
	throttle_conn_leave(path, slot);
	CHECK(throttle_conn_enter(path, &p, &a, &slot3) == THROTTLE_ALLOW);
	unlink(path);
}

int main(void)
{
	const char *error = NULL;

	snprintf(dir, sizeof(dir), "/tmp/test_throttle.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/" THROTTLE_FILE_NAME, dir);
	char logpath[128];
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	log_init("test_throttle", false);
	CHECK(log_open(logpath, false, &error) == 0);

	test_ip_limit();
	test_net_limit();
	test_v6_keys();
	test_flood_eviction();
	test_in_flight();
	test_reclaim();
	test_user_never_locked_out();
	test_success_clears_own_only();
	test_hmac_keys();
	test_trust_protected();
	test_delay();
	test_sanitize();
	test_conn_cap();

	test_file();
	test_file_errors();
	test_stuck_lock();
	test_parallel_processes();
	test_hammer();
	test_conn_file();

	/* what went wrong was logged, and no user name */
	static char buf[1 << 20];
	int fd = open(logpath, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	CHECK(strstr(buf, "throttle-error: ") != NULL);
	CHECK(strstr(buf, "action=max-delay, delay_ms=1000") != NULL);
	CHECK(strstr(buf, "action=refuse") != NULL);
	CHECK(strstr(buf, "throttle-refused: reason=ip-limit, rip=192.0.2.77") != NULL);
	CHECK(strstr(buf, "throttle-reclaim: ") != NULL);
	CHECK(strstr(buf, "throttle-full: ") != NULL);
	CHECK(strstr(buf, "=ned") == NULL && strstr(buf, "<ned>") == NULL);
	unlink(logpath);
	rmdir(dir);
	return unit_done("throttle");
}
