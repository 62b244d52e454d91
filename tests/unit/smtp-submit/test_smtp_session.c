/* smtp-submit's session (smtp_session.c, smtp_data.c) over a socketpair, each run in a
 * forked child as the current user, on a temporary spool (owner: the test's uid), with
 * the stub policy of smtp-submit/policy.c (recipients @localhost are local, every other
 * domain remote, nothing refused):
 *  - MAIL/RCPT/DATA into the spool: the replies, whole and byte by byte; the message
 *    file (our Received: field first, then the bytes, dot-stuffing undone); the
 *    envelope (sender, recipients with kind/notify/orcpt, body, smtputf8, ret, envid,
 *    client, helo, proto, tls, auth); the log line;
 *  - every command: RSET, NOOP, VRFY, HELP, EXPN, EHLO and HELO again, STARTTLS, AUTH,
 *    QUIT, sequence errors, unknown verbs, NUL, a line too long, max_errors;
 *  - the smuggling sequences: one message queued with its bytes intact;
 *  - limits: SIZE=, a message over the size, a line over 1000, the hop count, too many
 *    recipients, a full spool (RLIMIT_FSIZE: 452 4.3.1 and nothing left);
 *  - BDAT: chunks, binary bytes, BDAT 0 LAST, refused chunks dropped, DATA after BDAT,
 *    BINARYMIME with DATA, a chunk over the size;
 *  - pipelined transactions; submission's From: checks; the idle timeout and the
 *    transaction deadline. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/config.h"
#include "base/conn.h"
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "policy.h"
#include "spool/envelope.h"
#include "spool/spool.h"
#include "smtp.h"
#include "smtp_session_int.h"
#include "submit.h"
#include "peer.h"
#include "unit.h"

enum submit_mode submit_mode = SUBMIT_MODE_MX;

static char tmpdir[256];
static char spooldir[512];
static struct config cfg;
static struct passwd *pw;

#define HOST "mx.example.test"

/* How the child's session starts: what the worker would have handed over. */
struct opts {
	enum submit_mode mode;
	const char *user;         /* "" on port 25 */
	bool tls;
	bool esmtp;
	const char *helo;
	unsigned timeout_s;       /* idle timeout (10 s if 0) */
	rlim_t fsize;             /* RLIMIT_FSIZE in the child (0: none) */
	unsigned deadline_s;      /* smtp_sess_deadline_s (default if 0) */
};

static const struct opts mx = { SUBMIT_MODE_MX, "", false, true, "client.example.net", 0, 0, 0 };
static const struct opts subm = { SUBMIT_MODE_SUBMISSION, "ned", true, true, "laptop.example", 0, 0, 0 };

static int session_child(int fd, void *arg)
{
	const struct opts *o = arg;
	struct session_info info = { 0 };
	struct conn c;

	submit_mode = o->mode;
	if (o->deadline_s != 0)
		smtp_sess_deadline_s = o->deadline_s;
	if (o->fsize != 0) {
		struct rlimit rl = { o->fsize, o->fsize };
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			return 98;
	}
	snprintf(info.user, sizeof(info.user), "%s", o->user);
	snprintf(info.rip, sizeof(info.rip), "192.0.2.7");
	snprintf(info.lip, sizeof(info.lip), "192.0.2.1");
	info.rport = 40000;
	info.lport = o->mode == SUBMIT_MODE_MX ? 25 : 587;
	if (o->tls) {
		snprintf(info.tls_version, sizeof(info.tls_version), "TLSv1.3");
		snprintf(info.tls_cipher, sizeof(info.tls_cipher), "TLS_AES_256_GCM_SHA384");
	}
	if (o->user[0] != '\0')
		snprintf(info.auth_mech, sizeof(info.auth_mech), "PLAIN");
	snprintf(info.session_id, sizeof(info.session_id), "0123456789AB");
	snprintf(info.helo, sizeof(info.helo), "%s", o->helo);
	info.esmtp = o->esmtp;
	conn_init(&c, fd, fd, SMTP_MAX_CMD_LINE, o->timeout_s != 0 ? o->timeout_s : 10);
	struct server_session s = {
		.c = &c, .cfg = &cfg, .pw = pw, .user = info.user, .rip = info.rip, .info = &info,
	};
	int r = smtp_session(&s);
	conn_flush(&c);
	conn_deinit(&c);
	return r;
}

/* ---- the spool ------------------------------------------------------------------- */

static void spool_reset(void)
{
	char p[700];
	static const char *const subs[] = { "tmp", "queue" };

	for (size_t i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/%s", spooldir, subs[i]);
		peer_rm_rf(p);
		mkdir(p, 0700);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in spool/sub, sorted (at most 16; NULL-terminated); the count. */
static size_t spool_list(const char *sub, char names[16][64])
{
	char p[700];
	char *ptrs[16];
	size_t n = 0;

	snprintf(p, sizeof(p), "%s/%s", spooldir, sub);
	DIR *d = opendir(p);
	if (d == NULL)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n < 16) {
			snprintf(names[n], 64, "%.63s", e->d_name);
			ptrs[n] = names[n];
		}
		n++;
	}
	closedir(d);
	size_t m = n < 16 ? n : 16;
	qsort(ptrs, m, sizeof(ptrs[0]), cmp_str);
	char tmp[16][64];
	for (size_t i = 0; i < m; i++)
		snprintf(tmp[i], 64, "%s", ptrs[i]);
	memcpy(names, tmp, sizeof(tmp[0]) * m);
	return n;
}

static size_t queue_count(void)
{
	char names[16][64];
	return spool_list("queue", names);
}

static size_t tmp_count(void)
{
	char names[16][64];
	return spool_list("tmp", names);
}

