/* One connection, three roles (DESIGN.md "One connection, three roles"): server_setup()
 * and server_serve() set up as root and fork the worker (worker.c); the monitor
 * (monitor.c) answers its requests as root, runs PAM's authentication in a short-lived
 * child (auth.c), and after a login forks the session (session.c), waits for it and
 * closes the PAM session.
 *
 * ROOT FILES: the complete list of code that runs as root.  Keep it complete: a file
 * that gains a root caller is added here and to docs/architecture.md.
 *   common/privsep/server.c    start-up, file checks, libwrap, the fork (this file)
 *   common/privsep/monitor.c   the worker's and the session's messages, throttle, policy,
 *                              user lock, the session's fork and end
 *   common/privsep/msg.c       parses the worker's and the session's messages (hostile)
 *   common/privsep/auth.c      PAM (authentication in a child; the PAM session in the
 *                              monitor) and the account policy
 *   common/privsep/throttle.c  the shared login-failure table
 *   common/privsep/tls.c       certificate, the key process's signatures, sessions
 *   common/privsep/keyop.c     builds the worker's remote key (before the fork)
 *   common/privsep/tlscache.c  the resumable TLS sessions (state_dir/tls-sessions)
 *   common/privsep/wrap.c      hosts_access()
 *   common/privsep/priv.c      the empty chroot, dropping privileges
 *   common/privsep/sandbox.c   the worker's fork, namespaces and descriptors (root part)
 *   common/privsep/session.c   session_main() up to priv_drop_user(); session_info_to_msg()
 *   common/privsep/check.c     -t
 *   common/base/config.c, log.c, util.c, netaddr.c
 *   <daemon>/main.c            option parsing, then server_run()
 *   smtp-submit/deliver.c      server_proto.deliver, in the monitor's delivery child
 *                              (and -q): the envelope and aliases files, then one
 *                              process per recipient as that recipient
 *   PAM modules of the service (in the PAM child and, for the session stack, the monitor)
 * None of it reads a byte from the client: the monitor closes its copies of the client
 * socket before it reads the worker's first request. */
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
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "base/log.h"
#include "privsep/priv.h"
#include "privsep/sandbox.h"
#include "privsep/server_int.h"
#include "privsep/throttle.h"
#include "privsep/tls.h"
#include "base/util.h"
#include "privsep/wrap.h"

static void server_peer(struct server_conn *sc)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ss.ss_family = AF_UNSPEC;
	memset(&sc->rip, 0, sizeof(sc->rip));
	if (getpeername(0, (struct sockaddr *)&ss, &len) == 0)
		netaddr_from_sockaddr((struct sockaddr *)&ss, len, &sc->rip);
	netaddr_str(&sc->rip, sc->rip_str, sizeof(sc->rip_str));

	struct netaddr lip = { 0 };
	len = sizeof(ss);
	sc->lport = 0;
	sc->rport = 0;
	if (ss.ss_family == AF_INET)   /* still the peer's address from getpeername */
		sc->rport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		sc->rport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
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

/* A slowloris from a few addresses must not fill the launcher's MaxConnections: this
 * process counts as one of its source's connections before login until the monitor
 * lets go (at login or the end; a dead pid's entry is reclaimed). */
static enum throttle_verdict server_conn_cap(struct server_conn *sc)
{
	struct throttle_policy pol = { .conn_max = sc->cfg.throttle_conn_max };
	char tpath[4200];

	if (util_snprintf(tpath, sizeof(tpath), "%s/" THROTTLE_FILE_NAME,
			  sc->cfg.state_dir) == -1)
		return THROTTLE_ALLOW;
	return throttle_conn_enter(tpath, &pol, &sc->rip, &sc->conn_slot);
}

static void __attribute__((noreturn))
server_fork(struct server_conn *sc, int why)
{
	int sv[2], ctl[2];

	/* ctl carries typed messages (msg.h), one packet each; sv becomes the byte stream
	 * between the worker's relay and the session after a login. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == -1)
		fatal("socketpair: %s", strerror(errno));
	/* the worker in a PID namespace of its own where the kernel allows (sandbox.c) */
	sandbox_init(&sc->sandbox);
	pid_t pid = sandbox_fork(&sc->sandbox);
	if (pid == -1)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		close(ctl[0]);
		worker_main(sc, ctl[1], sv[1], why);
	}
	close(sv[1]);
	close(ctl[1]);
	/* The monitor keeps no copy of the client socket: from here on it cannot read a
	 * network byte even by mistake. */
	int null = open("/dev/null", O_RDWR);
	if (null == -1 || dup2(null, 0) == -1 || dup2(null, 1) == -1)
		fatal("cannot close the client socket: %s", strerror(errno));
	if (null > 2)
		close(null);
	/* No private key was read so far, and the monitor never reads it: a key process
	 * forked from it does (monitor.c), so neither the worker nor the session (the
	 * monitor after login) ever shares an address space with the key. */
	/* Also for a refusal: the worker's log lines come through the monitor. */
	monitor_main(sc, ctl[0], sv[0], pid, why);
}

