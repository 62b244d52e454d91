/* libFuzzer: smtp-submit's SMTP session (smtp_session(), smtp-submit/smtp_data.c) as a
 * client drives it after the worker's handoff, over tests/stub/session_fuzz.c.
 *
 * Input: session_fuzz.h's flag byte (unused here), then one byte for what the worker
 * would have handed over (bit 0: submission with the login "ned", else port 25; bit 1:
 * under TLS; bit 2: the client said HELO, not EHLO; bit 3: a HELO argument that is no
 * domain), then the client's bytes.  The spool is a temporary directory (on /dev/shm
 * when there is one: its fsyncs cost nothing), emptied after each input; the limits are
 * small (4 KiB messages, 5 recipients) so that the inputs reach them. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/config.h"
#include "base/conn.h"
#include "base/plimits.h"
#include "spool/spool.h"
#include "session_fuzz.h"
#include "smtp.h"
#include "submit.h"

enum submit_mode submit_mode = SUBMIT_MODE_MX;

static char fz_spool[256];
static char fz_hostname[] = "fuzz.example";
static unsigned char fz_mode;

/* What the worker handed over: one byte of the input. */
static int fz_prelogin(struct server_worker *w)
{
	return conn_read(w->c, &fz_mode, 1) == 1 ? 1 : 0;
}

static int fz_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

static void fz_empty_spool(void)
{
	char p[300];

	snprintf(p, sizeof(p), "%s/queue", fz_spool);
	nftw(p, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(p, sizeof(p), "%s/tmp", fz_spool);
	nftw(p, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static int fz_session(struct server_session *s)
{
	struct config cfg = *s->cfg;
	struct session_info info = { 0 };
	struct server_session s2 = *s;

	cfg.spool_dir = fz_spool;
	cfg.hostname = fz_hostname;
	cfg.message_size_limit = 4096;
	cfg.max_recipients = 5;
	cfg.max_errors = 10;
	submit_mode = (fz_mode & 1) ? SUBMIT_MODE_SUBMISSION : SUBMIT_MODE_MX;
	snprintf(info.user, sizeof(info.user), "%s", (fz_mode & 1) ? "ned" : "");
	snprintf(info.rip, sizeof(info.rip), "192.0.2.7");
	snprintf(info.lip, sizeof(info.lip), "192.0.2.1");
	if (fz_mode & 2) {
		snprintf(info.tls_version, sizeof(info.tls_version), "TLSv1.3");
		snprintf(info.tls_cipher, sizeof(info.tls_cipher), "TLS_AES_128_GCM_SHA256");
	}
	info.esmtp = (fz_mode & 4) == 0;
	snprintf(info.helo, sizeof(info.helo), "%s", (fz_mode & 8) ? "bad_helo!" : "client.example");
	snprintf(info.session_id, sizeof(info.session_id), "0123456789AB");
	s2.cfg = &cfg;
	s2.info = &info;
	int r = smtp_session(&s2);
	fz_empty_spool();
	return r;
}

static const struct session_fuzz fz = {
	.daemon = "smtp-submit",
	.line_max = SMTP_MAX_AUTH_LINE,
	.timeout_s = 5,
	.prelogin = fz_prelogin,
	.session = fz_session,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct spool *sp;
	const char *error;

	(void)argc;
	(void)argv;
	session_fuzz_init(&fz);
	snprintf(fz_spool, sizeof(fz_spool), "%s/fuzz_smtp_session.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(fz_spool) == NULL ||
	    spool_open(fz_spool, getuid(), SPOOL_OPEN_CREATE, &sp, &error) < 0)
		abort();
	spool_close(&sp);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return session_fuzz_one(&fz, data, size);
}
