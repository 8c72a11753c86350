/*
 * tools/dnsq: blocking lookups through c-ares (see dnsq.h).
 *
 * One process-wide channel, made on the first lookup: the servers of
 * dnsq_set_servers (the config's dns_servers) or /etc/resolv.conf's, with
 * dnsq_set_timeout's bounds. A lookup runs the channel with poll() until
 * its callback fired; c-ares retries over TCP when an answer is truncated
 * (large DKIM keys). The answer itself is read by tools/dnsq_parse.c, which
 * keeps NXDOMAIN, NODATA and failures apart and follows CNAME chains.
 */
#include "tools/dnsq.h"
#include "tools/dnsq_parse.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DEFAULT_TIMEOUT_MS 2000 /* the daemon's defaults (mta/shared/config.c) */
#define DEFAULT_TRIES 2
#define REQUERY_MAX 8 /* CNAME targets asked for again (an authoritative server's answers) */

static struct {
	ares_channel ch;
	bool ready, lib;
	char *servers; /* NULL: resolv.conf */
	unsigned timeout_ms, tries;
} q = {.timeout_ms = DEFAULT_TIMEOUT_MS, .tries = DEFAULT_TRIES};

const char *
dnsq_strerror(enum dnsq_status st)
{
	switch (st) {
	case DNSQ_OK:
		return "ok";
	case DNSQ_NXDOMAIN:
		return "no such domain (NXDOMAIN)";
	case DNSQ_NODATA:
		return "no record of that type";
	case DNSQ_FAIL:
		break;
	}
	return "DNS lookup failed (SERVFAIL, refused or timeout)";
}

void
dnsq_list_free(struct dnsq_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
channel_close(void)
{
	if (q.ready)
		ares_destroy(q.ch);
	q.ready = false;
	free(q.servers);
	q.servers = NULL;
	if (q.lib)
		ares_library_cleanup();
	q.lib = false;
}

/* A channel with servers (NULL: resolv.conf) into *ch; -1 with err. */
static int
channel_new(ares_channel *ch, const char *servers, char *err, size_t errlen)
{
	struct ares_options o;
	int rc;

	if (!q.lib) {
		if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
			snprintf(err, errlen, "c-ares cannot start");
			return -1;
		}
		q.lib = true;
		atexit(channel_close); /* quiet leak checkers */
	}
	memset(&o, 0, sizeof o);
	o.timeout = (int)q.timeout_ms; /* c-ares doubles it on each round over the servers */
	o.tries = (int)q.tries;
	rc = ares_init_options(ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares cannot start: %s", ares_strerror(rc));
		return -1;
	}
	if (servers != NULL && (rc = ares_set_servers_ports_csv(*ch, servers)) != ARES_SUCCESS) {
		snprintf(err, errlen, "bad DNS server list '%s': %s", servers, ares_strerror(rc));
		ares_destroy(*ch);
		return -1;
	}
	return 0;
}

static bool
channel_ready(void)
{
	char err[256];

	if (!q.ready && channel_new(&q.ch, q.servers, err, sizeof err) == 0)
		q.ready = true;
	return q.ready;
}

