/* FETCH sections: resolution, partial window, CRLF output, HEADER.FIELDS filter
 * (imap_section.h). */
#include <string.h>
#include <strings.h>
#include "imap/imap_section.h"

static bool is_multi(const struct mime_part *p)
{
	return strcmp(p->type, "multipart") == 0 && p->children != NULL;
}

static bool is_message(const struct mime_part *p)
{
	return (p->flags & MIME_PART_MESSAGE) != 0 && p->children != NULL;
}

static void set_range(struct imap_section_plan *r, uint64_t off, uint64_t size,
		      uint64_t size_crlf)
{
	r->found = true;
	r->offset = off;
	r->size = size;
	r->size_crlf = size_crlf;
}

int imap_section_resolve(const struct imap_fetch_section *sec, const struct mime_part *root,
			 struct imap_section_plan *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	if (sec->kind != IMAP_FETCH_BODY && sec->text != IMAP_SECTION_ALL) {
		*error_r = "BINARY takes part numbers only";
		return -1;
	}
	const struct mime_part *cur = root;
	bool is_msg = true;    /* cur is a message (the top one or an enclosed one) */
	for (size_t i = 0; i < sec->nparts; i++) {
		uint32_t n = sec->part[i];
		if (!is_msg && is_message(cur)) {
			cur = cur->children;
			is_msg = true;
		}
		if (is_multi(cur)) {
			const struct mime_part *c = cur->children;
			for (uint32_t k = 1; c != NULL && k < n; k++)
				c = c->next;
			if (c == NULL || n == 0)
				return 0;
			cur = c;
			is_msg = false;
		} else if ((is_msg || strcmp(cur->type, "multipart") == 0) && n == 1) {
			/* a non-multipart message's only part: its body; a multipart without
			 * parts: the made-up part of its BODYSTRUCTURE, its body */
			is_msg = false;
		} else {
			return 0;
		}
	}
	r->part = cur;
	const struct mime_part *msg = cur;
	switch (sec->text) {
	case IMAP_SECTION_ALL:
		if (sec->nparts == 0)
			set_range(r, root->hdr_offset, root->hdr_size + root->body_size,
				  root->hdr_size_crlf + root->body_size_crlf);
		else
			set_range(r, cur->body_offset, cur->body_size, cur->body_size_crlf);
		return 0;
	case IMAP_SECTION_MIME:
		if (sec->nparts == 0) {
			r->part = NULL;
			return 0;
		}
		set_range(r, cur->hdr_offset, cur->hdr_size, cur->hdr_size_crlf);
		return 0;
	case IMAP_SECTION_HEADER:
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
	case IMAP_SECTION_TEXT:
		if (sec->nparts > 0) {
			if (!is_message(cur)) {
				r->part = NULL;
				return 0;
			}
			msg = cur->children;
		}
		r->part = msg;
		if (sec->text == IMAP_SECTION_TEXT) {
			set_range(r, msg->body_offset, msg->body_size, msg->body_size_crlf);
		} else {
			set_range(r, msg->hdr_offset, msg->hdr_size, msg->hdr_size_crlf);
			r->filter = sec->text != IMAP_SECTION_HEADER;
		}
		return 0;
	}
	return 0;
}

uint64_t imap_section_partial_size(const struct imap_fetch_section *sec, uint64_t full)
{
	if (!sec->partial)
		return full;
	if (sec->offset >= full)
		return 0;
	uint64_t rest = full - sec->offset;
	return sec->length < rest ? sec->length : rest;
}

