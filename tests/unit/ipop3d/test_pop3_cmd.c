/* POP3 command parser: tables of valid and invalid lines, each parsed whole and again
 * after passing through the line reader one byte at a time; limits at max and max + 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/conn.h"
#include "base/plimits.h"
#include "base/linebuf.h"
#include "pop3.h"
#include "unit.h"

#define A POP3_AUTHORIZATION
#define T POP3_TRANSACTION

struct valid {
	const char *line;
	enum pop3_state st;
	int id;
	size_t nargs;
	const char *arg0, *arg1;
};

static const struct valid valid[] = {
	{ "USER ned", A, POP3_CMD_USER, 1, "ned", NULL },
	{ "user ned", A, POP3_CMD_USER, 1, "ned", NULL },
	{ "UsEr Ned", A, POP3_CMD_USER, 1, "Ned", NULL },
	{ "USER  ned", A, POP3_CMD_USER, 1, "ned", NULL },
	{ "USER ned ", A, POP3_CMD_USER, 1, "ned", NULL },
	{ "USER ned@example.org", A, POP3_CMD_USER, 1, "ned@example.org", NULL },
	{ "PASS secret", A, POP3_CMD_PASS, 1, "secret", NULL },
	{ "pass two words", A, POP3_CMD_PASS, 1, "two words", NULL },
	{ "PASS  lead", A, POP3_CMD_PASS, 1, " lead", NULL },
	{ "PASS trail ", A, POP3_CMD_PASS, 1, "trail ", NULL },
	{ "PASS \t", A, POP3_CMD_PASS, 1, "\t", NULL },
	{ "APOP mrose c4c9334bac560ecc979e58001b3e22fb", A, POP3_CMD_APOP, 2, "mrose",
	  "c4c9334bac560ecc979e58001b3e22fb" },
	{ "AUTH", A, POP3_CMD_AUTH, 0, NULL, NULL },
	{ "AUTH PLAIN", A, POP3_CMD_AUTH, 1, "PLAIN", NULL },
	{ "auth plain AG5lZABzZWNyZXQ=", A, POP3_CMD_AUTH, 2, "plain", "AG5lZABzZWNyZXQ=" },
	{ "AUTH PLAIN =", A, POP3_CMD_AUTH, 2, "PLAIN", "=" },
	{ "AUTH LOGIN", A, POP3_CMD_AUTH, 1, "LOGIN", NULL },
	{ "STLS", A, POP3_CMD_STLS, 0, NULL, NULL },
	{ "stls", A, POP3_CMD_STLS, 0, NULL, NULL },
	{ "CAPA", A, POP3_CMD_CAPA, 0, NULL, NULL },
	{ "QUIT", A, POP3_CMD_QUIT, 0, NULL, NULL },
	{ "QUIT ", A, POP3_CMD_QUIT, 0, NULL, NULL },
	{ "CAPA", T, POP3_CMD_CAPA, 0, NULL, NULL },
	{ "quit", T, POP3_CMD_QUIT, 0, NULL, NULL },
	{ "STAT", T, POP3_CMD_STAT, 0, NULL, NULL },
	{ "LIST", T, POP3_CMD_LIST, 0, NULL, NULL },
	{ "LIST 1", T, POP3_CMD_LIST, 1, "1", NULL },
	{ "list  12", T, POP3_CMD_LIST, 1, "12", NULL },
	{ "LIST 1x", T, POP3_CMD_LIST, 1, "1x", NULL },       /* number checked later */
	{ "RETR 1", T, POP3_CMD_RETR, 1, "1", NULL },
	{ "DELE 2", T, POP3_CMD_DELE, 1, "2", NULL },
	{ "NOOP", T, POP3_CMD_NOOP, 0, NULL, NULL },
	{ "RSET", T, POP3_CMD_RSET, 0, NULL, NULL },
	{ "TOP 1 0", T, POP3_CMD_TOP, 2, "1", "0" },
	{ "top 1   10  ", T, POP3_CMD_TOP, 2, "1", "10" },
	{ "UIDL", T, POP3_CMD_UIDL, 0, NULL, NULL },
	{ "UIDL 3", T, POP3_CMD_UIDL, 1, "3", NULL },
};

