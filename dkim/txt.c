/*
 * dkim/txt.c: zone-file lines for DKIM key records and the check of a
 * published record against a private key (see txt.h).
 */
#include "dkim/txt.h"
#include "dkim/mxdkim_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define TXT_STRING_MAX 255 /* RFC 1035 3.3: one character-string */
#define TAGS_MAX 32        /* a key record has a handful of tags */

/* ---- zone line ---- */

bool
mxdkim_dns_name_ok(const char *s, bool allow_trailing_dot)
{
	size_t n = strlen(s), i;

	if (allow_trailing_dot && n > 1 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
		if (c == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

int
mxdkim_txt_zone_line(const char *selector, const char *domain, const char *value, char **out)
{
	size_t dlen, vlen, cap, pos = 0, i, in_chunk = 0;
	char *buf;
	int n;

	*out = NULL;
	if (selector == NULL || domain == NULL || value == NULL ||
	    !mxdkim_dns_name_ok(selector, false) || !mxdkim_dns_name_ok(domain, true)) {
		errno = EINVAL;
		return -1;
	}
	dlen = strlen(domain);
	if (domain[dlen - 1] == '.')
		dlen--;
	vlen = strlen(value);
	/* name + " IN TXT ( " + every byte escaped + quotes and a space per chunk + " )" */
	cap = strlen(selector) + dlen + 32 + 2 * vlen + 3 * (vlen / TXT_STRING_MAX + 1) + 4;
	buf = malloc(cap);
	if (buf == NULL)
		return -1;
	n = snprintf(buf, cap, "%s._domainkey.%.*s. IN TXT ( \"", selector, (int)dlen, domain);
	pos = (size_t)n;
	for (i = 0; i < vlen; i++) {
		if (in_chunk == TXT_STRING_MAX) {
			memcpy(buf + pos, "\" \"", 3);
			pos += 3;
			in_chunk = 0;
		}
		if (value[i] == '"' || value[i] == '\\')
			buf[pos++] = '\\';
		buf[pos++] = value[i];
		in_chunk++;
	}
	memcpy(buf + pos, "\" )", 4);
	*out = buf;
	return 0;
}

/* ---- reading a published record ---- */

/*
 * The record text with zone-file quoting undone: when txt holds '"', the
 * contents of the quoted strings joined (RFC 1035 5.1 escapes \X and \DDD
 * decoded), otherwise txt as it is. malloc'ed.
 */
static char *
unquote(const char *txt)
{
	size_t n = strlen(txt), o = 0, i;
	char *out = malloc(n + 1);
	bool in = false;

	if (out == NULL)
		return NULL;
	if (strchr(txt, '"') == NULL) {
		memcpy(out, txt, n + 1);
		return out;
	}
	for (i = 0; i < n; i++) {
		if (txt[i] == '"') {
			in = !in;
		} else if (in && txt[i] == '\\' && i + 1 < n) {
			if (isdigit((unsigned char)txt[i + 1]) && i + 3 < n &&
			    isdigit((unsigned char)txt[i + 2]) &&
			    isdigit((unsigned char)txt[i + 3])) {
				out[o++] = (char)((txt[i + 1] - '0') * 100 +
				                  (txt[i + 2] - '0') * 10 + (txt[i + 3] - '0'));
				i += 3;
			} else {
				out[o++] = txt[++i];
			}
		} else if (in) {
			out[o++] = txt[i];
		}
	}
	out[o] = '\0';
	return out;
}

struct tag {
	char *name;
	char *value;
};

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char *
mxdkim_fws_trim(char *s)
{
	char *e;

	while (is_fws(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_fws(e[-1]))
		*--e = '\0';
	return s;
}

/* Split s (modified) into tags; RFC 6376 3.2. -1 with why on a malformed list. */
static int
parse_tags(char *s, struct tag *tags, int *ntags, char *why, size_t whylen)
{
	char *save = NULL, *spec, *eq;
	int n = 0, i;

	for (spec = strtok_r(s, ";", &save); spec != NULL; spec = strtok_r(NULL, ";", &save)) {
		spec = mxdkim_fws_trim(spec);
		if (*spec == '\0')
			continue; /* a trailing ';' (or ';;') */
		eq = strchr(spec, '=');
		if (eq == NULL)
			return mxdkim_fail(why, whylen, "not a DKIM tag-list: \"%.40s\" has no '='",
			                   spec);
		*eq = '\0';
		if (n == TAGS_MAX)
			return mxdkim_fail(why, whylen, "more than %d tags", TAGS_MAX);
		tags[n].name = mxdkim_fws_trim(spec);
		tags[n].value = mxdkim_fws_trim(eq + 1);
		if (tags[n].name[0] == '\0')
			return mxdkim_fail(why, whylen, "not a DKIM tag-list: a tag has no name");
		for (i = 0; i < n; i++)
			if (strcmp(tags[i].name, tags[n].name) == 0)
				return mxdkim_fail(why, whylen, "duplicate tag %s= (RFC 6376 3.2)",
				                   tags[n].name);
		n++;
	}
	*ntags = n;
	return 0;
}

static const char *
tag_get(const struct tag *tags, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(tags[i].name, name) == 0)
			return tags[i].value;
	return NULL;
}

/* true when the colon-separated list holds one of want1/want2 (case-insensitive) */
static bool
list_has(const char *list, const char *want1, const char *want2)
{
	char buf[256], *save = NULL, *item;

	snprintf(buf, sizeof buf, "%s", list);
	for (item = strtok_r(buf, ":", &save); item != NULL; item = strtok_r(NULL, ":", &save)) {
		item = mxdkim_fws_trim(item);
		if (strcasecmp(item, want1) == 0 || (want2 != NULL && strcasecmp(item, want2) == 0))
			return true;
	}
	return false;
}

/* A p= that is not the key's SPKI/raw form: say what it is. */
static int
explain_mismatch(const struct mxdkim_key *k, const unsigned char *p, size_t plen, char *why,
                 size_t whylen)
{
	const unsigned char *q = p;
	EVP_PKEY *pk;
	unsigned char *der = NULL;
	int n = -1;

	if (k->alg == MXDKIM_ED25519) {
		/* SPKI of an Ed25519 key: 12 bytes of header, then the raw key */
		if (plen == 44 && memcmp(p + 12, k->pub, 32) == 0)
			return mxdkim_fail(
			    why, whylen,
			    "p= holds this key as a SubjectPublicKeyInfo; RFC 8463 "
			    "wants the raw 32 bytes (publish mxdkim_key_txt's value)");
		if (plen != 32)
			return mxdkim_fail(why, whylen,
			                   "p= is %zu bytes, not a 32-byte Ed25519 key", plen);
		return mxdkim_fail(why, whylen, "p= is a different key than the private key");
	}
	pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)plen); /* PKCS#1 RSAPublicKey? */
	if (pk != NULL)
		n = i2d_PUBKEY(pk, &der);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	if (n > 0 && (size_t)n == k->publen && memcmp(der, k->pub, k->publen) == 0) {
		OPENSSL_free(der);
		return mxdkim_fail(
		    why, whylen,
		    "p= holds this key as a PKCS#1 RSAPublicKey; verifiers want "
		    "the SubjectPublicKeyInfo form (publish mxdkim_key_txt's value)");
	}
	OPENSSL_free(der);
	return mxdkim_fail(why, whylen, "p= is a different key than the private key");
}

static int
check_tags(const struct mxdkim_key *k, const struct tag *tags, int n, char *why, size_t whylen)
{
	const char *v = tag_get(tags, n, "v"), *kt = tag_get(tags, n, "k");
	const char *h = tag_get(tags, n, "h"), *s = tag_get(tags, n, "s");
	const char *p = tag_get(tags, n, "p");
	unsigned char *raw;
	size_t rawlen;
	int rc;

	if (v != NULL && strcmp(v, "DKIM1") != 0)
		return mxdkim_fail(why, whylen, "v=%.20s: a key record says v=DKIM1", v);
	if (kt == NULL)
		kt = "rsa"; /* RFC 6376 3.6.1: k= defaults to rsa */
	if (strcasecmp(kt, mxdkim_alg_name(k->alg)) != 0)
		return mxdkim_fail(why, whylen, "wrong k=: record says k=%.20s, the key is %s%s",
		                   kt, mxdkim_alg_name(k->alg),
		                   tag_get(tags, n, "k") == NULL ? " (no k= means rsa)" : "");
	if (h != NULL && !list_has(h, "sha256", NULL))
		return mxdkim_fail(why, whylen, "h=%.40s does not allow sha256", h);
	if (s != NULL && !list_has(s, "email", "*"))
		return mxdkim_fail(why, whylen, "s=%.40s excludes email", s);
	if (p == NULL)
		return mxdkim_fail(why, whylen, "no p= tag");
	raw = mxdkim_b64_decode(p, strlen(p), &rawlen);
	if (raw == NULL)
		return mxdkim_fail(why, whylen,
		                   errno == ENOMEM ? "out of memory" : "p= is not valid base64");
	if (rawlen == 0)
		rc = mxdkim_fail(why, whylen, "key revoked (empty p=, RFC 6376 3.6.1)");
	else if (rawlen == k->publen && memcmp(raw, k->pub, rawlen) == 0)
		rc = 0;
	else
		rc = explain_mismatch(k, raw, rawlen, why, whylen);
	free(raw);
	return rc;
}

int
mxdkim_txt_matches(const struct mxdkim_key *k, const char *published_txt, char *why, size_t whylen)
{
	struct tag tags[TAGS_MAX];
	char *text;
	int n = 0, rc;

	if (published_txt == NULL)
		return mxdkim_fail(why, whylen, "no record");
	text = unquote(published_txt);
	if (text == NULL)
		return mxdkim_fail(why, whylen, "out of memory");
	rc = parse_tags(text, tags, &n, why, whylen);
	if (rc == 0 && n == 0)
		rc = mxdkim_fail(why, whylen, "empty record");
	if (rc == 0)
		rc = check_tags(k, tags, n, why, whylen);
	free(text);
	return rc;
}
