/* smtp-submit's policy (smtp-submit/policy.c) against the attacks it exists for: every
 * open-relay form of issue 7 on port 25 and on submission (the '%' hack, source routes,
 * quoted local parts with '@', bang paths, address literals, case, trailing dots, look-
 * alike domains), unknown users, aliases, spoofed MAIL FROM and header From:, the rate
 * limit shared across processes (two children counting at once, then a third process
 * refused), a corrupt or hostile rate file, and the DNSBL answer handling with injected
 * DNS answers.  Users come from an injected passwd table, so no real account matters;
 * RCPT/MAIL strings go through the real RFC 5321 path parser first, as in the session. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/config.h"
#include "base/log.h"
#include "mail/address.h"
#include "spool/aliases.h"
#include "policy.h"
#include "unit.h"

static const struct { const char *name; uid_t uid; } users[] = {
	{ "ann", 1001 }, { "bob", 1002 }, { "carl", 1003 }, { "root", 0 }, { "daemon", 1 },
	{ "lowuid", 500 }, { "denied", 1004 },
};

static int fake_lookup(void *ctx, const char *name, uid_t *uid_r)
{
	(void)ctx;
	if (strcmp(name, "ldapdown") == 0)
		return -1;
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		if (strcmp(users[i].name, name) == 0) {
			*uid_r = users[i].uid;
			return 1;
		}
	return 0;
}

static time_t fake_now = 1000 * 60;
static time_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static char spool[64];
static char aliases_path[128];

static const char aliases_text[] =
	"# test aliases\n"
	"root: ann\n"
	"sales: ann\n"
	"Team: ann,\n  bob\n"
	"pipe: ann, \"|/bin/cat\"\n"
	"ghost: nosuchuser\n"
	"loop1: loop2\nloop2: loop1\n"
	"remote: x@evil.com\n"
	"viadomain: ann@mail.example.org\n"
	"fwd: \\ann, x@evil.com\n"
	"ldap: ldapdown\n";

static struct policy *open_policy(enum submit_mode mode, const char *domains,
				  const char *hostname)
{
	struct config cfg;
	struct policy *p;
	const char *err = NULL;

	config_defaults(&cfg, "smtp-submit");
	free(cfg.local_domains);
	cfg.local_domains = domains != NULL ? strdup(domains) : NULL;
	free(cfg.hostname);
	cfg.hostname = hostname != NULL ? strdup(hostname) : NULL;
	free(cfg.aliases);
	cfg.aliases = strdup(aliases_path);
	free(cfg.spool_dir);
	cfg.spool_dir = strdup(spool);
	free(cfg.deny_users);
	cfg.deny_users = strdup("nobody, denied");
	cfg.min_uid = 1000;
	cfg.submit_rate_messages = 10;
	cfg.submit_rate_recipients = 30;
	if (policy_open(&cfg, mode, &p, &err) == -1) {
		fprintf(stderr, "policy_open: %s\n", err);
		p = NULL;
	} else {
		policy_set_user_lookup(p, fake_lookup, NULL);
		policy_set_clock(p, fake_clock, NULL);
	}
	config_free(&cfg);
	return p;
}

#define DOMAINS "example.org mail.example.org EXAMPLE.net. b\xc3\xbc" "cher.example"

/* The session's path: parse, then ask.  501 for what the parser refuses, the policy's
 * code for a refusal, 250 (LOCAL) or 251 (REMOTE) for an accepted recipient. */
static unsigned rcpt(struct policy *p, const char *login, const char *s,
		     struct policy_reply *r)
{
	struct address_path path;
	enum policy_rcpt_kind kind;
	const char *err;

	memset(r, 0, sizeof(*r));
	if (address_path_parse(s, strlen(s), ADDRESS_PATH_ALLOW_POSTMASTER | ADDRESS_PATH_UTF8,
			       &path, &err) < 0)
		return 501;
	if (policy_recipient(p, login, &path, &kind, r) == -1)
		return r->code;
	return kind == POLICY_RCPT_LOCAL ? 250 : 251;
}

static unsigned sender(struct policy *p, const char *login, const char *s,
		       struct policy_reply *r)
{
	struct address_path path;
	const char *err;

	memset(r, 0, sizeof(*r));
	if (address_path_parse(s, strlen(s), ADDRESS_PATH_ALLOW_NULL | ADDRESS_PATH_UTF8,
			       &path, &err) < 0)
		return 501;
	if (policy_sender(p, login, &path, r) == -1)
		return r->code;
	return 250;
}

