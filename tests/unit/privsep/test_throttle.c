/* throttle: file format, limits, the policy on a table, and the shared file under a lock
 * from several processes. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/plimits.h"
#include "base/log.h"
#include "base/netaddr.h"
#include "privsep/throttle.h"
#include "base/util.h"
#include "unit.h"

/* first 32 hex digits of SHA-256("ned") and of SHA-256("root") */
#define H_NED "c2bc07610fb18d0eb3a72f9806258997"
#define H_ROOT "4813494d137e1631bba301d5acab6e7b"

static const struct throttle_policy P = {
	.window = 600, .ip_max = 5, .net_max = 20, .user_max = 10, .trust_days = 30,
	.delay_ms = 100, .delay_max_ms = 1000,
};
static const time_t T0 = 1700000000;

static struct netaddr A(const char *s)
{
	struct netaddr a;
	if (netaddr_parse(s, &a) < 0) {
		fprintf(stderr, "bad test address %s\n", s);
		exit(2);
	}
	return a;
}

static const struct throttle_entry *entry(const struct throttle_table *t, char kind,
					  const char *key)
{
	for (size_t i = 0; i < t->count; i++)
		if (t->e[i].kind == kind && strcmp(t->e[i].key, key) == 0)
			return &t->e[i];
	return NULL;
}

static unsigned count_of(const struct throttle_table *t, char kind, const char *key)
{
	const struct throttle_entry *e = entry(t, kind, key);
	return e != NULL ? e->count : 0;
}

/* ---- format ----------------------------------------------------------------------- */

static const char valid_text[] =
	"i 192.0.2.7 3 1700000000\n"
	"i 2001:db8::1 1 1700000001\n"
	"n 192.0.2.0/24 5 1700000002\n"
	"n 2001:db8:0:100::/56 2 1700000003\n"
	"u " H_NED " 4 1700000004\n"
	"g " H_NED "/192.0.2.7 0 1700000005\n"
	"g " H_ROOT "/2001:db8::1 0 0\n"
	"i 0.0.0.0 4294967295 9223372036854775807\n";

static void test_round_trip(void)
{
	struct throttle_table t;
	size_t len;

	CHECK(throttle_parse(valid_text, strlen(valid_text), &t) == 0);
	CHECK(t.count == 8);
	CHECK(t.e[0].kind == THR_IP && t.e[0].count == 3 && t.e[0].last == 1700000000);
	CHECK_STR(t.e[0].key, "192.0.2.7");
	CHECK(t.e[4].kind == THR_USER && t.e[4].count == 4);
	CHECK_STR(t.e[5].key, H_NED "/192.0.2.7");
	CHECK(t.e[7].count == 4294967295u);
	char *text = throttle_format(&t, &len);
	CHECK(len == strlen(valid_text));
	CHECK_STR(text, valid_text);
	free(text);
	throttle_table_free(&t);
	CHECK(t.e == NULL && t.count == 0);

	/* empty */
	CHECK(throttle_parse("", 0, &t) == 0);
	CHECK(t.count == 0);
	text = throttle_format(&t, &len);
	CHECK(len == 0 && text[0] == '\0');
	free(text);
	throttle_table_free(&t);
}

/* Each must be skipped, alone on its line. */
static const char *const bad_lines[] = {
	"",
	"x 192.0.2.7 1 5",
	"I 192.0.2.7 1 5",
	"i 192.0.2.7 1",
	"i 192.0.2.7 1 5 6",
	"i  192.0.2.7 1 5",
	"i 192.0.2.7  1 5",
	"i 192.0.2.7 1 5 ",
	" i 192.0.2.7 1 5",
	"i\t192.0.2.7 1 5",
	"i",
	"i ",
	"i 192.0.2.07 1 5",
	"i ::ffff:192.0.2.7 1 5",     /* not canonical: would never match a lookup */
	"i 2001:DB8::1 1 5",
	"i 2001:db8:0::1 1 5",
	"i 192.0.2.0/24 1 5",
	"i bogus 1 5",
	"n 192.0.2.1/24 1 5",         /* host bits */
	"n 192.0.2.0/16 1 5",
	"n 192.0.2.0 1 5",
	"n 2001:db8::/64 1 5",
	"n 2001:db8::1/56 1 5",
	"n /24 1 5",
	"u C2BC07610FB18D0EB3A72F9806258997 1 5",
	"u c2bc07610fb18d0eb3a72f980625899 1 5",
	"u c2bc07610fb18d0eb3a72f98062589977 1 5",
	"u c2bc07610fb18d0eb3a72f980625899g 1 5",
	"u ned 1 5",
	"g " H_NED " 0 5",
	"g " H_NED "/ 0 5",
	"g " H_NED "/bogus 0 5",
	"g " H_NED "192.0.2.7 0 5",
	"g 192.0.2.7 0 5",
	"i 192.0.2.7 -1 5",
	"i 192.0.2.7 +1 5",
	"i 192.0.2.7 4294967296 5",
	"i 192.0.2.7 1 -5",
	"i 192.0.2.7 1 9223372036854775808",
	"i 192.0.2.7 1 99999999999999999999999",
	"i 192.0.2.7 1 5\r",
	"i 192.0.2.7 1 0x5",
	"i 192.0.2.7  5",
	"i 192.0.2.7 1 ",
	"i 12345678901234567890123456789012345678901234567890123456789012345678901234567890 1 5",
};

