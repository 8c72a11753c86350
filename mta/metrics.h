/*
 * metrics: the daemon's counters, gauges and histograms, and their
 * Prometheus text rendering (exposition format 0.0.4).
 *
 * Every value is a C11 atomic in static storage: the loop thread (and the
 * worker that measures the queue age) write them with relaxed atomics, the
 * HTTP thread (metrics_http.c) only reads them. Nothing here allocates,
 * locks or blocks, so instrumenting a hot path costs one atomic add.
 * Names: mxrelay_*; the set is fixed at compile time (bounded memory).
 */
#ifndef MXRELAY_METRICS_H
#define MXRELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mta/reply.h"

/* Counters. Entries of one family (same name, other label) are adjacent. */
enum metric_counter {
	M_SESSIONS_TOTAL, /* SMTP sessions started */
	M_ACCEPTED,       /* messages stored (250 sent) */
	M_REJ_SIZE,       /* messages refused: size or header size limit */
	M_REJ_CONTENT,    /* bare CR/LF, over-long lines */
	M_REJ_POLICY,     /* header From not allowed, several From headers */
	M_REJ_RELAY,      /* RCPT refused: neither allowlisted nor authenticated */
	M_REJ_SENDER,     /* MAIL FROM not allowed for the AUTH user (or has no DKIM key) */
	M_REJ_SYSTEM,     /* the spool could not store it, DKIM signing failed (4.3.x) */
	M_DELIVERED,      /* recipients, per attempt outcome recorded in the spool */
	M_DEFERRED,
	M_BOUNCED,
	M_TLS_V10, /* TLS handshakes completed by SMTP clients, per version */
	M_TLS_V11,
	M_TLS_V12,
	M_TLS_V13,
	M_TLS_OTHER,
	M_AUTH_OK, /* AUTH attempts */
	M_AUTH_FAIL,
	M_CLOSED_IDLE, /* sessions closed by a limit (smtpd/limits.c, io.c), per reason */
	M_CLOSED_LINE,
	M_CLOSED_DATA,
	M_CLOSED_RATE,
	M_CLOSED_EVICTED,
	/* outbound recipients delivered, by TLS policy: in enum tls_kind order
	 * (mta/delivery/tlsreq.h), so M_OUT_TLS_PLAINTEXT + kind */
	M_OUT_TLS_PLAINTEXT,
	M_OUT_TLS_OPPORTUNISTIC,
	M_OUT_TLS_ENCRYPT,
	M_OUT_TLS_VERIFY,
	M_OUT_TLS_MTA_STS,
	M_OUT_TLS_DANE,
	/* outbound TLS failures by RFC 8460 result type: enum tls_result order
	 * from TLSRES_STARTTLS_NOT_SUPPORTED, so M_OUT_TLSF_STARTTLS + result - 1 */
	M_OUT_TLSF_STARTTLS,
	M_OUT_TLSF_HOST_MISMATCH,
	M_OUT_TLSF_EXPIRED,
	M_OUT_TLSF_NOT_TRUSTED,
	M_OUT_TLSF_VALIDATION,
	M_OUT_TLSF_TLSA_INVALID,
	M_OUT_TLSF_DNSSEC_INVALID,
	M_OUT_TLSF_DANE_REQUIRED,
	M_OUT_TLSF_STS_FETCH,
	M_OUT_TLSF_STS_INVALID,
	M_OUT_TLSF_STS_WEBPKI,
	M_STS_FETCH_OK, /* MTA-STS policy fetches (delivery/sts.c): a valid policy */
	M_STS_FETCH_ERR, /* ... or none (HTTPS failure, invalid policy) */
	M_RATE_LIMITED_MSGS,  /* MAIL refused by a rate_limit (smtpd/ratelimit.c), per limit */
	M_RATE_LIMITED_RCPTS, /* RCPT refused by a rate_limit */
	M__COUNT
};

enum metric_gauge {
	G_SESSIONS,           /* SMTP sessions open now */
	G_QUEUE_MESSAGES,     /* messages with work left (scheduled or being delivered) */
	G_QUEUE_OLDEST,       /* received time of the oldest queued message, 0: empty */
	G_SPOOL_FREE,         /* bytes free for the daemon in data_dir (the writer's statvfs) */
	G_INTAKE_PAUSED,      /* 1 while new mail gets 452 4.3.1 for lack of space */
	G_RESULTS_UNRECORDED, /* recipients' outcomes read from an MX, not yet committed */
	G_QUEUE_HELD,         /* messages held (queue hold, unfinished attempts): not scheduled */
	G__COUNT
};

enum metric_hist {
	H_DNS_SECONDS,      /* MX resolution of one destination, start to answer */
	H_DELIVERY_SECONDS, /* one delivery attempt of one message, load to outcome */
	H__COUNT
};

void metrics_inc(enum metric_counter c);
void metrics_gauge_set(enum metric_gauge g, int64_t v);
void metrics_gauge_add(enum metric_gauge g, int64_t delta);
/* Negative or NaN observations count as 0. */
void metrics_observe(enum metric_hist h, double seconds);

/* Count a completed client TLS handshake by OpenSSL's version name ("TLSv1.2"). */
void metrics_tls_seen(const char *version);

/*
 * Count a refused message by the class of its reply (reply.h, which maps
 * each reply id to one): size, content, system (spool errors, DKIM signing
 * failures: RFC 3463 "mail system status"), and policy for the rest. One
 * table maps replies to classes, so the same refusal always counts the same.
 */
void metrics_reject(enum reply_class cls);

uint64_t metrics_counter(enum metric_counter c);
int64_t metrics_gauge(enum metric_gauge g);

/*
 * Render everything as Prometheus text into buf (NUL-terminated, cut at
 * len - 1). Returns the full length, like snprintf: a result >= len means
 * buf was too small. now: for the queue age.
 */
size_t metrics_render(char *buf, size_t len, time_t now);

/* Zero everything (unit tests). */
void metrics_reset(void);

/*
 * Daemon wiring, loop thread only. metrics_start serves cfg->metrics_listen
 * (nothing when unset) and starts the queue poll; call it after privileges
 * are dropped. 0 / -1 with err. metrics_stop: after async_free, so no
 * queue-age job is left in flight.
 */
struct server;
int metrics_start(struct server *srv, char *err, size_t errlen); /* metrics_http.c */
void metrics_stop(void);
/* metrics_poll.c: queue size (O(1), every second) and oldest age (a worker, every 5 s) */
void metrics_poll_start(struct server *srv);
void metrics_poll_stop(void);

#endif
