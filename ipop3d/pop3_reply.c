/* The one function that formats and writes ipop3d's replies (STYLE.md: one function
 * writes the replies), and the command loop's hook for bad input, which uses it.
 *
 *   POP3_OK    "+OK" or "+OK text"
 *   POP3_ERR   "-ERR text" or "-ERR [CODE] text" (RFC 2449 section 8, RFC 3206)
 *   POP3_CONT  "+ challenge" (RFC 5034: the space is there even for an empty one)
 *   POP3_DATA  a line of a multi-line response, dot-stuffed (RFC 1939 section 3)
 *   POP3_END   "." that ends a multi-line response
 *
 * Message bodies are the only other output: they stream through the CRLF and
 * dot-stuffing converter (common/mail/crlf.c) in pop3_session.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "base/log.h"
#include "pop3.h"

static const char *code_text(enum pop3_code code)
{
	switch (code) {
	case POP3_CODE_AUTH:
		return " [AUTH]";
	case POP3_CODE_SYS_TEMP:
		return " [SYS/TEMP]";
	case POP3_CODE_SYS_PERM:
		return " [SYS/PERM]";
	case POP3_CODE_IN_USE:
		return " [IN-USE]";
	case POP3_CODE_NONE:
	default:
		return "";
	}
}

void pop3_reply(struct conn *c, enum pop3_reply_kind kind, enum pop3_code code,
		const char *fmt, ...)
{
	/* RFC 2449: a response line is at most 512 octets with its CRLF.  The text gets
	 * what the longest lead and code ("-ERR [SYS/TEMP] ", 16) leave; ours are short,
	 * and one that is not is cut (logged: it is our bug, not the client's). */
	char text[POP3_MAX_REPLY_LINE - 2 - 16];
	const char *lead = "", *sep = "";

	text[0] = '\0';
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
		if (n < 0)
			text[0] = '\0';
		else if ((size_t)n >= sizeof(text))
			log_warn("reply-truncated: length=%d", n);
	}
	switch (kind) {
	case POP3_OK:
		lead = "+OK";
		sep = text[0] != '\0' ? " " : "";
		break;
	case POP3_ERR:
		lead = "-ERR";
		sep = " ";
		break;
	case POP3_CONT:
		lead = "+";
		sep = " ";
		break;
	case POP3_DATA:
		lead = text[0] == '.' ? "." : "";
		code = POP3_CODE_NONE;
		break;
	case POP3_END:
		lead = ".";
		code = POP3_CODE_NONE;
		text[0] = '\0';
		break;
	}
	const char *parts[] = { lead, code_text(code), sep, text, "\r\n" };
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		conn_write(c, parts[i], strlen(parts[i]));
}

void pop3_reply_error(struct cmdloop *l, int err, const void *cmd)
{
	pop3_reply(l->c, POP3_ERR, POP3_CODE_NONE, "%s", pop3_error_text(err));
}
