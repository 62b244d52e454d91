/* conn_connect_tls_mode(): outbound TLS with a policy, against a local TLS server (a
 * forked child on a socketpair, conn_starttls), with certificates and TLSA digests made
 * here by the openssl command.  Proves: opportunistic TLS with a self-signed certificate
 * connects and reports "not verified" with the reason, and a good chain reports
 * verified; DANE-EE 3 1 1 matching the server's key connects (and needs no name match),
 * a non-matching one fails the handshake; DANE-TA 2 0 1 matching the intermediate the
 * server sends connects when the leaf names the host and fails when it does not; only
 * unusable records (PKIX-EE, a digest of the wrong length) give encrypted but
 * unauthenticated TLS (RFC 7672 section 2.2); VERIFY (WebPKI) refuses a self-signed
 * certificate; the result carries version, cipher and the peer's subject. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
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

#define EC "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
#define SPKI_SHA256(crt, out) "openssl x509 -in " crt " -pubkey -noout | " \
	"openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary > " out
#define CERT_SHA256(crt, out) "openssl x509 -in " crt " -outform DER | " \
	"openssl dgst -sha256 -binary > " out

static bool make_certs(void)
{
	return run("printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=keyCertSign,cRLSign\\n'"
		   " > ca.ext") == 0 &&
		run("printf 'subjectAltName=DNS:mx.sina.test\\nbasicConstraints=CA:FALSE\\n' "
		    "> leaf.ext") == 0 &&
		run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout ca.key -out ca.crt -days 30 -subj '/CN=Postern DANE CA' "
		    "-addext basicConstraints=critical,CA:TRUE "
		    "-addext keyUsage=keyCertSign,cRLSign") == 0 &&
		run(EC "-keyout int.key -out int.csr -subj '/CN=Postern DANE Intermediate'") == 0 &&
		run("openssl x509 -req -in int.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		    "-extfile ca.ext -out int.crt -days 30") == 0 &&
		run(EC "-keyout leaf.key -out leaf.csr -subj /CN=mx.sina.test") == 0 &&
		run("openssl x509 -req -in leaf.csr -CA int.crt -CAkey int.key -CAcreateserial "
		    "-extfile leaf.ext -out leaf.crt -days 30") == 0 &&
		run("cat leaf.crt int.crt > chain.crt") == 0 &&
		run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout self.key -out self.crt -days 30 -subj /CN=mx.163.test") == 0 &&
		run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout other.key -out other.crt -days 30 -subj /CN=other.test") == 0 &&
		run(SPKI_SHA256("self.crt", "self.311")) == 0 &&
		run(SPKI_SHA256("other.crt", "other.311")) == 0 &&
		run(CERT_SHA256("int.crt", "int.201")) == 0 &&
		run(CERT_SHA256("ca.crt", "ca.201")) == 0;
}

static size_t load(const char *name, unsigned char *buf, size_t size)
{
	FILE *f = fopen(path(name), "rb");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, size, f);
	fclose(f);
	return n;
}

/* Serve one TLS connection on fd; exit 0 when the client was happy, 3 when it refused */
static pid_t server(int fd, const char *cert, const char *key)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		_exit(2);
	struct conn c;
	const char *err;
	conn_init(&c, fd, fd, SMTP_MAX_CMD_LINE, 5);
	if (conn_starttls(&c, ctx, &err) == -1)
		_exit(3);
	conn_printf(&c, "hello\r\n");
	conn_flush(&c);
	const char *line;
	size_t len;
	(void)conn_read_line(&c, &line, &len);
	conn_deinit(&c);
	SSL_CTX_free(ctx);
	_exit(0);
}

