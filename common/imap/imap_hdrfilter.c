/* HEADER.FIELDS(.NOT) filter (imap_hdrfilter.h). */
#include <string.h>
#include <strings.h>
#include "imap/imap_hdrfilter.h"

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
