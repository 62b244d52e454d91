/* `-t`: check what a connection will need, before the first client finds out.  Each
 * problem is printed with the command or line that fixes it. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "privsep/check.h"
#include "privsep/server_int.h"
#include "privsep/sandbox.h"
#include "privsep/tls.h"
#include "base/util.h"

static int check_problems;

static void check_ok(const char *what, const char *detail)
{
	printf("ok: %s%s%s\n", what, detail[0] != '\0' ? ": " : "", detail);
}

static void check_fail(const char *what, const char *fix)
{
	printf("error: %s\n  fix: %s\n", what, fix);
	check_problems++;
}

static void check_tls(const struct config *cfg)
{
	struct tls_cert_info info;
	const char *err;
	char msg[512];

	if (tls_cert_check(cfg, &info, &err) == -1) {
		snprintf(msg, sizeof(msg), "certificate %s / key %s: %s", cfg->tls_cert,
			 cfg->tls_key, err);
		check_fail(msg, "make one with `postern-mkcert NAME...` (mkcert.sh), or set "
		                "tls_cert and tls_key in the config to your certificate");
		return;
	}
	if (!info.key_matches) {
		snprintf(msg, sizeof(msg), "key %s does not belong to certificate %s",
			 cfg->tls_key, cfg->tls_cert);
		check_fail(msg, "install the matching pair: `postern-mkcert --install CERT KEY`");
		return;
	}
	if (info.days_left < 0) {
		snprintf(msg, sizeof(msg), "certificate %s expired %ld days ago", cfg->tls_cert,
			 -info.days_left);
		check_fail(msg, "renew it (your ACME client, or `postern-mkcert NAME...`)");
		return;
	}
	snprintf(msg, sizeof(msg), "%s, %s, %ld days left", info.subject, info.key_type,
		 info.days_left);
	check_ok("certificate", msg);
	if (info.days_left < 14)
		printf("warning: certificate expires in %ld days\n", info.days_left);
	struct stat st;
	if (stat(cfg->tls_key, &st) == 0 && (st.st_mode & 077) != 0) {
		snprintf(msg, sizeof(msg), "key %s is readable by others (mode %03o)",
			 cfg->tls_key, (unsigned)(st.st_mode & 0777));
		check_fail(msg, "chmod 600 the key file");
	}
}

static void check_pam(const struct config *cfg)
{
	char path[512], msg[700], fix[700];
	const char *dirs[] = { "/etc/pam.d", "/usr/lib/pam.d", "/lib/pam.d" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (util_snprintf(path, sizeof(path), "%s/%s", dirs[i], cfg->pam_service) != -1 &&
		    access(path, R_OK) == 0) {
			check_ok("PAM service", path);
			return;
		}
	}
	snprintf(msg, sizeof(msg), "no PAM service file /etc/pam.d/%s (PAM would fall back "
		 "to /etc/pam.d/other, whatever that allows)", cfg->pam_service);
	snprintf(fix, sizeof(fix), "install -m 644 pam.d/%s /etc/pam.d/%s  (or `make install`)",
		 cfg->pam_service, cfg->pam_service);
	check_fail(msg, fix);
}

static void check_unpriv(const struct config *cfg)
{
	struct passwd *pw = getpwnam(cfg->unpriv_user);
	char msg[300], fix[300];

	if (pw == NULL) {
		snprintf(msg, sizeof(msg), "unprivileged user %s does not exist", cfg->unpriv_user);
		snprintf(fix, sizeof(fix), "useradd --system --no-create-home --home-dir "
			 "/nonexistent --shell /usr/sbin/nologin %s", cfg->unpriv_user);
		check_fail(msg, fix);
	} else if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(msg, sizeof(msg), "unprivileged user %s has uid or gid 0",
			 cfg->unpriv_user);
		check_fail(msg, "set unpriv_user to a system account of its own");
	} else {
		snprintf(msg, sizeof(msg), "%s (uid %lu)", cfg->unpriv_user,
			 (unsigned long)pw->pw_uid);
		check_ok("unprivileged user", msg);
	}
}

/* The session's account of the spool identities (smtp-submit). */
static void check_spool_user(const struct config *cfg)
{
	struct passwd *pw = cfg->spool_user != NULL ? getpwnam(cfg->spool_user) : NULL;
	char msg[300], fix[300];

	if (pw == NULL || pw->pw_uid == 0) {
		snprintf(msg, sizeof(msg), "spool_user %s %s", cfg->spool_user != NULL ?
			 cfg->spool_user : "(empty)", pw == NULL ? "does not exist" : "is root");
		snprintf(fix, sizeof(fix), "useradd --system --no-create-home --home-dir "
			 "/nonexistent --shell /usr/sbin/nologin %s", cfg->spool_user != NULL ?
			 cfg->spool_user : "postern-spool");
		check_fail(msg, fix);
	} else {
		check_ok("spool user", cfg->spool_user);
	}
}

