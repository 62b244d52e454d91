/* Mailbox commands: SELECT, EXAMINE, CLOSE, UNSELECT, LIST, LSUB, CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE, STATUS (RFC 3501 section 6.3, RFC 9051 section 6.3; UNSELECT of
 * RFC 3691; STATUS SIZE of RFC 9051).
 *
 * Names: the storage's names are UTF-8 with "/" between levels (storage.h), which is
 * also imapd's hierarchy delimiter; on the wire they are modified UTF-7 (RFC 3501 5.1.3)
 * unless UTF8=ACCEPT is enabled (imap_sess_mailbox_arg() decodes, imap_write_mailbox()
 * and LIST encode).  LIST attributes and special use come from storage_folder_list();
 * subscriptions are the storage's (storage_subscriptions_list/set). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/log.h"
#include "base/util.h"
#include "imap.h"
#include "imap/imap_match.h"
#include "imap/imap_qresync.h"
#include "imap/imap_utf7.h"
#include "storage/storage.h"

/* Leave the selected folder, expunging its \Deleted messages first when asked (CLOSE). */
static void deselect(struct imap_sess *ss, bool expunge)
{
	if (ss->box == NULL)
		return;
	if (expunge && !ss->readonly) {
		size_t n = mailbox_count(ss->box), k = 0;
		uint32_t *uids = xcalloc(n + 1, sizeof(*uids));
		for (size_t i = 0; i < n; i++) {
			const struct index_rec *rec = mailbox_get(ss->box, i);
			if (rec != NULL && (rec->flags & INDEX_FLAG_DELETED))
				uids[k++] = rec->uid;   /* BOUNDS: k <= i < n */
		}
		const char *error;
		if (k > 0 && mailbox_expunge(ss->box, uids, k, &error) < 0) {
			char safe[LOG_MAX_FIELD + 1];
			log_err("expunge-failed: user=<%s>, error=<%s>", ss->ubuf,
				log_sanitize(error, strlen(error), safe));
		} else {
			ss->n_expunged += (unsigned)k;
		}
		free(uids);
	}
	mailbox_close(&ss->box);
	ss->count = 0;
	/* RFC 5182 2.1: "$" is empty again in the next selected folder */
	free(ss->saved_uids);
	ss->saved_uids = NULL;
	ss->saved_count = 0;
	ss->state = IMAP_AUTH;
}

/* SELECT (QRESYNC (...)) after the usual responses (RFC 7162 3.2.5): what changed since
 * the client's mod-sequence, when its UIDVALIDITY is still the folder's: VANISHED
 * (EARLIER), then FETCH of the messages changed or added (restricted to its known UIDs
 * when given).  The sequence match data (3.2.5.2) narrows VANISHED: up to the last pair
 * (number, UID) that still holds, in order, the client knows every expunge. */
static void select_qresync(struct imap_sess *ss, const struct imap_select_params *sp)
{
	if (sp->uidvalidity != mailbox_hdr(ss->box)->uidvalidity)
		return;
	const struct imap_seqset *known = sp->have_known ? &sp->known : NULL;
	uint32_t min_uid = 1;
	if (sp->have_match) {
		struct imap_seqset_iter is, iu;
		uint32_t seq, uid;
		imap_seqset_iter_init(&is, &sp->match_seqs);
		imap_seqset_iter_init(&iu, &sp->match_uids);
		while (imap_seqset_iter_next(&is, &seq) && imap_seqset_iter_next(&iu, &uid)) {
			if (seq > ss->count || ss->msgs[seq - 1].uid != uid)
				break;   /* BOUNDS: 1 <= seq <= count (0 is never a member) */
			min_uid = uid < UINT32_MAX ? uid + 1 : uid;
		}
	}
	imap_sess_vanished_earlier(ss, sp->modseq, known, min_uid);
	for (size_t i = 0; i < ss->count; i++) {
		const struct imap_vmsg *v = &ss->msgs[i];
		if (v->modseq <= sp->modseq || (known != NULL && !imap_seqset_contains(known, v->uid)))
			continue;
		char fl[IMAP_FLAGS_TEXT_MAX];
		imap_flags_format(v->flags, v->keywords, ss->box, fl, sizeof(fl));
		imapc_data(&ss->ic, "%zu FETCH (UID %" PRIu32 " FLAGS %s MODSEQ (%" PRIu64 "))",
			   i + 1, v->uid, fl, v->modseq);
	}
}

enum imap_result imap_cmd_select(struct imap_sess *ss, const struct imap_command *cmd)
{
	char name[STORAGE_NAME_MAX + 1];
	const char *error;
	struct imap_select_params sp;

