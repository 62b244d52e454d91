/* Content-Type / Content-Disposition / Content-Language values (mime.h): RFC 2045
 * section 5.1 syntax with comments (RFC 5322 CFWS), RFC 2231 parameter value and
 * continuation forms, tolerant of what real mailers send (unquoted values holding
 * tspecials or spaces, a missing ';', junk between parameters). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/mime.h"

char *mimeparam_strdup(const char *s, size_t len)
{
	if (len > MIME_VALUE_MAX)
		len = MIME_VALUE_MAX;
	char *r = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		r[i] = s[i] == '\0' ? ' ' : s[i];
	r[len] = '\0';
	return r;
}

static char *strdup_lower(const char *s, size_t len)
{
	char *r = mimeparam_strdup(s, len);
	for (char *q = r; *q != '\0'; q++)
		*q = (char)tolower((unsigned char)*q);
	return r;
}

/* Skip white space, line ends and (nested) comments. */
static const char *skip_cfws(const char *p, const char *end)
{
	unsigned depth = 0;
	while (p < end) {
		char c = *p;
		if (depth > 0) {
			if (c == '\\' && p + 1 < end)
				p++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (c == '(') {
			depth = 1;
		} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			break;
		}
		p++;
	}
	return p;
}

static bool is_token(unsigned char c)
{
	return c > 0x20 && c != 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static const char *token_end(const char *p, const char *end)
{
	while (p < end && is_token((unsigned char)*p))
		p++;
	return p;
}

struct raw_param {
	const char *base;       /* name before any '*', not NUL-terminated */
	size_t base_len;
	int section;            /* -1: none */
	bool ext;               /* name* or name*N*: charset'lang'%XX */
	char *value;            /* unquoted, at most MIME_VALUE_MAX */
	size_t value_len;
};

/* Split "name", "name*", "name*N", "name*N*". */
static void split_name(struct raw_param *rp, const char *n, size_t len)
{
	const char *star = memchr(n, '*', len);
	rp->base = n;
	rp->base_len = len;
	rp->section = -1;
	rp->ext = false;
	if (star == NULL)
		return;
	size_t b = (size_t)(star - n), i = b + 1;
	if (i == len) {
		rp->base_len = b;
		rp->ext = true;
		return;
	}
	int sec = 0;
	size_t digits = 0;
	while (i < len && n[i] >= '0' && n[i] <= '9' && digits < 4) {
		sec = sec * 10 + (n[i] - '0');
		i++;
		digits++;
	}
	if (digits == 0 || (digits > 1 && n[b + 1] == '0'))
		return; /* not an RFC 2231 form: the whole name */
	if (i == len || (i + 1 == len && n[i] == '*')) {
		rp->base_len = b;
		rp->section = sec;
		rp->ext = i + 1 == len;
	}
}

/* A value: quoted-string (unquoted here) or everything up to ';' (trimmed). */
static const char *read_value(const char *p, const char *end, struct raw_param *rp)
{
	char *v = xmalloc(MIME_VALUE_MAX + 1);
	size_t o = 0;
	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			if (o < MIME_VALUE_MAX && *p != '\r' && *p != '\n')
				v[o++] = *p == '\0' ? ' ' : *p;
		}
		if (p < end)
			p++;
	} else {
		const char *s = p, *e;
		while (p < end && *p != ';')
			p++;
		e = p;
		/* a comment after the value: "us-ascii (Plain text)" */
		for (const char *q = s + 1; q < p; q++)
			if (*q == '(' && (q[-1] == ' ' || q[-1] == '\t')) {
				e = q;
				break;
			}
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
				 e[-1] == '\n'))
			e--;
		for (; s < e && o < MIME_VALUE_MAX; s++)
			v[o++] = *s == '\0' ? ' ' : *s;
	}
	v[o] = '\0';
	rp->value = v;
	rp->value_len = o;
	return p;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Append s[0..len) to out (at *o, capped at MIME_VALUE_MAX), %XX decoded if pct. */
static void append(char *out, size_t *o, const char *s, size_t len, bool pct)
{
	for (size_t i = 0; i < len && *o < MIME_VALUE_MAX; i++) {
		char c = s[i];
		int h, l;
		if (pct && c == '%' && i + 2 < len && (h = hexval(s[i + 1])) >= 0 &&
		    (l = hexval(s[i + 2])) >= 0) {
			c = (char)(h * 16 + l);
			i += 2;
		}
		out[(*o)++] = c == '\0' ? ' ' : c;
	}
}

/* From an extended first value, split off charset'lang'. */
static void split_charset(struct mime_param *mp, const char **v, size_t *len)
{
	const char *q1 = memchr(*v, '\'', *len);
	if (q1 == NULL)
		return;
	const char *q2 = memchr(q1 + 1, '\'', *len - (size_t)(q1 + 1 - *v));
	if (q2 == NULL)
		return;
	if (q1 > *v)
		mp->charset = mimeparam_strdup(*v, (size_t)(q1 - *v));
	if (q2 > q1 + 1)
		mp->language = mimeparam_strdup(q1 + 1, (size_t)(q2 - q1 - 1));
	*len -= (size_t)(q2 + 1 - *v);
	*v = q2 + 1;
}

static bool same_base(const struct raw_param *a, const struct raw_param *b)
{
	return a->base_len == b->base_len && strncasecmp(a->base, b->base, a->base_len) == 0;
}

