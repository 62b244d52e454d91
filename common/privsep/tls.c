/* OpenSSL server context, the private key's operations for the worker, resumable
 * sessions kept by the monitor, and the facts that `-t` prints about the certificate.
 *
 * Who holds what (docs/architecture.md, "TLS"):
 * - root, before the fork, builds the SSL_CTX with the certificate chain and a "remote"
 *   key (keyop.c): the public half, whose private operations go to the monitor.  The
 *   key file is not read there, so the forked worker has no copy of it, not even in
 *   freed heap.
 * - the monitor (root, after the fork) loads the key (tls_key_load) and answers the
 *   worker's MSG_KEY_OP (tls_key_answer): it checks each request (the kind fits the key,
 *   the digest is SHA-256/384/512 and has that length, a PSS block is well formed), and
 *   monitor.c allows TLS_MAX_KEY_OPS per connection.  It frees the key before it becomes
 *   the session.
 * - resumption: TLS 1.3 only, in psk_dhe_ke mode (SSL_OP_ALLOW_NO_DHE_KEX stays off: a
 *   resumed session still gets a fresh ECDHE secret, so a stolen resumption secret does
 *   not decrypt a recorded connection).  No session tickets are encrypted at all: with
 *   SSL_OP_NO_TICKET, TLS 1.2 gets no ticket and TLS 1.3 gets a "stateful" one (just a
 *   random session id); the session itself goes to the monitor (MSG_TLS_SESS_PUT), which
 *   keeps it in state_dir/tls-sessions (tlscache.c) and hands it back once, to the worker
 *   that presents its id (MSG_TLS_SESS_GET).  There is no ticket key to steal.  TLS 1.2
 *   sessions are not kept: no TLS 1.2 resumption.
 *
 * Choices (RFC 7525, RFC 8314):
 * - TLS 1.2 or newer.  TLS 1.2 suites: ECDHE key exchange with an AEAD cipher only (forward
 *   secrecy, no CBC).  TLS 1.3: OpenSSL's default suites, which are all AEAD.
 * - The client's cipher preference wins (SSL_OP_CIPHER_SERVER_PREFERENCE stays off): every
 *   suite we allow is strong, and a phone without AES instructions then picks ChaCha20.
 * - No compression (CRIME), no renegotiation (it only serves attacks here), no prompt for
 *   a key passphrase (there is no terminal; under inetd fd 2 is the client).
 * - SSL_OP_IGNORE_UNEXPECTED_EOF: a mail client that closes the socket without a
 *   close_notify after QUIT/LOGOUT is normal; the protocols frame their own end.
 * - The session id context is a hash of the leaf certificate, so a session resumes only
 *   under the certificate it was made with. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include "base/log.h"
#include "privsep/keyop.h"
#include "privsep/tls.h"
#include "privsep/tlscache.h"
#include "base/util.h"

#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* The file of an earlier version's shared ticket keys: removed, nothing uses it. */
#define TLS_OLD_TICKET_FILE "tls-ticket.keys"
/* TLS 1.3 (RFC 8446 section 4.6.1): a ticket lives at most 7 days. */
#define TLS_MAX_TICKET_LIFETIME 604800

static int tls_ex_index = -1;
static EVP_PKEY *tls_read_key(const char *path, const EVP_PKEY *pub);

/* error_r text: "what path: reason".  The reason is the last error in OpenSSL's queue
 * that is not a generic wrapper ("PEM lib", "system lib"): "no start line", "bad password
 * read", "key values mismatch".  Empties the queue. */
static const char *tls_error(struct tls_error *eb, const char *what, const char *path)
{
	unsigned long e, best = 0, last = 0;
	const char *reason = NULL;

	while ((e = ERR_get_error()) != 0) {
		const char *r = ERR_reason_error_string(e);
		size_t n = r != NULL ? strlen(r) : 0;
		last = e;
		if (r != NULL && !(n >= 4 && strcmp(r + n - 4, " lib") == 0))
			best = e;
	}
	if (best == 0)
		best = last;
	if (best != 0)
		reason = ERR_reason_error_string(best);
	if (reason == NULL)
		reason = "unknown error";
	if (util_snprintf(eb->text, sizeof(eb->text), "%s%s%s: %s", what,
			  path != NULL ? " " : "", path != NULL ? path : "", reason) < 0)
		return what;
	return eb->text;
}

