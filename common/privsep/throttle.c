/* Login throttle and pre-login connection cap, shared by all per-connection processes
 * through one table file (state_dir/throttle.map).
 *
 * The file has one fixed size (struct throttle_table, 768 KiB), preallocated with
 * posix_fallocate() when it is created, so a full disk can only stop its creation, never
 * a later write; it is mmap'd and changed under an fcntl lock on the whole file, with a
 * bounded wait.  Nothing is fsync'd: the counts need not survive a reboot.  The header
 * holds a random per-host secret made when the file is made; user names are keyed only
 * as HMAC-SHA-256(secret, name) cut to 16 bytes, so the file holds no name (a mistyped
 * password often lands in the user field) and a name's key cannot be guessed elsewhere.
 *
 * Regions:
 *   count   failures per key: IPv4 address and /24; IPv6 /64, /56 and /48 (an IPv6
 *           host picks any address of its /64, so /64 is "the address"); a user name;
 *           (user, address).  A live count (younger than window, above 0) is never
 *           evicted: when no slot is free, an attempt from a new source is refused (fails
 *           closed), and a user name that cannot be counted slows the attempt to the
 *           maximum delay.
 *   trust   trusted devices: (user, IPv4 /24 or IPv6 /64) with a good login within
 *           trust_days.  A region of their own: failures cannot push them out.
 *   flight  attempts between the check and the outcome (PAM's time), with the owning
 *           pid.  The check counts them: an attempt that would pass the limit only if
 *           some in flight succeed waits for them to end (THROTTLE_WAIT), so N parallel
 *           guesses never overshoot, and N parallel good logins are never refused.  A
 *           flight whose pid is gone (kill(pid, 0)) is a crashed monitor: counted as a
 *           failure.
 *   conn    connections before login, with the owning pid: the per-source cap.
 *
 * Rules: failures from an address, /24, /64, /56 or /48 past their limits refuse the
 * attempt before PAM.  Failures for a user name past user_max never refuse: they slow
 * every answer for that name (success too, so the delay is no oracle) to delay_max_ms,
 * except from the user's trusted devices.  A good login clears only that user's own
 * failures from that address (the (user, address) count, subtracted from the address,
 * its networks and the user), never other users' failures from there.  The failure
 * delay doubles per recent failure from the address.
 *
 * The file belongs to root and is read only by root, but its bytes are still checked:
 * a malformed slot is cleared (throttle_table_sanitize), a bad header makes a new table. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "base/log.h"
#include "base/netaddr.h"
#include "base/plimits.h"
#include "base/util.h"
#include "privsep/throttle.h"

#define THROTTLE_MAGIC "PSTNTHR1"
#define THROTTLE_VERSION 1u
#define THROTTLE_DAY 86400
/* A time further in the future than this is not a clock step: the slot is bogus. */
#define THROTTLE_FUTURE_SLACK 86400
#define THROTTLE_COUNT_MAX UINT32_MAX

_Static_assert(sizeof(struct throttle_header) == 64, "header layout");
_Static_assert(sizeof(struct throttle_count) == 32, "count layout");
_Static_assert(sizeof(struct throttle_trust) == 32, "trust layout");
_Static_assert(sizeof(struct throttle_flight) == 64, "flight layout");
_Static_assert(sizeof(struct throttle_conn) == 32, "conn layout");
_Static_assert(THROTTLE_FLIGHT_SLOTS < 65536 && THROTTLE_CONN_SLOTS < 65536,
	       "slot numbers fit an int");

/* ---- keys ------------------------------------------------------------------------- */

struct throttle_src { uint8_t kind; uint8_t key[THROTTLE_KEY]; unsigned max; };
struct throttle_keys {
	size_t nsrc;                      /* 0: unknown peer */
	struct throttle_src src[3];       /* src[0] is the address (IPv4 or IPv6 /64) */
	bool has_user, has_trust;
	uint8_t user[THROTTLE_KEY], pair[THROTTLE_KEY], trust[THROTTLE_KEY];
};

static void throttle_mask(const uint8_t *addr, unsigned bits, uint8_t out[THROTTLE_KEY])
{
	memset(out, 0, THROTTLE_KEY);
	memcpy(out, addr, bits / 8); /* BOUNDS: bits <= 128 */
	if (bits % 8 != 0)
		out[bits / 8] = (uint8_t)(addr[bits / 8] & (0xff << (8 - bits % 8)));
}

static unsigned throttle_kind_bits(uint8_t kind)
{
	switch (kind) {
	case THR_A4: return 32;
	case THR_N24: return 24;
	case THR_A64: return 64;
	case THR_N56: return 56;
	case THR_N48: return 48;
	default: return 0;
	}
}

static int throttle_kind_family(uint8_t kind)
{
	return kind == THR_A4 || kind == THR_N24 ? AF_INET :
	       kind == THR_A64 || kind == THR_N56 || kind == THR_N48 ? AF_INET6 : 0;
}

