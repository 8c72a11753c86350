/*
 * libFuzzer target: the AUTH response decoders (mta/smtpd/parse.c), which
 * read what any client sends after AUTH PLAIN / AUTH LOGIN (RFC 4954,
 * RFC 4616): strict base64, then the PLAIN authzid NUL authcid NUL passwd
 * split. Built by CMake with -DMXRELAY_FUZZ=ON (links mxmta).
 * The input is the response line as the session hands it over (a C string).
 *
 * Beyond "no crash": what decodes encodes again (OpenSSL's encoder) to text
 * that decodes to the same octets; a PLAIN split that succeeds gives a
 * non-empty user and a password inside the decoded buffer, with exactly
 * three fields and an authzid that is empty or the user.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/smtpd/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
reencode(const char *dec, size_t n)
{
	unsigned char *enc = malloc(4 * (n / 3 + 1) + 1);
	char *again;
	size_t n2;

	if (enc == NULL)
		return;
	EVP_EncodeBlock(enc, (const unsigned char *)dec, (int)n);
	if (smtpd_b64_decode((const char *)enc, &again, &n2) != 0 || n2 != n ||
	    memcmp(again, dec, n) != 0 || again[n2] != '\0')
		abort();
	free(again);
	free(enc);
}

static void
plain(const char *buf, size_t n)
{
	const char *user, *pass;
	size_t ul, pl;

	if (smtpd_plain_split(buf, n, &user, &pass) != 0)
		return;
	ul = strlen(user);
	pl = strlen(pass);
	if (ul == 0 || user <= buf || user + ul >= buf + n || pass + pl != buf + n ||
	    user + ul + 1 != pass || (buf[0] != '\0' && strcmp(buf, user) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), *dec;
	size_t n;

	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (smtpd_b64_decode(line, &dec, &n) == 0) {
		if (n > size)
			abort();
		reencode(dec, n);
		plain(dec, n);
		free(dec);
	}
	free(line);
	return 0;
}
