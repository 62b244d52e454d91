/* A small poll() loop: a few descriptors with callbacks, and one-shot timers.  Used by
 * the relay after login (client <-> session), and by IMAP IDLE (client, an inotify fd, a
 * timer).  Fixed-size tables, no allocation: struct evloop lives on the caller's stack. */
#ifndef POSTERN_EVLOOP_H
#define POSTERN_EVLOOP_H
#include <stdbool.h>
#include <stdint.h>

#define EVLOOP_MAX_IO 8
#define EVLOOP_MAX_TIMERS 8

struct evloop;
/* revents: poll()'s, or POLLIN alone for a descriptor marked ready (evloop_io_ready). */
typedef void evloop_io_fn(struct evloop *l, int fd, short revents, void *ctx);
typedef void evloop_timer_fn(struct evloop *l, void *ctx);

struct evloop_io {
	int fd;                  /* -1: free slot */
	short events;            /* 0: not polled at all (a HUP would not wake us either) */
	bool ready;              /* input is already buffered above the fd (TLS, linebuf) */
	evloop_io_fn *fn;
	void *ctx;
};

struct evloop_timer {
	uint64_t at_ms;          /* util_now_ms() clock; 0: free or disarmed */
	evloop_timer_fn *fn;
	void *ctx;
	bool used;
};

struct evloop {
	struct evloop_io io[EVLOOP_MAX_IO];
	struct evloop_timer timers[EVLOOP_MAX_TIMERS];
	bool stopped;
	int status;
};

void evloop_init(struct evloop *l);
/* Watch fd for events; returns the slot id, or -1 if the table is full. */
int evloop_io_add(struct evloop *l, int fd, short events, evloop_io_fn *fn, void *ctx);
void evloop_io_events(struct evloop *l, int id, short events);
/* ready: call fn with POLLIN on the next turn without waiting (while events has POLLIN),
 * for input the fd does not show (OpenSSL's buffer, a line reader's). */
void evloop_io_ready(struct evloop *l, int id, bool ready);
void evloop_io_remove(struct evloop *l, int id);
/* A timer that fires once at at_ms (0: added disarmed); returns its id or -1 if full. */
int evloop_timer_add(struct evloop *l, uint64_t at_ms, evloop_timer_fn *fn, void *ctx);
/* Re-arm (or disarm with 0) a timer, also from its own callback. */
void evloop_timer_set(struct evloop *l, int id, uint64_t at_ms);
void evloop_timer_remove(struct evloop *l, int id);
/* Run until a callback calls evloop_stop(); returns its status.  -1 if poll() fails, or
 * if nothing is left to wait for (no descriptor polled, no timer armed). */
int evloop_run(struct evloop *l);
/* One turn: wait at most until the next timer (max_ms >= 0 caps it), dispatch.  0, or -1
 * as evloop_run(). */
int evloop_once(struct evloop *l, int max_ms);
void evloop_stop(struct evloop *l, int status);

#endif
