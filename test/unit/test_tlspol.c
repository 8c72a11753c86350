/*
 * tlspol (mta/delivery/tlspol.c): the outbound TLS precedence as a table
 * (label, inputs, expected verdict, level, kind, report_only, TLSA count),
 * then the TLSA usability rules and the 4.7.x replies (the MTA-STS mx
 * pattern itself is test_sts.c's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mta/delivery/tlspol.h"

static const unsigned char H32[32] = {1, 2, 3};
static const unsigned char H64[64] = {4, 5, 6};

/* a usable DANE-EE, a usable DANE-TA, and two unusable (PKIX-EE, bad length) */
static const struct dns_tlsa_rec EE = {3, 1, 1, H32, 32};
static const struct dns_tlsa_rec TA = {2, 0, 2, H64, 64};
static const struct dns_tlsa_rec PKIX = {1, 1, 1, H32, 32};
static const struct dns_tlsa_rec SHORT = {3, 1, 1, H32, 20};

static const struct dns_tlsa_rec MIXED[] = {EE, PKIX, TA, SHORT};
static const struct dns_tlsa_rec UNUSABLE[] = {PKIX, SHORT};
static const char *const STS_MX[] = {"mx1.example.com", "*.mail.example.com"};

enum { NOF = -1 }; /* no tls_policy entry */

struct row {
	const char *label;
	int floor; /* enum tls_level, or NOF */
	bool dane_on, literal, route, secure;
	enum tlspol_tlsa tlsa;
	int recs; /* 0: none, 1: MIXED, 2: UNUSABLE */
	enum tlspol_sts sts;
	const char *host;
	/* expected */
	enum tlspol_verdict v;
	enum tls_req_level level;
	enum tls_kind kind;
	bool report_only;
	size_t ntlsa;
};

