/* zlayer and conn's COMPRESS layer: round trips through zlayer alone (output fed to the
 * inflater whole, byte by byte and into 1-byte output buffers); a sync flush makes all
 * input so far decodable at once; a bomb (64 MiB of zeros) never yields more than the
 * output buffer per call; corrupt input and a final block; then two conns over a
 * socketpair, both compressed: lines, raw reads, a large write, input that arrived before
 * conn_compress_start(), a corrupt stream read as EBADMSG. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include "base/conn.h"
#include "base/util.h"
#include "base/zlayer.h"
#include "unit.h"

struct blob {
	char *p;
	size_t len, cap;
};

static void blob_add(struct blob *b, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Deflate in with a sync flush at the end (out in small pieces: out_size). */
static void deflate_all(struct zlayer *z, const char *in, size_t len, size_t out_size,
			struct blob *out)
{
	char buf[4096];
	const char *p = in;
	size_t left = len;

	for (;;) {
		size_t n;
		int more = zlayer_deflate(z, &p, &left, buf, out_size, &n, true);
		blob_add(out, buf, n);
		if (!more)
			break;
	}
}

/* Inflate in, fed in chunks of feed bytes (0: whole), into out buffers of out_size. */
static int inflate_all(struct zlayer *z, const char *in, size_t len, size_t feed,
		       size_t out_size, struct blob *out)
{
	char buf[4096];
	size_t off = 0;

	while (off < len) {
		size_t chunk = feed == 0 || feed > len - off ? len - off : feed;
		const char *p = in + off, *error;
		size_t left = chunk;
		while (left > 0 || zlayer_inflate_more(z)) {
			size_t n;
			int r = zlayer_inflate(z, &p, &left, buf, out_size, &n, &error);
			if (n > out_size)
				return -2;
			blob_add(out, buf, n);
			if (r != 0)
				return r;
		}
		off += chunk;
	}
	return 0;
}

static void test_roundtrip(void)
{
	static const size_t feeds[] = { 0, 1, 7, 1000 };
	static const size_t outs[] = { 1, 13, 4096 };
	const char *error;
	size_t big_len = 300000;
	char *big = malloc(big_len);

	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)("IMAP text\r\n"[i % 11] ^ (i % 97 == 0 ? (char)i : 0));
	for (size_t f = 0; f < sizeof(feeds) / sizeof(feeds[0]); f++) {
		for (size_t o = 0; o < sizeof(outs) / sizeof(outs[0]); o++) {
			struct zlayer *tx = zlayer_new(&error), *rx = zlayer_new(&error);
			struct blob wire = { 0 }, back = { 0 };
			CHECK(tx != NULL && rx != NULL);
			deflate_all(tx, "a1 NOOP\r\n", 9, outs[o] < 64 ? 64 : outs[o], &wire);
			CHECK(!zlayer_dirty(tx));
			CHECK(inflate_all(rx, wire.p, wire.len, feeds[f], outs[o], &back) == 0);
			/* the sync flush: everything said so far comes out now */
			CHECK(back.len == 9 && memcmp(back.p, "a1 NOOP\r\n", 9) == 0);
			size_t mark = wire.len;
			deflate_all(tx, big, big_len, 4096, &wire);
			CHECK(inflate_all(rx, wire.p + mark, wire.len - mark, feeds[f], outs[o],
					  &back) == 0);
			CHECK(back.len == 9 + big_len && memcmp(back.p + 9, big, big_len) == 0);
			zlayer_free(&tx);
			zlayer_free(&rx);
			CHECK(tx == NULL);
			free(wire.p);
			free(back.p);
		}
	}
	free(big);
}

/* Deflate without sync: dirty until the next sync flush. */
static void test_dirty(void)
{
	const char *error, *p = "hello";
	struct zlayer *z = zlayer_new(&error);
	char out[256];
	size_t left = 5, n;

	CHECK(!zlayer_dirty(z));
	CHECK(zlayer_deflate(z, &p, &left, out, sizeof(out), &n, false) == 0);
	CHECK(left == 0 && zlayer_dirty(z));
	CHECK(zlayer_deflate(z, &p, &left, out, sizeof(out), &n, true) == 0);
	CHECK(n > 0 && !zlayer_dirty(z));
	/* the sync flush ends with the empty stored block 00 00 ff ff */
	CHECK(n >= 4 && memcmp(out + n - 4, "\0\0\xff\xff", 4) == 0);
	zlayer_free(&z);
}

