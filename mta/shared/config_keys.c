/*
 * config_keys: the table of configuration keys (name, scope, setter, field,
 * lower bound) and the small typed setters that parse one value each, so a
 * new key is one line and every key of a type gets the same error messages.
 * The file reader (config.c) finds the key; config_fail, here so that the
 * setters depend on nothing in config.c, writes "FILE:LINE: KEY: reason".
 */
#include "mta/shared/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/util.h"

int
config_fail(struct config_parse *p, const char *fmt, ...)
{
	char reason[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (p->key)
		snprintf(p->err, p->errlen, "%s:%d: %s: %s", p->file, p->line, p->key, reason);
	else
		snprintf(p->err, p->errlen, "%s:%d: %s", p->file, p->line, reason);
	return -1;
}

/* ---- value parsers ---- */

/* "35M" -> bytes. Suffix K/M/G (powers of 1024). */
static int
parse_size(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;
	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || n > (UINT64_C(1) << 62))
		return -1;
	int shift;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		*out = n;
		return 0;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	default:
		return -1;
	}
	/* sizes live in int64 elsewhere (SQLite, off_t): stay below 2^62 */
	if (n > (UINT64_C(1) << 62) >> shift)
		return -1;
	n <<= shift;
	if (end[1] != '\0' && !(toupper((unsigned char)end[1]) == 'B' && end[2] == '\0'))
		return -1;
	*out = n;
	return 0;
}

int
config_parse_duration(const char *v, bool weeks, uint64_t max_secs, uint64_t *out)
{
	char *end;
	unsigned long long n, mult = 1;
	if (!isdigit((unsigned char)v[0]))
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	case 'w':
		if (!weeks)
			return -1;
		mult = 7 * 86400;
		break;
	default:
		return -1;
	}
	if (*end && end[1] != '\0')
		return -1;
	if (n > max_secs / mult)
		return -1;
	*out = n * mult;
	return 0;
}

/* Configuration durations: no weeks, at most a year. */
static int
parse_duration(const char *v, unsigned *out)
{
	uint64_t secs;
	if (config_parse_duration(v, false, 365ULL * 86400, &secs) != 0)
		return -1;
	*out = (unsigned)secs;
	return 0;
}

int
config_parse_addr(const char *v, struct listener_conf *l)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	char *end;
	long port;
	size_t hl;

	memset(&l->addr, 0, sizeof(l->addr));
	if (v[0] == '[') {
		const char *rb = strchr(v, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - v - 1);
		colon = rb + 1;
		v++;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || memchr(v, ':', (size_t)(colon - v)) != NULL)
			return -1; /* IPv6 needs brackets: "::1:25" is ambiguous */
		hl = (size_t)(colon - v);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, v, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port < 1 || port > 65535)
		return -1;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&l->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&l->addr;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		l->addrlen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		l->addrlen = sizeof(*s6);
	} else {
		return -1;
	}
	return 0;
}

static int
parse_date(const char *v, time_t *out)
{
	struct tm tm;
	char *end;
	memset(&tm, 0, sizeof(tm));
	end = strptime(v, "%Y-%m-%d", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	int y = tm.tm_year, m = tm.tm_mon, d = tm.tm_mday;
	time_t t = timegm(&tm);
	struct tm back;
	gmtime_r(&t, &back);
	if (back.tm_year != y || back.tm_mon != m || back.tm_mday != d)
		return -1; /* 2026-02-30 does not roll over into March */
	/* the sunset date is the last day legacy TLS works: it stops at the next midnight UTC */
	*out = t + 86400;
	return 0;
}

static int
parse_source(struct config_parse *p, int fam, const char *v, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, v, &s4->sin_addr) != 1)
			return config_fail(p, "\"%s\" is not an IPv4 address", v);
		s4->sin_family = AF_INET;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, v, &s6->sin6_addr) != 1)
			return config_fail(p, "\"%s\" is not an IPv6 address", v);
		s6->sin6_family = AF_INET6;
	}
	return 0;
}

