/*
 * dkimsign: the daemon's DKIM signer built from the configuration
 * (dkim_key lines), with the "require published key" check, and the
 * reference count that lets SIGHUP replace it while worker threads still
 * sign with the old one.
 */
#ifndef MXRELAY_DKIMSIGN_H
#define MXRELAY_DKIMSIGN_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct dkimsign;

/*
 * Load every dkim_key of c (before privileges are dropped: key files are
 * root-only). With dkim_require_published, a key whose TXT record (looked up
 * through dns_servers) does not match is held back with a warning in *warn
 * (one line per key, may be NULL). -1 with "FILE:LINE: dkim_key: reason"
 * for a key that cannot be loaded. *out is NULL when no key is configured.
 */
int dkimsign_load(const struct config *c, struct dkimsign **out, char *err, size_t errlen);

/* References: take one per signing job; the last unref frees. Loop thread only. */
struct dkimsign *dkimsign_ref(struct dkimsign *d);
void dkimsign_unref(struct dkimsign *d);

/*
 * Does the signer have a key for this From domain? NULL-safe. Here and in
 * dkimsign_sign an internationalized domain (UTF-8, SMTPUTF8) stands for
 * its A-label: the key configured for xn--bcher-kva.test signs mail from
 * bücher.test, with d=xn--bcher-kva.test.
 */
bool dkimsign_has(const struct dkimsign *d, const char *domain);

/*
 * Sign msg for domain (thread-safe). *headers: the DKIM-Signature fields to
 * prepend, malloc'd. 0 / -1 with err.
 */
int dkimsign_sign(const struct dkimsign *d, const char *domain, const char *msg, size_t len,
		  char **headers, char *err, size_t errlen);

#endif
