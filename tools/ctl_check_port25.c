/*
 * ctl_check_port25: `mxrelayctl dns check --port25 DOMAIN`: can this host
 * open SMTP connections to the Internet at all? Many cloud and home
 * providers block outbound port 25, and then every delivery only waits.
 *
 * Connects to DOMAIN's MX hosts (RFC 5321 5.1 order: lowest preference
 * first; no MX: the domain's own address) on port 25 from the relay's
 * source address (source_ipv4/6 when set), at most two addresses, 5 s for
 * the connection and 5 s for the 220 greeting (RFC 5321 4.3.1) each, then
 * sends QUIT. Only run when asked: it talks to someone else's server.
 * One check line, "port25 DOMAIN".
 */
#include "tools/ctl_check.h"
#include "tools/dnsq.h"
#include "mta/shared/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define P25_TIMEOUT_MS 5000
#define P25_MAX_ADDRS 2

enum p25 { P25_OK, P25_TIMEOUT, P25_REFUSED, P25_NO_GREETING, P25_NOT_220, P25_BIND, P25_ERR };

struct target {
	char host[256];
	char addr[INET6_ADDRSTRLEN];
	int family;
};

/* Up to max addresses of the MX hosts in preference order (IPv4 first per host). */
static size_t
targets(const char *domain, struct target *t, size_t max, bool *null_mx)
{
	struct dnsq_list mx;
	size_t n = 0;

	*null_mx = false;
	if (dnsq_mx(domain, &mx) != DNSQ_OK) {
		mx.v = NULL;
		mx.n = 0;
	}
	if (mx.n == 1 && strcmp(mx.v[0], "0 .") == 0)
		*null_mx = true;
	for (size_t done = 0; done < (mx.n ? mx.n : 1) && n < max && !*null_mx; done++) {
		size_t best = 0;
		const char *host = domain; /* implicit MX (RFC 5321 5.1) */

		for (size_t i = 0; i < mx.n; i++)
			if (mx.v[i][0] != '\0' &&
			    (mx.v[best][0] == '\0' || atoi(mx.v[i]) < atoi(mx.v[best])))
				best = i;
		if (mx.n > 0) {
			host = strchr(mx.v[best], ' ') + 1;
			mx.v[best][0] = '\0'; /* used */
		}
		for (int f = 0; f < 2 && n < max; f++) {
			struct dnsq_list a;
			int fam = f == 0 ? AF_INET : AF_INET6;

			if (dnsq_a(host, fam, &a) != DNSQ_OK)
				continue;
			for (size_t k = 0; k < a.n && n < max; k++, n++) {
				snprintf(t[n].host, sizeof t[n].host, "%s", host);
				snprintf(t[n].addr, sizeof t[n].addr, "%s", a.v[k]);
				t[n].family = fam;
			}
			dnsq_list_free(&a);
		}
	}
	dnsq_list_free(&mx);
	return n;
}

static long
ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Connect fd (non-blocking) to sa within the deadline. */
static enum p25
connect_to(int fd, const struct sockaddr *sa, socklen_t len, const struct timespec *dl)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int err = 0;
	socklen_t elen = sizeof err;
	long left;

	if (connect(fd, sa, len) == 0)
		return P25_OK;
	if (errno != EINPROGRESS)
		return errno == ECONNREFUSED ? P25_REFUSED : P25_ERR;
	left = ms_left(dl);
	if (left <= 0 || poll(&p, 1, (int)left) <= 0)
		return P25_TIMEOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
		errno = err;
		return err == ECONNREFUSED ? P25_REFUSED : err == ETIMEDOUT ? P25_TIMEOUT : P25_ERR;
	}
	return P25_OK;
}

/* The greeting's last line (RFC 5321 4.2.1 multiline) into line; P25_OK for 220. */
static enum p25
read_greeting(int fd, char *line, size_t linelen, const struct timespec *dl)
{
	char buf[2048];
	size_t have = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long left = ms_left(dl);
		ssize_t r;
		char *nl, *start;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return P25_NO_GREETING;
		r = read(fd, buf + have, sizeof buf - 1 - have);
		if (r <= 0)
			return P25_NO_GREETING;
		have += (size_t)r;
		buf[have] = '\0';
		/* the last complete line that is not a continuation ("220-") */
		for (start = buf; (nl = strchr(start, '\n')) != NULL; start = nl + 1) {
			if (nl - start < 4 || start[3] == '-')
				continue;
			*nl = '\0';
			snprintf(line, linelen, "%.100s", start);
			for (char *s = line; *s; s++)
				if (*s == '\r' || (unsigned char)*s < 0x20 ||
				    (unsigned char)*s > 0x7e)
					*s = *s == '\r' ? '\0' : '?';
			return strncmp(line, "220", 3) == 0 ? P25_OK : P25_NOT_220;
		}
		if (have == sizeof buf - 1)
			return P25_NO_GREETING; /* a line longer than RFC 5321 4.5.3.1.5 allows */
	}
}

/* QUIT (RFC 5321 4.1.1.10) and a moment for its 221 before closing; the reply does not matter. */
static void
quit(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char buf[512];

	if (write(fd, "QUIT\r\n", 6) == 6 && poll(&p, 1, 2000) == 1)
		(void)!read(fd, buf, sizeof buf);
}

