/*
 * ctl_dns_common: what the DNS and DKIM commands of mxrelayctl share (ctl.h):
 * argument checks, the relay's addresses and HELO name from the config, its
 * egress address (source_ipv4/6, else the kernel's choice), SPF record
 * lookups, TXT record printing and the usage text of `dns`. It calls no
 * command, so dns, dns check and dkim depend on it one way.
 */
#include "tools/ctl.h"
#include "tools/dnsq.h"
#include "tools/spf.h"
#include "mta/shared/config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- shared helpers ---- */

int
ctl_domain_arg(const char *prog, const char *in, char *out)
{
	size_t len = strlen(in), label = 0, labels = 1, i;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || in[0] == '.')
		goto bad;
	for (i = 0; i < len; i++) {
		char c = in[i];

		if (c == '.') {
			if (label == 0 || in[i - 1] == '-')
				goto bad;
			out[i] = '.';
			label = 0;
			labels++;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + ('a' - 'A'));
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      (c == '-' && label > 0)) ||
		    ++label > 63)
			goto bad;
		out[i] = c;
	}
	if (labels < 2 || in[len - 1] == '-')
		goto bad;
	out[len] = '\0';
	return 0;
bad:
	fprintf(stderr, "%s: bad domain name '%s'\n", prog, in);
	return -1;
}

int
ctl_ip_arg(const char *prog, const char *in, int family, struct spf_ip *out)
{
	if (spf_ip_parse(in, family, out) == 0)
		return 0;
	fprintf(stderr, "%s: bad %s address '%s'\n", prog, family == AF_INET ? "IPv4" : "IPv6", in);
	return -1;
}

int
ctl_dns_args(int argc, char **argv, const char *prog, const struct option *longopts,
             struct ctl_dns_opts *o)
{
	int ch, rc;

	memset(o, 0, sizeof *o);
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case CTL_OPT_IP4:
		case CTL_OPT_IP6:
			rc = ctl_ip_opt(prog, optarg, ch == CTL_OPT_IP4 ? AF_INET : AF_INET6,
			                o->ips, &o->nips);
			if (rc >= 0)
				return rc;
			break;
		case CTL_OPT_CURRENT:
			o->current = optarg;
			break;
		case CTL_OPT_JSON:
			o->json = true;
			break;
		default:
			return ctl_opt_end(ch, argv, prog, ctl_dns_usage);
		}
	}
	if (argc - optind != 1)
		return ctl_usage_error(prog, ctl_dns_usage, "expected exactly one DOMAIN", NULL);
	o->domain = argv[optind];
	return -1;
}

int
ctl_ip_opt(const char *prog, const char *arg, int family, struct spf_ip *ips, size_t *nips)
{
	if (*nips == CTL_MAX_IPS)
		return ctl_usage_error(prog, ctl_dns_usage, "too many addresses", NULL);
	if (ctl_ip_arg(prog, arg, family, &ips[*nips]) != 0)
		return 1;
	(*nips)++;
	return -1;
}

size_t
ctl_config_ips(const struct config *c, struct spf_ip *out)
{
	size_t n = 0;

	if (c->source_ipv4.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->source_ipv4;

		memset(&out[n], 0, sizeof out[n]);
		out[n].family = AF_INET;
		memcpy(out[n].addr, &s4->sin_addr, 4);
		n++;
	}
	if (c->source_ipv6.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->source_ipv6;

		memset(&out[n], 0, sizeof out[n]);
		out[n].family = AF_INET6;
		memcpy(out[n].addr, &s6->sin6_addr, 16);
		n++;
	}
	return n;
}

/* Global destinations (a.root-servers.net) for the kernel's choice of source: nothing is sent. */
#define EGRESS_PROBE4 "198.41.0.4"
#define EGRESS_PROBE6 "2001:503:ba3e::2:30"

