/* OpenSSL server context, session ticket keys shared through a file, and the facts that
 * `-t` prints about the certificate.  Runs as root in the monitor, before the worker is
 * forked: the worker inherits the finished context and never reads the key files.
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
 * - Resumption across processes: each connection is its own process, so a server-side
 *   session cache is useless (SSL_SESS_CACHE_OFF).  Session tickets carry the state,
 *   encrypted with keys that every process reads from <state_dir>/tls-ticket.keys.  The
 *   session id context is a hash of the leaf certificate, so a session resumes only under
 *   the certificate it was made with.
 *
 * Ticket key file: 160 bytes, the current key set then the previous one (each 16 bytes
 * name, 32 HMAC-SHA256 key, 32 AES-256 key), mode 0600, owned by root.  It is read under
 * an fcntl lock on "<file>.lock"; when it is missing or older than tls_ticket_rotate
 * seconds, the current set becomes the previous one and a fresh current set is written to
 * a temporary file, fsync'd and renamed over it.  New tickets use the current set; a
 * ticket under the previous set is still accepted and renewed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include "base/log.h"
#include "privsep/tls.h"
#include "base/util.h"

#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define TLS_TICKET_FILE "tls-ticket.keys"
#define TLS_KEYNAME_LEN 16
#define TLS_HMAC_OFF 16
#define TLS_AES_OFF 48
/* TLS 1.3 (RFC 8446 section 4.6.1): a ticket lives at most 7 days. */
#define TLS_MAX_TICKET_LIFETIME 604800

/* Keys attached to an SSL_CTX. */
struct tls_tickets {
	unsigned char keys[2][TLS_TICKET_KEYLEN];
};

static int tls_ex_index = -1;
static char tls_errbuf[512];

/* error_r text: "what path: reason".  The reason is the last error in OpenSSL's queue
 * that is not a generic wrapper ("PEM lib", "system lib"): "no start line", "bad password
 * read", "key values mismatch".  Empties the queue. */
static const char *tls_error(const char *what, const char *path)
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
	if (util_snprintf(tls_errbuf, sizeof(tls_errbuf), "%s%s%s: %s", what,
			  path != NULL ? " " : "", path != NULL ? path : "", reason) < 0)
		return what;
	return tls_errbuf;
}

/* A file we are about to hand to OpenSSL: say plainly if it cannot be read. */
static int tls_readable(const char *what, const char *path, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		if (util_snprintf(tls_errbuf, sizeof(tls_errbuf), "%s %s: %s", what, path,
				  strerror(errno)) < 0)
			*error_r = what;
		else
			*error_r = tls_errbuf;
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

static void tls_tickets_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			     void *argp)
{
	if (ptr != NULL) {
		util_wipe(ptr, sizeof(struct tls_tickets));
		free(ptr);
	}
}

static bool tls_all_zero(const unsigned char *p, size_t n)
{
	unsigned char acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static int tls_ticket_use(const unsigned char *set, unsigned char *iv, EVP_CIPHER_CTX *cctx,
			  EVP_MAC_CTX *hctx, int enc)
{
	static char digest[] = "SHA256";
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
						      (void *)(set + TLS_HMAC_OFF), 32);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	if (enc) {
		if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, set + TLS_AES_OFF, iv) != 1)
			return -1;
	} else {
		if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, set + TLS_AES_OFF, iv) != 1)
			return -1;
	}
	return 0;
}

/* OpenSSL's ticket key callback.  enc: 1 issue (current keys), -1 error.  Decrypt: 1 ok,
 * 2 ok but issue a new ticket (made under the previous keys), 0 unknown key (full
 * handshake), -1 error. */
static int tls_ticket_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv,
			 EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_tickets *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ex_index);

	if (t == NULL)
		return enc ? -1 : 0;
	if (enc) {
		const int ivlen = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());
		if (ivlen <= 0 || ivlen > EVP_MAX_IV_LENGTH || RAND_bytes(iv, ivlen) != 1)
			return -1;
		memcpy(key_name, t->keys[0], TLS_KEYNAME_LEN);
		return tls_ticket_use(t->keys[0], iv, cctx, hctx, 1) < 0 ? -1 : 1;
	}
	for (int i = 0; i < 2; i++) {
		if (tls_all_zero(t->keys[i], TLS_TICKET_KEYLEN))
			continue;
		if (CRYPTO_memcmp(key_name, t->keys[i], TLS_KEYNAME_LEN) != 0)
			continue;
		if (tls_ticket_use(t->keys[i], iv, cctx, hctx, 0) < 0)
			return -1;
		return i == 0 ? 1 : 2;
	}
	return 0;
}

