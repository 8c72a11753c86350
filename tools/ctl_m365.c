/*
 * mxrelayctl m365 [-c CONF] [--by-ip|--by-cert] [--plan]: the Exchange
 * Online PowerShell for moving senders to the relay (issue 15 item 9).
 * Prints, never runs: the admin reads it and pastes it into a session
 * opened with Connect-ExchangeOnline.
 *
 * Cmdlets and parameters, as Microsoft documents them (learn.microsoft.com,
 * powershell/module/exchange/):
 *   New-InboundConnector: -Name, -ConnectorType Partner, -SenderDomains,
 *     -SenderIPAddresses with -RestrictDomainsToIPAddresses $true (by IP),
 *     -TlsSenderCertificateName with -RequireTls $true and
 *     -RestrictDomainsToCertificate $true (by certificate).
 *   Set-CASMailbox -Identity X -SmtpClientAuthenticationDisabled $true
 *     (exchange/clients-and-mobile-in-exchange-online/authenticated-client-
 *     smtp-submission): turns SMTP AUTH off for one mailbox.
 * SPF and DKIM are DNS changes: the lines name the mxrelayctl dns commands
 * that print the records for each domain.
 */
#include "tools/ctl.h"
#include "tools/ctl_exo.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mta/shared/config.h"

#define PROG "mxrelayctl m365"
#define MAX_DOMAINS 64

struct m365_opts {
	const char *conf;
	int by_cert;
	int plan;
	const char *domains[MAX_DOMAINS]; /* --domain D (repeatable) */
	size_t ndomains;
};

void
ctl_m365_usage(FILE *f)
{
	fputs("  m365 [-c CONF] [--by-ip | --by-cert] [--plan] [--domain D]...\n"
	      "      the Exchange Online PowerShell for the migration: an inbound Partner\n"
	      "      connector for the relay (by its IPv4 egress addresses, or by the name in\n"
	      "      tls_client_cert) for the sending domains (dkim_key lines, --plan's\n"
	      "      senders, --domain), the SPF and DKIM records to publish and, with\n"
	      "      --plan, Set-CASMailbox for the senders the audit saw move\n",
	      f);
}

/* A PowerShell single-quoted string: nothing expands, each quote doubled.
 * PowerShell ends such a string at ' and at U+2018-U+201B too (UTF-8
 * E2 80 98..9B), so those are doubled as well. */
static void
ps_str(const char *s)
{
	putchar('\'');
	for (; *s; s++) {
		const unsigned char *u = (const unsigned char *)s;
		if (*s == '\'')
			putchar('\'');
		else if (u[0] == 0xe2 && u[1] == 0x80 && u[2] >= 0x98 && u[2] <= 0x9b) {
			fwrite(s, 1, 3, stdout);
			fwrite(s, 1, 3, stdout);
			s += 2;
			continue;
		}
		putchar(*s);
	}
	putchar('\'');
}

/* The first DNS name of cert's subjectAltName, else its subject CN. 0 / -1. */
static int
cert_name(const char *path, char *out, size_t len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	GENERAL_NAMES *sans;
	int rc = -1;

	if (f)
		fclose(f);
	if (!x) {
		snprintf(err, errlen, "tls_client_cert %s: no PEM certificate can be read", path);
		return -1;
	}
	sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && rc != 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		if (g->type == GEN_DNS) {
			snprintf(out, len, "%.*s", ASN1_STRING_length(g->d.dNSName),
			         (const char *)ASN1_STRING_get0_data(g->d.dNSName));
			rc = 0;
		}
	}
	GENERAL_NAMES_free(sans);
	if (rc != 0 &&
	    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)len) > 0)
		rc = 0;
	if (rc != 0)
		snprintf(err, errlen, "tls_client_cert %s: no DNS name in subjectAltName or CN", path);
	X509_free(x);
	return rc;
}

static size_t domains_left_out; /* past MAX_DOMAINS: said, never dropped silently */

/* Add d to the set (case-insensitive, bounded). */
static void
add_domain(const char **v, size_t *n, const char *d)
{
	for (size_t i = 0; i < *n; i++)
		if (strcasecmp(v[i], d) == 0)
			return;
	if (*n < MAX_DOMAINS)
		v[(*n)++] = d;
	else
		domains_left_out++;
}

/* The sending domains: --domain, the dkim_key domains, then the plan's senders'. */
static size_t
sender_domains(const struct config *c, const struct m365_opts *o, const struct plan *p,
               const char **v)
{
	size_t n = 0;
	for (size_t i = 0; i < o->ndomains; i++)
		add_domain(v, &n, o->domains[i]);
	for (const struct dkim_key_conf *k = c->dkim_keys; k; k = k->next)
		add_domain(v, &n, k->domain);
	for (size_t i = 0; p && i < p->n; i++)
		add_domain(v, &n, strrchr(p->rows[i].sender, '@') + 1);
	return n;
}

static void
print_domains(const char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			putchar(',');
		ps_str(v[i]);
	}
}

