/*
 * Unit tests for dkim/handoff.c: libopendkim signs with the key parsed once
 * (the interposed d2i_PrivateKey_bio() hands it over, and passes every other
 * call to OpenSSL unchanged), and signing many messages does not grow the
 * heap (libopendkim's Ed25519 path leaks the key and a 64-byte buffer per
 * signature without it). That the signatures verify with python3-dkim is
 * test_dkim's part: its signers go through the same hand-off.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dkim/handoff.h"
#include "dkim/mxdkim_int.h"
#include "dkim/keys.h"
#include "dkim/signer.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#define LSAN_OFF() __lsan_disable()
#define LSAN_ON() __lsan_enable()
#else
#define LSAN_OFF()
#define LSAN_ON()
#endif

#define DOMAIN "handoff.example"

static const char msg[] = "From: Alice <alice@" DOMAIN ">\r\n"
                          "To: <bob@example.net>\r\n"
                          "Subject: hand-off\r\n"
                          "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
                          "Message-ID: <handoff.1@" DOMAIN ">\r\n"
                          "\r\n"
                          "a body line\r\n";

/* a new key of the given kind, through mxdkim_key_from_pem as the daemon loads one */
static struct mxdkim_key *
new_key(const char *type)
{
	EVP_PKEY *pk = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
	                                        : EVP_PKEY_Q_keygen(NULL, NULL, type);
	BIO *b = BIO_new(BIO_s_mem());
	struct mxdkim_key *k = NULL;
	char *pem, err[256];
	long n;

	assert_non_null(pk);
	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &pem);
	if (mxdkim_key_from_pem(&k, pem, (size_t)n, err, sizeof err) != 0)
		fail_msg("mxdkim_key_from_pem: %s", err);
	BIO_free(b);
	EVP_PKEY_free(pk);
	return k;
}

static struct mxdkim_key *rsa, *ed;

static int
setup(void **state)
{
	(void)state;
	rsa = new_key("RSA");
	ed = new_key("ED25519");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	mxdkim_key_free(rsa);
	mxdkim_key_free(ed);
	return 0;
}

/* a signer for DOMAIN with its own copies of the keys asked for */
static struct mxdkim_signer *
signer(bool with_rsa, bool with_ed)
{
	struct mxdkim_signer *s = mxdkim_signer_new();
	struct mxdkim_key *k;
	char err[256], *pem;

	assert_non_null(s);
	for (int i = 0; i < 2; i++) {
		struct mxdkim_key *src = i == 0 ? rsa : ed;

		if (!(i == 0 ? with_rsa : with_ed))
			continue;
		pem = src->pem;
		assert_int_equal(mxdkim_key_from_pem(&k, pem, strlen(pem), err, sizeof err), 0);
		if (mxdkim_signer_add(s, DOMAIN, i == 0 ? "r" : "e", k, err, sizeof err) != 0)
			fail_msg("mxdkim_signer_add: %s", err);
	}
	return s;
}

static void
sign_n(const struct mxdkim_signer *s, int n, int nsigs)
{
	char *h, err[256];

	for (int i = 0; i < n; i++) {
		if (mxdkim_sign(s, DOMAIN, msg, sizeof msg - 1, &h, err, sizeof err) != 0)
			fail_msg("mxdkim_sign: %s", err);
		if (i == 0) {
			int count = 0;

			for (const char *p = h; (p = strstr(p, "DKIM-Signature: ")) != NULL; p++)
				count++;
			assert_int_equal(count, nsigs);
		}
		free(h);
	}
}

/* Every key added to a signer goes through the hand-off with this libopendkim. */
static void
test_parsed_once(void **state)
{
	struct mxdkim_signer *s = signer(true, true);

	(void)state;
	assert_true(mxdkim_signer_parsed_once(s));
	sign_n(s, 3, 2);
	/* libopendkim frees the RSA keys it loads; what it does with Ed25519 ones the probe learns
	 */
	assert_true(mxdkim_handoff_lib_frees(MXDKIM_RSA));
	mxdkim_signer_free(s);
}

