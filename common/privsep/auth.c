/* PAM and the account policy.  Runs in the root monitor only: the worker hands over a
 * user name and password, which we treat as hostile input. */
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <security/pam_appl.h>
#include "privsep/auth.h"
#include "base/plimits.h"
#include "base/util.h"

struct auth_conv_data {
	const char *user;
	const char *pass;
};

/* Answer PAM's prompts: the password for hidden prompts, the user name for visible ones;
 * informational messages are dropped (there is nobody to show them to). */
static int auth_conv(int num_msg, const struct pam_message **msg,
		     struct pam_response **resp_r, void *appdata)
{
	const struct auth_conv_data *d = appdata;
	struct pam_response *resp;

	if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	resp = calloc((size_t)num_msg, sizeof(*resp));
	if (resp == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < num_msg; i++) {
		const char *answer = NULL;
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			answer = d->pass;
			break;
		case PAM_PROMPT_ECHO_ON:
			answer = d->user;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			break;
		default:
			goto fail;
		}
		if (answer != NULL && (resp[i].resp = strdup(answer)) == NULL)
			goto fail;
	}
	*resp_r = resp;
	return PAM_SUCCESS;
fail:
	for (int i = 0; i < num_msg; i++) {
		if (resp[i].resp != NULL) {
			util_wipe(resp[i].resp, strlen(resp[i].resp));
			free(resp[i].resp);
		}
	}
	free(resp);
	return PAM_CONV_ERR;
}

/* pam_unix and pam_faildelay sleep after a failure.  The throttle owns failure delays
 * (they grow with repeated failures and are the same for every kind of failure), so PAM's
 * own delay is replaced by nothing. */
static void auth_no_delay(int retval, unsigned usec_delay, void *appdata)
{
	(void)retval; (void)usec_delay; (void)appdata;
}

static enum auth_result auth_map(int rc, const char *fail_reason, const char **reason_r)
{
	switch (rc) {
	case PAM_SUCCESS:
		return AUTH_OK;
	case PAM_USER_UNKNOWN:
		*reason_r = "unknown-user";
		return AUTH_FAIL;
	case PAM_AUTH_ERR:
	case PAM_CRED_INSUFFICIENT:
	case PAM_MAXTRIES:
	case PAM_ACCT_EXPIRED:
	case PAM_NEW_AUTHTOK_REQD:
	case PAM_PERM_DENIED:
	case PAM_CRED_EXPIRED:
		*reason_r = fail_reason;
		return AUTH_FAIL;
	default:
		*reason_r = "pam-error";
		return AUTH_TEMPFAIL;
	}
}

enum auth_result auth_pam(const char *service, const char *user, const char *pass,
			  const char *rhost, const char **reason_r)
{
	struct auth_conv_data data = { user, pass };
	struct pam_conv conv = { auth_conv, &data };
	pam_handle_t *pamh = NULL;
	enum auth_result res;
	int rc;

	*reason_r = "pam-error";
	rc = pam_start(service, user, &conv, &pamh);
	if (rc != PAM_SUCCESS)
		return AUTH_TEMPFAIL;
	if (pam_set_item(pamh, PAM_RHOST, rhost) != PAM_SUCCESS ||
	    pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)auth_no_delay) != PAM_SUCCESS) {
		pam_end(pamh, PAM_SYSTEM_ERR);
		return AUTH_TEMPFAIL;
	}
	rc = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	res = auth_map(rc, "password", reason_r);
	if (res == AUTH_OK) {
		/* expired or locked accounts, time and access rules */
		rc = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
		res = auth_map(rc, "account", reason_r);
	}
	if (res == AUTH_OK) {
		rc = pam_setcred(pamh, PAM_ESTABLISH_CRED | PAM_SILENT);
		res = auth_map(rc, "account", reason_r);
	}
	pam_end(pamh, rc | PAM_DATA_SILENT);
	return res;
}

static bool auth_in_list(const char *list, const char *user)
{
	size_t ulen = strlen(user);
	const char *p = list;

	while (*p != '\0') {
		p += strspn(p, " ,\t");
		size_t n = strcspn(p, " ,\t");
		if (n == ulen && n > 0 && memcmp(p, user, n) == 0)
			return true;
		p += n;
	}
	return false;
}

static bool auth_in_group(const struct passwd *pw, const char *group)
{
	struct group *gr = getgrnam(group);
	gid_t groups[256];
	int n = (int)(sizeof(groups) / sizeof(groups[0]));

	if (gr == NULL)
		return false;
	if (pw->pw_gid == gr->gr_gid)
		return true;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1)
		return false; /* more groups than we look at: fail closed */
	for (int i = 0; i < n; i++)
		if (groups[i] == gr->gr_gid)
			return true;
	return false;
}

enum auth_result auth_policy(const struct config *cfg, const struct passwd *pw,
			     const char **reason_r)
{
	*reason_r = "policy";
	if (pw->pw_uid < cfg->min_uid || pw->pw_uid == 0)
		return AUTH_FAIL;
	if (cfg->deny_users != NULL && auth_in_list(cfg->deny_users, pw->pw_name))
		return AUTH_FAIL;
	if (cfg->allow_group != NULL && !auth_in_group(pw, cfg->allow_group))
		return AUTH_FAIL;
	return AUTH_OK;
}
