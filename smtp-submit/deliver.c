/* Local delivery from the spool: see deliver.h and docs/architecture.md "smtp-submit:
 * local delivery and the queue".
 *
 * ROOT: everything here runs as root except child_*(), which runs in a process forked
 * per recipient user after it became that user (child_drop()).  Root parses only the
 * envelope (spool_msg_open(): common/spool/envelope.c, hostile input) and the aliases
 * file; it never reads the message: the data file descriptor (opened by the spool code,
 * read-only) is inherited by the user's process, which copies it into the mailbox with
 * common/storage, as ipop3d and imapd read it.
 *
 * Exactly once (docs "Exactly-once local delivery"): a recipient found inflight is first
 * looked for by its token in each of its mailboxes (a search process per user); then the
 * attempt is made durable (inflight = its start) before any byte is written; then one
 * process per user saves the message with Return-Path, Delivered-To and the token field
 * on top; then one update records every outcome (or the message is removed).  An outcome
 * that is not certain (a process killed or timed out, a failed commit, an alias whose
 * mailboxes got the message only in part) keeps the inflight mark, so the next run
 * searches again instead of writing a second copy. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "spool/aliases.h"
#include "spool/envelope.h"
#include "spool/spool.h"
#include "storage/storage.h"
#include "deliver.h"
#include "deliver_int.h"
#include "policy.h"

int (*deliver_test_hook)(int point);

static void hook(int point)
{
	if (deliver_test_hook != NULL)
		(void)deliver_test_hook(point);
}

struct deliver_ctx {
	const struct config *cfg;
	struct spool *sp;
	struct aliases *al;          /* NULL: unusable, al_error says why */
	struct policy *domains;      /* the session's local domains, for "user@domain"
	                                alias targets (NULL: every such target is remote) */
	char al_error[160];
	bool have_mail_gid;
	gid_t mail_gid;              /* the `mail` group, kept by delivery processes */
	uid_t spool_uid;
	gid_t spool_gid;
	struct deliver_ids ids;      /* effective ids switched to the spool user */
};

enum unit_outcome {
	UNIT_TODO,      /* nothing known yet */
	UNIT_FOUND,     /* the search found the token: delivered before a crash */
	UNIT_NOTFOUND,  /* the search found no copy: deliver */
	UNIT_SENT,      /* saved now */
	UNIT_TEMP,      /* not saved, and surely no copy: try again later */
	UNIT_UNSURE,    /* not known to be saved, a copy may exist: search next time */
	UNIT_OUTCOME_COUNT
};

struct duser {
	char *name, *home;
	uid_t uid;
	gid_t gid;
};

/* One mailbox of one recipient: (recipient, user). */
struct unit {
	size_t rcpt, user;
	enum unit_outcome outcome;
	int err;                         /* errno of a failure (full disk: 4.2.2) */
	char store[8];                   /* "maildir" or "mbox" */
	char reason[DELIVER_REASON_MAX];
};

enum rcpt_plan {
	PLAN_SKIP,      /* not ours now: remote, done, failed, or not due */
	PLAN_UNITS,     /* delivered into its units */
	PLAN_FAIL,      /* permanent: reply */
	PLAN_DEFER,     /* temporary before any mailbox (aliases unreadable): reply */
};

struct rplan {
	enum rcpt_plan plan;
	bool alias, searched, found_all;
	char reply[SPOOL_REPLY_MAX + 1];
};

struct run {
	struct deliver_ctx *dc;
	const struct config *cfg;
	struct spool_msg *m;
	struct envelope *env;
	struct duser *users;
	size_t n_users, users_alloc;
	struct unit *units;
	size_t n_units, units_alloc;
	struct rplan *plans;
	int data_fd;
	int64_t now;
};

/* What a delivery process writes to its parent per unit: fixed size, one write each
 * (under PIPE_BUF: atomic). */
struct report {
	uint32_t unit;                   /* index into the list the process was given */
	uint32_t outcome;
	int32_t err;
	char store[8];
	char reason[DELIVER_REASON_MAX];
};

/* ---- the per-user process (runs as the user after child_drop) ---- */

/* Become the user: its groups plus `mail` (for /var/mail, as Debian's MTAs do), then its
 * gid and uid, all three of each; check that there is no way back. */
static int child_drop(const struct run *r, const struct duser *u, const char **error_r)
{
	if (u->uid == 0) {
		*error_r = "refusing to deliver as root";
		return -1;
	}
	if (initgroups(u->name, u->gid) == -1) {
		*error_r = "initgroups failed";
		return -1;
	}
	if (r->dc->have_mail_gid) {
		int n = getgroups(0, NULL);
		if (n < 0) {
			*error_r = "getgroups failed";
			return -1;
		}
		gid_t *g = xcalloc((size_t)n + 1, sizeof(*g));   /* BOUNDS: n from the kernel */
		n = getgroups(n, g);
		bool have = false;
		for (int i = 0; n > 0 && i < n; i++)
			have = have || g[i] == r->dc->mail_gid;
		if (n >= 0 && !have)
			g[n++] = r->dc->mail_gid;
		int rc = n < 0 ? -1 : setgroups((size_t)n, g);
		free(g);
		if (rc == -1) {
			*error_r = "setgroups failed";
			return -1;
		}
	}
	if (setresgid(u->gid, u->gid, u->gid) == -1 || setresuid(u->uid, u->uid, u->uid) == -1) {
		*error_r = "setresgid/setresuid failed";
		return -1;
	}
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) == -1 || ru != u->uid || eu != u->uid || su != u->uid ||
	    getresgid(&rg, &eg, &sg) == -1 || rg != u->gid || eg != u->gid || sg != u->gid ||
	    setuid(0) != -1 || seteuid(0) != -1) {
		*error_r = "the uid or gid did not change for good";
		return -1;
	}
	if ((u->home == NULL || chdir(u->home) == -1) && chdir("/") == -1) {
		*error_r = "chdir failed";
		return -1;
	}
	umask(077);
	return 0;
}

