/* A client connection: fd 0/1 (or a socketpair end), plain or TLS, an idle timeout and a
 * bounded line reader.
 *
 * Waiting: every read or write that cannot proceed waits in poll() for up to timeout_s
 * seconds (0: for ever); the clock restarts whenever bytes move, so it is an idle timeout.
 * Two absolute deadlines bound every wait as well, whatever the client sends: the one the
 * daemon sets with conn_set_deadline() (the worker: login_deadline from connect), and,
 * during a TLS handshake, TLS_HANDSHAKE_DEADLINE_MS from its start.  Without them a client
 * sending one byte just before each idle timeout (slowloris) holds the process for ever.
 * Output is buffered in c->obuf and flushed when a read finds nothing to read, before it
 * waits: a client that pipelines its commands gets its answers in few packets, and a
 * client that waits for an answer always gets it.
 *
 * Plain sockets are used with recv(MSG_DONTWAIT) and send(MSG_DONTWAIT | MSG_NOSIGNAL), so
 * the file flags (shared with the other processes of the connection) stay untouched.  A
 * pipe or a file (tests) falls back to read()/write() after poll().  Under TLS the fds are
 * switched to O_NONBLOCK, because OpenSSL's socket BIO uses plain read()/write(); the old
 * flags come back in conn_deinit().  OpenSSL's write() could raise SIGPIPE: the daemons set
 * SIGPIPE to SIG_IGN in main().
 *
 * conn_init() does not take ownership of the fds: conn_deinit() never closes them. */
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "base/plimits.h"
#include "base/conn.h"
#include "base/util.h"
#include "base/zlayer.h"

void conn_init(struct conn *c, int rfd, int wfd, size_t line_max, unsigned timeout_s)
{
	memset(c, 0, sizeof(*c));
	c->rfd = rfd;
	c->wfd = wfd;
	c->ssl = NULL;
	c->lb = linebuf_new(line_max);
	c->timeout_s = timeout_s;
}

void conn_set_line_max(struct conn *c, size_t line_max)
{
	linebuf_set_max(c->lb, line_max);
}

void conn_set_deadline(struct conn *c, uint64_t at_ms)
{
	c->deadline_ms = at_ms;
}

