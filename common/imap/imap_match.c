/* LIST pattern matching (imap_match.h): dynamic programming over the name, one pattern
 * character at a time. */
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "imap/imap_match.h"

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

bool imap_match_mailbox(const char *pattern, size_t plen, const char *name, size_t nlen,
			char delim)
{
	/* a pattern with more plain characters than the name has cannot match: this also
	 * bounds the work below by the name's length */
	size_t plain = 0;
	for (size_t i = 0; i < plen; i++)
		plain += pattern[i] != '*' && pattern[i] != '%';
	if (plain > nlen)
		return false;
	/* INBOX, and names below it, have a case-insensitive first 5 characters */
	size_t ci = 0;
	if (nlen >= 5 && util_token_eq(name, 5, "INBOX") &&
	    (nlen == 5 || (delim != '\0' && name[5] == delim)))
		ci = 5;
	/* cur[j]: the pattern so far matches name[0..j) */
	bool *cur = xcalloc(nlen + 1, sizeof(bool)), *next = xcalloc(nlen + 1, sizeof(bool));
	cur[0] = true;
	for (size_t i = 0; i < plen; i++) {
		char pc = pattern[i];
		if (pc == '*' || pc == '%') {
			/* "**", "%*", "*%" are one "*"; "%%" is one "%" */
			bool star = pc == '*';
			while (i + 1 < plen && (pattern[i + 1] == '*' || pattern[i + 1] == '%')) {
				star = star || pattern[i + 1] == '*';
				i++;
			}
			next[0] = cur[0];
			for (size_t j = 1; j <= nlen; j++)
				next[j] = cur[j] || (next[j - 1] &&
					(star || delim == '\0' || name[j - 1] != delim));
		} else {
			next[0] = false;
			for (size_t j = 1; j <= nlen; j++) {
				char nc = name[j - 1];
				bool eq = nc == pc || (j - 1 < ci && upper(nc) == upper(pc));
				next[j] = cur[j - 1] && eq;
			}
		}
		bool *t = cur;
		cur = next;
		next = t;
	}
	bool r = cur[nlen];
	free(cur);
	free(next);
	return r;
}
