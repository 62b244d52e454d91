/* date.c: a table of Date: values with the expected UTC time and zone, refused values,
 * each parsed from an exact-size copy and cut at every length; the calendar arithmetic
 * against every day of 1600..2400 and glibc's timegm(); formatting round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/util.h"
#include "mail/date.h"
#include "unit.h"

struct dcase {
	const char *in;
	long long t;  /* -1: refused */
	int tz;
};

static const struct dcase cases[] = {
	{ "Fri, 21 Nov 1997 09:55:06 -0600", 880127706, -360 },
	{ "Fri, 21 Nov 1997 09:55:06 +0000", 880106106, 0 },
	{ "21 Nov 1997 09:55:06 -0600", 880127706, -360 },             /* no day-of-week */
	{ "Fri, 21 Nov 1997 09:55 -0600", 880127700, -360 },          /* no seconds */
	{ "Fri,21 Nov 1997 09:55:06 -0600", 880127706, -360 },
	{ "  Fri , 21 Nov 1997 09:55:06 -0600  ", 880127706, -360 },
	{ "Friday, 21 November 1997 09:55:06 -0600", 880127706, -360 },
	{ "fri, 21 nov 1997 09:55:06 -0600", 880127706, -360 },
	{ "Fri, 1 Jan 2027 00:00:00 +0000", 1798761600, 0 },
	{ "Fri, 01 Jan 2027 00:00:00 +0130", 1798761600 - 5400, 90 },
	/* obsolete, RFC 5322 section 4.3 */
	{ "Fri, 21 Nov 97 09:55:06 GMT", 880106106, 0 },
	{ "Fri, 21 Nov 97 09:55:06 UT", 880106106, 0 },
	{ "Fri, 21 Nov 97 09:55:06 Z", 880106106, 0 },
	{ "Fri, 21 Nov 97 09:55:06 EST", 880124106, -300 },
	{ "Fri, 21 Nov 97 09:55:06 edt", 880120506, -240 },
	{ "Fri, 21 Nov 97 09:55:06 PST", 880134906, -480 },
	{ "Fri, 21 Nov 97 09:55:06 PDT", 880131306, -420 },
	{ "Fri, 21 Nov 97 09:55:06 CST", 880127706, -360 },
	{ "Fri, 21 Nov 97 09:55:06 MDT", 880127706, -360 },
	{ "Fri, 21 Nov 97 09:55:06 A", 880106106, 0 },               /* military: -0000 */
	{ "Fri, 21 Nov 97 09:55:06 XYZ", 880106106, 0 },             /* unknown: -0000 */
	{ "Fri, 21 Nov 97 09:55:06", 880106106, 0 },                 /* no zone */
	{ "Sat, 1 Jan 00 00:00:00 +0000", 946684800, 0 },            /* 00 -> 2000 */
	{ "Fri, 31 Dec 49 00:00:00 +0000", 2524521600LL, 0 },        /* 49 -> 2049 */
	{ "Fri, 1 Jan 50 00:00:00 +0000", -631152000, 0 },           /* 50 -> 1950 */
	{ "Fri, 21 Nov 097 09:55:06 GMT", 880106106, 0 },            /* 3 digits +1900 */
	{ "Fri, 21 Nov 1997 09 : 55 : 06 -0600", 880127706, -360 },
	{ "Fri, 21 Nov 1997 09:55:06 -0600 (CST)", 880127706, -360 },
	{ "(c) Fri, (x) 21 (y) Nov (z) 1997 (w) 09:55:06 (q) -0600 (e)", 880127706, -360 },
	{ "Fri, 21 Nov 1997 09:55:06 ((nested) c) -0600", 880127706, -360 },
	{ "Fri,\r\n 21 Nov 1997\r\n 09:55:06 -0600", 880127706, -360 },
	{ "Thu, 29 Feb 1996 12:00:00 +0000", 825595200, 0 },
	{ "Sat, 29 Feb 2000 00:00:00 +0000", 951782400, 0 },
	{ "Wed, 31 Dec 1969 23:59:59 +0000", -1, -2 },              /* -1 as a time: see main */
	{ "Sat, 30 Jun 2012 23:59:60 +0000", 1341100799, 0 },        /* leap second -> 59 */
	{ "Fri, 21 Nov 1997 09:55:06 +9959", 880106106 - 359940, 5999 },
	{ "Mon, 1 Jan 0001 00:00:00 +0000", -62135596800LL, 0 },
	{ "Fri, 31 Dec 9999 23:59:59 +0000", 253402300799LL, 0 },
	{ "Fri, 21 Nov 1997 09:55:06 (unterminated", 880106106, 0 }, /* a comment, no zone */
	/* refused */
	{ "", -1, 0 },
	{ "garbage", -1, 0 },
	{ "Fri, 21 Nov 1997", -1, 0 },
	{ "Fri, 21 Nov 1997 09", -1, 0 },
	{ "Fri, 21 Nov 1997 09:5 +0000", -1, 0 },
	{ "Fri, 32 Nov 1997 09:55:06 -0600", -1, 0 },
	{ "Fri, 31 Nov 1997 09:55:06 -0600", -1, 0 },
	{ "Fri, 29 Feb 1900 09:55:06 -0600", -1, 0 },
	{ "Fri, 29 Feb 1997 09:55:06 -0600", -1, 0 },
	{ "Fri, 0 Nov 1997 09:55:06 -0600", -1, 0 },
	{ "Fri, 21 Nox 1997 09:55:06 -0600", -1, 0 },
	{ "Fri, 21 Nov 1997 24:00:00 -0600", -1, 0 },
	{ "Fri, 21 Nov 1997 09:60:00 -0600", -1, 0 },
	{ "Fri, 21 Nov 1997 09:55:61 -0600", -1, 0 },
	{ "Fri, 21 Nov 1997 09:55:06 -06", -1, 0 },
	{ "Fri, 21 Nov 1997 09:55:06 -0660", -1, 0 },
	{ "Fri, 21 Nov 7 09:55:06 -0600", -1, 0 },
	{ "Nov 21 1997 09:55:06", -1, 0 },
};

