/* envelope.c: a full envelope parsed and written back byte for byte; one built through
 * the setters round-trips; every prefix of a valid file (a torn write) is refused; a
 * table of hostile files, each fed whole, refused with the expected reason; every limit
 * at max and max + 1; recipient state changes; delivery tokens and finding them. */
#include <stdlib.h>
#include <string.h>
#include "base/plimits.h"
#include "spool/envelope.h"
#include "unit.h"

#define HDR "postern-envelope 1\nid 0PZ4K8M2T7Q3\nnonce 9F86D081884C7D65\n" \
	"arrival 1764288000\nsize 518\nbody 8bitmime\nsmtputf8 no\nsender <ned@example.org>\n"
#define RCPT "rcpt <bob@example.org>\nkind local\nstate pending\nattempts 0\n"

static const char full[] =
	"postern-envelope 1\n"
	"id 0PZ4K8M2T7Q3\n"
	"nonce 9F86D081884C7D65\n"
	"arrival 1764288000\n"
	"size 518\n"
	"body binarymime\n"
	"smtputf8 yes\n"
	"sender <n\xc3\xa9""d@example.org>\n"
	"auth ned\n"
	"ret hdrs\n"
	"envid QQ314159 x\n"
	"client-addr 2001:db8::7\n"
	"client-name mail.example.net\n"
	"helo [192.0.2.7]\n"
	"proto ESMTPSA\n"
	"tls TLSv1.3 TLS_AES_256_GCM_SHA384\n"
	"rcpt <bob@example.org>\n"
	"kind local\n"
	"notify success,delay\n"
	"orcpt rfc822;Bob@Example.org\n"
	"state deferred\n"
	"attempts 3\n"
	"next-try 1764291600\n"
	"inflight 1764290000\n"
	"warned 1764302400\n"
	"reply 452 4.2.2 Mailbox full\n"
	"reply-mta localhost\n"
	"rcpt <\"john smith\"@example.net>\n"
	"kind remote\n"
	"notify never\n"
	"state failed\n"
	"attempts 1\n"
	"reply 550 5.1.1 No such user\n"
	"reply-mta mx.example.net\n"
	"rcpt <Postmaster>\n"
	"kind local\n"
	"state delivered\n"
	"attempts 1\n"
	"rcpt <\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8>\n"
	"kind remote\n"
	"state bounced\n"
	"attempts 0\n"
	"end\n";

static void test_full(void)
{
	struct envelope *e;
	const char *err = NULL;
	unsigned line = 99;
	char *out;
	size_t len;

	CHECK(envelope_parse(full, strlen(full), &e, &line, &err) == 0);
	if (e == NULL) {
		fprintf(stderr, "full: %s at line %u\n", err, line);
		return;
	}
	CHECK_STR(e->id, "0PZ4K8M2T7Q3");
	CHECK_STR(e->nonce, "9F86D081884C7D65");
	CHECK(e->arrival == 1764288000 && e->size == 518);
	CHECK(e->body == ENVELOPE_BODY_BINARYMIME && e->smtputf8);
	CHECK_STR(e->sender, "n\xc3\xa9""d@example.org");
	CHECK(e->ret == ENVELOPE_RET_HDRS);
	CHECK_STR(e->auth, "ned");
	CHECK_STR(e->envid, "QQ314159 x");
	CHECK_STR(e->client_addr, "2001:db8::7");
	CHECK_STR(e->client_name, "mail.example.net");
	CHECK_STR(e->helo, "[192.0.2.7]");
	CHECK_STR(e->proto, "ESMTPSA");
	CHECK_STR(e->tls, "TLSv1.3 TLS_AES_256_GCM_SHA384");
	CHECK(e->rcpt_count == 4);
	const struct envelope_rcpt *r = &e->rcpts[0];
	CHECK_STR(r->addr, "bob@example.org");
	CHECK(r->kind == ENVELOPE_LOCAL);
	CHECK(r->notify == (ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_DELAY));
	CHECK_STR(r->orcpt, "rfc822;Bob@Example.org");
	CHECK(r->state == ENVELOPE_DEFERRED && r->attempts == 3);
	CHECK(r->next_try == 1764291600 && r->inflight == 1764290000 && r->warned == 1764302400);
	CHECK_STR(r->reply, "452 4.2.2 Mailbox full");
	CHECK_STR(r->reply_mta, "localhost");
	CHECK_STR(e->rcpts[1].addr, "\"john smith\"@example.net");
	CHECK(e->rcpts[1].kind == ENVELOPE_REMOTE && e->rcpts[1].notify == ENVELOPE_NOTIFY_NEVER);
	CHECK(e->rcpts[1].state == ENVELOPE_FAILED && e->rcpts[1].orcpt == NULL);
	CHECK_STR(e->rcpts[2].addr, "Postmaster");
	CHECK(e->rcpts[2].state == ENVELOPE_DELIVERED && e->rcpts[2].reply == NULL);
	CHECK(e->rcpts[3].state == ENVELOPE_BOUNCED);
	CHECK(!envelope_done(e));
	CHECK(envelope_next_due(e) == 0);   /* rcpt 0 inflight, rcpt 1 owes a bounce */

	/* the canonical form: written back byte for byte */
	CHECK(envelope_write(e, &out, &len, &err) == 0);
	CHECK(len == strlen(full) && memcmp(out, full, len) == 0);
	if (len != strlen(full) || memcmp(out, full, len) != 0)
		fprintf(stderr, "written:\n%.*s", (int)len, out);
	free(out);

	/* every prefix (a torn write, a truncated copy) is refused */
	size_t flen = strlen(full);
	bool all = true;
	for (size_t i = 0; i < flen; i++) {
		struct envelope *p;
		if (envelope_parse(full, i, &p, NULL, &err) == 0) {
			all = false;
			envelope_free(&p);
			fprintf(stderr, "prefix %zu parsed\n", i);
		}
		CHECK(p == NULL);
	}
	CHECK(all);
	envelope_free(&e);
	CHECK(e == NULL);
}

