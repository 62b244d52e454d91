/* Mailbox commands: SELECT, EXAMINE, CLOSE, UNSELECT, LIST, LSUB, CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE, STATUS (RFC 3501 section 6.3, RFC 9051 section 6.3; UNSELECT of
 * RFC 3691; STATUS SIZE of RFC 9051).
 *
 * Names: clients see "/" as the hierarchy delimiter; the storage keeps Maildir++ names
 * with "." (imap_sess_mailbox_arg() and imap_write_mailbox() map one onto the other), in
 * modified UTF-7 as the client wrote them.
 *
 * Subscriptions: one name per line (the wire form) in a file of the user's: Maildir:
 * <Maildir>/subscriptions (where Dovecot keeps it); mbox: ~/.mailboxlist (UW imapd's).
 * Replaced whole through a temporary file and rename(). */
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
	ss->state = IMAP_AUTH;
}

enum imap_result imap_cmd_select(struct imap_sess *ss, const struct imap_command *cmd)
{
	char name[256];
	const char *error;

	/* RFC 7162 3.1.8: SELECT mailbox (CONDSTORE) */
	bool condstore = cmd->count == 2 && cmd->args[1].type == IMAP_ARG_LIST &&
			 cmd->args[1].count == 1 &&
			 imap_arg_is_atom(&cmd->args[1].list[0], "CONDSTORE");
	if (cmd->count != 1 && !condstore) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: %s mailbox [(CONDSTORE)]",
			     cmd->name);
		return IMAP_R_BAD;
	}
	if (imap_sess_mailbox_arg(ss, cmd->tag, &cmd->args[0], name, sizeof(name)) < 0)
		return IMAP_R_OK;
	if (condstore)
		ss->enabled_condstore = true;
	/* RFC 9051 6.3.2: a failed SELECT leaves no folder selected; [CLOSED] tells the
	 * client where the previous folder's responses end (RFC 7162 3.2.11, RFC 9051) */
	if (ss->box != NULL)
		imapc_untagged(&ss->ic, "OK", "CLOSED", "Previous mailbox closed.");
	deselect(ss, false);
	if (mailbox_open(ss->st, name, &ss->box, &error) < 0) {
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
	size_t n, cap;
};

static void names_add(struct names *ns, const char *name)
{
	if (ns->n == IMAP_MAX_SUBSCRIPTIONS * 4)
		return;   /* BOUNDS: a bounded listing */
	if (ns->n == ns->cap) {
		ns->cap = ns->cap == 0 ? 32 : ns->cap * 2;
		ns->v = xrealloc(ns->v, ns->cap * sizeof(*ns->v));
	}
	char *w = xstrdup(name);
	for (char *p = w; *p != '\0'; p++)
		if (*p == '.')
			*p = IMAP_DELIM;   /* the client's form */
	ns->v[ns->n++] = w;
}

static void names_cb(void *ctx, const char *name)
{
	names_add(ctx, name);
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

static bool names_has(const struct names *ns, const char *name)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i], name) == 0)
			return true;
	return false;
}

static bool has_children(const struct names *ns, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < ns->n; i++)
		if (strncmp(ns->v[i], name, len) == 0 && ns->v[i][len] == IMAP_DELIM)
			return true;
	return false;
}

static const char *special_use(const char *name)
{
	static const char *const uses[][2] = {
		{ "Sent", "\\Sent" }, { "Drafts", "\\Drafts" }, { "Trash", "\\Trash" },
		{ "Junk", "\\Junk" }, { "Archive", "\\Archive" },
	};
	for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++)
		if (strcmp(name, uses[i][0]) == 0)
			return uses[i][1];
	return NULL;
}

static int all_folders(struct imap_sess *ss, struct names *ns, const char **error_r)
{
	names_add(ns, "INBOX");
	return storage_folder_list(ss->st, names_cb, ns, error_r);
}

static void subs_path(struct imap_sess *ss, char *buf, size_t size)
{
	if (strcmp(storage_kind(ss->st), "maildir") == 0)
		snprintf(buf, size, "%s/subscriptions", storage_inbox_path(ss->st));
	else
		snprintf(buf, size, "%s/.mailboxlist", ss->s->pw->pw_dir);
}

