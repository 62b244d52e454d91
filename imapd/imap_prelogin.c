/* The IMAP not-authenticated state (RFC 3501 section 6.1-6.2, RFC 9051 section 6.2):
 * CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), STARTTLS, LOGIN, AUTHENTICATE PLAIN and LOGIN
 * with SASL-IR (RFC 4959).  Runs in the unprivileged worker; credentials go to the
 * monitor through worker_login(), which logs login and auth-failed lines (the ones
 * fail2ban reads).  On LOGIN_OK the tagged OK is written here, with the capabilities of
 * the authenticated state (RFC 9051 6.2.3: constants of imapd, IMAP_CAPABILITY_AUTH), and
 * we return 1: the session takes over the connection and writes nothing first.
 *
 * A password never travels in plaintext unless plaintext_auth_from allows it (then
 * w->plaintext_ok): before TLS we advertise LOGINDISABLED and no AUTH= mechanism, and
 * LOGIN or AUTHENTICATE gets NO [PRIVACYREQUIRED] (RFC 5530) telling to use STARTTLS.
 * Response codes: [AUTHENTICATIONFAILED] wrong credentials, [UNAVAILABLE] throttled or
 * a temporary failure (the password may be right: try later). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "base/config.h"
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "imap.h"
#include "sasl/sasl.h"

struct pre {
	struct server_worker *w;
	struct imapc ic;
	const struct imap_login_ops *ops;
	unsigned failures;
	bool tls_done;
	const char *reason;
};

static bool tls_active(const struct pre *p)
{
	return p->tls_done || conn_tls_version(p->w->c) != NULL;
}

static bool starttls_offered(const struct pre *p)
{
	return !tls_active(p) && p->w->ssl_ctx != NULL;
}

/* The capability list before login, without "CAPABILITY" itself. */
static void capability_pre(const struct pre *p, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE "
				    "IDLE");
	if (starttls_offered(p) && n < size)
		n += (size_t)snprintf(buf + n, size - n, " STARTTLS");
	if (!p->w->plaintext_ok) {
		if (n < size)
			snprintf(buf + n, size - n, " LOGINDISABLED");
		return;
	}
	const struct sasl_mech *m;
	for (size_t i = 0; (m = sasl_mech_at(i)) != NULL && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, " AUTH=%s", m->name);
	/* BOUNDS: snprintf cuts at size; n may pass size only after the last write */
}

static void cmd_capability(struct pre *p, const char *tag)
{
	char caps[512];
	capability_pre(p, caps, sizeof(caps));
	imapc_data(&p->ic, "CAPABILITY %s", caps);
	imapc_tagged(&p->ic, tag, "OK", NULL, "Capability completed.");
}

static void privacy_required(struct pre *p, const char *tag)
{
	if (starttls_offered(p))
		imapc_tagged(&p->ic, tag, "NO", "PRIVACYREQUIRED",
			     "Plaintext authentication disallowed on non-secure connections, "
			     "use STARTTLS.");
	else
		imapc_tagged(&p->ic, tag, "NO", "PRIVACYREQUIRED",
			     "Plaintext authentication disallowed on non-secure connections.");
}

/* One login through the monitor (wipes pass).  1 logged in (OK written), 0 go on,
 * -1 the connection ends. */
static int do_login(struct pre *p, const char *tag, const char *method, const char *user,
		    char *pass)
{
	enum server_login r;

	if (!config_username_ok(p->w->cfg, user, strlen(user))) {
		/* the password never leaves the worker; the monitor logs the refusal */
		char none[1] = "";
		util_wipe(pass, strlen(pass));
		r = p->ops->login(p->w, method, user, none);
		if (r == LOGIN_OK)
			r = LOGIN_TEMPFAIL;
	} else {
		r = p->ops->login(p->w, method, user, pass);
		util_wipe(pass, strlen(pass));
	}
	switch (r) {
	case LOGIN_OK:
		imapc_tagged(&p->ic, tag, "OK", "CAPABILITY " IMAP_CAPABILITY_AUTH
			     IMAP_CAPABILITY_COMPRESS,
			     "Logged in.");
		return 1;
	case LOGIN_THROTTLED:
		imapc_tagged(&p->ic, tag, "NO", "UNAVAILABLE",
			     "Too many failed logins, try again later.");
		p->reason = "throttled";
		return -1;
	case LOGIN_TEMPFAIL:
	case LOGIN_INUSE:
		imapc_tagged(&p->ic, tag, "NO", "UNAVAILABLE",
			     "Temporary authentication failure, try again later.");
		break;
	case LOGIN_FAIL:
	default:
		imapc_tagged(&p->ic, tag, "NO", "AUTHENTICATIONFAILED", "Authentication failed.");
		break;
	}
	if (++p->failures >= MAX_AUTH_ATTEMPTS) {
		imapc_untagged(&p->ic, "BYE", NULL, "Too many failed logins.");
		p->reason = "auth-failures";
		return -1;
	}
	return 0;
}