/* Connect with policy p to a server with cert/key; the result in *res. */
static int connect_to(const char *cert, const char *key, const char *cafile,
		      const struct conn_tls_policy *p, struct conn_tls_result *res,
		      const char **err)
{
	int sv[2];
	*err = NULL;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid_t pid = server(sv[1], path(cert), path(key));
	SSL_CTX *ctx = conn_client_ctx_new(cafile != NULL ? path(cafile) : NULL, err);
	CHECK(ctx != NULL);
	struct conn c;
	conn_init(&c, sv[0], sv[0], SMTP_MAX_CMD_LINE, 5);
	int r = conn_connect_tls_mode(&c, ctx, p, res, err);
	if (r == 0) {
		const char *line;
		size_t len;
		CHECK(conn_read_line(&c, &line, &len) == 1);
		CHECK_STR(line, "hello");
	} else {
		CHECK(c.failed);
	}
	conn_deinit(&c);
	close(sv[0]);
	int st;
	waitpid(pid, &st, 0);
	/* the server saw the handshake succeed exactly when the client did */
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == (r == 0 ? 0 : 3));
	close(sv[1]);
	SSL_CTX_free(ctx);
	return r;
}

static void test_opportunistic(void)
{
	struct conn_tls_result res;
	const char *err;
	struct conn_tls_policy p = { .mode = CONN_TLS_OPPORTUNISTIC, .host = "mx.163.test" };

	/* self-signed: connected, not verified, and why */
	CHECK(connect_to("self.crt", "self.key", "ca.crt", &p, &res, &err) == 0);
	CHECK(!res.verified);
	CHECK(strstr(res.verify_error, "self-signed") != NULL);
	CHECK_STR(res.subject, "CN=mx.163.test");
	CHECK(strncmp(res.version, "TLSv1.", 6) == 0);
	CHECK(res.cipher[0] != '\0');
	CHECK(!res.dane_matched && res.dane_usage == -1);

	/* a chain from a trusted CA that names the host: verified */
	p.host = "mx.sina.test";
	CHECK(connect_to("chain.crt", "leaf.key", "ca.crt", &p, &res, &err) == 0);
	CHECK(res.verified);
	CHECK_STR(res.verify_error, "");
	CHECK_STR(res.issuer, "CN=Postern DANE Intermediate");
	/* the same chain for another name: connected, not verified */
	p.host = "mx.163.test";
	CHECK(connect_to("chain.crt", "leaf.key", "ca.crt", &p, &res, &err) == 0);
	CHECK(!res.verified);
	CHECK(strstr(res.verify_error, "mismatch") != NULL);
}

