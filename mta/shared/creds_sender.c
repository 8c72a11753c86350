/*
 * creds_sender: the allowed-sender rule (creds_sender_allowed, contract in
 * creds.h): which envelope and header addresses a credential may use. Local
 * parts compare ASCII case-insensitively unless sender_case = sensitive;
 * domains compare by A-label. Pure functions of their arguments: any thread.
 */
#include "mta/shared/creds_int.h"

#include <idn2.h>
#include <string.h>

/* ASCII only, so the result never depends on the process locale. */
static int
domain_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
	}
	return *a == *b;
}

/* ASCII only, so the result never depends on the process locale. */
static int
ascii_ieq_n(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
	}
	return 1;
}

static int
has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/*
 * Domains compare by A-label (RFC 5890 section 2.3.2.1): an entry or address
 * written in U-labels (SMTPUTF8, RFC 6531) matches its xn-- form. A name
 * libidn2 refuses matches only itself, byte for byte (ASCII case folded).
 */
static int
domain_match(const char *entry, const char *addr)
{
	char *ea = NULL, *aa = NULL;
	int eq;

	if (domain_eq(entry, addr))
		return 1;
	if (!has_8bit(entry) && !has_8bit(addr))
		return 0;
	if (has_8bit(entry) && idn2_to_ascii_8z(entry, &ea, IDN2_NONTRANSITIONAL) != IDN2_OK)
		ea = NULL;
	if (has_8bit(addr) && idn2_to_ascii_8z(addr, &aa, IDN2_NONTRANSITIONAL) != IDN2_OK)
		aa = NULL;
	eq = domain_eq(ea ? ea : entry, aa ? aa : addr);
	idn2_free(ea);
	idn2_free(aa);
	return eq;
}

void
creds_set_sender_case(struct creds *c, int sensitive)
{
	for (size_t i = 0; c && i < c->n; i++)
		c->v[i].cred.sender_case_sensitive = sensitive;
}

int
creds_sender_allowed(const struct cred *cred, const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;
	size_t i;

	for (i = 0; cred && i < cred->nsenders; i++) {
		const char *s = cred->senders[i], *sat;
		size_t llen;

		if (strcmp(s, "*") == 0)
			return 0;
		/* the null sender, "user" and "user@" or "@dom" match only "*";
		 * the last '@' splits, as in a quoted local part "a@b"@dom */
		if (!at || at == addr || at[1] == '\0')
			continue;
		sat = strrchr(s, '@');
		if (!sat || !domain_match(sat + 1, at + 1))
			continue;
		if (sat == s)
			return 0;
		llen = (size_t)(at - addr);
		if (sat - s != at - addr)
			continue;
		/* Scans@ and scans@ are one mailbox at Exchange and nearly every
		 * receiver, though RFC 5321 section 2.4 lets a host tell them apart */
		if (cred->sender_case_sensitive ? memcmp(s, addr, llen) == 0
		                                : ascii_ieq_n(s, addr, llen))
			return 0;
	}
	return -1;
}
