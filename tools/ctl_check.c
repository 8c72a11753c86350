/*
 * mxrelayctl dns check: look up what a domain publishes and say, check by
 * check, whether mail the relay sends for it will be trusted, and how to fix
 * what is not.
 *
 * Checks (name: what passes):
 *   spf                  exactly one SPF record, libspf2 compiles it, no +all
 *   spf-ip IP            libspf2 evaluates pass for IP, MAIL FROM
 *                        postmaster@DOMAIN, HELO helo_name (one per egress IP)
 *   spf-lookups          at most 10 DNS-querying terms, through includes
 *   dkim SELECTOR        the published key record matches the configured key
 *   dmarc                one v=DMARC1 record that parses, at _dmarc.DOMAIN or
 *                        a parent domain
 *   dmarc-alignment      DKIM (d=DOMAIN) and SPF (MAIL FROM in DOMAIN) pass
 *                        aligned with From: DOMAIN
 *   fcrdns IP            IP -> PTR name -> A/AAAA holds IP, and the name is
 *                        helo_name
 *   mx                   DOMAIN has an MX (bounces and reports reach it)
 * Each is pass, warn or fail; the exit status is 1 when any fails.
 *
 * Lookups are blocking (tools/dnsq, libspf2's own resolver): a CLI may wait.
 */
#include "tools/ctl.h"
#include "tools/dmarc.h"
#include "tools/dnsq.h"
#include "tools/spf.h"
#include "dkim/keys.h"
#include "dkim/txt.h"
#include "mta/config.h"

/* libspf2 needs struct in_addr declared before its header (TESTING.md) */
#include <netinet/in.h>
#include <spf2/spf.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define PROG "mxrelayctl dns check"

enum status { ST_PASS, ST_WARN, ST_FAIL };

static const char *const status_name[] = {"pass", "warn", "fail"};

struct check {
	char *name;
	enum status st;
	char *detail;
	char *fix; /* NULL when there is nothing to do */
};

struct report {
	struct check *v;
	size_t n;
};

struct ctx {
	const char *domain;
	const char *conf_name;
	const char *helo;
	const struct config *cfg;
	struct spf_ip ips[CTL_MAX_IPS];
	size_t nips;
	char ipstr[CTL_MAX_IPS][INET6_ADDRSTRLEN];
	bool spf_ok;       /* exactly one record that compiles */
	char *spf_record;  /* that record */
	bool spf_ips_pass; /* every egress IP passes SPF */
	int dkim_pass;     /* selectors whose record matches */
	bool dmarc_ok;
	struct dmarc_record dmarc;
	struct report r;
};

/* printf into a new string; a CLI may abort on out-of-memory */
static char *
fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0) {
		fputs(PROG ": out of memory\n", stderr);
		abort();
	}
	va_end(ap);
	return s;
}

/* Add a check; detail and fix are strings from fmt() (fix may be NULL), owned by the report. */
static void
add(struct ctx *c, const char *name, enum status st, char *detail, char *fix)
{
	struct check *nv = realloc(c->r.v, (c->r.n + 1) * sizeof *nv);

	if (nv == NULL) {
		fputs(PROG ": out of memory\n", stderr);
		abort();
	}
	c->r.v = nv;
	nv[c->r.n].name = fmt("%s", name);
	nv[c->r.n].st = st;
	nv[c->r.n].detail = detail;
	nv[c->r.n].fix = fix;
	c->r.n++;
}

/* ---- SPF ---- */

/* The warnings of the published record, joined, or NULL when there are none. */
static char *
spf_warnings(unsigned w)
{
	char *s = NULL, *t;

	for (unsigned b = 0; b < SPF_W_COUNT; b++) {
		if (!(w & (1u << b)))
			continue;
		t = s ? fmt("%s; %s", s, spf_warning_text((enum spf_warning)(1u << b)))
		      : fmt("%s", spf_warning_text((enum spf_warning)(1u << b)));
		free(s);
		s = t;
	}
	return s;
}

