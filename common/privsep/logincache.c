/* The cache of verified logins.  Runs only in the PAM child (auth.c), as root.
 *
 * An entry is HMAC-SHA-256(host key, "postern-login-cache-1", service, user, password,
 * SHA-256(shadow hash), creation time): it proves that this password was verified by
 * the full PAM stack against exactly this shadow hash, for this service, at that time.
 * A password change (or usermod -L, which prefixes the hash with '!') changes the hash
 * and so no entry matches any more, at once.  The key is random, made at first use, and
 * readable by root only, like the directory and the entries; the monitor never opens
 * any of it.  The entry file is hostile input all the same (logincache_parse): exactly
 * LOGINCACHE_RECORD bytes with the magic, or nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "privsep/logincache.h"
#include "base/plimits.h"
#include "base/util.h"

struct logincache {
	int dirfd;
	unsigned ttl;
	unsigned char key[LOGINCACHE_KEY];
};

static const char logincache_domain[] = "postern-login-cache-1";

int logincache_parse(const unsigned char *buf, size_t len, struct logincache_entry *e_r)
{
	uint64_t t = 0;

	if (len != LOGINCACHE_RECORD || memcmp(buf, LOGINCACHE_MAGIC, 4) != 0)
		return -1;
	for (int i = 7; i >= 0; i--)
		t = (t << 8) | buf[4 + i];
	if (t > (uint64_t)INT64_MAX)
		return -1;
	e_r->created = (int64_t)t;
	memcpy(e_r->mac, buf + 12, LOGINCACHE_MAC);    /* BOUNDS: len == 12 + MAC */
	return 0;
}

void logincache_format(const struct logincache_entry *e, unsigned char out[LOGINCACHE_RECORD])
{
	uint64_t t = (uint64_t)e->created;

	memcpy(out, LOGINCACHE_MAGIC, 4);
	for (int i = 0; i < 8; i++)
		out[4 + i] = (unsigned char)(t >> (8 * i));
	memcpy(out + 12, e->mac, LOGINCACHE_MAC);
}

bool logincache_fresh(int64_t created, int64_t now, unsigned ttl)
{
	if (ttl == 0 || created < 0 || now < 0)
		return false;
	if (created > now + LOGINCACHE_CLOCK_SKEW_S)
		return false;
	return now - created < (int64_t)ttl;
}

/* HMAC-SHA-256 under the host key of the length-prefixed parts. */
static bool logincache_mac(const unsigned char *key, const void *const *parts,
			   const size_t *lens, size_t nparts, unsigned char out[LOGINCACHE_MAC])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t len = 0;
	bool ok = false;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	if (ctx == NULL || EVP_MAC_init(ctx, key, LOGINCACHE_KEY, params) != 1)
		goto out;
	for (size_t i = 0; i < nparts; i++) {
		unsigned char l[4] = { (unsigned char)(lens[i] >> 24), (unsigned char)(lens[i] >> 16),
				       (unsigned char)(lens[i] >> 8), (unsigned char)lens[i] };
		if (EVP_MAC_update(ctx, l, 4) != 1 ||
		    (lens[i] > 0 && EVP_MAC_update(ctx, parts[i], lens[i]) != 1))
			goto out;
	}
	if (EVP_MAC_final(ctx, md, &len, sizeof(md)) != 1 || len != LOGINCACHE_MAC)
		goto out;
	memcpy(out, md, LOGINCACHE_MAC);
	ok = true;
out:
	util_wipe(md, sizeof(md));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok;
}

/* The entry's file name: 32 hex digits of a MAC of (service, user). */
static bool logincache_name(const struct logincache *lc, const char *service,
			    const char *user, char name[33])
{
	static const char hex[] = "0123456789abcdef";
	const void *parts[] = { "name", service, user };
	size_t lens[] = { 4, strlen(service), strlen(user) };
	unsigned char m[LOGINCACHE_MAC];

	if (!logincache_mac(lc->key, parts, lens, 3, m))
		return false;
	for (int i = 0; i < 16; i++) {
		name[2 * i] = hex[m[i] >> 4];
		name[2 * i + 1] = hex[m[i] & 15];
	}
	name[32] = '\0';
	return true;
}

static bool logincache_entry_mac(const struct logincache *lc, const char *service,
				 const char *user, const char *pass, const char *shadow_hash,
				 int64_t created, unsigned char out[LOGINCACHE_MAC])
{
	unsigned char hh[32], t[8];
	unsigned int hlen = 0;

	if (EVP_Digest(shadow_hash, strlen(shadow_hash), hh, &hlen, EVP_sha256(), NULL) != 1 ||
	    hlen != sizeof(hh))
		return false;
	for (int i = 0; i < 8; i++)
		t[i] = (unsigned char)((uint64_t)created >> (8 * i));
	const void *parts[] = { logincache_domain, service, user, pass, hh, t };
	size_t lens[] = { sizeof(logincache_domain) - 1, strlen(service), strlen(user),
			  strlen(pass), sizeof(hh), sizeof(t) };
	return logincache_mac(lc->key, parts, lens, 6, out);
}

/* A file in the directory, opened without following links: a regular file owned by root
 * with no group or other bits. */
static int logincache_open_file(int dirfd, const char *name, struct stat *st)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd == -1)
		return -1;
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode) || st->st_uid != 0 ||
	    (st->st_mode & 077) != 0) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* Read at most size bytes (+1 to see a longer file). */
