/* smtp-submit's SMTP session (RFC 5321), after the worker's handoff, as spool_user:
 * MAIL, RCPT, DATA and BDAT into the spool (smtp_data.c), and RSET, NOOP, QUIT, VRFY,
 * HELP, EHLO/HELO again; STARTTLS and AUTH belong to the worker and are refused here.
 *
 * Replies carry RFC 3463 codes (ENHANCEDSTATUSCODES) on every 2xx/4xx/5xx but the HELO
 * and EHLO replies.  Output is buffered in the conn and sent when the reader is about
 * to wait for input: pipelined commands get their replies in order, together (RFC
 * 2920).  Every reply a client earned by its own mistake (syntax, sequence, a policy
 * refusal) counts against max_errors; at the limit the session says 421 and ends; an
 * accepted message starts the count over ("max_errors without delivering mail").
 * Server-side trouble (451/452 4.3.x) and 452 4.5.3 (too many recipients, which RFC
 * 5321 section 4.5.3.1.10 asks the client to send again later) are not counted.
 * Time: the idle timeout of the config for each read, and SMTP_TXN_DEADLINE_S from the
 * end of one transaction to the end of the next; either gives 421 4.4.2. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/linebuf.h"
#include "base/log.h"
#include "base/util.h"
#include "smtp/smtp_reply.h"
#include "smtp_session_int.h"

/* The mode: main.c defines it (-m).  A weak default lets this file be linked where no
 * main.c defines it yet; a strong definition wins. */
__attribute__((weak)) enum submit_mode submit_mode = SUBMIT_MODE_MX;

unsigned smtp_sess_deadline_s = SMTP_TXN_DEADLINE_S;

/* The parameters this session takes after EHLO: every extension it offers (STARTTLS
 * and AUTH are not offered again: RFC 3207 section 4.2, RFC 4954 section 4), and MAIL's
 * AUTH= where the client logged in (RFC 4954 section 5; never on port 25, which offers
 * no AUTH). */
static unsigned sess_ext(const struct smtp_sess *ss)
{
	return SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME | SMTP_EXT_SMTPUTF8 |
	       SMTP_EXT_DSN | (ss->login != NULL ? SMTP_EXT_AUTH : 0);
}

void smtp_sess_reply(struct smtp_sess *ss, unsigned code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_MAX_REPLY_LINE], line[SMTP_MAX_REPLY_LINE + 1];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		text[0] = '\0';
	if (smtp_reply_format1(line, sizeof(line), code, enh, text, &len) < 0 &&
	    smtp_reply_format1(line, sizeof(line), code, enh, "Error", &len) < 0) {
		/* a bad code or enh (from the policy, say): our bug, never the client's
		 * bytes; the client still gets one reply, so it never waits for one */
		static const char fallback[] = "451 4.3.0 Error: local error\r\n";
		log_err("reply-failed: code=%u", code);
		conn_write(ss->c, fallback, sizeof(fallback) - 1);
		return;
	}
	conn_write(ss->c, line, len);
}

const char *smtp_sess_log_id(const struct smtp_sess *ss, char buf[SPOOL_ID_LEN + 3])
{
	if (ss->t.id[0] == '\0')
		return "";
	snprintf(buf, SPOOL_ID_LEN + 3, "%s: ", ss->t.id);
	return buf;
}

void smtp_sess_refuse(struct smtp_sess *ss, const char *cmd, unsigned code, const char *enh,
		      const char *text)
{
	char safe[LOG_MAX_FIELD + 1], id[SPOOL_ID_LEN + 3];

	smtp_sess_reply(ss, code, enh, "%s", text);
	ss->errors++;
	log_info("%sreject: cmd=%s, reply=<%u %s %s>, from=<%s>, rip=%s",
		 smtp_sess_log_id(ss, id), cmd, code,
		 enh != NULL ? enh : "-", log_sanitize(text, strlen(text), safe),
		 ss->t.active ? ss->t.sender_log : "", ss->rip_log);
}

static void refuse_policy(struct smtp_sess *ss, const char *cmd, const struct policy_reply *r)
{
	smtp_sess_refuse(ss, cmd, r->code, r->status[0] != '\0' ? r->status : NULL, r->text);
}

void smtp_sess_txn_reset(struct smtp_sess *ss)
{
	smtp_data_free(&ss->t);
	envelope_free(&ss->t.env);
	memset(&ss->t, 0, sizeof(ss->t));
}

void smtp_sess_txn_done(struct smtp_sess *ss)
{
	smtp_sess_txn_reset(ss);
	conn_set_deadline(ss->c, util_now_ms() + (uint64_t)smtp_sess_deadline_s * 1000);
}

