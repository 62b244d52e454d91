/* Dates: the RFC 5322 section 3.3 date-time of a Date: header (with the obsolete forms
 * of section 4.3), IMAP's date-time (RFC 3501 / RFC 9051: INTERNALDATE, APPEND) and
 * IMAP's date (SEARCH SINCE/BEFORE/ON/SENTSINCE...).  No I/O, no locale, no TZ: the
 * calendar arithmetic is our own (proleptic Gregorian, UTC), never mktime().
 * Times are time_t seconds since the epoch, UTC; a zone is minutes east of UTC. */
#ifndef POSTERN_DATE_H
#define POSTERN_DATE_H
#include <stddef.h>
#include <time.h>

/* Parse a Date: field value.  Lenient as RFC 5322 section 4.3 asks: optional
 * day-of-week (any case, full names too), 1- or 2-digit day, month names in any case,
 * 2-digit years (00-49 -> 20xx, 50-99 -> 19xx) and 3-digit years (+1900), missing
 * seconds, CFWS (comments, folding) anywhere between tokens, zones +hhmm/-hhmm, UT, GMT,
 * Z, EST/EDT/CST/CDT/MST/MDT/PST/PDT, and military letters and unknown or missing
 * zones as -0000 (section 4.3: their meaning is unknown).  Fields out of range (day 31
 * of April, hour 24, minute 60) are refused; second 60 (a leap second) counts as 59.
 * Returns 0 with *time_r (UTC) and *tz_min_r, or -1 (then *time_r = -1): no date. */
int date_parse_rfc5322(const char *s, size_t len, time_t *time_r, int *tz_min_r);

/* "Fri, 27 Nov 2026 20:43:57 +0000": t shown in zone tz_min.  buf must hold
 * DATE_RFC5322_SIZE bytes.  Returns 0, or -1 if the year is not in 0..9999. */
#define DATE_RFC5322_SIZE 32
int date_format_rfc5322(time_t t, int tz_min, char *buf);

/* IMAP date-time: "27-Nov-2026 20:43:57 +0000" (day-fixed: " 7-Nov-..."), no quotes.
 * date_parse_imap_datetime() takes it with or without the DQUOTEs, and a 1-digit day with
 * or without its space.  0 or -1, as above. */
#define DATE_IMAP_DATETIME_SIZE 28
int date_format_imap_datetime(time_t t, int tz_min, char *buf);
int date_parse_imap_datetime(const char *s, size_t len, time_t *time_r, int *tz_min_r);

/* IMAP date "d-Mon-yyyy" (quoted or not, RFC 3501 date): *time_r is that day's 00:00
 * UTC (SEARCH compares dates "disregarding time and timezone").  0 or -1. */
#define DATE_IMAP_DATE_SIZE 12
int date_parse_imap_date(const char *s, size_t len, time_t *time_r);
int date_format_imap_date(time_t t, char *buf);

/* Calendar helpers: days since 1970-01-01 for a proleptic Gregorian date, and back. */
long long date_days_from_civil(long long y, unsigned m, unsigned d);
void date_civil_from_days(long long days, long long *y_r, unsigned *m_r, unsigned *d_r);

#endif
