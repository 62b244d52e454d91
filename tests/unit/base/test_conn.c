/* conn: line reading over a socketpair and over pipes, pipelining (what is flushed when),
 * raw reads after lines, limits, idle timeout, a vanished peer, and a TLS handshake
 * that meets garbage, silence or EOF.  The real TLS handshakes are in test_tls.c. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "base/conn.h"
#include "base/plimits.h"
#include "base/util.h"
#include "unit.h"

#define S(lit) lit, sizeof(lit) - 1

static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		perror("socketpair");
		exit(1);
	}
}

static void put(int fd, const char *s, size_t len)
{
	if (util_write_all(fd, s, len) == -1) {
		perror("write");
		exit(1);
	}
}

static void test_lines(void)
{
	struct conn c;
	int sv[2];
	const char *line;
	size_t len;
	char buf[64];

	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
	CHECK(!conn_has_input(&c));
	put(sv[1], S("USER ned\r\nPASS x y\nSTAT\r\nLI"));
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "USER ned");
	CHECK(len == 8);
	CHECK(conn_has_input(&c));       /* pipelined: more lines buffered */
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "PASS x y");
	CHECK(conn_has_input(&c));
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "STAT");
	CHECK(!conn_has_input(&c));      /* "LI" is not a line yet */
	put(sv[1], S("ST\r\n"));
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "LIST");

	/* raw reads take what the line reader buffered first */
	put(sv[1], S("A\r\nrawbytes"));
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "A");
	CHECK(conn_read(&c, buf, 3) == 3);
	CHECK(memcmp(buf, "raw", 3) == 0);
	CHECK(conn_read(&c, buf, sizeof(buf)) == 5);
	CHECK(memcmp(buf, "bytes", 5) == 0);
	put(sv[1], S("more"));
	CHECK(conn_read(&c, buf, sizeof(buf)) == 4);
	CHECK(conn_read(&c, buf, 0) == 0);
	CHECK(c.in_bytes == 46);

	/* a NUL or a lone CR rejects that line only */
	put(sv[1], S("a\0b\r\nx\ry\r\nNOOP\r\n"));
	CHECK(conn_read_line(&c, &line, &len) == LINEBUF_BAD_BYTE);
	CHECK(conn_read_line(&c, &line, &len) == LINEBUF_BAD_BYTE);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "NOOP");

	/* EOF, also in the middle of a line */
	put(sv[1], S("QU"));
	close(sv[1]);
	CHECK(conn_read_line(&c, &line, &len) == 0);
	CHECK(conn_read(&c, buf, sizeof(buf)) == 2); /* the partial line is still there */
	CHECK(conn_read(&c, buf, sizeof(buf)) == 0);
	conn_deinit(&c);
	CHECK(c.lb == NULL);
	close(sv[0]);
}

static void test_limits(void)
{
	struct conn c;
	int sv[2];
	const char *line;
	size_t len;
	char big[POP3_MAX_CMD_LINE + 2];

	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
	/* max: 510 bytes + CRLF */
	memset(big, 'x', sizeof(big));
	memcpy(big + POP3_MAX_CMD_LINE - 2, "\r\n", 2);
	put(sv[1], big, POP3_MAX_CMD_LINE);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK(len == POP3_MAX_CMD_LINE - 2);
	/* max + 1 */
	memset(big, 'x', sizeof(big));
	memcpy(big + POP3_MAX_CMD_LINE - 1, "\r\n", 2);
	put(sv[1], big, POP3_MAX_CMD_LINE + 1);
	put(sv[1], S("NOOP\r\n"));
	CHECK(conn_read_line(&c, &line, &len) == LINEBUF_TOO_LONG);
	CHECK(conn_read_line(&c, &line, &len) == LINEBUF_TOO_LONG); /* no resync */
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);

	/* a long line trickling in, one byte per write: still one line */
	pair(sv);
	conn_init(&c, sv[0], sv[0], SASL_MAX_LINE, 5);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < SASL_MAX_LINE - 2; i++)
			put(sv[1], "A", 1);
		put(sv[1], S("\r\n"));
		_exit(0);
	}
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK(len == SASL_MAX_LINE - 2);
	waitpid(pid, NULL, 0);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
}