/* The earliest of a (0: none) and b (0: none). */
static uint64_t conn_earliest(uint64_t a, uint64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

/* The time a wait that starts now must end: idle timeout and both deadlines.  0: never. */
static uint64_t conn_wait_until(const struct conn *c)
{
	uint64_t until = c->timeout_s != 0 ?
		util_now_ms() + (uint64_t)c->timeout_s * 1000 : 0;
	return conn_earliest(conn_earliest(until, c->deadline_ms), c->hs_deadline_ms);
}

/* True (errno ETIMEDOUT) if a deadline has passed: checked before every read too, so that
 * a client that never lets us wait (a steady stream of commands) is cut off as well. */
static bool conn_past_deadline(const struct conn *c)
{
	uint64_t d = conn_earliest(c->deadline_ms, c->hs_deadline_ms);
	if (d == 0 || util_now_ms() < d)
		return false;
	errno = ETIMEDOUT;
	return true;
}

/* poll() ms argument for a wait until `until` (0: for ever); -1 with ETIMEDOUT if past. */
static int conn_poll_ms(uint64_t until, int *ms_r)
{
	*ms_r = -1;
	if (until == 0)
		return 0;
	uint64_t now = util_now_ms();
	if (now >= until) {
		errno = ETIMEDOUT;
		return -1;
	}
	uint64_t left = until - now;
	*ms_r = left > 1000000000 ? 1000000000 : (int)left;
	return 0;
}

/* Wait until fd is ready for events.  1 ready, -1 timeout (errno ETIMEDOUT) or error. */
static int conn_wait(struct conn *c, int fd, short events)
{
	uint64_t until = conn_wait_until(c);

	for (;;) {
		int ms;
		if (conn_poll_ms(until, &ms) < 0)
			return -1;
		struct pollfd pfd = { .fd = fd, .events = events };
		int n = poll(&pfd, 1, ms);
		if (n > 0)
			return 1; /* ready, or HUP/ERR: the next call tells which */
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Output is owed: buffered bytes, or deflated bytes not yet sync-flushed. */
static bool conn_owes(const struct conn *c)
{
	return c->olen > 0 || (c->z != NULL && zlayer_dirty(c->z));
}

/* We are about to wait for input: whatever we have to say goes out first, so that a
 * client waiting for our answer gets it (and pipelined commands get batched answers). */
static int conn_wait_input(struct conn *c)
{
	if (conn_owes(c) && conn_flush(c) < 0)
		return -1;
	return conn_wait(c, c->rfd, POLLIN);
}

/* One plain read that may wait (wait) or not.  >0, 0 EOF, -1 error/timeout, CONN_AGAIN. */
static ssize_t conn_plain_read(struct conn *c, void *buf, size_t n, bool wait)
{
	for (;;) {
		ssize_t r;
		if (!c->rnotsock) {
			r = recv(c->rfd, buf, n, MSG_DONTWAIT);
			if (r < 0 && errno == ENOTSOCK) {
				c->rnotsock = true;
				continue;
			}
		} else {
			/* read() on a pipe or file may block: only after poll() said so */
			if (!wait) {
				struct pollfd pfd = { .fd = c->rfd, .events = POLLIN };
				if (poll(&pfd, 1, 0) == 0)
					return CONN_AGAIN;
			} else if (conn_wait_input(c) < 0) {
				return -1;
			}
			r = read(c->rfd, buf, n);
		}
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (!wait)
			return CONN_AGAIN;
		if (!c->rnotsock && conn_wait_input(c) < 0)
			return -1;
	}
}

static int conn_plain_write(struct conn *c, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t r;
		if (!c->wnotsock) {
			r = send(c->wfd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r < 0 && errno == ENOTSOCK) {
				c->wnotsock = true;
				continue;
			}
		} else {
			if (conn_wait(c, c->wfd, POLLOUT) < 0)
				return -1;
			r = write(c->wfd, p, len);
		}
		if (r > 0) {
			p += r;
			len -= (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->wnotsock && conn_wait(c, c->wfd, POLLOUT) < 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

/* After an SSL call failed with err: wait as it asks.  0 retry, -1 give up. */
static int conn_ssl_wait(struct conn *c, int err)
{
	if (err == SSL_ERROR_WANT_READ)
		return conn_wait(c, c->rfd, POLLIN) < 0 ? -1 : 0;
	if (err == SSL_ERROR_WANT_WRITE)
		return conn_wait(c, c->wfd, POLLOUT) < 0 ? -1 : 0;
	return -1;
}

static ssize_t conn_tls_read(struct conn *c, void *buf, size_t n, bool wait)
{
	for (;;) {
		size_t got = 0;
		ERR_clear_error();
		errno = 0;
		if (SSL_read_ex(c->ssl, buf, n, &got) == 1)
			return (ssize_t)got;
		int err = SSL_get_error(c->ssl, 0);
		if (err == SSL_ERROR_ZERO_RETURN)
			return 0; /* close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
		if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)
			return 0; /* EOF without close_notify */
		if (err == SSL_ERROR_WANT_READ) {
			if (!wait)
				return CONN_AGAIN;
			/* SSL_write() while a read waits is fine: no renegotiation */
			if (conn_wait_input(c) < 0)
				return -1;
			continue;
		}
		if (conn_ssl_wait(c, err) < 0)
			return -1;
	}
}

static int conn_tls_write(struct conn *c, const char *p, size_t len)
{
	while (len > 0) {
		size_t done = 0;
		ERR_clear_error();
		if (SSL_write_ex(c->ssl, p, len, &done) == 1) {
			p += done;
			len -= done;
			continue;
		}
		/* a retry must repeat the same arguments: it does */
		if (conn_ssl_wait(c, SSL_get_error(c->ssl, 0)) < 0)
			return -1;
	}
	return 0;
}

static int conn_raw_write(struct conn *c, const char *p, size_t len)
{
	return c->ssl != NULL ? conn_tls_write(c, p, len) : conn_plain_write(c, p, len);
}

/* c->obuf through the deflater to the socket; sync: end with a sync flush. */
static int conn_deflate_write(struct conn *c, bool sync)
{
	const char *p = c->obuf;
	size_t left = c->olen;

	for (;;) {
		size_t n;
		int more = zlayer_deflate(c->z, &p, &left, c->zout, IO_CHUNK, &n, sync);
		if (n > 0 && conn_raw_write(c, c->zout, n) < 0)
			return -1;
		if (!more)
			return 0;
	}
}

/* Send c->obuf; sync: everything said so far must reach the peer now (with COMPRESS: a
 * sync flush; a full buffer is deflated without one, for a better ratio). */
static int conn_send(struct conn *c, bool sync)
{
	if (c->failed)
		return -1;
	if (!conn_owes(c))
		return 0;
	int r = c->z != NULL ? conn_deflate_write(c, sync) : conn_raw_write(c, c->obuf, c->olen);
	if (r < 0) {
		c->failed = true;
		c->olen = 0;
		return -1;
	}
	c->out_bytes += c->olen;
	c->olen = 0;
	return 0;
}

int conn_flush(struct conn *c)
{
	return conn_send(c, true);
}

/* Read from the network into buf; output is flushed only if we have to wait. */
static ssize_t conn_raw_fill(struct conn *c, void *buf, size_t n, bool wait)
{
	if (c->failed && c->ssl == NULL && c->flags_saved)
		return -1; /* the TLS handshake failed: what follows is not plaintext */
	if (conn_past_deadline(c))
		return -1;
	ssize_t r = c->ssl != NULL ? conn_tls_read(c, buf, n, wait) :
		conn_plain_read(c, buf, n, wait);
	if (r > 0)
		c->in_bytes += (uint64_t)r;
	return r;
}

/* Under COMPRESS: inflate buffered input into buf (at most n bytes: the bound on what a
 * compressed byte can cost), reading more compressed input when it is used up. */
static ssize_t conn_inflate_fill(struct conn *c, void *buf, size_t n, bool wait)
{
	for (;;) {
		if (c->zend) {
			errno = EBADMSG;
			return -1;
		}
		if (c->zoff < c->zlen || zlayer_inflate_more(c->z)) {
			const char *in = c->zin + c->zoff, *error;
			size_t left = c->zlen - c->zoff, got;
			int r = zlayer_inflate(c->z, &in, &left, buf, n, &got, &error);
			c->zoff = c->zlen - left;   /* BOUNDS: left <= zlen - zoff */
			if (got > 0)
				return (ssize_t)got;
			if (r != 0) {
				c->zend = true;
				if (r > 0)
					return 0;   /* a final block: the client said no more */
				errno = EBADMSG;
				return -1;
			}
			if (c->zoff < c->zlen) {
				/* no progress with room and input: zlib says it cannot happen */
				c->zend = true;
				errno = EBADMSG;
				return -1;
			}
		}
		c->zoff = c->zlen = 0;
		ssize_t m = conn_raw_fill(c, c->zin, c->zcap, wait);
		if (m <= 0)
			return m;
		c->zlen = (size_t)m;
	}
}

static ssize_t conn_fill(struct conn *c, void *buf, size_t n, bool wait)
{
	if (c->z != NULL && n > 0)
		return conn_inflate_fill(c, buf, n, wait);
	return conn_raw_fill(c, buf, n, wait);
}

/* Compressed input that may still inflate to something (poll() cannot see it). */
static bool conn_zpending(const struct conn *c)
{
	return c->z != NULL && (c->zoff < c->zlen || zlayer_inflate_more(c->z));
}

int conn_compress_start(struct conn *c, const char **error_r)
{
	const char *data;

	if (c->z != NULL) {
		*error_r = "compression already active";
		return -1;
	}
	if (conn_flush(c) < 0) {
		*error_r = "connection closed";
		return -1;
	}
	c->z = zlayer_new(error_r);
	if (c->z == NULL)
		return -1;
	/* what the peer sent behind the command was compressed already */
	size_t have = linebuf_pending(c->lb, &data);
	c->zcap = have > IO_CHUNK ? have : IO_CHUNK;
	c->zin = xmalloc(c->zcap);
	memcpy(c->zin, data, have);
	c->zoff = 0;
	c->zlen = have;
	linebuf_consume(c->lb, have);
	c->zout = xmalloc(IO_CHUNK);
	return 0;
}

bool conn_compressed(const struct conn *c)
{
	return c->z != NULL;
}

int conn_read_line(struct conn *c, const char **line_r, size_t *len_r)
{
	for (;;) {
		int r = linebuf_next(c->lb, line_r, len_r);
		if (r != 0)
			return r;
		size_t room;
		char *p = linebuf_fill_ptr(c->lb, &room);
		if (room == 0)
			return -1; /* cannot happen: linebuf_next() said a line can complete */
		ssize_t n = conn_fill(c, p, room, true);
		if (n <= 0)
			return (int)n;
		linebuf_filled(c->lb, (size_t)n);
	}
}

ssize_t conn_read(struct conn *c, void *buf, size_t n)
{
	const char *data;
	size_t have = linebuf_pending(c->lb, &data);

	if (n == 0)
		return 0;
	if (have > 0) {
		if (have > n)
			have = n;
		memcpy(buf, data, have);
		linebuf_consume(c->lb, have);
		return (ssize_t)have;
	}
	return conn_fill(c, buf, n, true);
}

ssize_t conn_read_more(struct conn *c, bool wait)
{
	size_t room;
	char *p = linebuf_fill_ptr(c->lb, &room);

	if (room == 0) {
		errno = ENOBUFS;
		return -1;
	}
	ssize_t n = conn_fill(c, p, room, wait);
	if (n > 0)
		linebuf_filled(c->lb, (size_t)n);
	return n;
}

size_t conn_pending(struct conn *c, const char **data_r)
{
	return linebuf_pending(c->lb, data_r);
}

void conn_consume(struct conn *c, size_t n)
{
	linebuf_consume(c->lb, n);
}

int conn_wait_event(struct conn *c, int extra_fd, uint64_t timer_ms)
{
	const char *data;

	if (conn_owes(c) && conn_flush(c) < 0)
		return -1;
	if (linebuf_pending(c->lb, &data) > 0 || (c->ssl != NULL && SSL_pending(c->ssl) > 0) ||
	    conn_zpending(c))
		return CONN_EV_INPUT;
	uint64_t until = conn_wait_until(c);
	bool timer_first = timer_ms != 0 && (until == 0 || timer_ms <= until);
	if (timer_first)
		until = timer_ms;
	for (;;) {
		int ms;
		if (conn_poll_ms(until, &ms) < 0) {
			if (timer_first)
				return CONN_EV_TIMER;
			return -1; /* errno ETIMEDOUT: the idle timeout or a deadline */
		}
		struct pollfd pfd[2] = {
			{ .fd = c->rfd, .events = POLLIN },
			{ .fd = extra_fd, .events = POLLIN }, /* fd < 0: poll() skips it */
		};
		int n = poll(pfd, 2, ms);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n <= 0)
			continue;
		if (pfd[0].revents != 0)
			return CONN_EV_INPUT; /* input, or EOF/error: the next read tells */
		if (pfd[1].revents != 0)
			return CONN_EV_EXTRA;
	}
}

bool conn_has_input(struct conn *c)
{
	if (linebuf_has_line(c->lb) || conn_zpending(c))
		return true;
	return c->ssl != NULL && SSL_pending(c->ssl) > 0;
}

int conn_write(struct conn *c, const void *data, size_t len)
{
	const char *p = data;

	if (c->failed)
		return -1;
	while (len > 0) {
		size_t room = sizeof(c->obuf) - c->olen;
		if (room == 0) {
			if (conn_send(c, false) < 0)
				return -1;
			continue;
		}
		size_t n = len < room ? len : room;
		memcpy(c->obuf + c->olen, p, n);
		c->olen += n;
		p += n;
		len -= n;
	}
	return 0;
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
	char small[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return conn_write(c, small, (size_t)n);

	size_t size = (size_t)n + 1; /* BOUNDS: n < INT_MAX */
	char *big = xmalloc(size);
	va_start(ap, fmt);
	n = vsnprintf(big, size, fmt, ap);
	va_end(ap);
	int r = n < 0 || (size_t)n >= size ? -1 : conn_write(c, big, (size_t)n);
	free(big);
	return r;
}

static int conn_set_nonblock(int fd, int *old_r)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl == -1)
		return -1;
	*old_r = fl;
	if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

static void conn_restore_flags(struct conn *c)
{
	if (!c->flags_saved)
		return;
	(void)fcntl(c->rfd, F_SETFL, c->rflags);
	if (c->wfd != c->rfd)
		(void)fcntl(c->wfd, F_SETFL, c->wflags);
	c->flags_saved = false;
}

/* The reason of the last OpenSSL error, or errno's text, or what we know. */
static const char *conn_ssl_reason(int err, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (s != NULL)
		return s;
	if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_WANT_READ ||
	    err == SSL_ERROR_WANT_WRITE) {
		if (errno == ETIMEDOUT)
			return "timeout";
		if (errno == 0)
			return "connection closed";
		return strerror(errno);
	}
	return fallback;
}

/* Common to both ends: set the fds non-blocking, and the handshake's absolute deadline. */
static int conn_tls_prepare(struct conn *c, const char **error_r)
{
	if (c->ssl != NULL) {
		*error_r = "TLS already active";
		return -1;
	}
	/* our last plaintext answer ("+OK begin TLS") goes out before the handshake */
	if (conn_flush(c) < 0) {
		*error_r = "connection closed";
		return -1;
	}
	/* RFC 2595 section 8 / RFC 3207 section 6: bytes that came before the handshake
	 * are not to be trusted: an attacker could have injected them */
	linebuf_reset(c->lb);

	if (conn_set_nonblock(c->rfd, &c->rflags) < 0 ||
	    (c->wfd != c->rfd && conn_set_nonblock(c->wfd, &c->wflags) < 0)) {
		*error_r = strerror(errno);
		c->failed = true;
		return -1;
	}
	c->flags_saved = true;
	return 0;
}

/* Run the handshake on ssl (server or client end) until done, an error, the idle timeout
 * or TLS_HANDSHAKE_DEADLINE_MS from now.  Takes ssl: on success it is c->ssl. */
static int conn_tls_handshake(struct conn *c, SSL *ssl, bool client, const char **error_r)
{
	c->hs_deadline_ms = util_now_ms() + TLS_HANDSHAKE_DEADLINE_MS;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if (conn_past_deadline(c)) {
			*error_r = "timeout";
			SSL_free(ssl);
			c->hs_deadline_ms = 0;
			c->failed = true;
			return -1;
		}
		int r = client ? SSL_connect(ssl) : SSL_accept(ssl);
		if (r == 1)
			break;
		int err = SSL_get_error(ssl, r);
		if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) &&
		    conn_wait(c, err == SSL_ERROR_WANT_READ ? c->rfd : c->wfd,
			      err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) == 1)
			continue;
		*error_r = conn_ssl_reason(err, "handshake failed");
		if (client && SSL_get_verify_result(ssl) != X509_V_OK)
			*error_r = X509_verify_cert_error_string(SSL_get_verify_result(ssl));
		SSL_free(ssl);
		c->hs_deadline_ms = 0;
		/* the peer is no longer speaking plaintext: say nothing more */
		c->failed = true;
		return -1;
	}
	c->hs_deadline_ms = 0;
	c->ssl = ssl;
	return 0;
}

int conn_starttls(struct conn *c, SSL_CTX *ctx, const char **error_r)
{
	if (conn_tls_prepare(c, error_r) < 0)
		return -1;
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_rfd(ssl, c->rfd) != 1 || SSL_set_wfd(ssl, c->wfd) != 1) {
		*error_r = conn_ssl_reason(SSL_ERROR_SSL, "SSL_new failed");
		SSL_free(ssl);
		c->failed = true;
		return -1;
	}
	return conn_tls_handshake(c, ssl, false, error_r);
}

