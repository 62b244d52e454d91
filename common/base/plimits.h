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
/* MAIL and RCPT with ESMTP parameters may be longer than SMTP_MAX_CMD_LINE; each
 * extension says by how much (common/smtp/smtp_cmd.c checks the line per verb):
 * MAIL: SIZE +26 (RFC 1870 section 3), BODY=BINARYMIME +16 (RFC 3030 section 3, which
 * covers BODY=8BITMIME too), SMTPUTF8 +10 (RFC 6531 section 3.1), AUTH= +500 (RFC 4954
 * section 3), RET= and ENVID= +110 (RFC 3461 section 4.3-4.4: " RET=HDRS" and an ENVID
 * of up to 100 characters).  RCPT: ORCPT +500 and NOTIFY +30 (RFC 3461 section 4.1-4.2:
 * the ORCPT parameter up to 500 characters, " NOTIFY=SUCCESS,FAILURE,DELAY"). */
#define SMTP_MAX_MAIL_LINE (SMTP_MAX_CMD_LINE + 26 + 16 + 10 + 500 + 110)
#define SMTP_MAX_RCPT_LINE (SMTP_MAX_CMD_LINE + 500 + 30)
/* RFC 3461 section 4.4: ENVID "MAY be up to 100 characters"; section 4.2: the whole
 * ORCPT parameter up to 500.  RFC 4954 section 5: AUTH= is a mailbox or "<>", xtext. */
#define SMTP_MAX_ENVID 100
#define SMTP_MAX_ORCPT 500
#define SMTP_MAX_AUTH_PARAM 500
/* RFC 5321 section 4.5.3.1.5: a reply line is at most 512 octets with CRLF: what we
 * write.  What we accept from a peer (the outbound client): 2048, the line_length_limit
 * Postfix's client uses, because real servers exceed 512 in long EHLO AUTH lists and
 * multi-line rejection texts.  A reply may have at most SMTP_MAX_REPLY_LINES lines and
 * SMTP_MAX_REPLY_SIZE bytes (an EHLO reply has ~15; past these limits a peer is hostile). */
#define SMTP_MAX_REPLY_LINE 512
#define SMTP_MAX_REPLY_LINE_PEER 2048
#define SMTP_MAX_REPLY_LINES 100
#define SMTP_MAX_REPLY_SIZE 16384
/* RFC 5321 section 4.4 and 6.3: a Received: header we write.  RFC 5322 section 2.1.1:
 * a line is at most 998 characters, and should be at most 78; a whole field at most
 * this (folded, with its CRLF): from, by, with, id, for and the date with the longest
 * HELO, rDNS name and path we accept fit twice over. */
#define SMTP_MAX_RECEIVED 2048
/* RFC 5321 section 6.3: loop detection by counting Received: fields "SHOULD use a large
 * rejection threshold, normally at least 100 Received entries". */
#define SMTP_MAX_HOPS 100
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
/* smtp-submit's defaults (config keys of the same names): RFC 5321 section 4.5.3.2.7
 * asks a server to wait 5 minutes for the next command; 50 MiB is above what the big
 * providers accept (Gmail 35 MB with encoding), below what a spool should hold per
 * message; 100 recipients per message is RFC 5321 section 4.5.3.1.8's minimum; 10 bad
 * commands end a session (Postfix allows 20: 10 keeps a scanner's visit short);
 * a 1 s pause before the greeting catches the bots that talk first (postscreen's test,
 * which waits 6 s: clients that follow RFC 5321 wait 5 minutes for it); 100 messages and
 * 500 recipients an hour per user is far above a person's sending and far below a
 * spammer's use of a stolen password. */
