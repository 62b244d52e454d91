/* smtp-submit's session: the message of a transaction, by DATA (RFC 5321 section
 * 4.1.1.4) or BDAT (RFC 3030), into the spool.
 *
 * The spool file is begun at DATA (before the 354) or at the first BDAT; our Received:
 * field is its first bytes, then the client's data as it arrives: DATA through
 * common/mail/smtpdata.c (only CRLF "." CRLF ends the message; a bare LF or lone CR
 * neither ends nor splits it and is kept as it came), BDAT chunks byte for byte.  The
 * header is parsed on the way (common/mail/header.c) for the hop count (Received:
 * fields) and, on submission, the From: field(s).  Every limit is reported after the end
 * of the data, so the command stream stays in sync, and nothing is acknowledged before
 * spool_new_commit() returned: then "250 2.0.0 Ok: queued as ID".
 *
 * Refusals after the data, in this order: over message_size_limit 552 5.3.4; a spool
 * write failure (full 452 4.3.1, else 451 4.3.0); a DATA line over 1000 octets 500 5.5.2
 * (RFC 5321 section 4.5.3.1.6 sets the limit, and section 4.5.3.1.10 names "500 Line too
 * long" as its reply); SMTP_MAX_HOPS Received: fields or more 554 5.4.6 (RFC 5321
 * section 6.3; ours would be one more); on submission a header without From: or with
 * more than one (RFC 5322 section 3.6 asks for exactly one; RFC 6409 section 8 lists no
 * "add From:" fix-up, and section 3.2 prefers refusing what the MUA can correct) 553
 * 5.7.1, and a From: the policy refuses (policy_header_from()). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/log.h"
#include "base/util.h"
#include "mail/header.h"
#include "mail/smtpdata.h"
#include "smtp/smtp_received.h"
#include "smtp_session_int.h"

void smtp_data_free(struct smtp_txn *t)
{
	if (t->n != NULL)
		spool_new_abort(&t->n);
	header_parser_free(&t->hp);
	free(t->from);
	t->from = NULL;
}

/* Answer a failed spool call (begin, write, commit). */
static void spool_reply(struct smtp_sess *ss, const char *cmd, int res, const char *error)
{
	char id[SPOOL_ID_LEN + 3];

	if (res == SPOOL_TOOBIG) {
		smtp_sess_refuse(ss, cmd, 552, "5.3.4",
				 "Message size exceeds fixed maximum message size");
		return;
	}
	if (res == SPOOL_FULL) {
		log_warn("%sspool-full: cmd=%s, error=<%s>, rip=%s", smtp_sess_log_id(ss, id), cmd,
			 error != NULL ? error : "-", ss->rip_log);
		smtp_sess_reply(ss, 452, "4.3.1", "Insufficient system storage");
		return;
	}
	log_err("%sspool-failed: cmd=%s, error=<%s>, errno=%s, rip=%s", smtp_sess_log_id(ss, id),
		cmd,
		error != NULL ? error : "-", strerror(errno), ss->rip_log);
	smtp_sess_reply(ss, 451, "4.3.0", "Error: local error in processing");
}

static void header_cb(void *ctx, const struct header_field *f)
{
	struct smtp_txn *t = ctx;

	if (f->no_colon)
		return;
	if (header_field_is(f, "Received")) {
		t->received++;
	} else if (header_field_is(f, "From") && t->from_count++ == 0) {
		t->from = xmalloc(f->raw_len + 1); /* BOUNDS: raw_len <= HEADER_FIELD_MAX */
		memcpy(t->from, f->raw, f->raw_len);
		t->from[f->raw_len] = '\0';
		t->from_len = f->raw_len;
		t->from_truncated = f->truncated;
	}
}

/* Message bytes from the client: header checks, then the spool (until a write fails:
 * the failure is sticky and answered after the end). */
static void data_feed(struct smtp_sess *ss, const char *p, size_t len)
{
	struct smtp_txn *t = &ss->t;
	const char *error;

	t->data_size += len;
	if (t->hp != NULL && !header_parser_done(t->hp))
		header_parser_feed(t->hp, p, len, header_cb, t);
	if (t->write_res == 0 && len > 0) {
		int r = spool_new_write(t->n, p, len, &error);
		if (r != SPOOL_OK) {
			t->write_res = r;
			t->write_error = error;
		}
	}
}

