/* IMAP SEARCH: compiling the keys into a tree, evaluating it per message, cheap terms
 * first, and formatting SEARCH/ESEARCH answers.  See imap_search.h. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "base/plimits.h"
#include "base/util.h"
#include "imap/imap_search.h"
#include "imap/imap_seqset.h"
#include "mail/base64.h"
#include "mail/address.h"
#include "mail/charset.h"
#include "mail/date.h"
#include "mail/header.h"
#include "mail/qp.h"
#include "mail/rfc2047.h"

enum node_type {
	N_AND, N_OR, N_NOT, N_ALL, N_FLAG, N_UNFLAG, N_KEYWORD, N_UNKEYWORD, N_NEW, N_OLD,
	N_SEQ, N_UID, N_LARGER, N_SMALLER, N_BEFORE, N_ON, N_SINCE, N_SENTBEFORE, N_SENTON,
	N_SENTSINCE, N_MODSEQ, N_HEADER, N_BODY, N_TEXT,
};

/* Evaluation costs: what a term needs from the message. */
#define COST_CHEAP 1     /* the accessor's fields */
#define COST_KEYWORD 2   /* a callback */
#define COST_SENT 10     /* the Date header */
#define COST_HEADER 20   /* header fields, decoded */
#define COST_BODY 100    /* the message's text, decoded */

struct node {
	enum node_type type;
	unsigned cost;
	unsigned flag;                  /* N_FLAG, N_UNFLAG */
	uint64_t num;                   /* LARGER, SMALLER, MODSEQ */
	long long day;                  /* date keys: days since 1970-01-01 */
	char *name;                     /* KEYWORD, HEADER field name */
	char *needle;                   /* HEADER/BODY/TEXT: folded UTF-8 */
	size_t nlen;
	struct imap_seqset set;         /* N_SEQ, N_UID */
	bool dollar;                    /* the set holds "$" */
	bool address;                   /* FROM, TO, CC, BCC: also match the parsed addresses */
	struct node **kids;             /* AND, OR (2), NOT (1) */
	size_t nkids;
};

/* RETURN options */
#define RET_MIN   1u
#define RET_MAX   2u
#define RET_ALL   4u
#define RET_COUNT 8u
#define RET_SAVE  16u

struct u32_array {
	uint32_t *v;
	size_t n, cap;
};

struct imap_search {
	struct node *root;
	bool uid, esearch, has_modseq, needs_headers, needs_body;
	unsigned ret;
	uint32_t *saved;                /* "$" as given, ascending */
	size_t nsaved;
	struct u32_array res, res_uid;  /* matches: the answer's numbers, and their UIDs */
	uint64_t *res_modseq;           /* has_modseq: each match's mod-sequence */
	size_t modseq_cap;
	uint32_t *save_out;             /* imap_search_saved_uids() */
	size_t nsave_out;
};

/* xrealloc() of n items of size sz; n * sz cannot overflow here (counts are bounded by
 * the parser's IMAP_MAX_ARGS and the daemon's message count), checked anyway. */
static void *xrealloc_array(void *p, size_t n, size_t sz)
{
	if (sz != 0 && n > SIZE_MAX / sz)
		abort();
	return xrealloc(p, n * sz);
}

/* ---- compiling ---- */

struct cstate {
	const struct imap_search_settings *set;
	struct imap_search *s;
	const char *charset;            /* NULL: UTF-8 */
	unsigned text_keys, header_keys;
	struct imap_search_error *err;
};

static void node_free(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->name);
	free(n->needle);
	imap_seqset_free(&n->set);
	free(n);
}

static struct node *node_new(enum node_type t, unsigned cost)
{
	struct node *n = xcalloc(1, sizeof(*n));
	n->type = t;
	n->cost = cost;
	imap_seqset_init(&n->set);
	return n;
}

static void node_add(struct node *p, struct node *kid)
{
	p->kids = xrealloc_array(p->kids, p->nkids + 1, sizeof(*p->kids));
	p->kids[p->nkids++] = kid;
	if (kid->cost > p->cost)
		p->cost = kid->cost;
}

/* Cheap terms first: a stable insertion sort of an AND's or OR's terms by cost. */
static void node_sort(struct node *p)
{
	for (size_t i = 1; i < p->nkids; i++) {
		struct node *k = p->kids[i];
		size_t j = i;
		for (; j > 0 && p->kids[j - 1]->cost > k->cost; j--)
			p->kids[j] = p->kids[j - 1];
		p->kids[j] = k;
	}
}

static int fail(struct cstate *cs, const char *text)
{
	cs->err->text = text;
	cs->err->badcharset = false;
	return -1;
}

static bool is_utf8_name(const char *c)
{
	return strcasecmp(c, "UTF-8") == 0 || strcasecmp(c, "UTF8") == 0 ||
		strcasecmp(c, "US-ASCII") == 0;
}

/* A search string: astring, converted from the CHARSET and folded. */
static int take_string(struct cstate *cs, const struct imap_arg *a, char **out_r,
		       size_t *len_r)
{
	const char *s;
	size_t len;
	if (imap_arg_astring(a, &s, &len) < 0)
		return fail(cs, "SEARCH: invalid string argument");
	if (cs->charset != NULL) {
		const char *e = NULL;
		size_t ulen;
		char *u = charset_to_utf8_str(cs->charset, s, len, &ulen, &e);
		if (u == NULL)
			return fail(cs, "SEARCH: unknown charset");
		*out_r = charset_search_fold(u, ulen, len_r);
		free(u);
	} else {
		*out_r = charset_search_fold(s, len, len_r);
	}
	return 0;
}

/* A date argument: date-text, quoted or not; the day number. */
static int take_date(struct cstate *cs, const struct imap_arg *a, long long *day_r)
{
	time_t t;
	if ((a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_QUOTED) ||
	    date_parse_imap_date(a->str, a->len, &t) < 0)
		return fail(cs, "SEARCH: invalid date (expected d-Mon-yyyy)");
	*day_r = (long long)(t / 86400);
	return 0;
}

