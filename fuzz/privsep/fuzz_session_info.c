/* libFuzzer: MSG_START_SESSION as the session reads it (session_info_from_msg, after
 * msg_parse).  What it accepts must rebuild to a message that reads back the same. */
#include <stdint.h>
#include <string.h>
#include "privsep/server_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct msg m, again, back;
	struct session_info si, si2;
	const char *err;

	if (msg_parse(&m, data, size, &err) != 0 || session_info_from_msg(&m, &si) != 0)
		return 0;
	if (strlen(si.session_id) > SESSION_ID_LEN || si.rport > 65535 || si.lport > 65535)
		__builtin_trap();
	if (session_info_to_msg(&si, &again) != 0 ||
	    msg_parse(&back, again.buf, again.len, &err) != 0 ||
	    session_info_from_msg(&back, &si2) != 0 || memcmp(&si, &si2, sizeof(si)) != 0)
		__builtin_trap();
	return 0;
}
