/* dkimsign: a test tool (not installed, not run by `make unit`): sign a message with
 * common/mail/dkim.c for the integration tests, which verify the result with other
 * implementations (dkimpy, opendkim).
 *   dkimsign KEYFILE DOMAIN SELECTOR [CHUNK] < message > signed-message
 * The message is fed in CHUNK-byte pieces (default 4096); the output is the
 * DKIM-Signature field followed by the message unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "base/util.h"
#include "mail/dkim.h"

int main(int argc, char **argv)
{
	const char *err;
	EVP_PKEY *key;
	struct dkim_signer *s;
	char *msg = NULL, *hdr;
	size_t len = 0, size = 0, chunk = 4096;
	ssize_t n;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: dkimsign KEYFILE DOMAIN SELECTOR [CHUNK]\n");
		return 2;
	}
	if (argc == 5 && (chunk = strtoul(argv[4], NULL, 10)) == 0)
		return 2;
	if (dkim_key_load(argv[1], &key, &err) == -1) {
		fprintf(stderr, "dkimsign: %s: %s\n", argv[1], err);
		return 1;
	}
	do {
		if (len == size) {
			size = size == 0 ? 65536 : 2 * size;
			msg = xrealloc(msg, size);
		}
		n = read(0, msg + len, size - len);
		if (n > 0)
			len += (size_t)n;
	} while (n > 0);
	if (dkim_signer_new(key, argv[2], argv[3], time(NULL), &s, &err) == -1) {
		fprintf(stderr, "dkimsign: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < len; i += chunk)
		dkim_signer_feed(s, msg + i, len - i < chunk ? len - i : chunk);
	if (dkim_signer_finish(s, &hdr, &err) == -1) {
		fprintf(stderr, "dkimsign: %s\n", err);
		return 1;
	}
	fputs(hdr, stdout);
	fwrite(msg, 1, len, stdout);
	free(hdr);
	free(msg);
	dkim_signer_free(&s);
	EVP_PKEY_free(key);
	return fflush(stdout) == 0 ? 0 : 1;
}
