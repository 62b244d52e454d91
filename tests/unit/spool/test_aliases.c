/* aliases(5) reader: a table of files and expansions (users given, skipped count,
 * errors), the malformed files refused, every limit at its maximum and one past it, and
 * every prefix and every byte value at each position of a real file (no crash, the
 * result parses or is refused with an error). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/plimits.h"
#include "spool/aliases.h"
#include "unit.h"

struct got {
	char users[2048];
	unsigned n;
	unsigned stop_after; /* 0: never */
};

static int collect(void *ctx, const char *user)
{
	struct got *g = ctx;
	size_t l = strlen(g->users);

	snprintf(g->users + l, sizeof(g->users) - l, "%s%s", l > 0 ? " " : "", user);
	g->n++;
	return g->stop_after != 0 && g->n >= g->stop_after;
}

static bool local_example(void *ctx, const char *domain)
{
	(void)ctx;
	return strcmp(domain, "example.org") == 0;
}

/* expand name in text; returns aliases_expand's result, users in *g */
static int expand(const char *text, const char *name, struct got *g, unsigned *skipped,
		  const char **err)
{
	struct aliases *al;
	int r;

	memset(g, 0, sizeof(*g));
	if (aliases_parse(text, strlen(text), &al, err) == -1)
		return -2;
	aliases_set_local(al, local_example, NULL);
	r = aliases_expand(al, name, collect, g, skipped, err);
	aliases_free(&al);
	return r;
}

static const struct {
	const char *text, *name;
	int ret;
	const char *users;
	unsigned skipped;
} cases[] = {
	/* plain, case of name and target */
	{ "root: ann\n", "root", 1, "ann", 0 },
	{ "Root: Ann\n", "ROOT", 1, "ann", 0 },
	{ "root: ann\n", "bob", 0, "", 0 },
	/* lists, spaces, empty targets, CRLF, no final newline */
	{ "staff: ann, bob ,carl\r\n", "staff", 1, "ann bob carl", 0 },
	{ "staff:ann,,bob,", "staff", 1, "ann bob", 0 },
	{ "staff : ann", "staff", 1, "ann", 0 },
	/* continuation lines, comments and blank lines inside an entry */
	{ "staff: ann,\n  bob,\n# comment\n\n\tcarl\nx: y\n", "staff", 1, "ann bob carl", 0 },
	{ "# only a comment\n   # indented comment\n\n", "x", 0, "", 0 },
	/* recursion, dedup, diamond */
	{ "a: b, c\nb: d\nc: d, e\n", "a", 1, "d e", 0 },
	{ "a: b, ann, b\nb: ann\n", "a", 1, "ann", 0 },
	/* self reference is the user; an indirect loop is dropped */
	{ "root: root, ann\n", "root", 1, "root ann", 0 },
	{ "a: b\nb: a, ann\n", "a", 1, "ann", 0 },
	{ "a: b\nb: a\n", "a", -1, "", 0 },
	{ "a: a\n", "a", 1, "a", 0 },
	/* backslash: the user itself, never expanded */
	{ "a: \\b\nb: carl\n", "a", 1, "b", 0 },
	/* skipped targets */
	{ "a: |/usr/bin/prog, /var/log/mail, :include:/etc/list, bob@remote.net\n", "a", 1,
	  "", 4 },
	{ "a: \"|/usr/bin/prog -x, -y\", ann\n", "a", 1, "ann", 1 },
	{ "a: :INCLUDE:/x, ann\n", "a", 1, "ann", 1 },
	/* an address at a local domain is a name */
	{ "a: ann@example.org, b@EXAMPLE.ORG\nb: carl\n", "a", 1, "ann carl", 0 },
	{ "a: ann@example.org.evil\n", "a", 1, "", 1 },
	{ "a: a@example.org\n", "a", 1, "a", 0 },
	{ "a: x@, @y\n", "a", 1, "", 2 },
	/* quoted names */
	{ "\"first last\": ann\n", "first last", 1, "ann", 0 },
	{ "\"a\\\"b\": ann\n", "a\"b", 1, "ann", 0 },
	/* the first definition wins */
	{ "a: ann\na: bob\n", "a", 1, "ann", 0 },
	/* UTF-8 names as given */
	{ "j\xc3\xbcrgen: ann\n", "j\xc3\xbcrgen", 1, "ann", 0 },
	{ "j\xc3\xbcrgen: ann\n", "J\xc3\xbcRGEN", 1, "ann", 0 },
	/* malformed */
	{ "a ann\n", "a", -2, "", 0 },
	{ " a: ann\n", "a", -2, "", 0 },
	{ "a: ann\nb\n", "a", -2, "", 0 },
	{ ": ann\n", "a", -2, "", 0 },
	{ "\"a: ann\n", "a", -2, "", 0 },
	{ "a: \"ann\n", "a", -2, "", 0 },
	{ "a: ann\rbob\n", "a", -2, "", 0 },
	{ "a b: ann\n", "a", -2, "", 0 },
};

