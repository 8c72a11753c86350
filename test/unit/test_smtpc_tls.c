/*
 * Unit tests for mta/delivery/smtpc_tls.c with real certificates and real
 * handshakes: the test makes a CA and leaves with OpenSSL (P-256), and each
 * case runs a full TLS handshake between an SSL from smtpc_tls_ctx_new
 * (tls_ca_file = the test CA) and a server SSL over an in-memory BIO pair,
 * then checks smtpc_tls_judge: verified or not and the RFC 8460 result type
 * (certificate-host-mismatch, -expired, -not-trusted, validation-failure),
 * for PKIX names (wildcards: one whole label only) and DANE (DANE-EE without
 * name checks, DANE-TA with them and without partial wildcards, a mismatch,
 * no usable record, PKIX-TA/PKIX-EE records ignored as RFC 7672 3.1.3
 * says). IP-literal routes: no SNI, the address checked against iPAddress
 * SANs. Also: the client certificate reaches the server, and the start-up
 * errors name the file, line and key (unreadable CA, not a CA bundle, key
 * of another cert, an encrypted key: refused, never prompted for).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "mta/delivery/smtpc_tls.h"
#include "mta/shared/config.h"
#include "testutil.h"
#include "tlsfx.h"

struct pki {
	char dir[64];
	EVP_PKEY *ca_key;
	X509 *ca;
	char ca_path[128];
};

static struct pki P;

static void
write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (x)
		PEM_write_X509(f, x);
	if (k)
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(P.dir, sizeof(P.dir), "/tmp/mxtlsXXXXXX");
	assert_non_null(mkdtemp(P.dir));
	P.ca_key = EVP_EC_gen("P-256");
	P.ca = tu_make_cert(P.ca_key, "mxrelay test CA", NULL, true, -1, 30, NULL, NULL);
	snprintf(P.ca_path, sizeof(P.ca_path), "%s/ca.pem", P.dir);
	write_pem(P.ca_path, P.ca, NULL);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	X509_free(P.ca);
	EVP_PKEY_free(P.ca_key);
	tu_rmtree(P.dir);
	return 0;
}

/* The configuration smtpc_tls_ctx_new reads: the test CA, no client cert. */
static void
conf_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->path = "/etc/mxrelay/mxrelay.conf";
	c->tls_ca_file = P.ca_path;
	c->tls_ca_file_line = 7;
}

/* conf_init's, with tls_client_cert (line 11) and tls_client_key (line 12). */
static void
conf_client(struct config *c, char *cert, char *key)
{
	conf_init(c);
	c->tls_client_cert = cert;
	c->tls_client_key = key;
	c->tls_client_cert_line = 11;
	c->tls_client_key_line = 12;
}

/* The server's leaf: what each case presents. */
enum leaf { L_GOOD, L_WRONG_NAME, L_EXPIRED, L_SELF_SIGNED, L_WILDCARD, L_PARTIAL_WILDCARD, L_IP };

static void
server_make(struct tu_server *s, enum leaf l)
{
	static const char *const san[] = {
	    [L_GOOD] = "DNS:mx.example.test",       [L_WRONG_NAME] = "DNS:other.example.test",
	    [L_EXPIRED] = "DNS:mx.example.test",    [L_SELF_SIGNED] = "DNS:mx.example.test",
	    [L_WILDCARD] = "DNS:*.example.test",    [L_PARTIAL_WILDCARD] = "DNS:m*.example.test",
	    [L_IP] = "IP:192.0.2.7,IP:2001:db8::7",
	};
	bool self = l == L_SELF_SIGNED;

	s->key = EVP_EC_gen("P-256");
	s->cert =
	    tu_make_cert(s->key, "leaf", san[l], false, l == L_EXPIRED ? -10 : -1,
	                 l == L_EXPIRED ? -2 : 30, self ? NULL : P.ca, self ? NULL : P.ca_key);
}

