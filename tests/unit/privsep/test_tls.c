/* tls + keyop + tlscache over real handshakes: throwaway ECDSA and RSA certificates made
 * with the openssl command, a server context per connection as root builds it before the
 * fork (no private key in it), a "monitor" child that loads the key and answers the key
 * operations and session requests as monitor.c does, a client forked onto the other end
 * of a socketpair.  Checks: TLS 1.3 and 1.2 with ECDSA and RSA (PSS and PKCS#1), TLS 1.1
 * refused, the chain sent, pipelining through SSL_pending, plaintext injected before STLS
 * dropped, the monitor's checks of key operations, the session file (single use, expiry,
 * no overwrite, unsafe file), TLS 1.3 resumption through the monitor in psk_dhe_ke mode
 * only, no TLS 1.2 ticket or resumption, key/cert mismatch, tls_cert_check. */
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
#include "privsep/keyop.h"
#include "privsep/msg.h"
#include "privsep/tls.h"
#include "privsep/tlscache.h"
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
	const char *sigalgs;            /* signature algorithms offered, e.g. only PKCS#1 */
	bool offer_psk_ke;              /* also offer psk_ke; a resumption must still use ECDHE */
	bool expect_no_ticket;          /* the session must have no ticket */
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
	if (o->offer_psk_ke)
		SSL_CTX_set_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX);
	if (o->sigalgs != NULL && SSL_CTX_set1_sigalgs_list(ctx, o->sigalgs) != 1)
		return 5;
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
	/* psk_dhe_ke: a resumed TLS 1.3 handshake still agreed on an ECDHE group */
	if (SSL_session_reused(ssl) == 1 && SSL_version(ssl) == TLS1_3_VERSION &&
	    SSL_get_negotiated_group(ssl) == 0)
		return 16;
	if (o->expect_no_ticket && SSL_SESSION_has_ticket(SSL_get0_session(ssl)))
		return 17;
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

/* The monitor's part, in a child: the key read after the fork, requests answered as
 * monitor.c does (without its per-connection counts: one context serves many tests). */
static pid_t monitor_pid = -1;
static int monitor_fd = -1;

static void monitor_child(int fd, SSL_CTX *ctx, const struct config *cfg)
{
	const char *err = NULL;
	EVP_PKEY *key = tls_key_load(cfg, ctx, &err);
	struct msg m, r;

	if (key == NULL)
		fprintf(stderr, "monitor: tls_key_load: %s\n", err);
	while (msg_recv(fd, &m, -1, &err) == 1) {
		int rc = 0;
		if (m.type == MSG_KEY_OP)
			rc = tls_key_answer(key, &m, &r, &err);
		else if (m.type == MSG_TLS_SESS_PUT) {
			(void)tls_sess_put(cfg, &m, time(NULL));
			continue;
		} else if (m.type == MSG_TLS_SESS_GET)
			rc = tls_sess_get(cfg, &m, time(NULL), &r);
		else
			continue;
		if (rc == -1 || msg_send(fd, &r) == -1)
			_exit(3);
	}
	tls_key_free(&key);
	_exit(0);
}

