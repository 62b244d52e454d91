/* smtp-submit: what the daemon's modules share.
 *
 *   smtp-submit [-c FILE] -m mx|submission|smtps   one connection on fd 0/1
 *   smtp-submit [-c FILE] -q                        run the queue once
 *   smtp-submit [-c FILE] -bp                       list the queue
 *   smtp-submit -t [-c FILE]                        check config, spool, users, domains */
#ifndef POSTERN_SUBMIT_H
#define POSTERN_SUBMIT_H
#include <stddef.h>
#include "base/config.h"

enum submit_mode {
	SUBMIT_MODE_MX,          /* port 25: mail for local users, no AUTH, no relay */
	SUBMIT_MODE_SUBMISSION,  /* port 587: STARTTLS, then AUTH required */
	SUBMIT_MODE_SMTPS,       /* port 465: implicit TLS (RFC 8314), then AUTH required */
};

/* The mode of this process (-m), defined in main.c and set there before anything runs;
 * weak defaults in submit.c and smtp_session.c serve the unit tests and fuzz targets
 * (which link no main.o), and a test may define its own. */
extern enum submit_mode submit_mode;

/* Our name in the greeting, the EHLO reply and Received: fields: the hostname key, else
 * the host's FQDN (gethostname(), then its canonical name from the resolver), else the
 * host name alone.  Computed once per process and kept: main() asks before the worker
 * enters its sandbox (which can read neither /etc/hosts nor DNS), so every process of
 * the connection forked afterwards has it. */
const char *submit_hostname(const struct config *cfg);

#endif
