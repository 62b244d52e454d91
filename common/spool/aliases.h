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

/* Read the file (a missing file is an empty table), at most ALIASES_MAX_FILE bytes.  -1
 * and *error_r (a static string) on an unreadable, too large or malformed file (*al_r
 * NULL then); aliases_open() also logs the file and line of a malformed entry.  The
 * syntax accepted and what is malformed: the comment at the top of aliases.c. */
int aliases_open(const char *path, struct aliases **al_r, const char **error_r);
/* From memory (tests, fuzz). */
int aliases_parse(const char *text, size_t len, struct aliases **al_r, const char **error_r);
/* The same, with the line (1-based) of the error, 0 when no line is at fault. */
int aliases_parse_line(const char *text, size_t len, struct aliases **al_r, unsigned *line_r,
		       const char **error_r);
void aliases_free(struct aliases **al);
/* Number of distinct alias names. */
size_t aliases_count(const struct aliases *al);

/* Is `domain` (lower-cased, as written in the file) one of ours?  Without a callback
 * every "x@domain" target is remote (skipped). */
typedef bool aliases_local_cb(void *ctx, const char *domain);
void aliases_set_local(struct aliases *al, aliases_local_cb *is_local, void *ctx);

/* Called once per local user a name expands to, deduplicated.  Nonzero stops. */
typedef int aliases_user_cb(void *ctx, const char *user);

/* Expand `name` (a local part, any case).  1: it is an alias, cb got every user it
 * reaches (possibly none); *skipped_r counts targets not delivered here (pipes, files,
 * includes, remote addresses).  0: not an alias (the caller tries it as a user).
 * -1: a loop that reaches no user, an expansion over the limits: *error_r. */
int aliases_expand(const struct aliases *al, const char *name, aliases_user_cb *cb,
		   void *ctx, unsigned *skipped_r, const char **error_r);

#endif
