/* libFuzzer: the line reader.  The first three bytes choose max, a chunk size and a second
 * max that linebuf_set_max() sets after the first line (a new protocol state, with input
 * pipelined behind that line); the rest is fed whole and then in chunks, and both runs
 * must return the same lines, codes and leftovers.  Checked on every step: linebuf_has_line() predicts linebuf_next() exactly,
 * a returned line fits max with its terminator, is NUL-terminated and holds no NUL or
 * CR, and LINEBUF_TOO_LONG is sticky. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/linebuf.h"

struct trace {
	unsigned char *buf;
	size_t len, cap;
};

static void trace_add(struct trace *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2 + 64;
		t->buf = realloc(t->buf, t->cap);
		if (t->buf == NULL)
			abort();
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

/* Take what the reader has; false once it is broken.  After the first line the limit
 * becomes *max2 (0: unchanged). */
static int drain(struct linebuf *lb, size_t *max, size_t *max2, struct trace *t)
{
	for (;;) {
		const char *line;
		size_t len;
		int predicted = linebuf_has_line(lb);
		int r = linebuf_next(lb, &line, &len);
		if ((r != 0) != predicted)
			__builtin_trap();
		if (r == 0)
			return 1;
		unsigned char code = (unsigned char)(r + 10);
		trace_add(t, &code, 1);
		if (r == LINEBUF_TOO_LONG) {
			if (linebuf_next(lb, &line, &len) != LINEBUF_TOO_LONG || !linebuf_has_line(lb))
				__builtin_trap();
			return 0;
		}
		if (r != 1 && r != LINEBUF_BAD_BYTE)
			__builtin_trap();
		if (line == NULL || line[len] != '\0' || len + 1 > *max)
			__builtin_trap();
		if (r == 1 && (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL))
			__builtin_trap();
		if (r == LINEBUF_BAD_BYTE && memchr(line, '\0', len) == NULL &&
		    memchr(line, '\r', len) == NULL)
			__builtin_trap();
		trace_add(t, &len, sizeof(len));
		trace_add(t, line, len);
		if (*max2 != 0) {
			const char *before;
			size_t pending = linebuf_pending(lb, &before);
			linebuf_set_max(lb, *max2);
			const char *after;
			if (linebuf_pending(lb, &after) != pending || linebuf_max(lb) != *max2)
				__builtin_trap(); /* nothing buffered is lost */
			*max = *max2;
			*max2 = 0;
		}
	}
}

static void run(const uint8_t *data, size_t size, size_t max, size_t max2, size_t chunk,
		struct trace *t)
{
	struct linebuf *lb = linebuf_new(max);
	size_t off = 0;
	int alive = 1;

	while (alive && off < size) {
		size_t n = chunk == 0 || chunk > size - off ? size - off : chunk;
		size_t room;
		char *p = linebuf_fill_ptr(lb, &room);
		if (room == 0)
			__builtin_trap(); /* drain() said a line can still complete */
		if (n > room)
			n = room;
		memcpy(p, data + off, n);
		linebuf_filled(lb, n);
		off += n;
		alive = drain(lb, &max, &max2, t);
	}
	if (alive) {
		const char *rest;
		size_t n = linebuf_pending(lb, &rest);
		unsigned char code = 0xee;
		trace_add(t, &code, 1);
		trace_add(t, rest, n);
		/* a raw reader taking part of the leftovers, then lines again */
		if (n > 1) {
			linebuf_consume(lb, n / 2);
			const char *again;
			if (linebuf_pending(lb, &again) != n - n / 2)
				__builtin_trap();
			struct trace scratch = { 0 };
			drain(lb, &max, &max2, &scratch);
			free(scratch.buf);
		}
	}
	linebuf_reset(lb);
	const char *line;
	size_t len;
	if (linebuf_next(lb, &line, &len) != 0)
		__builtin_trap();
	linebuf_free(&lb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	size_t max = 3 + data[0] % 64;
	size_t chunk = 1 + data[1] % 17;
	size_t max2 = data[2] < 128 ? 0 : 3 + data[2] % 100;
	struct trace whole = { 0 }, pieces = { 0 };

	run(data + 3, size - 3, max, max2, 0, &whole);
	run(data + 3, size - 3, max, max2, chunk, &pieces);
	if (whole.len != pieces.len || (whole.len > 0 && memcmp(whole.buf, pieces.buf, whole.len) != 0))
		__builtin_trap();
	free(whole.buf);
	free(pieces.buf);
	return 0;
}
