/*
 * ctl_check_spfip: the spf-ip checks of mxrelayctl dns check: the SPF
 * verdict for each egress address, MAIL FROM postmaster@DOMAIN, HELO
 * helo_name (see tools/ctl_check.c), through tools/spfeval, our RFC 7208
 * check_host() that agrees with pyspf on the whole RFC 7208 test suite,
 * so that PASS means what receivers say (libspf2 predates RFC 7208's void
 * lookup limit and passed records past the limits of 4.6.4).
 */
#include "tools/ctl_check.h"
#include "tools/spfeval.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static bool
is_loopback(const struct spf_ip *ip)
{
	static const unsigned char v6_loopback[16] = {[15] = 1};

	if (ip->family == AF_INET)
		return ip->addr[0] == 127;
	return memcmp(ip->addr, v6_loopback, 16) == 0;
}

/* The fix for a result other than pass (check_fmt's string, for check_add). */
static char *
verdict_fix(const struct ctx *c, size_t i, const struct spf_eval *ev, const char *mech)
{
	switch (ev->result) {
	case SPF_R_TEMPERROR:
		return check_fmt("a DNS lookup failed; check again later");
	case SPF_R_PERMERROR:
		return ev->over_limit
		           ? check_fmt("bring the record within RFC 7208 4.6.4's limits (10 "
		                       "DNS-querying terms, 2 void lookups, 10 MX names); every "
		                       "lookup: mxrelayctl dns spf-eval --trace %s postmaster@%s",
		                       c->ipstr[i], c->domain)
		           : check_fmt(
		                 "make the SPF record valid: mxrelayctl dns spf %s prints one "
		                 "(see the spf check)",
		                 c->domain);
	case SPF_R_NONE:
		return check_fmt("publish an SPF record: mxrelayctl dns spf %s", c->domain);
	default:
		return check_fmt("add %s to the record: mxrelayctl dns spf %s", mech, c->domain);
	}
}

/* The check for egress address i: pass, or fail with what check_host() said and the fix. */
static void
add_spf_verdict(struct ctx *c, const char *name, size_t i, const char *from,
                const struct spf_eval *ev)
{
	char mech[64];

	spf_ip_mechanism(&c->ips[i], mech, sizeof mech);
	if (ev->result == SPF_R_PASS) {
		check_add(c, name, ST_PASS,
		          check_fmt("SPF passes %s for MAIL FROM %s (HELO %s): %s", c->ipstr[i],
		                    from, c->helo, ev->why),
		          NULL);
		return;
	}
	c->spf_ips_pass = false;
	check_add(c, name, ST_FAIL,
	          check_fmt("SPF result for %s is %s, not pass (RFC 7208 2.6): %s", c->ipstr[i],
	                    spf_result_name(ev->result), ev->why),
	          verdict_fix(c, i, ev, mech));
}

/* check_host() for one egress address. */
static void
check_spf_ip(struct ctx *c, size_t i)
{
	struct spf_eval ev;
	char name[64], from[300];

	snprintf(name, sizeof name, "spf-ip %s", c->ipstr[i]);
	snprintf(from, sizeof from, "postmaster@%s", c->domain);
	/* a receiver never sees a loopback client: the verdict would mean nothing */
	if (is_loopback(&c->ips[i])) {
		c->spf_ips_pass = false;
		check_add(
		    c, name, ST_WARN,
		    check_fmt("%s is a loopback address: receivers never see it, and SPF cannot be "
		              "evaluated for it",
		              c->ipstr[i]),
		    check_fmt("set source_ipv4/source_ipv6 to the relay's public addresses"));
		return;
	}
	if (spf_eval(spf_dns_system(), &c->ips[i], from, c->helo, NULL, &ev) != 0) {
		check_add(c, name, ST_FAIL,
		          check_fmt("cannot evaluate SPF for %s: %s", c->ipstr[i], ev.why), NULL);
		c->spf_ips_pass = false;
		return;
	}
	add_spf_verdict(c, name, i, from, &ev);
	spf_eval_free(&ev);
}

void
check_spf_ips(struct ctx *c)
{
	c->spf_ips_pass = c->nips > 0;
	if (c->nips == 0) {
		check_add(
		    c, "spf-ip", ST_WARN,
		    check_fmt(
		        "%s sets no source_ipv4 or source_ipv6, so the address the relay sends "
		        "from is unknown",
		        c->conf_name),
		    check_fmt(
		        "set source_ipv4 (and source_ipv6) in the config, or pass --ip4/--ip6"));
		return;
	}
	for (size_t i = 0; i < c->nips; i++)
		check_spf_ip(c, i);
}
