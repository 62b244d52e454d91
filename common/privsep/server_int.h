/* Inside privsep/: what server.c (start-up), worker.c, relay.c, monitor.c and session.c
 * share about one connection.  Not for daemons: they see server.h only. */
#ifndef POSTERN_SERVER_INT_H
#define POSTERN_SERVER_INT_H
#include <pwd.h>
#include <stdbool.h>
#include <sys/types.h>
#include "privsep/msg.h"
#include "privsep/sandbox.h"
#include "privsep/server.h"

struct server_conn {
	const struct server_proto *p;
	const char *config_path;     /* NULL: CONFIG_DEFAULT_PATH */
	struct config cfg;
	const char *cfg_error;       /* NULL, or why the config cannot be used */
	char cfg_error_buf[4200];
	bool implicit_tls;
	struct netaddr rip;
	char rip_str[64];
	char lip_str[64];
	unsigned rport, lport;
	char session_id[SESSION_ID_LEN + 1];
	SSL_CTX *ssl_ctx;            /* its key is the remote one (keyop.h): no secret.  The
				      * monitor keeps it for the certificate until the session */
	struct passwd unpriv;        /* copy of the worker's account */
	char unpriv_name[64];
	int conn_slot;               /* throttle_conn_enter()'s slot, -1 if none */
	struct sandbox sandbox;      /* what of the worker's sandbox is in force */
};

/* worker.c: the unprivileged pre-login process.  why < 0: serve; else send that refusal. */
void worker_main(struct server_conn *sc, int ctl_fd, int data_fd, int why) __attribute__((noreturn));
/* relay.c: after login, client <-> session bytes until either side ends.  0 or -1. */
int relay_run(struct conn *c, int sock, unsigned timeout_s);
/* monitor.c: root, answers the worker's requests until a login or the worker's end; then
 * forks the session, relays its log lines and, when it ends, closes the PAM session. */
void monitor_main(struct server_conn *sc, int ctl, int data, pid_t worker, int why)
	__attribute__((noreturn));
/* session.c, in the child the monitor forked: close what root holds, drop to pw, take the
 * session_info from MSG_START_SESSION on ctl, log through ctl, and run the daemon's
 * session on sock.  Every other descriptor is closed but lock_fd (-1: none), the
 * read-only user lock of exclusive protocols. */
void session_main(struct server_conn *sc, int sock, int ctl, int lock_fd,
		  const struct passwd *pw) __attribute__((noreturn));
/* session.c: the info as a message and back (the session parses it as the user). */
int session_info_to_msg(const struct session_info *si, struct msg *m);
int session_info_from_msg(const struct msg *m, struct session_info *si);
/* server.c: the file-safety check shared by the config, the libwrap tables and -t:
 * path (and every directory above it) owned by root and not writable by group or
 * others (a root-owned sticky directory such as /tmp is accepted).  A missing file is
 * fine when missing_ok (its directories are still checked).  0, or -1 with *error_r
 * and the offending path in bad_r. */
int server_check_root_file(const char *path, bool missing_ok, char *bad_r, size_t bad_size,
			   const char **error_r);

#endif
