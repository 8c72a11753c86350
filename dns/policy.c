/*
 * policy: which addresses an MX may resolve to, and domain name syntax.
 *
 * An MX pointing at loopback, private or link-local space either is a
 * misconfiguration or tries to make the relay talk to our own network, so
 * such addresses are refused unless the operator allows them (tests on
 * loopback do). Addresses that can never be a unicast peer are refused
 * always.
 */
#include "dns/dns_int.h"

#include <netinet/in.h>
#include <string.h>

static const char *
v4_refusal(const uint8_t *a, bool allow_private)
{
	const char *why = NULL;

	if (a[0] == 0)
		return "unspecified address"; /* 0/8, RFC 1122 */
	if (a[0] >= 224)
		return a[0] < 240 ? "multicast address" : "reserved address"; /* 224/4, 240/4 */
	if (a[0] == 127)
		why = "loopback address";
	else if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
		why = "private address"; /* RFC 1918 */
	else if (a[0] == 100 && (a[1] & 0xc0) == 64)
		why = "private address"; /* RFC 6598 shared address space */
	else if (a[0] == 169 && a[1] == 254)
		why = "link-local address"; /* RFC 3927 */
	return allow_private ? NULL : why;
}

static const char *
v6_refusal(const uint8_t *a, bool allow_private)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t zero[15] = {0};
	const char *why = NULL;

	if (memcmp(a, mapped, 12) == 0)
		return v4_refusal(a + 12, allow_private);
	if (memcmp(a, zero, 12) == 0) {
		if (memcmp(a, zero, 15) == 0 && a[15] <= 1)
			why = a[15] ? "loopback address" : "unspecified address";
		else
			return "reserved address"; /* deprecated IPv4-compatible ::/96 */
		return a[15] && allow_private ? NULL : why;
	}
	if (a[0] == 0xff)
		return "multicast address";
	if ((a[0] & 0xfe) == 0xfc)
		why = "private address"; /* fc00::/7, RFC 4193 */
	else if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		why = "link-local address"; /* fe80::/10 */
	else if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		why = "private address"; /* fec0::/10, deprecated site-local */
	return allow_private ? NULL : why;
}

const char *
dns__addr_refusal(int family, const uint8_t *addr, bool allow_private)
{
	if (family == AF_INET)
		return v4_refusal(addr, allow_private);
	if (family == AF_INET6)
		return v6_refusal(addr, allow_private);
	return "unsupported address family";
}

const char *
dns_addr_refusal(const struct sockaddr *sa, bool allow_private)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		return v4_refusal((const uint8_t *)&s4->sin_addr, allow_private);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		return v6_refusal(s6->sin6_addr.s6_addr, allow_private);
	}
	return "unsupported address family";
}

/* RFC 1035 2.3.4 limits; letters, digits, '-' and '_' (seen in real MX names). */
int
dns__normalize(const char *in, char *out)
{
	size_t len = strlen(in), label = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		           c == '_') {
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (char)(c - 'A' + 'a');
			label++;
		} else {
			return -1;
		}
		if (label > 63)
			return -1;
		out[i] = c;
	}
	out[len] = '\0';
	return 0;
}
