/* smtp-submit's pre-login dialogue (smtp_prelogin_run()) over a socketpair, in a forked
 * child, with the stub monitor (tests/stub/stub_monitor.h): the greeting, EHLO/HELO in
 * each mode, every pre-login command, STARTTLS (pipelined plaintext dropped, HELO
 * forgotten), AUTH PLAIN and LOGIN (initial response, continuation, cancel, bad base64,
 * each login result, the failure limit), MAIL before AUTH, the port-25 hand-over (the
 * MAIL line to the session, the pipelined bytes left for the relay), the pre-greet drop,
 * max_errors, NUL and binary garbage, line limits, the idle timeout and the deadline. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "base/config.h"
#include "base/conn.h"
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "peer.h"
#include "smtp.h"
#include "stub_monitor.h"
#include "unit.h"

static char tmpdir[256];
static struct config cfg;
static SSL_CTX *test_ctx;

struct pre_arg {
	enum submit_mode mode;
	bool plaintext_ok;
	bool tls_ctx;
	unsigned timeout_s;        /* 0: 10 */
	unsigned deadline_ms;      /* 0: none */
};

static const struct smtp_login_ops stub_ops = {
	stub_monitor_login, stub_monitor_starttls, stub_monitor_start_session,
};

/* The worker's part; after a hand-over the child writes "[session]" and what is left
 * buffered for the relay (the bytes pipelined behind the last command it read). */
static int pre_child(int fd, void *varg)
{
	const struct pre_arg *a = varg;
	struct conn c;
	struct server_worker w = { 0 };

	conn_init(&c, fd, fd, SMTP_MAX_AUTH_LINE, a->timeout_s != 0 ? a->timeout_s : 10);
	if (a->deadline_ms != 0)
		conn_set_deadline(&c, util_now_ms() + a->deadline_ms);
	w.c = &c;
	w.cfg = &cfg;
	w.ssl_ctx = a->tls_ctx ? test_ctx : NULL;
	w.plaintext_ok = a->plaintext_ok;
	w.data_fd = -1;
	snprintf(w.rip_str, sizeof(w.rip_str), "192.0.2.7");
	int r = smtp_prelogin_run(&w, a->mode, &stub_ops);
	if (r == 1) {
		const char *data;
		size_t n = conn_pending(&c, &data);
		conn_printf(&c, "[session user=%s]", w.user);
		conn_write(&c, data, n);
	}
	conn_flush(&c);
	conn_deinit(&c);
	return r;
}

#define NAME "mx.test.example"
#define GREET "220 " NAME " ESMTP postern\r\n"
#define EHLO_HEAD "250-" NAME "\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
#define EHLO_TAIL "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n" \
		  "250 CHUNKING\r\n"
#define EHLO_PLAIN EHLO_HEAD EHLO_TAIL
#define EHLO_TLS EHLO_HEAD "250-STARTTLS\r\n" EHLO_TAIL
#define EHLO_AUTH EHLO_HEAD "250-AUTH PLAIN LOGIN\r\n" EHLO_TAIL
#define EHLO_TLS_AUTH EHLO_HEAD "250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n" EHLO_TAIL
#define BYE "221 2.0.0 Bye\r\n"
#define OK "250 2.0.0 Ok\r\n"

/* Each case starts with an empty log, so that what it checks there is its own. */
static void log_reset(void)
{
	if (truncate(peer_logpath, 0) == -1)
		(void)0;   /* not there yet */
}

static void pre_case(struct pre_arg a, const char *in, const char *want, int want_st)
{
	struct peer p;

	log_reset();
	int st = peer_transcript(&p, pre_child, &a, in);
	CHECK(st == want_st);
	CHECK_STR(p.out, want);
	peer_free(&p);
	/* the same bytes one at a time give the same answers; only where the dialogue reads
	 * all of them (it ends with the input's last line, QUIT): a child that closes
	 * earlier would make the byte-at-a-time writer fail */
	size_t il = strlen(in), wl = strlen(want);
	if (il < 6 || strcmp(in + il - 6, "QUIT\r\n") != 0 || wl < strlen(BYE) ||
	    strcmp(want + wl - strlen(BYE), BYE) != 0)
		return;
	st = peer_transcript_bytewise(&p, pre_child, &a, in);
	CHECK(st == want_st);
	CHECK_STR(p.out, want);
	peer_free(&p);
}

