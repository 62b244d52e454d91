/* Folder names and the folder tree (storage.h): a client's name is UTF-8 with "/" between
 * levels; on disk it is modified UTF-7 (mail/mutf7.h), as Dovecot and Courier keep it:
 * Maildir++ ".Work.Project" (one directory entry, "." between levels), mbox
 * ~/mail/Work/Project (a directory per level).  Checking, mapping both ways, the listing
 * with its hierarchy flags, the subscriptions file and the special-use folders live here;
 * the backends only touch disk names. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/util.h"
#include "mail/mutf7.h"
#include "storage/storage_int.h"

/* ---- names ---- */

int storage_name_check(bool maildir, const char *name, const char **error_r)
{
	size_t len = strlen(name);
	if (len == 0 || len > STORAGE_NAME_MAX) {
		*error_r = len == 0 ? "empty folder name" : "folder name too long";
		return -1;
	}
	if (mutf7_utf8_valid(name, len, error_r) == -1)
		return -1;
	unsigned depth = 0;
	for (const char *p = name;;) {
		const char *e = strchr(p, '/');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
		if (l == 0) {
			*error_r = "empty level in folder name (\"/\" at the start or end, or \"//\")";
			return -1;
		}
		if (p[0] == '.') {
			*error_r = "a folder name level may not start with \".\"";
			return -1;
		}
		if (maildir && memchr(p, '.', l) != NULL) {
			*error_r = "\".\" separates levels on disk (Maildir++): not allowed in a name";
			return -1;
		}
		if (!maildir && l >= 5 && memcmp(p + l - 5, ".lock", 5) == 0) {
			*error_r = "an mbox folder name may not end in \".lock\" (its dotlock)";
			return -1;
		}
		if (++depth > STORAGE_NAME_DEPTH) {
			*error_r = "folder name has too many levels";
			return -1;
		}
		if (depth == 1 && l == 5 && strncasecmp(p, "INBOX", 5) == 0) {
			*error_r = "INBOX is reserved (and has no sub-folders)";
			return -1;
		}
		if (e == NULL)
			break;
		p = e + 1;
	}
	/* the disk form's length */
	char *d;
	size_t dl;
	if (mutf7_from_utf8(name, len, &d, &dl, error_r) == -1)
		return -1;
	int ret = 0;
	if (maildir) {
		ret = dl + 1 > STORAGE_NAME_LEVEL_MAX ? -1 : 0;
	} else {
		for (const char *p = d; ret == 0;) {
			const char *e = strchr(p, '/');
			size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
			ret = l > STORAGE_NAME_LEVEL_MAX ? -1 : 0;
			if (e == NULL)
				break;
			p = e + 1;
		}
	}
	free(d);
	if (ret == -1)
		*error_r = "folder name too long on disk";
	return ret;
}

bool storage_name_ok(const struct mail_storage *st, const char *name)
{
	const char *error;
	return storage_name_check(st->v == &maildir_storage, name, &error) == 0;
}

int storage_name_to_disk(bool maildir, const char *name, char *out, size_t size,
			 const char **error_r)
{
	if (storage_name_check(maildir, name, error_r) == -1)
		return -1;
	char *d;
	size_t dl;
	if (mutf7_from_utf8(name, strlen(name), &d, &dl, error_r) == -1)
		return -1;
	if (dl + 2 > size) {
		free(d);
		*error_r = "folder name too long on disk";
		return -1;
	}
	size_t o = 0;
	if (maildir)
		out[o++] = '.';
	for (size_t i = 0; i < dl; i++) /* base64 of mUTF-7 has neither "/" nor "." */
		out[o++] = maildir && d[i] == '/' ? '.' : d[i];
	out[o] = '\0';
	free(d);
	return 0;
}

