/* The binary forms of a part tree and of envelope fields (mime.h), kept in the index
 * cache.  The cache is written by the user's own processes but may be corrupt (a torn
 * disk, another version, a bug): reading checks every length, count, limit and offset,
 * so a tree that reads back is one the parser could have made.
 *
 * Part tree, version 1: byte 1, then the root part; a part is
 *   varint flags, hdr_offset, hdr_size, hdr_size_crlf, body_size, body_size_crlf,
 *          body_lines                  (body_offset = hdr_offset + hdr_size)
 *   str type, str subtype
 *   varint which of id, description, encoding, md5, location, disposition, envelope
 *          follow (bits 0..6), each str (the envelope: as below, without its version)
 *   varint n, n params; varint n, n disposition params (param: str name, str value,
 *          varint bit 0 charset, bit 1 language, each str)
 *   varint n, n language strs
 *   varint n children, each a part
 * str: varint length, bytes.  Envelope, version 1: byte 1, varint bits of the fields
 * present (enum mail_envelope_field), each str. */
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "base/util.h"
#include "mail/mime.h"

#define MIMESER_VERSION 1
#define ENVSER_VERSION 1
#define OPT_STRINGS 6
#define OPT_ENVELOPE (1u << 6)

struct wbuf {
	unsigned char *d;
	size_t len, size;
};

static void put(struct wbuf *w, const void *p, size_t n)
{
	if (n > w->size - w->len) {
		while (n > w->size - w->len)
			w->size = w->size == 0 ? 256 : w->size * 2;
		w->d = xrealloc(w->d, w->size);
	}
	memcpy(w->d + w->len, p, n); /* BOUNDS: grown above */
	w->len += n;
}

static void put_varint(struct wbuf *w, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;
	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	put(w, b, n);
}

static void put_str(struct wbuf *w, const char *s, size_t len)
{
	put_varint(w, len);
	put(w, s, len);
}

static void put_cstr(struct wbuf *w, const char *s)
{
	put_str(w, s, strlen(s));
}

static void put_envelope(struct wbuf *w, const struct mail_envelope_fields *env)
{
	uint64_t bits = 0;
	for (int i = 0; i < ENV_COUNT; i++)
		if (env->value[i] != NULL)
			bits |= 1u << i;
	put_varint(w, bits);
	for (int i = 0; i < ENV_COUNT; i++)
		if (env->value[i] != NULL)
			put_str(w, env->value[i], env->len[i]);
}

static void put_params(struct wbuf *w, const struct mime_param *ps, unsigned n)
{
	put_varint(w, n);
	for (unsigned i = 0; i < n; i++) {
		put_cstr(w, ps[i].name);
		put_cstr(w, ps[i].value);
		put_varint(w, (ps[i].charset != NULL ? 1u : 0) | (ps[i].language != NULL ? 2u : 0));
		if (ps[i].charset != NULL)
			put_cstr(w, ps[i].charset);
		if (ps[i].language != NULL)
			put_cstr(w, ps[i].language);
	}
}

static void put_part(struct wbuf *w, const struct mime_part *part, bool root)
{
	const char *opt[OPT_STRINGS] = { part->id, part->description, part->encoding,
					 part->md5, part->location, part->disposition };
	uint64_t bits = 0;

	put_varint(w, part->flags);
	put_varint(w, part->hdr_offset);
	put_varint(w, part->hdr_size);
	put_varint(w, part->hdr_size_crlf);
	put_varint(w, part->body_size);
	put_varint(w, part->body_size_crlf);
	put_varint(w, part->body_lines);
	put_cstr(w, part->type);
	put_cstr(w, part->subtype);
	for (int i = 0; i < OPT_STRINGS; i++)
		if (opt[i] != NULL)
			bits |= 1u << i;
	if (part->envelope != NULL && !root)
		bits |= OPT_ENVELOPE;
	put_varint(w, bits);
	for (int i = 0; i < OPT_STRINGS; i++)
		if (opt[i] != NULL)
			put_cstr(w, opt[i]);
	if ((bits & OPT_ENVELOPE) != 0)
		put_envelope(w, part->envelope);
	put_params(w, part->type_params, part->n_type_params);
	put_params(w, part->disp_params, part->n_disp_params);
	put_varint(w, part->n_languages);
	for (unsigned i = 0; i < part->n_languages; i++)
		put_cstr(w, part->languages[i]);
	put_varint(w, part->n_children);
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		put_part(w, c, false); /* BOUNDS: depth <= MIME_MAX_DEPTH */
}

