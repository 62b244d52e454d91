/* IMAP SEARCH (RFC 3501 / RFC 9051 section 6.4.4) with ESEARCH (RFC 4731), SEARCHRES
 * (RFC 5182), CONDSTORE's MODSEQ key (RFC 7162 section 3.1.5) and CHARSET (any charset
 * iconv knows, charset.h).  No I/O and no storage: the daemon compiles the command's
 * arguments into a program, offers each message through an accessor (struct
 * imap_search_msg), and formats the result.
 *
 *	struct imap_search *s;
 *	if (imap_search_compile(cmd->args, cmd->count, &settings, &s, &err) < 0)
 *		BAD err.text, or NO [IMAP_SEARCH_BADCHARSET] err.text if
 *		err.badcharset;
 *	for each message in ascending sequence order:
 *		r = imap_search_match(s, &msg);   (1 match, 0 no, -1 read error: NO)
 *	imap_search_format(s, tag, &buf);          ("* SEARCH ..." / "* ESEARCH ...")
 *	if (imap_search_saving(s)) store imap_search_saved_uids(s, &n) as "$";
 *	imap_search_free(&s);
 *
 * Evaluation is lazy and ordered by cost: the terms of an AND (and of an OR) are sorted
 * so that flags, UIDs, sizes and dates are looked at before header fields, and header
 * fields before body text; evaluation stops as soon as the answer is known, so a message
 * decided by cheap keys never has its body read.
 *
 * Text keys: the search string is converted from the CHARSET to UTF-8 and case-folded
 * once, at compile time (charset_search_fold()).  Header keys match the field's value
 * after RFC 2047 decoding and folding (address fields: the whole decoded value text, so
 * "FROM joe" finds the display name and the address alike).  BODY matches the text
 * parts' decoded text: the library walks the MIME tree, undoes base64/quoted-printable,
 * converts the part's charset to UTF-8 and folds, streaming with bounded memory.  TEXT
 * is header fields ("Name: value", decoded) or BODY.  Only text/ (and untyped) leaf parts
 * are searched, and the parts inside an attached message/rfc822 too; other types
 * (images, application/...) are not text. */
#ifndef POSTERN_IMAP_SEARCH_H
#define POSTERN_IMAP_SEARCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "imap/imap_parser.h"
#include "imap/imap_write.h"
#include "mail/mime.h"

/* System flags, for imap_search_msg.flags. */
#define IMAP_SEARCH_SEEN     (1u << 0)
#define IMAP_SEARCH_ANSWERED (1u << 1)
#define IMAP_SEARCH_FLAGGED  (1u << 2)
#define IMAP_SEARCH_DELETED  (1u << 3)
#define IMAP_SEARCH_DRAFT    (1u << 4)
#define IMAP_SEARCH_RECENT   (1u << 5)

struct imap_search_settings {
	bool uid;               /* UID SEARCH: results are UIDs */
	bool rev2;              /* IMAP4rev2 enabled: the answer is always ESEARCH */
	bool utf8_accept;       /* ENABLE UTF8=ACCEPT: a CHARSET other than UTF-8 is BAD
	                           (RFC 6855 section 3) */
	uint32_t messages;      /* what "*" is in a sequence set (0: empty mailbox) */
	uint32_t uid_max;       /* what "*" is in a UID set: the highest UID in use */
	/* "$" (RFC 5182): the saved result as ascending UIDs (NULL/0: nothing saved, "$"
	 * is then empty).  Copied at compile time. */
	const uint32_t *saved_uids;
	size_t saved_count;
};

struct imap_search_error {
	const char *text;       /* constant text for the BAD/NO line */
	bool badcharset;        /* answer "NO [IMAP_SEARCH_BADCHARSET] text" (RFC 9051
	                           section 7.1: the code lists charsets that work) */
	bool save;              /* RETURN (SAVE) was parsed: a NO (badcharset) empties
	                           "$" (RFC 5182 section 2.1); a BAD leaves it */
};
/* The response code for an unknown charset: a few of the charsets that work (any name
 * iconv knows does, with the aliases of charset.h). */
#define IMAP_SEARCH_BADCHARSET \
	"BADCHARSET (UTF-8 US-ASCII ISO-8859-1 WINDOWS-1252 GB2312 GBK GB18030 BIG5 " \
	"BIG5-HKSCS ISO-2022-JP SHIFT_JIS EUC-JP EUC-KR KOI8-R ISO-8859-15)"