#define SMTP_IDLE_TIMEOUT_DEFAULT 300
#define SUBMIT_SIZE_LIMIT_DEFAULT (50U * 1024 * 1024)
#define SUBMIT_MAX_RCPTS_DEFAULT 100
#define SUBMIT_MAX_ERRORS_DEFAULT 10
#define SUBMIT_GREET_PAUSE_MS_DEFAULT 1000
#define SUBMIT_RATE_MESSAGES_DEFAULT 100
#define SUBMIT_RATE_RCPTS_DEFAULT 500
/* smtp-submit's session: an absolute deadline per transaction, on top of the idle
 * timeout, against clients that dribble a byte before each timeout (or NOOP forever).
 * It runs from the end of the previous transaction (or the session's start) to the end
 * of the next one: room for a MAIL, SUBMIT_MAX_RCPTS_DEFAULT RCPTs and a
 * SUBMIT_SIZE_LIMIT_DEFAULT message at 30 KB/s (50 MiB / 1800 s), a slow mobile uplink.
 * Past it the session answers 421 4.4.2 and ends. */
#define SMTP_TXN_DEADLINE_S 1800
/* RFC 9051 section 5.4 (and RFC 3501): an IMAP autologout timer of at least 30 minutes;
 * imapd's default when its section does not set idle_timeout. */
#define IMAP_IDLE_TIMEOUT_DEFAULT 1800
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
/* The login cache (common/privsep/logincache.c).  An entry dated more than this in the
 * future is not fresh (a clock set back must not make old entries live longer than the
 * ttl); the ttl itself is capped at a week by config.c (login_cache_ttl): a verification
 * should not outlive the checks it skips by more than that. */
#define LOGINCACHE_CLOCK_SKEW_S 60
/* Longest the root monitor may spend in pam_setcred + pam_open_session, and again in
 * pam_close_session: the session stack runs in the monitor (it must outlive the session),
 * and a module that waits on the network (LDAP, NFS home, systemd-logind) must not hold
 * the connection's processes forever.  Past it SIGALRM ends the monitor; the worker sees
 * the monitor gone and answers a temporary failure. */
#define AUTH_SESSION_TIMEOUT_S 30
/* Longest wait of the session for its MSG_START_SESSION (the monitor sends it at once). */
#define SESSION_START_TIMEOUT_MS 10000
/* smtp-submit: local deliveries the monitor of one connection starts for its session
 * (MSG_DELIVER), each in a root child: at most this many at once (a burst of pipelined
 * messages must not fork a process per message), the rest wait for a free slot; and at
 * most this many wait at once (RFC 5321 sets no limit on messages per connection; a
 * message past it waits in the spool for the next queue run, -q). */
#define DELIVER_MAX_RUNNING 2
#define DELIVER_MAX_WAITING 100
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
/* Expunges the index remembers, as (UID, MODSEQ), for IMAP QRESYNC (RFC 7162 3.2.5.1):
 * a client that resyncs from a MODSEQ older than the oldest one remembered is told every
 * UID of its set that no longer exists instead, which the RFC allows.  2048 covers many
 * days of a busy folder's deletions; 16 bytes each, 32 KiB at most per open index. */
#define INDEX_EXPUNGES_MAX 2048
/* Folder names (storage.h): UTF-8 with "/" between levels for the client, modified UTF-7
 * on disk.  Maildir++ keeps a whole name in one directory entry (".A.B", at most NAME_MAX
 * = 255 bytes), mbox one level per path component (each at most NAME_MAX): that is the
 * real bound on disk; 512 bytes of UTF-8 bounds what is looked at before mapping, 16
 * levels bounds the mbox directory walk. */
#define STORAGE_NAME_MAX 512
#define STORAGE_NAME_DEPTH 16
#define STORAGE_NAME_LEVEL_MAX 255
/* A cache batch (storage.h mailbox_cache_batch_begin) is written when it holds this many
 * entries or bytes, or its oldest entry is this old: one transaction (and lock) for many
 * messages, while other sessions still get the entries soon. */
#define STORAGE_CACHE_BATCH 256
#define STORAGE_CACHE_BATCH_BYTES (2 * 1024 * 1024)
#define STORAGE_CACHE_BATCH_MS 2000
/* Folders one listing returns (its memory), and the subscriptions file's size. */
#define STORAGE_FOLDERS_MAX 10000
#define STORAGE_SUBS_MAX (256 * 1024)
/* The special-use records file (CREATE ... (USE ...)): five lines of at most a name each;
 * anything longer is not ours and only its first bytes are looked at. */
