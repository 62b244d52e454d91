/* The INI config file through libinih.  Two passes over the file: [global] first, then
 * the daemon's own section, so a daemon key wins wherever the sections stand. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ini.h>
#include "base/config.h"
#include "base/plimits.h"
#include "base/util.h"

/* Login names: the letters, digits and "._-@" of Dovecot's auth_username_chars.  That
 * covers Debian's account names (useradd: [a-z_][-a-z0-9_]*) and user@domain names from
 * a directory (SSSD, LDAP), and keeps out what means something to the modules behind PAM
 * and NSS: '*', '(', ')' and '\\' in LDAP filters, '%' in SQL modules' expansions, '/' in
 * paths, '+' and a leading '-' in NSS compat entries, quotes, spaces and control bytes. */
#define CONFIG_USERNAME_CHARS \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@"

/* CFG_STR: "" means unset (NULL); CFG_STR_EMPTY: "" is a value of its own (kept as "") */
enum cfg_type { CFG_STR, CFG_UINT, CFG_BOOL, CFG_NETS, CFG_STR_EMPTY };

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;
	unsigned max;            /* CFG_UINT: largest value accepted */
};

#define K(n, t, m) { #n, t, offsetof(struct config, n), m }
static const struct cfg_key cfg_keys[] = {
	K(tls_cert, CFG_STR, 0),
	K(tls_key, CFG_STR, 0),
	K(tls_chain, CFG_STR, 0),
	K(log, CFG_STR, 0),
	K(log_debug, CFG_BOOL, 0),
	K(hosts_allow, CFG_STR, 0),
	K(hosts_deny, CFG_STR, 0),
	K(min_uid, CFG_UINT, 4294967294U),
	K(allow_group, CFG_STR, 0),
	K(deny_users, CFG_STR, 0),
	K(username_chars, CFG_STR, 0),
	K(plaintext_auth_from, CFG_NETS, 0),
	K(state_dir, CFG_STR, 0),
	K(mail_location, CFG_STR, 0),
	K(spool_dir, CFG_STR, 0),
	K(unpriv_user, CFG_STR, 0),
	K(spool_user, CFG_STR, 0),
	K(pam_service, CFG_STR, 0),
	K(login_timeout, CFG_UINT, 3600),
	K(login_deadline, CFG_UINT, 3600),
	K(idle_timeout, CFG_UINT, 86400),
	K(login_fail_delay_ms, CFG_UINT, 60000),
	K(login_fail_delay_max_ms, CFG_UINT, 600000),
	K(throttle_window, CFG_UINT, 86400 * 7),
	K(throttle_ip_max, CFG_UINT, 1000000),
	K(throttle_net_max, CFG_UINT, 1000000),
	K(throttle_user_max, CFG_UINT, 1000000),
	K(throttle_trust_days, CFG_UINT, 3650),
	K(throttle_conn_max, CFG_UINT, 100000),
	K(login_cache_ttl, CFG_UINT, 86400 * 7),
	K(tls_ticket_rotate, CFG_UINT, 86400 * 7),
	/* smtp-submit */
	K(hostname, CFG_STR, 0),
	K(local_domains, CFG_STR, 0),
	K(aliases, CFG_STR, 0),
	K(message_size_limit, CFG_UINT, 2147483647U),
	K(max_recipients, CFG_UINT, 1000),
	K(max_errors, CFG_UINT, 1000),
	K(greet_pause_ms, CFG_UINT, 60000),
	K(submit_rate_messages, CFG_UINT, 1000000),
	K(submit_rate_recipients, CFG_UINT, 1000000),
	K(dnsbl, CFG_STR, 0),
	/* DKIM */
	K(dkim_key_dir, CFG_STR, 0),
	K(dkim_selector, CFG_STR, 0),
	/* the dns library (delivery to other domains) */
	K(dns_servers, CFG_STR, 0),
	K(dnssec_trust_anchor, CFG_STR_EMPTY, 0),
};
#undef K

