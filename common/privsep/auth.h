/* PAM, on the root side only (the monitor).  Three results, so that a PAM outage is
 * never reported to the client as a bad password. */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H
#include <pwd.h>
#include "base/config.h"

enum auth_result { AUTH_OK, AUTH_FAIL, AUTH_TEMPFAIL };

/* pam_authenticate + pam_acct_mgmt (expired or locked accounts fail) + pam_setcred, with
 * PAM_RHOST = rhost.  reason_r: short token for the log ("password", "unknown-user",
 * "account", "pam-error"). */
enum auth_result auth_pam(const char *service, const char *user, const char *pass,
			  const char *rhost, const char **reason_r);
/* Account policy: min_uid, allow_group, deny_users.  AUTH_OK or AUTH_FAIL with reason. */
enum auth_result auth_policy(const struct config *cfg, const struct passwd *pw,
			     const char **reason_r);

#endif