/* Built with the setters, written, parsed, written again: the same bytes. */
static void test_build(void)
{
	struct envelope *e = envelope_new(), *back;
	const char *err;
	char *a, *b;
	size_t alen, blen;

	memcpy(e->id, "0PZ4K8M2T7Q3", 13);
	memcpy(e->nonce, "0123456789ABCDEF", 17);
	e->arrival = 1;
	e->size = 0;
	CHECK(envelope_set_sender(e, "", &err) == 0);            /* null sender */
	CHECK(envelope_set_sender(e, "a@b", &err) == 0);
	CHECK(envelope_set_sender(e, "@r:a@b", &err) == -1);     /* source route */
	CHECK(envelope_set_sender(e, "a b@c", &err) == -1);
	CHECK(envelope_set_text(e, "helo", "client.example", &err) == 0);
	CHECK(envelope_set_text(e, "helo", "two words", &err) == -1);
	CHECK(envelope_set_text(e, "client-addr", "192.0.2.1", &err) == 0);
	CHECK(envelope_set_text(e, "client-addr", "192.0.2.256", &err) == -1);
	CHECK(envelope_set_text(e, "proto", "ESMTPS", &err) == 0);
	CHECK(envelope_set_text(e, "tls", NULL, &err) == 0);
	CHECK(envelope_set_text(e, "sender", "x", &err) == -1);  /* not a text key */
	CHECK(envelope_set_text(e, "nosuch", "x", &err) == -1);
	/* no recipients yet: the writer refuses */
	CHECK(envelope_write(e, &a, &alen, &err) == -1 && a == NULL);
	CHECK(envelope_add_rcpt(e, "x@y", ENVELOPE_REMOTE, 0, NULL, &err) == 0);
	CHECK(envelope_add_rcpt(e, "z@y", ENVELOPE_LOCAL, ENVELOPE_NOTIFY_FAILURE,
				"rfc822;z@y", &err) == 1);
	CHECK(envelope_add_rcpt(e, "z@y", ENVELOPE_LOCAL, ENVELOPE_NOTIFY_NEVER |
				ENVELOPE_NOTIFY_DELAY, NULL, &err) == -1);
	CHECK(envelope_add_rcpt(e, "z@y", ENVELOPE_LOCAL, 0, "z@y", &err) == -1); /* no type */
	CHECK(envelope_add_rcpt(e, "<z@y>", ENVELOPE_LOCAL, 0, NULL, &err) == -1);
	/* UTF-8 addresses need smtputf8 */
	CHECK(envelope_add_rcpt(e, "\xc3\xa9@y", ENVELOPE_LOCAL, 0, NULL, &err) == 2);
	CHECK(envelope_write(e, &a, &alen, &err) == -1);
	e->smtputf8 = true;
	envelope_rcpt_attempt(&e->rcpts[0], 1764288000);
	envelope_rcpt_defer(&e->rcpts[0], 1764291600, "421 4.4.2 \r\n bye\x01\xff", "mx\n .example");
	CHECK_STR(e->rcpts[0].reply, "421 4.4.2    bye??");
	CHECK_STR(e->rcpts[0].reply_mta, "mx??.example");
	CHECK(e->rcpts[0].attempts == 1 && e->rcpts[0].inflight == 0);
	envelope_rcpt_attempt(&e->rcpts[1], 1764288001);
	CHECK(e->rcpts[1].inflight == 1764288001);
	CHECK(envelope_next_due(e) == 0);   /* inflight, and rcpt 2 pending */
	CHECK(envelope_write(e, &a, &alen, &err) == 0);
	CHECK(envelope_parse(a, alen, &back, NULL, &err) == 0);
	CHECK(back != NULL && envelope_write(back, &b, &blen, &err) == 0);
	CHECK(alen == blen && memcmp(a, b, alen) == 0);
	free(a);
	free(b);
	envelope_free(&back);

	envelope_rcpt_delivered(&e->rcpts[1], "250 2.0.0 ok", NULL);
	envelope_rcpt_delivered(&e->rcpts[2], NULL, NULL);
	CHECK(envelope_next_due(e) == 1764291600);
	CHECK(!envelope_done(e));
	envelope_rcpt_fail(&e->rcpts[0], "550 5.1.1 no", NULL);
	CHECK(envelope_next_due(e) == 0);    /* a bounce is owed */
	envelope_rcpt_bounced(&e->rcpts[0]);
	envelope_rcpt_bounced(&e->rcpts[1]);  /* a delivered one stays delivered */
	CHECK(e->rcpts[1].state == ENVELOPE_DELIVERED);
	CHECK(envelope_done(e));
	CHECK(envelope_next_due(e) == 0);    /* done: due to be removed */
	/* out-of-range times are clamped into what the parser takes */
	envelope_rcpt_defer(&e->rcpts[2], -5, NULL, NULL);
	CHECK(e->rcpts[2].next_try == 0);
	envelope_rcpt_defer(&e->rcpts[2], INT64_MAX, NULL, NULL);
	CHECK(e->rcpts[2].next_try == SPOOL_TIME_MAX);
	CHECK(envelope_write(e, &a, &alen, &err) == 0);
	free(a);
	/* the writer refuses what the parser would: a broken id */
	e->id[0] = 'I';
	CHECK(envelope_write(e, &a, &alen, &err) == -1);
	envelope_free(&e);

	char buf[16];
	envelope_sanitize(buf, sizeof(buf), "", 0, 100);
	CHECK_STR(buf, "?");
	envelope_sanitize(buf, sizeof(buf), "abcdefghijklmnopqrstuvwxyz", 26, 100);
	CHECK_STR(buf, "abcdefghijklmno");
	envelope_sanitize(buf, sizeof(buf), "a\tb\x7f", 4, 3);
	CHECK_STR(buf, "a b");
}

