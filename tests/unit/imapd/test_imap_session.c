/* imapd's command handling over a socketpair, each run in a forked child:
 *  - imap_prelogin_run() with the stub monitor: greeting and CAPABILITY before TLS and
 *    with a trusted network, LOGINDISABLED and [PRIVACYREQUIRED], LOGIN with quoted
 *    strings and synchronizing literals ("+" sent), AUTHENTICATE PLAIN with SASL-IR and
 *    with a continuation, [AUTHENTICATIONFAILED], [UNAVAILABLE], bad commands to BYE,
 *    a literal over the pre-login limit;
 *  - imap_session() on a temporary Maildir as the current user: SELECT, FETCH (CRLF
 *    bodies, sizes, \Seen), STORE, SEARCH, EXPUNGE, APPEND streamed from a literal, COPY
 *    with COPYUID, CREATE/LIST, states, the logout line; the same input fed in one piece
 *    and byte by byte gives the same transcript; LIST-EXTENDED, LIST-STATUS and
 *    CREATE-SPECIAL-USE the same way;
 *  - QRESYNC: a resync after another session's expunge and flag change (SELECT's
 *    parameters, UID FETCH ... VANISHED), whole and byte by byte. */
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
#include "imap.h"
#include "peer.h"
#include "stub_monitor.h"
#include "unit.h"
#include "base/util.h"

static char tmpdir[256];
static char maildir[512];
static struct config cfg;
static struct passwd *pw;

/* ---- the session ---------------------------------------------------------------- */

static int session_child(int fd, void *arg)
{
	struct conn c;
	conn_init(&c, fd, fd, IMAP_MAX_LINE_PRELOGIN, 10);
	struct server_session s = {
		.c = &c, .cfg = &cfg, .pw = pw, .user = pw->pw_name, .rip = "127.0.0.1",
	};
	int r = imap_session(&s);
	conn_flush(&c);
	conn_deinit(&c);
	return r;
}

static void test_session_basic(void)
{
	struct peer p;

	peer_make_maildir(maildir);
	int st = peer_transcript(&p, session_child, NULL,
		"a FETCH 1 FLAGS\r\n"
		"b SELECT INBOX\r\n"
		"c FETCH 1:* (UID FLAGS RFC822.SIZE)\r\n"
		"d FETCH 1 (BODY.PEEK[])\r\n"
		"e FETCH 3 (BODY[TEXT])\r\n"
		"f SEARCH UNSEEN\r\n"
		"g STORE 1 +FLAGS (\\Deleted)\r\n"
		"h UID SEARCH DELETED\r\n"
		"i EXPUNGE\r\n"
		"j APPEND INBOX {18}\r\nSubject: four\r\n\r\nx\r\n"
		"k CREATE Sent\r\n"
		"l COPY 1:2 Sent\r\n"
		"m LIST \"\" *\r\n"
		"n STATUS Sent (MESSAGES UIDNEXT)\r\n"
		"o LOGIN a b\r\n"
		"p LOGOUT\r\n");
	CHECK(st == 0);
	if (getenv("IMAP_TEST_DEBUG"))
		fputs(p.out, stderr);
	CHECK(strstr(p.out, "a BAD No mailbox selected.\r\n") != NULL);
	CHECK(strstr(p.out, "* 3 EXISTS\r\n") != NULL);
	CHECK(strstr(p.out, "b OK [READ-WRITE] SELECT completed.\r\n") != NULL);
	char want[256];
	snprintf(want, sizeof(want), "* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE %zu)\r\n",
		 peer_crlf_len(peer_msg1));
	CHECK(strstr(p.out, want) != NULL);
	snprintf(want, sizeof(want), "* 2 FETCH (UID 2 FLAGS (\\Seen) RFC822.SIZE %zu)\r\n",
		 peer_crlf_len(peer_msg2));
	CHECK(strstr(p.out, want) != NULL);
	CHECK(strstr(p.out, "* 1 FETCH (BODY[] {62}\r\nFrom: a@example.org\r\nSubject: one\r\n"
		     "\r\nline1\r\n.dot line\r\nline3\r\n)\r\n") != NULL);
	CHECK(strstr(p.out, "* 3 FETCH (BODY[TEXT] {17}\r\nno newline at end FLAGS (\\Seen \\Recent))\r\n")
	      != NULL);
	CHECK(strstr(p.out, "* SEARCH 1\r\n") != NULL);
	/* \Recent is this session's (it claimed 1 and 3 at SELECT): a flag change keeps it */
	CHECK(strstr(p.out, "* 1 FETCH (FLAGS (\\Deleted \\Recent))\r\n") != NULL);
	CHECK(strstr(p.out, "* SEARCH 1\r\nh OK") != NULL);
	CHECK(strstr(p.out, "* 1 EXPUNGE\r\ni OK Expunge completed.\r\n") != NULL);
	CHECK(strstr(p.out, "* 3 EXISTS\r\n* 2 RECENT\r\nj OK [APPENDUID ") != NULL);
	CHECK(strstr(p.out, " 4] Append completed.\r\n") != NULL);
	CHECK(strstr(p.out, "l OK [COPYUID ") != NULL && strstr(p.out, " 2:3 1:2] Copy") != NULL);
	CHECK(strstr(p.out, "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n") != NULL);
	/* the special-use folders were made at the first login */
	CHECK(strstr(p.out, "k NO [ALREADYEXISTS] ") != NULL);
	CHECK(strstr(p.out, "* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n") != NULL);
	CHECK(strstr(p.out, "* LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n") != NULL);
	CHECK(strstr(p.out, "* STATUS Sent (MESSAGES 2 UIDNEXT 3)\r\n") != NULL);
	CHECK(strstr(p.out, "o BAD Already logged in.\r\n") != NULL);
	CHECK(strstr(p.out, "* BYE Logging out.\r\np OK Logout completed.\r\n") != NULL);
	char *log = peer_read_file(peer_logpath);
	CHECK(strstr(log, "logout: user=<") != NULL && strstr(log, "reason=logout") != NULL);
	free(log);
	peer_free(&p);
}