/* Begin the spool file and write our Received: field.  SPOOL_OK, or a spool result
 * with *error_r, nothing answered yet. */
static int data_begin(struct smtp_sess *ss, const char **error_r)
{
	struct smtp_txn *t = &ss->t;
	char rec[SMTP_MAX_RECEIVED + 1];
	size_t len;
	time_t now = time(NULL);
	struct tm tm;

	/* the size limit is the client's; the file holds our Received: field too */
	int r = spool_new_begin(ss->sp, ss->size_limit + SMTP_MAX_RECEIVED, &t->n, error_r);
	if (r != SPOOL_OK)
		return r;
	snprintf(t->id, sizeof(t->id), "%s", spool_new_id(t->n));
	int tz = localtime_r(&now, &tm) != NULL ? (int)(tm.tm_gmtoff / 60) : 0;
	struct smtp_received rv = {
		.helo = ss->helo[0] != '\0' ? ss->helo : NULL,
		.helo_valid = ss->helo_valid,
		.addr = ss->info->rip,
		.by = policy_hostname(ss->pol),
		.esmtp = ss->esmtp,
		.auth = ss->login != NULL,
		.utf8 = t->smtputf8,
		.tls_version = ss->tls ? ss->info->tls_version : NULL,
		.tls_cipher = ss->tls && ss->info->tls_cipher[0] != '\0' ? ss->info->tls_cipher :
			      NULL,
		.queue_id = spool_new_id(t->n),
		.rcpt = t->nrcpt == 1 ? t->rcpt1 : NULL,
		.time = now,
		.tz_min = tz,
	};
	if (smtp_received_format(&rv, rec, sizeof(rec), &len) < 0) {
		spool_new_abort(&t->n);
		t->id[0] = '\0';
		*error_r = "cannot format the Received: field (hostname or client address)";
		return SPOOL_ERROR;
	}
	r = spool_new_write(t->n, rec, len, error_r);
	if (r != SPOOL_OK) {
		spool_new_abort(&t->n);
		t->id[0] = '\0';
		return r;
	}
	t->hp = header_parser_new(0);
	return SPOOL_OK;
}

/* Submission: exactly one From: field, and the policy's yes to it.  0, or -1 answered. */
static int check_from(struct smtp_sess *ss, const char *cmd)
{
	struct smtp_txn *t = &ss->t;
	struct policy_reply r = { 0 };

	if (t->from_count == 0) {
		smtp_sess_refuse(ss, cmd, 553, "5.7.1", "Error: message has no From: header field");
		return -1;
	}
	if (t->from_count > 1) {
		smtp_sess_refuse(ss, cmd, 553, "5.7.1",
				 "Error: message has more than one From: header field");
		return -1;
	}
	if (t->from_truncated) {
		smtp_sess_refuse(ss, cmd, 553, "5.7.1", "Error: From: header field too long");
		return -1;
	}
	if (policy_header_from(ss->pol, ss->login, t->from, t->from_len, &r) < 0) {
		smtp_sess_refuse(ss, cmd, r.code, r.status[0] != '\0' ? r.status : NULL, r.text);
		return -1;
	}
	return 0;
}

/* The envelope's facts about the client, for the log, -bp and DSNs. */
static void fill_envelope(struct smtp_sess *ss)
{
	struct envelope *env = ss->t.env;
	char helo[256], tls[SPOOL_TLS_MAX + 1];
	const char *error;

	if (ss->login != NULL && envelope_set_text(env, "auth", ss->login, &error) < 0)
		log_warn("envelope: key=auth, error=<%s>", error);
	if (envelope_set_text(env, "client-addr", ss->info->rip, &error) < 0)
		log_warn("envelope: key=client-addr, error=<%s>", error);
	if (ss->helo[0] != '\0') {
		envelope_sanitize(helo, sizeof(helo), ss->helo, strlen(ss->helo), sizeof(helo) - 1);
		if (envelope_set_text(env, "helo", helo, &error) < 0)
			log_warn("envelope: key=helo, error=<%s>", error);
	}
	if (envelope_set_text(env, "proto", smtp_sess_proto(ss), &error) < 0)
		log_warn("envelope: key=proto, error=<%s>", error);
	if (ss->tls) {
		int n = snprintf(tls, sizeof(tls), "%s %s", ss->info->tls_version,
				 ss->info->tls_cipher[0] != '\0' ? ss->info->tls_cipher : "-");
		if (n > 0 && (size_t)n < sizeof(tls) &&
		    envelope_set_text(env, "tls", tls, &error) < 0)
			log_warn("envelope: key=tls, error=<%s>", error);
	}
}