static void test_bad_lines(void)
{
	struct throttle_table t;
	char line[256];

	for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
		int n = snprintf(line, sizeof(line), "%s\n", bad_lines[i]);
		size_t skipped = throttle_parse(line, (size_t)n, &t);
		if (skipped != 1 || t.count != 0)
			fprintf(stderr, "  not skipped: \"%s\"\n", bad_lines[i]);
		CHECK(skipped == 1);
		CHECK(t.count == 0);
		throttle_table_free(&t);
	}
	/* NUL bytes inside a line */
	static const char nul[] = "i 192.0.2.7\0 1 5\ni 192.0.2.8 1 5\0\nu " H_NED "\0 1 5\n";
	CHECK(throttle_parse(nul, sizeof(nul) - 1, &t) == 3);
	CHECK(t.count == 0);
	throttle_table_free(&t);

	/* bad lines among good ones: the good ones survive, in order */
	char mixed[4096];
	size_t len = 0;
	for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++)
		len += (size_t)snprintf(mixed + len, sizeof(mixed) - len,
					"%s\ni 10.0.0.%zu %zu 7\n", bad_lines[i], i, i + 1);
	CHECK(len < sizeof(mixed));
	CHECK(throttle_parse(mixed, len, &t) == sizeof(bad_lines) / sizeof(bad_lines[0]));
	CHECK(t.count == sizeof(bad_lines) / sizeof(bad_lines[0]));
	CHECK_STR(t.e[3].key, "10.0.0.3");
	CHECK(t.e[3].count == 4);
	throttle_table_free(&t);
}

/* The text cut at every length: the whole lines before the cut parse, the cut one is
 * skipped, never a crash or a wrong value. */
static void test_truncated(void)
{
	size_t n = strlen(valid_text);
	for (size_t cut = 0; cut <= n; cut++) {
		char *copy = xmalloc(cut == 0 ? 1 : cut);
		memcpy(copy, valid_text, cut); /* exact size: ASan sees any overread */
		struct throttle_table t;
		size_t skipped = throttle_parse(copy, cut, &t);
		size_t lines = 0, last_nl = 0;
		for (size_t i = 0; i < cut; i++)
			if (valid_text[i] == '\n') {
				lines++;
				last_nl = i + 1;
			}
		CHECK(t.count == lines);
		CHECK(skipped == (last_nl == cut ? 0u : 1u));
		size_t len;
		char *text = throttle_format(&t, &len);
		CHECK(len == last_nl && memcmp(text, valid_text, len) == 0);
		free(text);
		throttle_table_free(&t);
		free(copy);
	}
}

/* THROTTLE_MAX_ENTRIES lines parse; the line after is skipped; the full table fits the
 * bytes we read back. */
static void test_parse_limit(void)
{
	size_t size = (THROTTLE_MAX_ENTRIES + 1) * 40;
	char *text = xmalloc(size);
	size_t len = 0;
	struct throttle_table t;

	for (unsigned i = 0; i < THROTTLE_MAX_ENTRIES + 1; i++)
		len += (size_t)snprintf(text + len, size - len, "i 10.%u.%u.1 1 %u\n",
					i / 256, i % 256, 1000 + i);
	size_t at_max = len - strlen("i 10.16.0.1 1 5096\n");
	CHECK(throttle_parse(text, at_max, &t) == 0);
	CHECK(t.count == THROTTLE_MAX_ENTRIES);
	throttle_table_free(&t);
	CHECK(throttle_parse(text, len, &t) == 1);
	CHECK(t.count == THROTTLE_MAX_ENTRIES);
	CHECK(entry(&t, THR_IP, "10.16.0.1") == NULL);
	size_t flen;
	char *f = throttle_format(&t, &flen);
	CHECK(flen == at_max);
	CHECK(flen <= THROTTLE_MAX_FILE);
	free(f);
	throttle_table_free(&t);
	free(text);

	/* the longest lines a full table can hold still fit in THROTTLE_MAX_FILE */
	t.count = THROTTLE_MAX_ENTRIES;
	t.e = xcalloc(THROTTLE_MAX_ENTRIES, sizeof(*t.e));
	for (size_t i = 0; i < t.count; i++) {
		t.e[i].kind = THR_GOOD;
		snprintf(t.e[i].key, sizeof(t.e[i].key), "%s/%s", H_NED,
			 "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
		t.e[i].count = 4294967295u;
		t.e[i].last = (time_t)9223372036854775807LL;
	}
	f = throttle_format(&t, &flen);
	CHECK(flen <= THROTTLE_MAX_FILE);
	free(f);
	throttle_table_free(&t);
}

/* A table with n user entries, the oldest first (last = T0 - n + i). */
static void fill_users(struct throttle_table *t, size_t n)
{
	t->count = n;
	t->e = xcalloc(n, sizeof(*t->e));
	for (size_t i = 0; i < n; i++) {
		t->e[i].kind = THR_USER;
		snprintf(t->e[i].key, sizeof(t->e[i].key), "%032zx", i);
		t->e[i].count = 1;
		t->e[i].last = T0 - (time_t)n + (time_t)i;
	}
}

/* A failure from a new address adds two entries (address and subnet). */
static void test_record_limit(void)
{
	struct throttle_policy p = P;
	struct throttle_table t;
	struct netaddr a = A("198.51.100.1");
	char key[40];

	p.window = 100000;
	/* ends at exactly THROTTLE_MAX_ENTRIES: nothing dropped */
	fill_users(&t, THROTTLE_MAX_ENTRIES - 2);
	throttle_table_record(&t, &p, &a, NULL, false, T0);
	CHECK(t.count == THROTTLE_MAX_ENTRIES);
	CHECK(entry(&t, THR_USER, "00000000000000000000000000000000") != NULL);
	CHECK(count_of(&t, THR_IP, "198.51.100.1") == 1);
	CHECK(count_of(&t, THR_NET, "198.51.100.0/24") == 1);
	throttle_table_free(&t);

	/* one past: the oldest entry goes */
	fill_users(&t, THROTTLE_MAX_ENTRIES - 1);
	throttle_table_record(&t, &p, &a, NULL, false, T0);
	CHECK(t.count == THROTTLE_MAX_ENTRIES);
	CHECK(entry(&t, THR_USER, "00000000000000000000000000000000") == NULL);
	CHECK(entry(&t, THR_USER, "00000000000000000000000000000001") != NULL);
	CHECK(count_of(&t, THR_IP, "198.51.100.1") == 1);
	CHECK(count_of(&t, THR_NET, "198.51.100.0/24") == 1);
	throttle_table_free(&t);

	/* full, with a user name too: three new entries push out the three oldest */
	fill_users(&t, THROTTLE_MAX_ENTRIES);
	throttle_table_record(&t, &p, &a, "ned", false, T0);
	CHECK(t.count == THROTTLE_MAX_ENTRIES);
	for (size_t i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "%032zx", i);
		CHECK((entry(&t, THR_USER, key) == NULL) == (i < 3));
	}
	CHECK(count_of(&t, THR_USER, H_NED) == 1);
	CHECK(count_of(&t, THR_IP, "198.51.100.1") == 1);
	/* and the result still formats into what we read back */
	size_t len;
	char *text = throttle_format(&t, &len);
	CHECK(len <= THROTTLE_MAX_FILE);
	struct throttle_table t2;
	CHECK(throttle_parse(text, len, &t2) == 0);
	CHECK(t2.count == THROTTLE_MAX_ENTRIES);
	throttle_table_free(&t2);
	free(text);
	throttle_table_free(&t);
}