static const char *const cfg_sections[] = { "global", "ipop3d", "imapd", "smtp-submit" };

struct cfg_parse {
	struct config *cfg;
	const char *want;        /* section applied in this pass */
	char error[160];
};

static char **cfg_str(struct config *cfg, const struct cfg_key *k)
{
	return (char **)(void *)((char *)cfg + k->off);
}

static void cfg_set_str(char **slot, const char *value)
{
	free(*slot);
	*slot = value[0] == '\0' ? NULL : xstrdup(value);
}

static int cfg_set(struct cfg_parse *cp, const struct cfg_key *k, const char *value)
{
	void *slot = (char *)cp->cfg + k->off;
	uint64_t v;
	const char *err;

	switch (k->type) {
	case CFG_STR:
		cfg_set_str(slot, value);
		return 0;
	case CFG_STR_EMPTY:
		free(*(char **)slot);
		*(char **)slot = xstrdup(value);
		return 0;
	case CFG_UINT:
		if (util_parse_uint(value, strlen(value), k->max, &v) == -1) {
			snprintf(cp->error, sizeof(cp->error),
				 "%s must be a whole number from 0 to %u", k->name, k->max);
			return -1;
		}
		*(unsigned *)slot = (unsigned)v;
		return 0;
	case CFG_BOOL:
		if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0 ||
		    strcmp(value, "1") == 0)
			*(bool *)slot = true;
		else if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0 ||
			 strcmp(value, "0") == 0)
			*(bool *)slot = false;
		else {
			snprintf(cp->error, sizeof(cp->error), "%s must be yes or no",
				 k->name);
			return -1;
		}
		return 0;
	case CFG_NETS:
		if (netlist_parse(value, slot, &err) == -1) {
			snprintf(cp->error, sizeof(cp->error), "%s: %s", k->name, err);
			return -1;
		}
		return 0;
	}
	return -1;
}

/* libinih handler: returns nonzero to go on, 0 to stop with an error at this line
 * (ini_parse then returns the line number). */
static int cfg_handler(void *user, const char *section, const char *name,
		       const char *value)
{
	struct cfg_parse *cp = user;
	bool known = false;

	for (size_t i = 0; i < sizeof(cfg_sections) / sizeof(cfg_sections[0]); i++)
		if (strcmp(section, cfg_sections[i]) == 0)
			known = true;
	if (!known) {
		snprintf(cp->error, sizeof(cp->error), "unknown section [%.40s]", section);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++) {
		if (strcmp(name, cfg_keys[i].name) != 0)
			continue;
		if (strcmp(section, cp->want) != 0)
			return 1;        /* the other pass's business */
		return cfg_set(cp, &cfg_keys[i], value) == 0;
	}
	snprintf(cp->error, sizeof(cp->error), "unknown key \"%.40s\"", name);
	return 0;
}

