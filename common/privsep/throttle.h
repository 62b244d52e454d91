/* Login throttle and pre-login connection cap, shared by the per-connection processes
 * (they share no memory) through one fixed-size table file, state_dir/throttle.map,
 * mmap'd and changed under an fcntl lock.  See the comment at the top of throttle.c. */
#ifndef POSTERN_THROTTLE_H
#define POSTERN_THROTTLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "base/netaddr.h"
#include "base/plimits.h"

/* The table's file name inside state_dir. */
#define THROTTLE_FILE_NAME "throttle.map"

struct throttle_policy {
	unsigned window;          /* seconds a failure counts */
	unsigned ip_max;          /* failures from one IPv4 address or IPv6 /64 before refusal */
	unsigned net_max;         /* from one IPv4 /24 or IPv6 /56; an IPv6 /48 gets
	                             THROTTLE_NET48_FACTOR times as many */
	unsigned user_max;        /* failures for one user name before every answer for it is
	                             slowed to delay_max_ms (never a refusal) */
	unsigned trust_days;      /* a good login makes (user, /24 or /64) a trusted device */
	unsigned delay_ms;        /* delay before a failure reply, doubled per recent failure */
	unsigned delay_max_ms;    /* the cap, and the delay when the throttle cannot count */
	unsigned conn_max;        /* pre-login connections at once per IPv4 address or IPv6
	                             /64; 0 = no cap */
};

enum throttle_verdict {
	THROTTLE_ALLOW,
	THROTTLE_REFUSE,
	THROTTLE_WAIT,            /* table level only: attempts in flight decide it */
};
enum throttle_outcome { THROTTLE_FAIL, THROTTLE_OK, THROTTLE_TEMP };

/* ---- the table image (exposed for unit tests and fuzzing) ------------------------ */

enum throttle_kind {
	THR_FREE = 0,
	THR_A4,                   /* IPv4 address */
	THR_N24,                  /* IPv4 /24 */
	THR_A64,                  /* IPv6 /64 */
	THR_N56,                  /* IPv6 /56 */
	THR_N48,                  /* IPv6 /48 */
	THR_USER,                 /* HMAC of a user name */
	THR_PAIR,                 /* HMAC of (user name, IPv4 address or IPv6 /64) */
	THR_KIND_END
};
#define THROTTLE_KEY 16         /* bytes of a key: an address prefix or a cut HMAC */
#define THROTTLE_SECRET 32

struct throttle_header {
	char magic[8];            /* "PSTNTHR1" */
	uint32_t version;
	uint32_t size;            /* sizeof(struct throttle_table) */
	uint8_t secret[THROTTLE_SECRET];   /* per host: keys user names */
	uint8_t pad[16];
};
struct throttle_count {       /* failures for one key */
	uint8_t kind;             /* enum throttle_kind */
	uint8_t pad[3];
	uint32_t count;
	int64_t last;             /* time of the last failure */
	uint8_t key[THROTTLE_KEY];
};
struct throttle_trust {       /* a trusted device: a good login of (user, /24 or /64) */
	uint8_t used;
	uint8_t pad[7];
	int64_t last;
	uint8_t key[THROTTLE_KEY];
};
struct throttle_flight {      /* a login attempt between its check and its outcome */
	int32_t pid;              /* 0: free */
	uint8_t family;           /* 0 (unknown peer), AF_INET, AF_INET6 */
	uint8_t has_user;
	uint8_t pad[2];
	int64_t start;
	uint8_t addr[16];
	uint8_t user[THROTTLE_KEY];
	uint8_t pair[THROTTLE_KEY];
};
struct throttle_conn {        /* a connection before login */
	int32_t pid;              /* 0: free */
	uint8_t family;
	uint8_t pad[3];
	int64_t start;
	uint8_t src[16];          /* IPv4 address or IPv6 /64 */
};
struct throttle_table {
	struct throttle_header h;
	struct throttle_count count[THROTTLE_COUNT_SLOTS];
	struct throttle_trust trust[THROTTLE_TRUST_SLOTS];
	struct throttle_flight flight[THROTTLE_FLIGHT_SLOTS];
	struct throttle_conn conn[THROTTLE_CONN_SLOTS];
};

/* What the table functions need to know about the world. */
struct throttle_clock {
	time_t now;
	pid_t self;
	bool (*alive)(pid_t pid);
};

/* An attempt between throttle_begin() and throttle_end(). */
struct throttle_ticket {
	int flight;               /* slot in the table, -1 if none */
	pid_t pid;
	unsigned hold_ms;         /* delay before any answer, whatever the outcome */
};

/* A fresh table with this secret. */
void throttle_table_init(struct throttle_table *t, const uint8_t secret[THROTTLE_SECRET]);
/* true if the header is ours (magic, version, size). */
bool throttle_table_valid(const struct throttle_table *t);
/* Clear every slot that is not well formed (the file is ours, but nothing is trusted).
 * Returns the number of slots cleared. */
size_t throttle_table_sanitize(struct throttle_table *t);
/* The same for the conn region only (what the connection cap reads and writes). */
size_t throttle_table_sanitize_conn(struct throttle_table *t);

/* Start an attempt: REFUSE (*reason_r says why), WAIT (attempts in flight would decide
 * it: call again after they end), or ALLOW (recorded in flight in *tk). */
enum throttle_verdict throttle_table_begin(struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		const struct throttle_clock *c, struct throttle_ticket *tk, const char **reason_r);
/* The same decision without changing anything (when the lock cannot be had): never
 * WAIT, an attempt that would wait is allowed. */
enum throttle_verdict throttle_table_peek(const struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		time_t now, const char **reason_r);
/* End an attempt.  Returns the delay in ms before the answer (for FAIL the doubled
 * failure delay; never less than tk->hold_ms). */
unsigned throttle_table_end(struct throttle_table *t, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, const struct throttle_clock *c,
		const struct throttle_ticket *tk, enum throttle_outcome o);
/* Failures that count now for a source (kind THR_A4 ... THR_N48) or a user name
 * (THR_USER), for tests and logs. */
unsigned throttle_table_failures(const struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		enum throttle_kind kind, time_t now);
/* Pre-login connections: ALLOW (*slot_r set, -1 if no cap) or REFUSE. */
enum throttle_verdict throttle_table_conn_enter(struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip,
		const struct throttle_clock *c, int *slot_r);
void throttle_table_conn_leave(struct throttle_table *t, int slot, pid_t pid);

/* ---- the file at path (THROTTLE_FILE_NAME in state_dir), as root ------------------
 * Created 0600 and preallocated if missing.  A lock that cannot be had within
 * THROTTLE_LOCK_TIMEOUT_MS, or any file error, never means "no throttle": the decision
 * is taken from the table without the lock if it can be read (over a limit: refused),
 * and the attempt is slowed to delay_max_ms whatever its outcome (logged). */
enum throttle_verdict throttle_begin(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, struct throttle_ticket *tk);
unsigned throttle_end(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, const struct throttle_ticket *tk,
		enum throttle_outcome o);
/* REFUSE when the source has conn_max pre-login connections already and none of them
 * ends within THROTTLE_CONN_WAIT_MS (logged by the caller).  On a file error: ALLOW, logged (a cap that cannot be kept must not shut
 * everybody out).  *slot_r: pass it to throttle_conn_leave() at login or the end. */
enum throttle_verdict throttle_conn_enter(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, int *slot_r);
void throttle_conn_leave(const char *path, int slot);

#endif
