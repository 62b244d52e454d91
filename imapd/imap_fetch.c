/* FETCH and UID FETCH (RFC 3501 6.4.5 / RFC 9051 6.4.5, BINARY of RFC 3516), and SEARCH.
 *
 * Items are rows of fetch_items[]: a name and a function that writes the item's value.
 * BODY[] / BODY.PEEK[] / RFC822 (the whole message) and BODY[HEADER] / BODY[TEXT] /
 * RFC822.HEADER / RFC822.TEXT of the top level, with <offset.length>, are streamed in
 * CRLF form, IO_CHUNK at a time, as a literal whose size the index knows, so a message
 * of any size takes bounded memory and needs no parse.  ENVELOPE, BODY, BODYSTRUCTURE
 * and every other section form (parts, HEADER.FIELDS(.NOT), MIME, BINARY, BINARY.SIZE)
 * come from common/imap's formatters over the tree and envelope of mailbox_msg_parse()
 * (cached by the storage).  Fetching a body without .PEEK sets \Seen (and FLAGS is
 * returned in the same response).
 *
 * SEARCH: common/imap's imap_search, with an accessor over the view, the index and the
 * message reader. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ctype.h>
#include "base/log.h"
#include "base/util.h"
#include "imap.h"
#include "imap/imap_binary.h"
#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "imap/imap_fetchatt.h"
#include "imap/imap_hdrfilter.h"
#include "imap/imap_qresync.h"
#include "imap/imap_search.h"
#include "imap/imap_section.h"
#include "imap/imap_window.h"
#include "mail/mime.h"
#include "mail/crlf.h"
#include "storage/storage.h"

/* What one FETCH asks for, parsed once before any message is looked at. */
#define FETCH_MAX_ITEMS 64
struct fetch_item;
struct fetch_req {
	const struct fetch_item *item;
	struct imap_fetch_section sec;   /* items with a section */
	char label[128];                 /* the item's name in the response */
};
struct fetch {
	struct imap_sess *ss;
	struct fetch_req req[FETCH_MAX_ITEMS];
	size_t n;
	bool uid_item, flags_item, modseq_item, sets_seen;
	bool needs_tree;                          /* an item wants the MIME tree or envelope */
	uint32_t cur_uid;                         /* the message being answered */
	bool unknown_cte;                         /* BINARY of an unknown encoding: NO */
	uint64_t changedsince;                    /* CHANGEDSINCE (RFC 7162); 0: none */
	/* the message being answered: its tree and envelope (mailbox_msg_parse) */
	struct mime_part *parts;
	struct mail_envelope_fields *env;
};

typedef int fetch_fn(struct fetch *f, struct fetch_req *r, size_t i,
		     const struct index_rec *rec);
struct fetch_item {
	const char *name;
	bool section;                    /* BODY[...], BINARY[...]: a fetch-att with [ */
	fetch_fn *fn;
};

static int item_uid(struct fetch *f, struct fetch_req *r, size_t i,
		    const struct index_rec *rec)
{
	return imap_buf_printf(&f->ss->ic.out, "UID %" PRIu32, rec->uid);
}

static int item_modseq(struct fetch *f, struct fetch_req *r, size_t i,
		       const struct index_rec *rec)
{
	return imap_buf_printf(&f->ss->ic.out, "MODSEQ (%" PRIu64 ")", rec->modseq);
}

static int item_flags(struct fetch *f, struct fetch_req *r, size_t i,
		      const struct index_rec *rec)
{
	char fl[IMAP_FLAGS_TEXT_MAX];
	imap_flags_format(f->ss->msgs[i].flags, f->ss->msgs[i].keywords, f->ss->box, fl,
			  sizeof(fl));
	return imap_buf_printf(&f->ss->ic.out, "FLAGS %s", fl);
}

/* The message's size in CRLF form (the index's, or counted once by reading it). */
static int msg_size(struct fetch *f, const struct index_rec *rec, uint64_t *size_r)
{
	if (rec->size != INDEX_SIZE_UNKNOWN) {
		*size_r = rec->size;
		return 0;
	}
	struct mail_reader *mr;
	const char *error;
	if (mailbox_msg_open(f->ss->box, rec->uid, &mr, &error) < 0)
		return -1;
	uint64_t size = 0;
	bool prev_cr = false;
	ssize_t n;
	while ((n = mail_reader_read(mr, f->ss->iobuf, IO_CHUNK, &error)) > 0)
		size += crlf_size(f->ss->iobuf, (size_t)n, &prev_cr);
	mail_reader_close(&mr);
	*size_r = size;
	return n < 0 ? -1 : 0;
}

