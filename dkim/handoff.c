/*
 * dkim/handoff.c: libopendkim signs with a private key parsed once, and
 * what its Ed25519 path leaks is taken back.
 *
 * Why (libopendkim 2.11.0~beta2 with OpenSSL 3.0, measured with callgrind,
 * see README "DKIM signing cost"): dkim_sign() takes the key only as text,
 * and dkim_eom() decodes it again for every signature (dkim_privkey_load:
 * the text goes into a memory BIO, then PEM_read_bio_PrivateKey() for text
 * starting "-----", base64-decoding plus d2i_PrivateKey_bio() for "MII...",
 * d2i_PrivateKey_bio() for anything else). OpenSSL 3.0's decoder makes that
 * 4.2 to 4.5 million instructions, PEM or DER alike: 80% of an Ed25519
 * signature. A freshly decoded RSA key also rebuilds its blinding values
 * on first use (another 4.6 million). And dkim_free() frees the decoded
 * key and its signature buffer only for RSA: every Ed25519 signature leaks
 * an EVP_PKEY (~420 bytes with its key data) and a 64-byte buffer.
 *
 * How: signer.c gives dkim_sign() a token instead of the key text (see
 * mxdkim_handoff_token), so dkim_privkey_load() calls d2i_PrivateKey_bio()
 * for it. This file defines d2i_PrivateKey_bio(): a definition in the
 * executable comes first in the dynamic linker's search order, so the call
 * libopendkim.so makes through its PLT lands here (ELF symbol interposition;
 * an executable with no versions of its own satisfies the versioned
 * reference). While the thread is armed (only around dkim_eom() in
 * signer.c), the BIO holding the armed token gets the parsed key with one
 * more reference: no decoding, and an RSA key keeps its blinding across
 * signatures. Every other call is passed on unchanged to OpenSSL's
 * d2i_PrivateKey_ex_bio(), which is all d2i_PrivateKey_bio() does in
 * OpenSSL 3. libopendkim still canonicalises, hashes, builds the header and
 * makes the signature with OpenSSL: the signatures are the same bytes.
 *
 * The leaks: the 64-byte buffer is allocated through the allocator a
 * DKIM_LIB may be given (dkim_init), so a per-signature arena catches it.
 * The key reference libopendkim keeps is dropped by signer.c after
 * dkim_free(), but only for an algorithm for which the probe saw
 * libopendkim not free the key itself (a later libopendkim that frees it is
 * noticed, and nothing is freed twice). If the interposition does not take
 * (another libopendkim, a static link), the probe sees the token not used
 * and signer.c signs with the key text as before.
 *
 * Must never: log, or return a key for a BIO it did not recognise.
 * Threads: the armed state is per thread; the probe results are atomics.
 */
#include "dkim/handoff.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

/* ---- arena ---------------------------------------------------------------------------- */

/* a header before every block, so free finds its list whatever closure it is given */
union hdr {
	struct mxdkim_blk link; /* prev == NULL: not tracked */
	max_align_t align;
};

void
mxdkim_arena_init(struct mxdkim_arena *a)
{
	a->head.prev = a->head.next = &a->head;
}

void *
mxdkim_arena_malloc(void *closure, size_t n)
{
	struct mxdkim_arena *a = closure;
	union hdr *h;

	if (n > SIZE_MAX - sizeof *h)
		return NULL;
	h = malloc(sizeof *h + n);
	if (h == NULL)
		return NULL;
	if (a == NULL) {
		h->link.prev = h->link.next = NULL;
	} else {
		h->link.next = a->head.next;
		h->link.prev = &a->head;
		a->head.next->prev = &h->link;
		a->head.next = &h->link;
	}
	return h + 1;
}

void
mxdkim_arena_free(void *closure, void *p)
{
	union hdr *h;

	(void)closure;
	if (p == NULL)
		return;
	h = (union hdr *)p - 1;
	if (h->link.prev != NULL) {
		h->link.prev->next = h->link.next;
		h->link.next->prev = h->link.prev;
	}
	free(h);
}

size_t
mxdkim_arena_release(struct mxdkim_arena *a)
{
	size_t n = 0;

	while (a->head.next != &a->head) {
		union hdr *h = (union hdr *)(void *)a->head.next;

		a->head.next = h->link.next;
		free(h);
		n++;
	}
	a->head.prev = &a->head;
	return n;
}