/* The source address the kernel picks for a UDP socket connect()ed to a global address. */
static int
kernel_source(int family, struct spf_ip *out)
{
	struct sockaddr_storage to, me;
	socklen_t len = sizeof me, tolen = family == AF_INET ? sizeof(struct sockaddr_in)
	                                                     : sizeof(struct sockaddr_in6);
	int fd, rc = -1;

	memset(&to, 0, sizeof to);
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&to;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(53);
		inet_pton(AF_INET, EGRESS_PROBE4, &s4->sin_addr);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(53);
		inet_pton(AF_INET6, EGRESS_PROBE6, &s6->sin6_addr);
	}
	if ((fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	/* connect() on UDP only routes (ENETUNREACH without a route); no packet leaves */
	if (connect(fd, (struct sockaddr *)&to, tolen) == 0 &&
	    getsockname(fd, (struct sockaddr *)&me, &len) == 0 && me.ss_family == family) {
		memset(out, 0, sizeof *out);
		out->family = family;
		if (family == AF_INET)
			memcpy(out->addr, &((struct sockaddr_in *)&me)->sin_addr, 4);
		else
			memcpy(out->addr, &((struct sockaddr_in6 *)&me)->sin6_addr, 16);
		rc = 0;
	}
	close(fd);
	return rc;
}

enum ctl_egress_from
ctl_egress_ip(const struct config *c, int family, struct spf_ip *out)
{
	struct spf_ip ips[2];
	size_t n = ctl_config_ips(c, ips);

	for (size_t i = 0; i < n; i++) {
		if (ips[i].family == family) {
			*out = ips[i];
			return CTL_EGRESS_CONFIG;
		}
	}
	return kernel_source(family, out) == 0 ? CTL_EGRESS_KERNEL : CTL_EGRESS_NONE;
}

/* Whether the first bits of a (network order) match prefix. */
static bool
in_prefix(const unsigned char *a, const unsigned char *prefix, unsigned bits)
{
	for (unsigned i = 0; i < bits; i++) {
		unsigned byte = i / 8, bit = 7 - i % 8;

		if (((a[byte] >> bit) & 1u) != ((prefix[byte] >> bit) & 1u))
			return false;
	}
	return true;
}

const char *
ctl_ip_nonpublic(const struct spf_ip *ip)
{
	static const struct {
		int family;
		unsigned char prefix[16];
		unsigned bits;
		const char *what;
	} ranges[] = {
	    {AF_INET, {10}, 8, "private (RFC 1918)"},
	    {AF_INET, {172, 16}, 12, "private (RFC 1918)"},
	    {AF_INET, {192, 168}, 16, "private (RFC 1918)"},
	    {AF_INET, {100, 64}, 10, "shared address space, carrier-grade NAT (RFC 6598)"},
	    {AF_INET, {127}, 8, "loopback (RFC 1122 3.2.1.3)"},
	    {AF_INET, {169, 254}, 16, "link-local (RFC 3927)"},
	    {AF_INET, {0}, 8, "unspecified (RFC 1122 3.2.1.3)"},
	    {AF_INET, {192, 0, 0}, 24, "IETF protocol assignments (RFC 6890 2.2.2)"},
	    {AF_INET, {198, 18}, 15, "benchmarking (RFC 2544 C.2.2)"},
	    {AF_INET, {240}, 4, "reserved or broadcast (RFC 1112 4, RFC 919 7)"},
	    {AF_INET6, {0xfc}, 7, "unique local (RFC 4193)"},
	    {AF_INET6, {0xfe, 0x80}, 10, "link-local (RFC 4291 2.5.6)"},
	    {AF_INET6, {0}, 127, "loopback or unspecified (RFC 4291 2.5.2)"},
	};

	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (ip->family == AF_INET6 && memcmp(ip->addr, mapped, sizeof mapped) == 0) {
		/* ::ffff:a.b.c.d is the IPv4 address a.b.c.d (RFC 4291 2.5.5.2) */
		struct spf_ip v4 = {.family = AF_INET};

		memcpy(v4.addr, ip->addr + 12, 4);
		return ctl_ip_nonpublic(&v4);
	}
	for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
		if (ranges[i].family == ip->family &&
		    in_prefix(ip->addr, ranges[i].prefix, ranges[i].bits))
			return ranges[i].what;
	return NULL;
}

int
ctl_dns_setup(const char *prog, const char *conf)
{
	struct config *c;

	if (ctl_load_config(prog, conf, &c) != 0)
		return -1;
	config_free(c);
	return 0;
}

const char *
ctl_helo_name(const struct config *c)
{
	return c->helo_name != NULL ? c->helo_name : c->hostname;
}

enum dnsq_status
ctl_spf_records(const char *domain, struct dnsq_list *out)
{
	struct dnsq_list all;
	enum dnsq_status st = dnsq_txt(domain, &all);
	size_t i, n = 0;

	out->v = NULL;
	out->n = 0;
	if (st != DNSQ_OK)
		return st;
	for (i = 0; i < all.n; i++)
		if (spf_is_record(all.v[i]))
			all.v[n++] = all.v[i];
		else
			free(all.v[i]);
	all.n = n;
	if (n == 0) {
		dnsq_list_free(&all);
		return DNSQ_NODATA;
	}
	*out = all;
	return DNSQ_OK;
}

int
ctl_spf_fetch(void *ctx, const char *domain, char **record, char *why, size_t whylen)
{
	struct dnsq_list l;
	enum dnsq_status st = ctl_spf_records(domain, &l);

	(void)ctx;
	*record = NULL;
	if (st == DNSQ_NODATA) {
		snprintf(why, whylen, "publishes no SPF record (a permerror when included)");
		return -1;
	}
	if (st != DNSQ_OK) {
		snprintf(why, whylen, "%s", dnsq_strerror(st));
		return -1;
	}
	if (l.n > 1) {
		snprintf(why, whylen, "publishes %zu SPF records (a permerror)", l.n);
		dnsq_list_free(&l);
		return -1;
	}
	*record = l.v[0];
	free(l.v);
	return 0;
}

void
ctl_print_txt(FILE *f, const char *name, const char *zone_line, const char *value)
{
	fprintf(f,
	        "Zone-file line:\n%s\n\nWeb DNS panel:\n"
	        "  Name:  %s\n  Type:  TXT\n"
	        "  Value: %s\n",
	        zone_line, name, value);
}

/* ---- usage ---- */

void
ctl_dns_usage(FILE *f)
{
	fputs("  dns spf DOMAIN [--ip4 A] [--ip6 B] [--current \"v=spf1 ...\"] [-c CONF]\n"
	      "      the SPF record authorising the relay's addresses (source_ipv4/6 of\n"
	      "      CONF, or --ip4/--ip6), merged into DOMAIN's published record or\n"
	      "      --current, with warnings (+all, ptr, no all, lookups, length).\n"
	      "  dns dmarc DOMAIN [--rua mailto:ADDR] [-c CONF]\n"
	      "      a starter DMARC record (p=none; reports to ADDR, default\n"
	      "      dmarc@DOMAIN) and what to tighten later.\n"
	      "  dns dkim DOMAIN [-c CONF]\n"
	      "      the DNS records of DOMAIN's dkim_key entries in CONF.\n"
	      "  dns check DOMAIN [-c CONF] [--ip4 A] [--ip6 B] [--port25 MXDOMAIN] [--json]\n"
	      "  dns check --all [-c CONF] [--port25 MXDOMAIN] [--json]\n"
	      "      check the published SPF, DKIM, DMARC and MX of DOMAIN (--all: of every\n"
	      "      domain with a dkim_key or allowed in CONF's credentials file, with a\n"
	      "      summary table), and the relay's reverse DNS (FCrDNS with helo_name)\n"
	      "      and DNS blocklist listings; --port25 also connects to MXDOMAIN's MX\n"
	      "      on port 25. Exit 0 all pass, 3 worst is a warning, 1 a failure.\n"
	      "  dns spf-eval [-c CONF] [--helo NAME] [--record TEXT] [--trace] IP SENDER\n"
	      "      RFC 7208 check_host() for client IP and MAIL FROM SENDER (\"\" = null\n"
	      "      sender, postmaster@NAME): the result, why, the exp= explanation,\n"
	      "      with --trace each lookup; --record evaluates TEXT unpublished.\n"
	      "      CONF defaults to " CTL_DEFAULT_CONF " (else the built-in default);\n"
	      "      every lookup goes to its dns_servers (else /etc/resolv.conf's)\n",
	      f);
}
