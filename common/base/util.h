/* Small helpers every module uses: allocation that cannot fail, strict numbers. */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Strict unsigned decimal: digits only, no sign, no leading/trailing junk, no
 * overflow past max.  Returns 0 and sets *r, or -1. */
int util_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *r);
/* snprintf that returns -1 on error or truncation. */
int util_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Overwrite secret memory in a way the compiler keeps. */
void util_wipe(void *p, size_t n);
/* Case-insensitive compare of a counted token with a NUL-terminated word. */
bool util_token_eq(const char *tok, size_t len, const char *word);
/* Write all of buf to fd, retrying on EINTR/short writes.  0 or -1. */
int util_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes.  1 read, 0 EOF before any byte, -1 error/short. */
int util_read_full(int fd, void *buf, size_t len);
/* Monotonic milliseconds. */
uint64_t util_now_ms(void);
/* Sleep for ms milliseconds (restarts on EINTR). */
void util_sleep_ms(uint64_t ms);

#endif
