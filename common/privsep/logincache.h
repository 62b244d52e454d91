/* The cache of verified logins (login_cache_ttl): a login whose user, password and
 * current shadow hash match a fresh entry skips pam_authenticate (yescrypt).  Used only
 * in the PAM child (auth.c): the key and the password never reach the monitor.  See
 * docs/architecture.md, "The login cache". */
#ifndef POSTERN_LOGINCACHE_H
#define POSTERN_LOGINCACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The directory under state_dir (0700 root) holding "key" (the host key, 0600) and one
 * entry file per (service, user), named by a MAC of the two (no name in the listing). */
#define LOGINCACHE_DIR "login-cache"
/* An entry file: magic "PLC1", the creation time (seconds since the epoch, 8 bytes
 * little-endian), HMAC-SHA-256 (32 bytes).  Exactly this size, or it is no entry. */
#define LOGINCACHE_MAGIC "PLC1"
#define LOGINCACHE_MAC 32
#define LOGINCACHE_RECORD (4 + 8 + LOGINCACHE_MAC)
#define LOGINCACHE_KEY 32

struct logincache_entry {
	int64_t created;
	unsigned char mac[LOGINCACHE_MAC];
};

/* Parse an entry file's bytes (hostile input: any length).  0, or -1 if it is not
 * exactly one well-formed record. */
int logincache_parse(const unsigned char *buf, size_t len, struct logincache_entry *e_r);
/* The record's bytes. */
void logincache_format(const struct logincache_entry *e, unsigned char out[LOGINCACHE_RECORD]);
/* Is an entry made at created still fresh at now under ttl?  A date in the future
 * (beyond LOGINCACHE_CLOCK_SKEW_S) is not. */
bool logincache_fresh(int64_t created, int64_t now, unsigned ttl);

struct logincache;
/* Open (and on first use make) state_dir/login-cache and its key: the directory must be
 * a real directory owned by root, mode 0700 (no group or other bits); the key a regular
 * file owned by root, no group or other bits, of LOGINCACHE_KEY bytes.  Anything else:
 * -1 with *error_r, and the login goes the uncached way. */
int logincache_open(const char *state_dir, unsigned ttl, struct logincache **lc_r,
		    const char **error_r);
void logincache_close(struct logincache **lc);

/* shadow_hash: the account's sp_pwdp as it is now.  true if a fresh entry for (service,
 * user) matches user, pass and shadow_hash (constant-time comparison). */
bool logincache_check(struct logincache *lc, const char *service, const char *user,
		      const char *pass, const char *shadow_hash, int64_t now);
/* Write the entry for (service, user) (replaces the old one atomically).  0 or -1. */
int logincache_store(struct logincache *lc, const char *service, const char *user,
		     const char *pass, const char *shadow_hash, int64_t now,
		     const char **error_r);
/* Remove the entry for (service, user), if any. */
void logincache_remove(struct logincache *lc, const char *service, const char *user);

#endif
