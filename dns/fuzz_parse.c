/*
 * libFuzzer target for the DNS response parser (network input).
 * Not part of the CMake build (there is no fuzz/ tree yet); build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *     dns/fuzz_parse.c dns/parse.c dns/policy.c -lcares -o /tmp/fuzz_parse
 *   /tmp/fuzz_parse -max_total_time=60
 * The first byte picks the asked type; the rest is the packet.
 */
#include <stddef.h>
#include <stdint.h>

#include "dns/dns_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = {DNS_T_A, DNS_T_AAAA, DNS_T_MX};
	char why[64];
	struct dns_answer *a;

	if (size < 1)
		return 0;
	a = dns__parse(data + 1, size - 1, "a.t", types[data[0] % 3], why, sizeof why);
	if (a)
		for (size_t i = 0; i < a->n; i++)
			if (a->rr[i].name)
				(void)dns__name_eq(a->rr[i].name, "a.t");
	dns__answer_unref(a);
	return 0;
}
