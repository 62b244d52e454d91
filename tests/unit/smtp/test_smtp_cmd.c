/* smtp_cmd.c, the SMTP server's command parser: a table of valid lines with what they
 * parse to, a table of invalid lines with the reply each must get (code and RFC 3463
 * status), every line limit at max and max+1, the relay-trick paths reported in the
 * path flags, and xtext / RFC 6533 decoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_reply.h"
#include "smtp/smtp_xtext.h"
#include "unit.h"

#define ALL (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME | SMTP_EXT_SMTPUTF8 | \
	     SMTP_EXT_DSN | SMTP_EXT_AUTH)

struct ok_case {
	const char *line;
	unsigned flags;
	enum smtp_verb verb;
	const char *arg;          /* NULL: not checked */
	const char *local, *domain;
	unsigned pflags;          /* path flags that must be set */
	uint64_t num;             /* SIZE or BDAT size */
	int body, ret;
	bool utf8, last;
	const char *envid, *auth, *orcpt, *ir;
	unsigned notify;
	bool helo_valid;
};

static const struct ok_case ok_cases[] = {
	{ .line = "EHLO client.example",
	  .flags = 0, .verb = SMTP_VERB_EHLO, .arg = "client.example", .helo_valid = true },
	{ .line = "ehlo client.example",
	  .flags = 0, .verb = SMTP_VERB_EHLO, .arg = "client.example", .helo_valid = true },
	{ .line = "HELO [192.0.2.7]",
	  .flags = 0, .verb = SMTP_VERB_HELO, .arg = "[192.0.2.7]", .helo_valid = true },
	{ .line = "EHLO [IPv6:2001:db8::7]",
	  .flags = 0, .verb = SMTP_VERB_EHLO, .arg = "[IPv6:2001:db8::7]", .helo_valid = true },
	/* tolerated: not a domain, flagged */
	{ .line = "EHLO my_host",
	  .flags = 0, .verb = SMTP_VERB_EHLO, .arg = "my_host", .helo_valid = false },
	{ .line = "EHLO bad..name",
	  .flags = 0, .verb = SMTP_VERB_EHLO, .arg = "bad..name", .helo_valid = false },
	{ .line = "EHLO (x);",
	  .flags = 0, .verb = SMTP_VERB_EHLO, .arg = "(x);", .helo_valid = false },
	/* tolerated: trailing white space */
	{ .line = "EHLO client.example  \t",
	  .flags = 0, .verb = SMTP_VERB_EHLO, .arg = "client.example", .helo_valid = true },
	{ .line = "MAIL FROM:<ned@example.org>",
	  .flags = 0, .verb = SMTP_VERB_MAIL, .arg = NULL, .local = "ned",
	  .domain = "example.org" },
	{ .line = "mail from:<ned@example.org>",
	  .flags = 0, .verb = SMTP_VERB_MAIL, .arg = NULL, .local = "ned",
	  .domain = "example.org" },
	{ .line = "MAIL FROM:<>",
	  .flags = 0, .verb = SMTP_VERB_MAIL, .arg = NULL, .local = "", .domain = "",
	  .pflags = ADDRESS_PATH_F_NULL },
	/* tolerated: one SP after the colon */
	{ .line = "MAIL FROM: <ned@example.org>",
	  .flags = 0, .verb = SMTP_VERB_MAIL, .arg = NULL, .local = "ned",
	  .domain = "example.org" },
	{ .line = "MAIL FROM:<ned@example.org> SIZE=1048576",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL, .local = "ned",
	  .domain = "example.org", .num = 1048576 },
	{ .line = "MAIL FROM:<ned@example.org> SIZE=18446744073709551615",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL,
	  .local = "ned", .domain = "example.org", .num = UINT64_MAX },
	{ .line = "MAIL FROM:<ned@example.org> BODY=8BITMIME",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL, .local = "ned",
	  .domain = "example.org", .body = SMTP_BODY_8BITMIME },
	{ .line = "MAIL FROM:<ned@example.org> body=7bit",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL, .local = "ned",
	  .domain = "example.org", .body = SMTP_BODY_7BIT },
	{ .line = "MAIL FROM:<ned@example.org> BODY=BINARYMIME",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL, .local = "ned",
	  .domain = "example.org", .body = SMTP_BODY_BINARYMIME },
	{ .line = "MAIL FROM:<ned@example.org> RET=hdrs ENVID=QQ314159",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL,
	  .local = "ned", .domain = "example.org", .ret = SMTP_RET_HDRS, .envid = "QQ314159" },
	{ .line = "MAIL FROM:<ned@example.org> RET=FULL ENVID=a+2Bb+20c",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL,
	  .local = "ned", .domain = "example.org", .ret = SMTP_RET_FULL, .envid = "a+b c" },
	{ .line = "MAIL FROM:<ned@example.org> AUTH=<>",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL, .local = "ned",
	  .domain = "example.org", .auth = "<>" },
	{ .line = "MAIL FROM:<ned@example.org> AUTH=e+3Dmc2@example.com",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL,
	  .local = "ned", .domain = "example.org", .auth = "e=mc2@example.com" },
	/* tolerated: several spaces between parameters */
	{ .line = "MAIL FROM:<ned@example.org>  SIZE=10   BODY=8BITMIME",
	  .flags = ALL, .verb = SMTP_VERB_MAIL, .arg = NULL,
	  .local = "ned", .domain = "example.org", .num = 10, .body = SMTP_BODY_8BITMIME },
	{ .line = "MAIL FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example> SMTPUTF8",
	  .flags = ALL, .verb = SMTP_VERB_MAIL,
	  .arg = NULL, .local = "j\xc3\xb6rg", .domain = "b\xc3\xbc" "cher.example", .pflags = ADDRESS_PATH_F_UTF8, .utf8 = true },
	/* relay tricks parse, and are reported for the policy */
	{ .line = "RCPT TO:<a%b@example.org>",
	  .flags = 0, .verb = SMTP_VERB_RCPT, .arg = NULL, .local = "a%b", .domain = "example.org",
	  .pflags = ADDRESS_PATH_F_PERCENT },
	{ .line = "RCPT TO:<b!a@example.org>",
	  .flags = 0, .verb = SMTP_VERB_RCPT, .arg = NULL, .local = "b!a", .domain = "example.org",
	  .pflags = ADDRESS_PATH_F_BANG },
	{ .line = "RCPT TO:<\"a@b\"@example.org>",
	  .flags = 0, .verb = SMTP_VERB_RCPT, .arg = NULL, .local = "\"a@b\"",
	  .domain = "example.org",
	  .pflags = ADDRESS_PATH_F_QUOTED | ADDRESS_PATH_F_LOCAL_AT },
	{ .line = "RCPT TO:<@relay.example:a@b.example>",
	  .flags = 0, .verb = SMTP_VERB_RCPT, .arg = NULL, .local = "a", .domain = "b.example",
	  .pflags = ADDRESS_PATH_F_ROUTE },
	{ .line = "RCPT TO:<a@[192.0.2.1]>",
	  .flags = 0, .verb = SMTP_VERB_RCPT, .arg = NULL, .local = "a", .domain = "[192.0.2.1]",
	  .pflags = ADDRESS_PATH_F_LITERAL_V4 },
	{ .line = "RCPT TO:<Postmaster>",
	  .flags = 0, .verb = SMTP_VERB_RCPT, .arg = NULL, .local = "Postmaster", .domain = "",
	  .pflags = ADDRESS_PATH_F_POSTMASTER },
	{ .line = "RCPT TO: <ned@example.org>",
	  .flags = 0, .verb = SMTP_VERB_RCPT, .arg = NULL, .local = "ned",
	  .domain = "example.org" },
	{ .line = "RCPT TO:<ned@example.org> NOTIFY=NEVER",
	  .flags = ALL, .verb = SMTP_VERB_RCPT, .arg = NULL, .local = "ned",
	  .domain = "example.org", .notify = SMTP_NOTIFY_NEVER },
	{ .line = "RCPT TO:<ned@example.org> NOTIFY=success,FAILURE,Delay",
	  .flags = ALL, .verb = SMTP_VERB_RCPT, .arg = NULL,
	  .local = "ned", .domain = "example.org",
	  .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY },
	{ .line = "RCPT TO:<ned@example.org> ORCPT=rfc822;ned+40example.org",
	  .flags = ALL, .verb = SMTP_VERB_RCPT,
	  .arg = NULL, .local = "ned", .domain = "example.org", .orcpt = "ned@example.org" },
	{ .line = "RCPT TO:<ned@example.org> ORCPT=utf-8;j\\x{F6}rg@example.org",
	  .flags = ALL, .verb = SMTP_VERB_RCPT,
	  .arg = NULL, .local = "ned", .domain = "example.org", .orcpt = "j\xc3\xb6rg@example.org" },
	{ .line = "RCPT TO:<ned@example.org> ORCPT=utf-8;j\xc3\xb6rg@example.org",
	  .flags = ALL | SMTP_CMD_TXN_UTF8, .verb = SMTP_VERB_RCPT, .arg = NULL, .local = "ned", .domain = "example.org",
	  .orcpt = "j\xc3\xb6rg@example.org" },
	{ .line = "RCPT TO:<ned@example.org> ORCPT=utf-8;a\\x{20}b\\x{1F600}",
	  .flags = ALL, .verb = SMTP_VERB_RCPT,
	  .arg = NULL, .local = "ned", .domain = "example.org", .orcpt = "a b\xf0\x9f\x98\x80" },
	{ .line = "RCPT TO:<j\xc3\xb6rg@example.org>",
	  .flags = SMTP_CMD_TXN_UTF8, .verb = SMTP_VERB_RCPT, .arg = NULL,
	  .local = "j\xc3\xb6rg", .domain = "example.org", .pflags = ADDRESS_PATH_F_UTF8 },
	{ .line = "DATA", .flags = 0, .verb = SMTP_VERB_DATA },
	{ .line = "data", .flags = 0, .verb = SMTP_VERB_DATA },
	{ .line = "RSET", .flags = 0, .verb = SMTP_VERB_RSET },
	{ .line = "QUIT", .flags = 0, .verb = SMTP_VERB_QUIT },
	{ .line = "STARTTLS", .flags = 0, .verb = SMTP_VERB_STARTTLS },
	{ .line = "NOOP", .flags = 0, .verb = SMTP_VERB_NOOP, .arg = "" },
	{ .line = "NOOP anything at all",
	  .flags = 0, .verb = SMTP_VERB_NOOP, .arg = "anything at all" },
	{ .line = "HELP", .flags = 0, .verb = SMTP_VERB_HELP, .arg = "" },
	{ .line = "HELP MAIL", .flags = 0, .verb = SMTP_VERB_HELP, .arg = "MAIL" },
	{ .line = "VRFY ned", .flags = 0, .verb = SMTP_VERB_VRFY, .arg = "ned" },
	{ .line = "EXPN staff list", .flags = 0, .verb = SMTP_VERB_EXPN, .arg = "staff list" },
	{ .line = "BDAT 0 LAST", .flags = 0, .verb = SMTP_VERB_BDAT, .num = 0, .last = true },
	{ .line = "BDAT 86 last", .flags = 0, .verb = SMTP_VERB_BDAT, .num = 86, .last = true },
	{ .line = "BDAT 1000000",
	  .flags = 0, .verb = SMTP_VERB_BDAT, .num = 1000000, .last = false },
	{ .line = "AUTH PLAIN", .flags = 0, .verb = SMTP_VERB_AUTH, .arg = "PLAIN" },
	{ .line = "AUTH PLAIN AG5lZABzZWNyZXQ=",
	  .flags = 0, .verb = SMTP_VERB_AUTH, .arg = "PLAIN", .ir = "AG5lZABzZWNyZXQ=" },
	{ .line = "AUTH login =", .flags = 0, .verb = SMTP_VERB_AUTH, .arg = "login", .ir = "=" },
	/* tolerated: the trailing SP is cut, leaving no initial response */
	{ .line = "AUTH PLAIN ", .flags = 0, .verb = SMTP_VERB_AUTH, .arg = "PLAIN" },
	{ .line = "AUTH SCRAM-SHA-256",
	  .flags = 0, .verb = SMTP_VERB_AUTH, .arg = "SCRAM-SHA-256" },
};

