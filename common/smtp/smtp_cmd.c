/* The SMTP server's command parser; the rules and tolerances are in smtp_cmd.h. */
#include <string.h>
#include <strings.h>
#include "base/util.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_xtext.h"

struct verb_def {
	const char *name;
	enum smtp_verb verb;
	size_t line_max;          /* with CRLF */
};

static const struct verb_def verbs[] = {
	{ "EHLO", SMTP_VERB_EHLO, SMTP_MAX_CMD_LINE },
	{ "HELO", SMTP_VERB_HELO, SMTP_MAX_CMD_LINE },
	{ "MAIL", SMTP_VERB_MAIL, SMTP_MAX_MAIL_LINE },
	{ "RCPT", SMTP_VERB_RCPT, SMTP_MAX_RCPT_LINE },
	{ "DATA", SMTP_VERB_DATA, SMTP_MAX_CMD_LINE },
	{ "BDAT", SMTP_VERB_BDAT, SMTP_MAX_CMD_LINE },
	{ "RSET", SMTP_VERB_RSET, SMTP_MAX_CMD_LINE },
	{ "NOOP", SMTP_VERB_NOOP, SMTP_MAX_CMD_LINE },
	{ "QUIT", SMTP_VERB_QUIT, SMTP_MAX_CMD_LINE },
	{ "VRFY", SMTP_VERB_VRFY, SMTP_MAX_CMD_LINE },
	{ "EXPN", SMTP_VERB_EXPN, SMTP_MAX_CMD_LINE },
	{ "HELP", SMTP_VERB_HELP, SMTP_MAX_CMD_LINE },
	{ "STARTTLS", SMTP_VERB_STARTTLS, SMTP_MAX_CMD_LINE },
	{ "AUTH", SMTP_VERB_AUTH, SMTP_MAX_AUTH_LINE },
};

const char *smtp_cmd_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "UNKNOWN";
}

static int fail(struct smtp_cmd_error *e, unsigned code, const char *enh, const char *text)
{
	e->code = code;
	e->enh = enh;
	e->text = text;
	return -1;
}

#define E_SYNTAX(e, text) fail(e, 501, "5.5.4", text)
#define E_UNKNOWN_PARAM(e) fail(e, 555, "5.5.4", "Unsupported or unknown parameter")

static bool is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* EHLO/HELO: is the argument a domain or an address literal?  address_path_parse()'s
 * domain and literal rules are the RFC 5321 ones: ask it about "<x@ARG>". */
static bool helo_valid(const char *arg, size_t len)
{
	char buf[SMTP_MAX_DOMAIN + 5];
	struct address_path p;
	const char *err;

	if (len > SMTP_MAX_DOMAIN)
		return false;
	memcpy(buf, "<x@", 3);
	memcpy(buf + 3, arg, len); /* BOUNDS: len <= SMTP_MAX_DOMAIN */
	buf[3 + len] = '>';
	return address_path_parse(buf, len + 4, 0, &p, &err) == (long)(len + 4) &&
	       (p.flags & ADDRESS_PATH_F_UTF8) == 0;
}

/* One ESMTP parameter (RFC 5321 section 4.1.2): keyword [ "=" value ]. */
struct param {
	const char *key, *val;
	size_t key_len, val_len;
	bool has_val;
};

/* Next parameter from *p..end (leading SPs skipped).  1 one, 0 end, -1 bad syntax. */
static int next_param(const char **p, const char *end, bool utf8, struct param *pr)
{
	const char *s = *p;

	while (s < end && *s == ' ')
		s++;
	if (s == end)
		return 0;
	memset(pr, 0, sizeof(*pr));
	pr->key = s;
	if (!is_alnum((unsigned char)*s))
		return -1;
	while (s < end && (is_alnum((unsigned char)*s) || *s == '-'))
		s++;
	pr->key_len = (size_t)(s - pr->key);
	if (s < end && *s == '=') {
		s++;
		pr->has_val = true;
		pr->val = s;
		/* esmtp-value = 1*(%d33-60 / %d62-126), RFC 6531 section 3.3 adds UTF-8 */
		while (s < end && *s != ' ') {
			unsigned char c = (unsigned char)*s;
			if (c == '=' || c < 33 || c == 127 || (c >= 128 && !utf8))
				return -1;
			s++;
		}
		pr->val_len = (size_t)(s - pr->val);
		if (pr->val_len == 0)
			return -1;
	}
	if (s < end && *s != ' ')
		return -1;
	*p = s;
	return 1;
}

