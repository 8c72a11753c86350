/*
 * config: reader for mxrelayd's configuration (see config.h): lines,
 * sections, "FILE:LINE: KEY: reason" errors, defaults and the checks across
 * keys. The keys themselves and their setters are config_keys.c's table.
 */
#include "mta/shared/config.h"
#include "mta/shared/config_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mta/shared/addr.h"
#include "mta/shared/util.h"

#define LINE_MAX_LEN 4096

/* The line that set key (0 if it kept its default), for checks across keys. */
static int
line_of(const struct config_parse *p, const char *key)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].name, key) == 0)
			return p->key_line[i];
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

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: reachable from this host only. */
static int
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
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
parse_section(struct config_parse *p, struct config *c, char *s, struct listener_conf **cur)
{
	char *end = strchr(s, ']');
	char *name;
	struct listener_conf *l;

	p->key = "section"; /* errors here name no key: say what kind of line it was */
	if (end == NULL || trim(end + 1)[0] != '\0')
		return config_fail(p, "section header must look like [listener NAME]");
	*end = '\0';
	s = trim(s + 1);
	if (strncmp(s, "listener", 8) != 0 || (s[8] != ' ' && s[8] != '\t'))
		return config_fail(p, "unknown section \"[%s]\" (only [listener NAME])", s);
	name = trim(s + 8);
	if (*name == '\0' || strpbrk(name, " \t"))
		return config_fail(p, "listener name must be one word");
	for (l = c->listeners; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			return config_fail(p, "listener \"%s\" defined twice (first at line %d)",
			                   name, l->line);
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
parse_line(struct config_parse *p, struct config *c, char *line, struct listener_conf **cur)
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
		return config_fail(p, "expected \"key = value\"");
	}
	*eq = '\0';
	k = trim(s);
	v = trim(eq + 1);
	p->key = k;
	for (i = 0; i < config_nkeys; i++) {
		const struct config_key *key = &config_keys[i];
		if (strcmp(key->name, k) != 0)
			continue;
		if (key->scope == CONFIG_LISTENER && *cur == NULL)
			return config_fail(p, "only allowed inside a [listener NAME] section");
		if (key->scope == CONFIG_GLOBAL && *cur != NULL)
			return config_fail(
			    p, "global key inside [listener %s]; move it above the first section",
			    (*cur)->name);
		if (key->scope == CONFIG_GLOBAL)
			p->key_line[i] = p->line;
		return key->set(p, key, key->scope == CONFIG_GLOBAL ? (void *)c : (void *)*cur, v);
	}
	return config_fail(p, "unknown key");
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
	c->command_deadline = 5 * 60; /* RFC 5321 4.5.3.2.7 */
	c->data_deadline = 10 * 60;   /* RFC 5321 4.5.3.2.6 */
	c->min_data_rate = 1024;
	c->stress_timeout = 10;
	c->log = xstrdup("stderr");
	c->smtp_port = 25;
	c->dns_timeout_ms = 2000;
	c->dns_tries = 2; /* with c-ares doubling: 2 s + 4 s before giving up */
	c->retry_min = 5 * 60;
	c->retry_max = 60 * 60;
	c->max_queue_lifetime = 5 * 86400;
	c->delivery_concurrency = 100;
	c->domain_concurrency = 20;
	c->domain_concurrency_start = 5;
	c->rcpts_per_transaction = 50;
	c->max_inflight = 200;
	c->dest_idle_time = 120;
	c->provider_backoff_min = 60;
	c->provider_backoff_max = 30 * 60;
	c->smtp_connect_timeout = 30;
	c->smtp_command_timeout = 5 * 60;
	c->smtp_data_timeout = 10 * 60;
	c->max_unfinished_attempts = 3;
	c->queue_minfree = UINT64_MAX; /* validate: 3 x max_message_size + 64M unless set */
	c->spool_reserve = 16ULL << 20;
	c->mta_sts = 1;
	c->dane = 1;
	c->tlsrpt = 1;
}

/* The listener used when the file has none: loopback, STARTTLS offered. */
static void
add_default_listener(struct config *c)
{
	struct listener_conf *l = listener_new("default", 0);
	config_parse_addr("127.0.0.1:2525", l);
	l->address_text = xstrdup("127.0.0.1:2525");
	c->listeners = l;
}

/*
 * queue_minfree must leave room for one whole message in the WAL and again
 * at its checkpoint, or the last message accepted could fill the disk and
 * block the results that drain the queue. The default adds a WAL's worth.
 */
static int
validate_space(struct config_parse *p, struct config *c)
{
	uint64_t floor = 2 * c->max_message_size;

	if (c->queue_minfree == UINT64_MAX) {
		c->queue_minfree = 3 * c->max_message_size + (64ULL << 20);
		return 0;
	}
	p->key = "queue_minfree";
	p->line = line_of(p, "queue_minfree");
	if (c->queue_minfree != 0 && c->queue_minfree < floor)
		return config_fail(p,
		                   "%llu bytes is below 2 x max_message_size (%llu bytes); "
		                   "use at least that, or 0 to turn the check off",
		                   (unsigned long long)c->queue_minfree, (unsigned long long)floor);
	return 0;
}

