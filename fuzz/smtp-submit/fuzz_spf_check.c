/* libFuzzer: submit_spf_check(), -t's look at a domain's SPF record (a TXT answer from the
 * network).  The first byte picks the address family and the mx/a answers, the next 16
 * bytes the address, the rest is the record (not NUL-terminated: no read past it).
 * Checks: no crash, a verdict in range, and a record that does not start "v=spf1" is
 * never taken for SPF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "submit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_addr a;
	if (size < 17)
		return 0;
	memset(&a, 0, sizeof(a));
	a.family = (data[0] & 1) ? AF_INET6 : AF_INET;
	memcpy(a.addr, data + 1, 16);
	size_t len = size - 17;
	char *rec = malloc(len ? len : 1);
	if (rec == NULL)
		return 0;
	memcpy(rec, data + 17, len);
	enum spf_verdict v = submit_spf_check(rec, len, &a, (data[0] & 2) != 0,
					      (data[0] & 4) != 0);
	if (v != SPF_NOT_SPF && v != SPF_ALLOWS && v != SPF_REFUSES && v != SPF_UNKNOWN)
		abort();
	if (v != SPF_NOT_SPF && (len < 6 || strncasecmp(rec, "v=spf1", 6) != 0))
		abort();
	free(rec);
	return 0;
}
