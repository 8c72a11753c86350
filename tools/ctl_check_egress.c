/*
 * ctl_check_egress: the "egress IP" lines of `mxrelayctl dns check`: which
 * address the relay's outgoing connections use, per family, and where it
 * comes from (--ip4/--ip6, source_ipv4/6, else the kernel's choice).
 *
 * An address receivers cannot see (RFC 1918, RFC 6598, loopback,
 * link-local, RFC 4193) means NAT: receivers see another address, so the
 * SPF, PTR and blocklist checks must use the public one. A detected public
 * address joins the checked ones when neither the config nor the command
 * line named one; a private one never does.
 */
#include "tools/ctl_check.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const char *
key_of(int family)
{
	return family == AF_INET ? "source_ipv4" : "source_ipv6";
}

static const char *
opt_of(int family)
{
	return family == AF_INET ? "--ip4" : "--ip6";
}

static const char *
from_text(enum ctl_egress_from from, bool given, int family, const char *conf)
{
	static char buf[300];

	if (given)
		snprintf(buf, sizeof buf, "given with %s", opt_of(family));
	else if (from == CTL_EGRESS_CONFIG)
		snprintf(buf, sizeof buf, "%s in %s", key_of(family), conf);
	else
		snprintf(buf, sizeof buf, "the kernel's choice for outgoing IPv%c: %s sets no %s",
		         family == AF_INET ? '4' : '6', conf, key_of(family));
	return buf;
}

/* ip joins the checked addresses (a detected public one, nothing given or set). */
static void
add_ip(struct ctx *c, const struct spf_ip *ip)
{
	if (c->nips == CTL_MAX_IPS)
		return;
	c->ips[c->nips] = *ip;
	spf_ip_format(ip, c->ipstr[c->nips], sizeof c->ipstr[c->nips]);
	c->nips++;
}

/* The line being built: one for every family, the worst status wins. */
struct line {
	enum status st;
	char detail[1024], fix[512];
};

static void
append(char *buf, size_t len, const char *sep, const char *text)
{
	size_t used = strlen(buf);

	snprintf(buf + used, len - used, "%s%s", used > 0 ? sep : "", text);
}

/* One family's address ip, from where, into the line. */
static void
egress_part(struct line *l, const struct ctx *c, const struct spf_ip *ip, enum ctl_egress_from from,
            bool given)
{
	const char *why = ctl_ip_nonpublic(ip), *src;
	char text[INET6_ADDRSTRLEN], part[512];

	spf_ip_format(ip, text, sizeof text);
	src = from_text(from, given, ip->family, c->conf_name);
	if (why != NULL) {
		snprintf(part, sizeof part,
		         "%s (%s) is %s: behind NAT receivers see another address, so SPF, PTR "
		         "and blocklist checks must use the public one",
		         text, src, why);
		append(l->detail, sizeof l->detail, "; ", part);
		snprintf(part, sizeof part,
		         "pin the public address: %s PUBLIC-IP in %s, or check "
		         "with %s PUBLIC-IP",
		         key_of(ip->family), c->conf_name, opt_of(ip->family));
		append(l->fix, sizeof l->fix, "; ", part);
		l->st = ST_WARN;
		return;
	}
	if (from == CTL_EGRESS_KERNEL && !given)
		snprintf(part, sizeof part, "%s (%s; pin it: %s %s)", text, src, key_of(ip->family),
		         text);
	else
		snprintf(part, sizeof part, "%s (%s)", text, src);
	append(l->detail, sizeof l->detail, "; ", part);
}

void
check_egress(struct ctx *c, bool given)
{
	static const int families[] = {AF_INET, AF_INET6};
	struct line l = {ST_PASS, "", ""};
	struct spf_ip ip;

	for (size_t f = 0; f < 2; f++) {
		enum ctl_egress_from from;

		if (given) {
			for (size_t i = 0; i < c->nips; i++)
				if (c->ips[i].family == families[f])
					egress_part(&l, c, &c->ips[i], CTL_EGRESS_NONE, true);
			continue;
		}
		from = ctl_egress_ip(c->cfg, families[f], &ip);
		if (from == CTL_EGRESS_NONE)
			continue;
		egress_part(&l, c, &ip, from, false);
		if (from == CTL_EGRESS_KERNEL && ctl_ip_nonpublic(&ip) == NULL)
			add_ip(c, &ip);
	}
	if (l.detail[0] == '\0') {
		check_add(c, "egress IP", ST_WARN,
		          check_fmt("%s sets no source_ipv4 or source_ipv6 and the kernel has no "
		                    "route to the Internet: the relay's address is unknown, so SPF "
		                    "and PTR are not checked for it",
		                    c->conf_name),
		          check_fmt("source_ipv4 PUBLIC-IP in %s, or check with --ip4 PUBLIC-IP",
		                    c->conf_name));
		return;
	}
	check_add(c, "egress IP", l.st, check_fmt("%s", l.detail),
	          l.st == ST_PASS ? NULL : check_fmt("%s", l.fix));
}