/* A file of the spool, whole (malloc'd, NUL-terminated; *len_r without it). */
static char *read_file_n(const char *path, size_t *len_r)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = xmalloc(cap + 1);
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		for (;;) {
			if (len == cap) {
				cap *= 2;
				buf = xrealloc(buf, cap + 1);
			}
			ssize_t n = read(fd, buf + len, cap - len);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		close(fd);
	}
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

static char *msg_data(const char *id, size_t *len_r)
{
	char p[800];
	snprintf(p, sizeof(p), "%s/queue/%s/data", spooldir, id);
	return read_file_n(p, len_r);
}

static struct envelope *msg_env(const char *id)
{
	char p[800];
	size_t len;
	const char *error;
	struct envelope *env = NULL;

	snprintf(p, sizeof(p), "%s/queue/%s/env", spooldir, id);
	char *buf = read_file_n(p, &len);
	if (envelope_parse(buf, len, &env, NULL, &error) < 0) {
		fprintf(stderr, "envelope %s: %s\n", id, error);
		env = NULL;
	}
	free(buf);
	return env;
}

/* The message after our Received: field (which ends at the first CRLF not followed by
 * white space); NULL if the data does not start with one. */
static const char *after_received(const char *data, size_t len, size_t *rest_r)
{
	if (strncmp(data, "Received: ", 10) != 0)
		return NULL;
	for (size_t i = 0; i + 2 < len; i++)
		if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] != ' ' &&
		    data[i + 2] != '\t') {
			*rest_r = len - (i + 2);
			return data + i + 2;
		}
	if (len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n') {
		*rest_r = 0;
		return data + len;
	}
	return NULL;
}

/* The only queued message's bytes after our Received: field equal want[0..want_len). */
static bool only_message_is(const char *want, size_t want_len)
{
	char names[16][64];
	size_t len, rest;

	if (spool_list("queue", names) != 1)
		return false;
	char *data = msg_data(names[0], &len);
	const char *body = after_received(data, len, &rest);
	bool ok = body != NULL && rest == want_len && memcmp(body, want, want_len) == 0;
	if (!ok) {
		fprintf(stderr, "message %s (%zu bytes after Received:, want %zu):\n", names[0],
			body != NULL ? rest : 0, want_len);
		for (size_t i = 0; body != NULL && i < rest; i++)
			fprintf(stderr, (unsigned char)body[i] < 32 ? "\\x%02x" : "%c", body[i]);
		fprintf(stderr, "\n");
	}
	free(data);
	return ok;
}

/* "queued as 0PZ4K8M2T7Q3" -> "queued as ID" in the transcript, for comparisons. */
static void norm_ids(char *s)
{
	char *p = s;
	while ((p = strstr(p, "queued as ")) != NULL) {
		p += 10;
		if (strlen(p) >= ENVELOPE_ID_LEN && envelope_id_valid(p, ENVELOPE_ID_LEN)) {
			memcpy(p, "ID", 2);
			memmove(p + 2, p + ENVELOPE_ID_LEN, strlen(p + ENVELOPE_ID_LEN) + 1);
		}
	}
}

/* The recipients these tests write to, as the policy's user lookup sees them. */
static int fake_users(void *ctx, const char *name, uid_t *uid_r)
{
	static const char *const users[] = { "ned", "ann", "bob", "a", "b", "c", "d",
						 "n\xc3\xa9" "d" };

	(void)ctx;
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		if (strcmp(name, users[i]) == 0) {
			*uid_r = 5000 + (uid_t)i;
			return 1;
		}
	}
	return 0;
}

static int run(struct peer *p, const struct opts *o, const char *input)
{
	int st = peer_transcript(p, session_child, (void *)o, input);
	norm_ids(p->out);
	return st;
}

static int run_bytewise(struct peer *p, const struct opts *o, const char *input)
{
	int st = peer_transcript_bytewise(p, session_child, (void *)o, input);
	norm_ids(p->out);
	return st;
}

/* Input with NULs and binary bytes. */
static int run_raw(struct peer *p, const struct opts *o, const char *input, size_t len)
{
	peer_start(p, session_child, (void *)o);
	if (util_write_all(p->fd, input, len) != 0) {
		perror("run_raw");
		exit(1);
	}
	shutdown(p->fd, SHUT_WR);
	bool ok = peer_read(p, NULL) == 0;
	int st = peer_finish(p);
	norm_ids(p->out);
	return ok ? st : -1;
}

static bool log_has(const char *needle)
{
	char *log = peer_read_file(peer_logpath);
	bool r = strstr(log, needle) != NULL;
	free(log);
	return r;
}

/* ---- tests --------------------------------------------------------------------------- */

#define MSG1 "From: Ann <ann@example.org>\r\nTo: ned@localhost\r\nSubject: hi\r\n\r\n" \
	     "body\r\n..dot line\r\n...\r\nend\r\n"
#define MSG1_STORED "From: Ann <ann@example.org>\r\nTo: ned@localhost\r\nSubject: hi\r\n\r\n" \
		    "body\r\n.dot line\r\n..\r\nend\r\n"

