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
#include <sys/file.h>
#include <sys/pidfd.h>
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
		.conn_max = cfg->throttle_conn_max,
	};
	return p;
}

/* One session per user at a time for exclusive protocols: a flock() on a file in
 * state_dir, through a read-only descriptor (flock needs no write access, and the
 * session, which inherits the descriptor, gets none to a root-owned file).  The monitor
 * and the session both keep it: the lock lasts while either lives.  Returns the fd, -1
 * if in use, -2 on error. */
static int monitor_lock_user(const struct server_conn *sc, const struct passwd *pw)
{
	char dir[4096], path[4200];

	if (util_snprintf(dir, sizeof(dir), "%s/lock", sc->cfg.state_dir) == -1 ||
	    util_snprintf(path, sizeof(path), "%s/%s.%lu", dir, sc->p->name,
			  (unsigned long)pw->pw_uid) == -1)
		return -2;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -2;
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd == -1)
		return -2;
	struct stat st;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -2;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno;
		close(fd);
		errno = e;
		return e == EWOULDBLOCK ? -1 : -2;
	}
	return fd;
}

/* Sleep until ms have passed since start. */
static void monitor_hold(uint64_t start, unsigned ms)
{
	uint64_t spent = util_now_ms() - start;
	if (ms > spent)
		util_sleep_ms(ms - spent);
}

/* A passwd entry copied out of getpwnam's static storage, which the next lookup
 * overwrites. */
struct monitor_pw {
	struct passwd pw;
	char name[AUTH_MAX_USER + 1];
	char dir[4096];
	char shell[256];
};

static int monitor_pw_copy(const struct passwd *pw, struct monitor_pw *out)
{
	memset(out, 0, sizeof(*out));
	out->pw = *pw;
	if (util_snprintf(out->name, sizeof(out->name), "%s", pw->pw_name) == -1 ||
	    util_snprintf(out->dir, sizeof(out->dir), "%s", pw->pw_dir) == -1 ||
	    util_snprintf(out->shell, sizeof(out->shell), "%s",
			  pw->pw_shell != NULL ? pw->pw_shell : "") == -1)
		return -1;
	out->pw.pw_name = out->name;
	out->pw.pw_dir = out->dir;
	out->pw.pw_shell = out->shell;
	out->pw.pw_passwd = (char *)"x";
	out->pw.pw_gecos = (char *)"";
	return 0;
}

/* One AUTH request, its fields copied out of the message (and wiped after use). */
struct monitor_auth_req {
	char method[17];
	char user[AUTH_MAX_USER + 1];
	char pass[AUTH_MAX_PASS + 1];
	const char *tls;            /* a constant from monitor_tls_version() */
	char cipher[65];            /* checked: [A-Za-z0-9_-] only */
};

/* What a successful login leaves for the session: the account (copied), the lock, the
 * PAM session. */
struct monitor_login {
	struct monitor_pw user;         /* the login account (canonical) */
	int lock_fd;
	struct auth_session *pam;
	char helo[MSG_HELO_MAX + 1];    /* smtp-submit: the client's HELO/EHLO, checked */
	bool esmtp;
};