static int item_size(struct fetch *f, struct fetch_req *r, size_t i,
		     const struct index_rec *rec)
{
	uint64_t size;
	if (msg_size(f, rec, &size) < 0)
		size = 0;
	return imap_buf_printf(&f->ss->ic.out, "RFC822.SIZE %" PRIu64, size);
}

static int item_date(struct fetch *f, struct fetch_req *r, size_t i,
		     const struct index_rec *rec)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
					   "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)rec->date;
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	return imap_buf_printf(&f->ss->ic.out,
			       "INTERNALDATE \"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
			       mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			       tm.tm_sec);
}

/* The CRLF-form size of the header (through its empty line). */
static int header_size(struct fetch *f, const struct index_rec *rec, uint64_t *size_r)
{
	struct mail_reader *mr;
	const char *error;
	struct crlf_state st;
	uint64_t size = 0;
	ssize_t n;

	if (mailbox_msg_open(f->ss->box, rec->uid, &mr, &error) < 0)
		return -1;
	crlf_init(&st, false);
	while (!st.in_body && (n = mail_reader_read(mr, f->ss->iobuf, IO_CHUNK, &error)) > 0) {
		/* a byte at a time is slow; the header is converted in pieces up to its end */
		for (ssize_t k = 0; k < n && !st.in_body; k++)
			size += crlf_convert(&st, f->ss->iobuf + k, 1, f->ss->cvbuf);
	}
	mail_reader_close(&mr);
	*size_r = size;
	return 0;
}

/* Stream bytes [off, off + len) of the message's CRLF form as a literal.  The literal's
 * size is said first; should the message turn out shorter (changed under us), the rest
 * is padded with spaces so that the protocol stays in step.  0, or -1: the client is
 * gone. */
static int send_range(struct fetch *f, const struct index_rec *rec, uint64_t off,
		      uint64_t len)
{
	struct imap_sess *ss = f->ss;
	struct mail_reader *mr = NULL;
	const char *error = "";
	struct crlf_state st;
	uint64_t pos = 0, sent = 0;

	if (imapc_send_buf(&ss->ic) < 0 || conn_printf(ss->ic.c, "{%" PRIu64 "}\r\n", len) < 0)
		return -1;
	if (len > 0 && mailbox_msg_open(ss->box, rec->uid, &mr, &error) == 0) {
		crlf_init(&st, false);
		ssize_t n;
		while (sent < len && (n = mail_reader_read(mr, ss->iobuf, IO_CHUNK, &error)) > 0) {
			size_t o = crlf_convert(&st, ss->iobuf, (size_t)n, ss->cvbuf);
			/* the part of [pos, pos + o) inside [off, off + len) */
			uint64_t a = off > pos ? off - pos : 0;
			if (a < o) {
				uint64_t b = o - a;
				if (b > len - sent)
					b = len - sent;
				if (conn_write(ss->ic.c, ss->cvbuf + a, (size_t)b) < 0) {
					mail_reader_close(&mr);
					return -1;
				}
				sent += b;
			}
			pos += o;
		}
		mail_reader_close(&mr);
	}
	if (sent < len) {
		char safe[LOG_MAX_FIELD + 1];
		log_warn("message-short: user=<%s>, uid=%" PRIu32 ", error=<%s>", ss->ubuf,
			 rec->uid, log_sanitize(error, strlen(error), safe));
		memset(ss->cvbuf, ' ', IO_CHUNK);
		while (sent < len) {
			uint64_t b = len - sent < IO_CHUNK ? len - sent : IO_CHUNK;
			if (conn_write(ss->ic.c, ss->cvbuf, (size_t)b) < 0)
				return -1;
			sent += b;
		}
	}
	return 0;
}

