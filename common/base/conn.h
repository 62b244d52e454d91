/* A connection: fd 0/1 (or a socketpair end), plain or TLS (server end, or client end for
 * outbound SMTP), with an idle timeout, absolute deadlines and a bounded line reader.  All
 * network reads and writes go through here. */
#ifndef POSTERN_CONN_H
#define POSTERN_CONN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/ssl.h>
#include "base/linebuf.h"

struct conn {
	int rfd, wfd;
	SSL *ssl;               /* NULL: plain */
	struct linebuf *lb;
	unsigned timeout_s;     /* idle timeout for reads; 0 = none */
	uint64_t deadline_ms;   /* absolute end of every wait (util_now_ms()); 0 = none */
	uint64_t in_bytes, out_bytes;
	char obuf[16384];       /* output buffer, flushed by conn_flush() */
	size_t olen;
	bool failed;            /* a write failed: the peer is gone */
	struct zlayer *z;       /* COMPRESS=DEFLATE (conn_compress_start()); NULL: none */
	/* private to conn.c */
	bool rnotsock, wnotsock; /* the fd is a pipe or file: read()/write() after poll() */
	bool flags_saved;       /* TLS set O_NONBLOCK; conn_deinit() restores these */
	uint64_t hs_deadline_ms; /* during a TLS handshake: TLS_HANDSHAKE_DEADLINE_MS */
	int rflags, wflags;
	char *zin;              /* compressed input not yet inflated: zin[zoff..zlen) */
	size_t zoff, zlen, zcap;
	char *zout;             /* IO_CHUNK: compressed output on its way to the socket */
	bool zend;              /* the peer's compressed stream ended or was corrupt */
};

/* line_max: longest command line (plimits.h). */
void conn_init(struct conn *c, int rfd, int wfd, size_t line_max, unsigned timeout_s);
void conn_deinit(struct conn *c);
/* The longest line from now on, as the protocol state changes (plimits.h: IMAP 8 KiB
 * before login and 64 KiB after; SMTP 512, 1000, 12 KiB).  Buffered input is kept. */
void conn_set_line_max(struct conn *c, size_t line_max);
/* An absolute deadline (util_now_ms() clock, 0: none) for every wait from now on, on top
 * of the idle timeout: a wait past it fails with errno ETIMEDOUT. */
void conn_set_deadline(struct conn *c, uint64_t at_ms);
/* Read one line.  1 line (valid until the next call), 0 EOF, -1 error or timeout,
 * LINEBUF_TOO_LONG, LINEBUF_BAD_BYTE. */
int conn_read_line(struct conn *c, const char **line_r, size_t *len_r);
/* Raw read of up to n bytes, taking buffered input first.  >0, 0 EOF, -1 error/timeout. */
ssize_t conn_read(struct conn *c, void *buf, size_t n);
/* Raw input, for readers that are not line-based (the SMTP DATA reader, the relay):
 * conn_read_more() reads once into the input buffer: >0 bytes, 0 EOF, -1 error or timeout,
 * or, without wait, CONN_AGAIN when nothing is there yet.  conn_pending() shows what is
 * buffered (also what the line reader has not returned yet), conn_consume() drops it. */
#define CONN_AGAIN (-2)
ssize_t conn_read_more(struct conn *c, bool wait);
size_t conn_pending(struct conn *c, const char **data_r);
void conn_consume(struct conn *c, size_t n);
/* Flush, then wait for the first of: client input (CONN_EV_INPUT, also when input is
 * already buffered, or EOF), extra_fd readable (CONN_EV_EXTRA; -1: none; e.g. inotify for
 * IMAP IDLE), the time timer_ms (util_now_ms() clock, 0: none; CONN_EV_TIMER).  -1 on an
 * error, or ETIMEDOUT when the idle timeout or a deadline comes first. */
#define CONN_EV_INPUT 1
#define CONN_EV_EXTRA 2
#define CONN_EV_TIMER 3
int conn_wait_event(struct conn *c, int extra_fd, uint64_t timer_ms);
/* True if input is already buffered (pipelining: don't flush yet). */
bool conn_has_input(struct conn *c);
/* Buffered writes; conn_flush() sends.  Return 0 or -1 (peer gone). */
int conn_write(struct conn *c, const void *data, size_t len);
int conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int conn_flush(struct conn *c);
/* From now on, input is inflated and output deflated (raw DEFLATE, RFC 4978), under TLS
 * if TLS is on and above the socket: the caller has sent (and this flushes) its last
 * uncompressed reply.  Input already buffered is the peer's first compressed bytes.
 * Every conn_flush() (and so every wait for input) ends a sync flush: the peer can read
 * all we said.  A corrupt stream from the peer reads as an error with errno EBADMSG, its
 * end (a final block) as EOF.  0, or -1 with *error_r. */
