/*
 * dkim/mxdkim_int.h: what the dkim/ files share (key internals, helpers). Not for callers
 * outside dkim/.
 */
#ifndef MXRELAY_DKIM_MXDKIM_INT_H
#define MXRELAY_DKIM_MXDKIM_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "dkim/handoff.h"
#include "dkim/keys.h"

struct mxdkim_key {
	enum mxdkim_alg alg;
	int bits;
	bool world_readable;
	/*
	 * The private key as NUL-terminated PKCS#8 PEM, normalised by OpenSSL:
	 * what libopendkim is given when the hand-off (handoff.c) does not
	 * reach it. Cleansed on free.
	 */
	char *pem;
	/* the parsed key, and the token that hands it to libopendkim (handoff.h) */
	EVP_PKEY *pkey;
	char token[MXDKIM_TOKEN_MAX];
	/* set by mxdkim_signer_add when the probe signature went through the hand-off */
	bool handoff;
	/* MXDKIM_KEYS_DER only: base64 of the DER, the text libopendkim is given */
	char *der_b64;
	/* public half: DER SubjectPublicKeyInfo (RSA) or the raw 32 bytes (Ed25519) */
	unsigned char *pub;
	size_t publen;
};

/* snprintf into err when err is not NULL and errlen > 0; always returns -1 */
int mxdkim_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* base64 (RFC 4648, padded, no line breaks) of len bytes; malloc'ed, NULL on ENOMEM */
char *mxdkim_b64_encode(const unsigned char *in, size_t len);

/*
 * true for a non-empty ASCII DNS name of at most 253 bytes: letters,
 * digits, '-', '_' and single dots between labels; a trailing dot is
 * accepted when allow_trailing_dot.
 */
bool mxdkim_dns_name_ok(const char *s, bool allow_trailing_dot);

#endif