static void subs_read(struct imap_sess *ss, struct names *ns)
{
	char path[4096];
	subs_path(ss, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	char *buf = xmalloc(IMAP_SUBS_FILE_MAX + 1);
	size_t len = 0;
	ssize_t n;
	while (len < IMAP_SUBS_FILE_MAX &&
	       (n = read(fd, buf + len, IMAP_SUBS_FILE_MAX - len)) > 0)
		len += (size_t)n;   /* BOUNDS: at most IMAP_SUBS_FILE_MAX */
	close(fd);
	buf[len] = '\0';
	for (char *line = buf, *nl; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			break;   /* a torn last line is left out */
		*nl = '\0';
		if (*line != '\0' && ns->n < IMAP_MAX_SUBSCRIPTIONS && !names_has(ns, line))
			names_add(ns, line);
	}
	free(buf);
}

static int subs_write(struct imap_sess *ss, const struct names *ns, const char **error_r)
{
	char path[4096], tmp[4200];
	subs_path(ss, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "we");
	if (f == NULL) {
		*error_r = strerror(errno);
		return -1;
	}
	for (size_t i = 0; i < ns->n; i++)
		fprintf(f, "%s\n", ns->v[i]);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		*error_r = strerror(errno);
		fclose(f);
		unlink(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) < 0) {
		*error_r = strerror(errno);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* reference + pattern, as one pattern (RFC 3501 6.3.8: the reference is a prefix). */
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

static void list_line(struct imap_sess *ss, const char *resp, const char *attrs,
		      const char *wire_name)
{
	imap_buf_printf(&ss->ic.out, "* %s (%s) \"%c\" ", resp, attrs, IMAP_DELIM);
	imap_write_astring(&ss->ic.out, wire_name, strlen(wire_name), ss->ic.wflags);
	imap_buf_puts(&ss->ic.out, "\r\n");
	imapc_send_buf(&ss->ic);
}

enum imap_result imap_cmd_list(struct imap_sess *ss, const struct imap_command *cmd)
{
	char pat[1024];
	const char *error;
	struct names ns = { 0 };

	if (list_args(ss, cmd, pat, sizeof(pat)) < 0)
		return IMAP_R_BAD;
	if (pat[0] == '\0') {
		/* LIST "" "": the delimiter and the root */
		list_line(ss, "LIST", "\\Noselect", "");
		imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "List completed.");
		return IMAP_R_OK;
	}
	if (all_folders(ss, &ns, &error) < 0) {
		names_free(&ns);
		imap_sess_storage_error(ss, cmd->tag, "LIST", error);
		return IMAP_R_OK;
	}
	/* a folder "a/b" without "a": "a" is listed as a \Noselect parent (RFC 9051
	 * 6.3.9: "%" must show the levels that lead to a folder) */
	size_t real = ns.n;
	for (size_t i = 0; i < real; i++) {
		char parent[256];
		snprintf(parent, sizeof(parent), "%s", ns.v[i]);
		for (char *sl = strrchr(parent, IMAP_DELIM); sl != NULL;
		     sl = strrchr(parent, IMAP_DELIM)) {
			*sl = '\0';
			if (names_has(&ns, parent))
				break;
			names_add(&ns, parent);
		}
	}
	for (size_t i = 0; i < ns.n; i++) {
		const char *n = ns.v[i];
		if (!imap_match_mailbox(pat, strlen(pat), n, strlen(n), IMAP_DELIM))
			continue;
		if (i >= real) {
			list_line(ss, "LIST", "\\Noselect \\HasChildren", n);
			continue;
		}
		char attrs[96];
		const char *use = special_use(n);
		snprintf(attrs, sizeof(attrs), "%s%s%s",
			 has_children(&ns, n) ? "\\HasChildren" : "\\HasNoChildren",
			 use != NULL ? " " : "", use != NULL ? use : "");
		list_line(ss, "LIST", attrs, n);
	}
	names_free(&ns);
	imap_sess_update(ss, true);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "List completed.");
	return IMAP_R_OK;
}

enum imap_result imap_cmd_lsub(struct imap_sess *ss, const struct imap_command *cmd)
{
	char pat[1024];
	struct names subs = { 0 };

	if (list_args(ss, cmd, pat, sizeof(pat)) < 0)
		return IMAP_R_BAD;
	subs_read(ss, &subs);
	for (size_t i = 0; i < subs.n; i++) {
		const char *n = subs.v[i];
		if (imap_match_mailbox(pat, strlen(pat), n, strlen(n), IMAP_DELIM))
			list_line(ss, "LSUB", "", n);
	}
	names_free(&subs);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Lsub completed.");
	return IMAP_R_OK;
}