static void throttle_src_add(struct throttle_keys *k, uint8_t kind, const uint8_t *addr,
			     unsigned max)
{
	struct throttle_src *s = &k->src[k->nsrc++]; /* BOUNDS: at most 3, see callers */
	s->kind = kind;
	s->max = max;
	throttle_mask(addr, throttle_kind_bits(kind), s->key);
}

static void throttle_make_src(int family, const uint8_t addr[16],
			      const struct throttle_policy *p, struct throttle_keys *k)
{
	k->nsrc = 0;
	if (family == AF_INET) {
		throttle_src_add(k, THR_A4, addr, p->ip_max);
		throttle_src_add(k, THR_N24, addr, p->net_max);
	} else if (family == AF_INET6) {
		unsigned m48 = p->net_max > UINT32_MAX / THROTTLE_NET48_FACTOR ? UINT32_MAX :
			       p->net_max * THROTTLE_NET48_FACTOR;
		throttle_src_add(k, THR_A64, addr, p->ip_max);
		throttle_src_add(k, THR_N56, addr, p->net_max);
		throttle_src_add(k, THR_N48, addr, m48);
	}
}

/* HMAC-SHA-256(secret, domain byte, name, 0, extra) cut to THROTTLE_KEY bytes. */
static bool throttle_mac(const struct throttle_table *t, char domain, const char *user,
			 const uint8_t *extra, size_t extra_len, uint8_t out[THROTTLE_KEY])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	bool ok = false;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t len = 0;

	if (ctx != NULL && EVP_MAC_init(ctx, t->h.secret, sizeof(t->h.secret), params) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)&domain, 1) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)user, strlen(user) + 1) == 1 &&
	    (extra_len == 0 || EVP_MAC_update(ctx, extra, extra_len) == 1) &&
	    EVP_MAC_final(ctx, md, &len, sizeof(md)) == 1 && len >= THROTTLE_KEY) {
		memcpy(out, md, THROTTLE_KEY);
		ok = true;
	}
	util_wipe(md, sizeof(md));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok;
}

static void throttle_make_keys(const struct throttle_table *t, const struct throttle_policy *p,
			       const struct netaddr *ip, const char *user,
			       struct throttle_keys *k)
{
	static const uint8_t zero[16];
	int family = ip != NULL ? ip->family : 0;

	memset(k, 0, sizeof(*k));
	throttle_make_src(family, ip != NULL ? ip->addr : zero, p, k);
	if (user == NULL)
		return;
	if (!throttle_mac(t, 'u', user, NULL, 0, k->user)) {
		log_err("throttle-error: error=<HMAC failed>, action=skip-user-keys");
		return;
	}
	k->has_user = true;
	memcpy(k->pair, k->user, THROTTLE_KEY);
	if (k->nsrc > 0) {
		/* pair: (user, address); trust: (user, IPv4 /24 or IPv6 /64) */
		uint8_t buf[1 + THROTTLE_KEY];
		buf[0] = (uint8_t)k->src[0].kind;
		memcpy(buf + 1, k->src[0].key, THROTTLE_KEY);
		uint8_t tbuf[1 + THROTTLE_KEY];
		const struct throttle_src *ts = family == AF_INET ? &k->src[1] : &k->src[0];
		tbuf[0] = ts->kind;
		memcpy(tbuf + 1, ts->key, THROTTLE_KEY);
		if (throttle_mac(t, 'p', user, buf, sizeof(buf), k->pair) &&
		    throttle_mac(t, 't', user, tbuf, sizeof(tbuf), k->trust))
			k->has_trust = true;
	}
}

/* ---- the table -------------------------------------------------------------------- */

void throttle_table_init(struct throttle_table *t, const uint8_t secret[THROTTLE_SECRET])
{
	memset(t, 0, sizeof(*t));
	memcpy(t->h.magic, THROTTLE_MAGIC, sizeof(t->h.magic));
	t->h.version = THROTTLE_VERSION;
	t->h.size = (uint32_t)sizeof(*t);
	memcpy(t->h.secret, secret, THROTTLE_SECRET);
}

bool throttle_table_valid(const struct throttle_table *t)
{
	return memcmp(t->h.magic, THROTTLE_MAGIC, sizeof(t->h.magic)) == 0 &&
	       t->h.version == THROTTLE_VERSION && t->h.size == (uint32_t)sizeof(*t);
}

static bool throttle_family_ok(uint8_t f, bool unknown_ok)
{
	return f == AF_INET || f == AF_INET6 || (unknown_ok && f == 0);
}

size_t throttle_table_sanitize_conn(struct throttle_table *t)
{
	size_t cleared = 0;

	for (size_t i = 0; i < THROTTLE_CONN_SLOTS; i++) {
		struct throttle_conn *c = &t->conn[i];
		if (c->pid < 0 || (c->pid > 0 && !throttle_family_ok(c->family, false))) {
			memset(c, 0, sizeof(*c));
			cleared++;
		}
	}
	return cleared;
}

