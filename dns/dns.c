/*
 * dns: the handle, the c-ares channel and the delivery queue (see dns.h).
 * The query lists themselves are kept by query.c; a query is ended through
 * its own complete/discard pointers, so this file never names mx.c.
 *
 * Finished queries are never called back where they finish: they wait in
 * the done list until dns_process/dns_timeouts drain it. A drain delivers
 * only what was queued when it began, so a callback that starts a query
 * answered from the cache cannot keep the drain going forever.
 */
#include "dns/dns_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_MX 10
#define DEFAULT_MAX_ADDRS 4
#define DEFAULT_CACHE 4096
#define DEFAULT_MIN_TTL 5

static void
seed(struct dns *d)
{
	uint64_t s = 0;

	if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	}
	d->rng = s ? s : 0x9e3779b97f4a7c15ull;
}

static void
on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;

	d->sock_cb(d->cbarg, (int)fd, readable != 0, writable != 0);
}

static int
check_opts(const struct dns_opts *o, char *err, size_t errlen)
{
	const char *bad = NULL;

	if (o->family != DNS_FAMILY_ANY && o->family != DNS_FAMILY_IPV4 &&
	    o->family != DNS_FAMILY_IPV6)
		bad = "family";
	else if (o->timeout_ms < 0)
		bad = "timeout_ms";
	else if (o->tries < 0 || o->tries > 100)
		bad = "tries";
	else if (o->max_mx < 0 || o->max_mx > 100)
		bad = "max_mx";
	else if (o->max_addrs < 0 || o->max_addrs > 100)
		bad = "max_addrs";
	else if (o->min_ttl < 0 || o->min_ttl > DNS_TTL_MAX)
		bad = "min_ttl";
	if (bad)
		snprintf(err, errlen, "dns: %s out of range", bad);
	return bad ? -1 : 0;
}

static int
init_channel(struct dns *d, const struct dns_opts *o, char *err, size_t errlen)
{
	struct ares_options ao;
	int mask = ARES_OPT_FLAGS | ARES_OPT_SOCK_STATE_CB, rc;

	memset(&ao, 0, sizeof ao);
	/* without NOCHECKRESP, SERVFAIL and REFUSED both come back as ECONNREFUSED */
	ao.flags = ARES_FLAG_NOCHECKRESP;
	ao.sock_state_cb = on_sock_state;
	ao.sock_state_cb_data = d;
	if (o->timeout_ms > 0) {
		mask |= ARES_OPT_TIMEOUTMS;
		ao.timeout = o->timeout_ms;
	}
	if (o->tries > 0) {
		mask |= ARES_OPT_TRIES;
		ao.tries = o->tries;
	}
	if (o->resolv_conf) {
		mask |= ARES_OPT_RESOLVCONF;
		ao.resolvconf_path = (char *)o->resolv_conf; /* c-ares copies it */
	}
	if ((rc = ares_init_options(&d->ch, &ao, mask)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: c-ares init: %s", ares_strerror(rc));
		d->ch = NULL;
		return -1;
	}
	if (o->servers && *o->servers &&
	    (rc = ares_set_servers_ports_csv(d->ch, o->servers)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: servers \"%s\": %s", o->servers, ares_strerror(rc));
		return -1;
	}
	return 0;
}

struct dns *
dns_new(const struct dns_opts *o, dns_sock_cb sock_cb, dns_timer_cb timer_cb, void *cbarg,
        char *err, size_t errlen)
{
	static const struct dns_opts defaults;
	struct dns *d = NULL;
	int rc;

	if (o == NULL)
		o = &defaults;
	if (sock_cb == NULL) {
		snprintf(err, errlen, "dns: no socket callback");
		return NULL;
	}
	if (check_opts(o, err, errlen) < 0)
		return NULL;
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: c-ares library init: %s", ares_strerror(rc));
		return NULL;
	}
	if ((d = calloc(1, sizeof *d)) == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		goto fail;
	}
	d->sock_cb = sock_cb;
	d->timer_cb = timer_cb;
	d->cbarg = cbarg;
	d->family = o->family;
	d->allow_private = o->allow_private;
	d->max_mx = o->max_mx ? o->max_mx : DEFAULT_MAX_MX;
	d->max_addrs = o->max_addrs ? o->max_addrs : DEFAULT_MAX_ADDRS;
	d->min_ttl = o->min_ttl ? o->min_ttl : DEFAULT_MIN_TTL;
	seed(d);
	if (o->cache_size >= 0 &&
	    (d->cache = dns__cache_new(o->cache_size ? (size_t)o->cache_size : DEFAULT_CACHE)) ==
	        NULL) {
		snprintf(err, errlen, "dns: out of memory");
		goto fail;
	}
	if (init_channel(d, o, err, errlen) < 0)
		goto fail;
	return d;
fail:
	if (d) {
		if (d->ch)
			ares_destroy(d->ch);
		dns__cache_free(d->cache);
		free(d);
	}
	ares_library_cleanup();
	return NULL;
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL || q->state == Q_DELIVERING)
		return;
	dns__query_unlink(q);
	q->discard(q);
}

static void
drain(struct dns *d)
{
	struct dns_query *q;

	if (d->draining)
		return;
	d->draining = true;
	d->drain_stop = d->done_tail;
	while (d->drain_stop && (q = d->done_head) != NULL) {
		if (q == d->drain_stop)
			d->drain_stop = NULL;
		dns__query_unlink(q);
		q->state = Q_DELIVERING;
		q->complete(q);
	}
	d->draining = false;
}

void
dns_process(struct dns *d, int fd, bool readable, bool writable)
{
	ares_process_fd(d->ch, readable ? fd : ARES_SOCKET_BAD, writable ? fd : ARES_SOCKET_BAD);
	drain(d);
	dns__notify_timer(d);
}

void
dns_timeouts(struct dns *d)
{
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	drain(d);
	dns__notify_timer(d);
}

int
dns_next_timeout(struct dns *d)
{
	struct timeval tv, *t;
	long long ms;

	if (d->done_head)
		return 0;
	if ((t = ares_timeout(d->ch, NULL, &tv)) == NULL)
		return -1;
	/* round up: waking before c-ares' deadline would only spin */
	ms = (long long)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	while (d->done_head)
		dns_cancel(d->done_head);
	while (d->live)
		dns_cancel(d->live);
	ares_destroy(d->ch); /* orphaned lookups get ARES_EDESTRUCTION and free themselves */
	dns__cache_free(d->cache);
	free(d);
	ares_library_cleanup();
}

void
dns_get_stats(const struct dns *d, struct dns_stats *st)
{
	*st = d->st;
	st->cache_entries = d->cache ? dns__cache_count(d->cache) : 0;
}

void
dns_cache_flush(struct dns *d)
{
	if (d->cache)
		dns__cache_flush(d->cache);
}

const char *
dns_strerror(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "domain not found";
	case DNS_NULL_MX:
		return "domain accepts no mail (null MX)";
	case DNS_NO_ADDRESS:
		return "no usable MX address";
	case DNS_TEMPFAIL:
		return "temporary DNS failure";
	case DNS_MX_NXDOMAIN:
		return "no MX host exists (NXDOMAIN)";
	}
	return "unknown DNS status";
}
