/* MIME base64 (base64.h). */
#include <string.h>
#include "mail/base64.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value_of(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

void base64_decode_init(struct base64_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

/* The 1 or 2 bytes of a quantum of 2 or 3 characters. */
static size_t flush_partial(struct base64_decoder *d, char *out)
{
	size_t w = 0;
	if (d->n == 2) {
		out[0] = (char)(d->acc >> 4);
		w = 1;
	} else if (d->n == 3) {
		out[0] = (char)(d->acc >> 10);
		out[1] = (char)(d->acc >> 2);
		w = 2;
	}
	d->acc = 0;
	d->n = 0;
	return w;
}

size_t base64_decode_update(struct base64_decoder *d, const char *in, size_t len,
			    char *out, size_t out_size, size_t *consumed_r)
{
	size_t i = 0, o = 0;

	for (; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v = value_of(c);
		if (v >= 0) {
			if (d->n == 3 && out_size - o < 3)
				break; /* this char completes a quantum: no room for it */
			d->acc = (d->acc << 6) | (uint32_t)v;
			if (++d->n == 4) {
				out[o++] = (char)(d->acc >> 16);
				out[o++] = (char)(d->acc >> 8);
				out[o++] = (char)d->acc;
				d->acc = 0;
				d->n = 0;
			}
		} else if (c == '=') {
			if (d->n >= 2) {
				if (out_size - o < 2)
					break;
				o += flush_partial(d, out + o);
			}
		} else if (c != '\r' && c != '\n' && c != ' ' && c != '\t') {
			d->junk++;
		}
	}
	*consumed_r = i;
	return o;
}

bool base64_decode_finish(struct base64_decoder *d, char *out, size_t *written_r)
{
	bool clean = d->n == 0;
	if (d->n == 1) {
		d->n = 0;
		d->acc = 0;
	}
	*written_r = flush_partial(d, out);
	return clean;
}

static void encode_group(const unsigned char *p, size_t n, char *o)
{
	uint32_t v = (uint32_t)p[0] << 16;
	if (n > 1)
		v |= (uint32_t)p[1] << 8;
	if (n > 2)
		v |= p[2];
	o[0] = alphabet[v >> 18];
	o[1] = alphabet[(v >> 12) & 63];
	o[2] = n > 1 ? alphabet[(v >> 6) & 63] : '=';
	o[3] = n > 2 ? alphabet[v & 63] : '=';
}

size_t base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		encode_group(p + i, len - i < 3 ? len - i : 3, out + o);
		o += 4;
	}
	out[o] = '\0';
	return o;
}

void base64_encode_init(struct base64_encoder *e)
{
	memset(e, 0, sizeof(*e));
}

static size_t put_group(struct base64_encoder *e, const unsigned char *g, size_t n, char *out)
{
	size_t o = 0;
	encode_group(g, n, out);
	o = 4;
	e->col += 4;
	if (e->col >= 76) {
		out[o++] = '\r';
		out[o++] = '\n';
		e->col = 0;
	}
	return o;
}

size_t base64_encode_update(struct base64_encoder *e, const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t o = 0, i = 0;

	while (e->npend > 0 && e->npend < 3 && i < len)
		e->pend[e->npend++] = p[i++];
	if (e->npend == 3) {
		o += put_group(e, e->pend, 3, out + o);
		e->npend = 0;
	}
	/* BOUNDS: 4 characters per 3 bytes and a CRLF per 76: BASE64_ENCODE_MAX(len) */
	for (; len - i >= 3; i += 3)
		o += put_group(e, p + i, 3, out + o);
	while (i < len)
		e->pend[e->npend++] = p[i++];
	return o;
}

size_t base64_encode_finish(struct base64_encoder *e, char *out)
{
	size_t o = 0;
	if (e->npend > 0) {
		o += put_group(e, e->pend, e->npend, out);
		e->npend = 0;
	}
	if (e->col > 0) {
		out[o++] = '\r';
		out[o++] = '\n';
		e->col = 0;
	}
	return o;
}