int
dnsq_set_servers(const char *servers, char *err, size_t errlen)
{
	ares_channel ch;
	char *copy = NULL;

	if (servers != NULL && servers[0] != '\0') {
		if ((copy = strdup(servers)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		/* checked on a channel of its own: a bad list leaves the current one */
		if (channel_new(&ch, copy, err, errlen) != 0) {
			free(copy);
			return -1;
		}
		ares_destroy(ch);
	}
	if (q.ready)
		ares_destroy(q.ch);
	q.ready = false;
	free(q.servers);
	q.servers = copy;
	return 0;
}

void
dnsq_set_timeout(unsigned timeout_ms, unsigned tries)
{
	q.timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	q.tries = tries > 0 ? tries : DEFAULT_TRIES;
	if (q.ready)
		ares_destroy(q.ch); /* the next lookup makes one with the new bounds */
	q.ready = false;
}

struct answer {
	bool done;
	int status;
	unsigned char *buf; /* a copy of the response, malloc'd */
	size_t len;
};

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct answer *a = arg;

	(void)timeouts;
	a->done = true;
	a->status = status;
	/* c-ares hands NXDOMAIN and NODATA responses over too: their RCODE is read here */
	if (abuf != NULL && alen > 0 && (a->buf = malloc((size_t)alen)) != NULL) {
		memcpy(a->buf, abuf, (size_t)alen);
		a->len = (size_t)alen;
	}
}

/* Run the channel until a's callback fired (c-ares' own timeouts bound the wait). */
static void
run_until(struct answer *a)
{
	while (!a->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		/* c-ares' macros shift a signed int by up to 31: test the bits unsigned */
		unsigned bits = (unsigned)ares_getsock(q.ch, socks, ARES_GETSOCK_MAXNUM);
		struct timeval tv, *tvp;
		nfds_t n = 0;

		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			bool r = (bits >> i) & 1u, w = (bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u;

			if (!r && !w)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = (short)((r ? POLLIN : 0) | (w ? POLLOUT : 0));
			pfd[n++].revents = 0;
		}
		tvp = ares_timeout(q.ch, NULL, &tv);
		poll(pfd, n, tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000);
		for (nfds_t i = 0; i < n; i++)
			ares_process_fd(q.ch,
			                pfd[i].revents & (POLLIN | POLLERR | POLLHUP)
			                    ? pfd[i].fd
			                    : ARES_SOCKET_BAD,
			                pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
		if (n == 0)
			ares_process_fd(q.ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
}

/* One query of name; the records of type appended to out (*next: a CNAME target to ask). */
static enum dnsq_status
query(const char *name, enum dnsq_type type, struct dnsq_list *out, char *next)
{
	struct answer a = {false, 0, NULL, 0};
	enum dnsq_status st;

	next[0] = '\0';
	if (!channel_ready())
		return DNSQ_FAIL;
	ares_query(q.ch, name, 1 /* IN */, (int)type, on_answer, &a);
	run_until(&a);
	if (a.buf == NULL)
		return DNSQ_FAIL; /* timeout, unreachable, refused over every server */
	st = dnsq_parse(a.buf, a.len, name, type, out, next);
	free(a.buf);
	return st;
}

/* The records of type in the answer of name's lookup (CNAMEs followed), appended to out. */
static enum dnsq_status
lookup(const char *name, enum dnsq_type type, struct dnsq_list *out)
{
	char cur[DNSQ_NAME_MAX], next[DNSQ_NAME_MAX];
	enum dnsq_status st;

	if (strlen(name) >= sizeof cur)
		return DNSQ_FAIL;
	snprintf(cur, sizeof cur, "%s", name);
	for (int i = 0; i <= REQUERY_MAX; i++) {
		st = query(cur, type, out, next);
		if (st != DNSQ_NODATA || next[0] == '\0')
			return st;
		memcpy(cur, next, sizeof cur);
	}
	return DNSQ_FAIL; /* a chain longer than any resolver follows */
}

static enum dnsq_status
lookup_list(const char *name, enum dnsq_type type, struct dnsq_list *out)
{
	enum dnsq_status st;

	out->v = NULL;
	out->n = 0;
	st = lookup(name, type, out);
	if (st != DNSQ_OK)
		dnsq_list_free(out);
	return st;
}

enum dnsq_status
dnsq_txt(const char *name, struct dnsq_list *out)
{
	return lookup_list(name, DNSQ_T_TXT, out);
}

enum dnsq_status
dnsq_mx(const char *name, struct dnsq_list *out)
{
	return lookup_list(name, DNSQ_T_MX, out);
}

enum dnsq_status
dnsq_addrs(const char *name, struct dnsq_list *out)
{
	enum dnsq_status a, aaaa;

	out->v = NULL;
	out->n = 0;
	a = lookup(name, DNSQ_T_A, out);
	aaaa = lookup(name, DNSQ_T_AAAA, out);
	if (out->n > 0 && a != DNSQ_FAIL && aaaa != DNSQ_FAIL)
		return DNSQ_OK;
	dnsq_list_free(out);
	if (a == DNSQ_FAIL || aaaa == DNSQ_FAIL)
		return DNSQ_FAIL;
	return a == DNSQ_NXDOMAIN ? DNSQ_NXDOMAIN : DNSQ_NODATA;
}

enum dnsq_status
dnsq_a(const char *name, int family, struct dnsq_list *out)
{
	out->v = NULL;
	out->n = 0;
	if (family != AF_INET && family != AF_INET6)
		return DNSQ_FAIL;
	return lookup_list(name, family == AF_INET ? DNSQ_T_A : DNSQ_T_AAAA, out);
}

/* "4.3.2.1.in-addr.arpa" or the 32 nibbles of ip6.arpa (RFC 3596 2.5). */
static int
reverse_name(const char *ip, char *out, size_t outlen)
{
	unsigned char a[16];
	size_t pos = 0;

	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, a) != 1 || outlen < 73)
		return -1;
	for (int i = 15; i >= 0; i--) {
		static const char hex[] = "0123456789abcdef";

		out[pos++] = hex[a[i] & 0xf];
		out[pos++] = '.';
		out[pos++] = hex[a[i] >> 4];
		out[pos++] = '.';
	}
	memcpy(out + pos, "ip6.arpa", 9);
	return 0;
}

enum dnsq_status
dnsq_ptr(const char *ip, struct dnsq_list *out)
{
	char name[80];

	out->v = NULL;
	out->n = 0;
	if (reverse_name(ip, name, sizeof name) != 0)
		return DNSQ_FAIL;
	return lookup_list(name, DNSQ_T_PTR, out);
}

enum dnsq_status
dnsq_exists(const char *name)
{
	struct dnsq_list l;
	enum dnsq_status st = lookup_list(name, DNSQ_T_SOA, &l);

	dnsq_list_free(&l);
	return st == DNSQ_NODATA ? DNSQ_OK : st;
}
