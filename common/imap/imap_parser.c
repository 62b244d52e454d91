/* The IMAP command parser (imap_parser.h): a tree of arguments from lines and literals,
 * with no I/O and every size bounded (base/plimits.h). */
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "base/util.h"
#include "imap/imap_parser.h"

/* A node while parsing: strings are offsets into the arena (which moves as it grows);
 * imap_parser_command() makes the pointer view. */
struct pnode {
	enum imap_arg_type type;
	bool literal8;
	bool open;              /* a list not closed yet */
	size_t off, len;        /* into arena */
	uint64_t size;
	size_t first, last, next;   /* children and sibling, 0: none (node 0 is the root) */
	size_t count;
};

enum pstate {
	PS_START,       /* expecting the tag */
	PS_ARGS,        /* inside the arguments, at a line's start after a literal */
	PS_LITERAL,     /* collecting literal bytes */
	PS_STREAM,      /* the daemon streams the literal */
	PS_SKIP,        /* bad: dropping a non-synchronizing literal */
	PS_SKIPLINE,    /* bad: the next line belongs to the bad command */
	PS_DONE,        /* DONE, BAD or CLOSE returned */
};

struct imap_parser {
	struct imap_parser_settings set, next_set;
	enum pstate st;
	char tag[IMAP_MAX_TAG + 1];
	bool have_tag;
	char name[IMAP_MAX_CMD_NAME + 1];
	bool uid, append;
	struct pnode *nodes;
	size_t nnodes, nodes_cap;
	size_t stack[IMAP_MAX_LIST_DEPTH + 1];  /* open lists; stack[0] = root */
	size_t depth;
	bool need_sep;          /* after a token: SP, ')' or the end must come */
	char *arena;
	size_t arena_len, arena_cap;
	uint64_t total;         /* bytes of this command so far (lines, collected literals) */
	uint64_t discarded;
	struct imap_parser_need need;
	uint64_t lit_left;
	size_t lit_node;
	const char *error, *error_code;
	bool error_no;
	/* the view */
	struct imap_arg *view;
	size_t view_cap;
	struct imap_command cmd;
};

struct imap_parser *imap_parser_new(const struct imap_parser_settings *set)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));
	p->set = p->next_set = *set;
	imap_parser_begin(p);
	return p;
}

void imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;
	if (p == NULL)
		return;
	free(p->nodes);
	free(p->arena);
	free(p->view);
	free(p);
	*pp = NULL;
}

void imap_parser_set(struct imap_parser *p, const struct imap_parser_settings *set)
{
	p->next_set = *set;
}

void imap_parser_begin(struct imap_parser *p)
{
	p->set = p->next_set;
	p->st = PS_START;
	p->have_tag = false;
	p->tag[0] = p->name[0] = '\0';
	p->uid = p->append = false;
	p->nnodes = 0;
	p->depth = 0;
	p->need_sep = false;
	p->arena_len = 0;
	p->total = p->discarded = 0;
	memset(&p->need, 0, sizeof(p->need));
	p->lit_left = 0;
	p->error = p->error_code = NULL;
	p->error_no = false;
	/* node 0: the root list */
	if (p->nodes_cap == 0) {
		p->nodes_cap = 16;
		p->nodes = xcalloc(p->nodes_cap, sizeof(*p->nodes));
	}
	memset(&p->nodes[0], 0, sizeof(p->nodes[0]));
	p->nodes[0].type = IMAP_ARG_LIST;
	p->nodes[0].open = true;
	p->nnodes = 1;
	p->stack[0] = 0;
}

const char *imap_parser_tag(const struct imap_parser *p)
{
	return p->have_tag ? p->tag : NULL;
}

const char *imap_parser_error(const struct imap_parser *p, const char **code_r, bool *no_r)
{
	if (code_r != NULL)
		*code_r = p->error_code;
	if (no_r != NULL)
		*no_r = p->error_no;
	return p->error != NULL ? p->error : "Parse error";
}

const struct imap_parser_need *imap_parser_need(const struct imap_parser *p)
{
	return &p->need;
}

uint64_t imap_parser_literal_left(const struct imap_parser *p)
{
	return p->lit_left;
}

static size_t max_literal(const struct imap_parser *p)
{
	return p->set.logged_in ? IMAP_MAX_LITERAL : IMAP_MAX_LITERAL_PRELOGIN;
}

