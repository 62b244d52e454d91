/* Mail storage: one API for every daemon (ipop3d now, imapd and smtp-submit's local
 * delivery next) over two backends behind one table of operations: Maildir++ (maildir.c)
 * and mbox (mbox.c).  Runs as the mail user, never as root.
 *
 * A storage is a user's set of folders; INBOX always exists.  Maildir++: INBOX is the
 * Maildir, folder "Sent" is its subdirectory ".Sent".  mbox: INBOX is the spool file
 * (/var/mail/USER), folder "Sent" is ~/mail/Sent.
 *
 * Folder names (what imapd shows, after its own wire decoding): UTF-8 (mail/mutf7.h's
 * rules: valid, no control characters), "/" between levels ("Work/Project"), at most
 * STORAGE_NAME_MAX bytes and STORAGE_NAME_DEPTH levels (plimits.h); no empty level ("/"
 * at the start or end, "//"), no level starting with "."; the first level is not
 * "INBOX" in any case (INBOX has no sub-folders); Maildir++ refuses "." anywhere (it
 * separates levels on disk, as with Dovecot and Courier), mbox a level ending in
 * ".lock" (a dotlock beside a folder is not a folder).  On disk the name is modified
 * UTF-7 (RFC 3501 5.1.3, as Dovecot and Courier keep it): Maildir++ ".Work.Project" in
 * the Maildir ("收件箱/工作" is ".&ZTZO9nux-.&XeVPXA-"), mbox ~/mail/Work/Project (a
 * directory per level); each must fit NAME_MAX.  An ASCII name without "&" is the same
 * on disk ("Sent" is ".Sent"), so existing folders keep working; an old folder whose
 * disk name does not decode (a bare "&", a level starting with ".") is not listed.
 * Hierarchy: Maildir++ parents are implied (".Work.Project" alone lists "Work" as
 * NOSELECT) and any name can hold mail; mbox: a parent is a directory, which cannot
 * hold mail (NOSELECT), and a folder holding mail cannot get sub-folders.
 *
 * A mailbox is an open folder.  Its messages are the records of its index (index/index.h):
 * UIDs, UIDVALIDITY, UIDNEXT, flags, keywords, MODSEQ, sizes.  mailbox_sync() brings the
 * index up to date with the folder (new mail from an MTA, changes by mutt or another
 * session) and reports what changed since the last report (below).
 *
 * Positions: mailbox_count()/mailbox_get(i) are the index as it is NOW, and every call
 * that locks the index moves it on (mailbox_sync, mailbox_set_flags, mailbox_expunge,
 * saving, copy/move, mailbox_cache_set, a cache fill by mailbox_msg_parse, keyword
 * creation, and a read that finds a message moved by another program): another
 * session's expunge read by such a call removes its record at once.  So a position is
 * valid only until the next such call.  What IS stable: a UID, and the reports.  imapd
 * keeps its own UID array (its sequence numbers), starts it from mailbox_get() right
 * after mailbox_open(), changes it only by applying mailbox_sync() reports, and looks
 * messages up with mailbox_find(uid).  ipop3d (no concurrent view) uses positions.
 *
 * Errors: functions return 0 or -1 and set *error_r to a string owned by the object
 * (valid until its next call) or a constant. */
#ifndef POSTERN_STORAGE_H
#define POSTERN_STORAGE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "base/plimits.h"
#include "index/index.h"

struct mail_storage;
struct mailbox;
struct mail_reader;
struct mail_save;

/* mail_location: NULL/"" = detect (~/Maildir if it is a directory, else
 * /var/mail/<user>); else "maildir:PATH" or "mbox:PATH", where "~" at the start is the
 * home directory and "%u" is the user name.  0 or -1. */
int storage_locate(const char *mail_location, const char *user, const char *home,
		   struct mail_storage **r, const char **error_r);
/* "maildir" or "mbox", and the INBOX path (for tests and logs). */
const char *storage_kind(const struct mail_storage *st);
const char *storage_inbox_path(const struct mail_storage *st);
void storage_free(struct mail_storage **st);