static const struct row rows[] = {
    {"nothing: opportunistic", NOF, true, false, false, true, TLSPOL_TLSA_NONE, 0, TLSPOL_STS_NONE,
     "mx1.example.com", TLSPOL_GO, TLSR_MAY, TLSK_OPPORTUNISTIC, false, 0},
    {"dane usable", NOF, true, false, false, true, TLSPOL_TLSA_USABLE, 1, TLSPOL_STS_NONE,
     "mx1.example.com", TLSPOL_GO, TLSR_DANE, TLSK_DANE, false, 2},
    {"dane usable, insecure host: ignored", NOF, true, false, false, false, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_MAY, TLSK_OPPORTUNISTIC, false, 0},
    {"dane usable, dane = no", NOF, false, false, false, true, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_MAY, TLSK_OPPORTUNISTIC, false, 0},
    {"dane all unusable: encrypt", NOF, true, false, false, true, TLSPOL_TLSA_UNUSABLE, 2,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_ENCRYPT, TLSK_ENCRYPT, false, 0},
    {"dane lookup failed: skip", NOF, true, false, false, true, TLSPOL_TLSA_FAILED, 0,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_SKIP_TLSA_FAILED, TLSR_MAY, TLSK_DANE, false, 0},
    {"dane lookup failed, insecure host: opportunistic", NOF, true, false, false, false,
     TLSPOL_TLSA_FAILED, 0, TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_MAY,
     TLSK_OPPORTUNISTIC, false, 0},
    {"none downgrades dane", TLS_L_NONE, true, false, false, true, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_NONE, TLSK_PLAINTEXT, false, 0},
    {"may downgrades dane", TLS_L_MAY, true, false, false, true, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_MAY, TLSK_OPPORTUNISTIC, false, 0},
    {"may downgrades sts enforce", TLS_L_MAY, true, false, false, false, TLSPOL_TLSA_NONE, 0,
     TLSPOL_STS_ENFORCE, "other.example.com", TLSPOL_GO, TLSR_MAY, TLSK_OPPORTUNISTIC, false, 0},
    {"none downgrades a failed lookup", TLS_L_NONE, true, false, false, true, TLSPOL_TLSA_FAILED, 0,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_NONE, TLSK_PLAINTEXT, false, 0},
    {"dane wins over sts enforce", NOF, true, false, false, true, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_ENFORCE, "mx1.example.com", TLSPOL_GO, TLSR_DANE, TLSK_DANE, false, 2},
    {"dane wins over an sts mx mismatch", NOF, true, false, false, true, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_ENFORCE, "other.example.com", TLSPOL_GO, TLSR_DANE, TLSK_DANE, false, 2},
    {"floor dane met", TLS_L_DANE, true, false, false, true, TLSPOL_TLSA_USABLE, 1, TLSPOL_STS_NONE,
     "mx1.example.com", TLSPOL_GO, TLSR_DANE, TLSK_DANE, false, 2},
    {"floor dane, no tlsa", TLS_L_DANE, true, false, false, true, TLSPOL_TLSA_NONE, 0,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_SKIP_DANE_REQUIRED, TLSR_MAY, TLSK_DANE, false, 0},
    {"floor dane, unusable tlsa", TLS_L_DANE, true, false, false, true, TLSPOL_TLSA_UNUSABLE, 2,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_SKIP_DANE_REQUIRED, TLSR_ENCRYPT, TLSK_DANE, false,
     0},
    {"floor dane, insecure host", TLS_L_DANE, true, false, false, false, TLSPOL_TLSA_NONE, 0,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_SKIP_DANE_REQUIRED, TLSR_MAY, TLSK_DANE, false, 0},
    {"floor dane, untrusted resolver", TLS_L_DANE, false, false, false, true, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_SKIP_DANE_REQUIRED, TLSR_MAY, TLSK_DANE, false, 0},
    {"sts enforce, listed", NOF, true, false, false, false, TLSPOL_TLSA_NONE, 0, TLSPOL_STS_ENFORCE,
     "mx1.example.com", TLSPOL_GO, TLSR_VERIFY, TLSK_MTA_STS, false, 0},
    {"sts enforce, wildcard", NOF, true, false, false, false, TLSPOL_TLSA_NONE, 0,
     TLSPOL_STS_ENFORCE, "a.mail.example.com", TLSPOL_GO, TLSR_VERIFY, TLSK_MTA_STS, false, 0},
    {"sts enforce, wildcard is one label", NOF, true, false, false, false, TLSPOL_TLSA_NONE, 0,
     TLSPOL_STS_ENFORCE, "a.b.mail.example.com", TLSPOL_SKIP_STS_MX, TLSR_MAY, TLSK_MTA_STS, false,
     0},
    {"sts enforce, not listed", NOF, true, false, false, false, TLSPOL_TLSA_NONE, 0,
     TLSPOL_STS_ENFORCE, "other.example.com", TLSPOL_SKIP_STS_MX, TLSR_MAY, TLSK_MTA_STS, false, 0},
    {"sts enforce over encrypt floor", TLS_L_ENCRYPT, true, false, false, false, TLSPOL_TLSA_NONE,
     0, TLSPOL_STS_ENFORCE, "mx1.example.com", TLSPOL_GO, TLSR_VERIFY, TLSK_MTA_STS, false, 0},
    {"sts enforce with unusable tlsa", NOF, true, false, false, true, TLSPOL_TLSA_UNUSABLE, 2,
     TLSPOL_STS_ENFORCE, "mx1.example.com", TLSPOL_GO, TLSR_VERIFY, TLSK_MTA_STS, false, 0},
    {"sts testing: report only", NOF, true, false, false, false, TLSPOL_TLSA_NONE, 0,
     TLSPOL_STS_TESTING, "other.example.com", TLSPOL_GO, TLSR_MAY, TLSK_MTA_STS, true, 0},
    {"sts testing under encrypt floor", TLS_L_ENCRYPT, true, false, false, false, TLSPOL_TLSA_NONE,
     0, TLSPOL_STS_TESTING, "mx1.example.com", TLSPOL_GO, TLSR_ENCRYPT, TLSK_ENCRYPT, false, 0},
    {"named route: no sts", NOF, true, false, true, false, TLSPOL_TLSA_NONE, 0, TLSPOL_STS_ENFORCE,
     "relay.example.net", TLSPOL_GO, TLSR_MAY, TLSK_OPPORTUNISTIC, false, 0},
    {"named route: dane for its host", NOF, true, false, true, true, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_ENFORCE, "relay.example.net", TLSPOL_GO, TLSR_DANE, TLSK_DANE, false, 2},
    {"literal route: no dane", NOF, true, true, false, true, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_ENFORCE, "192.0.2.7", TLSPOL_GO, TLSR_MAY, TLSK_OPPORTUNISTIC, false, 0},
    {"literal route: its encrypt floor", TLS_L_ENCRYPT, true, true, false, true, TLSPOL_TLSA_USABLE,
     1, TLSPOL_STS_NONE, "192.0.2.7", TLSPOL_GO, TLSR_ENCRYPT, TLSK_ENCRYPT, false, 0},
    {"literal route: dane floor cannot be met", TLS_L_DANE, true, true, false, true,
     TLSPOL_TLSA_USABLE, 1, TLSPOL_STS_NONE, "192.0.2.7", TLSPOL_SKIP_DANE_REQUIRED, TLSR_MAY,
     TLSK_DANE, false, 0},
    {"verify floor", TLS_L_VERIFY, true, false, false, false, TLSPOL_TLSA_NONE, 0, TLSPOL_STS_NONE,
     "mx1.example.com", TLSPOL_GO, TLSR_VERIFY, TLSK_VERIFY, false, 0},
    {"verify floor, dane on top", TLS_L_VERIFY, true, false, false, true, TLSPOL_TLSA_USABLE, 1,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_DANE, TLSK_DANE, false, 2},
    {"verify floor, sts enforce", TLS_L_VERIFY, true, false, false, false, TLSPOL_TLSA_NONE, 0,
     TLSPOL_STS_ENFORCE, "mx1.example.com", TLSPOL_GO, TLSR_VERIFY, TLSK_MTA_STS, false, 0},
    {"encrypt floor", TLS_L_ENCRYPT, true, false, false, false, TLSPOL_TLSA_NONE, 0,
     TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_ENCRYPT, TLSK_ENCRYPT, false, 0},
    {"encrypt floor, unusable tlsa", TLS_L_ENCRYPT, true, false, false, true, TLSPOL_TLSA_UNUSABLE,
     2, TLSPOL_STS_NONE, "mx1.example.com", TLSPOL_GO, TLSR_ENCRYPT, TLSK_ENCRYPT, false, 0},
};

