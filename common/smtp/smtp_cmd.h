/* The SMTP server's command parser (RFC 5321 section 4.1 with the ESMTP parameters of
 * SIZE RFC 1870, 8BITMIME RFC 6152, BINARYMIME/CHUNKING RFC 3030, SMTPUTF8 RFC 6531,
 * DSN RFC 3461 and AUTH RFC 4954).  One line in (without its CRLF), a parsed command or
 * a reply out: code, enhanced status code (RFC 3463) and text, for the caller to send
 * with smtp_reply_format().  No I/O, no state: what the session knows (which extensions
 * it offered, whether the transaction is SMTPUTF8) comes in as flags; whether a command
 * is allowed now (sequence, STARTTLS and AUTH offered, BDAT vs DATA) is the session's.
 *
 * Strict where it matters for security and interoperability:
 * - the verb is one token of letters followed by exactly one SP (or the end);
 * - "FROM:" and "TO:" are required with their colon, and the path with its angle
 *   brackets, parsed by address_path_parse() (common/mail/address_path.c): no comments,
 *   no spaces inside, the RFC 5321 section 4.5.3.1 limits; source routes, "%", "!",
 *   quoted "@" and address literals are reported in path.flags for the policy, never
 *   rewritten; "<>" only for MAIL, "<Postmaster>" only for RCPT;
 * - each line limit of plimits.h (SMTP_MAX_CMD_LINE; MAIL, RCPT and AUTH longer, as
 *   their RFCs allow);
 * - NUL, CR, LF and other control bytes refuse the line (500 5.5.2);
 * - ESMTP keywords and values have the RFC 5321 section 4.1.2 syntax; a parameter of an
 *   extension not offered, or unknown, is 555 5.5.4 (RFC 5321 section 4.1.1.11); a
 *   repeated one or a bad value 501 5.5.4 (RFC 3461 section 4.5);
 * - UTF-8 in a path or value only with SMTPUTF8 (MAIL 550, RCPT 553, 5.6.7: RFC 6531
 *   section 3.5).
 * Tolerated, because common clients do it and it changes no meaning:
 * - one SP after "FROM:"/"TO:" ("MAIL FROM: <a@b>": Outlook, older Exchange, some
 *   scanners' test scripts; Postfix and Exim accept it too);
 * - more than one SP between ESMTP parameters, and trailing SP or HTAB at the end of
 *   the line (hand-typed sessions, a few appliances);
 * - the verb, "FROM:", "TO:", parameter keywords and the keyword values of BODY, RET,
 *   NOTIFY and BDAT's LAST in any case (RFC 5321 section 2.4 and each extension say
 *   so);
 * - a HELO/EHLO argument that is not a valid domain or address literal (bare host
 *   names with "_", "localhost.localdomain" typos...): accepted as one printable token
 *   and flagged helo_valid = false, so the Received: header puts it in a comment. */
#ifndef POSTERN_SMTP_CMD_H
#define POSTERN_SMTP_CMD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"
#include "mail/address.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

/* flags for smtp_cmd_parse(): the extensions this session offered in its EHLO reply
 * (their parameters are refused otherwise), and the transaction's state */
#define SMTP_EXT_SIZE        0x001 /* SIZE= (RFC 1870) */
#define SMTP_EXT_8BITMIME    0x002 /* BODY=7BIT|8BITMIME (RFC 6152) */
#define SMTP_EXT_BINARYMIME  0x004 /* BODY=BINARYMIME (RFC 3030) */
#define SMTP_EXT_SMTPUTF8    0x008 /* SMTPUTF8 (RFC 6531) */
#define SMTP_EXT_DSN         0x010 /* RET= ENVID= NOTIFY= ORCPT= (RFC 3461) */
#define SMTP_EXT_AUTH        0x020 /* AUTH= on MAIL (RFC 4954 section 5) */
#define SMTP_CMD_TXN_UTF8    0x100 /* the transaction's MAIL had SMTPUTF8: RCPT paths
                                    * and ORCPT values may hold UTF-8 */

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

/* NOTIFY= bits (RFC 3461 section 4.1); 0: not given */
#define SMTP_NOTIFY_NEVER   0x1
#define SMTP_NOTIFY_SUCCESS 0x2
#define SMTP_NOTIFY_FAILURE 0x4
#define SMTP_NOTIFY_DELAY   0x8

/* ORCPT address types we decode (RFC 3461 section 4.2, RFC 6533 section 3) */
enum smtp_orcpt_type { SMTP_ORCPT_NONE, SMTP_ORCPT_RFC822, SMTP_ORCPT_UTF8, SMTP_ORCPT_OTHER };
#define SMTP_MAX_ORCPT_TYPE 32

struct smtp_cmd {
	enum smtp_verb verb;
	/* EHLO/HELO: the domain; VRFY/EXPN/NOOP/HELP: the string (NOOP/HELP: may be
	 * empty); AUTH: the mechanism.  Points into the line, not NUL-terminated. */
	const char *arg;
	size_t arg_len;
	bool helo_valid;          /* EHLO/HELO: arg is a domain or address literal */
	/* AUTH: the initial response as sent ("=" for an empty one), or NULL */
	const char *auth_ir;
	size_t auth_ir_len;
	/* BDAT */
	uint64_t bdat_size;
	bool bdat_last;
	/* MAIL and RCPT */
	struct address_path path;
	/* MAIL */
	bool size_given;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	bool envid_given;
	char envid[SMTP_MAX_ENVID + 1];        /* xtext decoded: printable US-ASCII */
	bool auth_given;
	char auth[SMTP_MAX_AUTH_PARAM + 1];    /* xtext decoded: a mailbox or "<>" */
	/* RCPT */
	unsigned notify;
	enum smtp_orcpt_type orcpt_type;
	char orcpt_type_name[SMTP_MAX_ORCPT_TYPE + 1]; /* as sent */
	char orcpt[SMTP_MAX_ORCPT + 1];        /* decoded: US-ASCII, or UTF-8 for utf-8 */
};

/* What to answer when the line is refused: code, RFC 3463 status, fixed text. */
struct smtp_cmd_error {
	unsigned code;
	const char *enh;
	const char *text;
	const char *detail;       /* for the log: address_path_parse()'s reason, or NULL */
};

/* Parse line[0..len) (the command without its CRLF).  Returns 0 with *cmd_r filled, or
 * -1 with *err_r (cmd_r->verb is still set when the verb was known, so the session can
 * count and log it). */
int smtp_cmd_parse(const char *line, size_t len, unsigned flags, struct smtp_cmd *cmd_r,
		   struct smtp_cmd_error *err_r);

/* "MAIL", "RCPT", ... ("UNKNOWN"): for logging. */
const char *smtp_cmd_verb_name(enum smtp_verb verb);

#endif