struct bad { const char *name; const char *text; size_t len; const char *error; };
#define B(name, text, error) { name, text, sizeof(text) - 1, error }

static const struct bad bads[] = {
	B("empty", "", "empty envelope"),
	B("magic", "postern-envelop 1\n", "not an envelope"),
	B("version 2", "postern-envelope 2\n" "id x\n", "unknown envelope version"),
	B("version 01", "postern-envelope 01\n", "bad envelope version"),
	B("version -1", "postern-envelope -1\n", "bad envelope version"),
	B("no end", HDR RCPT, "no end line (truncated)"),
	B("after end", HDR RCPT "end\nx\n", "data after end"),
	B("end twice", HDR RCPT "end\nend\n", "data after end"),
	B("no newline", HDR RCPT "end", "last line without newline"),
	B("empty line", HDR "\n" RCPT "end\n", "empty line"),
	B("crlf", HDR "ret full\r\n" RCPT "end\n", "control character or invalid UTF-8"),
	B("nul", HDR "auth a\0b\n" RCPT "end\n", "control character or invalid UTF-8"),
	B("tab", HDR "envid a\tb\n" RCPT "end\n", "control character or invalid UTF-8"),
	B("del", HDR "envid a\x7f\n" RCPT "end\n", "control character or invalid UTF-8"),
	B("bad utf8", HDR "auth \xc3\n" RCPT "end\n", "control character or invalid UTF-8"),
	B("overlong utf8", HDR "auth \xc0\xaf\n" RCPT "end\n",
	  "control character or invalid UTF-8"),
	B("surrogate", HDR "auth \xed\xa0\x80\n" RCPT "end\n",
	  "control character or invalid UTF-8"),
	B("8bit reply", HDR RCPT "reply 550 \xc3\xa9\nend\n", "8-bit value"),
	B("8bit envid", HDR "envid \xc3\xa9\n" RCPT "end\n", "8-bit value"),
	B("utf8 addr", HDR "rcpt <\xc3\xa9@x>\nkind local\nstate pending\nattempts 0\nend\n",
	  "UTF-8 address without smtputf8"),
	B("unknown key", HDR "colour blue\n" RCPT "end\n", "unknown key"),
	B("unknown rcpt key", HDR RCPT "colour blue\nend\n", "unknown key"),
	B("dup header", HDR "size 518\n" RCPT "end\n", "repeated key"),
	B("dup rcpt key", HDR RCPT "kind remote\nend\n", "repeated key"),
	B("header after rcpt", HDR RCPT "auth ned\nend\n", "header key after the first recipient"),
	B("rcpt key first", HDR "kind local\n" RCPT "end\n", "recipient key before the first rcpt"),
	B("no nonce", "postern-envelope 1\nid 0PZ4K8M2T7Q3\narrival 1\nsize 5\nbody 7bit\n"
	  "smtputf8 no\nsender <>\n" RCPT "end\n", "a required header key is missing"),
	B("no recipients", HDR "end\n", "no recipients"),
	B("rcpt no state", HDR "rcpt <a@b>\nkind local\nattempts 0\n" RCPT "end\n",
	  "recipient without kind, state or attempts"),
	B("last rcpt no kind", HDR "rcpt <a@b>\nstate pending\nattempts 0\nend\n",
	  "recipient without kind, state or attempts"),
	B("deferred no next", HDR "rcpt <a@b>\nkind local\nstate deferred\nattempts 1\nend\n",
	  "next-try belongs to a deferred recipient, and only there"),
	B("next on pending", HDR RCPT "next-try 5\nend\n",
	  "next-try belongs to a deferred recipient, and only there"),
	B("inflight delivered", HDR "rcpt <a@b>\nkind local\nstate delivered\nattempts 1\n"
	  "inflight 5\nend\n", "inflight on a finished recipient"),
	B("inflight 0", HDR RCPT "inflight 0\nend\n", "invalid value"),
	B("leading zero", HDR RCPT "warned 05\nend\n", "invalid value"),
	B("sign", "postern-envelope 1\nid 0PZ4K8M2T7Q3\nnonce 9F86D081884C7D65\narrival +5\n",
	  "invalid value"),
	B("overflow", "postern-envelope 1\nid 0PZ4K8M2T7Q3\nnonce 9F86D081884C7D65\n"
	  "arrival 1\nsize 99999999999999999999\n", "invalid value"),
	B("time past 9999", HDR RCPT "warned 253402300800\nend\n", "invalid value"),
	B("attempts over", HDR "rcpt <a@b>\nkind local\nstate pending\nattempts 1000001\nend\n",
	  "invalid value"),
	B("id lower", "postern-envelope 1\nid 0pz4k8m2t7q3\n", "invalid value"),
	B("id with I", "postern-envelope 1\nid 0PZ4K8M2T7QI\n", "invalid value"),
	B("id short", "postern-envelope 1\nid 0PZ4K8M2T7Q\n", "invalid value"),
	B("nonce lower", "postern-envelope 1\nnonce 9f86d081884c7d65\n", "invalid value"),
	B("smtputf8 true", "postern-envelope 1\nsmtputf8 true\n", "invalid value"),
	B("sender bare", "postern-envelope 1\nsender ned@example.org\n", "address not in <>"),
	B("sender route", "postern-envelope 1\nsender <@a,@b:ned@example.org>\n",
	  "source route in an address"),
	B("sender junk", "postern-envelope 1\nsender <ned@example.org> x\n",
	  "junk after the address"),
	B("sender space", "postern-envelope 1\nsender <ned @example.org>\n", "invalid address"),
	B("null rcpt", HDR "rcpt <>\nkind local\nstate pending\nattempts 0\nend\n",
	  "invalid address"),
	B("notify order", HDR RCPT "notify delay,success\nend\n", "invalid value"),
	B("notify twice", HDR RCPT "notify success,success\nend\n", "invalid value"),
	B("notify comma", HDR RCPT "notify success,\nend\n", "invalid value"),
	B("notify never+", HDR RCPT "notify never,success\nend\n", "invalid value"),
	B("notify case", HDR RCPT "notify SUCCESS\nend\n", "invalid value"),
	B("orcpt no type", HDR RCPT "orcpt bob@example.org\nend\n", "invalid value"),
	B("orcpt empty addr", HDR RCPT "orcpt rfc822;\nend\n", "invalid value"),
	B("client-addr", HDR "client-addr 192.0.2.300\n" RCPT "end\n", "invalid value"),
	B("helo space", HDR "helo a b\n" RCPT "end\n", "invalid value"),
	B("proto dash", HDR "proto ESMTP-SA\n" RCPT "end\n", "invalid value"),
	B("state", HDR "rcpt <a@b>\nkind local\nstate done\nattempts 0\nend\n", "invalid value"),
	B("kind", HDR "rcpt <a@b>\nkind nearby\nstate pending\nattempts 0\nend\n",
	  "invalid value"),
	B("ret", HDR "ret FULL\n" RCPT "end\n", "invalid value"),
	B("no value", HDR "auth\n" RCPT "end\n", "a line without key or value"),
	B("empty value", HDR "auth \n" RCPT "end\n", "a line without key or value"),
	B("empty key", HDR " auth\n" RCPT "end\n", "a line without key or value"),
};

