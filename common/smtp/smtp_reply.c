/* SMTP reply writing; see smtp_reply.h. */
#include <string.h>
#include "base/plimits.h"
#include "smtp/smtp_reply.h"

/* 1*3digit without a leading zero ("0" itself is fine); advances *s */
static bool enh_num(const char **s)
{
	const char *p = *s;
	size_t n = 0;

	while (p[n] >= '0' && p[n] <= '9')
		n++;
	if (n == 0 || n > 3 || (n > 1 && p[0] == '0'))
		return false;
	*s = p + n;
	return true;
}

bool smtp_reply_enh_valid(unsigned code, const char *enh)
{
	const char *p = enh + 1;

	if (code < 200 || code > 599 || enh == NULL)
		return false;
	if (enh[0] != (char)('0' + code / 100) || enh[0] == '3' || *p++ != '.')
		return false;
	if (!enh_num(&p) || *p++ != '.' || !enh_num(&p))
		return false;
	return *p == '\0';
}

static bool text_ok(const char *t)
{
	for (; *t != '\0'; t++)
		if ((unsigned char)*t < 0x20 || (unsigned char)*t == 0x7F)
			return false;
	return true;
}

/* Append "code<sep>[enh ]text\r\n" at buf + *o. */
static int put_line(char *buf, size_t size, size_t *o, unsigned code, char sep,
		    const char *enh, const char *text)
{
	/* RFC 2034 section 3: the status code "is always followed by one or more spaces" */
	size_t elen = enh != NULL ? strlen(enh) + 1 : 0;
	size_t tlen = strlen(text);
	size_t need = 4 + elen + tlen + 2; /* BOUNDS: "NNN-" enh text CRLF */

	if (!text_ok(text) || need > SMTP_MAX_REPLY_LINE || need > size - *o)
		return -1;
	char *p = buf + *o;
	p[0] = (char)('0' + code / 100);
	p[1] = (char)('0' + code / 10 % 10);
	p[2] = (char)('0' + code % 10);
	p[3] = sep;
	p += 4;
	if (enh != NULL) {
		memcpy(p, enh, strlen(enh));
		p += strlen(enh);
		*p++ = ' ';
	}
	memcpy(p, text, tlen);
	p += tlen;
	*p++ = '\r';
	*p++ = '\n';
	*o += need;
	return 0;
}

static void terminate(char *buf, size_t size, size_t o)
{
	if (o < size)
		buf[o] = '\0';
}

int smtp_reply_format(char *buf, size_t size, unsigned code, const char *enh,
		      const char *const *lines, size_t n, size_t *len_r)
{
	size_t o = 0;

	/* RFC 5321 section 4.2: the first digit 2..5, the second 0..5 */
	if (code < 200 || code > 599 || code / 10 % 10 > 5 || n == 0)
		return -1;
	if (enh != NULL && !smtp_reply_enh_valid(code, enh))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (put_line(buf, size, &o, code, i + 1 < n ? '-' : ' ', enh, lines[i]) < 0)
			return -1;
	terminate(buf, size, o);
	*len_r = o;
	return 0;
}

int smtp_reply_format1(char *buf, size_t size, unsigned code, const char *enh,
		       const char *text, size_t *len_r)
{
	return smtp_reply_format(buf, size, code, enh, &text, 1, len_r);
}

static bool keyword_ok(const char *k)
{
	const char *p = k;

	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
	       (p != k && *p == '-'))
		p++;
	if (p == k || (*p != '\0' && *p != ' '))
		return false;
	for (; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F)
			return false;
	return true;
}

int smtp_reply_ehlo(char *buf, size_t size, const char *domain, const char *greeting,
		    const char *const *keywords, size_t n, size_t *len_r)
{
	char first[SMTP_MAX_REPLY_LINE];
	size_t dl = strlen(domain), gl = greeting != NULL ? strlen(greeting) : 0;
	size_t o = 0;

	if (dl == 0 || dl + 1 + gl >= sizeof(first)) /* BOUNDS: domain SP greeting NUL */
		return -1;
	memcpy(first, domain, dl);
	if (gl > 0) {
		first[dl] = ' ';
		memcpy(first + dl + 1, greeting, gl);
		dl += 1 + gl;
	}
	first[dl] = '\0';
	if (strchr(domain, ' ') != NULL ||
	    put_line(buf, size, &o, 250, n > 0 ? '-' : ' ', NULL, first) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!keyword_ok(keywords[i]) ||
		    put_line(buf, size, &o, 250, i + 1 < n ? '-' : ' ', NULL, keywords[i]) < 0)
			return -1;
	terminate(buf, size, o);
	*len_r = o;
	return 0;
}
