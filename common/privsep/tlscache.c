/* Resumable TLS 1.3 sessions kept by the monitor (tlscache.h).
 *
 * The file: TLSCACHE_SLOTS slots of TLSCACHE_SLOT_SIZE bytes (sparse: only used slots take
 * space), mode 0600, owned by root.  The slot of an id is the first 4 bytes of SHA-256(id)
 * modulo the number of slots.  A slot:
 *   u8 id length | id (32) | u64 expiry (seconds, big-endian) | u16 length | data |
 *   ... | SHA-256 of everything before it (the last 32 bytes)
 * An all-zero slot is empty.  There is no lock, so no process ever waits on another: a
 * slot is written with one pwrite(), and a reader that sees a half-written one finds that
 * its hash does not match and treats it as empty (a full handshake follows).  Two
 * connections that present the same ticket at the same moment may both resume it; with
 * no early data that replays nothing.  Bounded by construction; a session expires after
 * `lifetime` seconds and is taken out (and its slot cleared) when it is used. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "base/plimits.h"
#include "base/util.h"
#include "privsep/tlscache.h"

#define SLOT_ID 1
#define SLOT_EXPIRY (SLOT_ID + TLSCACHE_ID_MAX)
#define SLOT_LEN (SLOT_EXPIRY + 8)
#define SLOT_DATA (SLOT_LEN + 2)
#define SLOT_HASH (TLSCACHE_SLOT_SIZE - 32)
_Static_assert(SLOT_DATA + TLS_SESSION_MAX <= SLOT_HASH, "TLSCACHE_SLOT_SIZE too small");

static int tlscache_hash(const unsigned char *p, size_t len, unsigned char out[32])
{
	unsigned int n = 0;
	return EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : -1;
}

static off_t tlscache_offset(const unsigned char *id, size_t idlen)
{
	unsigned char h[32];

	if (tlscache_hash(id, idlen, h) == -1)
		return -1;
	uint32_t v = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
	return (off_t)(v % TLSCACHE_SLOTS) * TLSCACHE_SLOT_SIZE;
}

/* Open the file if it is ours: a regular file of root's, 0600, one name.  Another one is
 * removed (its contents may be known to someone else) and the caller starts afresh. */
static int tlscache_open(const char *path, bool create, const char **error_r)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);

	if (fd == -1) {
		if (errno == ELOOP)
			(void)unlink(path);
		*error_r = strerror(errno);
		return errno == ENOENT && !create ? -2 : -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0 || st.st_nlink != 1) {
		close(fd);
		(void)unlink(path);
		*error_r = "not a 0600 file of ours: removed";
		return -1;
	}
	if (create && st.st_size != (off_t)TLSCACHE_SLOTS * TLSCACHE_SLOT_SIZE &&
	    ftruncate(fd, (off_t)TLSCACHE_SLOTS * TLSCACHE_SLOT_SIZE) == -1) {
		*error_r = strerror(errno);
		close(fd);
		return -1;
	}
	return fd;
}

/* Read and check the slot at off.  1 it holds a whole entry, 0 empty or damaged, -1 error. */
static int tlscache_read(int fd, off_t off, unsigned char *slot)
{
	unsigned char h[32];
	ssize_t n;

	do
		n = pread(fd, slot, TLSCACHE_SLOT_SIZE, off);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if (n != TLSCACHE_SLOT_SIZE)
		return 0;
	if (tlscache_hash(slot, SLOT_HASH, h) == -1)
		return -1;
	if (CRYPTO_memcmp(h, slot + SLOT_HASH, 32) != 0 || slot[0] == 0 ||
	    slot[0] > TLSCACHE_ID_MAX)
		return 0;
	size_t len = ((size_t)slot[SLOT_LEN] << 8) | slot[SLOT_LEN + 1];
	return len > 0 && len <= TLS_SESSION_MAX ? 1 : 0;
}

static uint64_t tlscache_expiry(const unsigned char *slot)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | slot[SLOT_EXPIRY + i];
	return v;
}

/* Live: not expired, and not further ahead than one lifetime (the clock went back). */
static bool tlscache_live(const unsigned char *slot, time_t now, unsigned lifetime)
{
	uint64_t exp = tlscache_expiry(slot), t = now < 0 ? 0 : (uint64_t)now;
	return exp > t && exp - t <= lifetime;
}