static void child_report(int rfd, uint32_t unit, enum unit_outcome o, int err,
			 const char *store, const char *reason)
{
	struct report rep;

	memset(&rep, 0, sizeof(rep));
	rep.unit = unit;
	rep.outcome = (uint32_t)o;
	rep.err = err;
	if (store != NULL)
		snprintf(rep.store, sizeof(rep.store), "%s", store);
	snprintf(rep.reason, sizeof(rep.reason), "%s", reason != NULL ? reason : "");
	/* the parent reads whole records; a dead parent: nothing to tell */
	if (write(rfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		_exit(1);
}

/* Does the mailbox (the Maildir at maildir, else box) hold a message with this token,
 * among those dated since `since`? */
static enum unit_outcome child_search(struct mailbox *box, const char *maildir,
				      const char *token, int64_t since, char *reason,
				      size_t reason_size)
{
	if (maildir != NULL) {
		/* delivered without the index: the files of new/ and cur/ themselves */
		const char *e = NULL;
		enum deliver_md_found f = deliver_md_search(maildir, token, since, &e);
		if (f == DELIVER_MD_ERROR)
			snprintf(reason, reason_size, "%s", e);
		return f == DELIVER_MD_FOUND ? UNIT_FOUND :
			f == DELIVER_MD_NOTFOUND ? UNIT_NOTFOUND : UNIT_UNSURE;
	}
	size_t n = mailbox_count(box), k = 0;
	uint32_t *uids = xcalloc(n < DELIVER_TOKEN_SCAN_MAX ? n + 1 : DELIVER_TOKEN_SCAN_MAX,
				 sizeof(*uids));
	char buf[DELIVER_TOKEN_READ_MAX];
	const char *err;

	/* positions move with every read that locks: take the UIDs first, newest first */
	for (size_t i = n; i-- > 0 && k < DELIVER_TOKEN_SCAN_MAX;) {
		const struct index_rec *rec = mailbox_get(box, i);
		if (rec != NULL && rec->date >= since)
			uids[k++] = rec->uid;
	}
	enum unit_outcome o = UNIT_NOTFOUND;
	for (size_t i = 0; i < k && o == UNIT_NOTFOUND; i++) {
		struct mail_reader *rd;
		if (mailbox_msg_open(box, uids[i], &rd, &err) == -1)
			continue;        /* expunged meanwhile: not ours to count */
		size_t len = 0;
		ssize_t got = 1;
		while (len < sizeof(buf) &&
		       (got = mail_reader_read(rd, buf + len, sizeof(buf) - len, &err)) > 0)
			len += (size_t)got;
		mail_reader_close(&rd);
		if (got < 0) {
			snprintf(reason, reason_size, "reading the mailbox: %s", err);
			o = UNIT_UNSURE;
		} else if (envelope_token_find(buf, len, token)) {
			o = UNIT_FOUND;
		}
	}
	free(uids);
	return o;
}

/* Full disk, quota, file size limit: the errno of the failure, or the text. */
static bool err_is_full(int e, const char *text)
{
	if (e == ENOSPC || e == EDQUOT || e == EFBIG)
		return true;
	return text != NULL && (strstr(text, strerror(ENOSPC)) != NULL ||
				strstr(text, strerror(EDQUOT)) != NULL ||
				strstr(text, strerror(EFBIG)) != NULL);
}

/* Where child_save() writes: the index-free Maildir writer (md), or common/storage (s). */
struct save_out {
	struct deliver_md *md;
	struct mail_save *s;
	int err;
	const char *error;
};

static int out_write(struct save_out *o, const void *buf, size_t n)
{
	if (o->md != NULL)
		return deliver_md_write(o->md, buf, n, &o->err, &o->error);
	if (mail_save_write(o->s, buf, n, &o->error) == -1) {
		o->err = errno;
		return -1;
	}
	return 0;
}

/* Save the message for unit u: our three fields, then the spool's bytes with CRLF made
 * LF (the Unix mailbox convention, as other MTAs store it; a lone CR stays).  maildir:
 * the Maildir's path, written without its index (deliver_maildir.c); else box (mbox,
 * through common/storage and its locks). */
static enum unit_outcome child_save(const struct run *r, struct mailbox *box,
				    const char *maildir, size_t u, int *err_r, char *reason,
				    size_t reason_size)
{
	const struct unit *un = &r->units[u];
	const struct envelope_rcpt *rc = &r->env->rcpts[un->rcpt];
	char tok[ENVELOPE_TOKEN_LEN + 1];
	struct deliver_md md;
	struct save_out out = { .md = NULL };
	const char *err;

	if (envelope_token(r->env, un->rcpt, tok, sizeof(tok)) == -1) {
		snprintf(reason, reason_size, "no delivery token");
		return UNIT_TEMP;
	}
	/* the sender and recipient are envelope values: no CR, LF or control byte */
	char *hdr = NULL;
	size_t hlen = 0;
	FILE *f = open_memstream(&hdr, &hlen);
	if (f == NULL)
		fatal("out of memory");
	fprintf(f, "Return-Path: <%s>\nDelivered-To: %s\n%s: %s\n", r->env->sender, rc->addr,
		ENVELOPE_TOKEN_FIELD, tok);
	if (fclose(f) != 0)
		fatal("out of memory");
	if (maildir != NULL) {
		if (deliver_md_begin(&md, maildir, err_r, &err) == -1) {
			snprintf(reason, reason_size, "%s", err);
			free(hdr);
			return UNIT_TEMP;
		}
		out.md = &md;
	} else if (mailbox_save_begin(box, 0, 0, &out.s, &err) == -1) {
		*err_r = errno;
		snprintf(reason, reason_size, "%s", err);
		free(hdr);
		return UNIT_TEMP;
	}
	int rc_w = out_write(&out, hdr, hlen);
	free(hdr);
	char *in = xmalloc(DELIVER_COPY_BUF), *buf = xmalloc(DELIVER_COPY_BUF + 1);
	uint64_t off = 0;
	bool cr = false;
	while (rc_w == 0) {
		ssize_t got = pread(r->data_fd, in, DELIVER_COPY_BUF, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			out.err = errno;
			out.error = "reading the spooled message failed";
			rc_w = -1;
			break;
		}
		size_t o = 0;
		if (got == 0) {
			if (cr)
				buf[o++] = '\r';
			if (o > 0)
				rc_w = out_write(&out, buf, o);
			break;
		}
		off += (uint64_t)got;
		for (ssize_t i = 0; i < got; i++) {
			/* BOUNDS: at most one byte out per byte in, plus a CR held from the last
			 * chunk: DELIVER_COPY_BUF + 1 */
			char c = in[i];
			if (cr) {
				cr = false;
				if (c != '\n')
					buf[o++] = '\r';
			}
			if (c == '\r') {
				cr = true;
				continue;
			}
			buf[o++] = c;
		}
		rc_w = out_write(&out, buf, o);
	}
	free(in);
	free(buf);
	if (rc_w == -1 || off != r->env->size) {
		if (rc_w == -1) {
			*err_r = out.err;
			snprintf(reason, reason_size, "%s", out.error);
		} else {
			snprintf(reason, reason_size, "the spooled message changed size");
		}
		if (out.md != NULL)
			deliver_md_abort(out.md);
		else
			mail_save_abort(&out.s);
		return UNIT_TEMP;     /* nothing became visible */
	}
	hook(DELIVER_HOOK_CHILD_WRITTEN);
	if (out.md != NULL) {
		int fr = deliver_md_finish(out.md, err_r, &err, deliver_test_hook);
		deliver_md_abort(out.md);
		if (fr != 0) {
			snprintf(reason, reason_size, "%s", err);
			/* -1: not renamed, nothing visible; -2: in new/, maybe not durable */
			return fr == -1 ? UNIT_TEMP : UNIT_UNSURE;
		}
	} else if (mail_save_finish(&out.s, NULL, &err) == -1) {
		*err_r = errno;
		snprintf(reason, reason_size, "%s", err);
		return UNIT_UNSURE;   /* a commit that failed half-way: search next time */
	}
	hook(DELIVER_HOOK_CHILD_SAVED);
	return UNIT_SENT;
}

/* Close every descriptor but 0-2 (made /dev/null), the data file and the report pipe:
 * nothing root opened (the spool's directories, a log file, the client's socket) stays
 * in a process that runs as the user. */
static void child_fds(int keep1, int keep2)
{
	int a = keep1 < keep2 ? keep1 : keep2, b = keep1 < keep2 ? keep2 : keep1;
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (nul == -1)
		_exit(1);
	for (int fd = 0; fd <= 2; fd++)
		if (fd != nul && dup2(nul, fd) == -1)
			_exit(1);
	if (nul > 2 && nul != a && nul != b)
		close(nul);
	if (a > 3)
		(void)close_range(3, (unsigned)a - 1, 0);
	if (b > a + 1)
		(void)close_range((unsigned)a + 1, (unsigned)b - 1, 0);
	(void)close_range((unsigned)b + 1, ~0U, 0);
}

static __attribute__((noreturn)) void
child_main(struct run *r, size_t user, const size_t *list, size_t n, bool search, int rfd)
{
	const struct duser *u = &r->users[user];
	struct mail_storage *st = NULL;
	struct mailbox *box = NULL;
	const char *err;
	char reason[DELIVER_REASON_MAX];

	alarm(DELIVER_CHILD_TIMEOUT_S);
	/* the parent works as the spool user; the drop below starts from root */
	deliver_ids_root(&r->dc->ids);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);     /* RLIMIT_FSIZE: EFBIG, a full mailbox, not a kill */
	log_close();
	child_fds(r->data_fd, rfd);
	/* Maildir: no index (deliver_maildir.c); mbox: common/storage and its locks */
	const char *maildir = NULL;
	if (child_drop(r, u, &err) == -1 ||
	    storage_locate(r->cfg->mail_location, u->name, u->home, &st, &err) == -1 ||
	    ((maildir = strcmp(storage_kind(st), "maildir") == 0 ? storage_inbox_path(st) :
	      NULL) == NULL && mailbox_open(st, "INBOX", &box, &err) == -1)) {
		for (size_t i = 0; i < n; i++)
			child_report(rfd, (uint32_t)i, search ? UNIT_UNSURE : UNIT_TEMP, errno,
				     NULL, err);
		_exit(0);
	}
	for (size_t i = 0; i < n; i++) {
		size_t ui = list[i];
		int e = 0;
		enum unit_outcome o;
		reason[0] = '\0';
		if (search) {
			char tok[ENVELOPE_TOKEN_LEN + 1];
			const struct envelope_rcpt *rc = &r->env->rcpts[r->units[ui].rcpt];
			if (envelope_token(r->env, r->units[ui].rcpt, tok, sizeof(tok)) == -1) {
				o = UNIT_UNSURE;
				snprintf(reason, sizeof(reason), "no delivery token");
			} else {
				o = child_search(box, maildir, tok,
						 rc->inflight - DELIVER_TOKEN_SLACK_S, reason,
						 sizeof(reason));
			}
		} else {
			o = child_save(r, box, maildir, ui, &e, reason, sizeof(reason));
		}
		child_report(rfd, (uint32_t)i, o, e, storage_kind(st), reason);
	}
	mailbox_close(&box);
	storage_free(&st);
	_exit(0);
}

/* ---- root: one process per user ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unit_set(struct unit *un, enum unit_outcome o, int err, const char *store,
		     const char *reason)
{
	un->outcome = o;
	un->err = err;
	if (store != NULL)
		snprintf(un->store, sizeof(un->store), "%s", store);
	snprintf(un->reason, sizeof(un->reason), "%s", reason != NULL ? reason : "");
}

/* Run the units list[0..n) of one user in a process as that user: search their tokens
 * (search) or save the message.  Every unit gets an outcome; one the process did not
 * report is UNSURE (it may have written before it died). */
static void run_user(struct run *r, size_t user, const size_t *list, size_t n, bool search)
{
	int p[2];
	pid_t pid = -1;

	if (pipe2(p, O_CLOEXEC) == -1) {
		for (size_t i = 0; i < n; i++)
			unit_set(&r->units[list[i]], search ? UNIT_UNSURE : UNIT_TEMP, errno, NULL,
				 "pipe failed");
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		child_main(r, user, list, n, search, p[1]);
	}
	close(p[1]);
	if (pid == -1) {
		close(p[0]);
		for (size_t i = 0; i < n; i++)
			unit_set(&r->units[list[i]], search ? UNIT_UNSURE : UNIT_TEMP, errno, NULL,
				 "fork failed");
		return;
	}
	bool *got = xcalloc(n, sizeof(*got));
	struct report rep;
	size_t have = 0;
	int64_t deadline = mono_ms() + (int64_t)DELIVER_CHILD_TIMEOUT_S * 1000;
	bool timed_out = false;
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int pr = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t k = read(p[0], (char *)&rep + have, sizeof(rep) - have);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			break;
		have += (size_t)k;
		if (have < sizeof(rep))
			continue;
		have = 0;
		/* the process runs as the user: take nothing on trust */
		rep.store[sizeof(rep.store) - 1] = '\0';
		rep.reason[sizeof(rep.reason) - 1] = '\0';
		enum unit_outcome o = rep.outcome < UNIT_OUTCOME_COUNT ?
			(enum unit_outcome)rep.outcome : UNIT_TODO;
		bool fits = search ? (o == UNIT_FOUND || o == UNIT_NOTFOUND || o == UNIT_UNSURE) :
			(o == UNIT_SENT || o == UNIT_TEMP || o == UNIT_UNSURE);
		if (rep.unit >= n || got[rep.unit] || !fits)
			continue;
		got[rep.unit] = true;
		unit_set(&r->units[list[rep.unit]], o, rep.err, rep.store, rep.reason);
	}
	close(p[0]);
	if (timed_out) {
		/* the process runs as its user: only root may end it */
		struct deliver_ids *ids = &r->dc->ids;
		bool was = ids->switched;
		deliver_ids_root(ids);
		(void)kill(pid, SIGKILL);
		const char *err;
		if (was && deliver_ids_spool(ids, r->dc->spool_uid, r->dc->spool_gid, &err) == -1)
			fatal("deliver: %s", err);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	for (size_t i = 0; i < n; i++) {
		if (got[i])
			continue;
		char why[64];
		if (timed_out)
			snprintf(why, sizeof(why), "delivery process timed out");
		else if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "delivery process killed by signal %d",
				 WTERMSIG(status));
		else
			snprintf(why, sizeof(why), "delivery process ended without a result");
		unit_set(&r->units[list[i]], UNIT_UNSURE, 0, NULL, why);
	}
	free(got);
	hook(DELIVER_HOOK_USER_DONE);
}