/* Answer one login request.  Returns the reply; on LOGIN_OK *lg is filled. */
static enum server_login monitor_auth(struct server_conn *sc, struct monitor_auth_req *m,
				      struct monitor_login *lg)
{
	struct throttle_policy pol = monitor_policy(&sc->cfg);
	char tpath[4200], ubuf[LOG_MAX_FIELD + 1], mbuf[LOG_MAX_FIELD + 1];
	char canon[AUTH_MAX_USER + 1];
	const char *reason = "password";
	uint64_t start = util_now_ms();
	struct passwd *pw = NULL;
	struct throttle_ticket tk;
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
	if (util_snprintf(tpath, sizeof(tpath), "%s/" THROTTLE_FILE_NAME,
			  sc->cfg.state_dir) == -1)
		return LOGIN_TEMPFAIL;
	/* The throttle's user key: the account's own name when the typed one already names
	 * it (a case-insensitive NSS maps "NED" to "ned"), else what was typed (a name only
	 * PAM maps is not known before PAM). */
	char tkey[AUTH_MAX_USER + 1];
	pw = getpwnam(m->user);
	util_snprintf(tkey, sizeof(tkey), "%s", pw != NULL ? pw->pw_name : m->user);
	/* refused over a limit; waits while attempts in flight from the address decide it */
	if (throttle_begin(tpath, &pol, &sc->rip, tkey, &tk) == THROTTLE_REFUSE) {
		log_info("auth-throttled: user=<%s>, method=%s, rip=%s",
			 monitor_logname(tkey, ubuf), mbuf, sc->rip_str);
		return LOGIN_THROTTLED;
	}
	enum auth_cache cache;
	res = auth_pam(sc->cfg.pam_service, m->user, m->pass, sc->rip_str, sc->cfg.state_dir,
		       sc->cfg.login_cache_ttl, canon, sizeof(canon), &cache, &reason);
	if (cache != AUTH_CACHE_OFF)
		log_debug("login-cache: user=<%s>, result=%s, rip=%s",
			  monitor_logname(tkey, ubuf), auth_cache_name(cache), sc->rip_str);
	util_wipe(m->pass, sizeof(m->pass));
	pw = NULL;
	if (res == AUTH_OK) {
		/* From here on the account's name, never the typed one: the mailbox path,
		 * %u, the throttle's good-login memory, the log lines. */
		pw = getpwnam(canon);
		if (pw == NULL || monitor_pw_copy(pw, &lg->user) == -1) {
			res = AUTH_TEMPFAIL;
			reason = "no-passwd-entry";
		} else {
			res = auth_policy(&sc->cfg, &lg->user.pw, &reason);
		}
	}
	if (res == AUTH_TEMPFAIL) {
		/* not the client's doing: not counted */
		unsigned hold = throttle_end(tpath, &pol, &sc->rip, tkey, &tk, THROTTLE_TEMP);
		log_warn("auth-tempfail: user=<%s>, method=%s, reason=%s, rip=%s",
			 monitor_logname(tkey, ubuf), mbuf, reason, sc->rip_str);
		monitor_hold(start, hold);
		return LOGIN_TEMPFAIL;
	}
	if (res == AUTH_FAIL) {
		unsigned fail_delay = throttle_end(tpath, &pol, &sc->rip, tkey, &tk,
						   THROTTLE_FAIL);
		/* pam_unix answers PAM_AUTH_ERR for a name that is no account; say which it was
		 * in the log (never to the client). */
		if (strcmp(reason, "password") == 0 && getpwnam(m->user) == NULL)
			reason = "unknown-user";
		/* Logged now, before the delay, so fail2ban sees it at once. */
		log_info("auth-failed: user=<%s>, method=%s, reason=%s, rip=%s",
			 monitor_logname(tkey, ubuf), mbuf, reason, sc->rip_str);
		/* Every failure takes the same time from the request, whatever PAM did. */
		monitor_hold(start, fail_delay);
		return LOGIN_FAIL;
	}
	/* a hold (the user's failures, a throttle that cannot count) delays a success as
	 * much as a failure: no answer comes sooner for the right password */
	unsigned hold = throttle_end(tpath, &pol, &sc->rip, tkey, &tk, THROTTLE_OK);
	const char *user = lg->user.name;
	if (strcmp(tkey, user) != 0) {
		/* PAM mapped the name: the good login is remembered for the account too, and
		 * clears the account's own failures from this address */
		struct throttle_ticket tk2;
		if (throttle_begin(tpath, &pol, &sc->rip, user, &tk2) != THROTTLE_REFUSE) {
			unsigned h2 = throttle_end(tpath, &pol, &sc->rip, user, &tk2, THROTTLE_OK);
			hold = h2 > hold ? h2 : hold;
		}
	}
	log_sanitize(user, strlen(user), ubuf);
	if (sc->p->exclusive) {
		int fd = monitor_lock_user(sc, &lg->user.pw);
		if (fd == -1) {
			log_info("login-inuse: user=<%s>, rip=%s", ubuf, sc->rip_str);
			monitor_hold(start, hold);
			return LOGIN_INUSE;
		}
		if (fd == -2) {
			log_err("lock-failed: user=<%s>, dir=%s/lock, error=%s", ubuf,
				sc->cfg.state_dir, strerror(errno));
			monitor_hold(start, hold);
			return LOGIN_TEMPFAIL;
		}
		lg->lock_fd = fd;
	}
	monitor_hold(start, hold);
	/* The PAM session (pam_limits, pam_systemd, lastlog, ...) of a session that runs as
	 * the login user; opened here, in the monitor, which outlives the session and
	 * closes it. */
	const char *perr;
	if (sc->p->identity == SERVER_ID_LOGIN_USER &&
	    auth_session_open(sc->cfg.pam_service, user, sc->rip_str, &lg->pam, &perr) == -1) {
		log_warn("auth-tempfail: user=<%s>, method=%s, reason=pam-session, error=%s, "
			 "rip=%s", ubuf, mbuf, perr, sc->rip_str);
		if (lg->lock_fd != -1)
			close(lg->lock_fd);
		lg->lock_fd = -1;
		return LOGIN_TEMPFAIL;
	}
	log_info("login: user=<%s>, method=%s, rip=%s, lip=%s, tls=%s, session=%s", ubuf,
		 mbuf, sc->rip_str, sc->lip_str, m->tls, sc->session_id);
	return LOGIN_OK;
}

