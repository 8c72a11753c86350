/*
 * Unit tests for dns/ and mta/delivery/resolver against a real nsd on 127.0.0.1.
 *
 * The group setup writes a test zone and starts `nsd -d` on a free port
 * under a watchdog child that ends nsd's process group when the group
 * teardown or exit closes a pipe, or when this process dies. Timeouts use a UDP socket of ours that
 * never answers; "connection refused" a port nobody listens on. No traffic
 * leaves 127.0.0.1. Queries run on a small poll() loop driven only through
 * the public API (sock_cb, dns_process, dns_timeouts, dns_next_timeout), and
 * once through libevent via mta/delivery/resolver.c. The response parser, address
 * policy and name syntax have table-driven tests of their own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dns/dns.h"
#include "dns/dns_int.h"
#include "mta/delivery/resolver.h"
#include "test/unit/dnsloop.h"
#include "test/unit/dnspkt.h"
#include "test/unit/peergroup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the nsd peer ---- */

static char tmpdir[128];
static int nsd_port;
static struct tu_group nsd;   /* nsd under its watchdog */
static int blackhole_fd = -1; /* bound UDP socket that never answers */
static int blackhole_port, closed_port;

static const char zone_example[] = "$ORIGIN example.test.\n"
                                   "$TTL 300\n"
                                   "@ SOA ns host 1 3600 600 86400 60\n"
                                   "@ NS ns\n"
                                   "ns A 192.0.2.53\n"
                                   "multi MX 20 mx2\n"
                                   "multi MX 10 mx1\n"
                                   "multi MX 30 mx3\n"
                                   "mx1 A 192.0.2.1\n"
                                   "mx1 AAAA 2001:db8::1\n"
                                   "mx2 A 192.0.2.2\n"
                                   "mx3 A 192.0.2.3\n"
                                   "tie MX 10 ta\n"
                                   "tie MX 10 tb\n"
                                   "tie MX 20 tc\n"
                                   "ta A 192.0.2.11\n"
                                   "tb A 192.0.2.12\n"
                                   "tc A 192.0.2.13\n"
                                   "implicit A 192.0.2.50\n"
                                   "v6only MX 10 mx6\n"
                                   "mx6 AAAA 2001:db8::6\n"
                                   "nullmx MX 0 .\n"
                                   "partial MX 10 missing\n"
                                   "partial MX 20 mx2\n"
                                   "halfbroken MX 10 mx.broken.test.\n"
                                   "halfbroken MX 20 mx2\n"
                                   "allbroken MX 10 mx.broken.test.\n"
                                   "allgone MX 10 gone1\n"
                                   "allgone MX 20 gone2\n"
                                   "gonebroken MX 10 gone1\n"
                                   "gonebroken MX 20 mx.broken.test.\n"
                                   "loop MX 10 lo\n"
                                   "lo A 127.0.0.2\n"
                                   "lo AAAA ::1\n"
                                   "private MX 10 priv\n"
                                   "priv A 10.1.2.3\n"
                                   "ll MX 10 llhost\n"
                                   "llhost A 169.254.1.1\n"
                                   "llhost AAAA fe80::1\n"
                                   "ula MX 10 ulahost\n"
                                   "ula MX 20 privb\n"
                                   "ulahost AAAA fd00::1\n"
                                   "ulahost A 172.16.5.5\n"
                                   "privb A 192.168.1.1\n"
                                   "mixed MX 10 lo\n"
                                   "mixed MX 20 mx3\n"
                                   "cname MX 10 alias\n"
                                   "alias CNAME mx2\n"
                                   "aliasdom CNAME multi\n"
                                   "dangle MX 10 alias3\n"
                                   "alias3 CNAME host.notserved.test.\n"
                                   "nomail TXT \"no mail here\"\n"
                                   "manyaddr MX 10 big\n"
                                   "dup MX 30 MX2\n"
                                   "dup MX 10 mx2\n"
                                   "dup MX 20 mx2\n"
                                   "short 1 MX 10 mx3\n";

static void
rm_tree(void)
{
	char cmd[256];

	if (tmpdir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
		tmpdir[0] = '\0';
	}
}

static void
write_zones(void)
{
	char buf[16384];
	size_t n = 0;

	/* many: 12 MX hosts; big: 10 addresses */
	n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", zone_example);
	for (int i = 1; i <= 12; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "many MX %d m%d\nm%d A 192.0.2.%d\n",
		                      i, i, i, 100 + i);
	for (int i = 1; i <= 10; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "big A 198.51.100.%d\n", i);
	/* fat: 60 addresses, more than 512 bytes: truncated over UDP, retried over TCP */
	n += (size_t)snprintf(buf + n, sizeof buf - n, "huge MX 10 fat\n");
	for (int i = 1; i <= 60; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "fat A 203.0.113.%d\n", i);
	tu_write_file(tmpdir, "example.zone", buf);
}