#define STORAGE_SPECIAL_MAX (8 * 1024)
/* A directory or mbox mtime younger than this is not trusted as "unchanged" next time:
 * a change within the same timestamp tick would not move it. */
#define STORAGE_MTIME_SLACK_NS 2000000000ULL
/* One cached item of a message (an envelope, a body structure): larger ones are not
 * cached (they are computed again when needed). */
#define INDEX_CACHE_ENTRY_MAX (64 * 1024)
/* Keyword names a folder may define: one bit each in the index record's 32-bit keyword
 * word (Maildir file names carry only 26 of them, as letters a-z: the index holds the
 * rest).  When full, IMAP answers NO to a new name and drops \* from PERMANENTFLAGS. */
#define INDEX_MAX_KEYWORDS 32
/* A keyword name (an IMAP atom, RFC 9051 2.3.2): no RFC limit; 64 bytes holds every
 * keyword in common use ($Forwarded, $MDNSent, $Junk, NonJunk, $label1...) and keeps
 * the table small (stored in one length byte). */
#define INDEX_KEYWORD_MAX 64

/* Message parsing (common/mail/header.c, mime.c). */
/* One header field kept whole (its raw and unfolded value each): RFC 5322 section 2.1.1
 * caps a line at 998 octets but a folded field (References, DKIM-Signature, a long To)
 * may span many lines; 64 KiB holds any real one.  A longer field is truncated (flagged),
 * its bytes still counted, so offsets and sizes stay right. */
#define HEADER_FIELD_MAX (64 * 1024)
/* Fields reported per header: no real message has near this many; past it the rest are
 * consumed and counted but not reported (a header of a million one-byte fields cannot
 * cost a million callbacks of work per FETCH). */
#define HEADER_MAX_FIELDS 10000
/* DKIM signing (common/mail/dkim.c).  The signed header fields are kept until the header
 * ends (h= picks them bottom-up): at most this many bytes of them, canonicalized; real
 * headers carry a few KiB of From/To/Cc/Subject/References, a huge To list maybe 100 KiB.
 * A message past it is not signed (the caller sends it unsigned and logs why). */
#define DKIM_MAX_SIGNED_BYTES (256 * 1024)
/* Instances of one signed name that are signed (the last ones, as h= picks them): the
 * fields DKIM signs occur once in a well-formed message (RFC 5322 section 3.6). */
#define DKIM_MAX_SIGNED_PER_NAME 8
/* A PEM private key file: an RSA 4096 key is ~3.3 KiB. */
#define DKIM_MAX_KEY_FILE (16 * 1024)
/* MIME nesting (multiparts and message/rfc822 parts inside each other): Dovecot allows
 * 100; real mail rarely passes 10.  A part deeper than this is one opaque leaf. */
#define MIME_MAX_DEPTH 32
/* Parts of one message: the last one is kept for the rest of the message, one opaque
 * leaf, when a part more would start (the tree, serialised, must stay near
 * INDEX_CACHE_ENTRY_MAX to be cached). */
#define MIME_MAX_PARTS 1000
/* RFC 2046 section 5.1.1: a boundary is 1 to 70 characters.  Up to 200 are accepted
 * (some mailers exceed 70); a multipart with a longer or no boundary is a leaf. */
#define MIME_BOUNDARY_MAX 200
/* Parameters kept per Content-Type / Content-Disposition (after RFC 2231 merging), and
 * raw name=value pairs looked at before merging. */
#define MIME_MAX_PARAMS 32
#define MIME_MAX_RAW_PARAMS 128
/* A kept MIME string (a parameter value, Content-ID, -Description, -Location, -MD5):
 * longer values are cut here. */
