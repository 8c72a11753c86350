/*
 * config_dns: the syntax of dns_servers, checked when the configuration
 * loads (config_keys.c) so that a typo reads FILE:LINE for mxrelayd and
 * mxrelayctl alike, instead of c-ares refusing the list later. Calls
 * nothing of the configuration back.
 */
#include "mta/shared/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* One dns_servers item (config_int.h). */
int
config_dns_server_ok(const char *item, size_t n)
{
	char host[INET6_ADDRSTRLEN + 1], *end;
	const char *port = NULL, *close;
	unsigned char a[16];
	size_t hlen;

	if (n > 0 && item[0] == '[') {
		close = memchr(item, ']', n);
		if (close == NULL)
			return -1;
		hlen = (size_t)(close - item) - 1;
		memcpy(host, item + 1, hlen < sizeof host ? hlen : 0);
		port = close + 1 < item + n ? close + 1 : NULL;
		if (hlen == 0 || hlen >= sizeof host || port == NULL || *port != ':')
			return -1;
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, a) != 1)
			return -1;
	} else {
		const char *colon = memchr(item, ':', n);

		if (n == 0 || n >= sizeof host)
			return -1;
		memcpy(host, item, n);
		host[n] = '\0';
		if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon + 1 - item)) != NULL)
			return inet_pton(AF_INET6, host, a) == 1 ? 0 : -1; /* bare IPv6, no port */
		if (colon != NULL) {
			host[colon - item] = '\0';
			port = colon;
		}
		if (inet_pton(AF_INET, host, a) != 1)
			return -1;
	}
	if (port == NULL)
		return 0;
	long v = strtol(port + 1, &end, 10);
	return isdigit((unsigned char)port[1]) && end == item + n && v >= 1 && v <= 65535 ? 0 : -1;
}
