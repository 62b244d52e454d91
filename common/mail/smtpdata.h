/* The SMTP DATA reader (RFC 5321 sections 4.1.1.4, 4.5.2): a parser, no I/O.  Given the
 * bytes after the 354 reply, it finds the end of the message and undoes dot-stuffing.
 *
 * Strict: only CRLF "." CRLF ends the message, and only CRLF ends a line.  A bare LF or a
 * lone CR is message data: it never ends a line, so it never ends the message either and
 * a '.' after it is not unstuffed (the 2023 SMTP-smuggling class: "\n.\n", "\r.\r",
 * "\n.\r\n", "\r\n.\n" and their kin must not end a message here when a server behind us
 * might read them as the end, nor anywhere).  They are counted, for the daemon to refuse
 * the message (RFC 5321 section 2.3.8) or to note it.
 *
 * Limits are reported, never fatal to the framing: past a too-long line or the size
 * limit, the reader keeps looking for the end and the daemon answers after it, so the
 * command stream stays in sync. */
#ifndef POSTERN_SMTPDATA_H
#define POSTERN_SMTPDATA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Problems found (bits of smtpdata.flags). */
#define SMTPDATA_BARE_LF   0x01u   /* an LF not preceded by CR */
#define SMTPDATA_LONE_CR   0x02u   /* a CR not followed by LF */
#define SMTPDATA_NUL       0x04u   /* a NUL byte */
#define SMTPDATA_LONG_LINE 0x08u   /* a line longer than line_max (with its CRLF) */
#define SMTPDATA_TOO_BIG   0x10u   /* more than size_max bytes: output stopped there */

struct smtpdata {
	/* settings */
	size_t line_max;        /* longest line with CRLF, as sent (plimits.h
	                           SMTP_MAX_TEXT_LINE); 0: no limit */
	uint64_t size_max;      /* largest message (unstuffed); 0: no limit */
	/* results */
	unsigned flags;         /* SMTPDATA_* */
	uint64_t size;          /* message bytes so far (unstuffed, also past size_max) */
	uint64_t lines;         /* CRLF-ended lines so far */
	uint64_t first_bad_line; /* 1-based line of the first flagged problem; 0: none */
	bool done;              /* the end was found */
	/* private */
	int state;
	size_t linelen;         /* bytes of the current line as sent */
};

void smtpdata_init(struct smtpdata *d, size_t line_max, uint64_t size_max);
/* Parse in[0..len).  The message bytes (dot-stuffing undone, line ends as sent, the
 * final CRLF kept and the "." line dropped) go to out, which must hold len + 1 bytes
 * (a CR held back from the previous call may come out now).  *used_r: input bytes taken;
 * after the end, bytes that follow it are not taken (the next commands).  Returns 1 at
 * the end of the message, 0 when more input is needed. */
int smtpdata_parse(struct smtpdata *d, const char *in, size_t len, char *out,
		   size_t *out_len_r, size_t *used_r);
/* The first problem in words ("bare LF", "line too long", ...), NULL if none. */
const char *smtpdata_error(const struct smtpdata *d);

#endif
