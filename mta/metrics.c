/* metrics: atomics and their Prometheus text rendering (see metrics.h). */
#include "mta/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define HIST_MAX_BUCKETS 16

struct family {
	const char *name;
	const char *type;
	const char *help;
};

struct counter_def {
	const struct family *fam;
	const char *labels; /* "reason=\"size\"" or NULL */
};

struct hist_def {
	const struct family *fam;
	size_t nb;
	double le[HIST_MAX_BUCKETS]; /* upper bounds, ascending; +Inf is implicit */
};

static const struct family f_sessions_total = {"mxrelay_sessions_total", "counter",
                                               "SMTP sessions started."};
static const struct family f_accepted = {"mxrelay_accepted_total", "counter",
                                         "Messages accepted and stored in the spool."};
static const struct family f_rejected = {
    "mxrelay_rejected_total", "counter",
    "Messages refused (at end of DATA, or by the spool), RCPTs refused for relaying and "
    "senders refused for the AUTH user, by reason."};
static const struct family f_delivered = {"mxrelay_delivered_total", "counter",
                                          "Recipients delivered (2xx from the remote MX)."};
static const struct family f_deferred = {"mxrelay_deferred_total", "counter",
                                         "Recipient delivery attempts deferred for a retry."};
static const struct family f_bounced = {
    "mxrelay_bounced_total", "counter",
    "Recipients failed permanently (5xx or expired); a DSN is sent for them."};
static const struct family f_tls = {
    "mxrelay_tls_sessions_total", "counter",
    "TLS handshakes completed by SMTP clients, by protocol version."};
static const struct family f_auth = {"mxrelay_auth_total", "counter",
                                     "SMTP AUTH attempts, by result."};
static const struct family f_out_tls = {
    "mxrelay_outbound_tls_total", "counter",
    "Recipients delivered, by the TLS policy of their session (plaintext: no TLS)."};
static const struct family f_out_tlsf = {
    "mxrelay_outbound_tls_failures_total", "counter",
    "Outbound sessions or MX hosts that failed their TLS policy, by RFC 8460 result type."};
static const struct family f_sessions = {"mxrelay_sessions", "gauge", "SMTP sessions open now."};
static const struct family f_closed = {
    "mxrelay_sessions_closed_total", "counter",
    "SMTP sessions closed by a limit: idle, line (command_deadline), data (data_deadline), rate "
    "(min_data_rate), evicted (to make room at a connection cap)."};
static const struct family f_queue = {
    "mxrelay_queue_messages", "gauge",
    "Messages in the spool with work left, by state: queued (scheduled or being delivered) or "
    "held (not tried until released)."};
static const struct family f_queue_age = {
    "mxrelay_queue_oldest_age_seconds", "gauge",
    "Age of the oldest queued message (0 when the queue is empty); refreshed every few "
    "seconds."};
static const struct family f_spool_free = {
    "mxrelay_spool_free_bytes", "gauge",
    "Bytes free for the spool: data_dir's file system (statvfs f_bavail) plus the free pages "
    "inside spool.db, as the spool writer last saw them (at most about 1 s old)."};
static const struct family f_intake_paused = {
    "mxrelay_intake_paused", "gauge",
    "1 while new mail is refused with 452 4.3.1 for lack of space (queue_minfree, "
    "spool_max_size, or the spool reserve in use), else 0."};
static const struct family f_unrecorded = {
    "mxrelay_results_unrecorded", "gauge",
    "Recipients whose delivery outcome was read from an MX but is not committed to the spool "
    "yet (a crash now delivers them again)."};
static const struct family f_dns = {"mxrelay_dns_lookup_seconds", "histogram",
                                    "Time to resolve the MX targets of one destination domain."};
static const struct family f_delivery = {
    "mxrelay_delivery_attempt_seconds", "histogram",
    "Duration of one delivery attempt of one message (all its recipient domains)."};

static const struct family f_sts_fetch = {
    "mxrelay_sts_fetch_total", "counter",
    "MTA-STS policy fetches (RFC 8461 3.3), by result: ok (a valid policy) or error."};

