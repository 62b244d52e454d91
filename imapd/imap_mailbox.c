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

	const struct index_hdr *hdr = mailbox_hdr(ss->box);
	size_t recent = 0, unseen = 0;
	for (size_t i = 0; i < ss->count; i++) {
		if (ss->msgs[i].flags & INDEX_FLAG_RECENT)
			recent++;
		if (unseen == 0 && !(ss->msgs[i].flags & INDEX_FLAG_SEEN))
			unseen = i + 1;
	}
	imap_sess_send_flags(ss);
	imapc_data(&ss->ic, "%zu EXISTS", ss->count);
	imapc_data(&ss->ic, "%zu RECENT", recent);
	char code[64];
	if (unseen > 0) {
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

static void names_cb(void *ctx, const char *name, unsigned flags)
{
	names_add(ctx, name, flags);
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

/* reference + pattern, as one pattern (RFC 3501 6.3.8: the reference is a prefix), in the
 * wire form: names are matched in the form the client sees them. */
static int list_args(struct imap_sess *ss, const struct imap_command *cmd, char *pat,
		     size_t size)
{
	const char *ref, *p;
	size_t rlen, plen;

	if (cmd->count != 2 || imap_arg_astring(&cmd->args[0], &ref, &rlen) < 0 ||
	    imap_arg_list_mailbox(&cmd->args[1], &p, &plen) < 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL,
			     "Usage: %s reference pattern (LIST-EXTENDED is not supported)",
			     cmd->name);
		return -1;
	}
	if (rlen + plen + 1 > size) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Pattern too long.");
		return -1;
	}
	memcpy(pat, ref, rlen);
	memcpy(pat + rlen, p, plen);
	pat[rlen + plen] = '\0';
	return 0;
}

/* One LIST/LSUB line for a storage (UTF-8) name, if its wire form matches pat. */
static void list_line(struct imap_sess *ss, const char *resp, const char *attrs,
		      const char *pat, const char *name)
{
	char *wire = NULL;
	size_t wlen;
	const char *error;

	if (!ss->enabled_utf8 && strcmp(name, "INBOX") != 0) {
		if (imap_utf8_to_utf7(name, strlen(name), &wire, &wlen, &error) < 0)
			return;   /* the storage gives valid names only */
	} else {
		wire = xstrdup(name);
		wlen = strlen(wire);
	}
	if (pat == NULL || imap_match_mailbox(pat, strlen(pat), wire, wlen, IMAP_DELIM)) {
		imap_buf_printf(&ss->ic.out, "* %s (%s) \"%c\" ", resp, attrs, IMAP_DELIM);
		imap_write_astring(&ss->ic.out, wire, wlen, ss->ic.wflags);
		imap_buf_puts(&ss->ic.out, "\r\n");
		imapc_send_buf(&ss->ic);
	}
	free(wire);
}

/* LIST attributes (RFC 3501 7.2.2, RFC 3348 children, RFC 6154 special use) from the
 * storage's folder flags. */
static void list_attrs(unsigned flags, char *buf, size_t size)
{
	static const struct { unsigned bit; const char *attr; } map[] = {
		{ STORAGE_FOLDER_NOSELECT, "\\Noselect" },
		{ STORAGE_FOLDER_CHILDREN, "\\HasChildren" },
		{ STORAGE_FOLDER_NOCHILDREN, "\\HasNoChildren" },
		{ STORAGE_FOLDER_DRAFTS, "\\Drafts" },
		{ STORAGE_FOLDER_SENT, "\\Sent" },
		{ STORAGE_FOLDER_TRASH, "\\Trash" },
		{ STORAGE_FOLDER_JUNK, "\\Junk" },
		{ STORAGE_FOLDER_ARCHIVE, "\\Archive" },
	};
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (!(flags & map[i].bit))
			continue;
		int k = snprintf(buf + n, size - n, "%s%s", n > 0 ? " " : "", map[i].attr);
		if (k < 0 || (size_t)k >= size - n)
			break;   /* BOUNDS: the buffer holds all eight */
		n += (size_t)k;
	}
}

enum imap_result imap_cmd_list(struct imap_sess *ss, const struct imap_command *cmd)
{
	char pat[STORAGE_NAME_MAX * 2 + 64];
	const char *error;
	struct names ns = { 0 };

