/* Typed, versioned messages between the processes of one connection: the worker, the
 * monitor (root) and the session.  The root side parses every message as hostile.
 *
 * The socket is an AF_UNIX SOCK_SEQPACKET pair: one packet is one frame, so a frame is
 * delivered whole or not at all (a log line sent without blocking can be dropped, never
 * torn).  A frame:         u32 length (network order, of what follows)
 *                          u8 version (MSG_VERSION)  u8 type
 *                          fields: u8 tag, u16 length (network order), that many bytes
 * Each type has a schema (msg.c): the tags it may carry, each at most once, each with a
 * maximum length, whether it is required, and whether it is text (no NUL).  A frame that
 * breaks its schema is refused whole; the receiver then treats the peer as hostile.
 *
 * To add a message: a type below, its tags, and a row in msg.c's schema table. */
#ifndef POSTERN_MSG_H
#define POSTERN_MSG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"

#define MSG_VERSION 1
/* Largest frame body: an AUTH with the longest name and secret, or a log line, or a
 * TLS signature request, fits with room to spare. */
#define MSG_MAX 8192
#define MSG_MAX_FIELDS 16
/* A MSG_LOG's event word and text (a log line is cut at 1024 bytes in log.c anyway). */
#define MSG_LOG_EVENT_MAX 32
#define MSG_LOG_TEXT_MAX 1024
/* A HELO/EHLO argument as carried (session_info.helo holds it with its NUL). */
#define MSG_HELO_MAX 255
/* A queue id in MSG_DELIVER: the spool's ids are 12 characters (spool.h); a little room
 * is left so the monitor, not the parser, says what is wrong with a longer one. */
#define MSG_QUEUE_ID_MAX 32
#define MSG_QUEUE_ID_LEN 12    /* = ENVELOPE_ID_LEN (smtp-submit's main.c checks) */

enum msg_type {
	MSG_AUTH = 1,          /* worker -> monitor: one login attempt */
	MSG_AUTH_REPLY,        /* monitor -> worker: the result, the canonical user name */
	MSG_LOG,               /* worker or session -> monitor: one log line */
	MSG_KEY_OP,            /* worker -> monitor: a private-key operation (TLS) */
	MSG_KEY_OP_REPLY,      /* monitor -> worker: its result */
	MSG_START_SESSION,     /* monitor -> session: the session_info */
	MSG_TLS_SESS_PUT,      /* worker -> monitor: a TLS 1.3 session to keep for resumption */
	MSG_TLS_SESS_GET,      /* worker -> monitor: the kept session with this id (once) */
	MSG_TLS_SESS_REPLY,    /* monitor -> worker: that session, or none */
	MSG_OPEN_SESSION,      /* worker -> monitor: start the session without a login
	                          (SERVER_ID_NONE: smtp-submit on 25, at the first MAIL);
	                          answered with MSG_AUTH_REPLY */
	MSG_DELIVER,           /* session -> monitor: deliver this queued message now, in a
	                          root child (server_proto.deliver); no answer */
	MSG_TYPE_END
};