/* The connection is no longer before login (throttle_conn_max). */
static void monitor_conn_leave(struct server_conn *sc)
{
	char tpath[4200];

	if (sc->conn_slot >= 0 &&
	    util_snprintf(tpath, sizeof(tpath), "%s/" THROTTLE_FILE_NAME,
			  sc->cfg.state_dir) != -1)
		throttle_conn_leave(tpath, sc->conn_slot);
	sc->conn_slot = -1;
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

/* The cipher name as the worker reported it: only for the session's info (and later a
 * Received: header), so only the characters of OpenSSL's names pass. */
static void monitor_cipher(const char *in, char *out, size_t size)
{
	size_t n = strlen(in);
	bool ok = n > 0 && n < size;

	for (size_t i = 0; ok && i < n; i++)
		ok = (in[i] >= 'A' && in[i] <= 'Z') || (in[i] >= 'a' && in[i] <= 'z') ||
		     (in[i] >= '0' && in[i] <= '9') || in[i] == '_' || in[i] == '-';
	if (ok)
		memcpy(out, in, n + 1);   /* BOUNDS: n < size */
	else
		out[0] = '\0';
}

struct monitor_state {
	struct server_conn *sc;
	int ctl, data;
	pid_t worker;
	bool worker_done;               /* its ctl reached EOF or misbehaved */
	unsigned worker_logs, session_logs;
	pid_t keyproc;              /* the key process, once forked; else -1 */
	int keyfd;                  /* its end of our socketpair */
	int sctl;                   /* the session's ctl, while it runs; else -1 */
	/* smtp-submit's local deliveries (MSG_DELIVER): root children, DELIVER_MAX_RUNNING
	 * at once; dq_count ids wait for a slot in the ring dq, the oldest at dq_head. */
	pid_t dpid[DELIVER_MAX_RUNNING];
	int dpfd[DELIVER_MAX_RUNNING];  /* its pidfd, polled to reap it at its end; -1: none
	                                   (then the poll's 100 ms tick reaps it) */
	char dq[DELIVER_MAX_WAITING][MSG_QUEUE_ID_LEN + 1];
	unsigned dq_head, dq_count;
	bool dq_overflowed;             /* logged once per connection */
};

/* The key process: forked from the monitor at the first key operation; it alone reads
 * the private key file, and answers the key operations the monitor has checked (it
 * checks them again) until the monitor closes the socket or kills it.  The monitor
 * itself never holds the key, so neither does the session it becomes after a login,
 * running as the mail user. */
static void __attribute__((noreturn)) monitor_keyproc(struct monitor_state *ms, int fd)
{
	struct tls_error eb;
	const char *err = "";
	struct msg m, r;

	close(ms->ctl);
	close(ms->data);
	EVP_PKEY *key = tls_key_load(&eb, &ms->sc->cfg, ms->sc->ssl_ctx, &err);
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


static int monitor_on_log(struct monitor_state *ms, struct msg *m, bool from_session);

/* The HELO/EHLO argument as the worker reported it: it goes into the session's info and
 * from there into Received: fields, so only printable US-ASCII without spaces passes
 * (the worker's parser allows no more); anything else becomes "". */
static void monitor_helo(const struct msg *m, uint8_t helo_tag, uint8_t esmtp_tag,
			 struct monitor_login *lg)
{
	uint8_t esmtp = 0;
	bool ok = msg_get_str(m, helo_tag, lg->helo, sizeof(lg->helo)) == 0;

	for (const char *p = lg->helo; ok && *p != '\0'; p++)
		ok = *p > 0x20 && *p < 0x7f;
	if (!ok)
		lg->helo[0] = '\0';
	lg->esmtp = msg_get(m, esmtp_tag) != NULL && msg_get_u8(m, esmtp_tag, &esmtp) == 0 &&
		    esmtp == 1 && lg->helo[0] != '\0';
}

/* A queue id from the session: exactly the spool's form (12 characters of Crockford's
 * base32, envelope.h), since it becomes part of a path and of log lines in root's
 * delivery. */
static bool monitor_queue_id_ok(const char *id)
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	size_t n = strlen(id);

	if (n != MSG_QUEUE_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strchr(alphabet, id[i]) == NULL)
			return false;
	return true;
}

/* Slot i's child was reaped. */
static void monitor_delivery_reaped(struct monitor_state *ms, size_t i)
{
	ms->dpid[i] = 0;
	if (ms->dpfd[i] != -1)
		close(ms->dpfd[i]);
	ms->dpfd[i] = -1;
}

/* Reap the delivery children that ended (wait: block for one at least, when any runs),
 * then start waiting ones while a slot is free.  The ids waiting are shared out among
 * the free slots: a child delivers its share one after the other (one fork of the root
 * child per batch, not per message, when messages come faster than they are delivered). */
static void monitor_deliveries(struct monitor_state *ms, bool wait)
{
	struct server_conn *sc = ms->sc;
	for (size_t i = 0; wait && i < DELIVER_MAX_RUNNING; i++) {
		int status;
		if (ms->dpid[i] <= 0)
			continue;
		while (waitpid(ms->dpid[i], &status, 0) == -1 && errno == EINTR)
			;
		monitor_delivery_reaped(ms, i);
		break;
	}
	size_t free_slots = 0;
	for (size_t i = 0; i < DELIVER_MAX_RUNNING; i++) {
		int status;
		if (ms->dpid[i] > 0 && waitpid(ms->dpid[i], &status, WNOHANG) == ms->dpid[i])
			monitor_delivery_reaped(ms, i);
		free_slots += ms->dpid[i] == 0;
	}
	for (size_t i = 0; i < DELIVER_MAX_RUNNING && ms->dq_count > 0 && free_slots > 0; i++) {
		if (ms->dpid[i] != 0)
			continue;
		/* BOUNDS: 1 <= share <= dq_count <= DELIVER_MAX_WAITING */
		unsigned share = (ms->dq_count + (unsigned)free_slots - 1) / (unsigned)free_slots;
		unsigned first = ms->dq_head;
		free_slots--;
		ms->dq_head = (ms->dq_head + share) % DELIVER_MAX_WAITING;
		ms->dq_count -= share;
		pid_t pid = fork();
		if (pid == 0) {
			/* root, for server_proto.deliver alone: nothing of the connection */
			if (ms->sctl != -1)
				close(ms->sctl);
			close(ms->ctl);
			if (ms->data != -1)
				close(ms->data);
			for (size_t k = 0; k < DELIVER_MAX_RUNNING; k++)
				if (ms->dpfd[k] != -1)
					close(ms->dpfd[k]);
			signal(SIGPIPE, SIG_DFL);
			int code = 0;
			for (unsigned k = 0; k < share; k++)
				if (sc->p->deliver(&sc->cfg,
						   ms->dq[(first + k) % DELIVER_MAX_WAITING]) != 0)
					code = 1;
			_exit(code);
		}
		if (pid == -1) {
			log_err("monitor: fork for delivery of %s: %s, rip=%s", ms->dq[first],
				strerror(errno), sc->rip_str);
		} else {
			ms->dpid[i] = pid;
			ms->dpfd[i] = pidfd_open(pid, 0);
		}
	}
}

/* MSG_DELIVER from the session: queue the id for a root child.  -1: a malformed
 * request (the session is not to be trusted any more). */
static int monitor_on_deliver(struct monitor_state *ms, const struct msg *m)
{
	char id[MSG_QUEUE_ID_MAX + 1];

	if (ms->sc->p->deliver == NULL || msg_get_str(m, MSG_DELIVER_ID, id, sizeof(id)) == -1 ||
	    !monitor_queue_id_ok(id))
		return -1;
	monitor_deliveries(ms, false);          /* reap finished ones: free slots */
	if (ms->dq_count >= DELIVER_MAX_WAITING) {
		if (!ms->dq_overflowed)
			log_warn("monitor: deliver-deferred, reason=too-many-waiting, rip=%s, "
				 "action=queue-run", ms->sc->rip_str);
		ms->dq_overflowed = true;
		return 0;
	}
	memcpy(ms->dq[(ms->dq_head + ms->dq_count) % DELIVER_MAX_WAITING], id,
	       MSG_QUEUE_ID_LEN + 1);
	ms->dq_count++;
	monitor_deliveries(ms, false);
	return 0;
}

/* The account the session runs as, by the daemon's identity policy. */
static int monitor_session_account(const struct server_conn *sc, const struct monitor_login *lg,
				   struct monitor_pw *out)
{
	if (sc->p->identity == SERVER_ID_LOGIN_USER) {
		*out = lg->user;
		out->pw.pw_name = out->name;
		out->pw.pw_dir = out->dir;
		out->pw.pw_shell = out->shell;
		return 0;
	}
	struct passwd *pw = sc->cfg.spool_user != NULL ? getpwnam(sc->cfg.spool_user) : NULL;
	if (pw == NULL || pw->pw_uid == 0 || monitor_pw_copy(pw, out) == -1) {
		log_err("session: spool_user=%s: %s", sc->cfg.spool_user != NULL ?
			sc->cfg.spool_user : "", pw == NULL ? "no such user" : "must not be root");
		return -1;
	}
	return 0;
}

/* Read what the worker and the session send while the session runs: log lines only.
 * Returns when the session's ctl closes (it ended). */
static void monitor_supervise(struct monitor_state *ms, int sctl)
{
	struct msg m;
	const char *err;

	for (;;) {
		struct pollfd pfd[2 + DELIVER_MAX_RUNNING] = {
			{ .fd = sctl, .events = POLLIN },
			{ .fd = ms->worker_done ? -1 : ms->ctl, .events = POLLIN },
		};
		bool running = false, tick = false;
		for (size_t i = 0; i < DELIVER_MAX_RUNNING; i++) {
			running |= ms->dpid[i] > 0;
			tick |= ms->dpid[i] > 0 && ms->dpfd[i] == -1;
			/* a pidfd is readable when its child ended: reaped at once, its slot
			 * free for the next waiting messages */
			pfd[2 + i].fd = ms->dpid[i] > 0 ? ms->dpfd[i] : -1;
			pfd[2 + i].events = POLLIN;
		}
		/* a delivery child without a pidfd is reaped within this much of its end */
		int rc = poll(pfd, 2 + DELIVER_MAX_RUNNING, tick ? 100 : -1);
		int poll_errno = errno;
		if (running)
			monitor_deliveries(ms, false);
		if (rc == -1) {
			if (poll_errno == EINTR)
				continue;
			return;
		}
		if (pfd[1].revents != 0) {
			rc = msg_recv(ms->ctl, &m, -1, &err);
			if (rc != 1 || m.type != MSG_LOG ||
			    monitor_on_log(ms, &m, false) == -1)
				ms->worker_done = true;
			msg_wipe(&m);
		}
		if (pfd[0].revents != 0) {
			rc = msg_recv(sctl, &m, -1, &err);
			if (rc == 0)
				return;           /* the session ended */
			if (rc == 1 && m.type == MSG_DELIVER) {
				if (monitor_on_deliver(ms, &m) == 0)
					continue;
				rc = -1;
				err = "bad delivery request";
			}
			if (rc == -1 || m.type != MSG_LOG) {
				log_err("monitor: malformed message from session, error=%s, "
					"rip=%s", rc == -1 ? err : "unexpected type",
					ms->sc->rip_str);
				return;           /* it is killed below */
			}
			(void)monitor_on_log(ms, &m, true);
			msg_wipe(&m);
		}
	}
}

/* After LOGIN_OK (or MSG_OPEN_SESSION, for SERVER_ID_NONE): fork the session, give it
 * its session_info, relay its log lines and start its deliveries, wait for it and for
 * them, close the PAM session.  Never returns. */
static void __attribute__((noreturn))
monitor_run_session(struct monitor_state *ms, struct monitor_login *lg, const char *method,
		    const char *tls, const char *cipher)
{
	struct server_conn *sc = ms->sc;
	struct monitor_pw acct;
	struct session_info si;
	int sp[2];
	int code = 1;

	/* No more handshakes after the hand-over: the key process ends and the
	 * certificate's context goes. */
	monitor_keyproc_end(ms);
	tls_ctx_free(&sc->ssl_ctx);

	memset(&si, 0, sizeof(si));
	util_snprintf(si.user, sizeof(si.user), "%s", lg->user.name);
	util_snprintf(si.rip, sizeof(si.rip), "%s", sc->rip_str);
	util_snprintf(si.lip, sizeof(si.lip), "%s", sc->lip_str);
	si.rport = sc->rport;
	si.lport = sc->lport;
	util_snprintf(si.tls_version, sizeof(si.tls_version), "%s", tls);
	util_snprintf(si.tls_cipher, sizeof(si.tls_cipher), "%s", cipher);
	util_snprintf(si.auth_mech, sizeof(si.auth_mech), "%s", method);
	memcpy(si.session_id, sc->session_id, sizeof(si.session_id));
	util_snprintf(si.helo, sizeof(si.helo), "%s", lg->helo);
	si.esmtp = lg->esmtp;

	if (monitor_session_account(sc, lg, &acct) == -1)
		goto end;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_err("monitor: socketpair: %s", strerror(errno));
		goto end;
	}
	pid_t pid = fork();
	if (pid == -1) {
		log_err("monitor: fork: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		goto end;
	}
	if (pid == 0) {
		close(sp[0]);
		close(ms->ctl);
		session_main(sc, ms->data, sp[1], lg->lock_fd, &acct.pw);
	}
	close(sp[1]);
	close(ms->data);
	ms->data = -1;
	struct msg m;
	ms->sctl = sp[0];
	if (session_info_to_msg(&si, &m) == -1 || msg_send(sp[0], &m) == -1)
		log_err("monitor: cannot start the session, rip=%s", sc->rip_str);
	else
		monitor_supervise(ms, sp[0]);
	close(sp[0]);
	ms->sctl = -1;
	int status;
	/* The session ended (or broke its protocol and is ended here). */
	if (waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGTERM);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
	}
	/* the deliveries it asked for run to their end (a service manager ends every
	 * process of the connection with this one) */
	for (;;) {
		monitor_deliveries(ms, true);
		bool running = false;
		for (size_t i = 0; i < DELIVER_MAX_RUNNING; i++)
			running |= ms->dpid[i] > 0;
		if (!running && ms->dq_count == 0)
			break;
	}
	code = 0;
end:
	/* pam_close_session as root, after the session process is gone */
	auth_session_close(&lg->pam);
	if (lg->lock_fd != -1)
		close(lg->lock_fd);
	close(ms->ctl);
	if (ms->data != -1)
		close(ms->data);
	while (waitpid(ms->worker, &status, 0) == -1 && errno == EINTR)
		;
	exit(code);
}

