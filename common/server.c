/* One connection, three roles (DESIGN.md "One connection, three roles").
 *
 * Code that runs as root, in the monitor: this file's server_run() up to the fork and
 * monitor_*() functions, config.c, wrap.c (libwrap), tls.c (loading the certificate and
 * key, ticket key file), auth.c (PAM), throttle.c, priv.c.  None of it reads a byte from
 * the client: the monitor closes its copies of the client socket before it reads the
 * worker's first request, and the worker's requests are parsed by authmsg.c as hostile.
 *
 * The worker (unprivileged user, empty chroot, no new privileges) runs TLS and every
 * pre-login command, then relays bytes between the client and the session.  The session
 * is the monitor after it dropped to the mail user. */
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
#include "log.h"
#include "priv.h"
#include "server.h"
#include "throttle.h"
#include "tls.h"
#include "util.h"
#include "wrap.h"

/* Monitor -> worker reply: one byte, an enum server_login value. */

/* Most login requests the monitor answers on one connection; a worker that asks for
 * more is misbehaving. */
#define MONITOR_MAX_REQUESTS (MAX_AUTH_ATTEMPTS + 2)

struct server_conn {
	const struct server_proto *p;
	struct config cfg;
	bool implicit_tls;
	struct netaddr rip;
	char rip_str[64];
	char lip_str[64];
	unsigned lport;
	SSL_CTX *ssl_ctx;
	struct passwd unpriv;        /* copy of the worker's account */
	char unpriv_name[64];
};

static void server_peer(struct server_conn *sc)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&sc->rip, 0, sizeof(sc->rip));
	if (getpeername(0, (struct sockaddr *)&ss, &len) == 0)
		netaddr_from_sockaddr((struct sockaddr *)&ss, len, &sc->rip);
	netaddr_str(&sc->rip, sc->rip_str, sizeof(sc->rip_str));

	struct netaddr lip = { 0 };
	len = sizeof(ss);
	sc->lport = 0;
	if (getsockname(0, (struct sockaddr *)&ss, &len) == 0) {
		netaddr_from_sockaddr((struct sockaddr *)&ss, len, &lip);
		if (ss.ss_family == AF_INET)
			sc->lport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			sc->lport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	netaddr_str(&lip, sc->lip_str, sizeof(sc->lip_str));
}

/* fd 0 must be one connection, not a listening socket (a launcher without Accept=yes,
 * inetd "wait", or systemd-socket-activate without -a). */
static bool server_is_listener(void)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on != 0;
}

/* ---- worker ---------------------------------------------------------------------- */

static void worker_log_tls(struct server_worker *w)
{
	log_info("tls: version=%s, cipher=%s, resumed=%s, rip=%s", conn_tls_version(w->c),
		 conn_tls_cipher(w->c), conn_tls_resumed(w->c) ? "yes" : "no", w->rip_str);
}

int server_starttls(struct server_worker *w)
{
	const char *err = "no TLS context";

	if (w->ssl_ctx == NULL || conn_starttls(w->c, w->ssl_ctx, &err) == -1) {
		log_info("tls-failed: reason=%s, rip=%s", err, w->rip_str);
		return -1;
	}
	w->plaintext_ok = true;
	worker_log_tls(w);
	return 0;
}

enum server_login server_login(struct server_worker *w, const char *method,
			       const char *user, char *pass)
{
	struct authmsg m;
	unsigned char buf[4 + AUTHMSG_MAX];
	unsigned char reply;
	long n;

	memset(&m, 0, sizeof(m));
	if (util_snprintf(m.method, sizeof(m.method), "%s", method) == -1 ||
	    util_snprintf(m.user, sizeof(m.user), "%s", user) == -1 ||
	    util_snprintf(m.pass, sizeof(m.pass), "%s", pass) == -1) {
		util_wipe(pass, strlen(pass));
		util_wipe(&m, sizeof(m));
		return LOGIN_FAIL;    /* too long to be anybody's name or password */
	}
	util_wipe(pass, strlen(pass));
	if (w->c->ssl != NULL)
		util_snprintf(m.tls, sizeof(m.tls), "%s", conn_tls_version(w->c));
	n = authmsg_encode(&m, buf + 4, sizeof(buf) - 4);
	util_wipe(&m, sizeof(m));
	if (n < 0)
		return LOGIN_FAIL;
	uint32_t len = htonl((uint32_t)n);
	memcpy(buf, &len, 4);
	conn_flush(w->c);
	int rc = util_write_all(w->monitor_fd, buf, (size_t)n + 4);
	util_wipe(buf, sizeof(buf));
	if (rc == -1 || util_read_full(w->monitor_fd, &reply, 1) != 1)
		return LOGIN_TEMPFAIL;
	if (reply > LOGIN_INUSE)
		return LOGIN_TEMPFAIL;
	return (enum server_login)reply;
}

