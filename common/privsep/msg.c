/* Typed messages between the processes of one connection (msg.h).  Root parses these:
 * every length is checked against the buffer and against the type's schema before a
 * field is used, and a frame with anything unexpected is refused whole. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "base/util.h"
#include "privsep/msg.h"

#define MSG_HDR 2          /* version, type */
#define MSG_FIELD_HDR 3    /* tag, u16 length */

struct msg_rule {
	uint8_t tag;
	uint16_t max;       /* longest value */
	bool required;
	bool text;          /* no NUL inside */
};

#define MSG_MAX_RULES 12
struct msg_schema {
	struct msg_rule rules[MSG_MAX_RULES];
};

/* One row per message type: what it may carry.  BOUNDS: every max below fits MSG_MAX
 * with the headers (the longest, AUTH, is 16+256+256+1024+32+64+255+1 + 8 * 3 + 2). */
static const struct msg_schema msg_schemas[MSG_TYPE_END] = {
	[MSG_AUTH] = { {
		{ MSG_AUTH_MECH, 16, true, true },
		{ MSG_AUTH_AUTHZID, AUTH_MAX_USER, false, true },
		{ MSG_AUTH_AUTHCID, AUTH_MAX_USER, true, true },
		{ MSG_AUTH_SECRET, AUTH_MAX_PASS, false, true },
		{ MSG_AUTH_TLS_VERSION, 32, false, true },
		{ MSG_AUTH_TLS_CIPHER, 64, false, true },
		{ MSG_AUTH_HELO, MSG_HELO_MAX, false, true },
		{ MSG_AUTH_ESMTP, 1, false, false },
	} },
	[MSG_AUTH_REPLY] = { {
		{ MSG_AUTH_REPLY_RESULT, 1, true, false },
		{ MSG_AUTH_REPLY_USER, AUTH_MAX_USER, false, true },
	} },
	[MSG_LOG] = { {
		{ MSG_LOG_LEVEL, 1, true, false },
		{ MSG_LOG_EVENT, MSG_LOG_EVENT_MAX, true, true },
		{ MSG_LOG_TEXT, MSG_LOG_TEXT_MAX, false, true },
	} },
	[MSG_KEY_OP] = { {
		{ MSG_KEY_OP_KIND, 1, true, false },
		{ MSG_KEY_OP_ARG, 4, false, false },
		{ MSG_KEY_OP_DATA, 1024, true, false },  /* 1024: an RSA-8192 block */
	} },
	[MSG_KEY_OP_REPLY] = { {
		{ MSG_KEY_OP_REPLY_STATUS, 1, true, false },
		{ MSG_KEY_OP_REPLY_DATA, 1024, false, false },
	} },
	[MSG_TLS_SESS_PUT] = { {
		{ MSG_TLS_SESS_ID, 32, true, false },
		{ MSG_TLS_SESS_DATA, TLS_SESSION_MAX, true, false },
	} },
	[MSG_TLS_SESS_GET] = { {
		{ MSG_TLS_SESS_ID, 32, true, false },
	} },
	[MSG_TLS_SESS_REPLY] = { {
		{ MSG_TLS_SESS_DATA, TLS_SESSION_MAX, false, false },
	} },
	[MSG_START_SESSION] = { {
		{ MSG_SESSION_USER, AUTH_MAX_USER, true, true },
		{ MSG_SESSION_RIP, 64, true, true },
		{ MSG_SESSION_LIP, 64, false, true },
		{ MSG_SESSION_RPORT, 4, false, false },
		{ MSG_SESSION_LPORT, 4, false, false },
		{ MSG_SESSION_TLS_VERSION, 32, false, true },
		{ MSG_SESSION_TLS_CIPHER, 64, false, true },
		{ MSG_SESSION_AUTH_MECH, 16, false, true },
		{ MSG_SESSION_ID, 32, false, true },
		{ MSG_SESSION_HELO, MSG_HELO_MAX, false, true },
		{ MSG_SESSION_ESMTP, 1, false, false },
	} },
	[MSG_OPEN_SESSION] = { {
		{ MSG_OPEN_TLS_VERSION, 32, false, true },
		{ MSG_OPEN_TLS_CIPHER, 64, false, true },
		{ MSG_OPEN_HELO, MSG_HELO_MAX, false, true },
		{ MSG_OPEN_ESMTP, 1, false, false },
	} },
	[MSG_DELIVER] = { {
		{ MSG_DELIVER_ID, MSG_QUEUE_ID_MAX, true, true },
	} },
};

