/* authmsg.c: the monitor parses the worker's request as hostile. */
#include <stdlib.h>
#include "privsep/server.h"
#include "unit.h"

static void test_roundtrip(void)
{
	struct authmsg m = { .method = "PLAIN", .user = "ned", .pass = "s3cret pass",
			     .tls = "TLSv1.3" }, d;
	unsigned char buf[AUTHMSG_MAX];
	long n = authmsg_encode(&m, buf, sizeof(buf));
	CHECK(n == 7 + 5 + 3 + 11 + 7);
	CHECK(authmsg_decode(buf, (size_t)n, &d) == 0);
	CHECK_STR(d.method, "PLAIN");
	CHECK_STR(d.user, "ned");
	CHECK_STR(d.pass, "s3cret pass");
	CHECK_STR(d.tls, "TLSv1.3");
	/* every truncation and one extra byte are refused */
	for (long i = 0; i < n; i++)
		CHECK(authmsg_decode(buf, (size_t)i, &d) == -1);
	buf[n] = 'x';
	CHECK(authmsg_decode(buf, (size_t)n + 1, &d) == -1);
	/* a NUL inside a field */
	buf[7 + 5 + 1] = '\0';
	CHECK(authmsg_decode(buf, (size_t)n, &d) == -1);
	/* wrong version */
	n = authmsg_encode(&m, buf, sizeof(buf));
	buf[0] = 2;
	CHECK(authmsg_decode(buf, (size_t)n, &d) == -1);
}

static void test_limits(void)
{
	struct authmsg m, d;
	unsigned char buf[AUTHMSG_MAX + 16];

	memset(&m, 0, sizeof(m));
	memset(m.method, 'M', sizeof(m.method) - 1);
	memset(m.user, 'u', AUTH_MAX_USER);
	memset(m.pass, 'p', AUTH_MAX_PASS);
	memset(m.tls, 't', sizeof(m.tls) - 1);
	long n = authmsg_encode(&m, buf, sizeof(buf));
	CHECK(n == AUTHMSG_MAX);
	CHECK(authmsg_decode(buf, (size_t)n, &d) == 0);
	CHECK(strlen(d.user) == AUTH_MAX_USER && strlen(d.pass) == AUTH_MAX_PASS);
	/* a user length field of max+1 with the bytes present is refused */
	buf[2] = (unsigned char)((AUTH_MAX_USER + 1) >> 8);
	buf[3] = (unsigned char)(AUTH_MAX_USER + 1);
	CHECK(authmsg_decode(buf, (size_t)n, &d) == -1);
	/* empty user or method */
	struct authmsg e = { .method = "PLAIN" };
	n = authmsg_encode(&e, buf, sizeof(buf));
	CHECK(n > 0 && authmsg_decode(buf, (size_t)n, &d) == -1);
	/* too small an output buffer */
	CHECK(authmsg_encode(&m, buf, 100) == -1);
}

int main(void)
{
	test_roundtrip();
	test_limits();
	return unit_done("test_authmsg");
}