static void
test_precedence(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct tlspol_in in = {.domain = "example.com", .host = r->host};
		struct tls_req req;
		enum tlspol_verdict v;

		in.has_floor = r->floor != NOF;
		in.floor = r->floor == NOF ? TLS_L_MAY : (enum tls_level)r->floor;
		in.dane_on = r->dane_on;
		in.literal = r->literal;
		in.named_route = r->route;
		in.host_secure = r->secure;
		in.tlsa = r->tlsa;
		in.recs = r->recs == 1 ? MIXED : r->recs == 2 ? UNUSABLE : NULL;
		in.nrecs = r->recs == 1 ? 4 : r->recs == 2 ? 2 : 0;
		in.sts = r->sts;
		in.sts_mx = STS_MX;
		in.sts_nmx = 2;
		in.sts_id = "20261206";
		assert_int_equal(tlspol_decide(&in, &req, &v), 0);
		if (v != r->v || req.level != r->level || req.kind != r->kind ||
		    req.report_only != r->report_only || req.ntlsa != r->ntlsa)
			fail_msg("%s: verdict %d level %d kind %s report_only %d ntlsa %zu",
			         r->label, (int)v, (int)req.level, tls_kind_name(req.kind),
			         req.report_only, req.ntlsa);
		assert_string_equal(req.verify_name, r->host);
		assert_string_equal(req.policy_domain, "example.com");
		tls_req_clear(&req);
	}
	assert_true(sizeof(rows) / sizeof(rows[0]) >= 30);
}

/* RFC 8460 3: a TLS report goes under opportunistic TLS whatever DANE, MTA-STS
 * or a floor say; only the admin's `none` still applies. */
static void
test_tls_report(void **state)
{
	static const struct {
		int floor;
		enum tlspol_sts sts;
		enum tls_req_level level;
	} t[] = {
	    {NOF, TLSPOL_STS_ENFORCE, TLSR_MAY},
	    {TLS_L_DANE, TLSPOL_STS_NONE, TLSR_MAY},
	    {TLS_L_VERIFY, TLSPOL_STS_TESTING, TLSR_MAY},
	    {TLS_L_ENCRYPT, TLSPOL_STS_NONE, TLSR_MAY},
	    {TLS_L_NONE, TLSPOL_STS_ENFORCE, TLSR_NONE},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tlspol_in in = {.domain = "example.com", .host = "other.example.com"};
		struct tls_req req;
		enum tlspol_verdict v;

		in.tls_report = in.dane_on = in.host_secure = true;
		in.has_floor = t[i].floor != NOF;
		in.floor = t[i].floor == NOF ? TLS_L_MAY : (enum tls_level)t[i].floor;
		in.tlsa = TLSPOL_TLSA_FAILED; /* even a failed TLSA lookup */
		in.sts = t[i].sts;
		in.sts_mx = STS_MX;
		in.sts_nmx = 2;
		assert_false(tlspol_want_tlsa(&in));
		assert_int_equal(tlspol_decide(&in, &req, &v), 0);
		assert_int_equal(v, TLSPOL_GO);
		assert_int_equal(req.level, t[i].level);
		assert_false(req.report_only);
		assert_int_equal(req.ntlsa, 0);
		tls_req_clear(&req);
	}
}

