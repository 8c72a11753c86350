/*
 * dkim/signer.c: the domain -> keys table and signing through libopendkim
 * (see signer.h).
 *
 * libopendkim notes (2.11.0~beta2, Debian 12), checked against its source
 * and by tests:
 * - Without DKIM_OPTS_SIGNHDRS it signs every header field, Received
 *   included. The option takes a NULL-terminated array and len must be
 *   sizeof(char **), not the array's size (else DKIM_STAT_INVALID). Names
 *   become an anchored, case-insensitive regex; "*" becomes ".*".
 * - DKIM_OPTS_OVERSIGNHDRS appends each listed name once to h= after the
 *   fields present: exactly "one more than they occur".
 * - dkim_sign() takes the private key as text and parses it again for
 *   every message, and every Ed25519 signature leaks about 0.5 KB
 *   (dkim_free() releases the parsed key and its 64-byte output buffer
 *   only for RSA). handoff.c gives it the key parsed once instead and takes
 *   back what it leaks; every key is probed once when it is added.
 * - Threads: DKIM_LIB is only read after the options are set here; each
 *   dkim_sign() handle is private to its call; the regex of the header
 *   list is shared, and glibc's regexec() is MT-safe.
 * - dkim_eom() fails with "CRLF at end of body missing" when the last body
 *   line has no CRLF, hence the CRLF fed after such a message.
 * - dkim_getsighdr_d() returns the field value without "DKIM-Signature: ",
 *   folded with CRLF TAB, no trailing CRLF, in memory the handle owns.
 */
#include "dkim/signer.h"
#include "dkim/mxdkim_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <opendkim/dkim.h>

#define DOMAIN_KEYS_MAX 8
#define SIG_FIELD "DKIM-Signature"

/* RFC 6376 5.4.1 recommendations, restricted to what a relay's mail carries */
static const char *sign_hdrs[] = {
    "from",       "subject",      "date",         "to",
    "cc",         "message-id",   "reply-to",     "in-reply-to",
    "references", "mime-version", "content-type", "content-transfer-encoding",
    "list-*",     NULL,
};

/* RFC 6376 8.15: listed once more than they occur, so none can be added */
static const char *oversign_hdrs[] = {
    "from", "subject", "date", "to", "message-id", "mime-version", "content-type", NULL,
};

struct entry {
	char *selector;
	struct mxdkim_key *key;
};

struct domain {
	char *name; /* lower case, no trailing dot */
	struct entry keys[DOMAIN_KEYS_MAX];
	int nkeys;
};

struct mxdkim_signer {
	DKIM_LIB *lib;
	enum mxdkim_keymode keymode;
	struct domain *domains; /* sorted by name */
	size_t ndomains, cap;
};

struct mxdkim_signer *
mxdkim_signer_new(void)
{
	struct mxdkim_signer *s = calloc(1, sizeof *s);
	unsigned int minbits = MXDKIM_RSA_MIN_SIGN_BITS;

	if (s == NULL)
		return NULL;
	/* the arena allocator catches what dkim_free() leaves behind (handoff.h) */
	s->lib = dkim_init(mxdkim_arena_malloc, mxdkim_arena_free);
	if (s->lib == NULL ||
	    dkim_options(s->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, (void *)sign_hdrs,
	                 sizeof(char **)) != DKIM_STAT_OK ||
	    dkim_options(s->lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, (void *)oversign_hdrs,
	                 sizeof(char **)) != DKIM_STAT_OK ||
	    dkim_options(s->lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &minbits, sizeof minbits) !=
	        DKIM_STAT_OK) {
		mxdkim_signer_free(s);
		return NULL;
	}
	return s;
}

void
mxdkim_signer_free(struct mxdkim_signer *s)
{
	size_t i;
	int j;

	if (s == NULL)
		return;
	for (i = 0; i < s->ndomains; i++) {
		for (j = 0; j < s->domains[i].nkeys; j++) {
			free(s->domains[i].keys[j].selector);
			mxdkim_key_free(s->domains[i].keys[j].key);
		}
		free(s->domains[i].name);
	}
	free(s->domains);
	if (s->lib != NULL)
		dkim_close(s->lib);
	free(s);
}