/* A file we are about to hand to OpenSSL: say plainly if it cannot be read. */
static int tls_readable(struct tls_error *eb, const char *what, const char *path,
			const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		if (util_snprintf(eb->text, sizeof(eb->text), "%s %s: %s", what, path,
				  strerror(errno)) < 0)
			*error_r = what;
		else
			*error_r = eb->text;
		return -1;
	}
	close(fd);
	return 0;
}

/* Never prompt for a passphrase. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* ---- worker: sessions kept by the monitor ---- */

/* How many session lookups and hand-overs this SSL made: the worker keeps within the
 * limits that monitor.c enforces, rather than be cut off by it. */
#define TLS_COUNT_GETS 0
#define TLS_COUNT_PUTS 8
static unsigned tls_count(SSL *ssl, int which)
{
	uintptr_t v = (uintptr_t)SSL_get_ex_data(ssl, tls_ex_index);
	unsigned n = (unsigned)((v >> which) & 0xff);
	if (n < 0xff)
		(void)SSL_set_ex_data(ssl, tls_ex_index, (void *)(v + ((uintptr_t)1 << which)));
	return n;
}

/* A new TLS 1.3 session (its id is the ticket the client gets): the monitor keeps it.
 * TLS 1.2 sessions are kept nowhere.  Returns 0: OpenSSL keeps no extra reference. */
static int tls_sess_new_cb(SSL *ssl, SSL_SESSION *sess)
{
	unsigned char buf[TLS_SESSION_MAX], *p = buf;
	unsigned int idlen = 0;
	const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
	struct msg m;

	if (SSL_SESSION_get_protocol_version(sess) != TLS1_3_VERSION || idlen == 0 ||
	    idlen > TLSCACHE_ID_MAX || tls_count(ssl, TLS_COUNT_PUTS) >= TLS_MAX_SESSION_PUTS)
		return 0;
	int n = i2d_SSL_SESSION(sess, NULL);
	if (n <= 0 || n > (int)sizeof(buf) || i2d_SSL_SESSION(sess, &p) != n)
		return 0;
	msg_init(&m, MSG_TLS_SESS_PUT);
	if (msg_add(&m, MSG_TLS_SESS_ID, id, idlen) == 0 &&
	    msg_add(&m, MSG_TLS_SESS_DATA, buf, (size_t)n) == 0)
		(void)keyop_send(&m);
	msg_wipe(&m);
	util_wipe(buf, sizeof(buf));
	return 0;
}

/* A client presents a TLS 1.3 ticket: ask the monitor for that session (it hands it out
 * once).  NULL: a full handshake. */
static SSL_SESSION *tls_sess_get_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
	struct msg req, rep;
	SSL_SESSION *sess = NULL;

	*copy = 0;   /* the session made here is OpenSSL's */
	if (SSL_version(ssl) != TLS1_3_VERSION || len <= 0 || len > TLSCACHE_ID_MAX ||
	    tls_count(ssl, TLS_COUNT_GETS) >= TLS_MAX_SESSION_GETS)
		return NULL;
	msg_init(&req, MSG_TLS_SESS_GET);
	if (msg_add(&req, MSG_TLS_SESS_ID, id, (size_t)len) == -1 ||
	    keyop_call(&req, MSG_TLS_SESS_REPLY, &rep) == -1)
		return NULL;
	const struct msg_field *f = msg_get(&rep, MSG_TLS_SESS_DATA);
	if (f != NULL && f->len > 0) {
		const unsigned char *p = f->data;
		sess = d2i_SSL_SESSION(NULL, &p, f->len);
		if (sess != NULL && (p != f->data + f->len ||
				     SSL_SESSION_get_protocol_version(sess) != TLS1_3_VERSION)) {
			SSL_SESSION_free(sess);
			sess = NULL;
		}
	}
	msg_wipe(&rep);
	ERR_clear_error();
	return sess;
}

/* Seconds a session may be resumed: tls_ticket_rotate, at most 7 days. */
static unsigned tls_sess_lifetime(const struct config *cfg)
{
	unsigned t = cfg->tls_ticket_rotate;
	return t == 0 || t > TLS_MAX_TICKET_LIFETIME ? TLS_MAX_TICKET_LIFETIME : t;
}

