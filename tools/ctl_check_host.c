/*
 * ctl_check_host: the checks of mxrelayctl dns check about the relay's
 * host and the domain's mail servers (fcrdns, mx; see tools/ctl_check.c).
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- reverse DNS ---- */

static bool
same_ip(const char *a, const struct spf_ip *ip)
{
	struct spf_ip b;

	return spf_ip_parse(a, ip->family, &b) == 0 && memcmp(b.addr, ip->addr, 16) == 0;
}

/* The first PTR name whose A/AAAA records hold ip (FCrDNS), or NULL. */
static const char *
confirmed_name(const struct dnsq_list *ptr, const struct spf_ip *ip, const char *helo)
{
	const char *found = NULL;

	for (size_t i = 0; i < ptr->n; i++) {
		struct dnsq_list a;

		if (dnsq_addrs(ptr->v[i], &a) != DNSQ_OK)
			continue;
		for (size_t k = 0; k < a.n; k++) {
			if (!same_ip(a.v[k], ip))
				continue;
			/* prefer the name that is also the HELO name */
			if (found == NULL || strcasecmp(ptr->v[i], helo) == 0)
				found = ptr->v[i];
		}
		dnsq_list_free(&a);
	}
	return found;
}

void
check_fcrdns(struct ctx *c, size_t i)
{
	struct dnsq_list ptr;
	enum dnsq_status st = dnsq_ptr(c->ipstr[i], &ptr);
	const char *ip = c->ipstr[i], *name;
	char label[64];

	snprintf(label, sizeof label, "fcrdns %s", ip);
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		check_add(c, label, ST_FAIL,
		          check_fmt("%s has no PTR record; many receivers refuse such mail", ip),
		          check_fmt("ask whoever owns %s (your provider) to set its PTR to %s", ip,
		                    c->helo));
		return;
	}
	if (st != DNSQ_OK) {
		check_add(c, label, ST_FAIL,
		          check_fmt("PTR lookup of %s: %s", ip, dnsq_strerror(st)),
		          check_fmt("check again later"));
		return;
	}
	name = confirmed_name(&ptr, &c->ips[i], c->helo);
	if (name == NULL)
		check_add(c, label, ST_FAIL,
		          check_fmt("%s -> %s, but %s does not resolve back to %s (FCrDNS fails)",
		                    ip, ptr.v[0], ptr.v[0], ip),
		          check_fmt("publish %s %s %s, or point the PTR at a name that has it",
		                    ptr.v[0], c->ips[i].family == AF_INET ? "A" : "AAAA", ip));
	else if (strcasecmp(name, c->helo) != 0)
		check_add(
		    c, label, ST_WARN,
		    check_fmt("%s -> %s -> %s, but the relay says HELO %s", ip, name, ip, c->helo),
		    check_fmt("set helo_name = %s in the config (or change the PTR to %s)", name,
		              c->helo));
	else
		check_add(c, label, ST_PASS,
		          check_fmt("%s -> %s -> %s, the HELO name", ip, name, ip), NULL);
	dnsq_list_free(&ptr);
}

/* ---- MX ---- */

void
check_mx(struct ctx *c)
{
	struct dnsq_list l, a;
	enum dnsq_status st = dnsq_mx(c->domain, &l);

	if (st == DNSQ_OK) {
		if (l.n == 1 && strcmp(l.v[0], "0 .") == 0)
			check_add(
			    c, "mx", ST_FAIL,
			    check_fmt("%s publishes a null MX (RFC 7505): it receives no mail, so "
			              "bounces and DMARC reports to it are lost",
			              c->domain),
			    check_fmt("publish an MX for the server that receives %s's mail",
			              c->domain));
		else
			check_add(c, "mx", ST_PASS,
			          check_fmt("MX %s%s", l.v[0], l.n > 1 ? " and more" : ""), NULL);
		dnsq_list_free(&l);
		return;
	}
	if (st == DNSQ_FAIL) {
		check_add(c, "mx", ST_FAIL,
		          check_fmt("MX lookup of %s: %s", c->domain, dnsq_strerror(st)),
		          check_fmt("check again later"));
		return;
	}
	if (dnsq_addrs(c->domain, &a) == DNSQ_OK) {
		check_add(
		    c, "mx", ST_WARN,
		    check_fmt(
		        "%s has no MX; mail to it goes to its address %s (implicit MX, RFC 5321 "
		        "5.1)",
		        c->domain, a.v[0]),
		    check_fmt("publish an MX record for %s", c->domain));
		dnsq_list_free(&a);
		return;
	}
	check_add(
	    c, "mx", ST_FAIL,
	    check_fmt("%s has no MX and no address: bounces to postmaster@%s cannot be delivered",
	              c->domain, c->domain),
	    check_fmt("publish an MX record for %s pointing at the server that receives its mail",
	              c->domain));
}