/* Folder flags (IMAP LIST attributes). */
#define STORAGE_FOLDER_NOSELECT   0x001 /* \Noselect: an implied parent, an mbox directory */
#define STORAGE_FOLDER_CHILDREN   0x002 /* \HasChildren */
#define STORAGE_FOLDER_NOCHILDREN 0x004 /* \HasNoChildren */
#define STORAGE_FOLDER_DRAFTS     0x010 /* special use (RFC 6154), by name */
#define STORAGE_FOLDER_SENT       0x020
#define STORAGE_FOLDER_TRASH      0x040
#define STORAGE_FOLDER_JUNK       0x080
#define STORAGE_FOLDER_ARCHIVE    0x100
#define STORAGE_FOLDER_NONEXISTENT 0x200 /* an implied Maildir++ parent: no folder itself */
#define STORAGE_FOLDER_NOINFERIORS 0x400 /* \Noinferiors: an mbox file (holds mail only) */
#define STORAGE_FOLDER_SPECIAL (STORAGE_FOLDER_DRAFTS | STORAGE_FOLDER_SENT | \
	STORAGE_FOLDER_TRASH | STORAGE_FOLDER_JUNK | STORAGE_FOLDER_ARCHIVE)

/* Every folder other than INBOX, parents before children (sorted by bytes), with its
 * flags; implied parents are listed (NOSELECT).  At most STORAGE_FOLDERS_MAX (else -1).
 * 0 or -1. */
int storage_folder_list(struct mail_storage *st,
			void (*cb)(void *ctx, const char *name, unsigned flags), void *ctx,
			const char **error_r);
/* RFC 3501 CREATE: parents are made as needed (mbox: directories; Maildir++: implied).
 * "folder exists" if it does (mbox: also a directory of that name). */
int storage_folder_create(struct mail_storage *st, const char *name, const char **error_r);
/* CREATE "name/" (RFC 3501 6.3.3: a level to hold sub-folders): mbox: a directory
 * (\Noselect; its parents too); Maildir++ needs no such declaration: storage_folder_create. */
int storage_folder_create_parent(struct mail_storage *st, const char *name,
				 const char **error_r);
/* CREATE name (USE (\Drafts)) (RFC 6154 3): create the folder and record its use (one
 * STORAGE_FOLDER_DRAFTS..ARCHIVE bit) in the special-use records (folder.c), which then
 * win over the by-name uses.  -2 (nothing created) when the use is refused: not one of
 * the five, or an existing folder has it already; -1 other errors.  Renaming or deleting
 * the folder moves or drops its record.  0, -1 or -2. */
int storage_folder_create_special(struct mail_storage *st, const char *name, unsigned use,
				  const char **error_r);
/* "\Drafts" (any case) ... to its STORAGE_FOLDER_* bit; 0 if not one of the five. */
unsigned storage_special_flag(const char *attr);
/* The special-use records file's parser (exposed for tests and the fuzz target): cb for
 * each valid record (a known use, a valid name, the first for its use and for its
 * name); returns how many. */
size_t storage_special_parse(bool maildir, const char *buf, size_t len,
			     void (*cb)(void *ctx, const char *name, unsigned use), void *ctx);
/* RFC 3501 RENAME: the inferiors follow (Maildir++: ".From.x" -> ".To.x", one rename
 * each, not atomic as a whole: a crash halfway leaves some under the old name, both
 * trees valid; mbox: one rename of the file or directory, with the indexes).  Refused
 * if "to" or any name in it exists, or "to" is inside "from".  INBOX is not renamed
 * here: imapd's RENAME INBOX creates the target and mailbox_move()s every message (RFC
 * 3501: INBOX stays, empty). */
int storage_folder_rename(struct mail_storage *st, const char *from, const char *to,
			  const char **error_r);
/* RFC 3501 DELETE: Maildir++: the folder's mail and directory go, its children stay
 * (the name lists as an implied NOSELECT parent then); deleting a name that is only an
 * implied parent is "no such folder".  mbox: a folder file goes with its index; a
 * directory only when empty ("folder has sub-folders" otherwise). */
int storage_folder_delete(struct mail_storage *st, const char *name, const char **error_r);
/* Is name a valid folder name for this store (above)?  storage_name_check gives the
 * reason. */
