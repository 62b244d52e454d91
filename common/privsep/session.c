/* The session: the monitor after a successful login, dropped to the mail user. */
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

void session_start(struct server_conn *sc, int sock, struct passwd *pw, const char *user)
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

