/* A PAM module for the integration tests only (built into the test's temp dir, never
 * installed).  In the auth stack:
 *   map=FROM:TO    if PAM_USER is FROM, make it TO (what a case-folding or alias module
 *                  does: the daemon must then use TO, the account, everywhere)
 *   pause=PATH     wait while PATH exists (at most 20 s), so a test can look at the
 *                  process that runs the stack while it runs
 * In the session stack:
 *   hang           never return from pam_open_session (a module waiting on a dead LDAP
 *                  or NFS server): the daemon must bound the wait itself
 * Always answers PAM_IGNORE: it decides nothing. */
#include <string.h>
#include <unistd.h>
#include <security/pam_modules.h>

static void ptest_map(pam_handle_t *pamh, const char *arg)
{
	const char *colon = strchr(arg, ':');
	const void *item = NULL;

	if (colon == NULL || pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS ||
	    item == NULL)
		return;
	size_t n = (size_t)(colon - arg);
	if (strlen(item) == n && memcmp(item, arg, n) == 0)
		pam_set_item(pamh, PAM_USER, colon + 1);
}

static void ptest_pause(const char *path)
{
	for (int i = 0; i < 400 && access(path, F_OK) == 0; i++)
		usleep(50000);
}

int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "map=", 4) == 0)
			ptest_map(pamh, argv[i] + 4);
		else if (strncmp(argv[i], "pause=", 6) == 0)
			ptest_pause(argv[i] + 6);
	}
	return PAM_IGNORE;
}

int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags;
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "hang") == 0)
			for (;;)
				pause();
	return PAM_IGNORE;
}

int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}
