/* smtp-submit: what the daemon's modules share.
 *
 *   smtp-submit [-c FILE] -m mx|submission|smtps   one connection on fd 0/1
 *   smtp-submit [-c FILE] -q                        run the queue once
 *   smtp-submit [-c FILE] -bp                       list the queue
 *   smtp-submit -t [-c FILE]                        check config, spool, users, domains */
#ifndef POSTERN_SUBMIT_H
#define POSTERN_SUBMIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "base/config.h"
#include "dns/answer.h"

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

/* The next word of a list separated by blanks or commas into buf (cut to size); false at
 * the end (submit_check.c). */
bool submit_next_word(const char **p, char *buf, size_t size);
/* -t's DNS checks (submit_dnscheck.c): the host's A/AAAA and PTR, then per local domain
 * its MX, SPF, DKIM records and DMARC; each gap printed with the record to add.  The
 * number of problems. */
int submit_check_dns(const struct config *cfg, FILE *out);
/* Is name under a special-use TLD (RFC 6761, RFC 2606: test, example, invalid,
 * localhost; and local, RFC 6762)? */
bool submit_dns_special(const char *name);
/* Does the TXT record rec[0..len) as SPF (RFC 7208) let address a send?  A bounded look
 * at the common terms: ip4:, ip6: (CIDR), a and mx (the caller says whether the domain's
 * own addresses or its MX are this host), all, with their qualifiers; include:,
 * redirect=, exists:, ptr, a:NAME and mx:NAME are not followed (SPF_UNKNOWN if nothing
 * before them decides). */
enum spf_verdict { SPF_NOT_SPF, SPF_ALLOWS, SPF_REFUSES, SPF_UNKNOWN };
enum spf_verdict submit_spf_check(const char *rec, size_t len, const struct dns_addr *a,
				  bool mx_is_us, bool a_is_us);

#endif
