/* After login: bytes from the client go to the session, the session's replies go to the
 * client, until the session ends, the client is gone, or nothing moves for timeout_s.
 *
 * One poll loop (base/evloop.c) over the client and the session socket.  Client->session
 * bytes wait in the connection's own input buffer (conn_pending()), which starts with
 * whatever the client pipelined behind its login, of any size; the client is read again
 * only when that buffer is empty, so the worker's memory stays bounded, and a session
 * busy writing a large message never blocks on us (neither side can deadlock the other).
 *
 * Ends:
 * - the client's EOF (or a read error) is passed on as shutdown(SHUT_WR) only after every
 *   buffered byte went to the session; the session's answers keep flowing to the client
 *   (a client that half-closes after pipelining a RETR gets the whole message);
 * - the session's EOF: what it wrote is already relayed; the relay ends;
 * - the session no longer reading (EPIPE): client bytes for it are dropped, its output
 *   is still relayed until its EOF. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "base/evloop.h"
#include "base/util.h"
#include "privsep/server_int.h"

struct relay {
	struct conn *c;
	int sock;
	struct evloop loop;
	int cid, sid, tid;
	unsigned timeout_s;
	uint64_t last_ms;       /* when bytes last moved */
	bool client_eof;        /* the client sends nothing more */
	bool shut;              /* the session got our EOF */
	bool session_deaf;      /* the session reads no more */
	char out[IO_CHUNK];
};

static void relay_events(struct relay *r)
{
	const char *data;
	size_t pending = conn_pending(r->c, &data);
	bool want_client = !r->client_eof && pending == 0;

	evloop_io_events(&r->loop, r->cid, want_client ? POLLIN : 0);
	/* OpenSSL may hold decrypted bytes that poll() cannot see */
	evloop_io_ready(&r->loop, r->cid, want_client && conn_has_input(r->c));
	evloop_io_events(&r->loop, r->sid,
			 POLLIN | (pending > 0 && !r->session_deaf ? POLLOUT : 0));
}

/* Client bytes buffered -> the session, as much as it takes now. */
static void relay_push(struct relay *r)
{
	const char *data;
	size_t pending = conn_pending(r->c, &data);

	if (pending > 0 && !r->session_deaf) {
		ssize_t n = send(r->sock, data, pending, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			conn_consume(r->c, (size_t)n);
			r->last_ms = util_now_ms();
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			r->session_deaf = true;
		}
	}
	if (r->session_deaf)
		conn_consume(r->c, pending); /* nobody will ever read them */
	if (r->client_eof && conn_pending(r->c, &data) == 0 && !r->shut) {
		(void)shutdown(r->sock, SHUT_WR);
		r->shut = true;
	}
	relay_events(r);
}

static void relay_on_client(struct evloop *l, int fd, short revents, void *ctx)
{
	struct relay *r = ctx;
	ssize_t n = conn_read_more(r->c, false);

	if (n > 0)
		r->last_ms = util_now_ms();
	else if (n != CONN_AGAIN)
		r->client_eof = true; /* EOF or error: nothing more will come */
	relay_push(r);
}

static void relay_on_session(struct evloop *l, int fd, short revents, void *ctx)
{
	struct relay *r = ctx;

	if (revents & POLLOUT)
		relay_push(r);
	if ((revents & (POLLIN | POLLHUP | POLLERR)) == 0)
		return;
	ssize_t n = recv(r->sock, r->out, sizeof(r->out), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		(void)conn_flush(r->c);
		evloop_stop(l, 0); /* the session ended */
		return;
	}
	r->last_ms = util_now_ms();
	/* the write may wait for the client (idle timeout): the session waits meanwhile */
	if (conn_write(r->c, r->out, (size_t)n) == -1 || conn_flush(r->c) == -1)
		evloop_stop(l, 0); /* the client is gone */
}

static void relay_on_timer(struct evloop *l, void *ctx)
{
	struct relay *r = ctx;
	uint64_t end = r->last_ms + (uint64_t)r->timeout_s * 1000;

	if (util_now_ms() >= end)
		evloop_stop(l, 0); /* nobody said anything for too long */
	else
		evloop_timer_set(l, r->tid, end);
}

int relay_run(struct conn *c, int sock, unsigned timeout_s)
{
	struct relay *r = xcalloc(1, sizeof(*r));

	r->c = c;
	r->sock = sock;
	r->timeout_s = timeout_s;
	r->last_ms = util_now_ms();
	/* after login only the idle timeout counts: the session may last for hours */
	c->timeout_s = timeout_s;
	conn_set_deadline(c, 0);
	evloop_init(&r->loop);
	r->cid = evloop_io_add(&r->loop, c->rfd, 0, relay_on_client, r);
	r->sid = evloop_io_add(&r->loop, sock, POLLIN, relay_on_session, r);
	r->tid = evloop_timer_add(&r->loop, r->last_ms + (uint64_t)timeout_s * 1000,
				  relay_on_timer, r);
	int rc = -1;
	if (r->cid >= 0 && r->sid >= 0 && r->tid >= 0) {
		relay_push(r); /* what the client pipelined behind its login, first */
		rc = evloop_run(&r->loop);
	}
	util_wipe(r->out, sizeof(r->out));
	free(r);
	return rc;
}
