/*
 * tlspol: the outbound TLS decision per MX host (tlspol.h).
 *
 * Precedence, in order (issue 13, plan 3.2):
 * 1. tls_policy none|may: the admin's explicit downgrade, DANE and MTA-STS off.
 * 2. DANE (RFC 7672) for a host whose address records are secure, even when
 *    the MX RRset is not (RFC 7672 2.2.1 lets DANE apply per MX host; as
 *    Postfix does): usable TLSA -> DANE; only unusable TLSA -> encrypted,
 *    unauthenticated (RFC 7672 2.2); failed lookup -> skip the host, never
 *    downgrade (RFC 7672 2.2). DANE wins over MTA-STS (RFC 8461 2).
 * 3. tls_policy dane: no usable TLSA -> skip the host.
 * 4. MTA-STS enforce: the host must match the policy (RFC 8461 4.1) and its
 *    certificate verify for its name (RFC 8461 4.2); testing: report only.
 * 5. tls_policy verify / encrypt: floors.
 * 6. Otherwise opportunistic (RFC 7435).
 * TLS reports (in->tls_report) stop after rule 1: RFC 8460 3, "Sending MTAs
 * MUST deliver reports despite any TLS-related failures".
 */
#include "mta/delivery/tlspol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/reply.h"
#include "mta/shared/sts.h"

bool
tlspol_tlsa_usable(const struct dns_tlsa_rec *r)
{
	/* RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP */
	if (r->usage != 2 && r->usage != 3)
		return false;
	if (r->selector > 1 || r->len == 0)
		return false;
	/* RFC 6698 2.1.3: Full(0), SHA2-256(1), SHA2-512(2); others unusable */
	switch (r->mtype) {
	case 0:
		return true;
	case 1:
		return r->len == 32;
	case 2:
		return r->len == 64;
	default:
		return false;
	}
}

enum tlspol_tlsa
tlspol_tlsa_class(const struct dns_tlsa_result *res)
{
	if (res->status == DNS_NXDOMAIN)
		return TLSPOL_TLSA_NONE; /* secure or not, no records: no DANE */
	if (res->status != DNS_OK)
		return TLSPOL_TLSA_FAILED;
	if (!res->secure)
		return TLSPOL_TLSA_NONE; /* RFC 7672 2.1.1: insecure TLSA is ignored */
	for (size_t i = 0; i < res->n; i++)
		if (tlspol_tlsa_usable(&res->recs[i]))
			return TLSPOL_TLSA_USABLE;
	return res->n ? TLSPOL_TLSA_UNUSABLE : TLSPOL_TLSA_NONE;
}

bool
tlspol_want_tlsa(const struct tlspol_in *in)
{
	if (in->literal || in->tls_report || !in->dane_on || !in->host_secure)
		return false;
	return !(in->has_floor && (in->floor == TLS_L_NONE || in->floor == TLS_L_MAY));
}

static int
copy_usable(const struct tlspol_in *in, struct tls_req *out)
{
	out->tlsa = calloc(in->nrecs, sizeof(*out->tlsa));
	if (out->tlsa == NULL)
		return -1;
	for (size_t i = 0; i < in->nrecs; i++) {
		const struct dns_tlsa_rec *r = &in->recs[i];
		struct tls_tlsa *t = &out->tlsa[out->ntlsa];
		if (!tlspol_tlsa_usable(r))
			continue;
		t->data = malloc(r->len);
		if (t->data == NULL)
			return -1;
		memcpy(t->data, r->data, r->len);
		t->len = r->len;
		t->usage = (uint8_t)r->usage;
		t->selector = (uint8_t)r->selector;
		t->mtype = (uint8_t)r->mtype;
		out->ntlsa++;
	}
	return 0;
}

static void
raise_to(struct tls_req *out, enum tls_req_level level, enum tls_kind kind)
{
	if (out->level < level) {
		out->level = level;
		out->kind = kind;
	}
}

static bool
sts_listed(const struct tlspol_in *in)
{
	for (size_t i = 0; i < in->sts_nmx; i++)
		if (sts_mx_match(in->sts_mx[i], in->host))
			return true;
	return false;
}

