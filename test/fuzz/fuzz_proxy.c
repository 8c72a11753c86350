/*
 * libFuzzer target: the PROXY protocol v1/v2 header parser, which reads the
 * first bytes a load balancer (or anyone on its network) sends; built by
 * -DMXRELAY_FUZZ=ON (test/fuzz/README.md).
 * The first input byte picks the versions accepted; the rest is the stream.
 *
 * Beyond "no crash": a header that parses must parse the same from exactly
 * its own bytes, its last byte missing must ask for more, a request for
 * more must never come past PROXY_HDR_MAX bytes, and a v1 address that
 * parses must read back the same when printed and parsed again.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/smtpd/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
addr_text(const struct sockaddr_storage *ss, char *out, size_t outlen, unsigned *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)outlen);
		*port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)outlen);
		*port = ntohs(s6->sin6_port);
	}
}

/* Print a parsed v1 PROXY header again and parse that: the same addresses must come back. */
static void
v1_round_trip(const struct proxy_hdr *h)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], line[256];
	unsigned sp, dp;
	struct proxy_hdr again;
	int n;

	addr_text(&h->src, s, sizeof(s), &sp);
	addr_text(&h->dst, d, sizeof(d), &dp);
	n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
		     h->src.ss_family == AF_INET ? "TCP4" : "TCP6", s, d, sp, dp);
	if (n <= 0 || (size_t)n > PROXY_V1_MAX)
		abort();
	if (proxy_parse((const unsigned char *)line, (size_t)n, PROXY_V1, &again) != PROXY_OK ||
	    again.cmd != PROXY_CMD_PROXY || again.len != (size_t)n || again.srclen != h->srclen ||
	    memcmp(&again.src, &h->src, h->srclen) != 0 || memcmp(&again.dst, &h->dst, h->dstlen) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr h, h2;
	enum proxy_status st;
	unsigned versions;
	unsigned char *buf;

	if (size == 0)
		return 0;
	versions = data[0] & (PROXY_V1 | PROXY_V2);
	size--;
	/* an exact-size copy, so any read past the input is an ASan report */
	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size);

	st = proxy_parse(buf, size, versions, &h);
	switch (st) {
	case PROXY_NEED_MORE:
		if (size >= PROXY_HDR_MAX)
			abort();
		break;
	case PROXY_ERROR:
		if (h.error == NULL)
			abort();
		break;
	case PROXY_OK:
		if (h.len == 0 || h.len > size || h.len > PROXY_HDR_MAX)
			abort();
		if (h.version == 1 && h.len > PROXY_V1_MAX)
			abort();
		if (proxy_parse(buf, h.len, versions, &h2) != PROXY_OK || h2.len != h.len ||
		    h2.cmd != h.cmd || memcmp(&h2.src, &h.src, sizeof(h.src)) != 0)
			abort();
		if (proxy_parse(buf, h.len - 1, versions, &h2) != PROXY_NEED_MORE)
			abort();
		if (h.cmd == PROXY_CMD_PROXY &&
		    (h.src.ss_family != h.dst.ss_family ||
		     (h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6)))
			abort();
		if (h.version == 1 && h.cmd == PROXY_CMD_PROXY)
			v1_round_trip(&h);
		break;
	}
	free(buf);
	return 0;
}
