/* A client connection: fd 0/1 (or a socketpair end), plain or TLS, with an idle timeout
 * and a bounded line reader.  All network reads and writes go through here. */
#ifndef POSTERN_CONN_H
#define POSTERN_CONN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include "base/linebuf.h"

struct conn {
	int rfd, wfd;
	SSL *ssl;               /* NULL: plain */
	struct linebuf *lb;
	unsigned timeout_s;     /* idle timeout for reads; 0 = none */
	uint64_t in_bytes, out_bytes;
	char obuf[16384];       /* output buffer, flushed by conn_flush() */
	size_t olen;
	bool failed;            /* a write failed: the peer is gone */
	/* private to conn.c */
	bool rnotsock, wnotsock; /* the fd is a pipe or file: read()/write() after poll() */
	bool flags_saved;       /* TLS set O_NONBLOCK; conn_deinit() restores these */
	int rflags, wflags;
};

/* line_max: longest command line (plimits.h). */
void conn_init(struct conn *c, int rfd, int wfd, size_t line_max, unsigned timeout_s);
void conn_deinit(struct conn *c);
/* Read one line.  1 line (valid until the next call), 0 EOF, -1 error or timeout,
 * LINEBUF_TOO_LONG, LINEBUF_BAD_BYTE. */
int conn_read_line(struct conn *c, const char **line_r, size_t *len_r);
/* Raw read of up to n bytes, taking buffered input first.  >0, 0 EOF, -1 error/timeout. */
ssize_t conn_read(struct conn *c, void *buf, size_t n);
/* True if input is already buffered (pipelining: don't flush yet). */
bool conn_has_input(struct conn *c);
/* Buffered writes; conn_flush() sends.  Return 0 or -1 (peer gone). */
int conn_write(struct conn *c, const void *data, size_t len);
int conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int conn_flush(struct conn *c);
/* Server-side TLS handshake on this connection (implicit TLS or after STLS).  Discards
 * any buffered plaintext input (RFC 2595 / RFC 3207 injection defence).  0 or -1. */
int conn_starttls(struct conn *c, SSL_CTX *ctx, const char **error_r);
/* "TLSv1.3" and cipher name, or NULL if plain. */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);
bool conn_tls_resumed(const struct conn *c);

#endif
