/* A streaming RFC 5322 header-block parser: fed a message's bytes in any chunks, it
 * reports each header field and stops after the empty line that ends the header.  No
 * I/O; any chunking of the input gives the same fields.
 *
 * Tolerant as real servers are: LF or CRLF line ends (a lone CR is an ordinary byte), a
 * header without a body, a message without an empty line at all (all header), a line
 * without a colon (reported with no_colon set, name the whole line), spaces before the
 * colon ("Subject : x" is "Subject"), 8-bit bytes and NULs (values carry lengths; the
 * NUL-terminated copies are for convenience only), a first line starting with white
 * space (a field of its own).  A field longer than HEADER_FIELD_MAX is reported cut
 * (truncated set) and past HEADER_MAX_FIELDS fields are no longer reported; their bytes
 * are still counted, so every offset and size stays right. */
#ifndef POSTERN_HEADER_H
#define POSTERN_HEADER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct header_field {
	const char *name;    /* before the colon, trailing white space cut; NUL-terminated */
	size_t name_len;
	const char *raw;     /* after the colon up to the field's last line end (excluded),
	                        folding line ends kept; NUL-terminated */
	size_t raw_len;
	const char *value;   /* raw unfolded (line ends of folds removed), leading and
	                        trailing white space cut; NUL-terminated */
	size_t value_len;
	uint64_t offset;     /* of the field's first byte (base offset + position) */
	uint64_t size;       /* bytes of the whole field, its last line end included */
	bool no_colon;       /* a line without a colon: name is the line, value empty */
	bool truncated;      /* the field was longer than HEADER_FIELD_MAX: raw/value cut */
};

typedef void header_field_cb(void *ctx, const struct header_field *f);

struct header_size {
	uint64_t raw;        /* bytes of the header, the empty line included */
	uint64_t crlf;       /* the same with every bare LF counted as CRLF (IMAP sizes) */
	uint64_t lines;      /* its lines (a last line without line end counts) */
	uint64_t fields;     /* fields seen (reported or not) */
	bool ended;          /* the empty line was seen: a body follows (maybe empty) */
};

struct header_parser;

/* offset: where the header starts in the message (added to every field's offset). */
struct header_parser *header_parser_new(uint64_t offset);
void header_parser_free(struct header_parser **hp);
/* Feed bytes; cb gets each field once it is complete (the line after it does not start
 * with white space).  Returns the bytes consumed: all of len, or fewer when the empty
 * line ending the header is among them (the rest is body). */
size_t header_parser_feed(struct header_parser *hp, const char *data, size_t len,
			  header_field_cb *cb, void *ctx);
/* The input ended (or something else ended the header, e.g. a MIME boundary): report
 * the field still pending.  Nothing may be fed after it. */
void header_parser_finish(struct header_parser *hp, header_field_cb *cb, void *ctx);
/* True once the empty line was consumed. */
bool header_parser_done(const struct header_parser *hp);
void header_parser_size(const struct header_parser *hp, struct header_size *r);

/* Is the field named name (case-insensitive)? */
bool header_field_is(const struct header_field *f, const char *name);

#endif