int storage_name_from_disk(bool maildir, const char *disk, size_t len, char *out,
			   size_t size, const char **error_r)
{
	if (maildir) {
		if (len < 2 || disk[0] != '.') {
			*error_r = "not a Maildir++ folder name";
			return -1;
		}
		disk++;
		len--;
	}
	if (len > STORAGE_NAME_MAX * 2 || memchr(disk, '\0', len) != NULL ||
	    (maildir && memchr(disk, '/', len) != NULL)) {
		*error_r = "not a folder name";
		return -1;
	}
	char tmp[STORAGE_NAME_MAX * 2 + 1];
	memcpy(tmp, disk, len); /* BOUNDS: len <= STORAGE_NAME_MAX * 2 */
	tmp[len] = '\0';
	if (maildir)
		for (size_t i = 0; i < len; i++)
			if (tmp[i] == '.')
				tmp[i] = '/';
	char *u;
	size_t ul;
	if (mutf7_to_utf8(tmp, len, &u, &ul, error_r) == -1)
		return -1;
	int ret = -1;
	if (ul + 1 > size)
		*error_r = "folder name too long";
	else if (storage_name_check(maildir, u, error_r) == 0) {
		memcpy(out, u, ul + 1);
		ret = 0;
	}
	free(u);
	return ret;
}

/* ---- special use (RFC 6154) ---- */

static const struct {
	const char *name, *attr;
	unsigned flag;
} specials[] = {
	{ "Drafts", "\\Drafts", STORAGE_FOLDER_DRAFTS },
	{ "Sent", "\\Sent", STORAGE_FOLDER_SENT },
	{ "Trash", "\\Trash", STORAGE_FOLDER_TRASH },
	{ "Junk", "\\Junk", STORAGE_FOLDER_JUNK },
	{ "Archive", "\\Archive", STORAGE_FOLDER_ARCHIVE },
};
#define N_SPECIALS (sizeof(specials) / sizeof(specials[0]))

const char *storage_special_use(const char *name)
{
	for (size_t i = 0; i < N_SPECIALS; i++)
		if (strcmp(name, specials[i].name) == 0)
			return specials[i].attr;
	return NULL;
}

static unsigned special_flag(const char *name)
{
	for (size_t i = 0; i < N_SPECIALS; i++)
		if (strcmp(name, specials[i].name) == 0)
			return specials[i].flag;
	return 0;
}

/* ---- special use chosen by CREATE (RFC 6154 section 3, CREATE-SPECIAL-USE) ---- */

/* Maildir: "postern-special-use" in the Maildir; mbox: ~/mail/.postern-special-use.  "V1",
 * then one line per use: the use without its "\" (Drafts, Sent, Trash, Junk, Archive), a
 * tab, the folder's UTF-8 name with "/" between levels.  Written whole (temporary file,
 * fsync, rename); read as untrusted input: at most STORAGE_SPECIAL_MAX bytes, complete
 * lines only, an unknown use, an invalid name, a second line for a use or for a name
 * are dropped (storage_special_parse). */
struct spec_map {
	char name[N_SPECIALS][STORAGE_NAME_MAX + 1];  /* "" for a use with no record */
};

static int special_path(struct mail_storage *st, char *out, size_t size,
			const char **error_r)
{
	if (st->folders[0] == '\0') {
		*error_r = "no place for special-use records (no home directory)";
		return -1;
	}
	if (util_snprintf(out, size, "%s/%s", st->folders,
			  st->v == &maildir_storage ? "postern-special-use" :
			  ".postern-special-use") < 0) {
		*error_r = "path too long";
		return -1;
	}
	return 0;
}

static int special_index(unsigned flag)
{
	for (size_t i = 0; i < N_SPECIALS; i++)
		if (specials[i].flag == flag)
			return (int)i;
	return -1;
}

unsigned storage_special_flag(const char *attr)
{
	for (size_t i = 0; i < N_SPECIALS; i++)
		if (strcasecmp(attr, specials[i].attr) == 0)
			return specials[i].flag;
	return 0;
}