#define MIME_VALUE_MAX 1024
/* Content-Language tags kept per part (RFC 3282). */
#define MIME_MAX_LANGUAGES 16
/* One envelope field (Date, Subject, From, ... Message-ID) kept for IMAP ENVELOPE: a To
 * of a few hundred addresses fits; a longer one is cut (flagged). */
#define ENVELOPE_FIELD_MAX (16 * 1024)

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

/* Mail value parsers (common/mail/address.c, date.c, rfc2047.c, charset.c, qp.c, base64.c). */
/* Entries (mailboxes and group markers) kept from one address header: IMAP ENVELOPE
 * writes every one, so a 1 MB "To:" of "a@b," must not become a 250,000-entry reply; a
 * real mailing list header has at most a few thousand.  Past it the list is cut and
 * marked truncated. */
#define ADDRESS_MAX_ENTRIES 2000
/* Comments (RFC 5322 section 3.2.2) nest without limit in the grammar; deeper than this
 * is hostile: the rest of the comment is skipped flatly (no recursion happens anyway). */
#define ADDRESS_MAX_COMMENT_DEPTH 32
/* RFC 5321 section 4.5.3.1.1-3: local-part 64 octets, domain 255, path 256 with "<>". */
#define SMTP_MAX_LOCAL_PART 64
#define SMTP_MAX_DOMAIN 255
#define SMTP_MAX_PATH 256
/* RFC 2047 section 2: an encoded-word is at most 75 characters; we accept longer ones
 * (real mail breaks the rule) up to this, past which the text is left as it is. */
#define RFC2047_MAX_WORD 1024
/* Quoted-printable decoding (RFC 2045 section 6.7 rule 3): whitespace at the end of a
 * line is deleted, so a run of it is held until the line goes on or ends; a run longer
 * than a legal line (76) is passed on at once, as text. */
#define QP_MAX_PENDING_WS 76
/* A charset name (RFC 2978 section 2.3: mime-charset names are at most 40 characters). */
#define CHARSET_MAX_NAME 64

/* The IMAP command parser (common/imap/imap_parser.c).  Lines are IMAP_MAX_LINE_PRELOGIN /
 * IMAP_MAX_LINE above; a command is one or more lines joined by literals. */
/* A literal the parser collects (an astring: a password, a mailbox name, a SEARCH
 * string).  Before login only LOGIN's user name and password need one: AUTH_MAX_PASS.
 * After login 64 KiB, the line limit: nothing but an APPEND message (streamed, never
 * collected; its limit is APPENDLIMIT from the config) needs more. */
#define IMAP_MAX_LITERAL_PRELOGIN AUTH_MAX_PASS
#define IMAP_MAX_LITERAL 65536
/* One command's lines and collected literals together: a client cannot make the parser
 * hold more than this.  Before login two lines' worth; after login 1 MiB (a SEARCH with a
 * few long literals, a MULTIAPPEND's flags and dates; the messages are streamed). */
#define IMAP_MAX_COMMAND_PRELOGIN (2 * IMAP_MAX_LINE_PRELOGIN)
#define IMAP_MAX_COMMAND (1024 * 1024)
/* RFC 7888 section 5: with LITERAL- a non-synchronizing literal is at most 4096 bytes. */
#define IMAP_LITERAL_MINUS_MAX 4096
/* A bad command's non-synchronizing literals (which the client sends without waiting)
 * are read and dropped up to this many bytes in all, so that the command gets its tagged
 * BAD and the session goes on (RFC 7888 section 4, choice 1); past it the connection
 * closes with BYE [TOOBIG] (choice 2) rather than read a large upload for nothing.
 * Before login the bound is IMAP_MAX_COMMAND_PRELOGIN. */
#define IMAP_MAX_DISCARD (256 * 1024)
/* Nesting depth of parenthesized lists in one command: SEARCH's parenthesized keys and
 * OR, FETCH's lists, LIST-EXTENDED options; clients nest 3 or 4 deep.  Code that walks
 * the tree recursively (SEARCH) can rely on it. */
