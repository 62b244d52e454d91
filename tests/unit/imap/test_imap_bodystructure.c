/* imap_bodystructure.c: messages and the BODY / BODYSTRUCTURE each must give: the shape
 * of RFC 3501 section 7.4.2's example, a multipart/mixed holding a message/rfc822 with
 * its own multipart, extension data (md5, disposition, language string and list,
 * location), RFC 2231 parameters, the made-up body of a multipart without parts, an
 * unparsed message/rfc822, message/global with and without IMAP4rev2; the same message
 * with CRLF gives the same output; every output is well-formed response syntax. */
#include <stdlib.h>
#include <string.h>
#include "imap/imap_bodystructure.h"
#include "imap/imap_respcheck.h"
#include "unit.h"

static const char msg_rfc[] =
	"From: Ann <ann@example.org>\n"
		"Subject: test\n"
		"MIME-Version: 1.0\n"
		"Content-Type: multipart/mixed; boundary=\"b1\"\n"
		"\n"
		"--b1\n"
		"Content-Type: text/plain; charset=US-ASCII\n"
		"\n"
		"hello\n"
		"--b1\n"
		"Content-Type: text/plain; charset=US-ASCII; name=\"cc.diff\"\n"
		"Content-ID: <960723163407.20117h@cac.washington.edu>\n"
		"Content-Description: Compiler diff\n"
		"Content-Transfer-Encoding: BASE64\n"
		"\n"
		"aGVsbG8K\n"
		"--b1--\n"
		"";

static const char msg_nested[] =
	"From: outer@example.org\n"
		"Subject: nested\n"
		"Content-Type: multipart/mixed; boundary=outer\n"
		"\n"
		"preamble\n"
		"--outer\n"
		"Content-Type: text/plain; charset=utf-8\n"
		"Content-Language: en\n"
		"\n"
		"first\n"
		"line\n"
		"--outer\n"
		"Content-Type: message/rfc822\n"
		"Content-Disposition: inline\n"
		"\n"
		"From: Inner <inner@example.net>\n"
		"To: Group: a@b;\n"
		"Subject: inner\n"
		"Content-Type: multipart/alternative; boundary=\"alt\"\n"
		"\n"
		"--alt\n"
		"Content-Type: text/plain\n"
		"\n"
		"plain\n"
		"--alt\n"
		"Content-Type: text/html; charset=\"us-ascii\"\n"
		"Content-Transfer-Encoding: quoted-printable\n"
		"\n"
		"<b>x=3D</b>\n"
		"--alt--\n"
		"--outer\n"
		"Content-Type: image/gif; name*=utf-8''%E2%82%AC.gif\n"
		"Content-Transfer-Encoding: base64\n"
		"Content-Disposition: attachment; filename*0=\"long\"; filename*1=\".gif\"\n"
		"Content-Language: en, de\n"
		"Content-Location: http://x/y\n"
		"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
		"Content-ID: <id@x>\n"
		"Content-Description: a picture\n"
		"\n"
		"R0lGODlh\n"
		"--outer--\n"
		"epilogue\n"
		"";

struct bcase {
	const char *msg;
	unsigned flags;
	const char *out;
};

#define INNER_ENV "(NIL \"inner\" ((\"Inner\" NIL \"inner\" \"example.net\")) " \
	"((\"Inner\" NIL \"inner\" \"example.net\")) ((\"Inner\" NIL \"inner\" \"example.net\")) " \
	"((NIL NIL \"Group\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL)) NIL NIL NIL NIL)"
#define MADE_UP(n) "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" " n
#define EMPTY_TEXT MADE_UP("0 0")

