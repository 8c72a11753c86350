/*
 * dkim/keys.c: generate, load and describe DKIM private keys (see keys.h).
 */
#include "dkim/mxdkim_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define KEY_FILE_MAX (64 * 1024) /* a 16384-bit RSA PEM is ~12 KB */

int
mxdkim_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* The reason of the newest OpenSSL error, then an empty queue (see keys.h). */
static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown OpenSSL error";
}

const char *
mxdkim_alg_name(enum mxdkim_alg alg)
{
	switch (alg) {
	case MXDKIM_RSA:
		return "rsa";
	case MXDKIM_ED25519:
		return "ed25519";
	}
	return "?";
}

char *
mxdkim_b64_encode(const unsigned char *in, size_t len)
{
	char *out;

	if (len > (size_t)1 << 28)
		return NULL;
	out = malloc(4 * ((len + 2) / 3) + 1);
	if (out == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

static bool
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

unsigned char *
mxdkim_b64_decode(const char *in, size_t len, size_t *outlen)
{
	char *clean = NULL;
	unsigned char *out = NULL;
	size_t n = 0, pad = 0, i;
	int got;

	*outlen = 0;
	clean = malloc(len + 4);
	out = malloc(len / 4 * 3 + 4);
	if (clean == NULL || out == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (!b64_char(c) || pad > 0) /* data after padding */
			goto bad;
		clean[n++] = (char)c;
	}
	if (pad > 2 || n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0))
		goto bad;
	pad = (4 - n % 4) % 4; /* padding restored when it was left out */
	for (i = 0; i < pad; i++)
		clean[n++] = '=';
	if (n > 0) {
		got = EVP_DecodeBlock(out, (unsigned char *)clean, (int)n);
		if (got < 0 || (size_t)got < pad)
			goto bad;
		*outlen = (size_t)got - pad;
	}
	free(clean);
	return out;
bad:
	errno = EINVAL;
fail:
	free(clean);
	free(out);
	return NULL;
}

/* Never prompt for a pass phrase: encrypted keys are refused. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* PKCS#8 PEM text of pk, NUL-terminated, from the secure heap when there is one. */
static char *
pem_text(EVP_PKEY *pk, size_t *lenp)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *data, *out = NULL;
	long n;

	if (b == NULL)
		return NULL;
	if (PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) == 1) {
		n = BIO_get_mem_data(b, &data);
		if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
			memcpy(out, data, (size_t)n);
			out[n] = '\0';
			if (lenp != NULL)
				*lenp = (size_t)n;
		}
	}
	BIO_free(b);
	return out;
}

/* Fill k->pub/publen from pk. */
static int
public_half(struct mxdkim_key *k, EVP_PKEY *pk)
{
	unsigned char *der = NULL;
	int n;

	if (k->alg == MXDKIM_ED25519) {
		k->pub = malloc(32);
		k->publen = 32;
		if (k->pub == NULL || EVP_PKEY_get_raw_public_key(pk, k->pub, &k->publen) != 1 ||
		    k->publen != 32)
			return -1;
		return 0;
	}
	n = i2d_PUBKEY(pk, &der); /* RFC 6376 3.6.1: p= is a SubjectPublicKeyInfo */
	if (n <= 0)
		return -1;
	k->pub = malloc((size_t)n);
	if (k->pub != NULL) {
		memcpy(k->pub, der, (size_t)n);
		k->publen = (size_t)n;
	}
	OPENSSL_free(der);
	return k->pub != NULL ? 0 : -1;
}

/* Build a key from a parsed EVP_PKEY (the key takes a reference of its own). */
static int
key_from_pkey(struct mxdkim_key **out, EVP_PKEY *pk, char *err, size_t errlen)
{
	struct mxdkim_key *k;
	int id = EVP_PKEY_get_base_id(pk);

	if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519)
		return mxdkim_fail(err, errlen,
		                   "unsupported key type %s: DKIM signs with RSA or Ed25519 only",
		                   OBJ_nid2sn(id));
	k = calloc(1, sizeof *k);
	if (k == NULL)
		return mxdkim_fail(err, errlen, "out of memory");
	k->alg = id == EVP_PKEY_RSA ? MXDKIM_RSA : MXDKIM_ED25519;
	k->bits = EVP_PKEY_get_bits(pk);
	if (k->alg == MXDKIM_RSA && k->bits < MXDKIM_RSA_MIN_VERIFY_BITS) {
		mxdkim_fail(err, errlen,
		            "RSA key has %d bits: DKIM needs at least %d (RFC 8301 3.2), and %d to "
		            "sign",
		            k->bits, MXDKIM_RSA_MIN_VERIFY_BITS, MXDKIM_RSA_MIN_SIGN_BITS);
		goto fail;
	}
	k->pem = pem_text(pk, NULL);
	if (k->pem == NULL || public_half(k, pk) != 0 || EVP_PKEY_up_ref(pk) != 1) {
		mxdkim_fail(err, errlen, "cannot encode key: %s", ssl_reason());
		goto fail;
	}
	k->pkey = pk;
	mxdkim_handoff_token(pk, k->token, sizeof k->token);
	*out = k;
	return 0;
fail:
	mxdkim_key_free(k);
	return -1;
}

int
mxdkim_key_from_pem(struct mxdkim_key **out, const char *pem, size_t len, char *err, size_t errlen)
{
	BIO *b;
	EVP_PKEY *pk;
	int rc;

	*out = NULL;
	if (len > KEY_FILE_MAX || len > INT32_MAX)
		return mxdkim_fail(err, errlen, "key too large (%zu bytes)", len);
	b = BIO_new_mem_buf(pem, (int)len);
	if (b == NULL)
		return mxdkim_fail(err, errlen, "out of memory");
	pk = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (pk == NULL) {
		const char *why = ssl_reason();

		if (memmem(pem, len, "ENCRYPTED", 9) != NULL)
			return mxdkim_fail(err, errlen, "encrypted keys are not supported");
		return mxdkim_fail(err, errlen, "no PEM private key (%s)", why);
	}
	rc = key_from_pkey(out, pk, err, errlen);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return rc;
}