static void
check_spf_record(struct ctx *c)
{
	struct dnsq_list l;
	struct spf_lint lint;
	enum dnsq_status st = ctl_spf_records(c->domain, &l);
	char why[512], *warn;
	const char *fix_cmd = "run mxrelayctl dns spf %s and publish the record it prints";

	if (st == DNSQ_NODATA || st == DNSQ_NXDOMAIN) {
		add(c, "spf", ST_FAIL, fmt("%s publishes no SPF record", c->domain),
		    fmt(fix_cmd, c->domain));
		return;
	}
	if (st != DNSQ_OK) {
		add(c, "spf", ST_FAIL, fmt("TXT lookup of %s: %s", c->domain, dnsq_strerror(st)),
		    fmt("make %s's DNS answer, then check again", c->domain));
		return;
	}
	if (l.n > 1) {
		add(c, "spf", ST_FAIL,
		    fmt("%s publishes %zu SPF records; receivers answer permerror (RFC 7208 4.5)",
		        c->domain, l.n),
		    fmt("publish one record with the terms of all of them and delete the others "
		        "(mxrelayctl dns spf %s --current \"...\" merges the relay into one)",
		        c->domain));
		goto done;
	}
	if (spf_validate(l.v[0], why, sizeof why) != 0 ||
	    spf_lint(l.v[0], &lint, why, sizeof why) != 0) {
		add(c, "spf", ST_FAIL, fmt("the SPF record does not parse: %s: %s", why, l.v[0]),
		    fmt(fix_cmd, c->domain));
		goto done;
	}
	c->spf_ok = true;
	c->spf_record = strdup(l.v[0]);
	/* lookups get their own check; a published record was split already */
	lint.warnings &= ~(unsigned)(SPF_W_LOOKUPS | SPF_W_SPLIT);
	if (lint.warnings & SPF_W_PLUS_ALL) {
		add(c, "spf", ST_FAIL, fmt("%s: +all lets every host on the internet pass", l.v[0]),
		    fmt("end the record with ~all or -all (mxrelayctl dns spf %s)", c->domain));
	} else if ((warn = spf_warnings(lint.warnings)) != NULL) {
		add(c, "spf", ST_WARN, fmt("%s", l.v[0]), warn);
	} else {
		add(c, "spf", ST_PASS, fmt("%s", l.v[0]), NULL);
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

/* libspf2's verdict for one egress address. */
static void
check_spf_ip(struct ctx *c, SPF_server_t *srv, size_t i)
{
	SPF_request_t *req = SPF_request_new(srv);
	SPF_response_t *resp = NULL;
	SPF_result_t res;
	char name[64], from[300], mech[64];
	const char *comment;

	snprintf(name, sizeof name, "spf-ip %s", c->ipstr[i]);
	snprintf(from, sizeof from, "postmaster@%s", c->domain);
	/* libspf2 passes loopback clients whatever the record says (TESTING.md) */
	if (is_loopback(&c->ips[i])) {
		c->spf_ips_pass = false;
		add(c, name, ST_WARN,
		    fmt("%s is a loopback address: receivers never see it, and SPF cannot be "
		        "evaluated for it",
		        c->ipstr[i]),
		    fmt("set source_ipv4/source_ipv6 to the relay's public addresses"));
		if (req != NULL)
			SPF_request_free(req);
		return;
	}
	if (req == NULL ||
	    (c->ips[i].family == AF_INET
	         ? SPF_request_set_ipv4_str(req, c->ipstr[i])
	         : SPF_request_set_ipv6_str(req, c->ipstr[i])) != SPF_E_SUCCESS ||
	    SPF_request_set_helo_dom(req, c->helo) != SPF_E_SUCCESS ||
	    SPF_request_set_env_from(req, from) != 0) {
		add(c, name, ST_FAIL, fmt("libspf2 cannot evaluate %s", c->ipstr[i]), NULL);
		c->spf_ips_pass = false;
		if (req != NULL)
			SPF_request_free(req);
		return;
	}
	SPF_request_query_mailfrom(req, &resp);
	res = SPF_response_result(resp);
	comment = SPF_response_get_header_comment(resp);
	spf_ip_mechanism(&c->ips[i], mech, sizeof mech);
	if (res == SPF_RESULT_PASS) {
		add(c, name, ST_PASS,
		    fmt("SPF passes %s for MAIL FROM %s (HELO %s)", c->ipstr[i], from, c->helo),
		    NULL);
	} else {
		c->spf_ips_pass = false;
		add(c, name, ST_FAIL,
		    fmt("SPF result for %s is %s, not pass%s%s", c->ipstr[i], SPF_strresult(res),
		        comment ? ": " : "", comment ? comment : ""),
		    res == SPF_RESULT_TEMPERROR ? fmt("a DNS lookup failed; check again later")
		    : res == SPF_RESULT_PERMERROR
		        ? fmt("make the SPF record valid (see the spf and spf-lookups checks)")
		    : res == SPF_RESULT_NONE
		        ? fmt("publish an SPF record: mxrelayctl dns spf %s", c->domain)
		        : fmt("add %s to the record: mxrelayctl dns spf %s", mech, c->domain));
	}
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
		add(c, "spf-ip", ST_FAIL, fmt("libspf2 cannot start its resolver"), NULL);
		c->spf_ips_pass = false;
		return NULL;
	}
	for (size_t i = 0; i < c->nips; i++)
		check_spf_ip(c, srv, i);
	SPF_server_free(srv);
	return NULL;
}

static void
check_spf_ips(struct ctx *c)
{
	pthread_t t;

	c->spf_ips_pass = c->nips > 0;
	if (c->nips == 0) {
		add(c, "spf-ip", ST_WARN,
		    fmt("%s sets no source_ipv4 or source_ipv6, so the address the relay sends "
		        "from is unknown",
		        c->conf_name),
		    fmt("set source_ipv4 (and source_ipv6) in the config, or pass --ip4/--ip6"));
		return;
	}
	if (pthread_create(&t, NULL, spf_ips_thread, c) != 0) {
		spf_ips_thread(c);
		return;
	}
	pthread_join(t, NULL);
}

static void
check_spf_lookups(struct ctx *c)
{
	struct spf_count cnt;

	if (!c->spf_ok)
		return;
	spf_count_lookups(c->spf_record, ctl_spf_fetch, NULL, &cnt);
	if (cnt.total > SPF_LOOKUP_LIMIT)
		add(c, "spf-lookups", ST_FAIL,
		    fmt("%d DNS-querying terms through includes, over the limit of %d: receivers "
		        "answer permerror (RFC 7208 4.6.4)",
		        cnt.total, SPF_LOOKUP_LIMIT),
		    fmt("replace includes, a and mx with ip4:/ip6: terms, or drop unused "
		        "includes"));
	else if (cnt.not_followed > 0)
		add(c, "spf-lookups", ST_WARN,
		    fmt("at least %d of %d DNS lookups; %d include(s) not followed: %s", cnt.total,
		        SPF_LOOKUP_LIMIT, cnt.not_followed, cnt.problem),
		    fmt("make every include publish exactly one SPF record"));
	else
		add(c, "spf-lookups", ST_PASS,
		    fmt("%d of %d DNS lookups", cnt.total, SPF_LOOKUP_LIMIT), NULL);
}

/* ---- DKIM ---- */

static void
check_dkim_key(struct ctx *c, const struct dkim_key_conf *k)
{
	struct mxdkim_key *key = NULL;
	struct dnsq_list l = {NULL, 0};
	enum dnsq_status st;
	char name[64 + 300], label[128], err[512];
	struct stat sb;

	snprintf(label, sizeof label, "dkim %s", k->selector);
	snprintf(name, sizeof name, "%s._domainkey.%s", k->selector, c->domain);
	if (mxdkim_key_load(&key, k->path, err, sizeof err) != 0) {
		add(c, label, ST_FAIL,
		    fmt("%s:%d: cannot load the key: %s", c->conf_name, k->line, err),
		    fmt("fix the path, or make a key: mxrelayctl dkim keygen %s %s", c->domain,
		        k->selector));
		return;
	}
	st = dnsq_txt(name, &l);
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		add(c, label, ST_FAIL, fmt("no DKIM record at %s", name),
		    fmt("publish the record printed by mxrelayctl dns dkim %s", c->domain));
	} else if (st != DNSQ_OK) {
		add(c, label, ST_FAIL, fmt("TXT lookup of %s: %s", name, dnsq_strerror(st)),
		    fmt("make %s's DNS answer, then check again", c->domain));
	} else if (l.n > 1) {
		add(c, label, ST_FAIL,
		    fmt("%s has %zu TXT records; verifiers need exactly one (RFC 6376 3.6.2.2)",
		        name, l.n),
		    fmt("keep only the record printed by mxrelayctl dns dkim %s", c->domain));
	} else if (mxdkim_txt_matches(key, l.v[0], err, sizeof err) != 0) {
		add(c, label, ST_FAIL, fmt("%s does not match %s: %s", name, k->path, err),
		    fmt("publish the record printed by mxrelayctl dns dkim %s", c->domain));
	} else if (stat(k->path, &sb) == 0 && (sb.st_mode & S_IROTH)) {
		c->dkim_pass++;
		add(c, label, ST_WARN,
		    fmt("%s matches %s, but every user can read that key file", name, k->path),
		    fmt("chmod o-rwx %s", k->path));
	} else {
		c->dkim_pass++;
		add(c, label, ST_PASS,
		    fmt("%s matches %s (%s)", name, k->path, mxdkim_alg_name(mxdkim_key_alg(key))),
		    NULL);
	}
	dnsq_list_free(&l);
	mxdkim_key_free(key);
}

