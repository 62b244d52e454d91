/* libwrap (tcp_wrappers): hosts.allow / hosts.deny decide per connection.  Runs in the
 * root monitor before any byte is read from the client.
 *
 * libwrap is loaded (dlopen) only when one of the two tables holds something that may be
 * a rule.  Linked in, it and what it pulls in (libnsl, libtirpc, the Kerberos and GSSAPI
 * libraries: ten shared objects) were mapped and relocated at every exec, that is at
 * every connection, and copied at every fork of the connection's processes: about 1 ms
 * of CPU per login (bench/RESULTS.md), for tables that on most hosts hold only comments.
 * With no rule in either table hosts_access() allows without a side effect (Debian's
 * libwrap is built without PARANOID and ALWAYS_HOSTNAME: no lookup, no log line), so
 * skipping it changes nothing.  The scan below errs towards loading libwrap: whatever it
 * is not sure of counts as a rule. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <tcpd.h>
#include <unistd.h>
#include "base/plimits.h"
#include "privsep/wrap.h"

/* libwrap's soname (Debian's libwrap0): the library the program used to link. */
#define WRAP_SONAME "libwrap.so.0"

bool wrap_text_has_rules(const char *text, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		size_t n = end - i;
		/* libwrap reads a table line by line into a 2048-byte buffer (hosts_access.c
		 * BUFLEN); a longer line comes back in pieces, each read as a line of its own,
		 * so the rest of a long comment could be a rule to it. */
		if (n >= WRAP_SCAN_LINE_MAX)
			return true;
		/* Debian's libwrap reads a last line without its newline as a rule, even one
		 * that starts with '#': so does this scan, whatever the line holds */
		if (nl == NULL && n > 0)
			return true;
		/* libwrap: a comment starts with '#' in the first column; a line of only
		 * " \t\r\n" is blank.  Anything else is a rule (or a syntax error it reports). */
		if (n > 0 && text[i] != '#') {
			for (size_t k = i; k < end; k++)   /* BOUNDS: end <= len */
				if (strchr(" \t\r", text[k]) == NULL || text[k] == '\0')
					return true;
		}
		i = end + 1;
	}
	return false;
}

/* 0: no rule (or no file), 1: it may have rules, or cannot be read here. */
static int wrap_table_has_rules(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return errno == ENOENT ? 0 : 1;   /* libwrap also skips a missing table */
	struct stat st;
	int rc = 1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
	    st.st_size <= WRAP_SCAN_TABLE_MAX) {
		char *buf = malloc((size_t)st.st_size + 1);
		ssize_t got = buf != NULL ? read(fd, buf, (size_t)st.st_size + 1) : -1;
		/* one read of a regular file: short only at its end; a file that grew since
		 * the fstat (got > size) is left to libwrap */
		if (got >= 0 && got <= st.st_size)
			rc = wrap_text_has_rules(buf, (size_t)got) ? 1 : 0;
		free(buf);
	}
	close(fd);
	return rc;
}

struct wrap_lib {
	void *h;
	struct request_info *(*request_init)(struct request_info *, ...);
	void (*sock_host)(struct request_info *);   /* tcpd.h: fromhost() is sock_host() */
	int (*hosts_access)(struct request_info *);
	char **allow_table, **deny_table;
};

static int wrap_load(struct wrap_lib *w, const char **error_r)
{
	w->h = dlopen(WRAP_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (w->h == NULL) {
		*error_r = dlerror();
		return -1;
	}
	*(void **)&w->request_init = dlsym(w->h, "request_init");
	*(void **)&w->sock_host = dlsym(w->h, "sock_host");
	*(void **)&w->hosts_access = dlsym(w->h, "hosts_access");
	w->allow_table = dlsym(w->h, "hosts_allow_table");
	w->deny_table = dlsym(w->h, "hosts_deny_table");
	if (w->request_init == NULL || w->sock_host == NULL || w->hosts_access == NULL ||
	    w->allow_table == NULL || w->deny_table == NULL) {
		*error_r = "a libwrap symbol is missing";
		dlclose(w->h);
		return -1;
	}
	/* The severities of libwrap's own log lines, which the program defines when it links
	 * libwrap (Debian's libwrap has weak defaults: the same values). */
	int *sev = dlsym(w->h, "allow_severity");
	if (sev != NULL)
		*sev = LOG_INFO;
	sev = dlsym(w->h, "deny_severity");
	if (sev != NULL)
		*sev = LOG_WARNING;
	return 0;
}

int wrap_check(const struct config *cfg, const char *daemon, int fd, const char **error_r)
{
	static struct wrap_lib w;      /* loaded once per process, never unloaded */
	struct request_info req;

	if (wrap_table_has_rules(cfg->hosts_allow) == 0 &&
	    wrap_table_has_rules(cfg->hosts_deny) == 0)
		return 1;
	if (w.h == NULL && wrap_load(&w, error_r) == -1) {
		w.h = NULL;
		return -1;
	}
	/* libwrap keeps the table paths in globals; they point into cfg, which outlives the
	 * call. */
	*w.allow_table = cfg->hosts_allow;
	*w.deny_table = cfg->hosts_deny;
	w.request_init(&req, RQ_DAEMON, daemon, RQ_FILE, fd, 0);
	w.sock_host(&req);
	return w.hosts_access(&req) != 0 ? 1 : 0;
}