static int cmd_login(struct pre *p, const struct imap_command *cmd)
{
	const char *user, *pass;
	size_t ulen, plen;

	if (cmd->count != 2 || imap_arg_astring(&cmd->args[0], &user, &ulen) < 0 ||
	    imap_arg_astring(&cmd->args[1], &pass, &plen) < 0) {
		imapc_tagged(&p->ic, cmd->tag, "BAD", NULL, "Usage: LOGIN user password");
		return imapc_count_bad(&p->ic) ? 0 : -1;
	}
	if (!p->w->plaintext_ok) {
		privacy_required(p, cmd->tag);
		return 0;
	}
	if (ulen > AUTH_MAX_USER || plen > AUTH_MAX_PASS || memchr(user, '\0', ulen) != NULL ||
	    memchr(pass, '\0', plen) != NULL) {
		imapc_tagged(&p->ic, cmd->tag, "NO", "AUTHENTICATIONFAILED",
			     "Authentication failed.");
		return 0;
	}
	char u[AUTH_MAX_USER + 1], pw[AUTH_MAX_PASS + 1];
	memcpy(u, user, ulen);
	u[ulen] = '\0';
	memcpy(pw, pass, plen);
	pw[plen] = '\0';
	int r = do_login(p, cmd->tag, "LOGIN", u, pw);
	util_wipe(pw, sizeof(pw));
	return r;
}

/* The SASL exchange: "+ challenge", a response line at a time ("*" cancels). */
static int cmd_authenticate(struct pre *p, const struct imap_command *cmd)
{
	const char *mname, *ir = NULL;
	size_t irlen = 0;

	if (cmd->count < 1 || cmd->count > 2 || imap_arg_atom(&cmd->args[0], &mname) < 0 ||
	    (cmd->count == 2 && imap_arg_atom(&cmd->args[1], &ir) < 0)) {
		imapc_tagged(&p->ic, cmd->tag, "BAD", NULL,
			     "Usage: AUTHENTICATE mechanism [initial-response]");
		return imapc_count_bad(&p->ic) ? 0 : -1;
	}
	if (ir != NULL)
		irlen = strlen(ir);
	const struct sasl_mech *mech = sasl_mech_find(mname, strlen(mname));
	if (mech != NULL && mech->plaintext && !p->w->plaintext_ok) {
		privacy_required(p, cmd->tag);
		return 0;
	}
	if (mech == NULL) {
		imapc_tagged(&p->ic, cmd->tag, "NO", "CANNOT",
			     "Unsupported authentication mechanism.");
		return 0;
	}
	/* the tag is in the parser, which the response lines reuse: keep a copy */
	char tag[IMAP_MAX_TAG + 1];
	snprintf(tag, sizeof(tag), "%s", cmd->tag);
	struct sasl_server *s = sasl_server_new(mech);
	int st = sasl_server_start(s, ir, irlen);
	int ret = 0;
	while (st == SASL_CONTINUE) {
		const char *line;
		size_t len;
		if (imapc_continue(&p->ic, sasl_server_challenge(s)) < 0) {
			p->reason = "error";
			ret = -1;
			goto out;
		}
		int r = cmdloop_line(&p->ic.loop, &line, &len);
		if (r == 0) {
			p->reason = p->ic.loop.reason;
			ret = -1;
			goto out;
		}
		if (r < 0) {
			ret = imapc_count_bad(&p->ic) ? 0 : -1;
			goto out;
		}
		st = sasl_server_step(s, line, len);
	}
	switch (st) {
	case SASL_DONE: {
		const struct sasl_creds *cr = sasl_server_creds(s);
		char pass[AUTH_MAX_PASS + 1];
		memcpy(pass, cr->secret, sizeof(pass));
		ret = do_login(p, tag, mech->name, cr->authcid, pass);
		util_wipe(pass, sizeof(pass));
		break;
	}
	case SASL_E_CANCEL:
		imapc_tagged(&p->ic, tag, "BAD", NULL, "Authentication cancelled.");
		break;
	case SASL_E_BASE64:
		imapc_tagged(&p->ic, tag, "BAD", NULL, "Invalid base64 data.");
		ret = imapc_count_bad(&p->ic) ? 0 : -1;
		break;
	default:
		log_debug("auth-invalid: method=%s, error=%s, rip=%s", mech->name,
			  sasl_server_error(s), p->w->rip_str);
		imapc_tagged(&p->ic, tag, "NO", "AUTHENTICATIONFAILED", "Authentication failed.");
		break;
	}
out:
	sasl_server_free(&s);
	return ret;
}

