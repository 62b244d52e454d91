/* -t: smtp-submit's own checks, after the shared ones (privsep/check.c): the spool user,
 * the spool directory, our host name and local domains, the aliases file.  Each problem
 * is printed with the command or line that fixes it (see deliver.h).  Runs as root;
 * reads the aliases file (as hostile input, common/spool/aliases.c) and nothing the spool
 * user wrote but directory metadata. */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/plimits.h"
#include "base/util.h"
#include "spool/aliases.h"
#include "spool/spool.h"
#include <openssl/evp.h>
#include "mail/dkim.h"
#include "deliver.h"
#include "submit.h"

struct check {
	const struct config *cfg;
	FILE *out;
	int problems;
};

static void ck_ok(struct check *c, const char *what, const char *detail)
{
	fprintf(c->out, "ok: %s%s%s\n", what, detail[0] != '\0' ? ": " : "", detail);
}

static void ck_fail(struct check *c, const char *what, const char *fix)
{
	fprintf(c->out, "error: %s\n  fix: %s\n", what, fix);
	c->problems++;
}

/* The spool user: exists, is not root, not the worker's account. */
static const struct passwd *check_spool_user(struct check *c, struct passwd *copy)
{
	const struct config *cfg = c->cfg;
	const struct passwd *pw = getpwnam(cfg->spool_user);
	char msg[300], fix[300];

	if (pw == NULL) {
		/* privsep/check.c says how to make it */
		snprintf(msg, sizeof(msg), "spool_user %s does not exist", cfg->spool_user);
		snprintf(fix, sizeof(fix), "useradd --system --user-group --no-create-home "
			 "--home-dir /nonexistent --shell /usr/sbin/nologin %s", cfg->spool_user);
		ck_fail(c, msg, fix);
		return NULL;
	}
	*copy = *pw;
	const struct passwd *up = getpwnam(cfg->unpriv_user);
	if (copy->pw_uid == 0 || copy->pw_gid == 0) {
		snprintf(msg, sizeof(msg), "spool_user %s has uid or gid 0", cfg->spool_user);
		ck_fail(c, msg, "set spool_user to a system account of its own (postern-spool)");
		return NULL;
	}
	if (strcmp(cfg->spool_user, cfg->unpriv_user) == 0 ||
	    (up != NULL && up->pw_uid == copy->pw_uid)) {
		snprintf(msg, sizeof(msg), "spool_user %s is the unprivileged worker's account "
			 "(%s): a broken worker could write the queue", cfg->spool_user,
			 cfg->unpriv_user);
		ck_fail(c, msg, "useradd --system --user-group --no-create-home --home-dir "
			"/nonexistent --shell /usr/sbin/nologin postern-spool, and set "
			"spool_user = postern-spool");
		return NULL;
	}
	snprintf(msg, sizeof(msg), "%s (uid %lu)", cfg->spool_user, (unsigned long)copy->pw_uid);
	ck_ok(c, "spool user", msg);
	return copy;
}

