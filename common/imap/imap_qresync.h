/* The arguments of CONDSTORE and QRESYNC (RFC 7162) that are more than a word: the
 * SELECT/EXAMINE parameters and the FETCH modifiers, checked strictly against the
 * grammar (RFC 7162 section 7, RFC 4466 select-params and fetch-modifiers).  No I/O: the
 * daemon applies them (imapd/imap_mailbox.c, imap_fetch.c).
 *
 *   select-params = "(" select-param *(SP select-param) ")"
 *   select-param  = "CONDSTORE"
 *                 / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
 *                   [SP seq-match-data] ")"
 *   seq-match-data = "(" known-sequence-set SP known-uid-set ")"
 *   fetch-modifiers = "(" fetch-modifier *(SP fetch-modifier) ")"
 *   fetch-modifier  = "CHANGEDSINCE" SP mod-sequence-value / "VANISHED"
 * Sets here are of numbers: "*" and "$" are refused (RFC 7162 7: "*" is not allowed).
 * A mod-sequence is at most 2^63 - 1 (RFC 7162 3.1). */
#ifndef POSTERN_IMAP_QRESYNC_H
#define POSTERN_IMAP_QRESYNC_H
#include <stdbool.h>
#include <stdint.h>
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"

#define IMAP_MODSEQ_MAX INT64_MAX

struct imap_select_params {
	bool condstore;
	bool qresync;
	uint32_t uidvalidity;
	uint64_t modseq;               /* 0 is taken (1*DIGIT): every change */
	bool have_known;               /* known-uids given (else 1:UIDNEXT-1) */
	struct imap_seqset known;
	bool have_match;               /* seq-match-data given */
	struct imap_seqset match_seqs, match_uids;
};

void imap_select_params_init(struct imap_select_params *p);
void imap_select_params_free(struct imap_select_params *p);
/* a: the list after the mailbox name.  0, or -1 with *error_r (constant text); p holds
 * what was parsed so far either way (free it). */
int imap_select_params_parse(const struct imap_arg *a, struct imap_select_params *p,
			     const char **error_r);

struct imap_fetch_mods {
	uint64_t changedsince;         /* 0: not given */
	bool vanished;
};
/* a: the list after the FETCH items.  0, or -1 with *error_r (constant text).  The
 * rules that depend on the session (VANISHED only in UID FETCH, with CHANGEDSINCE, after
 * ENABLE QRESYNC) are the caller's. */
int imap_fetch_mods_parse(const struct imap_arg *a, struct imap_fetch_mods *m,
			  const char **error_r);

#endif