/* ---- policy ----------------------------------------------------------------------- */

static void fail(struct throttle_table *t, const struct throttle_policy *p, const char *ip,
		 const char *user, time_t now)
{
	struct netaddr a = A(ip);
	throttle_table_record(t, p, &a, user, false, now);
}

static enum throttle_verdict check(const struct throttle_table *t,
				   const struct throttle_policy *p, const char *ip,
				   const char *user, time_t now)
{
	struct netaddr a = A(ip);
	return throttle_table_check(t, p, &a, user, now);
}

static void test_ip_limit(void)
{
	struct throttle_table t = { 0, NULL };
	char user[16];

	for (int i = 0; i < 4; i++) {
		snprintf(user, sizeof(user), "u%d", i); /* different names: no user limit */
		fail(&t, &P, "192.0.2.7", user, T0 + i);
	}
	CHECK(check(&t, &P, "192.0.2.7", "x", T0 + 10) == THROTTLE_ALLOW);
	fail(&t, &P, "192.0.2.7", "u4", T0 + 10);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == 5);
	CHECK(check(&t, &P, "192.0.2.7", "x", T0 + 10) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "192.0.2.7", NULL, T0 + 10) == THROTTLE_REFUSE);
	/* the dual-stack form of the same client is the same address */
	CHECK(check(&t, &P, "::ffff:192.0.2.7", "x", T0 + 10) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "192.0.2.8", "x", T0 + 10) == THROTTLE_ALLOW);
	CHECK(check(&t, &P, "198.51.100.1", "x", T0 + 10) == THROTTLE_ALLOW);
	/* ip_max 0 disables it */
	struct throttle_policy p = P;
	p.ip_max = 0;
	CHECK(check(&t, &p, "192.0.2.7", "x", T0 + 10) == THROTTLE_ALLOW);
	throttle_table_free(&t);

	/* mapped and plain failures add up in one counter */
	for (int i = 0; i < 5; i++)
		fail(&t, &P, i % 2 ? "::ffff:203.0.113.9" : "203.0.113.9", NULL, T0);
	CHECK(count_of(&t, THR_IP, "203.0.113.9") == 5);
	CHECK(t.count == 2);
	CHECK(check(&t, &P, "203.0.113.9", NULL, T0) == THROTTLE_REFUSE);
	throttle_table_free(&t);

	/* IPv6 address limit */
	for (int i = 0; i < 5; i++)
		fail(&t, &P, "2001:db8::7", NULL, T0);
	CHECK(check(&t, &P, "2001:db8::7", NULL, T0) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "2001:db8::8", NULL, T0) == THROTTLE_ALLOW);
	throttle_table_free(&t);
}

