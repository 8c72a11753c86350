/*
 * Unit tests for mta/shared/cidr: parsing single networks and lists, matching
 * IPv4, IPv6 and IPv4-mapped IPv6 peers at prefix boundaries, and the peer
 * address text. Each table reports every failing row, then fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mta/shared/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* "addr/prefix" of a parsed network, for comparing with a table. */
static void
cidr_text(const struct cidr *c, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof a) == NULL)
		snprintf(a, sizeof a, "?family=%d", c->family);
	snprintf(out, outlen, "%s/%d", a, c->prefix);
}

/* A peer address from text: with a ':' it is a sockaddr_in6, else a sockaddr_in. */
static const struct sockaddr *
peer(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(25);
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(25);
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

/* ---- cidr_parse ---- */

struct parse_case {
	const char *label;
	const char *text;
	int rc;
	int family;       /* on rc == 0 */
	const char *norm; /* on rc == 0: "addr/prefix"; on -1: a word of the error */
};

static const struct parse_case parse_cases[] = {
    {"v4 /8", "10.0.0.0/8", 0, AF_INET, "10.0.0.0/8"},
    {"v4 /24", "192.0.2.0/24", 0, AF_INET, "192.0.2.0/24"},
    {"v4 /25 upper half", "192.0.2.128/25", 0, AF_INET, "192.0.2.128/25"},
    {"v4 /23", "192.168.0.0/23", 0, AF_INET, "192.168.0.0/23"},
    {"v4 /31", "192.0.2.2/31", 0, AF_INET, "192.0.2.2/31"},
    {"v4 /32", "192.0.2.1/32", 0, AF_INET, "192.0.2.1/32"},
    {"v4 /0", "0.0.0.0/0", 0, AF_INET, "0.0.0.0/0"},
    {"v4 bare host", "192.0.2.1", 0, AF_INET, "192.0.2.1/32"},
    {"v4 loopback", "127.0.0.1/32", 0, AF_INET, "127.0.0.1/32"},
    {"v6 /32", "2001:db8::/32", 0, AF_INET6, "2001:db8::/32"},
    {"v6 /33", "2001:db8:8000::/33", 0, AF_INET6, "2001:db8:8000::/33"},
    {"v6 /10", "fe80::/10", 0, AF_INET6, "fe80::/10"},
    {"v6 /128", "2001:db8::1/128", 0, AF_INET6, "2001:db8::1/128"},
    {"v6 /0", "::/0", 0, AF_INET6, "::/0"},
    {"v6 bare host", "::1", 0, AF_INET6, "::1/128"},
    {"v6 bare full form", "2001:0db8:0000:0000:0000:0000:0000:0001", 0, AF_INET6,
     "2001:db8::1/128"},
    {"v6 upper case", "2001:DB8::/32", 0, AF_INET6, "2001:db8::/32"},
    {"v4-mapped v6 network", "::ffff:192.0.2.0/120", 0, AF_INET6, "::ffff:192.0.2.0/120"},

    {"v4 /33", "192.0.2.0/33", -1, 0, "192.0.2.0/33"},
    {"v6 /129", "2001:db8::/129", -1, 0, "2001:db8::/129"},
    {"v4 host bits", "10.0.0.1/8", -1, 0, "host bits"},
    {"v4 host bits in last bit", "192.0.2.1/31", -1, 0, "host bits"},
    {"v4 host bits /0", "1.0.0.0/0", -1, 0, "host bits"},
    {"v6 host bits", "2001:db8::1/64", -1, 0, "host bits"},
    {"v6 host bits /33", "2001:db8:c000::/33", -1, 0, "host bits"},
    {"garbage", "garbage", -1, 0, "garbage"},
    {"empty", "", -1, 0, "\"\""},
    {"slash without prefix", "1.2.3.4/", -1, 0, "1.2.3.4/"},
    {"prefix without address", "/24", -1, 0, "/24"},
    {"negative prefix", "10.0.0.0/-1", -1, 0, "10.0.0.0/-1"},
    {"plus prefix", "10.0.0.0/+8", -1, 0, "10.0.0.0/+8"},
    {"space before prefix", "10.0.0.0/ 8", -1, 0, "10.0.0.0/ 8"},
    {"junk after prefix", "10.0.0.0/8x", -1, 0, "10.0.0.0/8x"},
    {"trailing space", "10.0.0.0/8 ", -1, 0, "10.0.0.0/8 "},
    {"leading space", " 10.0.0.0/8", -1, 0, " 10.0.0.0/8"},
    {"two slashes", "10.0.0.0/8/8", -1, 0, "10.0.0.0/8/8"},
    {"three octets", "10.0.0/24", -1, 0, "10.0.0/24"},
    {"octet over 255", "256.0.0.0/8", -1, 0, "256.0.0.0/8"},
    {"hostname", "localhost", -1, 0, "localhost"},
    {"v6 too many groups", "1:2:3:4:5:6:7:8:9", -1, 0, "1:2:3:4:5:6:7:8:9"},
    {"v6 in brackets", "[::1]", -1, 0, "[::1]"},
    {"huge prefix", "10.0.0.0/99999999999999999999", -1, 0, "10.0.0.0/"},
    {"longer than any address",
     "2001:0db8:0000:0000:0000:0000:0000:0001:2001:0db8:0000:0000:0000:0000/64", -1, 0,
     "2001:0db8"},
};

static int
check_parse_row(const struct parse_case *pc)
{
	struct cidr c;
	char err[512] = "", got[128];
	int rc;

	memset(&c, 0xA5, sizeof c);
	rc = cidr_parse(&c, pc->text, err, sizeof err);
	if (rc != pc->rc) {
		print_error("parse \"%s\": got rc %d (%s), want %d\n", pc->label, rc, err, pc->rc);
		return 1;
	}
	if (rc != 0) {
		if (strstr(err, pc->norm) == NULL) {
			print_error("parse \"%s\": error \"%s\" does not mention \"%s\"\n",
			            pc->label, err, pc->norm);
			return 1;
		}
		return 0;
	}
	cidr_text(&c, got, sizeof got);
	if (c.family != pc->family || strcmp(got, pc->norm) != 0) {
		print_error("parse \"%s\": got %s (family %d), want %s\n", pc->label, got, c.family,
		            pc->norm);
		return 1;
	}
	/* v4 networks use addr[0..3]; the rest stays zero */
	if (c.family == AF_INET) {
		static const unsigned char zero[12];
		if (memcmp(c.addr + 4, zero, sizeof zero) != 0) {
			print_error("parse \"%s\": bytes after the v4 address not zero\n",
			            pc->label);
			return 1;
		}
	}
	return 0;
}

static void
test_parse(void **state)
{
	size_t i, n = sizeof parse_cases / sizeof parse_cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++)
		bad += check_parse_row(&parse_cases[i]);
	if (bad)
		fail_msg("%d of %zu cidr_parse rows failed", bad, n);
}

