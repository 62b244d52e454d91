/* libwrap (tcp_wrappers): hosts.allow / hosts.deny decide per connection.  Runs in the
 * root monitor before any byte is read from the client. */
#include <syslog.h>
#include <tcpd.h>
#include "privsep/wrap.h"

/* libwrap wants these defined by the program (its own logging of "refused" lines). */
int allow_severity = LOG_INFO;
int deny_severity = LOG_WARNING;

bool wrap_allowed(const struct config *cfg, const char *daemon, int fd)
{
	struct request_info req;

	/* libwrap keeps the table paths in globals; they point into cfg, which outlives the
	 * call. */
	hosts_allow_table = cfg->hosts_allow;
	hosts_deny_table = cfg->hosts_deny;
	request_init(&req, RQ_DAEMON, daemon, RQ_FILE, fd, 0);
	fromhost(&req);
	return hosts_access(&req) != 0;
}