static void
test_tlsa_records(void **state)
{
	struct tlspol_in in = {.domain = "example.com", .host = "mx1.example.com"};
	struct tls_req req;
	enum tlspol_verdict v;

	(void)state;
	in.dane_on = in.host_secure = true;
	in.tlsa = TLSPOL_TLSA_USABLE;
	in.recs = MIXED;
	in.nrecs = 4;
	assert_int_equal(tlspol_decide(&in, &req, &v), 0);
	assert_int_equal(req.ntlsa, 2);
	assert_int_equal(req.tlsa[0].usage, 3);
	assert_int_equal(req.tlsa[0].len, 32);
	assert_memory_equal(req.tlsa[0].data, H32, 32);
	assert_int_equal(req.tlsa[1].usage, 2);
	assert_int_equal(req.tlsa[1].mtype, 2);
	assert_memory_equal(req.tlsa[1].data, H64, 64);
	tls_req_clear(&req);
}

static void
test_tlsa_class(void **state)
{
	struct dns_tlsa_result res = {.status = DNS_OK, .secure = true, .recs = MIXED, .n = 4};

	(void)state;
	assert_int_equal(tlspol_tlsa_class(&res), TLSPOL_TLSA_USABLE);
	res.recs = UNUSABLE;
	res.n = 2;
	assert_int_equal(tlspol_tlsa_class(&res), TLSPOL_TLSA_UNUSABLE);
	res.secure = false; /* RFC 7672 2.1.1: an insecure answer is no answer */
	assert_int_equal(tlspol_tlsa_class(&res), TLSPOL_TLSA_NONE);
	res.status = DNS_NXDOMAIN;
	res.secure = true;
	assert_int_equal(tlspol_tlsa_class(&res), TLSPOL_TLSA_NONE);
	res.status = DNS_TEMPFAIL;
	assert_int_equal(tlspol_tlsa_class(&res), TLSPOL_TLSA_FAILED);
	res.secure = false; /* SERVFAIL carries no AD: still a failure for a secure host */
	assert_int_equal(tlspol_tlsa_class(&res), TLSPOL_TLSA_FAILED);
	assert_false(tlspol_tlsa_usable(&PKIX));
	assert_false(tlspol_tlsa_usable(&SHORT));
	assert_true(tlspol_tlsa_usable(&EE));
	assert_true(tlspol_tlsa_usable(&TA));
}

static void
test_replies(void **state)
{
	struct tls_req req;
	char text[512];

	(void)state;
	tls_req_init(&req);
	/* opportunistic: a failed handshake is no policy failure (plaintext retry) */
	assert_int_equal(
	    tlspol_fail_reply(&req, SMTPC_TLS, "mx[127.0.0.1]:25", "x", text, sizeof(text)), 0);
	req.level = TLSR_DANE;
	req.kind = TLSK_DANE;
	assert_int_equal(tlspol_fail_reply(&req, SMTPC_TLS_VERIFY, "mx[127.0.0.1]:25",
	                                   "no matching DANE TLSA records", text, sizeof(text)),
	                 451);
	assert_non_null(strstr(text, "4.7.5"));
	assert_non_null(strstr(text, "DANE"));
	req.level = TLSR_ENCRYPT;
	req.kind = TLSK_ENCRYPT;
	assert_int_equal(tlspol_fail_reply(&req, SMTPC_TLS_REQUIRED, "mx[127.0.0.1]:25",
	                                   "no STARTTLS in the EHLO reply", text, sizeof(text)),
	                 451);
	assert_non_null(strstr(text, "4.7.4"));
	assert_non_null(strstr(text, "tls_policy encrypt"));
	assert_int_equal(tlspol_fail_reply(&req, SMTPC_CONNECT, "r", "w", text, sizeof(text)), 0);
	assert_int_equal(tlspol_skip_reply(TLSPOL_SKIP_STS_MX, "example.com", "mx", "id1", NULL,
	                                   text, sizeof(text)),
	                 451);
	assert_non_null(strstr(text, "4.7.0"));
	assert_non_null(strstr(text, "id1"));
	tlspol_skip_reply(TLSPOL_SKIP_TLSA_FAILED, "example.com", "mx.example.com", "", "SERVFAIL",
	                  text, sizeof(text));
	assert_non_null(strstr(text, "4.7.5"));
	assert_non_null(strstr(text, "SERVFAIL"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_precedence),   cmocka_unit_test(test_tls_report),
	    cmocka_unit_test(test_tlsa_records), cmocka_unit_test(test_tlsa_class),
	    cmocka_unit_test(test_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
