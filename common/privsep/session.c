/* The session: a child of the monitor after a successful login, running as the account
 * of the daemon's identity policy.  It is forked before it reads anything, then:
 * closes root's log descriptor (it logs through the monitor, MSG_LOG on its own ctl
 * pair), drops privileges, and only then reads its MSG_START_SESSION (the session_info),
 * so that the message is parsed as the user, not as root.  The monitor stays root and
 * waits for it, to close the PAM session when it ends.
 *
 * Root code here: session_main() up to priv_drop_user(), and session_info_to_msg() (the
 * monitor builds the message). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/close_range.h>
#include <unistd.h>
#include "base/log.h"
#include "privsep/msg.h"
#include "privsep/priv.h"
#include "privsep/server_int.h"
#include "base/util.h"

int session_info_to_msg(const struct session_info *si, struct msg *m)
{
	msg_init(m, MSG_START_SESSION);
	int bad = msg_add_str(m, MSG_SESSION_USER, si->user) |
		  msg_add_str(m, MSG_SESSION_RIP, si->rip) |
		  msg_add_str(m, MSG_SESSION_LIP, si->lip) |
		  msg_add_u32(m, MSG_SESSION_RPORT, si->rport) |
		  msg_add_u32(m, MSG_SESSION_LPORT, si->lport) |
		  msg_add_str(m, MSG_SESSION_TLS_VERSION, si->tls_version) |
		  msg_add_str(m, MSG_SESSION_TLS_CIPHER, si->tls_cipher) |
		  msg_add_str(m, MSG_SESSION_AUTH_MECH, si->auth_mech) |
		  msg_add_str(m, MSG_SESSION_ID, si->session_id) |
		  msg_add_str(m, MSG_SESSION_HELO, si->helo) |
		  msg_add_u8(m, MSG_SESSION_ESMTP, si->esmtp ? 1 : 0);
	return bad != 0 ? -1 : 0;
}

int session_info_from_msg(const struct msg *m, struct session_info *si)
{
	uint32_t rport = 0, lport = 0;
	uint8_t esmtp = 0;

	memset(si, 0, sizeof(*si));
	if (m->type != MSG_START_SESSION ||
	    msg_get_str(m, MSG_SESSION_USER, si->user, sizeof(si->user)) == -1 ||
	    msg_get_str(m, MSG_SESSION_RIP, si->rip, sizeof(si->rip)) == -1 ||
	    msg_get_str(m, MSG_SESSION_LIP, si->lip, sizeof(si->lip)) == -1 ||
	    msg_get_str(m, MSG_SESSION_TLS_VERSION, si->tls_version,
			sizeof(si->tls_version)) == -1 ||
	    msg_get_str(m, MSG_SESSION_TLS_CIPHER, si->tls_cipher,
			sizeof(si->tls_cipher)) == -1 ||
	    msg_get_str(m, MSG_SESSION_AUTH_MECH, si->auth_mech, sizeof(si->auth_mech)) == -1 ||
	    msg_get_str(m, MSG_SESSION_ID, si->session_id, sizeof(si->session_id)) == -1 ||
	    msg_get_str(m, MSG_SESSION_HELO, si->helo, sizeof(si->helo)) == -1 ||
	    (msg_get(m, MSG_SESSION_ESMTP) != NULL &&
	     (msg_get_u8(m, MSG_SESSION_ESMTP, &esmtp) == -1 || esmtp > 1)))
		return -1;
	si->esmtp = esmtp == 1;
	if ((msg_get(m, MSG_SESSION_RPORT) != NULL &&
	     msg_get_u32(m, MSG_SESSION_RPORT, &rport) == -1) ||
	    (msg_get(m, MSG_SESSION_LPORT) != NULL &&
	     msg_get_u32(m, MSG_SESSION_LPORT, &lport) == -1) ||
	    rport > 65535 || lport > 65535)
		return -1;
	si->rport = rport;
	si->lport = lport;
	return 0;
}

/* The session's ctl pair to the monitor (session_request_delivery()); -1 outside a
 * session. */
static int session_ctl = -1;

/* Each line goes to the monitor, which checks the event and writes it with root's
 * descriptor.  Blocking: the monitor does nothing else while the session runs, and a
 * logout line must not be lost. */
static void session_log_sink(enum log_level lvl, const char *line, void *ctx)
{
	const int *fd = ctx;
	struct msg m;

	if (msg_log_line(&m, (uint8_t)lvl, line, "session") == -1)
		return;
	(void)msg_send(*fd, &m);
}

/* Close every descriptor but 0-2 and the ones named (what PAM modules or the monitor
 * opened stays with root). */
static void session_close_fds(const int *keep, size_t n)
{
	int lo = 3;

	for (;;) {
		int next = -1;
		for (size_t i = 0; i < n; i++)
			if (keep[i] >= lo && (next == -1 || keep[i] < next))
				next = keep[i];
		if (next == -1) {
			close_range((unsigned)lo, ~0U, 0);
			return;
		}
		if (next > lo)
			close_range((unsigned)lo, (unsigned)next - 1, 0);
		lo = next + 1;
	}
}

void session_main(struct server_conn *sc, int sock, int ctl, int lock_fd,
		  const struct passwd *pw)
{
	static int log_fd;             /* the sink's context: lives until exit */
	struct session_info si;
	const char *err;
	struct conn c;
	struct msg m;

	/* Root's log descriptor (a root-owned file, or the syslog socket) stays with the
	 * monitor: from here on every line goes through it. */
	log_fd = ctl;
	session_ctl = ctl;
	log_set_sink(session_log_sink, &log_fd);
	log_close();
	const int keep[] = { sock, ctl, lock_fd };
	session_close_fds(keep, sizeof(keep) / sizeof(keep[0]));
	if (priv_drop_user(pw, &err) == -1) {
		log_err("session: cannot become user=<%s>: %s", pw->pw_name, err);
		exit(1);
	}
	/* The monitor's death ends the session too (set after the drop, which clears it);
	 * the relay ends with it anyway. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	if (msg_recv(ctl, &m, SESSION_START_TIMEOUT_MS, &err) != 1 ||
	    session_info_from_msg(&m, &si) == -1) {
		log_err("session: no valid start message from the monitor");
		exit(1);
	}
	conn_init(&c, sock, sock, sc->p->line_max, sc->cfg.idle_timeout);
	struct server_session ss = {
		.c = &c, .cfg = &sc->cfg, .pw = pw, .user = si.user, .rip = si.rip, .info = &si,
	};
	int status = sc->p->session(&ss);
	conn_flush(&c);
	conn_deinit(&c);
	exit(status);
}

int session_request_delivery(const char *queue_id)
{
	struct msg m;

	msg_init(&m, MSG_DELIVER);
	if (session_ctl == -1 || strlen(queue_id) != MSG_QUEUE_ID_LEN ||
	    msg_add_str(&m, MSG_DELIVER_ID, queue_id) == -1)
		return -1;
	return msg_send(session_ctl, &m);
}
