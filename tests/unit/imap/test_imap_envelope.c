/* imap_envelope.c: a table of headers and the ENVELOPE each must give: the RFC 3501
 * example, groups and obs-routes, Sender/Reply-To defaulting to From, 8-bit subjects as
 * literals or (UTF8=ACCEPT) quoted, raw encoded words, NUL and CR in values. */
#include <stdlib.h>
#include <string.h>
#include "imap/imap_envelope.h"
#include "imap/imap_respcheck.h"
#include "unit.h"

struct ecase {
	const char *hdr;        /* the message's header (LF line ends; "\n" body added) */
	size_t hdr_len;         /* 0: strlen */
	unsigned flags;
	const char *out;
};

#define FROM_TG "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\"))"
static const struct ecase ecases[] = {
	/* RFC 3501 section 7.4.2's example */
	{ "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n"
	  "From: Terry Gray <gray@cac.washington.edu>\n"
	  "Subject: IMAP4rev1 WG mtg summary and minutes\n"
	  "To: imap@cac.washington.edu\n"
	  "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\n"
	  "Message-Id: <B27397-0100000@cac.washington.edu>\n", 0, 0,
	  "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
	  FROM_TG " " FROM_TG " " FROM_TG " ((NIL NIL \"imap\" \"cac.washington.edu\")) "
	  "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" "
	  "\"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\")" },
	/* nothing at all */
	{ "X-Other: 1\n", 0, 0, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)" },
	/* groups: empty, with members, then a mailbox after */
	{ "From: a@b\nTo: undisclosed-recipients:;\n"
	  "Cc: Friends: x@y, \"Bob B\" <bob@z>;, last@l\n", 0, 0,
	  "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
	  "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
	  "((NIL NIL \"Friends\" NIL)(NIL NIL \"x\" \"y\")(\"Bob B\" NIL \"bob\" \"z\")"
	  "(NIL NIL NIL NIL)(NIL NIL \"last\" \"l\")) NIL NIL NIL)" },
	/* obs-route: adl */
	{ "From: Joe <@r1.example,@r2.example:joe@x.example>\n", 0, 0,
	  "(NIL NIL ((\"Joe\" \"@r1.example,@r2.example\" \"joe\" \"x.example\")) "
	  "((\"Joe\" \"@r1.example,@r2.example\" \"joe\" \"x.example\")) "
	  "((\"Joe\" \"@r1.example,@r2.example\" \"joe\" \"x.example\")) NIL NIL NIL NIL NIL)" },
	/* Sender and Reply-To present but empty: From; present: their own */
	{ "From: a@b\nSender:\nReply-To: r@s\n", 0, 0,
	  "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"r\" \"s\")) "
	  "NIL NIL NIL NIL NIL)" },
	/* no From: Sender and Reply-To stay NIL (nothing to copy) */
	{ "Sender: s@t\n", 0, 0,
	  "(NIL NIL NIL ((NIL NIL \"s\" \"t\")) NIL NIL NIL NIL NIL NIL)" },
	/* 8-bit subject: a literal; with UTF8=ACCEPT quoted; invalid UTF-8 a literal anyway */
	{ "Subject: Gr\xc3\xbc\xc3\x9f" "e\n", 0, 0,
	  "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f" "e NIL NIL NIL NIL NIL NIL NIL NIL)" },
	{ "Subject: Gr\xc3\xbc\xc3\x9f" "e\n", 0, IMAP_WRITE_UTF8,
	  "(NIL \"Gr\xc3\xbc\xc3\x9f" "e\" NIL NIL NIL NIL NIL NIL NIL NIL)" },
	{ "Subject: \xff\n", 0, IMAP_WRITE_UTF8,
	  "(NIL {1}\r\n\xff NIL NIL NIL NIL NIL NIL NIL NIL)" },
	/* 8-bit display name */
	{ "From: J\xc3\xb6rg <j@x>\n", 0, 0,
	  "(NIL NIL (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
	  "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) NIL NIL NIL NIL NIL)" },
	/* encoded words are not decoded; quotes and backslashes escaped */
	{ "Subject: =?utf-8?q?caf=C3=A9?= \"q\" \\\n", 0, 0,
	  "(NIL \"=?utf-8?q?caf=C3=A9?= \\\"q\\\" \\\\\" NIL NIL NIL NIL NIL NIL NIL NIL)" },
	/* folded subject: unfolded; empty subject: "" (present), not NIL */
	{ "Subject: a\n\tb\nIn-Reply-To:\n", 0, 0,
	  "(NIL {3}\r\na\tb NIL NIL NIL NIL NIL NIL \"\" NIL)" },   /* TAB: imap_write's literal */
	/* NUL becomes a space; a lone CR forces a literal (never raw in a quoted string) */
	{ "Subject: a\0b\nMessage-ID: x\ry\n", 29, 0,
	  "(NIL \"a b\" NIL NIL NIL NIL NIL NIL NIL {3}\r\nx\ry)" },
	/* the first of repeated fields; Bcc */
	{ "Subject: one\nSubject: two\nBcc: hidden@x\n", 0, 0,
	  "(NIL \"one\" NIL NIL NIL NIL NIL ((NIL NIL \"hidden\" \"x\")) NIL NIL)" },
	/* missing domain / local part: never a NIL host */
	{ "To: user, <>\n", 0, 0,
	  "(NIL NIL NIL NIL NIL ((NIL NIL \"user\" \"MISSING_DOMAIN\")"
	  "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) NIL NIL NIL NIL)" },
};

