/* imapd: IMAP4rev1 (RFC 3501) and IMAPS for inetd or systemd socket activation.
 *
 *   imapd [-c FILE] [-s]      one connection on fd 0/1; -s: implicit TLS (port 993)
 *   imapd -t [-c FILE]        check the configuration and print fixes
 *
 * Everything after option parsing is common/server.c: the root monitor, the unprivileged
 * worker that runs imap_prelogin(), and the session as the mail user (imap_session()). */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "privsep/check.h"
#include "base/plimits.h"
#include "base/log.h"
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

static void __attribute__((noreturn)) usage(void)
{
	struct stat st;

	/* Under inetd fd 2 may be the client's socket: never write there. */
	if (fstat(2, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "usage: imapd [-c FILE] [-s]\n"
				"       imapd -t [-c FILE]\n");
	} else {
		const char *err;
		if (log_open("syslog", false, &err) == 0)
			log_err("usage: imapd [-c FILE] [-s] | -t [-c FILE]: bad arguments");
	}
	exit(2);
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	bool implicit_tls = false, check = false;
	int ch;

	/* a client that goes away must not kill us in the middle of a write */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	while ((ch = getopt(argc, argv, "c:st")) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 's':
			implicit_tls = true;
			break;
		case 't':
			check = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init(imap_proto.name, check);
	if (check)
		return check_run(&imap_proto, config_path);
	server_run(&imap_proto, config_path, implicit_tls);
}
