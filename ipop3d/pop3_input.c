/* Client input for both POP3 processes (the worker's AUTHORIZATION state and the
 * session's TRANSACTION state): one place that reads a line, parses it against the state,
 * and treats bad input the same way everywhere — answer, log `bad-input`, count, and
 * close after MAX_BAD_COMMANDS in a row or at once for an over-long line (STYLE.md:
 * never resync in the middle of a line). */
#include <errno.h>
#include "base/log.h"
#include "pop3.h"

static void input_bad(struct pop3_input *in, const char *reason)
{
	log_info("bad-input: %sreason=%s, rip=%s", in->log_user, reason,
		 in->rip != NULL ? in->rip : "unknown");
}

static void input_reply(struct pop3_input *in, int err)
{
	conn_printf(in->c, "%s\r\n", pop3_error_reply(err));
}

int pop3_input_line(struct pop3_input *in, const char **line_r, size_t *len_r)
{
	if (in->c->failed) {
		in->reason = "error";   /* a write failed: the client is gone */
		return 0;
	}
	/* conn_read_line() flushes our replies before it waits for input, and not while
	 * pipelined commands are still buffered */
	errno = 0;
	int r = conn_read_line(in->c, line_r, len_r);
	if (r == 0 || r == -1) {
		in->reason = r == 0 ? "eof" : errno == ETIMEDOUT ? "timeout" : "error";
		return 0;
	}
	if (r == LINEBUF_TOO_LONG) {
		input_reply(in, POP3_E_TOO_LONG);
		input_bad(in, "line-too-long");
		in->reason = "line-too-long";
		return 0;
	}
	if (r == LINEBUF_BAD_BYTE) {
		input_reply(in, POP3_E_BAD_CHAR);
		input_bad(in, "bad-bytes");
		return -1;
	}
	return 1;
}

int pop3_input_result(struct pop3_input *in, enum pop3_result res)
{
	if (res != RES_BAD) {
		in->bad = 0;
		return 1;
	}
	if (++in->bad < MAX_BAD_COMMANDS)
		return 1;
	conn_printf(in->c, "-ERR Too many bad commands.\r\n");
	input_bad(in, "too-many-errors");
	in->reason = "too-many-errors";
	return 0;
}

int pop3_input_command(struct pop3_input *in, enum pop3_state st, struct pop3_cmd *cmd)
{
	for (;;) {
		const char *line;
		size_t len;
		int r = pop3_input_line(in, &line, &len);
		if (r == 0)
			return 0;
		int id = r < 0 ? POP3_E_BAD_CHAR : pop3_parse_check(line, len, st, cmd);
		if (id >= 0 && (in->handled & (1u << id)) == 0)
			id = POP3_E_UNKNOWN;   /* the table allows it in this state, we do not */
		if (id >= 0)
			return 1;
		if (id == POP3_E_TOO_LONG) {
			input_reply(in, id);
			input_bad(in, "line-too-long");
			in->reason = "line-too-long";
			return 0;
		}
		if (r > 0) {
			input_reply(in, id);
			if (id == POP3_E_BAD_CHAR)
				input_bad(in, "bad-bytes");
		}
		if (pop3_input_result(in, RES_BAD) == 0)
			return 0;
	}
}
