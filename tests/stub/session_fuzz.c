/* See session_fuzz.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "base/config.h"
#include "base/conn.h"
#include "base/log.h"
#include "base/util.h"
#include "session_fuzz.h"
#include "stub_monitor.h"

static char fz_dir[256];
static char fz_maildir[512];
static struct config fz_cfg;
static struct passwd *fz_pw;
static SSL_CTX *fz_ctx;

static const struct { const char *name; const char *data; } fz_msgs[] = {
	{ "new/1000000001.M1P1.fuzz", "From: a@example.org\nSubject: one\n\nline1\n.dot\n..\n.\nend\n" },
	{ "cur/1000000002.M2P1.fuzz:2,S", "Subject: two\r\n\r\nbody a\r\n.\r\nbody c\r\n" },
	{ "new/1000000003.M3P1.fuzz", "Subject: three\n\nno newline at end" },
	{ "new/1000000004.M4P1.fuzz", "" },
	{ "new/1000000005.M5P1.fuzz", "Subject: headers only\r\nX: y\r\n" },
	{ "new/1000000006.M6P1.fuzz", "\n\n\n.\r\r\n\r.\n" },
};
#define FZ_NMSGS (sizeof(fz_msgs) / sizeof(fz_msgs[0]))

static void fz_make_maildir(void)
{
	static const char *const subs[] = { "", "/new", "/cur", "/tmp" };
	char path[1024];

	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", fz_maildir, subs[i]);
		mkdir(path, 0700);
	}
	for (size_t i = 0; i < FZ_NMSGS; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", fz_maildir, fz_msgs[i].name);
		if (stat(path, &st) == 0)
			continue;
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			abort();
		if (util_write_all(fd, fz_msgs[i].data, strlen(fz_msgs[i].data)) < 0)
			abort();
		close(fd);
	}
}

int session_fuzz_init(const struct session_fuzz *sf)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("fuzz", false);
	stub_monitor_any_user = true;    /* any user name with "secret" gets in */
	fz_pw = getpwuid(getuid());
	if (fz_pw == NULL)
		abort();
	snprintf(fz_dir, sizeof(fz_dir), "/tmp/fuzz_%s_session.XXXXXX", sf->daemon);
	if (mkdtemp(fz_dir) == NULL)
		abort();
	snprintf(fz_maildir, sizeof(fz_maildir), "%s/Maildir", fz_dir);
	config_defaults(&fz_cfg, sf->daemon);
	fz_cfg.login_fail_delay_ms = 0;   /* a refused user name waits this long */
	char loc[600];
	snprintf(loc, sizeof(loc), "maildir:%s", fz_maildir);
	free(fz_cfg.mail_location);
	fz_cfg.mail_location = xstrdup(loc);
	fz_ctx = SSL_CTX_new(TLS_server_method());
	fz_make_maildir();
	return 0;
}

struct fz_pump {
	int fd;
	const uint8_t *data;
	size_t size;
};

/* The client: write the input, then half-close; read and drop the replies until EOF. */
static void *fz_pump_main(void *arg)
{
	struct fz_pump *p = arg;
	size_t off = 0;
	bool wr_open = true;
	static __thread char sink[65536];

	if (p->size == 0) {
		shutdown(p->fd, SHUT_WR);
		wr_open = false;
	}
	for (;;) {
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN | (wr_open ? POLLOUT : 0) };
		if (poll(&pfd, 1, 10000) <= 0)
			break;
		if (pfd.revents & POLLIN) {
			ssize_t n = read(p->fd, sink, sizeof(sink));
			if (n <= 0)
				break;
		}
		if (wr_open && (pfd.revents & POLLOUT)) {
			ssize_t n = send(p->fd, p->data + off, p->size - off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				off = p->size;
			if (off == p->size) {
				shutdown(p->fd, SHUT_WR);
				wr_open = false;
			}
		}
		if (pfd.revents & (POLLHUP | POLLERR) && !(pfd.revents & POLLIN))
			break;
	}
	return NULL;
}

int session_fuzz_one(const struct session_fuzz *sf, const uint8_t *data, size_t size)
{
	int sv[2];
	pthread_t th;
	struct conn c;
	struct server_worker w = { 0 };

	if (size == 0)
		return 0;
	fz_make_maildir();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	struct fz_pump pump = { .fd = sv[0], .data = data + 1, .size = size - 1 };
	if (pthread_create(&th, NULL, fz_pump_main, &pump) != 0)
		abort();

	conn_init(&c, sv[1], sv[1], sf->line_max, sf->timeout_s);
	w.c = &c;
	w.cfg = &fz_cfg;
	w.plaintext_ok = (data[0] & 1) != 0;
	w.ssl_ctx = (data[0] & 2) != 0 ? fz_ctx : NULL;
	snprintf(w.rip_str, sizeof(w.rip_str), "192.0.2.7");
	if (sf->prelogin(&w) == 1) {
		struct server_session s = {
			.c = &c, .cfg = &fz_cfg, .pw = fz_pw, .user = fz_pw->pw_name,
			.rip = "192.0.2.7",
		};
		sf->session(&s);
	}
	conn_flush(&c);
	conn_deinit(&c);
	close(sv[1]);
	pthread_join(th, NULL);
	close(sv[0]);
	return 0;
}