size_t storage_special_parse(bool maildir, const char *buf, size_t len,
			     void (*cb)(void *ctx, const char *name, unsigned use), void *ctx)
{
	char seen[N_SPECIALS][STORAGE_NAME_MAX + 1];
	unsigned used = 0;
	size_t n = 0, pos = 3;
	const char *error;

	if (len > STORAGE_SPECIAL_MAX)
		len = STORAGE_SPECIAL_MAX;
	if (len < 3 || memcmp(buf, "V1\n", 3) != 0)
		return 0;
	while (pos < len) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		if (nl == NULL)
			break;   /* an incomplete last line */
		size_t l = (size_t)(nl - line);
		pos += l + 1;
		const char *tab = memchr(line, '\t', l);
		if (tab == NULL)
			continue;
		size_t ul = (size_t)(tab - line), nlen = l - ul - 1;
		int k = -1;
		for (size_t i = 0; i < N_SPECIALS && k < 0; i++)
			if (strlen(specials[i].name) == ul &&
			    memcmp(specials[i].name, line, ul) == 0)
				k = (int)i;
		if (k < 0 || (used & (1u << k)) || nlen == 0 || nlen > STORAGE_NAME_MAX ||
		    memchr(tab + 1, '\0', nlen) != NULL)
			continue;
		char name[STORAGE_NAME_MAX + 1];
		memcpy(name, tab + 1, nlen);   /* BOUNDS: nlen <= STORAGE_NAME_MAX */
		name[nlen] = '\0';
		if (storage_name_check(maildir, name, &error) == -1)
			continue;
		bool dup = false;
		for (size_t i = 0; i < N_SPECIALS && !dup; i++)
			dup = (used & (1u << i)) && strcmp(seen[i], name) == 0;
		if (dup)
			continue;
		memcpy(seen[k], name, nlen + 1);
		used |= 1u << k;
		cb(ctx, name, specials[k].flag);
		n++;
	}
	return n;
}

static void spec_map_cb(void *ctx, const char *name, unsigned use)
{
	struct spec_map *m = ctx;
	int k = special_index(use);
	if (k >= 0)
		snprintf(m->name[k], sizeof(m->name[k]), "%s", name);
}

static int file_read_small(struct mail_storage *st, const char *what, const char *path,
			   size_t max, char **buf_r, size_t *len_r, const char **error_r);
static int file_write_atomic(struct mail_storage *st, const char *what, const char *path,
			     const char *buf, size_t len, const char **error_r);

static int special_read(struct mail_storage *st, struct spec_map *m, const char **error_r)
{
	char path[STORAGE_PATH_MAX + 32], *buf;
	size_t len;
	memset(m, 0, sizeof(*m));
	if (special_path(st, path, sizeof(path), error_r) == -1 ||
	    file_read_small(st, "read special-use records", path, STORAGE_SPECIAL_MAX, &buf,
			    &len, error_r) == -1)
		return -1;
	if (buf != NULL)
		storage_special_parse(st->v == &maildir_storage, buf, len, spec_map_cb, m);
	free(buf);
	return 0;
}

static int special_write(struct mail_storage *st, const struct spec_map *m,
			 const char **error_r)
{
	char path[STORAGE_PATH_MAX + 32];
	char buf[3 + N_SPECIALS * (16 + STORAGE_NAME_MAX + 1)];
	size_t o = 3;
	memcpy(buf, "V1\n", 3);
	for (size_t i = 0; i < N_SPECIALS; i++) {
		if (m->name[i][0] == '\0')
			continue;
		/* BOUNDS: a use's name < 16 bytes, a name <= STORAGE_NAME_MAX */
		int k = snprintf(buf + o, sizeof(buf) - o, "%s\t%s\n", specials[i].name,
				 m->name[i]);
		if (k < 0 || (size_t)k >= sizeof(buf) - o) {
			*error_r = "special-use records too long";
			return -1;
		}
		o += (size_t)k;
	}
	if (special_path(st, path, sizeof(path), error_r) == -1)
		return -1;
	return file_write_atomic(st, "write special-use records", path, buf, o, error_r);
}

/* A folder was renamed (to != NULL) or deleted: its records (and, on rename, those of
 * the folders below it) follow.  A failure leaves a stale record, which a new folder of
 * that name would inherit: logged by the caller's caller never; it is only a label. */