/* One directory on the way up: root's, and writable by nobody else unless sticky (/tmp:
 * nobody else may rename or delete root's entries in it).  1 fine, 0 bad, -1 missing. */
static int server_dir_safe(const char *dir, const char **error_r)
{
	struct stat st;

	if (stat(dir, &st) == -1) {
		*error_r = strerror(errno);
		return errno == ENOENT ? -1 : 0;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0) {
		*error_r = "directory not owned by root";
		return 0;
	}
	if ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0) {
		*error_r = "directory writable by group or others";
		return 0;
	}
	return 1;
}

int server_check_root_file(const char *path, bool missing_ok, char *bad_r, size_t bad_size,
			   const char **error_r)
{
	char dir[4096];
	struct stat st;

	if (util_snprintf(bad_r, bad_size, "%s", path) == -1 ||
	    util_snprintf(dir, sizeof(dir), "%s", path) == -1) {
		*error_r = "path too long";
		return -1;
	}
	if (path[0] != '/') {
		*error_r = "not an absolute path";
		return -1;
	}
	/* The file (its target, if a link: that is what the readers read), then every
	 * directory up to /: a directory someone else can write lets them swap the file. */
	bool missing = false;
	if (stat(path, &st) == -1) {
		if (errno != ENOENT || !missing_ok) {
			*error_r = strerror(errno);
			return -1;
		}
		missing = true;
	} else if (!S_ISREG(st.st_mode)) {
		*error_r = "not a regular file";
		return -1;
	} else if (st.st_uid != 0) {
		*error_r = "not owned by root";
		return -1;
	} else if ((st.st_mode & 022) != 0) {
		*error_r = "writable by group or others";
		return -1;
	}
	for (;;) {
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';      /* up to "/" itself */
		else
			*slash = '\0';
		int rc = server_dir_safe(dir, error_r);
		if (rc == 0 || (rc == -1 && !missing)) {
			util_snprintf(bad_r, bad_size, "%s", dir);
			return -1;
		}
		if (strcmp(dir, "/") == 0)
			return 0;
	}
}

/* 48 random bits as 12 hex digits: names this connection on its connect, login and
 * logout lines (and, in smtp-submit, its queue files). */
