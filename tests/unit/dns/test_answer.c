/* dns/answer.c: rdata parsers (table-driven, hostile records), the status of a raw
 * answer, and the MX/address ordering rules (RFC 5321 5.1, RFC 7505, self). */
#include <stdlib.h>
#include <sys/socket.h>
#include "dns/answer.h"
#include "unit.h"

/* A raw answer from up to 8 records given as (bytes, length). */
struct fake {
	struct dns_raw raw;
	char *data[8];
	int len[8];
};

static void fake_init(struct fake *f, int rcode, bool nx)
{
	memset(f, 0, sizeof(*f));
	f->raw.rcode = rcode;
	f->raw.nxdomain = nx;
	f->raw.data = f->data;
	f->raw.len = f->len;
}

static void fake_add(struct fake *f, const void *rd, size_t len)
{
	f->data[f->raw.count] = (char *)rd;
	f->len[f->raw.count] = (int)len;
	f->raw.count++;
	f->raw.havedata = true;
}

/* "pref name" MX rdata into buf; returns its length. */
static size_t mx_rd(unsigned char *buf, unsigned pref, const char *name)
{
	size_t o = 2;
	buf[0] = (unsigned char)(pref >> 8);
	buf[1] = (unsigned char)pref;
	while (*name != '\0') {
		size_t n = strcspn(name, ".");
		buf[o++] = (unsigned char)n;
		memcpy(buf + o, name, n);
		o += n;
		name += n;
		if (*name == '.')
			name++;
	}
	buf[o++] = 0;
	return o;
}

/* Deterministic "random": a counter the tests set. */
static uint32_t rnd_seq(void *ctx, uint32_t bound)
{
	unsigned *s = ctx;
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) % bound;
}
static uint32_t rnd_zero(void *ctx, uint32_t bound)
{
	(void)ctx;
	(void)bound;
	return 0;
}

