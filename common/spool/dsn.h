/* Delivery status notifications (bounces): RFC 3464 inside RFC 6522's multipart/report,
 * with RFC 3461's rules for when one is owed and what it returns, RFC 6533's types for
 * SMTPUTF8 messages.  No I/O of its own: the original message comes through a read
 * callback, the DSN goes out through a write callback (spool_new_write() fits), so the
 * queue runner decides where both live.
 *
 * What goes out (CRLF line ends, every line under 998 bytes, nothing from outside in a
 * header without going through the sanitiser below):
 *
 *   From: Mail Delivery System <MAILER-DAEMON@reporting-mta>
 *   To: <original sender>
 *   Subject: Undelivered Mail Returned to Sender    (any failed; else "Delayed Mail
 *                                                    (still being retried)"; else
 *                                                    "Successful Mail Delivery Report")
 *   Date:, Message-ID: <message_id_left@reporting-mta>, Auto-Submitted: auto-replied
 *   MIME-Version: 1.0
 *   Content-Type: multipart/report; report-type=delivery-status; boundary="..."
 *     1. text/plain: what happened, one paragraph per recipient
 *     2. message/delivery-status (message/global-delivery-status for an SMTPUTF8
 *        message): Reporting-MTA, Original-Envelope-Id (ENVID), Arrival-Date; per
 *        recipient Original-Recipient (ORCPT), Final-Recipient, Action, Status,
 *        Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until
 *     3. the original: text/rfc822-headers (message/global-headers) or, whole,
 *        message/rfc822 (message/global); left out when no reader is given
 *
 * What is returned (RFC 3461 sections 4.3 and 6.2): only a DSN reporting a failure may
 * return the whole message, and only with RET=FULL, when the message is at most
 * DSN_RETURN_FULL_MAX bytes and not BODY=BINARYMIME (binary cannot travel inside a
 * message/rfc822 part over an 8-bit transport); anything else returns the header only.
 * Without RET we return the header only (RFC 3461 leaves it to the MTA): the header
 * identifies the message, and a full copy by default doubles the traffic of every bounce
 * and hands content back to whatever address a spammer put in MAIL FROM.
 *
 * Sanitising (everything that came from outside: addresses, ORCPT, ENVID, the remote
 * MTA's name, the diagnostic text as the remote server sent it): CR, LF, TAB become a
 * space, runs of white space one space, other control bytes, DEL and NUL '?', bytes >=
 * 0x80 '?' -- except, in an SMTPUTF8 DSN, valid UTF-8 sequences, which stay -- then the
 * value is cut at DSN_TEXT_MAX bytes (at a character boundary, with "..." appended) and
 * folded at spaces before 78 columns where a space allows.  A value is never longer than
 * DSN_TEXT_MAX and a field name never longer than 20, so no line reaches 998 bytes even
 * where no space allows a fold; in the text part each word goes on a line of its own
 * when it must, so no line there passes 4 + DSN_TEXT_MAX either.  A status that is not
 * a valid x.y.z (RFC 3463) or does not fit its action (failed: 4.x.x -- a message that
 * expired after temporary errors -- or 5.x.x; delayed: 4.x.x; the others 2.x.x) is
 * replaced by the action's generic one (5.0.0, 4.0.0, 2.0.0).  Our own values (the
 * reporting MTA's name, the Message-ID's left part, a given boundary) are checked
 * instead, and refused when invalid.
 *
 * 8-bit: with a returned original, the report and that part are labelled
 * Content-Transfer-Encoding: 8bit (a label that allows 8-bit data, true also of 7-bit
 * data), since a message spooled as BODY=7BIT may hold 8-bit bytes all the same;
 * dsn_result.eightbit says whether any 8-bit byte was written, so the bounce is queued
 * BODY=8BITMIME exactly when it needs to be.  An SMTPUTF8 original makes an SMTPUTF8
 * DSN (RFC 6533 types, UTF-8 addresses kept, "utf-8" address type in Final-Recipient
 * for a non-ASCII address, text part charset=utf-8); otherwise the DSN is ASCII in
 * every part but the returned original.
 *
 * The returned original is copied with its line ends made CRLF (a bare LF or lone CR
 * becomes CRLF), NUL bytes as '?', and a line longer than DSN_LINE_MAX broken (within
 * its header by a fold, CRLF SP; in the body by CRLF): the DSN must be a well-formed
 * message whatever was spooled.  The MIME boundary holds 128 random bits, so the
 * returned content cannot close the report's parts.
 *
 * Who gets a DSN (dsn_should_notify()): never the null sender (a bounce is never
 * bounced, RFC 5321 section 4.5.5 / RFC 3461 section 6.1), never a recipient with
 * NOTIFY=NEVER; with NOTIFY, exactly the listed events; without NOTIFY, failure and
 * delay (RFC 3461 sections 4.1, 5.2.5, 5.2.6), never success (5.2.3 (c)).  Mail refused
 * during the SMTP dialogue is never queued, so never bounced: the client was told.
 * dsn_write() itself applies the same rule (RFC 3461 section 5.2.8: no information about
 * recipients that did not ask for it) and refuses a null sender. */