static void test_basic(void)
{
	static const char input[] =
		"MAIL FROM:<ann@example.org>\r\n"
		"RCPT TO:<ned@localhost>\r\n"
		"DATA\r\n" MSG1 ".\r\n"
		"QUIT\r\n";
	static const char want[] =
		"250 2.1.0 Ok\r\n"
		"250 2.1.5 Ok\r\n"
		"354 End data with <CR><LF>.<CR><LF>\r\n"
		"250 2.0.0 Ok: queued as ID\r\n"
		"221 2.0.0 Bye\r\n";

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct peer p;
		char names[16][64];
		size_t len;

		spool_reset();
		int st = bytewise ? run_bytewise(&p, &mx, input) : run(&p, &mx, input);
		CHECK(st == 0);
		CHECK_STR(p.out, want);
		peer_free(&p);
		CHECK(only_message_is(MSG1_STORED, strlen(MSG1_STORED)));
		CHECK(tmp_count() == 0);
		if (spool_list("queue", names) != 1)
			continue;
		char *data = msg_data(names[0], &len);
		/* our Received: field: the HELO, the client, us, ESMTP, the id, the one
		 * recipient */
		CHECK(strncmp(data, "Received: from client.example.net ([192.0.2.7]) ", 48) == 0);
		CHECK(strstr(data, "by " HOST " with ESMTP") != NULL);
		char idpart[80];
		snprintf(idpart, sizeof(idpart), "id %s", names[0]);
		CHECK(strstr(data, idpart) != NULL);
		CHECK(strstr(data, "for <ned@localhost>") != NULL);
		free(data);

		struct envelope *env = msg_env(names[0]);
		CHECK(env != NULL);
		if (env != NULL) {
			CHECK_STR(env->sender, "ann@example.org");
			CHECK(env->rcpt_count == 1);
			CHECK_STR(env->rcpts[0].addr, "ned@localhost");
			CHECK(env->rcpts[0].kind == ENVELOPE_LOCAL);
			CHECK(env->rcpts[0].state == ENVELOPE_PENDING);
			CHECK(env->body == ENVELOPE_BODY_7BIT);
			CHECK(!env->smtputf8);
			CHECK(env->auth == NULL);
			CHECK_STR(env->client_addr, "192.0.2.7");
			CHECK_STR(env->helo, "client.example.net");
			CHECK_STR(env->proto, "ESMTP");
			CHECK(env->tls == NULL);
			CHECK(env->ret == ENVELOPE_RET_NONE && env->envid == NULL);
			envelope_free(&env);
		}
		char line[256];
		snprintf(line, sizeof(line), "%s: from=<ann@example.org>, size=", names[0]);
		CHECK(log_has(line));
		CHECK(log_has(", nrcpt=1, proto=ESMTP, rip=192.0.2.7"));
		/* a local recipient: delivery asked for (the stub monitor refuses: logged) */
		snprintf(line, sizeof(line), "%s: delivery-request-failed", names[0]);
		CHECK(log_has(line));
		CHECK(log_has("disconnect: reason=quit, messages=1, errors=0"));
	}
}

static void test_envelope_params(void)
{
	struct peer p;
	char names[16][64];

	spool_reset();
	int st = run(&p, &mx,
		"MAIL FROM:<ann@example.org> BODY=8BITMIME RET=HDRS ENVID=QQ+2B314 SIZE=100\r\n"
		"RCPT TO:<ned@localhost> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;ned+40localhost\r\n"
		"RCPT TO:<bob@localhost> NOTIFY=NEVER\r\n"
		"RCPT TO:<ned@localhost>\r\n"
		"RCPT TO:<Postmaster>\r\n"
		"DATA\r\nSubject: 8bit \xc3\xa9t\xc3\xa9\r\n\r\n\xff\xfe\r\n.\r\nQUIT\r\n");
	CHECK(st == 0);
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
			 "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
			 "250 2.0.0 Ok: queued as ID\r\n221 2.0.0 Bye\r\n");
	peer_free(&p);
	CHECK(spool_list("queue", names) == 1);
	struct envelope *env = msg_env(names[0]);
	CHECK(env != NULL);
	if (env != NULL) {
		CHECK(env->body == ENVELOPE_BODY_8BITMIME);
		CHECK(env->ret == ENVELOPE_RET_HDRS);
		CHECK_STR(env->envid, "QQ+314");
		/* the duplicate is one recipient; <Postmaster> is ours */
		CHECK(env->rcpt_count == 3);
		if (env->rcpt_count == 3) {
			CHECK_STR(env->rcpts[0].addr, "ned@localhost");
			CHECK(env->rcpts[0].notify == (ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE));
			CHECK_STR(env->rcpts[0].orcpt, "rfc822;ned@localhost");
			CHECK_STR(env->rcpts[1].addr, "bob@localhost");
			CHECK(env->rcpts[1].kind == ENVELOPE_LOCAL);
			CHECK(env->rcpts[1].notify == ENVELOPE_NOTIFY_NEVER);
			CHECK(env->rcpts[1].orcpt == NULL);
			CHECK_STR(env->rcpts[2].addr, "postmaster@" HOST);
		}
		envelope_free(&env);
	}
	/* several recipients: no "for" in Received: */
	size_t len;
	char *data = msg_data(names[0], &len);
	CHECK(strstr(data, " for <") == NULL);
	free(data);

	/* SMTPUTF8: UTF-8 addresses, the envelope says so, the protocol is UTF8SMTP */
	spool_reset();
	st = run(&p, &mx,
		"MAIL FROM:<j\xc3\xb6rg@example.org> SMTPUTF8\r\n"
		"RCPT TO:<n\xc3\xa9\x64@localhost>\r\n"
		"DATA\r\nSubject: x\r\n\r\ny\r\n.\r\n");
	CHECK(st == 0);
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
			 "250 2.0.0 Ok: queued as ID\r\n");
	peer_free(&p);
	CHECK(spool_list("queue", names) == 1);
	env = msg_env(names[0]);
	CHECK(env != NULL);
	if (env != NULL) {
		CHECK(env->smtputf8);
		CHECK_STR(env->sender, "j\xc3\xb6rg@example.org");
		CHECK_STR(env->proto, "UTF8SMTP");
		envelope_free(&env);
	}
	data = msg_data(names[0], &len);
	CHECK(strstr(data, "with UTF8SMTP") != NULL);
	free(data);
	/* 8-bit bytes without BODY=8BITMIME: accepted as they are (as Postfix does), the
	 * envelope says 7bit as declared */
	spool_reset();
	st = run(&p, &mx, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\n"
			  "DATA\r\nSubject: \xe9t\xe9\r\n\r\n\x80\xff\r\n.\r\n");
	CHECK(strstr(p.out, "250 2.0.0 Ok: queued as ID\r\n") != NULL);
	peer_free(&p);
	CHECK(only_message_is("Subject: \xe9t\xe9\r\n\r\n\x80\xff\r\n", 20));
	if (spool_list("queue", names) == 1) {
		env = msg_env(names[0]);
		CHECK(env != NULL && env->body == ENVELOPE_BODY_7BIT);
		envelope_free(&env);
	}
	/* AUTH= on port 25, which offers no AUTH: an unknown parameter (RFC 4954 section 5) */
	st = run(&p, &mx, "MAIL FROM:<a@example.org> AUTH=<>\r\n");
	CHECK_STR(p.out, "555 5.5.4 Unsupported or unknown parameter\r\n");
	peer_free(&p);
	/* UTF-8 without SMTPUTF8: refused by the parser (RFC 6531 section 3.5) */
	st = run(&p, &mx, "MAIL FROM:<j\xc3\xb6rg@example.org>\r\n");
	CHECK(strncmp(p.out, "550 5.6.7 ", 10) == 0);
	peer_free(&p);
	/* SIZE= within the limit, and over it (RFC 1870: 552 5.3.4 at MAIL) */
	spool_reset();
	cfg.message_size_limit = 1000;
	st = run(&p, &mx, "MAIL FROM:<a@example.org> SIZE=1000\r\nRSET\r\n"
			  "MAIL FROM:<a@example.org> SIZE=1001\r\n"
			  "MAIL FROM:<a@example.org> SIZE=99999999999999999999\r\n");
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n"
			 "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
			 "501 5.5.4 Bad SIZE value\r\n");
	peer_free(&p);
	cfg.message_size_limit = 0;
}