/* The source address of the config for family, or NULL (the kernel's choice). */
static const struct sockaddr_storage *
source_for(const struct config *cfg, int family)
{
	const struct sockaddr_storage *s =
	    family == AF_INET ? &cfg->source_ipv4 : &cfg->source_ipv6;

	return s->ss_family == family ? s : NULL;
}

/* One attempt; line gets the greeting or the error text. */
static enum p25
try_one(const struct config *cfg, const struct target *t, char *line, size_t linelen)
{
	struct sockaddr_storage ss;
	const struct sockaddr_storage *src = source_for(cfg, t->family);
	socklen_t len;
	struct timespec dl;
	enum p25 r;
	int fd;

	memset(&ss, 0, sizeof ss);
	if (t->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(25);
		inet_pton(AF_INET, t->addr, &s4->sin_addr);
		len = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(25);
		inet_pton(AF_INET6, t->addr, &s6->sin6_addr);
		len = sizeof *s6;
	}
	fd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(line, linelen, "socket: %s", strerror(errno));
		return P25_ERR;
	}
	if (src != NULL && bind(fd, (const struct sockaddr *)src,
	                        t->family == AF_INET ? sizeof(struct sockaddr_in)
	                                             : sizeof(struct sockaddr_in6)) != 0) {
		snprintf(line, linelen, "%s", strerror(errno));
		close(fd);
		return P25_BIND;
	}
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += P25_TIMEOUT_MS / 1000;
	r = connect_to(fd, (struct sockaddr *)&ss, len, &dl);
	if (r == P25_ERR)
		snprintf(line, linelen, "%s", strerror(errno));
	if (r == P25_OK) {
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_sec += P25_TIMEOUT_MS / 1000;
		r = read_greeting(fd, line, linelen, &dl);
		if (r == P25_OK || r == P25_NOT_220)
			quit(fd);
	}
	close(fd);
	return r;
}

/* "HOST [ADDR] ..." for one failed attempt. */
static char *
describe(const struct target *t, enum p25 r, const char *line, const struct config *cfg)
{
	char src[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr_storage *s = source_for(cfg, t->family);

	if (s != NULL)
		inet_ntop(t->family,
		          t->family == AF_INET
		              ? (const void *)&((const struct sockaddr_in *)s)->sin_addr
		              : (const void *)&((const struct sockaddr_in6 *)s)->sin6_addr,
		          src, sizeof src);
	switch (r) {
	case P25_TIMEOUT:
		return check_fmt("%s [%s]: no answer within %d s", t->host, t->addr,
		                 P25_TIMEOUT_MS / 1000);
	case P25_REFUSED:
		return check_fmt("%s [%s]: connection refused", t->host, t->addr);
	case P25_NO_GREETING:
		return check_fmt("%s [%s]: connected, but no 220 greeting within %d s", t->host,
		                 t->addr, P25_TIMEOUT_MS / 1000);
	case P25_NOT_220:
		return check_fmt("%s [%s]: greeting \"%s\" is not 220", t->host, t->addr, line);
	case P25_BIND:
		return check_fmt("%s [%s]: cannot use source address %s: %s", t->host, t->addr, src,
		                 line);
	default:
		return check_fmt("%s [%s]: %s", t->host, t->addr, line);
	}
}

static char *
fix_for(enum p25 r, const char *domain)
{
	switch (r) {
	case P25_TIMEOUT:
		return check_fmt(
		    "outbound port 25 looks blocked: ask the provider to open it, or run "
		    "the relay on a host that may send on port 25");
	case P25_BIND:
		return check_fmt(
		    "source_ipv4/source_ipv6 must be addresses of this host (ip addr)");
	case P25_REFUSED:
	case P25_NO_GREETING:
	case P25_NOT_220:
		return check_fmt(
		    "something between here and %s (a provider's filter or proxy) "
		    "answers instead of its MX: ask the provider, or try --port25 with "
		    "another domain",
		    domain);
	default:
		return check_fmt("check the host's network, then try again");
	}
}

void
check_port25(struct ctx *c, const char *domain)
{
	struct target t[P25_MAX_ADDRS];
	char label[300], line[160], *tried = NULL;
	enum p25 first = P25_ERR;
	bool null_mx;
	size_t n = targets(domain, t, P25_MAX_ADDRS, &null_mx);

	snprintf(label, sizeof label, "port25 %s", domain);
	if (n == 0) {
		check_add(
		    c, label, ST_FAIL,
		    check_fmt(null_mx ? "%s publishes a null MX (RFC 7505): nothing to connect to"
		                      : "%s has no MX host with an address",
		              domain),
		    check_fmt("give --port25 a domain that receives mail, such as gmail.com"));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		enum p25 r = try_one(c->cfg, &t[i], line, sizeof line);
		char *d;

		if (r == P25_OK) {
			check_add(c, label, ST_PASS,
			          check_fmt("%s [%s] port 25 answered: %s%s%s", t[i].host,
			                    t[i].addr, line, tried ? "; before that " : "",
			                    tried ? tried : ""),
			          NULL);
			free(tried);
			return;
		}
		d = describe(&t[i], r, line, c->cfg);
		if (tried == NULL) {
			tried = d;
			first = r;
		} else {
			char *both = check_fmt("%s; %s", tried, d);

			free(tried);
			free(d);
			tried = both;
		}
	}
	check_add(c, label, ST_FAIL, check_fmt("no SMTP greeting on port 25: %s", tried),
	          fix_for(first, domain));
	free(tried);
}
