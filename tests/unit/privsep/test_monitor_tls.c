/* The monitor as a signing oracle and session store for a hostile worker: the real
 * monitor_main() in a child (which forks its key process), with a real key, and this
 * process playing the worker on the ctl socket.  Checks: one key operation per connection and no second; a request TLS does
 * not need cuts the worker off; two session lookups and no third; a kept session is
 * handed to another connection once; a message type the worker may not send cuts it off. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "base/log.h"
#include "base/util.h"
#include "privsep/keyop.h"
#include "privsep/msg.h"
#include "privsep/server_int.h"
#include "privsep/tls.h"
#include "unit.h"

static char dir[64];
static char cert[128], key[128], state[128], logpath[128];

static const struct server_proto proto = { .name = "test", .pam_service = "test" };

static void cfg_fill(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->tls_cert = cert;
	cfg->tls_key = key;
	cfg->state_dir = state;
	cfg->tls_ticket_rotate = 3600;
}

/* A monitor for one "connection"; *fd_r is the worker's end of ctl. */
static pid_t monitor_start(int *fd_r)
{
	int ctl[2], data[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, data) == -1)
		exit(1);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		static struct server_conn sc;
		const char *err = NULL;
		close(ctl[0]);
		close(data[0]);
		sc.p = &proto;
		cfg_fill(&sc.cfg);
		memcpy(sc.rip_str, "192.0.2.9", sizeof("192.0.2.9"));
		sc.ssl_ctx = tls_ctx_new(&sc.cfg, &err);   /* the monitor's: no private key */
		if (sc.ssl_ctx == NULL)
			_exit(9);
		sc.conn_slot = -1;                      /* no connection-cap place */
		monitor_main(&sc, ctl[1], data[1], 1, -1);   /* pid 1: no worker of its own */
	}
	close(ctl[1]);
	close(data[0]);
	close(data[1]);
	*fd_r = ctl[0];
	return pid;
}

static void monitor_end(pid_t pid, int fd)
{
	int st = 0;
	close(fd);
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* 1 a reply, 0 the monitor closed (it stopped serving us). */
static int roundtrip(int fd, const struct msg *req, struct msg *rep)
{
	const char *err;
	CHECK(msg_send(fd, req) == 0);
	int r = msg_recv(fd, rep, 5000, &err);
	CHECK(r >= 0);
	return r;
}

static void key_op(struct msg *m, int nid, size_t dlen)
{
	unsigned char dg[64];
	memset(dg, 0x3c, sizeof(dg));
	msg_init(m, MSG_KEY_OP);
	CHECK(msg_add_u8(m, MSG_KEY_OP_KIND, KEYOP_ECDSA_SIGN) == 0);
	CHECK(msg_add_u32(m, MSG_KEY_OP_ARG, (uint32_t)nid) == 0);
	CHECK(msg_add(m, MSG_KEY_OP_DATA, dg, dlen) == 0);
}

static bool log_has(const char *what)
{
	char buf[16384];
	FILE *f = fopen(logpath, "r");
	size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f != NULL)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

static void test_one_signature(void)
{
	struct msg req, rep;
	int fd;
	uint8_t st;

	pid_t pid = monitor_start(&fd);
	key_op(&req, NID_sha256, 32);
	CHECK(roundtrip(fd, &req, &rep) == 1);
	CHECK(rep.type == MSG_KEY_OP_REPLY);
	CHECK(msg_get_u8(&rep, MSG_KEY_OP_REPLY_STATUS, &st) == 0 && st == 0);
	const struct msg_field *sig = msg_get(&rep, MSG_KEY_OP_REPLY_DATA);
	CHECK(sig != NULL && sig->len > 60 && sig->len <= 72);
	/* it is a signature by the certificate's key */
	FILE *f = fopen(cert, "r");
	X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	EVP_PKEY_CTX *c = x != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, X509_get0_pubkey(x), NULL) : NULL;
	const struct msg_field *d = msg_get(&req, MSG_KEY_OP_DATA);
	CHECK(c != NULL && EVP_PKEY_verify_init(c) == 1 &&
	      EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 && sig != NULL &&
	      EVP_PKEY_verify(c, sig->data, sig->len, d->data, d->len) == 1);
	EVP_PKEY_CTX_free(c);
	X509_free(x);
	/* a second one on the same connection: the worker is cut off, no signature */
	CHECK(roundtrip(fd, &req, &rep) == 0);
	monitor_end(pid, fd);
	CHECK(log_has("too many messages from worker, type=4"));
}