static void monitor_stop(void)
{
	if (monitor_pid > 0) {
		close(monitor_fd);
		int st = 0;
		waitpid(monitor_pid, &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	monitor_pid = -1;
	monitor_fd = -1;
	keyop_set_channel(-1);
}

static void monitor_start(SSL_CTX *ctx, const struct config *cfg)
{
	int sv[2];

	monitor_stop();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		exit(1);
	fflush(NULL);
	monitor_pid = fork();
	if (monitor_pid == 0) {
		close(sv[0]);
		monitor_child(sv[1], ctx, cfg);
	}
	close(sv[1]);
	monitor_fd = sv[0];
	keyop_set_channel(monitor_fd);
}

static SSL_CTX *ctx_for(const struct config *cfg)
{
	const char *error = NULL;
	SSL_CTX *ctx = tls_ctx_new(cfg, &error);
	if (ctx == NULL)
		fprintf(stderr, "tls_ctx_new: %s\n", error);
	else
		monitor_start(ctx, cfg);
	return ctx;
}

static void ctx_done(SSL_CTX **ctx)
{
	monitor_stop();
	tls_ctx_free(ctx);
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
	ctx_done(&ctx);
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
	/* the key's three operations through the monitor: TLS 1.2 with only PKCS#1 v1.5
	 * (each digest), TLS 1.3 with RSA-PSS (each digest) */
	const char *pkcs1[] = { "RSA+SHA256", "RSA+SHA384", "RSA+SHA512" };
	const char *pss[] = { "rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384", "rsa_pss_rsae_sha512" };
	for (int i = 0; i < 3; i++) {
		struct cli op1 = { .max_version = TLS1_2_VERSION, .sigalgs = pkcs1[i],
				   .expect_reuse = -1 };
		serve(ctx, &op1, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK_STR(r.version, "TLSv1.2");
		struct cli opss = { .sigalgs = pss[i], .expect_reuse = -1 };
		serve(ctx, &opss, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK_STR(r.version, "TLSv1.3");
	}
	/* a client that prefers ChaCha20 gets it: the client's order wins */
	struct cli ocha = { .max_version = TLS1_2_VERSION, .expect_reuse = -1,
			    .ciphers = "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384" };
	serve(ctx, &ocha, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	CHECK_STR(r.cipher, "ECDHE-RSA-CHACHA20-POLY1305");
	ctx_done(&ctx);

	/* ECDSA P-384 (the test CA's key) with ecdsa_secp384r1_sha384, TLS 1.3 and 1.2 */
	cfg_set(&cfg, tpath("ca.crt"), tpath("ca.key"), NULL, tpath("state"));
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	struct cli o384 = { .sigalgs = "ECDSA+SHA384", .expect_reuse = -1 };
	serve(ctx, &o384, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	struct cli o384b = { .max_version = TLS1_2_VERSION, .sigalgs = "ECDSA+SHA512",
			     .expect_reuse = -1 };
	serve(ctx, &o384b, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	ctx_done(&ctx);

	/* the chain: in the certificate file, or in tls_chain */
	cfg_set(&cfg, tpath("full.crt"), tpath("leaf.key"), NULL, tpath("state"));
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	struct cli ochain = { .expect_chain = 2, .expect_reuse = -1 };
	serve(ctx, &ochain, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	ctx_done(&ctx);
	cfg_set(&cfg, tpath("leaf.crt"), tpath("leaf.key"), tpath("ca.crt"), tpath("state"));
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	serve(ctx, &ochain, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	ctx_done(&ctx);
}

static void test_ctx_errors(void)
{
	struct config cfg;
	const char *error;

	/* stage 0: tls_ctx_new (root, before the fork) refuses; 1: the context is made (it
	 * holds no key) and the monitor's tls_key_load refuses */
	struct {
		const char *cert, *key, *chain;
		int stage;
	} bad[] = {
		{ "ec.crt", "rsa.key", NULL, 1 },          /* key does not match */
		{ "rsa.crt", "ec.key", NULL, 1 },
		{ "leaf.crt", "ec.key", NULL, 1 },
		{ "missing.crt", "ec.key", NULL, 0 },
		{ "ec.crt", "missing.key", NULL, 0 },
		{ "ec.key", "ec.key", NULL, 0 },           /* not a certificate */
		{ "ec.crt", "ec.crt", NULL, 1 },           /* not a key */
		{ "ec.crt", "enc.key", NULL, 1 },          /* passphrase: never prompt */
		{ "leaf.crt", "leaf.key", "missing.crt", 0 },
		{ "leaf.crt", "leaf.key", "leaf.key", 0 }, /* chain file without a certificate */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg_set(&cfg, tpath(bad[i].cert), tpath(bad[i].key),
			bad[i].chain != NULL ? tpath(bad[i].chain) : NULL, tpath("state"));
		error = NULL;
		SSL_CTX *ctx = tls_ctx_new(&cfg, &error);
		CHECK((ctx == NULL) == (bad[i].stage == 0));
		if (ctx != NULL) {
			EVP_PKEY *key = tls_key_load(&cfg, ctx, &error);
			CHECK(key == NULL);
			tls_key_free(&key);
		}
		CHECK(error != NULL);
		printf("  bad[%zu]: %s\n", i, error ? error : "(null)");
		tls_ctx_free(&ctx);
	}
	cfg_set(&cfg, NULL, NULL, NULL, NULL);
	CHECK(tls_ctx_new(&cfg, &error) == NULL);

	/* a key that does not match: the monitor answers "failed", the handshake fails */
	cfg_set(&cfg, tpath("ec.crt"), tpath("rsa.key"), NULL, tpath("state"));
	SSL_CTX *ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	struct srv r;
	struct cli o = { .expect_reuse = -1 };
	serve(ctx, &o, &r);
	CHECK(r.rc == -1 && r.client_status == 10);
	ctx_done(&ctx);
}

/* One MSG_KEY_OP as the worker would send it. */
static void keyop_msg(struct msg *m, int kind, int nid, const void *data, size_t len)
{
	msg_init(m, MSG_KEY_OP);
	CHECK(msg_add_u8(m, MSG_KEY_OP_KIND, (uint8_t)kind) == 0);
	if (nid != 0)
		CHECK(msg_add_u32(m, MSG_KEY_OP_ARG, (uint32_t)nid) == 0);
	if (data != NULL)
		CHECK(msg_add(m, MSG_KEY_OP_DATA, data, len) == 0);
}

/* The reply's status, its data in sig (and *len_r), or -1 if refused. */
static int keyop_do(EVP_PKEY *key, struct msg *req, unsigned char *sig, size_t *len_r)
{
	struct msg rep, parsed;
	const char *err = NULL;
	uint8_t st;

	if (tls_key_answer(key, req, &rep, &err) == -1) {
		CHECK(err != NULL);
		return -1;
	}
	/* what goes back over the socket parses as its type says */
	CHECK(msg_parse(&parsed, rep.buf, rep.len, &err) == 0);
	CHECK(parsed.type == MSG_KEY_OP_REPLY);
	CHECK(msg_get_u8(&parsed, MSG_KEY_OP_REPLY_STATUS, &st) == 0);
	const struct msg_field *f = msg_get(&parsed, MSG_KEY_OP_REPLY_DATA);
	*len_r = 0;
	if (f != NULL) {
		memcpy(sig, f->data, f->len);
		*len_r = f->len;
	}
	return st;
}

static EVP_PKEY *load_key(const char *name)
{
	struct config cfg;
	const char *err = NULL;
	cfg_set(&cfg, tpath(name[0] == 'e' ? "ec.crt" : "rsa.crt"), tpath(name), NULL, NULL);
	SSL_CTX *ctx = tls_ctx_new(&cfg, &err);
	EVP_PKEY *key = ctx != NULL ? tls_key_load(&cfg, ctx, &err) : NULL;
	CHECK(key != NULL);
	tls_ctx_free(&ctx);
	return key;
}

static bool verify(EVP_PKEY *key, int pad, const EVP_MD *md, const unsigned char *sig,
		   size_t siglen, const unsigned char *dgst, size_t dlen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	bool ok = c != NULL && EVP_PKEY_verify_init(c) == 1 &&
		  (pad == 0 || EVP_PKEY_CTX_set_rsa_padding(c, pad) == 1) &&
		  (pad != RSA_PKCS1_PSS_PADDING || EVP_PKEY_CTX_set_rsa_pss_saltlen(c, -1) == 1) &&
		  EVP_PKEY_CTX_set_signature_md(c, md) == 1 &&
		  EVP_PKEY_verify(c, sig, siglen, dgst, dlen) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

/* The monitor signs exactly what TLS needs and refuses the rest: it is a signing
 * oracle for the worker, so every field is checked. */
static void test_key_answer(void)
{
	EVP_PKEY *ec = load_key("ec.key"), *rsa = load_key("rsa.key");
	unsigned char dgst[64], sig[1024], block[1024];
	size_t siglen, blen;
	struct msg m;

	memset(dgst, 0x5a, sizeof(dgst));
	/* ECDSA with SHA-256/384/512: signs, and the signature verifies */
	const int nids[] = { NID_sha256, NID_sha384, NID_sha512 };
	const EVP_MD *mds[] = { EVP_sha256(), EVP_sha384(), EVP_sha512() };
	for (int i = 0; i < 3; i++) {
		size_t dl = (size_t)EVP_MD_get_size(mds[i]);
		keyop_msg(&m, KEYOP_ECDSA_SIGN, nids[i], dgst, dl);
		CHECK(keyop_do(ec, &m, sig, &siglen) == 0);
		CHECK(verify(ec, 0, mds[i], sig, siglen, dgst, dl));
		keyop_msg(&m, KEYOP_RSA_PKCS1_SIGN, nids[i], dgst, dl);
		CHECK(keyop_do(rsa, &m, sig, &siglen) == 0);
		CHECK(siglen == 256);
		CHECK(verify(rsa, RSA_PKCS1_PADDING, mds[i], sig, siglen, dgst, dl));
	}
	/* refused: wrong digest length (max+1, max-1), SHA-1, MD5, no digest NID, an
	 * operation that does not fit the key, an unknown operation, an empty digest */
	keyop_msg(&m, KEYOP_ECDSA_SIGN, NID_sha256, dgst, 33);
	CHECK(keyop_do(ec, &m, sig, &siglen) == -1);
	keyop_msg(&m, KEYOP_ECDSA_SIGN, NID_sha256, dgst, 31);
	CHECK(keyop_do(ec, &m, sig, &siglen) == -1);
	keyop_msg(&m, KEYOP_ECDSA_SIGN, NID_sha1, dgst, 20);
	CHECK(keyop_do(ec, &m, sig, &siglen) == -1);
	keyop_msg(&m, KEYOP_RSA_PKCS1_SIGN, NID_md5, dgst, 16);
	CHECK(keyop_do(rsa, &m, sig, &siglen) == -1);
	keyop_msg(&m, KEYOP_ECDSA_SIGN, 0, dgst, 32);
	CHECK(keyop_do(ec, &m, sig, &siglen) == -1);
	keyop_msg(&m, KEYOP_ECDSA_SIGN, NID_sha256, dgst, 32);
	CHECK(keyop_do(rsa, &m, sig, &siglen) == -1);
	keyop_msg(&m, KEYOP_RSA_PKCS1_SIGN, NID_sha256, dgst, 32);
	CHECK(keyop_do(ec, &m, sig, &siglen) == -1);
	keyop_msg(&m, 99, NID_sha256, dgst, 32);
	CHECK(keyop_do(ec, &m, sig, &siglen) == -1);
	keyop_msg(&m, KEYOP_ECDSA_SIGN, NID_sha256, NULL, 0);
	CHECK(keyop_do(ec, &m, sig, &siglen) == -1);

	/* PSS: a real PSS signature opened with the public key is the encoded block the
	 * worker sends; the monitor's raw signature of it is that signature again */
	for (int i = 0; i < 3; i++) {
		size_t dl = (size_t)EVP_MD_get_size(mds[i]);
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
		unsigned char pss[256];
		size_t plen = sizeof(pss);
		CHECK(c != NULL && EVP_PKEY_sign_init(c) == 1 &&
		      EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1 &&
		      EVP_PKEY_CTX_set_rsa_pss_saltlen(c, -1) == 1 &&
		      EVP_PKEY_CTX_set_signature_md(c, mds[i]) == 1 &&
		      EVP_PKEY_sign(c, pss, &plen, dgst, dl) == 1 && plen == 256);
		EVP_PKEY_CTX_free(c);
		c = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
		blen = sizeof(block);
		CHECK(c != NULL && EVP_PKEY_verify_recover_init(c) == 1 &&
		      EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING) == 1 &&
		      EVP_PKEY_verify_recover(c, block, &blen, pss, plen) == 1 && blen == 256);
		EVP_PKEY_CTX_free(c);
		keyop_msg(&m, KEYOP_RSA_PSS_BLOCK, 0, block, blen);
		CHECK(keyop_do(rsa, &m, sig, &siglen) == 0);
		CHECK(siglen == 256 && memcmp(sig, pss, 256) == 0);
		/* the same block on an EC key, with a digest NID, one byte short: refused */
		CHECK(keyop_do(ec, &m, sig, &siglen) == -1);
		keyop_msg(&m, KEYOP_RSA_PSS_BLOCK, NID_sha256, block, blen);
		CHECK(keyop_do(rsa, &m, sig, &siglen) == -1);
		keyop_msg(&m, KEYOP_RSA_PSS_BLOCK, 0, block + 1, blen - 1);
		CHECK(keyop_do(rsa, &m, sig, &siglen) == -1);
		/* any change to the padding part, or to the trailer: no PSS block, refused */
		block[10] ^= 0x01;
		keyop_msg(&m, KEYOP_RSA_PSS_BLOCK, 0, block, blen);
		CHECK(keyop_do(rsa, &m, sig, &siglen) == -1);
		block[10] ^= 0x01;
		block[255] = 0xbd;
		keyop_msg(&m, KEYOP_RSA_PSS_BLOCK, 0, block, blen);
		CHECK(keyop_do(rsa, &m, sig, &siglen) == -1);
	}
	/* a chosen number (a raw RSA oracle would decrypt with it): refused */
	memset(block, 0x42, 256);
	block[0] = 0x01;
	block[255] = 0xbc;
	keyop_msg(&m, KEYOP_RSA_PSS_BLOCK, 0, block, 256);
	CHECK(keyop_do(rsa, &m, sig, &siglen) == -1);

	/* no key (the file was broken): a well-formed request gets "failed", not a cut-off */
	keyop_msg(&m, KEYOP_ECDSA_SIGN, NID_sha256, dgst, 32);
	CHECK(keyop_do(NULL, &m, sig, &siglen) == 1);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
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

static void test_cache(void)
{
	const char *error = NULL;
	const char *path = tpath("cache/tls-sessions");
	unsigned char id[32], id2[32], data[TLS_SESSION_MAX + 1], out[TLS_SESSION_MAX];
	size_t len = 0;
	time_t now = time(NULL);

	CHECK(mkdir(tpath("cache"), 0700) == 0);
	memset(id, 1, sizeof(id));
	memset(id2, 2, sizeof(id2));
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	/* nothing yet: no file, none found */
	CHECK(tlscache_take(path, id, 32, now, 3600, out, sizeof(out), &len, &error) == 0);
	/* the longest session fits, one byte more does not */
	CHECK(tlscache_put(path, id, 32, data, TLS_SESSION_MAX + 1, now, 3600, &error) == -1);
	CHECK(tlscache_put(path, id, 32, data, TLS_SESSION_MAX, now, 3600, &error) == 0);
	CHECK(file_is(path, 0600, (off_t)TLSCACHE_SLOTS * TLSCACHE_SLOT_SIZE));
	/* a live session is not overwritten (a worker cannot replace another's) */
	CHECK(tlscache_put(path, id, 32, data + 1, 100, now, 3600, &error) == -1);
	/* another id is not it; a shorter id is not it */
	CHECK(tlscache_take(path, id2, 32, now, 3600, out, sizeof(out), &len, &error) == 0);
	CHECK(tlscache_take(path, id, 31, now, 3600, out, sizeof(out), &len, &error) == 0);
	/* taken once, whole */
	CHECK(tlscache_take(path, id, 32, now, 3600, out, sizeof(out), &len, &error) == 1);
	CHECK(len == TLS_SESSION_MAX && memcmp(out, data, len) == 0);
	CHECK(tlscache_take(path, id, 32, now, 3600, out, sizeof(out), &len, &error) == 0);
	/* expired: at now + lifetime it is gone, one second before it is there */
	CHECK(tlscache_put(path, id, 32, data, 10, now, 3600, &error) == 0);
	CHECK(tlscache_take(path, id, 32, now + 3600, 3600, out, sizeof(out), &len, &error) == 0);
	CHECK(tlscache_put(path, id, 32, data, 10, now, 3600, &error) == 0);
	CHECK(tlscache_take(path, id, 32, now + 3599, 3600, out, sizeof(out), &len, &error) == 1);
	/* the clock went back by more than a lifetime: not trusted */
	CHECK(tlscache_put(path, id, 32, data, 10, now, 3600, &error) == 0);
	CHECK(tlscache_take(path, id, 32, now - 10, 3600, out, sizeof(out), &len, &error) == 0);
	/* an expired session may be replaced */
	CHECK(tlscache_put(path, id, 32, data, 10, now - 7200, 3600, &error) == 0);
	CHECK(tlscache_put(path, id, 32, data + 5, 10, now, 3600, &error) == 0);
	CHECK(tlscache_take(path, id, 32, now, 3600, out, sizeof(out), &len, &error) == 1);
	CHECK(len == 10 && memcmp(out, data + 5, 10) == 0);
	/* a damaged slot (a torn write) is no session */
	CHECK(tlscache_put(path, id, 32, data, 200, now, 3600, &error) == 0);
	int fd = open(path, O_RDWR);
	CHECK(fd != -1);
	bool flipped = false;
	for (off_t off = 0; fd != -1 && off < (off_t)TLSCACHE_SLOTS * TLSCACHE_SLOT_SIZE && !flipped;
	     off += TLSCACHE_SLOT_SIZE) {
		unsigned char b;
		if (pread(fd, &b, 1, off) == 1 && b == 32) {
			unsigned char x;
			CHECK(pread(fd, &x, 1, off + 100) == 1);
			x ^= 0x80;
			CHECK(pwrite(fd, &x, 1, off + 100) == 1);
			flipped = true;
		}
	}
	if (fd != -1)
		close(fd);
	CHECK(flipped);
	CHECK(tlscache_take(path, id, 32, now, 3600, out, sizeof(out), &len, &error) == 0);
	/* not ours (readable by others, a second name, a symlink): removed, never used */
	CHECK(tlscache_put(path, id, 32, data, 10, now, 3600, &error) == 0);
	CHECK(chmod(path, 0644) == 0);
	CHECK(tlscache_take(path, id, 32, now, 3600, out, sizeof(out), &len, &error) == -1);
	CHECK(access(path, F_OK) == -1);
	CHECK(tlscache_put(path, id, 32, data, 10, now, 3600, &error) == 0);
	CHECK(link(path, tpath("cache/other")) == 0);
	CHECK(tlscache_take(path, id, 32, now, 3600, out, sizeof(out), &len, &error) == -1);
	CHECK(unlink(tpath("cache/other")) == 0);
	CHECK(symlink(tpath("ec.key"), path) == 0);
	CHECK(tlscache_put(path, id, 32, data, 10, now, 3600, &error) == -1);
	CHECK(access(tpath("ec.key"), F_OK) == 0);
	CHECK(tlscache_put(path, id, 32, data, 10, now, 3600, &error) == 0);
	CHECK(file_is(path, 0600, (off_t)TLSCACHE_SLOTS * TLSCACHE_SLOT_SIZE));
	/* bad arguments */
	CHECK(tlscache_put(path, id, 0, data, 10, now, 3600, &error) == -1);
	CHECK(tlscache_put(path, id, 33, data, 10, now, 3600, &error) == -1);
	CHECK(tlscache_put(path, id, 32, data, 0, now, 3600, &error) == -1);
	CHECK(tlscache_take(tpath("nonexistent/x"), id, 32, now, 3600, out, sizeof(out), &len,
			    &error) == 0);
}

static void test_resumption(void)
{
	struct config cfg;
	struct srv r;
	SSL_CTX *ctx;
	const char *sess = tpath("sess.pem");
	const char *sess2 = tpath("sess2.pem");

	for (int k = 0; k < 2; k++) {
		/* TLS 1.3, ECDSA then RSA (PSS) */
		cfg_set(&cfg, tpath(k == 0 ? "ec.crt" : "rsa.crt"),
			tpath(k == 0 ? "ec.key" : "rsa.key"), NULL, tpath("state"));
		ctx = ctx_for(&cfg);
		CHECK(ctx != NULL);
		/* what the context promises: no TLS 1.2 ticket (and TLS 1.3 ones stateful),
		 * never psk_ke, no early data */
		CHECK((SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET) != 0);
		CHECK((SSL_CTX_get_options(ctx) & SSL_OP_ALLOW_NO_DHE_KEX) == 0);
		CHECK(SSL_CTX_get_max_early_data(ctx) == 0);
		struct cli o1 = { .sess_out = sess, .expect_reuse = 0 };
		serve(ctx, &o1, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK(!r.resumed);
		CHECK_STR(r.version, "TLSv1.3");
		ctx_done(&ctx);

		/* another process (a new context and monitor) resumes it, with ECDHE even
		 * though the client also offers psk_ke */
		ctx = ctx_for(&cfg);
		struct cli o2 = { .sess_in = sess, .sess_out = sess2, .expect_reuse = 1,
				  .offer_psk_ke = true };
		serve(ctx, &o2, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK(r.resumed);
		CHECK_STR(r.version, "TLSv1.3");
		/* the same ticket again: it was good once */
		struct cli o3 = { .sess_in = sess, .expect_reuse = 0 };
		serve(ctx, &o3, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK(!r.resumed);
		/* the new ticket of the resumed connection resumes */
		struct cli o4 = { .sess_in = sess2, .expect_reuse = 1 };
		serve(ctx, &o4, &r);
		CHECK(r.rc == 0 && r.client_status == 0);
		CHECK(r.resumed);
		ctx_done(&ctx);
	}

	/* a session made under another certificate is not resumed */
	cfg_set(&cfg, tpath("ec.crt"), tpath("ec.key"), NULL, tpath("state"));
	ctx = ctx_for(&cfg);
	struct cli o1 = { .sess_out = sess, .expect_reuse = 0 };
	serve(ctx, &o1, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	ctx_done(&ctx);
	cfg_set(&cfg, tpath("leaf.crt"), tpath("leaf.key"), NULL, tpath("state"));
	ctx = ctx_for(&cfg);
	struct cli o5 = { .sess_in = sess, .expect_reuse = 0 };
	serve(ctx, &o5, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	CHECK(!r.resumed);
	ctx_done(&ctx);

	/* TLS 1.2: no ticket, and no resumption by session id either */
	cfg_set(&cfg, tpath("ec.crt"), tpath("ec.key"), NULL, tpath("state"));
	ctx = ctx_for(&cfg);
	struct cli o6 = { .max_version = TLS1_2_VERSION, .sess_out = sess, .expect_reuse = 0,
			  .expect_no_ticket = true };
	serve(ctx, &o6, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	CHECK_STR(r.version, "TLSv1.2");
	struct cli o7 = { .max_version = TLS1_2_VERSION, .sess_in = sess, .expect_reuse = 0 };
	serve(ctx, &o7, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	CHECK(!r.resumed);
	ctx_done(&ctx);

	/* state_dir unusable: TLS works, no resumption */
	cfg_set(&cfg, tpath("ec.crt"), tpath("ec.key"), NULL, tpath("nonexistent"));
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	struct cli o8 = { .sess_out = sess, .expect_reuse = 0 };
	serve(ctx, &o8, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	struct cli o9 = { .sess_in = sess, .expect_reuse = 0 };
	serve(ctx, &o9, &r);
	CHECK(r.rc == 0 && r.client_status == 0);
	CHECK(!r.resumed);
	ctx_done(&ctx);
	cfg_set(&cfg, tpath("ec.crt"), tpath("ec.key"), NULL, NULL);
	ctx = ctx_for(&cfg);
	CHECK(ctx != NULL);
	ctx_done(&ctx);
	/* the earlier version's shared ticket-key file is removed */
	CHECK(access(tpath("state/tls-ticket.keys"), F_OK) == -1);

	char buf[4096];
	FILE *f = fopen(tpath("test.log"), "r");
	size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f != NULL)
		fclose(f);
	buf[n] = '\0';
	CHECK(strstr(buf, "tls-sessions: dir=") != NULL);
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
	test_key_answer();
	test_cache();
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
