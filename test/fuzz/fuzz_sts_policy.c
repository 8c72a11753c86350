/*
 * libFuzzer target: the MTA-STS policy file parser (sts_policy_parse, RFC
 * 8461 3.2) and the MX pattern match (sts_mx_match, 4.1). Built by
 * -DMXRELAY_FUZZ=ON (test/fuzz/README.md). The input is the policy body as
 * an HTTPS server would send it, in an exact-size copy (ASan sees a read
 * past it).
 *
 * Beyond "no crash": an accepted policy has a known mode, max_age in range,
 * mx lines only when allowed, every pattern lower case and NUL-free, and
 * every pattern matches a host built from it (itself, or one label in place
 * of the wildcard) but never its parent domain. The input's first line and
 * the rest are also matched against each other as pattern and host.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta/shared/sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_pattern(const char *pat)
{
	char host[300];
	const char *dot = strchr(pat, '.');

	for (const char *s = pat; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			abort();
	if (pat[0] == '*') {
		snprintf(host, sizeof host, "mx%s", pat + 1);
		if (!sts_mx_match(pat, host) || sts_mx_match(pat, pat + 2))
			abort();
		return;
	}
	if (!sts_mx_match(pat, pat))
		abort();
	if (dot && sts_mx_match(pat, dot + 1))
		abort();
}

static void
match_halves(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char *a, *b;

	if (nl == NULL)
		return;
	a = strndup((const char *)data, (size_t)(nl - data));
	b = strndup((const char *)nl + 1, size - (size_t)(nl - data) - 1);
	if (a && b)
		(void)sts_mx_match(a, b);
	free(a);
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1), err[128];
	struct sts_policy p;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	if (sts_policy_parse(copy, size, &p, err, sizeof err) == 0) {
		if (p.mode != STS_MODE_NONE && p.mode != STS_MODE_TESTING &&
		    p.mode != STS_MODE_ENFORCE)
			abort();
		if (p.max_age < 0 || p.max_age > STS_MAX_AGE_MAX || p.nmx > STS_MX_MAX)
			abort();
		if (p.mode != STS_MODE_NONE && p.nmx == 0)
			abort();
		for (size_t i = 0; i < p.nmx; i++)
			check_pattern(p.mx[i]);
		sts_policy_free(&p);
	} else if (p.nmx != 0 || p.mx != NULL || err[0] == '\0') {
		abort();
	}
	free(copy);
	match_halves(data, size);
	return 0;
}
