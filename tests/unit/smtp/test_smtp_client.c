/* smtp_client.c, the outbound client engine, against a scripted fake server: each case
 * is a table of steps (what the client must have written, byte for byte; what the
 * server answers; the caller's actions: a message, its body, TLS done, EOF, QUIT), run
 * twice: the server's bytes fed whole and one byte at a time.  Then the per-recipient
 * results and the connection's error are checked.  Paths: pipelining and not; 4xx/5xx
 * on MAIL, on one RCPT among several, on DATA, after the dot; a connection lost after
 * the dot (maybe_twice); 421 mid-group; EHLO refused -> HELO; STARTTLS then EHLO again,
 * STARTTLS missing or refused with require_tls, the STARTTLS response injection; AUTH
 * PLAIN and LOGIN after TLS, never before; SMTPUTF8 and SIZE refusals without sending;
 * DSN parameters only when offered; the body's CRLF normalisation and dot-stuffing in
 * any chunking; many messages on one connection without RSET, RSET after an aborted
 * one. */
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "smtp/smtp_client.h"
#include "unit.h"

struct step {
	char op;        /* C client wrote s; S server says s; M message; B body s; D body end;
	                 * T TLS ok; X TLS failed; E EOF; Q QUIT */
	const char *s;
};

#define EHLO_FULL "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n" \
	"250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
#define EHLO_CHUNKING "250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n" \
	"250 CHUNKING\r\n"
#define EHLO_CHUNKING_NOPIPE "250-mx.test\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n"
#define EHLO_PLAIN "250-mx.test\r\n250-SIZE\r\n250 8BITMIME\r\n"

static char acc[65536];
static size_t acc_len;

static void drain(struct smtp_client *c)
{
	const char *d;
	size_t n = smtp_client_output(c, &d);
	if (acc_len + n > sizeof(acc)) {
		fprintf(stderr, "output too long\n");
		exit(1);
	}
	memcpy(acc + acc_len, d, n);
	acc_len += n;
}

/* Run the script; msgs[i] is started by the i-th M step. */
static struct smtp_client *run(const char *name, const struct smtp_client_params *p,
			       const struct step *steps, struct smtp_client_msg **msgs,
			       bool bytewise)
{
	struct smtp_client *c = smtp_client_new(p);
	size_t mi = 0;

	acc_len = 0;
	for (const struct step *s = steps; s->op != 0; s++) {
		drain(c);
		switch (s->op) {
		case 'C':
			if (acc_len != strlen(s->s) || memcmp(acc, s->s, acc_len) != 0) {
				fprintf(stderr, "%s: step %zu: want \"%s\", got \"%.*s\"\n", name,
					(size_t)(s - steps), s->s, (int)acc_len, acc);
				CHECK(!"client bytes differ");
			} else {
				CHECK(true);
			}
			acc_len = 0;
			break;
		case 'S':
			CHECK(smtp_client_want(c) == SMTP_CLIENT_READ);
			if (bytewise) {
				for (size_t i = 0; s->s[i] != '\0'; i++)
					if (smtp_client_feed(c, s->s + i, 1) < 0)
						break;
			} else {
				(void)smtp_client_feed(c, s->s, strlen(s->s));
			}
			break;
		case 'M':
			CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
			CHECK(smtp_client_message(c, msgs[mi++]) == 0);
			break;
		case 'B':
			CHECK(smtp_client_want(c) == SMTP_CLIENT_BODY);
			smtp_client_body(c, s->s, strlen(s->s));
			break;
		case 'D':
			smtp_client_body_end(c);
			break;
		case 'T':
		case 'X':
			CHECK(smtp_client_want(c) == SMTP_CLIENT_TLS);
			smtp_client_tls_done(c, s->op == 'T');
			break;
		case 'E':
			smtp_client_eof(c, "connection lost");
			break;
		case 'Q':
			smtp_client_quit(c);
			break;
		}
	}
	drain(c);
	if (acc_len != 0)
		fprintf(stderr, "%s: unchecked output \"%.*s\"\n", name, (int)acc_len, acc);
	CHECK(acc_len == 0);
	return c;
}

static struct smtp_client_params plain_params = { .helo_name = "client.test" };

#define RC(a) { .addr = (a) }

static void rcpt_is(const struct smtp_client_rcpt *r, enum smtp_client_status st,
		    unsigned code, const char *enh)
{
	CHECK(r->status == st);
	CHECK(r->reply.code == code);
	CHECK_STR(r->reply.enh, enh);
}