struct bad_case {
	const char *line;
	unsigned flags;
	unsigned code;
	const char *enh;
	enum smtp_verb verb;
};

static const struct bad_case bad_cases[] = {
	{ .line = "", .flags = 0, .code = 500, .enh = "5.5.2", .verb = SMTP_VERB_UNKNOWN },
	{ .line = "FOO", .flags = 0, .code = 500, .enh = "5.5.2", .verb = SMTP_VERB_UNKNOWN },
	{ .line = "MAILX FROM:<a@b>",
	  .flags = 0, .code = 500, .enh = "5.5.2", .verb = SMTP_VERB_UNKNOWN },
	{ .line = "MAIL:FROM:<a@b>",
	  .flags = 0, .code = 500, .enh = "5.5.2", .verb = SMTP_VERB_MAIL },
	{ .line = " MAIL FROM:<a@b>",
	  .flags = 0, .code = 500, .enh = "5.5.2", .verb = SMTP_VERB_UNKNOWN },
	{ .line = "MAIL\tFROM:<a@b>",
	  .flags = 0, .code = 500, .enh = "5.5.2", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL  FROM:<a@b>",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "DATA\r", .flags = 0, .code = 500, .enh = "5.5.2", .verb = SMTP_VERB_DATA },
	{ .line = "RSET\x01", .flags = 0, .code = 500, .enh = "5.5.2", .verb = SMTP_VERB_RSET },
	{ .line = "EHLO", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_EHLO },
	{ .line = "EHLO two words",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_EHLO },
	{ .line = "HELO h\xc3\xa9",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_HELO },
	{ .line = "MAIL", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM <a@b.example>",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM :<a@b.example>",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL TO:<a@b.example>",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:a@b.example",
	  .flags = 0, .code = 501, .enh = "5.1.7", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example",
	  .flags = 0, .code = 501, .enh = "5.1.7", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:  <a@b.example>",
	  .flags = 0, .code = 501, .enh = "5.1.7", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example>x",
	  .flags = 0, .code = 501, .enh = "5.1.7", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a @b.example>",
	  .flags = 0, .code = 501, .enh = "5.1.7", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:Ned <a@b.example>",
	  .flags = 0, .code = 501, .enh = "5.1.7", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> (comment)",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<Postmaster>",
	  .flags = 0, .code = 501, .enh = "5.1.7", .verb = SMTP_VERB_MAIL },
	{ .line = "RCPT TO:<>", .flags = 0, .code = 501, .enh = "5.1.3", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:a@b.example",
	  .flags = 0, .code = 501, .enh = "5.1.3", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example",
	  .flags = 0, .code = 501, .enh = "5.1.3", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b..example>",
	  .flags = 0, .code = 501, .enh = "5.1.3", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT FROM:<a@b.example>",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	/* parameters of extensions not offered, or unknown: 555 */
	{ .line = "MAIL FROM:<a@b.example> SIZE=10",
	  .flags = 0, .code = 555, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> BODY=8BITMIME",
	  .flags = 0, .code = 555, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> BODY=BINARYMIME",
	  .flags = SMTP_EXT_8BITMIME, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SMTPUTF8",
	  .flags = 0, .code = 555, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> RET=FULL",
	  .flags = 0, .code = 555, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> AUTH=<>",
	  .flags = 0, .code = 555, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> XFOO=1",
	  .flags = ALL, .code = 555, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> NOTIFY=NEVER",
	  .flags = ALL, .code = 555, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "RCPT TO:<a@b.example> SIZE=10",
	  .flags = ALL, .code = 555, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=NEVER",
	  .flags = 0, .code = 555, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	/* bad values, repeats: 501 5.5.4 */
	{ .line = "MAIL FROM:<a@b.example> SIZE=",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SIZE",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SIZE=-1",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SIZE=1x",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SIZE=18446744073709551616",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SIZE=000000000000000000001",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SIZE=1 SIZE=2",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> BODY=9BIT",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> BODY=7BIT BODY=8BITMIME",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SMTPUTF8=yes",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SMTPUTF8 SMTPUTF8",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> RET=ALL",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> RET=FULL RET=HDRS",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> ENVID=a ENVID=b",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> ENVID=a+2b",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> ENVID=a+2",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> ENVID=a+00b",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> ENVID=a+0Ab",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> ENVID=a+C3+A9",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> ENVID==",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> AUTH=a+0D+0Ab",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> =1",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> -SIZE=1",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SI_ZE=1",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<a@b.example> SIZE=1\xc3\xa9",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_MAIL },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=NEVER,SUCCESS",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=SUCCESS,NEVER",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=SUCCESS,SUCCESS",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=SUCCESS,",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=,SUCCESS",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=ALWAYS",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> NOTIFY=NEVER NOTIFY=NEVER",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=a@b.example",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=rfc822;",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=;a@b.example",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=rfc822;a+0Ab",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=rf\"c;a",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=rfc822;a ORCPT=rfc822;b",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=utf-8;a\\x{41}",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=utf-8;a\\x{0F6}",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=utf-8;a\\x{f6}",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=utf-8;a\\x{D800}",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=utf-8;a\\x{110000}",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=utf-8;a\\x{F6",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=utf-8;a+b",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=utf-8;j\xc3\xb6rg",
	  .flags = ALL, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RCPT },
	{ .line = "RCPT TO:<a@b.example> ORCPT=utf-8;j\xc3(rg",
	  .flags = ALL | SMTP_CMD_TXN_UTF8, .code = 501, .enh = "5.5.4",
	  .verb = SMTP_VERB_RCPT },
	/* UTF-8 addresses without SMTPUTF8 */
	{ .line = "MAIL FROM:<j\xc3\xb6rg@example.org>",
	  .flags = ALL, .code = 550, .enh = "5.6.7", .verb = SMTP_VERB_MAIL },
	{ .line = "MAIL FROM:<j\xc3\xb6rg@example.org>",
	  .flags = 0, .code = 550, .enh = "5.6.7", .verb = SMTP_VERB_MAIL },
	{ .line = "RCPT TO:<j\xc3\xb6rg@example.org>",
	  .flags = ALL, .code = 553, .enh = "5.6.7", .verb = SMTP_VERB_RCPT },
	{ .line = "MAIL FROM:<j\xc3(rg@example.org> SMTPUTF8",
	  .flags = ALL, .code = 501, .enh = "5.1.7", .verb = SMTP_VERB_MAIL },
	{ .line = "DATA now", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_DATA },
	{ .line = "QUIT please", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_QUIT },
	{ .line = "STARTTLS x",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_STARTTLS },
	{ .line = "RSET x", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_RSET },
	{ .line = "VRFY", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_VRFY },
	{ .line = "EXPN", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_EXPN },
	{ .line = "BDAT", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_BDAT },
	{ .line = "BDAT x", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_BDAT },
	{ .line = "BDAT -1", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_BDAT },
	{ .line = "BDAT 10 FIRST",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_BDAT },
	{ .line = "BDAT 10 LAST x",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_BDAT },
	{ .line = "BDAT 10  LAST",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_BDAT },
	{ .line = "BDAT 18446744073709551616",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_BDAT },
	{ .line = "AUTH", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_AUTH },
	{ .line = "AUTH PL@IN", .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_AUTH },
	{ .line = "AUTH ABCDEFGHIJKLMNOPQRSTU",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_AUTH },
	{ .line = "AUTH PLAIN a b",
	  .flags = 0, .code = 501, .enh = "5.5.4", .verb = SMTP_VERB_AUTH },
};

/* Parse line as an exact-size heap copy without a NUL after it: under ASan (make SAN=1
 * unit) a read past len is caught. */
static int parse(const char *line, unsigned flags, struct smtp_cmd *c, struct smtp_cmd_error *e)
{
	size_t len = strlen(line);
	static char *copy;

	free(copy); /* the previous line: cmd->arg of the last parse stays valid until now */
	copy = malloc(len > 0 ? len : 1);
	memcpy(copy, line, len);
	return smtp_cmd_parse(copy, len, flags, c, e);
}

static void test_ok(void)
{
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *t = &ok_cases[i];
		struct smtp_cmd c;
		struct smtp_cmd_error e;
		int r = parse(t->line, t->flags, &c, &e);
		if (r != 0)
			fprintf(stderr, "case \"%s\": %u %s %s (%s)\n", t->line, e.code, e.enh,
				e.text, e.detail ? e.detail : "");
		CHECK(r == 0);
		if (r != 0)
			continue;
		CHECK(c.verb == t->verb);
		if (t->arg != NULL)
			CHECK(c.arg_len == strlen(t->arg) && memcmp(c.arg, t->arg, c.arg_len) == 0);
		if (t->verb == SMTP_VERB_EHLO || t->verb == SMTP_VERB_HELO)
			CHECK(c.helo_valid == t->helo_valid);
		if (t->local != NULL) {
			CHECK_STR(c.path.local, t->local);
			CHECK_STR(c.path.domain, t->domain);
		}
		CHECK((c.path.flags & t->pflags) == t->pflags);
		if (t->verb == SMTP_VERB_BDAT) {
			CHECK(c.bdat_size == t->num);
			CHECK(c.bdat_last == t->last);
		}
		if (t->verb == SMTP_VERB_MAIL) {
			CHECK(c.size_given == (t->num != 0));
			CHECK(c.size == t->num);
			CHECK((int)c.body == t->body);
			CHECK((int)c.ret == t->ret);
			CHECK(c.smtputf8 == t->utf8);
			CHECK(c.envid_given == (t->envid != NULL));
			if (t->envid != NULL)
				CHECK_STR(c.envid, t->envid);
			CHECK(c.auth_given == (t->auth != NULL));
			if (t->auth != NULL)
				CHECK_STR(c.auth, t->auth);
		}
		if (t->verb == SMTP_VERB_RCPT) {
			CHECK(c.notify == t->notify);
			CHECK((c.orcpt_type != SMTP_ORCPT_NONE) == (t->orcpt != NULL));
			if (t->orcpt != NULL)
				CHECK_STR(c.orcpt, t->orcpt);
		}
		if (t->verb == SMTP_VERB_AUTH) {
			CHECK((c.auth_ir != NULL) == (t->ir != NULL));
			if (t->ir != NULL)
				CHECK(c.auth_ir_len == strlen(t->ir) &&
				      memcmp(c.auth_ir, t->ir, c.auth_ir_len) == 0);
		}
	}
}

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *t = &bad_cases[i];
		struct smtp_cmd c;
		struct smtp_cmd_error e;
		int r = parse(t->line, t->flags, &c, &e);
		if (r != -1 || e.code != t->code || strcmp(e.enh, t->enh) != 0)
			fprintf(stderr, "case \"%s\": r=%d %u %s\n", t->line, r, e.code,
				e.enh ? e.enh : "-");
		CHECK(r == -1);
		CHECK(e.code == t->code);
		CHECK(e.enh != NULL && strcmp(e.enh, t->enh) == 0);
		CHECK(e.text != NULL && e.text[0] != '\0');
		CHECK(c.verb == t->verb);
		/* the answer is one the reply writer takes */
		char reply[SMTP_MAX_REPLY_LINE];
		size_t n;
		CHECK(smtp_reply_format1(reply, sizeof(reply), e.code, e.enh, e.text, &n) == 0);
	}
	/* a NUL inside the line (the table's strings cannot hold one) */
	static const char nul[] = "MAIL FROM:<a@b.example>\0 SIZE=1";
	struct smtp_cmd c;
	struct smtp_cmd_error e;
	CHECK(smtp_cmd_parse(nul, sizeof(nul) - 1, ALL, &c, &e) == -1);
	CHECK(e.code == 500 && strcmp(e.enh, "5.5.2") == 0);
	static const char nul2[] = "NOOP a\0b";
	CHECK(smtp_cmd_parse(nul2, sizeof(nul2) - 1, ALL, &c, &e) == -1);
	CHECK(e.code == 500);
}