void config_defaults(struct config *cfg, const char *section)
{
	const char *err;

	memset(cfg, 0, sizeof(*cfg));
	cfg->tls_cert = xstrdup("/etc/postern/tls/postern.crt");
	cfg->tls_key = xstrdup("/etc/postern/tls/postern.key");
	cfg->log = xstrdup("syslog");
	cfg->hosts_allow = xstrdup("/etc/hosts.allow");
	cfg->hosts_deny = xstrdup("/etc/hosts.deny");
	cfg->min_uid = 1000;
	cfg->username_chars = xstrdup(CONFIG_USERNAME_CHARS);
	if (netlist_parse("127.0.0.0/8 ::1", &cfg->plaintext_auth_from, &err) == -1)
		abort();
	cfg->state_dir = xstrdup("/var/lib/postern");
	cfg->spool_dir = xstrdup("/var/spool/postern");
	cfg->unpriv_user = xstrdup("postern");
	cfg->spool_user = xstrdup("postern-spool");
	cfg->pam_service = xstrdup(strcmp(section, "imapd") == 0 ? "imap" :
				   strcmp(section, "smtp-submit") == 0 ? "smtp" : "pop3");
	cfg->login_timeout = LOGIN_TIMEOUT_DEFAULT;
	cfg->login_deadline = LOGIN_DEADLINE_DEFAULT;
	cfg->idle_timeout = strcmp(section, "imapd") == 0 ? IMAP_IDLE_TIMEOUT_DEFAULT :
			    POP3_IDLE_TIMEOUT_DEFAULT;
	cfg->login_fail_delay_ms = 1000;
	cfg->login_fail_delay_max_ms = 15000;
	cfg->throttle_window = 900;
	cfg->throttle_ip_max = 10;
	cfg->throttle_net_max = 30;
	cfg->throttle_user_max = 10;
	cfg->throttle_trust_days = 30;
	cfg->throttle_conn_max = 32;
	cfg->tls_ticket_rotate = 43200;
	/* smtp-submit; hostname and local_domains NULL: derived from the host's FQDN */
	cfg->aliases = xstrdup("/etc/aliases");
	cfg->message_size_limit = SUBMIT_SIZE_LIMIT_DEFAULT;
	cfg->max_recipients = SUBMIT_MAX_RCPTS_DEFAULT;
	cfg->max_errors = SUBMIT_MAX_ERRORS_DEFAULT;
	cfg->greet_pause_ms = SUBMIT_GREET_PAUSE_MS_DEFAULT;
	cfg->submit_rate_messages = SUBMIT_RATE_MESSAGES_DEFAULT;
	cfg->submit_rate_recipients = SUBMIT_RATE_RCPTS_DEFAULT;
	cfg->dkim_key_dir = xstrdup("/etc/postern/dkim");
	if (strcmp(section, "smtp-submit") == 0)
		cfg->idle_timeout = SMTP_IDLE_TIMEOUT_DEFAULT;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < sizeof(cfg_keys) / sizeof(cfg_keys[0]); i++) {
		if (cfg_keys[i].type == CFG_STR || cfg_keys[i].type == CFG_STR_EMPTY) {
			char **slot = cfg_str(cfg, &cfg_keys[i]);
			free(*slot);
			*slot = NULL;
		}
	}
}

/* Validate combinations that single keys cannot express. */
static int config_validate(struct cfg_parse *cp)
{
	struct config *cfg = cp->cfg;
	const char *abs[] = { cfg->tls_cert, cfg->tls_key, cfg->tls_chain, cfg->hosts_allow,
			      cfg->hosts_deny, cfg->state_dir, cfg->spool_dir, cfg->aliases };
	const char *names[] = { "tls_cert", "tls_key", "tls_chain", "hosts_allow",
				"hosts_deny", "state_dir", "spool_dir", "aliases" };

	for (size_t i = 0; i < sizeof(abs) / sizeof(abs[0]); i++) {
		if (abs[i] != NULL && abs[i][0] != '/') {
			snprintf(cp->error, sizeof(cp->error), "%s must be an absolute path",
				 names[i]);
			return -1;
		}
	}
	if (cfg->log == NULL || (strcmp(cfg->log, "syslog") != 0 && cfg->log[0] != '/')) {
		snprintf(cp->error, sizeof(cp->error),
			 "log must be \"syslog\" or an absolute file path");
		return -1;
	}
	if (cfg->state_dir == NULL || cfg->unpriv_user == NULL || cfg->pam_service == NULL) {
		snprintf(cp->error, sizeof(cp->error),
			 "state_dir, unpriv_user and pam_service may not be empty");
		return -1;
	}
	for (const char *u = cfg->username_chars; u != NULL && *u != '\0'; u++) {
		unsigned char ch = (unsigned char)*u;
		if (ch <= ' ' || ch == 0x7f) {
			snprintf(cp->error, sizeof(cp->error),
				 "username_chars may not hold spaces or control bytes");
			return -1;
		}
	}
	if (cfg->login_timeout == 0 || cfg->idle_timeout == 0 || cfg->login_deadline == 0) {
		snprintf(cp->error, sizeof(cp->error), "timeouts must be at least 1 second");
		return -1;
	}
	if (cfg->tls_ticket_rotate < 60) {
		snprintf(cp->error, sizeof(cp->error), "tls_ticket_rotate must be at least 60");
		return -1;
	}
	return 0;
}