static int take_seqset(struct cstate *cs, const struct imap_arg *a, uint32_t star,
		       struct node *n)
{
	const char *e = NULL;
	if (a->type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(&n->set, a->str, a->len, star, &n->dollar, &e) < 0)
		return fail(cs, "SEARCH: invalid sequence set");
	return 0;
}

static bool looks_like_seqset(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM && a->len > 0 &&
		((a->str[0] >= '0' && a->str[0] <= '9') || a->str[0] == '*' ||
		 a->str[0] == '$');
}

static struct node *parse_key(struct cstate *cs, const struct imap_arg *args, size_t count,
			      size_t *i, unsigned depth);

/* Keys args[0..count) into the AND node p. */
static int parse_keys(struct cstate *cs, struct node *p, const struct imap_arg *args,
		      size_t count, unsigned depth)
{
	size_t i = 0;
	if (count == 0)
		return fail(cs, "SEARCH: missing search key");
	while (i < count) {
		struct node *k = parse_key(cs, args, count, &i, depth);
		if (k == NULL)
			return -1;
		node_add(p, k);
	}
	node_sort(p);
	return 0;
}

struct keydef {
	const char *name;
	enum node_type type;
	unsigned flag;
};

static const struct keydef simple_keys[] = {
	{ "ALL", N_ALL, 0 },
	{ "ANSWERED", N_FLAG, IMAP_SEARCH_ANSWERED },
	{ "DELETED", N_FLAG, IMAP_SEARCH_DELETED },
	{ "DRAFT", N_FLAG, IMAP_SEARCH_DRAFT },
	{ "FLAGGED", N_FLAG, IMAP_SEARCH_FLAGGED },
	{ "RECENT", N_FLAG, IMAP_SEARCH_RECENT },
	{ "SEEN", N_FLAG, IMAP_SEARCH_SEEN },
	{ "UNANSWERED", N_UNFLAG, IMAP_SEARCH_ANSWERED },
	{ "UNDELETED", N_UNFLAG, IMAP_SEARCH_DELETED },
	{ "UNDRAFT", N_UNFLAG, IMAP_SEARCH_DRAFT },
	{ "UNFLAGGED", N_UNFLAG, IMAP_SEARCH_FLAGGED },
	{ "UNSEEN", N_UNFLAG, IMAP_SEARCH_SEEN },
	{ "NEW", N_NEW, 0 },            /* RECENT UNSEEN */
	{ "OLD", N_OLD, 0 },            /* NOT RECENT */
};

static const struct { const char *name; const char *field; } header_keys[] = {
	{ "BCC", "Bcc" }, { "CC", "Cc" }, { "FROM", "From" }, { "SUBJECT", "Subject" },
	{ "TO", "To" },
};

static const struct { const char *name; enum node_type type; } date_keys[] = {
	{ "BEFORE", N_BEFORE }, { "ON", N_ON }, { "SINCE", N_SINCE },
	{ "SENTBEFORE", N_SENTBEFORE }, { "SENTON", N_SENTON }, { "SENTSINCE", N_SENTSINCE },
};

static unsigned system_flag(const char *f)
{
	static const struct { const char *n; unsigned f; } sf[] = {
		{ "\\Seen", IMAP_SEARCH_SEEN }, { "\\Answered", IMAP_SEARCH_ANSWERED },
		{ "\\Flagged", IMAP_SEARCH_FLAGGED }, { "\\Deleted", IMAP_SEARCH_DELETED },
		{ "\\Draft", IMAP_SEARCH_DRAFT }, { "\\Recent", IMAP_SEARCH_RECENT },
	};
	for (size_t i = 0; i < sizeof(sf) / sizeof(sf[0]); i++)
		if (strcasecmp(f, sf[i].n) == 0)
			return sf[i].f;
	return 0;
}