/* A line of exactly n bytes (without CRLF): prefix, then filler, then suffix. */
static char *make_line(const char *prefix, char fill, const char *suffix, size_t n)
{
	char *s = malloc(n + 1);
	size_t pl = strlen(prefix), sl = strlen(suffix);
	memcpy(s, prefix, pl);
	memset(s + pl, fill, n - pl - sl);
	memcpy(s + n - sl, suffix, sl);
	s[n] = '\0';
	return s;
}

static void test_limits(void)
{
	struct smtp_cmd c;
	struct smtp_cmd_error e;
	char *s;

	/* NOOP: SMTP_MAX_CMD_LINE with CRLF */
	s = make_line("NOOP ", 'x', "", SMTP_MAX_CMD_LINE - 2);
	CHECK(smtp_cmd_parse(s, strlen(s), 0, &c, &e) == 0 && c.arg_len == SMTP_MAX_CMD_LINE - 7);
	free(s);
	s = make_line("NOOP ", 'x', "", SMTP_MAX_CMD_LINE - 1);
	CHECK(smtp_cmd_parse(s, strlen(s), 0, &c, &e) == -1 && e.code == 500 &&
	      strcmp(e.text, "Line too long") == 0 && c.verb == SMTP_VERB_NOOP);
	free(s);
	/* an unknown verb gets the base limit too */
	s = make_line("XYZZY ", 'x', "", SMTP_MAX_CMD_LINE - 1);
	CHECK(smtp_cmd_parse(s, strlen(s), 0, &c, &e) == -1 && strcmp(e.text, "Line too long") == 0);
	free(s);
	/* MAIL: the extended limit, reached with a long AUTH= value */
	s = make_line("MAIL FROM:<a@b.example> AUTH=", 'x', "", SMTP_MAX_MAIL_LINE - 2);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == -1 && e.code == 501); /* AUTH > 500 */
	free(s);
	s = make_line("MAIL FROM:<a@b.example> ", ' ', " SIZE=1", SMTP_MAX_MAIL_LINE - 2);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == 0 && c.size == 1);
	free(s);
	s = make_line("MAIL FROM:<a@b.example> ", ' ', " SIZE=1", SMTP_MAX_MAIL_LINE - 1);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == -1 && e.code == 500);
	free(s);
	s = make_line("RCPT TO:<a@b.example> ", ' ', " NOTIFY=NEVER", SMTP_MAX_RCPT_LINE - 2);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == 0 && c.notify == SMTP_NOTIFY_NEVER);
	free(s);
	s = make_line("RCPT TO:<a@b.example> ", ' ', " NOTIFY=NEVER", SMTP_MAX_RCPT_LINE - 1);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == -1 && e.code == 500);
	free(s);
	/* AUTH: the RFC 4954 12 KiB line */
	s = make_line("AUTH PLAIN ", 'A', "", SMTP_MAX_AUTH_LINE - 2);
	CHECK(smtp_cmd_parse(s, strlen(s), 0, &c, &e) == 0 &&
	      c.auth_ir_len == SMTP_MAX_AUTH_LINE - 13);
	free(s);
	s = make_line("AUTH PLAIN ", 'A', "", SMTP_MAX_AUTH_LINE - 1);
	CHECK(smtp_cmd_parse(s, strlen(s), 0, &c, &e) == -1 && e.code == 500);
	free(s);
	/* ENVID: 100 characters, not 101 */
	s = make_line("MAIL FROM:<a@b.example> ENVID=", 'e', "", 30 + SMTP_MAX_ENVID);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == 0 && strlen(c.envid) == SMTP_MAX_ENVID);
	free(s);
	s = make_line("MAIL FROM:<a@b.example> ENVID=", 'e', "", 31 + SMTP_MAX_ENVID);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == -1 && e.code == 501);
	free(s);
	/* AUTH=: 500 */
	s = make_line("MAIL FROM:<a@b.example> AUTH=", 'e', "", 29 + SMTP_MAX_AUTH_PARAM);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == 0 && strlen(c.auth) == SMTP_MAX_AUTH_PARAM);
	free(s);
	s = make_line("MAIL FROM:<a@b.example> AUTH=", 'e', "", 30 + SMTP_MAX_AUTH_PARAM);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == -1 && e.code == 501);
	free(s);
	/* ORCPT: the whole parameter 500 */
	s = make_line("RCPT TO:<a@b.example> ORCPT=rfc822;", 'o', "", 22 + SMTP_MAX_ORCPT);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == 0 && strlen(c.orcpt) == SMTP_MAX_ORCPT - 13);
	free(s);
	s = make_line("RCPT TO:<a@b.example> ORCPT=rfc822;", 'o', "", 23 + SMTP_MAX_ORCPT);
	CHECK(smtp_cmd_parse(s, strlen(s), ALL, &c, &e) == -1 && e.code == 501);
	free(s);
	/* the path limit (address_path.c): a 64-octet local part, not 65 */
	s = make_line("RCPT TO:<", 'l', "@b.example>", 9 + 64 + 11);
	CHECK(smtp_cmd_parse(s, strlen(s), 0, &c, &e) == 0);
	free(s);
	s = make_line("RCPT TO:<", 'l', "@b.example>", 9 + 65 + 11);
	CHECK(smtp_cmd_parse(s, strlen(s), 0, &c, &e) == -1 && e.code == 501 &&
	      strcmp(e.enh, "5.1.3") == 0 && e.detail != NULL);
	free(s);
}