static void test_commands(void)
{
	struct peer p;

	cfg.max_errors = 50;
	spool_reset();
	int st = run(&p, &mx,
		"NOOP\r\nNOOP anything\r\nVRFY ned\r\nEXPN list\r\nHELP\r\nHELP MAIL\r\n"
		"STARTTLS\r\nAUTH PLAIN\r\nRSET\r\n"
		"DATA\r\nRCPT TO:<ned@localhost>\r\nBDAT 5\r\nabcdeMAIL FROM:<a@example.org>\r\n"
		"MAIL FROM:<a@example.org>\r\nDATA\r\nRSET\r\n"
		"MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\n"
		"EHLO again.example\r\nDATA\r\n"
		"HELO old.example\r\nMAIL FROM:<a@example.org> SIZE=10\r\nBDAT 3 LAST\r\nxyz"
		"FOO bar\r\nmail from:<a@example.org>\r\nQUIT\r\nNOOP\r\n");
	CHECK(st == 0);
	CHECK_STR(p.out,
		"250 2.0.0 Ok\r\n"
		"250 2.0.0 Ok\r\n"
		"252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
		"502 5.5.1 Error: command not implemented\r\n"
		"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n"
		"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n"
		"454 4.7.0 TLS not available now\r\n"
		"502 5.5.1 Error: command not implemented\r\n"
		"250 2.0.0 Ok\r\n"
		"503 5.5.1 Error: need MAIL command\r\n"
		"503 5.5.1 Error: need MAIL command\r\n"
		"503 5.5.1 Error: need MAIL command\r\n"   /* BDAT: its 5 bytes dropped */
		"250 2.1.0 Ok\r\n"
		"503 5.5.1 Error: nested MAIL command\r\n"
		"554 5.5.1 Error: no valid recipients\r\n"
		"250 2.0.0 Ok\r\n"
		"250 2.1.0 Ok\r\n"
		"250 2.1.5 Ok\r\n"
		/* EHLO again: the transaction is gone; no STARTTLS, no AUTH */
		"250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n"
		"250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
		"250 DSN\r\n"
		"503 5.5.1 Error: need MAIL command\r\n"
		/* HELO: no extensions any more, BDAT's bytes are still dropped */
		"250 " HOST "\r\n"
		"555 5.5.4 Unsupported or unknown parameter\r\n"
		"503 5.5.1 Error: CHUNKING was not offered (send EHLO)\r\n"
		"500 5.5.2 Command not recognized\r\n"
		"250 2.1.0 Ok\r\n"
		"221 2.0.0 Bye\r\n");
	peer_free(&p);
	CHECK(queue_count() == 0);
	cfg.max_errors = 0;

	/* submission, under TLS, after AUTH: STARTTLS and AUTH are refused as such */
	st = run(&p, &subm, "STARTTLS\r\nAUTH PLAIN AGFhAGI=\r\nQUIT\r\n");
	CHECK_STR(p.out, "503 5.5.1 Error: TLS already active\r\n"
			 "503 5.5.1 Error: already authenticated\r\n221 2.0.0 Bye\r\n");
	peer_free(&p);
	/* submission without a login (cannot happen after the worker): MAIL refused */
	struct opts nologin = subm;
	nologin.user = "";
	st = run(&p, &nologin, "MAIL FROM:<ned@localhost>\r\n");
	CHECK_STR(p.out, "530 5.7.0 Authentication required\r\n");
	peer_free(&p);
}

