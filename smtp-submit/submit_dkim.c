/* smtp-submit -k: a DKIM key made in one command, and the DNS record to publish for it.
 * Runs as root (the keys are root's; the delivery that signs loads them before it drops
 * to the spool user, dkim.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include "mail/dkim.h"
#include "submit_dkim.h"

int submit_dkim_keygen(const struct config *cfg, const char *domain, const char *selector,
		       const char *alg_name, FILE *out, FILE *err)
{
	const char *dir = cfg->dkim_key_dir, *e;
	enum dkim_alg alg;
	char path[4096];
	EVP_PKEY *key;

	if (dkim_alg_parse(alg_name != NULL ? alg_name : "rsa", &alg) == -1) {
		fprintf(err, "smtp-submit: -k: the key type is rsa or ed25519\n");
		return 2;
	}
	if (!dkim_name_ok(domain) || !dkim_name_ok(selector)) {
		fprintf(err, "smtp-submit: -k: the domain and the selector must be domain "
			"names (letters, digits, hyphens, dots)\n");
		return 2;
	}
	if (dir == NULL || dir[0] != '/') {
		fprintf(err, "smtp-submit: dkim_key_dir must be an absolute path\n");
		return 1;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		fprintf(err, "smtp-submit: mkdir %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if (dkim_key_path(dir, domain, selector, path, sizeof(path)) == -1) {
		fprintf(err, "smtp-submit: dkim_key_dir is too long\n");
		return 1;
	}
	if (dkim_key_generate(alg, &key, &e) == -1) {
		fprintf(err, "smtp-submit: %s\n", e);
		return 1;
	}
	if (dkim_key_save(path, key, &e) == -1) {
		fprintf(err, "smtp-submit: %s: %s\n", path, e);
		EVP_PKEY_free(key);
		return 1;
	}
	char *rec = dkim_txt_record(key, domain, selector, &e);
	EVP_PKEY_free(key);
	if (rec == NULL) {
		fprintf(err, "smtp-submit: %s\n", e);
		return 1;
	}
	fprintf(err, "smtp-submit: wrote %s (%s); publish this record in DNS, and add %s to "
		"dkim_selector:\n", path, alg == DKIM_ALG_RSA_SHA256 ? "RSA 2048" : "Ed25519",
		selector);
	fprintf(out, "%s\n", rec);
	free(rec);
	return fflush(out) == 0 ? 0 : 1;
}
