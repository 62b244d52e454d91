/* smtpc: a test-only driver (never installed) of the outbound SMTP client pieces
 * together: the engine (common/smtp/smtp_client.c), the connection with client TLS and
 * DANE (common/base/conn.c).  It delivers the message on stdin to host:port and prints
 * what the queue runner will log, one line per fact:
 *
 *	tls: version=TLSv1.3, cipher=..., verified=no, dane=none, subject=<CN=...>, reason=<...>
 *	rcpt: to=<bob@x.test>, status=ok, code=250, enh=2.0.0, text=<...>
 *	message: n=1, delivered=2, maybe_twice=no
 *	server: esmtp=yes, pipelining=yes, chunking=yes, starttls=no, auth=no
 *	error: stage=starttls, temporary=yes, reason=<...>, code=454, text=<...>
 *
 * smtpc [options] host port < message
 *   -H name       EHLO name (client.test)
 *   -f from       reverse path ("" for <>)
 *   -r rcpt       a recipient (repeat); "addr,NOTIFY=SUCCESS,FAILURE" style suffixes:
 *                 ",n" NOTIFY=NEVER, ",s" SUCCESS, ",f" FAILURE, ",d" DELAY
 *   -n N          send the message N times on the same connection
 *   -t            no STARTTLS even when offered
 *   -R            require TLS
 *   -m mode       opportunistic (default), dane, verify
 *   -S name       the TLS host name (SNI, name checks, DANE base domain); default host
 *   -C cafile     CA file for verify/opportunistic reporting
 *   -D "u s m hex" a TLSA record (repeat)
 *   -a user:pass  AUTH (after TLS only)
 *   -e envid      DSN ENVID, with RET=HDRS
 *   -u            the message needs SMTPUTF8
 *   -w seconds    cap every wait (default: the engine's RFC 5321 values)
 * Exit: 0 every recipient delivered, 1 some not, 2 usage or connection error. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "base/conn.h"
#include "base/plimits.h"
#include "base/util.h"
#include "smtp/smtp_client.h"

#define MAX_RCPTS 64
#define MAX_TLSA 8

static struct conn_tlsa tlsa[MAX_TLSA];
static unsigned char tlsa_data[MAX_TLSA][64];
static size_t ntlsa;

static int usage(void)
{
	fprintf(stderr, "usage: smtpc [-H name] [-f from] -r rcpt... [-n N] [-t] [-R] "
		"[-m opportunistic|dane|verify] [-S name] [-C cafile] [-D 'u s m hex'] "
		"[-a user:pass] [-e envid] [-u] [-w s] host port < message\n");
	return 2;
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
		ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

static int add_tlsa(const char *s)
{
	unsigned u, sel, mt;
	char hex[200];
	if (ntlsa == MAX_TLSA || sscanf(s, "%u %u %u %199s", &u, &sel, &mt, hex) != 4)
		return -1;
	size_t n = strlen(hex);
	if (n % 2 != 0 || n / 2 > sizeof(tlsa_data[0]))
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		tlsa_data[ntlsa][i] = (unsigned char)(hi * 16 + lo);
	}
	tlsa[ntlsa] = (struct conn_tlsa){ (uint8_t)u, (uint8_t)sel, (uint8_t)mt,
		tlsa_data[ntlsa], n / 2 };
	ntlsa++;
	return 0;
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

static const char *status_name(enum smtp_client_status s)
{
	return s == SMTP_CLIENT_OK ? "ok" : s == SMTP_CLIENT_TEMPFAIL ? "tempfail" :
		s == SMTP_CLIENT_PERMFAIL ? "permfail" : "pending";
}

/* Send what the engine wrote.  0 or -1. */
static int flush_out(struct smtp_client *e, struct conn *c)
{
	const char *d;
	size_t n = smtp_client_output(e, &d);
	if (n == 0)
		return 0;
	return conn_write(c, d, n) < 0 ? -1 : conn_flush(c);
}

