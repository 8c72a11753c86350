/*
 * dns/ against a real validating resolver: unbound, trusting the key of a
 * zone signed at setup (ldns-keygen, ldns-signzone) and served by nsd,
 * beside an unsigned zone. The answers are exactly what the daemon sees
 * with `dns_servers = 127.0.0.1` and unbound on the relay:
 * - signed zone: secure (AD), also through a CNAME inside it;
 * - unsigned zone, or a CNAME from the signed zone into it: not secure;
 * - a record changed after signing: bogus, unbound answers SERVFAIL,
 *   which must be TEMPFAIL (RFC 7672 2.2), never "no TLSA";
 * - the same signed zone asked of nsd directly: no AD (authoritative
 *   servers do not validate), so DANE would stay off.
 * nsd and unbound listen on free ports of 127.0.0.1, in one process group
 * under a watchdog child that ends the group when this process closes a
 * pipe or dies. No traffic leaves 127.0.0.1.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dns/dns.h"
#include "dns/dns_int.h"
#include "test/unit/dnsloop.h"
#include "test/unit/peergroup.h"
#include "test/unit/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define HASH_A "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
#define HASH_B "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0"
#define HASH_T "deadbeef05060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"

static const char zone_sig[] = "$ORIGIN sig.test.\n"
                               "$TTL 300\n"
                               "@ SOA ns hostmaster 1 3600 600 86400 60\n"
                               "@ NS ns\n"
                               "@ MX 10 mx\n"
                               "ns A 127.0.0.1\n"
                               "mx A 192.0.2.25\n"
                               "mx AAAA 2001:db8::25\n"
                               "_25._tcp.mx TLSA 3 1 1 " HASH_A "\n"
                               "_25._tcp.mx TLSA 2 0 1 " HASH_B "\n"
                               "_25._tcp.alias CNAME _25._tcp.mx\n"
                               "_25._tcp.out CNAME _25._tcp.mx.plain.test.\n"
                               "_25._tcp.nodata TXT \"no TLSA here\"\n"
                               "_25._tcp.tampered TLSA 3 1 1 " HASH_T "\n"
                               "tampered TXT \"original\"\n"
                               "_mta-sts TXT \"v=STSv1; \" \"id=20261206T1\"\n"
                               "_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@sig.test\"\n";

static const char zone_plain[] = "$ORIGIN plain.test.\n"
                                 "$TTL 300\n"
                                 "@ SOA ns hostmaster 1 3600 600 86400 60\n"
                                 "@ NS ns\n"
                                 "@ MX 10 mx\n"
                                 "@ MX 20 mx.sig.test.\n"
                                 "ns A 127.0.0.1\n"
                                 "mx A 192.0.2.26\n"
                                 "_25._tcp.mx TLSA 3 1 1 " HASH_A "\n"
                                 "_mta-sts TXT \"v=STSv1; id=1\"\n";

static char dir[64];
static int nsd_port, unbound_port;
static struct tu_group peers; /* nsd and unbound under their watchdog */

/*
 * Keys, the signed zone, and the tampering: a TXT and a TLSA changed after
 * signing, so their RRSIGs no longer match (a validator calls them bogus).
 */