/* SHA2-256 of the DER of x (selector 0) or of its public key (selector 1). */
static void
digest(X509 *x, int selector, unsigned char out[32])
{
	unsigned char *der = NULL;
	int n = selector ? i2d_PUBKEY(X509_get0_pubkey(x), &der) : i2d_X509(x, &der);
	unsigned int len = 32;

	assert_true(n > 0);
	assert_true(EVP_Digest(der, (size_t)n, out, &len, EVP_sha256(), NULL) == 1);
	OPENSSL_free(der);
}

/* The server side asks for a client certificate and takes any: the test reads the subject. */
static int
accept_any(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

/* The MX name handshake() gives smtpc_tls_setup, and the SNI the server got ("" for none). */
static const char *H_mx = "mx.example.test";
static char H_sni[256];

/*
 * One handshake of a client SSL made by smtpc_tls under req against a
 * server presenting s (its chain: the test CA), then the judgement. When
 * client_subject is not NULL, the server asks for a client certificate and
 * copies the subject it got ("" for none).
 */
static void
handshake(SSL_CTX *cctx, const struct tls_req *req, struct tu_server *s, struct tls_outcome *out,
          char *client_subject, size_t sublen)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL *cl, *sv;
	BIO *cb, *sb;
	int rc = 0, rs = 0;

	assert_true(SSL_CTX_use_certificate(sctx, s->cert) == 1);
	assert_true(SSL_CTX_use_PrivateKey(sctx, s->key) == 1);
	assert_true(SSL_CTX_add1_chain_cert(sctx, P.ca) == 1);
	if (client_subject)
		SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER, accept_any);
	cl = SSL_new(cctx);
	sv = SSL_new(sctx);
	assert_true(BIO_new_bio_pair(&cb, 0, &sb, 0) == 1);
	SSL_set_bio(cl, cb, cb);
	SSL_set_bio(sv, sb, sb);
	assert_int_equal(smtpc_tls_setup(cl, req, H_mx), 0);
	SSL_set_connect_state(cl);
	SSL_set_accept_state(sv);
	for (int i = 0; i < 20 && (rc != 1 || rs != 1); i++) {
		if (rc != 1)
			rc = SSL_do_handshake(cl);
		if (rs != 1)
			rs = SSL_do_handshake(sv);
	}
	assert_int_equal(rc, 1);
	assert_int_equal(rs, 1);
	if (client_subject) {
		X509 *peer = SSL_get0_peer_certificate(sv);
		client_subject[0] = '\0';
		if (peer)
			X509_NAME_oneline(X509_get_subject_name(peer), client_subject, (int)sublen);
	}
	{
		const char *sni = SSL_get_servername(sv, TLSEXT_NAMETYPE_host_name);
		snprintf(H_sni, sizeof(H_sni), "%s", sni ? sni : "");
	}
	memset(out, 0x55, sizeof(*out));
	smtpc_tls_judge(cl, req, out);
	SSL_free(cl);
	SSL_free(sv);
	SSL_CTX_free(sctx);
}

/* The TLSA record a DANE case gives (T_NONE: none added). */
enum tlsa_kind { T_NONE, T_EE_SPKI, T_EE_OTHER, T_TA_CERT, T_UNUSABLE, T_PKIX_TA, T_PKIX_EE };