/* Field tags, per message type. */
enum msg_auth_tag {
	MSG_AUTH_MECH = 1,      /* "PLAIN", "LOGIN", "USER" (POP3 USER/PASS) */
	MSG_AUTH_AUTHZID,       /* optional: the identity to act as (SASL) */
	MSG_AUTH_AUTHCID,       /* the login name as typed */
	MSG_AUTH_SECRET,        /* the password; wiped after use on both sides */
	MSG_AUTH_TLS_VERSION,   /* optional: e.g. "TLSv1.3" (checked against a fixed set) */
	MSG_AUTH_TLS_CIPHER,    /* optional: e.g. "TLS_AES_256_GCM_SHA384" */
	MSG_AUTH_HELO,          /* optional: smtp-submit's HELO/EHLO argument (printable) */
	MSG_AUTH_ESMTP,         /* optional: u8, 1 when it was EHLO */
};
/* MSG_OPEN_SESSION: the MSG_AUTH tags that make sense without a login. */
enum msg_open_tag {
	MSG_OPEN_TLS_VERSION = MSG_AUTH_TLS_VERSION,
	MSG_OPEN_TLS_CIPHER = MSG_AUTH_TLS_CIPHER,
	MSG_OPEN_HELO = MSG_AUTH_HELO,
	MSG_OPEN_ESMTP = MSG_AUTH_ESMTP,
};
enum msg_deliver_tag {
	MSG_DELIVER_ID = 1,     /* the spool's queue id (checked by the monitor) */
};
enum msg_auth_reply_tag {
	MSG_AUTH_REPLY_RESULT = 1,  /* u8: enum server_login */
	MSG_AUTH_REPLY_USER,        /* on LOGIN_OK: the canonical user name (pw_name) */
};
enum msg_log_tag {
	MSG_LOG_LEVEL = 1,      /* u8: enum log_level */
	MSG_LOG_EVENT,          /* "tls", "bad-input", ...: [a-z][a-z0-9-]* */
	MSG_LOG_TEXT,           /* the rest of the line after "event: " */
};
enum msg_key_op_tag {
	MSG_KEY_OP_KIND = 1,    /* u8: what to do (enum keyop_kind in keyop.h) */
	MSG_KEY_OP_ARG,         /* u32: the digest's NID */
	MSG_KEY_OP_DATA,        /* the digest, or the encoded block, to sign */
};
enum msg_key_op_reply_tag {
	MSG_KEY_OP_REPLY_STATUS = 1, /* u8: 0 ok, 1 failed */
	MSG_KEY_OP_REPLY_DATA,       /* the signature or result */
};
enum msg_tls_sess_tag {
	MSG_TLS_SESS_ID = 1,    /* the session id (the TLS 1.3 ticket), at most 32 bytes */
	MSG_TLS_SESS_DATA,      /* i2d_SSL_SESSION (PUT, REPLY) */
};
enum msg_session_tag {
	MSG_SESSION_USER = 1,   /* canonical user name, or empty (no login: SMTP on 25) */
	MSG_SESSION_RIP,        /* remote address, text */
	MSG_SESSION_LIP,        /* local address, text */
	MSG_SESSION_RPORT,      /* u32 */
	MSG_SESSION_LPORT,      /* u32 */
	MSG_SESSION_TLS_VERSION,
	MSG_SESSION_TLS_CIPHER,
	MSG_SESSION_AUTH_MECH,
	MSG_SESSION_ID,         /* the connection's session id, for logs and Received: */
	MSG_SESSION_HELO,       /* smtp-submit: the HELO/EHLO argument, "" if none */
	MSG_SESSION_ESMTP,      /* smtp-submit: u8, 1 when it was EHLO */
};

struct msg_field {
	uint8_t tag;
	uint16_t len;
	const unsigned char *data;  /* into the message's buffer */
};

/* Field pointers point into buf: a struct msg is never copied by assignment. */
struct msg {
	uint8_t type;
	unsigned nfields;
	struct msg_field f[MSG_MAX_FIELDS];
	size_t len;                 /* bytes used in buf (the body: version, type, fields) */
	unsigned char buf[MSG_MAX];
};

/* Building.  A field that does not fit makes msg_add*() return -1 (and msg_send fail). */
void msg_init(struct msg *m, enum msg_type type);
int msg_add(struct msg *m, uint8_t tag, const void *data, size_t len);
int msg_add_str(struct msg *m, uint8_t tag, const char *s);
int msg_add_u8(struct msg *m, uint8_t tag, uint8_t v);
int msg_add_u32(struct msg *m, uint8_t tag, uint32_t v);

/* Parse a frame body (without the length prefix) into m, checking it against its type's
 * schema.  0, or -1 with *error_r set: the sender is misbehaving. */
int msg_parse(struct msg *m, const unsigned char *body, size_t len, const char **error_r);

/* Read one frame.  1 a valid message, 0 the peer closed cleanly before a frame, -1 a
 * read error, a malformed frame, or timeout_ms passed (-1: no timeout). */
int msg_recv(int fd, struct msg *m, int timeout_ms, const char **error_r);
/* Write m as one frame.  0 or -1.  Does not wipe: call msg_wipe() if it held a secret. */
int msg_send(int fd, const struct msg *m);
/* The same with send() flags, e.g. MSG_DONTWAIT: the frame goes whole or not at all. */
int msg_send_flags(int fd, const struct msg *m, int flags);
void msg_wipe(struct msg *m);

/* Build m as a MSG_LOG of one formatted log line "event: text": the event is the word
 * before the first ": " (fallback_event if there is none or it is too long for the
 * schema), the text what follows, cut at the schema's length.  0 or -1. */
int msg_log_line(struct msg *m, uint8_t level, const char *line, const char *fallback_event);

/* Reading a parsed message's fields. */
const struct msg_field *msg_get(const struct msg *m, uint8_t tag);
/* Copy a text field into out (NUL-terminated).  Absent: out = "" and 0.  Too long for
 * out: -1. */
int msg_get_str(const struct msg *m, uint8_t tag, char *out, size_t size);
/* A u8 or u32 field: 0, or -1 when absent or of the wrong size. */
int msg_get_u8(const struct msg *m, uint8_t tag, uint8_t *v_r);
int msg_get_u32(const struct msg *m, uint8_t tag, uint32_t *v_r);

#endif
