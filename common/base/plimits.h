/* Every hard limit in postern, named and explained once.
 * (STYLE.md calls this file limits.h.  That name shadows the system's <limits.h>: GCC's
 * own syslimits.h reaches a quote-directory "limits.h" through #include_next, so the file
 * is plimits.h, "postern limits".) */
#ifndef POSTERN_LIMITS_H
#define POSTERN_LIMITS_H

/* RFC 2449 section 4: a POP3 command line is at most 255 octets; STYLE.md allows 512
 * including CRLF so that long user names still fit. */
#define POP3_MAX_CMD_LINE 512
/* RFC 5034 section 4: an AUTH line (initial response) may reach 255 octets per the
 * base spec, but clients send larger base64 blobs; 12 KiB as SMTP (RFC 4954). */
#define SASL_MAX_LINE 12288
/* Longest user name and password that we pass to PAM. */
#define AUTH_MAX_USER 256
#define AUTH_MAX_PASS 1024
/* STYLE.md: 20 bad commands in a row closes the connection. */
#define MAX_BAD_COMMANDS 20
/* RFC 1939 section 3: autologout timer at least 10 minutes after login. */
#define POP3_IDLE_TIMEOUT_DEFAULT 600
/* Before login a client gets less time: it holds a process and a throttle slot. */
#define LOGIN_TIMEOUT_DEFAULT 60
/* Pre-login the client may try this many logins on one connection. */
#define MAX_AUTH_ATTEMPTS 3
/* RFC 1939 section 7: a unique-id is 1 to 70 characters in 0x21..0x7E. */
#define POP3_UIDL_MAX 70
/* Config file: a line and a value longer than this are errors (libinih's own limit). */
#define CONFIG_MAX_LINE 1024
/* Entries kept in the login throttle file; the oldest are dropped past this. */
#define THROTTLE_MAX_ENTRIES 4096
/* Longest wait for the throttle file's lock (held for a read and a small write); past it
 * the login goes on without the throttle, logged, rather than hang. */
#define THROTTLE_LOCK_TIMEOUT_MS 3000
#define THROTTLE_LOCK_POLL_MS 5
/* Size of the throttle file we read at most. */
#define THROTTLE_MAX_FILE (THROTTLE_MAX_ENTRIES * 160)
/* I/O buffer for relaying and streaming messages. */
#define IO_CHUNK 16384
/* Messages in one mailbox: a hard ceiling so an index cannot grow without bound. */
#define MSTORE_MAX_MESSAGES 1000000
/* Sanitized client strings in log lines are cut here (STYLE.md). */
#define LOG_MAX_FIELD 64

/* mstore (common/mstore.c, maildir.c, mbox.c). */
/* mbox dotlock: lockfile_create() retries; liblockfile sleeps 5 s more before each retry
 * (5 + 10 = 15 s in all), like a patient MTA but within a POP3 client's timeout. */
#define MBOX_DOTLOCK_RETRIES 2
/* mbox fcntl lock: how long we retry F_SETLK, and how often. */
#define MBOX_LOCK_TIMEOUT_MS 15000
#define MBOX_LOCK_POLL_MS 50
/* A dotlock older than 5 minutes counts as stale (liblockfile): refresh ours this often
 * while a long compaction runs. */
#define MBOX_DOTLOCK_TOUCH_MS 60000
/* Read size while scanning and compacting an mbox. */
#define MBOX_SCAN_CHUNK 65536
/* mbox compaction: fdatasync() barriers at most (see mbox.c compact()). */
#define MBOX_COMPACT_MAX_SYNCS 1024
/* Maildir size cache ("postern-sizes"): the file is read only up to this size, and a
 * line longer than MAILDIR_CACHE_LINE_MAX is ignored. */
#define MAILDIR_CACHE_MAX_FILE (64 * 1024 * 1024)
#define MAILDIR_CACHE_LINE_MAX 512
/* Maildir base names longer than this are not cached (their size is recomputed). */
#define MAILDIR_CACHE_NAME_MAX 255
/* Maildir: times we list new/ and cur/ again in one session to follow messages that
 * another client renames (flag changes) under us. */
#define MAILDIR_RELIST_MAX 8

/* The folder index (common/index/).  A message's backend key (a Maildir file name, an
 * mbox UIDL) longer than this makes the index file bad: Maildir names are at most 255
 * bytes (NAME_MAX) plus "cur/". */
#define INDEX_KEY_MAX 512
/* Largest index snapshot or log we read: 1,000,000 records of ~150 bytes fit. */
#define INDEX_MAX_FILE (512ULL * 1024 * 1024)
/* The log is folded into a new snapshot when it passes this size and a quarter of the
 * snapshot's (so a flag change costs a small append, and a huge folder is rewritten
 * only after many changes). */
#define INDEX_LOG_COMPACT (256 * 1024)
/* Longest wait for the index write lock (held for a scan and one write), and the poll. */
#define INDEX_LOCK_TIMEOUT_MS 15000
#define INDEX_LOCK_POLL_MS 10
/* A directory or mbox mtime younger than this is not trusted as "unchanged" next time:
 * a change within the same timestamp tick would not move it. */
#define STORAGE_MTIME_SLACK_NS 2000000000ULL
/* One cached item of a message (an envelope, a body structure): larger ones are not
 * cached (they are computed again when needed). */
#define INDEX_CACHE_ENTRY_MAX (64 * 1024)
/* Keywords a folder may define (one bit each in the index record). */
#define INDEX_MAX_KEYWORDS 32

#endif
