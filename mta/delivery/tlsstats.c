/*
 * tlsstats: outbound TLS counters in memory, flushed to the spool
 * (tlsstats.h). The aggregate is small: one entry per (day, domain, policy,
 * MX) and per distinct failure seen within a minute, at most MAX_ENTRIES
 * (further ones are counted as dropped and logged at flush).
 */
#include "mta/delivery/tlsstats.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mta/event.h"
#include "mta/metrics.h"
#include "mta/server.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"
#include "mta/shared/util.h"
#include "mta/writer.h"
#include "spool/spool.h"

#define FLUSH_MS 60000
#define MAX_ENTRIES 4096
#define SLOTS 8192 /* index of the entries: a power of 2, at most half full */

_Static_assert(M_OUT_TLS_DANE - M_OUT_TLS_PLAINTEXT == TLSK_DANE - TLSK_PLAINTEXT,
               "metrics policy order is enum tls_kind's");
_Static_assert(M_OUT_TLSF_STS_WEBPKI - M_OUT_TLSF_STARTTLS ==
                   TLSRES_STS_WEBPKI_INVALID - TLSRES_STARTTLS_NOT_SUPPORTED,
               "metrics result order is enum tls_result's");

/* One counter row or one failure row; strings owned. */
struct entry {
	bool fail;
	int64_t day;
	char *domain, *policy, *mx, *result, *sending_ip, *mx_ip, *detail, *pstring;
	int64_t ok, failed, delivered, verified, count;
};

/* A batch on its way to the writer: the entries and the spool's view of them. */
struct batch {
	struct writer_job wj;
	struct entry *e;
	size_t n;
	int64_t today;
};

struct tlsstats {
	struct server *srv;
	struct event *timer;
	struct entry *e;
	size_t n, cap;
	uint64_t dropped;
	/* get() runs per delivered recipient: a hash index, not a scan of up
	 * to MAX_ENTRIES rows; entry i + 1 per slot, 0 empty, open addressing */
	uint32_t slot[SLOTS];
};

static int64_t
today(void)
{
	return (int64_t)(time(NULL) / 86400);
}

static bool
same(const char *a, const char *b)
{
	return strcasecmp(a ? a : "", b ? b : "") == 0;
}

static char *
dup(const char *s)
{
	return xstrdup(s ? s : "");
}

static void
entries_free(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].domain);
		free(e[i].policy);
		free(e[i].mx);
		free(e[i].result);
		free(e[i].sending_ip);
		free(e[i].mx_ip);
		free(e[i].detail);
		free(e[i].pstring);
	}
	free(e);
}

/* FNV-1a over s lowercased (the keys compare case-insensitively), and a separator. */
static uint32_t
hash_str(uint32_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
		h = (h ^ (uint32_t)tolower(*p)) * 16777619u;
	return (h ^ 0xffu) * 16777619u;
}

static bool
key_eq(const struct entry *e, bool fail, int64_t day, const char *domain, const char *policy,
       const char *mx, const char *result, const char *sip, const char *mxip)
{
	return e->fail == fail && e->day == day && same(e->domain, domain) &&
	       same(e->policy, policy) && same(e->mx, mx) &&
	       (!fail || (same(e->result, result) && same(e->sending_ip, sip) &&
	                  same(e->mx_ip, mxip)));
}

/* The entry for this key, made when new; NULL when the table is full. */
static struct entry *
get(struct tlsstats *t, bool fail, const char *domain, const char *policy, const char *mx,
    const char *result, const char *sip, const char *mxip)
{
	int64_t day = today();
	uint32_t h = 2166136261u ^ (uint32_t)fail ^ (uint32_t)day;
	size_t i;
	struct entry *e;

	h = hash_str(hash_str(hash_str(h, domain), policy), mx);
	if (fail)
		h = hash_str(hash_str(hash_str(h, result), sip), mxip);
	for (i = h & (SLOTS - 1); t->slot[i] != 0; i = (i + 1) & (SLOTS - 1)) {
		e = &t->e[t->slot[i] - 1];
		if (key_eq(e, fail, day, domain, policy, mx, result, sip, mxip))
			return e;
	}
	if (t->n >= MAX_ENTRIES) {
		t->dropped++;
		return NULL;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->e = realloc(t->e, t->cap * sizeof(*t->e));
		if (t->e == NULL)
			abort();
	}
	e = &t->e[t->n++];
	t->slot[i] = (uint32_t)t->n;
	memset(e, 0, sizeof(*e));
	e->fail = fail;
	e->day = day;
	e->domain = dup(domain);
	e->policy = dup(policy);
	e->mx = dup(mx);
	e->result = dup(result);
	e->sending_ip = dup(sip);
	e->mx_ip = dup(mxip);
	e->detail = dup("");
	e->pstring = dup("");
	return e;
}

static void
set_pstring(struct entry *e, const char *ps)
{
	if (e != NULL && ps != NULL && *ps != '\0' && strcmp(e->pstring, ps) != 0) {
		free(e->pstring);
		e->pstring = dup(ps);
	}
}

static void
add_failure(struct tlsstats *t, const char *domain, const char *mx, const char *mx_ip,
            const char *sending_ip, const struct tls_outcome *o)
{
	struct entry *e;

	metrics_inc((enum metric_counter)(M_OUT_TLSF_STARTTLS + (o->result - 1)));
	e = get(t, true, domain, tls_kind_name(o->kind), mx, tls_result_name(o->result), sending_ip,
	        mx_ip);
	if (e == NULL)
		return;
	e->count++;
	free(e->detail);
	e->detail = dup(o->detail);
}

