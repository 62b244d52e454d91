/* Test-only tool for tests/integ/test_dsn_format.py: writes one DSN to stdout with
 * common/spool/dsn.c, from a real envelope file (parsed by envelope_parse()) and the
 * original message's file.
 *
 *   dsntool ENVELOPE ORIGINAL REPORTING_MTA NOW [IDX ACTION STATUS MTA DIAG LAST UNTIL]...
 *
 * ACTION is failed|delayed|delivered|relayed|expanded; "-" leaves STATUS, MTA or DIAG
 * out; DIAG may carry CR and LF (a hostile reply).  ORIGINAL "-": no third part.  On
 * stderr: "reported=N returned=none|headers|full eightbit=0|1 smtputf8=0|1", then the
 * DSN's own envelope (dsn_envelope(), written with a made-up id).  Exit 0, 1 on a usage
 * or file error, 3 when dsn_write() refuses (nothing owed, null sender...). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "spool/dsn.h"

static char *slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, alloc = 0, n;
	if (f == NULL)
		return NULL;
	do {
		if (len + 4096 > alloc) {
			alloc = (len + 4096) * 2;
			buf = realloc(buf, alloc);
			if (buf == NULL)
				exit(1);
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n > 0);
	fclose(f);
	*len_r = len;
	return buf;
}

static ssize_t file_read(void *ctx, void *buf, size_t size)
{
	size_t n = fread(buf, 1, size, ctx);
	return ferror((FILE *)ctx) ? -1 : (ssize_t)n;
}

static int out_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	return fwrite(buf, 1, len, stdout) == len ? 0 : -1;
}

static const char *opt(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

int main(int argc, char **argv)
{
	static const char *const actions[] = { "failed", "delayed", "delivered", "relayed",
					       "expanded" };
	struct envelope *env;
	const char *err;
	size_t len;
	char *buf;

	if (argc < 5 || (argc - 5) % 7 != 0) {
		fprintf(stderr, "usage: dsntool ENV ORIG MTA NOW [IDX ACTION STATUS MTA DIAG LAST UNTIL]...\n");
		return 1;
	}
	if ((buf = slurp(argv[1], &len)) == NULL || envelope_parse(buf, len, &env, NULL, &err) == -1) {
		fprintf(stderr, "dsntool: %s: %s\n", argv[1], buf == NULL ? "cannot read" : err);
		return 1;
	}
	free(buf);
	size_t n = (size_t)(argc - 5) / 7;
	struct dsn_rcpt *rc = calloc(n + 1, sizeof(*rc));
	for (size_t i = 0; i < n; i++) {
		char **a = argv + 5 + 7 * i;
		rc[i].idx = strtoul(a[0], NULL, 10);
		rc[i].action = DSN_FAILED;
		for (int k = 0; k < 5; k++)
			if (strcmp(a[1], actions[k]) == 0)
				rc[i].action = (enum dsn_action)k;
		rc[i].status = opt(a[2]);
		rc[i].remote_mta = opt(a[3]);
		rc[i].diagnostic = opt(a[4]);
		rc[i].last_attempt = strtoll(a[5], NULL, 10);
		rc[i].retry_until = strtoll(a[6], NULL, 10);
	}
	FILE *orig = strcmp(argv[2], "-") == 0 ? NULL : fopen(argv[2], "rb");
	if (strcmp(argv[2], "-") != 0 && orig == NULL) {
		fprintf(stderr, "dsntool: cannot open %s\n", argv[2]);
		return 1;
	}
	struct dsn_params p = {
		.env = env, .rcpts = rc, .n_rcpts = n, .reporting_mta = argv[3],
		.message_id_left = "0Q0000DSNTST1", .now = strtoll(argv[4], NULL, 10),
		.read = orig != NULL ? file_read : NULL, .read_ctx = orig,
		.write = out_write, .write_ctx = NULL,
	};
	struct dsn_result res;
	if (dsn_write(&p, &res, &err) == -1) {
		fprintf(stderr, "dsntool: %s\n", err);
		return 3;
	}
	fflush(stdout);
	static const char *const ret[] = { "none", "headers", "full" };
	fprintf(stderr, "reported=%zu returned=%s eightbit=%d smtputf8=%d\n", res.reported,
		ret[res.returned], res.eightbit, res.smtputf8);
	struct envelope *b;
	if (dsn_envelope(env, ENVELOPE_REMOTE, &res, &b, &err) == -1) {
		fprintf(stderr, "dsntool: dsn_envelope: %s\n", err);
		return 1;
	}
	memcpy(b->id, "0Q0000DSNTST1", ENVELOPE_ID_LEN);
	b->id[ENVELOPE_ID_LEN] = '\0';
	memcpy(b->nonce, "0123456789ABCDEF", ENVELOPE_NONCE_LEN + 1);
	b->arrival = p.now;
	if (envelope_write(b, &buf, &len, &err) == -1) {
		fprintf(stderr, "dsntool: envelope_write: %s\n", err);
		return 1;
	}
	fwrite(buf, 1, len, stderr);
	free(buf);
	envelope_free(&b);
	envelope_free(&env);
	free(rc);
	if (orig != NULL)
		fclose(orig);
	return 0;
}