static const struct family f_rate_limited = {
    "mxrelay_rate_limited_total", "counter",
    "MAIL and RCPT commands refused with 451 4.7.1 by a rate_limit rule, by the limit reached: "
    "messages or recipients per hour."};

static const struct counter_def counters[M__COUNT] = {
    [M_SESSIONS_TOTAL] = {&f_sessions_total, NULL},
    [M_ACCEPTED] = {&f_accepted, NULL},
    [M_REJ_SIZE] = {&f_rejected, "reason=\"size\""},
    [M_REJ_CONTENT] = {&f_rejected, "reason=\"content\""},
    [M_REJ_POLICY] = {&f_rejected, "reason=\"policy\""},
    [M_REJ_RELAY] = {&f_rejected, "reason=\"relay\""},
    [M_REJ_SENDER] = {&f_rejected, "reason=\"sender\""},
    [M_REJ_SYSTEM] = {&f_rejected, "reason=\"system\""},
    [M_DELIVERED] = {&f_delivered, NULL},
    [M_DEFERRED] = {&f_deferred, NULL},
    [M_BOUNCED] = {&f_bounced, NULL},
    [M_TLS_V10] = {&f_tls, "version=\"TLSv1\""},
    [M_TLS_V11] = {&f_tls, "version=\"TLSv1.1\""},
    [M_TLS_V12] = {&f_tls, "version=\"TLSv1.2\""},
    [M_TLS_V13] = {&f_tls, "version=\"TLSv1.3\""},
    [M_TLS_OTHER] = {&f_tls, "version=\"other\""},
    [M_AUTH_OK] = {&f_auth, "result=\"success\""},
    [M_AUTH_FAIL] = {&f_auth, "result=\"failure\""},
    [M_CLOSED_IDLE] = {&f_closed, "reason=\"idle\""},
    [M_CLOSED_LINE] = {&f_closed, "reason=\"line\""},
    [M_CLOSED_DATA] = {&f_closed, "reason=\"data\""},
    [M_CLOSED_RATE] = {&f_closed, "reason=\"rate\""},
    [M_CLOSED_EVICTED] = {&f_closed, "reason=\"evicted\""},
    [M_OUT_TLS_PLAINTEXT] = {&f_out_tls, "policy=\"plaintext\""},
    [M_OUT_TLS_OPPORTUNISTIC] = {&f_out_tls, "policy=\"opportunistic\""},
    [M_OUT_TLS_ENCRYPT] = {&f_out_tls, "policy=\"encrypt\""},
    [M_OUT_TLS_VERIFY] = {&f_out_tls, "policy=\"verify\""},
    [M_OUT_TLS_MTA_STS] = {&f_out_tls, "policy=\"mta-sts\""},
    [M_OUT_TLS_DANE] = {&f_out_tls, "policy=\"dane\""},
    [M_OUT_TLSF_STARTTLS] = {&f_out_tlsf, "result=\"starttls-not-supported\""},
    [M_OUT_TLSF_HOST_MISMATCH] = {&f_out_tlsf, "result=\"certificate-host-mismatch\""},
    [M_OUT_TLSF_EXPIRED] = {&f_out_tlsf, "result=\"certificate-expired\""},
    [M_OUT_TLSF_NOT_TRUSTED] = {&f_out_tlsf, "result=\"certificate-not-trusted\""},
    [M_OUT_TLSF_VALIDATION] = {&f_out_tlsf, "result=\"validation-failure\""},
    [M_OUT_TLSF_TLSA_INVALID] = {&f_out_tlsf, "result=\"tlsa-invalid\""},
    [M_OUT_TLSF_DNSSEC_INVALID] = {&f_out_tlsf, "result=\"dnssec-invalid\""},
    [M_OUT_TLSF_DANE_REQUIRED] = {&f_out_tlsf, "result=\"dane-required\""},
    [M_OUT_TLSF_STS_FETCH] = {&f_out_tlsf, "result=\"sts-policy-fetch-error\""},
    [M_OUT_TLSF_STS_INVALID] = {&f_out_tlsf, "result=\"sts-policy-invalid\""},
    [M_OUT_TLSF_STS_WEBPKI] = {&f_out_tlsf, "result=\"sts-webpki-invalid\""},
    [M_STS_FETCH_OK] = {&f_sts_fetch, "result=\"ok\""},
    [M_STS_FETCH_ERR] = {&f_sts_fetch, "result=\"error\""},
    [M_RATE_LIMITED_MSGS] = {&f_rate_limited, "limit=\"messages\""},
    [M_RATE_LIMITED_RCPTS] = {&f_rate_limited, "limit=\"recipients\""},
};

