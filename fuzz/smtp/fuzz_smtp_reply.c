/* libFuzzer: the client's reply parser (common/smtp/smtp_response.c) and the reply
 * writer (smtp_reply.c).  Byte 0 picks the chunking; the rest is what a server sends.
 * Checks: fed whole or in chunks the parser gives the same replies (count, codes, line
 * counts, texts) and the same error point; every reply has one code on all lines, at
 * most SMTP_MAX_REPLY_LINES lines, no CR or LF in a text; EHLO extraction runs on
 * every 250; and every reply, written back by smtp_reply_format() when it fits, parses
 * to the same code and lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "smtp/smtp_reply.h"
#include "smtp/smtp_response.h"

#define MAX_REPLIES 64

struct summary {
	size_t n;
	unsigned code[MAX_REPLIES];
	size_t nlines[MAX_REPLIES];
	uint32_t hash[MAX_REPLIES];
	bool error;
	size_t taken;
};

static struct smtp_response_parser p, p2;

static uint32_t hash_reply(const struct smtp_response *r)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < r->nlines; i++) {
		for (size_t j = 0; j < r->line_len[i]; j++)
			h = (h ^ (uint8_t)r->lines[i][j]) * 16777619u;
		h = (h ^ 0x100) * 16777619u;
	}
	return h;
}

static void check_reply(const struct smtp_response *r)
{
	struct smtp_ehlo e;
	char buf[SMTP_MAX_REPLY_SIZE * 2];
	size_t len, used;
	const char *err;

	if (r->nlines == 0 || r->nlines > SMTP_MAX_REPLY_LINES || r->code < 200 || r->code > 559)
		abort();
	for (size_t i = 0; i < r->nlines; i++)
		if (memchr(r->lines[i], '\r', r->line_len[i]) || memchr(r->lines[i], '\n', r->line_len[i]) ||
		    r->lines[i][r->line_len[i]] != '\0')
			abort();
	if (r->enh_given && (r->enh_class != r->code / 100 || strlen(r->enh) > 9))
		abort();
	if (r->code == 250)
		(void)smtp_response_ehlo(r, &e);
	/* write it back (without a status code: the texts keep theirs) and parse again */
	if (smtp_reply_format(buf, sizeof(buf), r->code, NULL, r->lines, r->nlines, &len) == 0) {
		smtp_response_init(&p2);
		if (smtp_response_feed(&p2, buf, len, &used, &err) != 1 || used != len ||
		    p2.resp.code != r->code || p2.resp.nlines != r->nlines ||
		    hash_reply(&p2.resp) != hash_reply(r))
			abort();
	}
}

static void run(const uint8_t *in, size_t len, unsigned mode, struct summary *s)
{
	uint32_t x = mode * 2654435761u + 1;
	size_t i = 0;

	memset(s, 0, sizeof(*s));
	smtp_response_init(&p);
	while (i < len) {
		size_t c = mode == 0 ? len - i : mode == 1 ? 1 : 1 + ((x = x * 1103515245u + 12345u) >> 16) % 13;
		if (c > len - i)
			c = len - i;
		size_t off = 0;
		while (off < c) {
			size_t used;
			const char *err;
			int r = smtp_response_feed(&p, (const char *)in + i + off, c - off, &used, &err);
			if (used > c - off)
				abort();
			off += used;
			if (r < 0) {
				s->error = true;
				s->taken = i + off;
				return;
			}
			if (r == 1) {
				check_reply(&p.resp);
				if (s->n < MAX_REPLIES) {
					s->code[s->n] = p.resp.code;
					s->nlines[s->n] = p.resp.nlines;
					s->hash[s->n] = hash_reply(&p.resp);
				}
				s->n++;
			} else if (off != c) {
				abort();
			}
		}
		i += c;
	}
	s->taken = i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct summary a, b;

	if (size < 1)
		return 0;
	run(data + 1, size - 1, 0, &a);
	run(data + 1, size - 1, 1 + data[0] % 5, &b);
	if (a.n != b.n || a.error != b.error)
		abort();
	for (size_t i = 0; i < a.n && i < MAX_REPLIES; i++)
		if (a.code[i] != b.code[i] || a.nlines[i] != b.nlines[i] || a.hash[i] != b.hash[i])
			abort();
	return 0;
}