static char *envelope_of(const char *hdr, size_t len, unsigned flags, size_t max, int *ret)
{
	struct mime_parser *p = mime_parser_new();
	mime_parser_feed(p, hdr, len);
	mime_parser_feed(p, "\nbody\n", 6);
	struct mime_part *root;
	struct mail_envelope_fields *env;
	mime_parser_finish(&p, &root, &env);
	struct imap_buf b;
	imap_buf_init(&b, max);
	*ret = imap_envelope_write(&b, env, flags);
	char *s = b.data != NULL ? strdup(b.data) : strdup("");
	imap_buf_free(&b);
	mime_envelope_free(&env);
	mime_part_free(&root);
	return s;
}

/* Well-formed response syntax, and the command parser reads it back as one list. */
static bool parses(const char *s, bool utf8)
{
	char *sp;
	size_t splen;
	if (!imap_respcheck_value(s, strlen(s), utf8, &sp, &splen, NULL))
		return false;
	bool ok = imap_respcheck_reparse(sp, splen, utf8);
	free(sp);
	return ok;
}

int main(void)
{
	for (size_t i = 0; i < sizeof(ecases) / sizeof(ecases[0]); i++) {
		const struct ecase *c = &ecases[i];
		int r;
		char *s = envelope_of(c->hdr, c->hdr_len ? c->hdr_len : strlen(c->hdr),
				      c->flags, 1 << 20, &r);
		CHECK(r == 0);
		CHECK_STR(s, c->out);
		if (!parses(s, (c->flags & IMAP_WRITE_UTF8) != 0))
			fprintf(stderr, "case %zu does not parse\n", i);
		CHECK(parses(s, (c->flags & IMAP_WRITE_UTF8) != 0));
		free(s);
	}
	/* every prefix of the bound: -1 and overflow, never a crash */
	const struct ecase *c = &ecases[0];
	size_t full = strlen(c->out);
	for (size_t max = 0; max < full; max += 7) {
		int r;
		char *s = envelope_of(c->hdr, strlen(c->hdr), 0, max, &r);
		CHECK(r == -1);
		free(s);
	}
	/* NULL envelope: every member NIL */
	struct imap_buf b;
	imap_buf_init(&b, 1024);
	CHECK(imap_envelope_write(&b, NULL, 0) == 0);
	CHECK_STR(b.data, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	imap_buf_free(&b);
	return unit_done("test_imap_envelope");
}
