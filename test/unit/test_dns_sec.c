/*
 * Unit tests for the DNSSEC-aware side of dns/: the AD bit, TXT and TLSA.
 *
 * Two peers (the real validating resolver is test_dns_dnssec.c's):
 * - canned packets straight into the parser (AD or not, TXT strings,
 *   TLSA, malformed records);
 * - a scripted UDP responder on a free port of 127.0.0.1, in this process,
 *   answering canned packets through the real c-ares path, for what a
 *   validating resolver never sends (a CNAME left dangling, so the chain
 *   spans two queries with different AD bits, SERVFAIL, a malformed TLSA),
 *   and recording whether every query asked for AD.
 * dns_resolver_trusted is checked against server lists and resolv.conf
 * files of our own (no query is sent to them).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dns/dns.h"
#include "dns/dns_int.h"
#include "test/unit/dnsloop.h"
#include "test/unit/dnspkt.h"
#include "test/unit/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- DNS packets ---- */

/* A response header and question; flags 0x8180 (QR RD RA) plus AD if ad. */
static void
header(struct pkt *p, unsigned id, unsigned rcode, bool ad, unsigned an, const char *qname,
       int qtype)
{
	pkt_header(p, id, 0x8180 | (ad ? DNS_HDR_AD : 0) | rcode, an, 0, qname, qtype);
}

static void
rr_a(struct pkt *p, const char *owner, unsigned last_octet)
{
	size_t at = rr_start(p, owner, DNS_T_A, 300);

	put8(p, 192), put8(p, 0), put8(p, 2), put8(p, last_octet);
	rdlen(p, at);
}

static void
rr_cname(struct pkt *p, const char *owner, const char *target)
{
	size_t at = rr_start(p, owner, DNS_T_CNAME, 300);

	putname(p, target);
	rdlen(p, at);
}

/* TXT from character-strings separated by '|' ("" = one empty string). */
static void
rr_txt(struct pkt *p, const char *owner, const char *strings)
{
	size_t at = rr_start(p, owner, DNS_T_TXT, 300);

	for (;;) {
		const char *bar = strchr(strings, '|');
		size_t len = bar ? (size_t)(bar - strings) : strlen(strings);
		put8(p, (unsigned)len);
		for (size_t i = 0; i < len; i++)
			put8(p, (unsigned char)strings[i]);
		if (bar == NULL)
			break;
		strings = bar + 1;
	}
	rdlen(p, at);
}

/* TLSA with n bytes of data 0x01, 0x02... (n may be 0: malformed). */
static void
rr_tlsa(struct pkt *p, const char *owner, unsigned u, unsigned s, unsigned m, size_t n)
{
	size_t at = rr_start(p, owner, DNS_T_TLSA, 300);

	put8(p, u), put8(p, s), put8(p, m);
	for (size_t i = 0; i < n; i++)
		put8(p, (unsigned)(i + 1));
	rdlen(p, at);
}

/* ---- parser: canned packets ---- */

enum pcase {
	P_A_AD,
	P_A_NOAD,
	P_CHAIN_AD,
	P_DANGLING_AD,
	P_NX_AD,
	P_TXT_MULTI,
	P_TXT_EMPTY_STRING,
	P_TXT_STRING_PAST_RDATA,
	P_TXT_NO_STRING,
	P_TLSA_TWO,
	P_TLSA_FULL_CERT,
	P_TLSA_NO_DATA,
	P_TLSA_SHORT,
};