unsigned char *mimeser_parts_write(const struct mime_part *root, size_t *len_r)
{
	struct wbuf w = { 0 };
	unsigned char v = MIMESER_VERSION;
	put(&w, &v, 1);
	put_part(&w, root, true);
	*len_r = w.len;
	return w.d;
}

unsigned char *mimeser_envelope_write(const struct mail_envelope_fields *env,
				      size_t *len_r)
{
	struct wbuf w = { 0 };
	unsigned char v = ENVSER_VERSION;
	put(&w, &v, 1);
	put_envelope(&w, env);
	*len_r = w.len;
	return w.d;
}

/* ---- reading ---- */

struct rbuf {
	const unsigned char *p, *end;
	unsigned parts;
	const char *error;
};

static bool fail(struct rbuf *r, const char *why)
{
	if (r->error == NULL)
		r->error = why;
	return false;
}

static bool get_varint(struct rbuf *r, uint64_t *v_r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return fail(r, "truncated");
		unsigned char b = *r->p++;
		if (shift == 63 && b > 1)
			return fail(r, "number too large");
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			if (b == 0 && shift > 0)
				return fail(r, "overlong number");
			*v_r = v;
			return true;
		}
	}
	return fail(r, "number too long");
}

static bool get_count(struct rbuf *r, uint64_t max, unsigned *n_r)
{
	uint64_t v;
	if (!get_varint(r, &v))
		return false;
	if (v > max)
		return fail(r, "count over its limit");
	*n_r = (unsigned)v;
	return true;
}

/* A string of at most max bytes; text: no NUL, not empty if need. */
static bool get_str(struct rbuf *r, size_t max, bool text, bool nonempty, char **s_r,
		    size_t *len_r)
{
	uint64_t len;
	if (!get_varint(r, &len))
		return false;
	if (len > max || len > (uint64_t)(r->end - r->p))
		return fail(r, "string too long");
	if (nonempty && len == 0)
		return fail(r, "empty string");
	if (text && memchr(r->p, '\0', len) != NULL)
		return fail(r, "NUL in a string");
	char *s = xmalloc(len + 1);
	memcpy(s, r->p, len);
	s[len] = '\0';
	r->p += len;
	*s_r = s;
	if (len_r != NULL)
		*len_r = len;
	return true;
}

static bool get_envelope(struct rbuf *r, struct mail_envelope_fields **env_r)
{
	uint64_t bits;
	if (!get_varint(r, &bits))
		return false;
	if (bits >= (1u << ENV_COUNT))
		return fail(r, "unknown envelope field");
	struct mail_envelope_fields *env = xcalloc(1, sizeof(*env));
	*env_r = env;
	for (int i = 0; i < ENV_COUNT; i++)
		if ((bits & (1u << i)) != 0 &&
		    !get_str(r, ENVELOPE_FIELD_MAX, false, false, &env->value[i], &env->len[i]))
			return false;
	return true;
}

static bool get_params(struct rbuf *r, struct mime_param **ps_r, unsigned *n_r)
{
	unsigned n;
	if (!get_count(r, MIME_MAX_PARAMS, &n))
		return false;
	if (n == 0)
		return true;
	struct mime_param *ps = xcalloc(n, sizeof(*ps));
	*ps_r = ps;
	*n_r = n;
	for (unsigned i = 0; i < n; i++) {
		uint64_t bits;
		if (!get_str(r, MIME_VALUE_MAX, true, true, &ps[i].name, NULL) ||
		    !get_str(r, MIME_VALUE_MAX, true, false, &ps[i].value, NULL) ||
		    !get_varint(r, &bits))
			return false;
		if (bits > 3)
			return fail(r, "unknown parameter bits");
		if ((bits & 1) != 0 &&
		    !get_str(r, MIME_VALUE_MAX, true, false, &ps[i].charset, NULL))
			return false;
		if ((bits & 2) != 0 &&
		    !get_str(r, MIME_VALUE_MAX, true, false, &ps[i].language, NULL))
			return false;
	}
	return true;
}