const char *smtp_sess_proto(const struct smtp_sess *ss)
{
	bool auth = ss->login != NULL;

	if (ss->t.smtputf8)
		return ss->tls ? (auth ? "UTF8SMTPSA" : "UTF8SMTPS") :
			(auth ? "UTF8SMTPA" : "UTF8SMTP");
	if (!ss->esmtp && !ss->tls && !auth)
		return "SMTP";
	return ss->tls ? (auth ? "ESMTPSA" : "ESMTPS") : (auth ? "ESMTPA" : "ESMTP");
}

void smtp_sess_lost(struct smtp_sess *ss, ssize_t r, const char *where)
{
	ss->quit = true;
	if (r == 0) {
		ss->reason = where != NULL ? "eof-in-data" : "eof";
		return;
	}
	if (errno == ETIMEDOUT) {
		ss->reason = "timeout";
		/* the deadline is past: lift it so that the 421 can still be written (the
		 * idle timeout bounds that write) */
		conn_set_deadline(ss->c, 0);
		smtp_sess_reply(ss, 421, "4.4.2", "%s Error: timeout exceeded",
				policy_hostname(ss->pol));
		return;
	}
	ss->reason = "error";
}

/* The path as the envelope holds it: local@domain ("" for <>); <Postmaster> (RCPT only)
 * is the postmaster of our name. */
static void path_string(const struct smtp_sess *ss, const struct address_path *p, char *buf,
			size_t size)
{
	if (p->flags & ADDRESS_PATH_F_NULL)
		buf[0] = '\0';
	else if (p->flags & ADDRESS_PATH_F_POSTMASTER)
		snprintf(buf, size, "postmaster@%s", policy_hostname(ss->pol));
	else
		snprintf(buf, size, "%s@%s", p->local, p->domain); /* BOUNDS: 64 + 1 + 255 < size */
}

