/* POP3 TRANSACTION and UPDATE states (RFC 1939 sections 5 and 6, TOP and UIDL from
 * section 7, CAPA from RFC 2449).  Runs as the mail user, after the monitor dropped to
 * it; the client reaches us through the worker's relay.
 *
 * The message list is the folder's index at login (mailbox_open): POP3 numbers them in
 * UID order and does not see later changes (RFC 1939 wants a fixed list).  DELE only
 * marks; the marks become one expunge (mailbox_expunge) in the UPDATE state, i.e. only
 * after QUIT, which every other session on the folder sees.  A connection that ends any
 * other way (EOF, timeout, error, too many bad commands) deletes nothing.
 *
 * Messages are streamed in IO_CHUNK pieces through the CRLF / dot-stuffing converter, so
 * a message of any size takes bounded memory.  Output is buffered in the conn and sent
 * when conn_read_line() is about to wait for input: pipelined commands get their
 * replies together, and a client that waits always gets its answer. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "base/cmdloop.h"
#include "base/conn.h"
#include "mail/crlf.h"
#include "base/plimits.h"
#include "base/log.h"
#include "storage/storage.h"
#include "pop3.h"
#include "base/util.h"

/* A message as POP3 sees it: fixed at login. */
struct pmsg {
	uint32_t uid;
	uint64_t size;
	bool deleted;
	char uidl[POP3_UIDL_MAX + 1];
};

struct sess {
	struct server_session *s;
	struct conn *c;
	struct mail_storage *st;
	struct mailbox *box;
	struct pmsg *msgs;         /* the list at login */
	size_t count;
	enum pop3_state state;
	struct cmdloop loop;
	struct pop3_cmd cmd;       /* the command being run (the loop parses into it) */
	char log_user[LOG_MAX_FIELD + 16];   /* "user=<name>, " */
	uint64_t box_size;         /* octets of all messages at login */
	size_t ndel;               /* messages marked deleted */
	uint64_t del_size;         /* and their octets */
	size_t deleted;            /* messages really deleted at QUIT (log) */
	unsigned n_top, n_retr;
	const char *reason;        /* why the session ends (log) */
	int status;                /* exit status */
	char *inbuf;               /* IO_CHUNK: raw message bytes */
	char *outbuf;              /* 2 * IO_CHUNK + 1: the converted form */
	char ubuf[LOG_MAX_FIELD + 1];
};

/* A message-number argument that names a message not marked deleted.  0 and *i_r set, or
 * -1 with the reply written and *res_r set. */
static int msg_arg(struct sess *ss, const struct pop3_arg *a, size_t *i_r,
		   enum pop3_result *res_r)
{
	uint32_t n;

	if (pop3_parse_msgnum(a, &n) < 0) {
		pop3_reply(ss->c, POP3_ERR, POP3_CODE_NONE, "Invalid message number.");
		*res_r = RES_BAD;
		return -1;
	}
	if (n == 0 || n > ss->count) {
		pop3_reply(ss->c, POP3_ERR, POP3_CODE_NONE, "No such message.");
		*res_r = RES_ERR;
		return -1;
	}
	if (ss->msgs[n - 1].deleted) {
		pop3_reply(ss->c, POP3_ERR, POP3_CODE_NONE, "Message %" PRIu32 " is deleted.", n);
		*res_r = RES_ERR;
		return -1;
	}
	*i_r = n - 1;
	return 0;
}

static enum pop3_result cmd_capa(struct sess *ss, const struct pop3_cmd *cmd)
{
	/* RFC 2449: after login no USER, SASL or STLS */
	pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, "Capability list follows");
	pop3_reply(ss->c, POP3_DATA, POP3_CODE_NONE, "TOP");
	pop3_reply(ss->c, POP3_DATA, POP3_CODE_NONE, "UIDL");
	pop3_reply(ss->c, POP3_DATA, POP3_CODE_NONE, "RESP-CODES");
	pop3_reply(ss->c, POP3_DATA, POP3_CODE_NONE, "AUTH-RESP-CODE");
	pop3_reply(ss->c, POP3_DATA, POP3_CODE_NONE, "PIPELINING");
	pop3_reply(ss->c, POP3_DATA, POP3_CODE_NONE, "IMPLEMENTATION postern");
	pop3_reply(ss->c, POP3_END, POP3_CODE_NONE, NULL);
	return RES_OK;
}