#ifndef POSTERN_DSN_H
#define POSTERN_DSN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "spool/envelope.h"

/* RFC 3464 section 2.3.3. */
enum dsn_action {
	DSN_FAILED,
	DSN_DELAYED,
	DSN_DELIVERED,
	DSN_RELAYED,
	DSN_EXPANDED,
};

/* One recipient to report.  Strings may be NULL (the field is left out; a NULL or
 * invalid status gets the action's generic one); times are Unix seconds, 0 = leave out. */
struct dsn_rcpt {
	size_t idx;                /* index into env->rcpts: address and ORCPT come from there */
	enum dsn_action action;
	const char *status;        /* "5.1.1" (RFC 3463) */
	const char *remote_mta;    /* the remote host's name: "Remote-MTA: dns; NAME" */
	const char *diagnostic;    /* the reply as received ("550 5.1.1 No such user"), hostile;
	                              written as "Diagnostic-Code: smtp; TEXT" */
	size_t diagnostic_len;     /* its bytes (it may hold NULs); 0: strlen(diagnostic) */
	int64_t last_attempt;
	int64_t retry_until;       /* delayed only: Will-Retry-Until */
};

/* Callbacks.  read: up to size bytes of the original message into buf; the count, 0 at
 * its end, -1 on an error (dsn_write() then fails).  write: all len bytes, 0 or -1. */
typedef ssize_t dsn_read_fn(void *ctx, void *buf, size_t size);
typedef int dsn_write_fn(void *ctx, const void *buf, size_t len);

struct dsn_params {
	const struct envelope *env;     /* the original message's envelope */
	const struct dsn_rcpt *rcpts;   /* the recipients to report */
	size_t n_rcpts;
	const char *reporting_mta;      /* our host name (a DNS name): From:, Reporting-MTA */
	const char *message_id_left;    /* unique: the DSN's own queue id, say; "Message-ID:
	                                   <LEFT@reporting_mta>"; letters, digits, '.', '-' */
	int64_t now;                    /* the DSN's Date: */
	dsn_read_fn *read;              /* NULL: no third part */
	void *read_ctx;
	dsn_write_fn *write;
	void *write_ctx;
	const char *boundary;           /* NULL: random (tests may fix it; must be safe) */
};

enum dsn_returned {
	DSN_RETURNED_NONE,              /* no reader given */
	DSN_RETURNED_HEADERS,
	DSN_RETURNED_FULL,
};

struct dsn_result {
	size_t reported;                /* recipients written (after dsn_should_notify()) */
	bool any_failed;
	enum dsn_returned returned;
	bool eightbit;                  /* the DSN holds 8-bit bytes: queue it BODY=8BITMIME */
	bool smtputf8;                  /* UTF-8 in its header or global types: SMTPUTF8 */
	uint64_t bytes;                 /* bytes written */
};

/* Whether the sender of env asked for (or, by default, gets) a DSN about recipient idx
 * reaching the state action stands for: FAILED the FAILURE event, DELAYED the DELAY
 * event, DELIVERED, RELAYED and EXPANDED the SUCCESS event.  False for the null sender,
 * for an index out of range, and as described at the top. */
bool dsn_should_notify(const struct envelope *env, size_t idx, enum dsn_action action);

/* Write the DSN for the recipients of p->rcpts that dsn_should_notify() allows.  0 and
 * *result_r, or -1 with *error_r (a constant): null sender, no recipient left to report,
 * an index out of range, an invalid reporting MTA or message id, the reader or the
 * writer failed.  On -1 part of a DSN may have been written: abort it. */
int dsn_write(const struct dsn_params *p, struct dsn_result *result_r, const char **error_r);

/* The envelope of the DSN itself (RFC 3461 section 6.1): MAIL FROM:<> (the null sender,
 * so that it is never bounced in turn), the one recipient the original sender, of the
 * kind given (the caller's policy knows whether that domain is local), NOTIFY=NEVER, no
 * RET, ENVID or ORCPT; body and smtputf8 from the result of dsn_write().  -1 with
 * *error_r for a null original sender (no bounce to it, ever). */
int dsn_envelope(const struct envelope *orig, enum envelope_kind kind,
		 const struct dsn_result *res, struct envelope **env_r, const char **error_r);

/* The action's name as RFC 3464 spells it ("failed"), and its generic status. */
const char *dsn_action_name(enum dsn_action a);
const char *dsn_action_status(enum dsn_action a);
/* Whether s is an RFC 3463 status code: class 2, 4 or 5 "." 1-3 digits "." 1-3 digits. */
bool dsn_status_valid(const char *s);

#endif
