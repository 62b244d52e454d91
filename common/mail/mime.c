/* The streaming MIME part-tree parser (mime.h).
 *
 * The input is cut into lines.  While some multipart's boundary is active, the first
 * bytes of every line (up to "--", the longest active boundary and "--") are held back
 * until it is known whether the line is a boundary line (RFC 2046 section 5.1.1: a line
 * starting with "--" and the boundary; what follows on the line is ignored, which also
 * covers transport padding).  The longest matching boundary wins, so an outer boundary
 * ends the inner parts (whose close delimiter may be missing) and a boundary that merely
 * starts with an inner one is not mistaken for it.  Everything else goes to the open part
 * on top of the stack: to the header parser while its header lasts, else it is only
 * counted.  Sizes come from running counters (bytes, LFs, bare LFs) noted at a part's
 * start and at its end; the end of a part before a boundary is the start of the line end
 * before the boundary line. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/header.h"
#include "mail/mime.h"

const char *const mime_envelope_names[ENV_COUNT] = {
	"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"In-Reply-To", "Message-ID"
};

struct open_part {
	struct mime_part *part;
	struct mime_part *last_child;
	uint64_t hdr_lf, hdr_bare;      /* LFs, bare LFs before the header */
	bool hdr_after_lf;              /* the byte before the header is an LF */
	uint64_t body_lf, body_bare;    /* LFs, bare LFs before the body */
	bool body_after_lf;
	char *boundary;                 /* multipart, until its close delimiter */
	size_t blen;
	bool in_header;
};

/* Where a part ends: offset, LFs and bare LFs before it, and whether the byte before
 * it is an LF. */
struct mark {
	uint64_t off, lf, bare;
	bool after_lf;
};

struct mime_parser {
	uint64_t off, lf, bare;         /* bytes, LFs, bare LFs so far */
	bool last_cr, last_lf;          /* the last byte */
	bool at_bol;
	/* the last line end and the line after it */
	bool have_eol;
	uint64_t eol_off;               /* where the last line end starts (its CR or LF) */
	bool eol_bare, eol_line_empty;
	uint64_t line_start;
	struct open_part stack[MIME_MAX_DEPTH];
	unsigned depth;                 /* open parts; stack[depth - 1] is the top */
	unsigned parts;
	bool opaque_rest;               /* MIME_MAX_PARTS reached: no more boundaries */
	struct header_parser *hp;
	size_t need;                    /* bytes of a line start to hold back; 0: none */
	char prefix[2 + MIME_BOUNDARY_MAX + 2];
	size_t plen;
	bool skip_line;                 /* the rest of a boundary line */
	int child_of;                   /* after it: a new part of this stack entry; -1 */
	struct mime_part *root;
};

static void update_need(struct mime_parser *p)
{
	size_t max = 0;
	bool any = false;
	for (unsigned i = 0; i < p->depth; i++)
		if (p->stack[i].boundary != NULL) {
			any = true;
			if (p->stack[i].blen > max)
				max = p->stack[i].blen;
		}
	p->need = any && !p->opaque_rest ? 2 + max + 2 : 0; /* BOUNDS: <= sizeof(prefix) */
}

static struct mime_part *part_new(struct mime_parser *p, struct mime_part *parent)
{
	struct mime_part *part = xcalloc(1, sizeof(*part));
	p->parts++;
	part->parent = parent;
	part->hdr_offset = p->off;
	if (parent == NULL || (parent->flags & MIME_PART_MESSAGE) != 0)
		part->envelope = xcalloc(1, sizeof(*part->envelope));
	return part;
}

/* Make part the new top of the stack, its header starting here. */
static void push(struct mime_parser *p, struct mime_part *part, bool header)
{
	struct open_part *op = &p->stack[p->depth]; /* BOUNDS: callers check depth */
	if (p->depth > 0) {
		struct open_part *up = &p->stack[p->depth - 1];
		if (up->last_child == NULL)
			up->part->children = part;
		else
			up->last_child->next = part;
		up->last_child = part;
		up->part->n_children++;
	}
	memset(op, 0, sizeof(*op));
	op->part = part;
	op->hdr_lf = p->lf;
	op->hdr_bare = p->bare;
	op->hdr_after_lf = p->last_lf;
	op->in_header = header;
	if (header)
		p->hp = header_parser_new(p->off);
	else {
		part->body_offset = p->off;
		op->body_lf = p->lf;
		op->body_bare = p->bare;
		op->body_after_lf = p->last_lf;
	}
	p->depth++;
}

