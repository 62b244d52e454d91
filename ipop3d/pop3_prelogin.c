/* POP3 AUTHORIZATION state (RFC 1939 section 4, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
 * AUTH).  Runs in the unprivileged worker: every byte here is untrusted and no root
 * privilege is near.  Credentials go to the monitor through worker_login(); on LOGIN_OK
 * we write nothing more and return 1, and the session (pop3_session.c) says "+OK".
 *
 * Replies to refused logins, with RFC 2449 / RFC 3206 response codes:
 *   [AUTH]      the credentials are wrong (or must not be sent here, see below)
 *   [SYS/TEMP]  PAM trouble or the throttle: the password may be right, try later
 *   [IN-USE]    another POP3 session holds the mailbox
 *
 * Plaintext refused on an insecure connection: we answer "-ERR [AUTH] ...", as Dovecot
 * does.  RFC 3206 reserves [AUTH] for credential problems, and [SYS/PERM] would be the
 * literal reading, but clients treat [SYS/PERM] as "the server is broken, give up" with
 * a generic message, while after [AUTH] they show our text (which says what to do) and
 * let the user change settings.  Thunderbird, Outlook and mobile clients already meet
 * this exact behaviour at every Dovecot site, so it is the one they handle best. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "base/cmdloop.h"
#include "base/config.h"
#include "base/conn.h"
#include "base/plimits.h"
#include "base/log.h"
#include "pop3.h"
#include "sasl/sasl.h"
#include "base/util.h"

struct pre {
	struct server_worker *w;
	struct conn *c;
	const struct pop3_login_ops *ops;
	enum pop3_state state;
	struct cmdloop loop;
	struct pop3_cmd cmd;       /* the command being run (the loop parses into it) */
	unsigned failures;         /* refused logins on this connection */
	bool have_user;            /* USER given, waiting for PASS */
	bool stls_done;
	const char *reason;        /* why the connection ends (log) */
	char user[AUTH_MAX_USER + 1];
};

static bool tls_active(const struct pre *p)
{
	return p->stls_done || conn_tls_version(p->c) != NULL;
}

static bool stls_offered(const struct pre *p)
{
	return !tls_active(p) && p->w->ssl_ctx != NULL;
}

/* A mechanism may be used now: one that sends the password as it is needs TLS or a
 * trusted network. */
static bool mech_offered(const struct pre *p, const struct sasl_mech *m)
{
	return !m->plaintext || p->w->plaintext_ok;
}

static bool any_mech_offered(const struct pre *p)
{
	const struct sasl_mech *m;

	for (size_t i = 0; (m = sasl_mech_at(i)) != NULL; i++)
		if (mech_offered(p, m))
			return true;
	return false;
}

/* A password may not travel now: say so. */
static enum pop3_result plaintext_refused(struct pre *p)
{
	if (stls_offered(p))
		pop3_reply(p->c, POP3_ERR, POP3_CODE_AUTH, "Plaintext authentication "
			   "disallowed on non-secure connections, use STLS");
	else
		pop3_reply(p->c, POP3_ERR, POP3_CODE_AUTH, "Plaintext authentication "
			   "disallowed on non-secure connections.");
	return RES_ERR;
}

/* One login attempt through the monitor; wipes pass.  With a user name that has a byte
 * outside username_chars, the password never leaves the worker: the monitor gets the
 * name alone, refuses it before the throttle and PAM, and writes the auth-failed line
 * (the worker may not: fail2ban trusts those lines), with the delay of a wrong password. */
static enum pop3_result do_login(struct pre *p, const char *method, const char *user,
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
		return RES_LOGIN;
	case LOGIN_INUSE:
		pop3_reply(p->c, POP3_ERR, POP3_CODE_IN_USE,
			   "Mailbox is in use by another POP3 session.");
		p->reason = "in-use";
		return RES_DROP;
	case LOGIN_THROTTLED:
		/* not "wrong password": the client must come back later */
		pop3_reply(p->c, POP3_ERR, POP3_CODE_SYS_TEMP,
			   "Too many failed logins, try again later.");
		p->reason = "throttled";
		return RES_DROP;
	case LOGIN_TEMPFAIL:
		pop3_reply(p->c, POP3_ERR, POP3_CODE_SYS_TEMP,
			   "Temporary authentication failure, try again later.");
		break;
	case LOGIN_FAIL:
	default:
		pop3_reply(p->c, POP3_ERR, POP3_CODE_AUTH, "Authentication failed.");
		break;
	}
	if (++p->failures >= MAX_AUTH_ATTEMPTS) {
		p->reason = "auth-failures";
		return RES_DROP;
	}
	return RES_ERR;
}