static const struct {
	const char *rcpt;
	unsigned mx, sub;        /* port 25 (login NULL), submission (login ann) */
	const char *status_mx;   /* the status of a port-25 refusal */
} rcpt_cases[] = {
	/* local users, any case, every local domain */
	{ "<ann@example.org>", 250, 250, NULL },
	{ "<ANN@EXAMPLE.ORG>", 250, 250, NULL },
	{ "<Ann@Mail.Example.Org>", 250, 250, NULL },
	{ "<ann@example.net>", 250, 250, NULL },
	{ "<ann@b\xc3\xbc" "cher.example>", 250, 250, NULL },
	{ "<\"ann\"@example.org>", 250, 250, NULL },
	/* UTF-8 domains are compared as A-labels after UTS #46 mapping: case folded */
	{ "<ann@B\xc3\x9c" "CHER.example>", 250, 250, NULL },
	{ "<ann@xn--bcher-kva.example>", 250, 250, NULL },
	/* unknown, system, denied users */
	{ "<nobody@example.org>", 550, 550, "5.1.1" },
	{ "<daemon@example.org>", 550, 550, "5.1.1" },
	{ "<lowuid@example.org>", 550, 550, "5.1.1" },
	{ "<denied@example.org>", 550, 550, "5.1.1" },
	{ "<\"ann bob\"@example.org>", 550, 550, "5.1.1" },
	{ "<ldapdown@example.org>", 451, 451, "4.3.0" },
	/* aliases */
	{ "<root@example.org>", 250, 250, NULL },
	{ "<TEAM@example.org>", 250, 250, NULL },
	{ "<pipe@example.org>", 250, 250, NULL },
	{ "<viadomain@example.org>", 250, 250, NULL },
	{ "<ghost@example.org>", 550, 550, "5.1.1" },
	{ "<remote@example.org>", 550, 550, "5.1.1" },
	{ "<loop1@example.org>", 451, 451, "4.3.0" },
	{ "<ldap@example.org>", 451, 451, "4.3.0" },
	/* postmaster, always (RFC 5321 section 4.5.1) */
	{ "<Postmaster>", 250, 250, NULL },
	{ "<postmaster>", 250, 250, NULL },
	{ "<POSTMASTER@EXAMPLE.ORG>", 250, 250, NULL },
	{ "<postmaster@evil.com>", 554, 251, "5.7.1" },
	/* other domains, look-alikes */
	{ "<ann@evil.com>", 554, 251, "5.7.1" },
	{ "<ann@example.org.evil.com>", 554, 251, "5.7.1" },
	{ "<ann@evilexample.org>", 554, 251, "5.7.1" },
	{ "<ann@sub.example.org>", 554, 251, "5.7.1" },
	{ "<ann@org>", 554, 251, "5.7.1" },
	{ "<ann@localhost>", 554, 251, "5.7.1" },
	/* the relay tricks, to a local domain and to another: refused on both ports */
	{ "<victim%evil.com@example.org>", 554, 553, "5.7.1" },
	{ "<victim%evil.com@evil.com>", 554, 553, "5.7.1" },
	{ "<evil.com!victim@example.org>", 554, 553, "5.7.1" },
	{ "<evil.com!victim@evil.com>", 554, 553, "5.7.1" },
	{ "<\"victim@evil.com\"@example.org>", 554, 553, "5.7.1" },
	{ "<\"victim\\@evil.com\"@example.org>", 554, 553, "5.7.1" },
	{ "<\"victim%evil.com\"@example.org>", 554, 553, "5.7.1" },
	{ "<@example.org:victim@evil.com>", 554, 553, "5.7.1" },
	{ "<@evil.com:ann@example.org>", 554, 553, "5.7.1" },
	{ "<@example.org,@mail.example.org:ann@example.org>", 554, 553, "5.7.1" },
	{ "<ann@[127.0.0.1]>", 554, 553, "5.7.1" },
	{ "<ann@[192.0.2.1]>", 554, 553, "5.7.1" },
	{ "<ann@[IPv6:::1]>", 554, 553, "5.7.1" },
	{ "<ann@[x-tag:example.org]>", 554, 553, "5.7.1" },
	{ "<postmaster@[127.0.0.1]>", 554, 553, "5.7.1" },
	/* trailing dots: RFC 5321 has none; the parser refuses them before the policy */
	{ "<ann@example.org.>", 501, 501, NULL },
	{ "<ann@evil.com.>", 501, 501, NULL },
};

static void test_recipients(void)
{
	struct policy *mx = open_policy(SUBMIT_MODE_MX, DOMAINS, "mail.example.org");
	struct policy *sub = open_policy(SUBMIT_MODE_SUBMISSION, DOMAINS, "mail.example.org");
	struct policy_reply r;

	CHECK(mx != NULL && sub != NULL);
	if (mx == NULL || sub == NULL)
		return;
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		unsigned c = rcpt(mx, NULL, rcpt_cases[i].rcpt, &r);
		if (c != rcpt_cases[i].mx)
			fprintf(stderr, "mx %s: %u %s %s\n", rcpt_cases[i].rcpt, c, r.status, r.text);
		CHECK(c == rcpt_cases[i].mx);
		if (rcpt_cases[i].status_mx != NULL && c >= 400 && c != 501)
			CHECK_STR(r.status, rcpt_cases[i].status_mx);
		if (c == 554)
			CHECK(strncmp(r.text, "Relay access denied", 19) == 0);
		c = rcpt(sub, "ann", rcpt_cases[i].rcpt, &r);
		if (c != rcpt_cases[i].sub)
			fprintf(stderr, "sub %s: %u %s %s\n", rcpt_cases[i].rcpt, c, r.status, r.text);
		CHECK(c == rcpt_cases[i].sub);
		if (c == 553)
			CHECK_STR(r.status, "5.7.1");
	}
	/* a refusal says why */
	CHECK(rcpt(mx, NULL, "<ann@[127.0.0.1]>", &r) == 554 && strstr(r.text, "literal") != NULL);
	CHECK(rcpt(mx, NULL, "<a%b@example.org>", &r) == 554 && strstr(r.text, "%") != NULL);
	CHECK(rcpt(mx, NULL, "<@a.b:x@example.org>", &r) == 554 && strstr(r.text, "route") != NULL);

	/* trailing dots and case, where a path cannot carry them (header From:, config) */
	CHECK(policy_domain_is_local(mx, "example.org."));
	CHECK(policy_domain_is_local(mx, "EXAMPLE.ORG."));
	CHECK(policy_domain_is_local(mx, "example.net"));
	CHECK(!policy_domain_is_local(mx, "example.org.."));
	CHECK(!policy_domain_is_local(mx, "."));
	CHECK(!policy_domain_is_local(mx, ""));
	CHECK(!policy_domain_is_local(mx, "xample.org"));
	struct address_path path;
	enum policy_rcpt_kind kind;
	memset(&path, 0, sizeof(path));
	snprintf(path.local, sizeof(path.local), "ann");
	snprintf(path.local_unquoted, sizeof(path.local_unquoted), "ann");
	snprintf(path.domain, sizeof(path.domain), "Example.Org.");
	CHECK(policy_recipient(mx, NULL, &path, &kind, &r) == 0 && kind == POLICY_RCPT_LOCAL);
	snprintf(path.domain, sizeof(path.domain), "evil.com.");
	CHECK(policy_recipient(mx, NULL, &path, &kind, &r) == -1 && r.code == 554);
	policy_free(&mx);
	policy_free(&sub);
	CHECK(mx == NULL);
}

