/*
 * libFuzzer target: the DNS response parser (dns/parse.c), which reads what
 * any resolver on the path answers; built by -DMXRELAY_FUZZ=ON
 * (test/fuzz/README.md).
 * The first byte picks the asked type (A, AAAA, MX, TXT, TLSA); the rest is
 * the packet, an answer for the name "a.t".
 * Beyond memory safety: the answer's shape (kind vs records, TTL cap,
 * record count, names < 256), `secure` equal to the header's AD bit, TXT
 * data NUL-terminated and within 64 KB per answer, TLSA data never empty.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* TXT and TLSA records: data where it belongs, within the bounds. */
static void
check_data(const struct dns_rr *rr, int type, size_t *txt_total)
{
	if ((type == DNS_T_TXT || type == DNS_T_TLSA) != (rr->data != NULL))
		abort();
	if (type == DNS_T_TXT) {
		if (rr->data[rr->len] != '\0')
			abort();
		*txt_total += rr->len;
		if (*txt_total > DNS_TXT_MAX)
			abort();
	}
	if (type == DNS_T_TLSA && (rr->len == 0 || rr->len > 65535 - 3))
		abort();
}

/* What every parsed answer must look like, whatever the packet said. */
static void
check_answer(const struct dns_answer *a, int type, const unsigned char *pkt)
{
	size_t txt_total = 0;

	if (a->refs != 1 || a->type != type || a->n > DNS_MAX_RR || a->ttl > DNS_TTL_MAX)
		abort();
	/* the packet parsed, so it has a header: secure is its AD bit, nothing else */
	if (a->secure != ((pkt[3] & DNS_HDR_AD) != 0))
		abort();
	if ((a->kind == DNS_A_DATA) != (a->n > 0))
		abort();
	if ((a->kind == DNS_A_CNAME) != (a->cname != NULL))
		abort();
	if (a->cname != NULL && strlen(a->cname) > 255)
		abort();
	for (size_t i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];
		check_data(rr, type, &txt_total);
		if ((type == DNS_T_MX) != (rr->name != NULL))
			abort();
		if (rr->name != NULL) {
			(void)dns__name_eq(rr->name, "a.t");
			if (strlen(rr->name) > 255)
				abort();
		} else if (type == DNS_T_A || type == DNS_T_AAAA) {
			/* the address policy reads what the packet gave */
			(void)dns__addr_refusal(type == DNS_T_A ? AF_INET : AF_INET6, rr->addr,
			                        false);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = {DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_TLSA};
	char why[64] = "";
	struct dns_answer *a;
	unsigned char *pkt;
	int type;

	if (size < 1)
		return 0;
	type = types[data[0] % 5];
	/* an exact-size copy, so any read past the packet is an ASan report */
	pkt = malloc(size - 1 ? size - 1 : 1);
	if (pkt == NULL)
		return 0;
	memcpy(pkt, data + 1, size - 1);
	a = dns__parse(pkt, size - 1, "a.t", type, why, sizeof why);
	if (a == NULL && why[0] == '\0')
		abort(); /* a refusal always says why */
	if (a != NULL)
		check_answer(a, type, pkt);
	dns__answer_unref(a);
	free(pkt);
	return 0;
}
