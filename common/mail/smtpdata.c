/* The SMTP DATA reader (see smtpdata.h).
 *
 * One state per position in the grammar, one byte at a time (so that any chunking gives
 * the same result):
 *   BOL     start of a line: right after CRLF, or at the start of the data (the CRLF
 *           of the DATA command line counts: an immediate ".\r\n" ends an empty message)
 *   DOT     "." at the start of a line (held back: stuffing, or the end)
 *   DOT_CR  ".\r" at the start of a line (held back: the end if LF follows)
 *   MID     inside a line
 *   CR      a CR inside a line (held back: a line end if LF follows, else data)
 * Only BOL -'.'-> DOT -CR-> DOT_CR -LF-> end.  BOL is entered only by CR LF, never by a
 * lone CR or bare LF, which are data and keep the line going (MID).
 *
 * Unstuffing (RFC 5321 section 4.5.2): a line starting with '.' loses that '.', whatever
 * follows (".." -> ".", ".x" -> "x", ".\rx" -> "\rx").
 *
 * Output: at most one byte per input byte, except that a CR held back from the previous
 * call comes out with the byte after it: len + 1 bytes of room suffice. */
#include <string.h>
#include "mail/smtpdata.h"

enum { S_BOL, S_DOT, S_DOT_CR, S_MID, S_CR };

void smtpdata_init(struct smtpdata *d, size_t line_max, uint64_t size_max)
{
	memset(d, 0, sizeof(*d));
	d->line_max = line_max;
	d->size_max = size_max;
	d->state = S_BOL;
}

static void smtpdata_flag(struct smtpdata *d, unsigned flag)
{
	if (d->flags == 0)
		d->first_bad_line = d->lines + 1; /* BOUNDS: lines < input bytes < UINT64_MAX */
	d->flags |= flag;
}

/* One message byte out, unless the size limit was passed. */
static void smtpdata_put(struct smtpdata *d, char c, char *out, size_t *o)
{
	d->size++;
	if (d->size_max != 0 && d->size > d->size_max) {
		if ((d->flags & SMTPDATA_TOO_BIG) == 0)
			smtpdata_flag(d, SMTPDATA_TOO_BIG);
		return;
	}
	if ((d->flags & SMTPDATA_TOO_BIG) == 0)
		out[(*o)++] = c;
}

/* A held-back CR turned out to be lone (the byte after it is not LF). */
static void smtpdata_lone_cr(struct smtpdata *d, char *out, size_t *o)
{
	smtpdata_flag(d, SMTPDATA_LONE_CR);
	smtpdata_put(d, '\r', out, o);
}

/* Byte c inside a line (state MID). */
static void smtpdata_mid(struct smtpdata *d, char c, char *out, size_t *o)
{
	if (c == '\r') {
		d->state = S_CR;
		return;
	}
	if (c == '\n')
		smtpdata_flag(d, SMTPDATA_BARE_LF);
	else if (c == '\0')
		smtpdata_flag(d, SMTPDATA_NUL);
	smtpdata_put(d, c, out, o);
	d->state = S_MID;
}

int smtpdata_parse(struct smtpdata *d, const char *in, size_t len, char *out,
		   size_t *out_len_r, size_t *used_r)
{
	size_t i = 0, o = 0;

	while (i < len && !d->done) {
		char c = in[i++];

		/* RFC 5321 section 4.5.3.1.6: 1000 octets with CRLF, "not counting the
		 * leading dot duplicated for transparency" */
		if (d->state != S_BOL || c != '.') {
			d->linelen++;
			if (d->line_max != 0 && d->linelen == d->line_max + 1) /* once per line */
				smtpdata_flag(d, SMTPDATA_LONG_LINE);
		}
		switch (d->state) {
		case S_BOL:
			if (c == '.')
				d->state = S_DOT; /* the dot is dropped: stuffing or the end */
			else
				smtpdata_mid(d, c, out, &o);
			break;
		case S_DOT:
			if (c == '\r')
				d->state = S_DOT_CR;
			else
				smtpdata_mid(d, c, out, &o);
			break;
		case S_DOT_CR:
			if (c == '\n') {
				d->done = true; /* CRLF "." CRLF */
				break;
			}
			/* ".\r" then not LF: the dot was stuffing, the CR is lone */
			smtpdata_lone_cr(d, out, &o);
			if (c == '\r')
				d->state = S_CR;
			else
				smtpdata_mid(d, c, out, &o);
			break;
		case S_MID:
			smtpdata_mid(d, c, out, &o);
			break;
		case S_CR:
			if (c == '\n') {
				smtpdata_put(d, '\r', out, &o);
				smtpdata_put(d, '\n', out, &o);
				d->lines++;
				d->linelen = 0;
				d->state = S_BOL;
				break;
			}
			smtpdata_lone_cr(d, out, &o);
			if (c != '\r')
				smtpdata_mid(d, c, out, &o);
			/* else: CR CR, the second one is held back in turn */
			break;
		}
	}
	*out_len_r = o;
	*used_r = i;
	return d->done ? 1 : 0;
}

const char *smtpdata_error(const struct smtpdata *d)
{
	static const struct {
		unsigned flag;
		const char *text;
	} tab[] = {
		{ SMTPDATA_TOO_BIG, "message too big" },
		{ SMTPDATA_LONG_LINE, "line too long" },
		{ SMTPDATA_BARE_LF, "bare LF" },
		{ SMTPDATA_LONE_CR, "lone CR" },
		{ SMTPDATA_NUL, "NUL byte" },
	};
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (d->flags & tab[i].flag)
			return tab[i].text;
	return NULL;
}
