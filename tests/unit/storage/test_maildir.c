/* maildir.c names: parsing (valid and invalid tables) and POP3 UIDLs.  The Maildir
 * backend itself is tested through the storage API (test_storage.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "storage/maildir.h"
#include "base/util.h"
#include "unit.h"

struct name_case {
	const char *name;
	size_t base_len;
	int has_s, has_w;
	uint64_t s, w;
	int has_info;
	const char *flags;
	unsigned mask;
};

static const struct name_case names_ok[] = {
	{ "1700000000.M1P2.host", 20, 0, 0, 0, 0, 0, NULL, 0 },
	{ "1700000000.M1P2.host,S=123,W=130:2,RS", 32, 1, 1, 123, 130, 1, "RS",
	  MAILDIR_FLAG_REPLIED | MAILDIR_FLAG_SEEN },
	{ "a,W=5,S=4", 9, 1, 1, 4, 5, 0, NULL, 0 },
	{ "a:2,", 1, 0, 0, 0, 0, 1, "", 0 },
	{ "a:2,DFPRSTabc", 1, 0, 0, 0, 0, 1, "DFPRSTabc", 0x3f },
	{ "a:1,foo", 1, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a:", 1, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a:2,S:2,T", 1, 0, 0, 0, 0, 1, "S:2,T", MAILDIR_FLAG_SEEN | MAILDIR_FLAG_TRASHED },
	{ "a,S=12x", 7, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a,W=", 4, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a,S=,W=7", 8, 0, 1, 0, 7, 0, NULL, 0 },
	{ "a,S=1,S=2", 9, 1, 0, 1, 0, 0, NULL, 0 },           /* the first counts */
	{ "a,S=+1", 6, 0, 0, 0, 0, 0, NULL, 0 },
	{ "a,S=18446744073709551615", 24, 1, 0, UINT64_MAX, 0, 0, NULL, 0 }, /* max */
	{ "a,S=18446744073709551616", 24, 0, 0, 0, 0, 0, NULL, 0 },          /* max+1 */
	{ ",S=5", 4, 1, 0, 5, 0, 0, NULL, 0 },
	{ "a b\tc", 5, 0, 0, 0, 0, 0, NULL, 0 },
	{ "x,s=5,w=6", 9, 0, 0, 0, 0, 0, NULL, 0 },           /* case matters */
};

static const char *const names_bad[] = { "", ".hidden", ".", "..", ":2,S", "a/b" };

static void test_names(void)
{
	for (size_t t = 0; t < sizeof(names_ok) / sizeof(names_ok[0]); t++) {
		const struct name_case *c = &names_ok[t];
		struct maildir_name mn;
		CHECK(maildir_parse_name(c->name, strlen(c->name), &mn) == 0);
		CHECK(mn.base_len == c->base_len);
		CHECK(mn.has_s == (bool)c->has_s && (!c->has_s || mn.s == c->s));
		CHECK(mn.has_w == (bool)c->has_w && (!c->has_w || mn.w == c->w));
		CHECK(mn.has_info == (bool)c->has_info);
		if (c->flags != NULL)
			CHECK(mn.flags_len == strlen(c->flags) &&
			      memcmp(mn.flags, c->flags, mn.flags_len) == 0);
		CHECK(mn.flagmask == c->mask);
	}
	for (size_t t = 0; t < sizeof(names_bad) / sizeof(names_bad[0]); t++) {
		struct maildir_name mn;
		CHECK(maildir_parse_name(names_bad[t], strlen(names_bad[t]), &mn) == -1);
	}
	struct maildir_name mn;
	CHECK(maildir_parse_name("a\0b", 3, &mn) == -1);
}

static void test_uid(void)
{
	char u[POP3_UIDL_MAX + 1], v[POP3_UIDL_MAX + 1];
	char name[100];

	maildir_uid("1700000000.M1P2.host", 20, u);
	CHECK_STR(u, "1700000000.M1P2.host");
	/* 70 printable: itself (max); 71: digest (max+1) */
	memset(name, 'x', sizeof(name));
	maildir_uid(name, 70, u);
	CHECK(strlen(u) == 70 && memcmp(u, name, 70) == 0);
	maildir_uid(name, 71, u);
	CHECK(strlen(u) == 32);
	for (size_t i = 0; i < 32; i++)
		CHECK((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'));
	maildir_uid(name, 71, v);
	CHECK_STR(u, v); /* stable */
	maildir_uid(name, 72, v);
	CHECK(strcmp(u, v) != 0);
	/* not printable: space, DEL, 8-bit */
	maildir_uid("a b", 3, u);
	CHECK(strlen(u) == 32);
	maildir_uid("a\x7f", 2, u);
	CHECK(strlen(u) == 32);
	maildir_uid("caf\xc3\xa9", 5, u);
	CHECK(strlen(u) == 32);
	maildir_uid("!~", 2, u);
	CHECK_STR(u, "!~");
}

int main(void)
{
	test_names();
	test_uid();
	return unit_done("maildir");
}