/* "example.com smtp.example.net:587" (port optional); appended, file order kept. */
static int
parse_route(struct config_parse *p, const char *v, struct route **list)
{
	char dom[256], host[256], extra[2];
	unsigned port = 0;
	char *colon;
	struct route *r, **tail;

	if (sscanf(v, "%255s %255s %1s", dom, host, extra) != 2)
		return config_fail(p, "expected \"DOMAIN HOST[:PORT]\"");
	/* "host:port", "[v6]:port" or "[v6]"; a bare IPv6 address needs the brackets */
	colon = host[0] == '[' ? strchr(host, ']') : strrchr(host, ':');
	if (host[0] == '[') {
		if (colon == NULL || (colon[1] != '\0' && colon[1] != ':'))
			return config_fail(p, "\"%s\" is not [IPv6] or [IPv6]:PORT", host);
		colon = colon[1] == ':' ? colon + 1 : NULL;
	} else if (colon != NULL && memchr(host, ':', (size_t)(colon - host)) != NULL) {
		return config_fail(p, "IPv6 address \"%s\" needs brackets: [IPv6]:PORT", host);
	}
	if (colon != NULL) {
		char *end;
		long n = strtol(colon + 1, &end, 10);
		if (*end || colon[1] == '\0' || n < 1 || n > 65535)
			return config_fail(p, "bad port in \"%s\"", host);
		port = (unsigned)n;
		*colon = '\0';
	}
	if (host[0] == '\0')
		return config_fail(p, "empty host");
	for (r = *list; r; r = r->next)
		if (strcasecmp(r->domain, dom) == 0)
			return config_fail(p, "a route for %s is already defined", dom);
	r = xcalloc(1, sizeof(*r));
	r->domain = xstrdup(dom);
	r->host = xstrdup(host);
	r->port = port;
	for (tail = list; *tail; tail = &(*tail)->next)
		;
	*tail = r;
	return 0;
}

static const char *const level_names[] = {
    [TLS_L_NONE] = "none",     [TLS_L_MAY] = "may",   [TLS_L_ENCRYPT] = "encrypt",
    [TLS_L_VERIFY] = "verify", [TLS_L_DANE] = "dane",
};

const char *
config_tls_level_name(enum tls_level l)
{
	return (unsigned)l < sizeof level_names / sizeof level_names[0] ? level_names[l] : "?";
}

/* A domain name or ".domain": letters, digits, '-', '.', no empty label. */
static int
policy_domain_ok(const char *d)
{
	size_t n = strlen(d);
	if (*d == '.')
		d++, n--;
	if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.' || strstr(d, "..") != NULL)
		return 0;
	return strspn(d, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == n;
}

/* "example.com encrypt" / ".example.com verify"; file order kept. */
static int
set_tls_policy(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	struct config *c = base;
	char dom[256], level[16], extra[2];
	struct tls_policy_conf *t, **tail;
	size_t i;
	(void)k;

	if (sscanf(v, "%255s %15s %1s", dom, level, extra) != 2)
		return config_fail(p, "expected \"DOMAIN none|may|encrypt|verify|dane\"");
	if (!policy_domain_ok(dom))
		return config_fail(p, "\"%s\" is not a domain name (or .domain for its subdomains)",
		                   dom);
	for (i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcmp(level, level_names[i]) == 0)
			break;
	if (i == sizeof level_names / sizeof level_names[0])
		return config_fail(p, "\"%s\" is not one of none, may, encrypt, verify, dane", level);
	for (t = c->tls_policies; t; t = t->next)
		if (strcasecmp(t->domain, dom) == 0)
			return config_fail(p, "a tls_policy for %s is already set on line %d", dom,
			                   t->line);
	t = xcalloc(1, sizeof(*t));
	t->domain = xstrdup(dom);
	t->level = (enum tls_level)i;
	t->line = p->line;
	for (tail = &c->tls_policies; *tail; tail = &(*tail)->next)
		;
	*tail = t;
	return 0;
}

/* "example.com s2026 /etc/mxrelay/dkim/example.com.s2026.pem"; file order kept. */
static int
parse_dkim_key(struct config_parse *p, const char *v, struct dkim_key_conf **list)
{
	char dom[256], sel[64], path[4096], extra[2];
	struct dkim_key_conf *k, **tail;

	if (sscanf(v, "%255s %63s %4095s %1s", dom, sel, path, extra) != 3)
		return config_fail(p, "expected \"DOMAIN SELECTOR KEYFILE\"");
	for (k = *list; k; k = k->next)
		if (strcasecmp(k->domain, dom) == 0 && strcasecmp(k->selector, sel) == 0)
			return config_fail(p, "selector %s of %s is already defined at line %d",
			                   sel, dom, k->line);
	k = xcalloc(1, sizeof(*k));
	k->domain = xstrdup(dom);
	k->selector = xstrdup(sel);
	k->path = xstrdup(path);
	k->line = p->line;
	for (tail = list; *tail; tail = &(*tail)->next)
		;
	*tail = k;
	return 0;
}

/* Forget a metrics_listen set earlier (a later line replaces it). */
static void
c_metrics_off(struct config *c)
{
	free(c->metrics_listen);
	c->metrics_listen = NULL;
	memset(&c->metrics_addr, 0, sizeof(c->metrics_addr));
	c->metrics_addrlen = 0;
}

/* ---- setters: one per value type ---- */

#define FIELD(base, k) ((void *)((char *)(base) + (k)->off))

static int
set_str(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	char **f = FIELD(base, k);
	if (*v == '\0')
		return config_fail(p, "empty value");
	free(*f);
	*f = xstrdup(v);
	return 0;
}

static int
set_log(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	if (*v != '\0' && strcmp(v, "stderr") != 0 && strcmp(v, "syslog") != 0 && *v != '/')
		return config_fail(p, "\"%s\" is not one of stderr, syslog or an absolute file path",
		                   v);
	return set_str(p, k, base, v);
}

static int
set_size(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	uint64_t *f = FIELD(base, k);
	if (parse_size(v, f) != 0)
		return config_fail(p, "\"%s\" is not a size (like 512K, 35M, 1G)", v);
	if (*f < k->min)
		return config_fail(p, "must be at least %llu bytes", (unsigned long long)k->min);
	return 0;
}

static int
set_uint(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	char *end;
	unsigned long n;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)*v) || *end || errno || n > 1000000)
		return config_fail(p, "\"%s\" is not a number from 0 to 1000000", v);
	if (n < k->min)
		return config_fail(p, "must be at least %llu", (unsigned long long)k->min);
	*(unsigned *)FIELD(base, k) = (unsigned)n;
	return 0;
}