static const struct {
	const char *login, *from;
	unsigned sub;
} sender_cases[] = {
	{ "ann", "<ann@example.org>", 250 },
	{ "ann", "<ANN@EXAMPLE.ORG>", 250 },
	{ "ANN", "<ann@example.org>", 250 },
	{ "ann", "<ann@mail.example.org>", 250 },
	{ "ann", "<ann@example.net>", 250 },
	{ "ann", "<\"ann\"@example.org>", 250 },
	{ "ann", "<sales@example.org>", 250 },     /* an alias of ann alone */
	{ "ann", "<root@example.org>", 250 },
	{ "ann", "<team@example.org>", 553 },      /* ann and bob */
	{ "ann", "<pipe@example.org>", 553 },      /* ann and a command */
	{ "ann", "<fwd@example.org>", 553 },       /* ann and a remote address */
	{ "bob", "<sales@example.org>", 553 },
	{ "ann", "<bob@example.org>", 553 },
	{ "ann", "<ann@evil.com>", 553 },
	{ "ann", "<ann@example.org.evil.com>", 553 },
	{ "ann", "<>", 553 },
	{ "ann", "<ann%evil.com@example.org>", 553 },
	{ "ann", "<@evil.com:ann@example.org>", 553 },
	{ "ann", "<ann@[127.0.0.1]>", 553 },
	{ "ann", "<\"ann@evil.com\"@example.org>", 553 },
	{ "ann", "<postmaster@example.org>", 553 },
	{ "ann", "<annx@example.org>", 553 },
};

static void test_senders(void)
{
	struct policy *mx = open_policy(SUBMIT_MODE_MX, DOMAINS, NULL);
	struct policy *sub = open_policy(SUBMIT_MODE_SMTPS, DOMAINS, NULL);
	struct policy_reply r;

	CHECK(mx != NULL && sub != NULL);
	if (mx == NULL || sub == NULL)
		return;
	for (size_t i = 0; i < sizeof(sender_cases) / sizeof(sender_cases[0]); i++) {
		unsigned c = sender(sub, sender_cases[i].login, sender_cases[i].from, &r);
		if (c != sender_cases[i].sub)
			fprintf(stderr, "sender %s as %s: %u %s\n", sender_cases[i].from,
				sender_cases[i].login, c, r.text);
		CHECK(c == sender_cases[i].sub);
		if (c == 553)
			CHECK_STR(r.status, "5.7.1");
		/* port 25 takes every syntactically valid sender, ours too */
		CHECK(sender(mx, NULL, sender_cases[i].from, &r) == 250);
	}
	CHECK(sender(sub, "ann", "<bob@example.org>", &r) == 553);
	CHECK_STR(r.text, "Sender address not owned by user <ann>");
	CHECK(sender(sub, "ann", "<>", &r) == 553 && strstr(r.text, "Null sender") != NULL);
	/* a hostile login name is sanitised in the reply */
	CHECK(sender(sub, "a\r\nb<c>", "<x@example.org>", &r) == 553);
	CHECK(strchr(r.text, '\r') == NULL && strchr(r.text, '\n') == NULL);
	policy_free(&mx);
	policy_free(&sub);
}

static const struct {
	const char *value;
	int ret;
	size_t len; /* 0: strlen */
} from_cases[] = {
	{ "ann@example.org", 0, 0 },
	{ " Ann Example <ANN@example.org>", 0, 0 },
	{ " =?utf-8?q?Ann_=C3=A9?= <ann@mail.example.org>", 0, 0 },
	{ " \"Ann\"\r\n <ann@example.org>", 0, 0 },
	{ " ann@example.org (Ann)", 0, 0 },
	{ " sales@example.org", 0, 0 },
	{ " \"boss@example.org\" <ann@example.org>", 0, 0 },  /* a display name is free text */
	{ " bob@example.org", -1, 0 },
	{ " ann@evil.com", -1, 0 },
	{ " ann@example.org, bob@example.org", -1, 0 },
	{ " bob@example.org, ann@example.org", -1, 0 },
	{ " \"ann@example.org\" <evil@evil.com>", -1, 0 },
	{ " ann@example.org <evil@evil.com>", -1, 0 },
	{ " team@example.org", -1, 0 },
	{ " friends: ann@example.org;", -1, 0 },
	{ " undisclosed-recipients:;", -1, 0 },
	{ "", -1, 0 },
	{ "   ", -1, 0 },
	{ " ann", -1, 0 },
	{ " <>", -1, 0 },
	{ " ann@[127.0.0.1]", -1, 0 },
	{ " <@evil.com:ann@example.org>", -1, 0 },
	{ " ann@example.org>", -1, 0 },
	{ " \"ann@example.org", -1, 0 },
	{ " ann@example.org\0evil", -1, 21 },
};

static void test_header_from(void)
{
	struct policy *sub = open_policy(SUBMIT_MODE_SUBMISSION, DOMAINS, NULL);
	struct policy_reply r;

	CHECK(sub != NULL);
	if (sub == NULL)
		return;
	for (size_t i = 0; i < sizeof(from_cases) / sizeof(from_cases[0]); i++) {
		size_t len = from_cases[i].len != 0 ? from_cases[i].len :
			     strlen(from_cases[i].value);
		memset(&r, 0, sizeof(r));
		int ret = policy_header_from(sub, "ann", from_cases[i].value, len, &r);
		if (ret != from_cases[i].ret)
			fprintf(stderr, "From:%s -> %d %s\n", from_cases[i].value, ret, r.text);
		CHECK(ret == from_cases[i].ret);
		if (ret == -1)
			CHECK(r.code == 553 && strcmp(r.status, "5.7.1") == 0);
	}
	/* port 25: From: is not ours to check */
	CHECK(policy_header_from(sub, NULL, " anyone@evil.com", 16, &r) == 0);
	CHECK(policy_header_from(sub, NULL, "", 0, &r) == 0);
	policy_free(&sub);
}

