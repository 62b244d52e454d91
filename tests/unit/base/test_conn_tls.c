/* conn as a TLS client (outbound SMTP): against a local server (conn_starttls in a forked
 * child, which answers with the SNI name it saw), with a test CA, an intermediate and
 * leaf certificates made here with the openssl command.  Checks: a chain from the test CA
 * is accepted and verified; SNI is sent, and not for an address literal; a certificate
 * for another host name, or a self-signed one, is refused when verification is on and
 * accepted (unverified) when it is off; verification without a host name is refused; a
 * client context without the CA refuses the good chain; a silent server times out. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "base/conn.h"
#include "base/plimits.h"
#include "base/util.h"
#include "unit.h"

static char dir[64];

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

static const char *path(const char *name)
{
	static char buf[8][256];
	static int i;
	i = (i + 1) % 8;
	if (util_snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name) < 0)
		exit(1);
	return buf[i];
}

static bool make_certs(void)
{
	return run("printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=keyCertSign,cRLSign\\n'"
		   " > ca.ext") == 0 &&
		run("printf 'subjectAltName=DNS:mail.test\\nbasicConstraints=CA:FALSE\\n' "
		    "> leaf.ext") == 0 &&
		run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout ca.key -out ca.crt -days 30 -subj '/CN=Postern Test CA' "
		    "-addext basicConstraints=critical,CA:TRUE "
		    "-addext keyUsage=keyCertSign,cRLSign") == 0 &&
		run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout int.key -out int.csr -subj '/CN=Postern Test Intermediate'") == 0 &&
		run("openssl x509 -req -in int.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		    "-extfile ca.ext -out int.crt -days 30") == 0 &&
		run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout leaf.key -out leaf.csr -subj /CN=mail.test") == 0 &&
		run("openssl x509 -req -in leaf.csr -CA int.crt -CAkey int.key -CAcreateserial "
		    "-extfile leaf.ext -out leaf.crt -days 30") == 0 &&
		run("cat leaf.crt int.crt > chain.crt") == 0 &&
		run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout self.key -out self.crt -days 30 -subj /CN=mail.test "
		    "-addext subjectAltName=DNS:mail.test") == 0 &&
		run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout other.key -out other.crt -days 30 -subj /CN=other.test") == 0;
}

/* ---- the server, in a child ---- */

static char seen_sni[256];

static int on_sni(SSL *ssl, int *al, void *arg)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	util_snprintf(seen_sni, sizeof(seen_sni), "%s", name != NULL ? name : "");
	return SSL_TLSEXT_ERR_OK;
}

/* Serve one TLS connection on fd with cert/key; silent: never answer at all. */
static pid_t server(int fd, const char *cert, const char *key, bool silent)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (silent) {
		util_sleep_ms(5000);
		_exit(0);
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		_exit(2);
	SSL_CTX_set_tlsext_servername_callback(ctx, on_sni);
	struct conn c;
	const char *err;
	conn_init(&c, fd, fd, POP3_MAX_CMD_LINE, 5);
	if (conn_starttls(&c, ctx, &err) == -1)
		_exit(3); /* the client refused us */
	conn_printf(&c, "SNI=%s\r\n", seen_sni);
	conn_flush(&c);
	const char *line;
	size_t len;
	(void)conn_read_line(&c, &line, &len); /* until the client closes */
	conn_deinit(&c);
	SSL_CTX_free(ctx);
	_exit(0);
}

struct tcase {
	const char *name;
	const char *cert, *key;     /* the server's */
	const char *cafile;         /* the client's trust; NULL: the system's */
	const char *host;
	bool verify;
	int want;                   /* conn_connect_tls() result */
	const char *want_sni;       /* when connected */
	bool want_verified;
	const char *want_error;     /* substring, when refused */
};

