/* libFuzzer: envelope_parse(), the reader of the spool's envelope files, which root
 * reads as hostile input.  Checks: no crash or leak; what parses holds only what the
 * format allows (at most SPOOL_MAX_RCPTS recipients, at least one, strings without
 * control bytes, next-try exactly on deferred recipients); written back it parses again
 * and writing that gives the same bytes (the writer's form is canonical); the delivery
 * token of every recipient is well formed and found by envelope_token_find() in a
 * header that carries it; envelope_next_due() and envelope_done() agree. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spool/envelope.h"

static void check_str(const char *s)
{
	if (s == NULL)
		return;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7F)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope *e, *back;
	const char *err;
	unsigned line;
	char *a, *b;
	size_t alen, blen;

	if (envelope_parse((const char *)data, size, &e, &line, &err) == -1) {
		if (e != NULL || err == NULL)
			abort();
		return 0;
	}
	if (e->rcpt_count == 0 || e->rcpt_count > SPOOL_MAX_RCPTS ||
	    !envelope_id_valid(e->id, strlen(e->id)))
		abort();
	check_str(e->sender);
	check_str(e->auth);
	check_str(e->envid);
	check_str(e->helo);
	check_str(e->tls);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct envelope_rcpt *r = &e->rcpts[i];
		check_str(r->addr);
		check_str(r->orcpt);
		check_str(r->reply);
		check_str(r->reply_mta);
		if (r->state != ENVELOPE_DEFERRED && r->next_try != 0)
			abort();
		if (r->inflight != 0 && envelope_rcpt_done(r))
			abort();
		char tok[ENVELOPE_TOKEN_LEN + 1], hdr[ENVELOPE_TOKEN_LEN + 64];
		if (envelope_token(e, i, tok, sizeof(tok)) == -1 ||
		    strlen(tok) != ENVELOPE_TOKEN_LEN || memcmp(tok, e->id, ENVELOPE_ID_LEN) != 0)
			abort();
		int n = snprintf(hdr, sizeof(hdr), "%s: %s\r\n\r\n", ENVELOPE_TOKEN_FIELD, tok);
		if (n <= 0 || !envelope_token_find(hdr, (size_t)n, tok))
			abort();
	}
	if (envelope_done(e) && envelope_next_due(e) != 0)
		abort();
	/* canonical: write, parse, write gives the same bytes */
	if (envelope_write(e, &a, &alen, &err) == -1)
		abort();
	if (envelope_parse(a, alen, &back, NULL, &err) == -1)
		abort();
	if (envelope_write(back, &b, &blen, &err) == -1 || alen != blen ||
	    memcmp(a, b, alen) != 0)
		abort();
	if (back->rcpt_count != e->rcpt_count || back->size != e->size ||
	    strcmp(back->sender, e->sender) != 0)
		abort();
	free(a);
	free(b);
	envelope_free(&back);
	envelope_free(&e);
	return 0;
}
