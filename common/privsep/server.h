/* One connection, three roles (DESIGN.md): the root monitor, the unprivileged worker that
 * does TLS and every pre-login command, and the session as the mail user.  A daemon fills
 * a struct server_proto and calls server_run(). */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H
#include <pwd.h>
#include <stdbool.h>
#include <openssl/ssl.h>
#include "base/config.h"
#include "base/conn.h"
#include "base/plimits.h"
#include "privsep/auth.h"
#include "base/netaddr.h"

/* Why the monitor refused before any protocol: the daemon says it in its own words. */
enum server_refusal {
	REFUSE_HOSTS_DENY,    /* libwrap said no */
	REFUSE_CONFIG,        /* config file unreadable or invalid */
	REFUSE_TOO_MANY,      /* throttle_conn_max connections before login from the source */
};

/* Result of one login attempt as the worker sees it. */
enum server_login {
	LOGIN_OK,             /* the session now owns the rest of the connection */
	LOGIN_FAIL,           /* bad user or password (indistinguishable) */
	LOGIN_TEMPFAIL,       /* PAM or system trouble: try again later */
	LOGIN_THROTTLED,      /* too many failures: try again later */
	LOGIN_INUSE,          /* the mailbox is in use by another session (exclusive protos) */
};

struct server_worker {
	struct conn *c;                 /* the client: TLS or plain */
	const struct config *cfg;
	SSL_CTX *ssl_ctx;               /* for STLS/STARTTLS; NULL if TLS is unavailable */
	bool implicit_tls;
	bool plaintext_ok;              /* a password may be sent now (TLS, or trusted net) */
	struct netaddr rip;
	char rip_str[64];
	int ctl_fd;                     /* typed messages to and from the monitor (msg.h) */
	int data_fd;                    /* after login: the byte stream to the session */
	char user[AUTH_MAX_USER + 1];   /* after LOGIN_OK: the canonical user name */
};

struct server_session {
	struct conn *c;                 /* the client, through the worker's relay */
	const struct config *cfg;
	const struct passwd *pw;
	const char *user;
	const char *rip;
};

struct server_proto {
	const char *name;               /* "ipop3d": syslog ident, libwrap name, config section */
	const char *pam_service;        /* default PAM service: "pop3" */
	size_t line_max;                /* longest pre-login command line */
	bool exclusive;                 /* one session per user at a time (POP3) */
	/* Send the refusal and return. c is plain or TLS as far as the handshake got. */
	void (*refuse)(struct conn *c, enum server_refusal why);
	/* Worker: the pre-login protocol (greeting included).  Returns 1 after
	 * worker_login() said LOGIN_OK, 0 when the client is done. Runs unprivileged. */
	int (*prelogin)(struct server_worker *w);
	/* Session: the protocol after login, as the mail user.  Returns the exit status. */
	int (*session)(struct server_session *s);
};

/* main() of every daemon after option parsing.  Never returns. */
void server_run(const struct server_proto *p, const char *config_path, bool implicit_tls)
	__attribute__((noreturn));

/* Worker: ask the monitor to authenticate.  method: "USER", "PLAIN", "LOGIN".
 * Wipes pass.  On LOGIN_OK w->user is the canonical name (the account's pw_name, which
 * may differ from what was typed) and the caller returns 1 from prelogin at once. */
enum server_login worker_login(struct server_worker *w, const char *method,
			       const char *user, char *pass);
/* Worker: STLS/STARTTLS on the client connection; updates plaintext_ok.  0 or -1. */
int worker_starttls(struct server_worker *w);

#endif