/* One key at args[*i]; advances *i past it and its arguments. */
static struct node *parse_key(struct cstate *cs, const struct imap_arg *args, size_t count,
			      size_t *i, unsigned depth)
{
	const struct imap_arg *a = &args[*i];
	const char *kw;
	struct node *n = NULL;

	if (depth >= IMAP_SEARCH_MAX_DEPTH) {
		fail(cs, "SEARCH: keys nested too deeply");
		return NULL;
	}
	(*i)++;
	if (a->type == IMAP_ARG_LIST) {
		n = node_new(N_AND, 0);
		if (parse_keys(cs, n, a->list, a->count, depth + 1) < 0)
			goto bad;
		return n;
	}
	if (looks_like_seqset(a)) {
		n = node_new(N_SEQ, COST_CHEAP);
		if (take_seqset(cs, a, cs->set->messages, n) < 0)
			goto bad;
		return n;
	}
	if (a->type != IMAP_ARG_ATOM || imap_arg_atom(a, &kw) < 0) {
		fail(cs, "SEARCH: invalid search key");
		return NULL;
	}
	for (size_t k = 0; k < sizeof(simple_keys) / sizeof(simple_keys[0]); k++) {
		if (strcasecmp(kw, simple_keys[k].name) == 0) {
			n = node_new(simple_keys[k].type, COST_CHEAP);
			n->flag = simple_keys[k].flag;
			return n;
		}
	}
	/* every other key takes arguments */
	size_t need = strcasecmp(kw, "OR") == 0 || strcasecmp(kw, "HEADER") == 0 ? 2 : 1;
	if (*i + need > count) {
		bool known = strcasecmp(kw, "NOT") == 0 || need == 2 ||
			strcasecmp(kw, "KEYWORD") == 0 || strcasecmp(kw, "UNKEYWORD") == 0 ||
			strcasecmp(kw, "LARGER") == 0 || strcasecmp(kw, "SMALLER") == 0 ||
			strcasecmp(kw, "UID") == 0 || strcasecmp(kw, "MODSEQ") == 0 ||
			strcasecmp(kw, "BODY") == 0 || strcasecmp(kw, "TEXT") == 0;
		for (size_t k = 0; k < sizeof(header_keys) / sizeof(header_keys[0]); k++)
			known = known || strcasecmp(kw, header_keys[k].name) == 0;
		for (size_t k = 0; k < sizeof(date_keys) / sizeof(date_keys[0]); k++)
			known = known || strcasecmp(kw, date_keys[k].name) == 0;
		fail(cs, known ? "SEARCH: missing argument to search key" :
		     "SEARCH: unknown search key");
		return NULL;
	}
	a = &args[*i];
	if (strcasecmp(kw, "NOT") == 0) {
		n = node_new(N_NOT, 0);
		struct node *k = parse_key(cs, args, count, i, depth + 1);
		if (k == NULL)
			goto bad;
		node_add(n, k);
		return n;
	}
	if (strcasecmp(kw, "OR") == 0) {
		n = node_new(N_OR, 0);
		for (int k = 0; k < 2; k++) {
			if (*i >= count) {
				fail(cs, "SEARCH: missing argument to search key");
				goto bad;
			}
			struct node *kid = parse_key(cs, args, count, i, depth + 1);
			if (kid == NULL)
				goto bad;
			node_add(n, kid);
		}
		node_sort(n);
		return n;
	}
	for (size_t k = 0; k < sizeof(date_keys) / sizeof(date_keys[0]); k++) {
		if (strcasecmp(kw, date_keys[k].name) != 0)
			continue;
		n = node_new(date_keys[k].type, date_keys[k].type >= N_SENTBEFORE ?
			     COST_SENT : COST_CHEAP);
		(*i)++;
		if (take_date(cs, a, &n->day) < 0)
			goto bad;
		if (n->cost == COST_SENT)
			cs->s->needs_headers = true;
		return n;
	}
	for (size_t k = 0; k < sizeof(header_keys) / sizeof(header_keys[0]); k++) {
		if (strcasecmp(kw, header_keys[k].name) != 0)
			continue;
		n = node_new(N_HEADER, COST_HEADER);
		n->name = xstrdup(header_keys[k].field);
		n->address = strcmp(header_keys[k].field, "Subject") != 0;
		(*i)++;
		goto header_string;
	}
	if (strcasecmp(kw, "HEADER") == 0) {
		const char *f;
		size_t flen;
		n = node_new(N_HEADER, COST_HEADER);
		(*i)++;
		if (imap_arg_astring(a, &f, &flen) < 0 || flen == 0 ||
		    memchr(f, '\0', flen) != NULL) {
			fail(cs, "SEARCH: invalid header field name");
			goto bad;
		}
		n->name = xstrndup(f, flen);
		a = &args[(*i)++];
		goto header_string;
	}
	if (strcasecmp(kw, "BODY") == 0 || strcasecmp(kw, "TEXT") == 0) {
		n = node_new(kw[0] == 'B' || kw[0] == 'b' ? N_BODY : N_TEXT, COST_BODY);
		(*i)++;
		if (++cs->text_keys > IMAP_SEARCH_MAX_TEXT_KEYS) {
			fail(cs, "SEARCH: too many BODY/TEXT keys");
			goto bad;
		}
		if (take_string(cs, a, &n->needle, &n->nlen) < 0)
			goto bad;
		cs->s->needs_body = true;
		if (n->type == N_TEXT)
			cs->s->needs_headers = true;
		return n;
	}
	if (strcasecmp(kw, "KEYWORD") == 0 || strcasecmp(kw, "UNKEYWORD") == 0) {
		bool neg = kw[0] == 'U' || kw[0] == 'u';
		const char *f;
		(*i)++;
		if (imap_arg_flag(a, &f) < 0) {
			fail(cs, "SEARCH: invalid keyword");
			return NULL;
		}
		unsigned sf = f[0] == '\\' ? system_flag(f) : 0;
		if (f[0] == '\\' && sf == 0) {
			/* an unknown \flag is never set */
			n = node_new(neg ? N_ALL : N_NOT, COST_CHEAP);
			if (!neg)
				node_add(n, node_new(N_ALL, COST_CHEAP));
			return n;
		}
		if (sf != 0) {
			n = node_new(neg ? N_UNFLAG : N_FLAG, COST_CHEAP);
			n->flag = sf;
			return n;
		}
		n = node_new(neg ? N_UNKEYWORD : N_KEYWORD, COST_KEYWORD);
		n->name = xstrdup(f);
		return n;
	}
	if (strcasecmp(kw, "LARGER") == 0 || strcasecmp(kw, "SMALLER") == 0) {
		n = node_new(kw[0] == 'L' || kw[0] == 'l' ? N_LARGER : N_SMALLER, COST_CHEAP);
		(*i)++;
		if (imap_arg_number64(a, &n->num) < 0) {
			fail(cs, "SEARCH: invalid number");
			goto bad;
		}
		return n;
	}
	if (strcasecmp(kw, "UID") == 0) {
		n = node_new(N_UID, COST_CHEAP);
		(*i)++;
		if (take_seqset(cs, a, cs->set->uid_max, n) < 0)
			goto bad;
		return n;
	}
	if (strcasecmp(kw, "MODSEQ") == 0) {
		n = node_new(N_MODSEQ, COST_CHEAP);
		if (a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL) {
			/* [entry-name entry-type-req]: per-flag mod-sequences are not kept, so
			 * RFC 7162 section 3.1.5 says to ignore them (after checking them). */
			const char *en, *et;
			size_t enlen;
			if (imap_arg_string(a, &en, &enlen) < 0 || enlen < 8 ||
			    strncasecmp(en, "/flags/", 7) != 0) {
				fail(cs, "SEARCH: invalid MODSEQ entry name");
				goto bad;
			}
			(*i)++;
			if (*i + 1 >= count || imap_arg_atom(&args[*i], &et) < 0 ||
			    (strcasecmp(et, "shared") != 0 && strcasecmp(et, "priv") != 0 &&
			     strcasecmp(et, "all") != 0)) {
				fail(cs, "SEARCH: invalid MODSEQ entry type");
				goto bad;
			}
			(*i)++;
			a = &args[*i];
		}
		(*i)++;
		if (imap_arg_number64(a, &n->num) < 0) {
			fail(cs, "SEARCH: invalid MODSEQ value");
			goto bad;
		}
		cs->s->has_modseq = true;
		return n;
	}
	fail(cs, "SEARCH: unknown search key");
	return NULL;

header_string:
	if (++cs->header_keys > IMAP_SEARCH_MAX_HEADER_KEYS) {
		fail(cs, "SEARCH: too many header keys");
		goto bad;
	}
	if (take_string(cs, a, &n->needle, &n->nlen) < 0)
		goto bad;
	cs->s->needs_headers = true;
	return n;
bad:
	node_free(n);
	return NULL;
}