static void
check_dkim(struct ctx *c)
{
	int keys = 0;

	for (const struct dkim_key_conf *k = c->cfg->dkim_keys; k != NULL; k = k->next) {
		if (strcasecmp(k->domain, c->domain) != 0)
			continue;
		keys++;
		check_dkim_key(c, k);
	}
	if (keys == 0)
		add(c, "dkim", ST_WARN,
		    fmt("%s has no dkim_key for %s: its mail goes out unsigned", c->conf_name,
		        c->domain),
		    fmt("mxrelayctl dkim keygen %s SELECTOR, add the dkim_key line, publish the "
		        "record",
		        c->domain));
}

/* ---- DMARC ---- */

/*
 * The TXT records at _dmarc.D for D = domain, then its parents down to two
 * labels (a simple stand-in for the organisational domain, RFC 7489 6.6.3).
 * *where is the name they came from.
 */
static enum dnsq_status
dmarc_lookup(const char *domain, struct dnsq_list *l, char *where, size_t wherelen)
{
	const char *d = domain;
	enum dnsq_status st;

	for (;;) {
		snprintf(where, wherelen, "_dmarc.%s", d);
		st = dnsq_txt(where, l);
		if (st != DNSQ_NXDOMAIN && st != DNSQ_NODATA)
			return st;
		d = strchr(d, '.');
		if (d == NULL || strchr(d + 1, '.') == NULL)
			break;
		d++;
	}
	snprintf(where, wherelen, "_dmarc.%s", domain);
	return st;
}