static enum imap_result subscribe(struct imap_sess *ss, const struct imap_command *cmd,
				  bool add)
{
	char name[256];
	const char *error;
	struct names subs = { 0 };

	if (cmd->count != 1) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: %s mailbox", cmd->name);
		return IMAP_R_BAD;
	}
	if (imap_sess_mailbox_arg(ss, cmd->tag, &cmd->args[0], name, sizeof(name)) < 0)
		return IMAP_R_OK;
	for (char *p = name; *p != '\0'; p++)
		if (*p == '.')
			*p = IMAP_DELIM;
	subs_read(ss, &subs);
	struct names out = { 0 };
	for (size_t i = 0; i < subs.n; i++)
		if (strcmp(subs.v[i], name) != 0)
			names_add(&out, subs.v[i]);
	if (add)
		names_add(&out, name);
	int r = subs_write(ss, &out, &error);
	names_free(&subs);
	names_free(&out);
	if (r < 0) {
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

static void count_cb(void *ctx, const char *name)
{
	(*(size_t *)ctx)++;
}

/* RFC 6154: the special-use folders exist from the first login.  A store with no folder
 * at all gets Drafts, Sent, Trash, Junk and Archive, and, when it has no subscriptions
 * file yet, INBOX and those subscribed (clients that show subscribed folders only, as
 * Thunderbird does by default, see them at once).  A folder the user deletes later is
 * not made again: the store has folders then. */
void imap_mailbox_first_login(struct imap_sess *ss)
{
	static const char *const special[] = { "Drafts", "Sent", "Trash", "Junk", "Archive" };
	size_t n = 0;
	const char *error;
	char path[4096];

	if (storage_folder_list(ss->st, count_cb, &n, &error) < 0 || n > 0)
		return;
	struct names subs = { 0 };
	names_add(&subs, "INBOX");
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
		if (storage_folder_create(ss->st, special[i], &error) < 0) {
			char safe[LOG_MAX_FIELD + 1];
			log_warn("folder-create-failed: user=<%s>, folder=%s, error=<%s>", ss->ubuf,
				 special[i], log_sanitize(error, strlen(error), safe));
			continue;
		}
		names_add(&subs, special[i]);
	}
	subs_path(ss, path, sizeof(path));
	if (access(path, F_OK) < 0 && subs.n > 1 && subs_write(ss, &subs, &error) < 0) {
		char safe[LOG_MAX_FIELD + 1];
		log_warn("subscribe-failed: user=<%s>, error=<%s>", ss->ubuf,
			 log_sanitize(error, strlen(error), safe));
	}
	names_free(&subs);
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
	char name[256];
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
	char name[256];
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

struct rename_ctx {
	const char *from;
	size_t flen;
	struct names kids;
};

static void rename_cb(void *ctx, const char *name)
{
	struct rename_ctx *rc = ctx;
	if (strncmp(name, rc->from, rc->flen) == 0 && name[rc->flen] == '.' &&
	    rc->kids.n < IMAP_MAX_SUBSCRIPTIONS) {
		if (rc->kids.n == rc->kids.cap) {
			rc->kids.cap = rc->kids.cap == 0 ? 8 : rc->kids.cap * 2;
			rc->kids.v = xrealloc(rc->kids.v, rc->kids.cap * sizeof(char *));
		}
		rc->kids.v[rc->kids.n++] = xstrdup(name);   /* the storage form */
	}
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
	char from[256], to[256];
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
	struct rename_ctx rc = { .from = from, .flen = strlen(from) };
	if (storage_folder_list(ss->st, rename_cb, &rc, &error) < 0 ||
	    storage_folder_rename(ss->st, from, to, &error) < 0) {
		names_free(&rc.kids);
		imap_sess_storage_error(ss, cmd->tag, "RENAME", error);
		return IMAP_R_OK;
	}
	/* the folders below it go with it */
	for (size_t i = 0; i < rc.kids.n; i++) {
		char dst[512];
		snprintf(dst, sizeof(dst), "%s%s", to, rc.kids.v[i] + rc.flen);
		if (storage_name_ok(dst) &&
		    storage_folder_rename(ss->st, rc.kids.v[i], dst, &error) < 0) {
			char safe[LOG_MAX_FIELD + 1];
			log_warn("rename-failed: user=<%s>, error=<%s>", ss->ubuf,
				 log_sanitize(error, strlen(error), safe));
		}
	}
	names_free(&rc.kids);
	if (ss->box != NULL && strcmp(ss->box_name, from) == 0)
		deselect(ss, false);
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "Rename completed.");
	return IMAP_R_OK;
}

/* ---- STATUS -------------------------------------------------------------------------- */

enum imap_result imap_cmd_status(struct imap_sess *ss, const struct imap_command *cmd)
{
	char name[256];
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
	char wire[256];
	snprintf(wire, sizeof(wire), "%s", name);
	imap_write_mailbox(ss, wire);
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
