/* The command loop (cmdloop.h): every daemon's reading, checking, dispatching and
 * counting of bad input, in one place. */
#include <errno.h>
#include "base/cmdloop.h"
#include "base/linebuf.h"
#include "base/log.h"

static void bad_input(const struct cmdloop *l, const char *reason)
{
	log_info("bad-input: %sreason=%s, rip=%s", l->log_user != NULL ? l->log_user : "",
		 reason, l->rip != NULL ? l->rip : "unknown");
}

/* A line too long: answered, logged, and the end (never resync inside a line). */
static int too_long(struct cmdloop *l, const void *cmd)
{
	l->ops->reply_error(l, CMDLOOP_E_TOO_LONG, cmd);
	bad_input(l, "line-too-long");
	l->reason = "line-too-long";
	return 0;
}

int cmdloop_line(struct cmdloop *l, const char **line_r, size_t *len_r)
{
	if (l->c->failed) {
		l->reason = "error";   /* a write failed: the client is gone */
		return 0;
	}
	/* conn_read_line() flushes our replies before it waits for input, and not while
	 * pipelined commands are still buffered */
	errno = 0;
	int r = conn_read_line(l->c, line_r, len_r);
	if (r == 0 || r == -1) {
		l->reason = r == 0 ? "eof" : errno == ETIMEDOUT ? "timeout" :
			errno == EBADMSG ? "compression-error" : "error";
		return 0;
	}
	if (r == LINEBUF_TOO_LONG)
		return too_long(l, NULL);
	if (r == LINEBUF_BAD_BYTE) {
		l->ops->reply_error(l, CMDLOOP_E_BAD_CHAR, NULL);
		bad_input(l, "bad-bytes");
		return -1;
	}
	return 1;
}

int cmdloop_check(const struct cmdloop_def *def, size_t nargs, unsigned st)
{
	if (def == NULL)
		return CMDLOOP_E_UNKNOWN;
	if (st >= 32 || (def->states & CMDLOOP_IN(st)) == 0)
		return CMDLOOP_E_STATE;
	if (nargs < def->min_args || nargs > def->max_args)
		return CMDLOOP_E_SYNTAX;
	return 0;
}

/* Count a result: a bad one counts, anything else starts over.  0 when that was the
 * last bad command allowed (answered; l->reason set), else 1. */
static int count(struct cmdloop *l, int res)
{
	if (res != CMDLOOP_BAD) {
		l->bad = 0;
		return 1;
	}
	if (++l->bad < l->max_bad)
		return 1;
	l->ops->reply_error(l, CMDLOOP_E_TOO_MANY, NULL);
	bad_input(l, "too-many-errors");
	l->reason = "too-many-errors";
	return 0;
}

/* The next command this process runs in its current state: 1 with *def_r, or 0 when
 * the input ends.  Everything else is answered and counted here. */
static int next_command(struct cmdloop *l, const struct cmdloop_def **def_r)
{
	for (;;) {
		const struct cmdloop_def *def = NULL;
		const char *line;
		size_t len, nargs = 0;
		int r = cmdloop_line(l, &line, &len);
		if (r == 0)
			return 0;
		int err = r < 0 ? CMDLOOP_E_BAD_CHAR :
			l->ops->parse(line, len, l->cmd, &def, &nargs);
		if (err == 0)
			err = cmdloop_check(def, nargs, l->ops->state(l));
		if (err == 0 && (def->id >= l->nhandlers || l->handlers[def->id] == NULL))
			err = CMDLOOP_E_UNKNOWN;   /* the table allows it here, this process not */
		if (err == 0) {
			*def_r = def;
			return 1;
		}
		if (err == CMDLOOP_E_TOO_LONG)
			return too_long(l, l->cmd);
		if (r > 0) {
			l->ops->reply_error(l, err, l->cmd);
			if (err == CMDLOOP_E_BAD_CHAR)
				bad_input(l, "bad-bytes");
		}
		if (count(l, CMDLOOP_BAD) == 0)
			return 0;
	}
}

int cmdloop_run(struct cmdloop *l)
{
	for (;;) {
		const struct cmdloop_def *def;

		if (next_command(l, &def) == 0)
			return CMDLOOP_END;
		int res = l->handlers[def->id](l->ctx, l->cmd);
		if (res >= CMDLOOP_STOP)
			return res;
		if (count(l, res) == 0)
			return CMDLOOP_END;
	}
}