static void test_timeout(void)
{
	struct conn c;
	int sv[2];
	const char *line;
	size_t len;

	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 1);
	put(sv[1], S("NOO"));
	uint64_t t0 = util_now_ms();
	CHECK(conn_read_line(&c, &line, &len) == -1);
	uint64_t ms = util_now_ms() - t0;
	CHECK(ms >= 900 && ms < 2500);
	CHECK(errno == ETIMEDOUT);
	/* the timeout is idle time: bytes every 0.5 s keep the connection */
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 4; i++) {
			util_sleep_ms(500);
			put(sv[1], "P", 1);
		}
		put(sv[1], S("\r\n"));
		_exit(0);
	}
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "NOOPPPP");
	waitpid(pid, NULL, 0);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
}

/* Output goes out before we wait for input, and not while input is waiting. */
static void test_flush(void)
{
	struct conn c;
	int sv[2];
	const char *line;
	size_t len;
	char buf[64];

	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
	pid_t pid = fork();
	if (pid == 0) {
		/* answer only once the greeting arrived */
		ssize_t n = read(sv[1], buf, sizeof(buf));
		if (n == 5 && memcmp(buf, "+OK\r\n", 5) == 0)
			put(sv[1], S("QUIT\r\n"));
		_exit(0);
	}
	CHECK(conn_write(&c, S("+OK\r\n")) == 0);
	CHECK(c.olen == 5);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "QUIT");
	CHECK(c.olen == 0);
	CHECK(c.out_bytes == 5);
	waitpid(pid, NULL, 0);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);

	/* pipelined commands: answers stay buffered while more input is there */
	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
	put(sv[1], S("NOOP\r\nNOOP\r\n"));
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK(conn_printf(&c, "+OK %d\r\n", 1) == 0);
	CHECK(conn_has_input(&c));
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK(c.olen == 7);
	/* input still in the kernel, not yet in the line buffer: no flush either */
	put(sv[1], S("STAT\r\n"));
	CHECK(!conn_has_input(&c));
	CHECK(conn_printf(&c, "+OK %d\r\n", 2) == 0);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "STAT");
	CHECK(c.olen == 14);
	CHECK(conn_flush(&c) == 0);
	CHECK(c.olen == 0);
	CHECK(read(sv[1], buf, sizeof(buf)) == 14);
	CHECK(memcmp(buf, "+OK 1\r\n+OK 2\r\n", 14) == 0);

	/* writes larger than the buffer; printf larger than its stack buffer */
	static char big[40000];
	memset(big, 'm', sizeof(big));
	CHECK(conn_write(&c, big, sizeof(big)) == 0);
	CHECK(conn_printf(&c, "%.*s\r\n", 3000, big) == 0);
	CHECK(conn_flush(&c) == 0);
	CHECK(c.out_bytes == 14 + sizeof(big) + 3002);
	size_t got = 0;
	while (got < sizeof(big) + 3002) {
		ssize_t n = read(sv[1], big, sizeof(big));
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CHECK(got == sizeof(big) + 3002);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
}

/* The peer is gone: writes fail, and SIGPIPE (still at its default here) does not kill
 * us on a plain socket. */
static void test_peer_gone(void)
{
	struct conn c;
	int sv[2];

	signal(SIGPIPE, SIG_DFL);
	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 2);
	close(sv[1]);
	CHECK(conn_write(&c, S("+OK bye\r\n")) == 0);
	CHECK(conn_flush(&c) == -1);
	CHECK(c.failed);
	CHECK(conn_write(&c, S("x")) == -1);
	CHECK(conn_printf(&c, "x") == -1);
	conn_deinit(&c);
	close(sv[0]);
}