/* ---- pipelining, two messages on one connection, DSN, dot-stuffing ---- */
static void test_pipelined(bool bw)
{
	struct smtp_client_rcpt r1[] = {
		{ .addr = "bob@mx.test", .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
		  .orcpt = "rfc822;bob+x@mx.test" },
		{ .addr = "carol@mx.test", .notify = SMTP_NOTIFY_NEVER },
	};
	struct smtp_client_msg m1 = { .from = "alice@a.test", .size = 42, .eightbit = true,
		.ret = SMTP_RET_HDRS, .envid = "Q1 x", .rcpts = r1, .nrcpts = 2 };
	struct smtp_client_rcpt r2[] = { RC("dave@mx.test") };
	struct smtp_client_msg m2 = { .from = "", .size = 5, .rcpts = r2, .nrcpts = 1 };
	struct smtp_client_msg *msgs[] = { &m1, &m2 };
	const struct step steps[] = {
		{ 'S', "220 mx.test ESMTP\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_FULL },
		{ 'M', NULL },
		/* one group: MAIL, every RCPT, DATA */
		{ 'C', "MAIL FROM:<alice@a.test> SIZE=42 BODY=8BITMIME RET=HDRS ENVID=Q1+20x\r\n"
		       "RCPT TO:<bob@mx.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@mx.test\r\n"
		       "RCPT TO:<carol@mx.test> NOTIFY=NEVER\r\n"
		       "DATA\r\n" },
		{ 'S', "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n" },
		{ 'B', "Subject: x\n\n.hidden\n..two\r\nmid.dot\r" },
		{ 'B', "\n." },
		{ 'D', NULL },
		{ 'C', "Subject: x\r\n\r\n..hidden\r\n...two\r\nmid.dot\r\n..\r\n.\r\n" },
		{ 'S', "250-2.0.0 Ok: queued\r\n250 2.0.0 as 12345\r\n" },
		/* the next message, no RSET in between */
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<> SIZE=5\r\nRCPT TO:<dave@mx.test>\r\nDATA\r\n" },
		{ 'S', "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n" },
		{ 'B', "hello" },
		{ 'D', NULL },
		{ 'C', "hello\r\n.\r\n" },
		{ 'S', "250 2.0.0 Ok\r\n" },
		{ 'Q', NULL },
		{ 'C', "QUIT\r\n" },
		{ 'S', "221 2.0.0 Bye\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("pipelined", &plain_params, steps, msgs, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(smtp_client_error(c) == NULL);
	CHECK(smtp_client_esmtp(c));
	CHECK_STR(smtp_client_greeting(c)->text, "mx.test ESMTP");
	rcpt_is(&r1[0], SMTP_CLIENT_OK, 250, "2.0.0");
	rcpt_is(&r1[1], SMTP_CLIENT_OK, 250, "2.0.0");
	CHECK_STR(r1[0].reply.text, "2.0.0 Ok: queued 2.0.0 as 12345");
	CHECK(m1.delivered == 2 && !m1.maybe_twice);
	rcpt_is(&r2[0], SMTP_CLIENT_OK, 250, "2.0.0");
	CHECK(m2.delivered == 1);
	smtp_client_free(&c);
	CHECK(c == NULL);
}

/* ---- no pipelining: one command at a time; one RCPT of three refused ---- */
static void test_sequential_rcpt_fail(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test"), RC("c@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .eightbit = true,
		.envid = "E", .ret = SMTP_RET_FULL, .rcpts = r, .nrcpts = 3 };
	struct smtp_client_msg *msgs[] = { &m };
	const struct step steps[] = {
		{ 'S', "220 old.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_PLAIN },
		{ 'M', NULL },
		/* no DSN offered: no RET/ENVID; 8BITMIME offered */
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3 BODY=8BITMIME\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'C', "RCPT TO:<a@mx.test>\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'C', "RCPT TO:<b@mx.test>\r\n" },
		{ 'S', "550 5.1.1 no such user\r\n" },
		{ 'C', "RCPT TO:<c@mx.test>\r\n" },
		{ 'S', "452 4.2.2 mailbox full\r\n" },
		{ 'C', "DATA\r\n" },
		{ 'S', "354 go\r\n" },
		{ 'B', "x\xe9y" },
		{ 'D', NULL },
		{ 'C', "x\xe9y\r\n.\r\n" },
		{ 'S', "250 queued\r\n" },
		{ 'Q', NULL },
		{ 'C', "QUIT\r\n" },
		{ 'E', NULL },
		{ 0, NULL },
	};
	struct smtp_client *c = run("sequential", &plain_params, steps, msgs, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(smtp_client_error(c) == NULL);
	/* no ENHANCEDSTATUSCODES announced: no enh kept */
	rcpt_is(&r[0], SMTP_CLIENT_OK, 250, "");
	rcpt_is(&r[1], SMTP_CLIENT_PERMFAIL, 550, "");
	CHECK_STR(r[1].reply.text, "5.1.1 no such user");
	rcpt_is(&r[2], SMTP_CLIENT_TEMPFAIL, 452, "");
	CHECK(m.delivered == 1);
	smtp_client_free(&c);
}

/* ---- MAIL refused: pipelined (the RCPT/DATA 503s are not the recipients' results)
 * and not; no RSET after a refused MAIL ---- */
static void test_mail_fail(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .rcpts = r, .nrcpts = 2 };
	struct smtp_client_rcpt r2[] = { RC("a@mx.test") };
	struct smtp_client_msg m2 = { .from = "t@a.test", .size = 3, .rcpts = r2, .nrcpts = 1 };
	struct smtp_client_msg *msgs[] = { &m, &m2 };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_FULL },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\nRCPT TO:<a@mx.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n" },
		{ 'S', "451 4.3.0 try later\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n" },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<t@a.test> SIZE=3\r\nRCPT TO:<a@mx.test>\r\nDATA\r\n" },
		{ 'S', "553 5.7.1 sender refused\r\n503 5.5.1 x\r\n503 5.5.1 x\r\n" },
		{ 'Q', NULL },
		{ 'C', "QUIT\r\n" },
		{ 'S', "221 bye\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("mail-fail", &plain_params, steps, msgs, bw);
	rcpt_is(&r[0], SMTP_CLIENT_TEMPFAIL, 451, "4.3.0");
	rcpt_is(&r[1], SMTP_CLIENT_TEMPFAIL, 451, "4.3.0");
	rcpt_is(&r2[0], SMTP_CLIENT_PERMFAIL, 553, "5.7.1");
	CHECK(m.delivered == 0 && m2.delivered == 0);
	CHECK(smtp_client_error(c) == NULL);
	smtp_client_free(&c);
}

/* ---- DATA refused after accepted recipients: their result is DATA's; RSET ---- */
static void test_data_fail(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .rcpts = r, .nrcpts = 2 };
	struct smtp_client_msg *msgs[] = { &m };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_FULL },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\nRCPT TO:<a@mx.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n" },
		{ 'S', "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients?\r\n" },
		{ 'C', "RSET\r\n" },
		{ 'S', "250 2.0.0 ok\r\n" },
		{ 'Q', NULL },
		{ 'C', "QUIT\r\n" },
		{ 'S', "221 bye\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("data-fail", &plain_params, steps, msgs, bw);
	rcpt_is(&r[0], SMTP_CLIENT_PERMFAIL, 554, "5.5.1");
	rcpt_is(&r[1], SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
	CHECK(smtp_client_error(c) == NULL);
	smtp_client_free(&c);
}

/* ---- the same refusals one command at a time: MAIL 5xx (nothing more, no RSET), then
 * DATA 4xx after an accepted RCPT (RSET) ---- */
static void test_sequential_mail_data_fail(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .rcpts = r, .nrcpts = 2 };
	struct smtp_client_rcpt r2[] = { RC("a@mx.test") };
	struct smtp_client_msg m2 = { .from = "s@a.test", .size = 3, .rcpts = r2, .nrcpts = 1 };
	struct smtp_client_msg *msgs[] = { &m, &m2 };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250 ENHANCEDSTATUSCODES\r\n" },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test>\r\n" },
		{ 'S', "550 5.7.1 sender blocked\r\n" },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test>\r\n" },
		{ 'S', "250 2.1.0 ok\r\n" },
		{ 'C', "RCPT TO:<a@mx.test>\r\n" },
		{ 'S', "250 2.1.5 ok\r\n" },
		{ 'C', "DATA\r\n" },
		{ 'S', "451 4.3.0 try later\r\n" },
		{ 'C', "RSET\r\n" },
		{ 'S', "250 2.0.0 ok\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("sequential-mail-data", &plain_params, steps, msgs, bw);
	rcpt_is(&r[0], SMTP_CLIENT_PERMFAIL, 550, "5.7.1");
	rcpt_is(&r[1], SMTP_CLIENT_PERMFAIL, 550, "5.7.1");
	rcpt_is(&r2[0], SMTP_CLIENT_TEMPFAIL, 451, "4.3.0");
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	smtp_client_free(&c);
}

/* ---- pipelined, every RCPT refused, and still a 354 (RFC 2920 section 3.1): an empty
 * message whose reply counts for nothing, then RSET ---- */
static void test_354_no_rcpt(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .rcpts = r, .nrcpts = 2 };
	struct smtp_client_msg *msgs[] = { &m };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_FULL },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\nRCPT TO:<a@mx.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n" },
		{ 'S', "250 2.1.0 ok\r\n550 5.1.1 unknown\r\n450 4.2.0 later\r\n354 go\r\n" },
		{ 'C', ".\r\n" },
		{ 'S', "250 2.0.0 queued as nothing\r\n" },
		{ 'C', "RSET\r\n" },
		{ 'S', "250 2.0.0 ok\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("354-no-rcpt", &plain_params, steps, msgs, bw);
	rcpt_is(&r[0], SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
	rcpt_is(&r[1], SMTP_CLIENT_TEMPFAIL, 450, "4.2.0");
	CHECK(m.delivered == 0);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	smtp_client_free(&c);
}

/* ---- every recipient refused, not pipelined: no DATA, RSET, next message ---- */
static void test_all_rcpts_refused(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .rcpts = r, .nrcpts = 2 };
	struct smtp_client_rcpt r2[] = { RC("c@mx.test") };
	struct smtp_client_msg m2 = { .from = "s@a.test", .size = 3, .rcpts = r2, .nrcpts = 1 };
	struct smtp_client_msg *msgs[] = { &m, &m2 };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_PLAIN },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'C', "RCPT TO:<a@mx.test>\r\n" },
		{ 'S', "450 greylisted\r\n" },
		{ 'C', "RCPT TO:<b@mx.test>\r\n" },
		{ 'S', "550 unknown\r\n" },
		{ 'C', "RSET\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'C', "RCPT TO:<c@mx.test>\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'C', "DATA\r\n" },
		{ 'S', "354 go\r\n" },
		{ 'D', NULL },
		{ 'C', ".\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("all-refused", &plain_params, steps, msgs, bw);
	rcpt_is(&r[0], SMTP_CLIENT_TEMPFAIL, 450, "");
	rcpt_is(&r[1], SMTP_CLIENT_PERMFAIL, 550, "");
	rcpt_is(&r2[0], SMTP_CLIENT_OK, 250, "");
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	smtp_client_free(&c);
}

