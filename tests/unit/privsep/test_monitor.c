/* monitor.c: a compromised worker (here: this test, speaking the worker's side of the
 * socketpair) sends user names that the worker itself would have refused.  The monitor
 * must refuse them too, as a failed login, before the throttle and PAM: no throttle file
 * is written and the log says reason=bad-username.  A good name, sent the same way, does
 * reach the throttle (and PAM, with a service that exists nowhere), so the absence above
 * is the check's doing. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "base/log.h"
#include "base/util.h"
#include "privsep/msg.h"
#include "privsep/server_int.h"
#include "privsep/throttle.h"
#include "unit.h"

static char tmpdir[256], logpath[512], throttle_path[512];
static const struct server_proto proto = { .name = "test", .pam_service = "postern-none" };

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return xstrdup("");
	char *buf = xmalloc(1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* One request to a real monitor_main() in a child; the reply byte, or -1. */
static int ask_monitor(const char *user, const char *pass)
{
	struct server_conn sc;
	int sv[2], data[2];

	memset(&sc, 0, sizeof(sc));
	sc.p = &proto;
	sc.conn_slot = -1;          /* no connection-cap place to give back */
	config_defaults(&sc.cfg, "ipop3d");
	free(sc.cfg.state_dir);
	sc.cfg.state_dir = xstrdup(tmpdir);
	free(sc.cfg.pam_service);
	sc.cfg.pam_service = xstrdup("postern-none");
	sc.cfg.login_fail_delay_ms = 0;
	sc.cfg.login_fail_delay_max_ms = 0;
	snprintf(sc.rip_str, sizeof(sc.rip_str), "192.0.2.7");
	snprintf(sc.lip_str, sizeof(sc.lip_str), "192.0.2.1");
	if (netaddr_parse("192.0.2.7", &sc.rip) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, data) < 0)
		return -1;
	pid_t worker = fork();           /* a worker for the monitor to wait for */
	if (worker == 0)
		_exit(0);
	pid_t mon = fork();
	if (mon == 0) {
		const char *err;
		close(sv[0]);
		if (log_open(logpath, false, &err) < 0)
			_exit(99);
		monitor_main(&sc, sv[1], data[1], worker, -1);
	}
	close(sv[1]);
	close(data[1]);
	config_free(&sc.cfg);

	struct msg m;
	const char *err;
	int reply = -1;
	uint8_t r;
	msg_init(&m, MSG_AUTH);
	if (msg_add_str(&m, MSG_AUTH_MECH, "PLAIN") == 0 &&
	    msg_add_str(&m, MSG_AUTH_AUTHCID, user) == 0 &&
	    msg_add_str(&m, MSG_AUTH_SECRET, pass) == 0 &&
	    msg_add_str(&m, MSG_AUTH_TLS_VERSION, "TLSv1.3") == 0 && msg_send(sv[0], &m) == 0 &&
	    msg_recv(sv[0], &m, 30000, &err) == 1 && m.type == MSG_AUTH_REPLY &&
	    msg_get_u8(&m, MSG_AUTH_REPLY_RESULT, &r) == 0)
		reply = r;
	close(data[0]);
	close(sv[0]);
	int st;
	waitpid(mon, &st, 0);
	waitpid(worker, &st, 0);
	return reply;
}

static void test_bad_names(void)
{
	static const char *const bad[] = { "ned%x", "ned\x7f", "../x", "ned+tag", "ned*",
					   "ned(uid=0)", "ned x", "root\x1b" };
	struct stat st;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(ask_monitor(bad[i], "wrong-password-x") == LOGIN_FAIL);
		/* neither the throttle nor (after it) PAM was asked */
		CHECK(stat(throttle_path, &st) == -1 && errno == ENOENT);
	}
	char *log = read_file(logpath);
	size_t count = 0;
	for (const char *p = log; (p = strstr(p, "auth-failed: user=<?>, method=PLAIN, "
					     "reason=bad-username, rip=192.0.2.7")) != NULL; p++)
		count++;
	CHECK(count == sizeof(bad) / sizeof(bad[0]));
	CHECK(strstr(log, "wrong-password-x") == NULL);
	free(log);

	/* a name that passes goes on to the throttle (which writes its file) and to PAM */
	int r = ask_monitor("ptnosuchuser", "wrong-password-y");
	CHECK(r == LOGIN_FAIL || r == LOGIN_TEMPFAIL);
	CHECK(stat(throttle_path, &st) == 0);
	log = read_file(logpath);
	CHECK(strstr(log, "reason=bad-username, rip=192.0.2.7\n") != NULL);
	CHECK(strstr(log, "method=PLAIN, reason=unknown-user") != NULL ||
	      strstr(log, "auth-tempfail") != NULL);
	free(log);
}

/* A compromised worker of a daemon with logins (identity LOGIN_USER or SPOOL_USER) asks
 * for a session without one (MSG_OPEN_SESSION, port 25's hand-over): the monitor must
 * refuse and stop serving it, never fork a session. */
static void test_open_session_needs_identity_none(void)
{
	static const enum server_identity ids[] = { SERVER_ID_LOGIN_USER, SERVER_ID_SPOOL_USER };

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct server_proto p = proto;
		struct server_conn sc;
		int sv[2], data[2];

		p.identity = ids[i];
		memset(&sc, 0, sizeof(sc));
		sc.p = &p;
		sc.conn_slot = -1;
		config_defaults(&sc.cfg, "smtp-submit");
		free(sc.cfg.state_dir);
		sc.cfg.state_dir = xstrdup(tmpdir);
		free(sc.cfg.spool_user);
		sc.cfg.spool_user = xstrdup("root");   /* never used: nothing may start */
		snprintf(sc.rip_str, sizeof(sc.rip_str), "192.0.2.8");
		CHECK(netaddr_parse("192.0.2.8", &sc.rip) == 0);
		CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, data) == 0);
		pid_t worker = fork();
		if (worker == 0)
			_exit(0);
		pid_t mon = fork();
		if (mon == 0) {
			const char *err;
			close(sv[0]);
			if (log_open(logpath, false, &err) < 0)
				_exit(99);
			monitor_main(&sc, sv[1], data[1], worker, -1);
		}
		close(sv[1]);
		close(data[1]);
		config_free(&sc.cfg);
		struct msg m;
		const char *err;
		msg_init(&m, MSG_OPEN_SESSION);
		CHECK(msg_add_str(&m, MSG_OPEN_HELO, "evil.example") == 0);
		CHECK(msg_send(sv[0], &m) == 0);
		/* no answer: the monitor closed the channel */
		CHECK(msg_recv(sv[0], &m, 30000, &err) == 0);
		/* and nothing reads the data stream: no session was forked */
		char b;
		CHECK(read(data[0], &b, 1) == 0);
		close(data[0]);
		close(sv[0]);
		int st;
		CHECK(waitpid(mon, &st, 0) == mon && WIFEXITED(st) && WEXITSTATUS(st) == 0);
		waitpid(worker, &st, 0);
	}
	char *log = read_file(logpath);
	CHECK(strstr(log, "monitor: malformed or unexpected session start from worker, "
		      "rip=192.0.2.8") != NULL);
	free(log);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test", false);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_monitor.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	snprintf(throttle_path, sizeof(throttle_path), "%s/" THROTTLE_FILE_NAME, tmpdir);

	test_bad_names();
	test_open_session_needs_identity_none();

	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "rm -rf failed\n");
	return unit_done("monitor");
}