/* MSG_AUTH: one login attempt.  Answers with MSG_AUTH_REPLY; on LOGIN_OK runs the
 * session and does not return.  0 or -1 (stop serving this worker). */
static int monitor_on_auth(struct monitor_state *ms, struct msg *m)
{
	struct monitor_auth_req req;
	char tls[33], cipher[65];
	int rc = 0;

	memset(&req, 0, sizeof(req));
	if (msg_get_str(m, MSG_AUTH_MECH, req.method, sizeof(req.method)) == -1 ||
	    msg_get_str(m, MSG_AUTH_AUTHCID, req.user, sizeof(req.user)) == -1 ||
	    msg_get_str(m, MSG_AUTH_SECRET, req.pass, sizeof(req.pass)) == -1 ||
	    msg_get_str(m, MSG_AUTH_TLS_VERSION, tls, sizeof(tls)) == -1 ||
	    msg_get_str(m, MSG_AUTH_TLS_CIPHER, cipher, sizeof(cipher)) == -1 ||
	    !monitor_known_method(req.method) || req.user[0] == '\0') {
		util_wipe(&req, sizeof(req));
		log_err("monitor: malformed AUTH from worker, rip=%s", ms->sc->rip_str);
		return -1;
	}
	req.tls = monitor_tls_version(tls);
	monitor_cipher(cipher, req.cipher, sizeof(req.cipher));
	struct monitor_login lg = { .lock_fd = -1 };
	monitor_helo(m, MSG_AUTH_HELO, MSG_AUTH_ESMTP, &lg);
	msg_wipe(m);
	enum server_login res = monitor_auth(ms->sc, &req, &lg);
	util_wipe(req.pass, sizeof(req.pass));
	if (res == LOGIN_OK)
		monitor_conn_leave(ms->sc);  /* before the client hears it and comes back */
	struct msg r;
	msg_init(&r, MSG_AUTH_REPLY);
	if (msg_add_u8(&r, MSG_AUTH_REPLY_RESULT, (uint8_t)res) == -1 ||
	    (res == LOGIN_OK && msg_add_str(&r, MSG_AUTH_REPLY_USER, lg.user.name) == -1) ||
	    msg_send(ms->ctl, &r) == -1)
		rc = -1;
	if (rc == 0 && res == LOGIN_OK) {
		util_wipe(req.pass, sizeof(req.pass));
		monitor_run_session(ms, &lg, req.method, strcmp(req.tls, "no") == 0 ? "" :
				    req.tls, req.cipher);
	}
	auth_session_close(&lg.pam);
	if (lg.lock_fd != -1)
		close(lg.lock_fd);
	util_wipe(&req, sizeof(req));
	return rc;
}

