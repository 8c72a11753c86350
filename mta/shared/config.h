/*
 * config: mxrelayd's configuration file and the embedded default.
 *
 * Owns: parsing "key = value" lines and "[listener NAME]" sections into a
 * struct config, with every error reported as "FILE:LINE: KEY: reason".
 * Never: opens sockets, reads certificates or credentials (only names them).
 */
#ifndef MXRELAY_CONFIG_H
#define MXRELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "mta/shared/cidr.h"

enum listener_tls {
	LTLS_NONE,		/* plaintext only */
	LTLS_STARTTLS,		/* STARTTLS offered */
	LTLS_REQUIRED,		/* STARTTLS before MAIL / AUTH */
	LTLS_IMPLICIT,		/* TLS from the first byte (RFC 8314, port 465) */
};

/* bare_lf: a line ending in LF alone inside DATA */
enum bare_lf_mode {
	BARE_LF_NORMALIZE = 0,	/* taken as a line end, stored as CRLF (the default) */
	BARE_LF_REJECT,		/* the message is refused (550 5.6.0), as before issue 15 */
};

struct listener_conf {
	char *name;
	char *address_text;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum listener_tls tls;
	char *cert, *key;	/* NULL: the generated self-signed pair */
	int tls_min_version;	/* OpenSSL TLS1_x_VERSION */
	int auth_without_tls;
	int legacy_tls;		/* TLS 1.0/1.1 for every client */
	struct cidr_list legacy_from;	/* or only for these */
	time_t legacy_until;	/* 0: no sunset */
	time_t auth_without_tls_until;	/* 0: no sunset for auth_without_tls (issue 15) */
	int bare_lf;		/* BARE_LF_*: a bare LF in DATA (issue 15) */
	unsigned proxy_protocol;	/* PROXY header versions taken (PROXY_V1|PROXY_V2); 0: off */
	struct cidr_list proxy_from;	/* load balancers allowed to send one */
	int line;		/* where the section starts, for messages */
	struct listener_conf *next;
};

/* route = DOMAIN HOST[:PORT]: skip MX lookup for DOMAIN */
struct route {
	char *domain;
	char *host;
	unsigned port;		/* 0: smtp_port */
	struct route *next;
};

enum addr_family { FAM_ANY, FAM_IPV4, FAM_IPV6 };

/*
 * tls_policy = DOMAIN LEVEL: the outbound TLS floor for a recipient domain
 * (like Postfix's smtp_tls_policy_maps). NONE and MAY are the admin's
 * explicit downgrades: they switch DANE and MTA-STS off for the domain.
 */
enum tls_level {
	TLS_L_NONE,	/* plaintext, never STARTTLS */
	TLS_L_MAY,	/* opportunistic: TLS when offered, plaintext fallback */
	TLS_L_ENCRYPT,	/* TLS required, certificate not checked */
	TLS_L_VERIFY,	/* TLS required, certificate verified for the MX name (PKIX) */
	TLS_L_DANE,	/* DNSSEC-signed usable TLSA required (RFC 7672) */
};

/* DOMAIN matches itself; ".example.com" matches every name below example.com */
struct tls_policy_conf {
	char *domain;
	enum tls_level level;
	int line;
	struct tls_policy_conf *next;
};

enum missing_from { MISSING_FROM_ENVELOPE, MISSING_FROM_REFUSE };

/* dkim_key = DOMAIN SELECTOR KEYFILE (repeatable; two keys for a domain = dual signing) */
struct dkim_key_conf {
	char *domain;
	char *selector;
	char *path;
	int line;
	struct dkim_key_conf *next;
};

/*
 * dnsbl = ZONE [DELISTING-URL] (repeatable; file order kept): a DNS blocklist
 * mxrelayctl dns check looks the relay's egress addresses up in (RFC 5782).
 * No dnsbl line: a built-in list; "dnsbl = none": no lookups.
 */
struct dnsbl_conf {
	char *zone;
	char *delist; /* NULL: none given */
	int line;
	struct dnsbl_conf *next;
};

/*
 * Who a per-sender rule applies to (issue 15): "*" everyone, "user:NAME" an
 * AUTH credential, "listener:NAME" a [listener NAME] section, or a CIDR of
 * client addresses ("192.0.2.0/24", "2001:db8::/32", a bare address).
 */
enum sender_who_kind { WHO_ALL, WHO_USER, WHO_LISTENER, WHO_CIDR };

struct sender_who {
	enum sender_who_kind kind;
	char *name;		/* WHO_USER, WHO_LISTENER */
	struct cidr net;	/* WHO_CIDR */
};

/* rate_limit = WHO MESSAGES [RECIPIENTS]: at most that many per hour (0: no limit) */
struct rate_limit_conf {
	struct sender_who who;
	unsigned messages, recipients;
	int line;
	struct rate_limit_conf *next;
};

