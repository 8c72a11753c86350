/*
 * ctl_dkim: what `dkim keygen` (ctl_dkim.c) shares with `dkim rotate`
 * (ctl_dkim_rotate.c, ctl_dkim_rotfile.c). Private to those files.
 */
#ifndef MXRELAY_TOOLS_CTL_DKIM_H
#define MXRELAY_TOOLS_CTL_DKIM_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "dkim/keys.h"

struct config;

/* A selector (RFC 6376 3.1 labels), lowercased into out. 0 / -1. */
int ctl_dkim_selector_arg(const char *in, char *out, size_t outlen);

/*
 * Print the record of key for selector._domainkey.domain (zone-file line and
 * web-panel fields). 0, or -1 after a one-line error on stderr.
 */
int ctl_dkim_print_record(const char *prog, const char *domain, const char *selector,
                          const struct mxdkim_key *key);

/* dkim rotate (ctl_dkim_rotate.c): argv[0] is "rotate". */
int ctl_dkim_rotate(int argc, char **argv);
void ctl_dkim_rotate_usage(FILE *f);

/* ---- ctl_dkim_rotfile.c: the state file, config edits, DNS, reload ---- */

#define ROT_MAX_KEYS 4

enum rot_phase {
	ROT_NONE = 0, /* no rotation under way (no state file) */
	ROT_PENDING,  /* new keys made, waiting for their DNS records; config unchanged */
	ROT_SWITCHED, /* config signs with the new keys; old records kept until retire */
};

struct rot_key {
	char selector[64];
	char path[4096];
	enum mxdkim_alg alg;
};

/*
 * One domain's rotation, kept in a key=value file beside the config
 * (CONF.dkim-rotate.DOMAIN, mode 0600) from step 1 until the old keys
 * are retired.
 */
struct rot_state {
	enum rot_phase phase;
	char domain[256];
	time_t started, switched; /* unix time; switched 0 while pending */
	long retire_days;         /* the old records stay this long after the switch */
	struct rot_key old[ROT_MAX_KEYS], new[ROT_MAX_KEYS];
	size_t nold, nnew;
};

#define ROT_PROG "mxrelayctl dkim rotate"
#define ROT_DAY 86400L
/* the first words of the comment a switched dkim_key line becomes */
#define ROT_RETIRED_MARK "# retired by mxrelayctl dkim rotate"

struct config;

struct rot_opts {
	const char *conf, *selector, *domain_arg;
	unsigned algs;    /* bit 1: rsa, bit 2: ed25519; 0: those the domain signs with today */
	long retire_days; /* -1: not given */
	bool check, status, abort;
};

/* One run of the command: its options, the loaded config and state. */
struct rot_run {
	const struct rot_opts *o;
	struct config *c;
	const char *conf;
	char domain[256], state_path[PATH_MAX + 300];
	struct rot_state s;
	time_t now;
};

/* step 3, --status and --abort (ctl_dkim_retire.c). Exit statuses. */
int rot_step_retire(struct rot_run *r);
int rot_status(const struct rot_run *r);
int rot_abort(const struct rot_run *r);

/*
 * The config's dkim_key line whose key file is path (the same name, or the
 * same file through another name or a link); NULL when none names it.
 */
const struct dkim_key_conf *rot_conf_key(const struct rot_run *r, const char *path);

/* "YYYY-MM-DD HH:MM UTC" into buf; returns buf. */
const char *rot_fmt_time(time_t t, char *buf, size_t len);

/* Append n bytes of s to the malloc'ed, NUL-terminated *buf of *len bytes (abort on ENOMEM). */
void rot_append(char **buf, size_t *len, const char *s, size_t n);

/* CONF.dkim-rotate.DOMAIN into out. */
void rot_state_path(const char *conf, const char *domain, char *out, size_t outlen);

/*
 * Read the state file at path into s; a missing file is phase ROT_NONE.
 * 0, or -1 with a one-line reason in err (unreadable, a line that does not
 * parse: "FILE:LINE: reason").
 */
int rot_state_load(const char *path, struct rot_state *s, char *err, size_t errlen);

/* Write s to path atomically (temp file + rename, mode 0600). 0 / -1 with err. */
int rot_state_save(const char *path, const struct rot_state *s, char *err, size_t errlen);

/* Whole file, malloc'ed and NUL-terminated (*len without the NUL); NULL with err. */
char *rot_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* 0 when the config at path and its directory are writable; -1 with err. */
int rot_conf_writable(const char *path, char *err, size_t errlen);

/*
 * Replace the config file conf (the file a symlink points to) by text,
 * atomically: FILE.bak gets the bytes it had (old), the new text goes to a
 * temp file in the same directory with the file's owner and mode, is
 * fsync'ed and renamed over it. The new text
 * is loaded as a config first: one that does not parse is never installed
 * (err says why). The backup's name goes to bak. 0 / -1 with err.
 */
int rot_replace_config(const char *conf, const char *old, size_t oldlen, const char *text,
                       char *bak, size_t baklen, char *err, size_t errlen);

/*
 * The TXT record at name, asked through tools/dnsq with the config's resolver
 * settings (dns_servers, dns_timeout_ms, dns_tries: ctl_load_config sets them).
 * 0 with *txt malloc'ed (exactly one record); -1 with why (no record, more
 * than one, lookup failure).
 */
int rot_lookup_txt(const char *name, char **txt, char *why, size_t whylen);

/*
 * Tell a running mxrelayd to reload: its pid from INFO on the config's
 * control socket, then SIGHUP. 0 with what was done in msg; 1 when no
 * daemon listens there (msg says so); -1 on another failure (msg).
 */
int rot_reload(const struct config *c, char *msg, size_t msglen);

#endif
