/*
 * libFuzzer target: the address parsers that read network input: MAIL FROM
 * / RCPT TO arguments (addr_parse_path) and header address lists (From,
 * Sender, To...: addr_list_next, addr_header_mailbox). Built by
 * -DMXRELAY_FUZZ=ON (test/fuzz/README.md).
 * The first input byte picks the flags; the rest is the value.
 *
 * Beyond "no crash": a path we accept parses again to itself; the header
 * parsers read only the exact-size, unterminated copy (ASan sees a read past
 * it), every mailbox they return is NUL-free, fits ADDR_MAX and reads back
 * as exactly itself, and their status is sticky.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
path_round_trip(const char *s, unsigned flags)
{
	char out[ADDR_MAX], again[ADDR_MAX + 2], out2[ADDR_MAX];
	const char *params;
	size_t n;

	if (addr_parse_path(s, flags, out, sizeof(out), &params) != ADDR_OK)
		return;
	n = strlen(out);
	again[0] = '<';
	memcpy(again + 1, out, n);
	again[n + 1] = '>';
	again[n + 2] = '\0';
	if (addr_parse_path(again, flags | ADDR_F_NULL_OK, out2, sizeof(out2), NULL) != ADDR_OK ||
	    strcmp(out, out2) != 0)
		abort();
	(void)addr_domain(out);
}

static void
header_list(const char *v, size_t len, unsigned lflags)
{
	char box[ADDR_MAX], again[ADDR_MAX];
	struct addr_list l;
	enum addr_status st;
	unsigned n = 0;

	addr_list_init(&l, v, len, lflags);
	while ((st = addr_list_next(&l, box, sizeof(box))) == ADDR_OK) {
		size_t bl = strlen(box);
		if (bl + 2 > ADDR_MAX || memchr(v, '\0', len) != NULL)
			abort();
		/* a mailbox we report is one mailbox when read on its own */
		if (addr_header_mailbox(box, bl, again, sizeof(again)) != ADDR_OK ||
		    strcmp(box, again) != 0)
			abort();
		if (++n > len)
			abort(); /* no progress */
	}
	if (addr_list_next(&l, box, sizeof(box)) != st)
		abort();
	(void)addr_header_mailbox(v, len, box, sizeof(box));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *v;
	unsigned flags;

	if (size == 0)
		return 0;
	flags = data[0] & (ADDR_F_NULL_OK | ADDR_F_UTF8 | ADDR_F_STRICT);
	s = malloc(size);
	v = malloc(size > 1 ? size - 1 : 1);
	if (s == NULL || v == NULL)
		goto done;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	path_round_trip(s, flags);
	/* an exact-size copy without a terminator: the header parsers must stay inside */
	memcpy(v, data + 1, size - 1);
	header_list(v, size - 1, (data[0] & 0x80) ? ADDR_L_GROUPS : 0);
done:
	free(s);
	free(v);
	return 0;
}
