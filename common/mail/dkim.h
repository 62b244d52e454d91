/* DKIM signing (RFC 6376) with OpenSSL's EVP: rsa-sha256 and ed25519-sha256 (RFC 8463),
 * canonicalization relaxed/relaxed.  No I/O but the key-file functions at the end.
 *
 * The signer is fed the message as the spool stores it (CRLF lines, header, empty line,
 * body) in any chunks; any chunking gives the same signature.  Memory is bounded: the
 * header goes through common/mail/header.c (HEADER_FIELD_MAX, HEADER_MAX_FIELDS) and only
 * the signed fields are kept, at most DKIM_MAX_SIGNED_BYTES of them; the body is hashed
 * as it streams.  A bare LF ends a line as CRLF does (the header parser's rule too): the
 * signature is that of the message with CRLF line ends, the form SMTP sends.
 *
 * Keys: the private keys are root's (0600 in dkim_key_dir); whoever signs loads them with
 * dkim_key_load() while still root and keeps the EVP_PKEY, so the signer itself needs no
 * privilege (delivery runs as the spool user).  RSA keys under 1024 bits are refused
 * (RFC 8301 section 3.2); dkim_key_generate() makes 2048-bit RSA or Ed25519. */
#ifndef POSTERN_DKIM_H
#define POSTERN_DKIM_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <openssl/types.h>

enum dkim_alg {
	DKIM_ALG_RSA_SHA256,         /* k=rsa, a=rsa-sha256 */
	DKIM_ALG_ED25519_SHA256,     /* k=ed25519, a=ed25519-sha256 (RFC 8463) */
};

struct dkim_signer;

/* A signer for one message.  key: RSA (>= 1024 bits) or Ed25519, referenced (the
 * caller keeps its own reference).  domain (d=) and selector (s=) must pass
 * dkim_name_ok().  t: the t= timestamp (the time of signing; tests give a fixed one).
 * -1 and *error_r (static text) on a bad key or name. */
int dkim_signer_new(EVP_PKEY *key, const char *domain, const char *selector, time_t t,
		    struct dkim_signer **signer_r, const char **error_r);
/* The next bytes of the message. */
void dkim_signer_feed(struct dkim_signer *s, const void *data, size_t len);
/* The message ended: *header_r (malloc'd, the caller frees) is the whole field
 * "DKIM-Signature: v=1; ...\r\n", folded, to put before the message's first byte.
 * -1 and *error_r when the message cannot be signed: no From field, a signed field
 * longer than HEADER_FIELD_MAX, more than DKIM_MAX_SIGNED_BYTES of signed fields, or
 * the key failed.  Nothing may be fed afterwards. */
int dkim_signer_finish(struct dkim_signer *s, char **header_r, const char **error_r);
void dkim_signer_free(struct dkim_signer **s);

/* The bytes the signer hashes, for tests: body canonicalization (relaxed) of a whole
 * body, and the relaxed form of one header field "Name: value" (no line end in field
 * after its last line).  The result is malloc'd and counted. */
char *dkim_canon_body(const void *body, size_t len, size_t *len_r);
char *dkim_canon_header(const char *field, size_t len, size_t *len_r);

/* A domain or selector as DKIM and a file name allow: dot-separated labels of letters,
 * digits and inner hyphens (1..63 bytes each, 253 in all); no leading dot, no "..". */
bool dkim_name_ok(const char *name);
/* The algorithm a key signs with; -1 and *error_r for another type or RSA < 1024. */
int dkim_key_alg(EVP_PKEY *key, enum dkim_alg *alg_r, const char **error_r);
/* "rsa" / "ed25519" (the k= tag and the -k argument) and back. */
const char *dkim_alg_key_type(enum dkim_alg alg);
int dkim_alg_parse(const char *s, enum dkim_alg *alg_r);

/* A new key: RSA 2048 (RFC 8301 recommends 2048) or Ed25519. */
int dkim_key_generate(enum dkim_alg alg, EVP_PKEY **key_r, const char **error_r);
/* The key file of domain and selector in dir: "DIR/DOMAIN.SELECTOR.key".  -1 if the
 * names are bad or it does not fit. */
int dkim_key_path(const char *dir, const char *domain, const char *selector, char *buf,
		  size_t size);
/* Write key (PKCS#8 PEM) to path, created O_EXCL (never over an existing key), mode
 * 0600, owned by the caller.  On error nothing is left at path. */
int dkim_key_save(const char *path, EVP_PKEY *key, const char **error_r);
/* Read a PEM private key: path opened O_NOFOLLOW, a regular file, at most
 * DKIM_MAX_KEY_FILE bytes; the key must pass dkim_key_alg(). */
int dkim_key_load(const char *path, EVP_PKEY **key_r, const char **error_r);
/* The DNS record to publish, in zone-file form:
 *   SELECTOR._domainkey.DOMAIN. IN TXT "v=DKIM1; k=rsa; p=..." "..."
 * on one line, the text cut into strings of at most 255 bytes (RFC 1035
 * character-strings), joined without spaces by the verifier (RFC 6376 section 3.6.2.2).  malloc'd; NULL and
 * *error_r on error. */
char *dkim_txt_record(EVP_PKEY *key, const char *domain, const char *selector,
		      const char **error_r);
/* The TXT text alone ("v=DKIM1; k=...; p=..."), malloc'd. */
char *dkim_txt_text(EVP_PKEY *key, const char **error_r);

#endif