size_t throttle_table_sanitize(struct throttle_table *t)
{
	size_t cleared = 0;

	for (size_t i = 0; i < THROTTLE_COUNT_SLOTS; i++) {
		struct throttle_count *c = &t->count[i];
		if (c->kind >= THR_KIND_END) {
			memset(c, 0, sizeof(*c));
			cleared++;
		}
	}
	for (size_t i = 0; i < THROTTLE_TRUST_SLOTS; i++) {
		struct throttle_trust *tr = &t->trust[i];
		if (tr->used > 1) {
			memset(tr, 0, sizeof(*tr));
			cleared++;
		}
	}
	for (size_t i = 0; i < THROTTLE_FLIGHT_SLOTS; i++) {
		struct throttle_flight *f = &t->flight[i];
		if (f->pid < 0 || (f->pid > 0 && (!throttle_family_ok(f->family, true) ||
						  f->has_user > 1))) {
			memset(f, 0, sizeof(*f));
			cleared++;
		}
	}
	return cleared + throttle_table_sanitize_conn(t);
}

static uint64_t throttle_age(int64_t last, time_t now)
{
	return (int64_t)now > last ? (uint64_t)((int64_t)now - last) : 0; /* clock back: 0 */
}

static bool throttle_future(int64_t last, time_t now)
{
	return last > (int64_t)now && (uint64_t)(last - (int64_t)now) > THROTTLE_FUTURE_SLACK;
}

/* Failures of this slot that still count. */
static unsigned throttle_live(const struct throttle_count *c, const struct throttle_policy *p,
			      time_t now)
{
	if (c->kind == THR_FREE || c->kind >= THR_KIND_END || throttle_future(c->last, now) ||
	    throttle_age(c->last, now) >= p->window)
		return 0;
	return c->count;
}

static int throttle_find(const struct throttle_table *t, uint8_t kind, const uint8_t *key)
{
	for (int i = 0; i < THROTTLE_COUNT_SLOTS; i++)
		if (t->count[i].kind == kind && memcmp(t->count[i].key, key, THROTTLE_KEY) == 0)
			return i;
	return -1;
}

static unsigned throttle_failures(const struct throttle_table *t,
				  const struct throttle_policy *p, uint8_t kind,
				  const uint8_t *key, time_t now)
{
	int i = throttle_find(t, kind, key);
	return i < 0 ? 0 : throttle_live(&t->count[i], p, now);
}

/* A slot that may be taken: free, or holding no failure that still counts. */
static bool throttle_evictable(const struct throttle_count *c, const struct throttle_policy *p,
			       time_t now)
{
	return throttle_live(c, p, now) == 0;
}

static int throttle_alloc(struct throttle_table *t, const struct throttle_policy *p,
			  time_t now)
{
	for (int i = 0; i < THROTTLE_COUNT_SLOTS; i++)
		if (throttle_evictable(&t->count[i], p, now))
			return i;
	return -1;
}

static size_t throttle_room(const struct throttle_table *t, const struct throttle_policy *p,
			    time_t now, size_t want)
{
	size_t n = 0;
	for (size_t i = 0; i < THROTTLE_COUNT_SLOTS && n < want; i++)
		if (throttle_evictable(&t->count[i], p, now))
			n++;
	return n;
}

/* One more failure for (kind, key); a count that left the window starts again.
 * Returns the new count, 0 if there was no room (nothing evicted). */
static unsigned throttle_bump(struct throttle_table *t, const struct throttle_policy *p,
			      uint8_t kind, const uint8_t *key, time_t now)
{
	int i = throttle_find(t, kind, key);
	if (i < 0) {
		i = throttle_alloc(t, p, now);
		if (i < 0)
			return 0;
		memset(&t->count[i], 0, sizeof(t->count[i]));
		t->count[i].kind = kind;
		memcpy(t->count[i].key, key, THROTTLE_KEY);
	}
	struct throttle_count *c = &t->count[i];
	if (throttle_live(c, p, now) == 0)
		c->count = 0;
	if (c->count < THROTTLE_COUNT_MAX)
		c->count++;
	c->last = (int64_t)now;
	return c->count;
}

/* n failures fewer for (kind, key); a slot left with none is freed. */
static void throttle_sub(struct throttle_table *t, const struct throttle_policy *p,
			 uint8_t kind, const uint8_t *key, unsigned n, time_t now)
{
	int i = throttle_find(t, kind, key);
	if (i < 0)
		return;
	struct throttle_count *c = &t->count[i];
	unsigned live = throttle_live(c, p, now);
	c->count = live > n ? live - n : 0;
	if (c->count == 0)
		memset(c, 0, sizeof(*c));
}

static unsigned throttle_max_delay(const struct throttle_policy *p)
{
	return p->delay_max_ms > p->delay_ms ? p->delay_max_ms : p->delay_ms;
}