static void cmd_mail(struct smtp_sess *ss, const struct smtp_cmd *cmd)
{
	struct policy_reply r = { 0 };
	char addr[SMTP_SESS_ADDR_MAX + 1];
	const char *error;

	if (ss->t.active) {
		smtp_sess_refuse(ss, "MAIL", 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (submit_mode != SUBMIT_MODE_MX && ss->login == NULL) {
		smtp_sess_refuse(ss, "MAIL", 530, "5.7.0", "Authentication required");
		return;
	}
	if (ss->refuse_client) {
		refuse_policy(ss, "MAIL", &ss->client_reply);
		return;
	}
	/* RFC 1870 section 6.2: a declared size over the limit is a permanent refusal */
	if (cmd->size_given && cmd->size > ss->size_limit) {
		smtp_sess_refuse(ss, "MAIL", 552, "5.3.4",
				 "Message size exceeds fixed maximum message size");
		return;
	}
	if (policy_sender(ss->pol, ss->login, &cmd->path, &r) < 0) {
		refuse_policy(ss, "MAIL", &r);
		return;
	}
	if (ss->login != NULL && policy_rate_check(ss->pol, ss->login, 0, &r) < 0) {
		refuse_policy(ss, "MAIL", &r);
		return;
	}
	path_string(ss, &cmd->path, addr, sizeof(addr));
	struct smtp_txn *t = &ss->t;
	t->env = envelope_new();
	if (envelope_set_sender(t->env, addr, &error) < 0 ||
	    (cmd->envid_given && envelope_set_text(t->env, "envid", cmd->envid, &error) < 0)) {
		envelope_free(&t->env);
		smtp_sess_refuse(ss, "MAIL", 553, "5.1.7", "Sender address rejected");
		return;
	}
	t->active = true;
	t->smtputf8 = cmd->smtputf8;
	t->body = cmd->body;
	t->env->smtputf8 = cmd->smtputf8;
	t->env->body = cmd->body == SMTP_BODY_8BITMIME ? ENVELOPE_BODY_8BITMIME :
		       cmd->body == SMTP_BODY_BINARYMIME ? ENVELOPE_BODY_BINARYMIME :
		       ENVELOPE_BODY_7BIT;
	t->env->ret = cmd->ret == SMTP_RET_FULL ? ENVELOPE_RET_FULL :
		      cmd->ret == SMTP_RET_HDRS ? ENVELOPE_RET_HDRS : ENVELOPE_RET_NONE;
	/* AUTH= (RFC 4954 section 5) is accepted and ignored: we relay nothing on trust,
	 * and the envelope's auth is the login of this session */
	log_sanitize(addr, strlen(addr), t->sender_log);
	smtp_sess_reply(ss, 250, "2.1.0", "Ok");
}

static unsigned notify_bits(unsigned n)
{
	return ((n & SMTP_NOTIFY_NEVER) ? ENVELOPE_NOTIFY_NEVER : 0) |
	       ((n & SMTP_NOTIFY_SUCCESS) ? ENVELOPE_NOTIFY_SUCCESS : 0) |
	       ((n & SMTP_NOTIFY_FAILURE) ? ENVELOPE_NOTIFY_FAILURE : 0) |
	       ((n & SMTP_NOTIFY_DELAY) ? ENVELOPE_NOTIFY_DELAY : 0);
}

static bool rcpt_known(const struct envelope *env, const char *addr)
{
	for (size_t i = 0; i < env->rcpt_count; i++) /* BOUNDS: rcpt_count <= max_rcpts */
		if (strcmp(env->rcpts[i].addr, addr) == 0)
			return true;
	return false;
}

static void cmd_rcpt(struct smtp_sess *ss, const struct smtp_cmd *cmd)
{
	struct smtp_txn *t = &ss->t;
	struct policy_reply r = { 0 };
	enum policy_rcpt_kind kind;
	char addr[SMTP_SESS_ADDR_MAX + 1];
	char orcpt[SMTP_MAX_ORCPT_TYPE + 1 + SMTP_MAX_ORCPT + 1];
	const char *error;

	if (!t->active) {
		smtp_sess_refuse(ss, "RCPT", 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (t->bdat) {
		smtp_sess_refuse(ss, "RCPT", 503, "5.5.1", "Error: RCPT after BDAT");
		return;
	}
	if (t->nrcpt >= ss->max_rcpts) {
		/* RFC 5321 section 4.5.3.1.10: the client sends the rest in a later
		 * transaction; not counted as an error */
		smtp_sess_reply(ss, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	if (policy_recipient(ss->pol, ss->login, &cmd->path, &kind, &r) < 0) {
		refuse_policy(ss, "RCPT", &r);
		return;
	}
	if (ss->login != NULL && policy_rate_check(ss->pol, ss->login, t->nrcpt + 1, &r) < 0) {
		refuse_policy(ss, "RCPT", &r);
		return;
	}
	path_string(ss, &cmd->path, addr, sizeof(addr));
	if (rcpt_known(t->env, addr)) {
		/* the same recipient twice is one delivery (RFC 5321 section 3.3 lets a
		 * server drop duplicates) */
		smtp_sess_reply(ss, 250, "2.1.5", "Ok");
		return;
	}
	enum envelope_kind ek = kind == POLICY_RCPT_LOCAL ? ENVELOPE_LOCAL : ENVELOPE_REMOTE;
	const char *orcpt_p = NULL;
	if (cmd->orcpt_type != SMTP_ORCPT_NONE) {
		int n = snprintf(orcpt, sizeof(orcpt), "%s;%s", cmd->orcpt_type_name, cmd->orcpt);
		if (n > 0 && (size_t)n < sizeof(orcpt))
			orcpt_p = orcpt;
	}
	if (envelope_add_rcpt(t->env, addr, ek, notify_bits(cmd->notify), orcpt_p, &error) < 0 &&
	    (orcpt_p == NULL ||
	     envelope_add_rcpt(t->env, addr, ek, notify_bits(cmd->notify), NULL, &error) < 0)) {
		/* ORCPT is informational (RFC 3461 section 4.2): one the envelope cannot keep
		 * is dropped, the recipient kept */
		smtp_sess_refuse(ss, "RCPT", 553, "5.1.3", "Recipient address rejected");
		return;
	}
	if (t->nrcpt == 0)
		snprintf(t->rcpt1, sizeof(t->rcpt1), "%s", addr);
	t->nrcpt++;
	if (ek == ENVELOPE_LOCAL)
		t->any_local = true;
	smtp_sess_reply(ss, 250, "2.1.5", "Ok");
}

static void cmd_ehlo(struct smtp_sess *ss, const struct smtp_cmd *cmd, bool ehlo)
{
	char buf[2048], size_kw[32];
	size_t len;

	/* RFC 5321 section 4.1.4: EHLO/HELO again resets the transaction */
	smtp_sess_txn_reset(ss);
	snprintf(ss->helo, sizeof(ss->helo), "%.*s", (int)cmd->arg_len, cmd->arg);
	ss->helo_valid = cmd->helo_valid;
	ss->esmtp = ehlo;
	ss->ext = ehlo ? sess_ext(ss) : 0;
	if (!ehlo) {
		smtp_sess_reply(ss, 250, NULL, "%s", policy_hostname(ss->pol));
		return;
	}
	snprintf(size_kw, sizeof(size_kw), "SIZE %" PRIu64, ss->size_limit);
	const char *kw[] = { "PIPELINING", size_kw, "8BITMIME", "ENHANCEDSTATUSCODES",
			     "SMTPUTF8", "CHUNKING", "BINARYMIME", "DSN" };
	if (smtp_reply_ehlo(buf, sizeof(buf), policy_hostname(ss->pol), NULL, kw,
			    sizeof(kw) / sizeof(kw[0]), &len) < 0) {
		smtp_sess_reply(ss, 451, "4.3.0", "Error: local error");
		return;
	}
	conn_write(ss->c, buf, len);
}

static void run_cmd(struct smtp_sess *ss, const struct smtp_cmd *cmd)
{
	switch (cmd->verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		cmd_ehlo(ss, cmd, cmd->verb == SMTP_VERB_EHLO);
		break;
	case SMTP_VERB_MAIL:
		cmd_mail(ss, cmd);
		break;
	case SMTP_VERB_RCPT:
		cmd_rcpt(ss, cmd);
		break;
	case SMTP_VERB_DATA:
		smtp_data_cmd(ss);
		break;
	case SMTP_VERB_BDAT:
		smtp_data_bdat(ss, cmd);
		break;
	case SMTP_VERB_RSET:
		smtp_sess_txn_reset(ss);
		smtp_sess_reply(ss, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_NOOP:
		smtp_sess_reply(ss, 250, "2.0.0", "Ok");
		break;
	case SMTP_VERB_QUIT:
		smtp_sess_reply(ss, 221, "2.0.0", "Bye");
		ss->quit = true;
		ss->reason = "quit";
		break;
	case SMTP_VERB_VRFY:
		/* RFC 5321 section 3.5.3: no verification, no address harvesting */
		smtp_sess_reply(ss, 252, "2.5.0",
				"Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case SMTP_VERB_EXPN:
		smtp_sess_reply(ss, 502, "5.5.1", "Error: command not implemented");
		break;
	case SMTP_VERB_HELP:
		smtp_sess_reply(ss, 214, "2.0.0",
				"Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP");
		break;
	case SMTP_VERB_STARTTLS:
		/* RFC 3207: the worker does STARTTLS before the handoff, never after */
		if (ss->tls)
			smtp_sess_refuse(ss, "STARTTLS", 503, "5.5.1", "Error: TLS already active");
		else
			smtp_sess_reply(ss, 454, "4.7.0", "TLS not available now");
		break;
	case SMTP_VERB_AUTH:
		if (ss->login != NULL)
			smtp_sess_refuse(ss, "AUTH", 503, "5.5.1", "Error: already authenticated");
		else
			smtp_sess_refuse(ss, "AUTH", 502, "5.5.1", "Error: command not implemented");
		break;
	case SMTP_VERB_UNKNOWN:
		smtp_sess_refuse(ss, "UNKNOWN", 500, "5.5.2", "Error: command not recognized");
		break;
	}
}

static void sess_loop(struct smtp_sess *ss)
{
	while (!ss->quit) {
		const char *line;
		size_t len;
		struct smtp_cmd cmd;
		struct smtp_cmd_error e;

		if (ss->errors >= ss->max_errors) {
			smtp_sess_reply(ss, 421, "4.7.0", "%s Error: too many errors",
					policy_hostname(ss->pol));
			log_info("bad-input: reason=too-many-errors, rip=%s", ss->rip_log);
			ss->reason = "too-many-errors";
			return;
		}
		if (ss->c->failed) {
			ss->reason = "error";
			return;
		}
		errno = 0;
		int r = conn_read_line(ss->c, &line, &len);
		if (r == 0 || r == -1) {
			smtp_sess_lost(ss, r, NULL);
			return;
		}
		if (r == LINEBUF_TOO_LONG) {
			/* never resync inside a line (STYLE.md) */
			smtp_sess_reply(ss, 500, "5.5.2", "Error: line too long");
			log_info("bad-input: reason=line-too-long, rip=%s", ss->rip_log);
			ss->reason = "line-too-long";
			return;
		}
		if (r == LINEBUF_BAD_BYTE) {
			smtp_sess_refuse(ss, "UNKNOWN", 500, "5.5.2",
					 "Error: invalid character in command");
			continue;
		}
		unsigned flags = ss->ext | (ss->t.smtputf8 ? SMTP_CMD_TXN_UTF8 : 0);
		if (smtp_cmd_parse(line, len, flags, &cmd, &e) < 0) {
			smtp_sess_refuse(ss, smtp_cmd_verb_name(cmd.verb), e.code, e.enh, e.text);
			continue;
		}
		run_cmd(ss, &cmd);
	}
}

/* The HELO/EHLO the worker saw: its argument again through the parser, for
 * helo_valid (a domain or address literal, else a comment in Received:). */
static void sess_helo(struct smtp_sess *ss)
{
	char line[sizeof(ss->helo) + 8];
	struct smtp_cmd cmd;
	struct smtp_cmd_error e;

	snprintf(ss->helo, sizeof(ss->helo), "%s", ss->info->helo);
	ss->esmtp = ss->info->esmtp;
	ss->ext = ss->esmtp ? sess_ext(ss) : 0;
	int n = snprintf(line, sizeof(line), "HELO %s", ss->helo);
	ss->helo_valid = ss->helo[0] != '\0' && n > 0 && (size_t)n < sizeof(line) &&
			 smtp_cmd_parse(line, (size_t)n, 0, &cmd, &e) == 0 && cmd.helo_valid;
}

int smtp_session(struct server_session *s)
{
	struct session_info none = { 0 };
	struct smtp_sess ss = { .s = s, .c = s->c, .cfg = s->cfg };
	const char *error;
	int status = 0;

	/* a file size limit must be a full spool (452 4.3.1), not a kill */
	signal(SIGXFSZ, SIG_IGN);
	if (s->info == NULL) {
		snprintf(none.rip, sizeof(none.rip), "%s", s->rip != NULL ? s->rip : "0.0.0.0");
		ss.info = &none;
	} else {
		ss.info = s->info;
	}
	log_sanitize(ss.info->rip, strlen(ss.info->rip), ss.rip_log);
	ss.login = ss.info->user[0] != '\0' ? ss.info->user : NULL;
	ss.tls = ss.info->tls_version[0] != '\0';
	ss.size_limit = s->cfg->message_size_limit != 0 ? s->cfg->message_size_limit :
			SUBMIT_SIZE_LIMIT_DEFAULT;
	ss.max_rcpts = s->cfg->max_recipients != 0 ? s->cfg->max_recipients :
		       SUBMIT_MAX_RCPTS_DEFAULT;
	if (ss.max_rcpts > SPOOL_MAX_RCPTS)
		ss.max_rcpts = SPOOL_MAX_RCPTS;
	ss.max_errors = s->cfg->max_errors != 0 ? s->cfg->max_errors : SUBMIT_MAX_ERRORS_DEFAULT;
	sess_helo(&ss);
	conn_set_line_max(ss.c, SMTP_MAX_AUTH_LINE);

	if (policy_open(s->cfg, submit_mode, &ss.pol, &error) < 0) {
		log_err("policy-failed: error=<%s>", error);
		conn_printf(ss.c, "421 4.3.0 Service not available, closing connection\r\n");
		conn_flush(ss.c);
		return 1;
	}
	if (spool_open(s->cfg->spool_dir, getuid(), 0, &ss.sp, &error) < 0) {
		log_err("spool-failed: dir=%s, error=<%s: %s>", s->cfg->spool_dir, error,
			strerror(errno));
		smtp_sess_reply(&ss, 421, "4.3.0", "%s Service not available, closing connection",
				policy_hostname(ss.pol));
		conn_flush(ss.c);
		policy_free(&ss.pol);
		return 1;
	}
	/* every mode: it records the client's address for the policy's log lines (the
	 * DNSBL check itself is port 25's alone) */
	if (policy_client(ss.pol, ss.info->rip, &ss.client_reply) < 0)
		ss.refuse_client = true;
	ss.buf = xmalloc(SMTP_SESS_BUF);
	smtp_sess_txn_done(&ss);

	sess_loop(&ss);
	conn_flush(ss.c);
	log_info("disconnect: reason=%s, messages=%u, errors=%u, in=%" PRIu64 ", out=%" PRIu64
		 ", rip=%s, session=%s", ss.reason != NULL ? ss.reason : "error", ss.queued,
		 ss.errors, ss.c->in_bytes, ss.c->out_bytes, ss.rip_log,
		 ss.info->session_id[0] != '\0' ? ss.info->session_id : "-");
	if (ss.reason == NULL || strcmp(ss.reason, "error") == 0)
		status = 1;
	smtp_data_free(&ss.t);
	envelope_free(&ss.t.env);
	free(ss.buf);
	spool_close(&ss.sp);
	policy_free(&ss.pol);
	return status;
}