/* the DKIM-Signature fields mxdkim_sign makes for msg with keys handed over as mode says */
static char *
headers_with(enum mxdkim_keymode mode)
{
	struct mxdkim_signer *s = mxdkim_signer_new();
	struct mxdkim_key *k;
	char err[256], *h = NULL;

	assert_non_null(s);
	mxdkim_signer_keymode(s, mode);
	for (int i = 0; i < 2; i++) {
		struct mxdkim_key *src = i == 0 ? rsa : ed;

		assert_int_equal(
		    mxdkim_key_from_pem(&k, src->pem, strlen(src->pem), err, sizeof err), 0);
		if (mxdkim_signer_add(s, DOMAIN, i == 0 ? "r" : "e", k, err, sizeof err) != 0)
			fail_msg("mxdkim_signer_add: %s", err);
	}
	assert_int_equal(mxdkim_signer_parsed_once(s), mode == MXDKIM_KEYS_PARSED);
	if (mxdkim_sign(s, DOMAIN, msg, sizeof msg - 1, &h, err, sizeof err) != 0)
		fail_msg("mxdkim_sign: %s", err);
	mxdkim_signer_free(s);
	return h;
}

/*
 * The hand-off changes how libopendkim gets the key, nothing else: RSA
 * PKCS#1 v1.5 and Ed25519 signatures are deterministic, so a dual signature
 * with the key handed over parsed is byte for byte the one libopendkim makes
 * from the PEM text (when both fall in the same second: t= is the time).
 */
static void
test_same_bytes_as_pem(void **state)
{
	(void)state;
	for (int attempt = 0; attempt < 3; attempt++) {
		char *a = headers_with(MXDKIM_KEYS_PARSED), *b, *ta, *tb;

		/* libopendkim's own Ed25519 path leaks the key it decodes: that is the point */
		LSAN_OFF();
		b = headers_with(MXDKIM_KEYS_PEM);
		LSAN_ON();
		ta = strstr(a, " t=");
		tb = strstr(b, " t=");
		bool same_second = ta && tb && strncmp(ta, tb, 14) == 0;

		if (same_second)
			assert_string_equal(a, b);
		free(a);
		free(b);
		if (same_second)
			return;
	}
	fail_msg("three tries, never in the same second");
}

/* bytes the heap holds in use now (glibc; 0 where malloc is not glibc's, e.g. under ASan) */
static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/*
 * 2000 signatures must not grow the heap: without the hand-off libopendkim
 * leaks ~0.5 KB per Ed25519 signature (1 MB here). Under ASan, mallinfo2
 * sees nothing and LeakSanitizer checks the same at exit.
 */
static void
check_flat(bool with_rsa, bool with_ed, int n)
{
	struct mxdkim_signer *s = signer(with_rsa, with_ed);
	size_t before, after;

	sign_n(s, 50, with_rsa + with_ed); /* first-use allocations: RSA blinding, caches */
	malloc_trim(0);
	before = heap_in_use();
	sign_n(s, n, with_rsa + with_ed);
	malloc_trim(0);
	after = heap_in_use();
	print_message("heap in use: %zu -> %zu bytes over %d messages\n", before, after, n);
	if (after > before + 64 * 1024)
		fail_msg("the heap grew by %zu bytes over %d signed messages", after - before, n);
	mxdkim_signer_free(s);
}

static void
test_flat_ed25519(void **state)
{
	(void)state;
	check_flat(false, true, 2000);
}

static void
test_flat_rsa(void **state)
{
	(void)state;
	check_flat(true, false, 300);
}

static void
test_flat_dual(void **state)
{
	(void)state;
	check_flat(true, true, 300);
}

/* a memory BIO holding len bytes of data */
static BIO *
mem_bio(const void *data, size_t len)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);

	assert_non_null(b);
	return b;
}