int imap_section_write_name(struct imap_buf *b, const struct imap_fetch_section *sec)
{
	static const char *const text[] = {
		[IMAP_SECTION_ALL] = "", [IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_TEXT] = "TEXT", [IMAP_SECTION_MIME] = "MIME",
	};
	int r = imap_buf_puts(b, sec->kind == IMAP_FETCH_BODY ? "BODY[" :
			      sec->kind == IMAP_FETCH_BINARY ? "BINARY[" : "BINARY.SIZE[");
	for (size_t i = 0; i < sec->nparts; i++)
		r |= imap_buf_printf(b, i == 0 ? "%u" : ".%u", (unsigned)sec->part[i]);
	if (sec->text != IMAP_SECTION_ALL) {
		if (sec->nparts > 0)
			r |= imap_buf_puts(b, ".");
		r |= imap_buf_puts(b, text[sec->text]);
	}
	if (sec->text == IMAP_SECTION_HEADER_FIELDS ||
	    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
		r |= imap_buf_puts(b, " (");
		for (size_t i = 0; i < sec->nfields; i++) {
			if (i > 0)
				r |= imap_buf_puts(b, " ");
			r |= imap_write_astring(b, sec->fields[i], strlen(sec->fields[i]), 0);
		}
		r |= imap_buf_puts(b, ")");
	}
	r |= imap_buf_puts(b, "]");
	if (sec->partial && sec->kind != IMAP_FETCH_BINARY_SIZE)
		r |= imap_buf_printf(b, "<%llu>", (unsigned long long)sec->offset);
	return r == 0 ? 0 : -1;
}

/* ---- window ---- */

void imap_window_init(struct imap_window *w, uint64_t skip, uint64_t max,
		      imap_sink_fn *sink, void *ctx)
{
	w->skip = skip;
	w->left = max;
	w->total = 0;
	w->sink = sink;
	w->ctx = ctx;
}

int imap_window_put(struct imap_window *w, const void *data, size_t len)
{
	const char *d = data;
	w->total += len;
	if (w->skip > 0) {
		size_t k = w->skip < len ? (size_t)w->skip : len;
		w->skip -= k;
		d += k;
		len -= k;
	}
	size_t e = w->left < len ? (size_t)w->left : len;
	if (e == 0)
		return 0;
	w->left -= e;
	return w->sink != NULL ? w->sink(w->ctx, d, e) : 0;
}

int imap_window_pad(struct imap_window *w)
{
	static const char spaces[256] = { [0 ... 255] = ' ' };
	while (w->left > 0) {
		size_t e = w->left < sizeof(spaces) ? (size_t)w->left : sizeof(spaces);
		w->left -= e;
		if (w->sink != NULL && w->sink(w->ctx, spaces, e) < 0)
			return -1;
	}
	return 0;
}

/* ---- CRLF ---- */

void imap_crlf_out_init(struct imap_crlf_out *o, struct imap_window *w)
{
	crlf_init(&o->st, false);
	o->w = w;
}

int imap_crlf_out_feed(struct imap_crlf_out *o, const void *data, size_t len)
{
	char out[2 * 2048 + 1];   /* BOUNDS: crlf_convert() wants 2 * in + 1 */
	const char *in = data;
	while (len > 0) {
		size_t n = len < 2048 ? len : 2048;
		size_t k = crlf_convert(&o->st, in, n, out);
		if (imap_window_put(o->w, out, k) < 0)
			return -1;
		in += n;
		len -= n;
	}
	return 0;
}

/* ---- HEADER.FIELDS ---- */

void imap_hdrfilter_init(struct imap_hdrfilter *f, const char *const *names, size_t n,
			 bool not, struct imap_window *w)
{
	memset(f, 0, sizeof(*f));
	f->names = names;
	f->nnames = n;
	f->not = not;
	f->state = HF_BOL;
	f->keep = not;       /* a line before any name matches no name */
	f->w = w;
}

struct hf_out {
	char buf[1024];
	size_t len;
	struct imap_window *w;
	int r;
};

static void out_flush(struct hf_out *o)
{
	if (o->len > 0 && o->r == 0)
		o->r = imap_window_put(o->w, o->buf, o->len);
	o->len = 0;
}

static void out_byte(struct hf_out *o, char c)
{
	if (o->len == sizeof(o->buf))
		out_flush(o);
	o->buf[o->len++] = c;
}