static bool val_is(const struct param *pr, const char *word)
{
	return util_token_eq(pr->val, pr->val_len, word);
}

static bool key_is(const struct param *pr, const char *word)
{
	return util_token_eq(pr->key, pr->key_len, word);
}

static bool printable_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E)
			return false;
	return true;
}

static int mail_param(const struct param *pr, unsigned flags, struct smtp_cmd *c,
		      struct smtp_cmd_error *e)
{
	size_t n;

	if (key_is(pr, "SIZE") && (flags & SMTP_EXT_SIZE)) {
		/* RFC 1870 section 3: size-value ::= 1*20DIGIT */
		if (c->size_given)
			return E_SYNTAX(e, "SIZE given twice");
		if (!pr->has_val || pr->val_len > 20 ||
		    util_parse_uint(pr->val, pr->val_len, UINT64_MAX, &c->size) < 0)
			return E_SYNTAX(e, "Bad SIZE value");
		c->size_given = true;
	} else if (key_is(pr, "BODY") && (flags & (SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME))) {
		if (c->body != SMTP_BODY_NONE)
			return E_SYNTAX(e, "BODY given twice");
		if (!pr->has_val)
			return E_SYNTAX(e, "Bad BODY value");
		if (val_is(pr, "7BIT") && (flags & SMTP_EXT_8BITMIME))
			c->body = SMTP_BODY_7BIT;
		else if (val_is(pr, "8BITMIME") && (flags & SMTP_EXT_8BITMIME))
			c->body = SMTP_BODY_8BITMIME;
		else if (val_is(pr, "BINARYMIME") && (flags & SMTP_EXT_BINARYMIME))
			c->body = SMTP_BODY_BINARYMIME;
		else
			return E_SYNTAX(e, "Bad BODY value");
	} else if (key_is(pr, "SMTPUTF8") && (flags & SMTP_EXT_SMTPUTF8)) {
		/* RFC 6531 section 3.4: no value */
		if (c->smtputf8)
			return E_SYNTAX(e, "SMTPUTF8 given twice");
		if (pr->has_val)
			return E_SYNTAX(e, "SMTPUTF8 takes no value");
		c->smtputf8 = true;
	} else if (key_is(pr, "RET") && (flags & SMTP_EXT_DSN)) {
		if (c->ret != SMTP_RET_NONE)
			return E_SYNTAX(e, "RET given twice");
		if (pr->has_val && val_is(pr, "FULL"))
			c->ret = SMTP_RET_FULL;
		else if (pr->has_val && val_is(pr, "HDRS"))
			c->ret = SMTP_RET_HDRS;
		else
			return E_SYNTAX(e, "Bad RET value");
	} else if (key_is(pr, "ENVID") && (flags & SMTP_EXT_DSN)) {
		if (c->envid_given)
			return E_SYNTAX(e, "ENVID given twice");
		/* RFC 3461 section 4.4: up to 100 characters, printable US-ASCII decoded */
		if (!pr->has_val || pr->val_len > SMTP_MAX_ENVID ||
		    smtp_xtext_decode(pr->val, pr->val_len, c->envid, sizeof(c->envid), &n) < 0 ||
		    !printable_ascii(c->envid, n))
			return E_SYNTAX(e, "Bad ENVID value");
		c->envid_given = true;
	} else if (key_is(pr, "AUTH") && (flags & SMTP_EXT_AUTH)) {
		if (c->auth_given)
			return E_SYNTAX(e, "AUTH given twice");
		/* RFC 4954 section 5: AUTH=xtext of a mailbox, or "<>" */
		if (!pr->has_val || pr->val_len > SMTP_MAX_AUTH_PARAM ||
		    smtp_xtext_decode(pr->val, pr->val_len, c->auth, sizeof(c->auth), &n) < 0 ||
		    !printable_ascii(c->auth, n))
			return E_SYNTAX(e, "Bad AUTH value");
		c->auth_given = true;
	} else {
		return E_UNKNOWN_PARAM(e);
	}
	return 0;
}