static void
build(struct pkt *p, enum pcase c)
{
	switch (c) {
	case P_A_AD:
	case P_A_NOAD:
		header(p, 1, 0, c == P_A_AD, 1, "a.t", DNS_T_A);
		rr_a(p, "a.t", 1);
		break;
	case P_CHAIN_AD:
		header(p, 1, 0, true, 2, "_25._tcp.a.t", DNS_T_TLSA);
		rr_cname(p, "_25._tcp.a.t", "_25._tcp.b.t");
		rr_tlsa(p, "_25._tcp.b.t", 3, 1, 1, 32);
		break;
	case P_DANGLING_AD:
		header(p, 1, 0, true, 1, "a.t", DNS_T_TXT);
		rr_cname(p, "a.t", "far.away");
		break;
	case P_NX_AD:
		header(p, 1, 3, true, 0, "a.t", DNS_T_TLSA);
		break;
	case P_TXT_MULTI:
		header(p, 1, 0, false, 2, "a.t", DNS_T_TXT);
		rr_txt(p, "a.t", "v=STSv1; |id=20261206|");
		rr_txt(p, "a.t", "other");
		break;
	case P_TXT_EMPTY_STRING:
		header(p, 1, 0, false, 1, "a.t", DNS_T_TXT);
		rr_txt(p, "a.t", "");
		break;
	case P_TXT_STRING_PAST_RDATA:
		header(p, 1, 0, false, 1, "a.t", DNS_T_TXT);
		rr_txt(p, "a.t", "abc");
		p->b[p->n - 4] = 4; /* the string claims one byte more than its rdata */
		break;
	case P_TXT_NO_STRING: {
		header(p, 1, 0, false, 1, "a.t", DNS_T_TXT);
		rdlen(p, rr_start(p, "a.t", DNS_T_TXT, 300));
		break;
	}
	case P_TLSA_TWO:
		header(p, 1, 0, true, 2, "a.t", DNS_T_TLSA);
		rr_tlsa(p, "a.t", 3, 1, 1, 32);
		rr_tlsa(p, "a.t", 2, 0, 2, 64);
		break;
	case P_TLSA_FULL_CERT:
		header(p, 1, 0, true, 1, "a.t", DNS_T_TLSA);
		rr_tlsa(p, "a.t", 3, 0, 0, 1200);
		break;
	case P_TLSA_NO_DATA:
		header(p, 1, 0, true, 1, "a.t", DNS_T_TLSA);
		rr_tlsa(p, "a.t", 3, 1, 1, 0);
		break;
	case P_TLSA_SHORT: {
		header(p, 1, 0, true, 1, "a.t", DNS_T_TLSA);
		size_t at = rr_start(p, "a.t", DNS_T_TLSA, 300);
		put8(p, 3), put8(p, 1);
		rdlen(p, at);
		break;
	}
	}
}

static void
test_parse_sec(void **state)
{
	static const struct {
		const char *label;
		enum pcase pc;
		const char *qname;
		int qtype;
		int kind; /* -1: parse error "malformed answer" */
		size_t n;
		bool secure;
	} t[] = {
	    {"A with AD", P_A_AD, "a.t", DNS_T_A, DNS_A_DATA, 1, true},
	    {"A without AD", P_A_NOAD, "a.t", DNS_T_A, DNS_A_DATA, 1, false},
	    {"CNAME chain in one answer with AD", P_CHAIN_AD, "_25._tcp.a.t", DNS_T_TLSA,
	     DNS_A_DATA, 1, true},
	    {"dangling CNAME keeps AD", P_DANGLING_AD, "a.t", DNS_T_TXT, DNS_A_CNAME, 0, true},
	    {"NXDOMAIN with AD (secure denial)", P_NX_AD, "a.t", DNS_T_TLSA, DNS_A_NXDOMAIN, 0,
	     true},
	    {"TXT: strings of one record joined", P_TXT_MULTI, "a.t", DNS_T_TXT, DNS_A_DATA, 2,
	     false},
	    {"TXT: one empty string", P_TXT_EMPTY_STRING, "a.t", DNS_T_TXT, DNS_A_DATA, 1, false},
	    {"TXT: string past its rdata", P_TXT_STRING_PAST_RDATA, "a.t", DNS_T_TXT, -1, 0, false},
	    {"TXT: empty rdata", P_TXT_NO_STRING, "a.t", DNS_T_TXT, -1, 0, false},
	    {"TLSA: two records", P_TLSA_TWO, "a.t", DNS_T_TLSA, DNS_A_DATA, 2, true},
	    {"TLSA: full certificate (1200 bytes)", P_TLSA_FULL_CERT, "a.t", DNS_T_TLSA, DNS_A_DATA,
	     1, true},
	    {"TLSA: no association data", P_TLSA_NO_DATA, "a.t", DNS_T_TLSA, -1, 0, false},
	    {"TLSA: 2-byte rdata", P_TLSA_SHORT, "a.t", DNS_T_TLSA, -1, 0, false},
	};
	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct pkt p;
		struct dns_answer *a;

		build(&p, t[i].pc);
		a = tu_parse(&p, t[i].label, t[i].qname, t[i].qtype,
		             t[i].kind < 0 ? "malformed answer" : NULL);
		if (a == NULL)
			continue;
		if ((int)a->kind != t[i].kind || a->n != t[i].n || a->secure != t[i].secure)
			fail_msg("%s: kind %d n %zu secure %d", t[i].label, a->kind, a->n,
			         a->secure);
		dns__answer_unref(a);
	}
}