/* ---- the final reply: 4xx and 5xx after the dot ---- */
static void test_dot_fail(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .rcpts = r, .nrcpts = 2 };
	struct smtp_client_rcpt r2[] = { RC("a@mx.test") };
	struct smtp_client_msg m2 = { .from = "s@a.test", .size = 3, .rcpts = r2, .nrcpts = 1 };
	struct smtp_client_msg *msgs[] = { &m, &m2 };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_FULL },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\nRCPT TO:<a@mx.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n" },
		{ 'B', "abc\r\n" },
		{ 'D', NULL },
		{ 'C', "abc\r\n.\r\n" },
		{ 'S', "554 5.7.1 spam\r\n" },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\nRCPT TO:<a@mx.test>\r\nDATA\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n354 go\r\n" },
		{ 'D', NULL },
		{ 'C', ".\r\n" },
		{ 'S', "451 4.3.0 local error\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("dot-fail", &plain_params, steps, msgs, bw);
	rcpt_is(&r[0], SMTP_CLIENT_PERMFAIL, 554, "5.7.1");
	rcpt_is(&r[1], SMTP_CLIENT_PERMFAIL, 554, "5.7.1");
	rcpt_is(&r2[0], SMTP_CLIENT_TEMPFAIL, 451, "4.3.0");
	CHECK(!m.maybe_twice && !m2.maybe_twice);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	smtp_client_free(&c);
}