/* delay_ms * 2^(n-1), capped at the maximum delay. */
static unsigned throttle_delay(const struct throttle_policy *p, unsigned n)
{
	if (p->delay_ms == 0)
		return 0;
	uint64_t cap = throttle_max_delay(p);
	uint64_t d = p->delay_ms;
	for (unsigned i = 1; i < n && d < cap; i++)
		d *= 2; /* BOUNDS: d < cap <= UINT32_MAX before, so d < 2^33 */
	return (unsigned)(d < cap ? d : cap);
}

/* Does this attempt in flight share the source key? */
static bool throttle_flight_has(const struct throttle_flight *f, const struct throttle_src *s)
{
	uint8_t key[THROTTLE_KEY];

	if (f->pid <= 0 || f->family != throttle_kind_family(s->kind))
		return false;
	throttle_mask(f->addr, throttle_kind_bits(s->kind), key);
	return memcmp(key, s->key, THROTTLE_KEY) == 0;
}

static unsigned throttle_in_flight(const struct throttle_table *t, const struct throttle_src *s)
{
	unsigned n = 0;
	for (size_t i = 0; i < THROTTLE_FLIGHT_SLOTS; i++)
		if (throttle_flight_has(&t->flight[i], s))
			n++;
	return n;
}

static bool throttle_trusted(const struct throttle_table *t, const struct throttle_policy *p,
			     const struct throttle_keys *k, time_t now)
{
	if (!k->has_trust || p->trust_days == 0)
		return false;
	for (size_t i = 0; i < THROTTLE_TRUST_SLOTS; i++) {
		const struct throttle_trust *tr = &t->trust[i];
		if (tr->used == 1 && memcmp(tr->key, k->trust, THROTTLE_KEY) == 0)
			return !throttle_future(tr->last, now) &&
			       throttle_age(tr->last, now) < (uint64_t)p->trust_days * THROTTLE_DAY;
	}
	return false;
}

static void throttle_trust_add(struct throttle_table *t, const struct throttle_policy *p,
			       const struct throttle_keys *k, time_t now)
{
	int freei = -1;

	if (!k->has_trust || p->trust_days == 0)
		return;
	for (int i = 0; i < THROTTLE_TRUST_SLOTS; i++) {
		struct throttle_trust *tr = &t->trust[i];
		if (tr->used == 1 && memcmp(tr->key, k->trust, THROTTLE_KEY) == 0) {
			tr->last = (int64_t)now;
			return;
		}
		bool expired = tr->used != 1 || throttle_future(tr->last, now) ||
			       throttle_age(tr->last, now) >= (uint64_t)p->trust_days * THROTTLE_DAY;
		if (expired && freei < 0)
			freei = i;
	}
	if (freei < 0) {
		/* Not evicting another's trusted device: this one is simply not recorded. */
		log_warn("throttle-full: region=trust, action=not-trusted");
		return;
	}
	memset(&t->trust[freei], 0, sizeof(t->trust[freei]));
	t->trust[freei].used = 1;
	t->trust[freei].last = (int64_t)now;
	memcpy(t->trust[freei].key, k->trust, THROTTLE_KEY);
}

/* Count a failure on every key of the attempt.  Returns the count that sets the delay
 * (the address's; the user's if the peer is unknown), 0 if a key found no room. */
static unsigned throttle_count_failure(struct throttle_table *t, const struct throttle_policy *p,
				       const struct throttle_keys *k, time_t now)
{
	unsigned n = 1, r;
	bool full = false;

	if (k->has_user) {
		n = r = throttle_bump(t, p, THR_USER, k->user, now);
		full |= r == 0;
		if (k->nsrc > 0)
			full |= throttle_bump(t, p, THR_PAIR, k->pair, now) == 0;
	}
	for (size_t i = k->nsrc; i-- > 0;) {
		r = throttle_bump(t, p, k->src[i].kind, k->src[i].key, now);
		full |= r == 0;
		if (i == 0)
			n = r;
	}
	if (full) {
		log_warn("throttle-full: region=count, action=max-delay");
		return 0;
	}
	return n;
}

/* The failure of an attempt whose monitor died in flight. */
static void throttle_flight_fail(struct throttle_table *t, const struct throttle_policy *p,
				 const struct throttle_flight *f, time_t now)
{
	struct throttle_keys k;

	memset(&k, 0, sizeof(k));
	throttle_make_src(f->family, f->addr, p, &k);
	if (f->has_user == 1) {
		k.has_user = true;
		memcpy(k.user, f->user, THROTTLE_KEY);
		memcpy(k.pair, f->pair, THROTTLE_KEY);
	}
	throttle_count_failure(t, p, &k, now);
}