static void blank_uidvalidity(char *out)
{
	static const char *const keys[] = { "UIDVALIDITY ", "APPENDUID " };
	for (size_t k = 0; k < 2; k++)
		for (char *p = strstr(out, keys[k]); p != NULL; p = strstr(p, keys[k]))
			for (p += strlen(keys[k]); *p >= '0' && *p <= '9'; p++)
				*p = 'N';
}

/* The same commands in one write and a byte at a time: the same answers. */
static void test_session_bytewise(void)
{
	static const char input[] =
		"a SELECT INBOX\r\n"
		"b FETCH 1:* (FLAGS BODY.PEEK[HEADER])\r\n"
		"c APPEND INBOX {18}\r\nSubject: four\r\n\r\nx\r\n"
		"d UID FETCH 4 (BODY.PEEK[])\r\n"
		"e LOGOUT\r\n";
	struct peer whole, bytes;

	peer_make_maildir(maildir);
	CHECK(peer_transcript(&whole, session_child, NULL, input) == 0);
	peer_make_maildir(maildir);
	CHECK(peer_transcript_bytewise(&bytes, session_child, NULL, input) == 0);
	/* the two folders' UIDVALIDITY may differ (a second apart): blank it out */
	blank_uidvalidity(whole.out);
	blank_uidvalidity(bytes.out);
	if (getenv("IMAP_TEST_DEBUG"))
		fprintf(stderr, "%s\n----\n%s\n", whole.out, bytes.out);
	CHECK_STR(bytes.out, whole.out);
	CHECK(strstr(whole.out, "c OK [APPENDUID ") != NULL);
	CHECK(strstr(whole.out, "+ Ready for literal data\r\n") != NULL);
	peer_free(&whole);
	peer_free(&bytes);
}

/* LIST-EXTENDED, LIST-STATUS, CREATE-SPECIAL-USE and CREATE "name/" on the Maildir, fed
 * whole and a byte at a time: the same answers, and the ones RFC 5258/5819/6154 ask. */