static int item_section(struct fetch *f, struct fetch_req *r, size_t i,
			const struct index_rec *rec)
{
	const struct imap_fetch_section *sec = &r->sec;
	uint64_t size, hsize, off = 0, len;

	if (msg_size(f, rec, &size) < 0)
		size = 0;
	if (sec->text == IMAP_SECTION_HEADER || sec->text == IMAP_SECTION_TEXT) {
		if (header_size(f, rec, &hsize) < 0)
			hsize = 0;
		if (hsize > size)
			hsize = size;
		if (sec->text == IMAP_SECTION_HEADER) {
			len = hsize;
		} else {
			off = hsize;
			len = size - hsize;
		}
	} else {
		len = size;
	}
	if (imap_buf_printf(&f->ss->ic.out, "%s ", r->label) < 0)
		return -1;
	if (sec->partial) {
		uint64_t o = sec->offset < len ? sec->offset : len;
		uint64_t l = sec->length < len - o ? sec->length : len - o;
		off += o;
		len = l;
	}
	return send_range(f, rec, off, len);
}

/* ---- items from the MIME tree (common/imap's FETCH formatters) ---- */

static int item_envelope(struct fetch *f, struct fetch_req *r, size_t i,
			 const struct index_rec *rec)
{
	struct imap_buf *b = &f->ss->ic.out;
	imap_buf_puts(b, "ENVELOPE ");
	if (f->env == NULL)
		return imap_buf_puts(b, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	return imap_envelope_write(b, f->env, f->ss->ic.wflags);
}

static int item_body(struct fetch *f, struct fetch_req *r, size_t i,
		     const struct index_rec *rec)
{
	struct imap_buf *b = &f->ss->ic.out;
	bool ext = r->item->name[4] == 'S';   /* BODYSTRUCTURE */
	imap_buf_puts(b, ext ? "BODYSTRUCTURE " : "BODY ");
	if (f->parts == NULL)
		return imap_buf_puts(b, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
	/* message/global in the message shape: RFC 9051's grammar, and RFC 6855's clients */
	bool global = f->ss->enabled_utf8;   /* IMAP4rev2 or UTF8=ACCEPT */
	return imap_bodystructure_write(b, f->parts, f->ss->ic.wflags |
					(ext ? IMAP_BS_EXTENDED : 0) |
					(global ? IMAP_BS_GLOBAL : 0));
}

/* Feeds raw bytes [off, off + size) of the message (as the reader gives them) to fn.
 * A short or failed read just ends early: the window pads. */
typedef int feed_fn(void *ctx, const void *data, size_t len);
static void read_range(struct fetch *f, uint32_t uid, uint64_t off, uint64_t size,
		       feed_fn *fn, void *ctx)
{
	struct imap_sess *ss = f->ss;
	struct mail_reader *mr;
	const char *error;
	uint64_t pos = 0, end = off + size;
	ssize_t n;

	if (size == 0 || mailbox_msg_open(ss->box, uid, &mr, &error) < 0)
		return;
	while (pos < end && (n = mail_reader_read(mr, ss->iobuf, IO_CHUNK, &error)) > 0) {
		uint64_t a = pos < off ? off - pos : 0, b = (uint64_t)n;
		if (pos + b > end)
			b = end - pos;   /* BOUNDS: never past the range */
		if (a < b && fn(ctx, ss->iobuf + a, (size_t)(b - a)) < 0)
			break;
		pos += (uint64_t)n;
	}
	mail_reader_close(&mr);
}

static int sink_conn(void *ctx, const void *data, size_t len)
{
	struct imap_sess *ss = ctx;
	return conn_write(ss->ic.c, data, len);
}

static int feed_crlf(void *ctx, const void *data, size_t len)
{
	return imap_window_crlf_feed(ctx, data, len);
}

static int feed_filter(void *ctx, const void *data, size_t len)
{
	return imap_hdrfilter_feed(ctx, data, len);
}

static int feed_binary(void *ctx, const void *data, size_t len)
{
	return imap_binary_feed(ctx, data, len);
}

/* Pass the plan's bytes through the right converter into w. */
static void send_plan(struct fetch *f, const struct imap_fetch_section *sec,
		      const struct imap_section_plan *plan, const char *enc,
		      struct imap_window *w, struct imap_binary *d)
{
	if (sec->kind != IMAP_FETCH_BODY) {
		if (imap_binary_init(d, enc, w) < 0)
			return;
		read_range(f, f->cur_uid, plan->offset, plan->size, feed_binary, d);
		imap_binary_finish(d);
	} else if (plan->filter) {
		struct imap_hdrfilter hf;
		imap_hdrfilter_init(&hf, sec->fields, sec->nfields,
				    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT, w);
		read_range(f, f->cur_uid, plan->offset, plan->size, feed_filter, &hf);
		imap_hdrfilter_finish(&hf);
	} else {
		struct imap_window_crlf o;
		imap_window_crlf_init(&o, w);
		read_range(f, f->cur_uid, plan->offset, plan->size, feed_crlf, &o);
	}
}

/* A section of the tree: parts, HEADER.FIELDS(.NOT), MIME, BINARY, BINARY.SIZE. */
static int item_tree_section(struct fetch *f, struct fetch_req *r, size_t i,
			     const struct index_rec *rec)
{
	struct imap_sess *ss = f->ss;
	struct imap_buf *b = &ss->ic.out;
	const struct imap_fetch_section *sec = &r->sec;
	struct imap_section_plan plan;
	struct imap_window w;
	struct imap_binary d;
	const char *error, *enc = NULL;

	if (r->label[0] != '\0')
		imap_buf_puts(b, r->label);
	else
		imap_section_write_name(b, sec);
	if (f->parts == NULL || imap_section_resolve(sec, f->parts, &plan, &error) < 0 ||
	    !plan.found)
		return imap_buf_puts(b, sec->kind == IMAP_FETCH_BINARY_SIZE ? " 0" : " \"\"");
	uint64_t full = plan.size_crlf;
	bool nul = false;
	if (sec->kind != IMAP_FETCH_BODY) {
		enc = imap_binary_encoding(sec, &plan);
		imap_window_init(&w, 0, UINT64_MAX, NULL, NULL);
		if (imap_binary_init(&d, enc, &w) < 0) {
			f->unknown_cte = true;   /* RFC 3516: NO [UNKNOWN-CTE] */
			return imap_buf_puts(b, sec->kind == IMAP_FETCH_BINARY_SIZE ? " 0" : " NIL");
		}
		send_plan(f, sec, &plan, enc, &w, &d);
		full = d.size;
		nul = d.has_nul;
		if (sec->kind == IMAP_FETCH_BINARY_SIZE)
			return imap_buf_printf(b, " %" PRIu64, full);
	} else if (plan.filter) {
		imap_window_init(&w, 0, UINT64_MAX, NULL, NULL);
		send_plan(f, sec, &plan, NULL, &w, &d);   /* a counting pass */
		full = w.total;
	}
	uint64_t n = imap_section_partial_size(sec, full);
	imap_buf_printf(b, " %s{%" PRIu64 "}\r\n", nul ? "~" : "", n);
	if (imapc_send_buf(&ss->ic) < 0)
		return -1;
	imap_window_init(&w, sec->partial ? sec->offset : 0, n, sink_conn, ss);
	send_plan(f, sec, &plan, enc, &w, &d);
	imap_window_pad(&w);
	return ss->ic.c->failed ? -1 : 0;
}

/* BODY[], BODY[HEADER], BODY[TEXT] of the top level: streamed without the tree */
static const struct fetch_item section_item = { "BODY[", true, item_section };
/* every other section form: from the tree */
static const struct fetch_item tree_section_item = { "BODY[", true, item_tree_section };

static const struct fetch_item fetch_items[] = {
	{ "UID", false, item_uid },
	{ "FLAGS", false, item_flags },
	{ "RFC822.SIZE", false, item_size },
	{ "INTERNALDATE", false, item_date },
	{ "MODSEQ", false, item_modseq },           /* RFC 7162 */
	{ "ENVELOPE", false, item_envelope },
	{ "BODYSTRUCTURE", false, item_body },
	{ "BODY", false, item_body },
};

/* One item name into the request.  0, or -1 (unknown or unsupported). */
static int add_item(struct fetch *f, const char *name)
{
	struct fetch_req *r;
	const char *error;

	if (f->n == FETCH_MAX_ITEMS)
		return -1;   /* BOUNDS: FETCH_MAX_ITEMS items */
	r = &f->req[f->n];
	memset(r, 0, sizeof(*r));
	/* the RFC822 forms are sections with another name in the response */
	const char *as = name;
	if (strcasecmp(name, "RFC822") == 0)
		as = "BODY[]";
	else if (strcasecmp(name, "RFC822.HEADER") == 0)
		as = "BODY.PEEK[HEADER]";
	else if (strcasecmp(name, "RFC822.TEXT") == 0)
		as = "BODY[TEXT]";
	if (strchr(as, '[') != NULL) {
		if (imap_fetch_section_parse(as, strlen(as), &r->sec, &error) < 0)
			return -1;
		if (r->sec.kind == IMAP_FETCH_BODY && r->sec.nparts == 0 &&
		    (r->sec.text == IMAP_SECTION_ALL || r->sec.text == IMAP_SECTION_HEADER ||
		     r->sec.text == IMAP_SECTION_TEXT)) {
			r->item = &section_item;
		} else {
			r->item = &tree_section_item;
			f->needs_tree = true;
		}
		if (as != name) {
			snprintf(r->label, sizeof(r->label), "%s", name);
			for (char *p = r->label; *p != '\0'; p++)
				*p = (char)toupper((unsigned char)*p);
		} else if (r->item == &section_item) {
			/* the response names the section without .PEEK and the partial's length */
			struct imap_buf lb;
			imap_buf_init(&lb, sizeof(r->label));
			imap_section_write_name(&lb, &r->sec);
			snprintf(r->label, sizeof(r->label), "%.*s", (int)lb.len, lb.data);
			imap_buf_free(&lb);
		}
		if (r->sec.kind == IMAP_FETCH_BINARY_SIZE)
			r->sec.peek = true;   /* RFC 3516: BINARY.SIZE does not set \Seen */
		if (!r->sec.peek)
			f->sets_seen = true;
		f->n++;
		return 0;
	}
	for (size_t i = 0; i < sizeof(fetch_items) / sizeof(fetch_items[0]); i++) {
		if (!fetch_items[i].section && strcasecmp(fetch_items[i].name, name) == 0) {
			r->item = &fetch_items[i];
			if (r->item->fn == item_uid) {
				if (f->uid_item)
					return 0;
				f->uid_item = true;
			}
			if (r->item->fn == item_flags)
				f->flags_item = true;
			if (r->item->fn == item_envelope || r->item->fn == item_body)
				f->needs_tree = true;
			if (r->item->fn == item_modseq) {
				if (f->modseq_item)
					return 0;
				f->modseq_item = true;
				imap_sess_condstore_on(f->ss);
			}
			f->n++;
			return 0;
		}
	}
	return -1;
}

static int parse_items(struct fetch *f, const struct imap_arg *a)
{
	const struct imap_arg *list = a;
	size_t n = 1;
	const char *s;

	if (a->type == IMAP_ARG_LIST) {
		list = a->list;
		n = a->count;
		if (n == 0)
			return -1;
	} else if (imap_arg_atom(a, &s) == 0) {
		/* the macros (RFC 3501 6.4.5) */
		bool all = strcasecmp(s, "ALL") == 0, full = strcasecmp(s, "FULL") == 0;
		if (all || full || strcasecmp(s, "FAST") == 0)
			return add_item(f, "FLAGS") | add_item(f, "INTERNALDATE") |
			       add_item(f, "RFC822.SIZE") |
			       (all || full ? add_item(f, "ENVELOPE") : 0) |
			       (full ? add_item(f, "BODY") : 0);
	}
	for (size_t i = 0; i < n; i++) {
		if (list[i].type != IMAP_ARG_ATOM || add_item(f, list[i].str) < 0)
			return -1;
	}
	return 0;
}

/* One message's FETCH response.  0, or -1: the client is gone. */
static int fetch_one(struct fetch *f, size_t i)
{
	struct imap_sess *ss = f->ss;
	struct imap_vmsg *v = &ss->msgs[i];
	const char *error;
	const struct index_rec *rec = mailbox_find(ss->box, v->uid, NULL);

	if (rec == NULL)
		return 0;   /* expunged by another session: not reported yet */
	if (f->changedsince > 0 && rec->modseq <= f->changedsince)
		return 0;
	bool flags_changed = false;
	if (f->sets_seen && !ss->readonly && !(v->flags & INDEX_FLAG_SEEN)) {
		if (mailbox_set_flags(ss->box, v->uid, (rec->flags | INDEX_FLAG_SEEN) &
				      ~INDEX_FLAG_RECENT, rec->keywords, &error) == 0) {
			rec = mailbox_find(ss->box, v->uid, NULL);
			if (rec == NULL)
				return 0;
			v->flags = imap_view_flags(rec->flags, v->flags);
			v->modseq = rec->modseq;
			flags_changed = true;
		}
	}
	f->cur_uid = v->uid;
	if (f->needs_tree) {
		/* a cache fill moves positions (storage.h): rec is looked up again after */
		if (mailbox_msg_parse(ss->box, v->uid, &f->parts, &f->env, &error) < 0) {
			char safe[LOG_MAX_FIELD + 1];
			log_warn("message-parse-failed: user=<%s>, uid=%" PRIu32 ", error=<%s>",
				 ss->ubuf, v->uid, log_sanitize(error, strlen(error), safe));
		}
		rec = mailbox_find(ss->box, v->uid, NULL);
		if (rec == NULL) {
			mime_part_free(&f->parts);
			mime_envelope_free(&f->env);
			return 0;
		}
	}
	imap_buf_printf(&ss->ic.out, "* %zu FETCH (", i + 1);
	bool first = true;
	if (!f->uid_item && ss->fetch_uid) {
		imap_buf_printf(&ss->ic.out, "UID %" PRIu32, v->uid);
		first = false;
	}
	for (size_t k = 0; k < f->n; k++) {
		if (!first)
			imap_buf_puts(&ss->ic.out, " ");
		first = false;
		if (f->req[k].item->fn(f, &f->req[k], i, rec) < 0) {
			mime_part_free(&f->parts);
			mime_envelope_free(&f->env);
			return -1;
		}
	}
	mime_part_free(&f->parts);
	mime_envelope_free(&f->env);
	if (flags_changed && !f->flags_item) {
		imap_buf_puts(&ss->ic.out, " ");
		item_flags(f, NULL, i, rec);
	}
	if (flags_changed && !f->modseq_item && ss->enabled_condstore) {
		imap_buf_puts(&ss->ic.out, " ");
		item_modseq(f, NULL, i, rec);
	}
	/* RFC 7162 3.2.4: a \Seen set by FETCH is reported with the UID too */
	if (flags_changed && ss->enabled_condstore && !f->uid_item && !ss->fetch_uid)
		imap_buf_printf(&ss->ic.out, " UID %" PRIu32, v->uid);
	imap_buf_puts(&ss->ic.out, ")\r\n");
	return imapc_send_buf(&ss->ic);
}

enum imap_result imap_cmd_fetch(struct imap_sess *ss, const struct imap_command *cmd)
{
	struct imap_seqset set;
	struct fetch *f;

	if (cmd->count != 2 && cmd->count != 3) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: FETCH set items");
		return IMAP_R_BAD;
	}
	uint64_t changedsince = 0;
	struct imap_fetch_mods mods = { 0 };
	if (cmd->count == 3) {
		/* RFC 7162 3.1.4.1: (CHANGEDSINCE modseq); 3.2.6: UID FETCH ... (CHANGEDSINCE
		 * modseq VANISHED), after ENABLE QRESYNC only */
		const char *error;
		if (imap_fetch_mods_parse(&cmd->args[2], &mods, &error) < 0 ||
		    mods.changedsince == 0) {
			imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Unknown FETCH modifier.");
			return IMAP_R_BAD;
		}
		if (mods.vanished && (!cmd->uid || !ss->enabled_qresync)) {
			imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL,
				     "VANISHED: in UID FETCH after ENABLE QRESYNC only.");
			return IMAP_R_BAD;
		}
		changedsince = mods.changedsince;
	}
	imap_seqset_init(&set);
	if (imap_sess_seqset(ss, cmd->tag, &cmd->args[0], cmd->uid, &set) < 0) {
		imap_seqset_free(&set);
		return IMAP_R_BAD;
	}
	f = xcalloc(1, sizeof(*f));
	f->ss = ss;
	if (parse_items(f, &cmd->args[1]) < 0) {
		free(f);
		imap_seqset_free(&set);
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Unknown or unsupported FETCH item.");
		return IMAP_R_BAD;
	}
	if (changedsince > 0 && add_item(f, "MODSEQ") < 0) {
		free(f);
		imap_seqset_free(&set);
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Too many FETCH items.");
		return IMAP_R_BAD;
	}
	f->changedsince = changedsince;
	ss->fetch_uid = cmd->uid;
	ss->n_fetch++;
	/* RFC 7162 3.2.6: the UIDs of the set expunged since, before any FETCH */
	if (mods.vanished)
		imap_sess_vanished_earlier(ss, changedsince, &set, 1);
	enum imap_result res = IMAP_R_OK;
	/* the structures parsed for this FETCH go to the cache in few transactions */
	if (f->needs_tree)
		mailbox_cache_batch_begin(ss->box);
	for (size_t i = 0; i < ss->count; i++) {
		uint32_t key = cmd->uid ? ss->msgs[i].uid : (uint32_t)(i + 1);
		if (!imap_seqset_contains(&set, key))
			continue;
		if (fetch_one(f, i) < 0 || ss->ic.c->failed) {
			res = IMAP_R_DROP;
			break;
		}
	}
	const char *berr;
	if (f->needs_tree && mailbox_cache_batch_end(ss->box, &berr) < 0) {
		char safe[LOG_MAX_FIELD + 1];
		log_warn("cache-write-failed: user=<%s>, error=<%s>", ss->ubuf,
			 log_sanitize(berr, strlen(berr), safe));
	}
	bool unknown_cte = f->unknown_cte;
	free(f);
	imap_seqset_free(&set);
	if (res != IMAP_R_OK)
		return res;
	imap_sess_update(ss, cmd->uid);
	if (unknown_cte)
		imapc_tagged(&ss->ic, cmd->tag, "NO", "UNKNOWN-CTE",
			     "A part's Content-Transfer-Encoding is unknown.");
	else
		imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Fetch completed.");
	return IMAP_R_OK;
}

