/* CONDSTORE/QRESYNC arguments: grammar in imap_qresync.h. */
#include <string.h>
#include "imap/imap_qresync.h"

void imap_select_params_init(struct imap_select_params *p)
{
	memset(p, 0, sizeof(*p));
	imap_seqset_init(&p->known);
	imap_seqset_init(&p->match_seqs);
	imap_seqset_init(&p->match_uids);
}

void imap_select_params_free(struct imap_select_params *p)
{
	imap_seqset_free(&p->known);
	imap_seqset_free(&p->match_seqs);
	imap_seqset_free(&p->match_uids);
}

static int modseq_arg(const struct imap_arg *a, uint64_t *r)
{
	return imap_arg_number64(a, r) < 0 || *r > IMAP_MODSEQ_MAX ? -1 : 0;
}

/* A sequence set of plain numbers (no "*", no "$"). */
static int number_set(const struct imap_arg *a, struct imap_seqset *set, const char **error_r)
{
	if (a->type != IMAP_ARG_ATOM || memchr(a->str, '*', a->len) != NULL) {
		*error_r = "Invalid set of UIDs or numbers.";
		return -1;
	}
	return imap_seqset_parse(set, a->str, a->len, 0, NULL, error_r);
}

static int qresync_param(const struct imap_arg *a, struct imap_select_params *p,
			 const char **error_r)
{
	const struct imap_arg *l = a->list;
	uint32_t uidvalidity;

	if (a->type != IMAP_ARG_LIST || a->count < 2 || a->count > 4 ||
	    imap_arg_nz_number(&l[0], &uidvalidity) < 0 || modseq_arg(&l[1], &p->modseq) < 0) {
		*error_r = "Usage: QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)])";
		return -1;
	}
	p->uidvalidity = uidvalidity;
	size_t i = 2;
	if (i < a->count && l[i].type == IMAP_ARG_ATOM) {
		if (number_set(&l[i], &p->known, error_r) < 0)
			return -1;
		p->have_known = true;
		i++;
	}
	if (i < a->count) {
		const struct imap_arg *m = &l[i];
		if (m->type != IMAP_ARG_LIST || m->count != 2 ||
		    number_set(&m->list[0], &p->match_seqs, error_r) < 0 ||
		    number_set(&m->list[1], &p->match_uids, error_r) < 0) {
			*error_r = "Invalid QRESYNC sequence match data.";
			return -1;
		}
		p->have_match = true;
		i++;
	}
	if (i != a->count) {
		*error_r = "Invalid QRESYNC parameter.";
		return -1;
	}
	return 0;
}

int imap_select_params_parse(const struct imap_arg *a, struct imap_select_params *p,
			     const char **error_r)
{
	if (a->type != IMAP_ARG_LIST || a->count == 0) {
		*error_r = "Invalid SELECT parameters.";
		return -1;
	}
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *e = &a->list[i];
		if (imap_arg_is_atom(e, "CONDSTORE") && !p->condstore) {
			p->condstore = true;
		} else if (imap_arg_is_atom(e, "QRESYNC") && !p->qresync && i + 1 < a->count) {
			if (qresync_param(&a->list[++i], p, error_r) < 0)
				return -1;
			p->qresync = true;
		} else {
			*error_r = "Unknown or repeated SELECT parameter.";
			return -1;
		}
	}
	return 0;
}

int imap_fetch_mods_parse(const struct imap_arg *a, struct imap_fetch_mods *m,
			  const char **error_r)
{
	memset(m, 0, sizeof(*m));
	if (a->type != IMAP_ARG_LIST || a->count == 0) {
		*error_r = "Invalid FETCH modifiers.";
		return -1;
	}
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *e = &a->list[i];
		if (imap_arg_is_atom(e, "CHANGEDSINCE") && m->changedsince == 0 &&
		    i + 1 < a->count) {
			if (modseq_arg(&a->list[++i], &m->changedsince) < 0 ||
			    m->changedsince == 0) {
				*error_r = "Invalid CHANGEDSINCE mod-sequence.";
				return -1;
			}
		} else if (imap_arg_is_atom(e, "VANISHED") && !m->vanished) {
			m->vanished = true;
		} else {
			*error_r = "Unknown or repeated FETCH modifier.";
			return -1;
		}
	}
	return 0;
}