static void test_net_limit(void)
{
	struct throttle_table t = { 0, NULL };
	char ip[64];

	/* 20 failures from 20 addresses of one /24, each below its own limit */
	for (int i = 1; i <= 19; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", i);
		fail(&t, &P, ip, NULL, T0);
	}
	CHECK(check(&t, &P, "192.0.2.200", NULL, T0) == THROTTLE_ALLOW);
	fail(&t, &P, "192.0.2.20", NULL, T0);
	CHECK(count_of(&t, THR_NET, "192.0.2.0/24") == 20);
	CHECK(check(&t, &P, "192.0.2.200", NULL, T0) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "192.0.2.1", NULL, T0) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "192.0.3.1", NULL, T0) == THROTTLE_ALLOW);
	CHECK(check(&t, &P, "192.0.1.255", NULL, T0) == THROTTLE_ALLOW);
	struct throttle_policy p = P;
	p.net_max = 0;
	CHECK(check(&t, &p, "192.0.2.200", NULL, T0) == THROTTLE_ALLOW);
	throttle_table_free(&t);

	/* the same in one /56 */
	for (int i = 0; i < 20; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:0:%x::%x", i * 13, i + 1);
		fail(&t, &P, ip, NULL, T0);
	}
	CHECK(count_of(&t, THR_NET, "2001:db8::/56") == 20);
	CHECK(check(&t, &P, "2001:db8:0:ff::9", NULL, T0) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "2001:db8:0:100::1", NULL, T0) == THROTTLE_ALLOW);
	CHECK(check(&t, &P, "2001:db9::1", NULL, T0) == THROTTLE_ALLOW);
	throttle_table_free(&t);
}

static void test_user_limit(void)
{
	struct throttle_table t = { 0, NULL };
	char ip[64];

	/* 10 failures for ned from 10 networks */
	for (int i = 0; i < 9; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.1", i);
		fail(&t, &P, ip, "ned", T0 + i);
	}
	CHECK(check(&t, &P, "10.0.99.1", "ned", T0 + 20) == THROTTLE_ALLOW);
	fail(&t, &P, "2001:db8::1", "ned", T0 + 20);
	CHECK(count_of(&t, THR_USER, H_NED) == 10);
	CHECK(check(&t, &P, "10.0.99.1", "ned", T0 + 20) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "2001:db8:ffff::1", "ned", T0 + 20) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "10.0.99.1", "other", T0 + 20) == THROTTLE_ALLOW);
	CHECK(check(&t, &P, "10.0.99.1", "Ned", T0 + 20) == THROTTLE_ALLOW);
	CHECK(check(&t, &P, "10.0.99.1", NULL, T0 + 20) == THROTTLE_ALLOW);
	/* an unknown peer still meets the user limit */
	struct netaddr unknown;
	memset(&unknown, 0, sizeof(unknown));
	CHECK(throttle_table_check(&t, &P, &unknown, "ned", T0 + 20) == THROTTLE_REFUSE);
	CHECK(throttle_table_check(&t, &P, NULL, "ned", T0 + 20) == THROTTLE_REFUSE);
	struct throttle_policy p = P;
	p.user_max = 0;
	CHECK(check(&t, &p, "10.0.99.1", "ned", T0 + 20) == THROTTLE_ALLOW);

	/* the user name is stored hashed, never in clear */
	size_t len;
	char *text = throttle_format(&t, &len);
	CHECK(strstr(text, "ned") == NULL);
	CHECK(strstr(text, "u " H_NED " 10 ") != NULL);
	free(text);
	throttle_table_free(&t);
}

/* Someone guessing ned's password must not lock ned out of the addresses ned uses. */
static void test_good_login(void)
{
	struct throttle_table t = { 0, NULL };
	struct netaddr home = A("203.0.113.5");
	char ip[64];

	CHECK(throttle_table_record(&t, &P, &home, "ned", true, T0) == 0);
	CHECK(entry(&t, THR_GOOD, H_NED "/203.0.113.5") != NULL);
	time_t t1 = T0 + 30 * 86400 - 100;
	for (int i = 0; i < 10; i++) {
		snprintf(ip, sizeof(ip), "198.51.%d.1", i);
		fail(&t, &P, ip, "ned", t1);
	}
	CHECK(check(&t, &P, "203.0.113.5", "ned", t1) == THROTTLE_ALLOW);
	CHECK(check(&t, &P, "::ffff:203.0.113.5", "ned", t1) == THROTTLE_ALLOW);
	CHECK(check(&t, &P, "203.0.113.6", "ned", t1) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "198.51.99.1", "ned", t1) == THROTTLE_REFUSE);
	/* the exemption is for ned only */
	for (int i = 0; i < 10; i++)
		fail(&t, &P, "198.51.200.1", "root", t1);
	CHECK(check(&t, &P, "203.0.113.5", "root", t1) == THROTTLE_REFUSE);
	/* the last second of trust, then none */
	CHECK(check(&t, &P, "203.0.113.5", "ned", T0 + 30 * 86400 - 1) == THROTTLE_ALLOW);
	CHECK(check(&t, &P, "203.0.113.5", "ned", T0 + 30 * 86400) == THROTTLE_REFUSE);
	/* trust_days 0: no exemption, and none recorded */
	struct throttle_policy p = P;
	p.trust_days = 0;
	CHECK(check(&t, &p, "203.0.113.5", "ned", t1) == THROTTLE_REFUSE);
	throttle_table_free(&t);
	CHECK(throttle_table_record(&t, &p, &home, "ned", true, T0) == 0);
	CHECK(t.count == 0);
	throttle_table_free(&t);

	/* a trusted address still meets its address and subnet limits */
	throttle_table_record(&t, &P, &home, "ned", true, T0);
	for (int i = 0; i < 5; i++)
		fail(&t, &P, "203.0.113.5", "ned", T0 + 1);
	CHECK(check(&t, &P, "203.0.113.5", "ned", T0 + 1) == THROTTLE_REFUSE);
	throttle_table_free(&t);
	throttle_table_record(&t, &P, &home, "ned", true, T0);
	for (int i = 0; i < 20; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%d", 100 + i);
		fail(&t, &P, ip, "ned", T0 + 1);
	}
	CHECK(check(&t, &P, "203.0.113.5", "ned", T0 + 1) == THROTTLE_REFUSE);
	throttle_table_free(&t);

	/* the good entry expires after trust_days on the next write */
	throttle_table_record(&t, &P, &home, "ned", true, T0);
	fail(&t, &P, "198.51.100.1", "x", T0 + 30 * 86400 - 1);
	CHECK(entry(&t, THR_GOOD, H_NED "/203.0.113.5") != NULL);
	fail(&t, &P, "198.51.100.1", "x", T0 + 30 * 86400);
	CHECK(entry(&t, THR_GOOD, H_NED "/203.0.113.5") == NULL);
	/* a new good login refreshes it */
	throttle_table_record(&t, &P, &home, "ned", true, T0 + 10);
	throttle_table_record(&t, &P, &home, "ned", true, T0 + 20);
	const struct throttle_entry *g = entry(&t, THR_GOOD, H_NED "/203.0.113.5");
	CHECK(g != NULL && g->last == T0 + 20 && g->count == 0);
	throttle_table_free(&t);
}