static int parse_return(struct cstate *cs, const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_LIST)
		return fail(cs, "SEARCH: RETURN needs a list of options");
	cs->s->esearch = true;
	for (size_t i = 0; i < a->count; i++) {
		static const struct { const char *n; unsigned f; } opts[] = {
			{ "MIN", RET_MIN }, { "MAX", RET_MAX }, { "ALL", RET_ALL },
			{ "COUNT", RET_COUNT }, { "SAVE", RET_SAVE },
		};
		const char *o;
		size_t k;
		if (imap_arg_atom(&a->list[i], &o) < 0)
			return fail(cs, "SEARCH: invalid RETURN option");
		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (strcasecmp(o, opts[k].n) == 0)
				break;
		if (k == sizeof(opts) / sizeof(opts[0]))
			return fail(cs, "SEARCH: unknown RETURN option");
		cs->s->ret |= opts[k].f;
	}
	if (cs->s->ret == 0)            /* RETURN () is RETURN (ALL), RFC 4731 */
		cs->s->ret = RET_ALL;
	return 0;
}

int imap_search_compile(const struct imap_arg *args, size_t count,
			const struct imap_search_settings *set, struct imap_search **s_r,
			struct imap_search_error *error_r)
{
	struct imap_search *s = xcalloc(1, sizeof(*s));
	struct cstate cs = { .set = set, .s = s, .err = error_r };
	size_t i = 0;
	char cbuf[CHARSET_MAX_NAME + 1];

	*s_r = NULL;
	error_r->text = NULL;
	error_r->badcharset = false;
	error_r->save = false;
	s->uid = set->uid;
	if (set->saved_count > 0) {
		s->saved = xrealloc_array(NULL, set->saved_count, sizeof(*s->saved));
		memcpy(s->saved, set->saved_uids, set->saved_count * sizeof(*s->saved));
		s->nsaved = set->saved_count;
	}
	if (i < count && imap_arg_is_atom(&args[i], "RETURN")) {
		if (i + 1 >= count || parse_return(&cs, &args[i + 1]) < 0) {
			if (i + 1 >= count)
				fail(&cs, "SEARCH: RETURN needs a list of options");
			goto bad;
		}
		i += 2;
		error_r->save = (s->ret & RET_SAVE) != 0;
	}
	if (set->rev2 && !s->esearch) {
		/* RFC 9051 section 6.4.4: the answer is ESEARCH, as if RETURN (ALL) */
		s->esearch = true;
		s->ret = RET_ALL;
	}
	if (i < count && imap_arg_is_atom(&args[i], "CHARSET")) {
		const char *c;
		size_t clen;
		if (i + 1 >= count || imap_arg_astring(&args[i + 1], &c, &clen) < 0 ||
		    args[i + 1].type == IMAP_ARG_LITERAL) {
			fail(&cs, "SEARCH: invalid CHARSET");
			goto bad;
		}
		if (clen > CHARSET_MAX_NAME || memchr(c, '\0', clen) != NULL) {
			error_r->text = "SEARCH: unknown charset";
			error_r->badcharset = true;
			goto bad;
		}
		memcpy(cbuf, c, clen);
		cbuf[clen] = '\0';
		if (!is_utf8_name(cbuf)) {
			if (set->utf8_accept) {
				/* RFC 6855 section 3: conflicting charset labels */
				fail(&cs, "SEARCH: CHARSET is not allowed after ENABLE UTF8=ACCEPT");
				goto bad;
			}
			if (!charset_is_known(cbuf)) {
				error_r->text = "SEARCH: unknown charset";
				error_r->badcharset = true;
				goto bad;
			}
			cs.charset = cbuf;
		}
		i += 2;
	}
	s->root = node_new(N_AND, 0);
	if (parse_keys(&cs, s->root, args + i, count - i, 0) < 0)
		goto bad;
	*s_r = s;
	return 0;
bad:
	if (error_r->text == NULL)
		error_r->text = "SEARCH: syntax error";
	imap_search_free(&s);
	return -1;
}

void imap_search_free(struct imap_search **sp)
{
	struct imap_search *s = *sp;
	if (s == NULL)
		return;
	node_free(s->root);
	free(s->saved);
	free(s->res.v);
	free(s->res_uid.v);
	free(s->res_modseq);
	free(s->save_out);
	free(s);
	*sp = NULL;
}

bool imap_search_needs_headers(const struct imap_search *s) { return s->needs_headers; }
bool imap_search_uses_modseq(const struct imap_search *s) { return s->has_modseq; }
bool imap_search_needs_body(const struct imap_search *s) { return s->needs_body; }

/* ---- reading the message ---- */

static int msg_read(const struct imap_search_msg *m, uint64_t off, char *buf, size_t len,
		    size_t *got_r)
{
	*got_r = 0;
	if (m->data != NULL || m->read == NULL) {
		if (m->data == NULL || off >= m->data_len)
			return 0;
		size_t n = m->data_len - (size_t)off;
		if (n > len)
			n = len;
		memcpy(buf, m->data + off, n);
		*got_r = n;
		return 0;
	}
	if (m->read(m->ctx, off, buf, len, got_r) < 0)
		return -1;
	if (*got_r > len)
		*got_r = len;
	return 0;
}

