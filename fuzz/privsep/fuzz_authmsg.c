/* libFuzzer: the worker->monitor request the root monitor parses. */
#include <stdint.h>
#include <string.h>
#include "privsep/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authmsg m, again;
	unsigned char buf[AUTHMSG_MAX];

	if (authmsg_decode(data, size, &m) == 0) {
		long n = authmsg_encode(&m, buf, sizeof(buf));
		if (n != (long)size || memcmp(buf, data, size) != 0 ||
		    authmsg_decode(buf, (size_t)n, &again) != 0)
			__builtin_trap();
	}
	return 0;
}
