/* Date parsing and formatting (date.h).  The day count is the usual era arithmetic: a
 * 400-year era has 146097 days, and counting years from March puts the leap day last. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include "mail/date.h"

static const char months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};
static const char wdays[7][4] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };

long long date_days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);                        /* [0, 399] */
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  /* [0, 365] */
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            /* [0, 146096] */
	return era * 146097 + (long long)doe - 719468;
}

void date_civil_from_days(long long z, long long *y_r, unsigned *m_r, unsigned *d_r)
{
	z += 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	*y_r = (long long)yoe + era * 400 + (m <= 2);
	*m_r = m;
	*d_r = d;
}

static bool leap(long long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(long long y, unsigned m)
{
	static const unsigned char n[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && leap(y) ? 29 : n[m - 1];
}

struct cur {
	const char *p, *end;
};

/* CFWS: spaces, tabs, CR, LF and comments (nested; a counter, no recursion). */
static void skip_cfws(struct cur *c)
{
	unsigned depth = 0;

	while (c->p < c->end) {
		char ch = *c->p;
		if (depth > 0) {
			c->p++;
			if (ch == '\\' && c->p < c->end)
				c->p++;
			else if (ch == '(')
				depth++;
			else if (ch == ')')
				depth--;
		} else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			c->p++;
		} else if (ch == '(') {
			depth = 1;
			c->p++;
		} else {
			break;
		}
	}
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* 1..max digits; returns how many were read (0: none). */
static unsigned read_num(struct cur *c, unsigned max, unsigned *v_r)
{
	unsigned n = 0, v = 0;
	while (c->p < c->end && is_digit(*c->p) && n < max) {
		v = v * 10 + (unsigned)(*c->p++ - '0');
		n++;
	}
	*v_r = v;
	return n;
}

static size_t read_word(struct cur *c, const char **w_r)
{
	*w_r = c->p;
	while (c->p < c->end && is_alpha(*c->p))
		c->p++;
	return (size_t)(c->p - *w_r);
}

/* "Jan".."Dec", or a full name ("January"): 1..12, or 0. */
static unsigned month_of(const char *w, size_t n)
{
	static const char *const full[12] = {
		"january", "february", "march", "april", "may", "june", "july", "august",
		"september", "october", "november", "december"
	};
	for (unsigned i = 0; i < 12; i++)
		if ((n == 3 && strncasecmp(w, months[i], 3) == 0) ||
		    (n == strlen(full[i]) && strncasecmp(w, full[i], n) == 0))
			return i + 1;
	return 0;
}

/* The alphabetic zones of RFC 5322 section 4.3: minutes east, or 0 for the rest. */
static int zone_of(const char *w, size_t n)
{
	static const struct {
		const char *name;
		int min;
	} zones[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "Z", 0 }, { "UTC", 0 },
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
		{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
	};
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (n == strlen(zones[i].name) && strncasecmp(w, zones[i].name, n) == 0)
			return zones[i].min;
	return 0; /* military letters and unknown names: -0000 */
}

static int make_time(long long y, unsigned mon, unsigned d, unsigned h, unsigned mi,
		     unsigned s, int tz, time_t *time_r)
{
	if (mon < 1 || mon > 12 || d < 1 || d > month_days(y, mon) || h > 23 || mi > 59 ||
	    s > 60 || y < 0 || y > 9999)
		return -1;
	if (s == 60)
		s = 59;
	long long days = date_days_from_civil(y, mon, d);
	/* BOUNDS: |days| < 4e6 for years 0..9999: no overflow in 64 bits */
	*time_r = (time_t)(days * 86400 + h * 3600LL + mi * 60LL + s - tz * 60LL);
	return 0;
}

/* hh ":" mm [ ":" ss ], CFWS allowed around the colons (obs-hour etc.). */
static int read_time(struct cur *c, unsigned *h, unsigned *mi, unsigned *s)
{
	*s = 0;
	if (read_num(c, 2, h) == 0)
		return -1;
	skip_cfws(c);
	if (c->p == c->end || *c->p != ':')
		return -1;
	c->p++;
	skip_cfws(c);
	if (read_num(c, 2, mi) != 2)
		return -1;
	skip_cfws(c);
	if (c->p < c->end && *c->p == ':') {
		c->p++;
		skip_cfws(c);
		if (read_num(c, 2, s) != 2)
			return -1;
	}
	return 0;
}

/* zone: +hhmm / -hhmm, or a name; none at all is -0000. */
static int read_zone(struct cur *c, int *tz_r)
{
	*tz_r = 0;
	skip_cfws(c);
	if (c->p == c->end)
		return 0;
	if (*c->p == '+' || *c->p == '-') {
		int sign = *c->p++ == '-' ? -1 : 1;
		unsigned v;
		if (read_num(c, 4, &v) != 4 || v % 100 > 59)
			return -1;
		*tz_r = sign * (int)(v / 100 * 60 + v % 100);
		return 0;
	}
	const char *w;
	size_t n = read_word(c, &w);
	if (n > 0)
		*tz_r = zone_of(w, n);
	/* anything after the zone (junk, a second zone name) is ignored */
	return 0;
}

int date_parse_rfc5322(const char *s, size_t len, time_t *time_r, int *tz_min_r)
{
	struct cur c = { s, s + len };
	unsigned day, mon, year, h, mi, sec, ny;
	const char *w;
	size_t n;
	int tz;

	*time_r = -1;
	*tz_min_r = 0;
	skip_cfws(&c);
	/* [ day-of-week "," ]: a word followed by a comma (obs: CFWS before the comma) */
	const char *save = c.p;
	n = read_word(&c, &w);
	if (n > 0) {
		skip_cfws(&c);
		if (c.p < c.end && *c.p == ',')
			c.p++;
		else if (month_of(w, n) != 0)
			c.p = save; /* no day-of-week: "Nov 27 ..." is not RFC 5322; refused below */
	}
	skip_cfws(&c);
	if (read_num(&c, 2, &day) == 0)
		return -1;
	skip_cfws(&c);
	n = read_word(&c, &w);
	mon = month_of(w, n);
	if (mon == 0)
		return -1;
	skip_cfws(&c);
	ny = read_num(&c, 4, &year);
	if (ny < 2)
		return -1;
	if (ny == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ny == 3)
		year += 1900;
	skip_cfws(&c);
	if (read_time(&c, &h, &mi, &sec) < 0 || read_zone(&c, &tz) < 0)
		return -1;
	if (make_time(year, mon, day, h, mi, sec, tz, time_r) < 0) {
		*time_r = -1;
		return -1;
	}
	*tz_min_r = tz;
	return 0;
}

static int fmt_zone(int tz, char *out)
{
	if (tz < -5999 || tz > 5999)
		return -1;
	unsigned a = (unsigned)(tz < 0 ? -tz : tz);
	out[0] = tz < 0 ? '-' : '+';
	out[1] = (char)('0' + a / 60 / 10);
	out[2] = (char)('0' + a / 60 % 10);
	out[3] = (char)('0' + a % 60 / 10);
	out[4] = (char)('0' + a % 60 % 10);
	out[5] = '\0';
	return 0;
}

struct civil {
	long long y;
	unsigned m, d, h, mi, s, wday;
};

static int to_civil(time_t t, int tz, struct civil *cv)
{
	if (tz < -5999 || tz > 5999)
		return -1;
	/* BOUNDS: time_t of years beyond 0..9999 is refused before any arithmetic
	 * could overflow (253402300800 is 10000-01-01) */
	if (t < -62167219200LL - 86400 || t > 253402300800LL + 86400)
		return -1;
	long long lt = (long long)t + tz * 60LL;
	long long days = lt >= 0 ? lt / 86400 : (lt - 86399) / 86400;
	long long secs = lt - days * 86400;
	date_civil_from_days(days, &cv->y, &cv->m, &cv->d);
	if (cv->y < 0 || cv->y > 9999)
		return -1;
	cv->h = (unsigned)(secs / 3600);
	cv->mi = (unsigned)(secs / 60 % 60);
	cv->s = (unsigned)(secs % 60);
	cv->wday = (unsigned)(((days % 7) + 7) % 7);
	return 0;
}

static void put2(char *o, unsigned v)
{
	o[0] = (char)('0' + v / 10 % 10);
	o[1] = (char)('0' + v % 10);
}

static void put4(char *o, long long y)
{
	put2(o, (unsigned)(y / 100));
	put2(o + 2, (unsigned)(y % 100));
}

int date_format_rfc5322(time_t t, int tz_min, char *buf)
{
	struct civil cv;
	char z[6];

	if (to_civil(t, tz_min, &cv) < 0 || fmt_zone(tz_min, z) < 0)
		return -1;
	/* "Fri, 27 Nov 2026 20:43:57 +0000" */
	memcpy(buf, wdays[cv.wday], 3);
	memcpy(buf + 3, ", ", 2);
	put2(buf + 5, cv.d);
	buf[7] = ' ';
	memcpy(buf + 8, months[cv.m - 1], 3);
	buf[11] = ' ';
	put4(buf + 12, cv.y);
	buf[16] = ' ';
	put2(buf + 17, cv.h);
	buf[19] = ':';
	put2(buf + 20, cv.mi);
	buf[22] = ':';
	put2(buf + 23, cv.s);
	buf[25] = ' ';
	memcpy(buf + 26, z, 6); /* BOUNDS: 26 + 6 = DATE_RFC5322_SIZE, with the NUL */
	return 0;
}

int date_format_imap_datetime(time_t t, int tz_min, char *buf)
{
	struct civil cv;
	char z[6];

	if (to_civil(t, tz_min, &cv) < 0 || fmt_zone(tz_min, z) < 0)
		return -1;
	/* "27-Nov-2026 20:43:57 +0000", date-day-fixed: " 7-Nov-2026" */
	put2(buf, cv.d);
	if (buf[0] == '0')
		buf[0] = ' ';
	buf[2] = '-';
	memcpy(buf + 3, months[cv.m - 1], 3);
	buf[6] = '-';
	put4(buf + 7, cv.y);
	buf[11] = ' ';
	put2(buf + 12, cv.h);
	buf[14] = ':';
	put2(buf + 15, cv.mi);
	buf[17] = ':';
	put2(buf + 18, cv.s);
	buf[20] = ' ';
	memcpy(buf + 21, z, 6); /* BOUNDS: 21 + 6 = 27 < DATE_IMAP_DATETIME_SIZE */
	return 0;
}

int date_format_imap_date(time_t t, char *buf)
{
	struct civil cv;
	size_t o = 0;

	if (to_civil(t, 0, &cv) < 0)
		return -1;
	if (cv.d >= 10)
		buf[o++] = (char)('0' + cv.d / 10);
	buf[o++] = (char)('0' + cv.d % 10);
	buf[o++] = '-';
	memcpy(buf + o, months[cv.m - 1], 3);
	o += 3;
	buf[o++] = '-';
	put4(buf + o, cv.y);
	buf[o + 4] = '\0'; /* BOUNDS: at most 11 + NUL = DATE_IMAP_DATE_SIZE */
	return 0;
}

/* "d-Mon-yyyy" at c: the day, month and year (exactly 3 letters, 4 digits). */
static int read_imap_date(struct cur *c, unsigned *d, unsigned *m, unsigned *y)
{
	if (read_num(c, 2, d) == 0 || c->p == c->end || *c->p != '-')
		return -1;
	c->p++;
	if (c->end - c->p < 4 || c->p[3] != '-')
		return -1;
	*m = 0;
	for (unsigned i = 0; i < 12; i++)
		if (strncasecmp(c->p, months[i], 3) == 0)
			*m = i + 1;
	if (*m == 0)
		return -1;
	c->p += 4;
	return read_num(c, 4, y) == 4 ? 0 : -1;
}

/* Strip one pair of DQUOTEs around the whole string. */
static void unquote(struct cur *c)
{
	if (c->end - c->p >= 2 && c->p[0] == '"' && c->end[-1] == '"') {
		c->p++;
		c->end--;
	}
}

int date_parse_imap_date(const char *s, size_t len, time_t *time_r)
{
	struct cur c = { s, s + len };
	unsigned d, m, y;

	*time_r = -1;
	unquote(&c);
	if (read_imap_date(&c, &d, &m, &y) < 0 || c.p != c.end ||
	    make_time(y, m, d, 0, 0, 0, 0, time_r) < 0) {
		*time_r = -1;
		return -1;
	}
	return 0;
}

int date_parse_imap_datetime(const char *s, size_t len, time_t *time_r, int *tz_min_r)
{
	struct cur c = { s, s + len };
	unsigned d, m, y, h, mi, sec;
	unsigned v;

	*time_r = -1;
	*tz_min_r = 0;
	unquote(&c);
	if (c.p < c.end && *c.p == ' ')
		c.p++; /* date-day-fixed's space */
	if (read_imap_date(&c, &d, &m, &y) < 0 || c.p == c.end || *c.p++ != ' ')
		return -1;
	if (read_num(&c, 2, &h) != 2 || c.p == c.end || *c.p++ != ':' ||
	    read_num(&c, 2, &mi) != 2 || c.p == c.end || *c.p++ != ':' ||
	    read_num(&c, 2, &sec) != 2 || c.p == c.end || *c.p++ != ' ')
		return -1;
	if (c.p == c.end || (*c.p != '+' && *c.p != '-'))
		return -1;
	int sign = *c.p++ == '-' ? -1 : 1;
	if (read_num(&c, 4, &v) != 4 || v % 100 > 59 || c.p != c.end)
		return -1;
	int tz = sign * (int)(v / 100 * 60 + v % 100);
	if (make_time(y, m, d, h, mi, sec, tz, time_r) < 0) {
		*time_r = -1;
		return -1;
	}
	*tz_min_r = tz;
	return 0;
}