static int tlscache_write(int fd, off_t off, const unsigned char *slot)
{
	ssize_t n;

	do
		n = pwrite(fd, slot, TLSCACHE_SLOT_SIZE, off);
	while (n == -1 && errno == EINTR);
	return n == TLSCACHE_SLOT_SIZE ? 0 : -1;
}

int tlscache_put(const char *path, const unsigned char *id, size_t idlen,
		 const unsigned char *data, size_t len, time_t now, unsigned lifetime,
		 const char **error_r)
{
	unsigned char slot[TLSCACHE_SLOT_SIZE];
	int rc = -1;

	if (idlen == 0 || idlen > TLSCACHE_ID_MAX || len == 0 || len > TLS_SESSION_MAX ||
	    lifetime == 0 || now < 0) {
		*error_r = "bad id, session length or lifetime";
		return -1;
	}
	off_t off = tlscache_offset(id, idlen);
	if (off < 0) {
		*error_r = "SHA-256 failed";
		return -1;
	}
	int fd = tlscache_open(path, true, error_r);
	if (fd < 0)
		return -1;
	int r = tlscache_read(fd, off, slot);
	if (r == 1 && slot[0] == idlen && CRYPTO_memcmp(slot + SLOT_ID, id, idlen) == 0 &&
	    tlscache_live(slot, now, lifetime)) {
		*error_r = "a live session has this id";
		goto out;
	}
	memset(slot, 0, sizeof(slot));
	slot[0] = (unsigned char)idlen;
	memcpy(slot + SLOT_ID, id, idlen);
	uint64_t exp = (uint64_t)now + lifetime;
	for (int i = 7; i >= 0; i--, exp >>= 8)
		slot[SLOT_EXPIRY + i] = (unsigned char)exp;
	slot[SLOT_LEN] = (unsigned char)(len >> 8);
	slot[SLOT_LEN + 1] = (unsigned char)len;
	memcpy(slot + SLOT_DATA, data, len);   /* BOUNDS: len <= TLS_SESSION_MAX, asserted */
	if (tlscache_hash(slot, SLOT_HASH, slot + SLOT_HASH) == -1 ||
	    tlscache_write(fd, off, slot) == -1) {
		*error_r = "write failed";
		goto out;
	}
	rc = 0;
out:
	util_wipe(slot, sizeof(slot));
	close(fd);
	return rc;
}

int tlscache_take(const char *path, const unsigned char *id, size_t idlen, time_t now,
		  unsigned lifetime, unsigned char *out, size_t size, size_t *len_r,
		  const char **error_r)
{
	unsigned char slot[TLSCACHE_SLOT_SIZE];
	int rc = 0;

	if (idlen == 0 || idlen > TLSCACHE_ID_MAX)
		return 0;
	off_t off = tlscache_offset(id, idlen);
	if (off < 0) {
		*error_r = "SHA-256 failed";
		return -1;
	}
	int fd = tlscache_open(path, false, error_r);
	if (fd == -2)
		return 0;
	if (fd < 0)
		return -1;
	int r = tlscache_read(fd, off, slot);
	if (r == -1) {
		*error_r = strerror(errno);
		rc = -1;
	} else if (r == 1 && slot[0] == idlen && CRYPTO_memcmp(slot + SLOT_ID, id, idlen) == 0) {
		size_t len = ((size_t)slot[SLOT_LEN] << 8) | slot[SLOT_LEN + 1];
		if (tlscache_live(slot, now, lifetime) && len <= size) {
			memcpy(out, slot + SLOT_DATA, len);   /* BOUNDS: len <= size, and <=
							       * TLS_SESSION_MAX (tlscache_read) */
			*len_r = len;
			rc = 1;
		}
		/* used or expired: cleared either way (single use) */
		memset(slot, 0, sizeof(slot));
		if (tlscache_write(fd, off, slot) == -1 && rc == 1) {
			/* not cleared: refuse to hand out a session that stays usable */
			util_wipe(out, len);
			*error_r = "cannot clear the slot";
			rc = -1;
		}
	}
	util_wipe(slot, sizeof(slot));
	close(fd);
	return rc;
}