/* Write keys to path atomically (temp file, fsync, rename, fsync of the directory). */
static int tls_ticket_keys_write(const char *path, const unsigned char *keys, size_t len,
				 const char **error_r)
{
	char tmp[PATH_MAX], dir[PATH_MAX];

	if (util_snprintf(tmp, sizeof(tmp), "%s.tmp", path) < 0 ||
	    util_snprintf(dir, sizeof(dir), "%s", path) < 0) {
		*error_r = "path too long";
		return -1;
	}
	(void)unlink(tmp); /* a leftover of a crash; we hold the lock */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	if (fchmod(fd, 0600) == -1 || util_write_all(fd, keys, len) == -1 || fsync(fd) == -1) {
		*error_r = strerror(errno);
		close(fd);
		(void)unlink(tmp);
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		*error_r = strerror(errno);
		(void)unlink(tmp);
		return -1;
	}
	char *slash = strrchr(dir, '/');
	if (slash != NULL) {
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd != -1) {
			(void)fsync(dfd); /* the rename survives a crash */
			close(dfd);
		}
	}
	return 0;
}

/* Read the key file if it is ours and sane.  1 read, 0 missing or unusable, -1 error.
 * *mtime_r: its modification time. */
static int tls_ticket_keys_read(const char *path, unsigned char *keys, size_t len,
				time_t *mtime_r, const char **error_r)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP) {
			log_warn("tls-tickets: file=%s, reason=symlink, replaced", path);
			return 0;
		}
		*error_r = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		*error_r = strerror(errno);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
	    st.st_nlink != 1 || st.st_size != (off_t)len) {
		/* another owner, readable by others, a hard link: its keys may be known (or not
		 * ours to use); start afresh, the rename replaces only the name */
		log_warn("tls-tickets: file=%s, reason=bad-owner-mode-or-size, replaced", path);
		close(fd);
		return 0;
	}
	int r = util_read_full(fd, keys, len);
	close(fd);
	if (r != 1) {
		*error_r = "short read";
		return -1;
	}
	*mtime_r = st.st_mtime;
	return 1;
}

int tls_ticket_keys_load(const char *path, unsigned rotate_s, time_t now,
			 unsigned char keys_r[2][TLS_TICKET_KEYLEN], const char **error_r)
{
	unsigned char keys[2][TLS_TICKET_KEYLEN];
	char lockpath[PATH_MAX];
	time_t mtime = 0;
	int ret = -1;

	if (util_snprintf(lockpath, sizeof(lockpath), "%s.lock", path) < 0) {
		*error_r = "path too long";
		return -1;
	}
	int lfd = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lfd == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	while (fcntl(lfd, F_SETLKW, &fl) == -1) {
		if (errno != EINTR) {
			*error_r = strerror(errno);
			close(lfd);
			return -1;
		}
	}

	int r = tls_ticket_keys_read(path, &keys[0][0], sizeof(keys), &mtime, error_r);
	if (r < 0)
		goto out;
	bool rotate = r == 0;
	if (r == 1 && rotate_s != 0) {
		/* old, or far in the future (the clock went back): rotate */
		if (now >= mtime ? (uint64_t)(now - mtime) >= rotate_s :
		    (uint64_t)(mtime - now) >= rotate_s)
			rotate = true;
	}
	if (rotate) {
		if (r == 1)
			memcpy(keys[1], keys[0], TLS_TICKET_KEYLEN);
		else if (RAND_bytes(keys[1], TLS_TICKET_KEYLEN) != 1)
			goto rand_fail;
		if (RAND_bytes(keys[0], TLS_TICKET_KEYLEN) != 1)
			goto rand_fail;
		if (tls_ticket_keys_write(path, &keys[0][0], sizeof(keys), error_r) < 0)
			goto out;
	}
	memcpy(keys_r, keys, sizeof(keys));
	ret = 0;
	goto out;
rand_fail:
	*error_r = "RAND_bytes failed";
out:
	util_wipe(keys, sizeof(keys));
	close(lfd); /* releases the lock */
	return ret;
}

/* Tickets for this context from the shared key file, or none at all. */
static void tls_ctx_tickets(SSL_CTX *ctx, const struct config *cfg)
{
	char path[PATH_MAX];
	const char *error = "state_dir not set";
	struct tls_tickets *t = xcalloc(1, sizeof(*t));

	if (cfg->state_dir != NULL && cfg->state_dir[0] != '\0') {
		if (util_snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, TLS_TICKET_FILE) < 0)
			error = "path too long";
		else if (tls_ticket_keys_load(path, cfg->tls_ticket_rotate, time(NULL), t->keys,
					      &error) == 0)
			error = NULL;
	}
	if (error == NULL) {
		if (SSL_CTX_set_ex_data(ctx, tls_ex_index, t) == 1) {
			if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb) == 1) {
				long lifetime = cfg->tls_ticket_rotate;
				if (lifetime <= 0 || lifetime > TLS_MAX_TICKET_LIFETIME)
					lifetime = TLS_MAX_TICKET_LIFETIME;
				SSL_CTX_set_timeout(ctx, lifetime);
				return;
			}
			(void)SSL_CTX_set_ex_data(ctx, tls_ex_index, NULL);
		}
		error = "OpenSSL refused the ticket callback";
	}
	tls_tickets_free(NULL, t, NULL, 0, 0, NULL);
	/* Not fatal: without shared keys a ticket could only be used by this one process,
	 * so issue none and do full handshakes. */
	log_warn("tls-tickets: dir=%s, reason=%s, resumption disabled",
		 cfg->state_dir != NULL ? cfg->state_dir : "", error);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	(void)SSL_CTX_set_num_tickets(ctx, 0);
}

