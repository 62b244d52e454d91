/* The IMAP authenticated and selected states (RFC 3501 section 6, RFC 9051 section 6), as
 * the mail user, after the monitor dropped to it; the client reaches us through the
 * worker's relay.  The worker already said the tagged OK of LOGIN/AUTHENTICATE.
 *
 * The selected folder: the session keeps its own view of the messages (UID, flags as last
 * told) in sequence-number order.  Other sessions and MTAs change the folder under it;
 * imap_sess_update() syncs the folder and tells the client what changed (EXPUNGE, EXISTS,
 * RECENT, FETCH FLAGS) before the tagged response of a command, except that EXPUNGE is
 * never sent in the responses to FETCH, STORE and SEARCH by sequence number (RFC 9051
 * section 7.5.1): their numbers would shift under the client.  Until then an expunged
 * message keeps its number in the view; commands on it skip it.
 *
 * After ENABLE QRESYNC (RFC 7162 3.2.10), expunges are reported as "* VANISHED uids"
 * instead of EXPUNGE, under the same rules; SELECT (QRESYNC ...) and UID FETCH (...
 * VANISHED) report "* VANISHED (EARLIER) uids" from the expunges the index remembers
 * (imap_sess_vanished_earlier()). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "imap.h"
#include "imap/imap_utf7.h"
#include "storage/storage.h"

void imap_flags_format(uint32_t flags, uint32_t keywords, const struct mailbox *box,
		       char *buf, size_t size)
{
	static const struct { uint32_t bit; const char *name; } names[] = {
		{ INDEX_FLAG_SEEN, "\\Seen" }, { INDEX_FLAG_ANSWERED, "\\Answered" },
		{ INDEX_FLAG_FLAGGED, "\\Flagged" }, { INDEX_FLAG_DELETED, "\\Deleted" },
		{ INDEX_FLAG_DRAFT, "\\Draft" }, { INDEX_FLAG_RECENT, "\\Recent" },
	};
	size_t n = 0;

	buf[n++] = '(';   /* BOUNDS: size >= IMAP_FLAGS_TEXT_MAX, which holds them all */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((flags & names[i].bit) == 0)
			continue;
		int k = snprintf(buf + n, size - n, "%s%s", n > 1 ? " " : "", names[i].name);
		if (k < 0 || (size_t)k >= size - n - 1)
			break;
		n += (size_t)k;
	}
	for (unsigned bit = 0; box != NULL && bit < INDEX_MAX_KEYWORDS; bit++) {
		const char *kw = (keywords & (1u << bit)) ? mailbox_keyword_name(box, bit) : NULL;
		if (kw == NULL)
			continue;   /* keyword names are atoms (index_keyword_valid()) */
		int k = snprintf(buf + n, size - n, "%s%s", n > 1 ? " " : "", kw);
		if (k < 0 || (size_t)k >= size - n - 1)
			break;
		n += (size_t)k;
	}
	buf[n++] = ')';
	buf[n] = '\0';
}

#define SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

void imap_sess_send_flags(struct imap_sess *ss)
{
	char kws[IMAP_FLAGS_TEXT_MAX];
	unsigned count = mailbox_keyword_count(ss->box);
	imap_flags_format(0, count >= 32 ? UINT32_MAX : (1u << count) - 1, ss->box, kws,
			  sizeof(kws));
	/* kws is "(k1 k2)": the names without the parentheses */
	size_t len = strlen(kws);
	kws[len - 1] = '\0';
	const char *names = kws + 1;
	imapc_data(&ss->ic, "FLAGS (" SYSTEM_FLAGS "%s%s)", *names ? " " : "", names);
	char code[IMAP_FLAGS_TEXT_MAX + 64];
	if (ss->readonly)
		snprintf(code, sizeof(code), "PERMANENTFLAGS ()");
	else
		snprintf(code, sizeof(code), "PERMANENTFLAGS (" SYSTEM_FLAGS "%s%s%s)",
			 *names ? " " : "", names,
			 count < INDEX_MAX_KEYWORDS ? " \\*" : "");
	imapc_untagged(&ss->ic, "OK", code, "Flags permitted.");
	ss->kw_count = count;
}