static void
write_conf(int port)
{
	char buf[2048];

	snprintf(buf, sizeof buf,
	         "server:\n"
	         "  ip-address: 127.0.0.1@%d\n"
	         "  port: %d\n"
	         "  username: \"\"\n"
	         "  chroot: \"\"\n"
	         "  database: \"\"\n"
	         "  zonesdir: \"%s\"\n"
	         "  zonelistfile: \"%s/zone.list\"\n"
	         "  xfrdfile: \"%s/xfrd.state\"\n"
	         "  pidfile: \"%s/nsd.pid\"\n"
	         "  logfile: \"%s/nsd.log\"\n"
	         "  server-count: 1\n"
	         "  verbosity: 1\n"
	         "remote-control:\n"
	         "  control-enable: no\n"
	         "zone:\n"
	         "  name: example.test\n"
	         "  zonefile: example.zone\n"
	         /* no zone file: nsd answers SERVFAIL for broken.test */
	         "zone:\n"
	         "  name: broken.test\n"
	         "  zonefile: broken.zone\n",
	         port, port, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
	tu_write_file(tmpdir, "nsd.conf", buf);
}

/* Does anything answer a SOA query for example.test on the port? */
static bool
nsd_answers(int port)
{
	int b3 = tu_soa_probe(port, "example.test", false, 200);

	return b3 >= 0 && (b3 & 0xf) == 0;
}

static void
nsd_stop(void)
{
	tu_group_stop(&nsd);
}

static int
nsd_start(int port)
{
	char cmd[600];

	write_conf(port);
	snprintf(cmd, sizeof cmd, "exec nsd -d -c '%s/nsd.conf' > '%s/nsd.out' 2>&1", tmpdir,
	         tmpdir);
	if (tu_group_start(&nsd, cmd, tmpdir) < 0)
		return -1;
	for (int i = 0; i < 100; i++) {
		if (tu_group_gone(&nsd))
			return -1;
		if (nsd_answers(port)) {
			nsd_port = port;
			return 0;
		}
		usleep(50 * 1000);
	}
	nsd_stop();
	return -1;
}

static void
at_exit(void)
{
	nsd_stop();
	rm_tree();
}

static int
group_setup(void **state)
{
	const char *base = getenv("TMPDIR");
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;

	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "%s/test_dns.XXXXXX", base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	atexit(at_exit);
	write_zones();
	for (int i = 0; i < 5; i++)
		if (nsd_start(tu_free_port()) == 0)
			break;
	if (nsd.pid <= 0) {
		fprintf(stderr, "nsd did not start (see %s/nsd.log)\n", tmpdir);
		return -1;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	blackhole_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (bind(blackhole_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    getsockname(blackhole_fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	blackhole_port = ntohs(sa.sin_port);
	closed_port = tu_free_port();
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	nsd_stop();
	if (blackhole_fd >= 0)
		close(blackhole_fd);
	rm_tree();
	return 0;
}

/* ---- capturing results ---- */

struct cap {
	int fired;
	enum dns_status status;
	char reason[256];
	bool implicit;
	size_t n;
	struct dns_target t[64];
	struct dns_query *cancel; /* cancel this from inside the callback */
	struct dns_query *self;   /* cancel this (our own handle) from inside the callback */
	struct dns *restart;      /* start a query for restart_domain from inside */
	const char *restart_domain;
	struct cap *restart_cap;
};

static void
on_result(void *arg, const struct dns_mx_result *res)
{
	struct cap *c = arg;

	c->fired++;
	c->status = res->status;
	snprintf(c->reason, sizeof c->reason, "%s", res->reason);
	c->implicit = res->implicit;
	c->n = res->ntargets < 64 ? res->ntargets : 64;
	if (c->n)
		memcpy(c->t, res->targets, c->n * sizeof c->t[0]);
	if (c->cancel)
		dns_cancel(c->cancel);
	if (c->self)
		dns_cancel(c->self);
	if (c->restart) {
		assert_non_null(
		    dns_resolve_mx(c->restart, c->restart_domain, on_result, c->restart_cap));
		assert_int_equal(c->restart_cap->fired, 0);
	}
}

static void
base_opts(struct dns_opts *o, char *servers, size_t len)
{
	memset(o, 0, sizeof *o);
	snprintf(servers, len, "127.0.0.1:%d", nsd_port);
	o->servers = servers;
	o->timeout_ms = 500;
	o->tries = 2;
}

/* One lookup to completion on a fresh cap. */
static void
resolve(struct dns *d, struct tu_loop *L, const char *domain, struct cap *c)
{
	memset(c, 0, sizeof *c);
	assert_non_null(dns_resolve_mx(d, domain, on_result, c));
	assert_int_equal(c->fired, 0);
	tu_run(d, L, &c->fired, 1, 5000);
	assert_int_equal(c->fired, 1);
}

static const char *
ip_of(const struct dns_target *t, char *buf)
{
	if (t->addr.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&t->addr)->sin_addr, buf, 64);
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&t->addr)->sin6_addr, buf, 64);
	return buf;
}

#define assert_target(c, i, hostname, prefv, ipstr)                                                \
	do {                                                                                       \
		char ip_[64];                                                                      \
		assert_string_equal((c)->t[i].host, hostname);                                     \
		assert_int_equal((c)->t[i].pref, prefv);                                           \
		assert_string_equal(ip_of(&(c)->t[i], ip_), ipstr);                                \
	} while (0)

/* ---- MX pipeline against nsd ---- */

static void
test_mx_preference_order(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "Multi.Example.Test.", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_false(c.implicit);
	assert_int_equal(c.n, 4);
	/* family any: a host's IPv6 address first, then IPv4 */
	assert_target(&c, 0, "mx1.example.test", 10, "2001:db8::1");
	assert_target(&c, 1, "mx1.example.test", 10, "192.0.2.1");
	assert_target(&c, 2, "mx2.example.test", 20, "192.0.2.2");
	assert_target(&c, 3, "mx3.example.test", 30, "192.0.2.3");
	assert_int_equal(c.t[1].addrlen, sizeof(struct sockaddr_in));
	assert_int_equal(c.t[0].addrlen, sizeof(struct sockaddr_in6));
	assert_string_equal(c.reason, "");

	/* a domain that is a CNAME to multi */
	resolve(d, &L, "aliasdom.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 4);
	assert_target(&c, 3, "mx3.example.test", 30, "192.0.2.3");
	dns_free(d);
}

static void
test_mx_ties_shuffled(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;
	int ab = 0, ba = 0, i;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	for (i = 0; i < 200 && (ab == 0 || ba == 0); i++) {
		resolve(d, &L, "tie.example.test", &c);
		assert_int_equal(c.status, DNS_OK);
		assert_int_equal(c.n, 3);
		assert_string_equal(c.t[2].host, "tc.example.test");
		if (strcmp(c.t[0].host, "ta.example.test") == 0) {
			assert_string_equal(c.t[1].host, "tb.example.test");
			ab++;
		} else {
			assert_string_equal(c.t[0].host, "tb.example.test");
			assert_string_equal(c.t[1].host, "ta.example.test");
			ba++;
		}
	}
	assert_true(ab > 0 && ba > 0);
	dns_free(d);

	/* fresh handles (empty caches) shuffle too */
	ab = ba = 0;
	for (i = 0; i < 100 && (ab == 0 || ba == 0); i++) {
		d = tu_dns_new(&L, &o);
		resolve(d, &L, "tie.example.test", &c);
		assert_int_equal(c.status, DNS_OK);
		if (strcmp(c.t[0].host, "ta.example.test") == 0)
			ab++;
		else
			ba++;
		dns_free(d);
	}
	assert_true(ab > 0 && ba > 0);
}

static void
test_implicit_mx(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "implicit.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_true(c.implicit);
	assert_int_equal(c.n, 1);
	assert_target(&c, 0, "implicit.example.test", 0, "192.0.2.50");

	/* no MX and no address record: not a mail domain (RFC 5321 5.1) */
	resolve(d, &L, "nomail.example.test", &c);
	assert_int_equal(c.status, DNS_NXDOMAIN);
	assert_true(c.implicit);
	assert_int_equal(c.n, 0);
	assert_non_null(strstr(c.reason, "no MX and no address records"));
	dns_free(d);
}

static void
test_family_preference(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "v6only.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 1);
	assert_target(&c, 0, "mx6.example.test", 10, "2001:db8::6");
	dns_free(d);

	o.family = DNS_FAMILY_IPV4;
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "v6only.example.test", &c);
	assert_int_equal(c.status, DNS_NO_ADDRESS);
	assert_non_null(strstr(c.reason, "mx6.example.test: no A record"));
	resolve(d, &L, "multi.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 3);
	assert_target(&c, 0, "mx1.example.test", 10, "192.0.2.1");
	dns_free(d);

	o.family = DNS_FAMILY_IPV6;
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "multi.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 1);
	assert_target(&c, 0, "mx1.example.test", 10, "2001:db8::1");
	assert_non_null(strstr(c.reason, "mx2.example.test: no AAAA record"));
	dns_free(d);
}

static void
test_null_mx_and_nxdomain(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "nullmx.example.test", &c);
	assert_int_equal(c.status, DNS_NULL_MX);
	assert_int_equal(c.n, 0);
	assert_non_null(strstr(c.reason, "null MX"));

	resolve(d, &L, "nope.example.test", &c);
	assert_int_equal(c.status, DNS_NXDOMAIN);
	assert_non_null(strstr(c.reason, "NXDOMAIN"));
	dns_free(d);
}

static void
test_host_failures_skipped(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	/* first MX host does not exist: the second is still used */
	resolve(d, &L, "partial.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 1);
	assert_target(&c, 0, "mx2.example.test", 20, "192.0.2.2");
	assert_non_null(strstr(c.reason, "missing.example.test: NXDOMAIN"));

	/* first MX host's zone answers SERVFAIL */
	resolve(d, &L, "halfbroken.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 1);
	assert_target(&c, 0, "mx2.example.test", 20, "192.0.2.2");
	assert_non_null(strstr(c.reason, "SERVFAIL"));

	/* the only MX host fails temporarily: retry later */
	resolve(d, &L, "allbroken.example.test", &c);
	assert_int_equal(c.status, DNS_TEMPFAIL);
	assert_non_null(strstr(c.reason, "mx.broken.test: SERVFAIL"));

	/* every MX host name is NXDOMAIN: permanent (5.4.4), not "no address" */
	resolve(d, &L, "allgone.example.test", &c);
	assert_int_equal(c.status, DNS_MX_NXDOMAIN);
	assert_int_equal(c.n, 0);
	assert_non_null(strstr(c.reason, "gone1.example.test: NXDOMAIN"));
	assert_non_null(strstr(c.reason, "gone2.example.test: NXDOMAIN"));

	/* one NXDOMAIN, one SERVFAIL: the SERVFAIL may pass, so retry later */
	resolve(d, &L, "gonebroken.example.test", &c);
	assert_int_equal(c.status, DNS_TEMPFAIL);
	dns_free(d);
}

static void
test_cname_mx_host(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;
	struct dns_stats st0, st1;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "cname.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 1);
	/* the MX name is kept (it names the host for TLS and logs) */
	assert_target(&c, 0, "alias.example.test", 10, "192.0.2.2");

	/* a CNAME out of the server's zones: chased with a new query, which is REFUSED */
	dns_get_stats(d, &st0);
	resolve(d, &L, "dangle.example.test", &c);
	dns_get_stats(d, &st1);
	assert_int_equal(c.status, DNS_TEMPFAIL);
	assert_non_null(strstr(c.reason, "alias3.example.test: REFUSED"));
	/* MX, then AAAA and A for alias3, then AAAA and A for host.notserved.test */
	assert_int_equal(st1.queries_sent - st0.queries_sent, 5);

	/* duplicates (any case) collapse to one host at its best preference */
	resolve(d, &L, "dup.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 1);
	assert_target(&c, 0, "mx2.example.test", 10, "192.0.2.2");
	dns_free(d);
}

static void
test_tempfail_rcodes(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "broken.test", &c);
	assert_int_equal(c.status, DNS_TEMPFAIL);
	assert_string_equal(c.reason, "broken.test: MX lookup failed: SERVFAIL");
	resolve(d, &L, "elsewhere.notserved.test", &c);
	assert_int_equal(c.status, DNS_TEMPFAIL);
	assert_string_equal(c.reason, "elsewhere.notserved.test: MX lookup failed: REFUSED");
	dns_free(d);
}

static void
test_timeout_and_refused(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;
	int64_t t0;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	snprintf(srv, sizeof srv, "127.0.0.1:%d", blackhole_port);
	o.timeout_ms = 200;
	o.tries = 1;
	d = tu_dns_new(&L, &o);
	t0 = tu_now_ms();
	resolve(d, &L, "multi.example.test", &c);
	assert_int_equal(c.status, DNS_TEMPFAIL);
	assert_non_null(strstr(c.reason, "timeout"));
	assert_true(tu_now_ms() - t0 >= 150);
	assert_true(tu_now_ms() - t0 < 3000);
	assert_int_equal(dns_next_timeout(d), -1);
	dns_free(d);

	snprintf(srv, sizeof srv, "127.0.0.1:%d", closed_port);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "multi.example.test", &c);
	assert_int_equal(c.status, DNS_TEMPFAIL);
	assert_non_null(strstr(c.reason, "MX lookup failed"));
	dns_free(d);
}

static void
test_private_addresses(void **state)
{
	static const struct {
		const char *domain;
		const char *refused; /* text in the reason with allow_private off */
		size_t allowed;      /* targets with allow_private on */
	} cases[] = {
	    {"loop.example.test", "lo.example.test[", 2},
	    {"private.example.test", "priv.example.test[10.1.2.3]: private address refused", 1},
	    {"ll.example.test", "link-local address refused", 2},
	    {"ula.example.test", "private address refused", 3},
	};
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		o.allow_private = false;
		d = tu_dns_new(&L, &o);
		resolve(d, &L, cases[i].domain, &c);
		if (c.status != DNS_NO_ADDRESS || !strstr(c.reason, cases[i].refused))
			fail_msg("%s: status %d reason \"%s\"", cases[i].domain, c.status,
			         c.reason);
		assert_int_equal(c.n, 0);
		dns_free(d);

		o.allow_private = true;
		d = tu_dns_new(&L, &o);
		resolve(d, &L, cases[i].domain, &c);
		assert_int_equal(c.status, DNS_OK);
		assert_int_equal(c.n, cases[i].allowed);
		dns_free(d);
	}

	/* a refused host is skipped when another host is usable */
	o.allow_private = false;
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "mixed.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 1);
	assert_target(&c, 0, "mx3.example.test", 20, "192.0.2.3");
	assert_non_null(strstr(c.reason, "loopback address refused"));
	dns_free(d);

	/* loopback targets in order: ::1 first, then 127.0.0.2 */
	o.allow_private = true;
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "loop.example.test", &c);
	assert_target(&c, 0, "lo.example.test", 10, "::1");
	assert_target(&c, 1, "lo.example.test", 10, "127.0.0.2");
	dns_free(d);
}

static void
test_bounds(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	o.family = DNS_FAMILY_IPV4;
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "many.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 10); /* 12 MX hosts, best 10 used */
	for (int i = 0; i < 10; i++) {
		char host[64], ip[64];
		snprintf(host, sizeof host, "m%d.example.test", i + 1);
		snprintf(ip, sizeof ip, "192.0.2.%d", 101 + i);
		assert_target(&c, i, host, i + 1, ip);
	}
	resolve(d, &L, "manyaddr.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 4); /* 10 addresses, 4 per host by default */

	/* the answer for fat does not fit in 512 bytes: c-ares retries over TCP */
	resolve(d, &L, "huge.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 4);
	for (size_t i = 0; i < c.n; i++)
		assert_int_equal(
		    memcmp(&((struct sockaddr_in *)&c.t[i].addr)->sin_addr, "\xcb\x00\x71", 3), 0);
	dns_free(d);

	o.max_mx = 3;
	o.max_addrs = 7;
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "many.example.test", &c);
	assert_int_equal(c.n, 3);
	resolve(d, &L, "manyaddr.example.test", &c);
	assert_int_equal(c.n, 7);
	for (size_t i = 0; i < c.n; i++)
		for (size_t j = i + 1; j < c.n; j++)
			assert_memory_not_equal(&c.t[i].addr, &c.t[j].addr, c.t[i].addrlen);
	dns_free(d);
}

/* ---- cache ---- */

static void
test_cache_hits_without_traffic(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;
	struct dns_stats st0, st1;
	int port = nsd_port;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "multi.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	resolve(d, &L, "nope.example.test", &c); /* negative answers are cached too */
	assert_int_equal(c.status, DNS_NXDOMAIN);
	resolve(d, &L, "implicit.example.test", &c); /* and NODATA */
	assert_int_equal(c.status, DNS_OK);
	dns_get_stats(d, &st0);
	assert_true(st0.cache_entries >= 7);

	nsd_stop();
	resolve(d, &L, "multi.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 4);
	assert_target(&c, 3, "mx3.example.test", 30, "192.0.2.3");
	resolve(d, &L, "nope.example.test", &c);
	assert_int_equal(c.status, DNS_NXDOMAIN);
	resolve(d, &L, "implicit.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	assert_true(c.implicit);
	dns_get_stats(d, &st1);
	assert_int_equal(st1.queries_sent, st0.queries_sent);
	assert_int_equal(st1.cache_hits - st0.cache_hits, 7 + 1 + 3);

	/* not cached: goes out and fails, nsd being down */
	resolve(d, &L, "tie.example.test", &c);
	assert_int_equal(c.status, DNS_TEMPFAIL);

	/* a flush forgets everything */
	dns_cache_flush(d);
	resolve(d, &L, "multi.example.test", &c);
	assert_int_equal(c.status, DNS_TEMPFAIL);
	dns_free(d);

	if (nsd_start(port) < 0)
		assert_int_equal(nsd_start(tu_free_port()), 0);
}

static void
test_cache_ttl_expiry(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c;
	struct dns *d;
	struct dns_stats st0, st1;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	o.min_ttl = 1;
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "short.example.test", &c); /* MX TTL 1 s, mx3's A 300 s */
	assert_int_equal(c.status, DNS_OK);
	dns_get_stats(d, &st0);
	resolve(d, &L, "short.example.test", &c);
	dns_get_stats(d, &st1);
	assert_int_equal(st1.queries_sent, st0.queries_sent);
	sleep(2);
	resolve(d, &L, "short.example.test", &c);
	assert_int_equal(c.status, DNS_OK);
	dns_get_stats(d, &st1);
	assert_int_equal(st1.queries_sent - st0.queries_sent, 1); /* only the MX again */
	dns_free(d);

	/* a cache of one entry keeps only the last answer */
	o.cache_size = 1;
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "implicit.example.test", &c);
	dns_get_stats(d, &st0);
	assert_int_equal(st0.cache_entries, 1);
	dns_free(d);

	/* no cache at all */
	o.cache_size = -1;
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "implicit.example.test", &c);
	resolve(d, &L, "implicit.example.test", &c);
	dns_get_stats(d, &st0);
	assert_int_equal(st0.cache_entries, 0);
	assert_int_equal(st0.cache_hits, 0);
	assert_int_equal(st0.queries_sent, 6);
	dns_free(d);
}

/* ---- callback discipline ---- */

static void
test_callback_never_synchronous(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap c, c2;
	struct dns *d;
	struct dns_query *q;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "multi.example.test", &c);

	/* fully cached: finished inside dns_resolve_mx, delivered only later */
	memset(&c, 0, sizeof c);
	q = dns_resolve_mx(d, "multi.example.test", on_result, &c);
	assert_non_null(q);
	assert_int_equal(c.fired, 0);
	assert_int_equal(dns_next_timeout(d), 0);
	dns_timeouts(d);
	assert_int_equal(c.fired, 1);
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(dns_next_timeout(d), -1);

	/* bad syntax: nothing started, no callback ever */
	errno = 0;
	assert_null(dns_resolve_mx(d, "bad..domain", on_result, &c));
	assert_int_equal(errno, EINVAL);
	assert_null(dns_resolve_mx(d, "", on_result, &c));
	assert_null(dns_resolve_mx(d, "sp ace.test", on_result, &c));

	/* a query started from a callback is delivered by a later drain */
	memset(&c, 0, sizeof c);
	memset(&c2, 0, sizeof c2);
	c.restart = d;
	c.restart_domain = "multi.example.test";
	c.restart_cap = &c2;
	assert_non_null(dns_resolve_mx(d, "multi.example.test", on_result, &c));
	dns_timeouts(d);
	assert_int_equal(c.fired, 1);
	assert_int_equal(c2.fired, 0);
	assert_int_equal(dns_next_timeout(d), 0);
	dns_timeouts(d);
	assert_int_equal(c2.fired, 1);
	assert_int_equal(c2.status, DNS_OK);
	dns_free(d);
}