static uint64_t max_command(const struct imap_parser *p)
{
	return p->set.logged_in ? IMAP_MAX_COMMAND : IMAP_MAX_COMMAND_PRELOGIN;
}

static size_t max_line(const struct imap_parser *p)
{
	return p->set.logged_in ? IMAP_MAX_LINE : IMAP_MAX_LINE_PRELOGIN;
}

/* Room for n more bytes in the arena.  The total is bounded by max_command() plus one
 * NUL per node, so these sizes cannot overflow. */
static void arena_reserve(struct imap_parser *p, size_t n)
{
	if (p->arena_len + n <= p->arena_cap)   /* BOUNDS: both below 2 MiB */
		return;
	size_t cap = p->arena_cap == 0 ? 256 : p->arena_cap;
	while (cap < p->arena_len + n)
		cap *= 2;
	p->arena = xrealloc(p->arena, cap);
	p->arena_cap = cap;
}

static int fail(struct imap_parser *p, int res, const char *msg, const char *code)
{
	p->error = msg;
	p->error_code = code;
	p->st = PS_DONE;
	return res;
}

/* A new node in the innermost open list; -1 when there are too many. */
static int node_add(struct imap_parser *p, enum imap_arg_type type, size_t *idx_r)
{
	if (p->nnodes >= IMAP_MAX_ARGS + 1)
		return -1;
	if (p->nnodes == p->nodes_cap) {
		p->nodes_cap *= 2;   /* BOUNDS: at most IMAP_MAX_ARGS + 1 entries */
		p->nodes = xrealloc(p->nodes, p->nodes_cap * sizeof(*p->nodes));
	}
	size_t i = p->nnodes++;
	struct pnode *n = &p->nodes[i];
	memset(n, 0, sizeof(*n));
	n->type = type;
	struct pnode *parent = &p->nodes[p->stack[p->depth]];
	if (parent->count == 0)
		parent->first = i;
	else
		p->nodes[parent->last].next = i;
	parent->last = i;
	parent->count++;
	*idx_r = i;
	return 0;
}

/* Start a string of n bytes for node idx in the arena; the caller fills it. */
static char *node_str(struct imap_parser *p, size_t idx, size_t n)
{
	arena_reserve(p, n + 1);
	p->nodes[idx].off = p->arena_len;
	p->nodes[idx].len = n;
	char *s = p->arena + p->arena_len;
	p->arena_len += n + 1;
	s[n] = '\0';
	return s;
}

/* ATOM-CHAR: any CHAR except atom-specials. */
static bool is_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* The end of a bad line: a non-synchronizing literal announced there still comes, and the
 * bad command goes on after it.  Returns SKIP, or BAD/CLOSE when it is over. */
static int bad_line_end(struct imap_parser *p, const char *line, size_t len, int res,
			const char *msg, const char *code)
{
	p->error = msg;
	p->error_code = code;
	size_t i = len;
	if (res == IMAP_PARSE_BAD && i >= 4 && line[i - 1] == '}' && line[i - 2] == '+') {
		size_t e = i - 2, b = e;
		while (b > 0 && line[b - 1] >= '0' && line[b - 1] <= '9')
			b--;
		uint64_t n;
		if (b > 0 && line[b - 1] == '{' && b < e) {
			uint64_t max = p->set.logged_in ? IMAP_MAX_DISCARD :
				IMAP_MAX_COMMAND_PRELOGIN;
			if (util_parse_uint(line + b, e - b, UINT64_MAX, &n) < 0 ||
			    n > max - p->discarded) {
				p->st = PS_DONE;
				return IMAP_PARSE_CLOSE;
			}
			p->discarded += n;   /* BOUNDS: at most IMAP_MAX_DISCARD */
			p->st = PS_SKIP;
			p->need.size = p->lit_left = n;
			p->need.sync = false;
			p->need.literal8 = b >= 2 && line[b - 2] == '~';
			return IMAP_PARSE_SKIP;
		}
	}
	p->st = PS_DONE;
	return res;
}