static const struct msg_rule *msg_rule(uint8_t type, uint8_t tag)
{
	if (type == 0 || type >= MSG_TYPE_END)
		return NULL;
	const struct msg_schema *s = &msg_schemas[type];
	for (size_t i = 0; i < MSG_MAX_RULES && s->rules[i].tag != 0; i++)
		if (s->rules[i].tag == tag)
			return &s->rules[i];
	return NULL;
}

void msg_init(struct msg *m, enum msg_type type)
{
	m->type = (uint8_t)type;
	m->nfields = 0;
	m->buf[0] = MSG_VERSION;
	m->buf[1] = (uint8_t)type;
	m->len = MSG_HDR;
}

int msg_add(struct msg *m, uint8_t tag, const void *data, size_t len)
{
	if (len > UINT16_MAX || m->nfields >= MSG_MAX_FIELDS ||
	    len + MSG_FIELD_HDR > sizeof(m->buf) - m->len)   /* BOUNDS: m->len <= sizeof */
		return -1;
	unsigned char *p = m->buf + m->len;
	p[0] = tag;
	p[1] = (unsigned char)(len >> 8);
	p[2] = (unsigned char)len;
	if (len > 0)
		memcpy(p + MSG_FIELD_HDR, data, len);
	m->f[m->nfields++] = (struct msg_field){ tag, (uint16_t)len, p + MSG_FIELD_HDR };
	m->len += MSG_FIELD_HDR + len;
	return 0;
}

int msg_add_str(struct msg *m, uint8_t tag, const char *s)
{
	return msg_add(m, tag, s, strlen(s));
}

int msg_add_u8(struct msg *m, uint8_t tag, uint8_t v)
{
	return msg_add(m, tag, &v, 1);
}

int msg_add_u32(struct msg *m, uint8_t tag, uint32_t v)
{
	uint32_t n = htonl(v);
	return msg_add(m, tag, &n, 4);
}

int msg_parse(struct msg *m, const unsigned char *body, size_t len, const char **error_r)
{
	m->nfields = 0;
	m->len = 0;
	if (len < MSG_HDR || len > sizeof(m->buf)) {
		*error_r = "bad frame length";
		return -1;
	}
	if (body != m->buf)
		memcpy(m->buf, body, len);
	m->len = len;
	if (m->buf[0] != MSG_VERSION) {
		*error_r = "unknown version";
		return -1;
	}
	m->type = m->buf[1];
	if (m->type == 0 || m->type >= MSG_TYPE_END) {
		*error_r = "unknown message type";
		return -1;
	}
	size_t off = MSG_HDR;
	while (off < len) {
		if (len - off < MSG_FIELD_HDR) {
			*error_r = "truncated field header";
			return -1;
		}
		uint8_t tag = m->buf[off];
		size_t flen = ((size_t)m->buf[off + 1] << 8) | m->buf[off + 2];
		off += MSG_FIELD_HDR;
		const struct msg_rule *r = msg_rule(m->type, tag);
		if (r == NULL) {
			*error_r = "field not allowed in this message";
			return -1;
		}
		if (flen > len - off || flen > r->max) {
			*error_r = "field too long";
			return -1;
		}
		if (msg_get(m, tag) != NULL) {
			*error_r = "field repeated";
			return -1;
		}
		if (r->text && memchr(m->buf + off, '\0', flen) != NULL) {
			*error_r = "NUL in a text field";
			return -1;
		}
		if (m->nfields >= MSG_MAX_FIELDS) {
			*error_r = "too many fields";
			return -1;
		}
		m->f[m->nfields++] = (struct msg_field){ tag, (uint16_t)flen, m->buf + off };
		off += flen;
	}
	const struct msg_schema *s = &msg_schemas[m->type];
	for (size_t i = 0; i < MSG_MAX_RULES && s->rules[i].tag != 0; i++) {
		if (s->rules[i].required && msg_get(m, s->rules[i].tag) == NULL) {
			*error_r = "required field missing";
			return -1;
		}
	}
	return 0;
}

