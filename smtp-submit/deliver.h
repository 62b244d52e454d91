/* smtp-submit's root side: local delivery from the spool, the queue commands and the
 * daemon's own -t checks.  Root parses nothing here but the spool's envelope files (as
 * hostile input, common/spool/envelope.c) and the aliases file; every write into a
 * mailbox happens in a process running as that mailbox's user (docs/architecture.md,
 * "Local delivery"). */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H
#include <stdbool.h>
#include <stdio.h>
#include "base/config.h"

/* Deliver the local recipients of queued message `id` that are not done yet, exactly
 * once (the spool's inflight mark and delivery token), each into the recipient's store
 * (Maildir or mbox, as ipop3d and imapd find it) by a process running as the recipient.
 * A full disk or a broken mailbox defers that recipient; the message stays queued until
 * every recipient is done (remote ones wait for the queue runner of issue 8).
 * Returns 0 when the message was handled (delivered, deferred, or held by another
 * process), -1 and *error_r when the spool or the message could not be used.  Called as
 * root: right after acceptance (the monitor forks it when the session asks) and by -q. */
int deliver_message(const struct config *cfg, const char *id, const char **error_r);

/* -q: deliver every due message once, then clean tmp/.  Exit status: 0, or 1 if the
 * spool could not be used. */
int queue_run(const struct config *cfg);

/* -bp: list the queue (id, size, arrival, sender; each recipient with its state and
 * last reply) in the style of mailq.  Exit status. */
int queue_list(const struct config *cfg, FILE *out);

/* -t, after the shared checks (privsep/check.c): the spool directory and its owner, the
 * spool user, local_domains and hostname, the aliases file (every target user exists).
 * Prints each problem with its fix; returns the number of problems. */
/* With dns, also the DNS checks of submit_dnscheck.c (the -t command; unit tests leave
 * them out: they would ask the host's resolvers). */
int submit_check(const struct config *cfg, FILE *out, bool dns);

#endif