/* Success clears the address's own counter, not the subnet's nor the user's. */
static void test_success_clears(void)
{
	struct throttle_table t = { 0, NULL };
	struct netaddr a = A("192.0.2.7");

	for (int i = 0; i < 4; i++)
		fail(&t, &P, "192.0.2.7", "ned", T0);
	fail(&t, &P, "192.0.2.9", "root", T0);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == 4);
	CHECK(throttle_table_record(&t, &P, &a, "ned", true, T0 + 1) == 0);
	CHECK(entry(&t, THR_IP, "192.0.2.7") == NULL);
	CHECK(count_of(&t, THR_IP, "192.0.2.9") == 1);
	CHECK(count_of(&t, THR_NET, "192.0.2.0/24") == 5);
	CHECK(count_of(&t, THR_USER, H_NED) == 4);
	CHECK(count_of(&t, THR_USER, H_ROOT) == 1);
	/* the next failure starts the address from 1 again: the base delay */
	CHECK(throttle_table_record(&t, &P, &a, "ned", false, T0 + 2) == 100);
	/* success with an unknown peer records nothing */
	struct netaddr unknown;
	memset(&unknown, 0, sizeof(unknown));
	size_t before = t.count;
	CHECK(throttle_table_record(&t, &P, &unknown, "ned", true, T0 + 3) == 0);
	CHECK(t.count == before);
	throttle_table_free(&t);
}

/* attempt = check + an advance failure in one step; undo takes the advance back. */
static void test_attempt_undo(void)
{
	struct throttle_table t = { 0, NULL };
	struct netaddr a = A("192.0.2.7");
	unsigned d = 0;

	/* the first ip_max attempts are allowed and each is counted at once */
	for (unsigned i = 0; i < P.ip_max; i++) {
		CHECK(throttle_table_attempt(&t, &P, &a, "ned", T0, &d) == THROTTLE_ALLOW);
		CHECK(count_of(&t, THR_IP, "192.0.2.7") == i + 1);
	}
	CHECK(d == 1000);      /* 100 * 2^4, the delay should the 5th attempt fail */
	/* the next is refused and changes nothing */
	CHECK(throttle_table_attempt(&t, &P, &a, "ned", T0, &d) == THROTTLE_REFUSE);
	CHECK(d == 0);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == P.ip_max);
	CHECK(count_of(&t, THR_NET, "192.0.2.0/24") == P.ip_max);
	CHECK(count_of(&t, THR_USER, H_NED) == P.ip_max);
	/* undo (a PAM outage, not the client's doing): one count off each */
	throttle_table_undo(&t, &P, &a, "ned", T0);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == P.ip_max - 1);
	CHECK(count_of(&t, THR_NET, "192.0.2.0/24") == P.ip_max - 1);
	CHECK(count_of(&t, THR_USER, H_NED) == P.ip_max - 1);
	CHECK(throttle_table_attempt(&t, &P, &a, "ned", T0, &d) == THROTTLE_ALLOW);
	throttle_table_free(&t);

	/* a success after an attempt: subnet and user counts are as before the attempt, the
	 * address count is gone, the good login is remembered */
	struct throttle_table u = { 0, NULL };
	fail(&u, &P, "192.0.2.8", "ned", T0);
	CHECK(throttle_table_attempt(&u, &P, &a, "ned", T0, &d) == THROTTLE_ALLOW);
	throttle_table_undo(&u, &P, &a, "ned", T0);
	throttle_table_record(&u, &P, &a, "ned", true, T0);
	CHECK(entry(&u, THR_IP, "192.0.2.7") == NULL);
	CHECK(count_of(&u, THR_NET, "192.0.2.0/24") == 1);
	CHECK(count_of(&u, THR_USER, H_NED) == 1);
	CHECK(entry(&u, THR_GOOD, H_NED "/192.0.2.7") != NULL);
	/* undo of nothing is harmless */
	throttle_table_undo(&u, &P, &a, "root", T0);
	CHECK(count_of(&u, THR_USER, H_ROOT) == 0);
	throttle_table_free(&u);
}

