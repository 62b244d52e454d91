/* smtp-submit's pre-login dialogue, in the sandboxed worker (user postern, empty chroot):
 * every byte here is untrusted and no privilege is near.  RFC 5321 with the greeting,
 * EHLO/HELO, STARTTLS (RFC 3207), AUTH PLAIN/LOGIN (RFC 4954, common/sasl), NOOP,
 * RSET, HELP, VRFY (never says whether a user exists), QUIT.  Parsing is
 * common/smtp/smtp_cmd.c's, replies are written by smtp_reply.c (so no client byte can
 * end up as a reply line of its own).
 *
 * Where it ends:
 * - 587/465: AUTH succeeds -> "235 2.7.0", return 1: the session (as spool_user) reads
 *   whatever comes next.  MAIL before it -> 530 5.7.0.
 * - 25: the first MAIL after EHLO/HELO -> worker_start_session(): the monitor forks the
 *   session with our HELO and TLS facts; the MAIL line goes to it as its first input,
 *   and whatever the client pipelined behind it follows through the relay.  We answer
 *   nothing to that MAIL: the session does.
 * - anything else ends the connection: QUIT, EOF, too many errors (max_errors: 421),
 *   the idle timeout or the pre-login deadline (421 4.4.2), too many failed logins, a
 *   line too long to resynchronize after, a client that talks before the greeting
 *   (port 25, greet_pause_ms: 554 5.5.1 and dropped, as Postfix's postscreen does). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include "base/config.h"
#include "base/conn.h"
#include "base/linebuf.h"
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "sasl/sasl.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_reply.h"
#include "smtp.h"

/* What a command handler says about the connection. */
enum pre_res {
	PRE_OK,          /* answered; go on */
	PRE_ERROR,       /* answered with an error that counts against max_errors */
	PRE_END,         /* answered (or not); close the connection */
	PRE_HANDOVER,    /* the session has the connection now */
};

struct pre {
	struct server_worker *w;
	struct conn *c;
	const struct smtp_login_ops *ops;
	enum submit_mode mode;
	const char *name;          /* our host name */
	bool helo_done;            /* HELO or EHLO since the start (or since STARTTLS) */
	bool tls;                  /* TLS is on (implicit, or after STARTTLS) */
	unsigned errors;           /* answered errors, against max_errors */
	unsigned max_errors;
	unsigned auth_failures;    /* refused logins, against MAX_AUTH_ATTEMPTS */
	const char *reason;        /* why the connection ends (log) */
	struct smtp_cmd cmd;
};

/* One reply line; a text that smtp_reply_format1() refuses (it never should: our texts
 * are fixed) is replaced by a generic one rather than sent. */
static void __attribute__((format(printf, 4, 5)))
reply(struct pre *p, unsigned code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_MAX_REPLY_LINE], out[SMTP_MAX_REPLY_LINE + 1];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(text) ||
	    smtp_reply_format1(out, sizeof(out), code, enh, text, &len) == -1) {
		log_err("smtp: reply-failed, code=%u, rip=%s", code, p->w->rip_str);
		if (smtp_reply_format1(out, sizeof(out), 451, "4.3.0", "Internal error",
				       &len) == -1)
			return;
	}
	conn_write(p->c, out, len);
}

/* An answered error: counted; past max_errors the connection ends with 421. */
static enum pre_res error_counted(struct pre *p)
{
	if (++p->errors < p->max_errors)
		return PRE_ERROR;
	reply(p, 421, "4.7.0", "%s Error: too many errors", p->name);
	log_info("bad-input: reason=too-many-errors, rip=%s", p->w->rip_str);
	p->reason = "too-many-errors";
	return PRE_END;
}

static bool auth_mode(const struct pre *p)
{
	return p->mode == SUBMIT_MODE_SUBMISSION || p->mode == SUBMIT_MODE_SMTPS;
}

static bool starttls_offered(const struct pre *p)
{
	return !p->tls && p->w->ssl_ctx != NULL;
}

/* A mechanism that sends the password as it is needs TLS or plaintext_auth_from. */
static bool mech_offered(const struct pre *p, const struct sasl_mech *m)
{
	return auth_mode(p) && (!m->plaintext || p->w->plaintext_ok);
}

/* The ESMTP parameters of what our EHLO offered (smtp_cmd_parse() flags). */
static unsigned parse_flags(const struct pre *p)
{
	return p->helo_done && p->w->esmtp ? SMTP_EXT_SIZE | SMTP_EXT_8BITMIME |
					     SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN : 0;
}

