/* Mail store: one mailbox (INBOX) as a snapshot list of messages, with two backends,
 * Maildir (maildir.c) and mbox (mbox.c).  Used by ipop3d now, imapd and smtp-submit's
 * local delivery later.  Runs as the mail user, never as root.
 *
 * Rules every backend keeps: opening never changes or deletes anything; only
 * mstore_commit() deletes, and only the messages marked deleted; a crash or a full disk at
 * any point loses no message that was not marked. */
#ifndef POSTERN_MSTORE_H
#define POSTERN_MSTORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "base/plimits.h"

enum mstore_kind { MSTORE_MAILDIR, MSTORE_MBOX };

struct mstore_loc {
	enum mstore_kind kind;
	char path[4096];         /* the Maildir directory, or the mbox file */
};

/* mail_location: NULL/"" = detect (~/Maildir if it is a directory, else
 * /var/mail/<user>); else "maildir:PATH" or "mbox:PATH", where "~" at the start is the
 * home directory and "%u" is the user name.  0 or -1. */
int mstore_locate(const char *mail_location, const char *user, const char *home,
		  struct mstore_loc *r, const char **error_r);

struct mstore_msg {
	uint64_t size;                  /* octets in CRLF form (what POP3 LIST reports);
	                                   the mbox "From " line is not part of the message */
	char uid[POP3_UIDL_MAX + 1];    /* stable across sessions: printable 0x21..0x7E */
	bool deleted;                   /* marked for deletion by the client */
	/* backend data */
	uint64_t offset;                /* mbox: offset of the message body's first byte
	                                   (after the From line); maildir: unused */
	uint64_t raw_len;               /* bytes on disk */
	char *name;                     /* maildir: file name relative to the Maildir
	                                   ("cur/123.abc:2,S"); mbox: NULL */
};

struct mstore;

/* Take a snapshot of the mailbox (mbox: under dotlock + fcntl lock, released before
 * returning).  A missing mbox file or Maildir is an empty mailbox.  0 or -1. */
int mstore_open(const struct mstore_loc *loc, struct mstore **r, const char **error_r);
size_t mstore_count(const struct mstore *s);
struct mstore_msg *mstore_get(struct mstore *s, size_t i);
/* Read a message's raw bytes (as stored: LF or CRLF line ends; mbox without the From
 * line).  Open, then read in chunks until 0. */
struct mstore_reader;
int mstore_reader_open(struct mstore *s, size_t i, struct mstore_reader **r,
		       const char **error_r);
/* >0 bytes, 0 end of message, -1 error. */
ssize_t mstore_reader_read(struct mstore_reader *r, void *buf, size_t n);
void mstore_reader_close(struct mstore_reader **r);
/* Delete the messages marked deleted (POP3 UPDATE state).  Messages that arrived after
 * the snapshot are kept.  0, or -1 with nothing lost (some deletions may not have
 * happened; the error says so). */
int mstore_commit(struct mstore *s, const char **error_r);
void mstore_close(struct mstore **s);

#endif