struct invalid {
	const char *line;
	size_t len;            /* 0: strlen */
	enum pop3_state st;
	int err;
};

static const struct invalid invalid[] = {
	{ "", 0, A, POP3_E_UNKNOWN },
	{ " USER ned", 0, A, POP3_E_UNKNOWN },
	{ "FOO", 0, A, POP3_E_UNKNOWN },
	{ "USERX ned", 0, A, POP3_E_UNKNOWN },
	{ "US", 0, A, POP3_E_UNKNOWN },
	{ "USER\tned", 0, A, POP3_E_UNKNOWN },
	{ "STAT", 0, A, POP3_E_UNKNOWN },
	{ "NOOP", 0, A, POP3_E_UNKNOWN },
	{ "UIDL", 0, A, POP3_E_UNKNOWN },
	{ "RETR 1", 0, A, POP3_E_UNKNOWN },
	{ "STAT 1", 0, A, POP3_E_UNKNOWN },        /* state before arguments */
	{ "USER ned", 0, T, POP3_E_UNKNOWN },
	{ "PASS x", 0, T, POP3_E_UNKNOWN },
	{ "AUTH PLAIN", 0, T, POP3_E_UNKNOWN },
	{ "STLS", 0, T, POP3_E_UNKNOWN },
	{ "APOP a b", 0, T, POP3_E_UNKNOWN },
	{ "QUIT", 0, POP3_UPDATE, POP3_E_UNKNOWN },
	{ "USER", 0, A, POP3_E_SYNTAX },
	{ "USER ", 0, A, POP3_E_SYNTAX },
	{ "USER a b", 0, A, POP3_E_SYNTAX },
	{ "PASS", 0, A, POP3_E_SYNTAX },
	{ "PASS ", 0, A, POP3_E_SYNTAX },
	{ "APOP x", 0, A, POP3_E_SYNTAX },
	{ "AUTH a b c", 0, A, POP3_E_SYNTAX },
	{ "STLS now", 0, A, POP3_E_SYNTAX },
	{ "QUIT now", 0, A, POP3_E_SYNTAX },
	{ "STAT 1", 0, T, POP3_E_SYNTAX },
	{ "LIST 1 2", 0, T, POP3_E_SYNTAX },
	{ "RETR", 0, T, POP3_E_SYNTAX },
	{ "RETR 1 2", 0, T, POP3_E_SYNTAX },
	{ "DELE", 0, T, POP3_E_SYNTAX },
	{ "TOP 1", 0, T, POP3_E_SYNTAX },
	{ "TOP 1 2 3", 0, T, POP3_E_SYNTAX },
	{ "NOOP x", 0, T, POP3_E_SYNTAX },
	{ "RSET x", 0, T, POP3_E_SYNTAX },
	{ "UIDL 1 2", 0, T, POP3_E_SYNTAX },
	{ "US\0ER x", 7, A, POP3_E_BAD_CHAR },
	{ "USER a\0b", 8, A, POP3_E_BAD_CHAR },
	{ "USER a\rb", 0, A, POP3_E_BAD_CHAR },
	{ "FOO \r", 0, A, POP3_E_BAD_CHAR },
	{ "PASS a\nb", 0, A, POP3_E_BAD_CHAR },
};

static void check_valid_parsed(const struct valid *v, int r, const struct pop3_cmd *cmd)
{
	CHECK(r == v->id);
	if (r != v->id) {
		fprintf(stderr, "  line \"%s\": got %d\n", v->line, r);
		return;
	}
	CHECK(cmd->nargs == v->nargs);
	const char *want[2] = { v->arg0, v->arg1 };
	for (size_t i = 0; i < v->nargs && i < 2; i++) {
		char buf[600];
		size_t n = cmd->args[i].len < sizeof(buf) - 1 ? cmd->args[i].len : sizeof(buf) - 1;
		memcpy(buf, cmd->args[i].p, n);
		buf[n] = '\0';
		CHECK_STR(buf, want[i]);
	}
}

