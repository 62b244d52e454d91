/* FETCH BINARY (imap_binary.h). */
#include <string.h>
#include "imap/imap_binary.h"

const char *imap_binary_encoding(const struct imap_fetch_section *sec,
				 const struct imap_section_plan *plan)
{
	if (sec->nparts == 0 || plan->part == NULL)
		return NULL;
	return plan->part->encoding;
}

int imap_binary_init(struct imap_binary *d, const char *encoding, struct imap_window *w)
{
	memset(d, 0, sizeof(*d));
	d->w = w;
	crlf_init(&d->crlf, false);
	if (encoding == NULL || strcmp(encoding, "7bit") == 0 ||
	    strcmp(encoding, "8bit") == 0 || strcmp(encoding, "binary") == 0) {
		d->enc = IMAP_BIN_IDENTITY;
	} else if (strcmp(encoding, "base64") == 0) {
		d->enc = IMAP_BIN_BASE64;
		base64_decode_init(&d->b64);
	} else if (strcmp(encoding, "quoted-printable") == 0) {
		d->enc = IMAP_BIN_QP;
		qp_decode_init(&d->qp);
	} else {
		return -1;
	}
	return 0;
}

static int emit(struct imap_binary *d, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (!d->has_nul && memchr(data, '\0', len) != NULL)
		d->has_nul = true;
	d->size += len;
	return imap_window_put(d->w, data, len);
}

#define CHUNK 2048

static int qp_run(struct imap_binary *d, const char *in, size_t len)
{
	char out[CHUNK + QP_MIN_OUT];   /* BOUNDS: out_size >= QP_MIN_OUT */
	while (len > 0) {
		size_t used = 0;
		size_t k = qp_decode_update(&d->qp, in, len, out, sizeof(out), &used);
		if (emit(d, out, k) < 0)
			return -1;
		in += used;
		len -= used;
	}
	return 0;
}

int imap_binary_feed(struct imap_binary *d, const void *data, size_t len)
{
	const char *in = data;
	char buf[2 * CHUNK + 1];   /* BOUNDS: crlf_convert() wants 2 * in + 1; base64 <= in */
	while (len > 0) {
		size_t n = len < CHUNK ? len : CHUNK;
		if (d->enc == IMAP_BIN_BASE64) {
			size_t used = 0;
			size_t k = base64_decode_update(&d->b64, in, n, buf, sizeof(buf), &used);
			if (emit(d, buf, k) < 0)
				return -1;
			n = used;
		} else {
			size_t k = crlf_convert(&d->crlf, in, n, buf);
			if ((d->enc == IMAP_BIN_QP ? qp_run(d, buf, k) : emit(d, buf, k)) < 0)
				return -1;
		}
		in += n;
		len -= n;
	}
	return 0;
}

int imap_binary_finish(struct imap_binary *d)
{
	char out[QP_MIN_OUT > 8 ? QP_MIN_OUT : 8];
	size_t k = 0;
	if (d->enc == IMAP_BIN_BASE64)
		(void)base64_decode_finish(&d->b64, out, &k);
	else if (d->enc == IMAP_BIN_QP)
		k = qp_decode_finish(&d->qp, out);
	return emit(d, out, k);
}