static void set_default_type(struct mime_part *part)
{
	const struct mime_part *up = part->parent;
	part->flags |= MIME_PART_DEFAULT_TYPE;
	if (up != NULL && strcmp(up->type, "multipart") == 0 &&
	    strcmp(up->subtype, "digest") == 0) {
		part->type = xstrdup("message");
		part->subtype = xstrdup("rfc822");
		return;
	}
	part->type = xstrdup("text");
	part->subtype = xstrdup("plain");
	part->type_params = xcalloc(1, sizeof(*part->type_params));
	part->type_params[0].name = xstrdup("charset");
	part->type_params[0].value = xstrdup("us-ascii");
	part->n_type_params = 1;
}

static void set_envelope(struct mail_envelope_fields *env, const struct header_field *f)
{
	for (int i = 0; i < ENV_COUNT; i++) {
		if (!header_field_is(f, mime_envelope_names[i]) || env->value[i] != NULL)
			continue;
		size_t n = f->value_len < ENVELOPE_FIELD_MAX ? f->value_len : ENVELOPE_FIELD_MAX;
		env->value[i] = xmalloc(n + 1);
		memcpy(env->value[i], f->value, n);
		env->value[i][n] = '\0';
		env->len[i] = n;
		return;
	}
}

static void field_cb(void *ctx, const struct header_field *f)
{
	struct mime_parser *p = ctx;
	struct mime_part *part = p->stack[p->depth - 1].part;
	const char *v = f->value;
	size_t n = f->value_len;

	if (part->envelope != NULL)
		set_envelope(part->envelope, f);
	if (f->no_colon || f->name_len < 8 || strncasecmp(f->name, "content-", 8) != 0)
		return;
	if (header_field_is(f, "Content-Type")) {
		if (part->type == NULL)
			(void)mimeparam_parse_type(v, n, &part->type, &part->subtype,
						   &part->type_params, &part->n_type_params);
	} else if (header_field_is(f, "Content-Disposition")) {
		if (part->disposition == NULL)
			(void)mimeparam_parse_disposition(v, n, &part->disposition,
							  &part->disp_params,
							  &part->n_disp_params);
	} else if (header_field_is(f, "Content-Transfer-Encoding")) {
		size_t e = 0;
		while (e < n && v[e] != ' ' && v[e] != '\t' && v[e] != '(' && v[e] != ';')
			e++;
		if (part->encoding == NULL && e > 0) {
			part->encoding = mimeparam_strdup(v, e);
			for (char *q = part->encoding; *q != '\0'; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q - 'A' + 'a');
		}
	} else if (header_field_is(f, "Content-ID")) {
		if (part->id == NULL)
			part->id = mimeparam_strdup(v, n);
	} else if (header_field_is(f, "Content-Description")) {
		if (part->description == NULL)
			part->description = mimeparam_strdup(v, n);
	} else if (header_field_is(f, "Content-MD5")) {
		if (part->md5 == NULL)
			part->md5 = mimeparam_strdup(v, n);
	} else if (header_field_is(f, "Content-Location")) {
		if (part->location == NULL)
			part->location = mimeparam_strdup(v, n);
	} else if (header_field_is(f, "Content-Language")) {
		if (part->languages == NULL)
			mimeparam_parse_languages(v, n, &part->languages, &part->n_languages);
	}
}

static bool encoding_identity(const char *enc)
{
	return enc == NULL || strcmp(enc, "7bit") == 0 || strcmp(enc, "8bit") == 0 ||
		strcmp(enc, "binary") == 0;
}

/* The top part's header ended at the current position (normal: after its empty line;
 * else it was cut by a boundary or the end at m). */
static void header_end(struct mime_parser *p, const struct mark *m)
{
	struct open_part *op = &p->stack[p->depth - 1];
	struct mime_part *part = op->part;
	struct mark end = { p->off, p->lf, p->bare, p->last_lf };

	if (m != NULL)
		end = *m;
	header_parser_finish(p->hp, field_cb, p);
	header_parser_free(&p->hp);
	op->in_header = false;
	if (end.off < part->hdr_offset) {
		end.off = part->hdr_offset;
		end.lf = op->hdr_lf;
		end.bare = op->hdr_bare;
		end.after_lf = op->hdr_after_lf;
	}
	part->hdr_size = end.off - part->hdr_offset;
	part->hdr_size_crlf = part->hdr_size + (end.bare - op->hdr_bare);
	part->body_offset = end.off;
	op->body_lf = end.lf;
	op->body_bare = end.bare;
	op->body_after_lf = end.after_lf;
	if (part->type == NULL)
		set_default_type(part);
	if (m != NULL) {
		part->flags |= MIME_PART_NO_BODY;
		return; /* the part ends here */
	}
	bool room = p->depth < MIME_MAX_DEPTH && !p->opaque_rest;
	if (strcmp(part->type, "multipart") == 0) {
		const char *b = mimeparam_get(part->type_params, part->n_type_params, "boundary");
		if (b == NULL || b[0] == '\0' || strlen(b) > MIME_BOUNDARY_MAX)
			return; /* a leaf */
		if (!room) {
			part->flags |= MIME_PART_OPAQUE;
			return;
		}
		part->flags |= MIME_PART_MULTIPART;
		op->blen = strlen(b);
		op->boundary = xstrdup(b);
		update_need(p);
	} else if (strcmp(part->type, "message") == 0 &&
		   (strcmp(part->subtype, "rfc822") == 0 ||
		    strcmp(part->subtype, "global") == 0) &&
		   encoding_identity(part->encoding)) {
		if (!room || p->parts + 1 >= MIME_MAX_PARTS) {
			part->flags |= MIME_PART_OPAQUE;
			return;
		}
		part->flags |= MIME_PART_MESSAGE;
		push(p, part_new(p, part), true);
	}
}