/* tag SP [UID SP] name; returns the position after the name, or -1 (error set). */
static int parse_head(struct imap_parser *p, const char *line, size_t len, size_t *pos_r)
{
	size_t i = 0;
	while (i < len && line[i] != ' ') {
		unsigned char c = (unsigned char)line[i];
		if (!(is_atom_char(c) || c == ']') || c == '+' || i >= IMAP_MAX_TAG)
			break;
		i++;
	}
	if (i == 0 || (i < len && line[i] != ' ')) {
		p->error = i == 0 ? "Missing tag" : "Invalid tag";
		return -1;
	}
	memcpy(p->tag, line, i);
	p->tag[i] = '\0';
	p->have_tag = true;
	for (int word = 0; word < 2; word++) {
		if (i >= len || line[i] != ' ') {
			p->error = "Missing command";
			return -1;
		}
		size_t s = ++i;
		/* BOUNDS: at most IMAP_MAX_CMD_NAME characters go into name[] */
		while (i < len && line[i] != ' ' && i - s < IMAP_MAX_CMD_NAME) {
			unsigned char c = (unsigned char)line[i];
			if (!is_atom_char(c))
				break;
			i++;
		}
		if (i == s || (i < len && line[i] != ' ')) {
			p->error = "Invalid command name";
			return -1;
		}
		for (size_t k = 0; k < i - s; k++) {
			char c = line[s + k];
			p->name[k] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
		}
		p->name[i - s] = '\0';
		if (word == 0 && strcmp(p->name, "UID") == 0) {
			p->uid = true;
			continue;
		}
		break;
	}
	p->append = strcmp(p->name, "APPEND") == 0;
	*pos_r = i;
	return 0;
}

/* One quoted string from line[*i] (at the opening quote). */
static int parse_quoted(struct imap_parser *p, const char *line, size_t len, size_t *i)
{
	size_t j = *i + 1, n = 0;
	/* first pass: find the end, check bytes and count the unescaped length */
	while (j < len && line[j] != '"') {
		unsigned char c = (unsigned char)line[j];
		if (c == '\\') {
			if (j + 1 >= len || (line[j + 1] != '\\' && line[j + 1] != '"')) {
				p->error = "Invalid escape in quoted string";
				return -1;
			}
			j += 2;
			n++;
			continue;
		}
		if (c == 0 || c == '\r' || c == '\n') {
			p->error = "Invalid character in quoted string";
			return -1;
		}
		if (c >= 0x80) {
			/* RFC 9051 QUOTED-CHAR / RFC 6855: UTF8-2 / UTF8-3 / UTF8-4, only
			 * well-formed (RFC 3629).  Accepted from IMAP4rev1 clients too (RFC 3501
			 * has 7-bit quoted strings only), as Dovecot and Cyrus do: clients send
			 * SEARCH CHARSET UTF-8 SUBJECT "...", and a mailbox name with 8-bit
			 * bytes still fails its modified UTF-7 decoding unless UTF8=ACCEPT. */
			size_t k, want = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
			if (c < 0xc2 || c > 0xf4) {
				p->error = "8-bit character in quoted string";
				return -1;
			}
			uint32_t cp = c & (0x3f >> want);
			for (k = 1; k <= want; k++) {
				unsigned char d = j + k < len ? (unsigned char)line[j + k] : 0;
				if ((d & 0xc0) != 0x80) {
					p->error = "Invalid UTF-8 in quoted string";
					return -1;
				}
				cp = (cp << 6) | (d & 0x3f);
			}
			if ((want == 2 && cp < 0x800) || (want == 3 && cp < 0x10000) ||
			    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
				p->error = "Invalid UTF-8 in quoted string";
				return -1;
			}
			j += want + 1;
			n += want + 1;
			continue;
		}
		/* QUOTED-CHAR is any TEXT-CHAR (CHAR but CR, LF; NUL is no CHAR) but the
		 * quoted-specials: TAB and the other controls are allowed (RFC 9051 section
		 * 9); NUL, CR and LF cannot reach here (feed_line refuses them) */
		j++;
		n++;
	}
	if (j >= len) {
		p->error = "Unterminated quoted string";
		return -1;
	}
	size_t idx;
	if (node_add(p, IMAP_ARG_QUOTED, &idx) < 0) {
		p->error = "Too many arguments";
		return -1;
	}
	char *s = node_str(p, idx, n);
	size_t o = 0;
	for (size_t k = *i + 1; k < j; k++) {
		if (line[k] == '\\')
			k++;
		s[o++] = line[k];
	}
	*i = j + 1;
	return 0;
}

