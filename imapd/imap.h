/* imapd: IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) over the postern foundation.
 *
 *   imap_client.c    reading commands (lines, literals, "+" continuation) through the
 *                    imap library's parser, writing every response through imap_write,
 *                    counting bad commands
 *   imap_prelogin.c  the not-authenticated state, in the unprivileged worker
 *   imap_session.c   the authenticated and selected states, as the mail user: the command
 *                    table, the session's view of the selected folder, untagged updates
 *   imap_mailbox.c   SELECT/EXAMINE, LIST/LSUB, CREATE/DELETE/RENAME, SUBSCRIBE, STATUS
 *   imap_fetch.c     FETCH (the item table; ENVELOPE, BODYSTRUCTURE, BODY[section]
 *                    and BINARY from common/imap) and SEARCH (imap_search)
 *   imap_store.c     STORE, EXPUNGE, COPY, MOVE
 *   imap_append.c    APPEND and MULTIAPPEND, streamed into storage
 *   imap_idle.c      IDLE
 *   imap_compress.c  COMPRESS=DEFLATE (RFC 4978; the layer is conn.c's)
 *   main.c           options, struct server_proto, server_run() */
#ifndef POSTERN_IMAP_H
#define POSTERN_IMAP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/cmdloop.h"
#include "base/conn.h"
#include "base/log.h"
#include "base/plimits.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "imap/imap_write.h"
#include "index/index.h"
#include "privsep/server.h"

#define IMAP_GREETING_TEXT "postern IMAP server ready"
/* The hierarchy delimiter clients see; storage names use '.' (Maildir++). */
#define IMAP_DELIM '/'
/* The largest response line we form in memory (FETCH bodies are streamed past it). */
#define IMAP_OUT_MAX (IMAP_MAX_LINE * 4)

/* ---- imap_client.c ------------------------------------------------------------------- */

/* What imapc_read() found. */
enum imapc_read {
	IMAPC_END = 0,      /* the input ended or cannot go on (ic->reason says why) */
	IMAPC_CMD = 1,      /* a command: imap_parser_command(ic->parser) */
	IMAPC_BADCMD = 2,   /* a bad command: answered and counted */
	IMAPC_STREAM = 3,   /* an APPEND literal: the caller streams it, then imapc_streamed() */
};

struct imapc {
	struct conn *c;
	struct imap_parser *parser;
	struct imap_parser_settings set;
	struct imap_buf out;       /* the response being formed */
	struct cmdloop loop;       /* cmdloop_line(): lines, bad bytes, the bad-input log */
	unsigned wflags;           /* IMAP_WRITE_UTF8 when enabled */
	const char *reason;        /* why the input ended (log) */
};

void imapc_init(struct imapc *ic, struct conn *c, const struct imap_parser_settings *set,
		const char *rip, const char *log_user);
void imapc_free(struct imapc *ic);
/* Change the parser's settings (login, ENABLE) and the line limit. */
void imapc_settings(struct imapc *ic, const struct imap_parser_settings *set,
		    size_t line_max);
/* Read the next command (see enum imapc_read). */
int imapc_read(struct imapc *ic);
/* After IMAPC_STREAM: the literal's bytes were taken; go on with the command. */
int imapc_streamed(struct imapc *ic);
/* Raw bytes of a literal the caller streams (at most n): >0, or 0/-1 at EOF/error. */
ssize_t imapc_read_raw(struct imapc *ic, void *buf, size_t n);
/* Send "+ text" and flush (a continuation request). */
int imapc_continue(struct imapc *ic, const char *text);
/* Response lines, each written to the connection at once (buffered in the conn):
 * tagged and untagged status responses (text is sanitised; code is ours) and a raw
 * untagged line "* <fmt>" that we form from numbers and flags only. */