bool storage_name_ok(const struct mail_storage *st, const char *name);
int storage_name_check(bool maildir, const char *name, const char **error_r);
/* The mapping (exposed for the fuzz target): name -> disk (Maildir++: the directory
 * entry ".A.B"; mbox: the path "A/B" below ~/mail), and disk -> name (which is checked:
 * a hostile directory name gives -1, never a name that maps elsewhere).  0 or -1. */
int storage_name_to_disk(bool maildir, const char *name, char *out, size_t size,
			 const char **error_r);
int storage_name_from_disk(bool maildir, const char *disk, size_t len, char *out,
			   size_t size, const char **error_r);

/* SPECIAL-USE (RFC 6154): "\Drafts", "\Sent", "\Trash", "\Junk", "\Archive" for
 * the folders named exactly Drafts, Sent, Trash, Junk, Archive; else NULL (the listing's
 * flags also hold the uses chosen by storage_folder_create_special). */
const char *storage_special_use(const char *name);
/* Create whichever of those five is missing (and subscribe it): imapd calls it at
 * login, so they exist from the first one.  0 or -1. */
int storage_special_create(struct mail_storage *st, const char **error_r);

/* Subscriptions (IMAP LSUB, LIST (SUBSCRIBED)): Maildir: "subscriptions" in the Maildir;
 * mbox: ~/mail/.subscriptions.  Written whole (temporary file, fsync, rename) in
 * Dovecot's format ("V\t2", an empty line, one UTF-8 name a line with a tab between
 * levels), at most STORAGE_SUBS_MAX bytes; read also in the older one-name-a-line form
 * (modified UTF-7, "." or "/" between levels as the store's disk names).  Names need
 * not exist (RFC 3501 SUBSCRIBE); "INBOX" is allowed; invalid lines are dropped. */
int storage_subscriptions_list(struct mail_storage *st,
			       void (*cb)(void *ctx, const char *name), void *ctx,
			       const char **error_r);
int storage_subscriptions_set(struct mail_storage *st, const char *name, bool subscribed,
			      const char **error_r);

/* Open a folder ("INBOX", exactly so: imapd maps any case of it, RFC 3501 5.1; or a
 * folder name) and sync it once.  A missing INBOX is an empty folder.  A NOSELECT name
 * gives -1.  0 or -1. */
int mailbox_open(struct mail_storage *st, const char *name, struct mailbox **r,
		 const char **error_r);
void mailbox_close(struct mailbox **box);

/* Bring the index up to date with the folder, and report (ch, may be NULL; free with
 * index_changes_free) what changed since the previous report (or since mailbox_open),
 * then start a new one.  Every change the mailbox learnt meanwhile is in it, from
 * whichever call learnt it (every lock reads other sessions' commits: see Positions
 * above), so nothing is lost when a write comes between two syncs.  The lists are sorted
 * UIDs, and applied in this order they turn the caller's UID list of the last report
 * into the index as it is now:
 *   expunged  UIDs the caller was told of that are gone, by anyone, this mailbox's own
 *             mailbox_expunge/mailbox_move included (imapd sends every EXPUNGE from
 *             these reports, never from its own command): apply in any order, each
 *             removes one UID; a message that was added and expunged before it was
 *             reported is in no list
 *   added     new UIDs, all above every UID the caller knows, by anyone, this
 *             mailbox's own saves and copies into it included (imapd: EXISTS)
 *   changed   UIDs the caller knows (not in added) whose record changed: flags and
 *             keywords set by other sessions or programs.  NOT this mailbox's own
 *             mailbox_set_flags (imapd answers its own STORE itself, or not with
 *             .SILENT), unless another session changed the message again after it.  It
 *             may name a message whose flags are what the caller last saw (mbox: an
 *             expunge rewrites the file and moves every later message; Maildir: a file
 *             moved from new/ to cur/): compare if repeating a FETCH matters.
 *   new_keywords  keyword names were added (imapd: FLAGS again).
 * If mailbox_hdr()->uidvalidity differs from the last report's (the index was rebuilt,
 * or kept in memory after a write failed), the lists are empty and mean nothing: every
 * UID the caller holds is void (imapd ends the session).  On -1, nothing is reported
 * and nothing is lost: the next sync reports it.  Opening a folder that has not changed
 * reads neither its messages nor its directory entries. */
