/* Dropping privileges, and checking that they stay dropped. */
#ifndef POSTERN_PRIV_H
#define POSTERN_PRIV_H
#include <pwd.h>

/* The worker: chroot to <state_dir>/empty, then the unprivileged user with no
 * supplementary groups and no way back (PR_SET_NO_NEW_PRIVS).  0 or -1. */
int priv_drop_unpriv(const struct passwd *pw, const char *state_dir, const char **error_r);
/* The session: initgroups, setgid, setuid to the mail user; chdir home; umask 077.
 * Verifies that setuid(0) now fails.  0 or -1. */
int priv_drop_user(const struct passwd *pw, const char **error_r);
/* Make state_dir (0700) and state_dir/empty (0755, empty) if missing and check that both
 * belong to root and nobody else can write them.  0 or -1. */
int priv_make_empty_dir(const char *state_dir, const char **error_r);

#endif
