/*
 * https: small HTTPS requests on the libevent loop (libcurl multi, driven
 * by curl_multi_socket_action from this loop's socket and timer events, as
 * resolver.c drives c-ares): the MTA-STS policy GET (RFC 8461 3.3) and the
 * TLS-RPT report POST to an https: rua (RFC 8460 3).
 *
 * Owns: one CURLM, one libevent event per socket curl wants watched, one
 * timer. Host names are resolved by OUR dns module (dns_resolve_addrs: the
 * address policy of allow_private_mx applies) and handed to curl with
 * CURLOPT_RESOLVE, so curl's own resolver and /etc/resolv.conf are never
 * used. The certificate is verified for the URL's host against the same
 * trust store as the SMTP client's (tls_ca_file, or the system's: the
 * SSL_CTX given to https_new, loaded before the privilege drop).
 * Fixed bounds: https only, no redirects, no proxy, TLS 1.2 or newer, 5 s
 * to connect, 60 s for the whole transfer (after the DNS lookup), bodies
 * above the caller's cap are cut off and fail.
 * Never: blocks the loop, follows a redirect, sends cookies or credentials.
 * Loop thread only.
 */
#ifndef MXRELAY_HTTPS_H
#define MXRELAY_HTTPS_H

#include <stddef.h>

struct event_base;
struct ssl_ctx_st;
struct dns;
struct https;
struct https_req;

/*
 * RFC 8461 3.3 suggests a one-minute timeout for the policy GET and asks
 * policy hosts to answer within it: a shorter bound would drop MTA-STS for
 * slow but compliant hosts. An unreachable host still fails after the 5 s
 * connect bound; a host that accepts and stalls delays only its own
 * domain's mail, once per policy id per 5 minutes (sts.c STS_RETRY_S).
 */
#define HTTPS_TIMEOUT_MS 60000
#define HTTPS_CONNECT_TIMEOUT_MS 5000

enum https_status {
	HTTPS_OK,        /* GET: 200 and the wanted content type; POST: any 2xx */
	HTTPS_E_DNS,     /* the host has no usable address */
	HTTPS_E_CONNECT, /* TCP connect failed */
	HTTPS_E_CERT,    /* the server's certificate did not verify for the host */
	HTTPS_E_TLS,     /* other TLS failure */
	HTTPS_E_HTTP,    /* an HTTP status other than the one wanted (3xx: no redirects) */
	HTTPS_E_TYPE,    /* GET: not the wanted Content-Type */
	HTTPS_E_SIZE,    /* the body is larger than the cap */
	HTTPS_E_TIMEOUT, /* HTTPS_TIMEOUT_MS passed */
	HTTPS_E_OTHER,   /* anything else curl reports */
};

/*
 * The outcome. Everything pointed to is valid only during the callback.
 * error: one line for logs ("" with HTTPS_OK).
 */
struct https_result {
	enum https_status status;
	long http_code;           /* 0 when no response */
	const char *content_type; /* "" when none */
	const char *body;         /* NUL-terminated as well; may hold NUL bytes */
	size_t len;
	char error[256];
};
typedef void (*https_cb)(void *arg, const struct https_result *r);

/*
 * New client. dns resolves the hosts (owned by the caller, must outlive
 * h); trust: the SSL_CTX whose certificate store verifies servers (its
 * store is shared, reference counted); NULL = the system's default paths.
 * NULL with err on failure. Free with https_free.
 */
struct https *https_new(struct event_base *base, struct dns *dns, struct ssl_ctx_st *trust,
                        char *err, size_t errlen);

/* Cancel every request (no callback fires) and free. Not from a callback of h. NULL: no-op. */
void https_free(struct https *h);

/*
 * Reload: verify servers against trust's store from the next connection
 * on (h takes its own reference, drops the old one). NULL: no change, as a
 * request in flight may be reading the store.
 */
void https_set_trust(struct https *h, struct ssl_ctx_st *trust);

/*
 * GET url (https://HOST[:PORT]/PATH; HOST a name, not an address). OK
 * needs status 200 and, when want_type is not NULL, that media type
 * (parameters and case ignored; RFC 8461 3.3: "text/plain"). The body is
 * capped at max_body bytes. cb fires exactly once, never inside this call,
 * unless https_cancel comes first. NULL (nothing started, cb never fires)
 * for a URL that is not https with a host name.
 */
struct https_req *https_get(struct https *h, const char *url, const char *want_type,
                            size_t max_body, https_cb cb, void *arg);

/*
 * POST body (copied) with content_type to url; OK is any 2xx status (RFC
 * 8460 3: the report was received). The response body is read up to
 * 64 KiB. Same callback and NULL rules as https_get.
 */
struct https_req *https_post(struct https *h, const char *url, const char *content_type,
                             const void *body, size_t len, https_cb cb, void *arg);

/* Stop a request: its callback never fires. Also from inside another request's callback. */
void https_cancel(struct https_req *r);

/*
 * Host entries handed to curl's DNS cache (CURLOPT_RESOLVE) and not yet
 * withdrawn: live requests' hosts plus the ended ones waiting for the next
 * transfer to withdraw them. For tests and metrics.
 */
size_t https_dns_entries(const struct https *h);

/* "ok", "dns", "connect", "certificate", "tls", "http-status", "content-type", "too-large", ... */
const char *https_status_name(enum https_status s);

#endif
