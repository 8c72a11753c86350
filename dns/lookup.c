/*
 * lookup: one (name, type) question answered from the cache or by c-ares,
 * following CNAME chains that an answer leaves dangling (the server did not
 * include the target's records), at most DNS_MAX_CHAIN hops.
 *
 * c-ares has no per-query cancel, so a cancelled lookup stays allocated,
 * orphaned (cb NULL), until c-ares calls back; its answer is still cached.
 * Lifetime: whoever is outermost on the stack when the lookup is finished
 * frees it (`starting` counts ares_send calls in progress for it, since
 * c-ares may call back from inside ares_send).
 *
 * Every query carries the AD bit (RFC 6840 5.7: a stub resolver that sets
 * AD asks for AD in the answer); ares_query cannot set it, so the query is
 * built with ares_create_query and sent with ares_send. No EDNS DO bit:
 * the AD bit is all we read, RRSIGs would only add bytes. The lookup's
 * `secure` is the AND of the AD bits of every answer on its CNAME chain.
 */
#include "dns/dns_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C_IN 1

struct dns_lookup {
	struct dns *d;
	dns_lookup_cb cb; /* NULL once finished or cancelled */
	void *arg;
	int type, hops;
	int starting; /* ares_send calls for this lookup on the stack */
	bool done;
	bool secure; /* every answer so far had AD */
	char name[256];
};

enum { STEP_DONE, STEP_PENDING };

static void
finish(struct dns_lookup *lk, enum dns_akind kind, const struct dns_answer *a, const char *why)
{
	dns_lookup_cb cb = lk->cb;

	lk->cb = NULL;
	lk->done = true;
	if (cb)
		cb(lk->arg, kind, a, kind != DNS_A_TEMPFAIL && lk->secure, why);
}

static const char *
kind_text(enum dns_akind k, int type)
{
	switch (k) {
	case DNS_A_NXDOMAIN:
		return "NXDOMAIN";
	case DNS_A_NODATA:
		switch (type) {
		case DNS_T_A:
			return "no A record";
		case DNS_T_AAAA:
			return "no AAAA record";
		case DNS_T_MX:
			return "no MX record";
		case DNS_T_TXT:
			return "no TXT record";
		default:
			return "no TLSA record";
		}
	default:
		return "";
	}
}

static const char *
ares_text(int status)
{
	switch (status) {
	case ARES_ETIMEOUT:
		return "timeout";
	case ARES_ECONNREFUSED:
		return "connection refused";
	case ARES_ESERVFAIL:
		return "SERVFAIL";
	case ARES_EREFUSED:
		return "REFUSED";
	case ARES_ENOTIMP:
		return "NOTIMP";
	case ARES_EFORMERR:
		return "FORMERR";
	default:
		return ares_strerror(status);
	}
}

static void
cache_answer(struct dns *d, const char *name, int type, struct dns_answer *a)
{
	bool neg = a->kind == DNS_A_NXDOMAIN || a->kind == DNS_A_NODATA;
	int64_t ttl = a->ttl, max = neg ? DNS_NEG_TTL_MAX : DNS_TTL_MAX;

	if (d->cache == NULL)
		return;
	if (ttl > max)
		ttl = max;
	if (ttl < d->min_ttl)
		ttl = d->min_ttl;
	dns__cache_put(d->cache, name, type, a, dns__now() + ttl * 1000);
}

/*
 * Move on to the CNAME target of answer a; false (lookup finished) when too
 * deep. The chain stays secure only if this hop's answer was.
 */
static bool
next_hop(struct dns_lookup *lk, const struct dns_answer *a)
{
	const char *target = a->cname;

	lk->secure = lk->secure && a->secure;
	if (lk->hops++ == DNS_MAX_CHAIN || strlen(target) > 255) {
		finish(lk, DNS_A_TEMPFAIL, NULL, "CNAME chain too long");
		return false;
	}
	memmove(lk->name, target, strlen(target) + 1);
	return true;
}

static void on_ares(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/* Ask c-ares: rd=1, AD set, no EDNS (c-ares picks the id). */
static int
send_query(struct dns_lookup *lk)
{
	struct dns *d = lk->d;
	unsigned char *q = NULL;
	int qlen = 0, rc;

	rc = ares_create_query(lk->name, C_IN, lk->type, 0, 1, &q, &qlen, 0);
	if (rc != ARES_SUCCESS || qlen < 12) {
		ares_free_string(q);
		finish(lk, DNS_A_TEMPFAIL, NULL,
		       ares_text(rc == ARES_SUCCESS ? ARES_EBADQUERY : rc));
		return STEP_DONE;
	}
	q[3] |= DNS_HDR_AD & 0xff; /* RFC 6840 5.7 */
	d->st.queries_sent++;
	lk->starting++;
	ares_send(d->ch, q, qlen, on_ares, lk);
	lk->starting--;
	ares_free_string(q);
	return lk->done ? STEP_DONE : STEP_PENDING;
}

/* Answer from the cache as far as it goes, else ask c-ares. */
static int
step(struct dns_lookup *lk)
{
	struct dns *d = lk->d;
	struct dns_answer *a;

	while (d->cache && (a = dns__cache_get(d->cache, lk->name, lk->type, dns__now()))) {
		d->st.cache_hits++;
		if (a->kind == DNS_A_CNAME) {
			if (!next_hop(lk, a))
				return STEP_DONE;
			continue;
		}
		lk->secure = lk->secure && a->secure;
		a->refs++; /* the callback may evict it */
		finish(lk, a->kind, a, kind_text(a->kind, lk->type));
		dns__answer_unref(a);
		return STEP_DONE;
	}
	return send_query(lk);
}

static void
on_ares(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_lookup *lk = arg;
	struct dns_answer *a = NULL;
	char why[64];

	(void)timeouts;
	if (status == ARES_EDESTRUCTION) {
		/* dns_free: every owner is gone already */
		lk->cb = NULL;
		lk->done = true;
		goto done;
	}
	if ((status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND) &&
	    abuf && alen > 0) {
		a = dns__parse(abuf, (size_t)alen, lk->name, lk->type, why, sizeof why);
	} else {
		snprintf(why, sizeof why, "%s", ares_text(status));
	}
	if (a == NULL) {
		finish(lk, DNS_A_TEMPFAIL, NULL, why);
		goto done;
	}
	cache_answer(lk->d, lk->name, lk->type, a);
	if (a->kind != DNS_A_CNAME) {
		lk->secure = lk->secure && a->secure;
		finish(lk, a->kind, a, kind_text(a->kind, lk->type));
	} else if (lk->cb == NULL) {
		lk->done = true; /* cancelled: no need to chase */
	} else if (next_hop(lk, a)) {
		step(lk);
	}
done:
	dns__answer_unref(a);
	if (lk->done && lk->starting == 0)
		free(lk);
}

struct dns_lookup *
dns__lookup(struct dns *d, const char *name, int type, dns_lookup_cb cb, void *arg)
{
	struct dns_lookup *lk = calloc(1, sizeof *lk);

	if (lk == NULL || strlen(name) > 255) {
		cb(arg, DNS_A_TEMPFAIL, NULL, false, lk ? "name too long" : "out of memory");
		free(lk);
		return NULL;
	}
	lk->d = d;
	lk->cb = cb;
	lk->arg = arg;
	lk->type = type;
	lk->secure = true;
	memcpy(lk->name, name, strlen(name) + 1);
	if (step(lk) == STEP_DONE) {
		free(lk);
		return NULL;
	}
	return lk;
}

void
dns__lookup_cancel(struct dns_lookup *lk)
{
	if (lk)
		lk->cb = NULL;
}
