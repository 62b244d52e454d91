/* The spool: smtp-submit's queue of accepted messages (docs/architecture.md, "The spool").
 *
 *   spool_dir/            owned by spool_user, mode 0700 (checked at every open)
 *     tmp/QUEUEID/        a message being received: data (locked by its writer), and at
 *                         commit env; also QUEUEID.del, a message being removed
 *     queue/QUEUEID/      an accepted message: data (the message, written once, never
 *                         changed; its flock is the message's lock), env (the envelope,
 *                         envelope.h, replaced whole by rename), env.new (a replacement
 *                         being written)
 *
 * A message is in the queue exactly when queue/QUEUEID exists, and it gets there by one
 * rename of its directory from tmp/, after its data, its envelope and the directory
 * itself were fsync'd: a crash at any point leaves nothing in the queue or the whole
 * message.  Leftovers in tmp/ are removed by spool_cleanup().
 *
 * Every file and directory is opened relative to the spool's descriptors, never through
 * a symbolic link, and must belong to the spool's owner: root (local delivery) can use
 * this API on a directory the spool user controls.  Nothing here logs; errors are
 * strings owned by the object (struct spool, spool_new, spool_msg) until its next call,
 * or constants.  Functions return one of enum spool_result. */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "spool/envelope.h"

#define SPOOL_ID_LEN ENVELOPE_ID_LEN

enum spool_result {
	SPOOL_OK = 0,
	SPOOL_ERROR = -1,     /* any other failure (the text says which) */
	SPOOL_FULL = -2,      /* no space left, quota or file size limit: 452 4.3.1 */
	SPOOL_TOOBIG = -3,    /* the message is over the size given to spool_new_begin() */
	SPOOL_LOCKED = -4,    /* another process holds the message (past the timeout) */
	SPOOL_GONE = -5,      /* no such message in the queue (any more) */
};

struct spool;
struct spool_new;
struct spool_msg;
struct spool_iter;

/* spool_open() flags */
#define SPOOL_OPEN_CREATE 0x1u   /* make tmp/ and queue/ if missing (spool_dir must exist) */

/* Open the spool at path, whose directories must belong to owner (the spool user's uid)
 * and allow no access to group or others.  -1 with *error_r (a constant naming the
 * check that failed; errno tells a system error). */
int spool_open(const char *path, uid_t owner, unsigned flags, struct spool **sp_r,
	       const char **error_r);
void spool_close(struct spool **sp);

/* ---- the accept path (the SMTP session, as the spool user) ---- */

/* Reserve a queue id and create tmp/QUEUEID/data, locked.  size_max: the largest message
 * the writes may add up to (0: no limit). */
int spool_new_begin(struct spool *sp, uint64_t size_max, struct spool_new **new_r,
		    const char **error_r);
const char *spool_new_id(const struct spool_new *n);
/* Message bytes so far. */
uint64_t spool_new_size(const struct spool_new *n);
/* Append message bytes (buffered: an error may belong to earlier bytes).  SPOOL_FULL,
 * SPOOL_TOOBIG or SPOOL_ERROR leave the message to be aborted: later writes and the
 * commit fail the same way. */
int spool_new_write(struct spool_new *n, const void *buf, size_t len, const char **error_r);
/* Make the message durable and visible: flush and fdatasync the data, write and
 * fdatasync the envelope (env's id, nonce and size are set here, and arrival if 0;
 * recipients must be there), fsync the message's directory, rename it into queue/,
 * fsync queue/.  Only after SPOOL_OK may the session answer 250.  *n is freed whatever
 * the result (an error text belongs to the spool then); on failure nothing is left in the queue (the caller answers 452 4.3.1 for
 * SPOOL_FULL, 451 4.3.0 otherwise).  With msg_r not NULL the message comes back opened
 * and still locked (for the delivery right after acceptance); else it is unlocked. */
int spool_new_commit(struct spool_new **n, struct envelope *env, struct spool_msg **msg_r,
		     const char **error_r);
/* Remove the partial message (the client went away, the data was refused). */
void spool_new_abort(struct spool_new **n);

/* ---- one queued message (queue runners, local delivery) ---- */

/* Open queue/id and lock it: flock on its data file, tried for at most lock_timeout_ms
 * (0: once), then SPOOL_LOCKED.  SPOOL_GONE if it is not in the queue (or left it while
 * we waited).  The envelope is read and parsed (a broken one: SPOOL_ERROR, and the
 * message stays as it is, for an administrator). */
int spool_msg_open(struct spool *sp, const char *id, unsigned lock_timeout_ms,
		   struct spool_msg **msg_r, const char **error_r);
const char *spool_msg_id(const struct spool_msg *m);
/* The envelope, to read and change; spool_msg_update() writes the changes. */
struct envelope *spool_msg_env(struct spool_msg *m);
/* The message's bytes, read-only (pread it: the offset is shared with the lock's fd). */
int spool_msg_data_fd(const struct spool_msg *m);
/* Write the envelope as it is now, atomically: env.new, fdatasync, rename over env,
 * fsync the directory.  A crash at any point leaves the old envelope or the new one.
 * The file's mtime becomes envelope_next_due() when that is in the future (a queue run
 * skips the message on a stat alone until then). */
