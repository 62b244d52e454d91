/* imapd: IMAP4rev1 (RFC 3501) and IMAPS for inetd or systemd socket activation.
 *
 *   imapd [-c FILE] [-s]      one connection on fd 0/1; -s: implicit TLS (port 993)
 *   imapd -t [-c FILE]        check the configuration and print fixes
 *
 * Option parsing is server_main() (common/privsep/server_main.c); everything after it is
 * common/privsep/server.c: the root monitor, the unprivileged
 * worker that runs imap_prelogin(), and the session as the mail user (imap_session()). */
#include "base/plimits.h"
#include "imap.h"
#include "privsep/server.h"

static const struct server_proto imap_proto = {
	.name = "imapd",
	.pam_service = "imap",
	/* pre-login lines; the session raises it to IMAP_MAX_LINE after login */
	.line_max = IMAP_MAX_LINE_PRELOGIN,
	.exclusive = false,                 /* a phone and a laptop at once */
	.identity = SERVER_ID_LOGIN_USER,   /* the session runs as the login user */
	.refuse = imap_prelogin_refuse,
	.prelogin = imap_prelogin,
	.session = imap_session,
};

int main(int argc, char **argv)
{
	return server_main(&imap_proto, argc, argv);
}