static void special_follow(struct mail_storage *st, const char *from, const char *to)
{
	struct spec_map m;
	const char *error;
	bool changed = false;
	size_t fl = strlen(from);
	if (special_read(st, &m, &error) == -1)
		return;
	for (size_t i = 0; i < N_SPECIALS; i++) {
		char *n = m.name[i];
		if (n[0] == '\0' || strncmp(n, from, fl) != 0 ||
		    (n[fl] != '\0' && (to == NULL || n[fl] != '/')))
			continue;
		char nn[STORAGE_NAME_MAX + 1];
		if (to == NULL || util_snprintf(nn, sizeof(nn), "%s%s", to, n + fl) < 0)
			nn[0] = '\0';
		memcpy(n, nn, strlen(nn) + 1);
		changed = true;
	}
	if (changed)
		(void)special_write(st, &m, &error);
}

/* ---- the tree ---- */

struct ftree {
	struct fent {
		char *name;
		unsigned flags;
	} *e;
	size_t n, alloc;
	bool maildir, full;
};

/* implied: a parent of a name the backend found (NONEXISTENT until found itself). */
static void tree_put(struct ftree *t, const char *name, size_t len, bool noselect,
		     bool implied)
{
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->e[i].name) == len && memcmp(t->e[i].name, name, len) == 0) {
			if (!noselect)
				t->e[i].flags &= ~(unsigned)STORAGE_FOLDER_NOSELECT;
			if (!implied)
				t->e[i].flags &= ~(unsigned)STORAGE_FOLDER_NONEXISTENT;
			return;
		}
	if (t->n >= STORAGE_FOLDERS_MAX) {
		t->full = true;
		return;
	}
	if (t->n == t->alloc) {
		t->alloc = t->alloc ? t->alloc * 2 : 16;
		t->e = xrealloc(t->e, t->alloc * sizeof(*t->e)); /* BOUNDS: n <= FOLDERS_MAX */
	}
	t->e[t->n].name = xstrndup(name, len);
	t->e[t->n].flags = (noselect ? STORAGE_FOLDER_NOSELECT : 0) |
			   (implied ? STORAGE_FOLDER_NONEXISTENT : 0);
	t->n++;
}

/* A backend found disk name (noselect: an mbox directory): add it and its parents. */
static void tree_add_disk(void *ctx, const char *disk, bool noselect)
{
	struct ftree *t = ctx;
	char name[STORAGE_NAME_MAX + 1];
	const char *error;
	if (storage_name_from_disk(t->maildir, disk, strlen(disk), name, sizeof(name),
				   &error) == -1)
		return; /* not ours, or hostile: not listed */
	for (const char *s = strchr(name, '/'); s != NULL; s = strchr(s + 1, '/'))
		tree_put(t, name, (size_t)(s - name), true, true);
	tree_put(t, name, strlen(name), noselect, false);
}

static int fent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fent *)a)->name, ((const struct fent *)b)->name);
}

static void tree_free(struct ftree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->e[i].name);
	free(t->e);
}

/* The uses recorded by CREATE ... (USE ...) replace the by-name ones: a use recorded for
 * an existing folder leaves every other folder, and a folder with a record keeps only
 * its recorded use.  A file that cannot be read leaves the by-name uses. */
static void tree_apply_special(struct mail_storage *st, struct ftree *t)
{
	struct spec_map m;
	const char *error;
	if (special_read(st, &m, &error) == -1)
		return;
	size_t at[N_SPECIALS];
	for (size_t i = 0; i < N_SPECIALS; i++) {
		at[i] = t->n;
		for (size_t j = 0; j < t->n && m.name[i][0] != '\0'; j++)
			if (!(t->e[j].flags & STORAGE_FOLDER_NONEXISTENT) &&
			    strcmp(t->e[j].name, m.name[i]) == 0) {
				at[i] = j;
				break;
			}
		if (at[i] == t->n)
			continue;
		for (size_t j = 0; j < t->n; j++)
			t->e[j].flags &= ~specials[i].flag;
	}
	for (size_t i = 0; i < N_SPECIALS; i++)
		if (at[i] != t->n)
			t->e[at[i]].flags &= ~(unsigned)STORAGE_FOLDER_SPECIAL;
	for (size_t i = 0; i < N_SPECIALS; i++)
		if (at[i] != t->n)
			t->e[at[i]].flags |= specials[i].flag;
}