/* spool_dir, tmp/ and queue/: directories of the spool user, mode 0700. */
static void check_spool_dir(struct check *c, const struct passwd *pw)
{
	const char *dir = c->cfg->spool_dir, *name = c->cfg->spool_user;
	char msg[1600], fix[2600], sub[600];
	struct stat st;

	if (pw == NULL)
		return;
	if (lstat(dir, &st) == -1) {
		snprintf(msg, sizeof(msg), "spool_dir %s: %s", dir, strerror(errno));
		snprintf(fix, sizeof(fix), "install -d -m 700 -o %s -g %lu %s %s/tmp %s/queue",
			 name, (unsigned long)pw->pw_gid, dir, dir, dir);
		ck_fail(c, msg, fix);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(msg, sizeof(msg), "spool_dir %s is not a directory (a symbolic link or "
			 "a file)", dir);
		snprintf(fix, sizeof(fix), "make it a real directory: install -d -m 700 -o %s "
			 "-g %lu %s %s/tmp %s/queue (after moving what is there away)", name,
			 (unsigned long)pw->pw_gid, dir, dir, dir);
		ck_fail(c, msg, fix);
		return;
	}
	bool bad = false;
	const char *names[] = { "", "/tmp", "/queue" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s%s", dir, names[i]);
		if (lstat(sub, &st) == -1 || !S_ISDIR(st.st_mode)) {
			snprintf(msg, sizeof(msg), "%s is missing (or not a directory)", sub);
			snprintf(fix, sizeof(fix), "install -d -m 700 -o %s -g %lu %s", name,
				 (unsigned long)pw->pw_gid, sub);
			ck_fail(c, msg, fix);
			bad = true;
			continue;
		}
		if (st.st_uid != pw->pw_uid) {
			snprintf(msg, sizeof(msg), "%s belongs to uid %lu, not to spool_user %s", sub,
				 (unsigned long)st.st_uid, name);
			snprintf(fix, sizeof(fix), "chown -R %s:%lu %s", name,
				 (unsigned long)pw->pw_gid, dir);
			ck_fail(c, msg, fix);
			bad = true;
		}
		if ((st.st_mode & 07777) != 0700) {
			snprintf(msg, sizeof(msg), "%s has mode %04o, not 0700 (the queue is private "
				 "to the spool user)", sub, (unsigned)(st.st_mode & 07777));
			snprintf(fix, sizeof(fix), "chmod 700 %s", sub);
			ck_fail(c, msg, fix);
			bad = true;
		}
	}
	/* the directory above: root's, so the spool user cannot swap the spool */
	snprintf(sub, sizeof(sub), "%s", dir);
	char *slash = strrchr(sub, '/');
	if (slash != NULL) {
		if (slash == sub)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(sub, &st) == 0 && (st.st_uid != 0 || (st.st_mode & 022) != 0)) {
			snprintf(msg, sizeof(msg), "%s (above spool_dir) is not root's, or is "
				 "writable by others", sub);
			snprintf(fix, sizeof(fix), "chown root %s && chmod go-w %s", sub, sub);
			ck_fail(c, msg, fix);
			bad = true;
		}
	}
	if (bad)
		return;
	struct spool *sp;
	const char *err;
	if (spool_open(dir, pw->pw_uid, 0, &sp, &err) == -1) {
		snprintf(msg, sizeof(msg), "spool_dir %s: %s", dir, err);
		ck_fail(c, msg, "see docs/architecture.md \"The spool\": Layout");
		return;
	}
	spool_close(&sp);
	ck_ok(c, "spool", dir);
}

/* A domain name as DNS has them: labels of letters, digits and hyphens (not first or
 * last), 1..63 each, 253 in all, at least two labels. */
static bool domain_ok(const char *d, size_t len)
{
	size_t label = 0, labels = 1;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)d[i];
		if (ch == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (!(isalnum(ch) || (ch == '-' && label > 0)) || ++label > 63)
			return false;
	}
	return label > 0 && d[len - 1] != '-' && labels >= 2;
}

static bool domain_private(const char *d)
{
	const char *bad[] = { "localhost", ".localhost", ".localdomain", ".local", ".internal",
			      ".invalid", ".test", ".example" };
	size_t n = strlen(d);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t k = strlen(bad[i]);
		if (bad[i][0] != '.' ? strcasecmp(d, bad[i]) == 0 :
		    (n > k && strcasecmp(d + n - k, bad[i]) == 0))
			return true;
	}
	return false;
}

/* Our name (hostname, or the FQDN) and the local domains. */
static void check_names(struct check *c)
{
	const struct config *cfg = c->cfg;
	char host[256] = "", msg[700];

	if (cfg->hostname != NULL) {
		snprintf(host, sizeof(host), "%s", cfg->hostname);
	} else {
		struct addrinfo hints, *ai = NULL;
		if (gethostname(host, sizeof(host) - 1) == -1)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		if (host[0] != '\0' && getaddrinfo(host, NULL, &hints, &ai) == 0) {
			if (ai->ai_canonname != NULL)
				snprintf(host, sizeof(host), "%s", ai->ai_canonname);
			freeaddrinfo(ai);
		}
	}
	if (!domain_ok(host, strlen(host))) {
		snprintf(msg, sizeof(msg), "host name \"%s\" is not a fully qualified domain name "
			 "(other servers check the greeting and HELO against it)", host);
		ck_fail(c, msg, "set hostname = mail.your-domain.example in [smtp-submit], or "
			"give the host its FQDN in /etc/hosts");
	} else {
		ck_ok(c, cfg->hostname != NULL ? "hostname" : "hostname (the host's FQDN)", host);
		if (domain_private(host))
			fprintf(c->out, "warning: host name %s is not a public name: mail from the "
				"Internet cannot find this host by it\n", host);
	}
	if (cfg->local_domains == NULL) {
		const char *dot = strchr(host, '.');
		snprintf(msg, sizeof(msg), "(default) %s%s%s", host, dot != NULL ? " " : "",
			 dot != NULL ? dot + 1 : "");
		ck_ok(c, "local_domains", msg);
		if (dot != NULL && strchr(dot + 1, '.') == NULL)
			fprintf(c->out, "warning: local_domains defaults to %s and its parent %s, a "
				"top-level domain: set local_domains\n", host, dot + 1);
		return;
	}
	size_t n = 0;
	for (const char *p = cfg->local_domains; *p != '\0';) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		size_t len = strcspn(p, " ,\t");
		if (len == 0)
			break;
		char *d = xstrdup(p);
		d[len] = '\0';
		if (d[len - 1] == '.')       /* a trailing dot is the same name */
			d[len - 1] = '\0';
		if (!domain_ok(d, strlen(d))) {
			snprintf(msg, sizeof(msg), "local_domains: \"%.200s\" is not a domain name", d);
			ck_fail(c, msg, "list domain names only, e.g. local_domains = example.org "
				"mail.example.org");
		} else {
			n++;
			if (domain_private(d))
				fprintf(c->out, "note: local domain %s is not a public name\n", d);
		}
		free(d);
		p += len;
	}
	if (n == 0)
		ck_fail(c, "local_domains lists no domain", "set local_domains = your-domain");
	else
		ck_ok(c, "local_domains", cfg->local_domains);
}

