/* libFuzzer: aliases_parse() and aliases_expand(), the aliases(5) reader that the session
 * and root's delivery both run.  Checks: no crash, leak or runaway; a refused file gives
 * an error and no table; expanding the names the input defines (the first word of each
 * line, and a few fixed names) gives each user once, at most ALIASES_MAX_USERS of them,
 * none empty nor holding a control byte, and an error whenever it returns -1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "spool/aliases.h"

struct seen {
	char **users;
	size_t n;
};

static int on_user(void *ctx, const char *user)
{
	struct seen *s = ctx;

	if (user[0] == '\0')
		abort();
	for (const unsigned char *p = (const unsigned char *)user; *p != '\0'; p++)
		if (*p < 0x20 && *p != '\t')
			abort();
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->users[i], user) == 0)
			abort();
	if (s->n == ALIASES_MAX_USERS)
		abort();
	s->users[s->n++] = strdup(user);
	return 0;
}

static bool is_local(void *ctx, const char *domain)
{
	(void)ctx;
	return strcmp(domain, "example.org") == 0 || strcmp(domain, "localhost") == 0;
}

static void try_name(const struct aliases *al, const char *name)
{
	struct seen s;
	unsigned skipped = 0;
	const char *err = NULL;
	int r;

	s.users = calloc(ALIASES_MAX_USERS, sizeof(char *));
	s.n = 0;
	r = aliases_expand(al, name, on_user, &s, &skipped, &err);
	if (r == -1 && (err == NULL || err[0] == '\0'))
		abort();
	if (r == 0 && (s.n != 0 || skipped != 0))
		abort();
	for (size_t i = 0; i < s.n; i++)
		free(s.users[i]);
	free(s.users);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aliases *al;
	const char *err = NULL;
	const char *text = (const char *)data;
	static const char *const fixed[] = { "postmaster", "root", "a", "list" };

	if (aliases_parse(text, size, &al, &err) == -1) {
		if (al != NULL || err == NULL)
			abort();
		return 0;
	}
	aliases_set_local(al, is_local, NULL);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		try_name(al, fixed[i]);
	/* the first word of up to 16 lines */
	size_t pos = 0;
	for (unsigned k = 0; k < 16 && pos < size; k++) {
		size_t end = pos;
		while (end < size && text[end] != '\n' && text[end] != ':' && text[end] != ' ')
			end++;
		if (end > pos && end - pos <= ALIASES_MAX_NAME) {
			char name[ALIASES_MAX_NAME + 1];
			memcpy(name, text + pos, end - pos);
			name[end - pos] = '\0';
			try_name(al, name);
		}
		while (end < size && text[end] != '\n')
			end++;
		pos = end + 1;
	}
	aliases_free(&al);
	return 0;
}
