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
	/* smtp-submit: the client's HELO/EHLO argument (printable ASCII, "" before one) and
	 * whether it was EHLO; filled by the prelogin, passed on to the session. */
	char helo[256];
	bool esmtp;
};

/* Who the session runs as (DESIGN.md "identity policy"). */
enum server_identity {
	SERVER_ID_LOGIN_USER,  /* the login user (imapd, ipop3d) */
	SERVER_ID_SPOOL_USER,  /* spool_user, with the login name as an attribute
	                          (smtp-submit on 587/465) */
	SERVER_ID_NONE,        /* spool_user and no login at all: the pre-login protocol
	                          starts the session with worker_start_session() when it
	                          is done (smtp-submit on 25: at the first MAIL) */
};

/* Hex digits of a session id: 48 random bits, also a queue-id prefix later. */
#define SESSION_ID_LEN 12

/* What the monitor tells the session about its connection (MSG_START_SESSION).  The
 * session logs it and, in smtp-submit, writes it into Received: headers. */
struct session_info {
	char user[AUTH_MAX_USER + 1];   /* canonical login name (pw_name); "" if no login */
	char rip[64], lip[64];          /* addresses as text */
	unsigned rport, lport;
	char tls_version[33];           /* "TLSv1.3"; "" without TLS at login */
	char tls_cipher[65];
	char auth_mech[17];             /* "PLAIN", "LOGIN", "USER"; "" if no login */
	char session_id[SESSION_ID_LEN + 1];
	char helo[256];                 /* smtp-submit: HELO/EHLO argument; "" if none */
	bool esmtp;                     /* smtp-submit: it was EHLO */
};

struct server_session {
	struct conn *c;                 /* the client, through the worker's relay */
	const struct config *cfg;
	const struct passwd *pw;        /* the account the session runs as */
	const char *user;               /* = info->user: the canonical login name */
	const char *rip;                /* = info->rip */
	const struct session_info *info;
};

struct server_proto {
	const char *name;               /* "ipop3d": syslog ident, libwrap name, config section */
	const char *pam_service;        /* default PAM service: "pop3" */
	size_t line_max;                /* longest pre-login command line */
	bool exclusive;                 /* one session per user at a time (POP3) */
	enum server_identity identity;  /* who the session runs as */
	/* Send the refusal and return. c is plain or TLS as far as the handshake got. */
	void (*refuse)(struct conn *c, enum server_refusal why);
	/* Worker: the pre-login protocol (greeting included).  Returns 1 after
	 * worker_login() said LOGIN_OK, 0 when the client is done. Runs unprivileged. */
	int (*prelogin)(struct server_worker *w);
	/* Session: the protocol after login, as the mail user.  Returns the exit status. */
	int (*session)(struct server_session *s);
	/* smtp-submit: run as root in a child of the monitor when the session asks
	 * (session_request_delivery()): deliver the queued message.  NULL: refused. */
	int (*deliver)(const struct config *cfg, const char *queue_id);
};

/* main() of ipop3d and imapd: parses [-c FILE] [-s] | -t [-c FILE] (server_main.c), then
 * check_run() or server_run(). */
int server_main(const struct server_proto *p, int argc, char **argv);

/* main() of every daemon after option parsing: server_setup() then server_serve().
 * Never returns. */
void server_run(const struct server_proto *p, const char *config_path, bool implicit_tls)
	__attribute__((noreturn));

/* The set-up, usable without a connection (smtp-submit -q, -bp): fd 2 to /dev/null,
 * the config (and its owner and mode), the log.  Never fails: a bad config is kept as
 * *error_r (NULL when fine) for server_serve() to refuse with, or for the caller to
 * report.  The result lives until exit. */
struct server_conn;
struct server_conn *server_setup(const struct server_proto *p, const char *config_path,
				 const char **error_r);
const struct config *server_config(const struct server_conn *sc);
/* Serve the one connection on fd 0/1: libwrap, TLS context, the worker, the monitor.
 * Never returns. */
void server_serve(struct server_conn *sc, bool implicit_tls) __attribute__((noreturn));

/* Worker: ask the monitor to authenticate.  method: "USER", "PLAIN", "LOGIN".
 * Wipes pass.  On LOGIN_OK w->user is the canonical name (the account's pw_name, which
 * may differ from what was typed) and the caller returns 1 from prelogin at once. */
enum server_login worker_login(struct server_worker *w, const char *method,
			       const char *user, char *pass);
/* Worker: STLS/STARTTLS on the client connection; updates plaintext_ok.  0 or -1. */
int worker_starttls(struct server_worker *w);
/* Worker, SERVER_ID_NONE (smtp-submit on port 25): start the session now, without a
 * login, with w->helo/esmtp and the TLS state in its session_info; on LOGIN_OK the
 * caller returns 1 from prelogin at once and the worker relays (the bytes the client
 * pipelined go to the session first). */
enum server_login worker_start_session(struct server_worker *w);
/* Session (smtp-submit): ask the monitor to deliver the message just queued, in a root
 * child of its own (server_proto.deliver).  Does not wait for the delivery.  0 or -1. */
int session_request_delivery(const char *queue_id);

#endif