static void
test_cancel(void **state)
{
	struct dns_opts o;
	char srv[64];
	struct tu_loop L;
	struct cap a, b, x;
	struct dns *d;
	struct dns_query *qa, *qb;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	d = tu_dns_new(&L, &o);
	resolve(d, &L, "multi.example.test", &x);
	resolve(d, &L, "tie.example.test", &x);

	/* queued (cached) and cancelled before delivery */
	memset(&a, 0, sizeof a);
	qa = dns_resolve_mx(d, "multi.example.test", on_result, &a);
	dns_cancel(qa);
	assert_int_equal(dns_next_timeout(d), -1);
	dns_timeouts(d);
	assert_int_equal(a.fired, 0);

	/* in flight and cancelled: the answer still arrives (and is cached), no callback */
	memset(&a, 0, sizeof a);
	qa = dns_resolve_mx(d, "implicit.example.test", on_result, &a);
	assert_true(dns_next_timeout(d) > 0);
	dns_cancel(qa);
	memset(&b, 0, sizeof b);
	assert_non_null(dns_resolve_mx(d, "partial.example.test", on_result, &b));
	tu_run(d, &L, &b.fired, 1, 5000);
	assert_int_equal(b.fired, 1);
	tu_run(d, &L, &a.fired, 1, 300);
	assert_int_equal(a.fired, 0);

	/* each of two queued results cancels the other: only the first fires */
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	qa = dns_resolve_mx(d, "multi.example.test", on_result, &a);
	qb = dns_resolve_mx(d, "tie.example.test", on_result, &b);
	a.cancel = qb;
	b.cancel = qa;
	dns_timeouts(d);
	assert_int_equal(a.fired + b.fired, 1);
	assert_int_equal(a.fired, 1);
	assert_int_equal(dns_next_timeout(d), -1);

	/* cancelling a query from inside its own callback is a no-op */
	memset(&a, 0, sizeof a);
	qa = dns_resolve_mx(d, "multi.example.test", on_result, &a);
	a.self = qa;
	dns_timeouts(d);
	assert_int_equal(a.fired, 1);

	/* a callback cancels a query still in flight */
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	qb = dns_resolve_mx(d, "v6only.example.test", on_result, &b);
	qa = dns_resolve_mx(d, "multi.example.test", on_result, &a);
	a.cancel = qb;
	dns_timeouts(d);
	assert_int_equal(a.fired, 1);
	tu_run(d, &L, &b.fired, 1, 1000);
	assert_int_equal(b.fired, 0);

	/* dns_free with queries queued and in flight: no callbacks, nothing leaks */
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	assert_non_null(dns_resolve_mx(d, "multi.example.test", on_result, &a));
	assert_non_null(dns_resolve_mx(d, "ll.example.test", on_result, &b));
	dns_free(d);
	assert_int_equal(a.fired + b.fired, 0);
}

