/* libFuzzer: the whole IMAP daemon's command handling, as a client would drive it:
 * imap_prelogin_run() with the stub monitor, then imap_session() until LOGOUT or EOF
 * (literals, APPEND streaming, IDLE, STORE, EXPUNGE, COPY, MOVE, CREATE/RENAME/DELETE of
 * folders).  The input format and the set-up are tests/stub/session_fuzz.h's. */
#include "base/plimits.h"
#include "imap.h"
#include "session_fuzz.h"
#include "stub_monitor.h"

static const struct imap_login_ops fz_ops = { stub_monitor_login, stub_monitor_starttls };

static int fz_prelogin(struct server_worker *w)
{
	return imap_prelogin_run(w, &fz_ops);
}

static const struct session_fuzz fz = {
	.daemon = "imapd",
	.line_max = IMAP_MAX_LINE_PRELOGIN,
	.timeout_s = 2,
	.prelogin = fz_prelogin,
	.session = imap_session,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return session_fuzz_init(&fz);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return session_fuzz_one(&fz, data, size);
}