/* Not armed, or armed for another text: d2i_PrivateKey_bio is OpenSSL's. */
static void
test_passthrough(void **state)
{
	unsigned char *der = NULL;
	int n = i2d_PrivateKey(ed->pkey, &der);
	EVP_PKEY *got;
	BIO *b;

	(void)state;
	assert_true(n > 0);
	b = mem_bio(der, (size_t)n);
	got = d2i_PrivateKey_bio(b, NULL);
	assert_non_null(got);
	assert_int_equal(EVP_PKEY_eq(got, ed->pkey), 1);
	assert_ptr_not_equal(got, ed->pkey);
	EVP_PKEY_free(got);
	BIO_free(b);

	/* armed, but the BIO holds a real key: parsed, not handed over */
	mxdkim_handoff_arm(ed->token, ed->pkey, false);
	b = mem_bio(der, (size_t)n);
	got = d2i_PrivateKey_bio(b, NULL);
	assert_non_null(got);
	assert_ptr_not_equal(got, ed->pkey);
	EVP_PKEY_free(got);
	BIO_free(b);
	/* armed, a BIO with the token of another key: OpenSSL's answer (not a key) */
	b = mem_bio(rsa->token, strlen(rsa->token));
	assert_null(d2i_PrivateKey_bio(b, NULL));
	BIO_free(b);
	assert_int_equal(mxdkim_handoff_disarm(), 0);

	/* not armed: the token is just text */
	b = mem_bio(ed->token, strlen(ed->token));
	assert_null(d2i_PrivateKey_bio(b, NULL));
	BIO_free(b);
	OPENSSL_free(der);
}

/* Armed: the token's BIO gets the key, a reference each time, or once with transfer. */
static void
test_handoff(void **state)
{
	EVP_PKEY *copy = EVP_PKEY_dup(ed->pkey);
	BIO *b;

	(void)state;
	assert_non_null(copy);
	assert_memory_equal(ed->token, "mxdkim-key:", 11);
	assert_string_not_equal(ed->token, rsa->token);
	mxdkim_handoff_arm(ed->token, ed->pkey, false);
	for (int i = 0; i < 2; i++) {
		b = mem_bio(ed->token, strlen(ed->token));
		assert_ptr_equal(d2i_PrivateKey_bio(b, NULL), ed->pkey);
		EVP_PKEY_free(ed->pkey); /* the reference it gave */
		BIO_free(b);
	}
	assert_int_equal(mxdkim_handoff_disarm(), 2);

	mxdkim_handoff_arm(ed->token, copy, true);
	b = mem_bio(ed->token, strlen(ed->token));
	assert_ptr_equal(d2i_PrivateKey_bio(b, NULL), copy);
	BIO_free(b);
	b = mem_bio(ed->token, strlen(ed->token));
	assert_null(d2i_PrivateKey_bio(b, NULL)); /* given away already */
	BIO_free(b);
	assert_int_equal(mxdkim_handoff_disarm(), 1);
	EVP_PKEY_free(copy);
}

/* The arena frees what is left, and nothing twice. */
static void
test_arena(void **state)
{
	struct mxdkim_arena a;
	void *p[4];

	(void)state;
	mxdkim_arena_init(&a);
	for (int i = 0; i < 4; i++) {
		p[i] = mxdkim_arena_malloc(&a, 64 + (size_t)i);
		assert_non_null(p[i]);
		memset(p[i], 0xa5, 64);
	}
	mxdkim_arena_free(&a, p[1]);
	mxdkim_arena_free(NULL, p[3]); /* the closure does not matter */
	mxdkim_arena_free(&a, NULL);
	assert_int_equal(mxdkim_arena_release(&a), 2);
	assert_int_equal(mxdkim_arena_release(&a), 0);
	/* no closure: not tracked, freed by free alone */
	p[0] = mxdkim_arena_malloc(NULL, 10);
	assert_non_null(p[0]);
	mxdkim_arena_free(NULL, p[0]);
	assert_null(mxdkim_arena_malloc(&a, SIZE_MAX));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parsed_once), cmocka_unit_test(test_flat_ed25519),
	    cmocka_unit_test(test_flat_rsa),    cmocka_unit_test(test_flat_dual),
	    cmocka_unit_test(test_passthrough), cmocka_unit_test(test_handoff),
	    cmocka_unit_test(test_arena),       cmocka_unit_test(test_same_bytes_as_pem),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