static void
test_bad_options(void **state)
{
	struct dns_opts o;
	char err[256];
	struct tu_loop L;

	(void)state;
	memset(&o, 0, sizeof o);
	o.servers = "not an address";
	assert_null(dns_new(&o, tu_loop_sock, NULL, &L, err, sizeof err));
	assert_non_null(strstr(err, "servers"));
	o.servers = "127.0.0.1:53";
	o.family = (enum dns_family)7;
	assert_null(dns_new(&o, tu_loop_sock, NULL, &L, err, sizeof err));
	assert_non_null(strstr(err, "family"));
	o.family = DNS_FAMILY_ANY;
	o.max_mx = -1;
	assert_null(dns_new(&o, tu_loop_sock, NULL, &L, err, sizeof err));
	assert_null(dns_new(NULL, NULL, NULL, NULL, err, sizeof err));
}

/* ---- the libevent glue ---- */

static void
on_safety(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void
ev_run(struct event_base *base, const int *count, int want, int max_ms)
{
	int64_t end = tu_now_ms() + max_ms;
	struct event *tick = event_new(base, -1, EV_PERSIST, on_safety, NULL);
	struct timeval tv = {0, 100 * 1000};

	event_add(tick, &tv);
	while (*count < want && tu_now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
}

static void
test_resolver_libevent(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_opts o;
	char srv[64], err[256];
	struct resolver *r;
	struct cap a, b;

	(void)state;
	base_opts(&o, srv, sizeof srv);
	r = resolver_new(base, &o, err, sizeof err);
	assert_non_null(r);

	memset(&a, 0, sizeof a);
	assert_non_null(dns_resolve_mx(resolver_dns(r), "multi.example.test", on_result, &a));
	memset(&b, 0, sizeof b);
	assert_non_null(dns_resolve_mx(resolver_dns(r), "implicit.example.test", on_result, &b));
	ev_run(base, &a.fired, 1, 5000);
	ev_run(base, &b.fired, 1, 5000);
	assert_int_equal(a.fired, 1);
	assert_int_equal(a.status, DNS_OK);
	assert_int_equal(a.n, 4);
	assert_int_equal(b.status, DNS_OK);
	assert_true(b.implicit);

	/* from the cache: delivered by the glue's zero timer, not inline */
	memset(&a, 0, sizeof a);
	assert_non_null(dns_resolve_mx(resolver_dns(r), "multi.example.test", on_result, &a));
	assert_int_equal(a.fired, 0);
	ev_run(base, &a.fired, 1, 1000);
	assert_int_equal(a.fired, 1);
	assert_int_equal(a.status, DNS_OK);

	/* over TCP through the glue (writable interest, sockets coming and going) */
	memset(&a, 0, sizeof a);
	assert_non_null(dns_resolve_mx(resolver_dns(r), "huge.example.test", on_result, &a));
	ev_run(base, &a.fired, 1, 5000);
	assert_int_equal(a.status, DNS_OK);
	assert_int_equal(a.n, 4);

	/* SERVFAIL through the glue */
	memset(&a, 0, sizeof a);
	assert_non_null(dns_resolve_mx(resolver_dns(r), "broken.test", on_result, &a));
	ev_run(base, &a.fired, 1, 5000);
	assert_int_equal(a.status, DNS_TEMPFAIL);

	/* free with a query in flight */
	memset(&a, 0, sizeof a);
	assert_non_null(dns_resolve_mx(resolver_dns(r), "tie.example.test", on_result, &a));
	resolver_free(r);
	assert_int_equal(a.fired, 0);

	/* timeouts need the glue's timer */
	snprintf(srv, sizeof srv, "127.0.0.1:%d", blackhole_port);
	o.timeout_ms = 100;
	o.tries = 1;
	r = resolver_new(base, &o, err, sizeof err);
	assert_non_null(r);
	memset(&a, 0, sizeof a);
	assert_non_null(dns_resolve_mx(resolver_dns(r), "multi.example.test", on_result, &a));
	ev_run(base, &a.fired, 1, 5000);
	assert_int_equal(a.fired, 1);
	assert_int_equal(a.status, DNS_TEMPFAIL);
	assert_non_null(strstr(a.reason, "timeout"));
	resolver_free(r);

	o.servers = "bogus";
	assert_null(resolver_new(base, &o, err, sizeof err));
	event_base_free(base);
}

/* ---- parser, policy and syntax tables (no network) ---- */

static void
header(struct pkt *p, unsigned rcode, unsigned an, unsigned ns, const char *qname, int qtype)
{
	pkt_header(p, 0x1234, 0x8180 | rcode, an, ns, qname, qtype);
}

static void
rr_a(struct pkt *p, const char *owner, uint32_t ttl, const char *ip)
{
	unsigned char a[4];

	size_t at;

	assert_int_equal(inet_pton(AF_INET, ip, a), 1);
	at = rr_start(p, owner, DNS_T_A, ttl);
	for (int i = 0; i < 4; i++)
		put8(p, a[i]);
	rdlen(p, at);
}

/* a record whose rdata is one name (CNAME), or preference + name (MX) */
static void
rr_name(struct pkt *p, const char *owner, int type, uint32_t ttl, int pref, const char *target)
{
	size_t at = rr_start(p, owner, type, ttl);

	if (type == DNS_T_MX)
		put16(p, (unsigned)pref);
	putname(p, target);
	rdlen(p, at);
}

static void
rr_soa(struct pkt *p, const char *owner, uint32_t ttl, uint32_t minimum)
{
	size_t at = rr_start(p, owner, DNS_T_SOA, ttl);

	putname(p, "ns.t");
	putname(p, "h.t");
	for (int i = 0; i < 4; i++)
		put32(p, 1000);
	put32(p, minimum);
	rdlen(p, at);
}

enum pcase {
	P_TWO_A,
	P_CHAIN,
	P_DANGLING,
	P_LOOP,
	P_NX_SOA,
	P_NODATA,
	P_SERVFAIL,
	P_TRUNCATED,
	P_BAD_RDLEN,
	P_RDLEN_PAST_END,
	P_PTR_LOOP,
	P_NULL_MX,
	P_QUERY_NOT_RESPONSE,
	P_OTHER_OWNER,
	P_TOO_MANY,
	P_HIGH_TTL,
};

static void
build(struct pkt *p, enum pcase c)
{
	switch (c) {
	case P_TWO_A:
		header(p, 0, 2, 0, "a.t", DNS_T_A);
		rr_a(p, "a.t", 100, "192.0.2.1");
		rr_a(p, "A.T", 50, "192.0.2.2");
		break;
	case P_CHAIN:
		header(p, 0, 3, 0, "a.t", DNS_T_A);
		rr_name(p, "b.t", DNS_T_CNAME, 200, 0, "c.t"); /* out of order on purpose */
		rr_name(p, "a.t", DNS_T_CNAME, 30, 0, "b.t");
		rr_a(p, "c.t", 100, "192.0.2.3");
		break;
	case P_DANGLING:
		header(p, 0, 1, 0, "a.t", DNS_T_A);
		rr_name(p, "a.t", DNS_T_CNAME, 30, 0, "far.away");
		break;
	case P_LOOP:
		header(p, 0, 2, 0, "a.t", DNS_T_A);
		rr_name(p, "a.t", DNS_T_CNAME, 30, 0, "b.t");
		rr_name(p, "b.t", DNS_T_CNAME, 30, 0, "a.t");
		break;
	case P_NX_SOA:
		header(p, 3, 0, 1, "a.t", DNS_T_MX);
		rr_soa(p, "t", 100, 20);
		break;
	case P_NODATA:
		header(p, 0, 0, 0, "a.t", DNS_T_MX);
		break;
	case P_SERVFAIL:
		header(p, 2, 0, 0, "a.t", DNS_T_MX);
		break;
	case P_TRUNCATED:
		header(p, 0, 1, 0, "a.t", DNS_T_A);
		rr_a(p, "a.t", 100, "192.0.2.1");
		p->n -= 3;
		break;
	case P_BAD_RDLEN:
		header(p, 0, 1, 0, "a.t", DNS_T_A);
		rr_a(p, "a.t", 100, "192.0.2.1");
		p->b[p->n - 5] = 5;
		put8(p, 0);
		break;
	case P_RDLEN_PAST_END:
		header(p, 0, 1, 0, "a.t", DNS_T_A);
		rr_a(p, "a.t", 100, "192.0.2.1");
		p->b[p->n - 6] = 0x40;
		break;
	case P_PTR_LOOP:
		header(p, 0, 1, 0, "a.t", DNS_T_A);
		put16(p, 0xc000 | (unsigned)p->n); /* a name pointing at itself */
		put16(p, DNS_T_A);
		break;
	case P_NULL_MX:
		header(p, 0, 1, 0, "a.t", DNS_T_MX);
		rr_name(p, "a.t", DNS_T_MX, 300, 0, "");
		break;
	case P_QUERY_NOT_RESPONSE:
		header(p, 0, 1, 0, "a.t", DNS_T_A);
		rr_a(p, "a.t", 100, "192.0.2.1");
		p->b[2] = 0x01;
		break;
	case P_OTHER_OWNER:
		header(p, 0, 1, 0, "a.t", DNS_T_A);
		rr_a(p, "z.t", 100, "192.0.2.1");
		break;
	case P_TOO_MANY:
		header(p, 0, 100, 0, "a.t", DNS_T_A);
		for (int i = 0; i < 100; i++) {
			char ip[32];
			snprintf(ip, sizeof ip, "192.0.2.%d", i);
			rr_a(p, "a.t", 100, ip);
		}
		break;
	case P_HIGH_TTL:
		header(p, 0, 1, 0, "a.t", DNS_T_A);
		rr_a(p, "a.t", 0x80000001u, "192.0.2.1");
		break;
	}
}

static void
test_parse_table(void **state)
{
	static const struct {
		const char *label;
		enum pcase pc;
		const char *qname;
		int qtype;
		int kind; /* -1: parse error */
		size_t n;
		uint32_t ttl;
		const char *text; /* why (error) or cname (dangling) */
	} t[] = {
	    {"two A, min TTL, owner case ignored", P_TWO_A, "a.t", DNS_T_A, DNS_A_DATA, 2, 50,
	     NULL},
	    {"CNAME chain in the answer", P_CHAIN, "a.t", DNS_T_A, DNS_A_DATA, 1, 30, NULL},
	    {"dangling CNAME", P_DANGLING, "a.t", DNS_T_A, DNS_A_CNAME, 0, 30, "far.away"},
	    {"CNAME loop", P_LOOP, "a.t", DNS_T_A, -1, 0, 0, "CNAME chain too long"},
	    {"NXDOMAIN takes the SOA minimum", P_NX_SOA, "a.t", DNS_T_MX, DNS_A_NXDOMAIN, 0, 20,
	     NULL},
	    {"NODATA without SOA", P_NODATA, "a.t", DNS_T_MX, DNS_A_NODATA, 0, DNS_NEG_TTL_NOSOA,
	     NULL},
	    {"SERVFAIL", P_SERVFAIL, "a.t", DNS_T_MX, -1, 0, 0, "SERVFAIL"},
	    {"truncated record", P_TRUNCATED, "a.t", DNS_T_A, -1, 0, 0, "malformed answer"},
	    {"A with 5 bytes", P_BAD_RDLEN, "a.t", DNS_T_A, -1, 0, 0, "malformed answer"},
	    {"rdlength past the end", P_RDLEN_PAST_END, "a.t", DNS_T_A, -1, 0, 0,
	     "malformed answer"},
	    {"compression pointer loop", P_PTR_LOOP, "a.t", DNS_T_A, -1, 0, 0, "malformed answer"},
	    {"null MX", P_NULL_MX, "a.t", DNS_T_MX, DNS_A_DATA, 1, 300, NULL},
	    {"not a response", P_QUERY_NOT_RESPONSE, "a.t", DNS_T_A, -1, 0, 0, "malformed answer"},
	    {"records of another owner", P_OTHER_OWNER, "a.t", DNS_T_A, DNS_A_NODATA, 0,
	     DNS_NEG_TTL_NOSOA, NULL},
	    {"at most DNS_MAX_RR records", P_TOO_MANY, "a.t", DNS_T_A, DNS_A_DATA, DNS_MAX_RR, 100,
	     NULL},
	    {"TTL with the top bit set reads 0", P_HIGH_TTL, "a.t", DNS_T_A, DNS_A_DATA, 1, 0,
	     NULL},
	};
	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct pkt p;
		struct dns_answer *a;

		build(&p, t[i].pc);
		a = tu_parse(&p, t[i].label, t[i].qname, t[i].qtype,
		             t[i].kind < 0 ? t[i].text : NULL);
		if (a == NULL)
			continue;
		if ((int)a->kind != t[i].kind || a->n != t[i].n || a->ttl != t[i].ttl)
			fail_msg("%s: kind %d n %zu ttl %u", t[i].label, a->kind, a->n, a->ttl);
		if (t[i].text)
			assert_string_equal(a->cname, t[i].text);
		if (t[i].pc == P_NULL_MX)
			assert_string_equal(a->rr[0].name, "");
		if (t[i].pc == P_CHAIN)
			assert_memory_equal(a->rr[0].addr, "\xc0\x00\x02\x03", 4);
		dns__answer_unref(a);
	}

	/* every prefix of a good packet parses or fails cleanly (ASan watches) */
	for (int c = P_TWO_A; c <= P_HIGH_TTL; c++) {
		struct pkt p;
		build(&p, (enum pcase)c);
		for (size_t len = 0; len <= p.n; len++) {
			char why[64];
			unsigned char *copy = malloc(len ? len : 1);
			memcpy(copy, p.b, len);
			dns__answer_unref(dns__parse(copy, len, "a.t", DNS_T_A, why, sizeof why));
			free(copy);
		}
	}
}

static void
test_address_policy(void **state)
{
	static const struct {
		const char *ip;
		const char *refused;    /* allow_private off */
		const char *refused_ok; /* allow_private on */
	} t[] = {
	    {"192.0.2.1", NULL, NULL},
	    {"8.8.8.8", NULL, NULL},
	    {"127.0.0.1", "loopback address", NULL},
	    {"127.255.0.9", "loopback address", NULL},
	    {"10.0.0.1", "private address", NULL},
	    {"172.16.0.1", "private address", NULL},
	    {"172.31.255.255", "private address", NULL},
	    {"172.32.0.1", NULL, NULL},
	    {"172.15.0.1", NULL, NULL},
	    {"192.168.0.1", "private address", NULL},
	    {"100.64.0.1", "private address", NULL},
	    {"169.254.3.4", "link-local address", NULL},
	    {"0.0.0.0", "unspecified address", "unspecified address"},
	    {"224.0.0.1", "multicast address", "multicast address"},
	    {"255.255.255.255", "reserved address", "reserved address"},
	    {"2001:db8::1", NULL, NULL},
	    {"::1", "loopback address", NULL},
	    {"::", "unspecified address", "unspecified address"},
	    {"fc00::1", "private address", NULL},
	    {"fdff::1", "private address", NULL},
	    {"fe80::1", "link-local address", NULL},
	    {"febf::1", "link-local address", NULL},
	    {"fec0::1", "private address", NULL},
	    {"ff02::1", "multicast address", "multicast address"},
	    {"::ffff:10.1.1.1", "private address", NULL},
	    {"::ffff:192.0.2.7", NULL, NULL},
	    {"::ffff:127.0.0.1", "loopback address", NULL},
	    {"::10.0.0.1", "reserved address", "reserved address"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		if (strchr(t[i].ip, ':')) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			assert_int_equal(inet_pton(AF_INET6, t[i].ip, &s6->sin6_addr), 1);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			assert_int_equal(inet_pton(AF_INET, t[i].ip, &s4->sin_addr), 1);
		}
		for (int allow = 0; allow < 2; allow++) {
			const char *want = allow ? t[i].refused_ok : t[i].refused;
			const char *got = dns_addr_refusal((struct sockaddr *)&ss, allow);
			if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0))
				fail_msg("%s allow=%d: want %s got %s", t[i].ip, allow,
				         want ? want : "ok", got ? got : "ok");
		}
	}
}

