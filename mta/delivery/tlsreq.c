/*
 * tlsreq: the names of TLS policies and RFC 8460 result types, and the
 * life of a struct tls_req (see tlsreq.h).
 */
#include "mta/delivery/tlsreq.h"

#include <stdlib.h>
#include <string.h>

#include "mta/shared/util.h"

static const char *const kind_names[TLSK__COUNT] = {
    [TLSK_PLAINTEXT] = "plaintext", [TLSK_OPPORTUNISTIC] = "opportunistic",
    [TLSK_ENCRYPT] = "encrypt",     [TLSK_VERIFY] = "verify",
    [TLSK_MTA_STS] = "mta-sts",     [TLSK_DANE] = "dane",
};

/* RFC 8460 4.3.1 (negotiation), 4.3.2 (policy) result types */
static const char *const result_names[TLSRES__COUNT] = {
    [TLSRES_OK] = "ok",
    [TLSRES_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
    [TLSRES_CERT_HOST_MISMATCH] = "certificate-host-mismatch",
    [TLSRES_CERT_EXPIRED] = "certificate-expired",
    [TLSRES_CERT_NOT_TRUSTED] = "certificate-not-trusted",
    [TLSRES_VALIDATION_FAILURE] = "validation-failure",
    [TLSRES_TLSA_INVALID] = "tlsa-invalid",
    [TLSRES_DNSSEC_INVALID] = "dnssec-invalid",
    [TLSRES_DANE_REQUIRED] = "dane-required",
    [TLSRES_STS_POLICY_FETCH_ERROR] = "sts-policy-fetch-error",
    [TLSRES_STS_POLICY_INVALID] = "sts-policy-invalid",
    [TLSRES_STS_WEBPKI_INVALID] = "sts-webpki-invalid",
};

const char *
tls_kind_name(enum tls_kind k)
{
	return (unsigned)k < TLSK__COUNT ? kind_names[k] : "?";
}

const char *
tls_result_name(enum tls_result r)
{
	return (unsigned)r < TLSRES__COUNT ? result_names[r] : "?";
}

void
tls_req_init(struct tls_req *r)
{
	memset(r, 0, sizeof(*r));
	r->level = TLSR_MAY;
	r->kind = TLSK_OPPORTUNISTIC;
}

void
tls_req_clear(struct tls_req *r)
{
	for (size_t i = 0; i < r->ntlsa; i++)
		free(r->tlsa[i].data);
	free(r->tlsa);
	r->tlsa = NULL;
	r->ntlsa = 0;
}

int
tls_req_copy(struct tls_req *dst, const struct tls_req *src)
{
	tls_req_clear(dst);
	*dst = *src;
	dst->tlsa = NULL;
	dst->ntlsa = 0;
	if (src->ntlsa == 0)
		return 0;
	dst->tlsa = xcalloc(src->ntlsa, sizeof(*dst->tlsa));
	for (size_t i = 0; i < src->ntlsa; i++) {
		dst->tlsa[i] = src->tlsa[i];
		dst->tlsa[i].data = xmalloc(src->tlsa[i].len ? src->tlsa[i].len : 1);
		memcpy(dst->tlsa[i].data, src->tlsa[i].data, src->tlsa[i].len);
		dst->ntlsa++;
	}
	return 0;
}
