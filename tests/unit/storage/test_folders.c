/* Folder names for IMAP (storage.h), both backends: a Chinese name with a level through
 * create, list, a message saved in it, rename (children follow), delete; the disk form
 * (modified UTF-7: Maildir++ ".&ZTZO9nux-.&XeVPXA-", mbox ~/mail/&ZTZO9nux-/&XeVPXA-);
 * ASCII names unchanged on disk ("Sent" -> ".Sent"); hostile names refused and hostile
 * directory entries not listed; RFC 3501 DELETE per backend; subscriptions (both file
 * formats); the special-use folders; NONEXISTENT and NOINFERIORS flags, special uses
 * chosen by CREATE (their records file parsed whole and by prefixes, hostile lines
 * dropped, records follow rename and delete), CREATE of a parent level. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/util.h"
#include "storage/storage.h"
#include "unit.h"

#define CN_TOP "\xe6\x94\xb6\xe4\xbb\xb6\xe7\xae\xb1"           /* 收件箱 */
#define CN_SUB "\xe5\xb7\xa5\xe4\xbd\x9c"                       /* 工作 */
#define CN_NEW "\xe5\xbd\x92\xe6\xa1\xa3"                       /* 归档 */
#define CN "收件箱/工作"

static char tmpdir[64];

struct seen {
	char name[32][STORAGE_NAME_MAX + 1];
	unsigned flags[32];
	size_t n;
};

static void on_folder(void *ctx, const char *name, unsigned flags)
{
	struct seen *s = ctx;
	if (s->n < 32) {
		snprintf(s->name[s->n], sizeof(s->name[0]), "%s", name);
		s->flags[s->n++] = flags;
	}
}

static void on_sub(void *ctx, const char *name)
{
	on_folder(ctx, name, 0);
}

/* -1 if not listed, else its flags (all of them) */
static int listed_raw(struct mail_storage *st, const char *name)
{
	struct seen s = { .n = 0 };
	const char *err;
	CHECK(storage_folder_list(st, on_folder, &s, &err) == 0);
	for (size_t i = 0; i < s.n; i++)
		if (strcmp(s.name[i], name) == 0)
			return (int)s.flags[i];
	return -1;
}

/* -1 if not listed, else its flags without NONEXISTENT and NOINFERIORS (tested apart) */
static int listed(struct mail_storage *st, const char *name)
{
	int f = listed_raw(st, name);
	return f == -1 ? -1 : f & ~(STORAGE_FOLDER_NONEXISTENT | STORAGE_FOLDER_NOINFERIORS);
}

static size_t count_listed(struct mail_storage *st)
{
	struct seen s = { .n = 0 };
	const char *err;
	CHECK(storage_folder_list(st, on_folder, &s, &err) == 0);
	return s.n;
}

static bool subscribed(struct mail_storage *st, const char *name)
{
	struct seen s = { .n = 0 };
	const char *err;
	CHECK(storage_subscriptions_list(st, on_sub, &s, &err) == 0);
	for (size_t i = 0; i < s.n; i++)
		if (strcmp(s.name[i], name) == 0)
			return true;
	return false;
}

static bool exists(const char *root, const char *rel, bool dir)
{
	char p[1024];
	struct stat sb;
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lstat(p, &sb) == 0 && (dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
}

static void mkdirs(const char *root, const char *rel)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	mkdir(p, 0700);
}

static void save_one(struct mail_storage *st, const char *folder)
{
	struct mailbox *box;
	struct mail_save *s;
	const char *err;
	CHECK(mailbox_open(st, folder, &box, &err) == 0);
	CHECK(mailbox_save_begin(box, 0, 0, &s, &err) == 0);
	CHECK(mail_save_write(s, "Subject: x\n\nx\n", 14, &err) == 0);
	CHECK(mail_save_finish(&s, NULL, &err) == 0);
	mailbox_close(&box);
}

static size_t msgs(struct mail_storage *st, const char *folder, uint32_t *uidvalidity)
{
	struct mailbox *box;
	const char *err;
	if (mailbox_open(st, folder, &box, &err) == -1)
		return (size_t)-1;
	size_t n = mailbox_count(box);
	if (uidvalidity != NULL)
		*uidvalidity = mailbox_hdr(box)->uidvalidity;
	mailbox_close(&box);
	return n;
}

