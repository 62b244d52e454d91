/* Privilege changes.  Runs as root until the drop it performs. */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "privsep/priv.h"
#include "base/util.h"

static int priv_verify(uid_t uid, gid_t gid, const char **error_r)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		*error_r = "setuid(0) still works after dropping privileges";
		return -1;
	}
	if (getresuid(&r, &e, &s) == -1 || r != uid || e != uid || s != uid ||
	    getresgid(&rg, &eg, &sg) == -1 || rg != gid || eg != gid || sg != gid) {
		*error_r = "uid or gid did not change";
		return -1;
	}
	return 0;
}

int priv_drop_unpriv(const struct passwd *pw, const char *state_dir, const char **error_r)
{
	char empty[4096];

	if (util_snprintf(empty, sizeof(empty), "%s/empty", state_dir) == -1) {
		*error_r = "state_dir too long";
		return -1;
	}
	if (chroot(empty) == -1 || chdir("/") == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	return priv_verify(pw->pw_uid, pw->pw_gid, error_r);
}

int priv_drop_user(const struct passwd *pw, const char **error_r)
{
	if (initgroups(pw->pw_name, pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	if (priv_verify(pw->pw_uid, pw->pw_gid, error_r) == -1)
		return -1;
	if (chdir(pw->pw_dir) == -1 && chdir("/") == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	umask(077);
	return 0;
}

static int priv_check_dir(const char *path, mode_t mode, const char **error_r)
{
	struct stat st;

	if (mkdir(path, mode) == -1 && errno != EEXIST) {
		*error_r = strerror(errno);
		return -1;
	}
	if (lstat(path, &st) == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0) {
		*error_r = "must be a directory owned by root, writable by root only";
		return -1;
	}
	return 0;
}

int priv_make_empty_dir(const char *state_dir, const char **error_r)
{
	char empty[4096];

	if (util_snprintf(empty, sizeof(empty), "%s/empty", state_dir) == -1) {
		*error_r = "state_dir too long";
		return -1;
	}
	if (priv_check_dir(state_dir, 0700, error_r) == -1 ||
	    priv_check_dir(empty, 0755, error_r) == -1)
		return -1;
	return 0;
}