static enum pop3_result cmd_noop(struct sess *ss, const struct pop3_cmd *cmd)
{
	pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, NULL);
	return RES_OK;
}

static enum pop3_result cmd_stat(struct sess *ss, const struct pop3_cmd *cmd)
{
	pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, "%zu %" PRIu64, ss->count - ss->ndel,
		   ss->box_size - ss->del_size);
	return RES_OK;
}

static enum pop3_result cmd_list(struct sess *ss, const struct pop3_cmd *cmd)
{
	enum pop3_result res;
	size_t i;

	if (cmd->nargs == 1) {
		if (msg_arg(ss, &cmd->args[0], &i, &res) < 0)
			return res;
		pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, "%zu %" PRIu64, i + 1,
			   ss->msgs[i].size);
		return RES_OK;
	}
	pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, "%zu messages (%" PRIu64 " octets)",
		   ss->count - ss->ndel, ss->box_size - ss->del_size);
	for (i = 0; i < ss->count; i++) {
		const struct pmsg *m = &ss->msgs[i];
		if (!m->deleted)
			pop3_reply(ss->c, POP3_DATA, POP3_CODE_NONE, "%zu %" PRIu64, i + 1, m->size);
	}
	pop3_reply(ss->c, POP3_END, POP3_CODE_NONE, NULL);
	return RES_OK;
}

static enum pop3_result cmd_uidl(struct sess *ss, const struct pop3_cmd *cmd)
{
	enum pop3_result res;
	size_t i;

	if (cmd->nargs == 1) {
		if (msg_arg(ss, &cmd->args[0], &i, &res) < 0)
			return res;
		pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, "%zu %s", i + 1, ss->msgs[i].uidl);
		return RES_OK;
	}
	pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, NULL);
	for (i = 0; i < ss->count; i++) {
		const struct pmsg *m = &ss->msgs[i];
		if (!m->deleted)
			pop3_reply(ss->c, POP3_DATA, POP3_CODE_NONE, "%zu %s", i + 1, m->uidl);
	}
	pop3_reply(ss->c, POP3_END, POP3_CODE_NONE, NULL);
	return RES_OK;
}

/* RETR (top == false) or TOP with `lines` body lines: "+OK", the message in wire form,
 * ".".  The first chunk is read before "+OK", so a message that vanished gets -ERR.  A
 * read error later cannot be reported inside the multi-line reply: we drop the
 * connection (the client sees a truncated reply, and nothing is deleted). */
static enum pop3_result send_message(struct sess *ss, size_t i, bool top, uint64_t lines)
{
	const struct pmsg *m = &ss->msgs[i];
	struct mail_reader *r = NULL;
	struct crlf_state st;
	const char *error = "read error";
	ssize_t n = -1;

	if (mailbox_msg_open(ss->box, m->uid, &r, &error) == 0)
		n = mail_reader_read(r, ss->inbuf, IO_CHUNK, &error);
	if (n < 0) {
		char safe[LOG_MAX_FIELD + 1];
		log_warn("message-unavailable: user=<%s>, msg=%zu, error=<%s>", ss->ubuf, i + 1,
			 log_sanitize(error, strlen(error), safe));
		if (r != NULL)
			mail_reader_close(&r);
		pop3_reply(ss->c, POP3_ERR, POP3_CODE_SYS_TEMP,
			   "Message is no longer available.");
		return RES_ERR;
	}
	if (top)
		pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, NULL);
	else
		pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, "%" PRIu64 " octets", m->size);
	crlf_init(&st, true);
	if (top)
		st.body_limit = lines;
	while (n > 0) {
		size_t o = crlf_convert(&st, ss->inbuf, (size_t)n, ss->outbuf);
		if (conn_write(ss->c, ss->outbuf, o) < 0) {
			mail_reader_close(&r);
			ss->reason = "error"; /* the client is gone */
			return RES_DROP;
		}
		if (st.done)
			break;
		n = mail_reader_read(r, ss->inbuf, IO_CHUNK, &error);
	}
	mail_reader_close(&r);
	if (n < 0) {
		char safe[LOG_MAX_FIELD + 1];
		log_err("message-read-failed: user=<%s>, msg=%zu, error=<%s>", ss->ubuf, i + 1,
			log_sanitize(error, strlen(error), safe));
		ss->reason = "error";
		ss->status = 1;
		return RES_DROP;
	}
	const char *fin = crlf_finish(&st);
	conn_write(ss->c, fin, strlen(fin));
	pop3_reply(ss->c, POP3_END, POP3_CODE_NONE, NULL);
	return RES_OK;
}

