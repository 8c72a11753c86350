/*
 * libFuzzer target: the DNS answer reader of mxrelayctl's lookups
 * (tools/dnsq_parse.c, dnsq_parse), which reads whatever the configured
 * resolver answers; built by -DMXRELAY_FUZZ=ON (test/fuzz/README.md).
 * The first byte picks the asked type (0 A, 1 AAAA, 2 MX, 3 TXT, 4 PTR,
 * 5 SOA, modulo 6); the rest is the response, an answer for "a.t", in an
 * exact-size copy (ASan sees a read past it).
 *
 * Beyond memory safety: records only with DNSQ_OK, and the list untouched
 * otherwise; a CNAME target to ask again only with DNSQ_NODATA; A and AAAA
 * text parses back as an address of that family; MX is "PREF HOST" with
 * PREF at most 65535; names shorter than DNSQ_NAME_MAX and never empty.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tools/dnsq_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum dnsq_type types[] = {DNSQ_T_A,   DNSQ_T_AAAA, DNSQ_T_MX,
                                       DNSQ_T_TXT, DNSQ_T_PTR,  DNSQ_T_SOA};

static void
check_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= DNSQ_NAME_MAX)
		abort();
}

static void
check_text(enum dnsq_type type, const char *s)
{
	unsigned char a[16];
	unsigned long pref;
	char *end;

	switch (type) {
	case DNSQ_T_A:
	case DNSQ_T_AAAA:
		if (inet_pton(type == DNSQ_T_A ? AF_INET : AF_INET6, s, a) != 1)
			abort();
		break;
	case DNSQ_T_MX:
		pref = strtoul(s, &end, 10);
		if (end == s || *end != ' ' || pref > 65535)
			abort();
		check_name(end + 1);
		break;
	case DNSQ_T_PTR:
		check_name(s);
		break;
	case DNSQ_T_SOA:
		if (strcmp(s, "SOA") != 0)
			abort();
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnsq_list out = {NULL, 0};
	char next[DNSQ_NAME_MAX];
	enum dnsq_status st;
	enum dnsq_type type;
	unsigned char *msg;

	if (size < 1)
		return 0;
	type = types[data[0] % (sizeof types / sizeof types[0])];
	msg = malloc(size - 1 ? size - 1 : 1);
	if (msg == NULL)
		return 0;
	memcpy(msg, data + 1, size - 1);
	st = dnsq_parse(msg, size - 1, "a.t", type, &out, next);
	if ((st == DNSQ_OK) != (out.n > 0))
		abort();
	if (next[0] != '\0') {
		if (st != DNSQ_NODATA)
			abort();
		check_name(next);
	}
	for (size_t i = 0; i < out.n; i++)
		check_text(type, out.v[i]);
	dnsq_list_free(&out);
	free(msg);
	return 0;
}
