/*
 * tlsrpt: SMTP TLS Reporting (RFC 8460) text, pure: the _smtp._tls TXT
 * record, the JSON aggregate report, its gzip form and the report message.
 * No I/O, no daemon state: shared by the daemon's daily job
 * (mta/control/tlsrpt.c), mxrelayctl and the fuzz target.
 */
#ifndef MXRELAY_TLSRPT_H
#define MXRELAY_TLSRPT_H

#include <stddef.h>
#include <stdint.h>

#define TLSRPT_RUA_MAX 8    /* report URIs kept from one record; more are ignored */
#define TLSRPT_URI_MAX 512  /* longer URIs are refused */
#define TLSRPT_TXT_MAX 4096 /* longer TXT records are refused */

enum tlsrpt_uri_kind { TLSRPT_MAILTO, TLSRPT_HTTPS };

struct tlsrpt_uri {
	enum tlsrpt_uri_kind kind;
	char uri[TLSRPT_URI_MAX];  /* as published */
	char addr[TLSRPT_URI_MAX]; /* mailto: the address (percent-decoded, no ?query); https: "" */
};

struct tlsrpt_rua {
	size_t n;
	struct tlsrpt_uri u[TLSRPT_RUA_MAX];
};

/*
 * The reporting policy of a domain from its _smtp._tls TXT records (RFC 8460
 * 3): records not starting with "v=TLSRPTv1" are discarded; exactly one must
 * remain, it must carry rua=, and at least one URI must be a usable mailto:
 * (one address) or https: URI. Other URI schemes are skipped. txts[i] is one
 * record (its strings already joined), borrowed. 0 with *out filled, or -1
 * with a reason in err (the domain then asks for no reports).
 */
int tlsrpt_txt_parse(const char *const *txts, size_t n, struct tlsrpt_rua *out, char *err,
                     size_t errlen);

/*
 * The counters a report is made of: the fields of spool.h's spool_tls_row
 * and spool_tls_failure that a report uses (mta/shared includes no other
 * folder; the callers copy them). Strings borrowed.
 */
struct tlsrpt_row {
	int64_t day;                                      /* UTC days since the epoch */
	const char *domain, *policy, *policy_string, *mx; /* policy: tls_kind_name() */
	int64_t sessions_ok, sessions_failed;
};

struct tlsrpt_failure {
	int64_t day;
	const char *domain, *policy, *result_type, *sending_ip, *mx, *mx_ip, *detail;
	int64_t count;
};

/* The facts of one report: one policy domain, one UTC day (RFC 8460 4.1). */
struct tlsrpt_report {
	const char *org;       /* organization-name */
	const char *contact;   /* contact-info (the report's From address) */
	const char *submitter; /* our host name: TLS-Report-Submitter, file name */
	const char *domain;    /* the policy domain */
	int64_t day;           /* UTC days since the epoch */
	const char *report_id; /* unique per report; a MIME token plus '@' and '.' */
	const struct tlsrpt_row *rows;
	size_t nrows;
	const struct tlsrpt_failure *fails;
	size_t nfails;
};

/*
 * The length (1-4) of the valid UTF-8 sequence (RFC 3629 4) at s[0..n), or 0
 * when s[0] starts none (a stray, overlong, surrogate or cut sequence).
 */
size_t tlsrpt_utf8_len(const char *s, size_t n);

/*
 * A report day (UTC days since the epoch, as the spool keeps them) from and
 * to "YYYY-MM-DD": parse 0 / -1 (nothing but the ten characters); name
 * writes at most len bytes (11 hold it).
 */
int tlsrpt_day_parse(const char *s, int64_t *day);
void tlsrpt_day_name(int64_t day, char *out, size_t len);

/* policy-type for a tls_kind_name(): "tlsa" (dane), "sts" (mta-sts), else "no-policy-found". */
const char *tlsrpt_policy_type(const char *kind_name);

/*
 * The report as RFC 8460 4.4 JSON (NUL-terminated, malloc'ed into *out, its
 * length in *len): one policies[] entry per DANE MX host, one for MTA-STS
 * and one for everything without a policy; rows and failures of other days
 * or domains are ignored. 0 / -1 (ENOMEM).
 */
int tlsrpt_json(const struct tlsrpt_report *r, char **out, size_t *len);

/* gzip (RFC 1952) of in, malloc'ed into *out with zlib. 0 / -1. */
int tlsrpt_gzip(const unsigned char *in, size_t len, unsigned char **out, size_t *outlen);

/*
 * The report message (RFC 8460 5.3): headers From, To, Subject "Report
 * Domain: D Submitter: S Report-ID: <ID>", Date, Message-ID,
 * TLS-Report-Domain, TLS-Report-Submitter, multipart/report;
 * report-type="tlsrpt" with a text/plain part and the application/tlsrpt+gzip
 * part (base64, file name S!D!BEGIN!END!UNIQUE.json.gz, UNIQUE = YYYYMMDD and
 * 8 hex digits from the domain). CRLF line ends,
 * malloc'ed and NUL-terminated. date is the RFC 5322 Date value; boundary a
 * token unique to this message. 0 / -1.
 */
int tlsrpt_mime(const struct tlsrpt_report *r, const char *from, const char *to, const char *date,
                const char *boundary, const unsigned char *gz, size_t gzlen, char **out,
                size_t *len);

#endif
