/*
 * txtq: a TXT lookup through the delivery engine's resolver (its c-ares
 * channel on the loop) for callers above delivery that may not include
 * dns/ (control's TLS-RPT job: _smtp._tls.DOMAIN, RFC 8460 3).
 */
#ifndef MXRELAY_TXTQ_H
#define MXRELAY_TXTQ_H

#include <stddef.h>

struct deliver;
struct txtq;

enum txtq_status {
	TXTQ_OK,       /* records in txts (maybe none of the kind the caller wants) */
	TXTQ_NONE,     /* the name does not exist or has no TXT: a final answer */
	TXTQ_TEMPFAIL, /* SERVFAIL, timeout...: ask again later */
};

/*
 * txts[i]: one record, its strings joined, NUL-terminated (a record holding a
 * NUL byte is left out); valid during the callback only. reason: "" or why.
 */
typedef void (*txtq_cb)(void *arg, enum txtq_status st, const char *const *txts, size_t n,
                        const char *reason);

/*
 * Look name up; cb fires once, later, on the loop (never inside this call),
 * unless txtq_cancel came first. NULL when the query cannot start (bad name:
 * then nothing fires). The handle is freed when cb returns.
 */
struct txtq *txtq_start(struct deliver *dl, const char *name, txtq_cb cb, void *arg);

/* Stop a query: cb never fires. */
void txtq_cancel(struct txtq *q);

#endif
