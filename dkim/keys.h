/*
 * dkim/keys: DKIM private keys (RSA and Ed25519) and their DNS records.
 *
 * Owns: generating a key file (PKCS#8 PEM, mode 0600), loading one (RSA or
 * Ed25519, detected from the file), the minimum sizes (RFC 8301: RSA keys
 * of 1024 bits or more may be loaded, signing needs 2048), and the TXT
 * record value "v=DKIM1; k=...; p=..." (RFC 6376 3.6.1, RFC 8463 4.2).
 * Shared by the daemon and mxrelayctl so both write and read keys the same
 * way.
 *
 * Must never: log, prompt for a pass phrase, or keep OpenSSL errors on the
 * thread's error queue after returning (the TLS code on the same thread
 * reads that queue). Functions return 0 / -1 and write one line of error
 * text into err (err may be NULL when errlen is 0).
 *
 * Thread safety: a loaded key is immutable; any number of threads may use
 * it at once. Free it only when nobody uses it any more.
 */
#ifndef MXRELAY_DKIM_KEYS_H
#define MXRELAY_DKIM_KEYS_H

#include <stdbool.h>
#include <stddef.h>

enum mxdkim_alg {
	MXDKIM_RSA = 1,     /* rsa-sha256 (never rsa-sha1: RFC 8301 3.1) */
	MXDKIM_ED25519 = 2, /* ed25519-sha256 (RFC 8463) */
};

#define MXDKIM_RSA_MIN_VERIFY_BITS 1024 /* RFC 8301 3.2: verifiers accept 1024 */
#define MXDKIM_RSA_MIN_SIGN_BITS 2048   /* RFC 8301 3.2: signers SHOULD use 2048 */
#define MXDKIM_RSA_MAX_BITS 4096        /* RFC 8301 3.2: verifiers need not go beyond */

#define MXDKIM_KEYGEN_OVERWRITE 0x1u /* replace an existing file (atomically) */

struct mxdkim_key;

/* "rsa" or "ed25519": the k= value of the algorithm; "?" for anything else. */
const char *mxdkim_alg_name(enum mxdkim_alg alg);

/*
 * Generate a key and write it to path as PKCS#8 PEM with mode 0600.
 * rsa_bits is used for MXDKIM_RSA only and must be 2048..4096 (0 = 2048).
 * Without MXDKIM_KEYGEN_OVERWRITE an existing path is an error and nothing
 * is written; with it the file is replaced by rename, so readers see the
 * old key or the new one, never half a file. The file is fsync'ed.
 */
int mxdkim_keygen(enum mxdkim_alg alg, int rsa_bits, const char *path, unsigned flags, char *err,
                  size_t errlen);

/*
 * Load a private key file (PEM: PKCS#8, PKCS#1 "RSA PRIVATE KEY"; not
 * encrypted). RSA keys under 1024 bits and other key types are refused; an
 * RSA key of 1024..2047 bits loads (its TXT record can be checked) but
 * mxdkim_signer_add refuses it. A file readable by group or other still
 * loads: mxdkim_key_world_readable() tells the caller to warn.
 * On success *out is a new key the caller frees with mxdkim_key_free (or
 * hands to mxdkim_signer_add); on failure *out is NULL.
 */
int mxdkim_key_load(struct mxdkim_key **out, const char *path, char *err, size_t errlen);

/* Same, from PEM text in memory (len bytes, no NUL needed); never world_readable. */
int mxdkim_key_from_pem(struct mxdkim_key **out, const char *pem, size_t len, char *err,
                        size_t errlen);

void mxdkim_key_free(struct mxdkim_key *k);

enum mxdkim_alg mxdkim_key_alg(const struct mxdkim_key *k);
int mxdkim_key_bits(const struct mxdkim_key *k);            /* RSA modulus; 256 for Ed25519 */
bool mxdkim_key_can_sign(const struct mxdkim_key *k);       /* Ed25519, or RSA >= 2048 */
bool mxdkim_key_world_readable(const struct mxdkim_key *k); /* file mode has any of 0044 */

/*
 * The TXT record value for the key's public half, on one line:
 * "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo DER>" or
 * "v=DKIM1; k=ed25519; p=<base64 of the raw 32-byte public key>" (RFC 8463
 * 4.2). *value is malloc'ed; the caller frees it.
 */
int mxdkim_key_txt(const struct mxdkim_key *k, char **value, char *err, size_t errlen);

/*
 * Decode len bytes of base64 (a key record's p=, RFC 6376 3.6.1), ignoring
 * whitespace and tolerating missing padding. Returns a malloc'ed buffer
 * (its length in *outlen; at least one byte is allocated even for empty
 * input), or NULL with errno EINVAL (not base64) or ENOMEM.
 */
unsigned char *mxdkim_b64_decode(const char *in, size_t len, size_t *outlen);

#endif
