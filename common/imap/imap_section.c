/* FETCH sections: resolution, sizes, response names (imap_section.h). */
#include <string.h>
#include "imap/imap_section.h"

static bool is_multi(const struct mime_part *p)
{
	return strcmp(p->type, "multipart") == 0 && p->children != NULL;
}

static bool is_message(const struct mime_part *p)
{
	return (p->flags & MIME_PART_MESSAGE) != 0 && p->children != NULL;
}

static void set_range(struct imap_section_plan *r, uint64_t off, uint64_t size,
		      uint64_t size_crlf)
{
	r->found = true;
	r->offset = off;
	r->size = size;
	r->size_crlf = size_crlf;
}

int imap_section_resolve(const struct imap_fetch_section *sec, const struct mime_part *root,
			 struct imap_section_plan *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	if (sec->kind != IMAP_FETCH_BODY && sec->text != IMAP_SECTION_ALL) {
		*error_r = "BINARY takes part numbers only";
		return -1;
	}
	const struct mime_part *cur = root;
	bool is_msg = true;    /* cur is a message (the top one or an enclosed one) */
	for (size_t i = 0; i < sec->nparts; i++) {
		uint32_t n = sec->part[i];
		if (!is_msg && is_message(cur)) {
			cur = cur->children;
			is_msg = true;
		}
		if (is_multi(cur)) {
			const struct mime_part *c = cur->children;
			for (uint32_t k = 1; c != NULL && k < n; k++)
				c = c->next;
			if (c == NULL || n == 0)
				return 0;
			cur = c;
			is_msg = false;
		} else if ((is_msg || strcmp(cur->type, "multipart") == 0) && n == 1) {
			/* a non-multipart message's only part: its body; a multipart without
			 * parts: the made-up part of its BODYSTRUCTURE, its body */
			is_msg = false;
		} else {
			return 0;
		}
	}
	r->part = cur;
	const struct mime_part *msg = cur;
	switch (sec->text) {
	case IMAP_SECTION_ALL:
		if (sec->nparts == 0)
			set_range(r, root->hdr_offset, root->hdr_size + root->body_size,
				  root->hdr_size_crlf + root->body_size_crlf);
		else
			set_range(r, cur->body_offset, cur->body_size, cur->body_size_crlf);
		return 0;
	case IMAP_SECTION_MIME:
		if (sec->nparts == 0) {
			r->part = NULL;
			return 0;
		}
		set_range(r, cur->hdr_offset, cur->hdr_size, cur->hdr_size_crlf);
		return 0;
	case IMAP_SECTION_HEADER:
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
	case IMAP_SECTION_TEXT:
		if (sec->nparts > 0) {
			if (!is_message(cur)) {
				r->part = NULL;
				return 0;
			}
			msg = cur->children;
		}
		r->part = msg;
		if (sec->text == IMAP_SECTION_TEXT) {
			set_range(r, msg->body_offset, msg->body_size, msg->body_size_crlf);
		} else {
			set_range(r, msg->hdr_offset, msg->hdr_size, msg->hdr_size_crlf);
			r->filter = sec->text != IMAP_SECTION_HEADER;
		}
		return 0;
	}
	return 0;
}

uint64_t imap_section_partial_size(const struct imap_fetch_section *sec, uint64_t full)
{
	if (!sec->partial)
		return full;
	if (sec->offset >= full)
		return 0;
	uint64_t rest = full - sec->offset;
	return sec->length < rest ? sec->length : rest;
}

int imap_section_write_name(struct imap_buf *b, const struct imap_fetch_section *sec)
{
	static const char *const text[] = {
		[IMAP_SECTION_ALL] = "", [IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_TEXT] = "TEXT", [IMAP_SECTION_MIME] = "MIME",
	};
	int r = imap_buf_puts(b, sec->kind == IMAP_FETCH_BODY ? "BODY[" :
			      sec->kind == IMAP_FETCH_BINARY ? "BINARY[" : "BINARY.SIZE[");
	for (size_t i = 0; i < sec->nparts; i++)
		r |= imap_buf_printf(b, i == 0 ? "%u" : ".%u", (unsigned)sec->part[i]);
	if (sec->text != IMAP_SECTION_ALL) {
		if (sec->nparts > 0)
			r |= imap_buf_puts(b, ".");
		r |= imap_buf_puts(b, text[sec->text]);
	}
	if (sec->text == IMAP_SECTION_HEADER_FIELDS ||
	    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
		r |= imap_buf_puts(b, " (");
		for (size_t i = 0; i < sec->nfields; i++) {
			if (i > 0)
				r |= imap_buf_puts(b, " ");
			r |= imap_write_astring(b, sec->fields[i], strlen(sec->fields[i]), 0);
		}
		r |= imap_buf_puts(b, ")");
	}
	r |= imap_buf_puts(b, "]");
	if (sec->partial && sec->kind != IMAP_FETCH_BINARY_SIZE)
		r |= imap_buf_printf(b, "<%llu>", (unsigned long long)sec->offset);
	return r == 0 ? 0 : -1;
}