#define IMAP_MAX_LIST_DEPTH 32
/* Argument nodes (atoms, strings, lists) in one command: a STORE of many keywords, a
 * long SEARCH; each costs ~50 bytes of parser memory. */
#define IMAP_MAX_ARGS 8192
/* A command name or tag longer than this is refused (the longest command name is 16). */
#define IMAP_MAX_TAG 64
#define IMAP_MAX_CMD_NAME 32
/* Sequence sets (common/imap/imap_seqset.c): ranges one set may hold after sorting and
 * merging.  A 64 KiB line holds at most ~32,000 "n," items; clients send UID sets of
 * ranges (mbsync, Thunderbird: a few thousand at most); 16 bytes each, 256 KiB at most. */
#define IMAP_MAX_SEQSET_RANGES 16384
/* UID ranges in one VANISHED response line (RFC 7162 3.2.10): more go into further lines,
 * so a line stays below ~24 KiB (clients read responses line by line). */
#define IMAP_VANISHED_LINE_RANGES 1024
/* BINARY.SIZE cache (common/imap/imap_binsize.c): one (size, has_nul) entry per MIME
 * part, indexed by the part's place in the tree, so at most a message's parts; 9 bytes
 * each, ~9 KiB at most, well inside INDEX_CACHE_ENTRY_MAX. */
#define IMAP_BINSIZE_MAX_PARTS MIME_MAX_PARTS

/* imapd's APPENDLIMIT (RFC 7889): the largest message APPEND takes.  Streamed to storage,
 * never buffered, so memory does not depend on it; it bounds the disk one command can
 * fill.  Mail clients save sent mail with attachments of tens of MB (the 50 MB
 * message). */
#define IMAP_APPEND_MAX (128ull * 1024 * 1024)
/* imapd IDLE: how often the folder is looked at even without an inotify event (a folder
 * on a file system without inotify, an mbox rewritten in place), and the longest IDLE
 * before the server ends it (RFC 9051 section 6.3.13 asks clients to re-IDLE within 29
 * minutes; the idle timeout of the config applies to other commands). */
#define IMAP_IDLE_POLL_MS 1000
#define IMAP_IDLE_MAX_S (30 * 60)
/* SEARCH (common/imap/imap_search.c): nesting of NOT, OR and parenthesized keys together
 * (the parser bounds lists alone; "NOT NOT NOT ..." is flat).  Compiling and evaluating
 * recurse over it; clients nest a few levels (Thunderbird's OR chains: one per term). */
#define IMAP_SEARCH_MAX_DEPTH 128
/* LIST (imapd/imap_mailbox.c): patterns in one LIST-EXTENDED command (each is matched
 * against every name: time is patterns x names), one pattern's bytes (reference +
 * pattern; a folder name is at most STORAGE_NAME_MAX, twice that in modified UTF-7), and
 * the names one LIST considers (folders + INBOX + subscriptions + their parents). */
#define IMAP_LIST_PATTERNS_MAX 64
#define IMAP_LIST_PATTERN_MAX (STORAGE_NAME_MAX * 4)
#define IMAP_LIST_NAMES_MAX (STORAGE_FOLDERS_MAX * 4)
/* BODY and TEXT keys in one SEARCH: each one reads and decodes every candidate message's
 * text once, so a command of thousands of them would cost thousands of passes over the
 * mailbox.  Clients send one or two (a quick-filter box: BODY or TEXT per word). */
#define IMAP_SEARCH_MAX_TEXT_KEYS 16
/* Header keys (FROM, TO, CC, BCC, SUBJECT, HEADER) in one SEARCH: each walks the header
 * fields; Thunderbird's quick filter sends four per word. */
#define IMAP_SEARCH_MAX_HEADER_KEYS 128
/* Bytes of raw message the body matcher reads at a time. */
#define IMAP_SEARCH_READ_CHUNK 16384

