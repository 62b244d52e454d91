/* FETCH BODY / BODYSTRUCTURE (imap_bodystructure.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"

static int put(struct imap_buf *b, const char *s)
{
	return imap_buf_puts(b, s);
}

static int number(struct imap_buf *b, uint64_t n)
{
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	return imap_buf_printf(b, "%llu", (unsigned long long)n);
}

static int str(struct imap_buf *b, const char *s, unsigned flags)
{
	if (s == NULL)
		return put(b, "NIL");
	return imap_write_string(b, s, strlen(s), flags & IMAP_WRITE_UTF8);
}

static bool printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* RFC 2231 section 4 extended value: charset'lang'%XX for every byte that is not an
 * attribute-char. */
static int param_extended(struct imap_buf *b, const struct mime_param *p, unsigned flags)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(p->value);
	size_t cl = strlen(p->charset), ll = p->language != NULL ? strlen(p->language) : 0;
	/* BOUNDS: value <= MIME_VALUE_MAX, charset/language likewise (mimeparam.c) */
	char *v = xmalloc(cl + ll + 3 * n + 3);
	size_t k = 0;
	memcpy(v + k, p->charset, cl);
	k += cl;
	v[k++] = '\'';
	if (ll > 0)
		memcpy(v + k, p->language, ll);
	k += ll;
	v[k++] = '\'';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p->value[i];
		if (c > 0x20 && c < 0x7f && strchr("*'%()<>@,;:\\\"/[]?=", c) == NULL) {
			v[k++] = (char)c;
		} else {
			v[k++] = '%';
			v[k++] = hex[c >> 4];
			v[k++] = hex[c & 15];
		}
	}
	char *name = xmalloc(strlen(p->name) + 2);
	memcpy(name, p->name, strlen(p->name));
	memcpy(name + strlen(p->name), "*", 2);
	int r = imap_write_string(b, name, strlen(name), flags & IMAP_WRITE_UTF8);
	r |= put(b, " ");
	r |= imap_write_string(b, v, k, flags & IMAP_WRITE_UTF8);
	free(name);
	free(v);
	return r;
}

static bool charset_ok(const char *cs)
{
	if (cs == NULL || cs[0] == '\0')
		return false;
	for (; *cs != '\0'; cs++)
		if ((unsigned char)*cs <= 0x20 || (unsigned char)*cs >= 0x7f || *cs == '\'' ||
		    *cs == '"' || *cs == '\\')
			return false;
	return true;
}

static int params(struct imap_buf *b, const struct mime_param *ps, unsigned n,
		  unsigned flags)
{
	if (n == 0)
		return put(b, "NIL");
	int r = put(b, "(");
	for (unsigned i = 0; i < n; i++) {
		const struct mime_param *p = &ps[i];
		if (i > 0)
			r |= put(b, " ");
		const char *value = p->value != NULL ? p->value : "";
		if (!printable_ascii(value) && charset_ok(p->charset) &&
		    (p->language == NULL || printable_ascii(p->language))) {
			r |= param_extended(b, p, flags);
			continue;
		}
		r |= str(b, p->name != NULL ? p->name : "", flags);
		r |= put(b, " ");
		r |= str(b, value, flags);
	}
	return r | put(b, ")");
}

static int disposition(struct imap_buf *b, const struct mime_part *part, unsigned flags)
{
	if (part->disposition == NULL)
		return put(b, "NIL");
	int r = put(b, "(");
	r |= str(b, part->disposition, flags);
	r |= put(b, " ");
	r |= params(b, part->disp_params, part->n_disp_params, flags);
	return r | put(b, ")");
}

static int languages(struct imap_buf *b, const struct mime_part *part, unsigned flags)
{
	if (part->n_languages == 0)
		return put(b, "NIL");
	if (part->n_languages == 1)
		return str(b, part->languages[0], flags);
	int r = put(b, "(");
	for (unsigned i = 0; i < part->n_languages; i++) {
		if (i > 0)
			r |= put(b, " ");
		r |= str(b, part->languages[i], flags);
	}
	return r | put(b, ")");
}

