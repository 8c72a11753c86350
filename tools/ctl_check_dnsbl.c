/*
 * ctl_check_dnsbl: the dnsbl checks of mxrelayctl dns check: is an egress
 * address of the relay on a DNS blocklist (RFC 5782)?
 *
 * The lists are the config's dnsbl lines, else the built-in ones below;
 * "dnsbl = none" turns the check off. One A query per list and address
 * (IPv4: reversed octets, RFC 5782 2.1; IPv6: 32 reversed nibbles, 2.4):
 * NXDOMAIN is "not listed", 127.0.0.x "listed" (the TXT record at the same
 * name gives the reason, 2.1), and Spamhaus' 127.255.255.x error codes
 * mean the query itself was refused (a public resolver, or over quota), so
 * nothing can be concluded. Clean lists share one pass line; each problem
 * gets its own "dnsbl ZONE IP" line.
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"
#include "mta/shared/config.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct bl {
	const char *zone;
	const char *delist;
};

/*
 * The well-known free lists (each one's terms limit free use to small,
 * non-commercial query volumes; Spamhaus refuses queries from public
 * resolvers). Every one lists IPv4; only ZEN also lists IPv6 today, the
 * others answer NXDOMAIN for it.
 */
static const struct bl builtin[] = {
    {"zen.spamhaus.org", "https://check.spamhaus.org/"},
    {"bl.spamcop.net", "https://www.spamcop.net/bl.shtml"},
    {"b.barracudacentral.org", "https://www.barracudacentral.org/rbl/removal-request"},
    {"psbl.surriel.com", "https://psbl.org/"},
    {"bl.mailspike.net", "https://mailspike.org/lookup.html"},
};
#define NBUILTIN (sizeof builtin / sizeof builtin[0])

/* "4.3.2.1" or the 32 nibbles "b.a.9.8. ... .0" of the address, then ".zone" */
static void
query_name(const struct spf_ip *ip, const char *zone, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t pos = 0;

	if (ip->family == AF_INET) {
		snprintf(out, outlen, "%u.%u.%u.%u.%s", ip->addr[3], ip->addr[2], ip->addr[1],
		         ip->addr[0], zone);
		return;
	}
	for (int i = 15; i >= 0 && pos + 4 < outlen; i--) {
		out[pos++] = hex[ip->addr[i] & 0xf];
		out[pos++] = '.';
		out[pos++] = hex[ip->addr[i] >> 4];
		out[pos++] = '.';
	}
	snprintf(out + pos, outlen - pos, "%s", zone);
}

/* Spamhaus' query error codes (127.255.255.0/24); NULL for another answer. */
static const char *
refused_reason(const char *a)
{
	if (strncmp(a, "127.255.255.", 12) != 0)
		return NULL;
	if (strcmp(a + 12, "252") == 0)
		return "the list name is mistyped";
	if (strcmp(a + 12, "254") == 0)
		return "the query came through a public or open resolver";
	if (strcmp(a + 12, "255") == 0)
		return "the resolver sent too many queries (over the free quota)";
	return "the list refused the query";
}

