/* libFuzzer: the dns library's answer handling (dns/answer.c) on records from the
 * network.  Input: one flags byte (bits 0-1: rcode 0/2/3/5, bit 2 nxdomain, bit 3
 * secure, bit 4 bogus), then records, each a 1-byte length and that many rdata bytes
 * (as ub_result hands them).  The same records go through every type's handling, the
 * name decoder runs on the whole input, and the results' invariants are checked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "dns/answer.h"

static uint32_t rnd(void *ctx, uint32_t bound)
{
	unsigned *s = ctx;
	*s = *s * 1103515245u + 12345u;
	return bound == 0 ? 0 : (*s >> 16) % bound;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_mx_result mx;
	static struct dns_addr_result ad;
	static struct dns_tlsa_result tl;
	static struct dns_txt_result tx;
	static struct dns_ptr_result pt;
	char *recs[64];
	int lens[64];
	size_t n = 0, i = 1;
	char name[DNS_NAME_MAX + 1];
	size_t used;

	if (size == 0)
		return 0;
	if (dns_name_decode(data, size, &used, name) == 0 && (used > size || strlen(name) > DNS_NAME_MAX))
		abort();
	static const int rcodes[] = { 0, 2, 3, 5 };
	struct dns_raw raw = {
		.rcode = rcodes[data[0] & 3],
		.nxdomain = (data[0] & 4) != 0,
		.secure = (data[0] & 8) != 0,
		.bogus = (data[0] & 16) != 0,
		.why_bogus = "fuzz",
	};
	/* each record in its own allocation, so ASan sees a read past its end */
	while (i < size && n < 64) {
		size_t len = data[i++];
		if (len > size - i)
			len = size - i;
		recs[n] = malloc(len > 0 ? len : 1);
		if (recs[n] == NULL)
			break;
		memcpy(recs[n], data + i, len);
		lens[n] = (int)len;
		n++;
		i += len;
	}
	raw.count = n;
	raw.havedata = n > 0;
	raw.data = recs;
	raw.len = lens;

	unsigned seed = size;
	const char *self[] = { "me.test" };
	dns_answer_mx(&raw, "fuzz.test", self, 1, rnd, &seed, &mx);
	if (mx.n > DNS_MAX_MX || (mx.null_mx && mx.n != 0) || (mx.self && mx.n != 0))
		abort();
	for (size_t k = 1; k < mx.n; k++)
		if (mx.mx[k - 1].pref > mx.mx[k].pref)
			abort();
	for (size_t k = 0; k < mx.n; k++)
		if (!dns_name_ok(mx.mx[k].host) || dns_name_equal(mx.mx[k].host, "me.test"))
			abort();
	dns_answer_addr(&raw, &raw, rnd, &seed, &ad);
	if (ad.n > DNS_MAX_ADDRS || (ad.m.status != DNS_OK && ad.n != 0))
		abort();
	dns_answer_tlsa(&raw, &tl);
	if (tl.n > DNS_MAX_TLSA)
		abort();
	for (size_t k = 0; k < tl.n; k++)
		if (tl.tlsa[k].len == 0 || tl.tlsa[k].len > DNS_TLSA_MAX_DATA)
			abort();
	dns_answer_txt(&raw, &tx);
	for (size_t k = 0; k < tx.n; k++)
		if (tx.txt[k].len > DNS_TXT_MAX || tx.txt[k].text[tx.txt[k].len] != '\0')
			abort();
	dns_answer_ptr(&raw, &pt);
	for (size_t k = 0; k < pt.n; k++)
		if (!dns_name_ok(pt.name[k]))
			abort();
	if (mx.m.status == DNS_BOGUS && mx.m.secure)
		abort();
	for (size_t k = 0; k < n; k++)
		free(recs[k]);
	return 0;
}