static void test_hostile_names(struct mail_storage *st, bool maildir)
{
	const char *err;
	char longname[700], deep[200], longlevel[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memset(longlevel, 'b', sizeof(longlevel) - 1);
	longlevel[sizeof(longlevel) - 1] = '\0';
	deep[0] = '\0';
	for (int i = 0; i < 17; i++)
		strcat(deep, i ? "/d" : "d");
	static const char *const bad[] = {
		"", "..", ".", "/a", "a/", "a//b", "/", "a/../b", "../x", ".hidden", "a/.b",
		"a\x01" "b", "a\tb", "a\x7f", "\xff", "\xc0\xaf", "\xed\xa0\x80", "a\xc2\x85",
		"INBOX", "inbox", "INBOX/x", "Inbox/y",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(!storage_name_ok(st, bad[i]));
		CHECK(storage_folder_create(st, bad[i], &err) == -1);
		CHECK(storage_subscriptions_set(st, bad[i], true, &err) == -1 ||
		      strcmp(bad[i], "INBOX") == 0);
	}
	CHECK(storage_folder_create(st, longname, &err) == -1);
	CHECK(storage_folder_create(st, longlevel, &err) == -1); /* > NAME_MAX on disk */
	CHECK(storage_folder_create(st, deep, &err) == -1);
	struct mailbox *box;
	CHECK(mailbox_open(st, "../x", &box, &err) == -1);
	CHECK(mailbox_open(st, "a//b", &box, &err) == -1);
	/* "." separates levels on disk in Maildir++ only; an mbox dotlock is no folder */
	CHECK(storage_name_ok(st, "v1.2") == !maildir);
	CHECK(!storage_name_ok(st, "Sent.lock"));
	CHECK(storage_name_ok(st, "Sent-lock"));
	/* the longest: 250 bytes of one level (Maildir++: ".", 250, fits NAME_MAX) */
	longlevel[250] = '\0';
	CHECK(storage_folder_create(st, longlevel, &err) == 0);
	CHECK(listed(st, longlevel) != -1);
	CHECK(storage_folder_delete(st, longlevel, &err) == 0);
}

static void test_kind(bool maildir)
{
	char root[200], loc[300], disk_root[240];
	const char *err;
	snprintf(root, sizeof(root), "%s/%s", tmpdir, maildir ? "md" : "mb");
	mkdir(root, 0700);
	if (maildir) {
		snprintf(disk_root, sizeof(disk_root), "%s/Maildir", root);
		mkdir(disk_root, 0700);
		mkdirs(disk_root, "cur");
		mkdirs(disk_root, "new");
		mkdirs(disk_root, "tmp");
		snprintf(loc, sizeof(loc), "maildir:%s", disk_root);
	} else {
		snprintf(disk_root, sizeof(disk_root), "%s/mail", root);
		snprintf(loc, sizeof(loc), "mbox:%s/spool", root);
	}
	struct mail_storage *st = NULL;
	CHECK(storage_locate(loc, "ned", root, &st, &err) == 0);
	CHECK(count_listed(st) == 0);

	/* ASCII as before: "Sent" is ".Sent" / ~/mail/Sent */
	CHECK(storage_folder_create(st, "Sent", &err) == 0);
	CHECK(maildir ? exists(disk_root, ".Sent", true) : exists(disk_root, "Sent", false));
	CHECK(listed(st, "Sent") == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_SENT));
	CHECK(storage_folder_create(st, "Sent", &err) == -1 && strcmp(err, "folder exists") == 0);

	/* a Chinese name with a level: the parent is made or implied */
	CHECK(storage_folder_create(st, CN, &err) == 0);
	CHECK(maildir ? exists(disk_root, ".&ZTZO9nux-.&XeVPXA-", true) :
	      exists(disk_root, "&ZTZO9nux-/&XeVPXA-", false));
	CHECK(listed(st, CN) == STORAGE_FOLDER_NOCHILDREN);
	CHECK(listed(st, CN_TOP) == (STORAGE_FOLDER_NOSELECT | STORAGE_FOLDER_CHILDREN));
	save_one(st, CN);
	uint32_t uv = 0;
	CHECK(msgs(st, CN, &uv) == 1);
	CHECK(msgs(st, CN_TOP, NULL) == (size_t)-1); /* NOSELECT */

	if (maildir) {
		/* Maildir++: the parent can hold mail too */
		CHECK(storage_folder_create(st, CN_TOP, &err) == 0);
		CHECK(listed(st, CN_TOP) == STORAGE_FOLDER_CHILDREN);
		save_one(st, CN_TOP);
	} else {
		/* mbox: a directory is no folder, and a folder is no directory */
		CHECK(storage_folder_create(st, CN_TOP, &err) == -1);
		CHECK(storage_folder_create(st, "Sent/Old", &err) == -1);
		CHECK(listed(st, "Sent/Old") == -1);
	}

	/* rename: the inferiors follow, the mail with them */
	CHECK(storage_folder_rename(st, CN_TOP, CN_NEW, &err) == 0);
	CHECK(listed(st, CN) == -1 && listed(st, CN_TOP) == -1);
	CHECK(listed(st, CN_NEW "/" CN_SUB) == STORAGE_FOLDER_NOCHILDREN);
	uint32_t uv2 = 0;
	CHECK(msgs(st, CN_NEW "/" CN_SUB, &uv2) == 1);
	CHECK(uv2 == uv); /* the index went along */
	CHECK(maildir ? exists(disk_root, ".&X1JoYw-.&XeVPXA-", true) :
	      exists(disk_root, "&X1JoYw-/&XeVPXA-", false));
	if (maildir)
		CHECK(msgs(st, CN_NEW, NULL) == 1);
	CHECK(storage_folder_rename(st, CN_NEW, CN_NEW "/x", &err) == -1); /* into itself */
	CHECK(storage_folder_rename(st, CN_NEW, "Sent", &err) == -1);      /* exists */
	CHECK(storage_folder_rename(st, "Nope", "Nope2", &err) == -1);
	/* a plain rename into a new level */
	CHECK(storage_folder_rename(st, "Sent", "Archive/2026", &err) == 0);
	CHECK(listed(st, "Archive/2026") == STORAGE_FOLDER_NOCHILDREN);
	CHECK(listed(st, "Archive") == (STORAGE_FOLDER_NOSELECT | STORAGE_FOLDER_CHILDREN |
					STORAGE_FOLDER_ARCHIVE));

	/* delete (RFC 3501) */
	if (maildir) {
		/* the parent's mail goes, the name stays as a NOSELECT parent */
		CHECK(storage_folder_delete(st, CN_NEW, &err) == 0);
		CHECK(listed(st, CN_NEW) == (STORAGE_FOLDER_NOSELECT | STORAGE_FOLDER_CHILDREN));
		CHECK(storage_folder_delete(st, CN_NEW, &err) == -1); /* only implied now */
	} else {
		CHECK(storage_folder_delete(st, CN_NEW, &err) == -1 &&
		      strcmp(err, "folder has sub-folders") == 0);
	}
	CHECK(storage_folder_delete(st, CN_NEW "/" CN_SUB, &err) == 0);
	if (!maildir)
		CHECK(storage_folder_delete(st, CN_NEW, &err) == 0); /* empty directory now */
	CHECK(listed(st, CN_NEW) == -1 && listed(st, CN_NEW "/" CN_SUB) == -1);

	test_hostile_names(st, maildir);

	/* hostile directory entries are not listed; an old ASCII folder is */
	size_t before = count_listed(st);
	if (maildir) {
		static const char *const evil[] = {
			"..x", ".a..b", ".a.", ".&Jjo", ".a&AGE-", ".\x01x", ".\xff", ".INBOX",
			".inbox.x", ".&-", "..", ".R&D",
		};
		for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
			char sub[300];
			mkdirs(disk_root, evil[i]);
			snprintf(sub, sizeof(sub), "%s/cur", evil[i]);
			mkdirs(disk_root, sub);
		}
		CHECK(count_listed(st) == before + 1); /* ".&-" is "&" */
		CHECK(listed(st, "&") == STORAGE_FOLDER_NOCHILDREN);
		mkdirs(disk_root, ".Old");
		mkdirs(disk_root, ".Old/cur");
		CHECK(listed(st, "Old") == STORAGE_FOLDER_NOCHILDREN);
	} else {
		char p[600];
		static const char *const evil[] = { "&Jjo", "a&AGE-", "\x01x", "\xff", "INBOX",
						    "old.box.lock" };
		for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
			snprintf(p, sizeof(p), "%s/%s", disk_root, evil[i]);
			close(open(p, O_WRONLY | O_CREAT, 0600));
		}
		snprintf(p, sizeof(p), "%s/link", disk_root);
		CHECK(symlink("/etc/passwd", p) == 0);
		CHECK(count_listed(st) == before);
		snprintf(p, sizeof(p), "%s/old.box", disk_root); /* "." is fine in mbox */
		close(open(p, O_WRONLY | O_CREAT, 0600));
		CHECK(listed(st, "old.box") == STORAGE_FOLDER_NOCHILDREN);
	}

	/* subscriptions */
	CHECK(!subscribed(st, CN));
	CHECK(storage_subscriptions_set(st, CN, true, &err) == 0);
	CHECK(storage_subscriptions_set(st, "INBOX", true, &err) == 0);
	CHECK(storage_subscriptions_set(st, CN, true, &err) == 0); /* once */
	CHECK(subscribed(st, CN) && subscribed(st, "INBOX"));
	char sp[600];
	snprintf(sp, sizeof(sp), "%s/%s", disk_root, maildir ? "subscriptions" : ".subscriptions");
	size_t slen = 0;
	char *sf = NULL;
	{
		int fd = open(sp, O_RDONLY);
		CHECK(fd != -1);
		sf = calloc(1, 4096);
		ssize_t got = read(fd, sf, 4095);
		slen = got > 0 ? (size_t)got : 0;
		close(fd);
	}
	CHECK(slen > 5 && memcmp(sf, "V\t2\n\n", 5) == 0);
	CHECK(strstr(sf, CN_TOP "\t" CN_SUB "\n") != NULL);
	free(sf);
	CHECK(storage_subscriptions_set(st, CN, false, &err) == 0);
	CHECK(!subscribed(st, CN) && subscribed(st, "INBOX"));
	/* the older one-name-a-line form (Courier, older Dovecot; UW .mailboxlist) */
	{
		int fd = open(sp, O_WRONLY | O_TRUNC);
		const char *old = maildir ? "INBOX\nWork.Project\n&ZTZO9nux-\n..bad\n" :
			"INBOX\nWork/Project\n&ZTZO9nux-\n../bad\n";
		CHECK(fd != -1 && util_write_all(fd, old, strlen(old)) == 0);
		close(fd);
	}
	CHECK(subscribed(st, "Work/Project") && subscribed(st, CN_TOP) &&
	      subscribed(st, "INBOX"));
	{
		struct seen s = { .n = 0 };
		CHECK(storage_subscriptions_list(st, on_sub, &s, &err) == 0);
		CHECK(s.n == 3);
	}

	/* special use: missing ones made (Archive exists as a parent only: made too) */
	CHECK(storage_special_create(st, &err) == 0);
	CHECK(listed(st, "Drafts") == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_DRAFTS));
	CHECK(listed(st, "Sent") == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_SENT));
	CHECK(listed(st, "Trash") == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_TRASH));
	CHECK(listed(st, "Junk") == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_JUNK));
	if (maildir)
		CHECK(listed(st, "Archive") == (STORAGE_FOLDER_CHILDREN | STORAGE_FOLDER_ARCHIVE));
	else /* an mbox directory cannot become a folder: stays NOSELECT */
		CHECK(listed(st, "Archive") == (STORAGE_FOLDER_NOSELECT |
						STORAGE_FOLDER_CHILDREN | STORAGE_FOLDER_ARCHIVE));
	CHECK(subscribed(st, "Drafts") && subscribed(st, "Junk"));
	CHECK(strcmp(storage_special_use("Trash"), "\\Trash") == 0);
	CHECK(storage_special_use("trash") == NULL);
	CHECK(storage_special_create(st, &err) == 0); /* again: nothing to do */
	storage_free(&st);
}

