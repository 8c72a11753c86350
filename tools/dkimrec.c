/*
 * tools/dkimrec: DKIM key records as a verifier reads them (see
 * tools/dkimrec.h).
 *
 * A verifier (dkimpy, Mail::DKIM, OpenDKIM) refuses the whole record when
 * the tag-list does not parse (RFC 6376 3.2, 6.1.2), and refuses the key
 * when k=, h=, s= or p= rule it out (3.6.1). Panels that take a zone-file
 * line literally leave recognisable marks; they are named before the
 * tag-list is read, since the tag errors they cause say nothing useful.
 */
#include "tools/dkimrec.h"

#include "dkim/keys.h"
#include "dkim/txt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define TXT_STRING_MAX 255 /* RFC 1035 3.3: one character-string */

struct tag {
	const char *name;
	const char *value;
};

static void __attribute__((format(printf, 3, 4)))
note(struct dkimrec *r, bool fail, const char *fmt, ...)
{
	va_list ap;

	if (r->nnotes == DKIMREC_NOTES_MAX)
		return;
	r->notes[r->nnotes].fail = fail;
	va_start(ap, fmt);
	vsnprintf(r->notes[r->nnotes].text, sizeof r->notes[0].text, fmt, ap);
	va_end(ap);
	r->nnotes++;
}

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 6376 3.2: tag-name = ALPHA *ALNUMPUNC */
static bool
name_ok(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* RFC 6376 3.2: VALCHAR = %x21-3A / %x3C-7E, with FWS between them */
static bool
value_ok(const char *s)
{
	for (; *s; s++)
		if (!is_fws(*s) && ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e))
			return false;
	return true;
}

/* Split s (modified) into tags; false with a note on a malformed list. */
static bool
split_tags(char *s, struct tag *tags, int *ntags, struct dkimrec *r)
{
	char *spec = s, *end, *eq;
	int n = 0;

	for (; spec != NULL; spec = end) {
		end = strchr(spec, ';');
		if (end != NULL)
			*end++ = '\0';
		spec = mxdkim_fws_trim(spec);
		if (*spec == '\0')
			continue; /* a trailing ';' */
		eq = strchr(spec, '=');
		if (eq == NULL) {
			note(r, true, "not a DKIM tag-list: \"%.40s\" has no '=' (RFC 6376 3.2)",
			     spec);
			return false;
		}
		*eq = '\0';
		tags[n].name = mxdkim_fws_trim(spec);
		tags[n].value = mxdkim_fws_trim(eq + 1);
		if (!name_ok(tags[n].name) || !value_ok(tags[n].value)) {
			note(r, true, "not a DKIM tag-list: bad tag \"%.40s\" (RFC 6376 3.2)",
			     tags[n].name);
			return false;
		}
		for (int i = 0; i < n; i++)
			if (strcmp(tags[i].name, tags[n].name) == 0) {
				note(r, true,
				     "tag %.20s= appears twice, which invalidates the whole record "
				     "(RFC 6376 3.2)",
				     tags[n].name);
				return false;
			}
		n++; /* tags has room for every ';'-separated part: none goes unexamined */
	}
	*ntags = n;
	return true;
}

static const char *
tag_get(const struct tag *tags, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(tags[i].name, name) == 0)
			return tags[i].value;
	return NULL;
}

/* true when the colon-separated list holds want1 or want2 (case-insensitive, FWS around items) */
static bool
list_has(const char *list, const char *want1, const char *want2)
{
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, ':'), *s = p;
		size_t len;

		if (e == NULL)
			e = p + strlen(p);
		while (s < e && is_fws(*s))
			s++;
		len = (size_t)(e - s);
		while (len > 0 && is_fws(s[len - 1]))
			len--;
		if ((len == strlen(want1) && strncasecmp(s, want1, len) == 0) ||
		    (want2 != NULL && len == strlen(want2) && strncasecmp(s, want2, len) == 0))
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