static void test_name_decode(void)
{
	static const struct {
		const char *wire;
		size_t len;
		int rc;
		const char *text;
		size_t used;
	} t[] = {
		{ "\0", 1, 0, "", 1 },
		{ "\4Mail\0054test\0", 12, 0, "mail.4test", 12 },
		{ "\2mx\4test\0junk", 13, 0, "mx.test", 9 },
		{ "", 0, -1, NULL, 0 },                         /* empty */
		{ "\4mail", 5, -1, NULL, 0 },                   /* no root label */
		{ "\5mail", 5, -1, NULL, 0 },                   /* label past the end */
		{ "\xc0\x0c", 2, -1, NULL, 0 },                 /* compression pointer */
		{ "\x40" "a\0", 3, -1, NULL, 0 },               /* reserved label type */
		{ "\3a b\0", 5, -1, NULL, 0 },                  /* space */
		{ "\3a.b\0", 5, -1, NULL, 0 },                  /* dot inside a label */
		{ "\3a\0b\0", 5, -1, NULL, 0 },                 /* NUL inside a label */
		{ "\3_25\4_tcp\2mx\0", 13, 0, "_25._tcp.mx", 13 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[DNS_NAME_MAX + 1];
		size_t used = 0;
		int rc = dns_name_decode((const unsigned char *)t[i].wire, t[i].len, &used, out);
		CHECK(rc == t[i].rc);
		if (rc == 0 && t[i].rc == 0) {
			CHECK_STR(out, t[i].text);
			CHECK(used == t[i].used);
		}
	}
	/* the longest name: 253 characters (63+1+63+1+63+1+61) */
	unsigned char w[300];
	size_t o = 0;
	const size_t labs[] = { 63, 63, 63, 61 };
	for (size_t k = 0; k < 4; k++) {
		w[o++] = (unsigned char)labs[k];
		memset(w + o, 'a', labs[k]);
		o += labs[k];
	}
	w[o++] = 0;
	char out[DNS_NAME_MAX + 1];
	size_t used;
	CHECK(dns_name_decode(w, o, &used, out) == 0 && strlen(out) == 253);
	/* one more byte is over DNS_NAME_MAX */
	w[o - 1] = 1;
	w[o] = 'b';
	w[o + 1] = 0;
	CHECK(dns_name_decode(w, o + 2, &used, out) == -1);
	/* a 64-byte label */
	w[0] = 64;
	CHECK(dns_name_decode(w, o, &used, out) == -1);
}

static void test_name_ok(void)
{
	static const struct { const char *name; bool ok; } t[] = {
		{ "mx.163.test", true }, { "mx.163.test.", true }, { "a", true },
		{ "", false }, { ".", false }, { "a..b", false }, { ".a", false },
		{ "a b", false }, { "a\nb", false }, { "a/b", false }, { "_25._tcp.x", true },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK(dns_name_ok(t[i].name) == t[i].ok);
	CHECK(dns_name_equal("MX.Test.", "mx.test"));
	CHECK(!dns_name_equal("mx.test", "mx.test2"));
}

static void test_rdata(void)
{
	struct dns_mx mx;
	unsigned char b[300];
	size_t n = mx_rd(b, 10, "mx1.sina.test");
	CHECK(dns_rdata_mx(b, n, &mx) == 0 && mx.pref == 10);
	CHECK_STR(mx.host, "mx1.sina.test");
	CHECK(dns_rdata_mx(b, n - 1, &mx) == -1);       /* truncated */
	CHECK(dns_rdata_mx(b, 2, &mx) == -1);           /* preference only */
	b[n] = 'x';
	CHECK(dns_rdata_mx(b, n + 1, &mx) == -1);       /* trailing byte */
	CHECK(dns_rdata_mx((const unsigned char *)"\0\0\xc0\x0c", 4, &mx) == -1);
	CHECK(dns_rdata_mx((const unsigned char *)"\0\0\0", 3, &mx) == 0 && mx.host[0] == '\0');

	struct dns_tlsa *t = calloc(1, sizeof(*t));
	CHECK(dns_rdata_tlsa((const unsigned char *)"\3\1\1\xab\xcd", 5, t) == 0);
	CHECK(t->usage == 3 && t->selector == 1 && t->mtype == 1 && t->len == 2 &&
	      t->data[0] == 0xab && t->data[1] == 0xcd);
	CHECK(dns_rdata_tlsa((const unsigned char *)"\3\1\1", 3, t) == -1);   /* no data */
	CHECK(dns_rdata_tlsa((const unsigned char *)"\3", 1, t) == -1);
	unsigned char *big = calloc(1, DNS_TLSA_MAX_DATA + 4);
	CHECK(dns_rdata_tlsa(big, DNS_TLSA_MAX_DATA + 3, t) == 0);
	CHECK(dns_rdata_tlsa(big, DNS_TLSA_MAX_DATA + 4, t) == -1);        /* over the cap */
	free(big);
	free(t);

	struct dns_txt *x = calloc(1, sizeof(*x));
	static const struct { const char *rd; size_t len; int rc; const char *text; } tx[] = {
		{ "\6v=spf1\7 -all x", 15, 0, "v=spf1 -all x" },
		{ "\0", 1, 0, "" },
		{ "\3abc\0", 5, 0, "abc" },
		{ "", 0, -1, NULL },
		{ "\5abc", 4, -1, NULL },                       /* string past the end */
		{ "\3abc\1", 5, -1, NULL },                     /* second string truncated */
	};
	for (size_t i = 0; i < sizeof(tx) / sizeof(tx[0]); i++) {
		int rc = dns_rdata_txt((const unsigned char *)tx[i].rd, tx[i].len, x);
		CHECK(rc == tx[i].rc);
		if (rc == 0 && tx[i].rc == 0)
			CHECK_STR(x->text, tx[i].text);
	}
	/* a TXT record longer than DNS_TXT_MAX is refused whole */
	unsigned char *long_txt = malloc(256 * 17);
	for (size_t k = 0; k < 17; k++) {
		long_txt[k * 256] = 255;
		memset(long_txt + k * 256 + 1, 'k', 255);
	}
	CHECK(dns_rdata_txt(long_txt, 256 * 16, x) == 0 && x->len == 255 * 16);
	CHECK(dns_rdata_txt(long_txt, 256 * 17, x) == -1);
	free(long_txt);
	free(x);

	char name[DNS_NAME_MAX + 1];
	CHECK(dns_rdata_ptr((const unsigned char *)"\2mx\4test\0", 9, name) == 0);
	CHECK_STR(name, "mx.test");
	CHECK(dns_rdata_ptr((const unsigned char *)"\0", 1, name) == -1);   /* root */
	CHECK(dns_rdata_ptr((const unsigned char *)"\2mx\4test\0\0", 10, name) == -1);

	struct dns_addr a;
	CHECK(dns_rdata_addr((const unsigned char *)"\xc0\0\2\1", 4, AF_INET, &a) == 0 &&
	      a.family == AF_INET && a.addr[3] == 1);
	CHECK(dns_rdata_addr((const unsigned char *)"\xc0\0\2", 3, AF_INET, &a) == -1);
	CHECK(dns_rdata_addr((const unsigned char *)"\xc0\0\2\1", 4, AF_INET6, &a) == -1);
}

static void test_status(void)
{
	struct fake f;
	struct dns_meta m;
	fake_init(&f, 3, true);
	CHECK(dns_raw_status(&f.raw, &m) == DNS_NOT_FOUND);
	fake_init(&f, 2, false);
	CHECK(dns_raw_status(&f.raw, &m) == DNS_TEMPFAIL && m.why[0] != '\0');
	fake_init(&f, 0, false);
	CHECK(dns_raw_status(&f.raw, &m) == DNS_NODATA);
	fake_add(&f, "\1\2\3\4", 4);
	f.raw.secure = true;
	CHECK(dns_raw_status(&f.raw, &m) == DNS_OK && m.secure);
	f.raw.bogus = true;
	f.raw.why_bogus = "signature expired\n\x1b[31m";
	CHECK(dns_raw_status(&f.raw, &m) == DNS_BOGUS && !m.secure);
	CHECK(strchr(m.why, '\n') == NULL && strchr(m.why, '\x1b') == NULL);
}

static void test_mx(void)
{
	struct fake f;
	struct dns_mx_result *r = calloc(1, sizeof(*r));
	unsigned char b[6][64];
	unsigned seed = 1;

	/* sorted by preference */
	fake_init(&f, 0, false);
	fake_add(&f, b[0], mx_rd(b[0], 20, "c.test"));
	fake_add(&f, b[1], mx_rd(b[1], 5, "a.test"));
	fake_add(&f, b[2], mx_rd(b[2], 10, "b.test"));
	dns_answer_mx(&f.raw, "d.test", NULL, 0, rnd_seq, &seed, r);
	CHECK(r->m.status == DNS_OK && r->n == 3 && !r->implicit && !r->null_mx && !r->self);
	CHECK_STR(r->mx[0].host, "a.test");
	CHECK_STR(r->mx[1].host, "b.test");
	CHECK_STR(r->mx[2].host, "c.test");

	/* equal preferences: both orders happen, and the preference order always holds */
	fake_init(&f, 0, false);
	fake_add(&f, b[0], mx_rd(b[0], 10, "x.test"));
	fake_add(&f, b[1], mx_rd(b[1], 10, "y.test"));
	fake_add(&f, b[2], mx_rd(b[2], 30, "z.test"));
	fake_add(&f, b[3], mx_rd(b[3], 1, "w.test"));
	int x_first = 0, y_first = 0, order_ok = 1;
	for (unsigned s = 0; s < 200; s++) {
		seed = s;
		dns_answer_mx(&f.raw, "d.test", NULL, 0, rnd_seq, &seed, r);
		order_ok &= r->n == 4 && strcmp(r->mx[0].host, "w.test") == 0 &&
			    strcmp(r->mx[3].host, "z.test") == 0;
		x_first += strcmp(r->mx[1].host, "x.test") == 0;
		y_first += strcmp(r->mx[1].host, "y.test") == 0;
	}
	CHECK(order_ok);
	CHECK(x_first > 0 && y_first > 0 && x_first + y_first == 200);

	/* no MX: the implicit MX is the domain itself */
	fake_init(&f, 0, false);
	dns_answer_mx(&f.raw, "Sina.Test.", NULL, 0, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_OK && r->implicit && r->n == 1 && r->mx[0].pref == 0);
	CHECK_STR(r->mx[0].host, "sina.test");

	/* NXDOMAIN: not found, no implicit MX */
	fake_init(&f, 3, true);
	dns_answer_mx(&f.raw, "nx.test", NULL, 0, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_NOT_FOUND && r->n == 0 && !r->implicit);

	/* SERVFAIL: tempfail, never the implicit MX */
	fake_init(&f, 2, false);
	dns_answer_mx(&f.raw, "sf.test", NULL, 0, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_TEMPFAIL && r->n == 0 && !r->implicit);

	/* null MX (RFC 7505) */
	fake_init(&f, 0, false);
	fake_add(&f, "\0\0\0", 3);
	dns_answer_mx(&f.raw, "null.test", NULL, 0, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_OK && r->null_mx && r->n == 0 && !r->implicit);

	/* a "." beside real hosts is skipped, the hosts are used */
	fake_init(&f, 0, false);
	fake_add(&f, "\0\0\0", 3);
	fake_add(&f, b[0], mx_rd(b[0], 10, "mx.test"));
	dns_answer_mx(&f.raw, "mixed.test", NULL, 0, rnd_zero, NULL, r);
	CHECK(!r->null_mx && r->n == 1);

	/* only malformed records: tempfail, not implicit MX */
	fake_init(&f, 0, false);
	fake_add(&f, "\0\x0a\x05" "ab", 5);
	fake_add(&f, "\0", 1);
	dns_answer_mx(&f.raw, "bad.test", NULL, 0, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_TEMPFAIL && r->n == 0 && !r->implicit);

	/* a malformed record among good ones is skipped */
	fake_init(&f, 0, false);
	fake_add(&f, "\0\x0a\xc0\x0c", 4);
	fake_add(&f, b[0], mx_rd(b[0], 10, "good.test"));
	dns_answer_mx(&f.raw, "d.test", NULL, 0, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_OK && r->n == 1);
	CHECK_STR(r->mx[0].host, "good.test");

	/* self: this host at preference 20 drops itself and every host at 20 or worse */
	const char *self[] = { "Me.Test." };
	fake_init(&f, 0, false);
	fake_add(&f, b[0], mx_rd(b[0], 10, "primary.test"));
	fake_add(&f, b[1], mx_rd(b[1], 20, "me.test"));
	fake_add(&f, b[2], mx_rd(b[2], 20, "peer.test"));
	fake_add(&f, b[3], mx_rd(b[3], 30, "worse.test"));
	dns_answer_mx(&f.raw, "d.test", self, 1, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_OK && r->n == 1 && !r->self);
	CHECK_STR(r->mx[0].host, "primary.test");

	/* self as the best MX: nothing left, "MX points at self" */
	fake_init(&f, 0, false);
	fake_add(&f, b[0], mx_rd(b[0], 10, "me.test"));
	fake_add(&f, b[1], mx_rd(b[1], 20, "backup.test"));
	dns_answer_mx(&f.raw, "d.test", self, 1, rnd_zero, NULL, r);
	CHECK(r->n == 0 && r->self);

	/* the implicit MX is this host */
	fake_init(&f, 0, false);
	dns_answer_mx(&f.raw, "me.test", self, 1, rnd_zero, NULL, r);
	CHECK(r->n == 0 && r->self && r->implicit);

	/* more records than DNS_MAX_MX: capped, no overflow */
	struct dns_raw many = { .havedata = true, .count = DNS_MAX_MX + 10 };
	char *d[DNS_MAX_MX + 10];
	int l[DNS_MAX_MX + 10];
	for (size_t i = 0; i < DNS_MAX_MX + 10; i++) {
		d[i] = (char *)b[4];
		l[i] = (int)mx_rd(b[4], 7, "same.test");
	}
	many.data = d;
	many.len = l;
	dns_answer_mx(&many, "d.test", NULL, 0, rnd_zero, NULL, r);
	CHECK(r->n == DNS_MAX_MX);

	/* a negative length from a broken result is a zero-length record */
	fake_init(&f, 0, false);
	fake_add(&f, b[0], mx_rd(b[0], 10, "x.test"));
	f.len[0] = -5;
	dns_answer_mx(&f.raw, "d.test", NULL, 0, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_TEMPFAIL);
	free(r);
}

static void test_addr(void)
{
	struct fake f4, f6;
	struct dns_addr_result *r = calloc(1, sizeof(*r));
	unsigned char v6a[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 },
		      v6b[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 };

	fake_init(&f4, 0, false);
	fake_add(&f4, "\xc0\0\2\1", 4);
	fake_add(&f4, "\xc0\0\2\2", 4);
	fake_add(&f4, "\xc0\0\2\3", 4);
	fake_init(&f6, 0, false);
	fake_add(&f6, v6a, 16);
	fake_add(&f6, v6b, 16);
	dns_answer_addr(&f4.raw, &f6.raw, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_OK && r->n == 5);
	/* interleaved, IPv6 first */
	CHECK(r->addr[0].family == AF_INET6 && r->addr[1].family == AF_INET &&
	      r->addr[2].family == AF_INET6 && r->addr[3].family == AF_INET &&
	      r->addr[4].family == AF_INET);

	/* NODATA for AAAA, A present */
	struct fake e6;
	fake_init(&e6, 0, false);
	dns_answer_addr(&f4.raw, &e6.raw, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_OK && r->n == 3 && r->addr[0].family == AF_INET);

	/* both NXDOMAIN */
	struct fake n4, n6;
	fake_init(&n4, 3, true);
	fake_init(&n6, 3, true);
	dns_answer_addr(&n4.raw, &n6.raw, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_NOT_FOUND && r->n == 0);

	/* both NODATA */
	struct fake e4;
	fake_init(&e4, 0, false);
	dns_answer_addr(&e4.raw, &e6.raw, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_NODATA);

	/* SERVFAIL on one, NODATA on the other: tempfail */
	struct fake s4;
	fake_init(&s4, 2, false);
	dns_answer_addr(&s4.raw, &e6.raw, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_TEMPFAIL);

	/* a bogus family taints the answer even when the other has addresses */
	f6.raw.bogus = true;
	dns_answer_addr(&f4.raw, &f6.raw, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_BOGUS && r->n == 0);
	f6.raw.bogus = false;

	/* secure only when both families are */
	f4.raw.secure = true;
	f6.raw.secure = false;
	dns_answer_addr(&f4.raw, &f6.raw, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_OK && !r->m.secure);
	f6.raw.secure = true;
	dns_answer_addr(&f4.raw, &f6.raw, rnd_zero, NULL, r);
	CHECK(r->m.secure);

	/* an A record of the wrong length is skipped; only wrong ones: tempfail */
	struct fake w4;
	fake_init(&w4, 0, false);
	fake_add(&w4, "\1\2\3", 3);
	dns_answer_addr(&w4.raw, NULL, rnd_zero, NULL, r);
	CHECK(r->m.status == DNS_TEMPFAIL && r->n == 0);
	free(r);
}

static void test_tlsa_txt_ptr(void)
{
	struct fake f;
	struct dns_tlsa_result *t = calloc(1, sizeof(*t));
	fake_init(&f, 0, false);
	fake_add(&f, "\3\1\1\x01\x02\x03", 6);
	fake_add(&f, "\2", 1);                              /* malformed: skipped */
	f.raw.secure = true;
	dns_answer_tlsa(&f.raw, t);
	CHECK(t->m.status == DNS_OK && t->m.secure && t->n == 1 && t->tlsa[0].len == 3);
	fake_init(&f, 0, false);
	fake_add(&f, "\2", 1);
	dns_answer_tlsa(&f.raw, t);
	CHECK(t->m.status == DNS_TEMPFAIL && t->n == 0);
	free(t);

	struct dns_txt_result *x = calloc(1, sizeof(*x));
	fake_init(&f, 0, false);
	fake_add(&f, "\6v=spf1\5 -all", 13);
	fake_add(&f, "\x09v=DMARC1;", 10);
	dns_answer_txt(&f.raw, x);
	CHECK(x->m.status == DNS_OK && x->n == 2);
	CHECK_STR(x->txt[0].text, "v=spf1 -all");
	CHECK_STR(x->txt[1].text, "v=DMARC1;");
	free(x);

	struct dns_ptr_result *p = calloc(1, sizeof(*p));
	fake_init(&f, 0, false);
	fake_add(&f, "\2mx\003" "163\4test\0", 13);
	dns_answer_ptr(&f.raw, p);
	CHECK(p->m.status == DNS_OK && p->n == 1);
	CHECK_STR(p->name[0], "mx.163.test");
	free(p);

	char name[DNS_NAME_MAX + 1];
	CHECK(dns_reverse_name("192.0.2.10", name) == 0);
	CHECK_STR(name, "10.2.0.192.in-addr.arpa");
	CHECK(dns_reverse_name("2001:db8::1", name) == 0);
	CHECK_STR(name, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	CHECK(dns_reverse_name("192.0.2", name) == -1);
	CHECK(dns_reverse_name("mx.test", name) == -1);
	CHECK(dns_reverse_name("", name) == -1);
}

int main(void)
{
	test_name_decode();
	test_name_ok();
	test_rdata();
	test_status();
	test_mx();
	test_addr();
	test_tlsa_txt_ptr();
	return unit_done("test_answer");
}