/* The line through a linebuf one byte at a time, then parsed: as the daemon does. */
static int parse_via_linebuf(const char *line, size_t len, enum pop3_state st,
			     struct pop3_cmd *cmd, char **copy_r)
{
	struct linebuf *lb = linebuf_new(SASL_MAX_LINE);
	char *data = malloc(len + 2);
	const char *l = NULL;
	size_t ll = 0;
	int r = 0;

	memcpy(data, line, len);
	memcpy(data + len, "\r\n", 2);
	for (size_t i = 0; i < len + 2; i++) {
		CHECK(linebuf_feed(lb, data + i, 1) == 1);
		r = linebuf_next(lb, &l, &ll);
		if (i + 1 < len + 2 && r == 0)
			continue;
		break;
	}
	free(data);
	*copy_r = NULL;
	if (r == LINEBUF_BAD_BYTE) {
		r = POP3_E_BAD_CHAR;
	} else if (r == 1) {
		/* the parse result points into the line: keep a copy alive */
		*copy_r = malloc(ll + 1);
		memcpy(*copy_r, l, ll + 1);
		r = pop3_parse_check(*copy_r, ll, st, cmd);
	} else {
		r = -100;
	}
	linebuf_free(&lb);
	return r;
}

static void test_tables(void)
{
	struct pop3_cmd cmd;
	char *copy;

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		const struct valid *v = &valid[i];
		int r = pop3_parse_check(v->line, strlen(v->line), v->st, &cmd);
		check_valid_parsed(v, r, &cmd);
		r = parse_via_linebuf(v->line, strlen(v->line), v->st, &cmd, &copy);
		check_valid_parsed(v, r, &cmd);
		free(copy);
	}
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		const struct invalid *v = &invalid[i];
		size_t len = v->len != 0 ? v->len : strlen(v->line);
		int r = pop3_parse_check(v->line, len, v->st, &cmd);
		CHECK(r == v->err);
		if (r != v->err)
			fprintf(stderr, "  invalid #%zu: want %d got %d\n", i, v->err, r);
		if (memchr(v->line, '\n', len) != NULL)
			continue; /* the line reader would split it */
		r = parse_via_linebuf(v->line, len, v->st, &cmd, &copy);
		CHECK(r == v->err);
		if (r != v->err)
			fprintf(stderr, "  invalid #%zu via linebuf: want %d got %d\n", i, v->err, r);
		free(copy);
	}
}

static void test_limits(void)
{
	static char line[SASL_MAX_LINE + 8];
	struct pop3_cmd cmd;
	const size_t max = POP3_MAX_CMD_LINE - 2; /* without CRLF */

	/* an ordinary command: 510 octets (512 with CRLF) fit, 511 do not */
	memcpy(line, "USER ", 5);
	memset(line + 5, 'a', sizeof(line) - 5);
	CHECK(pop3_parse_check(line, max, A, &cmd) == POP3_CMD_USER);
	CHECK(cmd.args[0].len == max - 5);
	CHECK(pop3_parse_check(line, max + 1, A, &cmd) == POP3_E_TOO_LONG);
	/* too long wins over unknown and wrong state */
	memcpy(line, "XXXX ", 5);
	CHECK(pop3_parse_check(line, max, A, &cmd) == POP3_E_UNKNOWN);
	CHECK(pop3_parse_check(line, max + 1, A, &cmd) == POP3_E_TOO_LONG);
	memcpy(line, "RETR ", 5);
	CHECK(pop3_parse_check(line, max + 1, T, &cmd) == POP3_E_TOO_LONG);
	/* AUTH with an initial response may use a whole SASL line */
	memcpy(line, "AUTH PLAIN ", 11);
	CHECK(pop3_parse_check(line, SASL_MAX_LINE - 2, A, &cmd) == POP3_CMD_AUTH);
	CHECK(cmd.nargs == 2 && cmd.args[1].len == SASL_MAX_LINE - 2 - 11);
	CHECK(pop3_parse_check(line, SASL_MAX_LINE - 1, A, &cmd) == POP3_E_TOO_LONG);
	/* many arguments: counted, not stored past POP3_MAX_ARGS */
	for (size_t i = 0; i < 200; i += 2)
		memcpy(line + 5 + i, "1 ", 2);
	memcpy(line, "LIST ", 5);
	CHECK(pop3_parse(line, 205, &cmd) == POP3_CMD_LIST);
	CHECK(cmd.nargs == 100);
	CHECK(pop3_cmd_check(&cmd, T) == POP3_E_SYNTAX);
}