/* ---- the connection lost after the dot: maybe delivered; before it: not ---- */
static void test_lost_after_dot(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .rcpts = r, .nrcpts = 2 };
	struct smtp_client_msg *msgs[] = { &m };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_FULL },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\nRCPT TO:<a@mx.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n" },
		{ 'B', "x" },
		{ 'D', NULL },
		{ 'C', "x\r\n.\r\n" },
		{ 'E', NULL },
		{ 0, NULL },
	};
	struct smtp_client *c = run("lost-after-dot", &plain_params, steps, msgs, bw);
	CHECK(m.maybe_twice);
	rcpt_is(&r[0], SMTP_CLIENT_TEMPFAIL, 0, "");
	rcpt_is(&r[1], SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	const struct smtp_client_error *e = smtp_client_error(c);
	CHECK(e != NULL && e->temporary);
	CHECK(e != NULL && strcmp(e->stage, "dot") == 0);
	smtp_client_free(&c);

	/* lost in the middle of the body: not delivered, no doubt */
	struct smtp_client_rcpt q[] = { RC("a@mx.test") };
	struct smtp_client_msg m2 = { .from = "s@a.test", .size = 3, .rcpts = q, .nrcpts = 1 };
	struct smtp_client_msg *msgs2[] = { &m2 };
	const struct step steps2[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_FULL },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\nRCPT TO:<a@mx.test>\r\nDATA\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n354 go\r\n" },
		{ 'B', "x" },
		{ 'C', "x" },
		{ 'E', NULL },
		{ 0, NULL },
	};
	c = run("lost-in-body", &plain_params, steps2, msgs2, bw);
	CHECK(!m2.maybe_twice);
	CHECK(q[0].status == SMTP_CLIENT_TEMPFAIL);
	CHECK(strcmp(smtp_client_error(c)->stage, "data") == 0);
	smtp_client_free(&c);
}

/* ---- 421 in the middle of a pipelined group ---- */
static void test_421(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .rcpts = r, .nrcpts = 2 };
	struct smtp_client_msg *msgs[] = { &m };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_FULL },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SIZE=3\r\nRCPT TO:<a@mx.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n" },
		{ 'S', "250 ok\r\n550 5.1.1 no\r\n421 4.7.0 too many errors\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("421", &plain_params, steps, msgs, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	rcpt_is(&r[0], SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
	rcpt_is(&r[1], SMTP_CLIENT_TEMPFAIL, 421, "4.7.0");
	CHECK(!m.maybe_twice);
	smtp_client_free(&c);
}