static void view_push(struct imap_sess *ss, const struct index_rec *rec)
{
	if (ss->count == ss->cap) {
		ss->cap = ss->cap == 0 ? 64 : ss->cap * 2;
		ss->msgs = xrealloc(ss->msgs, ss->cap * sizeof(*ss->msgs));
	}
	/* \Recent: an EXAMINE shows what nobody claimed; a read-write session claims */
	bool show_recent = ss->readonly && !ss->enabled_rev2;
	ss->msgs[ss->count++] = (struct imap_vmsg){   /* BOUNDS: grown above */
		.uid = rec->uid,
		.flags = show_recent ? rec->flags : rec->flags & ~(uint32_t)INDEX_FLAG_RECENT,
		.keywords = rec->keywords, .modseq = rec->modseq,
	};
}

size_t imap_sess_claim_recent(struct imap_sess *ss)
{
	uint32_t *uids;
	size_t n, recent = 0;
	const char *error;

	if (!ss->readonly && !ss->enabled_rev2 && ss->count > 0) {
		if (mailbox_claim_recent(ss->box, ss->msgs[ss->count - 1].uid, &uids, &n,
					 &error) < 0) {
			char safe[LOG_MAX_FIELD + 1];
			log_warn("recent-claim-failed: user=<%s>, error=<%s>", ss->ubuf,
				 log_sanitize(error, strlen(error), safe));
		} else {
			for (size_t i = 0; i < n; i++) {
				long k = imap_sess_view_find(ss, uids[i]);
				if (k >= 0)
					ss->msgs[k].flags |= INDEX_FLAG_RECENT;
			}
			free(uids);
		}
	}
	for (size_t i = 0; i < ss->count; i++)
		recent += !!(ss->msgs[i].flags & INDEX_FLAG_RECENT);
	return recent;
}

void imap_sess_view_reset(struct imap_sess *ss)
{
	ss->count = 0;
	ss->seen_modseq = mailbox_hdr(ss->box)->highestmodseq;
	size_t n = mailbox_count(ss->box);
	for (size_t i = 0; i < n; i++) {
		const struct index_rec *rec = mailbox_get(ss->box, i);
		if (rec != NULL)
			view_push(ss, rec);
	}
}

/* VANISHED lines: UIDs gathered into a set, a line sent whenever it is full. */
static void vanished_flush(struct imap_sess *ss, struct imap_seqset *set, bool earlier)
{
	if (set->count == 0)
		return;
	size_t need = imap_seqset_format(set, NULL, 0);
	char *line = xmalloc(need + 32);   /* BOUNDS: "* VANISHED (EARLIER) " + set + CRLF */
	int k = snprintf(line, 32, "* VANISHED %s", earlier ? "(EARLIER) " : "");
	imap_seqset_format(set, line + k, need + 1);
	memcpy(line + (size_t)k + need, "\r\n", 2);
	conn_write(ss->ic.c, line, (size_t)k + need + 2);
	free(line);
	imap_seqset_clear(set);
}

static void vanished_add(struct imap_sess *ss, struct imap_seqset *set, bool earlier,
			 uint32_t lo, uint32_t hi)
{
	if (set->count >= IMAP_VANISHED_LINE_RANGES || imap_seqset_add(set, lo, hi) < 0) {
		vanished_flush(ss, set, earlier);
		(void)imap_seqset_add(set, lo, hi);   /* an empty set takes one range */
	}
}

void imap_sess_condstore_on(struct imap_sess *ss)
{
	if (ss->enabled_condstore)
		return;
	ss->enabled_condstore = true;
	if (ss->state == IMAP_SELECTED && ss->box != NULL) {
		char code[48];
		snprintf(code, sizeof(code), "HIGHESTMODSEQ %" PRIu64, ss->seen_modseq);
		imapc_untagged(&ss->ic, "OK", code, "Highest mod-sequence.");
	}
}

