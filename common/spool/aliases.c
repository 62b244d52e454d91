/* aliases(5) reader: see aliases.h.
 *
 * The file is a sequence of logical lines.  A physical line that starts with a space or a
 * tab continues the logical line before it; an empty or blank line, or one whose first
 * non-blank byte is '#', is a comment and is skipped (it neither ends nor continues an
 * entry).  A logical line is `name: target, target, ...`:
 * - name: up to the ':' (or the white space before it), or a "quoted string" (backslash
 *   escapes); at most ALIASES_MAX_NAME bytes; ASCII letters are lower-cased (names are
 *   case-insensitive, as Unix user names are lower-case).
 * - a target: bytes up to the next ',' outside double quotes, trimmed; quotes are removed
 *   ("|cmd arg" is one target).  "|..." (a command), "/..." (a file) and ":include:..."
 *   are skipped (counted in *skipped_r).  "\user" is the user itself, never expanded
 *   again (sendmail's escape).  "x@domain" is an address: when the caller said the
 *   domain is local (aliases_set_local()), x is expanded like a name, else it is
 *   remote and skipped.  Anything else is a name: an alias when one is defined, else a
 *   user.  Empty targets (",,") are ignored.
 * Malformed (the whole file is refused: -1): a NUL byte, a continuation line before any
 * entry, no ':' after the name, an empty or over-long name, an unterminated quote, a
 * control byte other than tab, a logical line over ALIASES_MAX_LINE, over
 * ALIASES_MAX_ENTRIES entries.  A name defined twice keeps its first definition (as
 * Postfix's postalias does).  CRLF line ends are accepted.
 *
 * Expansion is depth-first with every alias expanded once per call: an alias met again
 * (a diamond) adds nothing new, one met again while it is being expanded is a loop and is
 * dropped, except an alias naming itself ("root: root, ann"), which is the user of that
 * name (sendmail and Postfix do the same). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "spool/aliases.h"

enum alias_target_kind {
	ALIAS_T_NAME,    /* an alias or a user */
	ALIAS_T_USER,    /* "\user": the user, not expanded */
	ALIAS_T_ADDR,    /* local@domain */
	ALIAS_T_SKIP,    /* pipe, file, :include: */
};

struct alias_target {
	enum alias_target_kind kind;
	char *value;   /* name, user or local part */
	char *domain;  /* ALIAS_T_ADDR only */
};

struct alias_entry {
	char *name;
	size_t first, count; /* targets[first .. first+count) */
	size_t order;        /* position in the file: the first definition wins */
};

struct aliases {
	struct alias_entry *entries;
	size_t nentries, entries_alloc;
	struct alias_target *targets;
	size_t ntargets, targets_alloc;
	aliases_local_cb *is_local;
	void *is_local_ctx;
};

