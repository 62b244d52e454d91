/* smtp-submit: SMTP for local users on port 25, authenticated submission on 587
 * (STARTTLS) and 465 (implicit TLS), a spool, local delivery.  The command line
 * (submit.h):
 *   smtp-submit [-c FILE] -m mx|submission|smtps   one connection on fd 0/1
 *   smtp-submit [-c FILE] -q                        run the queue once
 *   smtp-submit [-c FILE] -bp                       list the queue
 *   smtp-submit -t [-c FILE]                        check config, spool, users, domains
 *   smtp-submit [-c FILE] -k DOMAIN SELECTOR [rsa|ed25519]   make a DKIM key */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/log.h"
#include "base/plimits.h"
#include "privsep/check.h"
#include "privsep/msg.h"
#include "privsep/server.h"
#include "spool/envelope.h"
#include "deliver.h"
#include "smtp.h"
#include "submit.h"
#include "submit_dkim.h"

enum submit_mode submit_mode = SUBMIT_MODE_MX;

/* the monitor checks MSG_DELIVER's ids in the spool's own form */
_Static_assert(MSG_QUEUE_ID_LEN == ENVELOPE_ID_LEN, "queue ids: msg.h and envelope.h");

static void __attribute__((noreturn)) usage(const char *name)
{
	struct stat st;

	/* Under inetd fd 2 may be the client's socket: never write there. */
	if (fstat(2, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "usage: %s [-c FILE] -m mx|submission|smtps\n"
				"       %s [-c FILE] -q | -bp\n"
				"       %s -t [-c FILE]\n"
				"       %s [-c FILE] -k DOMAIN SELECTOR [rsa|ed25519]\n",
				name, name, name, name);
	} else {
		const char *err;
		if (log_open("syslog", false, &err) == 0)
			log_err("usage: %s [-c FILE] -m mx|submission|smtps | -q | -bp | "
				"-t [-c FILE] | -k DOMAIN SELECTOR: bad arguments", name);
	}
	exit(2);
}

/* server_proto.deliver: in a root child of the monitor, when the session asks. */
static int submit_deliver(const struct config *cfg, const char *queue_id)
{
	const char *err;

	if (deliver_message(cfg, queue_id, &err) == -1) {
		log_err("%s: delivery failed: %s", queue_id, err);
		return -1;
	}
	return 0;
}

/* One protocol, its identity by mode: port 25 has no login (the session starts at the
 * first MAIL, SERVER_ID_NONE), 587 and 465 run the session as spool_user with the login
 * as an attribute. */
static struct server_proto submit_proto = {
	.name = "smtp-submit",
	.pam_service = "smtp",
	.line_max = SMTP_MAX_AUTH_LINE,   /* an AUTH line with its initial response */
	.exclusive = false,
	.identity = SERVER_ID_NONE,
	.refuse = smtp_prelogin_refuse,
	.prelogin = smtp_prelogin,
	.session = smtp_session,
	.deliver = submit_deliver,
};

enum submit_cmd { CMD_SERVE, CMD_QUEUE, CMD_LIST, CMD_CHECK, CMD_DKIM_KEY };

int main(int argc, char **argv)
{
	const char *config_path = NULL, *mode = NULL, *key_domain = NULL, *err;
	enum submit_cmd cmd = CMD_SERVE;
	int ch;

	/* a client that goes away must not kill us in the middle of a write, nor a spool
	 * file past RLIMIT_FSIZE in the middle of DATA (the write fails and is answered) */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	opterr = 0;
	while ((ch = getopt(argc, argv, "b:c:k:m:qt")) != -1) {
		switch (ch) {
		case 'b':
			if (strcmp(optarg, "p") != 0 || cmd != CMD_SERVE)
				usage(submit_proto.name);
			cmd = CMD_LIST;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'k':
			if (cmd != CMD_SERVE)
				usage(submit_proto.name);
			cmd = CMD_DKIM_KEY;
			key_domain = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'q':
			if (cmd != CMD_SERVE)
				usage(submit_proto.name);
			cmd = CMD_QUEUE;
			break;
		case 't':
			if (cmd != CMD_SERVE)
				usage(submit_proto.name);
			cmd = CMD_CHECK;
			break;
		default:
			usage(submit_proto.name);
		}
	}
	/* -k DOMAIN SELECTOR [rsa|ed25519]: the selector and the type follow the options */
	int extra = cmd == CMD_DKIM_KEY ? argc - optind : 0;
	if (cmd == CMD_DKIM_KEY && (extra < 1 || extra > 2))
		usage(submit_proto.name);
	if (optind + extra != argc || (cmd == CMD_SERVE) != (mode != NULL))
		usage(submit_proto.name);
	bool implicit_tls = false;
	if (mode != NULL) {
		if (strcmp(mode, "mx") == 0) {
			submit_mode = SUBMIT_MODE_MX;
		} else if (strcmp(mode, "submission") == 0) {
			submit_mode = SUBMIT_MODE_SUBMISSION;
			submit_proto.identity = SERVER_ID_SPOOL_USER;
		} else if (strcmp(mode, "smtps") == 0) {
			submit_mode = SUBMIT_MODE_SMTPS;
			submit_proto.identity = SERVER_ID_SPOOL_USER;
			implicit_tls = true;
		} else {
			usage(submit_proto.name);
		}
	}
	log_init(submit_proto.name, cmd != CMD_SERVE);
	if (cmd == CMD_CHECK) {
		int status = check_run(&submit_proto, config_path);
		struct config cfg;
		if (config_load(&cfg, config_path, submit_proto.name, false, &err) == 0 &&
		    submit_check(&cfg, stdout, true) != 0)
			status = 1;
		config_free(&cfg);
		return status;   /* a config that does not load: check_run() said why */
	}
	if (cmd == CMD_DKIM_KEY) {
		struct config cfg;
		int status = 1;
		if (config_load(&cfg, config_path, submit_proto.name, false, &err) == -1)
			fprintf(stderr, "%s: %s\n", submit_proto.name, err);
		else
			status = submit_dkim_keygen(&cfg, key_domain, argv[optind],
						    extra == 2 ? argv[optind + 1] : NULL,
						    stdout, stderr);
		config_free(&cfg);
		return status;
	}
	/* server_setup() points fd 2 at /dev/null (under inetd it is the client); the queue
	 * commands run from a shell or a timer, where it is the caller's */
	int errfd = cmd != CMD_SERVE ? dup(2) : -1;
	struct server_conn *sc = server_setup(&submit_proto, config_path, &err);
	const struct config *cfg = server_config(sc);
	if (cmd == CMD_QUEUE || cmd == CMD_LIST) {
		if (errfd != -1) {
			dup2(errfd, 2);
			close(errfd);
		}
		if (err != NULL) {
			fprintf(stderr, "%s: %s\n", submit_proto.name, err);
			return 1;
		}
		return cmd == CMD_QUEUE ? queue_run(cfg) : queue_list(cfg, stdout);
	}
	/* before the worker's sandbox, which can resolve nothing */
	(void)submit_hostname(cfg);
	server_serve(sc, implicit_tls);
}
