/* smtp-submit's session, private to smtp_session.c (commands, transaction) and
 * smtp_data.c (the message: DATA and BDAT into the spool). */
#ifndef POSTERN_SMTP_SESSION_INT_H
#define POSTERN_SMTP_SESSION_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/conn.h"
#include "base/plimits.h"
#include "mail/header.h"
#include "smtp/smtp_cmd.h"
#include "spool/envelope.h"
#include "spool/spool.h"
#include "policy.h"
#include "smtp.h"
#include "submit.h"

/* An address as the envelope holds it, local@domain (RFC 5321 keeps the path within
 * SMTP_MAX_PATH; the buffers hold the parts' own maxima, and "postmaster@" + our name). */
#define SMTP_SESS_ADDR_MAX (SMTP_MAX_LOCAL_PART + 1 + SMTP_MAX_DOMAIN + 16)

/* One mail transaction: from MAIL to the end of its data (or RSET, EHLO ...). */
struct smtp_txn {
	bool active;                    /* MAIL was accepted */
	struct envelope *env;           /* sender, parameters, accepted recipients */
	char sender_log[LOG_MAX_FIELD + 1];
	bool smtputf8;
	enum smtp_body body;
	unsigned nrcpt;                 /* accepted recipients */
	bool any_local;                 /* a recipient of kind local: ask for delivery */
	char rcpt1[SMTP_SESS_ADDR_MAX + 1]; /* the first recipient (Received: "for") */
	/* the message (DATA or BDAT) */
	bool bdat;                      /* BDAT chunks have begun */
	struct spool_new *n;            /* tmp/ID being written */
	char id[SPOOL_ID_LEN + 1];      /* its queue id ("" before): every log line has it */
	uint64_t data_size;             /* the client's bytes (unstuffed) */
	bool too_big;                   /* over the size limit: refused after the end */
	int write_res;                  /* the first failed spool_new_write(): SPOOL_*; 0 */
	const char *write_error;
	struct header_parser *hp;       /* the message's header, as it arrives */
	unsigned received;              /* Received: fields in it (hop count) */
	unsigned from_count;            /* From: fields in it */
	char *from;                     /* the first From: field's raw value (malloc'd) */
	size_t from_len;
	bool from_truncated;
};

struct smtp_sess {
	struct server_session *s;
	struct conn *c;
	const struct config *cfg;
	const struct session_info *info;
	struct policy *pol;
	struct spool *sp;
	const char *login;              /* the SASL user; NULL on port 25 */
	bool tls;                       /* the connection is under TLS */
	char helo[256];                 /* the last HELO/EHLO argument, "" if none */
	bool helo_valid;                /* a domain or address literal (smtp_cmd) */
	bool esmtp;                     /* EHLO (extensions offered) */
	unsigned ext;                   /* SMTP_EXT_* offered (none after HELO) */
	uint64_t size_limit;            /* message_size_limit */
	unsigned max_rcpts;
	unsigned max_errors;
	unsigned errors;                /* refused commands since the last accepted message */
	unsigned queued;                /* messages accepted */
	bool refuse_client;             /* port 25: policy_client() refused (DNSBL) */
	struct policy_reply client_reply;
	bool quit;                      /* end the session after this command */
	const char *reason;             /* why it ended (log) */
	char rip_log[LOG_MAX_FIELD + 1];
	char *buf;                      /* SMTP_SESS_BUF bytes: DATA output, BDAT input */
	struct smtp_txn t;
};

/* The working buffer: what smtpdata_parse() may write for SMTP_SESS_CHUNK input bytes
 * (len + 1). */
#define SMTP_SESS_CHUNK IO_CHUNK
#define SMTP_SESS_BUF (SMTP_SESS_CHUNK + 1)

/* smtp_session.c */
/* SMTP_TXN_DEADLINE_S; tests shorten it. */
extern unsigned smtp_sess_deadline_s;
/* Send one reply line (text formatted; no CR/LF).  Not counted as an error. */
void smtp_sess_reply(struct smtp_sess *ss, unsigned code, const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* "ID: " for the log lines of a transaction that has a queue id, else "". */
const char *smtp_sess_log_id(const struct smtp_sess *ss, char buf[SPOOL_ID_LEN + 3]);
/* A refusal that counts against max_errors, logged as reject (cmd for the log). */
void smtp_sess_refuse(struct smtp_sess *ss, const char *cmd, unsigned code, const char *enh,
		      const char *text);
/* Forget the transaction (RSET, EHLO, a failure): free what it holds. */
void smtp_sess_txn_reset(struct smtp_sess *ss);
/* Its data phase ended (queued or refused): reset, and the next deadline begins.  Only
 * here: RSET or EHLO must not buy a client more time. */
void smtp_sess_txn_done(struct smtp_sess *ss);
/* The protocol name of RFC 3848 / RFC 6531 for this transaction ("ESMTPSA"). */
const char *smtp_sess_proto(const struct smtp_sess *ss);
/* The input ended or timed out while reading (errno as conn set it): reason, and the
 * 421 4.4.2 of a timeout; the session ends. */
void smtp_sess_lost(struct smtp_sess *ss, ssize_t r, const char *where);

/* smtp_data.c */
void smtp_data_cmd(struct smtp_sess *ss);
void smtp_data_bdat(struct smtp_sess *ss, const struct smtp_cmd *cmd);
/* Free what the transaction's message holds (the partial spool file is removed). */
void smtp_data_free(struct smtp_txn *t);

#endif