/* A bare token: an atom, possibly with one bracketed part holding SP and parentheses. */
static int parse_bare(struct imap_parser *p, const char *line, size_t len, size_t *i)
{
	size_t j = *i;
	bool bracket = false, had_bracket = false;
	for (; j < len; j++) {
		unsigned char c = (unsigned char)line[j];
		if (bracket) {
			if (c == ']') {
				bracket = false;
				continue;
			}
			if (c == '"') {
				/* a quoted header-fld-name (astring) in HEADER.FIELDS (...): kept
				 * as written for imap_fetch_section_parse(); a ']' in it is data */
				for (j++; j < len && line[j] != '"'; j++) {
					unsigned char d = (unsigned char)line[j];
					if (d == '\\' && j + 1 < len &&
					    (line[j + 1] == '\\' || line[j + 1] == '"'))
						j++;
					else if (d < 0x20 || d >= 0x7f || d == '\\') {
						p->error = "Invalid character in section";
						return -1;
					}
				}
				if (j >= len) {
					p->error = "Unterminated quoted string in section";
					return -1;
				}
				continue;
			}
			if (c == ' ' || c == '(' || c == ')' || (c > 0x20 && c < 0x7f &&
			    c != '"' && c != '{' && c != '['))
				continue;
			p->error = "Invalid character in section";
			return -1;
		}
		if (c == ' ' || c == ')')
			break;
		/* the first '[' with a ']' after it on the line opens a section (spaces and
		 * parentheses allowed up to the ']'); any other '[' is an atom character */
		if (c == '[' && !had_bracket && memchr(line + j, ']', len - j) != NULL) {
			bracket = had_bracket = true;
			continue;
		}
		if (c <= 0x20 || c >= 0x7f || c == '(' || c == '"' || c == '{') {
			p->error = c >= 0x80 ? "8-bit character in atom" :
				"Invalid character in atom";
			return -1;
		}
	}
	size_t idx;
	bool nil = j - *i == 3 && util_token_eq(line + *i, 3, "NIL");
	if (node_add(p, nil ? IMAP_ARG_NIL : IMAP_ARG_ATOM, &idx) < 0) {
		p->error = "Too many arguments";
		return -1;
	}
	memcpy(node_str(p, idx, j - *i), line + *i, j - *i);
	*i = j;
	return 0;
}

/* "{n}", "{n+}", "~{n}", "~{n+}" at line[*i], which must end the line.  Returns
 * IMAP_PARSE_LITERAL/_STREAM (need set), or an error result. */
static int parse_literal(struct imap_parser *p, const char *line, size_t len, size_t i)
{
	bool lit8 = line[i] == '~';
	if (lit8)
		i++;
	if (i >= len || line[i] != '{')
		return bad_line_end(p, line, len, IMAP_PARSE_BAD, "Invalid literal", NULL);
	size_t s = ++i;
	while (i < len && line[i] >= '0' && line[i] <= '9')
		i++;
	size_t e = i;
	bool nonsync = i < len && line[i] == '+';
	if (nonsync)
		i++;
	if (i + 1 != len || line[i] != '}')
		return bad_line_end(p, line, len, IMAP_PARSE_BAD, "Invalid literal", NULL);
	uint64_t n;
	/* RFC 9051: literal = "{" number64 ["+"] "}"; number64 is at most 2^63-1 */
	if (util_parse_uint(line + s, e - s, INT64_MAX, &n) < 0) {
		if (nonsync)    /* the client sends an unknown number of bytes: no way back */
			return fail(p, IMAP_PARSE_CLOSE, "Invalid literal size", NULL);
		return fail(p, IMAP_PARSE_BAD, "Invalid literal size", NULL);
	}
	if (lit8 && !p->append)
		return bad_line_end(p, line, len, IMAP_PARSE_BAD,
				    "literal8 is only allowed in APPEND", NULL);
	/* the message of an APPEND (after the mailbox), after login: streamed */
	bool stream = p->append && p->set.logged_in &&
		(p->depth > 0 || p->nodes[0].count >= 1);
	uint64_t max = stream ? p->set.append_max : max_literal(p);
	const char *toobig = NULL;
	if (n > max)
		toobig = stream ? "Message too large (APPENDLIMIT)" : "Literal too large";
	else if (nonsync && p->set.literal_minus && n > IMAP_LITERAL_MINUS_MAX)
		toobig = "Non-synchronizing literal too large (LITERAL-)";
	else if (!stream && n + 1 > max_command(p) - p->total)
		toobig = "Command too long";
	if (toobig == NULL && p->nnodes >= IMAP_MAX_ARGS + 1)
		return bad_line_end(p, line, len, IMAP_PARSE_BAD, "Too many arguments", NULL);
	if (toobig != NULL) {
		p->error_no = stream && n > max;   /* RFC 7889: NO [TOOBIG] */
		if (!nonsync)   /* the client waits for "+": the answer ends the command */
			return fail(p, IMAP_PARSE_BAD, toobig, "TOOBIG");
		p->error_no = false;   /* RFC 7888 section 5: BAD [TOOBIG] */
		return bad_line_end(p, line, len, IMAP_PARSE_BAD, toobig, "TOOBIG");
	}
	p->need.size = p->lit_left = n;
	p->need.sync = !nonsync;
	p->need.literal8 = lit8;
	p->need.arg = p->depth > 0 ? p->nodes[0].count - 1 : p->nodes[0].count;
	p->need.in_list = p->depth > 0;
	if (stream) {
		p->st = PS_STREAM;
		return IMAP_PARSE_STREAM;
	}
	size_t idx;
	(void)node_add(p, lit8 ? IMAP_ARG_LITERAL8 : IMAP_ARG_LITERAL, &idx);  /* checked */
	(void)node_str(p, idx, (size_t)n);   /* BOUNDS: n <= max_literal() */
	p->nodes[idx].len = 0;               /* filled as the bytes come */
	p->total += n;
	p->lit_node = idx;
	p->st = PS_LITERAL;
	if (n == 0) {   /* nothing to feed: the next line follows ("+" still due if sync) */
		p->st = PS_ARGS;
		p->need_sep = true;
	}
	return IMAP_PARSE_LITERAL;
}