static bool log_has(const char *s)
{
	char *log = peer_read_file(peer_logpath);
	bool r = strstr(log, s) != NULL;
	free(log);
	return r;
}

static const struct pre_arg MX = { SUBMIT_MODE_MX, false, false, 0, 0 };
static const struct pre_arg MX_TLS = { SUBMIT_MODE_MX, false, true, 0, 0 };
static const struct pre_arg SUB = { SUBMIT_MODE_SUBMISSION, false, true, 0, 0 };
static const struct pre_arg SUB_TRUSTED = { SUBMIT_MODE_SUBMISSION, true, false, 0, 0 };
static const struct pre_arg SMTPS = { SUBMIT_MODE_SMTPS, true, false, 0, 0 };

static void test_commands(void)
{
	/* port 25: every command before MAIL; AUTH never */
	pre_case(MX, "EHLO client.example\r\nHELO client.example\r\nNOOP\r\nNOOP hello\r\n"
		 "RSET\r\nHELP\r\nHELP MAIL\r\nVRFY root\r\nEXPN staff\r\n"
		 "AUTH PLAIN AG5lZABzZWNyZXQ=\r\nRCPT TO:<a@b.example>\r\nDATA\r\nBDAT 10 LAST\r\n"
		 "STARTTLS\r\nquit\r\nNOOP\r\n",
		 GREET EHLO_PLAIN "250 " NAME "\r\n" OK OK OK
		 "214 2.0.0 postern smtp-submit: see RFC 5321\r\n"
		 "214 2.0.0 postern smtp-submit: see RFC 5321\r\n"
		 "252 2.5.2 Cannot verify the user, but will accept the message\r\n"
		 "502 5.5.1 Error: EXPN is not available\r\n"
		 "503 5.5.1 Error: authentication not enabled\r\n"
		 "503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need MAIL command\r\n"
		 "503 5.5.1 Error: need MAIL command\r\n454 4.7.0 TLS not available\r\n" BYE, 0);
	CHECK(log_has("disconnect: reason=quit, auth_failures=0, errors=5, rip=192.0.2.7"));
	/* syntax errors, the parser's words */
	pre_case(MX, "EHLO\r\nHELO a b\r\nVRFY\r\nXYZZY\r\nNOOP\tx\r\nQUIT now\r\nQUIT\r\n",
		 GREET "501 5.5.4 Syntax: EHLO hostname\r\n501 5.5.4 Syntax: EHLO hostname\r\n"
		 "501 5.5.4 Argument required\r\n500 5.5.2 Command not recognized\r\n"
		 "500 5.5.2 Control characters not allowed\r\n"
		 "501 5.5.4 No parameters allowed\r\n" BYE, 0);
	/* a HELO name longer than a domain may be */
	{
		char in[600] = "EHLO ";
		memset(in + 5, 'a', 256);
		memcpy(in + 261, "\r\nQUIT\r\n", 9);
		pre_case(MX, in, GREET "501 5.5.4 Syntax: EHLO hostname (at most 255 "
			 "characters)\r\n" BYE, 0);
	}
	/* EHLO on each port: STARTTLS while it can be done, AUTH only where a password may
	 * travel, never on 25 */
	pre_case(MX_TLS, "EHLO a\r\nQUIT\r\n", GREET EHLO_TLS BYE, 0);
	pre_case(SUB, "EHLO a\r\nQUIT\r\n", GREET EHLO_TLS BYE, 0);
	pre_case(SUB_TRUSTED, "EHLO a\r\nQUIT\r\n", GREET EHLO_AUTH BYE, 0);
	struct pre_arg sub_both = SUB;
	sub_both.plaintext_ok = true;
	pre_case(sub_both, "EHLO a\r\nQUIT\r\n", GREET EHLO_TLS_AUTH BYE, 0);
	/* EOF: no reply, logged */
	pre_case(MX, "NOOP\r\n", GREET OK, 0);
	CHECK(log_has("disconnect: reason=eof"));
}