static void
check_dmarc(struct ctx *c)
{
	struct dnsq_list l;
	char where[300], why[512];
	enum dnsq_status st = dmarc_lookup(c->domain, &l, where, sizeof where);
	size_t n = 0, first = 0;
	char *fix_cmd = NULL;

	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		add(c, "dmarc", ST_FAIL, fmt("no DMARC record at %s", where),
		    fmt("publish a starter record: mxrelayctl dns dmarc %s", c->domain));
		return;
	}
	if (st != DNSQ_OK) {
		add(c, "dmarc", ST_FAIL, fmt("TXT lookup of %s: %s", where, dnsq_strerror(st)),
		    fmt("make %s's DNS answer, then check again", c->domain));
		return;
	}
	for (size_t i = 0; i < l.n; i++)
		if (dmarc_is_record(l.v[i]) && n++ == 0)
			first = i;
	fix_cmd = fmt("publish one correct record: mxrelayctl dns dmarc %s", c->domain);
	if (n > 1) {
		add(c, "dmarc", ST_FAIL,
		    fmt("%s has %zu DMARC records; receivers then apply none (RFC 7489 6.6.3)",
		        where, n),
		    fix_cmd);
	} else if (dmarc_parse(l.v[first], &c->dmarc, why, sizeof why) != 0) {
		add(c, "dmarc", ST_FAIL, fmt("%s is malformed: %s: %s", where, why, l.v[first]),
		    fix_cmd);
	} else {
		bool parent = strcmp(where + strlen("_dmarc."), c->domain) != 0;
		const char *policy = parent && c->dmarc.sp[0] ? c->dmarc.sp : c->dmarc.p;

		free(fix_cmd);
		c->dmarc_ok = true;
		add(c, "dmarc", ST_PASS,
		    fmt("%s: %s=%s%s%s", where, parent && c->dmarc.sp[0] ? "sp" : "p", policy,
		        parent ? " (the parent domain's record applies)" : "",
		        strcmp(policy, "none") == 0 ? "; monitoring only: tighten to quarantine, "
		                                      "then reject, once the reports are clean"
		                                    : ""),
		    NULL);
	}
	dnsq_list_free(&l);
}

