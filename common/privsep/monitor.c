/* The monitor: root, after the fork.  It holds no copy of the client socket and reads
 * only the worker's requests (authmsg.c parses them as hostile); it runs the throttle,
 * PAM and the account policy, then becomes the session (session.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "privsep/priv.h"
#include "privsep/server_int.h"
#include "privsep/throttle.h"
#include "privsep/tls.h"
#include "base/util.h"
#include "privsep/wrap.h"

/* Most login requests the monitor answers on one connection; a worker that asks for
 * more is misbehaving. */
#define MONITOR_MAX_REQUESTS (MAX_AUTH_ATTEMPTS + 2)

static const char *monitor_logname(const char *user, char *buf)
{
	/* A name that is no account is often a password typed in the wrong field. */
	if (getpwnam(user) == NULL)
		return "?";
	return log_sanitize(user, strlen(user), buf);
}

static struct throttle_policy monitor_policy(const struct config *cfg)
{
	struct throttle_policy p = {
		.window = cfg->throttle_window,
		.ip_max = cfg->throttle_ip_max,
		.net_max = cfg->throttle_net_max,
		.user_max = cfg->throttle_user_max,
		.trust_days = cfg->throttle_trust_days,
		.delay_ms = cfg->login_fail_delay_ms,
		.delay_max_ms = cfg->login_fail_delay_max_ms,
	};
	return p;
}

/* One session per user at a time for exclusive protocols: an fcntl lock on a file in
 * state_dir, taken by root and kept open (and locked) by the session after it drops
 * privileges.  Returns the fd, -1 if in use, -2 on error. */
static int monitor_lock_user(const struct server_conn *sc, const struct passwd *pw)
{
	char dir[4096], path[4200];

	if (util_snprintf(dir, sizeof(dir), "%s/lock", sc->cfg.state_dir) == -1 ||
	    util_snprintf(path, sizeof(path), "%s/%s.%lu", dir, sc->p->name,
			  (unsigned long)pw->pw_uid) == -1)
		return -2;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -2;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return -2;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(fd, F_SETLK, &fl) == -1) {
		close(fd);
		return (errno == EACCES || errno == EAGAIN) ? -1 : -2;
	}
	return fd;
}

/* Answer one login request.  Returns the reply; on LOGIN_OK *pw_r is the account. */
static enum server_login monitor_auth(struct server_conn *sc, struct authmsg *m,
				      struct passwd **pw_r, int *lock_fd_r)
{
	struct throttle_policy pol = monitor_policy(&sc->cfg);
	char tpath[4200], ubuf[LOG_MAX_FIELD + 1], mbuf[LOG_MAX_FIELD + 1];
	const char *reason = "password";
	uint64_t start = util_now_ms();
	time_t now = time(NULL);
	struct passwd *pw = NULL;
	enum auth_result res;