/* A tiny error buffer is truncated, never overrun. */
static void
test_parse_small_err(void **state)
{
	struct cidr c;
	char *err = malloc(8);

	(void)state;
	assert_non_null(err);
	assert_int_equal(cidr_parse(&c, "not an address at all", err, 8), -1);
	assert_int_equal(strlen(err), 7);
	free(err);
}

/* ---- cidr_list_parse ---- */

struct list_case {
	const char *label;
	const char *text;
	int rc;
	const char *want; /* rc 0: entries "a/p" joined by one space; rc -1: word of err */
};

static const struct list_case list_cases[] = {
    {"default relay_from", "127.0.0.1/32 ::1/128", 0, "127.0.0.1/32 ::1/128"},
    {"commas", "10.0.0.0/8,192.168.0.0/16", 0, "10.0.0.0/8 192.168.0.0/16"},
    {"comma and space", "10.0.0.0/8, 192.168.0.0/16", 0, "10.0.0.0/8 192.168.0.0/16"},
    {"mixed separators", "  10.0.0.0/8 ,\t192.0.2.1 ,, 2001:db8::/32\t", 0,
     "10.0.0.0/8 192.0.2.1/32 2001:db8::/32"},
    {"tabs only", "10.0.0.0/8\t\t::1", 0, "10.0.0.0/8 ::1/128"},
    {"leading and trailing commas", ",,10.0.0.0/8,,", 0, "10.0.0.0/8"},
    {"single entry", "::/0", 0, "::/0"},
    {"duplicates kept", "::1 ::1", 0, "::1/128 ::1/128"},
    {"empty", "", 0, ""},
    {"only separators", " , \t,", 0, ""},
    {"bad second entry", "10.0.0.0/8 bogus", -1, "bogus"},
    {"bad first entry", "bogus,10.0.0.0/8", -1, "bogus"},
    {"host bits in list", "10.0.0.0/8,10.0.0.1/8", -1, "host bits"},
    {"bad prefix in list", "192.0.2.0/24 2001:db8::/129", -1, "2001:db8::/129"},
    {"semicolon is not a separator", "10.0.0.0/8;192.0.2.0/24", -1, "10.0.0.0/8;"},
};