static void out_bytes(struct hf_out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out_byte(o, s[i]);
}

/* Decide on the name buffered so far (trailing white space and CR cut). */
static void decide(struct imap_hdrfilter *f)
{
	size_t n = f->nlen;
	while (n > 0 && (f->name[n - 1] == ' ' || f->name[n - 1] == '\t' ||
			 f->name[n - 1] == '\r'))
		n--;
	bool match = false;
	for (size_t i = 0; i < f->nnames && !f->name_long && !match; i++)
		match = strlen(f->names[i]) == n && strncasecmp(f->names[i], f->name, n) == 0;
	f->keep = f->not ? !match : match;
}

int imap_hdrfilter_feed(struct imap_hdrfilter *f, const void *data, size_t len)
{
	struct hf_out o = { .len = 0, .w = f->w, .r = 0 };
	const char *p = data;
	for (size_t i = 0; i < len && f->state != HF_DONE; i++) {
		char c = p[i];
		switch (f->state) {
		case HF_BOL:
			if (c == '\n') {
				f->state = HF_DONE;
			} else if (c == ' ' || c == '\t') {
				f->state = HF_LINE;   /* a folded line: of the current field */
				f->prev_cr = false;
				if (f->keep)
					out_byte(&o, c);
			} else {
				f->nlen = 0;
				f->name_long = false;
				f->name[f->nlen++] = c;
				f->state = HF_NAME;
			}
			break;
		case HF_NAME:
			if (c == ':') {
				decide(f);
				if (f->keep) {
					out_bytes(&o, f->name, f->nlen);
					out_byte(&o, c);
				}
				f->prev_cr = false;
				f->state = HF_LINE;
			} else if (c == '\n') {
				if (f->nlen == 1 && f->name[0] == '\r') {
					f->state = HF_DONE;   /* "\r\n": the empty line */
					break;
				}
				/* a line without a colon */
				decide(f);
				if (f->keep) {
					size_t n = f->nlen;
					if (f->name[n - 1] == '\r')
						n--;
					out_bytes(&o, f->name, n);
					out_bytes(&o, "\r\n", 2);
				}
				f->state = HF_BOL;
			} else if (f->nlen < sizeof(f->name)) {
				f->name[f->nlen++] = c;
			} else {
				f->name_long = true;  /* longer than any name asked for */
				decide(f);
				if (f->keep) {
					out_bytes(&o, f->name, f->nlen);
					out_byte(&o, c);
				}
				f->prev_cr = c == '\r';
				f->state = HF_LINE;
			}
			break;
		case HF_LINE:
			if (c == '\n') {
				if (f->keep)
					out_bytes(&o, f->prev_cr ? "\n" : "\r\n", f->prev_cr ? 1 : 2);
				f->state = HF_BOL;
			} else {
				if (f->keep)
					out_byte(&o, c);
				f->prev_cr = c == '\r';
			}
			break;
		case HF_DONE:
			break;
		}
	}
	out_flush(&o);
	return o.r;
}

int imap_hdrfilter_finish(struct imap_hdrfilter *f)
{
	struct hf_out o = { .len = 0, .w = f->w, .r = 0 };
	if (f->state == HF_NAME) {
		/* a last line without line end nor colon */
		decide(f);
		if (f->keep) {
			out_bytes(&o, f->name, f->nlen);
			out_bytes(&o, f->name[f->nlen - 1] == '\r' ? "\n" : "\r\n",
				  f->name[f->nlen - 1] == '\r' ? 1 : 2);
		}
	} else if (f->state == HF_LINE && f->keep) {
		out_bytes(&o, f->prev_cr ? "\n" : "\r\n", f->prev_cr ? 1 : 2);
	}
	f->state = HF_DONE;
	out_bytes(&o, "\r\n", 2);
	out_flush(&o);
	return o.r;
}
