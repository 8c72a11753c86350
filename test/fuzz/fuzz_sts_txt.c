/*
 * libFuzzer target: the _mta-sts TXT record parser (sts_txt_parse, RFC 8461
 * 3.1). Built by -DMXRELAY_FUZZ=ON (test/fuzz/README.md). The input is the
 * TXT RRset: records separated by a 0xff byte, each in an exact-size,
 * unterminated copy (ASan sees a read past it), as the DNS layer hands them
 * over (character-strings concatenated, NUL bytes possible).
 *
 * Beyond "no crash": OK comes with an id of 1 to 32 letters and digits
 * that occurs in one of the records; NONE and INVALID with an empty id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXREC 16

static bool
id_seen(const char *id, const struct sts_txt *r, size_t n)
{
	size_t len = strlen(id);

	if (len == 0 || len > STS_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	for (size_t i = 0; i < n; i++)
		if (r[i].len >= len && memmem(r[i].data, r[i].len, id, len))
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_txt r[MAXREC];
	char *copies[MAXREC] = {0}, id[STS_ID_MAX + 1], err[128];
	size_t n = 0, off = 0;
	enum sts_txt_status st;

	while (off <= size && n < MAXREC) {
		const uint8_t *sep = memchr(data + off, 0xff, size - off);
		size_t len = sep ? (size_t)(sep - data) - off : size - off;
		copies[n] = malloc(len ? len : 1);
		if (copies[n] == NULL)
			goto done;
		memcpy(copies[n], data + off, len);
		r[n] = (struct sts_txt){copies[n], len};
		n++;
		off += len + 1;
	}
	st = sts_txt_parse(r, n, id, err, sizeof err);
	if (st == STS_TXT_OK && !id_seen(id, r, n))
		abort();
	if (st != STS_TXT_OK && id[0] != '\0')
		abort();
done:
	for (size_t i = 0; i < n; i++)
		free(copies[i]);
	return 0;
}