void imap_sess_vanished_earlier(struct imap_sess *ss, uint64_t modseq,
				const struct imap_seqset *known, uint32_t min_uid)
{
	const struct index_hdr *hdr = mailbox_hdr(ss->box);
	uint32_t top = hdr->uidnext > 0 ? hdr->uidnext - 1 : 0;
	struct imap_seqset out;
	size_t n;
	uint64_t floor;

	if (min_uid == 0)
		min_uid = 1;
	imap_seqset_init(&out);
	const struct index_expunge *e = mailbox_expunges(ss->box, &n, &floor);
	if (modseq >= floor) {
		/* every expunge after modseq is remembered */
		for (size_t i = 0; i < n; i++) {
			uint32_t uid = e[i].uid;
			if (e[i].modseq > modseq && uid >= min_uid && uid <= top &&
			    (known == NULL || imap_seqset_contains(known, uid)) &&
			    mailbox_find(ss->box, uid, NULL) == NULL)
				vanished_add(ss, &out, true, uid, uid);
		}
	} else {
		/* forgotten: every UID of the set that no message has, the gaps between the
		 * folder's UIDs (one walk of both, in UID order) */
		struct imap_seqrange all = { 1, top };
		const struct imap_seqrange *r = known != NULL ? known->r : &all;
		size_t nr = known != NULL ? known->count : top > 0, j = 0;
		size_t count = mailbox_count(ss->box);
		for (size_t k = 0; k < nr; k++) {
			uint64_t lo = r[k].lo > min_uid ? r[k].lo : min_uid;
			uint64_t hi = r[k].hi < top ? r[k].hi : top;
			if (lo > hi)
				continue;
			for (; j < count; j++) {
				const struct index_rec *rec = mailbox_get(ss->box, j);
				if (rec == NULL || rec->uid < lo)
					continue;
				if (rec->uid > hi)
					break;
				if (rec->uid > lo)
					vanished_add(ss, &out, true, (uint32_t)lo, rec->uid - 1);
				lo = (uint64_t)rec->uid + 1;
			}
			if (lo <= hi)
				vanished_add(ss, &out, true, (uint32_t)lo, (uint32_t)hi);
		}
	}
	vanished_flush(ss, &out, true);
	imap_seqset_free(&out);
}