/* The decoded values, not only the counts. */
static void
test_parse_values(void **state)
{
	struct pkt p;
	char why[64];
	struct dns_answer *a;

	(void)state;
	build(&p, P_TXT_MULTI);
	a = dns__parse(p.b, p.n, "a.t", DNS_T_TXT, why, sizeof why);
	assert_non_null(a);
	assert_int_equal(a->rr[0].len, strlen("v=STSv1; id=20261206"));
	assert_string_equal((char *)a->rr[0].data, "v=STSv1; id=20261206");
	assert_string_equal((char *)a->rr[1].data, "other");
	dns__answer_unref(a);

	build(&p, P_TXT_EMPTY_STRING);
	a = dns__parse(p.b, p.n, "a.t", DNS_T_TXT, why, sizeof why);
	assert_non_null(a);
	assert_int_equal(a->rr[0].len, 0);
	assert_string_equal((char *)a->rr[0].data, "");
	dns__answer_unref(a);

	build(&p, P_TLSA_TWO);
	a = dns__parse(p.b, p.n, "a.t", DNS_T_TLSA, why, sizeof why);
	assert_non_null(a);
	assert_memory_equal(a->rr[0].tlsa, "\x03\x01\x01", 3);
	assert_int_equal(a->rr[0].len, 32);
	assert_int_equal(a->rr[0].data[0], 1);
	assert_int_equal(a->rr[0].data[31], 32);
	assert_memory_equal(a->rr[1].tlsa, "\x02\x00\x02", 3);
	assert_int_equal(a->rr[1].len, 64);
	dns__answer_unref(a);

	/* every prefix of every packet parses or fails cleanly (ASan watches) */
	for (int c = P_A_AD; c <= P_TLSA_SHORT; c++) {
		build(&p, (enum pcase)c);
		for (size_t len = 0; len <= p.n; len++) {
			unsigned char *copy = malloc(len ? len : 1);
			memcpy(copy, p.b, len);
			dns__answer_unref(dns__parse(copy, len, "a.t", DNS_T_TXT, why, sizeof why));
			dns__answer_unref(
			    dns__parse(copy, len, "a.t", DNS_T_TLSA, why, sizeof why));
			free(copy);
		}
	}
}

/* ---- a scripted responder through the real c-ares path ---- */

static int resp_fd = -1, resp_port;
static int resp_queries, resp_queries_without_ad;

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

/* The canned answer for (qname, qtype); unknown names: NODATA with AD. */
static void
canned(struct pkt *p, unsigned id, const char *q, int type)
{
	bool tlsa = type == DNS_T_TLSA;
	char cn[300];

	if (ends_with(q, "sf.t")) {
		header(p, id, 2, false, 0, q, type);
	} else if (ends_with(q, "nx.t")) {
		header(p, id, 3, true, 0, q, type);
	} else if (ends_with(q, "bad.t") && tlsa) {
		header(p, id, 0, true, 1, q, type);
		rr_tlsa(p, q, 3, 1, 1, 0);
	} else if (strcmp(q, "txt.t") == 0 && type == DNS_T_TXT) {
		header(p, id, 0, true, 2, q, type);
		rr_txt(p, q, "v=TLSRPTv1; |rua=mailto:r@txt.t");
		rr_txt(p, q, "v=spf1 -all");
	} else if (strstr(q, "1.t") && (type == DNS_T_A || tlsa)) {
		/* c1, d1, e1 (and _25._tcp.X1.t): a CNAME to X2 and nothing more */
		snprintf(cn, sizeof cn, "%.*s2.t", (int)(strlen(q) - 3), q);
		header(p, id, 0, q[strlen(q) - 4] != 'e', 1, q, type);
		rr_cname(p, q, cn);
	} else if (strstr(q, "2.t") && (type == DNS_T_A || tlsa)) {
		header(p, id, 0, q[strlen(q) - 4] != 'd', 1, q, type);
		if (tlsa)
			rr_tlsa(p, q, 3, 1, 1, 32);
		else
			rr_a(p, q, 7);
	} else {
		header(p, id, 0, true, 0, q, type);
	}
}

