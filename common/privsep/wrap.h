/* libwrap (tcp_wrappers): may this peer talk to this daemon? */
#ifndef POSTERN_WRAP_H
#define POSTERN_WRAP_H
#include <stdbool.h>
#include <stddef.h>
#include "base/config.h"

/* daemon: "ipop3d", "imapd", "smtp-submit" — the names hosts.allow rules use.
 * fd: the client socket.  Uses cfg->hosts_allow / hosts_deny.  1: allowed, 0: refused,
 * -1: libwrap is needed (a table has a rule) and cannot be loaded (*error_r says why;
 * the caller refuses: a rule that cannot be applied must not let everyone in). */
int wrap_check(const struct config *cfg, const char *daemon, int fd, const char **error_r);

/* Could a table with this text hold a rule for libwrap?  false only when every line is
 * blank or a comment exactly as libwrap reads them; anything else (a long line, a NUL,
 * a stray character) is true, and libwrap decides. */
bool wrap_text_has_rules(const char *text, size_t len);

#endif
