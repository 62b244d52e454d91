/* APPEND (RFC 3501 6.3.11) and MULTIAPPEND (RFC 3502), with APPENDUID (RFC 4315) and
 * APPENDLIMIT (RFC 7889: the parser refuses a larger literal with NO [TOOBIG]).
 *
 * The message literal is never held in memory: the parser stops at it (IMAPC_STREAM),
 * we send "+" if it is synchronizing and stream its bytes, IO_CHUNK at a time, into
 * a storage batch (mail_batch): every message of a MULTIAPPEND is written and synced,
 * and the batch made visible at once after the last one, or none of them (RFC 3502:
 * all or nothing; a full disk at the third message leaves the folder as it was).  When
 * something fails, the rest of a literal the client sends anyway is read and dropped,
 * and the command ends with NO; a synchronizing literal after a failure is not asked for
 * (the NO comes at once, RFC 3502 section 6.3.11).
 *
 * UTF8=ACCEPT (RFC 6855 section 4): a message as "UTF8 (~{n})" once the session enabled
 * it; its header fields must be UTF-8.  Header fields with 8-bit bytes in a plain
 * literal are refused (NO [CANNOT]) unless UTF8=ACCEPT is enabled; the header is
 * checked as it streams (struct hdr_scan), and a refused message is never committed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/log.h"
#include "base/util.h"
#include "imap.h"
#include "storage/storage.h"

/* date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d").  0 or -1. */
static int parse_date(const char *s, size_t len, int64_t *t_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4];
	int d, y, hh, mm, sec, zone;
	char sign;

	if (len != 26 && len != 25)
		return -1;
	char buf[32];
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (sscanf(buf, "%2d-%3c-%4d %2d:%2d:%2d %c%4d", &d, mon, &y, &hh, &mm, &sec, &sign,
		   &zone) != 8 || (sign != '+' && sign != '-'))
		return -1;
	mon[3] = '\0';
	const char *m = strstr(months, mon);
	if (m == NULL || (m - months) % 3 != 0 || d < 1 || d > 31 || y < 1900 || hh > 23 ||
	    mm > 59 || sec > 60 || zone % 100 > 59)
		return -1;
	struct tm tm = { .tm_mday = d, .tm_mon = (int)((m - months) / 3), .tm_year = y - 1900,
			 .tm_hour = hh, .tm_min = mm, .tm_sec = sec };
	int64_t t = (int64_t)timegm(&tm);
	int64_t off = (zone / 100) * 3600 + (zone % 100) * 60;
	*t_r = sign == '+' ? t - off : t + off;
	return 0;
}

/* The message's options: the arguments between the previous literal (or the mailbox) and
 * this one: [flag-list] [date-time].  0 or -1. */
static int message_options(struct mailbox *box, const struct imap_command *cmd,
			   size_t from, size_t to, uint32_t *flags_r, uint32_t *kws_r,
			   int64_t *date_r)
{
	const char *s, *error;
	size_t len;

	*flags_r = 0;
	*kws_r = 0;
	*date_r = 0;
	if (from < to && cmd->args[from].type == IMAP_ARG_LIST) {
		if (imap_flags_parse(box, true, &cmd->args[from], 1, flags_r, kws_r, &error) < 0)
			return -1;
		from++;
	}
	if (from < to) {
		if (imap_arg_string(&cmd->args[from], &s, &len) < 0 ||
		    parse_date(s, len, date_r) < 0)
			return -1;
		from++;
	}
	return from == to ? 0 : -1;
}

/* RFC 6855: the header fields of a message (up to the first empty line), as they stream
 * by: are there 8-bit bytes, and are they well-formed UTF-8 (RFC 3629: no overlong form,
 * no surrogate, nothing above U+10FFFF)? */
struct hdr_scan {
	bool done;                 /* the header ended */
	bool eight, bad;           /* 8-bit bytes seen; not UTF-8 */
	unsigned char last, last2; /* the two bytes before ("\n" at the start) */
	unsigned need, len;        /* continuation bytes still due, of a len-byte sequence */
	uint32_t cp;
};

static void hdr_scan_init(struct hdr_scan *h)
{
	*h = (struct hdr_scan){ .last = '\n' };
}

static void hdr_scan_feed(struct hdr_scan *h, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n && !h->done; i++) {
		unsigned char c = b[i];
		if (c >= 0x80)
			h->eight = true;
		if (h->need > 0) {
			if ((c & 0xc0) != 0x80) {
				h->bad = true;
				h->need = 0;
			} else {
				h->cp = (h->cp << 6) | (c & 0x3f);
				if (--h->need == 0 &&
				    ((h->len == 3 && h->cp < 0x800) || (h->len == 4 && h->cp < 0x10000) ||
				     h->cp > 0x10ffff || (h->cp >= 0xd800 && h->cp <= 0xdfff)))
					h->bad = true;
			}
		} else if (c >= 0x80) {
			if (c >= 0xc2 && c <= 0xdf)
				h->need = 1, h->len = 2, h->cp = c & 0x1f;
			else if (c >= 0xe0 && c <= 0xef)
				h->need = 2, h->len = 3, h->cp = c & 0x0f;
			else if (c >= 0xf0 && c <= 0xf4)
				h->need = 3, h->len = 4, h->cp = c & 0x07;
			else
				h->bad = true;
		}
		if (c == '\n' && (h->last == '\n' || (h->last == '\r' && h->last2 == '\n')))
			h->done = true;
		h->last2 = h->last;
		h->last = c;
	}
}