/* bounce_owner = WHO ADDRESS [digest]: DSNs for mail of WHO go to ADDRESS */
struct bounce_owner_conf {
	struct sender_who who;
	char *address;
	int digest;		/* also a daily digest of failures to ADDRESS */
	int line;
	struct bounce_owner_conf *next;
};

/* header_repair = WHO REPAIR[,REPAIR...] | WHO none */
enum header_repair {
	HREPAIR_FROM_AT = 1u << 0,	/* from_at: quote a From display name holding '@' */
	HREPAIR_ADD_TO = 1u << 1,	/* add_to: "To: undisclosed-recipients:;" when no To/Cc */
};

struct header_repair_conf {
	struct sender_who who;
	unsigned repairs;	/* HREPAIR_* bits; 0: none (switches repairs off for WHO) */
	int line;
	struct header_repair_conf *next;
};

/*
 * display_name_address = WHO refuse|warn|allow (issue 15): a From display
 * name (or comment) that shows an address of another domain than the From
 * address's; without a matching rule: refuse.
 */
enum display_name_action { DNA_REFUSE = 0, DNA_WARN, DNA_ALLOW };

struct display_name_conf {
	struct sender_who who;
	int action;		/* DNA_* */
	int line;
	struct display_name_conf *next;
};

struct config {
	char *path;		/* NULL for the embedded default */
	char *hostname;
	char *data_dir;
	char *user;		/* NULL: automatic (mxrelay, else nobody) */
	int user_line, data_dir_line;	/* where they were set (0: default), for messages */
	int control_socket_line, submit_socket_line;
	struct cidr_list relay_from;
	char *credentials;
	int credentials_line;	/* for "FILE:LINE: credentials: reason" */
	uint64_t max_message_size;
	unsigned max_recipients;
	uint64_t max_header_size;
	unsigned max_connections;
	unsigned max_connections_per_ip;
	unsigned auth_max_failures;
	unsigned auth_block_time;	/* seconds */
	unsigned session_timeout;	/* seconds */
	unsigned shutdown_timeout;	/* seconds */
	unsigned command_deadline;	/* seconds: first byte of a command line to its CRLF */
	unsigned data_deadline;		/* seconds: the 354 to the final dot */
	uint64_t min_data_rate;		/* bytes/s over DATA after a grace; 0: off */
	unsigned stress_timeout;	/* seconds: idle and line limit above 80 % of max_connections */
	uint64_t spool_max_size;	/* 0: unlimited */
	/* intake refused (452 4.3.1) below this many free bytes in data_dir; 0: off */
	uint64_t queue_minfree;
	uint64_t spool_reserve;	/* bytes kept in DATA_DIR/spool.reserve for results; 0: none */
	char *log;
	char *control_socket;	/* mxrelayctl's unix socket; default DATA_DIR/control.sock */
	char *submit_socket;	/* mxrelay-sendmail's; default DATA_DIR/submit.sock */
	struct listener_conf *listeners;

	/* delivery */
	char *helo_name;		/* NULL: hostname */
	struct sockaddr_storage source_ipv4, source_ipv6;	/* ss_family 0: not set */
	enum addr_family address_family;
	char *dns_servers;		/* NULL: the system's resolv.conf */
	unsigned dns_timeout_ms;	/* first try; c-ares doubles it per round */
	unsigned dns_tries;
	int allow_private_mx;
	unsigned smtp_port;
	struct route *routes;
	unsigned retry_min, retry_max, max_queue_lifetime;	/* seconds */
	unsigned delivery_concurrency;	/* connections, all destinations */
	unsigned domain_concurrency;	/* connections per destination, at most */
	unsigned domain_concurrency_start;
	unsigned rcpts_per_transaction;
	unsigned max_inflight;		/* messages being delivered at once */
	unsigned dest_idle_time;	/* seconds a destination with no work keeps its state */
	/* a provider's rate-limit reply: the pause before its next connection, doubling
	 * from min to max, halved by each success (delivery/dest_provider.c); seconds */
	unsigned provider_backoff_min, provider_backoff_max;
	unsigned smtp_connect_timeout, smtp_command_timeout, smtp_data_timeout;
	/* hold a message after this many delivery attempts in a row never finished
	 * (the daemon crashed or was killed during them); 0: never hold */
	unsigned max_unfinished_attempts;

	/* outbound transport security (issue 13: RFC 8461, 7672, 8460) */
	char *tls_ca_file;		/* PEM bundle for MX and MTA-STS certificates; NULL: system */
	int mta_sts;			/* RFC 8461 on (default yes) */
	int dane;			/* RFC 7672 on (default yes; needs a validating resolver) */
	struct tls_policy_conf *tls_policies;	/* file order */
	char *tls_client_cert, *tls_client_key;	/* presented on outbound STARTTLS; NULL: none */
	int tls_client_cert_line;
	int tls_ca_file_line, tls_client_key_line;	/* 0: not set; for "FILE:LINE: KEY:" at load */
	int tlsrpt;			/* RFC 8460 daily reports (default yes) */
	char *tlsrpt_from;		/* NULL: tlsrpt-noreply@HOSTNAME */