/* Every user's process in turn, for the units selected by want. */
static void run_users(struct run *r, bool search, enum unit_outcome want)
{
	size_t *list = xcalloc(r->n_units + 1, sizeof(*list));

	for (size_t u = 0; u < r->n_users; u++) {
		size_t n = 0;
		for (size_t i = 0; i < r->n_units; i++)
			if (r->units[i].user == u && r->units[i].outcome == want)
				list[n++] = i;
		if (n > 0)
			run_user(r, u, list, n, search);
	}
	free(list);
}

/* ---- root: recipients to users ---- */

static size_t user_add(struct run *r, const struct passwd *pw)
{
	for (size_t i = 0; i < r->n_users; i++)
		if (strcmp(r->users[i].name, pw->pw_name) == 0)
			return i;
	if (r->n_users == r->users_alloc) {
		r->users_alloc = r->users_alloc == 0 ? 8 : r->users_alloc * 2;
		r->users = xrealloc(r->users, r->users_alloc * sizeof(*r->users));
	}
	struct duser *u = &r->users[r->n_users];
	u->name = xstrdup(pw->pw_name);
	u->home = pw->pw_dir != NULL ? xstrdup(pw->pw_dir) : NULL;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return r->n_users++;
}

/* A unit for (rcpt, pw) unless the recipient reaches that mailbox already (the same uid:
 * two names of one account share its mailbox). */
