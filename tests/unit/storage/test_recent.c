/* \Recent claims (storage.h mailbox_claim_recent, RFC 3501 2.3.2): two openers of one
 * folder (two handles in one process, then two processes racing for the index lock):
 * each recent message goes to exactly one of them; the claim is no flag change (no new
 * MODSEQ, nothing for the other opener to report); a flag change keeps \Recent; a UID
 * above the claimer's limit is left for later; a message delivered afterwards is recent
 * again.  Both backends. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/util.h"
#include "storage/storage.h"
#include "unit.h"

static char tmpdir[64];

static void put_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1);
	CHECK(util_write_all(fd, data, strlen(data)) == 0);
	close(fd);
}

/* A store whose INBOX holds n messages, as an MTA delivered them. */
static struct mail_storage *make_store(const char *kind, int n)
{
	char root[256], p[512], loc[512];
	const char *err;
	struct mail_storage *st = NULL;
	snprintf(root, sizeof(root), "%s/%s", tmpdir, kind);
	mkdir(root, 0700);
	if (strcmp(kind, "maildir") == 0) {
		static const char *const subs[] = { "", "/new", "/cur", "/tmp" };
		for (int i = 0; i < 4; i++) {
			snprintf(p, sizeof(p), "%s/Maildir%s", root, subs[i]);
			mkdir(p, 0700);
		}
		for (int i = 1; i <= n; i++) {
			char body[64];
			snprintf(p, sizeof(p), "%s/Maildir/new/17000000%02d.M%dP1.host", root, i, i);
			snprintf(body, sizeof(body), "Subject: m%d\n\nbody %d\n", i, i);
			put_file(p, body);
		}
		snprintf(loc, sizeof(loc), "maildir:%s/Maildir", root);
	} else {
		char *spool = xcalloc(1, (size_t)n * 128 + 1);
		for (int i = 1; i <= n; i++) {
			char m[128];
			snprintf(m, sizeof(m), "From a@b Mon Jan  1 00:00:00 2024\nSubject: m%d\n\n"
				 "body %d\n\n", i, i);
			strcat(spool, m);
		}
		snprintf(p, sizeof(p), "%s/spool", root);
		put_file(p, spool);
		free(spool);
		snprintf(loc, sizeof(loc), "mbox:%s/spool", root);
	}
	CHECK(storage_locate(loc, "ned", root, &st, &err) == 0);
	return st;
}

static uint32_t save(struct mailbox *box, const char *text)
{
	struct mail_save *s;
	const char *err;
	uint32_t uid = 0;
	CHECK(mailbox_save_begin(box, 0, 0, &s, &err) == 0);
	CHECK(mail_save_write(s, text, strlen(text), &err) == 0);
	CHECK(mail_save_finish(&s, &uid, &err) == 0);
	return uid;
}

static size_t count_recent(struct mailbox *box)
{
	size_t n = 0;
	for (size_t i = 0; i < mailbox_count(box); i++)
		n += !!(mailbox_get(box, i)->flags & INDEX_FLAG_RECENT);
	return n;
}

static void test_two_handles(const char *kind)
{
	const char *err;
	uint32_t *uids;
	size_t n;
	struct mail_storage *st = make_store(kind, 3);
	struct mailbox *a, *b, *c;

	CHECK(mailbox_open(st, "INBOX", &a, &err) == 0);
	CHECK(mailbox_open(st, "INBOX", &b, &err) == 0);
	CHECK(mailbox_count(a) == 3 && count_recent(a) == 3);
	uint64_t hms = mailbox_hdr(a)->highestmodseq;
	uint64_t ms2 = mailbox_find(a, 2, NULL)->modseq;

	/* a flag change is not a claim */
	CHECK(mailbox_set_flags(b, 2, INDEX_FLAG_FLAGGED, 0, &err) == 0);
	CHECK(mailbox_find(b, 2, NULL)->flags == (INDEX_FLAG_FLAGGED | INDEX_FLAG_RECENT));
	hms++;
	ms2 = mailbox_find(b, 2, NULL)->modseq;

	/* A claims up to UID 2 only: 3 is left */
	CHECK(mailbox_claim_recent(a, 2, &uids, &n, &err) == 0);
	CHECK(n == 2 && uids[0] == 1 && uids[1] == 2);
	free(uids);
	CHECK(mailbox_find(a, 2, NULL)->flags == INDEX_FLAG_FLAGGED);
	/* no new MODSEQ: nothing for B to report as a change */
	CHECK(mailbox_hdr(a)->highestmodseq == hms);
	CHECK(mailbox_find(a, 2, NULL)->modseq == ms2);
	struct index_changes ch;
	CHECK(mailbox_sync(b, &ch, &err) == 0);
	CHECK(mailbox_hdr(b)->highestmodseq == hms);
	for (size_t i = 0; i < ch.n_changed; i++) {
		const struct index_rec *r = mailbox_find(b, ch.changed[i], NULL);
		CHECK(r != NULL && r->modseq <= ms2);
	}
	CHECK(ch.n_added == 0 && ch.n_expunged == 0);
	index_changes_free(&ch);

	/* B gets what A left; A, then B again, get nothing */
	CHECK(mailbox_claim_recent(b, UINT32_MAX, &uids, &n, &err) == 0);
	CHECK(n == 1 && uids[0] == 3);
	free(uids);
	CHECK(mailbox_claim_recent(a, UINT32_MAX, &uids, &n, &err) == 0);
	CHECK(n == 0 && uids == NULL);
	CHECK(mailbox_claim_recent(b, UINT32_MAX, &uids, &n, &err) == 0);
	CHECK(n == 0);
	/* a third opener (a new session's SELECT) finds nothing recent */
	CHECK(mailbox_open(st, "INBOX", &c, &err) == 0);
	CHECK(count_recent(c) == 0);

	/* a new message is recent again, for whoever claims first */
	CHECK(save(c, "Subject: four\n\nfour\n") == 4);
	CHECK(mailbox_sync(a, NULL, &err) == 0);
	CHECK(count_recent(a) == 1);
	CHECK(mailbox_claim_recent(b, 3, &uids, &n, &err) == 0);   /* B has not seen it */
	CHECK(n == 0);
	CHECK(mailbox_claim_recent(a, 4, &uids, &n, &err) == 0);
	CHECK(n == 1 && uids[0] == 4);
	free(uids);
	CHECK(mailbox_claim_recent(c, 4, &uids, &n, &err) == 0);
	CHECK(n == 0);

	/* a claim survives a reopen (it is in the index on disk), and a rescan */
	mailbox_close(&c);
	CHECK(mailbox_open(st, "INBOX", &c, &err) == 0);
	CHECK(count_recent(c) == 0 && mailbox_count(c) == 4);
	mailbox_close(&a);
	mailbox_close(&b);
	mailbox_close(&c);
	storage_free(&st);
}