static int
set_duration(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	unsigned *f = FIELD(base, k);
	if (parse_duration(v, f) != 0)
		return config_fail(p, "\"%s\" is not a duration (like 30s, 5m, 2h, 1d)", v);
	if (*f < k->min)
		return config_fail(p, "must be at least %llus", (unsigned long long)k->min);
	return 0;
}

/*
 * RFC 5321 4.5.3.2: a server should wait at least this long, so a longer
 * limit buys nothing and a shorter one is the operator's choice.
 */
static int
set_ceiling(struct config_parse *p, const struct config_key *k, void *base, const char *v,
            unsigned max, const char *rfc)
{
	if (set_duration(p, k, base, v) != 0)
		return -1;
	if (*(unsigned *)FIELD(base, k) > max)
		return config_fail(p, "at most %um (RFC 5321 %s)", max / 60, rfc);
	return 0;
}

static int
set_command_deadline(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	return set_ceiling(p, k, base, v, 5 * 60, "4.5.3.2.7");
}

/*
 * The default is RFC 5321 4.5.3.2.6's 10 minutes, but not a ceiling: a 35 MB
 * message needs about 60 KB/s to fit in it, so a site with large mail over
 * slow links raises it (min_data_rate still closes a client that drips).
 */
static int
set_data_deadline(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	if (set_duration(p, k, base, v) != 0)
		return -1;
	if (*(unsigned *)FIELD(base, k) > 24 * 3600)
		return config_fail(p, "at most 24h");
	return 0;
}

/* "500ms", or any set_duration form in seconds; stored in milliseconds */
static int
set_msduration(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	unsigned *f = FIELD(base, k);
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	unsigned sec;
	if (isdigit((unsigned char)*v) && strcmp(end, "ms") == 0 && n <= 3600000) {
		*f = (unsigned)n;
	} else if (parse_duration(v, &sec) == 0 && sec <= 3600) {
		*f = sec * 1000;
	} else {
		return config_fail(p, "\"%s\" is not a duration (like 500ms, 2s)", v);
	}
	if (*f < k->min)
		return config_fail(p, "must be at least %llums", (unsigned long long)k->min);
	return 0;
}