int msg_recv(int fd, struct msg *m, int timeout_ms, const char **error_r)
{
	unsigned char frame[4 + MSG_MAX + 1];
	uint64_t deadline = timeout_ms < 0 ? 0 : util_now_ms() + (uint64_t)timeout_ms;
	ssize_t n;

	m->nfields = 0;
	m->len = 0;
	for (;;) {
		if (timeout_ms >= 0) {
			uint64_t now = util_now_ms();
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int rc = now >= deadline ? 0 : poll(&pfd, 1, (int)(deadline - now));
			if (rc == 0) {
				*error_r = "timeout";
				return -1;
			}
			if (rc < 0) {
				if (errno == EINTR)
					continue;
				*error_r = "poll error";
				return -1;
			}
		}
		/* One packet is one frame (SOCK_SEQPACKET); a longer one is cut by the kernel
		 * and shows up here as a length that does not match its prefix. */
		n = recv(fd, frame, sizeof(frame), 0);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN))
			break;
	}
	if (n <= 0) {
		*error_r = n == 0 ? "closed" : "read error";
		return n == 0 ? 0 : -1;
	}
	uint32_t len;
	memcpy(&len, frame, n >= 4 ? 4 : 0);
	if (n < 4 + MSG_HDR || (len = ntohl(len)) != (size_t)n - 4 || len > sizeof(m->buf)) {
		util_wipe(frame, sizeof(frame));
		*error_r = "bad frame length";
		return -1;
	}
	memcpy(m->buf, frame + 4, len);
	util_wipe(frame, sizeof(frame));
	return msg_parse(m, m->buf, len, error_r) == 0 ? 1 : -1;
}

int msg_send_flags(int fd, const struct msg *m, int flags)
{
	unsigned char frame[4 + MSG_MAX];
	uint32_t n = htonl((uint32_t)m->len);
	ssize_t w;

	memcpy(frame, &n, 4);
	memcpy(frame + 4, m->buf, m->len);   /* BOUNDS: m->len <= MSG_MAX */
	do
		w = send(fd, frame, m->len + 4, flags | MSG_NOSIGNAL);
	while (w == -1 && errno == EINTR);
	util_wipe(frame, m->len + 4);
	return w == (ssize_t)(m->len + 4) ? 0 : -1;
}

int msg_send(int fd, const struct msg *m)
{
	return msg_send_flags(fd, m, 0);
}

int msg_log_line(struct msg *m, uint8_t level, const char *line, const char *fallback_event)
{
	const char *sep = strstr(line, ": ");
	size_t elen = sep != NULL ? (size_t)(sep - line) : 0;
	const char *event = fallback_event, *text = line;

	if (elen > 0 && elen <= MSG_LOG_EVENT_MAX) {
		event = line;
		text = sep + 2;
	} else {
		elen = strlen(fallback_event);
	}
	msg_init(m, MSG_LOG);
	return msg_add_u8(m, MSG_LOG_LEVEL, level) == -1 ||
	       msg_add(m, MSG_LOG_EVENT, event, elen) == -1 ||
	       msg_add(m, MSG_LOG_TEXT, text, strnlen(text, MSG_LOG_TEXT_MAX)) == -1 ? -1 : 0;
}

void msg_wipe(struct msg *m)
{
	util_wipe(m, sizeof(*m));
}

const struct msg_field *msg_get(const struct msg *m, uint8_t tag)
{
	for (unsigned i = 0; i < m->nfields; i++)
		if (m->f[i].tag == tag)
			return &m->f[i];
	return NULL;
}

int msg_get_str(const struct msg *m, uint8_t tag, char *out, size_t size)
{
	const struct msg_field *f = msg_get(m, tag);

	if (size == 0)
		return -1;
	out[0] = '\0';
	if (f == NULL)
		return 0;
	if (f->len >= size || memchr(f->data, '\0', f->len) != NULL)
		return -1;
	memcpy(out, f->data, f->len);
	out[f->len] = '\0';
	return 0;
}

int msg_get_u8(const struct msg *m, uint8_t tag, uint8_t *v_r)
{
	const struct msg_field *f = msg_get(m, tag);

	if (f == NULL || f->len != 1)
		return -1;
	*v_r = f->data[0];
	return 0;
}

int msg_get_u32(const struct msg *m, uint8_t tag, uint32_t *v_r)
{
	const struct msg_field *f = msg_get(m, tag);
	uint32_t n;

	if (f == NULL || f->len != 4)
		return -1;
	memcpy(&n, f->data, 4);
	*v_r = ntohl(n);
	return 0;
}