/* After login: bytes from the client go to the session, the session's replies go to the
 * client.  Client->session bytes wait in `pend` while the session is not reading, so
 * neither side can block the other into a deadlock (the session may be busy writing a
 * large message while the client pipelines commands). */
static int worker_relay(struct conn *c, int sock, unsigned timeout_s)
{
	char pend[IO_CHUNK], out[IO_CHUNK];
	size_t plen = 0, poff = 0;
	const char *data;

	plen = linebuf_pending(c->lb, &data);
	if (plen > sizeof(pend))
		return -1;
	memcpy(pend, data, plen);
	linebuf_reset(c->lb);
	if (fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK) == -1)
		return -1;
	c->timeout_s = timeout_s;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = c->rfd, .events = plen == 0 ? POLLIN : 0 },
			{ .fd = sock, .events = POLLIN | (plen > 0 ? POLLOUT : 0) },
		};
		bool client_ready = plen == 0 && conn_has_input(c);
		if (!client_ready) {
			int rc = poll(pfd, 2, (int)timeout_s * 1000);
			if (rc == 0)
				return 0;       /* nobody said anything for too long */
			if (rc < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
		}
		if (client_ready || (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = conn_read(c, pend, sizeof(pend));
			if (n <= 0)
				return 0;       /* client gone: the session sees EOF */
			plen = (size_t)n;
			poff = 0;
		}
		if (plen > 0) {
			ssize_t n = send(sock, pend + poff, plen, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return 0;       /* session gone */
			if (n > 0) {
				poff += (size_t)n;
				plen -= (size_t)n;
			}
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(sock, out, sizeof(out), 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				conn_flush(c);
				return 0;       /* session ended */
			}
			if (conn_write(c, out, (size_t)n) == -1 || conn_flush(c) == -1)
				return 0;
		}
	}
}

static void worker_limits(void)
{
	struct rlimit none = { 0, 0 };

	setrlimit(RLIMIT_CORE, &none);      /* a core file would hold the TLS key */
	setrlimit(RLIMIT_NPROC, &none);     /* the worker never forks */
}

/* The worker: unprivileged, chrooted.  why < 0: normal; else send that refusal. */
static void __attribute__((noreturn))
worker_main(struct server_conn *sc, int monitor_fd, int why)
{
	const char *err;
	struct conn c;
	struct server_worker w = { 0 };

	if (priv_drop_unpriv(&sc->unpriv, sc->cfg.state_dir, &err) == -1) {
		log_err("worker: cannot drop privileges: %s", err);
		_exit(1);
	}
	worker_limits();
	/* Replies are whole lines written at once: without TCP_NODELAY, Nagle holds the
	 * greeting back behind the TLS 1.3 ticket until the client's delayed ACK (~40 ms). */
	int on = 1;
	(void)setsockopt(0, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	(void)setsockopt(1, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	conn_init(&c, 0, 1, sc->p->line_max, sc->cfg.login_timeout);
	w.c = &c;
	w.cfg = &sc->cfg;
	w.ssl_ctx = sc->ssl_ctx;
	w.implicit_tls = sc->implicit_tls;
	w.rip = sc->rip;
	memcpy(w.rip_str, sc->rip_str, sizeof(w.rip_str));
	w.monitor_fd = monitor_fd;
	if (sc->implicit_tls) {
		if (server_starttls(&w) == -1)
			_exit(0);
	} else {
		w.plaintext_ok = netlist_match(&sc->cfg.plaintext_auth_from, &sc->rip);
	}
	if (why >= 0) {
		sc->p->refuse(&c, (enum server_refusal)why);
		conn_flush(&c);
		_exit(0);
	}
	if (sc->p->prelogin(&w) == 1)
		worker_relay(&c, monitor_fd, sc->cfg.idle_timeout + 30);
	conn_flush(&c);
	conn_deinit(&c);
	_exit(0);
}

/* ---- monitor --------------------------------------------------------------------- */

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

static void __attribute__((noreturn))
monitor_become_session(struct server_conn *sc, int sock, struct passwd *pw, const char *user)
{
	const char *err;
	struct conn c;

	if (priv_drop_user(pw, &err) == -1) {
		log_err("session: cannot become user=<%s>: %s", user, err);
		exit(1);
	}
	signal(SIGPIPE, SIG_IGN);
	conn_init(&c, sock, sock, sc->p->line_max, sc->cfg.idle_timeout);
	struct server_session ss = {
		.c = &c, .cfg = &sc->cfg, .pw = pw, .user = user, .rip = sc->rip_str,
	};
	int status = sc->p->session(&ss);
	conn_flush(&c);
	conn_deinit(&c);
	exit(status);
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

static void __attribute__((noreturn))
monitor_main(struct server_conn *sc, int sock, pid_t worker)
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
			monitor_become_session(sc, sock, pw, user);
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

/* ---- start-up (root) ------------------------------------------------------------- */

static void __attribute__((noreturn))
server_fork(struct server_conn *sc, int why)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair: %s", strerror(errno));
	pid_t pid = fork();
	if (pid == -1)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		worker_main(sc, sv[1], why);
	}
	close(sv[1]);
	/* The monitor keeps no copy of the client socket: from here on it cannot read a
	 * network byte even by mistake. */
	int null = open("/dev/null", O_RDWR);
	if (null == -1 || dup2(null, 0) == -1 || dup2(null, 1) == -1)
		fatal("cannot close the client socket: %s", strerror(errno));
	if (null > 2)
		close(null);
	tls_ctx_free(&sc->ssl_ctx);
	if (why >= 0) {
		close(sv[0]);
		while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
			;
		exit(0);
	}
	monitor_main(sc, sv[0], pid);
}

void server_run(const struct server_proto *p, const char *config_path, bool implicit_tls)
{
	struct server_conn sc = { .p = p, .implicit_tls = implicit_tls };
	const char *err = NULL;
	int why = -1;

	/* Under inetd fd 2 is the client's socket: nothing may ever be written there. */
	const char *err_path = "/dev/null";
#ifdef __SANITIZE_ADDRESS__
	/* Sanitizer builds (tests only) report on fd 2: keep those reports, from every
	 * process of the connection, chrooted or not, in the file the tests name. */
	if (getenv("POSTERN_SAN_LOG") != NULL)
		err_path = getenv("POSTERN_SAN_LOG");
#endif
	int null = open(err_path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (null != -1 && null != 2) {
		dup2(null, 2);
		close(null);
	}
	signal(SIGPIPE, SIG_IGN);
	tzset();                       /* before the worker's chroot hides /etc/localtime */
	log_init(p->name, false);
	bool cfg_ok = config_load(&sc.cfg, config_path, p->name, config_path != NULL, &err) == 0;
	if (log_open(sc.cfg.log, sc.cfg.log_debug, &err) == -1 &&
	    log_open("syslog", false, &err) == -1)
		exit(1);
	if (server_is_listener()) {
		log_err("startup: fd 0 is a listening socket; start %s per connection "
			"(inetd nowait, systemd Accept=yes, systemd-socket-activate -a)", p->name);
		exit(1);
	}
	server_peer(&sc);
	if (priv_make_empty_dir(sc.cfg.state_dir, &err) == -1) {
		log_err("state-dir: dir=%s, error=%s", sc.cfg.state_dir, err);
		exit(1);       /* the worker cannot be confined without it */
	}
	if (!cfg_ok) {
		log_err("config-error: file=%s, error=%s, rip=%s",
			config_path != NULL ? config_path : CONFIG_DEFAULT_PATH, err,
			sc.rip_str);
		why = REFUSE_CONFIG;
	}
	log_info("connect: rip=%s, lip=%s, port=%u, tls=%s", sc.rip_str, sc.lip_str, sc.lport,
		 implicit_tls ? "implicit" : "plain");
	if (why < 0 && !wrap_allowed(&sc.cfg, p->name, 0)) {
		log_info("refused: reason=hosts-deny, rip=%s", sc.rip_str);
		why = REFUSE_HOSTS_DENY;
	}
	sc.ssl_ctx = tls_ctx_new(&sc.cfg, &err);
	if (sc.ssl_ctx == NULL) {
		log_err("tls-config: error=%s, cert=%s, key=%s", err, sc.cfg.tls_cert,
			sc.cfg.tls_key);
		if (implicit_tls)
			exit(1);  /* no way to say anything to a client that expects TLS */
	}
	struct passwd *up = getpwnam(sc.cfg.unpriv_user);
	if (up == NULL || up->pw_uid == 0) {
		log_err("unpriv-user: user=%s, error=%s", sc.cfg.unpriv_user,
			up == NULL ? "no such user (run make install or tests/mkuser.sh)" :
				     "must not be root");
		exit(1);  /* never run the protocol as root instead */
	}
	sc.unpriv = *up;
	util_snprintf(sc.unpriv_name, sizeof(sc.unpriv_name), "%s", up->pw_name);
	sc.unpriv.pw_name = sc.unpriv_name;
	server_fork(&sc, why);
}