/* ---- the greeting refused; EHLO refused -> HELO; protocol errors ---- */
static void test_hello(bool bw)
{
	const struct step s1[] = { { 'S', "554 go away\r\n" }, { 0, NULL } };
	struct smtp_client *c = run("greeting-554", &plain_params, s1, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(!smtp_client_error(c)->temporary);
	CHECK(strcmp(smtp_client_error(c)->stage, "greeting") == 0);
	CHECK(smtp_client_error(c)->reply.code == 554);
	smtp_client_free(&c);

	struct smtp_client_rcpt r[] = { RC("a@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .eightbit = true, .rcpts = r,
		.nrcpts = 1 };
	struct smtp_client_msg *msgs[] = { &m };
	const struct step s2[] = {
		{ 'S', "220 ancient.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "502 what?\r\n" },
		{ 'C', "HELO client.test\r\n" },
		{ 'S', "250 ancient.test\r\n" },
		{ 'M', NULL },
		/* HELO: no extensions at all; the 8-bit body goes as it is */
		{ 'C', "MAIL FROM:<s@a.test>\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'C', "RCPT TO:<a@mx.test>\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'C', "DATA\r\n" },
		{ 'S', "354 go\r\n" },
		{ 'B', "\xc3\xa9\n" },
		{ 'D', NULL },
		{ 'C', "\xc3\xa9\r\n.\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 0, NULL },
	};
	c = run("helo", &plain_params, s2, msgs, bw);
	CHECK(!smtp_client_esmtp(c));
	CHECK(r[0].status == SMTP_CLIENT_OK);
	smtp_client_free(&c);

	/* garbage, a code that changes between lines, data nobody asked for */
	const struct step s3[] = { { 'S', "220 ok\r\n" }, { 'C', "EHLO client.test\r\n" },
				   { 'S', "250-a\r\n220 b\r\n" }, { 0, NULL } };
	c = run("bad-reply", &plain_params, s3, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(smtp_client_error(c)->temporary);
	CHECK(strstr(smtp_client_error(c)->reason, "code changes") != NULL);
	smtp_client_free(&c);
	const struct step s4[] = { { 'S', "220 ok\r\n" }, { 'C', "EHLO client.test\r\n" },
				   { 'S', "250 a\r\n250 unasked\r\n" }, { 0, NULL } };
	c = run("unasked", &plain_params, s4, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(strstr(smtp_client_error(c)->reason, "no reply was due") != NULL);
	smtp_client_free(&c);
	/* a 354 to MAIL: out of step, the connection ends, the message fails temporarily */
	struct smtp_client_rcpt q[] = { RC("a@mx.test") };
	struct smtp_client_msg mq = { .from = "s@a.test", .size = 3, .rcpts = q, .nrcpts = 1 };
	struct smtp_client_msg *msgs3[] = { &mq };
	const struct step s6[] = { { 'S', "220 ok\r\n" }, { 'C', "EHLO client.test\r\n" },
				   { 'S', "250 a\r\n" }, { 'M', NULL },
				   { 'C', "MAIL FROM:<s@a.test>\r\n" },
				   { 'S', "354 send it\r\n" }, { 0, NULL } };
	c = run("354-to-mail", &plain_params, s6, msgs3, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(strstr(smtp_client_error(c)->reason, "unexpected 3xx") != NULL);
	CHECK(strcmp(smtp_client_error(c)->stage, "mail") == 0);
	rcpt_is(&q[0], SMTP_CLIENT_TEMPFAIL, 354, "");
	smtp_client_free(&c);
	const struct step s5[] = { { 'S', "220 ok\r\n" }, { 'C', "EHLO client.test\r\n" },
				   { 'S', "250 a\0b\r\n" }, { 0, NULL } };
	c = run("nul", &plain_params, s5, NULL, bw);
	/* the NUL ends the C string: "250 a" alone is incomplete; feed it explicitly */
	CHECK(smtp_client_feed(c, "\0x\r\n", 4) == -1);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	smtp_client_free(&c);
}

/* ---- STARTTLS: used when offered, EHLO again after it; require_tls ---- */
static void test_starttls(bool bw)
{
	struct smtp_client_params p = { .helo_name = "client.test", .tls = true };
	struct smtp_client_params req = { .helo_name = "client.test", .tls = true,
		.require_tls = true };
	const struct step s1[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250-STARTTLS\r\n250 SIZE 10\r\n" },
		{ 'C', "STARTTLS\r\n" },
		{ 'S', "220 2.0.0 go\r\n" },
		{ 'T', NULL },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250 PIPELINING\r\n" },
		{ 'Q', NULL },
		{ 'C', "QUIT\r\n" },
		{ 'S', "221 bye\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("starttls", &req, s1, NULL, bw);
	CHECK(smtp_client_error(c) == NULL);
	/* the extensions are the ones after TLS only */
	CHECK(smtp_client_ehlo(c)->exts == SMTP_EHLO_PIPELINING);
	smtp_client_free(&c);

	/* not offered: opportunistic goes on in plaintext; require_tls stops, temporary */
	const struct step s2[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250 SIZE 10\r\n" },
		{ 0, NULL },
	};
	c = run("no-starttls", &p, s2, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	smtp_client_free(&c);
	c = run("no-starttls-required", &req, s2, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(smtp_client_error(c)->temporary);
	CHECK(strcmp(smtp_client_error(c)->stage, "starttls") == 0);
	smtp_client_free(&c);

	/* refused: the same; a failed handshake ends the connection */
	const struct step s3[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250 STARTTLS\r\n" },
		{ 'C', "STARTTLS\r\n" },
		{ 'S', "454 4.7.0 TLS not available\r\n" },
		{ 0, NULL },
	};
	c = run("starttls-454", &p, s3, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	smtp_client_free(&c);
	c = run("starttls-454-required", &req, s3, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(smtp_client_error(c)->temporary && smtp_client_error(c)->reply.code == 454);
	smtp_client_free(&c);
	const struct step s4[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250 STARTTLS\r\n" },
		{ 'C', "STARTTLS\r\n" },
		{ 'S', "220 go\r\n" },
		{ 'X', NULL },
		{ 0, NULL },
	};
	c = run("handshake-failed", &p, s4, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(smtp_client_error(c)->temporary);
	smtp_client_free(&c);

	/* RFC 3207 section 5 / CVE-2011-1575 family: a reply injected behind the 220 (it
	 * would be taken as the answer to the EHLO sent under TLS) ends the connection */
	const struct step s5[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250 STARTTLS\r\n" },
		{ 'C', "STARTTLS\r\n" },
		{ 'S', "220 go\r\n250-evil\r\n250 AUTH PLAIN\r\n" },
		{ 0, NULL },
	};
	c = run("starttls-injection", &p, s5, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(smtp_client_error(c) != NULL &&
	      strstr(smtp_client_error(c)->reason, "no reply was due") != NULL);
	smtp_client_free(&c);
}

/* ---- AUTH for a smarthost ---- */
static void test_auth(bool bw)
{
	struct smtp_client_params p = { .helo_name = "client.test", .tls = true,
		.auth_user = "ned", .auth_pass = "pw" };
	/* PLAIN: base64("\0ned\0pw") = AG5lZABwdw== */
	const struct step s1[] = {
		{ 'S', "220 relay.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-relay.test\r\n250-AUTH LOGIN\r\n250 STARTTLS\r\n" },
		{ 'C', "STARTTLS\r\n" },
		{ 'S', "220 go\r\n" },
		{ 'T', NULL },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-relay.test\r\n250 AUTH LOGIN PLAIN\r\n" },
		{ 'C', "AUTH PLAIN AG5lZABwdw==\r\n" },
		{ 'S', "235 2.7.0 ok\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("auth-plain", &p, s1, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	CHECK(smtp_client_authenticated(c));
	smtp_client_free(&c);

	/* LOGIN: "ned" = bmVk, "pw" = cHc= */
	const struct step s2[] = {
		{ 'S', "220 relay.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-relay.test\r\n250 STARTTLS\r\n" },
		{ 'C', "STARTTLS\r\n" },
		{ 'S', "220 go\r\n" },
		{ 'T', NULL },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-relay.test\r\n250 AUTH=LOGIN\r\n" },
		{ 'C', "AUTH LOGIN\r\n" },
		{ 'S', "334 VXNlcm5hbWU6\r\n" },
		{ 'C', "bmVk\r\n" },
		{ 'S', "334 UGFzc3dvcmQ6\r\n" },
		{ 'C', "cHc=\r\n" },
		{ 'S', "535 5.7.8 bad credentials\r\n" },
		{ 0, NULL },
	};
	c = run("auth-login", &p, s2, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(!smtp_client_authenticated(c));
	CHECK(strcmp(smtp_client_error(c)->stage, "auth") == 0);
	CHECK(smtp_client_error(c)->reply.code == 535 && !smtp_client_error(c)->temporary);
	smtp_client_free(&c);

	/* no STARTTLS: the password is never sent in clear */
	const struct step s3[] = {
		{ 'S', "220 relay.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-relay.test\r\n250 AUTH PLAIN LOGIN\r\n" },
		{ 0, NULL },
	};
	c = run("auth-no-tls", &p, s3, NULL, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_DONE);
	CHECK(strcmp(smtp_client_error(c)->reason, "AUTH needs TLS") == 0);
	smtp_client_free(&c);
}

/* ---- refusals decided before sending: SMTPUTF8, SIZE, bad addresses ---- */
static void test_refusals(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("j\xc3\xb6rg@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .smtputf8 = true, .rcpts = r,
		.nrcpts = 1 };
	struct smtp_client_rcpt r2[] = { RC("a@mx.test") };
	struct smtp_client_msg m2 = { .from = "s@a.test", .size = 11, .rcpts = r2, .nrcpts = 1 };
	struct smtp_client_rcpt r3[] = { RC("a@mx.test>\r\nRCPT TO:<evil@x.test") };
	struct smtp_client_msg m3 = { .from = "s@a.test", .size = 1, .rcpts = r3, .nrcpts = 1 };
	struct smtp_client_rcpt r4[] = { RC("\xc3\xb6@mx.test") };
	struct smtp_client_msg m4 = { .from = "s@a.test", .size = 1, .rcpts = r4, .nrcpts = 1 };
	struct smtp_client_msg *msgs[] = { &m, &m2, &m3, &m4 };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250 SIZE 10\r\n" },
		{ 'M', NULL }, { 'M', NULL }, { 'M', NULL }, { 'M', NULL },
		{ 'C', "" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("refusals", &plain_params, steps, msgs, bw);
	rcpt_is(&r[0], SMTP_CLIENT_PERMFAIL, 553, "5.6.7");
	rcpt_is(&r2[0], SMTP_CLIENT_PERMFAIL, 552, "5.3.4");
	rcpt_is(&r3[0], SMTP_CLIENT_PERMFAIL, 553, "5.1.3");
	rcpt_is(&r4[0], SMTP_CLIENT_PERMFAIL, 553, "5.1.3"); /* UTF-8 without smtputf8 */
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	smtp_client_free(&c);

	/* SMTPUTF8 offered: the parameter is sent */
	struct smtp_client_rcpt q[] = { RC("j\xc3\xb6rg@mx.test") };
	struct smtp_client_msg mq = { .from = "s@a.test", .size = 3, .smtputf8 = true, .rcpts = q,
		.nrcpts = 1 };
	struct smtp_client_msg *msgs2[] = { &mq };
	const struct step s2[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250 SMTPUTF8\r\n" },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SMTPUTF8\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'C', "RCPT TO:<j\xc3\xb6rg@mx.test>\r\n" },
		{ 'S', "250 ok\r\n" },
		{ 'C', "DATA\r\n" },
		{ 0, NULL },
	};
	c = run("smtputf8", &plain_params, s2, msgs2, bw);
	CHECK(smtp_client_want(c) == SMTP_CLIENT_READ);
	CHECK(smtp_client_timeout_s(c) == SMTP_CLIENT_TIMEOUT_DATA_S);
	smtp_client_free(&c);
}

/* ---- DSN parameters: NOTIFY combinations, ORCPT rfc822 (xtext), UTF-8 ORCPT as RFC
 * 6533 utf-8-addr-xtext, other types left out ---- */
static void test_dsn_params(bool bw)
{
	struct smtp_client_rcpt r[] = {
		{ .addr = "a@mx.test", .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY,
		  .orcpt = "rfc822;a=b+c@mx.test" },
		{ .addr = "b@mx.test", .notify = SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY,
		  .orcpt = "rfc822;j\xc3\xb6rg@mx.test" },
		{ .addr = "c@mx.test", .notify = SMTP_NOTIFY_DELAY,
		  .orcpt = "utf-8;x\\y z@mx.test" },
		{ .addr = "d@mx.test", .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
		  SMTP_NOTIFY_DELAY, .orcpt = "x400;whatever" },
		{ .addr = "e@mx.test", .orcpt = "rfc822;\xf0\x9f\x98\x80@mx.test" },
	};
	struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .smtputf8 = true,
		.ret = SMTP_RET_FULL, .envid = "a+b=c", .rcpts = r, .nrcpts = 5 };
	struct smtp_client_msg *msgs[] = { &m };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', "250-mx.test\r\n250-DSN\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n" },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test> SMTPUTF8 RET=FULL ENVID=a+2Bb+3Dc\r\n"
		       "RCPT TO:<a@mx.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+3Db+2Bc@mx.test\r\n"
		       "RCPT TO:<b@mx.test> NOTIFY=FAILURE,DELAY ORCPT=utf-8;j\\x{F6}rg@mx.test\r\n"
		       "RCPT TO:<c@mx.test> NOTIFY=DELAY ORCPT=utf-8;x\\x{5C}y\\x{20}z@mx.test\r\n"
		       "RCPT TO:<d@mx.test> NOTIFY=SUCCESS,FAILURE,DELAY\r\n"
		       "RCPT TO:<e@mx.test> ORCPT=utf-8;\\x{1F600}@mx.test\r\n"
		       "DATA\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("dsn-params", &plain_params, steps, msgs, bw);
	smtp_client_free(&c);
}

/* ---- CHUNKING (RFC 3030): BDAT chunks, not dot-stuffed, CRLF-normalised; pipelined
 * (the chunks' replies read after the last) and not (each 250 waited for); a refused
 * chunk fails the message and gets RSET; the connection lost after BDAT LAST ---- */
static void test_bdat(bool bw)
{
	struct smtp_client_rcpt r[] = { RC("a@mx.test"), RC("b@mx.test") };
	struct smtp_client_msg m = { .from = "s@a.test", .size = 9, .rcpts = r, .nrcpts = 2 };
	struct smtp_client_rcpt r2[] = { RC("a@mx.test") };
	struct smtp_client_msg m2 = { .from = "s@a.test", .size = 3, .rcpts = r2, .nrcpts = 1 };
	struct smtp_client_msg *msgs[] = { &m, &m2 };
	const struct step steps[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_CHUNKING },
		{ 'M', NULL },
		/* no DATA in the group */
		{ 'C', "MAIL FROM:<s@a.test>\r\nRCPT TO:<a@mx.test>\r\nRCPT TO:<b@mx.test>\r\n" },
		{ 'S', "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no\r\n" },
		{ 'B', ".a\n" },
		{ 'B', "" },
		{ 'B', "b\r" },
		{ 'D', NULL },
		/* the CR of "b\r" became CRLF only at the end: it was pending */
		{ 'C', "BDAT 4\r\n.a\r\nBDAT 1\r\nbBDAT 2 LAST\r\n\r\n" },
		{ 'S', "250 2.0.0 chunk\r\n250 2.0.0 chunk\r\n250 2.0.0 queued\r\n" },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test>\r\nRCPT TO:<a@mx.test>\r\n" },
		{ 'S', "250 2.1.0 ok\r\n250 2.1.5 ok\r\n" },
		{ 'B', "xyz" },
		{ 'D', NULL },
		{ 'C', "BDAT 3\r\nxyzBDAT 2 LAST\r\n\r\n" },
		{ 'S', "452 4.3.1 disk full\r\n503 5.5.1 no transaction\r\n" },
		{ 'C', "RSET\r\n" },
		{ 'S', "250 2.0.0 ok\r\n" },
		{ 0, NULL },
	};
	struct smtp_client *c = run("bdat-pipelined", &plain_params, steps, msgs, bw);
	rcpt_is(&r[0], SMTP_CLIENT_OK, 250, "2.0.0");
	rcpt_is(&r[1], SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
	CHECK_STR(r[0].reply.text, "2.0.0 queued");
	rcpt_is(&r2[0], SMTP_CLIENT_TEMPFAIL, 452, "4.3.1");
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	smtp_client_free(&c);

	/* one at a time */
	struct smtp_client_rcpt q[] = { RC("a@mx.test") };
	struct smtp_client_msg mq = { .from = "s@a.test", .size = 3, .rcpts = q, .nrcpts = 1 };
	struct smtp_client_rcpt q2[] = { RC("a@mx.test") };
	struct smtp_client_msg mq2 = { .from = "s@a.test", .size = 3, .rcpts = q2, .nrcpts = 1 };
	struct smtp_client_msg *msgs2[] = { &mq, &mq2 };
	const struct step s2[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_CHUNKING_NOPIPE },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test>\r\n" },
		{ 'S', "250 2.1.0 ok\r\n" },
		{ 'C', "RCPT TO:<a@mx.test>\r\n" },
		{ 'S', "250 2.1.5 ok\r\n" },
		{ 'B', "one\n" },
		{ 'C', "BDAT 5\r\none\r\n" },
		{ 'S', "250 2.0.0 got 5\r\n" },
		{ 'B', "two\n" },
		{ 'C', "BDAT 5\r\ntwo\r\n" },
		{ 'S', "250 2.0.0 got\r\n" },
		{ 'D', NULL },
		{ 'C', "BDAT 0 LAST\r\n" },
		{ 'S', "250 2.0.0 queued\r\n" },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test>\r\n" },
		{ 'S', "250 2.1.0 ok\r\n" },
		{ 'C', "RCPT TO:<a@mx.test>\r\n" },
		{ 'S', "250 2.1.5 ok\r\n" },
		{ 'B', "x\n" },
		{ 'C', "BDAT 3\r\nx\r\n" },
		{ 'S', "554 5.6.0 bad content\r\n" },
		{ 'C', "RSET\r\n" },
		{ 'S', "250 2.0.0 ok\r\n" },
		{ 0, NULL },
	};
	c = run("bdat-sequential", &plain_params, s2, msgs2, bw);
	rcpt_is(&q[0], SMTP_CLIENT_OK, 250, "2.0.0");
	CHECK_STR(q[0].reply.text, "2.0.0 queued");
	rcpt_is(&q2[0], SMTP_CLIENT_PERMFAIL, 554, "5.6.0");
	CHECK(smtp_client_want(c) == SMTP_CLIENT_IDLE);
	smtp_client_free(&c);

	/* lost after BDAT LAST: maybe delivered */
	struct smtp_client_rcpt l[] = { RC("a@mx.test") };
	struct smtp_client_msg ml = { .from = "s@a.test", .size = 3, .rcpts = l, .nrcpts = 1 };
	struct smtp_client_msg *msgs3[] = { &ml };
	const struct step s3[] = {
		{ 'S', "220 mx.test\r\n" },
		{ 'C', "EHLO client.test\r\n" },
		{ 'S', EHLO_CHUNKING },
		{ 'M', NULL },
		{ 'C', "MAIL FROM:<s@a.test>\r\nRCPT TO:<a@mx.test>\r\n" },
		{ 'S', "250 ok\r\n250 ok\r\n" },
		{ 'B', "x\r\n" },
		{ 'D', NULL },
		{ 'C', "BDAT 3\r\nx\r\nBDAT 0 LAST\r\n" },
		{ 'S', "250 2.0.0 chunk\r\n" },
		{ 'E', NULL },
		{ 0, NULL },
	};
	c = run("bdat-lost", &plain_params, s3, msgs3, bw);
	CHECK(ml.maybe_twice);
	CHECK(l[0].status == SMTP_CLIENT_TEMPFAIL);
	smtp_client_free(&c);
}

/* ---- the body encoder alone: any chunking gives the same bytes ---- */
static void test_body_chunking(void)
{
	static const char *const bodies[][2] = {
		{ "", ".\r\n" },
		{ "a", "a\r\n.\r\n" },
		{ ".", "..\r\n.\r\n" },
		{ "\n", "\r\n.\r\n" },
		{ "a\r\n.\r\n", "a\r\n..\r\n.\r\n" },
		{ "a\rb\r\r\n.x", "a\r\nb\r\n\r\n..x\r\n.\r\n" },
		{ "..\n.\n\n.", "...\r\n..\r\n\r\n..\r\n.\r\n" },
		{ "x.\r\n y.", "x.\r\n y.\r\n.\r\n" },
		{ "a\r", "a\r\n.\r\n" },
	};
	for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
		const char *in = bodies[b][0];
		size_t n = strlen(in);
		for (size_t split = 0; split <= n; split++) {
			struct smtp_client_rcpt r[] = { RC("a@mx.test") };
			struct smtp_client_msg m = { .from = "s@a.test", .size = 3, .rcpts = r,
				.nrcpts = 1 };
			struct smtp_client *c = smtp_client_new(&plain_params);
			const char *d;
			const char *srv = "220 x\r\n250 x\r\n";
			(void)smtp_client_feed(c, srv, strlen(srv));
			(void)smtp_client_message(c, &m);
			(void)smtp_client_feed(c, "250 ok\r\n", 8);
			(void)smtp_client_feed(c, "250 ok\r\n", 8);
			(void)smtp_client_output(c, &d);
			CHECK(smtp_client_feed(c, "354 go\r\n", 8) == 0);
			(void)smtp_client_output(c, &d);
			CHECK(smtp_client_want(c) == SMTP_CLIENT_BODY);
			/* two chunks, then byte by byte for the first split only */
			char got[64];
			size_t gl = 0, k;
			if (split == 0) {
				for (size_t i = 0; i < n; i++) {
					smtp_client_body(c, in + i, 1);
					k = smtp_client_output(c, &d);
					memcpy(got + gl, d, k);
					gl += k;
				}
			} else {
				smtp_client_body(c, in, split);
				k = smtp_client_output(c, &d);
				memcpy(got + gl, d, k);
				gl += k;
				smtp_client_body(c, in + split, n - split);
				k = smtp_client_output(c, &d);
				memcpy(got + gl, d, k);
				gl += k;
			}
			smtp_client_body_end(c);
			k = smtp_client_output(c, &d);
			memcpy(got + gl, d, k);
			gl += k;
			got[gl] = '\0';
			CHECK_STR(got, bodies[b][1]);
			smtp_client_free(&c);
		}
	}
}

int main(void)
{
	for (int bw = 0; bw <= 1; bw++) {
		test_pipelined(bw);
		test_sequential_rcpt_fail(bw);
		test_mail_fail(bw);
		test_data_fail(bw);
		test_all_rcpts_refused(bw);
		test_354_no_rcpt(bw);
		test_sequential_mail_data_fail(bw);
		test_dsn_params(bw);
		test_bdat(bw);
		test_dot_fail(bw);
		test_lost_after_dot(bw);
		test_421(bw);
		test_hello(bw);
		test_starttls(bw);
		test_auth(bw);
		test_refusals(bw);
	}
	test_body_chunking();
	return unit_done("test_smtp_client");
}
