/*
 * Unit tests for mta/smtpd/proxy: the PROXY protocol v1/v2 header parser. Tables
 * of (label, bytes, versions, expected result); every header that parses is
 * also cut at every length (each prefix must ask for more) and fed with
 * client data after it (which must not be taken). Each table reports every
 * failing row, then fails once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mta/smtpd/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a byte string with its length (it may hold NULs) */
#define B(s) s, sizeof(s) - 1

/* v2 fixed part: signature, then version/command, family, length (big-endian) */
#define SIG "\r\n\r\n\0\r\nQUIT\n"
#define V2_PROXY "\x21"
#define V2_LOCAL "\x20"
#define INET4_BLOCK "\xc0\x00\x02\x01" "\xc6\x33\x64\x02" "\xdc\x04" "\x00\x19"
#define INET6_BLOCK                                                                \
	"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"          \
	"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"          \
	"\x04\x00" "\x02\x4b"

#define ANY (PROXY_V1 | PROXY_V2)

struct pcase {
	const char *label;
	const char *in;
	size_t inlen;
	unsigned versions;
	enum proxy_status st;
	enum proxy_cmd cmd;	/* OK only */
	size_t len;		/* OK only: header length (0: the whole input) */
	const char *src;	/* OK + PROXY: "addr port" */
	const char *dst;
	const char *err;	/* ERROR: a word of the reason */
};

