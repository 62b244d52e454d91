/* The strict RFC 5321 section 4.1.2 Path of MAIL FROM / RCPT TO (address.h).
 *
 *   Path = "<" [ A-d-l ":" ] Mailbox ">"       A-d-l = At-domain *( "," At-domain )
 *   Mailbox = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string   Dot-string = Atom *("." Atom)
 *   Quoted-string = DQUOTE *( qtextSMTP / "\" %d32-126 ) DQUOTE
 *   Domain = sub-domain *("." sub-domain)      sub-domain = Let-dig [Ldh-str]
 *   address-literal = "[" ( IPv4 / "IPv6:" IPv6 / tag ":" 1*dcontent ) "]"
 * RFC 6531 (with ADDRESS_PATH_UTF8): atext, qtext and sub-domain also take UTF-8
 * (checked well-formed).  Nothing is normalised: the caller sees "%", "!", a quoted "@"
 * and a source route as flags, and the local part as written. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include "mail/address.h"

struct cur {
	const char *p, *end;
	unsigned flags, opts;
};

/* Length of one well-formed UTF-8 sequence (no overlongs, no surrogates) at p, or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	unsigned min;
	unsigned cp;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 2, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A UTF-8 sequence at the cursor, if allowed: its length, else 0. */
static size_t utf8_at(struct cur *c)
{
	if (!(c->opts & ADDRESS_PATH_UTF8) || (unsigned char)*c->p < 0x80)
		return 0;
	size_t n = utf8_len((const unsigned char *)c->p, (const unsigned char *)c->end);
	if (n > 0)
		c->flags |= ADDRESS_PATH_F_UTF8;
	return n;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_atext(char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Domain = sub-domain *("." sub-domain); returns its length or 0. */
static size_t scan_domain(struct cur *c)
{
	const char *start = c->p;

	for (;;) {
		const char *sub = c->p;
		char last = '\0';
		while (c->p < c->end) {
			size_t u = utf8_at(c);
			if (u > 0) {
				c->p += u;
				last = 'a';
			} else if (is_alnum(*c->p) || (*c->p == '-' && c->p != sub)) {
				last = *c->p++;
			} else {
				break;
			}
		}
		if (c->p == sub || last == '-')
			return 0;
		if (c->p == c->end || *c->p != '.')
			break;
		c->p++;
	}
	return (size_t)(c->p - start);
}

/* Snum "." Snum "." Snum "." Snum, all of s[0..n). */
static bool is_ipv4(const char *s, size_t n)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;
		if (part > 0) {
			if (i == n || s[i] != '.')
				return false;
			i++;
		}
		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 3) {
			v = v * 10 + (unsigned)(s[i++] - '0');
			digits++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == n;
}

/* At '[': an address-literal; returns its length with brackets, or 0. */
static size_t scan_literal(struct cur *c)
{
	const char *start = c->p, *close;

	close = memchr(c->p, ']', (size_t)(c->end - c->p));
	if (close == NULL)
		return 0;
	const char *s = c->p + 1;
	size_t n = (size_t)(close - s);
	if (is_ipv4(s, n)) {
		c->flags |= ADDRESS_PATH_F_LITERAL_V4;
	} else if (n > 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		char tmp[INET6_ADDRSTRLEN + 1];
		struct in6_addr a6;
		if (n - 5 >= sizeof(tmp))
			return 0;
		memcpy(tmp, s + 5, n - 5);
		tmp[n - 5] = '\0';
		/* inet_pton's forms are RFC 5321's IPv6-full/comp/v4-full/v4-comp */
		if (strlen(tmp) != n - 5 || memchr(tmp, '%', n - 5) != NULL ||
		    inet_pton(AF_INET6, tmp, &a6) != 1)
			return 0;
		c->flags |= ADDRESS_PATH_F_LITERAL_V6;
	} else {
		/* General-address-literal = Standardized-tag ":" 1*dcontent */
		const char *colon = memchr(s, ':', n);
		if (colon == NULL || colon == s || colon + 1 == close || colon[-1] == '-')
			return 0;
		for (const char *t = s; t < colon; t++)
			if (!is_alnum(*t) && *t != '-')
				return 0;
		for (const char *t = colon + 1; t < close; t++)
			if (*t < 33 || *t > 126 || *t == '[' || *t == '\\' || *t == ']')
				return 0;
		c->flags |= ADDRESS_PATH_F_LITERAL_GEN;
	}
	c->p = close + 1;
	return (size_t)(c->p - start);
}

/* Local-part: writes the unquoted form to out (room SMTP_MAX_LOCAL_PART + 1); returns
 * the length as written, or 0. */
static size_t scan_local(struct cur *c, char *out)
{
	const char *start = c->p;
	size_t o = 0;

	if (c->p < c->end && *c->p == '"') {
		c->flags |= ADDRESS_PATH_F_QUOTED;
		c->p++;
		for (;;) {
			if (c->p == c->end)
				return 0;
			char ch = *c->p;
			size_t u = utf8_at(c);
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (c->p + 1 == c->end || c->p[1] < 32 || c->p[1] > 126)
					return 0;
				ch = c->p[1];
				u = 2;
			} else if (u == 0) {
				if (ch < 32 || ch > 126)
					return 0;
				u = 1;
			}
			/* BOUNDS: the written form is checked against the limit by the caller;
			 * the unquoted one is never longer, but stop before overflowing */
			if (o + u > SMTP_MAX_LOCAL_PART)
				return SMTP_MAX_LOCAL_PART + 1;
			if (c->p[0] == '\\')
				out[o++] = ch;
			else
				memcpy(out + o, c->p, u), o += u;
			c->p += c->p[0] == '\\' ? 2 : u;
		}
		c->p++;
	} else {
		bool need_atom = true;
		while (c->p < c->end) {
			size_t u = utf8_at(c);
			if (u == 0 && is_atext(*c->p))
				u = 1;
			if (u > 0) {
				need_atom = false;
			} else if (*c->p == '.' && !need_atom) {
				need_atom = true;
				u = 1;
			} else {
				break;
			}
			if (o + u > SMTP_MAX_LOCAL_PART)
				return SMTP_MAX_LOCAL_PART + 1;
			memcpy(out + o, c->p, u);
			o += u;
			c->p += u;
		}
		if (need_atom)
			return 0; /* empty, or ends with '.' */
	}
	out[o] = '\0';
	if (memchr(out, '%', o) != NULL)
		c->flags |= ADDRESS_PATH_F_PERCENT;
	if (memchr(out, '!', o) != NULL)
		c->flags |= ADDRESS_PATH_F_BANG;
	if (memchr(out, '@', o) != NULL)
		c->flags |= ADDRESS_PATH_F_LOCAL_AT;
	return (size_t)(c->p - start);
}