static void unit_add(struct run *r, size_t rcpt, const struct passwd *pw)
{
	for (size_t i = 0; i < r->n_units; i++)
		if (r->units[i].rcpt == rcpt && r->users[r->units[i].user].uid == pw->pw_uid)
			return;
	size_t user = user_add(r, pw);
	if (r->n_units == r->units_alloc) {
		r->units_alloc = r->units_alloc == 0 ? 8 : r->units_alloc * 2;
		r->units = xrealloc(r->units, r->units_alloc * sizeof(*r->units));
	}
	struct unit *un = &r->units[r->n_units++];
	memset(un, 0, sizeof(*un));
	un->rcpt = rcpt;
	un->user = user;
}

enum lookup { LOOKUP_USER, LOOKUP_NONE, LOOKUP_SYSTEM, LOOKUP_ERROR };

/* The account for a local name, lower-cased as the session's policy looks it up (Unix
 * names are lower case; RFC 5321 lets us fold local parts).  direct: the recipient
 * itself, which must be a mail user (uid >= min_uid, not in deny_users), as the policy
 * accepted it; an alias target may be any account but root (the admin wrote it).
 * LOOKUP_ERROR: the lookup itself failed (NSS): try again later. */
static enum lookup user_lookup(const struct config *cfg, const char *name, bool direct,
			       const struct passwd **pw_r)
{
	char low[256];

	*pw_r = NULL;
	if (util_snprintf(low, sizeof(low), "%s", name) < 0)
		return LOOKUP_NONE;
	for (char *p = low; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (!config_username_ok(cfg, low, strlen(low)))
		return LOOKUP_NONE;
	errno = 0;
	const struct passwd *pw = getpwnam(low);
	if (pw == NULL)
		return errno == 0 || errno == ENOENT || errno == ESRCH ? LOOKUP_NONE :
			LOOKUP_ERROR;
	if (pw->pw_uid == 0)
		return LOOKUP_SYSTEM;
	if (direct && pw->pw_uid < cfg->min_uid)
		return LOOKUP_SYSTEM;
	if (direct && cfg->deny_users != NULL) {
		size_t n = strlen(low);
		for (const char *l = cfg->deny_users; *l != '\0';) {
			l += strspn(l, " ,\t");
			size_t k = strcspn(l, " ,\t");
			if (k == n && k > 0 && memcmp(l, low, n) == 0)
				return LOOKUP_SYSTEM;
			l += k;
		}
	}
	*pw_r = pw;
	return LOOKUP_USER;
}

/* The local part of a path ("bob" of "bob@example.org", "postmaster" alone), a quoted
 * one unquoted.  0, or -1 when it does not fit. */
static int local_part(const char *addr, char *out, size_t size)
{
	const char *at = strrchr(addr, '@');
	size_t len = at != NULL ? (size_t)(at - addr) : strlen(addr), o = 0;

	if (len >= 2 && addr[0] == '"' && addr[len - 1] == '"') {
		for (size_t i = 1; i + 1 < len; i++) {
			if (addr[i] == '\\' && i + 2 < len)
				i++;
			if (o + 1 >= size)
				return -1;
			out[o++] = addr[i];
		}
	} else {
		if (len >= size)
			return -1;
		memcpy(out, addr, len);
		o = len;
	}
	out[o] = '\0';
	return o > 0 ? 0 : -1;
}

struct alias_cb {
	struct run *r;
	size_t rcpt;
	unsigned reached, unknown;
	bool failed;
};

static int alias_user(void *ctx, const char *user)
{
	struct alias_cb *a = ctx;
	const struct passwd *pw;
	enum lookup l = user_lookup(a->r->cfg, user, false, &pw);

	if (l == LOOKUP_ERROR) {
		a->failed = true;
		return 1;
	}
	if (l != LOOKUP_USER) {
		char s[LOG_MAX_FIELD + 1], t[LOG_MAX_FIELD + 1];
		const char *addr = a->r->env->rcpts[a->rcpt].addr;
		log_warn("%s: alias target <%s> of <%s> %s, skipped", a->r->env->id,
			 log_sanitize(user, strlen(user), s), log_sanitize(addr, strlen(addr), t),
			 l == LOOKUP_SYSTEM ? "is root" : "is not a user");
		a->unknown++;
		return 0;
	}
	unit_add(a->r, a->rcpt, pw);
	a->reached++;
	return 0;
}

static void plan_reply(struct rplan *p, enum rcpt_plan plan, const char *code, const char *text)
{
	p->plan = plan;
	snprintf(p->reply, sizeof(p->reply), "%s %s", code, text);
}

/* Decide what recipient i needs: units (mailboxes), a failure or a deferral. */
static void plan_rcpt(struct run *r, size_t i)
{
	struct rplan *p = &r->plans[i];
	const struct envelope_rcpt *rc = &r->env->rcpts[i];
	char name[256];
	const char *err;

	if (local_part(rc->addr, name, sizeof(name)) == -1) {
		plan_reply(p, PLAN_FAIL, "550 5.1.3", "bad local part");
		return;
	}
	if (r->dc->al == NULL) {
		char t[200];
		snprintf(t, sizeof(t), "aliases file unusable: %s", r->dc->al_error);
		plan_reply(p, PLAN_DEFER, "451 4.3.0", t);
		return;
	}
	struct alias_cb a = { .r = r, .rcpt = i };
	unsigned skipped = 0;
	int ar = aliases_expand(r->dc->al, name, alias_user, &a, &skipped, &err);
	if (ar == -1) {
		char t[200];
		snprintf(t, sizeof(t), "alias expansion failed: %s", err);
		plan_reply(p, PLAN_FAIL, "550 5.4.6", t);
		return;
	}
	if (ar == 1 && a.failed) {
		plan_reply(p, PLAN_DEFER, "451 4.3.0", "user lookup failed");
		return;
	}
	if (ar == 1) {
		p->alias = true;
		if (skipped > 0)
			log_info("%s: to=<%s>, alias targets not delivered here (pipes, files, "
				 "remote): %u", r->env->id, rc->addr, skipped);
		if (a.reached == 0) {
			plan_reply(p, PLAN_FAIL, "550 5.1.1", "alias reaches no local mailbox");
			return;
		}
		p->plan = PLAN_UNITS;
		return;
	}
	const struct passwd *pw;
	switch (user_lookup(r->cfg, name, true, &pw)) {
	case LOOKUP_ERROR:
		plan_reply(p, PLAN_DEFER, "451 4.3.0", "user lookup failed");
		return;
	case LOOKUP_SYSTEM:
		plan_reply(p, PLAN_FAIL, "550 5.1.1", "not a mail account");
		return;
	case LOOKUP_NONE:
		plan_reply(p, PLAN_FAIL, "550 5.1.1", "no such user");
		return;
	case LOOKUP_USER:
		break;
	}
	unit_add(r, i, pw);
	p->plan = PLAN_UNITS;
}

/* Is recipient i ours to try now?  Local, not done, not failed (its bounce is the queue
 * runner's), and pending, or deferred and due. */
static bool rcpt_due(const struct envelope_rcpt *rc, int64_t now)
{
	if (rc->kind != ENVELOPE_LOCAL)
		return false;
	if (rc->state == ENVELOPE_PENDING)
		return true;
	return rc->state == ENVELOPE_DEFERRED && rc->next_try <= now;
}

/* ---- root: outcomes ---- */

int64_t deliver_next_try(int64_t now, uint32_t attempts)
{
	int64_t d = DELIVER_RETRY_MIN_S;

	for (uint32_t i = 1; i < attempts && d < DELIVER_RETRY_MAX_S; i++)
		d *= 2;
	if (d > DELIVER_RETRY_MAX_S)
		d = DELIVER_RETRY_MAX_S;
	return now + d;
}

static void log_outcome(const struct run *r, const char *to, const char *orig_to,
			const char *status, const char *text)
{
	char a[LOG_MAX_FIELD + 1], b[LOG_MAX_FIELD + 1], t[SPOOL_REPLY_MAX + 1];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	double delay = (double)(ts.tv_sec - r->env->arrival) + ts.tv_nsec / 1e9;
	if (delay < 0)
		delay = 0;
	envelope_sanitize(t, sizeof(t), text, strlen(text), SPOOL_REPLY_MAX);
	if (orig_to != NULL)
		log_info("%s: to=<%s>, orig_to=<%s>, relay=local, delay=%.2f, status=%s (%s)",
			 r->env->id, log_sanitize(to, strlen(to), a),
			 log_sanitize(orig_to, strlen(orig_to), b), delay, status, t);
	else
		log_info("%s: to=<%s>, relay=local, delay=%.2f, status=%s (%s)", r->env->id,
			 log_sanitize(to, strlen(to), a), delay, status, t);
}

/* The address a unit's mailbox is logged under: the user at the recipient's domain. */
static void unit_addr(const struct run *r, const struct unit *un, char *buf, size_t size)
{
	const char *addr = r->env->rcpts[un->rcpt].addr, *at = strrchr(addr, '@');
	snprintf(buf, size, "%s%s", r->users[un->user].name, at != NULL ? at : "");
}

/* Record recipient i's outcome in the envelope (in memory) and log it. */
static void settle_rcpt(struct run *r, size_t i)
{
	struct rplan *p = &r->plans[i];
	struct envelope_rcpt *rc = &r->env->rcpts[i];
	char reply[SPOOL_REPLY_MAX + 1], who[600];

	if (p->plan == PLAN_FAIL) {
		envelope_rcpt_fail(rc, p->reply, NULL);
		log_outcome(r, rc->addr, NULL, "bounced", p->reply);
		return;
	}
	if (p->plan == PLAN_DEFER) {
		int64_t keep = rc->inflight;    /* a crashed attempt stays to be searched */
		envelope_rcpt_defer(rc, deliver_next_try(r->now, rc->attempts), p->reply, NULL);
		rc->inflight = keep;
		log_outcome(r, rc->addr, NULL, "deferred", p->reply);
		return;
	}
	if (p->plan != PLAN_UNITS)
		return;
	bool all = true, copy = false, full = false;
	const struct unit *bad = NULL;
	const char *store = NULL;
	size_t n = 0;
	for (size_t k = 0; k < r->n_units; k++) {
		const struct unit *un = &r->units[k];
		if (un->rcpt != i)
			continue;
		n++;
		const char *orig = p->alias ? rc->addr : NULL;
		if (p->alias)
			unit_addr(r, un, who, sizeof(who));
		else
			snprintf(who, sizeof(who), "%s", rc->addr);
		switch (un->outcome) {
		case UNIT_FOUND:
			copy = true;
			log_outcome(r, who, orig, "sent", "delivered before a crash: found by "
				    "its delivery token");
			break;
		case UNIT_SENT:
			copy = true;
			store = un->store;
			snprintf(reply, sizeof(reply), "delivered to %s", un->store);
			log_outcome(r, who, orig, "sent", reply);
			break;
		case UNIT_UNSURE:
			copy = true;     /* maybe: keep inflight so the next run searches */
			/* fall through */
		default:
			all = false;
			bad = un;
			full = full || err_is_full(un->err, un->reason);
			log_outcome(r, who, orig, "deferred", un->reason[0] != '\0' ? un->reason :
				    "not delivered");
			break;
		}
	}
	if (all) {
		if (store != NULL && n == 1)
			snprintf(reply, sizeof(reply), "250 2.0.0 delivered to %s", store);
		else
			snprintf(reply, sizeof(reply), "250 2.0.0 delivered to %zu mailbox%s", n,
				 n == 1 ? "" : "es");
		envelope_rcpt_delivered(rc, reply, NULL);
		return;
	}
	snprintf(reply, sizeof(reply), "%s %s", full ? "452 4.2.2" : "451 4.2.0",
		 bad != NULL && bad->reason[0] != '\0' ? bad->reason : "mailbox unavailable");
	int64_t keep = copy ? rc->inflight : 0;
	envelope_rcpt_defer(rc, deliver_next_try(r->now, rc->attempts), reply, NULL);
	rc->inflight = keep;
}

/* ---- root: the run ---- */

static void run_free(struct run *r)
{
	for (size_t i = 0; i < r->n_users; i++) {
		free(r->users[i].name);
		free(r->users[i].home);
	}
	free(r->users);
	free(r->units);
	free(r->plans);
}

/* Steps 1-4 of the protocol on an opened, locked message.  0, or -1 when an update
 * failed (nothing was written into a mailbox after a failed attempt update). */
static int deliver_locked(struct run *r, const char **error_r)
{
	struct envelope *env = r->env;
	size_t n_due = 0;

	r->plans = xcalloc(env->rcpt_count + 1, sizeof(*r->plans));
	for (size_t i = 0; i < env->rcpt_count; i++) {
		if (!rcpt_due(&env->rcpts[i], r->now))
			continue;
		plan_rcpt(r, i);
		n_due++;
	}
	if (n_due == 0 && !envelope_done(env))
		return 0;
	if (envelope_done(env))    /* a crash between the last update and the removal */
		return spool_msg_remove_unsynced(&r->m, error_r) == SPOOL_OK ? 0 : -1;
	/* 1. recipients whose last attempt was cut: look for their copies first (the units
	 * to search are those left UNIT_TODO; the others go straight to delivery) */
	bool any_search = false;
	for (size_t k = 0; k < r->n_units; k++) {
		struct unit *un = &r->units[k];
		un->outcome = env->rcpts[un->rcpt].inflight != 0 ? UNIT_TODO : UNIT_NOTFOUND;
		any_search = any_search || un->outcome == UNIT_TODO;
	}
	if (any_search) {
		run_users(r, true, UNIT_TODO);
		hook(DELIVER_HOOK_SEARCHED);
	}
	/* 2. the attempt, durable before any byte is written: inflight keeps the start of
	 * the first unresolved attempt (the search window must cover every earlier copy) */
	bool any = false;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		bool todo = false;
		for (size_t k = 0; k < r->n_units; k++)
			todo = todo || (r->units[k].rcpt == i && r->units[k].outcome == UNIT_NOTFOUND);
		if (!todo)
			continue;
		struct envelope_rcpt *rc = &env->rcpts[i];
		int64_t old = rc->inflight;
		envelope_rcpt_attempt(rc, r->now);
		if (old != 0 && old < rc->inflight)
			rc->inflight = old;
		any = true;
	}
	if (any) {
		if (spool_msg_update(r->m, error_r) != SPOOL_OK)
			return -1;
		hook(DELIVER_HOOK_ATTEMPTED);
		/* 3. deliver */
		run_users(r, false, UNIT_NOTFOUND);
	}
	hook(DELIVER_HOOK_DELIVERED);
	/* 4. the outcomes, in one update (or the removal) */
	for (size_t i = 0; i < env->rcpt_count; i++)
		settle_rcpt(r, i);
	if (envelope_done(env))
		return spool_msg_remove_unsynced(&r->m, error_r) == SPOOL_OK ? 0 : -1;
	return spool_msg_update(r->m, error_r) == SPOOL_OK ? 0 : -1;
}