/* local_domains' default and errors */
static void test_domains(void)
{
	struct policy *p;
	const char *const *d;
	size_t n;

	p = open_policy(SUBMIT_MODE_MX, NULL, "Mail.Example.ORG.");
	CHECK(p != NULL);
	CHECK_STR(policy_hostname(p), "mail.example.org");
	n = policy_local_domains(p, &d);
	CHECK(n == 3 && strcmp(d[0], "mail.example.org") == 0 && strcmp(d[1], "example.org") == 0 &&
	      strcmp(d[2], "localhost") == 0);
	policy_free(&p);
	p = open_policy(SUBMIT_MODE_MX, NULL, "example.org");
	n = policy_local_domains(p, &d);
	CHECK(n == 2 && strcmp(d[0], "example.org") == 0);  /* never the bare TLD "org" */
	CHECK(!policy_domain_is_local(p, "org"));
	policy_free(&p);
	p = open_policy(SUBMIT_MODE_MX, NULL, "host");
	n = policy_local_domains(p, &d);
	CHECK(n == 2 && strcmp(d[0], "host") == 0 && strcmp(d[1], "localhost") == 0);
	policy_free(&p);
	/* no hostname key: the host's own name, whatever it is, is local */
	p = open_policy(SUBMIT_MODE_MX, NULL, NULL);
	CHECK(p != NULL && policy_hostname(p)[0] != '\0');
	CHECK(policy_domain_is_local(p, policy_hostname(p)));
	policy_free(&p);
	/* internationalized domains (RFC 6531 with IDNA 2008 and UTS #46): local_domains in
	 * U-labels or A-labels, a recipient in either form, in any case */
	p = open_policy(SUBMIT_MODE_MX, "B\xc3\x9c" "cher.example xn--fsqu00a.xn--0zwm56d", NULL);
	CHECK(p != NULL);
	if (p != NULL) {
		struct policy_reply r;
		n = policy_local_domains(p, &d);
		CHECK(n == 2 && strcmp(d[0], "xn--bcher-kva.example") == 0 &&
		      strcmp(d[1], "xn--fsqu00a.xn--0zwm56d") == 0);
		CHECK(policy_domain_is_local(p, "b\xc3\xbc" "cher.example"));
		CHECK(policy_domain_is_local(p, "B\xc3\x9c" "CHER.EXAMPLE."));
		CHECK(policy_domain_is_local(p, "XN--BCHER-KVA.example"));
		CHECK(policy_domain_is_local(p, "\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95"));
		CHECK(!policy_domain_is_local(p, "bucher.example"));
		CHECK(!policy_domain_is_local(p, "b\xc3\xbc" "cher.example.org"));
		/* not a valid IDN: malformed UTF-8, a disallowed code point */
		CHECK(!policy_domain_is_local(p, "b\xc3" "cher.example"));
		CHECK(!policy_domain_is_local(p, "a\xe2\x80\xae" "b.example"));
		/* a recipient at the U-label form on port 25 is a local user (SMTPUTF8) */
		CHECK(rcpt(p, NULL, "<ann@b\xc3\xbc" "cher.example>", &r) == 250);
		CHECK(rcpt(p, NULL, "<ann@\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95>", &r) == 250);
		CHECK(rcpt(p, NULL, "<ann@b\xc3\xbc" "cher.example.org>", &r) == 554);
		policy_free(&p);
	}
	CHECK(open_policy(SUBMIT_MODE_MX, "b\xc3" "cher.example", NULL) == NULL);
	/* config errors */
	CHECK(open_policy(SUBMIT_MODE_MX, "", NULL) == NULL);
	CHECK(open_policy(SUBMIT_MODE_MX, " , ", NULL) == NULL);
	CHECK(open_policy(SUBMIT_MODE_MX, "a@b.example", NULL) == NULL);
	CHECK(open_policy(SUBMIT_MODE_MX, "[127.0.0.1]", NULL) == NULL);
	/* an unreadable aliases file refuses to start (421 in the session) */
	char saved[sizeof(aliases_path)];
	memcpy(saved, aliases_path, sizeof(saved));
	snprintf(aliases_path, sizeof(aliases_path), "%s", spool);
	CHECK(open_policy(SUBMIT_MODE_MX, "example.org", NULL) == NULL);
	memcpy(aliases_path, saved, sizeof(saved));
}

/* the real passwd lookup (getpwnam): root exists but is uid 0, daemon is a system user
 * (accepted only because min_uid is 0 here), a name nobody has is unknown */
static void test_real_passwd(void)
{
	struct config cfg;
	struct policy *p;
	struct policy_reply r;
	const char *err;

	config_defaults(&cfg, "smtp-submit");
	free(cfg.aliases);
	cfg.aliases = strdup("");
	free(cfg.local_domains);
	cfg.local_domains = strdup("example.org");
	cfg.min_uid = 0;
	CHECK(policy_open(&cfg, SUBMIT_MODE_MX, &p, &err) == 0);
	config_free(&cfg);
	CHECK(rcpt(p, NULL, "<root@example.org>", &r) == 550);
	CHECK(rcpt(p, NULL, "<daemon@example.org>", &r) == 250);
	CHECK(rcpt(p, NULL, "<DAEMON@example.org>", &r) == 250);
	CHECK(rcpt(p, NULL, "<no-such-user-pt9@example.org>", &r) == 550);
	CHECK(rcpt(p, NULL, "<postmaster@example.org>", &r) == 250);
	policy_free(&p);
}