static void
add_tlsa(struct tls_req *r, enum tlsa_kind t, X509 *leaf)
{
	static unsigned char d[32];
	static struct tls_tlsa rec;
	EVP_PKEY *other;
	X509 *ox;

	rec.data = d;
	rec.len = sizeof(d);
	switch (t) {
	case T_NONE:
		return;
	case T_EE_SPKI: /* 3 1 1 of the leaf's key */
		rec.usage = 3, rec.selector = 1, rec.mtype = 1;
		digest(leaf, 1, d);
		break;
	case T_EE_OTHER: /* 3 1 1 of another key */
		rec.usage = 3, rec.selector = 1, rec.mtype = 1;
		other = EVP_EC_gen("P-256");
		ox = tu_make_cert(other, "x", NULL, false, -1, 1, NULL, NULL);
		digest(ox, 1, d);
		X509_free(ox);
		EVP_PKEY_free(other);
		break;
	case T_TA_CERT: /* 2 0 1 of the CA certificate */
		rec.usage = 2, rec.selector = 0, rec.mtype = 1;
		digest(P.ca, 0, d);
		break;
	case T_UNUSABLE: /* matching type 9: unknown (RFC 6698 7.4), never usable */
		rec.usage = 3, rec.selector = 1, rec.mtype = 9;
		digest(leaf, 1, d);
		break;
	case T_PKIX_TA: /* 0 0 1 of the CA: PKIX-TA, unusable in SMTP (RFC 7672 3.1.3) */
		rec.usage = 0, rec.selector = 0, rec.mtype = 1;
		digest(P.ca, 0, d);
		break;
	case T_PKIX_EE: /* 1 1 1 of the leaf: PKIX-EE, unusable in SMTP (RFC 7672 3.1.3) */
		rec.usage = 1, rec.selector = 1, rec.mtype = 1;
		digest(leaf, 1, d);
		break;
	}
	r->tlsa = &rec; /* the test's own: never tls_req_clear'd */
	r->ntlsa = 1;
}

/* An SSL_CTX as the daemon makes it from conf_init's configuration. */
static SSL_CTX *
ctx_make(void)
{
	struct config cfg;
	char err[512];
	SSL_CTX *ctx;

	conf_init(&cfg);
	ctx = smtpc_tls_ctx_new(&cfg, err, sizeof(err));
	assert_non_null(ctx);
	return ctx;
}

/* One table row: a server presenting leaf, the TLSA record tlsa added to r
 * for it, a handshake under r, the judgement in o. */
static void
run_case(SSL_CTX *ctx, struct tls_req *r, enum leaf leaf, enum tlsa_kind tlsa,
         struct tls_outcome *o)
{
	struct tu_server s;

	server_make(&s, leaf);
	add_tlsa(r, tlsa, s.cert);
	handshake(ctx, r, &s, o, NULL, 0);
	tu_server_free(&s);
}

/* PKIX cases: (label, level, report_only, leaf) -> (verified, result). */
static void
test_pkix_table(void **state)
{
	static const struct {
		const char *label;
		enum tls_req_level level;
		bool report_only;
		enum leaf leaf;
		bool verified;
		enum tls_result result;
	} cases[] = {
	    {"verify, CA-signed, right name", TLSR_VERIFY, false, L_GOOD, true, TLSRES_OK},
	    {"verify, wrong name", TLSR_VERIFY, false, L_WRONG_NAME, false,
	     TLSRES_CERT_HOST_MISMATCH},
	    {"verify, expired", TLSR_VERIFY, false, L_EXPIRED, false, TLSRES_CERT_EXPIRED},
	    {"verify, self-signed", TLSR_VERIFY, false, L_SELF_SIGNED, false,
	     TLSRES_CERT_NOT_TRUSTED},
	    {"verify, *.example.test", TLSR_VERIFY, false, L_WILDCARD, true, TLSRES_OK},
	    {"verify, m*.example.test (partial)", TLSR_VERIFY, false, L_PARTIAL_WILDCARD, false,
	     TLSRES_CERT_HOST_MISMATCH},
	    {"may, right name: verified", TLSR_MAY, false, L_GOOD, true, TLSRES_OK},
	    {"may, wrong name: not verified, no failure", TLSR_MAY, false, L_WRONG_NAME, false,
	     TLSRES_OK},
	    {"encrypt, self-signed: no failure", TLSR_ENCRYPT, false, L_SELF_SIGNED, false,
	     TLSRES_OK},
	    {"may report_only (STS testing), wrong name", TLSR_MAY, true, L_WRONG_NAME, false,
	     TLSRES_CERT_HOST_MISMATCH},
	};
	SSL_CTX *ctx = ctx_make();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_req r;
		struct tls_outcome o;
		tu_req_make(&r, cases[i].level, cases[i].report_only);
		run_case(ctx, &r, cases[i].leaf, T_NONE, &o);
		printf("  %-45s verified=%d result=%s detail=\"%s\"\n", cases[i].label, o.verified,
		       tls_result_name(o.result), o.detail);
		assert_int_equal(o.verified, cases[i].verified);
		assert_int_equal(o.result, cases[i].result);
		assert_true(o.tls);
		assert_int_equal(o.kind, r.kind);
		assert_true(strncmp(o.version, "TLSv1.", 6) == 0);
		assert_int_equal(o.detail[0] == '\0', cases[i].verified); /* why, when not */
	}
	SSL_CTX_free(ctx);
}

