/*
 * dest_tls: the outbound TLS side of a destination's connections (issue
 * 13): the request for each MX target from tlspol_decide, with the TLSA
 * lookup it needs first (RFC 7672 2.2: only for hosts whose address records
 * are secure), the 4.7.x reply of a skipped host, and the TLS counters.
 * Never: connects or walks the target list (dest.c does).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "mta/delivery/dest_int.h"
#include "mta/delivery/resolver.h"
#include "mta/server.h"
#include "mta/shared/cidr.h"
#include "mta/shared/config.h"
#include "mta/shared/log.h"

void
dest_tls_stats(struct dconn *k, const struct tls_outcome *o, bool ok, bool connected)
{
	const struct dns_target *t = &k->t[k->ti];
	const struct config *cfg = k->d->ds->srv->cfg;
	const struct sockaddr_storage *src =
	    t->addr.ss_family == AF_INET6 ? &cfg->source_ipv6 : &cfg->source_ipv4;
	char ip[INET6_ADDRSTRLEN] = "", sip[INET6_ADDRSTRLEN] = "";

	if (k->d->tls_report)
		return; /* RFC 8460 3: a report's session is not in the next report */
	if (connected)
		cidr_addr_text((const struct sockaddr *)&t->addr, ip, sizeof(ip));
	if (src->ss_family != 0)
		cidr_addr_text((const struct sockaddr *)src, sip, sizeof(sip));
	tlsstats_session(k->d->ds->stats, k->d->domain, t->host, ip, sip, o, ok,
	                 o->kind == TLSK_MTA_STS ? tlspol_dest_sts_text(k->d->tp) : "");
}

/* The decision's inputs for d's target t, from the configuration in force now. */
static void
decide_in(const struct dest *d, const struct dns_target *t, struct tlspol_in *in)
{
	const struct config *cfg = d->ds->srv->cfg;
	const struct tls_policy_conf *p = config_tls_policy(cfg, d->domain);
	const struct route *rt = config_route(cfg, d->domain);

	memset(in, 0, sizeof(*in));
	in->domain = d->domain;
	in->host = t->host;
	in->host_secure = t->secure;
	in->has_floor = p != NULL;
	in->floor = p ? p->level : TLS_L_MAY;
	in->dane_on = cfg->dane && d->ds->resolver_trusted;
	in->named_route = rt != NULL && !d->literal;
	in->literal = d->literal;
	in->tls_report = d->tls_report;
	if (cfg->mta_sts && !d->tls_report)
		tlspol_dest_sts(d->tp, in);
}

bool
dest_tls_target(struct dconn *k, const struct dns_target *t, dns_tlsa_cb on_tlsa)
{
	struct dest *d = k->d;
	struct tlspol_in in;
	enum tlspol_verdict v;

	decide_in(d, t, &in);
	if (tlspol_want_tlsa(&in) && tlspol_dest_tlsa(d->tp, &in) != 0) {
		unsigned port = ntohs(t->addr.ss_family == AF_INET6
		                          ? ((const struct sockaddr_in6 *)&t->addr)->sin6_port
		                          : ((const struct sockaddr_in *)&t->addr)->sin_port);
		k->tq = dns_resolve_tlsa(resolver_dns(d->ds->res), t->host, port, on_tlsa, k);
		if (k->tq != NULL)
			return false;
		in.tlsa = TLSPOL_TLSA_FAILED; /* RFC 7672 2.2: no downgrade */
	}
	k->gen_cfg = d->ds->srv->cfg_gen;
	k->gen_sts = d->sts_gen;
	tls_req_clear(&k->req);
	if (tlspol_decide(&in, &k->req, &v) != 0 || v == TLSPOL_GO)
		return true;
	k->tls_code = tlspol_skip_reply(v, d->domain, t->host, in.sts_id,
	                                tlspol_dest_tlsa_why(d->tp, t->host), k->tls_text,
	                                sizeof(k->tls_text));
	memset(&k->tls_out, 0, sizeof(k->tls_out));
	k->tls_relay[0] = '\0';
	k->tls_out.kind = k->req.kind;
	/* RFC 8460 4.3.2.1: a lookup with no valid answer is dnssec-invalid */
	k->tls_out.result = v == TLSPOL_SKIP_TLSA_FAILED     ? TLSRES_DNSSEC_INVALID
	                    : v == TLSPOL_SKIP_DANE_REQUIRED ? TLSRES_DANE_REQUIRED
	                                                     : TLSRES_VALIDATION_FAILURE;
	snprintf(k->tls_out.version, sizeof(k->tls_out.version), "none");
	snprintf(k->tls_out.detail, sizeof(k->tls_out.detail), "%s", k->tls_text);
	log_info("event=mx_skipped domain=%s host=%s reason=\"%s\"", d->domain, t->host,
	         k->tls_text);
	dest_tls_stats(k, &k->tls_out, false, false);
	return false;
}

