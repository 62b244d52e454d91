/* The stub monitor (stub_monitor.h), shared by the unit tests and the fuzz targets. */
#include <string.h>
#include "base/linebuf.h"
#include "base/log.h"
#include "base/util.h"
#include "stub_monitor.h"

bool stub_monitor_any_user;

enum server_login stub_monitor_login(struct server_worker *w, const char *method,
				     const char *user, char *pass)
{
	enum server_login r = LOGIN_FAIL;

	log_info("stub-login: method=%s, user=%s, pass=%s", method, user, pass);
	if ((stub_monitor_any_user || strcmp(user, "ned") == 0) && strcmp(pass, "secret") == 0)
		r = LOGIN_OK;
	else if (strcmp(user, "spacey") == 0 && strcmp(pass, " two words ") == 0)
		r = LOGIN_OK;
	else if (strcmp(pass, "tempfail") == 0)
		r = LOGIN_TEMPFAIL;
	else if (strcmp(pass, "throttled") == 0)
		r = LOGIN_THROTTLED;
	else if (strcmp(pass, "inuse") == 0)
		r = LOGIN_INUSE;
	util_wipe(pass, strlen(pass));
	/* as the monitor's MSG_AUTH_REPLY does: the canonical name comes back */
	if (r == LOGIN_OK && util_snprintf(w->user, sizeof(w->user), "%s", user) == -1)
		r = LOGIN_TEMPFAIL;
	return r;
}

int stub_monitor_starttls(struct server_worker *w)
{
	linebuf_reset(w->c->lb);   /* as conn_starttls() does: pipelined plaintext is gone */
	w->plaintext_ok = true;
	return 0;
}

enum server_login stub_monitor_start_session(struct server_worker *w, const char *line,
					     size_t len)
{
	log_info("stub-start-session: helo=%s, esmtp=%d, line=%.*s", w->helo, (int)w->esmtp,
		 (int)len, line);
	return strcmp(w->helo, "tempfail.example") == 0 ? LOGIN_TEMPFAIL : LOGIN_OK;
}