	/* DKIM */
	struct dkim_key_conf *dkim_keys;
	int dkim_refuse_unsigned;	/* mail from a domain without a key: 0 send unsigned, 1 refuse */
	int dkim_require_published;	/* sign only with keys whose TXT record matches */

	/* DNS blocklists for mxrelayctl dns check (the daemon ignores them) */
	struct dnsbl_conf *dnsbls;	/* NULL and !dnsbl_none: the built-in list */
	int dnsbl_none;			/* line of "dnsbl = none"; 0: not given */

	/* legacy senders (issue 15) */
	int sender_case_sensitive;	/* sender_case: 0 local parts compare case-insensitively */
	char *local_sender;		/* domain for mxrelay-sendmail's senders; NULL: hostname */
	char *postmaster_bounce_copy;	/* issue 16: a copy of every DSN (headers only) goes
					 * here; NULL: none */
	struct rate_limit_conf *rate_limits;		/* file order */
	struct bounce_owner_conf *bounce_owners;	/* file order */
	struct header_repair_conf *header_repairs;	/* file order */
	struct display_name_conf *display_name_rules;	/* file order */

	/* a message without a From header (RFC 5322 3.6): refused, or given the envelope sender */
	int missing_from;		/* MISSING_FROM_* */

	/* metrics (mta/control/metrics_http.c): Prometheus text on this address; 0 addrlen = off */
	char *metrics_listen;		/* as written, for logs; NULL: off */
	struct sockaddr_storage metrics_addr;
	socklen_t metrics_addrlen;
	int metrics_allow_remote;	/* permit a non-loopback metrics_listen */
};

/*
 * "30s", "5m", "2h", "1d" (and "2w" when weeks), a bare number = seconds, at
 * most max_secs. 0 / -1. Shared with mxrelayctl (audit --since).
 */
int config_parse_duration(const char *v, bool weeks, uint64_t max_secs, uint64_t *out);

/*
 * Per-sender rules (config_sender.c). true when w applies to a client
 * authenticated as user (NULL: none) on listener (its section name; NULL:
 * local submission) from address client (NULL: local). config_who_rank
 * orders matches by how specific they are: user 3000, listener 2000, CIDR
 * 1000 + prefix length, everyone 0; the highest wins where one rule must.
 * config_who_text writes "user:NAME", "listener:NAME", the CIDR or "*".
 */
bool config_who_matches(const struct sender_who *w, const char *user, const char *listener,
			const struct sockaddr *client);
int config_who_rank(const struct sender_who *w);
/*
 * display_name_address: the DNA_* action of the best matching rule (rank
 * as above, the first in file order among equals) for that client, its
 * config line in *line (0: no rule matched, DNA_REFUSE, the default).
 */
int config_display_name_action(const struct config *c, const char *user, const char *listener,
			       const struct sockaddr *client, int *line);
/* The same choice for bounce_owner (NULL: none matches) and header_repair (HREPAIR_* bits). */
const struct bounce_owner_conf *config_bounce_owner(const struct config *c, const char *user,
						    const char *listener,
						    const struct sockaddr *client);
unsigned config_header_repairs(const struct config *c, const char *user, const char *listener,
			       const struct sockaddr *client);
void config_who_text(const struct sender_who *w, char *buf, size_t len);

/* The route for domain (case-insensitive), or NULL. */
const struct route *config_route(const struct config *c, const char *domain);
/*
 * The tls_policy entry for a recipient domain (case-insensitive): the exact
 * domain first, then the nearest ".parent" entry; NULL when none applies.
 */
const struct tls_policy_conf *config_tls_policy(const struct config *c, const char *domain);
/* "none", "may", "encrypt", "verify", "dane" */
const char *config_tls_level_name(enum tls_level l);
/*
 * The From address of TLS-RPT report mail (RFC 8460 3): tlsrpt_from, or
 * tlsrpt-noreply@HOSTNAME written into buf. Valid while c and buf live.
 */
const char *config_tlsrpt_from(const struct config *c, char *buf, size_t len);

/*
 * false when mailbox's domain is an address literal ("[192.0.2.1]",
 * "[IPv6:...]", RFC 5321 4.1.3) that no route names; true otherwise.
 */
bool config_literal_routed(const struct config *c, const char *mailbox);

/*
 * Load PATH, or the embedded default when path is NULL. On error returns -1
 * with "FILE:LINE: KEY: reason" in err. The caller frees *out with
 * config_free.
 */
int config_load(struct config **out, const char *path, char *err, size_t errlen);
void config_free(struct config *c);

#endif