static enum pre_res cmd_helo(struct pre *p, const struct smtp_cmd *cmd)
{
	struct server_worker *w = p->w;

	/* RFC 1035: a domain is at most 255 octets; session_info has room for that */
	if (cmd->arg_len >= sizeof(w->helo)) {
		reply(p, 501, "5.5.4", "Syntax: %s hostname (at most 255 characters)",
		      cmd->verb == SMTP_VERB_EHLO ? "EHLO" : "HELO");
		return error_counted(p);
	}
	memcpy(w->helo, cmd->arg, cmd->arg_len);
	w->helo[cmd->arg_len] = '\0';
	w->esmtp = cmd->verb == SMTP_VERB_EHLO;
	p->helo_done = true;
	if (!w->esmtp) {
		reply(p, 250, NULL, "%s", p->name);   /* RFC 2034: no status code here */
		return PRE_OK;
	}
	char size[40], auth[64] = "AUTH";
	const char *kw[12];
	size_t n = 0;
	unsigned limit = w->cfg->message_size_limit != 0 ? w->cfg->message_size_limit
							: SUBMIT_SIZE_LIMIT_DEFAULT;
	snprintf(size, sizeof(size), "SIZE %u", limit);
	kw[n++] = "PIPELINING";
	kw[n++] = size;
	if (starttls_offered(p))
		kw[n++] = "STARTTLS";
	const struct sasl_mech *m;
	size_t alen = 4;
	for (size_t i = 0; (m = sasl_mech_at(i)) != NULL; i++) {
		if (!mech_offered(p, m))
			continue;
		int k = snprintf(auth + alen, sizeof(auth) - alen, " %s", m->name);
		if (k < 0 || (size_t)k >= sizeof(auth) - alen)
			break;   /* BOUNDS: a name that does not fit is left out */
		alen += (size_t)k;
	}
	if (alen > 4)
		kw[n++] = auth;
	kw[n++] = "ENHANCEDSTATUSCODES";
	kw[n++] = "8BITMIME";
	kw[n++] = "DSN";
	kw[n++] = "SMTPUTF8";
	kw[n++] = "CHUNKING";
	/* BOUNDS: at most 9 keywords of at most 64 octets, far below SMTP_MAX_REPLY_SIZE */
	char out[2048];
	size_t len;
	if (smtp_reply_ehlo(out, sizeof(out), p->name, NULL, kw, n, &len) == -1) {
		reply(p, 451, "4.3.0", "Internal error");
		return PRE_ERROR;
	}
	conn_write(p->c, out, len);
	return PRE_OK;
}

/* RFC 3207.  After the handshake nothing from before it is kept: the client's pipelined
 * plaintext (conn_starttls() drops it) and its HELO (it must say EHLO again). */
static enum pre_res cmd_starttls(struct pre *p)
{
	if (p->tls) {
		reply(p, 503, "5.5.1", "Error: TLS already active");
		return error_counted(p);
	}
	if (p->w->ssl_ctx == NULL) {
		reply(p, 454, "4.7.0", "TLS not available");
		return PRE_ERROR;
	}
	reply(p, 220, "2.0.0", "Ready to start TLS");
	if (conn_flush(p->c) < 0) {
		p->reason = "error";
		return PRE_END;
	}
	if (p->ops->starttls(p->w) < 0) {
		p->reason = "tls-failed";
		return PRE_END;
	}
	p->tls = true;
	p->helo_done = false;
	p->w->helo[0] = '\0';
	p->w->esmtp = false;
	return PRE_OK;
}

/* One login attempt; wipes pass.  A user name with a byte outside username_chars goes to
 * the monitor without its password (it refuses the name and writes the auth-failed line,
 * which the worker may not: fail2ban trusts those lines). */