SSL_CTX *conn_client_ctx_new(const char *cafile, const char **error_r)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = conn_ssl_reason(SSL_ERROR_SSL, "SSL_CTX_new failed");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    (cafile != NULL ? SSL_CTX_load_verify_locations(ctx, cafile, NULL) :
	     SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		*error_r = conn_ssl_reason(SSL_ERROR_SSL, "cannot load the CA certificates");
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* DANE needs this once per context; a connection that does not call
	 * SSL_dane_enable() is not affected */
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		*error_r = conn_ssl_reason(SSL_ERROR_SSL, "SSL_CTX_dane_enable failed");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* A certificate name for the log: RFC 2253, printable ASCII only, cut to size. */
static void conn_x509_name(const X509_NAME *name, char *out, size_t size)
{
	out[0] = '\0';
	BIO *b = BIO_new(BIO_s_mem());
	if (b == NULL || name == NULL) {
		BIO_free(b);
		return;
	}
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
		int n = BIO_read(b, out, (int)size - 1);
		/* BOUNDS: n <= size - 1 */
		n = n < 0 ? 0 : n;
		out[n] = '\0';
		for (int i = 0; i < n; i++)
			if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7E)
				out[i] = '?';
	}
	BIO_free(b);
}

static void conn_tls_fill(SSL *ssl, enum conn_tls_mode mode, struct conn_tls_result *r)
{
	(void)util_snprintf(r->version, sizeof(r->version), "%s", SSL_get_version(ssl));
	if (util_snprintf(r->cipher, sizeof(r->cipher), "%s", SSL_get_cipher_name(ssl)) < 0)
		r->cipher[0] = '\0';
	X509 *peer = SSL_get0_peer_certificate(ssl);
	if (peer != NULL) {
		conn_x509_name(X509_get_subject_name(peer), r->subject, sizeof(r->subject));
		conn_x509_name(X509_get_issuer_name(peer), r->issuer, sizeof(r->issuer));
	}
	long vr = SSL_get_verify_result(ssl);
	if (peer == NULL)
		(void)util_snprintf(r->verify_error, sizeof(r->verify_error), "no certificate");
	else if (vr != X509_V_OK &&
		 util_snprintf(r->verify_error, sizeof(r->verify_error), "%s",
			       X509_verify_cert_error_string(vr)) < 0)
		r->verify_error[0] = '\0';
	uint8_t u, sel, mt;
	int depth = SSL_get0_dane_tlsa(ssl, &u, &sel, &mt, NULL, NULL);
	if (depth >= 0) {
		r->dane_matched = true;
		r->dane_usage = u;
		r->dane_selector = sel;
		r->dane_mtype = mt;
		r->dane_depth = depth;
	}
	if (mode == CONN_TLS_DANE)
		r->verified = r->dane_matched && vr == X509_V_OK;
	else
		r->verified = peer != NULL && vr == X509_V_OK;
}

