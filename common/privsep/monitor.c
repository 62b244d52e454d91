/* The monitor: root, after the fork.  It holds no copy of the client socket and reads
 * only the worker's messages (msg.c parses them as hostile); it runs the throttle,
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
#include "privsep/msg.h"
#include "privsep/server_int.h"
#include "privsep/throttle.h"
#include "privsep/tls.h"
#include "base/util.h"
#include "privsep/wrap.h"

/* Most login requests the monitor answers on one connection; a worker that asks for
 * more is misbehaving. */
#define MONITOR_MAX_REQUESTS (MAX_AUTH_ATTEMPTS + 2)
/* Log lines a worker may send on one connection before it counts as flooding. */
#define MONITOR_MAX_LOG_LINES 1000

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
/* One AUTH request, its fields copied out of the message (and wiped after use). */
struct monitor_auth_req {
	char method[17];
	char user[AUTH_MAX_USER + 1];
	char pass[AUTH_MAX_PASS + 1];
	const char *tls;            /* a constant from monitor_tls_version() */
};

static enum server_login monitor_auth(struct server_conn *sc, struct monitor_auth_req *m,
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
		 sc->rip_str, sc->lip_str, m->tls);
	*pw_r = pw;
	return LOGIN_OK;
}

/* The TLS version as the worker reported it, mapped onto a fixed set: the worker is not
 * trusted to put free text into the login line. */
static const char *monitor_tls_version(const char *v)
{
	static const char *const known[] = { "TLSv1.2", "TLSv1.3" };

	if (v[0] == '\0')
		return "no";
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(v, known[i]) == 0)
			return known[i];
	return "unknown";
}

static bool monitor_known_method(const char *method)
{
	static const char *const known[] = { "USER", "PLAIN", "LOGIN" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(method, known[i]) == 0)
			return true;
	return false;
}

struct monitor_state {
	struct server_conn *sc;
	int ctl, data;
	pid_t worker;
	pid_t keyproc;              /* the key process, once forked; else -1 */
	int keyfd;                  /* its end of our socketpair */
};

/* The key process: forked from the monitor at the first key operation; it alone reads
 * the private key file, and answers the key operations the monitor has checked (it
 * checks them again) until the monitor closes the socket or kills it.  The monitor
 * itself never holds the key, so neither does the session it becomes after a login,
 * running as the mail user. */
static void __attribute__((noreturn)) monitor_keyproc(struct monitor_state *ms, int fd)
{
	const char *err = "";
	struct msg m, r;

	close(ms->ctl);
	close(ms->data);
	EVP_PKEY *key = tls_key_load(&ms->sc->cfg, ms->sc->ssl_ctx, &err);
	if (key == NULL)
		log_err("tls-config: error=%s, cert=%s, key=%s", err, ms->sc->cfg.tls_cert,
			ms->sc->cfg.tls_key);
	while (msg_recv(fd, &m, -1, &err) == 1 && m.type == MSG_KEY_OP) {
		int rc = tls_key_answer(key, &m, &r, &err);
		if (rc == -1 || msg_send(fd, &r) == -1)
			break;
		msg_wipe(&r);
	}
	tls_key_free(&key);
	_exit(0);
}

static void monitor_keyproc_end(struct monitor_state *ms)
{
	if (ms->keyproc <= 0)
		return;
	close(ms->keyfd);
	(void)kill(ms->keyproc, SIGKILL);   /* it holds nothing to save */
	while (waitpid(ms->keyproc, NULL, 0) == -1 && errno == EINTR)
		;
	ms->keyproc = -1;
	ms->keyfd = -1;
}

/* The key process's answer to m (already checked), or "failed". */
static void monitor_keyproc_ask(struct monitor_state *ms, struct msg *m, struct msg *r)
{
	const char *err;

	if (ms->keyproc <= 0) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
			pid_t pid = fork();
			if (pid == 0) {
				close(sv[0]);
				monitor_keyproc(ms, sv[1]);
			}
			close(sv[1]);
			if (pid > 0) {
				ms->keyproc = pid;
				ms->keyfd = sv[0];
			} else {
				close(sv[0]);
			}
		}
	}
	if (ms->keyproc > 0 && msg_send(ms->keyfd, m) == 0 &&
	    msg_recv(ms->keyfd, r, TLS_MONITOR_TIMEOUT_MS, &err) == 1 &&
	    r->type == MSG_KEY_OP_REPLY)
		return;
	log_err("monitor: no answer from the key process, rip=%s", ms->sc->rip_str);
	msg_init(r, MSG_KEY_OP_REPLY);
	(void)msg_add_u8(r, MSG_KEY_OP_REPLY_STATUS, 1);
}

