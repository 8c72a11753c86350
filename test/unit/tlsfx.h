/*
 * TLS fixture pieces shared by the SMTP client's TLS unit tests
 * (header-only: each test is one program): certificates made on the spot
 * with OpenSSL, the key and certificate a test server presents, and a
 * tls_req as dest.c would fill it. Include after <cmocka.h> and
 * "mta/delivery/tlsreq.h".
 */
#ifndef MXRELAY_TLSFX_H
#define MXRELAY_TLSFX_H

#include <stdbool.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

/* What a test server presents: the caller frees it with tu_server_free. */
struct tu_server {
	EVP_PKEY *key;
	X509 *cert;
};

static inline void
tu_server_free(struct tu_server *s)
{
	X509_free(s->cert);
	EVP_PKEY_free(s->key);
}

static inline void
tu_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);

	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/*
 * A certificate for key, valid from from_days to to_days from now, signed
 * by (issuer, ikey), or self-signed when issuer is NULL; san: a
 * subjectAltName value ("DNS:a,IP:b") or NULL. The caller frees it.
 */
static inline X509 *
tu_make_cert(EVP_PKEY *key, const char *cn, const char *san, bool ca, long from_days, long to_days,
             X509 *issuer, EVP_PKEY *ikey)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509V3_CTX v3;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	tu_add_ext(x, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca)
		tu_add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (san)
		tu_add_ext(x, &v3, NID_subject_alt_name, san);
	assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
	return x;
}

/* A request at level for mx.example.test, with the kind its tls_policy word gives. */
static inline void
tu_req_make(struct tls_req *r, enum tls_req_level level, bool report_only)
{
	tls_req_init(r);
	r->level = level;
	r->kind = level == TLSR_DANE      ? TLSK_DANE
	          : level == TLSR_VERIFY  ? TLSK_VERIFY
	          : level == TLSR_ENCRYPT ? TLSK_ENCRYPT
	                                  : TLSK_OPPORTUNISTIC;
	r->report_only = report_only;
	snprintf(r->verify_name, sizeof(r->verify_name), "mx.example.test");
}

#endif
