/*
 * proxy: PROXY protocol v1/v2 header parser (see proxy.h). Section numbers
 * refer to HAProxy's doc/proxy-protocol.txt.
 *
 * Every byte is read through struct rd, which checks the length before each
 * read; the parser never looks past len and never past PROXY_HDR_MAX.
 */
#include "mta/smtpd/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* 2.2: the v2 signature, chosen so no text protocol can start with it */
static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const unsigned char v1_sig[6] = {'P', 'R', 'O', 'X', 'Y', ' '};

/* bounds-checked reader over network bytes */
struct rd {
	const unsigned char *p;
	size_t len, pos;
};

static size_t
rd_left(const struct rd *r)
{
	return r->len - r->pos;
}

static bool
rd_u8(struct rd *r, unsigned *v)
{
	if (rd_left(r) < 1)
		return false;
	*v = r->p[r->pos++];
	return true;
}

static bool
rd_u16(struct rd *r, unsigned *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = (unsigned)r->p[r->pos] << 8 | r->p[r->pos + 1];
	r->pos += 2;
	return true;
}

static bool
rd_copy(struct rd *r, void *dst, size_t n)
{
	if (rd_left(r) < n)
		return false;
	memcpy(dst, r->p + r->pos, n);
	r->pos += n;
	return true;
}

static bool
rd_skip(struct rd *r, size_t n)
{
	if (rd_left(r) < n)
		return false;
	r->pos += n;
	return true;
}

static enum proxy_status
fail(struct proxy_hdr *out, const char *why)
{
	out->error = why;
	return PROXY_ERROR;
}

/* The bytes present match the start of sig: a partial header is not yet an error. */
static bool
prefix_ok(const unsigned char *buf, size_t len, const unsigned char *sig, size_t siglen)
{
	return memcmp(buf, sig, len < siglen ? len : siglen) == 0;
}

static void
set_addr(struct sockaddr_storage *ss, socklen_t *sslen, int fam, const void *addr, unsigned port)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, addr, 4);
		*sslen = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, addr, 16);
		*sslen = sizeof(*s6);
	}
}

/*
 * One v1 field: the bytes up to the next space (consumed) or the end of the
 * line (last field only), copied NUL-terminated into tok. Fields are
 * separated by exactly one space (2.1). 0 / -1.
 */
static int
v1_field(struct rd *r, char *tok, size_t toklen, bool last)
{
	size_t n = 0;
	unsigned c;

	while (rd_left(r) > 0 && r->p[r->pos] != ' ') {
		if (n + 1 >= toklen)
			return -1;
		rd_u8(r, &c);
		tok[n++] = (char)c;
	}
	tok[n] = '\0';
	if (n == 0)
		return -1;
	if (last)
		return rd_left(r) == 0 ? 0 : -1;
	return rd_skip(r, 1) ? 0 : -1;	/* the separating space */
}

/* Decimal 0..65535 without leading zeros. 0 / -1. */
static int
v1_port(const char *s, unsigned *port)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* 2.1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n". */
static enum proxy_status
parse_v1(const unsigned char *buf, size_t len, struct proxy_hdr *out)
{
	size_t lim = len < PROXY_V1_MAX ? len : PROXY_V1_MAX, i;
	char proto[8], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], sp[8], dp[8];
	unsigned char a[16], b[16];
	unsigned sport, dport;
	int fam;

	if (!prefix_ok(buf, len, v1_sig, sizeof(v1_sig)))
		return fail(out, "not a PROXY v1 header");
	for (i = 0; i < lim && buf[i] != '\n'; i++) {
		if (buf[i] == '\r') {
			if (i + 1 < len && buf[i + 1] != '\n')
				return fail(out, "CR without LF in v1 header");
		} else if (buf[i] < 0x20 || buf[i] > 0x7e) {
			return fail(out, "control or 8-bit byte in v1 header");
		}
	}
	if (i == lim)
		return len >= PROXY_V1_MAX ? fail(out, "v1 header longer than 107 bytes")
					   : PROXY_NEED_MORE;
	if (buf[i - 1] != '\r')
		return fail(out, "v1 header must end in CRLF");
	out->version = 1;
	out->len = i + 1;

	/* the fields between "PROXY " and the CR; i > 6 as buf[0..5] is "PROXY " */
	struct rd r = {buf + sizeof(v1_sig), i - 1 - sizeof(v1_sig), 0};
	if (rd_left(&r) > 0 && r.p[0] == ' ')
		return fail(out, "bad v1 protocol field");
	size_t n = 0;
	while (n < rd_left(&r) && r.p[n] != ' ')
		n++;
	if (n == 7 && memcmp(r.p, "UNKNOWN", 7) == 0) {
		/* 2.1: anything after UNKNOWN up to the CRLF is ignored */
		out->cmd = PROXY_CMD_UNKNOWN;
		return PROXY_OK;
	}
	if (v1_field(&r, proto, sizeof(proto), false) != 0)
		return fail(out, "bad v1 protocol field");
	if (strcmp(proto, "TCP4") == 0)
		fam = AF_INET;
	else if (strcmp(proto, "TCP6") == 0)
		fam = AF_INET6;
	else
		return fail(out, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
	if (v1_field(&r, src, sizeof(src), false) != 0 || v1_field(&r, dst, sizeof(dst), false) != 0 ||
	    v1_field(&r, sp, sizeof(sp), false) != 0 || v1_field(&r, dp, sizeof(dp), true) != 0)
		return fail(out, "v1 header needs exactly: protocol, two addresses, two ports");
	if (inet_pton(fam, src, a) != 1 || inet_pton(fam, dst, b) != 1)
		return fail(out, "bad address in v1 header");
	if (v1_port(sp, &sport) != 0 || v1_port(dp, &dport) != 0)
		return fail(out, "bad port in v1 header");
	out->cmd = PROXY_CMD_PROXY;
	set_addr(&out->src, &out->srclen, fam, a, sport);
	set_addr(&out->dst, &out->dstlen, fam, b, dport);
	return PROXY_OK;
}

