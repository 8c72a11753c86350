/*
 * dkim/signer: DKIM signatures for outgoing messages, on libopendkim.
 *
 * Owns: the table domain -> list of (selector, key) (one signature per key,
 * so a domain with an RSA and an Ed25519 key is dual-signed, RFC 8463 3), the
 * signing policy (rsa-sha256 / ed25519-sha256 only, c=relaxed/relaxed, t=
 * but no x= and no l=, the header list and oversigning below) and the
 * libopendkim library handle.
 *
 * Header fields signed when present: From, Subject, Date, To, Cc,
 * Message-ID, Reply-To, In-Reply-To, References, MIME-Version,
 * Content-Type, Content-Transfer-Encoding, List-*. Oversigned (listed in
 * h= once more than they occur, RFC 6376 8.15, so none can be added later
 * without breaking the signature; an absent one is signed as absent): From,
 * Subject, Date, To, Message-ID, MIME-Version, Content-Type. Never signed:
 * Received, Return-Path and everything else. Consequence for callers: any
 * Date or Message-ID the relay adds must be added before signing.
 *
 * Must never: log, touch the event loop, use rsa-sha1 (RFC 8301 3.1).
 *
 * Threads: build the signer (new + add) on one thread before anyone signs;
 * after that mxdkim_sign may run on any number of threads at once with the
 * same signer (every call uses its own libopendkim handles; the shared
 * DKIM_LIB is only read, which is how the opendkim milter uses it from its
 * threads). mxdkim_signer_free only once no sign call is running.
 */
#ifndef MXRELAY_DKIM_SIGNER_H
#define MXRELAY_DKIM_SIGNER_H

#include <stdbool.h>
#include <stddef.h>

#include "dkim/keys.h"

struct mxdkim_signer;

/* A signer with no domains; NULL when libopendkim cannot be set up (or ENOMEM). */
struct mxdkim_signer *mxdkim_signer_new(void);

/*
 * How keys reach libopendkim. MXDKIM_KEYS_PARSED (the default): handed over
 * parsed, once (dkim/handoff.c). For measurements (bench_dkim -k) the ways
 * libopendkim's API offers, which decode the key again for every signature
 * (and leak with Ed25519): MXDKIM_KEYS_PEM, the PEM text; MXDKIM_KEYS_DER,
 * base64 of the DER (libopendkim takes DER only as base64 text starting
 * "MII", which only RSA keys do: an Ed25519 key is then refused by add).
 * Set before the first mxdkim_signer_add.
 */
enum mxdkim_keymode {
	MXDKIM_KEYS_PARSED = 0,
	MXDKIM_KEYS_PEM = 1,
	MXDKIM_KEYS_DER = 2,
};
void mxdkim_signer_keymode(struct mxdkim_signer *s, enum mxdkim_keymode mode);

/* Frees the signer and every key given to it. NULL is a no-op. */
void mxdkim_signer_free(struct mxdkim_signer *s);

/*
 * Sign mail from domain (the From: domain; case and a trailing dot do not
 * matter; IDNs in A-label form) with key under selector. The signer owns
 * key from this call on, also when the call fails (key is freed then).
 * Refused: an RSA key under 2048 bits (RFC 8301 3.2), a selector or domain
 * that is not an ASCII DNS name, the same selector twice for a domain.
 * Signatures come out in the order the keys were added.
 */
int mxdkim_signer_add(struct mxdkim_signer *s, const char *domain, const char *selector,
                      struct mxdkim_key *key, char *err, size_t errlen);

/*
 * true when every key is given to libopendkim parsed (dkim/handoff.c);
 * false when the hand-off does not reach this libopendkim and some key is
 * given as text: each signature with it then parses the key again (about
 * 1 ms), and an Ed25519 one leaks about 0.5 KB inside libopendkim.
 */
bool mxdkim_signer_parsed_once(const struct mxdkim_signer *s);

/* true when domain has at least one key */
bool mxdkim_signer_has(const struct mxdkim_signer *s, const char *domain);

/* number of signatures mxdkim_sign makes for domain (0 when it has no key) */
int mxdkim_signer_count(const struct mxdkim_signer *s, const char *domain);

/*
 * Sign msg (len bytes: the whole message, header and body, with CRLF line
 * ends as the spool holds it) for domain. On success *headers is a
 * malloc'ed string of one "DKIM-Signature: ...\r\n" field per key of the
 * domain, folded, to be written in front of msg; the caller frees it.
 * A message whose last line has no CRLF is signed as if it had one, since
 * that is what DATA transmits (RFC 5321 4.1.1.4). The message needs a
 * From: field (RFC 6376 5.4). -1 with err on failure, *headers NULL.
 */
int mxdkim_sign(const struct mxdkim_signer *s, const char *domain, const char *msg, size_t len,
                char **headers, char *err, size_t errlen);

#endif