static enum pre_res do_login(struct pre *p, const char *method, const char *user,
			     char *pass)
{
	enum server_login r;

	if (!config_username_ok(p->w->cfg, user, strlen(user))) {
		char none[1] = "";
		util_wipe(pass, strlen(pass));
		r = p->ops->login(p->w, method, user, none);
		if (r == LOGIN_OK)
			r = LOGIN_TEMPFAIL;   /* a monitor that let it in is broken */
	} else {
		r = p->ops->login(p->w, method, user, pass);
		util_wipe(pass, strlen(pass));
	}
	switch (r) {
	case LOGIN_OK:
		reply(p, 235, "2.7.0", "Authentication successful");
		return PRE_HANDOVER;
	case LOGIN_THROTTLED:
		/* not "wrong password": the client must come back later, and not on this
		 * connection, which the throttle would refuse again */
		reply(p, 454, "4.7.0", "Too many failed logins, try again later");
		p->reason = "throttled";
		return PRE_END;
	case LOGIN_TEMPFAIL:
	case LOGIN_INUSE:
		reply(p, 454, "4.7.0", "Temporary authentication failure, try again later");
		break;
	case LOGIN_FAIL:
	default:
		reply(p, 535, "5.7.8", "Authentication credentials invalid");
		break;
	}
	if (++p->auth_failures >= MAX_AUTH_ATTEMPTS) {
		reply(p, 421, "4.7.0", "%s Error: too many failed authentications", p->name);
		p->reason = "auth-failures";
		return PRE_END;
	}
	return PRE_OK;
}

/* A finished or failed SASL exchange. */
static enum pre_res auth_result(struct pre *p, struct sasl_server *s, int st)
{
	const char *method = sasl_server_mech(s)->name;

	switch (st) {
	case SASL_DONE: {
		const struct sasl_creds *cr = sasl_server_creds(s);
		char pass[AUTH_MAX_PASS + 1];
		memcpy(pass, cr->secret, sizeof(pass));
		enum pre_res res = do_login(p, method, cr->authcid, pass);
		util_wipe(pass, sizeof(pass));
		return res;
	}
	case SASL_E_CANCEL:
		reply(p, 501, "5.7.0", "Authentication cancelled");
		return PRE_OK;
	case SASL_E_BASE64:
		reply(p, 501, "5.5.2", "Invalid base64 data");
		return error_counted(p);
	case SASL_E_TOO_LONG:
		reply(p, 500, "5.5.6", "Authentication exchange line is too long");
		return error_counted(p);
	default:
		log_debug("auth-invalid: method=%s, error=%s, rip=%s", method,
			  sasl_server_error(s), p->w->rip_str);
		reply(p, 535, "5.7.8", "Authentication credentials invalid");
		return error_counted(p);
	}
}

/* The input ended or failed where a line was expected: say why (log) and whether a
 * reply is due (the timeouts). */
static enum pre_res input_ended(struct pre *p, int r)
{
	if (r == 0) {
		p->reason = "eof";
	} else if (errno == ETIMEDOUT) {
		reply(p, 421, "4.4.2", "%s Error: timeout exceeded", p->name);
		p->reason = "timeout";
	} else {
		p->reason = "error";
	}
	return PRE_END;
}

/* RFC 4954: "334 challenge" and a response line at a time, until the mechanism is done,
 * fails, or the client cancels with "*". */
static enum pre_res cmd_auth(struct pre *p, const struct smtp_cmd *cmd)
{
	if (!auth_mode(p)) {
		reply(p, 503, "5.5.1", "Error: authentication not enabled");
		return error_counted(p);
	}
	if (!p->helo_done || !p->w->esmtp) {
		reply(p, 503, "5.5.1", "Error: send EHLO first");
		return error_counted(p);
	}
	const struct sasl_mech *mech = sasl_mech_find(cmd->arg, cmd->arg_len);
	if (mech == NULL) {
		reply(p, 504, "5.5.4", "Unrecognized authentication type");
		return error_counted(p);
	}
	if (!mech_offered(p, mech)) {
		reply(p, 538, "5.7.11", "Encryption required for requested authentication "
		      "mechanism");
		return error_counted(p);
	}
	struct sasl_server *s = sasl_server_new(mech);
	int st = sasl_server_start(s, cmd->auth_ir, cmd->auth_ir_len);
	enum pre_res res = PRE_OK;
	bool done = false;
	while (st == SASL_CONTINUE) {
		const char *line;
		size_t len;
		const char *ch = sasl_server_challenge(s);
		/* "334 " and the challenge; an empty one is "334 " (RFC 4954 section 4) */
		char out[SMTP_MAX_REPLY_LINE + 1];
		int n = snprintf(out, sizeof(out), "334 %s\r\n", ch);
		if (n < 0 || (size_t)n >= sizeof(out)) {
			reply(p, 454, "4.7.0", "Temporary authentication failure");
			done = true;
			break;
		}
		conn_write(p->c, out, (size_t)n);
		int r = conn_read_line(p->c, &line, &len);
		if (r == LINEBUF_TOO_LONG) {
			reply(p, 500, "5.5.6", "Authentication exchange line is too long");
			p->reason = "line-too-long";
			res = PRE_END;
			done = true;
			break;
		}
		if (r == LINEBUF_BAD_BYTE) {
			reply(p, 501, "5.5.2", "Invalid base64 data");
			res = error_counted(p);
			done = true;
			break;
		}
		if (r != 1) {
			res = input_ended(p, r);
			done = true;
			break;
		}
		st = sasl_server_step(s, line, len);
	}
	if (!done)
		res = auth_result(p, s, st);
	sasl_server_free(&s);
	return res;
}