static void test_bad_input(void)
{
	struct peer p;
	/* NUL and other garbage: 500 5.5.2, counted; at max_errors 421 and the end */
	static const char nul[] = "NOOP\0x\r\n\x01\x02\x03\r\n\xff\xfe\r\nNOOP\r\n";
	int st = run_raw(&p, &mx, nul, sizeof(nul) - 1);
	CHECK(st == 0);
	CHECK_STR(p.out, "500 5.5.2 Error: invalid character in command\r\n"
			 "500 5.5.2 Control characters not allowed\r\n"
			 "500 5.5.2 Command not recognized\r\n"
			 "250 2.0.0 Ok\r\n");
	peer_free(&p);

	cfg.max_errors = 3;
	st = run(&p, &mx, "FOO\r\nNOOP\r\nDATA\r\nRCPT TO:<a@localhost>\r\nNOOP\r\nNOOP\r\n");
	CHECK(st == 0);
	CHECK_STR(p.out, "500 5.5.2 Command not recognized\r\n250 2.0.0 Ok\r\n"
			 "503 5.5.1 Error: need MAIL command\r\n"
			 "503 5.5.1 Error: need MAIL command\r\n"
			 "421 4.7.0 " HOST " Error: too many errors\r\n");
	peer_free(&p);
	CHECK(log_has("bad-input: reason=too-many-errors, rip=192.0.2.7"));
	/* an accepted message starts the count over */
	spool_reset();
	st = run(&p, &mx, "FOO\r\nFOO\r\nMAIL FROM:<>\r\nRCPT TO:<a@localhost>\r\n"
			  "DATA\r\n\r\n.\r\nFOO\r\nFOO\r\nQUIT\r\n");
	CHECK(st == 0);
	CHECK(strstr(p.out, "queued as ID\r\n500 5.5.2 Command not recognized\r\n"
			    "500 5.5.2 Command not recognized\r\n221 2.0.0 Bye\r\n") != NULL);
	peer_free(&p);
	cfg.max_errors = 0;

	/* a line over the longest command line: 500 and the end, never a resync */
	char *big = xmalloc(SMTP_MAX_AUTH_LINE + 64);
	memset(big, 'A', SMTP_MAX_AUTH_LINE + 10);
	memcpy(big + SMTP_MAX_AUTH_LINE + 10, "\r\nNOOP\r\n", 9);
	st = run(&p, &mx, big);
	free(big);
	CHECK_STR(p.out, "500 5.5.2 Error: line too long\r\n");
	peer_free(&p);
	CHECK(log_has("bad-input: reason=line-too-long"));
	/* a MAIL line over its own limit (the parser's): 500 5.5.2, the session goes on */
	char mail[2000] = "MAIL FROM:<a@example.org> ENVID=";
	for (size_t i = strlen(mail); i < 1500; i++)
		mail[i] = 'x';
	mail[1500] = '\0';
	peer_append(mail, "\r\nNOOP\r\n");
	st = run(&p, &mx, mail);
	CHECK(strncmp(p.out, "500 5.5.2 ", 10) == 0);
	CHECK(strstr(p.out, "\r\n250 2.0.0 Ok\r\n") != NULL);
	peer_free(&p);
}

/* Dot-stuffing and the smuggling sequences: only CRLF.CRLF ends the message; whatever
 * else is in it is kept, byte for byte, in one message. */
static void test_smuggling(void)
{
	static const char *const tricks[] = {
		"\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r.\r\n", "\r\n.\r", "\n..\n", "\r\n.\r\r\n",
	};
	for (size_t i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++) {
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			char body[512] = "Subject: smuggle\r\n\r\nbefore";
			char in[1024] = "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\nDATA\r\n";
			struct peer p;

			peer_append(body, tricks[i]);
			peer_append(body, "MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@localhost>\r\n"
					  "DATA\r\nFrom: forged\r\n\r\nsmuggled\r\n");
			peer_append(in, body);
			peer_append(in, ".\r\nQUIT\r\n");
			spool_reset();
			int st = bytewise ? run_bytewise(&p, &mx, in) : run(&p, &mx, in);
			CHECK(st == 0);
			CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
					 "354 End data with <CR><LF>.<CR><LF>\r\n"
					 "250 2.0.0 Ok: queued as ID\r\n221 2.0.0 Bye\r\n");
			peer_free(&p);
			/* "\r\n." starts a line: that dot is stuffing, and goes (RFC 5321
			 * section 4.5.2); nothing else changes */
			char want[512];
			char *dot = strstr(body, "\r\n.");
			if (dot != NULL) {
				size_t pre = (size_t)(dot - body) + 2;
				memcpy(want, body, pre);
				snprintf(want + pre, sizeof(want) - pre, "%s", dot + 3);
			} else {
				snprintf(want, sizeof(want), "%s", body);
			}
			CHECK(only_message_is(want, strlen(want)));
		}
	}
	CHECK(log_has(": data-note: bare LF, line="));
}

