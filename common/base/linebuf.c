/* Bounded line reader: a parser, no I/O.
 *
 * Layout: one buffer of 2 * max bytes.  [start, end) holds bytes not yet returned;
 * [start, scan) of them has already been searched for LF without finding one, so bytes
 * that trickle in one at a time are looked at once each.  A line (terminator included)
 * is at most max bytes, so once the unreturned bytes hold max bytes and no LF, the line
 * is too long and the reader stays broken until linebuf_reset(): the caller disconnects
 * (STYLE.md: never resync in the middle of a line).
 *
 * The buffer is compacted (unreturned bytes moved to the front) only when there is no
 * room left at its end.  At that point end == 2 * max and, unless a line can no longer
 * complete, fewer than max bytes are unreturned: a compaction moves fewer than max bytes
 * and frees more than max, so the cost per input byte stays constant.
 *
 * A returned line is NUL-terminated in place, over its CR or LF.
 *
 * linebuf_set_max() moves the unreturned bytes into a new buffer of 2 * max bytes, or of
 * as many bytes as are unreturned if that is more (a smaller max with much pipelined
 * input): nothing buffered is ever dropped, and cap >= 2 * max still holds. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "base/linebuf.h"
#include "base/util.h"

struct linebuf {
	size_t max;     /* longest line, terminator included */
	size_t cap;     /* 2 * max */
	size_t start;   /* first byte not yet returned */
	size_t scan;    /* [start, scan) holds no LF */
	size_t end;     /* first free byte */
	bool broken;    /* a line was too long: LINEBUF_TOO_LONG until reset */
	char *buf;
};

/* Smallest max we accept: room for CRLF and at least one byte. */
#define LINEBUF_MIN_MAX 3

static size_t linebuf_clamp(size_t max)
{
	if (max < LINEBUF_MIN_MAX)
		return LINEBUF_MIN_MAX;
	if (max > SIZE_MAX / 4)
		return SIZE_MAX / 4;
	return max;
}

struct linebuf *linebuf_new(size_t max)
{
	struct linebuf *lb = xcalloc(1, sizeof(*lb));

	max = linebuf_clamp(max);
	lb->max = max;
	lb->cap = max * 2; /* BOUNDS: max <= SIZE_MAX / 4 just above */
	lb->buf = xmalloc(lb->cap);
	return lb;
}

void linebuf_free(struct linebuf **lbp)
{
	struct linebuf *lb = *lbp;

	if (lb == NULL)
		return;
	/* the buffer may have held a password (PASS, AUTH PLAIN) */
	util_wipe(lb->buf, lb->cap);
	free(lb->buf);
	free(lb);
	*lbp = NULL;
}

static void linebuf_compact(struct linebuf *lb)
{
	size_t n = lb->end - lb->start;

	if (lb->start == 0)
		return;
	memmove(lb->buf, lb->buf + lb->start, n);
	lb->scan -= lb->start;
	lb->end = n;
	lb->start = 0;
}

char *linebuf_fill_ptr(struct linebuf *lb, size_t *room_r)
{
	if (lb->end == lb->cap)
		linebuf_compact(lb);
	*room_r = lb->cap - lb->end;
	return lb->buf + lb->end;
}

void linebuf_filled(struct linebuf *lb, size_t n)
{
	if (n > lb->cap - lb->end)
		n = lb->cap - lb->end; /* a caller bug; never write past the buffer */
	lb->end += n;
}

size_t linebuf_feed(struct linebuf *lb, const char *data, size_t len)
{
	size_t taken = 0;

	while (taken < len) {
		size_t room;
		char *p = linebuf_fill_ptr(lb, &room);
		if (room == 0)
			break;
		size_t n = len - taken < room ? len - taken : room;
		memcpy(p, data + taken, n);
		linebuf_filled(lb, n);
		taken += n;
	}
	return taken;
}

int linebuf_next(struct linebuf *lb, const char **line_r, size_t *len_r)
{
	*line_r = NULL;
	*len_r = 0;
	if (lb->broken)
		return LINEBUF_TOO_LONG;

	/* Search only the bytes that can still belong to a line of max bytes. */
	size_t limit = lb->start + lb->max; /* BOUNDS: start < cap = 2 * max <= SIZE_MAX / 2 */
	if (limit > lb->end)
		limit = lb->end;
	char *lf = NULL;
	if (lb->scan < limit)
		lf = memchr(lb->buf + lb->scan, '\n', limit - lb->scan);
	if (lf == NULL) {
		lb->scan = limit;
		if (lb->end - lb->start >= lb->max) {
			/* max bytes and no LF among them: the line needs more than max */
			lb->broken = true;
			return LINEBUF_TOO_LONG;
		}
		return 0;
	}

	char *line = lb->buf + lb->start;
	size_t pos = (size_t)(lf - lb->buf);
	size_t len = pos - lb->start;
	bool crlf = len > 0 && line[len - 1] == '\r';

	if (crlf)
		len--;
	/* consume the line and its terminator */
	lb->start = pos + 1;
	lb->scan = lb->start;
	if (lb->start == lb->end)
		lb->start = lb->scan = lb->end = 0; /* empty: restart at the front for free */
	line[len] = '\0';
	*line_r = line;
	*len_r = len;
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL)
		return LINEBUF_BAD_BYTE;
	return 1;
}

void linebuf_consume(struct linebuf *lb, size_t n)
{
	if (n > lb->end - lb->start)
		n = lb->end - lb->start;
	lb->start += n;
	if (lb->scan < lb->start)
		lb->scan = lb->start;
	if (lb->start == lb->end)
		lb->start = lb->scan = lb->end = 0;
}

size_t linebuf_pending(const struct linebuf *lb, const char **data_r)
{
	*data_r = lb->buf + lb->start;
	return lb->end - lb->start;
}

bool linebuf_has_line(const struct linebuf *lb)
{
	if (lb->broken)
		return true; /* linebuf_next() answers at once */
	if (lb->end - lb->start >= lb->max)
		return true; /* a line or LINEBUF_TOO_LONG */
	return lb->scan < lb->end && memchr(lb->buf + lb->scan, '\n', lb->end - lb->scan) != NULL;
}

void linebuf_set_max(struct linebuf *lb, size_t max)
{
	max = linebuf_clamp(max);
	if (max == lb->max)
		return;
	size_t pending = lb->end - lb->start;
	size_t cap = max * 2; /* BOUNDS: max <= SIZE_MAX / 4 (linebuf_clamp) */
	if (cap < pending)
		cap = pending;
	char *nbuf = xmalloc(cap);
	memcpy(nbuf, lb->buf + lb->start, pending);
	util_wipe(lb->buf, lb->cap);
	free(lb->buf);
	lb->buf = nbuf;
	lb->cap = cap;
	lb->max = max;
	/* [start, scan) held no LF; scan may now lie past start + max: linebuf_next()
	 * then finds the line too long, which it is */
	lb->scan -= lb->start;
	lb->end = pending;
	lb->start = 0;
}

size_t linebuf_max(const struct linebuf *lb)
{
	return lb->max;
}

void linebuf_reset(struct linebuf *lb)
{
	util_wipe(lb->buf, lb->end);
	lb->start = lb->scan = lb->end = 0;
	lb->broken = false;
}