static void test_hostile_requests(void)
{
	struct msg req, rep;
	int fd;

	/* SHA-1, a digest one byte too long: cut off at once, nothing signed */
	const struct { int nid; size_t len; } bad[] = { { NID_sha1, 20 }, { NID_sha256, 33 } };
	for (size_t i = 0; i < 2; i++) {
		pid_t pid = monitor_start(&fd);
		key_op(&req, bad[i].nid, bad[i].len);
		CHECK(roundtrip(fd, &req, &rep) == 0);
		monitor_end(pid, fd);
	}
	CHECK(log_has("key operation refused, error=digest not SHA-256/384/512"));
	/* a type only the monitor sends */
	pid_t pid = monitor_start(&fd);
	msg_init(&req, MSG_KEY_OP_REPLY);
	CHECK(msg_add_u8(&req, MSG_KEY_OP_REPLY_STATUS, 0) == 0);
	CHECK(roundtrip(fd, &req, &rep) == 0);
	monitor_end(pid, fd);
	CHECK(log_has("type=5"));
}

static void test_sessions(void)
{
	struct msg req, rep;
	unsigned char id[32], data[300];
	int fd;

	memset(id, 0xa5, sizeof(id));
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)i;
	/* connection 1 hands over its session (no answer) */
	pid_t pid = monitor_start(&fd);
	msg_init(&req, MSG_TLS_SESS_PUT);
	CHECK(msg_add(&req, MSG_TLS_SESS_ID, id, 32) == 0);
	CHECK(msg_add(&req, MSG_TLS_SESS_DATA, data, sizeof(data)) == 0);
	CHECK(msg_send(fd, &req) == 0);
	/* a second PUT: cut off (one ticket per connection) */
	CHECK(roundtrip(fd, &req, &rep) == 0);
	monitor_end(pid, fd);

	/* connection 2: an unknown id, then the kept one (once), then no third lookup */
	pid = monitor_start(&fd);
	msg_init(&req, MSG_TLS_SESS_GET);
	id[0] ^= 1;
	CHECK(msg_add(&req, MSG_TLS_SESS_ID, id, 32) == 0);
	CHECK(roundtrip(fd, &req, &rep) == 1);
	CHECK(rep.type == MSG_TLS_SESS_REPLY && msg_get(&rep, MSG_TLS_SESS_DATA) == NULL);
	id[0] ^= 1;
	msg_init(&req, MSG_TLS_SESS_GET);
	CHECK(msg_add(&req, MSG_TLS_SESS_ID, id, 32) == 0);
	CHECK(roundtrip(fd, &req, &rep) == 1);
	const struct msg_field *f = msg_get(&rep, MSG_TLS_SESS_DATA);
	CHECK(f != NULL && f->len == sizeof(data) && memcmp(f->data, data, sizeof(data)) == 0);
	CHECK(roundtrip(fd, &req, &rep) == 0);
	monitor_end(pid, fd);

	/* connection 3: it was taken */
	pid = monitor_start(&fd);
	CHECK(roundtrip(fd, &req, &rep) == 1);
	CHECK(rep.type == MSG_TLS_SESS_REPLY && msg_get(&rep, MSG_TLS_SESS_DATA) == NULL);
	monitor_end(pid, fd);
}

int main(void)
{
	const char *error;

	signal(SIGPIPE, SIG_IGN);
	util_snprintf(dir, sizeof(dir), "/tmp/postern-montls-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	util_snprintf(cert, sizeof(cert), "%s/ec.crt", dir);
	util_snprintf(key, sizeof(key), "%s/ec.key", dir);
	util_snprintf(state, sizeof(state), "%s/state", dir);
	util_snprintf(logpath, sizeof(logpath), "%s/test.log", dir);
	char cmd[512];
	util_snprintf(cmd, sizeof(cmd),
		      "cd %s && mkdir -m 0700 state && openssl req -x509 -newkey ec "
		      "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -out ec.crt -days 30 "
		      "-subj /CN=localhost >openssl.out 2>&1", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot make a certificate with the openssl command\n");
		return 1;
	}
	log_init("test_monitor_tls", false);
	if (log_open(logpath, false, &error) < 0)
		return 1;
	test_one_signature();
	test_hostile_requests();
	test_sessions();
	int rc = unit_done("test_monitor_tls");
	if (rc == 0) {
		util_snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			rc = 1;
	} else {
		fprintf(stderr, "kept %s\n", dir);
	}
	return rc;
}
