/* smtp-submit: the SMTP protocol parts of the daemon, shared by the worker's pre-login
 * dialogue (smtp_prelogin.c) and the session (smtp_session.c). */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H
#include "privsep/server.h"

/* ---- smtp-session (smtp_session.c, smtp_data.c) ---- */

/* The session after the worker's handoff, as spool_user: the SMTP transaction (MAIL,
 * RCPT, DATA, BDAT) into the spool, and every other command of RFC 5321 but STARTTLS
 * and AUTH (the worker's).  s->info: the login (SASL user, "" on port 25), the client,
 * TLS, HELO/EHLO.  Its first output is the reply to the first command it reads (on port
 * 25 the MAIL that made the worker hand over).  Returns the exit status. */
int smtp_session(struct server_session *s);

/* ---- end smtp-session ---- */

#endif