int mailbox_sync(struct mailbox *box, struct index_changes *ch, const char **error_r);
/* A descriptor that becomes readable when the folder or its index may have changed
 * (inotify); read it empty with mailbox_notify_clear(), then mailbox_sync().  -1 if
 * none could be made. */
int mailbox_notify_fd(struct mailbox *box);
void mailbox_notify_clear(struct mailbox *box);

size_t mailbox_count(const struct mailbox *box);
const struct index_rec *mailbox_get(const struct mailbox *box, size_t i);
const struct index_rec *mailbox_find(const struct mailbox *box, uint32_t uid,
				     size_t *pos_r);
const struct index_hdr *mailbox_hdr(const struct mailbox *box);
/* The expunges the index remembers (index.h index_expunges(): UID and MODSEQ, every one
 * above *floor_r), for IMAP QRESYNC; valid until the next sync. */
const struct index_expunge *mailbox_expunges(const struct mailbox *box, size_t *n_r,
					     uint64_t *floor_r);
/* The POP3 UIDL of message i (unchanged from before the index: Maildir: the base name,
 * or 32 hex digits of its SHA-256; mbox: 32 hex digits of the SHA-256 of the From line
 * and header, "-N" for the Nth identical one). */
void mailbox_pop3_uidl(const struct mailbox *box, size_t i,
		       char uidl_r[POP3_UIDL_MAX + 1]);

/* Read a message's raw bytes (as stored: LF or CRLF; mbox without the From line).
 * mbox: every chunk is read under the fcntl read lock, after checking that the message
 * is still where the index says (a rewrite by mutt gives an error, never wrong bytes). */
int mailbox_msg_open(struct mailbox *box, uint32_t uid, struct mail_reader **r,
		     const char **error_r);
/* >0 bytes, 0 end of message, -1 error (*error_r set). */
ssize_t mail_reader_read(struct mail_reader *r, void *buf, size_t n, const char **error_r);
void mail_reader_close(struct mail_reader **r);

/* Set a message's flags (INDEX_FLAG_*, RECENT excluded: it is kept as the record has
 * it) and keywords. */
int mailbox_set_flags(struct mailbox *box, uint32_t uid, uint32_t flags,
		      uint32_t keywords, const char **error_r);
/* Many flag changes under one lock and one index commit (IMAP STORE on a range: one
 * fdatasync, not one per message).  Each change is applied to the message as it is under
 * the lock, so a concurrent change by another session to other flags is kept. */
enum mailbox_flag_mode { MAILBOX_FLAGS_SET, MAILBOX_FLAGS_ADD, MAILBOX_FLAGS_REMOVE };
struct mailbox_flag_change {
	uint32_t uid;
	enum mailbox_flag_mode mode;
	uint32_t flags;             /* INDEX_FLAG_* (RECENT ignored) */
	uint32_t keywords;
	uint64_t unchangedsince;    /* RFC 7162: skip if its MODSEQ is higher (UINT64_MAX:
				       no condition) */
	/* results */
	bool modified;              /* skipped for unchangedsince */
	bool gone;                  /* skipped: expunged */
};
/* 0 (each change applied, or skipped as its results say), or -1: nothing of it is
 * committed to the index (a Maildir rename already done shows at the next scan). */
int mailbox_set_flags_many(struct mailbox *box, struct mailbox_flag_change *ch, size_t n,
			   const char **error_r);
/* \Recent (RFC 3501 2.3.2): a message is recent in the one session that first sees it.
 * Every message the storage adds (a delivery found by a scan, a save, a copy) has
 * INDEX_FLAG_RECENT in its record; it stays until a session claims it.  Under the
 * index lock (after a sync), clear it on every record that has it with a UID <= max_uid
 * (the caller's view: a message it was not told of yet is left for the next claim) and
 * give those UIDs (*uids_r, sorted, free() it; NULL when none).  Two sessions or two
 * processes never both get one UID: the lock orders them, the second finds the flag
 * gone.  The clearing is committed without a new MODSEQ (index_update_quiet: it is
 * session state, not a flag change other sessions should hear of).  Read-only users
 * (EXAMINE, STATUS, ipop3d) read the flag and never claim.  0, or -1 with nothing
 * claimed. */
