/* The client side of SMTP (RFC 5321) for outbound delivery, I/O-free like common/sasl:
 * the caller feeds the server's bytes and sends what the engine writes; the engine keeps
 * the dialogue, the extensions and every recipient's result.  Replies are parsed by
 * smtp_response.c (strict, bounded: a protocol error ends the connection).
 *
 *	c = smtp_client_new(&params);
 *	loop:
 *	  send smtp_client_output() (always, before anything else; may be empty)
 *	  switch (smtp_client_want(c)) {
 *	  READ:    read with smtp_client_timeout_s(); smtp_client_feed() or, on EOF or a
 *	           timeout, smtp_client_eof()
 *	  TLS:     the TLS handshake on the connection (conn_connect_tls); smtp_client_tls_done()
 *	  IDLE:    smtp_client_message(c, &msg) for the next message, or smtp_client_quit()
 *	  BODY:    smtp_client_body() per chunk of the message (with BDAT without
 *	           pipelining, want() is READ after each until its 250), then
 *	           smtp_client_body_end()
 *	  DONE:    close; smtp_client_error() says why when it was not a QUIT
 *	  }
 *	a message is finished when want() is IDLE or DONE again: msg->rcpts[i].status, its
 *	reply, and msg->maybe_twice are set; msg must live until then.
 *
 * The dialogue: greeting, EHLO (HELO when EHLO gets a 5xx: RFC 5321 section 3.2),
 * STARTTLS whenever offered and params.tls (then EHLO again: RFC 3207 section 4.2; a
 * reply with bytes after STARTTLS's 220 is an injection attempt and ends the
 * connection); params.require_tls without STARTTLS (or with its failure) ends the
 * connection as a temporary failure; AUTH PLAIN (or LOGIN) when params.auth_user, only
 * after TLS (never a password in clear); then per message MAIL FROM with SIZE=,
 * BODY=8BITMIME, SMTPUTF8, RET= and ENVID= as the server supports them, RCPT TO each
 * with NOTIFY= and ORCPT= under DSN, DATA with the body CRLF-normalised and dot-stuffed,
 * or with CHUNKING (RFC 3030) BDAT: one chunk per smtp_client_body() call, CRLF-
 * normalised, not stuffed, "BDAT n LAST" at smtp_client_body_end().  With PIPELINING
 * (RFC 2920) MAIL, every RCPT and DATA go in one group, and BDAT chunks follow each
 * other, their replies read after the last; without, each chunk's 250 is waited for
 * (want() is READ between chunks).  Messages follow
 * one another on the connection without RSET; RSET only after a transaction that did
 * not reach the final dot (all recipients refused, DATA refused).
 *
 * Downgrades (decided here, for every caller):
 * - a message that needs SMTPUTF8 (msg.smtputf8) to a server without it fails for every
 *   recipient, permanently, 553 5.6.7 (RFC 6531 section 3.2: no downgrade of addresses);
 * - an 8-bit body (msg.eightbit) to a server without 8BITMIME is sent as it is, without
 *   BODY=: converting it to quoted-printable would break a DKIM signature made before,
 *   and every server in use takes 8-bit data (Postfix does the same with
 *   disable_mime_output_conversion=yes, Exim always);
 * - SIZE: a message over the server's announced SIZE fails permanently, 552 5.3.4,
 *   without being sent (RFC 1870 section 6.2);
 * - DSN parameters without DSN at the server are left out (RFC 3461 section 5.2 asks
 *   the sender to relay a "relayed" DSN then: the queue's business).
 * - a refused BDAT chunk fails the message (RFC 3030 section 2: no more chunks; with
 *   pipelining the ones in flight are discarded by the server) and RSET follows;
 *   BINARYMIME is never used (the body is text, CRLF-normalised).
 * - ORCPT: rfc822 as xtext; one with UTF-8 as RFC 6533's utf-8-addr-xtext ("utf-8;"
 *   with \x{HEX} escapes), which is valid with and without SMTPUTF8; other types
 *   (x400...) are left out (the parameter is optional). */
#ifndef POSTERN_SMTP_CLIENT_H
#define POSTERN_SMTP_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_response.h"

struct smtp_client;

struct smtp_client_params {
	const char *helo_name;      /* our host name for EHLO/HELO (required) */
	bool tls;                   /* the caller can do STARTTLS: use it when offered */
	bool require_tls;           /* no STARTTLS offered, or it fails: temporary failure */
	const char *auth_user;      /* smarthost AUTH (PLAIN, else LOGIN); NULL: none */
	const char *auth_pass;
};

enum smtp_client_want {
	SMTP_CLIENT_READ,           /* feed the server's bytes */
	SMTP_CLIENT_TLS,            /* do the TLS handshake, then smtp_client_tls_done() */
	SMTP_CLIENT_IDLE,           /* ready for a message, or QUIT */
	SMTP_CLIENT_BODY,           /* send the body with smtp_client_body() */
	SMTP_CLIENT_DONE,           /* the connection is over */
};

/* A reply as kept for the log and a DSN.  enh is "" unless the server announced
 * ENHANCEDSTATUSCODES and the reply carried one; text is its lines joined by " ". */