/* MSG_OPEN_SESSION (SERVER_ID_NONE): the worker starts the session without a login, at
 * smtp-submit's first MAIL on port 25.  Answers LOGIN_OK and runs the session; never
 * returns but on a send error (-1). */
static int monitor_on_open(struct monitor_state *ms, struct msg *m)
{
	char tls[33], cipher[65], cbuf[65];
	struct monitor_login lg = { .lock_fd = -1 };

	if (ms->sc->p->identity != SERVER_ID_NONE ||
	    msg_get_str(m, MSG_OPEN_TLS_VERSION, tls, sizeof(tls)) == -1 ||
	    msg_get_str(m, MSG_OPEN_TLS_CIPHER, cipher, sizeof(cipher)) == -1) {
		log_err("monitor: malformed or unexpected session start from worker, rip=%s",
			ms->sc->rip_str);
		return -1;
	}
	const char *v = monitor_tls_version(tls);
	monitor_cipher(cipher, cbuf, sizeof(cbuf));
	monitor_helo(m, MSG_OPEN_HELO, MSG_OPEN_ESMTP, &lg);
	monitor_conn_leave(ms->sc);
	struct msg r;
	msg_init(&r, MSG_AUTH_REPLY);
	if (msg_add_u8(&r, MSG_AUTH_REPLY_RESULT, (uint8_t)LOGIN_OK) == -1 ||
	    msg_send(ms->ctl, &r) == -1)
		return -1;
	monitor_run_session(ms, &lg, "", strcmp(v, "no") == 0 ? "" : v, cbuf);
}

