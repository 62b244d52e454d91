/* imap_respcheck.c: the checker the FETCH tests and fuzz targets rely on must refuse
 * what a client could not parse (a raw CR/LF in a quoted string, a short literal, an
 * unbalanced list, NUL in a literal, 8-bit quoted without UTF-8) and accept the
 * response forms (adjacent lists, literal8, NIL, numbers). */
#include <stdlib.h>
#include <string.h>
#include "imap/imap_respcheck.h"
#include "unit.h"

struct rcase {
	const char *in;
	size_t len;             /* 0: strlen */
	bool utf8;
	bool ok;
	const char *respaced;   /* expected copy (ok cases), NULL: same as in */
	unsigned depth;
};

static const struct rcase rcases[] = {
	{ "NIL", 0, false, true, NULL, 0 },
	{ "(NIL \"a\" 12)", 0, false, true, NULL, 1 },
	{ "((\"a\" NIL \"b\" \"c\")(NIL NIL \"d\" NIL))", 0, false, true,
	  "((\"a\" NIL \"b\" \"c\") (NIL NIL \"d\" NIL))", 2 },
	{ "({4}\r\na\r\nb \"x\")", 0, false, true, NULL, 1 },
	{ "(~{3}\r\na\0b)", 11, false, true, NULL, 1 },
	{ "({3}\r\na\0b)", 10, false, false, NULL, 0 },          /* NUL in a literal */
	{ "({4}\r\nabc)", 0, false, false, NULL, 0 },            /* literal runs past */
	{ "(\"a\r\nb\")", 0, false, false, NULL, 0 },            /* CR LF quoted */
	{ "(\"a\\nb\")", 0, false, false, NULL, 0 },             /* bad escape */
	{ "(\"\\\"\\\\\")", 0, false, true, NULL, 1 },
	{ "(\"\xc3\xa4\")", 0, false, false, NULL, 0 },          /* 8-bit quoted */
	{ "(\"\xc3\xa4\")", 0, true, true, NULL, 1 },
	{ "((a)", 0, false, false, NULL, 0 },                    /* unbalanced */
	{ "(a))", 0, false, false, NULL, 0 },                    /* trailing bytes */
	{ "(a  b)", 0, false, false, NULL, 0 },                  /* double space */
	{ "(a )", 0, false, false, NULL, 0 },
	{ "(a(b))", 0, false, false, NULL, 0 },                  /* atom then list */
	{ "()", 0, false, true, NULL, 1 },
	{ "", 0, false, false, NULL, 0 },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		const struct rcase *c = &rcases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		char *sp = NULL;
		size_t splen = 0;
		unsigned depth = 0;
		bool ok = imap_respcheck_value(c->in, len, c->utf8, &sp, &splen, &depth);
		CHECK(ok == c->ok);
		if (!ok) {
			CHECK(sp == NULL);
			continue;
		}
		const char *want = c->respaced != NULL ? c->respaced : c->in;
		size_t wlen = c->respaced != NULL ? strlen(c->respaced) : len;
		CHECK(splen == wlen && memcmp(sp, want, wlen) == 0);
		CHECK(depth == c->depth);
		/* the command parser takes literal8 only in APPEND: not read back */
		CHECK(imap_respcheck_reparse(sp, splen, c->utf8) ==
		      (c->in[0] == '(' && strchr(c->in, '~') == NULL));
		free(sp);
	}
	/* the reparse refuses what is not one list */
	CHECK(!imap_respcheck_reparse("(a) (b)", 7, false));
	CHECK(!imap_respcheck_reparse("a", 1, false));
	return unit_done("test_imap_respcheck");
}
