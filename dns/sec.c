/*
 * sec: the DNSSEC-aware lookups for transport security (dns.h): TLSA for
 * DANE (RFC 7672), TXT for MTA-STS and TLS-RPT (RFC 8461 3.1, RFC 8460 3),
 * and whether the resolver's AD bit may be trusted at all.
 *
 * A TLSA or TXT query is one (name, type) lookup (lookup.c: cache, CNAME
 * chain, AD ANDed along it) wrapped in a dns_query, so dns.c delivers and
 * cancels it like an MX query: the result waits in the done list and the
 * callback runs from the next drain, never inside dns_resolve_*, never
 * after dns_cancel. One host's addresses (dns_resolve_addrs) are the MX
 * pipeline's address step and live in mx.c.
 *
 * Must never: decide whether a record is usable for DANE or whether a TXT
 * is a policy; that is the caller's (mta/delivery).
 */
#include "dns/dns_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sec_query {
	struct dns_query q; /* first member: dns.c ends it through q.complete / q.discard */
	int type;           /* DNS_T_TLSA or DNS_T_TXT */
	dns_tlsa_cb tlsa_cb;
	dns_txt_cb txt_cb;
	void *arg;
	char name[256]; /* what was asked: _PORT._tcp.HOST or the TXT name */
	struct dns_lookup *lk;
	enum dns_status status;
	bool secure;
	char reason[256];
	struct dns_answer *a; /* DNS_OK: our reference to the records */
};

static void
sec_discard(struct dns_query *q)
{
	struct sec_query *s = (struct sec_query *)q;

	dns__lookup_cancel(s->lk);
	dns__answer_unref(s->a);
	free(s);
}

static void
deliver_tlsa(struct sec_query *s)
{
	struct dns_tlsa_rec recs[DNS_MAX_RR];
	struct dns_tlsa_result res = {.status = s->status, .secure = s->secure, .recs = recs};

	memcpy(res.reason, s->reason, sizeof res.reason);
	for (size_t i = 0; s->a && i < s->a->n; i++) {
		const struct dns_rr *rr = &s->a->rr[i];
		recs[i].usage = rr->tlsa[0];
		recs[i].selector = rr->tlsa[1];
		recs[i].mtype = rr->tlsa[2];
		recs[i].data = rr->data;
		recs[i].len = rr->len;
		res.n++;
	}
	s->tlsa_cb(s->arg, &res);
}

static void
deliver_txt(struct sec_query *s)
{
	struct dns_txt txt[DNS_MAX_RR];
	struct dns_txt_result res = {.status = s->status, .secure = s->secure, .txt = txt};

	memcpy(res.reason, s->reason, sizeof res.reason);
	for (size_t i = 0; s->a && i < s->a->n; i++) {
		txt[i].data = (const char *)s->a->rr[i].data;
		txt[i].len = s->a->rr[i].len;
		res.n++;
	}
	s->txt_cb(s->arg, &res);
}

/* q->complete: call back (from the drain in dns.c), then free. */
static void
sec_deliver(struct dns_query *q)
{
	struct sec_query *s = (struct sec_query *)q;

	if (s->type == DNS_T_TLSA)
		deliver_tlsa(s);
	else
		deliver_txt(s);
	sec_discard(q);
}

/*
 * The lookup's end: NXDOMAIN and NODATA are both "none" (RFC 7672 2.2:
 * a secure denial means no DANE; RFC 8461 3.1: no TXT means no policy);
 * the denial's AD bit is kept for callers that care. Anything else that
 * did not produce records (SERVFAIL, timeout, malformed, a CNAME chain too
 * long) is TEMPFAIL: RFC 7672 2.2 forbids treating a failed TLSA lookup as
 * "no TLSA".
 */
