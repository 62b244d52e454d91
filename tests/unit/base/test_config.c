/* config.c: defaults, [global] vs daemon sections, every type, and clear errors. */
#include <stdlib.h>
#include <unistd.h>
#include "base/config.h"
#include "base/plimits.h"
#include "unit.h"

struct bad_case { const char *text; const char *error_part; };

static void test_valid(void)
{
	struct config cfg;
	const char *err = NULL;

	CHECK(config_load_string(&cfg, "", "ipop3d", &err) == 0);
	CHECK(cfg.min_uid == 1000);
	CHECK_STR(cfg.unpriv_user, "postern");
	CHECK_STR(cfg.pam_service, "pop3");
	CHECK_STR(cfg.log, "syslog");
	CHECK(cfg.plaintext_auth_from.count == 2);
	CHECK(cfg.login_timeout == 60 && cfg.idle_timeout == 600);
	CHECK(cfg.login_deadline == 120);
	config_free(&cfg);

	CHECK(config_load_string(&cfg, "", "imapd", &err) == 0);
	CHECK_STR(cfg.pam_service, "imap");
	/* RFC 9051 5.4: IMAP's autologout timer is at least 30 minutes */
	CHECK(cfg.idle_timeout == 1800);
	config_free(&cfg);
	/* an idle_timeout set for every daemon, or in [imapd], replaces that default */
	CHECK(config_load_string(&cfg, "[global]\nidle_timeout = 700\n", "imapd", &err) == 0);
	CHECK(cfg.idle_timeout == 700);
	config_free(&cfg);
	CHECK(config_load_string(&cfg, "[imapd]\nidle_timeout = 2000\n", "imapd", &err) == 0);
	CHECK(cfg.idle_timeout == 2000);
	config_free(&cfg);
	CHECK(config_load_string(&cfg, "[imapd]\nidle_timeout = 2000\n", "ipop3d", &err) == 0);
	CHECK(cfg.idle_timeout == 600);
	config_free(&cfg);

	/* the daemon's section wins, wherever it stands in the file */
	const char *text =
		"; comment\n[ipop3d]\nmin_uid = 2000\nlog_debug = yes\n"
		"[global]\nmin_uid = 500\nstate_dir = /tmp/x\nlog = /var/log/p.log\n"
		"[imapd]\nmin_uid = 3000\n"
		"[global]\nplaintext_auth_from = 10.0.0.0/8, 192.0.2.1\n";
	CHECK(config_load_string(&cfg, text, "ipop3d", &err) == 0);
	CHECK(cfg.min_uid == 2000);
	CHECK(cfg.log_debug);
	CHECK_STR(cfg.state_dir, "/tmp/x");
	CHECK_STR(cfg.log, "/var/log/p.log");
	CHECK(cfg.plaintext_auth_from.count == 2);
	config_free(&cfg);
	CHECK(config_load_string(&cfg, text, "imapd", &err) == 0);
	CHECK(cfg.min_uid == 3000);
	CHECK(!cfg.log_debug);
	config_free(&cfg);

	/* an empty value clears an optional string */
	CHECK(config_load_string(&cfg, "[global]\ntls_chain =\nallow_group = mail\n",
				 "ipop3d", &err) == 0);
	CHECK(cfg.tls_chain == NULL);
	CHECK_STR(cfg.allow_group, "mail");
	config_free(&cfg);

	/* limits at max */
	CHECK(config_load_string(&cfg, "[global]\nlogin_timeout = 3600\n", "ipop3d", &err) == 0);
	CHECK(cfg.login_timeout == 3600);
	config_free(&cfg);
	CHECK(config_load_string(&cfg, "[ipop3d]\nlogin_deadline = 3600\n", "ipop3d", &err) == 0);
	CHECK(cfg.login_deadline == 3600);
	config_free(&cfg);
}