static const struct bcase bcases[] = {
	/* RFC 3501 section 7.4.2's example shape (sizes of this message) */
	{ msg_rfc, 0,
	  "((\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 5 1)"
	  "(\"text\" \"plain\" (\"charset\" \"US-ASCII\" \"name\" \"cc.diff\") "
	  "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"base64\" 8 1) "
	  "\"mixed\")" },
	{ msg_rfc, IMAP_BS_EXTENDED,
	  "((\"text\" \"plain\" (\"charset\" \"US-ASCII\") NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL)"
	  "(\"text\" \"plain\" (\"charset\" \"US-ASCII\" \"name\" \"cc.diff\") "
	  "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"base64\" 8 1 "
	  "NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)" },
	/* nested: message/rfc822 with its own multipart/alternative */
	{ msg_nested, 0,
	  "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 2)"
	  "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 282 " INNER_ENV " "
	  "((\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1)(\"text\" \"html\" (\"charset\" "
	  "\"us-ascii\") NIL NIL \"quoted-printable\" 11 1) \"alternative\") 15)"
	  "(\"image\" \"gif\" (\"name*\" \"utf-8''%E2%82%AC.gif\") \"<id@x>\" \"a picture\" "
	  "\"base64\" 8) \"mixed\")" },
	{ msg_nested, IMAP_BS_EXTENDED,
	  "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 2 NIL NIL \"en\" NIL)"
	  "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 282 " INNER_ENV " "
	  "((\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL)(\"text\" \"html\" "
	  "(\"charset\" \"us-ascii\") NIL NIL \"quoted-printable\" 11 1 NIL NIL NIL NIL) "
	  "\"alternative\" (\"boundary\" \"alt\") NIL NIL NIL) 15 NIL (\"inline\" NIL) NIL NIL)"
	  "(\"image\" \"gif\" (\"name*\" \"utf-8''%E2%82%AC.gif\") \"<id@x>\" \"a picture\" "
	  "\"base64\" 8 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" (\"filename\" \"long.gif\")) "
	  "(\"en\" \"de\") \"http://x/y\") \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)" },
	/* no Content-Type: text/plain; charset=us-ascii */
	{ "Subject: x\n\nab\ncd\n", IMAP_BS_EXTENDED,
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 2 NIL NIL NIL NIL)" },
	/* a basic part has no lines */
	{ "Content-Type: application/pdf\n\n%PDF", 0,
	  "(\"application\" \"pdf\" NIL NIL NIL \"7bit\" 4)" },
	/* multipart without boundary, and with one that never occurs: a made-up part, its
	 * body as text/plain (what BODY[1] gives) */
	{ "Content-Type: multipart/mixed\n\nx\n", 0, "(" MADE_UP("3 1") ") \"mixed\")" },
	{ "Content-Type: multipart/mixed; boundary=zz\n\nx\n", IMAP_BS_EXTENDED,
	  "(" MADE_UP("3 1") " NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"zz\") NIL NIL NIL)" },
	/* message/rfc822 in base64: not looked into, the message shape all the same */
	{ "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA==\n",
	  0, "(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 18 (NIL NIL NIL NIL NIL NIL NIL "
	  "NIL NIL NIL) " EMPTY_TEXT ") 1)" },
	/* message/global: the message shape with IMAP4rev2 only */
	{ "Content-Type: message/global\n\nSubject: g\n\nb\n", 0,
	  "(\"message\" \"global\" NIL NIL NIL \"7bit\" 17)" },
	{ "Content-Type: message/global\n\nSubject: g\n\nb\n", IMAP_BS_GLOBAL,
	  "(\"message\" \"global\" NIL NIL NIL \"7bit\" 17 (NIL \"g\" NIL NIL NIL NIL NIL NIL "
	  "NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1) 3)" },
	/* parameters: RFC 2231 ASCII value plain; raw 8-bit value a literal or (UTF-8)
	 * quoted; quotes escaped */
	{ "Content-Type: text/plain; a*=us-ascii'en'x%20y; b=\"q\\\"q\"\n\n", 0,
	  "(\"text\" \"plain\" (\"a\" \"x y\" \"b\" \"q\\\"q\") NIL NIL \"7bit\" 0 0)" },
	{ "Content-Type: application/x; name=\"\xc3\xa4.txt\"\n\n", 0,
	  "(\"application\" \"x\" (\"name\" {6}\r\n\xc3\xa4.txt) NIL NIL \"7bit\" 0)" },
	{ "Content-Type: application/x; name=\"\xc3\xa4.txt\"\n\n", IMAP_WRITE_UTF8,
	  "(\"application\" \"x\" (\"name\" \"\xc3\xa4.txt\") NIL NIL \"7bit\" 0)" },
	/* RFC 2231 with language, non-ASCII: re-encoded with the language */
	{ "Content-Type: text/plain; title*=iso-8859-1'de'%E4%20b\n\n", 0,
	  "(\"text\" \"plain\" (\"title*\" \"iso-8859-1'de'%E4%20b\") NIL NIL \"7bit\" 0 0)" },
	/* Content-Description with 8 bits: a literal */
	{ "Content-Description: \xe4\n\nx", 0,
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL {1}\r\n\xe4 \"7bit\" 1 1)" },
};

/* msg with every LF made CRLF */
static char *to_crlf(const char *msg, size_t *len_r)
{
	size_t n = strlen(msg), k = 0;
	char *r = malloc(2 * n + 1);
	for (size_t i = 0; i < n; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			r[k++] = '\r';
		r[k++] = msg[i];
	}
	*len_r = k;
	return r;
}

static char *structure(const char *msg, size_t len, unsigned flags, size_t max, int *ret)
{
	struct mime_parser *p = mime_parser_new();
	for (size_t i = 0; i < len; i += 7)   /* in pieces: no difference */
		mime_parser_feed(p, msg + i, len - i < 7 ? len - i : 7);
	struct mime_part *root;
	mime_parser_finish(&p, &root, NULL);
	struct imap_buf b;
	imap_buf_init(&b, max);
	*ret = imap_bodystructure_write(&b, root, flags);
	char *s = b.data != NULL ? strdup(b.data) : strdup("");
	imap_buf_free(&b);
	mime_part_free(&root);
	return s;
}

int main(void)
{
	for (size_t i = 0; i < sizeof(bcases) / sizeof(bcases[0]); i++) {
		const struct bcase *c = &bcases[i];
		int r;
		char *s = structure(c->msg, strlen(c->msg), c->flags, 1 << 20, &r);
		CHECK(r == 0);
		CHECK_STR(s, c->out);
		bool utf8 = (c->flags & IMAP_WRITE_UTF8) != 0;
		char *sp;
		size_t splen;
		CHECK(imap_respcheck_value(s, strlen(s), utf8, &sp, &splen, NULL));
		if (sp != NULL) {
			CHECK(imap_respcheck_reparse(sp, splen, utf8));
			free(sp);
		}
		/* the same message stored with CRLF: the same structure */
		size_t clen;
		char *crlf = to_crlf(c->msg, &clen);
		char *s2 = structure(crlf, clen, c->flags, 1 << 20, &r);
		CHECK_STR(s2, c->out);
		free(s2);
		free(crlf);
		free(s);
	}
	/* the bound: every max below the output's size fails, never a crash */
	size_t full = strlen(bcases[3].out);
	for (size_t max = 0; max < full; max += 13) {
		int r;
		char *s = structure(bcases[3].msg, strlen(bcases[3].msg), bcases[3].flags, max, &r);
		CHECK(r == -1);
		free(s);
	}
	int r;
	char *s = structure(bcases[3].msg, strlen(bcases[3].msg), bcases[3].flags, full, &r);
	CHECK(r == 0);
	free(s);
	return unit_done("test_imap_bodystructure");
}