/* Resumption as described at the top; without a usable state_dir, none at all. */
static void tls_ctx_sessions(SSL_CTX *ctx, const struct config *cfg)
{
	char path[PATH_MAX];

	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX);
	(void)SSL_CTX_set_max_early_data(ctx, 0);
	(void)SSL_CTX_set_recv_max_early_data(ctx, 0);
	if (cfg->state_dir == NULL || cfg->state_dir[0] != '/') {
		log_warn("tls-sessions: dir=%s, reason=no state_dir, resumption disabled",
			 cfg->state_dir != NULL ? cfg->state_dir : "");
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		(void)SSL_CTX_set_num_tickets(ctx, 0);
		return;
	}
	/* The shared ticket keys of earlier versions: their tickets are refused now, and
	 * the keys could still open recorded ones. */
	if (util_snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, TLS_OLD_TICKET_FILE) > 0 &&
	    unlink(path) == 0) {
		log_info("tls-sessions: removed=%s", path);
		if (util_snprintf(path, sizeof(path), "%s/%s.lock", cfg->state_dir,
				  TLS_OLD_TICKET_FILE) > 0)
			(void)unlink(path);
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, tls_sess_new_cb);
	SSL_CTX_sess_set_get_cb(ctx, tls_sess_get_cb);
	SSL_CTX_set_timeout(ctx, (long)tls_sess_lifetime(cfg));
	/* TLS 1.3: one ticket per handshake (OpenSSL sends two by default); a mail client
	 * holds one connection at a time per account. */
	(void)SSL_CTX_set_num_tickets(ctx, 1);
}

/* ---- monitor: the private key ---- */

EVP_PKEY *tls_key_load(struct tls_error *eb, const struct config *cfg, SSL_CTX *ctx,
		       const char **error_r)
{
	X509 *leaf = ctx != NULL ? SSL_CTX_get0_certificate(ctx) : NULL;

	if (leaf == NULL || cfg->tls_key == NULL) {
		*error_r = "no certificate";
		return NULL;
	}
	if (tls_readable(eb, "tls_key", cfg->tls_key, error_r) < 0)
		return NULL;
	ERR_clear_error();
	EVP_PKEY *key = tls_read_key(cfg->tls_key, X509_get0_pubkey(leaf));
	if (key == NULL) {
		*error_r = tls_error(eb, "tls_key", cfg->tls_key);
		return NULL;
	}
	if (X509_check_private_key(leaf, key) != 1) {
		ERR_clear_error();
		EVP_PKEY_free(key);
		*error_r = "tls_key does not match tls_cert";   /* the caller logs both paths */
		return NULL;
	}
	return key;
}

void tls_key_free(EVP_PKEY **key)
{
	EVP_PKEY_free(*key);   /* OpenSSL clears private numbers as it frees them */
	*key = NULL;
}

