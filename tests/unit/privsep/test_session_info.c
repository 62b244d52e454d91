/* session.c's session_info <-> MSG_START_SESSION, and server.c's root-file check. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "privsep/server_int.h"
#include "unit.h"

static struct msg m, d;

static void test_roundtrip(void)
{
	struct session_info a = {
		.user = "ned", .rip = "192.0.2.7", .lip = "192.0.2.1", .rport = 51234,
		.lport = 995, .tls_version = "TLSv1.3", .tls_cipher = "TLS_AES_256_GCM_SHA384",
		.auth_mech = "PLAIN", .session_id = "0123456789ab",
		.helo = "client.example", .esmtp = true,
	}, b;
	const char *err;

	CHECK(session_info_to_msg(&a, &m) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(session_info_from_msg(&d, &b) == 0);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);

	/* no login (SERVER_ID_NONE): empty user and mechanism travel as empty */
	struct session_info e = { .rip = "::1", .session_id = "ffffffffffff" };
	CHECK(session_info_to_msg(&e, &m) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(session_info_from_msg(&d, &b) == 0);
	CHECK(b.user[0] == '\0' && b.auth_mech[0] == '\0');
	CHECK(b.helo[0] == '\0' && !b.esmtp);
	CHECK_STR(b.rip, "::1");
}

static void test_invalid(void)
{
	struct session_info b;
	const char *err;

	/* another type */
	msg_init(&m, MSG_LOG);
	CHECK(msg_add_u8(&m, MSG_LOG_LEVEL, 1) == 0);
	CHECK(msg_add_str(&m, MSG_LOG_EVENT, "x") == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(session_info_from_msg(&d, &b) == -1);
	/* a port past 65535 */
	msg_init(&m, MSG_START_SESSION);
	CHECK(msg_add_str(&m, MSG_SESSION_USER, "ned") == 0);
	CHECK(msg_add_str(&m, MSG_SESSION_RIP, "192.0.2.7") == 0);
	CHECK(msg_add_u32(&m, MSG_SESSION_RPORT, 65536) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(session_info_from_msg(&d, &b) == -1);
	/* an EHLO flag that is neither 0 nor 1 */
	msg_init(&m, MSG_START_SESSION);
	CHECK(msg_add_str(&m, MSG_SESSION_USER, "") == 0);
	CHECK(msg_add_str(&m, MSG_SESSION_RIP, "192.0.2.7") == 0);
	CHECK(msg_add_u8(&m, MSG_SESSION_ESMTP, 2) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(session_info_from_msg(&d, &b) == -1);
	/* a port of the wrong size */
	msg_init(&m, MSG_START_SESSION);
	CHECK(msg_add_str(&m, MSG_SESSION_USER, "ned") == 0);
	CHECK(msg_add_str(&m, MSG_SESSION_RIP, "192.0.2.7") == 0);
	CHECK(msg_add_u8(&m, MSG_SESSION_LPORT, 1) == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(session_info_from_msg(&d, &b) == -1);
	/* a session id longer than SESSION_ID_LEN */
	msg_init(&m, MSG_START_SESSION);
	CHECK(msg_add_str(&m, MSG_SESSION_USER, "ned") == 0);
	CHECK(msg_add_str(&m, MSG_SESSION_RIP, "192.0.2.7") == 0);
	CHECK(msg_add_str(&m, MSG_SESSION_ID, "0123456789abc") == 0);
	CHECK(msg_parse(&d, m.buf, m.len, &err) == 0);
	CHECK(session_info_from_msg(&d, &b) == -1);
}

/* server_check_root_file(): needs root to make root-owned files of every kind. */
static void test_root_file(void)
{
	char dir[] = "/tmp/postern-unit-XXXXXX", f[64], sub[64], sf[80], bad[4096];
	const char *err;

	if (geteuid() != 0) {
		printf("test_session_info: not root, root-file cases skipped\n");
		return;
	}
	CHECK(mkdtemp(dir) != NULL);
	CHECK(chmod(dir, 0755) == 0);
	snprintf(f, sizeof(f), "%s/conf", dir);
	int fd = open(f, O_WRONLY | O_CREAT, 0600);
	CHECK(fd != -1);
	close(fd);
	CHECK(server_check_root_file(f, false, bad, sizeof(bad), &err) == 0);
	CHECK(chmod(f, 0620) == 0);
	CHECK(server_check_root_file(f, false, bad, sizeof(bad), &err) == -1);
	CHECK_STR(bad, f);
	CHECK_STR(err, "writable by group or others");
	CHECK(chmod(f, 0602) == 0);
	CHECK(server_check_root_file(f, false, bad, sizeof(bad), &err) == -1);
	CHECK(chmod(f, 0644) == 0);
	CHECK(chown(f, 1, 1) == 0);
	CHECK(server_check_root_file(f, false, bad, sizeof(bad), &err) == -1);
	CHECK_STR(err, "not owned by root");
	CHECK(chown(f, 0, 0) == 0);
	/* the directory above */
	CHECK(chmod(dir, 0775) == 0);
	CHECK(server_check_root_file(f, false, bad, sizeof(bad), &err) == -1);
	CHECK_STR(bad, dir);
	CHECK_STR(err, "directory writable by group or others");
	/* sticky and root's, like /tmp: fine */
	CHECK(chmod(dir, 01777) == 0);
	CHECK(server_check_root_file(f, false, bad, sizeof(bad), &err) == 0);
	CHECK(chmod(dir, 0755) == 0);
	/* missing: fine only when allowed, and its directories still count */
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(sf, sizeof(sf), "%s/missing", sub);
	CHECK(server_check_root_file(sf, true, bad, sizeof(bad), &err) == 0);
	CHECK(server_check_root_file(sf, false, bad, sizeof(bad), &err) == -1);
	CHECK(mkdir(sub, 0777) == 0);
	CHECK(chmod(sub, 0777) == 0);
	CHECK(server_check_root_file(sf, true, bad, sizeof(bad), &err) == -1);
	CHECK_STR(bad, sub);
	/* not a regular file */
	CHECK(server_check_root_file(dir, false, bad, sizeof(bad), &err) == -1);
	CHECK_STR(err, "not a regular file");
	/* relative */
	CHECK(server_check_root_file("conf", false, bad, sizeof(bad), &err) == -1);
	rmdir(sub);
	unlink(f);
	rmdir(dir);
}

int main(void)
{
	test_roundtrip();
	test_invalid();
	test_root_file();
	return unit_done("test_session_info");
}
