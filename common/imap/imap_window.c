/* Output window and CRLF converter (imap_window.h). */
#include <string.h>
#include "imap/imap_window.h"

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

void imap_window_crlf_init(struct imap_window_crlf *o, struct imap_window *w)
{
	crlf_init(&o->st, false);
	o->w = w;
}

int imap_window_crlf_feed(struct imap_window_crlf *o, const void *data, size_t len)
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
