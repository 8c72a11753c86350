/*
 * tlsreq: what outbound TLS one SMTP session must achieve (struct tls_req,
 * decided per MX host by tlspol.c from tls_policy, DANE and MTA-STS) and
 * what it did achieve (struct tls_outcome, judged by smtpc_tls.c). Shared by
 * the policy, the SMTP client, the destination code, the delivery log line,
 * the metrics and the TLS-RPT counters, so they all name things alike.
 */
#ifndef MXRELAY_TLSREQ_H
#define MXRELAY_TLSREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How much TLS is required; ordered, a higher level includes the lower ones. */
enum tls_req_level {
	TLSR_NONE,	/* plaintext: never send STARTTLS (tls_policy none) */
	TLSR_MAY,	/* opportunistic: TLS when offered, plaintext fallback allowed */
	TLSR_ENCRYPT,	/* STARTTLS required, any certificate */
	TLSR_VERIFY,	/* STARTTLS required, certificate verified (PKIX) for verify_name */
	TLSR_DANE,	/* STARTTLS required, certificate matched to the TLSA records */
};

/*
 * What a delivery counts as, in logs (tls_policy=), metrics, `mxrelayctl tls
 * report` and TLS-RPT: the policy that applied, or "plaintext" when the mail
 * went without TLS.
 */
enum tls_kind {
	TLSK_PLAINTEXT,
	TLSK_OPPORTUNISTIC,
	TLSK_ENCRYPT,
	TLSK_VERIFY,
	TLSK_MTA_STS,
	TLSK_DANE,
	TLSK__COUNT
};

/* RFC 8460 4.3 result types, plus OK. */
enum tls_result {
	TLSRES_OK,
	TLSRES_STARTTLS_NOT_SUPPORTED,
	TLSRES_CERT_HOST_MISMATCH,
	TLSRES_CERT_EXPIRED,
	TLSRES_CERT_NOT_TRUSTED,
	TLSRES_VALIDATION_FAILURE,
	TLSRES_TLSA_INVALID,
	TLSRES_DNSSEC_INVALID,
	TLSRES_DANE_REQUIRED,
	TLSRES_STS_POLICY_FETCH_ERROR,
	TLSRES_STS_POLICY_INVALID,
	TLSRES_STS_WEBPKI_INVALID,
	TLSRES__COUNT
};

/* One TLSA record (RFC 6698 2.1), owned by the struct tls_req that holds it. */
struct tls_tlsa {
	uint8_t usage, selector, mtype;
	size_t len;
	unsigned char *data;
};

struct tls_req {
	enum tls_req_level level;
	enum tls_kind kind;	/* what a TLS delivery under this request counts as */
	bool report_only;	/* MTA-STS testing: judge and record, never refuse */
	char verify_name[256];	/* TLSR_VERIFY, and name checks at other levels: the MX host */
	char policy_domain[256]; /* the recipient domain the policy belongs to (TLS-RPT) */
	char sts_id[33];	/* MTA-STS policy id, "" when none */
	struct tls_tlsa *tlsa;	/* TLSR_DANE: the usable records */
	size_t ntlsa;
};

struct tls_outcome {
	enum tls_kind kind;	/* TLSK_PLAINTEXT when no TLS was set up */
	bool tls;		/* the STARTTLS handshake completed */
	bool verified;		/* the certificate was verified (PKIX or DANE) for the MX */
	char version[16];	/* "TLSv1.3", "none" */
	enum tls_result result;	/* TLSRES_OK, or why the policy was not met */
	char detail[256];	/* failure detail for logs and TLS-RPT, "" when none */
};

/* "plaintext", "opportunistic", "encrypt", "verify", "mta-sts", "dane" */
const char *tls_kind_name(enum tls_kind k);
/* RFC 8460 result-type: "starttls-not-supported", ...; "ok" for TLSRES_OK */
const char *tls_result_name(enum tls_result r);

/* A request for opportunistic TLS (the default when no policy applies). */
void tls_req_init(struct tls_req *r);
/* Deep copy of src into dst (dst's old records freed). 0 / -1 (ENOMEM). */
int tls_req_copy(struct tls_req *dst, const struct tls_req *src);
/* Free the records; r itself is the caller's. */
void tls_req_clear(struct tls_req *r);

#endif
