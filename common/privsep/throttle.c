/* Login throttle shared by the per-connection processes through a small text file.
 *
 * File format, one entry a line:  "<kind> <key> <count> <last-unix-time>\n"
 *   i 192.0.2.7 3 1700000000                    failures from an address
 *   n 192.0.2.0/24 5 1700000000                 failures from a /24 or /56
 *   u 5e884898da28047151d0e56f8dc62927 4 ...    failures for a user name (hashed)
 *   g 5e884898da28047151d0e56f8dc62927/192.0.2.7 0 ...   a good login (user, address)
 * User names are stored only as the first 32 hex digits of their SHA-256: a mistyped
 * password often lands in the user field and must not sit in a file in clear.
 *
 * Writers take an fcntl write lock on "<path>.lock", read the file, change the table,
 * write "<path>.tmp", fsync it and rename it over the file, so that a crash leaves either
 * the old file or the new one.  Readers (throttle_check) need no lock: rename replaces
 * the file in one step, so open() always sees a whole file.
 *
 * The parser validates every key (canonical address text, lowercase hex hash), so what
 * it accepts formats back to the same bytes and parses to the same table. */
#include <limits.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "base/plimits.h"
#include "base/log.h"
#include "base/netaddr.h"
#include "privsep/throttle.h"
#include "base/util.h"

/* Hex digits of the SHA-256 of a user name that we keep. */
#define THROTTLE_HASH_HEX 32
/* Longest line we write: kind, space, key, space, count (<= 20 digits), space,
 * time (<= 20 digits), newline. */
#define THROTTLE_LINE_MAX (1 + 1 + (sizeof(((struct throttle_entry *)0)->key) - 1) + 1 + \
			   20 + 1 + 20 + 1)
_Static_assert(THROTTLE_MAX_ENTRIES * THROTTLE_LINE_MAX <= THROTTLE_MAX_FILE,
	       "a full table must fit in the bytes we read back");
#define THROTTLE_DAY 86400u
#define THROTTLE_COUNT_MAX ((unsigned)-1)

/* ---- keys ------------------------------------------------------------------------- */

struct throttle_keys {
	bool have_ip, have_user;
	char ip[INET6_ADDRSTRLEN];
	char net[INET6_ADDRSTRLEN + 4];
	char user[THROTTLE_HASH_HEX + 1];
	char good[THROTTLE_HASH_HEX + 1 + INET6_ADDRSTRLEN];
};