/* Every alias's users exist.  The table has no walk; the names are the file's entries
 * ("name:" at the start of a line), each expanded through the reader itself. */
struct alias_check {
	struct check *c;
	const char *alias;
	unsigned users;
	bool quiet;          /* count the users only (a name already walked and reported) */
};

static int alias_target(void *ctx, const char *user)
{
	struct alias_check *a = ctx;
	const struct passwd *pw = getpwnam(user);
	char msg[400], fix[400];

	/* local delivery takes any account an alias names (the admin wrote it) but root */
	if ((pw == NULL || pw->pw_uid == 0) && a->quiet)
		return 0;
	if (pw == NULL || pw->pw_uid == 0) {
		snprintf(msg, sizeof(msg), "alias %.100s: target %.100s %s", a->alias, user,
			 pw == NULL ? "is not a user" : "is root, whose mail is never delivered "
			 "as root: alias root to an administrator's account");
		snprintf(fix, sizeof(fix), "point %.100s at a mail user in %s, then run "
			 "newaliases if other software wants it", a->alias, a->c->cfg->aliases);
		a->c->problems++;
		fprintf(a->c->out, "error: %s\n  fix: %s\n", msg, fix);
		return 0;
	}
	a->users++;
	return 0;
}

static void check_aliases(struct check *c)
{
	const struct config *cfg = c->cfg;
	struct aliases *al;
	const char *err;
	char msg[600];

	if (access(cfg->aliases, F_OK) == -1) {
		fprintf(c->out, "note: aliases file %s does not exist: no aliases\n", cfg->aliases);
		return;
	}
	if (aliases_open(cfg->aliases, &al, &err) == -1) {
		snprintf(msg, sizeof(msg), "aliases file %s: %s", cfg->aliases, err);
		ck_fail(c, msg, "correct it (aliases(5): \"name: user, user\"); local delivery "
			"defers every local recipient until it reads");
		return;
	}
	FILE *f = fopen(cfg->aliases, "r");
	char line[1024];
	unsigned names = 0;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL && names < 100000) {
		if (line[0] == '#' || line[0] == ' ' || line[0] == '\t' || line[0] == '"')
			continue;
		char *colon = strchr(line, ':');
		if (colon == NULL || colon == line)
			continue;
		*colon = '\0';
		struct alias_check a = { c, line, 0, false };
		unsigned skipped = 0;
		int r = aliases_expand(al, line, alias_target, &a, &skipped, &err);
		names++;
		if (r == -1) {
			snprintf(msg, sizeof(msg), "alias %.100s: %s", line, err);
			ck_fail(c, msg, "break the loop or shorten the expansion");
		}
	}
	if (f != NULL)
		fclose(f);
	/* RFC 5321 section 4.5.1: postmaster must be deliverable */
	struct alias_check pm = { c, "postmaster", 0, true };   /* walked above if listed */
	unsigned skipped = 0;
	int r = aliases_expand(al, "postmaster", alias_target, &pm, &skipped, &err);
	const struct passwd *pw = getpwnam("postmaster");
	if (r == 0 && (pw == NULL || pw->pw_uid < cfg->min_uid || pw->pw_uid == 0))
		fprintf(c->out, "warning: postmaster is neither an alias nor a mail user: mail "
			"to postmaster@ your domains fails (add \"postmaster: you\" to %s)\n",
			cfg->aliases);
	aliases_free(&al);
	snprintf(msg, sizeof(msg), "%s", cfg->aliases);
	ck_ok(c, "aliases", msg);
}

/* The next space/comma-separated word of list at *p into buf; false at the end. */
bool submit_next_word(const char **p, char *buf, size_t size)
{
	while (**p == ' ' || **p == ',' || **p == '\t')
		(*p)++;
	size_t len = strcspn(*p, " ,\t");
	if (len == 0)
		return false;
	snprintf(buf, size, "%.*s", (int)(len < size ? len : size - 1), *p);
	*p += len;
	return true;
}

