/* tls: server contexts and the generated certificate (see tls.h). */
#include "mta/smtpd/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta/shared/config.h"

static void
ssl_err(char *err, size_t errlen, const char *what)
{
	char buf[256];
	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, buf);
}

static int
write_pem(const char *path, EVP_PKEY *key, X509 *crt, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, key ? 0600 : 0644);
	FILE *fp;
	int ok;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fp = fdopen(fd, "w");
	ok = key ? PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL)
		 : PEM_write_X509(fp, crt);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
		ok = 0;
	fclose(fp);
	if (!ok) {
		unlink(path);
		snprintf(err, errlen, "%s: write failed", path);
		return -1;
	}
	return 0;
}

int
tls_ensure_selfsigned(const char *data_dir, const char *hostname, char *err, size_t errlen)
{
	char cpath[4096], kpath[4096];
	EVP_PKEY *key = NULL;
	X509 *crt = NULL;
	X509_NAME *name;
	int rc = -1;

	snprintf(cpath, sizeof(cpath), "%s/tls-cert.pem", data_dir);
	snprintf(kpath, sizeof(kpath), "%s/tls-key.pem", data_dir);
	if (access(cpath, F_OK) == 0 && access(kpath, F_OK) == 0)
		return 0;
	unlink(cpath);
	unlink(kpath);
	/* RSA, not ECDSA: the old copiers this serves often know nothing else */
	key = EVP_RSA_gen(2048);
	crt = X509_new();
	if (key == NULL || crt == NULL) {
		ssl_err(err, errlen, "generating TLS key");
		goto done;
	}
	X509_set_version(crt, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(crt), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(crt), -3600);
	X509_gmtime_adj(X509_getm_notAfter(crt), 10L * 365 * 86400);
	X509_set_pubkey(crt, key);
	name = X509_get_subject_name(crt);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1,
				   -1, 0);
	X509_set_issuer_name(crt, name);
	if (!X509_sign(crt, key, EVP_sha256())) {
		ssl_err(err, errlen, "signing TLS certificate");
		goto done;
	}
	if (write_pem(kpath, key, NULL, err, errlen) != 0 ||
	    write_pem(cpath, NULL, crt, err, errlen) != 0)
		goto done;
	rc = 0;
done:
	EVP_PKEY_free(key);
	X509_free(crt);
	return rc;
}

static SSL_CTX *
make_ctx(const char *cert, const char *key, int min_version, bool legacy, char *err,
	 size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		ssl_err(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION);
	if (legacy) {
		/* only here: old copiers speak TLS 1.0 with SHA-1 and old ciphers */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
		min_version = TLS1_VERSION;
	}
	SSL_CTX_set_min_proto_version(ctx, min_version);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_err(err, errlen, cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errlen, key);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_listener_init(struct tls_listener *t, const struct listener_conf *l, const char *data_dir,
		  char *err, size_t errlen)
{
	char cpath[4096], kpath[4096];
	const char *cert = l->cert, *key = l->key;

	memset(t, 0, sizeof(*t));
	if (l->tls == LTLS_NONE)
		return 0;
	if (cert == NULL) {
		snprintf(cpath, sizeof(cpath), "%s/tls-cert.pem", data_dir);
		snprintf(kpath, sizeof(kpath), "%s/tls-key.pem", data_dir);
		cert = cpath;
		key = kpath;
	}
	t->modern = make_ctx(cert, key, l->tls_min_version, false, err, errlen);
	if (t->modern == NULL)
		return -1;
	if (l->legacy_tls || l->legacy_from.n > 0) {
		t->legacy = make_ctx(cert, key, TLS1_VERSION, true, err, errlen);
		if (t->legacy == NULL) {
			tls_listener_free(t);
			return -1;
		}
	}
	return 0;
}

void
tls_listener_free(struct tls_listener *t)
{
	SSL_CTX_free(t->modern);
	SSL_CTX_free(t->legacy);
	t->modern = t->legacy = NULL;
}

bool
tls_legacy_allowed(const struct listener_conf *l, const struct sockaddr *peer, time_t now)
{
	if (l->legacy_until != 0 && now >= l->legacy_until)
		return false;
	return l->legacy_tls || cidr_list_match(&l->legacy_from, peer);
}

SSL *
tls_new_ssl(const struct tls_listener *t, bool legacy)
{
	SSL_CTX *ctx = legacy && t->legacy ? t->legacy : t->modern;
	return ctx ? SSL_new(ctx) : NULL;
}
