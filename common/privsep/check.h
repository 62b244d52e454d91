/* `-t`: check the config, certificate, PAM service file, unprivileged user and state_dir,
 * and say which of the worker's sandbox features the host allows; print each problem
 * with the line that fixes it.  Returns the exit status. */
#ifndef POSTERN_CHECK_H
#define POSTERN_CHECK_H
#include "privsep/server.h"
int check_run(const struct server_proto *p, const char *config_path);
#endif