/* The top-level header fields, from headers() or parsed from the bytes. */
struct hdr_walk {
	imap_search_header_cb *cb;
	void *cbctx;
	bool stop;
};

static void hdr_walk_field(void *ctx, const struct header_field *f)
{
	struct hdr_walk *w = ctx;
	if (w->stop || f->no_colon)
		return;
	if (w->cb(w->cbctx, f->name, f->name_len, f->value, f->value_len))
		w->stop = true;
}

static int walk_headers(const struct imap_search_msg *m, imap_search_header_cb *cb,
			void *cbctx)
{
	if (m->headers != NULL)
		return m->headers(m->ctx, cb, cbctx);
	struct hdr_walk w = { cb, cbctx, false };
	struct header_parser *hp = header_parser_new(0);
	char buf[4096];
	uint64_t off = m->parts != NULL ? m->parts->hdr_offset : 0;
	uint64_t end = m->parts != NULL ? m->parts->hdr_offset + m->parts->hdr_size :
		UINT64_MAX;
	int ret = 0;
	while (!w.stop && off < end && !header_parser_done(hp)) {
		size_t want = sizeof(buf), got;
		if (end - off < want)
			want = (size_t)(end - off);
		if (msg_read(m, off, buf, want, &got) < 0) {
			ret = -1;
			break;
		}
		if (got == 0)
			break;
		header_parser_feed(hp, buf, got, hdr_walk_field, &w);
		off += got;
	}
	if (ret == 0 && !w.stop)
		header_parser_finish(hp, hdr_walk_field, &w);
	header_parser_free(&hp);
	return ret;
}

/* ---- the streaming matcher ---- */

/* A substring search over text that comes in pieces: the last nlen - 1 bytes are kept,
 * so a match across a piece boundary is found; memory 3 * nlen. */
struct matcher {
	const char *needle;
	size_t nlen;
	char *carry;            /* the last ncarry (< nlen) bytes seen */
	size_t ncarry;
	char *tmp;              /* carry + the start of the next piece */
	bool found;
};

static void matcher_init(struct matcher *mt, const char *needle, size_t nlen)
{
	memset(mt, 0, sizeof(*mt));
	mt->needle = needle;
	mt->nlen = nlen;
	mt->found = nlen == 0;
	if (nlen > 1) {
		mt->carry = xmalloc(nlen);
		mt->tmp = xmalloc(2 * nlen);
	}
}

static void matcher_reset(struct matcher *mt)
{
	mt->ncarry = 0;
}

static void matcher_free(struct matcher *mt)
{
	free(mt->carry);
	free(mt->tmp);
}

static void matcher_feed(struct matcher *mt, const char *d, size_t len)
{
	if (mt->found || len == 0)
		return;
	size_t keep = mt->nlen - 1;
	if (mt->ncarry > 0) {
		size_t k = len < keep ? len : keep;
		memcpy(mt->tmp, mt->carry, mt->ncarry);
		memcpy(mt->tmp + mt->ncarry, d, k);
		if (memmem(mt->tmp, mt->ncarry + k, mt->needle, mt->nlen) != NULL) {
			mt->found = true;
			return;
		}
	}
	if (memmem(d, len, mt->needle, mt->nlen) != NULL) {
		mt->found = true;
		return;
	}
	if (keep == 0)
		return;
	if (len >= keep) {
		memcpy(mt->carry, d + len - keep, keep);
		mt->ncarry = keep;
	} else {
		size_t total = mt->ncarry + len;
		size_t drop = total > keep ? total - keep : 0;
		memmove(mt->carry, mt->carry + drop, mt->ncarry - drop);
		memcpy(mt->carry + mt->ncarry - drop, d, len);
		mt->ncarry = total - drop;
	}
}

/* ---- decoding one part's text into the matcher ---- */

struct textpipe {
	struct matcher *mt;
	struct charset_conv *conv;
};

/* UTF-8 out of the converter: fold and match. */
static void pipe_utf8(struct textpipe *tp, const char *u, size_t len)
{
	if (len == 0)
		return;
	size_t flen;
	char *f = charset_search_fold(u, len, &flen);
	matcher_feed(tp->mt, f, flen);
	free(f);
}

/* Bytes after the transfer decoding, in the part's charset. */
static void pipe_decoded(struct textpipe *tp, const char *in, size_t len)
{
	char out[4096];
	while (len > 0 && !tp->mt->found) {
		size_t used = 0;
		size_t n = charset_to_utf8_convert(tp->conv, in, len, out, sizeof(out), &used);
		pipe_utf8(tp, out, n);
		in += used;
		len -= used;
		if (used == 0 && n == 0)
			break;          /* cannot happen; never loop forever */
	}
}

enum cte { CTE_NONE, CTE_QP, CTE_B64 };

static int search_part(const struct imap_search_msg *m, const struct mime_part *p,
		       struct matcher *mt, char *raw, size_t chunk)
{
	const char *cs = mimeparam_get(p->type_params, p->n_type_params, "charset");
	const char *e = NULL;
	struct textpipe tp = { mt, NULL };
	if (cs == NULL || charset_to_utf8_begin(cs, &tp.conv, &e) < 0) {
		if (charset_to_utf8_begin("UTF-8", &tp.conv, &e) < 0)
			return 0;
	}
	enum cte cte = CTE_NONE;
	if (p->encoding != NULL && strcmp(p->encoding, "quoted-printable") == 0)
		cte = CTE_QP;
	else if (p->encoding != NULL && strcmp(p->encoding, "base64") == 0)
		cte = CTE_B64;
	struct qp_decoder qd;
	struct base64_decoder bd;
	qp_decode_init(&qd);
	base64_decode_init(&bd);
	matcher_reset(mt);