static void test_limits(void)
{
	struct peer p;
	char *in;
	size_t cap = 300000;

	/* a message over message_size_limit: 552 5.3.4 after the end, nothing queued, the
	 * session in step for the next transaction */
	cfg.message_size_limit = 2000;
	in = xmalloc(cap);
	snprintf(in, cap, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\nDATA\r\n");
	for (int i = 0; i < 100; i++)
		peer_append_n(in, cap, "0123456789012345678901234567890123456789\r\n");
	peer_append_n(in, cap, ".\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\n"
			       "DATA\r\nSubject: small\r\n\r\nok\r\n.\r\nQUIT\r\n");
	spool_reset();
	int st = run(&p, &mx, in);
	CHECK(st == 0);
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
			 "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
			 "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
			 "250 2.0.0 Ok: queued as ID\r\n221 2.0.0 Bye\r\n");
	peer_free(&p);
	CHECK(only_message_is("Subject: small\r\n\r\nok\r\n", 22));
	CHECK(tmp_count() == 0);
	cfg.message_size_limit = 0;

	/* a line over 1000 octets: 500 5.5.2 after the end; 1000 with CRLF is fine */
	snprintf(in, cap, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\nDATA\r\n");
	char line[1100];
	memset(line, 'x', 998);
	memcpy(line + 998, "\r\n", 3);
	peer_append_n(in, cap, line);
	peer_append_n(in, cap, ".\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\nDATA\r\n");
	memset(line, 'x', 999);
	memcpy(line + 999, "\r\n", 3);
	peer_append_n(in, cap, line);
	peer_append_n(in, cap, ".\r\n");
	spool_reset();
	st = run(&p, &mx, in);
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
			 "250 2.0.0 Ok: queued as ID\r\n"
			 "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
			 "500 5.5.2 Error: line too long\r\n");
	peer_free(&p);
	CHECK(queue_count() == 1 && tmp_count() == 0);

	/* the hop count: SMTP_MAX_HOPS - 1 Received: fields pass, SMTP_MAX_HOPS do not */
	for (int hops = SMTP_MAX_HOPS - 1; hops <= SMTP_MAX_HOPS; hops++) {
		snprintf(in, cap, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\nDATA\r\n");
		for (int i = 0; i < hops; i++)
			peer_append_n(in, cap, i % 2 ? "Received: from a by b; x\r\n" :
					       "received :from c\r\n\tby d\r\n");
		peer_append_n(in, cap, "Subject: loop\r\n\r\nReceived: in the body\r\n.\r\n");
		spool_reset();
		st = run(&p, &mx, in);
		if (hops < SMTP_MAX_HOPS) {
			CHECK(strstr(p.out, "250 2.0.0 Ok: queued as ID\r\n") != NULL);
			CHECK(queue_count() == 1);
		} else {
			CHECK(strstr(p.out, "354 End data with <CR><LF>.<CR><LF>\r\n"
					    "554 5.4.6 Too many hops\r\n") != NULL);
			CHECK(queue_count() == 0 && tmp_count() == 0);
		}
		peer_free(&p);
	}

	/* too many recipients: 452 4.5.3 for the rest, the message goes to the first */
	cfg.max_recipients = 2;
	spool_reset();
	st = run(&p, &mx, "MAIL FROM:<a@example.org>\r\nRCPT TO:<a@localhost>\r\n"
			  "RCPT TO:<b@localhost>\r\nRCPT TO:<c@localhost>\r\nRCPT TO:<d@localhost>\r\n"
			  "DATA\r\n\r\n.\r\n");
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
			 "452 4.5.3 Error: too many recipients\r\n452 4.5.3 Error: too many recipients\r\n"
			 "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as ID\r\n");
	peer_free(&p);
	cfg.max_recipients = 0;
	char names[16][64];
	if (spool_list("queue", names) == 1) {
		struct envelope *env = msg_env(names[0]);
		CHECK(env != NULL && env->rcpt_count == 2);
		envelope_free(&env);
	}
	free(in);
}

/* A full spool: RLIMIT_FSIZE makes the data file's write fail (EFBIG, SIGXFSZ ignored):
 * 452 4.3.1, and nothing left in tmp/ or queue/, whether the write fails while the
 * message streams in (past the spool's write buffer) or at the commit's flush.  Also
 * the log line. */
static void test_full_spool(void)
{
	/* the limit holds the log file too (the child appends to it): room for its lines */
	struct stat st_log;
	rlim_t fsize = 16384;
	if (stat(peer_logpath, &st_log) == 0 && (rlim_t)st_log.st_size + 8192 > fsize)
		fsize = (rlim_t)st_log.st_size + 8192;
	/* past SPOOL_WRITE_BUF (a write fails), and within it (the commit's flush fails) */
	size_t sizes[] = { 200000, SPOOL_WRITE_BUF - 2000 };
	CHECK(fsize < sizes[1]);

	for (size_t k = 0; k < 2; k++) {
		struct peer p;
		size_t cap = sizes[k] + 1000;
		char *in = xmalloc(cap);
		struct opts o = mx;
		o.fsize = fsize;

		snprintf(in, cap, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\nDATA\r\n");
		while (strlen(in) < sizes[k])
			peer_append_n(in, cap, "0123456789012345678901234567890123456789\r\n");
		peer_append_n(in, cap, ".\r\nNOOP\r\n");
		spool_reset();
		int st = run(&p, &o, in);
		CHECK(st == 0);
		CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
				 "452 4.3.1 Insufficient system storage\r\n250 2.0.0 Ok\r\n");
		peer_free(&p);
		CHECK(queue_count() == 0);
		CHECK(tmp_count() == 0);
		free(in);
	}
	CHECK(log_has("spool-full: cmd=DATA"));
}

