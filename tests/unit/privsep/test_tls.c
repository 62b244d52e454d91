/* tls + conn over real handshakes: throwaway ECDSA and RSA certificates made with the
 * openssl command, a server context per connection as the monitor builds it, a client
 * forked onto the other end of a socketpair.  Checks: TLS 1.3 and 1.2, TLS 1.1 refused,
 * the chain sent, pipelining through SSL_pending, plaintext injected before STLS
 * dropped, the ticket key file (created 0600, rotated, replaced when unsafe), resumption
 * by a second context built from the same key file (the cross-process case), no shared
 * tickets when state_dir is unusable, key/cert mismatch, tls_cert_check. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include "base/config.h"
#include "base/conn.h"
#include "base/plimits.h"
#include "base/log.h"
#include "privsep/tls.h"
#include "base/util.h"
#include "unit.h"

static char dir[64];

/* dir/name; the same name always gives the same buffer, which stays valid. */
static const char *tpath(const char *name)
{
	static struct {
		char name[64];
		char path[256];
	} tab[64];
	static size_t used;
	for (size_t i = 0; i < used; i++)
		if (strcmp(tab[i].name, name) == 0)
			return tab[i].path;
	if (used == 64 || util_snprintf(tab[used].name, sizeof(tab[0].name), "%s", name) < 0 ||
	    util_snprintf(tab[used].path, sizeof(tab[0].path), "%s/%s", dir, name) < 0)
		exit(1);
	return tab[used++].path;
}

static int run(const char *cmd)
{
	char full[2048];
	if (util_snprintf(full, sizeof(full), "cd %s && (%s) >>openssl.out 2>&1", dir, cmd) < 0)
		exit(1);
	int r = system(full);
	if (r != 0)
		fprintf(stderr, "command failed (%d): %s\n", r, cmd);
	return r;
}

static bool make_certs(void)
{
	return run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		   "-keyout ec.key -out ec.crt -days 30 -subj /CN=localhost") == 0 &&
		run("openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.crt "
		    "-days 400 -subj /CN=rsa.localhost") == 0 &&
		run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes "
		    "-keyout ca.key -out ca.crt -days 30 -subj '/CN=Postern Test CA'") == 0 &&
		run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout leaf.key -out leaf.csr -subj /CN=leaf.localhost") == 0 &&
		run("openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		    "-out leaf.crt -days 30") == 0 &&
		run("cat leaf.crt ca.crt > full.crt") == 0 &&
		run("openssl req -new -key ec.key -out old.csr -subj /CN=expired") == 0 &&
		run("openssl x509 -req -in old.csr -signkey ec.key -days -1 -out old.crt") == 0 &&
		run("openssl pkey -in ec.key -aes256 -passout pass:secret -out enc.key") == 0 &&
		run("mkdir -m 0700 state") == 0;
}

static void cfg_set(struct config *cfg, const char *cert, const char *key, const char *chain,
		    const char *state)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->tls_cert = (char *)cert;
	cfg->tls_key = (char *)key;
	cfg->tls_chain = (char *)chain;
	cfg->state_dir = (char *)state;
	cfg->tls_ticket_rotate = 3600;
}

/* ---- the client, in a child process ---- */

struct cli {
	int min_version, max_version;   /* 0: library default */
	const char *ciphers;            /* TLS 1.2 list */
	const char *pre;                /* plaintext first; then wait for "+OK\r\n" */
	const char *send;               /* over TLS after the server's greeting */
	int expect_chain;               /* certificates the server sends; 0: not checked */
	const char *sess_in, *sess_out; /* PEM session files */
	int expect_reuse;               /* 1, 0, or -1: not checked */
};

static int cli_readline(SSL *ssl, char *buf, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		size_t got;
		if (SSL_read_ex(ssl, buf + n, 1, &got) != 1)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return 0;
}