static enum pop3_result cmd_retr(struct sess *ss, const struct pop3_cmd *cmd)
{
	enum pop3_result res;
	size_t i;

	if (msg_arg(ss, &cmd->args[0], &i, &res) < 0)
		return res;
	ss->n_retr++;
	return send_message(ss, i, false, 0);
}

static enum pop3_result cmd_top(struct sess *ss, const struct pop3_cmd *cmd)
{
	enum pop3_result res;
	uint64_t lines;
	size_t i;

	if (msg_arg(ss, &cmd->args[0], &i, &res) < 0)
		return res;
	if (pop3_parse_lines(&cmd->args[1], &lines) < 0) {
		pop3_reply(ss->c, POP3_ERR, POP3_CODE_NONE, "Invalid number of lines.");
		return RES_BAD;
	}
	ss->n_top++;
	return send_message(ss, i, true, lines);
}

static enum pop3_result cmd_dele(struct sess *ss, const struct pop3_cmd *cmd)
{
	enum pop3_result res;
	size_t i;

	if (msg_arg(ss, &cmd->args[0], &i, &res) < 0)
		return res;
	struct pmsg *m = &ss->msgs[i];
	m->deleted = true;
	ss->ndel++;
	ss->del_size += m->size;
	pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, "Marked to be deleted.");
	return RES_OK;
}

static enum pop3_result cmd_rset(struct sess *ss, const struct pop3_cmd *cmd)
{
	for (size_t i = 0; i < ss->count; i++)
		ss->msgs[i].deleted = false;
	ss->ndel = 0;
	ss->del_size = 0;
	pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, "maildrop has %zu messages (%" PRIu64
		   " octets)", ss->count,
		    ss->box_size);
	return RES_OK;
}

static enum pop3_result cmd_quit(struct sess *ss, const struct pop3_cmd *cmd)
{
	const char *error;

	/* Everything answered so far must have reached the kernel before we delete: a
	 * client that pipelined RETR, DELE, QUIT and vanished during the RETR keeps its
	 * message. */
	if (conn_flush(ss->c) < 0) {
		ss->reason = "error";
		return RES_DROP;
	}
	ss->reason = "quit";
	pop3_set_state(&ss->state, POP3_UPDATE);
	uint32_t *uids = ss->ndel > 0 ? xmalloc(ss->ndel * sizeof(*uids)) : NULL;
	size_t k = 0;
	for (size_t i = 0; i < ss->count && k < ss->ndel; i++) /* BOUNDS: k < ndel */
		if (ss->msgs[i].deleted)
			uids[k++] = ss->msgs[i].uid;
	int ret = k > 0 ? mailbox_expunge(ss->box, uids, k, &error) : 0;
	free(uids);
	if (ret < 0) {
		char safe[LOG_MAX_FIELD + 1];
		log_err("delete-failed: user=<%s>, error=<%s>", ss->ubuf,
			log_sanitize(error, strlen(error), safe));
		pop3_reply(ss->c, POP3_ERR, POP3_CODE_SYS_TEMP,
			   "Deletion failed, no messages were lost.");
		ss->status = 1;
		return RES_QUIT;
	}
	ss->deleted = ss->ndel;
	pop3_reply(ss->c, POP3_OK, POP3_CODE_NONE, "Logging out, %zu messages deleted.", ss->ndel);
	return RES_QUIT;
}

/* The command loop's handlers: typed handlers above, called through one signature. */
#define SESS_HANDLER(name) \
	static int loop_##name(void *ctx, const void *cmd) { return (int)name(ctx, cmd); }
SESS_HANDLER(cmd_capa)
SESS_HANDLER(cmd_quit)
SESS_HANDLER(cmd_stat)
SESS_HANDLER(cmd_list)
SESS_HANDLER(cmd_retr)
SESS_HANDLER(cmd_dele)
SESS_HANDLER(cmd_noop)
SESS_HANDLER(cmd_rset)
SESS_HANDLER(cmd_top)
SESS_HANDLER(cmd_uidl)

