/*
 * tls: OpenSSL server contexts per listener and the self-signed certificate
 * made on first start.
 *
 * Each listener gets a modern context (its tls_min_version, default TLS 1.2,
 * OpenSSL's default security level) and, only when legacy TLS is configured
 * for it, a second context allowing TLS 1.0/1.1 at security level 0. The
 * legacy context is chosen per connection (source CIDR, sunset date), so
 * weak TLS is never enabled globally.
 */
#ifndef MXRELAY_TLS_H
#define MXRELAY_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

struct listener_conf;

struct tls_listener {
	SSL_CTX *modern;
	SSL_CTX *legacy;	/* NULL unless legacy TLS is configured */
};

/*
 * Make DATA_DIR/tls-cert.pem and tls-key.pem (RSA 2048, self-signed for
 * HOSTNAME, 10 years) if they do not exist. Key file mode 0600. 0 / -1.
 */
int tls_ensure_selfsigned(const char *data_dir, const char *hostname, char *err, size_t errlen);

/* Build the contexts for one listener; cert/key default to the generated pair. 0 / -1. */
int tls_listener_init(struct tls_listener *t, const struct listener_conf *l, const char *data_dir,
		      char *err, size_t errlen);
void tls_listener_free(struct tls_listener *t);

/* May this peer use TLS 1.0/1.1 on this listener right now? */
bool tls_legacy_allowed(const struct listener_conf *l, const struct sockaddr *peer, time_t now);

/* A new SSL for a connection: the legacy context when allowed, else the modern one. */
SSL *tls_new_ssl(const struct tls_listener *t, bool legacy);

#endif