	/* RFC 7162 3.1.8, 3.2.5: SELECT mailbox [(CONDSTORE QRESYNC (...))], checked
	 * before the folder is opened */
	imap_select_params_init(&sp);
	if ((cmd->count != 1 && cmd->count != 2) ||
	    (cmd->count == 2 && imap_select_params_parse(&cmd->args[1], &sp, &error) < 0)) {
		imap_select_params_free(&sp);
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL,
			     "Usage: %s mailbox [(CONDSTORE) | (QRESYNC (uidvalidity modseq "
			     "[known-uids [(seqs uids)]]))]", cmd->name);
		return IMAP_R_BAD;
	}
	if (sp.qresync && !ss->enabled_qresync) {
		imap_select_params_free(&sp);
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "ENABLE QRESYNC first.");
		return IMAP_R_BAD;
	}
	if (imap_sess_mailbox_arg(ss, cmd->tag, &cmd->args[0], name, sizeof(name)) < 0) {
		imap_select_params_free(&sp);
		return IMAP_R_OK;
	}
	if (sp.condstore)
		ss->enabled_condstore = true;
	/* RFC 9051 6.3.2: a failed SELECT leaves no folder selected; [CLOSED] tells the
	 * client where the previous folder's responses end (RFC 7162 3.2.11, RFC 9051) */
	if (ss->box != NULL)
		imapc_untagged(&ss->ic, "OK", "CLOSED", "Previous mailbox closed.");
	deselect(ss, false);
	if (mailbox_open(ss->st, name, &ss->box, &error) < 0) {
		imap_select_params_free(&sp);
		imap_sess_storage_error(ss, cmd->tag, "SELECT", error);
		return IMAP_R_OK;
	}
	snprintf(ss->box_name, sizeof(ss->box_name), "%s", name);
	ss->readonly = strcmp(cmd->name, "EXAMINE") == 0;
	ss->state = IMAP_SELECTED;
	imap_sess_view_reset(ss);

	/* \Recent: a read-write SELECT claims what nobody claimed (imap_sess_claim_recent) */
	size_t recent = imap_sess_claim_recent(ss), unseen = 0;
	const struct index_hdr *hdr = mailbox_hdr(ss->box);
	for (size_t i = 0; i < ss->count && unseen == 0; i++)
		if (!(ss->msgs[i].flags & INDEX_FLAG_SEEN))
			unseen = i + 1;
	imap_sess_send_flags(ss);
	imapc_data(&ss->ic, "%zu EXISTS", ss->count);
	if (ss->enabled_rev2) {
		/* RFC 9051 6.3.2: a LIST response with the name as the client spells it; no
		 * RECENT and no UNSEEN code (deprecated, appendix E items 11 and 12) */
		imap_buf_printf(&ss->ic.out, "* LIST () \"%c\" ", IMAP_DELIM);
		imap_write_mailbox(ss, name);
		imap_buf_puts(&ss->ic.out, "\r\n");
		imapc_send_buf(&ss->ic);
	} else {
		imapc_data(&ss->ic, "%zu RECENT", recent);
	}
	char code[64];
	if (unseen > 0 && !ss->enabled_rev2) {
		snprintf(code, sizeof(code), "UNSEEN %zu", unseen);
		imapc_untagged(&ss->ic, "OK", code, "First unseen.");
	}
	snprintf(code, sizeof(code), "UIDVALIDITY %" PRIu32, hdr->uidvalidity);
	imapc_untagged(&ss->ic, "OK", code, "UIDs valid.");
	snprintf(code, sizeof(code), "UIDNEXT %" PRIu32, hdr->uidnext);
	imapc_untagged(&ss->ic, "OK", code, "Predicted next UID.");
	snprintf(code, sizeof(code), "HIGHESTMODSEQ %" PRIu64, hdr->highestmodseq);
	imapc_untagged(&ss->ic, "OK", code, "Highest mod-sequence.");
	if (sp.qresync)
		select_qresync(ss, &sp);
	imap_select_params_free(&sp);
	imapc_tagged(&ss->ic, cmd->tag, "OK", ss->readonly ? "READ-ONLY" : "READ-WRITE",
		     "%s completed.", cmd->name);
	return IMAP_R_OK;
}

enum imap_result imap_cmd_close(struct imap_sess *ss, const struct imap_command *cmd)
{
	deselect(ss, strcmp(cmd->name, "CLOSE") == 0);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "%s completed.", cmd->name);
	return IMAP_R_OK;
}

enum imap_result imap_cmd_unselect(struct imap_sess *ss, const struct imap_command *cmd)
{
	return imap_cmd_close(ss, cmd);
}

/* ---- LIST and LSUB ------------------------------------------------------------------- */

struct names {
	char **v;
	unsigned *flags;
	size_t n, cap;
};

static void names_add(struct names *ns, const char *name, unsigned flags)
{
	if (ns->n == STORAGE_FOLDERS_MAX + 1)
		return;   /* BOUNDS: the storage lists at most STORAGE_FOLDERS_MAX, + INBOX */
	if (ns->n == ns->cap) {
		ns->cap = ns->cap == 0 ? 32 : ns->cap * 2;
		ns->v = xrealloc(ns->v, ns->cap * sizeof(*ns->v));
		ns->flags = xrealloc(ns->flags, ns->cap * sizeof(*ns->flags));
	}
	ns->flags[ns->n] = flags;
	ns->v[ns->n++] = xstrdup(name);
}

static void subs_cb(void *ctx, const char *name)
{
	names_add(ctx, name, 0);
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	free(ns->flags);
	memset(ns, 0, sizeof(*ns));
}

/* The wire form of a storage name: modified UTF-7, or UTF-8 once UTF8=ACCEPT is enabled
 * (INBOX as it is).  NULL for a name that cannot be encoded (the storage gives valid
 * names only). */
static char *wire_name(struct imap_sess *ss, const char *name, size_t *len_r)
{
	char *wire = NULL;
	const char *error;

	if (!ss->enabled_utf8 && strcmp(name, "INBOX") != 0) {
		if (imap_utf8_to_utf7(name, strlen(name), &wire, len_r, &error) < 0)
			return NULL;
		return wire;
	}
	*len_r = strlen(name);
	return xstrdup(name);
}

/* One LSUB line for a storage (UTF-8) name, if its wire form matches pat. */
static void lsub_line(struct imap_sess *ss, const char *pat, const char *name)
{
	size_t wlen;
	char *wire = wire_name(ss, name, &wlen);

	if (wire != NULL && imap_match_mailbox(pat, strlen(pat), wire, wlen, IMAP_DELIM)) {
		imap_buf_printf(&ss->ic.out, "* LSUB () \"%c\" ", IMAP_DELIM);
		imap_write_astring(&ss->ic.out, wire, wlen, ss->ic.wflags);
		imap_buf_puts(&ss->ic.out, "\r\n");
		imapc_send_buf(&ss->ic);
	}
	free(wire);
}

