/*
 * Unit tests for tools/dkimrec (DKIM key records, RFC 6376 3.2 and 3.6.1,
 * RFC 8463, RFC 8301), the RFC 7489 6.3 tags of tools/dmarc (notes, np=,
 * ri=, rf=, !size, p=none by rua=), dmarc_propose (never weaker) and
 * tools/orgdomain (the Public Suffix List through libpsl). Keys are made
 * here with OpenSSL; each table reports every failing row, then fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tools/dkimrec.h"
#include "tools/dmarc.h"
#include "tools/orgdomain.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- keys ---- */

enum keykind { K_NONE, K_RSA2048, K_RSA1024, K_RSA512, K_ED, K_ED_SPKI, K_PKCS1, K_NKINDS };

static char *keys[K_NKINDS];

static char *
b64(const unsigned char *der, int len)
{
	char *out = malloc((size_t)len / 3 * 4 + 8);

	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)out, der, len);
	return out;
}

static char *
spki(EVP_PKEY *pk)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(pk, &der);
	char *s;

	assert_true(len > 0);
	s = b64(der, len);
	OPENSSL_free(der);
	return s;
}

static int
make_keys(void **state)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *r1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *r512 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	unsigned char raw[32], *der = NULL;
	size_t rawlen = sizeof raw;
	int len;

	(void)state;
	assert_true(rsa && r1024 && r512 && ed);
	keys[K_NONE] = strdup("");
	keys[K_RSA2048] = spki(rsa);
	keys[K_RSA1024] = spki(r1024);
	keys[K_RSA512] = spki(r512);
	keys[K_ED_SPKI] = spki(ed);
	assert_int_equal(EVP_PKEY_get_raw_public_key(ed, raw, &rawlen), 1);
	keys[K_ED] = b64(raw, 32);
	len = i2d_PublicKey(rsa, &der); /* PKCS#1 RSAPublicKey */
	assert_true(len > 0);
	keys[K_PKCS1] = b64(der, len);
	OPENSSL_free(der);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(r1024);
	EVP_PKEY_free(r512);
	EVP_PKEY_free(ed);
	return 0;
}

static int
free_keys(void **state)
{
	(void)state;
	for (int i = 0; i < K_NKINDS; i++)
		free(keys[i]);
	return 0;
}

/* ---- dkimrec ---- */

struct dkim_case {
	const char *label;
	enum keykind key; /* substituted for %s in fmt */
	const char *fmt;
	int rc;
	const char *want; /* a word of the first note ("" = no note at all) */
};

