/*
 * smtpc_tls: the outbound TLS context and the judgement of one session's
 * certificate against its struct tls_req (RFC 3207 STARTTLS, RFC 7672 DANE
 * for SMTP, RFC 8461 4.2 MTA-STS name checks, RFC 8460 4.3 result types).
 *
 * The handshake itself never fails on a certificate (SSL_VERIFY_NONE): an
 * opportunistic session (RFC 7435) must go on whatever the server shows.
 * OpenSSL still verifies the chain, the name (SSL_set1_host) and the TLSA
 * records (SSL_dane_tlsa_add) and keeps the verdict; smtpc_tls_judge reads
 * it once the handshake is done, and smtpc.c refuses to go on, before EHLO
 * is sent again, when the request required a verified certificate.
 */
#ifndef MXRELAY_SMTPC_TLS_H
#define MXRELAY_SMTPC_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "mta/delivery/tlsreq.h"

struct config;

/*
 * The one client context: TLS 1.2 or newer; trust anchors from
 * tls_ca_file, else the system's default paths; the client certificate
 * (tls_client_cert, its chain, and tls_client_key, checked to match); DANE
 * enabled. Reads every file now: call it before the privilege drop (the
 * files may be root's alone). NULL with "FILE:LINE: KEY: reason" in err.
 * The caller frees it with SSL_CTX_free.
 */
SSL_CTX *smtpc_tls_ctx_new(const struct config *cfg, char *err, size_t errlen);

/*
 * Prepare ssl (from the context above) for the server mxname under req:
 * SNI = mxname, none when it is an IP literal (RFC 6066 3); TLSR_DANE: the
 * DANE-TA(2) and DANE-EE(3) records (usages 0 and 1 are skipped, RFC 7672
 * 3.1.3), base domain verify_name (else mxname), no name checks for DANE-EE
 * (RFC 7672 3.1.1); every other level but TLSR_NONE: the PKIX name check
 * for verify_name (else mxname), or the address (iPAddress SAN) when that
 * is an IP literal ("192.0.2.7", "[2001:db8::7]"). No partial wildcards
 * (RFC 6125 6.4.3, RFC 8461 4.1), DANE-TA included, so that tls_verified
 * is honest at MAY and ENCRYPT too. 0 / -1 (out of memory, bad name).
 */
int smtpc_tls_setup(SSL *ssl, const struct tls_req *req, const char *mxname);

/*
 * After the handshake: fill the whole of out (kind from req, tls, version,
 * verified, result, detail). verified: the chain reached a trust anchor and
 * the name matched (PKIX), or a TLSA record matched (TLSR_DANE: nothing
 * else counts). result is the RFC 8460 result type when the request cared
 * (level VERIFY or DANE, or report_only) and the certificate failed it, else
 * TLSRES_OK; detail says why the certificate was not verified ("" when it
 * was), whether or not the request cared.
 */
void smtpc_tls_judge(SSL *ssl, const struct tls_req *req, struct tls_outcome *out);

/*
 * The handshake failed (detail: OpenSSL's reason): out says so, with
 * result validation-failure when the request required TLS or reports.
 */
void smtpc_tls_failed(const struct tls_req *req, struct tls_outcome *out, const char *detail);

/*
 * TLS was required and cannot be had (RFC 3207 4: no STARTTLS in the EHLO
 * reply, or a 4xx/5xx to it): out gets starttls-not-supported and detail.
 */
void smtpc_tls_missing(const struct tls_req *req, struct tls_outcome *out, const char *detail);

#endif