	uint64_t off = p->body_offset, end = p->body_offset + p->body_size;
	char dec[4096];
	int ret = 0;
	while (off < end && !mt->found) {
		size_t want = chunk, got;
		if (end - off < want)
			want = (size_t)(end - off);
		if (msg_read(m, off, raw, want, &got) < 0) {
			ret = -1;
			break;
		}
		if (got == 0)
			break;
		off += got;
		const char *in = raw;
		size_t len = got;
		while (len > 0 && !mt->found) {
			size_t used = 0, n;
			if (cte == CTE_QP) {
				n = qp_decode_update(&qd, in, len, dec, sizeof(dec), &used);
				pipe_decoded(&tp, dec, n);
			} else if (cte == CTE_B64) {
				n = base64_decode_update(&bd, in, len, dec, sizeof(dec), &used);
				pipe_decoded(&tp, dec, n);
			} else {
				pipe_decoded(&tp, in, len);
				used = len;
			}
			in += used;
			len -= used;
		}
	}
	if (ret == 0 && !mt->found) {
		size_t n = 0;
		if (cte == CTE_QP) {
			n = qp_decode_finish(&qd, dec);
		} else if (cte == CTE_B64) {
			base64_decode_finish(&bd, dec, &n);
		}
		pipe_decoded(&tp, dec, n);
	}
	char out[CHARSET_MIN_OUT];
	size_t n = charset_to_utf8_end(&tp.conv, out, sizeof(out));
	if (ret == 0 && !mt->found)
		pipe_utf8(&tp, out, n);
	return ret;
}

static bool part_is_text(const struct mime_part *p)
{
	return (p->flags & MIME_PART_DEFAULT_TYPE) != 0 || strcmp(p->type, "text") == 0;
}

static int search_tree(const struct imap_search_msg *m, const struct mime_part *p,
		       struct matcher *mt, char *raw, size_t chunk)
{
	for (; p != NULL && !mt->found; p = p->next) {
		if ((p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) != 0) {
			if (search_tree(m, p->children, mt, raw, chunk) < 0)
				return -1;
		} else if ((p->flags & MIME_PART_OPAQUE) == 0 && part_is_text(p)) {
			if (search_part(m, p, mt, raw, chunk) < 0)
				return -1;
		}
	}
	return 0;
}

/* No tree from the daemon: parse one from the bytes (bounded by mime.h's limits). */
static int build_tree(const struct imap_search_msg *m, struct mime_part **root_r)
{
	struct mime_parser *mp = mime_parser_new();
	char buf[8192];
	uint64_t off = 0;
	for (;;) {
		size_t got;
		if (msg_read(m, off, buf, sizeof(buf), &got) < 0) {
			mime_parser_abort(&mp);
			return -1;
		}
		if (got == 0)
			break;
		mime_parser_feed(mp, buf, got);
		off += got;
	}
	mime_parser_finish(&mp, root_r, NULL);
	return 0;
}

int imap_search_body_contains(const struct imap_search_msg *m, const char *needle,
			      size_t needle_len, size_t chunk)
{
	struct mime_part *own = NULL;
	const struct mime_part *root = m->parts;
	if (needle_len == 0)
		return 1;
	if (root == NULL) {
		if (build_tree(m, &own) < 0)
			return -1;
		root = own;
	}
	if (chunk == 0 || chunk > IMAP_SEARCH_READ_CHUNK)
		chunk = IMAP_SEARCH_READ_CHUNK;
	char *raw = xmalloc(chunk);
	struct matcher mt;
	matcher_init(&mt, needle, needle_len);
	int ret = search_tree(m, root, &mt, raw, chunk);
	if (ret == 0)
		ret = mt.found ? 1 : 0;
	matcher_free(&mt);
	free(raw);
	mime_part_free(&own);
	return ret;
}

/* ---- evaluation ---- */

struct eval {
	struct imap_search *s;
	const struct imap_search_msg *m;
	int sent_state;                 /* 0 not looked, 1 have, -1 none */
	long long sent_day;
	const char **error_r;
};

static long long day_of(time_t t, int tz_min)
{
	long long x = (long long)t + (long long)tz_min * 60;
	return x >= 0 ? x / 86400 : -((-x + 86399) / 86400);
}

struct date_find {
	time_t t;
	int tz;
	bool found;
};

static bool find_date_cb(void *ctx, const char *name, size_t name_len, const char *value,
			 size_t value_len)
{
	struct date_find *d = ctx;
	if (name_len != 4 || strncasecmp(name, "Date", 4) != 0)
		return false;
	d->found = date_parse_rfc5322(value, value_len, &d->t, &d->tz) == 0;
	return true;                    /* the first Date field only */
}

static int sent_day(struct eval *ev)
{
	if (ev->sent_state != 0)
		return 0;
	time_t t;
	int tz;
	ev->sent_state = -1;
	if (ev->m->sent_date != NULL) {
		if (ev->m->sent_date(ev->m->ctx, &t, &tz) == 0) {
			ev->sent_day = day_of(t, tz);
			ev->sent_state = 1;
		}
		return 0;
	}
	struct date_find d = { 0, 0, false };
	if (walk_headers(ev->m, find_date_cb, &d) < 0) {
		*ev->error_r = "SEARCH: cannot read the message";
		return -1;
	}
	if (d.found) {
		ev->sent_day = day_of(d.t, d.tz);
		ev->sent_state = 1;
	}
	return 0;
}

struct hdr_match {
	const struct node *n;           /* the HEADER or TEXT key */
	bool all_fields;                /* TEXT: every field, as "Name: value" */
	bool found;
};

/* An address field as its envelope reads (RFC 3501 6.4.4: FROM matches "the envelope
 * structure's FROM field"): each mailbox as "Name <route:local@domain>" with the name
 * RFC 2047-decoded and comments, quoting and folding gone, groups as "Group: ...;",
 * joined by ", ".  So "<a (x)@ (y) example.org>" is found by "a@example.org". */