static void test_bdat(void)
{
	struct peer p;
	char names[16][64];

	/* chunks, with bytes DATA could not carry (NUL, CRLF.CRLF, a bare CR), and BDAT 0
	 * LAST; pipelined */
	static const char in1[] =
		"MAIL FROM:<a@example.org> BODY=BINARYMIME\r\nRCPT TO:<ned@localhost>\r\n"
		"BDAT 22\r\nSubject: bin\r\n\r\n\0\r\n.\r\n"
		"BDAT 5\r\n\rQUIT"
		"BDAT 0 LAST\r\n"
		"QUIT\r\n";
	static const char stored1[] = "Subject: bin\r\n\r\n\0\r\n.\r\n\rQUIT";
	spool_reset();
	int st = run_raw(&p, &mx, in1, sizeof(in1) - 1);
	CHECK(st == 0);
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 22 octets\r\n"
			 "250 2.0.0 Ok: 5 octets\r\n250 2.0.0 Ok: queued as ID\r\n221 2.0.0 Bye\r\n");
	peer_free(&p);
	CHECK(only_message_is(stored1, sizeof(stored1) - 1));
	if (spool_list("queue", names) == 1) {
		struct envelope *env = msg_env(names[0]);
		CHECK(env != NULL && env->body == ENVELOPE_BODY_BINARYMIME);
		envelope_free(&env);
	}

	/* one chunk with LAST, byte by byte */
	spool_reset();
	st = run_bytewise(&p, &mx, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\n"
				   "BDAT 12 LAST\r\nSubject: x\r\nNOOP\r\n");
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as ID\r\n"
			 "250 2.0.0 Ok\r\n");
	peer_free(&p);
	CHECK(only_message_is("Subject: x\r\n", 12));

	/* DATA after BDAT: 503 and the transaction is gone; BINARYMIME with DATA: 503;
	 * BDAT without RCPT: its chunk dropped */
	spool_reset();
	st = run(&p, &mx,
		"MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\nBDAT 3\r\nabc"
		"DATA\r\nBDAT 3 LAST\r\nxyzRSET\r\n"
		"MAIL FROM:<a@example.org> BODY=BINARYMIME\r\nRCPT TO:<ned@localhost>\r\nDATA\r\n"
		"RSET\r\nMAIL FROM:<a@example.org>\r\nBDAT 6 LAST\r\nNOOP\r\nNOOP\r\n");
	CHECK_STR(p.out,
		"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 3 octets\r\n"
		"503 5.5.1 Error: DATA after BDAT\r\n"
		"503 5.5.1 Error: need MAIL command\r\n"
		"250 2.0.0 Ok\r\n"
		"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n503 5.5.1 Error: BODY=BINARYMIME needs BDAT\r\n"
		"250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n554 5.5.1 Error: no valid recipients\r\n"
		"250 2.0.0 Ok\r\n");
	peer_free(&p);
	CHECK(queue_count() == 0 && tmp_count() == 0);

	/* a chunk over the size: 552 after the chunk; the pipelined next chunk is dropped
	 * (503), the session goes on */
	cfg.message_size_limit = 10;
	spool_reset();
	st = run(&p, &mx, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\n"
			  "BDAT 8\r\n12345678BDAT 8\r\n12345678BDAT 4 LAST\r\nNOOPNOOP\r\n");
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 8 octets\r\n"
			 "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
			 "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n");
	peer_free(&p);
	CHECK(queue_count() == 0 && tmp_count() == 0);
	cfg.message_size_limit = 0;

	/* the connection ends inside a chunk: nothing queued, nothing left */
	spool_reset();
	st = run(&p, &mx, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\n"
			  "BDAT 100 LAST\r\nshort");
	CHECK(queue_count() == 0 && tmp_count() == 0);
	peer_free(&p);
	CHECK(log_has("disconnect: reason=eof-in-data"));
	/* ... and inside DATA */
	st = run(&p, &mx, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\n"
			  "DATA\r\nSubject: cut\r\n\r\nno end\r\n");
	CHECK(queue_count() == 0 && tmp_count() == 0);
	peer_free(&p);
}

static void test_pipelining(void)
{
	struct peer p;
	char in[4096] = "";

	for (int i = 0; i < 3; i++) {
		peer_append(in, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\n"
				"RCPT TO:<bob@localhost>\r\nDATA\r\n");
		peer_append(in, i == 1 ? "Subject: two\r\n\r\n..\r\n.\r\n" : "Subject: n\r\n\r\nx\r\n.\r\n");
	}
	peer_append(in, "RSET\r\nQUIT\r\n");
	spool_reset();
	int st = run(&p, &mx, in);
	CHECK(st == 0);
	char want[2048] = "";
	for (int i = 0; i < 3; i++)
		peer_append(want, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
				  "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as ID\r\n");
	peer_append(want, "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n");
	CHECK_STR(p.out, want);
	peer_free(&p);
	char names[16][64];
	CHECK(spool_list("queue", names) == 3);
	size_t len, rest;
	char *data = msg_data(names[1], &len);
	const char *b = after_received(data, len, &rest);
	CHECK(b != NULL && rest == 19 && memcmp(b, "Subject: two\r\n\r\n.\r\n", 19) == 0);
	free(data);
	/* the same input byte by byte: the same replies */
	spool_reset();
	st = run_bytewise(&p, &mx, in);
	CHECK_STR(p.out, want);
	peer_free(&p);
	CHECK(queue_count() == 3);
}