static int throttle_user_hash(const char *user, char out[THROTTLE_HASH_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(user, strlen(user), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen * 2 < THROTTLE_HASH_HEX)
		return -1;
	for (size_t i = 0; i < THROTTLE_HASH_HEX / 2; i++) {
		out[2 * i] = hex[md[i] >> 4];      /* BOUNDS: 2*i+1 < THROTTLE_HASH_HEX */
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[THROTTLE_HASH_HEX] = '\0';
	util_wipe(md, sizeof(md));
	return 0;
}

static void throttle_make_keys(const struct netaddr *ip, const char *user,
			       struct throttle_keys *k)
{
	memset(k, 0, sizeof(*k));
	if (ip != NULL && (ip->family == AF_INET || ip->family == AF_INET6)) {
		k->have_ip = netaddr_str(ip, k->ip, sizeof(k->ip)) == k->ip &&
			     netaddr_subnet_str(ip, k->net, sizeof(k->net)) == k->net;
	}
	if (user != NULL) {
		if (throttle_user_hash(user, k->user) == 0)
			k->have_user = true;
		else
			log_err("throttle-error: error=<SHA-256 failed>, action=skip-user-limit");
	}
	if (k->have_ip && k->have_user &&
	    util_snprintf(k->good, sizeof(k->good), "%s/%s", k->user, k->ip) < 0)
		k->good[0] = '\0'; /* cannot happen: sized for both */
}

/* ---- parse and format ------------------------------------------------------------- */

/* Canonical address text: parses and prints back to the same bytes. */
static bool throttle_valid_addr(const char *s, size_t len, struct netaddr *a_r)
{
	char text[INET6_ADDRSTRLEN], back[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(text))
		return false;
	memcpy(text, s, len); /* BOUNDS: len < sizeof(text) */
	text[len] = '\0';
	if (netaddr_parse(text, a_r) < 0)
		return false;
	const char *p = netaddr_str(a_r, back, sizeof(back));
	return strlen(p) == len && memcmp(p, s, len) == 0;
}

static bool throttle_valid_subnet(const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);
	char back[INET6_ADDRSTRLEN + 4];
	struct netaddr a;

	if (slash == NULL || !throttle_valid_addr(s, (size_t)(slash - s), &a))
		return false;
	const char *p = netaddr_subnet_str(&a, back, sizeof(back));
	return strlen(p) == len && memcmp(p, s, len) == 0;
}

static bool throttle_valid_hash(const char *s, size_t len)
{
	if (len != THROTTLE_HASH_HEX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool throttle_valid_key(char kind, const char *s, size_t len)
{
	struct netaddr a;

	switch (kind) {
	case THR_IP:
		return throttle_valid_addr(s, len, &a);
	case THR_NET:
		return throttle_valid_subnet(s, len);
	case THR_USER:
		return throttle_valid_hash(s, len);
	case THR_GOOD:
		return len > THROTTLE_HASH_HEX + 1 && s[THROTTLE_HASH_HEX] == '/' &&
		       throttle_valid_hash(s, THROTTLE_HASH_HEX) &&
		       throttle_valid_addr(s + THROTTLE_HASH_HEX + 1,
					   len - THROTTLE_HASH_HEX - 1, &a);
	default:
		return false;
	}
}

static uint64_t throttle_time_max(void)
{
	return sizeof(time_t) >= 8 ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
}

/* One line without its newline.  0 or -1. */
static int throttle_parse_line(const char *s, size_t len, struct throttle_entry *e)
{
	uint64_t count, last;

	if (len < 2 || s[1] != ' ')
		return -1;
	const char *key = s + 2, *end = s + len;
	const char *sp1 = memchr(key, ' ', (size_t)(end - key));
	if (sp1 == NULL)
		return -1;
	const char *num = sp1 + 1;
	const char *sp2 = memchr(num, ' ', (size_t)(end - num));
	if (sp2 == NULL)
		return -1;
	size_t klen = (size_t)(sp1 - key);
	if (klen >= sizeof(e->key) || !throttle_valid_key(s[0], key, klen))
		return -1;
	if (util_parse_uint(num, (size_t)(sp2 - num), THROTTLE_COUNT_MAX, &count) < 0 ||
	    util_parse_uint(sp2 + 1, (size_t)(end - sp2 - 1), throttle_time_max(), &last) < 0)
		return -1;
	memset(e, 0, sizeof(*e));
	e->kind = s[0];
	memcpy(e->key, key, klen); /* BOUNDS: klen < sizeof(e->key) checked above */
	e->count = (unsigned)count;
	e->last = (time_t)last;
	return 0;
}

size_t throttle_parse(const char *text, size_t len, struct throttle_table *t)
{
	size_t cap = 0, skipped = 0, pos = 0;

	t->count = 0;
	t->e = NULL;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		if (nl == NULL) {
			skipped++; /* unterminated last line: a cut file, not trusted */
			break;
		}
		size_t llen = (size_t)(nl - (text + pos));
		struct throttle_entry e;
		if (t->count >= THROTTLE_MAX_ENTRIES ||
		    throttle_parse_line(text + pos, llen, &e) < 0) {
			skipped++;
		} else {
			if (t->count == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				if (cap > THROTTLE_MAX_ENTRIES)
					cap = THROTTLE_MAX_ENTRIES;
				/* BOUNDS: cap <= THROTTLE_MAX_ENTRIES, small */
				t->e = xrealloc(t->e, cap * sizeof(*t->e));
			}
			t->e[t->count++] = e;
		}
		pos += llen + 1; /* BOUNDS: nl < text + len, so pos stays <= len */
	}
	return skipped;
}

/* A key we can write and read back: printable, no space, NUL-terminated in the array. */
static bool throttle_key_writable(const struct throttle_entry *e)
{
	size_t n = strnlen(e->key, sizeof(e->key));
	if (n == 0 || n == sizeof(e->key))
		return false;
	for (size_t i = 0; i < n; i++)
		if (e->key[i] <= ' ' || e->key[i] > '~')
			return false;
	return e->kind == THR_IP || e->kind == THR_NET || e->kind == THR_USER ||
	       e->kind == THR_GOOD;
}

char *throttle_format(const struct throttle_table *t, size_t *len_r)
{
	size_t n = t->count < THROTTLE_MAX_ENTRIES ? t->count : THROTTLE_MAX_ENTRIES;
	size_t size = n * THROTTLE_LINE_MAX + 1; /* BOUNDS: n <= THROTTLE_MAX_ENTRIES */
	char *buf = xmalloc(size);
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		const struct throttle_entry *e = &t->e[i];
		if (!throttle_key_writable(e) || e->last < 0)
			continue;
		int w = util_snprintf(buf + len, size - len, "%c %s %u %lld\n", e->kind, e->key,
				      e->count, (long long)e->last);
		if (w < 0)
			break; /* cannot happen: each line fits THROTTLE_LINE_MAX */
		len += (size_t)w;
	}
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

void throttle_table_free(struct throttle_table *t)
{
	free(t->e);
	t->e = NULL;
	t->count = 0;
}

/* ---- policy on a table ------------------------------------------------------------ */

static uint64_t throttle_age(time_t last, time_t now)
{
	return now > last ? (uint64_t)now - (uint64_t)last : 0; /* a clock step back: age 0 */
}

static size_t throttle_find(const struct throttle_table *t, char kind, const char *key)
{
	for (size_t i = 0; i < t->count; i++)
		if (t->e[i].kind == kind && strcmp(t->e[i].key, key) == 0)
			return i;
	return SIZE_MAX;
}

/* Failures of this entry that still count. */
static unsigned throttle_recent(const struct throttle_table *t, const struct throttle_policy *p,
				char kind, const char *key, time_t now)
{
	size_t i = throttle_find(t, kind, key);
	if (i == SIZE_MAX || throttle_age(t->e[i].last, now) >= p->window)
		return 0;
	return t->e[i].count;
}

static bool throttle_trusted(const struct throttle_table *t, const struct throttle_policy *p,
			     const struct throttle_keys *k, time_t now)
{
	if (!k->have_ip || !k->have_user || p->trust_days == 0)
		return false;
	size_t i = throttle_find(t, THR_GOOD, k->good);
	return i != SIZE_MAX &&
	       throttle_age(t->e[i].last, now) < (uint64_t)p->trust_days * THROTTLE_DAY;
}

static bool throttle_expired(const struct throttle_entry *e, const struct throttle_policy *p,
			     time_t now)
{
	uint64_t age = throttle_age(e->last, now);
	if (e->kind == THR_GOOD)
		return age >= (uint64_t)p->trust_days * THROTTLE_DAY;
	return e->count == 0 || age >= p->window;
}

static void throttle_remove(struct throttle_table *t, size_t i)
{
	/* BOUNDS: i < t->count; keeps the order, so ties in age evict the first added */
	memmove(&t->e[i], &t->e[i + 1], (t->count - i - 1) * sizeof(*t->e));
	t->count--;
}

static void throttle_prune(struct throttle_table *t, const struct throttle_policy *p, time_t now)
{
	size_t out = 0;
	for (size_t i = 0; i < t->count; i++)
		if (!throttle_expired(&t->e[i], p, now))
			t->e[out++] = t->e[i];
	t->count = out;
}

/* The entry for (kind, key), added with count 0 if missing; the oldest entry makes room
 * when the table is full. */
static struct throttle_entry *throttle_get(struct throttle_table *t, char kind,
					   const char *key, time_t now)
{
	size_t i = throttle_find(t, kind, key);
	if (i != SIZE_MAX)
		return &t->e[i];
	while (t->count >= THROTTLE_MAX_ENTRIES) {
		size_t oldest = 0;
		for (size_t j = 1; j < t->count; j++)
			if (t->e[j].last < t->e[oldest].last)
				oldest = j;
		throttle_remove(t, oldest);
	}
	/* BOUNDS: count < THROTTLE_MAX_ENTRIES */
	t->e = xrealloc(t->e, (t->count + 1) * sizeof(*t->e));
	struct throttle_entry *e = &t->e[t->count++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	if (util_snprintf(e->key, sizeof(e->key), "%s", key) < 0)
		e->key[0] = '\0'; /* cannot happen: keys are sized below 80 */
	e->count = 0;
	e->last = now;
	return e;
}

/* Count one more failure; a count whose last event left the window starts again. */
static unsigned throttle_bump(struct throttle_table *t, const struct throttle_policy *p,
			      char kind, const char *key, time_t now)
{
	struct throttle_entry *e = throttle_get(t, kind, key, now);
	if (throttle_age(e->last, now) >= p->window)
		e->count = 0;
	if (e->count < THROTTLE_COUNT_MAX)
		e->count++;
	e->last = now;
	return e->count;
}

/* delay_ms * 2^(n-1), capped at delay_max_ms (a cap below delay_ms, such as 0, means
 * no doubling: the reply is never faster than the base delay). */
static unsigned throttle_delay(const struct throttle_policy *p, unsigned n)
{
	if (p->delay_ms == 0)
		return 0;
	uint64_t cap = p->delay_max_ms > p->delay_ms ? p->delay_max_ms : p->delay_ms;
	uint64_t d = p->delay_ms;
	for (unsigned i = 1; i < n && d < cap; i++)
		d *= 2; /* BOUNDS: d < cap <= THROTTLE_COUNT_MAX before, so d < 2^33 */
	return (unsigned)(d < cap ? d : cap);
}

static enum throttle_verdict throttle_decide(const struct throttle_table *t,
		const struct throttle_policy *p, const struct throttle_keys *k, time_t now,
		const char **reason_r)
{
	*reason_r = NULL;
	if (k->have_ip && p->ip_max > 0 && throttle_recent(t, p, THR_IP, k->ip, now) >= p->ip_max)
		*reason_r = "ip-limit";
	else if (k->have_ip && p->net_max > 0 &&
		 throttle_recent(t, p, THR_NET, k->net, now) >= p->net_max)
		*reason_r = "net-limit";
	else if (k->have_user && p->user_max > 0 &&
		 throttle_recent(t, p, THR_USER, k->user, now) >= p->user_max &&
		 !throttle_trusted(t, p, k, now))
		*reason_r = "user-limit";
	return *reason_r == NULL ? THROTTLE_ALLOW : THROTTLE_REFUSE;
}

enum throttle_verdict throttle_table_check(const struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		time_t now)
{
	struct throttle_keys k;
	const char *reason;

	throttle_make_keys(ip, user, &k);
	return throttle_decide(t, p, &k, now, &reason);
}

unsigned throttle_table_record(struct throttle_table *t, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, bool success, time_t now)
{
	struct throttle_keys k;
	unsigned n = 0;

	throttle_make_keys(ip, user, &k);
	throttle_prune(t, p, now);
	if (success) {
		if (k.have_ip && k.have_user && p->trust_days > 0) {
			struct throttle_entry *e = throttle_get(t, THR_GOOD, k.good, now);
			e->count = 0;
			e->last = now;
		}
		if (k.have_ip) {
			size_t i = throttle_find(t, THR_IP, k.ip);
			if (i != SIZE_MAX)
				throttle_remove(t, i);
		}
		return 0;
	}
	if (k.have_user)
		n = throttle_bump(t, p, THR_USER, k.user, now);
	if (k.have_ip) {
		throttle_bump(t, p, THR_NET, k.net, now);
		/* last, so that making room for the others never evicts it */
		n = throttle_bump(t, p, THR_IP, k.ip, now);
	}
	return throttle_delay(p, n);
}

/* Lower a counter by one, if it still counts. */
static void throttle_unbump(struct throttle_table *t, const struct throttle_policy *p,
			    char kind, const char *key, time_t now)
{
	size_t i = throttle_find(t, kind, key);
	if (i == SIZE_MAX || throttle_age(t->e[i].last, now) >= p->window)
		return;
	if (t->e[i].count > 0)
		t->e[i].count--;
	if (t->e[i].count == 0)
		throttle_remove(t, i);
}

static enum throttle_verdict throttle_attempt_why(struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		time_t now, unsigned *fail_delay_r, const char **reason_r)
{
	struct throttle_keys k;

	*fail_delay_r = 0;
	throttle_make_keys(ip, user, &k);
	if (throttle_decide(t, p, &k, now, reason_r) == THROTTLE_REFUSE)
		return THROTTLE_REFUSE;
	*fail_delay_r = throttle_table_record(t, p, ip, user, false, now);
	return THROTTLE_ALLOW;
}

enum throttle_verdict throttle_table_attempt(struct throttle_table *t,
		const struct throttle_policy *p, const struct netaddr *ip, const char *user,
		time_t now, unsigned *fail_delay_r)
{
	const char *reason;
	return throttle_attempt_why(t, p, ip, user, now, fail_delay_r, &reason);
}

void throttle_table_undo(struct throttle_table *t, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, time_t now)
{
	struct throttle_keys k;

	throttle_make_keys(ip, user, &k);
	if (k.have_user)
		throttle_unbump(t, p, THR_USER, k.user, now);
	if (k.have_ip) {
		throttle_unbump(t, p, THR_NET, k.net, now);
		throttle_unbump(t, p, THR_IP, k.ip, now);
	}
}

/* ---- the file --------------------------------------------------------------------- */

struct throttle_err { char text[PATH_MAX + 128]; };

static int throttle_fail(struct throttle_err *err, const char *op, const char *path)
{
	int saved = errno;
	if (util_snprintf(err->text, sizeof(err->text), "%s %s: %s", op, path,
			  strerror(saved)) < 0 &&
	    util_snprintf(err->text, sizeof(err->text), "%s: %s", op, strerror(saved)) < 0)
		err->text[0] = '\0';
	errno = saved;
	return -1;
}

static int throttle_sibling(char *buf, size_t size, const char *path, const char *suffix,
			    struct throttle_err *err)
{
	if (util_snprintf(buf, size, "%s%s", path, suffix) < 0) {
		errno = ENAMETOOLONG;
		return throttle_fail(err, "name", path);
	}
	return 0;
}

/* Take the write lock; returns the lock fd (closing it releases the lock) or -1. */
static int throttle_lock(const char *path, struct throttle_err *err)
{
	char lpath[PATH_MAX];
	struct flock fl;

	if (throttle_sibling(lpath, sizeof(lpath), path, ".lock", err) < 0)
		return -1;
	int fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return throttle_fail(err, "open", lpath);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	/* Bounded wait: a holder that hangs (stopped, stuck on a dead disk) must not hang
	 * every login; after the limit we go on without the throttle (logged). */
	uint64_t deadline = util_now_ms() + THROTTLE_LOCK_TIMEOUT_MS;
	while (fcntl(fd, F_SETLK, &fl) == -1) {
		if ((errno == EACCES || errno == EAGAIN || errno == EINTR) &&
		    util_now_ms() < deadline) {
			util_sleep_ms(THROTTLE_LOCK_POLL_MS);
			continue;
		}
		if (errno == EACCES || errno == EAGAIN)
			errno = ETIMEDOUT;
		throttle_fail(err, "lock", lpath);
		close(fd);
		return -1;
	}
	return fd;
}

/* Read and parse the file; a missing file is an empty table. */
static int throttle_load(const char *path, struct throttle_table *t, struct throttle_err *err)
{
	struct stat st;
	size_t len = 0;

	t->count = 0;
	t->e = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd == -1)
		return errno == ENOENT ? 0 : throttle_fail(err, "open", path);
	if (fstat(fd, &st) == -1) {
		throttle_fail(err, "fstat", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		close(fd);
		if (util_snprintf(err->text, sizeof(err->text), "%s: not a regular file owned "
				  "by uid %ld and writable only by it", path, (long)geteuid()) < 0)
			err->text[0] = '\0';
		return -1;
	}
	char *buf = xmalloc(THROTTLE_MAX_FILE);
	while (len < THROTTLE_MAX_FILE) {
		ssize_t n = read(fd, buf + len, THROTTLE_MAX_FILE - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			throttle_fail(err, "read", path);
			free(buf);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n; /* BOUNDS: read returns at most what we asked for */
	}
	close(fd);
	if (len == THROTTLE_MAX_FILE)
		log_warn("throttle-error: path=%s, error=<file over %d bytes>, action=read-the-first",
			 path, THROTTLE_MAX_FILE);
	size_t skipped = throttle_parse(buf, len, t);
	free(buf);
	if (skipped > 0)
		log_warn("throttle-error: path=%s, error=<bad lines>, skipped=%zu", path, skipped);
	return 0;
}

static int throttle_sync_dir(const char *path, struct throttle_err *err)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		dir[0] = '.';
		dir[1] = '\0';
	} else if (slash == path) {
		dir[0] = '/';
		dir[1] = '\0';
	} else {
		size_t n = (size_t)(slash - path);
		if (n >= sizeof(dir)) {
			errno = ENAMETOOLONG;
			return throttle_fail(err, "name", path);
		}
		memcpy(dir, path, n); /* BOUNDS: n < sizeof(dir) */
		dir[n] = '\0';
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return throttle_fail(err, "open", dir);
	int r = fsync(fd);
	if (r == -1 && errno != EINVAL) /* some file systems cannot sync a directory */
		throttle_fail(err, "fsync", dir);
	else
		r = 0;
	close(fd);
	return r;
}

/* Write the table to "<path>.tmp", fsync, rename over path.  Caller holds the lock, so
 * the fixed temporary name is ours alone. */
static int throttle_store(const char *path, const struct throttle_table *t,
			  struct throttle_err *err)
{
	char tmp[PATH_MAX];
	size_t len;

	if (throttle_sibling(tmp, sizeof(tmp), path, ".tmp", err) < 0)
		return -1;
	if (unlink(tmp) == -1 && errno != ENOENT)
		return throttle_fail(err, "unlink", tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return throttle_fail(err, "create", tmp);
	char *text = throttle_format(t, &len);
	int r = 0;
	if (fchmod(fd, 0600) == -1)
		r = throttle_fail(err, "fchmod", tmp);
	else if (util_write_all(fd, text, len) == -1)
		r = throttle_fail(err, "write", tmp);
	else if (fsync(fd) == -1)
		r = throttle_fail(err, "fsync", tmp);
	free(text);
	if (close(fd) == -1 && r == 0)
		r = throttle_fail(err, "close", tmp);
	if (r == 0 && rename(tmp, path) == -1)
		r = throttle_fail(err, "rename", tmp);
	if (r == -1) {
		int saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	/* the new file is in place; a directory that will not sync only weakens durability */
	if (throttle_sync_dir(path, err) < 0)
		log_warn("throttle-error: error=<%s>, action=ignored", err->text);
	return 0;
}

enum throttle_verdict throttle_check(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, time_t now)
{
	struct throttle_table t;
	struct throttle_err err;
	struct throttle_keys k;
	const char *reason;
	char ipbuf[INET6_ADDRSTRLEN];

	if (throttle_load(path, &t, &err) < 0) {
		log_err("throttle-error: error=<%s>, action=allow", err.text);
		return THROTTLE_ALLOW;
	}
	throttle_make_keys(ip, user, &k);
	enum throttle_verdict v = throttle_decide(&t, p, &k, now, &reason);
	throttle_table_free(&t);
	if (v == THROTTLE_REFUSE)
		log_info("throttle-refused: reason=%s, rip=%s", reason,
			 ip != NULL ? netaddr_str(ip, ipbuf, sizeof(ipbuf)) : "unknown");
	return v;
}

/* Run one change on the file's table under the lock.  -1 (logged) if the file could not
 * be read or written: the change did not happen. */
enum throttle_op { OP_RECORD_FAIL, OP_RECORD_OK, OP_ATTEMPT, OP_FINISH_OK, OP_FINISH_TEMP };

static int throttle_update(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, time_t now, enum throttle_op op,
		unsigned *delay_r, enum throttle_verdict *verdict_r, const char **reason_r)
{
	struct throttle_table t;
	struct throttle_err err;

	int lockfd = throttle_lock(path, &err);
	if (lockfd == -1) {
		log_err("throttle-error: error=<%s>, action=not-recorded", err.text);
		return -1;
	}
	if (throttle_load(path, &t, &err) < 0) {
		log_err("throttle-error: error=<%s>, action=not-recorded", err.text);
		close(lockfd);
		return -1;
	}
	bool changed = true;
	switch (op) {
	case OP_RECORD_FAIL:
	case OP_RECORD_OK:
		*delay_r = throttle_table_record(&t, p, ip, user, op == OP_RECORD_OK, now);
		break;
	case OP_ATTEMPT:
		*verdict_r = throttle_attempt_why(&t, p, ip, user, now, delay_r, reason_r);
		changed = *verdict_r == THROTTLE_ALLOW;
		break;
	case OP_FINISH_OK:
	case OP_FINISH_TEMP:
		throttle_table_undo(&t, p, ip, user, now);
		if (op == OP_FINISH_OK)
			throttle_table_record(&t, p, ip, user, true, now);
		break;
	}
	int r = changed ? throttle_store(path, &t, &err) : 0;
	throttle_table_free(&t);
	close(lockfd); /* releases the lock */
	if (r < 0) {
		log_err("throttle-error: error=<%s>, action=not-recorded", err.text);
		return -1;
	}
	return 0;
}

unsigned throttle_record(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, bool success, time_t now)
{
	unsigned delay = 0;

	if (throttle_update(path, p, ip, user, now, success ? OP_RECORD_OK : OP_RECORD_FAIL,
			    &delay, NULL, NULL) < 0)
		return success ? 0 : throttle_delay(p, 1);
	return delay;
}

enum throttle_verdict throttle_attempt(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, time_t now, unsigned *fail_delay_r)
{
	enum throttle_verdict v = THROTTLE_ALLOW;
	const char *reason = "?";
	char ipbuf[INET6_ADDRSTRLEN];

	*fail_delay_r = throttle_delay(p, 1);
	if (throttle_update(path, p, ip, user, now, OP_ATTEMPT, fail_delay_r, &v, &reason) < 0) {
		*fail_delay_r = throttle_delay(p, 1);
		return THROTTLE_ALLOW;      /* fail open, logged */
	}
	if (v == THROTTLE_REFUSE)
		log_info("throttle-refused: reason=%s, rip=%s", reason,
			 ip != NULL ? netaddr_str(ip, ipbuf, sizeof(ipbuf)) : "unknown");
	return v;
}

void throttle_finish(const char *path, const struct throttle_policy *p,
		const struct netaddr *ip, const char *user, bool success, time_t now)
{
	unsigned delay;

	throttle_update(path, p, ip, user, now, success ? OP_FINISH_OK : OP_FINISH_TEMP,
			&delay, NULL, NULL);
}
