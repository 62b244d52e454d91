/* The POP3 state machines over a socketpair, each run in a forked child:
 *  - pop3_session() on a temporary Maildir, as the current user (no PAM, no monitor):
 *    STAT, LIST, RETR (bare LF comes out CRLF, '.' lines stuffed), TOP 0 / TOP 2, UIDL,
 *    DELE + dropped connection deletes nothing, DELE + QUIT deletes, RSET, bad numbers,
 *    a message that vanished, limits, the logout log line, a large message;
 *  - pop3_prelogin_run() with stub login/STLS calls: CAPA, USER/PASS, AUTH PLAIN and
 *    LOGIN, cancel, bad base64, plaintext refused, login results, STLS. */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "base/config.h"
#include "base/conn.h"
#include "base/plimits.h"
#include "base/log.h"
#include "storage/storage.h"
#include "pop3.h"
#include "peer.h"
#include "stub_monitor.h"
#include "unit.h"
#include "base/util.h"

static char tmpdir[256];
static char maildir[512];
static struct config cfg;
static struct passwd *pw;

static bool msg_exists(int i)
{
	char p[1024];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", maildir, peer_names[i]);
	return stat(p, &st) == 0;
}

static int session_child(int fd, void *arg)
{
	struct conn c;
	conn_init(&c, fd, fd, SASL_MAX_LINE, 10);
	struct server_session s = {
		.c = &c, .cfg = &cfg, .pw = pw, .user = pw->pw_name, .rip = "127.0.0.1",
	};
	int r = pop3_session(&s);
	conn_flush(&c);
	conn_deinit(&c);
	return r;
}

static void test_session_basic(void)
{
	struct peer p;
	char want[2048];
	/* peer_msg3 has no final line end: its size counts none, but RETR adds one so that
	 * the terminator starts a line */
	size_t s1 = peer_crlf_len(peer_msg1), s2 = peer_crlf_len(peer_msg2), s3 = peer_crlf_len(peer_msg3);

	peer_make_maildir(maildir);
	int st = peer_transcript(&p, session_child, NULL,
		"STAT\r\nLIST\r\nlist 2\r\nRETR 1\r\nTOP 2 0\r\nTOP 2 2\r\nRETR 3\r\n"
		"UIDL\r\nUIDL 2\r\nNOOP\r\nCAPA\r\nQUIT\r\n");
	CHECK(st == 0);
	snprintf(want, sizeof(want),
		"+OK Logged in.\r\n"
		"+OK 3 %zu\r\n"
		"+OK 3 messages (%zu octets)\r\n1 %zu\r\n2 %zu\r\n3 %zu\r\n.\r\n"
		"+OK 2 %zu\r\n"
		"+OK %zu octets\r\nFrom: a@example.org\r\nSubject: one\r\n\r\nline1\r\n"
		"..dot line\r\nline3\r\n.\r\n"
		"+OK\r\nSubject: two\r\n\r\n.\r\n"
		"+OK\r\nSubject: two\r\n\r\nbody a\r\nbody b\r\n.\r\n"
		"+OK %zu octets\r\nSubject: three\r\n\r\nno newline at end\r\n.\r\n"
		"+OK\r\n1 1000000001.M1P1.test\r\n2 1000000002.M2P1.test\r\n"
		"3 1000000003.M3P1.test\r\n.\r\n"
		"+OK 2 1000000002.M2P1.test\r\n"
		"+OK\r\n"
		"+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
		"PIPELINING\r\nIMPLEMENTATION postern\r\n.\r\n"
		"+OK Logging out, 0 messages deleted.\r\n",
		s1 + s2 + s3, s1 + s2 + s3, s1, s2, s3, s2, s1, s3);
	CHECK_STR(p.out, want);
	CHECK(msg_exists(0) && msg_exists(1) && msg_exists(2));
	peer_free(&p);

	char *log = peer_read_file(peer_logpath);
	char line[256];
	snprintf(line, sizeof(line), "logout: user=<%s>, reason=quit, top=2, retr=2, del=0, size=%zu",
		 pw->pw_name, s1 + s2 + s3);
	CHECK(strstr(log, line) != NULL);
	free(log);
}

