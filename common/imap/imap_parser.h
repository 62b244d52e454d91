/* The IMAP command parser (RFC 3501 section 9, RFC 9051 sections 4 and 9; literals of
 * RFC 7888 LITERAL+/LITERAL-, literal8 of RFC 3516, "UTF8 (" of RFC 6855).  No I/O: the
 * daemon feeds it one line at a time (without its CRLF or LF, as conn_read_line() gives
 * it) and, between lines, the bytes of the literal that the line announced.
 *
 * The parser makes a tree of arguments from the generic IMAP syntax: atoms, quoted
 * strings, literals, NIL and parenthesized lists.  What an atom means depends on where
 * the command's grammar puts it (a number, a sequence set, a flag, a list-mailbox, a
 * fetch-att like BODY.PEEK[HEADER.FIELDS (A B)]<0.100>), so the lexer takes a "bare
 * token" (printable ASCII but SP ( ) { "), and the imap_arg_*() accessors check it
 * strictly for the grammar position the command handler asks for.  A bare token's first
 * '[' opens a bracketed part that may hold spaces, parentheses and quoted strings (kept
 * as written, escapes and all; a ']' inside quotes is data) up to the next ']'
 * ("BODY[HEADER.FIELDS (A "B")]<0.100>" is one atom); a '[' with no ']' after it on the
 * line is an ordinary atom character.  A literal inside the brackets is not supported
 * (the line ends there: the token splits and the fetch handler refuses it).
 *
 * A command's session with the parser:
 *
 *	imap_parser_begin(p);
 *	r = imap_parser_feed_line(p, line, len);
 *	loop on r:
 *	  IMAP_PARSE_DONE      the command is complete: imap_parser_command(p)
 *	  IMAP_PARSE_LITERAL   n = p->need.size bytes of literal follow; if p->need.sync, send
 *	                       "+ ..." first.  Feed them with imap_parser_feed_literal() (in
 *	                       pieces as they come); when all are in, the next line is fed
 *	                       with imap_parser_feed_line().  (n may be 0: "+" is still
 *	                       due if sync, then the next line.)
 *	  IMAP_PARSE_STREAM    the literal (p->need.size bytes, argument p->need.arg of the
 *	                       command so far) is an APPEND message: the daemon streams it to
 *	                       storage itself (after "+ ..." if p->need.sync), looking at
 *	                       imap_parser_command() for the mailbox and flags, then calls
 *	                       imap_parser_streamed() and feeds the next line.
 *	  IMAP_PARSE_SKIP      the command is bad, but the client sends p->need.size bytes of a
 *	                       non-synchronizing literal anyway: discard them (or feed them
 *	                       to imap_parser_feed_literal(), which drops them), then feed the
 *	                       next line, which belongs to the bad command too.
 *	  IMAP_PARSE_BAD       the command is over and bad: send "<tag> BAD [code] message"
 *	                       (p->error, p->error_code; the tag is p->tag, "*" if none);
 *	                       p->error_no: the answer is NO, not BAD (APPENDLIMIT, RFC 7889).
 *	  IMAP_PARSE_CLOSE     the input cannot be resynchronised (a line or command over the
 *	                       limit, a non-synchronizing literal too big to discard): send
 *	                       "* BYE" with p->error and close the connection.
 *
 * Memory: the parser collects literals up to a bound (settings) and never buffers a
 * streamed one.  Everything is bounded by the limits in base/plimits.h. */
#ifndef POSTERN_IMAP_PARSER_H
#define POSTERN_IMAP_PARSER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum imap_arg_type {
	IMAP_ARG_ATOM,          /* a bare token (with a bracketed part, a \flag, a set...) */
	IMAP_ARG_QUOTED,        /* "..." with its escapes undone */
	IMAP_ARG_LITERAL,       /* {n} or {n+} collected (may hold 8-bit; never NUL) */
	IMAP_ARG_LITERAL8,      /* ~{n} collected (BINARY; may hold NUL) */
	IMAP_ARG_STREAMED,      /* a literal the daemon streamed: only its size */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,          /* ( ... ) */
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8;          /* IMAP_ARG_STREAMED: it was ~{n} */
	const char *str;        /* ATOM, QUOTED, LITERAL*: NUL-terminated (len excludes it) */
	size_t len;
	uint64_t size;          /* IMAP_ARG_STREAMED: the literal's size */
	const struct imap_arg *list;  /* IMAP_ARG_LIST: its elements */
	size_t count;
};

struct imap_command {
	const char *tag;        /* NULL if the line had no valid tag */
	const char *name;       /* upper-cased command name (after UID if uid) */
	bool uid;               /* "UID FETCH ...": name is "FETCH" */
	const struct imap_arg *args;   /* top-level arguments */
	size_t count;
};