void
tlsstats_session(struct tlsstats *t, const char *domain, const char *mx, const char *mx_ip,
                 const char *sending_ip, const struct tls_outcome *o, bool ok,
                 const char *policy_string)
{
	struct entry *e = get(t, false, domain, tls_kind_name(o->kind), mx, NULL, NULL, NULL);
	/* RFC 8460 4.3: a session that failed the policy's checks is a failure
	 * session, also when MTA-STS testing let the mail go on (RFC 8461 5):
	 * counted once, never as a success and a failure both */
	bool met = ok && o->result == TLSRES_OK;

	if (e != NULL) {
		e->ok += met;
		e->failed += !met;
		set_pstring(e, policy_string);
	}
	if (o->result != TLSRES_OK)
		add_failure(t, domain, mx, mx_ip, sending_ip, o);
}

void
tlsstats_problem(struct tlsstats *t, const char *domain, const struct tls_outcome *o,
                 const char *policy_string)
{
	/* a zero row carries the policy string for the report */
	set_pstring(get(t, false, domain, tls_kind_name(o->kind), "", NULL, NULL, NULL),
	            policy_string);
	if (o->result != TLSRES_OK)
		add_failure(t, domain, "", "", "", o);
}

void
tlsstats_delivered(struct tlsstats *t, const char *domain, const char *mx,
                   const struct tls_outcome *o)
{
	struct entry *e = get(t, false, domain, tls_kind_name(o->kind), mx, NULL, NULL, NULL);

	metrics_inc((enum metric_counter)(M_OUT_TLS_PLAINTEXT + o->kind));
	if (e != NULL) {
		e->delivered++;
		e->verified += o->verified;
	}
}

/* The spool's rows for a batch; borrowed strings (spool.h). */
static int
store(struct spool *sp, const struct entry *e, size_t n, int64_t day, char *err, size_t errlen)
{
	struct spool_tls_row *rows = xcalloc(n ? n : 1, sizeof(*rows));
	struct spool_tls_failure *fails = xcalloc(n ? n : 1, sizeof(*fails));
	size_t nr = 0, nf = 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (e[i].fail) {
			fails[nf++] = (struct spool_tls_failure){
			    e[i].day, e[i].domain, e[i].policy, e[i].result, e[i].sending_ip,
			    e[i].mx,  e[i].mx_ip,  e[i].detail, e[i].count};
		} else {
			rows[nr++] = (struct spool_tls_row){
			    e[i].day, e[i].domain, e[i].policy,    e[i].pstring, e[i].mx,
			    e[i].ok,  e[i].failed, e[i].delivered, e[i].verified};
		}
	}
	rc = spool_tls_add(sp, rows, nr, fails, nf, day, err, errlen);
	free(rows);
	free(fails);
	return rc;
}

static int
batch_fn(struct spool *sp, void *arg, char *err, size_t errlen)
{
	struct batch *b = arg;

	return store(sp, b->e, b->n, b->today, err, errlen);
}

static void
batch_done(struct writer_job *wj)
{
	struct batch *b = wj->arg;

	if (wj->status != 0)
		log_warn("event=tls_stats_lost entries=%zu error=\"%s\"", b->n, wj->err);
	entries_free(b->e, b->n);
	free(b);
}

void
tlsstats_flush(struct tlsstats *t)
{
	struct batch *b;

	if (t->dropped) {
		log_warn("event=tls_stats_full dropped=%llu", (unsigned long long)t->dropped);
		t->dropped = 0;
	}
	if (t->n == 0 || t->srv->writer == NULL)
		return;
	b = xcalloc(1, sizeof(*b));
	b->e = t->e;
	b->n = t->n;
	b->today = today();
	t->e = NULL;
	t->n = t->cap = 0;
	memset(t->slot, 0, sizeof(t->slot));
	b->wj.kind = WRITER_FN;
	b->wj.fn = batch_fn;
	b->wj.done = batch_done;
	b->wj.arg = b;
	writer_submit(t->srv->writer, &b->wj);
}

static void
on_timer(void *arg)
{
	tlsstats_flush(arg);
}

struct tlsstats *
tlsstats_new(struct server *srv)
{
	struct tlsstats *t = xcalloc(1, sizeof(*t));

	t->srv = srv;
	t->timer = loop_timer_new(srv->base, true, on_timer, t);
	if (t->timer)
		loop_timer_add(t->timer, FLUSH_MS);
	return t;
}

void
tlsstats_free(struct tlsstats *t)
{
	struct spool *sp = NULL;
	char err[256];

	if (t == NULL)
		return;
	loop_timer_free(t->timer);
	/* the writer has stopped by now (main.c): a handle of our own, as for claims */
	if (t->n > 0 && (spool_open(&sp, t->srv->cfg->data_dir, err, sizeof(err)) != 0 ||
	                 store(sp, t->e, t->n, today(), err, sizeof(err)) != 0))
		log_err("event=spool_error what=tls_stats error=\"%s\"", err);
	if (sp)
		spool_close(sp);
	entries_free(t->e, t->n);
	free(t);
}