static void test_numbers(void)
{
	static const struct { const char *s; int ok; uint32_t v; } msg[] = {
		{ "1", 0, 1 }, { "0", 0, 0 }, { "42", 0, 42 }, { "007", 0, 7 },
		{ "4294967295", 0, 4294967295u }, { "4294967296", -1, 0 },
		{ "4294967297", -1, 0 }, { "99999999999999999999999", -1, 0 },
		{ "-1", -1, 0 }, { "+1", -1, 0 }, { "1x", -1, 0 }, { "x1", -1, 0 },
		{ "", -1, 0 }, { " 1", -1, 0 }, { "1 ", -1, 0 }, { "0x10", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(msg) / sizeof(msg[0]); i++) {
		struct pop3_arg a = { msg[i].s, strlen(msg[i].s) };
		uint32_t v = 12345;
		int r = pop3_parse_msgnum(&a, &v);
		CHECK(r == msg[i].ok);
		if (r == 0)
			CHECK(v == msg[i].v);
	}
	static const struct { const char *s; int ok; uint64_t v; } lines[] = {
		{ "0", 0, 0 }, { "10", 0, 10 },
		{ "18446744073709551615", 0, UINT64_MAX }, { "18446744073709551616", -1, 0 },
		{ "-0", -1, 0 }, { "1.5", -1, 0 }, { "", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct pop3_arg a = { lines[i].s, strlen(lines[i].s) };
		uint64_t v = 12345;
		int r = pop3_parse_lines(&a, &v);
		CHECK(r == lines[i].ok);
		if (r == 0)
			CHECK(v == lines[i].v);
	}
}

static void test_misc(void)
{
	CHECK_STR(pop3_error_text(POP3_E_UNKNOWN), "Unknown command");
	CHECK_STR(pop3_error_text(CMDLOOP_E_STATE), "Unknown command");
	CHECK_STR(pop3_error_text(POP3_E_SYNTAX), "Syntax error");
	CHECK_STR(pop3_error_text(POP3_E_TOO_LONG), "Line too long.");
	CHECK_STR(pop3_error_text(POP3_E_BAD_CHAR), "Invalid characters in command.");
	CHECK_STR(pop3_error_text(CMDLOOP_E_TOO_MANY), "Too many bad commands.");
	CHECK_STR(pop3_state_name(POP3_AUTHORIZATION), "AUTHORIZATION");
	CHECK_STR(pop3_state_name(POP3_TRANSACTION), "TRANSACTION");
	CHECK_STR(pop3_state_name(POP3_UPDATE), "UPDATE");

	enum pop3_state st = POP3_AUTHORIZATION;
	pop3_set_state(&st, POP3_TRANSACTION);
	CHECK(st == POP3_TRANSACTION);

	CHECK(pop3_cmd_lookup("top", 3) != NULL && pop3_cmd_lookup("top", 3)->loop.id == POP3_CMD_TOP);
	CHECK(pop3_cmd_lookup("TO", 2) == NULL);
	CHECK(pop3_cmd_lookup("TOPS", 4) == NULL);
	CHECK(pop3_cmd_lookup("", 0) == NULL);
	/* every command in the table is found by its own name */
	static const char *names[] = { "USER", "PASS", "APOP", "AUTH", "STLS", "CAPA",
		"QUIT", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct pop3_cmd_def *d = pop3_cmd_lookup(names[i], strlen(names[i]));
		CHECK(d != NULL && (size_t)d->loop.id == i);
	}
	/* the command struct is cleared on every parse */
	struct pop3_cmd cmd;
	CHECK(pop3_parse("TOP 1 2", 7, &cmd) == POP3_CMD_TOP);
	CHECK(pop3_parse("FOO 1 2", 7, &cmd) == POP3_E_UNKNOWN);
	CHECK(cmd.def == NULL && cmd.nargs == 0);

	/* the command loop's parse hook: the row and the argument count, or the error */
	const struct cmdloop_def *def = NULL;
	size_t nargs = 9;
	CHECK(pop3_loop_parse("TOP 1 2", 7, &cmd, &def, &nargs) == 0);
	CHECK(def != NULL && def->id == POP3_CMD_TOP && nargs == 2);
	CHECK(pop3_loop_parse("TOP 1 2 3", 9, &cmd, &def, &nargs) == 0);
	CHECK(nargs == 3 && cmdloop_check(def, nargs, POP3_TRANSACTION) == CMDLOOP_E_SYNTAX);
	CHECK(cmdloop_check(def, 2, POP3_AUTHORIZATION) == CMDLOOP_E_STATE);
	CHECK(pop3_loop_parse("FOO", 3, &cmd, &def, &nargs) == POP3_E_UNKNOWN && def == NULL);
}

/* The one reply writer: every kind of line, with and without response codes. */
static void test_reply(void)
{
	int fds[2];
	struct conn c;
	char out[4096];

	if (pipe(fds) < 0) {
		CHECK(0);
		return;
	}
	conn_init(&c, -1, fds[1], 512, 5);
	pop3_reply(&c, POP3_OK, POP3_CODE_NONE, NULL);
	pop3_reply(&c, POP3_OK, POP3_CODE_NONE, "%d messages", 3);
	pop3_reply(&c, POP3_ERR, POP3_CODE_NONE, "No such message.");
	pop3_reply(&c, POP3_ERR, POP3_CODE_AUTH, "Authentication failed.");
	pop3_reply(&c, POP3_ERR, POP3_CODE_SYS_TEMP, "Later.");
	pop3_reply(&c, POP3_ERR, POP3_CODE_SYS_PERM, "Never.");
	pop3_reply(&c, POP3_ERR, POP3_CODE_IN_USE, "Busy.");
	pop3_reply(&c, POP3_CONT, POP3_CODE_NONE, "%s", "");
	pop3_reply(&c, POP3_CONT, POP3_CODE_NONE, "VXNlcm5hbWU6");
	pop3_reply(&c, POP3_DATA, POP3_CODE_NONE, "TOP");
	pop3_reply(&c, POP3_DATA, POP3_CODE_AUTH, ".dot");
	pop3_reply(&c, POP3_END, POP3_CODE_AUTH, "ignored");
	/* longer than RFC 2449's 512 octets: cut, still one line */
	char big[600];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pop3_reply(&c, POP3_ERR, POP3_CODE_SYS_TEMP, "%s", big);
	CHECK(conn_flush(&c) == 0);
	close(fds[1]);
	ssize_t n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	CHECK(n > 0);
	out[n > 0 ? n : 0] = '\0';
	const char *want = "+OK\r\n+OK 3 messages\r\n-ERR No such message.\r\n"
		"-ERR [AUTH] Authentication failed.\r\n-ERR [SYS/TEMP] Later.\r\n"
		"-ERR [SYS/PERM] Never.\r\n-ERR [IN-USE] Busy.\r\n+ \r\n+ VXNlcm5hbWU6\r\n"
		"TOP\r\n..dot\r\n.\r\n-ERR [SYS/TEMP] xxx";
	CHECK(strncmp(out, want, strlen(want)) == 0);
	const char *last = out + strlen(want) - strlen("-ERR [SYS/TEMP] xxx");
	CHECK(strlen(last) <= POP3_MAX_REPLY_LINE && strlen(last) > 400);
	CHECK(strchr(last, '\n') == last + strlen(last) - 1);
	conn_deinit(&c);
}

int main(void)
{
	test_tables();
	test_limits();
	test_numbers();
	test_misc();
	test_reply();
	return unit_done("pop3_cmd");
}
