/* cmdloop.c: the command loop over a real conn (a socketpair), driven by a small made-up
 * protocol with IMAP-like tags ("t1 NAME args"), so that the reply hook's use of the
 * parser's output shows: dispatch by state and argument count, handlers this process
 * lacks, bad commands counted up to max_bad (a parameter), results that start the count
 * over, lines too long (the reader's limit and the parser's), bad bytes, a handler that
 * reads on (cmdloop_line), STOP values, EOF, and the bad-input log lines. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "base/cmdloop.h"
#include "base/log.h"
#include "base/util.h"
#include "unit.h"

static char tmpdir[256], logpath[512];

enum { ST_OUT, ST_IN };
enum { C_NOOP, C_LOGIN, C_READ, C_ECHO, C_BAD, C_FAIL, C_QUIT, C_LONG, C_GONE, C_COUNT };

struct tcmd {
	struct cmdloop_def loop;
	size_t line_max;
};
static const struct tcmd tcmds[] = {
	{ { "NOOP", C_NOOP, CMDLOOP_IN(ST_OUT) | CMDLOOP_IN(ST_IN), 0, 0 }, 64 },
	{ { "LOGIN", C_LOGIN, CMDLOOP_IN(ST_OUT), 1, 1 }, 64 },
	{ { "READ", C_READ, CMDLOOP_IN(ST_IN), 0, 0 }, 64 },
	{ { "ECHO", C_ECHO, CMDLOOP_IN(ST_IN), 1, 3 }, 64 },
	{ { "BAD", C_BAD, CMDLOOP_IN(ST_OUT) | CMDLOOP_IN(ST_IN), 0, 0 }, 64 },
	{ { "FAIL", C_FAIL, CMDLOOP_IN(ST_OUT) | CMDLOOP_IN(ST_IN), 0, 0 }, 64 },
	{ { "QUIT", C_QUIT, CMDLOOP_IN(ST_OUT) | CMDLOOP_IN(ST_IN), 0, 0 }, 64 },
	{ { "LONG", C_LONG, CMDLOOP_IN(ST_OUT), 0, 1 }, 200 },
	{ { "GONE", C_GONE, CMDLOOP_IN(ST_OUT), 0, 0 }, 64 },  /* no handler */
};

struct parsed {
	char tag[16];
	const struct tcmd *def;
	size_t nargs;
	char args[3][32];
};

struct tctx {
	unsigned state;
	struct cmdloop loop;
	struct parsed cmd;
	int reads;
};

/* "tag NAME [args...]", one space between words: a parser, no I/O */
static int t_parse(const char *line, size_t len, void *vcmd, const struct cmdloop_def **def_r,
		   size_t *nargs_r)
{
	struct parsed *c = vcmd;
	char buf[256];

	memset(c, 0, sizeof(*c));
	if (len >= sizeof(buf))
		return CMDLOOP_E_TOO_LONG;
	memcpy(buf, line, len);
	buf[len] = '\0';
	char *save = NULL, *w = strtok_r(buf, " ", &save);
	if (w == NULL || strlen(w) >= sizeof(c->tag))
		return CMDLOOP_E_SYNTAX;   /* no tag: a parser's own "malformed" */
	memcpy(c->tag, w, strlen(w) + 1);
	w = strtok_r(NULL, " ", &save);
	for (size_t i = 0; w != NULL && i < sizeof(tcmds) / sizeof(tcmds[0]); i++)
		if (strcmp(w, tcmds[i].loop.name) == 0)
			c->def = &tcmds[i];
	if (c->def == NULL)
		return CMDLOOP_E_UNKNOWN;
	*def_r = &c->def->loop;
	if (len > c->def->line_max)
		return CMDLOOP_E_TOO_LONG;
	while ((w = strtok_r(NULL, " ", &save)) != NULL) {
		if (c->nargs < 3)
			snprintf(c->args[c->nargs], sizeof(c->args[0]), "%s", w);
		c->nargs++;
	}
	*nargs_r = c->nargs;
	return 0;
}

static unsigned t_state(const struct cmdloop *l)
{
	const struct tctx *t = l->ctx;
	return t->state;
}

/* IMAP-like: tagged when the line got a tag, untagged "*" otherwise; SMTP-like
 * multi-line for too many errors. */
static void t_reply_error(struct cmdloop *l, int err, const void *vcmd)
{
	const struct parsed *c = vcmd;
	const char *tag = c != NULL && c->tag[0] != '\0' ? c->tag : "*";

	if (err == CMDLOOP_E_TOO_MANY)
		conn_printf(l->c, "421-too many\r\n421 bye\r\n");
	else
		conn_printf(l->c, "%s BAD %d\r\n", tag, err);
}