struct imap_parser_settings {
	bool logged_in;         /* the limits after login (plimits.h) and APPEND streaming */
	bool literal_minus;     /* LITERAL- advertised (else LITERAL+): {n+} at most 4096 */
	bool utf8;              /* UTF8=ACCEPT enabled or IMAP4rev2: UTF-8 in quoted strings */
	uint64_t append_max;    /* APPENDLIMIT: the largest streamed literal (0: none allowed) */
};

enum imap_parse_result {
	IMAP_PARSE_DONE = 0,
	IMAP_PARSE_LITERAL = 1,
	IMAP_PARSE_STREAM = 2,
	IMAP_PARSE_SKIP = 3,
	IMAP_PARSE_BAD = -1,
	IMAP_PARSE_CLOSE = -2,
};

struct imap_parser;

struct imap_parser_need {
	uint64_t size;          /* literal bytes to come */
	bool sync;              /* synchronizing: send "+ ..." before the client sends them */
	bool literal8;
	size_t arg;             /* STREAM: index of the literal among the top-level args */
	bool in_list;           /* STREAM: the literal is inside a parenthesized list (arg
	                           is the list's index): only "UTF8 (" literal8 ")" of
	                           RFC 6855 is valid there */
};

struct imap_parser *imap_parser_new(const struct imap_parser_settings *set);
void imap_parser_free(struct imap_parser **p);
/* Change the settings (after login, ENABLE UTF8=ACCEPT); takes effect at the next
 * imap_parser_begin(). */
void imap_parser_set(struct imap_parser *p, const struct imap_parser_settings *set);
/* Start a new command (frees what the previous one held). */
void imap_parser_begin(struct imap_parser *p);
/* One line without its line ending (a trailing CR is removed if there).  Returns an
 * imap_parse_result. */
int imap_parser_feed_line(struct imap_parser *p, const char *line, size_t len);
/* Literal bytes for IMAP_PARSE_LITERAL or _SKIP: consumes at most what is still due and
 * returns how much it took; imap_parser_literal_left() says what is still due (0: feed the
 * next line). */
size_t imap_parser_feed_literal(struct imap_parser *p, const void *data, size_t len);
uint64_t imap_parser_literal_left(const struct imap_parser *p);
/* After IMAP_PARSE_STREAM: the daemon took the literal's bytes; the next line follows. */
void imap_parser_streamed(struct imap_parser *p);
/* What is due after IMAP_PARSE_LITERAL, _STREAM, _SKIP. */
const struct imap_parser_need *imap_parser_need(const struct imap_parser *p);
/* The command, complete after IMAP_PARSE_DONE, as far as parsed after IMAP_PARSE_STREAM
 * (the arguments before the literal; an open "UTF8 (" list is not among them).  Valid
 * until the next call on the parser. */
const struct imap_command *imap_parser_command(struct imap_parser *p);
/* After IMAP_PARSE_BAD or _CLOSE: the message (constant text, no client bytes), a
 * response code or NULL ("TOOBIG"), and whether the answer is NO rather than BAD.  The
 * tag (if the line had one) is imap_parser_tag(). */
const char *imap_parser_error(const struct imap_parser *p, const char **code_r, bool *no_r);
const char *imap_parser_tag(const struct imap_parser *p);

/* Accessors: each checks one grammar position strictly; 0 or -1. */
/* atom: 1*ATOM-CHAR (no atom-specials, no ']'). */
int imap_arg_atom(const struct imap_arg *a, const char **s_r);
/* astring: 1*ASTRING-CHAR (']' allowed) or a string (quoted or literal, not literal8). */
int imap_arg_astring(const struct imap_arg *a, const char **s_r, size_t *len_r);
/* string (quoted or literal); nstring: string or NIL (*s_r = NULL). */
int imap_arg_string(const struct imap_arg *a, const char **s_r, size_t *len_r);
int imap_arg_nstring(const struct imap_arg *a, const char **s_r, size_t *len_r);
/* number (RFC 9051: fits 32 bits), nz-number, number64 (mod-sequence: 63 bits). */
int imap_arg_number(const struct imap_arg *a, uint32_t *n_r);
int imap_arg_nz_number(const struct imap_arg *a, uint32_t *n_r);
int imap_arg_number64(const struct imap_arg *a, uint64_t *n_r);
/* flag: "\" atom (a system flag or flag-extension) or a keyword atom ("\*" is for
 * PERMANENTFLAGS, never from a client). */
int imap_arg_flag(const struct imap_arg *a, const char **s_r);
/* list-mailbox: 1*list-char (atom chars, % *, ']') or a string. */
int imap_arg_list_mailbox(const struct imap_arg *a, const char **s_r, size_t *len_r);
/* A list whose elements are all atoms that are flags (STORE, APPEND). */
int imap_arg_flag_list(const struct imap_arg *a);
bool imap_arg_is_atom(const struct imap_arg *a, const char *word); /* case-insensitive */

#endif
