/* MIME: Content-Type / Content-Disposition parameters (mimeparam.c), a streaming parser
 * of a whole message into its part tree (mime.c), and a compact binary form of that tree
 * and of the envelope fields, for the index cache (mimeser.c).  No I/O.
 *
 * Offsets and sizes are in the message as stored (LF or CRLF line ends); the *_crlf sizes
 * count every bare LF as CRLF, as IMAP does.  A part's header runs from hdr_offset for
 * hdr_size bytes (its empty line included); its body follows at body_offset.  The line
 * end before a boundary line belongs to the boundary (RFC 2046 section 5.1.1), not to
 * the body before it.  body_lines counts the body's line ends, plus one for a last line
 * without one ("a\r\nb" and "a\r\nb\r\n" are 2 lines).
 *
 * A multipart whose boundary never occurs has no children (IMAP's BODYSTRUCTURE wants at
 * least one body: imapd must make one up, as Dovecot gives an empty text/plain).  Its
 * preamble and epilogue are in its body; so are the boundary lines.
 *
 * Limits (base/plimits.h): MIME_MAX_DEPTH, MIME_MAX_PARTS: beyond them the rest is one
 * leaf flagged MIME_PART_OPAQUE, never an error; MIME_MAX_PARAMS, MIME_VALUE_MAX,
 * MIME_MAX_LANGUAGES, ENVELOPE_FIELD_MAX: longer things are cut.  Memory is bounded by
 * these, independently of the message's size. */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parameter after RFC 2231 merging: name lowercase, without '*' or section; value the
 * decoded octets (charset: the one named in name*=, NULL if none; language likewise). */
struct mime_param {
	char *name;
	char *value;
	char *charset;
	char *language;
};

/* Parse a Content-Type value ("text/plain; charset=utf-8").  type/subtype lowercase.
 * -1 if it has no valid type/subtype (the caller then uses the default). */
int mimeparam_parse_type(const char *v, size_t len, char **type_r, char **subtype_r,
			 struct mime_param **params_r, unsigned *n_r);
/* Parse a Content-Disposition value ("attachment; filename=a.pdf"); disposition
 * lowercase.  -1 if there is no disposition token. */
int mimeparam_parse_disposition(const char *v, size_t len, char **disp_r,
				struct mime_param **params_r, unsigned *n_r);
/* The parameters of ";"-separated "name=value" pairs (RFC 2045 section 5.1, RFC 2231:
 * name*=charset'lang'%XX, continuations name*0, name*1*); at most MIME_MAX_PARAMS. */
void mimeparam_parse_params(const char *p, size_t len, struct mime_param **params_r,
			    unsigned *n_r);
/* Content-Language (RFC 3282): comma-separated tags, comments dropped. */
void mimeparam_parse_languages(const char *v, size_t len, char ***langs_r, unsigned *n_r);
void mimeparam_free(struct mime_param **params, unsigned n);
/* The value of parameter name, or NULL. */
const char *mimeparam_get(const struct mime_param *params, unsigned n, const char *name);
/* A kept string: at most MIME_VALUE_MAX bytes of s, NUL bytes become spaces. */
char *mimeparam_strdup(const char *s, size_t len);

/* What IMAP ENVELOPE is built from: the unfolded values of these fields (the first of
 * each); NULL if absent.  Values may hold any bytes; len[] gives their length. */
enum mail_envelope_field {
	ENV_DATE, ENV_SUBJECT, ENV_FROM, ENV_SENDER, ENV_REPLY_TO, ENV_TO, ENV_CC, ENV_BCC,
	ENV_IN_REPLY_TO, ENV_MESSAGE_ID, ENV_COUNT
};
struct mail_envelope_fields {
	char *value[ENV_COUNT];
	size_t len[ENV_COUNT];
};
extern const char *const mime_envelope_names[ENV_COUNT];
void mime_envelope_free(struct mail_envelope_fields **env);

enum mime_part_flags {
	MIME_PART_MULTIPART = 1 << 0,  /* children are the parts of a multipart */
	MIME_PART_MESSAGE   = 1 << 1,  /* message/rfc822 or message/global: one child, the
	                                  encapsulated message */
	MIME_PART_OPAQUE    = 1 << 2,  /* past a limit: not looked into */
	MIME_PART_DEFAULT_TYPE = 1 << 3, /* no (valid) Content-Type: the default applies */
	MIME_PART_NO_BODY   = 1 << 4,  /* the header had no empty line */
};
#define MIME_PART_FLAGS_ALL 0x1f

struct mime_part {
	struct mime_part *parent, *children, *next;
	uint32_t flags;
	uint32_t n_children;
	uint64_t hdr_offset, hdr_size, hdr_size_crlf;
	uint64_t body_offset, body_size, body_size_crlf, body_lines;
	char *type, *subtype;          /* lowercase, never NULL */
	struct mime_param *type_params;
	unsigned n_type_params;
	char *id, *description, *encoding, *md5, *location; /* NULL if absent; encoding
	                                                       lowercase */
	char *disposition;             /* lowercase; NULL if absent */
	struct mime_param *disp_params;
	unsigned n_disp_params;
	char **languages;
	unsigned n_languages;
	/* the envelope of an encapsulated message (the child of a MIME_PART_MESSAGE part);
	 * the top-level message's envelope is kept apart (mime_parser_finish) */
	struct mail_envelope_fields *envelope;
};

struct mime_parser;

struct mime_parser *mime_parser_new(void);
/* Feed the message in any chunks. */
void mime_parser_feed(struct mime_parser *p, const void *data, size_t len);
/* The input ended: the tree (never NULL), and the top-level envelope fields if env_r is
 * not NULL.  Frees the parser. */
void mime_parser_finish(struct mime_parser **p, struct mime_part **root_r,
			struct mail_envelope_fields **env_r);
void mime_parser_abort(struct mime_parser **p);
void mime_part_free(struct mime_part **root);
/* Parts in the tree (root included). */
unsigned mime_part_count(const struct mime_part *root);

/* The binary forms (mimeser.c), versioned.  Writing returns a malloc'd buffer; reading
 * treats the bytes as hostile and returns -1 with *error_r on anything malformed. */
unsigned char *mimeser_parts_write(const struct mime_part *root, size_t *len_r);
int mimeser_parts_read(const void *data, size_t len, struct mime_part **root_r,
		       const char **error_r);
unsigned char *mimeser_envelope_write(const struct mail_envelope_fields *env,
				      size_t *len_r);
int mimeser_envelope_read(const void *data, size_t len, struct mail_envelope_fields **r,
			  const char **error_r);
/* Deep comparison (tests, fuzz targets): true if equal. */
bool mimeser_parts_equal(const struct mime_part *a, const struct mime_part *b);
bool mimeser_envelope_equal(const struct mail_envelope_fields *a,
			    const struct mail_envelope_fields *b);

#endif