/* ---- SEARCH -------------------------------------------------------------------------- */

/* SEARCH and UID SEARCH through common/imap's imap_search: the accessor offers the
 * view's flags and keywords, the index's date, size and mod-sequence, the message bytes
 * through a reader (opened once per message, read forward) and the cached MIME tree. */
struct search_ctx {
	struct imap_sess *ss;
	const struct imap_vmsg *v;
	struct mail_reader *mr;
	uint64_t pos;              /* the reader's position */
};

static bool search_has_keyword(void *ctx, const char *keyword)
{
	struct search_ctx *sc = ctx;
	unsigned bit;
	const char *error;
	if (mailbox_keyword_lookup(sc->ss->box, keyword, false, &bit, &error) != 1 || bit >= 32)
		return false;
	return (sc->v->keywords & (1u << bit)) != 0;
}

static int search_read(void *ctx, uint64_t offset, void *buf, size_t len, size_t *got_r)
{
	struct search_ctx *sc = ctx;
	const char *error;
	ssize_t n;

	*got_r = 0;
	if (sc->mr != NULL && offset < sc->pos)
		mail_reader_close(&sc->mr);   /* backwards: from the start again */
	if (sc->mr == NULL) {
		if (mailbox_msg_open(sc->ss->box, sc->v->uid, &sc->mr, &error) < 0)
			return -1;
		sc->pos = 0;
	}
	while (sc->pos < offset) {
		uint64_t want = offset - sc->pos;
		n = mail_reader_read(sc->mr, sc->ss->iobuf, want < IO_CHUNK ? want : IO_CHUNK,
				     &error);
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;   /* past the end */
		sc->pos += (uint64_t)n;
	}
	n = mail_reader_read(sc->mr, buf, len, &error);
	if (n < 0)
		return -1;
	sc->pos += (uint64_t)n;
	*got_r = (size_t)n;
	return 0;
}

