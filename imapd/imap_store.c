/* STORE, EXPUNGE, UID EXPUNGE (RFC 4315), COPY and MOVE (RFC 6851) with COPYUID.
 *
 * Flags: the system flags and keywords, whose names are the folder's table in the index
 * (mailbox_keyword_lookup(): a new name is added on first use, up to INDEX_MAX_KEYWORDS;
 * then NO, and PERMANENTFLAGS no longer offers \*). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/util.h"
#include "imap.h"
#include "storage/storage.h"

static int flag_bit(const char *f, uint32_t *bit_r)
{
	static const struct { const char *name; uint32_t bit; } sys[] = {
		{ "\\Seen", INDEX_FLAG_SEEN }, { "\\Answered", INDEX_FLAG_ANSWERED },
		{ "\\Flagged", INDEX_FLAG_FLAGGED }, { "\\Deleted", INDEX_FLAG_DELETED },
		{ "\\Draft", INDEX_FLAG_DRAFT },
	};
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		if (strcasecmp(f, sys[i].name) == 0) {
			*bit_r = sys[i].bit;
			return 0;
		}
	return -1;   /* \Recent and unknown system flags may not be stored */
}

int imap_flags_parse(struct mailbox *box, bool create, const struct imap_arg *args,
		     size_t n, uint32_t *flags_r, uint32_t *keywords_r, const char **error_r)
{
	const char *f;

	*flags_r = 0;
	*keywords_r = 0;
	if (n == 1 && args[0].type == IMAP_ARG_LIST) {
		n = args[0].count;
		args = args[0].list;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t bit;
		unsigned kw;
		if (imap_arg_flag(&args[i], &f) < 0)
			return -1;
		if (f[0] == '\\') {
			if (flag_bit(f, &bit) < 0)
				return -1;
			*flags_r |= bit;
			continue;
		}
		if (!index_keyword_valid(f, strlen(f)))
			return -1;
		int r = mailbox_keyword_lookup(box, f, create, &kw, error_r);
		if (r < 0)
			return -2;
		if (r > 0 && kw < 32)
			*keywords_r |= 1u << kw;
	}
	return 0;
}

enum imap_result imap_cmd_store(struct imap_sess *ss, const struct imap_command *cmd)
{
	struct imap_seqset set;
	const char *item, *error;
	uint32_t flags, kws;
	uint64_t unchangedsince = UINT64_MAX;   /* none */
	size_t a = 1;

