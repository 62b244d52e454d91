/* PAM and the account policy.  Runs in the root monitor only: the worker hands over a
 * user name and password, which we treat as hostile input.  pam_authenticate and
 * pam_acct_mgmt run in a short-lived child of the monitor (auth_pam): what they leave in
 * memory (pam_unix's buffer of /etc/shadow, yescrypt's megabytes) dies with it, and the
 * session, forked from the monitor later, never holds it.  The monitor itself opens and
 * closes the PAM session (auth_session_*) around the session process.
 *
 * One pam_start() per connection: the monitor starts its PAM handle before it forks the
 * first PAM child (auth_pam_handle), so the child inherits the parsed /etc/pam.d stack
 * and the loaded modules, and the monitor opens the PAM session on the same handle after
 * a login.  Starting PAM separately in the child and in the monitor parsed the stack and
 * loaded every module twice per login (bench/RESULTS.md: about 1.5 ms of CPU).  The
 * monitor's handle never authenticates and never sees a password: pam_start() runs no
 * module code, PAM_USER stays unset until the session (the account's own name then), and
 * what a child's pam_authenticate() changes in its copy of the handle dies with it. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <shadow.h>
#include <time.h>
#include <security/pam_appl.h>
#include "privsep/auth.h"
#include "privsep/logincache.h"
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

/* Reasons the PAM child can report, by index (the pipe carries a number, not a text). */
static const char *const auth_reasons[] = {
	"password", "unknown-user", "account", "pam-error", "no-passwd-entry",
};

static uint8_t auth_reason_index(const char *reason)
{
	for (size_t i = 0; i < sizeof(auth_reasons) / sizeof(auth_reasons[0]); i++)
		if (strcmp(reason, auth_reasons[i]) == 0)
			return (uint8_t)i;
	return 3;  /* pam-error */
}

/* The monitor's PAM handle (see the top of this file): NULL until the first attempt or
 * the session needs it, then the one handle of this connection, ended by
 * auth_session_close() or at exit. */
static pam_handle_t *auth_pamh;
/* No password, no name: what the monitor's handle answers a module that prompts (the
 * session stack needs neither). */
static const struct auth_conv_data auth_nodata = { "", "" };

static pam_handle_t *auth_pam_handle(const char *service, const char *rhost)
{
	struct pam_conv conv = { auth_conv, (void *)&auth_nodata };

	if (auth_pamh != NULL)
		return auth_pamh;
	if (pam_start(service, NULL, &conv, &auth_pamh) != PAM_SUCCESS) {
		auth_pamh = NULL;     /* pam_start may leave a handle it could not finish */
		return NULL;
	}
	if (pam_set_item(auth_pamh, PAM_RHOST, rhost) != PAM_SUCCESS ||
	    pam_set_item(auth_pamh, PAM_FAIL_DELAY, (const void *)auth_no_delay) !=
	    PAM_SUCCESS) {
		pam_end(auth_pamh, PAM_SYSTEM_ERR);
		auth_pamh = NULL;
	}
	return auth_pamh;
}

const char *auth_cache_name(enum auth_cache c)
{
	static const char *const names[] = { "off", "skip", "hit", "miss", "error" };

	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "error";
}

/* The shadow hash of a name the cache may serve: a local shadow entry under exactly that
 * name (also its passwd name: no mapping), holding a crypt hash ("$id$..."; a locked
 * "!..." or a "*" is none).  A copy (pam_unix's own getspnam overwrites the static
 * entry), freed by the caller; NULL if not cacheable. */
static char *auth_cache_hash(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL || strcmp(pw->pw_name, user) != 0)
		return NULL;
	struct spwd *sp = getspnam(user);
	if (sp == NULL || sp->sp_namp == NULL || strcmp(sp->sp_namp, user) != 0 ||
	    sp->sp_pwdp == NULL || sp->sp_pwdp[0] != '$')
		return NULL;
	return strdup(sp->sp_pwdp);
}

static void auth_cache_free(char *hash)
{
	if (hash != NULL) {
		util_wipe(hash, strlen(hash));
		free(hash);
	}
}

/* The PAM conversation and stack, in the child, on its copy of the monitor's handle.
 * canon_r: PAM_USER after the stack (a module may have changed it), through getpwnam,
 * as pw_name.  With the cache on, a matching entry stands in for pam_authenticate (never
 * for pam_acct_mgmt). */
