/* smtp-submit: what the daemon's modules share.
 *
 *   smtp-submit [-c FILE] -m mx|submission|smtps   one connection on fd 0/1
 *   smtp-submit [-c FILE] -q                        run the queue once
 *   smtp-submit [-c FILE] -bp                       list the queue
 *   smtp-submit -t [-c FILE]                        check config, spool, users, domains */
#ifndef POSTERN_SUBMIT_H
#define POSTERN_SUBMIT_H

enum submit_mode {
	SUBMIT_MODE_MX,          /* port 25: mail for local users, no AUTH, no relay */
	SUBMIT_MODE_SUBMISSION,  /* port 587: STARTTLS, then AUTH required */
	SUBMIT_MODE_SMTPS,       /* port 465: implicit TLS (RFC 8314), then AUTH required */
};

/* The mode of this process (-m), defined in main.c. */
extern enum submit_mode submit_mode;

#endif
