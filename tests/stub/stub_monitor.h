/* A stand-in for the monitor in the daemons' unit tests and fuzz targets: it answers a
 * login the way worker_login() would after a round trip to the monitor, and does what
 * worker_starttls() does to the connection's state, without TLS, PAM or processes.
 *
 * Logins: "secret" for the user ned (or any user with stub_monitor_any_user), " two
 * words " for spacey; the passwords "tempfail", "throttled" and "inuse" give those
 * answers; anything else fails.  Each call logs
 *   stub-login: method=M, user=U, pass=P
 * (the tests read it to see what would have reached the monitor). */
#ifndef POSTERN_STUB_MONITOR_H
#define POSTERN_STUB_MONITOR_H
#include <stdbool.h>
#include <stddef.h>
#include "privsep/server.h"

extern bool stub_monitor_any_user;

enum server_login stub_monitor_login(struct server_worker *w, const char *method,
				     const char *user, char *pass);
int stub_monitor_starttls(struct server_worker *w);
/* smtp-submit on port 25: what worker_start_session() and the hand-over of the MAIL line
 * would do; logs "stub-start-session: helo=H, esmtp=0|1, line=L" and succeeds, but for
 * the HELO "tempfail.example" (LOGIN_TEMPFAIL). */
enum server_login stub_monitor_start_session(struct server_worker *w, const char *line,
					     size_t len);

#endif