static void test_expiry(void)
{
	struct throttle_table t = { 0, NULL };

	for (int i = 0; i < 5; i++)
		fail(&t, &P, "192.0.2.7", "ned", T0);
	CHECK(check(&t, &P, "192.0.2.7", NULL, T0 + 599) == THROTTLE_REFUSE);
	CHECK(check(&t, &P, "192.0.2.7", NULL, T0 + 600) == THROTTLE_ALLOW);
	/* a clock stepped back counts as now, not as expired */
	CHECK(check(&t, &P, "192.0.2.7", NULL, T0 - 1000) == THROTTLE_REFUSE);
	/* a failure after the window restarts the count; old entries are dropped */
	fail(&t, &P, "198.51.100.1", NULL, T0 + 300);
	CHECK(t.count == 5);
	struct netaddr a = A("192.0.2.7");
	CHECK(throttle_table_record(&t, &P, &a, NULL, false, T0 + 600) == 100);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == 1);
	CHECK(count_of(&t, THR_NET, "192.0.2.0/24") == 1);
	CHECK(entry(&t, THR_USER, H_NED) == NULL);
	CHECK(count_of(&t, THR_IP, "198.51.100.1") == 1);
	CHECK(t.count == 4);
	/* an entry whose window has passed restarts even when not yet pruned */
	struct throttle_table u = { 0, NULL };
	const char *text = "i 192.0.2.7 9 1700000000\n";
	CHECK(throttle_parse(text, strlen(text), &u) == 0);
	struct throttle_policy p = P;
	CHECK(throttle_table_record(&u, &p, &a, NULL, false, T0 + 599) == 1000);
	CHECK(count_of(&u, THR_IP, "192.0.2.7") == 10);
	CHECK(throttle_table_record(&u, &p, &a, NULL, false, T0 + 599 + 600) == 100);
	CHECK(count_of(&u, THR_IP, "192.0.2.7") == 1);
	throttle_table_free(&u);
	/* window 0: nothing ever counts */
	p.window = 0;
	for (int i = 0; i < 10; i++)
		fail(&u, &p, "192.0.2.7", "ned", T0);
	CHECK(check(&u, &p, "192.0.2.7", "ned", T0) == THROTTLE_ALLOW);
	throttle_table_free(&u);
	throttle_table_free(&t);
}

static void test_delay(void)
{
	struct throttle_table t = { 0, NULL };
	struct netaddr a = A("192.0.2.7"), b = A("192.0.2.8");
	static const unsigned expect[] = { 100, 200, 400, 800, 1000, 1000, 1000 };
	struct throttle_policy p = P;

	p.ip_max = 0; /* record keeps counting whatever check would say */
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		CHECK(throttle_table_record(&t, &p, &a, "ned", false, T0) == expect[i]);
	/* the delay follows the address, not the user or the subnet */
	CHECK(throttle_table_record(&t, &p, &b, "ned", false, T0) == 100);
	CHECK(throttle_table_record(&t, &p, &a, "ned", true, T0) == 0);
	/* no address: the user's count */
	CHECK(throttle_table_record(&t, &p, NULL, "ned", false, T0) == 1000);
	CHECK(throttle_table_record(&t, &p, NULL, "fresh", false, T0) == 100);
	CHECK(throttle_table_record(&t, &p, NULL, NULL, false, T0) == 100);
	throttle_table_free(&t);

	p.delay_ms = 0;
	CHECK(throttle_table_record(&t, &p, &a, NULL, false, T0) == 0);
	CHECK(throttle_table_record(&t, &p, &a, NULL, false, T0) == 0);
	throttle_table_free(&t);
	/* a cap below the base (or 0) means no doubling */
	p.delay_ms = 300;
	p.delay_max_ms = 0;
	for (int i = 0; i < 3; i++)
		CHECK(throttle_table_record(&t, &p, &a, NULL, false, T0) == 300);
	throttle_table_free(&t);
	/* a cap that is not a power-of-two multiple, and a huge count */
	p.delay_ms = 3;
	p.delay_max_ms = 4294967295u;
	const char *text = "i 192.0.2.7 4294967294 1700000000\n";
	CHECK(throttle_parse(text, strlen(text), &t) == 0);
	CHECK(throttle_table_record(&t, &p, &a, NULL, false, T0) == 4294967295u);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == 4294967295u);
	CHECK(throttle_table_record(&t, &p, &a, NULL, false, T0) == 4294967295u);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == 4294967295u); /* saturates */
	throttle_table_free(&t);
}

/* ---- the file --------------------------------------------------------------------- */

static char dir[64], path[128];

static void read_table(struct throttle_table *t)
{
	char buf[65536];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd >= 0)
		close(fd);
	t->count = 0;
	t->e = NULL;
	if (n >= 0)
		CHECK(throttle_parse(buf, (size_t)n, t) == 0);
}

