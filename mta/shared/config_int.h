/*
 * config_int: what the file reader (config.c) and the key table
 * (config_keys.c) share. Private to mta/shared/config*.c.
 */
#ifndef MXRELAY_CONFIG_INT_H
#define MXRELAY_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "mta/shared/config.h"

/* room for the line of every key; config_keys.c asserts the table fits */
#define CONFIG_KEYS_MAX 96

enum config_scope { CONFIG_GLOBAL, CONFIG_LISTENER };

struct config_parse {
	const char *file;
	int line;
	const char *key;
	char *err;
	size_t errlen;
	int key_line[CONFIG_KEYS_MAX]; /* where each global key was set */
};

struct config_key;

/*
 * A setter parses v into the field at base + k->off (base is the struct
 * config or the current struct listener_conf, as k->scope says). 0, or -1
 * after config_fail.
 */
typedef int (*config_setter)(struct config_parse *p, const struct config_key *k, void *base,
                             const char *v);

/* A word a key accepts and the value stored for it (in an int-sized field). */
struct config_choice {
	const char *name;
	int value;
};

struct config_key {
	const char *name;
	enum config_scope scope;
	config_setter set;
	size_t off;
	uint64_t min;                        /* numbers: smallest value allowed */
	const struct config_choice *choices; /* config_set_choice: NULL-terminated */
};

extern const struct config_key config_keys[];
extern const size_t config_nkeys;

/* "FILE:LINE: KEY: reason" (or "FILE:LINE: reason" with no key) into p->err; -1. */
int config_fail(struct config_parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* config_dnsbl.c: one dnsbl line (of line) into c->dnsbls, or "none"; 0, or -1 with why. */
int config_dnsbl_add(struct config *c, const char *v, int line, char *why, size_t whylen);
void config_dnsbl_free(struct config *c);

/*
 * config_sender.c: one rate_limit / bounce_owner / header_repair /
 * display_name_address line (the key's name; of line) appended to c's
 * list; 0, or -1 with why. config_sender_free frees them and local_sender.
 */
int config_sender_rule_add(struct config *c, const char *key, const char *v, int line, char *why,
			   size_t whylen);
/* After reading: every listener:NAME of those rules names a [listener NAME] section; else
 * -1 with why, and the rule's line and key in *line and *key. */
int config_sender_validate(const struct config *c, int *line, const char **key, char *why,
			   size_t whylen);
void config_sender_free(struct config *c);
/* postmaster_bounce_copy = ADDRESS | none (issue 16); same signature as the rules' add */
int config_pm_copy_set(struct config *c, const char *v, int line, char *why, size_t whylen);

/* config_tls.c: the cross-key checks and the frees of the TLS keys. */
int config_tls_validate(struct config_parse *p, struct config *c, int from_line);
void config_tls_free(struct config *c);

/*
 * item[0..n) is one dns_servers entry in c-ares 1.18's forms (what
 * ares_set_servers_ports_csv takes): "IPv4[:PORT]", "[IPv6]:PORT" or a bare
 * IPv6. 0 / -1.
 */
int config_dns_server_ok(const char *item, size_t n);

/* "127.0.0.1:25", "[::1]:25" into l->addr / l->addrlen. 0 / -1. */
int config_parse_addr(const char *v, struct listener_conf *l);

#endif