/*
 * RFC 7489 3.1: DKIM aligns when d= is the From domain (strict) or shares
 * its organisational domain (relaxed); the relay signs mail from DOMAIN with
 * DOMAIN's own keys, so d= equals the From domain and both modes align.
 * SPF aligns when MAIL FROM is in DOMAIN (postmaster@DOMAIN here).
 */
static void
check_alignment(struct ctx *c)
{
	bool dkim = c->dkim_pass > 0, spf = c->spf_ips_pass;

	if (!c->dmarc_ok)
		return;
	if (dkim && spf)
		add(c, "dmarc-alignment", ST_PASS,
		    fmt("DKIM d=%s and SPF for MAIL FROM in %s both align with From: @%s "
		        "(adkim=%c, aspf=%c)",
		        c->domain, c->domain, c->domain, c->dmarc.adkim, c->dmarc.aspf),
		    NULL);
	else if (dkim)
		add(c, "dmarc-alignment", ST_PASS,
		    fmt("DKIM d=%s aligns with From: @%s (adkim=%c); SPF %s", c->domain, c->domain,
		        c->dmarc.adkim,
		        c->nips ? "does not pass" : "was not checked (no egress address)"),
		    NULL);
	else if (spf)
		add(c, "dmarc-alignment", ST_WARN,
		    fmt("only SPF aligns with From: @%s (MAIL FROM in %s); forwarded mail will "
		        "fail DMARC",
		        c->domain, c->domain),
		    fmt("sign with a key of %s: mxrelayctl dkim keygen %s SELECTOR", c->domain,
		        c->domain));
	else
		add(c, "dmarc-alignment", ST_FAIL,
		    fmt("neither DKIM nor SPF passes for %s, so DMARC fails for its mail (p=%s)",
		        c->domain, c->dmarc.p),
		    fmt("fix the dkim and spf checks above"));
}

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

static void
check_fcrdns(struct ctx *c, size_t i)
{
	struct dnsq_list ptr;
	enum dnsq_status st = dnsq_ptr(c->ipstr[i], &ptr);
	const char *ip = c->ipstr[i], *name;
	char label[64];

	snprintf(label, sizeof label, "fcrdns %s", ip);
	if (st == DNSQ_NXDOMAIN || st == DNSQ_NODATA) {
		add(c, label, ST_FAIL,
		    fmt("%s has no PTR record; many receivers refuse such mail", ip),
		    fmt("ask whoever owns %s (your provider) to set its PTR to %s", ip, c->helo));
		return;
	}
	if (st != DNSQ_OK) {
		add(c, label, ST_FAIL, fmt("PTR lookup of %s: %s", ip, dnsq_strerror(st)),
		    fmt("check again later"));
		return;
	}
	name = confirmed_name(&ptr, &c->ips[i], c->helo);
	if (name == NULL)
		add(c, label, ST_FAIL,
		    fmt("%s -> %s, but %s does not resolve back to %s (FCrDNS fails)", ip, ptr.v[0],
		        ptr.v[0], ip),
		    fmt("publish %s %s %s, or point the PTR at a name that has it", ptr.v[0],
		        c->ips[i].family == AF_INET ? "A" : "AAAA", ip));
	else if (strcasecmp(name, c->helo) != 0)
		add(c, label, ST_WARN,
		    fmt("%s -> %s -> %s, but the relay says HELO %s", ip, name, ip, c->helo),
		    fmt("set helo_name = %s in the config (or change the PTR to %s)", name,
		        c->helo));
	else
		add(c, label, ST_PASS, fmt("%s -> %s -> %s, the HELO name", ip, name, ip), NULL);
	dnsq_list_free(&ptr);
}

