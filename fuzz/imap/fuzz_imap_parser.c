/* libFuzzer: imap_parser.c driven as imapd drives it (lines split at LF, literal bytes
 * fed in chunks, streamed APPEND messages skipped), over a stream of commands.  Byte 0:
 * settings (logged in, LITERAL-, UTF-8) and the chunk size of literal feeding; the rest is
 * the client's input.  Checks: the outcome does not depend on the chunking; a finished
 * command's tree is well formed (strings NUL-terminated, lengths within the input, NUL only
 * in literal8, nesting within IMAP_MAX_LIST_DEPTH, at most IMAP_MAX_ARGS nodes); every atom
 * goes through the accessors and the fetch-att parser, every list through the SELECT
 * parameter and FETCH modifier parsers (imap_qresync). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "imap/imap_fetchatt.h"
#include "imap/imap_parser.h"
#include "imap/imap_qresync.h"

static size_t walk(const struct imap_arg *a, size_t n, unsigned depth, uint64_t *h)
{
	size_t nodes = 0;
	if (depth > IMAP_MAX_LIST_DEPTH)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct imap_arg *x = &a[i];
		nodes++;
		*h = *h * 31 + x->type + x->len + x->count + x->size;
		if (x->type == IMAP_ARG_LIST) {
			/* every list as SELECT parameters and FETCH modifiers (imap_qresync) */
			struct imap_select_params sp;
			struct imap_fetch_mods fm;
			const char *err;
			imap_select_params_init(&sp);
			if (imap_select_params_parse(x, &sp, &err) == 0 && sp.qresync &&
			    (sp.uidvalidity == 0 || sp.modseq > IMAP_MODSEQ_MAX ||
			     (sp.have_known && sp.known.count == 0)))
				abort();
			imap_select_params_free(&sp);
			if (imap_fetch_mods_parse(x, &fm, &err) == 0 &&
			    fm.changedsince > IMAP_MODSEQ_MAX)
				abort();
			nodes += walk(x->list, x->count, depth + 1, h);
			continue;
		}
		if (x->type == IMAP_ARG_STREAMED)
			continue;
		if (x->str == NULL || x->str[x->len] != '\0')
			abort();
		if (x->type != IMAP_ARG_LITERAL8 && memchr(x->str, '\0', x->len) != NULL)
			abort();
		for (size_t k = 0; k < x->len; k++)
			*h = *h * 131 + (unsigned char)x->str[k];
		const char *s;
		size_t len;
		uint32_t n32;
		uint64_t n64;
		(void)imap_arg_atom(x, &s);
		(void)imap_arg_astring(x, &s, &len);
		(void)imap_arg_nstring(x, &s, &len);
		(void)imap_arg_list_mailbox(x, &s, &len);
		(void)imap_arg_number(x, &n32);
		(void)imap_arg_number64(x, &n64);
		(void)imap_arg_flag(x, &s);
		if (x->type == IMAP_ARG_ATOM) {
			struct imap_fetch_section sec;
			const char *err;
			if (imap_fetch_section_parse(x->str, x->len, &sec, &err) == 0 &&
			    (sec.nparts > IMAP_SECTION_MAX_PARTS ||
			     sec.nfields > IMAP_SECTION_MAX_FIELDS))
				abort();
		}
	}
	return nodes;
}

static uint64_t run(const uint8_t *in, size_t len, const struct imap_parser_settings *set,
		    size_t chunk)
{
	struct imap_parser *p = imap_parser_new(set);
	uint64_t h = 1;
	size_t pos = 0;
	while (pos < len) {
		imap_parser_begin(p);
		int r;
		for (;;) {
			const uint8_t *nl = memchr(in + pos, '\n', len - pos);
			size_t ll = nl != NULL ? (size_t)(nl - (in + pos)) : len - pos;
			r = imap_parser_feed_line(p, (const char *)in + pos, ll);
			pos += nl != NULL ? ll + 1 : ll;
			if (r == IMAP_PARSE_LITERAL || r == IMAP_PARSE_SKIP) {
				while (imap_parser_literal_left(p) > 0 && pos < len) {
					size_t n = chunk < len - pos ? chunk : len - pos;
					size_t k = imap_parser_feed_literal(p, in + pos, n);
					if (k > n || k == 0)
						abort();
					pos += k;
				}
				if (imap_parser_literal_left(p) > 0)
					break;
			} else if (r == IMAP_PARSE_STREAM) {
				const struct imap_command *c = imap_parser_command(p);
				uint64_t n = imap_parser_need(p)->size;
				if (n > set->append_max || !set->logged_in)
					abort();
				h = h * 7 + walk(c->args, c->count, 0, &h);
				pos += n < len - pos ? (size_t)n : len - pos;
				imap_parser_streamed(p);
			}
			if (r <= IMAP_PARSE_DONE)
				break;
			if (pos >= len)
				break;
		}
		h = h * 1000003 + (uint64_t)(r + 10);
		if (r == IMAP_PARSE_DONE) {
			const struct imap_command *c = imap_parser_command(p);
			if (c->tag == NULL || c->name == NULL || c->name[0] == '\0')
				abort();
			if (walk(c->args, c->count, 0, &h) > IMAP_MAX_ARGS)
				abort();
		} else if (r == IMAP_PARSE_BAD || r == IMAP_PARSE_CLOSE) {
			const char *code;
			bool no;
			const char *msg = imap_parser_error(p, &code, &no);
			if (msg == NULL)
				abort();
			h = h * 31 + strlen(msg);
			if (r == IMAP_PARSE_CLOSE)
				break;
		} else {
			break;   /* the input ended inside a command */
		}
	}
	imap_parser_free(&p);
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct imap_parser_settings set = {
		.logged_in = (data[0] & 1) != 0,
		.literal_minus = (data[0] & 2) != 0,
		.utf8 = (data[0] & 4) != 0,
		.append_max = 100,
	};
	size_t chunk = 1 + (data[0] >> 3);
	uint64_t a = run(data + 1, size - 1, &set, SIZE_MAX);
	uint64_t b = run(data + 1, size - 1, &set, chunk);
	if (a != b)
		abort();
	return 0;
}
