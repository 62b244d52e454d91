/* POP3 command table and line parser.  A parser: no I/O, so it is unit-tested with tables
 * and fuzzed (fuzz/fuzz_pop3_cmd.c).
 *
 * Grammar (RFC 1939 section 3, RFC 2449 section 4): a keyword of 3 or 4 letters,
 * case-insensitive, then arguments separated by spaces.  RFC 1939 says one space; we
 * accept one or more, and ignore trailing spaces, because clients in the wild differ and
 * nothing becomes ambiguous.  The exception is PASS, whose single argument is everything
 * after the first space: RFC 1939 section 7 lets the server treat spaces in it as part of
 * the password, and passwords do contain spaces. */
#include <string.h>
#include "base/plimits.h"
#include "base/log.h"
#include "pop3.h"
#include "base/util.h"

#define AUTHZ POP3_IN(POP3_AUTHORIZATION)
#define TRANS POP3_IN(POP3_TRANSACTION)
/* Without CRLF: POP3_MAX_CMD_LINE counts it. */
#define CMD_MAX (POP3_MAX_CMD_LINE - 2)
/* AUTH may carry an initial response longer than a command (RFC 5034 section 4 asks
 * clients to keep it under 255 octets, but not all do); a SASL line is bounded too. */
#define AUTH_LINE_MAX (SASL_MAX_LINE - 2)

static const struct pop3_cmd_def pop3_cmds[] = {
	/*  name    id              states          min max  rest  line_max */
	{ { "USER", POP3_CMD_USER, AUTHZ,          1, 1 }, false, CMD_MAX },
	{ { "PASS", POP3_CMD_PASS, AUTHZ,          1, 1 }, true,  CMD_MAX },
	{ { "APOP", POP3_CMD_APOP, AUTHZ,          2, 2 }, false, CMD_MAX },
	{ { "AUTH", POP3_CMD_AUTH, AUTHZ,          0, 2 }, false, AUTH_LINE_MAX },
	{ { "STLS", POP3_CMD_STLS, AUTHZ,          0, 0 }, false, CMD_MAX },
	{ { "CAPA", POP3_CMD_CAPA, AUTHZ | TRANS,  0, 0 }, false, CMD_MAX },
	{ { "QUIT", POP3_CMD_QUIT, AUTHZ | TRANS,  0, 0 }, false, CMD_MAX },
	{ { "STAT", POP3_CMD_STAT, TRANS,          0, 0 }, false, CMD_MAX },
	{ { "LIST", POP3_CMD_LIST, TRANS,          0, 1 }, false, CMD_MAX },
	{ { "RETR", POP3_CMD_RETR, TRANS,          1, 1 }, false, CMD_MAX },
	{ { "DELE", POP3_CMD_DELE, TRANS,          1, 1 }, false, CMD_MAX },
	{ { "NOOP", POP3_CMD_NOOP, TRANS,          0, 0 }, false, CMD_MAX },
	{ { "RSET", POP3_CMD_RSET, TRANS,          0, 0 }, false, CMD_MAX },
	{ { "TOP",  POP3_CMD_TOP,  TRANS,          2, 2 }, false, CMD_MAX },
	{ { "UIDL", POP3_CMD_UIDL, TRANS,          0, 1 }, false, CMD_MAX },
};

const struct pop3_cmd_def *pop3_cmd_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++)
		if (util_token_eq(name, len, pop3_cmds[i].loop.name))
			return &pop3_cmds[i];
	return NULL;
}

int pop3_parse(const char *line, size_t len, struct pop3_cmd *cmd)
{
	size_t i = 0;

	memset(cmd, 0, sizeof(*cmd));
	while (i < len && line[i] != ' ')
		i++;
	const struct pop3_cmd_def *def = pop3_cmd_lookup(line, i);
	if (len > (def != NULL ? def->line_max : CMD_MAX))
		return POP3_E_TOO_LONG;
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL ||
	    memchr(line, '\n', len) != NULL)
		return POP3_E_BAD_CHAR;
	if (def == NULL)
		return POP3_E_UNKNOWN;
	cmd->def = def;

	if (def->rest) {
		/* skip exactly one space; an empty rest is no argument */
		if (i < len && i + 1 < len) { /* BOUNDS: i < len <= line_max */
			cmd->args[0].p = line + i + 1;
			cmd->args[0].len = len - i - 1;
			cmd->nargs = 1;
		}
		return (int)def->loop.id;
	}
	for (;;) {
		while (i < len && line[i] == ' ')
			i++;
		if (i == len)
			break;
		size_t start = i;
		while (i < len && line[i] != ' ')
			i++;
		if (cmd->nargs < POP3_MAX_ARGS) {
			cmd->args[cmd->nargs].p = line + start;
			cmd->args[cmd->nargs].len = i - start;
		}
		cmd->nargs++; /* BOUNDS: at most len / 2 + 1 arguments */
	}
	return (int)def->loop.id;
}

int pop3_cmd_check(const struct pop3_cmd *cmd, enum pop3_state st)
{
	int r = cmdloop_check(cmd->def != NULL ? &cmd->def->loop : NULL, cmd->nargs,
			      (unsigned)st);
	/* POP3 answers a command of another state as an unknown one */
	return r == CMDLOOP_E_STATE ? POP3_E_UNKNOWN : r;
}

int pop3_parse_check(const char *line, size_t len, enum pop3_state st, struct pop3_cmd *cmd)
{
	int r = pop3_parse(line, len, cmd);
	if (r < 0)
		return r;
	int c = pop3_cmd_check(cmd, st);
	return c < 0 ? c : r;
}

int pop3_loop_parse(const char *line, size_t len, void *cmd, const struct cmdloop_def **def_r,
		    size_t *nargs_r)
{
	struct pop3_cmd *pc = cmd;
	int r = pop3_parse(line, len, pc);

	*def_r = pc->def != NULL ? &pc->def->loop : NULL;
	*nargs_r = pc->nargs;
	return r < 0 ? r : 0;
}

const char *pop3_error_text(int err)
{
	switch (err) {
	case CMDLOOP_E_SYNTAX:
		return "Syntax error";
	case CMDLOOP_E_TOO_LONG:
		return "Line too long.";
	case CMDLOOP_E_BAD_CHAR:
		return "Invalid characters in command.";
	case CMDLOOP_E_TOO_MANY:
		return "Too many bad commands.";
	case CMDLOOP_E_UNKNOWN:
	case CMDLOOP_E_STATE:   /* RFC 1939 has one answer for both */
	default:
		return "Unknown command";
	}
}

int pop3_parse_msgnum(const struct pop3_arg *a, uint32_t *r)
{
	uint64_t v;

	if (util_parse_uint(a->p, a->len, UINT32_MAX, &v) < 0)
		return -1;
	*r = (uint32_t)v;
	return 0;
}

int pop3_parse_lines(const struct pop3_arg *a, uint64_t *r)
{
	return util_parse_uint(a->p, a->len, UINT64_MAX, r);
}

const char *pop3_state_name(enum pop3_state st)
{
	switch (st) {
	case POP3_AUTHORIZATION:
		return "AUTHORIZATION";
	case POP3_TRANSACTION:
		return "TRANSACTION";
	case POP3_UPDATE:
		return "UPDATE";
	}
	return "?";
}

void pop3_set_state(enum pop3_state *cur, enum pop3_state next)
{
	log_debug("pop3-state: from=%s, to=%s", pop3_state_name(*cur), pop3_state_name(next));
	*cur = next;
}