static int h_noop(void *ctx, const void *vcmd)
{
	struct tctx *t = ctx;
	const struct parsed *c = vcmd;
	conn_printf(t->loop.c, "%s OK noop\r\n", c->tag);
	return CMDLOOP_OK;
}

static int h_login(void *ctx, const void *vcmd)
{
	struct tctx *t = ctx;
	const struct parsed *c = vcmd;
	t->state = ST_IN;
	conn_printf(t->loop.c, "%s OK in as %s\r\n", c->tag, c->args[0]);
	return CMDLOOP_OK;
}

/* reads one more line, as a SASL exchange does */
static int h_read(void *ctx, const void *vcmd)
{
	struct tctx *t = ctx;
	const struct parsed *c = vcmd;
	const char *line;
	size_t len;

	conn_printf(t->loop.c, "+ more\r\n");
	int r = cmdloop_line(&t->loop, &line, &len);
	if (r == 0)
		return 10;         /* a STOP value of the protocol's own */
	if (r < 0)
		return CMDLOOP_BAD;
	t->reads++;
	conn_printf(t->loop.c, "%s OK read %.*s\r\n", c->tag, (int)len, line);
	return CMDLOOP_OK;
}

static int h_echo(void *ctx, const void *vcmd)
{
	struct tctx *t = ctx;
	const struct parsed *c = vcmd;
	conn_printf(t->loop.c, "%s OK %zu %s\r\n", c->tag, c->nargs, c->args[c->nargs - 1]);
	return CMDLOOP_OK;
}

static int h_bad(void *ctx, const void *vcmd)
{
	struct tctx *t = ctx;
	const struct parsed *c = vcmd;
	conn_printf(t->loop.c, "%s NO bad argument\r\n", c->tag);
	return CMDLOOP_BAD;
}

static int h_fail(void *ctx, const void *vcmd)
{
	struct tctx *t = ctx;
	const struct parsed *c = vcmd;
	conn_printf(t->loop.c, "%s NO failed\r\n", c->tag);
	return CMDLOOP_ERR;
}

static int h_quit(void *ctx, const void *vcmd)
{
	struct tctx *t = ctx;
	const struct parsed *c = vcmd;
	conn_printf(t->loop.c, "%s OK bye\r\n", c->tag);
	return CMDLOOP_STOP + 4;
}

static cmdloop_handler *const handlers[C_COUNT] = {
	[C_NOOP] = h_noop, [C_LOGIN] = h_login, [C_READ] = h_read, [C_ECHO] = h_echo,
	[C_BAD] = h_bad, [C_FAIL] = h_fail, [C_QUIT] = h_quit, [C_LONG] = h_noop,
};

static const struct cmdloop_ops ops = {
	.parse = t_parse, .state = t_state, .reply_error = t_reply_error,
};

struct result {
	int ret;
	const char *reason;
	unsigned bad;
	char out[8192];
	int reads;
};

/* Run the loop on input (counted), with this max_bad and reader line limit. */
static void run(const char *in, size_t inlen, unsigned max_bad, size_t line_max,
		struct result *r)
{
	int sv[2];
	struct conn c;
	struct tctx t;

	memset(r, 0, sizeof(*r));
	memset(&t, 0, sizeof(t));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		CHECK(0);
		return;
	}
	CHECK(util_write_all(sv[0], in, inlen) == 0);
	shutdown(sv[0], SHUT_WR);
	conn_init(&c, sv[1], sv[1], line_max, 5);
	t.loop = (struct cmdloop){
		.c = &c, .ops = &ops, .ctx = &t, .cmd = &t.cmd, .handlers = handlers,
		.nhandlers = C_COUNT, .max_bad = max_bad, .log_user = "user=<ned>, ",
		.rip = "192.0.2.7",
	};
	r->ret = cmdloop_run(&t.loop);
	r->reason = t.loop.reason;
	r->bad = t.loop.bad;
	r->reads = t.reads;
	conn_flush(&c);
	conn_deinit(&c);
	close(sv[1]);
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(r->out) - 1 && (k = read(sv[0], r->out + n, sizeof(r->out) - 1 - n)) > 0)
		n += (size_t)k;
	r->out[n] = '\0';
	close(sv[0]);
}

#define RUN(in, max_bad, line_max, r) run((in), sizeof(in) - 1, (max_bad), (line_max), (r))

static char *log_text(void)
{
	FILE *f = fopen(logpath, "r");
	char *buf = xmalloc(1 << 16);
	size_t n = f != NULL ? fread(buf, 1, (1 << 16) - 1, f) : 0;
	buf[n] = '\0';
	if (f != NULL)
		fclose(f);
	return buf;
}

static void log_clear(void)
{
	FILE *f = fopen(logpath, "w");
	if (f != NULL)
		fclose(f);
}