static unsigned search_flags(uint32_t f)
{
	return ((f & INDEX_FLAG_SEEN) ? IMAP_SEARCH_SEEN : 0) |
	       ((f & INDEX_FLAG_ANSWERED) ? IMAP_SEARCH_ANSWERED : 0) |
	       ((f & INDEX_FLAG_FLAGGED) ? IMAP_SEARCH_FLAGGED : 0) |
	       ((f & INDEX_FLAG_DELETED) ? IMAP_SEARCH_DELETED : 0) |
	       ((f & INDEX_FLAG_DRAFT) ? IMAP_SEARCH_DRAFT : 0) |
	       ((f & INDEX_FLAG_RECENT) ? IMAP_SEARCH_RECENT : 0);
}

static void saved_set(struct imap_sess *ss, const uint32_t *uids, size_t n)
{
	free(ss->saved_uids);
	ss->saved_uids = NULL;
	ss->saved_count = 0;
	if (n > 0) {
		ss->saved_uids = xcalloc(n, sizeof(*uids));
		memcpy(ss->saved_uids, uids, n * sizeof(*uids));
		ss->saved_count = n;
	}
}

enum imap_result imap_cmd_search(struct imap_sess *ss, const struct imap_command *cmd)
{
	struct imap_search *s;
	struct imap_search_error err = { 0 };
	struct imap_search_settings set = {
		.uid = cmd->uid,
		.rev2 = ss->enabled_rev2,   /* RFC 9051: the answer is ESEARCH */
		.utf8_accept = ss->enabled_utf8_accept,
		.messages = ss->count > UINT32_MAX ? UINT32_MAX : (uint32_t)ss->count,
		.uid_max = ss->count > 0 ? ss->msgs[ss->count - 1].uid : 0,
		.saved_uids = ss->saved_uids,
		.saved_count = ss->saved_count,
	};
	const char *error = NULL;