/* The digests a TLS 1.2/1.3 signature may use here. */
static const EVP_MD *tls_key_md(uint32_t nid)
{
	switch (nid) {
	case NID_sha256:
		return EVP_sha256();
	case NID_sha384:
		return EVP_sha384();
	case NID_sha512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* MGF1 (RFC 8017 B.2.1) of seed, XORed into out. */
static int tls_mgf1_xor(const EVP_MD *md, const unsigned char *seed, size_t seedlen,
			unsigned char *out, size_t len)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	size_t hlen = (size_t)EVP_MD_get_size(md), done = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int rc = -1;

	for (uint32_t counter = 0; c != NULL && done < len; counter++) {
		unsigned char cb[4] = { (unsigned char)(counter >> 24), (unsigned char)(counter >> 16),
					(unsigned char)(counter >> 8), (unsigned char)counter };
		if (EVP_DigestInit_ex(c, md, NULL) != 1 || EVP_DigestUpdate(c, seed, seedlen) != 1 ||
		    EVP_DigestUpdate(c, cb, 4) != 1 || EVP_DigestFinal_ex(c, h, NULL) != 1)
			goto out;
		for (size_t i = 0; i < hlen && done < len; i++)
			out[done++] ^= h[i];
	}
	rc = c != NULL ? 0 : -1;
out:
	EVP_MD_CTX_free(c);
	return rc;
}

/* Is block (the modulus' length) an EMSA-PSS encoding (RFC 8017 9.1.1) with SHA-256, 384
 * or 512, MGF1 with the same hash and a salt as long as the hash, as TLS uses?  What is
 * signed is then a hash, never a chosen number: the monitor is no raw RSA oracle (a
 * random block passes with odds below 2^-1000). */
static bool tls_pss_well_formed(int modbits, const unsigned char *block, size_t k)
{
	static const int nids[] = { NID_sha256, NID_sha384, NID_sha512 };
	unsigned char db[1024];
	size_t embits = (size_t)modbits - 1, emlen = (embits + 7) / 8;
	const unsigned char *em = block;

	if (modbits < 1024 || k > sizeof(db) || emlen > k || k - emlen > 1)
		return false;
	if (k > emlen) {         /* modbits = 8n + 1: a leading zero byte */
		if (block[0] != 0)
			return false;
		em++;
	}
	if (em[emlen - 1] != 0xbc)
		return false;
	for (size_t n = 0; n < sizeof(nids) / sizeof(nids[0]); n++) {
		const EVP_MD *md = tls_key_md((uint32_t)nids[n]);
		size_t hlen = (size_t)EVP_MD_get_size(md);
		if (emlen < 2 * hlen + 2)
			continue;
		size_t dblen = emlen - hlen - 1;          /* BOUNDS: emlen >= 2 hlen + 2 */
		memcpy(db, em, dblen);
		if (tls_mgf1_xor(md, em + dblen, hlen, db, dblen) == -1)
			return false;
		if (embits % 8 != 0)
			db[0] &= (unsigned char)(0xff >> (8 - embits % 8));
		size_t ps = dblen - hlen - 1;             /* zeros, then 0x01, then the salt */
		unsigned char acc = 0;
		for (size_t i = 0; i < ps; i++)
			acc |= db[i];
		bool ok = acc == 0 && db[ps] == 0x01;
		util_wipe(db, dblen);
		if (ok)
			return true;
	}
	return false;
}

/* The request's own fields: a kind TLS needs, and for the digest kinds SHA-256/384/512
 * with a digest of exactly that length.  0 or -1. */
static int tls_key_parse(const struct msg *req, uint8_t *kind_r, const EVP_MD **md_r,
			 const struct msg_field **data_r, const char **error_r)
{
	const struct msg_field *d = msg_get(req, MSG_KEY_OP_DATA);
	uint32_t nid;

	*md_r = NULL;
	if (msg_get_u8(req, MSG_KEY_OP_KIND, kind_r) == -1 || d == NULL || d->len == 0) {
		*error_r = "malformed";
		return -1;
	}
	switch (*kind_r) {
	case KEYOP_ECDSA_SIGN:
	case KEYOP_RSA_PKCS1_SIGN:
		if (msg_get_u32(req, MSG_KEY_OP_ARG, &nid) == -1 || (*md_r = tls_key_md(nid)) == NULL ||
		    d->len != (size_t)EVP_MD_get_size(*md_r)) {
			*error_r = "digest not SHA-256/384/512 or not of its length";
			return -1;
		}
		break;
	case KEYOP_RSA_PSS_BLOCK:
		if (msg_get(req, MSG_KEY_OP_ARG) != NULL) {
			*error_r = "malformed";
			return -1;
		}
		break;
	default:
		*error_r = "unknown operation";
		return -1;
	}
	*data_r = d;
	return 0;
}

/* Does the request fit key (the private key, or the certificate's public key: the same
 * type, size and bits)?  0 or -1. */
static int tls_key_fits(EVP_PKEY *key, uint8_t kind, const struct msg_field *d,
			const char **error_r)
{
	if (EVP_PKEY_get_base_id(key) != (kind == KEYOP_ECDSA_SIGN ? EVP_PKEY_EC : EVP_PKEY_RSA)) {
		*error_r = "operation does not fit the key";
		return -1;
	}
	if (kind == KEYOP_RSA_PSS_BLOCK &&
	    (d->len != (size_t)EVP_PKEY_get_size(key) ||
	     !tls_pss_well_formed(EVP_PKEY_get_bits(key), d->data, d->len))) {
		*error_r = "not a PSS-encoded block";
		return -1;
	}
	return 0;
}

int tls_key_check(EVP_PKEY *pub, const struct msg *req, const char **error_r)
{
	const struct msg_field *d;
	const EVP_MD *md;
	uint8_t kind;

	if (tls_key_parse(req, &kind, &md, &d, error_r) == -1)
		return -1;
	return pub == NULL ? 0 : tls_key_fits(pub, kind, d, error_r);
}

int tls_key_answer(EVP_PKEY *key, const struct msg *req, struct msg *reply,
		   const char **error_r)
{
	const struct msg_field *d;
	const EVP_MD *md;
	unsigned char sig[1024];      /* MSG_KEY_OP_REPLY_DATA's maximum: RSA-8192 */
	size_t siglen = sizeof(sig);
	uint8_t kind;

	if (tls_key_parse(req, &kind, &md, &d, error_r) == -1)
		return -1;
	msg_init(reply, MSG_KEY_OP_REPLY);
	if (key == NULL)            /* not the worker's fault: the key file is broken */
		return msg_add_u8(reply, MSG_KEY_OP_REPLY_STATUS, 1);
	if (tls_key_fits(key, kind, d, error_r) == -1)
		return -1;
	ERR_clear_error();
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	bool ok = pctx != NULL && EVP_PKEY_sign_init(pctx) == 1 &&
		  (kind == KEYOP_ECDSA_SIGN ||
		   EVP_PKEY_CTX_set_rsa_padding(pctx, kind == KEYOP_RSA_PSS_BLOCK ?
						RSA_NO_PADDING : RSA_PKCS1_PADDING) == 1) &&
		  (md == NULL || EVP_PKEY_CTX_set_signature_md(pctx, md) == 1) &&
		  EVP_PKEY_sign(pctx, sig, &siglen, d->data, d->len) == 1;
	EVP_PKEY_CTX_free(pctx);
	if (!ok) {
		struct tls_error eb;
		log_err("tls-key: error=%s", tls_error(&eb, "signing failed", NULL));
	}
	ERR_clear_error();
	if (msg_add_u8(reply, MSG_KEY_OP_REPLY_STATUS, ok ? 0 : 1) == -1 ||
	    (ok && msg_add(reply, MSG_KEY_OP_REPLY_DATA, sig, siglen) == -1)) {
		*error_r = "reply too long";
		return -1;
	}
	return 0;
}

/* ---- monitor: the session store ---- */

static int tls_sess_path(const struct config *cfg, char *path, size_t size)
{
	if (cfg->state_dir == NULL || cfg->state_dir[0] != '/')
		return -1;
	return util_snprintf(path, size, "%s/%s", cfg->state_dir, TLSCACHE_FILE) < 0 ? -1 : 0;
}

int tls_sess_put(const struct config *cfg, const struct msg *req, time_t now)
{
	const struct msg_field *id = msg_get(req, MSG_TLS_SESS_ID);
	const struct msg_field *data = msg_get(req, MSG_TLS_SESS_DATA);
	char path[PATH_MAX];
	const char *err = "no state_dir";

	if (id == NULL || data == NULL || id->len == 0 || data->len == 0)
		return -1;
	/* Kept as bytes: root never parses the worker's session. */
	if (tls_sess_path(cfg, path, sizeof(path)) == -1 ||
	    tlscache_put(path, id->data, id->len, data->data, data->len, now,
			 tls_sess_lifetime(cfg), &err) == -1)
		log_warn("tls-sessions: put, error=%s", err);
	return 0;
}

int tls_sess_get(const struct config *cfg, const struct msg *req, time_t now,
		 struct msg *reply)
{
	const struct msg_field *id = msg_get(req, MSG_TLS_SESS_ID);
	unsigned char buf[TLS_SESSION_MAX];
	char path[PATH_MAX];
	const char *err = "no state_dir";
	size_t len = 0;
	int r = -1;

	if (id == NULL || id->len == 0)
		return -1;
	msg_init(reply, MSG_TLS_SESS_REPLY);
	if (tls_sess_path(cfg, path, sizeof(path)) == 0)
		r = tlscache_take(path, id->data, id->len, now, tls_sess_lifetime(cfg), buf,
				  sizeof(buf), &len, &err);
	if (r == -1)
		log_warn("tls-sessions: get, error=%s", err);
	if (r == 1 && msg_add(reply, MSG_TLS_SESS_DATA, buf, len) == -1)
		r = 0;
	util_wipe(buf, sizeof(buf));
	return 0;
}
/* Extra chain certificates from a separate file. */
static int tls_ctx_chain(struct tls_error *eb, SSL_CTX *ctx, const char *path,
			 const char **error_r)
{
	BIO *bio = BIO_new_file(path, "r");
	int n = 0;
	X509 *x;

	if (bio == NULL) {
		*error_r = tls_error(eb, "tls_chain", path);
		return -1;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			BIO_free(bio);
			*error_r = tls_error(eb, "tls_chain", path);
			return -1;
		}
		n++;
	}
	BIO_free(bio);
	if (n == 0) {
		*error_r = tls_error(eb, "tls_chain (no certificate)", path);
		return -1;
	}
	ERR_clear_error(); /* the "no start line" that ended the loop */
	return 0;
}

