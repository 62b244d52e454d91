/* libwrap (tcp_wrappers): may this peer talk to this daemon? */
#ifndef POSTERN_WRAP_H
#define POSTERN_WRAP_H
#include <stdbool.h>
#include "base/config.h"

/* daemon: "ipop3d", "imapd", "smtp-submit" — the names hosts.allow rules use.
 * fd: the client socket.  Uses cfg->hosts_allow / hosts_deny.  true: allowed. */
bool wrap_allowed(const struct config *cfg, const char *daemon, int fd);

#endif