static enum auth_result auth_pam_run(pam_handle_t *pamh, const char *service,
				     const char *user, const char *pass,
				     const char *state_dir, unsigned cache_ttl,
				     char *canon_r, size_t canon_size,
				     enum auth_cache *cache_r, const char **reason_r)
{
	struct auth_conv_data data = { user, pass };
	struct pam_conv conv = { auth_conv, &data };
	struct logincache *lc = NULL;
	char *hash = NULL;
	enum auth_result res;
	bool hit = false;
	int64_t now = (int64_t)time(NULL);
	int rc;

	*reason_r = "pam-error";
	*cache_r = AUTH_CACHE_OFF;
	if (cache_ttl > 0) {
		const char *err;
		*cache_r = AUTH_CACHE_SKIP;
		hash = auth_cache_hash(user);
		if (hash != NULL && pass[0] != '\0') {
			if (logincache_open(state_dir, cache_ttl, &lc, &err) == -1) {
				*cache_r = AUTH_CACHE_ERROR;
			} else {
				hit = logincache_check(lc, service, user, pass, hash, now);
				*cache_r = hit ? AUTH_CACHE_HIT : AUTH_CACHE_MISS;
			}
		}
	}
	if (pam_set_item(pamh, PAM_USER, user) != PAM_SUCCESS ||
	    pam_set_item(pamh, PAM_CONV, &conv) != PAM_SUCCESS) {
		pam_end(pamh, PAM_SYSTEM_ERR);
		logincache_close(&lc);
		auth_cache_free(hash);
		return AUTH_TEMPFAIL;
	}
	rc = hit ? PAM_SUCCESS : pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	res = auth_map(rc, "password", reason_r);
	if (res == AUTH_OK) {
		/* expired or locked accounts, time and access rules: on every login, a
		 * cached one too */
		rc = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
		res = auth_map(rc, "account", reason_r);
	}
	if (res == AUTH_OK) {
		/* The name the stack settled on: a module may map what was typed onto the
		 * account (case, aliases).  From here on only the account's own pw_name. */
		const void *item = NULL;
		struct passwd *pw;
		if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS || item == NULL ||
		    (pw = getpwnam(item)) == NULL ||
		    util_snprintf(canon_r, canon_size, "%s", pw->pw_name) == -1) {
			res = AUTH_TEMPFAIL;
			*reason_r = "no-passwd-entry";
		}
	}
	if (lc != NULL && res == AUTH_OK && !hit && strcmp(canon_r, user) == 0) {
		/* Stored only if the hash is still the one read before the stack ran: a
		 * password verified against a newer hash must not be bound to an older one
		 * (which a later change back would make current again). */
		char *again = auth_cache_hash(user);
		const char *err;
		if (again != NULL && strcmp(again, hash) == 0)
			(void)logincache_store(lc, service, user, pass, hash, now, &err);
		auth_cache_free(again);
	}
	if (lc != NULL && res == AUTH_FAIL)
		logincache_remove(lc, service, user);
	logincache_close(&lc);
	auth_cache_free(hash);
	pam_end(pamh, rc | PAM_DATA_SILENT);
	return res;
}

