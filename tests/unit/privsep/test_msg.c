/* msg.c: the typed messages root parses as hostile. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "privsep/msg.h"
#include "unit.h"

static struct msg m, d;

static void build_auth(void)
{
	msg_init(&m, MSG_AUTH);
	CHECK(msg_add_str(&m, MSG_AUTH_MECH, "PLAIN") == 0);
	CHECK(msg_add_str(&m, MSG_AUTH_AUTHCID, "ned") == 0);
	CHECK(msg_add_str(&m, MSG_AUTH_SECRET, "s3cret pass") == 0);
	CHECK(msg_add_str(&m, MSG_AUTH_TLS_VERSION, "TLSv1.3") == 0);
}

static void test_roundtrip(void)
{
	const char *err = NULL;
	char s[64];
	uint8_t u8;
	uint32_t u32;

	build_auth();
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(d.type == MSG_AUTH && d.nfields == 4);
	CHECK(msg_get_str(&d, MSG_AUTH_MECH, s, sizeof(s)) == 0);
	CHECK_STR(s, "PLAIN");
	CHECK(msg_get_str(&d, MSG_AUTH_SECRET, s, sizeof(s)) == 0);
	CHECK_STR(s, "s3cret pass");
	CHECK(msg_get_str(&d, MSG_AUTH_AUTHZID, s, sizeof(s)) == 0 && s[0] == '\0');
	CHECK(msg_get_str(&d, MSG_AUTH_SECRET, s, 5) == -1);     /* does not fit */
	CHECK(msg_get_u8(&d, MSG_AUTH_MECH, &u8) == -1);          /* wrong size */

	msg_init(&m, MSG_START_SESSION);
	CHECK(msg_add_str(&m, MSG_SESSION_USER, "ned") == 0);
	CHECK(msg_add_str(&m, MSG_SESSION_RIP, "192.0.2.7") == 0);
	CHECK(msg_add_u32(&m, MSG_SESSION_LPORT, 995) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(msg_get_u32(&d, MSG_SESSION_LPORT, &u32) == 0 && u32 == 995);
	CHECK(msg_get_u32(&d, MSG_SESSION_RPORT, &u32) == -1);    /* absent */
}

/* Every way a hostile sender can bend a frame is refused. */
static void test_hostile(void)
{
	const char *err = NULL;

	build_auth();
	/* every truncation */
	for (size_t i = 0; i < m.len; i++) {
		if (i == 2 + 3 + 5 + 3 + 3 || i == 2 + 3 + 5 + 3 + 3 + 3 + 11)
			continue;   /* ends right after a field: only optional ones missing */
		CHECK(msg_parse(&d, m.buf, i, &err) == -1);
	}
	unsigned char b[MSG_MAX];
	memcpy(b, m.buf, m.len);
	b[0] = 2;                                          /* version */
	CHECK(msg_parse(&d, b, m.len, &err) == -1);
	memcpy(b, m.buf, m.len);
	b[1] = MSG_TYPE_END;                               /* type */
	CHECK(msg_parse(&d, b, m.len, &err) == -1);
	b[1] = 0;
	CHECK(msg_parse(&d, b, m.len, &err) == -1);
	memcpy(b, m.buf, m.len);
	b[2 + 3 + 5 + 3] = 'x';                            /* NUL-free still */
	CHECK(msg_parse(&d, b, m.len, &err) == 0);
	b[2 + 3 + 5 + 3 + 1] = '\0';                       /* NUL inside authcid */
	CHECK(msg_parse(&d, b, m.len, &err) == -1);

	/* a field another type owns, a repeated field, a missing required one */
	msg_init(&m, MSG_AUTH);
	msg_add_str(&m, MSG_AUTH_MECH, "PLAIN");
	msg_add_str(&m, MSG_AUTH_AUTHCID, "ned");
	msg_add_str(&m, 9, "x");
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);
	msg_init(&m, MSG_AUTH);
	msg_add_str(&m, MSG_AUTH_MECH, "PLAIN");
	msg_add_str(&m, MSG_AUTH_AUTHCID, "ned");
	msg_add_str(&m, MSG_AUTH_AUTHCID, "root");
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);
	msg_init(&m, MSG_AUTH);
	msg_add_str(&m, MSG_AUTH_MECH, "PLAIN");
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);

	/* over-long values: the longest allowed passes, one more byte does not */
	char *big = malloc(AUTH_MAX_PASS + 2);
	memset(big, 'p', AUTH_MAX_PASS + 1);
	big[AUTH_MAX_PASS + 1] = '\0';
	msg_init(&m, MSG_AUTH);
	msg_add_str(&m, MSG_AUTH_MECH, "PLAIN");
	msg_add_str(&m, MSG_AUTH_AUTHCID, "ned");
	msg_add(&m, MSG_AUTH_SECRET, big, AUTH_MAX_PASS);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	msg_init(&m, MSG_AUTH);
	msg_add_str(&m, MSG_AUTH_MECH, "PLAIN");
	msg_add_str(&m, MSG_AUTH_AUTHCID, "ned");
	msg_add(&m, MSG_AUTH_SECRET, big, AUTH_MAX_PASS + 1);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);
	free(big);
	/* a field length pointing past the end */
	msg_init(&m, MSG_LOG);
	msg_add_u8(&m, MSG_LOG_LEVEL, 2);
	msg_add_str(&m, MSG_LOG_EVENT, "tls");
	m.buf[m.len - 4] = 0xff;
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);
	/* building refuses what cannot fit */
	msg_init(&m, MSG_LOG);
	static char huge[MSG_MAX];
	CHECK(msg_add(&m, MSG_LOG_TEXT, huge, sizeof(huge)) == -1);
}

