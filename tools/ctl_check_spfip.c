/*
 * ctl_check_spfip: the spf-ip checks of mxrelayctl dns check: the SPF
 * verdict for each egress address, MAIL FROM postmaster@DOMAIN, HELO
 * helo_name (see tools/ctl_check.c). Today through libspf2; to be replaced
 * by tools/spfeval (RFC 7208 check_host) so that PASS means what pyspf and
 * receivers say.
 */
#include "tools/ctl_check.h"

/* libspf2 needs struct in_addr declared before its header (TESTING.md) */
#include <netinet/in.h>
#include <spf2/spf.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A request for egress address i, MAIL FROM from, HELO helo_name; NULL when libspf2 refuses it. */
static SPF_request_t *
spf_request(SPF_server_t *srv, const struct ctx *c, size_t i, const char *from)
{
	SPF_request_t *req = SPF_request_new(srv);

	if (req == NULL)
		return NULL;
	if ((c->ips[i].family == AF_INET
	         ? SPF_request_set_ipv4_str(req, c->ipstr[i])
	         : SPF_request_set_ipv6_str(req, c->ipstr[i])) != SPF_E_SUCCESS ||
	    SPF_request_set_helo_dom(req, c->helo) != SPF_E_SUCCESS ||
	    SPF_request_set_env_from(req, from) != 0) {
		SPF_request_free(req);
		return NULL;
	}
	return req;
}

/* The check for libspf2's answer resp about egress address i: pass, or fail with the fix. */
static void
add_spf_verdict(struct ctx *c, const char *name, size_t i, const char *from, SPF_response_t *resp)
{
	SPF_result_t res = SPF_response_result(resp);
	const char *comment = SPF_response_get_header_comment(resp);
	char mech[64];

	spf_ip_mechanism(&c->ips[i], mech, sizeof mech);
	if (res == SPF_RESULT_PASS) {
		check_add(c, name, ST_PASS,
		          check_fmt("SPF passes %s for MAIL FROM %s (HELO %s)", c->ipstr[i], from,
		                    c->helo),
		          NULL);
		return;
	}
	c->spf_ips_pass = false;
	check_add(c, name, ST_FAIL,
	          check_fmt("SPF result for %s is %s, not pass%s%s", c->ipstr[i],
	                    SPF_strresult(res), comment ? ": " : "", comment ? comment : ""),
	          res == SPF_RESULT_TEMPERROR ? check_fmt("a DNS lookup failed; check again later")
	          : res == SPF_RESULT_PERMERROR
	              ? check_fmt("make the SPF record valid (see the spf and spf-lookups checks)")
	          : res == SPF_RESULT_NONE
	              ? check_fmt("publish an SPF record: mxrelayctl dns spf %s", c->domain)
	              : check_fmt("add %s to the record: mxrelayctl dns spf %s", mech, c->domain));
}

/* libspf2's verdict for one egress address. */
static void
check_spf_ip(struct ctx *c, SPF_server_t *srv, size_t i)
{
	SPF_request_t *req;
	SPF_response_t *resp = NULL;
	char name[64], from[300];

	snprintf(name, sizeof name, "spf-ip %s", c->ipstr[i]);
	snprintf(from, sizeof from, "postmaster@%s", c->domain);
	/* libspf2 passes loopback clients whatever the record says (TESTING.md) */
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
	req = spf_request(srv, c, i, from);
	if (req == NULL) {
		check_add(c, name, ST_FAIL, check_fmt("libspf2 cannot evaluate %s", c->ipstr[i]),
		          NULL);
		c->spf_ips_pass = false;
		return;
	}
	SPF_request_query_mailfrom(req, &resp);
	add_spf_verdict(c, name, i, from, resp);
	SPF_response_free(resp);
	SPF_request_free(req);
}

/*
 * The evaluations run on a thread of their own: libspf2 keeps its resolver
 * state in thread-local storage freed only when a thread exits, which the
 * main thread never does (valgrind would count it as lost).
 */
static void *
spf_ips_thread(void *arg)
{
	struct ctx *c = arg;
	SPF_server_t *srv = SPF_server_new(SPF_DNS_RESOLV, 0);

	if (srv == NULL) {
		check_add(c, "spf-ip", ST_FAIL, check_fmt("libspf2 cannot start its resolver"),
		          NULL);
		c->spf_ips_pass = false;
		return NULL;
	}
	for (size_t i = 0; i < c->nips; i++)
		check_spf_ip(c, srv, i);
	SPF_server_free(srv);
	return NULL;
}

void
check_spf_ips(struct ctx *c)
{
	pthread_t t;

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
	if (pthread_create(&t, NULL, spf_ips_thread, c) != 0) {
		spf_ips_thread(c);
		return;
	}
	pthread_join(t, NULL);
}