static int
set_bool(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	int *f = FIELD(base, k);
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
		*f = 1;
	else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
		*f = 0;
	else
		return config_fail(p, "\"%s\" is not yes or no", v);
	return 0;
}

/*
 * One word of k->choices. The fields are int, unsigned or enums without
 * negative values (unsigned int under gcc and clang): all int-sized, and a
 * signed/unsigned pair may alias (C11 6.5p7).
 */
static int
set_choice(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	char names[128];
	size_t len = 0;
	const struct config_choice *c;

	for (c = k->choices; c->name; c++)
		if (strcmp(v, c->name) == 0) {
			*(int *)FIELD(base, k) = c->value;
			return 0;
		}
	names[0] = '\0';
	for (c = k->choices; c->name && len < sizeof(names); c++)
		len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
		                        c == k->choices ? "" : ", ", c->name);
	return config_fail(p, "\"%s\" is not one of %s", v, names);
}

static int
set_cidrs(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	struct cidr_list *cl = FIELD(base, k);
	char cerr[256];
	cidr_list_free(cl);
	if (cidr_list_parse(cl, v, cerr, sizeof(cerr)) != 0)
		return config_fail(p, "%s", cerr);
	return 0;
}

/* a listener's address: base is its struct listener_conf */
static int
set_addr(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	struct listener_conf *l = base;
	(void)k;
	if (config_parse_addr(v, l) != 0)
		return config_fail(p, "\"%s\" is not IP:PORT or [IPv6]:PORT", v);
	free(l->address_text);
	l->address_text = xstrdup(v);
	return 0;
}

static int
set_date(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	if (parse_date(v, FIELD(base, k)) != 0)
		return config_fail(p, "\"%s\" is not a date YYYY-MM-DD", v);
	return 0;
}

static int
set_ip4(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	return parse_source(p, AF_INET, v, FIELD(base, k));
}

static int
set_ip6(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	return parse_source(p, AF_INET6, v, FIELD(base, k));
}

static int
set_port(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (!isdigit((unsigned char)*v) || *end || n < 1 || n > 65535)
		return config_fail(p, "\"%s\" is not a port from 1 to 65535", v);
	*(unsigned *)FIELD(base, k) = (unsigned)n;
	return 0;
}

static int
set_route(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	return parse_route(p, v, FIELD(base, k));
}

static int
set_dkim_key(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	return parse_dkim_key(p, v, FIELD(base, k));
}

/* c-ares' server list (ares_set_servers_ports_csv), checked here so a typo is FILE:LINE */
static int
set_dns_servers(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	const char *s = v;

	for (;;) {
		size_t n = strcspn(s, ",");

		if (config_dns_server_ok(s, n) != 0)
			return config_fail(p,
			                   "\"%.*s\" is not IPv4[:PORT], IPv6 or [IPv6]:PORT (a "
			                   "list: comma-separated, no spaces)",
			                   (int)n, s);
		if (s[n] == '\0')
			break;
		s += n + 1;
	}
	return set_str(p, k, base, v);
}

/* "IP:PORT" as for a listener; "" or "off": no metrics endpoint */
static int
set_metrics(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	struct config *c = base;
	struct listener_conf tmp;
	(void)k;
	memset(&tmp, 0, sizeof(tmp));
	c_metrics_off(c);
	if (*v == '\0' || strcmp(v, "off") == 0)
		return 0;
	if (config_parse_addr(v, &tmp) != 0)
		return config_fail(p, "\"%s\" is not IP:PORT or [IPv6]:PORT (or off)", v);
	c->metrics_addr = tmp.addr;
	c->metrics_addrlen = tmp.addrlen;
	c->metrics_listen = xstrdup(v);
	return 0;
}

/* dnsbl = ZONE [URL] | none (config_dnsbl.c); base is the struct config */
static int
set_dnsbl(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	char why[512];

	(void)k;
	if (config_dnsbl_add(base, v, p->line, why, sizeof why) != 0)
		return config_fail(p, "%s", why);
	return 0;
}

/* rate_limit, bounce_owner, header_repair...: "WHO ..." lines (config_sender.c) */
static int
set_sender_rule(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	char why[512];

	if (config_sender_rule_add(base, k->name, v, p->line, why, sizeof why) != 0)
		return config_fail(p, "%s", why);
	return 0;
}