/* Over a SOCK_SEQPACKET pair: a frame is whole; a bent length prefix, a short packet
 * and an over-long one are refused; EOF reads as 0. */
static void test_socket(void)
{
	int sv[2];
	const char *err = NULL;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	build_auth();
	CHECK(msg_send(sv[0], &m) == 0);
	CHECK(msg_recv(sv[1], &d, 1000, &err) == 1);
	CHECK(d.type == MSG_AUTH && d.nfields == 4);

	unsigned char frame[4 + MSG_MAX + 64];
	uint32_t n = htonl((uint32_t)m.len + 1);
	memcpy(frame, &n, 4);
	memcpy(frame + 4, m.buf, m.len);
	CHECK(send(sv[0], frame, m.len + 4, 0) == (ssize_t)(m.len + 4));
	CHECK(msg_recv(sv[1], &d, 1000, &err) == -1);
	CHECK(send(sv[0], "ab", 2, 0) == 2);
	CHECK(msg_recv(sv[1], &d, 1000, &err) == -1);
	memset(frame, 0, sizeof(frame));
	n = htonl(MSG_MAX + 60);
	memcpy(frame, &n, 4);
	CHECK(send(sv[0], frame, sizeof(frame), 0) == (ssize_t)sizeof(frame));
	CHECK(msg_recv(sv[1], &d, 1000, &err) == -1);
	/* nothing sent: the timeout ends the wait */
	CHECK(msg_recv(sv[1], &d, 50, &err) == -1);
	CHECK_STR(err, "timeout");
	close(sv[0]);
	CHECK(msg_recv(sv[1], &d, 1000, &err) == 0);
	close(sv[1]);
}

