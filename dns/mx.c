/*
 * mx: the MX pipeline of one query (see dns.h for the contract).
 *
 * MX lookup -> NXDOMAIN (5.1.2), null MX (RFC 7505, 5.1.10), no MX records
 * (implicit MX, RFC 5321 5.1: the domain itself, preference 0) or a host
 * list: deduplicated, sorted by preference with ties shuffled (RFC 5321
 * 5.1: "MUST randomize"), cut at max_mx. Then A and/or AAAA for every host
 * at once; a host whose lookups fail is skipped, the others still count.
 * When all are answered the addresses that pass the policy become the
 * targets. The query finishes through dns__finished(), never calling back.
 * dns_resolve_addrs runs the same pipeline from the A/AAAA step for one host.
 */
#include "dns/dns_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mx_fam {
	struct mx_host *h;
	int type; /* DNS_T_AAAA or DNS_T_A */
	bool asked;
	struct dns_lookup *lk; /* in flight */
	enum dns_akind kind;
	bool secure; /* the answer (and CNAMEs to it) had AD */
	char why[48];
	size_t n;
	uint8_t (*addr)[16];
};

struct mx_host {
	struct dns_query *q;
	char name[256];
	int pref;
	uint32_t key;       /* random tie-breaker */
	struct mx_fam f[2]; /* [0] AAAA, [1] A */
};

/* Append "; text" (or "text" to an empty buffer); truncation is fine for a log line. */
static void note(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
note(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 3 >= size)
		return;
	if (used) {
		memcpy(buf + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

#define reason_add(q, ...) note((q)->res.reason, sizeof(q)->res.reason, __VA_ARGS__)

static void
finish(struct dns_query *q, enum dns_status st)
{
	q->res.status = st;
	dns__finished(q);
}

/* ---- addresses ---- */

static void
shuffle(struct dns *d, uint8_t (*a)[16], size_t n)
{
	uint8_t tmp[16];

	for (size_t i = n; i > 1; i--) {
		size_t j = dns__rand(d) % i;
		memcpy(tmp, a[i - 1], 16);
		memcpy(a[i - 1], a[j], 16);
		memcpy(a[j], tmp, 16);
	}
}

static void
to_sockaddr(int family, const uint8_t *addr, struct dns_target *t)
{
	memset(&t->addr, 0, sizeof t->addr);
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, addr, 4);
		t->addrlen = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, addr, 16);
		t->addrlen = sizeof *s6;
	}
}

static bool
have_target(const struct dns_query *q, const struct dns_target *t)
{
	for (size_t i = 0; i < q->res.ntargets; i++)
		if (q->targets[i].addrlen == t->addrlen &&
		    memcmp(&q->targets[i].addr, &t->addr, t->addrlen) == 0)
			return true;
	return false;
}

/*
 * Move the host's addresses that pass the policy to the front of each
 * family's array; return how many were refused and describe the first.
 */
static size_t
filter(struct dns_query *q, struct mx_host *h, char *refusal, size_t rlen)
{
	size_t refused = 0;

	for (int fi = 0; fi < 2; fi++) {
		struct mx_fam *f = &h->f[fi];
		int family = f->type == DNS_T_A ? AF_INET : AF_INET6;
		size_t keep = 0;
		for (size_t i = 0; i < f->n; i++) {
			const char *why =
			    dns__addr_refusal(family, f->addr[i], q->d->allow_private);
			if (why == NULL) {
				memmove(f->addr[keep++], f->addr[i], 16);
				continue;
			}
			if (refused++ == 0) {
				char ip[INET6_ADDRSTRLEN];
				inet_ntop(family, f->addr[i], ip, sizeof ip);
				snprintf(refusal, rlen, "%s[%s]: %s refused", h->name, ip, why);
			}
		}
		f->n = keep;
	}
	return refused;
}