static ssize_t logincache_read(int fd, unsigned char *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Write bytes to a new private file and rename it onto name. */
static int logincache_replace(int dirfd, const char *name, const unsigned char *buf,
			      size_t len)
{
	char tmp[64];

	if (util_snprintf(tmp, sizeof(tmp), ".tmp.%ld", (long)getpid()) == -1)
		return -1;
	unlinkat(dirfd, tmp, 0);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			0600);
	if (fd == -1)
		return -1;
	if (fchmod(fd, 0600) == -1 || util_write_all(fd, buf, len) == -1) {
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	close(fd);
	if (renameat(dirfd, tmp, dirfd, name) == -1) {
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	return 0;
}

static int logincache_key(struct logincache *lc, const char **error_r)
{
	struct stat st;
	unsigned char buf[LOGINCACHE_KEY + 1];

	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = logincache_open_file(lc->dirfd, "key", &st);
		if (fd != -1) {
			ssize_t n = logincache_read(fd, buf, sizeof(buf));
			close(fd);
			if (n != LOGINCACHE_KEY) {
				util_wipe(buf, sizeof(buf));
				*error_r = "key file of the wrong size";
				return -1;
			}
			memcpy(lc->key, buf, LOGINCACHE_KEY);
			util_wipe(buf, sizeof(buf));
			return 0;
		}
		if (errno != ENOENT) {
			*error_r = errno == EPERM ? "key file not private to root" :
				   "cannot open the key file";
			return -1;
		}
		/* First use: a new key, written under a temporary name and linked into
		 * place, so that two first logins at once agree on one key. */
		size_t got = 0;
		while (got < LOGINCACHE_KEY) {
			ssize_t r = getrandom(buf + got, LOGINCACHE_KEY - got, 0);
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0) {
				*error_r = "getrandom failed";
				return -1;
			}
			got += (size_t)r;
		}
		char tmp[64];
		if (util_snprintf(tmp, sizeof(tmp), ".key.%ld", (long)getpid()) == -1)
			return -1;
		unlinkat(lc->dirfd, tmp, 0);
		fd = openat(lc->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    0600);
		if (fd == -1 || fchmod(fd, 0600) == -1 ||
		    util_write_all(fd, buf, LOGINCACHE_KEY) == -1) {
			if (fd != -1)
				close(fd);
			unlinkat(lc->dirfd, tmp, 0);
			util_wipe(buf, sizeof(buf));
			*error_r = "cannot write the key file";
			return -1;
		}
		close(fd);
		util_wipe(buf, sizeof(buf));
		int lr = linkat(lc->dirfd, tmp, lc->dirfd, "key", 0);
		int le = errno;
		unlinkat(lc->dirfd, tmp, 0);
		if (lr == -1 && le != EEXIST) {
			*error_r = "cannot link the key file";
			return -1;
		}
		/* read back what is in place (ours, or the one that won the race) */
	}
	*error_r = "key file vanished";
	return -1;
}

int logincache_open(const char *state_dir, unsigned ttl, struct logincache **lc_r,
		    const char **error_r)
{
	char path[4200];
	struct stat st;

	*lc_r = NULL;
	if (ttl == 0) {
		*error_r = "disabled";
		return -1;
	}
	if (util_snprintf(path, sizeof(path), "%s/" LOGINCACHE_DIR, state_dir) == -1) {
		*error_r = "state_dir too long";
		return -1;
	}
	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		*error_r = "cannot make the directory";
		return -1;
	}
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd == -1) {
		*error_r = "cannot open the directory";
		return -1;
	}
	if (fstat(dfd, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 077) != 0) {
		close(dfd);
		*error_r = "directory not private to root";
		return -1;
	}
	struct logincache *lc = xcalloc(1, sizeof(*lc));
	lc->dirfd = dfd;
	lc->ttl = ttl;
	if (logincache_key(lc, error_r) == -1) {
		logincache_close(&lc);
		return -1;
	}
	*lc_r = lc;
	return 0;
}

void logincache_close(struct logincache **lcp)
{
	struct logincache *lc = *lcp;

	if (lc == NULL)
		return;
	*lcp = NULL;
	close(lc->dirfd);
	util_wipe(lc->key, sizeof(lc->key));
	free(lc);
}

bool logincache_check(struct logincache *lc, const char *service, const char *user,
		      const char *pass, const char *shadow_hash, int64_t now)
{
	char name[33];
	unsigned char buf[LOGINCACHE_RECORD + 1], want[LOGINCACHE_MAC];
	struct logincache_entry e;
	struct stat st;
	bool hit = false;

	if (!logincache_name(lc, service, user, name))
		return false;
	int fd = logincache_open_file(lc->dirfd, name, &st);
	if (fd == -1)
		return false;
	ssize_t n = logincache_read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || logincache_parse(buf, (size_t)n, &e) == -1 ||
	    !logincache_fresh(e.created, now, lc->ttl))
		return false;
	if (logincache_entry_mac(lc, service, user, pass, shadow_hash, e.created, want))
		hit = CRYPTO_memcmp(want, e.mac, LOGINCACHE_MAC) == 0;
	util_wipe(want, sizeof(want));
	return hit;
}

int logincache_store(struct logincache *lc, const char *service, const char *user,
		     const char *pass, const char *shadow_hash, int64_t now,
		     const char **error_r)
{
	char name[33];
	struct logincache_entry e = { .created = now };
	unsigned char buf[LOGINCACHE_RECORD];

	if (now < 0 || !logincache_name(lc, service, user, name) ||
	    !logincache_entry_mac(lc, service, user, pass, shadow_hash, now, e.mac)) {
		*error_r = "HMAC failed";
		return -1;
	}
	logincache_format(&e, buf);
	if (logincache_replace(lc->dirfd, name, buf, sizeof(buf)) == -1) {
		*error_r = "cannot write the entry";
		return -1;
	}
	return 0;
}

void logincache_remove(struct logincache *lc, const char *service, const char *user)
{
	char name[33];

	if (logincache_name(lc, service, user, name))
		unlinkat(lc->dirfd, name, 0);
}