static void cases_run(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dcase *c = &cases[i];
		size_t len = strlen(c->in);
		char *copy = xmalloc(len ? len : 1);
		memcpy(copy, c->in, len);
		time_t t;
		int tz;
		int r = date_parse_rfc5322(copy, len, &t, &tz);
		if (c->tz == -2) { /* the one date that is time -1 */
			CHECK(r == 0 && t == -1 && tz == 0);
		} else if (c->t == -1) {
			if (r != -1)
				fprintf(stderr, "case <%s>: %lld\n", c->in, (long long)t);
			CHECK(r == -1 && t == -1);
		} else {
			if (r != 0 || t != c->t || tz != c->tz)
				fprintf(stderr, "case <%s>: r=%d t=%lld tz=%d\n", c->in, r,
					(long long)t, tz);
			CHECK(r == 0 && t == c->t && tz == c->tz);
		}
		for (size_t k = 0; k < len; k++)
			date_parse_rfc5322(copy, k, &t, &tz);
		free(copy);
	}
}

static void calendar(void)
{
	long long fails = 0;
	long long d0 = date_days_from_civil(1600, 1, 1);
	for (long long d = d0; d < d0 + 800LL * 366; d++) {
		long long y;
		unsigned m, dd;
		date_civil_from_days(d, &y, &m, &dd);
		if (date_days_from_civil(y, m, dd) != d)
			fails++;
		if (y >= 1902 && y < 2400 && dd == 1) {
			struct tm tm = { 0 };
			tm.tm_year = (int)(y - 1900);
			tm.tm_mon = (int)m - 1;
			tm.tm_mday = (int)dd;
			if (timegm(&tm) != (time_t)(d * 86400))
				fails++;
		}
	}
	CHECK(fails == 0);
	CHECK(date_days_from_civil(1970, 1, 1) == 0);
	CHECK(date_days_from_civil(2000, 3, 1) == 11017);
}