static void test_dispatch(void)
{
	struct result r;

	/* state and argument count checked before a handler runs; the tag reaches the hook */
	RUN("a1 NOOP\r\nb2 GONE\r\na2 READ\r\na3 ECHO x\r\na4 LOGIN ned\r\na5 LOGIN ned\r\na6 ECHO\r\n"
	    "a7 ECHO 1 2 3 4\r\na8 ECHO 1 2 3\r\na9 NOOP x\r\nb1 FROB\r\nc3\r\n"
	    "a10 QUIT\r\na11 NOOP\r\n", 20, 512, &r);
	CHECK(r.ret == CMDLOOP_STOP + 4);
	CHECK(r.reason == NULL);
	CHECK_STR(r.out,
		  "a1 OK noop\r\n"
		  "b2 BAD -1\r\n"          /* in the table, but no handler here */
		  "a2 BAD -5\r\n"          /* READ: not in this state */
		  "a3 BAD -5\r\n"
		  "a4 OK in as ned\r\n"
		  "a5 BAD -5\r\n"          /* LOGIN: not any more */
		  "a6 BAD -2\r\n"          /* too few arguments */
		  "a7 BAD -2\r\n"          /* too many */
		  "a8 OK 3 3\r\n"
		  "a9 BAD -2\r\n"
		  "b1 BAD -1\r\n"          /* unknown */
		  "c3 BAD -1\r\n"
		  "a10 OK bye\r\n");
	/* a line the parser finds malformed (no tag): the hook answers untagged */
	RUN(" \r\nq QUIT\r\n", 20, 512, &r);
	CHECK_STR(r.out, "* BAD -2\r\nq OK bye\r\n");
	/* EOF */
	RUN("a NOOP\r\n", 20, 512, &r);
	CHECK(r.ret == CMDLOOP_END);
	CHECK_STR(r.reason, "eof");
	RUN("", 20, 512, &r);
	CHECK(r.ret == CMDLOOP_END && strcmp(r.reason, "eof") == 0 && r.out[0] == '\0');
}

static void test_bad_count(void)
{
	struct result r;
	char *log;

	/* max_bad is the caller's: 3 here, the third closes, with the hook's reply */
	log_clear();
	RUN("a X\r\nb X\r\nc BAD\r\nd NOOP\r\n", 3, 512, &r);
	CHECK(r.ret == CMDLOOP_END);
	CHECK_STR(r.reason, "too-many-errors");
	CHECK_STR(r.out, "a BAD -1\r\nb BAD -1\r\nc NO bad argument\r\n421-too many\r\n421 bye\r\n");
	log = log_text();
	CHECK(strstr(log, "bad-input: user=<ned>, reason=too-many-errors, rip=192.0.2.7") != NULL);
	free(log);
	/* OK and ERR start the count over; BAD from a handler counts */
	RUN("a X\r\nb BAD\r\nc NOOP\r\nd X\r\ne BAD\r\nf FAIL\r\ng X\r\nh X\r\ni QUIT\r\n", 3, 512,
	    &r);
	CHECK(r.ret == CMDLOOP_STOP + 4);
	CHECK(strstr(r.out, "421") == NULL);
	/* max_bad 1: the first bad command is the last */
	RUN("a X\r\nb NOOP\r\n", 1, 512, &r);
	CHECK_STR(r.out, "a BAD -1\r\n421-too many\r\n421 bye\r\n");
	/* 20, as POP3 has it: 19 bad, a good one, 19 more, still open */
	static char in[2048];
	in[0] = '\0';
	for (int i = 0; i < 19; i++)
		strncat(in, "x X\r\n", sizeof(in) - strlen(in) - 1);
	strncat(in, "y NOOP\r\n", sizeof(in) - strlen(in) - 1);
	for (int i = 0; i < 19; i++)
		strncat(in, "x X\r\n", sizeof(in) - strlen(in) - 1);
	strncat(in, "z QUIT\r\n", sizeof(in) - strlen(in) - 1);
	run(in, strlen(in), 20, 512, &r);
	CHECK(r.ret == CMDLOOP_STOP + 4 && r.bad == 19);
	strncat(in, "x X\r\n", sizeof(in) - strlen(in) - 1);
	memcpy(strstr(in, "z QUIT"), "z XXXX", 6);
	run(in, strlen(in), 20, 512, &r);
	CHECK(r.ret == CMDLOOP_END && strcmp(r.reason, "too-many-errors") == 0);
}