static void test_file(void)
{
	struct stat st;
	struct netaddr a = A("192.0.2.7");
	struct throttle_table t;

	/* a missing file: allow, and check creates nothing */
	CHECK(throttle_check(path, &P, &a, "ned", T0) == THROTTLE_ALLOW);
	CHECK(stat(path, &st) == -1 && errno == ENOENT);

	mode_t old = umask(0); /* the file is 0600 whatever the umask */
	unsigned d[6];
	for (int i = 0; i < 6; i++)
		d[i] = throttle_record(path, &P, &a, "ned", false, T0);
	umask(old);
	CHECK(d[0] == 100 && d[1] == 200 && d[4] == 1000 && d[5] == 1000);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600);
	CHECK(st.st_uid == geteuid());
	char lock[160];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	CHECK(stat(lock, &st) == 0 && (st.st_mode & 07777) == 0600);
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	CHECK(stat(tmp, &st) == -1); /* renamed away */
	CHECK(throttle_check(path, &P, &a, "ned", T0) == THROTTLE_REFUSE);
	CHECK(throttle_check(path, &P, &a, "ned", T0 + 600) == THROTTLE_ALLOW);
	read_table(&t);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == 6);
	CHECK(count_of(&t, THR_USER, H_NED) == 6);
	throttle_table_free(&t);

	/* success: the address counter goes, a good entry appears */
	CHECK(throttle_record(path, &P, &a, "ned", true, T0 + 1) == 0);
	read_table(&t);
	CHECK(entry(&t, THR_IP, "192.0.2.7") == NULL);
	CHECK(entry(&t, THR_GOOD, H_NED "/192.0.2.7") != NULL);
	throttle_table_free(&t);

	/* a stale temporary file from a crash is no obstacle */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, "junk", 4) == 4);
	close(fd);
	CHECK(throttle_record(path, &P, &a, "ned", false, T0 + 2) == 100);
	CHECK(stat(tmp, &st) == -1);

	/* bad lines in the file are skipped and dropped on the next write */
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK(fd >= 0 && write(fd, "garbage\ni 10.0.0.1 x 1\n", 23) == 23);
	close(fd);
	CHECK(throttle_record(path, &P, &a, "ned", false, T0 + 3) == 200);
	read_table(&t);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == 2);
	throttle_table_free(&t);
	unlink(path);
}