SSL_CTX *tls_ctx_new(struct tls_error *eb, const struct config *cfg, const char **error_r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		*error_r = "tls_cert and tls_key must be set";
		return NULL;
	}
	if (tls_ex_index == -1) {
		tls_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
		if (tls_ex_index == -1) {
			*error_r = "SSL_get_ex_new_index failed";
			return NULL;
		}
	}
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_error(eb, "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		*error_r = tls_error(eb, "TLS settings", NULL);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);

	if (tls_readable(eb, "tls_cert", cfg->tls_cert, error_r) < 0 ||
	    tls_readable(eb, "tls_key", cfg->tls_key, error_r) < 0 ||
	    (cfg->tls_chain != NULL && cfg->tls_chain[0] != '\0' &&
	     tls_readable(eb, "tls_chain", cfg->tls_chain, error_r) < 0))
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		*error_r = tls_error(eb, "tls_cert", cfg->tls_cert);
		goto fail;
	}
	if (cfg->tls_chain != NULL && cfg->tls_chain[0] != '\0' &&
	    tls_ctx_chain(eb, ctx, cfg->tls_chain, error_r) < 0)
		goto fail;
	/* Not the key itself: its public half, whose private operations the monitor does
	 * (keyop.c).  The monitor reads the key file after the fork (tls_key_load) and
	 * checks there that it matches. */
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	EVP_PKEY *pub = cert != NULL ? X509_get0_pubkey(cert) : NULL;
	EVP_PKEY *remote = pub != NULL ? keyop_remote_key(pub, error_r) : NULL;
	if (pub == NULL)
		*error_r = tls_error(eb, "tls_cert (no public key)", cfg->tls_cert);
	if (remote == NULL)
		goto fail;
	if (SSL_CTX_use_PrivateKey(ctx, remote) != 1) {
		EVP_PKEY_free(remote);
		*error_r = tls_error(eb, "remote key", NULL);
		goto fail;
	}
	EVP_PKEY_free(remote);

	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	if (leaf == NULL || X509_digest(leaf, EVP_sha256(), md, &mdlen) != 1 ||
	    mdlen > SSL_MAX_SID_CTX_LENGTH ||
	    SSL_CTX_set_session_id_context(ctx, md, mdlen) != 1) {
		*error_r = tls_error(eb, "session id context", NULL);
		goto fail;
	}
	tls_ctx_sessions(ctx, cfg);
	ERR_clear_error();
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_ctx_free(SSL_CTX **ctx)
{
	SSL_CTX_free(*ctx);
	*ctx = NULL;
}