/* Read n literal bytes; save them when s is not NULL.  0, -1 the client is gone, or 1 a
 * save error (*error_r; the rest was read and dropped). */
static int take_message(struct imap_sess *ss, uint64_t n, struct mail_save *s,
			struct hdr_scan *h, const char **error_r)
{
	int ret = 0;

	while (n > 0) {
		size_t want = n < IO_CHUNK ? (size_t)n : IO_CHUNK;
		ssize_t r = imapc_read_raw(&ss->ic, ss->iobuf, want);
		if (r <= 0)
			return -1;
		n -= (uint64_t)r;
		hdr_scan_feed(h, (const unsigned char *)ss->iobuf, (size_t)r);
		if (s != NULL && ret == 0 && mail_save_write(s, ss->iobuf, (size_t)r, error_r) < 0)
			ret = 1;
	}
	if (h->need > 0)
		h->bad = true;   /* cut in the middle of a character */
	return ret;
}

enum imap_result imap_cmd_append(struct imap_sess *ss)
{
	const struct imap_command *cmd = imap_parser_command(ss->ic.parser);
	char tag[IMAP_MAX_TAG + 1], name[STORAGE_NAME_MAX + 1];
	const char *error = NULL, *fail_code = NULL, *fail_text = NULL;
	struct mailbox *box = NULL;
	struct imap_seqset uids;
	size_t from = 1;
	struct mail_batch *batch = NULL;
	uint32_t *kws_of = NULL, *flags_of = NULL;   /* each message's, for the keywords */
	size_t nmsg = 0, cap = 0;

