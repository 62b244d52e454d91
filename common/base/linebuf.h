/* Bounded line reader.  A parser: no I/O.  Bytes go in with linebuf_fill_ptr() /
 * linebuf_filled(), lines come out with linebuf_next(). */
#ifndef POSTERN_LINEBUF_H
#define POSTERN_LINEBUF_H
#include <stdbool.h>
#include <stddef.h>

struct linebuf;

/* max: longest line accepted, including CRLF. */
struct linebuf *linebuf_new(size_t max);
void linebuf_free(struct linebuf **lb);
/* Where the next read may write and how much room there is (never 0 while a line
 * can still complete). */
char *linebuf_fill_ptr(struct linebuf *lb, size_t *room_r);
void linebuf_filled(struct linebuf *lb, size_t n);
/* Copy bytes in (tests, fuzz); returns how many were taken. */
size_t linebuf_feed(struct linebuf *lb, const char *data, size_t len);
/* 1: line ready (without CRLF or LF; NUL-terminated at len_r), 0: need more,
 * -2: line too long (or a NUL byte or lone CR in it: -3).  The line stays valid until the
 * next call. */
#define LINEBUF_TOO_LONG (-2)
#define LINEBUF_BAD_BYTE (-3)
int linebuf_next(struct linebuf *lb, const char **line_r, size_t *len_r);
/* Bytes buffered but not yet returned as lines (pipelined input). */
size_t linebuf_pending(const struct linebuf *lb, const char **data_r);
/* Drop the first n pending bytes (a raw read took them). */
void linebuf_consume(struct linebuf *lb, size_t n);
/* True if linebuf_next() would answer without more input (a line or an error). */
bool linebuf_has_line(const struct linebuf *lb);
/* Change the longest line (a new protocol state: IMAP after login, SMTP DATA).  Bytes
 * already buffered are kept; a line already found too long stays so. */
void linebuf_set_max(struct linebuf *lb, size_t max);
size_t linebuf_max(const struct linebuf *lb);
/* Drop everything buffered (STLS: RFC 2595 discards pre-TLS input). */
void linebuf_reset(struct linebuf *lb);

#endif
