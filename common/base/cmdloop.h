/* One command loop for every daemon: read a line through the conn, let the daemon's
 * parser (no I/O) make a command of it, check the command's state and argument count
 * against its table row, and call its handler.  Bad input is treated the same way
 * everywhere: answered (in the daemon's words, through its reply_error hook), logged as
 * `bad-input`, counted, and the connection closed after max_bad bad commands in a row;
 * a line longer than allowed is answered and closes the connection at once (STYLE.md:
 * never resync in the middle of a line).
 *
 * The loop writes nothing itself: POP3's "-ERR", IMAP's tagged "tag BAD" and SMTP's
 * multi-line "500-" replies are all the daemon's hook, which also gets the parser's
 * output (an IMAP tag) when a line got that far. */
#ifndef POSTERN_CMDLOOP_H
#define POSTERN_CMDLOOP_H
#include <stdbool.h>
#include <stddef.h>
#include "base/conn.h"

/* The part of a daemon's command-table row that the loop reads.  A daemon puts it first
 * in its own row type, with whatever its parser needs besides. */
struct cmdloop_def {
	const char *name;
	unsigned id;            /* index into the handler table */
	unsigned states;        /* CMDLOOP_IN(state) for each state it may run in */
	unsigned min_args, max_args;
};
#define CMDLOOP_IN(st) (1u << (st))

/* Bad input, as the reply hook and the parser name it (negative). */
enum cmdloop_error {
	CMDLOOP_E_UNKNOWN = -1,   /* no such command, or none this process runs */
	CMDLOOP_E_SYNTAX = -2,    /* wrong number of arguments, or malformed for the parser */
	CMDLOOP_E_TOO_LONG = -3,  /* longer than allowed: answered, then the connection ends */
	CMDLOOP_E_BAD_CHAR = -4,  /* NUL, CR or LF inside the line */
	CMDLOOP_E_STATE = -5,     /* a known command, not allowed in this state */
	CMDLOOP_E_TOO_MANY = -6,  /* reply only: that was the last bad command allowed */
};

/* What a handler returns.  Values from CMDLOOP_STOP up end the loop and are returned by
 * cmdloop_run() as they are (a daemon's QUIT, drop, login...). */
enum cmdloop_result {
	CMDLOOP_OK = 0,         /* done: the bad-command count starts over */
	CMDLOOP_ERR = 1,        /* a well-formed command failed: starts over too */
	CMDLOOP_BAD = 2,        /* a malformed argument: counts as a bad command */
	CMDLOOP_STOP = 3,
};
/* cmdloop_run(): the input ended (EOF, timeout, error, too long, too many bad). */
#define CMDLOOP_END (-1)

struct cmdloop;
typedef int cmdloop_handler(void *ctx, const void *cmd);

struct cmdloop_ops {
	/* Make a command of one line (without CRLF; NUL-terminated at len) into cmd: 0 with
	 * *def_r and *nargs_r set, or a negative cmdloop_error (*def_r may be set for a
	 * known command).  No I/O. */
	int (*parse)(const char *line, size_t len, void *cmd, const struct cmdloop_def **def_r,
		     size_t *nargs_r);
	/* The current state, 0 to 31. */
	unsigned (*state)(const struct cmdloop *l);
	/* Answer bad input (err: a cmdloop_error).  cmd: the parser's output for this line
	 * if it parsed one, else NULL. */
	void (*reply_error)(struct cmdloop *l, int err, const void *cmd);
};

struct cmdloop {
	struct conn *c;
	const struct cmdloop_ops *ops;
	void *ctx;                        /* the daemon's; handed to handlers */
	void *cmd;                        /* where parse() writes; handed to handlers */
	cmdloop_handler *const *handlers; /* by cmdloop_def.id; NULL: not in this process */
	size_t nhandlers;
	unsigned max_bad;                 /* bad commands in a row before the end (>= 1) */
	const char *log_user;             /* "" or "user=<name>, " for the bad-input line */
	const char *rip;
	/* out */
	unsigned bad;                     /* bad commands in a row so far */
	const char *reason;               /* why the input ended (log) */
};

/* Commands until a handler returns CMDLOOP_STOP or more (returned) or the input ends
 * (CMDLOOP_END, l->reason says why). */
int cmdloop_run(struct cmdloop *l);
/* One more line for a handler that reads on (a SASL response): 1 a line, -1 a line with
 * bad bytes (answered and logged: the handler returns CMDLOOP_BAD), 0 the input ended
 * (l->reason). */
int cmdloop_line(struct cmdloop *l, const char **line_r, size_t *len_r);
/* May a command with this row and nargs arguments run in state st?  0, or
 * CMDLOOP_E_UNKNOWN (no row), CMDLOOP_E_STATE, CMDLOOP_E_SYNTAX, in that order. */
int cmdloop_check(const struct cmdloop_def *def, size_t nargs, unsigned st);

#endif