static void test_submission_before_auth(void)
{
	/* 587 from an untrusted address: no password before TLS, no mail before AUTH */
	pre_case(SUB, "EHLO a\r\nAUTH PLAIN AG5lZABzZWNyZXQ=\r\nAUTH LOGIN\r\n"
		 "MAIL FROM:<ned@example.org>\r\nMAIL FROM:<bad\r\nRCPT TO:<a@b>\r\nQUIT\r\n",
		 GREET EHLO_TLS
		 "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
		 "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
		 "530 5.7.0 Authentication required\r\n530 5.7.0 Authentication required\r\n"
		 "503 5.5.1 Error: need MAIL command\r\n" BYE, 0);
	CHECK(!log_has("stub-login"));   /* no password went anywhere */
	/* AUTH before EHLO, after HELO; an unknown mechanism */
	pre_case(SUB_TRUSTED, "AUTH PLAIN AG5lZABzZWNyZXQ=\r\nHELO a\r\n"
		 "AUTH PLAIN AG5lZABzZWNyZXQ=\r\nEHLO a\r\nAUTH CRAM-MD5\r\nQUIT\r\n",
		 GREET "503 5.5.1 Error: send EHLO first\r\n250 " NAME "\r\n"
		 "503 5.5.1 Error: send EHLO first\r\n" EHLO_AUTH
		 "504 5.5.4 Unrecognized authentication type\r\n" BYE, 0);
}

static void test_auth(void)
{
	/* PLAIN with an initial response: 235, and what was pipelined behind it is the
	 * session's */
	pre_case(SUB_TRUSTED, "EHLO a\r\nAUTH PLAIN AG5lZABzZWNyZXQ=\r\nMAIL FROM:<ned@a>\r\n",
		 GREET EHLO_AUTH "235 2.7.0 Authentication successful\r\n"
		 "[session user=ned]MAIL FROM:<ned@a>\r\n", 1);
	CHECK(log_has("stub-login: method=PLAIN, user=ned, pass=secret"));
	/* PLAIN without one: "334 " and the response */
	pre_case(SMTPS, "EHLO a\r\nAUTH PLAIN\r\nAG5lZABzZWNyZXQ=\r\n",
		 GREET EHLO_AUTH "334 \r\n235 2.7.0 Authentication successful\r\n"
		 "[session user=ned]", 1);
	/* LOGIN, with and without the user name as initial response */
	pre_case(SMTPS, "EHLO a\r\nAUTH LOGIN\r\nbmVk\r\nc2VjcmV0\r\n",
		 GREET EHLO_AUTH "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
		 "235 2.7.0 Authentication successful\r\n[session user=ned]", 1);
	pre_case(SMTPS, "EHLO a\r\nauth login bmVk\r\nc2VjcmV0\r\n",
		 GREET EHLO_AUTH "334 UGFzc3dvcmQ6\r\n"
		 "235 2.7.0 Authentication successful\r\n[session user=ned]", 1);
	/* cancel, bad base64, an empty initial response, a wrong password, tempfail */
	pre_case(SMTPS, "EHLO a\r\nAUTH PLAIN\r\n*\r\nAUTH LOGIN bmVk\r\n*\r\n"
		 "AUTH PLAIN AG5lZABzZWNyZXQ\r\nAUTH PLAIN\r\n!!!!\r\nAUTH PLAIN =\r\n"
		 "AUTH PLAIN AG5lZAB3cm9uZw==\r\nAUTH PLAIN AG5lZAB0ZW1wZmFpbA==\r\nQUIT\r\n",
		 GREET EHLO_AUTH "334 \r\n501 5.7.0 Authentication cancelled\r\n"
		 "334 UGFzc3dvcmQ6\r\n501 5.7.0 Authentication cancelled\r\n"
		 "501 5.5.2 Invalid base64 data\r\n"
		 "334 \r\n501 5.5.2 Invalid base64 data\r\n"
		 "535 5.7.8 Authentication credentials invalid\r\n"
		 "535 5.7.8 Authentication credentials invalid\r\n"
		 "454 4.7.0 Temporary authentication failure, try again later\r\n" BYE, 0);
	CHECK(log_has("stub-login: method=PLAIN, user=ned, pass=wrong"));
	CHECK(log_has("stub-login: method=PLAIN, user=ned, pass=tempfail"));
	/* three refused logins end the connection */
	pre_case(SMTPS, "EHLO a\r\nAUTH PLAIN AG5lZAB3cm9uZw==\r\nAUTH PLAIN AG5lZAB3cm9uZw==\r\n"
		 "AUTH PLAIN AG5lZAB3cm9uZw==\r\nAUTH PLAIN AG5lZABzZWNyZXQ=\r\n",
		 GREET EHLO_AUTH "535 5.7.8 Authentication credentials invalid\r\n"
		 "535 5.7.8 Authentication credentials invalid\r\n"
		 "535 5.7.8 Authentication credentials invalid\r\n"
		 "421 4.7.0 " NAME " Error: too many failed authentications\r\n", 0);
	CHECK(log_has("disconnect: reason=auth-failures, auth_failures=3"));
	/* the throttle: not "wrong password", and the connection ends */
	pre_case(SMTPS, "EHLO a\r\nAUTH PLAIN AG5lZAB0aHJvdHRsZWQ=\r\nAUTH PLAIN AG5lZABzZWNyZXQ=\r\n",
		 GREET EHLO_AUTH "454 4.7.0 Too many failed logins, try again later\r\n", 0);
	CHECK(log_has("disconnect: reason=throttled"));
	/* a user name with a byte outside username_chars: the monitor gets no password */
	pre_case(SMTPS, "EHLO a\r\nAUTH PLAIN AC4uL3gAc2VjcmV0\r\nQUIT\r\n",
		 GREET EHLO_AUTH "535 5.7.8 Authentication credentials invalid\r\n" BYE, 0);
	CHECK(log_has("stub-login: method=PLAIN, user=../x, pass=\n"));
	CHECK(!log_has("user=../x, pass=secret"));
	/* EOF in the middle of AUTH */
	pre_case(SMTPS, "EHLO a\r\nAUTH LOGIN\r\n", GREET EHLO_AUTH "334 VXNlcm5hbWU6\r\n", 0);
	CHECK(log_has("disconnect: reason=eof"));
	/* a response line longer than SASL allows; one past the line reader's limit */
	{
		static char in[2 * SMTP_MAX_AUTH_LINE];
		size_t n = 0;
		memcpy(in, "EHLO a\r\nAUTH PLAIN\r\n", 20);
		n = 20;
		memset(in + n, 'A', SMTP_MAX_AUTH_LINE);
		n += SMTP_MAX_AUTH_LINE;
		memcpy(in + n, "\r\nQUIT\r\n", 9);
		pre_case(SMTPS, in, GREET EHLO_AUTH "334 \r\n"
			 "500 5.5.6 Authentication exchange line is too long\r\n", 0);
		CHECK(log_has("disconnect: reason=line-too-long"));
	}
}

