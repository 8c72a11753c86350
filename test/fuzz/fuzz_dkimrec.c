/*
 * libFuzzer target: the DKIM key record parser (tools/dkimrec.c,
 * dkimrec_parse: the tag-list of RFC 6376 3.2, the key tags of 3.6.1 and
 * the public key in p= through OpenSSL). Built by -DMXRELAY_FUZZ=ON
 * (test/fuzz/README.md). The input is the record text as DNS hands it
 * over (strings joined), cut at its first NUL byte, in an exact-size copy.
 *
 * Beyond "no crash": the result is -1 exactly when a failure note exists,
 * notes are NUL-terminated within their buffer, never more than the
 * maximum, and a revoked key is a failure; parsing twice gives the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/dkimrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkimrec a, b;
	char *txt = malloc(size + 1);
	bool any_fail = false;
	int rc;

	if (txt == NULL)
		return 0;
	memcpy(txt, data, size);
	txt[size] = '\0';
	rc = dkimrec_parse(txt, &a);
	if (a.nnotes > DKIMREC_NOTES_MAX)
		abort();
	for (size_t i = 0; i < a.nnotes; i++) {
		if (memchr(a.notes[i].text, '\0', sizeof a.notes[i].text) == NULL)
			abort();
		any_fail = any_fail || a.notes[i].fail;
	}
	if ((rc == -1) != any_fail || (a.revoked && rc != -1) || (rc != 0 && rc != -1))
		abort();
	if (dkimrec_parse(txt, &b) != rc || b.nnotes != a.nnotes || b.bits != a.bits)
		abort();
	free(txt);
	return 0;
}