static void test_session_errors(void)
{
	struct peer p;
	char want[2048];
	size_t s1 = peer_crlf_len(peer_msg1), s2 = peer_crlf_len(peer_msg2), s3 = peer_crlf_len(peer_msg3);

	peer_make_maildir(maildir);
	int st = peer_transcript(&p, session_child, NULL,
		"LIST 4294967297\r\nLIST -1\r\nLIST 1x\r\nLIST 0\r\nLIST 4\r\nRETR 4\r\n"
		"TOP 1 -1\r\nTOP 1\r\nUSER ned\r\nSTLS\r\nAUTH PLAIN\r\nRETR\r\nFOO\r\n"
		"LIST  1\r\nstat\r\n\r\nQUIT\r\n");
	CHECK(st == 0);
	snprintf(want, sizeof(want),
		"+OK Logged in.\r\n"
		"-ERR Invalid message number.\r\n"
		"-ERR Invalid message number.\r\n"
		"-ERR Invalid message number.\r\n"
		"-ERR No such message.\r\n"
		"-ERR No such message.\r\n"
		"-ERR No such message.\r\n"
		"-ERR Invalid number of lines.\r\n"
		"-ERR Syntax error\r\n"
		"-ERR Unknown command\r\n"
		"-ERR Unknown command\r\n"
		"-ERR Unknown command\r\n"
		"-ERR Syntax error\r\n"
		"-ERR Unknown command\r\n"
		"+OK 1 %zu\r\n"
		"+OK 3 %zu\r\n"
		"-ERR Unknown command\r\n"
		"+OK Logging out, 0 messages deleted.\r\n", s1, s1 + s2 + s3);
	CHECK_STR(p.out, want);
	peer_free(&p);
}

static void test_session_dele(void)
{
	struct peer p;
	size_t s1 = peer_crlf_len(peer_msg1), s2 = peer_crlf_len(peer_msg2), s3 = peer_crlf_len(peer_msg3);
	char want[1024];

	/* DELE, then the connection drops: nothing is deleted */
	peer_make_maildir(maildir);
	int st = peer_transcript(&p, session_child, NULL,
		"DELE 1\r\nDELE 1\r\nLIST 1\r\nRETR 1\r\nTOP 1 0\r\nUIDL 1\r\nSTAT\r\nDELE 3\r\n");
	CHECK(st == 0);
	snprintf(want, sizeof(want),
		"+OK Logged in.\r\n"
		"+OK Marked to be deleted.\r\n"
		"-ERR Message 1 is deleted.\r\n"
		"-ERR Message 1 is deleted.\r\n"
		"-ERR Message 1 is deleted.\r\n"
		"-ERR Message 1 is deleted.\r\n"
		"-ERR Message 1 is deleted.\r\n"
		"+OK 2 %zu\r\n"
		"+OK Marked to be deleted.\r\n", s2 + s3);
	CHECK_STR(p.out, want);
	CHECK(msg_exists(0) && msg_exists(1) && msg_exists(2));
	peer_free(&p);
	char *log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "reason=eof, top=0, retr=0, del=0") != NULL);
	free(log);

	/* DELE, LIST without the deleted one, QUIT: deleted */
	st = peer_transcript(&p, session_child, NULL, "DELE 1\r\nLIST\r\nUIDL\r\nQUIT\r\n");
	CHECK(st == 0);
	snprintf(want, sizeof(want),
		"+OK Logged in.\r\n"
		"+OK Marked to be deleted.\r\n"
		"+OK 2 messages (%zu octets)\r\n2 %zu\r\n3 %zu\r\n.\r\n"
		"+OK\r\n2 1000000002.M2P1.test\r\n3 1000000003.M3P1.test\r\n.\r\n"
		"+OK Logging out, 1 messages deleted.\r\n", s2 + s3, s2, s3);
	CHECK_STR(p.out, want);
	CHECK(!msg_exists(0) && msg_exists(1) && msg_exists(2));
	peer_free(&p);
	log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "reason=quit, top=0, retr=0, del=1") != NULL);
	free(log);

	/* DELE then RSET then QUIT: nothing deleted */
	peer_make_maildir(maildir);
	st = peer_transcript(&p, session_child, NULL, "DELE 2\r\nDELE 3\r\nRSET\r\nSTAT\r\nQUIT\r\n");
	CHECK(st == 0);
	snprintf(want, sizeof(want),
		"+OK Logged in.\r\n"
		"+OK Marked to be deleted.\r\n"
		"+OK Marked to be deleted.\r\n"
		"+OK maildrop has 3 messages (%zu octets)\r\n"
		"+OK 3 %zu\r\n"
		"+OK Logging out, 0 messages deleted.\r\n", s1 + s2 + s3, s1 + s2 + s3);
	CHECK_STR(p.out, want);
	CHECK(msg_exists(0) && msg_exists(1) && msg_exists(2));
	peer_free(&p);

	/* DELE, then too many bad commands: closed, nothing deleted */
	char in[1024] = "DELE 1\r\n";
	for (int i = 0; i < MAX_BAD_COMMANDS; i++)
		peer_append(in, "BAD\r\n");
	peer_append(in, "QUIT\r\n");
	st = peer_transcript(&p, session_child, NULL, in);
	CHECK(st == 0);
	CHECK(strstr(p.out, "-ERR Too many bad commands.\r\n") != NULL);
	CHECK(strstr(p.out, "Logging out") == NULL);
	CHECK(msg_exists(0));
	peer_free(&p);
	log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "reason=too-many-errors") != NULL);
	free(log);

	/* 19 bad commands, a good one, 19 more: still open */
	char in2[1024] = "";
	for (int i = 0; i < MAX_BAD_COMMANDS - 1; i++)
		peer_append(in2, "BAD\r\n");
	peer_append(in2, "NOOP\r\n");
	for (int i = 0; i < MAX_BAD_COMMANDS - 1; i++)
		peer_append(in2, "LIST x\r\n");
	peer_append(in2, "QUIT\r\n");
	st = peer_transcript(&p, session_child, NULL, in2);
	CHECK(strstr(p.out, "Too many bad commands") == NULL);
	CHECK(strstr(p.out, "+OK Logging out, 0 messages deleted.\r\n") != NULL);
	peer_free(&p);
}

