/*
 * libFuzzer target: the address parsers that read network input
 * (MAIL FROM / RCPT TO arguments, header From values); built by
 * -DMXRELAY_FUZZ=ON (test/fuzz/README.md). The first byte holds the flags.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/core/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), out[ADDR_MAX];
	const char *params;
	size_t pos = 0;
	unsigned flags;

	if (s == NULL || size == 0)
		goto done;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	flags = data[0] & (ADDR_F_NULL_OK | ADDR_F_UTF8 | ADDR_F_STRICT);
	if (addr_parse_path(s, flags, out, sizeof(out), &params) == ADDR_OK) {
		/* what we accept must parse again to itself */
		char again[ADDR_MAX + 2], out2[ADDR_MAX];
		size_t n = strlen(out);
		again[0] = '<';
		memcpy(again + 1, out, n);
		again[n + 1] = '>';
		again[n + 2] = '\0';
		if (addr_parse_path(again, flags | ADDR_F_NULL_OK, out2, sizeof(out2), NULL) != ADDR_OK ||
		    strcmp(out, out2) != 0)
			abort();
		(void)addr_domain(out);
	}
	while (addr_from_header_next(s, size - 1, &pos, out, sizeof(out)) == 0)
		;
done:
	free(s);
	return 0;
}
