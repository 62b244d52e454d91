/* COMPRESS DEFLATE (RFC 4978), in the authenticated and selected states.
 *
 * The session's connection is the socket to the worker's relay, and the worker holds
 * TLS: deflating here, in conn.c's layer, means the compressed stream is what TLS
 * encrypts, the order RFC 4978 section 4 asks for (first COMPRESS, then TLS).  The tagged
 * OK goes out uncompressed; everything after it, both ways, is raw DEFLATE.  Limits stay
 * where they were: the inflater writes into the line reader or the literal buffer, never
 * more than those hold, so a decompression bomb meets "line too long" or the literal
 * limit. */
#include <strings.h>
#include "imap.h"

enum imap_result imap_cmd_compress(struct imap_sess *ss, const struct imap_command *cmd)
{
	const char *mech, *error;

	if (cmd->count != 1 || imap_arg_atom(&cmd->args[0], &mech) < 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Usage: COMPRESS DEFLATE");
		return IMAP_R_BAD;
	}
	if (conn_compressed(ss->ic.c)) {
		imapc_tagged(&ss->ic, cmd->tag, "NO", "COMPRESSIONACTIVE",
			     "DEFLATE is already active.");
		return IMAP_R_OK;
	}
	if (strcasecmp(mech, "DEFLATE") != 0) {
		imapc_tagged(&ss->ic, cmd->tag, "BAD", NULL, "Unknown compression mechanism.");
		return IMAP_R_BAD;
	}
	imapc_tagged(&ss->ic, cmd->tag, "OK", NULL, "DEFLATE active.");
	if (conn_compress_start(ss->ic.c, &error) < 0) {
		log_err("compress-failed: %serror=<%s>", ss->log_user, error);
		ss->reason = "error";
		return IMAP_R_DROP;
	}
	return IMAP_R_OK;
}
