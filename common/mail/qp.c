/* Quoted-printable decoder (qp.h): a small state machine over single bytes. */
#include <string.h>
#include "mail/qp.h"

enum {
	QP_TEXT,
	QP_CR,     /* text CR seen: CRLF, or a CR that is data */
	QP_EQ,     /* "=" */
	QP_EQ1,    /* "=X" */
	QP_EQ_WS,  /* "=" and whitespace: a soft break with padding, or text */
	QP_EQ_CR,  /* "=" [whitespace] CR */
};

void qp_decode_init(struct qp_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

static int hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static size_t flush_ws(struct qp_decoder *d, char *out)
{
	size_t n = d->nws;
	memcpy(out, d->ws, n);
	d->nws = 0;
	return n;
}

/* One byte; returns the bytes written (at most QP_MAX_PENDING_WS + 4). */
static size_t qp_byte(struct qp_decoder *d, unsigned char c, char *out)
{
	size_t o = 0;

again:
	switch (d->state) {
	case QP_TEXT:
		if (c == '=') {
			o += flush_ws(d, out + o);
			d->state = QP_EQ;
		} else if (c == ' ' || c == '\t') {
			if (d->nws == QP_MAX_PENDING_WS)
				o += flush_ws(d, out + o);
			d->ws[d->nws++] = c;
		} else if (c == '\r') {
			d->state = QP_CR;
		} else if (c == '\n') {
			d->nws = 0; /* trailing whitespace: deleted */
			out[o++] = '\n';
		} else {
			o += flush_ws(d, out + o);
			out[o++] = (char)c;
		}
		return o;
	case QP_CR:
		d->state = QP_TEXT;
		if (c == '\n') {
			d->nws = 0;
			out[o++] = '\r';
			out[o++] = '\n';
			return o;
		}
		o += flush_ws(d, out + o);
		out[o++] = '\r';
		goto again;
	case QP_EQ:
		if (hex(c) >= 0) {
			d->hex1 = (char)c;
			d->state = QP_EQ1;
		} else if (c == '\n') {
			d->state = QP_TEXT; /* soft line break */
		} else if (c == '\r') {
			d->state = QP_EQ_CR;
		} else if (c == ' ' || c == '\t') {
			d->ws[d->nws++] = c;
			d->state = QP_EQ_WS;
		} else {
			d->bad++;
			out[o++] = '=';
			d->state = QP_TEXT;
			goto again;
		}
		return o;
	case QP_EQ1:
		d->state = QP_TEXT;
		if (hex(c) >= 0) {
			out[o++] = (char)(hex((unsigned char)d->hex1) * 16 + hex(c));
			return o;
		}
		d->bad++;
		out[o++] = '=';
		out[o++] = d->hex1;
		goto again;
	case QP_EQ_WS:
		if (c == ' ' || c == '\t') {
			if (d->nws < QP_MAX_PENDING_WS) {
				d->ws[d->nws++] = c;
				return o;
			}
		} else if (c == '\r') {
			d->state = QP_EQ_CR;
			return o;
		} else if (c == '\n') {
			d->nws = 0;
			d->state = QP_TEXT;
			return o;
		}
		/* "=" and whitespace inside a line: text */
		d->bad++;
		out[o++] = '=';
		o += flush_ws(d, out + o);
		d->state = QP_TEXT;
		goto again;
	case QP_EQ_CR:
		if (c == '\n') {
			d->nws = 0;
			d->state = QP_TEXT;
			return o;
		}
		d->bad++;
		out[o++] = '=';
		o += flush_ws(d, out + o);
		out[o++] = '\r';
		d->state = QP_TEXT;
		goto again;
	}
	return o;
}

size_t qp_decode_update(struct qp_decoder *d, const char *in, size_t len, char *out,
			size_t out_size, size_t *consumed_r)
{
	size_t i = 0, o = 0;

	/* BOUNDS: one byte writes at most QP_MAX_PENDING_WS + 4 (held whitespace, "=", a
	 * held CR and the byte): that much room before each byte */
	for (; i < len && out_size - o >= QP_MAX_PENDING_WS + 4; i++)
		o += qp_byte(d, (unsigned char)in[i], out + o);
	*consumed_r = i;
	return o;
}

size_t qp_decode_finish(struct qp_decoder *d, char *out)
{
	size_t o = 0;

	switch (d->state) {
	case QP_TEXT:
		break;
	case QP_CR:
		out[o++] = '\r';
		break;
	case QP_EQ:
	case QP_EQ_WS:
		d->bad++;
		out[o++] = '=';
		break; /* its whitespace is trailing: deleted */
	case QP_EQ1:
		d->bad++;
		out[o++] = '=';
		out[o++] = d->hex1;
		break;
	case QP_EQ_CR:
		d->bad++;
		out[o++] = '=';
		out[o++] = '\r';
		break;
	}
	d->nws = 0; /* whitespace at the end of the data is trailing */
	d->state = QP_TEXT;
	return o;
}