static char *read_stdin(size_t *len_r)
{
	size_t cap = 65536, len = 0;
	char *buf = xmalloc(cap);
	ssize_t n;
	while ((n = read(0, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap)
			buf = xrealloc(buf, cap *= 2);
	}
	*len_r = len;
	return buf;
}

int main(int argc, char **argv)
{
	struct smtp_client_params params = { .helo_name = "client.test", .tls = true };
	struct smtp_client_rcpt rcpts[MAX_RCPTS];
	size_t nrcpts = 0;
	const char *from = "", *envid = NULL, *cafile = NULL, *tls_name = NULL;
	enum conn_tls_mode mode = CONN_TLS_OPPORTUNISTIC;
	unsigned times = 1, cap_s = 0;
	bool utf8 = false;
	char *auth = NULL;
	int opt;

	memset(rcpts, 0, sizeof(rcpts));
	while ((opt = getopt(argc, argv, "H:f:r:n:tRm:S:C:D:a:e:uw:")) != -1) {
		switch (opt) {
		case 'H': params.helo_name = optarg; break;
		case 'f': from = optarg; break;
		case 'r': {
			if (nrcpts == MAX_RCPTS)
				return usage();
			char *comma = strchr(optarg, ',');
			unsigned notify = 0;
			for (char *p = comma; p != NULL && *p != '\0'; p++)
				notify |= *p == 'n' ? SMTP_NOTIFY_NEVER : *p == 's' ? SMTP_NOTIFY_SUCCESS :
					*p == 'f' ? SMTP_NOTIFY_FAILURE : *p == 'd' ? SMTP_NOTIFY_DELAY : 0;
			if (comma != NULL)
				*comma = '\0';
			rcpts[nrcpts].addr = optarg;
			rcpts[nrcpts].notify = notify;
			nrcpts++;
			break;
		}
		case 'n': times = (unsigned)atoi(optarg); break;
		case 't': params.tls = false; break;
		case 'R': params.require_tls = true; break;
		case 'm':
			mode = strcmp(optarg, "dane") == 0 ? CONN_TLS_DANE :
				strcmp(optarg, "verify") == 0 ? CONN_TLS_VERIFY : CONN_TLS_OPPORTUNISTIC;
			break;
		case 'S': tls_name = optarg; break;
		case 'C': cafile = optarg; break;
		case 'D':
			if (add_tlsa(optarg) < 0)
				return usage();
			break;
		case 'a': {
			auth = xstrdup(optarg);
			char *colon = strchr(auth, ':');
			if (colon == NULL)
				return usage();
			*colon = '\0';
			params.auth_user = auth;
			params.auth_pass = colon + 1;
			break;
		}
		case 'e': envid = optarg; break;
		case 'u': utf8 = true; break;
		case 'w': cap_s = (unsigned)atoi(optarg); break;
		default: return usage();
		}
	}
	if (argc - optind != 2 || nrcpts == 0 || times == 0)
		return usage();
	const char *host = argv[optind], *port = argv[optind + 1];
	size_t blen;
	char *body = read_stdin(&blen);
	/* RFC 1870: the size with CRLF line ends (a bare LF or CR is sent as CRLF, a
	 * missing last one added), without the dot-stuffing */
	uint64_t size = blen;
	bool eightbit = false;
	for (size_t i = 0; i < blen; i++) {
		if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
			size++;
		if (body[i] == '\r' && (i + 1 == blen || body[i + 1] != '\n'))
			size++;
		eightbit |= (unsigned char)body[i] > 0x7F;
	}
	if (blen > 0 && body[blen - 1] != '\n' && body[blen - 1] != '\r')
		size += 2;

	int fd = dial(host, port);
	if (fd < 0) {
		printf("error: stage=connect, temporary=yes, reason=<%s>\n", strerror(errno));
		return 2;
	}
	SSL_CTX *ctx = NULL;
	const char *err = NULL;
	if (params.tls && (ctx = conn_client_ctx_new(cafile, &err)) == NULL) {
		fprintf(stderr, "smtpc: %s\n", err);
		return 2;
	}
	struct conn c;
	conn_init(&c, fd, fd, SMTP_MAX_REPLY_LINE_PEER, 0);
	struct smtp_client *e = smtp_client_new(&params);
	struct smtp_client_msg m = { .from = from, .size = size, .eightbit = eightbit,
		.smtputf8 = utf8, .ret = envid != NULL ? SMTP_RET_HDRS : SMTP_RET_NONE,
		.envid = envid, .rcpts = rcpts, .nrcpts = nrcpts };
	unsigned sent = 0;
	bool in_msg = false, all_ok = true;
	char buf[4096];

	for (;;) {
		if (flush_out(e, &c) < 0)
			smtp_client_eof(e, "write failed");
		enum smtp_client_want w = smtp_client_want(e);
		if (in_msg && (w == SMTP_CLIENT_IDLE || w == SMTP_CLIENT_DONE)) {
			in_msg = false;
			for (size_t i = 0; i < nrcpts; i++) {
				printf("rcpt: to=<%s>, status=%s, code=%u, enh=%s, text=<%s>\n",
				       rcpts[i].addr, status_name(rcpts[i].status), rcpts[i].reply.code,
				       rcpts[i].reply.enh, rcpts[i].reply.text);
				all_ok &= rcpts[i].status == SMTP_CLIENT_OK;
			}
			printf("message: n=%u, delivered=%zu, maybe_twice=%s\n", sent, m.delivered,
			       m.maybe_twice ? "yes" : "no");
		}
		if (w == SMTP_CLIENT_DONE)
			break;
		if (w == SMTP_CLIENT_IDLE) {
			if (sent == 0) {
				const struct smtp_ehlo *x = smtp_client_ehlo(e);
				printf("server: esmtp=%s, pipelining=%s, chunking=%s, starttls=%s, "
				       "auth=%s\n", smtp_client_esmtp(e) ? "yes" : "no",
				       x->exts & SMTP_EHLO_PIPELINING ? "yes" : "no",
				       x->exts & SMTP_EHLO_CHUNKING ? "yes" : "no",
				       x->exts & SMTP_EHLO_STARTTLS ? "yes" : "no",
				       smtp_client_authenticated(e) ? "yes" : "no");
			}
			if (sent < times) {
				sent++;
				in_msg = true;
				(void)smtp_client_message(e, &m);
			} else {
				smtp_client_quit(e);
			}
			continue;
		}
		if (w == SMTP_CLIENT_BODY) {
			for (size_t off = 0; off < blen; off += 8192) {
				smtp_client_body(e, body + off, blen - off < 8192 ? blen - off : 8192);
				if (flush_out(e, &c) < 0)
					break;
			}
			smtp_client_body_end(e);
			continue;
		}
		if (w == SMTP_CLIENT_TLS) {
			struct conn_tls_policy p = { .mode = mode,
				.host = tls_name != NULL ? tls_name : host, .tlsa = tlsa, .ntlsa = ntlsa };
			struct conn_tls_result r;
			int ok = conn_connect_tls_mode(&c, ctx, &p, &r, &err);
			printf("tls: ok=%s, version=%s, cipher=%s, verified=%s, dane=%s, "
			       "dane_usable=%zu, subject=<%s>, reason=<%s>\n", ok == 0 ? "yes" : "no",
			       r.version, r.cipher, r.verified ? "yes" : "no",
			       r.dane_matched ? (r.dane_usage == 3 ? "ee" : "ta") : "none",
			       r.dane_usable, r.subject, ok == 0 ? r.verify_error : err);
			smtp_client_tls_done(e, ok == 0);
			continue;
		}
		unsigned t = smtp_client_timeout_s(e);
		c.timeout_s = cap_s != 0 && cap_s < t ? cap_s : t;
		ssize_t n = conn_read(&c, buf, sizeof(buf));
		if (n <= 0)
			smtp_client_eof(e, n == 0 ? "connection closed" : "read failed or timeout");
		else
			(void)smtp_client_feed(e, buf, (size_t)n);
	}
	const struct smtp_client_error *er = smtp_client_error(e);
	if (er != NULL) {
		printf("error: stage=%s, temporary=%s, reason=<%s>, code=%u, text=<%s>\n",
		       er->stage, er->temporary ? "yes" : "no", er->reason, er->reply.code,
		       er->reply.text);
		all_ok = false;
	}
	if (sent < times)
		all_ok = false;
	smtp_client_free(&e);
	conn_deinit(&c);
	close(fd);
	SSL_CTX_free(ctx);
	free(body);
	free(auth);
	return all_ok ? 0 : 1;
}
