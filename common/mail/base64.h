/* MIME base64 (RFC 2045 section 6.8): a streaming decoder tolerant of line breaks,
 * whitespace and junk, and an encoder with 76-column CRLF lines.  No I/O.
 *
 * Why not OpenSSL's EVP_DecodeUpdate(): it fails the whole input on any byte outside the
 * alphabet and whitespace (RFC 2045 section 6.8 says such bytes "must be ignored"), and
 * it takes an "=" as the end of the data, while real mail concatenates padded blocks
 * ("QQ==QkM=").  The decoder here is a few lines and decides byte by byte, so any
 * chunking of the input gives the same output.
 *
 * Decoding rules: bytes outside A-Za-z0-9+/ and "=" are skipped (and counted in
 * junk); "=" after 2 or 3 characters of a quantum ends that quantum (1 or 2 bytes out)
 * and decoding goes on after it; other "=" are skipped. */
#ifndef POSTERN_BASE64_H
#define POSTERN_BASE64_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct base64_decoder {
	uint32_t acc;     /* bits of the quantum so far */
	unsigned n;       /* characters in it: 0..3 */
	uint64_t junk;    /* bytes skipped that were not whitespace or CR/LF */
};

void base64_decode_init(struct base64_decoder *d);
/* Decode in[0..len) to out (out_size >= 3 guarantees progress); returns the bytes
 * written and sets *consumed_r (all of len unless out filled up). */
size_t base64_decode_update(struct base64_decoder *d, const char *in, size_t len,
			    char *out, size_t out_size, size_t *consumed_r);
/* After the last chunk: true if the data ended on a quantum boundary (a lone 1 char
 * left over is dropped: 6 bits are no byte; 2 or 3 chars without "=" give 1 or 2 bytes,
 * written to out, which must hold 2). Returns the bytes written via *written_r. */
bool base64_decode_finish(struct base64_decoder *d, char *out, size_t *written_r);

/* Whole buffer, no line breaks: out must hold BASE64_ENCODED_LEN(len) + 1 (NUL). */
#define BASE64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)
size_t base64_encode(const void *in, size_t len, char *out);

/* Streaming encoder: 76-column lines ending in CRLF, the last one too. */
struct base64_encoder {
	unsigned char pend[3];
	unsigned npend;
	unsigned col;
};
/* Output room for update() with len input bytes, and for finish(). */
#define BASE64_ENCODE_MAX(n) (BASE64_ENCODED_LEN((n) + 2) + 2 * (BASE64_ENCODED_LEN((n) + 2) / 76 + 1))
#define BASE64_FINISH_MAX 6
void base64_encode_init(struct base64_encoder *e);
size_t base64_encode_update(struct base64_encoder *e, const void *in, size_t len, char *out);
size_t base64_encode_finish(struct base64_encoder *e, char *out);

#endif