struct smtp_client_reply {
	unsigned code;              /* 0: no reply (the connection was lost) */
	char enh[12];
	char text[SMTP_CLIENT_MAX_REPLY_TEXT + 1];
};

enum smtp_client_status {
	SMTP_CLIENT_PENDING,        /* not tried yet (the message ended before it) */
	SMTP_CLIENT_OK,             /* accepted by the final reply: delivered */
	SMTP_CLIENT_TEMPFAIL,       /* 4xx, or the connection failed: try again later */
	SMTP_CLIENT_PERMFAIL,       /* 5xx, or a downgrade refused: bounce */
};

/* What the connection knows, for the log and the queue: the stage is where a failure
 * happened ("greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "dot",
 * "rset", "quit"). */
struct smtp_client_error {
	bool temporary;             /* a 4xx, a lost connection, a protocol error, no TLS */
	const char *stage;
	const char *reason;         /* our words: "protocol error: ...", "connection lost" */
	struct smtp_client_reply reply; /* the server's reply, code 0 if none */
};

struct smtp_client_rcpt {
	const char *addr;           /* the path without "<>" */
	unsigned notify;            /* SMTP_NOTIFY_* (smtp_cmd.h); 0: not given */
	const char *orcpt;          /* "rfc822;bob@example.org" (decoded), or NULL */
	/* out */
	enum smtp_client_status status;
	struct smtp_client_reply reply;
};

struct smtp_client_msg {
	const char *from;           /* the reverse path without "<>"; "" for the null sender */
	uint64_t size;              /* the body's size (as sent with CRLF line ends) */
	bool eightbit;              /* the body has bytes over 127 */
	bool smtputf8;              /* an address or header needs SMTPUTF8 */
	enum smtp_ret ret;          /* DSN RET=, SMTP_RET_NONE: not given */
	const char *envid;          /* DSN ENVID= (decoded), or NULL */
	struct smtp_client_rcpt *rcpts;
	size_t nrcpts;              /* 1..SMTP_CLIENT_MAX_RCPTS */
	/* out */
	bool maybe_twice;           /* the connection ended after the final dot (or BDAT
	                             * LAST) and before its reply: the server may have
	                             * delivered it anyway (log it; RFC 1047) */
	size_t delivered;           /* recipients with SMTP_CLIENT_OK */
};

/* params' strings are copied. */
struct smtp_client *smtp_client_new(const struct smtp_client_params *params);
/* Wipes (the password) and frees; *c becomes NULL. */
void smtp_client_free(struct smtp_client **c);

enum smtp_client_want smtp_client_want(const struct smtp_client *c);
/* Bytes to send now; *data_r valid until the next call into the engine.  Taking them
 * empties the buffer. */
size_t smtp_client_output(struct smtp_client *c, const char **data_r);
/* Seconds to wait for the reply the engine waits for (RFC 5321 section 4.5.3.2). */
unsigned smtp_client_timeout_s(const struct smtp_client *c);

/* Bytes from the server, in any chunking.  0, or -1 when the connection is over
 * (want() is DONE; the error says why).  Bytes when no reply is expected are an error. */
int smtp_client_feed(struct smtp_client *c, const char *data, size_t len);
/* The connection ended (EOF, a read error, a timeout): everything in flight fails
 * temporarily; after the final dot, msg->maybe_twice is set. */
void smtp_client_eof(struct smtp_client *c, const char *reason);
/* After want() == TLS: ok, the handshake succeeded (EHLO again follows); not ok: the
 * connection is over (temporary failure). */
void smtp_client_tls_done(struct smtp_client *c, bool ok);

/* After want() == IDLE: start msg.  The engine checks the addresses (no control bytes,
 * no "<>", lengths) and the downgrade rules; a message refused by them is finished at
 * once (want() stays IDLE) with every recipient PERMFAIL.  0, or -1 when called out of
 * turn (the caller's bug). */
int smtp_client_message(struct smtp_client *c, struct smtp_client_msg *msg);
/* After want() == BODY: the message's bytes as stored (LF or CRLF line ends, any
 * chunking); the engine writes them CRLF-normalised (a lone CR or LF becomes CRLF) and
 * dot-stuffed (RFC 5321 section 4.5.2) to the output. */
void smtp_client_body(struct smtp_client *c, const char *data, size_t len);
/* The body ended: the final CRLF if missing, ".", and wait for the reply. */
void smtp_client_body_end(struct smtp_client *c);
/* After want() == IDLE: QUIT (its reply is waited for, then DONE). */
void smtp_client_quit(struct smtp_client *c);

/* After DONE without QUIT (or a failed stage): why.  NULL if none. */
const struct smtp_client_error *smtp_client_error(const struct smtp_client *c);
/* The server's extensions, once EHLO was answered (the last EHLO: after STARTTLS). */
const struct smtp_ehlo *smtp_client_ehlo(const struct smtp_client *c);
bool smtp_client_esmtp(const struct smtp_client *c);     /* EHLO, not HELO, worked */
bool smtp_client_authenticated(const struct smtp_client *c);
/* The reply to the greeting (the server's name is its first word), for the log. */
const struct smtp_client_reply *smtp_client_greeting(const struct smtp_client *c);

#endif