static void throttle_reclaim_flights(struct throttle_table *t, const struct throttle_policy *p,
				     const struct throttle_clock *c)
{
	for (size_t i = 0; i < THROTTLE_FLIGHT_SLOTS; i++) {
		struct throttle_flight *f = &t->flight[i];
		if (f->pid <= 0)
			continue;
		bool old = throttle_future(f->start, c->now) ||
			   throttle_age(f->start, c->now) > THROTTLE_FLIGHT_MAX_S;
		/* a monitor has one attempt in flight at most: one of ours here is the
		 * leftover of an attempt whose end could not be written */
		bool ours = f->pid == (int32_t)c->self;
		if (!old && !ours && c->alive((pid_t)f->pid))
			continue;
		struct throttle_flight copy = *f;
		memset(f, 0, sizeof(*f));
		throttle_flight_fail(t, p, &copy, c->now);
		log_warn("throttle-reclaim: pid=%ld, reason=%s, action=counted-as-failure",
			 (long)copy.pid, old ? "too-old" : ours ? "left-by-us" : "process-gone");
	}
}

/* Refuse if a source is past its limit; *wait_r if it would be only should attempts in
 * flight fail. */
static enum throttle_verdict throttle_decide(const struct throttle_table *t,
		const struct throttle_policy *p, const struct throttle_keys *k, time_t now,
		bool *wait_r, const char **reason_r)
{
	*wait_r = false;
	*reason_r = NULL;
	for (size_t i = 0; i < k->nsrc; i++) {
		const struct throttle_src *s = &k->src[i];
		if (s->max == 0)
			continue;
		unsigned f = throttle_failures(t, p, s->kind, s->key, now);
		if (f >= s->max) {
			*reason_r = i == 0 ? "ip-limit" : "net-limit";
			return THROTTLE_REFUSE;
		}
		if (wait_r != NULL && (uint64_t)f + throttle_in_flight(t, s) >= s->max)
			*wait_r = true;
	}
	return THROTTLE_ALLOW;
}

enum throttle_verdict throttle_table_peek(const struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		time_t now, const char **reason_r)
{
	struct throttle_keys k;
	bool wait;

	throttle_make_keys(t, p, ip, user, &k);
	return throttle_decide(t, p, &k, now, &wait, reason_r);
}

enum throttle_verdict throttle_table_begin(struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		const struct throttle_clock *c, struct throttle_ticket *tk, const char **reason_r)
{
	struct throttle_keys k;
	bool wait;

	tk->flight = -1;
	tk->pid = c->self;
	tk->hold_ms = 0;
	throttle_reclaim_flights(t, p, c);
	throttle_make_keys(t, p, ip, user, &k);
	if (throttle_decide(t, p, &k, c->now, &wait, reason_r) == THROTTLE_REFUSE)
		return THROTTLE_REFUSE;
	if (wait) {
		*reason_r = "in-flight";
		return THROTTLE_WAIT;
	}
	/* Room to count this attempt's failure: without it, a new source is refused (the
	 * table fails closed), a user name that cannot be counted gets the maximum delay. */
	size_t need_src = 0, need_user = 0;
	for (size_t i = 0; i < k.nsrc; i++)
		if (throttle_find(t, k.src[i].kind, k.src[i].key) < 0)
			need_src++;
	if (k.has_user) {
		need_user += throttle_find(t, THR_USER, k.user) < 0;
		need_user += k.nsrc > 0 && throttle_find(t, THR_PAIR, k.pair) < 0;
	}
	size_t room = throttle_room(t, p, c->now, need_src + need_user);
	if (room < need_src) {
		*reason_r = "table-full";
		return THROTTLE_REFUSE;
	}
	if (room < need_src + need_user) {
		tk->hold_ms = throttle_max_delay(p);
		*reason_r = "table-full";
	}
	if (k.has_user && p->user_max > 0 &&
	    throttle_failures(t, p, THR_USER, k.user, c->now) >= p->user_max &&
	    !throttle_trusted(t, p, &k, c->now)) {
		tk->hold_ms = throttle_max_delay(p);
		*reason_r = "user-limit";
	}
	int slot = -1;
	for (int i = 0; i < THROTTLE_FLIGHT_SLOTS && slot < 0; i++)
		if (t->flight[i].pid == 0)
			slot = i;
	if (slot < 0) {
		*reason_r = "flight-full";
		return THROTTLE_WAIT;
	}
	struct throttle_flight *f = &t->flight[slot];
	memset(f, 0, sizeof(*f));
	f->pid = (int32_t)c->self;
	f->start = (int64_t)c->now;
	if (ip != NULL && k.nsrc > 0) {
		f->family = (uint8_t)ip->family;
		memcpy(f->addr, ip->addr, sizeof(f->addr));
	}
	if (k.has_user) {
		f->has_user = 1;
		memcpy(f->user, k.user, THROTTLE_KEY);
		memcpy(f->pair, k.pair, THROTTLE_KEY);
	}
	tk->flight = slot;
	return THROTTLE_ALLOW;
}