/* inetd-like fds that are not sockets (pipes): read()/write() after poll(). */
static void test_pipes(void)
{
	struct conn c;
	int in[2], out[2];
	const char *line;
	size_t len;
	char buf[16];

	if (pipe(in) == -1 || pipe(out) == -1)
		exit(1);
	conn_init(&c, in[0], out[1], POP3_MAX_CMD_LINE, 1);
	put(in[1], S("CAPA\r\nQU"));
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "CAPA");
	CHECK(conn_printf(&c, "+OK\r\n") == 0);
	uint64_t t0 = util_now_ms();
	CHECK(conn_read_line(&c, &line, &len) == -1); /* times out, after flushing */
	CHECK(util_now_ms() - t0 >= 900);
	CHECK(read(out[0], buf, sizeof(buf)) == 5);
	put(in[1], S("IT\r\n"));
	close(in[1]);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "QUIT");
	CHECK(conn_read_line(&c, &line, &len) == 0);
	conn_deinit(&c);
	close(in[0]);
	close(out[0]);
	close(out[1]);
}

/* A context without a certificate is enough: these handshakes fail before that matters. */
static void test_tls_garbage(void)
{
	static const struct {
		const char *data;
		size_t len;
		bool close_after;
	} cases[] = {
		{ S("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false },
		{ S("USER ned\r\n"), false },
		{ S("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"), false },
		{ S("\x16\x03\x01\xff\xff"), false },        /* a record too long */
		{ S("\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00"), false },
		{ S("\x16\x03"), true },                      /* then EOF */
		{ S(""), true },
	};
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const char *line;
	size_t len;

	CHECK(ctx != NULL);
	signal(SIGPIPE, SIG_IGN); /* as the daemons do: OpenSSL's alert may hit a closed peer */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn c;
		int sv[2];
		const char *error = NULL;

		pair(sv);
		conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
		/* injected plaintext before the handshake must be dropped, not parsed */
		put(sv[1], S("STLS\r\nUSER injected\r\n"));
		CHECK(conn_read_line(&c, &line, &len) == 1);
		put(sv[1], cases[i].data, cases[i].len);
		if (cases[i].close_after)
			shutdown(sv[1], SHUT_WR);
		uint64_t t0 = util_now_ms();
		int r = conn_starttls(&c, ctx, &error);
		uint64_t ms = util_now_ms() - t0;
		CHECK(r == -1);
		CHECK(ms < 1000);
		CHECK(error != NULL && error[0] != '\0');
		CHECK(c.failed);
		CHECK(c.ssl == NULL);
		CHECK(conn_write(&c, S("-ERR\r\n")) == -1);
		CHECK(conn_read_line(&c, &line, &len) == -1);
		printf("  garbage %zu: %s (%llu ms)\n", i, error ? error : "(null)",
		       (unsigned long long)ms);
		conn_deinit(&c);
		CHECK((fcntl(sv[0], F_GETFL) & O_NONBLOCK) == 0); /* flags restored */
		close(sv[0]);
		close(sv[1]);
	}

	/* silence: the handshake times out */
	struct conn c;
	int sv[2];
	const char *error = NULL;
	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 1);
	uint64_t t0 = util_now_ms();
	CHECK(conn_starttls(&c, ctx, &error) == -1);
	uint64_t ms = util_now_ms() - t0;
	CHECK(ms >= 900 && ms < 2500);
	CHECK(error != NULL && strcmp(error, "timeout") == 0);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
	SSL_CTX_free(ctx);

	/* plain connection: no TLS facts */
	pair(sv);
	conn_init(&c, sv[0], sv[1], POP3_MAX_CMD_LINE, 1);
	CHECK(conn_tls_version(&c) == NULL);
	CHECK(conn_tls_cipher(&c) == NULL);
	CHECK(!conn_tls_resumed(&c));
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
}

/* A byte every 200 ms, 30 of them, never a whole line: each byte comes well within the
 * idle timeout (5 s), so only an absolute deadline can end the wait (slowloris). */
static pid_t dribbler(int fd, const unsigned char *bytes, size_t n)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (size_t i = 0; i < 30 && i < n; i++) {
			if (send(fd, bytes + i, 1, MSG_NOSIGNAL) != 1)
				_exit(0);
			util_sleep_ms(200);
		}
		_exit(0);
	}
	return pid;
}

