/* A message's parsed MIME structure and envelope fields through the index cache
 * (storage.h: mailbox_msg_parse and its two shorthands).  The cache entries are the
 * binary forms of mail/mimeser.c: INDEX_CACHE_BODYSTRUCTURE holds the part tree (with
 * the envelopes of encapsulated messages), INDEX_CACHE_ENVELOPE the top-level envelope
 * fields.  The index is shared by the user's sessions but its bytes are not trusted: an
 * entry must read back through the checking reader and its sizes must be the message's.
 *
 * A cache write takes the index lock and commits on its own (or, in a batch, many wait in
 * memory and go in one transaction); unlike mailbox_sync() it
 * never falls back to an index in memory when the commit fails (that would change
 * UIDVALIDITY under the session for the sake of a cache entry): the entry is just not
 * kept. */
#include <stdlib.h>
#include <string.h>
#include "base/log.h"
#include "base/util.h"
#include "mail/mime.h"
#include "storage/storage_int.h"

/* ---- batches (storage.h mailbox_cache_batch_begin) ---- */

struct cache_batch {
	unsigned depth;
	struct pend {
		uint32_t uid, field;
		size_t len;
		unsigned char *data;
	} *e;
	size_t n, alloc, bytes, msgs;
	uint64_t first_ms;
};

void mailbox_cache_batch_begin(struct mailbox *box)
{
	if (box->batch == NULL)
		box->batch = xcalloc(1, sizeof(*box->batch));
	box->batch->depth++;
}

void box_cache_batch_free(struct mailbox *box)
{
	struct cache_batch *b = box->batch;
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->e[i].data);
	free(b->e);
	free(b);
	box->batch = NULL;
}

static void batch_clear(struct cache_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->e[i].data);
	b->n = b->bytes = b->msgs = 0;
}

int box_cache_flush(struct mailbox *box, const char **error_r)
{
	struct cache_batch *b = box->batch;
	if (b == NULL || b->n == 0)
		return 0;
	int ret = box_lock(box, error_r);
	if (ret == 0) {
		for (size_t i = 0; i < b->n && ret == 0; i++)
			if (index_find(box->ix, b->e[i].uid, NULL) != NULL) /* else expunged */
				ret = index_cache_set(box->ix, b->e[i].uid, b->e[i].field,
						      b->e[i].data, b->e[i].len, error_r);
		if (ret == 0)
			ret = index_commit(box->ix, error_r);
		box_unlock(box);
	}
	if (ret == 0) {
		box->stats.cache_fills += b->msgs;
		box->stats.cache_commits++;
	} else {
		log_debug("cache-write-failed: %zu entries, error=%s", b->n, *error_r);
	}
	batch_clear(b);
	return ret;
}

/* Keep data (owned from now on) for the next flush. */
static void batch_put(struct mailbox *box, uint32_t uid, uint32_t field,
		      unsigned char *data, size_t len)
{
	struct cache_batch *b = box->batch;
	for (size_t i = 0; i < b->n; i++)
		if (b->e[i].uid == uid && b->e[i].field == field) {
			b->bytes -= b->e[i].len;
			free(b->e[i].data);
			b->e[i].data = data;
			b->e[i].len = len;
			b->bytes += len;
			return;
		}
	if (b->n == b->alloc) {
		b->alloc = b->alloc ? b->alloc * 2 : 32;
		b->e = xrealloc(b->e, b->alloc * sizeof(*b->e)); /* BOUNDS: n <= CACHE_BATCH*2 */
	}
	if (b->n == 0)
		b->first_ms = util_now_ms();
	b->e[b->n++] = (struct pend){ uid, field, len, data };
	b->bytes += len;
}

/* Written when full or old enough (a failure only costs a parse next time). */
static void batch_check(struct mailbox *box)
{
	struct cache_batch *b = box->batch;
	const char *error;
	if (b->n >= STORAGE_CACHE_BATCH || b->bytes >= STORAGE_CACHE_BATCH_BYTES ||
	    util_now_ms() - b->first_ms >= STORAGE_CACHE_BATCH_MS)
		(void)box_cache_flush(box, &error);
}

int mailbox_cache_batch_end(struct mailbox *box, const char **error_r)
{
	if (box->batch == NULL)
		return 0;
	if (--box->batch->depth > 0)
		return 0;
	int ret = box_cache_flush(box, error_r);
	box_cache_batch_free(box);
	return ret;
}

