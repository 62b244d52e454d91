/* libFuzzer: the POP3 command parser (ipop3d/pop3_cmd.c).  The input is split at LF into
 * lines as the line reader would; each is parsed and checked in every state, and the
 * result is checked for consistency: arguments lie inside the line, counts match the
 * table, and the strict number parsers agree with a reference. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "pop3.h"

static void check_one(const char *line, size_t len)
{
	struct pop3_cmd cmd;
	int id = pop3_parse(line, len, &cmd);

	if (id < 0) {
		if (id < POP3_E_BAD_CHAR)
			abort();
		if (pop3_error_text(id) == NULL)
			abort();
		return;
	}
	if (cmd.def == NULL || (int)cmd.def->loop.id != id || id >= POP3_CMD_COUNT)
		abort();
	if (len > cmd.def->line_max)
		abort();
	for (size_t i = 0; i < cmd.nargs && i < POP3_MAX_ARGS; i++) {
		const struct pop3_arg *a = &cmd.args[i];
		if (a->p < line || a->p + a->len > line + len)
			abort();
		if (!cmd.def->rest && (a->len == 0 || memchr(a->p, ' ', a->len) != NULL))
			abort();
		uint32_t n;
		if (pop3_parse_msgnum(a, &n) == 0) {
			/* digits only, value fits */
			for (size_t k = 0; k < a->len; k++)
				if (a->p[k] < '0' || a->p[k] > '9')
					abort();
		}
		uint64_t v;
		(void)pop3_parse_lines(a, &v);
	}
	for (int st = POP3_AUTHORIZATION; st <= POP3_UPDATE; st++) {
		int c = pop3_cmd_check(&cmd, (enum pop3_state)st);
		if (c == 0 && (cmd.nargs < cmd.def->loop.min_args || cmd.nargs > cmd.def->loop.max_args))
			abort();
		if (c == 0 && st == POP3_UPDATE)
			abort(); /* nothing is allowed in UPDATE */
		int pc = pop3_parse_check(line, len, (enum pop3_state)st, &cmd);
		if (pc != (c < 0 ? c : id))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy, so that reads past the end are caught */
	char *buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	/* the whole input as one line (NUL, CR and LF included) */
	check_one(buf, size);
	/* and line by line, without the terminator */
	size_t start = 0;
	for (size_t i = 0; i <= size; i++) {
		if (i == size || buf[i] == '\n') {
			size_t len = i - start;
			if (len > 0 && buf[start + len - 1] == '\r')
				len--;
			char *line = malloc(len + 1);
			if (line != NULL) {
				memcpy(line, buf + start, len);
				line[len] = '\0';
				check_one(line, len);
				free(line);
			}
			start = i + 1;
		}
	}
	free(buf);
	return 0;
}