int
mxdkim_key_load(struct mxdkim_key **out, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL, why[256];
	size_t got = 0;
	ssize_t n;
	int fd, rc = -1;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return mxdkim_fail(err, errlen, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		mxdkim_fail(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		mxdkim_fail(err, errlen, "%s: not a regular file", path);
		goto done;
	}
	if (st.st_size > KEY_FILE_MAX) {
		mxdkim_fail(err, errlen, "%s: too large for a key (%lld bytes)", path,
		            (long long)st.st_size);
		goto done;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		mxdkim_fail(err, errlen, "out of memory");
		goto done;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			mxdkim_fail(err, errlen, "%s: %s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (mxdkim_key_from_pem(out, buf, got, why, sizeof why) != 0) {
		mxdkim_fail(err, errlen, "%s: %s", path, why);
		goto done;
	}
	(*out)->world_readable = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
	rc = 0;
done:
	if (buf != NULL)
		OPENSSL_cleanse(buf, got);
	free(buf);
	close(fd);
	return rc;
}

void
mxdkim_key_free(struct mxdkim_key *k)
{
	if (k == NULL)
		return;
	if (k->pem != NULL)
		OPENSSL_clear_free(k->pem, strlen(k->pem));
	EVP_PKEY_free(k->pkey);
	if (k->der_b64 != NULL)
		OPENSSL_clear_free(k->der_b64, strlen(k->der_b64));
	free(k->pub);
	free(k);
}

enum mxdkim_alg
mxdkim_key_alg(const struct mxdkim_key *k)
{
	return k->alg;
}

int
mxdkim_key_bits(const struct mxdkim_key *k)
{
	return k->bits;
}

bool
mxdkim_key_can_sign(const struct mxdkim_key *k)
{
	return k->alg == MXDKIM_ED25519 || k->bits >= MXDKIM_RSA_MIN_SIGN_BITS;
}

bool
mxdkim_key_world_readable(const struct mxdkim_key *k)
{
	return k->world_readable;
}

int
mxdkim_key_txt(const struct mxdkim_key *k, char **value, char *err, size_t errlen)
{
	char *p64 = mxdkim_b64_encode(k->pub, k->publen);

	*value = NULL;
	if (p64 == NULL ||
	    asprintf(value, "v=DKIM1; k=%s; p=%s", mxdkim_alg_name(k->alg), p64) < 0) {
		*value = NULL;
		free(p64);
		return mxdkim_fail(err, errlen, "out of memory");
	}
	free(p64);
	return 0;
}

/* ---- key generation ---- */

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsync the directory holding path so a new name survives a crash */
static void
sync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Write data to a new file at path, mode 0600, exclusively or replacing it. */
static int
write_key_file(const char *path, const char *data, size_t len, bool overwrite, char *err,
               size_t errlen)
{
	char tmp[4096];
	const char *target = path;
	int fd;

	if (overwrite) {
		if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp)
			return mxdkim_fail(err, errlen, "%s: path too long", path);
		fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
		target = tmp;
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0) {
		if (errno == EEXIST)
			return mxdkim_fail(err, errlen, "%s: file exists, not overwriting it",
			                   path);
		return mxdkim_fail(err, errlen, "%s: %s", target, strerror(errno));
	}
	/* the umask may only have removed bits, but be exact */
	if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		mxdkim_fail(err, errlen, "%s: %s", target, strerror(errno));
		close(fd);
		unlink(target);
		return -1;
	}
	if (close(fd) != 0) {
		mxdkim_fail(err, errlen, "%s: %s", target, strerror(errno));
		unlink(target);
		return -1;
	}
	if (overwrite && rename(tmp, path) != 0) {
		mxdkim_fail(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	sync_dir(path);
	return 0;
}

int
mxdkim_keygen(enum mxdkim_alg alg, int rsa_bits, const char *path, unsigned flags, char *err,
              size_t errlen)
{
	EVP_PKEY *pk = NULL;
	char *pem = NULL;
	size_t len = 0;
	int rc = -1;

	if (alg == MXDKIM_RSA) {
		if (rsa_bits == 0)
			rsa_bits = MXDKIM_RSA_MIN_SIGN_BITS;
		if (rsa_bits < MXDKIM_RSA_MIN_SIGN_BITS || rsa_bits > MXDKIM_RSA_MAX_BITS)
			return mxdkim_fail(err, errlen,
			                   "RSA key size %d: use %d to %d bits (RFC 8301 3.2)",
			                   rsa_bits, MXDKIM_RSA_MIN_SIGN_BITS, MXDKIM_RSA_MAX_BITS);
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits);
	} else if (alg == MXDKIM_ED25519) {
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	} else {
		return mxdkim_fail(err, errlen, "unknown key algorithm %d", (int)alg);
	}
	if (pk == NULL)
		return mxdkim_fail(err, errlen, "key generation failed: %s", ssl_reason());
	pem = pem_text(pk, &len);
	if (pem == NULL) {
		mxdkim_fail(err, errlen, "cannot encode key: %s", ssl_reason());
		goto done;
	}
	rc = write_key_file(path, pem, len, (flags & MXDKIM_KEYGEN_OVERWRITE) != 0, err, errlen);
done:
	if (pem != NULL)
		OPENSSL_clear_free(pem, len);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return rc;
}