/* local_sender = DOMAIN (mxrelay-sendmail's sender domain) */
static int
set_domain(struct config_parse *p, const struct config_key *k, void *base, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 253 || strchr(v, '.') == NULL || v[0] == '.' || v[n - 1] == '.' ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != n)
		return config_fail(p, "\"%s\" is not a domain name (A-label, e.g. example.com)", v);
	return set_str(p, k, base, v);
}

/* ---- the words of the choice keys, in the order their errors list them ---- */

static const struct config_choice tls_modes[] = {{"none", LTLS_NONE},
                                                 {"starttls", LTLS_STARTTLS},
                                                 {"required", LTLS_REQUIRED},
                                                 {"implicit", LTLS_IMPLICIT},
                                                 {NULL, 0}};
static const struct config_choice tls_versions[] = {{"1.0", TLS1_VERSION},
                                                    {"1.1", TLS1_1_VERSION},
                                                    {"1.2", TLS1_2_VERSION},
                                                    {"1.3", TLS1_3_VERSION},
                                                    {NULL, 0}};
static const struct config_choice families[] = {
    {"any", FAM_ANY}, {"ipv4", FAM_IPV4}, {"ipv6", FAM_IPV6}, {NULL, 0}};
/* PROXY_V1 / PROXY_V2 bits (mta/smtpd/proxy.h) */
static const struct config_choice proxy_versions[] = {
    {"no", 0}, {"v1", 1}, {"v2", 2}, {"any", 3}, {NULL, 0}};
/* dkim_refuse_unsigned: 0 send unsigned, 1 refuse */
static const struct config_choice bare_lf_modes[] = {
    {"normalize", BARE_LF_NORMALIZE}, {"reject", BARE_LF_REJECT}, {NULL, 0}};
static const struct config_choice case_modes[] = {{"insensitive", 0}, {"sensitive", 1}, {NULL, 0}};
static const struct config_choice unsigned_modes[] = {{"send", 0}, {"refuse", 1}, {NULL, 0}};
static const struct config_choice missing_from_modes[] = {
    {"refuse", MISSING_FROM_REFUSE}, {"envelope", MISSING_FROM_ENVELOPE}, {NULL, 0}};

/* ---- the keys ---- */

#define G(n, s, f)                                                                                 \
	{                                                                                          \
		n, CONFIG_GLOBAL, s, offsetof(struct config, f), 0, NULL                           \
	}
#define GM(n, s, f, m)                                                                             \
	{                                                                                          \
		n, CONFIG_GLOBAL, s, offsetof(struct config, f), m, NULL                           \
	}
#define GC(n, f, c)                                                                                \
	{                                                                                          \
		n, CONFIG_GLOBAL, set_choice, offsetof(struct config, f), 0, c                     \
	}
#define L(n, s, f)                                                                                 \
	{                                                                                          \
		n, CONFIG_LISTENER, s, offsetof(struct listener_conf, f), 0, NULL                  \
	}
#define LC(n, f, c)                                                                                \
	{                                                                                          \
		n, CONFIG_LISTENER, set_choice, offsetof(struct listener_conf, f), 0, c            \
	}