static void test_xtext(void)
{
	char out[16], big[64];
	size_t n;

	CHECK(smtp_xtext_decode("a+2Bb", 5, out, sizeof(out), &n) == 0 && n == 3 &&
	      strcmp(out, "a+b") == 0);
	CHECK(smtp_xtext_decode("", 0, out, sizeof(out), &n) == 0 && n == 0);
	CHECK(smtp_xtext_decode("a=b", 3, out, sizeof(out), &n) == -1);
	CHECK(smtp_xtext_decode("a b", 3, out, sizeof(out), &n) == -1);
	CHECK(smtp_xtext_decode("+2g", 3, out, sizeof(out), &n) == -1);
	/* out of room: 4 bytes need 5 */
	CHECK(smtp_xtext_decode("abcd", 4, out, 4, &n) == -1);
	CHECK(smtp_xtext_decode("abc", 3, out, 4, &n) == 0);
	/* encode and back, every byte but NUL */
	char all[255], enc[255 * 3 + 1], dec[256];
	for (int i = 0; i < 255; i++)
		all[i] = (char)(i + 1);
	CHECK(smtp_xtext_encode(all, 255, enc, sizeof(enc), &n) == 0);
	CHECK(smtp_xtext_decode(enc, n, dec, sizeof(dec), &n) == 0 && n == 255 &&
	      memcmp(dec, all, 255) == 0);
	size_t need;
	CHECK(smtp_xtext_encode(all, 255, enc, sizeof(enc), &need) == 0 && need == 92 + 163 * 3);
	CHECK(smtp_xtext_encode(all, 255, enc, need, &n) == -1); /* no room for the NUL */
	CHECK(smtp_xtext_encode(all, 255, enc, need + 1, &n) == 0 && n == need);
	CHECK(smtp_xtext_encode("a=b", 3, big, sizeof(big), &n) == 0 && strcmp(big, "a+3Db") == 0);
	/* UTF-8 validity */
	CHECK(smtp_xtext_utf8_valid("\xc3\xb6", 2));
	CHECK(!smtp_xtext_utf8_valid("\xc0\xaf", 2));         /* overlong */
	CHECK(!smtp_xtext_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	CHECK(!smtp_xtext_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	CHECK(!smtp_xtext_utf8_valid("\xc3", 1));
	CHECK(smtp_xtext_decode_utf8addr("\\x{10FFFF}", 10, false, big, sizeof(big), &n) == 0 &&
	      n == 4 && memcmp(big, "\xf4\x8f\xbf\xbf", 4) == 0);
	CHECK(smtp_xtext_decode_utf8addr("\\x{7F}", 6, false, big, sizeof(big), &n) == 0 &&
	      n == 1 && big[0] == 0x7F);
	CHECK(smtp_xtext_decode_utf8addr("\\x{00}", 6, false, big, sizeof(big), &n) == -1);
	CHECK(smtp_xtext_decode_utf8addr("\\y", 2, false, big, sizeof(big), &n) == -1);
	CHECK(smtp_xtext_decode_utf8addr("", 0, false, big, sizeof(big), &n) == -1);
}

int main(void)
{
	test_ok();
	test_bad();
	test_limits();
	test_xtext();
	return unit_done("test_smtp_cmd");
}