/* End the body at m; returns where it really ended (not before it started). */
static struct mark body_end(struct open_part *op, const struct mark *m)
{
	struct mime_part *part = op->part;
	if (m->off <= part->body_offset) {
		/* empty (sizes stay 0) */
		struct mark at = { part->body_offset, op->body_lf, op->body_bare,
				   op->body_after_lf };
		return at;
	}
	part->body_size = m->off - part->body_offset;
	part->body_size_crlf = part->body_size + (m->bare - op->body_bare);
	part->body_lines = (m->lf - op->body_lf) + (m->after_lf ? 0 : 1);
	return *m;
}

/* Close every open part above stack entry keep (-1: all) at m.  A part never ends
 * before its last child (an empty part right before an outer boundary line starts after
 * the line end that ends its parent's body). */
static void close_to(struct mime_parser *p, int keep, const struct mark *m)
{
	struct mark cur = *m;
	while ((int)p->depth > keep + 1) {
		struct open_part *op = &p->stack[p->depth - 1];
		if (op->in_header)
			header_end(p, &cur);
		struct mark end = body_end(op, &cur);
		if (end.off > cur.off)
			cur = end;
		free(op->boundary);
		op->boundary = NULL;
		p->depth--;
	}
	update_need(p);
}

/* Count bytes that went by; only the last may be an LF. */
static void account(struct mime_parser *p, const char *buf, size_t n)
{
	if (n == 0)
		return;
	p->at_bol = false;
	p->off += n;
	char c = buf[n - 1];
	bool cr_before = n >= 2 ? buf[n - 2] == '\r' : p->last_cr;
	if (c == '\n') {
		p->lf++;
		p->have_eol = true;
		p->eol_off = p->off - 1 - (cr_before ? 1 : 0);
		p->eol_bare = !cr_before;
		p->eol_line_empty = p->eol_off == p->line_start;
		if (!cr_before)
			p->bare++;
		p->line_start = p->off;
		p->at_bol = true;
	}
	p->last_cr = c == '\r';
	p->last_lf = c == '\n';
}

static void new_child(struct mime_parser *p)
{
	int k = p->child_of;
	p->child_of = -1;
	if (k < 0 || (unsigned)k + 1 != p->depth)
		return;
	struct mime_part *part = part_new(p, p->stack[k].part);
	if (p->parts >= MIME_MAX_PARTS) {
		/* the last part there may be: the rest of the message, not looked into */
		p->opaque_rest = true;
		part->flags |= MIME_PART_OPAQUE | MIME_PART_DEFAULT_TYPE;
		part->type = xstrdup("application");
		part->subtype = xstrdup("octet-stream");
		push(p, part, false);
		update_need(p);
		return;
	}
	push(p, part, true);
}

/* Content bytes of the current line for the top part (only the last may be an LF). */
static void deliver(struct mime_parser *p, const char *buf, size_t n)
{
	struct open_part *op = &p->stack[p->depth - 1];
	if (op->in_header) {
		size_t used = header_parser_feed(p->hp, buf, n, field_cb, p);
		account(p, buf, used);
		if (header_parser_done(p->hp))
			header_end(p, NULL);
		if (used < n)
			deliver(p, buf + used, n - used); /* not reached: the empty line ends
							     at its LF */
		return;
	}
	account(p, buf, n);
}