static long fail(const char **error_r, const char *msg)
{
	*error_r = msg;
	return -1;
}

long address_path_parse(const char *s, size_t len, unsigned flags,
			struct address_path *path_r, const char **error_r)
{
	struct cur c = { s, s + len, 0, flags };

	memset(path_r, 0, sizeof(*path_r));
	/* the path may not exceed SMTP_MAX_PATH: look no further */
	if (len > SMTP_MAX_PATH)
		c.end = s + SMTP_MAX_PATH;
	if (c.p == c.end || *c.p != '<')
		return fail(error_r, "path must start with '<'");
	c.p++;
	if (c.p < c.end && *c.p == '>') {
		if (!(flags & ADDRESS_PATH_ALLOW_NULL))
			return fail(error_r, "null path not allowed here");
		path_r->flags = ADDRESS_PATH_F_NULL;
		return 2;
	}
	if ((flags & ADDRESS_PATH_ALLOW_POSTMASTER) && c.end - c.p >= 11 &&
	    strncasecmp(c.p, "postmaster>", 11) == 0) {
		memcpy(path_r->local, c.p, 10);
		memcpy(path_r->local_unquoted, c.p, 10);
		path_r->flags = ADDRESS_PATH_F_POSTMASTER;
		return 12;
	}
	if (c.p < c.end && *c.p == '@') {
		/* A-d-l ":" */
		const char *r = c.p;
		for (;;) {
			if (c.p == c.end || *c.p != '@')
				return fail(error_r, "bad source route");
			c.p++;
			if (scan_domain(&c) == 0)
				return fail(error_r, "bad domain in source route");
			if (c.p < c.end && *c.p == ',') {
				c.p++;
				continue;
			}
			break;
		}
		if (c.p == c.end || *c.p != ':')
			return fail(error_r, "source route must end with ':'");
		memcpy(path_r->route, r, (size_t)(c.p - r)); /* BOUNDS: < SMTP_MAX_PATH */
		c.p++;
		c.flags |= ADDRESS_PATH_F_ROUTE;
	}
	const char *lstart = c.p;
	size_t ln = scan_local(&c, path_r->local_unquoted);
	if (ln == 0)
		return fail(error_r, "bad local part");
	if (ln > SMTP_MAX_LOCAL_PART)
		return fail(error_r, "local part too long");
	memcpy(path_r->local, lstart, ln);
	if (c.p == c.end || *c.p != '@')
		return fail(error_r, "missing '@domain'");
	c.p++;
	const char *dstart = c.p;
	size_t dn = c.p < c.end && *c.p == '[' ? scan_literal(&c) : scan_domain(&c);
	if (dn == 0)
		return fail(error_r, "bad domain");
	if (dn > SMTP_MAX_DOMAIN)
		return fail(error_r, "domain too long");
	memcpy(path_r->domain, dstart, dn);
	if (c.p == c.end || *c.p != '>')
		return fail(error_r, len > SMTP_MAX_PATH ? "path too long" : "path must end with '>'");
	c.p++;
	path_r->flags = c.flags;
	return (long)(c.p - s);
}