static void check_bad(const char *name, const char *text, size_t len, const char *want)
{
	struct envelope *e = (struct envelope *)1;
	const char *err = NULL;
	unsigned line;

	int r = envelope_parse(text, len, &e, &line, &err);
	CHECK(r == -1 && e == NULL);
	if (r != -1 || err == NULL || strcmp(err, want) != 0) {
		fprintf(stderr, "bad %s: got %d \"%s\", want \"%s\"\n", name, r,
			err ? err : "(null)", want);
		unit_fail++;
	}
	if (r == 0)
		envelope_free(&e);
}

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		check_bad(bads[i].name, bads[i].text, bads[i].len, bads[i].error);
	check_bad("body", HDR "ret full\nbody 7bit\n", strlen(HDR "ret full\nbody 7bit\n"),
		  "repeated key");
	check_bad("body word", "postern-envelope 1\nbody 8BITMIME\n",
		  strlen("postern-envelope 1\nbody 8BITMIME\n"), "invalid value");
	/* the line number is reported */
	{
		struct envelope *e;
		const char *err;
		unsigned line = 0;
		const char *t = HDR RCPT "colour blue\nend\n";
		CHECK(envelope_parse(t, strlen(t), &e, &line, &err) == -1 && line == 13);
	}
}

/* A buffer holding HDR + the given middle + one recipient + end. */
static char *with(const char *mid, const char *rcpt_extra)
{
	size_t n = strlen(HDR) + strlen(mid) + strlen(RCPT) + strlen(rcpt_extra) + 8;
	char *b = malloc(n);
	snprintf(b, n, "%s%s%s%send\n", HDR, mid, RCPT, rcpt_extra);
	return b;
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static int parses(const char *t)
{
	struct envelope *e;
	const char *err;
	int r = envelope_parse(t, strlen(t), &e, NULL, &err);
	envelope_free(&e);
	return r;
}

static void test_limits(void)
{
	char line[2048], *v, *t;

	/* reply: SPOOL_REPLY_MAX */
	v = repeat('r', SPOOL_REPLY_MAX);
	snprintf(line, sizeof(line), "reply %s\n", v);
	CHECK(parses(t = with("", line)) == 0);
	free(t);
	snprintf(line, sizeof(line), "reply %sr\n", v);
	CHECK(parses(t = with("", line)) == -1);
	free(t);
	free(v);
	/* envid */
	v = repeat('e', SPOOL_ENVID_MAX);
	snprintf(line, sizeof(line), "envid %s\n", v);
	CHECK(parses(t = with(line, "")) == 0);
	free(t);
	snprintf(line, sizeof(line), "envid %se\n", v);
	CHECK(parses(t = with(line, "")) == -1);
	free(t);
	free(v);
	/* orcpt: the whole value */
	v = repeat('o', SPOOL_ORCPT_MAX - 7);
	snprintf(line, sizeof(line), "orcpt rfc822;%s\n", v);
	CHECK(parses(t = with("", line)) == 0);
	free(t);
	snprintf(line, sizeof(line), "orcpt rfc822;%so\n", v);
	CHECK(parses(t = with("", line)) == -1);
	free(t);
	free(v);
	/* tls, proto */
	v = repeat('t', SPOOL_TLS_MAX);
	snprintf(line, sizeof(line), "tls %s\n", v);
	CHECK(parses(t = with(line, "")) == 0);
	free(t);
	snprintf(line, sizeof(line), "tls %st\n", v);
	CHECK(parses(t = with(line, "")) == -1);
	free(t);
	free(v);
	v = repeat('P', SPOOL_PROTO_MAX);
	snprintf(line, sizeof(line), "proto %s\n", v);
	CHECK(parses(t = with(line, "")) == 0);
	free(t);
	snprintf(line, sizeof(line), "proto %sP\n", v);
	CHECK(parses(t = with(line, "")) == -1);
	free(t);
	free(v);
	/* a line: SPOOL_ENV_LINE_MAX with its LF is "unknown key", one more is too long */
	{
		struct envelope *e;
		const char *err;
		v = repeat('k', SPOOL_ENV_LINE_MAX - 3);
		snprintf(line, sizeof(line), "%s x\n", v);
		t = with(line, "");
		CHECK(envelope_parse(t, strlen(t), &e, NULL, &err) == -1 &&
		      strcmp(err, "unknown key") == 0);
		free(t);
		snprintf(line, sizeof(line), "%sk x\n", v);
		t = with(line, "");
		CHECK(envelope_parse(t, strlen(t), &e, NULL, &err) == -1 &&
		      strcmp(err, "line too long") == 0);
		free(t);
		free(v);
	}
	/* recipients: SPOOL_MAX_RCPTS, then one more */
	{
		size_t cap = strlen(HDR) + (SPOOL_MAX_RCPTS + 1) * 80 + 16, n;
		char *b = malloc(cap);
		struct envelope *e;
		const char *err;
		n = (size_t)snprintf(b, cap, "%s", HDR);
		for (int i = 0; i < SPOOL_MAX_RCPTS; i++)
			n += (size_t)snprintf(b + n, cap - n,
					      "rcpt <u%d@example.org>\nkind remote\n"
					      "state pending\nattempts 0\n", i);
		size_t keep = n;
		n += (size_t)snprintf(b + n, cap - n, "end\n");
		CHECK(envelope_parse(b, n, &e, NULL, &err) == 0 && e->rcpt_count == SPOOL_MAX_RCPTS);
		if (e != NULL) {
			char tok[ENVELOPE_TOKEN_LEN + 1];
			CHECK(envelope_token(e, SPOOL_MAX_RCPTS - 1, tok, sizeof(tok)) == 0);
			CHECK(strncmp(tok + ENVELOPE_ID_LEN, "-999-", 5) == 0);
			CHECK(envelope_add_rcpt(e, "one@more", ENVELOPE_LOCAL, 0, NULL, &err) == -1);
		}
		envelope_free(&e);
		n = keep + (size_t)snprintf(b + keep, cap - keep,
					    "rcpt <x@example.org>\nkind remote\nstate pending\n"
					    "attempts 0\nend\n");
		CHECK(envelope_parse(b, n, &e, NULL, &err) == -1 &&
		      strcmp(err, "too many recipients") == 0);
		free(b);
	}
	/* a file over SPOOL_ENV_MAX_BYTES is refused unread */
	{
		struct envelope *e;
		const char *err;
		char *big = repeat('x', SPOOL_ENV_MAX_BYTES + 1);
		CHECK(envelope_parse(big, SPOOL_ENV_MAX_BYTES + 1, &e, NULL, &err) == -1 &&
		      strcmp(err, "envelope too large") == 0);
		free(big);
	}
}

static void test_tokens(void)
{
	struct envelope *e;
	const char *err;
	char t0[ENVELOPE_TOKEN_LEN + 1], t1[ENVELOPE_TOKEN_LEN + 1], again[ENVELOPE_TOKEN_LEN + 1];
	char small[ENVELOPE_TOKEN_LEN];

	CHECK(envelope_parse(full, strlen(full), &e, NULL, &err) == 0);
	if (e == NULL)
		return;
	CHECK(envelope_token(e, 0, t0, sizeof(t0)) == 0);
	CHECK(envelope_token(e, 1, t1, sizeof(t1)) == 0);
	CHECK(envelope_token(e, 0, again, sizeof(again)) == 0);
	CHECK(strlen(t0) == ENVELOPE_TOKEN_LEN);
	CHECK(strncmp(t0, "0PZ4K8M2T7Q3-000-", 17) == 0);
	CHECK(strncmp(t1, "0PZ4K8M2T7Q3-001-", 17) == 0);
	CHECK(strcmp(t0, again) == 0);
	CHECK(strcmp(t0 + 17, t1 + 17) != 0);
	CHECK(strspn(t0, "0123456789ABCDEFGHJKMNPQRSTVWXYZ-") == ENVELOPE_TOKEN_LEN);
	CHECK(envelope_token(e, 4, t1, sizeof(t1)) == -1);
	CHECK(envelope_token(e, 0, small, sizeof(small)) == -1);
	/* another nonce, another token: a recipient who saw his cannot make another's */
	e->nonce[0] = e->nonce[0] == 'A' ? 'B' : 'A';
	CHECK(envelope_token(e, 0, again, sizeof(again)) == 0 && strcmp(again, t0) != 0);
	envelope_free(&e);

	char hdr[512];
	snprintf(hdr, sizeof(hdr), "Return-Path: <a@b>\r\nx-postern-delivery:  %s \r\n"
		 "Subject: x\r\n\r\nbody\r\n", t0);
	CHECK(envelope_token_find(hdr, strlen(hdr), t0));
	CHECK(!envelope_token_find(hdr, strlen(hdr), t1));
	snprintf(hdr, sizeof(hdr), "Return-Path: <a@b>\nX-Postern-Delivery: %s\n", t0);
	CHECK(envelope_token_find(hdr, strlen(hdr), t0));
	CHECK(!envelope_token_find(hdr, strlen(hdr) - 2, t0));   /* cut inside the token */
	/* in the body, folded or under another name it does not count */
	snprintf(hdr, sizeof(hdr), "Subject: x\n\nX-Postern-Delivery: %s\n", t0);
	CHECK(!envelope_token_find(hdr, strlen(hdr), t0));
	snprintf(hdr, sizeof(hdr), "X-Postern-Delivery:\n %s\n", t0);
	CHECK(!envelope_token_find(hdr, strlen(hdr), t0));
	snprintf(hdr, sizeof(hdr), "X-Postern-Deliveryx: %s\n", t0);
	CHECK(!envelope_token_find(hdr, strlen(hdr), t0));
	snprintf(hdr, sizeof(hdr), "X-Postern-Delivery: %sX\n", t0);
	CHECK(!envelope_token_find(hdr, strlen(hdr), t0));
	CHECK(!envelope_token_find("", 0, t0));

	CHECK(envelope_id_valid("0123456789AB", 12));
	CHECK(!envelope_id_valid("0123456789AU", 12));
	CHECK(!envelope_id_valid("0123456789A", 11));
	CHECK(!envelope_id_valid("0123456789A\0", 12));
	CHECK_STR(envelope_state_name(ENVELOPE_FAILED), "failed");
	CHECK_STR(envelope_kind_name(ENVELOPE_REMOTE), "remote");
}

int main(void)
{
	test_full();
	test_build();
	test_bad();
	test_limits();
	test_tokens();
	return unit_done("test_envelope");
}
