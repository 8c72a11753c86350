/*
 * tools/dnsq: blocking lookups through glibc's stub resolver (see dnsq.h).
 *
 * res_nquery follows the resolver configuration, retries over TCP when an
 * answer is truncated (large DKIM keys) and maps the response code into
 * res_h_errno: HOST_NOT_FOUND for NXDOMAIN, NO_DATA for an empty NOERROR
 * answer, anything else is a failure we cannot conclude from.
 */
#include "tools/dnsq.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MAX 65536 /* the largest DNS message (over TCP) */

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

static int
list_add(struct dnsq_list *l, char *s)
{
	char **nv;

	if (s == NULL)
		return -1;
	nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (nv == NULL) {
		free(s);
		return -1;
	}
	l->v = nv;
	l->v[l->n++] = s;
	return 0;
}

static void
lowercase(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s + ('a' - 'A'));
}

/* our own resolver state: libspf2 initialises and closes the global _res itself */
static struct __res_state res;

static void
close_res(void)
{
	res_nclose(&res);
}

/* One query; on DNSQ_OK *msg is initialised over the malloc'ed *buf. */
static enum dnsq_status
query(const char *name, ns_type type, unsigned char **buf, ns_msg *msg)
{
	static bool ready;
	int n;

	*buf = NULL;
	if (!ready) {
		if (res_ninit(&res) != 0)
			return DNSQ_FAIL;
		ready = true;
		atexit(close_res); /* releases the parsed resolv.conf (quiet leak checkers) */
	}
	*buf = malloc(ANSWER_MAX);
	if (*buf == NULL)
		return DNSQ_FAIL;
	n = res_nquery(&res, name, ns_c_in, type, *buf, ANSWER_MAX);
	if (n < 0) {
		free(*buf);
		*buf = NULL;
		if (res.res_h_errno == HOST_NOT_FOUND)
			return DNSQ_NXDOMAIN;
		if (res.res_h_errno == NO_DATA)
			return DNSQ_NODATA;
		return DNSQ_FAIL;
	}
	if (ns_initparse(*buf, n, msg) < 0) {
		free(*buf);
		*buf = NULL;
		return DNSQ_FAIL;
	}
	return DNSQ_OK;
}

/* TXT rdata: one or more <length><bytes> character-strings, joined. */
static char *
txt_join(const unsigned char *rd, size_t rdlen)
{
	char *s = malloc(rdlen + 1);
	size_t pos = 0, i = 0;

	if (s == NULL)
		return NULL;
	while (i < rdlen) {
		size_t len = rd[i++];

		if (len > rdlen - i) {
			free(s);
			return NULL;
		}
		for (size_t k = 0; k < len; k++)
			s[pos++] = rd[i + k] != '\0' ? (char)rd[i + k] : '?';
		i += len;
	}
	s[pos] = '\0';
	return s;
}

/* The domain name at rd, lowercase, without the trailing dot ("." for the root). */
static char *
rdata_name(const ns_msg *msg, const unsigned char *rd)
{
	char name[NS_MAXDNAME];

	if (ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), rd, name, sizeof name) < 0)
		return NULL;
	if (name[0] == '\0')
		snprintf(name, sizeof name, "%s", ".");
	lowercase(name);
	return strdup(name);
}

/* One answer record as text, or NULL when it is malformed. */
static char *
rr_text(const ns_msg *msg, const ns_rr *rr)
{
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t rdlen = ns_rr_rdlen(*rr);
	char buf[INET6_ADDRSTRLEN + 16], *host, *s;
	size_t len;

	switch (ns_rr_type(*rr)) {
	case ns_t_txt:
		return txt_join(rd, rdlen);
	case ns_t_a:
		return rdlen == 4 && inet_ntop(AF_INET, rd, buf, sizeof buf) ? strdup(buf) : NULL;
	case ns_t_aaaa:
		return rdlen == 16 && inet_ntop(AF_INET6, rd, buf, sizeof buf) ? strdup(buf) : NULL;
	case ns_t_ptr:
		return rdata_name(msg, rd);
	case ns_t_soa:
		return strdup("SOA"); /* only its presence matters (dnsq_exists) */
	case ns_t_mx:
		if (rdlen < 3 || (host = rdata_name(msg, rd + 2)) == NULL)
			return NULL;
		/* "PREF HOST": a 16-bit preference is at most 5 digits */
		len = strlen(host) + 7;
		s = malloc(len);
		if (s != NULL)
			snprintf(s, len, "%u %s", (unsigned)ns_get16(rd), host);
		free(host);
		return s;
	default:
		return NULL;
	}
}

/* The records of type in the answer section of name's lookup, appended to out. */
static enum dnsq_status
lookup(const char *name, ns_type type, struct dnsq_list *out)
{
	unsigned char *buf;
	ns_msg msg;
	ns_rr rr;
	enum dnsq_status st = query(name, type, &buf, &msg);
	size_t before = out->n;

	if (st != DNSQ_OK)
		return st;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
			st = DNSQ_FAIL;
			break;
		}
		if (ns_rr_type(rr) != type)
			continue; /* CNAMEs on the way */
		if (list_add(out, rr_text(&msg, &rr)) != 0) {
			st = DNSQ_FAIL;
			break;
		}
	}
	free(buf);
	if (st == DNSQ_OK && out->n == before)
		st = DNSQ_NODATA;
	return st;
}

static enum dnsq_status
lookup_list(const char *name, ns_type type, struct dnsq_list *out)
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
	return lookup_list(name, ns_t_txt, out);
}

enum dnsq_status
dnsq_mx(const char *name, struct dnsq_list *out)
{
	return lookup_list(name, ns_t_mx, out);
}

enum dnsq_status
dnsq_addrs(const char *name, struct dnsq_list *out)
{
	enum dnsq_status a, aaaa;

	out->v = NULL;
	out->n = 0;
	a = lookup(name, ns_t_a, out);
	aaaa = lookup(name, ns_t_aaaa, out);
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
	return lookup_list(name, family == AF_INET ? ns_t_a : ns_t_aaaa, out);
}

int
dnsq_set_servers(const char *servers, char *err, size_t errlen)
{
	/* groundwork: accepted and ignored until dnsq runs on c-ares */
	(void)servers;
	(void)err;
	(void)errlen;
	return 0;
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
	return lookup_list(name, ns_t_ptr, out);
}

enum dnsq_status
dnsq_exists(const char *name)
{
	struct dnsq_list l;
	enum dnsq_status st = lookup_list(name, ns_t_soa, &l);

	dnsq_list_free(&l);
	return st == DNSQ_NODATA ? DNSQ_OK : st;
}
