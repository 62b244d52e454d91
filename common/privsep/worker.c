/* The pre-login worker: unprivileged user, empty chroot, no new privileges, and the
 * sandbox of sandbox.c (namespaces, descriptors, rlimits, seccomp).  It does the
 * TLS handshake and every pre-login command of the daemon (proto->prelogin), asks the
 * monitor to authenticate, and after a login relays the connection (relay.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
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
#include "privsep/keyop.h"
#include "privsep/priv.h"
#include "privsep/msg.h"
#include "privsep/sandbox.h"
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
	struct msg m;
	const char *err;
	size_t ulen = strlen(user), plen = strlen(pass);

	if (ulen == 0 || ulen > AUTH_MAX_USER || plen > AUTH_MAX_PASS) {
		util_wipe(pass, plen);
		return LOGIN_FAIL;    /* too long to be anybody's name or password */
	}
	msg_init(&m, MSG_AUTH);
	int bad = msg_add_str(&m, MSG_AUTH_MECH, method) |
		  msg_add_str(&m, MSG_AUTH_AUTHCID, user) |
		  msg_add(&m, MSG_AUTH_SECRET, pass, plen);
	util_wipe(pass, plen);
	if (w->c->ssl != NULL)
		bad |= msg_add_str(&m, MSG_AUTH_TLS_VERSION, conn_tls_version(w->c)) |
		       msg_add_str(&m, MSG_AUTH_TLS_CIPHER, conn_tls_cipher(w->c));
	if (w->helo[0] != '\0')
		bad |= msg_add_str(&m, MSG_AUTH_HELO, w->helo) |
		       msg_add_u8(&m, MSG_AUTH_ESMTP, w->esmtp ? 1 : 0);
	conn_flush(w->c);
	int rc = bad != 0 ? -1 : msg_send(w->ctl_fd, &m);
	msg_wipe(&m);
	if (bad != 0)
		return LOGIN_FAIL;
	/* The monitor answers every AUTH; it takes as long as PAM and the failure delay,
	 * but never past the pre-login deadline, which ends this process anyway. */
	int wait_ms = w->c->deadline_ms == 0 ? -1 : 0;
	uint64_t now = util_now_ms();
	if (w->c->deadline_ms > now)
		wait_ms = w->c->deadline_ms - now > INT_MAX ? INT_MAX
							    : (int)(w->c->deadline_ms - now);
	if (rc == -1 || msg_recv(w->ctl_fd, &m, wait_ms, &err) != 1 ||
	    m.type != MSG_AUTH_REPLY)
		return LOGIN_TEMPFAIL;
	uint8_t res;
	if (msg_get_u8(&m, MSG_AUTH_REPLY_RESULT, &res) == -1 || res > LOGIN_INUSE)
		return LOGIN_TEMPFAIL;
	if (res == LOGIN_OK &&
	    (msg_get_str(&m, MSG_AUTH_REPLY_USER, w->user, sizeof(w->user)) == -1 ||
	     w->user[0] == '\0'))
		return LOGIN_TEMPFAIL;
	return (enum server_login)res;
}

/* The worker has no log descriptor: each line goes to the monitor as a MSG_LOG, which
 * checks the event name and sanitizes the text (monitor.c).  A line that would block
 * (the monitor busy in PAM with a full socket buffer) is dropped, never waited for. */
static void worker_log_sink(enum log_level lvl, const char *line, void *ctx)
{
	const struct server_worker *w = ctx;
	struct msg m;

	if (msg_log_line(&m, (uint8_t)lvl, line, "worker") == -1)
		return;
	/* ctl is a SOCK_SEQPACKET pair: the line goes whole or not at all. */
	(void)msg_send_flags(w->ctl_fd, &m, MSG_DONTWAIT);
}