/* Answer one query waiting on fd (the loop's extra fd). */
static void
respond(int fd)
{
	unsigned char in[512];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof from;
	ssize_t len = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&from, &fromlen);
	char name[256] = "";
	size_t off = 12, nl = 0;
	struct pkt p;

	if (len < 17)
		return;
	while (off < (size_t)len && in[off] != 0 && nl + in[off] + 1 < sizeof name) {
		if (nl)
			name[nl++] = '.';
		memcpy(name + nl, in + off + 1, in[off]);
		nl += in[off];
		off += 1 + (size_t)in[off];
	}
	name[nl] = '\0';
	if (off + 5 > (size_t)len)
		return;
	resp_queries++;
	if (!(in[3] & DNS_HDR_AD))
		resp_queries_without_ad++;
	canned(&p, (unsigned)(in[0] << 8 | in[1]), name, in[off + 1] << 8 | in[off + 2]);
	sendto(fd, p.b, p.n, 0, (struct sockaddr *)&from, fromlen);
}

static int
resp_setup(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;

	(void)state;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	resp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (resp_fd < 0 || bind(resp_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    getsockname(resp_fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	resp_port = ntohs(sa.sin_port);
	return 0;
}

static int
resp_teardown(void **state)
{
	(void)state;
	close(resp_fd);
	return 0;
}

static struct dns *
resp_dns(struct tu_loop *L)
{
	struct dns_opts o = {.family = DNS_FAMILY_IPV4, .timeout_ms = 500, .tries = 2};
	char srv[64];
	struct dns *d;

	snprintf(srv, sizeof srv, "127.0.0.1:%d", resp_port);
	o.servers = srv;
	d = tu_dns_new(L, &o);
	L->extra_fd = resp_fd;
	L->extra = respond;
	return d;
}

/* secure is the AND of the AD bits of both queries of a chain, also from the cache. */
static void
test_chain_across_queries(void **state)
{
	static const struct {
		const char *name;
		bool secure;
	} t[] = {{"c1.t", true}, {"d1.t", false}, {"e1.t", false}};
	struct tu_loop L;
	struct tu_cap c;
	struct dns *d = resp_dns(&L);
	char name[64];
	int sent;

	(void)state;
	for (int round = 0; round < 2; round++) { /* round 1: all from the cache */
		sent = resp_queries;
		for (size_t i = 0; i < 3; i++) {
			TU_RESOLVE(d, &L, &c, dns_resolve_addrs(d, t[i].name, tu_on_mx, &c));
			assert_int_equal(c.status, DNS_OK);
			assert_string_equal(c.t[0].host, t[i].name);
			if (c.t[0].secure != t[i].secure)
				fail_msg("round %d %s: secure %d", round, t[i].name, c.t[0].secure);
			snprintf(name, sizeof name, "%.1s1.t", t[i].name);
			TU_RESOLVE(d, &L, &c, dns_resolve_tlsa(d, name, 25, tu_on_tlsa, &c));
			assert_int_equal(c.status, DNS_OK);
			assert_int_equal(c.n, 1);
			assert_int_equal(c.tlsa[0].len, 32);
			if (c.secure != t[i].secure)
				fail_msg("round %d TLSA %s: secure %d", round, name, c.secure);
		}
		if (round == 1)
			assert_int_equal(resp_queries, sent);
	}
	assert_true(resp_queries >= 12);
	assert_int_equal(resp_queries_without_ad, 0); /* RFC 6840 5.7: every query asks for AD */
	dns_free(d);
}

static void
test_status_mapping(void **state)
{
	struct tu_loop L;
	struct tu_cap c;
	struct dns *d = resp_dns(&L);

	(void)state;
	TU_RESOLVE(d, &L, &c, dns_resolve_txt(d, "TXT.t.", tu_on_txt, &c));
	assert_int_equal(c.status, DNS_OK);
	assert_true(c.secure);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.txt[0], "v=TLSRPTv1; rua=mailto:r@txt.t");
	assert_string_equal(c.txt[1], "v=spf1 -all");

	TU_RESOLVE(d, &L, &c, dns_resolve_txt(d, "sf.t", tu_on_txt, &c));
	assert_int_equal(c.status, DNS_TEMPFAIL);
	assert_false(c.secure);
	assert_string_equal(c.reason, "sf.t: TXT lookup failed: SERVFAIL");

	TU_RESOLVE(d, &L, &c, dns_resolve_tlsa(d, "bad.t", 25, tu_on_tlsa, &c));
	assert_int_equal(c.status, DNS_TEMPFAIL); /* RFC 7672 2.2: never "no TLSA" */
	assert_string_equal(c.reason, "_25._tcp.bad.t: TLSA lookup failed: malformed answer");

	TU_RESOLVE(d, &L, &c, dns_resolve_tlsa(d, "nx.t", 25, tu_on_tlsa, &c));
	assert_int_equal(c.status, DNS_NXDOMAIN);
	assert_true(c.secure);
	assert_int_equal(c.n, 0);
	TU_RESOLVE(d, &L, &c, dns_resolve_tlsa(d, "nodata.t", 465, tu_on_tlsa, &c));
	assert_int_equal(c.status, DNS_NXDOMAIN);
	assert_true(c.secure);
	assert_string_equal(c.reason, "_465._tcp.nodata.t: no TLSA record");

	TU_RESOLVE(d, &L, &c, dns_resolve_addrs(d, "nx.t", tu_on_mx, &c));
	assert_int_equal(c.status, DNS_NXDOMAIN);
	assert_true(c.implicit);
	TU_RESOLVE(d, &L, &c, dns_resolve_addrs(d, "sf.t", tu_on_mx, &c));
	assert_int_equal(c.status, DNS_TEMPFAIL);
	dns_free(d);
}

/* Never a callback inside the call (cache hits included), never after cancel. */
static void
test_callbacks_and_cancel(void **state)
{
	struct tu_loop L;
	struct tu_cap c, c2;
	struct dns *d = resp_dns(&L);
	struct dns_query *q;

	(void)state;
	TU_RESOLVE(d, &L, &c, dns_resolve_txt(d, "txt.t", tu_on_txt, &c));
	TU_RESOLVE(d, &L, &c, dns_resolve_txt(d, "txt.t", tu_on_txt, &c)); /* cached */
	assert_int_equal(c.status, DNS_OK);

	memset(&c, 0, sizeof c);
	memset(&c2, 0, sizeof c2);
	q = dns_resolve_txt(d, "txt.t", tu_on_txt, &c); /* cached: done, not yet delivered */
	assert_non_null(q);
	dns_cancel(q);
	q = dns_resolve_tlsa(d, "c1.t", 25, tu_on_tlsa, &c); /* in flight */
	assert_non_null(q);
	dns_cancel(q);
	assert_non_null(dns_resolve_tlsa(d, "d1.t", 25, tu_on_tlsa, &c2));
	tu_run(d, &L, &c2.fired, 1, 3000);
	tu_run(d, &L, &c.fired, 1, 300);
	assert_int_equal(c.fired, 0);
	assert_int_equal(c2.fired, 1);

	/* in flight when the handle goes: no callback, no leak (ASan) */
	assert_non_null(dns_resolve_txt(d, "e1.t", tu_on_txt, &c));
	dns_free(d);
	assert_int_equal(c.fired, 0);
}

static void
test_bad_arguments(void **state)
{
	struct tu_loop L;
	struct tu_cap c;
	struct dns *d = resp_dns(&L);
	char longname[300];

	(void)state;
	memset(longname, 'a', sizeof longname);
	longname[sizeof longname - 1] = '\0';
	errno = 0;
	assert_null(dns_resolve_tlsa(d, "mx.t", 0, tu_on_tlsa, &c));
	assert_int_equal(errno, EINVAL);
	assert_null(dns_resolve_tlsa(d, "mx.t", 65536, tu_on_tlsa, &c));
	assert_null(dns_resolve_tlsa(d, "bad..name", 25, tu_on_tlsa, &c));
	assert_null(dns_resolve_tlsa(d, "mx.t", 25, NULL, &c));
	assert_null(dns_resolve_tlsa(d, longname, 25, tu_on_tlsa, &c));
	/* a 250-byte host fits, but _25._tcp. in front of it does not */
	longname[250] = '\0';
	for (int i = 63; i < 250; i += 64)
		longname[i] = '.';
	assert_null(dns_resolve_tlsa(d, longname, 25, tu_on_tlsa, &c));
	assert_null(dns_resolve_txt(d, "sp ace.t", tu_on_txt, &c));
	assert_null(dns_resolve_txt(d, NULL, tu_on_txt, &c));
	assert_null(dns_resolve_addrs(d, "", tu_on_mx, &c));
	assert_int_equal(errno, EINVAL);
	tu_run(d, &L, &c.fired, 1, 100);
	dns_free(d);
}

static char resolv_dir[64];

/* dns_resolver_trusted: loopback only, from dns_servers or from a resolv.conf. */
static void
test_resolver_trusted(void **state)
{
	static const struct {
		const char *servers, *resolv_conf;
		bool trusted;
	} t[] = {
	    {"127.0.0.1:53", NULL, true},
	    {"127.0.0.53", NULL, true},
	    {"[::1]:5353", NULL, true},
	    {"127.0.0.1,[::1]:53", NULL, true},
	    {"127.0.0.1,192.0.2.53", NULL, false},
	    {"[2001:db8::53]:53", NULL, false},
	    {"10.0.0.1", NULL, false},
	    {NULL, "nameserver 127.0.0.1\n", true},
	    {NULL, "nameserver 127.0.0.53\noptions edns0\n", true},
	    {NULL, "nameserver ::1\nnameserver 127.0.0.1\n", true},
	    {NULL, "nameserver 127.0.0.1\nnameserver 192.0.2.1\n", false},
	    {NULL, "nameserver 203.0.113.9\n", false},
	};
	char path[64];

	(void)state;
	snprintf(resolv_dir, sizeof resolv_dir, "/tmp/test_dns_sec.XXXXXX");
	assert_non_null(mkdtemp(resolv_dir));
	snprintf(path, sizeof path, "%s/resolv.conf", resolv_dir);
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct dns_opts o = {.servers = t[i].servers};
		struct tu_loop L;
		struct dns *d;
		if (t[i].resolv_conf) {
			FILE *f = fopen(path, "w");
			assert_non_null(f);
			fputs(t[i].resolv_conf, f);
			assert_int_equal(fclose(f), 0);
			o.resolv_conf = path;
		}
		d = tu_dns_new(&L, &o);
		if (dns_resolver_trusted(d) != t[i].trusted)
			fail_msg("%s%s: expected %d", t[i].servers ? t[i].servers : "resolv.conf: ",
			         t[i].resolv_conf ? t[i].resolv_conf : "", t[i].trusted);
		dns_free(d);
	}
}

static int
rm_resolv_dir(void **state)
{
	(void)state;
	if (resolv_dir[0])
		tu_rmtree(resolv_dir);
	resolv_dir[0] = '\0';
	return 0;
}

int
main(void)
{
	const struct CMUnitTest parse_tests[] = {
	    cmocka_unit_test(test_parse_sec),
	    cmocka_unit_test(test_parse_values),
	    cmocka_unit_test_teardown(test_resolver_trusted, rm_resolv_dir),
	};
	const struct CMUnitTest resp_tests[] = {
	    cmocka_unit_test(test_chain_across_queries),
	    cmocka_unit_test(test_status_mapping),
	    cmocka_unit_test(test_callbacks_and_cancel),
	    cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests_name("dns_sec_parse", parse_tests, NULL, NULL) +
	       cmocka_run_group_tests_name("dns_sec_responder", resp_tests, resp_setup,
	                                   resp_teardown);
}