/* The first bytes of a real ClientHello, from a client SSL on memory BIOs. */
static size_t client_hello(unsigned char *buf, size_t size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL_set_bio(ssl, rb, wb);
	(void)SSL_connect(ssl);
	int n = BIO_read(wb, buf, (int)size);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}

static void test_deadline(void)
{
	struct conn c;
	int sv[2];
	const char *line;
	size_t len;

	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
	conn_set_deadline(&c, util_now_ms() + 1000);
	pid_t pid = dribbler(sv[1], (const unsigned char *)"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 30);
	CHECK(conn_read_line(&c, &line, &len) == -1);
	CHECK(errno == ETIMEDOUT);
	CHECK(c.in_bytes > 0 && c.in_bytes < 30);   /* the client was still sending */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* a deadline already past: no wait at all, even with input on the way */
	CHECK(conn_read_line(&c, &line, &len) == -1 && errno == ETIMEDOUT);
	/* cleared: reading goes on */
	conn_set_deadline(&c, 0);
	put(sv[1], S("\r\n"));
	CHECK(conn_read_line(&c, &line, &len) == 1);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);

	/* a client that never lets us wait: a steady stream of commands */
	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
	conn_set_deadline(&c, util_now_ms() + 500);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		while (send(sv[1], "NOOP\r\n", 6, MSG_NOSIGNAL) == 6)
			;
		_exit(0);
	}
	int r, lines = 0;
	while ((r = conn_read_line(&c, &line, &len)) == 1)
		lines++;
	CHECK(r == -1 && errno == ETIMEDOUT);
	CHECK(lines > 0);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
	waitpid(pid, NULL, 0);

	/* the same during a TLS handshake: a ClientHello dribbled a byte at a time */
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
	conn_set_deadline(&c, util_now_ms() + 1000);
	unsigned char hello[2048];
	size_t hlen = client_hello(hello, sizeof(hello));
	CHECK(hlen > 100 && hello[0] == 0x16);
	pid = dribbler(sv[1], hello, hlen);
	const char *error = NULL;
	CHECK(conn_starttls(&c, ctx, &error) == -1);
	CHECK(error != NULL && strcmp(error, "timeout") == 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
	SSL_CTX_free(ctx);
}

/* The line limit follows the protocol state; buffered input survives the change. */
static void test_set_line_max(void)
{
	struct conn c;
	int sv[2];
	const char *line;
	size_t len;
	static char big[IMAP_MAX_LINE_PRELOGIN + 100];

	pair(sv);
	conn_init(&c, sv[0], sv[0], IMAP_MAX_LINE_PRELOGIN, 5);
	memset(big, 'y', sizeof(big));
	memcpy(big + sizeof(big) - 2, "\r\n", 2);
	/* a login and, pipelined behind it, a line too long before login but not after */
	put(sv[1], S("a LOGIN u p\r\n"));
	pid_t pid = fork();
	if (pid == 0) {
		put(sv[1], big, sizeof(big));
		_exit(0);
	}
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "a LOGIN u p");
	conn_set_line_max(&c, IMAP_MAX_LINE);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK(len == sizeof(big) - 2);
	waitpid(pid, NULL, 0);
	/* and back down: over the small limit again */
	conn_set_line_max(&c, SMTP_MAX_CMD_LINE);
	put(sv[1], big, SMTP_MAX_CMD_LINE + 1);
	CHECK(conn_read_line(&c, &line, &len) == LINEBUF_TOO_LONG);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
}