/* The arguments from line[i] to the end of the line. */
static int parse_args(struct imap_parser *p, const char *line, size_t len, size_t i)
{
	for (;;) {
		if (p->need_sep) {
			if (i == len)
				break;
			if (line[i] == ')') {
				if (p->depth == 0)
					return bad_line_end(p, line, len, IMAP_PARSE_BAD,
							    "Unexpected ')'", NULL);
				p->nodes[p->stack[p->depth]].open = false;
				p->depth--;
				i++;
				continue;
			}
			if (line[i] != ' ')
				return bad_line_end(p, line, len, IMAP_PARSE_BAD,
						    "Missing space between arguments", NULL);
			i++;
			p->need_sep = false;
			if (i == len || line[i] == ' ' || line[i] == ')')
				return bad_line_end(p, line, len, IMAP_PARSE_BAD,
						    "Unexpected space", NULL);
		}
		if (i == len)
			break;
		char c = line[i];
		int r = 0;
		if (c == '(') {
			size_t idx;
			if (p->depth >= IMAP_MAX_LIST_DEPTH)
				return bad_line_end(p, line, len, IMAP_PARSE_BAD,
						    "Lists nested too deep", NULL);
			if (node_add(p, IMAP_ARG_LIST, &idx) < 0)
				return bad_line_end(p, line, len, IMAP_PARSE_BAD,
						    "Too many arguments", NULL);
			p->nodes[idx].open = true;
			p->stack[++p->depth] = idx;
			i++;
			if (i < len && line[i] == ')') {
				p->nodes[idx].open = false;
				p->depth--;
				i++;
				p->need_sep = true;
			} else if (i == len || line[i] == ' ') {
				return bad_line_end(p, line, len, IMAP_PARSE_BAD,
						    "Unexpected space", NULL);
			}
			continue;
		}
		if (c == ')')
			return bad_line_end(p, line, len, IMAP_PARSE_BAD, "Unexpected ')'", NULL);
		if (c == ' ')
			return bad_line_end(p, line, len, IMAP_PARSE_BAD, "Unexpected space", NULL);
		if (c == '{' || (c == '~' && i + 1 < len && line[i + 1] == '{'))
			return parse_literal(p, line, len, i);
		if (c == '"')
			r = parse_quoted(p, line, len, &i);
		else
			r = parse_bare(p, line, len, &i);
		if (r < 0)
			return bad_line_end(p, line, len, IMAP_PARSE_BAD, p->error, NULL);
		p->need_sep = true;
	}
	if (p->depth > 0)
		return bad_line_end(p, line, len, IMAP_PARSE_BAD, "Missing ')'", NULL);
	p->nodes[0].open = false;
	p->st = PS_DONE;
	return IMAP_PARSE_DONE;
}