void imapc_tagged(struct imapc *ic, const char *tag, const char *status, const char *code,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void imapc_untagged(struct imapc *ic, const char *status, const char *code,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void imapc_data(struct imapc *ic, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send what is in ic->out (a response built with the imap_write functions), CRLF-ended
 * by the caller; then empty it.  0 or -1 (it overflowed: nothing sent). */
int imapc_send_buf(struct imapc *ic);
/* A command was bad: count it (BAD already written).  0 when that was one too many (BYE
 * written, ic->reason set): the connection ends. */
int imapc_count_bad(struct imapc *ic);
void imapc_count_good(struct imapc *ic);

/* The capabilities after login (also in LOGIN's tagged OK, written by the worker). */
#define IMAP_CAPABILITY_AUTH "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS " \
	"MOVE UNSELECT CHILDREN NAMESPACE MULTIAPPEND APPENDLIMIT=134217728 CONDSTORE BINARY " \
	"SPECIAL-USE ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS CREATE-SPECIAL-USE UTF8=ACCEPT " \
	"QRESYNC"
/* Listed after IMAP_CAPABILITY_AUTH while the connection is not compressed (RFC 4978). */
#define IMAP_CAPABILITY_COMPRESS " COMPRESS=DEFLATE"

/* ---- imap_prelogin.c ----------------------------------------------------------------- */

struct imap_login_ops {
	enum server_login (*login)(struct server_worker *w, const char *method,
				   const char *user, char *pass);
	int (*starttls)(struct server_worker *w);
};
int imap_prelogin(struct server_worker *w);
int imap_prelogin_run(struct server_worker *w, const struct imap_login_ops *ops);
void imap_prelogin_refuse(struct conn *c, enum server_refusal why);
/* "* ID NIL" and the tagged OK (both states). */
void imap_id_reply(struct imapc *ic, const char *tag);

/* ---- imap_session.c ------------------------------------------------------------------ */

enum imap_state { IMAP_AUTH, IMAP_SELECTED, IMAP_LOGOUT };

/* A message as this session knows it: sequence number = position + 1. */
struct imap_vmsg {
	uint32_t uid;
	uint32_t flags;            /* INDEX_FLAG_* as last reported */
	uint32_t keywords;
	uint64_t modseq;
};

struct mail_storage;
struct mailbox;
struct imap_sess {
	struct server_session *s;
	struct imapc ic;
	struct mail_storage *st;
	enum imap_state state;
	/* the selected folder */
	struct mailbox *box;
	bool readonly;             /* EXAMINE */
	bool fetch_uid;            /* the FETCH being answered is UID FETCH */
	char box_name[STORAGE_NAME_MAX + 1];     /* the storage name, "INBOX" or a folder */
	struct imap_vmsg *msgs;    /* the session's view: what the client was told */
	size_t count, cap;
	uint64_t seen_modseq;      /* HIGHESTMODSEQ when the view was last brought up to date */
	unsigned kw_count;         /* keyword names the client was told of (FLAGS) */
	uint32_t *saved_uids;      /* "$": SEARCH RETURN (SAVE)'s result (RFC 5182) */
	size_t saved_count;
	/* ENABLE */
	bool enabled_utf8, enabled_condstore, enabled_qresync, enabled_rev2;
	/* enabled_utf8: mailbox names and quoted strings in UTF-8, after ENABLE UTF8=ACCEPT or
	 * ENABLE IMAP4rev2 (RFC 9051 5.1); enabled_utf8_accept: UTF8=ACCEPT itself (RFC 6855:
	 * no SEARCH CHARSET, APPEND with 8-bit header fields only as "UTF8 (...)") */
	bool enabled_utf8_accept;
	/* counters for the logout line */
	unsigned n_fetch, n_store, n_expunged, n_append, n_copy;
	const char *reason;
	int status;
	char ubuf[LOG_MAX_FIELD + 1];
	char log_user[LOG_MAX_FIELD + 16];
	char *iobuf;               /* IO_CHUNK bytes: message reads */
	char *cvbuf;               /* 2 * IO_CHUNK + 1: CRLF conversion */
};

/* What a command handler tells the loop. */
enum imap_result {
	IMAP_R_OK,                 /* answered */
	IMAP_R_BAD,                /* answered with BAD: counts as a bad command */
	IMAP_R_LOGOUT,             /* answered; the session ends */
	IMAP_R_DROP,               /* the connection is gone or must end now */
};

int imap_session(struct server_session *s);
/* \Recent (RFC 3501 2.3.2) is the session's: a read-write session shows it on the
 * messages it claimed (mailbox_claim_recent), an EXAMINE session on those nobody had
 * claimed when it first saw them, an IMAP4rev2 session never.  The view's flags are the
 * record's with the view's own \Recent bit. */
static inline uint32_t imap_view_flags(uint32_t rec_flags, uint32_t view_flags)
{
	return (rec_flags & ~(uint32_t)INDEX_FLAG_RECENT) | (view_flags & INDEX_FLAG_RECENT);
}
/* Claim the recent messages of the view (read-write, not IMAP4rev2; else nothing) and
 * mark them in it; the number of messages the view shows as recent. */
size_t imap_sess_claim_recent(struct imap_sess *ss);
/* Sync the selected folder and tell the client what changed since it was last told:
 * EXPUNGE (unless expunges may not be sent now), EXISTS, RECENT, FETCH FLAGS. */
void imap_sess_update(struct imap_sess *ss, bool allow_expunge);
/* The view after SELECT (everything in the folder now). */
void imap_sess_view_reset(struct imap_sess *ss);
/* A CONDSTORE enabling command (RFC 7162 3.1): from now on MODSEQ in every untagged
 * FETCH; the first one with a folder selected also says "* OK [HIGHESTMODSEQ n]" (n: as
 * of the last full update of the view, never past an expunge not yet reported). */
void imap_sess_condstore_on(struct imap_sess *ss);
/* QRESYNC (RFC 7162 3.2.5.1, 3.2.6): "* VANISHED (EARLIER) uids" for the UIDs of known
 * (NULL: 1:UIDNEXT-1) from min_uid up that no message has now and that were expunged
 * after modseq; when the index no longer remembers that far back (index.h), every such
 * UID that no message has (the RFC allows it).  Several lines if long. */
void imap_sess_vanished_earlier(struct imap_sess *ss, uint64_t modseq,
				const struct imap_seqset *known, uint32_t min_uid);
/* The position of a UID in the view, or -1. */
long imap_sess_view_find(const struct imap_sess *ss, uint32_t uid);
/* "(\Seen \Deleted $Forwarded)" of flags and keywords (named by box; NULL: none) into
 * buf of at least IMAP_FLAGS_TEXT_MAX bytes. */
#define IMAP_FLAGS_TEXT_MAX (64 + INDEX_MAX_KEYWORDS * (INDEX_KEYWORD_MAX + 1))
void imap_flags_format(uint32_t flags, uint32_t keywords, const struct mailbox *box,
		       char *buf, size_t size);
/* "FLAGS (...)" and "OK [PERMANENTFLAGS (...)]" of the selected folder, its keywords
 * included (SELECT, and again when another session adds a keyword). */
void imap_sess_send_flags(struct imap_sess *ss);
/* A sequence set argument (by number or by UID) against the view.  0, or -1 with BAD
 * written. */
int imap_sess_seqset(struct imap_sess *ss, const char *tag, const struct imap_arg *a,
		     bool uid, struct imap_seqset *set);
/* Log a storage error and answer NO with the RFC 5530 code that fits. */
void imap_sess_storage_error(struct imap_sess *ss, const char *tag, const char *what,
			     const char *error);
/* A mailbox name argument, as the client wrote it (modified UTF-7, or UTF-8 after ENABLE
 * UTF8=ACCEPT), to the storage name ("INBOX" or a folder).  0, or -1 with NO/BAD written. */
int imap_sess_mailbox_arg(struct imap_sess *ss, const char *tag, const struct imap_arg *a,
			  char *name, size_t size);
/* A storage name as the client sees it ('.' -> '/'), written as an astring. */
void imap_write_mailbox(struct imap_sess *ss, const char *storage_name);

typedef enum imap_result imap_cmd_fn(struct imap_sess *ss, const struct imap_command *cmd);

/* imap_mailbox.c */
imap_cmd_fn imap_cmd_select, imap_cmd_list, imap_cmd_lsub, imap_cmd_create,
	imap_cmd_delete, imap_cmd_rename, imap_cmd_subscribe, imap_cmd_unsubscribe,
	imap_cmd_status, imap_cmd_close, imap_cmd_unselect;
/* The special-use folders at the first login (imap_mailbox.c). */
void imap_mailbox_first_login(struct imap_sess *ss);
/* imap_fetch.c */
imap_cmd_fn imap_cmd_fetch, imap_cmd_search;
/* imap_store.c; imap_flags_parse(): a flag list (or flags as arguments) to INDEX_FLAG_*
 * bits and keyword bits of box (a new keyword is added to box's names when create, else
 * left out).  \Recent and unknown system flags are refused.  0, -1 bad flags (BAD), -2
 * the keyword table is full or could not be written (*error_r; NO). */
int imap_flags_parse(struct mailbox *box, bool create, const struct imap_arg *args,
		     size_t n, uint32_t *flags_r, uint32_t *keywords_r, const char **error_r);
imap_cmd_fn imap_cmd_store, imap_cmd_expunge, imap_cmd_copy;
/* imap_append.c (its literal is streamed: it reads the command itself) */
enum imap_result imap_cmd_append(struct imap_sess *ss);
/* imap_idle.c */
imap_cmd_fn imap_cmd_idle;
/* imap_compress.c */
imap_cmd_fn imap_cmd_compress;

#endif