/* p= of a k=rsa record: a SubjectPublicKeyInfo of >= 1024 bits (RFC 8301 3.2). */
static void
rsa_key(struct dkimrec *r, const unsigned char *der, size_t len, size_t txtlen)
{
	const unsigned char *q = der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)len);

	if (pk == NULL || q != der + len) {
		EVP_PKEY_free(pk);
		q = der;
		pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)len);
		if (pk != NULL && q == der + len)
			note(r, true,
			     "p= is a PKCS#1 RSAPublicKey; verifiers want the SubjectPublicKeyInfo "
			     "form (RFC 6376 3.6.1)");
		else if (txtlen == TXT_STRING_MAX)
			note(r, true,
			     "p= is cut short: the record is exactly 255 bytes, only the first "
			     "character-string was published (RFC 6376 3.6.2.2: a longer record is "
			     "several strings in ONE TXT record)");
		else
			note(r, true,
			     "p= does not decode as an RSA public key (truncated or corrupted, "
			     "RFC 6376 3.6.1)");
	} else if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
		note(r, true, "p= holds a %s key, not the RSA key k=rsa announces (RFC 6376 3.6.1)",
		     OBJ_nid2sn(EVP_PKEY_get_base_id(pk)));
	} else {
		r->bits = EVP_PKEY_get_bits(pk);
		if (r->bits < 1024)
			note(r, true,
			     "RSA key of %d bits: verifiers refuse keys under 1024 bits "
			     "(RFC 8301 3.2)",
			     r->bits);
		else if (r->bits < 2048)
			note(r, false,
			     "RSA key of %d bits: signers SHOULD use 2048 or more (RFC 8301 3.2)",
			     r->bits);
	}
	EVP_PKEY_free(pk);
	ERR_clear_error();
}

/* p= of a k=ed25519 record: the raw 32-byte key (RFC 8463 4.2). */
static void
ed25519_key(struct dkimrec *r, size_t len)
{
	if (len == 32)
		r->bits = 256;
	else if (len == 44)
		note(r, true,
		     "p= is 44 bytes, an Ed25519 SubjectPublicKeyInfo; RFC 8463 4.2 wants the "
		     "raw 32-byte key");
	else
		note(r, true, "p= is %zu bytes; an Ed25519 key is 32 (RFC 8463 4.2)", len);
}

static void
check_p(struct dkimrec *r, const char *p, size_t txtlen)
{
	unsigned char *der;
	size_t len = 0;

	if (p == NULL) {
		note(r, true, "no p= tag (it is required, RFC 6376 3.6.1)");
		return;
	}
	der = mxdkim_b64_decode(p, strlen(p), &len);
	if (der == NULL && txtlen == TXT_STRING_MAX) {
		note(r, true,
		     "p= is cut short: the record is exactly 255 bytes, only the first "
		     "character-string was published (RFC 6376 3.6.2.2: a longer record is several "
		     "strings in ONE TXT record)");
		return;
	}
	if (der == NULL) {
		note(r, true, "p= is not base64 (RFC 6376 3.6.1)");
		return;
	}
	if (len == 0) {
		r->revoked = true;
		note(r, true, "empty p=: the key is revoked (RFC 6376 3.6.1)");
	} else if (r->k == DKIMREC_K_RSA) {
		rsa_key(r, der, len, txtlen);
	} else if (r->k == DKIMREC_K_ED25519) {
		ed25519_key(r, len);
	}
	free(der);
}