/* The relay's egress addresses (source_ipv4/6 or the kernel's choice) into
 * text; comments say where they come from. 0 / -1 (message printed). */
static int
egress_ips(const struct config *c, char text[2][64], size_t *n)
{
	static const int fams[2] = {AF_INET, AF_INET6};

	*n = 0;
	for (int i = 0; i < 2; i++) {
		struct spf_ip ip;
		enum ctl_egress_from from = ctl_egress_ip(c, fams[i], &ip);
		const char *why;
		if (from == CTL_EGRESS_NONE)
			continue;
		spf_ip_format(&ip, text[*n], 64);
		if (fams[i] == AF_INET6) {
			/* New-InboundConnector -SenderIPAddresses takes IPv4 only (CIDR /24-/32) */
			printf("# note: %s (IPv6) is left out: -SenderIPAddresses takes IPv4 only, so "
			       "mail the relay sends over IPv6 does not match this connector "
			       "(--by-cert matches both)\n",
			       text[*n]);
			continue;
		}
		if (from == CTL_EGRESS_KERNEL)
			printf("# %s: detected (the kernel's source address); set source_ipv%d to pin "
			       "it\n",
			       text[*n], fams[i] == AF_INET ? 4 : 6);
		if ((why = ctl_ip_nonpublic(&ip)) != NULL)
			printf("# warning: %s is %s: Exchange Online sees the NAT's public address "
			       "instead\n",
			       text[*n], why);
		(*n)++;
	}
	if (*n == 0) {
		fprintf(stderr, PROG ": --by-ip: no IPv4 egress address (Exchange Online's "
		                     "-SenderIPAddresses takes IPv4 only): set source_ipv4, or use "
		                     "--by-cert\n");
		return -1;
	}
	return 0;
}

/* The name Exchange Online matches the relay's certificate against. 0 / -1 (printed). */
static int
cert_of(const struct config *c, char *name, size_t len)
{
	char err[600];

	if (!c->tls_client_cert) {
		fprintf(stderr, PROG ": --by-cert: %s sets no tls_client_cert (the certificate the "
		                     "relay presents on STARTTLS)\n",
		        ctl_config_name(c));
		return -1;
	}
	if (cert_name(c->tls_client_cert, name, len, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return -1;
	}
	return 0;
}

/* The New-InboundConnector line (name: the certificate's, by_cert). 0 / -1 (printed). */
static int
print_connector(const struct config *c, const struct m365_opts *o, const char *name,
                const char **dom, size_t nd)
{
	char err[600], ips[2][64];
	size_t nips = 0;

	printf("# 1. An inbound Partner connector: Exchange Online knows the relay by its %s.\n",
	       o->by_cert ? "TLS certificate" : "IP addresses");
	printf("# warning: %s makes Exchange Online reject mail from these domains that comes "
	       "from any other %s:\n"
	       "#   services that send as these domains straight to Exchange Online (SaaS: CRM, "
	       "ticketing, newsletters) need their own connector or must relay through mxrelay.\n",
	       o->by_cert ? "-RestrictDomainsToCertificate" : "-RestrictDomainsToIPAddresses",
	       o->by_cert ? "certificate" : "IP address");
	if (!o->by_cert && egress_ips(c, ips, &nips) != 0)
		return -1;
	snprintf(err, sizeof err, "mxrelay %s", c->hostname);
	fputs("New-InboundConnector -Name ", stdout);
	ps_str(err);
	fputs(" -ConnectorType Partner -SenderDomains ", stdout);
	print_domains(dom, nd);
	if (o->by_cert) {
		fputs(" -RequireTls $true -RestrictDomainsToCertificate $true "
		      "-TlsSenderCertificateName ",
		      stdout);
		ps_str(name);
	} else {
		fputs(" -SenderIPAddresses ", stdout);
		for (size_t i = 0; i < nips; i++) {
			if (i)
				putchar(',');
			ps_str(ips[i]);
		}
		fputs(" -RestrictDomainsToIPAddresses $true", stdout);
	}
	putchar('\n');
	return 0;
}

/* Set-CASMailbox for each sender the audit saw move; the rest as comments. */
static void
print_mailboxes(const struct plan *p)
{
	size_t moved = 0;

	printf("# 2. SMTP AUTH off for the mailboxes whose devices send through the relay now.\n");
	for (size_t i = 0; i < p->n; i++) {
		if (!p->e[i].seen)
			continue;
		if (p->e[i].allowlisted) /* no AUTH: maybe another sender using that address */
			printf("# seen only without AUTH from allowlisted %s: check it is the device, "
			       "then:\n# ",
			       p->e[i].seen_ip);
		else if (p->e[i].unproven) /* a domain-wide credential: maybe not this mailbox */
			printf("# seen as user %s, whose senders do not name this address: check it is "
			       "the device, then:\n# ",
			       p->e[i].seen_user);
		fputs("Set-CASMailbox -Identity ", stdout);
		ps_str(p->rows[i].sender);
		fputs(" -SmtpClientAuthenticationDisabled $true\n", stdout);
		moved++;
	}
	for (size_t i = 0; i < p->n; i++)
		if (!p->e[i].seen)
			printf("# not moved yet (keep SMTP AUTH): %s\n", p->rows[i].sender);
	if (moved == 0 && p->n == 0)
		printf("# (the imported report lists no senders)\n");
}

static void
print_dns(const struct config *c, const char **dom, size_t nd)
{
	char conf[PATH_MAX * 4 + 3] = "", d[300];

	if (c->path)
		plan_sh_quote(c->path, conf, sizeof conf);
	printf("# 3. SPF and DKIM for each sending domain (DNS, not PowerShell): keep "
	       "include:spf.protection.outlook.com while Exchange Online still sends.\n");
	for (size_t i = 0; i < nd; i++) { /* shell lines: quoted (--domain is the admin's) */
		plan_sh_quote(dom[i], d, sizeof d);
		printf("#   mxrelayctl dns spf %s%s%s\n", d, conf[0] ? " -c " : "", conf);
		printf("#   mxrelayctl dns dkim %s%s%s\n", d, conf[0] ? " -c " : "", conf);
	}
}

/* 0, or the exit status when the caller must stop. */
static int
m365_args(int argc, char **argv, struct m365_opts *o, int *stop)
{
	enum { OPT_IP = 256, OPT_CERT, OPT_PLAN, OPT_DOMAIN };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"by-ip", no_argument, NULL, OPT_IP},
	    {"by-cert", no_argument, NULL, OPT_CERT}, {"plan", no_argument, NULL, OPT_PLAN},
	    {"domain", required_argument, NULL, OPT_DOMAIN},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	int ch, ip = 0;

	*stop = 1;
	memset(o, 0, sizeof *o);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (ch == 'c')
			o->conf = optarg;
		else if (ch == OPT_IP)
			ip = 1;
		else if (ch == OPT_CERT)
			o->by_cert = 1;
		else if (ch == OPT_PLAN)
			o->plan = 1;
		else if (ch == OPT_DOMAIN && (!*optarg || strchr(optarg, '*') || strchr(optarg, '@')))
			return ctl_usage_error(PROG, ctl_m365_usage,
			                       "--domain takes a domain name (no '*', no '@')", optarg);
		else if (ch == OPT_DOMAIN && o->ndomains < MAX_DOMAINS)
			o->domains[o->ndomains++] = optarg;
		else if (ch == OPT_DOMAIN)
			return ctl_usage_error(PROG, ctl_m365_usage, "too many --domain", optarg);
		else
			return ctl_opt_end(ch, argv, PROG, ctl_m365_usage);
	}
	if (optind != argc)
		return ctl_usage_error(PROG, ctl_m365_usage, "unexpected argument", argv[optind]);
	if (ip && o->by_cert)
		return ctl_usage_error(PROG, ctl_m365_usage, "--by-ip and --by-cert exclude each other",
		                       NULL);
	*stop = 0;
	return 0;
}