static int cli_main(int fd, const struct cli *o)
{
	char buf[256];

	if (o->pre != NULL) {
		if (util_write_all(fd, o->pre, strlen(o->pre)) < 0)
			return 2;
		size_t n = 0;
		while (n < 5 && read(fd, buf + n, 1) == 1)
			n++;
		if (n != 5 || memcmp(buf, "+OK\r\n", 5) != 0)
			return 3;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return 4;
	if (o->min_version != 0 && o->min_version < TLS1_2_VERSION) {
		SSL_CTX_set_security_level(ctx, 0);
		if (SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") != 1)
			return 5;
	}
	if ((o->min_version != 0 && SSL_CTX_set_min_proto_version(ctx, o->min_version) != 1) ||
	    (o->max_version != 0 && SSL_CTX_set_max_proto_version(ctx, o->max_version) != 1) ||
	    (o->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1))
		return 5;
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
		return 6;
	if (o->sess_in != NULL) {
		FILE *f = fopen(o->sess_in, "r");
		SSL_SESSION *sess = f != NULL ? PEM_read_SSL_SESSION(f, NULL, NULL, NULL) : NULL;
		if (f != NULL)
			fclose(f);
		if (sess == NULL || SSL_set_session(ssl, sess) != 1)
			return 7;
		SSL_SESSION_free(sess);
	}
	if (SSL_connect(ssl) != 1)
		return 10;
	if (o->expect_chain > 0) {
		STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
		if (chain == NULL || sk_X509_num(chain) != o->expect_chain)
			return 11;
	}
	if (o->expect_reuse >= 0 && (SSL_session_reused(ssl) == 1) != (o->expect_reuse == 1))
		return 12;
	if (cli_readline(ssl, buf, sizeof(buf)) < 0 || strcmp(buf, "hello\r\n") != 0)
		return 13;
	if (o->sess_out != NULL) {
		SSL_SESSION *sess = SSL_get1_session(ssl);
		FILE *f = fopen(o->sess_out, "w");
		if (sess == NULL || f == NULL || PEM_write_SSL_SESSION(f, sess) != 1)
			return 14;
		fclose(f);
		SSL_SESSION_free(sess);
	}
	if (o->send != NULL) {
		size_t done;
		if (SSL_write_ex(ssl, o->send, strlen(o->send), &done) != 1)
			return 15;
	}
	SSL_shutdown(ssl);
	while (SSL_read_ex(ssl, buf, sizeof(buf), &(size_t){ 0 }) == 1)
		;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return 0;
}

/* ---- the server side, in this process, as the worker does it ---- */

struct srv {
	int rc;
	const char *error;
	char version[32], cipher[64];
	bool resumed;
	int nlines;
	char lines[4][600];
	bool has_input[4];
	int client_status;
	uint64_t ms;
};

static void serve(SSL_CTX *ctx, const struct cli *o, struct srv *r)
{
	int sv[2];
	struct conn c;
	const char *line;
	size_t len;

	memset(r, 0, sizeof(*r));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		exit(1);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(cli_main(sv[1], o));
	}
	close(sv[1]);
	conn_init(&c, sv[0], sv[0], POP3_MAX_CMD_LINE, 5);
	if (o->pre != NULL) {
		/* STLS with something injected behind it in the same packet */
		if (conn_read_line(&c, &line, &len) != 1 || strcmp(line, "STLS") != 0)
			r->rc = -2;
		conn_write(&c, "+OK\r\n", 5);
	}
	uint64_t t0 = util_now_ms();
	if (r->rc == 0)
		r->rc = conn_starttls(&c, ctx, &r->error);
	r->ms = util_now_ms() - t0;
	if (r->rc == 0) {
		util_snprintf(r->version, sizeof(r->version), "%s", conn_tls_version(&c));
		util_snprintf(r->cipher, sizeof(r->cipher), "%s", conn_tls_cipher(&c));
		r->resumed = conn_tls_resumed(&c);
		conn_write(&c, "hello\r\n", 7);
		while (r->nlines < 4 && conn_read_line(&c, &line, &len) == 1) {
			util_snprintf(r->lines[r->nlines], sizeof(r->lines[0]), "%s", line);
			r->has_input[r->nlines] = conn_has_input(&c);
			r->nlines++;
		}
	}
	conn_deinit(&c);
	CHECK((fcntl(sv[0], F_GETFL) & O_NONBLOCK) == 0);
	close(sv[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	r->client_status = WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static SSL_CTX *ctx_for(const struct config *cfg)
{
	const char *error = NULL;
	SSL_CTX *ctx = tls_ctx_new(cfg, &error);
	if (ctx == NULL)
		fprintf(stderr, "tls_ctx_new: %s\n", error);
	return ctx;
}

static void test_handshakes(void)
{
	struct config cfg;
	struct srv r;
	SSL_CTX *ctx;

	/* ECDSA, TLS 1.3, pipelined lines larger than the line buffer's read */
	cfg_set(&cfg, tpath("ec.crt"), tpath("ec.key"), NULL, tpath("state"));
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	static char pipelined[3 * 502 + 1];
	for (int i = 0; i < 3; i++) {
		memset(pipelined + i * 502, 'a' + i, 500);
		memcpy(pipelined + i * 502 + 500, "\r\n", 2);
	}
	struct cli o = { .send = pipelined, .expect_reuse = -1, .expect_chain = 1 };
	serve(ctx, &o, &r);
	CHECK(r.rc == 0);
	CHECK_STR(r.version, "TLSv1.3");
	printf("  ECDSA: %s %s\n", r.version, r.cipher);
	CHECK(strncmp(r.cipher, "TLS_", 4) == 0);
	CHECK(!r.resumed);
	CHECK(r.nlines == 3);
	CHECK(strlen(r.lines[0]) == 500 && r.lines[0][0] == 'a' && r.lines[2][499] == 'c');
	/* after line 2 the line buffer holds part of line 3 and OpenSSL the rest */
	CHECK(r.has_input[0] && r.has_input[1] && !r.has_input[2]);
	CHECK(r.client_status == 0);

	/* TLS 1.2: an ECDHE AEAD suite */
	struct cli o12 = { .max_version = TLS1_2_VERSION, .send = "QUIT\r\n", .expect_reuse = -1 };
	serve(ctx, &o12, &r);
	CHECK(r.rc == 0);
	CHECK_STR(r.version, "TLSv1.2");
	CHECK(strncmp(r.cipher, "ECDHE-ECDSA-", 12) == 0 && strstr(r.cipher, "GCM") != NULL);
	CHECK(r.nlines == 1);
	CHECK_STR(r.lines[0], "QUIT");
	CHECK(r.client_status == 0);

	/* TLS 1.2 with only a CBC suite, or no forward secrecy: refused */
	struct cli ocbc = { .max_version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-SHA256",
			    .expect_reuse = -1 };
	serve(ctx, &ocbc, &r);
	CHECK(r.rc == -1);
	printf("  CBC-only client: %s\n", r.error ? r.error : "(null)");
	CHECK(r.error != NULL && strcmp(r.error, "no shared cipher") == 0);
	CHECK(r.client_status == 10);

	/* TLS 1.1: refused */
	struct cli o11 = { .min_version = TLS1_VERSION, .max_version = TLS1_1_VERSION,
			   .expect_reuse = -1 };
	serve(ctx, &o11, &r);
	CHECK(r.rc == -1);
	printf("  TLS 1.1 client: %s (%llu ms)\n", r.error ? r.error : "(null)",
	       (unsigned long long)r.ms);
	CHECK(r.error != NULL && strcmp(r.error, "unsupported protocol") == 0);
	CHECK(r.client_status == 10);

	/* STLS: plaintext injected behind the command is dropped (RFC 2595 / RFC 3207) */
	struct cli ostls = { .pre = "STLS\r\nUSER injected\r\n", .send = "CAPA\r\n",
			     .expect_reuse = -1 };
	serve(ctx, &ostls, &r);
	CHECK(r.rc == 0);
	CHECK(r.nlines == 1);
	CHECK_STR(r.lines[0], "CAPA");
	CHECK(r.client_status == 0);
	tls_ctx_free(&ctx);
	CHECK(ctx == NULL);

	/* RSA, TLS 1.2 and 1.3 */
	cfg_set(&cfg, tpath("rsa.crt"), tpath("rsa.key"), NULL, tpath("state"));
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	struct cli orsa = { .send = "NOOP\r\n", .expect_reuse = -1 };
	serve(ctx, &orsa, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	CHECK_STR(r.version, "TLSv1.3");
	serve(ctx, &o12, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	CHECK_STR(r.version, "TLSv1.2");
	CHECK(strncmp(r.cipher, "ECDHE-RSA-", 10) == 0 && strstr(r.cipher, "GCM") != NULL);
	/* a client that prefers ChaCha20 gets it: the client's order wins */
	struct cli ocha = { .max_version = TLS1_2_VERSION, .expect_reuse = -1,
			    .ciphers = "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384" };
	serve(ctx, &ocha, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	CHECK_STR(r.cipher, "ECDHE-RSA-CHACHA20-POLY1305");
	tls_ctx_free(&ctx);

	/* the chain: in the certificate file, or in tls_chain */
	cfg_set(&cfg, tpath("full.crt"), tpath("leaf.key"), NULL, tpath("state"));
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	struct cli ochain = { .expect_chain = 2, .expect_reuse = -1 };
	serve(ctx, &ochain, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	tls_ctx_free(&ctx);
	cfg_set(&cfg, tpath("leaf.crt"), tpath("leaf.key"), tpath("ca.crt"), tpath("state"));
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	serve(ctx, &ochain, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	tls_ctx_free(&ctx);
}

static void test_ctx_errors(void)
{
	struct config cfg;
	const char *error;

	struct {
		const char *cert, *key, *chain;
	} bad[] = {
		{ "ec.crt", "rsa.key", NULL },          /* key does not match */
		{ "rsa.crt", "ec.key", NULL },
		{ "leaf.crt", "ec.key", NULL },
		{ "missing.crt", "ec.key", NULL },
		{ "ec.crt", "missing.key", NULL },
		{ "ec.key", "ec.key", NULL },           /* not a certificate */
		{ "ec.crt", "ec.crt", NULL },           /* not a key */
		{ "ec.crt", "enc.key", NULL },          /* passphrase: never prompt */
		{ "leaf.crt", "leaf.key", "missing.crt" },
		{ "leaf.crt", "leaf.key", "leaf.key" }, /* chain file without a certificate */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg_set(&cfg, tpath(bad[i].cert), tpath(bad[i].key),
			bad[i].chain != NULL ? tpath(bad[i].chain) : NULL, tpath("state"));
		error = NULL;
		SSL_CTX *ctx = tls_ctx_new(&cfg, &error);
		CHECK(ctx == NULL);
		CHECK(error != NULL);
		printf("  bad[%zu]: %s\n", i, error ? error : "(null)");
		tls_ctx_free(&ctx);
	}
	cfg_set(&cfg, NULL, NULL, NULL, NULL);
	CHECK(tls_ctx_new(&cfg, &error) == NULL);
}

static void test_cert_check(void)
{
	struct config cfg;
	struct tls_cert_info info;
	const char *error = NULL;

	cfg_set(&cfg, tpath("ec.crt"), tpath("ec.key"), NULL, NULL);
	CHECK(tls_cert_check(&cfg, &info, &error) == 0);
	CHECK(info.key_matches);
	CHECK(info.days_left == 29 || info.days_left == 30);
	CHECK_STR(info.subject, "CN=localhost");
	CHECK_STR(info.key_type, "ECDSA P-256");

	cfg_set(&cfg, tpath("rsa.crt"), tpath("rsa.key"), NULL, NULL);
	CHECK(tls_cert_check(&cfg, &info, &error) == 0);
	CHECK(info.key_matches);
	CHECK(info.days_left == 399 || info.days_left == 400);
	CHECK_STR(info.key_type, "RSA 2048");

	cfg_set(&cfg, tpath("ca.crt"), tpath("ca.key"), NULL, NULL);
	CHECK(tls_cert_check(&cfg, &info, &error) == 0);
	CHECK_STR(info.key_type, "ECDSA P-384");
	CHECK_STR(info.subject, "CN=Postern Test CA");

	cfg_set(&cfg, tpath("full.crt"), tpath("leaf.key"), NULL, NULL);
	CHECK(tls_cert_check(&cfg, &info, &error) == 0);
	CHECK(info.key_matches); /* the leaf is the first certificate */
	CHECK_STR(info.subject, "CN=leaf.localhost");

	cfg_set(&cfg, tpath("old.crt"), tpath("ec.key"), NULL, NULL);
	CHECK(tls_cert_check(&cfg, &info, &error) == 0);
	CHECK(info.days_left == -1);
	CHECK(info.key_matches);

	cfg_set(&cfg, tpath("ec.crt"), tpath("rsa.key"), NULL, NULL);
	CHECK(tls_cert_check(&cfg, &info, &error) == 0);
	CHECK(!info.key_matches);

	cfg_set(&cfg, tpath("missing.crt"), tpath("ec.key"), NULL, NULL);
	error = NULL;
	CHECK(tls_cert_check(&cfg, &info, &error) == -1);
	CHECK(error != NULL && strstr(error, "missing.crt") != NULL);
	printf("  cert_check missing: %s\n", error ? error : "(null)");

	cfg_set(&cfg, tpath("ec.crt"), tpath("enc.key"), NULL, NULL);
	error = NULL;
	CHECK(tls_cert_check(&cfg, &info, &error) == -1);
	CHECK(error != NULL);
	CHECK_STR(info.key_type, "ECDSA P-256"); /* what the certificate says is still there */
}

static bool file_is(const char *path, mode_t mode, off_t size)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode &&
		st.st_size == size && st.st_uid == geteuid() && st.st_nlink == 1;
}

static void age(const char *path, time_t secs)
{
	struct utimbuf ut = { .actime = time(NULL) - secs, .modtime = time(NULL) - secs };
	CHECK(utime(path, &ut) == 0);
}

static void test_ticket_file(void)
{
	unsigned char k1[2][TLS_TICKET_KEYLEN], k2[2][TLS_TICKET_KEYLEN], k3[2][TLS_TICKET_KEYLEN];
	const char *error = NULL;
	const char *path = tpath("keys/tls-ticket.keys");
	time_t now = time(NULL);

	CHECK(mkdir(tpath("keys"), 0700) == 0);
	CHECK(tls_ticket_keys_load(path, 3600, now, k1, &error) == 0);
	CHECK(file_is(path, 0600, 2 * TLS_TICKET_KEYLEN));
	CHECK(access(tpath("keys/tls-ticket.keys.lock"), F_OK) == 0);
	CHECK(memcmp(k1[0], k1[1], TLS_TICKET_KEYLEN) != 0);

	/* fresh: the same keys again */
	CHECK(tls_ticket_keys_load(path, 3600, now, k2, &error) == 0);
	CHECK(memcmp(k1, k2, sizeof(k1)) == 0);

	/* old: rotated, the current set becomes the previous one */
	age(path, 7200);
	CHECK(tls_ticket_keys_load(path, 3600, time(NULL), k2, &error) == 0);
	CHECK(memcmp(k2[1], k1[0], TLS_TICKET_KEYLEN) == 0);
	CHECK(memcmp(k2[0], k1[0], TLS_TICKET_KEYLEN) != 0);
	CHECK(file_is(path, 0600, 2 * TLS_TICKET_KEYLEN));
	CHECK(tls_ticket_keys_load(path, 3600, time(NULL), k3, &error) == 0);
	CHECK(memcmp(k2, k3, sizeof(k2)) == 0); /* and the new file is fresh */

	/* exactly rotate_s old rotates; one second younger does not */
	age(path, 3599);
	CHECK(tls_ticket_keys_load(path, 3600, time(NULL), k3, &error) == 0);
	CHECK(memcmp(k2, k3, sizeof(k2)) == 0);
	age(path, 3600);
	CHECK(tls_ticket_keys_load(path, 3600, time(NULL), k3, &error) == 0);
	CHECK(memcmp(k3[1], k2[0], TLS_TICKET_KEYLEN) == 0);

	/* rotate_s 0: never */
	age(path, 86400 * 365);
	CHECK(tls_ticket_keys_load(path, 0, time(NULL), k2, &error) == 0);
	CHECK(memcmp(k2, k3, sizeof(k2)) == 0);

	/* far in the future (the clock went back): rotated */
	age(path, -7200);
	CHECK(tls_ticket_keys_load(path, 3600, time(NULL), k2, &error) == 0);
	CHECK(memcmp(k2[1], k3[0], TLS_TICKET_KEYLEN) == 0);

	/* readable by others, wrong size, a symlink: replaced by fresh keys, 0600 */
	CHECK(chmod(path, 0644) == 0);
	CHECK(tls_ticket_keys_load(path, 3600, time(NULL), k3, &error) == 0);
	CHECK(memcmp(k3[0], k2[0], TLS_TICKET_KEYLEN) != 0 &&
	      memcmp(k3[1], k2[0], TLS_TICKET_KEYLEN) != 0);
	CHECK(file_is(path, 0600, 2 * TLS_TICKET_KEYLEN));
	CHECK(truncate(path, 100) == 0);
	CHECK(tls_ticket_keys_load(path, 3600, time(NULL), k2, &error) == 0);
	CHECK(file_is(path, 0600, 2 * TLS_TICKET_KEYLEN));
	CHECK(unlink(path) == 0);
	CHECK(symlink(tpath("ec.key"), path) == 0);
	CHECK(tls_ticket_keys_load(path, 3600, time(NULL), k2, &error) == 0);
	CHECK(file_is(path, 0600, 2 * TLS_TICKET_KEYLEN));
	struct stat st;
	CHECK(lstat(tpath("ec.key"), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 200);

	/* a second name (hard link) for the file: not trusted, replaced */
	const char *other = tpath("keys/other");
	CHECK(link(path, other) == 0);
	CHECK(tls_ticket_keys_load(path, 3600, time(NULL), k3, &error) == 0);
	CHECK(memcmp(k3[0], k2[0], TLS_TICKET_KEYLEN) != 0);
	CHECK(file_is(path, 0600, 2 * TLS_TICKET_KEYLEN));
	CHECK(unlink(other) == 0);

	/* a directory that does not exist */
	error = NULL;
	CHECK(tls_ticket_keys_load(tpath("nonexistent/tls-ticket.keys"), 3600, now, k2, &error) == -1);
	CHECK(error != NULL);
}

static void test_resumption(void)
{
	struct config cfg;
	struct srv r;
	SSL_CTX *ctx;
	const char *sess = tpath("sess.pem");
	const char *sess2 = tpath("sess2.pem");

	for (int v = 0; v < 2; v++) {
		int maxv = v == 0 ? 0 : TLS1_2_VERSION;
		const char *want = v == 0 ? "TLSv1.3" : "TLSv1.2";
		cfg_set(&cfg, tpath("ec.crt"), tpath("ec.key"), NULL, tpath("state"));

		/* process 1 makes the session */
		ctx = ctx_for(&cfg);
		struct cli o1 = { .max_version = maxv, .sess_out = sess, .expect_reuse = 0 };
		serve(ctx, &o1, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK(!r.resumed);
		CHECK_STR(r.version, want);
		tls_ctx_free(&ctx);

		/* process 2: a context built again from the same key file resumes it */
		ctx = ctx_for(&cfg);
		struct cli o2 = { .max_version = maxv, .sess_in = sess, .sess_out = sess2,
				  .expect_reuse = 1 };
		serve(ctx, &o2, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK(r.resumed);
		CHECK_STR(r.version, want);
		tls_ctx_free(&ctx);

		/* after one rotation the previous keys still open the ticket */
		age(tpath("state/tls-ticket.keys"), 7200);
		ctx = ctx_for(&cfg);
		struct cli o3 = { .max_version = maxv, .sess_in = sess, .expect_reuse = 1 };
		serve(ctx, &o3, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK(r.resumed);
		tls_ctx_free(&ctx);

		/* after two rotations they do not: a full handshake, which works */
		age(tpath("state/tls-ticket.keys"), 7200);
		ctx = ctx_for(&cfg);
		struct cli o4 = { .max_version = maxv, .sess_in = sess, .expect_reuse = 0 };
		serve(ctx, &o4, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK(!r.resumed);
		tls_ctx_free(&ctx);

		/* a session made under another certificate is not resumed */
		ctx = ctx_for(&cfg);
		serve(ctx, &o1, &r);
		tls_ctx_free(&ctx);
		cfg_set(&cfg, tpath("leaf.crt"), tpath("leaf.key"), NULL, tpath("state"));
		ctx = ctx_for(&cfg);
		serve(ctx, &o4, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK(!r.resumed);
		tls_ctx_free(&ctx);
	}

	/* state_dir unusable: a warning, TLS works, no resumption */
	cfg_set(&cfg, tpath("ec.crt"), tpath("ec.key"), NULL, tpath("nonexistent"));
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	struct cli o5 = { .sess_out = sess, .expect_reuse = 0 };
	serve(ctx, &o5, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	struct cli o6 = { .sess_in = sess, .expect_reuse = 0 };
	serve(ctx, &o6, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	CHECK(!r.resumed);
	tls_ctx_free(&ctx);
	cfg_set(&cfg, tpath("ec.crt"), tpath("ec.key"), NULL, NULL);
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	tls_ctx_free(&ctx);

	char buf[4096];
	FILE *f = fopen(tpath("test.log"), "r");
	size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f != NULL)
		fclose(f);
	buf[n] = '\0';
	CHECK(strstr(buf, "tls-tickets: dir=") != NULL);
	CHECK(strstr(buf, "resumption disabled") != NULL);
}

int main(void)
{
	const char *error;

	signal(SIGPIPE, SIG_IGN); /* as main() of every daemon */
	util_snprintf(dir, sizeof(dir), "/tmp/postern-tls-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	log_init("test_tls", false);
	if (log_open(tpath("test.log"), false, &error) < 0) {
		fprintf(stderr, "log_open: %s\n", error);
		return 1;
	}
	if (!make_certs()) {
		fprintf(stderr, "cannot make certificates with the openssl command\n");
		return 1;
	}
	test_handshakes();
	test_ctx_errors();
	test_cert_check();
	test_ticket_file();
	test_resumption();

	int rc = unit_done("test_tls");
	if (rc == 0) {
		char cmd[128];
		if (util_snprintf(cmd, sizeof(cmd), "rm -rf %s", dir) > 0 && system(cmd) != 0)
			rc = 1;
	} else {
		fprintf(stderr, "kept %s\n", dir);
	}
	return rc;
}