/* The worker: unprivileged, chrooted.  why < 0: normal; else send that refusal. */
void worker_main(struct server_conn *sc, int ctl_fd, int data_fd, int why)
{
	const char *err;
	struct conn c;
	struct server_worker w = { .ctl_fd = ctl_fd, .data_fd = data_fd };

	/* From here on every line goes through the monitor: the worker keeps no descriptor
	 * of syslog or of the log file to write forged lines into. */
	log_set_sink(worker_log_sink, &w);
	log_close();
	/* Still root: every other descriptor closed (ctl and data move to fds 3 and 4),
	 * new network and IPC namespaces, OpenSSL primed (sandbox.c). */
	if (sandbox_enter(&sc->sandbox, &w.ctl_fd, &w.data_fd, &err) == -1) {
		log_err("worker: cannot set up the sandbox: %s", err);
		_exit(1);
	}
	data_fd = w.data_fd;
	/* The TLS key's operations and the resumable sessions are the monitor's. */
	keyop_set_channel(w.ctl_fd);
	if (priv_drop_unpriv(&sc->unpriv, sc->cfg.state_dir, &err) == -1) {
		log_err("worker: cannot drop privileges: %s", err);
		_exit(1);
	}
	/* Replies are whole lines written at once: without TCP_NODELAY, Nagle holds the
	 * greeting back behind the TLS 1.3 ticket until the client's delayed ACK (~40 ms). */
	int on = 1;
	(void)setsockopt(0, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	(void)setsockopt(1, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	/* rlimits, not dumpable, and the seccomp allow-list: the last step before the first
	 * byte from the network is parsed (the TLS handshake included). */
	if (sandbox_lock(&sc->sandbox, &err) == -1) {
		log_err("worker: cannot set up the sandbox: %s", err);
		_exit(1);
	}
	char desc[160];
	sandbox_describe(&sc->sandbox, desc, sizeof(desc));
	if (sandbox_complete(&sc->sandbox))
		log_debug("sandbox: %s", desc);
	else
		log_warn("sandbox: %s", desc);
	conn_init(&c, 0, 1, sc->p->line_max, sc->cfg.login_timeout);
	/* login_timeout is the idle limit; login_deadline bounds the whole pre-login phase
	 * (handshake included) from connect, however the client paces its bytes */
	conn_set_deadline(&c, util_now_ms() + (uint64_t)sc->cfg.login_deadline * 1000);
	w.c = &c;
	w.cfg = &sc->cfg;
	w.ssl_ctx = sc->ssl_ctx;
	w.implicit_tls = sc->implicit_tls;
	w.rip = sc->rip;
	memcpy(w.rip_str, sc->rip_str, sizeof(w.rip_str));
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
	/* after a login (or worker_start_session()) the session has the rest */
	if (sc->p->prelogin(&w) == 1)
		relay_run(&c, data_fd, sc->cfg.idle_timeout + 30);
	conn_flush(&c);
	conn_deinit(&c);
	_exit(0);
}


enum server_login worker_start_session(struct server_worker *w)
{
	struct msg m;
	const char *err;

	msg_init(&m, MSG_OPEN_SESSION);
	int bad = 0;
	if (w->c->ssl != NULL)
		bad |= msg_add_str(&m, MSG_OPEN_TLS_VERSION, conn_tls_version(w->c)) |
		       msg_add_str(&m, MSG_OPEN_TLS_CIPHER, conn_tls_cipher(w->c));
	if (w->helo[0] != '\0')
		bad |= msg_add_str(&m, MSG_OPEN_HELO, w->helo) |
		       msg_add_u8(&m, MSG_OPEN_ESMTP, w->esmtp ? 1 : 0);
	conn_flush(w->c);
	if (bad != 0 || msg_send(w->ctl_fd, &m) == -1)
		return LOGIN_TEMPFAIL;
	/* the monitor answers at once (no PAM): SESSION_START_TIMEOUT_MS is plenty */
	if (msg_recv(w->ctl_fd, &m, SESSION_START_TIMEOUT_MS, &err) != 1 ||
	    m.type != MSG_AUTH_REPLY)
		return LOGIN_TEMPFAIL;
	uint8_t res;
	if (msg_get_u8(&m, MSG_AUTH_REPLY_RESULT, &res) == -1 || res != LOGIN_OK)
		return LOGIN_TEMPFAIL;
	return LOGIN_OK;
}
