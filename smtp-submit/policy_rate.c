/* smtp-submit's policy: per-user rate limits of submission, shared by every connection
 * through spool_dir/rate/<user> (policy.h; the file format and the decisions in
 * docs/architecture.md "smtp-submit: policy"). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "policy_int.h"

/* ---- rate limits ---- */

#define RATE_MAGIC "PRATE01\n"

struct rate_bucket {
	uint32_t minute; /* time / 60 */
	uint32_t messages;
	uint32_t rcpts;
};

struct rate_file {
	char magic[8];
	struct rate_bucket b[RATE_BUCKETS];
};

bool policy_rate_name_ok(const char *login)
{
	size_t len = strlen(login);

	if (len == 0 || len > 64 || login[0] == '.' || login[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = login[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '@' || c == '+'))
			return false;
	}
	return true;
}

/* Open and lock spool_dir/rate/<login>.  fd or -1 (logged). */
static int rate_open(struct policy *p, const char *user)
{
	char dir[4096], path[4200];
	struct stat st;
	int fd;

	if (util_snprintf(dir, sizeof(dir), "%s/rate", p->spool_dir) == -1 ||
	    util_snprintf(path, sizeof(path), "%s/%s", dir, user) == -1) {
		log_err("rate: error=path too long");
		return -1;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_err("rate: dir=%s, error=%s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		log_err("rate: dir=%s, error=not a directory of ours", dir);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd == -1) {
		log_err("rate: file=%s, error=%s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_err("rate: file=%s, error=not a regular file", path);
		close(fd);
		return -1;
	}
	if (flock(fd, LOCK_EX) == -1) {
		log_err("rate: file=%s, error=%s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void rate_read(int fd, const char *user, struct rate_file *rf)
{
	char san[LOG_MAX_FIELD + 1];
	ssize_t n = pread(fd, rf, sizeof(*rf), 0);
	char extra;

	if (n == 0) {
		memset(rf, 0, sizeof(*rf));
		memcpy(rf->magic, RATE_MAGIC, sizeof(rf->magic));
		return;
	}
	if (n != (ssize_t)sizeof(*rf) || memcmp(rf->magic, RATE_MAGIC, sizeof(rf->magic)) != 0 ||
	    pread(fd, &extra, 1, (off_t)sizeof(*rf)) != 0) {
		log_warn("rate-reset: user=<%s>, reason=corrupt state file", POLICY_SAN(user, san));
		memset(rf, 0, sizeof(*rf));
		memcpy(rf->magic, RATE_MAGIC, sizeof(rf->magic));
		if (ftruncate(fd, 0) == -1)
			log_err("rate: user=<%s>, error=%s", POLICY_SAN(user, san), strerror(errno));
	}
}

static void rate_sum(const struct rate_file *rf, uint32_t now_min, uint64_t *msgs_r,
		     uint64_t *rcpts_r)
{
	*msgs_r = *rcpts_r = 0;
	for (unsigned i = 0; i < RATE_BUCKETS; i++) {
		const struct rate_bucket *b = &rf->b[i];
		/* within the last hour, and not in the future (a clock set back) */
		if (b->minute <= now_min && now_min - b->minute < RATE_BUCKETS) {
			*msgs_r += b->messages;
			*rcpts_r += b->rcpts;
		}
	}
}

static int rate_user(const char *login, char *user, size_t size)
{
	if (!policy_rate_name_ok(login) || strlen(login) >= size)
		return -1;
	snprintf(user, size, "%s", login);
	policy_lower_ascii(user);
	return 0;
}

/* Count one message with nrcpt recipients in the current minute of rf and write the file
 * back (the caller holds its lock).  0, or -1 (logged). */
static int rate_add(int fd, const char *user, struct rate_file *rf, uint32_t now_min,
		    unsigned nrcpt)
{
	struct rate_bucket *b = &rf->b[now_min % RATE_BUCKETS];
	if (b->minute != now_min) {
		b->minute = now_min;
		b->messages = b->rcpts = 0;
	}
	if (b->messages < UINT32_MAX)
		b->messages++;
	b->rcpts = UINT32_MAX - b->rcpts < nrcpt ? UINT32_MAX : b->rcpts + nrcpt;
	if (pwrite(fd, rf, sizeof(*rf), 0) != (ssize_t)sizeof(*rf)) {
		log_err("rate: user=<%s>, error=cannot write the state file", user);
		return -1;
	}
	return 0;
}

/* The budget's decision for one more message with nrcpt recipients; with `take`, the
 * message is counted in the same locked step, so that concurrent connections of one user
 * cannot all pass a check made before any of them was counted. */
static int rate_decide(struct policy *p, const char *login, unsigned nrcpt, bool take,
		       struct policy_reply *r)
{
	char user[65], san[LOG_MAX_FIELD + 1];
	struct rate_file rf;
	uint64_t msgs, rcpts;
	uint32_t now_min;
	int fd;

	if (login == NULL || (p->rate_messages == 0 && p->rate_rcpts == 0))
		return 0;
	if (rate_user(login, user, sizeof(user)) == -1) {
		/* fail closed: the name cannot be a file name, so it cannot be counted */
		log_warn("rate-limited: user=<%s>, rip=%s, reason=bad user name",
			 POLICY_SAN(login, san), p->rip);
		policy_reply_set(r, 451, "4.7.1", "Rate limit state unavailable for this user");
		return -1;
	}
	fd = rate_open(p, user);
	if (fd == -1) {
		policy_reply_set(r, 451, "4.3.0", "Rate limit state unavailable, try again later");
		return -1;
	}
	rate_read(fd, user, &rf);
	now_min = (uint32_t)((uint64_t)p->clock(p->clock_ctx) / 60);
	rate_sum(&rf, now_min, &msgs, &rcpts);
	if (p->rate_messages != 0 && msgs + 1 > p->rate_messages) {
		close(fd);
		log_warn("rate-limited: user=<%s>, rip=%s, messages=%llu, limit=%u", user, p->rip,
			 (unsigned long long)msgs, p->rate_messages);
		policy_reply_set(r, 451, "4.7.1",
			  "Too many messages from <%s> in the last hour, try again later", user);
		return -1;
	}
	if (p->rate_rcpts != 0 && rcpts + nrcpt > p->rate_rcpts) {
		close(fd);
		log_warn("rate-limited: user=<%s>, rip=%s, recipients=%llu, asked=%u, limit=%u",
			 user, p->rip, (unsigned long long)rcpts, nrcpt, p->rate_rcpts);
		policy_reply_set(r, 452, "4.7.1",
			  "Too many recipients from <%s> in the last hour, try again later", user);
		return -1;
	}
	if (take && rate_add(fd, user, &rf, now_min, nrcpt) == -1) {
		close(fd);
		/* fail closed: a message that cannot be counted is not sent */
		policy_reply_set(r, 451, "4.3.0", "Rate limit state unavailable, try again later");
		return -1;
	}
	close(fd);
	return 0;
}

int policy_rate_check(struct policy *p, const char *login, unsigned nrcpt,
		      struct policy_reply *r)
{
	return rate_decide(p, login, nrcpt, false, r);
}

int policy_rate_take(struct policy *p, const char *login, unsigned nrcpt,
		     struct policy_reply *r)
{
	return rate_decide(p, login, nrcpt, true, r);
}

void policy_rate_record(struct policy *p, const char *login, unsigned nrcpt)
{
	char user[65];
	struct rate_file rf;
	int fd;

	if (login == NULL || (p->rate_messages == 0 && p->rate_rcpts == 0))
		return;
	if (rate_user(login, user, sizeof(user)) == -1)
		return;
	fd = rate_open(p, user);
	if (fd == -1)
		return;
	rate_read(fd, user, &rf);
	(void)rate_add(fd, user, &rf, (uint32_t)((uint64_t)p->clock(p->clock_ctx) / 60), nrcpt);
	close(fd);
}
