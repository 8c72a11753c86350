/*
 * smtpc_tls: the outbound TLS context, the per-session setup for a
 * struct tls_req, and the verdict on the server's certificate (see
 * smtpc_tls.h). Never: refuses a handshake itself (smtpc.c decides, from
 * the verdict, whether the session may go on), or reads files after
 * start-up.
 */
#include "mta/delivery/smtpc_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/config.h"

/* "FILE:LINE: KEY: cannot use PATH: reason" for a file a key names. */
static void
file_err(char *err, size_t errlen, const struct config *cfg, int line, const char *key,
         const char *path, const char *why)
{
	char ossl[256] = "";
	unsigned long e = ERR_peek_last_error();

	if (why == NULL && e != 0)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	ERR_clear_error();
	snprintf(err, errlen, "%s:%d: %s: cannot use %s: %s", cfg->path ? cfg->path : "(default)",
	         line, key, path, why ? why : (ossl[0] ? ossl : "unknown error"));
}

/* Open and close path first: "Permission denied" reads better than OpenSSL's "system lib". */
static int
readable(const char *path, char *why, size_t len)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(why, len, "%s", strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

/* Does the PEM file at path hold an encrypted key (PKCS#8 or the legacy Proc-Type form)? */
static bool
encrypted_pem(const char *path)
{
	char line[256];
	bool enc = false;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return false;
	while (!enc && fgets(line, sizeof(line), f) != NULL)
		enc = strstr(line, "BEGIN ENCRYPTED PRIVATE KEY") != NULL ||
		      strstr(line, "Proc-Type: 4,ENCRYPTED") != NULL;
	fclose(f);
	return enc;
}

/* tls_ca_file, or the system's trust store. */
static int
load_anchors(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
	char why[128];
	const char *ca = cfg->tls_ca_file;

	if (ca == NULL) {
		/* the default hashed directory is read lazily, at verification: world-readable */
		if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			ERR_clear_error(); /* no system store: nothing verifies, TLS still works */
		return 0;
	}
	if (readable(ca, why, sizeof(why)) != 0) {
		file_err(err, errlen, cfg, cfg->tls_ca_file_line, "tls_ca_file", ca, why);
		return -1;
	}
	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		file_err(err, errlen, cfg, cfg->tls_ca_file_line, "tls_ca_file", ca, NULL);
		return -1;
	}
	return 0;
}

/* The passphrase callback: none, so an encrypted key fails to load. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf, (void)size, (void)rwflag, (void)arg;
	return 0;
}

/* tls_client_cert (with its chain) and tls_client_key, which must belong together. */
static int
load_client_cert(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
	const char *cert = cfg->tls_client_cert, *key = cfg->tls_client_key;
	int cline = cfg->tls_client_cert_line;
	int kline = cfg->tls_client_key_line ? cfg->tls_client_key_line : cline;
	char why[128];

	if (cert == NULL || key == NULL)
		return 0; /* config.c refuses one without the other */
	if (readable(cert, why, sizeof(why)) != 0) {
		file_err(err, errlen, cfg, cline, "tls_client_cert", cert, why);
		return -1;
	}
	if (readable(key, why, sizeof(why)) != 0) {
		file_err(err, errlen, cfg, kline, "tls_client_key", key, why);
		return -1;
	}
	/* an encrypted key is refused, never asked for: OpenSSL's default
	 * callback prompts on the terminal and a start-up would hang there */
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		file_err(err, errlen, cfg, cline, "tls_client_cert", cert, NULL);
		return -1;
	}
	/* OpenSSL 3 refuses a mismatched key already here: say so in our words */
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
		file_err(err, errlen, cfg, kline, "tls_client_key", key,
		         encrypted_pem(key)
		             ? "the key is encrypted (a passphrase is never asked for)"
		             : NULL);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		file_err(err, errlen, cfg, kline, "tls_client_key", key,
		         "the key does not match tls_client_cert");
		return -1;
	}
	return 0;
}

SSL_CTX *
smtpc_tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		snprintf(err, errlen, "cannot create TLS client context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* judged afterwards (smtpc_tls_judge): opportunistic TLS never fails on a certificate */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (load_anchors(ctx, cfg, err, errlen) != 0 ||
	    load_client_cert(ctx, cfg, err, errlen) != 0)
		goto fail;
	/* RFC 7671: the SHA2-256 and SHA2-512 matching types are on by default */
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		snprintf(err, errlen, "cannot enable DANE in the TLS client context");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * TLSR_DANE: the base domain and the records. Only DANE-TA(2) and
 * DANE-EE(3) are usable in SMTP (RFC 7672 3.1.3: no CA list can be assumed
 * for PKIX-TA(0) and PKIX-EE(1)); OpenSSL would honour those too, so they
 * are skipped here. With no record left, OpenSSL falls back to PKIX and
 * smtpc_tls_judge fails the session ("no usable TLSA record").
 */
static int
setup_dane(SSL *ssl, const struct tls_req *req, const char *name)
{
	/* DANE-TA keeps the name check (RFC 7672 3.2.2): one whole label per
	 * wildcard, as for PKIX (RFC 6125 6.4.3). Set before SSL_dane_enable,
	 * which sets the base domain as the name to check */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_dane_enable(ssl, name) <= 0)
		return -1;
	/*
	 * RFC 7672 3.1.1: a DANE-EE(3) record pins the key itself; the names in
	 * the certificate are not checked.
	 */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (size_t i = 0; i < req->ntlsa; i++) {
		const struct tls_tlsa *t = &req->tlsa[i];
		if (t->usage != 2 && t->usage != 3)
			continue; /* RFC 7672 3.1.3 */
		/* < 0: malformed (e.g. a digest of the wrong length); 0: unusable
		 * (unknown selector or matching type). Either way this record
		 * cannot match, and any of the others still may */
		if (SSL_dane_tlsa_add(ssl, t->usage, t->selector, t->mtype, t->data, t->len) < 0)
			ERR_clear_error();
	}
	return 0;
}