static int
make_zones(void)
{
	char cmd[1024];

	tu_write_file(dir, "sig.zone", zone_sig);
	tu_write_file(dir, "plain.zone", zone_plain);
	snprintf(
	    cmd, sizeof cmd,
	    "cd '%s' && ldns-keygen -a ECDSAP256SHA256 -k sig.test > ksk && "
	    "ldns-keygen -a ECDSAP256SHA256 sig.test > zsk && "
	    "ldns-signzone -o sig.test sig.zone $(cat ksk) $(cat zsk) && "
	    "cp $(cat ksk).key anchor.key && "
	    "sed -i -e 's/\"original\"/\"modified\"/' -e 's/deadbeef/deadbeee/' sig.zone.signed "
	    "&& grep -q deadbeee sig.zone.signed && grep -q '\"modified\"' sig.zone.signed",
	    dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
write_confs(void)
{
	char buf[2048];

	snprintf(buf, sizeof buf,
	         "server:\n  ip-address: 127.0.0.1@%d\n  port: %d\n  username: \"\"\n"
	         "  chroot: \"\"\n  database: \"\"\n  zonesdir: \"%s\"\n"
	         "  zonelistfile: \"%s/zone.list\"\n  xfrdfile: \"%s/xfrd.state\"\n"
	         "  pidfile: \"%s/nsd.pid\"\n  logfile: \"%s/nsd.log\"\n  server-count: 1\n"
	         "remote-control:\n  control-enable: no\n"
	         "zone:\n  name: sig.test\n  zonefile: sig.zone.signed\n"
	         "zone:\n  name: plain.test\n  zonefile: plain.zone\n",
	         nsd_port, nsd_port, dir, dir, dir, dir, dir);
	tu_write_file(dir, "nsd.conf", buf);
	/* local-zone nodefault: unbound otherwise answers NXDOMAIN for all of .test */
	snprintf(buf, sizeof buf,
	         "server:\n  interface: 127.0.0.1@%d\n  port: %d\n  username: \"\"\n"
	         "  chroot: \"\"\n  directory: \"%s\"\n  pidfile: \"%s/unbound.pid\"\n"
	         "  logfile: \"%s/unbound.log\"\n  use-syslog: no\n  num-threads: 1\n"
	         "  do-ip6: no\n  do-not-query-localhost: no\n  outgoing-range: 64\n"
	         "  module-config: \"validator iterator\"\n"
	         "  trust-anchor-file: \"%s/anchor.key\"\n  local-zone: \"test.\" nodefault\n"
	         "  access-control: 127.0.0.0/8 allow\n"
	         "remote-control:\n  control-enable: no\n"
	         "stub-zone:\n  name: \"sig.test\"\n  stub-addr: 127.0.0.1@%d\n"
	         "stub-zone:\n  name: \"plain.test\"\n  stub-addr: 127.0.0.1@%d\n",
	         unbound_port, unbound_port, dir, dir, dir, dir, nsd_port, nsd_port);
	tu_write_file(dir, "unbound.conf", buf);
}

static void
peers_stop(void)
{
	tu_group_stop(&peers);
}

/* Does port answer sig.test SOA with NOERROR (unbound: also validated)? */
static bool
answers(int port)
{
	int b3 = tu_soa_probe(port, "sig.test", true, 300);

	return b3 >= 0 && (b3 & 0xf) == 0 && (port == nsd_port || (b3 & DNS_HDR_AD));
}

static int
peers_start(void)
{
	char cmd[512];

	nsd_port = tu_free_port();
	unbound_port = tu_free_port();
	write_confs();
	snprintf(cmd, sizeof cmd,
	         "cd '%s' && nsd -d -c nsd.conf > nsd.out 2>&1 & "
	         "cd '%s' && unbound -d -c unbound.conf > unbound.out 2>&1 & wait",
	         dir, dir);
	if (tu_group_start(&peers, cmd, dir) < 0)
		return -1;
	for (int i = 0; i < 100; i++) {
		if (answers(nsd_port) && answers(unbound_port))
			return 0;
		usleep(100 * 1000);
	}
	peers_stop();
	return -1;
}

static void
at_exit(void)
{
	peers_stop();
	if (dir[0])
		tu_rmtree(dir);
	dir[0] = '\0';
}

static int
group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/test_dns_dnssec.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	atexit(at_exit);
	if (make_zones() < 0) {
		fprintf(stderr, "ldns-keygen/ldns-signzone failed in %s\n", dir);
		return -1;
	}
	for (int i = 0; i < 3; i++)
		if (peers_start() == 0)
			return 0;
	fprintf(stderr, "nsd/unbound did not answer (see %s/*.log)\n", dir);
	return -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	at_exit();
	return 0;
}

/* A handle on unbound (validating) or nsd (authoritative only). */
static struct dns *
mk(struct tu_loop *L, int port)
{
	struct dns_opts o = {.timeout_ms = 1000, .tries = 2};
	char srv[64];

	snprintf(srv, sizeof srv, "127.0.0.1:%d", port);
	o.servers = srv;
	return tu_dns_new(L, &o);
}

static const unsigned char *
hex(const char *s, unsigned char *out)
{
	for (size_t i = 0; i < 32; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
	return out;
}

static void
test_tlsa(void **state)
{
	static const struct {
		const char *host;
		enum dns_status status;
		bool secure;
		size_t n;
	} t[] = {
	    {"mx.sig.test", DNS_OK, true, 2},
	    {"MX.Sig.Test.", DNS_OK, true, 2},
	    {"alias.sig.test", DNS_OK, true, 2},         /* CNAME inside the signed zone */
	    {"out.sig.test", DNS_OK, false, 1},          /* CNAME into the unsigned zone */
	    {"mx.plain.test", DNS_OK, false, 1},         /* unsigned zone: AD never set */
	    {"nodata.sig.test", DNS_NXDOMAIN, true, 0},  /* validated NODATA */
	    {"nothere.sig.test", DNS_NXDOMAIN, true, 0}, /* validated NXDOMAIN */
	    {"nothere.plain.test", DNS_NXDOMAIN, false, 0},
	    {"tampered.sig.test", DNS_TEMPFAIL, false, 0}, /* bogus: SERVFAIL */
	};
	struct tu_loop L;
	struct tu_cap c;
	struct dns *d = mk(&L, unbound_port);
	unsigned char a[32], b[32];

	(void)state;
	assert_true(dns_resolver_trusted(d));
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		TU_RESOLVE(d, &L, &c, dns_resolve_tlsa(d, t[i].host, 25, tu_on_tlsa, &c));
		if (c.status != t[i].status || c.secure != t[i].secure || c.n != t[i].n)
			fail_msg("%s: status %d secure %d n %zu (%s)", t[i].host, c.status,
			         c.secure, c.n, c.reason);
	}
	assert_string_equal(c.reason, "_25._tcp.tampered.sig.test: TLSA lookup failed: SERVFAIL");

	TU_RESOLVE(d, &L, &c, dns_resolve_tlsa(d, "mx.sig.test", 25, tu_on_tlsa, &c));
	size_t i3 = c.tlsa[0].usage == 3 ? 0 : 1;
	assert_int_equal(c.tlsa[i3].usage, 3);
	assert_int_equal(c.tlsa[i3].selector, 1);
	assert_int_equal(c.tlsa[i3].mtype, 1);
	assert_int_equal(c.tlsa[i3].len, 32);
	assert_memory_equal(c.tlsa[i3].data, hex(HASH_A, a), 32);
	assert_int_equal(c.tlsa[1 - i3].usage, 2);
	assert_int_equal(c.tlsa[1 - i3].selector, 0);
	assert_memory_equal(c.tlsa[1 - i3].data, hex(HASH_B, b), 32);
	dns_free(d);
}

static void
test_txt(void **state)
{
	static const struct {
		const char *name;
		enum dns_status status;
		bool secure;
		const char *text;
	} t[] = {
	    {"_mta-sts.sig.test", DNS_OK, true, "v=STSv1; id=20261206T1"},
	    {"_smtp._tls.sig.test", DNS_OK, true, "v=TLSRPTv1; rua=mailto:tlsrpt@sig.test"},
	    {"_mta-sts.plain.test", DNS_OK, false, "v=STSv1; id=1"},
	    {"_mta-sts.nothere.sig.test", DNS_NXDOMAIN, true, NULL},
	    {"tampered.sig.test", DNS_TEMPFAIL, false, NULL},
	};
	struct tu_loop L;
	struct tu_cap c;
	struct dns *d = mk(&L, unbound_port);

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		TU_RESOLVE(d, &L, &c, dns_resolve_txt(d, t[i].name, tu_on_txt, &c));
		if (c.status != t[i].status || c.secure != t[i].secure)
			fail_msg("%s: status %d secure %d (%s)", t[i].name, c.status, c.secure,
			         c.reason);
		if (t[i].text) {
			assert_int_equal(c.n, 1);
			assert_string_equal(c.txt[0], t[i].text);
		}
	}
	dns_free(d);
}