/* reference + pattern, as one pattern (RFC 3501 6.3.8: the reference is a prefix), in the
 * wire form: names are matched in the form the client sees them.  0, or -1 (too long). */
static int pattern_join(const struct imap_arg *ref, const struct imap_arg *p, char **pat_r)
{
	const char *r, *s;
	size_t rlen, plen;

	if (imap_arg_astring(ref, &r, &rlen) < 0 || imap_arg_list_mailbox(p, &s, &plen) < 0 ||
	    rlen + plen > IMAP_LIST_PATTERN_MAX)
		return -1;
	char *pat = xmalloc(rlen + plen + 1);
	memcpy(pat, r, rlen);   /* BOUNDS: rlen + plen <= IMAP_LIST_PATTERN_MAX */
	memcpy(pat + rlen, s, plen);
	pat[rlen + plen] = '\0';
	*pat_r = pat;
	return 0;
}

/* ---- LIST (RFC 3501 6.3.8; LIST-EXTENDED RFC 5258 = RFC 9051 6.3.9; SPECIAL-USE RFC
 * 6154; LIST-STATUS RFC 5819) ---- */

enum {
	SEL_SUBSCRIBED = 1 << 0,
	SEL_REMOTE = 1 << 1,       /* accepted, no remote folders here */
	SEL_RECURSIVE = 1 << 2,
	SEL_SPECIAL = 1 << 3,
	RET_SUBSCRIBED = 1 << 8,
	RET_CHILDREN = 1 << 9,     /* \HasChildren/\HasNoChildren are always given */
	RET_SPECIAL = 1 << 10,     /* special uses are always given */
	RET_STATUS = 1 << 11,
};

struct list_req {
	bool extended;             /* RFC 9051 6.3.9's extended syntax */
	unsigned opts;
	char *pats[IMAP_LIST_PATTERNS_MAX];
	size_t npats;
	const struct imap_arg *status;   /* RETURN (STATUS (items)) */
	size_t nstatus;
};

static void list_req_free(struct list_req *r)
{
	for (size_t i = 0; i < r->npats; i++)
		free(r->pats[i]);
	r->npats = 0;
}

static bool status_items_ok(const struct imap_arg *items, size_t n);

/* The options of one list ("(SUBSCRIBED RECURSIVEMATCH)"): 0, or -1 (unknown: BAD). */
static int list_options(struct list_req *r, const struct imap_arg *l, bool ret)
{
	const char *a;
	for (size_t i = 0; i < l->count; i++) {
		if (imap_arg_atom(&l->list[i], &a) < 0)
			return -1;
		if (strcasecmp(a, "SUBSCRIBED") == 0) {
			r->opts |= ret ? RET_SUBSCRIBED : SEL_SUBSCRIBED | RET_SUBSCRIBED;
		} else if (strcasecmp(a, "SPECIAL-USE") == 0) {
			r->opts |= ret ? RET_SPECIAL : SEL_SPECIAL | RET_SPECIAL;
		} else if (!ret && strcasecmp(a, "REMOTE") == 0) {
			r->opts |= SEL_REMOTE;
		} else if (!ret && strcasecmp(a, "RECURSIVEMATCH") == 0) {
			r->opts |= SEL_RECURSIVE;
		} else if (ret && strcasecmp(a, "CHILDREN") == 0) {
			r->opts |= RET_CHILDREN;
		} else if (ret && strcasecmp(a, "STATUS") == 0) {
			/* STATUS (items), once */
			if (i + 1 == l->count || l->list[i + 1].type != IMAP_ARG_LIST ||
			    l->list[i + 1].count == 0 || (r->opts & RET_STATUS) ||
			    !status_items_ok(l->list[i + 1].list, l->list[i + 1].count))
				return -1;
			r->opts |= RET_STATUS;
			r->status = l->list[i + 1].list;
			r->nstatus = l->list[i + 1].count;
			i++;
		} else {
			return -1;
		}
	}
	return 0;
}

/* LIST [(selection)] reference pattern|(patterns) [RETURN (options)].  0, or -1 with
 * BAD written. */
static int list_parse(struct imap_sess *ss, const struct imap_command *cmd,
		      struct list_req *r)
{
	const struct imap_arg *a = cmd->args;
	size_t n = cmd->count, i = 0;
	const char *why = "Usage: LIST [(options)] reference pattern|(patterns) "
			  "[RETURN (options)]";

