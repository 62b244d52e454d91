/* libFuzzer: rfc2047_decode() and rfc2047_encode().  Checks: the decoded text is valid
 * UTF-8 within 4 * len + 16 bytes; when encoding it gives encoded-words (not a plain
 * copy), they are printable ASCII lines of at most 76 characters that decode back to
 * the same text. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/charset.h"
#include "mail/rfc2047.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1);
	size_t n, m;

	memcpy(in, data, size);
	char *d = rfc2047_decode(in, size, &n);
	if (!charset_utf8_is_valid(d, n) || n > size * 4 + 16 || d[n] != '\0')
		abort();
	if (memchr(d, '\0', n) == NULL && memchr(d, '\r', n) == NULL &&
	    memchr(d, '\n', n) == NULL) {
		char *e = rfc2047_encode(d, n);
		size_t col = 0;
		bool encoded = strncmp(e, "=?UTF-8?B?", 10) == 0;
		for (const char *p = e; *p && encoded; p++) {
			if (*p == '\r' || *p == '\n')
				col = 0;
			else if (++col > 76 || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				abort();
		}
		char *d2 = rfc2047_decode(e, strlen(e), &m);
		/* plain ASCII is copied: only the encoded form must round trip exactly */
		if (encoded && (m != n || memcmp(d, d2, n) != 0))
			abort();
		free(d2);
		free(e);
	}
	free(d);
	free(in);
	return 0;
}