/* The same request: level, kind, report_only, name and TLSA records. */
static bool
req_same(const struct tls_req *a, const struct tls_req *b)
{
	if (a->level != b->level || a->kind != b->kind || a->report_only != b->report_only ||
	    strcmp(a->verify_name, b->verify_name) != 0 || a->ntlsa != b->ntlsa)
		return false;
	for (size_t i = 0; i < a->ntlsa; i++) {
		const struct tls_tlsa *x = &a->tlsa[i], *y = &b->tlsa[i];
		if (x->usage != y->usage || x->selector != y->selector || x->mtype != y->mtype ||
		    x->len != y->len || memcmp(x->data, y->data, x->len) != 0)
			return false;
	}
	return true;
}

bool
dest_tls_reusable(struct dconn *k)
{
	struct dest *d = k->d;
	struct tlspol_in in;
	struct tls_req now;
	enum tlspol_verdict v;
	bool same;

	if (k->gen_cfg == d->ds->srv->cfg_gen && k->gen_sts == d->sts_gen)
		return true;
	decide_in(d, &k->t[k->ti], &in);
	if (tlspol_want_tlsa(&in) && tlspol_dest_tlsa(d->tp, &in) != 0)
		return false; /* its TLSA is not known yet: a new connection asks for it */
	same = tlspol_decide(&in, &now, &v) == 0 && v == TLSPOL_GO && req_same(&now, &k->req);
	tls_req_clear(&now);
	if (!same)
		return false;
	k->gen_cfg = d->ds->srv->cfg_gen;
	k->gen_sts = d->sts_gen;
	return true;
}

void
dest_tls_startup(const struct dests *ds)
{
	const struct config *cfg = ds->srv->cfg;

	if (cfg->dane && !ds->resolver_trusted)
		log_info("event=dane_off reason=\"resolver not on loopback\"");
	for (const struct tls_policy_conf *p = cfg->tls_policies; p; p = p->next)
		if (p->level == TLS_L_NONE || p->level == TLS_L_MAY)
			log_info("event=tls_policy_downgrade domain=%s level=%s", p->domain,
			         config_tls_level_name(p->level));
}

void
dest_tls_sts(struct dest *d, const struct sts_view *v)
{
	static const enum tlspol_sts mode[] = {
	    [STS_MODE_NONE] = TLSPOL_STS_NONE,
	    [STS_MODE_TESTING] = TLSPOL_STS_TESTING,
	    [STS_MODE_ENFORCE] = TLSPOL_STS_ENFORCE,
	};
	struct tlspol_in was = {0};

	tlspol_dest_sts(d->tp, &was);
	if (was.sts != mode[v->mode] || strcmp(was.sts_id, v->id ? v->id : "") != 0)
		d->sts_gen++; /* open connections meet the new policy (dest_tls_reusable) */
	tlspol_dest_sts_put(d->tp, mode[v->mode], v->mx, v->nmx, v->id, v->policy_text);
	if (v->problem != TLSRES_OK) {
		/* RFC 8460 4.3.2.2: reported even when a cached policy still applies */
		struct tls_outcome o = {.kind = TLSK_MTA_STS, .result = v->problem};
		snprintf(o.detail, sizeof(o.detail), "%s",
		         v->problem_detail ? v->problem_detail : "");
		tlsstats_problem(d->ds->stats, d->domain, &o, v->policy_text);
	}
}

/* Reload (dest.h): connections opened from now on start TLS with tls. */
void
dests_set_tls(struct dests *ds, SSL_CTX *tls)
{
	ds->tls = tls;
}
