/* libFuzzer: smtp-submit's pre-login dialogue (smtp_prelogin_run()) as a client would
 * drive it, with the stub monitor (login, STARTTLS, the port-25 hand-over).  The input
 * format and set-up are tests/stub/session_fuzz.h's; its flag byte picks the mode too:
 * bit 0 (a password may travel) runs submission (587, AUTH reachable at once), else
 * port 25 (MAIL hands over); bit 1 offers the stub STARTTLS, after which 587 offers
 * AUTH too.  After a hand-over the rest of the input is drained (the session is
 * fuzz_smtp_session's). */
#include <string.h>
#include "base/config.h"
#include "base/plimits.h"
#include "session_fuzz.h"
#include "smtp.h"
#include "stub_monitor.h"

static const struct smtp_login_ops fz_ops = {
	stub_monitor_login, stub_monitor_starttls, stub_monitor_start_session,
};

static int fz_prelogin(struct server_worker *w)
{
	/* the pre-greet pause would wait greet_pause_ms for each input */
	static struct config cfg;
	memcpy(&cfg, w->cfg, sizeof(cfg));
	cfg.greet_pause_ms = 0;
	w->cfg = &cfg;
	return smtp_prelogin_run(w, w->plaintext_ok ? SUBMIT_MODE_SUBMISSION : SUBMIT_MODE_MX,
				 &fz_ops);
}

static int fz_drain(struct server_session *s)
{
	const char *line;
	size_t len;
	while (conn_read_line(s->c, &line, &len) > 0)
		;
	return 0;
}

static const struct session_fuzz fz = {
	.daemon = "smtp-submit",
	.line_max = SMTP_MAX_AUTH_LINE,
	.timeout_s = 5,
	.prelogin = fz_prelogin,
	.session = fz_drain,
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