static enum pop3_result cmd_capa(struct pre *p, const struct pop3_cmd *cmd)
{
	pop3_reply(p->c, POP3_OK, POP3_CODE_NONE, "Capability list follows");
	pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "TOP");
	pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "UIDL");
	pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "RESP-CODES");
	pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "AUTH-RESP-CODE");
	pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "PIPELINING");
	if (p->w->plaintext_ok)
		pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "USER");
	if (any_mech_offered(p)) {
		/* "SASL PLAIN LOGIN": the mechanisms usable now, in the table's order */
		char line[128] = "SASL";
		size_t n = 4;
		const struct sasl_mech *m;
		for (size_t i = 0; (m = sasl_mech_at(i)) != NULL; i++) {
			if (!mech_offered(p, m))
				continue;
			int k = snprintf(line + n, sizeof(line) - n, " %s", m->name);
			if (k < 0 || (size_t)k >= sizeof(line) - n)
				break;   /* BOUNDS: a name that does not fit is left out */
			n += (size_t)k;
		}
		pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "%s", line);
	}
	if (stls_offered(p))
		pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "STLS");
	pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "IMPLEMENTATION postern");
	pop3_reply(p->c, POP3_END, POP3_CODE_NONE, NULL);
	return RES_OK;
}

static enum pop3_result cmd_quit(struct pre *p, const struct pop3_cmd *cmd)
{
	pop3_reply(p->c, POP3_OK, POP3_CODE_NONE, "Logging out.");
	p->reason = "quit";
	return RES_QUIT;
}

static enum pop3_result cmd_stls(struct pre *p, const struct pop3_cmd *cmd)
{
	if (tls_active(p)) {
		pop3_reply(p->c, POP3_ERR, POP3_CODE_NONE, "Command not permitted when TLS active.");
		return RES_ERR;
	}
	if (p->w->ssl_ctx == NULL) {
		pop3_reply(p->c, POP3_ERR, POP3_CODE_SYS_PERM, "TLS is not available.");
		return RES_ERR;
	}
	pop3_reply(p->c, POP3_OK, POP3_CODE_NONE, "Begin TLS negotiation.");
	if (conn_flush(p->c) < 0) {
		p->reason = "error";
		return RES_DROP;
	}
	/* worker_starttls() drops any input that came before the handshake (RFC 2595) */
	if (p->ops->starttls(p->w) < 0) {
		p->reason = "tls-failed";
		return RES_DROP;
	}
	p->stls_done = true;
	/* nothing learnt before TLS may be kept: it could have been injected */
	p->have_user = false;
	util_wipe(p->user, sizeof(p->user));
	return RES_OK;
}

static enum pop3_result cmd_user(struct pre *p, const struct pop3_cmd *cmd)
{
	const struct pop3_arg *a = &cmd->args[0];

	p->have_user = false;
	if (!p->w->plaintext_ok)
		return plaintext_refused(p);
	if (a->len > AUTH_MAX_USER) {
		pop3_reply(p->c, POP3_ERR, POP3_CODE_NONE, "Username too long.");
		return RES_BAD;
	}
	memcpy(p->user, a->p, a->len);
	p->user[a->len] = '\0';
	p->have_user = true;
	/* never say whether the user exists (RFC 1939 allows either), nor whether the name
	 * has a byte that no name may have: that shows at PASS, as a wrong password */
	pop3_reply(p->c, POP3_OK, POP3_CODE_NONE, NULL);
	return RES_OK;
}

static enum pop3_result cmd_pass(struct pre *p, const struct pop3_cmd *cmd)
{
	const struct pop3_arg *a = &cmd->args[0];
	char pass[AUTH_MAX_PASS + 1];