static enum pre_res cmd_mail(struct pre *p, const char *line, size_t len,
			     const struct smtp_cmd_error *perr, bool parsed)
{
	if (auth_mode(p)) {
		reply(p, 530, "5.7.0", "Authentication required");
		return error_counted(p);
	}
	if (!p->helo_done) {
		reply(p, 503, "5.5.1", "Error: send HELO/EHLO first");
		return error_counted(p);
	}
	if (!parsed) {
		reply(p, perr->code, perr->enh, "%s", perr->text);
		return error_counted(p);
	}
	/* our answers so far go out before the session's first */
	if (conn_flush(p->c) < 0) {
		p->reason = "error";
		return PRE_END;
	}
	if (p->ops->start_session(p->w, line, len) == LOGIN_OK)
		return PRE_HANDOVER;
	reply(p, 421, "4.3.0", "%s Error: temporary failure, try again later", p->name);
	p->reason = "session-failed";
	return PRE_END;
}

/* One command line. */
static enum pre_res pre_command(struct pre *p, const char *line, size_t len)
{
	struct smtp_cmd *cmd = &p->cmd;
	struct smtp_cmd_error err;
	bool parsed = smtp_cmd_parse(line, len, parse_flags(p), cmd, &err) == 0;

	/* what must be said whatever the arguments */
	switch (cmd->verb) {
	case SMTP_VERB_MAIL:
		return cmd_mail(p, line, len, &err, parsed);
	case SMTP_VERB_RCPT:
	case SMTP_VERB_DATA:
	case SMTP_VERB_BDAT:
		reply(p, 503, "5.5.1", "Error: need MAIL command");
		return error_counted(p);
	default:
		break;
	}
	if (!parsed) {
		if (err.detail != NULL)
			log_debug("bad-input: reason=%s, rip=%s", err.detail, p->w->rip_str);
		reply(p, err.code, err.enh, "%s", err.text);
		return error_counted(p);
	}
	switch (cmd->verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		return cmd_helo(p, cmd);
	case SMTP_VERB_STARTTLS:
		return cmd_starttls(p);
	case SMTP_VERB_AUTH:
		return cmd_auth(p, cmd);
	case SMTP_VERB_RSET:
	case SMTP_VERB_NOOP:
		reply(p, 250, "2.0.0", "Ok");
		return PRE_OK;
	case SMTP_VERB_HELP:
		reply(p, 214, "2.0.0", "postern smtp-submit: see RFC 5321");
		return PRE_OK;
	case SMTP_VERB_VRFY:
		/* never says whether a user exists */
		reply(p, 252, "2.5.2", "Cannot verify the user, but will accept the message");
		return PRE_OK;
	case SMTP_VERB_EXPN:
		reply(p, 502, "5.5.1", "Error: EXPN is not available");
		return error_counted(p);
	case SMTP_VERB_QUIT:
		reply(p, 221, "2.0.0", "Bye");
		p->reason = "quit";
		return PRE_END;
	default:
		reply(p, 500, "5.5.2", "Command not recognized");
		return error_counted(p);
	}
}

/* Port 25: greet_pause_ms of silence is asked of the client before the greeting.
 * Returns true to go on, false when the client talked (dropped) or left. */
static bool pre_greet_pause(struct pre *p)
{
	unsigned ms = p->w->cfg->greet_pause_ms;

	if (p->mode != SUBMIT_MODE_MX || ms == 0 || p->tls)
		return true;
	int ev = conn_wait_event(p->c, -1, util_now_ms() + ms);
	if (ev == CONN_EV_TIMER)
		return true;
	const char *data;
	if (ev == CONN_EV_INPUT &&
	    (conn_pending(p->c, &data) > 0 || conn_read_more(p->c, false) > 0)) {
		reply(p, 554, "5.5.1", "Protocol error: talked before the greeting");
		log_info("pregreet: rip=%s", p->w->rip_str);
		p->reason = "pregreet";
		return false;
	}
	p->reason = ev == -1 && errno == ETIMEDOUT ? "timeout" : ev == -1 ? "error" : "eof";
	return false;
}

