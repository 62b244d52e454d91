/* libFuzzer: smtp_cmd_parse() (common/smtp/smtp_cmd.c).  Byte 0 picks the flags (the
 * extensions offered, SMTPUTF8 in effect); the rest is one command line.  Checks: an
 * error has a reply code, an RFC 3463 code of its class and a text that
 * smtp_reply_format() writes; a parsed command keeps to its limits (arguments inside the
 * line, ENVID and ORCPT printable as decoded, NEVER alone, no UTF-8 path without
 * SMTPUTF8); and what a parsed EHLO or RCPT gives smtp_received_format() stays one
 * well-formed header field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_received.h"
#include "smtp/smtp_reply.h"

static void check_field(const char *buf, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\r') {
			if (i + 1 >= len || buf[i + 1] != '\n' || i - start > 998)
				abort();
			start = i + 2;
			if (start < len && buf[start] != '\t')
				abort();
			i++;
		} else if (buf[i] == '\n' || buf[i] == '\0') {
			abort();
		}
	}
	if (start != len)
		abort();
}

static void received(const char *helo, bool valid, const char *rcpt, bool utf8)
{
	struct smtp_received r = {
		.helo = helo, .helo_valid = valid, .addr = "192.0.2.7", .by = "mail.example",
		.esmtp = true, .utf8 = utf8, .queue_id = "Q1", .rcpt = rcpt, .time = 0,
	};
	char buf[SMTP_MAX_RECEIVED];
	size_t len;

	if (smtp_received_format(&r, buf, sizeof(buf), &len) < 0)
		abort(); /* every input the parser passes must fit */
	check_field(buf, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmd c;
	struct smtp_cmd_error e;
	char reply[SMTP_MAX_REPLY_LINE];
	size_t n;

	if (size < 1)
		return 0;
	unsigned flags = data[0] & 0x3F;
	if (data[0] & 0x40)
		flags |= SMTP_CMD_TXN_UTF8;
	const char *line = (const char *)data + 1;
	size_t len = size - 1;
	char *copy = malloc(len + 1); /* an exact-size heap copy: ASan sees any overread */
	memcpy(copy, line, len);
	copy[len] = '\0';

	if (smtp_cmd_parse(copy, len, flags, &c, &e) < 0) {
		if (e.code != 500 && e.code != 501 && e.code != 550 && e.code != 553 && e.code != 555)
			abort();
		if (!smtp_reply_enh_valid(e.code, e.enh) || e.text == NULL ||
		    smtp_reply_format1(reply, sizeof(reply), e.code, e.enh, e.text, &n) < 0)
			abort();
		free(copy);
		return 0;
	}
	if (c.arg != NULL && (c.arg < copy || c.arg + c.arg_len > copy + len))
		abort();
	if (c.auth_ir != NULL && (c.auth_ir < copy || c.auth_ir + c.auth_ir_len > copy + len))
		abort();
	switch (c.verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO: {
		char helo[SMTP_MAX_CMD_LINE];
		if (c.arg_len == 0 || c.arg_len >= sizeof(helo))
			abort();
		memcpy(helo, c.arg, c.arg_len);
		helo[c.arg_len] = '\0';
		received(helo, c.helo_valid, NULL, false);
		break;
	}
	case SMTP_VERB_MAIL:
	case SMTP_VERB_RCPT: {
		if (strlen(c.path.local) > SMTP_MAX_LOCAL_PART || strlen(c.path.domain) > SMTP_MAX_DOMAIN)
			abort();
		if (strlen(c.envid) > SMTP_MAX_ENVID || strlen(c.auth) > SMTP_MAX_AUTH_PARAM ||
		    strlen(c.orcpt) > SMTP_MAX_ORCPT)
			abort();
		for (const char *p = c.envid; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E)
				abort();
		if ((c.notify & SMTP_NOTIFY_NEVER) && c.notify != SMTP_NOTIFY_NEVER)
			abort();
		bool utf8 = c.verb == SMTP_VERB_MAIL ? c.smtputf8 : (flags & SMTP_CMD_TXN_UTF8) != 0;
		if ((c.path.flags & ADDRESS_PATH_F_UTF8) && !utf8)
			abort();
		if (c.orcpt_type != SMTP_ORCPT_UTF8)
			for (const char *p = c.orcpt; *p; p++)
				if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E)
					abort();
		if (c.verb == SMTP_VERB_RCPT && !(c.path.flags & ADDRESS_PATH_F_POSTMASTER)) {
			char rcpt[SMTP_MAX_PATH + 2];
			size_t ll = strlen(c.path.local), dl = strlen(c.path.domain);
			memcpy(rcpt, c.path.local, ll);
			rcpt[ll] = '@';
			memcpy(rcpt + ll + 1, c.path.domain, dl + 1);
			received("client.example", true, rcpt, utf8);
		}
		break;
	}
	default:
		break;
	}
	free(copy);
	return 0;
}