int conn_compress_start(struct conn *c, const char **error_r);
bool conn_compressed(const struct conn *c);
/* Server-side TLS handshake on this connection (implicit TLS or after STLS).  Discards
 * any buffered plaintext input (RFC 2595 / RFC 3207 injection defence).  0 or -1. */
int conn_starttls(struct conn *c, SSL_CTX *ctx, const char **error_r);
/* Client-side TLS (outbound SMTP, after our STARTTLS).  host is sent as SNI (unless it is
 * an address literal); with verify, the handshake fails unless the peer's chain leads to
 * a CA of ctx and its certificate names host (RFC 6125, no partial wildcards).  Shares
 * conn_starttls()'s rules: buffered plaintext dropped, handshake deadline.  0 or -1. */
int conn_connect_tls(struct conn *c, SSL_CTX *ctx, const char *host, bool verify,
		     const char **error_r);
/* A client context: TLS 1.2 or later, trusting cafile (NULL: the system's CAs), with
 * OpenSSL's DANE support enabled (SSL_CTX_dane_enable) for conn_connect_tls_mode(). */
SSL_CTX *conn_client_ctx_new(const char *cafile, const char **error_r);

/* Outbound TLS with a policy (issue 8: the SMTP client):
 * - OPPORTUNISTIC: any certificate is accepted; the result still says whether the chain
 *   verified to a CA of ctx and named host (RFC 7435: opportunistic security);
 * - DANE (RFC 7672): the TLSA records (DNSSEC-validated by the caller) decide, through
 *   OpenSSL's own DANE code (SSL_dane_enable, SSL_dane_tlsa_add; never our matching):
 *   the handshake fails unless a usable record matches.  DANE-EE(3) matches the leaf
 *   with no name check (RFC 7672 section 3.1.1); DANE-TA(2) matches
 *   an issuer in the chain the server sends, and the leaf must name host or one of
 *   names (the reference identifiers: the MX host name and the next-hop domain, RFC
 *   7672 section 3.2.2).  PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (RFC 7672
 *   section 3.1.3) and skipped.  No usable record at all: TLS is still required, but
 *   unauthenticated (RFC 7672 section 2.2), and the result says dane_usable == 0.
 * - VERIFY: WebPKI (RFC 6125) against ctx's CAs: the chain must verify and the leaf
 *   name host or one of names (a smarthost; an MTA-STS policy's mx names). */
enum conn_tls_mode { CONN_TLS_OPPORTUNISTIC, CONN_TLS_DANE, CONN_TLS_VERIFY };

/* One TLSA record's fields (RFC 6698 section 2.1) */
struct conn_tlsa {
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t len;
};

struct conn_tls_policy {
	enum conn_tls_mode mode;
	const char *host;               /* SNI (not for an address literal) and the name; for
	                                 * DANE the TLSA base domain (the MX host name) */
	const char *const *names;       /* more acceptable names, or NULL */
	size_t nnames;
	const struct conn_tlsa *tlsa;   /* DANE: the records */
	size_t ntlsa;
};

/* What a handshake gave, for the log line of each delivery ("the TLS result logged per
 * delivery"): all strings NUL-terminated, "" when unknown. */
struct conn_tls_result {
	char version[16];               /* "TLSv1.3" */
	char cipher[64];                /* "TLS_AES_256_GCM_SHA384" */
	bool verified;                  /* authenticated: the chain verified and named the
	                                 * host (VERIFY, OPPORTUNISTIC), or a TLSA record
	                                 * matched (DANE) */
	char verify_error[96];          /* why not, OpenSSL's words, or "" */
	size_t dane_usable;             /* DANE: records OpenSSL could use */
	bool dane_matched;              /* DANE: a record matched */
	int dane_usage, dane_selector, dane_mtype; /* the matching record, -1 if none */
	int dane_depth;                 /* where in the chain it matched (0: the leaf), -1 */
	char subject[256];              /* the peer's certificate subject, RFC 2253, cut */
	char issuer[256];
};

/* The client side of TLS with a policy; on success *res_r is filled (on a failure too,
 * as far as the handshake got: the log says what failed).  0 or -1 with *error_r. */
int conn_connect_tls_mode(struct conn *c, SSL_CTX *ctx, const struct conn_tls_policy *p,
			  struct conn_tls_result *res_r, const char **error_r);
/* True if the peer presented a certificate whose chain verified (and whose name matched,
 * when conn_connect_tls() was asked to verify). */
bool conn_tls_verified(const struct conn *c);
/* "TLSv1.3" and cipher name, or NULL if plain. */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);
bool conn_tls_resumed(const struct conn *c);

#endif