	memset(r, 0, sizeof(*r));
	if (n > 0 && a[0].type == IMAP_ARG_LIST) {
		r->extended = true;
		if (list_options(r, &a[0], false) < 0) {
			why = "Unknown LIST selection option.";
			goto bad;
		}
		i = 1;
	}
	if (n < i + 2)
		goto bad;
	const struct imap_arg *ref = &a[i], *pats = &a[i + 1];
	i += 2;
	if (i < n) {
		r->extended = true;
		if (n != i + 2 || !imap_arg_is_atom(&a[i], "RETURN") ||
		    a[i + 1].type != IMAP_ARG_LIST)
			goto bad;
		if (list_options(r, &a[i + 1], true) < 0) {
			why = "Unknown LIST return option.";
			goto bad;
		}
	}
	/* RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE only) is BAD */
	if ((r->opts & SEL_RECURSIVE) && !(r->opts & (SEL_SUBSCRIBED | SEL_SPECIAL))) {
		why = "RECURSIVEMATCH needs another selection option.";
		goto bad;
	}
	if (pats->type == IMAP_ARG_LIST) {
		r->extended = true;
		if (pats->count == 0 || pats->count > IMAP_LIST_PATTERNS_MAX) {
			why = "Too many patterns.";
			goto bad;
		}
		for (size_t k = 0; k < pats->count; k++) {
			if (pattern_join(ref, &pats->list[k], &r->pats[r->npats]) < 0)
				goto bad;
			r->npats++;
			/* RFC 9051 6.3.9: in the extended syntax an empty pattern is ignored */
			if (pats->list[k].len == 0)
				free(r->pats[--r->npats]);
		}
	} else {
		if (pattern_join(ref, pats, &r->pats[0]) < 0)
			goto bad;
		r->npats = 1;
		if (r->extended && pats->len == 0)
			free(r->pats[--r->npats]);
	}
	return 0;
bad:
	list_req_free(r);
	imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "%s", why);
	return -1;
}

/* A name LIST may return. */
struct lent {
	char *name;                /* the storage name */
	char *wire;                /* as the client sees it */
	size_t wlen;
	unsigned flags;            /* STORAGE_FOLDER_* (listed ones) */
	bool listed;               /* INBOX, or in the storage's listing */
	bool subscribed;
	bool matches;              /* by one of the patterns */
	bool childinfo;            /* RECURSIVEMATCH: a descendant meets the selection */
};

struct lents {
	struct lent *e;
	size_t n, cap;
	bool full;
};

static void lents_add(struct lents *ls, const char *name, unsigned flags, bool listed,
		      bool subscribed)
{
	/* BOUNDS: listing (STORAGE_FOLDERS_MAX) + INBOX + subscriptions (file-bounded) +
	 * their parents, capped */
	if (ls->n >= IMAP_LIST_NAMES_MAX) {
		ls->full = true;
		return;
	}
	if (ls->n == ls->cap) {
		ls->cap = ls->cap == 0 ? 64 : ls->cap * 2;
		ls->e = xrealloc(ls->e, ls->cap * sizeof(*ls->e));
	}
	struct lent *e = &ls->e[ls->n++];
	memset(e, 0, sizeof(*e));
	e->name = xstrdup(name);
	e->flags = flags;
	e->listed = listed;
	e->subscribed = subscribed;
}

static void lents_free(struct lents *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		free(ls->e[i].name);
		free(ls->e[i].wire);
	}
	free(ls->e);
	memset(ls, 0, sizeof(*ls));
}

static void lents_folder_cb(void *ctx, const char *name, unsigned flags)
{
	lents_add(ctx, name, flags, true, false);
}

static void lents_sub_cb(void *ctx, const char *name)
{
	lents_add(ctx, name, 0, false, true);
}

/* INBOX first, then by bytes (the storage's order: parents before children). */
static int lent_cmp(const void *a, const void *b)
{
	const char *x = ((const struct lent *)a)->name, *y = ((const struct lent *)b)->name;
	bool xi = strcmp(x, "INBOX") == 0, yi = strcmp(y, "INBOX") == 0;
	if (xi || yi)
		return yi - xi;
	return strcmp(x, y);
}

/* A name among the first n entries (sorted). */
static struct lent *lents_find(struct lents *ls, size_t n, const char *name)
{
	struct lent key = { .name = (char *)name };
	return bsearch(&key, ls->e, n, sizeof(*ls->e), lent_cmp);
}

/* Sort, and merge the entries of one name (a listed folder that is also subscribed). */
static void lents_sort(struct lents *ls)
{
	if (ls->n > 1)
		qsort(ls->e, ls->n, sizeof(*ls->e), lent_cmp);
	size_t o = 0;
	for (size_t i = 0; i < ls->n; i++) {
		if (o > 0 && strcmp(ls->e[o - 1].name, ls->e[i].name) == 0) {
			struct lent *k = &ls->e[o - 1], *d = &ls->e[i];
			if (d->listed) {
				k->listed = true;
				k->flags = d->flags;
			}
			k->subscribed |= d->subscribed;
			free(d->name);
			free(d->wire);
			continue;
		}
		ls->e[o++] = ls->e[i];
	}
	ls->n = o;
}

static bool list_meets(const struct list_req *r, const struct lent *e)
{
	if ((r->opts & SEL_SUBSCRIBED) ? !e->subscribed : !e->listed)
		return false;
	if ((r->opts & SEL_SPECIAL) &&
	    (!e->listed || !(e->flags & STORAGE_FOLDER_SPECIAL) ||
	     (e->flags & STORAGE_FOLDER_NONEXISTENT)))
		return false;
	return true;
}

static void attr_add(char *buf, size_t size, size_t *n, const char *attr)
{
	int k = snprintf(buf + *n, size - *n, "%s%s", *n > 0 ? " " : "", attr);
	if (k > 0 && (size_t)k < size - *n)
		*n += (size_t)k;   /* BOUNDS: the caller's buffer holds every attribute */
}