enum auth_result auth_pam(const char *service, const char *user, const char *pass,
			  const char *rhost, const char *state_dir, unsigned cache_ttl,
			  char *canon_r, size_t canon_size, enum auth_cache *cache_r,
			  const char **reason_r)
{
	int p[2];

	*reason_r = "pam-error";
	*cache_r = AUTH_CACHE_OFF;
	canon_r[0] = '\0';
	pam_handle_t *pamh = auth_pam_handle(service, rhost);
	if (pamh == NULL || canon_size < 2 || pipe2(p, O_CLOEXEC) == -1)
		return AUTH_TEMPFAIL;
	pid_t pid = fork();
	if (pid == -1) {
		close(p[0]);
		close(p[1]);
		return AUTH_TEMPFAIL;
	}
	if (pid == 0) {
		/* The child: PAM reads /etc/shadow (its buffers hold other accounts' hashes)
		 * and yescrypt takes megabytes; all of it ends with this process. */
		unsigned char out[3 + AUTH_MAX_USER];
		char canon[AUTH_MAX_USER + 1];
		const char *reason;
		enum auth_cache cache;
		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		enum auth_result r = auth_pam_run(pamh, service, user, pass, state_dir,
						  cache_ttl, canon, sizeof(canon), &cache,
						  &reason);
		size_t n = r == AUTH_OK ? strlen(canon) : 0;
		out[0] = (uint8_t)r;
		out[1] = auth_reason_index(reason);
		out[2] = (uint8_t)cache;
		memcpy(out + 3, canon, n);        /* BOUNDS: n <= AUTH_MAX_USER */
		_exit(util_write_all(p[1], out, 3 + n) == 0 ? 0 : 1);
	}
	close(p[1]);
	/* Bounded: a PAM module that hangs (a dead LDAP server) costs a temporary failure,
	 * never a monitor stuck for good. */
	unsigned char in[3 + AUTH_MAX_USER + 1];
	size_t got = 0;
	uint64_t deadline = util_now_ms() + AUTH_PAM_TIMEOUT_MS;
	bool timed_out = false;
	for (;;) {
		uint64_t now = util_now_ms();
		if (now >= deadline) {
			timed_out = true;
			break;
		}
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int rc = poll(&pfd, 1, (int)(deadline - now));
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc <= 0) {
			timed_out = rc == 0;
			break;
		}
		ssize_t r = read(p[0], in + got, sizeof(in) - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof(in))
			break;
	}
	close(p[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	int status;
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (timed_out) {
		*reason_r = "pam-timeout";
		return AUTH_TEMPFAIL;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got < 3 ||
	    got > 3 + AUTH_MAX_USER || in[0] > AUTH_TEMPFAIL ||
	    in[1] >= sizeof(auth_reasons) / sizeof(auth_reasons[0]) ||
	    in[2] > AUTH_CACHE_ERROR)
		return AUTH_TEMPFAIL;
	*reason_r = auth_reasons[in[1]];
	*cache_r = (enum auth_cache)in[2];
	enum auth_result res = (enum auth_result)in[0];
	if (res == AUTH_OK) {
		size_t n = got - 3;
		if (n == 0 || n >= canon_size || memchr(in + 3, '\0', n) != NULL) {
			*reason_r = "pam-error";
			return AUTH_TEMPFAIL;
		}
		memcpy(canon_r, in + 3, n);
		canon_r[n] = '\0';
	}
	return res;
}

void auth_end(void)
{
	if (auth_pamh != NULL)
		pam_end(auth_pamh, PAM_SUCCESS);
	auth_pamh = NULL;
}

struct auth_session {
	pam_handle_t *pamh;
	int rc;
	bool cred;
};

/* Every wait is bounded (AUTH_SESSION_TIMEOUT_S): a session module that hangs gets the
 * monitor killed by SIGALRM's default action, not a process held forever. */
static void auth_session_bound(bool on)
{
	if (on)
		signal(SIGALRM, SIG_DFL);
	alarm(on ? AUTH_SESSION_TIMEOUT_S : 0);
}

int auth_session_open(const char *service, const char *user, const char *rhost,
		      struct auth_session **as_r, const char **error_r)
{
	struct auth_session *as = xcalloc(1, sizeof(*as));

	auth_session_bound(true);
	/* The connection's handle (the stack was parsed for the PAM child already), now
	 * the session's: PAM_USER the account's name.  No password: the session stack and
	 * setcred need none; a module that prompts gets an empty answer. */
	as->pamh = auth_pam_handle(service, rhost);
	auth_pamh = NULL;
	as->rc = as->pamh != NULL ? pam_set_item(as->pamh, PAM_USER, user) : PAM_SYSTEM_ERR;
	if (as->rc == PAM_SUCCESS) {
		as->rc = pam_setcred(as->pamh, PAM_ESTABLISH_CRED | PAM_SILENT);
		as->cred = as->rc == PAM_SUCCESS;
	}
	if (as->rc == PAM_SUCCESS)
		as->rc = pam_open_session(as->pamh, PAM_SILENT);
	auth_session_bound(false);
	if (as->rc != PAM_SUCCESS) {
		*error_r = as->pamh != NULL ? pam_strerror(as->pamh, as->rc) : "pam_start";
		if (as->pamh != NULL && as->cred)
			pam_setcred(as->pamh, PAM_DELETE_CRED | PAM_SILENT);
		if (as->pamh != NULL)
			pam_end(as->pamh, as->rc);
		free(as);
		return -1;
	}
	*as_r = as;
	return 0;
}

void auth_session_close(struct auth_session **asp)
{
	struct auth_session *as = *asp;

	if (as == NULL)
		return;
	*asp = NULL;
	auth_session_bound(true);
	as->rc = pam_close_session(as->pamh, PAM_SILENT);
	if (as->cred)
		pam_setcred(as->pamh, PAM_DELETE_CRED | PAM_SILENT);
	pam_end(as->pamh, as->rc);
	auth_session_bound(false);
	free(as);
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