static void test_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct got g;
		unsigned skipped = 99;
		const char *err = NULL;
		int r = expand(cases[i].text, cases[i].name, &g, &skipped, &err);
		if (r != cases[i].ret)
			fprintf(stderr, "case %zu: ret %d\n", i, r);
		CHECK(r == cases[i].ret);
		if (r == 1)
			CHECK_STR(g.users, cases[i].users);
		if (r >= 0)
			CHECK(skipped == cases[i].skipped);
		if (r < 0)
			CHECK(err != NULL && err[0] != '\0');
	}
}

static void test_nul_and_lines(void)
{
	struct aliases *al;
	const char *err;
	unsigned line;

	CHECK(aliases_parse("a: b\0c\n", 7, &al, &err) == -1 && al == NULL);
	CHECK(aliases_parse_line("a: b\n\nc d\n", 10, &al, &line, &err) == -1 && line == 3);
	CHECK(aliases_parse_line("a: b\nc: \"d\n", 11, &al, &line, &err) == -1 && line == 2);
	CHECK(aliases_parse_line("a: b\n", 5, &al, &line, &err) == 0 && aliases_count(al) == 1);
	aliases_free(&al);
	CHECK(al == NULL);
}

/* the callback stops the expansion */
static void test_stop(void)
{
	struct got g;
	unsigned skipped;
	const char *err;

	memset(&g, 0, sizeof(g));
	struct aliases *al;
	CHECK(aliases_parse("a: x, y, z\n", 11, &al, &err) == 0);
	g.stop_after = 1;
	CHECK(aliases_expand(al, "a", collect, &g, &skipped, &err) == 1);
	CHECK(g.n == 1);
	aliases_free(&al);
}

static char *dyn_append(char *buf, size_t *len, size_t *cap, const char *s)
{
	size_t l = strlen(s);

	if (*len + l + 1 > *cap) {
		*cap = (*len + l + 1) * 2;
		buf = realloc(buf, *cap);
	}
	memcpy(buf + *len, s, l + 1);
	*len += l;
	return buf;
}