const struct config_key config_keys[] = {
    G("hostname", set_str, hostname),
    G("data_dir", set_str, data_dir),
    G("user", set_str, user),
    G("relay_from", set_cidrs, relay_from),
    G("credentials", set_str, credentials),
    GM("max_message_size", set_size, max_message_size, 1024),
    GM("max_recipients", set_uint, max_recipients, 1),
    GM("max_header_size", set_size, max_header_size, 1024),
    GM("max_connections", set_uint, max_connections, 1),
    GM("max_connections_per_ip", set_uint, max_connections_per_ip, 1),
    GM("auth_max_failures", set_uint, auth_max_failures, 1),
    G("auth_block_time", set_duration, auth_block_time),
    GM("session_timeout", set_duration, session_timeout, 1),
    G("shutdown_timeout", set_duration, shutdown_timeout),
    GM("command_deadline", set_command_deadline, command_deadline, 1),
    GM("data_deadline", set_data_deadline, data_deadline, 1),
    G("min_data_rate", set_size, min_data_rate),
    GM("stress_timeout", set_duration, stress_timeout, 1),
    G("spool_max_size", set_size, spool_max_size),
    G("queue_minfree", set_size, queue_minfree),
    G("spool_reserve", set_size, spool_reserve),
    G("log", set_log, log),
    G("control_socket", set_str, control_socket),
    G("submit_socket", set_str, submit_socket),
    G("helo_name", set_str, helo_name),
    G("source_ipv4", set_ip4, source_ipv4),
    G("source_ipv6", set_ip6, source_ipv6),
    GC("address_family", address_family, families),
    G("dns_servers", set_dns_servers, dns_servers),
    GM("dns_timeout", set_msduration, dns_timeout_ms, 50),
    GM("dns_tries", set_uint, dns_tries, 1),
    G("allow_private_mx", set_bool, allow_private_mx),
    G("smtp_port", set_port, smtp_port),
    G("route", set_route, routes),
    G("dkim_key", set_dkim_key, dkim_keys),
    G("dnsbl", set_dnsbl, dnsbls),
    GC("sender_case", sender_case_sensitive, case_modes),
    G("local_sender", set_domain, local_sender),
    G("rate_limit", set_sender_rule, rate_limits),
    G("bounce_owner", set_sender_rule, bounce_owners),
    G("postmaster_bounce_copy", set_sender_rule, postmaster_bounce_copy),
    G("header_repair", set_sender_rule, header_repairs),
    G("display_name_address", set_sender_rule, display_name_rules),
    GC("dkim_unsigned", dkim_refuse_unsigned, unsigned_modes),
    G("dkim_require_published", set_bool, dkim_require_published),
    GC("missing_from", missing_from, missing_from_modes),
    GM("retry_min", set_duration, retry_min, 1),
    G("retry_max", set_duration, retry_max),
    G("max_queue_lifetime", set_duration, max_queue_lifetime),
    GM("delivery_concurrency", set_uint, delivery_concurrency, 1),
    GM("domain_concurrency", set_uint, domain_concurrency, 1),
    GM("domain_concurrency_start", set_uint, domain_concurrency_start, 1),
    GM("rcpts_per_transaction", set_uint, rcpts_per_transaction, 1),
    GM("max_inflight", set_uint, max_inflight, 1),
    GM("dest_idle_time", set_duration, dest_idle_time, 1),
    GM("provider_backoff_min", set_duration, provider_backoff_min, 1),
    GM("provider_backoff_max", set_duration, provider_backoff_max, 1),
    GM("smtp_connect_timeout", set_duration, smtp_connect_timeout, 1),
    GM("smtp_command_timeout", set_duration, smtp_command_timeout, 1),
    GM("smtp_data_timeout", set_duration, smtp_data_timeout, 1),
    G("max_unfinished_attempts", set_uint, max_unfinished_attempts),
    G("tls_ca_file", set_str, tls_ca_file),
    G("mta_sts", set_bool, mta_sts),
    G("dane", set_bool, dane),
    G("tls_policy", set_tls_policy, tls_policies),
    G("tls_client_cert", set_str, tls_client_cert),
    G("tls_client_key", set_str, tls_client_key),
    G("tlsrpt", set_bool, tlsrpt),
    G("tlsrpt_from", set_str, tlsrpt_from),
    G("metrics_listen", set_metrics, metrics_addr),
    G("metrics_allow_remote", set_bool, metrics_allow_remote),
    L("address", set_addr, addr),
    LC("tls", tls, tls_modes),
    L("cert", set_str, cert),
    L("key", set_str, key),
    LC("tls_min_version", tls_min_version, tls_versions),
    L("auth_without_tls", set_bool, auth_without_tls),
    L("legacy_tls", set_bool, legacy_tls),
    L("legacy_tls_from", set_cidrs, legacy_from),
    L("legacy_tls_until", set_date, legacy_until),
    L("auth_without_tls_until", set_date, auth_without_tls_until),
    LC("bare_lf", bare_lf, bare_lf_modes),
    LC("proxy_protocol", proxy_protocol, proxy_versions),
    L("proxy_from", set_cidrs, proxy_from),
};

const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

_Static_assert(sizeof(config_keys) / sizeof(config_keys[0]) <= CONFIG_KEYS_MAX,
               "raise CONFIG_KEYS_MAX in config_int.h");