/* The attributes of one LIST response (RFC 9051 7.3.1, RFC 5258 4, RFC 6154 2). */
static void list_attrs(const struct imap_sess *ss, const struct list_req *r,
		       const struct lent *e, bool noselect, char *buf, size_t size)
{
	static const struct { unsigned bit; const char *attr; } uses[] = {
		{ STORAGE_FOLDER_DRAFTS, "\\Drafts" },
		{ STORAGE_FOLDER_SENT, "\\Sent" },
		{ STORAGE_FOLDER_TRASH, "\\Trash" },
		{ STORAGE_FOLDER_JUNK, "\\Junk" },
		{ STORAGE_FOLDER_ARCHIVE, "\\Archive" },
	};
	size_t n = 0;
	bool missing = !e->listed || (e->flags & STORAGE_FOLDER_NONEXISTENT);

	buf[0] = '\0';
	/* \NonExistent (implies \Noselect) in the extended syntax and in IMAP4rev2; an
	 * IMAP4rev1 basic LIST gives the old \Noselect */
	if (missing && (r->extended || ss->enabled_rev2))
		attr_add(buf, size, &n, "\\NonExistent");
	else if (missing || noselect || (e->flags & STORAGE_FOLDER_NOSELECT))
		attr_add(buf, size, &n, "\\Noselect");
	if (e->flags & STORAGE_FOLDER_NOINFERIORS)
		attr_add(buf, size, &n, "\\Noinferiors");
	attr_add(buf, size, &n, (e->flags & STORAGE_FOLDER_CHILDREN) ? "\\HasChildren" :
		 "\\HasNoChildren");
	if ((r->opts & RET_SUBSCRIBED) && e->subscribed)
		attr_add(buf, size, &n, "\\Subscribed");
	for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]) && !missing; i++)
		if (e->flags & uses[i].bit)
			attr_add(buf, size, &n, uses[i].attr);
}

static int status_write(struct imap_sess *ss, const char *name,
			const struct imap_arg *items, size_t nitems, const char **error_r);

/* One LIST response, and its STATUS with RETURN (STATUS ...): the STATUS is looked up
 * first, as a folder that cannot be opened is \Noselect (RFC 5819 / RFC 9051 6.3.9.2). */
static void list_send(struct imap_sess *ss, const struct list_req *r, const struct lent *e)
{
	char attrs[256], *status = NULL;
	size_t slen = 0;
	bool noselect = false;

	if ((r->opts & RET_STATUS) && e->listed &&
	    !(e->flags & (STORAGE_FOLDER_NOSELECT | STORAGE_FOLDER_NONEXISTENT))) {
		const char *error;
		if (status_write(ss, e->name, r->status, r->nstatus, &error) < 0) {
			noselect = true;
		} else {
			/* keep the STATUS line until the LIST line is out */
			slen = ss->ic.out.len;
			status = xmalloc(slen + 1);
			memcpy(status, ss->ic.out.data, slen);
			ss->ic.out.len = 0;
		}
	}
	list_attrs(ss, r, e, noselect, attrs, sizeof(attrs));
	imap_buf_printf(&ss->ic.out, "* LIST (%s) \"%c\" ", attrs, IMAP_DELIM);
	imap_write_astring(&ss->ic.out, e->wire, e->wlen, ss->ic.wflags);
	if (e->childinfo) {
		bool both = (r->opts & SEL_SUBSCRIBED) && (r->opts & SEL_SPECIAL);
		imap_buf_printf(&ss->ic.out, " (\"CHILDINFO\" (%s%s%s))",
				(r->opts & SEL_SUBSCRIBED) ? "\"SUBSCRIBED\"" : "",
				both ? " " : "", (r->opts & SEL_SPECIAL) ? "\"SPECIAL-USE\"" : "");
	}
	imap_buf_puts(&ss->ic.out, "\r\n");
	imapc_send_buf(&ss->ic);
	if (status != NULL) {
		imap_buf_append(&ss->ic.out, status, slen);
		imapc_send_buf(&ss->ic);
		free(status);
	}
}

static bool list_match(const struct list_req *r, const char *wire, size_t wlen)
{
	for (size_t i = 0; i < r->npats; i++)
		if (imap_match_mailbox(r->pats[i], strlen(r->pats[i]), wire, wlen, IMAP_DELIM))
			return true;
	return false;
}

enum imap_result imap_cmd_list(struct imap_sess *ss, const struct imap_command *cmd)
{
	struct list_req r;
	struct lents ls = { 0 };
	const char *error;