/* ---- MX ---- */

static void
check_mx(struct ctx *c)
{
	struct dnsq_list l, a;
	enum dnsq_status st = dnsq_mx(c->domain, &l);

	if (st == DNSQ_OK) {
		if (l.n == 1 && strcmp(l.v[0], "0 .") == 0)
			add(c, "mx", ST_FAIL,
			    fmt("%s publishes a null MX (RFC 7505): it receives no mail, so "
			        "bounces and DMARC reports to it are lost",
			        c->domain),
			    fmt("publish an MX for the server that receives %s's mail", c->domain));
		else
			add(c, "mx", ST_PASS, fmt("MX %s%s", l.v[0], l.n > 1 ? " and more" : ""),
			    NULL);
		dnsq_list_free(&l);
		return;
	}
	if (st == DNSQ_FAIL) {
		add(c, "mx", ST_FAIL, fmt("MX lookup of %s: %s", c->domain, dnsq_strerror(st)),
		    fmt("check again later"));
		return;
	}
	if (dnsq_addrs(c->domain, &a) == DNSQ_OK) {
		add(c, "mx", ST_WARN,
		    fmt("%s has no MX; mail to it goes to its address %s (implicit MX, RFC 5321 "
		        "5.1)",
		        c->domain, a.v[0]),
		    fmt("publish an MX record for %s", c->domain));
		dnsq_list_free(&a);
		return;
	}
	add(c, "mx", ST_FAIL,
	    fmt("%s has no MX and no address: bounces to postmaster@%s cannot be delivered",
	        c->domain, c->domain),
	    fmt("publish an MX record for %s pointing at the server that receives its mail",
	        c->domain));
}

/* ---- output ---- */