/* The held-back start of a line is complete (or the input ended): boundary or not? */
static void decide(struct mime_parser *p)
{
	int best = -1;
	size_t n = p->plen;
	const char *b = p->prefix;

	if (n >= 2 && b[0] == '-' && b[1] == '-')
		for (unsigned i = 0; i < p->depth; i++) {
			const struct open_part *op = &p->stack[i];
			if (op->boundary != NULL && n - 2 >= op->blen &&
			    memcmp(b + 2, op->boundary, op->blen) == 0 &&
			    (best < 0 || op->blen >= p->stack[best].blen))
				best = (int)i;
		}
	p->plen = 0;
	if (best < 0) {
		deliver(p, b, n);
		return;
	}
	struct open_part *op = &p->stack[best];
	bool close = n >= 2 + op->blen + 2 && b[2 + op->blen] == '-' &&
		b[3 + op->blen] == '-';
	struct mark m;
	if (p->have_eol) {
		m.off = p->eol_off;
		m.lf = p->lf - 1;
		m.bare = p->bare - (p->eol_bare ? 1 : 0);
		m.after_lf = p->eol_line_empty;
	} else {
		m.off = p->off;
		m.lf = p->lf;
		m.bare = p->bare;
		m.after_lf = false;
	}
	close_to(p, best, &m);
	if (close) {
		free(op->boundary);
		op->boundary = NULL;
		update_need(p);
	} else {
		p->child_of = best;
	}
	account(p, b, n);
	if (b[n - 1] == '\n')
		new_child(p);
	else
		p->skip_line = true;
}

struct mime_parser *mime_parser_new(void)
{
	struct mime_parser *p = xcalloc(1, sizeof(*p));
	p->at_bol = true;
	p->child_of = -1;
	p->root = part_new(p, NULL);
	push(p, p->root, true);
	return p;
}

void mime_parser_feed(struct mime_parser *p, const void *data, size_t len)
{
	const char *d = data;
	size_t i = 0;

	while (i < len) {
		const char *lf = memchr(d + i, '\n', len - i);
		size_t line = lf != NULL ? (size_t)(lf - d) + 1 - i : len - i;
		if (p->skip_line) {
			account(p, d + i, line);
			i += line;
			if (lf != NULL) {
				p->skip_line = false;
				new_child(p);
			}
			continue;
		}
		if (p->at_bol && p->need > 0 && (p->plen > 0 || line > 0)) {
			size_t take = p->need - p->plen;
			if (take > line)
				take = line;
			memcpy(p->prefix + p->plen, d + i, take); /* BOUNDS: plen + take <= need */
			p->plen += take;
			i += take;
			if (p->prefix[p->plen - 1] == '\n' || p->plen == p->need)
				decide(p);
			continue;
		}
		deliver(p, d + i, line);
		i += line;
	}
}

static void free_strings(struct mime_part *part)
{
	free(part->type);
	free(part->subtype);
	mimeparam_free(&part->type_params, part->n_type_params);
	free(part->id);
	free(part->description);
	free(part->encoding);
	free(part->md5);
	free(part->location);
	free(part->disposition);
	mimeparam_free(&part->disp_params, part->n_disp_params);
	for (unsigned i = 0; i < part->n_languages; i++)
		free(part->languages[i]);
	free(part->languages);
	mime_envelope_free(&part->envelope);
}

void mime_part_free(struct mime_part **rootp)
{
	struct mime_part *part = *rootp;
	while (part != NULL) {
		struct mime_part *next = part->next;
		mime_part_free(&part->children); /* BOUNDS: depth <= MIME_MAX_DEPTH */
		free_strings(part);
		free(part);
		part = next;
	}
	*rootp = NULL;
}

unsigned mime_part_count(const struct mime_part *part)
{
	unsigned n = 0;
	for (; part != NULL; part = part->next)
		n += 1 + mime_part_count(part->children);
	return n;
}

void mime_envelope_free(struct mail_envelope_fields **envp)
{
	struct mail_envelope_fields *env = *envp;
	if (env == NULL)
		return;
	for (int i = 0; i < ENV_COUNT; i++)
		free(env->value[i]);
	free(env);
	*envp = NULL;
}

void mime_parser_finish(struct mime_parser **pp, struct mime_part **root_r,
			struct mail_envelope_fields **env_r)
{
	struct mime_parser *p = *pp;
	*pp = NULL;
	if (p->plen > 0)
		decide(p);
	struct mark m = { p->off, p->lf, p->bare, p->last_lf };
	close_to(p, -1, &m);
	if (env_r != NULL)
		*env_r = p->root->envelope;
	else
		mime_envelope_free(&p->root->envelope);
	p->root->envelope = NULL;
	*root_r = p->root;
	free(p);
}

void mime_parser_abort(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->depth; i++)
		free(p->stack[i].boundary);
	header_parser_free(&p->hp);
	mime_part_free(&p->root);
	free(p);
	*pp = NULL;
}