static const struct dkim_case dkim_cases[] = {
    {"rsa", K_RSA2048, "v=DKIM1; k=rsa; p=%s", 0, ""},
    {"no v, no k", K_RSA2048, "p=%s", 0, ""},
    {"ed25519", K_ED, "v=DKIM1; k=ed25519; p=%s", 0, ""},
    {"FWS everywhere", K_RSA2048, " v = DKIM1 ;\r\n\tk = rsa ; p = %s ; ", 0, ""},
    {"unknown tag, notes", K_RSA2048, "v=DKIM1; n=hello world; x=1; p=%s", 0, ""},
    {"t=s strict", K_RSA2048, "v=DKIM1; t=s; p=%s", 0, ""},
    {"t=y testing", K_RSA2048, "v=DKIM1; t=y:s; p=%s", 0, "testing"},
    {"unknown flag", K_RSA2048, "v=DKIM1; t=z; p=%s", 0, ""},
    {"h with sha256", K_RSA2048, "v=DKIM1; h=sha1:sha256:foo; p=%s", 0, ""},
    {"h spaces", K_RSA2048, "v=DKIM1; h=sha1 : sha256; p=%s", 0, "Mail::DKIM"},
    {"s=*", K_RSA2048, "v=DKIM1; s=*; p=%s", 0, ""},
    {"s=email", K_RSA2048, "v=DKIM1; s=tlsrpt:email; p=%s", 0, ""},
    {"v not first", K_RSA2048, "k=rsa; v=DKIM1; p=%s", 0, "first"},
    {"rsa 1024", K_RSA1024, "v=DKIM1; p=%s", 0, "2048"},
    {"rsa 512", K_RSA512, "v=DKIM1; p=%s", -1, "1024"},
    {"v=DKIM2", K_RSA2048, "v=DKIM2; p=%s", -1, "DKIM1"},
    {"h=sha1", K_RSA2048, "v=DKIM1; h=sha1; p=%s", -1, "sha256"},
    {"k=dsa", K_RSA2048, "v=DKIM1; k=dsa; p=%s", -1, "k=dsa"},
    {"s=tlsrpt", K_RSA2048, "v=DKIM1; s=tlsrpt; p=%s", -1, "email"},
    {"revoked", K_NONE, "v=DKIM1; p=%s", -1, "revoked"},
    {"no p", K_NONE, "v=DKIM1; k=rsa%s", -1, "no p="},
    {"duplicate", K_RSA2048, "v=DKIM1; k=rsa; k=rsa; p=%s", -1, "twice"},
    {"no =", K_RSA2048, "v=DKIM1; rsa; p=%s", -1, "tag-list"},
    {"bad name", K_RSA2048, "v=DKIM1; 1k=rsa; p=%s", -1, "tag-list"},
    {"quoted", K_RSA2048, "\"v=DKIM1; k=rsa; p=%s\"", -1, "quotes"},
    {"escaped ;", K_RSA2048, "v=DKIM1\\; k=rsa\\; p=%s", -1, "escaped"},
    {"pkcs1", K_PKCS1, "v=DKIM1; k=rsa; p=%s", -1, "PKCS#1"},
    {"ed as rsa", K_ED_SPKI, "v=DKIM1; p=%s", -1, "not the RSA key"},
    {"ed spki", K_ED_SPKI, "v=DKIM1; k=ed25519; p=%s", -1, "44 bytes"},
    {"ed short", K_RSA512, "v=DKIM1; k=ed25519; p=%s", -1, "32"},
    {"not base64", K_NONE, "v=DKIM1; p=%s!!!", -1, "base64"},
    {"empty", K_NONE, "%s", -1, "empty"},
};

/* fmt with its one "%s" replaced by key (fmt is data here, not a printf format) */
static void
subst(char *out, size_t outlen, const char *fmt, const char *key)
{
	const char *at = strstr(fmt, "%s");

	assert_non_null(at);
	snprintf(out, outlen, "%.*s%s%s", (int)(at - fmt), fmt, key, at + 2);
}

