/* relay.c with real processes and sockets: a worker child relays between the client (this
 * process) and a session child.  Checks: 20 KiB already buffered behind the login (more
 * than the 16 KiB the relay once copied it into) and 100 KiB after it reach the session
 * whole and in order; the client's half-close reaches the session only after every byte;
 * the session's 1 MiB answer, written after that EOF, reaches the client whole; the
 * relay ends when the session ends, and on the idle timeout. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/conn.h"
#include "base/plimits.h"
#include "base/util.h"
#include "privsep/server_int.h"
#include "unit.h"

#define PRE (20 * 1024)
#define MORE (100 * 1024)
#define ANSWER (1024 * 1024)

static char byte_at(size_t i, unsigned salt)
{
	return (char)('a' + (i * 7 + salt + i / 251) % 26);
}

static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		exit(1);
}

/* The session: everything until EOF must be the client's bytes; then the answer. */
static int fake_session(int fd)
{
	static char buf[65536];
	size_t got = 0;
	int bad = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != byte_at(got + (size_t)i, 1))
				bad = 1;
		got += (size_t)n;
	}
	if (got != PRE + MORE)
		bad = 1;
	char *ans = malloc(ANSWER);
	for (size_t i = 0; i < ANSWER; i++)
		ans[i] = byte_at(i, 2);
	if (util_write_all(fd, ans, ANSWER) == -1)
		bad = 1;
	free(ans);
	return bad ? 2 : 0;
}

static void test_relay(void)
{
	int cs[2], ss[2];
	char *pre = malloc(PRE + MORE);

	pair(cs);
	pair(ss);
	for (size_t i = 0; i < PRE + MORE; i++)
		pre[i] = byte_at(i, 1);
	/* pipelined behind the login: in the worker's buffer before the relay starts */
	CHECK(util_write_all(cs[1], pre, PRE) == 0);
	pid_t worker = fork();
	if (worker == 0) {
		struct conn c;
		const char *data;
		close(ss[1]);
		conn_init(&c, cs[0], cs[0], SASL_MAX_LINE, 5);
		while (conn_pending(&c, &data) < PRE)
			if (conn_read_more(&c, true) <= 0)
				_exit(3);
		int rc = relay_run(&c, ss[0], 5);
		conn_deinit(&c);
		_exit(rc == 0 ? 0 : 4);
	}
	pid_t session = fork();
	if (session == 0) {
		close(cs[1]);
		close(ss[0]);
		_exit(fake_session(ss[1]));
	}
	close(cs[0]);
	close(ss[0]);
	close(ss[1]);
	CHECK(util_write_all(cs[1], pre + PRE, MORE) == 0);
	shutdown(cs[1], SHUT_WR);
	/* the answer, whole */
	static char buf[65536];
	size_t got = 0;
	int bad = 0;
	for (;;) {
		ssize_t n = read(cs[1], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != byte_at(got + (size_t)i, 2))
				bad = 1;
		got += (size_t)n;
	}
	CHECK(got == ANSWER);
	CHECK(!bad);
	int st;
	CHECK(waitpid(session, &st, 0) == session && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(waitpid(worker, &st, 0) == worker && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(cs[1]);
	free(pre);
}

/* Nobody says anything: the idle timeout ends the relay. */
static void test_idle(void)
{
	int cs[2], ss[2];

	pair(cs);
	pair(ss);
	pid_t worker = fork();
	if (worker == 0) {
		struct conn c;
		conn_init(&c, cs[0], cs[0], SASL_MAX_LINE, 1);
		int rc = relay_run(&c, ss[0], 1);
		conn_deinit(&c);
		_exit(rc == 0 ? 0 : 4);
	}
	int st;
	CHECK(waitpid(worker, &st, 0) == worker && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(cs[0]);
	close(cs[1]);
	close(ss[0]);
	close(ss[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_relay();
	test_idle();
	return unit_done("test_relay");
}