/* "ECDSA P-256", "RSA 3072", "ED25519". */
static void tls_key_type(EVP_PKEY *pk, char *out, size_t size)
{
	char group[64];
	size_t glen = 0;

	out[0] = '\0';
	if (pk == NULL)
		return;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		(void)util_snprintf(out, size, "RSA %d", EVP_PKEY_get_bits(pk));
		break;
	case EVP_PKEY_EC: {
		const char *nist = NULL;
		if (EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1) {
			nist = EC_curve_nid2nist(OBJ_sn2nid(group));
			if (nist == NULL)
				nist = group;
		}
		(void)util_snprintf(out, size, "ECDSA %s", nist != NULL ? nist : "?");
		break;
	}
	default: {
		const char *name = EVP_PKEY_get0_type_name(pk);
		(void)util_snprintf(out, size, "%s", name != NULL ? name : "unknown");
		break;
	}
	}
}

static X509 *tls_read_cert(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x = NULL;

	if (bio != NULL) {
		x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL);
		BIO_free(bio);
	}
	return x;
}

/* The private key of path, in PEM.  First with OpenSSL's decoders limited to PEM of the
 * certificate's key type (pub): a decoder context for every key type and structure,
 * which PEM_read_bio_PrivateKey() builds, is most of the cost of loading a key in a
 * fresh process, 0.4 of 1 ms (the key process does it at every connection; measured
 * with a P-256 key, 200 forked children each).  Whatever that does not read (a key of
 * another type than the certificate's, which the caller then reports as a mismatch) is
 * read again as before. */
