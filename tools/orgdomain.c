/*
 * tools/orgdomain: organisational domains through libpsl (see
 * tools/orgdomain.h).
 */
#include "tools/orgdomain.h"

#include <libpsl.h>
#include <stdio.h>
#include <string.h>

static const psl_ctx_t *
psl(void)
{
	static const psl_ctx_t *ctx;

	/* psl_latest: the newer of the distribution's list and the built-in one */
	if (ctx == NULL)
		ctx = psl_latest(NULL);
	if (ctx == NULL)
		ctx = psl_builtin();
	return ctx;
}

int
orgdomain_get(const char *domain, char *out, size_t outlen)
{
	char name[256];
	const char *reg;
	size_t len = strlen(domain);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof name)
		return -1;
	for (size_t i = 0; i < len; i++)
		name[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] + 32 : domain[i]);
	name[len] = '\0';
	reg = psl() != NULL ? psl_registrable_domain(psl(), name) : NULL;
	if (reg == NULL)
		reg = name; /* a public suffix itself: RFC 7489 3.2 step 3 finds no more labels */
	if ((size_t)snprintf(out, outlen, "%s", reg) >= outlen)
		return -1;
	return 0;
}

bool
orgdomain_same(const char *a, const char *b)
{
	char oa[256], ob[256];

	return orgdomain_get(a, oa, sizeof oa) == 0 && orgdomain_get(b, ob, sizeof ob) == 0 &&
	       strcmp(oa, ob) == 0;
}