/* MSG_AUTH: one login attempt.  Answers with MSG_AUTH_REPLY; on LOGIN_OK becomes the
 * session and does not return.  0 or -1 (stop serving this worker). */
static int monitor_on_auth(struct monitor_state *ms, struct msg *m)
{
	struct monitor_auth_req req;
	char tls[33];
	int rc = 0;

	memset(&req, 0, sizeof(req));
	if (msg_get_str(m, MSG_AUTH_MECH, req.method, sizeof(req.method)) == -1 ||
	    msg_get_str(m, MSG_AUTH_AUTHCID, req.user, sizeof(req.user)) == -1 ||
	    msg_get_str(m, MSG_AUTH_SECRET, req.pass, sizeof(req.pass)) == -1 ||
	    msg_get_str(m, MSG_AUTH_TLS_VERSION, tls, sizeof(tls)) == -1 ||
	    !monitor_known_method(req.method) || req.user[0] == '\0') {
		util_wipe(&req, sizeof(req));
		log_err("monitor: malformed AUTH from worker, rip=%s", ms->sc->rip_str);
		return -1;
	}
	req.tls = monitor_tls_version(tls);
	msg_wipe(m);
	struct passwd *pw = NULL;
	int lock_fd = -1;
	enum server_login res = monitor_auth(ms->sc, &req, &pw, &lock_fd);
	util_wipe(req.pass, sizeof(req.pass));
	struct msg r;
	msg_init(&r, MSG_AUTH_REPLY);
	if (msg_add_u8(&r, MSG_AUTH_REPLY_RESULT, (uint8_t)res) == -1 ||
	    (res == LOGIN_OK && msg_add_str(&r, MSG_AUTH_REPLY_USER, pw->pw_name) == -1) ||
	    msg_send(ms->ctl, &r) == -1)
		rc = -1;
	if (rc == 0 && res == LOGIN_OK) {
		char user[AUTH_MAX_USER + 1];
		util_snprintf(user, sizeof(user), "%s", pw->pw_name);
		util_wipe(&req, sizeof(req));
		close(ms->ctl);
		monitor_keyproc_end(ms);
		tls_ctx_free(&ms->sc->ssl_ctx);
		session_start(ms->sc, ms->data, pw, user);
	}
	if (lock_fd != -1)
		close(lock_fd);
	util_wipe(&req, sizeof(req));
	return rc;
}

/* Events only the monitor may log: a worker that sends one is lying (fail2ban acts on
 * auth-failed and auth-throttled). */
static bool monitor_event_reserved(const char *ev)
{
	static const char *const reserved[] = {
		"auth-failed", "auth-throttled", "auth-tempfail", "login", "login-inuse",
		"logout", "refused", "connect", "config-error", "lock-failed", "monitor",
	};

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(ev, reserved[i]) == 0)
			return true;
	return false;
}

/* MSG_LOG: a line from the worker.  The event is a lower-case word not reserved to the
 * monitor; the text has every control byte replaced, so one message is one line. */
