/*
 * config: parser for mxrelayd's configuration (see config.h).
 * Keys are table-driven: name, scope, type and the field they fill, so a new
 * key is one line and every key gets the same error messages.
 */
#include "mta/shared/config.h"

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
#include <unistd.h>

#include "mta/shared/addr.h"
#include "mta/shared/util.h"

#define LINE_MAX_LEN 4096

enum ktype { K_STR, K_PATH, K_SIZE, K_UINT, K_DURATION, K_BOOL, K_CIDRS, K_TLSMODE, K_TLSVER,
	     K_ADDR, K_DATE, K_LOG, K_IP4, K_IP6, K_FAMILY, K_ROUTE, K_PORT, K_MSDURATION,
	     K_DKIMKEY, K_UNSIGNED, K_PROXY, K_METRICS, K_MISSINGFROM };
enum kscope { GLOBAL, LISTENER };

struct key {
	const char *name;
	enum kscope scope;
	enum ktype type;
	size_t off;
	uint64_t min;		/* K_UINT, K_SIZE, K_DURATION: smallest value allowed */
};

#define G(n, t, f) {n, GLOBAL, t, offsetof(struct config, f), 0}
#define GM(n, t, f, m) {n, GLOBAL, t, offsetof(struct config, f), m}
#define L(n, t, f) {n, LISTENER, t, offsetof(struct listener_conf, f), 0}

static const struct key keys[] = {
	G("hostname", K_STR, hostname),
	G("data_dir", K_PATH, data_dir),
	G("user", K_STR, user),
	G("relay_from", K_CIDRS, relay_from),
	G("credentials", K_PATH, credentials),
	GM("max_message_size", K_SIZE, max_message_size, 1024),
	GM("max_recipients", K_UINT, max_recipients, 1),
	GM("max_header_size", K_SIZE, max_header_size, 1024),
	GM("max_connections", K_UINT, max_connections, 1),
	GM("max_connections_per_ip", K_UINT, max_connections_per_ip, 1),
	GM("auth_max_failures", K_UINT, auth_max_failures, 1),
	G("auth_block_time", K_DURATION, auth_block_time),
	GM("session_timeout", K_DURATION, session_timeout, 1),
	G("shutdown_timeout", K_DURATION, shutdown_timeout),
	G("spool_max_size", K_SIZE, spool_max_size),
	G("log", K_LOG, log),
	G("control_socket", K_PATH, control_socket),
	G("submit_socket", K_PATH, submit_socket),
	G("helo_name", K_STR, helo_name),
	G("source_ipv4", K_IP4, source_ipv4),
	G("source_ipv6", K_IP6, source_ipv6),
	G("address_family", K_FAMILY, address_family),
	G("dns_servers", K_STR, dns_servers),
	GM("dns_timeout", K_MSDURATION, dns_timeout_ms, 50),
	GM("dns_tries", K_UINT, dns_tries, 1),
	G("allow_private_mx", K_BOOL, allow_private_mx),
	G("smtp_port", K_PORT, smtp_port),
	G("route", K_ROUTE, routes),
	G("dkim_key", K_DKIMKEY, dkim_keys),
	G("dkim_unsigned", K_UNSIGNED, dkim_refuse_unsigned),
	G("dkim_require_published", K_BOOL, dkim_require_published),
	G("missing_from", K_MISSINGFROM, missing_from),
	GM("retry_min", K_DURATION, retry_min, 1),
	G("retry_max", K_DURATION, retry_max),
	G("max_queue_lifetime", K_DURATION, max_queue_lifetime),
	GM("delivery_concurrency", K_UINT, delivery_concurrency, 1),
	GM("domain_concurrency", K_UINT, domain_concurrency, 1),
	GM("domain_concurrency_start", K_UINT, domain_concurrency_start, 1),
	GM("rcpts_per_transaction", K_UINT, rcpts_per_transaction, 1),
	GM("max_inflight", K_UINT, max_inflight, 1),
	GM("dest_idle_time", K_DURATION, dest_idle_time, 1),
	GM("smtp_connect_timeout", K_DURATION, smtp_connect_timeout, 1),
	GM("smtp_command_timeout", K_DURATION, smtp_command_timeout, 1),
	GM("smtp_data_timeout", K_DURATION, smtp_data_timeout, 1),
	G("max_unfinished_attempts", K_UINT, max_unfinished_attempts),
	G("metrics_listen", K_METRICS, metrics_addr),
	G("metrics_allow_remote", K_BOOL, metrics_allow_remote),
	L("address", K_ADDR, addr),
	L("tls", K_TLSMODE, tls),
	L("cert", K_PATH, cert),
	L("key", K_PATH, key),
	L("tls_min_version", K_TLSVER, tls_min_version),
	L("auth_without_tls", K_BOOL, auth_without_tls),
	L("legacy_tls", K_BOOL, legacy_tls),
	L("legacy_tls_from", K_CIDRS, legacy_from),
	L("legacy_tls_until", K_DATE, legacy_until),
	L("proxy_protocol", K_PROXY, proxy_protocol),
	L("proxy_from", K_CIDRS, proxy_from),
};

