/* libFuzzer: the whole POP3 state machine, as a client would drive it:
 * pop3_prelogin_run() with the stub monitor, then pop3_session() until QUIT or EOF.
 * The input format and the set-up are tests/stub/session_fuzz.h's. */
#include "base/plimits.h"
#include "pop3.h"
#include "session_fuzz.h"
#include "stub_monitor.h"

static const struct pop3_login_ops fz_ops = { stub_monitor_login, stub_monitor_starttls };

static int fz_prelogin(struct server_worker *w)
{
	return pop3_prelogin_run(w, &fz_ops);
}

static const struct session_fuzz fz = {
	.daemon = "ipop3d",
	.line_max = SASL_MAX_LINE,
	.timeout_s = 5,
	.prelogin = fz_prelogin,
	.session = pop3_session,
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