static void test_submission(void)
{
	struct peer p;
	char names[16][64];

	/* one From: queued, with the login in the envelope and the log, ESMTPSA and TLS */
	spool_reset();
	int st = run(&p, &subm, "MAIL FROM:<ned@localhost> AUTH=<ned@localhost>\r\n"
			       "RCPT TO:<bob@example.com>\r\n"
			       "DATA\r\nFrom: Ned <ned@localhost>\r\nSubject: x\r\n\r\nhi\r\n.\r\n"
			       "QUIT\r\n");
	CHECK(st == 0);
	CHECK_STR(p.out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
			 "250 2.0.0 Ok: queued as ID\r\n221 2.0.0 Bye\r\n");
	peer_free(&p);
	CHECK(spool_list("queue", names) == 1);
	struct envelope *env = msg_env(names[0]);
	CHECK(env != NULL);
	if (env != NULL) {
		CHECK_STR(env->auth, "ned");
		CHECK_STR(env->proto, "ESMTPSA");
		CHECK_STR(env->tls, "TLSv1.3 TLS_AES_256_GCM_SHA384");
		CHECK(env->rcpt_count == 1 && env->rcpts[0].kind == ENVELOPE_REMOTE);
		envelope_free(&env);
	}
	size_t len;
	char *data = msg_data(names[0], &len);
	CHECK(strstr(data, "with ESMTPSA") != NULL);
	CHECK(strstr(data, "TLSv1.3") != NULL && strstr(data, "TLS_AES_256_GCM_SHA384") != NULL);
	free(data);
	CHECK(log_has(", nrcpt=1, sasl_username=ned, proto=ESMTPSA, rip=192.0.2.7"));
	/* a remote recipient only: no delivery asked for */
	char line[128];
	snprintf(line, sizeof(line), "%s: delivery-request-failed", names[0]);
	CHECK(!log_has(line));

	/* no From:, two From: fields (also folded, any case): 553 5.7.1, nothing queued;
	 * a From: only in the body does not count */
	spool_reset();
	st = run(&p, &subm,
		"MAIL FROM:<ned@localhost>\r\nRCPT TO:<bob@example.com>\r\n"
		"DATA\r\nSubject: x\r\n\r\nFrom: ned@localhost\r\n.\r\n"
		"MAIL FROM:<ned@localhost>\r\nRCPT TO:<bob@example.com>\r\n"
		"DATA\r\nFrom: ned@localhost\r\nfrom :\r\n boss@example.com\r\n\r\nx\r\n.\r\n"
		"MAIL FROM:<ned@localhost>\r\nRCPT TO:<bob@example.com>\r\n"
		"BDAT 23 LAST\r\nFrom: ned@localhost\r\n\r\n");
	CHECK_STR(p.out,
		"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		"553 5.7.1 Error: message has no From: header field\r\n"
		"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		"553 5.7.1 Error: message has more than one From: header field\r\n"
		"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as ID\r\n");
	peer_free(&p);
	CHECK(queue_count() == 1 && tmp_count() == 0);
	CHECK(log_has("reject: cmd=DATA, reply=<553 5.7.1 Error: message has no From: header field>"));
	/* every log line of a message carries its queue id: "0PZ4K8M2T7Q3: reject: ..." */
	char *log = peer_read_file(peer_logpath);
	const char *r = strstr(log, "reject: cmd=DATA, reply=<553 5.7.1 Error: message has no From:");
	CHECK(r != NULL && r - log >= ENVELOPE_ID_LEN + 2 && r[-2] == ':' && r[-1] == ' ' &&
	      envelope_id_valid(r - ENVELOPE_ID_LEN - 2, ENVELOPE_ID_LEN));
	free(log);
}

static void test_timeouts(void)
{
	struct peer p;

	spool_reset();
	/* the idle timeout: 421 4.4.2 and the end */
	struct opts o = mx;
	o.timeout_s = 1;
	peer_start(&p, session_child, &o);
	peer_send(&p, "NOOP\r\n");
	CHECK(peer_read(&p, "421 4.4.2 ") == 0);
	CHECK(peer_finish(&p) == 0);
	CHECK_STR(p.out, "250 2.0.0 Ok\r\n421 4.4.2 " HOST " Error: timeout exceeded\r\n");
	peer_free(&p);
	CHECK(log_has("disconnect: reason=timeout"));

	/* the transaction deadline: a client that never lets the idle timeout pass (a RSET
	 * every 100 ms, idle timeout 30 s) is ended all the same (RSET buys no time), also
	 * inside DATA */
	for (int in_data = 0; in_data < 2; in_data++) {
		o = mx;
		o.timeout_s = 30;
		o.deadline_s = 1;
		peer_start(&p, session_child, &o);
		if (in_data)
			peer_send(&p, "MAIL FROM:<a@example.org>\r\nRCPT TO:<ned@localhost>\r\nDATA\r\n");
		bool got = false;
		for (int i = 0; i < 100 && !got; i++) {
			struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
			if (util_write_all(p.fd, in_data ? "x\r\n" : "RSET\r\n", in_data ? 3 : 6) != 0)
				break;
			if (poll(&pfd, 1, 100) > 0 && peer_read(&p, "421 4.4.2 ") == 0)
				got = true;
		}
		CHECK(got);
		peer_finish(&p);
		peer_free(&p);
	}
	CHECK(queue_count() == 0 && tmp_count() == 0);
}

int main(void)
{
	const char *error;
	struct spool *sp;

	signal(SIGPIPE, SIG_IGN);
	log_init("test", false);
	pw = getpwuid(getuid());
	if (pw == NULL) {
		fprintf(stderr, "no passwd entry for uid %u\n", (unsigned)getuid());
		return 1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_smtp_session.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(spooldir, sizeof(spooldir), "%s/spool", tmpdir);
	snprintf(peer_logpath, sizeof(peer_logpath), "%s/log", tmpdir);
	if (mkdir(spooldir, 0700) < 0 ||
	    spool_open(spooldir, getuid(), SPOOL_OPEN_CREATE, &sp, &error) < 0) {
		fprintf(stderr, "spool: %s\n", spooldir);
		return 1;
	}
	spool_close(&sp);
	config_defaults(&cfg, "smtp-submit");
	cfg.hostname = xstrdup(HOST);
	/* the real policy (smtp-submit/policy.c) with users of our own: no account of the
	 * machine, no /etc/aliases */
	policy_test_user_lookup = fake_users;
	free(cfg.aliases);
	cfg.aliases = xstrdup("/nonexistent/postern-test-aliases");
	free(cfg.spool_dir);
	cfg.spool_dir = xstrdup(spooldir);

	test_basic();
	test_envelope_params();
	test_commands();
	test_bad_input();
	test_smuggling();
	test_limits();
	test_full_spool();
	test_bdat();
	test_pipelining();
	test_submission();
	test_timeouts();

	config_free(&cfg);
	if (getenv("KEEP") == NULL)
		peer_rm_rf(tmpdir);
	return unit_done("test_smtp_session");
}