/* DELE + QUIT is an expunge that another session open on the same folder sees (an
 * IMAP session, later): on Maildir and on mbox. */
static void test_session_dele_seen(void)
{
	static const char mbox_text[] =
		"From a Mon Jan  1 00:00:00 2024\nSubject: one\n\n1\n\n"
		"From b Mon Jan  1 00:00:00 2024\nSubject: two\n\n2\n\n"
		"From c Mon Jan  1 00:00:00 2024\nSubject: three\n\n3\n\n";
	char *saved = cfg.mail_location;
	char mbox_loc[600], mbox_path[560];
	snprintf(mbox_path, sizeof(mbox_path), "%s/spool", tmpdir);
	snprintf(mbox_loc, sizeof(mbox_loc), "mbox:%s", mbox_path);
	for (int kind = 0; kind < 2; kind++) {
		struct mail_storage *st;
		struct mailbox *other;
		struct index_changes ch;
		struct peer p;
		const char *err;
		if (kind == 0) {
			peer_make_maildir(maildir);
		} else {
			int fd = open(mbox_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			CHECK(fd >= 0 && util_write_all(fd, mbox_text, strlen(mbox_text)) == 0);
			close(fd);
			cfg.mail_location = mbox_loc;
		}
		/* the same store as the session's: same home, so the same index */
		CHECK(storage_locate(cfg.mail_location, pw->pw_name, pw->pw_dir, &st, &err) == 0);
		CHECK(mailbox_open(st, "INBOX", &other, &err) == 0);
		CHECK(mailbox_count(other) == 3);
		uint32_t uid2 = mailbox_get(other, 1)->uid;
		int r = peer_transcript(&p, session_child, NULL, "DELE 2\r\nQUIT\r\n");
		CHECK(r == 0);
		CHECK(strstr(p.out, "+OK Logging out, 1 messages deleted.") != NULL);
		peer_free(&p);
		CHECK(mailbox_sync(other, &ch, &err) == 0);
		CHECK(ch.n_expunged == 1 && ch.expunged[0] == uid2);
		CHECK(ch.n_added == 0);
		index_changes_free(&ch);
		CHECK(mailbox_count(other) == 2 && mailbox_find(other, uid2, NULL) == NULL);
		mailbox_close(&other);
		storage_free(&st);
	}
	cfg.mail_location = saved;
}

static void test_session_limits(void)
{
	struct peer p;
	static char in[SASL_MAX_LINE + 64];

	peer_make_maildir(maildir);
	/* 510 octets + CRLF: a command that is merely wrong; 511: too long, closed */
	memset(in, 'x', sizeof(in));
	memcpy(in, "NOOP ", 5);
	memcpy(in + 510, "\r\n", 2);
	memcpy(in + 512, "LIST ", 5);
	memcpy(in + 512 + 511, "\r\nQUIT\r\n", 9);
	int st = peer_transcript(&p, session_child, NULL, in);
	CHECK(st == 0);
	CHECK_STR(p.out, "+OK Logged in.\r\n-ERR Syntax error\r\n-ERR Line too long.\r\n");
	peer_free(&p);
	char *log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "logout: user=<") != NULL && strstr(log, "reason=line-too-long, top=0") != NULL);
	char want[256];
	snprintf(want, sizeof(want), "bad-input: user=<%s>, reason=line-too-long, rip=127.0.0.1",
		 pw->pw_name);
	CHECK(strstr(log, want) != NULL);
	free(log);

	/* a NUL or a lone CR in a command */
	static const char bad[] = "NO\0OP\r\nNO\rOP\r\nQUIT\r\n";
	peer_start(&p, session_child, NULL);
	CHECK(util_write_all(p.fd, bad, sizeof(bad) - 1) == 0);
	shutdown(p.fd, SHUT_WR);
	peer_read(&p, NULL);
	CHECK(peer_finish(&p) == 0);
	CHECK_STR(p.out, "+OK Logged in.\r\n-ERR Invalid characters in command.\r\n"
		  "-ERR Invalid characters in command.\r\n+OK Logging out, 0 messages deleted.\r\n");
	peer_free(&p);
	log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "reason=bad-bytes, rip=127.0.0.1") != NULL);
	free(log);
}

