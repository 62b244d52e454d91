/* A small poll() loop (see evloop.h).
 *
 * One turn: poll() every descriptor whose events are not 0, with a timeout until the
 * earliest armed timer (0 when a descriptor is marked ready); then call, in slot order,
 * the callback of each descriptor that poll() reported or that is marked ready, then the
 * callback of each timer whose time has come (disarmed before the call, so it may re-arm
 * itself).  A callback may add, change or remove descriptors and timers, and stop the
 * loop: the rest of that turn's callbacks are skipped once stopped. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include "base/evloop.h"
#include "base/util.h"

void evloop_init(struct evloop *l)
{
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < EVLOOP_MAX_IO; i++)
		l->io[i].fd = -1;
}

int evloop_io_add(struct evloop *l, int fd, short events, evloop_io_fn *fn, void *ctx)
{
	if (fd < 0)
		return -1;
	for (int i = 0; i < EVLOOP_MAX_IO; i++) {
		if (l->io[i].fd == -1) {
			l->io[i] = (struct evloop_io){ .fd = fd, .events = events, .fn = fn,
						       .ctx = ctx };
			return i;
		}
	}
	return -1;
}

static struct evloop_io *evloop_io_get(struct evloop *l, int id)
{
	if (id < 0 || id >= EVLOOP_MAX_IO || l->io[id].fd == -1)
		return NULL;
	return &l->io[id];
}

void evloop_io_events(struct evloop *l, int id, short events)
{
	struct evloop_io *io = evloop_io_get(l, id);
	if (io != NULL)
		io->events = events;
}

void evloop_io_ready(struct evloop *l, int id, bool ready)
{
	struct evloop_io *io = evloop_io_get(l, id);
	if (io != NULL)
		io->ready = ready;
}

void evloop_io_remove(struct evloop *l, int id)
{
	struct evloop_io *io = evloop_io_get(l, id);
	if (io != NULL)
		*io = (struct evloop_io){ .fd = -1 };
}

int evloop_timer_add(struct evloop *l, uint64_t at_ms, evloop_timer_fn *fn, void *ctx)
{
	for (int i = 0; i < EVLOOP_MAX_TIMERS; i++) {
		if (!l->timers[i].used) {
			l->timers[i] = (struct evloop_timer){ .at_ms = at_ms, .fn = fn,
							      .ctx = ctx, .used = true };
			return i;
		}
	}
	return -1;
}

void evloop_timer_set(struct evloop *l, int id, uint64_t at_ms)
{
	if (id >= 0 && id < EVLOOP_MAX_TIMERS && l->timers[id].used)
		l->timers[id].at_ms = at_ms;
}

void evloop_timer_remove(struct evloop *l, int id)
{
	if (id >= 0 && id < EVLOOP_MAX_TIMERS)
		l->timers[id] = (struct evloop_timer){ .used = false };
}

void evloop_stop(struct evloop *l, int status)
{
	l->stopped = true;
	l->status = status;
}

int evloop_once(struct evloop *l, int max_ms)
{
	struct pollfd pfd[EVLOOP_MAX_IO];
	bool any = false, ready = false;
	uint64_t next = 0;
	nfds_t nfds = 0;

	for (size_t i = 0; i < EVLOOP_MAX_IO; i++) {
		const struct evloop_io *io = &l->io[i];
		bool on = io->fd != -1 && io->events != 0;
		pfd[i] = (struct pollfd){ .fd = on ? io->fd : -1, .events = io->events };
		any |= on;
		if (io->fd != -1)
			nfds = (nfds_t)i + 1;
		ready |= on && io->ready && (io->events & POLLIN) != 0;
	}
	for (size_t i = 0; i < EVLOOP_MAX_TIMERS; i++) {
		const struct evloop_timer *t = &l->timers[i];
		if (t->used && t->at_ms != 0 && (next == 0 || t->at_ms < next))
			next = t->at_ms;
	}
	if (!any && next == 0 && max_ms < 0)
		return -1; /* nothing could ever wake us */

	int ms = max_ms;
	if (ready) {
		ms = 0;
	} else if (next != 0) {
		uint64_t now = util_now_ms();
		uint64_t left = next > now ? next - now : 0;
		if (left > 1000000000)
			left = 1000000000;
		if (ms < 0 || (uint64_t)ms > left)
			ms = (int)left;
	}
	/* Only up to the last slot in use: poll() refuses more entries than RLIMIT_NOFILE
	 * (EINVAL), and the sandboxed worker's limit is just above its few descriptors. */
	int n = poll(pfd, nfds, ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return -1;
	}
	for (size_t i = 0; i < EVLOOP_MAX_IO && !l->stopped; i++) {
		struct evloop_io *io = &l->io[i];
		if (io->fd == -1 || pfd[i].fd != io->fd)
			continue; /* removed or replaced by an earlier callback */
		short rev = pfd[i].revents;
		if (io->ready && (io->events & POLLIN) != 0)
			rev |= POLLIN;
		if (rev != 0)
			io->fn(l, io->fd, rev, io->ctx);
	}
	uint64_t now = util_now_ms();
	for (size_t i = 0; i < EVLOOP_MAX_TIMERS && !l->stopped; i++) {
		struct evloop_timer *t = &l->timers[i];
		if (t->used && t->at_ms != 0 && t->at_ms <= now) {
			t->at_ms = 0;
			t->fn(l, t->ctx);
		}
	}
	return 0;
}

int evloop_run(struct evloop *l)
{
	l->stopped = false;
	while (!l->stopped) {
		if (evloop_once(l, -1) < 0)
			return -1;
	}
	return l->status;
}
