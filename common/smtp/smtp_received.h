/* The Received: trace header (RFC 5321 section 4.4) an SMTP server prepends to each
 * message it accepts, and the count of Received: fields for loop detection (RFC 5321
 * section 6.3).  No I/O.
 *
 *	Received: from client.example (rdns.example [IPv6:2001:db8::7])
 *		by mail.example with ESMTPSA
 *		(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384) id 4F2A1C;
 *		Fri, 27 Nov 2026 20:43:57 +0000
 *
 * The WITH protocol names are RFC 3848's (SMTP, ESMTP, ESMTPA, ESMTPS, ESMTPSA) and RFC
 * 6531 section 3.7.3's (UTF8SMTP, UTF8SMTPA, UTF8SMTPS, UTF8SMTPSA).  Lines are folded
 * before column 78 between clauses (RFC 5322 section 2.1.1), and never exceed 998.
 * Client-supplied text (HELO, recipient) can never break the field: a HELO that is not
 * a domain or address literal goes into a comment with "(", ")", "\", spaces and
 * control bytes replaced by "?"; a recipient with a control byte is left out. */
#ifndef POSTERN_SMTP_RECEIVED_H
#define POSTERN_SMTP_RECEIVED_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct header_parser;

struct smtp_received {
	const char *helo;          /* the HELO/EHLO argument, or NULL (none given) */
	bool helo_valid;           /* smtp_cmd's helo_valid: a domain or address literal */
	const char *rdns;          /* the client's verified reverse DNS name, or NULL */
	const char *addr;          /* the client's IP address, "192.0.2.7" or "2001:db8::7" */
	const char *by;            /* our host name */
	bool esmtp;                /* EHLO (not HELO) */
	bool auth;                 /* AUTH succeeded */
	bool utf8;                 /* the transaction had SMTPUTF8 */
	const char *tls_version;   /* "TLSv1.3", or NULL without TLS */
	const char *tls_cipher;    /* "TLS_AES_256_GCM_SHA384", or NULL */
	const char *queue_id;      /* letters and digits */
	const char *rcpt;          /* the recipient (path without "<>") when there is exactly
	                            * one, or NULL */
	time_t time;
	int tz_min;                /* the date's zone, minutes east of UTC */
};

/* Write the whole field, "Received: ..." through its final CRLF, to buf[0..size).
 * Returns 0 with *len_r (a NUL follows when there is room), or -1: buf too small,
 * or by, addr or queue_id invalid (the caller's bug). */
int smtp_received_format(const struct smtp_received *r, char *buf, size_t size,
			 size_t *len_r);

/* Counting Received: fields in a message's header, fed in chunks as DATA or BDAT
 * brings them (common/mail/header.c parses; this counts by name). */
struct smtp_received_counter {
	struct header_parser *hp;
	unsigned count;
};
void smtp_received_counter_init(struct smtp_received_counter *c);
/* Feed bytes of the message; returns the bytes that belonged to the header (fewer than
 * len once the header ended: the rest is body and need not be fed). */
size_t smtp_received_counter_feed(struct smtp_received_counter *c, const char *data,
				  size_t len);
/* The input ended (or the caller stops): the final count; frees the parser. */
unsigned smtp_received_counter_finish(struct smtp_received_counter *c);
/* The count for a whole header block (or message) at once. */
unsigned smtp_received_count(const char *data, size_t len);

#endif
