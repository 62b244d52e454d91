/* imap_qresync.c: SELECT/EXAMINE parameters (CONDSTORE, QRESYNC with known UIDs and
 * sequence match data) and FETCH modifiers (CHANGEDSINCE, VANISHED), from command lines
 * through the command parser as imapd gets them; every malformed form refused. */
#include <stdio.h>
#include <string.h>
#include "imap/imap_parser.h"
#include "imap/imap_qresync.h"
#include "unit.h"

static struct imap_parser *parser;

/* The command's argument n (a list), or NULL if the line does not parse. */
static const struct imap_arg *arg_of(const char *line, size_t n)
{
	imap_parser_begin(parser);
	if (imap_parser_feed_line(parser, line, strlen(line)) != IMAP_PARSE_DONE)
		return NULL;
	const struct imap_command *c = imap_parser_command(parser);
	return n < c->count ? &c->args[n] : NULL;
}

static int sel(const char *line, struct imap_select_params *p)
{
	const char *err = NULL;
	imap_select_params_init(p);
	const struct imap_arg *a = arg_of(line, 1);
	int r = a != NULL ? imap_select_params_parse(a, p, &err) : -2;
	if (r == -1)
		CHECK(err != NULL);
	return r;
}

static char setbuf_[256];
static const char *fmt(const struct imap_seqset *s)
{
	imap_seqset_format(s, setbuf_, sizeof(setbuf_));
	return setbuf_;
}

static void test_select(void)
{
	struct imap_select_params p;

	CHECK(sel("a SELECT INBOX (CONDSTORE)", &p) == 0 && p.condstore && !p.qresync);
	imap_select_params_free(&p);
	CHECK(sel("a SELECT INBOX (QRESYNC (67890007 90060115194045000))", &p) == 0);
	CHECK(p.qresync && !p.condstore && p.uidvalidity == 67890007 &&
	      p.modseq == 90060115194045000ULL && !p.have_known && !p.have_match);
	imap_select_params_free(&p);
	CHECK(sel("a EXAMINE INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))",
		  &p) == 0);
	CHECK(p.have_known && !p.have_match);
	CHECK_STR(fmt(&p.known), "41:211,214:541");
	imap_select_params_free(&p);
	/* RFC 7162 3.2.5.2's example, with CONDSTORE too, in either order */
	CHECK(sel("B04 SELECT INBOX (CONDSTORE QRESYNC (67890007 90060115194045000 1:29997 "
		  "(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,"
		  "29982,29985,29988,29991,29994,29997)))", &p) == 0);
	CHECK(p.condstore && p.qresync && p.have_known && p.have_match);
	CHECK_STR(fmt(&p.match_seqs), "5000,7500,9000,9990:9999");
	CHECK(imap_seqset_members(&p.match_uids) == 13);
	imap_select_params_free(&p);
	CHECK(sel("a SELECT INBOX (qresync (1 5 (1:2 3:4)) condstore)", &p) == 0);
	CHECK(p.condstore && p.qresync && !p.have_known && p.have_match && p.modseq == 5);
	CHECK_STR(fmt(&p.match_uids), "3:4");
	imap_select_params_free(&p);
	/* a mod-sequence of 0 (1*DIGIT): every change */
	CHECK(sel("a SELECT INBOX (QRESYNC (1 0))", &p) == 0 && p.modseq == 0);
	imap_select_params_free(&p);
	CHECK(sel("a SELECT INBOX (QRESYNC (1 9223372036854775807))", &p) == 0);
	imap_select_params_free(&p);

	static const char *const bad[] = {
		"a SELECT INBOX ()",
		"a SELECT INBOX (FOO)",
		"a SELECT INBOX (CONDSTORE CONDSTORE)",
		"a SELECT INBOX (QRESYNC)",
		"a SELECT INBOX (QRESYNC 1 2)",
		"a SELECT INBOX (QRESYNC ())",
		"a SELECT INBOX (QRESYNC (1))",
		"a SELECT INBOX (QRESYNC (0 5))",              /* uidvalidity is nz-number */
		"a SELECT INBOX (QRESYNC (x 5))",
		"a SELECT INBOX (QRESYNC (1 -5))",
		"a SELECT INBOX (QRESYNC (1 9223372036854775808))", /* past 63 bits */
		"a SELECT INBOX (QRESYNC (4294967296 5))",
		"a SELECT INBOX (QRESYNC (1 5 1:*))",           /* "*" is not allowed */
		"a SELECT INBOX (QRESYNC (1 5 $))",
		"a SELECT INBOX (QRESYNC (1 5 0:3))",
		"a SELECT INBOX (QRESYNC (1 5 1:3 (1:3)))",
		"a SELECT INBOX (QRESYNC (1 5 1:3 (1:3 2 4)))",
		"a SELECT INBOX (QRESYNC (1 5 1:3 (1:* 1:3)))",
		"a SELECT INBOX (QRESYNC (1 5 1:3 (1:3 1:3) x))",
		"a SELECT INBOX (QRESYNC (1 5 1:3 1:3))",
		"a SELECT INBOX (QRESYNC (1 5 \"1:3\"))",
		"a SELECT INBOX (QRESYNC (1 5) QRESYNC (1 5))",
		"a SELECT INBOX CONDSTORE",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = sel(bad[i], &p);
		if (r != -1)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(r == -1);
		imap_select_params_free(&p);
	}
}

static int mods(const char *line, struct imap_fetch_mods *m)
{
	const char *err = NULL;
	const struct imap_arg *a = arg_of(line, 2);
	int r = a != NULL ? imap_fetch_mods_parse(a, m, &err) : -2;
	if (r == -1)
		CHECK(err != NULL);
	return r;
}

static void test_fetch_mods(void)
{
	struct imap_fetch_mods m;

	CHECK(mods("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)", &m) == 0 &&
	      m.changedsince == 12345 && !m.vanished);
	CHECK(mods("a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)", &m) == 0 &&
	      m.changedsince == 12345 && m.vanished);
	CHECK(mods("a UID FETCH 300:500 FLAGS (vanished changedsince 7)", &m) == 0 &&
	      m.changedsince == 7 && m.vanished);
	/* VANISHED alone parses: the session refuses it without CHANGEDSINCE */
	CHECK(mods("a UID FETCH 1 FLAGS (VANISHED)", &m) == 0 && m.vanished &&
	      m.changedsince == 0);
	static const char *const bad[] = {
		"a FETCH 1 FLAGS ()",
		"a FETCH 1 FLAGS (CHANGEDSINCE)",
		"a FETCH 1 FLAGS (CHANGEDSINCE 0)",
		"a FETCH 1 FLAGS (CHANGEDSINCE x)",
		"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)",
		"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)",
		"a FETCH 1 FLAGS (VANISHED VANISHED)",
		"a FETCH 1 FLAGS (CHANGEDSINCE (1))",
		"a FETCH 1 FLAGS (FOO)",
		"a FETCH 1 FLAGS CHANGEDSINCE",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = mods(bad[i], &m);
		if (r != -1)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(r == -1);
	}
}

int main(void)
{
	struct imap_parser_settings set = { .logged_in = true };
	parser = imap_parser_new(&set);
	test_select();
	test_fetch_mods();
	imap_parser_free(&parser);
	return unit_done("imap_qresync");
}
