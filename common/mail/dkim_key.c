/* DKIM keys: names, generation, the key files, the DNS record to publish (dkim.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/base64.h"
#include "mail/dkim.h"

bool dkim_name_ok(const char *name)
{
	size_t label = 0, len = strlen(name);

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		if (ch == '.') {
			if (label == 0 || name[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');
		if (!(alnum || (ch == '-' && label > 0)) || ++label > 63)
			return false;
	}
	return label > 0 && name[len - 1] != '-';
}

int dkim_key_alg(EVP_PKEY *key, enum dkim_alg *alg_r, const char **error_r)
{
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(key) < 1024) {
			*error_r = "RSA keys under 1024 bits are not allowed (RFC 8301)";
			return -1;
		}
		*alg_r = DKIM_ALG_RSA_SHA256;
		return 0;
	case EVP_PKEY_ED25519:
		*alg_r = DKIM_ALG_ED25519_SHA256;
		return 0;
	default:
		*error_r = "a DKIM key must be RSA or Ed25519";
		return -1;
	}
}

const char *dkim_alg_key_type(enum dkim_alg alg)
{
	return alg == DKIM_ALG_RSA_SHA256 ? "rsa" : "ed25519";
}

int dkim_alg_parse(const char *s, enum dkim_alg *alg_r)
{
	if (strcmp(s, "rsa") == 0)
		*alg_r = DKIM_ALG_RSA_SHA256;
	else if (strcmp(s, "ed25519") == 0)
		*alg_r = DKIM_ALG_ED25519_SHA256;
	else
		return -1;
	return 0;
}

int dkim_key_generate(enum dkim_alg alg, EVP_PKEY **key_r, const char **error_r)
{
	*key_r = alg == DKIM_ALG_RSA_SHA256 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
		 EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (*key_r == NULL) {
		*error_r = "key generation failed (OpenSSL)";
		return -1;
	}
	return 0;
}

int dkim_key_path(const char *dir, const char *domain, const char *selector, char *buf,
		  size_t size)
{
	if (!dkim_name_ok(domain) || !dkim_name_ok(selector))
		return -1;
	return util_snprintf(buf, size, "%s/%s.%s.key", dir, domain, selector) < 0 ? -1 : 0;
}

int dkim_key_save(const char *path, EVP_PKEY *key, const char **error_r)
{
	BIO *bio = BIO_new(BIO_s_secmem());   /* cleared when freed */
	char *pem;
	long len;

	if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (len = BIO_get_mem_data(bio, &pem)) <= 0) {
		BIO_free(bio);
		*error_r = "the key could not be written as PEM (OpenSSL)";
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		BIO_free(bio);
		*error_r = errno == EEXIST ? "the key file exists already (never overwritten)" :
			   "the key file cannot be created";
		return -1;
	}
	if (fchmod(fd, 0600) == -1 || util_write_all(fd, pem, (size_t)len) == -1 ||
	    fsync(fd) == -1) {
		close(fd);
		unlink(path);
		BIO_free(bio);
		*error_r = "the key file cannot be written";
		return -1;
	}
	BIO_free(bio);
	if (close(fd) == -1) {
		unlink(path);
		*error_r = "the key file cannot be written";
		return -1;
	}
	return 0;
}

int dkim_key_load(const char *path, EVP_PKEY **key_r, const char **error_r)
{
	char buf[DKIM_MAX_KEY_FILE + 1];
	struct stat st;
	enum dkim_alg alg;
	ssize_t n;
	size_t len = 0;

	*key_r = NULL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1) {
		*error_r = errno == ENOENT ? "no such key file" : "the key file cannot be opened";
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		*error_r = "the key file is not a regular file";
		return -1;
	}
	/* BOUNDS: at most sizeof(buf) - 1 bytes, so a longer file is seen as too long */
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > DKIM_MAX_KEY_FILE) {
		util_wipe(buf, sizeof(buf));
		*error_r = "the key file is longer than DKIM_MAX_KEY_FILE";
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	util_wipe(buf, sizeof(buf));
	if (key == NULL) {
		*error_r = "the key file holds no PEM private key";
		return -1;
	}
	if (dkim_key_alg(key, &alg, error_r) == -1) {
		EVP_PKEY_free(key);
		return -1;
	}
	*key_r = key;
	return 0;
}

char *dkim_txt_text(EVP_PKEY *key, const char **error_r)
{
	enum dkim_alg alg;
	unsigned char raw[64], *der = NULL;
	size_t raw_len = sizeof(raw);
	const unsigned char *pub;
	size_t pub_len;

	if (dkim_key_alg(key, &alg, error_r) == -1)
		return NULL;
	if (alg == DKIM_ALG_RSA_SHA256) {
		/* RFC 6376 section 3.6.1: p= is the DER SubjectPublicKeyInfo */
		int n = i2d_PUBKEY(key, &der);
		if (n <= 0) {
			*error_r = "the public key cannot be encoded (OpenSSL)";
			return NULL;
		}
		pub = der;
		pub_len = (size_t)n;
	} else {
		/* RFC 8463 section 4.2: p= is the 32-byte raw public key */
		if (EVP_PKEY_get_raw_public_key(key, raw, &raw_len) != 1) {
			*error_r = "the public key cannot be encoded (OpenSSL)";
			return NULL;
		}
		pub = raw;
		pub_len = raw_len;
	}
	const char *head = alg == DKIM_ALG_RSA_SHA256 ? "v=DKIM1; k=rsa; p=" :
			   "v=DKIM1; k=ed25519; p=";
	size_t head_len = strlen(head);
	char *txt = xmalloc(head_len + BASE64_ENCODED_LEN(pub_len) + 1);
	memcpy(txt, head, head_len);
	base64_encode(pub, pub_len, txt + head_len);
	OPENSSL_free(der);
	return txt;
}

char *dkim_txt_record(EVP_PKEY *key, const char *domain, const char *selector,
		      const char **error_r)
{
	if (!dkim_name_ok(domain) || !dkim_name_ok(selector)) {
		*error_r = "the DKIM domain or selector is not a domain name";
		return NULL;
	}
	char *txt = dkim_txt_text(key, error_r);
	if (txt == NULL)
		return NULL;
	size_t len = strlen(txt);
	/* BOUNDS: names <= 253 each, the strings with quotes and a space per 255 bytes */
	size_t size = 2 * 253 + 32 + len + 3 * (len / 255 + 1) + 1;
	char *rec = xmalloc(size);
	int o = snprintf(rec, size, "%s._domainkey.%s. IN TXT", selector, domain);
	for (size_t i = 0; i < len; i += 255) {
		size_t n = len - i < 255 ? len - i : 255;
		o += snprintf(rec + o, size - (size_t)o, " \"%.*s\"", (int)n, txt + i);
	}
	free(txt);
	return rec;
}