int imap_parser_feed_line(struct imap_parser *p, const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > max_line(p) || (uint64_t)len + 2 > max_command(p) - p->total)
		return fail(p, IMAP_PARSE_CLOSE, "Command too long", NULL);
	p->total += len + 2;   /* BOUNDS: below max_command() */
	if (memchr(line, '\0', len) != NULL || memchr(line, '\n', len) != NULL ||
	    memchr(line, '\r', len) != NULL) {
		if (p->st == PS_START)
			p->st = PS_DONE;
		return bad_line_end(p, line, len, IMAP_PARSE_BAD, "Invalid character in line",
				    NULL);
	}
	switch (p->st) {
	case PS_START: {
		size_t i;
		if (len == 0)
			return fail(p, IMAP_PARSE_BAD, "Empty command", NULL);
		if (parse_head(p, line, len, &i) < 0)
			return bad_line_end(p, line, len, IMAP_PARSE_BAD, p->error, NULL);
		if (i < len) {
			i++;   /* the space after the name */
			if (i == len)
				return bad_line_end(p, line, len, IMAP_PARSE_BAD,
						    "Unexpected space", NULL);
		}
		p->st = PS_ARGS;
		return parse_args(p, line, len, i);
	}
	case PS_ARGS:
		return parse_args(p, line, len, 0);
	case PS_SKIPLINE:
		return bad_line_end(p, line, len, IMAP_PARSE_BAD, p->error, p->error_code);
	default:
		return fail(p, IMAP_PARSE_CLOSE, "Line out of sequence", NULL);
	}
}

size_t imap_parser_feed_literal(struct imap_parser *p, const void *data, size_t len)
{
	if (p->st != PS_LITERAL && p->st != PS_SKIP)
		return 0;
	size_t n = len < p->lit_left ? len : (size_t)p->lit_left;
	if (p->st == PS_LITERAL) {
		struct pnode *node = &p->nodes[p->lit_node];
		char *s = p->arena + node->off;
		/* NUL only in literal8 (RFC 9051: literal is CHAR8, no NUL); checked here,
		 * answered when the command ends */
		if (!node->literal8 && node->type == IMAP_ARG_LITERAL &&
		    memchr(data, '\0', n) != NULL && p->error == NULL)
			p->error = "NUL in literal";
		memcpy(s + node->len, data, n);
		node->len += n;   /* BOUNDS: at most the literal's size, reserved */
	}
	p->lit_left -= n;
	if (p->lit_left == 0) {
		if (p->st == PS_SKIP) {
			p->st = PS_SKIPLINE;
		} else if (p->error != NULL) {
			p->st = PS_SKIPLINE;   /* the rest of the command, then BAD */
		} else {
			p->st = PS_ARGS;
			p->need_sep = true;
		}
	}
	return n;
}

void imap_parser_streamed(struct imap_parser *p)
{
	if (p->st != PS_STREAM)
		return;
	size_t idx;
	(void)node_add(p, IMAP_ARG_STREAMED, &idx);   /* room checked in parse_literal() */
	p->nodes[idx].size = p->need.size;
	p->nodes[idx].literal8 = p->need.literal8;
	p->lit_left = 0;
	p->st = PS_ARGS;
	p->need_sep = true;
}

/* Place list node li's children at view[*pos...], then their own children. */
static void place(struct imap_parser *p, size_t li, struct imap_arg *dst, size_t *pos)
{
	const struct pnode *l = &p->nodes[li];
	size_t n = 0;
	for (size_t c = l->count ? l->first : 0; c != 0; c = p->nodes[c].next)
		if (!(p->nodes[c].type == IMAP_ARG_LIST && p->nodes[c].open))
			n++;
	struct imap_arg *kids = p->view + *pos;
	*pos += n;   /* BOUNDS: every node is placed once: at most nnodes */
	dst->list = kids;
	dst->count = n;
	size_t k = 0;
	for (size_t c = l->count ? l->first : 0; c != 0; c = p->nodes[c].next) {
		const struct pnode *node = &p->nodes[c];
		if (node->type == IMAP_ARG_LIST && node->open)
			continue;
		struct imap_arg *a = &kids[k++];
		memset(a, 0, sizeof(*a));
		a->type = node->type;
		a->literal8 = node->literal8;
		a->size = node->size;
		if (node->type != IMAP_ARG_LIST && node->type != IMAP_ARG_STREAMED) {
			a->str = p->arena + node->off;
			a->len = node->len;
		}
		if (node->type == IMAP_ARG_LIST)
			place(p, c, a, pos);   /* recursion: at most IMAP_MAX_LIST_DEPTH */
	}
}

