/*
 * rptnet: the network a TLS-RPT run needs (control/tlsrpt.c), from the
 * delivery engine's parts, for control/, which may not include dns/: a TXT
 * lookup through delivery's resolver (its c-ares channel on the loop:
 * _smtp._tls.DOMAIN, RFC 8460 3) and an HTTPS client (https.h) on the same
 * resolver and the SMTP client's trust store, for https: rua POSTs.
 */
#ifndef MXRELAY_RPTNET_H
#define MXRELAY_RPTNET_H

#include <stddef.h>

struct deliver;
struct rptnet_txt;

enum rptnet_status {
	RPTNET_OK,       /* records in txts (maybe none of the kind the caller wants) */
	RPTNET_NONE,     /* the name does not exist or has no TXT: a final answer */
	RPTNET_TEMPFAIL, /* SERVFAIL, timeout...: ask again later */
};

/*
 * txts[i]: one record, its strings joined, NUL-terminated (a record holding a
 * NUL byte is left out); valid during the callback only. reason: "" or why.
 */
typedef void (*rptnet_txt_cb)(void *arg, enum rptnet_status st, const char *const *txts, size_t n,
                        const char *reason);

/*
 * Look name up; cb fires once, later, on the loop (never inside this call),
 * unless rptnet_txt_cancel came first. NULL when the query cannot start (bad name:
 * then nothing fires). The handle is freed when cb returns.
 */
struct rptnet_txt *rptnet_txt(struct deliver *dl, const char *name, rptnet_txt_cb cb, void *arg);

/* Stop a query: cb never fires. NULL: no-op. */
void rptnet_txt_cancel(struct rptnet_txt *q);

struct https;

/*
 * A new HTTPS client (https.h) resolving through delivery's resolver and
 * verifying servers with srv->client_tls's store (tls_ca_file or the
 * system's). The caller frees it with https_free before deliver_free.
 * NULL with err.
 */
struct https *rptnet_https_new(struct deliver *dl, char *err, size_t errlen);

#endif
