/*
 * The Exchange Online inventory (issue 15 item 7): Microsoft 365's "SMTP
 * AUTH Clients" report, imported by `mxrelayctl audit import-exo`, and the
 * migration plan built from it (`audit plan`, `m365 --plan`).
 *
 * The import lives in DATA_DIR/exo-inventory.csv (mode 0600), a normalised
 * copy of the report, never in spool.db: the tools must not write the spool
 * of a running daemon (tools/ARCHITECTURE.md), and a plain file needs no
 * schema migration when the daemon's spool changes.
 */
#ifndef MXRELAY_TOOLS_CTL_EXO_H
#define MXRELAY_TOOLS_CTL_EXO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct config;

#define EXO_STORE_NAME "exo-inventory.csv"
#define EXO_MAX_FILE (16u << 20) /* bytes of CSV read, at most */
#define EXO_MAX_ROWS 100000
#define EXO_MAX_FIELD 320 /* bytes per field (an address is at most 254) */

/* One sender of the report. The shares are percentages (0..100) as exported. */
struct exo_row {
	char sender[EXO_MAX_FIELD]; /* the mailbox (UPN) that authenticated */
	double tls10, tls11, tls12;
	int64_t messages;
	int line; /* in the imported file, for messages */
};

/*
 * Parse a report export: RFC 4180 CSV, columns found by header name (any
 * order, any case, quoted or not, extra columns ignored, UTF-8 BOM and CRLF
 * taken). *rows is malloc'd (free()), *n rows. -1 with "FILE:LINE: column
 * 'NAME': reason" in err.
 */
int exo_parse(const char *path, struct exo_row **rows, size_t *n, char *err, size_t errlen);
/* The same from len bytes of buf (tools/exo_csv.c); name stands for the file in errors. */
int exo_parse_buf(const char *name, const char *buf, size_t len, struct exo_row **rows, size_t *n,
                  char *err, size_t errlen);

/* DATA_DIR/exo-inventory.csv into buf. */
void exo_store_path(const struct config *c, char *buf, size_t len);

/* The stored import (exo_parse of the store); "no import" names the command to run. */
int exo_store_load(const struct config *c, struct exo_row **rows, size_t *n, char *err,
                   size_t errlen);

/* audit import-exo FILE.csv (tools/ctl_audit_exo.c) */
int ctl_audit_import_exo(int argc, char **argv);

/* What a sender still needs, worked out by the plan (tools/ctl_audit_plan.c). */
struct plan_entry {
	const struct exo_row *exo;
	int seen;                  /* sends through the relay already (audit rows) */
	time_t first_seen, last_seen;
	char seen_user[256];       /* the AUTH user it was seen with; "" allowlisted */
	char seen_ip[64];
	char seen_listener[256];   /* the listener it was last seen on; "" unknown */
	int allowlisted;           /* seen without AUTH (relay_from) */
	char cred[256];            /* a credential allowing it; "" none */
	char new_user[256];        /* the credential to create when cred is "" */
	int unproven;              /* seen, but not AUTH'd by a credential naming the address */
	int legacy;                /* its TLS shares show TLS 1.0 or 1.1 */
	const char *listener;      /* listener it needs; NULL none fits */
	const char *listener_addr;
	time_t sunset;             /* that listener's legacy_tls_until; 0 none */
	const char *ended;         /* a legacy listener whose legacy_tls_until has passed */
	time_t ended_on;           /* ... and that date (the end of the day) */
	const struct bounce_owner_conf *owner; /* where its DSNs go; NULL: its own address */
};

struct plan {
	struct exo_row *rows;
	struct plan_entry *e;
	size_t n;
	char *creds_path; /* the credentials file (NULL: none configured) */
	char *hostname;   /* the relay's, for wildcard listener addresses */
	struct plan_names *names; /* the proposed credential names (a hash set, ctl_audit_plan.c) */
};

/* Build the plan for c (import + audit + credentials). -1 with err. The
 * entries point into c (listener names): free p before c. */
int plan_build(const struct config *c, struct plan *p, char *err, size_t errlen);
void plan_free(struct plan *p);

/*
 * d is a host name as DNS holds it (RFC 1123 2.1, RFC 5890 2.3.2.1: LDH
 * labels, an IDN as its A-label xn--...) with at least two labels: checked
 * for every CSV sender's domain, as they are printed into -SenderDomains
 * and into shell lines. 1 / 0 (exo_csv.c).
 */
int exo_domain_ok(const char *d);

/* v for a POSIX shell into out: as is when plain, else single-quoted (ctl_audit_plan.c). */
void plan_sh_quote(const char *v, char *out, size_t len);

/* audit plan [--json] (tools/ctl_audit_plan.c) */
int ctl_audit_plan(int argc, char **argv);

/* ctl_audit's dispatch: is word "import-exo" or "plan"; run it (argv[0] the word). */
int ctl_audit_exo_cmd(const char *word);
int ctl_audit_exo_run(int argc, char **argv);
/* The usage lines of import-exo and plan. */
void ctl_audit_exo_usage(FILE *f);
void ctl_audit_import_usage(FILE *f);
void ctl_audit_plan_usage(FILE *f);

#endif
