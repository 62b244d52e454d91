/* The pre-login worker: unprivileged user, empty chroot, no new privileges.  It does the
 * TLS handshake and every pre-login command of the daemon (proto->prelogin), asks the
 * monitor to authenticate, and after a login relays the connection (relay.c). */
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

static void worker_log_tls(struct server_worker *w)
{
	log_info("tls: version=%s, cipher=%s, resumed=%s, rip=%s", conn_tls_version(w->c),
		 conn_tls_cipher(w->c), conn_tls_resumed(w->c) ? "yes" : "no", w->rip_str);
}

int worker_starttls(struct server_worker *w)
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

enum server_login worker_login(struct server_worker *w, const char *method,
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

static void worker_limits(void)
{
	struct rlimit none = { 0, 0 };

	setrlimit(RLIMIT_CORE, &none);      /* a core file would hold the TLS key */
	setrlimit(RLIMIT_NPROC, &none);     /* the worker never forks */
}

/* The worker: unprivileged, chrooted.  why < 0: normal; else send that refusal. */
void worker_main(struct server_conn *sc, int monitor_fd, int why)
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
		if (worker_starttls(&w) == -1)
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
		relay_run(&c, monitor_fd, sc->cfg.idle_timeout + 30);
	conn_flush(&c);
	conn_deinit(&c);
	_exit(0);
}

