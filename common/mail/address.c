/* RFC 5322 address-list parser, best effort (address.h has the decisions).
 *
 * One pass over the value, no recursion: a cursor, a skipper for CFWS (comments are
 * counted, not recursed into), and readers for atoms, quoted strings and domain
 * literals.  A run of words is read once into two forms: the phrase (words joined by one
 * space where CFWS separated them) and the local part (words and dots concatenated), and
 * the byte after the run decides which one it was: ':' a group name, '<' a display name,
 * '@' a local part.  Strings go to one growing buffer as offsets, made pointers at the
 * end.  Every loop consumes at least one byte per turn, or ends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "mail/address.h"
#include "mail/rfc2047.h"

#define NONE SIZE_MAX

struct buf {
	char *d;
	size_t len, cap;
};

struct entry {
	enum address_kind kind;
	unsigned flags;
	size_t name, route, mailbox, domain; /* offsets into strs, or NONE */
};

struct parser {
	const char *p, *end;
	struct buf strs;
	struct entry *ents;
	size_t count, cap;
	bool truncated, in_group;
	unsigned flags; /* of the entry being parsed */
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (n > b->cap - b->len) {
		/* BOUNDS: the value's length bounds every buffer: doubling stays far below
		 * SIZE_MAX for any header a caller can hold in memory */
		size_t cap = b->cap ? b->cap : 64;
		while (n > cap - b->len)
			cap *= 2;
		b->d = xrealloc(b->d, cap);
		b->cap = cap;
	}
	memcpy(b->d + b->len, s, n);
	b->len += n;
}

static void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

/* Store b's bytes as a NUL-terminated string; its offset. */
static size_t str_commit(struct parser *ps, const char *s, size_t n)
{
	size_t off = ps->strs.len;
	buf_add(&ps->strs, s, n);
	buf_addc(&ps->strs, '\0');
	return off;
}

static bool is_special(unsigned char c)
{
	return strchr("()<>[]:;@\\,.\"", c) != NULL;
}

static bool is_atext(unsigned char c)
{
	/* bytes >= 0x80: RFC 6532 UTF-8 headers (and raw 8-bit junk: kept as it is) */
	return c > 0x20 && c != 0x7f && !is_special(c);
}

/* At a CR or LF: skip the line end.  Folding (followed by WSP) is legal; anything else
 * marks the entry invalid. */