static void
test_dane_table(void **state)
{
	static const struct {
		const char *label;
		enum tlsa_kind tlsa;
		enum leaf leaf;
		bool verified;
		enum tls_result result;
	} cases[] = {
	    {"DANE-EE 3 1 1 match", T_EE_SPKI, L_GOOD, true, TLSRES_OK},
	    /* RFC 7672 3.1.1: DANE-EE ignores names and expiry */
	    {"DANE-EE match, wrong name", T_EE_SPKI, L_WRONG_NAME, true, TLSRES_OK},
	    {"DANE-EE match, self-signed", T_EE_SPKI, L_SELF_SIGNED, true, TLSRES_OK},
	    {"DANE-EE mismatch", T_EE_OTHER, L_GOOD, false, TLSRES_VALIDATION_FAILURE},
	    {"DANE-TA 2 0 1 of the CA", T_TA_CERT, L_GOOD, true, TLSRES_OK},
	    /* RFC 7672 3.2.2: DANE-TA keeps the name check */
	    {"DANE-TA, wrong name", T_TA_CERT, L_WRONG_NAME, false, TLSRES_CERT_HOST_MISMATCH},
	    {"DANE-TA, self-signed leaf", T_TA_CERT, L_SELF_SIGNED, false,
	     TLSRES_VALIDATION_FAILURE},
	    {"no usable record (PKIX would pass)", T_UNUSABLE, L_GOOD, false,
	     TLSRES_VALIDATION_FAILURE},
	    /* RFC 6125 6.4.3: no partial wildcards under DANE-TA either */
	    {"DANE-TA, m*.example.test (partial)", T_TA_CERT, L_PARTIAL_WILDCARD, false,
	     TLSRES_CERT_HOST_MISMATCH},
	    /* RFC 7672 3.1.3: usages 0 and 1 are unusable, even when they match */
	    {"PKIX-TA 0 0 1 of the CA only", T_PKIX_TA, L_GOOD, false, TLSRES_VALIDATION_FAILURE},
	    {"PKIX-EE 1 1 1 of the leaf only", T_PKIX_EE, L_GOOD, false, TLSRES_VALIDATION_FAILURE},
	};
	SSL_CTX *ctx = ctx_make();
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_req r;
		struct tls_outcome o;
		tu_req_make(&r, TLSR_DANE, false);
		run_case(ctx, &r, cases[i].leaf, cases[i].tlsa, &o);
		bool ok = o.verified == cases[i].verified && o.result == cases[i].result;
		printf("  %-45s verified=%d result=%s detail=\"%s\"%s\n", cases[i].label,
		       o.verified, tls_result_name(o.result), o.detail, ok ? "" : "  <-- WRONG");
		bad += !ok; /* every row printed, then the verdict */
		assert_int_equal(o.kind, TLSK_DANE);
	}
	assert_int_equal(bad, 0);
	SSL_CTX_free(ctx);
}

