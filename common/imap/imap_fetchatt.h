/* The fetch-att forms with a section (RFC 9051 section 9, RFC 3516): BODY[section]<partial>,
 * BODY.PEEK[...], BINARY[...], BINARY.PEEK[...], BINARY.SIZE[...].  The command parser
 * (imap_parser.h) hands such an item over as one atom, brackets, spaces and all; this
 * makes its parts of it, strictly.  Header names in HEADER.FIELDS(.NOT) are astrings:
 * atoms or quoted strings (escapes undone into fields[]), each printable ASCII without
 * space; literal names are not supported (imap_parser.h).  No I/O, no allocation. */
#ifndef POSTERN_IMAP_FETCHATT_H
#define POSTERN_IMAP_FETCHATT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_SECTION_MAX_PARTS 32    /* BOUNDS: section-part nz-numbers kept */
#define IMAP_SECTION_MAX_FIELDS 256  /* BOUNDS: header names in HEADER.FIELDS (...) */
enum imap_section_text {
	IMAP_SECTION_ALL,            /* BODY[] or BODY[1.2] */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,
};
struct imap_fetch_section {
	enum { IMAP_FETCH_BODY, IMAP_FETCH_BINARY, IMAP_FETCH_BINARY_SIZE } kind;
	bool peek;
	uint32_t part[IMAP_SECTION_MAX_PARTS];
	size_t nparts;
	enum imap_section_text text;
	/* HEADER.FIELDS: the names, each a pointer into fields_buf (NUL-terminated) */
	const char *fields[IMAP_SECTION_MAX_FIELDS];
	size_t nfields;
	bool partial;
	uint64_t offset, length;   /* <offset.length>: number64, nz-number64 */
	char fields_buf[4096];     /* BOUNDS: names copied here; longer lists are refused */
};
/* Parse one fetch-att atom of those forms; 0, or -1 with *error_r (constant text). */
int imap_fetch_section_parse(const char *s, size_t len, struct imap_fetch_section *r,
			     const char **error_r);

#endif