static EVP_PKEY *tls_read_key(const char *path, const EVP_PKEY *pub)
{
	const char *type = pub != NULL ? EVP_PKEY_get0_type_name(pub) : NULL;
	EVP_PKEY *pk = NULL;
	BIO *bio;

	if (type != NULL && (bio = BIO_new_file(path, "r")) != NULL) {
		OSSL_DECODER_CTX *dc = OSSL_DECODER_CTX_new_for_pkey(&pk, "PEM", NULL, type,
						OSSL_KEYMGMT_SELECT_KEYPAIR, NULL, NULL);
		if (dc == NULL ||
		    OSSL_DECODER_CTX_set_pem_password_cb(dc, tls_no_passphrase, NULL) != 1 ||
		    OSSL_DECODER_CTX_get_num_decoders(dc) == 0 ||
		    OSSL_DECODER_from_bio(dc, bio) != 1) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
		OSSL_DECODER_CTX_free(dc);
		BIO_free(bio);
		if (pk != NULL)
			return pk;
		ERR_clear_error();
	}
	bio = BIO_new_file(path, "r");
	if (bio != NULL) {
		pk = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
		BIO_free(bio);
	}
	return pk;
}

int tls_cert_check(struct tls_error *eb, const struct config *cfg, struct tls_cert_info *info,
		   const char **error_r)
{
	int day = 0, sec = 0;

	memset(info, 0, sizeof(*info));
	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		*error_r = "tls_cert and tls_key must be set";
		return -1;
	}
	if (tls_readable(eb, "tls_cert", cfg->tls_cert, error_r) < 0)
		return -1;
	ERR_clear_error();
	X509 *cert = tls_read_cert(cfg->tls_cert);
	if (cert == NULL) {
		*error_r = tls_error(eb, "tls_cert", cfg->tls_cert);
		return -1;
	}
	if (ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(cert)) == 1)
		/* whole days, toward zero; but negative as soon as it has expired */
		info->days_left = day == 0 && sec < 0 ? -1 : day;
	BIO *mem = BIO_new(BIO_s_mem());
	if (mem != NULL) {
		char *p = NULL;
		if (X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
			long n = BIO_get_mem_data(mem, &p);
			if (n > 0 && p != NULL) {
				size_t len = (size_t)n < sizeof(info->subject) - 1 ?
					(size_t)n : sizeof(info->subject) - 1;
				memcpy(info->subject, p, len);
				info->subject[len] = '\0';
			}
		}
		BIO_free(mem);
	}
	tls_key_type(X509_get0_pubkey(cert), info->key_type, sizeof(info->key_type));

	if (tls_readable(eb, "tls_key", cfg->tls_key, error_r) < 0) {
		X509_free(cert);
		return -1;
	}
	ERR_clear_error();
	EVP_PKEY *key = tls_read_key(cfg->tls_key, X509_get0_pubkey(cert));
	if (key == NULL) {
		*error_r = tls_error(eb, "tls_key", cfg->tls_key);
		X509_free(cert);
		return -1;
	}
	info->key_matches = X509_check_private_key(cert, key) == 1;
	EVP_PKEY_free(key);
	X509_free(cert);
	ERR_clear_error();
	return 0;
}
