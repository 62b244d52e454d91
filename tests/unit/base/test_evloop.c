/* evloop: descriptors with callbacks, one-shot timers in time order, a timer re-arming
 * itself, the ready mark (input buffered above the fd), events 0 ignoring a HUP, removal
 * from inside a callback, a full table, a loop with nothing to wait for, stop status. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include "base/evloop.h"
#include "base/util.h"
#include "unit.h"

struct rec {
	char log[64];
	size_t n;
	int id;
	int stop_after;
	int count;
	uint64_t rearm_ms;
};

static void rec_add(struct rec *r, char c)
{
	if (r->n + 1 < sizeof(r->log))
		r->log[r->n++] = c;
	r->log[r->n] = '\0';
}

static void on_timer_a(struct evloop *l, void *ctx)
{
	rec_add(ctx, 'a');
}

static void on_timer_b(struct evloop *l, void *ctx)
{
	rec_add(ctx, 'b');
	evloop_stop(l, 7);
}

static void on_timer_rearm(struct evloop *l, void *ctx)
{
	struct rec *r = ctx;
	rec_add(r, 'r');
	if (++r->count < 3)
		evloop_timer_set(l, r->id, util_now_ms() + r->rearm_ms);
	else
		evloop_stop(l, r->count);
}

static void test_timers(void)
{
	struct evloop l;
	struct rec r = { 0 };
	uint64_t now = util_now_ms();

	evloop_init(&l);
	/* added out of order: fired in time order */
	CHECK(evloop_timer_add(&l, now + 60, on_timer_b, &r) >= 0);
	CHECK(evloop_timer_add(&l, now + 20, on_timer_a, &r) >= 0);
	int disarmed = evloop_timer_add(&l, 0, on_timer_a, &r);
	CHECK(disarmed >= 0);
	CHECK(evloop_run(&l) == 7);
	CHECK_STR(r.log, "ab");

	/* a timer that re-arms itself from its callback */
	evloop_init(&l);
	memset(&r, 0, sizeof(r));
	r.rearm_ms = 10;
	r.id = evloop_timer_add(&l, util_now_ms() + 10, on_timer_rearm, &r);
	CHECK(evloop_run(&l) == 3);
	CHECK_STR(r.log, "rrr");

	/* removed timers do not fire; a full table says so */
	evloop_init(&l);
	memset(&r, 0, sizeof(r));
	int ids[EVLOOP_MAX_TIMERS];
	for (int i = 0; i < EVLOOP_MAX_TIMERS; i++)
		ids[i] = evloop_timer_add(&l, util_now_ms() + 5, on_timer_a, &r);
	CHECK(ids[EVLOOP_MAX_TIMERS - 1] >= 0);
	CHECK(evloop_timer_add(&l, 1, on_timer_a, &r) == -1);
	for (int i = 0; i < EVLOOP_MAX_TIMERS; i++)
		evloop_timer_remove(&l, ids[i]);
	/* nothing to wait for at all: -1 rather than sleep for ever */
	CHECK(evloop_run(&l) == -1);
	CHECK(r.n == 0);
	/* max_ms alone: one turn that returns */
	CHECK(evloop_once(&l, 10) == 0);
}

struct echo {
	struct rec r;
	int fd, id;
	int reads;
};

static void on_read(struct evloop *l, int fd, short revents, void *ctx)
{
	struct echo *e = ctx;
	char buf[16];

	if (revents & POLLIN) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		e->reads++;
		if (n > 0)
			rec_add(&e->r, buf[0]);
		else if (n == 0) {
			rec_add(&e->r, 'E');
			evloop_io_remove(l, e->id); /* from inside its own callback */
			evloop_stop(l, 1);
		} else {
			rec_add(&e->r, '?');  /* ready mark without data: EAGAIN */
			evloop_io_ready(l, e->id, false);
		}
	}
}

static void on_timer_stop(struct evloop *l, void *ctx)
{
	rec_add(ctx, 'T');
	evloop_stop(l, 2);
}

static void test_io(void)
{
	struct evloop l;
	struct echo e = { 0 };
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	evloop_init(&l);
	e.fd = sv[0];
	e.id = evloop_io_add(&l, sv[0], POLLIN, on_read, &e);
	CHECK(e.id >= 0);
	CHECK(evloop_io_add(&l, -1, POLLIN, on_read, &e) == -1);
	CHECK(send(sv[1], "x", 1, 0) == 1);
	CHECK(evloop_once(&l, 1000) == 0);
	CHECK_STR(e.r.log, "x");
	/* ready: called although poll() sees nothing (without the mark the turn would end
	 * at its 5 s limit with no callback) */
	evloop_io_ready(&l, e.id, true);
	CHECK(evloop_once(&l, 5000) == 0);
	CHECK_STR(e.r.log, "x?");
	/* events 0: the fd is not polled (its peer's EOF would wake us for ever) */
	evloop_io_events(&l, e.id, 0);
	shutdown(sv[1], SHUT_WR);
	int t = evloop_timer_add(&l, util_now_ms() + 30, on_timer_stop, &e.r);
	CHECK(t >= 0);
	CHECK(evloop_run(&l) == 2);
	CHECK_STR(e.r.log, "x?T");
	/* back on: the EOF is seen, the callback removes itself and stops */
	evloop_io_events(&l, e.id, POLLIN);
	CHECK(evloop_run(&l) == 1);
	CHECK_STR(e.r.log, "x?TE");
	/* the slot is free again */
	CHECK(evloop_io_add(&l, sv[0], POLLIN, on_read, &e) == e.id);
	for (int i = 1; i < EVLOOP_MAX_IO; i++)
		CHECK(evloop_io_add(&l, sv[0], POLLIN, on_read, &e) >= 0);
	CHECK(evloop_io_add(&l, sv[0], POLLIN, on_read, &e) == -1);
	close(sv[0]);
	close(sv[1]);
}

static void low_fd_cb(struct evloop *l, int fd, short rev, void *ctx)
{
	*(int *)ctx += (rev & POLLIN) != 0;
}

/* The sandboxed worker's RLIMIT_NOFILE is just above its descriptors; poll() refuses more
 * entries than that limit with EINVAL, so the loop must pass only the slots in use. */
static void test_low_nofile(void)
{
	int p[2];

	CHECK(pipe(p) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit rl = { 5, 5 };
		struct evloop l;
		int hits = 0;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 || write(p[1], "x", 1) != 1)
			_exit(2);
		evloop_init(&l);
		if (evloop_io_add(&l, p[0], POLLIN, low_fd_cb, &hits) == -1)
			_exit(3);
		int rc = evloop_once(&l, 1000);
		_exit(rc >= 0 && hits == 1 ? 0 : 1);
	}
	int status = -1;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	test_low_nofile();
	test_timers();
	test_io();
	return unit_done("test_evloop");
}
