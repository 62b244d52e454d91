/* Mail storage: one API for every daemon (ipop3d now, imapd and smtp-submit's local
 * delivery next) over two backends behind one table of operations: Maildir++ (maildir.c)
 * and mbox (mbox.c).  Runs as the mail user, never as root.
 *
 * A storage is a user's set of folders; INBOX always exists.  Maildir++: INBOX is the
 * Maildir, folder "Sent" is its subdirectory ".Sent".  mbox: INBOX is the spool file
 * (/var/mail/USER), folder "Sent" is ~/mail/Sent.  Folder names are 1..STORAGE_NAME_MAX
 * bytes of printable ASCII, no '/', not starting with '.', and "INBOX" is reserved.
 *
 * A mailbox is an open folder.  Its messages are the records of its index (index/index.h):
 * UIDs, UIDVALIDITY, UIDNEXT, flags, keywords, MODSEQ, sizes.  mailbox_sync() brings the
 * index up to date with the folder (new mail from an MTA, changes by mutt or another
 * session) and reports what changed since the last sync; positions (0-based) into the
 * message list are valid until the next sync or change.
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

#define STORAGE_NAME_MAX 48

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

/* Folders other than INBOX, one callback each; then 0, or -1. */
int storage_folder_list(struct mail_storage *st,
			void (*cb)(void *ctx, const char *name), void *ctx,
			const char **error_r);
int storage_folder_create(struct mail_storage *st, const char *name, const char **error_r);
int storage_folder_rename(struct mail_storage *st, const char *from, const char *to,
			  const char **error_r);
int storage_folder_delete(struct mail_storage *st, const char *name, const char **error_r);
bool storage_name_ok(const char *name);

/* Open a folder ("INBOX" or a folder name) and sync it once.  A missing INBOX is an empty
 * folder.  0 or -1. */
int mailbox_open(struct mail_storage *st, const char *name, struct mailbox **r,
		 const char **error_r);
void mailbox_close(struct mailbox **box);

/* Bring the index up to date with the folder; ch (may be NULL) gets the UIDs that were
 * added, expunged or changed since the last sync, by anyone.  Opening a folder that has
 * not changed reads neither its messages nor its directory entries. */
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

/* Set a message's flags (INDEX_FLAG_*, RECENT excluded) and keywords. */
int mailbox_set_flags(struct mailbox *box, uint32_t uid, uint32_t flags,
		      uint32_t keywords, const char **error_r);
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

/* Copy a message into another open mailbox (flags kept); move = copy + expunge. */
int mailbox_copy(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *uid_r,
		 const char **error_r);
int mailbox_move(struct mailbox *src, uint32_t uid, struct mailbox *dst, uint32_t *uid_r,
		 const char **error_r);

/* The FETCH/SEARCH cache (index_cache_field): what the daemon computed once from the
 * message (an envelope, a body structure, header fields), shared with every session. */
const void *mailbox_cache_get(const struct mailbox *box, uint32_t uid, uint32_t field,
			      size_t *len_r);
int mailbox_cache_set(struct mailbox *box, uint32_t uid, uint32_t field, const void *data,
		      size_t len, const char **error_r);

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
	uint64_t cache_fills;    /* cache writes that were committed */
};
const struct storage_stats *mailbox_stats(const struct mailbox *box);

#endif