/* Events only the monitor may log: a worker that sends one is lying (fail2ban acts on
 * auth-failed and auth-throttled). */
static bool monitor_event_reserved(const char *ev)
{
	static const char *const reserved[] = {
		"auth-failed", "auth-throttled", "auth-tempfail", "login", "login-inuse",
		"logout", "refused", "connect", "config-error", "lock-failed", "monitor",
		"sandbox-violation",
	};

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(ev, reserved[i]) == 0)
			return true;
	return strncmp(ev, "throttle", 8) == 0;   /* throttle-refused, -slow, -error, ... */
}

/* MSG_LOG: a line from the worker.  The event is a lower-case word not reserved to the
 * monitor; the text has every control byte replaced, so one message is one line. */
static int monitor_on_log(struct monitor_state *ms, struct msg *m, bool from_session)
{
	char event[MSG_LOG_EVENT_MAX + 1], text[MSG_LOG_TEXT_MAX + 1];
	uint8_t lvl;

	if (msg_get_u8(m, MSG_LOG_LEVEL, &lvl) == -1 || lvl > LOG_LVL_DEBUG ||
	    msg_get_str(m, MSG_LOG_EVENT, event, sizeof(event)) == -1 ||
	    msg_get_str(m, MSG_LOG_TEXT, text, sizeof(text)) == -1)
		return -1;
	bool ok = event[0] >= 'a' && event[0] <= 'z';
	for (const char *p = event; ok && *p != '\0'; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-';
	/* smtp-submit's session logs a message's lines under its queue id (Postfix-like
	 * "4F2A1C...: from=<...>"): only the spool's exact form passes */
	if (!ok && from_session && monitor_queue_id_ok(event))
		ok = true;
	/* The session may write its logout line; nothing else of the monitor's. */
	if (!ok || (monitor_event_reserved(event) &&
		    !(from_session && strcmp(event, "logout") == 0))) {
		char ebuf[LOG_MAX_FIELD + 1];
		log_warn("monitor: %s-log-refused, event=<%s>, rip=%s",
			 from_session ? "session" : "worker",
			 log_sanitize(event, strlen(event), ebuf), ms->sc->rip_str);
		return 0;
	}
	unsigned *count = from_session ? &ms->session_logs : &ms->worker_logs;
	if (++*count > MONITOR_MAX_LOG_LINES) {
		if (*count == MONITOR_MAX_LOG_LINES + 1)
			log_warn("monitor: %s-log-flood, rip=%s, action=drop",
				 from_session ? "session" : "worker", ms->sc->rip_str);
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
static int monitor_on_worker_log(struct monitor_state *ms, struct msg *m)
{
	return monitor_on_log(ms, m, false);
}

static const struct monitor_handler {
	enum msg_type type;
	unsigned max;
	int (*handle)(struct monitor_state *ms, struct msg *m);
} monitor_handlers[] = {
	{ MSG_AUTH, MONITOR_MAX_REQUESTS, monitor_on_auth },
	{ MSG_LOG, MONITOR_MAX_LOG_LINES + 1, monitor_on_worker_log },
	{ MSG_KEY_OP, TLS_MAX_KEY_OPS, monitor_on_key_op },
	{ MSG_TLS_SESS_PUT, TLS_MAX_SESSION_PUTS, monitor_on_sess_put },
	{ MSG_TLS_SESS_GET, TLS_MAX_SESSION_GETS, monitor_on_sess_get },
	{ MSG_OPEN_SESSION, 1, monitor_on_open },
};

void monitor_main(struct server_conn *sc, int ctl, int data, pid_t worker, int why)
{
	struct monitor_state ms = { .sc = sc, .ctl = ctl, .data = data, .worker = worker,
				    .keyproc = -1, .keyfd = -1, .sctl = -1 };
	for (size_t i = 0; i < DELIVER_MAX_RUNNING; i++)
		ms.dpfd[i] = -1;
	unsigned count[sizeof(monitor_handlers) / sizeof(monitor_handlers[0])] = { 0 };
	struct msg m;
	const char *err;

	(void)why;
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
	monitor_conn_leave(sc);
	monitor_keyproc_end(&ms);
	tls_ctx_free(&sc->ssl_ctx);
	auth_end();
	close(ctl);
	close(data);
	int status;
	pid_t w;
	while ((w = waitpid(worker, &status, 0)) == -1 && errno == EINTR)
		;
	/* The seccomp filter kills a worker that makes a forbidden system call with SIGSYS
	 * (sandbox.c); the kernel's audit log names the call. */
	if (w == worker && WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		log_warn("sandbox-violation: reason=forbidden-syscall, rip=%s", sc->rip_str);
	exit(0);
}