	if (imap_search_compile(cmd->args, cmd->count, &set, &s, &err) < 0) {
		if (err.badcharset) {
			if (err.save)
				saved_set(ss, NULL, 0);   /* RFC 5182 2.1: a NO empties "$" */
			imapc_tagged(&ss->ic, cmd->tag, "NO", IMAP_SEARCH_BADCHARSET, "%s",
				     err.text);
			return IMAP_R_OK;
		}
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "%s", err.text);
		return IMAP_R_BAD;
	}
	if (imap_search_uses_modseq(s))
		imap_sess_condstore_on(ss);   /* RFC 7162 3.1 */
	bool body = imap_search_needs_body(s);
	if (body)
		mailbox_cache_batch_begin(ss->box);
	int r = 0;
	for (size_t i = 0; i < ss->count && r >= 0; i++) {
		struct search_ctx sc = { .ss = ss, .v = &ss->msgs[i] };
		const struct index_rec *rec = mailbox_find(ss->box, ss->msgs[i].uid, NULL);
		if (rec == NULL)
			continue;   /* expunged by another session, not reported yet */
		struct imap_search_msg m = {
			.ctx = &sc,
			.seq = (uint32_t)(i + 1),
			.uid = ss->msgs[i].uid,
			.flags = search_flags(ss->msgs[i].flags),
			.internal_date = (time_t)rec->date,
			.internal_tz = 0,
			.size = rec->size != INDEX_SIZE_UNKNOWN ? rec->size : 0,
			.modseq = rec->modseq,
			.has_keyword = search_has_keyword,
			.read = search_read,
		};
		struct mime_part *parts = NULL;
		/* the cached tree tells BODY where the text parts lie (storage.h: a fill
		 * moves positions; rec is not used after it) */
		if (body && mailbox_msg_parts(ss->box, m.uid, &parts, &error) == 0)
			m.parts = parts;
		r = imap_search_match(s, &m, &error);
		mime_part_free(&parts);
		mail_reader_close(&sc.mr);
	}
	if (body) {
		const char *berr;
		if (mailbox_cache_batch_end(ss->box, &berr) < 0) {
			char safe[LOG_MAX_FIELD + 1];
			log_warn("cache-write-failed: user=<%s>, error=<%s>", ss->ubuf,
				 log_sanitize(berr, strlen(berr), safe));
		}
	}
	if (r < 0) {
		if (imap_search_saving(s))
			saved_set(ss, NULL, 0);
		imap_search_free(&s);
		imap_sess_storage_error(ss, cmd->tag, "SEARCH", error != NULL ? error : "read");
		return IMAP_R_OK;
	}
	/* the answer may be long (one number per message): its own buffer, sized by it */
	size_t nres;
	imap_search_results(s, &nres);
	struct imap_buf rb;
	imap_buf_init(&rb, nres * 12 + IMAP_MAX_TAG + 256);
	int fr = imap_search_format(s, cmd->tag, &rb);
	if (imap_search_saving(s)) {
		size_t n;
		const uint32_t *uids = imap_search_saved_uids(s, &n);
		saved_set(ss, uids, n);
	}
	imap_search_free(&s);
	if (fr < 0) {
		imap_buf_free(&rb);
		imapc_tagged(&ss->ic, cmd->tag, "NO", "SERVERBUG", "Search result too long.");
		return IMAP_R_OK;
	}
	if (imapc_send_buf(&ss->ic) < 0 ||
	    (rb.len > 0 && conn_write(ss->ic.c, rb.data, rb.len) < 0)) {
		imap_buf_free(&rb);
		return IMAP_R_DROP;
	}
	imap_buf_free(&rb);
	imap_sess_update(ss, cmd->uid);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Search completed.");
	return IMAP_R_OK;
}