const struct imap_command *imap_parser_command(struct imap_parser *p)
{
	if (p->view_cap < p->nnodes) {
		p->view_cap = p->nnodes;
		free(p->view);
		p->view = xcalloc(p->view_cap, sizeof(*p->view));
	}
	struct imap_arg root;
	size_t pos = 0;
	place(p, 0, &root, &pos);
	p->cmd.tag = imap_parser_tag(p);
	p->cmd.name = p->name;
	p->cmd.uid = p->uid;
	p->cmd.args = root.list;
	p->cmd.count = root.count;
	return &p->cmd;
}

/* Accessors. */

bool imap_arg_is_atom(const struct imap_arg *a, const char *word)
{
	return (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) &&
		util_token_eq(a->str, a->len, word);
}

int imap_arg_atom(const struct imap_arg *a, const char **s_r)
{
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NIL)
		return -1;
	for (size_t i = 0; i < a->len; i++)
		if (!is_atom_char((unsigned char)a->str[i]))
			return -1;
	*s_r = a->str;
	return 0;
}

int imap_arg_string(const struct imap_arg *a, const char **s_r, size_t *len_r)
{
	if (a->type != IMAP_ARG_QUOTED && a->type != IMAP_ARG_LITERAL)
		return -1;
	*s_r = a->str;
	*len_r = a->len;
	return 0;
}

int imap_arg_nstring(const struct imap_arg *a, const char **s_r, size_t *len_r)
{
	if (a->type == IMAP_ARG_NIL) {
		*s_r = NULL;
		*len_r = 0;
		return 0;
	}
	return imap_arg_string(a, s_r, len_r);
}

int imap_arg_astring(const struct imap_arg *a, const char **s_r, size_t *len_r)
{
	if (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) {
		for (size_t i = 0; i < a->len; i++) {
			unsigned char c = (unsigned char)a->str[i];
			if (!is_atom_char(c) && c != ']')
				return -1;
		}
		*s_r = a->str;
		*len_r = a->len;
		return 0;
	}
	return imap_arg_string(a, s_r, len_r);
}

int imap_arg_list_mailbox(const struct imap_arg *a, const char **s_r, size_t *len_r)
{
	if (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) {
		for (size_t i = 0; i < a->len; i++) {
			unsigned char c = (unsigned char)a->str[i];
			if (!is_atom_char(c) && c != ']' && c != '%' && c != '*')
				return -1;
		}
		*s_r = a->str;
		*len_r = a->len;
		return 0;
	}
	return imap_arg_string(a, s_r, len_r);
}

static int number(const struct imap_arg *a, uint64_t max, uint64_t *n_r)
{
	if (a->type != IMAP_ARG_ATOM)
		return -1;
	return util_parse_uint(a->str, a->len, max, n_r);
}

int imap_arg_number(const struct imap_arg *a, uint32_t *n_r)
{
	uint64_t n;
	if (number(a, UINT32_MAX, &n) < 0)
		return -1;
	*n_r = (uint32_t)n;
	return 0;
}

int imap_arg_nz_number(const struct imap_arg *a, uint32_t *n_r)
{
	if (imap_arg_number(a, n_r) < 0 || *n_r == 0)
		return -1;
	return 0;
}

int imap_arg_number64(const struct imap_arg *a, uint64_t *n_r)
{
	return number(a, INT64_MAX, n_r);
}

int imap_arg_flag(const struct imap_arg *a, const char **s_r)
{
	/* NIL too: a keyword may be spelt so */
	if ((a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NIL) || a->len == 0)
		return -1;
	size_t i = a->str[0] == '\\' ? 1 : 0;
	if (i == a->len)
		return -1;
	for (; i < a->len; i++)
		if (!is_atom_char((unsigned char)a->str[i]))
			return -1;
	*s_r = a->str;
	return 0;
}

int imap_arg_flag_list(const struct imap_arg *a)
{
	const char *s;
	if (a->type != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < a->count; i++)
		if (imap_arg_flag(&a->list[i], &s) < 0)
			return -1;
	return 0;
}