	log_sanitize(m->method, strlen(m->method), mbuf);
	/* The worker refuses such names already; a worker that sends one anyway is not to be
	 * trusted: the name goes neither to the throttle nor to PAM. */
	if (!config_username_ok(&sc->cfg, m->user, strlen(m->user))) {
		util_wipe(m->pass, sizeof(m->pass));
		log_info("auth-failed: user=<?>, method=%s, reason=bad-username, rip=%s", mbuf,
			 sc->rip_str);
		util_sleep_ms(sc->cfg.login_fail_delay_ms);
		return LOGIN_FAIL;
	}
	if (util_snprintf(tpath, sizeof(tpath), "%s/throttle", sc->cfg.state_dir) == -1)
		return LOGIN_TEMPFAIL;
	unsigned fail_delay;
	if (throttle_attempt(tpath, &pol, &sc->rip, m->user, now, &fail_delay) ==
	    THROTTLE_REFUSE) {
		log_info("auth-throttled: user=<%s>, method=%s, rip=%s",
			 monitor_logname(m->user, ubuf), mbuf, sc->rip_str);
		return LOGIN_THROTTLED;
	}
	res = auth_pam(sc->cfg.pam_service, m->user, m->pass, sc->rip_str, &reason);
	util_wipe(m->pass, sizeof(m->pass));
	if (res == AUTH_OK) {
		pw = getpwnam(m->user);
		if (pw == NULL) {
			res = AUTH_TEMPFAIL;
			reason = "no-passwd-entry";
		} else {
			res = auth_policy(&sc->cfg, pw, &reason);
		}
	}
	if (res == AUTH_TEMPFAIL) {
		/* not the client's doing: the attempt's advance failure is taken back */
		throttle_finish(tpath, &pol, &sc->rip, m->user, false, now);
		log_warn("auth-tempfail: user=<%s>, method=%s, reason=%s, rip=%s",
			 monitor_logname(m->user, ubuf), mbuf, reason, sc->rip_str);
		return LOGIN_TEMPFAIL;
	}
	if (res == AUTH_FAIL) {
		/* pam_unix answers PAM_AUTH_ERR for a name that is no account; say which it was
		 * in the log (never to the client). */
		if (strcmp(reason, "password") == 0 && getpwnam(m->user) == NULL)
			reason = "unknown-user";
		/* Logged now, before the delay, so fail2ban sees it at once. */
		log_info("auth-failed: user=<%s>, method=%s, reason=%s, rip=%s",
			 monitor_logname(m->user, ubuf), mbuf, reason, sc->rip_str);
		/* Every failure takes the same time from the request, whatever PAM did. */
		uint64_t spent = util_now_ms() - start;
		if (fail_delay > spent)
			util_sleep_ms(fail_delay - spent);
		return LOGIN_FAIL;
	}
	throttle_finish(tpath, &pol, &sc->rip, m->user, true, now);
	log_sanitize(m->user, strlen(m->user), ubuf);
	if (sc->p->exclusive) {
		int fd = monitor_lock_user(sc, pw);
		if (fd == -1) {
			log_info("login-inuse: user=<%s>, rip=%s", ubuf, sc->rip_str);
			return LOGIN_INUSE;
		}
		if (fd == -2) {
			log_err("lock-failed: user=<%s>, dir=%s/lock, error=%s", ubuf,
				sc->cfg.state_dir, strerror(errno));
			return LOGIN_TEMPFAIL;
		}
		*lock_fd_r = fd;
	}
	log_info("login: user=<%s>, method=%s, rip=%s, lip=%s, tls=%s", ubuf, mbuf,
		 sc->rip_str, sc->lip_str, m->tls[0] != '\0' ? m->tls : "no");
	*pw_r = pw;
	return LOGIN_OK;
}

/* Read one request frame from the worker: a 4-byte length, then the message.
 * 1 request, 0 worker gone, -1 a malformed request (the worker is not to be trusted). */
static int monitor_read(int sock, struct authmsg *m)
{
	unsigned char buf[AUTHMSG_MAX];
	uint32_t len;

	int rc = util_read_full(sock, &len, 4);
	if (rc != 1)
		return rc == 0 ? 0 : -1;
	len = ntohl(len);
	if (len == 0 || len > sizeof(buf))
		return -1;
	if (util_read_full(sock, buf, len) != 1)
		return -1;
	rc = authmsg_decode(buf, len, m);
	util_wipe(buf, sizeof(buf));
	return rc == 0 ? 1 : -1;
}

void monitor_main(struct server_conn *sc, int sock, pid_t worker)
{
	struct authmsg m;

	for (int i = 0; i < MONITOR_MAX_REQUESTS; i++) {
		int rc = monitor_read(sock, &m);
		if (rc == 0)
			break;
		if (rc == -1) {
			log_err("monitor: malformed request from worker, rip=%s", sc->rip_str);
			break;
		}
		struct passwd *pw = NULL;
		int lock_fd = -1;
		enum server_login res = monitor_auth(sc, &m, &pw, &lock_fd);
		unsigned char reply = (unsigned char)res;
		if (util_write_all(sock, &reply, 1) == -1)
			break;
		if (res == LOGIN_OK) {
			char user[AUTH_MAX_USER + 1];
			memcpy(user, m.user, sizeof(user));
			util_wipe(&m, sizeof(m));
			session_start(sc, sock, pw, user);
		}
		util_wipe(&m, sizeof(m));
	}
	util_wipe(&m, sizeof(m));
	close(sock);
	int status;
	while (waitpid(worker, &status, 0) == -1 && errno == EINTR)
		;
	exit(0);
}