static int monitor_on_log(struct monitor_state *ms, struct msg *m)
{
	char event[33], text[1025];
	uint8_t lvl;

	if (msg_get_u8(m, MSG_LOG_LEVEL, &lvl) == -1 || lvl > LOG_LVL_DEBUG ||
	    msg_get_str(m, MSG_LOG_EVENT, event, sizeof(event)) == -1 ||
	    msg_get_str(m, MSG_LOG_TEXT, text, sizeof(text)) == -1)
		return -1;
	bool ok = event[0] >= 'a' && event[0] <= 'z';
	for (const char *p = event; ok && *p != '\0'; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-';
	if (!ok || monitor_event_reserved(event)) {
		char ebuf[LOG_MAX_FIELD + 1];
		log_warn("monitor: worker-log-refused, event=<%s>, rip=%s",
			 log_sanitize(event, strlen(event), ebuf), ms->sc->rip_str);
		return 0;
	}
	for (char *p = text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	log_msg((enum log_level)lvl, "%s: %s", event, text);
	return 0;
}

/* MSG_KEY_OP: one private-key operation of the worker's TLS handshake.  tls_key_answer()
 * checks that it is one TLS needs; monitor_handlers[] allows TLS_MAX_KEY_OPS. */
static int monitor_on_key_op(struct monitor_state *ms, struct msg *m)
{
	struct msg r;
	const char *err = "";
	X509 *cert = ms->sc->ssl_ctx != NULL ? SSL_CTX_get0_certificate(ms->sc->ssl_ctx) : NULL;

	if (tls_key_check(cert != NULL ? X509_get0_pubkey(cert) : NULL, m, &err) == -1) {
		log_err("monitor: key operation refused, error=%s, rip=%s", err, ms->sc->rip_str);
		return -1;
	}
	if (cert == NULL) {
		msg_init(&r, MSG_KEY_OP_REPLY);
		(void)msg_add_u8(&r, MSG_KEY_OP_REPLY_STATUS, 1);
	} else {
		monitor_keyproc_ask(ms, m, &r);
	}
	int rc = msg_send(ms->ctl, &r);
	msg_wipe(&r);
	return rc;
}

/* MSG_TLS_SESS_PUT / GET: resumable TLS 1.3 sessions, kept here and not in the worker. */
static int monitor_on_sess_put(struct monitor_state *ms, struct msg *m)
{
	return tls_sess_put(&ms->sc->cfg, m, time(NULL));
}

static int monitor_on_sess_get(struct monitor_state *ms, struct msg *m)
{
	struct msg r;

	if (tls_sess_get(&ms->sc->cfg, m, time(NULL), &r) == -1)
		return -1;
	int rc = msg_send(ms->ctl, &r);
	msg_wipe(&r);
	return rc;
}

/* What the worker may send, and how often on one connection. */
static const struct monitor_handler {
	enum msg_type type;
	unsigned max;
	int (*handle)(struct monitor_state *ms, struct msg *m);
} monitor_handlers[] = {
	{ MSG_AUTH, MONITOR_MAX_REQUESTS, monitor_on_auth },
	{ MSG_LOG, MONITOR_MAX_LOG_LINES, monitor_on_log },
	{ MSG_KEY_OP, TLS_MAX_KEY_OPS, monitor_on_key_op },
	{ MSG_TLS_SESS_PUT, TLS_MAX_SESSION_PUTS, monitor_on_sess_put },
	{ MSG_TLS_SESS_GET, TLS_MAX_SESSION_GETS, monitor_on_sess_get },
};

void monitor_main(struct server_conn *sc, int ctl, int data, pid_t worker)
{
	struct monitor_state ms = { .sc = sc, .ctl = ctl, .data = data, .worker = worker,
				    .keyproc = -1, .keyfd = -1 };
	unsigned count[sizeof(monitor_handlers) / sizeof(monitor_handlers[0])] = { 0 };
	struct msg m;
	const char *err;

	for (;;) {
		int rc = msg_recv(ctl, &m, -1, &err);
		if (rc == 0)
			break;
		if (rc == -1) {
			log_err("monitor: malformed message from worker, error=%s, rip=%s", err,
				sc->rip_str);
			break;
		}
		size_t i;
		for (i = 0; i < sizeof(monitor_handlers) / sizeof(monitor_handlers[0]); i++)
			if (monitor_handlers[i].type == m.type)
				break;
		if (i == sizeof(monitor_handlers) / sizeof(monitor_handlers[0]) ||
		    ++count[i] > monitor_handlers[i].max) {
			log_err("monitor: unexpected or too many messages from worker, type=%u, "
				"rip=%s", (unsigned)m.type, sc->rip_str);
			break;
		}
		rc = monitor_handlers[i].handle(&ms, &m);
		msg_wipe(&m);
		if (rc == -1)
			break;
	}
	msg_wipe(&m);
	monitor_keyproc_end(&ms);
	tls_ctx_free(&sc->ssl_ctx);
	close(ctl);
	close(data);
	int status;
	while (waitpid(worker, &status, 0) == -1 && errno == EINTR)
		;
	exit(0);
}