static void lower_ascii(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void add_target(struct aliases *al, enum alias_target_kind kind, const char *s,
		       size_t len)
{
	struct alias_target *t;

	if (al->ntargets == al->targets_alloc) {
		al->targets_alloc = al->targets_alloc == 0 ? 64 : al->targets_alloc * 2;
		al->targets = xrealloc(al->targets, al->targets_alloc * sizeof(*al->targets));
	}
	t = &al->targets[al->ntargets++];
	t->kind = kind;
	t->domain = NULL;
	if (kind == ALIAS_T_ADDR) {
		const char *at = memrchr(s, '@', len);
		t->value = xstrndup(s, (size_t)(at - s));
		t->domain = xstrndup(at + 1, len - (size_t)(at - s) - 1);
		lower_ascii(t->domain);
	} else {
		t->value = xstrndup(s, len);
	}
	if (kind != ALIAS_T_SKIP)
		lower_ascii(t->value);
}

/* One target, unquoted, trimmed: classify and store it. */
static void classify_target(struct aliases *al, const char *s, size_t len)
{
	if (len == 0)
		return;
	if (s[0] == '|' || s[0] == '/' || (len >= 9 && strncasecmp(s, ":include:", 9) == 0)) {
		add_target(al, ALIAS_T_SKIP, s, len);
	} else if (s[0] == '\\') {
		if (len > 1)
			add_target(al, ALIAS_T_USER, s + 1, len - 1);
	} else if (memchr(s, '@', len) != NULL) {
		const char *at = memrchr(s, '@', len);
		/* "x@" or "@domain": not an address we could deliver: skipped */
		if (at == s || at == s + len - 1)
			add_target(al, ALIAS_T_SKIP, s, len);
		else
			add_target(al, ALIAS_T_ADDR, s, len);
	} else {
		add_target(al, ALIAS_T_NAME, s, len);
	}
}

/* Parse a quoted string starting at s[*i] == '"' into out (without the quotes, escapes
 * resolved).  -1 if unterminated. */
static int parse_quoted(const char *s, size_t len, size_t *i, char *out, size_t *olen,
			size_t omax)
{
	size_t j = *i + 1;

	while (j < len && s[j] != '"') {
		if (s[j] == '\\' && j + 1 < len)
			j++;
		if (*olen < omax) /* BOUNDS: omax is out's size minus the NUL */
			out[(*olen)++] = s[j];
		j++;
	}
	if (j >= len)
		return -1;
	*i = j + 1;
	return 0;
}

/* One logical line (no CR/LF; continuation line breaks are kept as spaces by the caller). */
static int parse_entry(struct aliases *al, const char *s, size_t len, size_t order,
		       const char **error_r)
{
	char name[ALIASES_MAX_NAME + 2];
	size_t nlen = 0, i = 0;
	struct alias_entry *e;
	char *tbuf;
	size_t tlen;

	if (s[0] == '"') {
		if (parse_quoted(s, len, &i, name, &nlen, ALIASES_MAX_NAME + 1) == -1) {
			*error_r = "unterminated quoted name";
			return -1;
		}
	} else {
		while (i < len && s[i] != ':' && s[i] != ' ' && s[i] != '\t') {
			if (nlen < ALIASES_MAX_NAME + 1)
				name[nlen++] = s[i];
			i++;
		}
	}
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= len || s[i] != ':') {
		*error_r = "no ':' after the alias name";
		return -1;
	}
	i++;
	if (nlen == 0 || nlen > ALIASES_MAX_NAME) {
		*error_r = nlen == 0 ? "empty alias name" : "alias name too long";
		return -1;
	}
	name[nlen] = '\0';
	if (memchr(name, '\0', nlen) != NULL) {
		*error_r = "NUL in an alias name";
		return -1;
	}
	lower_ascii(name);

	if (al->nentries == ALIASES_MAX_ENTRIES) {
		*error_r = "too many aliases";
		return -1;
	}
	if (al->nentries == al->entries_alloc) {
		al->entries_alloc = al->entries_alloc == 0 ? 32 : al->entries_alloc * 2;
		al->entries = xrealloc(al->entries, al->entries_alloc * sizeof(*al->entries));
	}
	e = &al->entries[al->nentries++];
	e->name = xstrdup(name);
	e->first = al->ntargets;
	e->order = order;

	/* targets: split on ',' outside quotes; quotes removed */
	tbuf = xmalloc(len + 1);
	tlen = 0;
	for (;;) {
		bool end = i >= len || s[i] == ',';
		if (end) {
			size_t a = 0, b = tlen;
			while (a < b && (tbuf[a] == ' ' || tbuf[a] == '\t'))
				a++;
			while (b > a && (tbuf[b - 1] == ' ' || tbuf[b - 1] == '\t'))
				b--;
			classify_target(al, tbuf + a, b - a);
			tlen = 0;
			if (i >= len)
				break;
			i++;
			continue;
		}
		if (s[i] == '"') {
			if (parse_quoted(s, len, &i, tbuf, &tlen, len) == -1) {
				free(tbuf);
				*error_r = "unterminated quoted target";
				return -1;
			}
			continue;
		}
		tbuf[tlen++] = s[i++]; /* BOUNDS: tlen <= i <= len, tbuf holds len + 1 */
	}
	free(tbuf);
	e->count = al->ntargets - e->first;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct alias_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Sort by name; of duplicates keep the first definition (its targets stay allocated in
 * targets[] and are simply never referred to). */
static void finish_table(struct aliases *al)
{
	size_t out = 0;

	if (al->nentries == 0)
		return;
	qsort(al->entries, al->nentries, sizeof(*al->entries), entry_cmp);
	for (size_t i = 0; i < al->nentries; i++) {
		if (out > 0 && strcmp(al->entries[out - 1].name, al->entries[i].name) == 0) {
			free(al->entries[i].name);
			continue;
		}
		al->entries[out++] = al->entries[i];
	}
	al->nentries = out;
}

static int aliases_parse_lines(struct aliases *al, const char *text, size_t len,
			       unsigned *line_r, const char **error_r)
{
	char *logical = NULL;
	size_t llen = 0, pos = 0, order = 0;
	unsigned line = 0, entry_line = 0;
	int ret = 0;

	if (memchr(text, '\0', len) != NULL) {
		/* report the line of the NUL */
		const char *z = memchr(text, '\0', len);
		for (const char *q = text; q < z; q++)
			if (*q == '\n')
				line++;
		*line_r = line + 1;
		*error_r = "NUL byte";
		return -1;
	}
	logical = xmalloc(ALIASES_MAX_LINE + 1);
	while (ret == 0) {
		const char *nl;
		size_t plen;
		bool eof = pos >= len;

		const char *ph = text + pos;
		if (!eof) {
			nl = memchr(ph, '\n', len - pos);
			plen = nl != NULL ? (size_t)(nl - ph) : len - pos;
			pos += plen + (nl != NULL ? 1 : 0);
			line++;
			if (plen > 0 && ph[plen - 1] == '\r')
				plen--;
			for (size_t k = 0; k < plen; k++)
				if ((unsigned char)ph[k] < 0x20 && ph[k] != '\t') {
					*line_r = line;
					*error_r = "control byte";
					ret = -1;
					break;
				}
			if (ret != 0)
				break;
			size_t ws = 0;
			while (ws < plen && (ph[ws] == ' ' || ph[ws] == '\t'))
				ws++;
			if (ws == plen || ph[ws] == '#')
				continue;        /* blank or comment */
			if (ws > 0) {            /* continuation */
				if (llen == 0) {
					*line_r = line;
					*error_r = "continuation line before any alias";
					ret = -1;
					break;
				}
				if (plen + 1 > ALIASES_MAX_LINE - llen) {
					*line_r = entry_line;
					*error_r = "alias entry too long";
					ret = -1;
					break;
				}
				logical[llen++] = ' '; /* BOUNDS: checked just above */
				memcpy(logical + llen, ph, plen);
				llen += plen;
				continue;
			}
		}
		/* a new entry starts (or the end): finish the one before */
		if (llen > 0) {
			ret = parse_entry(al, logical, llen, order++, error_r);
			if (ret != 0) {
				*line_r = entry_line;
				break;
			}
			llen = 0;
		}
		if (eof)
			break;
		if (plen > ALIASES_MAX_LINE) {
			*line_r = line;
			*error_r = "alias entry too long";
			ret = -1;
			break;
		}
		memcpy(logical, ph, plen);
		llen = plen;
		entry_line = line;
	}
	free(logical);
	return ret;
}

int aliases_parse_line(const char *text, size_t len, struct aliases **al_r, unsigned *line_r,
		       const char **error_r)
{
	struct aliases *al = xcalloc(1, sizeof(*al));

	*line_r = 0;
	if (len > ALIASES_MAX_FILE) {
		*error_r = "aliases file too large";
		aliases_free(&al);
		*al_r = NULL;
		return -1;
	}
	if (aliases_parse_lines(al, text, len, line_r, error_r) == -1) {
		aliases_free(&al);
		*al_r = NULL;
		return -1;
	}
	finish_table(al);
	*al_r = al;
	return 0;
}

int aliases_parse(const char *text, size_t len, struct aliases **al_r, const char **error_r)
{
	unsigned line;

	return aliases_parse_line(text, len, al_r, &line, error_r);
}

int aliases_open(const char *path, struct aliases **al_r, const char **error_r)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	unsigned line;
	int fd, ret;

	*al_r = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ENOENT)
			return aliases_parse("", 0, al_r, error_r);
		*error_r = "cannot open the aliases file";
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		*error_r = "the aliases file is not a regular file";
		return -1;
	}
	if (st.st_size > (off_t)ALIASES_MAX_FILE) {
		close(fd);
		*error_r = "aliases file too large";
		return -1;
	}
	/* read at most the limit + 1 whatever fstat said (the file may grow meanwhile) */
	buf = xmalloc(ALIASES_MAX_FILE + 1);
	for (;;) {
		ssize_t n = read(fd, buf + got, ALIASES_MAX_FILE + 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			free(buf);
			close(fd);
			*error_r = "cannot read the aliases file";
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n; /* BOUNDS: read at most the room left */
		if (got > ALIASES_MAX_FILE)
			break;
	}
	close(fd);
	ret = aliases_parse_line(buf, got, al_r, &line, error_r);
	if (ret == -1 && line > 0)
		log_warn("aliases: file=%s, line=%u, error=%s", path, line, *error_r);
	free(buf);
	return ret;
}