static char *address_text(const char *value, size_t value_len, size_t *len_r)
{
	struct address_list *l = address_list_parse(value, value_len);
	size_t cap = 64, len = 0;
	char *out = xmalloc(cap);
	for (size_t i = 0; i < l->count; i++) {
		const struct address *a = &l->addrs[i];
		char *name = address_name_decode(a->name);
		const char *parts[8];
		size_t np = 0;
		if (a->kind == ADDRESS_GROUP_END) {
			parts[np++] = ";";
		} else {
			if (len > 0 && out[len - 1] != ':')
				parts[np++] = ", ";
			else if (len > 0)
				parts[np++] = " ";
			if (name != NULL) {
				parts[np++] = name;
				parts[np++] = a->kind == ADDRESS_GROUP_START ? ":" : " ";
			}
			if (a->kind == ADDRESS_MAILBOX) {
				parts[np++] = "<";
				if (a->route != NULL) {
					parts[np++] = a->route;
					parts[np++] = ":";
				}
				/* the placeholders of a missing part are not the message's text */
				if (!(a->flags & ADDRESS_F_MISSING_LOCAL))
					parts[np++] = a->mailbox;
				if (!(a->flags & ADDRESS_F_MISSING_DOMAIN)) {
					parts[np++] = "@";
					parts[np++] = a->domain;
				}
			}
		}
		for (size_t k = 0; k < np; k++) {
			size_t n = strlen(parts[k]);
			if (len + n + 2 > cap) {
				cap = (len + n + 2) * 2;
				out = xrealloc(out, cap);
			}
			memcpy(out + len, parts[k], n); /* BOUNDS: grown above */
			len += n;
		}
		if (a->kind == ADDRESS_MAILBOX)
			out[len++] = '>';
		free(name);
	}
	out[len] = '\0';
	address_list_free(&l);
	*len_r = len;
	return out;
}

static bool hdr_match_cb(void *ctx, const char *name, size_t name_len, const char *value,
			 size_t value_len)
{
	struct hdr_match *h = ctx;
	if (!h->all_fields &&
	    (strlen(h->n->name) != name_len || strncasecmp(name, h->n->name, name_len) != 0))
		return false;
	if (h->n->nlen == 0) {          /* an empty string: any such field matches */
		h->found = true;
		return true;
	}
	size_t dlen, flen;
	char *d = rfc2047_decode(value, value_len, &dlen);
	char *text = d;
	if (h->all_fields) {
		text = xmalloc(name_len + 2 + dlen + 1);
		memcpy(text, name, name_len);
		memcpy(text + name_len, ": ", 2);
		memcpy(text + name_len + 2, d, dlen);
		dlen += name_len + 2;
		free(d);
	}
	char *f = charset_search_fold(text, dlen, &flen);
	free(text);
	h->found = memmem(f, flen, h->n->needle, h->n->nlen) != NULL;
	free(f);
	if (!h->found && h->n->address) {
		text = address_text(value, value_len, &dlen);
		f = charset_search_fold(text, dlen, &flen);
		free(text);
		h->found = memmem(f, flen, h->n->needle, h->n->nlen) != NULL;
		free(f);
	}
	return h->found;
}