long imap_sess_view_find(const struct imap_sess *ss, uint32_t uid)
{
	size_t lo = 0, hi = ss->count;

	while (lo < hi) {   /* the view is in UID order */
		size_t mid = lo + (hi - lo) / 2;
		if (ss->msgs[mid].uid == uid)
			return (long)mid;
		if (ss->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void imap_sess_update(struct imap_sess *ss, bool allow_expunge)
{
	const char *error;

	if (ss->state != IMAP_SELECTED || ss->box == NULL)
		return;
	if (mailbox_sync(ss->box, NULL, &error) < 0) {
		char safe[LOG_MAX_FIELD + 1];
		log_warn("sync-failed: user=<%s>, error=<%s>", ss->ubuf,
			 log_sanitize(error, strlen(error), safe));
		return;
	}
	/* nothing changed since the last look (same count, same highest UID and MODSEQ):
	 * skip the walks over the view, which is most commands on a large folder */
	const struct index_hdr *hdr = mailbox_hdr(ss->box);
	size_t total = mailbox_count(ss->box);
	const struct index_rec *last = total > 0 ? mailbox_get(ss->box, total - 1) : NULL;
	uint32_t top_now = last != NULL ? last->uid : 0;
	if (mailbox_keyword_count(ss->box) != ss->kw_count)
		imap_sess_send_flags(ss);   /* another session added a keyword */
	if (hdr->highestmodseq == ss->seen_modseq && total == ss->count &&
	    top_now == (ss->count > 0 ? ss->msgs[ss->count - 1].uid : 0))
		return;
	/* expunges, highest number first so that each number is right when sent; after
	 * ENABLE QRESYNC by UID in VANISHED lines */
	if (allow_expunge) {
		size_t kept = ss->count;
		bool any = false;
		struct imap_seqset vanished;
		imap_seqset_init(&vanished);
		for (size_t i = ss->count; i-- > 0;) {
			if (mailbox_find(ss->box, ss->msgs[i].uid, NULL) != NULL)
				continue;
			if (ss->enabled_qresync)
				vanished_add(ss, &vanished, false, ss->msgs[i].uid, ss->msgs[i].uid);
			else
				imapc_data(&ss->ic, "%zu EXPUNGE", i + 1);
			ss->msgs[i].uid = 0;
			kept--;
			any = true;
		}
		vanished_flush(ss, &vanished, false);
		imap_seqset_free(&vanished);
		if (any) {
			size_t k = 0;
			for (size_t i = 0; i < ss->count; i++)
				if (ss->msgs[i].uid != 0)
					ss->msgs[k++] = ss->msgs[i];   /* BOUNDS: k <= i */
			ss->count = kept;
		}
	}
	/* new messages: UIDs above the highest in the view */
	uint32_t top = ss->count > 0 ? ss->msgs[ss->count - 1].uid : 0;
	size_t n = mailbox_count(ss->box), first = n;
	while (first > 0) {
		const struct index_rec *rec = mailbox_get(ss->box, first - 1);
		if (rec != NULL && rec->uid <= top)
			break;
		first--;
	}
	size_t before = ss->count;
	for (size_t i = first; i < n; i++) {
		const struct index_rec *rec = mailbox_get(ss->box, i);
		if (rec != NULL)
			view_push(ss, rec);
	}
	/* the claim locks the index (positions move; rec and hdr are looked up again) */
	uint64_t modseq_seen = hdr->highestmodseq;
	if (ss->count != before) {
		/* the session that first sees a new message claims it (RFC 3501 2.3.2) */
		size_t recent = imap_sess_claim_recent(ss);
		imapc_data(&ss->ic, "%zu EXISTS", ss->count);
		if (!ss->enabled_rev2)   /* RFC 9051: no RECENT response */
			imapc_data(&ss->ic, "%zu RECENT", recent);
	}
	/* flag changes by others (our own STORE updated the view as it answered) */
	for (size_t i = 0; i < before; i++) {
		struct imap_vmsg *v = &ss->msgs[i];
		const struct index_rec *rec = mailbox_find(ss->box, v->uid, NULL);
		if (rec == NULL || rec->modseq == v->modseq)
			continue;
		v->modseq = rec->modseq;
		uint32_t nf = imap_view_flags(rec->flags, v->flags);
		if (nf == v->flags && rec->keywords == v->keywords)
			continue;
		v->flags = nf;
		v->keywords = rec->keywords;
		char fl[IMAP_FLAGS_TEXT_MAX];
		imap_flags_format(v->flags, v->keywords, ss->box, fl, sizeof(fl));
		if (ss->enabled_condstore)
			imapc_data(&ss->ic, "%zu FETCH (UID %" PRIu32 " FLAGS %s MODSEQ (%" PRIu64
				   "))", i + 1, v->uid, fl, v->modseq);
		else
			imapc_data(&ss->ic, "%zu FETCH (UID %" PRIu32 " FLAGS %s)", i + 1, v->uid,
				   fl);
	}
	/* with expunges held back the view still differs: look again next time */
	if (allow_expunge)
		ss->seen_modseq = modseq_seen;
}

int imap_sess_seqset(struct imap_sess *ss, const char *tag, const struct imap_arg *a,
		     bool uid, struct imap_seqset *set)
{
	const char *error;
	uint32_t star = 0;

	if (uid)
		star = ss->count > 0 ? ss->msgs[ss->count - 1].uid : 0;
	else
		star = ss->count > UINT32_MAX ? UINT32_MAX : (uint32_t)ss->count;
	/* a sequence set is an atom with '*' and ':' (not ATOM-CHARs): the parser's token */
	bool dollar = false;
	if (a->type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(set, a->str, a->len, star, &dollar, &error) < 0) {
		imapc_tagged(&ss->ic, tag, "BAD", NULL, "Invalid sequence set.");
		return -1;
	}
	/* "$": the saved SEARCH result (RFC 5182), UIDs; messages expunged since are left
	 * out */
	for (size_t i = 0; dollar && i < ss->saved_count; i++) {
		long k = imap_sess_view_find(ss, ss->saved_uids[i]);
		if (k >= 0 && imap_seqset_add(set, uid ? ss->saved_uids[i] : (uint32_t)(k + 1),
					      uid ? ss->saved_uids[i] : (uint32_t)(k + 1)) < 0) {
			imapc_tagged(&ss->ic, tag, "BAD", NULL, "Sequence set too long.");
			return -1;
		}
	}
	if (!uid && imap_seqset_max(set) > ss->count) {
		imapc_tagged(&ss->ic, tag, "BAD", NULL, "No such message.");
		return -1;
	}
	return 0;
}

void imap_sess_storage_error(struct imap_sess *ss, const char *tag, const char *what,
			     const char *error)
{
	char safe[LOG_MAX_FIELD + 1];

	log_err("storage-failed: user=<%s>, op=%s, error=<%s>", ss->ubuf, what,
		log_sanitize(error, strlen(error), safe));
	if (strstr(error, "No space left") != NULL)
		imapc_tagged(&ss->ic, tag, "NO", "OVERQUOTA",
			     "The disk is full: %s failed, nothing was lost.", what);
	else if (strstr(error, "quota") != NULL)
		imapc_tagged(&ss->ic, tag, "NO", "OVERQUOTA",
			     "Over the disk quota: %s failed, nothing was lost.", what);
	else if (strstr(error, "no such message") != NULL || strstr(error, "expunged") != NULL ||
		 strstr(error, "deleted by another") != NULL)
		imapc_tagged(&ss->ic, tag, "NO", "EXPUNGEISSUED",
			     "A message was expunged meanwhile: %s not done.", what);
	else if (strstr(error, "locked by another") != NULL ||
		 strstr(error, "changed by another") != NULL ||
		 strstr(error, "replaced by another") != NULL)
		imapc_tagged(&ss->ic, tag, "NO", "INUSE",
			     "Another program is changing the mailbox, try again.");
	else if (strstr(error, "No such file") != NULL || strstr(error, "not found") != NULL ||
		 strstr(error, "no such") != NULL)
		imapc_tagged(&ss->ic, tag, "NO", "NONEXISTENT", "No such mailbox.");
	else if (strstr(error, "exists") != NULL)
		imapc_tagged(&ss->ic, tag, "NO", "ALREADYEXISTS", "The mailbox already exists.");
	else
		imapc_tagged(&ss->ic, tag, "NO", "SERVERBUG",
			     "%s failed on the server, try again later.", what);
}

int imap_sess_mailbox_arg(struct imap_sess *ss, const char *tag, const struct imap_arg *a,
			  char *name, size_t size)
{
	const char *s, *error;
	size_t len;
	char *utf8 = NULL;

	if (imap_arg_astring(a, &s, &len) < 0) {
		imapc_tagged(&ss->ic, tag, "BAD", NULL, "Invalid mailbox name.");
		return -1;
	}
	/* the storage's names are UTF-8: from modified UTF-7 (one spelling per name: it
	 * must decode strictly), or as sent once UTF8=ACCEPT is enabled */
	if (ss->enabled_utf8) {
		if (imap_utf8_mailbox_valid(s, len, &error) < 0)
			goto bad_name;
		utf8 = xstrndup(s, len);
	} else if (imap_utf7_to_utf8(s, len, &utf8, &len, &error) < 0) {
		goto bad_name;
	}
	/* no LIST wildcards in a name */
	if (len == 0 || len >= size || strpbrk(utf8, "*%") != NULL)
		goto bad_name;
	if (len >= 5 && strncasecmp(utf8, "INBOX", 5) == 0 &&
	    (len == 5 || utf8[5] == IMAP_DELIM)) {
		memcpy(name, "INBOX", 5);
		memcpy(name + 5, utf8 + 5, len - 5);
	} else {
		memcpy(name, utf8, len);
	}
	name[len] = '\0';
	free(utf8);
	if (strcmp(name, "INBOX") != 0 && !storage_name_ok(ss->st, name)) {
		imapc_tagged(&ss->ic, tag, "NO", "CANNOT", "This mailbox name is not allowed.");
		return -1;
	}
	return 0;
bad_name:
	free(utf8);
	imapc_tagged(&ss->ic, tag, "NO", "CANNOT", "This mailbox name is not allowed.");
	return -1;
}

void imap_write_mailbox(struct imap_sess *ss, const char *storage_name)
{
	char *wire = NULL;
	size_t len;
	const char *error;

	if (!ss->enabled_utf8 &&
	    imap_utf8_to_utf7(storage_name, strlen(storage_name), &wire, &len, &error) == 0) {
		imap_write_astring(&ss->ic.out, wire, len, ss->ic.wflags);
		free(wire);
		return;
	}
	imap_write_astring(&ss->ic.out, storage_name, strlen(storage_name), ss->ic.wflags);
}

/* ---- commands of any state ----------------------------------------------------------- */

static enum imap_result cmd_capability(struct imap_sess *ss, const struct imap_command *cmd)
{
	imapc_data(&ss->ic, "CAPABILITY %s%s", IMAP_CAPABILITY_AUTH,
		   conn_compressed(ss->ic.c) ? "" : IMAP_CAPABILITY_COMPRESS);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Capability completed.");
	return IMAP_R_OK;
}

static enum imap_result cmd_noop(struct imap_sess *ss, const struct imap_command *cmd)
{
	imap_sess_update(ss, true);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "%s completed.", cmd->name);
	return IMAP_R_OK;
}

static enum imap_result cmd_logout(struct imap_sess *ss, const struct imap_command *cmd)
{
	imapc_untagged(&ss->ic, "BYE", NULL, "Logging out.");
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Logout completed.");
	ss->reason = "logout";
	return IMAP_R_LOGOUT;
}

static enum imap_result cmd_id(struct imap_sess *ss, const struct imap_command *cmd)
{
	imap_id_reply(&ss->ic, cmd->tag);
	return IMAP_R_OK;
}

/* ENABLE (RFC 5161): CONDSTORE, QRESYNC (which implies CONDSTORE, RFC 7162 3.2.3),
 * IMAP4rev2 and UTF8=ACCEPT are enabled and listed in ENABLED, only what this command newly
 * enabled (RFC 5161 3.1); other names are ignored. */
static enum imap_result cmd_enable(struct imap_sess *ss, const struct imap_command *cmd)
{
	const char *a;

	if (cmd->count == 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: ENABLE capability...");
		return IMAP_R_BAD;
	}
	bool condstore = false, qresync = false, rev2 = false, utf8 = false;
	for (size_t i = 0; i < cmd->count; i++) {
		if (imap_arg_atom(&cmd->args[i], &a) < 0) {
			imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Invalid capability name.");
			return IMAP_R_BAD;
		}
		if (strcasecmp(a, "CONDSTORE") == 0)
			condstore = !ss->enabled_condstore;
		else if (strcasecmp(a, "QRESYNC") == 0)
			qresync = !ss->enabled_qresync;
		else if (strcasecmp(a, "IMAP4rev2") == 0)
			rev2 = !ss->enabled_rev2;
		else if (strcasecmp(a, "UTF8=ACCEPT") == 0)
			utf8 = !ss->enabled_utf8_accept;
	}
	if (condstore || qresync)
		ss->enabled_condstore = true;
	if (qresync)
		ss->enabled_qresync = true;
	/* IMAP4rev2 (RFC 9051, docs/architecture.md) and UTF8=ACCEPT (RFC 6855): UTF-8 in
	 * quoted strings both ways, mailbox names in UTF-8 */
	if (rev2 || utf8) {
		ss->enabled_rev2 |= rev2;
		ss->enabled_utf8_accept |= utf8;
		ss->enabled_utf8 = true;
		struct imap_parser_settings set = ss->ic.set;
		set.utf8 = true;
		imapc_settings(&ss->ic, &set, IMAP_MAX_LINE);
		ss->ic.wflags |= IMAP_WRITE_UTF8;
	}
	imapc_data(&ss->ic, "ENABLED%s%s%s%s", condstore ? " CONDSTORE" : "",
		   qresync ? " QRESYNC" : "", rev2 ? " IMAP4rev2" : "", utf8 ? " UTF8=ACCEPT" : "");
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Enabled.");
	return IMAP_R_OK;
}

static enum imap_result cmd_namespace(struct imap_sess *ss, const struct imap_command *cmd)
{
	imapc_data(&ss->ic, "NAMESPACE ((\"\" \"%c\")) NIL NIL", IMAP_DELIM);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Namespace completed.");
	return IMAP_R_OK;
}

/* ---- the command table --------------------------------------------------------------- */

#define S_AUTH (1u << IMAP_AUTH)
#define S_SEL (1u << IMAP_SELECTED)
struct sess_cmd {
	const char *name;
	unsigned states;
	bool uid_ok;               /* may follow "UID" */
	imap_cmd_fn *fn;
};

static const struct sess_cmd sess_cmds[] = {
	{ "CAPABILITY", S_AUTH | S_SEL, false, cmd_capability },
	{ "NOOP", S_AUTH | S_SEL, false, cmd_noop },
	{ "CHECK", S_SEL, false, cmd_noop },
	{ "LOGOUT", S_AUTH | S_SEL, false, cmd_logout },
	{ "ID", S_AUTH | S_SEL, false, cmd_id },
	{ "ENABLE", S_AUTH, false, cmd_enable },
	{ "NAMESPACE", S_AUTH | S_SEL, false, cmd_namespace },
	{ "SELECT", S_AUTH | S_SEL, false, imap_cmd_select },
	{ "EXAMINE", S_AUTH | S_SEL, false, imap_cmd_select },
	{ "LIST", S_AUTH | S_SEL, false, imap_cmd_list },
	{ "LSUB", S_AUTH | S_SEL, false, imap_cmd_lsub },
	{ "CREATE", S_AUTH | S_SEL, false, imap_cmd_create },
	{ "DELETE", S_AUTH | S_SEL, false, imap_cmd_delete },
	{ "RENAME", S_AUTH | S_SEL, false, imap_cmd_rename },
	{ "SUBSCRIBE", S_AUTH | S_SEL, false, imap_cmd_subscribe },
	{ "UNSUBSCRIBE", S_AUTH | S_SEL, false, imap_cmd_unsubscribe },
	{ "STATUS", S_AUTH | S_SEL, false, imap_cmd_status },
	{ "CLOSE", S_SEL, false, imap_cmd_close },
	{ "UNSELECT", S_SEL, false, imap_cmd_unselect },
	{ "EXPUNGE", S_SEL, true, imap_cmd_expunge },
	{ "FETCH", S_SEL, true, imap_cmd_fetch },
	{ "STORE", S_SEL, true, imap_cmd_store },
	{ "SEARCH", S_SEL, true, imap_cmd_search },
	{ "COPY", S_SEL, true, imap_cmd_copy },
	{ "MOVE", S_SEL, true, imap_cmd_copy },
	{ "IDLE", S_AUTH | S_SEL, false, imap_cmd_idle },
	{ "COMPRESS", S_AUTH | S_SEL, false, imap_cmd_compress },
};

static enum imap_result dispatch(struct imap_sess *ss, const struct imap_command *cmd)
{
	const struct sess_cmd *c = NULL;

	for (size_t i = 0; i < sizeof(sess_cmds) / sizeof(sess_cmds[0]); i++)
		if (strcmp(sess_cmds[i].name, cmd->name) == 0)
			c = &sess_cmds[i];
	if (c == NULL || (cmd->uid && !c->uid_ok)) {
		if (strcmp(cmd->name, "APPEND") == 0)
			imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL,
				     "Usage: APPEND mailbox [(flags)] [date] literal");
		else if (strcmp(cmd->name, "LOGIN") == 0 || strcmp(cmd->name, "AUTHENTICATE") == 0)
			imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Already logged in.");
		else
			imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Unknown command.");
		return IMAP_R_BAD;
	}
	if ((c->states & (1u << ss->state)) == 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "No mailbox selected.");
		return IMAP_R_BAD;
	}
	return c->fn(ss, cmd);
}

