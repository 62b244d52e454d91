/* libFuzzer: the INI config parser (config.c through libinih). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct config cfg;
	const char *err;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	config_load_string(&cfg, text, "ipop3d", &err);
	config_free(&cfg);
	free(text);
	return 0;
}
