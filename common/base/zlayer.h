/* The DEFLATE layer of IMAP COMPRESS=DEFLATE (RFC 4978): raw deflate (RFC 1951, no zlib
 * or gzip header) in both directions, I/O-free.  conn.c runs it between its buffers and
 * the socket (conn_compress_start()); the unit test and the fuzz target drive it alone.
 *
 * Memory is fixed at zlayer_new(): zlib's deflate state (about 256 KiB at memLevel 8)
 * and inflate state with its 32 KiB window.  The inflater writes at most out_size bytes
 * per call, so a decompression bomb costs CPU, never memory: its output reaches the line
 * reader, which ends an over-long line, or a literal, which is bounded by its limit. */
#ifndef POSTERN_ZLAYER_H
#define POSTERN_ZLAYER_H
#include <stdbool.h>
#include <stddef.h>

struct zlayer;

/* NULL with *error_r if zlib cannot start (out of memory). */
struct zlayer *zlayer_new(const char **error_r);
void zlayer_free(struct zlayer **z);
/* Decompress from *in (*in_len bytes; both advanced past what was taken) into out (at most
 * out_size bytes, *out_len_r written; *in_len may be 0: zlayer_inflate_more()).  0 go on (all input taken, or out full), 1 the
 * peer's stream ended (a final block: nothing may follow), -1 corrupt input (*error_r;
 * the layer is unusable from then on). */
int zlayer_inflate(struct zlayer *z, const char **in, size_t *in_len, char *out,
		   size_t out_size, size_t *out_len_r, const char **error_r);
/* The last zlayer_inflate() filled its output: zlib may hold more of it (the rest of a
 * match), to be had by calling again, with no new input if there is none. */
bool zlayer_inflate_more(const struct zlayer *z);
/* Compress from *in (advanced as taken) into out (*out_len_r written).  With sync, the
 * output ends on a byte boundary with everything given so far (Z_SYNC_FLUSH: the peer can
 * decompress all of it now).  Returns 1 when out filled up and more output is pending
 * (call again with the rest of the input, or none, and the same sync), 0 when done.
 * out_size is at least ZLAYER_OUT_MIN: a sync flush repeated into a buffer smaller than
 * its own marker would never end. */
#define ZLAYER_OUT_MIN 64
int zlayer_deflate(struct zlayer *z, const char **in, size_t *in_len, char *out,
		   size_t out_size, size_t *out_len_r, bool sync);
/* Input given to zlayer_deflate() since the last sync (a flush is owed). */
bool zlayer_dirty(const struct zlayer *z);

#endif