static int eval_node(struct eval *ev, const struct node *n)
{
	const struct imap_search_msg *m = ev->m;
	int r;
	switch (n->type) {
	case N_AND:
		for (size_t i = 0; i < n->nkids; i++)
			if ((r = eval_node(ev, n->kids[i])) <= 0)
				return r;
		return 1;
	case N_OR:
		for (size_t i = 0; i < n->nkids; i++)
			if ((r = eval_node(ev, n->kids[i])) != 0)
				return r;
		return 0;
	case N_NOT:
		r = eval_node(ev, n->kids[0]);
		return r < 0 ? r : !r;
	case N_ALL:
		return 1;
	case N_FLAG:
		return (m->flags & n->flag) != 0;
	case N_UNFLAG:
		return (m->flags & n->flag) == 0;
	case N_NEW:
		return (m->flags & IMAP_SEARCH_RECENT) != 0 && (m->flags & IMAP_SEARCH_SEEN) == 0;
	case N_OLD:
		return (m->flags & IMAP_SEARCH_RECENT) == 0;
	case N_KEYWORD:
		return m->has_keyword != NULL && m->has_keyword(m->ctx, n->name);
	case N_UNKEYWORD:
		return m->has_keyword == NULL || !m->has_keyword(m->ctx, n->name);
	case N_SEQ:
	case N_UID: {
		uint32_t v = n->type == N_SEQ ? m->seq : m->uid;
		if (imap_seqset_contains(&n->set, v))
			return 1;
		if (!n->dollar)
			return 0;
		size_t lo = 0, hi = ev->s->nsaved;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (ev->s->saved[mid] == m->uid)
				return 1;
			if (ev->s->saved[mid] < m->uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		return 0;
	}
	case N_LARGER:
		return m->size > n->num;
	case N_SMALLER:
		return m->size < n->num;
	case N_BEFORE:
		return day_of(m->internal_date, m->internal_tz) < n->day;
	case N_ON:
		return day_of(m->internal_date, m->internal_tz) == n->day;
	case N_SINCE:
		return day_of(m->internal_date, m->internal_tz) >= n->day;
	case N_SENTBEFORE:
	case N_SENTON:
	case N_SENTSINCE:
		if (sent_day(ev) < 0)
			return -1;
		if (ev->sent_state != 1)
			return 0;
		return n->type == N_SENTBEFORE ? ev->sent_day < n->day :
			n->type == N_SENTON ? ev->sent_day == n->day : ev->sent_day >= n->day;
	case N_MODSEQ:
		return m->modseq >= n->num;
	case N_HEADER:
	case N_TEXT: {
		struct hdr_match h = { n, n->type == N_TEXT, false };
		if (walk_headers(m, hdr_match_cb, &h) < 0) {
			*ev->error_r = "SEARCH: cannot read the message";
			return -1;
		}
		if (h.found || n->type == N_HEADER)
			return h.found;
		r = imap_search_body_contains(m, n->needle, n->nlen, 0);
		if (r < 0)
			*ev->error_r = "SEARCH: cannot read the message";
		return r;
	}
	case N_BODY:
		r = imap_search_body_contains(m, n->needle, n->nlen, 0);
		if (r < 0)
			*ev->error_r = "SEARCH: cannot read the message";
		return r;
	}
	return 0;
}

static void u32_push(struct u32_array *a, uint32_t v)
{
	if (a->n == a->cap) {
		a->cap = a->cap == 0 ? 64 : a->cap * 2;
		a->v = xrealloc_array(a->v, a->cap, sizeof(*a->v));
	}
	a->v[a->n++] = v;
}

int imap_search_match(struct imap_search *s, const struct imap_search_msg *m,
		      const char **error_r)
{
	struct eval ev = { .s = s, .m = m, .error_r = error_r };
	int r = eval_node(&ev, s->root);
	if (r <= 0)
		return r;
	u32_push(&s->res, s->uid ? m->uid : m->seq);
	u32_push(&s->res_uid, m->uid);
	if (s->has_modseq) {
		if (s->res.n > s->modseq_cap) {
			s->modseq_cap = s->res.cap;
			s->res_modseq = xrealloc_array(s->res_modseq, s->modseq_cap,
						      sizeof(*s->res_modseq));
		}
		s->res_modseq[s->res.n - 1] = m->modseq;
	}
	return 1;
}

const uint32_t *imap_search_results(const struct imap_search *s, size_t *count_r)
{
	*count_r = s->res.n;
	return s->res.v;
}

/* ---- results ---- */

static bool only_minmax(const struct imap_search *s)
{
	return (s->ret & (RET_MIN | RET_MAX)) != 0 && (s->ret & (RET_ALL | RET_COUNT)) == 0;
}

bool imap_search_saving(const struct imap_search *s)
{
	return (s->ret & RET_SAVE) != 0;
}

const uint32_t *imap_search_saved_uids(const struct imap_search *s, size_t *count_r)
{
	struct imap_search *w = (struct imap_search *)s;  /* a cache of the answer */
	free(w->save_out);
	w->save_out = NULL;
	w->nsave_out = 0;
	if (s->res_uid.n == 0) {
		*count_r = 0;
		return NULL;
	}
	if (only_minmax(s)) {
		/* RFC 5182 section 2.4: "$" holds just the MIN and/or MAX message */
		w->save_out = xrealloc_array(NULL, 2, sizeof(uint32_t));
		if (s->ret & RET_MIN)
			w->save_out[w->nsave_out++] = s->res_uid.v[0];
		if ((s->ret & RET_MAX) && (w->nsave_out == 0 || s->res_uid.n > 1))
			w->save_out[w->nsave_out++] = s->res_uid.v[s->res_uid.n - 1];
	} else {
		w->save_out = xrealloc_array(NULL, s->res_uid.n, sizeof(uint32_t));
		memcpy(w->save_out, s->res_uid.v, s->res_uid.n * sizeof(uint32_t));
		w->nsave_out = s->res_uid.n;
	}
	*count_r = w->nsave_out;
	return w->save_out;
}

/* The highest mod-sequence of the messages the answer returns. */
static uint64_t answer_modseq(const struct imap_search *s)
{
	uint64_t max = 0;
	size_t n = s->res.n;
	if (s->esearch && only_minmax(s)) {
		if (s->ret & RET_MIN)
			max = s->res_modseq[0];
		if ((s->ret & RET_MAX) && s->res_modseq[n - 1] > max)
			max = s->res_modseq[n - 1];
		return max;
	}
	for (size_t i = 0; i < n; i++)
		if (s->res_modseq[i] > max)
			max = s->res_modseq[i];
	return max;
}

/* The compact sequence set of the ascending numbers v[0..n). */
static int write_set(struct imap_buf *b, const uint32_t *v, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (i > 0 && imap_buf_append(b, ",", 1) < 0)
			return -1;
		if ((j == i ? imap_buf_printf(b, "%u", v[i]) :
		     imap_buf_printf(b, "%u:%u", v[i], v[j])) < 0)
			return -1;
		i = j + 1;
	}
	return 0;
}

int imap_search_format(const struct imap_search *s, const char *tag, struct imap_buf *b)
{
	size_t n = s->res.n;
	const uint32_t *v = s->res.v;
	int r = 0;
	if (!s->esearch) {
		r |= imap_buf_puts(b, "* SEARCH");
		for (size_t i = 0; i < n; i++)
			r |= imap_buf_printf(b, " %u", v[i]);
		if (s->has_modseq && n > 0)
			r |= imap_buf_printf(b, " (MODSEQ %llu)",
					     (unsigned long long)answer_modseq(s));
		r |= imap_buf_puts(b, "\r\n");
		return r < 0 ? -1 : 0;
	}
	if ((s->ret & ~RET_SAVE) == 0)
		return 0;               /* RFC 5182 section 2.4: SAVE alone, no ESEARCH */
	r |= imap_buf_puts(b, "* ESEARCH");
	if (tag != NULL) {
		r |= imap_buf_puts(b, " (TAG ");
		r |= imap_write_string(b, tag, strlen(tag), 0);
		r |= imap_buf_puts(b, ")");
	}
	if (s->uid)
		r |= imap_buf_puts(b, " UID");
	/* RFC 4731 section 3.1: MIN, MAX and ALL are left out when nothing matched */
	if ((s->ret & RET_MIN) && n > 0)
		r |= imap_buf_printf(b, " MIN %u", v[0]);
	if ((s->ret & RET_MAX) && n > 0)
		r |= imap_buf_printf(b, " MAX %u", v[n - 1]);
	if (s->ret & RET_COUNT)
		r |= imap_buf_printf(b, " COUNT %zu", n);
	if ((s->ret & RET_ALL) && n > 0) {
		r |= imap_buf_puts(b, " ALL ");
		r |= write_set(b, v, n);
	}
	if (s->has_modseq && n > 0)
		r |= imap_buf_printf(b, " MODSEQ %llu", (unsigned long long)answer_modseq(s));
	r |= imap_buf_puts(b, "\r\n");
	return r < 0 ? -1 : 0;
}