static void test_limits(void)
{
	struct aliases *al;
	const char *err;
	char name[ALIASES_MAX_NAME + 2], line[200];
	struct got g;
	unsigned skipped;
	char *buf = NULL;
	size_t len = 0, cap = 0;

	/* name length */
	memset(name, 'n', sizeof(name));
	name[ALIASES_MAX_NAME] = '\0';
	snprintf(line, sizeof(line), "%s: ann\n", name);
	CHECK(aliases_parse(line, strlen(line), &al, &err) == 0);
	memset(&g, 0, sizeof(g));
	CHECK(aliases_expand(al, name, collect, &g, &skipped, &err) == 1);
	aliases_free(&al);
	name[ALIASES_MAX_NAME] = 'n';
	name[ALIASES_MAX_NAME + 1] = '\0';
	snprintf(line, sizeof(line), "%s: ann\n", name);
	CHECK(aliases_parse(line, strlen(line), &al, &err) == -1);

	/* depth: a chain of ALIASES_MAX_DEPTH + 1 aliases (depth 0..MAX) works, one more
	 * is refused */
	for (int extra = 0; extra <= 1; extra++) {
		len = 0;
		int n = ALIASES_MAX_DEPTH + 1 + extra;
		for (int i = 0; i < n; i++) {
			snprintf(line, sizeof(line), "d%d: d%d\n", i, i + 1);
			buf = dyn_append(buf, &len, &cap, line);
		}
		CHECK(aliases_parse(buf, len, &al, &err) == 0);
		memset(&g, 0, sizeof(g));
		int r = aliases_expand(al, "d0", collect, &g, &skipped, &err);
		if (extra == 0)
			CHECK(r == 1 && g.n == 1);
		else
			CHECK(r == -1);
		aliases_free(&al);
	}

	/* users: ALIASES_MAX_USERS distinct users work, one more is refused */
	for (int extra = 0; extra <= 1; extra++) {
		len = 0;
		buf = dyn_append(buf, &len, &cap, "big: u0");
		for (int i = 1; i < ALIASES_MAX_USERS + extra; i++) {
			snprintf(line, sizeof(line), ",\n u%d", i);
			buf = dyn_append(buf, &len, &cap, line);
		}
		buf = dyn_append(buf, &len, &cap, "\n");
		CHECK(aliases_parse(buf, len, &al, &err) == 0);
		memset(&g, 0, sizeof(g));
		int r = aliases_expand(al, "big", collect, &g, &skipped, &err);
		if (extra == 0)
			CHECK(r == 1 && g.n == ALIASES_MAX_USERS);
		else
			CHECK(r == -1);
		aliases_free(&al);
	}

	/* one logical line of exactly ALIASES_MAX_LINE bytes, and one more */
	for (int extra = 0; extra <= 1; extra++) {
		len = 0;
		buf = dyn_append(buf, &len, &cap, "l: x");
		while (len + 4 <= ALIASES_MAX_LINE)
			buf = dyn_append(buf, &len, &cap, "\n ,x");
		while (len < (size_t)ALIASES_MAX_LINE + (size_t)extra)
			buf = dyn_append(buf, &len, &cap, "x");
		buf = dyn_append(buf, &len, &cap, "\n");
		/* the logical line joins the physical ones with a space: same length */
		int r = aliases_parse(buf, len, &al, &err);
		CHECK(r == (extra == 0 ? 0 : -1));
		aliases_free(&al);
	}

	/* entries */
	for (int extra = 0; extra <= 1; extra++) {
		len = 0;
		for (int i = 0; i < ALIASES_MAX_ENTRIES + extra; i++) {
			snprintf(line, sizeof(line), "e%d:u\n", i);
			buf = dyn_append(buf, &len, &cap, line);
		}
		int r = aliases_parse(buf, len, &al, &err);
		CHECK(r == (extra == 0 ? 0 : -1));
		if (r == 0)
			CHECK(aliases_count(al) == ALIASES_MAX_ENTRIES);
		aliases_free(&al);
	}

	/* the file size, through aliases_open */
	char path[] = "/tmp/test_aliases.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd != -1);
	for (int extra = 0; extra <= 1; extra++) {
		len = 0;
		buf = dyn_append(buf, &len, &cap, "a: ann\n");
		while (len + 10 <= ALIASES_MAX_FILE)
			buf = dyn_append(buf, &len, &cap, "#comment\n");
		while (len < (size_t)ALIASES_MAX_FILE - 1 + (size_t)extra)
			buf = dyn_append(buf, &len, &cap, "#");
		buf = dyn_append(buf, &len, &cap, "\n");
		CHECK(len == (size_t)ALIASES_MAX_FILE + (size_t)extra);
		CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, buf, len, 0) == (ssize_t)len);
		int r = aliases_open(path, &al, &err);
		CHECK(r == (extra == 0 ? 0 : -1));
		if (r == 0) {
			memset(&g, 0, sizeof(g));
			CHECK(aliases_expand(al, "a", collect, &g, &skipped, &err) == 1);
			CHECK_STR(g.users, "ann");
		}
		aliases_free(&al);
	}
	close(fd);
	unlink(path);
	/* a missing file is an empty table; a directory is refused */
	CHECK(aliases_open(path, &al, &err) == 0 && aliases_count(al) == 0);
	aliases_free(&al);
	CHECK(aliases_open("/tmp", &al, &err) == -1);
	free(buf);
}