/* NOTIFY="NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY"), RFC 3461 section 4.1. */
static int parse_notify(const char *v, size_t len, unsigned *r)
{
	unsigned bits = 0;
	size_t i = 0;

	while (i <= len) {
		size_t j = i;
		unsigned b;
		while (j < len && v[j] != ',')
			j++;
		if (util_token_eq(v + i, j - i, "NEVER"))
			b = SMTP_NOTIFY_NEVER;
		else if (util_token_eq(v + i, j - i, "SUCCESS"))
			b = SMTP_NOTIFY_SUCCESS;
		else if (util_token_eq(v + i, j - i, "FAILURE"))
			b = SMTP_NOTIFY_FAILURE;
		else if (util_token_eq(v + i, j - i, "DELAY"))
			b = SMTP_NOTIFY_DELAY;
		else
			return -1;
		if (bits & b)
			return -1; /* a keyword twice */
		bits |= b;
		i = j + 1;
	}
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return -1; /* "the NEVER keyword MUST appear by itself" */
	*r = bits;
	return 0;
}

/* RFC 5322 atext, for ORCPT's addr-type = atom */
static bool is_atext(unsigned char c)
{
	return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int parse_orcpt(const struct param *pr, unsigned flags, struct smtp_cmd *c)
{
	size_t t = 0, n;

	/* RFC 3461 section 4.2: the whole parameter up to 500 characters */
	if (!pr->has_val || pr->key_len + 1 + pr->val_len > SMTP_MAX_ORCPT)
		return -1;
	while (t < pr->val_len && pr->val[t] != ';') {
		if (!is_atext((unsigned char)pr->val[t]))
			return -1;
		t++;
	}
	if (t == 0 || t > SMTP_MAX_ORCPT_TYPE || t == pr->val_len || t + 1 == pr->val_len)
		return -1;
	memcpy(c->orcpt_type_name, pr->val, t); /* BOUNDS: t <= SMTP_MAX_ORCPT_TYPE */
	c->orcpt_type_name[t] = '\0';
	const char *x = pr->val + t + 1;
	size_t xn = pr->val_len - t - 1;
	if (util_token_eq(pr->val, t, "utf-8")) {
		/* RFC 6533 section 3: utf-8-addr-xtext, or utf-8-addr-unitext when the
		 * transaction is SMTPUTF8 */
		if (smtp_xtext_decode_utf8addr(x, xn, (flags & SMTP_CMD_TXN_UTF8) != 0,
					       c->orcpt, sizeof(c->orcpt), &n) < 0)
			return -1;
		c->orcpt_type = SMTP_ORCPT_UTF8;
		return 0;
	}
	/* RFC 3461 section 4.2: the decoded address is printable US-ASCII */
	if (smtp_xtext_decode(x, xn, c->orcpt, sizeof(c->orcpt), &n) < 0 ||
	    !printable_ascii(c->orcpt, n))
		return -1;
	c->orcpt_type = util_token_eq(pr->val, t, "rfc822") ? SMTP_ORCPT_RFC822 : SMTP_ORCPT_OTHER;
	return 0;
}

static int rcpt_param(const struct param *pr, unsigned flags, struct smtp_cmd *c,
		      struct smtp_cmd_error *e)
{
	if (key_is(pr, "NOTIFY") && (flags & SMTP_EXT_DSN)) {
		if (c->notify != 0)
			return E_SYNTAX(e, "NOTIFY given twice");
		if (!pr->has_val || parse_notify(pr->val, pr->val_len, &c->notify) < 0)
			return E_SYNTAX(e, "Bad NOTIFY value");
	} else if (key_is(pr, "ORCPT") && (flags & SMTP_EXT_DSN)) {
		if (c->orcpt_type != SMTP_ORCPT_NONE)
			return E_SYNTAX(e, "ORCPT given twice");
		if (parse_orcpt(pr, flags, c) < 0)
			return E_SYNTAX(e, "Bad ORCPT value");
	} else {
		return E_UNKNOWN_PARAM(e);
	}
	return 0;
}

/* MAIL FROM:<path> [SP params] / RCPT TO:<path> [SP params]; s..end is the argument. */
static int parse_path_cmd(const char *s, const char *end, unsigned flags,
			  struct smtp_cmd *c, struct smtp_cmd_error *e)
{
	bool mail = c->verb == SMTP_VERB_MAIL;
	const char *kw = mail ? "FROM:" : "TO:";
	size_t kwlen = strlen(kw);
	const char *err;

	if ((size_t)(end - s) < kwlen || strncasecmp(s, kw, kwlen) != 0)
		return E_SYNTAX(e, mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
	s += kwlen;
	if (s < end && *s == ' ')
		s++; /* tolerated: "MAIL FROM: <a@b>" */
	unsigned pflags = ADDRESS_PATH_UTF8 |
			  (mail ? ADDRESS_PATH_ALLOW_NULL : ADDRESS_PATH_ALLOW_POSTMASTER);
	long n = address_path_parse(s, (size_t)(end - s), pflags, &c->path, &err);
	if (n < 0) {
		e->detail = err;
		return fail(e, 501, mail ? "5.1.7" : "5.1.3",
			    mail ? "Bad sender address syntax" : "Bad recipient address syntax");
	}
	s += n;
	if (s < end && *s != ' ')
		return fail(e, 501, mail ? "5.1.7" : "5.1.3",
			    mail ? "Bad sender address syntax" : "Bad recipient address syntax");
	/* UTF-8 may appear in values once SMTPUTF8 is offered (MAIL) or in effect (RCPT);
	 * whether it was allowed after all is checked below */
	bool utf8_ok = mail ? (flags & SMTP_EXT_SMTPUTF8) != 0 : (flags & SMTP_CMD_TXN_UTF8) != 0;
	struct param pr;
	int r;
	while ((r = next_param(&s, end, utf8_ok, &pr)) > 0) {
		if ((mail ? mail_param(&pr, flags, c, e) : rcpt_param(&pr, flags, c, e)) < 0)
			return -1;
	}
	if (r < 0)
		return E_SYNTAX(e, "Bad parameter syntax");
	/* RFC 6531 section 3.5: an address with UTF-8 needs SMTPUTF8; MAIL gets 550,
	 * RCPT 553, both X.6.7 */
	if ((c->path.flags & ADDRESS_PATH_F_UTF8) &&
	    !(mail ? c->smtputf8 : (flags & SMTP_CMD_TXN_UTF8) != 0))
		return fail(e, mail ? 550 : 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
	return 0;
}

/* A printable token without spaces (EHLO argument, AUTH mechanism and response). */
static bool token_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7F)
			return false;
	return true;
}

static int parse_args(const char *s, const char *end, unsigned flags, struct smtp_cmd *c,
		      struct smtp_cmd_error *e)
{
	size_t len = (size_t)(end - s);
	const char *sp;

	switch (c->verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		/* RFC 5321 section 4.1.1.1: one domain or address-literal */
		if (!token_ok(s, len))
			return E_SYNTAX(e, "Syntax: EHLO hostname");
		c->arg = s;
		c->arg_len = len;
		c->helo_valid = helo_valid(s, len);
		return 0;
	case SMTP_VERB_MAIL:
	case SMTP_VERB_RCPT:
		return parse_path_cmd(s, end, flags, c, e);
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		if (len != 0)
			return E_SYNTAX(e, "No parameters allowed");
		return 0;
	case SMTP_VERB_NOOP:
	case SMTP_VERB_HELP:
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
		/* RFC 5321 section 4.1.1.6-4.1.1.9: a String, required for VRFY and EXPN;
		 * the line is already free of control bytes; UTF-8 is the caller's to judge */
		if (len == 0 && (c->verb == SMTP_VERB_VRFY || c->verb == SMTP_VERB_EXPN))
			return E_SYNTAX(e, "Argument required");
		c->arg = s;
		c->arg_len = len;
		return 0;
	case SMTP_VERB_BDAT:
		/* RFC 3030 section 3: BDAT chunk-size [SP end-marker] */
		sp = memchr(s, ' ', len);
		if (util_parse_uint(s, sp ? (size_t)(sp - s) : len, UINT64_MAX, &c->bdat_size) < 0 ||
		    (sp != NULL && !util_token_eq(sp + 1, (size_t)(end - sp - 1), "LAST")))
			return E_SYNTAX(e, "Syntax: BDAT size [LAST]");
		c->bdat_last = sp != NULL;
		return 0;
	case SMTP_VERB_AUTH:
		/* RFC 4954 section 4: AUTH mechanism [SP initial-response] */
		sp = memchr(s, ' ', len);
		c->arg = s;
		c->arg_len = sp ? (size_t)(sp - s) : len;
		/* RFC 4422 section 3.1: sasl-mech = 1*20 of upper-case letters, digits,
		 * "-" and "_" (we take lower case too and leave the lookup to sasl/) */
		if (c->arg_len == 0 || c->arg_len > 20)
			return E_SYNTAX(e, "Syntax: AUTH mechanism [initial-response]");
		for (size_t i = 0; i < c->arg_len; i++)
			if (!is_alnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
				return E_SYNTAX(e, "Syntax: AUTH mechanism [initial-response]");
		if (sp != NULL) {
			c->auth_ir = sp + 1;
			c->auth_ir_len = (size_t)(end - sp - 1);
			if (!token_ok(c->auth_ir, c->auth_ir_len))
				return E_SYNTAX(e, "Syntax: AUTH mechanism [initial-response]");
		}
		return 0;
	case SMTP_VERB_UNKNOWN:
		break;
	}
	return fail(e, 500, "5.5.2", "Command not recognized");
}

int smtp_cmd_parse(const char *line, size_t len, unsigned flags, struct smtp_cmd *cmd_r,
		   struct smtp_cmd_error *err_r)
{
	const char *end = line + len, *p = line;
	const struct verb_def *v = NULL;

	memset(cmd_r, 0, sizeof(*cmd_r));
	memset(err_r, 0, sizeof(*err_r));
	while (p < end && is_alnum((unsigned char)*p))
		p++;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (util_token_eq(line, (size_t)(p - line), verbs[i].name)) {
			v = &verbs[i];
			cmd_r->verb = v->verb;
		}
	/* RFC 5321 section 4.5.3.1.4 and the extensions' allowances, CRLF included */
	if (len > (v != NULL ? v->line_max : SMTP_MAX_CMD_LINE) - 2)
		return fail(err_r, 500, "5.5.2", "Line too long");
	/* no NUL, CR, LF or other control byte; HTAB only trailing (tolerated below) */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7F)
			return fail(err_r, 500, "5.5.2", "Control characters not allowed");
	}
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--; /* tolerated: trailing white space */
	if (memchr(p, '\t', (size_t)(end - p)) != NULL)
		return fail(err_r, 500, "5.5.2", "Control characters not allowed");
	if (v == NULL || (p < end && *p != ' '))
		return fail(err_r, 500, "5.5.2", "Command not recognized");
	if (p < end)
		p++; /* the one SP after the verb */
	if (p < end && *p == ' ')
		return E_SYNTAX(err_r, "Syntax error");
	return parse_args(p, end, flags, cmd_r, err_r);
}