unsigned throttle_table_end(struct throttle_table *t, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, const struct throttle_clock *c,
		const struct throttle_ticket *tk, enum throttle_outcome o)
{
	struct throttle_keys k;
	unsigned delay = tk->hold_ms;

	if (tk->flight >= 0 && tk->flight < THROTTLE_FLIGHT_SLOTS &&
	    t->flight[tk->flight].pid == (int32_t)tk->pid)
		memset(&t->flight[tk->flight], 0, sizeof(t->flight[tk->flight]));
	throttle_make_keys(t, p, ip, user, &k);
	if (o == THROTTLE_FAIL) {
		unsigned n = throttle_count_failure(t, p, &k, c->now);
		unsigned d = n == 0 ? throttle_max_delay(p) : throttle_delay(p, n);
		return d > delay ? d : delay;
	}
	if (o == THROTTLE_OK && k.has_user) {
		/* this user's own failures from this address, and no one else's */
		unsigned n = 0;
		if (k.nsrc > 0) {
			n = throttle_failures(t, p, THR_PAIR, k.pair, c->now);
			throttle_sub(t, p, THR_PAIR, k.pair, UINT32_MAX, c->now);
		}
		if (n > 0) {
			for (size_t i = 0; i < k.nsrc; i++)
				throttle_sub(t, p, k.src[i].kind, k.src[i].key, n, c->now);
			throttle_sub(t, p, THR_USER, k.user, n, c->now);
		}
		throttle_trust_add(t, p, &k, c->now);
	}
	return delay;
}

unsigned throttle_table_failures(const struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		enum throttle_kind kind, time_t now)
{
	struct throttle_keys k;

	throttle_make_keys(t, p, ip, user, &k);
	if (kind == THR_USER || kind == THR_PAIR)
		return k.has_user ? throttle_failures(t, p, (uint8_t)kind,
						      kind == THR_USER ? k.user : k.pair, now) : 0;
	for (size_t i = 0; i < k.nsrc; i++)
		if (k.src[i].kind == kind)
			return throttle_failures(t, p, (uint8_t)kind, k.src[i].key, now);
	return 0;
}

enum throttle_verdict throttle_table_conn_enter(struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip,
		const struct throttle_clock *c, int *slot_r)
{
	struct throttle_keys k;
	unsigned n = 0;
	int freei = -1;

	*slot_r = -1;
	if (p->conn_max == 0 || ip == NULL)
		return THROTTLE_ALLOW;
	throttle_make_src(ip->family, ip->addr, p, &k);
	if (k.nsrc == 0)
		return THROTTLE_ALLOW;
	for (int i = 0; i < THROTTLE_CONN_SLOTS; i++) {
		struct throttle_conn *e = &t->conn[i];
		if (e->pid > 0 && (throttle_future(e->start, c->now) ||
				   throttle_age(e->start, c->now) > THROTTLE_CONN_MAX_S ||
				   !c->alive((pid_t)e->pid)))
			memset(e, 0, sizeof(*e)); /* its process is gone: stale */
		if (e->pid <= 0) {
			if (freei < 0)
				freei = i;
			continue;
		}
		uint8_t key[THROTTLE_KEY];
		if (e->family != throttle_kind_family(k.src[0].kind))
			continue;
		throttle_mask(e->src, throttle_kind_bits(k.src[0].kind), key);
		if (memcmp(key, k.src[0].key, THROTTLE_KEY) == 0)
			n++;
	}
	if (n >= p->conn_max || freei < 0)
		return THROTTLE_REFUSE;
	struct throttle_conn *e = &t->conn[freei];
	memset(e, 0, sizeof(*e));
	e->pid = (int32_t)c->self;
	e->family = (uint8_t)ip->family;
	e->start = (int64_t)c->now;
	memcpy(e->src, k.src[0].key, sizeof(e->src));
	*slot_r = freei;
	return THROTTLE_ALLOW;
}

void throttle_table_conn_leave(struct throttle_table *t, int slot, pid_t pid)
{
	if (slot >= 0 && slot < THROTTLE_CONN_SLOTS && t->conn[slot].pid == (int32_t)pid)
		memset(&t->conn[slot], 0, sizeof(t->conn[slot]));
}

/* ---- the file --------------------------------------------------------------------- */

struct throttle_err { char text[PATH_MAX + 128]; };

static int throttle_fail(struct throttle_err *err, const char *op, const char *path)
{
	int saved = errno;
	if (util_snprintf(err->text, sizeof(err->text), "%s %s: %s", op, path,
			  strerror(saved)) < 0 &&
	    util_snprintf(err->text, sizeof(err->text), "%s: %s", op, strerror(saved)) < 0)
		err->text[0] = '\0';
	errno = saved;
	return -1;
}

static bool throttle_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

struct throttle_map {
	int fd;
	struct throttle_table *t;    /* NULL if not mapped */
	bool locked;
};

enum { MAP_OK, MAP_ERROR, MAP_LOCK_TIMEOUT };

/* Lock the whole file, waiting at most THROTTLE_LOCK_TIMEOUT_MS.  0, or -1 with errno
 * (ETIMEDOUT when the holder did not let go). */
