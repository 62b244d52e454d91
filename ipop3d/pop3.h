/* ipop3d: the POP3 protocol (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).
 *
 *   pop3_cmd.c       command table and line parser (no I/O), state names
 *   pop3_reply.c     the one function that writes replies (pop3_reply())
 *   pop3_prelogin.c  AUTHORIZATION state, in the unprivileged worker
 *   pop3_session.c   TRANSACTION and UPDATE states, as the mail user
 *   main.c           options, struct server_proto, server_run() */
#ifndef POSTERN_POP3_H
#define POSTERN_POP3_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/cmdloop.h"
#include "base/plimits.h"
#include "privsep/server.h"

#define POP3_GREETING_TEXT "postern POP3 server ready"

enum pop3_state { POP3_AUTHORIZATION, POP3_TRANSACTION, POP3_UPDATE };
#define POP3_IN(st) CMDLOOP_IN(st)

enum pop3_cmd_id {
	POP3_CMD_USER, POP3_CMD_PASS, POP3_CMD_APOP, POP3_CMD_AUTH, POP3_CMD_STLS,
	POP3_CMD_CAPA, POP3_CMD_QUIT, POP3_CMD_STAT, POP3_CMD_LIST, POP3_CMD_RETR,
	POP3_CMD_DELE, POP3_CMD_NOOP, POP3_CMD_RSET, POP3_CMD_TOP, POP3_CMD_UIDL,
	POP3_CMD_COUNT
};

/* Negative results of pop3_parse() / pop3_cmd_check(): the command loop's. */
enum pop3_parse_error {
	POP3_E_UNKNOWN = CMDLOOP_E_UNKNOWN,   /* no such command, or not in this state */
	POP3_E_SYNTAX = CMDLOOP_E_SYNTAX,     /* wrong number of arguments */
	POP3_E_TOO_LONG = CMDLOOP_E_TOO_LONG, /* longer than the command allows: reply and
	                                         disconnect */
	POP3_E_BAD_CHAR = CMDLOOP_E_BAD_CHAR, /* NUL, CR or LF inside the line */
};

struct pop3_cmd_def {
	struct cmdloop_def loop; /* name, id, states (POP3_IN bits), min and max args */
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
/* The command loop's parse hook: pop3_parse() into a struct pop3_cmd. */
int pop3_loop_parse(const char *line, size_t len, void *cmd, const struct cmdloop_def **def_r,
		    size_t *nargs_r);
/* The text of the -ERR reply to bad input (a cmdloop_error). */
const char *pop3_error_text(int err);
/* A message number: strict decimal, 1..UINT32_MAX (range against the mailbox is the
 * caller's).  0 or -1. */
int pop3_parse_msgnum(const struct pop3_arg *a, uint32_t *r);
/* TOP's line count: strict decimal, 0..UINT64_MAX.  0 or -1. */
int pop3_parse_lines(const struct pop3_arg *a, uint64_t *r);

const char *pop3_state_name(enum pop3_state st);
/* The only place a state changes; logs both names at debug level. */
void pop3_set_state(enum pop3_state *cur, enum pop3_state next);

/* What a command handler tells the command loop (STYLE.md's R_OK, ... renamed: <unistd.h>
 * owns R_OK).  Every handler writes its own reply (success or -ERR) before it returns,
 * except for RES_LOGIN. */
enum pop3_result {
	RES_OK = CMDLOOP_OK,     /* done; the bad-command count starts over */
	RES_ERR = CMDLOOP_ERR,   /* a well-formed command failed (no such message, ...) */
	RES_BAD = CMDLOOP_BAD,   /* a malformed argument: counts as a bad command */
	RES_QUIT = CMDLOOP_STOP, /* QUIT answered: the client is done */
	RES_DROP,                /* close the connection now (the reply, if any, is written) */
	RES_LOGIN,               /* prelogin only: worker_login() said LOGIN_OK; write nothing
	                            more */
};

/* pop3_reply.c: every reply line ipop3d writes, but message bodies, goes through
 * pop3_reply(): "+OK text", "-ERR [CODE] text" (RFC 2449 / RFC 3206 response codes),
 * "+ challenge" (RFC 5034), a line of a multi-line response (dot-stuffed) and its
 * final ".".  fmt may be NULL (no text: "+OK" alone). */
enum pop3_reply_kind { POP3_OK, POP3_ERR, POP3_CONT, POP3_DATA, POP3_END };
enum pop3_code {
	POP3_CODE_NONE,
	POP3_CODE_AUTH,        /* [AUTH]: the credentials are wrong (RFC 3206) */
	POP3_CODE_SYS_TEMP,    /* [SYS/TEMP]: our trouble, try again later (RFC 3206) */
	POP3_CODE_SYS_PERM,    /* [SYS/PERM]: our refusal, do not retry (RFC 3206) */
	POP3_CODE_IN_USE,      /* [IN-USE]: another session holds the mailbox (RFC 2449) */
};
void pop3_reply(struct conn *c, enum pop3_reply_kind kind, enum pop3_code code,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The command loop's reply_error hook, for both processes. */
void pop3_reply_error(struct cmdloop *l, int err, const void *cmd);

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