static int tree_load(struct mail_storage *st, struct ftree *t, const char **error_r)
{
	memset(t, 0, sizeof(*t));
	t->maildir = st->v == &maildir_storage;
	if (st->v->folder_list(st, tree_add_disk, t, error_r) == -1) {
		tree_free(t);
		return -1;
	}
	if (t->full) {
		tree_free(t);
		*error_r = "too many folders";
		return -1;
	}
	/* sorted by bytes, "A/x" follows "A" after names such as "A b" (' ' < '/'), so
	 * children are looked for by prefix over the whole list */
	if (t->n > 1)
		qsort(t->e, t->n, sizeof(*t->e), fent_cmp);
	for (size_t i = 0; i < t->n; i++) {
		size_t l = strlen(t->e[i].name);
		bool kids = false;
		for (size_t j = i + 1; j < t->n && !kids; j++) {
			if (strncmp(t->e[j].name, t->e[i].name, l) != 0)
				break;
			kids = t->e[j].name[l] == '/';
		}
		t->e[i].flags |= kids ? STORAGE_FOLDER_CHILDREN : STORAGE_FOLDER_NOCHILDREN;
		t->e[i].flags |= special_flag(t->e[i].name);
		/* an mbox file holds mail and cannot get sub-folders */
		if (!t->maildir && !(t->e[i].flags & STORAGE_FOLDER_NOSELECT))
			t->e[i].flags |= STORAGE_FOLDER_NOINFERIORS;
	}
	tree_apply_special(st, t);
	return 0;
}

/* -1 none, else the entry's flags */
static int tree_find(const struct ftree *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->e[i].name, name) == 0)
			return (int)t->e[i].flags;
	return -1;
}

int storage_folder_list(struct mail_storage *st,
			void (*cb)(void *ctx, const char *name, unsigned flags), void *ctx,
			const char **error_r)
{
	struct ftree t;
	if (tree_load(st, &t, error_r) == -1)
		return -1;
	for (size_t i = 0; i < t.n; i++)
		cb(ctx, t.e[i].name, t.e[i].flags);
	tree_free(&t);
	return 0;
}

/* ---- create, rename, delete ---- */

static int disk_name(struct mail_storage *st, const char *name, char *out, size_t size,
		     const char **error_r)
{
	return storage_name_to_disk(st->v == &maildir_storage, name, out, size, error_r);
}

int storage_folder_create(struct mail_storage *st, const char *name, const char **error_r)
{
	char d[STORAGE_NAME_MAX * 2 + 2];
	if (disk_name(st, name, d, sizeof(d), error_r) == -1)
		return -1;
	return st->v->folder_create(st, d, error_r);
}

int storage_folder_rename(struct mail_storage *st, const char *from, const char *to,
			  const char **error_r)
{
	char a[STORAGE_NAME_MAX * 2 + 2], b[STORAGE_NAME_MAX * 2 + 2];
	if (disk_name(st, from, a, sizeof(a), error_r) == -1 ||
	    disk_name(st, to, b, sizeof(b), error_r) == -1)
		return -1;
	size_t fl = strlen(from);
	if (strcmp(from, to) == 0 || (strncmp(to, from, fl) == 0 && to[fl] == '/')) {
		*error_r = "cannot rename a folder into itself";
		return -1;
	}
	struct ftree t;
	if (tree_load(st, &t, error_r) == -1)
		return -1;
	int ret = -1;
	bool to_taken = tree_find(&t, to) != -1;
	if (tree_find(&t, from) == -1)
		*error_r = "no such folder";
	else if (to_taken)
		*error_r = "folder exists";
	else
		ret = 0;
	/* every inferior's new name must be valid too (RFC 3501 RENAME) */
	for (size_t i = 0; i < t.n && ret == 0; i++) {
		const char *n = t.e[i].name;
		if (strncmp(n, from, fl) != 0 || n[fl] != '/')
			continue;
		char nn[STORAGE_NAME_MAX + 1], dd[STORAGE_NAME_MAX * 2 + 2];
		if (util_snprintf(nn, sizeof(nn), "%s%s", to, n + fl) < 0) {
			*error_r = "folder name too long";
			ret = -1;
		} else if (disk_name(st, nn, dd, sizeof(dd), error_r) == -1) {
			ret = -1;
		}
	}
	tree_free(&t);
	if (ret == -1 || st->v->folder_rename(st, a, b, error_r) == -1)
		return -1;
	special_follow(st, from, to);
	return 0;
}