/* The TXT reason at name, or a copy of "no reason published". */
static char *
txt_reason(const char *name)
{
	struct dnsq_list t;
	char *s;

	if (dnsq_txt(name, &t) != DNSQ_OK)
		return check_fmt("no reason published");
	/* the text is the list's: keep it printable ASCII for the report and JSON */
	for (char *p = t.v[0]; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	s = check_fmt("\"%s\"", t.v[0]);
	dnsq_list_free(&t);
	return s;
}

static void
listed(struct ctx *c, const char *label, const struct bl *b, const char *ip, const char *code,
       const char *name)
{
	char *why = txt_reason(name);
	/* Spamhaus PBL (127.0.0.10, .11) lists address ranges that should not send direct mail,
	 * by the ISP's or Spamhaus' policy: nothing was abused, the range needs an exception */
	bool policy = strcmp(code, "127.0.0.10") == 0 || strcmp(code, "127.0.0.11") == 0;

	if (policy) {
		check_add(c, label, ST_FAIL,
		          check_fmt("%s is on %s's policy block list (answer %s, RFC 5782 2.1): %s; "
		                    "its range is not meant to send mail directly, receivers that "
		                    "use the list refuse it",
		                    ip, b->zone, code, why),
		          b->delist != NULL
		              ? check_fmt("a relay on a dedicated address with its own rDNS can "
		                          "request an exception at %s; else relay through your "
		                          "provider's smarthost",
		                          b->delist)
		              : check_fmt("ask the operator of %s for an exception for %s, or relay "
		                          "through your provider's smarthost",
		                          b->zone, ip));
		free(why);
		return;
	}
	check_add(c, label, ST_FAIL,
	          check_fmt("%s is listed on %s (answer %s, RFC 5782 2.1): %s; receivers that "
	                    "use the list refuse the relay's mail",
	                    ip, b->zone, code, why),
	          b->delist != NULL
	              ? check_fmt("find why (a compromised account sending spam?), stop it, then "
	                          "request removal at %s",
	                          b->delist)
	              : check_fmt("find why, stop it, then ask the operator of %s to delist %s",
	                          b->zone, ip));
	free(why);
}

/* One list and address: true when it is clean, else one check line added. */
static bool
lookup_one(struct ctx *c, const struct bl *b, size_t i)
{
	char name[300], label[256];
	struct dnsq_list a;
	enum dnsq_status st;
	const char *ip = c->ipstr[i], *why;

	query_name(&c->ips[i], b->zone, name, sizeof name);
	snprintf(label, sizeof label, "dnsbl %s %s", b->zone, ip);
	st = dnsq_a(name, AF_INET, &a);
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA)
		return true;
	if (st != DNSQ_OK) {
		check_add(
		    c, label, ST_WARN,
		    check_fmt("cannot tell whether %s is listed on %s: %s", ip, b->zone,
		              dnsq_strerror(st)),
		    check_fmt("check again later; if it persists, remove the dnsbl line for %s "
		              "(dnsbl = ZONE lines replace the built-in lists)",
		              b->zone));
		return false;
	}
	if ((why = refused_reason(a.v[0])) != NULL)
		check_add(c, label, ST_WARN,
		          check_fmt("%s answered %s: %s, so this says nothing about %s (not "
		                    "listed as far as we know)",
		                    b->zone, a.v[0], why, ip),
		          check_fmt("query through your own recursive resolver (unbound on the "
		                    "relay, dns_servers = 127.0.0.1), not a public one; the free "
		                    "use of such lists is limited"));
	else if (strncmp(a.v[0], "127.0.0.", 8) == 0)
		listed(c, label, b, ip, a.v[0], name);
	else
		check_add(
		    c, label, ST_WARN,
		    check_fmt("%s answered %s for %s, not a 127.0.0.x listing code (RFC 5782 "
		              "2.1): the list may be closed, or the resolver rewrites NXDOMAIN",
		              b->zone, a.v[0], ip),
		    check_fmt("use your own recursive resolver (dns_servers), or remove the "
		              "dnsbl line for %s",
		              b->zone));
	dnsq_list_free(&a);
	return false;
}

/* One list: true when no address is on it. */
static bool
lookup_list(struct ctx *c, const struct bl *b)
{
	bool ok = true;

	for (size_t i = 0; i < c->nips; i++)
		ok = lookup_one(c, b, i) && ok;
	return ok;
}

void
check_dnsbl(struct ctx *c)
{
	const struct dnsbl_conf *conf = c->cfg->dnsbls;
	size_t nlists = 0, clean = 0;
	char names[1024] = "";

	if (c->cfg->dnsbl_none)
		return;
	if (c->nips == 0) {
		check_add(c, "dnsbl", ST_WARN,
		          check_fmt("no egress address to look up on blocklists"),
		          check_fmt("set source_ipv4/source_ipv6 in %s, or give --ip4/--ip6",
		                    c->conf_name));
		return;
	}
	for (size_t k = 0; conf != NULL || (c->cfg->dnsbls == NULL && k < NBUILTIN); k++) {
		struct bl b = conf != NULL ? (struct bl){conf->zone, conf->delist} : builtin[k];

		if (lookup_list(c, &b)) {
			clean++;
			snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
			         clean > 1 ? ", " : "", b.zone);
		}
		nlists++;
		if (conf != NULL)
			conf = conf->next;
	}
	if (clean > 0)
		check_add(
		    c, "dnsbl", ST_PASS,
		    check_fmt("not listed on %zu of %zu blocklists: %s", clean, nlists, names),
		    NULL);
}
