/* What deliver.c, queue.c and the unit tests share beyond deliver.h. */
#ifndef POSTERN_DELIVER_INT_H
#define POSTERN_DELIVER_INT_H
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "base/config.h"
#include "spool/spool.h"

/* One delivery run's root-side context: the spool and the aliases table, opened once for
 * a queue run and for one deliver_message(). */
struct deliver_ctx;

int deliver_ctx_open(const struct config *cfg, struct deliver_ctx **dc_r,
		     const char **error_r);
void deliver_ctx_free(struct deliver_ctx **dc);
struct spool *deliver_ctx_spool(struct deliver_ctx *dc);
/* deliver_message() on an opened context: lock_timeout_ms 0 for queue runs (a message
 * held by another process is skipped).  0 (handled, or held: *locked_r) or -1. */
int deliver_one(struct deliver_ctx *dc, const char *id, unsigned lock_timeout_ms,
		bool *locked_r, const char **error_r);

/* The signals a delivery run needs (its own children reaped by waitpid, not by a
 * handler the caller installed; SIGPIPE and SIGXFSZ ignored), and back. */
struct deliver_sigs {
	struct sigaction chld, pipe, xfsz;
};
void deliver_signals_set(struct deliver_sigs *old);
void deliver_signals_restore(const struct deliver_sigs *old);

/* When a recipient deferred after `attempts` attempts is tried again: now +
 * DELIVER_RETRY_MIN_S doubled per attempt, at most DELIVER_RETRY_MAX_S. */
int64_t deliver_next_try(int64_t now, uint32_t attempts);

/* The spool user's uid and gid: 0, or -1 with *error_r. */
int deliver_spool_uid(const struct config *cfg, uid_t *uid_r, gid_t *gid_r,
		      const char **error_r);

/* Root works on the spool as the spool user: effective uid and gid switched to it (real
 * and saved stay root, so it can come back), so that the spool's 0700 directories need
 * no CAP_DAC_OVERRIDE and the files it writes are the spool user's without a chown.
 * Not root: nothing to switch (-bp run by the spool user).  Back to root: for forking a
 * user's delivery process (which switches back in itself) or for a kill. */
struct deliver_ids {
	bool switched;
	gid_t egid;           /* root's effective gid, to restore */
};
int deliver_ids_spool(struct deliver_ids *ids, uid_t uid, gid_t gid, const char **error_r);
void deliver_ids_root(struct deliver_ids *ids);

/* Tests: called at each point; the crash tests _exit() or raise SIGKILL in it.  Points
 * marked "child" run in the per-user delivery process (after it dropped to the user). */
enum deliver_hook_point {
	DELIVER_HOOK_SEARCHED = 1,   /* inflight recipients looked for, before the attempt */
	DELIVER_HOOK_ATTEMPTED,      /* the attempt is durable, before the first child */
	DELIVER_HOOK_CHILD_WRITTEN,  /* child: message written, before mail_save_finish() */
	DELIVER_HOOK_CHILD_SAVED,    /* child: saved, before its report */
	DELIVER_HOOK_USER_DONE,      /* one user's process ended, before the next one */
	DELIVER_HOOK_DELIVERED,      /* every process ended, before the outcomes are written */
	DELIVER_HOOK_CHILD_LINKED,   /* child, Maildir: renamed into new/, before new/'s fsync */
};
extern int (*deliver_test_hook)(int point);

/* Maildir delivery without the index (deliver_maildir.c), in the per-user process: a
 * standard Maildir MDA (tmp/, fsync, rename into new/, fsync new/); imapd and ipop3d index
 * the file at their next scan. */
struct deliver_md {
	int dfd, fd;
	uint64_t raw, crlf;           /* the sizes for the name's S= and W= */
	bool cr;
	char base[NAME_MAX + 1];      /* the unique part of the name */
	char tmpname[NAME_MAX + 5];   /* "tmp/" base; "" once renamed */
	char errbuf[128];             /* the last error's text */
};
/* begin: the file in tmp/; write: its bytes; finish: fsync, rename into new/ (the hook's
 * DELIVER_HOOK_CHILD_LINKED), fsync new/.  -1 with *err_r (errno) and *error_r on a
 * failure before the rename (nothing visible: deliver_md_abort() removes the file), -2
 * when new/'s fsync failed after it (visible, maybe not durable).  0 on success. */
int deliver_md_begin(struct deliver_md *w, const char *maildir, int *err_r,
		     const char **error_r);
int deliver_md_write(struct deliver_md *w, const void *buf, size_t n, int *err_r,
		     const char **error_r);
int deliver_md_finish(struct deliver_md *w, int *err_r, const char **error_r,
		      int (*hook)(int point));
void deliver_md_abort(struct deliver_md *w);

/* The retry path of the exactly-once protocol: is a file of the Maildir's new/ or cur/
 * dated since `since` one that holds this token in its first DELIVER_TOKEN_READ_MAX bytes
 * (at most DELIVER_TOKEN_SCAN_MAX files per directory, newest first)? */
enum deliver_md_found { DELIVER_MD_NOTFOUND, DELIVER_MD_FOUND, DELIVER_MD_ERROR };
enum deliver_md_found deliver_md_search(const char *maildir, const char *token, int64_t since,
					const char **error_r);

#endif