	snprintf(tag, sizeof(tag), "%s", cmd->tag != NULL ? cmd->tag : "*");
	if (strcmp(cmd->name, "APPEND") != 0 || cmd->count < 1) {
		/* the parser streams APPEND's literals only; anything else is a bug */
		imapc_untagged(&ss->ic, "BYE", "SERVERBUG", "Internal error.");
		return IMAP_R_DROP;
	}
	imap_seqset_init(&uids);
	if (imap_sess_mailbox_arg(ss, tag, &cmd->args[0], name, sizeof(name)) < 0) {
		/* answered already; the client may still send a non-synchronizing literal */
		fail_code = "";
	} else if (mailbox_open(ss->st, name, &box, &error) < 0) {
		fail_code = "TRYCREATE";
		fail_text = "No such mailbox.";
	} else {
		batch = mailbox_batch_begin(box);
	}
	ss->n_append++;
	for (;;) {
		const struct imap_parser_need *need = imap_parser_need(ss->ic.parser);
		uint32_t flags = 0, kws = 0;
		int64_t date = 0;
		cmd = imap_parser_command(ss->ic.parser);
		/* RFC 6855 section 4: append-data =/ "UTF8" SP "(" literal8 ")" */
		size_t opts_end = need->arg;
		bool utf8_item = opts_end > from &&
				 imap_arg_is_atom(&cmd->args[opts_end - 1], "UTF8");
		if (utf8_item)
			opts_end--;
		if (fail_code == NULL && utf8_item &&
		    (!need->literal8 || !need->in_list || !ss->enabled_utf8_accept)) {
			fail_code = "BAD";
			fail_text = !need->literal8 || !need->in_list ?
				"APPEND UTF8 takes (~{n})." : "APPEND UTF8 needs ENABLE UTF8=ACCEPT.";
		} else if (fail_code == NULL && need->in_list && !utf8_item) {
			fail_code = "BAD";
			fail_text = "A message literal inside a list.";
		}
		if (fail_code == NULL &&
		    message_options(box, cmd, from, opts_end, &flags, &kws, &date) < 0) {
			fail_code = "BAD";
			fail_text = "Invalid flags or date.";
		}
		if (fail_code != NULL && need->sync)
			break;   /* the client waits for "+": it gets the answer instead */
		struct mail_save *save = NULL;
		if (fail_code == NULL &&
		    mail_batch_save_begin(batch, date, flags & ~INDEX_FLAG_RECENT, &save,
					  &error) < 0) {
			fail_code = "SAVE";
			if (need->sync)
				break;
		}
		if (need->sync && imapc_continue(&ss->ic, "Ready for literal data") < 0) {
			if (save != NULL)
				mail_save_abort(&save);
			goto drop;
		}
		struct hdr_scan hs;
		hdr_scan_init(&hs);
		size_t lit_at = need->arg;
		int r = take_message(ss, need->size, save, &hs, &error);
		/* RFC 6855 section 4: 8-bit header fields only in "UTF8 (...)" after ENABLE
		 * UTF8=ACCEPT (else NO); and there they must be UTF-8 */
		if (r == 0 && save != NULL && hs.eight &&
		    (hs.bad || (!ss->enabled_utf8_accept && !utf8_item))) {
			mail_save_abort(&save);
			if (fail_code == NULL) {
				fail_code = "CANNOT";
				fail_text = hs.bad ? "The message's header fields are not UTF-8." :
					"8-bit header fields need ENABLE UTF8=ACCEPT and APPEND UTF8.";
			}
		}
		if (r == 0 && save != NULL) {
			if (nmsg == cap) {
				cap = cap == 0 ? 8 : cap * 2;   /* BOUNDS: messages the client sent */
				kws_of = xrealloc(kws_of, cap * sizeof(*kws_of));
				flags_of = xrealloc(flags_of, cap * sizeof(*flags_of));
			}
			kws_of[nmsg] = kws;
			flags_of[nmsg] = flags & ~INDEX_FLAG_RECENT;
			if (mail_batch_add(batch, &save, &error) < 0)
				r = 1;
			else
				nmsg++;
		}
		if (save != NULL)
			mail_save_abort(&save);
		if (r < 0)
			goto drop;
		if (r > 0 && fail_code == NULL)
			fail_code = "SAVE";
		from = lit_at + 1;
		int next = imapc_streamed(&ss->ic);
		if (next == IMAPC_STREAM)
			continue;   /* MULTIAPPEND: the next message */
		if (next == IMAPC_END)
			goto drop;
		if (next == IMAPC_BADCMD) {
			/* answered BAD by the reader: nothing of it is saved */
			mail_batch_abort(&batch);
			free(kws_of);
			free(flags_of);
			mailbox_close(&box);
			imap_seqset_free(&uids);
			return IMAP_R_OK;
		}
		cmd = imap_parser_command(ss->ic.parser);
		/* "UTF8 (" literal8 ")": nothing else in the list */
		if (fail_code == NULL && utf8_item && cmd->count > lit_at &&
		    cmd->args[lit_at].count != 1) {
			fail_code = "BAD";
			fail_text = "Invalid APPEND UTF8 data.";
		}
		if (cmd->count != from && fail_code == NULL) {
			fail_code = "BAD";
			fail_text = "Unexpected arguments after the message.";
		}
		break;
	}
	enum imap_result res = IMAP_R_OK;
	if (fail_code == NULL) {
		/* every message at once, or none */
		uint32_t *got = xcalloc(nmsg + 1, sizeof(*got));
		if (mail_batch_commit(&batch, got, &error) < 0) {
			fail_code = "SAVE";
		} else {
			for (size_t i = 0; i < nmsg; i++) {
				imap_seqset_add(&uids, got[i], got[i]);
				/* keywords: the save takes system flags only; a failure
				 * here loses a keyword, not the message */
				char safe[LOG_MAX_FIELD + 1];
				if (kws_of[i] != 0 &&
				    mailbox_set_flags(box, got[i], flags_of[i], kws_of[i],
						      &error) < 0)
					log_warn("append-keywords: %serror=<%s>", ss->log_user,
						 log_sanitize(error, strlen(error), safe));
			}
		}
		free(got);
	}
	mail_batch_abort(&batch);
	free(kws_of);
	free(flags_of);
	if (fail_code == NULL) {
		char code[4096];
		int k = snprintf(code, sizeof(code), "APPENDUID %" PRIu32 " ",
				 mailbox_hdr(box)->uidvalidity);
		size_t l = imap_seqset_format(&uids, code + k, sizeof(code) - (size_t)k);
		imap_sess_update(ss, true);
		imapc_tagged(&ss->ic, tag, "OK", (size_t)k + l < sizeof(code) ? code : NULL,
			     "Append completed.");
	} else if (strcmp(fail_code, "") == 0) {
		/* the mailbox name was answered */
	} else if (strcmp(fail_code, "BAD") == 0) {
		imapc_tagged(&ss->ic, tag, "BAD", NULL, "%s", fail_text);
		res = IMAP_R_BAD;
	} else if (strcmp(fail_code, "SAVE") == 0) {
		imap_sess_storage_error(ss, tag, "APPEND", error != NULL ? error : "save failed");
	} else {
		imapc_tagged(&ss->ic, tag, "NO", fail_code, "%s", fail_text);
	}
	mailbox_close(&box);
	imap_seqset_free(&uids);
	return res;
drop:
	mail_batch_abort(&batch);
	free(kws_of);
	free(flags_of);
	mailbox_close(&box);
	imap_seqset_free(&uids);
	return IMAP_R_DROP;
}
