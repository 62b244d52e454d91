/* IDLE (RFC 2177, RFC 9051 6.3.13): "+ idling", then changes to the selected folder are
 * reported as they happen (EXISTS, EXPUNGE, FETCH FLAGS) until the client sends DONE.
 *
 * We wait on the client, the folder's inotify descriptor (mailbox_notify_fd(): an MTA
 * writing into Maildir/new, another session's index commit) and a timer of
 * IMAP_IDLE_POLL_MS, which also looks at the folder (a file system without inotify, an
 * mbox rewritten in place): a delivery is reported within a second either way.  An IDLE
 * longer than IMAP_IDLE_MAX_S ends with BYE (clients re-IDLE every 29 minutes). */
#include <strings.h>
#include "base/util.h"
#include "imap.h"
#include "storage/storage.h"

enum imap_result imap_cmd_idle(struct imap_sess *ss, const struct imap_command *cmd)
{
	char tag[IMAP_MAX_TAG + 1];

	if (cmd->count != 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: IDLE");
		return IMAP_R_BAD;
	}
	snprintf(tag, sizeof(tag), "%s", cmd->tag);
	imap_sess_update(ss, true);
	if (imapc_continue(&ss->ic, "idling") < 0)
		return IMAP_R_DROP;
	uint64_t end = util_now_ms() + (uint64_t)IMAP_IDLE_MAX_S * 1000;
	for (;;) {
		int fd = ss->box != NULL ? mailbox_notify_fd(ss->box) : -1;
		uint64_t now = util_now_ms();
		if (now >= end) {
			imapc_untagged(&ss->ic, "BYE", NULL, "IDLE for too long.");
			ss->reason = "idle-timeout";
			return IMAP_R_DROP;
		}
		int ev = conn_wait_event(ss->ic.c, fd, now + IMAP_IDLE_POLL_MS);
		if (ev < 0) {
			ss->reason = "timeout";
			return IMAP_R_DROP;
		}
		if (ev == CONN_EV_EXTRA && ss->box != NULL)
			mailbox_notify_clear(ss->box);
		if (ev == CONN_EV_EXTRA || ev == CONN_EV_TIMER) {
			imap_sess_update(ss, true);
			continue;
		}
		const char *line;
		size_t len;
		int r = cmdloop_line(&ss->ic.loop, &line, &len);
		if (r == 0) {
			ss->reason = ss->ic.loop.reason;
			return IMAP_R_DROP;
		}
		if (r > 0 && len == 4 && strncasecmp(line, "DONE", 4) == 0) {
			imap_sess_update(ss, true);
			imapc_tagged(&ss->ic, tag, "OK", NULL, "Idle completed.");
			return IMAP_R_OK;
		}
		imapc_tagged(&ss->ic, tag, "BAD", NULL, "Expected DONE.");
		return IMAP_R_BAD;
	}
}
