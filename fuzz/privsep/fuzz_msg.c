/* libFuzzer: the typed messages the root monitor parses (privsep/msg.c).  A frame that
 * parses must read back field by field and rebuild to the same bytes. */
#include <stdint.h>
#include <string.h>
#include "privsep/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct msg m, again;
	const char *err;
	char s[MSG_MAX];

	if (msg_parse(&m, data, size, &err) != 0)
		return 0;
	msg_init(&again, (enum msg_type)m.type);
	for (unsigned i = 0; i < m.nfields; i++) {
		if (msg_add(&again, m.f[i].tag, m.f[i].data, m.f[i].len) != 0)
			__builtin_trap();
		(void)msg_get_str(&m, m.f[i].tag, s, sizeof(s));
	}
	if (again.len != size || memcmp(again.buf, data, size) != 0)
		__builtin_trap();
	return 0;
}