/* tls_client_cert/key: the server asking for a certificate gets ours. */
static void
test_client_cert(void **state)
{
	struct config cfg;
	struct tu_server s, me;
	struct tls_req r;
	struct tls_outcome o;
	char err[512], cert[128], key[128], subject[256];
	SSL_CTX *ctx;

	(void)state;
	me.key = EVP_EC_gen("P-256");
	me.cert = tu_make_cert(me.key, "relay.example.test", "DNS:relay.example.test", false, -1,
	                       30, P.ca, P.ca_key);
	snprintf(cert, sizeof(cert), "%s/client.pem", P.dir);
	snprintf(key, sizeof(key), "%s/client.key", P.dir);
	write_pem(cert, me.cert, NULL);
	write_pem(key, NULL, me.key);
	server_make(&s, L_GOOD);
	tu_req_make(&r, TLSR_MAY, false);

	conf_init(&cfg);
	ctx = smtpc_tls_ctx_new(&cfg, err, sizeof(err));
	handshake(ctx, &r, &s, &o, subject, sizeof(subject));
	assert_string_equal(subject, ""); /* none configured: none sent */
	SSL_CTX_free(ctx);

	cfg.tls_client_cert = cert;
	cfg.tls_client_key = key;
	ctx = smtpc_tls_ctx_new(&cfg, err, sizeof(err));
	assert_non_null(ctx);
	handshake(ctx, &r, &s, &o, subject, sizeof(subject));
	assert_string_equal(subject, "/CN=relay.example.test");
	SSL_CTX_free(ctx);
	tu_server_free(&s);
	tu_server_free(&me);
}

/* Start-up errors: "FILE:LINE: KEY: cannot use PATH: reason". */
static void
test_ctx_errors(void **state)
{
	struct config cfg;
	struct tu_server a, b;
	char err[512], junk[128], ca[128], cert[128], key[128], want[256];

	(void)state;
	snprintf(junk, sizeof(junk), "%s/junk.pem", P.dir);
	write_pem(junk, NULL, NULL);
	conf_init(&cfg);
	snprintf(ca, sizeof(ca), "%s/missing.pem", P.dir);
	cfg.tls_ca_file = ca;
	assert_null(smtpc_tls_ctx_new(&cfg, err, sizeof(err)));
	snprintf(
	    want, sizeof(want),
	    "/etc/mxrelay/mxrelay.conf:7: tls_ca_file: cannot use %s: No such file or directory",
	    ca);
	assert_string_equal(err, want);

	cfg.tls_ca_file = junk; /* empty: not a CA bundle */
	assert_null(smtpc_tls_ctx_new(&cfg, err, sizeof(err)));
	snprintf(want, sizeof(want),
	         "/etc/mxrelay/mxrelay.conf:7: tls_ca_file: cannot use %s: ", junk);
	assert_true(strncmp(err, want, strlen(want)) == 0);

	/* a key that belongs to another certificate */
	server_make(&a, L_GOOD);
	server_make(&b, L_GOOD);
	snprintf(cert, sizeof(cert), "%s/a.pem", P.dir);
	snprintf(key, sizeof(key), "%s/b.key", P.dir);
	write_pem(cert, a.cert, NULL);
	write_pem(key, NULL, b.key);
	conf_client(&cfg, cert, key);
	assert_null(smtpc_tls_ctx_new(&cfg, err, sizeof(err)));
	snprintf(want, sizeof(want),
	         "/etc/mxrelay/mxrelay.conf:12: tls_client_key: cannot use %s: the key does not "
	         "match tls_client_cert",
	         key);
	assert_string_equal(err, want);

	cfg.tls_client_cert = junk; /* no certificate in it */
	assert_null(smtpc_tls_ctx_new(&cfg, err, sizeof(err)));
	snprintf(want, sizeof(want),
	         "/etc/mxrelay/mxrelay.conf:11: tls_client_cert: cannot use %s: ", junk);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	tu_server_free(&a);
	tu_server_free(&b);
}

/*
 * IP-literal routes: no SNI (RFC 6066 3 allows host names only) and the
 * address checked against the certificate's iPAddress SANs, in every form
 * a route may name it.
 */
