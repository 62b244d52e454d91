/* Every hard limit in postern, named and explained once.
 * (STYLE.md calls this file limits.h.  That name shadows the system's <limits.h>: GCC's
 * own syslimits.h reaches a quote-directory "limits.h" through #include_next, so the file
 * is plimits.h, "postern limits".) */
#ifndef POSTERN_LIMITS_H
#define POSTERN_LIMITS_H

/* RFC 2449 section 4: a POP3 command line is at most 255 octets; STYLE.md allows 512
 * including CRLF so that long user names still fit. */
#define POP3_MAX_CMD_LINE 512
/* RFC 2449 section 4: a POP3 response line is at most 512 octets including CRLF. */
#define POP3_MAX_REPLY_LINE 512
/* Line limits per protocol state (STYLE.md), set with conn_set_line_max() as the state
 * changes.  IMAP (RFC 9051 section 4 sets no limit; RFC 7162 section 4 asks for at least
 * 8192 octets): 8 KiB before login, where only small commands make sense and every byte
 * is an unauthenticated client's; 64 KiB after (long UID sets, SEARCH). */
#define IMAP_MAX_LINE_PRELOGIN 8192
#define IMAP_MAX_LINE 65536
/* SMTP, RFC 5321 section 4.5.3.1: a command line is at most 512 octets with CRLF
 * (4.5.3.1.4), a text line of DATA at most 1000 with CRLF (4.5.3.1.6); an AUTH line
 * 12 KiB (RFC 4954 section 4: 12288 octets for the base64 initial response). */
#define SMTP_MAX_CMD_LINE 512
#define SMTP_MAX_TEXT_LINE 1000
#define SMTP_MAX_AUTH_LINE 12288
/* RFC 5034 section 4: an AUTH line (initial response) may reach 255 octets per the
 * base spec, but clients send larger base64 blobs; 12 KiB as SMTP (RFC 4954). */
#define SASL_MAX_LINE 12288
/* One SASL response as the client sends it: the base64 text of a SASL_MAX_LINE line
 * without its CRLF (common/sasl refuses longer ones whatever the daemon's line reader
 * allowed), and its decoded size. */
#define SASL_MAX_RESPONSE (SASL_MAX_LINE - 2)
#define SASL_MAX_DECODED (SASL_MAX_RESPONSE / 4 * 3)
/* A server challenge before base64: LOGIN's prompts are 9 octets; a SCRAM server-first
 * message (RFC 5802: nonce, salt, iteration count) stays well below this. */
#define SASL_MAX_CHALLENGE 512
/* Longest user name and password that we pass to PAM. */
#define AUTH_MAX_USER 256
#define AUTH_MAX_PASS 1024
/* STYLE.md: 20 bad commands in a row closes the connection. */
#define MAX_BAD_COMMANDS 20
/* RFC 1939 section 3: autologout timer at least 10 minutes after login. */
#define POP3_IDLE_TIMEOUT_DEFAULT 600
/* Before login a client gets less time: it holds a process and a throttle slot. */
#define LOGIN_TIMEOUT_DEFAULT 60
/* Absolute deadlines, against slowloris clients that send one byte just before every idle
 * timeout.  A TLS handshake is one or two round trips and a few KiB: well under a second
 * even on a slow mobile link, so 10 s from its first byte is generous, and one ClientHello
 * dribbled a byte at a time can no longer hold a process for minutes. */
#define TLS_HANDSHAKE_DEADLINE_MS 10000
/* login_deadline (config): seconds from connect to a successful login.  120 s covers a
 * slow handshake, MAX_AUTH_ATTEMPTS tries each with the longest default failure delay
 * (15 s) and a slow PAM backend, and still frees a pre-login process after 2 minutes
 * whatever the client does; login_timeout stays the idle limit inside it. */
#define LOGIN_DEADLINE_DEFAULT 120
/* Pre-login the client may try this many logins on one connection. */
#define MAX_AUTH_ATTEMPTS 3
/* Longest wait for PAM's authentication child (yescrypt takes ~0.1 s; an LDAP or RADIUS
 * module may wait on the network): past it the login fails temporarily. */
#define AUTH_PAM_TIMEOUT_MS 30000
/* Longest wait of the session for its MSG_START_SESSION (the monitor sends it at once). */
#define SESSION_START_TIMEOUT_MS 10000
/* RFC 1939 section 7: a unique-id is 1 to 70 characters in 0x21..0x7E. */
#define POP3_UIDL_MAX 70
/* Config file: a line and a value longer than this are errors (libinih's own limit). */
#define CONFIG_MAX_LINE 1024
/* The login throttle's shared table (common/privsep/throttle.c) has fixed regions, so
 * that the file has one size, preallocated: a full disk can never hit it later.
 * Failure counters: an attempt from a new source needs 2 (IPv4) or 3 (IPv6) of them,
 * plus 2 for the user name; live ones are never evicted, so this is how many distinct
 * keys may fail within throttle_window before new sources are refused (fails closed). */