static void test_starttls(void)
{
	/* commands pipelined behind STARTTLS are dropped, the HELO is forgotten, and the
	 * EHLO after it offers AUTH and no second STARTTLS */
	struct peer p;
	struct pre_arg a = SUB;
	log_reset();
	peer_start(&p, pre_child, &a);
	peer_send(&p, "EHLO a\r\nSTARTTLS\r\nEHLO evil\r\nAUTH PLAIN AG5lZABzZWNyZXQ=\r\n");
	CHECK(peer_read(&p, "220 2.0.0 Ready to start TLS\r\n") == 0);
	peer_send(&p, "MAIL FROM:<a@b>\r\nAUTH PLAIN AG5lZABzZWNyZXQ=\r\nEHLO a\r\nSTARTTLS\r\n"
		  "AUTH PLAIN AG5lZABzZWNyZXQ=\r\n");
	CHECK(peer_read(&p, "[session") == 0);
	CHECK(peer_finish(&p) == 1);
	CHECK_STR(p.out, GREET EHLO_TLS "220 2.0.0 Ready to start TLS\r\n"
		  "530 5.7.0 Authentication required\r\n"
		  "503 5.5.1 Error: send EHLO first\r\n" EHLO_AUTH
		  "503 5.5.1 Error: TLS already active\r\n"
		  "235 2.7.0 Authentication successful\r\n[session user=ned]");
	peer_free(&p);
	/* one login only: the one after TLS */
	char *log = peer_read_file(peer_logpath);
	char *first = strstr(log, "stub-login:");
	CHECK(first != NULL && strstr(first + 1, "stub-login:") == NULL);
	free(log);
	/* port 25: the same; the MAIL injected before TLS never reaches the session */
	a = MX_TLS;
	log_reset();
	peer_start(&p, pre_child, &a);
	peer_send(&p, "EHLO a\r\nSTARTTLS\r\nEHLO evil\r\nMAIL FROM:<evil@evil>\r\n");
	CHECK(peer_read(&p, "220 2.0.0 Ready to start TLS\r\n") == 0);
	peer_send(&p, "MAIL FROM:<a@b>\r\nEHLO good\r\nMAIL FROM:<a@b>\r\n");
	CHECK(peer_read(&p, "[session") == 0);
	CHECK(peer_finish(&p) == 1);
	CHECK_STR(p.out, GREET EHLO_TLS "220 2.0.0 Ready to start TLS\r\n"
		  "503 5.5.1 Error: send HELO/EHLO first\r\n" EHLO_PLAIN "[session user=]");
	peer_free(&p);
	CHECK(log_has("stub-start-session: helo=good, esmtp=1, line=MAIL FROM:<a@b>"));
	CHECK(!log_has("evil"));
}