static int throttle_lock(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	uint64_t deadline = util_now_ms() + THROTTLE_LOCK_TIMEOUT_MS;

	while (fcntl(fd, F_SETLK, &fl) == -1) {
		if ((errno == EACCES || errno == EAGAIN || errno == EINTR) &&
		    util_now_ms() < deadline) {
			util_sleep_ms(THROTTLE_LOCK_POLL_MS);
			continue;
		}
		if (errno == EACCES || errno == EAGAIN)
			errno = ETIMEDOUT;
		return -1;
	}
	return 0;
}

static void throttle_unmap(struct throttle_map *m)
{
	if (m->t != NULL)
		munmap(m->t, sizeof(*m->t));
	m->t = NULL;
	if (m->fd >= 0)
		close(m->fd); /* releases the lock */
	m->fd = -1;
}

/* Make a new table in the (locked) file: a new secret, every count gone. */
static int throttle_create(struct throttle_map *m, const char *path, struct throttle_err *err)
{
	uint8_t secret[THROTTLE_SECRET];
	size_t got = 0;

	while (got < sizeof(secret)) {
		ssize_t n = getrandom(secret + got, sizeof(secret) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return throttle_fail(err, "getrandom for", path);
		got += (size_t)n; /* BOUNDS: n <= sizeof(secret) - got */
	}
	throttle_table_init(m->t, secret);
	util_wipe(secret, sizeof(secret));
	log_info("throttle-init: path=%s", path);
	return 0;
}

/* Open, lock and map the table, making it if it is missing or not ours.  MAP_OK;
 * MAP_LOCK_TIMEOUT with m->t mapped read-only if the file is whole (for a decision
 * without the lock) or NULL; MAP_ERROR (err says why, nothing held). */
static int throttle_map(const char *path, struct throttle_map *m, struct throttle_err *err,
			bool conn_only)
{
	struct stat st;
	const size_t size = sizeof(struct throttle_table);

	m->t = NULL;
	m->locked = false;
	m->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (m->fd == -1)
		return throttle_fail(err, "open", path), MAP_ERROR;
	if (fstat(m->fd, &st) == -1) {
		throttle_fail(err, "fstat", path);
		throttle_unmap(m);
		return MAP_ERROR;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		if (util_snprintf(err->text, sizeof(err->text), "%s: not a regular file owned "
				  "by uid %ld and private to it", path, (long)geteuid()) < 0)
			err->text[0] = '\0';
		throttle_unmap(m);
		return MAP_ERROR;
	}
	if (throttle_lock(m->fd) == -1) {
		throttle_fail(err, "lock", path);
		if (errno != ETIMEDOUT) {
			throttle_unmap(m);
			return MAP_ERROR;
		}
		/* the holder is stuck: read what is there, without the lock */
		if (fstat(m->fd, &st) == 0 && (size_t)st.st_size == size) {
			void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, m->fd, 0);
			m->t = p == MAP_FAILED ? NULL : p;
			if (m->t != NULL && !throttle_table_valid(m->t)) {
				munmap(m->t, size);
				m->t = NULL;
			}
		}
		return MAP_LOCK_TIMEOUT;
	}
	m->locked = true;
	if (fstat(m->fd, &st) == -1) {
		throttle_fail(err, "fstat", path);
		throttle_unmap(m);
		return MAP_ERROR;
	}
	bool fresh = (size_t)st.st_size != size;
	if (fresh) {
		/* all the blocks now, so that no later write through the map can meet a full
		 * disk (that would be SIGBUS) */
		int rc = 0;
		if (st.st_size > (off_t)size && ftruncate(m->fd, (off_t)size) == -1)
			rc = errno;
		if (rc == 0)
			rc = posix_fallocate(m->fd, 0, (off_t)size);
		if (rc != 0) {
			errno = rc;
			throttle_fail(err, "allocate", path);
			if (ftruncate(m->fd, 0) == -1) {
				/* nothing more to do: the next opener tries again */
			}
			throttle_unmap(m);
			return MAP_ERROR;
		}
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (p == MAP_FAILED) {
		throttle_fail(err, "mmap", path);
		throttle_unmap(m);
		return MAP_ERROR;
	}
	m->t = p;
	if (fresh || !throttle_table_valid(m->t)) {
		if (!fresh)
			log_warn("throttle-error: path=%s, error=<not a table of this version>, "
				 "action=new-table", path);
		if (throttle_create(m, path, err) < 0) {
			throttle_unmap(m);
			return MAP_ERROR;
		}
	}
	/* The connection cap reads and writes only the conn region: it checks only that.
	 * The other regions are 704 KiB, a page fault per 64 KiB and a sweep of all of it
	 * for every connection, twice (enter and leave). */
	size_t bad = conn_only ? throttle_table_sanitize_conn(m->t) :
				 throttle_table_sanitize(m->t);
	if (bad > 0)
		log_warn("throttle-error: path=%s, error=<bad slots>, cleared=%zu", path, bad);
	return MAP_OK;
}

static const char *throttle_ipstr(const struct netaddr *ip, char *buf, size_t size)
{
	return ip != NULL ? netaddr_str(ip, buf, size) : "unknown";
}

enum throttle_verdict throttle_begin(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, struct throttle_ticket *tk)
{
	uint64_t deadline = util_now_ms() + THROTTLE_WAIT_MS;
	char ipbuf[INET6_ADDRSTRLEN];
	const char *reason = NULL;
	bool logged_wait = false;

	tk->flight = -1;
	tk->pid = getpid();
	tk->hold_ms = 0;
	for (;;) {
		struct throttle_map m;
		struct throttle_err err;
		int rc = throttle_map(path, &m, &err, false);
		if (rc != MAP_OK) {
			/* Fail closed-ish: still refuse what the table (read without the lock)
			 * says is over a limit; let the rest try, at the maximum delay. */
			enum throttle_verdict v = THROTTLE_ALLOW;
			if (m.t != NULL)
				v = throttle_table_peek(m.t, p, ip, user, time(NULL), &reason);
			throttle_unmap(&m);
			tk->hold_ms = throttle_max_delay(p);
			log_err("throttle-error: error=<%s>, action=%s, delay_ms=%u", err.text,
				v == THROTTLE_REFUSE ? "refuse" : "max-delay", tk->hold_ms);
			if (v == THROTTLE_REFUSE)
				log_info("throttle-refused: reason=%s, rip=%s", reason,
					 throttle_ipstr(ip, ipbuf, sizeof(ipbuf)));
			return v;
		}
		struct throttle_clock c = { time(NULL), getpid(), throttle_alive };
		enum throttle_verdict v = throttle_table_begin(m.t, p, ip, user, &c, tk, &reason);
		throttle_unmap(&m);
		if (v == THROTTLE_ALLOW) {
			if (tk->hold_ms > 0)
				log_info("throttle-slow: reason=%s, delay_ms=%u, rip=%s", reason,
					 tk->hold_ms, throttle_ipstr(ip, ipbuf, sizeof(ipbuf)));
			return v;
		}
		if (v == THROTTLE_WAIT && util_now_ms() >= deadline) {
			v = THROTTLE_REFUSE;
			reason = "in-flight-timeout";
		}
		if (v == THROTTLE_REFUSE) {
			log_info("throttle-refused: reason=%s, rip=%s", reason,
				 throttle_ipstr(ip, ipbuf, sizeof(ipbuf)));
			return v;
		}
		if (!logged_wait) {
			log_debug("throttle-wait: reason=%s, rip=%s", reason,
				  throttle_ipstr(ip, ipbuf, sizeof(ipbuf)));
			logged_wait = true;
		}
		/* spread the waiters a little, so that they do not all come back at once */
		util_sleep_ms(THROTTLE_WAIT_POLL_MS + (unsigned)(getpid() % THROTTLE_WAIT_POLL_MS));
	}
}

unsigned throttle_end(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, const struct throttle_ticket *tk,
		enum throttle_outcome o)
{
	struct throttle_map m;
	struct throttle_err err;

	if (throttle_map(path, &m, &err, false) != MAP_OK) {
		throttle_unmap(&m);
		/* The attempt stays in flight until this process ends; then it counts as a
		 * failure, whatever it was. */
		log_err("throttle-error: error=<%s>, action=max-delay, delay_ms=%u", err.text,
			throttle_max_delay(p));
		return throttle_max_delay(p);
	}
	struct throttle_clock c = { time(NULL), getpid(), throttle_alive };
	unsigned d = throttle_table_end(m.t, p, ip, user, &c, tk, o);
	throttle_unmap(&m);
	return d;
}

enum throttle_verdict throttle_conn_enter(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, int *slot_r)
{
	uint64_t deadline = util_now_ms() + THROTTLE_CONN_WAIT_MS;

	*slot_r = -1;
	if (p->conn_max == 0)
		return THROTTLE_ALLOW;
	for (;;) {
		struct throttle_map m;
		struct throttle_err err;
		if (throttle_map(path, &m, &err, true) != MAP_OK) {
			throttle_unmap(&m);
			log_err("throttle-error: error=<%s>, action=no-connection-cap", err.text);
			return THROTTLE_ALLOW;
		}
		struct throttle_clock c = { time(NULL), getpid(), throttle_alive };
		enum throttle_verdict v = throttle_table_conn_enter(m.t, p, ip, &c, slot_r);
		throttle_unmap(&m);
		if (v == THROTTLE_ALLOW || util_now_ms() >= deadline)
			return v;
		util_sleep_ms(THROTTLE_WAIT_POLL_MS + (unsigned)(getpid() % THROTTLE_WAIT_POLL_MS));
	}
}

void throttle_conn_leave(const char *path, int slot)
{
	struct throttle_map m;
	struct throttle_err err;

	if (slot < 0)
		return;
	if (throttle_map(path, &m, &err, true) != MAP_OK) {
		throttle_unmap(&m);
		log_err("throttle-error: error=<%s>, action=left-to-reclaim", err.text);
		return;
	}
	throttle_table_conn_leave(m.t, slot, getpid());
	throttle_unmap(&m);
}
