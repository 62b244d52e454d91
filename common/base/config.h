/* The one INI file (libinih): [global] then a daemon's own section, whose keys override.
 * Every key has a safe default, so an empty or missing-keys file works. */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/netaddr.h"

#define CONFIG_DEFAULT_PATH "/etc/postern/postern.conf"

struct config {
	char *tls_cert;          /* PEM, may hold the chain after the leaf */
	char *tls_key;           /* PEM private key (RSA or ECDSA) */
	char *tls_chain;         /* optional separate chain file */
	char *log;               /* "syslog" or a file path */
	bool log_debug;
	char *hosts_allow;
	char *hosts_deny;
	unsigned min_uid;
	char *allow_group;       /* NULL: any group */
	char *deny_users;        /* space/comma separated user names; never log in */
	char *username_chars;    /* the bytes a login name may have; NULL: any printable */
	struct netlist plaintext_auth_from;
	char *state_dir;
	char *mail_location;     /* NULL: ~/Maildir if it exists, else mbox /var/mail/%u */
	char *spool_dir;
	char *unpriv_user;
	char *spool_user;        /* the session of smtp-submit (identity SPOOL_USER, NONE) */
	char *pam_service;       /* default per daemon: pop3, imap, smtp */
	unsigned login_timeout;  /* seconds of silence allowed before login */
	unsigned login_deadline; /* seconds from connect to login, however active */
	unsigned idle_timeout;   /* seconds of silence allowed after login */
	/* login throttle (see throttle.h) */
	unsigned login_fail_delay_ms;   /* base delay after a failure, doubled per failure */
	unsigned login_fail_delay_max_ms;
	unsigned throttle_window;       /* seconds a failure counts */
	unsigned throttle_ip_max;       /* failures per address before temporary refusal */
	unsigned throttle_net_max;      /* per IPv4 /24, IPv6 /56 (and 4 times for a /48) */
	unsigned throttle_user_max;     /* per user name */
	unsigned throttle_trust_days;   /* a recent good login from an address exempts it
	                                   from that user's lockout */
	unsigned throttle_conn_max;     /* connections before login at once per IPv4 address
	                                   or IPv6 /64; 0 = no cap */
	unsigned login_cache_ttl;       /* seconds a verified login is cached (repeat logins
	                                   skip pam_authenticate); 0 = off (the default) */
	unsigned tls_ticket_rotate;     /* seconds a TLS 1.3 session may be resumed */
	/* smtp-submit (README lists each with its default) */
	char *hostname;                 /* our name in the greeting, EHLO and Received:;
	                                   NULL: the host's FQDN */
	char *local_domains;            /* space-separated; NULL: the FQDN and its parent */
	char *aliases;                  /* the aliases(5) file */
	unsigned message_size_limit;    /* bytes (SIZE); 0: SUBMIT_SIZE_LIMIT_DEFAULT */
	unsigned max_recipients;        /* RCPTs per message */
	unsigned max_errors;            /* bad commands before the connection is closed */
	unsigned greet_pause_ms;        /* port 25: silence asked of the client before the
	                                   greeting; one who talks is dropped (0: no pause) */
	unsigned submit_rate_messages;  /* per authenticated user per hour; 0: no limit */
	unsigned submit_rate_recipients;/* per authenticated user per hour; 0: no limit */
	char *dnsbl;                    /* space-separated DNSBL zones for port 25; NULL: off */
	/* DKIM (common/mail/dkim.h) */
	char *dkim_key_dir;             /* the private keys, DOMAIN.SELECTOR.key, root's */
	char *dkim_selector;            /* space-separated selectors signed with; NULL: off */
	/* the dns library (common/dns/; README lists each with its default) */
	char *dns_servers;              /* space-separated addr[@port] to forward to;
	                                   NULL: the nameservers of /etc/resolv.conf */
	char *dnssec_trust_anchor;      /* DS/DNSKEY file; NULL: /usr/share/dns/root.key
	                                   when it exists; "": no DNSSEC validation */
	char error[200];                /* the last load error, owned by this config */
};

/* Fill cfg with the defaults, then read path (NULL: CONFIG_DEFAULT_PATH) for the
 * daemon `section` ("ipop3d").  A missing file is an error only if must_exist.
 * On error: -1 and *error_r (cfg->error, owned by cfg) says which line and why; cfg
 * holds defaults. */
int config_load(struct config *cfg, const char *path, const char *section,
		bool must_exist, const char **error_r);
void config_defaults(struct config *cfg, const char *section);
void config_free(struct config *cfg);
/* May a login name (counted) be handed to PAM?  Not empty, and every byte in
 * username_chars (or, when that is empty, no control byte and no space). */
bool config_username_ok(const struct config *cfg, const char *name, size_t len);
/* Parse from memory (tests, fuzz). */
int config_load_string(struct config *cfg, const char *text, const char *section,
		       const char **error_r);

#endif