static void test_dane(void)
{
	struct conn_tls_result res;
	const char *err;
	unsigned char self311[64], other311[64], int201[64], ca201[64];
	size_t ls = load("self.311", self311, sizeof(self311));
	size_t lo = load("other.311", other311, sizeof(other311));
	size_t li = load("int.201", int201, sizeof(int201));
	size_t lc = load("ca.201", ca201, sizeof(ca201));
	CHECK(ls == 32 && lo == 32 && li == 32 && lc == 32);

	/* DANE-EE 3 1 1 of the server's key: authenticated, though self-signed, no CA
	 * trusted, and whatever name the certificate has */
	struct conn_tlsa ee = { 3, 1, 1, self311, ls };
	struct conn_tls_policy p = { .mode = CONN_TLS_DANE, .host = "mx.sina.test",
		.tlsa = &ee, .ntlsa = 1 };
	CHECK(connect_to("self.crt", "self.key", NULL, &p, &res, &err) == 0);
	CHECK(res.verified && res.dane_matched);
	CHECK(res.dane_usage == 3 && res.dane_selector == 1 && res.dane_mtype == 1);
	CHECK(res.dane_depth == 0 && res.dane_usable == 1);
	CHECK_STR(res.subject, "CN=mx.163.test");

	/* a record for another key: the handshake fails */
	struct conn_tlsa wrong = { 3, 1, 1, other311, lo };
	p.tlsa = &wrong;
	CHECK(connect_to("self.crt", "self.key", NULL, &p, &res, &err) == -1);
	CHECK(err != NULL && res.verify_error[0] != '\0');
	CHECK(!res.verified);

	/* one of two records matching is enough */
	struct conn_tlsa two[] = { { 3, 1, 1, other311, lo }, { 3, 1, 1, self311, ls } };
	p.tlsa = two;
	p.ntlsa = 2;
	CHECK(connect_to("self.crt", "self.key", NULL, &p, &res, &err) == 0);
	CHECK(res.verified && res.dane_usable == 2);

	/* DANE-TA 2 0 1 of the intermediate the server sends: the chain is built to it and
	 * the leaf must name the host (or another reference identifier) */
	struct conn_tlsa ta = { 2, 0, 1, int201, li };
	struct conn_tls_policy pt = { .mode = CONN_TLS_DANE, .host = "mx.sina.test",
		.tlsa = &ta, .ntlsa = 1 };
	CHECK(connect_to("chain.crt", "leaf.key", NULL, &pt, &res, &err) == 0);
	CHECK(res.verified && res.dane_usage == 2 && res.dane_depth == 1);
	pt.host = "mx.163.test";
	CHECK(connect_to("chain.crt", "leaf.key", NULL, &pt, &res, &err) == -1);
	const char *names[] = { "mx.sina.test" };
	pt.names = names;
	pt.nnames = 1;
	CHECK(connect_to("chain.crt", "leaf.key", NULL, &pt, &res, &err) == 0);
	CHECK(res.verified);
	/* the root that the server does not send cannot be matched by a 2 0 1 digest */
	struct conn_tlsa ta_root = { 2, 0, 1, ca201, lc };
	struct conn_tls_policy pr = { .mode = CONN_TLS_DANE, .host = "mx.sina.test",
		.tlsa = &ta_root, .ntlsa = 1 };
	CHECK(connect_to("chain.crt", "leaf.key", NULL, &pr, &res, &err) == -1);

	/* only unusable records: PKIX-EE (RFC 7672 section 3.1.3) and a SHA-256 digest of
	 * 31 bytes: encrypted, not authenticated */
	struct conn_tlsa unusable[] = { { 1, 1, 1, self311, ls }, { 3, 1, 1, other311, lo - 1 } };
	struct conn_tls_policy pu = { .mode = CONN_TLS_DANE, .host = "mx.sina.test",
		.tlsa = unusable, .ntlsa = 2 };
	CHECK(connect_to("other.crt", "other.key", NULL, &pu, &res, &err) == 0);
	CHECK(res.dane_usable == 0 && !res.dane_matched && !res.verified);

	/* DANE needs the base domain */
	pu.host = NULL;
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct conn c;
	SSL_CTX *ctx = conn_client_ctx_new(NULL, &err);
	conn_init(&c, sv[0], sv[0], SMTP_MAX_CMD_LINE, 1);
	CHECK(conn_connect_tls_mode(&c, ctx, &pu, &res, &err) == -1);
	CHECK_STR(err, "verification needs a host name");
	conn_deinit(&c);
	close(sv[0]);
	close(sv[1]);
	SSL_CTX_free(ctx);
}

static void test_verify(void)
{
	struct conn_tls_result res;
	const char *err;
	struct conn_tls_policy p = { .mode = CONN_TLS_VERIFY, .host = "mx.sina.test" };

	CHECK(connect_to("chain.crt", "leaf.key", "ca.crt", &p, &res, &err) == 0);
	CHECK(res.verified);
	CHECK(connect_to("self.crt", "self.key", "ca.crt", &p, &res, &err) == -1);
	CHECK(err != NULL && strstr(err, "self-signed") != NULL);
	p.host = "relay.test";
	CHECK(connect_to("chain.crt", "leaf.key", "ca.crt", &p, &res, &err) == -1);
	CHECK(err != NULL && strstr(err, "mismatch") != NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (util_snprintf(dir, sizeof(dir), "/tmp/postern-dane-XXXXXX") < 0 ||
	    mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	CHECK(make_certs());
	test_opportunistic();
	test_dane();
	test_verify();
	char cmd[128];
	if (util_snprintf(cmd, sizeof(cmd), "rm -rf %s", dir) >= 0 && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return unit_done("test_conn_dane");
}