static void skip_eol(struct parser *ps)
{
	if (*ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n')
		ps->p++;
	ps->p++;
	if (ps->p == ps->end || (*ps->p != ' ' && *ps->p != '\t'))
		ps->flags |= ADDRESS_F_INVALID;
}

/* Skip one comment at '(' (nested up to ADDRESS_MAX_COMMENT_DEPTH; a '(' deeper than that
 * is plain text).  With text non-NULL, its content (quoted-pairs resolved, folding
 * removed) is appended there. */
static void skip_comment(struct parser *ps, struct buf *text)
{
	unsigned depth = 1;

	ps->p++;
	while (ps->p < ps->end) {
		char c = *ps->p;
		if (c == '\r' || c == '\n') {
			skip_eol(ps);
			continue;
		}
		ps->p++;
		if (c == '\\' && ps->p < ps->end) {
			c = *ps->p++;
		} else if (c == '(' && depth < ADDRESS_MAX_COMMENT_DEPTH) {
			depth++;
		} else if (c == ')' && --depth == 0) {
			return;
		}
		if (text != NULL && c != '\0' && c != '\r' && c != '\n')
			buf_addc(text, c);
	}
	ps->flags |= ADDRESS_F_INVALID; /* unterminated */
}

/* Skip CFWS.  Returns true if anything was skipped.  comment: if non-NULL and still
 * empty, gets the text of the first comment. */
static bool skip_cfws(struct parser *ps, struct buf *comment)
{
	const char *start = ps->p;

	while (ps->p < ps->end) {
		char c = *ps->p;
		if (c == ' ' || c == '\t') {
			ps->p++;
		} else if (c == '\r' || c == '\n') {
			skip_eol(ps);
		} else if (c == '(') {
			bool want = comment != NULL && comment->len == 0;
			skip_comment(ps, want ? comment : NULL);
		} else {
			break;
		}
	}
	return ps->p != start;
}

static void read_atom(struct parser *ps, struct buf *out)
{
	const char *s = ps->p;
	while (ps->p < ps->end && is_atext((unsigned char)*ps->p))
		ps->p++;
	buf_add(out, s, (size_t)(ps->p - s));
}

/* At '"': the content, unquoted, to out. */
static void read_quoted(struct parser *ps, struct buf *out)
{
	ps->p++;
	while (ps->p < ps->end) {
		char c = *ps->p;
		if (c == '"') {
			ps->p++;
			return;
		}
		if (c == '\r' || c == '\n') {
			skip_eol(ps);
			continue;
		}
		ps->p++;
		if (c == '\\' && ps->p < ps->end)
			c = *ps->p++;
		if (c == '\0' || c == '\r' || c == '\n')
			ps->flags |= ADDRESS_F_INVALID; /* "\<CR>": never in a string */
		else
			buf_addc(out, c);
	}
	ps->flags |= ADDRESS_F_INVALID;
}

/* At '[': the literal with its brackets, quoted-pairs resolved, folding removed. */
static void read_literal(struct parser *ps, struct buf *out)
{
	buf_addc(out, '[');
	ps->p++;
	while (ps->p < ps->end) {
		char c = *ps->p;
		if (c == ']') {
			ps->p++;
			buf_addc(out, ']');
			return;
		}
		if (c == '\r' || c == '\n') {
			skip_eol(ps);
			continue;
		}
		ps->p++;
		if (c == '[' || c == '\0') {
			ps->flags |= ADDRESS_F_INVALID;
			continue;
		}
		if (c == '\\' && ps->p < ps->end)
			c = *ps->p++;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0')
			continue; /* FWS inside a literal is not part of it */
		buf_addc(out, c);
	}
	buf_addc(out, ']');
	ps->flags |= ADDRESS_F_INVALID;
}

/* A run of words (atoms, quoted strings) and dots: the phrase form and the local-part
 * form.  Stops at any other special or the end.  Returns true if a word or dot was read. */
static bool read_words(struct parser *ps, struct buf *phrase, struct buf *local, bool *gap_r)
{
	bool any = false, prev_word = false;

	for (;;) {
		bool ws = skip_cfws(ps, NULL);
		if (ps->p == ps->end)
			break;
		unsigned char c = (unsigned char)*ps->p;
		if (c == '.') {
			ps->p++;
			buf_addc(phrase, '.');
			buf_addc(local, '.');
			prev_word = false;
			any = true;
			continue;
		}
		if (c != '"' && !is_atext(c)) {
			if (is_special(c) || c == ' ')
				break;
			ps->p++; /* a control byte */
			ps->flags |= ADDRESS_F_INVALID;
			continue;
		}
		if (ws && phrase->len > 0)
			buf_addc(phrase, ' ');
		if (prev_word)
			*gap_r = true; /* "a b": no dot between words (bad as a local part) */
		size_t from = local->len;
		if (c == '"')
			read_quoted(ps, local);
		else
			read_atom(ps, local);
		buf_add(phrase, local->d + from, local->len - from);
		prev_word = true;
		any = true;
	}
	return any;
}

/* A domain after '@': atoms and dots (CFWS between allowed, obs-domain), or a literal. */
static void read_domain(struct parser *ps, struct buf *out)
{
	skip_cfws(ps, NULL);
	if (ps->p < ps->end && *ps->p == '[') {
		read_literal(ps, out);
		return;
	}
	bool after_dot = true;
	for (;;) {
		/* CFWS is part of the domain only before a dot or after one: a comment
		 * after the domain stays for the caller (a name) */
		const char *save = ps->p;
		skip_cfws(ps, NULL);
		if (ps->p == ps->end) {
			if (!after_dot)
				ps->p = save;
			break;
		}
		unsigned char c = (unsigned char)*ps->p;
		if (c == '.') {
			buf_addc(out, '.');
			ps->p++;
			after_dot = true;
		} else if (is_atext(c) && (after_dot || ps->p == save)) {
			read_atom(ps, out);
			after_dot = false;
		} else if (is_atext(c)) {
			/* "a@b c": obs-domain allows no CFWS between atoms; keep going as
			 * one domain ("bc"), flagged */
			ps->flags |= ADDRESS_F_INVALID;
			read_atom(ps, out);
		} else {
			if (!after_dot)
				ps->p = save;
			break;
		}
	}
}

static bool add_entry(struct parser *ps, const struct entry *e)
{
	/* one slot is kept for the end marker of an open group */
	size_t room = ADDRESS_MAX_ENTRIES - (ps->in_group ? 1 : 0);
	if (e->kind == ADDRESS_GROUP_START)
		room--; /* and a group start needs its end */
	if (e->kind != ADDRESS_GROUP_END && ps->count >= room) {
		ps->truncated = true;
		return false;
	}
	if (ps->count == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 8;
		ps->ents = xrealloc(ps->ents, ps->cap * sizeof(*ps->ents));
	}
	ps->ents[ps->count++] = *e;
	return true;
}

static void add_mailbox(struct parser *ps, struct buf *name, struct buf *route,
			struct buf *local, struct buf *domain, bool have_name)
{
	struct entry e = { ADDRESS_MAILBOX, ps->flags, NONE, NONE, NONE, NONE };

	if (have_name)
		e.name = str_commit(ps, name->d, name->len);
	if (route->len > 0)
		e.route = str_commit(ps, route->d, route->len);
	if (local->len > 0) {
		e.mailbox = str_commit(ps, local->d, local->len);
	} else {
		e.mailbox = str_commit(ps, ADDRESS_MISSING_MAILBOX, strlen(ADDRESS_MISSING_MAILBOX));
		e.flags |= ADDRESS_F_MISSING_LOCAL | ADDRESS_F_INVALID;
	}
	if (domain->len > 0) {
		e.domain = str_commit(ps, domain->d, domain->len);
	} else {
		e.domain = str_commit(ps, ADDRESS_MISSING_DOMAIN, strlen(ADDRESS_MISSING_DOMAIN));
		e.flags |= ADDRESS_F_MISSING_DOMAIN | ADDRESS_F_INVALID;
	}
	add_entry(ps, &e);
}

/* After '<': [obs-route ":"] addr-spec [">"]. */
static void read_angle(struct parser *ps, struct buf *route, struct buf *local,
		       struct buf *domain)
{
	struct buf junk = { 0 };

	ps->p++;
	local->len = 0; /* the words before '<' were a display name */
	skip_cfws(ps, NULL);
	if (ps->p < ps->end && (*ps->p == '@' || *ps->p == ',')) {
		/* obs-route = obs-domain-list ":" ; obs-domain-list = *(CFWS / ",") "@" domain
		 * *("," [CFWS] ["@" domain]) */
		while (ps->p < ps->end) {
			skip_cfws(ps, NULL);
			if (ps->p == ps->end)
				break;
			char c = *ps->p;
			if (c == ',') {
				ps->p++;
			} else if (c == '@') {
				ps->p++;
				if (route->len > 0)
					buf_addc(route, ',');
				buf_addc(route, '@');
				read_domain(ps, route);
			} else {
				break;
			}
		}
		if (ps->p < ps->end && *ps->p == ':') {
			ps->p++;
		} else {
			ps->flags |= ADDRESS_F_INVALID;
			/* "<@b>": no route but an addr-spec without its local part */
			if (route->len > 0 && memchr(route->d, ',', route->len) == NULL) {
				buf_add(domain, route->d + 1, route->len - 1);
				route->len = 0;
			}
		}
	}
	bool gap = false;
	read_words(ps, &junk, local, &gap);
	if (gap)
		ps->flags |= ADDRESS_F_INVALID;
	skip_cfws(ps, NULL);
	if (ps->p < ps->end && *ps->p == '@') {
		ps->p++;
		domain->len = 0;
		read_domain(ps, domain);
	}
	skip_cfws(ps, NULL);
	/* anything up to '>' is junk; a ',' (or ';' in a group) before any '>' ends it */
	while (ps->p < ps->end && *ps->p != '>') {
		if (*ps->p == ',' || (ps->in_group && *ps->p == ';'))
			break;
		ps->p++;
		ps->flags |= ADDRESS_F_INVALID;
	}
	if (ps->p < ps->end && *ps->p == '>')
		ps->p++;
	else
		ps->flags |= ADDRESS_F_INVALID;
	free(junk.d);
}

/* One address (a mailbox, or a group outside groups).  Consumes at least one byte unless
 * at the end or at a ',' / ';' that ends it. */
static void parse_address(struct parser *ps)
{
	struct buf phrase = { 0 }, local = { 0 }, route = { 0 }, domain = { 0 }, comment = { 0 };
	bool words = false, gap = false;

	ps->flags = 0;
	for (;;) {
		words |= read_words(ps, &phrase, &local, &gap);
		if (ps->p == ps->end)
			break;
		char c = *ps->p;
		if (c == ',' || c == '<' || c == '@' || (c == ':' && !ps->in_group) ||
		    (c == ';' && ps->in_group))
			break;
		ps->p++; /* a stray special: skip it */
		ps->flags |= ADDRESS_F_INVALID;
	}
	char c = ps->p < ps->end ? *ps->p : '\0';
	if (c == ':') {
		ps->p++;
		struct entry e = { ADDRESS_GROUP_START, ps->flags, NONE, NONE, NONE, NONE };
		e.name = str_commit(ps, phrase.d ? phrase.d : "", phrase.len);
		if (add_entry(ps, &e)) {
			ps->in_group = true;
			while (!ps->truncated) {
				skip_cfws(ps, NULL);
				if (ps->p == ps->end)
					break;
				if (*ps->p == ';') {
					ps->p++;
					break;
				}
				if (*ps->p == ',') {
					ps->p++;
					continue;
				}
				parse_address(ps);
			}
			ps->in_group = false;
			struct entry end = { ADDRESS_GROUP_END, 0, NONE, NONE, NONE, NONE };
			add_entry(ps, &end);
		}
	} else if (c == '<') {
		read_angle(ps, &route, &local, &domain);
		skip_cfws(ps, &comment);
		if (words)
			add_mailbox(ps, &phrase, &route, &local, &domain, true);
		else if (comment.len > 0) {
			ps->flags |= ADDRESS_F_NAME_COMMENT;
			add_mailbox(ps, &comment, &route, &local, &domain, true);
		} else {
			add_mailbox(ps, &phrase, &route, &local, &domain, false);
		}
	} else if (c == '@') {
		if (gap)
			ps->flags |= ADDRESS_F_INVALID;
		ps->p++;
		read_domain(ps, &domain);
		skip_cfws(ps, &comment);
		if (comment.len > 0)
			ps->flags |= ADDRESS_F_NAME_COMMENT;
		add_mailbox(ps, &comment, &route, &local, &domain, comment.len > 0);
	} else if (words) {
		ps->flags |= gap ? ADDRESS_F_INVALID : 0;
		add_mailbox(ps, &comment, &route, &local, &domain, false);
	}
	/* trailing junk before the next ',' */
	for (;;) {
		skip_cfws(ps, NULL);
		if (ps->p == ps->end || *ps->p == ',' || (ps->in_group && *ps->p == ';'))
			break;
		ps->p++;
		if (ps->count > 0)
			ps->ents[ps->count - 1].flags |= ADDRESS_F_INVALID;
	}
	free(phrase.d);
	free(local.d);
	free(route.d);
	free(domain.d);
	free(comment.d);
}

static const char *ptr(const struct parser *ps, size_t off)
{
	return off == NONE ? NULL : ps->strs.d + off;
}

struct address_list *address_list_parse(const char *value, size_t len)
{
	struct parser ps = { .p = value, .end = value + len };
	struct address_list *list = xcalloc(1, sizeof(*list));

	while (!ps.truncated) {
		skip_cfws(&ps, NULL);
		if (ps.p == ps.end)
			break;
		if (*ps.p == ',') {
			ps.p++;
			continue;
		}
		parse_address(&ps);
		/* parse_address() stops at ',' or the end outside a group: progress */
	}
	list->count = ps.count;
	list->truncated = ps.truncated;
	list->strings_ = ps.strs.d;
	list->addrs = xcalloc(ps.count ? ps.count : 1, sizeof(*list->addrs));
	for (size_t i = 0; i < ps.count; i++) {
		const struct entry *e = &ps.ents[i];
		struct address *a = &list->addrs[i];
		a->kind = e->kind;
		a->flags = e->flags;
		a->name = ptr(&ps, e->name);
		a->route = ptr(&ps, e->route);
		a->mailbox = ptr(&ps, e->mailbox);
		a->domain = ptr(&ps, e->domain);
		if (a->flags & ADDRESS_F_INVALID)
			list->invalid = true;
	}
	free(ps.ents);
	return list;
}

void address_list_free(struct address_list **list)
{
	if (*list == NULL)
		return;
	free((*list)->addrs);
	free((*list)->strings_);
	free(*list);
	*list = NULL;
}

char *address_name_decode(const char *name)
{
	if (name == NULL)
		return NULL;
	size_t len;
	return rfc2047_decode(name, strlen(name), &len);
}
