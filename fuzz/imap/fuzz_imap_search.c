/* libFuzzer: imap_search_compile() from an arbitrary command (through the real command
 * parser, literals included), evaluated against fixed messages and formatted.
 * Byte 0: settings bits (UID SEARCH, IMAP4rev2, UTF8=ACCEPT, read chunk size); the rest
 * is the text after "t SEARCH ", lines split at LF, each literal's bytes taken from the
 * input after the line that announced it.
 * Checks: compile gives a program or an error text, never both or neither; evaluation
 * never fails on readable messages and gives the same answer whether the message comes
 * as whole bytes, through small reads, or with the daemon's MIME tree; the formatted
 * answer is CRLF-terminated lines with no CR or LF inside. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imap/imap_parser.h"
#include "imap/imap_search.h"
#include "mail/mime.h"

static const char msg1[] =
	"From: =?GB2312?B?1tDOxA==?= <zh@example.cn>\r\n"
	"To: Mary <mary@x.test>\r\n"
	"Subject: =?big5?B?t3zEs7Nxqr4=?= report\r\n"
	"Date: Fri, 21 Nov 1997 23:30:00 -0600\r\n"
	"Content-Type: multipart/mixed; boundary=B\r\n"
	"\r\n"
	"--B\r\n"
	"Content-Type: text/plain; charset=gb2312\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"xOO6w6OsysC956Gj1eLK\r\nx9K7uPay4srU08q8/qOs\r\n"
	"--B\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Gr=C3=BC=C3=9Fe aus=\r\n M=C3=BCnchen\r\n"
	"--B--\r\n";
static const char msg2[] = "Subject: plain\nX-A: b\n\nhello world\n";

struct rd {
	const char *d;
	size_t len, chunk;
};

static int rd_read(void *ctx, uint64_t off, void *buf, size_t len, size_t *got_r)
{
	struct rd *r = ctx;
	*got_r = 0;
	if (off >= r->len)
		return 0;
	size_t n = r->len - (size_t)off;
	if (n > len)
		n = len;
	if (n > r->chunk)
		n = r->chunk;
	memcpy(buf, r->d + off, n);
	*got_r = n;
	return 0;
}

static void check_lines(const struct imap_buf *b)
{
	if (b->len == 0)
		return;
	if (b->len < 2 || b->data[b->len - 2] != '\r' || b->data[b->len - 1] != '\n')
		abort();
	for (size_t i = 0; i + 2 < b->len; i++)
		if (b->data[i] == '\r' || b->data[i] == '\n')
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	unsigned bits = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	struct imap_parser_settings ps = { .logged_in = true, .utf8 = (bits & 4) != 0 };
	struct imap_parser *p = imap_parser_new(&ps);
	char line[8200];
	imap_parser_begin(p);
	int r;
	bool first = true;
	for (;;) {
		const char *nl = memchr(in, '\n', len);
		size_t ll = nl != NULL ? (size_t)(nl - in) : len;
		size_t pre = first ? 9 : 0;
		memcpy(line, "t SEARCH ", pre);
		memcpy(line + pre, in, ll);
		in += ll + (nl != NULL);
		len -= ll + (nl != NULL);
		first = false;
		r = imap_parser_feed_line(p, line, pre + ll);
		if (r != IMAP_PARSE_LITERAL && r != IMAP_PARSE_SKIP)
			break;
		size_t used = imap_parser_feed_literal(p, in, len);
		in += used;
		len -= used;
		if (imap_parser_literal_left(p) > 0)
			goto out;               /* the input ended inside the literal */
	}
	if (r != IMAP_PARSE_DONE)
		goto out;
	const struct imap_command *c = imap_parser_command(p);
	static const uint32_t saved[] = { 1, 3, 7 };
	struct imap_search_settings set = {
		.uid = (bits & 1) != 0, .rev2 = (bits & 2) != 0, .utf8_accept = (bits & 4) != 0,
		.messages = 3, .uid_max = 9, .saved_uids = saved, .saved_count = 3,
	};
	struct imap_search *s[3] = { NULL, NULL, NULL };
	struct imap_search_error err;
	for (int k = 0; k < 3; k++) {
		int cr = imap_search_compile(c->args, c->count, &set, &s[k], &err);
		if ((cr == 0) != (s[k] != NULL) || (cr < 0 && err.text == NULL))
			abort();
		if (cr < 0)
			goto out_free;
	}
	struct mime_parser *mp = mime_parser_new();
	struct mime_part *root;
	mime_parser_feed(mp, msg1, sizeof(msg1) - 1);
	mime_parser_finish(&mp, &root, NULL);
	for (uint32_t i = 1; i <= 3; i++) {
		const char *text = i == 2 ? msg2 : msg1;
		struct rd rd = { text, strlen(text), 1 + (bits >> 3) };
		struct imap_search_msg m = {
			.seq = i, .uid = i * 3 - 2, .flags = i == 1 ? 0x11 : (unsigned)i,
			.internal_date = 86400 * 10000 + i * 3600, .internal_tz = -120,
			.size = rd.len, .modseq = 10 * i,
		};
		const char *e;
		int a, b2, c2;
		m.data = text;
		m.data_len = rd.len;
		a = imap_search_match(s[0], &m, &e);
		m.data = NULL;
		m.ctx = &rd;
		m.read = rd_read;
		b2 = imap_search_match(s[1], &m, &e);
		if (text == msg1)
			m.parts = root;
		c2 = imap_search_match(s[2], &m, &e);
		if (a < 0 || a != b2 || a != c2)
			abort();
	}
	mime_part_free(&root);
	struct imap_buf b;
	imap_buf_init(&b, 1 << 20);
	if (imap_search_format(s[0], "t", &b) < 0)
		abort();
	check_lines(&b);
	imap_buf_free(&b);
	if (imap_search_saving(s[0])) {
		size_t n;
		const uint32_t *v = imap_search_saved_uids(s[0], &n);
		for (size_t i = 1; i < n; i++)
			if (v[i] <= v[i - 1])
				abort();
	}
out_free:
	for (int k = 0; k < 3; k++)
		imap_search_free(&s[k]);
out:
	imap_parser_free(&p);
	return 0;
}