	if (list_parse(ss, cmd, &r) < 0)
		return IMAP_R_BAD;
	if (!r.extended && r.pats[0][0] == '\0') {
		/* basic LIST "" "": the delimiter and the root (RFC 9051 6.3.9) */
		imap_buf_printf(&ss->ic.out, "* LIST (\\Noselect) \"%c\" \"\"\r\n", IMAP_DELIM);
		imapc_send_buf(&ss->ic);
		list_req_free(&r);
		imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "List completed.");
		return IMAP_R_OK;
	}
	lents_add(&ls, "INBOX", STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_NOINFERIORS, true,
		  false);
	if (storage_folder_list(ss->st, lents_folder_cb, &ls, &error) < 0 ||
	    ((r.opts & RET_SUBSCRIBED) &&
	     storage_subscriptions_list(ss->st, lents_sub_cb, &ls, &error) < 0)) {
		lents_free(&ls);
		list_req_free(&r);
		imap_sess_storage_error(ss, cmd->tag, "LIST", error);
		return IMAP_R_OK;
	}
	lents_sort(&ls);
	/* RECURSIVEMATCH: the parents of what meets the selection may be returned (with
	 * CHILDINFO) even when they are no folder and not subscribed */
	if (r.opts & SEL_RECURSIVE) {
		size_t n0 = ls.n;
		for (size_t i = 0; i < n0; i++) {
			if (!list_meets(&r, &ls.e[i]))
				continue;
			char *nm = ls.e[i].name;
			for (char *s = strchr(nm, '/'); s != NULL; s = strchr(s + 1, '/')) {
				*s = '\0';
				if (lents_find(&ls, n0, nm) == NULL)
					lents_add(&ls, nm, 0, false, false);
				*s = '/';   /* (the name's bytes do not move with ls.e) */
			}
		}
		if (ls.n != n0)
			lents_sort(&ls);
	}
	if (ls.full) {
		lents_free(&ls);
		list_req_free(&r);
		imapc_tagged(&ss->ic, cmd->tag, "NO", "LIMIT", "Too many folders to list.");
		return IMAP_R_OK;
	}
	for (size_t i = 0; i < ls.n; i++) {
		struct lent *e = &ls.e[i];
		e->wire = wire_name(ss, e->name, &e->wlen);
		e->matches = e->wire != NULL && list_match(&r, e->wire, e->wlen);
	}
	/* CHILDINFO: a descendant meets the selection but matches no pattern (RFC 9051
	 * 6.3.9.3 2B; a matching one is returned itself, so it is not repeated) */
	if (r.opts & SEL_RECURSIVE) {
		for (size_t i = 0; i < ls.n; i++) {
			if (ls.e[i].matches || !list_meets(&r, &ls.e[i]))
				continue;
			char nm[STORAGE_NAME_MAX + 1];
			snprintf(nm, sizeof(nm), "%s", ls.e[i].name);
			for (char *s = strchr(nm, '/'); s != NULL; s = strchr(s + 1, '/')) {
				*s = '\0';
				struct lent *p = lents_find(&ls, ls.n, nm);
				if (p != NULL)
					p->childinfo = true;
				*s = '/';
			}
		}
	}
	for (size_t i = 0; i < ls.n; i++) {
		struct lent *e = &ls.e[i];
		if (e->matches && (list_meets(&r, e) || e->childinfo))
			list_send(ss, &r, e);
	}
	lents_free(&ls);
	list_req_free(&r);
	imap_sess_update(ss, true);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "List completed.");
	return IMAP_R_OK;
}

enum imap_result imap_cmd_lsub(struct imap_sess *ss, const struct imap_command *cmd)
{
	char *pat;
	const char *error;
	struct names subs = { 0 };

	if (cmd->count != 2 || pattern_join(&cmd->args[0], &cmd->args[1], &pat) < 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: LSUB reference pattern");
		return IMAP_R_BAD;
	}
	if (storage_subscriptions_list(ss->st, subs_cb, &subs, &error) < 0) {
		names_free(&subs);
		free(pat);
		imap_sess_storage_error(ss, cmd->tag, "LSUB", error);
		return IMAP_R_OK;
	}
	for (size_t i = 0; i < subs.n; i++)
		lsub_line(ss, pat, subs.v[i]);
	names_free(&subs);
	free(pat);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Lsub completed.");
	return IMAP_R_OK;
}

static enum imap_result subscribe(struct imap_sess *ss, const struct imap_command *cmd,
				  bool add)
{
	char name[STORAGE_NAME_MAX + 1];
	const char *error;

	if (cmd->count != 1) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: %s mailbox", cmd->name);
		return IMAP_R_BAD;
	}
	if (imap_sess_mailbox_arg(ss, cmd->tag, &cmd->args[0], name, sizeof(name)) < 0)
		return IMAP_R_OK;
	if (storage_subscriptions_set(ss->st, name, add, &error) < 0) {
		imap_sess_storage_error(ss, cmd->tag, cmd->name, error);
		return IMAP_R_OK;
	}
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "%s completed.", cmd->name);
	return IMAP_R_OK;
}

enum imap_result imap_cmd_subscribe(struct imap_sess *ss, const struct imap_command *cmd)
{
	return subscribe(ss, cmd, true);
}

enum imap_result imap_cmd_unsubscribe(struct imap_sess *ss, const struct imap_command *cmd)
{
	return subscribe(ss, cmd, false);
}

/* ---- the first login ---------------------------------------------------------------- */

static void count_cb(void *ctx, const char *name, unsigned flags)
{
	(void)name;
	(void)flags;
	(*(size_t *)ctx)++;
}

/* RFC 6154: the special-use folders exist from the first login: a store with no folder
 * at all gets Drafts, Sent, Trash, Junk and Archive, subscribed (storage_special_create;
 * clients that show subscribed folders only, as Thunderbird does by default, see them at
 * once).  A folder the user deletes later is not made again: the store has folders then. */
void imap_mailbox_first_login(struct imap_sess *ss)
{
	size_t n = 0;
	const char *error;

	if (storage_folder_list(ss->st, count_cb, &n, &error) < 0 || n > 0)
		return;
	if (storage_subscriptions_set(ss->st, "INBOX", true, &error) < 0 ||
	    storage_special_create(ss->st, &error) < 0) {
		char safe[LOG_MAX_FIELD + 1];
		log_warn("folder-create-failed: user=<%s>, error=<%s>", ss->ubuf,
			 log_sanitize(error, strlen(error), safe));
	}
}

/* ---- CREATE, DELETE, RENAME ---------------------------------------------------------- */

static int one_name(struct imap_sess *ss, const struct imap_command *cmd, size_t nargs,
		    char *name, size_t size)
{
	if (cmd->count != nargs) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Wrong number of arguments.");
		return -2;
	}
	return imap_sess_mailbox_arg(ss, cmd->tag, &cmd->args[0], name, size);
}

/* CREATE's parameters (RFC 4466 create-param; RFC 6154 3: USE (\Drafts)): the one special
 * use asked for in *use_r (0 none).  0; -1 BAD written; -2 NO [USEATTR] written. */