	if (!p->w->plaintext_ok) {
		p->have_user = false;
		return plaintext_refused(p);
	}
	if (!p->have_user) {
		pop3_reply(p->c, POP3_ERR, POP3_CODE_NONE, "No username given.");
		return RES_ERR;
	}
	/* RFC 1939: after PASS, successful or not, USER must come again */
	p->have_user = false;
	if (a->len > AUTH_MAX_PASS) {
		pop3_reply(p->c, POP3_ERR, POP3_CODE_AUTH, "Authentication failed.");
		return RES_BAD;
	}
	memcpy(pass, a->p, a->len);
	pass[a->len] = '\0';
	enum pop3_result r = do_login(p, "USER", p->user, pass);
	util_wipe(pass, sizeof(pass));
	return r;
}

static enum pop3_result cmd_apop(struct pre *p, const struct pop3_cmd *cmd)
{
	/* APOP needs the plaintext password on the server side: we have none */
	pop3_reply(p->c, POP3_ERR, POP3_CODE_NONE, "APOP is not supported.");
	return RES_ERR;
}

/* A finished or failed SASL exchange: log in, or answer why not. */
static enum pop3_result auth_result(struct pre *p, struct sasl_server *s, int st)
{
	const char *method = sasl_server_mech(s)->name;

	switch (st) {
	case SASL_DONE: {
		const struct sasl_creds *cr = sasl_server_creds(s);
		char pass[AUTH_MAX_PASS + 1];
		memcpy(pass, cr->secret, sizeof(pass));
		enum pop3_result res = do_login(p, method, cr->authcid, pass);
		util_wipe(pass, sizeof(pass));
		return res;
	}
	case SASL_E_CANCEL:
		pop3_reply(p->c, POP3_ERR, POP3_CODE_NONE, "Authentication cancelled.");
		return RES_ERR;
	case SASL_E_BASE64:
		pop3_reply(p->c, POP3_ERR, POP3_CODE_NONE, "Invalid base64 data.");
		return RES_BAD;
	default:
		log_debug("auth-invalid: method=%s, error=%s, rip=%s", method,
			  sasl_server_error(s), p->w->rip_str);
		pop3_reply(p->c, POP3_ERR, POP3_CODE_AUTH, "Authentication failed.");
		return RES_BAD;
	}
}

/* RFC 5034: the exchange, "+ challenge" and a response line at a time, until the
 * mechanism is done, fails, or the client cancels with "*". */
static enum pop3_result auth_exchange(struct pre *p, struct sasl_server *s,
				      const struct pop3_cmd *cmd)
{
	const struct pop3_arg *ir = cmd->nargs == 2 ? &cmd->args[1] : NULL;
	int st = sasl_server_start(s, ir != NULL ? ir->p : NULL, ir != NULL ? ir->len : 0);

	while (st == SASL_CONTINUE) {
		const char *line;
		size_t len;

		pop3_reply(p->c, POP3_CONT, POP3_CODE_NONE, "%s", sasl_server_challenge(s));
		if (conn_flush(p->c) < 0) {
			p->reason = "error";
			return RES_DROP;
		}
		int r = cmdloop_line(&p->loop, &line, &len);
		if (r == 0) {
			p->reason = p->loop.reason;
			return RES_DROP;
		}
		if (r < 0)
			return RES_BAD;   /* bad bytes: answered; the exchange is over */
		st = sasl_server_step(s, line, len);
	}
	return auth_result(p, s, st);
}

static enum pop3_result cmd_auth(struct pre *p, const struct pop3_cmd *cmd)
{
	if (!any_mech_offered(p))
		return plaintext_refused(p);
	p->have_user = false;
	if (cmd->nargs == 0) {
		/* not in RFC 5034, but older clients (RFC 1734 era) list mechanisms so */
		const struct sasl_mech *m;
		pop3_reply(p->c, POP3_OK, POP3_CODE_NONE, NULL);
		for (size_t i = 0; (m = sasl_mech_at(i)) != NULL; i++)
			if (mech_offered(p, m))
				pop3_reply(p->c, POP3_DATA, POP3_CODE_NONE, "%s", m->name);
		pop3_reply(p->c, POP3_END, POP3_CODE_NONE, NULL);
		return RES_OK;
	}