int storage_folder_delete(struct mail_storage *st, const char *name, const char **error_r)
{
	char d[STORAGE_NAME_MAX * 2 + 2];
	if (disk_name(st, name, d, sizeof(d), error_r) == -1 ||
	    st->v->folder_delete(st, d, error_r) == -1)
		return -1;
	special_follow(st, name, NULL);
	return 0;
}

int storage_folder_create_special(struct mail_storage *st, const char *name, unsigned use,
				  const char **error_r)
{
	int k = special_index(use);
	if (k < 0) {
		*error_r = "this special use is not supported";
		return -2;
	}
	struct ftree t;
	if (tree_load(st, &t, error_r) == -1)
		return -1;
	bool taken = false;
	for (size_t i = 0; i < t.n && !taken; i++)
		taken = (t.e[i].flags & use) && !(t.e[i].flags & STORAGE_FOLDER_NONEXISTENT);
	tree_free(&t);
	if (taken) {
		*error_r = "another folder has this special use";
		return -2;
	}
	struct spec_map m;
	if (special_read(st, &m, error_r) == -1 || storage_folder_create(st, name, error_r) == -1)
		return -1;
	for (size_t i = 0; i < N_SPECIALS; i++)
		if (strcmp(m.name[i], name) == 0)
			m.name[i][0] = '\0';
	snprintf(m.name[k], sizeof(m.name[k]), "%s", name);
	if (special_write(st, &m, error_r) == -1) {
		/* RFC 6154 3: no folder without its use */
		const char *e2;
		(void)storage_folder_delete(st, name, &e2);
		return -1;
	}
	return 0;
}

int storage_folder_create_parent(struct mail_storage *st, const char *name,
				 const char **error_r)
{
	if (st->v == &maildir_storage)
		return storage_folder_create(st, name, error_r);
	char d[STORAGE_NAME_MAX * 2 + 2], p[STORAGE_PATH_MAX];
	if (disk_name(st, name, d, sizeof(d), error_r) == -1)
		return -1;
	if (st->folders[0] == '\0' ||
	    util_snprintf(p, sizeof(p), "%s/%s", st->folders, d) < 0) {
		*error_r = "folder path too long";
		return -1;
	}
	(void)mkdir(st->folders, 0700);
	size_t base = strlen(st->folders) + 1;
	for (char *s = p + base;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		struct stat sb;
		if (mkdir(p, 0700) == -1) {
			if (errno != EEXIST) {
				*error_r = storage_errf(st->err, sizeof(st->err), "create folder",
							errno);
				return -1;
			}
			if (c == '\0') {
				*error_r = "folder exists";
				return -1;
			}
			if (lstat(p, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
				*error_r = "a parent folder holds mail: an mbox folder cannot "
					   "have sub-folders";
				return -1;
			}
		}
		if (c == '\0')
			return 0;
		*s = c;
	}
}

int storage_special_create(struct mail_storage *st, const char **error_r)
{
	struct ftree t;
	if (tree_load(st, &t, error_r) == -1)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < N_SPECIALS && ret == 0; i++) {
		/* there; or an mbox directory, which cannot become a folder (it stays
		 * NOSELECT, with its special-use attribute) */
		int f = tree_find(&t, specials[i].name);
		if (f != -1 && ((f & STORAGE_FOLDER_NOSELECT) == 0 || !t.maildir))
			continue;
		ret = storage_folder_create(st, specials[i].name, error_r);
		if (ret == 0)
			ret = storage_subscriptions_set(st, specials[i].name, true, error_r);
	}
	tree_free(&t);
	return ret;
}