static void check_state_dir(const struct config *cfg)
{
	struct stat st;
	char msg[300], fix[300];

	if (stat(cfg->state_dir, &st) == -1 && errno == ENOENT) {
		printf("note: state_dir %s does not exist yet: the first connection makes it "
		       "(root, mode 700)\n", cfg->state_dir);
	} else if (stat(cfg->state_dir, &st) == -1) {
		snprintf(msg, sizeof(msg), "state_dir %s: %s", cfg->state_dir, strerror(errno));
		snprintf(fix, sizeof(fix), "install -d -m 700 -o root -g root %s", cfg->state_dir);
		check_fail(msg, fix);
	} else if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0) {
		snprintf(msg, sizeof(msg), "state_dir %s must be a directory owned by root, "
			 "mode 700 (it is %03o, uid %lu)", cfg->state_dir,
			 (unsigned)(st.st_mode & 0777), (unsigned long)st.st_uid);
		snprintf(fix, sizeof(fix), "chown root:root %s && chmod 700 %s", cfg->state_dir,
			 cfg->state_dir);
		check_fail(msg, fix);
	} else {
		check_ok("state_dir", cfg->state_dir);
	}
}

/* A file root reads and obeys: owned by root, writable by nobody else, and so is every
 * directory above it (server_check_root_file).  0 fine, -1 reported. */
static int check_root_file(const char *what, const char *path, bool missing_ok)
{
	char bad[4096], msg[4400], fix[8300];
	const char *err;

	if (server_check_root_file(path, missing_ok, bad, sizeof(bad), &err) == 0)
		return 0;
	snprintf(msg, sizeof(msg), "%s %s is unsafe: %s: %s (connections are refused)", what,
		 path, bad, err);
	snprintf(fix, sizeof(fix), "chown root:root %s && chmod go-w %s", bad, bad);
	check_fail(msg, fix);
	return -1;
}

/* What of the worker's sandbox this host allows (sandbox.c), tried in a throwaway child
 * as a connection would.  A refused feature is a warning, not an error: the worker then
 * runs without it, and every connection logs which (`sandbox: ...`). */
static void check_sandbox(void)
{
	struct sandbox sb;
	char desc[160];

	sandbox_probe(&sb);
	sandbox_describe(&sb, desc, sizeof(desc));
	if (sb.broken) {
		char msg[300];
		snprintf(msg, sizeof(msg), "worker sandbox: %s; the seccomp filter cannot be "
			 "set up, so no worker would run", desc);
		check_fail(msg, "run -t as root; check that libseccomp2 matches the kernel and "
			   "that nothing (a container profile) refuses both seccomp() and "
			   "prctl(PR_SET_SECCOMP)");
		return;
	}
	if (sandbox_complete(&sb)) {
		check_ok("worker sandbox", desc);
		return;
	}
	printf("warning: worker sandbox: %s\n", desc);
	if (geteuid() != 0)
		printf("  note: -t ran as a non-root user, who may not make namespaces; run it as "
		       "root to see what a connection gets\n");
	else
		printf("  the worker runs without what is unavailable.  Namespaces need a kernel "
		       "with CONFIG_PID_NS, CONFIG_NET_NS, CONFIG_IPC_NS and, in a container, "
		       "CAP_SYS_ADMIN and a seccomp profile that allows clone/unshare of "
		       "CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC\n");
}

static void check_wrap(const struct config *cfg)
{
	const char *files[] = { cfg->hosts_allow, cfg->hosts_deny };

	for (size_t i = 0; i < 2; i++) {
		/* spawn and twist run commands as root */
		if (check_root_file("libwrap table", files[i], true) == -1)
			continue;
		if (access(files[i], R_OK) == 0)
			check_ok("libwrap table", files[i]);
		else
			printf("note: %s is missing: libwrap treats it as empty\n", files[i]);
	}
}

/* The log file as the daemon opens it: without blocking (a FIFO would hang), no symlink,
 * a regular file of root's that nobody else can write. */
static void check_log(const struct config *cfg)
{
	char msg[4400];
	struct stat st;

	if (strcmp(cfg->log, "syslog") == 0)
		return;
	int fd = open(cfg->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
				O_NONBLOCK | O_NOCTTY, 0640);
	if (fd == -1) {
		snprintf(msg, sizeof(msg), "log file %s: %s", cfg->log, strerror(errno));
		check_fail(msg, "create its directory, or set log = syslog");
		return;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022) != 0) {
		snprintf(msg, sizeof(msg), "log file %s must be a regular file owned by root "
			 "and writable by root only (lines go to syslog instead)", cfg->log);
		check_fail(msg, "remove it (the daemon creates it), or chown root and chmod "
			   "go-w it");
	}
	close(fd);
}

int check_run(const struct server_proto *p, const char *config_path)
{
	struct config cfg;
	const char *err;
	const char *path = config_path != NULL ? config_path : CONFIG_DEFAULT_PATH;
	char msg[400];

	check_problems = 0;
	if (check_root_file("config", path, config_path == NULL) == -1) {
		config_defaults(&cfg, p->name);
	} else if (config_load(&cfg, config_path, p->name, config_path != NULL, &err) == -1) {
		snprintf(msg, sizeof(msg), "config %s: %s", path, err);
		check_fail(msg, "correct that line; postern.conf.sample lists every key");
	} else {
		check_ok("config", access(path, F_OK) == 0 ? path : "(none: defaults)");
	}
	check_tls(&cfg);
	check_pam(&cfg);
	check_unpriv(&cfg);
	if (p->identity != SERVER_ID_LOGIN_USER)
		check_spool_user(&cfg);
	check_state_dir(&cfg);
	check_wrap(&cfg);
	check_sandbox();
	check_log(&cfg);
	config_free(&cfg);
	if (check_problems > 0)
		printf("%d problem%s found\n", check_problems, check_problems == 1 ? "" : "s");
	else
		printf("%s: configuration OK\n", p->name);
	return check_problems > 0 ? 1 : 0;
}