struct recs {
	char name[8][STORAGE_NAME_MAX + 1];
	unsigned use[8];
	size_t n;
};

static void on_rec(void *ctx, const char *name, unsigned use)
{
	struct recs *r = ctx;
	if (r->n < 8) {
		snprintf(r->name[r->n], sizeof(r->name[0]), "%s", name);
		r->use[r->n++] = use;
	}
}

/* The records file's parser: valid records taken, hostile ones dropped; every prefix of a
 * file (as if it were cut anywhere) gives the complete lines before the cut, no more. */
static void test_special_parse(void)
{
	static const char file[] =
		"V1\n"
		"Drafts\tWork/Drafts\n"
		"Sent\t" CN "\n"
		"Bogus\tOther\n"               /* unknown use */
		"Trash\t../etc\n"              /* invalid name */
		"Junk\tWork/Drafts\n"          /* a name with a use already */
		"Drafts\tAgain\n"              /* a use with a name already */
		"Archive\x01\tA\n"             /* no such use */
		"Archive\n"                     /* no tab */
		"Trash\t\n"                     /* empty name */
		"Archive\tOld/2026\n"
		"Junk\tSpam";                   /* an incomplete last line */
	struct recs r = { .n = 0 };
	size_t len = sizeof(file) - 1;
	CHECK(storage_special_parse(true, file, len, on_rec, &r) == 3);
	CHECK(r.n == 3);
	CHECK_STR(r.name[0], "Work/Drafts");
	CHECK(r.use[0] == STORAGE_FOLDER_DRAFTS);
	CHECK_STR(r.name[1], CN);
	CHECK(r.use[1] == STORAGE_FOLDER_SENT);
	CHECK_STR(r.name[2], "Old/2026");
	CHECK(r.use[2] == STORAGE_FOLDER_ARCHIVE);
	/* byte by byte: each prefix gives what its complete lines hold, in order */
	size_t last = 0;
	for (size_t cut = 0; cut <= len; cut++) {
		struct recs p = { .n = 0 };
		size_t n = storage_special_parse(true, file, cut, on_rec, &p);
		CHECK(n == p.n && n >= last && n <= 3);
		for (size_t i = 0; i < p.n; i++)
			CHECK(strcmp(p.name[i], r.name[i]) == 0 && p.use[i] == r.use[i]);
		last = n;
	}
	CHECK(last == 3);
	/* no header: nothing; a name with "." is no Maildir++ name */
	struct recs q = { .n = 0 };
	CHECK(storage_special_parse(true, "Drafts\tA\n", 9, on_rec, &q) == 0);
	CHECK(storage_special_parse(true, "V1\nDrafts\ta.b\n", 14, on_rec, &q) == 0);
	CHECK(storage_special_parse(false, "V1\nDrafts\ta.b\n", 14, on_rec, &q) == 1);
	CHECK(storage_special_flag("\\drafts") == STORAGE_FOLDER_DRAFTS);
	CHECK(storage_special_flag("\\All") == 0 && storage_special_flag("Drafts") == 0);
}

