/* One connection, three roles (DESIGN.md "One connection, three roles"): server_run()
 * sets up as root and forks the worker (worker.c), the monitor (monitor.c) answers its
 * requests as root, and after a login the monitor becomes the session (session.c).
 *
 * ROOT FILES: the complete list of code that runs as root.  Keep it complete: a file
 * that gains a root caller is added here and to docs/architecture.md.
 *   common/privsep/server.c    start-up, libwrap, the fork (this file)
 *   common/privsep/monitor.c   the worker's requests, throttle, PAM, policy, user lock
 *   common/privsep/msg.c       parses the worker's messages (hostile input)
 *   common/privsep/auth.c      PAM and the account policy
 *   common/privsep/throttle.c  the shared login-failure table
 *   common/privsep/tls.c       certificate, the key process's signatures, sessions
 *   common/privsep/keyop.c     builds the worker's remote key (before the fork)
 *   common/privsep/tlscache.c  the resumable TLS sessions (state_dir/tls-sessions)
 *   common/privsep/wrap.c      hosts_access()
 *   common/privsep/priv.c      the empty chroot, dropping privileges
 *   common/privsep/session.c   up to priv_drop_user()
 *   common/privsep/check.c     -t
 *   common/base/config.c, log.c, util.c, netaddr.c
 *   <daemon>/main.c            option parsing, then server_run()
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

static void __attribute__((noreturn))
server_fork(struct server_conn *sc, int why)
{
	int sv[2], ctl[2];

	/* ctl carries typed messages (msg.h), one packet each; sv becomes the byte stream
	 * between the worker's relay and the session after a login. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == -1)
		fatal("socketpair: %s", strerror(errno));
	pid_t pid = fork();
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
	monitor_main(sc, ctl[0], sv[0], pid);
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
