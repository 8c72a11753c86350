/*
 * dkim/handoff.h: a parsed private key handed to libopendkim, and the
 * allocations it forgets, taken back (see handoff.c for why and how). Not
 * for callers outside dkim/.
 */
#ifndef MXRELAY_DKIM_HANDOFF_H
#define MXRELAY_DKIM_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "dkim/keys.h"

/*
 * Allocations libopendkim makes for one signing handle. Give one (on the
 * stack) as dkim_sign()'s memory closure, with mxdkim_arena_malloc/free as
 * the DKIM_LIB's allocator; after dkim_free(), mxdkim_arena_release() frees
 * what the library did not. Blocks allocated with no closure (the DKIM_LIB's
 * own) are not tracked.
 */
struct mxdkim_blk {
	struct mxdkim_blk *prev, *next;
};

struct mxdkim_arena {
	struct mxdkim_blk head; /* circular list of live blocks */
};

void mxdkim_arena_init(struct mxdkim_arena *a);
void *mxdkim_arena_malloc(void *closure, size_t n);
void mxdkim_arena_free(void *closure, void *p);
/* frees the blocks still live; returns how many there were */
size_t mxdkim_arena_release(struct mxdkim_arena *a);

/*
 * The text to give dkim_sign() as the key for pkey: "mxdkim-key:" and a
 * number unique to pkey in this process. libopendkim hands it to
 * d2i_PrivateKey_bio() (it is neither PEM nor base64 DER), which finds the
 * armed key below. buf must hold MXDKIM_TOKEN_MAX bytes.
 */
#define MXDKIM_TOKEN_MAX 48
void mxdkim_handoff_token(const EVP_PKEY *pkey, char *buf, size_t buflen);

/*
 * Arm this thread: until mxdkim_handoff_disarm(), a d2i_PrivateKey_bio()
 * of a memory BIO holding exactly token returns pkey. With transfer false
 * every such call gets a new reference (the key stays ours); with transfer
 * true the caller's one reference goes to the first call, later calls get
 * NULL. disarm returns how many calls got the key.
 */
void mxdkim_handoff_arm(const char *token, EVP_PKEY *pkey, bool transfer);
int mxdkim_handoff_disarm(void);

/*
 * Does dkim_free() drop the reference to the key libopendkim loaded for a
 * signature of alg? Learnt by mxdkim_handoff_probe_record() on the first
 * signature per algorithm; until then (and when it could not be learnt):
 * true, so a reference is never dropped twice (a leak at worst).
 */
bool mxdkim_handoff_lib_frees(enum mxdkim_alg alg);

/*
 * The probe: a fresh copy of the key, with a marker that notes when it is
 * freed. Sign once with it armed with transfer = true, dkim_free() the
 * handle, then call mxdkim_handoff_probe_record(): it remembers whether
 * libopendkim freed the copy, frees it if not, and returns 0 when the key
 * really went through the hand-off (-1: the hand-off does not reach this
 * libopendkim, sign with the key text instead).
 */
struct mxdkim_probe {
	EVP_PKEY *copy;
	int freed; /* set by the marker */
};
int mxdkim_handoff_probe_start(struct mxdkim_probe *p, const EVP_PKEY *pkey);
int mxdkim_handoff_probe_record(struct mxdkim_probe *p, enum mxdkim_alg alg, int taken,
                                bool signed_ok);

#endif