/* The per-sender rules' listener:NAME must name a [listener NAME] (config_sender.c). */
static int
validate_rules(struct config_parse *p, const struct config *c)
{
	char why[512];

	if (config_sender_validate(c, &p->line, &p->key, why, sizeof why) != 0)
		return config_fail(p, "%s", why);
	return 0;
}

static int
validate(struct config_parse *p, struct config *c)
{
	struct listener_conf *l, *m;

	p->line = 0;
	for (l = c->listeners; l; l = l->next) {
		p->line = l->line;
		p->key = "address";
		if (l->addrlen == 0)
			return config_fail(p, "missing in [listener %s]", l->name);
		for (m = c->listeners; m != l; m = m->next)
			if (m->addrlen == l->addrlen && memcmp(&m->addr, &l->addr, l->addrlen) == 0)
				return config_fail(p, "%s is also used by [listener %s]",
				                   l->address_text, m->name);
		p->key = "cert";
		if ((l->cert == NULL) != (l->key == NULL))
			return config_fail(
			    p, "cert and key must be given together in [listener %s]", l->name);
		p->key = "legacy_tls";
		if (l->tls == LTLS_NONE && (l->legacy_tls || l->legacy_from.n))
			return config_fail(p, "legacy TLS on [listener %s] which has tls = none",
			                   l->name);
		/* a PROXY header is trusted only from named balancers: never from anyone */
		p->key = "proxy_from";
		if (l->proxy_protocol && l->proxy_from.n == 0)
			return config_fail(p, "required when proxy_protocol is on in [listener %s]",
			                   l->name);
		if (!l->proxy_protocol && l->proxy_from.n)
			return config_fail(p, "set in [listener %s] without proxy_protocol",
			                   l->name);
	}
	/* metrics say how much mail flows and from whom: not for the network by accident */
	p->key = "metrics_listen";
	p->line = line_of(p, "metrics_listen");
	if (c->metrics_addrlen && !c->metrics_allow_remote && !is_loopback(&c->metrics_addr))
		return config_fail(
		    p,
		    "%s is not a loopback address; set metrics_allow_remote = yes to "
		    "serve metrics beyond this host",
		    c->metrics_listen);
	if (validate_space(p, c) != 0)
		return -1;
	c->tls_client_cert_line = line_of(p, "tls_client_cert") ? line_of(p, "tls_client_cert")
	                                                         : line_of(p, "tls_client_key");
	c->tls_ca_file_line = line_of(p, "tls_ca_file");
	c->tls_client_key_line = line_of(p, "tls_client_key");
	if (config_tls_validate(p, c, line_of(p, "tlsrpt_from")) != 0)
		return -1;
	p->key = "retry_max";
	p->line = line_of(p, "retry_max") ? line_of(p, "retry_max") : line_of(p, "retry_min");
	if (c->retry_min < 1 || c->retry_max < c->retry_min)
		return config_fail(p, "retry_min must be at least 1s and not above retry_max");
	p->key = "provider_backoff_max";
	p->line = line_of(p, "provider_backoff_max") ? line_of(p, "provider_backoff_max")
	                                             : line_of(p, "provider_backoff_min");
	if (c->provider_backoff_max < c->provider_backoff_min)
		return config_fail(p, "must not be below provider_backoff_min");
	return validate_rules(p, c);
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
read_file(struct config_parse *p, struct config *c, FILE *fp)
{
	char line[LINE_MAX_LEN + 2];
	struct listener_conf *cur = NULL;
	size_t n;

	while ((n = get_line(fp, line)) > 0) {
		p->line++;
		p->key = "line";
		if (n > LINE_MAX_LEN && line[n - 1] != '\n')
			return config_fail(p, "longer than %d characters", LINE_MAX_LEN);
		if (memchr(line, '\0', n) != NULL)
			return config_fail(p, "NUL byte (the file must be text)");
		p->key = NULL;
		if (parse_line(p, c, line, &cur) != 0)
			return -1;
	}
	if (ferror(fp))
		return config_fail(p, "read error: %s", strerror(errno));
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
	struct config_parse p = {path ? path : "(default)", 0, NULL, err, errlen, {0}};
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
			snprintf(host, sizeof(host), "%s", "localhost");
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
	config_dnsbl_free(c);
	config_sender_free(c);
	free(c->helo_name);
	free(c->dns_servers);
	free(c->metrics_listen);
	for (struct route *r = c->routes, *rn; r; r = rn) {
		rn = r->next;
		free(r->domain);
		free(r->host);
		free(r);
	}
	config_tls_free(c);
	cidr_list_free(&c->relay_from);
	free(c);
}