/* Merge the raw pairs into parameters (RFC 2231 sections 3 and 4). */
static void merge(struct raw_param *raw, unsigned nraw, struct mime_param **params_r,
		  unsigned *n_r)
{
	struct mime_param *out = xcalloc(MIME_MAX_PARAMS, sizeof(*out));
	unsigned n = 0;
	for (unsigned i = 0; i < nraw && n < MIME_MAX_PARAMS; i++) {
		bool seen = false;
		for (unsigned j = 0; j < i && !seen; j++)
			seen = same_base(&raw[i], &raw[j]);
		if (seen || raw[i].base_len == 0)
			continue;
		struct raw_param *plain = NULL, *ext = NULL;
		bool sections = false;
		for (unsigned j = i; j < nraw; j++) {
			if (!same_base(&raw[i], &raw[j]))
				continue;
			if (raw[j].section == 0)
				sections = true;
			else if (raw[j].section < 0 && raw[j].ext && ext == NULL)
				ext = &raw[j];
			else if (raw[j].section < 0 && !raw[j].ext && plain == NULL)
				plain = &raw[j];
		}
		struct mime_param *mp = &out[n];
		char *v = xmalloc(MIME_VALUE_MAX + 1);
		size_t o = 0;
		if (sections) {
			for (int sec = 0; sec < (int)nraw; sec++) {
				struct raw_param *s = NULL;
				for (unsigned j = i; j < nraw && s == NULL; j++)
					if (same_base(&raw[i], &raw[j]) && raw[j].section == sec)
						s = &raw[j];
				if (s == NULL)
					break;
				const char *sv = s->value;
				size_t sl = s->value_len;
				if (sec == 0 && s->ext)
					split_charset(mp, &sv, &sl);
				append(v, &o, sv, sl, s->ext);
			}
		} else if (ext != NULL) {
			const char *sv = ext->value;
			size_t sl = ext->value_len;
			split_charset(mp, &sv, &sl);
			append(v, &o, sv, sl, true);
		} else if (plain != NULL) {
			append(v, &o, plain->value, plain->value_len, false);
		} else {
			free(v);
			continue; /* only sections > 0: nothing to start from */
		}
		v[o] = '\0';
		mp->value = v;
		mp->name = strdup_lower(raw[i].base, raw[i].base_len);
		n++;
	}
	if (n == 0) {
		free(out);
		out = NULL;
	}
	*params_r = out;
	*n_r = n;
}

void mimeparam_parse_params(const char *p, size_t len, struct mime_param **params_r,
			    unsigned *n_r)
{
	const char *end = p + len;
	struct raw_param *raw = xcalloc(MIME_MAX_RAW_PARAMS, sizeof(*raw));
	unsigned nraw = 0;

	while (p < end && nraw < MIME_MAX_RAW_PARAMS) {
		p = skip_cfws(p, end);
		if (p < end && *p == ';') {
			p++;
			continue;
		}
		const char *ns = p, *ne = token_end(p, end);
		p = skip_cfws(ne, end);
		if (ne == ns || p >= end || *p != '=') {
			/* junk: on to the next ';' */
			while (p < end && *p != ';')
				p++;
			if (p == ns && p < end)
				p++;
			continue;
		}
		p = skip_cfws(p + 1, end);
		split_name(&raw[nraw], ns, (size_t)(ne - ns));
		p = read_value(p, end, &raw[nraw]);
		nraw++;
	}
	merge(raw, nraw, params_r, n_r);
	for (unsigned i = 0; i < nraw; i++)
		free(raw[i].value);
	free(raw);
}

int mimeparam_parse_type(const char *v, size_t len, char **type_r, char **subtype_r,
			 struct mime_param **params_r, unsigned *n_r)
{
	const char *end = v + len, *p = skip_cfws(v, end);
	const char *ts = p, *te = token_end(p, end);
	p = skip_cfws(te, end);
	if (te == ts || p >= end || *p != '/')
		return -1;
	p = skip_cfws(p + 1, end);
	const char *ss = p, *se = token_end(p, end);
	if (se == ss)
		return -1;
	*type_r = strdup_lower(ts, (size_t)(te - ts));
	*subtype_r = strdup_lower(ss, (size_t)(se - ss));
	mimeparam_parse_params(se, (size_t)(end - se), params_r, n_r);
	return 0;
}

int mimeparam_parse_disposition(const char *v, size_t len, char **disp_r,
				struct mime_param **params_r, unsigned *n_r)
{
	const char *end = v + len, *p = skip_cfws(v, end);
	const char *ds = p, *de = token_end(p, end);
	if (de == ds)
		return -1;
	*disp_r = strdup_lower(ds, (size_t)(de - ds));
	mimeparam_parse_params(de, (size_t)(end - de), params_r, n_r);
	return 0;
}

void mimeparam_parse_languages(const char *v, size_t len, char ***langs_r, unsigned *n_r)
{
	const char *end = v + len, *p = v;
	char **langs = NULL;
	unsigned n = 0;
	while (p < end && n < MIME_MAX_LANGUAGES) {
		p = skip_cfws(p, end);
		const char *s = p;
		while (p < end && *p != ',' && *p != '(' && *p != ' ' && *p != '\t' &&
		       *p != '\r' && *p != '\n')
			p++;
		if (p > s) {
			if (langs == NULL)
				langs = xcalloc(MIME_MAX_LANGUAGES, sizeof(*langs));
			langs[n++] = mimeparam_strdup(s, (size_t)(p - s));
		}
		p = skip_cfws(p, end);
		while (p < end && *p != ',')
			p++; /* junk after a tag */
		if (p < end)
			p++;
	}
	*langs_r = langs;
	*n_r = n;
}

void mimeparam_free(struct mime_param **paramsp, unsigned n)
{
	struct mime_param *params = *paramsp;
	if (params == NULL)
		return;
	for (unsigned i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
		free(params[i].charset);
		free(params[i].language);
	}
	free(params);
	*paramsp = NULL;
}

const char *mimeparam_get(const struct mime_param *params, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(params[i].name, name) == 0)
			return params[i].value;
	return NULL;
}