#define THROTTLE_COUNT_SLOTS 16384
/* Trusted devices (user, /24 or /64): one per good login from a new place; when full,
 * a new one is not recorded (its only effect is to skip the user-limit delay). */
#define THROTTLE_TRUST_SLOTS 4096
/* Login attempts in flight (between the check and the outcome, about PAM's time) and
 * connections before login, over all sources: far above any MaxConnections. */
#define THROTTLE_FLIGHT_SLOTS 1024
#define THROTTLE_CONN_SLOTS 2048
/* hosts.allow / hosts.deny, scanned for a rule before libwrap is loaded (wrap.c): a
 * table larger than this, or a line as long as this (libwrap reads lines into 2048
 * bytes and splits longer ones), counts as holding rules, and libwrap reads it. */
#define WRAP_SCAN_TABLE_MAX (1024 * 1024)
#define WRAP_SCAN_LINE_MAX 1024
/* An IPv6 /48 is a site of 256 /56s: it may fail this many times throttle_net_max. */
#define THROTTLE_NET48_FACTOR 4
/* Longest wait for the table's lock (held for a scan of the table, well under 1 ms);
 * past it the attempt is decided from the table read without the lock and slowed to
 * the maximum delay, rather than hang. */
#define THROTTLE_LOCK_TIMEOUT_MS 3000
#define THROTTLE_LOCK_POLL_MS 5
/* Longest an attempt waits for attempts in flight from its source to end (they take
 * PAM's time) before it is refused; a client's own timeout is 30-60 s. */
#define THROTTLE_WAIT_MS 20000
#define THROTTLE_WAIT_POLL_MS 10
/* A connection over its source's cap waits this long for one of the source's others to
 * log in or end (a client that closes and at once reconnects overlaps its own old
 * connection for a moment) before it is refused. */
#define THROTTLE_CONN_WAIT_MS 2000
/* An attempt in flight longer than this is taken for a dead monitor whose pid was
 * reused, and counted as a failure. */
#define THROTTLE_FLIGHT_MAX_S 300
/* A pre-login connection entry older than this is taken for a reused pid and dropped
 * (login_timeout and the pre-login deadlines end a connection long before). */
#define THROTTLE_CONN_MAX_S 3600
/* I/O buffer for relaying and streaming messages. */
#define IO_CHUNK 16384
/* Messages in one mailbox: a hard ceiling so an index cannot grow without bound. */
#define MSTORE_MAX_MESSAGES 1000000
/* Sanitized client strings in log lines are cut here (STYLE.md). */
#define LOG_MAX_FIELD 64
/* The pre-login worker's address space (RLIMIT_AS, common/privsep/sandbox.c): its peak
 * measured through a TLS handshake and a login, times four (docs/architecture.md). */
#define WORKER_MAX_AS (48UL * 1024 * 1024)

/* The mail store (common/storage/: maildir.c, mbox.c). */
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

/* TLS: the private key and the resumable sessions live with the monitor (root), never in
 * the worker (common/privsep/keyop.c, tls.c, tlscache.c). */
/* Longest wait of the worker for the monitor's answer to a key operation or a session
 * lookup; the monitor answers these at once, so past it something is stuck and the
 * handshake fails rather than hang. */
#define TLS_MONITOR_TIMEOUT_MS 5000
/* Private-key operations the monitor does for one connection: one handshake (implicit
 * TLS, or STLS once; renegotiation is off) needs one signature, a resumed one none.  The
 * worker is a signing oracle only this often. */
#define TLS_MAX_KEY_OPS 1
/* Session lookups per connection: one per PSK identity of a ClientHello (clients send
 * one), again after a HelloRetryRequest. */
#define TLS_MAX_SESSION_GETS 2
/* Sessions the worker may hand over for keeping: one ticket per handshake. */
#define TLS_MAX_SESSION_PUTS 1
/* A serialized TLS 1.3 session (i2d_SSL_SESSION: secrets, times, SNI, ALPN; no client
 * certificate) is a few hundred bytes; a longer one is not kept. */
#define TLS_SESSION_MAX 1536
/* The session cache file (state_dir/tls-sessions): this many fixed slots, each holding
 * one session and its header (tlscache.c); a new session may evict an older one. */
#define TLSCACHE_SLOTS 2048
#define TLSCACHE_SLOT_SIZE 1664

#endif