/* A message deleted by someone else after login. */
static void test_session_vanished(void)
{
	struct peer p;
	char path[1024];

	peer_make_maildir(maildir);
	peer_start(&p, session_child, NULL);
	peer_send(&p, "STAT\r\n");
	CHECK(peer_read(&p, "+OK 3 ") == 0);
	snprintf(path, sizeof(path), "%s/%s", maildir, peer_names[0]);
	CHECK(unlink(path) == 0);
	peer_send(&p, "RETR 1\r\nTOP 1 0\r\nLIST 1\r\nDELE 1\r\nRETR 2\r\nQUIT\r\n");
	shutdown(p.fd, SHUT_WR);
	peer_read(&p, NULL);
	CHECK(peer_finish(&p) == 0);
	CHECK(strstr(p.out, "-ERR [SYS/TEMP] Message is no longer available.\r\n"
			    "-ERR [SYS/TEMP] Message is no longer available.\r\n") != NULL);
	char want[128];
	snprintf(want, sizeof(want), "+OK 1 %zu\r\n+OK Marked to be deleted.\r\n+OK %zu octets\r\n"
		 "Subject: two", peer_crlf_len(peer_msg1), peer_crlf_len(peer_msg2));
	CHECK(strstr(p.out, want) != NULL);
	CHECK(strstr(p.out, "+OK Logging out, 1 messages deleted.\r\n") != NULL);
	CHECK(!msg_exists(0) && msg_exists(1) && msg_exists(2));
	peer_free(&p);

	/* the whole Maildir gone: an empty mailbox, or an error, never a crash */
	peer_rm_rf(maildir);
	int st = peer_transcript(&p, session_child, NULL, "STAT\r\nQUIT\r\n");
	CHECK(strncmp(p.out, "+OK Logged in.\r\n+OK 0 0\r\n", 25) == 0 ||
	      strncmp(p.out, "-ERR [SYS/TEMP]", 15) == 0);
	CHECK(st == 0 || st == 1);
	peer_free(&p);
}