static void sess_loop(struct imap_sess *ss)
{
	for (;;) {
		enum imap_result res;
		int r = imapc_read(&ss->ic);
		if (r == IMAPC_END) {
			ss->reason = ss->ic.reason;
			if (ss->reason != NULL && strcmp(ss->reason, "timeout") == 0)
				imapc_untagged(&ss->ic, "BYE", NULL, "Autologout; idle for too long.");
			if (ss->reason != NULL && strcmp(ss->reason, "compression-error") == 0)
				imapc_untagged(&ss->ic, "BYE", NULL, "Corrupt compressed data.");
			return;
		}
		if (r == IMAPC_BADCMD)
			continue;
		if (r == IMAPC_STREAM)
			res = imap_cmd_append(ss);
		else
			res = dispatch(ss, imap_parser_command(ss->ic.parser));
		switch (res) {
		case IMAP_R_OK:
			imapc_count_good(&ss->ic);
			break;
		case IMAP_R_BAD:
			if (!imapc_count_bad(&ss->ic)) {
				ss->reason = ss->ic.reason;
				return;
			}
			break;
		case IMAP_R_LOGOUT:
			return;
		case IMAP_R_DROP:
		default:
			if (ss->reason == NULL)
				ss->reason = ss->ic.reason != NULL ? ss->ic.reason : "error";
			return;
		}
	}
}