/* 64 MiB of zeros compress to about 64 KiB; every call yields at most out_size. */
static void test_bomb(void)
{
	z_stream zs = { 0 };
	size_t total = 64u << 20, chunk = 1u << 20;
	char *zeros = calloc(1, chunk);
	struct blob wire = { 0 };
	unsigned char buf[8192];

	CHECK(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	for (size_t done = 0; done < total; done += chunk) {
		zs.next_in = (Bytef *)zeros;
		zs.avail_in = (uInt)chunk;
		do {
			zs.next_out = buf;
			zs.avail_out = sizeof(buf);
			deflate(&zs, done + chunk == total ? Z_SYNC_FLUSH : Z_NO_FLUSH);
			blob_add(&wire, (char *)buf, sizeof(buf) - zs.avail_out);
		} while (zs.avail_out == 0);
	}
	deflateEnd(&zs);
	CHECK(wire.len < total / 500);

	const char *error, *p = wire.p;
	struct zlayer *z = zlayer_new(&error);
	size_t left = wire.len, out_total = 0, calls = 0, n;
	char out[1000];
	bool bounded = true;
	while (left > 0) {
		int r = zlayer_inflate(z, &p, &left, out, sizeof(out), &n, &error);
		if (r != 0 || n > sizeof(out))
			bounded = false;
		out_total += n;
		calls++;
		if (r != 0)
			break;
	}
	CHECK(bounded);
	CHECK(out_total == total);
	CHECK(calls >= total / sizeof(out));
	zlayer_free(&z);
	free(wire.p);
	free(zeros);
}

static void test_corrupt_and_end(void)
{
	const char *error = NULL, *p;
	char out[64];
	size_t left, n;
	struct zlayer *z = zlayer_new(&error);

	/* block type 3 is reserved (RFC 1951 3.2.3) */
	p = "\xff\xff\xff";
	left = 3;
	CHECK(zlayer_inflate(z, &p, &left, out, sizeof(out), &n, &error) == -1);
	CHECK(error != NULL && n == 0);
	error = NULL;
	p = "\x03\x00";   /* a valid empty final block: too late, the layer is broken */
	left = 2;
	CHECK(zlayer_inflate(z, &p, &left, out, sizeof(out), &n, &error) == -1);
	CHECK(error != NULL);
	zlayer_free(&z);

	/* a final block: the peer's stream ended, what follows is refused */
	z = zlayer_new(&error);
	z_stream zs = { 0 };
	unsigned char fin[64];
	CHECK(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	zs.next_in = (Bytef *)"bye\r\n";
	zs.avail_in = 5;
	zs.next_out = fin;
	zs.avail_out = sizeof(fin);
	CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
	size_t flen = sizeof(fin) - zs.avail_out;
	deflateEnd(&zs);
	char twice[128];
	memcpy(twice, fin, flen);
	memcpy(twice + flen, fin, flen);
	p = twice;
	left = 2 * flen;
	CHECK(zlayer_inflate(z, &p, &left, out, sizeof(out), &n, &error) == 1);
	CHECK(n == 5 && memcmp(out, "bye\r\n", 5) == 0 && left == flen);
	CHECK(zlayer_inflate(z, &p, &left, out, sizeof(out), &n, &error) == -1);
	zlayer_free(&z);
	zlayer_free(&z);   /* NULL: nothing */
}

/* Two conns over a socketpair, a the server and b the client. */
static void test_conn(void)
{
	int sv[2];
	struct conn a, b;
	const char *error, *line;
	size_t len;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	conn_init(&a, sv[0], sv[0], 1024, 5);
	conn_init(&b, sv[1], sv[1], 1024, 5);
	CHECK(!conn_compressed(&a));
	/* b's plain line (flushed by conn_compress_start()) and its first compressed line
	 * arrive together: a reads the plain one with the other behind it in its buffer */
	CHECK(conn_write(&b, "a1 COMPRESS DEFLATE\r\n", 21) == 0);
	CHECK(conn_compress_start(&b, &error) == 0);
	CHECK(conn_compress_start(&b, &error) == -1);
	CHECK(conn_write(&b, "a2 NOOP\r\n", 9) == 0 && conn_flush(&b) == 0);
	CHECK(conn_read_line(&a, &line, &len) == 1);
	CHECK(len == 19 && memcmp(line, "a1 COMPRESS DEFLATE", 19) == 0);
	const char *rest;
	CHECK(conn_pending(&a, &rest) > 0);
	CHECK(conn_compress_start(&a, &error) == 0 && conn_compressed(&a));
	CHECK(conn_pending(&a, &rest) == 0);
	CHECK(conn_read_line(&a, &line, &len) == 1);
	CHECK(len == 7 && memcmp(line, "a2 NOOP", 7) == 0);
	/* a large reply: written past obuf (deflated without a sync), then flushed */
	size_t big_len = 200000;
	char *big = malloc(big_len), *got = malloc(big_len);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)('a' + (i * 7) % 26);
	pid_t pid = fork();
	if (pid == 0) {
		int ok = conn_write(&a, big, big_len) == 0 && conn_flush(&a) == 0;
		_exit(ok ? 0 : 1);
	}
	size_t have = 0;
	while (have < big_len) {
		ssize_t n = conn_read(&b, got + have, big_len - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	CHECK(have == big_len && memcmp(got, big, big_len) == 0);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* a corrupt stream: EBADMSG, and it stays broken */
	CHECK(send(sv[1], "\xff\xff\xff\xff", 4, 0) == 4);
	errno = 0;
	CHECK(conn_read_line(&a, &line, &len) == -1 && errno == EBADMSG);
	errno = 0;
	CHECK(conn_read_line(&a, &line, &len) == -1 && errno == EBADMSG);
	free(big);
	free(got);
	conn_deinit(&a);
	conn_deinit(&b);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	test_roundtrip();
	test_dirty();
	test_bomb();
	test_corrupt_and_end();
	test_conn();
	return unit_done("zlayer");
}