/* The log sinks of the worker and the session: event word, text, fallback, cuts. */
static void test_log_line(void)
{
	const char *err = NULL;
	char ev[64], text[2048];
	uint8_t lvl;

	CHECK(msg_log_line(&m, 2, "tls: version=TLSv1.3, rip=192.0.2.7", "worker") == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0 && d.type == MSG_LOG);
	CHECK(msg_get_u8(&d, MSG_LOG_LEVEL, &lvl) == 0 && lvl == 2);
	CHECK(msg_get_str(&d, MSG_LOG_EVENT, ev, sizeof(ev)) == 0);
	CHECK_STR(ev, "tls");
	CHECK(msg_get_str(&d, MSG_LOG_TEXT, text, sizeof(text)) == 0);
	CHECK_STR(text, "version=TLSv1.3, rip=192.0.2.7");
	/* no "event: ", or an event word too long for the schema: the fallback, whole line */
	CHECK(msg_log_line(&m, 0, "cannot drop privileges", "worker") == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	msg_get_str(&d, MSG_LOG_EVENT, ev, sizeof(ev));
	msg_get_str(&d, MSG_LOG_TEXT, text, sizeof(text));
	CHECK_STR(ev, "worker");
	CHECK_STR(text, "cannot drop privileges");
	char longev[MSG_LOG_EVENT_MAX + 8];
	memset(longev, 'e', MSG_LOG_EVENT_MAX + 1);
	memcpy(longev + MSG_LOG_EVENT_MAX + 1, ": x", 4);
	CHECK(msg_log_line(&m, 1, longev, "session") == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	msg_get_str(&d, MSG_LOG_EVENT, ev, sizeof(ev));
	msg_get_str(&d, MSG_LOG_TEXT, text, sizeof(text));
	CHECK_STR(ev, "session");
	CHECK_STR(text, longev);
	longev[MSG_LOG_EVENT_MAX] = ':';   /* exactly MSG_LOG_EVENT_MAX bytes of event */
	longev[MSG_LOG_EVENT_MAX + 1] = ' ';
	CHECK(msg_log_line(&m, 1, longev, "session") == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	msg_get_str(&d, MSG_LOG_EVENT, ev, sizeof(ev));
	CHECK(strlen(ev) == MSG_LOG_EVENT_MAX);
	/* a text longer than the schema allows is cut, never refused */
	static char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "bad-input: ", 11);
	CHECK(msg_log_line(&m, 2, big, "worker") == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(msg_get(&d, MSG_LOG_TEXT)->len == MSG_LOG_TEXT_MAX);
}

/* smtp-submit's messages: MSG_OPEN_SESSION and MSG_DELIVER, HELO in MSG_AUTH. */
static void test_smtp_messages(void)
{
	const char *err = NULL;
	char s[300];
	uint8_t u8;

	build_auth();
	CHECK(msg_add_str(&m, MSG_AUTH_HELO, "client.example") == 0);
	CHECK(msg_add_u8(&m, MSG_AUTH_ESMTP, 1) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(msg_get_str(&d, MSG_AUTH_HELO, s, sizeof(s)) == 0);
	CHECK_STR(s, "client.example");
	CHECK(msg_get_u8(&d, MSG_AUTH_ESMTP, &u8) == 0 && u8 == 1);

	/* a session start without anything: every field is optional */
	msg_init(&m, MSG_OPEN_SESSION);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(d.type == MSG_OPEN_SESSION && d.nfields == 0);
	/* a HELO of 255 octets passes, 256 do not; no secret may ride along */
	char helo[257];
	memset(helo, 'a', sizeof(helo));
	helo[255] = '\0';
	msg_init(&m, MSG_OPEN_SESSION);
	CHECK(msg_add_str(&m, MSG_OPEN_HELO, helo) == 0);
	CHECK(msg_add_u8(&m, MSG_OPEN_ESMTP, 0) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	helo[255] = 'a';
	helo[256] = '\0';
	msg_init(&m, MSG_OPEN_SESSION);
	CHECK(msg_add_str(&m, MSG_OPEN_HELO, helo) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);
	msg_init(&m, MSG_OPEN_SESSION);
	CHECK(msg_add_str(&m, MSG_AUTH_SECRET, "pass") == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);
	msg_init(&m, MSG_OPEN_SESSION);
	CHECK(msg_add(&m, MSG_OPEN_HELO, "a\0b", 3) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);

	/* MSG_DELIVER: the id is required, bounded, text */
	msg_init(&m, MSG_DELIVER);
	CHECK(msg_add_str(&m, MSG_DELIVER_ID, "0123456789AB") == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(msg_get_str(&d, MSG_DELIVER_ID, s, sizeof(s)) == 0);
	CHECK_STR(s, "0123456789AB");
	msg_init(&m, MSG_DELIVER);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);
	msg_init(&m, MSG_DELIVER);
	CHECK(msg_add(&m, MSG_DELIVER_ID, helo, MSG_QUEUE_ID_MAX + 1) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);
	msg_init(&m, MSG_DELIVER);
	CHECK(msg_add(&m, MSG_DELIVER_ID, "0123\0", 5) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == -1);
}

int main(void)
{
	test_smtp_messages();
	test_log_line();
	test_roundtrip();
	test_hostile();
	test_socket();
	return unit_done("test_msg");
}