static void
check_tags(struct dkimrec *r, const struct tag *tags, int n, size_t txtlen)
{
	const char *v = tag_get(tags, n, "v"), *k = tag_get(tags, n, "k");
	const char *h = tag_get(tags, n, "h"), *s = tag_get(tags, n, "s");
	const char *t = tag_get(tags, n, "t");

	if (v != NULL && strcmp(v, "DKIM1") != 0)
		note(r, true, "v=%.20s: when present, v= is exactly DKIM1 (RFC 6376 3.6.1)", v);
	else if (v != NULL && strcmp(tags[0].name, "v") != 0)
		note(r, false,
		     "v=DKIM1 is not the first tag: RFC 6376 3.6.1 requires it first (verifiers "
		     "tested here tolerate it)");
	for (int i = 0; i < n; i++)
		if ((strcmp(tags[i].name, "h") == 0 || strcmp(tags[i].name, "s") == 0 ||
		     strcmp(tags[i].name, "t") == 0) &&
		    strpbrk(tags[i].value, " \t\r\n") != NULL)
			note(r, false,
			     "%s=%.40s: RFC 6376 3.6.1 allows spaces around ':', but Mail::DKIM "
			     "then "
			     "refuses the record: write the list without spaces",
			     tags[i].name, tags[i].value);
	if (k == NULL || strcmp(k, "rsa") == 0) {
		r->k = DKIMREC_K_RSA;
	} else if (strcmp(k, "ed25519") == 0) {
		r->k = DKIMREC_K_ED25519;
	} else {
		r->k = DKIMREC_K_OTHER;
		note(r, true,
		     "k=%.20s: not a key type verifiers know (rsa, ed25519; RFC 6376 3.6.1, "
		     "RFC 8463)",
		     k);
	}
	if (h != NULL && !list_has(h, "sha256", NULL))
		note(r, true, "h=%.40s does not allow sha256, the relay's hash (RFC 6376 3.6.1)",
		     h);
	if (s != NULL && !list_has(s, "email", "*"))
		note(r, true, "s=%.40s excludes email (RFC 6376 3.6.1: * or email)", s);
	if (t != NULL && list_has(t, "y", NULL)) {
		r->testing = true;
		note(r, false,
		     "t=y: testing mode, receivers may treat failing signatures as unsigned "
		     "(RFC 6376 3.6.1)");
	}
	r->strict = t != NULL && list_has(t, "s", NULL); /* fine: d= is the From domain */
	check_p(r, tag_get(tags, n, "p"), txtlen);
}

/* The marks of a panel that stored zone-file syntax as record text. */
static bool
panel_marks(struct dkimrec *r, const char *txt)
{
	size_t len = strlen(txt);

	while (len > 0 && is_fws(txt[len - 1]))
		len--;
	while (len > 0 && is_fws(*txt))
		txt++, len--;
	if (len >= 2 && txt[0] == '"' && txt[len - 1] == '"') {
		note(r, true,
		     "the value is wrapped in literal quotes (the DNS panel stored the zone-file "
		     "quotes as text, RFC 6376 3.6.2.2): publish it without them");
		return true;
	}
	if (strstr(txt, "\\;") != NULL) {
		note(
		    r, true,
		    "the semicolons are escaped with a backslash ('\\;'): the DNS panel stored the "
		    "escapes, publish plain ';' (RFC 6376 3.2)");
		return true;
	}
	return false;
}

int
dkimrec_parse(const char *txt, struct dkimrec *out)
{
	struct tag *tags;
	char *copy;
	int n = 0;
	size_t parts = 1;

	memset(out, 0, sizeof *out);
	if (panel_marks(out, txt))
		return -1;
	for (const char *p = txt; *p; p++)
		parts += *p == ';';
	copy = strdup(txt);
	tags = calloc(parts, sizeof *tags);
	if (copy == NULL || tags == NULL) {
		free(copy);
		free(tags);
		note(out, true, "out of memory");
		return -1;
	}
	if (split_tags(copy, tags, &n, out)) {
		if (n == 0)
			note(out, true, "empty record (RFC 6376 3.6.1: p= is required)");
		else
			check_tags(out, tags, n, strlen(txt));
	}
	free(tags);
	free(copy);
	for (size_t i = 0; i < out->nnotes; i++)
		if (out->notes[i].fail)
			return -1;
	return 0;
}

const char *
dkimrec_first(const struct dkimrec *r, bool *fail)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < r->nnotes; i++)
			if (r->notes[i].fail == (pass == 0)) {
				*fail = r->notes[i].fail;
				return r->notes[i].text;
			}
	*fail = false;
	return NULL;
}