static void test_limits(void)
{
	struct result r;
	char *log;

	/* the reader's limit (line_max 32 with CRLF): 30 octets pass, 31 end it at once */
	log_clear();
	RUN("a ECHO 45678901234567890123456\r\nq QUIT\r\n", 20, 32, &r);
	CHECK(strstr(r.out, "a BAD -5\r\nq OK bye") == r.out);
	RUN("a ECHO 456789012345678901234567\r\nq QUIT\r\n", 20, 32, &r);
	CHECK(r.ret == CMDLOOP_END);
	CHECK_STR(r.reason, "line-too-long");
	CHECK_STR(r.out, "* BAD -3\r\n");
	log = log_text();
	CHECK(strstr(log, "bad-input: user=<ned>, reason=line-too-long, rip=192.0.2.7") != NULL);
	free(log);
	/* the parser's limit per command (64 for NOOP, 200 for LONG): tagged, and the end */
	static char in[400];
	memset(in, 'x', sizeof(in));
	memcpy(in, "t NOOP ", 7);
	memcpy(in + 65, "\r\nq QUIT\r\n", 10);
	run(in, 75, 20, 512, &r);
	CHECK(r.ret == CMDLOOP_END && strcmp(r.reason, "line-too-long") == 0);
	CHECK_STR(r.out, "t BAD -3\r\n");
	memcpy(in, "t LONG ", 7);
	run(in, 75, 20, 512, &r);
	CHECK_STR(r.out, "t OK noop\r\nq OK bye\r\n");
	/* bad bytes: answered, logged, counted, the loop goes on */
	log_clear();
	static const char nul[] = "a NO\0OP\r\nb NO\rOP\r\nq QUIT\r\n";
	run(nul, sizeof(nul) - 1, 3, 512, &r);
	CHECK_STR(r.out, "* BAD -4\r\n* BAD -4\r\nq OK bye\r\n");
	log = log_text();
	CHECK(strstr(log, "bad-input: user=<ned>, reason=bad-bytes, rip=192.0.2.7") != NULL);
	free(log);
	run(nul, sizeof(nul) - 1, 2, 512, &r);
	CHECK(r.ret == CMDLOOP_END && strcmp(r.reason, "too-many-errors") == 0);
}

static void test_read_on(void)
{
	struct result r;

	/* a handler reads the next line itself */
	RUN("a LOGIN ned\r\nb READ\r\nsome data\r\nq QUIT\r\n", 20, 512, &r);
	CHECK_STR(r.out, "a OK in as ned\r\n+ more\r\nb OK read some data\r\nq OK bye\r\n");
	CHECK(r.reads == 1);
	/* bad bytes there: answered by the loop, counted through the handler's BAD */
	static const char in[] = "a LOGIN ned\r\nb READ\r\nx\0y\r\nc READ\r\nx\0y\r\nq QUIT\r\n";
	run(in, sizeof(in) - 1, 2, 512, &r);
	CHECK_STR(r.out, "a OK in as ned\r\n+ more\r\n* BAD -4\r\n+ more\r\n* BAD -4\r\n"
		  "421-too many\r\n421 bye\r\n");
	/* too long there: the end */
	RUN("a LOGIN ned\r\nb READ\r\n0123456789012345678901234567890123456789\r\nq QUIT\r\n",
	    20, 32, &r);
	CHECK(r.ret == 10);
	CHECK_STR(r.reason, "line-too-long");
	CHECK_STR(r.out, "a OK in as ned\r\n+ more\r\n* BAD -3\r\n");
	/* EOF there */
	RUN("a LOGIN ned\r\nb READ\r\n", 20, 512, &r);
	CHECK(r.ret == 10 && strcmp(r.reason, "eof") == 0);
}

static void test_check(void)
{
	const struct cmdloop_def d = { "X", 0, CMDLOOP_IN(1) | CMDLOOP_IN(31), 1, 2 };

	CHECK(cmdloop_check(NULL, 0, 0) == CMDLOOP_E_UNKNOWN);
	CHECK(cmdloop_check(&d, 1, 0) == CMDLOOP_E_STATE);
	CHECK(cmdloop_check(&d, 0, 0) == CMDLOOP_E_STATE);    /* state before arguments */
	CHECK(cmdloop_check(&d, 1, 1) == 0);
	CHECK(cmdloop_check(&d, 2, 31) == 0);
	CHECK(cmdloop_check(&d, 0, 1) == CMDLOOP_E_SYNTAX);
	CHECK(cmdloop_check(&d, 3, 1) == CMDLOOP_E_SYNTAX);
	CHECK(cmdloop_check(&d, 1, 32) == CMDLOOP_E_STATE);   /* no such state bit */
	CHECK(cmdloop_check(&d, 1, 4000000000u) == CMDLOOP_E_STATE);
}

int main(void)
{
	const char *err;

	signal(SIGPIPE, SIG_IGN);
	log_init("test", false);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_cmdloop.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	if (log_open(logpath, false, &err) < 0) {
		fprintf(stderr, "log_open: %s\n", err);
		return 1;
	}
	test_dispatch();
	test_bad_count();
	test_limits();
	test_read_on();
	test_check();
	unlink(logpath);
	rmdir(tmpdir);
	return unit_done("cmdloop");
}