static cmdloop_handler *const sess_handlers[POP3_CMD_COUNT] = {
	[POP3_CMD_CAPA] = loop_cmd_capa,
	[POP3_CMD_QUIT] = loop_cmd_quit,
	[POP3_CMD_STAT] = loop_cmd_stat,
	[POP3_CMD_LIST] = loop_cmd_list,
	[POP3_CMD_RETR] = loop_cmd_retr,
	[POP3_CMD_DELE] = loop_cmd_dele,
	[POP3_CMD_NOOP] = loop_cmd_noop,
	[POP3_CMD_RSET] = loop_cmd_rset,
	[POP3_CMD_TOP] = loop_cmd_top,
	[POP3_CMD_UIDL] = loop_cmd_uidl,
};

static unsigned sess_state(const struct cmdloop *l)
{
	const struct sess *ss = l->ctx;
	return (unsigned)ss->state;
}

static const struct cmdloop_ops sess_loop_ops = {
	.parse = pop3_loop_parse,
	.state = sess_state,
	.reply_error = pop3_reply_error,
};

static void sess_loop(struct sess *ss)
{
	snprintf(ss->log_user, sizeof(ss->log_user), "user=<%s>, ", ss->ubuf);
	ss->loop = (struct cmdloop){
		.c = ss->c, .ops = &sess_loop_ops, .ctx = ss, .cmd = &ss->cmd,
		.handlers = sess_handlers, .nhandlers = POP3_CMD_COUNT,
		.max_bad = MAX_BAD_COMMANDS, .log_user = ss->log_user, .rip = ss->s->rip,
	};
	if (cmdloop_run(&ss->loop) == CMDLOOP_END)
		ss->reason = ss->loop.reason;
}

int pop3_session(struct server_session *s)
{
	struct sess ss = { .s = s, .c = s->c, .state = POP3_AUTHORIZATION };
	const char *error;

	log_sanitize(s->user, strlen(s->user), ss.ubuf);
	if (storage_locate(s->cfg->mail_location, s->user, s->pw->pw_dir, &ss.st, &error) < 0 ||
	    mailbox_open(ss.st, "INBOX", &ss.box, &error) < 0) {
		char safe[LOG_MAX_FIELD + 1];
		log_err("mailbox-failed: user=<%s>, error=<%s>", ss.ubuf,
			log_sanitize(error, strlen(error), safe));
		pop3_reply(ss.c, POP3_ERR, POP3_CODE_SYS_TEMP,
			   "Cannot open the mailbox, try again later.");
		conn_flush(ss.c);
		storage_free(&ss.st);
		return 1;
	}
	ss.count = mailbox_count(ss.box);
	ss.msgs = xcalloc(ss.count + 1, sizeof(*ss.msgs)); /* BOUNDS: count <= MAX_MESSAGES */
	for (size_t i = 0; i < ss.count; i++) {
		const struct index_rec *rec = mailbox_get(ss.box, i);
		ss.msgs[i].uid = rec->uid;
		ss.msgs[i].size = rec->size;
		mailbox_pop3_uidl(ss.box, i, ss.msgs[i].uidl);
		ss.box_size += rec->size;
	}
	ss.inbuf = xmalloc(IO_CHUNK);
	ss.outbuf = xmalloc(2 * IO_CHUNK + 1); /* BOUNDS: crlf_convert() needs 2 * len + 1 */

	pop3_set_state(&ss.state, POP3_TRANSACTION);
	pop3_reply(ss.c, POP3_OK, POP3_CODE_NONE, "Logged in.");
	sess_loop(&ss);
	conn_flush(ss.c);

	/* size: octets in the mailbox at login; del: messages really deleted; in/out: bytes
	 * through the connection; maxrss_kb: the peak memory of this process (a large RETR
	 * must not raise it) */
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		ru.ru_maxrss = 0;
	log_info("logout: user=<%s>, reason=%s, top=%u, retr=%u, del=%zu, size=%" PRIu64
		 ", in=%" PRIu64 ", out=%" PRIu64 ", maxrss_kb=%ld, session=%s",
		 ss.ubuf, ss.reason != NULL ? ss.reason : "error", ss.n_top, ss.n_retr,
		 ss.deleted, ss.box_size, ss.c->in_bytes, ss.c->out_bytes, (long)ru.ru_maxrss,
		 s->info != NULL ? s->info->session_id : "-");
	mailbox_close(&ss.box);
	storage_free(&ss.st);
	free(ss.msgs);
	free(ss.inbuf);
	free(ss.outbuf);
	return ss.status;
}
