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

/*
 * Whether helo resolves (A for IPv4, AAAA for IPv6) to the egress address:
 * 1 yes, 0 it resolves elsewhere, -1 it has no address of that family.
 */
static int
helo_forward(const struct spf_ip *ip, const char *helo)
{
	struct dnsq_list a;
	int found = 0;

	if (dnsq_a(helo, ip->family, &a) != DNSQ_OK)
		return -1;
	for (size_t k = 0; k < a.n; k++)
		if (same_ip(a.v[k], ip))
			found = 1;
	dnsq_list_free(&a);
	return found;
}

/* What the HELO name resolves to, for details: "HELO x -> ip" or why not. */
static char *
helo_text(const char *helo, int fwd, const char *ip, const char *rr)
{
	if (fwd > 0)
		return check_fmt("HELO %s -> %s", helo, ip);
	if (fwd == 0)
		return check_fmt("HELO %s has %s records, none is %s", helo, rr, ip);
	return check_fmt("HELO %s has no %s record", helo, rr);
}

/* No PTR, or PTR names that do not resolve back: always a failure. */
static void
fcrdns_broken(struct ctx *c, size_t i, const char *label, const struct dnsq_list *ptr,
              const char *helo_says)
{
	const char *ip = c->ipstr[i], *rr = c->ips[i].family == AF_INET ? "A" : "AAAA";
	/* Gmail and Microsoft publish that they refuse IPv6 mail without FCrDNS */
	const char *who = c->ips[i].family == AF_INET ? "many receivers refuse such mail"
	                                              : "large providers (Gmail, Microsoft) refuse "
	                                                "IPv6 mail from such an address";

	if (ptr == NULL)
		check_add(c, label, ST_FAIL,
		          check_fmt("%s has no PTR record; %s (%s)", ip, who, helo_says),
		          check_fmt("ask whoever owns %s (your provider) to set its PTR to %s, and "
		                    "publish %s %s %s",
		                    ip, c->helo, c->helo, rr, ip));
	else
		check_add(c, label, ST_FAIL,
		          check_fmt("%s -> %s, but %s does not resolve back to %s (FCrDNS fails); "
		                    "%s (%s)",
		                    ip, ptr->v[0], ptr->v[0], ip, who, helo_says),
		          check_fmt("publish %s %s %s, or point the PTR at a name that has it",
		                    ptr->v[0], rr, ip));
}

void
check_fcrdns(struct ctx *c, size_t i)
{
	struct dnsq_list ptr;
	enum dnsq_status st = dnsq_ptr(c->ipstr[i], &ptr);
	const char *ip = c->ipstr[i], *name, *rr = c->ips[i].family == AF_INET ? "A" : "AAAA";
	int fwd = helo_forward(&c->ips[i], c->helo);
	char label[64], *helo_says = helo_text(c->helo, fwd, ip, rr);

	snprintf(label, sizeof label, "fcrdns %s", ip);
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		fcrdns_broken(c, i, label, NULL, helo_says);
	} else if (st != DNSQ_OK) {
		check_add(c, label, ST_FAIL,
		          check_fmt("PTR lookup of %s: %s", ip, dnsq_strerror(st)),
		          check_fmt("check again later"));
	} else if ((name = confirmed_name(&ptr, &c->ips[i], c->helo)) == NULL) {
		fcrdns_broken(c, i, label, &ptr, helo_says);
	} else if (fwd < 0) {
		/* receivers check the HELO name exists (Postfix reject_unknown_helo_hostname) */
		check_add(c, label, ST_FAIL,
		          check_fmt("%s -> %s -> %s, but %s: receivers that check HELO refuse it",
		                    ip, name, ip, helo_says),
		          check_fmt("set helo_name = %s in %s (or publish %s %s %s)", name,
		                    c->conf_name, c->helo, rr, ip));
	} else if (strcasecmp(name, c->helo) != 0) {
		check_add(c, label, ST_WARN,
		          check_fmt("%s -> %s -> %s, but the relay says HELO %s (%s)", ip, name, ip,
		                    c->helo, helo_says),
		          check_fmt("set helo_name = %s in the config (or change the PTR to %s)",
		                    name, c->helo));
	} else {
		check_add(c, label, ST_PASS,
		          check_fmt("%s -> %s -> %s, the HELO name (%s)", ip, name, ip, helo_says),
		          NULL);
	}
	free(helo_says);
	dnsq_list_free(&ptr);
}

/* ---- MX ---- */

/*
 * The relay's mail to a domain hosted on Exchange Online arrives there as
 * "direct send"; a tenant with Reject Direct Send on refuses mail from its
 * own domains that came in without a connector (550 5.7.68).
 */
static void
check_exchange_online(struct ctx *c, const struct dnsq_list *mx)
{
	static const char suffix[] = ".mail.protection.outlook.com";
	const size_t slen = sizeof suffix - 1;

	for (size_t i = 0; i < mx->n; i++) {
		const char *host = strchr(mx->v[i], ' ');
		size_t len = host != NULL ? strlen(++host) : 0;

		if (len <= slen || strcmp(host + len - slen, suffix) != 0)
			continue;
		check_add(
		    c, "exchange-online", ST_WARN,
		    check_fmt(
		        "%s's MX %s is Exchange Online: the relay's mail to %s's own mailboxes "
		        "arrives as Direct Send, and with Reject Direct Send on Exchange Online "
		        "refuses it (550 5.7.68) unless an inbound partner connector "
		        "recognises the relay",
		        c->domain, host, c->domain),
		    check_fmt("create a Partner inbound connector for %s that recognises the relay "
		              "by IP or by its tls_client_cert name (docs/deployment.md section 7 "
		              "has the PowerShell)",
		              c->domain));
		return;
	}
}

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
		check_exchange_online(c, &l);
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