	if (list_args(ss, cmd, pat, sizeof(pat)) < 0)
		return IMAP_R_BAD;
	if (pat[0] == '\0') {
		/* LIST "" "": the delimiter and the root */
		imap_buf_printf(&ss->ic.out, "* LIST (\\Noselect) \"%c\" \"\"\r\n", IMAP_DELIM);
		imapc_send_buf(&ss->ic);
		imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "List completed.");
		return IMAP_R_OK;
	}
	names_add(&ns, "INBOX", STORAGE_FOLDER_NOCHILDREN);
	if (storage_folder_list(ss->st, names_cb, &ns, &error) < 0) {
		names_free(&ns);
		imap_sess_storage_error(ss, cmd->tag, "LIST", error);
		return IMAP_R_OK;
	}
	for (size_t i = 0; i < ns.n; i++) {
		char attrs[160];
		list_attrs(ns.flags[i], attrs, sizeof(attrs));
		list_line(ss, "LIST", attrs, pat, ns.v[i]);
	}
	names_free(&ns);
	imap_sess_update(ss, true);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "List completed.");
	return IMAP_R_OK;
}

enum imap_result imap_cmd_lsub(struct imap_sess *ss, const struct imap_command *cmd)
{
	char pat[STORAGE_NAME_MAX * 2 + 64];
	const char *error;
	struct names subs = { 0 };

	if (list_args(ss, cmd, pat, sizeof(pat)) < 0)
		return IMAP_R_BAD;
	if (storage_subscriptions_list(ss->st, subs_cb, &subs, &error) < 0) {
		names_free(&subs);
		imap_sess_storage_error(ss, cmd->tag, "LSUB", error);
		return IMAP_R_OK;
	}
	for (size_t i = 0; i < subs.n; i++)
		list_line(ss, "LSUB", "", pat, subs.v[i]);
	names_free(&subs);
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

enum imap_result imap_cmd_create(struct imap_sess *ss, const struct imap_command *cmd)
{
	char name[STORAGE_NAME_MAX + 1];
	const char *error;

	int r = one_name(ss, cmd, 1, name, sizeof(name));
	if (r < 0)
		return r == -2 ? IMAP_R_BAD : IMAP_R_OK;
	if (strcmp(name, "INBOX") == 0) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "ALREADYEXISTS", "INBOX always exists.");
		return IMAP_R_OK;
	}
	if (storage_folder_create(ss->st, name, &error) < 0) {
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

enum imap_result imap_cmd_status(struct imap_sess *ss, const struct imap_command *cmd)
{
	char name[STORAGE_NAME_MAX + 1];
	const char *error, *item;
	struct mailbox *box = NULL;

	if (cmd->count != 2 || cmd->args[1].type != IMAP_ARG_LIST || cmd->args[1].count == 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: STATUS mailbox (items)");
		return IMAP_R_BAD;
	}
	const struct imap_arg *items = cmd->args[1].list;
	size_t nitems = cmd->args[1].count;
	for (size_t i = 0; i < nitems; i++) {
		if (imap_arg_atom(&items[i], &item) < 0 ||
		    (strcasecmp(item, "MESSAGES") != 0 && strcasecmp(item, "UIDNEXT") != 0 &&
		     strcasecmp(item, "UIDVALIDITY") != 0 && strcasecmp(item, "UNSEEN") != 0 &&
		     strcasecmp(item, "RECENT") != 0 && strcasecmp(item, "SIZE") != 0 &&
		     strcasecmp(item, "DELETED") != 0 && strcasecmp(item, "HIGHESTMODSEQ") != 0)) {
			imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Unknown STATUS item.");
			return IMAP_R_BAD;
		}
	}
	if (imap_sess_mailbox_arg(ss, cmd->tag, &cmd->args[0], name, sizeof(name)) < 0)
		return IMAP_R_OK;
	if (mailbox_open(ss->st, name, &box, &error) < 0) {
		imap_sess_storage_error(ss, cmd->tag, "STATUS", error);
		return IMAP_R_OK;
	}
	for (size_t i = 0; i < nitems; i++)
		if (imap_arg_is_atom(&items[i], "HIGHESTMODSEQ"))
			imap_sess_condstore_on(ss);   /* RFC 7162 3.1: CONDSTORE enabling */
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
	imapc_send_buf(&ss->ic);
	mailbox_close(&box);
	imap_sess_update(ss, true);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Status completed.");
	return IMAP_R_OK;
}