static int config_parse(struct config *cfg, const char *section, char *error,
			size_t esize, int (*parse)(const void *src, ini_handler h, void *user),
			const void *src)
{
	struct cfg_parse cp = { .cfg = cfg };
	const char *passes[] = { "global", section };

	for (size_t i = 0; i < 2; i++) {
		cp.want = passes[i];
		cp.error[0] = '\0';
		int rc = parse(src, cfg_handler, &cp);
		if (rc != 0) {
			if (rc == -1)
				snprintf(error, esize, "cannot read: %s", strerror(errno));
			else if (rc == -2)
				snprintf(error, esize, "out of memory");
			else if (cp.error[0] != '\0')
				snprintf(error, esize, "line %d: %s", rc, cp.error);
			else
				snprintf(error, esize,
					 "line %d: syntax error (expected key = value, "
					 "[section], or a line too long)", rc);
			return -1;
		}
	}
	if (config_validate(&cp) == -1) {
		snprintf(error, esize, "%s", cp.error);
		return -1;
	}
	return 0;
}

/* After an error every key is back at its default, except `log` if it was read and is
 * valid: the error itself should be reported where the administrator looks. */
static void config_reset_keep_log(struct config *cfg, const char *section)
{
	char *log = NULL;

	if (cfg->log != NULL && (strcmp(cfg->log, "syslog") == 0 || cfg->log[0] == '/'))
		log = xstrdup(cfg->log);
	config_free(cfg);
	config_defaults(cfg, section);
	if (log != NULL) {
		free(cfg->log);
		cfg->log = log;
	}
}

static int parse_file(const void *src, ini_handler h, void *user)
{
	return ini_parse(src, h, user);
}

static int parse_string(const void *src, ini_handler h, void *user)
{
	return ini_parse_string(src, h, user);
}

/* Parse src into cfg (already at its defaults).  On error cfg is reset to the defaults
 * (keeping a usable log target) and *error_r points at cfg->error. */
static int config_load_from(struct config *cfg, const char *section,
			    int (*parse)(const void *src, ini_handler h, void *user),
			    const void *src, const char **error_r)
{
	char error[sizeof(cfg->error)];

	if (config_parse(cfg, section, error, sizeof(error), parse, src) == -1) {
		config_reset_keep_log(cfg, section);
		memcpy(cfg->error, error, sizeof(error));
		*error_r = cfg->error;
		return -1;
	}
	return 0;
}

int config_load(struct config *cfg, const char *path, const char *section,
		bool must_exist, const char **error_r)
{
	config_defaults(cfg, section);
	if (path == NULL)
		path = CONFIG_DEFAULT_PATH;
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		snprintf(cfg->error, sizeof(cfg->error), "cannot open %s: %s", path,
			 strerror(errno));
		*error_r = cfg->error;
		return -1;
	}
	fclose(f);
	return config_load_from(cfg, section, parse_file, path, error_r);
}

int config_load_string(struct config *cfg, const char *text, const char *section,
		       const char **error_r)
{
	config_defaults(cfg, section);
	return config_load_from(cfg, section, parse_string, text, error_r);
}

bool config_username_ok(const struct config *cfg, const char *name, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch <= ' ' || ch == 0x7f)
			return false;   /* never allowed, whatever username_chars says */
		if (cfg->username_chars != NULL && strchr(cfg->username_chars, ch) == NULL)
			return false;
	}
	return true;
}
