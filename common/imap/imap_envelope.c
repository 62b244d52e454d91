/* FETCH ENVELOPE (imap_envelope.h). */
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "imap/imap_envelope.h"

/* An nstring from header bytes: NUL (which no IMAP string but literal8 may carry)
 * becomes a space; the writer picks quoted or literal. */
static int write_value(struct imap_buf *b, const char *s, size_t len, unsigned flags)
{
	if (s == NULL)
		return imap_buf_puts(b, "NIL");
	if (memchr(s, '\0', len) == NULL)
		return imap_write_string(b, s, len, flags & IMAP_WRITE_UTF8);
	char *copy = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		copy[i] = s[i] == '\0' ? ' ' : s[i];
	int r = imap_write_string(b, copy, len, flags & IMAP_WRITE_UTF8);
	free(copy);
	return r;
}

static int write_cstr(struct imap_buf *b, const char *s, unsigned flags)
{
	return write_value(b, s, s != NULL ? strlen(s) : 0, flags);
}

int imap_envelope_write_addresses(struct imap_buf *b, const struct address_list *list,
				  unsigned flags)
{
	if (list == NULL || list->count == 0)
		return imap_buf_puts(b, "NIL");
	int r = imap_buf_puts(b, "(");
	for (size_t i = 0; i < list->count && r == 0; i++) {
		const struct address *a = &list->addrs[i];
		r |= imap_buf_puts(b, "(");
		switch (a->kind) {
		case ADDRESS_MAILBOX:
			r |= write_cstr(b, a->name, flags);
			r |= imap_buf_puts(b, " ");
			r |= write_cstr(b, a->route, flags);
			r |= imap_buf_puts(b, " ");
			/* never NULL for a mailbox entry (address.h), but be sure: a NIL
			 * host would read as a group marker */
			r |= write_cstr(b, a->mailbox != NULL ? a->mailbox :
					ADDRESS_MISSING_MAILBOX, flags);
			r |= imap_buf_puts(b, " ");
			r |= write_cstr(b, a->domain != NULL ? a->domain :
					ADDRESS_MISSING_DOMAIN, flags);
			break;
		case ADDRESS_GROUP_START:
			r |= imap_buf_puts(b, "NIL NIL ");
			r |= write_cstr(b, a->name != NULL ? a->name : "", flags);
			r |= imap_buf_puts(b, " NIL");
			break;
		case ADDRESS_GROUP_END:
			r |= imap_buf_puts(b, "NIL NIL NIL NIL");
			break;
		}
		r |= imap_buf_puts(b, ")");
	}
	r |= imap_buf_puts(b, ")");
	return r == 0 ? 0 : -1;
}

static struct address_list *parse_field(const struct mail_envelope_fields *env,
					enum mail_envelope_field f)
{
	if (env == NULL || env->value[f] == NULL)
		return NULL;
	return address_list_parse(env->value[f], env->len[f]);
}

static int write_field(struct imap_buf *b, const struct mail_envelope_fields *env,
		       enum mail_envelope_field f, unsigned flags)
{
	if (env == NULL || env->value[f] == NULL)
		return imap_buf_puts(b, "NIL");
	return write_value(b, env->value[f], env->len[f], flags);
}

int imap_envelope_write(struct imap_buf *b, const struct mail_envelope_fields *env,
			unsigned flags)
{
	int r = imap_buf_puts(b, "(");
	r |= write_field(b, env, ENV_DATE, flags);
	r |= imap_buf_puts(b, " ");
	r |= write_field(b, env, ENV_SUBJECT, flags);

	struct address_list *from = parse_field(env, ENV_FROM);
	static const enum mail_envelope_field addr_fields[] = {
		ENV_FROM, ENV_SENDER, ENV_REPLY_TO, ENV_TO, ENV_CC, ENV_BCC,
	};
	for (size_t i = 0; i < sizeof(addr_fields) / sizeof(addr_fields[0]); i++) {
		enum mail_envelope_field f = addr_fields[i];
		r |= imap_buf_puts(b, " ");
		if (f == ENV_FROM) {
			r |= imap_envelope_write_addresses(b, from, flags);
			continue;
		}
		struct address_list *l = parse_field(env, f);
		if ((f == ENV_SENDER || f == ENV_REPLY_TO) && (l == NULL || l->count == 0))
			r |= imap_envelope_write_addresses(b, from, flags);
		else
			r |= imap_envelope_write_addresses(b, l, flags);
		if (l != NULL)
			address_list_free(&l);
	}
	if (from != NULL)
		address_list_free(&from);
	r |= imap_buf_puts(b, " ");
	r |= write_field(b, env, ENV_IN_REPLY_TO, flags);
	r |= imap_buf_puts(b, " ");
	r |= write_field(b, env, ENV_MESSAGE_ID, flags);
	r |= imap_buf_puts(b, ")");
	return r == 0 ? 0 : -1;
}
