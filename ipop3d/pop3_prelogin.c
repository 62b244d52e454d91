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
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/conn.h"
#include "base/plimits.h"
#include "base/log.h"
#include "pop3.h"
#include "sasl/sasl.h"
#include "base/util.h"

/* Decoded SASL data: base64 of a SASL_MAX_LINE line. */
#define PRE_SASL_DECODED (SASL_MAX_LINE / 4 * 3)

struct pre {
	struct server_worker *w;
	struct conn *c;
	const struct pop3_login_ops *ops;
	enum pop3_state state;
	struct pop3_input in;
	unsigned failures;         /* refused logins on this connection */
	bool have_user;            /* USER given, waiting for PASS */
	bool stls_done;
	const char *reason;        /* why the connection ends (log) */
	char user[AUTH_MAX_USER + 1];
};

typedef enum pop3_result pre_handler(struct pre *p, const struct pop3_cmd *cmd);

static void reply(struct pre *p, const char *line)
{
	conn_printf(p->c, "%s\r\n", line);
}

static bool tls_active(const struct pre *p)
{
	return p->stls_done || conn_tls_version(p->c) != NULL;
}

static bool stls_offered(const struct pre *p)
{
	return !tls_active(p) && p->w->ssl_ctx != NULL;
}

/* A password may not travel now: say so. */
static enum pop3_result plaintext_refused(struct pre *p)
{
	if (stls_offered(p))
		reply(p, "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		      "connections, use STLS");
	else
		reply(p, "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
		      "connections.");
	return RES_ERR;
}

/* One login attempt through the monitor; wipes pass. */
static enum pop3_result do_login(struct pre *p, const char *method, const char *user,
				 char *pass)
{
	enum server_login r = p->ops->login(p->w, method, user, pass);

	util_wipe(pass, strlen(pass));
	switch (r) {
	case LOGIN_OK:
		return RES_LOGIN;
	case LOGIN_INUSE:
		reply(p, "-ERR [IN-USE] Mailbox is in use by another POP3 session.");
		p->reason = "in-use";
		return RES_DROP;
	case LOGIN_THROTTLED:
		/* not "wrong password": the client must come back later */
		reply(p, "-ERR [SYS/TEMP] Too many failed logins, try again later.");
		p->reason = "throttled";
		return RES_DROP;
	case LOGIN_TEMPFAIL:
		reply(p, "-ERR [SYS/TEMP] Temporary authentication failure, try again later.");
		break;
	case LOGIN_FAIL:
	default:
		reply(p, "-ERR [AUTH] Authentication failed.");
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
	reply(p, "+OK Capability list follows");
	reply(p, "TOP");
	reply(p, "UIDL");
	reply(p, "RESP-CODES");
	reply(p, "AUTH-RESP-CODE");
	reply(p, "PIPELINING");
	if (p->w->plaintext_ok) {
		reply(p, "USER");
		reply(p, "SASL PLAIN LOGIN");
	}
	if (stls_offered(p))
		reply(p, "STLS");
	reply(p, "IMPLEMENTATION postern");
	reply(p, ".");
	return RES_OK;
}

static enum pop3_result cmd_quit(struct pre *p, const struct pop3_cmd *cmd)
{
	reply(p, "+OK Logging out.");
	p->reason = "quit";
	return RES_QUIT;
}

static enum pop3_result cmd_stls(struct pre *p, const struct pop3_cmd *cmd)
{
	if (tls_active(p)) {
		reply(p, "-ERR Command not permitted when TLS active.");
		return RES_ERR;
	}
	if (p->w->ssl_ctx == NULL) {
		reply(p, "-ERR [SYS/PERM] TLS is not available.");
		return RES_ERR;
	}
	reply(p, "+OK Begin TLS negotiation.");
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
		reply(p, "-ERR Username too long.");
		return RES_BAD;
	}
	memcpy(p->user, a->p, a->len);
	p->user[a->len] = '\0';
	p->have_user = true;
	/* never say whether the user exists (RFC 1939 allows either) */
	reply(p, "+OK");
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
		reply(p, "-ERR No username given.");
		return RES_ERR;
	}
	/* RFC 1939: after PASS, successful or not, USER must come again */
	p->have_user = false;
	if (a->len > AUTH_MAX_PASS) {
		reply(p, "-ERR [AUTH] Authentication failed.");
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
	reply(p, "-ERR APOP is not supported.");
	return RES_ERR;
}

/* One SASL client response: after the challenge (base64, or "" for an empty one), read a
 * line and decode it.  0 with *len_r set, or -1 with *res_r (reply written). */
static int sasl_response(struct pre *p, const char *challenge, unsigned char *out,
			 size_t out_size, size_t *len_r, enum pop3_result *res_r)
{
	const char *line;
	size_t len;

	conn_printf(p->c, "+ %s\r\n", challenge);
	if (conn_flush(p->c) < 0) {
		p->reason = "error";
		*res_r = RES_DROP;
		return -1;
	}
	int r = pop3_input_line(&p->in, &line, &len);
	if (r == 0) {
		p->reason = p->in.reason;
		*res_r = RES_DROP;
		return -1;
	}
	if (r < 0) {
		*res_r = RES_BAD;
		return -1;
	}
	if (len == 1 && line[0] == '*') {
		reply(p, "-ERR Authentication cancelled.");
		*res_r = RES_ERR;
		return -1;
	}
	long n = sasl_b64_decode(line, len, out, out_size);
	if (n < 0) {
		reply(p, "-ERR Invalid base64 data.");
		*res_r = RES_BAD;
		return -1;
	}
	*len_r = (size_t)n;
	return 0;
}

/* The initial response on the AUTH line ("=" is an empty one).  0 or -1 with *res_r. */
static int sasl_initial(struct pre *p, const struct pop3_arg *a, unsigned char *out,
			size_t out_size, size_t *len_r, enum pop3_result *res_r)
{
	long n = sasl_b64_decode(a->p, a->len, out, out_size);
	if (n < 0) {
		reply(p, "-ERR Invalid base64 data.");
		*res_r = RES_BAD;
		return -1;
	}
	*len_r = (size_t)n;
	return 0;
}

static enum pop3_result auth_plain(struct pre *p, const struct pop3_cmd *cmd,
				   unsigned char *buf, size_t size)
{
	struct sasl_creds cr;
	enum pop3_result res;
	const char *error;
	size_t len;
	int r;

	if (cmd->nargs == 2)
		r = sasl_initial(p, &cmd->args[1], buf, size, &len, &res);
	else
		r = sasl_response(p, "", buf, size, &len, &res);
	if (r < 0)
		return res;
	if (sasl_plain_parse(buf, len, &cr, &error) < 0) {
		log_debug("auth-invalid: method=PLAIN, error=%s, rip=%s", error, p->w->rip_str);
		reply(p, "-ERR [AUTH] Authentication failed.");
		return RES_BAD;
	}
	res = do_login(p, "PLAIN", cr.user, cr.pass);
	sasl_creds_wipe(&cr);
	return res;
}

static enum pop3_result auth_login(struct pre *p, const struct pop3_cmd *cmd,
				   unsigned char *buf, size_t size)
{
	struct sasl_creds cr;
	enum pop3_result res;
	size_t len;
	int r;

	memset(&cr, 0, sizeof(cr));
	/* "Username:" and "Password:" */
	if (cmd->nargs == 2)
		r = sasl_initial(p, &cmd->args[1], buf, size, &len, &res);
	else
		r = sasl_response(p, "VXNlcm5hbWU6", buf, size, &len, &res);
	if (r < 0)
		return res;
	if (sasl_login_value(buf, len, cr.user, sizeof(cr.user)) < 0) {
		reply(p, "-ERR [AUTH] Authentication failed.");
		return RES_BAD;
	}
	if (sasl_response(p, "UGFzc3dvcmQ6", buf, size, &len, &res) < 0) {
		sasl_creds_wipe(&cr);
		return res;
	}
	if (sasl_login_value(buf, len, cr.pass, sizeof(cr.pass)) < 0) {
		sasl_creds_wipe(&cr);
		reply(p, "-ERR [AUTH] Authentication failed.");
		return RES_BAD;
	}
	res = do_login(p, "LOGIN", cr.user, cr.pass);
	sasl_creds_wipe(&cr);
	return res;
}

static enum pop3_result cmd_auth(struct pre *p, const struct pop3_cmd *cmd)
{
	if (!p->w->plaintext_ok)
		return plaintext_refused(p); /* PLAIN and LOGIN are all we have */
	p->have_user = false;
	if (cmd->nargs == 0) {
		/* not in RFC 5034, but older clients (RFC 1734 era) list mechanisms so */
		reply(p, "+OK");
		reply(p, "PLAIN");
		reply(p, "LOGIN");
		reply(p, ".");
		return RES_OK;
	}