/* domain lower-cased without its trailing dot into buf; false when not a DNS name */
static bool
normalise(const char *domain, char *buf, size_t buflen)
{
	size_t n, i;

	if (domain == NULL || !mxdkim_dns_name_ok(domain, true))
		return false;
	n = strlen(domain);
	if (domain[n - 1] == '.')
		n--;
	if (n >= buflen)
		return false;
	for (i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)domain[i]);
	buf[n] = '\0';
	return true;
}

/* index of name in s->domains, or -(insertion point) - 1 */
static long
find(const struct mxdkim_signer *s, const char *name)
{
	size_t lo = 0, hi = s->ndomains, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(name, s->domains[mid].name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -(long)lo - 1;
}

static struct domain *
lookup(const struct mxdkim_signer *s, const char *domain)
{
	char name[256];
	long at;

	if (!normalise(domain, name, sizeof name))
		return NULL;
	at = find(s, name);
	return at >= 0 ? &s->domains[at] : NULL;
}

/* the domain entry for name, created (sorted in) when new; NULL on ENOMEM */
static struct domain *
domain_slot(struct mxdkim_signer *s, const char *name)
{
	long at = find(s, name);
	size_t pos;
	struct domain *d;

	if (at >= 0)
		return &s->domains[at];
	pos = (size_t)(-at - 1);
	if (s->ndomains == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;

		d = realloc(s->domains, cap * sizeof *d);
		if (d == NULL)
			return NULL;
		s->domains = d;
		s->cap = cap;
	}
	d = &s->domains[pos];
	memmove(d + 1, d, (s->ndomains - pos) * sizeof *d);
	memset(d, 0, sizeof *d);
	d->name = strdup(name);
	if (d->name == NULL) {
		memmove(d, d + 1, (s->ndomains - pos) * sizeof *d);
		return NULL;
	}
	s->ndomains++;
	return d;
}

static void probe_key(DKIM_LIB *lib, const char *domain, struct entry *e);

void
mxdkim_signer_keymode(struct mxdkim_signer *s, enum mxdkim_keymode mode)
{
	s->keymode = mode;
}

/* MXDKIM_KEYS_DER: the base64 DER text libopendkim decodes itself ("MII...", RSA only) */
static int
der_text(struct mxdkim_key *k, char *err, size_t errlen)
{
	unsigned char *der = NULL;
	int n;

	if (k->alg != MXDKIM_RSA)
		return mxdkim_fail(err, errlen,
		                   "libopendkim takes DER only as base64 \"MII...\", "
		                   "which an Ed25519 key is not");
	n = i2d_PrivateKey(k->pkey, &der);
	if (n <= 0)
		return mxdkim_fail(err, errlen, "cannot encode the key as DER");
	k->der_b64 = mxdkim_b64_encode(der, (size_t)n);
	OPENSSL_clear_free(der, (size_t)n);
	if (k->der_b64 == NULL || strncmp(k->der_b64, "MII", 3) != 0)
		return mxdkim_fail(err, errlen,
		                   "the DER of this key does not start as libopendkim "
		                   "needs");
	return 0;
}

int
mxdkim_signer_add(struct mxdkim_signer *s, const char *domain, const char *selector,
                  struct mxdkim_key *key, char *err, size_t errlen)
{
	char name[256];
	struct domain *d;
	struct entry *e;
	int i;

	if (key == NULL)
		return mxdkim_fail(err, errlen, "no key");
	if (!normalise(domain, name, sizeof name)) {
		mxdkim_fail(err, errlen, "domain \"%.80s\" is not an ASCII DNS name", domain);
		goto fail;
	}
	if (selector == NULL || !mxdkim_dns_name_ok(selector, false)) {
		mxdkim_fail(err, errlen, "selector \"%.80s\" is not a DNS name (RFC 6376 3.1)",
		            selector ? selector : "");
		goto fail;
	}
	if (!mxdkim_key_can_sign(key)) {
		mxdkim_fail(err, errlen,
		            "%s: RSA key has %d bits; signing needs at least %d (RFC 8301 3.2; "
		            "1024-bit keys are for verifying old mail only)",
		            selector, key->bits, MXDKIM_RSA_MIN_SIGN_BITS);
		goto fail;
	}
	d = domain_slot(s, name);
	if (d == NULL) {
		mxdkim_fail(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < d->nkeys; i++) {
		if (strcasecmp(d->keys[i].selector, selector) == 0) {
			mxdkim_fail(err, errlen, "%s: selector %s given twice", name, selector);
			goto fail;
		}
	}
	if (d->nkeys == DOMAIN_KEYS_MAX) {
		mxdkim_fail(err, errlen, "%s: more than %d keys", name, DOMAIN_KEYS_MAX);
		goto fail;
	}
	if (s->keymode == MXDKIM_KEYS_DER && der_text(key, err, errlen) != 0)
		goto fail;
	e = &d->keys[d->nkeys];
	e->selector = strdup(selector);
	if (e->selector == NULL) {
		mxdkim_fail(err, errlen, "out of memory");
		goto fail;
	}
	e->key = key;
	d->nkeys++;
	key->handoff = false;
	if (s->keymode == MXDKIM_KEYS_PARSED)
		probe_key(s->lib, d->name, e);
	return 0;
fail:
	mxdkim_key_free(key);
	return -1;
}

bool
mxdkim_signer_parsed_once(const struct mxdkim_signer *s)
{
	size_t i;
	int j;

	for (i = 0; i < s->ndomains; i++)
		for (j = 0; j < s->domains[i].nkeys; j++)
			if (!s->domains[i].keys[j].key->handoff)
				return false;
	return true;
}

bool
mxdkim_signer_has(const struct mxdkim_signer *s, const char *domain)
{
	return mxdkim_signer_count(s, domain) > 0;
}

int
mxdkim_signer_count(const struct mxdkim_signer *s, const char *domain)
{
	const struct domain *d = lookup(s, domain);

	return d != NULL ? d->nkeys : 0;
}

struct outbuf {
	char *p;
	size_t len, cap;
};

static int
out_add(struct outbuf *o, const char *data, size_t len)
{
	if (o->len + len + 1 > o->cap) {
		size_t cap = (o->len + len + 1) * 2;
		char *p = realloc(o->p, cap);

		if (p == NULL)
			return -1;
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, data, len);
	o->len += len;
	o->p[o->len] = '\0';
	return 0;
}

/* How one signature gets its key: as text, or armed through the hand-off. */
struct keyuse {
	const char *text; /* for dkim_sign(): the token, or the PEM */
	EVP_PKEY *arm;    /* NULL: the text is the key itself */
	bool transfer;    /* the probe's copy goes to libopendkim for good */
	int taken;        /* out: times the hand-off gave the key */
};

/* dkim_eom() with the hand-off armed for this thread when ku says so */
static DKIM_STAT
eom(DKIM *h, struct keyuse *ku)
{
	DKIM_STAT st;

	if (ku->arm == NULL)
		return dkim_eom(h, NULL);
	mxdkim_handoff_arm(ku->text, ku->arm, ku->transfer);
	st = dkim_eom(h, NULL);
	ku->taken = mxdkim_handoff_disarm();
	return st;
}

/* One signature of msg with e, appended to out as a whole header field. */
static int
sign_one(DKIM_LIB *lib, const char *domain, const struct entry *e, struct keyuse *ku,
         const char *msg, size_t len, struct outbuf *out, char *err, size_t errlen)
{
	static const unsigned char id[] = "mxdkim"; /* libopendkim keeps the pointer */
	dkim_alg_t alg =
	    e->key->alg == MXDKIM_ED25519 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256;
	struct mxdkim_arena arena;
	DKIM_STAT st;
	DKIM *h;
	unsigned char *field = NULL;
	size_t flen = 0;
	int rc = -1;

	mxdkim_arena_init(&arena);
	h = dkim_sign(lib, id, &arena, (dkim_sigkey_t)ku->text, (const unsigned char *)e->selector,
	              (const unsigned char *)domain, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, alg,
	              -1, &st);
	if (h == NULL) {
		mxdkim_fail(err, errlen, "s=%s: dkim_sign: %s", e->selector, dkim_getresultstr(st));
		goto done;
	}
	st = dkim_chunk(h, (unsigned char *)msg, len);
	/* RFC 5321 4.1.1.4: DATA ends the last line with CRLF if the message didn't */
	if (st == DKIM_STAT_OK && len > 0 && msg[len - 1] != '\n')
		st = dkim_chunk(h, (unsigned char *)(msg[len - 1] == '\r' ? "\n" : "\r\n"),
		                msg[len - 1] == '\r' ? 1 : 2);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(h, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = eom(h, ku);
	if (st == DKIM_STAT_OK)
		st = dkim_getsighdr_d(h, sizeof SIG_FIELD ": " - 1, &field, &flen);
	if (st != DKIM_STAT_OK) {
		const char *why = dkim_geterror(h);

		mxdkim_fail(err, errlen, "s=%s: %s%s%s", e->selector, dkim_getresultstr(st),
		            why && *why ? ": " : "", why ? why : "");
		goto done;
	}
	if (out_add(out, SIG_FIELD ": ", sizeof SIG_FIELD ": " - 1) != 0 ||
	    out_add(out, (const char *)field, flen) != 0 || out_add(out, "\r\n", 2) != 0) {
		mxdkim_fail(err, errlen, "out of memory");
		goto done;
	}
	rc = 0;
done:
	if (h != NULL)
		dkim_free(h);
	mxdkim_arena_release(&arena); /* Ed25519: the 64-byte signature buffer */
	ERR_clear_error();            /* see keys.h: leave the thread's OpenSSL queue empty */
	return rc;
}

/* One signature with e's key, through the hand-off when the probe allowed it. */
static int
sign_key(DKIM_LIB *lib, const char *domain, const struct entry *e, const char *msg, size_t len,
         struct outbuf *out, char *err, size_t errlen)
{
	struct mxdkim_key *k = e->key;
	const char *text = k->handoff ? k->token : k->der_b64 ? k->der_b64 : k->pem;
	struct keyuse ku = {text, k->handoff ? k->pkey : NULL, false, 0};
	int rc = sign_one(lib, domain, e, &ku, msg, len, out, err, errlen);

	/*
	 * libopendkim kept the reference it was given (its Ed25519 path): drop
	 * it. Only after a signature that worked: its error paths differ, and
	 * a reference kept too many is a counter, one dropped too many a crash.
	 */
	if (ku.taken > 0 && rc == 0 && !mxdkim_handoff_lib_frees(k->alg))
		while (ku.taken-- > 0)
			EVP_PKEY_free(k->pkey);
	return rc;
}

/*
 * Sign a small message once with a copy of e's key given away through the
 * hand-off: sets e->key->handoff when that works, and teaches handoff.c
 * whether libopendkim frees such keys itself.
 */
static void
probe_key(DKIM_LIB *lib, const char *domain, struct entry *e)
{
	static const char msg[] = "From: <probe@probe.invalid>\r\nSubject: probe\r\n\r\nprobe\r\n";
	struct mxdkim_probe p;
	struct outbuf out = {0};
	struct keyuse ku = {e->key->token, NULL, true, 0};
	char err[256];
	int rc;

	if (mxdkim_handoff_probe_start(&p, e->key->pkey) != 0)
		return;
	ku.arm = p.copy;
	rc = sign_one(lib, domain, e, &ku, msg, sizeof msg - 1, &out, err, sizeof err);
	free(out.p);
	e->key->handoff = mxdkim_handoff_probe_record(&p, e->key->alg, ku.taken, rc == 0) == 0;
}

int
mxdkim_sign(const struct mxdkim_signer *s, const char *domain, const char *msg, size_t len,
            char **headers, char *err, size_t errlen)
{
	const struct domain *d = lookup(s, domain);
	struct outbuf out = {0};
	int i;

	*headers = NULL;
	if (d == NULL || d->nkeys == 0)
		return mxdkim_fail(err, errlen, "no DKIM key for domain %.255s",
		                   domain ? domain : "(null)");
	for (i = 0; i < d->nkeys; i++) {
		if (sign_key(s->lib, d->name, &d->keys[i], msg, len, &out, err, errlen) != 0) {
			free(out.p);
			return -1;
		}
	}
	*headers = out.p;
	return 0;
}
