/* aliases(5): /etc/aliases, read by the SMTP session (does a recipient exist? may this
 * user send as this address?) and by local delivery (root, before it forks the
 * recipients' delivery processes).  The file is root's, but it is parsed as hostile all
 * the same: bounded line length, entry count, expansion depth and size.
 *
 * Supported: "name: target, target, ..." with continuation lines (leading white space),
 * comments, quoted names, case-insensitive names, targets that are local user names or
 * other aliases (recursively, loops broken, each user given once), "name@<local domain>"
 * targets (the caller decides what is local).  Not delivered, only reported as skipped:
 * "|command", "/file", ":include:" and remote addresses (delivery to other domains is
 * the queue runner's, issue 8). */
#ifndef POSTERN_ALIASES_H
#define POSTERN_ALIASES_H
#include <stdbool.h>
#include <stddef.h>

struct aliases;

/* Read the file (a missing file is an empty table).  -1 and *error_r (owned by a static
 * string or the table: valid until aliases_free) on an unreadable or malformed file. */
int aliases_open(const char *path, struct aliases **al_r, const char **error_r);
/* From memory (tests, fuzz). */
int aliases_parse(const char *text, size_t len, struct aliases **al_r, const char **error_r);
void aliases_free(struct aliases **al);

/* Called once per local user a name expands to, deduplicated.  Nonzero stops. */
typedef int aliases_user_cb(void *ctx, const char *user);

/* Expand `name` (a local part, any case).  1: it is an alias, cb got every user it
 * reaches (possibly none); *skipped_r counts targets not delivered here (pipes, files,
 * includes, remote addresses).  0: not an alias (the caller tries it as a user).
 * -1: a loop that reaches no user, an expansion over the limits: *error_r. */
int aliases_expand(const struct aliases *al, const char *name, aliases_user_cb *cb,
		   void *ctx, unsigned *skipped_r, const char **error_r);

#endif