	/* RFC 7162 3.1.3: STORE set (UNCHANGEDSINCE modseq) item flags */
	if (cmd->count >= 2 && cmd->args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &cmd->args[1];
		if (m->count != 2 || !imap_arg_is_atom(&m->list[0], "UNCHANGEDSINCE") ||
		    imap_arg_number64(&m->list[1], &unchangedsince) < 0) {
			imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Unknown STORE modifier.");
			return IMAP_R_BAD;
		}
		imap_sess_condstore_on(ss);
		a = 2;
	}
	if (cmd->count < a + 2 || imap_arg_atom(&cmd->args[a], &item) < 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: STORE set [+-]FLAGS flags");
		return IMAP_R_BAD;
	}
	int mode = item[0] == '+' ? 1 : item[0] == '-' ? -1 : 0;
	const char *name = item + (mode != 0);
	bool silent = strcasecmp(name, "FLAGS.SILENT") == 0;
	if (!silent && strcasecmp(name, "FLAGS") != 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Unknown STORE item.");
		return IMAP_R_BAD;
	}
	if (ss->readonly) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "READ-ONLY", "The mailbox is read-only.");
		return IMAP_R_OK;
	}
	int fr = imap_flags_parse(ss->box, mode >= 0, &cmd->args[a + 1], cmd->count - a - 1,
				  &flags, &kws, &error);
	if (fr == -1) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Invalid flags.");
		return IMAP_R_BAD;
	}
	if (fr < 0) {
		if (strcmp(error, INDEX_KEYWORDS_FULL) == 0)
			imapc_tagged(&ss->ic, cmd->tag, "NO", "LIMIT",
				     "Too many keywords in this mailbox.");
		else
			imap_sess_storage_error(ss, cmd->tag, "STORE", error);
		return IMAP_R_OK;
	}
	imap_seqset_init(&set);
	if (imap_sess_seqset(ss, cmd->tag, &cmd->args[0], cmd->uid, &set) < 0) {
		imap_seqset_free(&set);
		return IMAP_R_BAD;
	}
	struct imap_seqset modified;
	imap_seqset_init(&modified);
	ss->n_store++;
	if (mailbox_keyword_count(ss->box) != ss->kw_count)
		imap_sess_send_flags(ss);   /* a new keyword: FLAGS before it is used */
	/* one storage call for the whole set: one lock, one index commit (a range on a
	 * large Maildir was one lock, scan and fdatasync per message) */
	enum mailbox_flag_mode fm = mode > 0 ? MAILBOX_FLAGS_ADD :
				    mode < 0 ? MAILBOX_FLAGS_REMOVE : MAILBOX_FLAGS_SET;
	struct mailbox_flag_change *ch = xcalloc(ss->count + 1, sizeof(*ch));
	size_t *pos = xcalloc(ss->count + 1, sizeof(*pos));
	size_t n = 0;
	for (size_t i = 0; i < ss->count; i++) {
		struct imap_vmsg *v = &ss->msgs[i];
		if (!imap_seqset_contains(&set, cmd->uid ? v->uid : (uint32_t)(i + 1)))
			continue;
		if (mailbox_find(ss->box, v->uid, NULL) == NULL)
			continue;   /* expunged meanwhile */
		ch[n] = (struct mailbox_flag_change){
			.uid = v->uid, .mode = fm, .flags = flags & ~INDEX_FLAG_RECENT,
			.keywords = kws, .unchangedsince = unchangedsince,
		};
		pos[n++] = i;   /* BOUNDS: n <= i < count */
	}
	if (mailbox_set_flags_many(ss->box, ch, n, &error) < 0) {
		free(ch);
		free(pos);
		imap_seqset_free(&set);
		imap_seqset_free(&modified);
		imap_sess_storage_error(ss, cmd->tag, "STORE", error);
		return IMAP_R_OK;
	}
	for (size_t j = 0; j < n; j++) {
		size_t i = pos[j];
		struct imap_vmsg *v = &ss->msgs[i];
		if (ch[j].modified) {
			/* changed since the client looked: not stored, named in [MODIFIED] */
			uint32_t id = cmd->uid ? v->uid : (uint32_t)(i + 1);
			imap_seqset_add(&modified, id, id);
			continue;
		}
		const struct index_rec *rec = mailbox_find(ss->box, v->uid, NULL);
		if (ch[j].gone || rec == NULL)
			continue;
		v->flags = imap_view_flags(rec->flags, v->flags);
		v->keywords = rec->keywords;
		v->modseq = rec->modseq;
		if (!silent || (ss->enabled_condstore && unchangedsince != UINT64_MAX)) {
			/* RFC 7162 3.1.3: .SILENT with UNCHANGEDSINCE still reports MODSEQ */
			char fl[IMAP_FLAGS_TEXT_MAX], ms[40] = "";
			imap_flags_format(v->flags, v->keywords, ss->box, fl, sizeof(fl));
			if (ss->enabled_condstore)
				snprintf(ms, sizeof(ms), " MODSEQ (%" PRIu64 ")", v->modseq);
			/* RFC 7162 3.2.4: with CONDSTORE on, the UID is always there; RFC 9051
			 * appendix E 21: always in IMAP4rev2 */
			if (cmd->uid || ss->enabled_condstore || ss->enabled_rev2)
				imapc_data(&ss->ic, "%zu FETCH (UID %" PRIu32 " FLAGS %s%s)", i + 1,
					   v->uid, fl, ms);
			else
				imapc_data(&ss->ic, "%zu FETCH (FLAGS %s%s)", i + 1, fl, ms);
		}
	}
	free(ch);
	free(pos);
	imap_seqset_free(&set);
	imap_sess_update(ss, cmd->uid);
	char *code = NULL;
	if (modified.count > 0) {
		size_t need = imap_seqset_format(&modified, NULL, 0);
		code = xmalloc(need + 16);   /* BOUNDS: "MODIFIED " + the set + NUL */
		memcpy(code, "MODIFIED ", 9);
		imap_seqset_format(&modified, code + 9, need + 7);
	}
	imap_seqset_free(&modified);
	imapc_tagged(&ss->ic, cmd->tag, "OK", code, "Store completed.");
	free(code);
	return IMAP_R_OK;
}

enum imap_result imap_cmd_expunge(struct imap_sess *ss, const struct imap_command *cmd)
{
	struct imap_seqset set;
	const char *error;

	if (cmd->count != (cmd->uid ? 1u : 0u)) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: EXPUNGE, UID EXPUNGE set");
		return IMAP_R_BAD;
	}
	imap_seqset_init(&set);
	if (cmd->uid && imap_sess_seqset(ss, cmd->tag, &cmd->args[0], true, &set) < 0) {
		imap_seqset_free(&set);
		return IMAP_R_BAD;
	}
	if (ss->readonly) {
		imap_seqset_free(&set);
		imapc_tagged(&ss->ic, cmd->tag, "NO", "READ-ONLY", "The mailbox is read-only.");
		return IMAP_R_OK;
	}
	/* what the index says now: \Deleted set by another session counts too */
	mailbox_sync(ss->box, NULL, &error);
	size_t n = mailbox_count(ss->box), k = 0;
	uint32_t *uids = xcalloc(n + 1, sizeof(*uids));
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *rec = mailbox_get(ss->box, i);
		if (rec != NULL && (rec->flags & INDEX_FLAG_DELETED) &&
		    (!cmd->uid || imap_seqset_contains(&set, rec->uid)))
			uids[k++] = rec->uid;   /* BOUNDS: k <= i < n */
	}
	imap_seqset_free(&set);
	if (k > 0 && mailbox_expunge(ss->box, uids, k, &error) < 0) {
		free(uids);
		imap_sess_storage_error(ss, cmd->tag, "EXPUNGE", error);
		return IMAP_R_OK;
	}
	free(uids);
	ss->n_expunged += (unsigned)k;
	imap_sess_update(ss, true);
	/* RFC 7162 3.2.7, 3.2.9: with QRESYNC the new HIGHESTMODSEQ when any went */
	char code[48];
	if (k > 0 && ss->enabled_qresync)
		snprintf(code, sizeof(code), "HIGHESTMODSEQ %" PRIu64,
			 mailbox_hdr(ss->box)->highestmodseq);
	imapc_tagged(&ss->ic, cmd->tag, "OK", k > 0 && ss->enabled_qresync ? code : NULL,
		     "Expunge completed.");
	return IMAP_R_OK;
}

