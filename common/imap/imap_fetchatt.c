/* fetch-att items with a section (imap_fetchatt.h). */
#include <string.h>
#include "base/util.h"
#include "imap/imap_fetchatt.h"

/* Does s[*i...] start with word (case-insensitive)?  Advances past it. */
static bool take(const char *s, size_t len, size_t *i, const char *word)
{
	size_t n = strlen(word);
	if (len - *i < n || !util_token_eq(s + *i, n, word))
		return false;
	*i += n;
	return true;
}

/* A decimal number at s[*i...] up to max; leading zeros refused for nz forms. */
static int num(const char *s, size_t len, size_t *i, uint64_t max, uint64_t *n_r)
{
	size_t b = *i;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9')
		(*i)++;
	return util_parse_uint(s + b, *i - b, max, n_r);
}

static bool is_fld_char(unsigned char c)
{
	/* header-fld-name = astring: ASTRING-CHAR (atom chars and ']', not inside the
	 * brackets here; RFC 5322 ftext is 33..126 but ':') */
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

static int header_list(const char *s, size_t len, size_t *i, struct imap_fetch_section *r,
		       const char **error_r)
{
	size_t o = 0;
	if (!take(s, len, i, " (")) {
		*error_r = "Missing header list";
		return -1;
	}
	for (;;) {
		/* header-fld-name = astring: an atom, or a quoted string (its escapes undone).
		 * Either way the name must be header ftext (33..126); a quoted "" is refused. */
		size_t n = 0;
		bool quoted = *i < len && s[*i] == '"';
		if (quoted)
			(*i)++;
		for (;;) {
			if (*i >= len)
				break;
			unsigned char c = (unsigned char)s[*i];
			if (quoted) {
				if (c == '"')
					break;
				if (c == '\\') {
					if (*i + 1 >= len || (s[*i + 1] != '\\' && s[*i + 1] != '"'))
						break;   /* bad escape: refused below */
					c = (unsigned char)s[++*i];
				} else if (c <= 0x20 || c >= 0x7f)
					break;
			} else if (!is_fld_char(c))
				break;
			if (r->nfields >= IMAP_SECTION_MAX_FIELDS || n + 2 > sizeof(r->fields_buf) - o) {
				*error_r = "Too many header fields";
				return -1;
			}
			r->fields_buf[o + n++] = (char)c;   /* BOUNDS: n + 2 <= room, checked above */
			(*i)++;
		}
		if (quoted) {
			if (*i >= len || s[*i] != '"') {
				*error_r = "Invalid quoted header field name";
				return -1;
			}
			(*i)++;
		}
		if (n == 0) {
			*error_r = "Invalid header field name";
			return -1;
		}
		if (r->nfields >= IMAP_SECTION_MAX_FIELDS) {
			*error_r = "Too many header fields";
			return -1;
		}
		r->fields_buf[o + n] = '\0';
		r->fields[r->nfields++] = r->fields_buf + o;
		o += n + 1;   /* BOUNDS: checked against fields_buf above */
		if (*i < len && s[*i] == ')') {
			(*i)++;
			return 0;
		}
		if (*i >= len || s[*i] != ' ') {
			*error_r = "Invalid header list";
			return -1;
		}
		(*i)++;
	}
}

int imap_fetch_section_parse(const char *s, size_t len, struct imap_fetch_section *r,
			     const char **error_r)
{
	size_t i = 0;
	memset(r, 0, sizeof(*r));
	if (take(s, len, &i, "BODY")) {
		r->kind = IMAP_FETCH_BODY;
		r->peek = take(s, len, &i, ".PEEK");
	} else if (take(s, len, &i, "BINARY")) {
		r->kind = IMAP_FETCH_BINARY;
		if (take(s, len, &i, ".PEEK"))
			r->peek = true;
		else if (take(s, len, &i, ".SIZE"))
			r->kind = IMAP_FETCH_BINARY_SIZE;
	} else {
		*error_r = "Unknown fetch item";
		return -1;
	}
	if (!take(s, len, &i, "[")) {
		*error_r = "Missing '['";
		return -1;
	}
	/* section-part: nz-number *("." nz-number) */
	while (i < len && s[i] >= '1' && s[i] <= '9') {
		uint64_t n;
		if (num(s, len, &i, UINT32_MAX, &n) < 0 || r->nparts >= IMAP_SECTION_MAX_PARTS) {
			*error_r = "Invalid section part";
			return -1;
		}
		r->part[r->nparts++] = (uint32_t)n;
		if (i < len && s[i] == '.' && i + 1 < len && s[i + 1] >= '1' && s[i + 1] <= '9')
			i++;
		else
			break;
	}
	r->text = IMAP_SECTION_ALL;
	if (r->kind == IMAP_FETCH_BODY && i < len && s[i] != ']') {
		if (r->nparts > 0 && !take(s, len, &i, ".")) {
			*error_r = "Invalid section";
			return -1;
		}
		if (take(s, len, &i, "HEADER.FIELDS.NOT"))
			r->text = IMAP_SECTION_HEADER_FIELDS_NOT;
		else if (take(s, len, &i, "HEADER.FIELDS"))
			r->text = IMAP_SECTION_HEADER_FIELDS;
		else if (take(s, len, &i, "HEADER"))
			r->text = IMAP_SECTION_HEADER;
		else if (take(s, len, &i, "TEXT"))
			r->text = IMAP_SECTION_TEXT;
		else if (r->nparts > 0 && take(s, len, &i, "MIME"))
			r->text = IMAP_SECTION_MIME;
		else {
			*error_r = "Invalid section";
			return -1;
		}
		if ((r->text == IMAP_SECTION_HEADER_FIELDS ||
		     r->text == IMAP_SECTION_HEADER_FIELDS_NOT) &&
		    header_list(s, len, &i, r, error_r) < 0)
			return -1;
	}
	if (!take(s, len, &i, "]")) {
		*error_r = "Invalid section";
		return -1;
	}
	if (i < len && s[i] == '<' && r->kind != IMAP_FETCH_BINARY_SIZE) {
		i++;
		if (num(s, len, &i, INT64_MAX, &r->offset) < 0 || !take(s, len, &i, ".") ||
		    num(s, len, &i, INT64_MAX, &r->length) < 0 || r->length == 0 ||
		    !take(s, len, &i, ">")) {
			*error_r = "Invalid partial";
			return -1;
		}
		r->partial = true;
	}
	if (i != len) {
		*error_r = "Junk after section";
		return -1;
	}
	return 0;
}