static void test_mx_handover(void)
{
	/* the first MAIL after EHLO goes to the session with what follows it; nothing is
	 * answered to it here */
	pre_case(MX, "EHLO client.example\r\nNOOP\r\nMAIL FROM:<a@b.example> SIZE=100\r\n"
		 "RCPT TO:<c@d.example>\r\nDATA\r\n",
		 GREET EHLO_PLAIN OK "[session user=]RCPT TO:<c@d.example>\r\nDATA\r\n", 1);
	CHECK(log_has("stub-start-session: helo=client.example, esmtp=1, "
		      "line=MAIL FROM:<a@b.example> SIZE=100\n"));
	/* HELO: no extensions, so no ESMTP parameters; esmtp=0 */
	pre_case(MX, "HELO client.example\r\nMAIL FROM:<a@b.example> SIZE=100\r\n"
		 "MAIL FROM:<a@b.example>\r\n",
		 GREET "250 " NAME "\r\n555 5.5.4 Unsupported or unknown parameter\r\n[session user=]", 1);
	CHECK(log_has("stub-start-session: helo=client.example, esmtp=0, "
		      "line=MAIL FROM:<a@b.example>\n"));
	/* MAIL before HELO/EHLO; a bad path; the session that cannot start */
	pre_case(MX, "MAIL FROM:<a@b.example>\r\nEHLO tempfail.example\r\nMAIL FROM:<a b>\r\n"
		 "MAIL FROM:<a@b.example>\r\nNOOP\r\n",
		 GREET "503 5.5.1 Error: send HELO/EHLO first\r\n" EHLO_PLAIN
		 "501 5.1.7 Bad sender address syntax\r\n"
		 "421 4.3.0 " NAME " Error: temporary failure, try again later\r\n", 0);
	CHECK(log_has("disconnect: reason=session-failed"));
}

static void test_pregreet(void)
{
	unsigned saved = cfg.greet_pause_ms;

	cfg.greet_pause_ms = 300;
	/* a client that talks first: 554, dropped, logged */
	struct peer p;
	struct pre_arg a = MX;
	log_reset();
	int st = peer_transcript(&p, pre_child, &a, "EHLO bot.example\r\n");
	CHECK(st == 0);
	CHECK_STR(p.out, "554 5.5.1 Protocol error: talked before the greeting\r\n");
	peer_free(&p);
	CHECK(log_has("pregreet: rip=192.0.2.7"));
	CHECK(log_has("disconnect: reason=pregreet"));
	/* one that waits gets the greeting and its answers */
	peer_start(&p, pre_child, &a);
	CHECK(peer_read(&p, GREET) == 0);
	peer_send(&p, "QUIT\r\n");
	CHECK(peer_read(&p, BYE) == 0);
	CHECK(peer_finish(&p) == 0);
	CHECK_STR(p.out, GREET BYE);
	peer_free(&p);
	/* only port 25 pauses: 587 greets at once, talkative client or not */
	a = SUB;
	st = peer_transcript(&p, pre_child, &a, "QUIT\r\n");
	CHECK(st == 0);
	CHECK_STR(p.out, GREET BYE);
	peer_free(&p);
	cfg.greet_pause_ms = saved;
}

