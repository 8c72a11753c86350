/*
 * config_dnsbl: the dnsbl key (DNS blocklists for mxrelayctl dns check,
 * RFC 5782): "ZONE [DELISTING-URL]" lines kept in file order, or "none".
 * The daemon never reads them; only the syntax is checked here, so a typo
 * is a FILE:LINE error before anyone runs the check. It calls nothing in
 * config_keys.c (whose setter calls it), so the two depend one way.
 */
#include "mta/shared/config_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/util.h"

/*
 * A blocklist zone: LDH labels, at least two. At most 180 bytes, so that the
 * 32 reversed nibbles of an IPv6 address (RFC 5782 2.4) still fit a name.
 */
static int
dnsbl_zone_ok(const char *z)
{
	size_t len = strlen(z), label = 0, dots = 0;

	if (len == 0 || len > 180 || z[0] == '.' || z[len - 1] == '.' || z[len - 1] == '-')
		return -1;
	for (const char *s = z; *s; s++) {
		if (*s == '.') {
			if (label == 0 || s[-1] == '-')
				return -1;
			label = 0;
			dots++;
		} else if (isalnum((unsigned char)*s) || *s == '_' || (*s == '-' && label > 0)) {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
	}
	return dots > 0 ? 0 : -1;
}

/* http(s)://, then printable ASCII without spaces or quotes */
static int
dnsbl_url_ok(const char *u)
{
	const char *rest = strncmp(u, "https://", 8) == 0  ? u + 8
	                   : strncmp(u, "http://", 7) == 0 ? u + 7
	                                                   : NULL;

	if (rest == NULL || *rest == '\0' || *rest == '/' || strlen(u) > 512)
		return -1;
	for (; *u; u++)
		if (*u <= ' ' || *u > '~' || *u == '"' || *u == '\\')
			return -1;
	return 0;
}

/* "zen.spamhaus.org https://check.spamhaus.org/", "bl.test", or "none" */
int
config_dnsbl_add(struct config *c, const char *v, int line, char *why, size_t whylen)
{
	char zone[256], url[1024], extra[2];
	int n = sscanf(v, "%255s %1023s %1s", zone, url, extra);
	struct dnsbl_conf *b, **tail;

	if (n < 1 || n > 2)
		return util_failf(why, whylen, "expected \"ZONE [DELISTING-URL]\" or \"none\"");
	if (strcmp(zone, "none") == 0 && n == 1) {
		if (c->dnsbls != NULL)
			return util_failf(why, whylen, "\"none\" but line %d names a list",
			           c->dnsbls->line);
		c->dnsbl_none = line;
		return 0;
	}
	if (c->dnsbl_none)
		return util_failf(why, whylen, "line %d says \"dnsbl = none\"", c->dnsbl_none);
	if (dnsbl_zone_ok(zone) != 0)
		return util_failf(why, whylen, "\"%s\" is not a DNS zone name", zone);
	if (n == 2 && dnsbl_url_ok(url) != 0)
		return util_failf(why, whylen, "\"%s\" is not an http:// or https:// URL", url);
	for (tail = &c->dnsbls; *tail; tail = &(*tail)->next)
		if (strcasecmp((*tail)->zone, zone) == 0)
			return util_failf(why, whylen, "%s is already listed on line %d", zone,
			           (*tail)->line);
	b = xcalloc(1, sizeof(*b));
	b->zone = xstrdup(zone);
	b->delist = n == 2 ? xstrdup(url) : NULL;
	b->line = line;
	*tail = b;
	return 0;
}

void
config_dnsbl_free(struct config *c)
{
	for (struct dnsbl_conf *b = c->dnsbls, *bn; b; b = bn) {
		bn = b->next;
		free(b->zone);
		free(b->delist);
		free(b);
	}
	c->dnsbls = NULL;
}