/* Raw input: non-blocking reads into the buffer, pending, consume. */
static void test_raw(void)
{
	struct conn c;
	int sv[2];
	const char *data, *line;
	size_t len;

	pair(sv);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
	CHECK(conn_read_more(&c, false) == CONN_AGAIN);
	CHECK(conn_pending(&c, &data) == 0);
	put(sv[1], S("abc\r\ndef"));
	CHECK(conn_read_more(&c, false) == 8);
	CHECK(conn_pending(&c, &data) == 8 && memcmp(data, "abc\r\ndef", 8) == 0);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "abc");
	CHECK(conn_pending(&c, &data) == 3);
	conn_consume(&c, 2);
	CHECK(conn_pending(&c, &data) == 1 && data[0] == 'f');
	conn_consume(&c, 5);                            /* more than there is: all */
	CHECK(conn_pending(&c, &data) == 0);
	shutdown(sv[1], SHUT_WR);
	CHECK(conn_read_more(&c, false) == 0);          /* EOF */
	CHECK(conn_read_more(&c, true) == 0);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
}

/* conn_wait_event(): client input, an extra descriptor (a pipe, then inotify as IMAP IDLE
 * will use it), a timer, the idle timeout and the deadline, each in turn. */
static void test_wait_event(void)
{
	struct conn c;
	int sv[2], p[2];
	const char *line;
	size_t len;

	pair(sv);
	CHECK(pipe(p) == 0);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 1);
	/* output is flushed before the wait */
	CHECK(conn_write(&c, S("+ idling\r\n")) == 0);
	CHECK(conn_wait_event(&c, p[0], util_now_ms() + 100) == CONN_EV_TIMER);
	char buf[32];
	CHECK(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) == 10);
	CHECK(write(p[1], "!", 1) == 1);
	CHECK(conn_wait_event(&c, p[0], util_now_ms() + 5000) == CONN_EV_EXTRA);
	CHECK(read(p[0], buf, 1) == 1);
	put(sv[1], S("DONE\r\nNOOP\r\n"));
	CHECK(conn_wait_event(&c, p[0], 0) == CONN_EV_INPUT);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK_STR(line, "DONE");
	/* buffered input: at once, even with the extra fd ready too */
	CHECK(write(p[1], "!", 1) == 1);
	CHECK(conn_wait_event(&c, p[0], 0) == CONN_EV_INPUT);
	CHECK(conn_read_line(&c, &line, &len) == 1);
	CHECK(read(p[0], buf, 1) == 1);
	/* nothing: the idle timeout (1 s) before a timer 10 s away */
	CHECK(conn_wait_event(&c, -1, util_now_ms() + 10000) == -1 && errno == ETIMEDOUT);
	/* the deadline before the timer */
	c.timeout_s = 0;
	conn_set_deadline(&c, util_now_ms() + 100);
	CHECK(conn_wait_event(&c, p[0], util_now_ms() + 10000) == -1 && errno == ETIMEDOUT);
	/* the timer before the deadline */
	conn_set_deadline(&c, util_now_ms() + 10000);
	CHECK(conn_wait_event(&c, p[0], util_now_ms() + 50) == CONN_EV_TIMER);
	/* a real inotify descriptor, as IMAP IDLE will use: a new file in a watched folder */
	char tdir[] = "/tmp/postern-idle-XXXXXX";
	CHECK(mkdtemp(tdir) != NULL);
	int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	CHECK(ino >= 0 && inotify_add_watch(ino, tdir, IN_CREATE | IN_MOVED_TO) >= 0);
	CHECK(conn_wait_event(&c, ino, util_now_ms() + 50) == CONN_EV_TIMER);
	char fpath[64];
	CHECK(util_snprintf(fpath, sizeof(fpath), "%s/new-mail", tdir) > 0);
	int fd = open(fpath, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK(conn_wait_event(&c, ino, util_now_ms() + 5000) == CONN_EV_EXTRA);
	unlink(fpath);
	rmdir(tdir);
	close(ino);
	/* EOF counts as input: the read that follows says 0 */
	shutdown(sv[1], SHUT_WR);
	CHECK(conn_wait_event(&c, p[0], 0) == CONN_EV_INPUT);
	CHECK(conn_read_line(&c, &line, &len) == 0);
	conn_deinit(&c);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	test_lines();
	test_limits();
	test_timeout();
	test_flush();
	test_peer_gone();
	test_pipes();
	test_tls_garbage();
	test_deadline();
	test_set_line_max();
	test_raw();
	test_wait_event();
	return unit_done("test_conn");
}
