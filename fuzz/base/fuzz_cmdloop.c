/* libFuzzer: the command loop (common/base/cmdloop.c) over a real conn.
 *
 * The first byte is max_bad (1..16), the second picks the reader's line limit (8..263);
 * the rest is the client's input, written whole into a socketpair before the loop runs
 * (at most 4 KiB, so that all the replies fit in the socket's buffer).  A toy protocol
 * drives the loop: "NAME [args]" with a state change (IN), a handler that reads on
 * (READ, as SASL does), one that returns BAD, one that fails, one that stops (QUIT), and
 * a table row this process has no handler for.  Checked: the loop ends; CMDLOOP_END comes
 * with a reason, a stop value without; the bad count never reaches max_bad unless that
 * ended the loop; every reply hook call has a known error; a handler only ever runs in a
 * state its row allows, with an argument count in its range. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "base/cmdloop.h"
#include "base/log.h"
#include "base/util.h"

enum { F_NOOP, F_IN, F_READ, F_BAD, F_FAIL, F_QUIT, F_GONE, F_COUNT };
static const struct cmdloop_def fz_defs[] = {
	{ "NOOP", F_NOOP, CMDLOOP_IN(0) | CMDLOOP_IN(1), 0, 0 },
	{ "IN", F_IN, CMDLOOP_IN(0), 1, 1 },
	{ "READ", F_READ, CMDLOOP_IN(1), 0, 2 },
	{ "BAD", F_BAD, CMDLOOP_IN(0) | CMDLOOP_IN(1), 0, 9 },
	{ "FAIL", F_FAIL, CMDLOOP_IN(1), 0, 0 },
	{ "QUIT", F_QUIT, CMDLOOP_IN(0) | CMDLOOP_IN(1), 0, 0 },
	{ "GONE", F_GONE, CMDLOOP_IN(0), 0, 0 },
};
#define FZ_NDEFS (sizeof(fz_defs) / sizeof(fz_defs[0]))

struct fz_cmd {
	const struct cmdloop_def *def;
	size_t nargs;
};

struct fz_ctx {
	unsigned state;
	struct cmdloop loop;
	struct fz_cmd cmd;
};

static int fz_parse(const char *line, size_t len, void *vcmd, const struct cmdloop_def **def_r,
		    size_t *nargs_r)
{
	struct fz_cmd *c = vcmd;
	size_t i = 0;

	memset(c, 0, sizeof(*c));
	if (memchr(line, '\0', len) != NULL || line[len] != '\0')
		__builtin_trap();   /* the reader hands over no NUL, and NUL-terminates */
	while (i < len && line[i] != ' ')
		i++;
	for (size_t k = 0; k < FZ_NDEFS; k++)
		if (util_token_eq(line, i, fz_defs[k].name))
			c->def = &fz_defs[k];
	if (c->def == NULL)
		return len > 40 ? CMDLOOP_E_TOO_LONG : CMDLOOP_E_UNKNOWN;
	*def_r = c->def;
	while (i < len) {
		while (i < len && line[i] == ' ')
			i++;
		if (i == len)
			break;
		c->nargs++;
		while (i < len && line[i] != ' ')
			i++;
	}
	*nargs_r = c->nargs;
	return c->nargs > 20 ? CMDLOOP_E_SYNTAX : 0;
}

static unsigned fz_state(const struct cmdloop *l)
{
	const struct fz_ctx *t = l->ctx;
	return t->state;
}

static void fz_reply_error(struct cmdloop *l, int err, const void *cmd)
{
	if (err > CMDLOOP_E_UNKNOWN || err < CMDLOOP_E_TOO_MANY)
		__builtin_trap();
	conn_printf(l->c, "E%d\r\n", -err);
}

/* Every handler: its row allowed it here. */
static const struct fz_cmd *fz_checked(struct fz_ctx *t, const void *vcmd)
{
	const struct fz_cmd *c = vcmd;
	if (c->def == NULL || (c->def->states & CMDLOOP_IN(t->state)) == 0 ||
	    c->nargs < c->def->min_args || c->nargs > c->def->max_args)
		__builtin_trap();
	return c;
}

static int fz_ok(void *ctx, const void *vcmd)
{
	struct fz_ctx *t = ctx;
	fz_checked(t, vcmd);
	conn_printf(t->loop.c, "OK\r\n");
	return CMDLOOP_OK;
}

static int fz_in(void *ctx, const void *vcmd)
{
	struct fz_ctx *t = ctx;
	fz_checked(t, vcmd);
	t->state = 1;
	conn_printf(t->loop.c, "OK in\r\n");
	return CMDLOOP_OK;
}

static int fz_read(void *ctx, const void *vcmd)
{
	struct fz_ctx *t = ctx;
	const char *line;
	size_t len;

	fz_checked(t, vcmd);
	conn_printf(t->loop.c, "+\r\n");
	int r = cmdloop_line(&t->loop, &line, &len);
	if (r == 0)
		return CMDLOOP_STOP + 1;
	return r < 0 ? CMDLOOP_BAD : CMDLOOP_OK;
}

static int fz_bad(void *ctx, const void *vcmd)
{
	fz_checked(ctx, vcmd);
	return CMDLOOP_BAD;
}

static int fz_fail(void *ctx, const void *vcmd)
{
	fz_checked(ctx, vcmd);
	return CMDLOOP_ERR;
}

static int fz_quit(void *ctx, const void *vcmd)
{
	fz_checked(ctx, vcmd);
	return CMDLOOP_STOP;
}

static cmdloop_handler *const fz_handlers[F_COUNT] = {
	[F_NOOP] = fz_ok, [F_IN] = fz_in, [F_READ] = fz_read, [F_BAD] = fz_bad,
	[F_FAIL] = fz_fail, [F_QUIT] = fz_quit,
};

static const struct cmdloop_ops fz_ops = {
	.parse = fz_parse, .state = fz_state, .reply_error = fz_reply_error,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *err;

	signal(SIGPIPE, SIG_IGN);
	log_init("fuzz", false);
	if (log_open("/dev/null", false, &err) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char sink[65536];
	int sv[2];
	struct conn c;
	struct fz_ctx t;

	if (size < 2 || size > 4096 + 2)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if (util_write_all(sv[0], data + 2, size - 2) < 0)
		abort();
	shutdown(sv[0], SHUT_WR);
	conn_init(&c, sv[1], sv[1], 8 + data[1], 5);
	memset(&t, 0, sizeof(t));
	t.loop = (struct cmdloop){
		.c = &c, .ops = &fz_ops, .ctx = &t, .cmd = &t.cmd, .handlers = fz_handlers,
		.nhandlers = F_COUNT, .max_bad = 1 + data[0] % 16, .log_user = "",
		.rip = "192.0.2.7",
	};
	int r = cmdloop_run(&t.loop);
	if (r == CMDLOOP_END) {
		if (t.loop.reason == NULL)
			__builtin_trap();
		if (t.loop.bad > t.loop.max_bad)
			__builtin_trap();
	} else if (r < CMDLOOP_STOP || t.loop.bad >= t.loop.max_bad) {
		__builtin_trap();
	}
	conn_flush(&c);
	conn_deinit(&c);
	close(sv[1]);
	while (read(sv[0], sink, sizeof(sink)) > 0)
		;
	close(sv[0]);
	return 0;
}
