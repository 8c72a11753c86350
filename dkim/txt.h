/*
 * dkim/txt: the DKIM key record in DNS, written and checked.
 *
 * Owns: the zone-file line for a key record (character-strings of at most
 * 255 bytes, RFC 1035 3.3.14 / RFC 6376 3.6.2.2) and the check that a
 * published record matches a private key (the tag-list rules of RFC 6376
 * 3.2 and the key tags of 3.6.1). Used by mxrelayctl (dns dkim / dns check)
 * and by the daemon's start-up check.
 *
 * Must never: query DNS (the caller fetches the TXT text), log.
 */
#ifndef MXRELAY_DKIM_TXT_H
#define MXRELAY_DKIM_TXT_H

#include <stddef.h>

#include "dkim/keys.h"

/*
 * The zone-file line publishing value (normally from mxdkim_key_txt):
 *   SELECTOR._domainkey.DOMAIN. IN TXT ( "first 255 bytes" "next 255" ... )
 * A trailing dot on domain is accepted. '"' and '\' in value are escaped
 * (and counted as one byte for the 255-byte split). selector and domain
 * must be non-empty ASCII names (letters, digits, '-', '_', '.'); anything
 * else is -1 with errno EINVAL. *out is malloc'ed, the caller frees it.
 */
int mxdkim_txt_zone_line(const char *selector, const char *domain, const char *value, char **out);

/*
 * 0 when published_txt is a usable DKIM key record for k's public key.
 * published_txt is the record text as DNS returned it (strings already
 * joined) or as written in a zone file ("..." "..." joined, text outside
 * the quotes ignored). Tolerated: whitespace anywhere, tags in any order,
 * no v=, t= flags, unknown tags, p= without base64 padding.
 * -1 with a one-line reason in why: not a tag-list, duplicate tag, v= not
 * DKIM1, k= for another algorithm (k= absent means rsa), h= without sha256,
 * s= without email, no p=, empty p= (revoked), p= not base64, p= a
 * different key, or the right key in a form verifiers reject (a PKCS#1
 * RSAPublicKey, or an Ed25519 SubjectPublicKeyInfo instead of the raw 32
 * bytes of RFC 8463).
 */
int mxdkim_txt_matches(const struct mxdkim_key *k, const char *published_txt, char *why,
                       size_t whylen);

/*
 * s (modified) without the FWS (space, tab, CR, LF; RFC 6376 3.2) at either
 * end: the trailing FWS is cut with a NUL, the result points past the
 * leading FWS. How a tag-list's names and values are read.
 */
char *mxdkim_fws_trim(char *s);

#endif