/* ---- rate limits ---- */

static unsigned rate_check(struct policy *p, const char *login, unsigned nrcpt,
			   struct policy_reply *r)
{
	memset(r, 0, sizeof(*r));
	return policy_rate_check(p, login, nrcpt, r) == 0 ? 250 : r->code;
}

static void test_rate(void)
{
	struct policy *p = open_policy(SUBMIT_MODE_SUBMISSION, "example.org", NULL);
	struct policy_reply r;
	char path[256];
	struct stat st;
	pid_t kids[2];

	CHECK(p != NULL);
	if (p == NULL)
		return;
	fake_now = 1000 * 60;
	/* port 25 is never limited */
	CHECK(rate_check(p, NULL, 1000, &r) == 250);
	/* two processes record 5 messages of 3 recipients each, at once */
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			struct policy *c = open_policy(SUBMIT_MODE_SUBMISSION, "example.org", NULL);
			for (int i = 0; i < 5; i++)
				policy_rate_record(c, "Ann", 3);
			policy_free(&c);
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++) {
		int status;
		CHECK(waitpid(kids[k], &status, 0) == kids[k] && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
	}
	snprintf(path, sizeof(path), "%s/rate", spool);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path), "%s/rate/ann", spool);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
	/* 10 messages, 30 recipients: the 11th message is refused, in this process too */
	CHECK(rate_check(p, "ann", 0, &r) == 451);
	CHECK_STR(r.status, "4.7.1");
	CHECK(rate_check(p, "bob", 0, &r) == 250);      /* per user */
	/* 59 minutes later still counted (a sliding hour), 60 minutes later not */
	fake_now = 1059 * 60 + 59;
	CHECK(rate_check(p, "ann", 0, &r) == 451);
	fake_now = 1060 * 60;
	CHECK(rate_check(p, "ann", 0, &r) == 250);
	/* a clock set back: buckets from the future do not count, are overwritten */
	fake_now = 900 * 60;
	CHECK(rate_check(p, "ann", 0, &r) == 250);

	/* recipients: 29 of 30 used, one more fits, two do not (452 at RCPT) */
	fake_now = 2000 * 60;
	for (int i = 0; i < 9; i++)
		policy_rate_record(p, "carl", i < 1 ? 2 : 3); /* 2 + 8 * 3 = 26 */
	policy_rate_record(p, "dave", 0);
	CHECK(rate_check(p, "carl", 4, &r) == 250);
	CHECK(rate_check(p, "carl", 5, &r) == 452);
	CHECK_STR(r.status, "4.7.1");
	policy_rate_record(p, "carl", 3);                  /* 10 messages, 29 recipients */
	CHECK(rate_check(p, "carl", 0, &r) == 451);

	/* take: the check and the count in one locked step.  Four processes each try to
	 * take 5 messages for "fay" (limit 10): exactly 10 are taken in all, whatever the
	 * interleaving; a refused take counts nothing */
	fake_now = 3000 * 60;
	int pipefd[2];
	CHECK(pipe(pipefd) == 0);
	pid_t takers[4];
	for (int k = 0; k < 4; k++) {
		takers[k] = fork();
		if (takers[k] == 0) {
			struct policy *c = open_policy(SUBMIT_MODE_SUBMISSION, "example.org", NULL);
			struct policy_reply cr;
			unsigned char got = 0;
			for (int i = 0; i < 5; i++)
				if (policy_rate_take(c, "fay", 1, &cr) == 0)
					got++;
			policy_free(&c);
			_exit(write(pipefd[1], &got, 1) == 1 ? 0 : 1);
		}
	}
	close(pipefd[1]);
	unsigned taken = 0;
	for (int k = 0; k < 4; k++) {
		int status;
		unsigned char got;
		CHECK(read(pipefd[0], &got, 1) == 1);
		taken += got;
		CHECK(waitpid(takers[k], &status, 0) == takers[k] && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
	}
	close(pipefd[0]);
	CHECK(taken == 10);
	memset(&r, 0, sizeof(r));
	CHECK(policy_rate_take(p, "fay", 1, &r) == -1 && r.code == 451);
	/* recipients: a take that would pass the budget is refused and counts nothing */
	for (int i = 0; i < 9; i++)
		CHECK(policy_rate_take(p, "gil", 3, &r) == 0);      /* 27 of 30 */
	memset(&r, 0, sizeof(r));
	CHECK(policy_rate_take(p, "gil", 4, &r) == -1 && r.code == 452);
	CHECK(policy_rate_take(p, "gil", 3, &r) == 0);          /* 30 of 30: fits */
	CHECK(rate_check(p, "gil", 0, &r) == 451);

	/* a corrupt file is reset, never trusted nor a crash */
	snprintf(path, sizeof(path), "%s/rate/ann", spool);
	int fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd != -1 && write(fd, "garbage\n", 8) == 8);
	close(fd);
	CHECK(rate_check(p, "ann", 0, &r) == 250);
	policy_rate_record(p, "ann", 1);
	CHECK(stat(path, &st) == 0 && st.st_size > 8);
	/* a huge file is not read past its size */
	fd = open(path, O_WRONLY);
	CHECK(fd != -1 && ftruncate(fd, 100 * 1024 * 1024) == 0);
	close(fd);
	CHECK(rate_check(p, "ann", 0, &r) == 250);
	CHECK(stat(path, &st) == 0 && st.st_size < 4096);

	/* a symlink planted as a user's file is not followed: refused (fail closed) */
	snprintf(path, sizeof(path), "%s/rate/eve", spool);
	CHECK(symlink("/etc/passwd", path) == 0);
	CHECK(rate_check(p, "eve", 0, &r) == 451);
	CHECK_STR(r.status, "4.3.0");
	policy_rate_record(p, "eve", 1);
	CHECK(lstat("/etc/passwd", &st) == 0 && st.st_size > 0);
	/* names that cannot be file names: refused, nothing created */
	static const char *const bad[] = { "../etc/x", ".hidden", "-x", "a/b", "", "a b",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(!policy_rate_name_ok(bad[i]));
		CHECK(rate_check(p, bad[i], 0, &r) == 451);
		policy_rate_record(p, bad[i], 1);
	}
	snprintf(path, sizeof(path), "%s/etc", spool);
	CHECK(stat(path, &st) == -1);
	/* a rate directory that is not ours (someone else made it first): refused */
	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "%s/rate", spool);
		CHECK(chown(path, 65534, 65534) == 0);
		CHECK(rate_check(p, "ann", 0, &r) == 451);
		CHECK_STR(r.status, "4.3.0");
		CHECK(chown(path, 0, 0) == 0);
		CHECK(rate_check(p, "ann", 0, &r) == 250);
	}
	CHECK(policy_rate_name_ok("ann.b-c_d+e@example.org"));
	policy_free(&p);

	/* limits 0: off, no file written */
	struct config cfg;
	const char *err;
	config_defaults(&cfg, "smtp-submit");
	free(cfg.spool_dir);
	cfg.spool_dir = strdup("/nonexistent/spool");
	free(cfg.aliases);
	cfg.aliases = strdup(aliases_path);
	cfg.submit_rate_messages = 0;
	cfg.submit_rate_recipients = 0;
	CHECK(policy_open(&cfg, SUBMIT_MODE_SUBMISSION, &p, &err) == 0);
	CHECK(rate_check(p, "ann", 99999, &r) == 250);
	policy_rate_record(p, "ann", 1);
	policy_free(&p);
	/* limits on, but the spool is unusable: fail closed */
	cfg.submit_rate_messages = 5;
	CHECK(policy_open(&cfg, SUBMIT_MODE_SUBMISSION, &p, &err) == 0);
	CHECK(rate_check(p, "ann", 0, &r) == 451);
	CHECK_STR(r.status, "4.3.0");
	policy_free(&p);
	config_free(&cfg);
}