int imap_session(struct server_session *s)
{
	struct imap_sess ss = { .s = s, .state = IMAP_AUTH };
	const char *error;

	log_sanitize(s->user, strlen(s->user), ss.ubuf);
	snprintf(ss.log_user, sizeof(ss.log_user), "user=<%s>, ", ss.ubuf);
	struct imap_parser_settings set = { .logged_in = true, .append_max = IMAP_APPEND_MAX };
	imapc_init(&ss.ic, s->c, &set, s->rip, ss.log_user);
	conn_set_line_max(s->c, IMAP_MAX_LINE);
	if (storage_locate(s->cfg->mail_location, s->user, s->pw->pw_dir, &ss.st, &error) < 0) {
		char safe[LOG_MAX_FIELD + 1];
		log_err("mailbox-failed: user=<%s>, error=<%s>", ss.ubuf,
			log_sanitize(error, strlen(error), safe));
		imapc_untagged(&ss.ic, "BYE", "UNAVAILABLE",
			       "Cannot open the mail store, try again later.");
		conn_flush(s->c);
		imapc_free(&ss.ic);
		return 1;
	}
	imap_mailbox_first_login(&ss);
	ss.iobuf = xmalloc(IO_CHUNK);
	ss.cvbuf = xmalloc(2 * IO_CHUNK + 1);   /* BOUNDS: crlf_convert() needs 2 * len + 1 */
	sess_loop(&ss);
	conn_flush(s->c);

	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		ru.ru_maxrss = 0;
	log_info("logout: user=<%s>, reason=%s, fetch=%u, store=%u, expunged=%u, append=%u, "
		 "copy=%u, in=%" PRIu64 ", out=%" PRIu64 ", maxrss_kb=%ld, session=%s",
		 ss.ubuf, ss.reason != NULL ? ss.reason : "error", ss.n_fetch, ss.n_store,
		 ss.n_expunged, ss.n_append, ss.n_copy, s->c->in_bytes, s->c->out_bytes,
		 (long)ru.ru_maxrss, s->info != NULL ? s->info->session_id : "-");
	mailbox_close(&ss.box);
	storage_free(&ss.st);
	imapc_free(&ss.ic);
	free(ss.msgs);
	free(ss.saved_uids);
	free(ss.iobuf);
	free(ss.cvbuf);
	return ss.status;
}