int spool_msg_update(struct spool_msg *m, const char **error_r);
/* Begin a delivery attempt for recipients idx[0..n): envelope_rcpt_attempt() on each,
 * then spool_msg_update().  Call it before any byte reaches a mailbox or a remote
 * server, so that after a crash the recipients are found inflight. */
int spool_msg_attempt(struct spool_msg *m, const size_t *idx, size_t n, int64_t now,
		      const char **error_r);
/* Take the message out of the queue (every recipient must be done: SPOOL_ERROR
 * otherwise): rename its directory to tmp/QUEUEID.del, fsync queue/, delete it.  *m is
 * closed and freed whatever the result. */
int spool_msg_remove(struct spool_msg **m, const char **error_r);
/* The same without the fsync of queue/: for a caller whose last durable envelope makes
 * a second run harmless (local delivery: a power loss that undoes the rename brings back
 * the message with its attempt recorded, and the next run finds every copy by its token
 * and removes it), so the removal costs no flush of its own. */
int spool_msg_remove_unsynced(struct spool_msg **m, const char **error_r);
/* Unlock and free. */
void spool_msg_close(struct spool_msg **m);

/* ---- listing the queue (-bp) and queue runs (-q) ---- */

#define SPOOL_ITER_DUE 0x1u   /* only messages that need a runner at time now */

/* The queue's ids, oldest first (at most SPOOL_SCAN_MAX; spool_iter_truncated()).  No
 * message is locked or changed; an envelope may change between the listing and a
 * spool_msg_open(). */
int spool_iter_begin(struct spool *sp, unsigned flags, int64_t now, struct spool_iter **it_r,
		     const char **error_r);
/* The next message: 1 with *id_r and *env_r (the envelope, valid until the next call),
 * or 1 with *env_r NULL and *error_r for a message whose envelope cannot be read (listed,
 * never deleted); 0 at the end.  Messages that leave the queue meanwhile are skipped,
 * and with SPOOL_ITER_DUE those not due. */
int spool_iter_next(struct spool_iter *it, const char **id_r, const struct envelope **env_r,
		    const char **error_r);
bool spool_iter_truncated(const struct spool_iter *it);
void spool_iter_end(struct spool_iter **it);

/* ---- leftovers of crashes ---- */

struct spool_cleanup_stats {
	unsigned removed;     /* entries of tmp/ deleted */
	unsigned locked;      /* kept: someone holds them (a session receiving) */
	unsigned young;       /* kept: younger than min_age_s */
	unsigned foreign;     /* kept: not ours (a name or a file we did not make) */
};
/* Delete what crashes left in tmp/: a message being received whose writer is gone (not
 * locked, and older than min_age_s: SPOOL_TMP_STALE_S), a message being removed
 * (QUEUEID.del, not locked, any age).  Never touches queue/. */
int spool_cleanup(struct spool *sp, int64_t now, int64_t min_age_s,
		  struct spool_cleanup_stats *st_r, const char **error_r);

/* Tests: the hook is called at each numbered point below; a nonzero return is taken as
 * the errno of a failure at that point (an injected full disk: ENOSPC).  The crash tests
 * _exit() in it instead. */
enum spool_hook_point {
	SPOOL_HOOK_BEGIN_DIR = 1,     /* tmp/ID made, no data file yet */
	SPOOL_HOOK_BEGIN_DATA,        /* data created and locked */
	SPOOL_HOOK_WRITE,             /* before each write(2) of message bytes */
	SPOOL_HOOK_COMMIT_DATA_SYNC,  /* all bytes written, before fdatasync(data) */
	SPOOL_HOOK_COMMIT_ENV_WRITE,  /* before the envelope is written */
	SPOOL_HOOK_COMMIT_ENV_SYNC,   /* envelope written, before its fdatasync */
	SPOOL_HOOK_COMMIT_DIR_SYNC,   /* before fsync(tmp/ID) */
	SPOOL_HOOK_COMMIT_RENAME,     /* before the rename into queue/ */
	SPOOL_HOOK_COMMIT_QUEUE_SYNC, /* renamed, before fsync(queue/) */
	SPOOL_HOOK_COMMIT_DONE,       /* durable: just before SPOOL_OK (the 250) */
	SPOOL_HOOK_UPDATE_WRITE,      /* before env.new is written */
	SPOOL_HOOK_UPDATE_SYNC,       /* env.new written, before its fdatasync */
	SPOOL_HOOK_UPDATE_RENAME,     /* before the rename over env */
	SPOOL_HOOK_UPDATE_DIR_SYNC,   /* renamed, before fsync of the directory */
	SPOOL_HOOK_REMOVE_RENAME,     /* before queue/ID is renamed to tmp/ID.del */
	SPOOL_HOOK_REMOVE_SYNC,       /* renamed, before fsync(queue/) */
	SPOOL_HOOK_REMOVE_DELETE,     /* before the files of tmp/ID.del are deleted */
	SPOOL_HOOK_COUNT
};
extern int (*spool_test_hook)(int point);

#endif