static void
on_lookup(void *arg, enum dns_akind kind, const struct dns_answer *a, bool secure, const char *why)
{
	struct sec_query *s = arg;

	s->lk = NULL;
	s->secure = secure;
	switch (kind) {
	case DNS_A_DATA:
		s->status = DNS_OK;
		s->a = (struct dns_answer *)a;
		s->a->refs++;
		break;
	case DNS_A_NXDOMAIN:
	case DNS_A_NODATA:
		s->status = DNS_NXDOMAIN;
		snprintf(s->reason, sizeof s->reason, "%s: %s", s->name, why);
		break;
	default:
		s->status = DNS_TEMPFAIL;
		snprintf(s->reason, sizeof s->reason, "%s: %s lookup failed: %s", s->name,
		         s->type == DNS_T_TLSA ? "TLSA" : "TXT", why);
		break;
	}
	dns__finished(&s->q);
}

/* Start a lookup of type for name (already normalized, 255 bytes at most),
 * answered through tlsa_cb or txt_cb. NULL with errno ENOMEM. */
static struct dns_query *
sec_start(struct dns *d, const char *name, int type, dns_tlsa_cb tlsa_cb, dns_txt_cb txt_cb,
          void *arg)
{
	struct sec_query *s = calloc(1, sizeof *s);

	if (s == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	s->tlsa_cb = tlsa_cb;
	s->txt_cb = txt_cb;
	s->q.d = d;
	s->q.complete = sec_deliver;
	s->q.discard = sec_discard;
	s->type = type;
	s->arg = arg;
	memcpy(s->name, name, strlen(name) + 1);
	dns__query_link(&s->q);
	s->lk = dns__lookup(d, s->name, type, on_lookup, s);
	dns__notify_timer(d);
	return &s->q;
}

struct dns_query *
dns_resolve_tlsa(struct dns *d, const char *host, unsigned port, dns_tlsa_cb cb, void *arg)
{
	char norm[256], name[256];

	/* RFC 6698 3: the TLSA owner is _PORT._PROTOCOL.HOST */
	if (host == NULL || cb == NULL || port == 0 || port > 65535 || strlen(host) > 254 ||
	    dns__normalize(host, norm) < 0 ||
	    (size_t)snprintf(name, sizeof name, "_%u._tcp.%s", port, norm) > 253) {
		errno = EINVAL;
		return NULL;
	}
	return sec_start(d, name, DNS_T_TLSA, cb, NULL, arg);
}

struct dns_query *
dns_resolve_txt(struct dns *d, const char *name, dns_txt_cb cb, void *arg)
{
	char norm[256];

	if (name == NULL || cb == NULL || strlen(name) > 254 || dns__normalize(name, norm) < 0) {
		errno = EINVAL;
		return NULL;
	}
	return sec_start(d, norm, DNS_T_TXT, NULL, cb, arg);
}

static bool
loopback(const struct ares_addr_port_node *n)
{
	static const unsigned char v6_loop[16] = {[15] = 1};
	static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
	const unsigned char *a6 = (const unsigned char *)&n->addr.addr6;

	if (n->family == AF_INET)
		return (ntohl(n->addr.addr4.s_addr) >> 24) == 127;
	if (n->family != AF_INET6)
		return false;
	if (memcmp(a6, v6_loop, 16) == 0)
		return true;
	return memcmp(a6, v4_mapped, 12) == 0 && a6[12] == 127;
}

/*
 * Every server c-ares will ask, whether from dns_servers or from
 * /etc/resolv.conf, must be on loopback: the AD bit travels unsigned, so
 * it is only as good as the path to the validator (RFC 4035 4.9.3, RFC
 * 7672 2.1.1). No servers at all is not trusted either.
 */
bool
dns_resolver_trusted(const struct dns *d)
{
	struct ares_addr_port_node *servers = NULL;
	bool ok;

	if (ares_get_servers_ports(d->ch, &servers) != ARES_SUCCESS)
		return false;
	ok = servers != NULL;
	for (const struct ares_addr_port_node *n = servers; n && ok; n = n->next)
		ok = loopback(n);
	ares_free_data(servers);
	return ok;
}