/* NONEXISTENT, NOINFERIORS; CREATE "x/"; CREATE with a special use, its record following
 * rename and delete; a duplicate or unknown use refused with nothing created. */
static void test_special_kind(bool maildir)
{
	char root[200], loc[300], disk_root[240], path[400];
	const char *err;
	snprintf(root, sizeof(root), "%s/%s2", tmpdir, maildir ? "md" : "mb");
	mkdir(root, 0700);
	if (maildir) {
		snprintf(disk_root, sizeof(disk_root), "%s/Maildir", root);
		mkdir(disk_root, 0700);
		mkdirs(disk_root, "cur");
		mkdirs(disk_root, "new");
		mkdirs(disk_root, "tmp");
		snprintf(loc, sizeof(loc), "maildir:%s", disk_root);
	} else {
		snprintf(disk_root, sizeof(disk_root), "%s/mail", root);
		snprintf(loc, sizeof(loc), "mbox:%s/spool", root);
	}
	struct mail_storage *st = NULL;
	CHECK(storage_locate(loc, "ned", root, &st, &err) == 0);
	CHECK(storage_folder_create(st, "A/B", &err) == 0);
	int a = listed_raw(st, "A"), b = listed_raw(st, "A/B");
	if (maildir) {
		CHECK(a == (STORAGE_FOLDER_NOSELECT | STORAGE_FOLDER_NONEXISTENT |
			    STORAGE_FOLDER_CHILDREN));
		CHECK(b == STORAGE_FOLDER_NOCHILDREN);
	} else { /* a directory exists; a file cannot have sub-folders */
		CHECK(a == (STORAGE_FOLDER_NOSELECT | STORAGE_FOLDER_CHILDREN));
		CHECK(b == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_NOINFERIORS));
	}
	/* CREATE "Level/": mbox a directory (NOSELECT), Maildir++ a folder */
	CHECK(storage_folder_create_parent(st, "Level/Deep", &err) == 0);
	CHECK(storage_folder_create_parent(st, "Level/Deep", &err) == -1);
	snprintf(path, sizeof(path), "%s/%s", disk_root,
		 maildir ? ".Level.Deep/cur" : "Level/Deep");
	CHECK(exists(path, "", true));
	CHECK(listed_raw(st, "Level/Deep") == (maildir ? STORAGE_FOLDER_NOCHILDREN :
		(STORAGE_FOLDER_NOSELECT | STORAGE_FOLDER_NOCHILDREN)));
	if (!maildir) { /* a folder goes inside it; a file cannot become a level */
		CHECK(storage_folder_create(st, "Level/Deep/Box", &err) == 0);
		CHECK(storage_folder_create_parent(st, "A/B", &err) == -1);
		CHECK(storage_folder_create_parent(st, "A/B/C", &err) == -1);
	}
	/* the five by name, then a chosen one: refused while Drafts has the use */
	CHECK(storage_special_create(st, &err) == 0);
	CHECK(storage_folder_create_special(st, "Entwurf", STORAGE_FOLDER_DRAFTS, &err) == -2);
	CHECK(listed(st, "Entwurf") == -1);
	CHECK(storage_folder_create_special(st, "Alle", 0x1000, &err) == -2);
	CHECK(storage_folder_create_special(st, "Alle", STORAGE_FOLDER_DRAFTS |
					    STORAGE_FOLDER_SENT, &err) == -2);
	CHECK(listed(st, "Alle") == -1);
	CHECK(storage_folder_delete(st, "Drafts", &err) == 0);
	CHECK(storage_folder_create_special(st, CN, STORAGE_FOLDER_DRAFTS, &err) == 0);
	CHECK(listed(st, CN) == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_DRAFTS));
	/* the name-based Drafts made again: the chosen one keeps the use */
	CHECK(storage_folder_create(st, "Drafts", &err) == 0);
	CHECK(listed(st, "Drafts") == STORAGE_FOLDER_NOCHILDREN);
	/* the record follows a rename, and goes with a delete */
	CHECK(storage_folder_rename(st, CN_TOP, "Moved", &err) == 0);
	CHECK(listed(st, "Moved/" CN_SUB) == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_DRAFTS));
	CHECK(listed(st, "Drafts") == STORAGE_FOLDER_NOCHILDREN);
	CHECK(storage_folder_delete(st, "Moved/" CN_SUB, &err) == 0);
	CHECK(listed(st, "Drafts") == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_DRAFTS));
	CHECK(storage_folder_create(st, "Moved/" CN_SUB, &err) == 0);
	CHECK(listed(st, "Moved/" CN_SUB) == STORAGE_FOLDER_NOCHILDREN);
	/* a hostile records file: nothing but valid records taken, listing unharmed */
	snprintf(path, sizeof(path), "%s/%s", disk_root,
		 maildir ? "postern-special-use" : ".postern-special-use");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	const char *bad = "V1\nJunk\t../../x\nSent\tA/B\nTrash\tA/B\n\n\t\n";
	CHECK(fd != -1 && util_write_all(fd, bad, strlen(bad)) == 0);
	close(fd);
	CHECK(listed(st, "A/B") == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_SENT));
	CHECK(listed(st, "Sent") == STORAGE_FOLDER_NOCHILDREN);
	CHECK(listed(st, "Junk") == (STORAGE_FOLDER_NOCHILDREN | STORAGE_FOLDER_JUNK));
	storage_free(&st);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/var/tmp/test_folders.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	index_test_map_as_root = true;
	CHECK(strcmp(CN, CN_TOP "/" CN_SUB) == 0);
	test_kind(true);
	test_kind(false);
	test_special_parse();
	test_special_kind(true);
	test_special_kind(false);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return unit_done("folders");
}