/* SP dsp SP lang SP loc */
static int ext_common(struct imap_buf *b, const struct mime_part *part, unsigned flags)
{
	int r = put(b, " ");
	r |= disposition(b, part, flags);
	r |= put(b, " ");
	r |= languages(b, part, flags);
	r |= put(b, " ");
	return r | str(b, part->location, flags);
}

static const char made_up_text[] = "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
	"\"7bit\" ";

/* The made-up body: a text/plain of size octets and lines lines. */
static int made_up_body(struct imap_buf *b, uint64_t size, uint64_t lines, unsigned flags)
{
	int r = put(b, made_up_text);
	r |= number(b, size);
	r |= put(b, " ");
	r |= number(b, lines);
	if (flags & IMAP_BS_EXTENDED)
		r |= put(b, " NIL NIL NIL NIL");
	return r | put(b, ")");
}

static int part_write(struct imap_buf *b, const struct mime_part *part, unsigned flags);

static int multipart(struct imap_buf *b, const struct mime_part *part, unsigned flags)
{
	int r = put(b, "(");
	if (part->children == NULL)   /* its body, as imap_section.c serves it for "1" */
		r |= made_up_body(b, part->body_size_crlf, part->body_lines, flags);
	for (const struct mime_part *c = part->children; c != NULL && r == 0; c = c->next)
		r |= part_write(b, c, flags);
	r |= put(b, " ");
	r |= str(b, part->subtype, flags);
	if (flags & IMAP_BS_EXTENDED) {
		r |= put(b, " ");
		r |= params(b, part->type_params, part->n_type_params, flags);
		r |= ext_common(b, part, flags);
	}
	return r | put(b, ")");
}

static int single(struct imap_buf *b, const struct mime_part *part, unsigned flags)
{
	bool text = strcmp(part->type, "text") == 0;
	bool message = strcmp(part->type, "message") == 0 &&
		(strcmp(part->subtype, "rfc822") == 0 ||
		 ((flags & IMAP_BS_GLOBAL) && strcmp(part->subtype, "global") == 0));
	int r = put(b, "(");
	r |= str(b, part->type, flags);
	r |= put(b, " ");
	r |= str(b, part->subtype, flags);
	r |= put(b, " ");
	r |= params(b, part->type_params, part->n_type_params, flags);
	r |= put(b, " ");
	r |= str(b, part->id, flags);
	r |= put(b, " ");
	r |= str(b, part->description, flags);
	r |= put(b, " ");
	r |= str(b, part->encoding != NULL ? part->encoding : "7bit", flags);
	r |= put(b, " ");
	r |= number(b, part->body_size_crlf);
	if (message) {
		const struct mime_part *inner = (part->flags & MIME_PART_MESSAGE) != 0 ?
			part->children : NULL;
		r |= put(b, " ");
		r |= imap_envelope_write(b, inner != NULL ? inner->envelope : NULL, flags);
		r |= put(b, " ");
		r |= inner != NULL ? part_write(b, inner, flags) :
			made_up_body(b, 0, 0, flags);
		r |= put(b, " ");
		r |= number(b, part->body_lines);
	} else if (text) {
		r |= put(b, " ");
		r |= number(b, part->body_lines);
	}
	if (flags & IMAP_BS_EXTENDED) {
		r |= put(b, " ");
		r |= str(b, part->md5, flags);
		r |= ext_common(b, part, flags);
	}
	return r | put(b, ")");
}

/* Recursion depth: the tree's, at most MIME_MAX_DEPTH (mime.h). */
static int part_write(struct imap_buf *b, const struct mime_part *part, unsigned flags)
{
	if (b->overflow)
		return -1;
	if (strcmp(part->type, "multipart") == 0)
		return multipart(b, part, flags);
	return single(b, part, flags);
}

int imap_bodystructure_write(struct imap_buf *b, const struct mime_part *root,
			     unsigned flags)
{
	return part_write(b, root, flags) == 0 && !b->overflow ? 0 : -1;
}