/* ---- subscriptions ---- */

/* Maildir: "subscriptions" in the Maildir; mbox: ~/mail/.subscriptions.  Written in the
 * format of Dovecot 2.2 and later ("V\t2", an empty line, then one name a line, UTF-8,
 * levels separated by a tab); read also without that header, one name a line in
 * modified UTF-7 with the store's separator on disk ("." Maildir++ as Courier and older
 * Dovecot wrote it, "/" mbox as UW imapd's .mailboxlist). */
static int subs_path(struct mail_storage *st, char *out, size_t size, const char **error_r)
{
	if (st->folders[0] == '\0') {
		*error_r = "no place for subscriptions (no home directory)";
		return -1;
	}
	if (util_snprintf(out, size, "%s/%s", st->folders,
			  st->v == &maildir_storage ? "subscriptions" : ".subscriptions") < 0) {
		*error_r = "path too long";
		return -1;
	}
	return 0;
}

/* A small file whole (*buf_r NULL if it does not exist), at most max bytes (the rest is
 * not read).  0 or -1. */
static int file_read_small(struct mail_storage *st, const char *what, const char *path,
			   size_t max, char **buf_r, size_t *len_r, const char **error_r)
{
	*buf_r = NULL;
	*len_r = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		*error_r = storage_errf(st->err, sizeof(st->err), what, errno);
		return -1;
	}
	char *buf = xmalloc(max + 1);
	size_t len = 0;
	ssize_t got;
	while (len < max && (got = read(fd, buf + len, max - len)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			*error_r = storage_errf(st->err, sizeof(st->err), what, errno);
			close(fd);
			free(buf);
			return -1;
		}
		len += (size_t)got;
	}
	close(fd);
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return 0;
}

/* Write a whole file: temporary file, fsync, rename over the old one.  0 or -1. */
static int file_write_atomic(struct mail_storage *st, const char *what, const char *path,
			     const char *buf, size_t len, const char **error_r)
{
	char tmp[STORAGE_PATH_MAX + 64];
	if (util_snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) < 0) {
		*error_r = "path too long";
		return -1;
	}
	if (st->v != &maildir_storage)
		(void)mkdir(st->folders, 0700);
	int ret = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 || util_write_all(fd, buf, len) == -1 || fsync(fd) == -1 ||
	    rename(tmp, path) == -1)
		*error_r = storage_errf(st->err, sizeof(st->err), what, errno);
	else
		ret = 0;
	if (fd != -1)
		close(fd);
	if (ret == -1)
		(void)unlink(tmp);
	return ret;
}

struct subs {
	char **name;
	size_t n;
};

static void subs_free(struct subs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->name[i]);
	free(s->name);
	s->name = NULL;
	s->n = 0;
}

static bool subs_has(const struct subs *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return true;
	return false;
}

static void subs_add(struct subs *s, const char *name)
{
	if (subs_has(s, name))
		return;
	s->name = xrealloc(s->name, (s->n + 1) * sizeof(*s->name)); /* BOUNDS: file bound */
	s->name[s->n++] = xstrdup(name);
}

/* One line of the file: its name if it is a valid one (others are dropped). */
static void subs_line(struct subs *s, bool maildir, bool v2, char *line, size_t len)
{
	char name[STORAGE_NAME_MAX + 1];
	const char *error;
	if (len == 0 || len > STORAGE_NAME_MAX * 2)
		return;
	line[len] = '\0';
	if (v2) {
		if (len > STORAGE_NAME_MAX)
			return;
		for (size_t i = 0; i < len; i++)
			if (line[i] == '\t')
				line[i] = '/';
		memcpy(name, line, len + 1);
	} else if (strcmp(line, "INBOX") == 0) {
		memcpy(name, "INBOX", 6);
	} else {
		char disk[STORAGE_NAME_MAX * 2 + 2];
		if (util_snprintf(disk, sizeof(disk), "%s%s", maildir ? "." : "", line) < 0 ||
		    storage_name_from_disk(maildir, disk, strlen(disk), name, sizeof(name),
					   &error) == -1)
			return;
	}
	if (strcmp(name, "INBOX") == 0 || storage_name_check(maildir, name, &error) == 0)
		subs_add(s, name);
}