int smtp_prelogin_run(struct server_worker *w, enum submit_mode mode,
		      const struct smtp_login_ops *ops)
{
	struct pre p = {
		.w = w, .c = w->c, .ops = ops, .mode = mode, .name = submit_hostname(w->cfg),
		.tls = conn_tls_version(w->c) != NULL,
		.max_errors = w->cfg->max_errors != 0 ? w->cfg->max_errors
						       : SUBMIT_MAX_ERRORS_DEFAULT,
	};
	enum pre_res res = PRE_END;

	w->helo[0] = '\0';
	w->esmtp = false;
	if (pre_greet_pause(&p)) {
		reply(&p, 220, NULL, "%s ESMTP postern", p.name);
		for (;;) {
			const char *line;
			size_t len;
			int r = conn_read_line(p.c, &line, &len);
			if (r == LINEBUF_TOO_LONG) {
				/* never resynchronized in the middle of a line (STYLE.md) */
				reply(&p, 500, "5.5.2", "Line too long");
				log_info("bad-input: reason=line-too-long, rip=%s", w->rip_str);
				p.reason = "line-too-long";
				break;
			}
			if (r == LINEBUF_BAD_BYTE) {
				reply(&p, 500, "5.5.2", "Control characters not allowed");
				if (error_counted(&p) == PRE_END)
					break;
				continue;
			}
			if (r != 1) {
				input_ended(&p, r);
				break;
			}
			res = pre_command(&p, line, len);
			if (res == PRE_END || res == PRE_HANDOVER)
				break;
		}
	}
	util_wipe(&p.cmd, sizeof(p.cmd));
	if (res == PRE_HANDOVER) {
		if (conn_flush(p.c) == 0)
			return 1;
		p.reason = "error";
	}
	conn_flush(p.c);
	log_info("disconnect: reason=%s, auth_failures=%u, errors=%u, rip=%s",
		 p.reason != NULL ? p.reason : "error", p.auth_failures, p.errors, w->rip_str);
	return 0;
}

enum server_login smtp_prelogin_start_session(struct server_worker *w, const char *line,
					      size_t len)
{
	enum server_login r = worker_start_session(w);
	if (r != LOGIN_OK)
		return r;
	/* BOUNDS: len < SMTP_MAX_MAIL_LINE, far below a socket buffer: this never waits
	 * long, and the session is there to read it */
	char buf[SMTP_MAX_MAIL_LINE + 2];
	if (len > SMTP_MAX_MAIL_LINE)
		return LOGIN_TEMPFAIL;
	memcpy(buf, line, len);
	memcpy(buf + len, "\r\n", 2);
	size_t off = 0;
	while (off < len + 2) {
		ssize_t n = send(w->data_fd, buf + off, len + 2 - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = w->data_fd, .events = POLLOUT };
			if (poll(&pfd, 1, SESSION_START_TIMEOUT_MS) <= 0)
				return LOGIN_TEMPFAIL;
			continue;
		}
		if (n <= 0)
			return LOGIN_TEMPFAIL;
		off += (size_t)n;
	}
	return LOGIN_OK;
}

int smtp_prelogin(struct server_worker *w)
{
	static const struct smtp_login_ops ops = {
		.login = worker_login,
		.starttls = worker_starttls,
		.start_session = smtp_prelogin_start_session,
	};
	return smtp_prelogin_run(w, submit_mode, &ops);
}

void smtp_prelogin_refuse(struct conn *c, enum server_refusal why)
{
	const char *line;

	switch (why) {
	case REFUSE_HOSTS_DENY:
		line = "554 5.7.1 Access denied\r\n";
		break;
	case REFUSE_CONFIG:
		line = "421 4.3.0 Server configuration error, try again later\r\n";
		break;
	case REFUSE_TOO_MANY:
		line = "421 4.7.0 Too many connections from your address, try again later\r\n";
		break;
	default:
		line = "421 4.3.0 Server error, try again later\r\n";
		break;
	}
	conn_write(c, line, strlen(line));
	conn_flush(c);
}
