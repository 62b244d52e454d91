/* Reading IMAP commands and writing responses, for both processes (the worker before
 * login, the session after).
 *
 * cmdloop_run() makes a command of one line; an IMAP command spans lines and literals,
 * with I/O between them ("+" for a synchronizing literal, the APPEND message streamed to
 * storage), so imapd drives the imap library's parser itself and takes from cmdloop the
 * line reader (cmdloop_line(): EOF, timeout, bad bytes and over-long lines handled and
 * logged as `bad-input` the way every daemon does) and the same counting of bad commands:
 * MAX_BAD_COMMANDS in a row end the connection with BYE.
 *
 * Every response line is formed by common/imap/imap_write.c: text that is not ours is
 * sanitised, strings are quoted or sent as literals, so nothing a client or a message
 * supplies can end a response line early. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "base/linebuf.h"
#include "base/log.h"
#include "imap.h"

static void reply_error(struct cmdloop *l, int err, const void *cmd)
{
	struct imapc *ic = l->ctx;

	switch (err) {
	case CMDLOOP_E_TOO_LONG:
		imapc_untagged(ic, "BYE", "TOOBIG", "Line too long.");
		break;
	case CMDLOOP_E_TOO_MANY:
		imapc_untagged(ic, "BYE", NULL, "Too many invalid commands.");
		break;
	case CMDLOOP_E_BAD_CHAR:
		imapc_untagged(ic, "BAD", NULL, "Invalid characters in command.");
		break;
	default:
		imapc_untagged(ic, "BAD", NULL, "Invalid command.");
		break;
	}
}

static unsigned no_state(const struct cmdloop *l)
{
	return 0;
}

static const struct cmdloop_ops loop_ops = {
	.parse = NULL,   /* imapd parses with the imap library; only cmdloop_line() is used */
	.state = no_state,
	.reply_error = reply_error,
};

void imapc_init(struct imapc *ic, struct conn *c, const struct imap_parser_settings *set,
		const char *rip, const char *log_user)
{
	memset(ic, 0, sizeof(*ic));
	ic->c = c;
	ic->set = *set;
	ic->parser = imap_parser_new(set);
	imap_buf_init(&ic->out, IMAP_OUT_MAX);
	ic->loop = (struct cmdloop){
		.c = c, .ops = &loop_ops, .ctx = ic, .max_bad = MAX_BAD_COMMANDS,
		.log_user = log_user, .rip = rip,
	};
}

void imapc_free(struct imapc *ic)
{
	imap_parser_free(&ic->parser);
	imap_buf_free(&ic->out);
}

void imapc_settings(struct imapc *ic, const struct imap_parser_settings *set,
		    size_t line_max)
{
	ic->set = *set;
	imap_parser_set(ic->parser, set);
	conn_set_line_max(ic->c, line_max);
}

int imapc_send_buf(struct imapc *ic)
{
	int r = 0;

	if (ic->out.overflow)
		r = -1;
	else if (conn_write(ic->c, ic->out.data, ic->out.len) < 0)
		r = -1;
	imap_buf_reset(&ic->out);
	return r;
}

static void vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	if (fmt == NULL) {
		buf[0] = '\0';
		return;
	}
	vsnprintf(buf, size, fmt, ap);   /* BOUNDS: cut at size; text only */
}

void imapc_tagged(struct imapc *ic, const char *tag, const char *status, const char *code,
		  const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vformat(text, sizeof(text), fmt, ap);
	va_end(ap);
	imap_write_tagged(&ic->out, tag != NULL ? tag : "*", status, code, text, ic->wflags);
	imapc_send_buf(ic);
}

void imapc_untagged(struct imapc *ic, const char *status, const char *code,
		    const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vformat(text, sizeof(text), fmt, ap);
	va_end(ap);
	imap_write_untagged(&ic->out, status, code, text, ic->wflags);
	imapc_send_buf(ic);
}

void imapc_data(struct imapc *ic, const char *fmt, ...)
{
	char line[4096];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;   /* BOUNDS: our own lines of numbers and flags are far shorter */
	conn_write(ic->c, "* ", 2);
	conn_write(ic->c, line, (size_t)n);
	conn_write(ic->c, "\r\n", 2);
}

int imapc_continue(struct imapc *ic, const char *text)
{
	imap_write_continue(&ic->out, text, ic->wflags);
	if (imapc_send_buf(ic) < 0)
		return -1;
	return conn_flush(ic->c);
}

int imapc_count_bad(struct imapc *ic)
{
	if (++ic->loop.bad < ic->loop.max_bad)
		return 1;
	reply_error(&ic->loop, CMDLOOP_E_TOO_MANY, NULL);
	log_info("bad-input: %sreason=too-many-errors, rip=%s",
		 ic->loop.log_user != NULL ? ic->loop.log_user : "",
		 ic->loop.rip != NULL ? ic->loop.rip : "unknown");
	ic->reason = "too-many-errors";
	return 0;
}