/* The spool (common/spool/): smtp-submit's queue of accepted messages. */
/* Recipients of one message: RFC 5321 section 4.5.3.1.8 asks a server to take at least
 * 100; 1000 is Postfix's smtpd_recipient_limit.  The session answers 452 4.5.3 past it;
 * the envelope reader refuses a file with more. */
#define SPOOL_MAX_RCPTS 1000
/* One envelope line with its LF.  The longest values are an ORCPT (SPOOL_ORCPT_MAX) and a
 * reply (SPOOL_REPLY_MAX) after their key: 1024 holds both with room. */
#define SPOOL_ENV_LINE_MAX 1024
/* A whole envelope file, refused unread when larger: the header has at most 16 lines, a
 * recipient block at most 11 lines of at most ~1.8 KiB together at the limits below, and
 * SPOOL_MAX_RCPTS of them stay under 2 MiB; root reads no more than this of a file the
 * spool user could have written. */
#define SPOOL_ENV_MAX_BYTES (2 * 1024 * 1024)
/* The last reply kept per recipient (for the log, -bp and a DSN's Diagnostic-Code): one
 * line as RFC 5321 section 4.5.3.1.5 allows (512 with CRLF). */
#define SPOOL_REPLY_MAX 510
/* RFC 3461 section 4.4: ENVID "MAY be up to 100 characters", section 4.2: the whole ORCPT
 * parameter up to 500; both are kept decoded (xtext decoding never lengthens). */
#define SPOOL_ENVID_MAX 100
#define SPOOL_ORCPT_MAX 500
/* The TLS summary kept for the log and a DSN ("TLSv1.3 TLS_AES_256_GCM_SHA384" is 30),
 * and the protocol name of the Received line ("ESMTPSA", RFC 3848). */
#define SPOOL_TLS_MAX 128
#define SPOOL_PROTO_MAX 16
/* Delivery attempts counted per recipient: with retries at most every minute for the 5
 * days of issue 8 a counter stays under 7,200; past this cap it stops counting. */
#define SPOOL_MAX_ATTEMPTS 1000000
/* Times in an envelope (Unix seconds): up to the end of year 9999, so every time the
 * writer can be given round-trips and no arithmetic on them overflows. */
#define SPOOL_TIME_MAX 253402300799LL
/* A message's bytes are written to disk in pieces of this size (fewer system calls than
 * the SMTP reader's chunks; memory per session). */
#define SPOOL_WRITE_BUF 65536
/* An entry of tmp/ that nobody holds locked is removed by spool_cleanup() once it is this
 * old: a receiving session holds its lock for its whole life and ends long before (its
 * absolute deadline), so only a crash leaves one; the age is a second guard. */
#define SPOOL_TMP_STALE_S (6 * 3600)
/* Queue ids tried when creating a message before giving up (one id per microsecond and
 * 32 per microsecond tick: only a clock stuck for a long time exhausts this). */
#define SPOOL_ID_TRIES 256
/* A message lock held by another runner is retried this often, up to the caller's
 * timeout (never forever). */
#define SPOOL_LOCK_POLL_MS 10
/* A due-only queue walk skips a message on its envelope's mtime (its next try) only when
 * that is later than now plus this: a file written just now can carry a time a second
 * ahead of time() (fine-grained file times against the coarse clock). */
#define SPOOL_MTIME_SLACK_S 2
/* Queue entries one listing or queue run looks at (13 bytes of memory each); the rest
 * wait for the next run, and the listing says it was cut. */
#define SPOOL_SCAN_MAX 1000000
/* Bounces (common/spool/dsn.c).  RET=FULL returns the whole message only up to this
 * size (RFC 3461 section 6.2 lets the MTA return only the header past "some
 * implementation-specified length"): a bounce doubles the traffic of what it returns,
 * and Postfix returns no more than 50 kB (bounce_size_limit); 1 MiB keeps ordinary mail
 * with a small attachment whole.  Beyond it, the header only. */
#define DSN_RETURN_FULL_MAX (1024 * 1024)
/* Bytes of the original's header returned at most (a header is a few KiB; a long chain
 * of Received: and signature fields tens of KiB); the copy is cut at this point. */