/* One header field of the message's top-level header. */
typedef bool imap_search_header_cb(void *cbctx, const char *name, size_t name_len,
				   const char *value, size_t value_len); /* true: stop */

/* The message accessor: cheap values as fields, the rest as callbacks on ctx. */
struct imap_search_msg {
	void *ctx;
	uint32_t seq, uid;
	unsigned flags;                 /* IMAP_SEARCH_* */
	time_t internal_date;           /* INTERNALDATE, UTC ... */
	int internal_tz;                /* ... and its zone, minutes east of UTC */
	uint64_t size;                  /* RFC822.SIZE */
	uint64_t modseq;                /* CONDSTORE mod-sequence (0 if none) */
	/* Is keyword (case-insensitive, RFC 9051 2.3.2) set?  NULL: no keywords. */
	bool (*has_keyword)(void *ctx, const char *keyword);
	/* Optional: the sent date (Date: header parsed, date.h) as 0, or -1 when there is
	 * none; NULL: the library parses the Date field it gets from headers()/the bytes. */
	int (*sent_date)(void *ctx, time_t *t_r, int *tz_min_r);
	/* Optional: call cb for each top-level header field (the value raw or unfolded:
	 * both are fine) until it returns true; 0, or -1 on a read error.  NULL: the
	 * library parses the header from the message bytes. */
	int (*headers)(void *ctx, imap_search_header_cb *cb, void *cbctx);
	/* The message bytes: either whole in data/data_len (small messages), or read():
	 * up to len bytes at offset into buf, *got_r of them (0: end); 0 or -1. */
	const char *data;
	size_t data_len;
	int (*read)(void *ctx, uint64_t offset, void *buf, size_t len, size_t *got_r);
	/* The MIME tree of the message (mime.h), e.g. from the index cache: where the
	 * header ends and where each part's body lies.  NULL: for BODY/TEXT the library
	 * parses the tree from the bytes (one more pass over the message). */
	const struct mime_part *parts;
};

struct imap_search;

/* args/count: the arguments after "SEARCH" (RETURN (...), CHARSET x, the keys).
 * 0, or -1 with *error_r. */
int imap_search_compile(const struct imap_arg *args, size_t count,
			const struct imap_search_settings *set, struct imap_search **s_r,
			struct imap_search_error *error_r);
/* Evaluate one message; a match is recorded (call in ascending sequence order).
 * 1 match, 0 not, -1 the message could not be read (*error_r). */
int imap_search_match(struct imap_search *s, const struct imap_search_msg *m,
		      const char **error_r);
/* The response line(s): "* SEARCH 2 5 [(MODSEQ n)]" or "* ESEARCH (TAG "t") [UID]
 * MIN.. MAX.. COUNT.. ALL.. [MODSEQ n]", or nothing (RETURN (SAVE) only).  0 or -1
 * (the buffer overflowed). */
int imap_search_format(const struct imap_search *s, const char *tag, struct imap_buf *b);
/* RETURN (SAVE) was asked: the daemon keeps imap_search_saved_uids() as "$" (with MIN
 * and/or MAX alone just those messages, RFC 5182 section 2.4).  RFC 5182 section 2.1:
 * a SEARCH with SAVE that ends in NO (a read error, BADCHARSET: error.save) empties
 * "$"; one that ends in BAD leaves it as it was. */
bool imap_search_saving(const struct imap_search *s);
const uint32_t *imap_search_saved_uids(const struct imap_search *s, size_t *count_r);
/* The matches so far, ascending (sequence numbers, or UIDs for UID SEARCH). */
const uint32_t *imap_search_results(const struct imap_search *s, size_t *count_r);
/* A MODSEQ key was used: the command enables CONDSTORE (RFC 7162 section 3.1), and
 * the answer carries the highest mod-sequence of the returned messages. */
bool imap_search_uses_modseq(const struct imap_search *s);
/* The program refers to message text (header or body): what the daemon must offer. */
bool imap_search_needs_headers(const struct imap_search *s);
bool imap_search_needs_body(const struct imap_search *s);
void imap_search_free(struct imap_search **s);

/* The body matcher on its own (TEXT/BODY, also for the fuzz targets): does the decoded,
 * folded text of m's text parts contain needle (already folded)?  chunk: bytes read at a
 * time (0: IMAP_SEARCH_READ_CHUNK).  1, 0, or -1 on a read error. */
int imap_search_body_contains(const struct imap_search_msg *m, const char *needle,
			      size_t needle_len, size_t chunk);

#endif
