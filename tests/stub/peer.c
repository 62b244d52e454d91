/* See peer.h. */
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/log.h"
#include "base/util.h"
#include "peer.h"

char peer_logpath[512];

void peer_start(struct peer *p, peer_child_fn *fn, void *arg)
{
	int sv[2];

	memset(p, 0, sizeof(*p));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
	p->pid = fork();
	if (p->pid < 0) {
		perror("fork");
		exit(1);
	}
	if (p->pid == 0) {
		const char *err;
		close(sv[0]);
		if (log_open(peer_logpath, false, &err) < 0)
			_exit(99);
		_exit(fn(sv[1], arg));
	}
	close(sv[1]);
	p->fd = sv[0];
	p->cap = 65536;
	p->out = xmalloc(p->cap);
	p->out[0] = '\0';
}

void peer_send(struct peer *p, const char *s)
{
	if (util_write_all(p->fd, s, strlen(s)) != 0) {
		perror("peer_send");
		exit(1);
	}
}

int peer_read(struct peer *p, const char *needle)
{
	for (;;) {
		if (needle != NULL && strstr(p->out, needle) != NULL)
			return 0;
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		if (poll(&pfd, 1, 10000) <= 0)
			return -1;
		if (p->cap - p->len < 65536 + 1) {
			p->cap *= 2;
			p->out = xrealloc(p->out, p->cap);
		}
		ssize_t n = read(p->fd, p->out + p->len, 65536);
		if (n <= 0)
			return needle == NULL ? 0 : -1;
		p->len += (size_t)n;
		p->out[p->len] = '\0';
	}
}

int peer_finish(struct peer *p)
{
	int st = 0;

	close(p->fd);
	if (waitpid(p->pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int peer_transcript(struct peer *p, peer_child_fn *fn, void *arg, const char *input)
{
	peer_start(p, fn, arg);
	peer_send(p, input);
	shutdown(p->fd, SHUT_WR);
	bool read_ok = peer_read(p, NULL) == 0;
	int st = peer_finish(p);
	return read_ok ? st : -1;
}

int peer_transcript_bytewise(struct peer *p, peer_child_fn *fn, void *arg,
			     const char *input)
{
	peer_start(p, fn, arg);
	for (size_t i = 0; input[i] != '\0'; i++)
		if (util_write_all(p->fd, input + i, 1) != 0) {
			perror("peer_transcript_bytewise");
			exit(1);
		}
	shutdown(p->fd, SHUT_WR);
	bool read_ok = peer_read(p, NULL) == 0;
	int st = peer_finish(p);
	return read_ok ? st : -1;
}

void peer_free(struct peer *p)
{
	free(p->out);
	p->out = NULL;
}

void peer_append_n(char *buf, size_t size, const char *s)
{
	size_t have = strlen(buf), n = strlen(s);
	if (have + n >= size) { /* BOUNDS: have < size */
		fprintf(stderr, "test input too long\n");
		exit(1);
	}
	memcpy(buf + have, s, n + 1);
}

char *peer_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return xstrdup("");
	char *buf = xmalloc(1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

size_t peer_crlf_len(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; s[i] != '\0'; i++)
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			n++;
	return n;
}

const char peer_msg1[] = "From: a@example.org\nSubject: one\n\nline1\n.dot line\nline3\n";
const char peer_msg2[] = "Subject: two\r\n\r\nbody a\r\nbody b\r\nbody c\r\n";
const char peer_msg3[] = "Subject: three\n\nno newline at end";
const char *const peer_names[3] = {
	"new/1000000001.M1P1.test", "cur/1000000002.M2P1.test:2,S", "new/1000000003.M3P1.test",
};

void peer_write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || util_write_all(fd, data, len) != 0) {
		perror(path);
		exit(1);
	}
	close(fd);
}

void peer_rm_rf(const char *path)
{
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "rm -rf failed\n");
}

void peer_make_maildir(const char *maildir)
{
	static const char *const subs[] = { "", "/new", "/cur", "/tmp" };
	char p[1024];

	peer_rm_rf(maildir);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", maildir, subs[i]);
		mkdir(p, 0700);
	}
	peer_write_file(maildir, peer_names[0], peer_msg1, strlen(peer_msg1));
	peer_write_file(maildir, peer_names[1], peer_msg2, strlen(peer_msg2));
	peer_write_file(maildir, peer_names[2], peer_msg3, strlen(peer_msg3));
}