/* ---- DNSBL ---- */

static void test_dnsbl_names(void)
{
	char out[300];

	CHECK(policy_dnsbl_name("192.0.2.7", "zen.example", out, sizeof(out)) == 0);
	CHECK_STR(out, "7.2.0.192.zen.example");
	CHECK(policy_dnsbl_name("192.0.2.7", "zen.example.", out, sizeof(out)) == 0);
	CHECK_STR(out, "7.2.0.192.zen.example");
	CHECK(policy_dnsbl_name("::ffff:192.0.2.7", "bl.example", out, sizeof(out)) == 0);
	CHECK_STR(out, "7.2.0.192.bl.example");
	CHECK(policy_dnsbl_name("2001:db8::1", "bl.example", out, sizeof(out)) == 0);
	CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example");
	CHECK(policy_dnsbl_name("2001:DB8:abcd::", "bl.example", out, sizeof(out)) == 0);
	CHECK(strncmp(out + 2 * 16, "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.8.b.d.0.1.0.0.2.", 64 - 2 * 16) == 0 ||
	      strstr(out, "d.c.b.a.8.b.d.0.1.0.0.2.bl.example") != NULL);
	CHECK(policy_dnsbl_name("not-an-ip", "bl.example", out, sizeof(out)) == -1);
	CHECK(policy_dnsbl_name("192.0.2.7", "", out, sizeof(out)) == -1);
	CHECK(policy_dnsbl_name("192.0.2.7", "zen.example", out, 10) == -1);
	char longzone[260];
	memset(longzone, 'a', sizeof(longzone) - 1);
	longzone[sizeof(longzone) - 1] = '\0';
	CHECK(policy_dnsbl_name("192.0.2.7", longzone, out, sizeof(out)) == -1);
}

/* One DNS answer: header, the question (name), one answer per rdata, a compression
 * pointer to the question's name. */
static int dns_build(unsigned char *buf, size_t size, const char *name, int type,
		     const unsigned char *rdata[], const size_t rdlen[], unsigned n,
		     unsigned rcode)
{
	size_t pos = 12;

	memset(buf, 0, 12);
	buf[2] = 0x81;
	buf[3] = (unsigned char)(0x80 | rcode);
	buf[5] = 1;
	buf[7] = (unsigned char)n;
	for (const char *s = name; *s != '\0';) {
		size_t l = strcspn(s, ".");
		buf[pos++] = (unsigned char)l;
		memcpy(buf + pos, s, l);
		pos += l;
		s += l;
		if (*s == '.')
			s++;
	}
	buf[pos++] = 0;
	buf[pos++] = 0;
	buf[pos++] = (unsigned char)type;
	buf[pos++] = 0;
	buf[pos++] = 1;
	for (unsigned i = 0; i < n; i++) {
		if (pos + 12 + rdlen[i] > size)
			return -1;
		buf[pos++] = 0xC0;
		buf[pos++] = 12;
		buf[pos++] = 0;
		buf[pos++] = (unsigned char)type;
		buf[pos++] = 0;
		buf[pos++] = 1;
		memset(buf + pos, 0, 4);
		pos += 4;
		buf[pos++] = (unsigned char)(rdlen[i] >> 8);
		buf[pos++] = (unsigned char)rdlen[i];
		memcpy(buf + pos, rdata[i], rdlen[i]);
		pos += rdlen[i];
	}
	return (int)pos;
}

struct fake_dns {
	unsigned queries;
	const char *listed_name;            /* answers for this name only */
	unsigned char a[4];
	const char *txt;                    /* NULL: no TXT record */
	int truncate_at;                    /* >0: cut the A answer to this many bytes */
	bool servfail;
};