static const struct hist_def hists[H__COUNT] = {
    /* a local caching resolver answers in under a millisecond; c-ares gives up after seconds */
    [H_DNS_SECONDS] = {&f_dns, 11, {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}},
    /* connect + TLS + transaction to one or many MX hosts; timeouts are minutes */
    [H_DELIVERY_SECONDS] = {&f_delivery,
                            12,
                            {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}},
};

static _Atomic uint64_t cval[M__COUNT];
static _Atomic int64_t gval[G__COUNT];
/* per bucket (not cumulative: summed when rendered), the last one is +Inf */
static _Atomic uint64_t hcount[H__COUNT][HIST_MAX_BUCKETS + 1];
static _Atomic uint64_t hsum_us[H__COUNT]; /* sum in microseconds: integer atomics */

void
metrics_inc(enum metric_counter c)
{
	if ((unsigned)c < M__COUNT)
		atomic_fetch_add_explicit(&cval[c], 1, memory_order_relaxed);
}

void
metrics_gauge_set(enum metric_gauge g, int64_t v)
{
	if ((unsigned)g < G__COUNT)
		atomic_store_explicit(&gval[g], v, memory_order_relaxed);
}

void
metrics_gauge_add(enum metric_gauge g, int64_t delta)
{
	if ((unsigned)g < G__COUNT)
		atomic_fetch_add_explicit(&gval[g], delta, memory_order_relaxed);
}

void
metrics_observe(enum metric_hist h, double seconds)
{
	const struct hist_def *d;
	size_t i;

	if ((unsigned)h >= H__COUNT)
		return;
	d = &hists[h];
	if (!(seconds > 0)) /* also NaN */
		seconds = 0;
	if (seconds > 1e9)
		seconds = 1e9; /* keeps the microsecond sum far from overflow */
	for (i = 0; i < d->nb && seconds > d->le[i]; i++)
		;
	atomic_fetch_add_explicit(&hcount[h][i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hsum_us[h], (uint64_t)(seconds * 1e6 + 0.5),
	                          memory_order_relaxed);
}

void
metrics_tls_seen(const char *version)
{
	static const struct {
		const char *name;
		enum metric_counter c;
	} map[] = {{"TLSv1", M_TLS_V10},
	           {"TLSv1.1", M_TLS_V11},
	           {"TLSv1.2", M_TLS_V12},
	           {"TLSv1.3", M_TLS_V13}};
	size_t i;

	for (i = 0; version != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(version, map[i].name) == 0) {
			metrics_inc(map[i].c);
			return;
		}
	metrics_inc(M_TLS_OTHER);
}

void
metrics_reject(enum reply_class cls)
{
	switch (cls) {
	case RC_SIZE:
		metrics_inc(M_REJ_SIZE);
		break;
	case RC_CONTENT:
		metrics_inc(M_REJ_CONTENT);
		break;
	case RC_SYSTEM:
		metrics_inc(M_REJ_SYSTEM);
		break;
	case RC_POLICY:
	case RC_NONE:
		metrics_inc(M_REJ_POLICY);
		break;
	}
}

uint64_t
metrics_counter(enum metric_counter c)
{
	return (unsigned)c < M__COUNT ? atomic_load_explicit(&cval[c], memory_order_relaxed) : 0;
}

int64_t
metrics_gauge(enum metric_gauge g)
{
	return (unsigned)g < G__COUNT ? atomic_load_explicit(&gval[g], memory_order_relaxed) : 0;
}

void
metrics_reset(void)
{
	size_t i, j;

	for (i = 0; i < M__COUNT; i++)
		atomic_store(&cval[i], 0);
	for (i = 0; i < G__COUNT; i++)
		atomic_store(&gval[i], 0);
	for (i = 0; i < H__COUNT; i++) {
		for (j = 0; j <= HIST_MAX_BUCKETS; j++)
			atomic_store(&hcount[i][j], 0);
		atomic_store(&hsum_us[i], 0);
	}
}

/* An output cursor that keeps counting past the end, like snprintf. */
struct out {
	char *buf;
	size_t len, pos;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room = o->pos < o->len ? o->len - o->pos : 0;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->pos : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos += (size_t)n;
}

static void
header(struct out *o, const struct family *f)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
}