int mailbox_claim_recent(struct mailbox *box, uint32_t max_uid, uint32_t **uids_r,
			 size_t *n_r, const char **error_r);
/* Keyword names (index.h: index_keyword_*): the bit of name; with create, a new name is
 * added (and committed) if missing.  1 found or added, 0 not found (without create), -1
 * error: an invalid name, or the table is full (*error_r == INDEX_KEYWORDS_FULL, see
 * plimits.h INDEX_MAX_KEYWORDS).  Other sessions see a new name at their next sync
 * (index_changes.new_keywords). */
int mailbox_keyword_lookup(struct mailbox *box, const char *name, bool create,
			   unsigned *bit_r, const char **error_r);
/* The name of bit, or NULL; the number of names (bits 0..count-1). */
const char *mailbox_keyword_name(const struct mailbox *box, unsigned bit);
unsigned mailbox_keyword_count(const struct mailbox *box);
/* Remove these messages for good; each is an expunge every other session sees.  Messages
 * already gone are fine.  0, or -1 with nothing lost. */
int mailbox_expunge(struct mailbox *box, const uint32_t *uids, size_t n,
		    const char **error_r);

/* Save a message (IMAP APPEND, local delivery): begin, write its bytes (LF or CRLF),
 * finish.  It is written and fsync'd before it becomes visible (Maildir: tmp/ then
 * rename; mbox: appended under the locks), with its internal date (0: now).  *uid_r
 * (may be NULL) gets its UID. */
int mailbox_save_begin(struct mailbox *box, int64_t date, uint32_t flags,
		       struct mail_save **r, const char **error_r);
int mail_save_write(struct mail_save *s, const void *buf, size_t n, const char **error_r);
int mail_save_finish(struct mail_save **s, uint32_t *uid_r, const char **error_r);
void mail_save_abort(struct mail_save **s);

/* Copy a message into another open mailbox (flags kept).  Move: Maildir renames the file
 * into the other folder (one atomic step: a crash leaves it in exactly one of the two);
 * mbox (and a Maildir name already taken in dst) copies then expunges (a crash between
 * the two leaves it in both, never in neither).  *uid_r: its UID in dst (0 if another
 * client expunged it there before we could learn it). */
int mailbox_copy(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *uid_r,
		 const char **error_r);
int mailbox_move(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *uid_r,
		 const char **error_r);

/* A batch: several messages saved into one mailbox that become visible together, or
 * none of them (RFC 3501 6.4.7 COPY: "restore the destination mailbox to its state
 * before the COPY attempt"; RFC 3502 MULTIAPPEND).  Each message is written in full and
 * synced first (Maildir: into tmp/, its descriptor closed when added, so a batch of any
 * size holds no descriptor per message; mbox: one temporary file for the whole batch);
 * a full disk or any other error while writing leaves the folder as it was.  The commit
 * then takes the index lock once: Maildir renames every message into new/ or cur/ and
 * renames them back if one rename fails; mbox appends them all under its locks and cuts
 * the file back to its old size if any write fails (a full disk).  Then one scan and one
 * index commit give all their UIDs.  A process killed while writing leaves only
 * temporary files (Maildir tmp/, mbox an unnamed file); killed during a Maildir commit,
 * some of the messages may be in the folder, each of them whole.
 *
 * One message at a time: mail_batch_save_begin(), mail_save_write()..., mail_batch_add()
 * (or mail_save_abort()).  commit: uids_r gets mail_batch_count() UIDs in the order
 * added; the batch is freed whether it succeeds or not (on -1 nothing was added to the
 * folder). */
struct mail_batch;
struct mail_batch *mailbox_batch_begin(struct mailbox *box);
int mail_batch_save_begin(struct mail_batch *b, int64_t date, uint32_t flags,
			  struct mail_save **r, const char **error_r);