static int fake_dns(void *ctx, const char *name, int type, unsigned char *answer, int anslen)
{
	struct fake_dns *f = ctx;
	const unsigned char *rd[1];
	size_t rl[1];
	unsigned char txt[300];
	int n;

	f->queries++;
	if (f->listed_name == NULL || strcmp(name, f->listed_name) != 0)
		return -1; /* NXDOMAIN */
	if (type == 1) {
		rd[0] = f->a;
		rl[0] = 4;
		n = dns_build(answer, (size_t)anslen, name, type, rd, rl, 1,
			      f->servfail ? 2 : 0);
		if (f->truncate_at > 0 && n > f->truncate_at)
			n = f->truncate_at;
		return n;
	}
	if (type == 16 && f->txt != NULL) {
		size_t l = strlen(f->txt);
		txt[0] = (unsigned char)l;
		memcpy(txt + 1, f->txt, l);
		rd[0] = txt;
		rl[0] = l + 1;
		return dns_build(answer, (size_t)anslen, name, type, rd, rl, 1, 0);
	}
	return -1;
}

static struct policy *open_dnsbl(enum submit_mode mode, const char *zones, struct fake_dns *f)
{
	struct config cfg;
	struct policy *p;
	const char *err;

	config_defaults(&cfg, "smtp-submit");
	free(cfg.aliases);
	cfg.aliases = strdup(aliases_path);
	free(cfg.local_domains);
	cfg.local_domains = strdup("example.org");
	free(cfg.dnsbl);
	cfg.dnsbl = zones != NULL ? strdup(zones) : NULL;
	if (policy_open(&cfg, mode, &p, &err) == -1)
		p = NULL;
	else
		policy_set_resolver(p, fake_dns, f);
	config_free(&cfg);
	return p;
}

static void test_dnsbl(void)
{
	struct fake_dns f;
	struct policy *p;
	struct policy_reply r;

	/* listed in the second zone, with a text */
	memset(&f, 0, sizeof(f));
	f.listed_name = "7.2.0.192.bl2.example";
	memcpy(f.a, "\x7f\x00\x00\x02", 4);
	f.txt = "Listed; see https://bl2.example/?192.0.2.7\r\n\x01";
	p = open_dnsbl(SUBMIT_MODE_MX, "bl1.example bl2.example", &f);
	CHECK(p != NULL);
	memset(&r, 0, sizeof(r));
	CHECK(policy_client(p, "192.0.2.7", &r) == -1);
	CHECK(r.code == 554 && strcmp(r.status, "5.7.1") == 0);
	CHECK(strcmp(r.text, "Service unavailable; client host [192.0.2.7] blocked using "
		     "bl2.example; Listed; see https://bl2.example/?192.0.2.7???") == 0);
	CHECK(strchr(r.text, '\r') == NULL && strchr(r.text, '\n') == NULL &&
	      strchr(r.text, '\x01') == NULL);
	CHECK(f.queries == 3); /* bl1 A, bl2 A, bl2 TXT */
	/* another address: not listed */
	CHECK(policy_client(p, "192.0.2.8", &r) == 0);
	/* listed without a TXT record */
	f.txt = NULL;
	CHECK(policy_client(p, "192.0.2.7", &r) == -1);
	CHECK(strcmp(r.text, "Service unavailable; client host [192.0.2.7] blocked using "
		     "bl2.example") == 0);
	/* the list's error codes (127.255.255.x) and odd answers are no listing */
	memcpy(f.a, "\x7f\xff\xff\xfe", 4);
	CHECK(policy_client(p, "192.0.2.7", &r) == 0);
	memcpy(f.a, "\x0a\x00\x00\x02", 4);
	CHECK(policy_client(p, "192.0.2.7", &r) == 0);
	memcpy(f.a, "\x7f\x00\x00\x0a", 4);
	f.servfail = true;
	CHECK(policy_client(p, "192.0.2.7", &r) == 0);
	f.servfail = false;
	/* every truncation of the answer: no crash, no listing from half a record */
	unsigned char full[512];
	const unsigned char *rd[1] = { f.a };
	size_t rl[1] = { 4 };
	int full_len = dns_build(full, sizeof(full), f.listed_name, 1, rd, rl, 1, 0);
	for (int cut = 1; cut <= full_len; cut++) {
		f.truncate_at = cut;
		int ret = policy_client(p, "192.0.2.7", &r);
		CHECK(ret == (cut == full_len ? -1 : 0));
	}
	f.truncate_at = 0;
	/* an address that is no address: no query */
	f.queries = 0;
	CHECK(policy_client(p, "garbage", &r) == 0 && f.queries == 0);
	policy_free(&p);

	/* submission: never checked */
	memset(&f, 0, sizeof(f));
	f.listed_name = "7.2.0.192.bl2.example";
	memcpy(f.a, "\x7f\x00\x00\x02", 4);
	p = open_dnsbl(SUBMIT_MODE_SUBMISSION, "bl2.example", &f);
	CHECK(policy_client(p, "192.0.2.7", &r) == 0 && f.queries == 0);
	policy_free(&p);
	/* off by default */
	p = open_dnsbl(SUBMIT_MODE_MX, NULL, &f);
	CHECK(policy_client(p, "192.0.2.7", &r) == 0 && f.queries == 0);
	policy_free(&p);
	/* IPv6 */
	memset(&f, 0, sizeof(f));
	f.listed_name = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example";
	memcpy(f.a, "\x7f\x00\x00\x04", 4);
	p = open_dnsbl(SUBMIT_MODE_MX, "bl.example", &f);
	CHECK(policy_client(p, "2001:db8::1", &r) == -1 && r.code == 554);
	policy_free(&p);
}

/* The real resolver path (res_nquery) against a real DNS server: dnsmasq on a loopback
 * port, answering A and TXT for one listed address and a list error code for another. */