/*
 * MX and host addresses: plain.test's MX RRset is insecure but one of its
 * hosts, mx.sig.test, has secure addresses (RFC 7672 2.2.1: DANE may
 * still apply to that host).
 */
static void
test_mx_and_addrs(void **state)
{
	struct tu_loop L;
	struct tu_cap c;
	struct dns *d = mk(&L, unbound_port);

	(void)state;
	TU_RESOLVE(d, &L, &c, dns_resolve_mx(d, "sig.test", tu_on_mx, &c));
	assert_int_equal(c.status, DNS_OK);
	assert_true(c.mx_secure);
	assert_int_equal(c.n, 2); /* AAAA and A of mx.sig.test */
	assert_true(c.t[0].secure && c.t[1].secure);

	TU_RESOLVE(d, &L, &c, dns_resolve_mx(d, "plain.test", tu_on_mx, &c));
	assert_int_equal(c.status, DNS_OK);
	assert_false(c.mx_secure);
	assert_int_equal(c.n, 3);
	for (size_t i = 0; i < c.n; i++)
		if (c.t[i].secure != (strcmp(c.t[i].host, "mx.sig.test") == 0))
			fail_msg("%s: secure %d", c.t[i].host, c.t[i].secure);

	TU_RESOLVE(d, &L, &c, dns_resolve_addrs(d, "mx.sig.test", tu_on_mx, &c));
	assert_int_equal(c.status, DNS_OK);
	assert_true(c.implicit);
	assert_int_equal(c.n, 2);
	assert_true(c.t[0].secure && c.t[1].secure);
	TU_RESOLVE(d, &L, &c, dns_resolve_addrs(d, "mx.plain.test", tu_on_mx, &c));
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 1);
	assert_false(c.t[0].secure);
	assert_string_equal(c.t[0].host, "mx.plain.test");
	TU_RESOLVE(d, &L, &c, dns_resolve_addrs(d, "mta-sts.sig.test", tu_on_mx, &c));
	assert_int_equal(c.status, DNS_NXDOMAIN);
	dns_free(d);
}

/* The signed zone straight from nsd: records, but never AD (nothing validated them). */
static void
test_authoritative_is_not_secure(void **state)
{
	struct tu_loop L;
	struct tu_cap c;
	struct dns *d = mk(&L, nsd_port);

	(void)state;
	TU_RESOLVE(d, &L, &c, dns_resolve_tlsa(d, "mx.sig.test", 25, tu_on_tlsa, &c));
	assert_int_equal(c.status, DNS_OK);
	assert_int_equal(c.n, 2);
	assert_false(c.secure);
	TU_RESOLVE(d, &L, &c, dns_resolve_addrs(d, "mx.sig.test", tu_on_mx, &c));
	assert_int_equal(c.status, DNS_OK);
	assert_false(c.t[0].secure);
	dns_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tlsa),
	    cmocka_unit_test(test_txt),
	    cmocka_unit_test(test_mx_and_addrs),
	    cmocka_unit_test(test_authoritative_is_not_secure),
	};

	return cmocka_run_group_tests_name("dns_dnssec_unbound", tests, group_setup,
	                                   group_teardown);
}
