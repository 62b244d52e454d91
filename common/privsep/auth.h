/* PAM, on the root side only (the monitor).  Three results, so that a PAM outage is
 * never reported to the client as a bad password. */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H
#include <pwd.h>
#include "base/config.h"

enum auth_result { AUTH_OK, AUTH_FAIL, AUTH_TEMPFAIL };

/* pam_authenticate (or a login cache hit) + pam_acct_mgmt (expired or locked accounts fail), with PAM_RHOST =
 * rhost, on a copy of the monitor's PAM handle (started at the first call) in a child
 * process that exits after it (its memory holds /etc/shadow's bytes),
 * waited for at most AUTH_PAM_TIMEOUT_MS.  On AUTH_OK canon_r is the account's name:
 * PAM_USER as the stack left it, through getpwnam, as pw_name.  reason_r: short token for
 * the log ("password", "unknown-user", "account", "pam-error", "pam-timeout",
 * "no-passwd-entry"). */
/* The login cache (logincache.h), consulted and filled in the PAM child when cache_ttl
 * is not 0: what it did, for the monitor's debug line. */
enum auth_cache {
	AUTH_CACHE_OFF,         /* login_cache_ttl = 0 */
	AUTH_CACHE_SKIP,        /* no local shadow crypt hash for the name: not cacheable */
	AUTH_CACHE_HIT,         /* a fresh entry matched: pam_authenticate skipped */
	AUTH_CACHE_MISS,        /* full check; the entry stored if it succeeded */
	AUTH_CACHE_ERROR,       /* the cache could not be used (unsafe directory, ...) */
};
const char *auth_cache_name(enum auth_cache c);
/* With cache_ttl > 0 and a local shadow account whose hash is a crypt hash: a fresh
 * entry of state_dir/login-cache matching (service, user, pass, the current hash)
 * replaces pam_authenticate; pam_acct_mgmt runs on every login all the same.  A full
 * check that succeeds stores the entry, a failure removes it. */
enum auth_result auth_pam(const char *service, const char *user, const char *pass,
			  const char *rhost, const char *state_dir, unsigned cache_ttl,
			  char *canon_r, size_t canon_size, enum auth_cache *cache_r,
			  const char **reason_r);
/* The monitor's PAM handle (one pam_start() per connection, inherited by the PAM child),
 * ended if no session took it over (auth.c). */
void auth_end(void);
/* The PAM session of a login: pam_setcred(ESTABLISH) and pam_open_session in the calling
 * process (the monitor: pam_limits sets its limits, which the session inherits), on the
 * handle auth_pam() started, and at the end pam_close_session and pam_setcred(DELETE).
 * 0, or -1 with *error_r. */
struct auth_session;
int auth_session_open(const char *service, const char *user, const char *rhost,
		      struct auth_session **as_r, const char **error_r);
void auth_session_close(struct auth_session **as);
/* Account policy: min_uid, allow_group, deny_users.  AUTH_OK or AUTH_FAIL with reason. */
enum auth_result auth_policy(const struct config *cfg, const struct passwd *pw,
			     const char **reason_r);

#endif
