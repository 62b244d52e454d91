/* RFC 2047 encoded-words ("=?charset?B?...?=", "=?charset?Q?...?="): decoding header
 * text into UTF-8, and an encoder for headers we write.  No I/O.
 *
 * Decoding (lenient, as mail readers are):
 * - An encoded-word is recognised anywhere in the text, also inside a word; its charset
 *   may carry an RFC 2231 language suffix ("utf-8*en").  Its encoded text is at most
 *   RFC2047_MAX_WORD bytes and holds no space or "?".
 * - Encoded-words separated only by whitespace (folding included) are joined, and the
 *   whitespace dropped (section 6.2).  The decoded bytes of adjacent words in the same
 *   charset are converted together, so a character split over two words survives.
 * - An invalid word (unknown charset, bad encoding letter, no "?=") is left as it is.
 * - Text outside encoded-words is unfolded (CRLF/LF before whitespace removed) and
 *   sanitized: invalid UTF-8 bytes become U+FFFD (charset.h); other CR/LF are removed.
 * Output: a new NUL-terminated UTF-8 string; it is bounded by 4 * len + 16 bytes (a
 * longer result, from a charset that expands strangely, is cut at a character). */
#ifndef POSTERN_RFC2047_H
#define POSTERN_RFC2047_H
#include <stdbool.h>
#include <stddef.h>

char *rfc2047_decode(const char *s, size_t len, size_t *len_r);

/* Encode UTF-8 text for an unstructured header: text of printable ASCII and spaces that
 * holds no "=?" comes back as a copy; anything else becomes "=?UTF-8?B?...?=" words of at
 * most 75 characters each (characters never split), joined by CRLF SP (folded).  A new
 * NUL-terminated string. */
char *rfc2047_encode(const char *utf8, size_t len);

#endif
