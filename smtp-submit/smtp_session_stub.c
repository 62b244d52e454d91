/* TEMPORARY stand-in for smtp_session() until the smtp-session branch lands; the lead
 * deletes this file when merging it (smtp_session.c defines the real one).  Weak, so
 * that both may be linked meanwhile.  Answers every command but QUIT with 451 4.3.2 and
 * what the session knows (who it runs as, its session_info), for the plumbing tests. */
#include <strings.h>
#include <unistd.h>
#include "base/conn.h"
#include "smtp.h"

__attribute__((weak)) int smtp_session(struct server_session *s)
{
	const struct session_info *si = s->info;
	const char *line;
	size_t len;

	while (conn_read_line(s->c, &line, &len) == 1) {
		if (len == 4 && strncasecmp(line, "QUIT", 4) == 0) {
			conn_printf(s->c, "221 2.0.0 Bye\r\n");
			break;
		}
		conn_printf(s->c, "451 4.3.2 stub session uid=%lu euid=%lu user=<%s> helo=%s "
			    "esmtp=%d tls=%s mech=%s\r\n", (unsigned long)getuid(),
			    (unsigned long)geteuid(), si->user, si->helo[0] ? si->helo : "-",
			    (int)si->esmtp, si->tls_version[0] ? si->tls_version : "-",
			    si->auth_mech[0] ? si->auth_mech : "-");
	}
	conn_flush(s->c);
	return 0;
}