static void
render_hist(struct out *o, enum metric_hist h)
{
	const struct hist_def *d = &hists[h];
	uint64_t cum = 0, sum = atomic_load_explicit(&hsum_us[h], memory_order_relaxed);
	size_t i;

	header(o, d->fam);
	/* cumulative from one read per bucket: monotonic, and _count equals the +Inf bucket */
	for (i = 0; i <= d->nb; i++) {
		cum += atomic_load_explicit(&hcount[h][i], memory_order_relaxed);
		if (i < d->nb)
			put(o, "%s_bucket{le=\"%g\"} %llu\n", d->fam->name, d->le[i],
			    (unsigned long long)cum);
		else
			put(o, "%s_bucket{le=\"+Inf\"} %llu\n", d->fam->name,
			    (unsigned long long)cum);
	}
	put(o, "%s_sum %llu.%06llu\n", d->fam->name, (unsigned long long)(sum / 1000000),
	    (unsigned long long)(sum % 1000000));
	put(o, "%s_count %llu\n", d->fam->name, (unsigned long long)cum);
}

size_t
metrics_render(char *buf, size_t len, time_t now)
{
	struct out o = {buf, len, 0};
	int64_t oldest = metrics_gauge(G_QUEUE_OLDEST);
	size_t i;

	if (len > 0)
		buf[0] = '\0';
	for (i = 0; i < M__COUNT; i++) {
		const struct counter_def *c = &counters[i];
		unsigned long long v = (unsigned long long)metrics_counter((enum metric_counter)i);
		if (i == 0 || counters[i - 1].fam != c->fam)
			header(&o, c->fam);
		if (c->labels)
			put(&o, "%s{%s} %llu\n", c->fam->name, c->labels, v);
		else
			put(&o, "%s %llu\n", c->fam->name, v);
	}
	header(&o, &f_sessions);
	put(&o, "%s %lld\n", f_sessions.name, (long long)metrics_gauge(G_SESSIONS));
	header(&o, &f_queue);
	/* held ones too, labelled (issue 16: the gauge said 0 with held messages) */
	put(&o, "%s{state=\"queued\"} %lld\n", f_queue.name,
	    (long long)metrics_gauge(G_QUEUE_MESSAGES));
	put(&o, "%s{state=\"held\"} %lld\n", f_queue.name, (long long)metrics_gauge(G_QUEUE_HELD));
	header(&o, &f_queue_age);
	put(&o, "%s %lld\n", f_queue_age.name,
	    (long long)(oldest > 0 && now > oldest ? now - oldest : 0));
	header(&o, &f_spool_free);
	put(&o, "%s %lld\n", f_spool_free.name, (long long)metrics_gauge(G_SPOOL_FREE));
	header(&o, &f_intake_paused);
	put(&o, "%s %lld\n", f_intake_paused.name, (long long)metrics_gauge(G_INTAKE_PAUSED));
	header(&o, &f_unrecorded);
	put(&o, "%s %lld\n", f_unrecorded.name, (long long)metrics_gauge(G_RESULTS_UNRECORDED));
	for (i = 0; i < H__COUNT; i++)
		render_hist(&o, (enum metric_hist)i);
	if (len > 0 && o.pos >= len)
		buf[len - 1] = '\0';
	return o.pos;
}
