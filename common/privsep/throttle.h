/* Login throttle shared by the per-connection processes (they share no memory): a small
 * text file under state_dir, read and rewritten under an fcntl lock.  Counts recent
 * failures per client address, per subnet (/24, /56) and per user name (stored hashed),
 * and remembers recent good logins (user, address) so that someone guessing a user's
 * password does not lock that user out of the addresses it really uses. */
#ifndef POSTERN_THROTTLE_H
#define POSTERN_THROTTLE_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "base/netaddr.h"

struct throttle_policy {
	unsigned window;          /* seconds a failure counts */
	unsigned ip_max;          /* failures from one address before refusal */
	unsigned net_max;         /* from one /24 or /56 */
	unsigned user_max;        /* for one user name */
	unsigned trust_days;      /* a good login from an address exempts it from the user limit */
	unsigned delay_ms;        /* delay before a failure reply, doubled per recent failure */
	unsigned delay_max_ms;
};

enum throttle_verdict { THROTTLE_ALLOW, THROTTLE_REFUSE };

/* The in-memory table and its file format (exposed for unit tests and fuzzing). */
enum throttle_kind { THR_IP = 'i', THR_NET = 'n', THR_USER = 'u', THR_GOOD = 'g' };
struct throttle_entry {
	char kind;                /* enum throttle_kind */
	char key[80];             /* address, subnet, user hash, or "userhash/address" */
	unsigned count;           /* failures within the window (0 for THR_GOOD) */
	time_t last;              /* time of the last event */
};
struct throttle_table { size_t count; struct throttle_entry *e; /* up to THROTTLE_MAX_ENTRIES */ };

/* Parse the file text; bad lines are skipped (the file is ours, but a parser never
 * trusts).  Returns number of lines skipped. */
size_t throttle_parse(const char *text, size_t len, struct throttle_table *t);
/* Text form of the table; caller frees. */
char *throttle_format(const struct throttle_table *t, size_t *len_r);
void throttle_table_free(struct throttle_table *t);
/* Decisions on a table (pure). */
enum throttle_verdict throttle_table_check(const struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		time_t now);
/* Record an outcome; returns the delay in ms before replying to a failure (0 on success). */
unsigned throttle_table_record(struct throttle_table *t, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, bool success, time_t now);

/* One login attempt, atomically: refuse, or allow and count it as a failure in advance.
 * Checking and counting in one step under the lock means parallel connections cannot
 * all pass the check before any of their failures is written.  *fail_delay_r: the
 * delay before a failure reply, should the attempt fail. */
enum throttle_verdict throttle_table_attempt(struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		time_t now, unsigned *fail_delay_r);
/* Take back an attempt's advance failure (one count off the address, subnet and user). */
void throttle_table_undo(struct throttle_table *t, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, time_t now);

/* The same on the file at path (created 0600 if missing), under a lock; the monitor calls
 * throttle_attempt() before PAM and throttle_finish() after a success (remember the good
 * login) or a temporary failure (not the client's doing); a real failure is already
 * counted.  On any file error they fail open (ALLOW, logged) with the base delay.
 * throttle_check() only reads; throttle_record() counts one outcome directly. */
enum throttle_verdict throttle_attempt(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, time_t now, unsigned *fail_delay_r);
void throttle_finish(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, bool success, time_t now);
enum throttle_verdict throttle_check(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, time_t now);
unsigned throttle_record(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, bool success, time_t now);

#endif