/* A message bigger than every buffer, all '.' lines and bare LFs. */
static void test_session_large(void)
{
	struct peer p;
	const size_t lines = 300000;  /* 300000 * 4 bytes = 1.2 MB on disk */
	char *big = xmalloc(lines * 4 + 32);
	size_t n = 0;

	peer_make_maildir(maildir);
	n += (size_t)snprintf(big, 32, "Subject: big\n\n");
	for (size_t i = 0; i < lines; i++) {
		memcpy(big + n, ".ab\n", 4);
		n += 4;
	}
	peer_write_file(maildir, "new/1000000004.M4P1.test", big, n);
	free(big);
	int st = peer_transcript(&p, session_child, NULL, "RETR 4\r\nTOP 4 3\r\nQUIT\r\n");
	CHECK(st == 0);
	size_t size = n + lines + 2;                     /* CRLF form */
	char head[128];
	snprintf(head, sizeof(head), "+OK Logged in.\r\n+OK %zu octets\r\nSubject: big\r\n\r\n"
		 "..ab\r\n", size);
	CHECK(strncmp(p.out, head, strlen(head)) == 0);
	size_t want = strlen("+OK Logged in.\r\n") + strlen(head) - strlen("+OK Logged in.\r\n")
		- strlen("Subject: big\r\n\r\n..ab\r\n") + size + lines + strlen(".\r\n") +
		strlen("+OK\r\nSubject: big\r\n\r\n..ab\r\n..ab\r\n..ab\r\n.\r\n") +
		strlen("+OK Logging out, 0 messages deleted.\r\n");
	CHECK(p.len == want);
	CHECK(strstr(p.out, "\r\n..ab\r\n.\r\n+OK\r\nSubject: big\r\n\r\n..ab\r\n..ab\r\n..ab\r\n"
			    ".\r\n+OK Logging out") != NULL);
	peer_free(&p);
}

/* The client vanishes in the middle of a pipelined RETR, DELE, QUIT. */
static void test_session_gone(void)
{
	struct peer p;
	const size_t size = 4 << 20;
	char *big = xmalloc(size);

	peer_make_maildir(maildir);
	memset(big, 'x', size);
	memcpy(big, "Subject: big\n\n", 14);
	for (size_t i = 100; i < size; i += 100)
		big[i] = '\n';
	peer_write_file(maildir, "new/1000000004.M4P1.test", big, size);
	free(big);
	peer_start(&p, session_child, NULL);
	peer_send(&p, "RETR 4\r\nDELE 4\r\nQUIT\r\n");
	CHECK(peer_read(&p, "+OK Logged in.\r\n") == 0);
	int st = peer_finish(&p); /* closes our end before reading the message */
	CHECK(st == 0 || st == 1);
	char path[1024];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/new/1000000004.M4P1.test", maildir);
	CHECK(stat(path, &sb) == 0);
	peer_free(&p);
	char *log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "reason=error, top=0, retr=1, del=0") != NULL);
	free(log);
}

/* ---- pre-login ------------------------------------------------------------------- */

struct pre_arg {
	bool plaintext_ok;
	bool tls_ctx;
};
static SSL_CTX *test_ctx;

static const struct pop3_login_ops stub_ops = { stub_monitor_login, stub_monitor_starttls };

static int pre_child(int fd, void *varg)
{
	const struct pre_arg *a = varg;
	struct conn c;
	struct server_worker w = { 0 };

	conn_init(&c, fd, fd, SASL_MAX_LINE, 10);
	w.c = &c;
	w.cfg = &cfg;
	w.ssl_ctx = a->tls_ctx ? test_ctx : NULL;
	w.plaintext_ok = a->plaintext_ok;
	snprintf(w.rip_str, sizeof(w.rip_str), "192.0.2.7");
	int r = pop3_prelogin_run(&w, &stub_ops);
	conn_flush(&c);
	conn_deinit(&c);
	return r;
}

#define GREET "+OK postern POP3 server ready\r\n"

static void pre_case(bool plain_ok, bool tls, const char *in, const char *want, int want_st)
{
	struct peer p;
	struct pre_arg a = { plain_ok, tls };

	int st = peer_transcript(&p, pre_child, &a, in);
	CHECK(st == want_st);
	CHECK_STR(p.out, want);
	peer_free(&p);
}

