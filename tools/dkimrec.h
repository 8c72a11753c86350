/*
 * tools/dkimrec: a published DKIM key record (RFC 6376 3.6.1, RFC 8463,
 * RFC 8301) read the way a verifier reads it, for mxrelayctl dns check.
 *
 * Owns: the tag-list of RFC 6376 3.2 (FWS around tags and values, a tag
 * twice invalidates the record), every key tag (v h k n p s t), the
 * public key in p= (an RSA SubjectPublicKeyInfo of at least 1024 bits, or
 * the raw 32 bytes of an Ed25519 key) and the marks a DNS panel leaves on
 * a record (literal quotes, backslash-escaped semicolons, a key cut at
 * the 255-byte string boundary).
 *
 * Must never: query DNS, print, or compare with a private key (that is
 * dkim/txt's mxdkim_txt_matches). Pure: the same text gives the same
 * notes, whatever the bytes (a fuzz target feeds it anything).
 */
#ifndef MXRELAY_TOOLS_DKIMREC_H
#define MXRELAY_TOOLS_DKIMREC_H

#include <stdbool.h>
#include <stddef.h>

enum dkimrec_k {
	DKIMREC_K_RSA,     /* k=rsa, or no k= (the default) */
	DKIMREC_K_ED25519, /* k=ed25519 (RFC 8463) */
	DKIMREC_K_OTHER,   /* anything else: no verifier can use the key */
};

#define DKIMREC_NOTES_MAX 8

struct dkimrec_note {
	bool fail;      /* a verifier refuses the record (else a warning) */
	char text[240]; /* one line, naming the RFC section */
};

struct dkimrec {
	enum dkimrec_k k;
	bool revoked; /* empty p= (RFC 6376 3.6.1) */
	bool testing; /* t=y */
	bool strict;  /* t=s */
	int bits;     /* RSA modulus bits, 256 for Ed25519, 0 when p= did not decode */
	size_t nnotes;
	struct dkimrec_note notes[DKIMREC_NOTES_MAX];
};

/*
 * Read txt (the TXT record as DNS returned it, strings joined) into out.
 * 0 when a verifier can use the record (out->notes may still hold
 * warnings: t=y, an RSA key under 2048 bits); -1 when at least one note
 * is a failure. Notes past DKIMREC_NOTES_MAX are dropped.
 */
int dkimrec_parse(const char *txt, struct dkimrec *out);

/* The first failure note of r, else the first warning, else NULL. */
const char *dkimrec_first(const struct dkimrec *r, bool *fail);

#endif