static void test_session_list_extended(void)
{
	static const char input[] =
		"a CREATE Fruit/Apple\r\n"
		"b SUBSCRIBE Fruit/Apple\r\n"
		"c SUBSCRIBE Gone\r\n"
		"d LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)\r\n"
		"e LIST (SUBSCRIBED) \"\" (\"G*\" \"Fruit/*\" \"*/Apple\")\r\n"
		"f LIST () \"\" \"Fr%\" RETURN (STATUS (MESSAGES) SUBSCRIBED)\r\n"
		"g LIST \"\" Fruit/% RETURN (STATUS (MESSAGES UIDNEXT))\r\n"
		"h LIST (RECURSIVEMATCH) \"\" *\r\n"
		"i LIST (SPECIAL-USE) \"\" *\r\n"
		"j CREATE Mine (USE (\\Sent))\r\n"
		"k CREATE Mine (USE (\\Flagged))\r\n"
		"l CREATE Level/\r\n"
		"m LIST \"\" Fruit\r\n"
		"n LOGOUT\r\n";
	struct peer whole, bytes;

	peer_make_maildir(maildir);
	CHECK(peer_transcript(&whole, session_child, NULL, input) == 0);
	peer_make_maildir(maildir);
	CHECK(peer_transcript_bytewise(&bytes, session_child, NULL, input) == 0);
	blank_uidvalidity(whole.out);
	blank_uidvalidity(bytes.out);
	if (getenv("IMAP_TEST_DEBUG"))
		fprintf(stderr, "%s\n----\n%s\n", whole.out, bytes.out);
	CHECK_STR(bytes.out, whole.out);
	const char *o = whole.out;
	CHECK(strstr(o, "* LIST (\\NonExistent \\HasChildren) \"/\" Fruit "
		     "(\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n") != NULL);
	CHECK(strstr(o, "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" Gone\r\n")
	      != NULL);
	CHECK(strstr(o, "d OK List completed.\r\n"
		     "* LIST (\\HasNoChildren \\Subscribed) \"/\" Fruit/Apple\r\n"
		     "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" Gone\r\n"
		     "e OK") != NULL);
	CHECK(strstr(o, "* LIST (\\NonExistent \\HasChildren) \"/\" Fruit\r\nf OK") != NULL);
	CHECK(strstr(o, "* LIST (\\HasNoChildren) \"/\" Fruit/Apple\r\n"
		     "* STATUS Fruit/Apple (MESSAGES 0 UIDNEXT 1)\r\ng OK") != NULL);
	CHECK(strstr(o, "h BAD RECURSIVEMATCH needs another selection option.\r\n") != NULL);
	CHECK(strstr(o, "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n") != NULL);
	CHECK(strstr(o, "j NO [USEATTR] another folder has this special use.\r\n") != NULL);
	CHECK(strstr(o, "k NO [USEATTR] Supported special uses") != NULL);
	CHECK(strstr(o, "l OK Create completed.\r\n") != NULL);
	CHECK(strstr(o, "* LIST (\\Noselect \\HasChildren) \"/\" Fruit\r\nm OK") != NULL);
	peer_free(&whole);
	peer_free(&bytes);
}

/* QRESYNC (RFC 7162 3.2): another session expunged message 2 and flagged 1; a client
 * resyncing from the MODSEQ it had gets VANISHED (EARLIER) and the changed flags, from
 * SELECT's parameters (known UIDs, sequence match data) and from UID FETCH ...
 * VANISHED; the same input whole and a byte at a time gives the same transcript. */
static uint64_t number_after(const char *out, const char *key)
{
	const char *p = strstr(out, key);
	return p != NULL ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void test_session_qresync(void)
{
	struct peer p, whole, bytes;

	peer_make_maildir(maildir);
	CHECK(peer_transcript(&p, session_child, NULL,
		"a SELECT INBOX\r\n"
		"b STORE 2 +FLAGS.SILENT (\\Deleted)\r\n"
		"c EXPUNGE\r\n"
		"d STORE 1 +FLAGS.SILENT (\\Flagged)\r\n"
		"e LOGOUT\r\n") == 0);
	uint64_t uv = number_after(p.out, "[UIDVALIDITY ");
	uint64_t m = number_after(p.out, "[HIGHESTMODSEQ ");
	CHECK(uv != 0 && m != 0);
	peer_free(&p);
	char input[1024];
	snprintf(input, sizeof(input),
		 "a EXAMINE INBOX (QRESYNC (%llu %llu))\r\n"
		 "b ENABLE QRESYNC\r\n"
		 "c EXAMINE INBOX (QRESYNC (%llu %llu 1:3 (1:3 1:3)))\r\n"
		 "d UID FETCH 1:3 (FLAGS) (CHANGEDSINCE %llu VANISHED)\r\n"
		 "e FETCH 1:* (FLAGS) (CHANGEDSINCE %llu VANISHED)\r\n"
		 "f EXAMINE INBOX (CONDSTORE QRESYNC (%llu %llu 3))\r\n"
		 "g EXAMINE INBOX (QRESYNC (%llu 1 1:*))\r\n"
		 "h LOGOUT\r\n",
		 (unsigned long long)uv, (unsigned long long)m, (unsigned long long)uv,
		 (unsigned long long)m, (unsigned long long)m, (unsigned long long)m,
		 (unsigned long long)uv, (unsigned long long)m, (unsigned long long)uv);
	CHECK(peer_transcript(&whole, session_child, NULL, input) == 0);
	CHECK(peer_transcript_bytewise(&bytes, session_child, NULL, input) == 0);
	if (getenv("IMAP_TEST_DEBUG"))
		fprintf(stderr, "%s\n----\n%s\n", whole.out, bytes.out);
	CHECK_STR(bytes.out, whole.out);
	const char *o = whole.out;
	CHECK(strstr(o, "a BAD ENABLE QRESYNC first.\r\n") != NULL);
	CHECK(strstr(o, "* ENABLED QRESYNC\r\nb OK") != NULL);
	/* the flag change took a MODSEQ after m */
	static const char pat[] = "* VANISHED (EARLIER) 2\r\n* 1 FETCH (UID 1 FLAGS "
				  "(\\Flagged) MODSEQ (";
	const char *c = strstr(o, pat);
	CHECK(c != NULL && strtoull(c + strlen(pat), NULL, 10) > m);
	CHECK(c != NULL && strstr(c, "))\r\nc OK [READ-ONLY]") != NULL);
	CHECK(c != NULL && strstr(c + 1, "* VANISHED (EARLIER) 2\r\n* 1 FETCH (UID 1 FLAGS "
				  "(\\Flagged) MODSEQ (") != NULL);
	CHECK(strstr(o, "))\r\nd OK Fetch completed.") != NULL);
	CHECK(strstr(o, "e BAD VANISHED") != NULL);
	/* known UIDs 3 only: neither 2's expunge nor 1's flags */
	CHECK(strstr(o, "* OK [CLOSED] Previous mailbox closed.\r\n") != NULL);
	const char *f = strstr(o, "f OK");
	const char *fstart = strstr(o, "* OK [CLOSED]");
	CHECK(f != NULL && fstart != NULL && f > fstart);
	if (f != NULL && fstart != NULL && f > fstart) {
		char *seg = strndup(fstart, (size_t)(f - fstart));
		CHECK(strstr(seg, "VANISHED") == NULL && strstr(seg, "FETCH (") == NULL);
		free(seg);
	}
	CHECK(strstr(o, "g BAD") != NULL);   /* "*" in known UIDs */
	peer_free(&whole);
	peer_free(&bytes);
}

/* ---- pre-login ------------------------------------------------------------------ */

struct pre_arg {
	bool plaintext_ok;
	bool tls_ctx;
};

static SSL_CTX *test_ctx;
static const struct imap_login_ops stub_ops = { stub_monitor_login, stub_monitor_starttls };

static int pre_child(int fd, void *varg)
{
	const struct pre_arg *a = varg;
	struct conn c;
	struct server_worker w = { 0 };

	conn_init(&c, fd, fd, IMAP_MAX_LINE_PRELOGIN, 10);
	w.c = &c;
	w.cfg = &cfg;
	w.ssl_ctx = a->tls_ctx ? test_ctx : NULL;
	w.plaintext_ok = a->plaintext_ok;
	snprintf(w.rip_str, sizeof(w.rip_str), "192.0.2.7");
	int r = imap_prelogin_run(&w, &stub_ops);
	conn_flush(&c);
	conn_deinit(&c);
	return r;
}

#define CAPS_BASE "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE"
#define LOGGED_IN "OK [CAPABILITY " IMAP_CAPABILITY_AUTH IMAP_CAPABILITY_COMPRESS \
	"] Logged in.\r\n"

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
	/* insecure, STARTTLS offered: no password may travel */
	pre_case(false, true, "a CAPABILITY\r\nb LOGIN ned secret\r\n"
		 "c AUTHENTICATE PLAIN AG5lZABzZWNyZXQ=\r\nd LOGOUT\r\n",
		 "* OK [CAPABILITY " CAPS_BASE " STARTTLS LOGINDISABLED] postern IMAP server ready\r\n"
		 "* CAPABILITY " CAPS_BASE " STARTTLS LOGINDISABLED\r\n"
		 "a OK Capability completed.\r\n"
		 "b NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
		 "connections, use STARTTLS.\r\n"
		 "c NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
		 "connections, use STARTTLS.\r\n"
		 "* BYE Logging out.\r\nd OK Logout completed.\r\n", 0);
	/* trusted network: AUTH= offered; a wrong password, then literals and "+" */
	pre_case(true, false, "a CAPABILITY\r\nb LOGIN ned wrong\r\nc LOGIN {3}\r\nned {6}\r\n"
		 "secret\r\nd NOOP\r\n",
		 "* OK [CAPABILITY " CAPS_BASE " AUTH=PLAIN AUTH=LOGIN] postern IMAP server ready\r\n"
		 "* CAPABILITY " CAPS_BASE " AUTH=PLAIN AUTH=LOGIN\r\n"
		 "a OK Capability completed.\r\n"
		 "b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
		 "+ Ready for literal data\r\n+ Ready for literal data\r\n"
		 "c " LOGGED_IN, 1);
	/* SASL-IR, and a continuation with an empty challenge */
	pre_case(true, false, "a AUTHENTICATE PLAIN AG5lZABzZWNyZXQ=\r\n",
		 "* OK [CAPABILITY " CAPS_BASE " AUTH=PLAIN AUTH=LOGIN] postern IMAP server ready\r\n"
		 "a " LOGGED_IN, 1);
	pre_case(true, false, "a AUTHENTICATE PLAIN\r\nAG5lZABzZWNyZXQ=\r\n",
		 "* OK [CAPABILITY " CAPS_BASE " AUTH=PLAIN AUTH=LOGIN] postern IMAP server ready\r\n"
		 "+ \r\na " LOGGED_IN, 1);
	/* cancelled, bad base64, temporary failure, throttled */
	pre_case(true, false, "a AUTHENTICATE PLAIN\r\n*\r\nb AUTHENTICATE PLAIN !!!!\r\n"
		 "c LOGIN ned tempfail\r\nd LOGIN ned throttled\r\n",
		 "* OK [CAPABILITY " CAPS_BASE " AUTH=PLAIN AUTH=LOGIN] postern IMAP server ready\r\n"
		 "+ \r\na BAD Authentication cancelled.\r\n"
		 "b BAD Invalid base64 data.\r\n"
		 "c NO [UNAVAILABLE] Temporary authentication failure, try again later.\r\n"
		 "d NO [UNAVAILABLE] Too many failed logins, try again later.\r\n", 0);
	/* a literal larger than a password is refused before the "+" */
	struct peer p;
	struct pre_arg a = { true, false };
	int st = peer_transcript(&p, pre_child, &a, "a LOGIN {100000}\r\nb NOOP\r\n");
	if (getenv("IMAP_TEST_DEBUG"))
		fputs(p.out, stderr);
	CHECK(st == 0);
	CHECK(strstr(p.out, "\r\n+ ") == NULL);
	CHECK(strstr(p.out, "a BAD") != NULL || strstr(p.out, "* BYE") != NULL);
	peer_free(&p);
	/* bad commands: BAD each, BYE after MAX_BAD_COMMANDS */
	char in[4096] = "";
	for (int i = 0; i < MAX_BAD_COMMANDS + 2; i++) {
		char one[32];
		snprintf(one, sizeof(one), "x%d FROB\r\n", i);
		peer_append(in, one);
	}
	st = peer_transcript(&p, pre_child, &a, in);
	CHECK(st == 0);
	CHECK(strstr(p.out, "* BYE Too many invalid commands.\r\n") != NULL);
	char last[32];
	snprintf(last, sizeof(last), "x%d ", MAX_BAD_COMMANDS);
	CHECK(strstr(p.out, last) == NULL);
	peer_free(&p);
	/* commands of the authenticated state are BAD before login */
	pre_case(false, false, "a SELECT INBOX\r\nb UID FETCH 1 FLAGS\r\n",
		 "* OK [CAPABILITY " CAPS_BASE " LOGINDISABLED] postern IMAP server ready\r\n"
		 "a BAD Unknown command or not valid before login.\r\n"
		 "b BAD Command not valid in this state.\r\n", 0);
}

/* \Recent, IMAP4rev2 and UTF8=ACCEPT in two sessions one after the other: the first
 * read-write SELECT claims the recent messages, the next one gets RECENT 0; an
 * IMAP4rev2 session answers SEARCH with ESEARCH, sends LIST and no RECENT/UNSEEN at
 * SELECT; UTF8=ACCEPT takes APPEND UTF8 (~{n}) with UTF-8 header fields. */
static void test_session_rev2(void)
{
	struct peer p;

	peer_make_maildir(maildir);
	CHECK(peer_transcript(&p, session_child, NULL,
		"a EXAMINE INBOX\r\n"
		"b SELECT INBOX\r\n"
		"c FETCH 1:* FLAGS\r\n"
		"d LOGOUT\r\n") == 0);
	CHECK(strstr(p.out, "* 2 RECENT\r\n* OK [UNSEEN 1] First unseen.\r\n") != NULL);
	CHECK(strstr(p.out, "* 1 FETCH (FLAGS (\\Recent))\r\n* 2 FETCH (FLAGS (\\Seen))\r\n"
		     "* 3 FETCH (FLAGS (\\Recent))\r\n") != NULL);
	peer_free(&p);

	CHECK(peer_transcript(&p, session_child, NULL,
		"a SELECT INBOX\r\n"
		"b ENABLE IMAP4rev2 UTF8=ACCEPT\r\n"
		"c UNSELECT\r\n"
		"d ENABLE IMAP4rev2 UTF8=ACCEPT\r\n"
		"e SELECT INBOX\r\n"
		"f SEARCH UNSEEN\r\n"
		"g STORE 1 +FLAGS (\\Flagged)\r\n"
		"h APPEND INBOX UTF8 (~{22+}\r\nSubject: \xe5\x91\xa8\r\n\r\nbody\r\n)\r\n"
		"i APPEND INBOX {22+}\r\nSubject: \xe5\x91\xa8\r\n\r\nbody\r\n\r\n"
		"j LOGOUT\r\n") == 0);
	if (getenv("IMAP_TEST_DEBUG"))
		fputs(p.out, stderr);
	/* the first session claimed them all; ENABLE is for the authenticated state */
	CHECK(strstr(p.out, "* 3 EXISTS\r\n* 0 RECENT\r\n") != NULL);
	CHECK(strstr(p.out, "b BAD No mailbox selected.\r\n") != NULL);
	CHECK(strstr(p.out, "* ENABLED IMAP4rev2 UTF8=ACCEPT\r\nd OK") != NULL);
	CHECK(strstr(p.out, "* 3 EXISTS\r\n* LIST () \"/\" INBOX\r\n* OK [UIDVALIDITY ") != NULL);
	CHECK(strstr(p.out, "* ESEARCH (TAG \"f\") ALL 1,3\r\n") != NULL);
	CHECK(strstr(p.out, "* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n") != NULL);
	CHECK(strstr(p.out, "* 4 EXISTS\r\nh OK [APPENDUID ") != NULL);
	/* UTF8=ACCEPT is on: a plain literal with 8-bit header fields is taken too */
	CHECK(strstr(p.out, "* 5 EXISTS\r\ni OK [APPENDUID ") != NULL);
	peer_free(&p);
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
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_imap_session.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	static struct passwd pw_copy;
	pw_copy = *pw;
	pw_copy.pw_dir = tmpdir;
	pw = &pw_copy;
	snprintf(maildir, sizeof(maildir), "%s/Maildir", tmpdir);
	snprintf(peer_logpath, sizeof(peer_logpath), "%s/log", tmpdir);
	config_defaults(&cfg, "imapd");
	cfg.login_fail_delay_ms = 0;
	char loc[600];
	snprintf(loc, sizeof(loc), "maildir:%s", maildir);
	free(cfg.mail_location);
	cfg.mail_location = xstrdup(loc);
	test_ctx = SSL_CTX_new(TLS_server_method());

	test_prelogin();
	test_session_basic();
	test_session_rev2();
	test_session_bytewise();
	test_session_list_extended();
	test_session_qresync();

	SSL_CTX_free(test_ctx);
	config_free(&cfg);
	peer_rm_rf(tmpdir);
	return unit_done("imap_session");
}
