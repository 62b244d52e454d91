/* The worker -> monitor login request.  The monitor runs as root and treats every byte
 * of it as hostile: fixed header, bounded lengths, no NUL inside any field. */
#include <string.h>
#include "privsep/server.h"

#define AUTHMSG_VERSION 1
#define AUTHMSG_HDR 7

static size_t authmsg_max(size_t field_size)
{
	return field_size - 1;
}

long authmsg_encode(const struct authmsg *m, unsigned char *buf, size_t size)
{
	size_t ml = strlen(m->method), ul = strlen(m->user), pl = strlen(m->pass),
	       tl = strlen(m->tls);

	if (ml > authmsg_max(sizeof(m->method)) || ul > authmsg_max(sizeof(m->user)) ||
	    pl > authmsg_max(sizeof(m->pass)) || tl > authmsg_max(sizeof(m->tls)))
		return -1;
	size_t total = AUTHMSG_HDR + ml + ul + pl + tl; /* BOUNDS: each field bounded above */
	if (total > size)
		return -1;
	buf[0] = AUTHMSG_VERSION;
	buf[1] = (unsigned char)ml;
	buf[2] = (unsigned char)(ul >> 8);
	buf[3] = (unsigned char)ul;
	buf[4] = (unsigned char)(pl >> 8);
	buf[5] = (unsigned char)pl;
	buf[6] = (unsigned char)tl;
	unsigned char *p = buf + AUTHMSG_HDR;
	memcpy(p, m->method, ml); p += ml;
	memcpy(p, m->user, ul); p += ul;
	memcpy(p, m->pass, pl); p += pl;
	memcpy(p, m->tls, tl);
	return (long)total;
}

static int authmsg_field(const unsigned char **p, size_t *left, size_t n, char *out,
			 size_t out_size)
{
	if (n > *left || n >= out_size || memchr(*p, '\0', n) != NULL)
		return -1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	*left -= n;
	return 0;
}

int authmsg_decode(const unsigned char *buf, size_t len, struct authmsg *m)
{
	memset(m, 0, sizeof(*m));
	if (len < AUTHMSG_HDR || len > AUTHMSG_MAX || buf[0] != AUTHMSG_VERSION)
		return -1;
	size_t ml = buf[1], ul = ((size_t)buf[2] << 8) | buf[3],
	       pl = ((size_t)buf[4] << 8) | buf[5], tl = buf[6];
	const unsigned char *p = buf + AUTHMSG_HDR;
	size_t left = len - AUTHMSG_HDR;

	if (authmsg_field(&p, &left, ml, m->method, sizeof(m->method)) == -1 ||
	    authmsg_field(&p, &left, ul, m->user, sizeof(m->user)) == -1 ||
	    authmsg_field(&p, &left, pl, m->pass, sizeof(m->pass)) == -1 ||
	    authmsg_field(&p, &left, tl, m->tls, sizeof(m->tls)) == -1 || left != 0 ||
	    ml == 0 || ul == 0) {
		explicit_bzero(m, sizeof(*m));
		return -1;
	}
	return 0;
}
