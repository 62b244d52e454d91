/* ipop3d: the POP3 protocol (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).
 *
 *   pop3_cmd.c       command table and line parser (no I/O), state names
 *   pop3_prelogin.c  AUTHORIZATION state, in the unprivileged worker
 *   pop3_session.c   TRANSACTION and UPDATE states, as the mail user
 *   main.c           options, struct server_proto, server_run() */
#ifndef POSTERN_POP3_H
#define POSTERN_POP3_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"
#include "privsep/server.h"

#define POP3_GREETING "+OK postern POP3 server ready"

enum pop3_state { POP3_AUTHORIZATION, POP3_TRANSACTION, POP3_UPDATE };
#define POP3_IN(st) (1u << (st))

enum pop3_cmd_id {
	POP3_CMD_USER, POP3_CMD_PASS, POP3_CMD_APOP, POP3_CMD_AUTH, POP3_CMD_STLS,
	POP3_CMD_CAPA, POP3_CMD_QUIT, POP3_CMD_STAT, POP3_CMD_LIST, POP3_CMD_RETR,
	POP3_CMD_DELE, POP3_CMD_NOOP, POP3_CMD_RSET, POP3_CMD_TOP, POP3_CMD_UIDL,
	POP3_CMD_COUNT
};

/* Negative results of pop3_parse() / pop3_cmd_check(). */
enum pop3_parse_error {
	POP3_E_UNKNOWN = -1,   /* no such command, or not in this state */
	POP3_E_SYNTAX = -2,    /* wrong number of arguments */
	POP3_E_TOO_LONG = -3,  /* longer than the command allows: reply and disconnect */
	POP3_E_BAD_CHAR = -4,  /* NUL, CR or LF inside the line */
};

struct pop3_cmd_def {
	const char *name;
	enum pop3_cmd_id id;
	unsigned states;       /* POP3_IN(state) bits */
	unsigned min_args, max_args;
	bool rest;             /* the one argument is the rest of the line, spaces and all
	                          (RFC 1939 PASS) */
	size_t line_max;       /* longest line without its CRLF */
};

#define POP3_MAX_ARGS 2
struct pop3_arg {
	const char *p;         /* points into the line; not NUL-terminated */
	size_t len;
};

struct pop3_cmd {
	const struct pop3_cmd_def *def;
	size_t nargs;          /* arguments seen; only the first POP3_MAX_ARGS are kept */
	struct pop3_arg args[POP3_MAX_ARGS];
};

/* The command table (exposed for tests). */
const struct pop3_cmd_def *pop3_cmd_lookup(const char *name, size_t len);
/* Split one line (without CRLF) into a command and its arguments.  Case-insensitive
 * command name, arguments separated by one or more spaces.  Returns the command id (>= 0)
 * or a negative enum pop3_parse_error.  No I/O. */
int pop3_parse(const char *line, size_t len, struct pop3_cmd *cmd);
/* May this command run in this state with these arguments?  0, POP3_E_UNKNOWN or
 * POP3_E_SYNTAX.  The state is checked before the argument count. */
int pop3_cmd_check(const struct pop3_cmd *cmd, enum pop3_state st);
/* Both of the above. */
int pop3_parse_check(const char *line, size_t len, enum pop3_state st, struct pop3_cmd *cmd);
/* The -ERR reply line (without CRLF) for a negative parse result. */
const char *pop3_error_reply(int err);
/* A message number: strict decimal, 1..UINT32_MAX (range against the mailbox is the
 * caller's).  0 or -1. */
int pop3_parse_msgnum(const struct pop3_arg *a, uint32_t *r);
/* TOP's line count: strict decimal, 0..UINT64_MAX.  0 or -1. */
int pop3_parse_lines(const struct pop3_arg *a, uint64_t *r);

const char *pop3_state_name(enum pop3_state st);
/* The only place a state changes; logs both names at debug level. */
void pop3_set_state(enum pop3_state *cur, enum pop3_state next);

/* What a command handler tells its dispatcher (STYLE.md's R_OK, ... renamed: <unistd.h>
 * owns R_OK).  Every handler writes its own reply (success or -ERR) before it returns,
 * except for RES_LOGIN. */
enum pop3_result {
	RES_OK,     /* done; the bad-command count starts over */
	RES_ERR,    /* a well-formed command failed (no such message, ...) */
	RES_BAD,    /* a malformed argument: counts as a bad command */
	RES_QUIT,   /* QUIT answered: the client is done */
	RES_DROP,   /* close the connection now (the reply, if any, is written) */
	RES_LOGIN,  /* prelogin only: worker_login() said LOGIN_OK; write nothing more */
};

/* pop3_input.c: client input for both states, with every kind of bad input handled the
 * same way (answered, logged as bad-input, counted; the connection ends after
 * MAX_BAD_COMMANDS in a row or an over-long line). */
struct pop3_input {
	struct conn *c;
	unsigned handled;          /* bit (1 << id): commands this process implements */
	unsigned bad;              /* bad commands in a row */
	const char *log_user;      /* "" or "user=<name>, " for the bad-input log line */
	const char *rip;
	const char *reason;        /* why the input ended (log) */
};
/* One line: 1 a line, -1 a line with bad bytes (answered and logged; the caller counts
 * it with pop3_input_result(RES_BAD)), 0 the connection ends (in->reason). */
int pop3_input_line(struct pop3_input *in, const char **line_r, size_t *len_r);
/* The next command this process handles in state st: 1, or 0 when the connection ends
 * (in->reason).  Unknown, malformed and misplaced commands are answered here. */
int pop3_input_command(struct pop3_input *in, enum pop3_state st, struct pop3_cmd *cmd);
/* Count a handler's result: RES_BAD counts, anything else starts over.  0 when that was
 * the last bad command allowed (answered; in->reason set), else 1. */
int pop3_input_result(struct pop3_input *in, enum pop3_result res);

/* pop3_prelogin.c: the AUTHORIZATION state.  pop3_prelogin() is the server_proto hook;
 * pop3_prelogin_run() takes the two framework calls as parameters so that tests and the
 * fuzz target can run the state machine without a monitor. */
struct pop3_login_ops {
	enum server_login (*login)(struct server_worker *w, const char *method,
				   const char *user, char *pass);
	int (*starttls)(struct server_worker *w);
};
int pop3_prelogin(struct server_worker *w);
int pop3_prelogin_run(struct server_worker *w, const struct pop3_login_ops *ops);
void pop3_prelogin_refuse(struct conn *c, enum server_refusal why);

/* pop3_session.c: TRANSACTION and UPDATE.  Returns the exit status. */
int pop3_session(struct server_session *s);

#endif