/* Extra chain certificates from a separate file. */
static int tls_ctx_chain(SSL_CTX *ctx, const char *path, const char **error_r)
{
	BIO *bio = BIO_new_file(path, "r");
	int n = 0;
	X509 *x;

	if (bio == NULL) {
		*error_r = tls_error("tls_chain", path);
		return -1;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			BIO_free(bio);
			*error_r = tls_error("tls_chain", path);
			return -1;
		}
		n++;
	}
	BIO_free(bio);
	if (n == 0) {
		*error_r = tls_error("tls_chain (no certificate)", path);
		return -1;
	}
	ERR_clear_error(); /* the "no start line" that ended the loop */
	return 0;
}

SSL_CTX *tls_ctx_new(const struct config *cfg, const char **error_r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		*error_r = "tls_cert and tls_key must be set";
		return NULL;
	}
	if (tls_ex_index == -1) {
		tls_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_tickets_free);
		if (tls_ex_index == -1) {
			*error_r = "SSL_CTX_get_ex_new_index failed";
			return NULL;
		}
	}
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_error("SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		*error_r = tls_error("TLS settings", NULL);
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);

	if (tls_readable("tls_cert", cfg->tls_cert, error_r) < 0 ||
	    tls_readable("tls_key", cfg->tls_key, error_r) < 0 ||
	    (cfg->tls_chain != NULL && cfg->tls_chain[0] != '\0' &&
	     tls_readable("tls_chain", cfg->tls_chain, error_r) < 0))
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		*error_r = tls_error("tls_cert", cfg->tls_cert);
		goto fail;
	}
	if (cfg->tls_chain != NULL && cfg->tls_chain[0] != '\0' &&
	    tls_ctx_chain(ctx, cfg->tls_chain, error_r) < 0)
		goto fail;
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
		*error_r = tls_error("tls_key", cfg->tls_key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		/* OpenSSL's reason may be "no certificate assigned" (an RSA key with an ECDSA
		 * certificate): say what it means */
		ERR_clear_error();
		if (util_snprintf(tls_errbuf, sizeof(tls_errbuf),
				  "tls_key %s does not match tls_cert %s", cfg->tls_key,
				  cfg->tls_cert) < 0)
			*error_r = "tls_key does not match tls_cert";
		else
			*error_r = tls_errbuf;
		goto fail;
	}

	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	if (leaf == NULL || X509_digest(leaf, EVP_sha256(), md, &mdlen) != 1 ||
	    mdlen > SSL_MAX_SID_CTX_LENGTH ||
	    SSL_CTX_set_session_id_context(ctx, md, mdlen) != 1) {
		*error_r = tls_error("session id context", NULL);
		goto fail;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* TLS 1.3: one ticket per handshake (OpenSSL sends two by default); a mail client
	 * holds one connection at a time per account. */
	(void)SSL_CTX_set_num_tickets(ctx, 1);
	tls_ctx_tickets(ctx, cfg);
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

static EVP_PKEY *tls_read_key(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *pk = NULL;

	if (bio != NULL) {
		pk = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
		BIO_free(bio);
	}
	return pk;
}

int tls_cert_check(const struct config *cfg, struct tls_cert_info *info, const char **error_r)
{
	int day = 0, sec = 0;

	memset(info, 0, sizeof(*info));
	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		*error_r = "tls_cert and tls_key must be set";
		return -1;
	}
	if (tls_readable("tls_cert", cfg->tls_cert, error_r) < 0)
		return -1;
	ERR_clear_error();
	X509 *cert = tls_read_cert(cfg->tls_cert);
	if (cert == NULL) {
		*error_r = tls_error("tls_cert", cfg->tls_cert);
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

	if (tls_readable("tls_key", cfg->tls_key, error_r) < 0) {
		X509_free(cert);
		return -1;
	}
	ERR_clear_error();
	EVP_PKEY *key = tls_read_key(cfg->tls_key);
	if (key == NULL) {
		*error_r = tls_error("tls_key", cfg->tls_key);
		X509_free(cert);
		return -1;
	}
	info->key_matches = X509_check_private_key(cert, key) == 1;
	EVP_PKEY_free(key);
	X509_free(cert);
	ERR_clear_error();
	return 0;
}