/* Add up to max_addrs targets for h: IPv6 and IPv4 interleaved, IPv6 first. */
static size_t
add_host_targets(struct dns_query *q, struct mx_host *h)
{
	size_t idx[2] = {0, 0}, added = 0;
	int turn = 0;

	shuffle(q->d, h->f[0].addr, h->f[0].n);
	shuffle(q->d, h->f[1].addr, h->f[1].n);
	while (added < (size_t)q->d->max_addrs && (idx[0] < h->f[0].n || idx[1] < h->f[1].n)) {
		if (idx[turn] >= h->f[turn].n)
			turn = !turn;
		struct mx_fam *f = &h->f[turn];
		struct dns_target *t = &q->targets[q->res.ntargets];
		to_sockaddr(f->type == DNS_T_A ? AF_INET : AF_INET6, f->addr[idx[turn]++], t);
		turn = !turn;
		if (have_target(q, t))
			continue;
		snprintf(t->host, sizeof t->host, "%s", h->name);
		t->pref = h->pref;
		t->secure = f->secure;
		q->res.ntargets++;
		added++;
	}
	return added;
}

/* Why a host gave no address, from its lookups. */
static const char *
host_why(const struct mx_host *h, bool *temp)
{
	const struct mx_fam *a6 = &h->f[0], *a4 = &h->f[1];

	*temp =
	    (a6->asked && a6->kind == DNS_A_TEMPFAIL) || (a4->asked && a4->kind == DNS_A_TEMPFAIL);
	if (a6->asked && a4->asked) {
		if (*temp)
			return a6->kind == DNS_A_TEMPFAIL ? a6->why : a4->why;
		if (a6->kind == DNS_A_NXDOMAIN || a4->kind == DNS_A_NXDOMAIN)
			return "NXDOMAIN";
		return a4->n + a6->n ? "no usable address" : "no A or AAAA record";
	}
	return a6->asked ? a6->why : a4->why;
}

/* The host name does not exist: an NXDOMAIN answer for it (RFC 8020: nor anything below). */
static bool
host_nxdomain(const struct mx_host *h)
{
	return (h->f[0].asked && h->f[0].kind == DNS_A_NXDOMAIN) ||
	       (h->f[1].asked && h->f[1].kind == DNS_A_NXDOMAIN);
}

/* Every host lookup is answered: build the targets and the status. */
static void
assemble(struct dns_query *q)
{
	bool any_temp = false, any_refused = false, all_nx = true;
	char refusal[160], notes[sizeof q->res.reason] = "";

	q->targets = calloc(q->nhosts * (size_t)q->d->max_addrs, sizeof *q->targets);
	if (q->targets == NULL) {
		reason_add(q, "%s: out of memory", q->domain);
		finish(q, DNS_TEMPFAIL);
		return;
	}
	q->res.targets = q->targets;
	for (size_t i = 0; i < q->nhosts; i++) {
		struct mx_host *h = &q->hosts[i];
		bool temp;
		const char *why = host_why(h, &temp);
		size_t refused = filter(q, h, refusal, sizeof refusal);
		size_t usable = h->f[0].n + h->f[1].n;
		if (add_host_targets(q, h) > 0 || usable > 0)
			continue; /* used, or every address already listed for a better host */
		if (temp) {
			any_temp = true;
			note(notes, sizeof notes, "%s: %s", h->name, why);
		} else if (refused) {
			any_refused = true;
			note(notes, sizeof notes, "%s", refusal);
		} else {
			note(notes, sizeof notes, "%s: %s", h->name, why);
		}
		all_nx = all_nx && !temp && !refused && host_nxdomain(h);
	}
	if (q->res.ntargets > 0) {
		if (notes[0])
			reason_add(q, "skipped %s", notes);
		finish(q, DNS_OK);
	} else if (any_temp) {
		reason_add(q, "%s: %s lookup failed: %s", q->domain,
		           q->host_only ? "address" : "MX host", notes);
		finish(q, DNS_TEMPFAIL);
	} else if (all_nx && !q->res.implicit) {
		/* MX records name hosts that do not exist: no retry can help (Postfix bounces
		 * them at once as "Host or domain name not found", 5.4.4) */
		reason_add(q, "%s: no MX host exists: %s", q->domain, notes);
		finish(q, DNS_MX_NXDOMAIN);
	} else if (any_refused || !q->res.implicit) {
		reason_add(q, "%s: no usable %saddress: %s", q->domain, q->host_only ? "" : "MX ",
		           notes);
		finish(q, DNS_NO_ADDRESS);
	} else if (q->host_only) {
		reason_add(q, "%s", notes);
		finish(q, DNS_NXDOMAIN);
	} else {
		/* RFC 5321 5.1: no MX and no address record: not a mail domain */
		reason_add(q, "%s: no MX and no address records", q->domain);
		finish(q, DNS_NXDOMAIN);
	}
}

