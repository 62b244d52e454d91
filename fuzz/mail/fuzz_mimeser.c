/* libFuzzer: reading a serialised part tree or envelope (the index cache: hostile
 * bytes).  Byte 0 picks which; the rest is the data.  Checks: no crash or leak; what
 * reads back serialises to exactly the same bytes (the form is canonical, so nothing
 * unchecked slips through) and reads again equal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mail/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *error;
	size_t len;
	if ((data[0] & 1) == 0) {
		struct mime_part *root = NULL, *again = NULL;
		if (mimeser_parts_read(data + 1, size - 1, &root, &error) != 0)
			return 0;
		unsigned char *ser = mimeser_parts_write(root, &len);
		if (len != size - 1 || memcmp(ser, data + 1, len) != 0 ||
		    mimeser_parts_read(ser, len, &again, &error) != 0 ||
		    !mimeser_parts_equal(root, again))
			abort();
		free(ser);
		mime_part_free(&root);
		mime_part_free(&again);
	} else {
		struct mail_envelope_fields *env = NULL;
		if (mimeser_envelope_read(data + 1, size - 1, &env, &error) != 0)
			return 0;
		unsigned char *ser = mimeser_envelope_write(env, &len);
		if (len != size - 1 || memcmp(ser, data + 1, len) != 0)
			abort();
		free(ser);
		mime_envelope_free(&env);
	}
	return 0;
}