static void formats(void)
{
	char b[64];
	time_t t;
	int tz;

	CHECK(date_format_rfc5322(880127706, -360, b) == 0);
	CHECK_STR(b, "Fri, 21 Nov 1997 09:55:06 -0600");
	CHECK(date_format_rfc5322(0, 0, b) == 0);
	CHECK_STR(b, "Thu, 01 Jan 1970 00:00:00 +0000");
	CHECK(date_format_rfc5322(-1, 60, b) == 0);
	CHECK_STR(b, "Thu, 01 Jan 1970 00:59:59 +0100");
	CHECK(date_format_rfc5322(253402300799LL, 0, b) == 0);
	CHECK_STR(b, "Fri, 31 Dec 9999 23:59:59 +0000");
	CHECK(date_format_rfc5322(253402300800LL, 0, b) == -1);
	CHECK(date_format_rfc5322(0, 6000, b) == -1);
	CHECK(date_format_imap_datetime(880127706, -360, b) == 0);
	CHECK_STR(b, "21-Nov-1997 09:55:06 -0600");
	CHECK(date_format_imap_datetime(1798761600, 0, b) == 0);
	CHECK_STR(b, " 1-Jan-2027 00:00:00 +0000");
	CHECK(date_format_imap_date(1798761600 + 86399, b) == 0);
	CHECK_STR(b, "1-Jan-2027");
	CHECK(date_format_imap_date(880127706, b) == 0);
	CHECK_STR(b, "21-Nov-1997");

	/* round trips over a range of times and zones */
	int bad = 0;
	for (long long x = -2208988800LL; x < 4102444800LL; x += 7777777) {
		for (int z = -720; z <= 840; z += 345) {
			date_format_rfc5322((time_t)x, z, b);
			if (date_parse_rfc5322(b, strlen(b), &t, &tz) != 0 || t != x || tz != z)
				bad++;
			date_format_imap_datetime((time_t)x, z, b);
			if (date_parse_imap_datetime(b, strlen(b), &t, &tz) != 0 || t != x ||
			    tz != z)
				bad++;
		}
	}
	CHECK(bad == 0);

	/* IMAP date-time */
	CHECK(date_parse_imap_datetime("\"21-Nov-1997 09:55:06 -0600\"", 28, &t, &tz) == 0 &&
	      t == 880127706 && tz == -360);
	CHECK(date_parse_imap_datetime(" 1-Jan-2027 00:00:00 +0000", 26, &t, &tz) == 0 &&
	      t == 1798761600);
	CHECK(date_parse_imap_datetime("1-jan-2027 00:00:00 +0000", 25, &t, &tz) == 0 &&
	      t == 1798761600);
	static const char *const bad_dt[] = {
		"21-Nov-1997 09:55:06", "21-Nov-1997 09:55 -0600", "21-Nov-97 09:55:06 -0600",
		"21 Nov 1997 09:55:06 -0600", "21-Nov-1997 09:55:06 -0600 ", "\"21-Nov-1997",
		"31-Apr-2020 00:00:00 +0000", "21-Nov-1997 09:55:06 +0060", "",
	};
	for (size_t i = 0; i < sizeof(bad_dt) / sizeof(bad_dt[0]); i++)
		CHECK(date_parse_imap_datetime(bad_dt[i], strlen(bad_dt[i]), &t, &tz) == -1 &&
		      t == -1);

	/* IMAP date */
	CHECK(date_parse_imap_date("1-Feb-1994", 10, &t) == 0 && t == 760060800);
	CHECK(date_parse_imap_date("01-feb-1994", 11, &t) == 0 && t == 760060800);
	CHECK(date_parse_imap_date("\"1-Feb-1994\"", 12, &t) == 0 && t == 760060800);
	static const char *const bad_d[] = {
		"1-Feb-94", "1-Febr-1994", "1 Feb 1994", "1-Feb-1994 ", "001-Feb-1994",
		"30-Feb-1994", "0-Feb-1994", "1-Feb-19944", "\"1-Feb-1994", "", "-Feb-1994",
	};
	for (size_t i = 0; i < sizeof(bad_d) / sizeof(bad_d[0]); i++) {
		int r = date_parse_imap_date(bad_d[i], strlen(bad_d[i]), &t);
		if (r != -1)
			fprintf(stderr, "imap date <%s> accepted\n", bad_d[i]);
		CHECK(r == -1 && t == -1);
	}
}

int main(void)
{
	cases_run();
	calendar();
	formats();
	return unit_done("test_date");
}