	const struct sasl_mech *mech = sasl_mech_find(cmd->args[0].p, cmd->args[0].len);
	if (mech != NULL && !mech_offered(p, mech))
		return plaintext_refused(p);
	if (mech == NULL) {
		pop3_reply(p->c, POP3_ERR, POP3_CODE_NONE, "Unsupported authentication mechanism.");
		return RES_ERR;
	}
	struct sasl_server *s = sasl_server_new(mech);
	enum pop3_result res = auth_exchange(p, s, cmd);
	sasl_server_free(&s);
	return res;
}

/* The command loop's handlers: typed handlers above, called through one signature. */
#define PRE_HANDLER(name) \
	static int loop_##name(void *ctx, const void *cmd) { return (int)name(ctx, cmd); }
PRE_HANDLER(cmd_user)
PRE_HANDLER(cmd_pass)
PRE_HANDLER(cmd_apop)
PRE_HANDLER(cmd_auth)
PRE_HANDLER(cmd_stls)
PRE_HANDLER(cmd_capa)
PRE_HANDLER(cmd_quit)

static cmdloop_handler *const pre_handlers[POP3_CMD_COUNT] = {
	[POP3_CMD_USER] = loop_cmd_user,
	[POP3_CMD_PASS] = loop_cmd_pass,
	[POP3_CMD_APOP] = loop_cmd_apop,
	[POP3_CMD_AUTH] = loop_cmd_auth,
	[POP3_CMD_STLS] = loop_cmd_stls,
	[POP3_CMD_CAPA] = loop_cmd_capa,
	[POP3_CMD_QUIT] = loop_cmd_quit,
};

static unsigned pre_state(const struct cmdloop *l)
{
	const struct pre *p = l->ctx;
	return (unsigned)p->state;
}

static const struct cmdloop_ops pre_loop_ops = {
	.parse = pop3_loop_parse,
	.state = pre_state,
	.reply_error = pop3_reply_error,
};

int pop3_prelogin_run(struct server_worker *w, const struct pop3_login_ops *ops)
{
	struct pre p = { .w = w, .c = w->c, .ops = ops, .state = POP3_AUTHORIZATION };

	p.loop = (struct cmdloop){
		.c = p.c, .ops = &pre_loop_ops, .ctx = &p, .cmd = &p.cmd,
		.handlers = pre_handlers, .nhandlers = POP3_CMD_COUNT,
		.max_bad = MAX_BAD_COMMANDS, .log_user = "", .rip = w->rip_str,
	};
	pop3_reply(p.c, POP3_OK, POP3_CODE_NONE, "%s", POP3_GREETING_TEXT);
	int res = cmdloop_run(&p.loop);
	if (res == CMDLOOP_END)
		p.reason = p.loop.reason;
	util_wipe(p.user, sizeof(p.user));
	util_wipe(&p.cmd, sizeof(p.cmd));
	if (res == RES_LOGIN)
		return 1;
	conn_flush(p.c);
	log_info("disconnect: reason=%s, auth_failures=%u, rip=%s",
		 p.reason != NULL ? p.reason : "error", p.failures, w->rip_str);
	return 0;
}

int pop3_prelogin(struct server_worker *w)
{
	static const struct pop3_login_ops ops = {
		.login = worker_login,
		.starttls = worker_starttls,
	};
	return pop3_prelogin_run(w, &ops);
}

void pop3_prelogin_refuse(struct conn *c, enum server_refusal why)
{
	switch (why) {
	case REFUSE_HOSTS_DENY:
		pop3_reply(c, POP3_ERR, POP3_CODE_SYS_PERM, "Access denied.");
		break;
	case REFUSE_CONFIG:
		pop3_reply(c, POP3_ERR, POP3_CODE_SYS_TEMP,
			   "Server configuration error, try again later.");
		break;
	case REFUSE_TOO_MANY:
		pop3_reply(c, POP3_ERR, POP3_CODE_SYS_TEMP,
			   "Too many connections from your address, try again later.");
		break;
	default:
		pop3_reply(c, POP3_ERR, POP3_CODE_SYS_TEMP, "Server error, try again later.");
		break;
	}
	conn_flush(c);
}
