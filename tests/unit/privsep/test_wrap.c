/* wrap.c: the scan that decides whether libwrap must be loaded, checked against libwrap
 * itself: a deny table the scan calls rule-free must let every client in, and the
 * tables it must flag do refuse a client. */
#include <dlfcn.h>
#include <stdlib.h>
#include <tcpd.h>
#include <unistd.h>
#include "privsep/wrap.h"
#include "unit.h"

static const char *const no_rules[] = {
	"",
	"\n\n\n",
	"# hosts.deny: nothing here\n#ALL: ALL\n",
	"   \t \r\n\t\n",
	"#a comment ending in a backslash \\\n#\n",
};

/* Must count as rules: real rules, what libwrap would read as one, and what the scan
 * cannot be sure of. */
static const char *const rules[] = {
	"ALL: ALL\n",
	"# comment\nALL: ALL",
	"  # not a comment for libwrap: '#' only in the first column\n",
	"\\\nALL: ALL\n",
	"\f\n",
	/* a last line without its newline: Debian's libwrap reads even a comment so */
	"# no newline at the end: ALL: ALL",
	"#\n   ",
};

static int (*wrap_access)(struct request_info *);
static struct request_info *(*wrap_init)(struct request_info *, ...);
static char **wrap_deny, **wrap_allow;

/* libwrap's verdict for a client 192.0.2.1 of "ipop3d" with text as hosts.deny. */
static int libwrap_allows(const char *text, size_t len)
{
	char path[] = "/tmp/test_wrap.XXXXXX";
	int fd = mkstemp(path);
	struct request_info req;

	if (fd == -1 || write(fd, text, len) != (ssize_t)len)
		return -1;
	close(fd);
	*wrap_allow = "/nonexistent/hosts.allow";
	*wrap_deny = path;
	wrap_init(&req, RQ_DAEMON, "ipop3d", RQ_CLIENT_ADDR, "192.0.2.1", RQ_CLIENT_NAME,
		  "client.example", 0);
	int rc = wrap_access(&req);
	unlink(path);
	return rc != 0;
}

static void test_scan(void)
{
	for (size_t i = 0; i < sizeof(no_rules) / sizeof(no_rules[0]); i++)
		CHECK(!wrap_text_has_rules(no_rules[i], strlen(no_rules[i])));
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		CHECK(wrap_text_has_rules(rules[i], strlen(rules[i])));
	/* a NUL in a line: not blank */
	CHECK(wrap_text_has_rules(" \0 \n", 4));
	/* a line libwrap would split: the tail of a long comment could be a rule */
	char *big = malloc(5000);
	CHECK(big != NULL);
	if (big != NULL) {
		memset(big, ' ', 5000);
		big[0] = '#';
		memcpy(big + 4000, "ALL: ALL", 8);
		CHECK(wrap_text_has_rules(big, 5000));
		free(big);
	}
}

static void test_against_libwrap(void)
{
	void *h = dlopen("libwrap.so.0", RTLD_NOW);
	CHECK(h != NULL);
	if (h == NULL)
		return;
	*(void **)&wrap_access = dlsym(h, "hosts_access");
	*(void **)&wrap_init = dlsym(h, "request_init");
	wrap_deny = dlsym(h, "hosts_deny_table");
	wrap_allow = dlsym(h, "hosts_allow_table");
	CHECK(wrap_access != NULL && wrap_init != NULL && wrap_deny != NULL &&
	      wrap_allow != NULL);
	if (wrap_access == NULL || wrap_init == NULL || wrap_deny == NULL || wrap_allow == NULL)
		return;
	for (size_t i = 0; i < sizeof(no_rules) / sizeof(no_rules[0]); i++)
			CHECK(libwrap_allows(no_rules[i], strlen(no_rules[i])) == 1);
	/* the first two are real rules that refuse this client: libwrap agrees */
	CHECK(libwrap_allows(rules[0], strlen(rules[0])) == 0);
	CHECK(libwrap_allows(rules[1], strlen(rules[1])) == 0);
	CHECK(libwrap_allows(rules[5], strlen(rules[5])) == 0);
	/* '#' in another column than the first is no comment to libwrap: a rule */
	CHECK(libwrap_allows("  #x: ALL\n  # ALL: ALL\n", 23) == 0);
	CHECK(wrap_text_has_rules("  #x: ALL\n  # ALL: ALL\n", 23));
}

int main(void)
{
	test_scan();
	test_against_libwrap();
	return unit_done("test_wrap");
}