static void
on_addr(void *arg, enum dns_akind kind, const struct dns_answer *a, bool secure, const char *why)
{
	struct mx_fam *f = arg;
	struct dns_query *q = f->h->q;

	f->lk = NULL;
	f->kind = kind;
	f->secure = secure;
	snprintf(f->why, sizeof f->why, "%s", why);
	if (kind == DNS_A_DATA && a->n > 0 && (f->addr = calloc(a->n, 16)) != NULL) {
		for (size_t i = 0; i < a->n; i++)
			memcpy(f->addr[i], a->rr[i].addr, 16);
		f->n = a->n;
	}
	if (--q->pending == 0)
		assemble(q);
}

/* Ask A and/or AAAA for every host; cache hits complete on the spot. */
static void
start_hosts(struct dns_query *q)
{
	enum dns_family fam = q->d->family;

	q->pending = 1; /* keeps assemble() from running before the loop ends */
	for (size_t i = 0; i < q->nhosts; i++) {
		struct mx_host *h = &q->hosts[i];
		h->q = q;
		h->f[0].type = DNS_T_AAAA;
		h->f[1].type = DNS_T_A;
		h->f[0].asked = fam != DNS_FAMILY_IPV4;
		h->f[1].asked = fam != DNS_FAMILY_IPV6;
		for (int fi = 0; fi < 2; fi++) {
			struct mx_fam *f = &h->f[fi];
			f->h = h;
			if (!f->asked)
				continue;
			q->pending++;
			f->lk = dns__lookup(q->d, h->name, f->type, on_addr, f);
		}
	}
	if (--q->pending == 0)
		assemble(q);
}

/* ---- the MX answer ---- */

static int
host_cmp(const void *x, const void *y)
{
	const struct mx_host *a = x, *b = y;

	if (a->pref != b->pref)
		return a->pref < b->pref ? -1 : 1;
	return a->key < b->key ? -1 : a->key > b->key;
}

/* Hosts from the MX records: valid names, each once at its best preference. */
static size_t
collect_hosts(struct dns_query *q, const struct dns_answer *a, struct mx_host *hosts, bool *null_mx)
{
	size_t n = 0;

	*null_mx = false;
	for (size_t i = 0; i < a->n; i++) {
		char name[256];
		size_t j;
		if (a->rr[i].name[0] == '\0') {
			*null_mx =
			    true; /* RFC 7505: only meaningful alone; ignored next to others */
			continue;
		}
		if (dns__normalize(a->rr[i].name, name) < 0) {
			reason_add(q, "bad MX host name ignored");
			continue;
		}
		for (j = 0; j < n && strcmp(hosts[j].name, name) != 0; j++)
			;
		if (j < n) {
			if (a->rr[i].pref < hosts[j].pref)
				hosts[j].pref = a->rr[i].pref;
			continue;
		}
		memcpy(hosts[n].name, name, sizeof name);
		hosts[n].pref = a->rr[i].pref;
		hosts[n].key = dns__rand(q->d);
		n++;
	}
	return n;
}

