/* Charsets: a byte string in a named charset to UTF-8 (glibc iconv(3)), streaming, and
 * the case folding IMAP SEARCH compares with.  No I/O.
 *
 * Names are matched without case.  Aliases, for what real mail is labeled with:
 *   gb2312, gbk, euc-cn, cp936, x-gbk -> GB18030 (a superset: "gb2312" mail holds GBK)
 *   big5, cp950, x-x-big5             -> BIG5-HKSCS (a superset of Big5)
 *   us-ascii, ascii, utf8             -> UTF-8 (8-bit bytes in "us-ascii" mail are
 *                                        almost always UTF-8; invalid ones become U+FFFD)
 *   iso-8859-1, latin1                -> WINDOWS-1252 (as WHATWG: 0x80-0x9F are printable)
 *   ks_c_5601-1987                    -> CP949
 * Any other name goes to iconv_open() as it is; one iconv does not know is refused
 * (IMAP SEARCH answers NO [BADCHARSET]).  Invalid input bytes become U+FFFD, never an
 * error; a multibyte sequence split across chunks is kept until the next one.
 * UTF-8 in is validated by our own code, not iconv. */
#ifndef POSTERN_CHARSET_H
#define POSTERN_CHARSET_H
#include <stdbool.h>
#include <stddef.h>

/* Output room every call to convert/end must offer: enough for one pending sequence. */
#define CHARSET_MIN_OUT 64

struct charset_conv;

/* 0, or -1 with *error_r for an unknown charset (or a name longer than
 * CHARSET_MAX_NAME). */
int charset_to_utf8_begin(const char *charset, struct charset_conv **conv_r,
			  const char **error_r);
/* Convert in[0..len): writes at most out_size (>= CHARSET_MIN_OUT) bytes of UTF-8 to
 * out, returns how many, and sets *consumed_r to the input bytes used (all of them
 * unless out filled up: call again with the rest).  A sequence cut at the end of in is
 * kept inside conv and counted as consumed. */
size_t charset_to_utf8_convert(struct charset_conv *conv, const char *in, size_t len,
			       char *out, size_t out_size, size_t *consumed_r);
/* After the last chunk: a kept incomplete sequence becomes U+FFFD.  Returns the bytes
 * written to out (out_size >= CHARSET_MIN_OUT).  Frees conv and sets it to NULL. */
size_t charset_to_utf8_end(struct charset_conv **conv, char *out, size_t out_size);

/* Whole-buffer conversion into a new NUL-terminated string (length in *len_r): NULL with
 * *error_r only for an unknown charset. */
char *charset_to_utf8_str(const char *charset, const char *in, size_t len, size_t *len_r,
			  const char **error_r);
/* True if charset_to_utf8_begin() would accept the name. */
bool charset_is_known(const char *charset);

/* Length of one well-formed UTF-8 sequence at p (no overlongs, no surrogates, at most
 * U+10FFFF), or 0; 0 also when it is cut by end. */
size_t charset_utf8_seqlen(const unsigned char *p, const unsigned char *end);
/* Copy valid UTF-8 of in to a new string, each invalid byte replaced by U+FFFD. */
char *charset_utf8_sanitize(const char *in, size_t len, size_t *len_r);
bool charset_utf8_is_valid(const char *in, size_t len);

/* SEARCH normal form: in (UTF-8, invalid bytes become U+FFFD) simply case-folded by our
 * own table (no locale): ASCII, Latin-1, Latin Extended-A, Greek (final sigma folds to
 * sigma) and Cyrillic incl. the 0400-040F and 0460-04BF ranges; the rest unchanged.
 * The result is never longer than 3 bytes per input byte. */
char *charset_search_fold(const char *in, size_t len, size_t *len_r);

#endif