int deliver_one(struct deliver_ctx *dc, const char *id, unsigned lock_timeout_ms,
		bool *locked_r, const char **error_r)
{
	struct run r;
	int ret;

	*locked_r = false;
	memset(&r, 0, sizeof(r));
	r.dc = dc;
	r.cfg = dc->cfg;
	int sr = spool_msg_open(dc->sp, id, lock_timeout_ms, &r.m, error_r);
	if (sr == SPOOL_LOCKED) {
		*locked_r = true;
		return 0;
	}
	if (sr == SPOOL_GONE)
		return 0;        /* delivered and removed by another run meanwhile */
	if (sr != SPOOL_OK)
		return -1;
	r.env = spool_msg_env(r.m);
	r.data_fd = spool_msg_data_fd(r.m);
	r.now = time(NULL);
	ret = deliver_locked(&r, error_r);
	if (r.m != NULL)
		spool_msg_close(&r.m);
	run_free(&r);
	return ret;
}

/* ---- root: the context ---- */

int deliver_spool_uid(const struct config *cfg, uid_t *uid_r, gid_t *gid_r,
		      const char **error_r)
{
	const struct passwd *pw = getpwnam(cfg->spool_user);

	if (pw == NULL) {
		*error_r = "spool_user does not exist";
		return -1;
	}
	if (pw->pw_uid == 0) {
		*error_r = "spool_user is root";
		return -1;
	}
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return 0;
}

