/* ipop3d: POP3 (RFC 1939) and POP3S for inetd or systemd socket activation.
 *
 *   ipop3d [-c FILE] [-s]     one connection on fd 0/1; -s: implicit TLS (port 995)
 *   ipop3d -t [-c FILE]       check the configuration and print fixes
 *
 * Everything after option parsing is common/server.c: the root monitor, the unprivileged
 * worker that runs pop3_prelogin(), and the session as the mail user (pop3_session()). */
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

static void __attribute__((noreturn)) usage(void)
{
	struct stat st;

	/* Under inetd fd 2 may be the client's socket: never write there. */
	if (fstat(2, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "usage: ipop3d [-c FILE] [-s]\n"
				"       ipop3d -t [-c FILE]\n");
	} else {
		const char *err;
		if (log_open("syslog", false, &err) == 0)
			log_err("usage: ipop3d [-c FILE] [-s] | -t [-c FILE]: bad arguments");
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
	log_init(pop3_proto.name, check);
	if (check)
		return check_run(&pop3_proto, config_path);
	server_run(&pop3_proto, config_path, implicit_tls);
}