const void *mailbox_cache_get(const struct mailbox *box, uint32_t uid, uint32_t field,
			      size_t *len_r)
{
	const struct cache_batch *b = box->batch;
	for (size_t i = 0; b != NULL && i < b->n; i++)
		if (b->e[i].uid == uid && b->e[i].field == field) {
			*len_r = b->e[i].len;
			return b->e[i].data;
		}
	return index_cache_get(box->ix, uid, field, len_r);
}

int mailbox_cache_set(struct mailbox *box, uint32_t uid, uint32_t field, const void *data,
		      size_t len, const char **error_r)
{
	if (box->batch != NULL) {
		if (len > INDEX_CACHE_ENTRY_MAX || index_find(box->ix, uid, NULL) == NULL) {
			*error_r = len > INDEX_CACHE_ENTRY_MAX ? "index: cache entry refused" :
				"index: no such message";
			return -1;
		}
		unsigned char *copy = xmalloc(len + 1);
		memcpy(copy, data, len);
		batch_put(box, uid, field, copy, len);
		box->batch->msgs++;
		batch_check(box);
		return 0;
	}
	if (box_lock(box, error_r) == -1)
		return -1;
	if (index_cache_set(box->ix, uid, field, data, len, error_r) == -1) {
		box_unlock(box);
		return -1;
	}
	int ret = index_commit(box->ix, error_r);
	box_unlock(box);
	if (ret == 0) {
		box->stats.cache_fills++;
		box->stats.cache_commits++;
	}
	return ret;
}

/* ---- parsed structures ---- */

/* Does the tree cover exactly this message? */
static bool parts_fit(const struct index_rec *rec, const struct mime_part *root)
{
	return root->hdr_size + root->body_size == rec->raw &&
		(rec->size == INDEX_SIZE_UNKNOWN ||
		 root->hdr_size_crlf + root->body_size_crlf == rec->size);
}

static struct mime_part *cached_parts(struct mailbox *box, const struct index_rec *rec)
{
	size_t len;
	const char *error;
	struct mime_part *root = NULL;
	const void *d = mailbox_cache_get(box, rec->uid, INDEX_CACHE_BODYSTRUCTURE, &len);
	if (d == NULL)
		return NULL;
	if (mimeser_parts_read(d, len, &root, &error) == -1 || !parts_fit(rec, root)) {
		log_debug("cache-bad: uid=%u, field=bodystructure, error=%s", rec->uid,
			  root == NULL ? error : "sizes differ from the message");
		mime_part_free(&root);
		box->stats.cache_bad++;
		return NULL;
	}
	box->stats.cache_hits++;
	return root;
}

static struct mail_envelope_fields *cached_env(struct mailbox *box,
					       const struct index_rec *rec)
{
	size_t len;
	const char *error;
	struct mail_envelope_fields *env = NULL;
	const void *d = mailbox_cache_get(box, rec->uid, INDEX_CACHE_ENVELOPE, &len);
	if (d == NULL)
		return NULL;
	if (mimeser_envelope_read(d, len, &env, &error) == -1) {
		log_debug("cache-bad: uid=%u, field=envelope, error=%s", rec->uid, error);
		box->stats.cache_bad++;
		return NULL;
	}
	box->stats.cache_hits++;
	return env;
}

/* Read the message through the reader and parse it, streaming. */
static int parse_message(struct mailbox *box, uint32_t uid, struct mime_part **root_r,
			 struct mail_envelope_fields **env_r, const char **error_r)
{
	struct mail_reader *r;
	if (mailbox_msg_open(box, uid, &r, error_r) == -1)
		return -1;
	struct mime_parser *p = mime_parser_new();
	char *buf = xmalloc(IO_CHUNK);
	ssize_t n;
	while ((n = mail_reader_read(r, buf, IO_CHUNK, error_r)) > 0)
		mime_parser_feed(p, buf, (size_t)n);
	free(buf);
	mail_reader_close(&r);
	if (n < 0) {
		mime_parser_abort(&p);
		return -1;
	}
	mime_parser_finish(&p, root_r, env_r);
	box->stats.msgs_parsed++;
	return 0;
}