/* a wide loop: every alias names every other one; bounded work, no user -> -1 */
static void test_loops(void)
{
	struct aliases *al;
	const char *err;
	char *buf = NULL, line[64];
	size_t len = 0, cap = 0;
	unsigned skipped;
	struct got g;

	for (int i = 0; i < 100; i++) {
		snprintf(line, sizeof(line), "x%d: ", i);
		buf = dyn_append(buf, &len, &cap, line);
		for (int j = 1; j < 100; j++) {
			snprintf(line, sizeof(line), "%sx%d", j > 1 ? "," : "", (i + j) % 100);
			buf = dyn_append(buf, &len, &cap, line);
		}
		buf = dyn_append(buf, &len, &cap, "\n");
	}
	CHECK(aliases_parse(buf, len, &al, &err) == 0);
	memset(&g, 0, sizeof(g));
	CHECK(aliases_expand(al, "x0", collect, &g, &skipped, &err) == -1);
	aliases_free(&al);
	free(buf);
}

/* every prefix and every byte at every position of a real file: never a crash */
static void test_bytes(void)
{
	static const char file[] =
		"# /etc/aliases\nmailer-daemon: postmaster\npostmaster: root\n"
		"\"list one\": ann,\n\tbob, \"|/bin/x y\", carl@example.org\nroot: \\ann\n";
	size_t flen = sizeof(file) - 1;
	char buf[sizeof(file)];
	unsigned ok = 0, bad = 0;

	for (size_t n = 0; n <= flen; n++) {
		struct aliases *al;
		const char *err = NULL;
		if (aliases_parse(file, n, &al, &err) == 0) {
			struct got g;
			unsigned sk;
			memset(&g, 0, sizeof(g));
			(void)aliases_expand(al, "mailer-daemon", collect, &g, &sk, &err);
			aliases_free(&al);
			ok++;
		} else {
			CHECK(err != NULL && al == NULL);
			bad++;
		}
	}
	for (size_t i = 0; i < flen; i++)
		for (unsigned c = 0; c < 256; c++) {
			struct aliases *al;
			const char *err = NULL;
			memcpy(buf, file, flen);
			buf[i] = (char)c;
			if (aliases_parse(buf, flen, &al, &err) == 0) {
				struct got g;
				unsigned sk;
				memset(&g, 0, sizeof(g));
				(void)aliases_expand(al, "list one", collect, &g, &sk, &err);
				aliases_free(&al);
				ok++;
			} else {
				if (err == NULL)
					bad += 1000000;
				bad++;
			}
		}
	CHECK(ok > 0 && bad > 0 && bad < 1000000);
	/* the whole file */
	struct aliases *al;
	const char *err;
	struct got g;
	unsigned sk;
	CHECK(aliases_parse(file, flen, &al, &err) == 0);
	aliases_set_local(al, local_example, NULL);
	memset(&g, 0, sizeof(g));
	CHECK(aliases_expand(al, "MAILER-DAEMON", collect, &g, &sk, &err) == 1);
	CHECK_STR(g.users, "ann");
	memset(&g, 0, sizeof(g));
	CHECK(aliases_expand(al, "list one", collect, &g, &sk, &err) == 1);
	CHECK_STR(g.users, "ann bob carl");
	CHECK(sk == 1);
	aliases_free(&al);
}

int main(void)
{
	test_table();
	test_nul_and_lines();
	test_stop();
	test_limits();
	test_loops();
	test_bytes();
	return unit_done("test_aliases");
}
