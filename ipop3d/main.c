/* ipop3d: POP3 (RFC 1939) and POP3S for inetd or systemd socket activation.
 *
 *   ipop3d [-c FILE] [-s]     one connection on fd 0/1; -s: implicit TLS (port 995)
 *   ipop3d -t [-c FILE]       check the configuration and print fixes
 *
 * Option parsing is server_main() (common/privsep/server_main.c); everything after it is
 * common/privsep/server.c: the root monitor, the unprivileged
 * worker that runs pop3_prelogin(), and the session as the mail user (pop3_session()). */
#include "base/plimits.h"
#include "pop3.h"
#include "privsep/server.h"

static const struct server_proto pop3_proto = {
	.name = "ipop3d",
	.pam_service = "pop3",
	/* pre-login lines: SASL responses may be this long; ordinary commands are held to
	 * POP3_MAX_CMD_LINE by pop3_parse() */
	.line_max = SASL_MAX_LINE,
	.exclusive = true,
	.identity = SERVER_ID_LOGIN_USER,   /* the session runs as the login user */
	.refuse = pop3_prelogin_refuse,
	.prelogin = pop3_prelogin,
	.session = pop3_session,
};

int main(int argc, char **argv)
{
	return server_main(&pop3_proto, argc, argv);
}
