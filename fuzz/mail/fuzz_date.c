/* libFuzzer: date_parse_rfc5322(), date_parse_imap_datetime(), date_parse_imap_date().
 * Checks: a parsed date formats again (years 0..9999, zones within +-99:59) and the
 * formatted text parses back to the same time and zone; a refusal leaves time -1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/date.h"

static void roundtrip(time_t t, int tz)
{
	char b[DATE_RFC5322_SIZE + DATE_IMAP_DATETIME_SIZE];
	time_t t2;
	int tz2;

	if (tz < -5999 || tz > 5999)
		abort();
	if (date_format_rfc5322(t, tz, b) == 0) {
		if (strlen(b) != DATE_RFC5322_SIZE - 1 ||
		    date_parse_rfc5322(b, strlen(b), &t2, &tz2) != 0 || t2 != t || tz2 != tz)
			abort();
	}
	if (date_format_imap_datetime(t, tz, b) == 0) {
		if (date_parse_imap_datetime(b, strlen(b), &t2, &tz2) != 0 || t2 != t ||
		    tz2 != tz)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size ? size : 1);
	time_t t;
	int tz;

	memcpy(s, data, size);
	if (date_parse_rfc5322(s, size, &t, &tz) == 0)
		roundtrip(t, tz);
	else if (t != -1)
		abort();
	if (date_parse_imap_datetime(s, size, &t, &tz) == 0)
		roundtrip(t, tz);
	else if (t != -1)
		abort();
	if (date_parse_imap_date(s, size, &t) == 0) {
		char b[DATE_IMAP_DATE_SIZE];
		time_t t2;
		if (t % 86400 != 0 || date_format_imap_date(t, b) != 0 ||
		    date_parse_imap_date(b, strlen(b), &t2) != 0 || t2 != t)
			abort();
	} else if (t != -1) {
		abort();
	}
	free(s);
	return 0;
}