/* 2.2: the addresses of a PROXY command, then TLVs that must fill the rest exactly. */
static enum proxy_status
v2_addresses(struct rd *p, unsigned fam_byte, struct proxy_hdr *out)
{
	unsigned char a[16], b[16];
	unsigned sport, dport, type, vlen;
	int fam;
	size_t alen;

	switch (fam_byte) {
	case 0x00:		/* AF_UNSPEC: use the connection's own addresses */
		out->cmd = PROXY_CMD_UNKNOWN;
		return PROXY_OK;
	case 0x11:		/* TCP over IPv4 */
		fam = AF_INET;
		alen = 4;
		break;
	case 0x21:		/* TCP over IPv6 */
		fam = AF_INET6;
		alen = 16;
		break;
	default:		/* UDP, unix sockets and unassigned values: not for SMTP */
		return fail(out, "v2 address family or transport not TCP over IPv4/IPv6");
	}
	if (!rd_copy(p, a, alen) || !rd_copy(p, b, alen) || !rd_u16(p, &sport) ||
	    !rd_u16(p, &dport))
		return fail(out, "v2 length too short for its addresses");
	/* 2.2.7: TLVs are skipped, but each must fit (a bad one means a confused sender) */
	while (rd_left(p) > 0) {
		if (!rd_u8(p, &type) || !rd_u16(p, &vlen) || !rd_skip(p, vlen))
			return fail(out, "v2 TLV runs past the header");
	}
	out->cmd = PROXY_CMD_PROXY;
	set_addr(&out->src, &out->srclen, fam, a, sport);
	set_addr(&out->dst, &out->dstlen, fam, b, dport);
	return PROXY_OK;
}

static enum proxy_status
parse_v2(const unsigned char *buf, size_t len, struct proxy_hdr *out)
{
	struct rd r = {buf, len, 0};
	unsigned ver_cmd, fam, plen = 0; /* gcc 12 -O1 under ASan: maybe-uninitialized */

	if (!prefix_ok(buf, len, v2_sig, sizeof(v2_sig)))
		return fail(out, "bad v2 signature");
	/* judge each fixed byte as soon as it is here, not only once the whole header is */
	if (len > 12 && buf[12] >> 4 != 2)
		return fail(out, "v2 version is not 2");
	if (len > 12 && (buf[12] & 0x0f) > 1)
		return fail(out, "v2 command is not LOCAL or PROXY");
	if (len < PROXY_V2_FIXED)
		return PROXY_NEED_MORE;
	rd_skip(&r, sizeof(v2_sig));
	rd_u8(&r, &ver_cmd);
	rd_u8(&r, &fam);
	rd_u16(&r, &plen);
	if (plen > PROXY_V2_PAYLOAD_MAX)
		return fail(out, "v2 header longer than 1 KiB of TLVs");
	if (rd_left(&r) < plen)
		return PROXY_NEED_MORE;
	out->version = 2;
	out->len = PROXY_V2_FIXED + plen;
	if ((ver_cmd & 0x0f) == 0) {
		/* LOCAL: the balancer talks for itself; family and block are ignored (2.2) */
		out->cmd = PROXY_CMD_LOCAL;
		return PROXY_OK;
	}
	struct rd p = {buf + PROXY_V2_FIXED, plen, 0};
	return v2_addresses(&p, fam, out);
}

enum proxy_status
proxy_parse(const unsigned char *buf, size_t len, unsigned versions, struct proxy_hdr *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return PROXY_NEED_MORE;
	/* the first byte tells the version: v1 starts "PROXY", v2 with CR */
	if (buf[0] == v1_sig[0]) {
		if (!(versions & PROXY_V1))
			return fail(out, "PROXY v1 header where only v2 is accepted");
		return parse_v1(buf, len, out);
	}
	if (buf[0] == v2_sig[0]) {
		if (!(versions & PROXY_V2))
			return fail(out, "PROXY v2 header where only v1 is accepted");
		return parse_v2(buf, len, out);
	}
	return fail(out, "no PROXY header");
}

const char *
proxy_strstatus(enum proxy_status st)
{
	switch (st) {
	case PROXY_NEED_MORE:
		return "need more";
	case PROXY_OK:
		return "ok";
	case PROXY_ERROR:
		return "error";
	}
	return "?";
}