static bool check_sizes(struct rbuf *r, const struct mime_part *part)
{
	const uint64_t lim = (uint64_t)1 << 62;
	if (part->hdr_offset > lim || part->hdr_size > lim || part->body_size > lim)
		return fail(r, "offset out of range");
	if (part->hdr_size_crlf < part->hdr_size ||
	    part->hdr_size_crlf - part->hdr_size > part->hdr_size ||
	    part->body_size_crlf < part->body_size ||
	    part->body_size_crlf - part->body_size > part->body_size ||
	    part->body_lines > part->body_size)
		return fail(r, "inconsistent sizes");
	return true;
}

/* Children must lie in order inside the parent's body; a message's one child starts
 * right at its body. */
static bool check_child(struct rbuf *r, const struct mime_part *parent,
			const struct mime_part *prev, const struct mime_part *c)
{
	uint64_t start = prev != NULL ? prev->body_offset + prev->body_size :
		parent->body_offset;
	uint64_t pend = parent->body_offset + parent->body_size;
	if (c->hdr_offset < start || c->body_offset + c->body_size > pend)
		return fail(r, "part outside its parent");
	if ((parent->flags & MIME_PART_MESSAGE) != 0 && c->hdr_offset != parent->body_offset)
		return fail(r, "message part does not start at its parent's body");
	return true;
}

static bool get_part(struct rbuf *r, struct mime_part *parent, unsigned depth,
		     struct mime_part **part_r)
{
	uint64_t flags, bits;
	char *opt[OPT_STRINGS] = { NULL };

	if (++r->parts > MIME_MAX_PARTS)
		return fail(r, "too many parts");
	if (depth > MIME_MAX_DEPTH)
		return fail(r, "parts nested too deep");
	struct mime_part *part = xcalloc(1, sizeof(*part));
	*part_r = part;
	part->parent = parent;
	if (!get_varint(r, &flags) || !get_varint(r, &part->hdr_offset) ||
	    !get_varint(r, &part->hdr_size) || !get_varint(r, &part->hdr_size_crlf) ||
	    !get_varint(r, &part->body_size) || !get_varint(r, &part->body_size_crlf) ||
	    !get_varint(r, &part->body_lines))
		return false;
	if ((flags & ~(uint64_t)MIME_PART_FLAGS_ALL) != 0 ||
	    ((flags & MIME_PART_MULTIPART) != 0 && (flags & MIME_PART_MESSAGE) != 0))
		return fail(r, "bad part flags");
	part->flags = (uint32_t)flags;
	if (!check_sizes(r, part))
		return false;
	part->body_offset = part->hdr_offset + part->hdr_size;
	if (parent == NULL && part->hdr_offset != 0)
		return fail(r, "the message does not start at 0");
	if (!get_str(r, MIME_VALUE_MAX, true, true, &part->type, NULL) ||
	    !get_str(r, MIME_VALUE_MAX, true, true, &part->subtype, NULL) ||
	    !get_varint(r, &bits))
		return false;
	if (bits >= (OPT_ENVELOPE << 1))
		return fail(r, "unknown optional fields");
	for (int i = 0; i < OPT_STRINGS; i++)
		if ((bits & (1u << i)) != 0 &&
		    !get_str(r, MIME_VALUE_MAX, true, false, &opt[i], NULL))
			goto fail_opt;
	part->id = opt[0];
	part->description = opt[1];
	part->encoding = opt[2];
	part->md5 = opt[3];
	part->location = opt[4];
	part->disposition = opt[5];
	if ((bits & OPT_ENVELOPE) != 0) {
		if (parent == NULL || (parent->flags & MIME_PART_MESSAGE) == 0)
			return fail(r, "envelope on a part that is no message");
		if (!get_envelope(r, &part->envelope))
			return false;
	}
	if (!get_params(r, &part->type_params, &part->n_type_params) ||
	    !get_params(r, &part->disp_params, &part->n_disp_params) ||
	    !get_count(r, MIME_MAX_LANGUAGES, &part->n_languages))
		return false;
	if (part->n_languages > 0) {
		part->languages = xcalloc(part->n_languages, sizeof(char *));
		for (unsigned i = 0; i < part->n_languages; i++)
			if (!get_str(r, MIME_VALUE_MAX, true, true, &part->languages[i], NULL))
				return false;
	}
	unsigned n;
	if (!get_count(r, MIME_MAX_PARTS, &n))
		return false;
	if ((flags & MIME_PART_MESSAGE) != 0 ? n != 1 :
	    (flags & MIME_PART_MULTIPART) == 0 && n != 0)
		return fail(r, "wrong number of children");
	struct mime_part *prev = NULL;
	for (unsigned i = 0; i < n; i++) {
		struct mime_part *c = NULL;
		bool ok = get_part(r, part, depth + 1, &c);
		if (c != NULL) {
			if (prev == NULL)
				part->children = c;
			else
				prev->next = c;
			part->n_children++;
		}
		if (!ok || !check_child(r, part, prev, c))
			return false;
		prev = c;
	}
	return true;
fail_opt:
	for (int i = 0; i < OPT_STRINGS; i++)
		free(opt[i]);
	return false;
}

