/* smtp-submit: the SMTP protocol parts of the daemon, shared by the worker's pre-login
 * dialogue (smtp_prelogin.c) and the session (smtp_session.c).  See
 * docs/architecture.md "smtp-submit". */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H
#include <stddef.h>
#include "privsep/server.h"
#include "submit.h"

/* ---- smtp-worker (smtp_prelogin.c) ---- */

/* The worker's calls to the monitor, replaceable by the unit tests and fuzz targets
 * (tests/stub/stub_monitor.h). */
struct smtp_login_ops {
	enum server_login (*login)(struct server_worker *w, const char *method,
				   const char *user, char *pass);
	int (*starttls)(struct server_worker *w);
	/* Port 25: start the session (worker_start_session()) and give it line[0..len),
	 * the MAIL command the client sent (without CRLF), as its first input; the bytes
	 * pipelined behind it stay in w->c for the relay. */
	enum server_login (*start_session)(struct server_worker *w, const char *line,
					   size_t len);
};

/* The pre-login dialogue (greeting, EHLO/HELO, STARTTLS, AUTH, NOOP, RSET, HELP, VRFY,
 * QUIT) in mode `mode`.  Returns 1 when the session has the connection (after 235 on
 * 587/465, at the first MAIL on 25), 0 when the client is done. */
int smtp_prelogin_run(struct server_worker *w, enum submit_mode mode,
		      const struct smtp_login_ops *ops);
/* server_proto.prelogin: the above with the real monitor, in submit_mode. */
int smtp_prelogin(struct server_worker *w);
/* server_proto.refuse */
void smtp_prelogin_refuse(struct conn *c, enum server_refusal why);
/* The worker's half of the port-25 hand-over: worker_start_session(), then the MAIL
 * line into w->data_fd. */
enum server_login smtp_prelogin_start_session(struct server_worker *w, const char *line,
					      size_t len);

/* ---- end smtp-worker ---- */

/* ---- smtp-session (smtp_session.c, smtp_data.c) ---- */

/* The session after the worker's handoff, as spool_user: the SMTP transaction (MAIL,
 * RCPT, DATA, BDAT) into the spool, and every other command of RFC 5321 but STARTTLS
 * and AUTH (the worker's).  s->info: the login (SASL user, "" on port 25), the client,
 * TLS, HELO/EHLO.  Its first output is the reply to the first command it reads (on port
 * 25 the MAIL that made the worker hand over).  Returns the exit status. */
int smtp_session(struct server_session *s);

/* ---- end smtp-session ---- */

#endif