struct parse {
	const char *file;
	int line;
	const char *key;
	char *err;
	size_t errlen;
	int key_line[sizeof(keys) / sizeof(keys[0])];	/* where each global key was set */
};

/* The line that set key (0 if it kept its default), for checks across keys. */
static int
line_of(const struct parse *p, const char *key)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, key) == 0)
			return p->key_line[i];
	return 0;
}

static int
fail(struct parse *p, const char *fmt, ...)
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

/* "127.0.0.1:25", "[::1]:25". */
static int
parse_addr(const char *v, struct listener_conf *l)
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
			return -1;	/* IPv6 needs brackets: "::1:25" is ambiguous */
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
		return -1;	/* 2026-02-30 does not roll over into March */
	/* the sunset date is the last day legacy TLS works: it stops at the next midnight UTC */
	*out = t + 86400;
	return 0;
}

static int
parse_source(struct parse *p, int fam, const char *v, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, v, &s4->sin_addr) != 1)
			return fail(p, "\"%s\" is not an IPv4 address", v);
		s4->sin_family = AF_INET;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, v, &s6->sin6_addr) != 1)
			return fail(p, "\"%s\" is not an IPv6 address", v);
		s6->sin6_family = AF_INET6;
	}
	return 0;
}

/* "example.com smtp.example.net:587" (port optional); appended, file order kept. */
static int
parse_route(struct parse *p, const char *v, struct route **list)
{
	char dom[256], host[256], extra[2];
	unsigned port = 0;
	char *colon;
	struct route *r, **tail;

	if (sscanf(v, "%255s %255s %1s", dom, host, extra) != 2)
		return fail(p, "expected \"DOMAIN HOST[:PORT]\"");
	/* "host:port", "[v6]:port" or "[v6]"; a bare IPv6 address needs the brackets */
	colon = host[0] == '[' ? strchr(host, ']') : strrchr(host, ':');
	if (host[0] == '[') {
		if (colon == NULL || (colon[1] != '\0' && colon[1] != ':'))
			return fail(p, "\"%s\" is not [IPv6] or [IPv6]:PORT", host);
		colon = colon[1] == ':' ? colon + 1 : NULL;
	} else if (colon != NULL && memchr(host, ':', (size_t)(colon - host)) != NULL) {
		return fail(p, "IPv6 address \"%s\" needs brackets: [IPv6]:PORT", host);
	}
	if (colon != NULL) {
		char *end;
		long n = strtol(colon + 1, &end, 10);
		if (*end || colon[1] == '\0' || n < 1 || n > 65535)
			return fail(p, "bad port in \"%s\"", host);
		port = (unsigned)n;
		*colon = '\0';
	}
	if (host[0] == '\0')
		return fail(p, "empty host");
	for (r = *list; r; r = r->next)
		if (strcasecmp(r->domain, dom) == 0)
			return fail(p, "a route for %s is already defined", dom);
	r = xcalloc(1, sizeof(*r));
	r->domain = xstrdup(dom);
	r->host = xstrdup(host);
	r->port = port;
	for (tail = list; *tail; tail = &(*tail)->next)
		;
	*tail = r;
	return 0;
}

