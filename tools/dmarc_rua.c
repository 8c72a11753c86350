/*
 * tools/dmarc_rua: report address lists (RFC 7489 6.2, 7.1) and the starter
 * record (see tools/dmarc.h); split from tools/dmarc.c for size.
 */
#include "tools/dmarc.h"
#include "tools/orgdomain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta/shared/util.h"

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* [s, e) without the spaces and tabs around it into out (large enough: the caller checked). */
static void
trim_copy(const char *s, const char *e, char *out)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
}

/* A host name: dot-separated labels of letters, digits, '-' (and '_'), 1..63 each. */
static bool
domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 253 || d[0] == '.' || d[len - 1] == '.' || strchr(d, '.') == NULL)
		return false;
	for (; *d; d++) {
		if (*d == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((*d >= 'a' && *d <= 'z') || (*d >= 'A' && *d <= 'Z') ||
		      (*d >= '0' && *d <= '9') || *d == '-' || *d == '_') ||
		    ++label > 63)
			return false;
	}
	return true;
}

int
dmarc_rua_parse(const char *rua, struct dmarc_rua *out, char *err, size_t errlen)
{
	const char *p = rua;

	memset(out, 0, sizeof *out);
	if (rua == NULL || *rua == '\0')
		return util_failf(err, errlen, "empty report address");
	if (strpbrk(rua, ";\r\n\"\\") != NULL)
		return util_failf(err, errlen,
		            "report address '%s' contains ';', a line break or a quote", rua);
	for (;;) {
		const char *end = strchr(p, ','), *at;
		char uri[512], *bang;

		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) >= sizeof uri || out->n == DMARC_RUA_MAX)
			return util_failf(err, errlen, "report address list '%s' is too long", rua);
		trim_copy(p, end, uri);
		bang = strchr(uri, '!'); /* size limit, e.g. "!10m" */
		if (bang != NULL)
			*bang = '\0';
		if (strpbrk(uri, " \t") != NULL)
			return util_failf(err, errlen, "report address '%s' contains a space", uri);
		if (strncasecmp(uri, "mailto:", 7) != 0) /* URI schemes are case-insensitive */
			return util_failf(err, errlen,
			            "report address '%s' must start with mailto:", uri);
		at = strrchr(uri + 7, '@');
		if (at == NULL || at == uri + 7 || !domain_ok(at + 1))
			return util_failf(err, errlen, "report address '%s' is not mailto:local@domain",
			            uri);
		snprintf(out->domain[out->n], sizeof out->domain[0], "%s", at + 1);
		for (char *c = out->domain[out->n]; *c; c++)
			*c = (char)lower((unsigned char)*c);
		out->n++;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

bool
dmarc_same_or_sub(const char *sub, const char *domain)
{
	size_t sl = strlen(sub), dl = strlen(domain);

	if (sl > 0 && sub[sl - 1] == '.')
		sl--;
	if (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (dl == 0 || sl < dl)
		return false;
	for (size_t i = 0; i < dl; i++)
		if (lower((unsigned char)sub[sl - dl + i]) != lower((unsigned char)domain[i]))
			return false;
	return sl == dl || sub[sl - dl - 1] == '.';
}

bool
dmarc_rua_external(const char *domain, const char *rua_domain)
{
	return !orgdomain_same(domain, rua_domain);
}

int
dmarc_starter(const char *rua, char **out, char *err, size_t errlen)
{
	struct dmarc_rua r;
	size_t len;

	*out = NULL;
	if (dmarc_rua_parse(rua, &r, err, errlen) != 0)
		return -1;
	len = strlen(rua) + 64;
	*out = malloc(len);
	if (*out == NULL)
		return util_failf(err, errlen, "out of memory");
	snprintf(*out, len, "v=DMARC1; p=none; rua=%s; adkim=r; aspf=r; fo=1", rua);
	return 0;
}