/* One DKIM key: root's, 0600, loads; its TXT record is printed to publish. */
static void check_dkim_key(struct check *c, const char *domain, const char *sel)
{
	const struct config *cfg = c->cfg;
	char path[1200], msg[3000], fix[3000];
	struct stat st;
	EVP_PKEY *key;
	enum dkim_alg alg;
	const char *err;

	if (dkim_key_path(cfg->dkim_key_dir, domain, sel, path, sizeof(path)) == -1) {
		snprintf(msg, sizeof(msg), "DKIM: domain %s or selector %s is not a name", domain,
			 sel);
		ck_fail(c, msg, "list selectors of letters, digits, hyphens: dkim_selector = s1");
		return;
	}
	if (lstat(path, &st) == -1) {
		snprintf(msg, sizeof(msg), "DKIM: no key for %s, selector %s (%s)", domain, sel,
			 path);
		snprintf(fix, sizeof(fix), "smtp-submit -k %s %s, then publish the TXT record "
			 "it prints", domain, sel);
		ck_fail(c, msg, fix);
		return;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0) {
		snprintf(msg, sizeof(msg), "DKIM key %s is not a file of root's with mode 0600",
			 path);
		snprintf(fix, sizeof(fix), "chown root:root %s && chmod 600 %s", path, path);
		ck_fail(c, msg, fix);
		return;
	}
	if (dkim_key_load(path, &key, &err) == -1) {
		snprintf(msg, sizeof(msg), "DKIM key %s: %s", path, err);
		snprintf(fix, sizeof(fix), "move it away and make a new one: smtp-submit -k %s %s",
			 domain, sel);
		ck_fail(c, msg, fix);
		return;
	}
	char *rec = dkim_txt_record(key, domain, sel, &err);
	(void)dkim_key_alg(key, &alg, &err);
	snprintf(msg, sizeof(msg), "%s selector %s, %s %d bits, %s", domain, sel,
		 dkim_alg_key_type(alg), EVP_PKEY_get_bits(key), path);
	ck_ok(c, "DKIM key", msg);
	if (rec != NULL)
		fprintf(c->out, "  publish: %s\n", rec);
	free(rec);
	EVP_PKEY_free(key);
}

/* DKIM: the key directory, and a key per local domain and selector in dkim_selector. */
static void check_dkim(struct check *c)
{
	const struct config *cfg = c->cfg;
	const char *dir = cfg->dkim_key_dir;
	char msg[1200], fix[1200], sel[300], dom[300];
	struct stat st;

	if (cfg->dkim_selector == NULL) {
		fprintf(c->out, "note: DKIM signing is off: make a key per local domain with "
			"smtp-submit -k DOMAIN SELECTOR and set dkim_selector = SELECTOR\n");
		return;
	}
	if (dir == NULL || dir[0] != '/') {
		ck_fail(c, "dkim_key_dir is not an absolute path",
			"dkim_key_dir = /etc/postern/dkim");
		return;
	}
	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022) != 0) {
		snprintf(msg, sizeof(msg), "dkim_key_dir %s is not a directory of root's that "
			 "only root may write", dir);
		snprintf(fix, sizeof(fix), "install -d -m 700 -o root -g root %s", dir);
		ck_fail(c, msg, fix);
		return;
	}
	char *domains = NULL;
	if (cfg->local_domains != NULL) {
		domains = xstrdup(cfg->local_domains);
	} else {
		const char *host = submit_hostname(cfg), *dot = strchr(host, '.');
		size_t n = strlen(host) * 2 + 2;
		domains = xmalloc(n);
		snprintf(domains, n, "%s %s", host, dot != NULL ? dot + 1 : "");
	}
	for (const char *s = cfg->dkim_selector; submit_next_word(&s, sel, sizeof(sel));) {
		for (const char *d = domains; submit_next_word(&d, dom, sizeof(dom));) {
			size_t len = strlen(dom);
			if (len > 1 && dom[len - 1] == '.')
				dom[len - 1] = '\0';
			check_dkim_key(c, dom, sel);
		}
	}
	free(domains);
}

int submit_check(const struct config *cfg, FILE *out, bool dns)
{
	struct check c = { cfg, out, 0 };
	struct passwd copy;

	const struct passwd *pw = check_spool_user(&c, &copy);
	check_spool_dir(&c, pw);
	check_names(&c);
	check_aliases(&c);
	check_dkim(&c);
	if (dns)
		c.problems += submit_check_dns(cfg, out);
	if (c.problems > 0)
		fprintf(out, "%u smtp-submit problem%s found\n", c.problems,
			c.problems == 1 ? "" : "s");
	return c.problems;
}
