/*
 * ctl_check_spf: the SPF checks of mxrelayctl dns check (spf, spf-ip,
 * spf-lookups; see tools/ctl_check.c). The only part of the command that
 * drives libspf2; record text work is tools/spf's.
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"

/* libspf2 needs struct in_addr declared before its header (TESTING.md) */
#include <netinet/in.h>
#include <spf2/spf.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The warnings of the published record, joined, or NULL when there are none. */
static char *
spf_warnings(unsigned w)
{
	char *s = NULL, *t;

	for (unsigned b = 0; b < SPF_W_COUNT; b++) {
		if (!(w & (1u << b)))
			continue;
		t = s ? check_fmt("%s; %s", s, spf_warning_text((enum spf_warning)(1u << b)))
		      : check_fmt("%s", spf_warning_text((enum spf_warning)(1u << b)));
		free(s);
		s = t;
	}
	return s;
}

void
check_spf_record(struct ctx *c)
{
	struct dnsq_list l;
	struct spf_lint lint;
	enum dnsq_status st = ctl_spf_records(c->domain, &l);
	char why[512], *warn;
	const char *fix_cmd = "run mxrelayctl dns spf %s and publish the record it prints";

	if (st == DNSQ_NODATA || st == DNSQ_NXDOMAIN) {
		check_add(c, "spf", ST_FAIL, check_fmt("%s publishes no SPF record", c->domain),
		          check_fmt(fix_cmd, c->domain));
		return;
	}
	if (st != DNSQ_OK) {
		check_add(c, "spf", ST_FAIL,
		          check_fmt("TXT lookup of %s: %s", c->domain, dnsq_strerror(st)),
		          check_fmt("make %s's DNS answer, then check again", c->domain));
		return;
	}
	if (l.n > 1) {
		check_add(
		    c, "spf", ST_FAIL,
		    check_fmt(
		        "%s publishes %zu SPF records; receivers answer permerror (RFC 7208 4.5)",
		        c->domain, l.n),
		    check_fmt(
		        "publish one record with the terms of all of them and delete the others "
		        "(mxrelayctl dns spf %s --current \"...\" merges the relay into one)",
		        c->domain));
		goto done;
	}
	if (spf_validate(l.v[0], why, sizeof why) != 0 ||
	    spf_lint(l.v[0], &lint, why, sizeof why) != 0) {
		check_add(c, "spf", ST_FAIL,
		          check_fmt("the SPF record does not parse: %s: %s", why, l.v[0]),
		          check_fmt(fix_cmd, c->domain));
		goto done;
	}
	c->spf_ok = true;
	c->spf_record = strdup(l.v[0]);
	/* lookups get their own check; a published record was split already */
	lint.warnings &= ~(unsigned)(SPF_W_LOOKUPS | SPF_W_SPLIT);
	if (lint.warnings & SPF_W_PLUS_ALL) {
		check_add(c, "spf", ST_FAIL,
		          check_fmt("%s: +all lets every host on the internet pass", l.v[0]),
		          check_fmt("end the record with ~all or -all (mxrelayctl dns spf %s)",
		                    c->domain));
	} else if ((warn = spf_warnings(lint.warnings)) != NULL) {
		check_add(c, "spf", ST_WARN, check_fmt("%s", l.v[0]), warn);
	} else {
		check_add(c, "spf", ST_PASS, check_fmt("%s", l.v[0]), NULL);
	}
done:
	dnsq_list_free(&l);
}

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

void
check_spf_lookups(struct ctx *c)
{
	struct spf_count cnt;

	if (!c->spf_ok)
		return;
	spf_count_lookups(c->spf_record, ctl_spf_fetch, NULL, &cnt);
	if (cnt.total > SPF_LOOKUP_LIMIT)
		check_add(
		    c, "spf-lookups", ST_FAIL,
		    check_fmt(
		        "%d DNS-querying terms through includes, over the limit of %d: receivers "
		        "answer permerror (RFC 7208 4.6.4)",
		        cnt.total, SPF_LOOKUP_LIMIT),
		    check_fmt("replace includes, a and mx with ip4:/ip6: terms, or drop unused "
		              "includes"));
	else if (cnt.not_followed > 0)
		check_add(c, "spf-lookups", ST_WARN,
		          check_fmt("at least %d of %d DNS lookups; %d include(s) not followed: %s",
		                    cnt.total, SPF_LOOKUP_LIMIT, cnt.not_followed, cnt.problem),
		          check_fmt("make every include publish exactly one SPF record"));
	else
		check_add(c, "spf-lookups", ST_PASS,
		          check_fmt("%d of %d DNS lookups", cnt.total, SPF_LOOKUP_LIMIT), NULL);
}

/* libspf2 reports some DNS trouble through its warning hook: keep our output ours. */
static void
spf_quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

void
check_spf_quiet(void)
{
	SPF_warning_handler = spf_quiet;
	SPF_info_handler = spf_quiet;
}