static void commit(struct smtp_sess *ss, const char *cmd)
{
	struct smtp_txn *t = &ss->t;
	char user[LOG_MAX_FIELD + 32];
	const char *id = t->id, *error;

	if (ss->login != NULL) {
		struct policy_reply pr = { 0 };
		if (policy_rate_take(ss->pol, ss->login, t->nrcpt, &pr) < 0) {
			smtp_sess_refuse(ss, cmd, pr.code, pr.status[0] != '\0' ? pr.status : NULL,
					 pr.text);
			return;
		}
	}
	fill_envelope(ss);
	int r = spool_new_commit(&t->n, t->env, NULL, &error);
	if (r != SPOOL_OK) {
		spool_reply(ss, cmd, r, error);
		return;
	}
	/* durable and visible in queue/: only now the 250 */
	ss->queued++;
	ss->errors = 0;
	smtp_sess_reply(ss, 250, "2.0.0", "Ok: queued as %s", id);
	user[0] = '\0';
	if (ss->login != NULL) {
		char safe[LOG_MAX_FIELD + 1];
		snprintf(user, sizeof(user), ", sasl_username=%s",
			 log_sanitize(ss->login, strlen(ss->login), safe));
	}
	log_info("%s: from=<%s>, size=%" PRIu64 ", nrcpt=%u%s, proto=%s, rip=%s", id,
		 t->sender_log, t->env->size, t->nrcpt, user, smtp_sess_proto(ss), ss->rip_log);
	/* local recipients now; if the monitor cannot, the queue run delivers later */
	if (t->any_local && session_request_delivery(id) < 0)
		log_warn("%s: delivery-request-failed: left for the queue run", id);
}

/* After the last byte of the message: the checks above, then the commit.  The
 * transaction ends either way. */
static void data_finish(struct smtp_sess *ss, const char *cmd, bool long_line)
{
	struct smtp_txn *t = &ss->t;

	if (t->hp != NULL) {
		header_parser_finish(t->hp, header_cb, t);
		header_parser_free(&t->hp);
	}
	if (t->too_big)
		smtp_sess_refuse(ss, cmd, 552, "5.3.4",
				 "Message size exceeds fixed maximum message size");
	else if (t->write_res != 0)
		spool_reply(ss, cmd, t->write_res, t->write_error);
	else if (long_line)
		smtp_sess_refuse(ss, cmd, 500, "5.5.2", "Error: line too long");
	else if (t->received >= SMTP_MAX_HOPS)
		smtp_sess_refuse(ss, cmd, 554, "5.4.6", "Too many hops");
	else if (submit_mode == SUBMIT_MODE_MX || check_from(ss, cmd) == 0)
		commit(ss, cmd);
	smtp_sess_txn_done(ss);
}