/* Keep what was missing; a failure only costs a parse next time. */
static void store(struct mailbox *box, uint32_t uid, const struct mime_part *root,
		  const struct mail_envelope_fields *env)
{
	if (root == NULL && env == NULL)
		return;
	size_t plen = 0, elen = 0;
	unsigned char *ps = root != NULL ? mimeser_parts_write(root, &plen) : NULL;
	unsigned char *es = env != NULL ? mimeser_envelope_write(env, &elen) : NULL;
	const char *error = "entry over INDEX_CACHE_ENTRY_MAX";

	if (plen > INDEX_CACHE_ENTRY_MAX || elen > INDEX_CACHE_ENTRY_MAX)
		goto fail;
	if (box->batch != NULL) {
		if (ps != NULL)
			batch_put(box, uid, INDEX_CACHE_BODYSTRUCTURE, ps, plen);
		if (es != NULL)
			batch_put(box, uid, INDEX_CACHE_ENVELOPE, es, elen);
		box->batch->msgs++;
		batch_check(box);
		return;
	}
	if (box_lock(box, &error) == -1)
		goto fail;
	if ((ps != NULL &&
	     index_cache_set(box->ix, uid, INDEX_CACHE_BODYSTRUCTURE, ps, plen, &error) == -1) ||
	    (es != NULL &&
	     index_cache_set(box->ix, uid, INDEX_CACHE_ENVELOPE, es, elen, &error) == -1) ||
	    index_commit(box->ix, &error) == -1) {
		box_unlock(box);
		goto fail;
	}
	box_unlock(box);
	box->stats.cache_fills++;
	box->stats.cache_commits++;
	free(ps);
	free(es);
	return;
fail:
	log_debug("cache-write-failed: uid=%u, error=%s", uid, error);
	free(ps);
	free(es);
}

int mailbox_msg_parse(struct mailbox *box, uint32_t uid, struct mime_part **parts_r,
		      struct mail_envelope_fields **env_r, const char **error_r)
{
	const struct index_rec *found = index_find(box->ix, uid, NULL);
	struct mime_part *root = NULL;
	struct mail_envelope_fields *env = NULL;

	if (found == NULL) {
		*error_r = "no such message";
		return -1;
	}
	struct index_rec rec = *found; /* the index may change under store() */
	rec.key = NULL;
	if (parts_r != NULL)
		root = cached_parts(box, &rec);
	if (env_r != NULL)
		env = cached_env(box, &rec);
	if ((parts_r == NULL || root != NULL) && (env_r == NULL || env != NULL))
		goto done;

	/* one parse gives both; cache whichever is missing (or was refused) */
	struct mime_part *proot;
	struct mail_envelope_fields *penv;
	if (parse_message(box, uid, &proot, &penv, error_r) == -1) {
		mime_part_free(&root);
		mime_envelope_free(&env);
		return -1;
	}
	bool want_parts = root == NULL &&
		(parts_r != NULL || mailbox_cache_get(box, uid, INDEX_CACHE_BODYSTRUCTURE,
						      &(size_t){ 0 }) == NULL);
	bool want_env = env == NULL &&
		(env_r != NULL || mailbox_cache_get(box, uid, INDEX_CACHE_ENVELOPE,
						    &(size_t){ 0 }) == NULL);
	if (!parts_fit(&rec, proot))
		want_parts = want_env = false; /* the message changed under us: keep nothing */
	store(box, uid, want_parts ? proot : NULL, want_env ? penv : NULL);
	if (root == NULL) {
		root = proot;
		proot = NULL;
	}
	if (env == NULL) {
		env = penv;
		penv = NULL;
	}
	mime_part_free(&proot);
	mime_envelope_free(&penv);
done:
	if (parts_r != NULL)
		*parts_r = root;
	else
		mime_part_free(&root);
	if (env_r != NULL)
		*env_r = env;
	else
		mime_envelope_free(&env);
	return 0;
}

int mailbox_msg_parts(struct mailbox *box, uint32_t uid, struct mime_part **r,
		      const char **error_r)
{
	return mailbox_msg_parse(box, uid, r, NULL, error_r);
}

int mailbox_msg_envelope(struct mailbox *box, uint32_t uid,
			 struct mail_envelope_fields **r, const char **error_r)
{
	return mailbox_msg_parse(box, uid, NULL, r, error_r);
}
