/* The DEFLATE layer (zlayer.h) over zlib. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "base/log.h"
#include "base/util.h"
#include "base/zlayer.h"

/* Raw deflate, no header (RFC 4978 section 4: "DEFLATE" is RFC 1951). */
#define ZLAYER_WBITS (-15)
/* The server compresses everything it sends (an 8 MB FETCH too) on a shared CPU: the
 * fastest level costs the least for most of the gain on mail text. */
#define ZLAYER_LEVEL Z_BEST_SPEED

struct zlayer {
	z_stream in, out;
	bool in_ok, out_ok;
	bool dirty;             /* deflate took input since the last sync flush */
	bool broken;            /* the peer's stream was corrupt or ended */
	bool in_full;           /* the last inflate filled its output */
};

struct zlayer *zlayer_new(const char **error_r)
{
	struct zlayer *z = xcalloc(1, sizeof(*z));

	z->in_ok = inflateInit2(&z->in, ZLAYER_WBITS) == Z_OK;
	z->out_ok = deflateInit2(&z->out, ZLAYER_LEVEL, Z_DEFLATED, ZLAYER_WBITS, 8,
				 Z_DEFAULT_STRATEGY) == Z_OK;
	if (!z->in_ok || !z->out_ok) {
		*error_r = "zlib initialisation failed";
		zlayer_free(&z);
		return NULL;
	}
	return z;
}

void zlayer_free(struct zlayer **zp)
{
	struct zlayer *z = *zp;

	if (z == NULL)
		return;
	if (z->in_ok)
		(void)inflateEnd(&z->in);
	if (z->out_ok)
		(void)deflateEnd(&z->out);
	free(z);
	*zp = NULL;
}

/* zlib counts in uInt: never hand it more than that at once. */
static uInt zlayer_clamp(size_t n)
{
	return n > (size_t)UINT32_MAX ? UINT32_MAX : (uInt)n;
}

int zlayer_inflate(struct zlayer *z, const char **in, size_t *in_len, char *out,
		   size_t out_size, size_t *out_len_r, const char **error_r)
{
	*out_len_r = 0;
	if (z->broken) {
		*error_r = "compressed stream already ended";
		return -1;
	}
	if (out_size == 0)
		return 0;
	uInt avail_in = zlayer_clamp(*in_len), avail_out = zlayer_clamp(out_size);
	z->in.next_in = (Bytef *)(uintptr_t)*in;   /* zlib does not write to its input */
	z->in.avail_in = avail_in;
	z->in.next_out = (Bytef *)out;
	z->in.avail_out = avail_out;
	int r = inflate(&z->in, Z_SYNC_FLUSH);
	size_t took = avail_in - z->in.avail_in;   /* BOUNDS: avail_in only shrinks */
	*in += took;
	*in_len -= took;
	*out_len_r = avail_out - z->in.avail_out;
	z->in_full = z->in.avail_out == 0;
	if (r == Z_STREAM_END) {
		z->broken = true;
		return 1;
	}
	if (r == Z_OK || r == Z_BUF_ERROR)   /* Z_BUF_ERROR: no progress possible, go on */
		return 0;
	z->broken = true;
	*error_r = r == Z_MEM_ERROR ? "out of memory" :
		z->in.msg != NULL ? z->in.msg : "corrupt compressed data";
	return -1;
}

int zlayer_deflate(struct zlayer *z, const char **in, size_t *in_len, char *out,
		   size_t out_size, size_t *out_len_r, bool sync)
{
	uInt avail_in = zlayer_clamp(*in_len), avail_out = zlayer_clamp(out_size);

	if (out_size < ZLAYER_OUT_MIN)
		fatal("zlayer_deflate: output buffer of %zu bytes", out_size);
	z->out.next_in = (Bytef *)(uintptr_t)*in;
	z->out.avail_in = avail_in;
	z->out.next_out = (Bytef *)out;
	z->out.avail_out = avail_out;
	/* Z_STREAM_ERROR cannot happen: the state is valid and flush is a constant */
	(void)deflate(&z->out, sync ? Z_SYNC_FLUSH : Z_NO_FLUSH);
	size_t took = avail_in - z->out.avail_in;
	*in += took;
	*in_len -= took;
	*out_len_r = avail_out - z->out.avail_out;
	if (took > 0)
		z->dirty = true;
	/* out full: zlib may hold more output (or, for a sync, not have written it all) */
	if (z->out.avail_out == 0 || *in_len > 0)
		return 1;
	if (sync)
		z->dirty = false;
	return 0;
}

bool zlayer_inflate_more(const struct zlayer *z)
{
	return z->in_full && !z->broken;
}

bool zlayer_dirty(const struct zlayer *z)
{
	return z->dirty;
}
