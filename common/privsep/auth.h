/* PAM, on the root side only (the monitor).  Three results, so that a PAM outage is
 * never reported to the client as a bad password. */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H
#include <pwd.h>
#include "base/config.h"

enum auth_result { AUTH_OK, AUTH_FAIL, AUTH_TEMPFAIL };

/* pam_authenticate + pam_acct_mgmt (expired or locked accounts fail), with PAM_RHOST =
 * rhost, on a copy of the monitor's PAM handle (started at the first call) in a child
 * process that exits after it (its memory holds /etc/shadow's bytes),
 * waited for at most AUTH_PAM_TIMEOUT_MS.  On AUTH_OK canon_r is the account's name:
 * PAM_USER as the stack left it, through getpwnam, as pw_name.  reason_r: short token for
 * the log ("password", "unknown-user", "account", "pam-error", "pam-timeout",
 * "no-passwd-entry"). */
enum auth_result auth_pam(const char *service, const char *user, const char *pass,
			  const char *rhost, char *canon_r, size_t canon_size,
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