/* COPY, MOVE and their UID forms. */
enum imap_result imap_cmd_copy(struct imap_sess *ss, const struct imap_command *cmd)
{
	bool move = strcmp(cmd->name, "MOVE") == 0;
	struct imap_seqset set, src, dst;
	struct mailbox *to = NULL;
	char name[STORAGE_NAME_MAX + 1];
	const char *error;

	if (cmd->count != 2) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: %s set mailbox", cmd->name);
		return IMAP_R_BAD;
	}
	imap_seqset_init(&set);
	if (imap_sess_seqset(ss, cmd->tag, &cmd->args[0], cmd->uid, &set) < 0) {
		imap_seqset_free(&set);
		return IMAP_R_BAD;
	}
	if (imap_sess_mailbox_arg(ss, cmd->tag, &cmd->args[1], name, sizeof(name)) < 0) {
		imap_seqset_free(&set);
		return IMAP_R_OK;
	}
	if (move && ss->readonly) {
		imap_seqset_free(&set);
		imapc_tagged(&ss->ic, cmd->tag, "NO", "READ-ONLY", "The mailbox is read-only.");
		return IMAP_R_OK;
	}
	if (mailbox_open(ss->st, name, &to, &error) < 0) {
		imap_seqset_free(&set);
		imapc_tagged(&ss->ic, cmd->tag, "NO", "TRYCREATE", "No such mailbox.");
		return IMAP_R_OK;
	}
	imap_seqset_init(&src);
	imap_seqset_init(&dst);
	ss->n_copy++;
	/* all of them or none (RFC 3501 6.4.7): one storage batch */
	uint32_t *uids = xcalloc(ss->count + 1, sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < ss->count; i++) {
		struct imap_vmsg *v = &ss->msgs[i];
		if (!imap_seqset_contains(&set, cmd->uid ? v->uid : (uint32_t)(i + 1)))
			continue;
		if (mailbox_find(ss->box, v->uid, NULL) == NULL)
			continue;
		uids[n++] = v->uid;   /* BOUNDS: n <= i < count */
	}
	imap_seqset_free(&set);
	uint32_t *nuids = xcalloc(n + 1, sizeof(*nuids));
	int failed = mailbox_copy_many(ss->box, uids, n, to, move, nuids, &error) < 0;
	char why[256];   /* the error may be the destination's, closed below */
	snprintf(why, sizeof(why), "%s", failed ? error : "");
	for (size_t i = 0; i < n && !failed; i++)
		if (nuids[i] == 0)
			continue;   /* moved, and already gone from the target (another client) */
		else if (imap_seqset_add(&src, uids[i], uids[i]) < 0 ||
		    imap_seqset_add(&dst, nuids[i], nuids[i]) < 0)
			break;   /* BOUNDS: COPYUID then names fewer; the copy is done */
	free(uids);
	free(nuids);
	const struct index_hdr *hdr = mailbox_hdr(to);
	char code[8192];
	int k = snprintf(code, sizeof(code), "COPYUID %" PRIu32 " ", hdr->uidvalidity);
	size_t l1 = imap_seqset_format(&src, code + k, sizeof(code) - (size_t)k);
	bool fits = src.count > 0 && (size_t)k + l1 + 1 < sizeof(code);
	if (fits) {
		size_t at = (size_t)k + l1;
		code[at++] = ' ';
		size_t l2 = imap_seqset_format(&dst, code + at, sizeof(code) - at);
		fits = at + l2 < sizeof(code);
	}
	imap_seqset_free(&src);
	imap_seqset_free(&dst);
	mailbox_close(&to);
	if (failed) {
		/* nothing was copied (the storage batch); a MOVE may have moved some of
		 * them, each whole (RFC 6851 3.3): the update reports their expunges */
		imap_sess_update(ss, cmd->uid || move);
		imap_sess_storage_error(ss, cmd->tag, cmd->name, why);
		return IMAP_R_OK;
	}
	if (move) {
		if (fits)
			imapc_untagged(&ss->ic, "OK", code, "Moved.");
		imap_sess_update(ss, true);
		imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Move completed.");
	} else {
		imap_sess_update(ss, cmd->uid);
		imapc_tagged(&ss->ic, cmd->tag, "OK", fits ? code : NULL, "Copy completed.");
	}
	return IMAP_R_OK;
}