static int create_params(struct imap_sess *ss, const struct imap_command *cmd,
			 unsigned *use_r)
{
	const char *attr;

	*use_r = 0;
	if (cmd->count == 1)
		return 0;
	const struct imap_arg *p = &cmd->args[1];
	if (cmd->count != 2 || p->type != IMAP_ARG_LIST || p->count != 2 ||
	    !imap_arg_is_atom(&p->list[0], "USE") || p->list[1].type != IMAP_ARG_LIST) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL,
			     "Usage: CREATE mailbox [(USE (special-use))]");
		return -1;
	}
	const struct imap_arg *uses = &p->list[1];
	for (size_t i = 0; i < uses->count; i++) {
		if (imap_arg_flag(&uses->list[i], &attr) < 0) {
			imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Invalid special use.");
			return -1;
		}
	}
	if (uses->count == 0)
		return 0;
	if (uses->count > 1) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "USEATTR",
			     "One special use per folder.");
		return -2;
	}
	imap_arg_flag(&uses->list[0], &attr);
	*use_r = storage_special_flag(attr);
	if (*use_r == 0) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "USEATTR",
			     "Supported special uses: \\Drafts \\Sent \\Trash \\Junk \\Archive.");
		return -2;
	}
	return 0;
}

enum imap_result imap_cmd_create(struct imap_sess *ss, const struct imap_command *cmd)
{
	char name[STORAGE_NAME_MAX + 1];
	const char *error, *s;
	size_t len;
	unsigned use;

	if (cmd->count < 1 || cmd->count > 2) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Wrong number of arguments.");
		return IMAP_R_BAD;
	}
	int r = create_params(ss, cmd, &use);
	if (r < 0)
		return r == -1 ? IMAP_R_BAD : IMAP_R_OK;
	/* "name/": a level to hold sub-folders (RFC 3501 6.3.3) */
	struct imap_arg arg = cmd->args[0];
	bool parent = imap_arg_astring(&arg, &s, &len) == 0 && len > 1 &&
		      s[len - 1] == IMAP_DELIM;
	if (parent)
		arg.len--;
	if (imap_sess_mailbox_arg(ss, cmd->tag, &arg, name, sizeof(name)) < 0)
		return IMAP_R_OK;
	if (strcmp(name, "INBOX") == 0) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "ALREADYEXISTS", "INBOX always exists.");
		return IMAP_R_OK;
	}
	if (use != 0 && parent) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "USEATTR",
			     "A level without mail cannot have a special use.");
		return IMAP_R_OK;
	}
	if (use != 0)
		r = storage_folder_create_special(ss->st, name, use, &error);
	else if (parent)
		r = storage_folder_create_parent(ss->st, name, &error);
	else
		r = storage_folder_create(ss->st, name, &error);
	if (r == -2) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "USEATTR", "%s.", error);
		return IMAP_R_OK;
	}
	if (r < 0) {
		imap_sess_storage_error(ss, cmd->tag, "CREATE", error);
		return IMAP_R_OK;
	}
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Create completed.");
	return IMAP_R_OK;
}

enum imap_result imap_cmd_delete(struct imap_sess *ss, const struct imap_command *cmd)
{
	char name[STORAGE_NAME_MAX + 1];
	const char *error;

	int r = one_name(ss, cmd, 1, name, sizeof(name));
	if (r < 0)
		return r == -2 ? IMAP_R_BAD : IMAP_R_OK;
	if (strcmp(name, "INBOX") == 0) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "CANNOT", "INBOX cannot be deleted.");
		return IMAP_R_OK;
	}
	if (ss->box != NULL && strcmp(ss->box_name, name) == 0)
		deselect(ss, false);
	if (storage_folder_delete(ss->st, name, &error) < 0) {
		imap_sess_storage_error(ss, cmd->tag, "DELETE", error);
		return IMAP_R_OK;
	}
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Delete completed.");
	return IMAP_R_OK;
}

/* RFC 3501 6.3.5: renaming INBOX moves its messages into a new folder and leaves INBOX
 * empty.  A failure in the middle leaves the messages moved so far in the new folder. */
static enum imap_result rename_inbox(struct imap_sess *ss, const char *tag, const char *to)
{
	struct mailbox *src = NULL, *dst = NULL;
	const char *error;

	if (storage_folder_create(ss->st, to, &error) < 0 ||
	    mailbox_open(ss->st, "INBOX", &src, &error) < 0 ||
	    mailbox_open(ss->st, to, &dst, &error) < 0) {
		mailbox_close(&src);
		imap_sess_storage_error(ss, tag, "RENAME", error);
		return IMAP_R_OK;
	}
	size_t n = mailbox_count(src);
	uint32_t *uids = xcalloc(n + 1, sizeof(*uids));
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *rec = mailbox_get(src, i);
		uids[i] = rec != NULL ? rec->uid : 0;
	}
	int r = 0;
	uint32_t nuid;
	for (size_t i = 0; i < n && r == 0; i++)
		if (uids[i] != 0)
			r = mailbox_move(src, uids[i], dst, &nuid, &error);
	free(uids);
	mailbox_close(&src);
	mailbox_close(&dst);
	if (r < 0) {
		imap_sess_storage_error(ss, tag, "RENAME", error);
		return IMAP_R_OK;
	}
	imap_sess_update(ss, true);
	imapc_tagged(&ss->ic, tag, "OK", NULL, "Rename completed, INBOX is empty now.");
	return IMAP_R_OK;
}

enum imap_result imap_cmd_rename(struct imap_sess *ss, const struct imap_command *cmd)
{
	char from[STORAGE_NAME_MAX + 1], to[STORAGE_NAME_MAX + 1];
	const char *error;