static int cmd_starttls(struct pre *p, const struct imap_command *cmd)
{
	if (tls_active(p)) {
		imapc_tagged(&p->ic, cmd->tag, "BAD", NULL, "TLS is already active.");
		return imapc_count_bad(&p->ic) ? 0 : -1;
	}
	if (p->w->ssl_ctx == NULL) {
		imapc_tagged(&p->ic, cmd->tag, "NO", "UNAVAILABLE", "TLS is not available.");
		return 0;
	}
	imapc_tagged(&p->ic, cmd->tag, "OK", NULL, "Begin TLS negotiation now.");
	if (conn_flush(p->w->c) < 0) {
		p->reason = "error";
		return -1;
	}
	/* worker_starttls() drops whatever came before the handshake (RFC 9051 6.2.1) */
	if (p->ops->starttls(p->w) < 0) {
		p->reason = "tls-failed";
		return -1;
	}
	p->tls_done = true;
	return 0;
}

/* ID (RFC 2971): we say nothing that identifies the software or its version. */
static void cmd_id(struct imapc *ic, const char *tag)
{
	imapc_data(ic, "ID NIL");
	imapc_tagged(ic, tag, "OK", NULL, "ID completed.");
}

void imap_id_reply(struct imapc *ic, const char *tag)
{
	cmd_id(ic, tag);
}

/* 1 logged in, 0 go on, -1 the end. */
static int dispatch(struct pre *p, const struct imap_command *cmd)
{
	const char *n = cmd->name;

	if (cmd->uid) {
		imapc_tagged(&p->ic, cmd->tag, "BAD", NULL, "Command not valid in this state.");
		return imapc_count_bad(&p->ic) ? 0 : -1;
	}
	if (strcmp(n, "CAPABILITY") == 0) {
		cmd_capability(p, cmd->tag);
	} else if (strcmp(n, "NOOP") == 0) {
		imapc_tagged(&p->ic, cmd->tag, "OK", NULL, "NOOP completed.");
	} else if (strcmp(n, "LOGOUT") == 0) {
		imapc_untagged(&p->ic, "BYE", NULL, "Logging out.");
		imapc_tagged(&p->ic, cmd->tag, "OK", NULL, "Logout completed.");
		p->reason = "logout";
		return -1;
	} else if (strcmp(n, "ID") == 0) {
		cmd_id(&p->ic, cmd->tag);
	} else if (strcmp(n, "STARTTLS") == 0) {
		return cmd_starttls(p, cmd);
	} else if (strcmp(n, "LOGIN") == 0) {
		return cmd_login(p, cmd);
	} else if (strcmp(n, "AUTHENTICATE") == 0) {
		return cmd_authenticate(p, cmd);
	} else {
		imapc_tagged(&p->ic, cmd->tag, "BAD", NULL,
			     "Unknown command or not valid before login.");
		return imapc_count_bad(&p->ic) ? 0 : -1;
	}
	imapc_count_good(&p->ic);
	return 0;
}

int imap_prelogin_run(struct server_worker *w, const struct imap_login_ops *ops)
{
	struct pre p = { .w = w, .ops = ops };
	struct imap_parser_settings set = { .logged_in = false };
	char caps[512];

	imapc_init(&p.ic, w->c, &set, w->rip_str, "");
	capability_pre(&p, caps, sizeof(caps));
	char code[600];
	snprintf(code, sizeof(code), "CAPABILITY %s", caps);
	imapc_untagged(&p.ic, "OK", code, IMAP_GREETING_TEXT);
	int ret = 0;
	for (;;) {
		int r = imapc_read(&p.ic);
		if (r == IMAPC_END) {
			p.reason = p.ic.reason;
			if (p.reason != NULL && strcmp(p.reason, "timeout") == 0)
				imapc_untagged(&p.ic, "BYE", NULL, "Autologout; idle for too long.");
			break;
		}
		if (r != IMAPC_CMD)
			continue;   /* a bad command, answered (streaming needs a login) */
		int d = dispatch(&p, imap_parser_command(p.ic.parser));
		if (d != 0) {
			ret = d > 0;
			break;
		}
	}
	conn_flush(w->c);
	imapc_free(&p.ic);
	if (ret)
		return 1;
	log_info("disconnect: reason=%s, auth_failures=%u, rip=%s",
		 p.reason != NULL ? p.reason : "error", p.failures, w->rip_str);
	return 0;
}

int imap_prelogin(struct server_worker *w)
{
	static const struct imap_login_ops ops = {
		.login = worker_login,
		.starttls = worker_starttls,
	};
	return imap_prelogin_run(w, &ops);
}

void imap_prelogin_refuse(struct conn *c, enum server_refusal why)
{
	const char *text;

	switch (why) {
	case REFUSE_HOSTS_DENY:
		text = "* BYE Access denied.\r\n";
		break;
	case REFUSE_CONFIG:
		text = "* BYE [UNAVAILABLE] Server configuration error, try again later.\r\n";
		break;
	case REFUSE_TOO_MANY:
		text = "* BYE [UNAVAILABLE] Too many connections from your address, "
		       "try again later.\r\n";
		break;
	default:
		text = "* BYE [UNAVAILABLE] Server error, try again later.\r\n";
		break;
	}
	conn_write(c, text, strlen(text));
	conn_flush(c);
}