static void server_new_session_id(char out[SESSION_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[SESSION_ID_LEN / 2];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* no entropy source at all: still unique enough per host for logs */
		uint64_t t = util_now_ms() ^ ((uint64_t)getpid() << 32);
		memcpy(r, &t, sizeof(r));
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[SESSION_ID_LEN] = '\0';
}

struct server_conn *server_setup(const struct server_proto *p, const char *config_path,
				 const char **error_r)
{
	static struct server_conn sc;    /* one per process: lives until exit */
	const char *err = NULL;

#ifndef __SANITIZE_ADDRESS__
	/* Before any other OpenSSL call (the first initialization decides): no cleanup of
	 * OpenSSL's state at exit().  Every process of a connection is a copy of this one
	 * with OpenSSL fully loaded (providers, every fetched cipher, error strings), and
	 * the atexit() cleanup freed all of it again in each one that exits, writing to, so
	 * copying, every page it touched: 0.5 ms of the session's 1.3 ms (bench/RESULTS.md).
	 * The kernel frees the memory anyway.  Sanitizer builds keep the cleanup, so that
	 * LeakSanitizer's report is not swamped by OpenSSL's state. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
#endif
	memset(&sc, 0, sizeof(sc));
	sc.p = p;
	sc.conn_slot = -1;
	sc.config_path = config_path;
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
	server_new_session_id(sc.session_id);
	const char *path = config_path != NULL ? config_path : CONFIG_DEFAULT_PATH;
	char bad[4096];
	/* The config names files root opens and a PAM service: someone who can write it,
	 * or swap it, is root.  Checked like sshd's StrictModes. */
	if (server_check_root_file(path, config_path == NULL, bad, sizeof(bad), &err) == -1) {
		config_defaults(&sc.cfg, p->name);
		util_snprintf(sc.cfg_error_buf, sizeof(sc.cfg_error_buf), "unsafe: %s: %s", bad,
			      err);
		sc.cfg_error = sc.cfg_error_buf;
	} else if (config_load(&sc.cfg, config_path, p->name, config_path != NULL, &err) == -1) {
		sc.cfg_error = err;
	}
	const char *lerr;
	if (log_open(sc.cfg.log, sc.cfg.log_debug, &lerr) == -1) {
		if (log_open("syslog", false, &err) == -1)
			exit(1);
		log_err("log-file: file=%s, error=%s, session=%s", sc.cfg.log, lerr,
			sc.session_id);
	}
	*error_r = sc.cfg_error;
	return &sc;
}

const struct config *server_config(const struct server_conn *sc)
{
	return &sc->cfg;
}

/* libwrap's tables run commands as root (spawn, twist): they get the config's checks. */
static bool server_tables_safe(struct server_conn *sc)
{
	const char *tables[] = { sc->cfg.hosts_allow, sc->cfg.hosts_deny };
	char bad[4096];
	const char *err;

	for (size_t i = 0; i < 2; i++) {
		if (server_check_root_file(tables[i], true, bad, sizeof(bad), &err) == -1) {
			log_err("refused: reason=unsafe-file, file=%s, error=%s: %s, rip=%s",
				tables[i], bad, err, sc->rip_str);
			return false;
		}
	}
	return true;
}

void server_serve(struct server_conn *sc, bool implicit_tls)
{
	struct tls_error eb;
	const char *err = NULL;
	int why = -1;

	sc->implicit_tls = implicit_tls;
	if (server_is_listener()) {
		log_err("startup: fd 0 is a listening socket; start %s per connection "
			"(inetd nowait, systemd Accept=yes, systemd-socket-activate -a)",
			sc->p->name);
		exit(1);
	}
	server_peer(sc);
	if (priv_make_empty_dir(sc->cfg.state_dir, &err) == -1) {
		log_err("state-dir: dir=%s, error=%s", sc->cfg.state_dir, err);
		exit(1);       /* the worker cannot be confined without it */
	}
	if (sc->cfg_error != NULL) {
		log_err("config-error: file=%s, error=%s, rip=%s",
			sc->config_path != NULL ? sc->config_path : CONFIG_DEFAULT_PATH,
			sc->cfg_error, sc->rip_str);
		why = REFUSE_CONFIG;
	}
	log_info("connect: rip=%s, lip=%s, port=%u, tls=%s, session=%s", sc->rip_str,
		 sc->lip_str, sc->lport, implicit_tls ? "implicit" : "plain", sc->session_id);
	if (why < 0 && !server_tables_safe(sc))
		why = REFUSE_CONFIG;
	if (why < 0) {
		int w = wrap_check(&sc->cfg, sc->p->name, 0, &err);
		if (w == -1) {
			log_err("libwrap: error=%s, rip=%s", err, sc->rip_str);
			why = REFUSE_CONFIG;
		} else if (w == 0) {
			log_info("refused: reason=hosts-deny, rip=%s", sc->rip_str);
			why = REFUSE_HOSTS_DENY;
		}
	}
	if (why < 0 && server_conn_cap(sc) == THROTTLE_REFUSE) {
		log_info("refused: reason=too-many-connections, rip=%s", sc->rip_str);
		why = REFUSE_TOO_MANY;
	}
	sc->ssl_ctx = tls_ctx_new(&eb, &sc->cfg, &err);
	if (sc->ssl_ctx == NULL) {
		log_err("tls-config: error=%s, cert=%s, key=%s", err, sc->cfg.tls_cert,
			sc->cfg.tls_key);
		if (implicit_tls)
			exit(1);  /* no way to say anything to a client that expects TLS */
	}
	struct passwd *up = getpwnam(sc->cfg.unpriv_user);
	if (up == NULL || up->pw_uid == 0) {
		log_err("unpriv-user: user=%s, error=%s", sc->cfg.unpriv_user,
			up == NULL ? "no such user (run make install or tests/mkuser.sh)" :
				     "must not be root");
		exit(1);  /* never run the protocol as root instead */
	}
	sc->unpriv = *up;
	util_snprintf(sc->unpriv_name, sizeof(sc->unpriv_name), "%s", up->pw_name);
	sc->unpriv.pw_name = sc->unpriv_name;
	server_fork(sc, why);
}

void server_run(const struct server_proto *p, const char *config_path, bool implicit_tls)
{
	const char *err;

	server_serve(server_setup(p, config_path, &err), implicit_tls);
}