	int r = one_name(ss, cmd, 2, from, sizeof(from));
	if (r < 0)
		return r == -2 ? IMAP_R_BAD : IMAP_R_OK;
	if (imap_sess_mailbox_arg(ss, cmd->tag, &cmd->args[1], to, sizeof(to)) < 0)
		return IMAP_R_OK;
	if (strcmp(from, "INBOX") == 0)
		return rename_inbox(ss, cmd->tag, to);
	if (strcmp(to, "INBOX") == 0) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "ALREADYEXISTS", "INBOX always exists.");
		return IMAP_R_OK;
	}
	/* the folders below it go with it (the storage renames them) */
	if (storage_folder_rename(ss->st, from, to, &error) < 0) {
		imap_sess_storage_error(ss, cmd->tag, "RENAME", error);
		return IMAP_R_OK;
	}
	if (ss->box != NULL && strcmp(ss->box_name, from) == 0)
		deselect(ss, false);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Rename completed.");
	return IMAP_R_OK;
}

/* ---- STATUS -------------------------------------------------------------------------- */

static const char *const status_names[] = {
	"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "SIZE", "DELETED",
	"HIGHESTMODSEQ",
};

static bool status_items_ok(const struct imap_arg *items, size_t n)
{
	const char *item;
	for (size_t i = 0; i < n; i++) {
		bool ok = false;
		if (imap_arg_atom(&items[i], &item) < 0)
			return false;
		for (size_t k = 0; k < sizeof(status_names) / sizeof(status_names[0]); k++)
			ok |= strcasecmp(item, status_names[k]) == 0;
		if (!ok)
			return false;
	}
	return true;
}

/* "* STATUS name (items)" of a folder (items checked by status_items_ok), formed in
 * ss->ic.out and not sent.  0, or -1 (*error_r: the folder cannot be opened). */
static int status_write(struct imap_sess *ss, const char *name,
			const struct imap_arg *items, size_t nitems, const char **error_r)
{
	struct mailbox *box = NULL;
	const char *item;

	for (size_t i = 0; i < nitems; i++)
		if (imap_arg_is_atom(&items[i], "HIGHESTMODSEQ"))
			imap_sess_condstore_on(ss);   /* RFC 7162 3.1: CONDSTORE enabling */
	if (mailbox_open(ss->st, name, &box, error_r) < 0)
		return -1;
	size_t n = mailbox_count(box), unseen = 0, recent = 0, deleted = 0;
	uint64_t size = 0;
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *rec = mailbox_get(box, i);
		if (rec == NULL)
			continue;
		unseen += !(rec->flags & INDEX_FLAG_SEEN);
		recent += !!(rec->flags & INDEX_FLAG_RECENT);
		deleted += !!(rec->flags & INDEX_FLAG_DELETED);
		if (rec->size != INDEX_SIZE_UNKNOWN)
			size += rec->size;
	}
	const struct index_hdr *hdr = mailbox_hdr(box);
	imap_buf_puts(&ss->ic.out, "* STATUS ");
	imap_write_mailbox(ss, name);
	imap_buf_puts(&ss->ic.out, " (");
	for (size_t i = 0; i < nitems; i++) {
		imap_arg_atom(&items[i], &item);
		const char *sp = i > 0 ? " " : "";
		if (strcasecmp(item, "MESSAGES") == 0)
			imap_buf_printf(&ss->ic.out, "%sMESSAGES %zu", sp, n);
		else if (strcasecmp(item, "UIDNEXT") == 0)
			imap_buf_printf(&ss->ic.out, "%sUIDNEXT %" PRIu32, sp, hdr->uidnext);
		else if (strcasecmp(item, "UIDVALIDITY") == 0)
			imap_buf_printf(&ss->ic.out, "%sUIDVALIDITY %" PRIu32, sp,
					hdr->uidvalidity);
		else if (strcasecmp(item, "UNSEEN") == 0)
			imap_buf_printf(&ss->ic.out, "%sUNSEEN %zu", sp, unseen);
		else if (strcasecmp(item, "RECENT") == 0)
			imap_buf_printf(&ss->ic.out, "%sRECENT %zu", sp, recent);
		else if (strcasecmp(item, "SIZE") == 0)
			imap_buf_printf(&ss->ic.out, "%sSIZE %" PRIu64, sp, size);
		else if (strcasecmp(item, "DELETED") == 0)
			imap_buf_printf(&ss->ic.out, "%sDELETED %zu", sp, deleted);
		else
			imap_buf_printf(&ss->ic.out, "%sHIGHESTMODSEQ %" PRIu64, sp,
					hdr->highestmodseq);
	}
	imap_buf_puts(&ss->ic.out, ")\r\n");
	mailbox_close(&box);
	return 0;
}

enum imap_result imap_cmd_status(struct imap_sess *ss, const struct imap_command *cmd)
{
	char name[STORAGE_NAME_MAX + 1];
	const char *error;

	if (cmd->count != 2 || cmd->args[1].type != IMAP_ARG_LIST || cmd->args[1].count == 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: STATUS mailbox (items)");
		return IMAP_R_BAD;
	}
	if (!status_items_ok(cmd->args[1].list, cmd->args[1].count)) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Unknown STATUS item.");
		return IMAP_R_BAD;
	}
	if (imap_sess_mailbox_arg(ss, cmd->tag, &cmd->args[0], name, sizeof(name)) < 0)
		return IMAP_R_OK;
	if (status_write(ss, name, cmd->args[1].list, cmd->args[1].count, &error) < 0) {
		imap_sess_storage_error(ss, cmd->tag, "STATUS", error);
		return IMAP_R_OK;
	}
	imapc_send_buf(&ss->ic);
	imap_sess_update(ss, true);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Status completed.");
	return IMAP_R_OK;
}
