/*
 * ctl: the sub-commands of mxrelayctl. Each takes the arguments after
 * "mxrelayctl" (argv[0] is the sub-command's name) and returns the process
 * exit status: 0 done, 1 failed (one line on stderr says why), 2 usage error.
 */
#ifndef MXRELAY_TOOLS_CTL_H
#define MXRELAY_TOOLS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tools/dnsq.h"
#include "tools/spf.h"

int ctl_passwd(int argc, char **argv);
/* The synopsis lines of `passwd`, for mxrelayctl's usage and its own. */
void ctl_passwd_usage(FILE *f);
/* passwd --list [--json] and --delete USER (tools/ctl_passwd_admin.c): exit status. */
int ctl_passwd_list(const char *file, bool json);
int ctl_passwd_delete(const char *file, const char *user);

/* unblock: the daemon's failed-AUTH blocks (tools/ctl_unblock.c) */
int ctl_unblock(int argc, char **argv);
void ctl_unblock_usage(FILE *f);

/* backup: an online copy of spool.db (tools/ctl_backup.c) */
int ctl_backup(int argc, char **argv);
void ctl_backup_usage(FILE *f);

/* dkim keygen (tools/ctl_dkim.c) */
int ctl_dkim(int argc, char **argv);
void ctl_dkim_usage(FILE *f);

/* dns spf | dmarc | dkim | check (tools/ctl_dns.c, ctl_dkim.c, ctl_check.c; usage in
 * ctl_dns_common.c) */
int ctl_dns(int argc, char **argv);
void ctl_dns_usage(FILE *f);
int ctl_dns_dkim(int argc, char **argv);
int ctl_dns_check(int argc, char **argv);
int ctl_dns_dmarc(int argc, char **argv);
/* dns spf-eval (tools/ctl_spfeval.c) */
int ctl_dns_spf_eval(int argc, char **argv);

/* audit: the legacy-client audit from spool.db (tools/ctl_audit.c) */
int ctl_audit(int argc, char **argv);
void ctl_audit_usage(FILE *f);

/* m365: the Exchange Online PowerShell for the migration (tools/ctl_m365.c) */
int ctl_m365(int argc, char **argv);
void ctl_m365_usage(FILE *f);

/* stats: a summary of the daemon's metrics endpoint (tools/ctl_stats.c) */
int ctl_stats(int argc, char **argv);
void ctl_stats_usage(FILE *f);

/* queue: the running daemon's queue through its control socket (tools/ctl_queue.c) */
int ctl_queue(int argc, char **argv);
void ctl_queue_usage(FILE *f);
/* queue cat (tools/ctl_queue_cat.c): the stored message, read from spool.db */
bool ctl_queue_is_cat(int argc, char **argv);
int ctl_queue_cat(int argc, char **argv);

/* tls: outbound TLS report from spool.db, TLS-RPT sending (tools/ctl_tls.c) */
int ctl_tls(int argc, char **argv);
void ctl_tls_usage(FILE *f);

/* reload, log-reopen: the running daemon's RELOAD and LOG-REOPEN (tools/ctl_reload.c) */
int ctl_reload(int argc, char **argv);
int ctl_log_reopen(int argc, char **argv);
void ctl_reload_usage(FILE *f);

/* ---- helpers shared by every sub-command (tools/ctl_common.c) ---- */

struct config;

#define CTL_DEFAULT_CONF "/etc/mxrelay/mxrelay.conf"

/*
 * The daemon's configuration: path, or CTL_DEFAULT_CONF when path is NULL
 * and that file exists, else the embedded default. Its dns_servers,
 * dns_timeout and dns_tries then apply to every tools/dnsq lookup of the
 * process. On error prints "PROG: FILE:LINE: KEY: reason" and returns -1.
 * Free *out with config_free.
 */
int ctl_load_config(const char *prog, const char *path, struct config **out);

/* The config's path for messages: its file name or "(default)". */
const char *ctl_config_name(const struct config *c);

/*
 * A usage error: "PROG: WHAT 'ARG'" (or "PROG: WHAT" when arg is NULL) on
 * stderr, then "usage:" and usage(stderr) unless usage is NULL. Returns 2.
 */
int ctl_usage_error(const char *prog, void (*usage)(FILE *f), const char *what, const char *arg);

/* --help: "usage:" and usage(stdout). Returns 0. */
int ctl_help(void (*usage)(FILE *f));

/*
 * The shared tail of a sub-command's getopt_long switch (optstring starts
 * with ':'): ch 'h' is --help (ctl_help, 0), ':' a missing argument and
 * anything else an unknown option (ctl_usage_error, 2). Returns the exit
 * status; argv is the one given to getopt_long.
 */
int ctl_opt_end(int ch, char **argv, const char *prog, void (*usage)(FILE *f));