/* Rules 4 to 6, once DANE did not settle the host. */
static void
decide_rest(const struct tlspol_in *in, struct tls_req *out, enum tlspol_verdict *v)
{
	bool sts = !in->literal && !in->named_route;

	if (sts && in->sts_id)
		snprintf(out->sts_id, sizeof(out->sts_id), "%s", in->sts_id);
	if (sts && in->sts == TLSPOL_STS_ENFORCE) {
		if (!sts_listed(in)) {
			*v = TLSPOL_SKIP_STS_MX;
			out->kind = TLSK_MTA_STS; /* what the refusal counts as (TLS-RPT) */
			return;
		}
		raise_to(out, TLSR_VERIFY, TLSK_MTA_STS);
	} else if (sts && in->sts == TLSPOL_STS_TESTING) {
		/* RFC 8461 5: testing never stops a delivery; failures are reported */
		out->report_only = true;
		out->kind = TLSK_MTA_STS;
	}
	if (in->has_floor && in->floor == TLS_L_VERIFY)
		raise_to(out, TLSR_VERIFY, TLSK_VERIFY);
	if (in->has_floor && in->floor == TLS_L_ENCRYPT)
		raise_to(out, TLSR_ENCRYPT, TLSK_ENCRYPT);
	if (out->level > TLSR_MAY)
		out->report_only = false;
}

int
tlspol_decide(const struct tlspol_in *in, struct tls_req *out, enum tlspol_verdict *v)
{
	tls_req_init(out);
	*v = TLSPOL_GO;
	snprintf(out->verify_name, sizeof(out->verify_name), "%s", in->host);
	snprintf(out->policy_domain, sizeof(out->policy_domain), "%s", in->domain);
	if (in->has_floor && in->floor == TLS_L_NONE) {
		out->level = TLSR_NONE;
		out->kind = TLSK_PLAINTEXT;
		return 0;
	}
	if ((in->has_floor && in->floor == TLS_L_MAY) || in->tls_report)
		return 0;
	if (tlspol_want_tlsa(in)) {
		switch (in->tlsa) {
		case TLSPOL_TLSA_FAILED:
			*v = TLSPOL_SKIP_TLSA_FAILED;
			out->kind = TLSK_DANE;
			return 0;
		case TLSPOL_TLSA_USABLE:
			out->level = TLSR_DANE;
			out->kind = TLSK_DANE;
			return copy_usable(in, out);
		case TLSPOL_TLSA_UNUSABLE:
			/* RFC 7672 2.2: TLS is still mandatory, unauthenticated */
			raise_to(out, TLSR_ENCRYPT, TLSK_ENCRYPT);
			break;
		case TLSPOL_TLSA_NONE:
			break;
		}
	}
	if (in->has_floor && in->floor == TLS_L_DANE) {
		*v = TLSPOL_SKIP_DANE_REQUIRED;
		out->kind = TLSK_DANE;
		return 0;
	}
	decide_rest(in, out, v);
	return 0;
}

const char *
tlspol_required_by(const struct tls_req *req)
{
	switch (req->kind) {
	case TLSK_DANE:
		return "DANE";
	case TLSK_MTA_STS:
		return "MTA-STS";
	case TLSK_VERIFY:
		return "tls_policy verify";
	default:
		return req->level == TLSR_ENCRYPT && req->ntlsa == 0 ? "tls_policy encrypt"
		                                                     : "the TLS policy";
	}
}

int
tlspol_fail_reply(const struct tls_req *req, enum smtpc_stage stage, const char *relay,
                  const char *why, char *text, size_t len)
{
	enum reply_id id;

	if (req == NULL || req->level < TLSR_ENCRYPT)
		return 0; /* opportunistic: a TLS failure may fall back to plaintext */
	switch (stage) {
	case SMTPC_TLS_REQUIRED:
		id = R_DLV_TLS_NOT_OFFERED;
		break;
	case SMTPC_TLS_VERIFY:
		id = R_DLV_TLS_CERT;
		break;
	case SMTPC_TLS:
		id = R_DLV_TLS_HANDSHAKE;
		break;
	default:
		return 0;
	}
	reply_format(text, len, id, relay, why, tlspol_required_by(req));
	return (int)reply_code(id);
}

int
tlspol_skip_reply(enum tlspol_verdict v, const char *domain, const char *host, const char *sts_id,
                  const char *why, char *text, size_t len)
{
	enum reply_id id = v == TLSPOL_SKIP_TLSA_FAILED     ? R_DLV_TLSA_FAILED
	                   : v == TLSPOL_SKIP_DANE_REQUIRED ? R_DLV_DANE_REQUIRED
	                                                    : R_DLV_STS_NO_MX;

	if (v == TLSPOL_SKIP_STS_MX)
		reply_format(text, len, id, domain, sts_id && *sts_id ? sts_id : "?");
	else
		reply_format(text, len, id, host, why ? why : "");
	return (int)reply_code(id);
}