static void
test_name_syntax(void **state)
{
	static const struct {
		const char *in, *out; /* out NULL: rejected */
	} t[] = {
	    {"Example.COM", "example.com"},
	    {"example.com.", "example.com"},
	    {"_dmarc.x-y.test", "_dmarc.x-y.test"},
	    {"localhost", "localhost"},
	    {"", NULL},
	    {".", NULL},
	    {"a..b", NULL},
	    {".a", NULL},
	    {"a b.c", NULL},
	    {"a\\.b", NULL},
	    {"caf\xc3\xa9.test", NULL},
	    {"0123456789012345678901234567890123456789012345678901234567890123.x", NULL},
	    {"012345678901234567890123456789012345678901234567890123456789012.x",
	     "012345678901234567890123456789012345678901234567890123456789012.x"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char out[256];
		int rc = dns__normalize(t[i].in, out);
		if (t[i].out == NULL) {
			if (rc != -1)
				fail_msg("\"%s\" accepted as \"%s\"", t[i].in, out);
		} else {
			assert_int_equal(rc, 0);
			assert_string_equal(out, t[i].out);
		}
	}
	/* 254 characters: too long */
	char big[300];
	memset(big, 'a', sizeof big);
	for (int i = 50; i < 254; i += 50)
		big[i] = '.';
	big[254] = '\0';
	char out[256];
	assert_int_equal(dns__normalize(big, out), -1);
	big[253] = '\0';
	assert_int_equal(dns__normalize(big, out), 0);
}

int
main(void)
{
	const struct CMUnitTest offline[] = {
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_address_policy),
	    cmocka_unit_test(test_name_syntax),
	    cmocka_unit_test(test_bad_options),
	};
	const struct CMUnitTest with_nsd[] = {
	    cmocka_unit_test(test_mx_preference_order),
	    cmocka_unit_test(test_mx_ties_shuffled),
	    cmocka_unit_test(test_implicit_mx),
	    cmocka_unit_test(test_family_preference),
	    cmocka_unit_test(test_null_mx_and_nxdomain),
	    cmocka_unit_test(test_host_failures_skipped),
	    cmocka_unit_test(test_cname_mx_host),
	    cmocka_unit_test(test_tempfail_rcodes),
	    cmocka_unit_test(test_timeout_and_refused),
	    cmocka_unit_test(test_private_addresses),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_callback_never_synchronous),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_cache_hits_without_traffic),
	    cmocka_unit_test(test_cache_ttl_expiry),
	    cmocka_unit_test(test_resolver_libevent),
	};
	int failed = cmocka_run_group_tests_name("dns offline", offline, NULL, NULL);

	failed +=
	    cmocka_run_group_tests_name("dns with nsd", with_nsd, group_setup, group_teardown);
	return failed;
}
