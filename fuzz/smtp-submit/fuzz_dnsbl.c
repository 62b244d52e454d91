/* libFuzzer: the DNSBL answer handling of smtp-submit's policy (policy_client() on port
 * 25), with the input as the resolver's answer to both the A and the TXT query.  The
 * answer comes from the network: checks are no crash, no read past the message, and a
 * refusal only with a 554 5.7.1 reply whose text has no control byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/config.h"
#include "policy.h"

static const uint8_t *answer_data;
static size_t answer_size;

static int fake_dns(void *ctx, const char *name, int type, unsigned char *answer, int anslen)
{
	(void)ctx;
	(void)name;
	(void)type;
	if (answer_size == 0)
		return -1;
	size_t n = answer_size < (size_t)anslen ? answer_size : (size_t)anslen;
	memcpy(answer, answer_data, n);
	return (int)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy *p;
	struct policy_reply r;

	if (p == NULL) {
		struct config cfg;
		const char *err;
		config_defaults(&cfg, "smtp-submit");
		free(cfg.aliases);
		cfg.aliases = strdup("");
		free(cfg.local_domains);
		cfg.local_domains = strdup("example.org");
		free(cfg.dnsbl);
		cfg.dnsbl = strdup("bl.example");
		if (policy_open(&cfg, SUBMIT_MODE_MX, &p, &err) == -1)
			abort();
		config_free(&cfg);
		policy_set_resolver(p, fake_dns, NULL);
	}
	answer_data = data;
	answer_size = size;
	memset(&r, 0, sizeof(r));
	if (policy_client(p, "192.0.2.7", &r) == -1) {
		if (r.code != 554 || strcmp(r.status, "5.7.1") != 0)
			abort();
		for (const char *c = r.text; *c != '\0'; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7F)
				abort();
	}
	return 0;
}