int deliver_ids_spool(struct deliver_ids *ids, uid_t uid, gid_t gid, const char **error_r)
{
	if (geteuid() != 0)
		return 0;
	ids->egid = getegid();
	if (setresgid((gid_t)-1, gid, (gid_t)-1) == -1) {
		*error_r = "setresgid to the spool user failed";
		return -1;
	}
	if (setresuid((uid_t)-1, uid, (uid_t)-1) == -1) {
		if (setresgid((gid_t)-1, ids->egid, (gid_t)-1) == -1)
			fatal("deliver: cannot return to root's group");
		*error_r = "setresuid to the spool user failed";
		return -1;
	}
	ids->switched = true;
	return 0;
}

void deliver_ids_root(struct deliver_ids *ids)
{
	if (!ids->switched)
		return;
	/* real and saved uid are 0: this cannot fail but for a broken kernel */
	if (setresuid((uid_t)-1, 0, (uid_t)-1) == -1 ||
	    setresgid((gid_t)-1, ids->egid, (gid_t)-1) == -1)
		fatal("deliver: cannot return to root");
	ids->switched = false;
}

static bool alias_domain_local(void *ctx, const char *domain)
{
	return policy_domain_is_local(ctx, domain);
}

int deliver_ctx_open(const struct config *cfg, struct deliver_ctx **dc_r,
		     const char **error_r)
{
	struct deliver_ctx *dc = xcalloc(1, sizeof(*dc));
	const char *err;

	dc->cfg = cfg;
	if (deliver_spool_uid(cfg, &dc->spool_uid, &dc->spool_gid, error_r) == -1) {
		free(dc);
		return -1;
	}
	/* the local domains as the session's policy has them (its own aliases table is
	 * not used: an unreadable file defers delivery here, it does not stop it) */
	struct config dcfg = *cfg;
	dcfg.aliases = NULL;
	if (policy_open(&dcfg, SUBMIT_MODE_MX, &dc->domains, &err) == -1) {
		log_err("local_domains: %s (alias targets user@domain are not delivered)", err);
		dc->domains = NULL;
	}
	if (aliases_open(cfg->aliases, &dc->al, &err) == -1) {
		snprintf(dc->al_error, sizeof(dc->al_error), "%s", err);
		log_err("aliases: file=%s, error=%s", cfg->aliases, err);
		dc->al = NULL;
	} else if (dc->domains != NULL) {
		aliases_set_local(dc->al, alias_domain_local, dc->domains);
	}
	const struct group *gr = getgrnam("mail");
	if (gr != NULL) {
		dc->have_mail_gid = true;
		dc->mail_gid = gr->gr_gid;
	}
	/* from here on root is the spool user but for its delivery processes and kills */
	if (deliver_ids_spool(&dc->ids, dc->spool_uid, dc->spool_gid, error_r) == -1 ||
	    spool_open(cfg->spool_dir, dc->spool_uid, 0, &dc->sp, error_r) == -1) {
		deliver_ids_root(&dc->ids);
		if (dc->al != NULL)
			aliases_free(&dc->al);
		policy_free(&dc->domains);
		free(dc);
		return -1;
	}
	*dc_r = dc;
	return 0;
}

