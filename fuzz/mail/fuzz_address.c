/* libFuzzer: address_list_parse() and address_path_parse().  Byte 0 picks the path
 * options; the rest is the value.  Checks: the list never exceeds ADDRESS_MAX_ENTRIES,
 * groups are balanced and never nested, a mailbox always has a mailbox and a domain, no
 * string holds CR, LF or NUL, and the display name decodes.  A path that parses ends at
 * '>', keeps to the RFC 5321 limits, and written back from its parts parses the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mail/address.h"

static void check_str(const char *s)
{
	if (s != NULL && strpbrk(s, "\r\n") != NULL)
		abort();
}

static void check_list(const char *in, size_t len)
{
	struct address_list *l = address_list_parse(in, len);
	int depth = 0;

	if (l->count > ADDRESS_MAX_ENTRIES)
		abort();
	for (size_t i = 0; i < l->count; i++) {
		const struct address *a = &l->addrs[i];
		check_str(a->name);
		check_str(a->route);
		check_str(a->mailbox);
		check_str(a->domain);
		switch (a->kind) {
		case ADDRESS_GROUP_START:
			if (depth++ != 0 || a->name == NULL || a->mailbox != NULL)
				abort();
			break;
		case ADDRESS_GROUP_END:
			if (depth-- != 1 || a->name != NULL || a->domain != NULL)
				abort();
			break;
		case ADDRESS_MAILBOX:
			if (a->mailbox == NULL || a->domain == NULL || a->mailbox[0] == '\0' ||
			    a->domain[0] == '\0')
				abort();
			break;
		}
		free(address_name_decode(a->name));
	}
	if (depth != 0)
		abort();
	address_list_free(&l);
}

static void check_path(const char *in, size_t len, unsigned opts)
{
	struct address_path p, q;
	const char *err;
	char buf[SMTP_MAX_PATH * 2 + 8];

	long r = address_path_parse(in, len, opts, &p, &err);
	if (r < 0)
		return;
	if ((size_t)r > len || (size_t)r > SMTP_MAX_PATH || in[r - 1] != '>')
		abort();
	if (strlen(p.local) > SMTP_MAX_LOCAL_PART || strlen(p.domain) > SMTP_MAX_DOMAIN)
		abort();
	if (p.flags & (ADDRESS_PATH_F_NULL | ADDRESS_PATH_F_POSTMASTER))
		return;
	int n = snprintf(buf, sizeof(buf), "<%s%s%s@%s>", p.route, p.route[0] ? ":" : "",
			 p.local, p.domain);
	if (n != r || memcmp(buf, in, (size_t)n) != 0)
		abort();
	if (address_path_parse(buf, (size_t)n, opts, &q, &err) != r || q.flags != p.flags ||
	    strcmp(q.local_unquoted, p.local_unquoted) != 0)
		abort();
	if ((p.flags & ADDRESS_PATH_F_UTF8) && !(opts & ADDRESS_PATH_UTF8))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	char *copy = malloc(len ? len : 1);
	memcpy(copy, in, len);
	check_list(copy, len);
	check_path(copy, len, data[0] & 7);
	free(copy);
	return 0;
}