/* Two processes claim at once, over and over while messages arrive: every UID is claimed
 * by exactly one. */
#define RACE_MSGS 40
static void test_two_processes(const char *kind)
{
	const char *err;
	char sub[64];
	snprintf(sub, sizeof(sub), "%s-race", kind);
	struct mail_storage *st = make_store(sub, 10);
	int fds[2][2];
	pid_t pid[2];

	for (int k = 0; k < 2; k++) {
		CHECK(pipe(fds[k]) == 0);
		pid[k] = fork();
		if (pid[k] == 0) {
			struct mailbox *box;
			unsigned char got[RACE_MSGS + 1] = { 0 };
			if (mailbox_open(st, "INBOX", &box, &err) != 0)
				_exit(2);
			for (int round = 0; round < 30; round++) {
				uint32_t *uids;
				size_t n;
				if (k == 0 && round < RACE_MSGS - 10) {
					char m[64];
					snprintf(m, sizeof(m), "Subject: r%d\n\nr\n", round);
					struct mail_save *s;
					uint32_t uid;
					if (mailbox_save_begin(box, 0, 0, &s, &err) != 0 ||
					    mail_save_write(s, m, strlen(m), &err) != 0 ||
					    mail_save_finish(&s, &uid, &err) != 0)
						_exit(3);
				}
				if (mailbox_sync(box, NULL, &err) != 0 ||
				    mailbox_claim_recent(box, UINT32_MAX, &uids, &n, &err) != 0)
					_exit(4);
				for (size_t i = 0; i < n; i++)
					if (uids[i] <= RACE_MSGS)
						got[uids[i]] = 1;
				free(uids);
			}
			/* the last round: everything there is */
			uint32_t *uids;
			size_t n;
			sleep(1);
			if (mailbox_claim_recent(box, UINT32_MAX, &uids, &n, &err) != 0)
				_exit(4);
			for (size_t i = 0; i < n; i++)
				if (uids[i] <= RACE_MSGS)
					got[uids[i]] = 1;
			free(uids);
			if (util_write_all(fds[k][1], got, sizeof(got)) != 0)
				_exit(5);
			mailbox_close(&box);
			_exit(0);
		}
		close(fds[k][1]);
	}
	unsigned char got[2][RACE_MSGS + 1];
	for (int k = 0; k < 2; k++) {
		int status;
		CHECK(read(fds[k][0], got[k], sizeof(got[k])) == (ssize_t)sizeof(got[k]));
		close(fds[k][0]);
		CHECK(waitpid(pid[k], &status, 0) == pid[k]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	int both = 0, none = 0, first = 0, second = 0;
	for (int u = 1; u <= RACE_MSGS; u++) {
		both += got[0][u] && got[1][u];
		none += !got[0][u] && !got[1][u];
		first += got[0][u];
		second += got[1][u];
	}
	CHECK(both == 0);
	CHECK(none == 0);
	CHECK(first + second == RACE_MSGS);
	struct mailbox *box;
	CHECK(mailbox_open(st, "INBOX", &box, &err) == 0);
	CHECK(mailbox_count(box) == RACE_MSGS && count_recent(box) == 0);
	mailbox_close(&box);
	storage_free(&st);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/var/tmp/test_recent.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	index_test_map_as_root = true;
	test_two_handles("maildir");
	test_two_handles("mbox");
	test_two_processes("maildir");
	test_two_processes("mbox");
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return unit_done("recent");
}