/*
 * An IP-literal route's host ("192.0.2.7", "[192.0.2.7]", "[2001:db8::7]",
 * "[IPv6:2001:db8::7]", RFC 5321 4.1.3) as the bare address in ip; false for
 * a host name.
 */
static bool
ip_literal(const char *name, char *ip, size_t len)
{
	unsigned char b[16];
	size_t n = strlen(name);

	if (name[0] == '[' && n > 2 && name[n - 1] == ']') {
		name++, n -= 2;
		if (n > 5 && strncasecmp(name, "IPv6:", 5) == 0)
			name += 5, n -= 5;
	}
	if (n >= len)
		return false;
	memcpy(ip, name, n);
	ip[n] = '\0';
	return inet_pton(AF_INET, ip, b) == 1 || inet_pton(AF_INET6, ip, b) == 1;
}

int
smtpc_tls_setup(SSL *ssl, const struct tls_req *req, const char *mxname)
{
	const char *name = req->verify_name[0] ? req->verify_name : mxname;
	char ip[64];

	/* SNI = MX name (RFC 7672 8.1); never an address (RFC 6066 3) */
	if (!ip_literal(mxname, ip, sizeof(ip)))
		SSL_set_tlsext_host_name(ssl, mxname);
	if (req->level == TLSR_DANE)
		return setup_dane(ssl, req, name);
	if (req->level == TLSR_NONE)
		return 0;
	/* a route to an address: the certificate names it in an iPAddress SAN
	 * (RFC 5280 4.2.1.6), checked as an address, not as a host name */
	if (ip_literal(name, ip, sizeof(ip)))
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1 ? 0 : -1;
	/* "*.example.com" matches one whole label only (RFC 8461 4.1, RFC 6125 6.4.3) */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return SSL_set1_host(ssl, name) == 1 ? 0 : -1;
}

/* An OpenSSL verify error as an RFC 8460 4.3.1 result type. */
static enum tls_result
result_of(long v, bool dane)
{
	switch (v) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH: /* an IP-literal route */
		return TLSRES_CERT_HOST_MISMATCH;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return TLSRES_CERT_EXPIRED;
	case X509_V_ERR_DANE_NO_MATCH:
		return TLSRES_VALIDATION_FAILURE;
	default:
		/* PKIX: the chain did not reach a trust anchor (self-signed, unknown
		 * issuer, not yet valid, bad signature); DANE: the records failed */
		return dane ? TLSRES_VALIDATION_FAILURE : TLSRES_CERT_NOT_TRUSTED;
	}
}

void
smtpc_tls_judge(SSL *ssl, const struct tls_req *req, struct tls_outcome *out)
{
	bool dane = req->level == TLSR_DANE;
	long v = SSL_get_verify_result(ssl);
	enum tls_result res = TLSRES_OK;

	out->kind = req->kind;
	out->tls = true;
	snprintf(out->version, sizeof(out->version), "%s", SSL_get_version(ssl));
	out->verified = false;
	out->detail[0] = '\0';
	if (SSL_get0_peer_certificate(ssl) == NULL) {
		res = dane ? TLSRES_VALIDATION_FAILURE : TLSRES_CERT_NOT_TRUSTED;
		snprintf(out->detail, sizeof(out->detail), "no certificate");
	} else if (v != X509_V_OK) {
		res = result_of(v, dane);
		snprintf(out->detail, sizeof(out->detail), "%s", X509_verify_cert_error_string(v));
	} else if (dane && SSL_get0_dane_authority(ssl, NULL, NULL) < 0) {
		/* no usable record was added: OpenSSL fell back to PKIX, which DANE is not */
		res = TLSRES_VALIDATION_FAILURE;
		snprintf(out->detail, sizeof(out->detail), "no usable TLSA record");
	} else {
		out->verified = true;
	}
	out->result = req->level >= TLSR_VERIFY || req->report_only ? res : TLSRES_OK;
	ERR_clear_error(); /* nothing of this session's verdict lingers for the next user */
}

/* The outcome of a session that ended up without TLS. */
static void
outcome_no_tls(const struct tls_req *req, struct tls_outcome *out, enum tls_result result,
               const char *detail)
{
	out->kind = req->kind;
	out->tls = false;
	out->verified = false;
	snprintf(out->version, sizeof(out->version), "none");
	out->result = result;
	snprintf(out->detail, sizeof(out->detail), "%s", detail);
}

void
smtpc_tls_failed(const struct tls_req *req, struct tls_outcome *out, const char *detail)
{
	outcome_no_tls(req, out,
	               req->level >= TLSR_ENCRYPT || req->report_only ? TLSRES_VALIDATION_FAILURE
	                                                              : TLSRES_OK,
	               detail);
}

void
smtpc_tls_missing(const struct tls_req *req, struct tls_outcome *out, const char *detail)
{
	outcome_no_tls(req, out, TLSRES_STARTTLS_NOT_SUPPORTED, detail);
}
