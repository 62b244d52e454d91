/* The daemons' whole-session fuzz targets (fuzz/ipop3d/fuzz_pop3_session.c,
 * fuzz/imapd/fuzz_imap_session.c): one input is one client connection.
 *
 * Input: one flag byte (bit 0: a password may be sent in plaintext; bit 1: the stub
 * STARTTLS/STLS is offered), then the bytes the client sends, as fast as the daemon
 * reads them, with the replies read and dropped by a thread.  The connection runs the
 * daemon's pre-login code with the stub monitor (tests/stub/stub_monitor.h: password
 * "secret" logs in any user) and, after a login, its session as the current user on a
 * small Maildir in a temporary directory (messages that a command removed are put back
 * before the next input). */
#ifndef POSTERN_TEST_SESSION_FUZZ_H
#define POSTERN_TEST_SESSION_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include "privsep/server.h"

struct session_fuzz {
	const char *daemon;          /* config section and temporary directory name */
	size_t line_max;             /* conn_init(): the pre-login line limit */
	unsigned timeout_s;          /* conn_init(): the idle timeout */
	/* the daemon's pre-login loop with the stub monitor's login and STARTTLS */
	int (*prelogin)(struct server_worker *w);
	int (*session)(struct server_session *s);
};

int session_fuzz_init(const struct session_fuzz *sf);
int session_fuzz_one(const struct session_fuzz *sf, const uint8_t *data, size_t size);
#endif
