/* The command line shared by the per-connection daemons (ipop3d, imapd):
 *   NAME [-c FILE] [-s]     one connection on fd 0/1; -s: implicit TLS
 *   NAME -t [-c FILE]       check the configuration and print fixes */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/log.h"
#include "privsep/check.h"
#include "privsep/server.h"

static void __attribute__((noreturn)) usage(const char *name)
{
	struct stat st;

	/* Under inetd fd 2 may be the client's socket: never write there. */
	if (fstat(2, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "usage: %s [-c FILE] [-s]\n"
				"       %s -t [-c FILE]\n", name, name);
	} else {
		const char *err;
		if (log_open("syslog", false, &err) == 0)
			log_err("usage: %s [-c FILE] [-s] | -t [-c FILE]: bad arguments", name);
	}
	exit(2);
}

int server_main(const struct server_proto *p, int argc, char **argv)
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
			usage(p->name);
		}
	}
	if (optind != argc)
		usage(p->name);
	log_init(p->name, check);
	if (check)
		return check_run(p, config_path);
	server_run(p, config_path, implicit_tls);
}