static void test_dnsbl_dnsmasq(void)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	char portarg[32];
	int s;
	pid_t pid;

	if (access("/usr/sbin/dnsmasq", X_OK) != 0) {
		fprintf(stderr, "test_policy: /usr/sbin/dnsmasq missing (make deps)\n");
		CHECK(0);
		return;
	}
	/* a free UDP port on 127.0.0.1 */
	s = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(s != -1 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	      getsockname(s, (struct sockaddr *)&sa, &salen) == 0);
	close(s);
	snprintf(portarg, sizeof(portarg), "--port=%u", ntohs(sa.sin_port));
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execl("/usr/sbin/dnsmasq", "dnsmasq", "--keep-in-foreground", "--no-resolv",
		      "--no-hosts", "--conf-file=/dev/null", "--pid-file=", "--user=root",
		      "--listen-address=127.0.0.1", "--bind-interfaces", portarg,
		      "--address=/7.2.0.192.bl.test/127.0.0.2",
		      "--txt-record=7.2.0.192.bl.test,Listed by bl.test: see https://bl.test/",
		      "--address=/8.2.0.192.bl.test/127.255.255.254",
		      "--address=/bl.test/", (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0);

	struct config cfg;
	struct policy *p;
	struct policy_reply r;
	const char *err;
	config_defaults(&cfg, "smtp-submit");
	free(cfg.aliases);
	cfg.aliases = strdup(aliases_path);
	free(cfg.local_domains);
	cfg.local_domains = strdup("example.org");
	free(cfg.dnsbl);
	cfg.dnsbl = strdup("bl.test");
	CHECK(policy_open(&cfg, SUBMIT_MODE_MX, &p, &err) == 0);
	config_free(&cfg);
	policy_set_nameserver(p, &sa);
	/* wait for dnsmasq to answer (bounded: 100 tries) */
	int ret = 0;
	for (int i = 0; i < 100 && ret == 0; i++) {
		memset(&r, 0, sizeof(r));
		ret = policy_client(p, "192.0.2.7", &r);
		if (ret == 0)
			usleep(50 * 1000);
	}
	CHECK(ret == -1 && r.code == 554);
	CHECK_STR(r.text, "Service unavailable; client host [192.0.2.7] blocked using bl.test; "
		  "Listed by bl.test: see https://bl.test/");
	/* the list's error code is no listing; an unlisted address is NXDOMAIN */
	CHECK(policy_client(p, "192.0.2.8", &r) == 0);
	CHECK(policy_client(p, "192.0.2.9", &r) == 0);
	CHECK(policy_client(p, "::ffff:192.0.2.7", &r) == -1);
	policy_free(&p);
	kill(pid, SIGTERM);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
}

/* the DNS message walker on hostile bytes: pointer loops, labels past the end */
static void test_dns_answers(void)
{
	static const unsigned char loop[] = {
		0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
		0xC0, 12, 0, 1, 0, 1,                         /* question: a pointer to itself */
		0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 0, 2 };
	static const unsigned char overrun[] = {
		0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 63, 'a', 'b' };
	static const unsigned char big_rdlen[] = {
		0, 0, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0,
		0, 0, 1, 0, 1, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 0, 2 };
	static const unsigned char query_not_answer[] = {
		0, 0, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0 };
	struct dnsbl_count { unsigned n; } c = { 0 };
	unsigned char buf[512];

	(void)c;
	/* a pointer is skipped, never followed: the message reads fine */
	CHECK(policy_dns_answers(loop, sizeof(loop), 1, NULL, NULL) == -1 ||
	      policy_dns_answers(loop, sizeof(loop), 2, NULL, NULL) == 0);
	CHECK(policy_dns_answers(overrun, sizeof(overrun), 1, NULL, NULL) == -1);
	CHECK(policy_dns_answers(big_rdlen, sizeof(big_rdlen), 1, NULL, NULL) == -1);
	CHECK(policy_dns_answers(query_not_answer, sizeof(query_not_answer), 1, NULL, NULL) == -1);
	CHECK(policy_dns_answers(buf, 5, 1, NULL, NULL) == -1);
	/* every byte value at every position of a real answer: no crash */
	const unsigned char *rd[1] = { (const unsigned char *)"\x7f\x00\x00\x02" };
	size_t rl[1] = { 4 };
	int n = dns_build(buf, sizeof(buf), "2.0.0.127.bl.example", 16, rd, rl, 1, 0);
	CHECK(n > 0);
	unsigned char copy[512];
	unsigned ok = 0;
	for (int i = 0; i < n; i++)
		for (unsigned v = 0; v < 256; v++) {
			memcpy(copy, buf, (size_t)n);
			copy[i] = (unsigned char)v;
			/* type 99 never matches: only the walk is exercised */
			ok += policy_dns_answers(copy, (size_t)n, 99, NULL, NULL) == 0;
		}
	CHECK(ok > 0);
}

int main(void)
{
	char tmpl[] = "/tmp/test_policy.XXXXXX";
	int fd;

	log_init("test_policy", false);
	if (mkdtemp(tmpl) == NULL)
		return 1;
	snprintf(spool, sizeof(spool), "%s", tmpl);
	snprintf(aliases_path, sizeof(aliases_path), "%s/aliases", spool);
	fd = open(aliases_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd == -1 || write(fd, aliases_text, sizeof(aliases_text) - 1) !=
			(ssize_t)(sizeof(aliases_text) - 1))
		return 1;
	close(fd);

	test_recipients();
	test_senders();
	test_header_from();
	test_domains();
	test_real_passwd();
	test_rate();
	test_dnsbl_names();
	test_dnsbl();
	test_dns_answers();
	test_dnsbl_dnsmasq();

	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", spool);
	if (system(cmd) != 0)
		CHECK(0);
	return unit_done("test_policy");
}