void imapc_count_good(struct imapc *ic)
{
	ic->loop.bad = 0;
}

ssize_t imapc_read_raw(struct imapc *ic, void *buf, size_t n)
{
	/* a client that waits for nothing still gets what we owe it */
	if (!conn_has_input(ic->c) && conn_flush(ic->c) < 0)
		return -1;
	errno = 0;
	ssize_t r = conn_read(ic->c, buf, n);
	if (r <= 0)
		ic->reason = r == 0 ? "eof" : errno == ETIMEDOUT ? "timeout" :
			errno == EBADMSG ? "compression-error" : "error";
	return r;
}

/* The next line into the parser: 1, or 0 when the input ended (reason set), -1 a line
 * with bad bytes (answered: the command is bad). */
static int next_line(struct imapc *ic, int *res_r)
{
	const char *line;
	size_t len;
	int r = cmdloop_line(&ic->loop, &line, &len);

	if (r == 0) {
		ic->reason = ic->loop.reason;
		return 0;
	}
	if (r < 0)
		return -1;
	*res_r = imap_parser_feed_line(ic->parser, line, len);
	return 1;
}

/* Feed (or drop) the literal the parser asked for.  1, or 0 when the input ended. */
static int take_literal(struct imapc *ic)
{
	char buf[IO_CHUNK];

	while (imap_parser_literal_left(ic->parser) > 0) {
		uint64_t left = imap_parser_literal_left(ic->parser);
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = imapc_read_raw(ic, buf, want);
		if (n <= 0)
			return 0;
		imap_parser_feed_literal(ic->parser, buf, (size_t)n);
	}
	return 1;
}

/* Drive the parser from result r until the command is complete, bad, or streams. */
static int drive(struct imapc *ic, int r)
{
	for (;;) {
		const struct imap_parser_need *need;
		const char *code, *msg;
		bool no;
		int lr;

		switch (r) {
		case IMAP_PARSE_DONE:
			return IMAPC_CMD;
		case IMAP_PARSE_STREAM:
			return IMAPC_STREAM;
		case IMAP_PARSE_LITERAL:
		case IMAP_PARSE_SKIP:
			need = imap_parser_need(ic->parser);
			if (r == IMAP_PARSE_LITERAL && need->sync &&
			    imapc_continue(ic, "Ready for literal data") < 0) {
				ic->reason = "error";
				return IMAPC_END;
			}
			if (!take_literal(ic))
				return IMAPC_END;
			lr = next_line(ic, &r);
			if (lr == 0)
				return IMAPC_END;
			if (lr < 0)
				return imapc_count_bad(ic) ? IMAPC_BADCMD : IMAPC_END;
			break;
		case IMAP_PARSE_CLOSE:
			msg = imap_parser_error(ic->parser, &code, &no);
			imapc_untagged(ic, "BYE", code, "%s", msg);
			log_info("bad-input: %sreason=unrecoverable, rip=%s",
				 ic->loop.log_user != NULL ? ic->loop.log_user : "",
				 ic->loop.rip != NULL ? ic->loop.rip : "unknown");
			ic->reason = "protocol-error";
			return IMAPC_END;
		case IMAP_PARSE_BAD:
		default:
			msg = imap_parser_error(ic->parser, &code, &no);
			imapc_tagged(ic, imap_parser_tag(ic->parser), no ? "NO" : "BAD", code,
				     "%s", msg);
			if (no)
				return IMAPC_BADCMD;   /* APPENDLIMIT: a refusal, not bad input */
			return imapc_count_bad(ic) ? IMAPC_BADCMD : IMAPC_END;
		}
	}
}

int imapc_read(struct imapc *ic)
{
	int r = IMAP_PARSE_BAD;

	if (ic->c->failed) {
		ic->reason = "error";
		return IMAPC_END;
	}
	imap_parser_begin(ic->parser);
	int lr = next_line(ic, &r);
	if (lr == 0)
		return IMAPC_END;
	if (lr < 0)
		return imapc_count_bad(ic) ? IMAPC_BADCMD : IMAPC_END;
	return drive(ic, r);
}

int imapc_streamed(struct imapc *ic)
{
	int r = IMAP_PARSE_BAD;

	imap_parser_streamed(ic->parser);
	int lr = next_line(ic, &r);
	if (lr == 0)
		return IMAPC_END;
	if (lr < 0)
		return imapc_count_bad(ic) ? IMAPC_BADCMD : IMAPC_END;
	return drive(ic, r);
}
