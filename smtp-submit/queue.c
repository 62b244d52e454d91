/* The queue commands: -q (queue_run) and -bp (queue_list).  See deliver.h.
 *
 * ROOT (-q): it runs deliver.c's delivery on every due message; the listing reads only
 * envelopes (common/spool/, hostile input), as root or as the spool user. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/log.h"
#include "base/plimits.h"
#include "base/util.h"
#include "spool/envelope.h"
#include "spool/spool.h"
#include "deliver.h"
#include "deliver_int.h"

int queue_run(const struct config *cfg)
{
	struct deliver_ctx *dc;
	struct deliver_sigs sigs;
	struct spool_cleanup_stats cs;
	struct spool_iter *it;
	const char *err, *id;
	const struct envelope *env;
	int64_t now = time(NULL);

	deliver_signals_set(&sigs);
	if (deliver_ctx_open(cfg, &dc, &err) == -1) {
		log_err("queue-run: spool=%s, error=%s", cfg->spool_dir, err);
		deliver_signals_restore(&sigs);
		return 1;
	}
	struct spool *sp = deliver_ctx_spool(dc);
	if (spool_cleanup(sp, now, SPOOL_TMP_STALE_S, &cs, &err) == -1)
		log_warn("queue-run: cleanup failed: %s", err);
	else if (cs.removed > 0)
		log_info("queue-run: removed %u leftovers of crashes from tmp/", cs.removed);
	if (spool_iter_begin(sp, SPOOL_ITER_DUE, now, &it, &err) == -1) {
		log_err("queue-run: spool=%s, error=%s", cfg->spool_dir, err);
		deliver_ctx_free(&dc);
		deliver_signals_restore(&sigs);
		return 1;
	}
	/* the ids first: delivering changes the envelopes the walk would read */
	char (*ids)[SPOOL_ID_LEN + 1] = NULL;
	size_t n = 0, alloc = 0;
	unsigned bad = 0;
	while (spool_iter_next(it, &id, &env, &err) == 1) {
		if (env == NULL) {
			log_warn("%s: unreadable envelope, left for an administrator: %s", id, err);
			bad++;
			continue;
		}
		if (n == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;   /* BOUNDS: at most SPOOL_SCAN_MAX */
			ids = xrealloc(ids, alloc * sizeof(*ids));
		}
		snprintf(ids[n++], sizeof(ids[0]), "%s", id);
	}
	bool cut = spool_iter_truncated(it);
	spool_iter_end(&it);
	unsigned done = 0, locked_n = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		bool locked;
		if (deliver_one(dc, ids[i], 0, &locked, &err) == -1) {
			log_err("%s: delivery failed: %s", ids[i], err);
			failed++;
		} else if (locked) {
			locked_n++;
		} else {
			done++;
		}
	}
	free(ids);
	log_info("queue-run: due=%zu, handled=%u, locked=%u, errors=%u, bad=%u%s", n, done,
		 locked_n, failed, bad, cut ? ", truncated=yes" : "");
	deliver_ctx_free(&dc);
	deliver_signals_restore(&sigs);
	return 0;
}

/* long: "Sat Nov 28 10:00:00 2026" (arrival), else "2026-11-28 10:00:00" */
static void print_time(FILE *out, bool long_form, int64_t t)
{
	char buf[64];
	struct tm tm;
	time_t tt = (time_t)t;

	if (localtime_r(&tt, &tm) == NULL ||
	    (long_form ? strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm) :
	     strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm)) == 0)
		snprintf(buf, sizeof(buf), "%lld", (long long)t);
	fputs(buf, out);
}

/* One message as mailq shows it, with the state of each recipient. */
static void list_one(FILE *out, const char *id, const struct envelope *env)
{
	fprintf(out, "%-12s %9llu ", id, (unsigned long long)env->size);
	print_time(out, true, env->arrival);
	fprintf(out, "  <%s>%s%s\n", env->sender, env->auth != NULL ? " auth=" : "",
		env->auth != NULL ? env->auth : "");
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct envelope_rcpt *r = &env->rcpts[i];
		fprintf(out, "    <%s> %s %s, attempts %u", r->addr, envelope_kind_name(r->kind),
			envelope_state_name(r->state), r->attempts);
		if (r->state == ENVELOPE_DEFERRED) {
			fputs(", next try ", out);
			print_time(out, false, r->next_try);
		}
		if (r->inflight != 0) {
			fputs(", unfinished attempt since ", out);
			print_time(out, false, r->inflight);
		}
		fputc('\n', out);
		if (r->reply != NULL)
			fprintf(out, "        (%s%s%s)\n", r->reply, r->reply_mta != NULL ?
				" from " : "", r->reply_mta != NULL ? r->reply_mta : "");
	}
}

int queue_list(const struct config *cfg, FILE *out)
{
	struct spool *sp;
	struct spool_iter *it;
	const char *err, *id;
	const struct envelope *env;
	struct deliver_ids ids = { 0 };
	uid_t owner;
	gid_t group;

	/* root reads the spool as the spool user (deliver_int.h) */
	if (deliver_spool_uid(cfg, &owner, &group, &err) == -1 ||
	    deliver_ids_spool(&ids, owner, group, &err) == -1 ||
	    spool_open(cfg->spool_dir, owner, 0, &sp, &err) == -1) {
		deliver_ids_root(&ids);
		fprintf(stderr, "smtp-submit: spool %s: %s\n", cfg->spool_dir, err);
		return 1;
	}
	if (spool_iter_begin(sp, 0, time(NULL), &it, &err) == -1) {
		fprintf(stderr, "smtp-submit: spool %s: %s\n", cfg->spool_dir, err);
		spool_close(&sp);
		deliver_ids_root(&ids);
		return 1;
	}
	uint64_t bytes = 0;
	unsigned n = 0, bad = 0;
	while (spool_iter_next(it, &id, &env, &err) == 1) {
		if (n + bad == 0)
			fprintf(out, "-Queue ID-   --Size-- ----Arrival Time----------  "
				"-Sender/Recipient-------\n");
		if (env == NULL) {
			fprintf(out, "%-12s  (unreadable envelope: %s; left in place)\n", id, err);
			bad++;
			continue;
		}
		list_one(out, id, env);
		bytes += env->size;
		n++;
	}
	bool cut = spool_iter_truncated(it);
	spool_iter_end(&it);
	spool_close(&sp);
	deliver_ids_root(&ids);
	if (n + bad == 0) {
		fprintf(out, "Mail queue is empty\n");
		return 0;
	}
	fprintf(out, "-- %llu Kbytes in %u Request%s.", (unsigned long long)(bytes + 1023) / 1024,
		n, n == 1 ? "" : "s");
	if (bad > 0)
		fprintf(out, " %u with an unreadable envelope.", bad);
	if (cut)
		fprintf(out, " Listing cut at %u entries.", (unsigned)SPOOL_SCAN_MAX);
	fputc('\n', out);
	return 0;
}