#define DSN_RETURN_HDRS_MAX (256 * 1024)
/* One value taken from outside into a DSN field or its text part (a diagnostic as the
 * remote server sent it, an address, ORCPT, ENVID, a host name): longer ones are cut,
 * so "Diagnostic-Code: smtp; " and the value stay far below RFC 5322's 998 even where
 * no space allows a fold.  A multi-line SMTP reply is about 512 bytes a line. */
#define DSN_TEXT_MAX 900
/* Longest line written into a DSN, without its CRLF: RFC 5322 section 2.1.1's limit.
 * A longer line of the returned original is broken at this length. */
#define DSN_LINE_MAX 998
/* Where the DSN's own fields are folded when a space allows (RFC 5322 section 2.1.1's
 * "SHOULD" limit). */
#define DSN_FOLD_COLUMN 78

/* smtp-submit's local delivery (smtp-submit/deliver.c). */
/* A deferred local recipient is tried again after this, doubled per attempt up to the
 * maximum: a full disk or a broken mailbox is fixed in minutes to hours; -q runs every
 * few minutes (the timer), so a shorter first step would only cost mailbox opens. */
#define DELIVER_RETRY_MIN_S 300
#define DELIVER_RETRY_MAX_S 3600
/* How long deliver_message() waits for a message another process holds (the session
 * that just accepted it closes its lock right after asking for the delivery); past it
 * the message is left to the queue runner. */
#define DELIVER_LOCK_TIMEOUT_MS 5000
/* One delivery process (one user's mailbox): it is killed past this and its recipients
 * are deferred (the token search decides next time); an mbox lock held by a stuck MUA
 * is the usual cause.  50 MB (SUBMIT_SIZE_LIMIT_DEFAULT) to a slow disk takes seconds. */
#define DELIVER_CHILD_TIMEOUT_S 600
/* After a crash, a recipient's token is looked for in the messages of its mailbox dated
 * no earlier than the attempt's start minus this (file times and the clock differ by up
 * to a second or two; a clock stepped back further costs at worst a duplicate, never a
 * loss), reading at most DELIVER_TOKEN_READ_MAX bytes of each (our fields are first) and
 * at most DELIVER_TOKEN_SCAN_MAX messages, newest first. */
#define DELIVER_TOKEN_SLACK_S 300
#define DELIVER_TOKEN_READ_MAX 4096
#define DELIVER_TOKEN_SCAN_MAX 10000
/* The reason a delivery process reports for a recipient (a storage error text). */
#define DELIVER_REASON_MAX 200
/* Bytes of the message copied per read from the spool into the mailbox. */
#define DELIVER_COPY_BUF 65536

/* aliases(5) (common/spool/aliases.c).  /etc/aliases is root's, read by the session and
 * by delivery as hostile all the same.  A Debian aliases file is a few hundred bytes; a
 * site with many lists has thousands of entries: 4 MiB of file, a 64 KiB logical line
 * (a list written as one entry with continuation lines) and 100,000 entries leave room
 * for both and bound the memory.  Names are local parts (RFC 5321 section 4.5.3.1.1).
 * One expansion follows at most ALIASES_MAX_DEPTH nested aliases (sendmail and Postfix
 * stop near 10-20), reaches at most ALIASES_MAX_USERS distinct users and looks at most
 * ALIASES_MAX_STEPS targets: past these it is refused, never cut short silently. */
#define ALIASES_MAX_FILE (4U * 1024 * 1024)
#define ALIASES_MAX_LINE 65536
#define ALIASES_MAX_ENTRIES 100000
#define ALIASES_MAX_NAME SMTP_MAX_LOCAL_PART
#define ALIASES_MAX_DEPTH 20
#define ALIASES_MAX_USERS 1000
#define ALIASES_MAX_STEPS 20000
/* smtp-submit's policy (smtp-submit/policy.c).  DNSBL zones checked per connection (each
 * costs up to two lookups before the greeting's reply to MAIL); each lookup waits at most
 * DNSBL_TIMEOUT_S per try, DNSBL_TRIES tries (resolv.conf's timeout/attempts, bounded).
 * Local domains from config: more than this is a configuration error. */