static int subs_read(struct mail_storage *st, struct subs *s, const char **error_r)
{
	char path[STORAGE_PATH_MAX + 32];
	memset(s, 0, sizeof(*s));
	if (subs_path(st, path, sizeof(path), error_r) == -1)
		return -1;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		*error_r = storage_errf(st->err, sizeof(st->err), "read subscriptions", errno);
		return -1;
	}
	char *buf = xmalloc(STORAGE_SUBS_MAX + 1);
	size_t len = 0;
	ssize_t got;
	while (len < STORAGE_SUBS_MAX &&
	       (got = read(fd, buf + len, STORAGE_SUBS_MAX - len)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			*error_r = storage_errf(st->err, sizeof(st->err), "read subscriptions",
						errno);
			close(fd);
			free(buf);
			return -1;
		}
		len += (size_t)got;
	}
	close(fd);
	buf[len] = '\0';
	bool maildir = st->v == &maildir_storage, v2 = false;
	size_t pos = 0;
	if (len >= 4 && memcmp(buf, "V\t2\n", 4) == 0) {
		v2 = true;
		pos = 4;
	}
	while (pos < len) {
		char *nl = memchr(buf + pos, '\n', len - pos);
		size_t l = nl != NULL ? (size_t)(nl - (buf + pos)) : len - pos;
		subs_line(s, maildir, v2, buf + pos, l);
		pos += l + 1;
	}
	free(buf);
	return 0;
}

int storage_subscriptions_list(struct mail_storage *st,
			       void (*cb)(void *ctx, const char *name), void *ctx,
			       const char **error_r)
{
	struct subs s;
	if (subs_read(st, &s, error_r) == -1)
		return -1;
	for (size_t i = 0; i < s.n; i++)
		cb(ctx, s.name[i]);
	subs_free(&s);
	return 0;
}

int storage_subscriptions_set(struct mail_storage *st, const char *name, bool on,
			     const char **error_r)
{
	bool maildir = st->v == &maildir_storage;
	if (strcmp(name, "INBOX") != 0 && storage_name_check(maildir, name, error_r) == -1)
		return -1;
	struct subs s;
	if (subs_read(st, &s, error_r) == -1)
		return -1;
	if (subs_has(&s, name) == on) {
		subs_free(&s);
		return 0;
	}
	if (on) {
		subs_add(&s, name);
	} else {
		for (size_t i = 0; i < s.n; i++)
			if (strcmp(s.name[i], name) == 0) {
				free(s.name[i]);
				s.name[i] = s.name[--s.n];
				break;
			}
	}
	/* the whole file, then rename over the old one */
	size_t total = 5;
	for (size_t i = 0; i < s.n; i++)
		total += strlen(s.name[i]) + 1;
	if (total > STORAGE_SUBS_MAX) {
		subs_free(&s);
		*error_r = "too many subscriptions";
		return -1;
	}
	char *buf = xmalloc(total + 1), path[STORAGE_PATH_MAX + 32];
	size_t o = 0;
	memcpy(buf, "V\t2\n\n", 5);
	o = 5;
	for (size_t i = 0; i < s.n; i++) {
		for (const char *p = s.name[i]; *p != '\0'; p++)
			buf[o++] = *p == '/' ? '\t' : *p;
		buf[o++] = '\n';
	}
	subs_free(&s);
	int ret = -1;
	if (subs_path(st, path, sizeof(path), error_r) == 0)
		ret = file_write_atomic(st, "write subscriptions", path, buf, o, error_r);
	free(buf);
	return ret;
}