static void
json_string(FILE *f, const char *s)
{
	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void
print_json(const struct ctx *c, enum status worst)
{
	printf("{\"domain\": ");
	json_string(stdout, c->domain);
	printf(", \"config\": ");
	json_string(stdout, c->conf_name);
	printf(", \"helo\": ");
	json_string(stdout, c->helo);
	printf(", \"ips\": [");
	for (size_t i = 0; i < c->nips; i++) {
		printf(i ? ", " : "");
		json_string(stdout, c->ipstr[i]);
	}
	printf("], \"status\": \"%s\", \"checks\": [", status_name[worst]);
	for (size_t i = 0; i < c->r.n; i++) {
		const struct check *k = &c->r.v[i];

		printf("%s\n  {\"name\": ", i ? "," : "");
		json_string(stdout, k->name);
		printf(", \"status\": \"%s\", \"detail\": ", status_name[k->st]);
		json_string(stdout, k->detail);
		printf(", \"fix\": ");
		json_string(stdout, k->fix);
		printf("}");
	}
	printf("\n]}\n");
}

static void
print_text(const struct ctx *c)
{
	int count[3] = {0, 0, 0};

	printf("%s: checked with %s, HELO %s, egress", c->domain, c->conf_name, c->helo);
	for (size_t i = 0; i < c->nips; i++)
		printf(" %s", c->ipstr[i]);
	printf("%s\n\n", c->nips ? "" : " unknown");
	for (size_t i = 0; i < c->r.n; i++) {
		const struct check *k = &c->r.v[i];

		count[k->st]++;
		printf("%-4s  %-22s %s\n",
		       k->st == ST_PASS   ? "PASS"
		       : k->st == ST_WARN ? "WARN"
		                          : "FAIL",
		       k->name, k->detail);
		if (k->fix != NULL)
			printf("      %-22s fix: %s\n", "", k->fix);
	}
	printf("\n%d passed, %d warnings, %d failed\n", count[ST_PASS], count[ST_WARN],
	       count[ST_FAIL]);
}

/* ---- the command ---- */

struct opts {
	const char *conf;
	const char *domain;
	bool json;
	struct spf_ip ips[CTL_MAX_IPS];
	size_t nips;
};

static int
usage_error(const char *what, const char *arg)
{
	if (arg != NULL)
		fprintf(stderr, PROG ": %s '%s'\n", what, arg);
	else
		fprintf(stderr, PROG ": %s\n", what);
	fputs("usage:\n", stderr);
	ctl_dns_usage(stderr);
	return 2;
}

/* -1: go on; otherwise the exit status */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_IP4 = 256, OPT_IP6, OPT_JSON };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},  {"ip4", required_argument, NULL, OPT_IP4},
	    {"ip6", required_argument, NULL, OPT_IP6}, {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof *o);
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case OPT_IP4:
		case OPT_IP6:
			if (o->nips == CTL_MAX_IPS)
				return usage_error("too many addresses", NULL);
			if (ctl_ip_arg(PROG, optarg, ch == OPT_IP4 ? AF_INET : AF_INET6,
			               &o->ips[o->nips]) != 0)
				return 1;
			o->nips++;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'h':
			fputs("usage:\n", stdout);
			ctl_dns_usage(stdout);
			return 0;
		case ':':
			return usage_error("missing argument for", argv[optind - 1]);
		default:
			return usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return usage_error("expected exactly one DOMAIN", NULL);
	o->domain = argv[optind];
	return -1;
}

/* libspf2 reports some DNS trouble through its warning hook: keep our output ours. */
static void
spf_quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

int
ctl_dns_check(int argc, char **argv)
{
	struct opts o;
	struct ctx c;
	struct config *cfg = NULL;
	char domain[256];
	enum dnsq_status st;
	enum status worst = ST_PASS;
	int rc = parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (ctl_domain_arg(PROG, o.domain, domain) != 0 || ctl_load_config(PROG, o.conf, &cfg) != 0)
		return 1;
	st = dnsq_exists(domain);
	if (st != DNSQ_OK) {
		fprintf(stderr, PROG ": %s: %s\n", domain, dnsq_strerror(st));
		config_free(cfg);
		return 1;
	}
	memset(&c, 0, sizeof c);
	c.domain = domain;
	c.cfg = cfg;
	c.conf_name = ctl_config_name(cfg);
	c.helo = ctl_helo_name(cfg);
	if (o.nips > 0) {
		memcpy(c.ips, o.ips, sizeof c.ips);
		c.nips = o.nips;
	} else {
		c.nips = ctl_config_ips(cfg, c.ips);
	}
	for (size_t i = 0; i < c.nips; i++)
		spf_ip_format(&c.ips[i], c.ipstr[i], sizeof c.ipstr[i]);
	SPF_warning_handler = spf_quiet;
	SPF_info_handler = spf_quiet;
	check_spf_record(&c);
	check_spf_ips(&c);
	check_spf_lookups(&c);
	check_dkim(&c);
	check_dmarc(&c);
	check_alignment(&c);
	for (size_t i = 0; i < c.nips; i++)
		check_fcrdns(&c, i);
	check_mx(&c);
	for (size_t i = 0; i < c.r.n; i++)
		if (c.r.v[i].st > worst)
			worst = c.r.v[i].st;
	if (o.json)
		print_json(&c, worst);
	else
		print_text(&c);
	for (size_t i = 0; i < c.r.n; i++) {
		free(c.r.v[i].name);
		free(c.r.v[i].detail);
		free(c.r.v[i].fix);
	}
	free(c.r.v);
	free(c.spf_record);
	config_free(cfg);
	return worst == ST_FAIL ? 1 : 0;
}