void smtp_data_cmd(struct smtp_sess *ss)
{
	struct smtp_txn *t = &ss->t;
	const char *error = NULL;
	struct smtpdata d;

	if (!t->active) {
		smtp_sess_refuse(ss, "DATA", 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (t->bdat) {
		/* RFC 3030 section 2: DATA and BDAT never in one transaction */
		smtp_sess_refuse(ss, "DATA", 503, "5.5.1", "Error: DATA after BDAT");
		smtp_sess_txn_done(ss);
		return;
	}
	if (t->nrcpt == 0) {
		smtp_sess_refuse(ss, "DATA", 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	if (t->body == SMTP_BODY_BINARYMIME) {
		/* RFC 3030 section 3 */
		smtp_sess_refuse(ss, "DATA", 503, "5.5.1", "Error: BODY=BINARYMIME needs BDAT");
		return;
	}
	int r = data_begin(ss, &error);
	if (r != SPOOL_OK) {
		spool_reply(ss, "DATA", r, error);
		smtp_sess_txn_reset(ss);
		return;
	}
	smtp_sess_reply(ss, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	smtpdata_init(&d, SMTP_MAX_TEXT_LINE, ss->size_limit);
	for (;;) {
		const char *in;
		size_t have = conn_pending(ss->c, &in), out_len, used;
		if (have == 0) {
			errno = 0;
			ssize_t n = conn_read_more(ss->c, true);
			if (n <= 0) {
				smtp_sess_lost(ss, n, "DATA");
				return;   /* the session ends; its end aborts the file */
			}
			continue;
		}
		if (have > SMTP_SESS_CHUNK)
			have = SMTP_SESS_CHUNK;  /* BOUNDS: smtpdata writes at most have + 1 */
		int done = smtpdata_parse(&d, in, have, ss->buf, &out_len, &used);
		data_feed(ss, ss->buf, out_len);
		conn_consume(ss->c, used);
		if (done)
			break;
	}
	t->too_big = (d.flags & SMTPDATA_TOO_BIG) != 0;
	if (d.flags & (SMTPDATA_BARE_LF | SMTPDATA_LONE_CR | SMTPDATA_NUL))
		log_info("%s: data-note: %s, line=%" PRIu64 ", rip=%s", t->id, smtpdata_error(&d),
			 d.first_bad_line, ss->rip_log);
	data_finish(ss, "DATA", (d.flags & SMTPDATA_LONG_LINE) != 0);
}

/* Read the n bytes of a BDAT chunk, giving each to data_feed() while feed is set and
 * the message stays within the limit.  0, or -1 when the input ended (the session
 * ends). */
static int bdat_read(struct smtp_sess *ss, uint64_t n, bool feed)
{
	struct smtp_txn *t = &ss->t;

	while (n > 0) {
		const char *in;
		size_t have = conn_pending(ss->c, &in);
		if (have == 0) {
			errno = 0;
			ssize_t r = conn_read_more(ss->c, true);
			if (r <= 0) {
				smtp_sess_lost(ss, r, "BDAT");
				return -1;
			}
			continue;
		}
		if (have > n)
			have = (size_t)n;
		if (feed && !t->too_big) {
			if (have > ss->size_limit - t->data_size) /* BOUNDS: data_size <= limit */
				t->too_big = true;
			else
				data_feed(ss, in, have);
		}
		conn_consume(ss->c, have);
		n -= have;
	}
	return 0;
}

void smtp_data_bdat(struct smtp_sess *ss, const struct smtp_cmd *cmd)
{
	struct smtp_txn *t = &ss->t;
	const char *refusal = NULL, *error = NULL;
	unsigned code = 503;

	/* RFC 3030 section 2: a refused BDAT's chunk is read and dropped first, so that its
	 * bytes are never taken for commands */
	if (!ss->esmtp)
		refusal = "Error: CHUNKING was not offered (send EHLO)";
	else if (!t->active)
		refusal = "Error: need MAIL command";
	else if (t->nrcpt == 0) {
		refusal = "Error: no valid recipients";
		code = 554;
	}
	if (refusal != NULL) {
		if (bdat_read(ss, cmd->bdat_size, false) == 0)
			smtp_sess_refuse(ss, "BDAT", code, "5.5.1", refusal);
		return;
	}
	if (!t->bdat) {
		int r = data_begin(ss, &error);
		if (r != SPOOL_OK) {
			if (bdat_read(ss, cmd->bdat_size, false) == 0)
				spool_reply(ss, "BDAT", r, error);
			smtp_sess_txn_reset(ss);
			return;
		}
		t->bdat = true;
	}
	if (bdat_read(ss, cmd->bdat_size, true) < 0)
		return;
	if (t->too_big || t->write_res != 0) {
		/* the transaction failed: later chunks find no MAIL and are dropped */
		data_finish(ss, "BDAT", false);
		return;
	}
	if (!cmd->bdat_last) {
		smtp_sess_reply(ss, 250, "2.0.0", "Ok: %" PRIu64 " octets", cmd->bdat_size);
		return;
	}
	data_finish(ss, "BDAT", false);
}
