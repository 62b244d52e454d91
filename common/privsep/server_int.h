/* Inside privsep/: what server.c (start-up), worker.c, relay.c, monitor.c and session.c
 * share about one connection.  Not for daemons: they see server.h only. */
#ifndef POSTERN_SERVER_INT_H
#define POSTERN_SERVER_INT_H
#include <pwd.h>
#include <stdbool.h>
#include <sys/types.h>
#include "privsep/server.h"

struct server_conn {
	const struct server_proto *p;
	struct config cfg;
	bool implicit_tls;
	struct netaddr rip;
	char rip_str[64];
	char lip_str[64];
	unsigned lport;
	SSL_CTX *ssl_ctx;            /* its key is the remote one (keyop.h): no secret.  The
				      * monitor keeps it for the certificate until the session */
	struct passwd unpriv;        /* copy of the worker's account */
	char unpriv_name[64];
};

/* worker.c: the unprivileged pre-login process.  why < 0: serve; else send that refusal. */
void worker_main(struct server_conn *sc, int ctl_fd, int data_fd, int why) __attribute__((noreturn));
/* relay.c: after login, client <-> session bytes until either side ends.  0 or -1. */
int relay_run(struct conn *c, int sock, unsigned timeout_s);
/* monitor.c: root, answers the worker's requests until a login or the worker's end. */
void monitor_main(struct server_conn *sc, int ctl, int data, pid_t worker) __attribute__((noreturn));
/* session.c: drop to the mail user and run the daemon's session on sock. */
void session_start(struct server_conn *sc, int sock, struct passwd *pw, const char *user)
	__attribute__((noreturn));

#endif
