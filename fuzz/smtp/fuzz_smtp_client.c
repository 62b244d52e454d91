/* libFuzzer: the outbound client engine (common/smtp/smtp_client.c) against a hostile
 * server.  Byte 0 picks the parameters (TLS offered to the engine, require_tls, AUTH)
 * and whether the handshakes "succeed"; byte 1 the chunk size; the rest is what the
 * server says.  The driver plays the caller: messages on IDLE (up to 3, then QUIT), a
 * body with dots and bare line ends, TLS when asked.  Checks: the engine never asks for
 * something out of turn; every message it finishes has a result for each recipient
 * (and maybe_twice only with no OK); the password's base64 never goes out before TLS;
 * every line written ends in CRLF and has no NUL; DONE is final. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "smtp/smtp_client.h"

static bool tls_done;
static bool out_cr;

static void check_output(struct smtp_client *c)
{
	const char *d;
	size_t n = smtp_client_output(c, &d);

	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\0')
			abort();
		if (d[i] == '\n' && !out_cr)
			abort();          /* a bare LF went out */
		if (out_cr && d[i] != '\n')
			abort();          /* a bare CR went out */
		out_cr = d[i] == '\r';
	}
	/* base64 of "\0ned\0secret" (PLAIN) and of "secret" (LOGIN) */
	if (!tls_done && (memmem(d, n, "AG5lZABzZWNyZXQ=", 16) != NULL ||
			  memmem(d, n, "c2VjcmV0", 8) != NULL))
		abort();
}

static void check_msg(const struct smtp_client_msg *m)
{
	size_t ok = 0;
	for (size_t i = 0; i < m->nrcpts; i++) {
		if (m->rcpts[i].status == SMTP_CLIENT_PENDING)
			abort();
		ok += m->rcpts[i].status == SMTP_CLIENT_OK;
	}
	if (ok != m->delivered || (m->maybe_twice && ok != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	size_t chunk = (size_t)(data[1] % 16) + 1;
	data += 2;
	size -= 2;
	struct smtp_client_params p = {
		.helo_name = "client.test", .tls = flags & 1, .require_tls = flags & 2,
		.auth_user = (flags & 4) ? "ned" : NULL, .auth_pass = "secret",
	};
	struct smtp_client_rcpt r[3] = {
		{ .addr = "a@mx.test", .notify = SMTP_NOTIFY_FAILURE, .orcpt = "rfc822;a@mx.test" },
		{ .addr = "b@mx.test" }, { .addr = "c@mx.test" },
	};
	struct smtp_client_msg m = { .from = "s@a.test", .size = 20, .eightbit = flags & 8,
		.ret = SMTP_RET_HDRS, .envid = "E1", .rcpts = r, .nrcpts = (flags >> 4) % 3 + 1 };
	bool in_msg = false;
	unsigned messages = 0;
	tls_done = false;
	out_cr = false;
	struct smtp_client *c = smtp_client_new(&p);
	size_t off = 0;

	for (unsigned guard = 0; guard < 100000; guard++) {
		check_output(c);
		enum smtp_client_want w = smtp_client_want(c);
		if (in_msg && (w == SMTP_CLIENT_IDLE || w == SMTP_CLIENT_DONE)) {
			check_msg(&m);
			in_msg = false;
		}
		if (w == SMTP_CLIENT_DONE) {
			if (off < size && smtp_client_feed(c, (const char *)data + off, 1) != -1)
				abort();
			break;
		}
		if (w == SMTP_CLIENT_TLS) {
			tls_done = (flags & 0x80) != 0;
			smtp_client_tls_done(c, tls_done);
			continue;
		}
		if (w == SMTP_CLIENT_IDLE) {
			if (messages++ < 3) {
				if (smtp_client_message(c, &m) != 0)
					abort();
				in_msg = true;
			} else {
				smtp_client_quit(c);
			}
			continue;
		}
		if (w == SMTP_CLIENT_BODY) {
			smtp_client_body(c, ".a\nb\r.\r\n", 8);
			smtp_client_body_end(c);
			continue;
		}
		if (off >= size) {
			smtp_client_eof(c, "eof");
			continue;
		}
		size_t n = size - off < chunk ? size - off : chunk;
		(void)smtp_client_feed(c, (const char *)data + off, n);
		off += n;
	}
	check_output(c);
	if (in_msg && smtp_client_want(c) == SMTP_CLIENT_DONE)
		check_msg(&m);
	smtp_client_free(&c);
	return 0;
}