static void
test_ip_literal_table(void **state)
{
	static const struct {
		const char *mx;
		enum leaf leaf;
		bool verified;
		enum tls_result result;
		const char *sni;
	} cases[] = {
	    {"192.0.2.7", L_IP, true, TLSRES_OK, ""},
	    {"[192.0.2.7]", L_IP, true, TLSRES_OK, ""},
	    {"[2001:db8::7]", L_IP, true, TLSRES_OK, ""},
	    {"[IPv6:2001:db8::7]", L_IP, true, TLSRES_OK, ""},
	    {"[192.0.2.8]", L_IP, false, TLSRES_CERT_HOST_MISMATCH, ""},
	    {"[192.0.2.7]", L_GOOD, false, TLSRES_CERT_HOST_MISMATCH, ""},
	    {"mx.example.test", L_GOOD, true, TLSRES_OK, "mx.example.test"},
	};
	SSL_CTX *ctx = ctx_make();
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_req r;
		struct tls_outcome o;
		tu_req_make(&r, TLSR_VERIFY, false);
		snprintf(r.verify_name, sizeof(r.verify_name), "%s", cases[i].mx); /* as dest.c */
		H_mx = cases[i].mx;
		run_case(ctx, &r, cases[i].leaf, T_NONE, &o);
		printf("  %-20s verified=%d result=%s sni=\"%s\" detail=\"%s\"\n", cases[i].mx,
		       o.verified, tls_result_name(o.result), H_sni, o.detail);
		bad += strcmp(H_sni, cases[i].sni) != 0 || o.verified != cases[i].verified ||
		       o.result != cases[i].result;
	}
	assert_int_equal(bad, 0);
	H_mx = "mx.example.test";
	SSL_CTX_free(ctx);
}

/*
 * An encrypted tls_client_key is refused with FILE:LINE: KEY, never asked
 * for: the child has no terminal and the passphrase waits on its stdin,
 * where OpenSSL's default prompt would read it (and block on a terminal).
 */
static void
test_encrypted_client_key(void **state)
{
	struct tu_server me;
	char cert[128], key[128], want[256];
	int fds[2], status;
	pid_t pid;
	FILE *f;

	(void)state;
	server_make(&me, L_GOOD);
	snprintf(cert, sizeof(cert), "%s/enc.pem", P.dir);
	snprintf(key, sizeof(key), "%s/enc.key", P.dir);
	write_pem(cert, me.cert, NULL);
	f = fopen(key, "w");
	assert_non_null(f);
	assert_true(PEM_write_PrivateKey(f, me.key, EVP_aes_256_cbc(), (unsigned char *)"secret", 6,
	                                 NULL, NULL) == 1);
	fclose(f);
	snprintf(want, sizeof(want),
	         "/etc/mxrelay/mxrelay.conf:12: tls_client_key: cannot use %s: ", key);
	assert_int_equal(pipe(fds), 0);
	assert_true(write(fds[1], "secret\n", 7) == 7);
	close(fds[1]);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct config cfg;
		char err[512];
		SSL_CTX *ctx;
		alarm(10);
		setsid(); /* no controlling terminal: /dev/tty cannot be opened */
		dup2(fds[0], 0);
		conf_client(&cfg, cert, key);
		ctx = smtpc_tls_ctx_new(&cfg, err, sizeof(err));
		printf("  encrypted key: %s\n",
		       ctx ? "loaded with the passphrase from stdin" : err);
		fflush(stdout);
		_exit(ctx == NULL && strncmp(err, want, strlen(want)) == 0 ? 0 : 1);
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	tu_server_free(&me);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkix_table),       cmocka_unit_test(test_dane_table),
	    cmocka_unit_test(test_client_cert),      cmocka_unit_test(test_ctx_errors),
	    cmocka_unit_test(test_ip_literal_table), cmocka_unit_test(test_encrypted_client_key),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