/* "example.com s2026 /etc/mxrelay/dkim/example.com.s2026.pem"; file order kept. */
static int
parse_dkim_key(struct parse *p, const char *v, struct dkim_key_conf **list)
{
	char dom[256], sel[64], path[4096], extra[2];
	struct dkim_key_conf *k, **tail;

	if (sscanf(v, "%255s %63s %4095s %1s", dom, sel, path, extra) != 3)
		return fail(p, "expected \"DOMAIN SELECTOR KEYFILE\"");
	for (k = *list; k; k = k->next)
		if (strcasecmp(k->domain, dom) == 0 && strcasecmp(k->selector, sel) == 0)
			return fail(p, "selector %s of %s is already defined at line %d", sel, dom,
				    k->line);
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

const struct route *
config_route(const struct config *c, const char *domain)
{
	const struct route *r;
	for (r = c->routes; r; r = r->next)
		if (strcasecmp(r->domain, domain) == 0)
			return r;
	return NULL;
}

bool
config_literal_routed(const struct config *c, const char *mailbox)
{
	const char *dom = addr_domain(mailbox);
	return dom == NULL || dom[0] != '[' || config_route(c, dom) != NULL;
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

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: reachable from this host only. */
static int
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

static int
set_value(struct parse *p, const struct key *k, void *base, const char *v)
{
	void *f = (char *)base + k->off;
	char cerr[256];

	switch (k->type) {
	case K_STR:
	case K_PATH:
	case K_LOG:
		if (*v == '\0')
			return fail(p, "empty value");
		if (k->type == K_LOG && strcmp(v, "stderr") != 0 && strcmp(v, "syslog") != 0)
			return fail(p, "\"%s\" is not one of stderr, syslog", v);
		free(*(char **)f);
		*(char **)f = xstrdup(v);
		return 0;
	case K_SIZE:
		if (parse_size(v, (uint64_t *)f) != 0)
			return fail(p, "\"%s\" is not a size (like 512K, 35M, 1G)", v);
		if (*(uint64_t *)f < k->min)
			return fail(p, "must be at least %llu bytes", (unsigned long long)k->min);
		return 0;
	case K_UINT: {
		char *end;
		unsigned long n;
		errno = 0;
		n = strtoul(v, &end, 10);
		if (!isdigit((unsigned char)*v) || *end || errno || n > 1000000)
			return fail(p, "\"%s\" is not a number from 0 to 1000000", v);
		if (n < k->min)
			return fail(p, "must be at least %llu", (unsigned long long)k->min);
		*(unsigned *)f = (unsigned)n;
		return 0;
	}
	case K_DURATION:
		if (parse_duration(v, (unsigned *)f) != 0)
			return fail(p, "\"%s\" is not a duration (like 30s, 5m, 2h, 1d)", v);
		if (*(unsigned *)f < k->min)
			return fail(p, "must be at least %llus", (unsigned long long)k->min);
		return 0;
	case K_BOOL:
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
			*(int *)f = 1;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
			*(int *)f = 0;
		else
			return fail(p, "\"%s\" is not yes or no", v);
		return 0;
	case K_CIDRS: {
		struct cidr_list *cl = f;
		cidr_list_free(cl);
		if (cidr_list_parse(cl, v, cerr, sizeof(cerr)) != 0)
			return fail(p, "%s", cerr);
		return 0;
	}
	case K_TLSMODE: {
		static const char *const names[] = {"none", "starttls", "required", "implicit"};
		for (int i = 0; i < 4; i++)
			if (strcmp(v, names[i]) == 0) {
				*(enum listener_tls *)f = (enum listener_tls)i;
				return 0;
			}
		return fail(p, "\"%s\" is not one of none, starttls, required, implicit", v);
	}
	case K_TLSVER: {
		static const struct { const char *n; int v; } vers[] = {
			{"1.0", TLS1_VERSION}, {"1.1", TLS1_1_VERSION},
			{"1.2", TLS1_2_VERSION}, {"1.3", TLS1_3_VERSION}};
		for (size_t i = 0; i < 4; i++)
			if (strcmp(v, vers[i].n) == 0) {
				*(int *)f = vers[i].v;
				return 0;
			}
		return fail(p, "\"%s\" is not one of 1.0, 1.1, 1.2, 1.3", v);
	}
	case K_ADDR:
		if (parse_addr(v, base) != 0)
			return fail(p, "\"%s\" is not IP:PORT or [IPv6]:PORT", v);
		free(((struct listener_conf *)base)->address_text);
		((struct listener_conf *)base)->address_text = xstrdup(v);
		return 0;
	case K_DATE:
		if (parse_date(v, (time_t *)f) != 0)
			return fail(p, "\"%s\" is not a date YYYY-MM-DD", v);
		return 0;
	case K_IP4:
	case K_IP6:
		return parse_source(p, k->type == K_IP4 ? AF_INET : AF_INET6, v, f);
	case K_FAMILY:
		if (strcmp(v, "any") == 0)
			*(enum addr_family *)f = FAM_ANY;
		else if (strcmp(v, "ipv4") == 0)
			*(enum addr_family *)f = FAM_IPV4;
		else if (strcmp(v, "ipv6") == 0)
			*(enum addr_family *)f = FAM_IPV6;
		else
			return fail(p, "\"%s\" is not one of any, ipv4, ipv6", v);
		return 0;
	case K_PORT: {
		char *end;
		long n = strtol(v, &end, 10);
		if (!isdigit((unsigned char)*v) || *end || n < 1 || n > 65535)
			return fail(p, "\"%s\" is not a port from 1 to 65535", v);
		*(unsigned *)f = (unsigned)n;
		return 0;
	}
	case K_ROUTE:
		return parse_route(p, v, f);
	case K_DKIMKEY:
		return parse_dkim_key(p, v, f);
	case K_PROXY: {
		/* values are PROXY_V1 / PROXY_V2 bits (mta/smtpd/proxy.h) */
		static const char *const names[] = {"no", "v1", "v2", "any"};
		for (unsigned i = 0; i < 4; i++)
			if (strcmp(v, names[i]) == 0) {
				*(unsigned *)f = i;
				return 0;
			}
		return fail(p, "\"%s\" is not one of no, v1, v2, any", v);
	}
	case K_METRICS: {
		/* "IP:PORT" as for a listener; "" or "off": no metrics endpoint */
		struct listener_conf tmp;
		memset(&tmp, 0, sizeof(tmp));
		c_metrics_off((struct config *)base);
		if (*v == '\0' || strcmp(v, "off") == 0)
			return 0;
		if (parse_addr(v, &tmp) != 0)
			return fail(p, "\"%s\" is not IP:PORT or [IPv6]:PORT (or off)", v);
		((struct config *)base)->metrics_addr = tmp.addr;
		((struct config *)base)->metrics_addrlen = tmp.addrlen;
		((struct config *)base)->metrics_listen = xstrdup(v);
		return 0;
	}
	case K_UNSIGNED:
		if (strcmp(v, "send") == 0)
			*(int *)f = 0;
		else if (strcmp(v, "refuse") == 0)
			*(int *)f = 1;
		else
			return fail(p, "\"%s\" is not one of send, refuse", v);
		return 0;
	case K_MISSINGFROM:
		if (strcmp(v, "refuse") == 0)
			*(int *)f = MISSING_FROM_REFUSE;
		else if (strcmp(v, "envelope") == 0)
			*(int *)f = MISSING_FROM_ENVELOPE;
		else
			return fail(p, "\"%s\" is not one of refuse, envelope", v);
		return 0;
	case K_MSDURATION: {
		/* "500ms", or any K_DURATION form in seconds */
		char *end;
		unsigned long n = strtoul(v, &end, 10);
		unsigned sec;
		if (isdigit((unsigned char)*v) && strcmp(end, "ms") == 0 && n <= 3600000) {
			*(unsigned *)f = (unsigned)n;
		} else if (parse_duration(v, &sec) == 0 && sec <= 3600) {
			*(unsigned *)f = sec * 1000;
		} else {
			return fail(p, "\"%s\" is not a duration (like 500ms, 2s)", v);
		}
		if (*(unsigned *)f < k->min)
			return fail(p, "must be at least %llums", (unsigned long long)k->min);
		return 0;
	}
	}
	return fail(p, "internal: unknown key type");
}

static struct listener_conf *
listener_new(const char *name, int line)
{
	struct listener_conf *l = xcalloc(1, sizeof(*l));
	l->name = xstrdup(name);
	l->tls = LTLS_STARTTLS;
	l->tls_min_version = TLS1_2_VERSION;
	l->line = line;
	return l;
}

static void
listener_free(struct listener_conf *l)
{
	free(l->name);
	free(l->address_text);
	free(l->cert);
	free(l->key);
	cidr_list_free(&l->legacy_from);
	cidr_list_free(&l->proxy_from);
	free(l);
}

static char *
trim(char *s)
{
	char *e;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* "[listener NAME]": start a new listener section. */
static int
parse_section(struct parse *p, struct config *c, char *s, struct listener_conf **cur)
{
	char *end = strchr(s, ']');
	char *name;
	struct listener_conf *l;

	p->key = "section";	/* errors here name no key: say what kind of line it was */
	if (end == NULL || trim(end + 1)[0] != '\0')
		return fail(p, "section header must look like [listener NAME]");
	*end = '\0';
	s = trim(s + 1);
	if (strncmp(s, "listener", 8) != 0 || (s[8] != ' ' && s[8] != '\t'))
		return fail(p, "unknown section \"[%s]\" (only [listener NAME])", s);
	name = trim(s + 8);
	if (*name == '\0' || strpbrk(name, " \t"))
		return fail(p, "listener name must be one word");
	for (l = c->listeners; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			return fail(p, "listener \"%s\" defined twice (first at line %d)", name, l->line);
	l = listener_new(name, p->line);
	/* append, keeping file order */
	struct listener_conf **tail = &c->listeners;
	while (*tail)
		tail = &(*tail)->next;
	*tail = l;
	*cur = l;
	return 0;
}

static int
parse_line(struct parse *p, struct config *c, char *line, struct listener_conf **cur)
{
	char *s = trim(line), *eq, *k, *v;
	size_t i;

	p->key = NULL;
	if (*s == '\0' || *s == '#')
		return 0;
	if (*s == '[')
		return parse_section(p, c, s, cur);
	eq = strchr(s, '=');
	if (eq == NULL) {
		s[strcspn(s, " \t")] = '\0';
		p->key = s;
		return fail(p, "expected \"key = value\"");
	}
	*eq = '\0';
	k = trim(s);
	v = trim(eq + 1);
	p->key = k;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(keys[i].name, k) != 0)
			continue;
		if (keys[i].scope == LISTENER && *cur == NULL)
			return fail(p, "only allowed inside a [listener NAME] section");
		if (keys[i].scope == GLOBAL && *cur != NULL)
			return fail(p, "global key inside [listener %s]; move it above the first section",
				    (*cur)->name);
		if (keys[i].scope == GLOBAL)
			p->key_line[i] = p->line;
		return set_value(p, &keys[i], keys[i].scope == GLOBAL ? (void *)c : (void *)*cur, v);
	}
	return fail(p, "unknown key");
}

static void
set_defaults(struct config *c)
{
	char err[128];
	c->data_dir = xstrdup("./var/mxrelay");
	cidr_list_parse(&c->relay_from, "127.0.0.1/32 ::1/128", err, sizeof(err));
	c->max_message_size = 35ULL << 20;
	c->max_recipients = 100;
	c->max_header_size = 256ULL << 10;
	c->max_connections = 500;
	c->max_connections_per_ip = 20;
	c->auth_max_failures = 5;
	c->auth_block_time = 15 * 60;
	c->missing_from = MISSING_FROM_ENVELOPE;
	c->session_timeout = 5 * 60;
	c->shutdown_timeout = 30;
	c->log = xstrdup("stderr");
	c->smtp_port = 25;
	c->dns_timeout_ms = 2000;
	c->dns_tries = 2;	/* with c-ares doubling: 2 s + 4 s before giving up */
	c->retry_min = 5 * 60;
	c->retry_max = 60 * 60;
	c->max_queue_lifetime = 5 * 86400;
	c->delivery_concurrency = 100;
	c->domain_concurrency = 20;
	c->domain_concurrency_start = 5;
	c->rcpts_per_transaction = 50;
	c->max_inflight = 200;
	c->dest_idle_time = 120;
	c->smtp_connect_timeout = 30;
	c->smtp_command_timeout = 5 * 60;
	c->smtp_data_timeout = 10 * 60;
	c->max_unfinished_attempts = 3;
}

/* The listener used when the file has none: loopback, STARTTLS offered. */
static void
add_default_listener(struct config *c)
{
	struct listener_conf *l = listener_new("default", 0);
	parse_addr("127.0.0.1:2525", l);
	l->address_text = xstrdup("127.0.0.1:2525");
	c->listeners = l;
}

static int
validate(struct parse *p, struct config *c)
{
	struct listener_conf *l, *m;

	p->line = 0;
	for (l = c->listeners; l; l = l->next) {
		p->line = l->line;
		p->key = "address";
		if (l->addrlen == 0)
			return fail(p, "missing in [listener %s]", l->name);
		for (m = c->listeners; m != l; m = m->next)
			if (m->addrlen == l->addrlen && memcmp(&m->addr, &l->addr, l->addrlen) == 0)
				return fail(p, "%s is also used by [listener %s]", l->address_text,
					    m->name);
		p->key = "cert";
		if ((l->cert == NULL) != (l->key == NULL))
			return fail(p, "cert and key must be given together in [listener %s]",
				    l->name);
		p->key = "legacy_tls";
		if (l->tls == LTLS_NONE && (l->legacy_tls || l->legacy_from.n))
			return fail(p, "legacy TLS on [listener %s] which has tls = none", l->name);
		/* a PROXY header is trusted only from named balancers: never from anyone */
		p->key = "proxy_from";
		if (l->proxy_protocol && l->proxy_from.n == 0)
			return fail(p, "required when proxy_protocol is on in [listener %s]", l->name);
		if (!l->proxy_protocol && l->proxy_from.n)
			return fail(p, "set in [listener %s] without proxy_protocol", l->name);
	}
	/* metrics say how much mail flows and from whom: not for the network by accident */
	p->key = "metrics_listen";
	p->line = line_of(p, "metrics_listen");
	if (c->metrics_addrlen && !c->metrics_allow_remote && !is_loopback(&c->metrics_addr))
		return fail(p, "%s is not a loopback address; set metrics_allow_remote = yes to "
			       "serve metrics beyond this host", c->metrics_listen);
	p->key = "retry_max";
	p->line = line_of(p, "retry_max") ? line_of(p, "retry_max") : line_of(p, "retry_min");
	if (c->retry_min < 1 || c->retry_max < c->retry_min)
		return fail(p, "retry_min must be at least 1s and not above retry_max");
	return 0;
}

/*
 * Like fgets into line (LINE_MAX_LEN + 2 bytes), but returns the length, so
 * a NUL byte cannot silently end the line early. 0 at the end of the file.
 */
static size_t
get_line(FILE *fp, char *line)
{
	size_t n = 0;
	int ch;

	while (n < LINE_MAX_LEN + 1 && (ch = getc(fp)) != EOF) {
		line[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	line[n] = '\0';
	return n;
}

static int
read_file(struct parse *p, struct config *c, FILE *fp)
{
	char line[LINE_MAX_LEN + 2];
	struct listener_conf *cur = NULL;
	size_t n;

	while ((n = get_line(fp, line)) > 0) {
		p->line++;
		p->key = "line";
		if (n > LINE_MAX_LEN && line[n - 1] != '\n')
			return fail(p, "longer than %d characters", LINE_MAX_LEN);
		if (memchr(line, '\0', n) != NULL)
			return fail(p, "NUL byte (the file must be text)");
		p->key = NULL;
		if (parse_line(p, c, line, &cur) != 0)
			return -1;
	}
	if (ferror(fp))
		return fail(p, "read error: %s", strerror(errno));
	return 0;
}

/* "DIR/NAME", malloc'd. */
static char *
join_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int
config_load(struct config **out, const char *path, char *err, size_t errlen)
{
	struct parse p = {path ? path : "(default)", 0, NULL, err, errlen, {0}};
	struct config *c = xcalloc(1, sizeof(*c));
	char host[256];
	FILE *fp = NULL;
	int rc = -1;

	set_defaults(c);
	if (path != NULL) {
		c->path = xstrdup(path);
		fp = fopen(path, "r");
		if (fp == NULL) {
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
			goto done;
		}
		if (read_file(&p, c, fp) != 0)
			goto done;
	}
	if (c->listeners == NULL)
		add_default_listener(c);
	if (c->hostname == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		c->hostname = xstrdup(host);
	}
	if (validate(&p, c) != 0)
		goto done;
	/* the sockets follow data_dir unless set */
	if (c->control_socket == NULL)
		c->control_socket = join_path(c->data_dir, "control.sock");
	if (c->submit_socket == NULL)
		c->submit_socket = join_path(c->data_dir, "submit.sock");
	c->credentials_line = line_of(&p, "credentials");
	c->user_line = line_of(&p, "user");
	c->data_dir_line = line_of(&p, "data_dir");
	c->control_socket_line = line_of(&p, "control_socket");
	c->submit_socket_line = line_of(&p, "submit_socket");
	rc = 0;
done:
	if (fp)
		fclose(fp);
	if (rc == 0)
		*out = c;
	else
		config_free(c);
	return rc;
}

void
config_free(struct config *c)
{
	struct listener_conf *l, *n;
	if (c == NULL)
		return;
	for (l = c->listeners; l; l = n) {
		n = l->next;
		listener_free(l);
	}
	free(c->path);
	free(c->hostname);
	free(c->data_dir);
	free(c->user);
	free(c->credentials);
	free(c->log);
	free(c->control_socket);
	free(c->submit_socket);
	for (struct dkim_key_conf *k = c->dkim_keys, *kn; k; k = kn) {
		kn = k->next;
		free(k->domain);
		free(k->selector);
		free(k->path);
		free(k);
	}
	free(c->helo_name);
	free(c->dns_servers);
	free(c->metrics_listen);
	for (struct route *r = c->routes, *rn; r; r = rn) {
		rn = r->next;
		free(r->domain);
		free(r->host);
		free(r);
	}
	cidr_list_free(&c->relay_from);
	free(c);
}
