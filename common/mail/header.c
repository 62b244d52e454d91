/* The streaming header parser (header.h).  One pending field is kept, raw, in buf (at
 * most HEADER_FIELD_MAX bytes; past that only counted); it is reported when the next line
 * starts with something other than white space, or at the end.  The unfolded value and
 * the NUL-terminated name are made in out at that moment. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/header.h"

struct header_parser {
	uint64_t base;          /* offset of the header in the message */
	uint64_t pos;           /* bytes consumed */
	uint64_t bare_lf, lines, fields;
	bool at_bol;            /* the next byte starts a line */
	bool bol_cr;            /* a line started with CR: an empty line if LF follows */
	bool prev_cr;           /* the last byte was CR */
	bool done, finished;
	/* the pending field */
	bool have;
	uint64_t f_off, f_len;  /* its offset (from base) and bytes so far */
	size_t kept;            /* bytes of it in buf (<= HEADER_FIELD_MAX) */
	char *buf;              /* HEADER_FIELD_MAX + 1 */
	char *out;              /* name + NUL + value + NUL: 2 * (HEADER_FIELD_MAX + 1) */
};

struct header_parser *header_parser_new(uint64_t offset)
{
	struct header_parser *hp = xcalloc(1, sizeof(*hp));
	hp->base = offset;
	hp->at_bol = true;
	hp->buf = xmalloc(HEADER_FIELD_MAX + 1);
	hp->out = xmalloc(2 * (HEADER_FIELD_MAX + 1));
	return hp;
}

void header_parser_free(struct header_parser **hpp)
{
	struct header_parser *hp = *hpp;
	if (hp == NULL)
		return;
	free(hp->buf);
	free(hp->out);
	free(hp);
	*hpp = NULL;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Report the pending field.  Its bytes (buf[0..kept)) end with its last line end unless
 * the input ended without one or the field was cut. */
static void emit(struct header_parser *hp, header_field_cb *cb, void *ctx)
{
	struct header_field f;
	size_t n = hp->kept, i, o;
	char *b = hp->buf;

	if (!hp->have)
		return;
	hp->have = false;
	hp->fields++;
	if (hp->fields > HEADER_MAX_FIELDS || cb == NULL)
		return;
	memset(&f, 0, sizeof(f));
	f.offset = hp->base + hp->f_off;
	f.size = hp->f_len;
	f.truncated = hp->f_len > hp->kept;
	/* the last line end is not part of the value */
	if (!f.truncated && n > 0 && b[n - 1] == '\n') {
		n--;
		if (n > 0 && b[n - 1] == '\r')
			n--;
	}
	const char *colon = memchr(b, ':', n);
	size_t name_end = colon != NULL ? (size_t)(colon - b) : n;
	if (colon == NULL) {
		f.no_colon = true;
		/* name: the first line only */
		const char *lf = memchr(b, '\n', n);
		if (lf != NULL)
			name_end = (size_t)(lf - b);
		if (name_end > 0 && b[name_end - 1] == '\r')
			name_end--;
	}
	size_t nl = name_end;
	while (nl > 0 && is_wsp(b[nl - 1]))
		nl--;
	char *name = hp->out;                       /* BOUNDS: nl <= HEADER_FIELD_MAX */
	memcpy(name, b, nl);
	name[nl] = '\0';
	f.name = name;
	f.name_len = nl;
	char *val = hp->out + HEADER_FIELD_MAX + 1; /* BOUNDS: value <= n <= MAX */
	o = 0;
	if (colon != NULL) {
		size_t rs = name_end + 1;
		f.raw = b + rs;
		f.raw_len = n - rs;
		/* unfold: drop CR LF / LF; then cut white space at both ends */
		for (i = rs; i < n; i++) {
			if (b[i] == '\n')
				continue;
			if (b[i] == '\r' && i + 1 < n && b[i + 1] == '\n')
				continue;
			val[o++] = b[i];
		}
	} else {
		f.raw = b + n;
		f.raw_len = 0;
	}
	size_t s = 0;
	while (s < o && is_wsp(val[s]))
		s++;
	while (o > s && (is_wsp(val[o - 1]) || val[o - 1] == '\r'))
		o--;
	val[o] = '\0';
	f.value = val + s;
	f.value_len = o - s;
	b[n] = '\0'; /* BOUNDS: buf has HEADER_FIELD_MAX + 1 bytes, n <= kept */
	cb(ctx, &f);
}

static void add(struct header_parser *hp, char c)
{
	if (hp->kept < HEADER_FIELD_MAX)
		hp->buf[hp->kept++] = c;
	hp->f_len++;
}

static void start_field(struct header_parser *hp, header_field_cb *cb, void *ctx)
{
	emit(hp, cb, ctx);
	hp->have = true;
	hp->f_off = hp->pos;
	hp->f_len = 0;
	hp->kept = 0;
}

/* One byte that is not the start of a line. */
static void count(struct header_parser *hp, char c)
{
	if (c == '\n') {
		hp->lines++;
		if (!hp->prev_cr)
			hp->bare_lf++;
		hp->at_bol = true;
	}
	hp->prev_cr = c == '\r';
	hp->pos++;
}

size_t header_parser_feed(struct header_parser *hp, const char *data, size_t len,
			  header_field_cb *cb, void *ctx)
{
	size_t i = 0;

	while (i < len && !hp->done) {
		char c = data[i];
		if (hp->bol_cr) {
			/* a line started with CR */
			hp->bol_cr = false;
			if (c == '\n') {
				emit(hp, cb, ctx);
				count(hp, c);
				i++;
				hp->done = true;
				break;
			}
			/* not an empty line: the CR (already counted) starts a field */
			start_field(hp, cb, ctx);
			hp->f_off = hp->pos - 1;
			add(hp, '\r');
			hp->at_bol = false;
			continue;
		}
		if (hp->at_bol) {
			hp->at_bol = false;
			if (c == '\n') {
				emit(hp, cb, ctx);
				count(hp, c);
				i++;
				hp->done = true;
				break;
			}
			if (c == '\r') {
				hp->bol_cr = true;
				count(hp, c);
				i++;
				continue;
			}
			if (!is_wsp(c) || !hp->have)
				start_field(hp, cb, ctx);
		}
		/* the rest of the line, up to its LF */
		const char *lf = memchr(data + i, '\n', len - i);
		size_t end = lf != NULL ? (size_t)(lf - data) + 1 : len;
		for (; i < end; i++) {
			add(hp, data[i]);
			count(hp, data[i]);
		}
	}
	return i;
}

void header_parser_finish(struct header_parser *hp, header_field_cb *cb, void *ctx)
{
	if (hp->finished)
		return;
	hp->finished = true;
	if (hp->bol_cr) {
		/* a lone CR at the very end: a line of its own */
		hp->bol_cr = false;
		start_field(hp, cb, ctx);
		hp->f_off = hp->pos - 1;
		add(hp, '\r');
		hp->at_bol = false;
	}
	if (!hp->done) {
		if (!hp->at_bol && hp->pos > 0)
			hp->lines++; /* a last line without line end */
		emit(hp, cb, ctx);
	}
}

bool header_parser_done(const struct header_parser *hp)
{
	return hp->done;
}

void header_parser_size(const struct header_parser *hp, struct header_size *r)
{
	r->raw = hp->pos;
	r->crlf = hp->pos + hp->bare_lf;
	r->lines = hp->lines;
	r->fields = hp->fields;
	r->ended = hp->done;
}

bool header_field_is(const struct header_field *f, const char *name)
{
	return !f->no_colon && strlen(name) == f->name_len &&
		strncasecmp(f->name, name, f->name_len) == 0;
}