void aliases_free(struct aliases **alp)
{
	struct aliases *al = *alp;

	if (al == NULL)
		return;
	for (size_t i = 0; i < al->nentries; i++)
		free(al->entries[i].name);
	for (size_t i = 0; i < al->ntargets; i++) {
		free(al->targets[i].value);
		free(al->targets[i].domain);
	}
	free(al->entries);
	free(al->targets);
	free(al);
	*alp = NULL;
}

void aliases_set_local(struct aliases *al, aliases_local_cb *is_local, void *ctx)
{
	al->is_local = is_local;
	al->is_local_ctx = ctx;
}

size_t aliases_count(const struct aliases *al)
{
	return al->nentries;
}

static const struct alias_entry *find_entry(const struct aliases *al, const char *name,
					    size_t *idx_r)
{
	size_t lo = 0, hi = al->nentries;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, al->entries[mid].name);
		if (c == 0) {
			*idx_r = mid;
			return &al->entries[mid];
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

struct expand_ctx {
	const struct aliases *al;
	aliases_user_cb *cb;
	void *ctx;
	uint8_t *state;     /* per entry: 0 new, 1 being expanded, 2 done */
	char **users;       /* given to cb so far */
	size_t nusers;
	unsigned steps, skipped;
	bool loop, stopped;
	const char *error;
};

/* 0 going on, -1 error (ec->error) or stop (ec->stopped) */
static int give_user(struct expand_ctx *ec, const char *user)
{
	for (size_t i = 0; i < ec->nusers; i++)
		if (strcmp(ec->users[i], user) == 0)
			return 0;
	if (ec->nusers == ALIASES_MAX_USERS) {
		ec->error = "alias expands to too many users";
		return -1;
	}
	ec->users[ec->nusers++] = xstrdup(user);
	if (ec->cb(ec->ctx, user) != 0) {
		ec->stopped = true;
		return -1;
	}
	return 0;
}

static int expand_entry(struct expand_ctx *ec, size_t idx, unsigned depth);

static int expand_name(struct expand_ctx *ec, const char *name, const char *self,
		       unsigned depth)
{
	size_t idx;

	if (strcmp(name, self) == 0 || find_entry(ec->al, name, &idx) == NULL)
		return give_user(ec, name);
	if (ec->state[idx] == 1) {
		ec->loop = true;
		return 0;
	}
	if (ec->state[idx] == 2)
		return 0;
	if (depth + 1 > ALIASES_MAX_DEPTH) {
		ec->error = "aliases nested too deep";
		return -1;
	}
	return expand_entry(ec, idx, depth + 1);
}

static int expand_entry(struct expand_ctx *ec, size_t idx, unsigned depth)
{
	const struct alias_entry *e = &ec->al->entries[idx];
	int ret = 0;

	ec->state[idx] = 1;
	for (size_t i = 0; i < e->count && ret == 0; i++) {
		const struct alias_target *t = &ec->al->targets[e->first + i];
		if (++ec->steps > ALIASES_MAX_STEPS) {
			ec->error = "alias expansion too large";
			return -1;
		}
		switch (t->kind) {
		case ALIAS_T_SKIP:
			ec->skipped++;
			break;
		case ALIAS_T_USER:
			ret = give_user(ec, t->value);
			break;
		case ALIAS_T_ADDR:
			if (ec->al->is_local == NULL ||
			    !ec->al->is_local(ec->al->is_local_ctx, t->domain)) {
				ec->skipped++;
				break;
			}
			ret = expand_name(ec, t->value, e->name, depth);
			break;
		case ALIAS_T_NAME:
			ret = expand_name(ec, t->value, e->name, depth);
			break;
		}
	}
	ec->state[idx] = 2;
	return ret;
}

int aliases_expand(const struct aliases *al, const char *name, aliases_user_cb *cb,
		   void *ctx, unsigned *skipped_r, const char **error_r)
{
	char key[ALIASES_MAX_NAME + 1];
	size_t len = strlen(name), idx;
	struct expand_ctx ec;
	int ret;

	*skipped_r = 0;
	if (len == 0 || len > ALIASES_MAX_NAME)
		return 0;
	memcpy(key, name, len + 1);
	lower_ascii(key);
	if (find_entry(al, key, &idx) == NULL)
		return 0;

	memset(&ec, 0, sizeof(ec));
	ec.al = al;
	ec.cb = cb;
	ec.ctx = ctx;
	ec.state = xcalloc(al->nentries, 1);
	ec.users = xcalloc(ALIASES_MAX_USERS, sizeof(char *));
	ret = expand_entry(&ec, idx, 0);
	for (size_t i = 0; i < ec.nusers; i++)
		free(ec.users[i]);
	free(ec.users);
	free(ec.state);
	*skipped_r = ec.skipped;
	if (ec.stopped)
		return 1;
	if (ret == -1) {
		*error_r = ec.error;
		return -1;
	}
	if (ec.nusers == 0 && ec.loop) {
		*error_r = "alias loop that reaches no user";
		return -1;
	}
	return 1;
}