void deliver_ctx_free(struct deliver_ctx **dcp)
{
	struct deliver_ctx *dc = *dcp;

	if (dc == NULL)
		return;
	if (dc->al != NULL)
		aliases_free(&dc->al);
	policy_free(&dc->domains);
	spool_close(&dc->sp);
	deliver_ids_root(&dc->ids);
	free(dc);
	*dcp = NULL;
}

struct spool *deliver_ctx_spool(struct deliver_ctx *dc)
{
	return dc->sp;
}

void deliver_signals_set(struct deliver_sigs *old)
{
	struct sigaction dfl, ign;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGCHLD, &dfl, &old->chld);
	sigaction(SIGPIPE, &ign, &old->pipe);
	sigaction(SIGXFSZ, &ign, &old->xfsz);
}

void deliver_signals_restore(const struct deliver_sigs *old)
{
	sigaction(SIGCHLD, &old->chld, NULL);
	sigaction(SIGPIPE, &old->pipe, NULL);
	sigaction(SIGXFSZ, &old->xfsz, NULL);
}

int deliver_message(const struct config *cfg, const char *id, const char **error_r)
{
	struct deliver_ctx *dc;
	struct deliver_sigs sigs;
	bool locked;
	int ret = -1;

	if (!envelope_id_valid(id, strlen(id))) {
		*error_r = "not a queue id";
		return -1;
	}
	deliver_signals_set(&sigs);
	if (deliver_ctx_open(cfg, &dc, error_r) == 0) {
		ret = deliver_one(dc, id, DELIVER_LOCK_TIMEOUT_MS, &locked, error_r);
		if (ret == 0 && locked)
			log_info("%s: held by another process, left to the queue runner", id);
		if (ret == -1)
			log_err("%s: delivery failed: %s", id, *error_r);
		deliver_ctx_free(&dc);
	}
	deliver_signals_restore(&sigs);
	return ret;
}