/* The names a certificate may carry for p (SSL_set1_host, then SSL_add1_host). */
static bool conn_tls_names(SSL *ssl, const struct conn_tls_policy *p, bool first_set)
{
	bool ok = true;

	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (first_set && p->host != NULL && p->host[0] != '\0')
		ok = SSL_set1_host(ssl, p->host) == 1;
	for (size_t i = 0; ok && i < p->nnames; i++)
		ok = SSL_add1_host(ssl, p->names[i]) == 1;
	return ok;
}

int conn_connect_tls_mode(struct conn *c, SSL_CTX *ctx, const struct conn_tls_policy *p,
			  struct conn_tls_result *res_r, const char **error_r)
{
	struct conn_tls_result *r = res_r;
	const char *host = p->host;

	memset(r, 0, sizeof(*r));
	r->dane_usage = r->dane_selector = r->dane_mtype = r->dane_depth = -1;
	if (p->mode != CONN_TLS_OPPORTUNISTIC && (host == NULL || host[0] == '\0')) {
		*error_r = "verification needs a host name";
		return -1;
	}
	if (conn_tls_prepare(c, error_r) < 0)
		return -1;
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	bool ok = ssl != NULL && SSL_set_rfd(ssl, c->rfd) == 1 && SSL_set_wfd(ssl, c->wfd) == 1;
	struct in6_addr a6;
	if (ok && host != NULL && host[0] != '\0' && inet_pton(AF_INET, host, &a6) != 1 &&
	    inet_pton(AF_INET6, host, &a6) != 1)
		ok = SSL_set_tlsext_host_name(ssl, host) == 1;
	if (ok && p->mode == CONN_TLS_DANE) {
		/* the base domain is the first reference identifier for DANE-TA's name check */
		ok = SSL_dane_enable(ssl, host) > 0 && conn_tls_names(ssl, p, false);
		/* RFC 7672 section 3.1.1: DANE-EE binds the key, no name is checked */
		(void)SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
		for (size_t i = 0; ok && i < p->ntlsa; i++) {
			const struct conn_tlsa *t = &p->tlsa[i];
			/* RFC 7672 section 3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable in SMTP */
			if (t->usage != 2 && t->usage != 3)
				continue;
			/* 0: unusable (unknown selector or type), < 0: malformed (a digest of the
			 * wrong length): unusable too (RFC 6698 section 4.1) */
			if (SSL_dane_tlsa_add(ssl, t->usage, t->selector, t->mtype, t->data,
					      t->len) > 0)
				r->dane_usable++;
			ERR_clear_error();
		}
		/* no usable record: encrypted but unauthenticated (RFC 7672 section 2.2) */
		SSL_set_verify(ssl, r->dane_usable > 0 ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	} else if (ok) {
		/* OPPORTUNISTIC checks the names as well, so that "verified" means the same */
		ok = conn_tls_names(ssl, p, true);
		SSL_set_verify(ssl, p->mode == CONN_TLS_VERIFY ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
			       NULL);
	}
	if (!ok) {
		*error_r = conn_ssl_reason(SSL_ERROR_SSL, "SSL_new failed");
		SSL_free(ssl);
		c->failed = true;
		return -1;
	}
	if (conn_tls_handshake(c, ssl, true, error_r) < 0) {
		if (util_snprintf(r->verify_error, sizeof(r->verify_error), "%s", *error_r) < 0)
			r->verify_error[0] = '\0';
		return -1;
	}
	conn_tls_fill(c->ssl, p->mode, r);
	return 0;
}

int conn_connect_tls(struct conn *c, SSL_CTX *ctx, const char *host, bool verify,
		     const char **error_r)
{
	if (verify && (host == NULL || host[0] == '\0')) {
		*error_r = "verification needs a host name";
		return -1;
	}
	if (conn_tls_prepare(c, error_r) < 0)
		return -1;
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	bool ok = ssl != NULL && SSL_set_rfd(ssl, c->rfd) == 1 && SSL_set_wfd(ssl, c->wfd) == 1;
	/* SNI (RFC 6066 section 3) is a DNS name, never an address literal */
	struct in6_addr a6;
	if (ok && host != NULL && host[0] != '\0' && inet_pton(AF_INET, host, &a6) != 1 &&
	    inet_pton(AF_INET6, host, &a6) != 1)
		ok = SSL_set_tlsext_host_name(ssl, host) == 1;
	if (ok && verify) {
		/* the chain must lead to a trusted CA and the leaf must name host (RFC 6125);
		 * SSL_set1_host() matches IP addresses too */
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = SSL_set1_host(ssl, host) == 1;
	}
	if (!ok) {
		*error_r = conn_ssl_reason(SSL_ERROR_SSL, "SSL_new failed");
		SSL_free(ssl);
		c->failed = true;
		return -1;
	}
	return conn_tls_handshake(c, ssl, true, error_r);
}

bool conn_tls_verified(const struct conn *c)
{
	return c->ssl != NULL && SSL_get0_peer_certificate(c->ssl) != NULL &&
		SSL_get_verify_result(c->ssl) == X509_V_OK;
}

const char *conn_tls_version(const struct conn *c)
{
	return c->ssl != NULL ? SSL_get_version(c->ssl) : NULL;
}

const char *conn_tls_cipher(const struct conn *c)
{
	return c->ssl != NULL ? SSL_get_cipher_name(c->ssl) : NULL;
}

bool conn_tls_resumed(const struct conn *c)
{
	return c->ssl != NULL && SSL_session_reused(c->ssl) == 1;
}

void conn_deinit(struct conn *c)
{
	if (!c->failed)
		(void)conn_flush(c);
	if (c->ssl != NULL) {
		if (!c->failed) {
			/* one try at close_notify; we do not wait for the peer's */
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	conn_restore_flags(c);
	linebuf_free(&c->lb);
	zlayer_free(&c->z);
	if (c->zin != NULL)
		util_wipe(c->zin, c->zcap);
	free(c->zin);
	free(c->zout);
	c->zin = c->zout = NULL;
	util_wipe(c->obuf, sizeof(c->obuf));
	c->olen = 0;
}