/* ---- the hand-off --------------------------------------------------------------------- */

static __thread struct {
	const char *token;
	size_t len;
	EVP_PKEY *pkey;
	bool transfer;
	int taken;
} armed;

void
mxdkim_handoff_token(const EVP_PKEY *pkey, char *buf, size_t buflen)
{
	snprintf(buf, buflen, "mxdkim-key:%llx", (unsigned long long)(uintptr_t)pkey);
}

void
mxdkim_handoff_arm(const char *token, EVP_PKEY *pkey, bool transfer)
{
	armed.token = token;
	armed.len = strlen(token);
	armed.pkey = pkey;
	armed.transfer = transfer;
	armed.taken = 0;
}

int
mxdkim_handoff_disarm(void)
{
	int n = armed.taken;

	armed.token = NULL;
	armed.pkey = NULL;
	armed.taken = 0;
	return n;
}

/* true when bp is a memory BIO whose unread content is exactly the armed token */
static bool
holds_token(BIO *bp)
{
	char *data = NULL;
	long n;

	if (bp == NULL || BIO_method_type(bp) != BIO_TYPE_MEM)
		return false;
	n = BIO_get_mem_data(bp, &data);
	return n >= 0 && (size_t)n == armed.len && data != NULL &&
	       memcmp(data, armed.token, armed.len) == 0;
}

/* Interposes OpenSSL's function of the same name (see the top of this file). */
EVP_PKEY *
d2i_PrivateKey_bio(BIO *bp, EVP_PKEY **a)
{
	EVP_PKEY *k;

	if (armed.token == NULL || a != NULL || !holds_token(bp))
		return d2i_PrivateKey_ex_bio(bp, a, NULL, NULL);
	k = armed.pkey;
	if (k == NULL)
		return NULL; /* a transferred key was taken already */
	if (armed.transfer)
		armed.pkey = NULL;
	else if (EVP_PKEY_up_ref(k) != 1)
		return NULL;
	armed.taken++;
	return k;
}

/* ---- the probe ------------------------------------------------------------------------ */

static pthread_once_t marker_once = PTHREAD_ONCE_INIT;
static int marker_idx = -1;
/* per algorithm: 0 not known yet, 1 libopendkim frees the key, 2 it does not */
static int lib_frees[3];

/* ex_data free callback: runs for every EVP_PKEY freed; only ours carry a pointer */
static void
marker_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (ptr != NULL)
		*(int *)ptr = 1;
}

static void
marker_init(void)
{
	marker_idx =
	    CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_EVP_PKEY, 0, NULL, NULL, NULL, marker_free);
}

bool
mxdkim_handoff_lib_frees(enum mxdkim_alg alg)
{
	int v = alg == MXDKIM_ED25519 || alg == MXDKIM_RSA
	            ? __atomic_load_n(&lib_frees[alg], __ATOMIC_ACQUIRE)
	            : 0;

	return v != 2;
}

int
mxdkim_handoff_probe_start(struct mxdkim_probe *p, const EVP_PKEY *pkey)
{
	p->freed = 0;
	pthread_once(&marker_once, marker_init);
	p->copy = marker_idx >= 0 ? EVP_PKEY_dup((EVP_PKEY *)pkey) : NULL;
	if (p->copy == NULL)
		return -1;
	if (EVP_PKEY_set_ex_data(p->copy, marker_idx, &p->freed) != 1) {
		EVP_PKEY_free(p->copy);
		p->copy = NULL;
		return -1;
	}
	return 0;
}

int
mxdkim_handoff_probe_record(struct mxdkim_probe *p, enum mxdkim_alg alg, int taken, bool signed_ok)
{
	int lib_freed = p->freed;

	if (taken == 0) {
		EVP_PKEY_free(p->copy); /* never given away */
		p->copy = NULL;
		return -1;
	}
	if (!lib_freed)
		EVP_PKEY_free(p->copy);
	p->copy = NULL;
	if (!signed_ok)
		return -1;
	if (alg == MXDKIM_ED25519 || alg == MXDKIM_RSA)
		__atomic_store_n(&lib_frees[alg], lib_freed ? 1 : 2, __ATOMIC_RELEASE);
	return 0;
}
