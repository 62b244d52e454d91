/* A test-only daemon (never built by `make`, never installed): the smallest protocol on
 * server_run(), to run the identity policies that no shipped daemon uses yet.
 *
 *   testd -i login|spool|none -c FILE [-s]
 *
 * Pre-login: "+OK testd", then "LOGIN user pass" lines, or with -i none "START helo"
 * (worker_start_session(), with that HELO).  The session answers one line that says who
 * it runs as and what its session_info holds, then reads lines: "DELIVER id" asks the
 * monitor for a delivery (session_request_delivery()), whose root child writes
 * state_dir/delivered-<id> with its uid; anything else ends the session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/log.h"
#include "base/util.h"
#include "privsep/server.h"

static void testd_refuse(struct conn *c, enum server_refusal why)
{
	conn_printf(c, "-ERR refused %d\r\n", (int)why);
}

static int testd_prelogin(struct server_worker *w)
{
	const char *line;
	size_t len;

	conn_printf(w->c, "+OK testd\r\n");
	conn_flush(w->c);
	while (conn_read_line(w->c, &line, &len) == 1) {
		char buf[600], *user, *pass = NULL;
		if (len >= sizeof(buf))
			return 0;
		memcpy(buf, line, len);
		buf[len] = '\0';
		if (strncmp(buf, "START ", 6) != 0 &&
		    (strncmp(buf, "LOGIN ", 6) != 0 || (pass = strchr(buf + 6, ' ')) == NULL)) {
			conn_printf(w->c, "-ERR what\r\n");
			conn_flush(w->c);
			continue;
		}
		if (strncmp(buf, "START ", 6) == 0) {
			if (util_snprintf(w->helo, sizeof(w->helo), "%s", buf + 6) == -1)
				return 0;
			w->esmtp = true;
			enum server_login r = worker_start_session(w);
			if (r == LOGIN_OK)
				return 1;
			conn_printf(w->c, "-ERR start %d\r\n", (int)r);
			conn_flush(w->c);
			continue;
		}
		user = buf + 6;
		*pass++ = '\0';
		enum server_login r = worker_login(w, "PLAIN", user, pass);
		if (r == LOGIN_OK)
			return 1;
		conn_printf(w->c, "-ERR login %d\r\n", (int)r);
		conn_flush(w->c);
	}
	return 0;
}

static int testd_session(struct server_session *s)
{
	const struct session_info *si = s->info;
	const char *line;
	size_t len;

	conn_printf(s->c, "+OK session uid=%lu euid=%lu pw=%s user=<%s> mech=%s tls=%s "
		    "rip=%s rport=%u lip=%s lport=%u id=%s helo=%s esmtp=%d\r\n",
		    (unsigned long)getuid(), (unsigned long)geteuid(), s->pw->pw_name,
		    si->user, si->auth_mech[0] ? si->auth_mech : "-",
		    si->tls_version[0] ? si->tls_version : "-", si->rip, si->rport, si->lip,
		    si->lport, si->session_id, si->helo[0] ? si->helo : "-", (int)si->esmtp);
	conn_flush(s->c);
	while (conn_read_line(s->c, &line, &len) == 1 && strncmp(line, "DELIVER ", 8) == 0) {
		int rc = session_request_delivery(line + 8);
		conn_printf(s->c, "+OK deliver %d\r\n", rc);
		conn_flush(s->c);
	}
	log_info("logout: user=<%s>, session=%s", si->user, si->session_id);
	return 0;
}

/* As root, in a child of the monitor. */
static int testd_deliver(const struct config *cfg, const char *id)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/delivered-%s", cfg->state_dir, id);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "uid=%lu euid=%lu\n", (unsigned long)getuid(), (unsigned long)geteuid());
	return fclose(f) == 0 ? 0 : -1;
}

static struct server_proto testd_proto = {
	.name = "smtp-submit",      /* its config section and log ident */
	.pam_service = "smtp",
	.line_max = 512,
	.refuse = testd_refuse,
	.prelogin = testd_prelogin,
	.session = testd_session,
	.deliver = testd_deliver,
};

int main(int argc, char **argv)
{
	const char *config = NULL;
	bool tls = false;
	int ch;

	while ((ch = getopt(argc, argv, "c:i:s")) != -1) {
		if (ch == 'c')
			config = optarg;
		else if (ch == 's')
			tls = true;
		else if (ch == 'i' && strcmp(optarg, "login") == 0)
			testd_proto.identity = SERVER_ID_LOGIN_USER;
		else if (ch == 'i' && strcmp(optarg, "spool") == 0)
			testd_proto.identity = SERVER_ID_SPOOL_USER;
		else if (ch == 'i' && strcmp(optarg, "none") == 0)
			testd_proto.identity = SERVER_ID_NONE;
		else
			return 2;
	}
	log_init(testd_proto.name, false);
	server_run(&testd_proto, config, tls);
}