static void
mx_hosts(struct dns_query *q, const struct dns_answer *a)
{
	bool null_mx;
	size_t n;

	if ((q->hosts = calloc(a->n ? a->n : 1, sizeof *q->hosts)) == NULL) {
		reason_add(q, "%s: out of memory", q->domain);
		finish(q, DNS_TEMPFAIL);
		return;
	}
	n = collect_hosts(q, a, q->hosts, &null_mx);
	if (n == 0 && null_mx) {
		reason_add(q, "%s: domain accepts no mail (null MX, RFC 7505)", q->domain);
		finish(q, DNS_NULL_MX);
		return;
	}
	if (n == 0) {
		reason_add(q, "%s: no valid MX host", q->domain);
		finish(q, DNS_NO_ADDRESS);
		return;
	}
	qsort(q->hosts, n, sizeof *q->hosts, host_cmp);
	q->nhosts = n < (size_t)q->d->max_mx ? n : (size_t)q->d->max_mx;
	start_hosts(q);
}

static void
on_mx(void *arg, enum dns_akind kind, const struct dns_answer *a, bool secure, const char *why)
{
	struct dns_query *q = arg;

	q->mxlk = NULL;
	q->res.mx_secure = secure; /* for NODATA: a secure denial, then the implicit MX */
	switch (kind) {
	case DNS_A_DATA:
		mx_hosts(q, a);
		break;
	case DNS_A_NODATA:
		/* RFC 5321 5.1: implicit MX, the domain itself at preference 0 */
		if ((q->hosts = calloc(1, sizeof *q->hosts)) == NULL) {
			reason_add(q, "%s: out of memory", q->domain);
			finish(q, DNS_TEMPFAIL);
			break;
		}
		memcpy(q->hosts[0].name, q->domain, sizeof q->domain);
		q->nhosts = 1;
		q->res.implicit = true;
		start_hosts(q);
		break;
	case DNS_A_NXDOMAIN:
		reason_add(q, "%s: domain not found (NXDOMAIN)", q->domain);
		finish(q, DNS_NXDOMAIN);
		break;
	default:
		reason_add(q, "%s: MX lookup failed: %s", q->domain, why);
		finish(q, DNS_TEMPFAIL);
		break;
	}
}

/* q->discard: free a query without calling back (dns_cancel, dns_free). */
static void
query_discard(struct dns_query *q)
{
	dns__lookup_cancel(q->mxlk);
	for (size_t i = 0; i < q->nhosts; i++) {
		for (int fi = 0; fi < 2; fi++) {
			dns__lookup_cancel(q->hosts[i].f[fi].lk);
			free(q->hosts[i].f[fi].addr);
		}
	}
	free(q->hosts);
	free(q->targets);
	free(q);
}

/* q->complete: call back, then free (the drain in dns.c). */
static void
query_deliver(struct dns_query *q)
{
	q->cb(q->arg, &q->res);
	query_discard(q);
}

/* A new query on d for domain, linked; NULL with errno set. */
static struct dns_query *
query_new(struct dns *d, const char *domain, dns_mx_cb cb, void *arg)
{
	struct dns_query *q;
	char name[256];

	if (domain == NULL || cb == NULL || strlen(domain) > 254 ||
	    dns__normalize(domain, name) < 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((q = calloc(1, sizeof *q)) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->complete = query_deliver;
	q->discard = query_discard;
	memcpy(q->domain, name, sizeof name);
	dns__query_link(q);
	return q;
}

struct dns_query *
dns_resolve_mx(struct dns *d, const char *domain, dns_mx_cb cb, void *arg)
{
	struct dns_query *q = query_new(d, domain, cb, arg);

	if (q == NULL)
		return NULL;
	q->mxlk = dns__lookup(d, q->domain, DNS_T_MX, on_mx, q);
	dns__notify_timer(d);
	return q;
}

/*
 * One host's addresses (dns.h): the MX pipeline from the address step on,
 * with the host as its only "MX" (implicit, preference 0).
 */
struct dns_query *
dns_resolve_addrs(struct dns *d, const char *host, dns_mx_cb cb, void *arg)
{
	struct dns_query *q = query_new(d, host, cb, arg);

	if (q == NULL)
		return NULL;
	if ((q->hosts = calloc(1, sizeof *q->hosts)) == NULL) {
		dns__query_unlink(q);
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(q->hosts[0].name, q->domain, sizeof q->domain);
	q->nhosts = 1;
	q->res.implicit = true;
	q->host_only = true;
	start_hosts(q);
	dns__notify_timer(d);
	return q;
}