/* On any file error: check allows (logged), record returns the base delay. */
static void test_file_errors(void)
{
	struct netaddr a = A("192.0.2.7");
	char bad[192];

	snprintf(bad, sizeof(bad), "%s/missing-dir/throttle", dir);
	CHECK(throttle_check(bad, &P, &a, "ned", T0) == THROTTLE_ALLOW);
	for (int i = 0; i < 3; i++)
		CHECK(throttle_record(bad, &P, &a, "ned", false, T0) == 100);
	CHECK(throttle_record(bad, &P, &a, "ned", true, T0) == 0);

	/* the path is a directory */
	snprintf(bad, sizeof(bad), "%s/isdir", dir);
	CHECK(mkdir(bad, 0700) == 0);
	CHECK(throttle_check(bad, &P, &a, "ned", T0) == THROTTLE_ALLOW);
	CHECK(throttle_record(bad, &P, &a, "ned", false, T0) == 100);
	rmdir(bad);
	snprintf(bad, sizeof(bad), "%s/isdir.lock", dir);
	unlink(bad);

	/* a file others may write is not trusted: fail open */
	for (int i = 0; i < 6; i++)
		throttle_record(path, &P, &a, "ned", false, T0);
	CHECK(throttle_check(path, &P, &a, "ned", T0) == THROTTLE_REFUSE);
	CHECK(chmod(path, 0666) == 0);
	CHECK(throttle_check(path, &P, &a, "ned", T0) == THROTTLE_ALLOW);
	CHECK(throttle_record(path, &P, &a, "ned", false, T0) == 100);
	unlink(path);

	/* a symlink is not followed */
	char target[192];
	snprintf(target, sizeof(target), "%s/target", dir);
	int fd = open(target, O_WRONLY | O_CREAT, 0600);
	close(fd);
	CHECK(symlink(target, path) == 0);
	CHECK(throttle_check(path, &P, &a, "ned", T0) == THROTTLE_ALLOW);
	CHECK(throttle_record(path, &P, &a, "ned", false, T0) == 100);
	struct stat st;
	CHECK(stat(target, &st) == 0 && st.st_size == 0);
	unlink(path);
	unlink(target);

	/* a name too long for the lock file */
	char longp[4200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	CHECK(throttle_record(longp, &P, &a, "ned", false, T0) == 100);
	CHECK(throttle_check(longp, &P, &a, "ned", T0) == THROTTLE_ALLOW);
}

/* A process that holds the lock and never lets go (stopped, hung) does not hang logins:
 * record gives up after THROTTLE_LOCK_TIMEOUT_MS, logs, and still returns the delay. */
static void test_stuck_lock(void)
{
	struct throttle_policy p = P;
	char lpath[300];
	int sync[2];
	struct netaddr a = A("203.0.113.9");

	snprintf(lpath, sizeof(lpath), "%s.lock", path);
	CHECK(pipe(sync) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(lpath, O_RDWR | O_CREAT, 0600);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fd == -1 || fcntl(fd, F_SETLK, &fl) == -1)
			_exit(1);
		if (write(sync[1], "x", 1) != 1)
			_exit(1);
		pause();              /* holds the lock until killed */
		_exit(0);
	}
	char ch;
	CHECK(read(sync[0], &ch, 1) == 1);
	CHECK(throttle_record(path, &p, &a, "stuck", false, T0) == p.delay_ms);
	/* it returned while the holder still holds the lock */
	CHECK(waitpid(pid, NULL, WNOHANG) == 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(sync[0]);
	close(sync[1]);
	/* the failure could not be recorded: the address has no count */
	CHECK(throttle_check(path, &p, &a, "stuck", T0) == THROTTLE_ALLOW);
}

/* Parallel connections cannot overshoot the limit: attempts from many processes at once
 * on one address are allowed exactly ip_max times in all. */
static void test_attempt_parallel(void)
{
	enum { PROCS = 4, TRIES = 10 };
	struct throttle_policy p = P;
	pid_t pids[PROCS];
	struct netaddr a = A("192.0.2.77");
	int total = 0;

	unlink(path);
	for (int k = 0; k < PROCS; k++) {
		pids[k] = fork();
		if (pids[k] == 0) {
			int allowed = 0;
			unsigned d;
			for (int i = 0; i < TRIES; i++)
				if (throttle_attempt(path, &p, &a, "ned", T0, &d) == THROTTLE_ALLOW)
					allowed++;
			_exit(allowed);
		}
	}
	for (int k = 0; k < PROCS; k++) {
		int status = -1;
		CHECK(waitpid(pids[k], &status, 0) == pids[k] && WIFEXITED(status));
		total += WEXITSTATUS(status);
	}
	CHECK(total == (int)p.ip_max);
	/* a success takes its advance count back and clears the address */
	unsigned d;
	struct netaddr b = A("192.0.2.78");
	CHECK(throttle_attempt(path, &p, &b, "ned", T0, &d) == THROTTLE_ALLOW);
	throttle_finish(path, &p, &b, "ned", true, T0);
	struct throttle_table t;
	read_table(&t);
	CHECK(entry(&t, THR_IP, "192.0.2.78") == NULL);
	CHECK(count_of(&t, THR_USER, H_NED) == p.ip_max);
	CHECK(entry(&t, THR_GOOD, H_NED "/192.0.2.78") != NULL);
	throttle_table_free(&t);
	unlink(path);
}

/* Processes hammering the same file: every failure is counted once (the lock works). */
#define HAMMER_PROCS 4
#define HAMMER_ROUNDS 150
static void test_hammer(void)
{
	struct throttle_policy p = P;
	pid_t pids[HAMMER_PROCS];

	p.window = 1000000;
	unlink(path);
	for (int k = 0; k < HAMMER_PROCS; k++) {
		pids[k] = fork();
		if (pids[k] == 0) {
			char own[32];
			snprintf(own, sizeof(own), "198.51.100.%d", k + 1);
			struct netaddr shared = A("192.0.2.7"), mine = A(own);
			for (int i = 0; i < HAMMER_ROUNDS; i++) {
				throttle_record(path, &p, &shared, "ned", false, T0 + i);
				throttle_record(path, &p, &mine, "root", false, T0 + i);
				/* interleave reads too: a reader never sees a half file */
				if (throttle_check(path, &p, &shared, "x", T0 + i) !=
				    THROTTLE_REFUSE && i >= 5)
					_exit(3);
			}
			_exit(0);
		}
		CHECK(pids[k] > 0);
	}
	for (int k = 0; k < HAMMER_PROCS; k++) {
		int status = -1;
		CHECK(waitpid(pids[k], &status, 0) == pids[k]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	struct throttle_table t;
	read_table(&t);
	CHECK(count_of(&t, THR_IP, "192.0.2.7") == HAMMER_PROCS * HAMMER_ROUNDS);
	CHECK(count_of(&t, THR_NET, "192.0.2.0/24") == HAMMER_PROCS * HAMMER_ROUNDS);
	CHECK(count_of(&t, THR_USER, H_NED) == HAMMER_PROCS * HAMMER_ROUNDS);
	CHECK(count_of(&t, THR_USER, H_ROOT) == HAMMER_PROCS * HAMMER_ROUNDS);
	CHECK(count_of(&t, THR_NET, "198.51.100.0/24") == HAMMER_PROCS * HAMMER_ROUNDS);
	for (int k = 0; k < HAMMER_PROCS; k++) {
		char own[32];
		snprintf(own, sizeof(own), "198.51.100.%d", k + 1);
		CHECK(count_of(&t, THR_IP, own) == HAMMER_ROUNDS);
	}
	CHECK(t.count == 5 + HAMMER_PROCS);
	throttle_table_free(&t);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
	unlink(path);
}

int main(void)
{
	const char *error = NULL;

	test_round_trip();
	test_bad_lines();
	test_truncated();
	test_parse_limit();
	test_record_limit();
	test_ip_limit();
	test_net_limit();
	test_user_limit();
	test_good_login();
	test_success_clears();
	test_attempt_undo();
	test_expiry();
	test_delay();

	snprintf(dir, sizeof(dir), "/tmp/test_throttle.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/throttle", dir);
	char logpath[128];
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	log_init("test_throttle", false);
	CHECK(log_open(logpath, false, &error) == 0);
	test_file();
	test_file_errors();
	test_hammer();
	test_stuck_lock();
	test_attempt_parallel();
	/* the errors were logged */
	char buf[16384];
	int fd = open(logpath, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	CHECK(strstr(buf, "throttle-error: ") != NULL);
	CHECK(strstr(buf, "action=allow") != NULL);
	CHECK(strstr(buf, "throttle-refused: reason=ip-limit, rip=192.0.2.7") != NULL);
	CHECK(strstr(buf, "=ned") == NULL && strstr(buf, "<ned>") == NULL);
	unlink(logpath);
	char sub[160];
	snprintf(sub, sizeof(sub), "%s.lock", path);
	unlink(sub);
	rmdir(dir);
	return unit_done("throttle");
}