#define DNSBL_MAX_ZONES 8
#define DNSBL_TIMEOUT_S 2
#define DNSBL_TRIES 2
#define POLICY_MAX_DOMAINS 256
/* Rate limits (submit_rate_messages/recipients are per hour): a sliding hour kept as 60
 * one-minute buckets per user (a fixed-size file under spool_dir/rate/, so it cannot
 * grow). */
#define RATE_BUCKETS 60

/* The dns library (common/dns/).  A name is at most 253 characters in text (RFC 1035
 * section 2.3.4: 255 bytes in wire form).  The result arrays are fixed so a hostile
 * zone cannot make a result grow: 32 MX hosts (more is never useful: RFC 5321 section
 * 5.1 asks clients to try "a few" and Postfix stops at 5), 32 addresses per host, 8 TLSA
 * records of at most 2048 bytes of data each (a 3 1 1 or 2 1 1 record is 32 bytes; a
 * full certificate, matching type 0, fits), 16 TXT records of at most 4096 bytes each
 * (SPF, DKIM keys: an RSA-4096 key record is ~800 bytes), 8 PTR names.  Records past a
 * limit are ignored (for TLSA that fails closed: fewer usable records).  Each public
 * lookup has one absolute deadline, DNS_DEADLINE_MS, for all the queries it makes
 * (unbound's own retries and server selection happen inside it); past it the lookup
 * is cancelled and says TEMPFAIL. */
#define DNS_NAME_MAX 253
#define DNS_MAX_MX 32
#define DNS_MAX_ADDRS 32
#define DNS_MAX_TLSA 8
#define DNS_TLSA_MAX_DATA 2048
#define DNS_MAX_TXT 16
#define DNS_TXT_MAX 4096
#define DNS_MAX_PTR 8
#define DNS_WHY_MAX 160
#define DNS_DEADLINE_MS 20000
#define DNS_MAX_SERVERS 8

/* The outbound SMTP client (common/smtp/smtp_client.c).  RFC 5321 section 4.5.3.2: the
 * client's timeouts per state, exposed by smtp_client_timeout_s() for the caller's
 * waits: the greeting 5 min, MAIL 5 min, RCPT 5 min, DATA 2 min, each data block 3 min,
 * the reply to the final dot 10 min (the server may scan the message meanwhile).  The
 * other commands (EHLO, STARTTLS, AUTH, RSET, QUIT) have no RFC value: 5 min as MAIL.
 * A reply's text kept per recipient for the log and a DSN: the lines joined, cut here
 * (a reply line from a peer may be longer, SMTP_MAX_REPLY_LINE_PEER; one is enough).
 * Output buffered by the engine before the caller takes it: a pipelined group of
 * commands is at most SMTP_MAX_MAIL_LINE + n * SMTP_MAX_RCPT_LINE; the caller takes the
 * output after each call, so this is the group's recipients' bound:
 * SMTP_CLIENT_MAX_RCPTS per message (RFC 5321 section 4.5.3.1.8's 100 is the minimum a
 * server must accept; a message to more is sent in several transactions by the queue). */
#define SMTP_CLIENT_TIMEOUT_GREETING_S 300
#define SMTP_CLIENT_TIMEOUT_MAIL_S 300
#define SMTP_CLIENT_TIMEOUT_RCPT_S 300
#define SMTP_CLIENT_TIMEOUT_DATA_S 120
#define SMTP_CLIENT_TIMEOUT_BLOCK_S 180
#define SMTP_CLIENT_TIMEOUT_DOT_S 600
#define SMTP_CLIENT_TIMEOUT_OTHER_S 300
#define SMTP_CLIENT_MAX_REPLY_TEXT 512
#define SMTP_CLIENT_MAX_RCPTS 1000

#endif