static void run_case(const struct tcase *t)
{
	int sv[2];
	const char *err = NULL;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid_t pid = server(sv[1], path(t->cert), path(t->key), false);
	SSL_CTX *ctx = conn_client_ctx_new(t->cafile != NULL ? path(t->cafile) : NULL, &err);
	CHECK(ctx != NULL);
	struct conn c;
	conn_init(&c, sv[0], sv[0], SMTP_MAX_CMD_LINE, 5);
	/* plaintext before the handshake ("220 ready" and anything injected after it) is
	 * not kept */
	int r = conn_connect_tls(&c, ctx, t->host, t->verify, &err);
	bool ok = r == t->want;
	if (r == 0) {
		const char *line;
		size_t len;
		CHECK(conn_read_line(&c, &line, &len) == 1);
		char want[300];
		util_snprintf(want, sizeof(want), "SNI=%s", t->want_sni);
		CHECK_STR(line, want);
		CHECK(conn_tls_verified(&c) == t->want_verified);
		CHECK(conn_tls_version(&c) != NULL);
	} else {
		ok = ok && err != NULL && t->want_error != NULL && strstr(err, t->want_error);
		CHECK(c.failed);
	}
	if (!ok)
		fprintf(stderr, "%s: got %d (%s)\n", t->name, r, err != NULL ? err : "-");
	else
		printf("  %s: %s\n", t->name, r == 0 ? "connected" : err);
	CHECK(ok);
	conn_deinit(&c);
	close(sv[0]);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == (r == 0 ? 0 : 3));
	close(sv[1]);
	SSL_CTX_free(ctx);
}

static const struct tcase cases[] = {
	{ "chain from the test CA", "chain.crt", "leaf.key", "ca.crt", "mail.test", true,
	  0, "mail.test", true, NULL },
	{ "wrong host name, verify", "chain.crt", "leaf.key", "ca.crt", "wrong.test", true,
	  -1, NULL, false, "hostname mismatch" },
	{ "wrong host name, no verify", "chain.crt", "leaf.key", "ca.crt", "wrong.test", false,
	  0, "wrong.test", true, NULL },
	{ "partial wildcard host", "chain.crt", "leaf.key", "ca.crt", "x.mail.test", true,
	  -1, NULL, false, "hostname mismatch" },
	{ "self-signed, verify", "self.crt", "self.key", "ca.crt", "mail.test", true,
	  -1, NULL, false, "self-signed" },
	{ "self-signed, no verify", "self.crt", "self.key", "ca.crt", "mail.test", false,
	  0, "mail.test", false, NULL },
	{ "other CN only, verify", "other.crt", "other.key", "ca.crt", "other.test", true,
	  -1, NULL, false, "self-signed" },
	{ "good chain, CA not trusted", "chain.crt", "leaf.key", "other.crt", "mail.test", true,
	  -1, NULL, false, "local issuer" },
	{ "address literal: no SNI", "chain.crt", "leaf.key", "ca.crt", "127.0.0.1", false,
	  0, "", true, NULL },
	{ "IPv6 literal: no SNI", "chain.crt", "leaf.key", "ca.crt", "::1", false,
	  0, "", true, NULL },
};

static void test_misuse(void)
{
	int sv[2];
	const char *err = NULL;
	struct conn c;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	SSL_CTX *ctx = conn_client_ctx_new(path("ca.crt"), &err);
	conn_init(&c, sv[0], sv[0], SMTP_MAX_CMD_LINE, 1);
	CHECK(conn_connect_tls(&c, ctx, NULL, true, &err) == -1);
	CHECK_STR(err, "verification needs a host name");
	CHECK(conn_connect_tls(&c, ctx, "", true, &err) == -1);
	/* a server that never answers: the idle timeout ends the handshake */
	pid_t pid = server(sv[1], NULL, NULL, true);
	CHECK(conn_connect_tls(&c, ctx, "mail.test", true, &err) == -1);
	CHECK_STR(err, "timeout");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
	SSL_CTX_free(ctx);
	CHECK(conn_client_ctx_new(path("missing.crt"), &err) == NULL);
	CHECK(err != NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (util_snprintf(dir, sizeof(dir), "/tmp/postern-ctls-XXXXXX") < 0 ||
	    mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	CHECK(make_certs());
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	test_misuse();
	char cmd[128];
	if (util_snprintf(cmd, sizeof(cmd), "rm -rf %s", dir) >= 0 && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return unit_done("test_conn_tls");
}