static void test_invalid(void)
{
	static const struct bad_case cases[] = {
		{ "[global]\nmin_uid = -1\n", "line 2: min_uid must be a whole number" },
		{ "[global]\nmin_uid = 12x\n", "min_uid" },
		{ "[global]\nmin_uid = 99999999999999999999999\n", "min_uid" },
		{ "[global]\nlogin_timeout = 3601\n", "login_timeout" },
		{ "[global]\nlogin_timeout = 0\n", "at least 1 second" },
		{ "[global]\nlogin_deadline = 0\n", "at least 1 second" },
		{ "[global]\nlogin_deadline = 3601\n", "login_deadline" },
		{ "[global]\nlog_debug = maybe\n", "yes or no" },
		{ "[global]\nno_such_key = 1\n", "line 2: unknown key" },
		{ "[nosuch]\nmin_uid = 1\n", "unknown section" },
		{ "[global]\njust a line\n", "line 2: syntax error" },
		{ "[global]\nplaintext_auth_from = 10.0.0.0/33\n", "plaintext_auth_from" },
		{ "[global]\nplaintext_auth_from = nonsense\n", "plaintext_auth_from" },
		{ "[global]\ntls_cert = relative.pem\n", "absolute" },
		{ "[global]\nlog = stderr\n", "log must be" },
		{ "[global]\nstate_dir =\n", "may not be empty" },
		{ "[global]\ntls_ticket_rotate = 10\n", "at least 60" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		const char *err = NULL;
		int rc = config_load_string(&cfg, cases[i].text, "ipop3d", &err);
		CHECK(rc == -1);
		CHECK(err != NULL && strstr(err, cases[i].error_part) != NULL);
		if (rc == -1 && (err == NULL || strstr(err, cases[i].error_part) == NULL))
			fprintf(stderr, "  case %zu: got \"%s\"\n", i, err ? err : "(null)");
		/* after an error the defaults are in force */
		CHECK(cfg.min_uid == 1000);
		CHECK_STR(cfg.log, "syslog");
		config_free(&cfg);
	}
}

/* A broken file still names where its error is to be logged. */
static void test_error_keeps_log(void)
{
	struct config cfg;
	const char *err = NULL;

	CHECK(config_load_string(&cfg, "[global]\nlog = /var/log/p.log\nmin_uid = x\n",
				 "ipop3d", &err) == -1);
	CHECK_STR(cfg.log, "/var/log/p.log");
	CHECK(cfg.min_uid == 1000);
	config_free(&cfg);
	CHECK(config_load_string(&cfg, "[global]\nlog = relative\n", "ipop3d", &err) == -1);
	CHECK_STR(cfg.log, "syslog");
	config_free(&cfg);
}

static void test_file(void)
{
	struct config cfg;
	const char *err = NULL;
	char path[] = "/tmp/postern-cfg-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fputs("[ipop3d]\nmin_uid = 4242\n", f);
	fclose(f);
	CHECK(config_load(&cfg, path, "ipop3d", true, &err) == 0);
	CHECK(cfg.min_uid == 4242);
	config_free(&cfg);
	unlink(path);
	CHECK(config_load(&cfg, path, "ipop3d", true, &err) == -1);
	CHECK(err != NULL && strstr(err, "cannot open") != NULL);
	config_free(&cfg);
	CHECK(config_load(&cfg, path, "ipop3d", false, &err) == 0);
	config_free(&cfg);
}

/* Each config owns its error: a second failing load does not overwrite the first's. */
static void test_error_owned(void)
{
	struct config a, b;
	const char *ea = NULL, *eb = NULL;

	CHECK(config_load_string(&a, "[global]\nmin_uid = x\n", "ipop3d", &ea) == -1);
	CHECK(config_load_string(&b, "[global]\nno_such_key = 1\n", "ipop3d", &eb) == -1);
	CHECK(ea != NULL && eb != NULL && ea != eb);
	CHECK(ea != NULL && strstr(ea, "line 2") != NULL && strstr(ea, "min_uid") != NULL);
	CHECK(eb != NULL && strstr(eb, "no_such_key") != NULL);
	config_free(&a);
	config_free(&b);
}

/* username_chars: the default list, a list of one's own, and an empty one. */
static void test_username_chars(void)
{
	struct config cfg;
	const char *err = NULL;
	static const char *const good[] = { "ned", "Ned.Flanders", "ned_f-1", "ned@example.org",
					    "a", "0", "_", "." };
	static const char *const bad[] = { "ned%x", "ned\x7f", "../x", "ned/x", "ned+tag",
					   "ned x", "ned\t", "ned*", "ned(uid=0)", "ned\\",
					   "n\xc3\xa9" "d", "ned'", "ned\"", "ned,x", "ned:x",
					   "ned$", "\x01", "" };

	CHECK(config_load_string(&cfg, "", "ipop3d", &err) == 0);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(config_username_ok(&cfg, good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(!config_username_ok(&cfg, bad[i], strlen(bad[i])));
		if (config_username_ok(&cfg, bad[i], strlen(bad[i])))
			fprintf(stderr, "  allowed: \"%s\"\n", bad[i]);
	}
	/* counted: a NUL inside, or one past the end, is seen */
	CHECK(!config_username_ok(&cfg, "ned\0x", 5));
	CHECK(config_username_ok(&cfg, "ned%x", 3));
	/* the longest name PAM gets: every byte is looked at */
	char longname[AUTH_MAX_USER + 1];
	memset(longname, 'a', sizeof(longname));
	CHECK(config_username_ok(&cfg, longname, sizeof(longname)));
	longname[sizeof(longname) - 1] = '%';
	CHECK(!config_username_ok(&cfg, longname, sizeof(longname)));
	config_free(&cfg);

	/* a list of one's own: '+' allowed, digits not */
	CHECK(config_load_string(&cfg, "[ipop3d]\nusername_chars = abcdefghijklmnopqrstuvwxyz+\n",
				 "ipop3d", &err) == 0);
	CHECK(config_username_ok(&cfg, "ned+tag", 7));
	CHECK(!config_username_ok(&cfg, "ned1", 4));
	CHECK(!config_username_ok(&cfg, "Ned", 3));
	config_free(&cfg);

	/* empty: any byte but spaces and control bytes */
	CHECK(config_load_string(&cfg, "[global]\nusername_chars =\n", "ipop3d", &err) == 0);
	CHECK(cfg.username_chars == NULL);
	CHECK(config_username_ok(&cfg, "n\xc3\xa9" "d%+/", 7));
	CHECK(!config_username_ok(&cfg, "ned x", 5));
	CHECK(!config_username_ok(&cfg, "ned\x7f", 4));
	CHECK(!config_username_ok(&cfg, "ned\x1b", 4));
	CHECK(!config_username_ok(&cfg, "", 0));
	config_free(&cfg);

	/* a list that holds a space or a control byte is an error */
	CHECK(config_load_string(&cfg, "[global]\nusername_chars = abc def\n", "ipop3d",
				 &err) == -1);
	CHECK(strstr(err, "username_chars") != NULL);
	CHECK(cfg.username_chars != NULL && strchr(cfg.username_chars, ' ') == NULL);
	config_free(&cfg);
	CHECK(config_load_string(&cfg, "[global]\nusername_chars = abc\x01\n", "ipop3d",
				 &err) == -1);
	config_free(&cfg);
}

/* The dns library's keys: dnssec_trust_anchor keeps "" (no validation) apart from
 * unset (NULL: the default root.key). */
static void test_dns_keys(void)
{
	static const struct {
		const char *text;
		const char *servers, *anchor;       /* NULL: expect NULL */
	} t[] = {
		{ "", NULL, NULL },
		{ "[smtp-submit]\ndns_servers = 127.0.0.1@5353 ::1\n", "127.0.0.1@5353 ::1", NULL },
		{ "[global]\ndnssec_trust_anchor =\n", NULL, "" },
		{ "[smtp-submit]\ndnssec_trust_anchor = /etc/postern/test.key\n", NULL, "/etc/postern/test.key" },
		{ "[smtp-submit]\ndns_servers =\ndnssec_trust_anchor = a\ndnssec_trust_anchor =\n", NULL, "" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct config cfg;
		const char *err = NULL;
		CHECK(config_load_string(&cfg, t[i].text, "smtp-submit", &err) == 0);
		if (t[i].servers == NULL)
			CHECK(cfg.dns_servers == NULL);
		else
			CHECK_STR(cfg.dns_servers, t[i].servers);
		if (t[i].anchor == NULL)
			CHECK(cfg.dnssec_trust_anchor == NULL);
		else
			CHECK_STR(cfg.dnssec_trust_anchor, t[i].anchor);
		config_free(&cfg);
	}
}

int main(void)
{
	test_dns_keys();
	test_error_owned();
	test_valid();
	test_invalid();
	test_username_chars();
	test_error_keeps_log();
	test_file();
	return unit_done("test_config");
}