static void
list_text(const struct cidr_list *l, char *out, size_t outlen)
{
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < l->n && n < outlen; i++) {
		char one[80];
		cidr_text(&l->v[i], one, sizeof one);
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", i ? " " : "", one);
	}
}

static void
test_list_parse(void **state)
{
	size_t i, n = sizeof list_cases / sizeof list_cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		const struct list_case *lc = &list_cases[i];
		struct cidr_list l = {NULL, 0};
		char err[256] = "", got[512];
		int rc = cidr_list_parse(&l, lc->text, err, sizeof err);

		if (rc != lc->rc) {
			print_error("list \"%s\": got rc %d (%s), want %d\n", lc->label, rc, err,
			            lc->rc);
			bad++;
		} else if (rc == 0) {
			list_text(&l, got, sizeof got);
			if (strcmp(got, lc->want) != 0) {
				print_error("list \"%s\": got \"%s\", want \"%s\"\n", lc->label,
				            got, lc->want);
				bad++;
			}
		} else if (strstr(err, lc->want) == NULL) {
			print_error("list \"%s\": error \"%s\" does not mention \"%s\"\n",
			            lc->label, err, lc->want);
			bad++;
		}
		/* after an error the caller frees whatever was parsed (LSan checks) */
		cidr_list_free(&l);
		if (l.v != NULL || l.n != 0) {
			print_error("list \"%s\": cidr_list_free left v/n set\n", lc->label);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu cidr_list_parse rows failed", bad, n);
}

/* Parsing into a list that already holds entries appends to it. */
static void
test_list_parse_appends(void **state)
{
	struct cidr_list l = {NULL, 0};
	char err[256], got[256];

	(void)state;
	assert_int_equal(cidr_list_parse(&l, "10.0.0.0/8", err, sizeof err), 0);
	assert_int_equal(cidr_list_parse(&l, "::1", err, sizeof err), 0);
	list_text(&l, got, sizeof got);
	assert_string_equal(got, "10.0.0.0/8 ::1/128");
	cidr_list_free(&l);
	cidr_list_free(&l); /* twice is harmless */
}

/* ---- cidr_match ---- */

struct match_case {
	const char *net;
	const char *peer;
	bool match;
};

static const struct match_case match_cases[] = {
    {"192.0.2.0/24", "192.0.2.1", true},
    {"192.0.2.0/24", "192.0.2.0", true},
    {"192.0.2.0/24", "192.0.2.255", true},
    {"192.0.2.0/24", "192.0.3.0", false},
    {"192.0.2.0/24", "192.0.1.255", false},
    /* IPv4-mapped IPv6 peers match IPv4 networks */
    {"192.0.2.0/24", "::ffff:192.0.2.1", true},
    {"192.0.2.0/24", "::ffff:192.0.3.1", false},
    {"127.0.0.1/32", "::ffff:127.0.0.1", true},
    /* IPv4-compatible (not mapped) and NAT64 addresses are IPv6 */
    {"192.0.2.0/24", "::192.0.2.1", false},
    {"192.0.2.0/24", "64:ff9b::192.0.2.1", false},
    /* /0 */
    {"0.0.0.0/0", "203.0.113.9", true},
    {"0.0.0.0/0", "0.0.0.0", true},
    {"0.0.0.0/0", "255.255.255.255", true},
    {"0.0.0.0/0", "::ffff:203.0.113.9", true},
    {"0.0.0.0/0", "2001:db8::1", false},
    {"::/0", "2001:db8::1", true},
    {"::/0", "::", true},
    {"::/0", "203.0.113.9", false},
    /* prefix boundaries */
    {"10.0.0.0/8", "10.0.0.0", true},
    {"10.0.0.0/8", "10.255.255.255", true},
    {"10.0.0.0/8", "11.0.0.1", false},
    {"10.0.0.0/8", "9.255.255.255", false},
    {"192.168.0.0/23", "192.168.0.0", true},
    {"192.168.0.0/23", "192.168.1.255", true},
    {"192.168.0.0/23", "192.168.2.0", false},
    {"192.168.0.0/23", "192.167.255.255", false},
    {"128.0.0.0/1", "128.0.0.0", true},
    {"128.0.0.0/1", "255.255.255.255", true},
    {"128.0.0.0/1", "127.255.255.255", false},
    {"192.0.2.2/31", "192.0.2.3", true},
    {"192.0.2.2/31", "192.0.2.4", false},
    {"192.0.2.1", "192.0.2.1", true},
    {"192.0.2.1", "192.0.2.2", false},
    {"192.0.2.1/32", "192.0.2.0", false},
    {"2001:db8::/32", "2001:db8:ffff:ffff::1", true},
    {"2001:db8::/32", "2001:db9::1", false},
    {"2001:db8::/32", "2001:db7:ffff::1", false},
    {"2001:db8::/33", "2001:db8:7fff:ffff::1", true},
    {"2001:db8::/33", "2001:db8:8000::", false},
    {"fe80::/10", "febf:ffff::1", true},
    {"fe80::/10", "fec0::1", false},
    {"2001:db8::1/128", "2001:db8::1", true},
    {"2001:db8::1/128", "2001:db8::2", false},
    {"::1/128", "::1", true},
    {"::1/128", "::2", false},
    /* families never cross */
    {"::1/128", "127.0.0.1", false},
    {"127.0.0.1/32", "::1", false},
    {"2001:db8::/32", "::ffff:192.0.2.1", false},
};

static void
test_match(void **state)
{
	size_t i, n = sizeof match_cases / sizeof match_cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		const struct match_case *mc = &match_cases[i];
		struct sockaddr_storage ss;
		struct cidr c;
		char err[256];
		bool got;

		assert_int_equal(cidr_parse(&c, mc->net, err, sizeof err), 0);
		got = cidr_match(&c, peer(mc->peer, &ss));
		if (got != mc->match) {
			print_error("match %s vs %s: got %s, want %s\n", mc->net, mc->peer,
			            got ? "true" : "false", mc->match ? "true" : "false");
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu cidr_match rows failed", bad, n);
}

/* A peer of another family (AF_UNIX) matches nothing, not even /0. */
static void
test_match_other_family(void **state)
{
	struct sockaddr_un sun;
	struct cidr c;
	struct cidr_list l = {NULL, 0};
	char err[256];

	(void)state;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	assert_int_equal(cidr_parse(&c, "0.0.0.0/0", err, sizeof err), 0);
	assert_false(cidr_match(&c, (struct sockaddr *)&sun));
	assert_int_equal(cidr_list_parse(&l, "0.0.0.0/0 ::/0", err, sizeof err), 0);
	assert_false(cidr_list_match(&l, (struct sockaddr *)&sun));
	cidr_list_free(&l);
}

/* ---- cidr_list_match ---- */

struct list_match_case {
	const char *list;
	const char *peer;
	bool match;
};

static const struct list_match_case list_match_cases[] = {
    {"10.0.0.0/8, 192.168.0.0/23, 2001:db8::/32", "10.1.2.3", true},
    {"10.0.0.0/8, 192.168.0.0/23, 2001:db8::/32", "192.168.1.7", true},
    {"10.0.0.0/8, 192.168.0.0/23, 2001:db8::/32", "192.168.2.7", false},
    {"10.0.0.0/8, 192.168.0.0/23, 2001:db8::/32", "2001:db8::25", true},
    {"10.0.0.0/8, 192.168.0.0/23, 2001:db8::/32", "2001:db9::25", false},
    {"10.0.0.0/8, 192.168.0.0/23, 2001:db8::/32", "::ffff:10.9.9.9", true},
    {"10.0.0.0/8, 192.168.0.0/23, 2001:db8::/32", "203.0.113.1", false},
    {"127.0.0.1/32 ::1/128", "127.0.0.1", true},
    {"127.0.0.1/32 ::1/128", "::1", true},
    {"127.0.0.1/32 ::1/128", "::ffff:127.0.0.1", true},
    {"127.0.0.1/32 ::1/128", "127.0.0.2", false},
    {"", "127.0.0.1", false},
    {"", "::1", false},
};

static void
test_list_match(void **state)
{
	size_t i, n = sizeof list_match_cases / sizeof list_match_cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		const struct list_match_case *mc = &list_match_cases[i];
		struct cidr_list l = {NULL, 0};
		struct sockaddr_storage ss;
		char err[256];
		bool got;

		assert_int_equal(cidr_list_parse(&l, mc->list, err, sizeof err), 0);
		got = cidr_list_match(&l, peer(mc->peer, &ss));
		if (got != mc->match) {
			print_error("list match [%s] vs %s: got %s, want %s\n", mc->list, mc->peer,
			            got ? "true" : "false", mc->match ? "true" : "false");
			bad++;
		}
		cidr_list_free(&l);
	}
	if (bad)
		fail_msg("%d of %zu cidr_list_match rows failed", bad, n);
}

/* ---- cidr_addr_text ---- */

static void
test_addr_text(void **state)
{
	static const struct {
		const char *peer;
		size_t outlen;
		const char *want;
	} cases[] = {
	    {"192.0.2.1", 64, "192.0.2.1"},
	    {"0.0.0.0", 64, "0.0.0.0"},
	    {"255.255.255.255", INET_ADDRSTRLEN, "255.255.255.255"},
	    {"2001:db8::1", 64, "2001:db8::1"},
	    {"2001:0db8:0000:0000:0000:0000:0000:0001", 64, "2001:db8::1"},
	    {"::1", 64, "::1"},
	    {"::ffff:192.0.2.1", 64, "192.0.2.1"},
	    {"::ffff:127.0.0.1", sizeof "127.0.0.1", "127.0.0.1"},
	    {"::192.0.2.1", 64, "::192.0.2.1"},
	    {"1:2:3:4:5:6:7:8", INET6_ADDRSTRLEN, "1:2:3:4:5:6:7:8"},
	    /* too small for the address: "unknown", cut to the buffer */
	    {"192.0.2.1", 4, "unk"},
	};
	size_t i, n = sizeof cases / sizeof cases[0];
	int bad = 0;

	(void)state;
	for (i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		char *out = malloc(cases[i].outlen); /* exact size: ASan sees an overrun */

		assert_non_null(out);
		cidr_addr_text(peer(cases[i].peer, &ss), out, cases[i].outlen);
		if (strcmp(out, cases[i].want) != 0) {
			print_error("addr_text %s: got \"%s\", want \"%s\"\n", cases[i].peer, out,
			            cases[i].want);
			bad++;
		}
		free(out);
	}
	if (bad)
		fail_msg("%d of %zu cidr_addr_text rows failed", bad, n);
}

static void
test_addr_text_other_family(void **state)
{
	struct sockaddr_un sun;
	char out[64];

	(void)state;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	cidr_addr_text((struct sockaddr *)&sun, out, sizeof out);
	assert_string_equal(out, "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_small_err),
	    cmocka_unit_test(test_list_parse),
	    cmocka_unit_test(test_list_parse_appends),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_match_other_family),
	    cmocka_unit_test(test_list_match),
	    cmocka_unit_test(test_addr_text),
	    cmocka_unit_test(test_addr_text_other_family),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