int mail_batch_add(struct mail_batch *b, struct mail_save **s, const char **error_r);
size_t mail_batch_count(const struct mail_batch *b);
int mail_batch_commit(struct mail_batch **b, uint32_t *uids_r, const char **error_r);
void mail_batch_abort(struct mail_batch **b);
/* COPY or MOVE of n messages of src into dst; uids_r (n entries) their new UIDs (0: moved
 * and gone from dst already).  COPY, and MOVE where the backend cannot move a message in
 * one step (mbox): one batch (above), all of them or none; move: the originals are
 * expunged after the commit; if that fails, the copies are expunged again.  MOVE where
 * it can (Maildir, mailbox_move(): a rename): message by message, each moved or left
 * alone and never in both folders (RFC 6851 3.3), needing no room on a full disk; -1 at
 * the first failure with the ones before it moved.  Keywords go along by name. */
int mailbox_copy_many(struct mailbox *src, const uint32_t *uids, size_t n,
		      struct mailbox *dst, bool move, uint32_t *uids_r, const char **error_r);

/* The FETCH/SEARCH cache (index_cache_field): what the daemon computed once from the
 * message (an envelope, a body structure, header fields), shared with every session. */
const void *mailbox_cache_get(const struct mailbox *box, uint32_t uid, uint32_t field,
			      size_t *len_r);
int mailbox_cache_set(struct mailbox *box, uint32_t uid, uint32_t field, const void *data,
		      size_t len, const char **error_r);

/* Batching: between begin and end, cache writes (mailbox_cache_set and the fills of
 * mailbox_msg_parse) wait in memory (mailbox_cache_get and the parse calls see them)
 * and go to the index in one transaction (one lock) per STORAGE_CACHE_BATCH entries or
 * STORAGE_CACHE_BATCH_BYTES or STORAGE_CACHE_BATCH_MS (plimits.h), and at end.  A
 * transaction of cache entries only is committed without fdatasync (index.h: a crash
 * may lose it, nothing else).  imapd: begin before a FETCH or SEARCH that reads many
 * messages, end after it.  end returns -1 if a write failed (the entries are dropped:
 * they are only a cache; the command's result stands).  mailbox_close ends an open
 * batch.  Nested begins count: only the outermost end writes. */
void mailbox_cache_batch_begin(struct mailbox *box);
int mailbox_cache_batch_end(struct mailbox *box, const char **error_r);

/* A message's MIME structure and envelope fields (mail/mime.h), from the cache, or
 * parsed from the message (as the reader gives it: stored line ends; mbox without its
 * From line, ">From " lines as stored) and then cached for every session.  Both are
 * parsed in one pass and both cached whenever one is missing.  An entry that does not
 * read back, or does not fit the message's sizes, is not trusted: the message is parsed
 * again and the entry replaced.  A failed cache write (read-only folder, full disk, an
 * entry over INDEX_CACHE_ENTRY_MAX) changes nothing else: the result is returned all the
 * same.  Free with mime_part_free() / mime_envelope_free().  0 or -1. */
struct mime_part;
struct mail_envelope_fields;
int mailbox_msg_parts(struct mailbox *box, uint32_t uid, struct mime_part **r,
		      const char **error_r);
int mailbox_msg_envelope(struct mailbox *box, uint32_t uid,
			 struct mail_envelope_fields **r, const char **error_r);
/* Both at once (either pointer may be NULL). */
int mailbox_msg_parse(struct mailbox *box, uint32_t uid, struct mime_part **parts_r,
		      struct mail_envelope_fields **env_r, const char **error_r);

/* Counters for tests: what a sync cost, and what the message cache saved. */
struct storage_stats {
	uint64_t dir_scans;      /* Maildir: directories listed; mbox: full parses */
	uint64_t files_read;     /* message files opened to compute a size */
	uint64_t entries_seen;   /* directory entries looked at */
	uint64_t appends_parsed; /* mbox: syncs that parsed only what was appended */
	uint64_t msgs_parsed;    /* messages read and parsed for their MIME structure */
	uint64_t cache_hits;     /* structures or envelopes taken from the cache */
	uint64_t cache_bad;      /* cache entries refused (corrupt, not this message) */
	uint64_t cache_fills;    /* cache writes that were committed (messages) */
	uint64_t cache_commits;  /* index transactions they took */
	uint64_t compactions_resumed; /* mbox: interrupted compactions finished */
};
const struct storage_stats *mailbox_stats(const struct mailbox *box);

#endif