static void test_prelogin(void)
{
	/* insecure connection, STLS available */
	pre_case(false, true, "CAPA\r\nUSER ned\r\nPASS secret\r\nAUTH PLAIN AG5lZABzZWNyZXQ=\r\n"
		 "AUTH\r\nQUIT\r\n",
		 GREET "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
		 "AUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\nIMPLEMENTATION postern\r\n.\r\n"
		 "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections, use STLS\r\n"
		 "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections, use STLS\r\n"
		 "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections, use STLS\r\n"
		 "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections, use STLS\r\n"
		 "+OK Logging out.\r\n", 0);
	/* insecure, no TLS at all */
	pre_case(false, false, "CAPA\r\nUSER ned\r\nSTLS\r\nQUIT\r\n",
		 GREET "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
		 "AUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION postern\r\n.\r\n"
		 "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections.\r\n"
		 "-ERR [SYS/PERM] TLS is not available.\r\n"
		 "+OK Logging out.\r\n", 0);
	/* trusted: CAPA offers USER and SASL; pipelined USER/PASS logs in, nothing after */
	pre_case(true, true, "CAPA\r\nUSER ned\r\nPASS secret\r\nSTAT\r\n",
		 GREET "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
		 "AUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nSTLS\r\n"
		 "IMPLEMENTATION postern\r\n.\r\n+OK\r\n", 1);
	/* a password with spaces, leading and trailing */
	pre_case(true, false, "USER spacey\r\nPASS  two words \r\n", GREET "+OK\r\n", 1);
	/* failures: three and out */
	pre_case(true, false, "PASS secret\r\nUSER ned\r\nPASS wrong\r\nPASS secret\r\n"
		 "USER ned\r\nPASS tempfail\r\nUSER ned\r\nPASS wrong\r\nUSER ned\r\nPASS secret\r\n",
		 GREET "-ERR No username given.\r\n+OK\r\n-ERR [AUTH] Authentication failed.\r\n"
		 "-ERR No username given.\r\n+OK\r\n"
		 "-ERR [SYS/TEMP] Temporary authentication failure, try again later.\r\n"
		 "+OK\r\n-ERR [AUTH] Authentication failed.\r\n", 0);
	char *log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "disconnect: reason=auth-failures, auth_failures=3, rip=192.0.2.7") != NULL);
	free(log);
	pre_case(true, false, "USER ned\r\nPASS throttled\r\nUSER ned\r\nPASS secret\r\n",
		 GREET "+OK\r\n-ERR [SYS/TEMP] Too many failed logins, try again later.\r\n", 0);
	pre_case(true, false, "USER ned\r\nPASS inuse\r\nNOOP\r\n",
		 GREET "+OK\r\n-ERR [IN-USE] Mailbox is in use by another POP3 session.\r\n", 0);
	/* AUTH PLAIN: initial response, continuation, empty "=", cancel, bad base64 */
	pre_case(true, false, "AUTH PLAIN AG5lZABzZWNyZXQ=\r\n", GREET, 1);
	pre_case(true, false, "AUTH PLAIN\r\nbmVkAG5lZABzZWNyZXQ=\r\n", GREET "+ \r\n", 1);
	pre_case(true, false, "AUTH PLAIN =\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN\r\nAG5lZA\r\n"
		 "AUTH PLAIN AG5lZABzZWNyZXQ\r\nAUTH PLAIN AG5lZABzZWNyZXQ=x\r\n"
		 "AUTH PLAIN YQBiAGM=\r\nauth plain AG5lZABzZWNyZXQ=\r\n",
		 GREET "-ERR [AUTH] Authentication failed.\r\n"
		 "+ \r\n-ERR Authentication cancelled.\r\n"
		 "+ \r\n-ERR Invalid base64 data.\r\n"
		 "-ERR Invalid base64 data.\r\n"
		 "-ERR Invalid base64 data.\r\n"
		 "-ERR [AUTH] Authentication failed.\r\n", 1);
	/* AUTH LOGIN with and without initial response */
	pre_case(true, false, "AUTH LOGIN\r\nbmVk\r\nc2VjcmV0\r\n",
		 GREET "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n", 1);
	pre_case(true, false, "AUTH LOGIN bmVk\r\nc2VjcmV0\r\n", GREET "+ UGFzc3dvcmQ6\r\n", 1);
	pre_case(true, false, "AUTH LOGIN bmVk\r\n*\r\nAUTH LOGIN\r\n=\r\nAUTH LOGIN\r\nbmVk\r\nd3Jvbmc=\r\nQUIT\r\n",
		 GREET "+ UGFzc3dvcmQ6\r\n-ERR Authentication cancelled.\r\n"
		 "+ VXNlcm5hbWU6\r\n-ERR [AUTH] Authentication failed.\r\n"
		 "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n-ERR [AUTH] Authentication failed.\r\n"
		 "+OK Logging out.\r\n", 0);
	log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "stub-login: method=LOGIN, user=ned, pass=wrong") != NULL);
	CHECK(strstr(log, "stub-login: method=PLAIN, user=ned, pass=secret") != NULL);
	CHECK(strstr(log, "stub-login: method=USER, user=spacey, pass= two words ") != NULL);
	free(log);
	/* mechanism list, unknown mechanism, APOP, unknown commands, wrong state */
	pre_case(true, false, "AUTH\r\nAUTH CRAM-MD5\r\nAPOP ned 0123\r\nSTAT\r\nRETR 1\r\n"
		 "USER\r\nFOO\r\nQUIT\r\n",
		 GREET "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n-ERR Unsupported authentication mechanism.\r\n"
		 "-ERR APOP is not supported.\r\n-ERR Unknown command\r\n-ERR Unknown command\r\n"
		 "-ERR Syntax error\r\n-ERR Unknown command\r\n+OK Logging out.\r\n", 0);
	/* STLS: +OK, then USER is forgotten and CAPA changes; no second STLS */
	{
		struct peer p;
		struct pre_arg a = { false, true };
		peer_start(&p, pre_child, &a);
		peer_send(&p, "USER ned\r\nSTLS\r\n");
		CHECK(peer_read(&p, "+OK Begin TLS negotiation.\r\n") == 0);
		peer_send(&p, "PASS secret\r\nCAPA\r\nSTLS\r\nUSER ned\r\nPASS secret\r\n");
		shutdown(p.fd, SHUT_WR);
		peer_read(&p, NULL);
		CHECK(peer_finish(&p) == 1);
		CHECK_STR(p.out, GREET
			  "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections, use STLS\r\n"
			  "+OK Begin TLS negotiation.\r\n"
			  "-ERR No username given.\r\n"
			  "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
			  "AUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\n"
			  "IMPLEMENTATION postern\r\n.\r\n"
			  "-ERR Command not permitted when TLS active.\r\n+OK\r\n");
		peer_free(&p);
	}
	/* bad commands: the 20th closes */
	{
		char in[1024] = "";
		char want[2048] = GREET;
		for (int i = 0; i < MAX_BAD_COMMANDS; i++) {
			peer_append(in, "XYZZY\r\n");
			peer_append(want, "-ERR Unknown command\r\n");
		}
		peer_append(in, "QUIT\r\n");
		peer_append(want, "-ERR Too many bad commands.\r\n");
		pre_case(true, false, in, want, 0);
		log = peer_read_file(peer_logpath);
		CHECK(strstr(log, "bad-input: reason=too-many-errors, rip=192.0.2.7") != NULL);
		CHECK(strstr(log, "disconnect: reason=too-many-errors") != NULL);
		free(log);
	}
	/* a line too long: 511 octets before CRLF */
	{
		static char in[600];
		memset(in, 'a', sizeof(in));
		memcpy(in, "USER ", 5);
		memcpy(in + 511, "\r\nQUIT\r\n", 9);
		pre_case(true, false, in, GREET "-ERR Line too long.\r\n", 0);
		log = peer_read_file(peer_logpath);
		CHECK(strstr(log, "bad-input: reason=line-too-long, rip=192.0.2.7") != NULL);
		free(log);
		in[510] = '\r';
		in[511] = '\n';
		/* then "\nQUIT\r\n": an empty line, and QUIT */
		pre_case(true, false, in, GREET "-ERR Username too long.\r\n"
			 "-ERR Unknown command\r\n+OK Logging out.\r\n", 0);
	}
	/* a SASL line may be long; past SASL_MAX_LINE it is not */
	{
		static char in[2 * SASL_MAX_LINE + 64];
		size_t n = 0;
		memcpy(in, "AUTH PLAIN\r\n", 12);
		n = 12;
		/* at the limit (12286 octets + CRLF): read and decoded, but 12286 is no
		 * multiple of 4 */
		memset(in + n, 'A', SASL_MAX_LINE - 4);
		n += SASL_MAX_LINE - 4;
		memcpy(in + n, "==", 2);
		n += 2;
		memcpy(in + n, "\r\nAUTH PLAIN\r\n", 14);
		n += 14;
		memset(in + n, 'A', SASL_MAX_LINE - 1);
		n += SASL_MAX_LINE - 1;
		memcpy(in + n, "\r\n", 3);
		pre_case(true, false, in, GREET "+ \r\n-ERR Invalid base64 data.\r\n"
			 "+ \r\n-ERR Line too long.\r\n", 0);
		/* 12284 octets of valid base64: 9213 NULs, an empty user name */
		n = 12;
		memset(in + n, 'A', SASL_MAX_LINE - 6);
		n += SASL_MAX_LINE - 6;
		memcpy(in + n, "==\r\n", 5);
		pre_case(true, false, in, GREET "+ \r\n-ERR [AUTH] Authentication failed.\r\n", 0);
	}
	/* user names with a byte outside username_chars: the monitor (here the stub) gets the
	 * name without the password (it refuses the name and writes the auth-failed line);
	 * the answer is a wrong password's, each counts as a failed login */
	pre_case(true, false, "USER ned%x\r\nPASS secret\r\nAUTH PLAIN AC4uL3gAc2VjcmV0\r\n"
		 "QUIT\r\n",
		 GREET "+OK\r\n-ERR [AUTH] Authentication failed.\r\n"
		 "-ERR [AUTH] Authentication failed.\r\n+OK Logging out.\r\n", 0);
	pre_case(true, false, "AUTH LOGIN bmVkfw==\r\nc2VjcmV0\r\nUSER a/b\r\nPASS secret\r\n"
		 "USER ned+x\r\nPASS secret\r\nUSER ned\r\nPASS secret\r\n",
		 GREET "+ UGFzc3dvcmQ6\r\n-ERR [AUTH] Authentication failed.\r\n"
		 "+OK\r\n-ERR [AUTH] Authentication failed.\r\n"
		 "+OK\r\n-ERR [AUTH] Authentication failed.\r\n", 0);
	log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "stub-login: method=USER, user=ned%x, pass=\n") != NULL);
	CHECK(strstr(log, "stub-login: method=PLAIN, user=../x, pass=\n") != NULL);
	CHECK(strstr(log, "stub-login: method=LOGIN, user=ned\x7f, pass=\n") != NULL);
	CHECK(strstr(log, "stub-login: method=USER, user=a/b, pass=\n") != NULL);
	CHECK(strstr(log, "user=ned%x, pass=secret") == NULL &&
	      strstr(log, "user=../x, pass=secret") == NULL &&
	      strstr(log, "user=ned\x7f, pass=secret") == NULL &&
	      strstr(log, "user=a/b, pass=secret") == NULL);
	CHECK(strstr(log, "disconnect: reason=auth-failures, auth_failures=3") != NULL);
	free(log);
	/* EOF in the middle of AUTH */
	pre_case(true, false, "AUTH LOGIN\r\n", GREET "+ VXNlcm5hbWU6\r\n", 0);
	log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "disconnect: reason=eof") != NULL);
	free(log);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test", false);
	pw = getpwuid(getuid());
	if (pw == NULL) {
		fprintf(stderr, "no passwd entry for uid %u\n", (unsigned)getuid());
		return 1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_pop3_session.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	/* home is the temporary directory: mbox indexes go to home/mail/.postern */
	static struct passwd pw_copy;
	pw_copy = *pw;
	pw_copy.pw_dir = tmpdir;
	pw = &pw_copy;
	snprintf(maildir, sizeof(maildir), "%s/Maildir", tmpdir);
	snprintf(peer_logpath, sizeof(peer_logpath), "%s/log", tmpdir);
	config_defaults(&cfg, "ipop3d");
	cfg.login_fail_delay_ms = 0;   /* a refused user name waits this long */
	char loc[600];
	snprintf(loc, sizeof(loc), "maildir:%s", maildir);
	free(cfg.mail_location);
	cfg.mail_location = xstrdup(loc);
	test_ctx = SSL_CTX_new(TLS_server_method());

	test_session_basic();
	test_session_errors();
	test_session_dele();
	test_session_dele_seen();
	test_session_limits();
	test_session_vanished();
	test_session_large();
	test_session_gone();
	test_prelogin();

	SSL_CTX_free(test_ctx);
	config_free(&cfg);
	peer_rm_rf(tmpdir);
	return unit_done("pop3_session");
}