/*
 * The control socket: socket when not NULL, else control_socket of the
 * configuration conf (ctl_load_config). 0, or -1 after a message.
 */
int ctl_socket_path(const char *prog, const char *conf, const char *socket, char *out,
                    size_t outlen);

struct json;

/*
 * One request line to mxrelayd's control socket at path (ctlsock_ask), its
 * reply in *doc (raw text in *raw when raw is not NULL; free both). 0, or
 * 1 after one message in the words every command uses: "mxrelayd is not
 * running", "root and the group mxrelay may use the control socket",
 * "unreadable reply from mxrelayd".
 */
int ctl_request(const char *prog, const char *path, const char *line, struct json **doc,
                char **raw);

/* ---- helpers shared by the DNS and DKIM commands (tools/ctl_dns_common.c) ---- */

#define CTL_MAX_IPS 8

/*
 * A domain argument checked (LDH labels, '_' allowed, at least two labels,
 * 253 bytes at most), lowercased, without a trailing dot, into out (256
 * bytes). Prints "PROG: bad domain name 'x'" and returns -1 otherwise.
 */
int ctl_domain_arg(const char *prog, const char *in, char *out);

/* A relay address argument, with "PROG: bad IPv4 address 'x'" on error. */
int ctl_ip_arg(const char *prog, const char *in, int family, struct spf_ip *out);

/*
 * An --ip4/--ip6 option: arg appended to ips (*nips of CTL_MAX_IPS used).
 * -1: go on; otherwise the exit status after a message (2 when full, 1 for
 * a bad address).
 */
int ctl_ip_opt(const char *prog, const char *arg, int family, struct spf_ip *ips, size_t *nips);

/* The options of dns spf and dns check; each command accepts its own subset. */
struct ctl_dns_opts {
	const char *conf;
	const char *domain;
	const char *current; /* dns spf --current */
	bool json;           /* dns check --json */
	struct spf_ip ips[CTL_MAX_IPS];
	size_t nips;
};

/* The values of the long options in struct ctl_dns_opts (-c and -h are 'c' and 'h'). */
enum { CTL_OPT_IP4 = 256, CTL_OPT_IP6, CTL_OPT_CURRENT, CTL_OPT_JSON };

struct option;

/*
 * "[OPTIONS] DOMAIN" of prog, with the long options in longopts (getopt_long's
 * table of the values above). -1: go on with *o; otherwise the exit status
 * after a message.
 */
int ctl_dns_args(int argc, char **argv, const char *prog, const struct option *longopts,
                 struct ctl_dns_opts *o);

/* The config's source_ipv4 and source_ipv6 (0, 1 or 2 of them) into out. */
size_t ctl_config_ips(const struct config *c, struct spf_ip *out);

/* Where the relay's outgoing address of one family comes from (ctl_egress_ip). */
enum ctl_egress_from {
	CTL_EGRESS_NONE,   /* not set, and the kernel has no route */
	CTL_EGRESS_CONFIG, /* source_ipv4 / source_ipv6 */
	CTL_EGRESS_KERNEL, /* the source the kernel picks for a global destination */
};

/*
 * The relay's outgoing address of family (AF_INET or AF_INET6) into out:
 * the config's source_ipv4/6, else the kernel's choice, found with a UDP
 * socket connect()ed to a global address (nothing is sent) and
 * getsockname(). The daemon's connections use the same when unpinned.
 */
enum ctl_egress_from ctl_egress_ip(const struct config *c, int family, struct spf_ip *out);

/*
 * NULL for an address receivers can see, else why not: RFC 1918 private,
 * RFC 6598 shared (carrier-grade NAT), loopback, link-local, RFC 4193
 * unique local or unspecified. Behind NAT, receivers see another address.
 */
const char *ctl_ip_nonpublic(const struct spf_ip *ip);

/*
 * Load conf (NULL: CTL_DEFAULT_CONF when it exists) only for its DNS
 * settings, for a command that needs nothing else from it (ctl_load_config
 * applies dns_servers, dns_timeout and dns_tries to tools/dnsq). -1 after
 * printing the config error.
 */
int ctl_dns_setup(const char *prog, const char *conf);

/* helo_name, or hostname when it is not set. */
const char *ctl_helo_name(const struct config *c);

/*
 * The SPF records (TXT starting with v=spf1) at domain. DNSQ_NODATA when
 * the name has TXT records but none is SPF, or none at all.
 */
enum dnsq_status ctl_spf_records(const char *domain, struct dnsq_list *out);

/* An spf_fetch_fn over DNS: the single SPF record of a domain. */
int ctl_spf_fetch(void *ctx, const char *domain, char **record, char *why, size_t whylen);

/* Print a TXT record as a zone-file line and as web DNS panel fields. */
void ctl_print_txt(FILE *f, const char *name, const char *zone_line, const char *value);

#endif