	enum sasl_mech mech = sasl_mech_parse(cmd->args[0].p, cmd->args[0].len);
	if (mech == SASL_NONE) {
		reply(p, "-ERR Unsupported authentication mechanism.");
		return RES_ERR;
	}
	unsigned char *buf = xmalloc(PRE_SASL_DECODED);
	enum pop3_result res = mech == SASL_PLAIN ?
		auth_plain(p, cmd, buf, PRE_SASL_DECODED) :
		auth_login(p, cmd, buf, PRE_SASL_DECODED);
	util_wipe(buf, PRE_SASL_DECODED);
	free(buf);
	return res;
}

static pre_handler *const pre_handlers[POP3_CMD_COUNT] = {
	[POP3_CMD_USER] = cmd_user,
	[POP3_CMD_PASS] = cmd_pass,
	[POP3_CMD_APOP] = cmd_apop,
	[POP3_CMD_AUTH] = cmd_auth,
	[POP3_CMD_STLS] = cmd_stls,
	[POP3_CMD_CAPA] = cmd_capa,
	[POP3_CMD_QUIT] = cmd_quit,
};

int pop3_prelogin_run(struct server_worker *w, const struct pop3_login_ops *ops)
{
	struct pre p = { .w = w, .c = w->c, .ops = ops, .state = POP3_AUTHORIZATION };
	enum pop3_result res = RES_OK;

	p.in = (struct pop3_input){ .c = p.c, .log_user = "", .rip = w->rip_str };
	for (int id = 0; id < POP3_CMD_COUNT; id++)
		if (pre_handlers[id] != NULL)
			p.in.handled |= 1u << id;
	reply(&p, POP3_GREETING);
	while (res != RES_QUIT && res != RES_DROP && res != RES_LOGIN) {
		struct pop3_cmd cmd;

		if (pop3_input_command(&p.in, p.state, &cmd) == 0) {
			p.reason = p.in.reason;
			break;
		}
		res = pre_handlers[cmd.def->id](&p, &cmd);
		if (pop3_input_result(&p.in, res) == 0) {
			p.reason = p.in.reason;
			break;
		}
	}
	util_wipe(p.user, sizeof(p.user));
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
	const char *text;

	switch (why) {
	case REFUSE_HOSTS_DENY:
		text = "-ERR [SYS/PERM] Access denied.";
		break;
	case REFUSE_CONFIG:
		text = "-ERR [SYS/TEMP] Server configuration error, try again later.";
		break;
	case REFUSE_TOO_MANY:
		text = "-ERR [SYS/TEMP] Too many connections from your address, try again later.";
		break;
	default:
		text = "-ERR [SYS/TEMP] Server error, try again later.";
		break;
	}
	conn_printf(c, "%s\r\n", text);
	conn_flush(c);
}