static void test_limits(void)
{
	/* max_errors (10): the 10th error is answered, then 421 */
	{
		char in[1024] = "", want[2048] = GREET;
		for (int i = 0; i < 10; i++) {
			peer_append(in, "XYZZY\r\n");
			peer_append(want, "500 5.5.2 Command not recognized\r\n");
		}
		peer_append(in, "QUIT\r\n");
		peer_append(want, "421 4.7.0 " NAME " Error: too many errors\r\n");
		pre_case(MX, in, want, 0);
		CHECK(log_has("bad-input: reason=too-many-errors, rip=192.0.2.7"));
	}
	/* NUL, a lone CR, binary garbage: answered, counted, never a crash */
	{
		static const char in[] = "NO\0OP\r\nNO\rOP\r\n\xff\xfe\x80garbage\r\n"
					 "\x16\x03\x01\x02\x00\x01\r\nQUIT\r\n";
		struct peer p;
		struct pre_arg a = MX;
		peer_start(&p, pre_child, &a);
		if (write(p.fd, in, sizeof(in) - 1) != (ssize_t)sizeof(in) - 1)
			CHECK(0);
		shutdown(p.fd, SHUT_WR);
		peer_read(&p, NULL);
		CHECK(peer_finish(&p) == 0);
		CHECK_STR(p.out, GREET "500 5.5.2 Control characters not allowed\r\n"
			  "500 5.5.2 Control characters not allowed\r\n"
			  "500 5.5.2 Command not recognized\r\n"
			  "500 5.5.2 Control characters not allowed\r\n" BYE);
		peer_free(&p);
	}
	/* a command line past RFC 5321's 512 octets: answered, the next line is read */
	{
		static char in[1200];
		memset(in, 'a', sizeof(in));
		memcpy(in, "NOOP ", 5);
		memcpy(in + 600, "\r\nQUIT\r\n", 9);
		pre_case(MX, in, GREET "500 5.5.2 Line too long\r\n" BYE, 0);
	}
	/* past the line reader's limit: answered, and the connection ends */
	{
		static char in[SMTP_MAX_AUTH_LINE + 64];
		memset(in, 'a', sizeof(in));
		memcpy(in, "NOOP ", 5);
		memcpy(in + SMTP_MAX_AUTH_LINE + 10, "\r\nQUIT\r\n", 9);
		pre_case(MX, in, GREET "500 5.5.2 Line too long\r\n", 0);
		CHECK(log_has("bad-input: reason=line-too-long, rip=192.0.2.7"));
	}
}

static void test_timeouts(void)
{
	/* silence past the idle timeout */
	struct peer p;
	struct pre_arg a = MX;
	a.timeout_s = 1;
	log_reset();
	peer_start(&p, pre_child, &a);
	CHECK(peer_read(&p, "421 4.4.2 " NAME " Error: timeout exceeded\r\n") == 0);
	CHECK(peer_finish(&p) == 0);
	peer_free(&p);
	CHECK(log_has("disconnect: reason=timeout"));
	/* a client that keeps talking still meets the pre-login deadline */
	a = SMTPS;
	a.deadline_ms = 500;
	peer_start(&p, pre_child, &a);
	CHECK(peer_read(&p, GREET) == 0);
	/* NOOPs until the worker has closed (a failed send) or 10 s of them */
	for (int i = 0; i < 500; i++) {
		if (send(p.fd, "NOOP\r\n", 6, MSG_NOSIGNAL) != 6)
			break;
		usleep(20000);
	}
	CHECK(peer_read(&p, "421 4.4.2 " NAME " Error: timeout exceeded\r\n") == 0);
	CHECK(peer_finish(&p) == 0);
	peer_free(&p);
}

static void test_refuse(void)
{
	struct {
		enum server_refusal why;
		const char *want;
	} cases[] = {
		{ REFUSE_HOSTS_DENY, "554 5.7.1 Access denied\r\n" },
		{ REFUSE_CONFIG, "421 4.3.0 Server configuration error, try again later\r\n" },
		{ REFUSE_TOO_MANY, "421 4.7.0 Too many connections from your address, try "
				   "again later\r\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int sv[2];
		char buf[256];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
		struct conn c;
		conn_init(&c, sv[1], sv[1], 512, 5);
		smtp_prelogin_refuse(&c, cases[i].why);
		conn_deinit(&c);
		close(sv[1]);
		ssize_t n = read(sv[0], buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		CHECK_STR(buf, cases[i].want);
		close(sv[0]);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test", false);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_smtp_prelogin.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(peer_logpath, sizeof(peer_logpath), "%s/log", tmpdir);
	config_defaults(&cfg, "smtp-submit");
	cfg.login_fail_delay_ms = 0;
	cfg.greet_pause_ms = 0;
	cfg.hostname = xstrdup(NAME);
	test_ctx = SSL_CTX_new(TLS_server_method());

	test_commands();
	test_submission_before_auth();
	test_auth();
	test_starttls();
	test_mx_handover();
	test_pregreet();
	test_limits();
	test_timeouts();
	test_refuse();

	SSL_CTX_free(test_ctx);
	config_free(&cfg);
	peer_rm_rf(tmpdir);
	return unit_done("smtp_prelogin");
}