int
ctl_m365(int argc, char **argv)
{
	const char *dom[MAX_DOMAINS];
	struct m365_opts o;
	struct config *c = NULL;
	struct plan p = {0};
	char err[1024], cert[256] = "";
	size_t nd;
	int stop, rc = 1;

	rc = m365_args(argc, argv, &o, &stop);
	if (stop)
		return rc;
	rc = 1;
	if (ctl_load_config(PROG, o.conf, &c) != 0)
		return 1;
	if (o.plan && plan_build(c, &p, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto done;
	}
	if (o.by_cert && cert_of(c, cert, sizeof cert) != 0)
		goto done;
	nd = sender_domains(c, &o, o.plan ? &p : NULL, dom);
	if (nd == 0) {
		/* '*' with a Restrict switch would reject all inbound internet mail */
		fprintf(stderr,
		        PROG ": no sending domain known for the connector's -SenderDomains: add "
		             "dkim_key lines to %s, import the report (audit import-exo) and use "
		             "--plan, or name them with --domain D\n",
		        ctl_config_name(c));
		goto done;
	}
	if (domains_left_out)
		fprintf(stderr,
		        PROG ": %zu more sending domain%s left out: at most %d per run; run again "
		             "with --domain D for the rest\n",
		        domains_left_out, domains_left_out == 1 ? "" : "s", MAX_DOMAINS);
	printf("# Exchange Online PowerShell for moving senders to mxrelay (%s).\n", c->hostname);
	printf("# Run it in a session opened with Connect-ExchangeOnline.\n");
	if (print_connector(c, &o, cert, dom, nd) != 0)
		goto done;
	if (o.plan)
		print_mailboxes(&p);
	else
		printf("# 2. SMTP AUTH off per mailbox: mxrelayctl audit import-exo, then m365 "
		       "--plan.\n");
	print_dns(c, dom, nd);
	rc = 0;
done:
	plan_free(&p);
	config_free(c);
	return rc;
}