static void
test_dkimrec(void **state)
{
	size_t n = sizeof dkim_cases / sizeof dkim_cases[0];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct dkim_case *dc = &dkim_cases[i];
		struct dkimrec r;
		char txt[2048];
		bool fail;
		const char *first;
		int rc;

		subst(txt, sizeof txt, dc->fmt, keys[dc->key]);
		rc = dkimrec_parse(txt, &r);
		first = dkimrec_first(&r, &fail);
		if (rc != dc->rc ||
		    (dc->want[0] == '\0' ? first != NULL
		                         : first == NULL || !strstr(first, dc->want))) {
			print_error("dkimrec \"%s\": rc %d \"%s\", want %d \"%s\"\n", dc->label, rc,
			            first ? first : "(no note)", dc->rc, dc->want);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu dkimrec rows failed", bad, n);
}

static void
test_dkimrec_truncated(void **state)
{
	struct dkimrec r;
	char txt[2048];
	bool fail;

	(void)state;
	snprintf(txt, sizeof txt, "v=DKIM1; k=rsa; p=%s", keys[K_RSA2048]);
	assert_int_equal(dkimrec_parse(txt, &r), 0);
	assert_int_equal(r.bits, 2048);
	txt[255] = '\0'; /* only the first character-string published */
	assert_int_equal(dkimrec_parse(txt, &r), -1);
	assert_non_null(strstr(dkimrec_first(&r, &fail), "255 bytes"));
	txt[200] = '\0'; /* cut elsewhere: corrupted, no 255-byte story */
	assert_int_equal(dkimrec_parse(txt, &r), -1);
	assert_null(strstr(dkimrec_first(&r, &fail), "255 bytes"));
}

/* ---- dmarc: the 6.3 tags and notes ---- */

struct dmarc_case {
	const char *label;
	const char *txt;
	int rc;
	const char *want; /* rc 0: the first note's tag ("" = none); rc -1: a word of why */
};

static const struct dmarc_case dmarc_cases[] = {
    {"np", "v=DMARC1; p=reject; np=quarantine", 0, ""},
    /* RFC 7489 6.3: a bad tag other than v/p/sp is dropped, the record still applies */
    {"bad np", "v=DMARC1; p=reject; np=all", 0, "drop np"},
    {"ri", "v=DMARC1; p=none; ri=4294967295", 0, ""},
    {"ri too big", "v=DMARC1; p=none; ri=4294967296", 0, "drop ri"},
    {"ri negative", "v=DMARC1; p=none; ri=-1", 0, "drop ri"},
    {"rf afrf", "v=DMARC1; p=none; rf=afrf", 0, ""},
    {"rf other", "v=DMARC1; p=none; rf=iodef", 0, "rf"},
    {"size k", "v=DMARC1; p=none; rua=mailto:a@example.com!10k", 0, ""},
    {"size plain", "v=DMARC1; p=none; rua=mailto:a@example.com!500", 0, ""},
    {"size bad unit", "v=DMARC1; p=none; rua=mailto:a@example.com!10x", 0, "fix rua"},
    {"size empty", "v=DMARC1; p=none; rua=mailto:a@example.com!", 0, "fix rua"},
    {"p not second", "v=DMARC1; rua=mailto:a@example.com; p=reject", 0, "order"},
    {"rua no URI left", "v=DMARC1; p=reject; rua=dmarc@example.com", 0, "drop rua"},
    {"pct with reject", "v=DMARC1; p=reject; pct=10", 0, "pct"},
    {"pct with none", "v=DMARC1; p=none; pct=10", 0, ""},
    {"fo without ruf", "v=DMARC1; p=none; fo=1", 0, "fo"},
    {"fo with ruf", "v=DMARC1; p=none; fo=1; ruf=mailto:f@example.com", 0, ""},
    {"typo dkim", "v=DMARC1; p=none; dkim=s", 0, "tag dkim"},
    {"typo apsf", "v=DMARC1; p=none; apsf=s", 0, "tag apsf"},
    {"typo rau", "v=DMARC1; p=none; rau=mailto:a@example.com", 0, "tag rau"},
    {"not a typo", "v=DMARC1; p=none; xyz=1; bar=baz", 0, ""},
    {"foo for fo", "v=DMARC1; p=none; foo=1", 0, "tag foo"},
    {"no p, rua", "v=DMARC1; rua=mailto:a@example.com", -1, "apply p=none"},
    {"bad sp, rua", "v=DMARC1; p=reject; sp=x; rua=mailto:a@example.com", -1, "apply p=none"},
    {"no p, no rua", "v=DMARC1; adkim=s", -1, "p= is missing (it is required)"},
};

static void
test_dmarc_tags(void **state)
{
	size_t n = sizeof dmarc_cases / sizeof dmarc_cases[0];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct dmarc_case *dc = &dmarc_cases[i];
		struct dmarc_record r;
		char why[512] = "";
		int rc = dmarc_parse(dc->txt, &r, why, sizeof why);
		const char *got = rc != 0 ? why : r.nnotes ? r.notes[0].tag : "";
		bool ok = rc == dc->rc &&
		          (rc == 0 ? strcmp(got, dc->want) == 0 : strstr(got, dc->want) != NULL);

		if (rc != 0 && strcmp(dc->want, "p= is missing (it is required)") == 0)
			ok = ok && strstr(why, "apply p=none") == NULL;
		if (!ok) {
			print_error("dmarc \"%s\": rc %d \"%s\", want %d \"%s\"\n", dc->label, rc,
			            got, dc->rc, dc->want);
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu dmarc rows failed", bad, n);
}

/* ---- dmarc_propose: never weaker ---- */

struct propose_case {
	const char *label;
	const char *cur;
	const char *add_rua;
	const char *want;
	const char *changes;
};

static const struct propose_case propose_cases[] = {
    {"kept as is", "v=DMARC1; p=reject; rua=mailto:d@example.com", "mailto:d@example.com",
     "v=DMARC1; p=reject; rua=mailto:d@example.com; adkim=r; aspf=r", ""},
    {"rua added", "v=DMARC1; p=quarantine; pct=50; adkim=s", "mailto:d@example.com",
     "v=DMARC1; p=quarantine; pct=50; rua=mailto:d@example.com; adkim=s; aspf=r",
     "adds rua=mailto:d@example.com"},
    {"rua appended", "v=DMARC1; p=reject; sp=none; rua=mailto:a@example.com!10m",
     "mailto:b@example.net",
     "v=DMARC1; p=reject; sp=none; rua=mailto:a@example.com!10m,mailto:b@example.net; adkim=r; "
     "aspf=r",
     "adds rua=mailto:b@example.net"},
    {"every tag kept",
     "v=DMARC1; p=reject; sp=quarantine; np=reject; pct=100; rua=mailto:a@example.com; "
     "ruf=mailto:f@example.com; adkim=s; aspf=s; fo=d:s; rf=afrf; ri=3600",
     NULL,
     "v=DMARC1; p=reject; sp=quarantine; np=reject; rua=mailto:a@example.com; "
     "ruf=mailto:f@example.com; adkim=s; aspf=s; fo=d:s; rf=afrf; ri=3600",
     ""},
    {"typo and fo dropped", "v=DMARC1; p=none; rua=mailto:a@example.com; fo=1; dkim=s", NULL,
     "v=DMARC1; p=none; rua=mailto:a@example.com; adkim=r; aspf=r", "drops fo=, drops dkim="},
};

static void
test_dmarc_propose(void **state)
{
	size_t n = sizeof propose_cases / sizeof propose_cases[0];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct propose_case *pc = &propose_cases[i];
		struct dmarc_record cur, again;
		char why[256], *out = NULL, *changes = NULL;

		assert_int_equal(dmarc_parse(pc->cur, &cur, why, sizeof why), 0);
		assert_int_equal(dmarc_propose(&cur, pc->add_rua, &out, &changes, why, sizeof why),
		                 0);
		/* the proposal parses and keeps the policy */
		assert_int_equal(dmarc_parse(out, &again, why, sizeof why), 0);
		assert_string_equal(again.p, cur.p);
		assert_int_equal(again.pct, cur.pct);
		if (strcmp(out, pc->want) != 0 || strcmp(changes, pc->changes) != 0) {
			print_error("propose \"%s\":\n  got  %s [%s]\n  want %s [%s]\n", pc->label,
			            out, changes, pc->want, pc->changes);
			bad++;
		}
		free(out);
		free(changes);
	}
	if (bad)
		fail_msg("%d of %zu dmarc_propose rows failed", bad, n);
}

/* ---- orgdomain ---- */

static void
test_orgdomain(void **state)
{
	static const char *const rows[][2] = {
	    {"example.com", "example.com"},
	    {"a.b.example.com", "example.com"},
	    {"Mail.Example.COM.", "example.com"},
	    {"example.co.uk", "example.co.uk"},
	    {"mail.example.co.uk", "example.co.uk"},
	    {"co.uk", "co.uk"},
	    {"com", "com"},
	    {"a.b.good.test", "good.test"}, /* not in the list: the "*" rule, one label */
	    {"www.city.kawasaki.jp", "city.kawasaki.jp"}, /* exception to *.kawasaki.jp */
	    {"a.b.c.kawasaki.jp", "b.c.kawasaki.jp"},     /* wildcard *.kawasaki.jp */
	};
	char out[256];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (orgdomain_get(rows[i][0], out, sizeof out) != 0 ||
		    strcmp(out, rows[i][1]) != 0) {
			print_error("orgdomain(%s) = %s, want %s\n", rows[i][0], out, rows[i][1]);
			bad++;
		}
	}
	assert_int_equal(orgdomain_get("", out, sizeof out), -1);
	assert_int_equal(orgdomain_get("example.com", out, 5), -1);
	assert_true(orgdomain_same("reports.example.co.uk", "EXAMPLE.co.uk"));
	assert_false(orgdomain_same("example.co.uk", "other.co.uk"));
	/* RFC 7489 7.1: same organisational domain, no authorisation needed */
	assert_false(dmarc_rua_external("example.com", "reports.example.com"));
	assert_false(dmarc_rua_external("mail.example.com", "example.com"));
	assert_true(dmarc_rua_external("example.co.uk", "example2.co.uk"));
	if (bad)
		fail_msg("%d orgdomain rows failed", bad);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dkimrec),    cmocka_unit_test(test_dkimrec_truncated),
	    cmocka_unit_test(test_dmarc_tags), cmocka_unit_test(test_dmarc_propose),
	    cmocka_unit_test(test_orgdomain),
	};

	return cmocka_run_group_tests(tests, make_keys, free_keys);
}