static const struct pcase cases[] = {
    /* ---- v1 ---- */
    {"v1 TCP4", B("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n"), ANY, PROXY_OK,
     PROXY_CMD_PROXY, 0, "192.0.2.1 56324", "198.51.100.2 25", NULL},
    {"v1 TCP4 then SMTP", B("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO x\r\n"), ANY,
     PROXY_OK, PROXY_CMD_PROXY, 44, "192.0.2.1 56324", "198.51.100.2 25", NULL},
    {"v1 TCP4 v1 only", B("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n"), PROXY_V1, PROXY_OK,
     PROXY_CMD_PROXY, 0, "10.0.0.1 1", "10.0.0.2 2", NULL},
    {"v1 TCP4 ports 0 and 65535", B("PROXY TCP4 10.0.0.1 10.0.0.2 0 65535\r\n"), ANY, PROXY_OK,
     PROXY_CMD_PROXY, 0, "10.0.0.1 0", "10.0.0.2 65535", NULL},
    {"v1 TCP6", B("PROXY TCP6 2001:db8::1 2001:db8::2 1024 587\r\n"), ANY, PROXY_OK,
     PROXY_CMD_PROXY, 0, "2001:db8::1 1024", "2001:db8::2 587", NULL},
    {"v1 TCP6 v4-mapped", B("PROXY TCP6 ::ffff:192.0.2.1 ::1 5 465\r\n"), ANY, PROXY_OK,
     PROXY_CMD_PROXY, 0, "::ffff:192.0.2.1 5", "::1 465", NULL},
    {"v1 UNKNOWN", B("PROXY UNKNOWN\r\n"), ANY, PROXY_OK, PROXY_CMD_UNKNOWN, 0, NULL, NULL, NULL},
    {"v1 UNKNOWN with fields", B("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"), ANY, PROXY_OK,
     PROXY_CMD_UNKNOWN, 0, NULL, NULL, NULL},
    {"v1 UNKNOWN longest (107)",
     B("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
     ANY, PROXY_OK, PROXY_CMD_UNKNOWN, 0, NULL, NULL, NULL},
    {"v1 TCP6 longest",
     B("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
     ANY, PROXY_OK, PROXY_CMD_PROXY, 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535",
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535", NULL},

    {"v1 not a header", B("EHLO client.example\r\n"), ANY, PROXY_ERROR, 0, 0, NULL, NULL,
     "no PROXY"},
    {"v1 lower case", B("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "no PROXY"},
    {"v1 wrong magic", B("PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "not a PROXY"},
    {"v1 magic without space", B("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0,
     NULL, NULL, "not a PROXY"},
    {"v1 empty", B("PROXY \r\n"), ANY, PROXY_ERROR, 0, 0, NULL, NULL, "protocol"},
    {"v1 TCP5", B("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL, NULL,
     "protocol"},
    {"v1 UNKNOWNX", B("PROXY UNKNOWNX\r\n"), ANY, PROXY_ERROR, 0, 0, NULL, NULL, "protocol"},
    {"v1 UDP4", B("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL, NULL,
     "protocol"},
    {"v1 missing port", B("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "exactly"},
    {"v1 extra field", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "exactly"},
    {"v1 double space", B("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "exactly"},
    {"v1 leading double space", B("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0,
     0, NULL, NULL, "protocol"},
    {"v1 trailing space", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), ANY, PROXY_ERROR, 0, 0,
     NULL, NULL, "exactly"},
    {"v1 TCP4 with IPv6", B("PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0,
     NULL, NULL, "address"},
    {"v1 TCP6 with IPv4", B("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "address"},
    {"v1 short IPv4", B("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL, NULL,
     "address"},
    {"v1 host name", B("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "address"},
    {"v1 nine IPv6 groups",
     B("PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:1 ::1 1 2\r\n"), ANY, PROXY_ERROR,
     0, 0, NULL, NULL, "address"},
    {"v1 field longer than any address",
     B("PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0000:0000 ::1 1 2\r\n"), ANY,
     PROXY_ERROR, 0, 0, NULL, NULL, "exactly"},
    {"v1 port 65536", B("PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n"), ANY, PROXY_ERROR, 0, 0,
     NULL, NULL, "port"},
    {"v1 port leading zero", B("PROXY TCP4 1.2.3.4 5.6.7.8 025 25\r\n"), ANY, PROXY_ERROR, 0,
     0, NULL, NULL, "port"},
    {"v1 port sign", B("PROXY TCP4 1.2.3.4 5.6.7.8 +25 25\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "port"},
    {"v1 port six digits", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 000025\r\n"), ANY, PROXY_ERROR, 0, 0,
     NULL, NULL, "port"},
    {"v1 port letters", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "port"},
    {"v1 LF without CR", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "CRLF"},
    {"v1 CR without LF", B("PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "CR without LF"},
    {"v1 tab", B("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL, NULL,
     "control"},
    {"v1 NUL", B("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), ANY, PROXY_ERROR, 0, 0, NULL, NULL,
     "control"},
    {"v1 8-bit byte", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\xff\r\n"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "8-bit"},
    {"v1 on a v2-only listener", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_V2, PROXY_ERROR,
     0, 0, NULL, NULL, "only v2"},
    {"v1 with PROXY off", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), 0, PROXY_ERROR, 0, 0, NULL,
     NULL, "only v2"},
    {"v1 108 bytes",
     B("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655355\r\n"),
     ANY, PROXY_ERROR, 0, 0, NULL, NULL, "107"},

    /* ---- v2 ---- */
    {"v2 PROXY TCP4", B(SIG V2_PROXY "\x11" "\x00\x0c" INET4_BLOCK), ANY, PROXY_OK,
     PROXY_CMD_PROXY, 0, "192.0.2.1 56324", "198.51.100.2 25", NULL},
    {"v2 PROXY TCP4 v2 only", B(SIG V2_PROXY "\x11" "\x00\x0c" INET4_BLOCK), PROXY_V2, PROXY_OK,
     PROXY_CMD_PROXY, 0, "192.0.2.1 56324", "198.51.100.2 25", NULL},
    {"v2 PROXY TCP4 then TLS", B(SIG V2_PROXY "\x11" "\x00\x0c" INET4_BLOCK "\x16\x03\x01"),
     ANY, PROXY_OK, PROXY_CMD_PROXY, 28, "192.0.2.1 56324", "198.51.100.2 25", NULL},
    {"v2 PROXY TCP6", B(SIG V2_PROXY "\x21" "\x00\x24" INET6_BLOCK), ANY, PROXY_OK,
     PROXY_CMD_PROXY, 0, "2001:db8::1 1024", "2001:db8::2 587", NULL},
    {"v2 PROXY TCP4 with TLVs",
     B(SIG V2_PROXY "\x11" "\x00\x18" INET4_BLOCK "\x01\x00\x02h2" "\x04\x00\x00"
       "\x05\x00\x01" "X"),
     ANY, PROXY_OK, PROXY_CMD_PROXY, 0, "192.0.2.1 56324", "198.51.100.2 25", NULL},
    {"v2 PROXY TCP6 with TLV then data",
     B(SIG V2_PROXY "\x21" "\x00\x28" INET6_BLOCK "\x04\x00\x01" "\x00" "EHLO"), ANY, PROXY_OK,
     PROXY_CMD_PROXY, 56, "2001:db8::1 1024", "2001:db8::2 587", NULL},
    {"v2 LOCAL empty", B(SIG V2_LOCAL "\x00" "\x00\x00"), ANY, PROXY_OK, PROXY_CMD_LOCAL, 0,
     NULL, NULL, NULL},
    {"v2 LOCAL with addresses", B(SIG V2_LOCAL "\x11" "\x00\x0c" INET4_BLOCK), ANY, PROXY_OK,
     PROXY_CMD_LOCAL, 0, NULL, NULL, NULL},
    {"v2 LOCAL unix family ignored", B(SIG V2_LOCAL "\x31" "\x00\x01" "\x00"), ANY, PROXY_OK,
     PROXY_CMD_LOCAL, 0, NULL, NULL, NULL},
    {"v2 PROXY AF_UNSPEC", B(SIG V2_PROXY "\x00" "\x00\x00"), ANY, PROXY_OK, PROXY_CMD_UNKNOWN,
     0, NULL, NULL, NULL},
    {"v2 PROXY AF_UNSPEC with bytes", B(SIG V2_PROXY "\x00" "\x00\x03" "abc"), ANY, PROXY_OK,
     PROXY_CMD_UNKNOWN, 0, NULL, NULL, NULL},

    {"v2 bad signature", B("\r\n\r\n\0\r\nQUIX\n" V2_PROXY "\x11" "\x00\x0c" INET4_BLOCK), ANY,
     PROXY_ERROR, 0, 0, NULL, NULL, "signature"},
    {"v2 bad signature early", B("\r\nX"), ANY, PROXY_ERROR, 0, 0, NULL, NULL, "signature"},
    {"v2 version 1", B(SIG "\x11" "\x11" "\x00\x0c" INET4_BLOCK), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "version"},
    {"v2 version 3 seen early", B(SIG "\x31"), ANY, PROXY_ERROR, 0, 0, NULL, NULL, "version"},
    {"v2 command 2", B(SIG "\x22" "\x11" "\x00\x0c" INET4_BLOCK), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "command"},
    {"v2 command 15 seen early", B(SIG "\x2f"), ANY, PROXY_ERROR, 0, 0, NULL, NULL, "command"},
    {"v2 UDP4", B(SIG V2_PROXY "\x12" "\x00\x0c" INET4_BLOCK), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "family"},
    {"v2 UDP6", B(SIG V2_PROXY "\x22" "\x00\x24" INET6_BLOCK), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "family"},
    {"v2 INET unspecified transport", B(SIG V2_PROXY "\x10" "\x00\x0c" INET4_BLOCK), ANY,
     PROXY_ERROR, 0, 0, NULL, NULL, "family"},
    {"v2 unix stream", B(SIG V2_PROXY "\x31" "\x00\x04" "abcd"), ANY, PROXY_ERROR, 0, 0, NULL,
     NULL, "family"},
    {"v2 family 4", B(SIG V2_PROXY "\x41" "\x00\x00"), ANY, PROXY_ERROR, 0, 0, NULL, NULL,
     "family"},
    {"v2 TCP4 length 11", B(SIG V2_PROXY "\x11" "\x00\x0b" "\xc0\x00\x02\x01\xc6\x33\x64\x02"
                            "\xdc\x04\x00"),
     ANY, PROXY_ERROR, 0, 0, NULL, NULL, "too short"},
    {"v2 TCP6 with TCP4 length", B(SIG V2_PROXY "\x21" "\x00\x0c" INET4_BLOCK), ANY,
     PROXY_ERROR, 0, 0, NULL, NULL, "too short"},
    {"v2 TCP4 length 0", B(SIG V2_PROXY "\x11" "\x00\x00"), ANY, PROXY_ERROR, 0, 0, NULL, NULL,
     "too short"},
    {"v2 TLV past the end", B(SIG V2_PROXY "\x11" "\x00\x11" INET4_BLOCK "\x01\x00\x05" "h2"),
     ANY, PROXY_ERROR, 0, 0, NULL, NULL, "TLV"},
    {"v2 TLV header cut", B(SIG V2_PROXY "\x11" "\x00\x0e" INET4_BLOCK "\x01\x00"), ANY,
     PROXY_ERROR, 0, 0, NULL, NULL, "TLV"},
    {"v2 length over the cap (fixed part only)", B(SIG V2_PROXY "\x11" "\x04\x25"), ANY,
     PROXY_ERROR, 0, 0, NULL, NULL, "longer"},
    {"v2 length 65535", B(SIG V2_LOCAL "\x00" "\xff\xff"), ANY, PROXY_ERROR, 0, 0, NULL, NULL,
     "longer"},
    {"v2 on a v1-only listener", B(SIG V2_PROXY "\x11" "\x00\x0c" INET4_BLOCK), PROXY_V1,
     PROXY_ERROR, 0, 0, NULL, NULL, "only v1"},
    {"TLS hello, no header", B("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), ANY,
     PROXY_ERROR, 0, 0, NULL, NULL, "no PROXY"},
    {"NUL first", B("\0PROXY"), ANY, PROXY_ERROR, 0, 0, NULL, NULL, "no PROXY"},

    /* ---- prefixes that must wait ---- */
    {"nothing yet", B(""), ANY, PROXY_NEED_MORE, 0, 0, NULL, NULL, NULL},
    {"v1 P", B("P"), ANY, PROXY_NEED_MORE, 0, 0, NULL, NULL, NULL},
    {"v1 magic", B("PROXY "), ANY, PROXY_NEED_MORE, 0, 0, NULL, NULL, NULL},
    {"v1 up to CR", B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), ANY, PROXY_NEED_MORE, 0, 0, NULL,
     NULL, NULL},
    {"v2 CR", B("\r"), PROXY_V2, PROXY_NEED_MORE, 0, 0, NULL, NULL, NULL},
    {"v2 signature", B(SIG), ANY, PROXY_NEED_MORE, 0, 0, NULL, NULL, NULL},
    {"v2 fixed part", B(SIG V2_PROXY "\x11" "\x00\x0c"), ANY, PROXY_NEED_MORE, 0, 0, NULL, NULL,
     NULL},
    {"v2 largest allowed, fixed part", B(SIG V2_PROXY "\x21" "\x04\x24"), ANY, PROXY_NEED_MORE,
     0, 0, NULL, NULL, NULL},
};

/* "addr port" of a sockaddr the parser filled */
static void
sa_text(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
	}
	snprintf(out, outlen, "%s %u", a, port);
}

/* Parse a copy in a heap buffer of exactly len bytes, so ASan sees any over-read. */
static enum proxy_status
parse_exact(const char *in, size_t len, unsigned versions, struct proxy_hdr *h)
{
	unsigned char *buf = malloc(len ? len : 1);
	enum proxy_status st;

	assert_non_null(buf);
	memcpy(buf, in, len);
	st = proxy_parse(buf, len, versions, h);
	free(buf);
	return st;
}

static int
check_row(const struct pcase *c)
{
	struct proxy_hdr h;
	enum proxy_status st = parse_exact(c->in, c->inlen, c->versions, &h);
	size_t want_len = c->len ? c->len : c->inlen;
	char got[128];

	if (st != c->st) {
		print_error("\"%s\": got %s (%s), want %s\n", c->label, proxy_strstatus(st),
			    h.error ? h.error : "-", proxy_strstatus(c->st));
		return 1;
	}
	if (st == PROXY_ERROR) {
		if (h.error == NULL || strstr(h.error, c->err) == NULL) {
			print_error("\"%s\": error \"%s\" does not mention \"%s\"\n", c->label,
				    h.error ? h.error : "(none)", c->err);
			return 1;
		}
		return 0;
	}
	if (st == PROXY_NEED_MORE)
		return 0;
	if (h.cmd != c->cmd || h.len != want_len) {
		print_error("\"%s\": got cmd %d len %zu, want cmd %d len %zu\n", c->label, (int)h.cmd,
			    h.len, (int)c->cmd, want_len);
		return 1;
	}
	if (h.version != (c->in[0] == 'P' ? 1u : 2u)) {
		print_error("\"%s\": version %u\n", c->label, h.version);
		return 1;
	}
	if (c->cmd != PROXY_CMD_PROXY)
		return 0;
	sa_text(&h.src, got, sizeof(got));
	if (strcmp(got, c->src) != 0) {
		print_error("\"%s\": src \"%s\", want \"%s\"\n", c->label, got, c->src);
		return 1;
	}
	sa_text(&h.dst, got, sizeof(got));
	if (strcmp(got, c->dst) != 0) {
		print_error("\"%s\": dst \"%s\", want \"%s\"\n", c->label, got, c->dst);
		return 1;
	}
	socklen_t want_sl = h.src.ss_family == AF_INET ? sizeof(struct sockaddr_in)
						       : sizeof(struct sockaddr_in6);
	if (h.srclen != want_sl || h.dstlen != want_sl) {
		print_error("\"%s\": address lengths %u/%u\n", c->label, (unsigned)h.srclen,
			    (unsigned)h.dstlen);
		return 1;
	}
	return 0;
}

static void
test_table(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		bad += check_row(&cases[i]);
	assert_int_equal(bad, 0);
}

/*
 * Every header that parses, cut at every length before its end, must ask
 * for more: a reader may then take those bytes out of the socket.
 */
static void
test_truncated_at_every_length(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		size_t hl = c->len ? c->len : c->inlen;
		if (c->st != PROXY_OK)
			continue;
		for (size_t n = 0; n < hl; n++) {
			struct proxy_hdr h;
			enum proxy_status st = parse_exact(c->in, n, c->versions, &h);
			if (st != PROXY_NEED_MORE) {
				print_error("\"%s\" cut at %zu: got %s (%s)\n", c->label, n,
					    proxy_strstatus(st), h.error ? h.error : "-");
				bad++;
				break;
			}
		}
	}
	assert_int_equal(bad, 0);
}

/* A header followed by client bytes: the parse stops at the header, whatever follows. */
static void
test_followed_by_data(void **state)
{
	static const char tail[] = "EHLO a\r\n\x16\x03\x01\0\xff";
	unsigned char buf[PROXY_HDR_MAX + sizeof(tail)];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		size_t hl = c->len ? c->len : c->inlen;
		struct proxy_hdr h;
		if (c->st != PROXY_OK)
			continue;
		memcpy(buf, c->in, hl);
		memcpy(buf + hl, tail, sizeof(tail));
		if (proxy_parse(buf, hl + sizeof(tail), c->versions, &h) != PROXY_OK ||
		    h.len != hl) {
			print_error("\"%s\" + data: got len %zu, want %zu\n", c->label, h.len, hl);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* v1: a line without LF is refused once it reaches 107 bytes, not before. */
static void
test_v1_length_limit(void **state)
{
	char line[PROXY_V1_MAX + 8];
	struct proxy_hdr h;

	(void)state;
	memcpy(line, "PROXY UNKNOWN ", 14);
	memset(line + 14, 'a', sizeof(line) - 14);
	assert_int_equal(parse_exact(line, PROXY_V1_MAX - 1, PROXY_V1, &h), PROXY_NEED_MORE);
	assert_int_equal(parse_exact(line, PROXY_V1_MAX, PROXY_V1, &h), PROXY_ERROR);
	assert_non_null(strstr(h.error, "107"));
	assert_int_equal(parse_exact(line, sizeof(line), PROXY_V1, &h), PROXY_ERROR);
	/* the LF as byte 107 is fine; as byte 108 it is not */
	line[PROXY_V1_MAX - 2] = '\r';
	line[PROXY_V1_MAX - 1] = '\n';
	assert_int_equal(parse_exact(line, sizeof(line), PROXY_V1, &h), PROXY_OK);
	assert_int_equal(h.len, PROXY_V1_MAX);
	assert_int_equal(h.cmd, PROXY_CMD_UNKNOWN);
	line[PROXY_V1_MAX - 2] = 'a';
	line[PROXY_V1_MAX - 1] = '\r';
	line[PROXY_V1_MAX] = '\n';
	assert_int_equal(parse_exact(line, sizeof(line), PROXY_V1, &h), PROXY_ERROR);
}

/* v2: TLVs up to the cap are skipped; one byte more is refused from the fixed part alone. */
static void
test_v2_tlv_cap(void **state)
{
	static const unsigned char fixed[] = SIG V2_PROXY "\x21";
	static const unsigned char block[] = INET6_BLOCK;
	unsigned char buf[PROXY_HDR_MAX + 1];
	size_t plen = PROXY_V2_PAYLOAD_MAX, tlv = PROXY_V2_TLV_MAX - 3;
	struct proxy_hdr h;

	(void)state;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, fixed, 14);
	buf[14] = (unsigned char)(plen >> 8);
	buf[15] = (unsigned char)plen;
	memcpy(buf + 16, block, 36);
	buf[52] = 0x04;		/* PP2_TYPE_NOOP filling all TLV space */
	buf[53] = (unsigned char)(tlv >> 8);
	buf[54] = (unsigned char)tlv;
	assert_int_equal(proxy_parse(buf, PROXY_HDR_MAX, PROXY_V2, &h), PROXY_OK);
	assert_int_equal(h.len, PROXY_HDR_MAX);
	assert_int_equal(h.cmd, PROXY_CMD_PROXY);
	assert_int_equal(proxy_parse(buf, PROXY_HDR_MAX - 1, PROXY_V2, &h), PROXY_NEED_MORE);

	plen++;
	buf[14] = (unsigned char)(plen >> 8);
	buf[15] = (unsigned char)plen;
	assert_int_equal(proxy_parse(buf, 16, PROXY_V2, &h), PROXY_ERROR);
	assert_int_equal(proxy_parse(buf, sizeof(buf), PROXY_V2, &h), PROXY_ERROR);
}

/* Byte by byte, as a slow balancer would send it: same answer as all at once. */
static void
test_byte_at_a_time(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		struct proxy_hdr h;
		enum proxy_status st = PROXY_NEED_MORE;
		size_t n;
		for (n = 0; n <= c->inlen && st == PROXY_NEED_MORE; n++)
			st = parse_exact(c->in, n, c->versions, &h);
		if (st != c->st) {
			print_error("\"%s\" byte by byte: got %s after %zu bytes\n", c->label,
				    proxy_strstatus(st), n);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* Pseudo-random bytes behind both signatures: never a crash, never len past the input. */
static void
test_noise(void **state)
{
	unsigned char buf[256];
	uint32_t x = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t n = round % sizeof(buf);
		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (unsigned char)(x >> 16);
		}
		if (n > 16 && round % 3 == 0)
			memcpy(buf, SIG, 12);
		else if (n > 6 && round % 3 == 1)
			memcpy(buf, "PROXY ", 6);
		struct proxy_hdr h;
		enum proxy_status st = proxy_parse(buf, n, PROXY_V1 | PROXY_V2, &h);
		if (st == PROXY_OK)
			assert_true(h.len > 0 && h.len <= n);
		if (st == PROXY_ERROR)
			assert_non_null(h.error);
	}
}

static void
test_strstatus(void **state)
{
	(void)state;
	assert_string_equal(proxy_strstatus(PROXY_OK), "ok");
	assert_string_equal(proxy_strstatus(PROXY_NEED_MORE), "need more");
	assert_string_equal(proxy_strstatus(PROXY_ERROR), "error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_truncated_at_every_length),
	    cmocka_unit_test(test_followed_by_data),
	    cmocka_unit_test(test_v1_length_limit),
	    cmocka_unit_test(test_v2_tlv_cap),
	    cmocka_unit_test(test_byte_at_a_time),
	    cmocka_unit_test(test_noise),
	    cmocka_unit_test(test_strstatus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
