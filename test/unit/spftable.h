/*
 * test/unit/spftable.h: a table of DNS records as a struct spf_dns, for
 * the unit test and the fuzz target of tools/spfeval: the evaluator's
 * input, not a stand-in for a DNS server (the RFC 7208 suite test runs it
 * against nsd).
 *
 * Rows are "name TYPE value": TXT, A, AAAA, MX ("PREF HOST"), PTR, CNAME,
 * or TIMEOUT (a lookup of the name for a type it has no row of fails, as
 * in the RFC 7208 test suite: spftimeout). Names compare without case
 * and without a trailing dot. A name with rows but none of the type asked
 * is NODATA, a name without rows NXDOMAIN; CNAMEs are followed (8 deep).
 */
#ifndef MXRELAY_TEST_SPFTABLE_H
#define MXRELAY_TEST_SPFTABLE_H

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "tools/spfeval.h"

struct spftable_row {
	const char *name, *type, *value;
};

struct spftable {
	const struct spftable_row *rows;
	size_t n;
	unsigned queries; /* lookups answered, for tests that count them */
};

static int
spftable_same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static enum dnsq_status
spftable_get(struct spftable *t, const char *name, const char *type, struct dnsq_list *out)
{
	int known = 0, timeout = 0;

	t->queries++;
	for (int hops = 0; hops < 8; hops++) {
		const char *cname = NULL;

		for (size_t i = 0; i < t->n; i++) {
			const struct spftable_row *r = &t->rows[i];

			if (!spftable_same(r->name, name))
				continue;
			known = 1;
			if (strcmp(r->type, "TIMEOUT") == 0)
				timeout = 1;
			if (strcmp(r->type, "CNAME") == 0)
				cname = r->value;
			if (strcmp(r->type, type) != 0)
				continue;
			char **nv = realloc(out->v, (out->n + 1) * sizeof *nv);
			if (nv == NULL)
				return DNSQ_FAIL;
			out->v = nv;
			out->v[out->n++] = strdup(r->value);
		}
		if (out->n > 0)
			return DNSQ_OK;
		if (timeout)
			return DNSQ_FAIL;
		if (cname == NULL)
			break;
		name = cname;
	}
	return known ? DNSQ_NODATA : DNSQ_NXDOMAIN;
}

static enum dnsq_status
spftable_txt(void *ctx, const char *name, struct dnsq_list *out)
{
	return spftable_get(ctx, name, "TXT", out);
}

static enum dnsq_status
spftable_addrs(void *ctx, const char *name, int family, struct dnsq_list *out)
{
	return spftable_get(ctx, name, family == AF_INET ? "A" : "AAAA", out);
}

static enum dnsq_status
spftable_mx(void *ctx, const char *name, struct dnsq_list *out)
{
	return spftable_get(ctx, name, "MX", out);
}

/* PTR of an address: its in-addr.arpa or ip6.arpa name (RFC 1035 3.5, RFC 3596 2.5). */
static enum dnsq_status
spftable_ptr(void *ctx, const char *ip, struct dnsq_list *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char a[16];
	char name[80];
	size_t pos = 0;

	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(name, sizeof name, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return spftable_get(ctx, name, "PTR", out);
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return DNSQ_FAIL;
	for (int i = 15; i >= 0; i--) {
		name[pos++] = hex[a[i] & 15];
		name[pos++] = '.';
		name[pos++] = hex[a[i] >> 4];
		name[pos++] = '.';
	}
	snprintf(name + pos, sizeof name - pos, "ip6.arpa");
	return spftable_get(ctx, name, "PTR", out);
}

/* The struct spf_dns over t (t must outlive it). */
static inline struct spf_dns
spftable_dns(struct spftable *t)
{
	struct spf_dns d = {t, spftable_txt, spftable_addrs, spftable_mx, spftable_ptr};

	return d;
}

#endif