int mimeser_parts_read(const void *data, size_t len, struct mime_part **root_r,
		       const char **error_r)
{
	struct rbuf r = { data, (const unsigned char *)data + len, 0, NULL };
	struct mime_part *root = NULL;

	if (len < 1 || r.p[0] != MIMESER_VERSION) {
		*error_r = "unknown part tree version";
		return -1;
	}
	r.p++;
	if (!get_part(&r, NULL, 1, &root) || (r.p != r.end && !fail(&r, "trailing bytes"))) {
		mime_part_free(&root);
		*error_r = r.error;
		return -1;
	}
	*root_r = root;
	return 0;
}

int mimeser_envelope_read(const void *data, size_t len, struct mail_envelope_fields **env_r,
			  const char **error_r)
{
	struct rbuf r = { data, (const unsigned char *)data + len, 0, NULL };
	struct mail_envelope_fields *env = NULL;

	if (len < 1 || r.p[0] != ENVSER_VERSION) {
		*error_r = "unknown envelope version";
		return -1;
	}
	r.p++;
	if (!get_envelope(&r, &env) || (r.p != r.end && !fail(&r, "trailing bytes"))) {
		mime_envelope_free(&env);
		*error_r = r.error;
		return -1;
	}
	*env_r = env;
	return 0;
}

/* ---- comparing ---- */

static bool str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool mimeser_envelope_equal(const struct mail_envelope_fields *a,
			    const struct mail_envelope_fields *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	for (int i = 0; i < ENV_COUNT; i++) {
		if ((a->value[i] == NULL) != (b->value[i] == NULL))
			return false;
		if (a->value[i] != NULL && (a->len[i] != b->len[i] ||
					    memcmp(a->value[i], b->value[i], a->len[i]) != 0))
			return false;
	}
	return true;
}

static bool params_eq(const struct mime_param *a, unsigned na, const struct mime_param *b,
		      unsigned nb)
{
	if (na != nb)
		return false;
	for (unsigned i = 0; i < na; i++)
		if (!str_eq(a[i].name, b[i].name) || !str_eq(a[i].value, b[i].value) ||
		    !str_eq(a[i].charset, b[i].charset) ||
		    !str_eq(a[i].language, b[i].language))
			return false;
	return true;
}

bool mimeser_parts_equal(const struct mime_part *a, const struct mime_part *b)
{
	for (; a != NULL && b != NULL; a = a->next, b = b->next) {
		if (a->flags != b->flags || a->n_children != b->n_children ||
		    a->hdr_offset != b->hdr_offset || a->hdr_size != b->hdr_size ||
		    a->hdr_size_crlf != b->hdr_size_crlf || a->body_offset != b->body_offset ||
		    a->body_size != b->body_size || a->body_size_crlf != b->body_size_crlf ||
		    a->body_lines != b->body_lines || !str_eq(a->type, b->type) ||
		    !str_eq(a->subtype, b->subtype) || !str_eq(a->id, b->id) ||
		    !str_eq(a->description, b->description) ||
		    !str_eq(a->encoding, b->encoding) || !str_eq(a->md5, b->md5) ||
		    !str_eq(a->location, b->location) ||
		    !str_eq(a->disposition, b->disposition) ||
		    !params_eq(a->type_params, a->n_type_params, b->type_params,
			       b->n_type_params) ||
		    !params_eq(a->disp_params, a->n_disp_params, b->disp_params,
			       b->n_disp_params) ||
		    a->n_languages != b->n_languages ||
		    (a->parent != NULL && !mimeser_envelope_equal(a->envelope, b->envelope)))
			return false;
		for (unsigned i = 0; i < a->n_languages; i++)
			if (!str_eq(a->languages[i], b->languages[i]))
				return false;
		if (!mimeser_parts_equal(a->children, b->children))
			return false;
		if (a->parent == NULL)
			return b->parent == NULL;
	}
	return a == NULL && b == NULL;
}
